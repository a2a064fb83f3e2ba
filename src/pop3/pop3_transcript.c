/*
 * pop3_transcript.c - what a session's transcript records
 * (Pop3Server.Transcripts, net/transcript.h): the client's lines as the
 * Sessions page's history has them (redacted by pop3_cmd.c: no password,
 * APOP digest or SASL data), the server's status lines, and a summary in
 * place of every multi-line reply (no message body, no listing).
 *
 * Off (no Transcripts.Users) a session has no s->tr and pays one NULL
 * test per line.  On, a session starts one before the user is known,
 * capped small, and keeps it at login only for a selected user.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/runtime.h"
#include "net/transcript.h"
#include "net/workq.h"
#include "pop3/pop3_int.h"

struct pop3_tr {
	struct net_transcript *t;
	const char *verb;		/* of the last command, for summaries */
	unsigned data_lines;		/* of the multi-line reply going out */
	bool logged_in;			/* as a user Transcripts.Users names */
};

/* NULL: a generation without a config (the fuzz and unit harnesses). */
static const struct transcripts_cfg *
tr_cfg(const struct pop3_session *s)
{
	const struct posuto_config *cfg = net_runtime_gen(s->env->rt) != NULL ?
	    net_runtime_gen(s->env->rt)->cfg : NULL;

	return cfg != NULL ? &cfg->transcripts : NULL;
}

static bool
tr_wanted(const struct transcripts_cfg *tc, const char *user)
{
	for (size_t i = 0; tc != NULL && i < tc->n_users; i++)
		if (strcmp(tc->users[i], "*") == 0 ||
		    (user != NULL && strcmp(tc->users[i], user) == 0))
			return true;
	return false;
}

void
pop3_tr_start(struct pop3_session *s)
{
	const struct transcripts_cfg *tc = tr_cfg(s);

	if (tc == NULL || tc->n_users == 0)
		return;
	s->tr = xcalloc(1, sizeof(*s->tr));
	s->tr->t = net_transcript_open(s->env->rt->transcripts, s->id, "pop3",
	    conn_client(s->conn));
}

void
pop3_tr_client(struct pop3_session *s, const char *verb, const char *line,
    size_t len)
{
	if (s->tr == NULL)
		return;
	if (verb != NULL)
		s->tr->verb = verb;
	s->tr->data_lines = 0;
	net_transcript_add(s->tr->t, 'C', line, len);
}

void
pop3_tr_server(struct pop3_session *s, const char *line, size_t len)
{
	if (s->tr == NULL)
		return;
	s->tr->data_lines = 0;
	net_transcript_add(s->tr->t, 'S', line, len);
}

void
pop3_tr_data(struct pop3_session *s, bool end)
{
	if (s->tr == NULL)
		return;
	if (!end) {
		s->tr->data_lines++;
		return;
	}
	pop3_tr_note(s, "[%s: %u line%s]", s->tr->verb != NULL ?
	    s->tr->verb : "reply", s->tr->data_lines,
	    s->tr->data_lines == 1 ? "" : "s");
	s->tr->data_lines = 0;
}

void
pop3_tr_note(struct pop3_session *s, const char *fmt, ...)
{
	char line[NET_TR_LINE_MAX];
	va_list ap;
	int n;

	if (s->tr == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		net_transcript_add(s->tr->t, '*', line, strlen(line));
}

void
pop3_tr_login(struct pop3_session *s)
{
	if (s->tr == NULL)
		return;
	if (!tr_wanted(tr_cfg(s), s->user)) {
		/* Not one of the selected users: what was kept before the
		 * login goes. */
		net_transcript_close(s->env->rt->transcripts, &s->tr->t, false,
		    NULL, NULL);
		free(s->tr);
		s->tr = NULL;
		return;
	}
	s->tr->logged_in = true;
	net_transcript_set_user(s->tr->t, s->user);
}

struct tr_file_job {
	char *dir, *user, *text;
	size_t len;
	char name[64];
	uint64_t id;
	int err;
};

static void
tr_file_work(void *arg)
{
	struct tr_file_job *j = arg;

	j->err = net_transcript_write_file(j->dir, j->user, j->name, j->text,
	    j->len);
}

static void
tr_file_done(void *arg)
{
	struct tr_file_job *j = arg;

	if (j->err != 0)
		log_warnx("session=%llx transcript not written to %s: %s",
		    (unsigned long long)j->id, j->dir, strerror(j->err));
	explicit_bzero(j->text, j->len);
	free(j->text);
	free(j->user);
	free(j->dir);
	free(j);
}

/*
 * The session ended.  Kept in memory if it logged in as a selected user,
 * or it never logged in and the name it tried (or "*") is selected: a
 * failed login is what a tester looks for.  A file only for a login:
 * only then is the name one userdb knows, and it is checked again with
 * the names' one allowlist before it becomes a directory.
 */
void
pop3_tr_end(struct pop3_session *s)
{
	const struct transcripts_cfg *tc;
	struct tr_file_job *j;
	struct tm tm;
	char when[32];
	time_t now;
	bool keep, file;
	char *text = NULL;
	size_t len = 0;

	if (s->tr == NULL)
		return;
	tc = tr_cfg(s);
	keep = s->tr->logged_in || tr_wanted(tc, s->user);
	file = keep && s->tr->logged_in && tc != NULL &&
	    tc->directory != NULL &&
	    s->user != NULL && userdb_name_valid(s->user, strlen(s->user));
	net_transcript_close(s->env->rt->transcripts, &s->tr->t, keep,
	    file ? &text : NULL, &len);
	free(s->tr);
	s->tr = NULL;
	if (!file || text == NULL)
		return;
	j = xcalloc(1, sizeof(*j));
	j->dir = xstrdup(tc->directory);
	j->user = xstrdup(s->user);
	j->text = text;
	j->len = len;
	j->id = s->id;
	now = time(NULL);
	gmtime_r(&now, &tm);
	if (strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm) == 0)
		when[0] = '\0';
	(void)snprintf(j->name, sizeof(j->name), "%s-%llx.txt", when,
	    (unsigned long long)s->id);
	/* No client waits for it. */
	workq_submit(s->env->rt->bgq != NULL ? s->env->rt->bgq :
	    s->env->rt->wq, tr_file_work, tr_file_done, j);
}
