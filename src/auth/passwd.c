/*
 * passwd.c - password schemes in Dovecot's "{SCHEME}data" notation.
 *
 * One table lists every scheme with how it is stored; verify, validate and
 * hash switch on the scheme's kind.  Digest and SCRAM comparisons use
 * CRYPTO_memcmp; crypt(3) and argon2 results are compared the same way
 * (libargon2's own compare is constant-time too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/passwd.h"
#include "auth/scram.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

enum scheme_kind {
	SCHEME_PLAIN,
	SCHEME_DIGEST,		/* H(password) */
	SCHEME_SDIGEST,		/* H(password || salt) || salt, base64 */
	SCHEME_CRYPT,		/* crypt(3) string */
	SCHEME_ARGON2,		/* libargon2 encoded string */
	SCHEME_SCRAM,		/* iter,salt,storedkey,serverkey */
};

enum scheme_enc {
	ENC_B64,		/* Dovecot's default; 2n hex chars also accepted */
	ENC_HEX,
};

struct scheme {
	const char *name;	/* canonical spelling, as Dovecot writes it */
	enum scheme_kind kind;
	bool creatable;		/* offered by passwd_hash() / posuto hash */
	/* SCHEME_DIGEST, SCHEME_SDIGEST */
	int md_bits;		/* 256 or 512 */
	enum scheme_enc enc;
	/* SCHEME_CRYPT: required prefix (NULL: any crypt(3) method) and the
	 * prefix/cost used to create new hashes. */
	const char *crypt_accept;
	const char *crypt_create;
	unsigned long crypt_cost;
	/* SCHEME_ARGON2 */
	argon2_type argon;
};

/* bcrypt cost for new hashes: 2^10 rounds, ~60 ms; Dovecot's doveadm still
 * writes cost 5, which is too cheap for new secrets. */
#define BCRYPT_COST	10
/* Argon2 parameters for new hashes (Dovecot's defaults, RFC 9106 §7.4
 * "second recommended option" uses t=3 m=64 MiB). */
#define ARGON2_T	3
#define ARGON2_M	65536
#define ARGON2_P	1
#define ARGON2_SALT_LEN	16
#define ARGON2_HASH_LEN	32
/* Sanity bounds for stored argon2 parameters: memory is allocated per
 * verification, so a typo must not cost gigabytes. */
#define ARGON2_M_MAX	(1024 * 1024)	/* KiB = 1 GiB */
#define ARGON2_T_MAX	1000
#define ARGON2_P_MAX	64
#define SDIGEST_SALT_LEN 16
#define DIGEST_MAX	64

