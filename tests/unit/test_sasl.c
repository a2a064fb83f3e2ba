/* test_sasl.c - PLAIN (authzid cases), LOGIN, SCRAM-SHA-256 against the
 * RFC 7677 vector, SCRAM-SHA-256-PLUS channel binding, downgrade rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/passwd.h"
#include "auth/sasl.h"
#include "auth/scram.h"
#include "auth/userdb.h"
#include "lib/params.h"
#include "lib/strutil.h"

static struct userdb *db;
static char *rfc_user_secret, *comma_user_secret;

#define RFC_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE	"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT	"W22ZaJ0SNY7soEsUEjb6gQ=="

static char *
scram_stored(const char *password, const char *salt_b64)
{
	unsigned char salt[64];
	long n = base64_decode(salt_b64, strlen(salt_b64), salt);
	struct scram_secret s;
	char *data, *out;
	size_t len;

	assert_true(n > 0);
	scram_secret_derive(password, strlen(password), salt, (size_t)n,
	    4096, &s);
	data = scram_secret_format(&s);
	len = strlen(data) + 20;
	out = malloc(len);
	snprintf(out, len, "{SCRAM-SHA-256}%s", data);
	free(data);
	return out;
}

static int
setup(void **state)
{
	static struct user_cfg users[4];
	static struct posuto_config cfg = {
		.path = "test", .mail_dir = "/var/mail",
		.users = users, .n_users = 4,
	};
	(void)state;
	rfc_user_secret = scram_stored("pencil", RFC_SALT);
	comma_user_secret = scram_stored("pw", "AAAAAAAAAAAAAAAAAAAAAA==");
	users[0] = (struct user_cfg){ .name = "user",
	    .password = rfc_user_secret };
	users[1] = (struct user_cfg){ .name = "plainuser",
	    .password = "{PLAIN}secret" };
	users[2] = (struct user_cfg){ .name = "a,b=c",
	    .password = comma_user_secret };
	users[3] = (struct user_cfg){ .name = "cryptuser", .password =
	    "{SHA256.HEX}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8" };
	db = userdb_load(&cfg, stderr);
	return db == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	userdb_unref(&db);
	free(rfc_user_secret);
	free(comma_user_secret);
	return 0;
}

/* One step with a C string (NULL = no data). */
static enum sasl_status
step(struct sasl_server *s, const char *in, size_t len, char **out_r)
{
	const unsigned char *out;
	size_t outlen;
	enum sasl_status st;

	st = sasl_server_step(s, (const unsigned char *)in, len, &out,
	    &outlen);
	if (out_r != NULL) {
		*out_r = NULL;
		if (st == SASL_CONTINUE) {
			*out_r = malloc(outlen + 1);
			memcpy(*out_r, out, outlen);
			(*out_r)[outlen] = '\0';
		}
	}
	if (st != SASL_CONTINUE) {
		assert_null(out);
		assert_int_equal(outlen, 0);
	}
	return st;
}

#define S(lit) (lit), (sizeof(lit) - 1)

static enum sasl_status
plain_once(const char *msg, size_t len)
{
	struct sasl_server *s = sasl_server_new(SASL_MECH_PLAIN, db, NULL);
	enum sasl_status st = step(s, msg, len, NULL);

	if (st == SASL_OK) {
		assert_non_null(sasl_server_entry(s));
		assert_null(sasl_server_fail_reason(s));
	} else {
		assert_null(sasl_server_entry(s));
		assert_non_null(sasl_server_fail_reason(s));
	}
	/* anything after the end is refused, and does not authenticate */
	assert_int_equal(step(s, msg, len, NULL), SASL_BAD_INPUT);
	assert_null(sasl_server_entry(s));
	sasl_server_free(&s);
	assert_null(s);
	return st;
}

