/*
 * pop3_policy.c - LOGIN-DELAY and EXPIRE (RFC 2449 §6.5, §6.7) as
 * enforced policy; see pop3_policy.h.
 *
 * CAPA before login cannot know the user, so when users' values differ
 * it lists the least favourable one any user has (the longest delay, the
 * shortest retention) with the USER argument, which tells the client the
 * value is per user; after login it lists the user's own.  A client that
 * obeys the first is never refused or surprised.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/xmalloc.h"
#include "net/runtime.h"
#include "net/workq.h"
#include "pop3/pop3_int.h"
#include "pop3/pop3_policy.h"
#include "store/store_policy.h"

uint64_t
pop3_policy_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec > 0 ? (uint64_t)ts.tv_sec : 1;
}

/* --- CAPA --------------------------------------------------------------- */

void
pop3_policy_capa(struct pop3_session *s)
{
	unsigned delay;
	int expire;
	bool per_user_delay = false, per_user_expire = false;

	if (s->state == POP3_STATE_AUTHORIZATION) {
		const struct userdb_policy *p =
		    userdb_policy(pop3_session_userdb(s));

		delay = p->login_delay_max;
		per_user_delay = p->login_delay_varies;
		expire = p->expire_min;
		per_user_expire = p->expire_varies;
	} else {
		delay = s->policy_login_delay;
		expire = s->policy_expire;
	}
	if (expire == EXPIRE_NEVER)
		pop3_reply(s, "EXPIRE NEVER");
	else
		pop3_reply(s, "EXPIRE %d%s", expire,
		    per_user_expire ? " USER" : "");
	if (delay > 0)
		pop3_reply(s, "LOGIN-DELAY %u%s", delay,
		    per_user_delay ? " USER" : "");
}

/* --- LoginDelay ------------------------------------------------------------ */

bool
pop3_policy_login_early(const struct userdb_entry *e, uint64_t now)
{
	uint64_t last;

	if (e->login_delay == 0 || e->mailbox_path == NULL ||
	    !store_login_last(e->mailbox_path, &last))
		return false;
	/* a last login in the future (clock set back) does not lock out */
	return last <= now && now - last < e->login_delay;
}

bool
pop3_policy_login_early_opened(const struct userdb_entry *e,
    const struct mailbox *mb, uint64_t now)
{
	uint64_t last;

	if (e->login_delay == 0 || !mailbox_login_last(mb, &last))
		return false;
	return last <= now && now - last < e->login_delay;
}

void
pop3_policy_login_opened(const struct userdb_entry *e, struct mailbox *mb,
    uint64_t now)
{
	if (e->login_delay > 0)
		mailbox_login_record(mb, now);
}

/* --- Expire at UPDATE ------------------------------------------------------- */

enum store_status
pop3_policy_commit(struct mailbox *mb, uint8_t *deleted, int expire_days,
    const char *user, uint32_t *n_deleted_r)
{
	uint32_t n_expired = 0;
	enum store_status st;

	if (expire_days == EXPIRE_NEVER)
		return mailbox_commit(mb, deleted, n_deleted_r);
	st = mailbox_commit_expire(mb, deleted, expire_days, pop3_policy_now(),
	    user, n_deleted_r, &n_expired);
	if (n_expired > 0)
		log_info("expire: user=%s at UPDATE: %u message(s) past "
		    "Expire %d", user, n_expired, expire_days);
	return st;
}

/* --- the daemon's expiry job ---------------------------------------------- */

/* How long a run waits for the login workers to be idle (1 s steps),
 * before it runs anyway. */
#define EXPIRY_QUIET_TRIES	60

struct pop3_expiry {
	struct pop3_env *env;
	struct event *timer;
	unsigned interval;		/* s */
	unsigned waited;		/* 1 s steps spent waiting for quiet */
	bool running;			/* a job is on env->rt->bgq */
	bool stopped;
	atomic_bool stop;		/* read by the job's worker */
};

struct expiry_job {
	struct pop3_expiry *x;
	struct userdb *db;		/* ref held */
};

static void
expiry_arm(struct pop3_expiry *x, unsigned secs)
{
	struct timeval tv = { .tv_sec = (time_t)secs, .tv_usec = 0 };

	evtimer_add(x->timer, &tv);
}

/* One user's mailbox: cheap unless something is due (one small read
 * without the lock), and never waits for a lock. */
