/*
 * runtime.h - the server's shared state, whatever the protocol: the
 * listeners, the current configuration generation, counters per protocol
 * and the registry of live sessions, shared by every event loop
 * (loop.h).  The main thread (loop 0) owns it; the counters, the
 * registry, the per-IP limits and net_runtime_gen_ref() are used from
 * every loop and read from other threads (an admin or metrics server).
 */
#ifndef POSUTO_NET_RUNTIME_H
#define POSUTO_NET_RUNTIME_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net/protocol.h"

struct event_base;
struct workq;
struct iplimit;
struct tls_ctx;
struct posuto_config;
struct net_listener;
struct net_loop;
struct net_registry;

/*
 * One configuration generation: the file and what was loaded from it,
 * swapped whole on SIGHUP.  Whoever holds a reference sees one
 * consistent set.  The user database is opaque here (net does not see
 * auth): the daemon passes it with the call that drops its reference.
 */
struct net_gen {
	atomic_uint refs;
	unsigned number;		/* 1 at startup, +1 per reload */
	struct posuto_config *cfg;
	void *userdb;			/* struct userdb * */
	void (*userdb_unref)(void *userdb);
	struct tls_ctx *tls;		/* NULL: no TLS */
};

/* Takes over cfg, userdb and tls (one reference each); refs is 1. */
struct net_gen *net_gen_new(struct posuto_config *cfg, void *userdb,
    void (*userdb_unref)(void *), struct tls_ctx *tls);
void net_gen_ref(struct net_gen *g);
void net_gen_unref(struct net_gen **g);

enum net_counter {
	NET_CNT_CONNECTIONS = 0,
	NET_CNT_LOGIN_OK,
	NET_CNT_LOGIN_FAILED,
	NET_CNT_RETRIEVED,		/* messages sent whole */
	NET_CNT_RETRIEVED_BYTES,	/* message octets sent (also partial) */
	NET_CNT_DELETED,		/* messages removed at the session's end */
	NET_CNT_TLS_HANDSHAKES,		/* completed */
	NET_CNT_TLS_FAILURES,
	/* the UIDL-drift detector's findings at logins (store.h) */
	NET_CNT_UIDL_CHANGED,		/* a served file under a new UIDL */
	NET_CNT_UIDL_REAPPEARED,	/* deleted at a QUIT, back again */
	NET_CNT_UIDL_RERETRIEVED,	/* RETRieved in >= 3 sessions */
	NET_CNT_COUNT
};

/* Distinct login-failure reasons kept apart; later ones count as the
 * last ("other"). */
#define NET_FAIL_REASONS	15
#define NET_FAIL_REASON_LEN	32

/*
 * One protocol's counters.  Atomics: the loop threads add (a relaxed
 * add: no ordering is needed between counters), any thread reads.  A
 * reason's name is written before n_reasons is raised past it (release)
 * and never changes again, so a reader that loaded n_reasons (acquire)
 * reads whole names.
 */
struct net_counters {
	atomic_uint_fast64_t v[NET_CNT_COUNT];
	atomic_uint n_reasons;
	char reason[NET_FAIL_REASONS + 1][NET_FAIL_REASON_LEN];
	atomic_uint_fast64_t by_reason[NET_FAIL_REASONS + 1];
};

/*
 * Latency histograms (Prometheus: cumulative _bucket{le}, _sum, _count).
 * Atomics, as the counters: the loop thread observes, anyone reads.
 */
enum net_hist {
	NET_HIST_LOGIN = 0,		/* login command to its answer */
	NET_HIST_RETR,			/* RETR to the message queued whole */
	NET_HIST_COUNT
};
#define NET_HIST_BUCKETS	12	/* plus +Inf */
/* Upper bounds in seconds, shared by every histogram. */
extern const double net_hist_bounds[NET_HIST_BUCKETS];

struct net_histogram {
	atomic_uint_fast64_t bucket[NET_HIST_BUCKETS + 1];	/* not cumulative */
	atomic_uint_fast64_t sum_ns;
};

struct net_hist_values {
	uint64_t bucket[NET_HIST_BUCKETS + 1];	/* cumulative, last = count */
	double sum;				/* seconds */
};

/* A copy, for a reader. */
struct net_counter_values {
	uint64_t v[NET_CNT_COUNT];
	unsigned n_reasons;
	char reason[NET_FAIL_REASONS + 1][NET_FAIL_REASON_LEN];
	uint64_t by_reason[NET_FAIL_REASONS + 1];
};

