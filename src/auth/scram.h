/*
 * scram.h - SCRAM-SHA-256 key material (RFC 5802 §3, RFC 7677), shared by
 * the {SCRAM-SHA-256} password scheme (passwd.c) and the SASL mechanism
 * (sasl_scram.c).  Internal to src/auth.
 *
 * Stored form, as Dovecot writes it after "{SCRAM-SHA-256}":
 *   iter,base64(salt),base64(StoredKey),base64(ServerKey)
 */
#ifndef POSUTO_SCRAM_H
#define POSUTO_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN		32	/* SHA-256 output */
#define SCRAM_SALT_LEN		16	/* what we create (Dovecot: 16) */
#define SCRAM_SALT_MAX		64	/* longest salt we accept */
/* RFC 7677 §4: at least 4096.  The upper bound keeps a typo in a stored
 * secret from turning every login into minutes of PBKDF2. */
#define SCRAM_MIN_ITER		4096
#define SCRAM_MAX_ITER		10000000
#define SCRAM_DEFAULT_ITER	4096

/* Compile-time base64 length (lib's base64_encoded_len() is a function,
 * and arrays sized by it would be VLAs). */
#define B64_LEN(n)		(((n) + 2) / 3 * 4)

struct scram_secret {
	uint32_t iter;
	unsigned char salt[SCRAM_SALT_MAX];
	size_t salt_len;
	unsigned char stored_key[SCRAM_KEY_LEN];
	unsigned char server_key[SCRAM_KEY_LEN];
};

/* Parses the data after "{SCRAM-SHA-256}".  False (and *why_r) if malformed. */
bool scram_secret_parse(const char *data, struct scram_secret *secret_r,
    const char **why_r);
/* SaltedPassword = PBKDF2(password, salt, iter); fills the keys in *secret_r
 * (salt and iter are copied in). */
void scram_secret_derive(const char *password, size_t pwlen,
    const unsigned char *salt, size_t salt_len, uint32_t iter,
    struct scram_secret *secret_r);
/* "iter,salt,storedkey,serverkey" (no scheme prefix); caller frees. */
char *scram_secret_format(const struct scram_secret *secret);

void scram_hmac(const unsigned char *key, size_t keylen, const void *data,
    size_t len, unsigned char out[SCRAM_KEY_LEN]);
void scram_hash(const void *data, size_t len, unsigned char out[SCRAM_KEY_LEN]);

#endif
