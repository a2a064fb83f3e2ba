/*
 * smtp_conn.c - LMTP and the development SMTP sink on a connection: conn
 * input into the engine, its replies out, its ops run on the worker
 * queue (userdb lookups, delivery) and completed on the loop thread.
 *
 * The body is kept in memory (at most MaxMessageSize) and spooled by the
 * delivery core on the worker, which replays it for each recipient.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "config/config_edit.h"
#include "deliver/deliver.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/protocol.h"
#include "net/runtime.h"
#include "net/workq.h"
#include "smtp/smtp_conn.h"
#include "smtp/smtp_session.h"

/* Replies queued to a client that does not read them (pipelining):
 * stop taking its commands until they drain (I8). */
#define SMTP_CONN_OUT_HIGH	(64 * 1024)

struct smtp_job;

struct smtp_conn {
	struct smtp_listen *lc;
	struct conn *conn;
	struct smtp_session *s;
	struct net_gen *gen;		/* users and config of this session */
	uint64_t id;
	struct smtp_job *job;		/* pending op, NULL if none */
	char *body;			/* DATA so far */
	size_t body_len, body_cap;
	bool peer_gone;
	bool closing;			/* the engine sent 221/421 */
	bool ended;
	struct smtp_conn *prev, *next;
};

enum smtp_job_kind {
	SMTP_JOB_RCPT,
	SMTP_JOB_DATA,
};

/* Work for a worker: owns copies of all it reads, so a session that
 * ends meanwhile only detaches (sc = NULL). */
struct smtp_job {
	enum smtp_job_kind kind;
	struct smtp_conn *sc;		/* NULL once the session is gone */
	struct net_gen *gen;
	uint64_t id;
	bool sink;
	/* RCPT */
	char *addr;
	struct smtp_result res1;
	/* DATA */
	char *sender;
	char **rcpts;
	size_t n_rcpts;
	char *body;
	size_t body_len;
	struct smtp_result *res;
};

static void smtp_conn_feed(struct smtp_conn *sc);
static void smtp_conn_end(struct smtp_conn *sc, const char *reason);

static void
smtp_job_free(struct smtp_job *j)
{
	free(j->addr);
	free(j->sender);
	for (size_t i = 0; i < j->n_rcpts; i++)
		free(j->rcpts[i]);
	free(j->rcpts);
	free(j->body);
	free(j->res);
	net_gen_unref(&j->gen);
	free(j);
}

/* ---- sink: users created on first mail (development only) ---- */

/*
 * The entry a sink-created user will have once the config is reloaded:
 * the server's MailboxPath for the name, as the static userdb makes it.
 * False (with why) if the server has no default mailbox location.
 */
static bool
smtp_sink_entry(const struct posuto_config *cfg, const char *name,
    struct userdb_entry *e, char **loc_r, const char **why_r)
{
	char *path;

	if (cfg->mailbox_template == NULL) {
		*why_r = "no MailDir or MailboxPath";
		return false;
	}
	path = userdb_expand_path(cfg->mailbox_template, name, why_r);
	if (path == NULL)
		return false;
	*loc_r = xasprintf("%s:%s", cfg->format != NULL ? cfg->format :
	    "auto", path);
	free(path);
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->location = *loc_r;
	e->uid = e->gid = USERDB_ID_NONE;
	return true;
}

/* The local part of addr, if it is a valid user name: the name a sink
 * creates.  Written to out. */
static bool
smtp_sink_name(const char *addr, char *out, size_t outsz)
{
	const char *at = strrchr(addr, '@');
	size_t n = at != NULL ? (size_t)(at - addr) : strlen(addr);

	if (n == 0 || n >= outsz || !userdb_name_valid(addr, n))
		return false;
	memcpy(out, addr, n);
	out[n] = '\0';
	return true;
}

/*
 * Adds name to the JSON config's Users[] with SinkPassword (the file
 * watcher reloads it, so POP3 logins for it work from then on).  An
 * existing entry (another session's, just now) is fine.
 */
