/*
 * mbox_parse.c - From_ line splitting, mboxrd (un)quoting.
 *
 * The start of every line goes through a small hold buffer until we know
 * whether it is a blank line, a From_ line or content; the rest of a
 * content line is passed on in runs found with memchr().  The last blank
 * line is held back too: it belongs to no message if a From_ line
 * follows it.
 */
#include "store/mbox_parse.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/wire.h"
#include "lib/xmalloc.h"

static const char mbox_from_pat[] = "From ";

struct mbox_parser {
	uint64_t off;		/* file offset of the next input byte */
	uint64_t line_off;	/* offset of the held line's first byte */
	struct mbox_msg *msgs;
	size_t n, cap;
	bool in_msg;		/* msgs[n-1] is open */
	bool in_line;		/* past the held start of a content line */
	bool bad;
	unsigned char hold[MBOX_FROM_MAX + 1];
	size_t hold_len;
	unsigned char blank[2];	/* held blank line */
	size_t blank_len;	/* 0: none held */
	EVP_MD_CTX *md;
	struct mbox_unquote uq;
	struct wire_size ws;
};

bool
mbox_from_line_ok(const char *line, size_t len)
{
	bool time_ok = false, year_ok = false;
	size_t i, run = 0;

	if (len < 5 || memcmp(line, mbox_from_pat, 5) != 0 ||
	    len > MBOX_FROM_MAX)
		return false;
	for (i = 5; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c >= '0' && c <= '9') {
			if (++run == 4)
				year_ok = true;
		} else
			run = 0;
		if (c == ':' && i > 5 && i + 2 < len &&
		    line[i - 1] >= '0' && line[i - 1] <= '9' &&
		    line[i + 1] >= '0' && line[i + 1] <= '9' &&
		    line[i + 2] >= '0' && line[i + 2] <= '9')
			time_ok = true;
	}
	return time_ok && year_ok;
}

struct mbox_parser *
mbox_parser_new(uint64_t base_off)
{
	struct mbox_parser *p = xcalloc(1, sizeof(*p));

	p->off = base_off;
	p->md = EVP_MD_CTX_new();
	if (p->md == NULL)
		abort();
	return p;
}

void
mbox_parser_free(struct mbox_parser **pp)
{
	struct mbox_parser *p = *pp;

	if (p == NULL)
		return;
	EVP_MD_CTX_free(p->md);
	free(p->msgs);
	free(p);
	*pp = NULL;
}

/* Stored bytes of the open message. */
static void
mbox_msg_data(struct mbox_parser *p, const unsigned char *b, size_t len)
{
	unsigned char out[4096 + MBOX_UNQUOTE_SLACK];

	if (len == 0)
		return;
	if (EVP_DigestUpdate(p->md, b, len) != 1)
		abort();
	while (len > 0) {
		size_t k = len > 4096 ? 4096 : len;
		size_t o = mbox_unquote_update(&p->uq, b, k, out);

		wire_size_update(&p->ws, out, o);
		b += k;
		len -= k;
	}
}

static void
mbox_flush_blank(struct mbox_parser *p)
{
	if (p->blank_len > 0) {
		mbox_msg_data(p, p->blank, p->blank_len);
		p->blank_len = 0;
	}
}

/* Closes the open message at end (the offset of what ends it). */
static void
mbox_msg_close(struct mbox_parser *p, uint64_t end)
{
	struct mbox_msg *m = &p->msgs[p->n - 1];
	unsigned char tail[MBOX_UNQUOTE_SLACK];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t k;

	m->quoted = p->uq.dropped;	/* finish() starts the count anew */
	k = mbox_unquote_finish(&p->uq, tail);
	wire_size_update(&p->ws, tail, k);
	m->end_off = end;
	m->data_len = end - p->blank_len - m->data_off;
	m->wire_size = wire_size_final(&p->ws);
	if (EVP_DigestFinal_ex(p->md, md, &mdlen) != 1 ||
	    mdlen < MBOX_DIGEST_LEN)
		abort();
	memcpy(m->digest, md, MBOX_DIGEST_LEN);
	p->blank_len = 0;
	p->in_msg = false;
}

