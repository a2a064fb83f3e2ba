/*
 * uidl_compat.h - the UIDL state other POP3 servers left in a Maildir,
 * read so that posuto serves the UIDLs (and sizes) clients already know.
 * Pure parsers and the pop3_uidl_format expansion: no I/O, fuzzable.
 *
 * dovecot-uidlist (Dovecot 2.x, maildir-uidlist.c): a header line
 * "3 V<uidvalidity> N<next uid> [G<guid>] ...", then one line per message,
 * "<uid> [<key><value> ...] :<file name>", uids ascending; the extension
 * keys are one upper-case letter: W virtual (wire) size, S stored size,
 * P the POP3 UIDL saved by pop3_save_uidl (empty: the base file name),
 * G the message GUID, O the POP3 order.  Version 1: "1 <uidv> <next>",
 * lines "<uid> <file name>".  A last line without '\n' is being appended:
 * ignored.
 *
 * courierpop3dsizelist (Courier pop3dserver.c, versions 2 and 3):
 * "/<version> <next uid> <uidv>", then "<file name> <size> <uid>:<uidv>"
 * (version 3 adds ":<utf8 flag>"); Courier's UIDL is "UID<uid>-<uidv>"
 * ("UID<uid>" when uidv is 0), its size the wire size.
 *
 * Both are matched to files by the base name: the file name up to ':'.
 */
#ifndef POSUTO_UIDL_COMPAT_H
#define POSUTO_UIDL_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the UIDLs of a mailbox come from (config UidlCompat). */
enum uidl_compat_source {
	UIDL_COMPAT_AUTO = 0,	/* detect once, then keep what was found */
	UIDL_COMPAT_NONE,	/* posuto's own only */
	UIDL_COMPAT_DOVECOT,	/* dovecot-uidlist + pop3_uidl_format */
	UIDL_COMPAT_COURIER,	/* courierpop3dsizelist */
	UIDL_COMPAT_UW,		/* mbox: X-IMAPbase/X-UID (c-client) */
	UIDL_COMPAT_QPOPPER,	/* mbox: X-UIDL headers */
	UIDL_COMPAT_TPOPS,	/* Maildir: tpops_uidl map, else base name */
};

#define UIDL_COMPAT_DEFAULT_FORMAT	"%08Xu%08Xv"
#define UIDL_COMPAT_DOVECOT_FILE	"dovecot-uidlist"
#define UIDL_COMPAT_COURIER_FILE	"courierpop3dsizelist"
/* TPOPS's map: 0.6.4, 0.6.5 and 0.8 read "tpops_uidl", 0.7 to 0.7.2
 * ".tpops_uidl"; its lock file tells a Maildir TPOPS served. */
#define UIDL_COMPAT_TPOPS_FILE		"tpops_uidl"
#define UIDL_COMPAT_TPOPS_FILE_07	".tpops_uidl"
#define UIDL_COMPAT_TPOPS_LOCK		"tpops_lock"
/* Longest UIDL a format may produce before it is judged (RFC: 70). */
#define UIDL_COMPAT_MAX		256

/* "auto", "none", ... or NULL. */
const char *uidl_compat_source_name(enum uidl_compat_source s);
/* Case-insensitive; false if s names no source. */
bool uidl_compat_source_parse(const char *s, enum uidl_compat_source *s_r);

struct uidl_compat_rec {
	const char *key;	/* base file name, not NUL-terminated */
	const char *pop3;	/* P value (dovecot), NULL if none */
	const char *guid;	/* G value (dovecot), NULL if none */
	uint64_t vsize;		/* W (dovecot) / size (courier) */
	uint32_t uid;
	uint32_t uidv;		/* courier: the record's own uidv */
	uint16_t key_len;
	uint16_t pop3_len;
	uint16_t guid_len;
	bool has_pop3;		/* P present (maybe empty) */
	bool has_vsize;
};

struct uidl_compat_list {
	enum uidl_compat_source source;
	unsigned version;
	uint32_t uidvalidity;
	uint32_t next_uid;
	struct uidl_compat_rec *recs;	/* sorted by key (memcmp order) */
	uint32_t n;
	uint32_t bad_lines;		/* lines skipped as malformed */
};

/* Parse buf[0..len) (which must outlive the list); false if the header
 * is not one the server would accept (then the list is empty). */
bool uidl_compat_dovecot_parse(const char *buf, size_t len,
    struct uidl_compat_list *l);
bool uidl_compat_courier_parse(const char *buf, size_t len,
    struct uidl_compat_list *l);
/*
 * TPOPS's map (plugin/mailbox-maildir.rb, maildir-uidl-convert): lines
 * "<base file name>\t<UIDL>", read as TPOPS read them (l.chomp.split(
 * /\t/, 2)): the UIDL is everything after the first tab; a line without
 * a tab unmaps its name (has_pop3 false); the last line for a name wins.
 * A name with ':' or '/' never matched a base name in TPOPS: skipped
 * (bad_lines).  The UIDL is in pop3 (pop3_len 0: TPOPS served "").
 * Always true (there is no header).
 */
bool uidl_compat_tpops_parse(const char *buf, size_t len,
    struct uidl_compat_list *l);
void uidl_compat_list_free(struct uidl_compat_list *l);
/* The record for base name key[0..len), or NULL. */
const struct uidl_compat_rec *uidl_compat_find(const struct uidl_compat_list *l,
    const char *key, size_t len);

/* What a format may refer to (pop3_uidl_format variables). */
struct uidl_compat_vars {
	uint32_t uidvalidity, uid;
	const char *filename;	/* %f: base file name */
	size_t filename_len;
	const char *guid;	/* %g: G, else the base file name */
	size_t guid_len;
	const char *md5;	/* %m: header MD5 hex, NULL = not available */
};

/*
 * Expands a Dovecot 2.3 pop3_uidl_format (var_expand: %[-][0][width]
 * [.width][modifiers]<var>, vars v u m f g or %{uidvalidity} %{uid}
 * %{md5} %{filename} %{guid}, modifiers L U X R M T, "%%") into out.
 * Returns the length, or 0 if the format cannot be expanded (unknown
 * variable, %m without md5, too long).
 */
size_t uidl_compat_format(const char *fmt, const struct uidl_compat_vars *v,
    char *out, size_t outsz);
/* True if fmt is a format posuto can expand (config check); why_r. */
bool uidl_compat_format_valid(const char *fmt, const char **why_r);

/* Courier's UIDL of a sizelist record: "UID<n>-<uidv>" or "UID<n>". */
size_t uidl_compat_courier_uidl(const struct uidl_compat_rec *r, char *out,
    size_t outsz);

#endif
