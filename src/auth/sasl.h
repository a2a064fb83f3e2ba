/*
 * sasl.h - server side of SASL mechanisms (RFC 5034 carries them in POP3):
 * PLAIN (RFC 4616), LOGIN, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802,
 * RFC 7677, channel binding RFC 5929 / RFC 9266).
 *
 * Pure: no I/O, no base64 (the protocol layer decodes the wire), so it can
 * be fuzzed directly.  A step may hash a password, so the session runs
 * steps in a worker thread; one sasl_server is used by one thread at a time.
 */
#ifndef POSUTO_SASL_H
#define POSUTO_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "auth/auth.h"

enum sasl_mech {
	SASL_MECH_PLAIN = 0,
	SASL_MECH_LOGIN,
	SASL_MECH_SCRAM_SHA_256,
	SASL_MECH_SCRAM_SHA_256_PLUS,
	SASL_MECH_COUNT
};

/* Channel-binding data from the TLS layer; lengths 0 when absent. */
struct sasl_channel {
	bool tls;			/* the connection is encrypted */
	const char *cb_type;		/* "tls-exporter" or "tls-server-end-point" */
	unsigned char cb_data[64];
	size_t cb_len;
};

enum sasl_status {
	SASL_CONTINUE = 0,	/* send out as a "+ " challenge, read the next line */
	SASL_OK,		/* authenticated: sasl_server_entry() is set */
	SASL_FAIL,		/* wrong credentials or unknown user: -ERR [AUTH] */
	SASL_BAD_INPUT,		/* malformed client message: -ERR */
	SASL_TEMPFAIL,		/* backend trouble: -ERR [SYS/TEMP] */
};

struct sasl_server;

/* Case-insensitive name -> mechanism; false if unknown. */
bool sasl_mech_lookup(const char *name, enum sasl_mech *mech_r);
const char *sasl_mech_name(enum sasl_mech mech);
/* True for mechanisms that send the password itself (PLAIN, LOGIN). */
bool sasl_mech_is_plaintext(enum sasl_mech mech);
/*
 * The config's SaslMechanisms as a mask of (1u << enum sasl_mech); 0 if
 * the key is not given (the caller's default applies: see
 * cfg->sasl_mechanisms_set).  An unknown name is reported to errs (if not
 * NULL) at its place in the file, as config_load() reports, and gives
 * false.
 */
bool sasl_mechs_from_config(const struct posuto_config *cfg,
    unsigned *mask_r, FILE *errs);

/*
 * chan is copied (NULL = no TLS).  db must outlive the sasl_server (caller
 * holds a ref).  SCRAM-SHA-256-PLUS needs chan->tls with cb_type/cb_data;
 * when they are present, plain SCRAM-SHA-256 refuses a client that says
 * "y" (RFC 5802 §6: it believes the server cannot do channel binding, so
 * someone stripped -PLUS from CAPA).
 *
 * Rules enforced: PLAIN's authzid must be empty or equal the authcid;
 * SCRAM's a= likewise; SCRAM works only from {SCRAM-SHA-256} stored keys
 * (other users, and unknown ones, get a fake exchange with a stable fake
 * salt and fail at the proof, so existence is not revealed).
 * Any step after a final status returns SASL_BAD_INPUT.
 */
struct sasl_server *sasl_server_new(enum sasl_mech mech,
    const struct userdb *db, const struct sasl_channel *chan);
void sasl_server_free(struct sasl_server **s);

/*
 * Feeds one client message (already base64-decoded; for the first step
 * the initial response, or NULL/0 if the client sent none).  On
 * SASL_CONTINUE, *out_r and *outlen_r hold the server message to send as a
 * "+ " challenge (owned by s, valid until the next call).  SCRAM's
 * server-final-message is such a challenge too: RFC 5034 has no data on
 * "+OK", so the mechanism sends it, expects an empty response, and only
 * then returns SASL_OK.
 */
enum sasl_status sasl_server_step(struct sasl_server *s,
    const unsigned char *in, size_t inlen,
    const unsigned char **out_r, size_t *outlen_r);

/* After SASL_OK: the authenticated user's entry (authzid handled inside);
 * NULL in any other state. */
const struct userdb_entry *sasl_server_entry(const struct sasl_server *s);
/* The name the client gave, for logging (may be NULL; not sanitised). */
const char *sasl_server_username(const struct sasl_server *s);
/*
 * After SASL_FAIL or SASL_BAD_INPUT: why, as a log token ("unknown-user",
 * "wrong-password", "no-scram-credentials", "malformed-gs2-header", ...),
 * for the server log only (pop3_job.c logs it as "reason=" of the login
 * failed line; it tells unknown users from wrong passwords, so never send
 * it to the client).  NULL otherwise.
 */
const char *sasl_server_fail_reason(const struct sasl_server *s);

/*
 * Tests only: use this SCRAM server nonce instead of a random one (to
 * replay the RFC 7677 vector).  Call before the first step.
 */
void sasl_server_set_test_nonce(struct sasl_server *s, const char *nonce);

#endif
