/*
 * store_cache.h - in-process cache of Maildir snapshots, so a warm login
 * reads no directory at all (never included
 * outside src/store/).
 *
 * An entry is keyed by path and stamped with the inode and mtime of new/
 * and cur/ taken *before* the scan that filled it.  Any delivery, move,
 * flag change or deletion changes a directory's mtime, so a matching
 * stamp means the listing is the same.  Because directory mtimes tick
 * coarsely, a snapshot is only kept if both mtimes are over a second
 * older than the scan (Dovecot's maildir sync reasons the same way).
 */
#ifndef POSUTO_STORE_CACHE_H
#define POSUTO_STORE_CACHE_H

#include <stdbool.h>
#include <time.h>

#include "store/store_int.h"

/* Bounds on what the cache holds (least recently used entries go
 * first).  Even a 200-message box costs a login a directory hash walk,
 * a sort and 200 name parses, so every size is worth keeping. */
#define STORE_CACHE_MAX_ENTRIES 1024
#define STORE_CACHE_MAX_BYTES ((size_t)256 << 20)

struct store_cache_stamp {
	dev_t dev[2];
	ino_t ino[2];
	struct timespec mtime[2];
	struct timespec taken;		/* CLOCK_REALTIME when stamped */
	bool valid;
};

/* Stamps mb's new/ and cur/ from dst, their fstat()s (by enum
 * store_dir) taken after their dirfds were opened. */
void store_cache_stamp(const struct store_fs *mb, const struct stat *dst,
    struct store_cache_stamp *st);
/* Fills mb's messages, pool and total from a matching entry, and *seen
 * with what the entry remembers of the drift state file. */
bool store_cache_fetch(struct store_fs *mb, const struct store_cache_stamp *st,
    struct store_drift_seen *seen);
/* Remembers the drift state file of mb's entry, if there is one. */
void store_cache_drift_seen(const struct store_fs *mb,
    const struct store_drift_seen *seen);
/* Remembers mb's snapshot (after a full scan stamped with st). */
void store_cache_save(const struct store_fs *mb,
    const struct store_cache_stamp *st);

/* Lookups that were answered from the cache, for tests and debugging. */
unsigned long store_cache_hits(void);

#endif
