/*
 * store_emldir.c - JumboDogX's mailbox layout: MailDir/<UserName>/N.eml.
 *
 * Only names of the form <digits>.eml that are regular files count; they
 * are numbered in order of N (numerically), ties by name.  Everything
 * else in the directory (our lock and index files included) is ignored.
 *
 * UIDL: "E" + 32 hex digits of SHA-256(first 16 KiB of the file, its
 * name, "/" + its size).  The content part makes it stable across
 * backups, restores and copies (inode numbers are not), and means a
 * reused N.eml holding a different message gets a different UIDL; the
 * name part keeps two identical copies of one message (a double
 * delivery) from sharing a UIDL.  The cost: a tool that renumbers the
 * files changes their UIDLs, so clients would fetch them again.  The
 * index caches the UIDL, keyed by name and checked against inode, mtime
 * and size, so a warm open reads no message.
 *
 * Because N.eml names are reused, a message's identity (inode, mtime,
 * size) is checked again before reading it and before deleting it: a
 * different file under the same name is never sent as, or deleted as,
 * the message the client saw.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "store/store_index.h"
#include "store/store_int.h"

/* "<digits>.eml", N fitting in 64 bits. */
static bool
emldir_name_parse(const char *name, size_t len, uint64_t *n_r)
{
	if (len < 5 || memcmp(name + len - 4, ".eml", 4) != 0)
		return false;
	return parse_u64(name, len - 4, n_r);
}

static int
emldir_msg_cmp(const struct store_fs *mb, const struct store_msg *x,
    const struct store_msg *y)
{
	/* store_sort() has compared N already */
	return strcmp(store_pool_str(mb, x->name_off),
	    store_pool_str(mb, y->name_off));
}

/* The order of store_sort() + emldir_msg_cmp, on file names. */
static int
emldir_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	uint64_t na = 0, nb = 0;
	int c;

	(void)emldir_name_parse(a, alen, &na);
	(void)emldir_name_parse(b, blen, &nb);
	if (na != nb)
		return na < nb ? -1 : 1;
	c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static bool
emldir_index_match(const struct store_msg *m,
    const struct store_index_entry *e)
{
	/* N.eml names are reused: the file must be the same one */
	return e->ino == m->ino && e->mtime_sec == m->mtime_sec &&
	    e->mtime_nsec == m->mtime_nsec && e->raw_size == m->raw_size &&
	    e->uidl_len > 0;
}

static enum store_status
emldir_scan(struct store_fs *mb, char *err, size_t errsz)
{
	int root = store_dirfd(mb, STORE_DIR_ROOT);	/* open while scanning */
	const struct dirent64 *de;
	struct store_dirscan *ds = xmalloc(sizeof(*ds));

	if (!store_dirscan_start(ds, root)) {
		int e = errno;

		free(ds);
		if (err != NULL)
			(void)snprintf(err, errsz, "cannot read %s: %s",
			    mb->path, strerror(e));
		return STORE_TEMP;
	}
	errno = 0;
	while ((de = store_dirscan_next(ds)) != NULL) {
		struct store_msg *m;
		struct stat st;
		size_t len = strlen(de->d_name);
		uint64_t n;

		if (!emldir_name_parse(de->d_name, len, &n) ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN) ||
		    fstatat(root, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode)) {
			errno = 0;
			continue;
		}
		if ((m = store_msg_add(mb)) == NULL) {
			free(ds);
			if (err != NULL)
				(void)snprintf(err, errsz,
				    "too many messages in %s", mb->path);
			return STORE_PERM;
		}
		m->name_off = store_pool_add(mb, de->d_name, len);
		m->key_len = (uint16_t)len;
		m->dir = STORE_DIR_ROOT;
		m->order = n;
		m->ino = (uint64_t)st.st_ino;
		m->mtime_sec = st.st_mtim.tv_sec;
		m->mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
		m->raw_size = (uint64_t)st.st_size;
		m->flags |= STORE_MSG_HASH | STORE_MSG_RAW;
		errno = 0;
	}
	if (errno != 0) {
		int e = errno;

		free(ds);
		if (err != NULL)
			(void)snprintf(err, errsz, "cannot read %s: %s",
			    mb->path, strerror(e));
		return STORE_TEMP;
	}
	free(ds);
	store_sort(mb, NULL, emldir_msg_cmp);
	return STORE_OK;
}

