/*
 * store_wire.c - the wire cache (see store.h): for big messages whose
 * stored bytes are not their wire form (Postfix and qmail write LF), a
 * copy of exactly what RETR sends, so a message downloaded again is a
 * sendfile() instead of read + convert + write on the event loop.
 *
 * A copy is built on a message's second download, not its first: when it
 * was read before (Maildir S flag: posuto sets it at QUIT after a RETR,
 * Dovecot and MUAs when a message is read) or earlier in this session.
 * Most POP3 clients download a message once and delete it; building a
 * copy for them costs a second conversion, a disk write and an fsync on
 * the core that serves them (a first pass over 64 mailboxes fell from
 * 1.7 GB/s without copies to 0.45-1.1 GB/s).  Formats that record no
 * read state (emldir) get a copy on the first download.
 *
 * Mail posuto delivers itself (store_wire_deliver()) gets its copy at
 * delivery instead, from the page cache the delivery just filled, so its
 * first download is a sendfile() too; one whose stored bytes already are
 * the wire form gets a trailer-only "self" copy that says so (its name's
 * W= hint spares the sizing read that would otherwise find out).
 *
 * "<mailbox>/posuto-wire/<key>", key = the message's stable name (Maildir:
 * the unique part, which survives new/ -> cur/ and flag changes).  No
 * leading dot: Maildir++ readers (Dovecot, Courier) take dot directories
 * for folders; they ignore other names.  A file is the CRLF, dot-stuffed
 * body without the final ".\r\n", then a 64-byte trailer (the source's
 * identity and both sizes): the body starts at offset 0, because
 * sendfile() from a page-aligned offset moved 1.6x the bytes per second
 * of one from offset 64.  Written by a worker thread: tmp name -> fsync ->
 * rename, so a name holds a complete copy or nothing; a copy is
 * used only if its trailer matches the file we opened (inode, size, mtime)
 * and the snapshot's size, so a rewritten or replaced message is never
 * answered from a stale copy.  Derived data: anything wrong is ignored,
 * removed and rebuilt.  Copies of messages that are gone are removed when
 * the owning session deletes them, and by a sweep whenever a scan shows
 * that files disappeared.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/params.h"
#include "lib/wire.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"

#define WIRE_DIR	"posuto-wire"
#define WIRE_MAGIC	"posutoW2"
/* A tmp file this old belongs to a build that died with its process. */
#define WIRE_TMP_MAX_AGE	3600
#define WIRE_READ_CHUNK	(256 * 1024)

struct wire_trailer {
	char magic[8];
	uint64_t src_ino;
	uint64_t src_size;
	int64_t src_mtime_sec;
	uint64_t src_mtime_nsec;
	uint64_t wire_size;	/* LIST size: before dot-stuffing */
	uint64_t body_len;	/* bytes before the trailer */
	uint64_t flags;		/* WIRE_F_* */
};
/* No body: the source file itself is its wire form (body_len 0). */
#define WIRE_F_SELF	1u
_Static_assert(sizeof(struct wire_trailer) == 64, "wire cache trailer size");

struct store_wire_job {
	int src_fd;		/* our own dup: pread() only, offset untouched */
	struct stat src;
	uint64_t wire_size;
	char *dir;
	char *key;
	bool self;		/* write a WIRE_F_SELF trailer, no body */
};

static _Atomic uint64_t wire_min_size;
static atomic_uint wire_jobs;
static atomic_uint wire_seq;
static atomic_bool wire_warned;

void
store_wire_configure(uint64_t min_size)
{
	atomic_store(&wire_min_size, min_size);
}

static bool
wire_eligible(const struct store_msg *m)
{
	uint64_t min = atomic_load(&wire_min_size);

	return min > 0 && m->wire_size >= min &&
	    !(m->flags & STORE_MSG_WIRE_FORM);
}

static bool
wire_worth_building(const struct store_fs *mb, const struct store_msg *m)
{
	return !mb->ops->read_flags ||
	    (m->flags & (STORE_MSG_READ | STORE_MSG_SEEN)) != 0;
}

