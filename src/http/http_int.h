/* http_int.h - private to src/http/. */
#ifndef POSUTO_HTTP_INT_H
#define POSUTO_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/http.h"

struct evhttp_request;

/* ---- embedded assets (generated from web/ by scripts/embed_assets.py) */
struct http_asset {
	const char *path;		/* "/index.html" */
	const char *type;		/* Content-Type */
	const char *etag;		/* strong ETag, quoted */
	const unsigned char *data;
	size_t len;
	bool public;			/* served as a static file */
};
extern const struct http_asset http_assets[];
extern const size_t http_n_assets;
const struct http_asset *http_asset_find(const char *path);

/* ---- limits, with their reasons */
/* Request bodies: JSON of a few fields.  A bigger one (a 100 MB upload)
 * gets 413 from evhttp as soon as its Content-Length is read. */
#define HTTP_MAX_BODY		(64 * 1024)
#define HTTP_MAX_HEADERS	(16 * 1024)
/* An .eml upload (POST /api/v1/mailboxes/{user}/messages): the only
 * body this big; evhttp's limit is this one, so a bigger upload gets 413
 * from its Content-Length before any of it is read.  (libevent 2.1 has
 * no per-request limit: other routes check HTTP_MAX_BODY themselves.) */
#define HTTP_UPLOAD_MAX		(32 * 1024 * 1024)
/* A request must arrive within this (slowloris). */
#define HTTP_TIMEOUT_S		30
/* Logged-in browsers at once; the oldest is dropped beyond this. */
#define HTTP_SESSIONS_MAX	64
/* Absolute lifetime of a login, whatever its activity. */
#define HTTP_SESSION_MAX_AGE	(12 * 3600)
/* Client addresses the login limiter remembers. */
#define HTTP_RATE_SLOTS		256
/* Failed logins from one address before it must wait; then it waits
 * HTTP_RATE_PENALTY s, doubled by every further failure, at most
 * HTTP_RATE_MAX_PENALTY (Dovecot's auth penalty grows the same way).  No
 * password is checked while it waits, so guessing is bounded to a few
 * tries per HTTP_RATE_MAX_PENALTY. */
#define HTTP_RATE_FREE_FAILS	4
#define HTTP_RATE_PENALTY	30
#define HTTP_RATE_MAX_PENALTY	600
/* Live pages (SSE streams) at once, and their heartbeat. */
#define HTTP_SSE_MAX		32
#define HTTP_SSE_HEARTBEAT_S	2
/* The HTTP thread's nice value: below the POP3 loop's, so polling pages
 * take spare CPU only (bench/admin_poll.py). */
#define HTTP_THREAD_NICE	10

/* ---- login sessions and the limiter (http_auth.c), HTTP thread only */
#define HTTP_TOKEN_HEX		64	/* 256 random bits */

struct http_login {
	bool used;
	char id[HTTP_TOKEN_HEX + 1];	/* cookie value */
	char csrf[HTTP_TOKEN_HEX + 1];	/* X-CSRF-Token */
	time_t created, last;
};

struct http_rate {
	char addr[64];
	unsigned fails;
	time_t until;			/* no attempt before this */
	time_t last;
};

struct http_auth {
	pthread_mutex_t mu;		/* guards password_hash only */
	char *password_hash;
	unsigned idle_timeout;
	struct http_login logins[HTTP_SESSIONS_MAX];
	struct http_rate rate[HTTP_RATE_SLOTS];
};

void http_auth_init(struct http_auth *a, const char *hash, unsigned idle);
void http_auth_clear(struct http_auth *a);
/* 2 * n hex digits of fresh randomness into out (2n + 1 bytes). */
void http_random_hex(char *out, size_t n);
/* The live login named by the request's cookie, or NULL. */
struct http_login *http_auth_session(struct http_auth *a,
    struct evhttp_request *req, time_t now);
bool http_auth_csrf_ok(const struct http_login *l,
    struct evhttp_request *req);
/* Seconds until addr may try again (0: now). */
unsigned http_auth_wait(struct http_auth *a, const char *addr, time_t now);
/* Checks a password; records a failure (and its penalty) for addr. */
bool http_auth_check(struct http_auth *a, const char *addr,
    const char *password, size_t len, time_t now);
struct http_login *http_auth_login(struct http_auth *a, time_t now);
void http_auth_logout(struct http_auth *a, struct http_login *l);
/* Basic credentials "admin:password" of the request, checked (rate
 * limited like a login); for scripts (curl -u, Prometheus). */
bool http_auth_basic(struct http_auth *a, struct evhttp_request *req,
    const char *addr, time_t now, bool *tried_r);

/* Name of the session cookie. */
const char *http_cookie_name(void);

/* ---- the server (http_server.c) */
struct http_sse;

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	/* Admin.Autoconfig's listener: the setup documents only. */
	struct evhttp *pub;
	struct tls_ctx *tls;
	struct http_admin_source src;
	struct http_auth auth;
	char name[80];
	uint16_t port;
	/* Names the Host header may carry (without the port). */
	char **hosts;
	size_t n_hosts;
	time_t started;

	struct http_mailbox *mbx;	/* the mailbox viewer (http_mailbox.c) */
	struct http_sse *sse;		/* live event streams */
	unsigned n_sse;
	struct event *heartbeat;

	/* Cross-thread: the daemon writes, the HTTP thread reads. */
	int wake_fd;			/* eventfd */
	struct event *wake;
	atomic_uint pending;		/* HTTP_CHANGED_* | HTTP_STOP */
	pthread_t thread;
	bool running;
};

#define HTTP_CHANGED_USERS	0x1u
#define HTTP_CHANGED_SESSIONS	0x2u
#define HTTP_CHANGED_SETTINGS	0x4u
#define HTTP_CHANGED_COUNTERS	0x8u
#define HTTP_STOP		0x80000000u

/* Reply helpers (http_server.c). */
void http_reply_json_text(struct evhttp_request *req, int code,
    const char *json);
void http_reply_error(struct evhttp_request *req, int code,
    const char *message);
const char *http_peer(struct evhttp_request *req, char *buf, size_t bufsz);
bool http_is_tls(const struct http_server *h);

/* SSE (http_server.c) */
void http_sse_open(struct http_server *h, struct evhttp_request *req,
    const struct http_login *l);
/* Sends msg (a whole "event: ...\ndata: ...\n\n") to every live page. */
void http_sse_broadcast(struct http_server *h, const char *msg);

/* ---- the mailbox viewer (http_mailbox.c) */
struct http_mailbox;
struct http_mailbox *http_mailbox_new(struct http_server *h);
void http_mailbox_free(struct http_mailbox **m);
/* Handles /api/v1/mailboxes... and /api/v1/csp-report(s) (logins and
 * CSRF checked there); false for any other path. */
bool http_mailbox_dispatch(struct http_server *h, struct evhttp_request *req,
    const char *path);

/* ---- the API routes (http_api.c) */
/* Handles req if its path is an API route (or /metrics); false if not. */
bool http_api_dispatch(struct http_server *h, struct evhttp_request *req,
    const char *path);

#endif
