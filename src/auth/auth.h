/*
 * auth.h - checks credentials against a userdb.  Runs in worker threads.
 * An unknown user and a wrong password give the same result and take the
 * same time (I6).
 */
#ifndef POSUTO_AUTH_H
#define POSUTO_AUTH_H

#include <stddef.h>

#include "auth/userdb.h"

enum auth_result {
	AUTH_OK = 0,
	AUTH_FAILED,		/* no such user or wrong secret */
	AUTH_TEMPFAIL,		/* backend trouble: [SYS/TEMP] */
};

/*
 * Why a login failed, for the server log only (never the client: I6).
 * Tokens, lower case with '-', as in "reason=unknown-user".
 */
#define AUTH_WHY_UNKNOWN_USER	"unknown-user"
#define AUTH_WHY_INVALID_NAME	"invalid-user-name"
#define AUTH_WHY_WRONG_PASSWORD	"wrong-password"

/* On failure *why_r is one of the tokens above (or another one); NULL on
 * success. */
enum auth_result auth_plain(const struct userdb *db, const char *user,
    const char *password, size_t pwlen, const struct userdb_entry **entry_r,
    const char **why_r);

/*
 * APOP (RFC 1939 §7): digest_hex is MD5(timestamp || secret) in hex.
 * Users without an APOP secret fail like a wrong digest (*why_r tells
 * them apart for the log: "no-apop-secret").
 */
enum auth_result auth_apop(const struct userdb *db, const char *user,
    const char *timestamp, const char *digest_hex,
    const struct userdb_entry **entry_r, const char **why_r);

/* MD5(timestamp || secret) as 32 lower-case hex chars + NUL. */
void apop_digest(const char *timestamp, const char *secret, char out[33]);

#endif
