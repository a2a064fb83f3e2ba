/*
 * fuzz_sasl.c - libFuzzer target for the SASL server steps (src/auth).
 *
 * Input byte 0 picks the mechanism and the TLS view:
 *   bits 0-1 mechanism (PLAIN, LOGIN, SCRAM-SHA-256, SCRAM-SHA-256-PLUS)
 *   bit 2 TLS on, bit 3 channel-binding data present,
 *   bit 4 cb type tls-server-end-point (else tls-exporter),
 *   bit 5 "client mode" (SCRAM only), bit 6 no initial response.
 *
 * Raw mode: the rest is split at 0xFF into client messages fed in order.
 * Client mode: a correct SCRAM client runs against the server; byte 1
 * chooses its password (right/wrong), gs2 flag, authzid and whether its
 * view of the channel-binding data is wrong; the remaining bytes are
 * mutations (xor / truncate / insert) applied to its two messages, as
 * Dovecot's fuzz-sasl-authentication does.
 *
 * Oracle: SASL_OK only when the right password was supplied (PLAIN and
 * LOGIN: the bytes of the password; SCRAM in raw mode: never, the server
 * nonce is random; client mode: right password, matching cb data, and no
 * "y" flag while the server offers -PLUS).  Sanitizers catch the rest.
 *
 * Build (clang 14):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -std=c17 -Isrc tests/fuzz/fuzz_sasl.c src/auth/{passwd,scram,userdb,\
 *     auth,sasl,sasl_scram}.c src/lib/{log,xmalloc,strutil}.c \
 *     -lcrypto -lcrypt -largon2 -lpthread -o fuzz_sasl
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/passwd.h"
#include "auth/sasl.h"
#include "auth/scram.h"
#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS	8
#define RIGHT_PW	"pencil"
#define PLAIN_PW	"secret"

static struct userdb *db;
static const unsigned char salt[16] = "fuzz-salt-16byte";

static void
init_db(void)
{
	static struct user_cfg users[3];
	static struct posuto_config cfg = {
		.path = "fuzz", .mail_dir = "/nonexistent", .users = users,
		.n_users = 3,
	};
	static char stored[256];
	struct scram_secret s;
	char *d;

	if (db != NULL)
		return;
	log_init("fuzz_sasl", false, LOG_LVL_ERROR);
	scram_secret_derive(RIGHT_PW, strlen(RIGHT_PW), salt, sizeof(salt),
	    4096, &s);
	d = scram_secret_format(&s);
	snprintf(stored, sizeof(stored), "{SCRAM-SHA-256}%s", d);
	free(d);
	users[0] = (struct user_cfg){ .name = "user", .password = stored };
	users[1] = (struct user_cfg){ .name = "plainuser",
	    .password = "{PLAIN}" PLAIN_PW };
	users[2] = (struct user_cfg){ .name = "hexuser", .password =
	    "{SHA256.HEX}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8" };
	db = userdb_load(&cfg, stderr);
	if (db == NULL)
		abort();
}

static const char *
right_password(const char *user)
{
	if (strcmp(user, "user") == 0)
		return RIGHT_PW;
	if (strcmp(user, "plainuser") == 0)
		return PLAIN_PW;
	if (strcmp(user, "hexuser") == 0)
		return "password";
	abort();
}

static void
setup_chan(uint8_t flags, struct sasl_channel *chan)
{
	memset(chan, 0, sizeof(*chan));
	chan->tls = (flags & 4) != 0;
	if (flags & 8) {
		chan->cb_type = (flags & 16) ? "tls-server-end-point" :
		    "tls-exporter";
		chan->cb_len = 32;
		for (int i = 0; i < 32; i++)
			chan->cb_data[i] = (unsigned char)(0xa0 + i);
	}
}

static void
raw_mode(enum sasl_mech mech, uint8_t flags, const uint8_t *data, size_t size)
{
	struct sasl_channel chan;
	struct sasl_server *s;
	const uint8_t *msg[MAX_MSGS];
	size_t len[MAX_MSGS], n = 0;
	const unsigned char *out;
	size_t outlen;
	enum sasl_status st = SASL_CONTINUE;

	while (n < MAX_MSGS) {
		const uint8_t *sep = memchr(data, 0xff, size);
		size_t l = sep != NULL ? (size_t)(sep - data) : size;

		msg[n] = data;
		len[n++] = l;
		if (sep == NULL)
			break;
		data += l + 1;
		size -= l + 1;
	}
	setup_chan(flags, &chan);
	s = sasl_server_new(mech, db, &chan);
	if (flags & 64)
		st = sasl_server_step(s, NULL, 0, &out, &outlen);
	for (size_t i = 0; i < n && st == SASL_CONTINUE; i++) {
		st = sasl_server_step(s, msg[i], len[i], &out, &outlen);
		if (st == SASL_OK) {
			const struct userdb_entry *e = sasl_server_entry(s);
			const char *pw;

			if (e == NULL)
				abort();
			pw = right_password(e->name);
			switch (mech) {
			case SASL_MECH_PLAIN: {
				/* the bytes after the second NUL */
				const uint8_t *p = memchr(msg[i], 0, len[i]);
				p = memchr(p + 1, 0, len[i] -
				    (size_t)(p + 1 - msg[i]));
				if ((size_t)(msg[i] + len[i] - p - 1) !=
				    strlen(pw) || memcmp(p + 1, pw,
				    strlen(pw)) != 0)
					abort();
				break;
			}
			case SASL_MECH_LOGIN:
				if (len[i] != strlen(pw) ||
				    memcmp(msg[i], pw, len[i]) != 0)
					abort();
				break;
			default:
				/* no way to know a random nonce */
				abort();
			}
		}
		if (st == SASL_CONTINUE && out == NULL)
			abort();
	}
	sasl_server_free(&s);
}

