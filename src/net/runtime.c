/* runtime.c - the shared state: generations, counters, the session dump. */
#include <errno.h>
#include <inttypes.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/registry.h"
#include "net/transcript.h"
#include "net/runtime.h"
#include "net/tls.h"

static const char *const net_counter_names[NET_CNT_COUNT] = {
	[NET_CNT_CONNECTIONS] = "connections",
	[NET_CNT_LOGIN_OK] = "logins_ok",
	[NET_CNT_LOGIN_FAILED] = "logins_failed",
	[NET_CNT_RETRIEVED] = "retrieved",
	[NET_CNT_RETRIEVED_BYTES] = "retrieved_bytes",
	[NET_CNT_DELETED] = "deleted",
	[NET_CNT_TLS_HANDSHAKES] = "tls_handshakes",
	[NET_CNT_TLS_FAILURES] = "tls_failures",
	[NET_CNT_UIDL_CHANGED] = "uidl_changed",
	[NET_CNT_UIDL_REAPPEARED] = "uidl_reappeared",
	[NET_CNT_UIDL_RERETRIEVED] = "uidl_reretrieved",
};

struct net_gen *
net_gen_new(struct posuto_config *cfg, void *userdb,
    void (*userdb_unref)(void *), struct tls_ctx *tls)
{
	struct net_gen *g = xcalloc(1, sizeof(*g));

	atomic_init(&g->refs, 1);
	g->cfg = cfg;
	g->userdb = userdb;
	g->userdb_unref = userdb_unref;
	g->tls = tls;
	return g;
}