struct net_runtime {
	struct event_base *base;	/* loop 0's */
	/* Every event loop, [0] the main thread's (NULL without a base):
	 * the daemon adds the others before any starts. */
	struct net_loop **loops;
	unsigned n_loops;
	struct workq *wq;		/* blocking work clients wait for */
	/* Deliveries (LMTP, the SMTP sink): each ends in fsyncs, so it
	 * waits on the disk, not a CPU; more of them in flight than there
	 * are CPUs lets the disk sync them together (Dovecot runs as many
	 * lmtp processes).  NULL: they go to wq. */
	struct workq *ioq;
	/* Work no client waits for (wire cache copies): never delays a
	 * login behind it.  NULL: none is done. */
	struct workq *bgq;
	struct iplimit *iplimit;
	/* The current generation.  The main thread (the only one that
	 * swaps it) reads the pointer directly; others take a reference
	 * with net_runtime_gen_ref(), under gen_lock, or read the copy
	 * their loop was handed (the daemon's). */
	struct net_gen *gen;
	pthread_mutex_t gen_lock;
	/* Loop i's generation ([0] unused: loop 0 reads gen), a reference
	 * only that loop's thread reads and replaces. */
	struct net_gen **loop_gen;
	struct net_listener **listeners;
	size_t n_listeners;		/* every one made (closed ones too) */
	atomic_uint listening;		/* sockets open now (the daemon's count) */
	struct net_counters counters[NET_PROTOCOL_MAX];
	pthread_mutex_t reason_lock;	/* adding a failure reason */
	struct net_histogram hist[NET_HIST_COUNT];
	struct net_registry *registry;
	/* Protocol transcripts (transcript.h): empty unless configured. */
	struct net_transcripts *transcripts;
	atomic_uint_fast64_t next_id;	/* of the last connection */
	atomic_bool shutting_down;
};

/* base: the calling thread's loop (loop 0, bound to it), or NULL. */
struct net_runtime *net_runtime_new(struct event_base *base);
/* Another loop over base (index n_loops), before any loop starts. */
struct net_loop *net_runtime_add_loop(struct net_runtime *rt,
    struct event_base *base);
/* A new connection's id, unique across loops. */
uint64_t net_runtime_next_id(struct net_runtime *rt);
/* Frees the listeners' descriptions, the registry and the generation. */
void net_runtime_free(struct net_runtime **rt);
/* Makes g (the caller's reference) current; the old one is released
 * once its last holder lets go. */
void net_runtime_set_gen(struct net_runtime *rt, struct net_gen *g);
/* The current generation, referenced (any thread). */
struct net_gen *net_runtime_gen_ref(struct net_runtime *rt);
/* The calling loop's generation, not referenced: valid until the loop
 * returns to its event loop.  Off every loop: rt->gen. */
struct net_gen *net_runtime_gen(struct net_runtime *rt);
/* Loop index (1..) takes the current generation and lets go of its
 * previous one: on that loop's thread (a reload posts it there), or
 * before it starts. */
void net_runtime_loop_adopt_gen(struct net_runtime *rt, unsigned index);

void net_count(struct net_runtime *rt, unsigned proto, enum net_counter k,
    uint64_t n);
/* A failed login with its reason token ("wrong-password"), copied. */
void net_count_login_failed(struct net_runtime *rt, unsigned proto,
    const char *reason);
void net_counters_read(struct net_runtime *rt, unsigned proto,
    struct net_counter_values *out);
const char *net_counter_name(enum net_counter k);

/* Monotonic clock, nanoseconds. */
uint64_t net_mono_ns(void);
/* Records one duration (since start_ns, a net_mono_ns() reading). */
void net_observe(struct net_runtime *rt, enum net_hist h, uint64_t start_ns);
void net_hist_read(struct net_runtime *rt, enum net_hist h,
    struct net_hist_values *out);

/*
 * Any thread: asks the loop that runs session id to end it as its
 * protocol does when kicked (POP3: a clean -ERR, no UPDATE, the lock
 * released).  False if there is no such session.  The session is its
 * loop's: the request is a message to that loop (net_loop_post), never
 * a call from here.
 */
bool net_runtime_kick(struct net_runtime *rt, uint64_t id);

/* Logs the counters of every protocol (and, with sessions, one line per
 * live session): SIGUSR1, shutdown. */
void net_runtime_log(struct net_runtime *rt, bool sessions);

#endif