static const struct scheme schemes[] = {
	{ .name = "PLAIN", .kind = SCHEME_PLAIN, .creatable = true },
	{ .name = "CLEARTEXT", .kind = SCHEME_PLAIN },
	{ .name = "SHA256", .kind = SCHEME_DIGEST, .creatable = true,
	  .md_bits = 256, .enc = ENC_B64 },
	{ .name = "SHA256.HEX", .kind = SCHEME_DIGEST, .creatable = true,
	  .md_bits = 256, .enc = ENC_HEX },
	{ .name = "SHA512", .kind = SCHEME_DIGEST, .creatable = true,
	  .md_bits = 512, .enc = ENC_B64 },
	{ .name = "SHA512.HEX", .kind = SCHEME_DIGEST, .creatable = true,
	  .md_bits = 512, .enc = ENC_HEX },
	{ .name = "SSHA256", .kind = SCHEME_SDIGEST, .creatable = true,
	  .md_bits = 256, .enc = ENC_B64 },
	{ .name = "SSHA512", .kind = SCHEME_SDIGEST, .creatable = true,
	  .md_bits = 512, .enc = ENC_B64 },
	{ .name = "SHA512-CRYPT", .kind = SCHEME_CRYPT, .creatable = true,
	  .crypt_accept = "$6$", .crypt_create = "$6$" },
	{ .name = "SHA256-CRYPT", .kind = SCHEME_CRYPT, .creatable = true,
	  .crypt_accept = "$5$", .crypt_create = "$5$" },
	{ .name = "BLF-CRYPT", .kind = SCHEME_CRYPT, .creatable = true,
	  .crypt_accept = "$2", .crypt_create = "$2y$",
	  .crypt_cost = BCRYPT_COST },
	{ .name = "MD5-CRYPT", .kind = SCHEME_CRYPT, .creatable = true,
	  .crypt_accept = "$1$", .crypt_create = "$1$" },
	/* What Dovecot writes for {CRYPT} by default is bcrypt; on verify any
	 * method libcrypt knows is accepted (old DES, yescrypt, ...). */
	{ .name = "CRYPT", .kind = SCHEME_CRYPT, .creatable = true,
	  .crypt_accept = NULL, .crypt_create = "$2y$",
	  .crypt_cost = BCRYPT_COST },
	{ .name = "ARGON2ID", .kind = SCHEME_ARGON2, .creatable = true,
	  .argon = Argon2_id },
	{ .name = "ARGON2I", .kind = SCHEME_ARGON2, .creatable = true,
	  .argon = Argon2_i },
	{ .name = "SCRAM-SHA-256", .kind = SCHEME_SCRAM, .creatable = true },
};
#define N_SCHEMES (sizeof(schemes) / sizeof(schemes[0]))

/*
 * Used when there is nothing better to imitate (empty user database):
 * SHA512-CRYPT of a random string, made with `doveadm pw -s SHA512-CRYPT`.
 */
static const char dummy_stored[] =
    "{SHA512-CRYPT}$6$SAotSODlaAzw7a9U$Bu.3gvEIfoc2EjjHuJiSOn0OXq.l/"
    "MK27WAFp/3xYLzintSST.1tG42JmW9FUNk.xcG4lTJVZqzwCkT2imyoE1";

static const struct scheme *
scheme_find(const char *name, size_t len)
{
	for (size_t i = 0; i < N_SCHEMES; i++) {
		if (strlen(schemes[i].name) == len &&
		    strncasecmp(schemes[i].name, name, len) == 0)
			return &schemes[i];
	}
	return NULL;
}

/* Splits "{SCHEME}data"; NULL (and *why_r) if there is no known scheme. */
static const struct scheme *
scheme_split(const char *stored, const char **data_r, const char **why_r)
{
	const char *end;
	const struct scheme *sc;

	if (stored == NULL || stored[0] != '{' ||
	    (end = strchr(stored, '}')) == NULL) {
		*why_r = "password does not start with {SCHEME}";
		return NULL;
	}
	sc = scheme_find(stored + 1, (size_t)(end - stored - 1));
	if (sc == NULL) {
		*why_r = "unknown password scheme";
		return NULL;
	}
	*data_r = end + 1;
	return sc;
}

static const EVP_MD *
scheme_md(const struct scheme *sc)
{
	return sc->md_bits == 512 ? EVP_sha512() : EVP_sha256();
}

static size_t
scheme_md_len(const struct scheme *sc)
{
	return (size_t)sc->md_bits / 8;
}

static void
digest2(const EVP_MD *md, const void *a, size_t alen, const void *b,
    size_t blen, unsigned char *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int outlen;

	if (ctx == NULL)
		fatal("out of memory");
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &outlen) != 1)
		fatalx("message digest failed");
	EVP_MD_CTX_free(ctx);
}

/* Decodes a stored digest of exactly n bytes. */
static bool
digest_decode(const struct scheme *sc, const char *data, unsigned char *out,
    size_t n)
{
	size_t len = strlen(data);
	unsigned char buf[DIGEST_MAX + 8];
	long got;

	if (sc->enc == ENC_HEX || len == 2 * n)
		/* Dovecot also takes hex where base64 is the default, when
		 * the length says so (JumboDogX hashes pasted as {SHA256}). */
		return hex_decode(data, len, out, n);
	if (base64_decoded_max(len) > sizeof(buf))
		return false;
	got = base64_decode(data, len, buf);
	if (got < 0 || (size_t)got != n)
		return false;
	memcpy(out, buf, n);
	return true;
}