static bool
smtp_sink_add_user(const struct posuto_config *cfg, const char *name,
    char *err, size_t errsz)
{
	struct config_edit *ed = NULL;
	const char *tmp;
	char *pw;
	long idx;
	bool ok = false;

	if (!config_edit_open(cfg->path, true, &ed, err, errsz))
		return false;
	if (config_edit_user_find(ed, name) >= 0) {
		config_edit_free(&ed);
		return true;
	}
	idx = config_edit_user_add(ed, name);
	pw = xasprintf("{PLAIN}%s", cfg->sink_password);
	err[0] = '\0';
	if (idx >= 0 && config_edit_user_set(ed, idx, "Password", pw) &&
	    config_edit_stage(ed, &tmp, err, errsz) &&
	    config_edit_commit(ed, err, errsz))
		ok = true;
	else if (err[0] == '\0')
		(void)snprintf(err, errsz, "cannot add the user");
	explicit_bzero(pw, strlen(pw));
	free(pw);
	config_edit_free(&ed);
	return ok;
}

/* ---- RCPT ---- */

static void
smtp_rcpt_work(void *arg)
{
	struct smtp_job *j = arg;
	const struct userdb *db = j->gen->userdb;
	const struct posuto_config *cfg = j->gen->cfg;
	const struct userdb_entry *e;
	char name[256];

	switch (deliver_resolve(db, j->addr, &e)) {
	case USERDB_OK:
		smtp_result_set(&j->res1, 250, "2.1.5", "OK");
		return;
	case USERDB_TEMPFAIL:
		smtp_result_set(&j->res1, 451, "4.3.0",
		    "user database unavailable, try again later");
		return;
	case USERDB_NOT_FOUND:
		break;
	}
	if (j->sink && cfg->sink_creates_users &&
	    smtp_sink_name(j->addr, name, sizeof(name))) {
		smtp_result_set(&j->res1, 250, "2.1.5", "OK (created on "
		    "delivery)");
		return;
	}
	smtp_result_set(&j->res1, 550, "5.1.1", "no such user here");
}

static void
smtp_rcpt_done(void *arg)
{
	struct smtp_job *j = arg;
	struct smtp_conn *sc = j->sc;

	if (sc != NULL) {
		sc->job = NULL;
		conn_set_timeout(sc->conn, sc->lc->env->idle_timeout);
		smtp_session_rcpt_done(sc->s, &j->res1);
		smtp_job_free(j);
		smtp_conn_feed(sc);
		return;
	}
	smtp_job_free(j);
}

static struct smtp_job *
smtp_job_new(struct smtp_conn *sc, enum smtp_job_kind kind)
{
	struct smtp_job *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->sc = sc;
	j->gen = sc->gen;
	net_gen_ref(j->gen);
	j->id = sc->id;
	j->sink = sc->lc->sink;
	sc->job = j;
	/* A 421 over a pending delivery would make the client send it
	 * again: no idle timer until the job is back. */
	conn_set_timeout(sc->conn, 0);
	return j;
}

static enum smtp_op_status
smtp_op_rcpt_check(void *ctx, const struct smtp_envelope *env,
    const char *addr, struct smtp_result *res)
{
	struct smtp_conn *sc = ctx;
	struct smtp_job *j;

	(void)env;
	(void)res;
	conn_info_command(sc->conn, "RCPT");
	j = smtp_job_new(sc, SMTP_JOB_RCPT);
	j->addr = xstrdup(addr);
	workq_submit(sc->lc->env->rt->wq, smtp_rcpt_work, smtp_rcpt_done, j);
	return SMTP_OP_PENDING;
}

/* ---- DATA ---- */

static bool
smtp_op_data_begin(void *ctx, const struct smtp_envelope *env,
    struct smtp_result *res)
{
	struct smtp_conn *sc = ctx;

	(void)env;
	(void)res;
	conn_info_command(sc->conn, "DATA");
	conn_info_state(sc->conn, "data");
	sc->body_len = 0;
	return true;
}

