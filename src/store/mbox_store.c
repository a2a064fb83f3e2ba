/*
 * mbox_store.c - mbox snapshot (with the size index), message reader and
 * append.  The expunge and its journal are in mbox_expunge.c.
 */
#include "store/mbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/strutil.h"
#include "lib/wire.h"
#include "lib/xmalloc.h"

#define MBOX_IO_CHUNK		(64 * 1024)
#define MBOX_INDEX_MAX		(512u * 1024 * 1024)

static unsigned mbox_crash_countdown;

void
mbox_test_crash_after(unsigned n)
{
	mbox_crash_countdown = n;
}

void
mbox_crash_point(void)
{
	if (mbox_crash_countdown > 0 && --mbox_crash_countdown == 0)
		raise(SIGKILL);
}

void
mbox_opts_init(struct mbox_opts *o)
{
	memset(o, 0, sizeof(*o));
	mbox_lock_opts_init(&o->lock);
}

void
mbox_file_id_from_stat(struct mbox_file_id *id, const struct stat *st)
{
	memset(id, 0, sizeof(*id));
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->mtime_sec = st->st_mtim.tv_sec;
	id->mtime_nsec = st->st_mtim.tv_nsec;
	id->ctime_sec = st->st_ctim.tv_sec;
	id->ctime_nsec = st->st_ctim.tv_nsec;
}

bool
mbox_file_id_eq(const struct mbox_file_id *a, const struct mbox_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec &&
	    a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec;
}

bool
mbox_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	unsigned char *b = buf;

	while (len > 0) {
		ssize_t n = pread(fd, b, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return false;
		}
		b += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return true;
}

bool
mbox_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const unsigned char *b = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, b, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return false;
		}
		b += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return true;
}

bool
mbox_hash_range(int fd, uint64_t off, uint64_t len, unsigned char *out,
    size_t out_len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char *buf = xmalloc(MBOX_IO_CHUNK);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	while (ok && len > 0) {
		size_t k = len > MBOX_IO_CHUNK ? MBOX_IO_CHUNK : (size_t)len;

		ok = mbox_pread_full(fd, buf, k, off) &&
		    EVP_DigestUpdate(ctx, buf, k) == 1;
		off += k;
		len -= k;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= out_len;
	if (ok)
		memcpy(out, md, out_len);
	EVP_MD_CTX_free(ctx);
	free(buf);
	return ok;
}

bool
mbox_fsync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok = fd >= 0 && fsync(fd) == 0;

	if (fd >= 0)
		close(fd);
	free(copy);
	return ok;
}

/* ---- the index ---- */

/*
 * Layout (native byte order: a machine-local cache; the order mark makes
 * a foreign file invalid): magic, order mark, file id, count, tail hash,
 * count struct mbox_msg (56 bytes each, no padding), then SHA-256/128 of
 * everything before it.
 */
static const char mbox_index_magic[8] = "PSTMBXI1";

struct mbox_index_hdr {
	char magic[8];
	uint32_t order;
	uint32_t version;
	struct mbox_file_id id;
	uint64_t count;
	unsigned char tail[MBOX_DIGEST_LEN];
};

_Static_assert(sizeof(struct mbox_msg) == 64, "mbox_msg has no padding");

static void
mbox_sha(const void *buf, size_t len, unsigned char out[MBOX_DIGEST_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < MBOX_DIGEST_LEN)
		abort();
	memcpy(out, md, MBOX_DIGEST_LEN);
}

bool
mbox_index_parse(const void *buf, size_t len, struct mbox_file_id *id_r,
    unsigned char tail_r[MBOX_DIGEST_LEN], struct mbox_msg **msgs_r,
    size_t *n_r)
{
	const unsigned char *b = buf;
	struct mbox_index_hdr h;
	unsigned char sum[MBOX_DIGEST_LEN];
	struct mbox_msg *m;
	size_t i, n;

	if (len < sizeof(h) + MBOX_DIGEST_LEN)
		return false;
	memcpy(&h, b, sizeof(h));
	if (memcmp(h.magic, mbox_index_magic, 8) != 0 ||
	    h.order != 0x01020304u || h.version != 2 ||
	    h.count > (len - sizeof(h) - MBOX_DIGEST_LEN) / sizeof(*m) ||
	    len != sizeof(h) + h.count * sizeof(*m) + MBOX_DIGEST_LEN)
		return false;
	mbox_sha(b, len - MBOX_DIGEST_LEN, sum);
	if (memcmp(sum, b + len - MBOX_DIGEST_LEN, MBOX_DIGEST_LEN) != 0)
		return false;
	n = (size_t)h.count;
	m = xcalloc(n ? n : 1, sizeof(*m));
	memcpy(m, b + sizeof(h), n * sizeof(*m));
	/* The entries tile the file from the first From_ line to its end. */
	for (i = 0; i < n; i++) {
		if (m[i].data_off <= m[i].from_off ||
		    m[i].data_off > m[i].end_off ||
		    m[i].data_len > m[i].end_off - m[i].data_off ||
		    m[i].end_off - m[i].from_off < 5 ||
		    (i > 0 && m[i].from_off != m[i - 1].end_off) ||
		    m[i].wire_size > 2 * m[i].data_len + 2)
			break;
	}
	if (i < n || (n > 0 && m[n - 1].end_off != h.id.size)) {
		free(m);
		return false;
	}
	*id_r = h.id;
	memcpy(tail_r, h.tail, MBOX_DIGEST_LEN);
	*msgs_r = m;
	*n_r = n;
	return true;
}