/* Salted digest: base64 of H(pw || salt) || salt; the salt is 1..64 bytes. */
static long
sdigest_decode(const struct scheme *sc, const char *data, unsigned char *out)
{
	size_t len = strlen(data);
	long got;

	if (len == 0 || base64_decoded_max(len) > DIGEST_MAX + 64 + 4)
		return -1;
	got = base64_decode(data, len, out);
	if (got <= (long)scheme_md_len(sc))
		return -1;
	return got;
}

/*
 * Shape of the well-known crypt(3) methods: prefix, salt, '$', hash of a
 * fixed length (crypt_checksalt() only looks at the setting, so "$6$"
 * alone would pass it).  Others (yescrypt, DES, ...) must at least end in
 * a plausible hash.
 */
static bool
crypt_shape_valid(const char *data)
{
	const char *last = strrchr(data, '$');
	size_t hashlen = last != NULL ? strlen(last + 1) : strlen(data);

	if (strncmp(data, "$1$", 3) == 0)
		return hashlen == 22 && last - (data + 3) <= 8;
	if (strncmp(data, "$5$", 3) == 0 || strncmp(data, "$6$", 3) == 0) {
		const char *salt = data + 3;
		if (strncmp(salt, "rounds=", 7) == 0) {
			salt = strchr(salt, '$');
			if (salt == NULL)
				return false;
			salt++;
		}
		return hashlen == (data[1] == '5' ? 43U : 86U) &&
		    last >= salt && last - salt <= 16;
	}
	if (data[0] == '$' && data[1] == '2')
		return strlen(data) == 60 && data[3] == '$' && data[6] == '$';
	if (data[0] != '$')
		return strlen(data) == 13;	/* traditional DES */
	return hashlen >= 11;
}

static bool
crypt_valid(const struct scheme *sc, const char *data, const char **why_r)
{
	if (sc->crypt_accept != NULL &&
	    strncmp(data, sc->crypt_accept, strlen(sc->crypt_accept)) != 0) {
		*why_r = "crypt string does not match the scheme's method";
		return false;
	}
	if (data[0] == '*' || data[0] == '!' || data[0] == '\0') {
		*why_r = "crypt string is empty or locked";
		return false;
	}
	for (const char *p = data; *p != '\0'; p++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789./$=,", *p) == NULL) {
			*why_r = "crypt string has invalid characters";
			return false;
		}
	}
	if (strlen(data) >= CRYPT_OUTPUT_SIZE || !crypt_shape_valid(data)) {
		*why_r = "crypt string is truncated or malformed";
		return false;
	}
	switch (crypt_checksalt(data)) {
	case CRYPT_SALT_OK:
	case CRYPT_SALT_METHOD_LEGACY:
		return true;
	default:
		*why_r = "crypt method unknown to libcrypt or malformed";
		return false;
	}
}

/* "m=65536,t=3,p=1" -> bounds-checked numbers. */
static bool
argon2_params_valid(const char *s, size_t len)
{
	static const char keys[3] = { 'm', 't', 'p' };
	static const uint32_t max[3] = { ARGON2_M_MAX, ARGON2_T_MAX,
	    ARGON2_P_MAX };
	const char *end = s + len;

	for (int i = 0; i < 3; i++) {
		const char *comma;
		uint32_t v;

		if (end - s < 3 || s[0] != keys[i] || s[1] != '=')
			return false;
		s += 2;
		comma = memchr(s, ',', (size_t)(end - s));
		if (i < 2 && comma == NULL)
			return false;
		if (i == 2) {
			if (comma != NULL)
				return false;
			comma = end;
		}
		if (!parse_u32(s, (size_t)(comma - s), &v) || v == 0 ||
		    v > max[i])
			return false;
		s = comma + 1;
	}
	return true;
}

