/*
 * wire.c - POP3 wire form: size counting and the incremental encoder.
 *
 * Both loops jump from LF to LF with memchr() (vectorised in glibc) and
 * copy unchanged runs with one memcpy(), so the per-byte work is done by
 * libc; the C code runs once per line, not once per byte.  CRLF input
 * without dot lines is copied in runs that span many lines.
 */
#include "lib/wire.h"

#include <string.h>

void
wire_size_init(struct wire_size *ws)
{
	memset(ws, 0, sizeof(*ws));
	ws->at_bol = true;
}

void
wire_size_update(struct wire_size *ws, const void *buf, size_t len)
{
	const unsigned char *p = buf, *end = p + len, *q, *nl;
	uint64_t bare = 0;
	bool dot = false;

	if (len == 0)
		return;
	if (ws->at_bol && p[0] == '.')
		dot = true;
	q = p;
	while (q < end && (nl = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		bool cr = nl > p ? nl[-1] == '\r' : ws->prev_cr;

		bare += !cr;
		if (nl + 1 < end && nl[1] == '.')
			dot = true;
		q = nl + 1;
	}
	ws->size += len + bare;
	ws->raw += len;
	ws->bare_lf |= bare != 0;
	ws->dot_line |= dot;
	ws->at_bol = end[-1] == '\n';
	ws->prev_cr = end[-1] == '\r';
}

uint64_t
wire_size_final(const struct wire_size *ws)
{
	return ws->size + (ws->at_bol ? 0 : 2);
}

bool
wire_size_is_wire_form(const struct wire_size *ws)
{
	/* Ending in LF with no bare LF means ending in CRLF; raw == 0 has
	 * at_bol set and nothing to send. */
	return ws->at_bol && !ws->bare_lf && !ws->dot_line;
}

void
wire_enc_init(struct wire_enc *we, long long body_lines)
{
	memset(we, 0, sizeof(*we));
	we->at_bol = true;
	if (body_lines >= 0) {
		we->limit = true;
		we->body_lines = (uint64_t)body_lines;
	}
}

/* A line has just been terminated; returns true when TOP is satisfied. */
static bool
wire_enc_line_end(struct wire_enc *we)
{
	bool empty = we->line_len == 0 || (we->line_len == 1 && we->prev_cr);

	we->at_bol = true;
	we->prev_cr = false;
	we->line_len = 0;
	if (!we->limit)
		return false;
	if (!we->in_body) {
		if (!empty)
			return false;
		we->in_body = true;
	} else
		we->body_lines--;
	if (we->body_lines == 0)
		we->done = true;
	return we->done;
}

static void
wire_enc_note_bytes(struct wire_enc *we, const unsigned char *p, size_t n)
{
	if (n == 0)
		return;
	we->at_bol = false;
	we->prev_cr = p[n - 1] == '\r';
	if (n >= 2 || we->line_len >= 2)
		we->line_len = 2;
	else
		we->line_len++;
}

size_t
wire_enc_update(struct wire_enc *we, const void *in, size_t inlen,
    void *out, size_t outcap, size_t *consumed_r)
{
	const unsigned char *p = in, *end = p + inlen, *nl;
	const unsigned char *run = p;	/* start of the pending unchanged run */
	unsigned char *o = out, *oend = o + outcap;

	while (p < end && !we->done) {
		/* output room left once the pending run is flushed */
		size_t room = (size_t)(oend - o) - (size_t)(p - run);
		size_t lim, k;

		if (we->at_bol && p[0] == '.') {
			if (room < 2)
				break;
			memcpy(o, run, (size_t)(p - run));
			o += p - run;
			*o++ = '.';
			we->stuffed++;
			/* the original dot stays at the head of the new run */
			run = p;
			p++;
			wire_enc_note_bytes(we, run, 1);
			continue;
		}
		lim = (size_t)(end - p);
		if (lim > room)
			lim = room;
		if (lim == 0)
			break;
		nl = memchr(p, '\n', lim);
		if (nl == NULL) {
			wire_enc_note_bytes(we, p, lim);
			p += lim;
			continue;
		}
		k = (size_t)(nl - p);
		wire_enc_note_bytes(we, p, k);
		if (we->prev_cr) {
			/* CRLF: unchanged, the run goes on */
			p = nl + 1;
		} else {
			if (k + 2 > room) {
				p = nl;
				break;
			}
			memcpy(o, run, (size_t)(nl - run));
			o += nl - run;
			*o++ = '\r';
			*o++ = '\n';
			p = nl + 1;
			run = p;
		}
		/* line_len counts bytes before LF; a CR counts as one */
		wire_enc_line_end(we);
	}
	memcpy(o, run, (size_t)(p - run));
	o += p - run;
	*consumed_r = (size_t)(p - (const unsigned char *)in);
	return (size_t)(o - (unsigned char *)out);
}

bool
wire_enc_done(const struct wire_enc *we)
{
	return we->done;
}

uint64_t
wire_enc_stuffed(const struct wire_enc *we)
{
	return we->stuffed;
}

size_t
wire_enc_finish(struct wire_enc *we, void *out)
{
	unsigned char *o = out;

	if (!we->at_bol && !we->done) {
		*o++ = '\r';
		*o++ = '\n';
	}
	*o++ = '.';
	*o++ = '\r';
	*o++ = '\n';
	we->done = true;
	we->at_bol = true;
	return (size_t)(o - (unsigned char *)out);
}
