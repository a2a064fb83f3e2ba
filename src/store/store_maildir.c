/*
 * store_maildir.c - Maildir (maildir(5)) as Postfix, qmail and Dovecot
 * write it: messages in new/ and cur/, tmp/ never read.
 *
 * Order: arrival order as far as the names tell (maildir_name_cmp():
 * delivery time, then the microseconds or sequence number the MTA wrote,
 * then the name), so message 1 is the oldest and the numbering is the
 * same in every session, cold or warm, as long as the set is the same.
 * UIDL: the unique part (everything before ':'), which maildir(5)
 * guarantees unique and which survives new/ -> cur/ moves and flag
 * changes; if it is not a valid RFC 1939 unique-id (over 70 octets, or
 * bytes outside 0x21..0x7E) it is "H" + 32 hex digits of its SHA-256.
 * Sizes: index entry (same unique part and inode, S= hint agrees), else
 * the ",W=" hint, else reading the file.  ",S=" alone is the stored size,
 * which equals the wire size only for CRLF files, so it is not used as
 * one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/maildir_name.h"
#include "store/store_index.h"
#include "store/store_int.h"

static const char *const maildir_subdir[STORE_DIR_COUNT] = {
	[STORE_DIR_NEW] = "new",
	[STORE_DIR_CUR] = "cur",
};

/* Opens new/ or cur/; a missing one is empty (-1), not an error. */
static bool
maildir_open_sub(struct store_fs *mb, enum store_dir d, char *err,
    size_t errsz)
{
	int fd = openat(mb->dirfd[STORE_DIR_ROOT], maildir_subdir[d],
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1 && errno != ENOENT) {
		if (err != NULL)
			(void)snprintf(err, errsz, "cannot open %s/%s: %s",
			    mb->path, maildir_subdir[d], strerror(errno));
		return false;
	}
	mb->dirfd[d] = fd;
	return true;
}

