/*
 * http_auth.c - the web admin's logins: the password check, the per-address
 * limiter, session ids and CSRF tokens.
 *
 * Sessions live here, in memory, with a server-side expiry: the cookie
 * only names one (256 random bits), so logging out or a restart ends it
 * whatever the browser keeps.  The CSRF token is a second random value
 * bound to the session, which a page reads from /api/v1/me (same origin
 * only: no CORS) and sends as X-CSRF-Token.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth/passwd.h"
#include "http/http_int.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

#define HTTP_COOKIE_NAME	"posuto_sid"
#define HTTP_ADMIN_USER		"admin"

void
http_random_hex(char *out, size_t n)
{
	unsigned char raw[64];
	size_t got = 0;

	if (n > sizeof(raw))
		fatalx("http_random_hex: %zu bytes", n);
	while (got < n) {
		ssize_t r = getrandom(raw + got, n - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fatal("getrandom failed");
		got += (size_t)r;
	}
	hex_encode(raw, n, out);
	out[2 * n] = '\0';
	explicit_bzero(raw, sizeof(raw));
}

void
http_auth_init(struct http_auth *a, const char *hash, unsigned idle)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	a->password_hash = xstrdup(hash);
	a->idle_timeout = idle;
}

void
http_auth_clear(struct http_auth *a)
{
	free_secret(a->password_hash);
	pthread_mutex_destroy(&a->mu);
	explicit_bzero(a, sizeof(*a));
}

/* The value of cookie name in the request's Cookie headers, or NULL. */
static bool
http_cookie(struct evhttp_request *req, const char *name, char *out,
    size_t outsz)
{
	struct evkeyvalq *hdr = evhttp_request_get_input_headers(req);
	size_t nlen = strlen(name);

	for (struct evkeyval *kv = hdr->tqh_first; kv != NULL;
	    kv = kv->next.tqe_next) {
		const char *p;

		if (!ascii_caseeq(kv->key, "Cookie"))
			continue;
		for (p = kv->value; *p != '\0';) {
			size_t len;

			while (*p == ' ' || *p == ';')
				p++;
			len = strcspn(p, ";");
			if (len > nlen && strncmp(p, name, nlen) == 0 &&
			    p[nlen] == '=') {
				size_t vlen = len - nlen - 1;

				if (vlen >= outsz)
					return false;
				memcpy(out, p + nlen + 1, vlen);
				out[vlen] = '\0';
				return true;
			}
			p += len;
		}
	}
	return false;
}

static bool
http_login_live(const struct http_auth *a, const struct http_login *l,
    time_t now)
{
	return l->used && now - l->last < (time_t)a->idle_timeout &&
	    now - l->created < HTTP_SESSION_MAX_AGE;
}

struct http_login *
http_auth_session(struct http_auth *a, struct evhttp_request *req,
    time_t now)
{
	char id[HTTP_TOKEN_HEX + 2];
	struct http_login *found = NULL;

	if (!http_cookie(req, HTTP_COOKIE_NAME, id, sizeof(id)) ||
	    strlen(id) != HTTP_TOKEN_HEX)
		return NULL;
	/* Every slot is compared, in constant time: the id is a secret. */
	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		struct http_login *l = &a->logins[i];

		if (l->used && ct_memeq(l->id, id, HTTP_TOKEN_HEX))
			found = l;
	}
	if (found == NULL)
		return NULL;
	if (!http_login_live(a, found, now)) {
		http_auth_logout(a, found);
		return NULL;
	}
	found->last = now;
	return found;
}

bool
http_auth_csrf_ok(const struct http_login *l, struct evhttp_request *req)
{
	const char *t = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "X-CSRF-Token");

	return l != NULL && t != NULL && strlen(t) == HTTP_TOKEN_HEX &&
	    ct_memeq(t, l->csrf, HTTP_TOKEN_HEX);
}

static struct http_rate *
http_rate_slot(struct http_auth *a, const char *addr, bool create, time_t now)
{
	struct http_rate *oldest = &a->rate[0];

	for (size_t i = 0; i < HTTP_RATE_SLOTS; i++) {
		struct http_rate *r = &a->rate[i];

		if (strcmp(r->addr, addr) == 0 && r->addr[0] != '\0')
			return r;
		if (r->last < oldest->last)
			oldest = r;
	}
	if (!create)
		return NULL;
	/* The address quiet the longest is forgotten: an attacker with many
	 * addresses can evict its own entries, not lift another's penalty
	 * any sooner than it would lapse. */
	memset(oldest, 0, sizeof(*oldest));
	(void)str_copy(oldest->addr, sizeof(oldest->addr), addr);
	oldest->last = now;
	return oldest;
}

