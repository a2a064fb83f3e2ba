/*
 * json_loc.h - where each key of a JSON text sits (line:column).
 *
 * jansson parses the config but keeps no positions for values, so error
 * messages could not say where a wrong value is.  This scanner walks the
 * same text once and records, for every key path ("Pop3Server.Users[1].
 * HashType"), the position of the key and of its value.  It does not
 * validate: jansson has already accepted the text (or, for a syntax error,
 * the scanner is only asked for the context path at jansson's error
 * position).  Lines and columns are 1-based and columns count UTF-8 code
 * points, the way jansson counts them in its own error messages.
 * Private to src/config.
 */
#ifndef POSUTO_JSON_LOC_H
#define POSUTO_JSON_LOC_H

#include <stdbool.h>
#include <stddef.h>

/* Nesting deeper than this is not recorded (jansson's own limit is 2048). */
#define JSON_LOC_MAX_DEPTH	2048

struct json_loc;

struct json_loc_pos {
	unsigned line;
	unsigned col;
};

/* Scans text[0..len).  Never fails on malformed input: it records what it
 * could read before the first error. */
struct json_loc *json_loc_scan(const char *text, size_t len);
void json_loc_free(struct json_loc **jl);

/*
 * Looks up a path built with json_loc_path_key()/json_loc_path_index().
 * key=true gives the position of the key's opening quote (for array
 * elements and the root, the value's position); key=false the first byte
 * of the value.  Returns false if the path was not seen.
 */
bool json_loc_lookup(const struct json_loc *jl, const char *path, bool key,
    struct json_loc_pos *pos_r);

/*
 * Path of the innermost thing being read where the scan stopped: the key
 * whose value was expected, or the enclosing object/array.  Meant for
 * jansson syntax errors: scan text up to jansson's error position, then
 * ask.  Returns "" for the top level.  Valid until json_loc_free().
 */
const char *json_loc_stop_path(const struct json_loc *jl);

enum json_loc_stop {
	JSON_LOC_STOP_NONE = 0,		/* the scan did not stop early */
	JSON_LOC_STOP_EOF,		/* the text ended inside a value */
	JSON_LOC_STOP_TRAILING_COMMA,	/* ',' right before '}' or ']' */
	JSON_LOC_STOP_OTHER,		/* anything else it could not read */
};

/*
 * Why and where the scan stopped, so that a syntax error can be shown
 * where a person would look: for a trailing comma the comma itself (a
 * parser only notices at the next token), for the end of the text the
 * last non-blank character (there is no line:column past the end), else
 * the character it could not read.  *offset_r is that character's byte
 * offset in the text, *closer_r (for a trailing comma) '}' or ']'.
 */
enum json_loc_stop json_loc_stop(const struct json_loc *jl,
    struct json_loc_pos *pos_r, size_t *offset_r, char *closer_r);

/* Path building, shared with config.c so both sides spell paths alike.
 * Results are allocated (xmalloc). */
char *json_loc_path_key(const char *parent, const char *key);
char *json_loc_path_index(const char *parent, size_t index);

#endif
