/*
 * store_expire.c - Expire (RFC 2449 EXPIRE): first-retrieval times in
 * ".posuto.expire" (format in store_policy.h) and the deletion of
 * messages whose time is up, at a session's UPDATE or by the daemon's
 * expiry job, always under the mailbox's session lock.
 *
 * The file is keyed by UIDL, which is stable and never reused (a
 * listed UIDL can only ever mean the message it was recorded for), and
 * is rebuilt from the snapshot each time it is written, so entries of
 * messages that went away are dropped then.  Every fault in it (lost,
 * torn, foreign, edited into nonsense) can only delay a deletion: a
 * message is deleted only if a well-formed line names its UIDL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "store/store_index.h"
#include "store/store_int.h"
#include "store/store_policy.h"

#define EXPIRE_MAGIC		"posuto-expire 1\n"
/* The longest line is 20 digits, a space, 70 UIDL octets and LF. */
#define EXPIRE_LINE_MAX		92
#define EXPIRE_FILE_MAX \
	((uint64_t)MAILBOX_MAX_MESSAGES * EXPIRE_LINE_MAX + 64)

struct store_expire_ent {
	uint64_t first;		/* unix seconds, > 0 */
	uint32_t off;		/* UIDL in pool */
	uint8_t len;
};

struct store_expire {
	struct store_expire_ent *ents;	/* sorted by UIDL, unique */
	size_t n;
	char *pool;
};

static int
expire_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

static int
expire_ent_cmp(const void *a, const void *b, void *arg)
{
	const struct store_expire_ent *x = a, *y = b;
	const char *pool = arg;
	int c = expire_key_cmp(pool + x->off, x->len, pool + y->off, y->len);

	if (c != 0)
		return c;
	return (x->first > y->first) - (x->first < y->first);
}

struct store_expire *
store_expire_parse(const char *buf, size_t len)
{
	size_t ml = strlen(EXPIRE_MAGIC), cap = 0, pos, j;
	struct store_expire *x;

	if (len < ml || memcmp(buf, EXPIRE_MAGIC, ml) != 0)
		return NULL;
	x = xcalloc(1, sizeof(*x));
	x->pool = xmalloc(len + 1);
	memcpy(x->pool, buf, len);
	x->pool[len] = '\0';
	for (pos = ml; pos < len; ) {
		const char *line = x->pool + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - line) : len - pos;
		const char *sp = memchr(line, ' ', ll);
		uint64_t t;

		pos += ll + 1;
		if (sp == NULL || !parse_u64(line, (size_t)(sp - line), &t) ||
		    t == 0 || !store_uidl_valid(sp + 1, ll - (size_t)(sp -
		    line) - 1))
			continue;	/* not ours to guess at: ignored */
		if (x->n == MAILBOX_MAX_MESSAGES)
			break;
		if (x->n == cap) {
			cap = cap != 0 ? cap * 2 : 64;
			x->ents = xreallocarray(x->ents, cap, sizeof(*x->ents));
		}
		x->ents[x->n].first = t;
		x->ents[x->n].off = (uint32_t)(sp + 1 - x->pool);
		x->ents[x->n].len = (uint8_t)(ll - (size_t)(sp - line) - 1);
		x->n++;
	}
	if (x->n > 1)
		qsort_r(x->ents, x->n, sizeof(*x->ents), expire_ent_cmp,
		    x->pool);
	/* duplicates: the earliest time (sorted first) stands */
	for (pos = 0, j = 0; pos < x->n; pos++) {
		if (j > 0 && expire_key_cmp(x->pool + x->ents[j - 1].off,
		    x->ents[j - 1].len, x->pool + x->ents[pos].off,
		    x->ents[pos].len) == 0)
			continue;
		x->ents[j++] = x->ents[pos];
	}
	x->n = j;
	return x;
}

static struct store_expire *
expire_load_fd(int fd)
{
	struct store_expire *x = NULL;
	struct stat st;
	char *buf;
	size_t off = 0, len;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > EXPIRE_FILE_MAX) {
		close(fd);
		return NULL;
	}
	len = (size_t)st.st_size;
	buf = xmalloc(len + 1);
	while (off < len) {
		ssize_t n = read(fd, buf + off, len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (off == len)
		x = store_expire_parse(buf, len);
	free(buf);
	return x;
}

static struct store_expire *
expire_load_at(int dirfd)
{
	int fd = openat(dirfd, STORE_EXPIRE_NAME, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	return fd == -1 ? NULL : expire_load_fd(fd);
}

struct store_expire *
store_expire_load_path(const char *dir)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, STORE_EXPIRE_NAME) >=
	    (int)sizeof(path))
		return NULL;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK);
	return fd == -1 ? NULL : expire_load_fd(fd);
}

size_t
store_expire_count(const struct store_expire *x)
{
	return x != NULL ? x->n : 0;
}

