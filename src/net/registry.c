/* registry.c - the table of live sessions (see registry.h for the lock). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "net/loop.h"
#include "net/registry.h"

/*
 * A slot holds the fixed fields inline and the history apart, packed and
 * grown as lines come: at 10,000 idle sessions a fixed ring of
 * NET_REG_HISTORY x NET_REG_HISTORY_LEN per slot was 1.2 KiB a session,
 * most of it never written (a login leaves two short lines).
 */
#define REG_HISTORY_MAX	(NET_REG_HISTORY * NET_REG_HISTORY_LEN)

struct net_registry_slot {
	struct net_session_info info;	/* .history unused here */
	char *hist;			/* kept lines, NUL-terminated, oldest first */
	uint16_t hist_len, hist_cap;
	void *owner;			/* its loop's thread only */
	struct net_loop *loop;		/* the loop it runs on */
	bool used;
};

struct net_registry {
	pthread_mutex_t lock;
	struct net_registry_slot *slots;
	int *free_slots;		/* stack of unused slots */
	size_t n_slots, n_free, n_used;
};

struct net_registry *
net_registry_new(void)
{
	struct net_registry *r = xcalloc(1, sizeof(*r));

	pthread_mutex_init(&r->lock, NULL);
	return r;
}

void
net_registry_free(struct net_registry **rp)
{
	struct net_registry *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	pthread_mutex_destroy(&r->lock);
	for (size_t i = 0; i < r->n_slots; i++)
		free(r->slots[i].hist);
	free(r->slots);
	free(r->free_slots);
	free(r);
}

