/*
 * pop3_job.c - the blocking parts of a session, run on worker threads:
 * checking credentials then opening (locking, scanning) the mailbox, and
 * the UPDATE-state expunge.  The worker touches only the job; the session
 * sees the results in the completion, on the loop thread.  Only the
 * mechanics: what a login's outcome means is pop3_login.c's, a SASL
 * step's pop3_sasl.c's.
 */
#include <errno.h>
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
#include "net/mailevents.h"
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
	struct pop3_sasl_step sasl;	/* JOB_SASL */
	struct pop3_login res;		/* what the worker found */
};

static void
login_job_work(void *arg)
{
	struct login_job *j = arg;

	switch (j->kind) {
	case JOB_PASS:
		j->res.ar = auth_plain(j->db, j->user, j->secret, j->secretlen,
		    &j->res.entry, &j->res.why);
		break;
	case JOB_APOP:
		j->res.ar = auth_apop(j->db, j->user, j->apop_ts, j->secret,
		    &j->res.entry, &j->res.why);
		break;
	case JOB_SASL:
		pop3_sasl_step_work(&j->sasl, &j->res);
		break;
	}
	if (j->res.ar == AUTH_OK)
		pop3_login_open(&j->res);
}

static void
login_job_free(struct login_job *j)
{
	userdb_unref(&j->db);
	free(j->user);
	free_secret(j->secret);
	free(j->apop_ts);
	free(j->sasl.in);
	free(j);
}

static void
login_job_done(void *arg)
{
	struct login_job *j = arg;
	struct pop3_session *s = j->s;

	if (s->state != POP3_STATE_LOGIN_PENDING) {
		/* The client left, or a timeout closes the session, while we
		 * worked: release what we opened. */
		pop3_job_mailbox_close(s, &j->res.mb);
		sasl_server_free(&j->sasl.sasl);
		goto out;
	}
	if (j->kind != JOB_SASL || pop3_sasl_step_done(s, &j->sasl, &j->res,
	    &j->user))
		pop3_login_finish(s, &j->res, j->user);
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
	j->db = kind == JOB_SASL ? s->db : pop3_session_userdb(s);
	userdb_ref(j->db);
	pop3_session_ref(s);
	return j;
}

static enum pop3_ev
login_job_submit(struct pop3_session *s, struct login_job *j)
{
	pop3_session_enter(s, POP3_STATE_LOGIN_PENDING, s->login_method);
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
	j->sasl.sasl = s->sasl;
	s->sasl = NULL;
	j->sasl.in = in;
	j->sasl.inlen = inlen;
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
	char ev_user[NET_MAILEV_USER_LEN];	/* for the viewer's overlay */
	uint64_t sid;
};

static void
commit_job_work(void *arg)
{
	struct commit_job *j = arg;

	j->st = pop3_policy_commit(j->mb, j->deleted, j->expire_days, j->user,
	    &j->n_deleted);
	/* Only a commit that removed every marked message says "deleted"
	 * of each; the UIDLs are read before the snapshot goes. */
	for (uint32_t i = 0; j->st == STORE_OK && j->deleted != NULL &&
	    i < mailbox_count(j->mb); i++)
		if ((j->deleted[i / 8] >> (i % 8)) & 1)
			net_mailev_record(NET_MAILEV_DELETED, j->ev_user,
			    mailbox_msg_uidl(j->mb, i), j->sid);
	mailbox_close(&j->mb);
}

