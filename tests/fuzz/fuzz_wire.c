/*
 * fuzz_wire.c - libFuzzer target for lib/wire.c.
 *
 * Input: byte 0 picks the input chunk size, byte 1 the output room per
 * call, byte 2 the TOP line count (255 = RETR); the rest is a message.
 * Oracles: un-dot-stuffing the RETR output gives back the CRLF-normalised
 * input and its length equals the wire size; the size does not depend on
 * how the input is split; TOP output is a prefix of RETR output (before
 * the terminator); the wire-form flag holds exactly when the input is
 * its own wire form without dot lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *
grow(unsigned char *p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return p;
	*cap = need * 2;
	p = realloc(p, *cap);
	if (p == NULL)
		abort();
	return p;
}

/* Encodes in[0..len) in chunks, returns malloc'd output. */
static unsigned char *
encode(const uint8_t *in, size_t len, long long top, size_t step,
    size_t room, size_t *outlen)
{
	struct wire_enc we;
	unsigned char *out = NULL, tmp[600];
	size_t cap = 0, n = 0, off = 0;

	wire_enc_init(&we, top);
	while (off < len && !wire_enc_done(&we)) {
		size_t chunk = len - off < step ? len - off : step, cons = 0;
		size_t w = wire_enc_update(&we, in + off, chunk, tmp, room,
		    &cons);

		if (w > room || cons > chunk)
			abort();
		if (w == 0 && cons == 0 && !wire_enc_done(&we))
			abort();	/* no progress with room >= 2 */
		out = grow(out, &cap, n + w + 1);
		memcpy(out + n, tmp, w);
		n += w;
		off += cons;
	}
	out = grow(out, &cap, n + WIRE_ENC_FINISH_MAX);
	n += wire_enc_finish(&we, out + n);
	*outlen = n;
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *in;
	size_t len, step, room, rlen, tlen, i, j, nlen = 0, ulen = 0;
	long long top;
	unsigned char *retr, *topo, *norm, *un;
	struct wire_size ws, ws1;
	bool wf_expect;

	if (size < 3)
		return 0;
	step = data[0] % 64 + 1;
	room = data[1] % 300 + 2;
	top = data[2] == 255 ? -1 : data[2] % 8;
	in = data + 3;
	len = size - 3;

	/* reference CRLF normalisation */
	norm = malloc(2 * len + 3);
	if (norm == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (in[i] == '\n') {
			if (!(i > 0 && in[i - 1] == '\r'))
				norm[nlen++] = '\r';
			norm[nlen++] = '\n';
		} else
			norm[nlen++] = in[i];
	}
	if (len > 0 && in[len - 1] != '\n') {
		norm[nlen++] = '\r';
		norm[nlen++] = '\n';
	}

	wire_size_init(&ws);
	wire_size_update(&ws, in, len);
	wire_size_init(&ws1);
	for (i = 0; i < len; i += step)
		wire_size_update(&ws1, in + i, len - i < step ? len - i : step);
	if (wire_size_final(&ws) != nlen || wire_size_final(&ws1) != nlen)
		abort();
	wf_expect = nlen == len && memcmp(norm, in, len) == 0 &&
	    !(len > 0 && in[0] == '.') && memmem(in, len, "\n.", 2) == NULL;
	if (wire_size_is_wire_form(&ws) != wf_expect ||
	    wire_size_is_wire_form(&ws1) != wf_expect)
		abort();

	retr = encode(in, len, -1, step, room, &rlen);
	/* un-stuff: drop a '.' at each line start; strip ".\r\n" */
	if (rlen < 3 || memcmp(retr + rlen - 3, ".\r\n", 3) != 0)
		abort();
	un = malloc(rlen);
	if (un == NULL)
		abort();
	for (i = 0; i < rlen - 3; i++) {
		bool bol = i == 0 || (retr[i - 1] == '\n' && i >= 2 &&
		    retr[i - 2] == '\r');

		if (bol) {
			if (retr[i] == '.') {
				/* a stuffed line must start ".." */
				if (i + 1 >= rlen - 3 || retr[i + 1] != '.')
					abort();
				continue;
			}
		}
		un[ulen++] = retr[i];
	}
	if (ulen != nlen || memcmp(un, norm, nlen) != 0)
		abort();
	/* no line of the body may be a lone "." */
	for (j = 0; j + 2 < rlen - 3; j++)
		if ((j == 0 || (retr[j - 1] == '\n')) && retr[j] == '.' &&
		    retr[j + 1] == '\r' && retr[j + 2] == '\n')
			abort();

	if (top >= 0) {
		topo = encode(in, len, top, step, room, &tlen);
		/* TOP output minus its terminator is a prefix of RETR's,
		 * possibly plus the CRLF closing an unterminated last line */
		if (tlen < 3 || tlen - 3 > rlen - 3 ||
		    memcmp(topo, retr, tlen - 3) != 0)
			abort();
		free(topo);
	}
	free(un);
	free(retr);
	free(norm);
	return 0;
}