static void
expiry_one(const struct userdb_entry *e, uint64_t now)
{
	struct store_expire *sx;
	char safe[USERNAME_MAX + 1], err[160];
	struct mailbox *mb = NULL;
	enum store_status st;
	uint32_t n = 0;
	bool due;

	/* a store without files (sql:) keeps first retrievals itself: the
	 * open (one list query) is the check */
	if (store_location_has_files(e->location)) {
		sx = store_expire_load_path(e->mailbox_path);
		due = store_expire_any_due(sx, e->expire_days, now);
		store_expire_free(&sx);
		if (!due)
			return;
	}
	(void)log_sanitize(safe, sizeof(safe), e->name, strlen(e->name));
	st = mailbox_open(e->location, e->name, &mb, err, sizeof(err));
	if (st == STORE_IN_USE) {
		/* a session holds it: its own UPDATE may expire, or we
		 * come back next time */
		log_debug("expire: user=%s skipped: mailbox in use", safe);
		return;
	}
	if (st != STORE_OK) {
		log_warnx("expire: user=%s: cannot open mailbox: %s", safe,
		    err);
		return;
	}
	st = mailbox_expire(mb, e->expire_days, now, safe, &n);
	mailbox_close(&mb);
	if (n > 0 || st != STORE_OK)
		log_info("expire: user=%s deleted %u message(s)%s", safe, n,
		    st == STORE_OK ? "" : ", some could not be removed");
}

struct expiry_iter {
	struct expiry_job *j;
	uint64_t now;
};

static bool
expiry_user(const struct userdb_entry *e, void *arg)
{
	struct expiry_iter *it = arg;

	if (atomic_load(&it->j->x->stop))
		return false;
	if (e->expire_days != EXPIRE_NEVER)
		expiry_one(e, it->now);
	return true;
}

static void
expiry_work(void *arg)
{
	struct expiry_iter it = { arg, pop3_policy_now() };

	(void)userdb_iterate(it.j->db, expiry_user, &it);
}

static void
expiry_done(void *arg)
{
	struct expiry_job *j = arg;
	struct pop3_expiry *x = j->x;

	x->running = false;
	userdb_unref(&j->db);
	free(j);
	if (!x->stopped)
		expiry_arm(x, x->interval);
}

static void
expiry_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_expiry *x = arg;
	struct pop3_env *env = x->env;
	const struct userdb_policy *p = userdb_policy(pop3_env_userdb(env));
	struct expiry_job *j;

	(void)fd;
	(void)what;
	if (x->stopped || x->running || env->rt->shutting_down)
		return;
	if (p->expire_min == EXPIRE_NEVER && !p->expire_varies) {
		expiry_arm(x, x->interval);	/* nobody has Expire */
		return;
	}
	/* a quiet moment: logins and QUITs first */
	if (workq_pending(env->rt->wq) > 0 && x->waited < EXPIRY_QUIET_TRIES) {
		x->waited++;
		expiry_arm(x, 1);
		return;
	}
	x->waited = 0;
	j = xcalloc(1, sizeof(*j));
	j->x = x;
	j->db = pop3_env_userdb(env);
	userdb_ref(j->db);
	x->running = true;
	workq_submit(env->rt->bgq, expiry_work, expiry_done, j);
}

void
pop3_policy_expiry_configure(struct pop3_env *env, unsigned interval)
{
	struct pop3_expiry *x = env->expiry;

	if (env->rt->bgq == NULL)
		return;
	if (x == NULL) {
		x = env->expiry = xcalloc(1, sizeof(*x));
		x->env = env;
		atomic_init(&x->stop, false);
		x->timer = evtimer_new(pop3_env_base(env), expiry_tick, x);
		if (x->timer == NULL)
			fatal("evtimer_new");
	}
	x->interval = interval > 0 ? interval : 1;
	if (!x->running) {
		evtimer_del(x->timer);
		expiry_arm(x, x->interval);
	}
}

void
pop3_policy_expiry_stop(struct pop3_env *env)
{
	struct pop3_expiry *x = env->expiry;

	if (x == NULL)
		return;
	x->stopped = true;
	atomic_store(&x->stop, true);
	evtimer_del(x->timer);
}

void
pop3_policy_expiry_free(struct pop3_env *env)
{
	struct pop3_expiry *x = env->expiry;

	if (x == NULL)
		return;
	event_free(x->timer);
	free(x);
	env->expiry = NULL;
}