static void
emldir_finish(struct store_fs *mb)
{
	uint32_t i;

	for (i = 0; i < mb->count; i++) {
		struct store_msg *m = &mb->msgs[i];
		char u[34];

		if (m->uidl_off != 0)
			continue;
		if (m->flags & STORE_MSG_BAD) {
			/* no content to digest: "U" + a digest of name and
			 * inode, unique here; once readable, the message gets
			 * its "E" UIDL (the client never got it under this
			 * one, so nothing is fetched twice) */
			char key[300];
			int l = snprintf(key, sizeof(key), "%s/%llu",
			    store_pool_str(mb, m->name_off),
			    (unsigned long long)m->ino);

			store_hash_uidl(key, l > 0 && (size_t)l < sizeof(key) ?
			    (size_t)l : sizeof(key) - 1, 'U', u);
			m->uidl_off = store_pool_add(mb, u, 33);
			continue;
		}
		u[0] = 'E';
		hex_encode(mb->hashes[i], sizeof(mb->hashes[i]), u + 1);
		m->uidl_off = store_pool_add(mb, u, 33);
	}
}

static bool
emldir_same_file(const struct store_fs *mb, uint32_t idx, const struct stat *st)
{
	const struct store_msg *m = &mb->msgs[idx];

	return (uint64_t)st->st_ino == m->ino &&
	    st->st_mtim.tv_sec == m->mtime_sec &&
	    (uint32_t)st->st_mtim.tv_nsec == m->mtime_nsec &&
	    (uint64_t)st->st_size == m->raw_size;
}

static enum store_status
emldir_commit(struct store_fs *mb, const uint8_t *deleted,
    uint32_t *n_deleted_r)
{
	int root = store_dirfd(mb, STORE_DIR_ROOT); /* reopened by the caller */
	enum store_status st = STORE_OK;
	bool changed = false;
	uint32_t i;

	for (i = 0; deleted != NULL && i < mb->count; i++) {
		const char *name = store_pool_str(mb, mb->msgs[i].name_off);
		struct stat sb;

		if (!(deleted[i / 8] & (1u << (i % 8))))
			continue;
		if (fstatat(root, name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT) {
				(*n_deleted_r)++;	/* already gone */
				continue;
			}
			log_warn("store: %s: cannot delete %s", mb->path, name);
			st = STORE_TEMP;
			continue;
		}
		if (!S_ISREG(sb.st_mode) || !emldir_same_file(mb, i, &sb)) {
			/* the name now holds another message: keep it */
			log_warnx("store: %s: %s was replaced during the "
			    "session, not deleted", mb->path, name);
			(*n_deleted_r)++;
			continue;
		}
		if (unlinkat(root, name, 0) == -1 && errno != ENOENT) {
			log_warn("store: %s: cannot delete %s", mb->path, name);
			st = STORE_TEMP;
			continue;
		}
		changed = true;
		(*n_deleted_r)++;
	}
	if (changed && !store_fsync_dir(root, mb->path) && st == STORE_OK)
		st = STORE_TEMP;
	return st;
}

/* --- delivery: the next N.eml ------------------------------------------ */

/* Staged in the mailbox itself under a name the scan ignores, so that
 * publishing is a link within one directory. */
#define EMLDIR_TMP_PREFIX	".posuto-tmp."

