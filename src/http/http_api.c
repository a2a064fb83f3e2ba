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
#include <stdio.h>
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
#define ROUTE_PREFIX	0x4u	/* path is a prefix; the rest is c->tail */

struct http_call {
	struct http_server *h;
	struct evhttp_request *req;
	struct http_login *login;	/* NULL with Basic credentials */
	time_t now;
	char peer[64];
	const char *tail;		/* ROUTE_PREFIX: after the prefix */
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
	if (u->messages >= 0) {
		json_object_set_new(o, "messages", json_integer(u->messages));
		json_object_set_new(o, "octets", json_integer(u->octets));
		if (u->drift_tracked)
			json_object_set_new(o, "uidl_drift", json_pack(
			    "{s:I, s:I, s:I}", "changed",
			    (json_int_t)u->drift_changed, "reappeared",
			    (json_int_t)u->drift_reappeared, "reretrieved",
			    (json_int_t)u->drift_reretrieved));
	} else if (u->stats_error != NULL) {
		json_object_set_new(o, "stats_error",
		    json_string(u->stats_error));
	}
	json_array_append_new(arg, o);
	return true;
}

/* The query parameter name of the request, or NULL (malloc'd). */
static char *
http_query_param(struct evhttp_request *req, const char *name)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	const char *v;
	char *r = NULL;

	if (q == NULL || evhttp_parse_query_str(q, &params) != 0)
		return NULL;
	v = evhttp_find_header(&params, name);
	if (v != NULL)
		r = xstrdup(v);
	evhttp_clear_headers(&params);
	return r;
}

static bool
http_query_flag(struct evhttp_request *req, const char *name)
{
	char *v = http_query_param(req, name);
	bool on = v != NULL && (strcmp(v, "1") == 0 ||
	    strcmp(v, "true") == 0);

	free(v);
	return on;
}

