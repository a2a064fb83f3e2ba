/*
 * mbox_expunge.c - removing messages from an mbox at QUIT, crash-safe.
 *
 * In-place rewrite with a journal, not "write a new file and rename it
 * over the mbox": the rename needs a temporary file in the spool
 * directory (/var/mail is root:mail 2775 on Debian: users cannot create
 * files there), gives the mbox a new inode, owner and mode (and breaks
 * hard links and the inode other programs hold open), and loses mail an
 * MTA that ignored our locks appended to the old inode.  Writing in place
 * needs only write access to the mbox, keeps all of that, and its
 * journal can live anywhere we can write (the state prefix).
 *
 * The journal holds the final bytes of the file from D (the first
 * deleted message's From_ line) to the end: the kept messages after D and
 * any mail appended since the snapshot.  Steps, each durable before the
 * next:
 *   1. journal tmp written and fsync'd, renamed into place, dir fsync'd;
 *   2. journal data written over the mbox at D, fsync;
 *   3. ftruncate to D + len, fsync;
 *   4. journal unlinked, dir fsync'd.
 * A crash before 1 leaves the mbox untouched (and no journal).  After 1,
 * recovery (next open, append or expunge, under the locks) redoes 2-4,
 * which are idempotent.  To redo them it must know whether 3 happened,
 * even if an MTA broke our stale dotlock and appended meanwhile: the
 * journal records a hash of the old bytes [D + len, orig); if they are
 * still there the file was not truncated and anything past orig was
 * appended; otherwise it was, [D, D + len) must equal the journal data,
 * and anything past D + len was appended.  Appended mail is first folded
 * into a new journal (tmp + rename), so it is never lost either.
 * Messages are copied as whole regions (From_ line to the next From_
 * line, blank separator included), so no message is cut or joined.
 */
#include "store/mbox_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/xmalloc.h"

#define MBOX_J_CHUNK	(64 * 1024)
#define MBOX_J_HASH	32

static const char mbox_journal_magic[8] = "PSTMBXJ1";

struct mbox_jhdr {
	char magic[8];
	uint32_t order;
	uint32_t version;
	uint64_t dev, ino;
	uint64_t d;		/* offset the data goes to */
	uint64_t orig;		/* file size the journal was made for */
	uint64_t len;		/* data bytes following the header */
	unsigned char old_hash[MBOX_J_HASH];	/* of [d + len, orig) */
	unsigned char data_hash[MBOX_J_HASH];
	unsigned char hdr_hash[MBOX_J_HASH];	/* of the fields above */
};

struct mbox_range {
	int fd;
	uint64_t off, len;
};

