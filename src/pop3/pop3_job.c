/*
 * pop3_job.c - the blocking parts of a session, run on worker threads:
 * checking credentials then opening (locking, scanning) the mailbox, and
 * the UPDATE-state expunge.  The worker touches only the job; the session
 * sees the results in the completion, on the loop thread.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/iplimit.h"
#include "net/runtime.h"
#include "net/workq.h"
#include "pop3/pop3_int.h"
#include "pop3/pop3_policy.h"
#include "store/store.h"

enum job_kind { JOB_PASS, JOB_APOP, JOB_SASL };

struct login_job {
	struct pop3_session *s;		/* ref held; not touched by the worker */
	enum job_kind kind;
	struct userdb *db;		/* ref held */
	char *user;
	char *secret;			/* password or APOP digest */
	size_t secretlen;
	char *apop_ts;
	struct sasl_server *sasl;	/* borrowed from the session */
	unsigned char *sasl_in;
	size_t sasl_inlen;

	/* results */
	enum auth_result ar;
	enum sasl_status ss;
	const char *why;		/* failure reason token, for the log */
	const unsigned char *sasl_out;
	size_t sasl_outlen;
	const struct userdb_entry *entry;
	struct mailbox *mb;
	enum store_status st;
	bool too_early;			/* LoginDelay not over (pop3_policy.h) */
	char err[160];
};

static void
login_job_open_mailbox(struct login_job *j)
{
	uint64_t now = pop3_policy_now();

	/* Only right credentials get this far: a wrong password never
	 * learns about the delay. */
	if ((j->too_early = pop3_policy_login_early(j->entry, now)))
		return;
	j->st = mailbox_open(j->entry->location, j->entry->name, &j->mb,
	    j->err, sizeof(j->err));
	if (j->st == STORE_OK)
		pop3_policy_login_opened(j->entry, j->mb, now);
}

static void
login_job_work(void *arg)
{
	struct login_job *j = arg;

	switch (j->kind) {
	case JOB_PASS:
		j->ar = auth_plain(j->db, j->user, j->secret, j->secretlen,
		    &j->entry, &j->why);
		break;
	case JOB_APOP:
		j->ar = auth_apop(j->db, j->user, j->apop_ts, j->secret,
		    &j->entry, &j->why);
		break;
	case JOB_SASL:
		j->ss = sasl_server_step(j->sasl, j->sasl_in, j->sasl_inlen,
		    &j->sasl_out, &j->sasl_outlen);
		if (j->ss == SASL_OK) {
			j->entry = sasl_server_entry(j->sasl);
			j->ar = AUTH_OK;
		} else {
			j->ar = j->ss == SASL_TEMPFAIL ? AUTH_TEMPFAIL : AUTH_FAILED;
			/* A string literal: outlives the exchange. */
			j->why = sasl_server_fail_reason(j->sasl);
		}
		break;
	}
	if (j->ar == AUTH_OK)
		login_job_open_mailbox(j);
}

static void
login_job_free(struct login_job *j)
{
	userdb_unref(&j->db);
	free(j->user);
	free_secret(j->secret);
	free(j->apop_ts);
	free(j->sasl_in);
	free(j);
}

void
pop3_log_login_failed(struct pop3_session *s, const char *user,
    const char *method, const char *why)
{
	char safe[USERNAME_MAX + 1];

	/* An empty name is what USER keeps for an invalid one. */
	if (user == NULL || user[0] == '\0')
		user = "-";
	log_info("session=%llx login failed user=%s method=%s reason=%s",
	    (unsigned long long)s->id,
	    log_sanitize(safe, sizeof(safe), user, strlen(user)),
	    method != NULL ? method : "-", why != NULL ? why : "unknown");
	conn_count_login_failed(s->conn, why);
}

static void
login_failed(struct pop3_session *s, const char *user, const char *why)
{
	struct pop3_env *env = s->env;
	unsigned fails, ms;

	pop3_log_login_failed(s, user, s->login_method, why);
	s->login_method = NULL;
	s->auth_failures++;
	fails = iplimit_fail(env->rt->iplimit, conn_client_addr(s->conn));
	/* The delay grows with recent failures from this address (Dovecot's
	 * auth penalty), capped so a user who mistyped is not locked out. */
	ms = env->params.auth_fail_delay_ms * (fails < 8 ? fails : 8);
	if (ms > 15000)
		ms = 15000;
	if (s->auth_failures >= 3) {
		s->end_reason = "auth-failures";
		s->close_after_delay = true;
		pop3_session_delayed_reply(s, ms, POP3_MSG_AUTH_FAILED_CLOSE);
		return;
	}
	pop3_session_delayed_reply(s, ms, POP3_MSG_AUTH_FAILED);
}