static enum store_status
emldir_deliver_prepare(struct store_fs_delivery *d, char *err, size_t errsz)
{
	struct stat st;
	int n;

	if (!store_fs_mkdir(AT_FDCWD, d->path) ||
	    (d->root = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOCTTY)) == -1) {
		store_err(err, errsz, "cannot create %s: %s", d->path,
		    strerror(errno));
		return store_fs_errno_status(errno);
	}
	if (fstat(d->root, &st) == 0 && (st.st_mode & S_IWOTH)) {
		store_err(err, errsz, "%s is writable by every user: refused",
		    d->path);
		return STORE_PERM;
	}
	d->stage = d->root;
	n = snprintf(d->tmp, sizeof(d->tmp), EMLDIR_TMP_PREFIX);
	store_fs_unique(d->tmp + n, sizeof(d->tmp) - (size_t)n);
	d->fd = openat(d->stage, d->tmp, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (d->fd == -1) {
		store_err(err, errsz, "cannot create %s/%s: %s", d->path,
		    d->tmp, strerror(errno));
		return store_fs_errno_status(errno);
	}
	return STORE_OK;
}

/* The highest N of the N.eml files in the directory (0: none). */
static bool
emldir_max_n(int root, uint64_t *n_r)
{
	struct store_dirscan *ds = xmalloc(sizeof(*ds));
	const struct dirent64 *de;
	uint64_t max = 0, n;

	if (!store_dirscan_start(ds, root)) {
		free(ds);
		return false;
	}
	errno = 0;
	while ((de = store_dirscan_next(ds)) != NULL)
		if (emldir_name_parse(de->d_name, strlen(de->d_name), &n) &&
		    n > max)
			max = n;
	free(ds);
	if (errno != 0)
		return false;
	*n_r = max;
	return true;
}

static enum store_status
emldir_deliver_publish(struct store_fs_delivery *d, char *id, size_t idsz)
{
	char name[32];
	uint64_t n;

	if (!emldir_max_n(d->root, &n))
		return store_fs_errno_status(errno);
	/* link() is the O_EXCL of names: a number another writer (this
	 * store, JumboDogX) takes first is skipped */
	for (int attempt = 0;; attempt++) {
		if (n == UINT64_MAX || attempt == 1000) {
			errno = EEXIST;
			return STORE_TEMP;
		}
		n++;
		(void)snprintf(name, sizeof(name), "%llu.eml",
		    (unsigned long long)n);
		if (linkat(d->root, d->tmp, d->root, name, 0) == 0)
			break;
		if (errno != EEXIST)
			return store_fs_errno_status(errno);
	}
	(void)unlinkat(d->root, d->tmp, 0);
	d->tmp[0] = '\0';
	if (fsync(d->root) == -1 && errno != EINVAL) {
		int e = errno;

		/* not known to be durable: not acknowledged, so not kept
		 * (a retry would duplicate it) */
		log_warn("store: %s: fsync", d->path);
		(void)unlinkat(d->root, name, 0);
		errno = e;
		return store_fs_errno_status(e);
	}
	if (id != NULL && idsz > 0)
		(void)snprintf(id, idsz, "%s", name);
	return STORE_OK;
}

static const struct store_fs_deliver_ops emldir_deliver_ops = {
	.prepare = emldir_deliver_prepare,
	.publish = emldir_deliver_publish,
};

static unsigned
emldir_check(const struct store_driver *drv, const char *user,
    const char *path, FILE *out)
{
	(void)drv;
	return store_fs_check_dir(user, path, false, out);
}

const struct store_ops store_emldir_ops = {
	.name = "emldir",
	.scan = emldir_scan,
	.key_cmp = emldir_key_cmp,
	.index_match = emldir_index_match,
	.finish = emldir_finish,
	.same_file = emldir_same_file,
	.relocate = NULL,
	.commit = emldir_commit,
	.deliver = &emldir_deliver_ops,
	.index_kind = STORE_INDEX_KIND_EMLDIR,
};

const struct store_driver store_driver_emldir = {
	.name = "emldir",
	.fs = &store_emldir_ops,
	.open = store_fs_open,
	STORE_FS_DRIVER_CALLS,
	.check = emldir_check,
	STORE_FS_DELIVERY_CALLS,
};