static void
mbox_sha256(const void *b, size_t len, unsigned char out[MBOX_J_HASH])
{
	unsigned int n = 0;

	if (EVP_Digest(b, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != MBOX_J_HASH)
		abort();
}

/*
 * Writes a journal with the bytes of the ranges as data, atomically
 * (tmp, fsync, rename, dir fsync).  h: dev, ino, d, orig filled in; the
 * rest is computed (old_hash reads [d + len, orig) of mbox_fd).
 */
static bool
mbox_journal_write(const char *jpath, int mbox_fd, struct mbox_jhdr *h,
    const struct mbox_range *rg, size_t nrg)
{
	char *tmp = xasprintf("%s.tmp", jpath);
	unsigned char *buf = xmalloc(MBOX_J_CHUNK);
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t pos = sizeof(*h);
	bool ok;
	size_t i;
	int fd;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		abort();
	(void)unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	ok = fd >= 0;
	h->len = 0;
	for (i = 0; ok && i < nrg; i++) {
		uint64_t off = rg[i].off, left = rg[i].len;

		while (ok && left > 0) {
			size_t k = left > MBOX_J_CHUNK ? MBOX_J_CHUNK :
			    (size_t)left;

			ok = mbox_pread_full(rg[i].fd, buf, k, off) &&
			    mbox_pwrite_full(fd, buf, k, pos) &&
			    EVP_DigestUpdate(ctx, buf, k) == 1;
			mbox_crash_point();
			off += k;
			pos += k;
			left -= k;
			h->len += k;
		}
	}
	ok = ok && EVP_DigestFinal_ex(ctx, h->data_hash, &mdlen) == 1;
	ok = ok && mbox_hash_range(mbox_fd, h->d + h->len,
	    h->orig > h->d + h->len ? h->orig - h->d - h->len : 0,
	    h->old_hash, MBOX_J_HASH);
	memcpy(h->magic, mbox_journal_magic, 8);
	h->order = 0x01020304u;
	h->version = 1;
	mbox_sha256(h, offsetof(struct mbox_jhdr, hdr_hash), h->hdr_hash);
	ok = ok && mbox_pwrite_full(fd, h, sizeof(*h), 0);
	mbox_crash_point();
	ok = ok && fsync(fd) == 0;
	mbox_crash_point();
	if (fd >= 0)
		close(fd);
	ok = ok && rename(tmp, jpath) == 0;
	mbox_crash_point();
	ok = ok && mbox_fsync_dir_of(jpath);
	if (!ok)
		(void)unlink(tmp);
	EVP_MD_CTX_free(ctx);
	free(buf);
	free(tmp);
	return ok;
}

/* Opens and validates the journal; -1 if unusable (errno: ENOENT if
 * there is none, EBADMSG if damaged). */
static int
mbox_journal_open(const char *jpath, struct mbox_jhdr *h)
{
	unsigned char sum[MBOX_J_HASH];
	struct stat st;
	int fd = open(jpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < sizeof(*h) ||
	    !mbox_pread_full(fd, h, sizeof(*h), 0))
		goto bad;
	mbox_sha256(h, offsetof(struct mbox_jhdr, hdr_hash), sum);
	if (memcmp(h->magic, mbox_journal_magic, 8) != 0 ||
	    h->order != 0x01020304u || h->version != 1 ||
	    memcmp(sum, h->hdr_hash, MBOX_J_HASH) != 0 ||
	    (uint64_t)st.st_size - sizeof(*h) != h->len ||
	    h->d > h->orig || h->len > h->orig - h->d ||
	    !mbox_hash_range(fd, sizeof(*h), h->len, sum, MBOX_J_HASH) ||
	    memcmp(sum, h->data_hash, MBOX_J_HASH) != 0)
		goto bad;
	return fd;
bad:
	close(fd);
	errno = EBADMSG;
	return -1;
}

/* Steps 2-4. */
static bool
mbox_journal_apply(int fd, int jfd, const struct mbox_jhdr *h,
    const char *jpath)
{
	unsigned char *buf = xmalloc(MBOX_J_CHUNK);
	uint64_t done = 0;
	bool ok = true;

	while (ok && done < h->len) {
		size_t k = h->len - done > MBOX_J_CHUNK ? MBOX_J_CHUNK :
		    (size_t)(h->len - done);

		ok = mbox_pread_full(jfd, buf, k, sizeof(*h) + done) &&
		    mbox_pwrite_full(fd, buf, k, h->d + done);
		mbox_crash_point();
		done += k;
	}
	free(buf);
	ok = ok && fsync(fd) == 0;
	mbox_crash_point();
	ok = ok && ftruncate(fd, (off_t)(h->d + h->len)) == 0;
	mbox_crash_point();
	ok = ok && fsync(fd) == 0;
	mbox_crash_point();
	ok = ok && unlink(jpath) == 0;
	mbox_crash_point();
	return ok && mbox_fsync_dir_of(jpath);
}

enum mbox_status
mbox_journal_recover(int fd, const char *jpath, char *err, size_t errsz)
{
	struct mbox_jhdr h, nh;
	unsigned char sum[MBOX_J_HASH];
	struct stat st;
	uint64_t app_off, size;
	char *tmp;
	int jfd;
	bool ok;

	/* A journal killed while being written (before its rename) is
	 * of no use and can be as big as the mbox: we hold the locks, so
	 * nobody is writing it. */
	tmp = xasprintf("%s.tmp", jpath);
	(void)unlink(tmp);
	free(tmp);
	jfd = mbox_journal_open(jpath, &h);
	if (jfd < 0) {
		if (errno == ENOENT)
			return MBOX_OK;
		snprintf(err, errsz, "expunge journal %s is damaged; left "
		    "alone, mailbox not opened", jpath);
		return MBOX_TEMP;
	}
	if (fstat(fd, &st) != 0) {
		close(jfd);
		snprintf(err, errsz, "fstat: %s", strerror(errno));
		return MBOX_TEMP;
	}
	if (h.dev != (uint64_t)st.st_dev || h.ino != (uint64_t)st.st_ino) {
		/* The mbox was replaced since: the journal is not for it.
		 * Keep it for a human, out of the way. */
		char *stale = xasprintf("%s.stale", jpath);

		close(jfd);
		ok = rename(jpath, stale) == 0;
		free(stale);
		if (!ok) {
			snprintf(err, errsz, "cannot move aside the journal "
			    "of a replaced mbox: %s", strerror(errno));
			return MBOX_TEMP;
		}
		return MBOX_OK;
	}
	size = (uint64_t)st.st_size;
	if (size >= h.orig && mbox_hash_range(fd, h.d + h.len,
	    h.orig - h.d - h.len, sum, MBOX_J_HASH) &&
	    memcmp(sum, h.old_hash, MBOX_J_HASH) == 0)
		app_off = h.orig;	/* not truncated yet */
	else if (size >= h.d + h.len && mbox_hash_range(fd, h.d, h.len, sum,
	    MBOX_J_HASH) && memcmp(sum, h.data_hash, MBOX_J_HASH) == 0)
		app_off = h.d + h.len;	/* truncated */
	else {
		close(jfd);
		snprintf(err, errsz, "mbox does not match its expunge journal "
		    "%s; left alone, mailbox not opened", jpath);
		return MBOX_TEMP;
	}
	if (size > app_off) {
		/* Mail appended after the crash: into the journal first. */
		struct mbox_range rg[2] = {
			{ jfd, sizeof(h), h.len },
			{ fd, app_off, size - app_off },
		};

		memset(&nh, 0, sizeof(nh));
		nh.dev = h.dev;
		nh.ino = h.ino;
		nh.d = h.d;
		nh.orig = size;
		ok = mbox_journal_write(jpath, fd, &nh, rg, 2);
		close(jfd);
		if (!ok || (jfd = mbox_journal_open(jpath, &h)) < 0) {
			snprintf(err, errsz, "cannot extend expunge journal "
			    "%s: %s", jpath, strerror(errno));
			return MBOX_TEMP;
		}
	}
	ok = mbox_journal_apply(fd, jfd, &h, jpath);
	close(jfd);
	if (!ok) {
		snprintf(err, errsz, "expunge recovery: %s", strerror(errno));
		return MBOX_TEMP;
	}
	return MBOX_OK;
}

/* Does message m still hold the bytes the snapshot saw? */
static bool
mbox_msg_verify(int fd, const struct mbox_msg *m)
{
	unsigned char md[EVP_MAX_MD_SIZE], *buf = xmalloc(MBOX_J_CHUNK);
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t off = m->from_off, end = m->data_off + m->data_len;
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	while (ok && off < end) {
		size_t k = end - off > MBOX_J_CHUNK ? MBOX_J_CHUNK :
		    (size_t)(end - off);

		ok = mbox_pread_full(fd, buf, k, off) &&
		    EVP_DigestUpdate(ctx, buf, k) == 1;
		off += k;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 &&
	    memcmp(md, m->digest, MBOX_DIGEST_LEN) == 0;
	EVP_MD_CTX_free(ctx);
	free(buf);
	return ok;
}

/* Keeps a deleted copy when a later identical copy stays (its "-k"
 * UIDL would otherwise shift onto the deleted one's). */
static void
mbox_protect_dups(const struct mbox_msg *msgs, size_t n, uint8_t *del)
{
	uint32_t *ix = mbox_sorted(msgs, n);
	size_t g = 0, i, j;

	while (g < n) {
		size_t e = g + 1;
		size_t last_kept = SIZE_MAX;

		while (e < n && memcmp(msgs[ix[e]].digest, msgs[ix[g]].digest,
		    MBOX_DIGEST_LEN) == 0)
			e++;
		for (i = g; i < e; i++)
			if (!del[ix[i]])
				last_kept = i;
		if (last_kept != SIZE_MAX)
			for (j = g; j < last_kept; j++)
				del[ix[j]] = 0;
		g = e;
	}
	free(ix);
}

enum mbox_status
mbox_expunge(struct mbox *mb, const uint8_t *deleted, uint32_t *n_deleted_r,
    char *err, size_t errsz)
{
	struct mbox_range *rg = NULL;
	struct mbox_msg *nm = NULL;
	struct mbox_jhdr h;
	struct mbox_lock lk;
	struct mbox_file_id nid;
	unsigned char five[5], tail[MBOX_DIGEST_LEN];
	struct stat st, pst;
	uint8_t *del = NULL;
	enum mbox_status s = MBOX_OK;
	size_t i, first, nrg = 0, nn = 0, ndel = 0;
	uint64_t size, pos;
	int jfd;

	*n_deleted_r = 0;
	if (mb->expunged)
		return MBOX_TEMP;
	mb->expunged = true;
	if (mb->fd < 0 || mb->n == 0)
		return MBOX_OK;
	del = xcalloc(mb->n, 1);
	/* deleted[] counts the listed messages: a hidden pseudo-message
	 * (mbox_compat.c) is never deleted */
	for (i = mb->skip; i < mb->n; i++)
		del[i] = deleted[i - mb->skip] != 0;
	mbox_protect_dups(mb->msgs, mb->n, del);
	for (first = 0; first < mb->n && !del[first]; first++)
		;
	if (first == mb->n)
		goto out;
	if (!mb->writable) {
		snprintf(err, errsz, "mbox is read-only");
		s = MBOX_TEMP;
		goto out;
	}
	s = mbox_lock_acquire(&lk, mb->fd, mb->path, &mb->opts.lock, err,
	    errsz);
	if (s != MBOX_OK)
		goto out;
	s = mbox_journal_recover(mb->fd, mb->journal_path, err, errsz);
	if (s != MBOX_OK)
		goto unlock;
	/* A torn append goes first; and a marker emptied without a sync
	 * must be durably empty before bytes move. */
	s = mbox_append_recover(mb->fd, true, mb->append_path,
	    mb->journal_path, true, err, errsz);
	if (s != MBOX_OK)
		goto unlock;
	if (fstat(mb->fd, &st) != 0 || stat(mb->path, &pst) != 0) {
		snprintf(err, errsz, "stat: %s", strerror(errno));
		s = MBOX_TEMP;
		goto unlock;
	}
	size = (uint64_t)st.st_size;
	/* Only an MTA's appends are expected; anything else: give up. */
	if (pst.st_dev != st.st_dev || pst.st_ino != st.st_ino ||
	    size < mb->id.size || (size > mb->id.size &&
	    (!mbox_pread_full(mb->fd, five, 5, mb->id.size) ||
	    memcmp(five, "From ", 5) != 0))) {
		snprintf(err, errsz, "mbox changed by another program");
		s = MBOX_CHANGED;
		goto unlock;
	}
	rg = xcalloc(mb->n - first + 1, sizeof(*rg));
	for (i = first; i < mb->n; i++) {
		const struct mbox_msg *m = &mb->msgs[i];

		if (!mbox_msg_verify(mb->fd, m)) {
			snprintf(err, errsz, "mbox changed by another program");
			s = MBOX_CHANGED;
			goto unlock;
		}
		mbox_lock_touch(&lk);
		if (del[i]) {
			ndel++;
			continue;
		}
		if (nrg > 0 && rg[nrg - 1].off + rg[nrg - 1].len == m->from_off)
			rg[nrg - 1].len += m->end_off - m->from_off;
		else
			rg[nrg++] = (struct mbox_range){ mb->fd, m->from_off,
			    m->end_off - m->from_off };
	}
	if (size > mb->id.size)
		rg[nrg++] = (struct mbox_range){ mb->fd, mb->id.size,
		    size - mb->id.size };
	memset(&h, 0, sizeof(h));
	h.dev = (uint64_t)st.st_dev;
	h.ino = (uint64_t)st.st_ino;
	h.d = mb->msgs[first].from_off;
	h.orig = size;
	if (!mbox_journal_write(mb->journal_path, mb->fd, &h, rg, nrg)) {
		snprintf(err, errsz, "cannot write expunge journal %s: %s",
		    mb->journal_path, strerror(errno));
		s = MBOX_TEMP;
		goto unlock;
	}
	/* From here on the expunge happens, now or at recovery. */
	jfd = mbox_journal_open(mb->journal_path, &h);
	if (jfd < 0 || !mbox_journal_apply(mb->fd, jfd, &h,
	    mb->journal_path)) {
		snprintf(err, errsz, "expunge: %s (finished at next open)",
		    strerror(errno));
		s = MBOX_TEMP;
		if (jfd >= 0)
			close(jfd);
		goto unlock;
	}
	close(jfd);
	*n_deleted_r = (uint32_t)ndel;
	/* The index of the new file, so the next login is warm. */
	nm = xcalloc(mb->n, sizeof(*nm));
	pos = h.d;
	for (i = 0; i < mb->n; i++) {
		struct mbox_msg m = mb->msgs[i];
		uint64_t shift;

		if (del[i])
			continue;
		if (i >= first) {
			shift = m.from_off - pos;
			m.from_off -= shift;
			m.data_off -= shift;
			m.end_off -= shift;
			pos = m.end_off;
		}
		nm[nn++] = m;
	}
	if (fstat(mb->fd, &st) == 0) {
		mbox_file_id_from_stat(&nid, &st);
		nid.size = nn > 0 ? nm[nn - 1].end_off : h.d;
		if (mbox_tail_hash(mb->fd, nid.size, tail))
			mbox_index_write(mb->index_path, &nid, tail, nm, nn);
	}
unlock:
	mbox_lock_release(&lk);
out:
	free(nm);
	free(rg);
	free(del);
	return s;
}

/* ---- torn appends ---- */

static const char mbox_amark_magic[8] = "PSTMBXA1";

struct mbox_amark_hdr {
	char magic[8];
	uint32_t order;
	uint32_t version;
	uint64_t dev, ino;
	uint64_t orig, from_off, end;
	uint64_t from_len;
	unsigned char hash[MBOX_J_HASH];
	unsigned char hdr_hash[MBOX_J_HASH];	/* fields above + From_ */
};

static void
mbox_amark_sum(const struct mbox_amark_hdr *h, const char *from,
    unsigned char out[MBOX_J_HASH])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, h, offsetof(struct mbox_amark_hdr,
	    hdr_hash)) != 1 || EVP_DigestUpdate(ctx, from,
	    (size_t)h->from_len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != MBOX_J_HASH)
		abort();
	EVP_MD_CTX_free(ctx);
}

