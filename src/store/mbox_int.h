/* mbox_int.h - private to the mbox_*.c files (and their tests/fuzzers). */
#ifndef POSUTO_MBOX_INT_H
#define POSUTO_MBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "store/mbox_parse.h"
#include "store/mbox_store.h"

#define MBOX_UIDL_MAX	40
#define MBOX_TAIL_HASH	4096	/* bytes before the end the index hashes */

struct mbox_file_id {
	uint64_t dev, ino, size;
	int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
};

struct mbox_hidden {
	uint64_t off, len;
};

/* qpopper mode, per message (mbox_compat.c): how qpopper's pop_send()
 * showed it, for a message that keeps qpopper's UIDL (exact). */
struct mbox_qpop {
	uint64_t ins_off;	/* where "X-UIDL: <uidl>" goes (file offset) */
	char *ins;		/* that line with its LF; NULL: none */
	uint16_t ins_len;
	uint64_t size;		/* qpopper's LIST size */
	uint64_t wire;		/* the octets its pop_send() view has */
	bool lf;		/* the X-UIDL line used ends in LF */
	bool exact;		/* served as qpopper served it */
	bool hint;		/* qpopper's LIST size is not what it sent */
};

/* Per message: what the old server's UIDL became (mbox_compat.c). */
enum mbox_cstat {
	MBOX_CSTAT_OWN = 0,	/* none: posuto's own (new mail) */
	MBOX_CSTAT_KEPT,	/* the old server's UIDL */
	MBOX_CSTAT_INVALID,	/* not RFC 1939-clean */
	MBOX_CSTAT_DUP,		/* repeats another message's */
	MBOX_CSTAT_RENUMBERED,	/* c-client would renumber the mailbox */
};

struct mbox {
	char *path;
	char *index_path;
	char *journal_path;
	char *append_path;	/* <prefix>.posuto-append: torn appends */
	struct mbox_opts opts;
	int fd;			/* -1: no file (empty mailbox) */
	bool writable;
	bool expunged;
	struct mbox_file_id id;	/* the file when the snapshot was taken */
	struct mbox_msg *msgs;
	size_t n;
	char (*uidl)[MBOX_UIDL_MAX];
	uint64_t total;
	uint64_t parsed;
	/* another server's UIDLs (mbox_compat.c); c_* NULL without */
	uint32_t skip;		/* 1: msgs[0] is c-client's pseudo-message */
	enum mbox_compat c_used;
	uint64_t c_uidvalidity;
	bool c_renumbered;
	uint32_t c_kept;
	uint8_t *c_status;	/* enum mbox_cstat */
	char **c_old;		/* the old UIDL, NULL if none */
	uint64_t *c_size;	/* wire size without the hidden lines */
	struct mbox_hidden *c_hide;	/* hidden header lines, file offsets */
	uint32_t *c_hide_at;	/* message i: c_hide[c_hide_at[i] .. [i+1]) */
	struct mbox_qpop *c_q;	/* qpopper mode only: n entries */
};

/* mbox_compat.c: under the lock, after the snapshot and posuto's own
 * UIDLs; honours mb->opts.compat. */
enum mbox_status mbox_compat_apply(struct mbox *mb, char *err, size_t errsz);
void mbox_compat_free(struct mbox *mb);
/* 1..70 bytes in 0x21..0x7E (RFC 1939 unique-id). */
bool mbox_uidl_ok(const char *s, size_t n);

void mbox_file_id_from_stat(struct mbox_file_id *id, const struct stat *st);
bool mbox_file_id_eq(const struct mbox_file_id *a,
    const struct mbox_file_id *b);

/* SHA-256 (truncated to out_len <= 32) of fd's bytes [off, off+len). */
bool mbox_hash_range(int fd, uint64_t off, uint64_t len, unsigned char *out,
    size_t out_len);
/* Hash of the MBOX_TAIL_HASH bytes before end (fewer near the start). */
bool mbox_tail_hash(int fd, uint64_t end, unsigned char out[MBOX_DIGEST_LEN]);
/* pread/pwrite that loop; false on error or early EOF (errno EIO). */
bool mbox_pread_full(int fd, void *buf, size_t len, uint64_t off);
bool mbox_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
bool mbox_fsync_dir_of(const char *path);

/*
 * Index image <-> snapshot.  mbox_index_parse() validates an image (any
 * bytes: the file sits where others may write) and returns the messages
 * (malloc'ed) and the file id and tail hash it was made for.
 */
bool mbox_index_parse(const void *buf, size_t len, struct mbox_file_id *id_r,
    unsigned char tail_r[MBOX_DIGEST_LEN], struct mbox_msg **msgs_r,
    size_t *n_r);
/* Best effort (it is a cache): tmp + rename, no fsync. */
void mbox_index_write(const char *index_path, const struct mbox_file_id *id,
    const unsigned char tail[MBOX_DIGEST_LEN], const struct mbox_msg *msgs,
    size_t n);

/* UIDLs from digests (occurrence numbering); uidl has n entries. */
void mbox_assign_uidls(const struct mbox_msg *msgs, size_t n,
    char (*uidl)[MBOX_UIDL_MAX]);

/* Message indexes sorted by (digest, position); free() it. */
uint32_t *mbox_sorted(const struct mbox_msg *msgs, size_t n);

/* mbox_expunge.c: runs the recovery if journal_path exists (lock held,
 * fd writable), and removes a journal.tmp a crash left.  MBOX_OK also
 * when there was nothing to do. */
enum mbox_status mbox_journal_recover(int fd, const char *journal_path,
    char *err, size_t errsz);

/*
 * The append marker (<prefix>.posuto-append), so that an append killed
 * part way never leaves a torn message at the end of the mbox: written
 * and fdatasync'd before the first byte is appended, emptied (no sync)
 * once the append is durable.  It says where the append started (orig,
 * and from_off where its From_ line goes after the separator newlines),
 * where it ends once complete and the hash of those bytes, and the
 * From_ line itself.
 */
struct mbox_append_mark {
	uint64_t dev, ino;
	uint64_t orig, from_off, end;
	unsigned char hash[32];		/* SHA-256 of [orig, end) */
	const char *from;		/* the From_ line, with its LF */
	size_t from_len;
};
/* false with errno on failure. */
bool mbox_append_mark_set(const char *apath, const struct mbox_append_mark *m);
/* Empties the marker; sync: durably (before the file is rewritten). */
bool mbox_append_mark_clear(const char *apath, bool sync);
/*
 * Under the locks, with fd open for writing when writable: if the marker
 * names an append that did not complete, removes what it wrote (the
 * tail, or, if an MTA appended after it, only its bytes, by a journal
 * rewrite), then empties the marker durably.  MBOX_OK also when there
 * was nothing to do; MBOX_TEMP if there was and the mbox is read-only or
 * writing failed.  Call it after mbox_journal_recover().  rewrite: the
 * caller is about to move bytes (expunge): an emptied marker is made
 * durable first, so a power cut cannot bring back a stale one that
 * would then describe bytes that moved.
 */
enum mbox_status mbox_append_recover(int fd, bool writable, const char *apath,
    const char *jpath, bool rewrite, char *err, size_t errsz);

/*
 * Test hook: the n-th crash point (file write, fsync, rename, truncate,
 * unlink during an expunge or recovery) from now raises SIGKILL; 0 turns
 * it off.  Lets the crash test stop an expunge at every step.
 */
void mbox_test_crash_after(unsigned n);
void mbox_crash_point(void);

#endif
