/*
 * store_drift.c - the UIDL-drift detector (issue 14): what UIDLs a
 * mailbox served, so that a login can tell which messages a client will
 * download again.
 *
 * ".posuto.drift" in the mailbox directory, next to .posuto.index: it
 * belongs to the mailbox (moves, is backed up and removed with it), every
 * posuto process serving the mailbox (daemon, --inetd) sees the same one,
 * and only the session lock holder writes it (tmp -> fsync -> rename).
 * It holds, for the newest DRIFT_MAX_LIVE messages of the last recorded
 * snapshot, (inode, wire size, UIDL, sessions that RETRieved it), and
 * the UIDLs of the last DRIFT_MAX_TOMB messages deleted at a QUIT.
 *
 * A message is "the same" when its inode and size are: a rename by hand
 * (mv, a flag edit, a new unique name) keeps both, a UidlFormat change
 * keeps the file.  Limits: a copy (cp, rsync without -H, a restore)
 * gets a new inode, so a renamed copy looks like new mail; an inode
 * reused for a new message of exactly the same size, after the old one
 * was removed by something other than POP3, looks like a changed UIDL.
 *
 * Layout (native byte order): "POSUTODR", u64 checksum of the rest,
 * u32 version, u32 live count, u32 tomb count, u32 re-retrieved count,
 * u64 snapshot hash, u64 time, u32 changed, u32 reappeared, u32 tracked
 * of the last login that found drift, u32 zero; then the live entries,
 * then the tombs: u64 ino, u64 size, u16 sessions, u8 flags, u8 UIDL
 * length, the UIDL.  A damaged file is logged and forgotten.
 *
 * The cost of a warm login: one hash over the snapshot in memory and a
 * 64-byte read, or only an fstatat() while the file is as a session last
 * read it (the header kept with the cached snapshot); the entries are
 * read only when that hash differs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store_cache.h"
#include "store/store_int.h"

#define DRIFT_NAME		".posuto.drift"
#define DRIFT_TMP		".posuto.drift.tmp"
#define DRIFT_MAGIC		"POSUTODR"
#define DRIFT_VERSION		1u
#define DRIFT_HDR		64u
#define DRIFT_ENT_FIXED		20u
#define DRIFT_UIDL_MAX		70u
#define DRIFT_MAX_LIVE		10000u
#define DRIFT_MAX_TOMB		10000u
#define DRIFT_MAX_BYTES		(DRIFT_HDR + (DRIFT_MAX_LIVE + DRIFT_MAX_TOMB) * \
				    (DRIFT_ENT_FIXED + DRIFT_UIDL_MAX))
#define DRIFT_SESSIONS_MAX	UINT16_MAX
/* RETRs in this many sessions: the client keeps mail but not UIDLs */
#define DRIFT_RERETRIEVED	3u

static atomic_bool drift_on = true;

struct drift_ent {
	uint64_t ino, size;
	uint32_t idx;		/* current snapshot entries: message index */
	uint16_t sessions;	/* sessions that RETRieved it */
	uint8_t len;
	bool used;		/* matched by a current message */
	char uidl[DRIFT_UIDL_MAX + 1];
};

struct drift_state {
	struct drift_ent *live, *tomb;
	uint32_t n_live, n_tomb;
	uint32_t reretrieved;
	uint64_t hash;
	uint64_t last_time;
	uint32_t last_changed, last_reappeared, last_tracked;
};

void
store_drift_configure(bool on)
{
	atomic_store(&drift_on, on);
}

static void
drift_state_free(struct drift_state *s)
{
	free(s->live);
	free(s->tomb);
	memset(s, 0, sizeof(*s));
}

static uint64_t
drift_bytes_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return bytes_mix64(h);
}

/*
 * The snapshot hash: one multiply per 8 bytes, mixed once at the end,
 * because a warm login of a 10k-message mailbox computes it over every
 * message.  Order-dependent: the snapshot order is stable from session
 * to session.  Not cryptographic: a collision only hides drift from the
 * mailbox's own user.
 */
#define DRIFT_HASH_SEED		0x9e3779b97f4a7c15ULL