static bool
smtp_op_data_write(void *ctx, const char *bytes, size_t len)
{
	struct smtp_conn *sc = ctx;

	/* The engine stops at SIZE; this is the backstop. */
	if (len > DELIVER_MAX_SIZE - sc->body_len)
		return false;
	if (sc->body_len + len > sc->body_cap) {
		size_t cap = sc->body_cap != 0 ? sc->body_cap : 64 * 1024;

		while (cap < sc->body_len + len)
			cap *= 2;
		sc->body = xreallocarray(sc->body, cap, 1);
		sc->body_cap = cap;
	}
	memcpy(sc->body + sc->body_len, bytes, len);
	sc->body_len += len;
	return true;
}

static void
smtp_op_data_abort(void *ctx)
{
	struct smtp_conn *sc = ctx;

	free(sc->body);
	sc->body = NULL;
	sc->body_len = sc->body_cap = 0;
	conn_info_state(sc->conn, "ready");
}

static void
smtp_result_from_status(struct smtp_result *r, enum deliver_status st,
    const char *err)
{
	switch (st) {
	case DELIVER_OK:
		smtp_result_set(r, 250, "2.0.0", "delivered");
		break;
	case DELIVER_NO_USER:
		smtp_result_set(r, 550, "5.1.1", "no such user here");
		break;
	case DELIVER_TEMP:
		smtp_result_set(r, 451, "4.3.0", err[0] != '\0' ? err :
		    "temporary failure, try again later");
		break;
	case DELIVER_PERM:
		smtp_result_set(r, 550, "5.2.0", "mailbox unusable");
		break;
	case DELIVER_BAD_MSG:
		smtp_result_set(r, 554, "5.6.0", "malformed message");
		break;
	case DELIVER_TOO_BIG:
		smtp_result_set(r, 552, "5.3.4", "message too large");
		break;
	}
}

static enum deliver_status
smtp_deliver_sink_new(const struct smtp_job *j,
    const struct deliver_spool *sp, const char *rcpt, char *err,
    size_t errsz)
{
	const struct posuto_config *cfg = j->gen->cfg;
	struct userdb_entry e;
	char name[256], *loc = NULL;
	const char *why = NULL;
	enum deliver_status st;

	if (!smtp_sink_name(rcpt, name, sizeof(name)))
		return DELIVER_NO_USER;
	if (!smtp_sink_entry(cfg, name, &e, &loc, &why)) {
		(void)snprintf(err, errsz, "%s", why != NULL ? why : "?");
		return DELIVER_PERM;
	}
	st = deliver_to_entry(sp, j->sender, rcpt, &e, NULL, 0, err, errsz);
	free(loc);
	/* Mail first: a user whose entry could not be written still has
	 * the message, and the next mail to it tries again. */
	if (st == DELIVER_OK && !smtp_sink_add_user(cfg, name, err, errsz)) {
		log_warnx("session=%llx sink: user %s not created: %s",
		    (unsigned long long)j->id, name, err);
		err[0] = '\0';
	} else if (st == DELIVER_OK) {
		log_info("session=%llx sink: created user %s",
		    (unsigned long long)j->id, name);
	}
	return st;
}

static void
smtp_data_work(void *arg)
{
	struct smtp_job *j = arg;
	const struct userdb *db = j->gen->userdb;
	struct deliver_spool *sp = NULL;
	enum deliver_status st;
	char err[256] = "";

	/* the spool takes the body: no copy through a temporary file */
	st = deliver_spool_take(j->body, j->body_len, &sp, err, sizeof(err));
	j->body = NULL;
	for (size_t i = 0; i < j->n_rcpts; i++) {
		const char *rcpt = j->rcpts[i];

		if (sp != NULL) {
			err[0] = '\0';
			st = deliver_one(db, sp, j->sender, rcpt, err,
			    sizeof(err));
			if (st == DELIVER_NO_USER && j->sink &&
			    j->gen->cfg->sink_creates_users)
				st = smtp_deliver_sink_new(j, sp, rcpt, err,
				    sizeof(err));
		}
		smtp_result_from_status(&j->res[i], st, err);
		log_info("session=%llx %s to=<%s> from=<%s> %s%s%s",
		    (unsigned long long)j->id, j->sink ? "sink" : "lmtp", rcpt,
		    j->sender, deliver_status_str(st), err[0] != '\0' ?
		    ": " : "", err);
	}
	deliver_spool_free(&sp);
}

