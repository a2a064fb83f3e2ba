/*
 * test_mailevents.c - the POP3 message event ring the mailbox viewer
 * reads: order, per-user copies, bounds (names and UIDLs too long are not
 * recorded, the ring keeps only the newest NET_MAILEV_MAX), and a reader
 * racing writers never sees a torn event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/mailevents.h"

static struct net_mailev buf[NET_MAILEV_MAX];

static void
test_order_and_filter(void **state)
{
	uint64_t s0 = net_mailev_seq();
	size_t n;

	(void)state;
	net_mailev_record(NET_MAILEV_RETRIEVED, "alice", "u1", 7);
	net_mailev_record(NET_MAILEV_MARKED, "bob", "u2", 8);
	net_mailev_record(NET_MAILEV_MARKED, "alice", "u1", 7);
	net_mailev_record(NET_MAILEV_UNMARKED, "alice", NULL, 7);
	assert_int_equal(net_mailev_seq(), s0 + 4);
	n = net_mailev_copy("alice", s0, buf, NET_MAILEV_MAX);
	assert_int_equal(n, 3);
	assert_int_equal(buf[0].kind, NET_MAILEV_RETRIEVED);
	assert_string_equal(buf[0].uidl, "u1");
	assert_int_equal(buf[0].session, 7);
	assert_int_equal(buf[1].kind, NET_MAILEV_MARKED);
	assert_int_equal(buf[2].kind, NET_MAILEV_UNMARKED);
	assert_string_equal(buf[2].uidl, "");
	assert_true(buf[0].seq < buf[1].seq && buf[1].seq < buf[2].seq);
	/* only what is newer than after_seq, and at most max */
	assert_int_equal(net_mailev_copy("alice", buf[1].seq, buf, 10), 1);
	assert_int_equal(net_mailev_copy("alice", s0, buf, 2), 2);
	assert_int_equal(net_mailev_copy("carol", 0, buf, 10), 0);
}

static void
test_bounds(void **state)
{
	char longname[NET_MAILEV_USER_LEN + 10], longuidl[NET_MAILEV_UIDL_LEN + 1];
	uint64_t s0 = net_mailev_seq();

	(void)state;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memset(longuidl, 'u', sizeof(longuidl) - 1);
	longuidl[sizeof(longuidl) - 1] = '\0';
	net_mailev_record(NET_MAILEV_RETRIEVED, longname, "u", 1);
	net_mailev_record(NET_MAILEV_RETRIEVED, "dave", longuidl, 1);
	net_mailev_record(NET_MAILEV_RETRIEVED, NULL, "u", 1);
	assert_int_equal(net_mailev_seq(), s0);
	/* the ring keeps the newest NET_MAILEV_MAX */
	for (unsigned i = 0; i < NET_MAILEV_MAX + 100; i++) {
		char u[16];

		snprintf(u, sizeof(u), "m%u", i);
		net_mailev_record(NET_MAILEV_RETRIEVED, "erin", u, i);
	}
	assert_int_equal(net_mailev_copy("erin", 0, buf, NET_MAILEV_MAX),
	    NET_MAILEV_MAX);
	assert_string_equal(buf[0].uidl, "m100");
	assert_string_equal(buf[NET_MAILEV_MAX - 1].uidl, "m4195");
}

static void *
writer(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < 20000; i++) {
		char u[24];

		snprintf(u, sizeof(u), "uidl-%u", i);
		net_mailev_record(NET_MAILEV_MARKED, "frank", u, i);
	}
	return NULL;
}

static void
test_concurrent_reader(void **state)
{
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, writer, NULL), 0);
	for (unsigned k = 0; k < 200; k++) {
		size_t n = net_mailev_copy("frank", 0, buf, NET_MAILEV_MAX);

		for (size_t i = 0; i < n; i++) {
			char want[24];

			/* every event whole: its UIDL names its session */
			snprintf(want, sizeof(want), "uidl-%llu",
			    (unsigned long long)buf[i].session);
			assert_string_equal(buf[i].uidl, want);
			if (i > 0)
				assert_true(buf[i].seq > buf[i - 1].seq);
		}
	}
	pthread_join(t, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_filter),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_concurrent_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
