/*
 * mbox_store.h - one mbox file as a POP3 maildrop: snapshot, sizes,
 * UIDLs, reading, appending and the expunge at QUIT.  The contract the
 * store driver sits on; see docs/mbox.md for the why.
 *
 * Side files.  posuto keeps two files per mbox, named by a state prefix
 * (mbox_opts.state_prefix; NULL means the mbox path itself, e.g.
 * /var/mail/bob.posuto-index, which needs a spool directory we can write;
 * the driver may point it into a directory of its own instead):
 *   <prefix>.posuto-index    size cache (tmp + rename; damaged or stale
 *                            ones are ignored and rebuilt)
 *   <prefix>.posuto-journal  the expunge journal; it MUST be found again
 *                            after a crash, so every open, append and
 *                            expunge of one mbox must use the same prefix.
 *   <prefix>.posuto-append   the append in progress (empty when none); the
 *                            same rule.
 *
 * UIDL: 24 hex digits of the message digest (SHA-256 of its From_ line,
 * with sender and delivery time, and its stored bytes), plus "-k" for the
 * k-th (k >= 1) earlier copy with the same digest.  It depends on the
 * file only, not on a side file that may be lost, not on the message's
 * position (an expunge of others keeps it), and not on headers alone.
 * Identical copies are byte-identical including the From_ line's second;
 * mbox_expunge() keeps their numbering stable (see there).
 *
 * Locking: opening, appending and expunging take the dotlock and the
 * fcntl lock (mbox_lock.h) for as long as they touch the file; reading a
 * message does not (appends by the MTA do not move existing bytes, and
 * the reader checks the digest before it claims completeness).
 *
 * Not thread-safe per struct mbox; different mboxes are independent.
 */
#ifndef POSUTO_MBOX_STORE_H
#define POSUTO_MBOX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "store/mbox_lock.h"

/*
 * UIDLs another server left in the headers (mbox_compat.c): UW c-client's
 * X-IMAPbase/X-UID (its bookkeeping headers and pseudo-message hidden as
 * it hid them), qpopper's X-UIDL.  UW_AUTO: UW if the first message has
 * X-IMAP/X-IMAPbase, else none.
 */
enum mbox_compat {
	MBOX_COMPAT_NONE = 0,
	MBOX_COMPAT_UW,
	MBOX_COMPAT_UW_AUTO,
	MBOX_COMPAT_QPOPPER,
};

struct mbox_opts {
	const char *state_prefix;	/* NULL: the mbox path */
	struct mbox_lock_opts lock;
	enum mbox_compat compat;
};

void mbox_opts_init(struct mbox_opts *o);

struct mbox;

/*
 * Opens the mbox at path (O_NOFOLLOW, regular files only), runs the
 * crash recovery of an interrupted expunge if a journal is there, and
 * takes a snapshot of its messages: from the index when it matches the
 * file's (dev, inode, size, mtime, ctime), reading no message; re-parsing
 * only the tail (from the last known message on) when the file only
 * grew; else parsing it all.  A missing file is an empty mailbox.
 * MBOX_PERM: not an mbox (see mbox_parse.h) or not a regular file;
 * MBOX_TEMP: lock timeout, I/O error, unrecoverable journal.
 */
enum mbox_status mbox_open_snapshot(const char *path,
    const struct mbox_opts *o, struct mbox **mb_r, char *err, size_t errsz);
void mbox_close(struct mbox **mb);

/* What was applied (UW_AUTO resolved: UW or NONE). */
enum mbox_compat mbox_compat_used(const struct mbox *mb);
/* "kept", "new", "invalid", "duplicate", "renumbered"; *old_r: the old
 * server's UIDL or NULL. */
const char *mbox_msg_uidl_status(const struct mbox *mb, uint32_t idx,
    const char **old_r);
/* Summary for doctor / migrate check. */
void mbox_compat_describe(const struct mbox *mb, char *buf, size_t bufsz);

/* Messages as POP3 lists them (without a hidden pseudo-message); idx
 * below counts these. */