void
mbox_index_write(const char *index_path, const struct mbox_file_id *id,
    const unsigned char tail[MBOX_DIGEST_LEN], const struct mbox_msg *msgs,
    size_t n)
{
	struct mbox_index_hdr h;
	size_t len = sizeof(h) + n * sizeof(*msgs) + MBOX_DIGEST_LEN;
	unsigned char *img = xmalloc(len);
	char *tmp = xasprintf("%s.tmp", index_path);
	int fd;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, mbox_index_magic, 8);
	h.order = 0x01020304u;
	/* 2: mbox_msg.quoted (a version 1 index is rebuilt once) */
	h.version = 2;
	h.id = *id;
	h.count = n;
	memcpy(h.tail, tail, MBOX_DIGEST_LEN);
	memcpy(img, &h, sizeof(h));
	if (n > 0)
		memcpy(img + sizeof(h), msgs, n * sizeof(*msgs));
	mbox_sha(img, len - MBOX_DIGEST_LEN, img + len - MBOX_DIGEST_LEN);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd >= 0) {
		bool ok = mbox_pwrite_full(fd, img, len, 0);

		close(fd);
		if (!ok || rename(tmp, index_path) != 0)
			(void)unlink(tmp);
	}
	free(tmp);
	free(img);
}

/* Reads and validates the index for the mbox; false if none usable. */
static bool
mbox_index_load(const char *index_path, struct mbox_file_id *id_r,
    unsigned char tail_r[MBOX_DIGEST_LEN], struct mbox_msg **msgs_r,
    size_t *n_r)
{
	struct stat st;
	unsigned char *buf;
	bool ok;
	int fd;

	fd = open(index_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > MBOX_INDEX_MAX) {
		close(fd);
		return false;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	ok = mbox_pread_full(fd, buf, (size_t)st.st_size, 0) &&
	    mbox_index_parse(buf, (size_t)st.st_size, id_r, tail_r, msgs_r,
	    n_r);
	close(fd);
	free(buf);
	return ok;
}

/* Hash of the last MBOX_TAIL_HASH bytes before end. */
bool
mbox_tail_hash(int fd, uint64_t end, unsigned char out[MBOX_DIGEST_LEN])
{
	uint64_t start = end > MBOX_TAIL_HASH ? end - MBOX_TAIL_HASH : 0;

	return mbox_hash_range(fd, start, end - start, out, MBOX_DIGEST_LEN);
}

/* ---- UIDLs ---- */

static int
mbox_digest_cmp(const void *a, const void *b, void *ctx)
{
	const struct mbox_msg *m = ctx;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	int c = memcmp(m[ia].digest, m[ib].digest, MBOX_DIGEST_LEN);

	if (c != 0)
		return c;
	return ia < ib ? -1 : ia > ib;
}

/* Indexes sorted by (digest, position); caller frees. */
uint32_t *
mbox_sorted(const struct mbox_msg *msgs, size_t n)
{
	uint32_t *ix = xcalloc(n ? n : 1, sizeof(*ix));
	size_t i;

	for (i = 0; i < n; i++)
		ix[i] = (uint32_t)i;
	/* glibc qsort_r: the context is the message array */
	qsort_r(ix, n, sizeof(*ix), mbox_digest_cmp, (void *)(uintptr_t)msgs);
	return ix;
}

void
mbox_assign_uidls(const struct mbox_msg *msgs, size_t n,
    char (*uidl)[MBOX_UIDL_MAX])
{
	uint32_t *ix = mbox_sorted(msgs, n);
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		const struct mbox_msg *m = &msgs[ix[i]];
		char hex[2 * 12 + 1];

		if (i > 0 && memcmp(m->digest, msgs[ix[i - 1]].digest,
		    MBOX_DIGEST_LEN) == 0)
			k++;
		else
			k = 0;
		hex_encode(m->digest, 12, hex);
		if (k == 0)
			snprintf(uidl[ix[i]], MBOX_UIDL_MAX, "%.24s", hex);
		else
			snprintf(uidl[ix[i]], MBOX_UIDL_MAX, "%.24s-%u", hex,
			    (unsigned)(k & 0xffffffffu));
	}
	free(ix);
}

