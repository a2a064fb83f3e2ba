/* server.c - startup, listeners, SIGHUP reload, SIGUSR1 dump, graceful
 * stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "auth/passwd.h"
#include "auth/sasl.h"
#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/admin.h"
#include "daemon/filewatch.h"
#include "daemon/privdrop.h"
#include "daemon/server.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/iplimit.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/runtime.h"
#include "net/tls.h"
#include "net/workq.h"
#include "sql/sql.h"
#include "store/store.h"
#include "store/store_lock.h"
#include "pop3/pop3_policy.h"
#include "pop3/pop3_session.h"
#include "smtp/smtp_conn.h"

/* Deliveries in flight at once (rt->ioq): bounded, and well above the
 * CPU count, since each mostly waits for its fsyncs. */
#define SERVER_DELIVERY_THREADS	16

/*
 * One event loop (net/loop.h) and what its sessions use: its own POP3
 * and LMTP contexts, touched by its thread only (a reload hands it the
 * new settings there, server_loop_apply).
 */
struct server_loop {
	struct server *srv;
	struct net_loop *loop;
	struct event_base *base;
	struct pop3_env env;		/* env.rt == srv->rt */
	struct smtp_env smtp_env;	/* LMTP's and the sink's */
	struct event *idle_check;	/* stopping: drained yet? */
	bool drained;
};

/* One loop's side of a listening socket. */
struct server_accept {
	struct server_listener *l;
	struct server_loop *sl;
	struct evconnlistener *lev;
	struct event *retry;		/* re-enable after EMFILE */
	struct net_listener *nl;	/* what it serves (owned by rt) */
	struct smtp_listen smtp;	/* LMTP, sink: the protocol context */
};

/*
 * A listening socket: one, whatever the number of loops, and every loop
 * has its own evconnlistener on it; the kernel wakes the loops waiting
 * in epoll and whichever accept()s first serves the connection, so an
 * idle loop takes it.  Not one SO_REUSEPORT socket per loop: any process
 * of the same user could then join the port's group and take a share of
 * the connections, closing one loop's socket at a reload would drop the
 * connections queued on it, and the kernel's hash picks a loop however
 * busy it is.  The cost is a wakeup that finds nothing (EAGAIN) in the
 * other waiting loops, a few microseconds per connection.
 */
struct server_listener {
	struct server *srv;
	int fd;				/* -1 once closed */
	struct server_accept *acc;	/* [srv->n_loops] */
	/* What it was opened for; its strings are the generation's that
	 * last matched it (kept alive by server_listener_update). */
	struct listen_cfg lc;
	char name[80];
};

struct server {
	const struct server_opts *opts;
	/* The current generation's (rt->gen->cfg), kept at hand. */
	struct posuto_config *cfg;
	struct net_runtime *rt;
	/* POP3's settings as loaded (each loop copies them) and the
	 * expiry job, which runs on the main thread; env.rt == rt. */
	struct pop3_env env;
	struct server_loop *loops;	/* [0]: the main thread's */
	unsigned n_loops;
	atomic_uint n_pop3;		/* POP3 sessions on every loop */
	atomic_uint loops_live;		/* stopping: loops not drained */
	unsigned cfg_event_loops;	/* EventLoops at startup */
	struct server_listener **ls;
	size_t n_ls;
	struct server_listener **retired;	/* closed, freed at the end */
	size_t n_retired;
	struct event *sig_term, *sig_int, *sig_hup, *sig_usr1;
	struct filewatch *watch;	/* reload when the files change */
	struct admin *admin;		/* the web admin, or NULL */
	struct event *admin_tick;
	bool stopping;
};

/* The generation holds the users as an opaque pointer (net does not see
 * auth): this is how it lets go of them. */
static void
server_userdb_unref(void *db)
{
	struct userdb *u = db;

	userdb_unref(&u);
}

static void
server_apply_params(struct server *srv)
{
	const struct posuto_config *cfg = srv->cfg;
	struct pop3_params *p = &srv->env.params;

	p->idle_timeout = cfg->idle_timeout;
	p->session_timeout = cfg->session_timeout;
	p->auth_fail_delay_ms = cfg->auth_fail_delay_ms;
	p->max_bad_commands = cfg->max_bad_commands;
	p->max_connections = cfg->max_connections;
	p->max_connections_per_ip = cfg->max_connections_per_ip;
	p->line_timeout = cfg->line_timeout;
	p->max_connect_rate_per_ip = cfg->max_connect_rate_per_ip;
	p->limit_loopback = cfg->limit_loopback;
	p->allow_plaintext_auth = cfg->allow_plaintext_auth;
	p->sasl_mechs_set = cfg->sasl_mechanisms_set;
	/* checked by server_load_runtime() */
	(void)sasl_mechs_from_config(cfg, &p->sasl_mechs, NULL);
	store_wire_configure(cfg->wire_cache_min_size);
	store_mbox_configure(cfg->mbox_state_dir);
	store_uidl_configure(cfg);
	{
		char err[SQL_ERR_MAX];

		/* the old database stays if the new one cannot be read */
		if (!store_tpops_configure(&cfg->sql, err, sizeof(err)))
			log_error("Sql (tpops store): %s", err);
	}
	store_sql_configure(&cfg->sql);
	store_drift_configure(cfg->uidl_drift);
	log_set_level(cfg->log_level);
	if (cfg->hostname != NULL)
		snprintf(srv->env.hostname, sizeof(srv->env.hostname), "%s",
		    cfg->hostname);
	else if (gethostname(srv->env.hostname, sizeof(srv->env.hostname)) != 0)
		snprintf(srv->env.hostname, sizeof(srv->env.hostname), "localhost");
}

