/*
 * store_fs.c - the filesystem engine behind the directory drivers
 * (store_maildir.c, store_emldir.c): opening and locking a mailbox
 * directory, the snapshot, readers, commit (sizing: store_size.c).
 *
 * The lock (store_lock.h) is keyed by the root directory's (dev, ino) and
 * costs no descriptor, so once the scan is done every directory of the
 * mailbox is closed ("parked") and an idle session holds only its socket.
 * store_dirfd() reopens a directory when a command needs it, and checks
 * that the root it reopens by path is still the one it locked.  No file
 * of ours goes into the directories MTAs and other readers share, except
 * the index.
 *
 * A missing mailbox directory is an empty mailbox and takes no lock:
 * opening does not create directories, because the MTA creates them with
 * its own owner and mode on first delivery (as does ours,
 * store_fs_deliver.c), and a session over an empty snapshot can neither
 * delete nor move anything, so two of them cannot conflict.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/wire.h"
#include "lib/xmalloc.h"
#include "store/store_cache.h"
#include "store/store_index.h"
#include "store/store_int.h"
#include "store/store_lock.h"

void
store_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

static void store_park_dirs(struct store_fs *mb,
    const struct store_drift_seen *seen);

uint32_t
store_pool_add(struct store_fs *mb, const char *s, size_t n)
{
	size_t off;

	if (mb->pool_cap - mb->pool_len < n + 1) {
		size_t cap = mb->pool_cap ? mb->pool_cap : 4096;
		/* s may point into the pool itself (a UIDL copied from a
		 * name): find it again after the move */
		bool inside = mb->pool != NULL && s >= mb->pool &&
		    s < mb->pool + mb->pool_len;
		size_t s_off = inside ? (size_t)(s - mb->pool) : 0;

		while (cap - mb->pool_len < n + 1)
			cap *= 2;
		mb->pool = xreallocarray(mb->pool, cap, 1);
		mb->pool_cap = cap;
		if (inside)
			s = mb->pool + s_off;
	}
	if (mb->pool_len == 0)
		mb->pool[mb->pool_len++] = '\0';	/* offset 0 = unset */
	off = mb->pool_len;
	/* MAILBOX_MAX_MESSAGES names of at most 255 bytes stay far below */
	if (off + n + 1 > UINT32_MAX)
		fatalx("store: name pool overflow");
	memcpy(mb->pool + off, s, n);
	mb->pool[off + n] = '\0';
	mb->pool_len += n + 1;
	return (uint32_t)off;
}

struct store_msg *
store_msg_add(struct store_fs *mb)
{
	struct store_msg *m;

	if (mb->count >= MAILBOX_MAX_MESSAGES)
		return NULL;
	if (mb->count == mb->cap) {
		mb->cap = mb->cap ? mb->cap * 2 : 64;
		mb->msgs = xreallocarray(mb->msgs, mb->cap, sizeof(*mb->msgs));
	}
	m = &mb->msgs[mb->count++];
	memset(m, 0, sizeof(*m));
	return m;
}

void
store_reserve(struct store_fs *mb, uint32_t n)
{
	if (n <= mb->cap || n > MAILBOX_MAX_MESSAGES)
		return;
	n += n / 8 + 16;	/* room for a few new arrivals */
	mb->msgs = xreallocarray(mb->msgs, n, sizeof(*mb->msgs));
	mb->cap = n;
}

/* Gives back what the scan reserved and the pool's doubling left over: a
 * session keeps its snapshot as long as it stays connected, and an idle
 * one with ten messages used 1.4 KiB of the 5.8 KiB it held. */
static void
store_fit(struct store_fs *mb)
{
	if (mb->cap > mb->count) {
		mb->cap = mb->count ? mb->count : 1;
		mb->msgs = xreallocarray(mb->msgs, mb->cap, sizeof(*mb->msgs));
	}
	if (mb->pool_cap > mb->pool_len) {
		mb->pool = xreallocarray(mb->pool, mb->pool_len, 1);
		mb->pool_cap = mb->pool_len;
	}
}

struct store_sort_key {
	uint64_t order;
	uint64_t key2;
	uint32_t idx;
};

struct store_sort_ctx {
	const struct store_fs *mb;
	int (*cmp)(const struct store_fs *, const struct store_msg *,
	    const struct store_msg *);
};