uint64_t
store_expire_lookup(const struct store_expire *x, const char *uidl,
    size_t len)
{
	size_t lo = 0, hi;

	if (x == NULL)
		return 0;
	hi = x->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct store_expire_ent *e = &x->ents[mid];
		int c = expire_key_cmp(uidl, len, x->pool + e->off, e->len);

		if (c == 0)
			return e->first;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

bool
store_expire_due(uint64_t first, int days, uint64_t now)
{
	uint64_t keep;

	if (first == 0 || days < 0)
		return false;
	keep = (uint64_t)days * 86400u;
	/* a time in the future (clock set back, or edited) is not due */
	return now >= first && now - first >= keep;
}

bool
store_expire_any_due(const struct store_expire *x, int days, uint64_t now)
{
	for (size_t i = 0; x != NULL && i < x->n; i++)
		if (store_expire_due(x->ents[i].first, days, now))
			return true;
	return false;
}

void
store_expire_free(struct store_expire **xp)
{
	struct store_expire *x = *xp;

	if (x == NULL)
		return;
	free(x->ents);
	free(x->pool);
	free(x);
	*xp = NULL;
}

/* Replaces the state file with the messages of mb that have a time in
 * firsts and are not in skip (NULL = none); removes it if none do. */
static void
expire_write(struct store_fs *mb, int root, const uint64_t *firsts,
    const uint8_t *skip)
{
	size_t len = strlen(EXPIRE_MAGIC), cap = len + 1;
	char *buf = xmalloc(cap);
	bool ok, any = false;

	memcpy(buf, EXPIRE_MAGIC, len);
	for (uint32_t i = 0; i < mb->count; i++) {
		const char *uidl = store_fs_msg_uidl(&mb->pub, i);
		int n;

		if (firsts[i] == 0 ||
		    (skip != NULL && (skip[i / 8] >> (i % 8)) & 1))
			continue;
		if (cap - len < EXPIRE_LINE_MAX + 2) {
			cap = cap * 2 + EXPIRE_LINE_MAX;
			buf = xreallocarray(buf, cap, 1);
		}
		n = snprintf(buf + len, cap - len, "%llu %s\n",
		    (unsigned long long)firsts[i], uidl);
		if (n < 0 || (size_t)n >= cap - len)
			fatalx("store: expire line too long");
		len += (size_t)n;
		any = true;
	}
	if (!any) {
		if (unlinkat(root, STORE_EXPIRE_NAME, 0) == -1 &&
		    errno != ENOENT)
			log_warn("store: %s: cannot remove %s", mb->path,
			    STORE_EXPIRE_NAME);
		free(buf);
		return;
	}
	ok = store_index_replace_file(root, STORE_EXPIRE_TMP,
	    STORE_EXPIRE_NAME, buf, len, true);
	if (!ok) {
		/* the old file stays: a new retrieval is recorded later,
		 * so the message is kept longer, never deleted early */
		log_warn("store: %s: cannot write %s", mb->path,
		    STORE_EXPIRE_NAME);
	}
	free(buf);
}

/* Deletes message idx only if its file is still the scanned message.
 * 1 deleted (or already gone), 0 kept on purpose, -1 failed. */
static int
expire_unlink_one(struct store_fs *mb, uint32_t idx)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct store_msg *m = &mb->msgs[idx];
		const char *name = store_pool_str(mb, m->name_off);
		int dfd = store_dirfd(mb, m->dir);
		struct stat sb;

		if (dfd == -1)
			return errno == ENOENT ? 1 : -1;
		if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			if (!S_ISREG(sb.st_mode) || (mb->ops->same_file !=
			    NULL && !mb->ops->same_file(mb, idx, &sb)))
				return 0;	/* the name holds another one */
			if (unlinkat(dfd, name, 0) == 0)
				return 1;
		}
		if (errno != ENOENT)
			return -1;
		/* Maildir: moved or re-flagged by another reader */
		if (mb->ops->relocate == NULL || !mb->ops->relocate(mb, idx))
			return 1;
	}
	return -1;
}

/* The expiry job's commit: the marked messages go, nothing else moves. */
static enum store_status
expire_unlink(struct store_fs *mb, uint8_t *deleted, uint32_t *n_r)
{
	bool changed[STORE_DIR_COUNT] = { false, false, false };
	enum store_status st = STORE_OK;

	for (uint32_t i = 0; i < mb->count; i++) {
		int r;

		if (!((deleted[i / 8] >> (i % 8)) & 1))
			continue;
		r = expire_unlink_one(mb, i);
		if (r == 1) {
			changed[mb->msgs[i].dir] = true;
			(*n_r)++;
			continue;
		}
		if (r == -1) {
			log_warn("store: %s: cannot delete %s", mb->path,
			    store_pool_str(mb, mb->msgs[i].name_off));
			st = STORE_TEMP;
		} else {
			log_warnx("store: %s: %s was replaced, not expired",
			    mb->path, store_pool_str(mb, mb->msgs[i].name_off));
		}
		/* kept: its state line stays */
		deleted[i / 8] &= (uint8_t)~(1u << (i % 8));
	}
	for (int d = 0; d < STORE_DIR_COUNT; d++)
		if (changed[d] && !store_fsync_dir(store_dirfd(mb,
		    (enum store_dir)d), mb->path) && st == STORE_OK)
			st = STORE_TEMP;
	if (*n_r > 0) {
		store_wire_sweep(mb, deleted);
		(void)store_index_write(store_dirfd(mb, STORE_DIR_ROOT), mb,
		    deleted);
	}
	return st;
}