static bool
argon2_valid(const struct scheme *sc, const char *data, const char **why_r)
{
	const char *prefix = sc->argon == Argon2_id ? "$argon2id$" : "$argon2i$";
	const char *p, *d;

	*why_r = "malformed argon2 string";
	if (strncmp(data, prefix, strlen(prefix)) != 0)
		return false;
	p = data + strlen(prefix);
	if (strncmp(p, "v=", 2) == 0) {
		if (strncmp(p, "v=19$", 5) != 0 && strncmp(p, "v=16$", 5) != 0)
			return false;
		p += 5;
	}
	d = strchr(p, '$');
	if (d == NULL || !argon2_params_valid(p, (size_t)(d - p)))
		return false;
	/* salt$hash: unpadded base64, salt >= 8 bytes, hash >= 4 bytes */
	p = d + 1;
	d = strchr(p, '$');
	if (d == NULL || d - p < 11 || strlen(d + 1) < 6 ||
	    strchr(d + 1, '$') != NULL || strlen(data) > 512)
		return false;
	for (const char *q = p; *q != '\0'; q++) {
		if (q != d && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
		    "NOPQRSTUVWXYZ0123456789+/", *q) == NULL)
			return false;
	}
	return true;
}

static bool
scheme_data_valid(const struct scheme *sc, const char *data,
    const char **why_r)
{
	unsigned char buf[DIGEST_MAX + 64 + 4];
	struct scram_secret scram;
	bool ok;

	switch (sc->kind) {
	case SCHEME_PLAIN:
		/* An empty stored password would let an empty PASS in. */
		if (data[0] == '\0') {
			*why_r = "empty plaintext password";
			return false;
		}
		return true;
	case SCHEME_DIGEST:
		if (!digest_decode(sc, data, buf, scheme_md_len(sc))) {
			*why_r = sc->enc == ENC_HEX ?
			    "digest is not the right number of hex digits" :
			    "digest is not base64 (or hex) of the right length";
			return false;
		}
		return true;
	case SCHEME_SDIGEST:
		if (sdigest_decode(sc, data, buf) < 0) {
			*why_r = "salted digest is not base64 of digest+salt";
			return false;
		}
		return true;
	case SCHEME_CRYPT:
		return crypt_valid(sc, data, why_r);
	case SCHEME_ARGON2:
		return argon2_valid(sc, data, why_r);
	case SCHEME_SCRAM:
		ok = scram_secret_parse(data, &scram, why_r);
		OPENSSL_cleanse(&scram, sizeof(scram));
		return ok;
	}
	*why_r = "unknown password scheme";
	return false;
}

bool
passwd_stored_valid(const char *stored, const char **why_r)
{
	const char *data, *why;
	const struct scheme *sc = scheme_split(stored, &data, &why);

	if (sc == NULL || !scheme_data_valid(sc, data, &why)) {
		if (why_r != NULL)
			*why_r = why;
		return false;
	}
	return true;
}

static enum passwd_result
verify_crypt(const char *data, const char *password, size_t pwlen)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char *pw = xstrndup(password, pwlen);
	const char *out;
	size_t len = strlen(data);
	enum passwd_result ret = PASSWD_MISMATCH;

	out = crypt_rn(pw, data, cd, (int)sizeof(*cd));
	if (out == NULL || out[0] == '*')
		ret = PASSWD_BAD_STORED;
	else if (strlen(out) == len && CRYPTO_memcmp(out, data, len) == 0)
		ret = PASSWD_OK;
	free_secret(pw);
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ret;
}

