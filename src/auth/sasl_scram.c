/*
 * sasl_scram.c - SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side
 * (RFC 5802, RFC 7677; channel binding RFC 5929 tls-server-end-point and
 * RFC 9266 tls-exporter).
 *
 *   C: gs2-header client-first-message-bare
 *   S: r=cnonce+snonce,s=salt,i=iter               (SASL_CONTINUE)
 *   C: c=b64(gs2-header[+cb-data]),r=nonce,p=proof
 *   S: v=ServerSignature                           (SASL_CONTINUE)
 *   C: (empty)                                     -> SASL_OK
 *
 * Only stored keys are used (StoredKey, ServerKey); the plaintext password
 * is never needed.  Users that do not exist or have no SCRAM secret get
 * the same exchange with a fake salt that is stable per name (HMAC of a
 * per-process secret), and fail at the proof.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/passwd.h"
#include "auth/sasl_private.h"
#include "auth/scram.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

#define SCRAM_NONCE_RAW		24	/* server nonce bytes, before base64 */
#define SCRAM_CNONCE_MAX	256	/* longest client nonce we accept */
#define CB_NAME_MAX		64

enum scram_state {
	SCRAM_WANT_CLIENT_FIRST = 0,
	SCRAM_WANT_CLIENT_FINAL,
	SCRAM_WANT_EMPTY,
};

struct sasl_scram {
	enum scram_state state;
	bool cb_used;			/* gs2 flag "p" */
	bool real;			/* user exists and has a SCRAM secret */
	const struct userdb_entry *entry;
	char *gs2_header;		/* as sent, e.g. "n,," */
	size_t gs2_len;
	char *client_first_bare;
	char *server_first;
	char *nonce;			/* cnonce + snonce */
	struct scram_secret secret;
};

static pthread_once_t fake_once = PTHREAD_ONCE_INIT;
static unsigned char fake_key[32];

static void
fake_key_init(void)
{
	if (RAND_bytes(fake_key, sizeof(fake_key)) != 1)
		fatal("RAND_bytes failed: no entropy");
}

/*
 * A fake secret for name: salt stable per name, keys that nothing
 * matches (the proof check is forced to fail anyway).  The iteration
 * count and salt length are those of the most common real SCRAM secret
 * (like, NULL if none), so "i=" and the salt's size do not tell fake
 * from real either.
 */
static void
fake_secret(const char *name, const char *like, struct scram_secret *secret_r)
{
	unsigned char mac[SCRAM_KEY_LEN], mac2[SCRAM_KEY_LEN];
	struct scram_secret real;
	uint32_t iter = SCRAM_DEFAULT_ITER;
	size_t salt_len = SCRAM_SALT_LEN;
	const char *why;

	if (like != NULL && strchr(like, '}') != NULL &&
	    scram_secret_parse(strchr(like, '}') + 1, &real, &why)) {
		iter = real.iter;
		salt_len = real.salt_len;
		OPENSSL_cleanse(&real, sizeof(real));
	}
	pthread_once(&fake_once, fake_key_init);
	memset(secret_r, 0, sizeof(*secret_r));
	scram_hmac(fake_key, sizeof(fake_key), name, strlen(name), mac);
	/* Salts up to SCRAM_SALT_MAX: a second block when one is short. */
	scram_hmac(fake_key, sizeof(fake_key), mac, sizeof(mac), mac2);
	memcpy(secret_r->salt, mac, salt_len < SCRAM_KEY_LEN ? salt_len :
	    SCRAM_KEY_LEN);
	if (salt_len > SCRAM_KEY_LEN)
		memcpy(secret_r->salt + SCRAM_KEY_LEN, mac2,
		    salt_len - SCRAM_KEY_LEN);
	secret_r->salt_len = salt_len;
	secret_r->iter = iter;
	scram_hmac(fake_key, sizeof(fake_key), mac2, sizeof(mac2),
	    secret_r->stored_key);
	memcpy(secret_r->server_key, secret_r->stored_key, SCRAM_KEY_LEN);
}

void
sasl_scram_free(struct sasl_scram **stp)
{
	struct sasl_scram *st = *stp;

	if (st == NULL)
		return;
	*stp = NULL;
	free(st->gs2_header);
	free(st->client_first_bare);
	free(st->server_first);
	free(st->nonce);
	OPENSSL_cleanse(&st->secret, sizeof(st->secret));
	free(st);
}

