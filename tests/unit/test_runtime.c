/*
 * test_runtime.c - the server runtime: the session registry read by
 * another thread while the loop thread writes it (no torn entries),
 * counters, configuration generations, protocols, PROXY-trusted networks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/cidr.h"
#include "net/listener.h"
#include "net/protocol.h"
#include "net/registry.h"
#include "net/runtime.h"

#define WRITER_ROUNDS	20000
#define SLOTS		40

struct reader {
	struct net_runtime *rt;
	atomic_bool stop;
	atomic_ulong snapshots;
	unsigned long entries, torn;
	uint64_t last_conn, last_bytes;
	unsigned long backwards;
};

/* A field the writer fills with one letter, its length told by the
 * letter: any mix of two writes shows. */
static bool
uniform(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (s[i] != s[0])
			return false;
	return n == (size_t)((unsigned char)s[0] - 'a') + 1;
}

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct net_counter_values cv;

	while (!atomic_load(&r->stop)) {
		struct net_session_info *si;
		size_t n = net_registry_snapshot(r->rt->registry, &si);
		char want[32];

		for (size_t i = 0; i < n; i++) {
			snprintf(want, sizeof(want), "c%" PRIu64, si[i].id);
			if (strcmp(si[i].client, want) != 0 ||
			    strcmp(si[i].proto, "test") != 0 ||
			    !uniform(si[i].user, sizeof(si[i].user)) ||
			    !uniform(si[i].state, sizeof(si[i].state)) ||
			    !uniform(si[i].command, sizeof(si[i].command)) ||
			    si[i].bytes % 1000 != 0)
				r->torn++;
		}
		r->entries += n;
		atomic_fetch_add(&r->snapshots, 1);
		free(si);
		net_counters_read(r->rt, 0, &cv);
		if (cv.v[NET_CNT_CONNECTIONS] < r->last_conn ||
		    cv.v[NET_CNT_RETRIEVED_BYTES] < r->last_bytes)
			r->backwards++;
		r->last_conn = cv.v[NET_CNT_CONNECTIONS];
		r->last_bytes = cv.v[NET_CNT_RETRIEVED_BYTES];
	}
	return NULL;
}

static void
fill(char *buf, size_t max, unsigned k)
{
	size_t n = k % (max - 1) + 1;

	memset(buf, 'a' + (int)(n - 1), n);
	buf[n] = '\0';
}

