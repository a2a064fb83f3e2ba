/*
 * store_index.h - the per-mailbox size cache (".posuto.index").
 *
 * Maps a message file's key (Maildir: the unique part before ':', so a
 * new/ -> cur/ rename or a flag change keeps the entry; emldir: the file
 * name) to its stored and wire sizes, the wire-form flag and, for emldir,
 * the UIDL.  It is a cache: damaged, truncated, foreign or old-version
 * files are ignored and rebuilt; an entry is used only if the file's
 * inode (and for emldir mtime and size) still match.  Only the session
 * holding the mailbox lock writes it (tmp file, then rename; no fsync:
 * it is a checksummed cache).
 * Entries are written in the mailbox's sort order, so opening merges
 * them with the sorted directory listing in one sequential pass (no
 * hash table, no random access over a 100k-entry file).
 */
#ifndef POSUTO_STORE_INDEX_H
#define POSUTO_STORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_INDEX_NAME	".posuto.index"
#define STORE_INDEX_TMP		".posuto.index.tmp"

enum {
	STORE_INDEX_KIND_MAILDIR = 1,
	STORE_INDEX_KIND_EMLDIR = 2,
};

enum {
	STORE_INDEX_F_WIRE_FORM = 1 << 0,
	/* Maildir with another server's UIDLs (store_compat.c): the entry
	 * pins the message's UIDL only; its sizes are not known */
	STORE_INDEX_F_UIDL_ONLY = 1 << 1,
};

struct store_index_entry {
	const char *key;	/* not NUL-terminated; points into the index */
	const char *uidl;	/* emldir, or Maildir with another server's
				 * UIDLs; else NULL; not terminated */
	uint64_t ino;
	uint64_t raw_size;
	uint64_t wire_size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint16_t key_len;
	uint8_t uidl_len;
	uint8_t flags;		/* STORE_INDEX_F_* */
};

struct store_index;
struct store_fs;

/* Walks the entries in file order (the order they were written in). */
struct store_index_iter {
	const unsigned char *p;
	uint32_t left;
};

/* Validates an index image; NULL if it is not a valid index of this
 * kind.  The result points into buf, which must outlive it. */
struct store_index *store_index_parse(const void *buf, size_t len,
    uint32_t kind);
/* Maps and validates dirfd/.posuto.index; NULL if missing or invalid. */
struct store_index *store_index_load(int dirfd, uint32_t kind);
uint32_t store_index_count(const struct store_index *ix);
void store_index_iter_init(const struct store_index *ix,
    struct store_index_iter *it);
bool store_index_iter_next(struct store_index_iter *it,
    struct store_index_entry *e);
void store_index_free(struct store_index **ix);

/*
 * Serialises the sized messages of mb, skipping those whose bit is set
 * in skip (may be NULL), into a malloc'd image; *len_r gets its length.
 */
void *store_index_build(const struct store_fs *mb, const uint8_t *skip,
    size_t *len_r);
/* Builds and atomically replaces dirfd/.posuto.index. */
bool store_index_write(int dirfd, const struct store_fs *mb,
    const uint8_t *skip);
/* Writes the checksum of an image of len >= 16 bytes (tests, fuzzing
 * and store_index_build). */
void store_index_seal(void *buf, size_t len);
/*
 * Replaces name in dirfd with the len bytes at buf: written to tmp
 * (O_NOFOLLOW: a planted symlink never redirects it; only the mailbox
 * lock holder writes it), fsync()ed if sync, renamed over name.  false
 * (tmp removed, the old file kept) on any failure.  The side files
 * .posuto.index (no sync: a cache), .posuto.expire, .posuto.drift.
 */
bool store_index_replace_file(int dirfd, const char *tmp, const char *name,
    const void *buf, size_t len, bool sync);
/* Removes the index (a cached size was found wrong). */
void store_index_remove(int dirfd);

#endif
