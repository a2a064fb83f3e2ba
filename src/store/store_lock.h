/*
 * store_lock.h - the POP3 session lock: one session per mailbox at a
 * time (RFC 1939 exclusive access, "[IN-USE]"), in this process and in
 * every other posuto process on the host.
 *
 * A mailbox is named by the (st_dev, st_ino) of its root directory.
 * Inside the process a table of locked mailboxes (mutex-protected: worker
 * threads open and close mailboxes concurrently) answers.  Across
 * processes every posuto opens the same lock file (LockFile) once, at
 * startup, and takes an OFD write lock (fcntl F_OFD_SETLK) on one byte
 * of it per mailbox, at an offset every process computes alike
 * (store_lock_offset()).  Holding a mailbox thus costs no descriptor:
 * the lock file is shared by all of them, and the kernel drops a dead
 * process's locks, so there are no stale locks and nothing of ours in
 * the mail directories.
 *
 * Without store_lock_file_open() (unit tests, fuzz targets) only the
 * in-process table excludes: fine for one process, no guard against
 * another.
 */
#ifndef POSUTO_STORE_LOCK_H
#define POSUTO_STORE_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

/*
 * The lock file used when LockFile is not set, written into buf:
 * /run/posuto/mailbox.lock for root (creating /run/posuto, mode 0755),
 * else $XDG_RUNTIME_DIR/posuto-mailbox.lock if that directory exists,
 * else /tmp/posuto-<euid>.lock.  Processes that must exclude each other
 * need the same file: a daemon started as root and an inetd-mode one
 * started as another user only do if LockFile says so.
 */
const char *store_lock_default_path(char *buf, size_t bufsz);

/*
 * Opens (creating, mode 0600) the lock file at path and keeps it open for
 * the life of the process: call it before dropping privileges.  Refuses
 * a symlink, anything but a regular file, a file owned by a user other
 * than us, root or run_as_uid, and a file system without OFD locks.  If
 * we are root, run_as_uid is not (uid_t)-1 and root owns the file, it is
 * handed to run_as_uid:run_as_gid, so inetd-mode instances running as
 * that user can open it too.
 * Calling it again replaces the file and forgets every lock this process
 * holds: do that only with no mailbox open, or in a fork()ed child before
 * it opens one (the child would otherwise share its parent's lock owner,
 * the open file description, and its table).
 * false with a reason in err (not naming the path: the caller does).
 */
bool store_lock_file_open(const char *path, uid_t run_as_uid,
    gid_t run_as_gid, char *err, size_t errsz);

/*
 * The byte of the lock file that stands for mailbox (dev, ino): a fixed
 * 64-bit mix (no seed, no per-process state) below 2^62.  It must never
 * change, or two versions of posuto running at once stop excluding each
 * other.
 */
uint64_t store_lock_offset(dev_t dev, ino_t ino);

/*
 * Takes the session lock of mailbox (dev, ino), without waiting:
 * STORE_IN_USE if this process or another holds it (or, 2^-62 odds,
 * another mailbox of this process maps to the same byte), STORE_TEMP on
 * an unexpected error.  err (if not NULL) gets a reason for the log.
 */
enum store_status store_lock_acquire(dev_t dev, ino_t ino, char *err,
    size_t errsz);

/* Releases a lock taken by store_lock_acquire(); no-op if not held. */
void store_lock_release(dev_t dev, ino_t ino);

#endif
