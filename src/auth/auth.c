/*
 * auth.c - USER/PASS and APOP checks against a userdb.
 *
 * I6: every failure path does the same work as a wrong password for a
 * real user (an unknown or invalid name still runs a full verification
 * against a real user's secret), and all of them return AUTH_FAILED.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth.h"
#include "auth/passwd.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"

enum auth_result
auth_plain(const struct userdb *db, const char *user, const char *password,
    size_t pwlen, const struct userdb_entry **entry_r)
{
	const struct userdb_entry *e = NULL;

	*entry_r = NULL;
	if (user != NULL && userdb_name_valid(user, strlen(user)))
		e = userdb_lookup(db, user);
	if (e == NULL) {
		passwd_verify_dummy(userdb_dummy_password(db), password, pwlen);
		return AUTH_FAILED;
	}
	switch (passwd_verify(e->password, password, pwlen)) {
	case PASSWD_OK:
		*entry_r = e;
		return AUTH_OK;
	case PASSWD_MISMATCH:
		return AUTH_FAILED;
	case PASSWD_BAD_STORED:
		/* userdb_load() validated it, so this is a bug or a libcrypt
		 * that lost a method; the client sees a plain failure. */
		log_error("auth: stored password of user %s is unusable", user);
		return AUTH_FAILED;
	}
	return AUTH_FAILED;
}

void
apop_digest(const char *timestamp, const char *secret, char out[33])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (ctx == NULL)
		fatal("out of memory");
	if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, timestamp, strlen(timestamp)) != 1 ||
	    EVP_DigestUpdate(ctx, secret, strlen(secret)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 16)
		fatalx("MD5 failed");
	EVP_MD_CTX_free(ctx);
	hex_encode(md, 16, out);
	OPENSSL_cleanse(md, sizeof(md));
}

/* Fixed secret for users without one: the digest is computed and compared
 * all the same, so such users cost what real ones do. */
static const char apop_dummy_secret[] = "posuto-apop-no-secret-\x01";

enum auth_result
auth_apop(const struct userdb *db, const char *user, const char *timestamp,
    const char *digest_hex, const struct userdb_entry **entry_r)
{
	const struct userdb_entry *e = NULL;
	char want[33], got[33];
	size_t dlen = strlen(digest_hex);
	bool ok;

	*entry_r = NULL;
	if (user != NULL && userdb_name_valid(user, strlen(user)))
		e = userdb_lookup(db, user);
	apop_digest(timestamp, e != NULL && e->apop_secret != NULL ?
	    e->apop_secret : apop_dummy_secret, want);
	/* The client may send upper-case hex; fold it, then compare in
	 * constant time over the fixed 32 bytes. */
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < 32 && i < dlen; i++) {
		char c = digest_hex[i];
		got[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	ok = CRYPTO_memcmp(want, got, 32) == 0 && dlen == 32;
	OPENSSL_cleanse(want, sizeof(want));
	if (!ok || e == NULL || e->apop_secret == NULL)
		return AUTH_FAILED;
	*entry_r = e;
	return AUTH_OK;
}
