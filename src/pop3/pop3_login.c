/*
 * pop3_login.c - login policy: who may send plaintext credentials, the
 * LoginDelay check, what a login attempt's outcome means (TRANSACTION, or
 * the failed-login penalty and three strikes, or back to AUTHORIZATION).
 * The credentials themselves are checked in auth/, on a worker
 * (pop3_job.c).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/runtime.h"
#include "net/iplimit.h"
#include "pop3/pop3_int.h"
#include "pop3/pop3_policy.h"
#include "store/store.h"

/* The third failure in a session is the last (Dovecot, popa3d). */
#define LOGIN_MAX_FAILURES	3
/* The penalty grows with failures from the address, up to this. */
#define LOGIN_DELAY_MAX_STEPS	8
#define LOGIN_DELAY_MAX_MS	15000

bool
pop3_login_plaintext_ok(struct pop3_session *s)
{
	return conn_tls_active(s->conn) || conn_client_local(s->conn) ||
	    s->env->params.allow_plaintext_auth;
}

void
pop3_login_open(struct pop3_login *l)
{
	uint64_t now = pop3_policy_now();

	/* Only right credentials get this far: a wrong password never
	 * learns about the delay. */
	if ((l->too_early = pop3_policy_login_early(l->entry, now)))
		return;
	l->st = mailbox_open(l->entry->location, l->entry->name, &l->mb,
	    l->err, sizeof(l->err));
	if (l->st != STORE_OK)
		return;
	/* a store that keeps the last login itself (sql:) tells it now */
	if ((l->too_early = pop3_policy_login_early_opened(l->entry, l->mb,
	    now))) {
		mailbox_close(&l->mb);
		return;
	}
	pop3_policy_login_opened(l->entry, l->mb, now);
	mailbox_drift_login(l->mb, &l->drift);
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
	net_observe(env->rt, NET_HIST_LOGIN, s->cmd_start_ns);
	s->login_method = NULL;
	s->auth_failures++;
	fails = iplimit_fail(env->rt->iplimit, conn_client_addr(s->conn));
	/* The delay grows with recent failures from this address (Dovecot's
	 * auth penalty), capped so a user who mistyped is not locked out. */
	ms = env->params.auth_fail_delay_ms * (fails < LOGIN_DELAY_MAX_STEPS ?
	    fails : LOGIN_DELAY_MAX_STEPS);
	if (ms > LOGIN_DELAY_MAX_MS)
		ms = LOGIN_DELAY_MAX_MS;
	if (s->auth_failures >= LOGIN_MAX_FAILURES) {
		s->end_reason = "auth-failures";
		pop3_session_delayed_reply(s, ms, POP3_MSG_AUTH_FAILED_CLOSE,
		    POP3_STATE_CLOSING);
		return;
	}
	pop3_session_delayed_reply(s, ms, POP3_MSG_AUTH_FAILED,
	    POP3_STATE_AUTHORIZATION);
}

/* What the drift detector found: one line, at info when a client will
 * download something again (else at debug); the UIDLs went to debug. */
static void
pop3_login_drift(struct pop3_session *s, const struct mailbox_drift *d)
{
	char safe[USERNAME_MAX + 1];

	if (!d->enabled)
		return;
	log_msg(d->changed == 0 && d->reappeared == 0 && d->reretrieved == 0 ?
	    LOG_LVL_DEBUG : LOG_LVL_INFO,
	    "session=%llx uidl-drift user=%s changed=%" PRIu32
	    " reappeared=%" PRIu32 " reretrieved=%" PRIu32 " tracked=%" PRIu32,
	    (unsigned long long)s->id, log_sanitize(safe, sizeof(safe),
	    s->user, strlen(s->user)), d->changed, d->reappeared,
	    d->reretrieved, d->tracked);
	if (d->changed == 0 && d->reappeared == 0 && d->reretrieved == 0)
		return;
	conn_count(s->conn, NET_CNT_UIDL_CHANGED, d->changed);
	conn_count(s->conn, NET_CNT_UIDL_REAPPEARED, d->reappeared);
	conn_count(s->conn, NET_CNT_UIDL_RERETRIEVED, d->reretrieved);
}

static void
login_succeeded(struct pop3_session *s, struct pop3_login *l)
{
	char safe[USERNAME_MAX + 1];

	s->mb = l->mb;
	l->mb = NULL;
	free(s->user);
	s->user = xstrdup(l->entry->name);
	s->deleted = xcalloc((mailbox_count(s->mb) + 7) / 8 + 1, 1);
	s->policy_login_delay = l->entry->login_delay;
	s->policy_expire = l->entry->expire_days;
	iplimit_success(s->env->rt->iplimit, conn_client_addr(s->conn));
	pop3_session_enter(s, POP3_STATE_TRANSACTION, s->login_method);
	log_info("session=%llx login user=%s method=%s messages=%" PRIu32
	    " octets=%" PRIu64, (unsigned long long)s->id,
	    log_sanitize(safe, sizeof(safe), s->user, strlen(s->user)),
	    s->login_method, mailbox_count(s->mb), mailbox_total_size(s->mb));
	pop3_login_drift(s, &l->drift);
	pop3_msg_n(s, LOGIN_OK, mailbox_count(s->mb), mailbox_total_size(s->mb));
	pop3_fault_logged_in(s);
}

/* Right credentials, and still no login: the client may try again. */
static void
login_refused(struct pop3_session *s, const char *why)
{
	s->login_method = NULL;
	pop3_session_enter(s, POP3_STATE_AUTHORIZATION, why);
}

void
pop3_login_finish(struct pop3_session *s, struct pop3_login *l,
    const char *user)
{
	char safe[USERNAME_MAX + 1];

	switch (l->ar) {
	case AUTH_OK:
		break;
	case AUTH_TEMPFAIL:
		pop3_msg(s, AUTH_TEMPFAIL);
		login_refused(s, "tempfail");
		return;
	case AUTH_FAILED:
		login_failed(s, user, l->why);
		return;
	}
	if (pop3_fault_login(s, l->entry->name)) {
		mailbox_close(&l->mb);
		login_refused(s, "fault");
		return;
	}
	if (l->too_early) {
		log_info("session=%llx login user=%s refused: LoginDelay %us "
		    "not over", (unsigned long long)s->id, log_sanitize(safe,
		    sizeof(safe), l->entry->name, strlen(l->entry->name)),
		    l->entry->login_delay);
		pop3_msg(s, LOGIN_DELAY);
		login_refused(s, "login-delay");
		return;
	}
	switch (l->st) {
	case STORE_OK:
		login_succeeded(s, l);
		return;
	case STORE_IN_USE:
		log_info("session=%llx login user=%s refused: mailbox in use",
		    (unsigned long long)s->id, log_sanitize(safe, sizeof(safe),
		    l->entry->name, strlen(l->entry->name)));
		pop3_msg(s, IN_USE);
		break;
	case STORE_TEMP:
	case STORE_PERM:
		log_error("session=%llx user=%s mailbox %s: %s",
		    (unsigned long long)s->id, log_sanitize(safe, sizeof(safe),
		    l->entry->name, strlen(l->entry->name)),
		    l->entry->mailbox_path, l->err);
		if (l->st == STORE_TEMP)
			pop3_msg(s, MAILBOX_TEMP);
		else
			pop3_msg(s, MAILBOX_PERM);
		break;
	}
	login_refused(s, "mailbox");
}
