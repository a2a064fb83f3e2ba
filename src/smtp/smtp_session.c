/*
 * smtp_session.c - the engine's plumbing: state changes, replies, the
 * bounded command-line reader, the streaming DATA reader and the async
 * completions.  Commands themselves are in smtp_cmd.c.
 */
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "smtp/smtp_int.h"

static const char *const state_names[SMTP_STATE_COUNT] = {
	[SMTP_STATE_NEW] = "new", [SMTP_STATE_REFUSED] = "refused",
	[SMTP_STATE_CONNECTED] = "connected", [SMTP_STATE_READY] = "ready",
	[SMTP_STATE_MAIL] = "mail", [SMTP_STATE_RCPT_WAIT] = "rcpt-wait",
	[SMTP_STATE_DATA] = "data", [SMTP_STATE_DATA_WAIT] = "data-wait",
	[SMTP_STATE_CLOSED] = "closed",
};

/* Sessions start on every event loop. */
static atomic_uint_fast64_t smtp_next_id = 1;

/* The only place s->state changes, so a debug log shows every step. */
void
smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("smtp[%llu]: %s -> %s", (unsigned long long)s->id,
	    state_names[s->state], state_names[st]);
	s->state = st;
}

/* Printable ASCII only: replies must stay one well-formed line. */
static void
copy_printable(char *dst, size_t dstsz, const char *src)
{
	size_t i = 0;

	for (; src != NULL && src[i] != '\0' && i + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	dst[i] = '\0';
}

static void reply_vline(struct smtp_session *s, unsigned code, char sep,
    const char *enh, const char *fmt, va_list ap) LOG_PRINTF(5, 0);

static void
reply_vline(struct smtp_session *s, unsigned code, char sep, const char *enh,
    const char *fmt, va_list ap)
{
	char buf[SMTP_MAX_REPLY];
	int n, m;

	n = snprintf(buf, sizeof(buf), "%03u%c", code, sep);
	if (enh != NULL)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s ", enh);
	m = vsnprintf(buf + n, sizeof(buf) - 2 - (size_t)n, fmt, ap);
	/* Truncate rather than overflow the RFC 5321 line limit. */
	if (m < 0)
		m = 0;
	if ((size_t)m > sizeof(buf) - 3 - (size_t)n)
		m = (int)(sizeof(buf) - 3 - (size_t)n);
	n += m;
	buf[n++] = '\r';
	buf[n++] = '\n';
	s->ops->reply(s->ctx, buf, (size_t)n);
}

void
smtp_reply(struct smtp_session *s, unsigned code, const char *enh,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_vline(s, code, ' ', enh, fmt, ap);
	va_end(ap);
}

void
smtp_reply_more(struct smtp_session *s, unsigned code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_vline(s, code, '-', NULL, fmt, ap);
	va_end(ap);
}

/* class.subject.detail, RFC 3463 §2: class 2/4/5, 1-3 digits each. */
static bool
enhanced_ok(const char *e, unsigned cls)
{
	size_t i = 0;

	if (e[0] != (char)('0' + cls) || e[1] != '.')
		return false;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t d = 0;
		while (e[i] >= '0' && e[i] <= '9' && d < 4) {
			i++;
			d++;
		}
		if (d == 0 || d > 3)
			return false;
		if (part == 0 && e[i++] != '.')
			return false;
	}
	return e[i] == '\0';
}

void
smtp_result_set(struct smtp_result *r, unsigned code, const char *enhanced,
    const char *text)
{
	memset(r, 0, sizeof(*r));
	r->code = code;
	copy_printable(r->enhanced, sizeof(r->enhanced), enhanced);
	copy_printable(r->text, sizeof(r->text), text);
}

/* The embedding's verdict, made safe: a bad code is a temporary failure
 * (the client retries; nothing is lost), bad text becomes '?'. */
