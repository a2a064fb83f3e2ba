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
	const char *scheme;		/* password scheme name, or NULL */
	bool apop;			/* has an APOP secret */
	const char *origin;		/* where it is defined */
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
};

enum http_metric_type {
	HTTP_METRIC_COUNTER,
	HTTP_METRIC_GAUGE,
};

/* One counter or gauge for /api/v1/counters and /metrics. */
struct http_admin_metric {
	const char *name;		/* Prometheus name, "posuto_..." */
	const char *help;
	enum http_metric_type type;
	char label[96];			/* "protocol=\"pop3\"" or "" */
	double value;
};
#define HTTP_ADMIN_METRICS_MAX	256

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
