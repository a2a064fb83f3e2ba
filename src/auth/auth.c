/*
 * auth.c - USER/PASS and APOP checks against a userdb.
 *
 * I6: every failure path does the same work, whatever the user's scheme
 * (see auth_burn_classes()), and all of them return AUTH_FAILED; only
 * the reason for the log differs.
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

/*
 * After a failed check: verifies one secret of every cost class except
 * skip (the class whose real secret was just checked; USERDB_NO_CLASS:
 * none), so that every failure costs the sum over the classes.
 *
 * Why the sum, not the most common or the costliest scheme: an attacker
 * compares an unknown name with a name whose user has a cheap scheme just
 * as well as with one whose user has a costly one, so all three must do
 * the same work.  Padding by sleeping to a measured "slowest" time would
 * depend on a calibration that load upsets; doing the same verifications
 * does not.  Successes cost only the user's own check (the password is
 * known then, so timing reveals nothing new).
 */
static void
auth_burn_classes(const struct userdb *db, size_t skip, const char *password,
    size_t pwlen)
{
	size_t n = userdb_cost_classes(db);

	if (n == 0) {
		/* No users at all: still cost something plausible. */
		passwd_verify_dummy(NULL, password, pwlen);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (i != skip)
			passwd_verify_dummy(userdb_cost_class_secret(db, i),
			    password, pwlen);
	}
}

enum auth_result
auth_plain(const struct userdb *db, const char *user, const char *password,
    size_t pwlen, const struct userdb_entry **entry_r, const char **why_r)
{
	const struct userdb_entry *e = NULL;
	bool valid = user != NULL && userdb_name_valid(user, strlen(user));

	*entry_r = NULL;
	if (valid && userdb_lookup(db, user, &e) == USERDB_TEMPFAIL) {
		*why_r = "userdb-tempfail";
		return AUTH_TEMPFAIL;
	}
	if (e == NULL) {
		auth_burn_classes(db, USERDB_NO_CLASS, password, pwlen);
		*why_r = valid ? AUTH_WHY_UNKNOWN_USER : AUTH_WHY_INVALID_NAME;
		return AUTH_FAILED;
	}
	switch (passwd_verify(e->password, password, pwlen)) {
	case PASSWD_OK:
		*entry_r = e;
		*why_r = NULL;
		return AUTH_OK;
	case PASSWD_MISMATCH:
		*why_r = AUTH_WHY_WRONG_PASSWORD;
		break;
	case PASSWD_BAD_STORED:
		/* userdb_load() validated it, so this is a bug or a libcrypt
		 * that lost a method; the client sees a plain failure. */
		log_error("auth: stored password of user %s is unusable", user);
		*why_r = "unusable-stored-password";
		break;
	}
	auth_burn_classes(db, e->cost_class, password, pwlen);
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
    const char *digest_hex, const struct userdb_entry **entry_r,
    const char **why_r)
{
	const struct userdb_entry *e = NULL;
	char want[33], got[33];
	size_t dlen = strlen(digest_hex);
	bool ok;

	*entry_r = NULL;
	if (user != NULL && userdb_name_valid(user, strlen(user)) &&
	    userdb_lookup(db, user, &e) == USERDB_TEMPFAIL) {
		*why_r = "userdb-tempfail";
		return AUTH_TEMPFAIL;
	}
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
	if (e == NULL) {
		*why_r = user != NULL && userdb_name_valid(user, strlen(user)) ?
		    AUTH_WHY_UNKNOWN_USER : AUTH_WHY_INVALID_NAME;
		return AUTH_FAILED;
	}
	if (e->apop_secret == NULL) {
		*why_r = "no-apop-secret";
		return AUTH_FAILED;
	}
	if (!ok) {
		*why_r = AUTH_WHY_WRONG_PASSWORD;
		return AUTH_FAILED;
	}
	*why_r = NULL;
	*entry_r = e;
	return AUTH_OK;
}
