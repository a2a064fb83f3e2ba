/*
 * mailevents.c - the ring of POP3 message events (mailevents.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "lib/strutil.h"
#include "net/mailevents.h"

static pthread_mutex_t mailev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct net_mailev mailev_ring[NET_MAILEV_MAX];
static _Atomic uint64_t mailev_last;	/* seq of the newest event */

void
net_mailev_record(enum net_mailev_kind kind, const char *user,
    const char *uidl, uint64_t session)
{
	struct net_mailev *e;
	uint64_t seq;

	if (user == NULL || strlen(user) >= NET_MAILEV_USER_LEN)
		return;
	if (uidl == NULL)
		uidl = "";
	if (strlen(uidl) >= NET_MAILEV_UIDL_LEN)
		return;
	pthread_mutex_lock(&mailev_mu);
	seq = atomic_load(&mailev_last) + 1;
	e = &mailev_ring[seq % NET_MAILEV_MAX];
	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->kind = kind;
	e->session = session;
	e->when = time(NULL);
	(void)str_copy(e->user, sizeof(e->user), user);
	(void)str_copy(e->uidl, sizeof(e->uidl), uidl);
	atomic_store(&mailev_last, seq);
	pthread_mutex_unlock(&mailev_mu);
}

uint64_t
net_mailev_seq(void)
{
	return atomic_load(&mailev_last);
}

size_t
net_mailev_copy(const char *user, uint64_t after_seq, struct net_mailev *out,
    size_t max)
{
	uint64_t last, first;
	size_t n = 0;

	pthread_mutex_lock(&mailev_mu);
	last = atomic_load(&mailev_last);
	first = last >= NET_MAILEV_MAX ? last - NET_MAILEV_MAX + 1 : 1;
	if (after_seq + 1 > first)
		first = after_seq + 1;
	for (uint64_t s = first; s <= last && n < max; s++) {
		const struct net_mailev *e = &mailev_ring[s % NET_MAILEV_MAX];

		if (e->seq == s && strcmp(e->user, user) == 0)
			out[n++] = *e;
	}
	pthread_mutex_unlock(&mailev_mu);
	return n;
}
