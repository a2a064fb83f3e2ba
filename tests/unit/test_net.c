/* test_net.c - worker pool completions, per-IP accounting, listeners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/iplimit.h"
#include "net/listener.h"
#include "net/workq.h"

struct job {
	int value;
	pthread_t worker;
	bool done;
	struct event_base *base;
	int *remaining;
};

static void
job_work(void *arg)
{
	struct job *j = arg;

	j->value *= 2;
	j->worker = pthread_self();
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	j->done = true;
	if (--*j->remaining == 0)
		event_base_loopbreak(j->base);
}

static void
test_workq_runs_and_completes_on_loop(void **state)
{
	struct event_base *base = event_base_new();
	struct workq *wq = workq_new(base, 3);
	struct job jobs[100];
	int remaining = 100;
	(void)state;

	for (int i = 0; i < 100; i++) {
		jobs[i] = (struct job){ .value = i, .base = base,
		    .remaining = &remaining };
		workq_submit(wq, job_work, job_done, &jobs[i]);
	}
	assert_int_equal(workq_pending(wq), 100);
	event_base_dispatch(base);
	assert_int_equal(remaining, 0);
	assert_int_equal(workq_pending(wq), 0);
	for (int i = 0; i < 100; i++) {
		assert_true(jobs[i].done);
		assert_int_equal(jobs[i].value, 2 * i);
		/* work ran on a worker, never on the loop thread */
		assert_false(pthread_equal(jobs[i].worker, pthread_self()));
	}
	workq_free(&wq);
	assert_null(wq);
	event_base_free(base);
}

static void
test_workq_free_completes_pending(void **state)
{
	struct event_base *base = event_base_new();
	struct workq *wq = workq_new(base, 1);
	struct job j = { .value = 4, .base = base };
	int remaining = 1;
	(void)state;

	j.remaining = &remaining;
	workq_submit(wq, job_work, job_done, &j);
	/* Freed without running the loop: the completion still runs. */
	workq_free(&wq);
	assert_true(j.done);
	assert_int_equal(j.value, 8);
	event_base_free(base);
}

static struct sockaddr_storage
addr4(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &s4->sin_addr);
	return ss;
}

static void
test_iplimit_connections(void **state)
{
	struct iplimit *l = iplimit_new();
	struct sockaddr_storage a = addr4("192.0.2.1"), b = addr4("192.0.2.2");
	(void)state;

	assert_true(iplimit_conn_acquire(l, &a, 2));
	assert_true(iplimit_conn_acquire(l, &a, 2));
	assert_false(iplimit_conn_acquire(l, &a, 2));
	assert_true(iplimit_conn_acquire(l, &b, 2));
	iplimit_conn_release(l, &a);
	assert_true(iplimit_conn_acquire(l, &a, 2));
	/* 0 = unlimited */
	for (int i = 0; i < 1000; i++)
		assert_true(iplimit_conn_acquire(l, &b, 0));
	iplimit_free(&l);
	assert_null(l);
}

static struct sockaddr_storage
addr6(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &s6->sin6_addr);
	return ss;
}

/* Every address of a /64 is one client; the next /64 is another. */
static void
test_iplimit_ipv6_prefix(void **state)
{
	struct iplimit *l = iplimit_new();
	struct sockaddr_storage a = addr6("2001:db8:1:2::1");
	struct sockaddr_storage a2 = addr6("2001:db8:1:2:dead:beef:0:7");
	struct sockaddr_storage b = addr6("2001:db8:1:3::1");
	(void)state;

	assert_true(iplimit_conn_acquire(l, &a, 2));
	assert_true(iplimit_conn_acquire(l, &a2, 2));
	assert_false(iplimit_conn_acquire(l, &a2, 2));
	assert_true(iplimit_conn_acquire(l, &b, 2));
	assert_int_equal(iplimit_fail(l, &a), 1);
	assert_int_equal(iplimit_fail(l, &a2), 2);
	assert_int_equal(iplimit_failures(l, &b), 0);
	iplimit_free(&l);
}

static void
test_iplimit_failures(void **state)
{
	struct iplimit *l = iplimit_new();
	struct sockaddr_storage a = addr4("198.51.100.7");
	struct sockaddr_storage mapped;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&mapped;
	(void)state;

	assert_int_equal(iplimit_failures(l, &a), 0);
	assert_int_equal(iplimit_fail(l, &a), 1);
	assert_int_equal(iplimit_fail(l, &a), 2);
	/* The v4-mapped IPv6 form is the same client. */
	memset(&mapped, 0, sizeof(mapped));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &s6->sin6_addr);
	assert_int_equal(iplimit_failures(l, &mapped), 2);
	iplimit_success(l, &a);
	assert_int_equal(iplimit_failures(l, &a), 0);
	iplimit_free(&l);
}

