/*
 * test_proxy.c - PROXY protocol v1/v2 headers: accepted forms, every
 * malformed one refused, every split incomplete, never a byte past the
 * header; and the listener's PROXY stage over loopback TCP with a real
 * event loop (the client is the header's, the bytes after it are the
 * protocol's, untrusted peers are never read for a header).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "net/conn.h"
#include "net/listener.h"
#include "net/protocol.h"
#include "net/proxy.h"
#include "net/registry.h"
#include "net/runtime.h"

static enum net_proxy_result
parse(const void *buf, size_t len, size_t *hlen, struct sockaddr_storage *ss)
{
	return net_proxy_parse(buf, len, hlen, ss);
}

/* Every proper prefix is MORE; the whole is OK with exactly its length,
 * whatever follows. */
static void
check_ok(const void *hdr, size_t len, struct sockaddr_storage *ss)
{
	uint8_t buf[NET_PROXY_MAX + 64];
	size_t hlen;

	for (size_t i = 0; i < len; i++)
		assert_int_equal(parse(hdr, i, &hlen, ss), NET_PROXY_MORE);
	memcpy(buf, hdr, len);
	memcpy(buf + len, "USER x\r\n", 8);
	hlen = 0;
	assert_int_equal(parse(buf, len + 8, &hlen, ss), NET_PROXY_OK);
	assert_int_equal(hlen, len);
	assert_int_equal(parse(hdr, len, &hlen, ss), NET_PROXY_OK);
}

static void
check_bad(const char *hdr)
{
	struct sockaddr_storage ss;
	size_t hlen;

	assert_int_equal(parse(hdr, strlen(hdr), &hlen, &ss), NET_PROXY_BAD);
}

static void
test_v1(void **state)
{
	static const char h4[] = "PROXY TCP4 192.0.2.7 198.51.100.1 4242 110\r\n";
	static const char h6[] = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 995\r\n";
	struct sockaddr_storage ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	char a[INET6_ADDRSTRLEN];

	(void)state;
	check_ok(h4, strlen(h4), &ss);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_string_equal(inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a)),
	    "192.0.2.7");
	assert_int_equal(ntohs(s4->sin_port), 4242);
	check_ok(h6, strlen(h6), &ss);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_string_equal(inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a)),
	    "2001:db8::7");
	assert_int_equal(ntohs(s6->sin6_port), 65535);

	check_bad("PROXY UNKNOWN\r\n");
	check_bad("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 4242 110\n");	/* no CR */
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 4242 110 \r\n");
	check_bad("PROXY TCP4  192.0.2.7 198.51.100.1 4242 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 4242\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 4242 110 7\r\n");
	check_bad("PROXY TCP4 2001:db8::7 198.51.100.1 4242 110\r\n");
	check_bad("PROXY TCP6 192.0.2.7 2001:db8::1 4242 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 2001:db8::1 4242 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 65536 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 04242 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 +4242 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 -1 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 4242 \r\n");
	check_bad("PROXY TCP4 192.0.2.07x 198.51.100.1 4242 110\r\n");
	check_bad("PROXY tcp4 192.0.2.7 198.51.100.1 4242 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7\r198.51.100.1 4242 110\r\n");
	check_bad("PROXY TCP4 192.0.2.7 198.51.100.1 4242 110\t\r\n");
	check_bad("USER alice\r\n");		/* a client, not a proxy */
	check_bad("proxy TCP4");
	check_bad("\x16\x03\x01");		/* a TLS ClientHello */
}

/* No LF within the spec's 107 octets: refused, never waited for. */
static void
test_v1_bound(void **state)
{
	char buf[200];
	struct sockaddr_storage ss;
	size_t hlen;

	(void)state;
	memset(buf, '1', sizeof(buf));
	memcpy(buf, "PROXY TCP4 ", 11);
	assert_int_equal(parse(buf, 106, &hlen, &ss), NET_PROXY_MORE);
	assert_int_equal(parse(buf, 107, &hlen, &ss), NET_PROXY_BAD);
	assert_int_equal(parse(buf, sizeof(buf), &hlen, &ss), NET_PROXY_BAD);
}

static size_t
v2(uint8_t *b, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
    size_t blen)
{
	static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
	    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

	memcpy(b, sig, 12);
	b[12] = ver_cmd;
	b[13] = fam;
	b[14] = (uint8_t)(blen >> 8);
	b[15] = (uint8_t)blen;
	memcpy(b + 16, body, blen);
	return 16 + blen;
}

