/*
 * mbox_lock.h - locking an mbox the way Postfix local(8), procmail and
 * mutt do, so that they and posuto exclude each other.
 *
 * Two locks, taken in the order Postfix and procmail take them (dotlock
 * first, then the kernel lock, so nobody waits in a cycle):
 *   1. "<mbox>.lock", created with O_EXCL and holding our pid as ASCII
 *      decimal and a newline (liblockfile's format).  A lock file is
 *      stale, and removed, when it is older than stale_sec (Postfix's
 *      stale_lock_time is 500 s; we use the same default) or when it
 *      holds the pid of a process that no longer exists on this host
 *      (liblockfile's rule; Postfix writes no pid).  If the directory
 *      does not let us create files (EACCES, EPERM, EROFS) and
 *      dotlock_may_fail is set, we go on with the kernel lock alone, as
 *      Postfix does with a non-writable spool directory.
 *   2. an fcntl() write lock on the whole file.  We use OFD locks
 *      (F_OFD_SETLK): they conflict with the classic POSIX locks of
 *      Postfix and procmail, but belong to our open file, so closing some
 *      other descriptor of the same file in another thread cannot drop
 *      them.  A read-only descriptor gets a read lock, which still keeps
 *      writers out.
 * Waiting is bounded: retries every 100 ms (more at first) until
 * timeout_ms, then MBOX_TEMP ("try again later": 75 for deliver,
 * [SYS/TEMP] for POP3).  Nothing here sleeps without a deadline.
 */
#ifndef POSUTO_MBOX_LOCK_H
#define POSUTO_MBOX_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum mbox_status {
	MBOX_OK = 0,
	MBOX_TEMP,	/* lock timeout, I/O error, disk full: retry later */
	MBOX_PERM,	/* not an mbox, not a regular file */
	MBOX_CHANGED,	/* the file changed under a snapshot (temporary) */
};

#define MBOX_LOCK_STALE_SEC	500	/* Postfix stale_lock_time */
#define MBOX_LOCK_TIMEOUT_MS	20000	/* Postfix: 20 attempts x 1 s */

struct mbox_lock_opts {
	unsigned timeout_ms;
	unsigned stale_sec;
	bool dotlock;		/* take the .lock file at all */
	bool dotlock_may_fail;	/* go on without it if we cannot create it */
};

struct mbox_lock {
	int fd;			/* the mbox; not owned */
	bool have_fcntl;
	bool have_dot;
	dev_t dot_dev;		/* our lock file, to remove only ours */
	ino_t dot_ino;
	char *dot_path;
};

void mbox_lock_opts_init(struct mbox_lock_opts *o);

/*
 * Locks the mbox open on fd (path names it, for the dotlock).  On
 * MBOX_OK the caller must call mbox_lock_release(); on failure nothing
 * is held.  err gets a reason for the log.
 */
enum mbox_status mbox_lock_acquire(struct mbox_lock *lk, int fd,
    const char *path, const struct mbox_lock_opts *o, char *err,
    size_t errsz);
/* Refreshes the dotlock's mtime so a long expunge is not taken as stale. */
void mbox_lock_touch(struct mbox_lock *lk);
/* Drops both locks (the dotlock only if it is still ours); idempotent. */
void mbox_lock_release(struct mbox_lock *lk);

#endif
