/* server.c - startup, listeners, SIGHUP reload, graceful stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
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

#include "auth/sasl.h"
#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/privdrop.h"
#include "daemon/server.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/iplimit.h"
#include "net/listener.h"
#include "net/tls.h"
#include "net/workq.h"
#include "store/store.h"
#include "store/store_lock.h"
#include "pop3/pop3_policy.h"
#include "pop3/pop3_session.h"

struct server_listener {
	struct server *srv;
	struct evconnlistener *lev;
	struct event *retry;		/* re-enable after EMFILE */
	bool tls;
	char name[80];
};

struct server {
	const struct server_opts *opts;
	struct posuto_config *cfg;
	struct pop3_env env;
	struct server_listener *ls;
	size_t n_ls;
	struct event *sig_term, *sig_int, *sig_hup, *idle_check;
	bool stopping;
};

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
	struct server_listener *l = arg;
	struct server *srv = l->srv;

	(void)lev;
	if (l->tls && srv->env.tls == NULL) {
		close(fd);
		return;
	}
	pop3_session_start(&srv->env, fd, fd, sa, (socklen_t)salen,
	    l->tls ? srv->env.tls : NULL);
}

static void
server_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct server_listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->lev);
}

static void
server_on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct server_listener *l = arg;
	struct timeval tv = { .tv_sec = 1 };

	/* EMFILE/ENFILE: stop accepting for a moment instead of spinning. */
	log_warn("accept on %s", l->name);
	evconnlistener_disable(lev);
	evtimer_add(l->retry, &tv);
}

static int
server_listen(struct server *srv)
{
	const struct posuto_config *cfg = srv->cfg;
	char err[256];

	srv->ls = xcalloc(cfg->n_listens, sizeof(*srv->ls));
	for (size_t i = 0; i < cfg->n_listens; i++) {
		const struct listen_cfg *lc = &cfg->listens[i];
		struct server_listener *l = &srv->ls[i];
		int fd = listener_open(lc->address, lc->port, err, sizeof(err));

		if (fd < 0) {
			log_error("%s", err);
			return -1;
		}
		l->srv = srv;
		l->tls = lc->tls == LISTEN_TLS_IMPLICIT;
		snprintf(l->name, sizeof(l->name), "%s port %u%s", lc->address,
		    lc->port, l->tls ? " (TLS)" : "");
		l->lev = evconnlistener_new(srv->env.base, server_on_accept, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
		if (l->lev == NULL) {
			close(fd);
			log_error("cannot set up listener %s", l->name);
			return -1;
		}
		evconnlistener_set_error_cb(l->lev, server_on_accept_error);
		l->retry = evtimer_new(srv->env.base, server_on_retry, l);
		srv->n_ls++;
		log_info("listening on %s", l->name);
	}
	return 0;
}

static void
server_close_listeners(struct server *srv)
{
	for (size_t i = 0; i < srv->n_ls; i++) {
		evconnlistener_free(srv->ls[i].lev);
		event_free(srv->ls[i].retry);
	}
	free(srv->ls);
	srv->ls = NULL;
	srv->n_ls = 0;
}

static void
server_on_idle_check(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	/* Lingering close_notifys are bounded (TLS_SHUTDOWN_TIMEOUT). */
	if (srv->env.n_sessions == 0 && workq_pending(srv->env.wq) == 0 &&
	    conn_lingering() == 0)
		event_base_loopbreak(srv->env.base);
}

static void
server_stop(struct server *srv, const char *why)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 50000 };

	if (srv->stopping)
		return;
	srv->stopping = true;
	log_info("stopping: %s", why);
	server_close_listeners(srv);
	pop3_policy_expiry_stop(&srv->env);
	/* Sessions end without UPDATE: no message is deleted. A QUIT whose
	 * expunge is running finishes first. */
	pop3_session_close_all(&srv->env);
	srv->idle_check = event_new(srv->env.base, -1, EV_PERSIST,
	    server_on_idle_check, srv);
	event_add(srv->idle_check, &tv);
}

static void
server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	server_stop(srv, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
server_reload(struct server *srv)
{
	struct posuto_config *cfg;
	struct userdb *db;
	struct tls_ctx *tls;

	log_info("SIGHUP: reloading %s", srv->opts->config_path);
	if (config_load(srv->opts->config_path, &cfg, stderr) != 0) {
		log_error("reload failed; keeping the running configuration");
		return;
	}
	if (!server_load_runtime(cfg, false, NULL, &db, &tls)) {
		log_error("reload failed; keeping the running configuration");
		config_free(&cfg);
		return;
	}
	userdb_unref(&srv->env.db);
	srv->env.db = db;
	if (tls != NULL) {
		tls_ctx_unref(&srv->env.tls);
		srv->env.tls = tls;
	} else if (srv->env.tls != NULL) {
		log_warnx("Tls removed from the config: STLS/POP3S stay on the "
		    "old certificate until restart");
	}
	/* Sessions hold their locks in the open file: switching now would
	 * let a process on the new file into a mailbox in use here. */
	if ((cfg->lock_file == NULL) != (srv->cfg->lock_file == NULL) ||
	    (cfg->lock_file != NULL &&
	    strcmp(cfg->lock_file, srv->cfg->lock_file) != 0))
		log_warnx("LockFile changes take effect on restart");
	config_free(&srv->cfg);
	srv->cfg = cfg;
	server_apply_params(srv);
	if (srv->env.expiry != NULL)
		pop3_policy_expiry_configure(&srv->env, cfg->expire_interval);
	log_info("reload done; listener changes take effect on restart");
}

static void
server_on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	server_reload(arg);
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
 * inetd-mode instances) out of the mailboxes in use here, and us out of
 * theirs.  Opened before the privilege drop (the default is in /run) and
 * kept; handed to RunAsUser so that inetd-mode instances running as that
 * user can open it too.
 */