/* RFC 5802 saslname: "=2C" -> ',', "=3D" -> '='; any other '=' or a raw
 * ',' is malformed.  Returns NULL if so. */
static char *
saslname_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == ',') {
			free(out);
			return NULL;
		}
		if (s[i] != '=') {
			out[o++] = s[i];
			continue;
		}
		if (i + 2 < len && s[i + 1] == '2' && s[i + 2] == 'C')
			out[o++] = ',';
		else if (i + 2 < len && s[i + 1] == '3' && s[i + 2] == 'D')
			out[o++] = '=';
		else {
			free(out);
			return NULL;
		}
		i += 2;
	}
	out[o] = '\0';
	return out;
}

static bool
server_has_cb(const struct sasl_server *s)
{
	return s->chan.tls && s->chan.cb_type != NULL && s->chan.cb_len > 0;
}

static enum sasl_status
fail(struct sasl_server *s, enum sasl_status st, const char *why)
{
	s->fail_reason = why;
	return st;
}

/* gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","
 * Sets *bare_r to the client-first-message-bare. */
static enum sasl_status
parse_gs2_header(struct sasl_server *s, struct sasl_scram *st,
    const char *msg, const char **bare_r, char **authzid_r)
{
	bool plus = s->mech == SASL_MECH_SCRAM_SHA_256_PLUS;
	const char *p = msg, *comma;

	*authzid_r = NULL;
	switch (*p) {
	case 'n':
	case 'y':
		if (p[1] != ',')
			return fail(s, SASL_BAD_INPUT, "malformed-gs2-header");
		if (plus)
			return fail(s, SASL_FAIL,
			    "plus-without-channel-binding");
		if (*p == 'y' && server_has_cb(s))
			/* RFC 5802 §6: the client thinks we cannot do
			 * channel binding, but we offered -PLUS: someone
			 * removed it on the way. */
			return fail(s, SASL_FAIL,
			    "channel-binding-downgrade");
		p += 2;
		break;
	case 'p':
		if (p[1] != '=')
			return fail(s, SASL_BAD_INPUT, "malformed-gs2-header");
		comma = strchr(p, ',');
		if (comma == NULL || comma - (p + 2) == 0 ||
		    comma - (p + 2) > CB_NAME_MAX)
			return fail(s, SASL_BAD_INPUT, "malformed-cb-name");
		if (!plus)
			return fail(s, SASL_FAIL,
			    "channel-binding-without-plus");
		if (!server_has_cb(s) ||
		    strlen(s->chan.cb_type) != (size_t)(comma - (p + 2)) ||
		    memcmp(s->chan.cb_type, p + 2, (size_t)(comma - (p + 2)))
		    != 0)
			return fail(s, SASL_FAIL,
			    "unsupported-channel-binding");
		st->cb_used = true;
		p = comma + 1;
		break;
	default:
		return fail(s, SASL_BAD_INPUT, "malformed-gs2-header");
	}
	if (p[0] == 'a' && p[1] == '=') {
		comma = strchr(p, ',');
		if (comma == NULL)
			return fail(s, SASL_BAD_INPUT, "malformed-authzid");
		*authzid_r = saslname_decode(p + 2, (size_t)(comma - p - 2));
		if (*authzid_r == NULL)
			return fail(s, SASL_BAD_INPUT, "malformed-authzid");
		p = comma;
	}
	if (*p != ',')
		return fail(s, SASL_BAD_INPUT, "malformed-gs2-header");
	p++;
	st->gs2_len = (size_t)(p - msg);
	st->gs2_header = xstrndup(msg, st->gs2_len);
	*bare_r = p;
	return SASL_CONTINUE;
}

static bool
nonce_valid(const char *s, size_t len)
{
	/* printable = %x21-2B / %x2D-7E */
	if (len == 0 || len > SCRAM_CNONCE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	}
	return true;
}

