/*
 * sasl.c - SASL server: mechanism table, PLAIN (RFC 4616) and LOGIN.
 * SCRAM lives in sasl_scram.c.  Every path that decides on credentials
 * goes through auth_plain(), so I6 (same answer and time for unknown
 * users) holds here as it does for USER/PASS.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "auth/sasl_private.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

static const char *const mech_names[SASL_MECH_COUNT] = {
	[SASL_MECH_PLAIN] = "PLAIN",
	[SASL_MECH_LOGIN] = "LOGIN",
	[SASL_MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
	[SASL_MECH_SCRAM_SHA_256_PLUS] = "SCRAM-SHA-256-PLUS",
};

bool
sasl_mech_lookup(const char *name, enum sasl_mech *mech_r)
{
	for (int i = 0; i < SASL_MECH_COUNT; i++) {
		if (ascii_caseeq(name, mech_names[i])) {
			*mech_r = (enum sasl_mech)i;
			return true;
		}
	}
	return false;
}

const char *
sasl_mech_name(enum sasl_mech mech)
{
	if ((unsigned)mech >= SASL_MECH_COUNT)
		return "?";
	return mech_names[mech];
}

bool
sasl_mech_is_plaintext(enum sasl_mech mech)
{
	return mech == SASL_MECH_PLAIN || mech == SASL_MECH_LOGIN;
}

bool
sasl_mechs_from_config(const struct posuto_config *cfg, unsigned *mask_r,
    FILE *errs)
{
	bool ok = true;

	*mask_r = 0;
	for (size_t i = 0; i < cfg->n_sasl_mechanisms; i++) {
		const char *name = cfg->sasl_mechanisms[i];
		char key[64], where[600], safe[128];
		enum sasl_mech m;

		if (sasl_mech_lookup(name, &m)) {
			*mask_r |= 1u << m;
			continue;
		}
		ok = false;
		if (errs == NULL)
			continue;
		(void)snprintf(key, sizeof(key),
		    "Pop3Server.SaslMechanisms[%zu]", i);
		config_where(cfg, key, where, sizeof(where));
		fprintf(errs, "%s: unknown SASL mechanism \"%s\" (known: "
		    "PLAIN, LOGIN, SCRAM-SHA-256, SCRAM-SHA-256-PLUS)\n",
		    where, log_sanitize(safe, sizeof(safe), name,
		    strlen(name)));
	}
	return ok;
}

struct sasl_server *
sasl_server_new(enum sasl_mech mech, const struct userdb *db,
    const struct sasl_channel *chan)
{
	struct sasl_server *s;

	if ((unsigned)mech >= SASL_MECH_COUNT)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->mech = mech;
	s->db = db;
	if (chan != NULL) {
		s->chan = *chan;
		if (s->chan.cb_len > sizeof(s->chan.cb_data))
			s->chan.cb_len = 0;
	}
	return s;
}

void
sasl_server_free(struct sasl_server **sp)
{
	struct sasl_server *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	sasl_scram_free(&s->scram);
	free(s->username);
	free(s->test_nonce);
	free_secret((char *)s->out);
	free(s);
}

void
sasl_server_set_out(struct sasl_server *s, const void *data, size_t len)
{
	free(s->out);
	s->out = xmalloc(len + 1);
	memcpy(s->out, data, len);
	s->out[len] = '\0';
	s->outlen = len;
}

void
sasl_server_set_test_nonce(struct sasl_server *s, const char *nonce)
{
	free(s->test_nonce);
	s->test_nonce = xstrdup(nonce);
}

static enum sasl_status
auth_result_status(struct sasl_server *s, enum auth_result res,
    const struct userdb_entry *entry, const char *why)
{
	switch (res) {
	case AUTH_OK:
		s->entry = entry;
		return SASL_OK;
	case AUTH_TEMPFAIL:
		s->fail_reason = "tempfail";
		return SASL_TEMPFAIL;
	case AUTH_FAILED:
		break;
	}
	s->fail_reason = why != NULL ? why : AUTH_WHY_WRONG_PASSWORD;
	return SASL_FAIL;
}

/* RFC 4616: message = [authzid] NUL authcid NUL passwd */
static enum sasl_status
plain_step(struct sasl_server *s, const unsigned char *in, size_t inlen)
{
	const char *msg = (const char *)in;
	const char *nul1, *nul2, *authcid, *pw;
	size_t zlen, clen, pwlen;
	const struct userdb_entry *entry;
	enum auth_result res;
	const char *why;
	char *pwcopy;

	if (in == NULL && s->step == 0) {
		/* No initial response: empty challenge, wait for it. */
		s->step++;
		sasl_server_set_out(s, "", 0);
		return SASL_CONTINUE;
	}
	s->fail_reason = "malformed-plain";
	if (in == NULL || (nul1 = memchr(msg, '\0', inlen)) == NULL)
		return SASL_BAD_INPUT;
	zlen = (size_t)(nul1 - msg);
	authcid = nul1 + 1;
	nul2 = memchr(authcid, '\0', inlen - zlen - 1);
	if (nul2 == NULL)
		return SASL_BAD_INPUT;
	clen = (size_t)(nul2 - authcid);
	pw = nul2 + 1;
	pwlen = inlen - zlen - clen - 2;
	/* RFC 4616 §2: fields are 1..255 octets (authzid may be empty), no
	 * further NUL; we allow longer passwords up to PASSWORD_MAX. */
	if (clen == 0 || clen > USERNAME_MAX || zlen > USERNAME_MAX ||
	    pwlen == 0 || pwlen > PASSWORD_MAX ||
	    memchr(pw, '\0', pwlen) != NULL)
		return SASL_BAD_INPUT;
	s->username = xstrndup(authcid, clen);
	if (zlen != 0 && (zlen != clen || memcmp(msg, authcid, clen) != 0)) {
		/* Acting as another user is not supported. */
		s->fail_reason = "authzid-mismatch";
		return SASL_FAIL;
	}
	pwcopy = xstrndup(pw, pwlen);
	res = auth_plain(s->db, s->username, pwcopy, pwlen, &entry, &why);
	free_secret(pwcopy);
	return auth_result_status(s, res, entry, why);
}