static void
test_plain(void **state)
{
	struct sasl_server *s;
	char *out;
	char big[USERNAME_MAX + 20];
	(void)state;

	assert_int_equal(plain_once(S("\0plainuser\0secret")), SASL_OK);
	assert_int_equal(plain_once(S("plainuser\0plainuser\0secret")),
	    SASL_OK);
	/* PLAIN against a SCRAM stored secret works (PBKDF2 on our side) */
	assert_int_equal(plain_once(S("\0user\0pencil")), SASL_OK);
	assert_int_equal(plain_once(S("\0cryptuser\0password")), SASL_OK);
	/* authzid other than authcid: fail even with the right password */
	assert_int_equal(plain_once(S("user\0plainuser\0secret")), SASL_FAIL);
	assert_int_equal(plain_once(S("plainuse\0plainuser\0secret")),
	    SASL_FAIL);
	/* wrong password, unknown user, invalid name: all FAIL */
	assert_int_equal(plain_once(S("\0plainuser\0secreT")), SASL_FAIL);
	assert_int_equal(plain_once(S("\0nobody\0secret")), SASL_FAIL);
	assert_int_equal(plain_once(S("\0../plainuser\0secret")), SASL_FAIL);
	/* malformed */
	assert_int_equal(plain_once(S("")), SASL_BAD_INPUT);
	assert_int_equal(plain_once(S("plainuser")), SASL_BAD_INPUT);
	assert_int_equal(plain_once(S("\0plainuser")), SASL_BAD_INPUT);
	assert_int_equal(plain_once(S("\0plainuser\0")), SASL_BAD_INPUT);
	assert_int_equal(plain_once(S("\0\0secret")), SASL_BAD_INPUT);
	assert_int_equal(plain_once(S("\0plainuser\0secret\0")),
	    SASL_BAD_INPUT);
	assert_int_equal(plain_once(S("\0plainuser\0sec\0ret")),
	    SASL_BAD_INPUT);
	memset(big, 'a', sizeof(big));
	big[0] = '\0';
	big[USERNAME_MAX + 2] = '\0';	/* authcid of USERNAME_MAX+1 bytes */
	assert_int_equal(plain_once(big, sizeof(big)), SASL_BAD_INPUT);

	/* no initial response: empty challenge, then the message */
	s = sasl_server_new(SASL_MECH_PLAIN, db, NULL);
	assert_int_equal(step(s, NULL, 0, &out), SASL_CONTINUE);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(step(s, S("\0plainuser\0secret"), NULL), SASL_OK);
	assert_string_equal(sasl_server_entry(s)->name, "plainuser");
	assert_string_equal(sasl_server_username(s), "plainuser");
	sasl_server_free(&s);

	/* oversized message */
	{
		char *huge = calloc(1, 100000);
		assert_int_equal(plain_once(huge, 100000), SASL_BAD_INPUT);
		free(huge);
	}
}