/* ---- snapshot ---- */

/* Parses fd from off to end into p; counts the bytes read. */
static enum mbox_status
mbox_parse_range(int fd, struct mbox_parser *p, uint64_t off, uint64_t end,
    uint64_t *parsed, char *err, size_t errsz)
{
	unsigned char *buf = xmalloc(MBOX_IO_CHUNK);
	enum mbox_status st = MBOX_OK;

	while (off < end) {
		size_t k = end - off > MBOX_IO_CHUNK ? MBOX_IO_CHUNK :
		    (size_t)(end - off);

		if (!mbox_pread_full(fd, buf, k, off)) {
			snprintf(err, errsz, "read: %s", strerror(errno));
			st = MBOX_TEMP;
			break;
		}
		*parsed += k;
		off += k;
		if (!mbox_parser_feed(p, buf, k))
			break;
	}
	free(buf);
	if (st == MBOX_OK && !mbox_parser_finish(p)) {
		snprintf(err, errsz, "not an mbox file (no From_ line at "
		    "the start)");
		st = MBOX_PERM;
	}
	return st;
}

/* Builds mb->msgs for the locked file described by cur. */
static enum mbox_status
mbox_build(struct mbox *mb, const struct mbox_file_id *cur, char *err,
    size_t errsz)
{
	struct mbox_file_id iid;
	unsigned char itail[MBOX_DIGEST_LEN], tail[MBOX_DIGEST_LEN];
	struct mbox_msg *im = NULL, *nm;
	struct mbox_parser *p;
	size_t in = 0, keep = 0, nn, i;
	uint64_t from = 0;
	enum mbox_status st;
	bool have = mbox_index_load(mb->index_path, &iid, itail, &im, &in);

	if (have && iid.dev == cur->dev && iid.ino == cur->ino) {
		if (mbox_file_id_eq(&iid, cur)) {
			mb->msgs = im;
			mb->n = in;
			return MBOX_OK;
		}
		/* Grown: the old end still hashes alike and a From_ line
		 * follows it?  Then only the last known message and the new
		 * bytes are parsed (the last one may have grown too). */
		if (cur->size > iid.size && in > 0 &&
		    mbox_tail_hash(mb->fd, iid.size, tail) &&
		    memcmp(tail, itail, MBOX_DIGEST_LEN) == 0) {
			keep = in - 1;
			from = im[in - 1].from_off;
		}
	}
	if (keep == 0) {
		free(im);
		im = NULL;
		from = 0;
	}
	p = mbox_parser_new(from);
	st = mbox_parse_range(mb->fd, p, from, cur->size, &mb->parsed, err,
	    errsz);
	if (st != MBOX_OK) {
		mbox_parser_free(&p);
		free(im);
		return st;
	}
	nm = mbox_parser_take(p, &nn);
	mbox_parser_free(&p);
	if (keep > 0) {
		im = xreallocarray(im, keep + nn + 1, sizeof(*im));
		for (i = 0; i < nn; i++)
			im[keep + i] = nm[i];
		free(nm);
		nm = im;
		nn += keep;
	}
	mb->msgs = nm;
	mb->n = nn;
	if (mbox_tail_hash(mb->fd, cur->size, tail))
		mbox_index_write(mb->index_path, cur, tail, mb->msgs, mb->n);
	return MBOX_OK;
}

static struct mbox *
mbox_new(const char *path, const struct mbox_opts *o)
{
	struct mbox *mb = xcalloc(1, sizeof(*mb));
	const char *prefix = o->state_prefix ? o->state_prefix : path;

	mb->path = xstrdup(path);
	mb->index_path = xasprintf("%s.posuto-index", prefix);
	mb->journal_path = xasprintf("%s.posuto-journal", prefix);
	mb->append_path = xasprintf("%s.posuto-append", prefix);
	mb->opts = *o;
	mb->opts.state_prefix = NULL;	/* not kept: the paths are */
	mb->fd = -1;
	return mb;
}

