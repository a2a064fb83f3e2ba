/*
 * store_int.h - the filesystem engine the directory drivers (maildir,
 * emldir) share; never included outside src/store/.  A driver fills the
 * message array in scan() (names, and sizes where it already knows
 * them), the engine (store_fs.c, store_size.c, store_index.c,
 * store_wire.c, store_lock.c, store_cache.c) sizes the rest, and the
 * driver's commit() applies the UPDATE state.  The engine never calls
 * the front door (store.c): its entry points are the store_fs_*()
 * functions the drivers put in their struct store_driver.
 */
#ifndef POSUTO_STORE_INT_H
#define POSUTO_STORE_INT_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/wire.h"
#include "store/store.h"
#include "store/store_driver.h"
#include "store/store_index.h"

/* Which directory fd of the mailbox a message file lives in. */
enum store_dir {
	STORE_DIR_ROOT = 0,	/* emldir: the user directory */
	STORE_DIR_NEW,		/* maildir new/ */
	STORE_DIR_CUR,		/* maildir cur/ */
	STORE_DIR_COUNT,
};

enum store_msg_flag {
	STORE_MSG_SIZED = 1 << 0,	/* wire_size is known */
	STORE_MSG_RAW = 1 << 1,		/* raw_size is known */
	STORE_MSG_WIRE_FORM = 1 << 2,	/* stored bytes == wire form */
	STORE_MSG_SEEN = 1 << 3,	/* mailbox_msg_mark_seen() was called */
	STORE_MSG_GONE = 1 << 4,	/* vanished while scanning: drop it */
	STORE_MSG_HASH = 1 << 5,	/* sizing must also hash (emldir UIDL) */
	STORE_MSG_FROM_INDEX = 1 << 6,	/* sizes came from the index */
	STORE_MSG_S_HINT = 1 << 7,	/* raw_size holds a ",S=" hint */
	STORE_MSG_W_HINT = 1 << 8,	/* wire_size holds a ",W=" hint */
	STORE_MSG_READ = 1 << 9,	/* read before this session (Maildir S) */
	STORE_MSG_MOVED = 1 << 10,	/* not where readdir saw it: find again */
	STORE_MSG_BAD = 1 << 11,	/* unreadable or refused when opened:
					 * listed, never served (bad_errno) */
};

/* 64 bytes: a 100k-message mailbox costs ~6.4 MB plus names. */
struct store_msg {
	uint32_t name_off;	/* file name in mb->pool (NUL-terminated) */
	uint32_t uidl_off;	/* UIDL in mb->pool, 0 = not set yet */
	uint64_t raw_size;	/* stored octets (STORE_MSG_RAW) */
	uint64_t wire_size;	/* STAT/LIST octets (STORE_MSG_SIZED) */
	uint64_t ino;
	uint64_t order;		/* primary sort key: delivery time / N */
	int64_t mtime_sec;	/* emldir identity check; 0 for maildir */
	uint32_t mtime_nsec;
	uint16_t key_len;	/* index key = name[0..key_len) */
	uint8_t dir;		/* enum store_dir */
	uint8_t pass;		/* which read of its directory saw it */
	uint16_t flags;		/* enum store_msg_flag */
	uint8_t bad_errno;	/* STORE_MSG_BAD: why (EPERM: not the owner's) */
};

struct store_fs;
struct store_fs_deliver_ops;

/* The wire cache (store_wire.c). */
/* Copies being built or queued (one background thread builds them). */
#define STORE_WIRE_MAX_JOBS	2
enum store_wire_state {
	STORE_WIRE_NONE = 0,	/* not wanted: small, wire form, cache off,
				 * first download */
	STORE_WIRE_MISSING,	/* wanted, not there (or stale) */
	STORE_WIRE_CACHED,	/* wire_fd holds a valid copy */
	STORE_WIRE_SELF,	/* the delivery found the file in wire form */
};

struct store_fs_reader {
	struct msg_reader pub;		/* first: the front door's handle */
	int fd;
	uint32_t idx;
	uint64_t raw_size;		/* st_size at open: where reading ends */
	uint64_t done;			/* bytes msg_reader_read() returned */
	bool wire_form;			/* fd itself is the wire form */
	enum store_wire_state wire;
	int wire_fd;			/* STORE_WIRE_CACHED: the copy */
	uint64_t wire_len;		/* its body length (dot-stuffed) */
	struct stat src;		/* fd's identity when opened */
	struct stat wire_st;		/* wire_fd's when opened */
};