static void
login_succeeded(struct pop3_session *s, struct login_job *j)
{
	char safe[USERNAME_MAX + 1];

	s->mb = j->mb;
	j->mb = NULL;
	free(s->user);
	s->user = xstrdup(j->entry->name);
	s->deleted = xcalloc((mailbox_count(s->mb) + 7) / 8 + 1, 1);
	s->policy_login_delay = j->entry->login_delay;
	s->policy_expire = j->entry->expire_days;
	iplimit_success(s->env->rt->iplimit, conn_client_addr(s->conn));
	pop3_session_set_state(s, POP3_STATE_TRANSACTION);
	log_info("session=%llx login user=%s method=%s messages=%" PRIu32
	    " octets=%" PRIu64, (unsigned long long)s->id,
	    log_sanitize(safe, sizeof(safe), s->user, strlen(s->user)),
	    s->login_method, mailbox_count(s->mb), mailbox_total_size(s->mb));
	pop3_msg_n(s, LOGIN_OK, mailbox_count(s->mb), mailbox_total_size(s->mb));
}

static void
login_job_done(void *arg)
{
	struct login_job *j = arg;
	struct pop3_session *s = j->s;
	char safe[USERNAME_MAX + 1];

	if (s->state == POP3_STATE_CLOSED) {
		/* The client left while we worked: release what we opened. */
		if (j->mb != NULL)
			mailbox_close(&j->mb);
		sasl_server_free(&j->sasl);
		goto out;
	}
	s->busy = false;
	if (j->kind == JOB_SASL && j->ss == SASL_CONTINUE) {
		size_t n = j->sasl_outlen;
		char *b64 = xmalloc(base64_encoded_len(n) + 1);
		base64_encode(j->sasl_out, n, b64);
		pop3_reply(s, "+ %s", b64);
		free(b64);
		s->sasl = j->sasl;
		j->sasl = NULL;
		goto resume;
	}
	if (j->kind == JOB_SASL) {
		if (j->user == NULL && sasl_server_username(j->sasl) != NULL)
			j->user = xstrdup(sasl_server_username(j->sasl));
		sasl_server_free(&j->sasl);
		if (j->ss == SASL_BAD_INPUT) {
			pop3_log_login_failed(s, j->user, s->login_method,
			    j->why);
			s->login_method = NULL;
			pop3_msg(s, SASL_MALFORMED);
			goto resume;
		}
	}
	switch (j->ar) {
	case AUTH_OK:
		break;
	case AUTH_TEMPFAIL:
		pop3_msg(s, AUTH_TEMPFAIL);
		goto resume;
	case AUTH_FAILED:
		login_failed(s, j->user, j->why);
		goto out;
	}
	if (j->too_early) {
		log_info("session=%llx login user=%s refused: LoginDelay %us "
		    "not over", (unsigned long long)s->id, log_sanitize(safe,
		    sizeof(safe), j->entry->name, strlen(j->entry->name)),
		    j->entry->login_delay);
		pop3_msg(s, LOGIN_DELAY);
		s->login_method = NULL;
		goto resume;
	}
	switch (j->st) {
	case STORE_OK:
		login_succeeded(s, j);
		break;
	case STORE_IN_USE:
		log_info("session=%llx login user=%s refused: mailbox in use",
		    (unsigned long long)s->id, log_sanitize(safe, sizeof(safe),
		    j->entry->name, strlen(j->entry->name)));
		pop3_msg(s, IN_USE);
		break;
	case STORE_TEMP:
	case STORE_PERM:
		log_error("session=%llx user=%s mailbox %s: %s",
		    (unsigned long long)s->id, log_sanitize(safe, sizeof(safe),
		    j->entry->name, strlen(j->entry->name)),
		    j->entry->mailbox_path, j->err);
		if (j->st == STORE_TEMP)
			pop3_msg(s, MAILBOX_TEMP);
		else
			pop3_msg(s, MAILBOX_PERM);
		break;
	}
	if (j->st != STORE_OK)
		s->login_method = NULL;
resume:
	pop3_session_resume(s);
out:
	login_job_free(j);
	pop3_session_unref(s);
}

static struct login_job *
login_job_new(struct pop3_session *s, enum job_kind kind)
{
	struct login_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->kind = kind;
	/* An AUTH exchange keeps the database its mechanism started with. */
	j->db = s->sasl != NULL ? s->db : pop3_session_userdb(s);
	userdb_ref(j->db);
	pop3_session_ref(s);
	s->busy = true;
	return j;
}

