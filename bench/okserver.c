/*
 * okserver.c - reference ceiling: the cheapest thing that speaks enough
 * POP3 for popload's session mode.  One thread, epoll, a greeting, "+OK"
 * to every line, close after QUIT.  No mailbox, no authentication: the
 * session rate it reaches is what the machine and the load generator
 * allow, and posuto's rate is reported as a fraction of it.
 *
 * With -t CERT -k KEY it is the TLS ceiling too: -s PORT is a POP3S
 * listener (handshake, then the greeting), and the plain one answers
 * STLS with "+OK" and a handshake.  Still one thread: one core's worth.
 *
 * usage: okserver -p PORT [-a ADDR] [-t CERT -k KEY [-s TLSPORT]]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsref.h"

#define IN_MAX 1024
#define OUT_MAX 4096

struct client {
	int fd;
	SSL *ssl;
	bool handshaking;
	bool implicit;		/* greeting after the handshake */
	size_t inlen, outlen;
	bool closing;
	char in[IN_MAX];
	char out[OUT_MAX];
};

static const char greeting[] = "+OK okserver ready\r\n";
static SSL_CTX *ctx;

static void
drop(struct client *c)
{
	if (c->ssl != NULL) {
		if (!c->handshaking)
			(void)SSL_shutdown(c->ssl);	/* close_notify, once */
		SSL_free(c->ssl);
	}
	close(c->fd);
	free(c);
}

static void
set_out(int ep, struct client *c, bool out)
{
	struct epoll_event e = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static ssize_t
c_send(struct client *c, const void *buf, size_t len)
{
	if (c->ssl == NULL)
		return send(c->fd, buf, len, MSG_NOSIGNAL);
	int r = SSL_write(c->ssl, buf, (int)len);
	if (r > 0)
		return r;
	enum tio w = tlsref_err(c->ssl, r);
	errno = w == TIO_FATAL ? EPROTO : EAGAIN;
	return -1;
}

static ssize_t
c_recv(struct client *c, void *buf, size_t len)
{
	if (c->ssl == NULL)
		return recv(c->fd, buf, len, 0);
	int r = SSL_read(c->ssl, buf, (int)len);
	if (r > 0)
		return r;
	enum tio w = tlsref_err(c->ssl, r);
	if (w == TIO_FATAL)
		return 0;
	errno = EAGAIN;
	return -1;
}

static bool flush_out(int ep, struct client *c);

static void
tls_begin(struct client *c, bool implicit)
{
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_accept_state(c->ssl);
	c->handshaking = true;
	c->implicit = implicit;
}

/* Returns false when the client is gone. */
static bool
handshake(int ep, struct client *c)
{
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshaking = false;
		if (c->implicit) {
			memcpy(c->out, greeting, sizeof(greeting) - 1);
			c->outlen = sizeof(greeting) - 1;
		}
		set_out(ep, c, false);
		return flush_out(ep, c);
	}
	enum tio w = tlsref_err(c->ssl, r);
	if (w == TIO_FATAL) {
		drop(c);
		return false;
	}
	set_out(ep, c, w == TIO_WRITE);
	return true;
}

/* Returns false when the client is gone. */
static bool
flush_out(int ep, struct client *c)
{
	while (c->outlen > 0) {
		ssize_t n = c_send(c, c->out, c->outlen);
		if (n < 0) {
			if (errno == EAGAIN) {
				set_out(ep, c, true);
				return true;
			}
			drop(c);
			return false;
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	if (c->closing) {
		drop(c);
		return false;
	}
	return true;
}

static bool
on_input(int ep, struct client *c)
{
	if (c->handshaking)
		return handshake(ep, c);
	bool stls = false;
	for (;;) {
		ssize_t n = c_recv(c, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n <= 0) {
			if (n < 0 && errno == EAGAIN)
				break;
			drop(c);
			return false;
		}
		c->inlen += (size_t)n;
		size_t off = 0;
		char *nl;
		while (!c->closing &&
		    (nl = memchr(c->in + off, '\n', c->inlen - off)) != NULL) {
			if (c->outlen + 5 > sizeof(c->out)) {
				drop(c);
				return false;
			}
			memcpy(c->out + c->outlen, "+OK\r\n", 5);
			c->outlen += 5;
			if (strncasecmp(c->in + off, "QUIT", 4) == 0)
				c->closing = true;
			if (ctx != NULL && c->ssl == NULL &&
			    strncasecmp(c->in + off, "STLS", 4) == 0) {
				stls = true;	/* the rest is the handshake's */
				c->inlen = off = 0;
				break;
			}
			off = (size_t)(nl - c->in) + 1;
		}
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
		if (c->inlen == sizeof(c->in)) {
			drop(c);
			return false;
		}
		if (stls || c->closing || (c->ssl == NULL && (size_t)n < sizeof(c->in)))
			break;
	}
	if (!flush_out(ep, c))
		return false;
	if (stls) {
		/* "+OK" went out in the clear (a short write: the client can't
		 * send its hello before it reads it, so it did not happen). */
		tls_begin(c, false);
		return handshake(ep, c);
	}
	return true;
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *cert = NULL, *key = NULL;
	int port = 0, tport = 0, ch;
	while ((ch = getopt(argc, argv, "a:p:s:t:k:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'p': port = (int)strtol(optarg, NULL, 10); break;
		case 's': tport = (int)strtol(optarg, NULL, 10); break;
		case 't': cert = optarg; break;
		case 'k': key = optarg; break;
		default: return 2;
		}
	}
	if (port <= 0 || port > 65535 || tport < 0 || tport > 65535 ||
	    (tport > 0 && cert == NULL)) {
		fprintf(stderr, "usage: okserver -p PORT [-a ADDR] [-t CERT -k KEY [-s TLSPORT]]\n");
		return 2;
	}
	if (cert != NULL)
		ctx = tlsref_ctx("okserver", cert, key != NULL ? key : cert);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int one = 1;
	/* the listeners are told apart by these two addresses */
	static char lplain, ltls;
	int ls = tlsref_listen("okserver", addr, port), lt = tport > 0 ? tlsref_listen("okserver", addr, tport) : -1;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = { .events = EPOLLIN, .data.ptr = &lplain };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &le);
	if (lt >= 0) {
		struct epoll_event te = { .events = EPOLLIN, .data.ptr = &ltls };
		epoll_ctl(ep, EPOLL_CTL_ADD, lt, &te);
	}
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;
			if (evs[i].data.ptr == &lplain || evs[i].data.ptr == &ltls) {
				bool tls = evs[i].data.ptr == &ltls;
				for (int k = 0; k < 64; k++) {
					int fd = accept4(tls ? lt : ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					if (c == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
					if (tls) {
						tls_begin(c, true);	/* wait for the hello */
						continue;
					}
					memcpy(c->out, greeting, sizeof(greeting) - 1);
					c->outlen = sizeof(greeting) - 1;
					flush_out(ep, c);
				}
				continue;
			}
			if (c->handshaking) {
				handshake(ep, c);
			} else if (evs[i].events & EPOLLIN) {
				on_input(ep, c);
			} else if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
				if (flush_out(ep, c) && c->outlen == 0) {
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
				}
			}
		}
	}
}
