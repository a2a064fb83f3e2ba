/*
 * http.h - the web admin's HTTP server (issue 12): pages, /api/v1/, SSE
 * and /metrics, on its own thread with its own event_base, so that no
 * request ever runs on (or blocks) the POP3 loop.
 *
 * Built on libevent's evhttp rather than libmicrohttpd: libevent is
 * already posuto's event library (one dependency, not two), evhttp is
 * maintained with it, and its event model is the one the rest of the
 * daemon uses (bufferevents, the same OpenSSL filter for HTTPS, chunked
 * replies for Server-Sent Events).
 *
 * What the server shows comes from struct http_admin_source: callbacks the
 * daemon fills, called on the HTTP thread (so each must be thread-safe
 * against the daemon's own loop).  A callback left NULL means "not
 * available yet": the route answers with an empty list.
 */
#ifndef POSUTO_HTTP_H
#define POSUTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct admin_cfg;
struct autoconfig_info;
struct tls_ctx;
struct http_server;

/* One user, as /api/v1/users lists it; strings valid during the call. */
struct http_admin_user {
	const char *name;
	const char *mailbox;		/* expanded mailbox path, or NULL */
	const char *format;		/* MailboxFormat: "maildir", "auto", ... */
	const char *location;		/* the store location, or NULL */
	const char *scheme;		/* password scheme name, or NULL */
	bool apop;			/* has an APOP secret */
	const char *origin;		/* where it is defined */
	/* With stats: the mailbox's messages and octets; -1 if not
	 * counted (no stats asked, in use by a session, unreadable). */
	long long messages, octets;
	const char *stats_error;	/* "in-use", "error", or NULL */
	/* With stats, the UIDL-drift detector's view (store.h); tracked
	 * false for mailboxes it does not follow. */
	bool drift_tracked;
	unsigned drift_changed, drift_reappeared, drift_reretrieved;
};
/* Return false to stop. */
typedef bool http_admin_user_fn(const struct http_admin_user *u, void *arg);

/* One live session (from the net runtime's registry). */
struct http_admin_session {
	uint64_t id;
	char user[256];
	char client[64];		/* "192.0.2.1:50000" */
	char protocol[16];		/* "pop3", "pop3s" */
	char state[16];			/* "authorization", "transaction", ... */
	char command[16];		/* current command verb, or "" */
	int64_t since;			/* unix time the session started */
	uint64_t bytes_in, bytes_out;
	unsigned idle_timeout;		/* s, as the session was given */
	unsigned loop;			/* the event loop serving it */
	unsigned n_history;		/* recent command lines, oldest first */
	char history[16][72];		/* already redacted */
};

enum http_metric_type {
	HTTP_METRIC_COUNTER,
	HTTP_METRIC_GAUGE,
	HTTP_METRIC_HISTOGRAM,		/* a _bucket, _sum or _count line */
};

/* One counter or gauge for /api/v1/counters and /metrics. */
struct http_admin_metric {
	const char *name;		/* Prometheus name, "posuto_..." */
	/* A histogram's lines name their family ("posuto_login_seconds")
	 * for HELP and TYPE; NULL: the name itself. */
	const char *family;
	const char *help;
	enum http_metric_type type;
	char label[96];			/* "protocol=\"pop3\"" or "" */
	double value;
};
#define HTTP_ADMIN_METRICS_MAX	256

/* One minute of the dashboard's chart. */
struct http_admin_point {
	int64_t minute;			/* unix time / 60 */
	uint64_t logins, retrieved, bytes;
};
#define HTTP_ADMIN_CHART_MINUTES	60

/* A change to a user (the Users page), as `posuto user` makes it. */
struct http_admin_user_op {
	const char *op;			/* "add", "passwd", "del", "apop" */
	const char *name;
	const char *scheme;		/* NULL: the default */
	const char *secret;		/* password, APOP secret (NULL: remove) */
	size_t secret_len;
	bool purge;			/* del: the mailbox too */
};

struct http_admin_source {
	void *arg;
	/* Calls fn for every user; false if the list is not available. */
	bool (*users)(void *arg, http_admin_user_fn *fn, void *fn_arg);
	/* A snapshot of the live sessions: fills at most max entries of
	 * out and returns how many. */
	size_t (*sessions)(void *arg, struct http_admin_session *out,
	    size_t max);
	/* Counters and gauges: fills at most max, returns how many. */
	size_t (*metrics)(void *arg, struct http_admin_metric *out,
	    size_t max);
	/* The configuration in effect as JSON (config_dump(): secrets
	 * hidden), malloc'd; NULL if not available. */
	char *(*settings_json)(void *arg);
	/* What the client setup documents say (http_autoconfig.h), from
	 * the settings in effect; false: no POP3 listener to name. */
	bool (*autoconfig)(void *arg, struct autoconfig_info *ai);
	/* The rest may block (file edits, reloads): the HTTP thread's. */
	/* Users with message counts (opens each mailbox briefly). */
	bool (*users_stats)(void *arg, http_admin_user_fn *fn, void *fn_arg);
	/* Applies op; returns an HTTP status (200, 400, 404, 409, 500) with
	 * the reason in msg. */
	int (*user_op)(void *arg, const struct http_admin_user_op *op,
	    char *msg, size_t msgsz);
	/* Merges patch (a JSON object, RFC 7386) into the config file,
	 * checked as the loader checks it, then reloads.  Returns an HTTP
	 * status; on 400 key names the setting ("Pop3Server.TimeOut") when
	 * known, msg says what is wrong. */
	int (*settings_patch)(void *arg, const char *patch, size_t len,
	    char *key, size_t keysz, char *msg, size_t msgsz);
	/* Ends session id (from the loop thread); false if no such one. */
	bool (*kick)(void *arg, uint64_t id);
	/* Session id's protocol transcript (live, or finished and still
	 * kept), malloc'd in *text_r; false if there is none. */
	bool (*transcript)(void *arg, uint64_t id, char **text_r,
	    size_t *len_r);
	/* The last hour, a point per minute, oldest first; returns how many. */
	size_t (*chart)(void *arg, struct http_admin_point *out, size_t max);
};

struct http_server_params {
	const struct admin_cfg *cfg;	/* read during http_server_new() only */
	const char *password_hash;	/* "{SCHEME}..." (never NULL) */
	struct tls_ctx *tls;		/* HTTPS when not NULL (a ref is taken) */
	struct http_admin_source source;
};

/*
 * Binds the listen address (before the privilege drop) and sets up the
 * server; nothing runs until http_server_start().  NULL with a reason in
 * err on failure.
 */
struct http_server *http_server_new(const struct http_server_params *p,
    char *err, size_t errsz);
/* Starts the server's thread. */
bool http_server_start(struct http_server *h, char *err, size_t errsz);
/* From any thread: tells every live page (SSE "changed" event) that what
 * names ("users", "sessions", "settings") has changed. */
void http_server_changed(struct http_server *h, const char *what);
/* From any thread: the admin password's hash changed (SIGHUP after
 * `posuto admin passwd`). */
void http_server_set_password_hash(struct http_server *h, const char *hash);
/* Stops the thread (if started), closes every connection, frees. */
void http_server_free(struct http_server **h);

/* The listen address "127.0.0.1:5001" for the log. */
const char *http_server_name(const struct http_server *h);

#endif
