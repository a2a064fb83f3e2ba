/*
 * test_smtp_session.c - the LMTP / SMTP sink engine driven byte by byte:
 * every command, pipelining split at every offset, dot-stuffing, limits,
 * per-recipient LMTP replies, asynchronous ops, garbage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_session.h"

/* A growable byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_drop(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	b->p[b->len] = '\0';
}

struct h {
	struct smtp_session *s;
	struct smtp_session_params params;
	struct buf out;		/* replies */
	struct buf body;	/* what data_write got */
	struct buf in;		/* input not yet consumed */
	struct buf env;		/* envelope seen by data_done */
	bool rcpt_async, data_async, auto_complete;
	bool rcpt_early, data_early;	/* complete from inside the op */
	bool pend_rcpt, pend_data;
	char pend_addr[300];
	size_t pend_n;
	char pend_rcpts[8][300];
	bool begin_refuse, write_fail;
	unsigned n_begin, n_abort, n_done, n_close, n_writes;
	size_t max_write;
};

/* Every reply line: 3 digits, space or dash, text, CRLF, <= 512. */
static void
check_reply(const char *t, size_t len)
{
	assert_true(len >= 6 && len <= 512);
	assert_true(t[0] >= '2' && t[0] <= '5');
	assert_true(t[1] >= '0' && t[1] <= '9' && t[2] >= '0' && t[2] <= '9');
	assert_true(t[3] == ' ' || t[3] == '-');
	assert_true(t[len - 2] == '\r' && t[len - 1] == '\n');
	for (size_t i = 4; i < len - 2; i++)
		assert_true(t[i] >= 0x20 && t[i] < 0x7f);
}

static void
op_reply(void *ctx, const char *t, size_t len)
{
	struct h *h = ctx;

	check_reply(t, len);
	buf_add(&h->out, t, len);
}

static void
verdict(const char *addr, struct smtp_result *r)
{
	if (strncmp(addr, "tmp@", 4) == 0)
		smtp_result_set(r, 451, "4.2.0", "Try later");
	else if (strncmp(addr, "alice@", 6) == 0 || strncmp(addr, "bob@", 4) == 0 ||
	    strncmp(addr, "carol@", 6) == 0 || strncmp(addr, "full@", 5) == 0 ||
	    strcmp(addr, "Postmaster") == 0)
		smtp_result_set(r, 250, "2.1.5", "Ok");
	else
		smtp_result_set(r, 550, "5.1.1", "User unknown");
}

static void
deliver(const char *rcpt, struct smtp_result *r)
{
	char text[300];

	if (strncmp(rcpt, "full@", 5) == 0) {
		smtp_result_set(r, 452, "4.2.2", "Mailbox full");
		return;
	}
	snprintf(text, sizeof(text), "Delivered to %s", rcpt);
	smtp_result_set(r, 250, "2.0.0", text);
}

static void h_complete(struct h *h);

static enum smtp_op_status
op_rcpt(void *ctx, const struct smtp_envelope *env, const char *addr,
    struct smtp_result *res)
{
	struct h *h = ctx;

	assert_false(h->pend_rcpt || h->pend_data);
	assert_non_null(env->mail_from);
	if (!h->rcpt_async) {
		verdict(addr, res);
		return SMTP_OP_DONE;
	}
	h->pend_rcpt = true;
	snprintf(h->pend_addr, sizeof(h->pend_addr), "%s", addr);
	if (h->rcpt_early)
		h_complete(h);
	return SMTP_OP_PENDING;
}

static bool
op_begin(void *ctx, const struct smtp_envelope *env, struct smtp_result *res)
{
	struct h *h = ctx;

	(void)env;
	h->n_begin++;
	if (h->begin_refuse) {
		smtp_result_set(res, 452, "4.3.1", "Spool full");
		return false;
	}
	return true;
}

static bool
op_write(void *ctx, const char *b, size_t len)
{
	struct h *h = ctx;

	assert_true(len > 0 && len <= SMTP_DATA_CHUNK);
	h->n_writes++;
	if (len > h->max_write)
		h->max_write = len;
	if (h->write_fail)
		return false;
	buf_add(&h->body, b, len);
	return true;
}