static void
http_route_users(struct http_call *c)
{
	json_t *a = json_array();
	bool stats = http_query_flag(c->req, "stats") &&
	    c->h->src.users_stats != NULL;
	bool ok = stats ? c->h->src.users_stats(c->h->src.arg, http_user_add, a) :
	    c->h->src.users != NULL &&
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

		if (o != NULL) {
			json_t *hist = json_array();

			for (unsigned k = 0; k < s[i].n_history; k++) {
				json_t *line = json_string(s[i].history[k]);

				/* Not UTF-8 (a cut multi-byte name): shown
				 * as what it is not, rather than dropped. */
				json_array_append_new(hist, line != NULL ? line :
				    json_string("(not UTF-8)"));
			}
			json_object_set_new(o, "history", hist);
			json_object_set_new(o, "idle_timeout",
			    json_integer(s[i].idle_timeout));
			json_object_set_new(o, "loop", json_integer(s[i].loop));
			json_array_append_new(a, o);
		}
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

static const char *
http_metric_type_name(enum http_metric_type t)
{
	return t == HTTP_METRIC_COUNTER ? "counter" :
	    t == HTTP_METRIC_HISTOGRAM ? "histogram" : "gauge";
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
		    "help", m[i].help, "type", http_metric_type_name(m[i].type),
		    "value", m[i].value);

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
		const char *fam = m[i].family != NULL ? m[i].family :
		    m[i].name;
		const char *prev = i == 0 ? NULL : m[i - 1].family != NULL ?
		    m[i - 1].family : m[i - 1].name;
		bool first = prev == NULL || strcmp(prev, fam) != 0;

		if (first)
			evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n",
			    fam, m[i].help, fam,
			    http_metric_type_name(m[i].type));
		bool lab = m[i].label[0] != '\0';

		if (m[i].value == floor(m[i].value) &&
		    fabs(m[i].value) < 9e15)
			evbuffer_add_printf(b, "%s%s%s%s %lld\n", m[i].name,
			    lab ? "{" : "", m[i].label, lab ? "}" : "",
			    (long long)m[i].value);
		else
			/* Fixed notation: no exponent for a parser to mind. */
			evbuffer_add_printf(b, "%s%s%s%s %.9f\n", m[i].name,
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

/* ---- users: the same edits as `posuto user` ---- */

static const char *
http_json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Runs op, answers with its status; JSON strings are NUL-free. */
static void
http_user_run(struct http_call *c, struct http_admin_user_op *op)
{
	char msg[512] = "";
	int code;

	if (c->h->src.user_op == NULL) {
		http_reply_error(c->req, 503, "user editing not available");
		return;
	}
	code = c->h->src.user_op(c->h->src.arg, op, msg, sizeof(msg));
	if (code == 200) {
		log_info("admin: user %s: %s from %s", op->op, op->name,
		    c->peer);
		http_server_changed(c->h, "users");
		http_reply_json(c->req, 200, json_pack("{s:s, s:s}", "user",
		    op->name, "done", op->op));
		return;
	}
	http_reply_error(c->req, code, msg[0] != '\0' ? msg :
	    "refused; nothing changed");
}

static void
http_route_user_add(struct http_call *c)
{
	json_t *body = http_body_object(c->req), *pw;
	struct http_admin_user_op op = { .op = "add" };

	if (body == NULL)
		return;
	op.name = http_json_str(body, "name");
	op.scheme = http_json_str(body, "scheme");
	pw = json_object_get(body, "password");
	if (op.name == NULL || !json_is_string(pw) ||
	    json_string_length(pw) == 0) {
		json_decref(body);
		http_reply_json(c->req, 400, json_pack("{s:s, s:s}", "error",
		    "\"name\" and \"password\" are required", "key",
		    op.name == NULL ? "name" : "password"));
		return;
	}
	op.secret = json_string_value(pw);
	op.secret_len = json_string_length(pw);
	http_user_run(c, &op);
	json_decref(body);
}

/*
 * /api/v1/users/NAME, /api/v1/users/NAME/password, .../apop.  NAME is
 * percent-decoded; what it may be is userdb's to judge (the edit checks
 * it as `posuto user` does).
 */
static void
http_route_user_item(struct http_call *c)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(c->req);
	const char *slash = strchr(c->tail, '/');
	size_t nlen = slash != NULL ? (size_t)(slash - c->tail) :
	    strlen(c->tail);
	const char *what = slash != NULL ? slash + 1 : "";
	struct http_admin_user_op op = { .op = NULL };
	char *enc = xstrndup(c->tail, nlen), *name;
	size_t dlen = 0;
	json_t *body = NULL, *v;

	name = evhttp_uridecode(enc, 0, &dlen);
	free(enc);
	if (name == NULL || dlen == 0 || strlen(name) != dlen) {
		free(name);
		http_reply_error(c->req, 404, "no such route");
		return;
	}
	op.name = name;
	if (what[0] == '\0' && m == EVHTTP_REQ_DELETE) {
		op.op = "del";
		op.purge = http_query_flag(c->req, "purge");
		http_user_run(c, &op);
	} else if (strcmp(what, "password") == 0 && m == EVHTTP_REQ_PUT) {
		if ((body = http_body_object(c->req)) == NULL)
			goto out;
		v = json_object_get(body, "password");
		if (!json_is_string(v) || json_string_length(v) == 0) {
			http_reply_json(c->req, 400, json_pack("{s:s, s:s}",
			    "error", "\"password\" is required", "key",
			    "password"));
			goto out;
		}
		op.op = "passwd";
		op.scheme = http_json_str(body, "scheme");
		op.secret = json_string_value(v);
		op.secret_len = json_string_length(v);
		http_user_run(c, &op);
	} else if (strcmp(what, "apop") == 0 && (m == EVHTTP_REQ_PUT ||
	    m == EVHTTP_REQ_DELETE)) {
		op.op = "apop";
		if (m == EVHTTP_REQ_PUT) {
			if ((body = http_body_object(c->req)) == NULL)
				goto out;
			v = json_object_get(body, "secret");
			if (!json_is_string(v) || json_string_length(v) == 0) {
				http_reply_json(c->req, 400, json_pack(
				    "{s:s, s:s}", "error", "\"secret\" is "
				    "required (DELETE removes it)", "key",
				    "secret"));
				goto out;
			}
			op.secret = json_string_value(v);
			op.secret_len = json_string_length(v);
		}
		http_user_run(c, &op);
	} else if (what[0] == '\0' || strcmp(what, "password") == 0 ||
	    strcmp(what, "apop") == 0) {
		http_reply_error(c->req, 405, "method not allowed");
	} else {
		http_reply_error(c->req, 404, "no such route");
	}
out:
	json_decref(body);
	free(name);
}

/* ---- settings ---- */

