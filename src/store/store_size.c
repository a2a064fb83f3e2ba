/*
 * store_size.c - reading message files whose sizes no index or file name
 * gave: wire size (CRLF, dot-stuffing), wire-form flag, identity, and the
 * emldir digest.
 *
 * Cold, this is one disk read per message, 100,000 of them for a big
 * mailbox.  Threads keep the disk queue full; with io_uring each thread
 * also submits its reads in batches, so a batch costs one block-layer
 * submission (one doorbell write, a VM exit on virtio) instead of one per
 * file.  That kernel work, not the disk, was the bound on a pinned core.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "lib/log.h"
#include "lib/wire.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"

/* Bytes of an emldir message hashed into its UIDL (see store_emldir.c). */
#define SIZE_HASH_PREFIX	(16 * 1024)
/* Below this many files to read, threads cost more than they save. */
#define SIZE_MIN_PARALLEL	32
/* Cold files are read in parallel: the work is I/O latency, not CPU, so
 * more threads than cores keep the disk queue full. */
#define SIZE_THREADS		16
#define SIZE_READ_CHUNK		(64 * 1024)
/* io_uring: files per batch, and the first read of each (most messages
 * fit; the rest of a bigger one is read synchronously). */
#define SIZE_BATCH		32
#define SIZE_FIRST_READ		(16 * 1024)

struct sizer {
	struct store_fs *mb;
	uint32_t *todo;
	uint32_t n;
	atomic_uint next;
	atomic_int error;	/* first errno, 0 = none */
	atomic_uint failed_idx;
};

/* One file being sized. */
struct size_item {
	uint32_t idx;
	int fd;
	int err;
	struct stat st;
	struct wire_size ws;
	EVP_MD_CTX *md;		/* emldir: digest of the first bytes */
	uint64_t hashed;
};

static void
size_begin(struct store_fs *mb, struct size_item *it, uint32_t idx)
{
	struct store_msg *m = &mb->msgs[idx];

	memset(it, 0, sizeof(*it));
	it->idx = idx;
	it->fd = store_openat_msg(store_dirfd(mb, m->dir),
	    store_pool_str(mb, m->name_off), &it->st, mb->noatime);
	if (it->fd == -1) {
		it->err = errno;
		return;
	}
	if (m->flags & STORE_MSG_HASH) {
		it->md = EVP_MD_CTX_new();
		if (it->md == NULL ||
		    EVP_DigestInit_ex(it->md, EVP_sha256(), NULL) != 1)
			fatalx("store: SHA-256 unavailable");
	}
	wire_size_init(&it->ws);
}

static void
size_feed(struct size_item *it, const unsigned char *buf, size_t n)
{
	wire_size_update(&it->ws, buf, n);
	if (it->md != NULL && it->hashed < SIZE_HASH_PREFIX) {
		size_t h = n;

		if (h > SIZE_HASH_PREFIX - it->hashed)
			h = (size_t)(SIZE_HASH_PREFIX - it->hashed);
		(void)EVP_DigestUpdate(it->md, buf, h);
		it->hashed += h;
	}
}

/* Reads from the file offset to EOF. */
static void
size_read_rest(struct size_item *it, unsigned char *buf)
{
	for (;;) {
		ssize_t n = read(it->fd, buf, SIZE_READ_CHUNK);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			it->err = errno;
			return;
		}
		if (n == 0)
			return;
		size_feed(it, buf, (size_t)n);
	}
}

/* Errors of the mailbox as a whole (out of descriptors or memory, the
 * directory gone stale), not of one message: the open fails and the
 * next login tries again, rather than listing messages as unreadable. */
static bool
size_err_is_global(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS ||
	    e == EBADF || e == ESTALE || e == EAGAIN || e == EINTR;
}