static void server_problem(FILE *errs, const char *fmt, ...)
    LOG_PRINTF(2, 3);

static void
server_problem(FILE *errs, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (errs != NULL)
		fprintf(errs, "%s\n", msg);
	else
		log_error("%s", msg);
}

bool
server_load_runtime(const struct posuto_config *cfg, bool startup,
    FILE *errs, struct userdb **db_r, struct tls_ctx **tls_r)
{
	char err[512], where[600];
	unsigned mechs;
	bool ok = true;

	*tls_r = NULL;
	*db_r = NULL;
	if (startup && !cfg->enabled) {
		config_where(cfg, "Pop3Server.Enabled", where, sizeof(where));
		server_problem(errs, "%s: is false; serve will not start",
		    where);
		ok = false;
	}
	/* Before binding, and whoever we run as: a RunAsUser that does not
	 * exist is a mistake in the file either way. */
	if (startup && cfg->run_as_user != NULL &&
	    getpwnam(cfg->run_as_user) == NULL) {
		config_where(cfg, "Pop3Server.RunAsUser", where, sizeof(where));
		server_problem(errs, "%s: no such user \"%s\"", where,
		    cfg->run_as_user);
		ok = false;
	}
	*db_r = userdb_load(cfg, errs != NULL ? errs : stderr);
	if (*db_r == NULL)
		ok = false;
	if (!sasl_mechs_from_config(cfg, &mechs, errs != NULL ? errs : stderr))
		ok = false;
	if (cfg->admin.enabled && cfg->admin.password_hash != NULL) {
		const char *why = NULL;

		if (!passwd_stored_valid(cfg->admin.password_hash, &why)) {
			config_where(cfg, "Admin.PasswordHash", where,
			    sizeof(where));
			server_problem(errs, "%s: %s (make one with `posuto "
			    "admin passwd`)", where, why != NULL ? why :
			    "not a usable hash");
			ok = false;
		}
	}
	if (cfg->tls.cert_file != NULL) {
		const char *key = NULL;
		char kp[64];

		*tls_r = tls_ctx_new(&cfg->tls, err, sizeof(err), &key);
		if (*tls_r == NULL) {
			(void)snprintf(kp, sizeof(kp), "Pop3Server.Tls%s%s",
			    key != NULL ? "." : "", key != NULL ? key : "");
			config_where(cfg, kp, where, sizeof(where));
			server_problem(errs, "%s: %s", where, err);
			ok = false;
		}
	}
	if (!ok) {
		userdb_unref(db_r);
		tls_ctx_unref(tls_r);
	}
	return ok;
}

static void
server_on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct server_accept *a = arg;

	(void)lev;
	(void)net_listener_accept(a->nl, fd, fd, sa, (socklen_t)salen);
}

static void
server_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct server_accept *a = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(a->lev);
}

static void
server_on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct server_accept *a = arg;
	struct timeval tv = { .tv_sec = 1 };

	/* EMFILE/ENFILE: stop accepting for a moment instead of spinning. */
	log_warn("accept on %s", a->l->name);
	evconnlistener_disable(lev);
	evtimer_add(a->retry, &tv);
}

static bool
server_str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The same socket: a reload keeps it open (and its sessions with it). */
static bool
server_listen_same(const struct listen_cfg *a, const struct listen_cfg *b)
{
	return a->protocol == b->protocol && a->tls == b->tls &&
	    a->port == b->port && server_str_eq(a->address, b->address) &&
	    server_str_eq(a->path, b->path) &&
	    server_str_eq(a->mode, b->mode) &&
	    server_str_eq(a->owner, b->owner) &&
	    server_str_eq(a->group, b->group) &&
	    server_str_eq(a->proxy_trusted, b->proxy_trusted);
}

/* What may change on a kept socket: its LMTP/sink context is updated by
 * each loop (server_loop_apply). */
static void
server_listener_update(struct server_listener *l, const struct listen_cfg *lc)
{
	l->lc = *lc;
}

/*
 * On a's loop: its listener on the shared socket, through a descriptor
 * of its own (a dup), which it alone closes, on its own thread: with
 * EPOLL_USE_CHANGELIST the loop's epoll_ctl(DEL) runs only when its
 * callback returns, so a descriptor another thread closed meanwhile
 * could have been reused by then.  The socket closes with the last of
 * them.  Backlog 0: the socket already listens with LISTEN_BACKLOG (-1
 * would make libevent listen() again with 128).
 */