/* LOGIN (draft-murchison-sasl-login): "Username:", "Password:". */
static enum sasl_status
login_step(struct sasl_server *s, const unsigned char *in, size_t inlen)
{
	const struct userdb_entry *entry;
	enum auth_result res;
	const char *why;
	char *pw;

	if (s->step == 0 && in == NULL) {
		s->step = 1;
		sasl_server_set_out(s, "Username:", 9);
		return SASL_CONTINUE;
	}
	if (s->step <= 1) {
		/* Username, either as the initial response or a reply. */
		if (in == NULL || inlen == 0 || inlen > USERNAME_MAX ||
		    memchr(in, '\0', inlen) != NULL) {
			s->fail_reason = "malformed-login-user";
			return SASL_BAD_INPUT;
		}
		s->username = xstrndup((const char *)in, inlen);
		s->step = 2;
		sasl_server_set_out(s, "Password:", 9);
		return SASL_CONTINUE;
	}
	if (in == NULL || inlen > PASSWORD_MAX ||
	    memchr(in, '\0', inlen) != NULL) {
		s->fail_reason = "malformed-login-password";
		return SASL_BAD_INPUT;
	}
	pw = xstrndup((const char *)in, inlen);
	res = auth_plain(s->db, s->username, pw, inlen, &entry, &why);
	free_secret(pw);
	return auth_result_status(s, res, entry, why);
}

enum sasl_status
sasl_server_step(struct sasl_server *s, const unsigned char *in, size_t inlen,
    const unsigned char **out_r, size_t *outlen_r)
{
	enum sasl_status st;

	*out_r = NULL;
	*outlen_r = 0;
	if (s->finished) {
		s->entry = NULL;
		s->fail_reason = "step-after-end";
		return SASL_BAD_INPUT;
	}
	if (inlen > SASL_MSG_MAX) {
		s->finished = true;
		s->fail_reason = "message-too-long";
		return SASL_BAD_INPUT;
	}
	switch (s->mech) {
	case SASL_MECH_PLAIN:
		st = plain_step(s, in, inlen);
		break;
	case SASL_MECH_LOGIN:
		st = login_step(s, in, inlen);
		break;
	case SASL_MECH_SCRAM_SHA_256:
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		st = sasl_scram_step(s, in, inlen);
		break;
	default:
		st = SASL_BAD_INPUT;
		break;
	}
	if (st == SASL_CONTINUE) {
		*out_r = s->out;
		*outlen_r = s->outlen;
	} else {
		s->finished = true;
		if (st == SASL_OK)
			s->fail_reason = NULL;
		else
			s->entry = NULL;
	}
	return st;
}

const struct userdb_entry *
sasl_server_entry(const struct sasl_server *s)
{
	return s->entry;
}

const char *
sasl_server_username(const struct sasl_server *s)
{
	return s->username;
}

const char *
sasl_server_fail_reason(const struct sasl_server *s)
{
	return s->finished && s->entry == NULL ? s->fail_reason : NULL;
}
