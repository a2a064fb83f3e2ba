/*
 * store.h - the mailbox interface the protocol uses; backends (maildir,
 * emldir; later mbox, SQL) sit behind it.
 *
 * Life of a mailbox in one POP3 session:
 *   mailbox_open()   lock (one session per mailbox, across processes),
 *                    scan, fix message numbers, sizes and UIDLs  [blocking]
 *   mailbox_count/size/uidl      read the fixed snapshot          [cheap]
 *   mailbox_msg_open()           a reader over the stored bytes   [cheap]
 *   mailbox_commit()             UPDATE state: delete marked,
 *                                new/ -> cur/ moves               [blocking]
 *   mailbox_close()              unlock, free                     [cheap]
 * Blocking calls run in a worker thread.  A mailbox is used by one thread
 * at a time.  Sizes are "wire sizes": the octets RETR sends before
 * dot-stuffing, with every line ending CRLF (see lib/wire.h).
 */
#ifndef POSUTO_STORE_H
#define POSUTO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

enum store_status {
	STORE_OK = 0,
	STORE_IN_USE,		/* another session holds the lock: [IN-USE] */
	STORE_TEMP,		/* I/O error etc.: [SYS/TEMP] */
	STORE_PERM,		/* unusable mailbox (too large, not a dir): [SYS/PERM] */
};

struct mailbox;
struct msg_reader;

/*
 * Opens the mailbox at path.  format AUTO: a directory holding cur/ new/
 * tmp/ is a Maildir, anything else is read as emldir.  A missing
 * directory is an empty mailbox (mail may not have arrived yet) and is
 * created on first delivery, not here.  On failure err (if not NULL)
 * receives a human-readable reason for the log.
 */
enum store_status mailbox_open(const char *path, enum mbox_format format,
    struct mailbox **mb_r, char *err, size_t errsz);

uint32_t mailbox_count(const struct mailbox *mb);
/* idx is 0-based; callers check idx < mailbox_count(). */
uint64_t mailbox_msg_size(const struct mailbox *mb, uint32_t idx);
/* Unique, stable, 1..70 chars in 0x21..0x7E (RFC 1939 §7). */
const char *mailbox_msg_uidl(const struct mailbox *mb, uint32_t idx);
/* Sum of all message sizes. */
uint64_t mailbox_total_size(const struct mailbox *mb);

/*
 * Opens message idx for reading.  STORE_PERM with errno ENOENT means the
 * file vanished (another program expunged it): "-ERR message expunged".
 */
enum store_status mailbox_msg_open(struct mailbox *mb, uint32_t idx,
    struct msg_reader **r_r);
/* Reads up to len raw stored bytes; 0 at end, -1 on error (errno set). */
ssize_t msg_reader_read(struct msg_reader *r, void *buf, size_t len);
/*
 * If the stored bytes are already the exact wire form (CRLF endings, no
 * line starting with '.', ending in CRLF), returns an fd the caller may
 * sendfile() from, else -1.  The reader still owns the fd.
 */
int msg_reader_wire_fd(struct msg_reader *r, off_t *len_r);
void msg_reader_close(struct msg_reader **r);

/* Records that message idx was retrieved (Maildir: gets the S flag). */
void mailbox_msg_mark_seen(struct mailbox *mb, uint32_t idx);

/*
 * UPDATE state: removes every message whose bit is set in deleted
 * (bit idx of deleted[idx / 8]), moves the rest from new/ to cur/.
 * A message that cannot be removed is logged and reported with
 * STORE_TEMP after trying all the others; nothing unmarked is touched.
 */
enum store_status mailbox_commit(struct mailbox *mb, const uint8_t *deleted,
    uint32_t *n_deleted_r);

/* Releases the lock and frees everything.  Never deletes anything. */
void mailbox_close(struct mailbox **mb);

#endif
