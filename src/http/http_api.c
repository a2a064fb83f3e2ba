/*
 * http_api.c - the REST API under /api/v1/ and /metrics.
 *
 * Every route but POST /api/v1/login needs a login: the session cookie,
 * or for GET routes HTTP Basic "admin:password" (curl -u, Prometheus).
 * Every state-changing request needs the session's X-CSRF-Token as well
 * (Basic credentials a browser cached never change anything).  JSON goes
 * out through jansson, so a user-supplied string is always a JSON string.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http/http_int.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

#define ROUTE_PUBLIC	0x1u	/* no login needed (the login itself) */
#define ROUTE_CHANGES	0x2u	/* state-changing: session + CSRF token */

struct http_call {
	struct http_server *h;
	struct evhttp_request *req;
	struct http_login *login;	/* NULL with Basic credentials */
	time_t now;
	char peer[64];
};

typedef void http_route_fn(struct http_call *c);

struct http_route {
	const char *path;
	enum evhttp_cmd_type method;
	unsigned flags;
	http_route_fn *fn;
};

static void
http_reply_json(struct evhttp_request *req, int code, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);

	if (text == NULL)
		fatal("out of memory");
	http_reply_json_text(req, code, text);
	free(text);
	json_decref(v);
}

/* The request's JSON object body, or NULL after replying with why not. */
static json_t *
http_body_object(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	json_t *v;

	/* A cross-site form cannot send application/json without a CORS
	 * preflight, which this server never answers. */
	if (ct == NULL || !ascii_casepfx(ct, "application/json")) {
		http_reply_error(req, 415, "Content-Type must be "
		    "application/json");
		return NULL;
	}
	if (len > HTTP_MAX_BODY) {
		http_reply_error(req, 413, "request body too large");
		return NULL;
	}
	v = json_loadb((const char *)evbuffer_pullup(in, -1), len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL || !json_is_object(v)) {
		json_decref(v);
		http_reply_error(req, 400, "body is not a JSON object");
		return NULL;
	}
	return v;
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */

static void
http_set_cookie(struct http_call *c, const char *value, long max_age)
{
	char buf[256];

	/* HttpOnly: no script reads it; SameSite=Strict: no other site's
	 * page sends it; Secure over HTTPS. */
	snprintf(buf, sizeof(buf), "%s=%s; Path=/; Max-Age=%ld; HttpOnly; "
	    "SameSite=Strict%s", http_cookie_name(), value, max_age,
	    http_is_tls(c->h) ? "; Secure" : "");
	evhttp_add_header(evhttp_request_get_output_headers(c->req),
	    "Set-Cookie", buf);
}

static void
http_route_login(struct http_call *c)
{
	unsigned wait = http_auth_wait(&c->h->auth, c->peer, c->now);
	struct http_login *l;
	json_t *body, *pw;
	char ra[16];

	if (wait > 0) {
		/* No password is even looked at while the penalty runs. */
		snprintf(ra, sizeof(ra), "%u", wait);
		evhttp_add_header(evhttp_request_get_output_headers(c->req),
		    "Retry-After", ra);
		http_reply_error(c->req, 429, "too many failed logins; try "
		    "again later");
		return;
	}
	body = http_body_object(c->req);
	if (body == NULL)
		return;
	pw = json_object_get(body, "password");
	if (!json_is_string(pw)) {
		json_decref(body);
		http_reply_error(c->req, 400, "\"password\" is required");
		return;
	}
	if (!http_auth_check(&c->h->auth, c->peer, json_string_value(pw),
	    json_string_length(pw), c->now)) {
		json_decref(body);
		http_reply_error(c->req, 401, "wrong password");
		return;
	}
	json_decref(body);
	l = http_auth_login(&c->h->auth, c->now);
	http_set_cookie(c, l->id, HTTP_SESSION_MAX_AGE);
	log_info("admin: login from %s", c->peer);
	http_reply_json(c->req, 200, json_pack("{s:s, s:s}", "user", "admin",
	    "csrf", l->csrf));
}

static void
http_route_logout(struct http_call *c)
{
	http_auth_logout(&c->h->auth, c->login);
	http_set_cookie(c, "", 0);
	http_reply_json(c->req, 200, json_object());
}

static void
http_route_me(struct http_call *c)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "user", "admin",
	    "version", POSUTO_VERSION, "tls", http_is_tls(c->h));

	if (c->login != NULL) {
		json_object_set_new(o, "csrf", json_string(c->login->csrf));
		json_object_set_new(o, "idle_timeout",
		    json_integer(c->h->auth.idle_timeout));
	}
	http_reply_json(c->req, 200, o);
}