/* Opens path for reading and writing if we may; regular files only. */
static enum mbox_status
mbox_open_fd(struct mbox *mb, int extra_flags, mode_t mode, char *err,
    size_t errsz)
{
	struct stat st;

	mb->fd = open(mb->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | extra_flags,
	    mode);
	mb->writable = mb->fd >= 0;
	if (mb->fd < 0 && (errno == EACCES || errno == EROFS))
		mb->fd = open(mb->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (mb->fd < 0) {
		if (errno == ENOENT)
			return MBOX_OK;
		snprintf(err, errsz, "open: %s", strerror(errno));
		return errno == ELOOP ? MBOX_PERM : MBOX_TEMP;
	}
	if (fstat(mb->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "not a regular file");
		return MBOX_PERM;
	}
	return MBOX_OK;
}

enum mbox_status
mbox_open_snapshot(const char *path, const struct mbox_opts *o,
    struct mbox **mb_r, char *err, size_t errsz)
{
	struct mbox *mb = mbox_new(path, o);
	struct mbox_lock lk;
	struct stat st;
	enum mbox_status s;
	size_t i;

	*mb_r = NULL;
	s = mbox_open_fd(mb, 0, 0, err, errsz);
	if (s != MBOX_OK || mb->fd < 0)
		goto out;
	s = mbox_lock_acquire(&lk, mb->fd, path, &o->lock, err, errsz);
	if (s != MBOX_OK)
		goto out;
	if (!mb->writable) {
		if (access(mb->journal_path, F_OK) == 0) {
			snprintf(err, errsz, "an interrupted expunge needs "
			    "recovery but the mbox is read-only");
			s = MBOX_TEMP;
		}
	} else
		s = mbox_journal_recover(mb->fd, mb->journal_path, err, errsz);
	if (s == MBOX_OK)
		s = mbox_append_recover(mb->fd, mb->writable, mb->append_path,
		    mb->journal_path, false, err, errsz);
	if (s == MBOX_OK && fstat(mb->fd, &st) != 0) {
		snprintf(err, errsz, "fstat: %s", strerror(errno));
		s = MBOX_TEMP;
	}
	if (s == MBOX_OK) {
		mbox_file_id_from_stat(&mb->id, &st);
		s = mbox_build(mb, &mb->id, err, errsz);
	}
	mbox_lock_release(&lk);
out:
	if (s != MBOX_OK) {
		mbox_close(&mb);
		return s;
	}
	mb->uidl = xcalloc(mb->n ? mb->n : 1, sizeof(*mb->uidl));
	mbox_assign_uidls(mb->msgs, mb->n, mb->uidl);
	/* unlocked: bytes read for it are checked by the reader's digest */
	if ((s = mbox_compat_apply(mb, err, errsz)) != MBOX_OK) {
		mbox_close(&mb);
		return s;
	}
	for (i = mb->skip; i < mb->n; i++)
		mb->total += mb->c_size != NULL ? mb->c_size[i] :
		    mb->msgs[i].wire_size;
	*mb_r = mb;
	return MBOX_OK;
}

void
mbox_close(struct mbox **mbp)
{
	struct mbox *mb = *mbp;

	if (mb == NULL)
		return;
	if (mb->fd >= 0)
		close(mb->fd);
	free(mb->path);
	free(mb->index_path);
	free(mb->journal_path);
	free(mb->append_path);
	mbox_compat_free(mb);
	free(mb->msgs);
	free(mb->uidl);
	free(mb);
	*mbp = NULL;
}

uint32_t
mbox_msg_count(const struct mbox *mb)
{
	return (uint32_t)(mb->n - mb->skip);
}

uint64_t
mbox_msg_size(const struct mbox *mb, uint32_t idx)
{
	idx += mb->skip;
	return mb->c_size != NULL ? mb->c_size[idx] : mb->msgs[idx].wire_size;
}

const char *
mbox_msg_uidl(const struct mbox *mb, uint32_t idx)
{
	return mb->uidl[idx + mb->skip];
}

enum mbox_compat
mbox_compat_used(const struct mbox *mb)
{
	return mb->c_used;
}

const char *
mbox_msg_uidl_status(const struct mbox *mb, uint32_t idx, const char **old_r)
{
	idx += mb->skip;
	*old_r = NULL;
	if (mb->c_status == NULL || idx >= mb->n)
		return "new";
	*old_r = mb->c_old[idx];
	switch (mb->c_status[idx]) {
	case MBOX_CSTAT_KEPT:
		return "kept";
	case MBOX_CSTAT_INVALID:
		return "invalid";
	case MBOX_CSTAT_DUP:
		return "duplicate";
	case MBOX_CSTAT_RENUMBERED:
		return "renumbered";
	default:
		return "new";
	}
}

void
mbox_compat_describe(const struct mbox *mb, char *buf, size_t bufsz)
{
	unsigned n = (unsigned)(mb->n - mb->skip);

	if (mb->c_used == MBOX_COMPAT_UW && mb->c_renumbered)
		(void)snprintf(buf, bufsz, "uw (X-IMAPbase/X-UID headers "
		    "that c-client would renumber: posuto's own UIDLs; its "
		    "headers hidden%s)", mb->skip ? ", pseudo-message hidden" :
		    "");
	else if (mb->c_used == MBOX_COMPAT_UW)
		(void)snprintf(buf, bufsz, "uw (X-IMAPbase/X-UID headers, "
		    "uidvalidity %llu%s; %u of %u messages have its UIDL)",
		    (unsigned long long)mb->c_uidvalidity, mb->skip ?
		    ", pseudo-message hidden" : "", (unsigned)mb->c_kept, n);
	else if (mb->c_used == MBOX_COMPAT_QPOPPER)
		(void)snprintf(buf, bufsz, "qpopper (X-UIDL headers%s; %u of "
		    "%u messages have its UIDL)", mb->skip ?
		    ", pseudo-message hidden" : "", (unsigned)mb->c_kept, n);
	else
		(void)snprintf(buf, bufsz, "posuto");
}

uint64_t
mbox_total_size(const struct mbox *mb)
{
	return mb->total;
}

uint64_t
mbox_bytes_parsed(const struct mbox *mb)
{
	return mb->parsed;
}

/* ---- reader ---- */

#define MBOX_RD_BUF	16384

struct mbox_reader {
	struct mbox *mb;
	const struct mbox_msg *m;
	const struct mbox_hidden *hide;	/* lines not served (mbox_compat.c) */
	size_t nhide;
	uint64_t off;		/* next raw byte to read */
	uint64_t end;		/* data_off + data_len */
	EVP_MD_CTX *md;
	struct mbox_unquote uq;
	struct wire_enc we;
	unsigned char raw[MBOX_RD_BUF];
	unsigned char unq[MBOX_RD_BUF + 2 * MBOX_UNQUOTE_SLACK];
	size_t unq_pos, unq_len;
	size_t raw_span;	/* raw bytes the last fill read */
	unsigned char fin[WIRE_ENC_FINISH_MAX];
	size_t fin_pos, fin_len;
	bool raw_done;		/* all raw bytes read and un-quoted */
	bool stored;		/* give the un-quoted stored bytes, no wire form */
	bool verbatim;		/* UW/qpopper mode: ">From " as stored */
	bool verified;
	bool failed;
};

static enum mbox_status
mbox_reader_open(struct mbox *mb, uint32_t idx, long long body_lines,
    bool stored, struct mbox_reader **r_r)
{
	const struct mbox_msg *m;
	struct mbox_reader *r;
	unsigned char from[MBOX_FROM_MAX];
	size_t flen;
	struct stat st;

	*r_r = NULL;
	idx += mb->skip;
	m = &mb->msgs[idx];
	flen = (size_t)(m->data_off - m->from_off);
	if (mb->fd < 0 || mb->expunged || fstat(mb->fd, &st) != 0)
		return MBOX_TEMP;
	if ((uint64_t)st.st_size < m->end_off || st.st_nlink == 0)
		return MBOX_CHANGED;
	if (flen > sizeof(from) || !mbox_pread_full(mb->fd, from, flen,
	    m->from_off) || flen < 5 || memcmp(from, "From ", 5) != 0)
		return MBOX_CHANGED;
	r = xcalloc(1, sizeof(*r));
	r->mb = mb;
	r->m = m;
	r->off = m->data_off;
	r->end = m->data_off + m->data_len;
	r->md = EVP_MD_CTX_new();
	if (r->md == NULL || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(r->md, from, flen) != 1)
		abort();
	mbox_unquote_init(&r->uq);
	wire_enc_init(&r->we, body_lines);
	r->stored = stored;
	/* c-client (unix.c unix_text_work) and qpopper (pop_send.c) sent
	 * the stored lines as they were: no mboxrd un-quoting */
	r->verbatim = mb->c_used != MBOX_COMPAT_NONE;
	if (mb->c_hide != NULL && mb->c_hide_at != NULL) {
		r->hide = mb->c_hide + mb->c_hide_at[idx];
		r->nhide = mb->c_hide_at[idx + 1] - mb->c_hide_at[idx];
	}
	*r_r = r;
	return MBOX_OK;
}

enum mbox_status
mbox_msg_reader_open(struct mbox *mb, uint32_t idx, long long body_lines,
    struct mbox_reader **r_r)
{
	return mbox_reader_open(mb, idx, body_lines, false, r_r);
}

enum mbox_status
mbox_msg_reader_open_stored(struct mbox *mb, uint32_t idx,
    struct mbox_reader **r_r)
{
	return mbox_reader_open(mb, idx, -1, true, r_r);
}

/* Drops the hidden lines from raw[0..k) (read at r->off): they still
 * count for the digest, not for what is served.  Returns what is left;
 * r->raw_span is k before. */
static size_t
mbox_reader_unhide(struct mbox_reader *r, size_t k)
{
	uint64_t lo = r->off, hi = r->off + k;
	size_t o = 0, i = 0;

	r->raw_span = k;
	if (r->nhide == 0 || hi <= r->hide[0].off ||
	    lo >= r->hide[r->nhide - 1].off + r->hide[r->nhide - 1].len)
		return k;	/* the body: nothing hidden */
	while (i < k) {
		uint64_t at = lo + i, skip_to = 0;

		for (size_t h = 0; h < r->nhide; h++)
			if (at >= r->hide[h].off &&
			    at < r->hide[h].off + r->hide[h].len) {
				skip_to = r->hide[h].off + r->hide[h].len;
				break;
			}
		if (skip_to != 0) {
			i = skip_to >= hi ? k : (size_t)(skip_to - lo);
			continue;
		}
		r->raw[o++] = r->raw[i++];
	}
	return o;
}

/* Refills unq[] from the file; at the end checks the digest. */
static bool
mbox_reader_fill(struct mbox_reader *r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t k;

	r->unq_pos = r->unq_len = 0;
	if (r->off < r->end) {
		k = r->end - r->off > MBOX_RD_BUF ? MBOX_RD_BUF :
		    (size_t)(r->end - r->off);
		if (!mbox_pread_full(r->mb->fd, r->raw, k, r->off))
			return false;
		if (EVP_DigestUpdate(r->md, r->raw, k) != 1)
			abort();
		k = mbox_reader_unhide(r, k);
		r->off += r->raw_span;
		if (r->verbatim) {
			memcpy(r->unq, r->raw, k);
			r->unq_len = k;
		} else {
			r->unq_len = mbox_unquote_update(&r->uq, r->raw, k,
			    r->unq);
		}
		return true;
	}
	r->unq_len = r->verbatim ? 0 : mbox_unquote_finish(&r->uq, r->unq);
	r->raw_done = true;
	if (EVP_DigestFinal_ex(r->md, md, &mdlen) != 1 ||
	    memcmp(md, r->m->digest, MBOX_DIGEST_LEN) != 0) {
		/* The cache may be what is wrong: rebuild it next time. */
		(void)unlink(r->mb->index_path);
		errno = ESTALE;
		return false;
	}
	r->verified = true;
	return true;
}

ssize_t
mbox_msg_reader_read(struct mbox_reader *r, void *buf, size_t len)
{
	unsigned char *o = buf;
	size_t done = 0;

	if (r->failed)
		return -1;
	while (done < len) {
		if (r->fin_len > 0) {
			size_t k = r->fin_len - r->fin_pos;

			if (k > len - done)
				k = len - done;
			memcpy(o + done, r->fin + r->fin_pos, k);
			r->fin_pos += k;
			done += k;
			if (r->fin_pos == r->fin_len)
				break;
			continue;
		}
		if (r->unq_pos == r->unq_len) {
			if (r->raw_done && r->stored)
				break;	/* verified: 0 may be returned */
			if (r->raw_done) {
				/* all verified: the terminator may go out */
				r->fin_len = wire_enc_finish(&r->we, r->fin);
				continue;
			}
			if (!mbox_reader_fill(r)) {
				r->failed = true;
				return -1;
			}
			continue;
		}
		if (r->stored) {
			size_t k = r->unq_len - r->unq_pos;

			if (k > len - done)
				k = len - done;
			memcpy(o + done, r->unq + r->unq_pos, k);
			r->unq_pos += k;
			done += k;
			continue;
		}
		if (wire_enc_done(&r->we)) {
			/* TOP: the rest is read only for the digest */
			r->unq_pos = r->unq_len;
			continue;
		}
		{
			size_t used = 0, w;

			w = wire_enc_update(&r->we, r->unq + r->unq_pos,
			    r->unq_len - r->unq_pos, o + done, len - done,
			    &used);
			r->unq_pos += used;
			done += w;
			if (w == 0 && used == 0)
				break;	/* out too small for progress */
		}
	}
	return (ssize_t)done;
}

void
mbox_msg_reader_close(struct mbox_reader **rp)
{
	struct mbox_reader *r = *rp;

	if (r == NULL)
		return;
	EVP_MD_CTX_free(r->md);
	free(r);
	*rp = NULL;
}

/* ---- append ---- */

struct mbox_out {
	int fd;			/* -1: only count and hash (the first pass) */
	EVP_MD_CTX *md;		/* NULL: do not hash */
	uint64_t total;
	unsigned char buf[MBOX_IO_CHUNK];
	size_t len;
	bool failed;
	int err;
};

static void
mbox_out_flush(struct mbox_out *w)
{
	const unsigned char *b = w->buf;
	size_t len = w->len;

	w->len = 0;
	if (w->md != NULL && len > 0 && EVP_DigestUpdate(w->md, b, len) != 1)
		abort();
	w->total += len;
	while (w->fd >= 0 && !w->failed && len > 0) {
		ssize_t n = write(w->fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->failed = true;
			w->err = n < 0 ? errno : ENOSPC;
			return;
		}
		b += n;
		len -= (size_t)n;
	}
}

static void
mbox_out_put(struct mbox_out *w, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len > 0 && !w->failed) {
		size_t k = sizeof(w->buf) - w->len;

		if (k > len)
			k = len;
		memcpy(w->buf + w->len, b, k);
		w->len += k;
		b += k;
		len -= k;
		if (w->len == sizeof(w->buf))
			mbox_out_flush(w);
	}
}