static enum passwd_result
verify_argon2(const struct scheme *sc, const char *data, const char *password,
    size_t pwlen)
{
	int rc = argon2_verify(data, password, pwlen, sc->argon);

	if (rc == ARGON2_OK)
		return PASSWD_OK;
	if (rc == ARGON2_VERIFY_MISMATCH)
		return PASSWD_MISMATCH;
	if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
		log_error("argon2: %s", argon2_error_message(rc));
	return PASSWD_BAD_STORED;
}

static enum passwd_result
verify_scram(const char *data, const char *password, size_t pwlen)
{
	struct scram_secret stored, derived;
	const char *why;
	enum passwd_result ret;

	if (!scram_secret_parse(data, &stored, &why))
		return PASSWD_BAD_STORED;
	scram_secret_derive(password, pwlen, stored.salt, stored.salt_len,
	    stored.iter, &derived);
	ret = CRYPTO_memcmp(derived.stored_key, stored.stored_key,
	    SCRAM_KEY_LEN) == 0 ? PASSWD_OK : PASSWD_MISMATCH;
	OPENSSL_cleanse(&stored, sizeof(stored));
	OPENSSL_cleanse(&derived, sizeof(derived));
	return ret;
}

static enum passwd_result
scheme_verify(const struct scheme *sc, const char *data, const char *password,
    size_t pwlen)
{
	unsigned char want[DIGEST_MAX + 64 + 4], got[DIGEST_MAX];
	size_t n = scheme_md_len(sc), plen;
	long slen;
	enum passwd_result ret;

	switch (sc->kind) {
	case SCHEME_PLAIN:
		plen = strlen(data);
		/* ct_streq's time depends only on the client's length. */
		return ct_streq(password, pwlen, data, plen) ?
		    PASSWD_OK : PASSWD_MISMATCH;
	case SCHEME_DIGEST:
		if (!digest_decode(sc, data, want, n))
			return PASSWD_BAD_STORED;
		digest2(scheme_md(sc), password, pwlen, NULL, 0, got);
		ret = CRYPTO_memcmp(want, got, n) == 0 ?
		    PASSWD_OK : PASSWD_MISMATCH;
		OPENSSL_cleanse(got, sizeof(got));
		return ret;
	case SCHEME_SDIGEST:
		slen = sdigest_decode(sc, data, want);
		if (slen < 0)
			return PASSWD_BAD_STORED;
		digest2(scheme_md(sc), password, pwlen, want + n,
		    (size_t)slen - n, got);
		ret = CRYPTO_memcmp(want, got, n) == 0 ?
		    PASSWD_OK : PASSWD_MISMATCH;
		OPENSSL_cleanse(got, sizeof(got));
		return ret;
	case SCHEME_CRYPT:
		return verify_crypt(data, password, pwlen);
	case SCHEME_ARGON2:
		return verify_argon2(sc, data, password, pwlen);
	case SCHEME_SCRAM:
		return verify_scram(data, password, pwlen);
	}
	return PASSWD_BAD_STORED;
}

enum passwd_result
passwd_verify(const char *stored, const char *password, size_t pwlen)
{
	const char *data, *why;
	const struct scheme *sc = scheme_split(stored, &data, &why);
	enum passwd_result ret;
	bool bad_pw;

	if (sc == NULL || !scheme_data_valid(sc, data, &why))
		return PASSWD_BAD_STORED;
	/* A NUL would silently truncate the password for crypt(3), so
	 * "secret\0junk" could match "secret"; no POP3 path carries one
	 * legitimately.  Overlong passwords bound the hashing work.  Both
	 * still hash, so the time does not depend on which check failed. */
	bad_pw = memchr(password, '\0', pwlen) != NULL || pwlen > PASSWORD_MAX;
	ret = scheme_verify(sc, data, password, bad_pw ? 0 : pwlen);
	if (bad_pw && ret == PASSWD_OK)
		ret = PASSWD_MISMATCH;
	return ret;
}