static void
server_accept_attach(void *arg)
{
	struct server_accept *a = arg;
	int fd = fcntl(a->l->fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return;
	a->lev = evconnlistener_new(a->sl->base, server_on_accept, a,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (a->lev == NULL) {
		close(fd);
		return;
	}
	evconnlistener_set_error_cb(a->lev, server_on_accept_error);
	a->retry = evtimer_new(a->sl->base, server_on_retry, a);
}

/* On a's loop: stops accepting there (the socket stays). */
static void
server_accept_detach(void *arg)
{
	struct server_accept *a = arg;

	if (a->lev != NULL)
		evconnlistener_free(a->lev);
	if (a->retry != NULL)
		event_free(a->retry);
	a->lev = NULL;
	a->retry = NULL;
}

static void server_listener_close(struct server *srv,
    struct server_listener *l);

static struct server_listener *
server_listener_open(struct server *srv, const struct listen_cfg *lc)
{
	static const char *const proto_names[] = {
		[LISTEN_PROTO_POP3] = "pop3",
		[LISTEN_PROTO_LMTP] = "lmtp",
		[LISTEN_PROTO_SMTP_SINK] = "smtp-sink",
	};
	const char *proto = proto_names[lc->protocol];
	struct server_listener *l;
	char err[256];
	int fd = lc->path != NULL ?
	    listener_open_unix(lc->path, lc->mode, lc->owner, lc->group,
	    err, sizeof(err)) :
	    listener_open(lc->address, lc->port, err, sizeof(err));

	if (fd < 0) {
		log_error("%s", err);
		return NULL;
	}
	/* Each on its own: sessions keep a pointer to its smtp contexts,
	 * so they outlive its socket (srv->retired) until the end. */
	l = xcalloc(1, sizeof(*l));
	l->srv = srv;
	l->fd = fd;
	server_listener_update(l, lc);
	if (lc->path != NULL)
		snprintf(l->name, sizeof(l->name), "%s (%s)", lc->path,
		    proto);
	else
		snprintf(l->name, sizeof(l->name), "%s port %u%s%s%s",
		    lc->address, lc->port, lc->tls == LISTEN_TLS_IMPLICIT ?
		    " (TLS)" : "", lc->protocol != LISTEN_PROTO_POP3 ?
		    " " : "", lc->protocol != LISTEN_PROTO_POP3 ?
		    proto : "");
	l->acc = xcalloc(srv->n_loops, sizeof(*l->acc));
	for (unsigned i = 0; i < srv->n_loops; i++) {
		struct server_accept *a = &l->acc[i];
		void *ctx = &srv->loops[i].env;

		a->l = l;
		a->sl = &srv->loops[i];
		if (lc->protocol != LISTEN_PROTO_POP3) {
			a->smtp.env = &a->sl->smtp_env;
			a->smtp.sink = lc->protocol == LISTEN_PROTO_SMTP_SINK;
			a->smtp.max_size = lc->max_message_size;
			a->smtp.allow_remote = lc->allow_non_loopback;
			ctx = &a->smtp;
		}
		a->nl = net_listener_new(srv->rt, proto, ctx,
		    lc->tls == LISTEN_TLS_IMPLICIT ? NET_TLS_IMPLICIT :
		    lc->tls == LISTEN_TLS_STARTTLS ? NET_TLS_STARTTLS :
		    NET_TLS_NONE, l->name);
		if (a->nl == NULL)
			fatalx("protocol %s not registered", proto);
		a->nl->base = a->sl->base;
		/* checked with the config */
		if (lc->proxy_trusted != NULL &&
		    !net_listener_trust_proxy(a->nl, lc->proxy_trusted))
			fatalx("ProxyTrusted did not parse");
	}
	return l;
}

/*
 * Every loop starts accepting on l.  Apart from server_listener_open(),
 * so that a reload binds every new socket first (any failure leaves all
 * as it was) and only serves them once the old ones are closed: no
 * client is greeted on a new port while the old one still answers.
 * False (l closed, retired) if a loop could not.
 */
static bool
server_listener_start(struct server *srv, struct server_listener *l)
{
	bool ok = true;

	for (unsigned i = 0; i < srv->n_loops; i++) {
		net_loop_call(srv->loops[i].loop, server_accept_attach,
		    &l->acc[i]);
		ok = ok && l->acc[i].lev != NULL;
	}
	if (!ok) {
		log_error("cannot set up listener %s", l->name);
		server_listener_close(srv, l);
		return false;
	}
	log_info("listening on %s", l->name);
	return true;
}

/* Closes l's socket; sessions it accepted go on (their own sockets). */
static void
server_listener_close(struct server *srv, struct server_listener *l)
{
	/* Each loop closes its own descriptor (server_accept_attach). */
	for (unsigned i = 0; i < srv->n_loops; i++)
		net_loop_call(srv->loops[i].loop, server_accept_detach,
		    &l->acc[i]);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	srv->retired = xreallocarray(srv->retired, srv->n_retired + 1,
	    sizeof(*srv->retired));
	srv->retired[srv->n_retired++] = l;
}

static int
server_listen(struct server *srv)
{
	const struct posuto_config *cfg = srv->cfg;

	srv->ls = xcalloc(cfg->n_listens, sizeof(*srv->ls));
	for (size_t i = 0; i < cfg->n_listens; i++) {
		struct server_listener *l =
		    server_listener_open(srv, &cfg->listens[i]);

		if (l == NULL || !server_listener_start(srv, l))
			return -1;
		srv->ls[srv->n_ls++] = l;
	}
	atomic_store(&srv->rt->listening, (unsigned)srv->n_ls);
	return 0;
}

/*
 * A reload's listeners: sockets in both configurations stay open (their
 * sessions never notice), new ones are bound first, and only when every
 * one of them is bound are the sockets no longer configured closed.
 * False (nothing changed) if one cannot be bound.
 */
static bool
server_relisten(struct server *srv, const struct posuto_config *cfg)
{
	struct server_listener **nls = xcalloc(cfg->n_listens, sizeof(*nls));
	bool *kept = xcalloc(srv->n_ls + 1, sizeof(*kept));
	bool *fresh = xcalloc(cfg->n_listens + 1, sizeof(*fresh));
	size_t n = 0, m = 0;

	for (size_t i = 0; i < cfg->n_listens; i++) {
		const struct listen_cfg *lc = &cfg->listens[i];
		struct server_listener *l = NULL;

		for (size_t j = 0; j < srv->n_ls && l == NULL; j++)
			if (!kept[j] && server_listen_same(&srv->ls[j]->lc, lc)) {
				kept[j] = true;
				l = srv->ls[j];
			}
		if (l == NULL)
			fresh[n] = (l = server_listener_open(srv, lc)) != NULL;
		if (l == NULL) {
			/* Undo: the new sockets go, the old ones stay. */
			for (size_t k = 0; k < n; k++) {
				bool old = false;

				for (size_t j = 0; j < srv->n_ls; j++)
					old = old || srv->ls[j] == nls[k];
				if (!old)
					server_listener_close(srv, nls[k]);
			}
			free(nls);
			free(kept);
			free(fresh);
			return false;
		}
		nls[n++] = l;
	}
	for (size_t j = 0; j < srv->n_ls; j++) {
		if (!kept[j]) {
			log_info("no longer listening on %s", srv->ls[j]->name);
			server_listener_close(srv, srv->ls[j]);
		}
	}
	/* The kept ones take the new per-listener settings; the new ones
	 * start serving now that the old are closed (a loop that cannot
	 * is logged, and its socket goes). */
	for (size_t i = 0; i < n; i++) {
		server_listener_update(nls[i], &cfg->listens[i]);
		if (!fresh[i] || server_listener_start(srv, nls[i]))
			nls[m++] = nls[i];
	}
	n = m;
	free(srv->ls);
	free(kept);
	free(fresh);
	srv->ls = nls;
	srv->n_ls = n;
	atomic_store(&srv->rt->listening, (unsigned)n);
	return true;
}

static void
server_close_listeners(struct server *srv)
{
	for (size_t i = 0; i < srv->n_ls; i++)
		server_listener_close(srv, srv->ls[i]);
	free(srv->ls);
	srv->ls = NULL;
	srv->n_ls = 0;
	atomic_store(&srv->rt->listening, 0u);
}

/* At the very end: no session is left to use a listener's context. */
static void
server_free_retired(struct server *srv)
{
	for (size_t i = 0; i < srv->n_retired; i++) {
		free(srv->retired[i]->acc);
		free(srv->retired[i]);
	}
	free(srv->retired);
	srv->retired = NULL;
	srv->n_retired = 0;
}

/*
 * Stopping, on each loop: once its sessions, their jobs and lingering
 * close_notifys are gone (the last are bounded, TLS_SHUTDOWN_TIMEOUT),
 * a loop thread ends its loop; the main thread's ends last, when every
 * other has.
 */
static void
server_on_idle_check(evutil_socket_t fd, short what, void *arg)
{
	struct server_loop *sl = arg;
	struct server *srv = sl->srv;

	(void)fd;
	(void)what;
	if (!sl->drained && (sl->env.n_sessions != 0 ||
	    workq_pending(srv->rt->wq) != 0 ||
	    workq_pending(srv->rt->ioq) != 0 || conn_lingering() != 0))
		return;
	if (net_loop_index(sl->loop) == 0) {
		if (atomic_load(&srv->loops_live) == 0)
			event_base_loopbreak(sl->base);
		return;
	}
	if (sl->drained)
		return;
	sl->drained = true;
	/* What the main thread does for its own after its loop ends. */
	pop3_session_close_all(&sl->env);
	smtp_close_all(&sl->smtp_env);
	conn_lingering_free_all();
	atomic_fetch_sub(&srv->loops_live, 1);
	event_base_loopbreak(sl->base);
}

/* On each loop: its sessions end; the loop ends once they have. */
static void
server_loop_stop(void *arg)
{
	struct server_loop *sl = arg;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 50000 };

	/* Sessions end without UPDATE: no message is deleted. A QUIT whose
	 * expunge is running finishes first. */
	pop3_session_close_all(&sl->env);
	sl->idle_check = event_new(sl->base, -1, EV_PERSIST,
	    server_on_idle_check, sl);
	event_add(sl->idle_check, &tv);
}

static void
server_stop(struct server *srv, const char *why)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	srv->rt->shutting_down = true;
	log_info("stopping: %s", why);
	filewatch_free(&srv->watch);
	server_close_listeners(srv);
	pop3_policy_expiry_stop(&srv->env);
	if (srv->admin_tick != NULL)
		event_del(srv->admin_tick);
	for (unsigned i = 0; i < srv->n_loops; i++)
		net_loop_call(srv->loops[i].loop, server_loop_stop,
		    &srv->loops[i]);
}