static void
http_route_settings_put(struct http_call *c)
{
	json_t *body = http_body_object(c->req), *pop;
	const char *k;
	json_t *v;
	char key[128] = "", msg[512] = "", *text;
	int code;

	if (body == NULL)
		return;
	/* What the General page edits: Pop3Server's settings.  Users have
	 * their own routes (checked edits, hashed secrets); the admin's
	 * own listener and password are not changed from inside it. */
	json_object_foreach(body, k, v) {
		if (strcmp(k, "Pop3Server") != 0) {
			/* k is body's: the reply is made before it goes. */
			json_t *e = json_pack("{s:s, s:s}", "error", "only "
			    "Pop3Server settings can be changed here", "key", k);

			json_decref(body);
			http_reply_json(c->req, 400, e);
			return;
		}
	}
	pop = json_object_get(body, "Pop3Server");
	if (!json_is_object(pop)) {
		json_decref(body);
		http_reply_json(c->req, 400, json_pack("{s:s, s:s}", "error",
		    "must be an object", "key", "Pop3Server"));
		return;
	}
	if (json_object_get(pop, "Users") != NULL ||
	    json_object_get(pop, "PasswdFile") != NULL) {
		const char *which = json_object_get(pop, "Users") != NULL ?
		    "Pop3Server.Users" : "Pop3Server.PasswdFile";

		json_decref(body);
		http_reply_json(c->req, 400, json_pack("{s:s, s:s}", "error",
		    "users are changed with /api/v1/users", "key", which));
		return;
	}
	if (c->h->src.settings_patch == NULL) {
		json_decref(body);
		http_reply_error(c->req, 503, "settings editing not available");
		return;
	}
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		fatal("out of memory");
	code = c->h->src.settings_patch(c->h->src.arg, text, strlen(text),
	    key, sizeof(key), msg, sizeof(msg));
	free(text);
	if (code == 200) {
		log_info("admin: settings changed from %s", c->peer);
		http_server_changed(c->h, "settings");
		http_route_settings(c);
		return;
	}
	if (key[0] != '\0') {
		json_t *e = json_pack("{s:s, s:s}", "error", msg, "key", key);

		/* Messages quote the file (paths, values): UTF-8 or not. */
		if (e != NULL) {
			http_reply_json(c->req, code, e);
			return;
		}
	}
	http_reply_error(c->req, code, msg[0] != '\0' ? msg :
	    "refused; nothing changed");
}

/* ---- sessions/ID/kick ---- */

static void
http_route_session_item(struct http_call *c)
{
	uint64_t id;
	const char *slash = strchr(c->tail, '/');

	if (slash == NULL || strcmp(slash, "/kick") != 0 ||
	    !parse_u64(c->tail, (size_t)(slash - c->tail), &id)) {
		http_reply_error(c->req, 404, "no such route");
		return;
	}
	if (evhttp_request_get_command(c->req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(c->req),
		    "Allow", "POST");
		http_reply_error(c->req, 405, "method not allowed");
		return;
	}
	if (c->h->src.kick == NULL || !c->h->src.kick(c->h->src.arg, id)) {
		http_reply_error(c->req, 404, "no such session");
		return;
	}
	log_info("admin: kick session=%llx from %s", (unsigned long long)id,
	    c->peer);
	http_reply_json(c->req, 202, json_pack("{s:I, s:b}", "id",
	    (json_int_t)id, "kicked", 1));
}

/* ---- sessions/ID/transcript ---- */

static void
http_route_session_get(struct http_call *c)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);
	struct evbuffer *body;
	const char *slash = strchr(c->tail, '/');
	char *text = NULL, disp[80];
	size_t len = 0;
	uint64_t id;

	if (slash != NULL && strcmp(slash, "/kick") == 0) {
		evhttp_add_header(out, "Allow", "POST");
		http_reply_error(c->req, 405, "method not allowed");
		return;
	}
	if (slash == NULL || strcmp(slash, "/transcript") != 0 ||
	    !parse_u64(c->tail, (size_t)(slash - c->tail), &id)) {
		http_reply_error(c->req, 404, "no such route");
		return;
	}
	if (c->h->src.transcript == NULL ||
	    !c->h->src.transcript(c->h->src.arg, id, &text, &len)) {
		http_reply_error(c->req, 404, "no transcript of this session "
		    "(Pop3Server.Transcripts, or no longer kept)");
		return;
	}
	evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
	evhttp_add_header(out, "Cache-Control", "no-store");
	(void)snprintf(disp, sizeof(disp), "inline; filename=\"session-%llu-"
	    "transcript.txt\"", (unsigned long long)id);
	evhttp_add_header(out, "Content-Disposition", disp);
	body = evbuffer_new();
	if (body == NULL)
		fatal("out of memory");
	evbuffer_add(body, text, len);
	free(text);
	evhttp_send_reply(c->req, 200, "OK", body);
	evbuffer_free(body);
}

