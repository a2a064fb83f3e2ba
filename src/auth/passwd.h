/*
 * passwd.h - password schemes: verify and create stored secrets.
 *
 * Stored secrets use Dovecot's "{SCHEME}data" notation so hashes carry
 * over from a Dovecot install (scheme names are case-insensitive):
 *   PLAIN (alias CLEARTEXT), SHA256 and SHA512 (base64 of the raw digest;
 *   like Dovecot, a value of exactly 2n hex digits is read as hex),
 *   SHA256.HEX, SHA512.HEX, SSHA256, SSHA512 (base64 of digest||salt),
 *   SHA512-CRYPT ($6$), SHA256-CRYPT ($5$), BLF-CRYPT ($2y$/$2b$/$2a$),
 *   MD5-CRYPT ($1$), CRYPT (any crypt(3) method libcrypt knows),
 *   ARGON2ID / ARGON2I (libargon2 encoded string),
 *   SCRAM-SHA-256 ("iter,salt,storedkey,serverkey", all base64).
 * Every comparison is constant-time.  A password containing NUL or longer
 * than PASSWORD_MAX never verifies (crypt(3) would truncate at the NUL).
 * All functions are thread-safe (they run in worker threads).
 */
#ifndef POSUTO_PASSWD_H
#define POSUTO_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

enum passwd_result {
	PASSWD_OK = 0,
	PASSWD_MISMATCH,
	PASSWD_BAD_STORED,	/* unknown scheme or malformed stored secret */
};

/* True if stored names a scheme we can verify and its data is well formed;
 * otherwise *why_r (if why_r is not NULL) says what is wrong. */
bool passwd_stored_valid(const char *stored, const char **why_r);

/* Canonical name of stored's scheme ("SHA512-CRYPT"), NULL if unknown. */
const char *passwd_scheme_name(const char *stored);

enum passwd_result passwd_verify(const char *stored, const char *password,
    size_t pwlen);

/*
 * What decides how long verifying stored takes: the scheme and its work
 * parameters (crypt rounds or cost, argon2 m/t/p, SCRAM iterations), not
 * the salt or the hash; e.g. "SHA512-CRYPT $6$rounds=50000$".  Secrets
 * with the same key cost the same to verify.  False if stored is unusable
 * or the key does not fit in size bytes.
 */
bool passwd_cost_key(const char *stored, char *buf, size_t size);

/*
 * Burns the same time as verifying against like_stored, and always fails:
 * used after failed logins so timing does not tell unknown users apart
 * (see userdb_cost_class()).  Pass a real user's secret; the verification
 * really runs and its result is discarded.  NULL or malformed: a built-in
 * SHA512-CRYPT.
 */
void passwd_verify_dummy(const char *like_stored, const char *password,
    size_t pwlen);

/* Creates a new stored secret ("{SCHEME}...") with a fresh random salt
 * where the scheme has one.  Returns NULL for an unknown scheme, or a
 * password that could never verify (NUL, too long; empty for PLAIN). */
char *passwd_hash(const char *scheme, const char *password, size_t pwlen);

/* NULL-terminated list of schemes passwd_hash() can create. */
const char *const *passwd_schemes(void);

#endif