/* "From sender  Www Mmm dd hh:mm:ss yyyy\n" as Postfix writes it; the
 * names are fixed so the locale cannot change them. */
static size_t
mbox_from_line(char *buf, size_t bufsz, const char *sender, time_t when)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char snd[513];
	struct tm tm;
	size_t i;
	int n;

	if (sender == NULL || *sender == '\0')
		sender = "MAILER-DAEMON";
	for (i = 0; sender[i] != '\0' && i < sizeof(snd) - 1; i++) {
		unsigned char c = (unsigned char)sender[i];

		snd[i] = c <= 0x20 || c == 0x7f ? '_' : (char)c;
	}
	snd[i] = '\0';
	if (localtime_r(&when, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	n = snprintf(buf, bufsz, "From %s  %.3s %.3s %2d %02d:%02d:%02d %d\n",
	    snd, days + 3 * (tm.tm_wday % 7), mons + 3 * (tm.tm_mon % 12),
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	return n < 0 ? 0 : (size_t)n;
}

/* Everything one append writes: separator repair, From_ line, the
 * quoted message, its final newline and the blank line. */
static void
mbox_append_emit(struct mbox_out *w, const char *repair, const char *from,
    size_t from_len, mbox_read_fn rd, void *ctx)
{
	unsigned char *in = xmalloc(MBOX_IO_CHUNK);
	unsigned char *qb = xmalloc(2 * MBOX_IO_CHUNK + MBOX_UNQUOTE_SLACK);
	unsigned char last = '\n';
	struct mbox_quote q;
	ssize_t n;
	size_t k;

	mbox_out_put(w, repair, strlen(repair));
	mbox_out_put(w, from, from_len);
	mbox_quote_init(&q);
	while (!w->failed && (n = rd(ctx, in, MBOX_IO_CHUNK)) != 0) {
		if (n < 0) {
			w->failed = true;
			w->err = errno ? errno : EIO;
			break;
		}
		last = in[n - 1];
		k = mbox_quote_update(&q, in, (size_t)n, qb);
		mbox_out_put(w, qb, k);
	}
	k = mbox_quote_finish(&q, qb);
	mbox_out_put(w, qb, k);
	if (last != '\n')
		mbox_out_put(w, "\n", 1);
	mbox_out_put(w, "\n", 1);
	mbox_out_flush(w);
	free(in);
	free(qb);
}

enum mbox_status
mbox_append(const char *path, const struct mbox_opts *o, const char *sender,
    time_t when, mbox_read_fn rd, mbox_rewind_fn rw, void *ctx, char *err,
    size_t errsz)
{
	struct mbox *mb = mbox_new(path, o);
	struct mbox_out *w = NULL;
	struct mbox_append_mark mk;
	struct mbox_lock lk;
	unsigned char tail[3];
	const char *repair = "";
	char from[600];
	struct stat st;
	enum mbox_status s;
	bool marked = false;
	unsigned int mdlen = 0;
	off_t orig;
	size_t k;

	s = mbox_open_fd(mb, O_CREAT | O_APPEND, 0600, err, errsz);
	if (s == MBOX_OK && !mb->writable) {
		snprintf(err, errsz, "open: %s", strerror(EACCES));
		s = MBOX_TEMP;
	}
	if (s != MBOX_OK) {
		mbox_close(&mb);
		return s;
	}
	s = mbox_lock_acquire(&lk, mb->fd, path, &o->lock, err, errsz);
	if (s != MBOX_OK) {
		mbox_close(&mb);
		return s;
	}
	s = mbox_journal_recover(mb->fd, mb->journal_path, err, errsz);
	if (s == MBOX_OK)
		s = mbox_append_recover(mb->fd, true, mb->append_path,
		    mb->journal_path, false, err, errsz);
	if (s == MBOX_OK && fstat(mb->fd, &st) != 0) {
		snprintf(err, errsz, "fstat: %s", strerror(errno));
		s = MBOX_TEMP;
	}
	if (s != MBOX_OK)
		goto done;
	orig = st.st_size;
	w = xcalloc(1, sizeof(*w));
	/* The From_ line must follow a blank line to be one: repair a file
	 * that does not end in one (else our message joins the last). */
	if (orig > 0) {
		size_t tl = orig >= 3 ? 3 : (size_t)orig;

		if (!mbox_pread_full(mb->fd, tail, tl, (uint64_t)orig - tl)) {
			snprintf(err, errsz, "read: %s", strerror(errno));
			s = MBOX_TEMP;
			goto done;
		} else if (tail[tl - 1] != '\n')
			repair = "\n\n";
		else if (!(tl >= 2 && tail[tl - 2] == '\n') &&
		    !(tl == 3 && memcmp(tail, "\n\r\n", 3) == 0))
			repair = "\n";
	}
	k = mbox_from_line(from, sizeof(from), sender, when);
	memset(&mk, 0, sizeof(mk));
	mk.dev = (uint64_t)st.st_dev;
	mk.ino = (uint64_t)st.st_ino;
	mk.orig = (uint64_t)orig;
	mk.from_off = mk.orig + strlen(repair);
	mk.end = UINT64_MAX;	/* unknown: a left marker means torn */
	mk.from = from;
	mk.from_len = k;
	if (rw != NULL) {
		/* First pass: the length and hash of what will be written,
		 * so that recovery can tell a complete append from a torn
		 * one whatever became of the marker. */
		w->fd = -1;
		w->md = EVP_MD_CTX_new();
		if (w->md == NULL ||
		    EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
			abort();
		mbox_append_emit(w, repair, from, k, rd, ctx);
		if (!w->failed && EVP_DigestFinal_ex(w->md, mk.hash,
		    &mdlen) != 1)
			abort();
		EVP_MD_CTX_free(w->md);
		w->md = NULL;
		if (w->failed) {
			snprintf(err, errsz, "append: %s", strerror(w->err));
			s = MBOX_TEMP;
			goto done;
		}
		mk.end = mk.orig + w->total;
		rw(ctx);
		memset(w, 0, sizeof(*w));
	}
	w->fd = mb->fd;
	/* Marked before the first byte: a kill or a power cut mid-append
	 * leaves a marker, and the next open, append or expunge removes
	 * the torn message before anyone reads it.  Where the state
	 * directory is not ours to write, go on as Postfix does, without. */
	marked = mbox_append_mark_set(mb->append_path, &mk);
	if (!marked && errno != EACCES && errno != EPERM && errno != EROFS) {
		snprintf(err, errsz, "append marker %s: %s", mb->append_path,
		    strerror(errno));
		s = MBOX_TEMP;
		goto done;
	}
	mbox_append_emit(w, repair, from, k, rd, ctx);
	if (!w->failed && rw != NULL && mk.orig + w->total != mk.end) {
		w->failed = true;	/* the spool changed between passes */
		w->err = EIO;
	}
	if (!w->failed && fsync(mb->fd) != 0) {
		w->failed = true;
		w->err = errno;
	}
	if (w->failed) {
		/* Postfix's rule: no partial message stays behind. */
		snprintf(err, errsz, "append: %s", strerror(w->err));
		if (ftruncate(mb->fd, orig) != 0 || fsync(mb->fd) != 0) {
			snprintf(err, errsz, "append: %s; truncating back "
			    "failed: %s", strerror(w->err), strerror(errno));
			marked = false;	/* left for the recovery */
		}
		s = MBOX_TEMP;
	}
	/* Without the first pass a marker left behind reads as torn, so
	 * its end must be durable before we say the mail is delivered. */
	if (marked && !mbox_append_mark_clear(mb->append_path, rw == NULL) &&
	    s == MBOX_OK) {
		snprintf(err, errsz, "append marker %s: %s", mb->append_path,
		    strerror(errno));
		s = MBOX_TEMP;
	}
done:
	mbox_lock_release(&lk);
	free(w);
	mbox_close(&mb);
	return s;
}