/* Records the result in the message and releases the item. */
static void
size_end(struct sizer *sz, struct size_item *it)
{
	struct store_fs *mb = sz->mb;
	struct store_msg *m = &mb->msgs[it->idx];
	const char *name = store_pool_str(mb, m->name_off);

	if (it->fd != -1)
		close(it->fd);
	if (it->err == 0 && !store_owner_ok(mb, m->dir, &it->st)) {
		log_warnx("store: %s: %s belongs to uid %lu, not to the owner "
		    "of its directory (uid %lu): listed, not served", mb->path,
		    name, (unsigned long)it->st.st_uid,
		    (unsigned long)mb->dir_uid[m->dir]);
		it->err = EPERM;
		m->flags |= STORE_MSG_BAD;
		m->bad_errno = EPERM;
	} else if (it->err == ENOENT && mb->ops->relocate_many != NULL) {
		/* renamed since readdir (new/ -> cur/, a flag change): the
		 * caller looks for it again */
		m->flags |= STORE_MSG_MOVED;
	} else if (it->err == ENOENT || it->err == ELOOP ||
	    it->err == STORE_ENOTREG) {
		/* deleted by someone else since readdir, or not a regular
		 * file after all: not part of the snapshot */
		m->flags |= STORE_MSG_GONE;
	} else if (it->err != 0 && size_err_is_global(it->err)) {
		int zero = 0;

		if (atomic_compare_exchange_strong(&sz->error, &zero, it->err))
			atomic_store(&sz->failed_idx, it->idx);
	} else if (it->err != 0) {
		/* this file only: its neighbours are still served */
		log_warnx("store: %s: cannot read message %s: %s; listed, "
		    "not served", mb->path, name, strerror(it->err));
		m->flags |= STORE_MSG_BAD;
		m->bad_errno = (uint8_t)(it->err < 256 ? it->err : EIO);
	} else {
		m->raw_size = it->ws.raw;
		m->wire_size = wire_size_final(&it->ws);
		m->ino = (uint64_t)it->st.st_ino;
		m->mtime_sec = it->st.st_mtim.tv_sec;
		m->mtime_nsec = (uint32_t)it->st.st_mtim.tv_nsec;
		m->flags |= STORE_MSG_SIZED | STORE_MSG_RAW;
		m->flags &= (uint16_t)~STORE_MSG_W_HINT;
		if (wire_size_is_wire_form(&it->ws))
			m->flags |= STORE_MSG_WIRE_FORM;
		else
			m->flags &= (uint16_t)~STORE_MSG_WIRE_FORM;
		if (it->md != NULL) {
			unsigned char dg[EVP_MAX_MD_SIZE];
			unsigned int dl = 0;
			char szs[24];
			int l = snprintf(szs, sizeof(szs), "/%llu",
			    (unsigned long long)it->ws.raw);

			/* digest = SHA-256(first 16 KiB, file name, "/size") */
			(void)EVP_DigestUpdate(it->md, name, strlen(name));
			(void)EVP_DigestUpdate(it->md, szs, (size_t)l);
			if (EVP_DigestFinal_ex(it->md, dg, &dl) != 1 || dl < 16)
				fatalx("store: SHA-256 failed");
			memcpy(mb->hashes[it->idx], dg, 16);
		}
	}
	if (m->flags & STORE_MSG_BAD) {
		/* LIST shows the stored size when known (emldir), else the
		 * name's S= hint (store_index_apply put it there), else 0 */
		if (m->flags & STORE_MSG_RAW)
			m->wire_size = m->raw_size;
		m->flags &= (uint16_t)~STORE_MSG_RAW;
	}
	EVP_MD_CTX_free(it->md);
	it->md = NULL;
	it->fd = -1;
}

static void
size_files_sync(struct sizer *sz, unsigned char *buf)
{
	struct size_item it;
	unsigned i;

	while ((i = atomic_fetch_add(&sz->next, 1)) < sz->n) {
		size_begin(sz->mb, &it, sz->todo[i]);
		if (it.err == 0) {
			if (it.st.st_size > 4096)
				(void)posix_fadvise(it.fd, 0, 0,
				    POSIX_FADV_SEQUENTIAL);
			size_read_rest(&it, buf);
		}
		size_end(sz, &it);
	}
}