static void
test_v2(void **state)
{
	uint8_t b[NET_PROXY_MAX + 100], body[600];
	struct sockaddr_storage ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	size_t n, hlen;

	(void)state;
	memset(body, 0, sizeof(body));
	/* TCP4 192.0.2.7:4242 -> 198.51.100.1:110, then a TLV */
	memcpy(body, "\xc0\x00\x02\x07\xc6\x33\x64\x01\x10\x92\x00\x6e", 12);
	memcpy(body + 12, "\x04\x00\x01\x00", 4);
	n = v2(b, 0x21, 0x11, body, 16);
	check_ok(b, n, &ss);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xc0000207);
	assert_int_equal(ntohs(s4->sin_port), 4242);
	/* TCP6 */
	memset(body, 0, 36);
	body[0] = 0x20, body[1] = 0x01, body[15] = 7;
	body[32] = 0x01, body[33] = 0x00;
	n = v2(b, 0x21, 0x21, body, 36);
	check_ok(b, n, &ss);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(s6->sin6_addr.s6_addr[15], 7);
	assert_int_equal(ntohs(s6->sin6_port), 256);
	/* LOCAL: the proxy itself; its body is skipped */
	n = v2(b, 0x20, 0x00, body, 5);
	check_ok(b, n, &ss);
	assert_int_equal(ss.ss_family, AF_UNSPEC);
	/* the largest body we take, then one more */
	n = v2(b, 0x21, 0x11, body, NET_PROXY_V2_MAX_BODY);
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_OK);
	assert_int_equal(hlen, NET_PROXY_MAX);
	n = v2(b, 0x21, 0x11, body, NET_PROXY_V2_MAX_BODY + 1);
	assert_int_equal(parse(b, 16, &hlen, &ss), NET_PROXY_BAD);
	/* wrong version, unknown command, families we refuse, short body */
	n = v2(b, 0x11, 0x11, body, 12);
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_BAD);
	n = v2(b, 0x22, 0x11, body, 12);
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_BAD);
	n = v2(b, 0x21, 0x12, body, 12);		/* UDP */
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_BAD);
	n = v2(b, 0x21, 0x31, body, 216);		/* UNIX */
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_BAD);
	n = v2(b, 0x21, 0x00, body, 0);			/* PROXY, UNSPEC */
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_BAD);
	n = v2(b, 0x21, 0x11, body, 11);
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_BAD);
	n = v2(b, 0x21, 0x21, body, 35);
	assert_int_equal(parse(b, n, &hlen, &ss), NET_PROXY_BAD);
	/* a signature that goes wrong half way */
	memcpy(b, "\r\n\r\nX", 5);
	assert_int_equal(parse(b, 5, &hlen, &ss), NET_PROXY_BAD);
}

/* ---- the listener's stage ---------------------------------------- */

struct stage_fx {
	struct event_base *base;
	struct net_runtime *rt;
	struct net_listener *l;
	struct conn *c;		/* what start got */
	int started, peer;
};

static void
stage_conn_cb(struct conn *c, enum conn_event ev, void *ctx)
{
	(void)c;
	(void)ev;
	(void)ctx;
}

static bool
stage_start(void *ctx, struct conn *c)
{
	struct stage_fx *f = ctx;

	f->c = c;
	f->started++;
	conn_set_handler(c, stage_conn_cb, f);
	return true;
}

static const struct net_protocol stage_proto = { .name = "stagetest",
    .start = stage_start };

/* A connection to a listener on 127.0.0.1 accepted by hand; the client
 * end is f->peer.  Returns the accepted fd and its peer address. */
static int
tcp_pair(struct stage_fx *f, struct sockaddr_storage *peer_r,
    socklen_t *len_r)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char err[128];
	int lfd, s = -1;

	lfd = listener_open("127.0.0.1", 0, err, sizeof(err));
	assert_true(lfd >= 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	f->peer = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(f->peer, (struct sockaddr *)&a, alen), 0);
	for (int i = 0; i < 1000 && s < 0; i++) {
		*len_r = sizeof(*peer_r);
		s = accept4(lfd, (struct sockaddr *)peer_r, len_r, SOCK_NONBLOCK);
		if (s < 0)
			usleep(1000);
	}
	assert_true(s >= 0);
	close(lfd);
	return s;
}

static void
run_until_started(struct stage_fx *f, int want)
{
	for (int i = 0; i < 2000 && f->started < want; i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (f->started < want)
			usleep(1000);
	}
}

