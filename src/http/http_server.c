/*
 * http_server.c - the web admin's front door: one evhttp on its own thread
 * and event_base; every request passes the same checks (Host, Origin,
 * security headers) before any route sees it; static files come only
 * from the embedded table.
 *
 * Live updates are Server-Sent Events, not WebSocket: the page only
 * listens (it acts through the REST API), SSE is one long chunked reply
 * that evhttp sends as it is (evhttp_send_reply_start/chunk) with no
 * upgrade or framing code of our own, and the browser reconnects by
 * itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config/config.h"
#include "http/http_autoconfig.h"
#include "http/http_int.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/listener.h"
#include "net/tls.h"

/* No inline script or style anywhere: pages load /app.js and /style.css,
 * and render data with textContent, so a user-supplied string can never
 * become markup, and an injected one could not run. */
#define HTTP_CSP "default-src 'self'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; " \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " \
	"report-uri /api/v1/csp-report"

struct http_sse {
	struct http_server *h;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	char login_id[HTTP_TOKEN_HEX + 1];
	bool used;
};

const struct http_asset *
http_asset_find(const char *path)
{
	for (size_t i = 0; i < http_n_assets; i++)
		if (strcmp(http_assets[i].path, path) == 0)
			return &http_assets[i];
	return NULL;
}

bool
http_is_tls(const struct http_server *h)
{
	return h->tls != NULL;
}

const char *
http_peer(struct evhttp_request *req, char *buf, size_t bufsz)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	(void)str_copy(buf, bufsz, addr != NULL ? addr : "unknown");
	return buf;
}

static void
http_add_security_headers(struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "Content-Security-Policy", HTTP_CSP);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(out, "Cross-Origin-Resource-Policy", "same-origin");
}

void
http_reply_json_text(struct evhttp_request *req, int code, const char *json)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (b == NULL)
		fatal("out of memory");
	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type",
	    "application/json; charset=utf-8");
	evhttp_add_header(out, "Cache-Control", "no-store");
	evbuffer_add(b, json, strlen(json));
	evbuffer_add(b, "\n", 1);
	evhttp_send_reply(req, code, NULL, b);
	evbuffer_free(b);
}

void
http_reply_error(struct evhttp_request *req, int code, const char *message)
{
	char buf[512];
	size_t k = 0;

	/* message is ours (a fixed text), but escape as JSON anyway. */
	k += (size_t)snprintf(buf, sizeof(buf), "{\"error\":\"");
	for (const char *p = message; *p != '\0' && k + 8 < sizeof(buf); p++) {
		if (*p == '"' || *p == '\\')
			buf[k++] = '\\';
		buf[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	}
	(void)snprintf(buf + k, sizeof(buf) - k, "\"}");
	http_reply_json_text(req, code, buf);
}

/*
 * DNS rebinding: a page from evil.example whose name was made to point at
 * 127.0.0.1 sends "Host: evil.example"; only our own names get through.
 * host is "name[:port]" with IPv6 literals in brackets.
 */
static bool
http_host_ok(const struct http_server *h, const char *host)
{
	const char *colon, *name_end;
	size_t nlen;
	uint32_t port;

	if (host == NULL || host[0] == '\0' || strlen(host) > 300)
		return false;
	if (host[0] == '[') {
		name_end = strchr(host, ']');
		if (name_end == NULL)
			return false;
		name_end++;
		colon = *name_end == ':' ? name_end : NULL;
		if (*name_end != '\0' && colon == NULL)
			return false;
	} else {
		colon = strrchr(host, ':');
		name_end = colon != NULL ? colon : host + strlen(host);
	}
	if (colon != NULL) {
		if (!parse_u32(colon + 1, strlen(colon + 1), &port) ||
		    port != h->port)
			return false;
	} else if (h->port != (http_is_tls(h) ? 443 : 80)) {
		return false;
	}
	nlen = (size_t)(name_end - host);
	for (size_t i = 0; i < h->n_hosts; i++)
		if (strlen(h->hosts[i]) == nlen &&
		    strncasecmp(h->hosts[i], host, nlen) == 0)
			return true;
	return false;
}

/* An Origin, when a browser sends one, must be this server as reached by
 * one of its names: cross-site requests are refused before any route. */
static bool
http_origin_ok(const struct http_server *h, const char *origin)
{
	const char *scheme = http_is_tls(h) ? "https://" : "http://";

	if (origin == NULL)
		return true;
	if (strncmp(origin, scheme, strlen(scheme)) != 0)
		return false;
	origin += strlen(scheme);
	if (strchr(origin, '/') != NULL)
		return false;
	return http_host_ok(h, origin);
}

static void
http_serve_static(struct http_server *h, struct evhttp_request *req,
    const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const struct http_asset *a;
	const char *inm;
	struct evbuffer *b;

	(void)h;
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		evhttp_add_header(out, "Allow", "GET, HEAD");
		http_reply_error(req, 405, "method not allowed");
		return;
	}
	/* The page shell for "/" and the app's own routes (#/...). */
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	a = http_asset_find(path);
	if (a == NULL || !a->public) {
		http_reply_error(req, 404, "not found");
		return;
	}
	evhttp_add_header(out, "ETag", a->etag);
	/* Revalidate every time: a new binary serves new files at once. */
	evhttp_add_header(out, "Cache-Control", "no-cache");
	inm = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "If-None-Match");
	if (inm != NULL && strcmp(inm, a->etag) == 0) {
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	evhttp_add_header(out, "Content-Type", a->type);
	b = evbuffer_new();
	if (b == NULL)
		fatal("out of memory");
	/* The table is static: no copy. */
	evbuffer_add_reference(b, a->data, a->len, NULL, NULL);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
http_on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *h = arg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

	http_add_security_headers(req);
	if (!http_host_ok(h, evhttp_find_header(in, "Host"))) {
		/* 421: this server does not answer for that name. */
		http_reply_error(req, 421, "unknown Host");
		return;
	}
	/* A CSP report from a mail's sandboxed frame comes from an opaque
	 * origin ("null"); that route only counts. */
	if (!http_origin_ok(h, evhttp_find_header(in, "Origin")) &&
	    !(path != NULL && strcmp(path, "/api/v1/csp-report") == 0 &&
	    strcmp(evhttp_find_header(in, "Origin"), "null") == 0)) {
		http_reply_error(req, 403, "cross-origin request refused");
		return;
	}
	if (path == NULL || path[0] != '/') {
		http_reply_error(req, 400, "bad request");
		return;
	}
	if (http_autoconfig_dispatch(h, req, path) ||
	    http_api_dispatch(h, req, path))
		return;
	http_serve_static(h, req, path);
}

