/*
 * fuzz_smtp.c - the LMTP / SMTP sink engine on arbitrary client bytes.
 * Input: 3 bytes of settings, then the client's stream.  Each input runs
 * twice: synchronous ops fed in one buffer, then asynchronous ops (some
 * completed from inside the op) fed in random chunks.  Oracles: every
 * reply line is well-formed (3 digits, space or dash, CRLF, <= 512
 * octets, printable); continuation lines keep their code; the body is in
 * CRLF form, bounded by SIZE and written in bounded chunks only during
 * DATA; every begun message gets exactly one data_done or data_abort;
 * both runs give the same replies and the same stored bytes.  LSan
 * catches leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_SIZE 2048
#define SMTP_PATH_MAX_TEST 300

struct run {
	struct smtp_session *s;
	bool async;
	uint32_t rng;
	uint32_t sig;		/* hash of replies and body bytes */
	bool in_multi;
	char multi_code[3];
	bool in_body;
	char last_body;
	uint64_t body_len;
	unsigned begun, ended;
	bool pend_rcpt, pend_data;
	char pend_addr[SMTP_PATH_MAX_TEST];
	size_t pend_n;
	char **pend_rcpts;
};

static uint32_t
rnd(struct run *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 17;
	r->rng ^= r->rng << 5;
	return r->rng;
}

static uint32_t
hash(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static void
op_reply(void *ctx, const char *t, size_t len)
{
	struct run *r = ctx;

	if (len < 6 || len > 512 || t[len - 2] != '\r' || t[len - 1] != '\n')
		abort();
	if (t[0] < '2' || t[0] > '5' || t[1] < '0' || t[1] > '9' ||
	    t[2] < '0' || t[2] > '9' || (t[3] != ' ' && t[3] != '-'))
		abort();
	for (size_t i = 4; i < len - 2; i++) {
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f)
			abort();
	}
	if (r->in_multi && memcmp(r->multi_code, t, 3) != 0)
		abort();
	r->in_multi = t[3] == '-';
	memcpy(r->multi_code, t, 3);
	r->sig = hash(r->sig, t, len);
}

/* Verdicts depend on the address only, so both runs agree. */
static void
verdict(const char *addr, unsigned salt, struct smtp_result *res)
{
	uint32_t h = hash(2166136261u + salt, addr, strlen(addr));

	switch (h % 4) {
	case 0:
		smtp_result_set(res, 550, "5.1.1", "User unknown");
		break;
	case 1:
		smtp_result_set(res, 451, "4.2.0", "later");
		break;
	default:
		smtp_result_set(res, 250, h % 8 == 2 ? "" : "2.1.5", addr);
		break;
	}
}

static void complete(struct run *r);

static enum smtp_op_status
op_rcpt(void *ctx, const struct smtp_envelope *env, const char *addr,
    struct smtp_result *res)
{
	struct run *r = ctx;

	if (r->pend_rcpt || r->pend_data || r->in_body || strlen(addr) >=
	    SMTP_PATH_MAX_TEST || env->mail_from == NULL)
		abort();
	if (!r->async) {
		verdict(addr, 0, res);
		return SMTP_OP_DONE;
	}
	r->pend_rcpt = true;
	memcpy(r->pend_addr, addr, strlen(addr) + 1);
	if (rnd(r) % 4 == 0)
		complete(r);
	return SMTP_OP_PENDING;
}

static bool
op_begin(void *ctx, const struct smtp_envelope *env, struct smtp_result *res)
{
	struct run *r = ctx;

	(void)res;
	if (r->in_body || env->n_rcpts == 0)
		abort();
	r->in_body = true;
	r->begun++;
	r->last_body = '\n';
	r->body_len = 0;
	return true;
}

static bool
op_write(void *ctx, const char *b, size_t len)
{
	struct run *r = ctx;

	if (!r->in_body || len == 0 || len > SMTP_DATA_CHUNK)
		abort();
	r->body_len += len;
	if (r->body_len > FUZZ_MAX_SIZE)
		abort();
	for (size_t i = 0; i < len; i++) {
		char prev = i > 0 ? b[i - 1] : r->last_body;
		if (b[i] == '\n' && prev != '\r')
			abort();
	}
	r->last_body = b[len - 1];
	r->sig = hash(r->sig, b, len);
	return true;
}