static void
smtp_data_done_cb(void *arg)
{
	struct smtp_job *j = arg;
	struct smtp_conn *sc = j->sc;

	if (sc != NULL) {
		sc->job = NULL;
		conn_set_timeout(sc->conn, sc->lc->env->idle_timeout);
		conn_info_state(sc->conn, "ready");
		smtp_session_data_done(sc->s, j->res, j->n_rcpts);
		smtp_job_free(j);
		smtp_conn_feed(sc);
		return;
	}
	smtp_job_free(j);
}

static enum smtp_op_status
smtp_op_data_done(void *ctx, const struct smtp_envelope *env,
    struct smtp_result *res)
{
	struct smtp_conn *sc = ctx;
	struct smtp_job *j;

	(void)res;
	j = smtp_job_new(sc, SMTP_JOB_DATA);
	j->sender = xstrdup(env->mail_from);
	j->n_rcpts = env->n_rcpts;
	j->rcpts = xcalloc(env->n_rcpts + 1, sizeof(*j->rcpts));
	for (size_t i = 0; i < env->n_rcpts; i++)
		j->rcpts[i] = xstrdup(env->rcpts[i]);
	j->res = xcalloc(env->n_rcpts + 1, sizeof(*j->res));
	j->body = sc->body;
	j->body_len = sc->body_len;
	sc->body = NULL;
	sc->body_len = sc->body_cap = 0;
	conn_info_state(sc->conn, "delivering");
	workq_submit(sc->lc->env->rt->ioq != NULL ? sc->lc->env->rt->ioq :
	    sc->lc->env->rt->wq, smtp_data_work, smtp_data_done_cb, j);
	return SMTP_OP_PENDING;
}

/* ---- the connection ---- */

static void
smtp_op_reply(void *ctx, const char *text, size_t len)
{
	struct smtp_conn *sc = ctx;

	evbuffer_add(conn_out(sc->conn), text, len);
}

static void
smtp_op_close(void *ctx)
{
	struct smtp_conn *sc = ctx;

	sc->closing = true;
}

static const struct smtp_session_ops smtp_conn_ops = {
	.reply = smtp_op_reply,
	.rcpt_check = smtp_op_rcpt_check,
	.data_begin = smtp_op_data_begin,
	.data_write = smtp_op_data_write,
	.data_done = smtp_op_data_done,
	.data_abort = smtp_op_data_abort,
	.close = smtp_op_close,
};

static void
smtp_conn_end(struct smtp_conn *sc, const char *reason)
{
	struct smtp_env *env = sc->lc->env;

	if (sc->ended)
		return;
	sc->ended = true;
	log_info("session=%llx end reason=%s", (unsigned long long)sc->id,
	    reason);
	/* A job under way finishes; its completion finds no session. */
	if (sc->job != NULL)
		sc->job->sc = NULL;
	sc->job = NULL;
	smtp_session_free(&sc->s);
	if (sc->prev != NULL)
		sc->prev->next = sc->next;
	else
		env->sessions = sc->next;
	if (sc->next != NULL)
		sc->next->prev = sc->prev;
	conn_free(&sc->conn);
	net_gen_unref(&sc->gen);
	free(sc->body);
	free(sc);
}