static int
store_sort_cmp(const void *a, const void *b, void *arg)
{
	const struct store_sort_key *x = a, *y = b;
	const struct store_sort_ctx *c = arg;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	if (x->key2 != y->key2)
		return x->key2 < y->key2 ? -1 : 1;
	return c->cmp(c->mb, &c->mb->msgs[x->idx], &c->mb->msgs[y->idx]);
}

void
store_sort(struct store_fs *mb,
    uint64_t (*key2)(const struct store_fs *mb, const struct store_msg *m),
    int (*cmp)(const struct store_fs *mb, const struct store_msg *a,
    const struct store_msg *b))
{
	struct store_sort_ctx ctx = { mb, cmp };
	struct store_sort_key *keys;
	uint32_t i;

	if (mb->count < 2)
		return;
	/* sort small keys, not 56-byte messages, then permute once */
	keys = xreallocarray(NULL, mb->count, sizeof(*keys));
	for (i = 0; i < mb->count; i++) {
		keys[i].order = mb->msgs[i].order;
		keys[i].key2 = key2 != NULL ? key2(mb, &mb->msgs[i]) : 0;
		keys[i].idx = i;
	}
	qsort_r(keys, mb->count, sizeof(*keys), store_sort_cmp, &ctx);
	/* apply the permutation in place, cycle by cycle: a second 56-byte
	 * array would cost as much in page faults as the sort itself */
	for (i = 0; i < mb->count; i++) {
		struct store_msg tmp;
		uint32_t j = i, k;

		if (keys[i].idx == i || keys[i].idx == UINT32_MAX)
			continue;
		tmp = mb->msgs[i];
		for (;;) {
			k = keys[j].idx;
			keys[j].idx = UINT32_MAX;
			if (k == i) {
				mb->msgs[j] = tmp;
				break;
			}
			mb->msgs[j] = mb->msgs[k];
			j = k;
		}
	}
	free(keys);
}

/*
 * Merges the index (written in sort order) with the sorted messages in
 * one sequential pass.  An index in another order (damaged, foreign) only
 * yields misses, which are then read from disk.
 */
static void
store_index_apply(struct store_fs *mb)
{
	struct store_index_iter it;
	struct store_index_entry e;
	bool have;
	uint32_t i;

	store_index_iter_init(mb->index, &it);
	have = store_index_iter_next(&it, &e);
	for (i = 0; i < mb->count && have; i++) {
		struct store_msg *m = &mb->msgs[i];
		const char *key = store_pool_str(mb, m->name_off);
		int c = -1;

		while (have &&
		    (c = mb->ops->key_cmp(e.key, e.key_len, key, m->key_len)) <
		    0)
			have = store_index_iter_next(&it, &e);
		if (!have || c != 0 || !mb->ops->index_match(m, &e))
			continue;
		if (e.flags & STORE_INDEX_F_UIDL_ONLY) {
			/* a pinned UIDL, sizes unknown (store_compat.c) */
			if (e.uidl_len > 0)
				m->uidl_off = store_pool_add(mb, e.uidl,
				    e.uidl_len);
			mb->index_hits++;
			have = store_index_iter_next(&it, &e);
			continue;
		}
		m->raw_size = e.raw_size;
		m->wire_size = e.wire_size;
		m->flags |= STORE_MSG_SIZED | STORE_MSG_RAW |
		    STORE_MSG_FROM_INDEX;
		m->flags &= (uint16_t)~(STORE_MSG_S_HINT | STORE_MSG_W_HINT);
		if (e.flags & STORE_INDEX_F_WIRE_FORM)
			m->flags |= STORE_MSG_WIRE_FORM;
		if (e.uidl_len > 0) {
			m->uidl_off = store_pool_add(mb, e.uidl, e.uidl_len);
			m->flags &= (uint16_t)~STORE_MSG_HASH;
		}
		mb->index_hits++;
		have = store_index_iter_next(&it, &e);
	}
	/* what the index does not know: a ",W=" hint is a wire size */
	for (i = 0; i < mb->count; i++) {
		struct store_msg *m = &mb->msgs[i];

		if (!(m->flags & STORE_MSG_SIZED) &&
		    (m->flags & STORE_MSG_W_HINT))
			m->flags |= STORE_MSG_SIZED;
		/* an S= hint is not a measured size: sizing replaces it,
		 * and it is what LIST shows if the file cannot be read */
		if (!(m->flags & STORE_MSG_SIZED) &&
		    (m->flags & STORE_MSG_S_HINT))
			m->wire_size = m->raw_size;
		if (!(m->flags & STORE_MSG_RAW))
			m->raw_size = 0;
	}
}