/* hold[] is a From_ line (with its LF) at line_off. */
static void
mbox_msg_start(struct mbox_parser *p)
{
	struct mbox_msg *m;

	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->msgs = xreallocarray(p->msgs, p->cap, sizeof(*p->msgs));
	}
	m = &p->msgs[p->n++];
	memset(m, 0, sizeof(*m));
	m->from_off = p->line_off;
	m->data_off = p->line_off + p->hold_len;
	if (EVP_DigestInit_ex(p->md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(p->md, p->hold, p->hold_len) != 1)
		abort();
	mbox_unquote_init(&p->uq);
	wire_size_init(&p->ws);
	p->in_msg = true;
}

static bool
mbox_is_blank(const unsigned char *h, size_t n)
{
	return (n == 1 && h[0] == '\n') ||
	    (n == 2 && h[0] == '\r' && h[1] == '\n');
}

/* Can the held line start still become a blank or a From_ line? */
static bool
mbox_hold_candidate(const struct mbox_parser *p)
{
	size_t n = p->hold_len;

	if (n == 1 && p->hold[0] == '\r')
		return true;
	/* a From_ line counts only at file start or after a blank line */
	if (p->in_msg && p->blank_len == 0)
		return false;
	if (n <= 5)
		return memcmp(p->hold, mbox_from_pat, n) == 0;
	return n < MBOX_FROM_MAX;
}

/* The held bytes are content: pass them on. */
static bool
mbox_hold_content(struct mbox_parser *p)
{
	if (!p->in_msg) {
		p->bad = true;
		return false;
	}
	mbox_flush_blank(p);
	mbox_msg_data(p, p->hold, p->hold_len);
	p->hold_len = 0;
	return true;
}

/* A whole line (ending in LF) is held. */
static bool
mbox_hold_line(struct mbox_parser *p)
{
	if (mbox_is_blank(p->hold, p->hold_len)) {
		if (p->in_msg) {
			mbox_flush_blank(p);
			memcpy(p->blank, p->hold, p->hold_len);
			p->blank_len = p->hold_len;
		}
		p->hold_len = 0;
		return true;
	}
	if (p->hold_len >= 5 && memcmp(p->hold, mbox_from_pat, 5) == 0 &&
	    (p->n == 0 || (p->blank_len > 0 &&
	    mbox_from_line_ok((const char *)p->hold, p->hold_len - 1)))) {
		if (p->in_msg)
			mbox_msg_close(p, p->line_off);
		mbox_msg_start(p);
		p->hold_len = 0;
		return true;
	}
	return mbox_hold_content(p);
}

bool
mbox_parser_feed(struct mbox_parser *p, const void *buf, size_t len)
{
	const unsigned char *b = buf, *end = b + len;

	while (b < end && !p->bad) {
		if (p->in_line) {
			const unsigned char *nl = memchr(b, '\n',
			    (size_t)(end - b));
			size_t k = nl ? (size_t)(nl + 1 - b) : (size_t)(end - b);

			mbox_msg_data(p, b, k);
			p->off += k;
			b += k;
			if (nl != NULL)
				p->in_line = false;
			continue;
		}
		if (p->hold_len == 0)
			p->line_off = p->off;
		p->hold[p->hold_len++] = *b++;
		p->off++;
		if (p->hold[p->hold_len - 1] == '\n') {
			if (!mbox_hold_line(p))
				return false;
		} else if (!mbox_hold_candidate(p)) {
			if (!mbox_hold_content(p))
				return false;
			p->in_line = true;
		}
	}
	return !p->bad;
}

bool
mbox_parser_finish(struct mbox_parser *p)
{
	if (p->bad)
		return false;
	if (p->hold_len > 0 && !mbox_hold_content(p))
		return false;
	if (p->in_msg)
		mbox_msg_close(p, p->off);
	return true;
}

size_t
mbox_parser_count(const struct mbox_parser *p)
{
	return p->n;
}