void
passwd_verify_dummy(const char *like_stored, const char *password,
    size_t pwlen)
{
	const char *why;

	/* like_stored is normally a real user's secret (userdb picks the
	 * most common scheme), so the work is exactly that of a real check
	 * with the same parameters; the result is thrown away. */
	if (like_stored == NULL || !passwd_stored_valid(like_stored, &why))
		like_stored = dummy_stored;
	(void)passwd_verify(like_stored, password, pwlen);
}

/* "$6$rounds=N$salt$hash" -> "$6$rounds=N$": the setting without salt and
 * hash (bcrypt's "$2y$10$" + 53 characters is cut after the cost). */
static size_t
crypt_params_len(const char *data)
{
	const char *last, *p;

	if (data[0] != '$')
		return 0;	/* traditional DES: no parameters */
	if (data[1] == '2')
		return strlen(data) >= 7 ? 7 : strlen(data);
	last = strrchr(data, '$');
	for (p = last; p > data && p[-1] != '$'; p--)
		;
	/* p is just after the '$' before the salt */
	return p > data ? (size_t)(p - data) : 0;
}

bool
passwd_cost_key(const char *stored, char *buf, size_t size)
{
	const char *data, *why;
	const struct scheme *sc = scheme_split(stored, &data, &why);
	struct scram_secret scram;
	size_t plen = 0;
	int n;

	if (sc == NULL || !scheme_data_valid(sc, data, &why))
		return false;
	switch (sc->kind) {
	case SCHEME_PLAIN:
	case SCHEME_DIGEST:
	case SCHEME_SDIGEST:
		break;
	case SCHEME_CRYPT:
	case SCHEME_ARGON2:
		/* argon2's "$argon2id$v=19$m=..,t=..,p=..$salt$hash" has the
		 * same shape: everything before the salt. */
		plen = crypt_params_len(data);
		break;
	case SCHEME_SCRAM:
		if (!scram_secret_parse(data, &scram, &why))
			return false;
		n = snprintf(buf, size, "%s %u", sc->name, (unsigned)scram.iter);
		OPENSSL_cleanse(&scram, sizeof(scram));
		return n >= 0 && (size_t)n < size;
	}
	/* {CRYPT}$6$... costs what {SHA512-CRYPT}$6$... does: for crypt(3)
	 * the method prefix names the cost, not the scheme. */
	n = snprintf(buf, size, "%s %.*s", sc->kind == SCHEME_CRYPT ?
	    "CRYPT" : sc->name, (int)plen, data);
	return n >= 0 && (size_t)n < size;
}

static void
random_bytes(unsigned char *buf, size_t n)
{
	if (RAND_bytes(buf, (int)n) != 1)
		fatal("RAND_bytes failed: no entropy");
}

static char *
hash_digest(const struct scheme *sc, const char *password, size_t pwlen)
{
	unsigned char buf[DIGEST_MAX + SDIGEST_SALT_LEN];
	char out[B64_LEN(sizeof(buf)) + 2 * DIGEST_MAX + 1];
	size_t n = scheme_md_len(sc), salt_len = 0;

	if (sc->kind == SCHEME_SDIGEST) {
		salt_len = SDIGEST_SALT_LEN;
		random_bytes(buf + n, salt_len);
	}
	digest2(scheme_md(sc), password, pwlen, buf + n, salt_len, buf);
	if (sc->enc == ENC_HEX)
		hex_encode(buf, n, out);
	else
		base64_encode(buf, n + salt_len, out);
	return xstrdup(out);
}