int
store_open_noatime(int dirfd, const char *name, int flags, bool noatime)
{
	int fd;

	/* A message's first read would otherwise write its inode (relatime:
	 * an atime not newer than the mtime or the ctime, which every
	 * rename sets), one inode update per message downloaded, and
	 * nothing reads a message file's atime.  Refused (EPERM) for files
	 * of another owner: then opened as usual. */
	if (noatime) {
		fd = openat(dirfd, name, flags | O_NOATIME);
		if (fd != -1 || errno != EPERM)
			return fd;
	}
	return openat(dirfd, name, flags);
}

int
store_openat_msg(int dirfd, const char *name, struct stat *st_r,
    bool noatime)
{
	int fd;

	fd = store_open_noatime(dirfd, name, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC | O_NOCTTY | O_NONBLOCK, noatime);
	if (fd == -1)
		return -1;
	/* O_NONBLOCK only so that a FIFO planted under a message name
	 * cannot block open(); regular files ignore it. */
	if (fstat(fd, st_r) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st_r->st_mode)) {
		close(fd);
		errno = STORE_ENOTREG;
		return -1;
	}
	return fd;
}

bool
store_owner_ok(const struct store_fs *mb, enum store_dir d,
    const struct stat *st)
{
	return st->st_uid == mb->dir_uid[d];
}

/*
 * A directory of the mailbox that every user may write to is refused:
 * anyone on the host could delete or replace the user's messages or
 * plant new ones, so what it holds is not known to be the user's mail
 * (RELIABILITY.md: filesystem trust).  Records each owner for
 * store_owner_ok().
 */
static enum store_status
store_check_dirs(struct store_fs *mb, struct stat st[STORE_DIR_COUNT],
    char *err, size_t errsz)
{
	static const char *const what[STORE_DIR_COUNT] = {
		[STORE_DIR_ROOT] = "", [STORE_DIR_NEW] = "/new",
		[STORE_DIR_CUR] = "/cur",
	};
	uid_t euid;

	for (int d = STORE_DIR_ROOT; d < STORE_DIR_COUNT; d++) {
		if (mb->dirfd[d] == -1)
			continue;
		/* the root's is store_lock()'s, of the same fd */
		if (d != STORE_DIR_ROOT && fstat(mb->dirfd[d], &st[d]) == -1) {
			store_err(err, errsz, "cannot stat %s%s: %s", mb->path,
			    what[d], strerror(errno));
			return STORE_TEMP;
		}
		if (st[d].st_mode & S_IWOTH) {
			store_err(err, errsz, "%s%s is writable by every user "
			    "(mode %04o): refused; chmod o-w it", mb->path,
			    what[d], (unsigned)(st[d].st_mode & 07777));
			return STORE_PERM;
		}
		mb->dir_uid[d] = st[d].st_uid;
	}
	/* O_NOATIME needs the file's owner (or CAP_FOWNER), and only
	 * files of the directory's owner are served */
	euid = geteuid();
	mb->noatime = euid == 0 || euid == mb->dir_uid[STORE_DIR_ROOT];
	return STORE_OK;
}

bool
store_fsync_dir(int fd, const char *what)
{
	if (fd != -1 && fsync(fd) == -1 && errno != EINVAL) {
		log_warn("store: fsync %s", what);
		return false;
	}
	return true;
}

bool
store_uidl_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 70)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

void
store_hash_uidl(const void *data, size_t len, char prefix, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 16)
		fatalx("store: SHA-256 unavailable");
	out[0] = prefix;
	hex_encode(md, 16, out + 1);
}

/* Removes messages that vanished while the mailbox was being scanned. */
static void
store_drop_gone(struct store_fs *mb)
{
	uint32_t i, j = 0;

	for (i = 0; i < mb->count; i++)
		if (!(mb->msgs[i].flags & STORE_MSG_GONE)) {
			if (mb->hashes != NULL)
				memcpy(mb->hashes[j], mb->hashes[i],
				    sizeof(mb->hashes[j]));
			mb->msgs[j++] = mb->msgs[i];
		}
	mb->count = j;
}

/* --- open / close ----------------------------------------------------- */

static bool
store_is_subdir(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode);
}

