/*
 * tls_ticket.h - the session ticket keys: one ring for the process, so a
 * client resumes whichever loop it lands on and whichever SSL_CTX (a
 * SIGHUP makes a new one) issued its ticket.
 *
 * OpenSSL's own ticket keys are per SSL_CTX, random and never rotated:
 * a reload would void every ticket, and one key would protect every
 * session of a long run (a stolen key decrypts them all).  Here a key
 * encrypts new tickets for one period, then decrypts (and has renewed)
 * the tickets it made for one more, then is gone.  Rotation is done when
 * due by the next ticket operation, under the ring's lock: no timer, and
 * no thread of its own.
 */
#ifndef POSUTO_TLS_TICKET_H
#define POSUTO_TLS_TICKET_H

#include <stdbool.h>
#include <time.h>

#define TLS_TICKET_NAME_LEN	16
#define TLS_TICKET_PERIOD	3600	/* s a key encrypts new tickets */

struct tls_ticket_key {
	unsigned char name[TLS_TICKET_NAME_LEN];
	unsigned char aes[32];		/* AES-256-CBC */
	unsigned char hmac[32];		/* HMAC-SHA256 */
	time_t born;
};

enum tls_ticket_find {
	TLS_TICKET_NONE = 0,		/* unknown or expired: full handshake */
	TLS_TICKET_CURRENT = 1,		/* resume */
	TLS_TICKET_OLD = 2,		/* resume, and issue a new ticket */
};

/* The key new tickets are encrypted with at now (a monotonic-enough
 * wall clock reading); false if no random bytes could be had. */
bool tls_ticket_current(time_t now, struct tls_ticket_key *out);
/* The key named name, if still accepted at now. */
enum tls_ticket_find tls_ticket_find(const unsigned char *name, time_t now,
    struct tls_ticket_key *out);
/* Tests: another period (s), and forget every key. */
void tls_ticket_reset(unsigned period);

#endif