static int
stage_setup(void **state)
{
	struct stage_fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->base = event_base_new();
	assert_int_equal(event_base_priority_init(f->base, CONN_PRIORITIES), 0);
	f->rt = net_runtime_new(f->base);
	assert_true(net_protocol_register(&stage_proto));
	f->l = net_listener_new(f->rt, "stagetest", f, NET_TLS_NONE, "t");
	assert_non_null(f->l);
	*state = f;
	return 0;
}

static int
stage_teardown(void **state)
{
	struct stage_fx *f = *state;

	conn_free(&f->c);
	close(f->peer);
	net_runtime_free(&f->rt);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* The header arrives in pieces, the first command right behind it in
 * the same segment: the client is the header's, the command is the
 * protocol's, and the registry shows the client. */
static void
test_stage_trusted(void **state)
{
	static const char hdr[] = "PROXY TCP4 192.0.2.7 198.51.100.1 4242 110\r\n";
	struct stage_fx *f = *state;
	struct sockaddr_storage peer;
	struct net_session_info *si;
	socklen_t plen;
	char buf[64];
	int s;

	assert_true(net_listener_trust_proxy(f->l, "127.0.0.0/8"));
	s = tcp_pair(f, &peer, &plen);
	assert_true(net_listener_accept(f->l, s, s, (struct sockaddr *)&peer,
	    plen));
	assert_int_equal(write(f->peer, hdr, 10), 10);
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(f->started, 0);
	assert_int_equal(write(f->peer, hdr + 10, strlen(hdr) - 10),
	    (ssize_t)(strlen(hdr) - 10));
	assert_int_equal(write(f->peer, "CAPA\r\n", 6), 6);
	run_until_started(f, 1);
	assert_int_equal(f->started, 1);
	assert_string_equal(conn_client(f->c), "192.0.2.7:4242");
	assert_false(conn_client_local(f->c));
	assert_int_equal(net_registry_snapshot(f->rt->registry, &si), 1);
	assert_string_equal(si[0].client, "192.0.2.7:4242");
	free(si);
	/* the command is left for the protocol */
	for (int i = 0; i < 2000 && evbuffer_get_length(conn_in(f->c)) < 6; i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(500);
	}
	assert_int_equal(evbuffer_remove(conn_in(f->c), buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "CAPA\r\n", 6);
}

/* A trusted peer that does not send a header is closed, not served as
 * its own client. */
static void
test_stage_trusted_without_header(void **state)
{
	struct stage_fx *f = *state;
	struct sockaddr_storage peer;
	socklen_t plen;
	ssize_t n;
	char b;
	int s;

	assert_true(net_listener_trust_proxy(f->l, "127.0.0.1"));
	s = tcp_pair(f, &peer, &plen);
	assert_true(net_listener_accept(f->l, s, s, (struct sockaddr *)&peer,
	    plen));
	assert_int_equal(write(f->peer, "USER alice\r\n", 12), 12);
	for (int i = 0; i < 200; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(f->started, 0);
	/* closed (a reset: its bytes were never read) */
	n = read(f->peer, &b, 1);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

/* From an untrusted peer a header is just the client's first bytes. */
static void
test_stage_untrusted(void **state)
{
	static const char hdr[] = "PROXY TCP4 192.0.2.7 198.51.100.1 4242 110\r\n";
	struct stage_fx *f = *state;
	struct sockaddr_storage peer;
	socklen_t plen;
	int s;

	assert_true(net_listener_trust_proxy(f->l, "192.0.2.0/24"));
	s = tcp_pair(f, &peer, &plen);
	assert_int_equal(write(f->peer, hdr, strlen(hdr)), (ssize_t)strlen(hdr));
	assert_true(net_listener_accept(f->l, s, s, (struct sockaddr *)&peer,
	    plen));
	assert_int_equal(f->started, 1);
	assert_true(strncmp(conn_client(f->c), "127.0.0.1:", 10) == 0);
	for (int i = 0; i < 2000 &&
	    evbuffer_get_length(conn_in(f->c)) < strlen(hdr); i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(500);
	}
	assert_int_equal(evbuffer_get_length(conn_in(f->c)), strlen(hdr));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_bound),
		cmocka_unit_test(test_v2),
		cmocka_unit_test_setup_teardown(test_stage_trusted, stage_setup,
		    stage_teardown),
		cmocka_unit_test_setup_teardown(test_stage_trusted_without_header,
		    stage_setup, stage_teardown),
		cmocka_unit_test_setup_teardown(test_stage_untrusted,
		    stage_setup, stage_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
