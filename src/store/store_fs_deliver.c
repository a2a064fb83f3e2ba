/*
 * store_fs_deliver.c - the engine's half of a delivery: a file written
 * in the driver's staging place, counted as it streams in (stored and
 * wire size, wire form), synced and closed before the driver links it
 * to its visible name and syncs that directory.  A message is
 * acknowledged only after all of that (RELIABILITY.md: durability), and
 * is never visible half-written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"

enum store_status
store_fs_errno_status(int e)
{
	switch (e) {
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EINVAL:
		return STORE_PERM;
	default:
		/* ENOSPC, EDQUOT, EIO, EACCES, ...: the MTA keeps the
		 * message and tries again */
		return STORE_TEMP;
	}
}

void
store_fs_unique(char *buf, size_t bufsz)
{
	static atomic_uint seq;
	struct timeval tv;
	char host[64];
	size_t j = 0;

	gettimeofday(&tv, NULL);
	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	/* maildir(5): '/' and ':' cannot be in the host part; drop them */
	for (size_t i = 0; host[i] != '\0'; i++)
		if (host[i] != '/' && host[i] != ':' && host[i] != ',' &&
		    (unsigned char)host[i] > 0x20 &&
		    (unsigned char)host[i] < 0x7f)
			host[j++] = host[i];
	host[j] = '\0';
	(void)snprintf(buf, bufsz, "%lld.M%06ldP%ldQ%u.%s",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    atomic_fetch_add(&seq, 1) + 1, j > 0 ? host : "localhost");
}

bool
store_fs_mkdir(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) == 0 || errno == EEXIST)
		return true;
	if (errno != ENOENT || dirfd != AT_FDCWD)
		return false;
	/* /var/mail/%n/Maildir: the user's own directory may be missing */
	{
		char *parent = xstrdup(name);
		char *slash = strrchr(parent, '/');
		bool ok = false;

		if (slash != NULL && slash != parent) {
			*slash = '\0';
			ok = store_fs_mkdir(AT_FDCWD, parent);
		}
		free(parent);
		if (!ok)
			return false;
	}
	return mkdirat(dirfd, name, 0700) == 0 || errno == EEXIST;
}

static void
deliver_free(struct store_fs_delivery *d)
{
	if (d->fd != -1)
		close(d->fd);
	if (d->tmp[0] != '\0' && d->stage != -1)
		(void)unlinkat(d->stage, d->tmp, 0);
	if (d->stage != -1 && d->stage != d->root)
		close(d->stage);
	if (d->root != -1)
		close(d->root);
	free(d->keep_uidl);
	free(d->path);
	free(d);
}

enum store_status
store_fs_deliver_begin(const struct store_driver *drv, const char *path,
    const char *user, struct store_delivery **d_r, char *err, size_t errsz)
{
	struct store_fs_delivery *d = xcalloc(1, sizeof(*d));
	enum store_status st;

	(void)user;
	d->pub.drv = drv;
	d->ops = drv->fs->deliver;
	d->path = xstrdup(path);
	d->root = d->stage = d->fd = -1;
	wire_size_init(&d->ws);
	if ((st = d->ops->prepare(d, err, errsz)) != STORE_OK) {
		/* only what prepare() created under its tmp name goes */
		if (d->fd == -1)
			d->tmp[0] = '\0';
		deliver_free(d);
		return st;
	}
	*d_r = &d->pub;
	return STORE_OK;
}

enum store_status
store_fs_deliver_begin_keep(const struct store_driver *drv, const char *path,
    const char *user, const struct store_keep *keep,
    struct store_delivery **d_r, char *err, size_t errsz)
{
	const struct store_fs_deliver_ops *ops = drv->fs->deliver;
	struct store_fs_delivery *d;
	const char *why = NULL;
	enum store_status st;

	*d_r = NULL;
	if (ops->keep_ok == NULL) {
		store_err(err, errsz, "store %s cannot keep a message's UIDL "
		    "(use maildir: or sql:)", drv->name);
		return STORE_PERM;
	}
	if (!ops->keep_ok(keep->uidl, &why)) {
		store_err(err, errsz, "UIDL %s: %s", keep->uidl, why);
		return STORE_PERM;
	}
	if ((st = store_fs_deliver_begin(drv, path, user, d_r, err, errsz)) !=
	    STORE_OK)
		return st;
	d = (struct store_fs_delivery *)(void *)*d_r;
	d->keep_uidl = xstrdup(keep->uidl);
	d->keep_arrival = keep->arrival;
	return STORE_OK;
}

enum store_status
store_fs_deliver_write(struct store_delivery *pub, const void *buf,
    size_t len)
{
	struct store_fs_delivery *d = (struct store_fs_delivery *)(void *)pub;
	const char *p = buf;

	if (d->failed)
		return STORE_TEMP;
	wire_size_update(&d->ws, buf, len);
	while (len > 0) {
		ssize_t n = write(d->fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n == 0 ? EIO : errno;

			log_warn("store: %s: cannot write %s", d->path, d->tmp);
			d->failed = true;
			errno = e;
			return store_fs_errno_status(e);
		}
		p += n;
		len -= (size_t)n;
	}
	return STORE_OK;
}

enum store_status
store_fs_deliver_commit(struct store_delivery *pub, char *id, size_t idsz)
{
	struct store_fs_delivery *d = (struct store_fs_delivery *)(void *)pub;
	enum store_status st;
	char name[sizeof(d->tmp) + 64];
	int rfd = -1;

	if (d->failed) {
		deliver_free(d);
		return STORE_TEMP;
	}
	if (d->keep_arrival > 0) {
		/* the arrival time readers see (emldir order, Expire) */
		struct timespec ts[2] = {
			{ .tv_sec = (time_t)d->keep_arrival },
			{ .tv_sec = (time_t)d->keep_arrival },
		};

		(void)futimens(d->fd, ts);
	}
	{
		/* close() reports delayed write errors (NFS, quotas) */
		/* fdatasync: the bytes and what reading them needs (size,
		 * blocks; a new file's inode), not its timestamps */
		bool ok = fdatasync(d->fd) == 0;
		int e = errno;

		if (close(d->fd) == -1 && ok) {
			ok = false;
			e = errno;
		}
		d->fd = -1;
		if (!ok) {
			log_warn("store: %s: cannot sync %s", d->path, d->tmp);
			deliver_free(d);
			return store_fs_errno_status(e);
		}
	}
	/* the same inode, read back for the wire copy after the publish
	 * (a copy named before its message could be swept as an orphan);
	 * no atime: that read would dirty the inode just synced */
	if (d->ops->wire_copy && store_wire_deliver_wanted(&d->ws))
		rfd = store_open_noatime(d->stage, d->tmp, O_RDONLY |
		    O_NOFOLLOW | O_CLOEXEC, true);
	name[0] = '\0';
	if ((st = d->ops->publish(d, name, sizeof(name))) != STORE_OK) {
		log_warn("store: %s: cannot deliver a message", d->path);
	} else {
		if (id != NULL && idsz > 0)
			(void)snprintf(id, idsz, "%s", name);
		if (rfd != -1)
			store_wire_deliver(d->path, name, strcspn(name, ":"),
			    rfd, &d->ws);
	}
	if (rfd != -1)
		close(rfd);
	deliver_free(d);
	return st;
}

void
store_fs_deliver_abort(struct store_delivery *pub)
{
	deliver_free((struct store_fs_delivery *)(void *)pub);
}