static bool
http_user_add(const struct http_admin_user *u, void *arg)
{
	json_t *o = json_pack("{s:s, s:b}", "name", u->name, "apop", u->apop);

	if (o == NULL)		/* a name that is not UTF-8: never listed */
		return true;
	json_object_set_new(o, "mailbox", u->mailbox != NULL ?
	    json_string(u->mailbox) : json_null());
	json_object_set_new(o, "format", json_string(u->format != NULL ?
	    u->format : "auto"));
	json_object_set_new(o, "scheme", u->scheme != NULL ?
	    json_string(u->scheme) : json_null());
	json_object_set_new(o, "origin", u->origin != NULL ?
	    json_string(u->origin) : json_null());
	json_array_append_new(arg, o);
	return true;
}

static void
http_route_users(struct http_call *c)
{
	json_t *a = json_array();
	bool ok = c->h->src.users != NULL &&
	    c->h->src.users(c->h->src.arg, http_user_add, a);

	http_reply_json(c->req, 200, json_pack("{s:o, s:b}", "users", a,
	    "available", ok));
}

static void
http_route_settings(struct http_call *c)
{
	char *text = c->h->src.settings_json != NULL ?
	    c->h->src.settings_json(c->h->src.arg) : NULL;
	json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;
	json_t *pop, *users;

	free(text);
	if (v == NULL) {
		http_reply_error(c->req, 503, "settings not available");
		return;
	}
	/* Users have their own route (and their own page). */
	pop = json_object_get(v, "Pop3Server");
	users = json_object_get(pop, "Users");
	json_object_set_new(v, "user_count", json_integer(
	    (json_int_t)json_array_size(users)));
	json_object_del(pop, "Users");
	http_reply_json(c->req, 200, v);
}

static void
http_route_sessions(struct http_call *c)
{
	struct http_admin_session *s = NULL;
	json_t *a = json_array();
	size_t n = 0;

	if (c->h->src.sessions != NULL) {
		s = xcalloc(1024, sizeof(*s));
		n = c->h->src.sessions(c->h->src.arg, s, 1024);
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_pack("{s:I, s:s?, s:s, s:s, s:s, s:s, s:I, "
		    "s:I, s:I}", "id", (json_int_t)s[i].id, "user",
		    s[i].user[0] != '\0' ? s[i].user : NULL,
		    "client", s[i].client, "protocol", s[i].protocol,
		    "state", s[i].state, "command", s[i].command,
		    "since", (json_int_t)s[i].since,
		    "bytes_in", (json_int_t)s[i].bytes_in,
		    "bytes_out", (json_int_t)s[i].bytes_out);

		if (o != NULL)
			json_array_append_new(a, o);
	}
	free(s);
	http_reply_json(c->req, 200, json_pack("{s:o, s:b}", "sessions", a,
	    "available", c->h->src.sessions != NULL));
}

static size_t
http_metrics(struct http_server *h, struct http_admin_metric *m)
{
	size_t n = h->src.metrics != NULL ?
	    h->src.metrics(h->src.arg, m, HTTP_ADMIN_METRICS_MAX - 1) : 0;

	m[n++] = (struct http_admin_metric){
		.label = "",
		.name = "posuto_admin_live_pages",
		.help = "Web admin pages receiving live events",
		.type = HTTP_METRIC_GAUGE, .value = h->n_sse,
	};
	return n;
}

static void
http_route_counters(struct http_call *c)
{
	struct http_admin_metric m[HTTP_ADMIN_METRICS_MAX];
	size_t n = http_metrics(c->h, m);
	json_t *a = json_array();
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++) {
		json_t *e = json_pack("{s:s, s:s, s:s, s:f}", "name", m[i].name,
		    "help", m[i].help, "type", m[i].type == HTTP_METRIC_COUNTER ?
		    "counter" : "gauge", "value", m[i].value);

		if (m[i].label[0] != '\0')
			json_object_set_new(e, "label", json_string(m[i].label));
		json_array_append_new(a, e);
		if (strcmp(m[i].name, "posuto_uptime_seconds") == 0)
			json_object_set_new(o, "uptime_seconds",
			    json_integer((json_int_t)m[i].value));
	}
	json_object_set_new(o, "metrics", a);
	http_reply_json(c->req, 200, o);
}