/* SIGUSR1: the counters and every live session, to the log. */
static void
server_on_usr1(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)sig;
	(void)what;
	net_runtime_log(srv->rt, true);
}

static void
server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	server_stop(srv, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* The files whose change means a reload (posuto user, an editor). */
static void
server_watch_set(struct server *srv)
{
	const char *paths[] = { srv->opts->config_path, srv->cfg->passwd_file };

	if (srv->watch != NULL)
		filewatch_set(srv->watch, paths, 2);
}

/*
 * On each loop (the main thread waits): the settings just loaded, the
 * current generation, and the per-listener LMTP/sink settings.  The
 * main thread is blocked in net_loop_call() meanwhile, so what it owns
 * (srv->env, srv->ls) holds still while read here.
 */
static void
server_loop_apply(void *arg)
{
	struct server_loop *sl = arg;
	struct server *srv = sl->srv;
	unsigned i = net_loop_index(sl->loop);

	sl->env.params = srv->env.params;
	memcpy(sl->env.hostname, srv->env.hostname, sizeof(sl->env.hostname));
	sl->smtp_env.idle_timeout = srv->cfg->idle_timeout;
	net_runtime_loop_adopt_gen(srv->rt, i);
	for (size_t k = 0; k < srv->n_ls; k++) {
		struct server_accept *a = &srv->ls[k]->acc[i];

		a->smtp.max_size = srv->ls[k]->lc.max_message_size;
		a->smtp.allow_remote = srv->ls[k]->lc.allow_non_loopback;
	}
}

static void
server_loops_apply(struct server *srv)
{
	for (unsigned i = 0; i < srv->n_loops; i++)
		net_loop_call(srv->loops[i].loop, server_loop_apply,
		    &srv->loops[i]);
}

static bool
server_reload(struct server *srv, const char *why)
{
	struct posuto_config *cfg;
	struct userdb *db;
	struct tls_ctx *tls;

	log_info("%s: reloading %s", why, srv->opts->config_path);
	if (config_load(srv->opts->config_path, &cfg, stderr) != 0) {
		log_error("reload failed; keeping the running configuration");
		return false;
	}
	if (!server_load_runtime(cfg, false, NULL, &db, &tls)) {
		log_error("reload failed; keeping the running configuration");
		config_free(&cfg);
		return false;
	}
	/* Listeners first: a port that cannot be bound keeps everything
	 * as it was. */
	if (!srv->opts->inetd && !srv->stopping &&
	    !server_relisten(srv, cfg)) {
		log_error("reload failed (a listener cannot be bound); keeping "
		    "the running configuration");
		userdb_unref(&db);
		tls_ctx_unref(&tls);
		config_free(&cfg);
		return false;
	}
	if (tls == NULL && srv->rt->gen->tls != NULL) {
		log_warnx("Tls removed from the config: STLS/POP3S stay on the "
		    "old certificate until restart");
		tls = srv->rt->gen->tls;
		tls_ctx_ref(tls);
	}
	/* Sessions hold their locks in the open file: switching now would
	 * let a process on the new file into a mailbox in use here. */
	if ((cfg->lock_file == NULL) != (srv->cfg->lock_file == NULL) ||
	    (cfg->lock_file != NULL &&
	    strcmp(cfg->lock_file, srv->cfg->lock_file) != 0))
		log_warnx("LockFile changes take effect on restart");
	/* The old generation goes once nobody holds it (its cfg with it). */
	net_runtime_set_gen(srv->rt, net_gen_new(cfg, db, server_userdb_unref,
	    tls));
	srv->cfg = cfg;
	server_apply_params(srv);
	if (cfg->event_loops != srv->cfg_event_loops)
		log_warnx("EventLoops changes take effect on restart");
	server_loops_apply(srv);
	admin_reloaded(srv->admin, cfg);
	if (srv->env.expiry != NULL)
		pop3_policy_expiry_configure(&srv->env, cfg->expire_interval);
	server_watch_set(srv);
	log_info("reload done");
	return true;
}

static bool
server_admin_reload(void *arg)
{
	return server_reload(arg, "web admin");
}

static void
server_on_admin_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	admin_tick(srv->admin);
}