struct store_ops {
	const char *name;
	/* Opens the directories scan() reads (NULL: none besides the root). */
	bool (*open_dirs)(struct store_fs *mb, char *err, size_t errsz);
	/* Big snapshots may be kept in the warm cache (store_cache.h). */
	bool cacheable;
	/* scan() and relocate() set STORE_MSG_READ; false: the format
	 * records no such thing. */
	bool read_flags;
	/* Fills mb->msgs with the messages present now, sorted in POP3
	 * order (store_sort()), without duplicates. */
	enum store_status (*scan)(struct store_fs *mb, char *err, size_t errsz);
	/* The order of scan() on index keys (the index is written in it). */
	int (*key_cmp)(const char *a, size_t alen, const char *b, size_t blen);
	/* May this index entry stand for message m (same file)? */
	bool (*index_match)(const struct store_msg *m,
	    const struct store_index_entry *e);
	/* After sizing: sets every message's UIDL. */
	void (*finish)(struct store_fs *mb);
	/* Checks that the opened file is still the scanned message. */
	bool (*same_file)(const struct store_fs *mb, uint32_t idx,
	    const struct stat *st);
	/* The file of idx is gone from where it was scanned: find it again
	 * (Maildir: another client moved it new/ -> cur/ or changed its
	 * flags) and update the message; false if it is really gone.
	 * NULL when files never move. */
	bool (*relocate)(struct store_fs *mb, uint32_t idx);
	/* The same for the n messages idx[] flagged STORE_MSG_MOVED, in one
	 * read of the directories: clears the flag of those found. */
	void (*relocate_many)(struct store_fs *mb, const uint32_t *idx,
	    uint32_t n);
	enum store_status (*commit)(struct store_fs *mb, const uint8_t *deleted,
	    uint32_t *n_deleted_r);
	/* False if commit() has something to do for message m even when it
	 * is neither deleted nor seen (Maildir: it is still in new/).  NULL:
	 * nothing. */
	bool (*msg_settled)(const struct store_msg *m);
	/* How a message is delivered (store_fs_delivery). */
	const struct store_fs_deliver_ops *deliver;
	uint32_t index_kind;	/* STORE_INDEX_KIND_* */
};

struct store_fs {
	struct mailbox pub;		/* first: the front door's handle */
	const struct store_ops *ops;
	char *path;
	int dirfd[STORE_DIR_COUNT];	/* -1 when absent or parked */
	/* Directories closed after the scan, the root too: an idle session
	 * then holds just its socket (the lock costs no fd, store_lock.h).
	 * store_dirfd() reopens them. */
	unsigned parked;		/* bit per enum store_dir */
	bool locked;			/* holds the session lock (store_lock.h) */
	/* The drift state's header, read by the open while it had the root
	 * (store_drift_preread) so that the check at the login need not
	 * reopen the root by its path: that cost more than the check. */
	unsigned char drift_hdr[64];
	bool drift_hdr_read;
	dev_t root_dev;			/* the root's identity: the lock's key, */
	ino_t root_ino;			/* checked again at each reopen */
	/* Owner of each directory: a message file must be its directory
	 * owner's (store_check_dirs()). */
	uid_t dir_uid[STORE_DIR_COUNT];
	bool noatime;			/* messages opened with O_NOATIME */
	struct store_msg *msgs;
	uint32_t count, cap;
	uint64_t total;
	char *pool;			/* names and UIDLs; offset 0 unused */
	size_t pool_len, pool_cap;
	struct store_index *index;	/* loaded index, freed after open */
	unsigned char (*hashes)[16];	/* emldir content digests, by msg */
	uint32_t index_hits;		/* messages sized from the index */
	bool index_dirty;		/* rewrite the index before returning */
	char *user;			/* for the UIDL compatibility settings */
	struct store_compat *compat;	/* another server's UIDLs (store_compat.c) */
	/* a warm open (store_cache.c) of a mailbox whose UIDLs are pinned:
	 * an index written from it keeps the pins */
	bool compat_pinned;
	/* The UIDL-drift hash of this snapshot (store_drift.c), kept with
	 * it in the warm cache so a warm login does not recompute it. */
	uint64_t drift_hash;
	uint32_t drift_tracked;
	bool drift_hashed;
	/* For store_fs_commit_needed() without a walk over every message:
	 * some message was marked seen; and, from a warm open, whether every
	 * message was settled (msg_settled) when the snapshot was cached. */
	bool any_seen;
	bool settled_known, settled_all;
};

/* mailbox_open_view() is opening on this thread: take no lock. */
extern _Thread_local bool store_open_view;
extern const struct store_ops store_maildir_ops;
extern const struct store_ops store_emldir_ops;