void
smtp_reply_result(struct smtp_session *s, const struct smtp_result *r)
{
	char enh[sizeof(r->enhanced)], text[sizeof(r->text)];
	unsigned code = r->code, cls;

	if (code < 200 || code > 599 || (code >= 300 && code < 400)) {
		smtp_reply(s, 451, "4.3.0", "Internal error");
		return;
	}
	cls = code / 100;
	copy_printable(enh, sizeof(enh), r->enhanced);
	if (!enhanced_ok(enh, cls))
		snprintf(enh, sizeof(enh), "%u.0.0", cls);
	copy_printable(text, sizeof(text), r->text);
	if (text[0] == '\0')
		str_copy(text, sizeof(text), cls == 2 ? "Ok" :
		    cls == 4 ? "Try again later" : "Rejected");
	smtp_reply(s, code, enh, "%s", text);
}

void
smtp_close(struct smtp_session *s, unsigned code, const char *enh,
    const char *why)
{
	if (s->state == SMTP_STATE_CLOSED)
		return;
	smtp_reply(s, code, enh, "%s %s", s->hostname, why);
	if (s->body_open) {
		s->body_open = false;
		if (s->ops->data_abort != NULL)
			s->ops->data_abort(s->ctx);
	}
	smtp_enter_state(s, SMTP_STATE_CLOSED);
	if (!s->close_called && s->ops->close != NULL) {
		s->close_called = true;
		s->ops->close(s->ctx);
	}
}

void
smtp_bad_command(struct smtp_session *s)
{
	if (++s->bad_cmds >= s->p.max_bad_cmds)
		smtp_close(s, 421, "4.7.0", "Too many errors, closing connection");
}

static void
env_sync(struct smtp_session *s)
{
	s->env.client = s->client != NULL ? s->client : "";
	s->env.mail_from = s->mail_from != NULL ? s->mail_from : "";
	s->env.rcpts = s->rcpts;
	s->env.n_rcpts = s->n_rcpts;
}

void
smtp_txn_reset(struct smtp_session *s)
{
	free(s->mail_from);
	s->mail_from = NULL;
	for (size_t i = 0; i < s->n_rcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->n_rcpts = 0;
	free(s->pending_rcpt);
	s->pending_rcpt = NULL;
	free(s->dbuf);
	s->dbuf = NULL;
	free(s->data_res);
	s->data_res = NULL;
	s->env.body_8bit = false;
	s->env.size_hint = 0;
	env_sync(s);
}

struct smtp_session *
smtp_session_new(const struct smtp_session_params *p,
    const struct smtp_session_ops *ops, void *ctx)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->id = atomic_fetch_add_explicit(&smtp_next_id, 1,
	    memory_order_relaxed);
	s->p = *p;
	s->p.hostname = NULL;
	copy_printable(s->hostname, sizeof(s->hostname),
	    p->hostname != NULL && p->hostname[0] != '\0' ? p->hostname :
	    "localhost");
	if (s->p.max_size == 0)
		s->p.max_size = SMTP_DEFAULT_MAX_SIZE;
	if (s->p.max_rcpts == 0)
		s->p.max_rcpts = SMTP_DEFAULT_MAX_RCPTS;
	/* RFC 5321's 512 octets with CRLF is the least we may accept. */
	if (s->p.max_line == 0)
		s->p.max_line = SMTP_DEFAULT_MAX_LINE;
	else if (s->p.max_line < 510)
		s->p.max_line = 510;
	if (s->p.max_bad_cmds == 0)
		s->p.max_bad_cmds = SMTP_DEFAULT_MAX_BAD_CMDS;
	s->ops = ops;
	s->ctx = ctx;
	s->line = xmalloc(s->p.max_line + 1);
	env_sync(s);
	return s;
}

void
smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	if (s->body_open && s->ops->data_abort != NULL)
		s->ops->data_abort(s->ctx);
	smtp_txn_reset(s);
	free(s->client);
	free(s->line);
	free(s);
	*sp = NULL;
}

