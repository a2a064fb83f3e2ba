/* iplimit.c - a small open hash of client addresses. */
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/xmalloc.h"
#include "net/iplimit.h"

/* Failures older than this are forgotten. */
#define IPLIMIT_FAIL_WINDOW 300

struct ipent {
	struct ipent *next;
	uint8_t key[16];
	unsigned conns;
	unsigned fails;
	time_t last_fail;
	/* Connect-rate bucket: milli-tokens at rate_ms (0: full, unused). */
	uint64_t tokens;
	uint64_t rate_ms;
	unsigned rate_max;		/* per minute */
	unsigned refused;		/* refused in a row */
};

#define IPLIMIT_BUCKETS 4096

/* One table for every event loop, so a limit counts a client's
 * connections whichever loop took them; the lock is held for a hash
 * lookup, once or twice per connection and per failed login. */
struct iplimit {
	pthread_mutex_t lock;
	struct ipent *b[IPLIMIT_BUCKETS];
	size_t n;
	size_t sweep;			/* next hash chain to sweep */
};

static bool
ip_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff;	/* same key as v4-mapped v6 */
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->
		    sin6_addr;

		/* A v6 client is its /64: one host is handed a whole /64
		 * (SLAAC, privacy addresses) and could otherwise take a
		 * fresh address for every connection or failed login. */
		memcpy(key, a, IN6_IS_ADDR_V4MAPPED(a) ||
		    IN6_IS_ADDR_LOOPBACK(a) ? 16 : 8);
		return true;
	}
	return false;
}

static unsigned
ip_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % IPLIMIT_BUCKETS;
}

static struct ipent **
ip_find(struct iplimit *l, const uint8_t key[16])
{
	struct ipent **pp = &l->b[ip_hash(key)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (memcmp((*pp)->key, key, 16) == 0)
			break;
	}
	return pp;
}

static struct ipent *
ip_get(struct iplimit *l, const struct sockaddr_storage *addr, bool create)
{
	uint8_t key[16];
	struct ipent **pp, *e;

	if (!ip_key(addr, key))
		return NULL;
	pp = ip_find(l, key);
	if (*pp != NULL || !create)
		return *pp;
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, key, 16);
	*pp = e;
	l->n++;
	return e;
}

static uint64_t
ip_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Refills e's bucket up to now; true if it is full (nothing to keep). */
static bool
ip_refill(struct ipent *e, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)e->rate_max * 1000;

	if (e->rate_ms == 0)
		return true;
	if (now_ms > e->rate_ms) {
		/* rate_max per 60000 ms is rate_max / 60 milli-tokens a ms */
		uint64_t add = (now_ms - e->rate_ms) * e->rate_max / 60;

		e->tokens = add >= cap - e->tokens ? cap : e->tokens + add;
		e->rate_ms = now_ms;
	}
	if (e->tokens < cap)
		return false;
	e->rate_ms = 0;
	return true;
}

static bool
ip_idle(struct ipent *e, uint64_t now_ms)
{
	return e->conns == 0 && e->fails == 0 && ip_refill(e, now_ms);
}

static void
ip_maybe_drop(struct iplimit *l, struct ipent *e)
{
	struct ipent **pp;

	if (!ip_idle(e, e->rate_ms != 0 ? ip_now_ms() : 0))
		return;
	pp = ip_find(l, e->key);
	*pp = e->next;
	free(e);
	l->n--;
}

static void
ip_expire(struct ipent *e)
{
	if (e->fails != 0 && time(NULL) - e->last_fail > IPLIMIT_FAIL_WINDOW)
		e->fails = 0;
}

/* No session releases an entry that only remembers a bucket: each new
 * connection sweeps one hash chain, so an address that stopped connecting
 * is forgotten once its bucket is full again (a minute) and the table has
 * been swept: memory follows the connect rate. */
static void
ip_sweep(struct iplimit *l, uint64_t now_ms)
{
	struct ipent **pp = &l->b[l->sweep];

	l->sweep = (l->sweep + 1) % IPLIMIT_BUCKETS;
	while (*pp != NULL) {
		struct ipent *e = *pp;

		ip_expire(e);
		if (ip_idle(e, now_ms)) {
			*pp = e->next;
			free(e);
			l->n--;
		} else {
			pp = &e->next;
		}
	}
}

