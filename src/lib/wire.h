/*
 * wire.h - stored message bytes -> POP3 wire form, incrementally.
 *
 * The wire form of a message: every line ends in CRLF (a bare LF becomes
 * CRLF, an existing CRLF stays, a lone CR is passed through), a final line
 * without a newline gets CRLF, 8-bit bytes and NULs pass untouched.
 * Lines are delimited by LF only: a lone CR never ends a line, so the
 * byte after it is not a line start (no dot-stuffing there), and a file
 * ending in "x\r" becomes "x\r\r\n".
 * The wire *size* (STAT/LIST) counts exactly those octets.
 * The encoder also dot-stuffs (a line starting with '.' gets another '.'),
 * can stop after the header and N body lines (TOP), and finishes with the
 * ".\r\n" terminator.  Pure: no I/O, no allocation; fed any split of the
 * input, it produces the same output.  The structs are plain values the
 * caller embeds; their fields are private to wire.c.
 */
#ifndef POSUTO_WIRE_H
#define POSUTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wire_size {
	uint64_t size;		/* wire octets so far (without final CRLF) */
	uint64_t raw;		/* input bytes seen */
	bool at_bol;		/* next byte starts a line */
	bool prev_cr;		/* last byte seen was CR */
	bool dot_line;		/* some line starts with '.' */
	bool bare_lf;		/* some LF had no CR before it */
};

void wire_size_init(struct wire_size *ws);
void wire_size_update(struct wire_size *ws, const void *buf, size_t len);
/* Final wire size (adds the CRLF a missing final newline gets). */
uint64_t wire_size_final(const struct wire_size *ws);
/* True if the stored bytes equal their wire form and need no stuffing,
 * so they can be sent with sendfile() followed by ".\r\n".  An empty
 * message is in wire form (0 octets). */
bool wire_size_is_wire_form(const struct wire_size *ws);

struct wire_enc {
	uint64_t body_lines;	/* TOP: body lines still to send */
	uint64_t stuffed;	/* dots added by dot-stuffing so far */
	uint8_t line_len;	/* bytes in the current line, saturating at 2 */
	bool at_bol;
	bool prev_cr;
	bool in_body;		/* past the blank line ending the header */
	bool limit;		/* TOP: stop after body_lines body lines */
	bool done;		/* limit reached; further input is ignored */
};

/* body_lines < 0: whole message (RETR); >= 0: TOP n. */
void wire_enc_init(struct wire_enc *we, long long body_lines);
/*
 * Encodes from in[0..inlen) into out[0..outcap).  Returns bytes written;
 * *consumed_r is the input consumed: less than inlen only when out is
 * full or the TOP limit was reached (then the rest is not needed).
 * outcap >= 2 * inlen always suffices.  Any outcap >= 2 makes progress.
 */
size_t wire_enc_update(struct wire_enc *we, const void *in, size_t inlen,
    void *out, size_t outcap, size_t *consumed_r);
/* True once a TOP limit is reached: the caller may stop reading. */
bool wire_enc_done(const struct wire_enc *we);
/* Dots added so far: output minus this is the wire size (STAT/LIST). */
uint64_t wire_enc_stuffed(const struct wire_enc *we);
/* Writes the end: CRLF if the last line lacked one, then ".\r\n".
 * out must hold WIRE_ENC_FINISH_MAX bytes.  Returns bytes written. */
#define WIRE_ENC_FINISH_MAX 5
size_t wire_enc_finish(struct wire_enc *we, void *out);

#endif