#ifdef HAVE_LIBURING
/* Submits the queued first reads and consumes their completions; false
 * if the ring failed (the reads not completed are then marked EIO). */
static bool
size_uring_run(struct io_uring *ring, struct size_item *items,
    unsigned nb, unsigned char *first, unsigned queued, unsigned char *buf)
{
	unsigned submitted = 0, k;
	bool done[SIZE_BATCH] = { false };
	bool ok = true;

	while (queued > 0) {
		struct io_uring_cqe *cqe;
		struct size_item *it;
		int r;

		if (submitted < queued) {
			r = io_uring_submit(ring);
			if (r >= 0)
				submitted += (unsigned)r;
			else if (r != -EINTR && r != -EAGAIN && r != -EBUSY) {
				log_warnx("store: io_uring submit: %s",
				    strerror(-r));
				ok = false;
				break;
			}
			if (submitted == 0)
				continue;	/* nothing in flight to wait for */
		}
		r = io_uring_wait_cqe(ring, &cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			log_warnx("store: io_uring wait: %s", strerror(-r));
			ok = false;
			break;
		}
		k = (unsigned)io_uring_cqe_get_data64(cqe);
		it = &items[k];
		done[k] = true;
		if (cqe->res == -EINVAL || cqe->res == -EOPNOTSUPP) {
			size_read_rest(it, buf);	/* no READ op: old kernel */
		} else if (cqe->res < 0) {
			it->err = -cqe->res;
		} else {
			size_feed(it, first + (size_t)k * SIZE_FIRST_READ,
			    (size_t)cqe->res);
			/* regular files read short only at EOF */
			if (cqe->res == SIZE_FIRST_READ) {
				if (lseek(it->fd, cqe->res, SEEK_SET) == -1)
					it->err = errno;
				else
					size_read_rest(it, buf);
			}
		}
		io_uring_cqe_seen(ring, cqe);
		queued--;
		submitted--;
	}
	for (k = 0; !ok && k < nb; k++)
		if (!done[k] && items[k].err == 0 && items[k].st.st_size > 0)
			items[k].err = EIO;
	return ok;
}

/* Returns false if io_uring cannot be used here (old kernel, seccomp,
 * io_uring_disabled): the caller reads synchronously instead. */
static bool
size_files_uring(struct sizer *sz, unsigned char *buf)
{
	struct io_uring ring;
	struct size_item items[SIZE_BATCH];
	unsigned char *first;
	unsigned i, k, nb, queued;
	bool ok = true;

	if (io_uring_queue_init(SIZE_BATCH, &ring, 0) != 0)
		return false;
	first = xmalloc((size_t)SIZE_BATCH * SIZE_FIRST_READ);
	for (;;) {
		/* claim a batch; open its files (inode reads stay sync) */
		for (nb = 0; nb < SIZE_BATCH; nb++) {
			if ((i = atomic_fetch_add(&sz->next, 1)) >= sz->n)
				break;
			size_begin(sz->mb, &items[nb], sz->todo[i]);
		}
		if (nb == 0)
			break;
		queued = 0;
		for (k = 0; k < nb; k++) {
			struct io_uring_sqe *sqe;

			if (items[k].err != 0 || items[k].st.st_size == 0)
				continue;
			sqe = io_uring_get_sqe(&ring);
			if (sqe == NULL) {	/* cannot happen: depth = batch */
				size_read_rest(&items[k], buf);
				continue;
			}
			io_uring_prep_read(sqe, items[k].fd,
			    first + (size_t)k * SIZE_FIRST_READ,
			    SIZE_FIRST_READ, 0);
			io_uring_sqe_set_data64(sqe, k);
			queued++;
		}
		ok = size_uring_run(&ring, items, nb, first, queued, buf);
		for (k = 0; k < nb; k++)
			size_end(sz, &items[k]);
		if (!ok)
			break;
	}
	io_uring_queue_exit(&ring);
	/* After a ring failure reads may still land in it: never freed. */
	if (ok)
		free(first);
	else
		size_files_sync(sz, buf);
	return true;
}
#endif