/* "<mailbox>/posuto-wire[/<key>]" into buf; false if it does not fit. */
static bool
wire_path(const struct store_fs *mb, const struct store_msg *m, char *buf,
    size_t bufsz)
{
	int n;

	if (m == NULL)
		n = snprintf(buf, bufsz, "%s/%s", mb->path, WIRE_DIR);
	else
		n = snprintf(buf, bufsz, "%s/%s/%.*s", mb->path, WIRE_DIR,
		    (int)m->key_len, store_pool_str(mb, m->name_off));
	return n > 0 && (size_t)n < bufsz;
}

static bool
wire_trailer_matches(const struct wire_trailer *h, const struct stat *src,
    uint64_t wire_size, off_t file_size)
{
	return memcmp(h->magic, WIRE_MAGIC, sizeof(h->magic)) == 0 &&
	    h->src_ino == (uint64_t)src->st_ino &&
	    h->src_size == (uint64_t)src->st_size &&
	    h->src_mtime_sec == (int64_t)src->st_mtim.tv_sec &&
	    h->src_mtime_nsec == (uint64_t)src->st_mtim.tv_nsec &&
	    h->wire_size == wire_size &&
	    (h->flags == WIRE_F_SELF ? h->body_len == 0 &&
	    (uint64_t)src->st_size == wire_size :
	    h->flags == 0 && h->body_len >= wire_size) &&
	    (uint64_t)file_size == h->body_len + sizeof(*h);
}

enum store_wire_state
store_wire_lookup(const struct store_fs *mb, uint32_t idx,
    const struct stat *src, int *fd_r, struct stat *st_r, uint64_t *len_r)
{
	const struct store_msg *m = &mb->msgs[idx];
	enum store_wire_state missing;
	char path[PATH_MAX];
	struct wire_trailer h;
	struct stat st;
	int fd;

	*fd_r = -1;
	if (!wire_eligible(m) || !wire_path(mb, m, path, sizeof(path)))
		return STORE_WIRE_NONE;
	missing = wire_worth_building(mb, m) ? STORE_WIRE_MISSING :
	    STORE_WIRE_NONE;
	fd = store_open_noatime(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC | O_NONBLOCK | O_NOCTTY, mb->noatime);
	if (fd == -1)
		return missing;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size < (off_t)sizeof(h) ||
	    pread(fd, &h, sizeof(h), st.st_size - (off_t)sizeof(h)) !=
	    (ssize_t)sizeof(h) ||
	    !wire_trailer_matches(&h, src, m->wire_size, st.st_size)) {
		close(fd);
		return missing;		/* stale: a rebuild replaces it */
	}
	if (h.flags == WIRE_F_SELF) {
		close(fd);
		return STORE_WIRE_SELF;
	}
	*fd_r = fd;
	*st_r = st;
	*len_r = h.body_len;
	return STORE_WIRE_CACHED;
}

struct store_wire_job *
store_wire_job_new(const struct store_fs *mb, uint32_t idx, int src_fd,
    const struct stat *src)
{
	const struct store_msg *m = &mb->msgs[idx];
	struct store_wire_job *j;
	char dir[PATH_MAX];
	unsigned n = atomic_load(&wire_jobs);

	/* One background thread builds them: a longer queue would only hold
	 * descriptors for copies it cannot write any sooner. */
	do {
		if (n >= STORE_WIRE_MAX_JOBS)
			return NULL;
	} while (!atomic_compare_exchange_weak(&wire_jobs, &n, n + 1));
	j = xcalloc(1, sizeof(*j));
	j->src_fd = -1;
	if (!wire_path(mb, NULL, dir, sizeof(dir)) ||
	    (j->src_fd = fcntl(src_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		store_wire_job_free(&j);
		return NULL;
	}
	j->src = *src;
	j->wire_size = m->wire_size;
	j->dir = xstrdup(dir);
	j->key = xstrndup(store_pool_str(mb, m->name_off), m->key_len);
	return j;
}

void
store_wire_job_free(struct store_wire_job **jp)
{
	struct store_wire_job *j = *jp;

	if (j == NULL)
		return;
	if (j->src_fd != -1)
		close(j->src_fd);
	free(j->dir);
	free(j->key);
	free(j);
	*jp = NULL;
	atomic_fetch_sub(&wire_jobs, 1);
}

static bool
wire_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return true;
}

static void
wire_trailer_fill(struct wire_trailer *h, const struct store_wire_job *j,
    uint64_t body_len)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, WIRE_MAGIC, sizeof(h->magic));
	h->src_ino = (uint64_t)j->src.st_ino;
	h->src_size = (uint64_t)j->src.st_size;
	h->src_mtime_sec = (int64_t)j->src.st_mtim.tv_sec;
	h->src_mtime_nsec = (uint64_t)j->src.st_mtim.tv_nsec;
	h->wire_size = j->wire_size;
	h->body_len = body_len;
	h->flags = j->self ? WIRE_F_SELF : 0;
}