static void
test_login(void **state)
{
	struct sasl_server *s;
	char *out;
	(void)state;

	s = sasl_server_new(SASL_MECH_LOGIN, db, NULL);
	assert_int_equal(step(s, NULL, 0, &out), SASL_CONTINUE);
	assert_string_equal(out, "Username:");
	free(out);
	assert_int_equal(step(s, S("plainuser"), &out), SASL_CONTINUE);
	assert_string_equal(out, "Password:");
	free(out);
	assert_int_equal(step(s, S("secret"), NULL), SASL_OK);
	assert_string_equal(sasl_server_entry(s)->name, "plainuser");
	sasl_server_free(&s);

	/* user name as initial response */
	s = sasl_server_new(SASL_MECH_LOGIN, db, NULL);
	assert_int_equal(step(s, S("user"), &out), SASL_CONTINUE);
	assert_string_equal(out, "Password:");
	free(out);
	assert_int_equal(step(s, S("pencil"), NULL), SASL_OK);
	sasl_server_free(&s);

	/* wrong password / unknown user look the same */
	s = sasl_server_new(SASL_MECH_LOGIN, db, NULL);
	assert_int_equal(step(s, S("plainuser"), NULL), SASL_CONTINUE);
	assert_int_equal(step(s, S("wrong"), NULL), SASL_FAIL);
	assert_null(sasl_server_entry(s));
	sasl_server_free(&s);
	s = sasl_server_new(SASL_MECH_LOGIN, db, NULL);
	assert_int_equal(step(s, S("nobody"), NULL), SASL_CONTINUE);
	assert_int_equal(step(s, S("secret"), NULL), SASL_FAIL);
	sasl_server_free(&s);

	/* NUL in user name or password, empty user name */
	s = sasl_server_new(SASL_MECH_LOGIN, db, NULL);
	assert_int_equal(step(s, S("plain\0user"), NULL), SASL_BAD_INPUT);
	sasl_server_free(&s);
	s = sasl_server_new(SASL_MECH_LOGIN, db, NULL);
	assert_int_equal(step(s, S("plainuser"), NULL), SASL_CONTINUE);
	assert_int_equal(step(s, S("secret\0x"), NULL), SASL_BAD_INPUT);
	sasl_server_free(&s);
	s = sasl_server_new(SASL_MECH_LOGIN, db, NULL);
	assert_int_equal(step(s, NULL, 0, NULL), SASL_CONTINUE);
	assert_int_equal(step(s, S(""), NULL), SASL_BAD_INPUT);
	sasl_server_free(&s);
}