void
net_gen_ref(struct net_gen *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void
net_gen_unref(struct net_gen **gp)
{
	struct net_gen *g = *gp;

	if (g == NULL)
		return;
	*gp = NULL;
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (g->userdb != NULL && g->userdb_unref != NULL)
		g->userdb_unref(g->userdb);
	tls_ctx_unref(&g->tls);
	config_free(&g->cfg);
	free(g);
}

const double net_hist_bounds[NET_HIST_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5,
};

struct net_kick {
	struct net_runtime *rt;
	uint64_t id;
};

/* On the session's loop: the kick another thread asked for. */
static void
net_runtime_on_kick(void *arg)
{
	struct net_kick *k = arg;
	/* Looked up now, on the thread that frees the session: one that
	 * ended meanwhile is simply not found. */
	struct conn *c = net_registry_owner(k->rt->registry, k->id,
	    net_loop_self());

	if (c != NULL && conn_kick(c))
		log_info("session=%" PRIx64 " kicked by the administrator",
		    k->id);
	free(k);
}

struct net_runtime *
net_runtime_new(struct event_base *base)
{
	struct net_runtime *rt = xcalloc(1, sizeof(*rt));

	rt->base = base;
	pthread_mutex_init(&rt->gen_lock, NULL);
	pthread_mutex_init(&rt->reason_lock, NULL);
	rt->registry = net_registry_new();
	rt->transcripts = net_transcripts_new();
	if (base != NULL) {
		net_runtime_add_loop(rt, base);
		net_loop_bind(rt->loops[0]);
	}
	return rt;
}

struct net_loop *
net_runtime_add_loop(struct net_runtime *rt, struct event_base *base)
{
	struct net_loop *l = net_loop_new(base, rt->n_loops);

	rt->loops = xreallocarray(rt->loops, rt->n_loops + 1,
	    sizeof(*rt->loops));
	rt->loop_gen = xreallocarray(rt->loop_gen, rt->n_loops + 1,
	    sizeof(*rt->loop_gen));
	rt->loop_gen[rt->n_loops] = NULL;
	rt->loops[rt->n_loops++] = l;
	return l;
}

uint64_t
net_runtime_next_id(struct net_runtime *rt)
{
	return atomic_fetch_add_explicit(&rt->next_id, 1,
	    memory_order_relaxed) + 1;
}

bool
net_runtime_kick(struct net_runtime *rt, uint64_t id)
{
	struct net_loop *l = net_registry_loop(rt->registry, id);
	struct net_kick *k;

	if (l == NULL)
		return false;
	k = xmalloc(sizeof(*k));
	k->rt = rt;
	k->id = id;
	net_loop_post(l, net_runtime_on_kick, k);
	return true;
}

uint64_t
net_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
net_observe(struct net_runtime *rt, enum net_hist h, uint64_t start_ns)
{
	uint64_t now = net_mono_ns(), d = now > start_ns ? now - start_ns : 0;
	double secs = (double)d / 1e9;
	unsigned b = 0;

	if (rt == NULL || h >= NET_HIST_COUNT || start_ns == 0)
		return;
	while (b < NET_HIST_BUCKETS && secs > net_hist_bounds[b])
		b++;
	atomic_fetch_add_explicit(&rt->hist[h].bucket[b], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&rt->hist[h].sum_ns, d, memory_order_relaxed);
}

void
net_hist_read(struct net_runtime *rt, enum net_hist h,
    struct net_hist_values *out)
{
	uint64_t acc = 0;

	memset(out, 0, sizeof(*out));
	if (h >= NET_HIST_COUNT)
		return;
	for (unsigned b = 0; b <= NET_HIST_BUCKETS; b++) {
		acc += atomic_load_explicit(&rt->hist[h].bucket[b],
		    memory_order_relaxed);
		out->bucket[b] = acc;
	}
	out->sum = (double)atomic_load_explicit(&rt->hist[h].sum_ns,
	    memory_order_relaxed) / 1e9;
}

void
net_runtime_free(struct net_runtime **rtp)
{
	struct net_runtime *rt = *rtp;

	if (rt == NULL)
		return;
	*rtp = NULL;
	/* First: calls still queued (kicks) run while the registry is. */
	for (unsigned i = 0; i < rt->n_loops; i++) {
		net_gen_unref(&rt->loop_gen[i]);
		net_loop_free(&rt->loops[i]);
	}
	free(rt->loops);
	free(rt->loop_gen);
	for (size_t i = 0; i < rt->n_listeners; i++)
		net_listener_free(&rt->listeners[i]);
	free(rt->listeners);
	net_registry_free(&rt->registry);
	net_transcripts_free(&rt->transcripts);
	net_gen_unref(&rt->gen);
	pthread_mutex_destroy(&rt->gen_lock);
	pthread_mutex_destroy(&rt->reason_lock);
	free(rt);
}

void
net_runtime_set_gen(struct net_runtime *rt, struct net_gen *g)
{
	struct net_gen *old;

	pthread_mutex_lock(&rt->gen_lock);
	old = rt->gen;
	g->number = old != NULL ? old->number + 1 : 1;
	rt->gen = g;
	pthread_mutex_unlock(&rt->gen_lock);
	net_gen_unref(&old);
}

struct net_gen *
net_runtime_gen_ref(struct net_runtime *rt)
{
	struct net_gen *g;

	pthread_mutex_lock(&rt->gen_lock);
	g = rt->gen;
	if (g != NULL)
		net_gen_ref(g);
	pthread_mutex_unlock(&rt->gen_lock);
	return g;
}

struct net_gen *
net_runtime_gen(struct net_runtime *rt)
{
	unsigned i = net_loop_self_index();

	if (i == 0 || i >= rt->n_loops || rt->loop_gen[i] == NULL)
		return rt->gen;
	return rt->loop_gen[i];
}

void
net_runtime_loop_adopt_gen(struct net_runtime *rt, unsigned index)
{
	struct net_gen *old;

	if (index == 0 || index >= rt->n_loops)
		return;
	old = rt->loop_gen[index];
	rt->loop_gen[index] = net_runtime_gen_ref(rt);
	/* Sessions of this loop that hold the old one keep it alive. */
	net_gen_unref(&old);
}

void
net_count(struct net_runtime *rt, unsigned proto, enum net_counter k,
    uint64_t n)
{
	if (rt == NULL || proto >= NET_PROTOCOL_MAX)
		return;
	atomic_fetch_add_explicit(&rt->counters[proto].v[k], n,
	    memory_order_relaxed);
}

void
net_count_login_failed(struct net_runtime *rt, unsigned proto,
    const char *reason)
{
	struct net_counters *c;
	unsigned n, i;

	if (rt == NULL || proto >= NET_PROTOCOL_MAX)
		return;
	c = &rt->counters[proto];
	atomic_fetch_add_explicit(&c->v[NET_CNT_LOGIN_FAILED], 1,
	    memory_order_relaxed);
	if (reason == NULL)
		reason = "unknown";
	/* Several loops add reasons: the search and the append are one
	 * step under reason_lock (failed logins only, never the fast
	 * path of a session). */
	pthread_mutex_lock(&rt->reason_lock);
	n = atomic_load_explicit(&c->n_reasons, memory_order_relaxed);
	for (i = 0; i < n; i++)
		if (strncmp(c->reason[i], reason, NET_FAIL_REASON_LEN - 1) == 0)
			break;
	if (i == n) {
		if (n < NET_FAIL_REASONS) {
			snprintf(c->reason[n], sizeof(c->reason[n]), "%s", reason);
		} else {
			i = NET_FAIL_REASONS;
			if (n == NET_FAIL_REASONS)
				snprintf(c->reason[i], sizeof(c->reason[i]), "other");
		}
		if (n <= NET_FAIL_REASONS)
			atomic_store_explicit(&c->n_reasons, n + 1,
			    memory_order_release);
	}
	pthread_mutex_unlock(&rt->reason_lock);
	atomic_fetch_add_explicit(&c->by_reason[i], 1, memory_order_relaxed);
}

void
net_counters_read(struct net_runtime *rt, unsigned proto,
    struct net_counter_values *out)
{
	struct net_counters *c;

	memset(out, 0, sizeof(*out));
	if (proto >= NET_PROTOCOL_MAX)
		return;
	c = &rt->counters[proto];
	for (unsigned k = 0; k < NET_CNT_COUNT; k++)
		out->v[k] = atomic_load_explicit(&c->v[k], memory_order_relaxed);
	out->n_reasons = atomic_load_explicit(&c->n_reasons,
	    memory_order_acquire);
	for (unsigned i = 0; i < out->n_reasons; i++) {
		memcpy(out->reason[i], c->reason[i], NET_FAIL_REASON_LEN);
		out->by_reason[i] = atomic_load_explicit(&c->by_reason[i],
		    memory_order_relaxed);
	}
}

const char *
net_counter_name(enum net_counter k)
{
	return k < NET_CNT_COUNT ? net_counter_names[k] : "?";
}

static void
net_runtime_log_counters(struct net_runtime *rt, unsigned proto)
{
	struct net_counter_values cv;
	char line[1024], safe[NET_FAIL_REASON_LEN];
	size_t off = 0;

	net_counters_read(rt, proto, &cv);
	for (unsigned k = 0; k < NET_CNT_COUNT && off < sizeof(line); k++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, " %s=%"
		    PRIu64, net_counter_names[k], cv.v[k]);
	for (unsigned i = 0; i < cv.n_reasons && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    " failed:%s=%" PRIu64, log_sanitize(safe, sizeof(safe),
		    cv.reason[i], strlen(cv.reason[i])), cv.by_reason[i]);
	log_info("counters protocol=%s%s", net_protocol_at(proto)->name, line);
}

void
net_runtime_log(struct net_runtime *rt, bool sessions)
{
	struct net_session_info *si;
	char user[NET_REG_USER_LEN];
	size_t n;
	time_t now = time(NULL);

	for (unsigned p = 0; p < net_protocol_count(); p++)
		net_runtime_log_counters(rt, p);
	if (!sessions)
		return;
	n = net_registry_snapshot(rt->registry, &si);
	log_info("sessions live=%zu", n);
	for (size_t i = 0; i < n; i++)
		log_info("session=%" PRIx64 " protocol=%s client=%s user=%s "
		    "state=%s command=%s age=%llds bytes=%" PRIu64, si[i].id,
		    si[i].proto, si[i].client, si[i].user[0] != '\0' ?
		    log_sanitize(user, sizeof(user), si[i].user,
		    strlen(si[i].user)) : "-",
		    si[i].state[0] != '\0' ? si[i].state : "-",
		    si[i].command[0] != '\0' ? si[i].command : "-",
		    (long long)(now - si[i].since), si[i].bytes);
	free(si);
}