void
smtp_session_start(struct smtp_session *s)
{
	if (s->state != SMTP_STATE_NEW)
		return;
	if (s->p.mode == SMTP_MODE_SINK && !s->p.peer_loopback) {
		/* RFC 5321 §3.1: 554 greeting, then 503 until QUIT. */
		smtp_reply(s, 554, NULL, "%s development SMTP sink: loopback "
		    "clients only", s->hostname);
		smtp_enter_state(s, SMTP_STATE_REFUSED);
		return;
	}
	if (s->p.mode == SMTP_MODE_LMTP)
		smtp_reply(s, 220, NULL, "%s LMTP posuto ready", s->hostname);
	else
		smtp_reply(s, 220, NULL, "%s ESMTP posuto development sink, "
		    "not for the internet", s->hostname);
	smtp_enter_state(s, SMTP_STATE_CONNECTED);
}

bool
smtp_session_blocked(const struct smtp_session *s)
{
	return s->state == SMTP_STATE_RCPT_WAIT ||
	    s->state == SMTP_STATE_DATA_WAIT;
}

bool
smtp_session_closed(const struct smtp_session *s)
{
	return s->state == SMTP_STATE_CLOSED;
}

void
smtp_session_timeout(struct smtp_session *s)
{
	smtp_close(s, 421, "4.4.2", "Timeout, closing connection");
}

/*
 * Command lines end at LF; a CR before it is dropped (bare LF is a line
 * end too: commands cannot be smuggled into a final delivery point).
 * A line over max_line is never stored whole: its bytes are dropped as
 * they come and it is answered once, at its LF.
 */
static size_t
line_input(struct smtp_session *s, const char *p, size_t len)
{
	const char *lf = memchr(p, '\n', len);
	size_t take = lf != NULL ? (size_t)(lf - p) : len;
	size_t n;

	/* max_line bytes and the CR of their CRLF may wait for the LF. */
	if (!s->discarding) {
		if (s->linelen + take > s->p.max_line + 1) {
			s->discarding = true;
			s->linelen = 0;
		} else {
			memcpy(s->line + s->linelen, p, take);
			s->linelen += take;
		}
	}
	if (lf == NULL)
		return len;
	n = s->linelen;
	s->linelen = 0;
	if (!s->discarding && n > 0 && s->line[n - 1] == '\r')
		n--;
	if (s->discarding || n > s->p.max_line) {
		s->discarding = false;
		smtp_reply(s, 500, "5.5.2", "Line too long");
		smtp_bad_command(s);
		return take + 1;
	}
	smtp_cmd_dispatch(s, s->line, n);
	return take + 1;
}

static void
body_abort(struct smtp_session *s)
{
	s->dlen = 0;
	if (s->body_open) {
		s->body_open = false;
		if (s->ops->data_abort != NULL)
			s->ops->data_abort(s->ctx);
	}
}

static void
body_flush(struct smtp_session *s)
{
	if (s->dlen == 0 || s->body_too_big || s->body_failed)
		return;
	if (!s->ops->data_write(s->ctx, s->dbuf, s->dlen)) {
		s->body_failed = true;
		body_abort(s);
	}
	s->dlen = 0;
}

/* Body bytes in stored form; SIZE counts exactly these. */
static void
body_emit(struct smtp_session *s, const char *b, size_t n)
{
	if (s->body_too_big || s->body_failed || n == 0)
		return;
	if (n > s->p.max_size - s->body_size) {
		/* Keep reading to the final "." (the client cannot stop
		 * sending), but store nothing more: 552 at the end. */
		s->body_too_big = true;
		body_abort(s);
		return;
	}
	s->body_size += n;
	while (n > 0) {
		size_t k = SMTP_DATA_CHUNK - s->dlen;
		if (k > n)
			k = n;
		memcpy(s->dbuf + s->dlen, b, k);
		s->dlen += k;
		b += k;
		n -= k;
		if (s->dlen == SMTP_DATA_CHUNK) {
			body_flush(s);
			if (s->body_failed)
				return;
		}
	}
}