static void
test_mech_table(void **state)
{
	enum sasl_mech m;
	(void)state;

	assert_true(sasl_mech_lookup("plain", &m));
	assert_int_equal(m, SASL_MECH_PLAIN);
	assert_true(sasl_mech_lookup("Scram-Sha-256-Plus", &m));
	assert_int_equal(m, SASL_MECH_SCRAM_SHA_256_PLUS);
	assert_false(sasl_mech_lookup("CRAM-MD5", &m));
	assert_false(sasl_mech_lookup("SCRAM-SHA-256-", &m));
	assert_string_equal(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
	assert_true(sasl_mech_is_plaintext(SASL_MECH_PLAIN));
	assert_true(sasl_mech_is_plaintext(SASL_MECH_LOGIN));
	assert_false(sasl_mech_is_plaintext(SASL_MECH_SCRAM_SHA_256));
	assert_null(sasl_server_new(SASL_MECH_COUNT, db, NULL));
}

/* The RFC 7677 §3 example, byte for byte. */
static void
test_scram_rfc7677(void **state)
{
	struct sasl_server *s = sasl_server_new(SASL_MECH_SCRAM_SHA_256, db,
	    NULL);
	char *out;
	(void)state;

	sasl_server_set_test_nonce(s, RFC_SNONCE);
	assert_int_equal(step(s, S("n,,n=user,r=" RFC_CNONCE), &out),
	    SASL_CONTINUE);
	assert_string_equal(out, "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT
	    ",i=4096");
	free(out);
	assert_int_equal(step(s, S("c=biws,r=" RFC_CNONCE RFC_SNONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="), &out),
	    SASL_CONTINUE);
	assert_string_equal(out,
	    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	free(out);
	/* not yet authenticated until the empty response */
	assert_null(sasl_server_entry(s));
	assert_int_equal(step(s, "", 0, NULL), SASL_OK);
	assert_string_equal(sasl_server_entry(s)->name, "user");
	assert_string_equal(sasl_server_username(s), "user");
	sasl_server_free(&s);

	/* same, but data after server-final is refused */
	s = sasl_server_new(SASL_MECH_SCRAM_SHA_256, db, NULL);
	sasl_server_set_test_nonce(s, RFC_SNONCE);
	assert_int_equal(step(s, S("n,,n=user,r=" RFC_CNONCE), NULL),
	    SASL_CONTINUE);
	assert_int_equal(step(s, S("c=biws,r=" RFC_CNONCE RFC_SNONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="), NULL),
	    SASL_CONTINUE);
	assert_int_equal(step(s, S("x"), NULL), SASL_BAD_INPUT);
	assert_null(sasl_server_entry(s));
	sasl_server_free(&s);

	/* one bit of the proof flipped */
	s = sasl_server_new(SASL_MECH_SCRAM_SHA_256, db, NULL);
	sasl_server_set_test_nonce(s, RFC_SNONCE);
	assert_int_equal(step(s, S("n,,n=user,r=" RFC_CNONCE), NULL),
	    SASL_CONTINUE);
	assert_int_equal(step(s, S("c=biws,r=" RFC_CNONCE RFC_SNONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU="), NULL),
	    SASL_FAIL);
	assert_string_equal(sasl_server_fail_reason(s), "wrong-password");
	sasl_server_free(&s);
}

/* A SCRAM client, enough to test the server: returns the final status. */
struct scram_run {
	enum sasl_mech mech;
	const struct sasl_channel *chan;
	const char *gs2;		/* "n,,", "y,,", "p=tls-exporter,," */
	const unsigned char *cb;	/* client's view of the cb data */
	size_t cb_len;
	const char *user;		/* saslname-encoded */
	const char *password;
	const char *nonce_override;	/* send this r= in client-final */
	bool no_ir;
	bool server_v_ok;		/* out: v= verified */
	char server_first[512];		/* out */
	char why[64];			/* out: fail reason, "" if none */
};

static void
hmac256(const unsigned char *k, size_t klen, const void *d, size_t dlen,
    unsigned char *out)
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), k, (int)klen, d, dlen, out, &len);
}

static enum sasl_status
scram_run(struct scram_run *r)
{
	struct sasl_server *s = sasl_server_new(r->mech, db, r->chan);
	char first[512], final[1024], am[2048], *out = NULL;
	unsigned char salt[128], salted[32], ck[32], sk[32], sig[32], svk[32];
	unsigned char cbind[256];
	char cb64[400], proof64[64], v64[64];
	const char *nonce, *p;
	size_t nlen;
	long saltlen;
	unsigned iter;
	enum sasl_status st;

	r->server_v_ok = false;
	r->why[0] = '\0';
	snprintf(first, sizeof(first), "%sn=%s,r=clientnonce123", r->gs2,
	    r->user);
	if (r->no_ir) {
		st = step(s, NULL, 0, &out);
		assert_int_equal(st, SASL_CONTINUE);
		assert_string_equal(out, "");
		free(out);
	}
	st = step(s, first, strlen(first), &out);
	if (st != SASL_CONTINUE) {
		snprintf(r->why, sizeof(r->why), "%s",
		    sasl_server_fail_reason(s));
		sasl_server_free(&s);
		return st;
	}
	snprintf(r->server_first, sizeof(r->server_first), "%s", out);
	/* r=nonce,s=salt,i=iter */
	assert_true(strncmp(out, "r=clientnonce123", 16) == 0);
	nonce = out + 2;
	nlen = strcspn(nonce, ",");
	p = strstr(out, ",s=");
	assert_non_null(p);
	saltlen = base64_decode(p + 3, strcspn(p + 3, ","), salt);
	assert_true(saltlen > 0);
	p = strstr(out, ",i=");
	assert_non_null(p);
	iter = (unsigned)strtoul(p + 3, NULL, 10);
	assert_true(iter >= 4096);

	PKCS5_PBKDF2_HMAC(r->password, (int)strlen(r->password), salt,
	    (int)saltlen, (int)iter, EVP_sha256(), 32, salted);
	hmac256(salted, 32, "Client Key", 10, ck);
	SHA256(ck, 32, sk);
	memcpy(cbind, r->gs2, strlen(r->gs2));
	if (r->cb_len > 0)
		memcpy(cbind + strlen(r->gs2), r->cb, r->cb_len);
	base64_encode(cbind, strlen(r->gs2) + r->cb_len, cb64);
	if (r->nonce_override != NULL)
		snprintf(final, sizeof(final), "c=%s,r=%s", cb64,
		    r->nonce_override);
	else
		snprintf(final, sizeof(final), "c=%s,r=%.*s", cb64, (int)nlen,
		    nonce);
	snprintf(am, sizeof(am), "%s,%s,%s", first + strlen(r->gs2), out,
	    final);
	free(out);
	hmac256(sk, 32, am, strlen(am), sig);
	for (int i = 0; i < 32; i++)
		sig[i] ^= ck[i];
	base64_encode(sig, 32, proof64);
	snprintf(final + strlen(final), sizeof(final) - strlen(final),
	    ",p=%s", proof64);
	st = step(s, final, strlen(final), &out);
	if (st != SASL_CONTINUE) {
		snprintf(r->why, sizeof(r->why), "%s",
		    sasl_server_fail_reason(s));
		sasl_server_free(&s);
		return st;
	}
	hmac256(salted, 32, "Server Key", 10, svk);
	hmac256(svk, 32, am, strlen(am), sig);
	base64_encode(sig, 32, v64);
	assert_true(strncmp(out, "v=", 2) == 0);
	r->server_v_ok = strcmp(out + 2, v64) == 0;
	free(out);
	st = step(s, "", 0, NULL);
	if (st == SASL_OK)
		assert_non_null(sasl_server_entry(s));
	sasl_server_free(&s);
	return st;
}

static void
test_scram_client(void **state)
{
	struct scram_run r = { .mech = SASL_MECH_SCRAM_SHA_256, .gs2 = "n,,",
	    .user = "user", .password = "pencil" };
	char sf1[512];
	(void)state;

	assert_int_equal(scram_run(&r), SASL_OK);
	assert_true(r.server_v_ok);
	r.no_ir = true;
	assert_int_equal(scram_run(&r), SASL_OK);
	r.no_ir = false;
	/* y,, without -PLUS on offer (no TLS): fine */
	r.gs2 = "y,,";
	assert_int_equal(scram_run(&r), SASL_OK);
	/* authzid = authcid fine, other authzid refused */
	r.gs2 = "n,a=user,";
	assert_int_equal(scram_run(&r), SASL_OK);
	r.gs2 = "n,a=plainuser,";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	r.gs2 = "n,,";
	/* wrong password */
	r.password = "pencik";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	/* saslname escaping: user "a,b=c" */
	r.user = "a=2Cb=3Dc";
	r.password = "pw";
	assert_int_equal(scram_run(&r), SASL_OK);
	r.user = "a=2cb=3Dc";	/* escapes are case-sensitive */
	assert_int_equal(scram_run(&r), SASL_BAD_INPUT);
	r.user = "a=";
	assert_int_equal(scram_run(&r), SASL_BAD_INPUT);
	/* nonce not ours */
	r.user = "user";
	r.password = "pencil";
	r.nonce_override = "clientnonce123AAAA";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	r.nonce_override = NULL;

	/* Unknown user and a user without a SCRAM secret: a full exchange
	 * with a stable salt, failing at the proof. */
	r.user = "nobody";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	snprintf(sf1, sizeof(sf1), "%s", strstr(r.server_first, ",s="));
	assert_int_equal(scram_run(&r), SASL_FAIL);
	assert_string_equal(sf1, strstr(r.server_first, ",s="));
	assert_non_null(strstr(sf1, ",i=4096"));
	assert_string_equal(r.why, "unknown-user");
	r.user = "nobody2";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	assert_string_not_equal(sf1, strstr(r.server_first, ",s="));
	r.user = "cryptuser";
	r.password = "password";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	assert_string_equal(r.why, "no-scram-credentials");
	r.user = "..%2F";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	assert_string_equal(r.why, "invalid-user-name");
	r.user = "user";
	r.password = "pencik";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	assert_string_equal(r.why, "wrong-password");
}

/* Issue 9: a fake exchange shows the iterations and salt length of the
 * real secrets, not built-in ones. */
static void
test_scram_fake_imitates_real(void **state)
{
	static struct user_cfg users[1];
	static struct posuto_config cfg = {
		.path = "test", .mail_dir = "/var/mail",
		.users = users, .n_users = 1,
	};
	struct scram_run r = { .mech = SASL_MECH_SCRAM_SHA_256, .gs2 = "n,,",
	    .user = "real", .password = "pw" };
	struct userdb *saved = db, *db2;
	unsigned char salt[24] = { 1, 2, 3 };
	char real_first[512], *data, *stored;
	struct scram_secret sec;
	const char *p;
	(void)state;

	scram_secret_derive("pw", 2, salt, sizeof(salt), 5000, &sec);
	data = scram_secret_format(&sec);
	stored = malloc(strlen(data) + 20);
	snprintf(stored, strlen(data) + 20, "{SCRAM-SHA-256}%s", data);
	free(data);
	users[0] = (struct user_cfg){ .name = "real", .password = stored };
	db2 = userdb_load(&cfg, stderr);
	assert_non_null(db2);
	db = db2;
	assert_int_equal(scram_run(&r), SASL_OK);
	snprintf(real_first, sizeof(real_first), "%s",
	    strstr(r.server_first, ",s="));
	r.user = "ghost";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	assert_string_equal(r.why, "unknown-user");
	p = strstr(r.server_first, ",s=");
	/* same "i=", same salt length, different salt */
	assert_string_equal(strstr(p, ",i="), ",i=5000");
	assert_int_equal(strlen(p), strlen(real_first));
	assert_string_not_equal(p, real_first);
	db = saved;
	userdb_unref(&db2);
	free(stored);
}

static void
test_scram_malformed(void **state)
{
	static const char *const bad_first[] = {
		"", "n", "n,", "x,,n=user,r=abc", "n,,", "n,,n=user",
		"n,,n=user,", "n,,n=,r=abc", "n,,r=abc,n=user", "n,,n=user,r=",
		("n,,n=user,r=a\x01" "b"), "n,,n=user,r=a b", "n,x=1,n=user,r=abc",
		"n,a=user", "p,,n=user,r=abc", "y,a=u=2,n=user,r=abc",
	};
	static const char *const bad_final[] = {
		"", "c=biws", "c=biws,r=N", "r=N,c=biws,p=x",
		"c=biws,r=N,p=", "c=biws,r=N,p=AAAA",
		"c=biws,r=N,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		"c=biws,r=N,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
		"c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++) {
		struct sasl_server *s = sasl_server_new(
		    SASL_MECH_SCRAM_SHA_256, db, NULL);
		enum sasl_status st = step(s, bad_first[i],
		    strlen(bad_first[i]), NULL);

		print_message("first %zu: %d\n", i, st);
		assert_true(st == SASL_BAD_INPUT || st == SASL_FAIL);
		sasl_server_free(&s);
	}
	/* reserved mandatory extension */
	{
		struct sasl_server *s = sasl_server_new(
		    SASL_MECH_SCRAM_SHA_256, db, NULL);
		assert_int_equal(step(s, S("n,,m=ext,n=user,r=abc"), NULL),
		    SASL_FAIL);
		sasl_server_free(&s);
	}
	/* NUL in the message */
	{
		struct sasl_server *s = sasl_server_new(
		    SASL_MECH_SCRAM_SHA_256, db, NULL);
		assert_int_equal(step(s, S("n,,n=user,r=ab\0c"), NULL),
		    SASL_BAD_INPUT);
		sasl_server_free(&s);
	}
	for (size_t i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++) {
		struct sasl_server *s = sasl_server_new(
		    SASL_MECH_SCRAM_SHA_256, db, NULL);
		char msg[256];
		const char *n;
		enum sasl_status st;

		sasl_server_set_test_nonce(s, "N");
		assert_int_equal(step(s, S("n,,n=user,r=C"), NULL),
		    SASL_CONTINUE);
		/* "N" in the template stands for our combined nonce "CN" */
		n = strstr(bad_final[i], "r=N");
		if (n != NULL)
			snprintf(msg, sizeof(msg), "%.*sr=CN%s",
			    (int)(n - bad_final[i]), bad_final[i], n + 3);
		else
			snprintf(msg, sizeof(msg), "%s", bad_final[i]);
		st = step(s, msg, strlen(msg), NULL);
		print_message("final %zu (%s): %d\n", i, msg, st);
		assert_true(st == SASL_BAD_INPUT || st == SASL_FAIL);
		assert_null(sasl_server_entry(s));
		sasl_server_free(&s);
	}
}

static void
test_scram_plus(void **state)
{
	struct sasl_channel chan = { .tls = true, .cb_type = "tls-exporter",
	    .cb_len = 32 };
	unsigned char other[32];
	struct scram_run r = { .mech = SASL_MECH_SCRAM_SHA_256_PLUS,
	    .chan = &chan, .gs2 = "p=tls-exporter,,", .user = "user",
	    .password = "pencil" };
	(void)state;

	for (int i = 0; i < 32; i++)
		chan.cb_data[i] = (unsigned char)(i * 7 + 1);
	memcpy(other, chan.cb_data, 32);
	other[31] ^= 1;

	/* matching channel binding data */
	r.cb = chan.cb_data;
	r.cb_len = 32;
	assert_int_equal(scram_run(&r), SASL_OK);
	assert_true(r.server_v_ok);
	r.gs2 = "p=tls-exporter,a=user,";
	assert_int_equal(scram_run(&r), SASL_OK);
	r.gs2 = "p=tls-exporter,,";
	/* mismatch (a MITM terminating TLS sees other data) */
	r.cb = other;
	assert_int_equal(scram_run(&r), SASL_FAIL);
	/* missing cb data, extra bytes */
	r.cb_len = 0;
	assert_int_equal(scram_run(&r), SASL_FAIL);
	r.cb = chan.cb_data;
	r.cb_len = 31;
	assert_int_equal(scram_run(&r), SASL_FAIL);
	r.cb_len = 32;
	/* other cb type than the server's */
	r.gs2 = "p=tls-server-end-point,,";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	r.gs2 = "p=tls-unique,,";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	/* -PLUS with n or y: fail */
	r.gs2 = "n,,";
	r.cb_len = 0;
	assert_int_equal(scram_run(&r), SASL_FAIL);
	r.gs2 = "y,,";
	assert_int_equal(scram_run(&r), SASL_FAIL);

	/* tls-server-end-point works the same way */
	chan.cb_type = "tls-server-end-point";
	r.gs2 = "p=tls-server-end-point,,";
	r.cb_len = 32;
	assert_int_equal(scram_run(&r), SASL_OK);
	chan.cb_type = "tls-exporter";

	/* -PLUS without TLS data: fails at once */
	r.chan = NULL;
	r.gs2 = "p=tls-exporter,,";
	assert_int_equal(scram_run(&r), SASL_FAIL);

	/* Plain SCRAM over TLS where -PLUS is offered: "y" is a downgrade
	 * (RFC 5802 §6), "n" is fine, "p" needs the -PLUS mechanism. */
	r.mech = SASL_MECH_SCRAM_SHA_256;
	r.chan = &chan;
	r.cb_len = 0;
	r.gs2 = "y,,";
	assert_int_equal(scram_run(&r), SASL_FAIL);
	r.gs2 = "n,,";
	assert_int_equal(scram_run(&r), SASL_OK);
	r.gs2 = "p=tls-exporter,,";
	r.cb_len = 32;
	assert_int_equal(scram_run(&r), SASL_FAIL);
	/* TLS but no cb data from the TLS layer: "y" is acceptable */
	chan.cb_len = 0;
	r.gs2 = "y,,";
	r.cb_len = 0;
	assert_int_equal(scram_run(&r), SASL_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mech_table),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_scram_rfc7677),
		cmocka_unit_test(test_scram_client),
		cmocka_unit_test(test_scram_malformed),
		cmocka_unit_test(test_scram_fake_imitates_real),
		cmocka_unit_test(test_scram_plus),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
