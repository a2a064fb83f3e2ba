/*
 * wire.h - stored message bytes -> POP3 wire form, incrementally.
 *
 * The wire form of a message: every line ends in CRLF (a bare LF becomes
 * CRLF, an existing CRLF stays, a lone CR is passed through), a final line
 * without a newline gets CRLF, 8-bit bytes and NULs pass untouched.
 * The wire *size* (STAT/LIST) counts exactly those octets.
 * The encoder also dot-stuffs (a line starting with '.' gets another '.'),
 * can stop after the header and N body lines (TOP), and finishes with the
 * ".\r\n" terminator.  Pure: no I/O, no allocation; fed any split of the
 * input, it produces the same output.
 */
#ifndef POSUTO_WIRE_H
#define POSUTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wire_size {
	uint64_t size;
	bool at_bol;		/* next byte starts a line */
	bool prev_cr;
	bool dot_line;		/* some line starts with '.' */
	bool bare_lf;		/* some LF had no CR before it */
	bool lone_cr;		/* some CR not followed by LF */
	uint64_t raw;		/* input bytes seen */
};

void wire_size_init(struct wire_size *ws);
void wire_size_update(struct wire_size *ws, const void *buf, size_t len);
/* Final wire size (adds the CRLF a missing final newline gets). */
uint64_t wire_size_final(const struct wire_size *ws);
/* True if the stored bytes equal their wire form and need no stuffing,
 * so they can be sent with sendfile(). */
bool wire_size_is_wire_form(const struct wire_size *ws);

struct wire_enc {
	bool at_bol;
	bool prev_cr;
	bool in_body;		/* past the blank line ending the header */
	bool line_empty;	/* current line has no bytes yet (for header end) */
	bool limit;		/* TOP: stop after body_lines body lines */
	bool done;		/* limit reached; further input is ignored */
	uint64_t body_lines;
};

/* body_lines < 0: whole message (RETR); >= 0: TOP n. */
void wire_enc_init(struct wire_enc *we, long long body_lines);
/*
 * Encodes from in[0..inlen) into out[0..outcap).  Returns bytes written;
 * *consumed_r is the input consumed (less than inlen only when out is
 * full).  outcap >= 2 * inlen + 2 always suffices.
 */
size_t wire_enc_update(struct wire_enc *we, const void *in, size_t inlen,
    void *out, size_t outcap, size_t *consumed_r);
/* True once a TOP limit is reached: the caller may stop reading. */
bool wire_enc_done(const struct wire_enc *we);
/* Writes the end: CRLF if the last line lacked one, then ".\r\n".
 * out must hold 5 bytes.  Returns bytes written. */
size_t wire_enc_finish(struct wire_enc *we, void *out);

#endif