static enum pop3_ev
login_job_submit(struct pop3_session *s, struct login_job *j)
{
	workq_submit(s->env->rt->wq, login_job_work, login_job_done, j);
	return POP3_EV_WAIT;
}

enum pop3_ev
pop3_job_login_pass(struct pop3_session *s, const char *pass, size_t len)
{
	struct login_job *j = login_job_new(s, JOB_PASS);

	j->user = xstrdup(s->user);
	j->secret = xstrndup(pass, len);
	j->secretlen = len;
	s->login_method = "USER";
	return login_job_submit(s, j);
}

enum pop3_ev
pop3_job_login_apop(struct pop3_session *s, const char *user,
    const char *digest)
{
	struct login_job *j = login_job_new(s, JOB_APOP);

	j->user = xstrdup(user);
	j->secret = xstrdup(digest);
	j->secretlen = strlen(digest);
	j->apop_ts = xstrdup(s->apop_ts);
	s->login_method = "APOP";
	return login_job_submit(s, j);
}

enum pop3_ev
pop3_job_sasl_step(struct pop3_session *s, unsigned char *in, size_t inlen)
{
	struct login_job *j = login_job_new(s, JOB_SASL);

	/* The worker owns the exchange until the completion gives it back. */
	j->sasl = s->sasl;
	s->sasl = NULL;
	j->sasl_in = in;
	j->sasl_inlen = inlen;
	s->login_method = sasl_mech_name(s->sasl_mech);
	return login_job_submit(s, j);
}

struct commit_job {
	struct pop3_session *s;
	struct mailbox *mb;
	int expire_days;		/* the user's Expire (pop3_policy.h) */
	char user[USERNAME_MAX + 1];	/* sanitised, for its log */
	uint8_t *deleted;
	uint32_t n_deleted;
	enum store_status st;
};

static void
commit_job_work(void *arg)
{
	struct commit_job *j = arg;

	j->st = pop3_policy_commit(j->mb, j->deleted, j->expire_days, j->user,
	    &j->n_deleted);
	mailbox_close(&j->mb);
}

static void
commit_job_done(void *arg)
{
	struct commit_job *j = arg;
	struct pop3_session *s = j->s;

	free(j->deleted);
	if (s->state != POP3_STATE_CLOSED) {
		s->busy = false;
		s->n_deleted = j->n_deleted;
		if (j->st == STORE_OK) {
			pop3_msg_n(s, QUIT_DELETED, j->n_deleted);
		} else {
			/* RFC 1939 §6: report that some could not be removed. */
			pop3_msg(s, COMMIT_FAILED);
		}
		s->end_reason = "quit";
		s->close_after_flush = true;
		pop3_session_resume(s);
	}
	free(j);
	pop3_session_unref(s);
}

enum pop3_ev
pop3_job_commit(struct pop3_session *s)
{
	struct commit_job *j;

	/* With Expire on, the worker decides (it reads the state file). */
	if (s->policy_expire == EXPIRE_NEVER &&
	    !mailbox_commit_needed(s->mb, s->deleted)) {
		/* Nothing to write: no worker round trip for the common
		 * "check mail, nothing new" session. */
		mailbox_close(&s->mb);
		pop3_msg_n(s, QUIT_DELETED, 0);
		s->n_deleted = 0;
		s->end_reason = "quit";
		return POP3_EV_CLOSE;
	}
	j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->mb = s->mb;
	s->mb = NULL;
	j->deleted = s->deleted;
	s->deleted = NULL;
	j->expire_days = s->policy_expire;
	(void)log_sanitize(j->user, sizeof(j->user), s->user, strlen(s->user));
	pop3_session_ref(s);
	s->busy = true;
	workq_submit(s->env->rt->wq, commit_job_work, commit_job_done, j);
	return POP3_EV_WAIT;
}

/* --- wire cache builds ------------------------------------------------ */

static void
wire_job_work(void *arg)
{
	store_wire_job_run(arg);
}

static void
wire_job_done(void *arg)
{
	struct store_wire_job *j = arg;

	store_wire_job_free(&j);
}

void
pop3_job_wire_cache(struct pop3_session *s, struct msg_reader *r)
{
	struct store_wire_job *j;

	if (s->env->rt->bgq == NULL)
		return;
	/* the store decides; it needs to know whether sendfile() is
	 * possible (not under TLS) */
	j = msg_reader_wire_job(s->mb, r, conn_can_sendfile(s->conn));
	/* Not tied to the session: it may end before the copy is done. */
	if (j != NULL)
		workq_submit(s->env->rt->bgq, wire_job_work, wire_job_done, j);
}