/* The setup documents' own listener: mail clients ask it for
 * autoconfig.DOMAIN or autodiscover.DOMAIN, so any Host is fine; it has
 * no login, no cookie and nothing else to serve. */
static void
http_on_public_request(struct evhttp_request *req, void *arg)
{
	struct http_server *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

	http_add_security_headers(req);
	if (path == NULL || !http_autoconfig_dispatch(h, req, path))
		http_reply_error(req, 404, "not found");
}

/* evhttp's limits, the same on both listeners. */
static void
http_set_limits(struct evhttp *http)
{
	evhttp_set_max_body_size(http, HTTP_MAX_BODY);
	evhttp_set_max_headers_size(http, HTTP_MAX_HEADERS);
	evhttp_set_timeout(http, HTTP_TIMEOUT_S);
	evhttp_set_default_content_type(http, "text/plain; charset=utf-8");
}

static bool
http_bind(struct evhttp *http, const char *address, uint16_t port,
    char *err, size_t errsz)
{
	int fd = listener_open(address, port, err, errsz);

	if (fd < 0)
		return false;
	if (evhttp_accept_socket_with_handle(http, fd) == NULL) {
		close(fd);
		snprintf(err, errsz, "admin: cannot listen on %s port %u",
		    address, port);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Server-Sent Events                                                  */

static void
http_sse_send(struct http_sse *s, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		fatal("out of memory");
	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
}

static void
http_sse_end(struct http_sse *s)
{
	/* The connection may live on (keep-alive): its close callback must
	 * not find this slot again. */
	evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	evhttp_send_reply_end(s->req);
	s->used = false;
	s->h->n_sse--;
}

static void
http_sse_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_sse *s = arg;

	(void)evcon;
	if (!s->used)
		return;
	/* A peer gone mid-stream: evhttp has detached the unfinished
	 * request from its connection and leaves it to us; ending it frees
	 * it.  Otherwise (evhttp_free at shutdown) the connection frees it. */
	if (evhttp_request_get_connection(s->req) == NULL)
		evhttp_send_reply_end(s->req);
	s->used = false;
	s->h->n_sse--;
}

void
http_sse_open(struct http_server *h, struct evhttp_request *req,
    const struct http_login *l)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct http_sse *s = NULL;

	for (size_t i = 0; i < HTTP_SSE_MAX; i++) {
		if (!h->sse[i].used) {
			s = &h->sse[i];
			break;
		}
	}
	if (s == NULL) {
		http_reply_error(req, 503, "too many live pages");
		return;
	}
	memset(s, 0, sizeof(*s));
	s->h = h;
	s->req = req;
	s->evcon = evhttp_request_get_connection(req);
	s->used = true;
	if (l != NULL)
		memcpy(s->login_id, l->id, sizeof(s->login_id));
	h->n_sse++;
	evhttp_add_header(out, "Content-Type", "text/event-stream");
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(s->evcon, http_sse_closed, s);
	http_sse_send(s, "retry: 2000\n\nevent: hello\ndata: {}\n\n");
}