static int
server_open_lock_file(const struct posuto_config *cfg)
{
	char def[PATH_MAX], err[256];
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
	if (!store_lock_file_open(path, uid, gid, err, sizeof(err))) {
		log_error("%s: LockFile %s%s: %s", cfg->path, path,
		    cfg->lock_file == NULL ? " (the default)" : "", err);
		return -1;
	}
	log_debug("mailbox lock file %s", path);
	return 0;
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

int
server_run(const struct server_opts *opts)
{
	struct server srv;
	struct tls_ctx *tls;
	char err[256];
	int rc = 0;

	memset(&srv, 0, sizeof(srv));
	srv.opts = opts;
	/* inetd hands us the socket as stderr too: never log into it. */
	log_init("posuto", opts->use_syslog || (opts->inetd &&
	    stderr_is_connection()), LOG_LVL_INFO);
	if (config_load(opts->config_path, &srv.cfg, stderr) != 0)
		return EXIT_CONFIG;
	server_apply_params(&srv);
	if (!server_load_runtime(srv.cfg, true, NULL, &srv.env.db, &tls)) {
		config_free(&srv.cfg);
		return EXIT_CONFIG;
	}
	srv.env.tls = tls;
	/* Mailbox snapshots of big boxes are megabytes: keep them on the
	 * heap and keep freed heap, or every login to such a box pays for
	 * mmap and thousands of fresh page faults. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	signal(SIGPIPE, SIG_IGN);
	if (opts->inetd) {
		/* stdin/stdout may be files or ttys, which epoll refuses. */
		struct event_config *ec = event_config_new();
		event_config_require_features(ec, EV_FEATURE_FDS);
		srv.env.base = event_base_new_with_config(ec);
		event_config_free(ec);
	} else {
		/* Coalesce the epoll_ctl calls of one loop iteration: every
		 * reply would otherwise add and remove the write event. */
		struct event_config *ec = event_config_new();
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		/* Look for new events after a few bulk writes, so a command
		 * never waits for every streaming connection's turn. */
		event_config_set_max_dispatch_interval(ec, NULL,
		    CONN_BULK_CALLBACKS, CONN_PRI_BULK);
		srv.env.base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (srv.env.base == NULL ||
	    event_base_priority_init(srv.env.base, CONN_PRIORITIES) != 0)
		fatal("event_base_new failed");
	srv.env.iplimit = iplimit_new();
	privdrop_raise_nofile();
	/* Signals first: from the moment a client can connect, SIGTERM and
	 * SIGHUP must mean what posuto(8) says, not the default action. */
	srv.sig_term = evsignal_new(srv.env.base, SIGTERM, server_on_signal, &srv);
	srv.sig_int = evsignal_new(srv.env.base, SIGINT, server_on_signal, &srv);
	srv.sig_hup = evsignal_new(srv.env.base, SIGHUP, server_on_hup, &srv);
	evsignal_add(srv.sig_term, NULL);
	evsignal_add(srv.sig_int, NULL);
	evsignal_add(srv.sig_hup, NULL);
	/* Cross-process [IN-USE] is what inetd mode relies on: no lock file,
	 * no service. */
	if (server_open_lock_file(srv.cfg) != 0) {
		rc = 1;
		goto out;
	}
	if (!opts->inetd && server_listen(&srv) != 0) {
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
	srv.env.wq = workq_new(srv.env.base, srv.cfg->worker_threads);
	srv.env.bgq = workq_new(srv.env.base, 1);

	if (opts->inetd) {
		/* One session; the loop ends when it does. */
		srv.stopping = true;
		struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
		struct sockaddr_storage peer;
		socklen_t peerlen = 0;
		bool have_peer = server_inetd_peer(&peer, &peerlen);

		/* conn makes stdin/stdout non-blocking only for a NULL peer. */
		if (have_peer) {
			evutil_make_socket_nonblocking(0);
			evutil_make_socket_nonblocking(1);
		}
		if (!pop3_session_start(&srv.env, 0, 1,
		    have_peer ? (struct sockaddr *)&peer : NULL, peerlen, NULL)) {
			rc = 1;
			goto out;
		}
		srv.idle_check = event_new(srv.env.base, -1, EV_PERSIST,
		    server_on_idle_check, &srv);
		event_add(srv.idle_check, &tv);
	} else {
		pop3_policy_expiry_configure(&srv.env, srv.cfg->expire_interval);
		log_info("posuto %s ready", POSUTO_VERSION);
		if (opts->ready_fd >= 0)
			server_notify_ready(opts->ready_fd);
	}
	event_base_dispatch(srv.env.base);
	pop3_session_close_all(&srv.env);
	conn_lingering_free_all();
out:
	pop3_policy_expiry_stop(&srv.env);
	workq_free(&srv.env.wq);
	workq_free(&srv.env.bgq);
	pop3_policy_expiry_free(&srv.env);
	server_close_listeners(&srv);
	if (srv.idle_check != NULL)
		event_free(srv.idle_check);
	if (srv.sig_term != NULL) {
		event_free(srv.sig_term);
		event_free(srv.sig_int);
		event_free(srv.sig_hup);
	}
	iplimit_free(&srv.env.iplimit);
	userdb_unref(&srv.env.db);
	tls_ctx_unref(&srv.env.tls);
	config_free(&srv.cfg);
	event_base_free(srv.env.base);
	log_info("stopped");
	return rc;
}