void
smtp_body_start(struct smtp_session *s)
{
	s->dbuf = xmalloc(SMTP_DATA_CHUNK);
	s->dlen = 0;
	s->dpos = SMTP_D_BOL;
	s->body_size = 0;
	s->body_too_big = false;
	s->body_failed = false;
	s->body_open = true;
	smtp_enter_state(s, SMTP_STATE_DATA);
}

/* Prefer a temporary failure: the client retries, duplicating at worst. */
static const struct smtp_result *
sink_verdict(const struct smtp_result *res, size_t n)
{
	const struct smtp_result *perm = NULL;

	for (size_t i = 0; i < n; i++) {
		unsigned c = res[i].code;
		if (c >= 200 && c < 300)
			continue;
		if (c >= 500 && c < 600) {
			if (perm == NULL)
				perm = &res[i];
			continue;
		}
		return &res[i];
	}
	return perm != NULL ? perm : &res[0];
}

static void
data_finish(struct smtp_session *s)
{
	size_t n = s->n_rcpts;

	if (s->p.mode == SMTP_MODE_LMTP) {
		/* RFC 2033 §4.2: one reply per accepted RCPT, in order. */
		for (size_t i = 0; i < n; i++)
			smtp_reply_result(s, &s->data_res[i]);
	} else {
		smtp_reply_result(s, sink_verdict(s->data_res, n));
	}
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_READY);
}

/* Every recipient gets the same reply (LMTP: one each). */
static void
data_refuse_all(struct smtp_session *s, unsigned code, const char *enh,
    const char *text)
{
	size_t n = s->p.mode == SMTP_MODE_LMTP ? s->n_rcpts : 1;

	for (size_t i = 0; i < n; i++)
		smtp_reply(s, code, enh, "%s", text);
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_READY);
}

static void
body_end(struct smtp_session *s)
{
	enum smtp_op_status st;

	body_flush(s);
	if (s->body_too_big) {
		data_refuse_all(s, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size");
		return;
	}
	if (s->body_failed) {
		data_refuse_all(s, 451, "4.3.0",
		    "Local error in processing, try again later");
		return;
	}
	free(s->dbuf);
	s->dbuf = NULL;
	s->body_open = false;
	/* An embedding that fills nothing gets a retry, never a loss. */
	s->data_res = xcalloc(s->n_rcpts, sizeof(*s->data_res));
	for (size_t i = 0; i < s->n_rcpts; i++)
		smtp_result_set(&s->data_res[i], 451, "4.3.0", "Not delivered");
	smtp_enter_state(s, SMTP_STATE_DATA_WAIT);
	s->in_op = true;
	s->early_done = false;
	st = s->ops->data_done(s->ctx, &s->env, s->data_res);
	s->in_op = false;
	if (st == SMTP_OP_DONE || s->early_done)
		data_finish(s);
}

/*
 * The body: un-dot-stuffed (RFC 5321 §4.5.2), line ends CRLF.  Policy:
 * a line ends at LF, with or without CR before it, as command lines do;
 * a bare LF is written as CRLF (the stored form RETR sends); a bare CR
 * is kept as data and never ends a line.  So the end marker is "." alone
 * on a line, "\r\n.\r\n" or with bare LFs: posuto is the final hop, so
 * a client that ends with "\n.\n" means it, and there is no next server
 * whose different reading could turn the rest into a smuggled message.
 * Returns the bytes consumed; stops right after the end marker.
 */
static size_t
body_input(struct smtp_session *s, const char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		char c = p[i];

		switch (s->dpos) {
		case SMTP_D_TEXT: {
			size_t j = i;
			while (j < len && p[j] != '\r' && p[j] != '\n')
				j++;
			body_emit(s, p + i, j - i);
			i = j;
			if (i == len)
				break;
			if (p[i++] == '\r') {
				s->dpos = SMTP_D_CR;
			} else {
				body_emit(s, "\r\n", 2);
				s->dpos = SMTP_D_BOL;
			}
			break;
		}
		case SMTP_D_BOL:
			i++;
			if (c == '.') {
				s->dpos = SMTP_D_DOT;
			} else if (c == '\r') {
				s->dpos = SMTP_D_CR;
			} else if (c == '\n') {
				body_emit(s, "\r\n", 2);
			} else {
				body_emit(s, &c, 1);
				s->dpos = SMTP_D_TEXT;
			}
			break;
		case SMTP_D_DOT:
			i++;
			if (c == '\r') {
				s->dpos = SMTP_D_DOT_CR;
			} else if (c == '\n') {
				body_end(s);
				return i;
			} else {
				/* A stuffed dot: drop it, keep the rest. */
				body_emit(s, &c, 1);
				s->dpos = SMTP_D_TEXT;
			}
			break;
		case SMTP_D_DOT_CR:
		case SMTP_D_CR:
			i++;
			if (c == '\n') {
				if (s->dpos == SMTP_D_DOT_CR) {
					body_end(s);
					return i;
				}
				body_emit(s, "\r\n", 2);
				s->dpos = SMTP_D_BOL;
			} else if (c == '\r') {
				/* The held CR was bare; hold this one. */
				body_emit(s, "\r", 1);
				s->dpos = SMTP_D_CR;
			} else {
				body_emit(s, "\r", 1);
				body_emit(s, &c, 1);
				s->dpos = SMTP_D_TEXT;
			}
			break;
		}
	}
	return i;
}