uint32_t mbox_msg_count(const struct mbox *mb);
/* idx is 0-based, < mbox_msg_count().  Octets RETR sends (no stuffing). */
uint64_t mbox_msg_size(const struct mbox *mb, uint32_t idx);
/* True where the size is the old server's LIST figure and differs from
 * the octets RETR sends (qpopper counted a CR per 1023-octet piece and
 * Content-Length lines it did not send). */
bool mbox_msg_size_is_hint(const struct mbox *mb, uint32_t idx);
/* 1..70 chars in 0x21..0x7E, unique in the mailbox, stable. */
const char *mbox_msg_uidl(const struct mbox *mb, uint32_t idx);
uint64_t mbox_total_size(const struct mbox *mb);
/* Bytes of the mbox read to build the snapshot (0: all from the index). */
uint64_t mbox_bytes_parsed(const struct mbox *mb);

/*
 * Streams the wire form of message idx: un-quoted, CRLF, dot-stuffed,
 * ending in ".\r\n" (body_lines < 0: RETR, >= 0: TOP n), in bounded
 * memory.  MBOX_CHANGED at open if the file visibly changed (inode,
 * shrunk).  read: > 0 bytes, 0 at the end (the terminator was given),
 * -1 on error: I/O (errno) or the message's bytes no longer match the
 * snapshot digest, found before the terminator is given, so a changed
 * message is never sent as complete; the caller must then drop the
 * connection (the index is invalidated).  len >= 8.
 */
struct mbox_reader;
enum mbox_status mbox_msg_reader_open(struct mbox *mb, uint32_t idx,
    long long body_lines, struct mbox_reader **r_r);
/* The same reader giving the message's stored bytes un-quoted (no CRLF,
 * no stuffing, no terminator): what store.h's msg_reader_read() gives;
 * 0 only once the digest matched. */
enum mbox_status mbox_msg_reader_open_stored(struct mbox *mb, uint32_t idx,
    struct mbox_reader **r_r);
ssize_t mbox_msg_reader_read(struct mbox_reader *r, void *buf, size_t len);
void mbox_msg_reader_close(struct mbox_reader **r);

/* Reads message bytes for mbox_append(): > 0, 0 at end, -1 on error. */
typedef ssize_t (*mbox_read_fn)(void *ctx, void *buf, size_t len);
/* Starts the reading over from the first byte (may be NULL: see below). */
typedef void (*mbox_rewind_fn)(void *ctx);

/*
 * Appends one message to the mbox at path (created 0600 if missing),
 * under both locks: a From_ line "From <sender>  <asctime date>" (sender
 * "MAILER-DAEMON" if empty; bytes <= 0x20 become '_'), the message with
 * mboxrd quoting, a final newline if it lacks one, and a blank line;
 * then fsync.  MBOX_OK only once durable.  On any error (read error,
 * disk full, fsync) the file is truncated back to its old size, so no
 * partial message remains, and MBOX_TEMP is returned.  A kill or power
 * cut part way leaves <prefix>.posuto-append saying so, and the next
 * open, append or expunge removes the torn message first.  With rw the
 * message is read twice (length and hash first: one fsync fewer); with
 * rw NULL once.
 */
enum mbox_status mbox_append(const char *path, const struct mbox_opts *o,
    const char *sender, time_t when, mbox_read_fn rd, mbox_rewind_fn rw,
    void *ctx, char *err, size_t errsz);

/*
 * Removes the messages with deleted[idx] != 0 (RFC 1939 UPDATE), under
 * both locks, by an in-place rewrite with a journal (see docs/mbox.md):
 * safe against a crash at any point, keeps inode, owner, mode and hard
 * links, keeps mail appended since the snapshot.  MBOX_CHANGED (nothing
 * deleted) if the file was changed by others in other ways.
 * Identical copies: deleting an earlier copy while a later identical one
 * stays would hand the later one the deleted one's UIDL, so such a copy
 * is kept (RFC 1939 lets UPDATE fail to remove some messages).
 * *n_deleted_r: messages really removed.  Call at most once; the
 * snapshot is then unusable for reading (close it).
 */
enum mbox_status mbox_expunge(struct mbox *mb, const uint8_t *deleted,
    uint32_t *n_deleted_r, char *err, size_t errsz);

#endif