/* st_r: the root's stat (store_check_dirs() reads it too). */
static enum store_status
store_lock(struct store_fs *mb, struct stat *st_r, char *err, size_t errsz)
{
	enum store_status ret;

	if (fstat(mb->dirfd[STORE_DIR_ROOT], st_r) == -1) {
		store_err(err, errsz, "cannot stat %s: %s", mb->path,
		    strerror(errno));
		return STORE_TEMP;
	}
	mb->root_dev = st_r->st_dev;
	mb->root_ino = st_r->st_ino;
	if (store_open_view)
		return STORE_OK;	/* a viewer: reads only, never locks */
	ret = store_lock_acquire(st_r->st_dev, st_r->st_ino, err, errsz);
	mb->locked = ret == STORE_OK;
	return ret;
}

static struct store_fs *
store_new(const char *path)
{
	struct store_fs *mb = xcalloc(1, sizeof(*mb));
	int i;

	mb->path = xstrdup(path);
	for (i = 0; i < STORE_DIR_COUNT; i++)
		mb->dirfd[i] = -1;
	(void)store_pool_add(mb, "", 0);
	return mb;
}

static bool
store_fd_is_maildir(int fd)
{
	return store_is_subdir(fd, "cur") && store_is_subdir(fd, "new") &&
	    store_is_subdir(fd, "tmp");
}

bool
store_fs_is_maildir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	bool yes;

	if (fd == -1)
		return false;
	yes = store_fd_is_maildir(fd);
	close(fd);
	return yes;
}

/*
 * Opens the root; *fd_r -1 and STORE_OK for a missing one (an empty
 * mailbox).  The root may be a symlink (/var/mail/u -> /srv/...): the
 * admin configured it.  Everything below it is opened without following.
 */
static enum store_status
store_open_root(const char *path, int *fd_r, char *err, size_t errsz)
{
	*fd_r = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	if (*fd_r != -1 || errno == ENOENT)
		return STORE_OK;
	store_err(err, errsz, "cannot open %s: %s", path, strerror(errno));
	return errno == ENOTDIR ? STORE_PERM : STORE_TEMP;
}

static enum store_status store_fs_open_fd(const struct store_driver *drv,
    const char *path, const char *user, int fd, struct mailbox **mb_r, char *err,
    size_t errsz);

enum store_status
store_fs_open(const struct store_driver *drv, const char *path,
    const char *user, struct mailbox **mb_r, char *err, size_t errsz)
{
	enum store_status st;
	int fd;

	*mb_r = NULL;
	if ((st = store_open_root(path, &fd, err, errsz)) != STORE_OK)
		return st;
	return store_fs_open_fd(drv, path, user, fd, mb_r, err, errsz);
}

/* "auto:" decides on the root it has opened anyway: no extra system
 * call on a login. */
static enum store_status
store_auto_open(const struct store_driver *drv, const char *path,
    const char *user, struct mailbox **mb_r, char *err, size_t errsz)
{
	enum store_status st;
	int fd;

	(void)drv;
	*mb_r = NULL;
	if ((st = store_open_root(path, &fd, err, errsz)) != STORE_OK)
		return st;
	return store_fs_open_fd(fd == -1 || store_fd_is_maildir(fd) ?
	    &store_driver_maildir : &store_driver_emldir, path, user, fd, mb_r,
	    err, errsz);
}

/* A directory holding nothing but some of tmp, new and cur: a Maildir
 * being made (by another MTA, or left by a crash mid-way; posuto's own
 * appear whole, store_maildir.c).  Taking that for an emldir would file
 * the message beside the Maildir, where no reader looks. */
static bool
store_auto_maildir_in_making(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *de;
	bool yes = true, any = false;

	if (dir == NULL)
		return false;
	while ((de = readdir(dir)) != NULL) {
		const char *n = de->d_name;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (strcmp(n, "tmp") != 0 && strcmp(n, "new") != 0 &&
		    strcmp(n, "cur") != 0) {
			yes = false;
			break;
		}
		any = true;
	}
	closedir(dir);
	/* An empty directory is an (empty) emldir, as for a login. */
	return yes && any;
}

/* What "auto:" would open at path now (a missing one: maildir, which is
 * what a first delivery creates). */
static const struct store_driver *
store_auto_pick(const char *path)
{
	struct stat st;

	if (store_fs_is_maildir(path) ||
	    (stat(path, &st) == -1 && errno == ENOENT) ||
	    store_auto_maildir_in_making(path))
		return &store_driver_maildir;
	return &store_driver_emldir;
}