static inline struct store_fs *
store_fs_of(struct mailbox *mb)
{
	return (struct store_fs *)(void *)mb;
}

static inline const struct store_fs *
store_fs_cof(const struct mailbox *mb)
{
	return (const struct store_fs *)(const void *)mb;
}

/* The engine's struct store_driver entries (store_fs.c); every one takes
 * a handle of a driver whose fs is set. */
enum store_status store_fs_open(const struct store_driver *drv,
    const char *path, const char *user, struct mailbox **mb_r, char *err,
    size_t errsz);
uint32_t store_fs_count(const struct mailbox *mb);
uint64_t store_fs_msg_size(const struct mailbox *mb, uint32_t idx);
const char *store_fs_msg_uidl(const struct mailbox *mb, uint32_t idx);
uint64_t store_fs_total_size(const struct mailbox *mb);
bool store_fs_msg_size_is_hint(const struct mailbox *mb, uint32_t idx);
bool store_fs_msg_unchanged(struct msg_reader *r);
void store_fs_mark_seen(struct mailbox *mb, uint32_t idx);
bool store_fs_commit_needed(const struct mailbox *mb, const uint8_t *deleted);
enum store_status store_fs_commit(struct mailbox *mb, const uint8_t *deleted,
    uint32_t *n_deleted_r);
void store_fs_close(struct mailbox *mb);
enum store_status store_fs_msg_open(struct mailbox *mb, uint32_t idx,
    struct msg_reader **r_r);
ssize_t store_fs_msg_read(struct msg_reader *r, void *buf, size_t len);
int store_fs_msg_wire_fd(struct msg_reader *r, off_t *off_r, off_t *len_r);
struct store_wire_job *store_fs_msg_wire_job(struct mailbox *mb,
    struct msg_reader *r);
void store_fs_msg_close(struct msg_reader *r);

/* The snapshot entries but open, for struct store_driver initialisers. */
#define STORE_FS_DRIVER_CALLS \
	.count = store_fs_count, \
	.msg_size = store_fs_msg_size, .msg_uidl = store_fs_msg_uidl, \
	.total_size = store_fs_total_size, .mark_seen = store_fs_mark_seen, \
	.msg_size_is_hint = store_fs_msg_size_is_hint, \
	.msg_arrival = store_fs_msg_arrival, \
	.msg_unchanged = store_fs_msg_unchanged, \
	.commit_needed = store_fs_commit_needed, .commit = store_fs_commit, \
	.close = store_fs_close, \
	.msg_open = store_fs_msg_open, .msg_read = store_fs_msg_read, \
	.msg_wire_fd = store_fs_msg_wire_fd, \
	.msg_wire_job = store_fs_msg_wire_job, \
	.msg_close = store_fs_msg_close

/* True if path is a directory holding cur/, new/ and tmp/ directories. */
bool store_fs_is_maildir(const char *path);
/* check-config of the directory at path, read as Maildir or not
 * (store_check.c). */
unsigned store_fs_check_dir(const char *user, const char *path,
    bool maildir, FILE *out);

/*
 * Deliveries (store_fs_deliver.c).  The engine writes the message into
 * a file in the driver's staging directory, counts its sizes and syncs
 * it; the driver names it and makes it visible.
 */
struct store_fs_delivery {
	struct store_delivery pub;	/* first: the front door's handle */
	const struct store_fs_deliver_ops *ops;
	char *path;			/* the mailbox root */
	int root;			/* its fd */
	int stage;			/* dir fd the tmp file is in */
	int fd;				/* the tmp file, -1 once closed */
	char tmp[128];			/* its name in stage */
	struct wire_size ws;		/* sizes and form of what was written */
	bool failed;
	/* store_deliver_begin_keep(): the name the UIDL asks for, else
	 * NULL; the arrival time for the file's mtime (0: now) */
	char *keep_uidl;
	int64_t keep_arrival;
};

struct store_fs_deliver_ops {
	/* Creates the mailbox below root if needed; opens d->stage and
	 * creates d->fd there under a unique name in d->tmp. */
	enum store_status (*prepare)(struct store_fs_delivery *d, char *err,
	    size_t errsz);
	/* The tmp file is complete and synced: makes it visible under its
	 * final name (never replacing a file), syncs the directory, writes
	 * the name into id. */
	enum store_status (*publish)(struct store_fs_delivery *d, char *id,
	    size_t idsz);
	/* NULL: the driver cannot name a message after a given UIDL; else
	 * false (why_r) for a UIDL it cannot hold */
	bool (*keep_ok)(const char *uidl, const char **why_r);
	/* The published name up to its first ':' is the message's key: it
	 * gets its wire cache copy at delivery (store_wire_deliver()). */
	bool wire_copy;
};