static enum store_status
expire_apply(struct store_fs *mb, uint8_t *deleted, int days, uint64_t now,
    const char *user, bool session, uint32_t *n_deleted_r,
    uint32_t *n_expired_r)
{
	struct store_expire *x;
	uint64_t *firsts;
	enum store_status st = STORE_OK;
	bool changed = false;
	size_t n_listed = 0;
	int root;

	*n_deleted_r = 0;
	*n_expired_r = 0;
	/* no directory, no lock, nothing retrievable: nothing to keep */
	if (!mb->locked || (root = store_dirfd(mb, STORE_DIR_ROOT)) == -1)
		return session ? store_fs_commit(&mb->pub, deleted, n_deleted_r) :
		    STORE_OK;
	x = expire_load_at(root);
	firsts = xcalloc(mb->count + 1, sizeof(*firsts));
	for (uint32_t i = 0; i < mb->count; i++) {
		const char *uidl = store_fs_msg_uidl(&mb->pub, i);
		uint64_t f = store_expire_lookup(x, uidl, strlen(uidl));

		if (f == 0 && session && (mb->msgs[i].flags & STORE_MSG_SEEN)) {
			f = now;	/* retrieved for the first time */
			changed = true;
		}
		firsts[i] = f;
		if (f != 0)
			n_listed++;
		if ((deleted[i / 8] >> (i % 8)) & 1 ||
		    !store_expire_due(f, days, now))
			continue;
		deleted[i / 8] |= (uint8_t)(1u << (i % 8));
		(*n_expired_r)++;
		log_info("expire: deleting user=%s uidl=%s age=%llus "
		    "expire=%dd", user, uidl,
		    (unsigned long long)(now - f), days);
	}
	if (store_expire_count(x) != n_listed)
		changed = true;		/* entries of vanished messages */
	if (session) {
		if (store_fs_commit_needed(&mb->pub, deleted))
			st = store_fs_commit(&mb->pub, deleted, n_deleted_r);
	} else if (*n_expired_r > 0) {
		st = expire_unlink(mb, deleted, n_deleted_r);
		*n_expired_r = *n_deleted_r;
	}
	if (*n_deleted_r > 0)
		changed = true;
	root = store_dirfd(mb, STORE_DIR_ROOT);
	if (changed && root != -1)
		/* after a failed commit some marked messages may remain:
		 * keep all their lines, the next write drops the gone ones */
		expire_write(mb, root, firsts, st == STORE_OK ? deleted : NULL);
	free(firsts);
	store_expire_free(&x);
	return st;
}

enum store_status
mailbox_commit_expire(struct mailbox *pub, uint8_t *deleted, int days,
    uint64_t now, const char *user, uint32_t *n_deleted_r,
    uint32_t *n_expired_r)
{
	if (pub->drv->commit_expire != NULL)
		return pub->drv->commit_expire(pub, deleted, days, now, user,
		    true, n_deleted_r, n_expired_r);
	if (pub->drv->fs == NULL) {
		/* no state file to keep: a plain commit */
		*n_expired_r = 0;
		return pub->drv->commit(pub, deleted, n_deleted_r);
	}
	return expire_apply(store_fs_of(pub), deleted, days, now, user, true,
	    n_deleted_r, n_expired_r);
}

enum store_status
mailbox_expire(struct mailbox *pub, int days, uint64_t now, const char *user,
    uint32_t *n_expired_r)
{
	struct store_fs *mb = store_fs_of(pub);
	uint8_t *deleted;
	uint32_t n_deleted;
	enum store_status st;

	*n_expired_r = 0;
	if (pub->drv->commit_expire != NULL) {
		deleted = xcalloc((mailbox_count(pub) + 7) / 8 + 1, 1);
		st = pub->drv->commit_expire(pub, deleted, days, now, user,
		    false, &n_deleted, n_expired_r);
		free(deleted);
		return st;
	}
	if (pub->drv->fs == NULL)
		return STORE_OK;
	deleted = xcalloc((mb->count + 7) / 8 + 1, 1);
	st = expire_apply(mb, deleted, days, now, user, false, &n_deleted,
	    n_expired_r);
	free(deleted);
	return st;
}