static bool
http_sse_login_live(struct http_server *h, const struct http_sse *s,
    time_t now)
{
	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		const struct http_login *l = &h->auth.logins[i];

		if (l->used && s->login_id[0] != '\0' &&
		    memcmp(l->id, s->login_id, HTTP_TOKEN_HEX) == 0)
			return now - l->last < (time_t)h->auth.idle_timeout;
	}
	return s->login_id[0] == '\0';	/* Basic auth: no login to lose */
}

static void
http_on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *h = arg;
	time_t now = time(NULL);
	char msg[96];

	(void)fd;
	(void)what;
	snprintf(msg, sizeof(msg), "event: heartbeat\ndata: {\"time\":%lld}\n\n",
	    (long long)now);
	for (size_t i = 0; i < HTTP_SSE_MAX; i++) {
		struct http_sse *s = &h->sse[i];

		if (!s->used)
			continue;
		/* A stream lives no longer than its login: after logout or
		 * expiry the page gets no more events. */
		if (!http_sse_login_live(h, s, now))
			http_sse_end(s);
		else
			http_sse_send(s, msg);
	}
}

void
http_sse_broadcast(struct http_server *h, const char *msg)
{
	for (size_t i = 0; i < HTTP_SSE_MAX; i++)
		if (h->sse[i].used)
			http_sse_send(&h->sse[i], msg);
}

static void
http_broadcast_changed(struct http_server *h, unsigned bits)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ HTTP_CHANGED_USERS, "users" },
		{ HTTP_CHANGED_SESSIONS, "sessions" },
		{ HTTP_CHANGED_SETTINGS, "settings" },
		{ HTTP_CHANGED_COUNTERS, "counters" },
	};
	char msg[96];

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (!(bits & names[k].bit))
			continue;
		snprintf(msg, sizeof(msg),
		    "event: changed\ndata: {\"what\":\"%s\"}\n\n", names[k].name);
		for (size_t i = 0; i < HTTP_SSE_MAX; i++)
			if (h->sse[i].used)
				http_sse_send(&h->sse[i], msg);
	}
}

static void
http_on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *h = arg;
	uint64_t v;
	unsigned bits;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("admin: eventfd");
	bits = atomic_exchange(&h->pending, 0u);
	if (bits & HTTP_STOP) {
		for (size_t i = 0; i < HTTP_SSE_MAX; i++)
			if (h->sse[i].used)
				http_sse_end(&h->sse[i]);
		event_base_loopbreak(h->base);
		return;
	}
	http_broadcast_changed(h, bits);
}