bool
mbox_append_mark_set(const char *apath, const struct mbox_append_mark *m)
{
	struct mbox_amark_hdr h;
	bool created = true, ok;
	size_t len = sizeof(h) + m->from_len;
	unsigned char *buf;
	int fd, e;

	if (m->from_len > MBOX_FROM_MAX + 1) {
		errno = EINVAL;
		return false;
	}
	fd = open(apath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0 && errno == EEXIST) {
		created = false;
		fd = open(apath, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return false;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, mbox_amark_magic, 8);
	h.order = 0x01020304u;
	h.version = 1;
	h.dev = m->dev;
	h.ino = m->ino;
	h.orig = m->orig;
	h.from_off = m->from_off;
	h.end = m->end;
	h.from_len = m->from_len;
	memcpy(h.hash, m->hash, MBOX_J_HASH);
	mbox_amark_sum(&h, m->from, h.hdr_hash);
	buf = xmalloc(len);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), m->from, m->from_len);
	/* One write at offset 0 over an empty file: a power cut leaves an
	 * empty or a short (invalid) marker, and then no byte of the append
	 * was written either. */
	ok = ftruncate(fd, 0) == 0 && mbox_pwrite_full(fd, buf, len, 0) &&
	    fdatasync(fd) == 0;
	e = errno;
	free(buf);
	close(fd);
	if (ok && created)
		ok = mbox_fsync_dir_of(apath);
	else
		errno = e;
	return ok;
}