static void
hmac256(const unsigned char *k, size_t klen, const void *d, size_t dlen,
    unsigned char *out)
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), k, (int)klen, d, dlen, out, &len);
}

/* Applies mutation ops (3 bytes each) aimed at message `which` to buf. */
static size_t
mutate(char *buf, size_t len, size_t cap, int which, const uint8_t *ops,
    size_t nops, bool *mutated)
{
	for (size_t i = 0; i + 3 <= nops; i += 3) {
		size_t pos;

		if ((ops[i] & 1) != which || len == 0)
			continue;
		pos = ops[i + 1] % len;
		*mutated = true;
		switch ((ops[i] >> 1) & 3) {
		case 0:		/* xor */
			buf[pos] ^= (char)(ops[i + 2] | 1);
			break;
		case 1:		/* truncate */
			len = pos;
			break;
		case 2:		/* insert */
			if (len + 1 < cap) {
				memmove(buf + pos + 1, buf + pos, len - pos);
				buf[pos] = (char)ops[i + 2];
				len++;
			}
			break;
		default:	/* delete */
			memmove(buf + pos, buf + pos + 1, len - pos - 1);
			len--;
			break;
		}
	}
	return len;
}

static void
client_mode(enum sasl_mech mech, uint8_t flags, const uint8_t *data,
    size_t size)
{
	static const char *const gs2s[] = { "n", "y", NULL, "p=tls-unique" };
	struct sasl_channel chan;
	struct sasl_server *s;
	char gs2[64], first[512], final[1024], am[2048];
	unsigned char salted[32], ck[32], sk[32], sig[32], cbind[128];
	unsigned char rsalt[128];
	char cb64[200], proof64[64];
	const unsigned char *out;
	size_t outlen, flen;
	const char *pw, *sf, *p;
	char sfbuf[1024];
	uint8_t ctl;
	bool right, cb_wrong, mutated = false;
	long saltlen;
	unsigned iter;
	enum sasl_status st;

	if (size < 1)
		return;
	ctl = data[0];
	data++;
	size--;
	setup_chan(flags, &chan);
	right = (ctl & 1) != 0;
	cb_wrong = (ctl & 16) != 0;
	pw = right ? RIGHT_PW : "pencik";
	/* n / y / p=<server's type> / p=tls-unique (which we never offer) */
	if (gs2s[(ctl >> 1) & 3] != NULL)
		snprintf(gs2, sizeof(gs2), "%s,%s", gs2s[(ctl >> 1) & 3],
		    (ctl & 8) ? "a=user," : ",");
	else
		snprintf(gs2, sizeof(gs2), "p=%s,%s", chan.cb_type != NULL ?
		    chan.cb_type : "tls-exporter", (ctl & 8) ? "a=user," : ",");

	s = sasl_server_new(mech, db, &chan);
	flen = (size_t)snprintf(first, sizeof(first), "%sn=user,r=fyko+d2lbbFgONRv9qkxdawL", gs2);
	flen = mutate(first, flen, sizeof(first), 0, data, size, &mutated);
	st = sasl_server_step(s, (const unsigned char *)first, flen, &out,
	    &outlen);
	if (st != SASL_CONTINUE)
		goto done;
	snprintf(sfbuf, sizeof(sfbuf), "%.*s", (int)outlen, (const char *)out);
	sf = sfbuf;
	p = strstr(sf, ",s=");
	if (strncmp(sf, "r=", 2) != 0 || p == NULL)
		abort();
	saltlen = base64_decode(p + 3, strcspn(p + 3, ","), rsalt);
	p = strstr(sf, ",i=");
	if (saltlen <= 0 || p == NULL)
		abort();
	iter = (unsigned)strtoul(p + 3, NULL, 10);
	if (iter < 4096 || iter > 10000000)
		abort();

	PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), rsalt, (int)saltlen,
	    (int)iter, EVP_sha256(), 32, salted);
	hmac256(salted, 32, "Client Key", 10, ck);
	SHA256(ck, 32, sk);
	memcpy(cbind, gs2, strlen(gs2));
	memcpy(cbind + strlen(gs2), chan.cb_data, 32);
	if (cb_wrong)
		cbind[strlen(gs2)] ^= 1;
	base64_encode(cbind, strlen(gs2) + (gs2[0] == 'p' ? 32 : 0), cb64);
	snprintf(final, sizeof(final), "c=%s,r=%.*s", cb64,
	    (int)strcspn(sf + 2, ","), sf + 2);
	snprintf(am, sizeof(am), "%s,%s,%s", first + strlen(gs2), sf, final);
	hmac256(sk, 32, am, strlen(am), sig);
	for (int i = 0; i < 32; i++)
		sig[i] ^= ck[i];
	base64_encode(sig, 32, proof64);
	flen = strlen(final);
	flen += (size_t)snprintf(final + flen, sizeof(final) - flen, ",p=%s",
	    proof64);
	flen = mutate(final, flen, sizeof(final), 1, data, size, &mutated);
	st = sasl_server_step(s, (const unsigned char *)final, flen, &out,
	    &outlen);
	if (st != SASL_CONTINUE)
		goto done;
	st = sasl_server_step(s, (const unsigned char *)"", 0, &out, &outlen);