void
http_server_changed(struct http_server *h, const char *what)
{
	unsigned bit = strcmp(what, "users") == 0 ? HTTP_CHANGED_USERS :
	    strcmp(what, "sessions") == 0 ? HTTP_CHANGED_SESSIONS :
	    strcmp(what, "settings") == 0 ? HTTP_CHANGED_SETTINGS :
	    HTTP_CHANGED_COUNTERS;
	uint64_t one = 1;

	if (h == NULL)
		return;
	atomic_fetch_or(&h->pending, bit);
	if (write(h->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("admin: eventfd");
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

static struct bufferevent *
http_tls_bevcb(struct event_base *base, void *arg)
{
	struct http_server *h = arg;

	return tls_bufferevent_accept(h->tls, base);
}

static void
http_add_host(struct http_server *h, const char *name)
{
	h->hosts = xreallocarray(h->hosts, h->n_hosts + 1, sizeof(*h->hosts));
	h->hosts[h->n_hosts++] = xstrdup(name);
}

struct http_server *
http_server_new(const struct http_server_params *p, char *err, size_t errsz)
{
	const struct admin_cfg *c = p->cfg;
	struct http_server *h = xcalloc(1, sizeof(*h));
	struct timeval hb = { .tv_sec = HTTP_SSE_HEARTBEAT_S };

	h->wake_fd = -1;
	h->started = time(NULL);
	h->port = c->port;
	h->src = p->source;
	http_auth_init(&h->auth, p->password_hash, c->session_timeout);
	h->sse = xcalloc(HTTP_SSE_MAX, sizeof(*h->sse));
	http_add_host(h, "127.0.0.1");
	http_add_host(h, "localhost");
	http_add_host(h, "[::1]");
	if (strcmp(c->address, "0.0.0.0") != 0 && strcmp(c->address, "::") != 0)
		http_add_host(h, c->address);
	for (size_t i = 0; i < c->n_hostnames; i++)
		http_add_host(h, c->hostnames[i]);
	snprintf(h->name, sizeof(h->name), "%s%s%s:%u%s",
	    strchr(c->address, ':') != NULL ? "[" : "", c->address,
	    strchr(c->address, ':') != NULL ? "]" : "", c->port,
	    p->tls != NULL ? " (TLS)" : "");
	/* The thread does not exist yet: this base is ours until start. */
	h->base = event_base_new();
	h->http = h->base != NULL ? evhttp_new(h->base) : NULL;
	if (h->http == NULL) {
		snprintf(err, errsz, "admin: cannot set up the HTTP server");
		http_server_free(&h);
		return NULL;
	}
	if (p->tls != NULL) {
		tls_ctx_ref(p->tls);
		h->tls = p->tls;
		evhttp_set_bevcb(h->http, http_tls_bevcb, h);
	}
	http_set_limits(h->http);
	/* uploads: the admin's listener only (see HTTP_UPLOAD_MAX) */
	evhttp_set_max_body_size(h->http, HTTP_UPLOAD_MAX);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(h->http, http_on_request, h);
	if (!http_bind(h->http, c->address, c->port, err, errsz)) {
		http_server_free(&h);
		return NULL;
	}
	if (c->autoconfig.port != 0) {
		/* Plain HTTP: clients fetch these documents before they
		 * know anything, and they hold nothing secret. */
		if ((h->pub = evhttp_new(h->base)) == NULL) {
			snprintf(err, errsz, "admin: cannot set up the "
			    "autoconfig listener");
			http_server_free(&h);
			return NULL;
		}
		http_set_limits(h->pub);
		evhttp_set_allowed_methods(h->pub, EVHTTP_REQ_GET |
		    EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
		evhttp_set_gencb(h->pub, http_on_public_request, h);
		if (!http_bind(h->pub, c->autoconfig.address,
		    c->autoconfig.port, err, errsz)) {
			http_server_free(&h);
			return NULL;
		}
	}
	h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->wake_fd < 0) {
		snprintf(err, errsz, "admin: eventfd: %s", strerror(errno));
		http_server_free(&h);
		return NULL;
	}
	h->wake = event_new(h->base, h->wake_fd, EV_READ | EV_PERSIST,
	    http_on_wake, h);
	h->heartbeat = event_new(h->base, -1, EV_PERSIST, http_on_heartbeat, h);
	event_add(h->wake, NULL);
	event_add(h->heartbeat, &hb);
	h->mbx = http_mailbox_new(h);
	return h;
}

static void *
http_thread_main(void *arg)
{
	struct http_server *h = arg;

	/* The admin yields the CPU to the POP3 loop: on a busy machine
	 * pages that poll as fast as they can wait, sessions do not
	 * (Linux: a thread's nice value is its own). */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), HTTP_THREAD_NICE) != 0)
		log_debug("admin: setpriority: %s", strerror(errno));

	event_base_dispatch(h->base);
	return NULL;
}

bool
http_server_start(struct http_server *h, char *err, size_t errsz)
{
	int e = pthread_create(&h->thread, NULL, http_thread_main, h);

	if (e != 0) {
		snprintf(err, errsz, "admin: cannot start thread: %s",
		    strerror(e));
		return false;
	}
	h->running = true;
	return true;
}

const char *
http_server_name(const struct http_server *h)
{
	return h->name;
}

void
http_server_free(struct http_server **hp)
{
	struct http_server *h = *hp;
	uint64_t one = 1;

	if (h == NULL)
		return;
	*hp = NULL;
	if (h->running) {
		atomic_fetch_or(&h->pending, HTTP_STOP);
		if (write(h->wake_fd, &one, sizeof(one)) < 0)
			log_warn("admin: eventfd");
		pthread_join(h->thread, NULL);
	}
	/* The thread is gone: the base is ours again. */
	if (h->http != NULL)
		evhttp_free(h->http);
	if (h->pub != NULL)
		evhttp_free(h->pub);
	http_mailbox_free(&h->mbx);
	if (h->wake != NULL)
		event_free(h->wake);
	if (h->heartbeat != NULL)
		event_free(h->heartbeat);
	if (h->base != NULL)
		event_base_free(h->base);
	if (h->wake_fd >= 0)
		close(h->wake_fd);
	tls_ctx_unref(&h->tls);
	http_auth_clear(&h->auth);
	for (size_t i = 0; i < h->n_hosts; i++)
		free(h->hosts[i]);
	free(h->hosts);
	free(h->sse);
	free(h);
}
