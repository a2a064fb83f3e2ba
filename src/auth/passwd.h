/*
 * passwd.h - password schemes: verify and create stored secrets.
 *
 * Stored secrets use Dovecot's "{SCHEME}data" notation so hashes carry
 * over from a Dovecot install: PLAIN, SHA256 (base64), SHA256.HEX,
 * SHA512 (base64), SHA512.HEX, SHA512-CRYPT, BLF-CRYPT, ARGON2ID,
 * SCRAM-SHA-256 (iter,salt,storedkey,serverkey), plus MD5-CRYPT/CRYPT
 * for old files.  Every comparison is constant-time.
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

/* True if stored names a scheme we can verify and its data is well formed. */
bool passwd_stored_valid(const char *stored, const char **why_r);

enum passwd_result passwd_verify(const char *stored, const char *password,
    size_t pwlen);

/*
 * Burns about the same time as verifying against stored's scheme, and
 * always fails: used for unknown users so timing does not tell them apart.
 */
void passwd_verify_dummy(const char *like_stored, const char *password,
    size_t pwlen);

/* Creates a new stored secret ("{SCHEME}...") with a fresh random salt
 * where the scheme has one.  Returns NULL for an unknown scheme. */
char *passwd_hash(const char *scheme, const char *password, size_t pwlen);

/* NULL-terminated list of schemes passwd_hash() can create. */
const char *const *passwd_schemes(void);

#endif
