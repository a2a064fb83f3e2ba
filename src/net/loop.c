/* loop.c - event loop threads and the calls other threads post to them. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/loop.h"

struct loop_call {
	struct loop_call *next;
	net_loop_fn *fn;
	void *arg;
	/* net_loop_call(): the caller waits for done */
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	bool *done;
};

struct net_loop {
	struct event_base *base;
	unsigned index;
	int efd;
	struct event *ev;
	pthread_mutex_t lock;
	struct loop_call *head, **tailp;	/* under lock */
	pthread_t thread;
	bool has_thread;
	/* Its thread has left its loop (under lock): a call posted from
	 * then on runs in the caller, since nobody else would run it. */
	bool exited;
};

static _Thread_local struct net_loop *loop_self;

static void
loop_run_calls(struct net_loop *l)
{
	struct loop_call *c, *next;

	pthread_mutex_lock(&l->lock);
	c = l->head;
	l->head = NULL;
	l->tailp = &l->head;
	pthread_mutex_unlock(&l->lock);
	for (; c != NULL; c = next) {
		next = c->next;
		c->fn(c->arg);
		if (c->done != NULL) {
			pthread_mutex_lock(c->mu);
			*c->done = true;
			pthread_cond_broadcast(c->cv);
			pthread_mutex_unlock(c->mu);
		}
		free(c);
	}
}

static void
loop_on_eventfd(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("loop eventfd");
	loop_run_calls(arg);
}

struct net_loop *
net_loop_new(struct event_base *base, unsigned index)
{
	struct net_loop *l = xcalloc(1, sizeof(*l));

	l->base = base;
	l->index = index;
	l->tailp = &l->head;
	pthread_mutex_init(&l->lock, NULL);
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd < 0)
		fatal("eventfd");
	l->ev = event_new(base, l->efd, EV_READ | EV_PERSIST, loop_on_eventfd,
	    l);
	if (l->ev == NULL || event_add(l->ev, NULL) != 0)
		fatalx("cannot set up a loop's eventfd");
	return l;
}

void
net_loop_free(struct net_loop **lp)
{
	struct net_loop *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	loop_run_calls(l);
	if (loop_self == l)
		loop_self = NULL;
	event_free(l->ev);
	close(l->efd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

struct event_base *
net_loop_base(const struct net_loop *l)
{
	return l->base;
}

unsigned
net_loop_index(const struct net_loop *l)
{
	return l->index;
}

void
net_loop_bind(struct net_loop *l)
{
	loop_self = l;
}

struct net_loop *
net_loop_self(void)
{
	return loop_self;
}

unsigned
net_loop_self_index(void)
{
	return loop_self != NULL ? loop_self->index : 0;
}

static void *
loop_thread(void *arg)
{
	struct net_loop *l = arg;

	net_loop_bind(l);
	event_base_dispatch(l->base);
	pthread_mutex_lock(&l->lock);
	l->exited = true;
	pthread_mutex_unlock(&l->lock);
	/* Calls posted before then (none is lost). */
	loop_run_calls(l);
	return NULL;
}

bool
net_loop_start(struct net_loop *l)
{
	sigset_t all, old;
	int rc;

	/* Signals go to the main thread (its base handles them): the new
	 * thread starts with every one blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	l->has_thread = true;
	rc = pthread_create(&l->thread, NULL, loop_thread, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		l->has_thread = false;
	return rc == 0;
}

void
net_loop_join(struct net_loop *l)
{
	if (l == NULL || !l->has_thread)
		return;
	pthread_join(l->thread, NULL);
	l->has_thread = false;
}

/* False if l's thread has left its loop (c is not queued). */
static bool
loop_enqueue(struct net_loop *l, struct loop_call *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&l->lock);
	if (l->exited) {
		pthread_mutex_unlock(&l->lock);
		return false;
	}
	*l->tailp = c;
	l->tailp = &c->next;
	pthread_mutex_unlock(&l->lock);
	/* A counter: the write cannot block, only overflow (never). */
	if (write(l->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("loop eventfd");
	return true;
}

void
net_loop_post(struct net_loop *l, net_loop_fn *fn, void *arg)
{
	struct loop_call *c = xcalloc(1, sizeof(*c));

	c->fn = fn;
	c->arg = arg;
	if (!loop_enqueue(l, c)) {
		free(c);
		fn(arg);
	}
}

void
net_loop_call(struct net_loop *l, net_loop_fn *fn, void *arg)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct loop_call *c;
	bool done = false;

	if (loop_self == l || !l->has_thread) {
		fn(arg);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->fn = fn;
	c->arg = arg;
	c->mu = &mu;
	c->cv = &cv;
	c->done = &done;
	pthread_mutex_lock(&mu);
	if (!loop_enqueue(l, c)) {
		free(c);
		done = true;
		fn(arg);
	}
	while (!done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&cv);
	pthread_mutex_destroy(&mu);
}
