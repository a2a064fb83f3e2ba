/* scram.c - SCRAM-SHA-256 key derivation and the stored-secret format. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/scram.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

void
scram_hmac(const unsigned char *key, size_t keylen, const void *data,
    size_t len, unsigned char out[SCRAM_KEY_LEN])
{
	unsigned int outlen = SCRAM_KEY_LEN;

	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) ==
	    NULL || outlen != SCRAM_KEY_LEN)
		fatalx("HMAC-SHA256 failed");
}

void
scram_hash(const void *data, size_t len, unsigned char out[SCRAM_KEY_LEN])
{
	SHA256(data, len, out);
}

void
scram_secret_derive(const char *password, size_t pwlen,
    const unsigned char *salt, size_t salt_len, uint32_t iter,
    struct scram_secret *secret_r)
{
	unsigned char salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];

	if (salt_len > SCRAM_SALT_MAX || iter == 0 || iter > INT32_MAX ||
	    pwlen > INT32_MAX)
		fatalx("scram_secret_derive: bad parameters");
	if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len,
	    (int)iter, EVP_sha256(), SCRAM_KEY_LEN, salted) != 1)
		fatalx("PBKDF2-HMAC-SHA256 failed");
	memset(secret_r, 0, sizeof(*secret_r));
	secret_r->iter = iter;
	memcpy(secret_r->salt, salt, salt_len);
	secret_r->salt_len = salt_len;
	scram_hmac(salted, sizeof(salted), "Client Key", 10, client_key);
	scram_hash(client_key, sizeof(client_key), secret_r->stored_key);
	scram_hmac(salted, sizeof(salted), "Server Key", 10, secret_r->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
}

/* Decodes base64 field [s, s+len) into exactly want bytes (or, if want is
 * 0, 1..max bytes); returns the decoded length or 0 on error. */
static size_t
decode_field(const char *s, size_t len, unsigned char *out, size_t max,
    size_t want)
{
	unsigned char buf[SCRAM_SALT_MAX + 4];
	long n;

	if (len == 0 || base64_decoded_max(len) > sizeof(buf))
		return 0;
	n = base64_decode(s, len, buf);
	if (n <= 0 || (size_t)n > max || (want != 0 && (size_t)n != want))
		return 0;
	memcpy(out, buf, (size_t)n);
	return (size_t)n;
}

bool
scram_secret_parse(const char *data, struct scram_secret *secret_r,
    const char **why_r)
{
	const char *f[4];
	size_t flen[4];
	const char *p = data;

	for (int i = 0; i < 4; i++) {
		const char *end = strchr(p, ',');
		if (i < 3 && end == NULL) {
			*why_r = "SCRAM secret needs 4 comma-separated fields";
			return false;
		}
		if (i == 3) {
			if (end != NULL) {
				*why_r = "SCRAM secret has more than 4 fields";
				return false;
			}
			end = p + strlen(p);
		}
		f[i] = p;
		flen[i] = (size_t)(end - p);
		p = end + 1;
	}
	memset(secret_r, 0, sizeof(*secret_r));
	if (!parse_u32(f[0], flen[0], &secret_r->iter) ||
	    secret_r->iter < SCRAM_MIN_ITER || secret_r->iter > SCRAM_MAX_ITER) {
		*why_r = "SCRAM iteration count is not a number in 4096..10000000";
		return false;
	}
	secret_r->salt_len = decode_field(f[1], flen[1], secret_r->salt,
	    SCRAM_SALT_MAX, 0);
	if (secret_r->salt_len == 0) {
		*why_r = "SCRAM salt is not valid base64";
		return false;
	}
	if (decode_field(f[2], flen[2], secret_r->stored_key, SCRAM_KEY_LEN,
	    SCRAM_KEY_LEN) == 0 ||
	    decode_field(f[3], flen[3], secret_r->server_key, SCRAM_KEY_LEN,
	    SCRAM_KEY_LEN) == 0) {
		*why_r = "SCRAM StoredKey/ServerKey are not base64 of 32 bytes";
		return false;
	}
	return true;
}

char *
scram_secret_format(const struct scram_secret *secret)
{
	char salt[B64_LEN(SCRAM_SALT_MAX) + 1];
	char sk[B64_LEN(SCRAM_KEY_LEN) + 1];
	char svk[B64_LEN(SCRAM_KEY_LEN) + 1];

	base64_encode(secret->salt, secret->salt_len, salt);
	base64_encode(secret->stored_key, SCRAM_KEY_LEN, sk);
	base64_encode(secret->server_key, SCRAM_KEY_LEN, svk);
	return xasprintf("%u,%s,%s,%s", (unsigned)secret->iter, salt, sk, svk);
}
