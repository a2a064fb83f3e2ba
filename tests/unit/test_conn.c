/*
 * test_conn.c - connections over socketpairs and loopback TCP with a real
 * event loop: input and output, the 32 KiB input bound, drained events,
 * conn_send_file(), abort, timeout, the client address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "net/conn.h"
#include "net/listener.h"

#define INPUT_MAX	(32 * 1024)

struct fx {
	struct event_base *base;
	struct conn *c;
	int peer;		/* the test's end */
	unsigned n_read, n_drained, n_timeout, n_closed;
};

static void
on_conn(struct conn *c, enum conn_event ev, void *ctx)
{
	struct fx *f = ctx;

	(void)c;
	switch (ev) {
	case CONN_EV_READ:
		f->n_read++;
		break;
	case CONN_EV_DRAINED:
		f->n_drained++;
		break;
	case CONN_EV_TIMEOUT:
		f->n_timeout++;
		break;
	case CONN_EV_CLOSED:
		f->n_closed++;
		break;
	case CONN_EV_TLS_READY:
		break;
	}
}

/* Runs loop turns until *flag is at least want: bounded (count and
 * about 10 s of wall time), never a timed assertion. */
static void
run_until(struct fx *f, const unsigned *flag, unsigned want)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 2 * 1000 * 1000 };

	for (int i = 0; i < 5000 && *flag < want; i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (*flag < want)
			nanosleep(&ts, NULL);
	}
}