/* ---- the dashboard's chart ---- */

static void
http_route_chart(struct http_call *c)
{
	struct http_admin_point p[HTTP_ADMIN_CHART_MINUTES];
	size_t n = c->h->src.chart != NULL ?
	    c->h->src.chart(c->h->src.arg, p, HTTP_ADMIN_CHART_MINUTES) : 0;
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:I, s:I, s:I, s:I}",
		    "minute", (json_int_t)(p[i].minute * 60), "logins",
		    (json_int_t)p[i].logins, "retrieved",
		    (json_int_t)p[i].retrieved, "bytes",
		    (json_int_t)p[i].bytes));
	http_reply_json(c->req, 200, json_pack("{s:o}", "minutes", a));
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
	{ "/api/v1/users", EVHTTP_REQ_POST, ROUTE_CHANGES, http_route_user_add },
	/* every method: the route tells them apart */
	{ "/api/v1/users/", 0, ROUTE_CHANGES | ROUTE_PREFIX,
	    http_route_user_item },
	{ "/api/v1/settings", EVHTTP_REQ_GET, 0, http_route_settings },
	{ "/api/v1/settings", EVHTTP_REQ_PUT, ROUTE_CHANGES,
	    http_route_settings_put },
	{ "/api/v1/settings", EVHTTP_REQ_PATCH, ROUTE_CHANGES,
	    http_route_settings_put },
	{ "/api/v1/sessions", EVHTTP_REQ_GET, 0, http_route_sessions },
	{ "/api/v1/sessions/", EVHTTP_REQ_POST, ROUTE_CHANGES | ROUTE_PREFIX,
	    http_route_session_item },
	{ "/api/v1/sessions/", EVHTTP_REQ_GET, ROUTE_PREFIX,
	    http_route_session_get },
	{ "/api/v1/chart", EVHTTP_REQ_GET, 0, http_route_chart },
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

/* The methods of a path, for Allow. */
static const char *
http_allow(const char *path)
{
	static char buf[64];
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < HTTP_N_ROUTES; i++) {
		const char *name = http_routes[i].method == EVHTTP_REQ_GET ?
		    "GET, HEAD" : http_routes[i].method == EVHTTP_REQ_POST ?
		    "POST" : http_routes[i].method == EVHTTP_REQ_PUT ? "PUT" :
		    http_routes[i].method == EVHTTP_REQ_PATCH ? "PATCH" :
		    http_routes[i].method == EVHTTP_REQ_DELETE ? "DELETE" : "";

		if (strcmp(http_routes[i].path, path) != 0 || name[0] == '\0')
			continue;
		k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s%s",
		    k > 0 ? ", " : "", name);
		if (k >= sizeof(buf))
			break;
	}
	return buf;
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
	/* The route of this path and method; else one of this path (for
	 * 405 and its Allow). */
	for (size_t i = 0; i < HTTP_N_ROUTES; i++) {
		const struct http_route *x = &http_routes[i];
		size_t plen = strlen(x->path);
		bool hit = (x->flags & ROUTE_PREFIX) ?
		    strncmp(x->path, path, plen) == 0 && path[plen] != '\0' :
		    strcmp(x->path, path) == 0;
		bool meth = x->method == 0 || x->method == m ||
		    (m == EVHTTP_REQ_HEAD && x->method == EVHTTP_REQ_GET);

		if (!hit)
			continue;
		if (r == NULL || meth)
			r = x;
		if (meth)
			break;
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
	if (r->method != 0 && m != r->method && !(m == EVHTTP_REQ_HEAD &&
	    r->method == EVHTTP_REQ_GET)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", http_allow(r->path));
		http_reply_error(req, 405, "method not allowed");
		return true;
	}
	if (r->flags & ROUTE_PREFIX)
		c.tail = path + strlen(r->path);
	/* A prefix route that also reads (none today) would check this
	 * itself: every method of these routes changes something. */
	if ((r->flags & ROUTE_CHANGES) && !http_method_reads(m) &&
	    !http_auth_csrf_ok(c.login, req)) {
		http_reply_error(req, 403, "missing or wrong X-CSRF-Token");
		return true;
	}
	r->fn(&c);
	return true;
}
