/*
 * smtp_parse.h - one SMTP/LMTP command line -> verb + argument, and the
 * RFC 5321 pieces inside arguments: paths and ESMTP parameters.  Pure: no
 * I/O, no allocation; pointers point into the caller's line.  Fuzzed.
 */
#ifndef SMTP_PARSE_H
#define SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	SMTP_VERB_LHLO = 0,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_HELP,
	SMTP_VERB_COUNT
};

struct smtp_cmd {
	enum smtp_verb verb;
	/* Everything after the first space that follows the verb; len 0 and
	 * arg pointing at the end of the line if none. */
	const char *arg;
	size_t arglen;
};

enum smtp_parse_result {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_EMPTY,	/* blank line */
	SMTP_PARSE_BAD_BYTES,	/* NUL, CR, other controls or 8-bit bytes */
	SMTP_PARSE_UNKNOWN,	/* no such command */
};

/* line excludes the line terminator.  Verbs are case-insensitive. */
enum smtp_parse_result smtp_parse_cmd(const char *line, size_t len,
    struct smtp_cmd *cmd);
const char *smtp_verb_name(enum smtp_verb verb);

/* RFC 5321 §4.5.3.1: local part 64, domain 255, path (with <>) 256. */
#define SMTP_LOCAL_MAX	64
#define SMTP_DOMAIN_MAX	255
#define SMTP_PATH_MAX	256

/* Flags for smtp_parse_path. */
#define SMTP_PATH_NULL_OK	0x1u	/* "<>" allowed (reverse-path) */
#define SMTP_PATH_POSTMASTER_OK	0x2u	/* "<Postmaster>" allowed (RCPT) */

enum smtp_path_result {
	SMTP_PATH_OK = 0,
	SMTP_PATH_SYNTAX,	/* not "PREFIX<mailbox>" or bad characters */
	SMTP_PATH_TOO_LONG,	/* over one of the RFC 5321 lengths */
	SMTP_PATH_ROUTE,	/* "<@relay:user@host>": not accepted */
	SMTP_PATH_QUOTED,	/* "\"a b\"@host": not accepted */
	SMTP_PATH_NULL,		/* "<>" where it is not allowed */
};

struct smtp_path {
	/* local@domain without the brackets, NUL-terminated; "" for <>. */
	char addr[SMTP_PATH_MAX];
	size_t len;
	/* Text after the path's single space (ESMTP parameters); len 0 if
	 * none. */
	const char *params;
	size_t paramslen;
};

/*
 * Parses "FROM:<path> params" (prefix "FROM:") or "TO:<path> params"
 * (prefix "TO:").  The prefix is case-insensitive; spaces after its colon
 * are tolerated (clients send "MAIL FROM: <a@b>").  Domains are
 * letter-digit-hyphen labels or an address literal "[...]".
 */
enum smtp_path_result smtp_parse_path(const char *arg, size_t len,
    const char *prefix, unsigned flags, struct smtp_path *path);

enum smtp_body {
	SMTP_BODY_7BIT = 0,
	SMTP_BODY_8BITMIME,
};

struct smtp_mail_params {
	bool has_size;
	uint64_t size;
	enum smtp_body body;
};

enum smtp_param_result {
	SMTP_PARAM_OK = 0,
	SMTP_PARAM_SYNTAX,	/* not keyword[=value] separated by spaces */
	SMTP_PARAM_UNKNOWN,	/* a keyword we did not advertise */
	SMTP_PARAM_DUPLICATE,	/* the same keyword twice */
	SMTP_PARAM_BAD_VALUE,	/* SIZE not a number, BODY not 7BIT/8BITMIME */
};

/* MAIL parameters: SIZE=n (RFC 1870), BODY=7BIT|8BITMIME (RFC 6152). */
enum smtp_param_result smtp_parse_mail_params(const char *s, size_t len,
    struct smtp_mail_params *mp);

#endif