static unsigned
store_auto_check(const struct store_driver *drv, const char *user,
    const char *path, FILE *out)
{
	(void)drv;
	drv = store_auto_pick(path);
	return drv->check(drv, user, path, out);
}

static enum store_status
store_auto_deliver_begin(const struct store_driver *drv, const char *path,
    const char *user, struct store_delivery **d_r, char *err, size_t errsz)
{
	(void)drv;
	drv = store_auto_pick(path);
	return drv->deliver_begin(drv, path, user, d_r, err, errsz);
}

const struct store_driver store_driver_auto = {
	.name = "auto",
	STORE_FS_DRIVER_CALLS,
	.open = store_auto_open,
	.check = store_auto_check,
	.deliver_begin = store_auto_deliver_begin,
};

static enum store_status
store_fs_open_fd(const struct store_driver *drv, const char *path,
    const char *user, int fd, struct mailbox **mb_r, char *err, size_t errsz)
{
	struct store_fs *mb;
	enum store_status st;
	struct store_cache_stamp stamp;
	struct store_drift_seen seen;
	struct stat dst[STORE_DIR_COUNT];
	bool cache_ok = true;
	uint32_t i;

	mb = store_new(path);
	mb->pub.drv = drv;
	mb->ops = drv->fs;
	mb->user = user != NULL ? xstrdup(user) : NULL;
	if (fd == -1) {
		*mb_r = &mb->pub;
		return STORE_OK;
	}
	mb->dirfd[STORE_DIR_ROOT] = fd;

	if ((st = store_lock(mb, &dst[STORE_DIR_ROOT], err, errsz)) !=
	    STORE_OK) {
		store_fs_close(&mb->pub);
		return st;
	}
	if (mb->ops->open_dirs != NULL && !mb->ops->open_dirs(mb, err, errsz)) {
		store_fs_close(&mb->pub);
		return STORE_TEMP;
	}
	if ((st = store_check_dirs(mb, dst, err, errsz)) != STORE_OK) {
		store_fs_close(&mb->pub);
		return st;
	}
	if (mb->ops->cacheable) {
		store_cache_stamp(mb, dst, &stamp);
		if (store_cache_fetch(mb, &stamp, &seen)) {
			store_park_dirs(mb, &seen);
			*mb_r = &mb->pub;
			return STORE_OK;
		}
	}
	mb->index = store_index_load(fd, mb->ops->index_kind);
	store_reserve(mb, store_index_count(mb->index));
	if ((st = mb->ops->scan(mb, err, errsz)) != STORE_OK) {
		store_fs_close(&mb->pub);
		return st;
	}
	store_index_apply(mb);
	if ((st = store_size_pending(mb, err, errsz)) != STORE_OK) {
		store_fs_close(&mb->pub);
		return st;
	}
	store_drop_gone(mb);
	mb->ops->finish(mb);
	free(mb->hashes);
	mb->hashes = NULL;
	mb->total = 0;
	for (i = 0; i < mb->count; i++) {
		mb->total += mb->msgs[i].wire_size;
		/* an unreadable file is tried again at the next open, and a
		 * chmod does not change the directory stamps the cache uses */
		if (mb->msgs[i].flags & STORE_MSG_BAD)
			cache_ok = false;
	}
	/* A viewer changes nothing on disk: a session may be using them. */
	if (mb->index_hits != store_index_count(mb->index) &&
	    !store_open_view) {
		/* entries for vanished files: their wire copies go too */
		mb->index_dirty = true;
		store_wire_sweep(mb, NULL);
	}
	store_index_free(&mb->index);
	if (mb->index_dirty && !store_open_view) {
		(void)store_index_write(fd, mb, NULL);
		mb->index_dirty = false;
	}
	if (mb->ops->cacheable && cache_ok) {
		store_drift_prehash(mb);
		store_cache_save(mb, &stamp);
	}
	store_fit(mb);
	store_park_dirs(mb, NULL);
	*mb_r = &mb->pub;
	return STORE_OK;
}

uint32_t
store_fs_count(const struct mailbox *mb)
{
	return store_fs_cof(mb)->count;
}

uint64_t
store_fs_msg_size(const struct mailbox *mb, uint32_t idx)
{
	return store_fs_cof(mb)->msgs[idx].wire_size;
}