static char *
hash_crypt(const struct scheme *sc, const char *password, size_t pwlen)
{
	unsigned char rbytes[16];
	struct crypt_data *cd;
	char *setting, *pw, *out, *ret = NULL;

	random_bytes(rbytes, sizeof(rbytes));
	setting = crypt_gensalt_ra(sc->crypt_create, sc->crypt_cost,
	    (const char *)rbytes, (int)sizeof(rbytes));
	OPENSSL_cleanse(rbytes, sizeof(rbytes));
	if (setting == NULL) {
		log_warn("crypt_gensalt(%s)", sc->crypt_create);
		return NULL;
	}
	cd = xcalloc(1, sizeof(*cd));
	pw = xstrndup(password, pwlen);
	out = crypt_rn(pw, setting, cd, (int)sizeof(*cd));
	if (out != NULL && out[0] != '*')
		ret = xstrdup(out);
	else
		log_warn("crypt(%s)", sc->crypt_create);
	free_secret(pw);
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	free(setting);
	return ret;
}

static char *
hash_argon2(const struct scheme *sc, const char *password, size_t pwlen)
{
	unsigned char salt[ARGON2_SALT_LEN];
	size_t len = argon2_encodedlen(ARGON2_T, ARGON2_M, ARGON2_P,
	    ARGON2_SALT_LEN, ARGON2_HASH_LEN, sc->argon);
	char *out = xmalloc(len);
	int rc;

	random_bytes(salt, sizeof(salt));
	rc = argon2_hash(ARGON2_T, ARGON2_M, ARGON2_P, password, pwlen, salt,
	    sizeof(salt), NULL, ARGON2_HASH_LEN, out, len, sc->argon,
	    ARGON2_VERSION_13);
	if (rc != ARGON2_OK) {
		log_error("argon2: %s", argon2_error_message(rc));
		free(out);
		return NULL;
	}
	return out;
}

static char *
hash_scram(const char *password, size_t pwlen)
{
	unsigned char salt[SCRAM_SALT_LEN];
	struct scram_secret secret;
	char *out;

	random_bytes(salt, sizeof(salt));
	scram_secret_derive(password, pwlen, salt, sizeof(salt),
	    SCRAM_DEFAULT_ITER, &secret);
	out = scram_secret_format(&secret);
	OPENSSL_cleanse(&secret, sizeof(secret));
	return out;
}

char *
passwd_hash(const char *scheme, const char *password, size_t pwlen)
{
	const struct scheme *sc = scheme_find(scheme, strlen(scheme));
	char *data = NULL, *ret;

	if (sc == NULL || !sc->creatable)
		return NULL;
	/* See passwd_verify(): such a password could never log in. */
	if (memchr(password, '\0', pwlen) != NULL || pwlen > PASSWORD_MAX)
		return NULL;
	switch (sc->kind) {
	case SCHEME_PLAIN:
		if (pwlen == 0)
			return NULL;
		data = xstrndup(password, pwlen);
		break;
	case SCHEME_DIGEST:
	case SCHEME_SDIGEST:
		data = hash_digest(sc, password, pwlen);
		break;
	case SCHEME_CRYPT:
		data = hash_crypt(sc, password, pwlen);
		break;
	case SCHEME_ARGON2:
		data = hash_argon2(sc, password, pwlen);
		break;
	case SCHEME_SCRAM:
		data = hash_scram(password, pwlen);
		break;
	}
	if (data == NULL)
		return NULL;
	ret = xasprintf("{%s}%s", sc->name, data);
	free_secret(data);
	return ret;
}

const char *const *
passwd_schemes(void)
{
	/* The creatable entries of schemes[], in order (test_passwd checks
	 * that every one of them round-trips). */
	static const char *const list[] = {
		"PLAIN", "SHA256", "SHA256.HEX", "SHA512", "SHA512.HEX",
		"SSHA256", "SSHA512", "SHA512-CRYPT", "SHA256-CRYPT",
		"BLF-CRYPT", "MD5-CRYPT", "CRYPT", "ARGON2ID", "ARGON2I",
		"SCRAM-SHA-256", NULL
	};

	return list;
}

const char *
passwd_scheme_name(const char *stored)
{
	const char *data, *why;
	const struct scheme *sc = scheme_split(stored, &data, &why);

	return sc == NULL ? NULL : sc->name;
}