enum store_status store_fs_deliver_begin(const struct store_driver *drv,
    const char *path, const char *user, struct store_delivery **d_r,
    char *err, size_t errsz);
enum store_status store_fs_deliver_write(struct store_delivery *d,
    const void *buf, size_t len);
enum store_status store_fs_deliver_commit(struct store_delivery *d, char *id,
    size_t idsz);
void store_fs_deliver_abort(struct store_delivery *d);
enum store_status store_fs_deliver_begin_keep(const struct store_driver *drv,
    const char *path, const char *user, const struct store_keep *keep,
    struct store_delivery **d_r, char *err, size_t errsz);
int64_t store_fs_msg_arrival(const struct mailbox *mb, uint32_t idx);
/* The store_status of a failed write/sync/rename errno: no space, quota
 * or I/O errors may pass (STORE_TEMP), the rest will not. */
enum store_status store_fs_errno_status(int e);
/* Unique file name part: "<sec>.M<usec>P<pid>Q<n>.<host>" (maildir(5)). */
void store_fs_unique(char *buf, size_t bufsz);
/* Creates directory name below dirfd (or path when dirfd is AT_FDCWD),
 * mode 0700; an existing directory is fine. */
bool store_fs_mkdir(int dirfd, const char *name);

#define STORE_FS_DELIVERY_CALLS \
	.deliver_begin = store_fs_deliver_begin, \
	.deliver_write = store_fs_deliver_write, \
	.deliver_commit = store_fs_deliver_commit, \
	.deliver_abort = store_fs_deliver_abort, \
	.deliver_begin_keep = store_fs_deliver_begin_keep

/* Formats a reason into err[errsz] for the caller's log (NULL: none). */
void store_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends n bytes plus a NUL to the pool; returns the offset. */
uint32_t store_pool_add(struct store_fs *mb, const char *s, size_t n);
static inline const char *
store_pool_str(const struct store_fs *mb, uint32_t off)
{
	return mb->pool + off;
}
/* Appends a zeroed message and returns it (pointer valid until next add);
 * NULL once the mailbox exceeds MAILBOX_MAX_MESSAGES. */
struct store_msg *store_msg_add(struct store_fs *mb);
/* Sorts mb->msgs: by order, then key2(m) (NULL = none), then cmp; key2
 * must agree with cmp, it only spares most comparisons a name lookup. */
void store_sort(struct store_fs *mb,
    uint64_t (*key2)(const struct store_fs *mb, const struct store_msg *m),
    int (*cmp)(const struct store_fs *mb, const struct store_msg *a,
    const struct store_msg *b));
/* Expected message count (from the index) to size arrays up front. */
void store_reserve(struct store_fs *mb, uint32_t n);

/* The cached copy of message idx, if valid for the file described by
 * src: *fd_r, its fstat() and its body length.  Cheap (one open) and only
 * tried for messages the cache is for. */
enum store_wire_state store_wire_lookup(const struct store_fs *mb,
    uint32_t idx, const struct stat *src, int *fd_r, struct stat *st_r,
    uint64_t *len_r);
/* NULL when enough builds are under way. */
struct store_wire_job *store_wire_job_new(const struct store_fs *mb,
    uint32_t idx, int src_fd, const struct stat *src);
/* At delivery, the message file src_fd (synced, under its final name key
 * in mailbox) gets its copy, if the cache is for it: a converted one, or
 * when ws says its bytes are the wire form, a trailer saying so.  Never
 * fails the delivery: a copy that cannot be made is only a slower first
 * download. */
void store_wire_deliver(const char *mailbox, const char *key, size_t key_len,
    int src_fd, const struct wire_size *ws);
/* Would a delivery of this size get a copy?  (Spares the reopen.) */
bool store_wire_deliver_wanted(const struct wire_size *ws);
/* Removes copies of messages not in the snapshot or marked in deleted
 * (NULL = none), and builds abandoned long ago. */
void store_wire_sweep(struct store_fs *mb, const uint8_t *deleted);

/* errno for "exists but is not a regular file" (Linux-only value that
 * open/read never return for regular files). */
#define STORE_ENOTREG	EMEDIUMTYPE

/* openat() with O_NOATIME when noatime, and without it where the
 * kernel refuses it (a file of another owner). */