static void
make_server_nonce(struct sasl_server *s, char *out, size_t outsz)
{
	unsigned char raw[SCRAM_NONCE_RAW];

	if (s->test_nonce != NULL) {
		(void)str_copy(out, outsz, s->test_nonce);
		return;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatal("RAND_bytes failed: no entropy");
	base64_encode(raw, sizeof(raw), out);	/* no ',' in base64 */
}

/* False if the userdb could not answer (SASL_TEMPFAIL). */
static bool
lookup_secret(struct sasl_server *s, struct sasl_scram *st)
{
	const struct userdb_entry *e = NULL;
	const char *scheme, *why;
	bool valid = userdb_name_valid(s->username, strlen(s->username));

	if (valid && userdb_lookup(s->db, s->username, &e) == USERDB_TEMPFAIL)
		return false;
	if (e != NULL) {
		scheme = passwd_scheme_name(e->password);
		if (scheme != NULL && strcmp(scheme, "SCRAM-SHA-256") == 0 &&
		    scram_secret_parse(strchr(e->password, '}') + 1,
		    &st->secret, &why)) {
			st->real = true;
			st->entry = e;
			return true;
		}
	}
	fake_secret(s->username, userdb_scram_example(s->db), &st->secret);
	st->real = false;
	s->fail_reason = e != NULL ? "no-scram-credentials" :
	    valid ? AUTH_WHY_UNKNOWN_USER : AUTH_WHY_INVALID_NAME;
	return true;
}

static enum sasl_status
client_first(struct sasl_server *s, struct sasl_scram *st, const char *msg)
{
	char snonce[B64_LEN(SCRAM_NONCE_RAW) + SCRAM_CNONCE_MAX + 1];
	char salt[B64_LEN(SCRAM_SALT_MAX) + 1];
	const char *bare, *p, *end;
	char *authzid;
	enum sasl_status ret;

	ret = parse_gs2_header(s, st, msg, &bare, &authzid);
	if (ret != SASL_CONTINUE)
		return ret;
	/* bare = [reserved-mext ","] "n=" saslname ",r=" c-nonce [",",ext] */
	if (bare[0] == 'm' && bare[1] == '=') {
		free(authzid);
		return fail(s, SASL_FAIL, "unsupported-extension");
	}
	if (strncmp(bare, "n=", 2) != 0 || (p = strchr(bare, ',')) == NULL) {
		free(authzid);
		return fail(s, SASL_BAD_INPUT, "malformed-client-first");
	}
	if ((size_t)(p - bare - 2) > USERNAME_MAX * 3 ||
	    (s->username = saslname_decode(bare + 2,
	    (size_t)(p - bare - 2))) == NULL || s->username[0] == '\0') {
		free(authzid);
		return fail(s, SASL_BAD_INPUT, "malformed-user-name");
	}
	if (authzid != NULL && strcmp(authzid, s->username) != 0) {
		free(authzid);
		return fail(s, SASL_FAIL, "authzid-mismatch");
	}
	free(authzid);
	p++;
	if (strncmp(p, "r=", 2) != 0)
		return fail(s, SASL_BAD_INPUT, "malformed-client-first");
	p += 2;
	end = p + strcspn(p, ",");
	if (!nonce_valid(p, (size_t)(end - p)))
		return fail(s, SASL_BAD_INPUT, "malformed-nonce");
	/* Extensions after the nonce are allowed and ignored (RFC 5802). */
	st->client_first_bare = xstrdup(bare);
	if (!lookup_secret(s, st))
		return fail(s, SASL_TEMPFAIL, "tempfail");

	memcpy(snonce, p, (size_t)(end - p));
	make_server_nonce(s, snonce + (end - p), sizeof(snonce) - (size_t)(end - p));
	st->nonce = xstrdup(snonce);
	base64_encode(st->secret.salt, st->secret.salt_len, salt);
	st->server_first = xasprintf("r=%s,s=%s,i=%u", st->nonce, salt,
	    (unsigned)st->secret.iter);
	sasl_server_set_out(s, st->server_first, strlen(st->server_first));
	st->state = SCRAM_WANT_CLIENT_FINAL;
	return SASL_CONTINUE;
}

/* Checks c= against gs2-header (+ cb-data when "p" was used). */
static bool
check_cbind(const struct sasl_server *s, const struct sasl_scram *st,
    const char *b64, size_t b64len)
{
	unsigned char got[SASL_MSG_MAX], want[SASL_MSG_MAX];
	size_t wantlen = st->gs2_len + (st->cb_used ? s->chan.cb_len : 0);
	long n;

	if (b64len == 0 || base64_decoded_max(b64len) > sizeof(got) ||
	    wantlen > sizeof(want))
		return false;
	n = base64_decode(b64, b64len, got);
	if (n < 0 || (size_t)n != wantlen)
		return false;
	memcpy(want, st->gs2_header, st->gs2_len);
	if (st->cb_used)
		memcpy(want + st->gs2_len, s->chan.cb_data, s->chan.cb_len);
	return CRYPTO_memcmp(got, want, wantlen) == 0;
}

static enum sasl_status
client_final(struct sasl_server *s, struct sasl_scram *st, const char *msg)
{
	const char *c, *r, *proof_attr, *p;
	size_t clen, rlen, without_len;
	unsigned char proof[SCRAM_KEY_LEN + 4], sig[SCRAM_KEY_LEN];
	unsigned char client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	char v[B64_LEN(SCRAM_KEY_LEN) + 3];
	char *auth_msg;
	long n;
	bool ok;

	/* c=...,r=...[,ext...],p=proof  (proof is always last) */
	if (strncmp(msg, "c=", 2) != 0)
		return fail(s, SASL_BAD_INPUT, "malformed-client-final");
	c = msg + 2;
	clen = strcspn(c, ",");
	if (c[clen] != ',' || strncmp(c + clen + 1, "r=", 2) != 0)
		return fail(s, SASL_BAD_INPUT, "malformed-client-final");
	r = c + clen + 3;
	rlen = strcspn(r, ",");
	proof_attr = strrchr(msg, ',');
	if (r[rlen] != ',' || proof_attr < r + rlen ||
	    strncmp(proof_attr, ",p=", 3) != 0)
		return fail(s, SASL_BAD_INPUT, "malformed-client-final");
	p = proof_attr + 3;
	without_len = (size_t)(proof_attr - msg);
	if (strlen(p) != B64_LEN(SCRAM_KEY_LEN) ||
	    (n = base64_decode(p, strlen(p), proof)) != SCRAM_KEY_LEN)
		return fail(s, SASL_BAD_INPUT, "malformed-proof");
	if (rlen != strlen(st->nonce) || memcmp(r, st->nonce, rlen) != 0)
		return fail(s, SASL_FAIL, "nonce-mismatch");
	if (!check_cbind(s, st, c, clen))
		return fail(s, SASL_FAIL, "channel-binding-mismatch");

	/* AuthMessage = client-first-bare "," server-first ","
	 *               client-final-without-proof */
	auth_msg = xasprintf("%s,%s,%.*s", st->client_first_bare,
	    st->server_first, (int)without_len, msg);
	scram_hmac(st->secret.stored_key, SCRAM_KEY_LEN, auth_msg,
	    strlen(auth_msg), sig);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ sig[i];
	scram_hash(client_key, sizeof(client_key), stored);
	ok = CRYPTO_memcmp(stored, st->secret.stored_key, SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (!ok || !st->real) {
		free(auth_msg);
		if (st->real)
			s->fail_reason = "wrong-password";
		return SASL_FAIL;
	}
	scram_hmac(st->secret.server_key, SCRAM_KEY_LEN, auth_msg,
	    strlen(auth_msg), sig);
	free(auth_msg);
	memcpy(v, "v=", 2);
	base64_encode(sig, SCRAM_KEY_LEN, v + 2);
	sasl_server_set_out(s, v, strlen(v));
	st->state = SCRAM_WANT_EMPTY;
	return SASL_CONTINUE;
}

enum sasl_status
sasl_scram_step(struct sasl_server *s, const unsigned char *in, size_t inlen)
{
	struct sasl_scram *st = s->scram;
	char *msg;
	enum sasl_status ret;

	if (st == NULL) {
		if (s->mech == SASL_MECH_SCRAM_SHA_256_PLUS && !server_has_cb(s))
			return fail(s, SASL_FAIL,
			    "plus-without-tls");
		st = s->scram = xcalloc(1, sizeof(*st));
		if (in == NULL) {
			/* No initial response: empty challenge first. */
			sasl_server_set_out(s, "", 0);
			return SASL_CONTINUE;
		}
	}
	if (st->state == SCRAM_WANT_EMPTY) {
		if (inlen != 0)
			return fail(s, SASL_BAD_INPUT,
			    "malformed-final-response");
		s->entry = st->entry;
		return SASL_OK;
	}
	if (in == NULL || inlen == 0)
		return fail(s, SASL_BAD_INPUT, "malformed-empty");
	if (memchr(in, '\0', inlen) != NULL)
		return fail(s, SASL_BAD_INPUT, "malformed-nul");
	msg = xstrndup((const char *)in, inlen);
	if (st->state == SCRAM_WANT_CLIENT_FIRST)
		ret = client_first(s, st, msg);
	else
		ret = client_final(s, st, msg);
	free(msg);
	return ret;
}