unsigned
http_auth_wait(struct http_auth *a, const char *addr, time_t now)
{
	struct http_rate *r = http_rate_slot(a, addr, false, now);

	return r != NULL && r->until > now ? (unsigned)(r->until - now) : 0;
}

bool
http_auth_check(struct http_auth *a, const char *addr, const char *password,
    size_t len, time_t now)
{
	struct http_rate *r;
	char *hash;
	bool ok;

	pthread_mutex_lock(&a->mu);
	hash = xstrdup(a->password_hash);
	pthread_mutex_unlock(&a->mu);
	ok = passwd_verify(hash, password, len) == PASSWD_OK;
	free_secret(hash);
	if (ok) {
		r = http_rate_slot(a, addr, false, now);
		if (r != NULL)
			r->fails = 0;
		return true;
	}
	r = http_rate_slot(a, addr, true, now);
	r->fails++;
	r->last = now;
	if (r->fails >= HTTP_RATE_FREE_FAILS) {
		unsigned k = r->fails - HTTP_RATE_FREE_FAILS;
		unsigned pen = k >= 8 ? HTTP_RATE_MAX_PENALTY :
		    HTTP_RATE_PENALTY << k;

		if (pen > HTTP_RATE_MAX_PENALTY)
			pen = HTTP_RATE_MAX_PENALTY;
		r->until = now + (time_t)pen;
	}
	log_warnx("admin: failed login from %s (%u in a row)", addr, r->fails);
	return false;
}

struct http_login *
http_auth_login(struct http_auth *a, time_t now)
{
	struct http_login *slot = NULL;

	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		struct http_login *l = &a->logins[i];

		if (!http_login_live(a, l, now)) {
			slot = l;
			break;
		}
		if (slot == NULL || l->last < slot->last)
			slot = l;
	}
	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	http_random_hex(slot->id, HTTP_TOKEN_HEX / 2);
	http_random_hex(slot->csrf, HTTP_TOKEN_HEX / 2);
	slot->created = slot->last = now;
	return slot;
}

void
http_auth_logout(struct http_auth *a, struct http_login *l)
{
	(void)a;
	explicit_bzero(l, sizeof(*l));
}

bool
http_auth_basic(struct http_auth *a, struct evhttp_request *req,
    const char *addr, time_t now, bool *tried_r)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	unsigned char dec[512];
	const char *colon;
	long n;
	bool ok;

	*tried_r = false;
	if (h == NULL || !ascii_casepfx(h, "Basic "))
		return false;
	*tried_r = true;
	h += 6;
	if (strlen(h) > 600 || http_auth_wait(a, addr, now) > 0)
		return false;
	n = base64_decode(h, strlen(h), dec);
	if (n <= 0 || (size_t)n >= sizeof(dec))
		return false;
	dec[n] = '\0';
	colon = memchr(dec, ':', (size_t)n);
	if (colon == NULL || (size_t)(colon - (const char *)dec) !=
	    strlen(HTTP_ADMIN_USER) ||
	    memcmp(dec, HTTP_ADMIN_USER, strlen(HTTP_ADMIN_USER)) != 0) {
		/* Still counted as a failure, so names cannot be probed. */
		(void)http_auth_check(a, addr, "", 0, now);
		explicit_bzero(dec, sizeof(dec));
		return false;
	}
	colon++;
	ok = http_auth_check(a, addr, colon,
	    (size_t)n - (size_t)(colon - (const char *)dec), now);
	explicit_bzero(dec, sizeof(dec));
	return ok;
}

void
http_server_set_password_hash(struct http_server *h, const char *hash)
{
	char *copy = xstrdup(hash);

	pthread_mutex_lock(&h->auth.mu);
	free_secret(h->auth.password_hash);
	h->auth.password_hash = copy;
	pthread_mutex_unlock(&h->auth.mu);
}

const char *
http_cookie_name(void)
{
	return HTTP_COOKIE_NAME;
}
