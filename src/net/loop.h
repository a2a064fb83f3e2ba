/*
 * loop.h - one event loop thread: its event_base, and the way other
 * threads hand it work (a queue and an eventfd).  The server runs
 * several, one per core by default (EventLoops): each serves whole
 * connections from accept to close, so a session, its timers, its TLS
 * records and its job completions stay on one thread and no session
 * state is ever shared.  What loops share (the generation, counters,
 * the registry, per-IP limits, the mailbox locks) is locked or atomic
 * where it is defined.
 *
 * Threads, not processes (Dovecot's login processes): the registry, the
 * counters and the configuration generation are read in place, and one
 * SSL_CTX (its session cache and ticket keys) serves every loop.
 */
#ifndef POSUTO_NET_LOOP_H
#define POSUTO_NET_LOOP_H

#include <stdbool.h>

struct event_base;
struct net_loop;

typedef void net_loop_fn(void *arg);

/* Wraps base (the caller keeps it); index: 0 for the main thread's. */
struct net_loop *net_loop_new(struct event_base *base, unsigned index);
/* Runs the queued calls first, then frees (not base). */
void net_loop_free(struct net_loop **l);
struct event_base *net_loop_base(const struct net_loop *l);
unsigned net_loop_index(const struct net_loop *l);

/* The calling thread runs l (net_loop_self() answers l from now on). */
void net_loop_bind(struct net_loop *l);
/* The loop the calling thread runs, or NULL (workers, admin, tests). */
struct net_loop *net_loop_self(void);
/* Its index, 0 when the thread runs none. */
unsigned net_loop_self_index(void);

/* A thread that binds l and dispatches its base until
 * event_base_loopbreak() (net_loop_post a function that calls it). */
bool net_loop_start(struct net_loop *l);
/* Waits for that thread (no-op if there was none). */
void net_loop_join(struct net_loop *l);

/* Any thread: fn(arg) runs soon on l's thread.  Never fails (the call
 * is queued in memory); once that thread has left its loop for good,
 * fn runs at once in the caller (the loop's sessions are gone). */
void net_loop_post(struct net_loop *l, net_loop_fn *fn, void *arg);
/* Any thread: fn(arg) runs on l's thread, and this returns after it
 * did (at once on l's own thread).  Only the main thread waits on
 * others this way, and loops never wait on it: no cycle. */
void net_loop_call(struct net_loop *l, net_loop_fn *fn, void *arg);

#endif
