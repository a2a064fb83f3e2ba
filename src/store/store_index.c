/*
 * store_index.c - the per-mailbox size cache.
 *
 * File layout (native byte order; a machine with the other order sees a
 * bad version and rebuilds):
 *   "POSUTOIX"  u64 checksum of everything after it
 *   u32 version  u32 kind  u32 count  u32 zero  u64 payload length
 *   count entries: u64 ino, u64 raw, u64 wire, i64 mtime_sec,
 *                  u32 mtime_nsec, u8 flags, u8 uidl_len, u16 key_len,
 *                  key bytes, uidl bytes
 * The checksum is not cryptographic: it catches torn writes and damage.
 * The file holds nothing a user could not learn by reading their own
 * mail; a forged one can only mislead that user's own sizes, and every
 * field is bounds-checked here.
 */
#include "store/store_index.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"

#define IX_MAGIC	"POSUTOIX"
#define IX_VERSION	1u
#define IX_HDR		40u	/* magic, checksum, 4 x u32, u64 */
#define IX_ENT_FIXED	40u
/* An index bigger than this is not ours (2M messages x ~300 bytes). */
#define IX_MAX_BYTES	((size_t)1 << 30)

struct store_index {
	const unsigned char *buf;
	size_t len;
	uint32_t count;
	void *owned;		/* malloc()ed by store_index_load, or NULL */
};

/* Word-at-a-time checksum, two independent lanes (several GB/s). */
static uint64_t
ix_checksum(const unsigned char *p, size_t n)
{
	uint64_t a = 0x9e3779b97f4a7c15ULL ^ n, b = 0x6a09e667f3bcc909ULL;
	uint64_t w, tail = 0;

	while (n >= 16) {
		memcpy(&w, p, 8);
		a = (a ^ w) * 0x100000001b3ULL + (a >> 29);
		memcpy(&w, p + 8, 8);
		b = (b ^ w) * 0x9fb21c651e98df25ULL + (b >> 31);
		p += 16;
		n -= 16;
	}
	while (n >= 8) {
		memcpy(&w, p, 8);
		a = (a ^ w) * 0x100000001b3ULL + (a >> 29);
		p += 8;
		n -= 8;
	}
	memcpy(&tail, p, n);
	b ^= tail;
	return bytes_mix64(a ^ bytes_mix64(b));
}

/* Decodes the entry at p (len bytes left); returns its size or 0. */
static size_t
ix_entry(const unsigned char *p, size_t left, struct store_index_entry *e)
{
	size_t n;

	if (left < IX_ENT_FIXED)
		return 0;
	e->ino = bytes_rd64(p);
	e->raw_size = bytes_rd64(p + 8);
	e->wire_size = bytes_rd64(p + 16);
	memcpy(&e->mtime_sec, p + 24, 8);
	e->mtime_nsec = bytes_rd32(p + 32);
	e->flags = p[36];
	e->uidl_len = p[37];
	memcpy(&e->key_len, p + 38, 2);
	n = IX_ENT_FIXED + (size_t)e->key_len + e->uidl_len;
	if (e->key_len == 0 || left < n)
		return 0;
	e->key = (const char *)p + IX_ENT_FIXED;
	e->uidl = e->uidl_len ? e->key + e->key_len : NULL;
	/* CRLF never shrinks a message and at most doubles it plus the
	 * final CRLF; anything else is not a size we wrote */
	if (e->wire_size < e->raw_size ||
	    e->wire_size - e->raw_size > e->raw_size + 2 ||
	    (e->uidl_len && !store_uidl_valid(e->uidl, e->uidl_len)))
		return 0;
	return n;
}

struct store_index *
store_index_parse(const void *image, size_t len, uint32_t kind)
{
	const unsigned char *buf = image, *p;
	struct store_index_entry e;
	struct store_index *ix;
	uint32_t count, i;
	uint64_t plen;

	if (len < IX_HDR || memcmp(buf, IX_MAGIC, 8) != 0 ||
	    bytes_rd64(buf + 8) != ix_checksum(buf + 16, len - 16) ||
	    bytes_rd32(buf + 16) != IX_VERSION || bytes_rd32(buf + 20) != kind ||
	    bytes_rd32(buf + 28) != 0)
		return NULL;
	count = bytes_rd32(buf + 24);
	plen = bytes_rd64(buf + 32);
	if (plen != len - IX_HDR || count > MAILBOX_MAX_MESSAGES ||
	    (uint64_t)count * IX_ENT_FIXED > plen)
		return NULL;
	/* one sequential validation pass; the iterator then trusts it */
	p = buf + IX_HDR;
	for (i = 0; i < count; i++) {
		size_t n = ix_entry(p, (size_t)(buf + len - p), &e);

		if (n == 0)
			return NULL;
		p += n;
	}
	if (p != buf + len)
		return NULL;
	ix = xcalloc(1, sizeof(*ix));
	ix->buf = buf;
	ix->len = len;
	ix->count = count;
	return ix;
}