static void
run_turns(struct fx *f, int n)
{
	for (int i = 0; i < n; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static int
setup_pair(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(event_base_priority_init(f->base, CONN_PRIORITIES), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f->peer = sv[1];
	f->c = conn_new(f->base, sv[0], sv[0], NULL, 0, NULL, on_conn, f);
	assert_non_null(f->c);
	*state = f;
	return 0;
}

/* A loopback TCP connection: RST and addresses are TCP's. */
static int
setup_tcp(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char err[128];
	int lfd, s;

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(event_base_priority_init(f->base, CONN_PRIORITIES), 0);
	lfd = listener_open("127.0.0.1", 0, err, sizeof(err));
	assert_true(lfd >= 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	f->peer = socket(AF_INET, SOCK_STREAM, 0);
	/* a small window: megabytes stay queued on our side */
	(void)setsockopt(f->peer, SOL_SOCKET, SO_RCVBUF, &(int){ 8192 },
	    sizeof(int));
	assert_int_equal(connect(f->peer, (struct sockaddr *)&a, alen), 0);
	for (int i = 0; i < 1000; i++) {
		s = accept(lfd, NULL, NULL);
		if (s >= 0 || errno != EAGAIN)
			break;
		usleep(1000);
	}
	assert_true(s >= 0);
	(void)setsockopt(s, SOL_SOCKET, SO_SNDBUF, &(int){ 8192 }, sizeof(int));
	close(lfd);
	f->c = conn_new(f->base, s, s, NULL, 0, NULL, on_conn, f);
	assert_non_null(f->c);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	conn_free(&f->c);
	close(f->peer);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
peer_write(struct fx *f, const void *buf, size_t len)
{
	assert_int_equal(write(f->peer, buf, len), (ssize_t)len);
}

/* Reads what the peer has been sent until want bytes (or EOF). */
static size_t
peer_read_all(struct fx *f, char *buf, size_t want)
{
	size_t got = 0;

	(void)fcntl(f->peer, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 20000 && got < want; i++) {
		ssize_t n = read(f->peer, buf + got, want - got);

		if (n == 0)
			break;
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		assert_true(errno == EAGAIN);
		run_turns(f, 1);
		usleep(500);
	}
	return got;
}

static void
test_read_write(void **state)
{
	struct fx *f = *state;
	char buf[64];

	peer_write(f, "HELLO\r\n", 7);
	run_until(f, &f->n_read, 1);
	assert_true(f->n_read >= 1);
	assert_int_equal(evbuffer_get_length(conn_in(f->c)), 7);
	assert_int_equal(evbuffer_remove(conn_in(f->c), buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "HELLO\r\n", 7);

	evbuffer_add(conn_out(f->c), "+OK hi\r\n", 8);
	conn_want_drained(f->c, 0);
	run_until(f, &f->n_drained, 1);
	assert_int_equal(f->n_drained, 1);
	assert_int_equal(conn_out_pending(f->c), 0);
	assert_int_equal(peer_read_all(f, buf, 8), 8);
	assert_memory_equal(buf, "+OK hi\r\n", 8);
	/* a socketpair is no network client: "local", trusted */
	assert_string_equal(conn_client(f->c), "local");
	assert_false(conn_tls_active(f->c));
	assert_true(conn_can_sendfile(f->c));
}

/* A client that sends and never lets us consume cannot make us buffer
 * more than the bound (plus one read); reading resumes below half. */
static void
test_input_bound(void **state)
{
	struct fx *f = *state;
	static char big[256 * 1024];
	size_t len, len2;
	ssize_t n;

	memset(big, 'x', sizeof(big));
	(void)fcntl(f->peer, F_SETFL, O_NONBLOCK);
	n = write(f->peer, big, sizeof(big));
	assert_true(n > 2 * INPUT_MAX);
	run_turns(f, 200);
	len = evbuffer_get_length(conn_in(f->c));
	assert_true(len >= INPUT_MAX);
	assert_true(len < INPUT_MAX + 64 * 1024);
	run_turns(f, 200);
	assert_int_equal(evbuffer_get_length(conn_in(f->c)), len);
	/* the session consumes: reading comes back */
	evbuffer_drain(conn_in(f->c), len);
	f->n_read = 0;
	run_until(f, &f->n_read, 1);
	len2 = evbuffer_get_length(conn_in(f->c));
	assert_true(len2 > 0);
	assert_true(len2 < INPUT_MAX + 64 * 1024);
}

/* DRAINED comes once the output is at the mark, not before. */
static void
test_drained(void **state)
{
	struct fx *f = *state;
	static char big[1024 * 1024], got[1024 * 1024];
	char b;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	evbuffer_add(conn_out(f->c), big, sizeof(big));
	conn_want_drained(f->c, 0);
	run_turns(f, 50);
	/* the peer has not read: a socket buffer cannot hold a megabyte */
	assert_int_equal(f->n_drained, 0);
	assert_true(conn_out_pending(f->c) > 0);
	assert_int_equal(peer_read_all(f, got, sizeof(got)), sizeof(got));
	run_until(f, &f->n_drained, 1);
	assert_int_equal(f->n_drained, 1);
	assert_memory_equal(got, big, sizeof(big));
	/* already drained: at once */
	conn_want_drained(f->c, 0);
	assert_int_equal(f->n_drained, 2);
	assert_int_equal(read(f->peer, &b, 1), -1);
}

static void
test_send_file(void **state)
{
	struct fx *f = *state;
	char path[] = "/tmp/test_conn.XXXXXX";
	static char data[300 * 1024], got[300 * 1024 + 16];
	const off_t off = 1000, len = 200 * 1024;
	size_t want = (size_t)len + 5;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7 + i / 251);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	evbuffer_add(conn_out(f->c), "+OK\r\n", 5);
	assert_true(conn_send_file(f->c, fd, off, len));
	/* the connection has its own descriptor */
	close(fd);
	conn_want_drained(f->c, 0);
	assert_int_equal(peer_read_all(f, got, want), want);
	run_until(f, &f->n_drained, 1);
	assert_int_equal(f->n_drained, 1);
	assert_memory_equal(got, "+OK\r\n", 5);
	assert_memory_equal(got + 5, data + off, (size_t)len);
	assert_false(conn_send_file(f->c, -1, 0, 10));
}

/* Over pipes (inetd) there is no sendfile: the caller sends otherwise. */
static void
test_send_file_refused_on_pipes(void **state)
{
	struct event_base *base = event_base_new();
	struct conn *c;
	int in[2], out[2];

	(void)state;
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	c = conn_new(base, in[0], out[1], NULL, 0, NULL, on_conn, NULL);
	assert_non_null(c);
	assert_false(conn_can_sendfile(c));
	assert_false(conn_send_file(c, in[1], 0, 10));
	assert_int_equal(conn_out_pending(c), 0);
	assert_true(conn_client_local(c));
	conn_free(&c);
	close(in[1]);
	close(out[0]);
	event_base_free(base);
}

/* An aborted reply is not ended the way a whole one is: nothing more
 * leaves, and the close is a reset. */
/* Kernel TLS cannot run on a kernel without the tls module: the decision
 * that picks SSL_sendfile() is tested on its own. */
static void
test_sendfile_path(void **state)
{
	(void)state;
	assert_int_equal(conn_sendfile_path(false, false, true, false),
	    CONN_SENDFILE_PLAIN);
	assert_int_equal(conn_sendfile_path(true, false, true, false),
	    CONN_SENDFILE_NONE);
	assert_int_equal(conn_sendfile_path(true, true, true, false),
	    CONN_SENDFILE_KTLS);
	/* a rate limit or inetd's pipes: never, TLS or not */
	for (int tls = 0; tls < 2; tls++) {
		assert_int_equal(conn_sendfile_path(tls, tls, true, true),
		    CONN_SENDFILE_NONE);
		assert_int_equal(conn_sendfile_path(tls, tls, false, false),
		    CONN_SENDFILE_NONE);
	}
}

static void
test_abort(void **state)
{
	struct fx *f = *state;
	static char big[2 * 1024 * 1024];
	char buf[4096];
	ssize_t n;
	int i;

	memset(big, 'y', sizeof(big));
	evbuffer_add(conn_out(f->c), big, sizeof(big));
	run_turns(f, 20);
	conn_abort(f->c);
	assert_true(conn_out_dead(f->c));
	assert_int_equal(conn_out_pending(f->c), 0);
	assert_true(conn_out_unsent(f->c) > 0);
	conn_free(&f->c);
	(void)fcntl(f->peer, F_SETFL, O_NONBLOCK);
	for (i = 0; i < 100000; i++) {
		n = read(f->peer, buf, sizeof(buf));
		if (n > 0)
			continue;
		if (n < 0 && errno == EAGAIN) {
			usleep(100);
			continue;
		}
		break;
	}
	/* never a clean end of file */
	assert_int_equal(n, -1);
	assert_int_equal(errno, ECONNRESET);
}

static void
test_timeout(void **state)
{
	struct fx *f = *state;

	conn_set_timeout(f->c, 1);
	run_until(f, &f->n_timeout, 1);
	assert_int_equal(f->n_timeout, 1);
	assert_int_equal(f->n_closed, 0);
}

static void
test_peer_close(void **state)
{
	struct fx *f = *state;

	shutdown(f->peer, SHUT_WR);
	run_until(f, &f->n_closed, 1);
	assert_int_equal(f->n_closed, 1);
	/* a half-close: what we send still leaves */
	assert_false(conn_out_dead(f->c));
}

/* The client is whoever the PROXY stage says, not the socket's peer:
 * behind a local proxy a remote client is not "local". */
static void
test_client_address(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	assert_true(strncmp(conn_client(f->c), "127.0.0.1:", 10) == 0);
	assert_true(conn_client_local(f->c));
	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(4242);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &s4->sin_addr), 1);
	conn_set_client(f->c, &ss);
	assert_string_equal(conn_client(f->c), "192.0.2.7:4242");
	assert_false(conn_client_local(f->c));
	assert_int_equal(conn_client_addr(f->c)->ss_family, AF_INET);
	/* the socket's own peer is still the proxy's */
	assert_int_equal(ntohl(((const struct sockaddr_in *)(const void *)
	    conn_socket_peer(f->c))->sin_addr.s_addr) >> 24, 127);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_write, setup_pair,
		    teardown),
		cmocka_unit_test_setup_teardown(test_input_bound, setup_pair,
		    teardown),
		cmocka_unit_test_setup_teardown(test_drained, setup_pair,
		    teardown),
		cmocka_unit_test_setup_teardown(test_send_file, setup_tcp,
		    teardown),
		cmocka_unit_test(test_send_file_refused_on_pipes),
		cmocka_unit_test(test_sendfile_path),
		cmocka_unit_test_setup_teardown(test_abort, setup_tcp, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup_pair,
		    teardown),
		cmocka_unit_test_setup_teardown(test_peer_close, setup_pair,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_address, setup_tcp,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
