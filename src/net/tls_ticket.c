/* tls_ticket.c - the process's ring of session ticket keys. */
#include <pthread.h>
#include <string.h>

#include <openssl/rand.h>

#include "net/tls_ticket.h"

/* [0] encrypts; [1] (its predecessor) only decrypts. */
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tls_ticket_key ring[2];
static bool ring_used[2];
static unsigned ring_period = TLS_TICKET_PERIOD;

/* With ring_mu held. */
static bool
ring_rotate_if_due(time_t now)
{
	struct tls_ticket_key k;

	if (ring_used[0] && now - ring[0].born < (time_t)ring_period &&
	    now >= ring[0].born)
		return true;
	if (RAND_bytes(k.name, sizeof(k.name)) != 1 ||
	    RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
	    RAND_bytes(k.hmac, sizeof(k.hmac)) != 1)
		return false;
	k.born = now;
	ring[1] = ring[0];
	ring_used[1] = ring_used[0];
	ring[0] = k;
	ring_used[0] = true;
	return true;
}

bool
tls_ticket_current(time_t now, struct tls_ticket_key *out)
{
	bool ok;

	pthread_mutex_lock(&ring_mu);
	ok = ring_rotate_if_due(now);
	if (ok)
		*out = ring[0];
	pthread_mutex_unlock(&ring_mu);
	return ok;
}

enum tls_ticket_find
tls_ticket_find(const unsigned char *name, time_t now,
    struct tls_ticket_key *out)
{
	enum tls_ticket_find r = TLS_TICKET_NONE;

	pthread_mutex_lock(&ring_mu);
	(void)ring_rotate_if_due(now);
	for (unsigned i = 0; i < 2 && r == TLS_TICKET_NONE; i++) {
		if (!ring_used[i] ||
		    memcmp(ring[i].name, name, TLS_TICKET_NAME_LEN) != 0)
			continue;
		/* The old one only for the period after its own. */
		if (i == 1 && now - ring[1].born >= 2 * (time_t)ring_period)
			break;
		*out = ring[i];
		r = i == 0 ? TLS_TICKET_CURRENT : TLS_TICKET_OLD;
	}
	pthread_mutex_unlock(&ring_mu);
	return r;
}

void
tls_ticket_reset(unsigned period)
{
	pthread_mutex_lock(&ring_mu);
	memset(ring, 0, sizeof(ring));
	ring_used[0] = ring_used[1] = false;
	ring_period = period > 0 ? period : TLS_TICKET_PERIOD;
	pthread_mutex_unlock(&ring_mu);
}
