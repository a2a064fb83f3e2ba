/*
 * http_mime.h - what the mailbox viewer needs from a message, through
 * GMime 3 (MIME structure, RFC 2047 encoded-words, charsets by iconv):
 * a summary for the list and the parts for the message page.
 *
 * GMime and glib live in a module, posuto_parse.so (lib/plugin.h), loaded
 * by http_mime_load.c the first time a page needs a message parsed; if it
 * cannot be loaded, the viewer still lists and serves raw messages.
 *
 * Private to src/http/ and used on the admin thread only (GMime's
 * parser state is not shared between threads here, and no POP3 work
 * ever waits for it).  Input is attacker-controlled: it is bounded by
 * the caller (HTTP_MIME_MAX_MESSAGE), nesting deeper than
 * HTTP_MIME_MAX_NESTING is not parsed as MIME (the parser recurses), and
 * every string that comes out is valid UTF-8.
 */
#ifndef POSUTO_HTTP_MIME_H
#define POSUTO_HTTP_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Messages bigger than this are listed and downloadable raw, never
 * parsed whole (a page, a part). */
#define HTTP_MIME_MAX_MESSAGE	(32u << 20)
/* Header bytes read for the list (the rest of a longer header is
 * ignored there). */
#define HTTP_MIME_MAX_HEADER	(64u << 10)
#define HTTP_MIME_MAX_NESTING	32
#define HTTP_MIME_MAX_PARTS	256
/* What the list keeps of each message. */
#define HTTP_MIME_FROM_MAX	200
#define HTTP_MIME_SUBJECT_MAX	300

void http_mime_init(void);
void http_mime_shutdown(void);

struct http_mime_summary {
	char from[HTTP_MIME_FROM_MAX];		/* "Name <addr>", decoded */
	char subject[HTTP_MIME_SUBJECT_MAX];	/* decoded */
	int64_t date;				/* unix time, 0 if none */
};

/* The header of a message (data: its first bytes, at most the header). */
void http_mime_summary(const char *data, size_t len,
    struct http_mime_summary *out);

/* A parsed message: "headers" [[name, value]...], "from", "to", "cc",
 * "subject", "date", "text" (or null), "html" (bool), "attachments"
 * [{n, filename, type, size, content_id}].  NULL if data is not a
 * message at all. */
json_t *http_mime_message_json(const char *data, size_t len);

/* The decoded bytes of attachment n (as listed) into *out_r (malloc'd),
 * with a safe file name (no path, no quotes or controls) and its MIME
 * type; false if there is no such part. */
bool http_mime_part(const char *data, size_t len, unsigned n, char **out_r,
    size_t *outlen_r, char *filename, size_t fnsz, char *type, size_t typesz);

/* The HTML part, UTF-8, with "cid:" references to parts of the message
 * turned into data: URIs (other cid: references into empty ones);
 * malloc'd, NULL if the message has none. */
char *http_mime_html(const char *data, size_t len, size_t *outlen_r);

/* What posuto_parse.so provides (http_mime.c): the calls above that need
 * GMime, same contracts. */
struct http_mime_ops {
	void (*init)(void);
	void (*shutdown)(void);
	void (*summary)(const char *data, size_t len,
	    struct http_mime_summary *out);
	json_t *(*message_json)(const char *data, size_t len);
	bool (*part)(const char *data, size_t len, unsigned n, char **out_r,
	    size_t *outlen_r, char *filename, size_t fnsz, char *type,
	    size_t typesz);
	char *(*html)(const char *data, size_t len, size_t *outlen_r);
	void (*safe_filename)(char *buf, size_t bufsz, const char *name,
	    const char *fallback);
};

/* Cuts s (UTF-8) to fit bufsz at a character boundary. */
void http_mime_copy_utf8(char *buf, size_t bufsz, const char *s);

/* A file name safe for Content-Disposition: base name only, no quotes,
 * backslashes, controls or leading dots; "fallback" when nothing is left. */
void http_mime_safe_filename(char *buf, size_t bufsz, const char *name,
    const char *fallback);

#endif
