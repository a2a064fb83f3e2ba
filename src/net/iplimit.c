/* iplimit.c - a small open hash of client addresses. */
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
};

#define IPLIMIT_BUCKETS 4096

struct iplimit {
	struct ipent *b[IPLIMIT_BUCKETS];
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
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
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
	return e;
}

static void
ip_maybe_drop(struct iplimit *l, struct ipent *e)
{
	struct ipent **pp;

	if (e->conns != 0 || e->fails != 0)
		return;
	pp = ip_find(l, e->key);
	*pp = e->next;
	free(e);
}

static void
ip_expire(struct ipent *e)
{
	if (e->fails != 0 && time(NULL) - e->last_fail > IPLIMIT_FAIL_WINDOW)
		e->fails = 0;
}

struct iplimit *
iplimit_new(void)
{
	return xcalloc(1, sizeof(struct iplimit));
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
	free(l);
	*lp = NULL;
}

bool
iplimit_conn_acquire(struct iplimit *l, const struct sockaddr_storage *addr,
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

void
iplimit_conn_release(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, false);

	if (e == NULL)
		return;
	if (e->conns > 0)
		e->conns--;
	ip_expire(e);
	ip_maybe_drop(l, e);
}

unsigned
iplimit_fail(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, true);

	if (e == NULL)
		return 1;
	ip_expire(e);
	e->fails++;
	e->last_fail = time(NULL);
	return e->fails;
}

unsigned
iplimit_failures(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, false);

	if (e == NULL)
		return 0;
	ip_expire(e);
	return e->fails;
}

void
iplimit_success(struct iplimit *l, const struct sockaddr_storage *addr)
{
	struct ipent *e = ip_get(l, addr, false);

	if (e == NULL)
		return;
	e->fails = 0;
	ip_maybe_drop(l, e);
}
