/* store_cache.c - warm snapshots of big Maildirs (see store_cache.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/xmalloc.h"
#include "store/store_cache.h"

struct cache_entry {
	char *path;
	struct store_cache_stamp stamp;
	struct store_msg *msgs;
	uint32_t count;
	char *pool;
	size_t pool_len;
	uint64_t total;
	uint64_t drift_hash;		/* store_drift.c's, if drift_hashed */
	uint32_t drift_tracked;
	bool drift_hashed;
	struct store_drift_seen drift_seen;
	bool compat_pinned;		/* store_compat_pins() at the save */
	bool settled_all;		/* every message msg_settled() */
	uint64_t last_use;
	size_t bytes;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry cache[STORE_CACHE_MAX_ENTRIES];	/* path NULL = free */
/* The hash of cache[i].path, compared first (0 for a free entry): a
 * lookup scans these 8 KiB, not a cache line of each of the 1024
 * entries, which was most of its cost. */
static uint64_t cache_hash[STORE_CACHE_MAX_ENTRIES];
static size_t cache_bytes;
static uint64_t cache_tick;
static unsigned long cache_hit_count;

unsigned long
store_cache_hits(void)
{
	unsigned long n;

	pthread_mutex_lock(&cache_lock);
	n = cache_hit_count;
	pthread_mutex_unlock(&cache_lock);
	return n;
}

void
store_cache_stamp(const struct store_fs *mb, const struct stat *dst,
    struct store_cache_stamp *st)
{
	static const enum store_dir dirs[2] = { STORE_DIR_NEW, STORE_DIR_CUR };

	memset(st, 0, sizeof(*st));
	clock_gettime(CLOCK_REALTIME, &st->taken);
	for (int i = 0; i < 2; i++) {
		const struct stat *sb = &dst[dirs[i]];

		if (mb->dirfd[dirs[i]] == -1)
			continue;	/* absent: zero stamp, must stay absent */
		st->dev[i] = sb->st_dev;
		st->ino[i] = sb->st_ino;
		st->mtime[i] = sb->st_mtim;
	}
	st->valid = true;
}

static bool
stamp_equal(const struct store_cache_stamp *a, const struct store_cache_stamp *b)
{
	for (int i = 0; i < 2; i++) {
		if (a->dev[i] != b->dev[i] || a->ino[i] != b->ino[i] ||
		    a->mtime[i].tv_sec != b->mtime[i].tv_sec ||
		    a->mtime[i].tv_nsec != b->mtime[i].tv_nsec)
			return false;
	}
	return true;
}

/* Both directories last changed over a second before the stamp. */
static bool
stamp_settled(const struct store_cache_stamp *st)
{
	for (int i = 0; i < 2; i++) {
		if (st->mtime[i].tv_sec + 1 >= st->taken.tv_sec)
			return false;
	}
	return true;
}

