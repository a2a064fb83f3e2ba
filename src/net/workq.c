/* workq.c - worker threads; completions delivered through an eventfd. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/loop.h"
#include "net/workq.h"

struct workq_port;

struct job {
	struct job *next;
	struct workq_port *port;	/* where done() runs */
	workq_fn *work;
	workq_fn *done;
	void *arg;
};

struct jobq {
	struct job *head;
	struct job **tailp;
};

/* One loop's completions. */
struct workq_port {
	struct workq *wq;
	struct jobq finished;	/* protected by wq->lock */
	unsigned pending;	/* its loop thread only */
	int efd;
	struct event *ev;
};

#define WORKQ_MAX_PORTS	256	/* EventLoops' bound */

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct jobq todo;	/* protected by lock */
	bool stopping;
	struct workq_port *ports[WORKQ_MAX_PORTS];	/* [0] always */
	pthread_t *threads;
	unsigned nthreads;
};

static void
jobq_init(struct jobq *q)
{
	q->head = NULL;
	q->tailp = &q->head;
}

static void
jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	*q->tailp = j;
	q->tailp = &j->next;
}

static void *
workq_thread(void *arg)
{
	struct workq *wq = arg;
	struct job *j;
	uint64_t one = 1;
	bool woken;

	pthread_mutex_lock(&wq->lock);
	for (;;) {
		while (wq->todo.head == NULL && !wq->stopping)
			pthread_cond_wait(&wq->cond, &wq->lock);
		if (wq->todo.head == NULL)
			break;
		j = wq->todo.head;
		wq->todo.head = j->next;
		if (wq->todo.head == NULL)
			wq->todo.tailp = &wq->todo.head;
		pthread_mutex_unlock(&wq->lock);

		j->work(j->arg);

		pthread_mutex_lock(&wq->lock);
		/* Only the first completion of a batch wakes the loop: it
		 * takes the whole list (workq_run_completions), and under
		 * load one wake-up then serves many logins. */
		woken = j->port->finished.head != NULL;
		jobq_push(&j->port->finished, j);
		/* An eventfd write cannot block (counter), only fail on overflow. */
		if (!woken && write(j->port->efd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			log_warn("workq: eventfd write");
	}
	pthread_mutex_unlock(&wq->lock);
	return NULL;
}

static void
workq_run_completions(struct workq_port *p)
{
	struct job *j, *next;

	pthread_mutex_lock(&p->wq->lock);
	j = p->finished.head;
	jobq_init(&p->finished);
	pthread_mutex_unlock(&p->wq->lock);
	for (; j != NULL; j = next) {
		next = j->next;
		p->pending--;
		j->done(j->arg);
		free(j);
	}
}

static void
workq_on_eventfd(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("workq: eventfd read");
	workq_run_completions(arg);
}

static struct workq_port *
workq_port_new(struct workq *wq, struct event_base *base)
{
	struct workq_port *p = xcalloc(1, sizeof(*p));

	p->wq = wq;
	jobq_init(&p->finished);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0)
		fatal("eventfd: %m");
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST,
	    workq_on_eventfd, p);
	if (p->ev == NULL || event_add(p->ev, NULL) != 0)
		fatal("workq: cannot register eventfd");
	return p;
}

void
workq_add_loop(struct workq *wq, struct event_base *base, unsigned index)
{
	if (index == 0 || index >= WORKQ_MAX_PORTS || wq->ports[index] != NULL)
		fatalx("workq: bad loop index %u", index);
	wq->ports[index] = workq_port_new(wq, base);
}

struct workq *
workq_new(struct event_base *base, unsigned nthreads)
{
	struct workq *wq = xcalloc(1, sizeof(*wq));

	if (nthreads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = n > 0 ? (unsigned)n : 2;
	}
	pthread_mutex_init(&wq->lock, NULL);
	pthread_cond_init(&wq->cond, NULL);
	jobq_init(&wq->todo);
	wq->ports[0] = workq_port_new(wq, base);
	wq->threads = xcalloc(nthreads, sizeof(*wq->threads));
	wq->nthreads = nthreads;
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&wq->threads[i], NULL, workq_thread, wq) != 0)
			fatal("pthread_create failed");
	}
	return wq;
}

/* The calling thread's loop's port (0 off any loop). */
static struct workq_port *
workq_self_port(const struct workq *wq)
{
	unsigned i = net_loop_self_index();

	return i < WORKQ_MAX_PORTS && wq->ports[i] != NULL ? wq->ports[i] :
	    wq->ports[0];
}

void
workq_submit(struct workq *wq, workq_fn *work, workq_fn *done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	j->port = workq_self_port(wq);
	j->port->pending++;
	pthread_mutex_lock(&wq->lock);
	jobq_push(&wq->todo, j);
	pthread_cond_signal(&wq->cond);
	pthread_mutex_unlock(&wq->lock);
}

unsigned
workq_pending(const struct workq *wq)
{
	return workq_self_port(wq)->pending;
}

void
workq_free(struct workq **wqp)
{
	struct workq *wq = *wqp;

	if (wq == NULL)
		return;
	pthread_mutex_lock(&wq->lock);
	wq->stopping = true;
	pthread_cond_broadcast(&wq->cond);
	pthread_mutex_unlock(&wq->lock);
	for (unsigned i = 0; i < wq->nthreads; i++)
		pthread_join(wq->threads[i], NULL);
	/* Every loop has stopped: their completions run here. */
	for (unsigned i = 0; i < WORKQ_MAX_PORTS; i++) {
		struct workq_port *p = wq->ports[i];

		if (p == NULL)
			continue;
		workq_run_completions(p);
		event_free(p->ev);
		close(p->efd);
		free(p);
	}
	pthread_cond_destroy(&wq->cond);
	pthread_mutex_destroy(&wq->lock);
	free(wq->threads);
	free(wq);
	*wqp = NULL;
}