static enum smtp_op_status
op_done(void *ctx, const struct smtp_envelope *env, struct smtp_result *res)
{
	struct h *h = ctx;
	char line[400];

	h->n_done++;
	snprintf(line, sizeof(line), "client=%s from=%s 8bit=%d size=%llu",
	    env->client, env->mail_from, env->body_8bit,
	    (unsigned long long)env->size_hint);
	buf_add(&h->env, line, strlen(line));
	for (size_t i = 0; i < env->n_rcpts; i++) {
		buf_add(&h->env, " to=", 4);
		buf_add(&h->env, env->rcpts[i], strlen(env->rcpts[i]));
	}
	buf_add(&h->env, "\n", 1);
	if (!h->data_async) {
		for (size_t i = 0; i < env->n_rcpts; i++)
			deliver(env->rcpts[i], &res[i]);
		return SMTP_OP_DONE;
	}
	h->pend_data = true;
	h->pend_n = env->n_rcpts;
	assert_true(h->pend_n <= 8);
	for (size_t i = 0; i < env->n_rcpts; i++)
		snprintf(h->pend_rcpts[i], sizeof(h->pend_rcpts[i]), "%s",
		    env->rcpts[i]);
	if (h->data_early)
		h_complete(h);
	return SMTP_OP_PENDING;
}

static void
op_abort(void *ctx)
{
	((struct h *)ctx)->n_abort++;
}

static void
op_close(void *ctx)
{
	((struct h *)ctx)->n_close++;
}

static const struct smtp_session_ops ops = {
	.reply = op_reply, .rcpt_check = op_rcpt, .data_begin = op_begin,
	.data_write = op_write, .data_done = op_done, .data_abort = op_abort,
	.close = op_close,
};

static void
h_init(struct h *h, enum smtp_mode mode)
{
	memset(h, 0, sizeof(*h));
	h->params.mode = mode;
	h->params.hostname = "mx.test";
	h->params.peer_loopback = true;
	buf_add(&h->out, "", 0);
	buf_add(&h->body, "", 0);
	buf_add(&h->in, "", 0);
	buf_add(&h->env, "", 0);
}

static void
h_start(struct h *h)
{
	h->s = smtp_session_new(&h->params, &ops, h);
	smtp_session_start(h->s);
}

static void
h_free(struct h *h)
{
	smtp_session_free(&h->s);
	assert_null(h->s);
	free(h->out.p);
	free(h->body.p);
	free(h->in.p);
	free(h->env.p);
}

/* Offers the unconsumed input; completes ops if auto_complete. */
static void
h_pump(struct h *h)
{
	for (unsigned guard = 0; guard < 100000; guard++) {
		size_t n = smtp_session_input(h->s, h->in.p, h->in.len);
		buf_drop(&h->in, n);
		if (h->in.len == 0 || !h->auto_complete ||
		    !smtp_session_blocked(h->s))
			return;
		h_complete(h);
	}
	fail_msg("pump did not converge");
}

static void
h_feed(struct h *h, const void *d, size_t n)
{
	buf_add(&h->in, d, n);
	h_pump(h);
}

static void
h_feeds(struct h *h, const char *s)
{
	h_feed(h, s, strlen(s));
}

/* Completes whatever op is pending, then re-offers the input. */
static void
h_complete(struct h *h)
{
	struct smtp_result r[8];

	if (h->pend_rcpt) {
		h->pend_rcpt = false;
		verdict(h->pend_addr, &r[0]);
		smtp_session_rcpt_done(h->s, &r[0]);
	} else if (h->pend_data) {
		h->pend_data = false;
		for (size_t i = 0; i < h->pend_n; i++)
			deliver(h->pend_rcpts[i], &r[i]);
		smtp_session_data_done(h->s, r, h->pend_n);
	}
}

static void
h_complete_pump(struct h *h)
{
	h_complete(h);
	h_pump(h);
}

static void
h_clear(struct h *h)
{
	h->out.len = 0;
	h->out.p[0] = '\0';
}

static void
expect_out(struct h *h, const char *want)
{
	assert_string_equal(h->out.p, want);
	h->out.len = 0;
	h->out.p[0] = '\0';
}

#define GREET_LMTP "220 mx.test LMTP posuto ready\r\n"
#define EHLO_REPLY "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250 SIZE 67108864\r\n"