static void
test_iplimit_connect_rate(void **state)
{
	struct iplimit *l = iplimit_new();
	struct sockaddr_storage a = addr4("192.0.2.9"), b = addr4("192.0.2.10");
	uint64_t t = 1000000;
	unsigned refused, ok = 0;
	(void)state;

	/* 60 a minute: a burst of 60, then one a second. */
	for (int i = 0; i < 100; i++)
		ok += iplimit_connect_rate(l, &a, 60, t, &refused);
	assert_int_equal(ok, 60);
	assert_int_equal(refused, 40);
	/* Another address has its own bucket. */
	assert_true(iplimit_connect_rate(l, &b, 60, t, &refused));
	assert_int_equal(refused, 0);
	/* 999 ms later nothing is back; at 1000 ms one token is. */
	assert_false(iplimit_connect_rate(l, &a, 60, t + 999, &refused));
	assert_true(iplimit_connect_rate(l, &a, 60, t + 1000, &refused));
	assert_int_equal(refused, 0);
	assert_false(iplimit_connect_rate(l, &a, 60, t + 1000, &refused));
	assert_int_equal(refused, 1);
	/* 10 s: ten more, never more than the burst after long idleness. */
	ok = 0;
	for (int i = 0; i < 20; i++)
		ok += iplimit_connect_rate(l, &a, 60, t + 11000, &refused);
	assert_int_equal(ok, 10);
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += iplimit_connect_rate(l, &a, 60, t + 10000000, &refused);
	assert_int_equal(ok, 60);
	/* 0 = unlimited, and no entry is made. */
	for (int i = 0; i < 1000; i++)
		assert_true(iplimit_connect_rate(l, &b, 0, t, &refused));
	iplimit_free(&l);
}

static void
test_iplimit_rate_entries_are_forgotten(void **state)
{
	struct iplimit *l = iplimit_new();
	struct sockaddr_storage a;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a;
	uint64_t t = 5000000;
	unsigned refused;
	(void)state;

	/* 10000 addresses connect once: each remembers a bucket... */
	for (uint32_t i = 0; i < 10000; i++) {
		a = addr4("10.0.0.0");
		s4->sin_addr.s_addr = htonl(0x0a000000u + i);
		assert_true(iplimit_connect_rate(l, &a, 600, t, &refused));
	}
	assert_true(iplimit_entries(l) >= 10000 - 4096);
	/* ...until it is full again and its chain has been swept. */
	a = addr4("192.0.2.77");
	for (int i = 0; i < 5000; i++)
		(void)iplimit_connect_rate(l, &a, 600000, t + 60000 + (uint64_t)i,
		    &refused);
	assert_true(iplimit_entries(l) <= 2);
	iplimit_free(&l);
}

static void
test_iplimit_loopback(void **state)
{
	struct sockaddr_storage ss = addr4("127.3.2.1");
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	(void)state;

	assert_true(iplimit_is_loopback(&ss));
	ss = addr4("128.0.0.1");
	assert_false(iplimit_is_loopback(&ss));
	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &s6->sin6_addr);
	assert_true(iplimit_is_loopback(&ss));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6->sin6_addr);
	assert_true(iplimit_is_loopback(&ss));
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &s6->sin6_addr);
	assert_false(iplimit_is_loopback(&ss));
	inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
	assert_false(iplimit_is_loopback(&ss));
	ss.ss_family = AF_UNSPEC;
	assert_false(iplimit_is_loopback(&ss));
}

static void
test_listener(void **state)
{
	char err[256];
	int fd;
	(void)state;

	fd = listener_open("127.0.0.1", 0, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(listener_open("localhost", 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a numeric"));
	assert_int_equal(listener_open("192.0.2.1", 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot listen"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workq_runs_and_completes_on_loop),
		cmocka_unit_test(test_workq_free_completes_pending),
		cmocka_unit_test(test_iplimit_connections),
		cmocka_unit_test(test_iplimit_failures),
		cmocka_unit_test(test_iplimit_ipv6_prefix),
		cmocka_unit_test(test_iplimit_connect_rate),
		cmocka_unit_test(test_iplimit_rate_entries_are_forgotten),
		cmocka_unit_test(test_iplimit_loopback),
		cmocka_unit_test(test_listener),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