const struct mbox_msg *
mbox_parser_msgs(const struct mbox_parser *p)
{
	return p->msgs;
}

struct mbox_msg *
mbox_parser_take(struct mbox_parser *p, size_t *n_r)
{
	struct mbox_msg *m = p->msgs;

	*n_r = p->n;
	p->msgs = NULL;
	p->n = p->cap = 0;
	return m;
}

void
mbox_unquote_init(struct mbox_unquote *u)
{
	memset(u, 0, sizeof(*u));
	u->at_bol = true;
}

/*
 * One '>' at a line start is held until "From " is seen after the run of
 * '>' (then dropped) or not (then emitted).  The other '>' of the run are
 * emitted at once: which '>' of the run is dropped makes no difference.
 */
size_t
mbox_unquote_update(struct mbox_unquote *u, const void *in, size_t len,
    void *out)
{
	const unsigned char *p = in, *end = p + len;
	unsigned char *o = out;

	while (p < end) {
		unsigned char c = *p;
		const unsigned char *nl;
		size_t n;

		if (u->held) {
			if (u->match == 0 && c == '>') {
				*o++ = '>';
				p++;
				continue;
			}
			if (c == (unsigned char)mbox_from_pat[u->match]) {
				p++;
				if (++u->match == 5) {
					u->dropped++;
					memcpy(o, mbox_from_pat, 5);
					o += 5;
					u->held = false;
					u->match = 0;
					u->at_bol = false;
				}
				continue;
			}
			*o++ = '>';
			memcpy(o, mbox_from_pat, u->match);
			o += u->match;
			u->held = false;
			u->match = 0;
			u->at_bol = false;
			continue;	/* c again, not at a line start */
		}
		if (u->at_bol && c == '>') {
			u->held = true;
			u->match = 0;
			p++;
			continue;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
		memcpy(o, p, n);
		o += n;
		p += n;
		u->at_bol = nl != NULL;
	}
	return (size_t)(o - (unsigned char *)out);
}

size_t
mbox_unquote_finish(struct mbox_unquote *u, void *out)
{
	unsigned char *o = out;

	if (u->held) {
		*o++ = '>';
		memcpy(o, mbox_from_pat, u->match);
		o += u->match;
	}
	mbox_unquote_init(u);
	return (size_t)(o - (unsigned char *)out);
}

void
mbox_quote_init(struct mbox_quote *q)
{
	memset(q, 0, sizeof(*q));
	q->at_bol = true;
}

/* The extra '>' goes after the run of '>' starting the line, just before
 * "From ": same bytes as putting it first, and nothing to hold back but
 * the matched part of "From ". */
size_t
mbox_quote_update(struct mbox_quote *q, const void *in, size_t len,
    void *out)
{
	const unsigned char *p = in, *end = p + len;
	unsigned char *o = out;

	while (p < end) {
		unsigned char c = *p;
		const unsigned char *nl;
		size_t n;

		if (q->at_bol || q->in_gt) {
			if (q->match == 0 && c == '>') {
				q->at_bol = false;
				q->in_gt = true;
				*o++ = '>';
				p++;
				continue;
			}
			if (c == (unsigned char)mbox_from_pat[q->match]) {
				p++;
				if (++q->match == 5) {
					*o++ = '>';
					memcpy(o, mbox_from_pat, 5);
					o += 5;
					q->match = 0;
					q->at_bol = q->in_gt = false;
				}
				continue;
			}
			memcpy(o, mbox_from_pat, q->match);
			o += q->match;
			q->match = 0;
			q->at_bol = q->in_gt = false;
			/* c again, not at a line start (unless it is LF) */
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
		memcpy(o, p, n);
		o += n;
		p += n;
		q->at_bol = nl != NULL;
	}
	return (size_t)(o - (unsigned char *)out);
}

size_t
mbox_quote_finish(struct mbox_quote *q, void *out)
{
	size_t n = q->match;

	memcpy(out, mbox_from_pat, n);
	mbox_quote_init(q);
	return n;
}
