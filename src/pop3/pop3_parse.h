/*
 * pop3_parse.h - one command line -> verb + arguments.  Pure: no I/O, no
 * allocation; arguments point into the caller's line.  Fuzzed directly.
 */
#ifndef POP3_PARSE_H
#define POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum pop3_verb {
	POP3_VERB_USER = 0,
	POP3_VERB_PASS,
	POP3_VERB_APOP,
	POP3_VERB_AUTH,
	POP3_VERB_STLS,
	POP3_VERB_CAPA,
	POP3_VERB_QUIT,
	POP3_VERB_STAT,
	POP3_VERB_LIST,
	POP3_VERB_RETR,
	POP3_VERB_DELE,
	POP3_VERB_NOOP,
	POP3_VERB_RSET,
	POP3_VERB_TOP,
	POP3_VERB_UIDL,
	POP3_VERB_UTF8,		/* RFC 6856 */
	POP3_VERB_LANG,
	POP3_VERB_COUNT
};

#define POP3_MAX_ARGS 2

struct pop3_cmd {
	enum pop3_verb verb;
	/* Everything after the space that follows the verb (PASS may
	 * contain spaces, RFC 1939 §7); len 0 if none. */
	const char *rest;
	size_t restlen;
	/* rest split at single spaces; nargs > POP3_MAX_ARGS means "too many".
	 * An empty token (two spaces, trailing space) makes the line bad. */
	const char *args[POP3_MAX_ARGS];
	size_t arglens[POP3_MAX_ARGS];
	unsigned nargs;
	bool empty_arg;
};

enum pop3_parse_result {
	POP3_PARSE_OK = 0,
	POP3_PARSE_EMPTY,	/* blank line */
	POP3_PARSE_BAD_BYTES,	/* NUL, CR or other control byte in the line */
	POP3_PARSE_UNKNOWN,	/* no such command */
};

/* line excludes the line terminator. */
enum pop3_parse_result pop3_parse(const char *line, size_t len,
    struct pop3_cmd *cmd);
const char *pop3_verb_name(enum pop3_verb verb);

enum pop3_line_result {
	POP3_LINE_OK = 0,	/* *len_r bytes in line, terminator removed */
	POP3_LINE_MORE,		/* no complete line buffered yet */
	POP3_LINE_TOO_LONG,	/* a line over max was dropped (reply once) */
};

/*
 * Takes one line out of in.  Lines end in LF (a CR before it is removed).
 * A line longer than max is discarded up to its LF, however many reads
 * that takes (*discarding keeps the state), and reported once as
 * POP3_LINE_TOO_LONG.  line must hold max bytes.
 */
enum pop3_line_result pop3_read_line(struct evbuffer *in, size_t max,
    bool *discarding, char *line, size_t *len_r);

#endif