static void
test_registry_concurrent_reader(void **state)
{
	struct net_runtime *rt = net_runtime_new(NULL);
	struct reader r = { .rt = rt };
	int slots[SLOTS];
	uint64_t ids[SLOTS];
	char user[NET_REG_USER_LEN], st[NET_REG_STATE_LEN];
	char cmd[NET_REG_COMMAND_LEN], client[32];
	pthread_t th;
	uint64_t next = 0;
	size_t n;

	(void)state;
	for (int i = 0; i < SLOTS; i++) {
		ids[i] = ++next;
		snprintf(client, sizeof(client), "c%" PRIu64, ids[i]);
		slots[i] = net_registry_add(rt->registry, ids[i], "test", client);
	}
	assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
	/* The reader must really run meanwhile (a loaded machine may not
	 * schedule it at once): start once it has, and go on until it has
	 * read a fair number of times (bounded). */
	for (int i = 0; i < 100000 && atomic_load(&r.snapshots) == 0; i++)
		sched_yield();
	for (unsigned k = 0; k < WRITER_ROUNDS ||
	    (atomic_load(&r.snapshots) < 50 && k < 50 * WRITER_ROUNDS); k++) {
		int i = (int)(k % SLOTS);

		fill(user, sizeof(user), k);
		fill(st, sizeof(st), k * 3);
		fill(cmd, sizeof(cmd), k * 5);
		net_registry_set_user(rt->registry, slots[i], user);
		net_registry_set_state(rt->registry, slots[i], st);
		net_registry_set_command(rt->registry, slots[i], cmd);
		net_registry_set_bytes(rt->registry, slots[i], (uint64_t)k * 1000);
		net_count(rt, 0, NET_CNT_CONNECTIONS, 1);
		net_count(rt, 0, NET_CNT_RETRIEVED_BYTES, 1000);
		/* sessions come and go: slots are reused, the table grows */
		if (k % 7 == 0) {
			net_registry_remove(rt->registry, slots[i]);
			ids[i] = ++next;
			snprintf(client, sizeof(client), "c%" PRIu64, ids[i]);
			slots[i] = net_registry_add(rt->registry, ids[i], "test",
			    client);
		}
		if (k % 1000 == 0) {
			/* a burst that makes the table grow while read */
			int extra[100];

			for (int j = 0; j < 100; j++) {
				snprintf(client, sizeof(client), "c%" PRIu64, ++next);
				extra[j] = net_registry_add(rt->registry, next,
				    "test", client);
			}
			for (int j = 0; j < 100; j++)
				net_registry_remove(rt->registry, extra[j]);
		}
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	assert_true(atomic_load(&r.snapshots) > 0);
	assert_int_equal(r.torn, 0);
	assert_int_equal(r.backwards, 0);
	n = net_registry_count(rt->registry);
	assert_int_equal(n, SLOTS);
	net_runtime_free(&rt);
}

static void
test_registry_fields(void **state)
{
	struct net_registry *reg = net_registry_new();
	struct net_session_info *si;
	char longname[200];
	int a, b;

	(void)state;
	assert_int_equal(net_registry_snapshot(reg, &si), 0);
	assert_null(si);
	a = net_registry_add(reg, 7, "pop3", "192.0.2.1:1234");
	b = net_registry_add(reg, 8, "pop3", "[2001:db8::1]:99");
	memset(longname, 'u', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	net_registry_set_user(reg, a, longname);
	net_registry_set_command(reg, a, "RETRIEVE-ALL");	/* cut */
	net_registry_remove(reg, b);
	net_registry_remove(reg, b);		/* twice: harmless */
	net_registry_set_user(reg, b, "gone");	/* a removed slot: ignored */
	assert_int_equal(net_registry_snapshot(reg, &si), 1);
	assert_int_equal(si[0].id, 7);
	assert_string_equal(si[0].client, "192.0.2.1:1234");
	assert_int_equal(strlen(si[0].user), NET_REG_USER_LEN - 1);
	assert_string_equal(si[0].command, "RETRIEV");
	assert_string_equal(si[0].state, "");
	free(si);
	net_registry_free(&reg);
	assert_null(reg);
}

/* The history keeps the last NET_REG_HISTORY lines whatever their length,
 * cut and made printable; a reused slot starts empty. */
static void
test_registry_history(void **state)
{
	struct net_registry *reg = net_registry_new();
	struct net_session_info *si;
	char line[200], want[NET_REG_HISTORY_LEN];
	int a, b;

	(void)state;
	a = net_registry_add(reg, 1, "pop3", "192.0.2.1:1");
	b = net_registry_add(reg, 2, "pop3", "192.0.2.2:2");
	net_registry_add_history(reg, b, "USER b", 6);
	for (int i = 0; i < NET_REG_HISTORY + 5; i++) {
		/* every length from 1 to well past the cut, so that the packed
		 * buffer is shifted with long and short lines */
		size_t n = (size_t)(i * 11 % 150) + 1;

		memset(line, 'a' + i % 26, n);
		line[0] = (char)('A' + i);
		net_registry_add_history(reg, a, line, n);
	}
	net_registry_add_history(reg, a, "NOOP\r\x7f", 6);
	assert_int_equal(net_registry_snapshot(reg, &si), 2);
	for (size_t k = 0; k < 2; k++) {
		if (si[k].id == 2) {
			assert_int_equal(net_registry_history_count(&si[k]), 1);
			assert_string_equal(net_registry_history_at(&si[k], 0),
			    "USER b");
			continue;
		}
		assert_int_equal(si[k].n_history, NET_REG_HISTORY + 6);
		assert_int_equal(net_registry_history_count(&si[k]),
		    NET_REG_HISTORY);
		for (unsigned h = 0; h + 1 < NET_REG_HISTORY; h++) {
			int i = (int)h + 6;	/* the first six were dropped */
			size_t n = (size_t)(i * 11 % 150) + 1;

			if (n > sizeof(want) - 1)
				n = sizeof(want) - 1;
			memset(want, 'a' + i % 26, n);
			want[0] = (char)('A' + i);
			want[n] = '\0';
			assert_string_equal(net_registry_history_at(&si[k], h),
			    want);
		}
		assert_string_equal(net_registry_history_at(&si[k],
		    NET_REG_HISTORY - 1), "NOOP??");
		assert_string_equal(net_registry_history_at(&si[k],
		    NET_REG_HISTORY), "");
	}
	free(si);
	net_registry_remove(reg, a);
	a = net_registry_add(reg, 3, "pop3", "192.0.2.3:3");
	assert_int_equal(net_registry_snapshot(reg, &si), 2);
	for (size_t k = 0; k < 2; k++)
		if (si[k].id == 3)
			assert_int_equal(net_registry_history_count(&si[k]), 0);
	free(si);
	net_registry_free(&reg);
}

static void
test_counters_reasons(void **state)
{
	struct net_runtime *rt = net_runtime_new(NULL);
	struct net_counter_values cv;
	char why[32];

	(void)state;
	net_count_login_failed(rt, 0, "wrong-password");
	net_count_login_failed(rt, 0, "unknown-user");
	net_count_login_failed(rt, 0, "wrong-password");
	net_count_login_failed(rt, 0, NULL);
	for (int i = 0; i < 40; i++) {
		snprintf(why, sizeof(why), "reason-%d", i);
		net_count_login_failed(rt, 0, why);
	}
	net_count(rt, 1, NET_CNT_LOGIN_OK, 3);
	net_counters_read(rt, 0, &cv);
	assert_int_equal(cv.v[NET_CNT_LOGIN_FAILED], 44);
	assert_int_equal(cv.n_reasons, NET_FAIL_REASONS + 1);
	assert_string_equal(cv.reason[0], "wrong-password");
	assert_int_equal(cv.by_reason[0], 2);
	assert_string_equal(cv.reason[1], "unknown-user");
	assert_string_equal(cv.reason[2], "unknown");
	assert_string_equal(cv.reason[NET_FAIL_REASONS], "other");
	/* 40 distinct reasons, 12 got slots of their own */
	assert_int_equal(cv.by_reason[NET_FAIL_REASONS],
	    40 - (NET_FAIL_REASONS - 3));
	assert_int_equal(cv.v[NET_CNT_LOGIN_OK], 0);
	net_counters_read(rt, 1, &cv);
	assert_int_equal(cv.v[NET_CNT_LOGIN_OK], 3);
	/* out of range: nothing counted, nothing read */
	net_count(rt, NET_PROTOCOL_MAX, NET_CNT_LOGIN_OK, 1);
	net_counters_read(rt, NET_PROTOCOL_MAX, &cv);
	assert_int_equal(cv.v[NET_CNT_LOGIN_OK], 0);
	assert_string_equal(net_counter_name(NET_CNT_TLS_FAILURES),
	    "tls_failures");
	net_runtime_free(&rt);
}

static int unrefs;

static void
fake_unref(void *db)
{
	assert_ptr_equal(db, &unrefs);
	unrefs++;
}

/* A generation lives while someone holds it, after it was replaced. */
static void
test_generations(void **state)
{
	struct net_runtime *rt = net_runtime_new(NULL);
	struct net_gen *g1, *held;

	(void)state;
	unrefs = 0;
	g1 = net_gen_new(NULL, &unrefs, fake_unref, NULL);
	net_runtime_set_gen(rt, g1);
	assert_int_equal(rt->gen->number, 1);
	held = net_runtime_gen_ref(rt);
	assert_ptr_equal(held, g1);
	net_runtime_set_gen(rt, net_gen_new(NULL, &unrefs, fake_unref, NULL));
	assert_int_equal(rt->gen->number, 2);
	assert_int_equal(unrefs, 0);		/* still held */
	net_gen_unref(&held);
	assert_null(held);
	assert_int_equal(unrefs, 1);
	net_runtime_free(&rt);
	assert_int_equal(unrefs, 2);
}

static bool
dummy_start(void *ctx, struct conn *c)
{
	(void)ctx;
	(void)c;
	return false;
}

static void
test_protocols(void **state)
{
	static const struct net_protocol a = { .name = "alpha",
	    .start = dummy_start };
	static const struct net_protocol b = { .name = "beta",
	    .start = dummy_start };
	static const struct net_protocol a2 = { .name = "alpha",
	    .start = dummy_start };
	struct net_runtime *rt = net_runtime_new(NULL);
	struct net_listener *l;

	(void)state;
	assert_true(net_protocol_register(&a));
	assert_true(net_protocol_register(&a));		/* again: fine */
	assert_false(net_protocol_register(&a2));	/* name taken */
	assert_true(net_protocol_register(&b));
	assert_ptr_equal(net_protocol_find("beta"), &b);
	assert_null(net_protocol_find("gamma"));
	assert_int_equal(net_protocol_index(&b), 1);
	assert_ptr_equal(net_protocol_at(0), &a);
	l = net_listener_new(rt, "beta", NULL, NET_TLS_STARTTLS, "test");
	assert_non_null(l);
	assert_int_equal(l->proto_index, 1);
	assert_null(net_listener_new(rt, "gamma", NULL, NET_TLS_NONE, "x"));
	assert_int_equal(rt->n_listeners, 1);
	net_runtime_free(&rt);
}

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, s,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	return ss;
}

static void
test_proxy_trusted_networks(void **state)
{
	struct net_runtime *rt = net_runtime_new(NULL);
	static const struct net_protocol p = { .name = "delta",
	    .start = dummy_start };
	struct net_listener *l;
	struct cidr c;
	struct sockaddr_storage ss;

	(void)state;
	assert_true(net_protocol_register(&p));
	l = net_listener_new(rt, "delta", NULL, NET_TLS_NONE, "t");
	assert_non_null(l);
	assert_true(cidr_parse("10.0.0.0/8", 10, &c));
	assert_int_equal(c.bits, 8);
	assert_true(cidr_parse("::1", 3, &c));
	assert_int_equal(c.bits, 128);
	assert_false(cidr_parse("10.0.0.1/8", 10, &c));	/* host bits */
	assert_false(cidr_parse("10.0.0.0/33", 11, &c));
	assert_false(cidr_parse("10.0.0.0/", 9, &c));
	assert_false(cidr_parse("10.0.0.0/8x", 11, &c));
	assert_false(cidr_parse("/8", 2, &c));
	assert_false(cidr_parse("proxy.example", 13, &c));
	assert_true(net_listener_trust_proxy(l, "192.0.2.0/25"));
	assert_true(net_listener_trust_proxy(l, "2001:db8:1::/48"));
	assert_true(net_listener_trust_proxy(l, "127.0.0.1"));
	assert_false(net_listener_trust_proxy(l, "bogus"));
	assert_false(net_listener_trust_proxy(l, "10.0.0.0/8 bogus"));
	assert_false(net_listener_trust_proxy(l, " , "));
	assert_int_equal(l->n_proxy_trusted, 3);
	assert_true(cidr_list_parse("10.0.0.0/8, ::1  192.0.2.1", NULL, NULL,
	    NULL));
	ss = addr("192.0.2.127");
	assert_true(cidr_match(l->proxy_trusted, 3, &ss));
	ss = addr("192.0.2.128");
	assert_false(cidr_match(l->proxy_trusted, 3, &ss));
	ss = addr("2001:db8:1:ffff::5");
	assert_true(cidr_match(l->proxy_trusted, 3, &ss));
	ss = addr("2001:db8:2::5");
	assert_false(cidr_match(l->proxy_trusted, 3, &ss));
	ss = addr("::ffff:127.0.0.1");		/* v4-mapped */
	assert_true(cidr_match(l->proxy_trusted, 3, &ss));
	ss = addr("127.0.0.2");
	assert_false(cidr_match(l->proxy_trusted, 3, &ss));
	net_runtime_free(&rt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_concurrent_reader),
		cmocka_unit_test(test_registry_fields),
		cmocka_unit_test(test_registry_history),
		cmocka_unit_test(test_counters_reasons),
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_protocols),
		cmocka_unit_test(test_proxy_trusted_networks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
