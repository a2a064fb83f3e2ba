/*
 * okserver.c - reference ceiling: the cheapest thing that speaks enough
 * POP3 for popload's session mode.  One thread, epoll, a greeting, "+OK"
 * to every line, close after QUIT.  No mailbox, no authentication: the
 * session rate it reaches is what the machine and the load generator
 * allow, and posuto's rate is reported as a fraction of it.
 *
 * usage: okserver -p PORT [-a ADDR]
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

#define IN_MAX 1024
#define OUT_MAX 4096

struct client {
	int fd;
	size_t inlen, outlen;
	bool closing;
	char in[IN_MAX];
	char out[OUT_MAX];
};

static const char greeting[] = "+OK okserver ready\r\n";

static void
drop(struct client *c)
{
	close(c->fd);
	free(c);
}

/* Returns false when the client is gone. */
static bool
flush_out(int ep, struct client *c)
{
	while (c->outlen > 0) {
		ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN) {
				struct epoll_event e = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
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
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
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
			off = (size_t)(nl - c->in) + 1;
		}
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
		if (c->inlen == sizeof(c->in)) {
			drop(c);
			return false;
		}
		if ((size_t)n < sizeof(c->in) || c->closing)
			break;
	}
	return flush_out(ep, c);
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 0, ch;
	while ((ch = getopt(argc, argv, "a:p:")) != -1) {
		if (ch == 'a')
			addr = optarg;
		else if (ch == 'p')
			port = (int)strtol(optarg, NULL, 10);
		else
			return 2;
	}
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: okserver -p PORT [-a ADDR]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 4096) < 0) {
		perror("okserver: bind/listen");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &le);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;
			if (c == NULL) {
				for (int k = 0; k < 64; k++) {
					int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					if (c == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					memcpy(c->out, greeting, sizeof(greeting) - 1);
					c->outlen = sizeof(greeting) - 1;
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
					flush_out(ep, c);
				}
				continue;
			}
			if (evs[i].events & EPOLLIN) {
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