static void
commit_job_done(void *arg)
{
	struct commit_job *j = arg;
	struct pop3_session *s = j->s;

	free(j->deleted);
	if (s->state == POP3_STATE_UPDATE) {
		s->n_deleted = j->n_deleted;
		if (j->st == STORE_OK) {
			pop3_msg_n(s, QUIT_DELETED, j->n_deleted);
		} else {
			/* RFC 1939 §6: report that some could not be removed. */
			pop3_msg(s, COMMIT_FAILED);
		}
		s->end_reason = "quit";
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
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
	    !mailbox_commit_needed(s->mb, s->deleted) &&
	    !mailbox_close_blocks(s->mb)) {
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
	(void)str_copy(j->ev_user, sizeof(j->ev_user), s->user);
	j->sid = s->id;
	pop3_session_ref(s);
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

/* --- readers that fetch (store.h msg_reader_prepare) ------------------ */

struct pop3_prep_job {
	struct pop3_session *s;		/* ref held; not touched by the worker */
	struct pop3_stream *st;		/* the placeholder; NULL once detached */
	struct msg_reader *r;		/* the job's until done */
	uint32_t idx;
	long long lines;
	enum store_status ss;
	int err;
};

static void
prep_job_work(void *arg)
{
	struct pop3_prep_job *j = arg;

	errno = 0;
	j->ss = msg_reader_prepare(j->r);
	j->err = errno;
}

static void
prep_job_done(void *arg)
{
	struct pop3_prep_job *j = arg;
	struct pop3_session *s = j->s;
	enum pop3_ev ev;

	if (j->st == NULL || s->state != POP3_STATE_TRANSACTION) {
		/* The session ended or is closing: nothing is sent. */
		msg_reader_close(&j->r);
		if (j->st != NULL) {
			j->st->prep = NULL;
			pop3_stream_free(s);
			pop3_session_resume(s);
		}
		goto out;
	}
	/* The placeholder goes; the real stream (if any) replaces it. */
	j->st->prep = NULL;
	pop3_stream_free(s);
	if (j->ss == STORE_OK) {
		ev = pop3_msg_start(s, j->idx, j->lines, j->r);
	} else {
		msg_reader_close(&j->r);
		ev = pop3_msg_unavailable(s, j->idx, j->ss, j->err);
	}
	if (ev == POP3_EV_CLOSE && s->state != POP3_STATE_CLOSING)
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason != NULL ?
		    s->end_reason : "close");
	pop3_session_resume(s);
out:
	free(j);
	pop3_session_unref(s);
}

enum pop3_ev
pop3_job_msg_prepare(struct pop3_session *s, uint32_t idx, long long lines,
    struct msg_reader *r)
{
	struct pop3_prep_job *j = xcalloc(1, sizeof(*j));
	struct pop3_stream *st = xcalloc(1, sizeof(*st));

	st->kind = POP3_STREAM_MSG;
	st->msg = idx;
	st->prep = j;
	j->s = s;
	j->st = st;
	j->r = r;
	j->idx = idx;
	j->lines = lines;
	s->stream = st;
	pop3_session_ref(s);
	workq_submit(s->env->rt->wq, prep_job_work, prep_job_done, j);
	return POP3_EV_WAIT;
}

void
pop3_job_prep_detach(struct pop3_prep_job *j)
{
	j->st = NULL;
}

/* --- reads piece by piece (sql:) -------------------------------------- */

struct pop3_fill_job {
	struct pop3_session *s;		/* ref held */
	struct pop3_stream *st;		/* NULL: the stream went meanwhile */
	struct msg_reader *r;
	enum store_status ss;
};

static void
fill_job_work(void *arg)
{
	struct pop3_fill_job *j = arg;

	j->ss = msg_reader_fill(j->r);
}

static void
fill_job_done(void *arg)
{
	struct pop3_fill_job *j = arg;
	struct pop3_session *s = j->s;
	struct pop3_stream *st = j->st;

	if (st == NULL) {
		msg_reader_close(&j->r);
	} else {
		/* a failed fill makes the next read fail: the stream ends */
		st->fill = NULL;
		if (pop3_stream_fill(s))
			pop3_session_resume(s);
	}
	free(j);
	pop3_session_unref(s);
}

void
pop3_job_fill(struct pop3_session *s, struct pop3_stream *st)
{
	struct pop3_fill_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->st = st;
	j->r = st->r;
	st->fill = j;
	pop3_session_ref(s);
	workq_submit(s->env->rt->wq, fill_job_work, fill_job_done, j);
}

void
pop3_job_fill_detach(struct pop3_fill_job *j)
{
	j->st = NULL;
}

static void
close_job_work(void *arg)
{
	struct mailbox *mb = arg;

	mailbox_close(&mb);
}

static void
close_job_done(void *arg)
{
	(void)arg;
}

void
pop3_job_mailbox_close(struct pop3_session *s, struct mailbox **mbp)
{
	struct mailbox *mb = *mbp;

	if (mb == NULL)
		return;
	*mbp = NULL;
	/* Nothing of the session is needed: it may be gone by then. */
	if (mailbox_close_blocks(mb))
		workq_submit(s->env->rt->wq, close_job_work, close_job_done,
		    mb);
	else
		mailbox_close(&mb);
}
