/*
 * mbox_parse.h - splits an mbox file into messages; mboxrd un-quoting.
 *
 * The separator rule (what counts as a From_ line), chosen to read what
 * Postfix local(8), procmail and mutt write:
 *   - a line starting with "From " at the start of the file (blank lines
 *     before it are skipped), or
 *   - a line starting with "From " whose previous line is empty ("\n" or
 *     "\r\n") and whose rest holds a time "h:mm" and a 4-digit year, as
 *     the asctime() date every writer puts there does, and which is at
 *     most MBOX_FROM_MAX bytes long.
 * Writers always put a blank line before a From_ line and quote body
 * lines starting with "From "; the date test keeps an unquoted "From my
 * point of view" after a paragraph (mboxcl files, careless writers) from
 * cutting a message in two.  mutt also splits where no blank line comes
 * first; we do not, as that would cut bodies of files whose writer did
 * not quote.  Content-Length headers are ignored (they lie).
 * Non-blank bytes before the first From_ line make the file not an mbox
 * (mbox_parser_feed() returns false): an error, never "0 messages".
 *
 * A message's stored bytes run from after its From_ line to the next
 * From_ line, minus the one blank line that separates them (and minus a
 * final blank line at end of file).  They are still mboxrd-quoted; its
 * wire size counts them after un-quoting (">From " -> "From ", ">>From "
 * -> ">From ") with CRLF line ends (lib/wire.h), before dot-stuffing.
 * The digest is SHA-256 over the From_ line and the stored bytes: it
 * identifies the message (UIDL) and lets readers notice a changed file.
 *
 * Pure and incremental: fed any split of the input it gives the same
 * result.  Memory: one struct mbox_msg per message plus a fixed buffer.
 */
#ifndef POSUTO_MBOX_PARSE_H
#define POSUTO_MBOX_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MBOX_FROM_MAX		4096	/* longest From_ line we accept */
#define MBOX_DIGEST_LEN		16	/* SHA-256 truncated to 128 bits */

struct mbox_msg {
	uint64_t from_off;	/* start of the From_ line */
	uint64_t data_off;	/* first byte after the From_ line */
	uint64_t data_len;	/* stored (quoted) bytes */
	uint64_t end_off;	/* next From_ line, or end of input */
	uint64_t wire_size;	/* RETR octets before dot-stuffing */
	/* ">From " lines un-quoted: c-client and qpopper served them as
	 * stored, each one octet longer (mbox_compat.c) */
	uint64_t quoted;
	unsigned char digest[MBOX_DIGEST_LEN];
};

struct mbox_parser;

/* base_off: file offset of the first byte fed (a From_ line, or 0).
 * A parser started at base_off > 0 treats its start as a file start. */
struct mbox_parser *mbox_parser_new(uint64_t base_off);
void mbox_parser_free(struct mbox_parser **p);
/* false once the input is known not to be an mbox (then stays false) */
bool mbox_parser_feed(struct mbox_parser *p, const void *buf, size_t len);
/* End of input: closes the last message.  false if not an mbox. */
bool mbox_parser_finish(struct mbox_parser *p);
/* Messages found (complete after finish()); owned by the parser. */
size_t mbox_parser_count(const struct mbox_parser *p);
const struct mbox_msg *mbox_parser_msgs(const struct mbox_parser *p);
/* Hands the message array to the caller (free() it); count in *n_r. */
struct mbox_msg *mbox_parser_take(struct mbox_parser *p, size_t *n_r);

/* True if line[0..len) (without its LF) is a valid From_ line after a
 * blank line. */
bool mbox_from_line_ok(const char *line, size_t len);

/* Streaming mboxrd un-quoting of stored bytes (a message's start is a
 * line start).  out must hold len + MBOX_UNQUOTE_SLACK bytes. */
#define MBOX_UNQUOTE_SLACK	5
struct mbox_unquote {
	bool at_bol;
	bool held;		/* a '>' at line start is being held back */
	uint8_t match;		/* bytes of "From " matched after it */
	uint64_t dropped;	/* '>' dropped so far (lines un-quoted) */
};
void mbox_unquote_init(struct mbox_unquote *u);
size_t mbox_unquote_update(struct mbox_unquote *u, const void *in,
    size_t len, void *out);
/* Flushes held bytes at end of message; out holds MBOX_UNQUOTE_SLACK. */
size_t mbox_unquote_finish(struct mbox_unquote *u, void *out);

/* Streaming mboxrd quoting (">*From " lines get one more '>'), for
 * appends.  out must hold 2 * len + MBOX_UNQUOTE_SLACK bytes. */
struct mbox_quote {
	bool at_bol;
	bool in_gt;		/* inside a run of '>' starting the line */
	uint8_t match;
};
void mbox_quote_init(struct mbox_quote *q);
size_t mbox_quote_update(struct mbox_quote *q, const void *in, size_t len,
    void *out);
size_t mbox_quote_finish(struct mbox_quote *q, void *out);

#endif