int store_open_noatime(int dirfd, const char *name, int flags, bool noatime);
/* Opens a file of the mailbox: O_RDONLY|O_NOFOLLOW|O_CLOEXEC, regular
 * files only (ELOOP/EINVAL-like errno otherwise); noatime as above. */
int store_openat_msg(int dirfd, const char *name, struct stat *st_r,
    bool noatime);

/*
 * Reads a directory through the mailbox's own fd with getdents64(): a
 * scan costs no dup/fdopendir/closedir, which matters on every login.
 */
struct store_dirscan {
	int fd;
	long len, pos;
	char buf[32768] __attribute__((aligned(8)));
};
/* Rewinds fd; false (errno set) on error. */
bool store_dirscan_start(struct store_dirscan *ds, int fd);
/* Next entry ("." and ".." included), NULL at the end or on error
 * (then errno != 0; the caller sets errno = 0 before the loop). */
const struct dirent64 *store_dirscan_next(struct store_dirscan *ds);

/* At commit (store_drift.c): counts a session for each message
 * RETRieved (STORE_MSG_SEEN) and, when removed, remembers the deleted
 * ones' UIDLs. */
void store_drift_commit(struct store_fs *mb, const uint8_t *deleted,
    bool removed);
/*
 * The drift state file as a session last read it: its identity (all that
 * a rewrite, by rename or in place, changes) and its header.  Kept with
 * the warm snapshot (store_cache.c), so that a warm login whose file is
 * unchanged costs one fstatat() instead of open, fstat, read and close.
 */
struct store_drift_seen {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	unsigned char hdr[64];
	bool valid;
};
/* A session's open, before it parks the root: reads the header the
 * login's check compares with (nothing when the detector is off); seen
 * (may be NULL) is what the warm cache remembers of the file. */
void store_drift_preread(struct store_fs *mb, int root,
    const struct store_drift_seen *seen);
/* Sets mb->drift_hash (after the scan, before the cache saves it). */
void store_drift_prehash(struct store_fs *mb);

/* The fd of directory d, reopening a parked one; -1 (errno set) if it is
 * absent or cannot be reopened.  A reopened root must be the directory
 * that was locked: another one at mb->path (the mailbox was replaced
 * under us) gives -1 with errno ESTALE. */
int store_dirfd(struct store_fs *mb, enum store_dir d);

/* Reads every message not yet sized (or, emldir, not yet digested);
 * messages gone since the scan get STORE_MSG_GONE, moved ones are found
 * again (relocate_many), unreadable ones or files that are not their
 * directory owner's get STORE_MSG_BAD (store_size.c).  Fails only when
 * the mailbox as a whole cannot be read (descriptors, memory). */
enum store_status store_size_pending(struct store_fs *mb, char *err,
    size_t errsz);

/* True if a message file with this fstat() may be served from directory
 * d: it belongs to the directory's owner (a file of another user, e.g. a
 * hard link to someone else's message, is never sent). */
bool store_owner_ok(const struct store_fs *mb, enum store_dir d,
    const struct stat *st);

/* fsync() of a directory fd; logs on failure. */
bool store_fsync_dir(int fd, const char *what);

/*
 * UIDL compatibility with the server that used the Maildir before
 * (store_compat.c, uidl_compat.h).  store_compat_maildir_scan() runs at
 * the end of the Maildir scan: decides the source (config, then the
 * mailbox's ".posuto-uidl" record, then detection), reads that server's
 * list and gives unsized messages its sizes as hints.  finish() then
 * calls store_compat_maildir_uidls(): the old server's UIDL where it has
 * one and it is RFC 1939-clean and unique, posuto's own otherwise.
 */
#define STORE_COMPAT_STATE	".posuto-uidl"
struct store_compat;
void store_compat_maildir_scan(struct store_fs *mb);
void store_compat_maildir_uidls(struct store_fs *mb);
void store_compat_free(struct store_compat **c);
/* True if the index must pin every message's UIDL (store_index_build). */
bool store_compat_pins(const struct store_fs *mb);
/* The configured (or forced: true) source for user's mailbox (mbox). */
bool store_compat_source_for(const char *user, int *src_r);
void store_fs_uidl_source(const struct mailbox *mb, char *buf, size_t bufsz);
const char *store_fs_uidl_status(const struct mailbox *mb, uint32_t idx,
    const char **old_r);

/* Writes "H" + 32 hex digits of SHA-256(data) into out (34 bytes). */
void store_hash_uidl(const void *data, size_t len, char prefix, char *out);
/* True if s[0..len) is a valid RFC 1939 unique-id (1..70 of 0x21..0x7E). */
bool store_uidl_valid(const char *s, size_t len);

#endif