static enum smtp_op_status
op_done(void *ctx, const struct smtp_envelope *env, struct smtp_result *res)
{
	struct run *r = ctx;

	if (!r->in_body)
		abort();
	/* A message ends with its line's CRLF. */
	if (r->body_len > 0 && r->last_body != '\n')
		abort();
	r->in_body = false;
	r->ended++;
	if (!r->async) {
		for (size_t i = 0; i < env->n_rcpts; i++)
			verdict(env->rcpts[i], 1, &res[i]);
		return SMTP_OP_DONE;
	}
	r->pend_data = true;
	r->pend_n = env->n_rcpts;
	r->pend_rcpts = calloc(env->n_rcpts, sizeof(char *));
	if (r->pend_rcpts == NULL)
		abort();
	for (size_t i = 0; i < env->n_rcpts; i++)
		r->pend_rcpts[i] = strdup(env->rcpts[i]);
	return SMTP_OP_PENDING;
}

static void
op_abort(void *ctx)
{
	struct run *r = ctx;

	if (!r->in_body)
		abort();
	r->in_body = false;
	r->ended++;
}

static void
op_close(void *ctx)
{
	(void)ctx;
}

static const struct smtp_session_ops ops = {
	.reply = op_reply, .rcpt_check = op_rcpt, .data_begin = op_begin,
	.data_write = op_write, .data_done = op_done, .data_abort = op_abort,
	.close = op_close,
};

static void
complete(struct run *r)
{
	if (r->pend_rcpt) {
		struct smtp_result res;
		r->pend_rcpt = false;
		verdict(r->pend_addr, 0, &res);
		smtp_session_rcpt_done(r->s, &res);
	} else if (r->pend_data) {
		struct smtp_result *res = calloc(r->pend_n + 1, sizeof(*res));
		size_t n = r->pend_n;
		if (res == NULL)
			abort();
		r->pend_data = false;
		for (size_t i = 0; i < n; i++) {
			verdict(r->pend_rcpts[i], 1, &res[i]);
			free(r->pend_rcpts[i]);
		}
		free(r->pend_rcpts);
		r->pend_rcpts = NULL;
		smtp_session_data_done(r->s, res, n);
		free(res);
	}
}

static uint32_t
run(const uint8_t *cfg, const uint8_t *data, size_t size, bool async)
{
	struct smtp_session_params p = {
		.mode = (cfg[0] & 1) ? SMTP_MODE_SINK : SMTP_MODE_LMTP,
		.hostname = "fuzz.test",
		.max_size = FUZZ_MAX_SIZE,
		.max_rcpts = 1 + cfg[1] % 5,
		.max_line = 0,
		.peer_loopback = (cfg[0] & 2) == 0,
	};
	struct run r;
	size_t off = 0;
	unsigned guard = 0;

	memset(&r, 0, sizeof(r));
	r.async = async;
	r.rng = 0x9e3779b9u ^ cfg[2];
	r.sig = 2166136261u;
	r.s = smtp_session_new(&p, &ops, &r);
	smtp_session_start(r.s);
	while (off < size && !smtp_session_closed(r.s)) {
		size_t k = async ? 1 + rnd(&r) % 64 : size - off;
		if (k > size - off)
			k = size - off;
		/* Offer k new bytes plus whatever is still unconsumed. */
		size_t n = smtp_session_input(r.s, data + off, k);
		off += n;
		if (n < k && !smtp_session_blocked(r.s) &&
		    !smtp_session_closed(r.s))
			abort();	/* refused input for no reason */
		while (smtp_session_blocked(r.s))
			complete(&r);
		if (++guard > 4 * size + 100)
			abort();
	}
	if (smtp_session_closed(r.s) && (r.pend_rcpt || r.pend_data))
		abort();
	if (r.in_multi)
		abort();
	smtp_session_free(&r.s);
	if (r.begun != r.ended || r.in_body)
		abort();
	return r.sig;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	if (run(data, data + 3, size - 3, false) !=
	    run(data, data + 3, size - 3, true))
		abort();
	return 0;
}
