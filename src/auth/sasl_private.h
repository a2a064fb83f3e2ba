/* sasl_private.h - state shared by sasl.c and sasl_scram.c (src/auth only). */
#ifndef POSUTO_SASL_PRIVATE_H
#define POSUTO_SASL_PRIVATE_H

#include "auth/sasl.h"

/* Longest client message we look at (decoded).  PLAIN is at most
 * 2 * USERNAME_MAX + PASSWORD_MAX + 2; SCRAM messages are a few hundred. */
#define SASL_MSG_MAX		4096

struct sasl_scram;

struct sasl_server {
	enum sasl_mech mech;
	const struct userdb *db;
	struct sasl_channel chan;
	unsigned step;
	bool finished;			/* a final status was returned */
	const struct userdb_entry *entry;	/* set only on SASL_OK */
	char *username;
	const char *fail_reason;
	char *test_nonce;
	unsigned char *out;		/* last challenge */
	size_t outlen;
	struct sasl_scram *scram;
};

/* Replaces the challenge returned to the caller with a copy of data. */
void sasl_server_set_out(struct sasl_server *s, const void *data, size_t len);

enum sasl_status sasl_scram_step(struct sasl_server *s,
    const unsigned char *in, size_t inlen);
void sasl_scram_free(struct sasl_scram **st);

#endif