size_t
smtp_session_input(struct smtp_session *s, const void *bytes, size_t len)
{
	const char *p = bytes;
	size_t off = 0;

	while (off < len) {
		if (s->state == SMTP_STATE_NEW || s->state == SMTP_STATE_CLOSED ||
		    smtp_session_blocked(s))
			break;
		if (s->state == SMTP_STATE_DATA)
			off += body_input(s, p + off, len - off);
		else
			off += line_input(s, p + off, len - off);
	}
	return off;
}

void
smtp_rcpt_finish(struct smtp_session *s, const struct smtp_result *res)
{
	smtp_reply_result(s, res);
	if (res->code >= 200 && res->code < 300) {
		s->rcpts = xreallocarray(s->rcpts, s->n_rcpts + 1,
		    sizeof(*s->rcpts));
		s->rcpts[s->n_rcpts++] = s->pending_rcpt;
		s->pending_rcpt = NULL;
		env_sync(s);
	}
	free(s->pending_rcpt);
	s->pending_rcpt = NULL;
	smtp_enter_state(s, SMTP_STATE_MAIL);
}

void
smtp_session_rcpt_done(struct smtp_session *s, const struct smtp_result *res)
{
	/* A 421 (timeout) may have overtaken the lookup: nothing to say. */
	if (s->state == SMTP_STATE_CLOSED)
		return;
	if (s->state != SMTP_STATE_RCPT_WAIT)
		fatalx("smtp[%llu]: rcpt_done in state %s",
		    (unsigned long long)s->id, state_names[s->state]);
	if (res != &s->rcpt_res)
		s->rcpt_res = *res;
	if (s->in_op) {
		s->early_done = true;
		return;
	}
	smtp_rcpt_finish(s, &s->rcpt_res);
}

void
smtp_session_data_done(struct smtp_session *s, const struct smtp_result *res,
    size_t n)
{
	if (s->state == SMTP_STATE_CLOSED)
		return;
	if (s->state != SMTP_STATE_DATA_WAIT)
		fatalx("smtp[%llu]: data_done in state %s",
		    (unsigned long long)s->id, state_names[s->state]);
	/* Recipients the embedding did not answer keep their 451. */
	if (n > s->n_rcpts)
		n = s->n_rcpts;
	if (res != s->data_res && n > 0)
		memcpy(s->data_res, res, n * sizeof(*res));
	if (s->in_op) {
		s->early_done = true;
		return;
	}
	data_finish(s);
}