bool
mbox_append_mark_clear(const char *apath, bool sync)
{
	int fd = open(apath, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return errno == ENOENT;
	ok = ftruncate(fd, 0) == 0 && (!sync || fdatasync(fd) == 0);
	close(fd);
	return ok;
}

/* Reads a valid marker; false if none, empty or invalid (then nothing
 * was appended under it: see mbox_append_mark_set).  *from_r: malloc'd. */
static bool
mbox_amark_read(const char *apath, struct mbox_amark_hdr *h, char **from_r,
    bool *exists_r)
{
	unsigned char sum[MBOX_J_HASH];
	struct stat st;
	char *from = NULL;
	int fd = open(apath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	bool ok;

	*from_r = NULL;
	*exists_r = fd >= 0;
	if (fd < 0)
		return false;
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size > sizeof(*h) &&
	    mbox_pread_full(fd, h, sizeof(*h), 0) &&
	    memcmp(h->magic, mbox_amark_magic, 8) == 0 &&
	    h->order == 0x01020304u && h->version == 1 &&
	    h->from_len <= MBOX_FROM_MAX + 1 &&
	    (uint64_t)st.st_size == sizeof(*h) + h->from_len &&
	    h->orig <= h->from_off && h->from_off <= h->orig + 2 &&
	    h->from_off + h->from_len <= h->end;
	if (ok) {
		from = xmalloc((size_t)h->from_len + 1);
		ok = mbox_pread_full(fd, from, (size_t)h->from_len, sizeof(*h));
	}
	if (ok) {
		mbox_amark_sum(h, from, sum);
		ok = memcmp(sum, h->hdr_hash, MBOX_J_HASH) == 0;
	}
	close(fd);
	if (!ok) {
		free(from);
		return false;
	}
	*from_r = from;
	return true;
}

/*
 * The first From_ line an MTA wrote after our torn message: a "From "
 * anywhere in [off, size) (after a torn line an MTA that does not check
 * for a line start glues its From_ line on) whose line passes the
 * From_-line test; our own body cannot hold one at a line start (it is
 * quoted).  size if there is none.
 */
static uint64_t
mbox_amark_next_from(int fd, uint64_t off, uint64_t size)
{
	const size_t chunk = MBOX_J_CHUNK;
	char *buf = xmalloc(chunk + MBOX_FROM_MAX + 2);
	uint64_t pos, found = size;

	for (pos = off; pos < size && found == size; pos += chunk) {
		size_t want = chunk + MBOX_FROM_MAX + 1, n, i;

		if (want > size - pos)
			want = (size_t)(size - pos);
		if (!mbox_pread_full(fd, buf, want, pos))
			break;
		n = want < chunk ? want : chunk;
		for (i = 0; i < n && found == size; i++) {
			const char *nl;

			if (buf[i] != 'F' || want - i < 5 ||
			    memcmp(buf + i, "From ", 5) != 0)
				continue;
			nl = memchr(buf + i, '\n', want - i);
			if (nl != NULL && mbox_from_line_ok(buf + i,
			    (size_t)(nl - (buf + i))))
				found = pos + i;
		}
	}
	free(buf);
	return found;
}

enum mbox_status
mbox_append_recover(int fd, bool writable, const char *apath,
    const char *jpath, bool rewrite, char *err, size_t errsz)
{
	struct mbox_amark_hdr h;
	unsigned char sum[MBOX_J_HASH];
	struct stat st;
	uint64_t size, have, f;
	char *from = NULL, *cur = NULL;
	bool exists, ok = true;
	enum mbox_status s = MBOX_OK;

	if (!mbox_amark_read(apath, &h, &from, &exists)) {
		if (exists && rewrite && writable &&
		    !mbox_append_mark_clear(apath, true)) {
			snprintf(err, errsz, "append marker %s: %s", apath,
			    strerror(errno));
			return MBOX_TEMP;
		}
		return MBOX_OK;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errsz, "fstat: %s", strerror(errno));
		free(from);
		return MBOX_TEMP;
	}
	size = (uint64_t)st.st_size;
	if (h.dev != (uint64_t)st.st_dev || h.ino != (uint64_t)st.st_ino ||
	    size <= h.orig)
		goto clear;		/* another file, or nothing written */
	if (size >= h.end && mbox_hash_range(fd, h.orig, h.end - h.orig, sum,
	    MBOX_J_HASH) && memcmp(sum, h.hash, MBOX_J_HASH) == 0)
		goto clear;		/* complete: only the marker was left */
	/* Is our From_ line (or its start) there?  If not, the torn bytes
	 * are gone already (a recovery that moved them was interrupted
	 * before it emptied the marker): nothing of ours to remove. */
	have = size > h.from_off ? size - h.from_off : 0;
	if (have > h.from_len)
		have = h.from_len;
	if (have > 0) {
		cur = xmalloc((size_t)have);
		if (!mbox_pread_full(fd, cur, (size_t)have, h.from_off)) {
			snprintf(err, errsz, "read: %s", strerror(errno));
			s = MBOX_TEMP;
			goto out;
		}
		if (memcmp(cur, from, (size_t)have) != 0)
			goto clear;
	}
	if (!writable) {
		snprintf(err, errsz, "a torn append needs recovery but the "
		    "mbox is read-only");
		s = MBOX_TEMP;
		goto out;
	}
	f = have < h.from_len ? size :
	    mbox_amark_next_from(fd, h.from_off + h.from_len, size);
	if (f >= size) {
		/* Only our torn message: back to the size before it. */
		ok = ftruncate(fd, (off_t)h.orig) == 0 && fsync(fd) == 0;
	} else {
		/* An MTA appended after it (it broke our stale dotlock):
		 * move its mail down over ours, crash-safely, as an expunge
		 * does.  The separator newlines before from_off stay. */
		struct mbox_range rg = { fd, f, size - f };
		struct mbox_jhdr jh;
		int jfd;

		memset(&jh, 0, sizeof(jh));
		jh.dev = h.dev;
		jh.ino = h.ino;
		jh.d = h.from_off;
		jh.orig = size;
		ok = mbox_journal_write(jpath, fd, &jh, &rg, 1);
		if (ok) {
			jfd = mbox_journal_open(jpath, &jh);
			ok = jfd >= 0 && mbox_journal_apply(fd, jfd, &jh, jpath);
			if (jfd >= 0)
				close(jfd);
		}
	}
	if (!ok) {
		snprintf(err, errsz, "removing a torn append: %s",
		    strerror(errno));
		s = MBOX_TEMP;
		goto out;
	}
clear:
	if (writable && !mbox_append_mark_clear(apath, true)) {
		snprintf(err, errsz, "append marker %s: %s", apath,
		    strerror(errno));
		s = MBOX_TEMP;
	}
out:
	free(cur);
	free(from);
	return s;
}