/* Regular file check without following symlinks; d_type when it can. */
static bool
maildir_is_reg(int dirfd, const struct dirent64 *de)
{
	struct stat st;

	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

/* Reads of one directory before its listing counts as complete anyway
 * (another client renaming files in it the whole time). */
#define MAILDIR_READ_PASSES	4

/*
 * True if nothing was renamed into, out of or within a directory between
 * two fstat()s around a read of it that started at t0.  The directory's
 * ctime must be unchanged and older than t0 by more than the kernel's
 * timestamp granularity (a jiffy; a second on filesystems that store no
 * sub-second part), or a change during the read could have left the
 * same stamp.
 */
static bool
maildir_dir_settled(const struct stat *a, const struct stat *b,
    const struct timespec *t0)
{
	int64_t age, margin;

	if (a->st_ino != b->st_ino ||
	    a->st_ctim.tv_sec != b->st_ctim.tv_sec ||
	    a->st_ctim.tv_nsec != b->st_ctim.tv_nsec ||
	    a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
	    a->st_mtim.tv_nsec != b->st_mtim.tv_nsec)
		return false;
	margin = a->st_ctim.tv_nsec == 0 ? 1100000000 : 20000000;
	age = ((int64_t)t0->tv_sec - (int64_t)a->st_ctim.tv_sec) * 1000000000 +
	    ((int64_t)t0->tv_nsec - (int64_t)a->st_ctim.tv_nsec);
	return age > margin;
}

/*
 * Calls fn for every message name in directory fd.  One readdir can miss
 * a file renamed within the directory while it runs (the old name not
 * reached yet, the new one already passed), so a read during which the
 * directory changed is repeated, up to MAILDIR_READ_PASSES reads; fn gets
 * the pass number and returns false to stop early.  False (errno set) if
 * the directory cannot be read.
 */
static bool
maildir_walk(struct store_fs *mb, int fd,
    bool (*fn)(struct store_fs *mb, void *arg, const struct dirent64 *de,
    size_t len, const struct maildir_name *mn, unsigned pass), void *arg)
{
	struct store_dirscan *ds = xmalloc(sizeof(*ds));
	bool ok = true, more = true;
	unsigned pass;

	for (pass = 0; more && pass < MAILDIR_READ_PASSES; pass++) {
		const struct dirent64 *de;
		struct stat before, after;
		struct timespec t0;

		(void)clock_gettime(CLOCK_REALTIME, &t0);
		if (fstat(fd, &before) == -1 || !store_dirscan_start(ds, fd)) {
			ok = false;
			break;
		}
		errno = 0;
		while (more && (de = store_dirscan_next(ds)) != NULL) {
			struct maildir_name mn;
			size_t len = strlen(de->d_name);

			if (maildir_name_parse(de->d_name, len, &mn) &&
			    mn.unique_len <= UINT16_MAX &&
			    maildir_is_reg(fd, de))
				more = fn(mb, arg, de, len, &mn, pass);
			errno = 0;
		}
		if (errno != 0 || fstat(fd, &after) == -1) {
			ok = false;
			break;
		}
		if (maildir_dir_settled(&before, &after, &t0))
			break;
	}
	free(ds);
	return ok;
}

/*
 * Open-addressing set of message indexes keyed by name (scan: the names
 * a directory pass already gave) or by unique part (relocation).
 */
struct maildir_set {
	uint32_t *slot;		/* message index + 1; 0 = empty */
	size_t mask;
	size_t n;
	bool by_unique;
};

static uint64_t
maildir_hash(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	while (n-- > 0)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static size_t
maildir_set_keylen(const struct store_fs *mb, const struct maildir_set *set,
    uint32_t idx)
{
	const struct store_msg *m = &mb->msgs[idx];

	return set->by_unique ? m->key_len :
	    strlen(store_pool_str(mb, m->name_off));
}

/* The slot holding key s[0..n), or the empty slot where it would go. */
static uint32_t *
maildir_set_find(const struct store_fs *mb, const struct maildir_set *set,
    const char *s, size_t n)
{
	size_t i = (size_t)maildir_hash(s, n) & set->mask;

	for (;; i = (i + 1) & set->mask) {
		uint32_t v = set->slot[i];

		if (v == 0 || (maildir_set_keylen(mb, set, v - 1) == n &&
		    memcmp(store_pool_str(mb, mb->msgs[v - 1].name_off), s,
		    n) == 0))
			return &set->slot[i];
	}
}

static void
maildir_set_add(const struct store_fs *mb, struct maildir_set *set,
    uint32_t idx)
{
	uint32_t *sl;

	if ((set->n + 1) * 2 > set->mask + 1) {
		struct maildir_set big = { NULL, set->mask * 2 + 1, 0,
		    set->by_unique };

		big.slot = xcalloc(big.mask + 1, sizeof(*big.slot));
		for (size_t i = 0; i <= set->mask; i++)
			if (set->slot[i] != 0)
				maildir_set_add(mb, &big, set->slot[i] - 1);
		free(set->slot);
		*set = big;
	}
	sl = maildir_set_find(mb, set, store_pool_str(mb,
	    mb->msgs[idx].name_off), maildir_set_keylen(mb, set, idx));
	if (*sl == 0) {
		*sl = idx + 1;
		set->n++;
	}
}

static void
maildir_set_init(struct maildir_set *set, size_t expect, bool by_unique)
{
	size_t cap = 64;

	while (cap < expect * 2)
		cap *= 2;
	set->slot = xcalloc(cap, sizeof(*set->slot));
	set->mask = cap - 1;
	set->n = 0;
	set->by_unique = by_unique;
}

struct maildir_scan_ctx {
	enum store_dir d;
	uint32_t first;		/* this directory's messages start here */
	struct maildir_set seen;	/* by name; built for pass 1 */
	bool too_many;
};

static bool
maildir_scan_one(struct store_fs *mb, void *arg, const struct dirent64 *de,
    size_t len, const struct maildir_name *mn, unsigned pass)
{
	struct maildir_scan_ctx *c = arg;
	struct store_msg *m;

	if (pass > 0) {
		/* a re-read adds only the names earlier reads missed */
		if (c->seen.slot == NULL) {
			maildir_set_init(&c->seen, mb->count - c->first, false);
			for (uint32_t i = c->first; i < mb->count; i++)
				maildir_set_add(mb, &c->seen, i);
		}
		if (*maildir_set_find(mb, &c->seen, de->d_name, len) != 0)
			return true;
	}
	if ((m = store_msg_add(mb)) == NULL) {
		c->too_many = true;
		return false;
	}
	m->name_off = store_pool_add(mb, de->d_name, len);
	m->key_len = (uint16_t)mn->unique_len;
	m->dir = (uint8_t)c->d;
	m->pass = (uint8_t)pass;
	m->ino = (uint64_t)de->d_ino;
	m->order = mn->time;
	if (maildir_name_has_flag(de->d_name, mn, 'S'))
		m->flags |= STORE_MSG_READ;
	if (mn->has_s) {
		m->raw_size = mn->s_size;
		m->flags |= STORE_MSG_S_HINT;
	}
	if (mn->has_w) {
		m->wire_size = mn->w_size;
		m->flags |= STORE_MSG_W_HINT;
	}
	if (pass > 0)
		maildir_set_add(mb, &c->seen, mb->count - 1);
	return true;
}

static enum store_status
maildir_scan_dir(struct store_fs *mb, enum store_dir d, char *err,
    size_t errsz)
{
	struct maildir_scan_ctx c = { d, mb->count, { NULL, 0, 0, false },
	    false };
	int fd = mb->dirfd[d];
	bool ok;

	if (fd == -1)
		return STORE_OK;
	ok = maildir_walk(mb, fd, maildir_scan_one, &c);
	free(c.seen.slot);
	if (c.too_many) {
		store_err(err, errsz, "too many messages in %s", mb->path);
		return STORE_PERM;
	}
	if (!ok) {
		store_err(err, errsz, "cannot read %s/%s: %s", mb->path,
		    maildir_subdir[d], strerror(errno));
		return STORE_TEMP;
	}
	return STORE_OK;
}

/* Same order as store_sort() + maildir_msg_cmp, on bare unique parts. */
static int
maildir_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	return maildir_name_cmp(a, alen, maildir_name_time(a, alen), b, blen,
	    maildir_name_time(b, blen));
}

static uint64_t
maildir_msg_key2(const struct store_fs *mb, const struct store_msg *m)
{
	return maildir_name_key2(store_pool_str(mb, m->name_off), m->key_len);
}

static int
maildir_msg_cmp(const struct store_fs *mb, const struct store_msg *x,
    const struct store_msg *y)
{
	int c;

	c = maildir_name_cmp(store_pool_str(mb, x->name_off), x->key_len,
	    x->order, store_pool_str(mb, y->name_off), y->key_len, y->order);
	if (c != 0)
		return c;
	/* the same unique part twice: cur/ first, then the latest read of
	 * the directory (the file's current name), so dedup keeps it */
	if (x->dir != y->dir)
		return x->dir > y->dir ? -1 : 1;
	if (x->pass != y->pass)
		return x->pass > y->pass ? -1 : 1;
	return strcmp(store_pool_str(mb, x->name_off),
	    store_pool_str(mb, y->name_off));
}

static bool
maildir_index_match(const struct store_msg *m,
    const struct store_index_entry *e)
{
	/* maildir files are never rewritten: same name and inode is the
	 * same message; d_ino came free with readdir, so this costs no
	 * stat().  An S= hint must agree too. */
	return e->ino == m->ino &&
	    ((e->flags & STORE_INDEX_F_UIDL_ONLY) ||
	    !(m->flags & STORE_MSG_S_HINT) || m->raw_size == e->raw_size);
}

static bool
maildir_same_unique(const struct store_fs *mb, const struct store_msg *x,
    const struct store_msg *y)
{
	return x->key_len == y->key_len &&
	    memcmp(store_pool_str(mb, x->name_off),
	    store_pool_str(mb, y->name_off), x->key_len) == 0;
}

static enum store_status
maildir_scan(struct store_fs *mb, char *err, size_t errsz)
{
	enum store_status st;
	uint32_t i, j;

	/* new/ before cur/: a file another client moves between the two
	 * readdirs is seen twice (and deduplicated), never missed */
	if ((st = maildir_scan_dir(mb, STORE_DIR_NEW, err, errsz)) !=
	    STORE_OK ||
	    (st = maildir_scan_dir(mb, STORE_DIR_CUR, err, errsz)) != STORE_OK)
		return st;
	store_sort(mb, maildir_msg_key2, maildir_msg_cmp);
	/* one unique part, one message: a UIDL must never repeat */
	for (i = 0, j = 0; i < mb->count; i++) {
		if (j > 0 && maildir_same_unique(mb, &mb->msgs[j - 1],
		    &mb->msgs[i]))
			continue;
		mb->msgs[j++] = mb->msgs[i];
	}
	mb->count = j;
	store_compat_maildir_scan(mb);
	return STORE_OK;
}

static bool
maildir_open_dirs(struct store_fs *mb, char *err, size_t errsz)
{
	return maildir_open_sub(mb, STORE_DIR_NEW, err, errsz) &&
	    maildir_open_sub(mb, STORE_DIR_CUR, err, errsz);
}

/* UIDLs: the previous server's where it left them (store_compat.c), else
 * posuto's own from the unique part. */
static void
maildir_finish(struct store_fs *mb)
{
	store_compat_maildir_uidls(mb);
}

struct maildir_reloc_ctx {
	enum store_dir d;
	struct maildir_set want;	/* by unique part */
	uint32_t left;			/* not found in cur/ yet */
};

static bool
maildir_reloc_one(struct store_fs *mb, void *arg, const struct dirent64 *de,
    size_t len, const struct maildir_name *mn, unsigned pass)
{
	struct maildir_reloc_ctx *c = arg;
	uint32_t v = *maildir_set_find(mb, &c->want, de->d_name,
	    mn->unique_len);
	struct store_msg *m;

	(void)pass;
	if (v == 0)
		return true;
	m = &mb->msgs[v - 1];
	/* cur/ wins over new/ (a move in progress by link + unlink); in
	 * cur/ a later sighting is the current name */
	if (c->d == STORE_DIR_NEW && !(m->flags & STORE_MSG_MOVED))
		return true;
	if (m->flags & STORE_MSG_MOVED) {
		m->flags &= (uint16_t)~STORE_MSG_MOVED;
		if (c->d == STORE_DIR_CUR)
			c->left--;
	}
	m->name_off = store_pool_add(mb, de->d_name, len);
	m->dir = (uint8_t)c->d;
	m->ino = (uint64_t)de->d_ino;
	if (maildir_name_has_flag(de->d_name, mn, 'S'))
		m->flags |= STORE_MSG_READ;
	else
		m->flags &= (uint16_t)~STORE_MSG_READ;
	/* all found in cur/: new/ need not be read (a re-read of cur/
	 * would only refresh names) */
	return c->left > 0 || c->d == STORE_DIR_NEW;
}

/* Finds the files of msgs idx[0..n) (flagged STORE_MSG_MOVED) again by
 * their unique parts, in cur/ then new/; clears the flag of those found. */
static void
maildir_relocate_many(struct store_fs *mb, const uint32_t *idx, uint32_t n)
{
	static const enum store_dir order[] = { STORE_DIR_CUR, STORE_DIR_NEW };
	struct maildir_reloc_ctx c;
	uint32_t i;

	maildir_set_init(&c.want, n, true);
	for (i = 0; i < n; i++)
		maildir_set_add(mb, &c.want, idx[i]);
	c.left = n;
	for (i = 0; i < 2 && c.left > 0; i++) {
		int fd = store_dirfd(mb, order[i]);

		c.d = order[i];
		if (fd != -1)
			(void)maildir_walk(mb, fd, maildir_reloc_one, &c);
	}
	free(c.want.slot);
}

/* Looks for the unique part of msg idx in cur/ then new/. */
static bool
maildir_relocate(struct store_fs *mb, uint32_t idx)
{
	struct store_msg *m = &mb->msgs[idx];
	bool found;

	m->flags |= STORE_MSG_MOVED;
	maildir_relocate_many(mb, &idx, 1);
	found = !(m->flags & STORE_MSG_MOVED);
	m->flags &= (uint16_t)~STORE_MSG_MOVED;
	return found;
}

/* rename(2) that never replaces an existing message. */
static int
maildir_rename_noreplace(int ofd, const char *old, int nfd, const char *new)
{
	if (renameat2(ofd, old, nfd, new, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* filesystem without RENAME_NOREPLACE: link + unlink, as maildir(5)
	 * delivery does */
	if (linkat(ofd, old, nfd, new, 0) == -1)
		return -1;
	if (unlinkat(ofd, old, 0) == -1 && errno != ENOENT)
		log_warn("store: cannot remove %s after linking it", old);
	return 0;
}

/* Moves a kept message to cur/ and/or adds the S flag. */
static bool
maildir_keep(struct store_fs *mb, uint32_t idx, bool *changed)
{
	struct store_msg *m = &mb->msgs[idx];
	bool seen = (m->flags & STORE_MSG_SEEN) != 0;
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		const char *name = store_pool_str(mb, m->name_off);
		struct maildir_name mn;
		char newname[512];

		if (!maildir_name_parse(name, strlen(name), &mn))
			return false;
		if (m->dir == STORE_DIR_CUR &&
		    (!seen || maildir_name_has_flag(name, &mn, 'S')))
			return true;
		if (maildir_name_with_flag(name, &mn, seen ? 'S' : 0, newname,
		    sizeof(newname)) == 0)
			return false;
		if (store_dirfd(mb, STORE_DIR_CUR) == -1) {
			int root = store_dirfd(mb, STORE_DIR_ROOT), fd;

			if (root == -1 || (mkdirat(root, "cur", 0700) == -1 &&
			    errno != EEXIST))
				return false;
			fd = openat(root, "cur",
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd == -1)
				return false;
			mb->dirfd[STORE_DIR_CUR] = fd;
			changed[STORE_DIR_ROOT] = true;
		}
		if (maildir_rename_noreplace(store_dirfd(mb, m->dir), name,
		    store_dirfd(mb, STORE_DIR_CUR), newname) == 0) {
			changed[m->dir] = true;
			changed[STORE_DIR_CUR] = true;
			m->name_off = store_pool_add(mb, newname,
			    strlen(newname));
			m->dir = STORE_DIR_CUR;
			return true;
		}
		if (errno != ENOENT) {
			log_warn("store: %s: cannot move %s to cur/", mb->path,
			    name);
			return false;
		}
		/* someone else moved or re-flagged it: find it and retry */
		if (!maildir_relocate(mb, idx))
			return true;	/* gone: nothing left to keep */
	}
	return false;
}

static enum store_status
maildir_commit(struct store_fs *mb, const uint8_t *deleted,
    uint32_t *n_deleted_r)
{
	enum store_status st = STORE_OK;
	bool changed[STORE_DIR_COUNT] = { false, false, false };
	uint32_t i;

	for (i = 0; i < mb->count; i++) {
		struct store_msg *m = &mb->msgs[i];

		if (deleted != NULL && (deleted[i / 8] & (1u << (i % 8)))) {
			if (unlinkat(store_dirfd(mb, m->dir),
			    store_pool_str(mb, m->name_off), 0) == 0 ||
			    (errno == ENOENT && (!maildir_relocate(mb, i) ||
			    unlinkat(store_dirfd(mb, m->dir),
			    store_pool_str(mb, m->name_off), 0) == 0 ||
			    errno == ENOENT))) {
				/* removed now, or already gone: either way
				 * the client's DELE is honoured */
				changed[m->dir] = true;
				(*n_deleted_r)++;
			} else {
				log_warn("store: %s: cannot delete %s",
				    mb->path, store_pool_str(mb, m->name_off));
				st = STORE_TEMP;
			}
			continue;
		}
		(void)maildir_keep(mb, i, changed);
	}
	for (i = 0; i < STORE_DIR_COUNT; i++)
		if (changed[i] && !store_fsync_dir(store_dirfd(mb, i),
		    mb->path) && st == STORE_OK)
			st = STORE_TEMP;
	return st;
}

/* A message still in new/ moves to cur/ at commit (RFC 1939 says
 * nothing, maildir(5) does: a reader takes it out of new/). */
static bool
maildir_msg_settled(const struct store_msg *m)
{
	return m->dir != STORE_DIR_NEW;
}

/* --- delivery (maildir(5): tmp/, then new/) --------------------------- */

/*
 * A missing Maildir is made beside its place, with tmp/, new/ and cur/,
 * then renamed in (never over anything): "auto:" on a concurrent first
 * delivery must never see the bare root, which is an empty emldir to
 * it, and file its message where no Maildir reader looks.  False only
 * if it could not be made at all; one made meanwhile by another is
 * fine (its parts are then made, EEXIST being fine, by the caller).
 */
static bool
maildir_create_whole(const char *path)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char unique[128], *stage;
	struct stat st;
	bool ok = true;
	int fd;

	if (stat(path, &st) == 0 || errno != ENOENT)
		return true;
	store_fs_unique(unique, sizeof(unique));
	stage = xasprintf("%s.posuto-new.%s", path, unique);
	if (!store_fs_mkdir(AT_FDCWD, stage)) {
		free(stage);
		return false;
	}
	fd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < 3 && fd != -1; i++)
		if (mkdirat(fd, subs[i], 0700) != 0)
			ok = false;
	if (fd != -1)
		(void)fsync(fd);
	if (fd == -1 || !ok ||
	    renameat2(AT_FDCWD, stage, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
		for (size_t i = 0; i < 3 && fd != -1; i++)
			(void)unlinkat(fd, subs[i], AT_REMOVEDIR);
		(void)rmdir(stage);
	}
	if (fd != -1)
		close(fd);
	free(stage);
	return true;
}

static enum store_status
maildir_deliver_prepare(struct store_fs_delivery *d, char *err, size_t errsz)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	struct stat st;

	/* the usual case, a Maildir that is there: 4 calls, not 8 */
	if ((d->root = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOCTTY)) != -1 &&
	    fstatat(d->root, "cur", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode) &&
	    fstatat(d->root, "new", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode) &&
	    (d->stage = openat(d->root, "tmp", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) != -1)
		goto made;
	if (d->root != -1)
		close(d->root);
	d->root = -1;
	/* MaildirGuard: the first delivery makes the mailbox */
	if (!maildir_create_whole(d->path) ||
	    !store_fs_mkdir(AT_FDCWD, d->path) ||
	    (d->root = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOCTTY)) == -1) {
		store_err(err, errsz, "cannot create %s: %s", d->path,
		    strerror(errno));
		return store_fs_errno_status(errno);
	}
	for (size_t i = 0; i < 3; i++)
		if (!store_fs_mkdir(d->root, subs[i])) {
			store_err(err, errsz, "cannot create %s/%s: %s",
			    d->path, subs[i], strerror(errno));
			return store_fs_errno_status(errno);
		}
	d->stage = openat(d->root, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (d->stage == -1) {
		store_err(err, errsz, "cannot open %s/tmp: %s", d->path,
		    strerror(errno));
		return store_fs_errno_status(errno);
	}
made:
	if (fstat(d->root, &st) == 0 && (st.st_mode & S_IWOTH)) {
		store_err(err, errsz, "%s is writable by every user: refused",
		    d->path);
		return STORE_PERM;
	}
	store_fs_unique(d->tmp, sizeof(d->tmp));
	d->fd = openat(d->stage, d->tmp, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (d->fd == -1) {
		store_err(err, errsz, "cannot create %s/tmp/%s: %s", d->path,
		    d->tmp, strerror(errno));
		return store_fs_errno_status(errno);
	}
	return STORE_OK;
}

static enum store_status
maildir_deliver_publish(struct store_fs_delivery *d, char *id, size_t idsz)
{
	char name[sizeof(d->tmp) + 48];
	const char *sub = "new";
	int n, newfd;

	if (d->keep_uidl != NULL) {
		/* the UIDL is the unique part (maildir_keep_ok); cur/, as a
		 * message a client has seen listed */
		sub = "cur";
		n = snprintf(name, sizeof(name), "%s:2,", d->keep_uidl);
	} else {
		/* sizes in the name spare the first reader the sizing read.
		 * W= is the LIST size (Dovecot's "virtual size": CRLF line
		 * ends, no dot-stuffing), so it is right for a file with dot
		 * lines too; that a file needs no stuffing is the wire
		 * cache's to say (store_wire_deliver()), not the name's */
		n = snprintf(name, sizeof(name), "%s,S=%llu,W=%llu", d->tmp,
		    (unsigned long long)d->ws.raw,
		    (unsigned long long)wire_size_final(&d->ws));
	}
	if (n < 0 || (size_t)n >= sizeof(name)) {
		errno = ENAMETOOLONG;
		return STORE_PERM;
	}
	newfd = openat(d->root, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (newfd == -1)
		return store_fs_errno_status(errno);
	/* never over a name that exists (it is not ours): a rename that
	 * refuses to replace, one directory update fewer than link + unlink;
	 * link where the filesystem has no RENAME_NOREPLACE */
	if (renameat2(d->stage, d->tmp, newfd, name, RENAME_NOREPLACE) == -1) {
		int e = errno;

		if ((e != EINVAL && e != ENOSYS) ||
		    linkat(d->stage, d->tmp, newfd, name, 0) == -1) {
			e = errno;
			close(newfd);
			errno = e;
			return store_fs_errno_status(e);
		}
		(void)unlinkat(d->stage, d->tmp, 0);
	}
	d->tmp[0] = '\0';
	/* the new entry is the directory's data: fdatasync writes it, and
	 * spares the directory's inode (mtime) when it did not grow, as
	 * Dovecot's fdatasync_path() does; one disk write fewer a message */
	if (fdatasync(newfd) == -1 && errno != EINVAL) {
		int e = errno;

		/* visible but maybe not durable: the caller must not
		 * acknowledge it, and a retry would duplicate it */
		log_warn("store: %s: fsync %s/", d->path, sub);
		(void)unlinkat(newfd, name, 0);
		close(newfd);
		errno = e;
		return store_fs_errno_status(e);
	}
	close(newfd);
	if (id != NULL && idsz > 0)
		(void)snprintf(id, idsz, "%s", name);
	return STORE_OK;
}

/* A UIDL kept by naming the file after it: posuto reads a Maildir
 * message's UIDL as its unique part, so that part must be all of it. */
static bool
maildir_keep_ok(const char *uidl, const char **why_r)
{
	struct maildir_name mn;
	size_t len = strlen(uidl);

	if (len == 0 || len > 70 || !maildir_name_parse(uidl, len, &mn) ||
	    mn.unique_len != len) {
		*why_r = "cannot be a Maildir file name (':', '/' or a "
		    "leading '.')";
		return false;
	}
	if (mn.has_s || mn.has_w) {
		/* ",S=" / ",W=" would be read as size hints */
		*why_r = "looks like a Maildir size hint (,S= or ,W=)";
		return false;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)uidl[i] < 0x21 ||
		    (unsigned char)uidl[i] > 0x7e) {
			*why_r = "is not an RFC 1939 unique-id";
			return false;
		}
	return true;
}

static const struct store_fs_deliver_ops maildir_deliver_ops = {
	.prepare = maildir_deliver_prepare,
	.publish = maildir_deliver_publish,
	.keep_ok = maildir_keep_ok,
	.wire_copy = true,
};

static unsigned
maildir_check(const struct store_driver *drv, const char *user,
    const char *path, FILE *out)
{
	(void)drv;
	return store_fs_check_dir(user, path, true, out);
}

const struct store_ops store_maildir_ops = {
	.name = "maildir",
	.open_dirs = maildir_open_dirs,
	.cacheable = true,
	.read_flags = true,
	.scan = maildir_scan,
	.key_cmp = maildir_key_cmp,
	.index_match = maildir_index_match,
	.finish = maildir_finish,
	.same_file = NULL,
	.relocate = maildir_relocate,
	.relocate_many = maildir_relocate_many,
	.commit = maildir_commit,
	.msg_settled = maildir_msg_settled,
	.deliver = &maildir_deliver_ops,
	.index_kind = STORE_INDEX_KIND_MAILDIR,
};

const struct store_driver store_driver_maildir = {
	.name = "maildir",
	.fs = &store_maildir_ops,
	.open = store_fs_open,
	STORE_FS_DRIVER_CALLS,
	.check = maildir_check,
	STORE_FS_DELIVERY_CALLS,
};