struct store_index *
store_index_load(int dirfd, uint32_t kind)
{
	struct store_index *ix;
	struct stat st;
	unsigned char *buf;
	size_t off = 0;
	int fd;

	fd = openat(dirfd, STORE_INDEX_NAME,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1) {
		if (errno != ENOENT)
			log_debug("store: index unreadable: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size < (off_t)IX_HDR || (uint64_t)st.st_size > IX_MAX_BYTES) {
		close(fd);
		return NULL;
	}
	/* read(), not mmap(): the file is in a directory the mail user can
	 * write, and truncating a mapped file would SIGBUS the whole
	 * server process, not just this session */
	buf = xmalloc((size_t)st.st_size);
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (off != (size_t)st.st_size ||
	    (ix = store_index_parse(buf, off, kind)) == NULL) {
		free(buf);
		log_info("store: ignoring damaged index, rebuilding");
		return NULL;
	}
	ix->owned = buf;
	return ix;
}

uint32_t
store_index_count(const struct store_index *ix)
{
	return ix != NULL ? ix->count : 0;
}

void
store_index_iter_init(const struct store_index *ix,
    struct store_index_iter *it)
{
	it->p = ix != NULL ? ix->buf + IX_HDR : NULL;
	it->left = ix != NULL ? ix->count : 0;
}

bool
store_index_iter_next(struct store_index_iter *it,
    struct store_index_entry *e)
{
	size_t n;

	if (it->left == 0)
		return false;
	/* validated by store_index_parse: the bound is never reached */
	n = ix_entry(it->p, SIZE_MAX, e);
	if (n == 0)
		fatalx("store: index changed after validation");
	it->p += n;
	it->left--;
	return true;
}

void
store_index_free(struct store_index **ixp)
{
	struct store_index *ix = *ixp;

	if (ix == NULL)
		return;
	free(ix->owned);
	free(ix);
	*ixp = NULL;
}

struct store_index_order_ctx {
	const struct store_fs *mb;
};

static int
store_index_order_cmp(const void *a, const void *b, void *arg)
{
	const struct store_fs *mb =
	    ((const struct store_index_order_ctx *)arg)->mb;
	const struct store_msg *x = &mb->msgs[*(const uint32_t *)a];
	const struct store_msg *y = &mb->msgs[*(const uint32_t *)b];

	return mb->ops->key_cmp(store_pool_str(mb, x->name_off), x->key_len,
	    store_pool_str(mb, y->name_off), y->key_len);
}

/*
 * The index is merged with the scan in key order (store_index_apply), but
 * messages may be served in another (the old server's: store_compat.c):
 * NULL if they are in key order already (one comparison each), else the
 * message indices in key order (free() it).
 */
static uint32_t *
store_index_order(const struct store_fs *mb)
{
	struct store_index_order_ctx ctx = { mb };
	uint32_t *ord, i;

	for (i = 1; i < mb->count; i++) {
		uint32_t a = i - 1, b = i;

		if (store_index_order_cmp(&a, &b, &ctx) > 0)
			break;
	}
	if (i >= mb->count)
		return NULL;
	ord = xreallocarray(NULL, mb->count, sizeof(*ord));
	for (i = 0; i < mb->count; i++)
		ord[i] = i;
	qsort_r(ord, mb->count, sizeof(*ord), store_index_order_cmp, &ctx);
	return ord;
}

void *
store_index_build(const struct store_fs *mb, const uint8_t *skip,
    size_t *len_r)
{
	size_t len = IX_HDR, off;
	uint32_t i, count = 0;
	unsigned char *buf;
	/* a Maildir with another server's UIDLs pins every message's UIDL
	 * (store_compat.c), sized or not */
	bool pin = store_compat_pins(mb);
	bool with_uidl = mb->ops->index_kind == STORE_INDEX_KIND_EMLDIR || pin;
	uint32_t *ord;

	for (i = 0; i < mb->count; i++) {
		const struct store_msg *m = &mb->msgs[i];

		if ((skip != NULL && (skip[i / 8] & (1u << (i % 8)))) ||
		    ((m->flags & (STORE_MSG_SIZED | STORE_MSG_RAW)) !=
		    (STORE_MSG_SIZED | STORE_MSG_RAW) &&
		    !(pin && m->uidl_off != 0)))
			continue;
		len += IX_ENT_FIXED + m->key_len +
		    (with_uidl ? strlen(store_pool_str(mb, m->uidl_off)) : 0);
		count++;
	}
	buf = xmalloc(len);
	memcpy(buf, IX_MAGIC, 8);
	bytes_wr32(buf + 16, IX_VERSION);
	bytes_wr32(buf + 20, mb->ops->index_kind);
	bytes_wr32(buf + 24, count);
	bytes_wr32(buf + 28, 0);
	bytes_wr64(buf + 32, len - IX_HDR);
	off = IX_HDR;
	ord = store_index_order(mb);
	for (uint32_t k = 0; k < mb->count; k++) {
		const struct store_msg *m;
		const char *uidl;

		i = ord != NULL ? ord[k] : k;
		m = &mb->msgs[i];
		uidl = store_pool_str(mb, m->uidl_off);
		size_t ulen = with_uidl ? strlen(uidl) : 0;
		uint16_t kl = m->key_len;

		bool sized = (m->flags & (STORE_MSG_SIZED | STORE_MSG_RAW)) ==
		    (STORE_MSG_SIZED | STORE_MSG_RAW);

		if ((skip != NULL && (skip[i / 8] & (1u << (i % 8)))) ||
		    (!sized && !(pin && m->uidl_off != 0)))
			continue;
		bytes_wr64(buf + off, m->ino);
		bytes_wr64(buf + off + 8, sized ? m->raw_size : 0);
		bytes_wr64(buf + off + 16, sized ? m->wire_size : 0);
		memcpy(buf + off + 24, &m->mtime_sec, 8);
		bytes_wr32(buf + off + 32, m->mtime_nsec);
		buf[off + 36] = !sized ? STORE_INDEX_F_UIDL_ONLY :
		    (m->flags & STORE_MSG_WIRE_FORM) ?
		    STORE_INDEX_F_WIRE_FORM : 0;
		buf[off + 37] = (unsigned char)ulen;
		memcpy(buf + off + 38, &kl, 2);
		off += IX_ENT_FIXED;
		memcpy(buf + off, store_pool_str(mb, m->name_off), kl);
		off += kl;
		memcpy(buf + off, uidl, ulen);
		off += ulen;
	}
	free(ord);
	store_index_seal(buf, len);
	*len_r = len;
	return buf;
}

void
store_index_seal(void *image, size_t len)
{
	unsigned char *buf = image;

	if (len >= 16)
		bytes_wr64(buf + 8, ix_checksum(buf + 16, len - 16));
}

bool
store_index_replace_file(int dirfd, const char *tmp, const char *name,
    const void *buf, size_t len, bool sync)
{
	const char *p = buf;
	size_t off = 0;
	bool ok = false;
	int fd;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return false;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	ok = off == len && (!sync || fsync(fd) == 0);
	if (close(fd) == -1)
		ok = false;
	if (ok && renameat(dirfd, tmp, dirfd, name) == -1)
		ok = false;
	if (!ok)
		(void)unlinkat(dirfd, tmp, 0);
	return ok;
}

bool
store_index_write(int dirfd, const struct store_fs *mb, const uint8_t *skip)
{
	size_t len;
	unsigned char *buf = store_index_build(mb, skip, &len);
	/* No fsync: the index is a checksummed cache, and a torn or lost
	 * one costs a rescan, never a wrong answer.  Skipping it keeps a
	 * login from waiting on the disk.  No directory fsync either: a
	 * lost rename only costs a rebuild. */
	bool ok = store_index_replace_file(dirfd, STORE_INDEX_TMP,
	    STORE_INDEX_NAME, buf, len, false);

	free(buf);
	if (!ok)
		log_warn("store: %s: cannot write index", mb->path);
	return ok;
}

void
store_index_remove(int dirfd)
{
	if (unlinkat(dirfd, STORE_INDEX_NAME, 0) == -1 && errno != ENOENT)
		log_warn("store: cannot remove index");
}
