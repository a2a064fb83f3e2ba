/* test_loop.c - event loop threads, calls posted to them, work queue
 * completions on the submitting loop, the ticket key ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include <event2/event.h>

#include "net/loop.h"
#include "net/tls_ticket.h"
#include "net/workq.h"

struct probe {
	struct net_loop *want;
	struct net_loop *self;
	pthread_t thread;
	int calls;
};

static void
probe_fn(void *arg)
{
	struct probe *p = arg;

	p->self = net_loop_self();
	p->thread = pthread_self();
	p->calls++;
}

static void
loop_break(void *arg)
{
	event_base_loopbreak(arg);
}

static void
test_call_runs_on_the_loop_thread(void **state)
{
	struct event_base *base = event_base_new();
	struct net_loop *l = net_loop_new(base, 1);
	struct probe p = { .want = l };

	(void)state;
	/* Not started: at once, here. */
	net_loop_call(l, probe_fn, &p);
	assert_int_equal(p.calls, 1);
	assert_true(pthread_equal(p.thread, pthread_self()));
	assert_true(net_loop_start(l));
	net_loop_call(l, probe_fn, &p);
	assert_int_equal(p.calls, 2);
	assert_ptr_equal(p.self, l);
	assert_false(pthread_equal(p.thread, pthread_self()));
	assert_int_equal(net_loop_index(l), 1);
	net_loop_post(l, loop_break, base);
	net_loop_join(l);
	/* Its thread is gone: a call runs in the caller, never lost. */
	net_loop_post(l, probe_fn, &p);
	assert_int_equal(p.calls, 3);
	assert_true(pthread_equal(p.thread, pthread_self()));
	net_loop_free(&l);
	event_base_free(base);
}

struct wjob {
	pthread_t done_on;
	struct event_base *base;
	struct workq *wq;
	bool done;
};

static void
wjob_work(void *arg)
{
	(void)arg;
}

static void
wjob_done(void *arg)
{
	struct wjob *j = arg;

	j->done_on = pthread_self();
	j->done = true;
	event_base_loopbreak(j->base);
}

/* On loop 1: submits j, whose completion must come back here. */
static void
wjob_submit(void *arg)
{
	struct wjob *j = arg;

	workq_submit(j->wq, wjob_work, wjob_done, j);
}

static void
test_workq_completes_on_the_submitting_loop(void **state)
{
	struct event_base *b0 = event_base_new(), *b1 = event_base_new();
	struct net_loop *l0 = net_loop_new(b0, 0), *l1 = net_loop_new(b1, 1);
	struct workq *wq;
	struct wjob j0, j1;
	struct probe p;

	(void)state;
	net_loop_bind(l0);
	wq = workq_new(b0, 2);
	workq_add_loop(wq, b1, 1);
	memset(&j0, 0, sizeof(j0));
	memset(&j1, 0, sizeof(j1));
	j0.base = b0;
	j1.base = b1;
	j0.wq = j1.wq = wq;
	assert_true(net_loop_start(l1));
	net_loop_call(l1, probe_fn, &p);	/* the loop thread's id */
	net_loop_post(l1, wjob_submit, &j1);
	workq_submit(wq, wjob_work, wjob_done, &j0);
	event_base_dispatch(b0);
	assert_true(j0.done);
	assert_true(pthread_equal(j0.done_on, pthread_self()));
	assert_int_equal(workq_pending(wq), 0);
	net_loop_join(l1);		/* j1's completion broke loop 1 */
	assert_true(j1.done);
	assert_true(pthread_equal(j1.done_on, p.thread));
	workq_free(&wq);
	net_loop_free(&l1);
	net_loop_free(&l0);
	assert_null(net_loop_self());
	event_base_free(b1);
	event_base_free(b0);
}

static void
test_ticket_ring_rotates(void **state)
{
	struct tls_ticket_key a, b, k;
	unsigned char unknown[TLS_TICKET_NAME_LEN] = { 0 };

	(void)state;
	tls_ticket_reset(10);
	assert_true(tls_ticket_current(100, &a));
	assert_true(tls_ticket_current(105, &k));
	assert_memory_equal(k.name, a.name, TLS_TICKET_NAME_LEN);
	assert_int_equal(tls_ticket_find(a.name, 109, &k), TLS_TICKET_CURRENT);
	assert_memory_equal(k.aes, a.aes, sizeof(a.aes));
	/* A period later a new key encrypts; the old one still decrypts,
	 * and its tickets are to be replaced. */
	assert_true(tls_ticket_current(110, &b));
	assert_memory_not_equal(b.name, a.name, TLS_TICKET_NAME_LEN);
	assert_int_equal(tls_ticket_find(a.name, 115, &k), TLS_TICKET_OLD);
	assert_int_equal(tls_ticket_find(b.name, 115, &k), TLS_TICKET_CURRENT);
	assert_int_equal(tls_ticket_find(unknown, 115, &k), TLS_TICKET_NONE);
	/* Two periods after its birth a key is gone. */
	assert_int_equal(tls_ticket_find(a.name, 119, &k), TLS_TICKET_OLD);
	assert_int_equal(tls_ticket_find(a.name, 120, &k), TLS_TICKET_NONE);
	/* A clock that went back: a new key, never an older one reused. */
	assert_true(tls_ticket_current(50, &k));
	assert_memory_not_equal(k.name, b.name, TLS_TICKET_NAME_LEN);
	tls_ticket_reset(0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_runs_on_the_loop_thread),
		cmocka_unit_test(test_workq_completes_on_the_submitting_loop),
		cmocka_unit_test(test_ticket_ring_rotates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