static void
server_on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)server_reload(arg, "SIGHUP");
}

static void
server_on_change(void *arg)
{
	(void)server_reload(arg, "config or passwd-file changed");
}

static bool
stderr_is_connection(void)
{
	struct stat a, b;

	return fstat(0, &a) == 0 && fstat(2, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino && S_ISSOCK(a.st_mode);
}

/*
 * The lock file that keeps other posuto processes (a second daemon,
 * inetd-mode instances, `posuto user del`) out of the mailboxes in use
 * here, and us out of theirs.  The daemon opens it before the privilege
 * drop (the default is in /run) and keeps it; it is handed to RunAsUser so
 * that inetd-mode instances running as that user can open it too.
 */
bool
server_lock_file_open(const struct posuto_config *cfg, char *err,
    size_t errsz)
{
	char def[PATH_MAX], why[256];
	const char *path = cfg->lock_file;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (path == NULL)
		path = store_lock_default_path(def, sizeof(def));
	if (cfg->run_as_user != NULL && geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->run_as_user);

		if (pw != NULL) {
			uid = pw->pw_uid;
			gid = pw->pw_gid;
		}
	}
	if (!store_lock_file_open(path, uid, gid, why, sizeof(why))) {
		(void)snprintf(err, errsz, "LockFile %s%s: %s", path,
		    cfg->lock_file == NULL ? " (the default)" : "", why);
		return false;
	}
	log_debug("mailbox lock file %s", path);
	return true;
}