static void
registry_copy(char *dst, size_t dstsz, const char *src)
{
	size_t n = src != NULL ? strnlen(src, dstsz - 1) : 0;

	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Doubles the table (lock held): entries are copied, slots keep their
 * numbers. */
static void
registry_grow(struct net_registry *r)
{
	size_t n = r->n_slots != 0 ? r->n_slots * 2 : 64;

	r->slots = xreallocarray(r->slots, n, sizeof(*r->slots));
	r->free_slots = xreallocarray(r->free_slots, n, sizeof(*r->free_slots));
	memset(r->slots + r->n_slots, 0, (n - r->n_slots) * sizeof(*r->slots));
	/* the lowest numbers on top of the stack */
	for (size_t i = n; i > r->n_slots; i--)
		r->free_slots[r->n_free++] = (int)(i - 1);
	r->n_slots = n;
}

int
net_registry_add(struct net_registry *r, uint64_t id, const char *proto,
    const char *client)
{
	struct net_session_info *e;
	int slot;

	pthread_mutex_lock(&r->lock);
	if (r->n_free == 0)
		registry_grow(r);
	slot = r->free_slots[--r->n_free];
	r->slots[slot].used = true;
	r->n_used++;
	r->slots[slot].hist_len = 0;	/* the buffer is kept for the next */
	e = &r->slots[slot].info;
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->since = time(NULL);
	registry_copy(e->proto, sizeof(e->proto), proto);
	registry_copy(e->client, sizeof(e->client), client);
	pthread_mutex_unlock(&r->lock);
	return slot;
}

void
net_registry_remove(struct net_registry *r, int slot)
{
	pthread_mutex_lock(&r->lock);
	if (slot >= 0 && (size_t)slot < r->n_slots && r->slots[slot].used) {
		r->slots[slot].used = false;
		r->slots[slot].owner = NULL;
		r->slots[slot].loop = NULL;
		r->free_slots[r->n_free++] = slot;
		r->n_used--;
	}
	pthread_mutex_unlock(&r->lock);
}

/* The entry of slot with the lock held, or NULL. */
static struct net_session_info *
registry_entry(struct net_registry *r, int slot)
{
	pthread_mutex_lock(&r->lock);
	if (slot >= 0 && (size_t)slot < r->n_slots && r->slots[slot].used)
		return &r->slots[slot].info;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

void
net_registry_set_user(struct net_registry *r, int slot, const char *user)
{
	struct net_session_info *e = registry_entry(r, slot);

	if (e == NULL)
		return;
	registry_copy(e->user, sizeof(e->user), user);
	pthread_mutex_unlock(&r->lock);
}

void
net_registry_set_state(struct net_registry *r, int slot, const char *state)
{
	struct net_session_info *e = registry_entry(r, slot);

	if (e == NULL)
		return;
	registry_copy(e->state, sizeof(e->state), state);
	pthread_mutex_unlock(&r->lock);
}

void
net_registry_set_command(struct net_registry *r, int slot, const char *verb)
{
	struct net_session_info *e = registry_entry(r, slot);

	if (e == NULL)
		return;
	registry_copy(e->command, sizeof(e->command), verb);
	pthread_mutex_unlock(&r->lock);
}

void
net_registry_set_bytes(struct net_registry *r, int slot, uint64_t bytes)
{
	struct net_session_info *e = registry_entry(r, slot);

	if (e == NULL)
		return;
	e->bytes = bytes;
	pthread_mutex_unlock(&r->lock);
}

size_t
net_registry_snapshot(struct net_registry *r, struct net_session_info **out_r)
{
	struct net_session_info *out = NULL;
	size_t n = 0, text = 0;

	/* One block, the entries then their lines, so that one free() lets
	 * it go; malloc under the lock: one short hold, and nothing can
	 * change between sizing and copying. */
	pthread_mutex_lock(&r->lock);
	if (r->n_used > 0) {
		char *p;

		for (size_t i = 0; i < r->n_slots; i++)
			if (r->slots[i].used)
				text += r->slots[i].hist_len;
		out = xmalloc(r->n_used * sizeof(*out) + text);
		p = (char *)(out + r->n_used);
		for (size_t i = 0; i < r->n_slots; i++) {
			const struct net_registry_slot *sl = &r->slots[i];

			if (!sl->used)
				continue;
			out[n] = sl->info;
			out[n].history = NULL;
			if (sl->hist_len > 0) {
				memcpy(p, sl->hist, sl->hist_len);
				out[n].history = p;
				p += sl->hist_len;
			}
			n++;
		}
	}
	pthread_mutex_unlock(&r->lock);
	*out_r = out;
	return n;
}

size_t
net_registry_count(struct net_registry *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->n_used;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void
net_registry_set_idle_timeout(struct net_registry *r, int slot,
    unsigned secs)
{
	struct net_session_info *e = registry_entry(r, slot);

	if (e == NULL)
		return;
	e->idle_timeout = secs;
	pthread_mutex_unlock(&r->lock);
}

/* Drops the oldest kept line (lock held). */
static void
registry_history_shift(struct net_registry_slot *sl)
{
	size_t first = strlen(sl->hist) + 1;

	memmove(sl->hist, sl->hist + first, sl->hist_len - first);
	sl->hist_len = (uint16_t)(sl->hist_len - first);
}

void
net_registry_add_history(struct net_registry *r, int slot, const char *line,
    size_t len)
{
	char buf[NET_REG_HISTORY_LEN];
	struct net_registry_slot *sl;
	size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;

	/* Made printable outside the lock: the page shows it as text, but
	 * a log or a terminal reading the API might not. */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];

		buf[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	buf[n] = '\0';
	if (registry_entry(r, slot) == NULL)
		return;
	sl = &r->slots[slot];
	if (sl->info.n_history >= NET_REG_HISTORY)
		registry_history_shift(sl);
	if ((size_t)(sl->hist_cap - sl->hist_len) < n + 1) {
		size_t cap = sl->hist_cap ? sl->hist_cap : 32;

		while (cap - sl->hist_len < n + 1)
			cap *= 2;
		if (cap > REG_HISTORY_MAX)
			cap = REG_HISTORY_MAX;	/* 16 lines of at most 72 fit */
		sl->hist = xreallocarray(sl->hist, cap, 1);
		sl->hist_cap = (uint16_t)cap;
	}
	memcpy(sl->hist + sl->hist_len, buf, n + 1);
	sl->hist_len = (uint16_t)(sl->hist_len + n + 1);
	sl->info.n_history++;
	pthread_mutex_unlock(&r->lock);
}

unsigned
net_registry_history_count(const struct net_session_info *info)
{
	if (info->history == NULL)
		return 0;
	return info->n_history < NET_REG_HISTORY ? (unsigned)info->n_history :
	    NET_REG_HISTORY;
}

const char *
net_registry_history_at(const struct net_session_info *info, unsigned k)
{
	const char *p = info->history;

	if (k >= net_registry_history_count(info))
		return "";
	while (k-- > 0)
		p += strlen(p) + 1;
	return p;
}

void
net_registry_set_owner(struct net_registry *r, int slot, void *owner,
    struct net_loop *loop)
{
	pthread_mutex_lock(&r->lock);
	if (slot >= 0 && (size_t)slot < r->n_slots && r->slots[slot].used) {
		r->slots[slot].owner = owner;
		r->slots[slot].loop = loop;
		r->slots[slot].info.loop = loop != NULL ? net_loop_index(loop) :
		    0;
	}
	pthread_mutex_unlock(&r->lock);
}

void *
net_registry_owner(struct net_registry *r, uint64_t id,
    struct net_loop *loop)
{
	void *owner = NULL;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_slots; i++)
		if (r->slots[i].used && r->slots[i].info.id == id) {
			if (r->slots[i].loop == loop)
				owner = r->slots[i].owner;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return owner;
}

struct net_loop *
net_registry_loop(struct net_registry *r, uint64_t id)
{
	struct net_loop *loop = NULL;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_slots; i++)
		if (r->slots[i].used && r->slots[i].info.id == id) {
			loop = r->slots[i].loop;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return loop;
}

bool
net_registry_has(struct net_registry *r, uint64_t id)
{
	bool found = false;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_slots && !found; i++)
		found = r->slots[i].used && r->slots[i].info.id == id;
	pthread_mutex_unlock(&r->lock);
	return found;
}