/* Offers the input to the engine until it blocks, closes or runs dry. */
static void
smtp_conn_feed(struct smtp_conn *sc)
{
	struct evbuffer *in = conn_in(sc->conn);

	while (!sc->closing && !smtp_session_blocked(sc->s)) {
		struct evbuffer_iovec v;
		size_t used;

		if (conn_out_pending(sc->conn) > SMTP_CONN_OUT_HIGH) {
			conn_want_drained(sc->conn, SMTP_CONN_OUT_HIGH / 2);
			return;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		used = smtp_session_input(sc->s, v.iov_base, v.iov_len);
		evbuffer_drain(in, used);
		if (used < v.iov_len)
			break;
	}
	if (sc->closing || smtp_session_closed(sc->s) ||
	    (sc->peer_gone && !smtp_session_blocked(sc->s))) {
		sc->closing = true;
		if (conn_out_dead(sc->conn) || conn_out_pending(sc->conn) == 0) {
			smtp_conn_end(sc, sc->peer_gone ? "disconnected" :
			    "quit");
			return;
		}
		conn_want_drained(sc->conn, 0);
	}
}

static void
smtp_conn_on_event(struct conn *c, enum conn_event ev, void *ctx)
{
	struct smtp_conn *sc = ctx;

	(void)c;
	switch (ev) {
	case CONN_EV_READ:
	case CONN_EV_TLS_READY:
		smtp_conn_feed(sc);
		break;
	case CONN_EV_DRAINED:
		if (sc->closing) {
			smtp_conn_end(sc, sc->peer_gone ? "disconnected" :
			    "quit");
			return;
		}
		smtp_conn_feed(sc);
		break;
	case CONN_EV_TIMEOUT:
		if (sc->job != NULL)
			break;		/* never over a delivery under way */
		if (sc->closing || conn_out_pending(sc->conn) > 0 ||
		    conn_out_dead(sc->conn)) {
			smtp_conn_end(sc, "timeout");
			return;
		}
		smtp_session_timeout(sc->s);
		sc->closing = true;
		conn_want_drained(sc->conn, 0);
		break;
	case CONN_EV_CLOSED:
		sc->peer_gone = true;
		/* Commands sent before the close still count: a pipelined
		 * transaction ending in QUIT is delivered. */
		if (sc->job != NULL)
			break;		/* its completion resumes */
		if (conn_out_dead(sc->conn)) {
			smtp_conn_end(sc, "disconnected");
			return;
		}
		smtp_conn_feed(sc);
		break;
	}
}

static bool
smtp_conn_start(void *ctx, struct conn *c)
{
	struct smtp_listen *lc = ctx;
	struct smtp_env *env = lc->env;
	struct smtp_session_params p;
	struct smtp_conn *sc;

	sc = xcalloc(1, sizeof(*sc));
	sc->lc = lc;
	sc->conn = c;
	sc->id = conn_id(c);
	sc->gen = net_runtime_gen(env->rt);
	net_gen_ref(sc->gen);
	memset(&p, 0, sizeof(p));
	p.mode = lc->sink ? SMTP_MODE_SINK : SMTP_MODE_LMTP;
	p.hostname = sc->gen->cfg->hostname;
	p.max_size = lc->max_size;
	/* A unix socket is as local as loopback. */
	p.peer_loopback = conn_client_local(c) ||
	    conn_client_addr(c)->ss_family == AF_UNIX ||
	    !lc->sink || lc->allow_remote;
	sc->s = smtp_session_new(&p, &smtp_conn_ops, sc);
	sc->next = env->sessions;
	if (sc->next != NULL)
		sc->next->prev = sc;
	env->sessions = sc;
	conn_set_handler(c, smtp_conn_on_event, sc);
	conn_set_timeout(c, env->idle_timeout);
	conn_info_state(c, "ready");
	log_info("session=%llx %s connect from=%s", (unsigned long long)sc->id,
	    lc->sink ? "smtp-sink" : "lmtp", conn_client(c));
	smtp_session_start(sc->s);
	return true;
}

static const struct net_protocol smtp_lmtp_protocol = {
	.name = "lmtp",
	.start = smtp_conn_start,
};

static const struct net_protocol smtp_sink_protocol = {
	.name = "smtp-sink",
	.start = smtp_conn_start,
};

void
smtp_register(void)
{
	if (!net_protocol_register(&smtp_lmtp_protocol) ||
	    !net_protocol_register(&smtp_sink_protocol))
		fatalx("cannot register protocols lmtp and smtp-sink");
}

void
smtp_close_all(struct smtp_env *env)
{
	while (env->sessions != NULL)
		smtp_conn_end(env->sessions, "shutdown");
}