/*
 * The client of an --inetd session.  A TCP socket on stdin names it itself
 * (conn looks it up).  Behind a pipe or a local socket only the UCSPI
 * server that accepted the connection knows it, and says so with PROTO=TCP,
 * TCPREMOTEIP and TCPREMOTEPORT (tcpserver(1)); without PROTO=TCP these
 * variables are someone else's and are ignored.  Returns false when the
 * peer is to be looked up (or stays "stdin").
 */
static bool
server_inetd_peer(struct sockaddr_storage *ss, socklen_t *len_r)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	socklen_t len = sizeof(*ss);
	const char *proto = getenv("PROTO");
	const char *ip = getenv("TCPREMOTEIP");
	const char *port = getenv("TCPREMOTEPORT");
	uint32_t pnum;

	memset(ss, 0, sizeof(*ss));
	if (getpeername(0, (struct sockaddr *)ss, &len) == 0 &&
	    (ss->ss_family == AF_INET || ss->ss_family == AF_INET6))
		return false;
	memset(ss, 0, sizeof(*ss));
	if (proto == NULL || strcmp(proto, "TCP") != 0 || ip == NULL)
		return false;
	if (port == NULL || !parse_u32(port, strlen(port), &pnum) ||
	    pnum > 65535) {
		log_warnx("ignoring TCPREMOTEIP=%s: TCPREMOTEPORT=%s is not a "
		    "port", ip, port != NULL ? port : "(unset)");
		return false;
	}
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)pnum);
		*len_r = sizeof(*s4);
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)pnum);
		*len_r = sizeof(*s6);
	} else {
		log_warnx("ignoring TCPREMOTEIP=%s: not an IP address", ip);
		return false;
	}
	return true;
}

/* --ready-fd: one line once every port is bound, then the descriptor is
 * closed, so a reader sees the line or, if we die first, end of file. */
static void
server_notify_ready(int fd)
{
	static const char line[] = "ready\n";
	ssize_t n;

	do {
		n = write(fd, line, sizeof(line) - 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		log_warn("--ready-fd %d", fd);
	close(fd);
}

/* A loop's event_base, tuned for serving connections. */
static struct event_base *
server_base_new(bool inetd)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	if (inetd) {
		/* stdin/stdout may be files or ttys, which epoll refuses. */
		event_config_require_features(ec, EV_FEATURE_FDS);
	} else {
		/* Coalesce the epoll_ctl calls of one loop iteration: every
		 * reply would otherwise add and remove the write event. */
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		/* Look for new events after a few bulk writes, so a command
		 * never waits for every streaming connection's turn. */
		event_config_set_max_dispatch_interval(ec, NULL,
		    CONN_BULK_CALLBACKS, CONN_PRI_BULK);
	}
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base == NULL ||
	    event_base_priority_init(base, CONN_PRIORITIES) != 0)
		fatal("event_base_new failed");
	return base;
}

/* EventLoops: 0 is one per CPU we may run on; inetd mode serves one
 * client. */