/* Converts the source into fd, then appends the trailer h.  false: errno
 * set, or EAGAIN if the source is not the file the snapshot measured. */
static bool
wire_convert(struct store_wire_job *j, int fd, struct wire_trailer *h)
{
	unsigned char *in = xmalloc(WIRE_READ_CHUNK);
	/* wire_enc_update() never needs more than twice its input */
	unsigned char *out = xmalloc(2 * WIRE_READ_CHUNK + WIRE_ENC_FINISH_MAX);
	struct wire_enc we;
	struct wire_size ws;
	struct stat now;
	off_t in_off = 0, out_off = 0;
	bool ok = false;
	size_t n, used;

	wire_enc_init(&we, -1);
	wire_size_init(&ws);
	for (;;) {
		ssize_t got = pread(j->src_fd, in, WIRE_READ_CHUNK, in_off);

		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			goto out;
		if (got == 0)
			break;
		in_off += got;
		wire_size_update(&ws, in, (size_t)got);
		n = wire_enc_update(&we, in, (size_t)got, out,
		    2 * WIRE_READ_CHUNK, &used);
		if (!wire_pwrite_all(fd, out, n, out_off))
			goto out;
		out_off += (off_t)n;
	}
	/* the end is [CRLF] ".\r\n": the terminator is not stored */
	n = wire_enc_finish(&we, out) - 3;
	if (!wire_pwrite_all(fd, out, n, out_off))
		goto out;
	out_off += (off_t)n;
	/* rewritten in place while we read (same size, new mtime): the
	 * copy may mix old and new bytes */
	if (ws.raw != (uint64_t)j->src.st_size ||
	    wire_size_final(&ws) != j->wire_size ||
	    fstat(j->src_fd, &now) == -1 || now.st_size != j->src.st_size ||
	    now.st_mtim.tv_sec != j->src.st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != j->src.st_mtim.tv_nsec) {
		errno = EAGAIN;
		goto out;
	}
	wire_trailer_fill(h, j, (uint64_t)out_off);
	ok = wire_pwrite_all(fd, h, sizeof(*h), out_off);
out:
	free(in);
	free(out);
	return ok;
}

/* Converts into a tmp file of dfd, then renames it to the key. */
static bool
wire_build(struct store_wire_job *j, int dfd)
{
	char tmp[64];
	struct wire_trailer h;
	bool ok;
	int fd, e;

	(void)snprintf(tmp, sizeof(tmp), ".tmp.%ld.%u", (long)getpid(),
	    atomic_fetch_add(&wire_seq, 1));
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return false;
	/* fsync before rename: after a crash the name holds all or nothing */
	if (j->self) {
		/* only the delivery writes these: it measured every byte */
		wire_trailer_fill(&h, j, 0);
		ok = wire_pwrite_all(fd, &h, sizeof(h), 0);
	} else {
		ok = wire_convert(j, fd, &h);
	}
	ok = ok && fsync(fd) == 0;
	if (close(fd) == -1)
		ok = false;
	if (ok && renameat(dfd, tmp, dfd, j->key) == 0)
		return true;
	e = errno;
	(void)unlinkat(dfd, tmp, 0);
	errno = e;
	return false;
}