static uint64_t
path_hash(const char *path)
{
	uint64_t h = 14695981039346656037ull;

	for (; *path != '\0'; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211ull;
	return h;
}

static struct cache_entry *
cache_find(const char *path)
{
	uint64_t h = path_hash(path);

	for (size_t i = 0; i < STORE_CACHE_MAX_ENTRIES; i++) {
		if (cache_hash[i] == h && cache[i].path != NULL &&
		    strcmp(cache[i].path, path) == 0)
			return &cache[i];
	}
	return NULL;
}

static void
cache_drop(struct cache_entry *e)
{
	cache_bytes -= e->bytes;
	cache_hash[e - cache] = 0;
	free(e->path);
	free(e->msgs);
	free(e->pool);
	memset(e, 0, sizeof(*e));
}

bool
store_cache_fetch(struct store_fs *mb, const struct store_cache_stamp *st,
    struct store_drift_seen *seen)
{
	struct cache_entry *e;
	bool hit = false;

	seen->valid = false;
	if (!st->valid)
		return false;
	pthread_mutex_lock(&cache_lock);
	e = cache_find(mb->path);
	if (e != NULL && stamp_equal(&e->stamp, st)) {
		free(mb->msgs);
		free(mb->pool);
		mb->msgs = xreallocarray(NULL, e->count ? e->count : 1,
		    sizeof(*mb->msgs));
		if (e->count > 0)
			memcpy(mb->msgs, e->msgs,
			    (size_t)e->count * sizeof(*mb->msgs));
		mb->count = mb->cap = e->count;
		mb->pool = xmalloc(e->pool_len);
		if (e->pool_len > 0)
			memcpy(mb->pool, e->pool, e->pool_len);
		mb->pool_len = mb->pool_cap = e->pool_len;
		mb->total = e->total;
		mb->drift_hash = e->drift_hash;
		mb->drift_tracked = e->drift_tracked;
		mb->drift_hashed = e->drift_hashed;
		mb->compat_pinned = e->compat_pinned;
		mb->settled_known = true;
		mb->settled_all = e->settled_all;
		*seen = e->drift_seen;
		e->last_use = ++cache_tick;
		cache_hit_count++;
		hit = true;
	} else if (e != NULL) {
		cache_drop(e);		/* stale for good: the dir changed */
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

void
store_cache_drift_seen(const struct store_fs *mb,
    const struct store_drift_seen *seen)
{
	struct cache_entry *e;

	pthread_mutex_lock(&cache_lock);
	if ((e = cache_find(mb->path)) != NULL)
		e->drift_seen = *seen;
	pthread_mutex_unlock(&cache_lock);
}

void
store_cache_save(const struct store_fs *mb, const struct store_cache_stamp *st)
{
	struct cache_entry *e, *victim;
	size_t bytes;

	if (!st->valid || !stamp_settled(st))
		return;
	bytes = (size_t)mb->count * sizeof(*mb->msgs) + mb->pool_len;
	if (bytes > STORE_CACHE_MAX_BYTES / 2)
		return;
	pthread_mutex_lock(&cache_lock);
	if ((e = cache_find(mb->path)) != NULL)
		cache_drop(e);
	for (;;) {
		victim = NULL;
		e = NULL;
		for (size_t i = 0; i < STORE_CACHE_MAX_ENTRIES; i++) {
			if (cache[i].path == NULL)
				e = &cache[i];
			else if (victim == NULL ||
			    cache[i].last_use < victim->last_use)
				victim = &cache[i];
		}
		if (e != NULL && cache_bytes + bytes <= STORE_CACHE_MAX_BYTES)
			break;
		if (victim == NULL)
			break;
		cache_drop(victim);
	}
	if (e != NULL) {
		e->path = xstrdup(mb->path);
		cache_hash[e - cache] = path_hash(mb->path);
		e->stamp = *st;
		e->msgs = xreallocarray(NULL, mb->count ? mb->count : 1,
		    sizeof(*mb->msgs));
		if (mb->count > 0)
			memcpy(e->msgs, mb->msgs,
			    (size_t)mb->count * sizeof(*mb->msgs));
		e->count = mb->count;
		e->pool = xmalloc(mb->pool_len);
		if (mb->pool_len > 0)
			memcpy(e->pool, mb->pool, mb->pool_len);
		e->pool_len = mb->pool_len;
		e->total = mb->total;
		e->drift_hash = mb->drift_hash;
		e->drift_tracked = mb->drift_tracked;
		e->drift_hashed = mb->drift_hashed;
		e->compat_pinned = store_compat_pins(mb);
		e->settled_all = true;
		for (uint32_t i = 0; i < mb->count && e->settled_all; i++)
			e->settled_all = mb->ops->msg_settled == NULL ||
			    mb->ops->msg_settled(&mb->msgs[i]);
		e->bytes = bytes;
		e->last_use = ++cache_tick;
		cache_bytes += bytes;
	}
	pthread_mutex_unlock(&cache_lock);
}