static void *
size_worker(void *arg)
{
	struct sizer *sz = arg;
	unsigned char *buf = xmalloc(SIZE_READ_CHUNK);

#ifdef HAVE_LIBURING
	if (!size_files_uring(sz, buf))
#endif
		size_files_sync(sz, buf);
	free(buf);
	return NULL;
}

/* Sizes the messages todo[0..n) with up to SIZE_THREADS threads; the
 * first mailbox-wide error (0 = none) in *err_r, its message in *idx_r. */
static void
size_run(struct store_fs *mb, uint32_t *todo, uint32_t n, int *err_r,
    uint32_t *idx_r)
{
	struct sizer sz;
	pthread_t th[SIZE_THREADS];
	unsigned nth = 0, t;

	memset(&sz, 0, sizeof(sz));
	sz.mb = mb;
	sz.todo = todo;
	sz.n = n;
	atomic_init(&sz.next, 0);
	atomic_init(&sz.error, 0);
	atomic_init(&sz.failed_idx, 0);
	if (sz.n >= SIZE_MIN_PARALLEL) {
		nth = sz.n / 16;
		if (nth > SIZE_THREADS)
			nth = SIZE_THREADS;
		for (t = 0; t < nth; t++)
			if (pthread_create(&th[t], NULL, size_worker, &sz) != 0)
				break;
		nth = t;
	}
	/* the calling thread works too (and alone if threads failed) */
	size_worker(&sz);
	for (t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
	*err_r = atomic_load(&sz.error);
	*idx_r = atomic_load(&sz.failed_idx);
}

/* A file renamed while we read (another client's new/ -> cur/ or flag
 * change) is looked up again this many times before it counts as gone;
 * each lookup is one read of new/ and cur/ for all of them. */
#define SIZE_RELOCATE_ROUNDS	4

enum store_status
store_size_pending(struct store_fs *mb, char *err, size_t errsz)
{
	uint32_t *todo, n = 0, i, fi = 0, round;
	int e = 0;

	todo = xreallocarray(NULL, mb->count ? mb->count : 1, sizeof(*todo));
	for (i = 0; i < mb->count; i++)
		if (!(mb->msgs[i].flags & STORE_MSG_SIZED) ||
		    ((mb->msgs[i].flags & STORE_MSG_HASH) &&
		    mb->msgs[i].uidl_off == 0))
			todo[n++] = i;
	for (i = 0; i < n; i++)
		if (mb->msgs[todo[i]].flags & STORE_MSG_HASH) {
			mb->hashes = xcalloc(mb->count, sizeof(*mb->hashes));
			break;
		}
	for (round = 0; n > 0; round++) {
		uint32_t moved = 0;

		size_run(mb, todo, n, &e, &fi);
		if (e != 0)
			break;
		for (i = 0; i < n; i++) {
			struct store_msg *m = &mb->msgs[todo[i]];

			if (m->flags & STORE_MSG_SIZED)
				mb->index_dirty = true;
			if (m->flags & STORE_MSG_MOVED)
				todo[moved++] = todo[i];
		}
		n = moved;
		if (n == 0)
			break;
		if (round < SIZE_RELOCATE_ROUNDS)
			mb->ops->relocate_many(mb, todo, n);
		for (i = 0, moved = 0; i < n; i++) {
			struct store_msg *m = &mb->msgs[todo[i]];

			if (m->flags & STORE_MSG_MOVED) {
				/* in neither new/ nor cur/: deleted */
				m->flags &= (uint16_t)~STORE_MSG_MOVED;
				m->flags |= STORE_MSG_GONE;
			} else {
				todo[moved++] = todo[i];
			}
		}
		n = moved;
	}
	free(todo);
	if (e != 0) {
		store_err(err, errsz, "cannot read message %s: %s",
		    store_pool_str(mb, mb->msgs[fi].name_off), strerror(e));
		return STORE_TEMP;
	}
	return STORE_OK;
}