static unsigned
server_loop_count(const struct posuto_config *cfg, bool inetd)
{
	long n = (long)cfg->event_loops;
	cpu_set_t cpus;

	if (inetd)
		return 1;
	/* The CPUs we may run on (taskset, a cgroup's cpuset): more loops
	 * than those would only take turns on them. */
	if (n == 0 && sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		n = CPU_COUNT(&cpus);
	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > 256 ? 256 : (unsigned)n;
}

/* The loops (the main thread's first) and their contexts; the others'
 * threads start later (server_loops_start). */
static void
server_loops_new(struct server *srv, struct event_base *base, unsigned n)
{
	srv->n_loops = n;
	srv->loops = xcalloc(n, sizeof(*srv->loops));
	for (unsigned i = 0; i < n; i++) {
		struct server_loop *sl = &srv->loops[i];

		sl->srv = srv;
		sl->base = i == 0 ? base : server_base_new(false);
		sl->loop = i == 0 ? srv->rt->loops[0] :
		    net_runtime_add_loop(srv->rt, sl->base);
		sl->env.rt = srv->rt;
		sl->env.base = sl->base;
		sl->env.n_all = &srv->n_pop3;
		sl->smtp_env.rt = srv->rt;
		/* Not started yet: this runs here, now. */
		server_loop_apply(sl);
	}
}

/* After the privilege drop and the work queues: the other loops' threads. */
static void
server_loops_start(struct server *srv)
{
	for (unsigned i = 1; i < srv->n_loops; i++) {
		workq_add_loop(srv->rt->wq, srv->loops[i].base, i);
		workq_add_loop(srv->rt->bgq, srv->loops[i].base, i);
		workq_add_loop(srv->rt->ioq, srv->loops[i].base, i);
	}
	atomic_store(&srv->loops_live, srv->n_loops - 1);
	for (unsigned i = 1; i < srv->n_loops; i++)
		if (!net_loop_start(srv->loops[i].loop))
			fatal("cannot start event loop %u", i);
	if (srv->n_loops > 1)
		log_info("%u event loops", srv->n_loops);
}

/* The loops' threads have ended (the main thread's loop ran last). */
static void
server_loops_join(struct server *srv)
{
	for (unsigned i = 1; i < srv->n_loops; i++)
		net_loop_join(srv->loops[i].loop);
}

/* Once the work queues are gone (their ports are events of the bases). */
static void
server_loops_free(struct server *srv)
{
	for (unsigned i = 0; i < srv->n_loops; i++) {
		struct server_loop *sl = &srv->loops[i];

		if (sl->idle_check != NULL)
			event_free(sl->idle_check);
	}
}

static void
server_loops_free_bases(struct server *srv)
{
	for (unsigned i = 1; i < srv->n_loops; i++)
		event_base_free(srv->loops[i].base);
	free(srv->loops);
	srv->loops = NULL;
}

int
server_run(const struct server_opts *opts)
{
	struct server srv;
	struct event_base *base;
	struct userdb *db;
	struct tls_ctx *tls;
	char err[PATH_MAX + 256];
	int rc = 0;

	memset(&srv, 0, sizeof(srv));
	srv.opts = opts;
	/* inetd hands us the socket as stderr too: never log into it. */
	log_init("posuto", opts->use_syslog || (opts->inetd &&
	    stderr_is_connection()), LOG_LVL_INFO);
	if (config_load(opts->config_path, &srv.cfg, stderr) != 0)
		return EXIT_CONFIG;
	server_apply_params(&srv);
	if (!server_load_runtime(srv.cfg, true, NULL, &db, &tls)) {
		config_free(&srv.cfg);
		return EXIT_CONFIG;
	}
	/* Mailbox snapshots of big boxes are megabytes: keep them on the
	 * heap and keep freed heap, or every login to such a box pays for
	 * mmap and thousands of fresh page faults. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	signal(SIGPIPE, SIG_IGN);
	base = server_base_new(opts->inetd);
	srv.rt = net_runtime_new(base);
	net_runtime_set_gen(srv.rt, net_gen_new(srv.cfg, db,
	    server_userdb_unref, tls));
	srv.env.rt = srv.rt;
	pop3_register();
	smtp_register();
	srv.rt->iplimit = iplimit_new();
	srv.cfg_event_loops = srv.cfg->event_loops;
	server_loops_new(&srv, base, server_loop_count(srv.cfg, opts->inetd));
	privdrop_raise_nofile();
	/* Signals first: from the moment a client can connect, SIGTERM and
	 * SIGHUP must mean what posuto(8) says, not the default action. */
	srv.sig_term = evsignal_new(base, SIGTERM, server_on_signal, &srv);
	srv.sig_int = evsignal_new(base, SIGINT, server_on_signal, &srv);
	srv.sig_hup = evsignal_new(base, SIGHUP, server_on_hup, &srv);
	srv.sig_usr1 = evsignal_new(base, SIGUSR1, server_on_usr1, &srv);
	evsignal_add(srv.sig_term, NULL);
	evsignal_add(srv.sig_int, NULL);
	evsignal_add(srv.sig_hup, NULL);
	evsignal_add(srv.sig_usr1, NULL);
	/* Cross-process [IN-USE] is what inetd mode relies on: no lock file,
	 * no service. */
	if (!server_lock_file_open(srv.cfg, err, sizeof(err))) {
		log_error("%s: %s", srv.cfg->path, err);
		rc = 1;
		goto out;
	}
	if (!opts->inetd && server_listen(&srv) != 0) {
		rc = 1;
		goto out;
	}
	/* Its port too is bound before the privilege drop. */
	if (!opts->inetd && !admin_new(srv.cfg, srv.rt, &srv.admin)) {
		rc = 1;
		goto out;
	}
	if (srv.cfg->run_as_user != NULL && geteuid() == 0) {
		if (privdrop_to(srv.cfg->run_as_user, err, sizeof(err)) != 0) {
			log_error("%s", err);
			rc = 1;
			goto out;
		}
		log_info("running as %s", srv.cfg->run_as_user);
	} else if (geteuid() == 0 && !opts->inetd) {
		log_warnx("running as root: set RunAsUser to drop privileges");
	}
	/* Threads only after the privilege drop, so every one runs unprivileged. */
	srv.rt->wq = workq_new(base, srv.cfg->worker_threads);
	srv.rt->bgq = workq_new(base, 1);
	srv.rt->ioq = workq_new(base, SERVER_DELIVERY_THREADS);
	if (srv.admin != NULL) {
		struct timeval tick = { .tv_sec = 1 };

		/* Its own thread and event_base: a request never waits for,
		 * nor holds up, the POP3 loop. */
		if (!admin_start(srv.admin)) {
			rc = 1;
			goto out;
		}
		admin_set_reload(srv.admin, server_admin_reload, &srv);
		srv.admin_tick = event_new(base, -1, EV_PERSIST,
		    server_on_admin_tick, &srv);
		event_add(srv.admin_tick, &tick);
	}

	if (opts->inetd) {
		/* One session; the loop ends when it does. */
		srv.stopping = true;
		struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
		struct sockaddr_storage peer;
		socklen_t peerlen = 0;
		bool have_peer = server_inetd_peer(&peer, &peerlen);
		struct net_listener *nl = net_listener_new(srv.rt, "pop3",
		    &srv.loops[0].env, NET_TLS_NONE, "stdin");

		if (nl == NULL)
			fatalx("protocol pop3 not registered");
		/* conn makes stdin/stdout non-blocking only for a NULL peer. */
		if (have_peer) {
			evutil_make_socket_nonblocking(0);
			evutil_make_socket_nonblocking(1);
		}
		if (!net_listener_accept(nl, 0, 1,
		    have_peer ? (struct sockaddr *)&peer : NULL, peerlen)) {
			rc = 1;
			goto out;
		}
		srv.loops[0].idle_check = event_new(base, -1, EV_PERSIST,
		    server_on_idle_check, &srv.loops[0]);
		event_add(srv.loops[0].idle_check, &tv);
	} else {
		pop3_policy_expiry_configure(&srv.env, srv.cfg->expire_interval);
		srv.watch = filewatch_new(srv.rt->base, server_on_change, &srv);
		server_watch_set(&srv);
		server_loops_start(&srv);
		if (srv.rt->gen->tls != NULL)
			log_info("kernel TLS %s", tls_kernel_offload() ?
			    "offered: records are encrypted by the kernel" :
			    "not offered (no tls module): OpenSSL encrypts "
			    "records");
		log_info("posuto %s ready", POSUTO_VERSION);
		if (opts->ready_fd >= 0)
			server_notify_ready(opts->ready_fd);
	}
	event_base_dispatch(base);
	pop3_session_close_all(&srv.loops[0].env);
	smtp_close_all(&srv.loops[0].smtp_env);
	conn_lingering_free_all();
out:
	/* The others ended before the main loop did (server_on_idle_check);
	 * on a startup failure none was started. */
	server_loops_join(&srv);
	filewatch_free(&srv.watch);
	admin_free(&srv.admin);
	if (srv.admin_tick != NULL)
		event_free(srv.admin_tick);
	pop3_policy_expiry_stop(&srv.env);
	workq_free(&srv.rt->wq);
	workq_free(&srv.rt->bgq);
	workq_free(&srv.rt->ioq);
	pop3_policy_expiry_free(&srv.env);
	server_close_listeners(&srv);
	server_free_retired(&srv);
	server_loops_free(&srv);
	if (srv.sig_term != NULL) {
		event_free(srv.sig_term);
		event_free(srv.sig_int);
		event_free(srv.sig_hup);
		event_free(srv.sig_usr1);
	}
	/* What this run did, for the log (SIGUSR1 shows it meanwhile). */
	if (!opts->inetd)
		net_runtime_log(srv.rt, false);
	iplimit_free(&srv.rt->iplimit);
	srv.cfg = NULL;			/* the generation's */
	net_runtime_free(&srv.rt);
	server_loops_free_bases(&srv);
	event_base_free(base);
	log_info("stopped");
	return rc;
}