static void
test_greeting_and_lhlo(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	expect_out(&h, GREET_LMTP);
	h_feeds(&h, "LHLO client.example\r\n");
	expect_out(&h, EHLO_REPLY);
	/* LMTP has no EHLO/HELO (RFC 2033 §4.1). */
	h_feeds(&h, "EHLO x\r\nHELO x\r\n");
	expect_out(&h, "500 5.5.1 Command unrecognized: this is LMTP, use LHLO\r\n"
	    "500 5.5.1 Command unrecognized: this is LMTP, use LHLO\r\n");
	h_feeds(&h, "LHLO\r\nLHLO a b\r\n");
	expect_out(&h, "501 5.5.4 Syntax: LHLO/EHLO/HELO hostname\r\n"
	    "501 5.5.4 Syntax: LHLO/EHLO/HELO hostname\r\n");
	h_feeds(&h, "lhlo [127.0.0.1]\r\n");
	expect_out(&h, EHLO_REPLY);
	h_free(&h);

	h_init(&h, SMTP_MODE_SINK);
	h_start(&h);
	expect_out(&h, "220 mx.test ESMTP posuto development sink, not for "
	    "the internet\r\n");
	h_feeds(&h, "LHLO x\r\n");
	expect_out(&h, "500 5.5.1 Command unrecognized\r\n");
	h_feeds(&h, "HELO app\r\nEHLO app\r\n");
	expect_out(&h, "250 mx.test\r\n" EHLO_REPLY);
	h_free(&h);
}

static void
test_sink_refuses_remote(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_SINK);
	h.params.peer_loopback = false;
	h_start(&h);
	expect_out(&h, "554 mx.test development SMTP sink: loopback clients "
	    "only\r\n");
	h_feeds(&h, "EHLO x\r\nMAIL FROM:<a@b>\r\nNOOP\r\n");
	expect_out(&h, "503 5.7.1 No service here, only QUIT\r\n"
	    "503 5.7.1 No service here, only QUIT\r\n"
	    "503 5.7.1 No service here, only QUIT\r\n");
	h_feeds(&h, "QUIT\r\nNOOP\r\n");
	expect_out(&h, "221 2.0.0 mx.test closing connection\r\n");
	assert_int_equal(h.n_close, 1);
	assert_int_equal(h.in.len, 6);	/* nothing after QUIT consumed */
	h_free(&h);
}