void
store_wire_job_run(struct store_wire_job *j)
{
	bool ok;
	int dfd, e;

	if (mkdir(j->dir, 0700) == -1 && errno != EEXIST)
		goto fail;
	/* never build through a symlink planted in the mailbox */
	dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1)
		goto fail;
	ok = wire_build(j, dfd);
	e = errno;
	close(dfd);
	errno = e;
	if (ok)
		return;
fail:
	if (errno == EAGAIN || errno == ENOENT)
		return;		/* the message changed or went meanwhile */
	/* The message itself is untouched: a full disk or a read-only
	 * mailbox only costs speed, and would fail on every RETR, so only
	 * the first failure is a warning. */
	e = errno;
	if (!atomic_exchange(&wire_warned, true))
		log_warnx("store: wire cache %s/%s: %s (further failures are "
		    "logged at debug level)", j->dir, j->key, strerror(e));
	else
		log_debug("store: wire cache %s/%s: %s", j->dir, j->key,
		    strerror(e));
}

/* --- sweeping copies of messages that are gone ----------------------- */

struct wire_key {
	const char *s;
	size_t len;
};

static int
wire_key_cmp(const void *a, const void *b)
{
	const struct wire_key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);

	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

void
store_wire_sweep(struct store_fs *mb, const uint8_t *deleted)
{
	struct store_dirscan *ds;
	const struct dirent64 *de;
	struct wire_key *keys, probe;
	char dir[PATH_MAX];
	size_t nkeys = 0;
	time_t now = time(NULL);
	int fd;

	if (!wire_path(mb, NULL, dir, sizeof(dir)))
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return;		/* no cache here: the usual case */
	/* what may stay: eligible messages of the snapshot not deleted now */
	keys = xreallocarray(NULL, mb->count ? mb->count : 1, sizeof(*keys));
	for (uint32_t i = 0; i < mb->count; i++) {
		const struct store_msg *m = &mb->msgs[i];

		if (deleted != NULL && ((deleted[i / 8] >> (i % 8)) & 1))
			continue;
		if (!wire_eligible(m))
			continue;
		keys[nkeys].s = store_pool_str(mb, m->name_off);
		keys[nkeys++].len = m->key_len;
	}
	qsort(keys, nkeys, sizeof(*keys), wire_key_cmp);
	ds = xmalloc(sizeof(*ds));
	if (store_dirscan_start(ds, fd)) {
		while ((de = store_dirscan_next(ds)) != NULL) {
			struct stat st;

			if (de->d_name[0] == '.') {
				/* an unfinished build: keep it while it may
				 * still be running */
				if (strncmp(de->d_name, ".tmp.", 5) == 0 &&
				    fstatat(fd, de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) == 0 &&
				    now - st.st_mtim.tv_sec > WIRE_TMP_MAX_AGE)
					(void)unlinkat(fd, de->d_name, 0);
				continue;
			}
			probe.s = de->d_name;
			probe.len = strlen(de->d_name);
			if (bsearch(&probe, keys, nkeys, sizeof(*keys),
			    wire_key_cmp) == NULL)
				(void)unlinkat(fd, de->d_name, 0);
		}
	}
	free(ds);
	free(keys);
	close(fd);
}

/* --- copies made at delivery ----------------------------------------- */

bool
store_wire_deliver_wanted(const struct wire_size *ws)
{
	uint64_t min = atomic_load(&wire_min_size);

	return min > 0 && wire_size_final(ws) >= min;
}

void
store_wire_deliver(const char *mailbox, const char *key, size_t key_len,
    int src_fd, const struct wire_size *ws)
{
	struct store_wire_job j;
	uint64_t min = atomic_load(&wire_min_size);

	memset(&j, 0, sizeof(j));
	j.wire_size = wire_size_final(ws);
	if (min == 0 || j.wire_size < min || fstat(src_fd, &j.src) == -1)
		return;
	j.src_fd = src_fd;
	j.self = wire_size_is_wire_form(ws);
	j.dir = xasprintf("%s/%s", mailbox, WIRE_DIR);
	j.key = xstrndup(key, key_len);
	/* not counted in wire_jobs: it runs here, on the delivering thread,
	 * and its failures are the cache's, never the delivery's */
	store_wire_job_run(&j);
	free(j.dir);
	free(j.key);
}