static uint64_t
drift_hash_word(uint64_t h, uint64_t w)
{
	return (h ^ w) * 0x100000001b3ULL + ((h << 23) | (h >> 41));
}

static uint64_t
drift_hash_feed(uint64_t h, uint64_t ino, uint64_t size, const char *uidl,
    size_t len)
{
	uint64_t w;

	h = drift_hash_word(h, ino);
	h = drift_hash_word(h, size ^ ((uint64_t)len << 56));
	for (; len >= 8; uidl += 8, len -= 8) {
		memcpy(&w, uidl, 8);
		h = drift_hash_word(h, w);
	}
	w = 0;
	memcpy(&w, uidl, len);
	return drift_hash_word(h, w);
}

static bool
drift_skipped(const uint8_t *skip, uint32_t i)
{
	return skip != NULL && ((skip[i / 8] >> (i % 8)) & 1);
}

static bool
drift_uidl_ok(const char *u, size_t len)
{
	if (len == 0 || len > DRIFT_UIDL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return true;
}

/* The first message of the tracked window: the newest DRIFT_MAX_LIVE
 * not skipped. */
static uint32_t
drift_window_start(const struct store_fs *mb, const uint8_t *skip)
{
	uint32_t i = mb->count, n = 0;

	while (i > 0 && n < DRIFT_MAX_LIVE) {
		i--;
		if (!drift_skipped(skip, i))
			n++;
	}
	return i;
}

static const char *
drift_msg_uidl(const struct store_fs *mb, uint32_t i, size_t *len_r)
{
	const char *u = store_pool_str(mb, mb->msgs[i].uidl_off);

	*len_r = mb->msgs[i].uidl_off == 0 ? 0 : strlen(u);
	return u;
}

/* The store's UIDLs are RFC 1939-clean (store.h); this only keeps a
 * message without one (none yet) out, cheaply, on the warm path. */
static bool
drift_msg_tracked(size_t len)
{
	return len > 0 && len <= DRIFT_UIDL_MAX;
}

static uint64_t
drift_snapshot_hash(const struct store_fs *mb, uint32_t *tracked_r)
{
	uint64_t h = DRIFT_HASH_SEED;
	uint32_t n = 0;
	size_t len;

	for (uint32_t i = drift_window_start(mb, NULL); i < mb->count; i++) {
		const char *u = drift_msg_uidl(mb, i, &len);

		if (!drift_msg_tracked(len))
			continue;
		h = drift_hash_feed(h, mb->msgs[i].ino, mb->msgs[i].wire_size,
		    u, len);
		n++;
	}
	*tracked_r = n;
	return bytes_mix64(h);
}

static uint64_t
drift_live_hash(const struct drift_state *s)
{
	uint64_t h = DRIFT_HASH_SEED;

	for (uint32_t i = 0; i < s->n_live; i++)
		h = drift_hash_feed(h, s->live[i].ino, s->live[i].size,
		    s->live[i].uidl, s->live[i].len);
	return bytes_mix64(h);
}

static bool
drift_header_parse(const unsigned char *b, struct drift_state *s)
{
	if (memcmp(b, DRIFT_MAGIC, 8) != 0 || bytes_rd32(b + 16) != DRIFT_VERSION)
		return false;
	s->n_live = bytes_rd32(b + 20);
	s->n_tomb = bytes_rd32(b + 24);
	s->reretrieved = bytes_rd32(b + 28);
	s->hash = bytes_rd64(b + 32);
	s->last_time = bytes_rd64(b + 40);
	s->last_changed = bytes_rd32(b + 48);
	s->last_reappeared = bytes_rd32(b + 52);
	s->last_tracked = bytes_rd32(b + 56);
	return s->n_live <= DRIFT_MAX_LIVE && s->n_tomb <= DRIFT_MAX_TOMB &&
	    s->reretrieved <= s->n_live && bytes_rd32(b + 60) == 0;
}

/* Reads up to max bytes of the state file; -1 if absent or unreadable.
 * st_r (may be NULL): the file's stat, taken before the read. */
static ssize_t
drift_read(int root, unsigned char *buf, size_t max, bool *exists_r,
    struct stat *st_r)
{
	struct stat st;
	size_t got = 0;
	int fd;

	*exists_r = false;
	fd = openat(root, DRIFT_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return -1;
	*exists_r = true;
	if (st_r == NULL)
		st_r = &st;
	if (fstat(fd, st_r) == -1 || !S_ISREG(st_r->st_mode)) {
		close(fd);
		return -1;
	}
	while (got < max) {
		ssize_t n = read(fd, buf + got, max - got);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return (ssize_t)got;
}

/* Parses a whole image into s; false if it is not a valid state. */
static bool
drift_parse(const void *image, size_t len, struct drift_state *s)
{
	const unsigned char *b = image, *p;
	size_t left;

	memset(s, 0, sizeof(*s));
	if (len < DRIFT_HDR || len > DRIFT_MAX_BYTES ||
	    !drift_header_parse(b, s))
		goto bad;
	s->live = xcalloc(s->n_live + 1, sizeof(*s->live));
	s->tomb = xcalloc(s->n_tomb + 1, sizeof(*s->tomb));
	p = b + DRIFT_HDR;
	left = len - DRIFT_HDR;
	for (uint32_t i = 0; i < s->n_live + s->n_tomb; i++) {
		struct drift_ent *e = i < s->n_live ? &s->live[i] :
		    &s->tomb[i - s->n_live];
		size_t ul;

		if (left < DRIFT_ENT_FIXED)
			goto bad;
		ul = p[19];
		if (left < DRIFT_ENT_FIXED + ul || p[18] != 0 ||
		    !drift_uidl_ok((const char *)p + DRIFT_ENT_FIXED, ul))
			goto bad;
		e->ino = bytes_rd64(p);
		e->size = bytes_rd64(p + 8);
		memcpy(&e->sessions, p + 16, 2);
		e->len = (uint8_t)ul;
		memcpy(e->uidl, p + DRIFT_ENT_FIXED, ul);
		p += DRIFT_ENT_FIXED + ul;
		left -= DRIFT_ENT_FIXED + ul;
	}
	if (left != 0)
		goto bad;
	return true;
bad:
	drift_state_free(s);
	return false;
}

/* The checksum is store_index_seal()'s (bytes 8..16, over 16..);
 * buf is ours, so it is sealed again in place and compared. */
static bool
drift_checksum_ok(unsigned char *buf, size_t len)
{
	unsigned char want[8];

	if (len < DRIFT_HDR)
		return false;
	memcpy(want, buf + 8, 8);
	store_index_seal(buf, len);
	return memcmp(want, buf + 8, 8) == 0;
}

/* Loads the state; false (s empty) if there is none or it is damaged,
 * the latter logged. */
static bool
drift_load(const struct store_fs *mb, int root, struct drift_state *s)
{
	unsigned char *buf = xmalloc(DRIFT_MAX_BYTES + 1);
	bool exists, ok;
	ssize_t n;

	memset(s, 0, sizeof(*s));
	n = drift_read(root, buf, DRIFT_MAX_BYTES + 1, &exists, NULL);
	ok = n >= 0 && drift_checksum_ok(buf, (size_t)n) &&
	    drift_parse(buf, (size_t)n, s);
	free(buf);
	if (!ok && exists)
		log_warnx("store: %s: %s is damaged: UIDL-drift state "
		    "starts afresh", mb->path, DRIFT_NAME);
	return ok;
}

static bool
drift_write(const struct store_fs *mb, int root, const struct drift_state *s)
{
	size_t len = DRIFT_HDR;
	unsigned char *buf, *p;
	bool ok;

	for (uint32_t i = 0; i < s->n_live; i++)
		len += DRIFT_ENT_FIXED + s->live[i].len;
	for (uint32_t i = 0; i < s->n_tomb; i++)
		len += DRIFT_ENT_FIXED + s->tomb[i].len;
	buf = xcalloc(1, len);
	memcpy(buf, DRIFT_MAGIC, 8);
	bytes_wr32(buf + 16, DRIFT_VERSION);
	bytes_wr32(buf + 20, s->n_live);
	bytes_wr32(buf + 24, s->n_tomb);
	bytes_wr32(buf + 28, s->reretrieved);
	bytes_wr64(buf + 32, s->hash);
	bytes_wr64(buf + 40, s->last_time);
	bytes_wr32(buf + 48, s->last_changed);
	bytes_wr32(buf + 52, s->last_reappeared);
	bytes_wr32(buf + 56, s->last_tracked);
	p = buf + DRIFT_HDR;
	for (uint32_t i = 0; i < s->n_live + s->n_tomb; i++) {
		const struct drift_ent *e = i < s->n_live ? &s->live[i] :
		    &s->tomb[i - s->n_live];

		bytes_wr64(p, e->ino);
		bytes_wr64(p + 8, e->size);
		memcpy(p + 16, &e->sessions, 2);
		p[19] = e->len;
		memcpy(p + DRIFT_ENT_FIXED, e->uidl, e->len);
		p += DRIFT_ENT_FIXED + e->len;
	}
	store_index_seal(buf, len);
	/* fsync: a state lost in a crash would report the messages of the
	 * next login as drifted, or miss a reappearance */
	ok = store_index_replace_file(root, DRIFT_TMP, DRIFT_NAME, buf, len,
	    true);
	free(buf);
	if (!ok)
		log_warn("store: %s: cannot write %s", mb->path, DRIFT_NAME);
	return ok;
}

/* --- matching ------------------------------------------------------------ */

struct drift_table {
	uint32_t *slot;		/* entry number + 1; 0 = empty */
	uint32_t mask;
};

static void
drift_table_init(struct drift_table *t, uint32_t n)
{
	uint32_t size = 16;

	while (size < 2 * n + 1)
		size <<= 1;
	t->slot = xcalloc(size, sizeof(*t->slot));
	t->mask = size - 1;
}

static void
drift_table_add(struct drift_table *t, uint64_t h, uint32_t v)
{
	uint32_t i = (uint32_t)h & t->mask;

	while (t->slot[i] != 0)
		i = (i + 1) & t->mask;
	t->slot[i] = v + 1;
}

static uint64_t
drift_id_hash(uint64_t ino, uint64_t size)
{
	return bytes_mix64(bytes_mix64(ino) ^ size);
}

/* The old entry number n: live first, then tombs. */
static struct drift_ent *
drift_old_ent(struct drift_state *old, uint32_t n)
{
	return n < old->n_live ? &old->live[n] : &old->tomb[n - old->n_live];
}

static struct drift_ent *
drift_find_uidl(struct drift_table *t, struct drift_state *old,
    const char *u, size_t len, bool *tomb_r)
{
	uint32_t i = (uint32_t)drift_bytes_hash(u, len) & t->mask;

	for (; t->slot[i] != 0; i = (i + 1) & t->mask) {
		struct drift_ent *e = drift_old_ent(old, t->slot[i] - 1);

		if (!e->used && e->len == len && memcmp(e->uidl, u, len) == 0) {
			*tomb_r = t->slot[i] - 1 >= old->n_live;
			return e;
		}
	}
	return NULL;
}

static struct drift_ent *
drift_find_id(struct drift_table *t, struct drift_state *old, uint64_t ino,
    uint64_t size)
{
	uint32_t i = (uint32_t)drift_id_hash(ino, size) & t->mask;

	for (; t->slot[i] != 0; i = (i + 1) & t->mask) {
		struct drift_ent *e = &old->live[t->slot[i] - 1];

		if (!e->used && e->ino == ino && e->size == size)
			return e;
	}
	return NULL;
}

static void
drift_ent_set(struct drift_ent *e, const struct store_fs *mb, uint32_t i,
    const char *u, size_t len)
{
	e->ino = mb->msgs[i].ino;
	e->size = mb->msgs[i].wire_size;
	e->idx = i;
	e->sessions = 0;
	e->len = (uint8_t)len;
	memcpy(e->uidl, u, len);
	e->uidl[len] = '\0';
}

/*
 * Maps the current snapshot onto the old state: cur gets one live entry
 * per tracked message (sessions carried over) and the old tombs that did
 * not come back.  Counts what drifted into r; logs the details at debug
 * when user is set.
 */
static void
drift_compare(const struct store_fs *mb, struct drift_state *old,
    struct drift_state *cur, struct mailbox_drift *r, const char *user)
{
	struct drift_table by_uidl, by_id;
	uint32_t start = drift_window_start(mb, NULL), n = 0, *pending;
	uint32_t n_pending = 0;
	size_t len;

	memset(cur, 0, sizeof(*cur));
	cur->live = xcalloc(mb->count - start + 1, sizeof(*cur->live));
	pending = xcalloc(mb->count - start + 1, sizeof(*pending));
	drift_table_init(&by_uidl, old->n_live + old->n_tomb);
	drift_table_init(&by_id, old->n_live);
	for (uint32_t i = 0; i < old->n_live + old->n_tomb; i++) {
		struct drift_ent *e = drift_old_ent(old, i);

		e->used = false;
		drift_table_add(&by_uidl, drift_bytes_hash(e->uidl, e->len), i);
		if (i < old->n_live)
			drift_table_add(&by_id, drift_id_hash(e->ino, e->size),
			    i);
	}
	for (uint32_t i = start; i < mb->count; i++) {
		const char *u = drift_msg_uidl(mb, i, &len);
		struct drift_ent *e = &cur->live[n], *o;
		bool tomb = false;

		if (!drift_msg_tracked(len))
			continue;
		drift_ent_set(e, mb, i, u, len);
		n++;
		o = drift_find_uidl(&by_uidl, old, u, len, &tomb);
		if (o == NULL) {
			pending[n_pending++] = n - 1;
			continue;
		}
		o->used = true;
		e->sessions = o->sessions;
		if (tomb) {
			r->reappeared++;
			if (user != NULL)
				log_debug("uidl-drift user=%s reappeared %s: "
				    "deleted at a QUIT, back again", user,
				    e->uidl);
		}
	}
	/* the second pass: messages with a UIDL never served, which may
	 * be a served file under a new UIDL */
	for (uint32_t k = 0; k < n_pending; k++) {
		struct drift_ent *e = &cur->live[pending[k]];
		struct drift_ent *o = drift_find_id(&by_id, old, e->ino,
		    e->size);

		if (o == NULL)
			continue;
		o->used = true;
		r->changed++;
		if (user != NULL)
			log_debug("uidl-drift user=%s changed %s -> %s (inode "
			    "%llu, %llu octets)", user, o->uidl, e->uidl,
			    (unsigned long long)e->ino,
			    (unsigned long long)e->size);
	}
	cur->n_live = n;
	cur->tomb = xcalloc(old->n_tomb + 1, sizeof(*cur->tomb));
	for (uint32_t i = 0; i < old->n_tomb; i++)
		if (!old->tomb[i].used)
			cur->tomb[cur->n_tomb++] = old->tomb[i];
	for (uint32_t i = 0; i < cur->n_live; i++) {
		if (cur->live[i].sessions < DRIFT_RERETRIEVED)
			continue;
		cur->reretrieved++;
		if (user != NULL)
			log_debug("uidl-drift user=%s reretrieved %s in %u "
			    "sessions", user, cur->live[i].uidl,
			    cur->live[i].sessions);
	}
	cur->hash = drift_live_hash(cur);
	cur->last_time = old->last_time;
	cur->last_changed = old->last_changed;
	cur->last_reappeared = old->last_reappeared;
	cur->last_tracked = old->last_tracked;
	r->reretrieved = cur->reretrieved;
	r->tracked = cur->n_live;
	free(pending);
	free(by_uidl.slot);
	free(by_id.slot);
}

/* --- entry points ------------------------------------------------------- */

/* The root fd of a locked mailbox (parked again by drift_root_done). */
static int
drift_root(struct store_fs *mb, bool *parked_r)
{
	*parked_r = mb->dirfd[STORE_DIR_ROOT] == -1;
	if (!mb->locked)
		return -1;
	return store_dirfd(mb, STORE_DIR_ROOT);
}

static void
drift_root_done(struct store_fs *mb, bool parked)
{
	/* parked again: an idle session holds no directory (store_fs.c) */
	if (parked && mb->dirfd[STORE_DIR_ROOT] != -1) {
		close(mb->dirfd[STORE_DIR_ROOT]);
		mb->dirfd[STORE_DIR_ROOT] = -1;
		mb->parked |= 1u << STORE_DIR_ROOT;
	}
}

static void
drift_last_into(const struct drift_state *s, struct mailbox_drift *r)
{
	r->last_time = s->last_time;
	r->last_changed = s->last_changed;
	r->last_reappeared = s->last_reappeared;
	r->last_tracked = s->last_tracked;
}

static void
drift_run(struct mailbox *pub, struct mailbox_drift *r, bool record)
{
	struct store_fs *mb;
	struct drift_state old, cur;
	unsigned char hdr[DRIFT_HDR];
	char user[256];
	uint32_t tracked;
	uint64_t h;
	bool parked, exists;
	int root;

	memset(r, 0, sizeof(*r));
	if (!atomic_load(&drift_on) || pub == NULL || pub->drv->fs == NULL)
		return;
	mb = store_fs_of(pub);
	if (!mb->locked)
		return;
	r->enabled = true;
	if (mb->drift_hashed) {
		h = mb->drift_hash;
		tracked = mb->drift_tracked;
	} else {
		h = drift_snapshot_hash(mb, &tracked);
	}
	memset(&old, 0, sizeof(old));
	/* the warm login: nothing changed since the recorded state */
	root = -1;
	parked = false;
	if (mb->drift_hdr_read) {
		memcpy(hdr, mb->drift_hdr, sizeof(hdr));
		mb->drift_hdr_read = false;	/* good for this check only */
	} else {
		if ((root = drift_root(mb, &parked)) == -1) {
			r->enabled = false;
			return;
		}
		if (drift_read(root, hdr, sizeof(hdr), &exists, NULL) !=
		    (ssize_t)sizeof(hdr))
			memset(hdr, 0, sizeof(hdr));
	}
	if (drift_header_parse(hdr, &old) && old.hash == h &&
	    old.n_live == tracked) {
		r->known = true;
		r->reretrieved = old.reretrieved;
		r->tracked = tracked;
		drift_last_into(&old, r);
		if (root != -1)
			drift_root_done(mb, parked);
		return;
	}
	if (root == -1 && (root = drift_root(mb, &parked)) == -1) {
		r->enabled = false;
		return;
	}
	(void)log_sanitize(user, sizeof(user), mb->user != NULL ? mb->user :
	    "-", mb->user != NULL ? strlen(mb->user) : 1);
	r->known = drift_load(mb, root, &old);
	drift_compare(mb, &old, &cur, r, record ? user : NULL);
	if (!r->known) {
		/* nothing to compare with: everything is simply new */
		r->changed = r->reappeared = 0;
	}
	if (record && (r->changed > 0 || r->reappeared > 0)) {
		cur.last_time = (uint64_t)time(NULL);
		cur.last_changed = r->changed;
		cur.last_reappeared = r->reappeared;
		cur.last_tracked = r->tracked;
	}
	drift_last_into(&cur, r);
	if (record)
		(void)drift_write(mb, root, &cur);
	drift_state_free(&old);
	drift_state_free(&cur);
	drift_root_done(mb, parked);
}

static bool
drift_seen_same(const struct store_drift_seen *seen, const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_dev == seen->dev &&
	    st->st_ino == seen->ino && st->st_size == seen->size &&
	    st->st_mtim.tv_sec == seen->mtime.tv_sec &&
	    st->st_mtim.tv_nsec == seen->mtime.tv_nsec &&
	    st->st_ctim.tv_sec == seen->ctime.tv_sec &&
	    st->st_ctim.tv_nsec == seen->ctime.tv_nsec;
}

void
store_drift_preread(struct store_fs *mb, int root,
    const struct store_drift_seen *seen)
{
	struct store_drift_seen now;
	struct timespec t;
	struct stat st;
	bool exists;

	mb->drift_hdr_read = false;
	if (!mb->locked || !atomic_load(&drift_on))
		return;
	/* Unchanged since a session read it: a rewrite is a rename (a new
	 * inode), an edit in place changes mtime and ctime. */
	if (seen != NULL && seen->valid &&
	    fstatat(root, DRIFT_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    drift_seen_same(seen, &st)) {
		memcpy(mb->drift_hdr, seen->hdr, sizeof(mb->drift_hdr));
		mb->drift_hdr_read = true;
		return;
	}
	if (drift_read(root, mb->drift_hdr, sizeof(mb->drift_hdr), &exists,
	    &st) != (ssize_t)sizeof(mb->drift_hdr))
		return;
	mb->drift_hdr_read = true;
	/* Remembered only once its ctime is over a second old (as the
	 * snapshot cache's stamps): a later change then cannot share the
	 * timestamps, even with a reused inode of the same size. */
	clock_gettime(CLOCK_REALTIME, &t);
	if (st.st_ctim.tv_sec + 1 >= t.tv_sec)
		return;
	memset(&now, 0, sizeof(now));
	now.dev = st.st_dev;
	now.ino = st.st_ino;
	now.size = st.st_size;
	now.mtime = st.st_mtim;
	now.ctime = st.st_ctim;
	memcpy(now.hdr, mb->drift_hdr, sizeof(now.hdr));
	now.valid = true;
	store_cache_drift_seen(mb, &now);
}

void
store_drift_prehash(struct store_fs *mb)
{
	/* only what the warm cache keeps: a small mailbox is not cached,
	 * and hashing it at the login is as cheap */
	if (!atomic_load(&drift_on))
		return;
	mb->drift_hash = drift_snapshot_hash(mb, &mb->drift_tracked);
	mb->drift_hashed = true;
}

void
mailbox_drift_login(struct mailbox *mb, struct mailbox_drift *r)
{
	drift_run(mb, r, true);
}

void
mailbox_drift_report(struct mailbox *mb, struct mailbox_drift *r)
{
	drift_run(mb, r, false);
}

void
store_drift_commit(struct store_fs *mb, const uint8_t *deleted,
    bool removed)
{
	struct drift_state old, cur;
	struct mailbox_drift r;
	uint32_t keep = 0, n_tomb;
	bool parked, any = false;
	int root;

	if (!atomic_load(&drift_on))
		return;
	for (uint32_t i = 0; i < mb->count && !any; i++)
		any = (mb->msgs[i].flags & STORE_MSG_SEEN) != 0 ||
		    drift_skipped(deleted, i);
	if (!any || (root = drift_root(mb, &parked)) == -1)
		return;
	memset(&r, 0, sizeof(r));
	/* what the login recorded (or, lost meanwhile, the snapshot) */
	(void)drift_load(mb, root, &old);
	drift_compare(mb, &old, &cur, &r, NULL);
	n_tomb = cur.n_tomb;
	cur.tomb = xreallocarray(cur.tomb, n_tomb + cur.n_live + 1,
	    sizeof(*cur.tomb));
	for (uint32_t k = 0; k < cur.n_live; k++) {
		struct drift_ent *e = &cur.live[k];

		if ((mb->msgs[e->idx].flags & STORE_MSG_SEEN) &&
		    e->sessions < DRIFT_SESSIONS_MAX)
			e->sessions++;
		/* a commit that failed may have left marked messages: no
		 * tomb for them, the next login sees what is there */
		if (drift_skipped(deleted, e->idx)) {
			if (removed)
				cur.tomb[n_tomb++] = *e;
			continue;
		}
		cur.live[keep++] = *e;
	}
	cur.n_live = keep;
	/* the newest tombs are the ones worth keeping */
	if (n_tomb > DRIFT_MAX_TOMB) {
		memmove(cur.tomb, cur.tomb + (n_tomb - DRIFT_MAX_TOMB),
		    DRIFT_MAX_TOMB * sizeof(*cur.tomb));
		n_tomb = DRIFT_MAX_TOMB;
	}
	cur.n_tomb = n_tomb;
	cur.reretrieved = 0;
	for (uint32_t k = 0; k < cur.n_live; k++)
		cur.reretrieved += cur.live[k].sessions >= DRIFT_RERETRIEVED;
	cur.hash = drift_live_hash(&cur);
	(void)drift_write(mb, root, &cur);
	drift_state_free(&old);
	drift_state_free(&cur);
	drift_root_done(mb, parked);
}