static void
test_before_hello(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	expect_out(&h, GREET_LMTP);
	h_feeds(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nDATA\r\n");
	expect_out(&h, "503 5.5.1 Send LHLO first\r\n"
	    "503 5.5.1 Send LHLO first\r\n503 5.5.1 Send LHLO first\r\n");
	h_feeds(&h, "NOOP\r\nNOOP anything\r\nRSET\r\nRSET x\r\nVRFY alice\r\n"
	    "VRFY\r\nHELP\r\n");
	expect_out(&h, "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
	    "501 5.5.4 Syntax: RSET\r\n"
	    "252 2.5.0 Cannot VRFY user, but will accept message and attempt "
	    "delivery\r\n501 5.5.4 Syntax: VRFY address\r\n"
	    "214 2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
	h_feeds(&h, "QUIT\r\n");
	expect_out(&h, "221 2.0.0 mx.test closing connection\r\n");
	assert_true(smtp_session_closed(h.s));
	assert_int_equal(h.n_close, 1);
	/* Closed: nothing more is consumed or answered. */
	assert_int_equal(smtp_session_input(h.s, "NOOP\r\n", 6), 0);
	expect_out(&h, "");
	h_free(&h);
}

static void
test_mail(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h.params.max_size = 1000;
	h.params.max_bad_cmds = 50;
	h_start(&h);
	h_feeds(&h, "LHLO c\r\n");
	expect_out(&h, GREET_LMTP "250-mx.test\r\n250-PIPELINING\r\n"
	    "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 1000\r\n");
	h_feeds(&h, "RCPT TO:<alice@x>\r\n");
	expect_out(&h, "503 5.5.1 Need MAIL command\r\n");
	h_feeds(&h, "MAIL FROM:a@b\r\nMAIL FROM:<a@b> FOO=1\r\n"
	    "MAIL FROM:<a@b> SIZE=x\r\nMAIL FROM:<a@b> SIZE=1001\r\n"
	    "MAIL FROM:<@r:a@b>\r\nMAIL FROM:<\"a b\"@c>\r\nMAIL\r\n"
	    "MAIL TO:<a@b>\r\n");
	expect_out(&h, "501 5.1.7 Syntax: MAIL FROM:<address>\r\n"
	    "555 5.5.4 Unsupported parameter\r\n"
	    "501 5.5.4 Bad MAIL parameters\r\n"
	    "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
	    "553 5.1.7 Source routes are not accepted\r\n"
	    "553 5.1.7 Quoted local parts are not accepted\r\n"
	    "501 5.1.7 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.1.7 Syntax: MAIL FROM:<address>\r\n");
	h_feeds(&h, "MAIL FROM:<> SIZE=1000 BODY=8BITMIME\r\nMAIL FROM:<a@b>\r\n");
	expect_out(&h, "250 2.1.0 Ok\r\n503 5.5.1 Nested MAIL command\r\n");
	h_feeds(&h, "RCPT TO:<alice@x>\r\nDATA\r\nhi\r\n.\r\n");
	expect_out(&h, "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Delivered to alice@x\r\n");
	assert_string_equal(h.env.p, "client=c from= 8bit=1 size=1000 to=alice@x\n");
	/* RSET ends the transaction: RCPT needs MAIL again. */
	h_feeds(&h, "MAIL FROM:<a@b>\r\nRSET\r\nRCPT TO:<alice@x>\r\n");
	expect_out(&h, "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n"
	    "503 5.5.1 Need MAIL command\r\n");
	/* LHLO resets too. */
	h_feeds(&h, "MAIL FROM:<a@b>\r\nLHLO d\r\nRCPT TO:<alice@x>\r\n");
	expect_out(&h, "250 2.1.0 Ok\r\n250-mx.test\r\n250-PIPELINING\r\n"
	    "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 1000\r\n"
	    "503 5.5.1 Need MAIL command\r\n");
	h_free(&h);
}

static void
test_rcpt(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h.params.max_rcpts = 2;
	h_start(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<s@x>\r\n");
	h_clear(&h);
	h_feeds(&h, "RCPT TO:<nobody@x>\r\nRCPT TO:<tmp@x>\r\nRCPT TO:<>\r\n"
	    "RCPT TO:alice@x\r\nRCPT TO:<alice@x> NOTIFY=NEVER\r\n"
	    "RCPT TO:<@r:alice@x>\r\nRCPT FROM:<alice@x>\r\n");
	expect_out(&h, "550 5.1.1 User unknown\r\n451 4.2.0 Try later\r\n"
	    "501 5.1.3 Syntax: RCPT TO:<address>\r\n"
	    "501 5.1.3 Syntax: RCPT TO:<address>\r\n"
	    "555 5.5.4 Unsupported parameter\r\n"
	    "553 5.1.3 Source routes are not accepted\r\n"
	    "501 5.1.3 Syntax: RCPT TO:<address>\r\n");
	h_feeds(&h, "DATA\r\n");
	expect_out(&h, "503 5.5.1 No valid recipients\r\n");
	h_feeds(&h, "RCPT TO:<alice@x>\r\nRCPT TO:<Postmaster>\r\n"
	    "RCPT TO:<bob@x>\r\nDATA x\r\n");
	expect_out(&h, "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	    "452 4.5.3 Too many recipients\r\n501 5.5.4 Syntax: DATA\r\n");
	h_free(&h);
}

/* The same conversation as one buffer, byte by byte, or split in two at
 * every offset: the replies and the stored body must not change. */
static const char pipelined[] =
    "LHLO client.example\r\n"
    "MAIL FROM:<sender@example.org> BODY=8BITMIME\r\n"
    "RCPT TO:<alice@example.org>\r\n"
    "RCPT TO:<nobody@example.org>\r\n"
    "RCPT TO:<bob@example.org>\r\n"
    "DATA\r\n"
    "Subject: hi\r\n"
    "\r\n"
    "..leading dot\r\n"
    ".\r\n"
    "MAIL FROM:<>\r\n"
    "RCPT TO:<carol@example.org>\r\n"
    "DATA\r\n"
    "second\r\n"
    ".\r\n"
    "QUIT\r\n";
static const char pipelined_out[] =
    GREET_LMTP EHLO_REPLY
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n"
    "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Delivered to alice@example.org\r\n"
    "250 2.0.0 Delivered to bob@example.org\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Delivered to carol@example.org\r\n"
    "221 2.0.0 mx.test closing connection\r\n";
static const char pipelined_body[] =
    "Subject: hi\r\n\r\n.leading dot\r\nsecond\r\n";

static void
run_split(bool async, size_t split, size_t step)
{
	struct h h;
	size_t len = sizeof(pipelined) - 1, off = 0;

	h_init(&h, SMTP_MODE_LMTP);
	h.rcpt_async = h.data_async = async;
	h.auto_complete = true;
	h_start(&h);
	while (off < len) {
		size_t k = step != 0 ? step : (off < split ? split - off : len - off);
		if (k > len - off)
			k = len - off;
		h_feed(&h, pipelined + off, k);
		off += k;
		/* Complete what is pending before more bytes arrive. */
		while (smtp_session_blocked(h.s))
			h_complete_pump(&h);
	}
	assert_string_equal(h.out.p, pipelined_out);
	assert_string_equal(h.body.p, pipelined_body);
	assert_int_equal(h.n_done, 2);
	assert_int_equal(h.n_close, 1);
	assert_int_equal(h.n_abort, 0);
	assert_string_equal(h.env.p,
	    "client=client.example from=sender@example.org 8bit=1 size=0 "
	    "to=alice@example.org to=bob@example.org\n"
	    "client=client.example from= 8bit=0 size=0 to=carol@example.org\n");
	h_free(&h);
}

static void
test_pipelining_splits(void **state)
{
	(void)state;

	run_split(false, 0, 0);
	run_split(true, 0, 0);
	run_split(false, 0, 1);
	run_split(true, 0, 1);
	for (size_t k = 1; k < sizeof(pipelined) - 1; k++) {
		run_split(false, k, 0);
		run_split(true, k, 0);
	}
}

/* Pipelined input while an op is pending is held, not answered early. */
static void
test_async_out_of_band(void **state)
{
	struct h h;
	size_t len = sizeof(pipelined) - 1;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h.rcpt_async = h.data_async = true;
	h_start(&h);
	h_feed(&h, pipelined, len);
	/* Stopped at the first RCPT: its line consumed, the rest held. */
	assert_true(smtp_session_blocked(h.s));
	assert_true(h.pend_rcpt);
	assert_string_equal(h.pend_addr, "alice@example.org");
	expect_out(&h, GREET_LMTP EHLO_REPLY "250 2.1.0 Ok\r\n");
	/* More bytes arriving while blocked are not consumed either. */
	assert_int_equal(smtp_session_input(h.s, "NOOP\r\n", 6), 0);
	expect_out(&h, "");
	h_complete_pump(&h);
	expect_out(&h, "250 2.1.5 Ok\r\n");
	assert_true(h.pend_rcpt);
	assert_string_equal(h.pend_addr, "nobody@example.org");
	h_complete_pump(&h);
	h_complete_pump(&h);
	expect_out(&h, "550 5.1.1 User unknown\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_true(h.pend_data);
	assert_int_equal(h.pend_n, 2);
	/* A completion from inside the op counts as the synchronous case. */
	h.rcpt_early = h.data_early = true;
	h_complete_pump(&h);
	expect_out(&h, "250 2.0.0 Delivered to alice@example.org\r\n"
	    "250 2.0.0 Delivered to bob@example.org\r\n250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Delivered to carol@example.org\r\n"
	    "221 2.0.0 mx.test closing connection\r\n");
	assert_false(h.pend_data || h.pend_rcpt);
	assert_int_equal(h.in.len, 0);
	h_free(&h);
}

/* The idle timer may fire while a lookup is out: 421, and the late
 * completion is ignored. */
static void
test_timeout_while_pending(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h.rcpt_async = h.data_async = true;
	h_start(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n");
	assert_true(h.pend_rcpt);
	h_clear(&h);
	smtp_session_timeout(h.s);
	expect_out(&h, "421 4.4.2 mx.test Timeout, closing connection\r\n");
	h_complete(&h);
	expect_out(&h, "");
	assert_int_equal(h.n_close, 1);
	h_free(&h);

	/* Mid-DATA: the message is aborted. */
	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nDATA\r\nab");
	smtp_session_timeout(h.s);
	assert_int_equal(h.n_abort, 1);
	assert_int_equal(h.n_done, 0);
	h_free(&h);
	assert_int_equal(h.n_abort, 1);

	/* Freed mid-DATA (client went away): aborted exactly once. */
	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nDATA\r\nab");
	h_free(&h);
	assert_int_equal(h.n_abort, 1);
	assert_int_equal(h.n_done, 0);
}

static const char *
body_of(const char *data, size_t len, size_t split, size_t *n_writes)
{
	static char out[4096];
	struct h h;
	static const char pre[] = "LHLO c\r\nMAIL FROM:<a@b>\r\n"
	    "RCPT TO:<alice@x>\r\nDATA\r\n";

	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	h_feeds(&h, pre);
	if (split > len)
		split = len;
	h_feed(&h, data, split);
	h_feed(&h, data + split, len - split);
	h_feeds(&h, "NOOP\r\n");
	assert_int_equal(h.n_done, 1);
	/* The NOOP after the end marker is a command again. */
	assert_non_null(strstr(h.out.p, "250 2.0.0 Delivered to alice@x\r\n"
	    "250 2.0.0 Ok\r\n"));
	snprintf(out, sizeof(out), "%s", h.body.p);
	if (n_writes != NULL)
		*n_writes = h.n_writes;
	h_free(&h);
	return out;
}

static void
test_dot_stuffing(void **state)
{
	static const struct {
		const char *in, *body;
	} cases[] = {
		{ ".\r\n", "" },
		{ "a\r\n.\r\n", "a\r\n" },
		{ "..\r\n.\r\n", ".\r\n" },
		{ "...x\r\n.\r\n", "..x\r\n" },
		{ ".x\r\n.\r\n", "x\r\n" },
		{ "a.\r\n. \r\n.\r\n", "a.\r\n \r\n" },
		/* Bare LF is a line end, stored as CRLF. */
		{ "a\nb\n.\n", "a\r\nb\r\n" },
		{ "a\r\n.\n", "a\r\n" },
		{ "a\n.\r\n", "a\r\n" },
		{ "a\n..\n.\n", "a\r\n.\r\n" },
		{ "a\n\nb\n.\n", "a\r\n\r\nb\r\n" },
		{ "\n.\n", "\r\n" },
		/* Bare CR is data, never a line end. */
		{ "a\rb\r\n.\r\n", "a\rb\r\n" },
		{ "a\r.\r\n.\r\n", "a\r.\r\n" },
		{ "\r.\r\n.\r\n", "\r.\r\n" },
		{ ".\rx\r\n.\r\n", "\rx\r\n" },
		{ "a\r\r\n.\r\n", "a\r\r\n" },
		{ "x\r\n\r\n.\r\n", "x\r\n\r\n" },
		{ "\r\n.\r\n", "\r\n" },
		/* NUL and 8-bit bytes pass through. */
		{ "a\0b\xff\r\n.\r\n", NULL },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const char *in = cases[c].in;
		size_t len = c + 1 == sizeof(cases) / sizeof(cases[0]) ? 9 :
		    strlen(in);
		for (size_t k = 0; k <= len; k++) {
			const char *b = body_of(in, len, k, NULL);
			if (cases[c].body == NULL) {
				assert_int_equal(b[0], 'a');
				assert_int_equal(b[1], '\0');	/* NUL kept */
				continue;
			}
			if (strcmp(b, cases[c].body) != 0)
				fail_msg("case %zu split %zu: got \"%s\"", c, k, b);
		}
	}
}

static void
test_big_body_chunks(void **state)
{
	size_t n = 300 * 1024, nw = 0;
	char *big = malloc(n + 8), *want = malloc(n + 8);
	struct h h;
	static const char pre[] = "LHLO c\r\nMAIL FROM:<a@b>\r\n"
	    "RCPT TO:<alice@x>\r\nDATA\r\n";
	(void)state;

	assert_non_null(big);
	assert_non_null(want);
	for (size_t i = 0; i < n; i++)
		big[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'x';
	memcpy(want, big, n);
	memcpy(big + n, ".\r\n", 3);
	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	h_feeds(&h, pre);
	h_feed(&h, big, n + 3);
	assert_int_equal(h.body.len, n);
	assert_memory_equal(h.body.p, want, n);
	nw = h.n_writes;
	/* Streamed in bounded chunks, not as one message-sized write. */
	assert_true(nw >= n / SMTP_DATA_CHUNK);
	assert_true(h.max_write <= SMTP_DATA_CHUNK);
	h_free(&h);
	free(big);
	free(want);
}

static void
test_line_too_long(void **state)
{
	struct h h;
	char *line;
	size_t max = 600;
	(void)state;

	line = malloc(max + 8);
	assert_non_null(line);
	for (int step = 0; step < 2; step++) {
		h_init(&h, SMTP_MODE_LMTP);
		h.params.max_line = max;
		h_start(&h);
		h_clear(&h);
		/* Exactly max octets before the CRLF: accepted. */
		memcpy(line, "NOOP ", 5);
		memset(line + 5, 'a', max - 5);
		memcpy(line + max, "\r\n", 2);
		for (size_t i = 0; i < max + 2; i++) {
			if (step == 0) {
				h_feed(&h, line, max + 2);
				break;
			}
			h_feed(&h, line + i, 1);
		}
		expect_out(&h, "250 2.0.0 Ok\r\n");
		/* One more: refused once, and the next command works. */
		line[max] = 'a';
		memcpy(line + max + 1, "\r\n", 2);
		for (size_t i = 0; i < max + 3; i++) {
			if (step == 0) {
				h_feed(&h, line, max + 3);
				break;
			}
			h_feed(&h, line + i, 1);
		}
		h_feeds(&h, "NOOP\r\n");
		expect_out(&h, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
		h_free(&h);
	}
	free(line);

	/* A megabyte without LF is consumed and dropped as it comes, then
	 * answered once. */
	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	h_clear(&h);
	{
		char chunk[4096];
		memset(chunk, 'z', sizeof(chunk));
		for (int i = 0; i < 256; i++) {
			assert_int_equal(smtp_session_input(h.s, chunk,
			    sizeof(chunk)), sizeof(chunk));
		}
	}
	expect_out(&h, "");
	h_feeds(&h, "\nLHLO c\r\n");
	expect_out(&h, "500 5.5.2 Line too long\r\n" EHLO_REPLY);
	h_free(&h);
}

static void
test_size_exceeded(void **state)
{
	struct h h;
	char body[300];
	(void)state;

	for (int mode = 0; mode < 2; mode++) {
		h_init(&h, mode == 0 ? SMTP_MODE_LMTP : SMTP_MODE_SINK);
		h.params.max_size = 100;
		h_start(&h);
		h_feeds(&h, mode == 0 ? "LHLO c\r\n" : "EHLO c\r\n");
		h_feeds(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n"
		    "RCPT TO:<bob@x>\r\nDATA\r\n");
		h_clear(&h);
		/* 2 lines of 48 + CRLF = 100 octets: exactly the limit. */
		memset(body, 'b', sizeof(body));
		memcpy(body + 48, "\r\n", 2);
		memcpy(body + 98, "\r\n.\r\n", 5);
		h_feed(&h, body, 103);
		assert_int_equal(h.n_done, 1);
		assert_int_equal(h.body.len, 100);
		h_clear(&h);
		/* 101 octets: read to the end, then 552 for each recipient. */
		h_feeds(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n"
		    "RCPT TO:<bob@x>\r\nDATA\r\n");
		h_clear(&h);
		memcpy(body + 98, "b\r\n.\r\n", 6);
		for (size_t i = 0; i < 104; i++)
			h_feed(&h, body + i, 1);
		h_feeds(&h, "NOOP\r\n");
		if (mode == 0)
			expect_out(&h, "552 5.3.4 Message size exceeds fixed maximum "
			    "message size\r\n552 5.3.4 Message size exceeds fixed "
			    "maximum message size\r\n250 2.0.0 Ok\r\n");
		else
			expect_out(&h, "552 5.3.4 Message size exceeds fixed maximum "
			    "message size\r\n250 2.0.0 Ok\r\n");
		assert_int_equal(h.n_done, 1);
		assert_int_equal(h.n_abort, 1);
		assert_true(h.body.len <= 200);
		h_free(&h);
	}
}

static void
test_lmtp_mixed_results(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	h_clear(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n"
	    "RCPT TO:<nobody@x>\r\nRCPT TO:<full@x>\r\nRCPT TO:<bob@x>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	expect_out(&h, EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "550 5.1.1 User unknown\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Delivered to alice@x\r\n452 4.2.2 Mailbox full\r\n"
	    "250 2.0.0 Delivered to bob@x\r\n");
	h_free(&h);

	/* The sink has one reply: a temporary failure wins (retry). */
	h_init(&h, SMTP_MODE_SINK);
	h_start(&h);
	h_clear(&h);
	h_feeds(&h, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n"
	    "RCPT TO:<full@x>\r\nDATA\r\nx\r\n.\r\n"
	    "MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nRCPT TO:<bob@x>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	expect_out(&h, EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	    "452 4.2.2 Mailbox full\r\n"
	    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Delivered to alice@x\r\n");
	h_free(&h);
}

static void
test_data_failures(void **state)
{
	struct h h;
	(void)state;

	/* data_begin refuses: no 354, the transaction stays. */
	h_init(&h, SMTP_MODE_LMTP);
	h.begin_refuse = true;
	h_start(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n");
	h_clear(&h);
	h_feeds(&h, "DATA\r\n");
	expect_out(&h, "452 4.3.1 Spool full\r\n");
	h.begin_refuse = false;
	h_feeds(&h, "DATA\r\n.\r\n");
	expect_out(&h, "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Delivered to alice@x\r\n");
	h_free(&h);

	/* A write error: rest discarded, 451 for each recipient. */
	h_init(&h, SMTP_MODE_LMTP);
	h.write_fail = true;
	h_start(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n"
	    "RCPT TO:<bob@x>\r\nDATA\r\n");
	h_clear(&h);
	h_feeds(&h, "hello\r\n.\r\nNOOP\r\n");
	expect_out(&h, "451 4.3.0 Local error in processing, try again later\r\n"
	    "451 4.3.0 Local error in processing, try again later\r\n"
	    "250 2.0.0 Ok\r\n");
	assert_int_equal(h.n_abort, 1);
	assert_int_equal(h.n_done, 0);
	h_free(&h);
}

static enum smtp_op_status
op_done_garbage(void *ctx, const struct smtp_envelope *env,
    struct smtp_result *res)
{
	(void)ctx;
	/* A bad code, a bad enhanced code and a CRLF in the text. */
	smtp_result_set(&res[0], 99, "9.9.9", "x");
	if (env->n_rcpts > 1)
		smtp_result_set(&res[1], 550, "2.1.1", "no\r\nQUIT");
	/* res[2] left untouched: the engine's default applies. */
	return SMTP_OP_DONE;
}

static void
test_embedding_garbage(void **state)
{
	struct smtp_session_ops o = ops;
	struct h h;
	struct smtp_session *s;
	(void)state;

	o.data_done = op_done_garbage;
	h_init(&h, SMTP_MODE_LMTP);
	s = smtp_session_new(&h.params, &o, &h);
	smtp_session_start(s);
	h.s = s;
	h_clear(&h);
	h_feeds(&h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n"
	    "RCPT TO:<bob@x>\r\nRCPT TO:<carol@x>\r\nDATA\r\n.\r\n");
	assert_non_null(strstr(h.out.p, "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "451 4.3.0 Internal error\r\n550 5.0.0 no??QUIT\r\n"
	    "451 4.3.0 Not delivered\r\n"));
	h_free(&h);
}

static void
test_garbage_and_bad_limit(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h_start(&h);
	h_clear(&h);
	h_feed(&h, "NO\0OP\r\n", 7);
	h_feeds(&h, "\xff\xfe\r\n\r\nBDAT 1 LAST\r\nnoop\tx\r\n");
	expect_out(&h, "500 5.5.2 Bad characters in command\r\n"
	    "500 5.5.2 Bad characters in command\r\n"
	    "500 5.5.2 Empty command\r\n"
	    "500 5.5.1 Command unrecognized\r\n"
	    "500 5.5.1 Command unrecognized\r\n");
	/* Good commands do not reset the count: 10 errors and out. */
	h_feeds(&h, "NOOP\r\nx\r\nx\r\nx\r\nx\r\nMAIL FROM:<a@b>\r\nNOOP\r\n");
	expect_out(&h, "250 2.0.0 Ok\r\n500 5.5.1 Command unrecognized\r\n"
	    "500 5.5.1 Command unrecognized\r\n"
	    "500 5.5.1 Command unrecognized\r\n"
	    "500 5.5.1 Command unrecognized\r\n"
	    "503 5.5.1 Send LHLO first\r\n"
	    "421 4.7.0 mx.test Too many errors, closing connection\r\n");
	assert_true(smtp_session_closed(h.s));
	assert_int_equal(h.n_close, 1);
	assert_int_equal(h.in.len, 6);
	h_free(&h);
}

static void
test_input_before_start(void **state)
{
	struct h h;
	(void)state;

	h_init(&h, SMTP_MODE_LMTP);
	h.s = smtp_session_new(&h.params, &ops, &h);
	assert_int_equal(smtp_session_input(h.s, "NOOP\r\n", 6), 0);
	expect_out(&h, "");
	smtp_session_start(h.s);
	smtp_session_start(h.s);
	expect_out(&h, GREET_LMTP);
	h_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_lhlo),
		cmocka_unit_test(test_sink_refuses_remote),
		cmocka_unit_test(test_before_hello),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_pipelining_splits),
		cmocka_unit_test(test_async_out_of_band),
		cmocka_unit_test(test_timeout_while_pending),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_big_body_chunks),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_size_exceeded),
		cmocka_unit_test(test_lmtp_mixed_results),
		cmocka_unit_test(test_data_failures),
		cmocka_unit_test(test_embedding_garbage),
		cmocka_unit_test(test_garbage_and_bad_limit),
		cmocka_unit_test(test_input_before_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