int64_t
store_fs_msg_arrival(const struct mailbox *pub, uint32_t idx)
{
	const struct store_fs *mb = (const struct store_fs *)(const void *)pub;
	const struct store_msg *m = &mb->msgs[idx];

	/* Maildir orders by the delivery time in the name; emldir's
	 * order is the file number, its mtime the arrival */
	if (mb->ops == &store_maildir_ops)
		return (int64_t)m->order;
	return m->mtime_sec;
}

const char *
store_fs_msg_uidl(const struct mailbox *pub, uint32_t idx)
{
	const struct store_fs *mb = store_fs_cof(pub);

	return store_pool_str(mb, mb->msgs[idx].uidl_off);
}

bool
store_fs_msg_size_is_hint(const struct mailbox *mb, uint32_t idx)
{
	return (store_fs_cof(mb)->msgs[idx].flags & STORE_MSG_W_HINT) != 0;
}

uint64_t
store_fs_total_size(const struct mailbox *mb)
{
	return store_fs_cof(mb)->total;
}

void
store_fs_mark_seen(struct mailbox *mb, uint32_t idx)
{
	store_fs_of(mb)->msgs[idx].flags |= STORE_MSG_SEEN;
	store_fs_of(mb)->any_seen = true;
}

enum store_status
store_fs_msg_open(struct mailbox *pub, uint32_t idx, struct msg_reader **r_r)
{
	struct store_fs *mb = store_fs_of(pub);
	struct store_msg *m = &mb->msgs[idx];
	struct store_fs_reader *r;
	struct stat st;
	int dfd, fd;

	*r_r = NULL;
	if (m->flags & STORE_MSG_BAD) {
		/* the snapshot has no size for it: it waits for a session
		 * that can read it */
		log_warnx("store: %s: message %s not served: %s when the "
		    "mailbox was opened", mb->path,
		    store_pool_str(mb, m->name_off),
		    m->bad_errno == EPERM ? "not its directory owner's" :
		    strerror(m->bad_errno));
		errno = m->bad_errno;
		return m->bad_errno == EPERM ? STORE_PERM : STORE_TEMP;
	}
	/* a directory that cannot be reopened keeps its errno: ENOENT (gone)
	 * is handled like a vanished file, ESTALE (replaced) like I/O */
	dfd = store_dirfd(mb, m->dir);
	fd = dfd == -1 ? -1 : store_openat_msg(dfd,
	    store_pool_str(mb, m->name_off), &st, mb->noatime);
	if (fd == -1 && errno == ENOENT && mb->ops->relocate != NULL) {
		if (mb->ops->relocate(mb, idx)) {
			dfd = store_dirfd(mb, m->dir);
			fd = dfd == -1 ? -1 : store_openat_msg(dfd,
			    store_pool_str(mb, m->name_off), &st,
			    mb->noatime);
		} else {
			errno = ENOENT;
		}
	}
	if (fd == -1) {
		if (errno == ENOENT || errno == ELOOP ||
		    errno == STORE_ENOTREG) {
			errno = ENOENT;
			return STORE_PERM;
		}
		log_warn("store: %s: cannot open message %s", mb->path,
		    store_pool_str(mb, m->name_off));
		return STORE_TEMP;
	}
	if (mb->ops->same_file != NULL && !mb->ops->same_file(mb, idx, &st)) {
		close(fd);
		errno = ENOENT;
		return STORE_PERM;
	}
	if (!store_owner_ok(mb, m->dir, &st)) {
		log_warnx("store: %s: %s belongs to uid %lu, not to the owner "
		    "of its directory (uid %lu): not served", mb->path,
		    store_pool_str(mb, m->name_off), (unsigned long)st.st_uid,
		    (unsigned long)mb->dir_uid[m->dir]);
		close(fd);
		errno = EPERM;
		return STORE_PERM;
	}
	r = xcalloc(1, sizeof(*r));
	r->pub.drv = pub->drv;
	r->fd = fd;
	r->idx = idx;
	r->src = st;
	r->raw_size = (uint64_t)st.st_size;
	r->wire_form = (m->flags & STORE_MSG_WIRE_FORM) &&
	    r->raw_size == m->wire_size;
	r->wire_fd = -1;
	if ((m->flags & STORE_MSG_RAW) && r->raw_size != m->raw_size) {
		/* A cached size was wrong (or the file was rewritten in
		 * place): it is not the message LIST announced, so it is not
		 * sent as that one (-ERR [SYS/TEMP]); the next session
		 * recomputes every size. */
		log_warnx("store: %s: %s is %llu bytes, expected %llu; "
		    "index discarded", mb->path,
		    store_pool_str(mb, m->name_off),
		    (unsigned long long)r->raw_size,
		    (unsigned long long)m->raw_size);
		if ((dfd = store_dirfd(mb, STORE_DIR_ROOT)) != -1)
			store_index_remove(dfd);
		close(fd);
		free(r);
		errno = ESTALE;
		return STORE_TEMP;
	}
	if (!r->wire_form)
		r->wire = store_wire_lookup(mb, idx, &st, &r->wire_fd,
		    &r->wire_st, &r->wire_len);
	if (r->wire == STORE_WIRE_SELF) {
		/* the delivery measured these very bytes (same inode, size
		 * and mtime): they need no change */
		r->wire = STORE_WIRE_NONE;
		r->wire_form = r->raw_size == m->wire_size;
	}
	*r_r = &r->pub;
	return STORE_OK;
}