struct iplimit *
iplimit_new(void)
{
	struct iplimit *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->lock, NULL);
	return l;
}

void
iplimit_free(struct iplimit **lp)
{
	struct iplimit *l = *lp;

	if (l == NULL)
		return;
	for (size_t i = 0; i < IPLIMIT_BUCKETS; i++) {
		struct ipent *e, *next;
		for (e = l->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&l->lock);
	free(l);
	*lp = NULL;
}

static bool
ipl_conn_acquire(struct iplimit *l, const struct sockaddr_storage *addr,
    unsigned max)
{
	struct ipent *e = ip_get(l, addr, true);

	if (e == NULL)
		return true;
	if (max != 0 && e->conns >= max) {
		ip_maybe_drop(l, e);
		return false;
	}
	e->conns++;
	return true;
}

static bool
ipl_connect_rate(struct iplimit *l, const struct sockaddr_storage *addr,
    unsigned per_minute, uint64_t now_ms, unsigned *refused_r)
{
	struct ipent *e;

	*refused_r = 0;
	if (per_minute == 0)
		return true;
	ip_sweep(l, now_ms);
	e = ip_get(l, addr, true);
	if (e == NULL)
		return true;
	if (e->rate_ms == 0 || e->rate_max != per_minute) {
		/* A full bucket; a reload with another rate starts over. */
		e->rate_max = per_minute;
		e->tokens = (uint64_t)per_minute * 1000;
		e->rate_ms = now_ms;
	}
	(void)ip_refill(e, now_ms);
	if (e->tokens < 1000) {
		*refused_r = ++e->refused;
		return false;
	}
	e->tokens -= 1000;
	e->rate_ms = now_ms;
	e->refused = 0;
	return true;
}

bool
iplimit_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		const uint8_t *a = s6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && a[12] == 127;
	}
	return false;
}

size_t
iplimit_entries(struct iplimit *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->n;
	pthread_mutex_unlock(&l->lock);
	return n;
}

static void
ipl_conn_release(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, false);

	if (e == NULL)
		return;
	if (e->conns > 0)
		e->conns--;
	ip_expire(e);
	ip_maybe_drop(l, e);
}

static unsigned
ipl_fail(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, true);

	if (e == NULL)
		return 1;
	ip_expire(e);
	e->fails++;
	e->last_fail = time(NULL);
	return e->fails;
}

static unsigned
ipl_failures(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, false);

	if (e == NULL)
		return 0;
	ip_expire(e);
	return e->fails;
}

static void
ipl_success(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, false);

	if (e == NULL)
		return;
	e->fails = 0;
	ip_maybe_drop(l, e);
}

bool
iplimit_conn_acquire(struct iplimit *l, const struct sockaddr_storage *addr, unsigned max)
{
	bool r;

	pthread_mutex_lock(&l->lock);
	r = ipl_conn_acquire(l, addr, max);
	pthread_mutex_unlock(&l->lock);
	return r;
}

bool
iplimit_connect_rate(struct iplimit *l, const struct sockaddr_storage *addr, unsigned per_minute,
    uint64_t now_ms, unsigned *refused_r)
{
	bool r;

	pthread_mutex_lock(&l->lock);
	r = ipl_connect_rate(l, addr, per_minute, now_ms, refused_r);
	pthread_mutex_unlock(&l->lock);
	return r;
}

void
iplimit_conn_release(struct iplimit *l, const struct sockaddr_storage *addr)
{
	pthread_mutex_lock(&l->lock);
	ipl_conn_release(l, addr);
	pthread_mutex_unlock(&l->lock);
}

unsigned
iplimit_fail(struct iplimit *l, const struct sockaddr_storage *addr)
{
	unsigned r;

	pthread_mutex_lock(&l->lock);
	r = ipl_fail(l, addr);
	pthread_mutex_unlock(&l->lock);
	return r;
}

unsigned
iplimit_failures(struct iplimit *l, const struct sockaddr_storage *addr)
{
	unsigned r;

	pthread_mutex_lock(&l->lock);
	r = ipl_failures(l, addr);
	pthread_mutex_unlock(&l->lock);
	return r;
}

void
iplimit_success(struct iplimit *l, const struct sockaddr_storage *addr)
{
	pthread_mutex_lock(&l->lock);
	ipl_success(l, addr);
	pthread_mutex_unlock(&l->lock);
}
