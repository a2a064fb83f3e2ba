/*
 * maildir_name.h - pure parser for Maildir file names (maildir(5), with
 * the Courier/Dovecot size hints):
 *
 *   <unique>[,S=<stored size>][,W=<wire size>][:2,<flags>]
 *
 * The unique part is everything before the first ':' (hints included, as
 * Dovecot and Courier treat it); it never changes when the file is moved
 * new/ -> cur/ or its flags change.  No I/O, no allocation: fuzzable.
 */
#ifndef POSUTO_MAILDIR_NAME_H
#define POSUTO_MAILDIR_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct maildir_name {
	size_t unique_len;	/* name[0..unique_len) */
	bool has_info;		/* a ':' follows the unique part */
	bool has_flags;		/* info is "2,<flags>" */
	size_t flags_off;	/* flags = name[flags_off..flags_off+flags_len) */
	size_t flags_len;
	bool has_time;		/* unique part starts with digits */
	uint64_t time;		/* their value: delivery time in seconds */
	bool has_s;		/* ",S=" hint: stored size */
	uint64_t s_size;
	bool has_w;		/* ",W=" hint: wire (CRLF) size */
	uint64_t w_size;
};

/*
 * Parses name[0..len).  Returns false for names that are not messages:
 * empty, starting with '.', containing '/' or NUL, or with an empty
 * unique part.  Malformed hints are ignored (not an error).
 */
bool maildir_name_parse(const char *name, size_t len, struct maildir_name *mn);

/* True if the flag character c is in the parsed flags. */
bool maildir_name_has_flag(const char *name, const struct maildir_name *mn,
    char c);

/*
 * Writes the cur/ name for a message: the unique part, then ":2," and
 * the existing flags with add_flag (0 = none) merged in ASCII order, as
 * maildir(5) requires.  Experimental/unknown info ("1,...") is replaced.
 * Returns the length, or 0 if it does not fit in outsz (incl. NUL).
 */
size_t maildir_name_with_flag(const char *name, const struct maildir_name *mn,
    char add_flag, char *out, size_t outsz);

/*
 * Ordering of two unique parts, which is arrival order as far as the
 * names tell: delivery time (leading digits) first, then the
 * microseconds ("M") and the per-process delivery count ("Q", qmail's
 * "#") of the delivery identifier after "<time>." (Postfix
 * V<dev>I<ino>M<usec>, Dovecot M<usec>P<pid>, Courier
 * M<usec>P<pid>V<dev>I<ino>; a name without them comes first in its
 * second), then the bytes after the time digits, then the whole unique
 * part, so the order is total.  Cheap enough to sort 100k names
 * (maildir_name_key2 lets a sort decide most comparisons without
 * touching the names).
 */
int maildir_name_cmp(const char *a, size_t alen, uint64_t atime,
    const char *b, size_t blen, uint64_t btime);

/* Leading-digit time of a unique part (0 if none or too large). */
uint64_t maildir_name_time(const char *u, size_t ulen);
/* The microseconds, the sequence and the first 3 bytes after the time
 * digits packed so that, for equal times, comparing these first agrees
 * with maildir_name_cmp. */
uint64_t maildir_name_key2(const char *u, size_t ulen);

#endif