/* Prometheus text exposition format 0.0.4. */
static void
http_route_metrics(struct http_call *c)
{
	struct http_admin_metric m[HTTP_ADMIN_METRICS_MAX];
	size_t n = http_metrics(c->h, m);
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);

	if (b == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		bool first = i == 0 || strcmp(m[i - 1].name, m[i].name) != 0;

		if (first)
			evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n",
			    m[i].name, m[i].help, m[i].name,
			    m[i].type == HTTP_METRIC_COUNTER ? "counter" :
			    "gauge");
		bool lab = m[i].label[0] != '\0';

		if (m[i].value == floor(m[i].value) &&
		    fabs(m[i].value) < 9e15)
			evbuffer_add_printf(b, "%s%s%s%s %lld\n", m[i].name,
			    lab ? "{" : "", m[i].label, lab ? "}" : "",
			    (long long)m[i].value);
		else
			evbuffer_add_printf(b, "%s%s%s%s %.17g\n", m[i].name,
			    lab ? "{" : "", m[i].label, lab ? "}" : "",
			    m[i].value);
	}
	evhttp_add_header(out, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_send_reply(c->req, 200, "OK", b);
	evbuffer_free(b);
}

static void
http_route_openapi(struct http_call *c)
{
	const struct http_asset *a = http_asset_find("/api/openapi.json");
	struct evbuffer *b = evbuffer_new();

	if (a == NULL || b == NULL)
		fatalx("openapi.json not embedded");
	evhttp_add_header(evhttp_request_get_output_headers(c->req),
	    "Content-Type", a->type);
	evbuffer_add_reference(b, a->data, a->len, NULL, NULL);
	evhttp_send_reply(c->req, 200, "OK", b);
	evbuffer_free(b);
}

static void
http_route_events(struct http_call *c)
{
	http_sse_open(c->h, c->req, c->login);
}

static const struct http_route http_routes[] = {
	{ "/api/v1/login", EVHTTP_REQ_POST, ROUTE_PUBLIC, http_route_login },
	{ "/api/v1/logout", EVHTTP_REQ_POST, ROUTE_CHANGES, http_route_logout },
	{ "/api/v1/me", EVHTTP_REQ_GET, 0, http_route_me },
	{ "/api/v1/users", EVHTTP_REQ_GET, 0, http_route_users },
	{ "/api/v1/settings", EVHTTP_REQ_GET, 0, http_route_settings },
	{ "/api/v1/sessions", EVHTTP_REQ_GET, 0, http_route_sessions },
	{ "/api/v1/counters", EVHTTP_REQ_GET, 0, http_route_counters },
	{ "/api/v1/events", EVHTTP_REQ_GET, 0, http_route_events },
	{ "/api/v1/openapi.json", EVHTTP_REQ_GET, 0, http_route_openapi },
	{ "/metrics", EVHTTP_REQ_GET, 0, http_route_metrics },
};
#define HTTP_N_ROUTES	(sizeof(http_routes) / sizeof(http_routes[0]))

static bool
http_method_reads(enum evhttp_cmd_type m)
{
	return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
}

bool
http_api_dispatch(struct http_server *h, struct evhttp_request *req,
    const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct http_route *r = NULL;
	struct http_call c;
	bool tried_basic = false;

	if (strncmp(path, "/api/", 5) != 0 && strcmp(path, "/metrics") != 0)
		return false;
	if (http_mailbox_dispatch(h, req, path))	/* http_mailbox.c */
		return true;
	for (size_t i = 0; i < HTTP_N_ROUTES; i++) {
		if (strcmp(http_routes[i].path, path) == 0) {
			r = &http_routes[i];
			break;
		}
	}
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.req = req;
	c.now = time(NULL);
	(void)http_peer(req, c.peer, sizeof(c.peer));
	/* Without a login nothing, not even which routes exist, is told. */
	if (r == NULL || !(r->flags & ROUTE_PUBLIC)) {
		c.login = http_auth_session(&h->auth, req, c.now);
		if (c.login == NULL && !(http_method_reads(m) &&
		    http_auth_basic(&h->auth, req, c.peer, c.now,
		    &tried_basic))) {
			if (tried_basic)
				evhttp_add_header(
				    evhttp_request_get_output_headers(req),
				    "WWW-Authenticate",
				    "Basic realm=\"posuto\", charset=\"UTF-8\"");
			http_reply_error(req, 401, "login required");
			return true;
		}
	}
	if (r == NULL) {
		http_reply_error(req, 404, "no such route");
		return true;
	}
	if (m != r->method && !(m == EVHTTP_REQ_HEAD &&
	    r->method == EVHTTP_REQ_GET)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", r->method == EVHTTP_REQ_GET ? "GET, HEAD" :
		    "POST");
		http_reply_error(req, 405, "method not allowed");
		return true;
	}
	if ((r->flags & ROUTE_CHANGES) && !http_auth_csrf_ok(c.login, req)) {
		http_reply_error(req, 403, "missing or wrong X-CSRF-Token");
		return true;
	}
	r->fn(&c);
	return true;
}