ssize_t
store_fs_msg_read(struct msg_reader *pub, void *buf, size_t len)
{
	struct store_fs_reader *r = (struct store_fs_reader *)(void *)pub;
	ssize_t n;

	/* Messages do not grow: stopping at the size seen at open spares
	 * the read() that would only say EOF, one per message. */
	if (len > r->raw_size - r->done)
		len = (size_t)(r->raw_size - r->done);
	if (len == 0)
		return 0;
	do
		n = read(r->fd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		r->done += (uint64_t)n;
	if (n == 0) {
		/* truncated by someone else: the end is not the message's */
		errno = ENODATA;
		return -1;
	}
	return n;
}

static bool
msg_reader_same(int fd, const struct stat *then)
{
	struct stat now;

	/* Not ctime: a rename (new/ -> cur/, flags by another client) or a
	 * link changes it, not the bytes. */
	return fstat(fd, &now) == 0 && now.st_size == then->st_size &&
	    now.st_mtim.tv_sec == then->st_mtim.tv_sec &&
	    now.st_mtim.tv_nsec == then->st_mtim.tv_nsec;
}

bool
store_fs_msg_unchanged(struct msg_reader *pub)
{
	struct store_fs_reader *r = (struct store_fs_reader *)(void *)pub;

	if (!msg_reader_same(r->fd, &r->src))
		return false;
	return r->wire_fd == -1 || msg_reader_same(r->wire_fd, &r->wire_st);
}

int
store_fs_msg_wire_fd(struct msg_reader *pub, off_t *off_r, off_t *len_r)
{
	struct store_fs_reader *r = (struct store_fs_reader *)(void *)pub;

	if (r->wire == STORE_WIRE_CACHED) {
		*off_r = 0;
		*len_r = (off_t)r->wire_len;
		return r->wire_fd;
	}
	if (!r->wire_form)
		return -1;
	*off_r = 0;
	*len_r = (off_t)r->raw_size;
	return r->fd;
}

struct store_wire_job *
store_fs_msg_wire_job(struct mailbox *mb, struct msg_reader *pub)
{
	struct store_fs_reader *r = (struct store_fs_reader *)(void *)pub;

	if (r->wire != STORE_WIRE_MISSING)
		return NULL;
	r->wire = STORE_WIRE_NONE;	/* one build per reader */
	return store_wire_job_new(store_fs_of(mb), r->idx, r->fd, &r->src);
}

void
store_fs_msg_close(struct msg_reader *pub)
{
	struct store_fs_reader *r = (struct store_fs_reader *)(void *)pub;

	close(r->fd);
	if (r->wire_fd != -1)
		close(r->wire_fd);
	free(r);
}

enum store_status
store_fs_commit(struct mailbox *pub, const uint8_t *deleted,
    uint32_t *n_deleted_r)
{
	struct store_fs *mb = store_fs_of(pub);
	enum store_status st;

	*n_deleted_r = 0;
	if (mb->count == 0)
		return STORE_OK;
	if (!mb->locked)
		fatalx("store: commit without the mailbox lock");
	/* parked since the open: reopened only if it is still the directory
	 * we locked, and the drivers work below that fd */
	if (store_dirfd(mb, STORE_DIR_ROOT) == -1) {
		log_warn("store: %s: cannot reopen the mailbox", mb->path);
		return STORE_TEMP;
	}
	st = mb->ops->commit(mb, deleted, n_deleted_r);
	store_drift_commit(mb, deleted, st == STORE_OK);
	store_wire_sweep(mb, deleted);
	/* keys survive new/ -> cur/ moves, so the index only loses the
	 * deleted entries; a failure here costs a rescan, nothing else */
	if (*n_deleted_r > 0)
		(void)store_index_write(store_dirfd(mb, STORE_DIR_ROOT), mb,
		    deleted);
	return st;
}

static const char *const store_subdir_name[STORE_DIR_COUNT] = {
	[STORE_DIR_NEW] = "new",
	[STORE_DIR_CUR] = "cur",
};

static void
store_park_dirs(struct store_fs *mb, const struct store_drift_seen *seen)
{
	if (mb->dirfd[STORE_DIR_ROOT] != -1)
		store_drift_preread(mb, mb->dirfd[STORE_DIR_ROOT], seen);
	for (int d = STORE_DIR_ROOT; d < STORE_DIR_COUNT; d++) {
		if (mb->dirfd[d] != -1) {
			close(mb->dirfd[d]);
			mb->dirfd[d] = -1;
			mb->parked |= 1u << d;
		}
	}
}

/* The root by its path, as store_fs_open() opened it (a symlink there is
 * the admin's), but only if it is still the directory we locked. */
static int
store_reopen_root(struct store_fs *mb)
{
	struct stat st;
	int fd;

	fd = open(mb->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (st.st_dev != mb->root_dev || st.st_ino != mb->root_ino) {
		log_warnx("store: %s was replaced during the session; "
		    "not touching the new one", mb->path);
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

int
store_dirfd(struct store_fs *mb, enum store_dir d)
{
	int fd;

	if (mb->dirfd[d] != -1)
		return mb->dirfd[d];
	if (!(mb->parked & (1u << d))) {
		errno = ENOENT;		/* absent when the mailbox was opened */
		return -1;
	}
	if (d == STORE_DIR_ROOT)
		fd = store_reopen_root(mb);
	else if ((fd = store_dirfd(mb, STORE_DIR_ROOT)) != -1)
		fd = openat(fd, store_subdir_name[d],
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* stays parked on failure: the next call tries again */
	if (fd != -1) {
		mb->dirfd[d] = fd;
		mb->parked &= ~(1u << d);
	}
	return fd;
}

bool
store_dirscan_start(struct store_dirscan *ds, int fd)
{
	ds->fd = fd;
	ds->len = ds->pos = 0;
	return lseek(fd, 0, SEEK_SET) == 0;
}

const struct dirent64 *
store_dirscan_next(struct store_dirscan *ds)
{
	const struct dirent64 *de;

	if (ds->pos >= ds->len) {
		ssize_t n = getdents64(ds->fd, ds->buf, sizeof(ds->buf));
		if (n <= 0)
			return NULL;	/* errno is set on error, kept on EOF */
		ds->len = n;
		ds->pos = 0;
	}
	de = (const struct dirent64 *)(ds->buf + ds->pos);
	ds->pos += de->d_reclen;
	return de;
}

bool
store_fs_commit_needed(const struct mailbox *pub, const uint8_t *deleted)
{
	const struct store_fs *mb = store_fs_cof(pub);
	bool (*settled)(const struct store_msg *) = mb->ops->msg_settled;
	uint32_t i;

	/* the common QUIT (nothing deleted or retrieved, nothing in new/)
	 * costs no walk over the messages: a 10k box is 10k calls */
	if (deleted != NULL) {
		for (i = 0; i < mb->count / 8; i++)
			if (deleted[i] != 0)
				return true;
		for (i = mb->count / 8 * 8; i < mb->count; i++)
			if ((deleted[i / 8] >> (i % 8)) & 1)
				return true;
	}
	if (mb->any_seen)
		return true;
	if (settled == NULL)
		return false;
	if (mb->settled_known)
		return !mb->settled_all;
	for (i = 0; i < mb->count; i++)
		if (!settled(&mb->msgs[i]))
			return true;
	return false;
}

void
store_fs_close(struct mailbox *pub)
{
	struct store_fs *mb = store_fs_of(pub);
	int i;

	store_index_free(&mb->index);
	free(mb->hashes);
	for (i = 0; i < STORE_DIR_COUNT; i++)
		if (mb->dirfd[i] != -1)
			close(mb->dirfd[i]);
	if (mb->locked)
		store_lock_release(mb->root_dev, mb->root_ino);
	free(mb->msgs);
	free(mb->pool);
	store_compat_free(&mb->compat);
	free(mb->user);
	free(mb->path);
	free(mb);
}