done:
	if (st == SASL_OK) {
		bool server_cb = chan.tls && chan.cb_len > 0;
		if (!right || (gs2[0] == 'p' && cb_wrong) ||
		    (gs2[0] == 'y' && server_cb) || sasl_server_entry(s) == NULL)
			abort();
	}
	/* Liveness: an untouched correct exchange must succeed. */
	if (!mutated && right && !cb_wrong && st != SASL_OK &&
	    ((mech == SASL_MECH_SCRAM_SHA_256 && gs2[0] == 'n') ||
	    (mech == SASL_MECH_SCRAM_SHA_256_PLUS && gs2[0] == 'p' &&
	    chan.tls && chan.cb_len > 0 && strncmp(gs2, "p=tls-unique", 12) != 0)))
		abort();
	sasl_server_free(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sasl_mech mech;
	uint8_t flags;

	init_db();
	if (size < 1)
		return 0;
	flags = data[0];
	mech = (enum sasl_mech)(flags & 3);
	if ((flags & 32) && (mech == SASL_MECH_SCRAM_SHA_256 ||
	    mech == SASL_MECH_SCRAM_SHA_256_PLUS))
		client_mode(mech, flags, data + 1, size - 1);
	else
		raw_mode(mech, flags, data + 1, size - 1);
	return 0;
}
