/*
 * sfserver.c - reference ceiling for RETR throughput: enough POP3 for
 * popload's retr mode (USER, PASS, STAT, LIST, RETR, NOOP, QUIT), one
 * thread, epoll, and RETR answered by sendfile() from files that already
 * hold the exact wire form (CRLF, dot-stuffed, ".\r\n" terminator).
 * The wire files are made once per stored message (keyed by device,
 * inode, size and mtime, so hard-linked mailboxes share them) in a cache
 * directory, before the timed part of a run.  Passwords are not checked.
 *
 * With -t CERT -k KEY -s TLSPORT it is the TLS RETR ceiling as well: a
 * POP3S listener (and STLS on the plain one) where replies and the wire
 * files go out in full 16 KiB TLS records (pending reply lines first, then
 * file data read into the same record), the least record work TLS allows
 * without kernel TLS.
 *
 * usage: sfserver -p PORT -m MAILROOT -C CACHEDIR [-a ADDR]
 *                 [-t CERT -k KEY [-s TLSPORT]]
 *        mailbox of user U: MAILROOT/U (Maildir cur/+new/, or N.eml files)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlsref.h"

#define REC_MAX 16384		/* TLS's largest record payload */

#define IN_MAX 4096

struct msg {
	char *wire_path;	/* cached wire form, terminator included */
	uint64_t size;		/* octets after un-stuffing, CRLF counted */
	uint64_t file_len;
};

struct box {
	struct box *next;
	char *user;
	struct msg *msgs;
	size_t n;
	uint64_t total;
};

struct client {
	int fd;
	struct box *box;
	char user[128];
	size_t inlen;
	char in[IN_MAX];
	char *out;
	size_t outlen, outoff, outcap;
	int file_fd;
	off_t file_off;
	uint64_t file_left;
	bool closing;
	bool want_out;
	SSL *ssl;
	bool handshaking;
	bool implicit;
	bool stls;		/* STLS answered: handshake once it is sent */
	size_t rec_len;		/* a record SSL_write() must be given again */
	char rec[REC_MAX];
};

static const char *mailroot, *cachedir;
static SSL_CTX *ctx;
static struct box *boxes;
static int ep;

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		fputs("sfserver: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

/* Wire form as lib/wire.h defines it: LF -> CRLF, CRLF kept, lone CR
 * passed, final CRLF added, leading '.' doubled, then ".\r\n". */
static int
make_wire(const char *src, const char *dst, uint64_t *size_r)
{
	FILE *in = fopen(src, "rb");
	if (in == NULL)
		return -1;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", dst, (int)getpid());
	FILE *out = fopen(tmp, "wb");
	if (out == NULL) {
		fclose(in);
		return -1;
	}
	static char ib[65536];
	static char ob[65536 * 3];
	bool bol = true, prev_cr = false;
	uint64_t size = 0;
	size_t n;
	while ((n = fread(ib, 1, sizeof(ib), in)) > 0) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			char ch = ib[i];
			if (bol && ch == '.')
				ob[o++] = '.';	/* stuffing: not counted */
			if (ch == '\n' && !prev_cr) {
				ob[o++] = '\r';
				size++;
			}
			ob[o++] = ch;
			size++;
			bol = ch == '\n';
			prev_cr = ch == '\r';
		}
		if (fwrite(ob, 1, o, out) != o)
			goto fail;
	}
	if (!bol) {
		if (prev_cr) {
			fputc('\n', out);
			size += 1;
		} else {
			fputs("\r\n", out);
			size += 2;
		}
	}
	fputs(".\r\n", out);
	if (ferror(in) || fclose(out) != 0) {
		out = NULL;
		goto fail;
	}
	fclose(in);
	if (rename(tmp, dst) < 0)
		return -1;
	*size_r = size;
	return 0;
fail:
	if (out != NULL)
		fclose(out);
	fclose(in);
	unlink(tmp);
	return -1;
}

static int
cmp_str(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	/* N.eml sorts numerically; Maildir names by their time prefix. */
	size_t lx = strspn(x, "0123456789"), ly = strspn(y, "0123456789");
	if (lx != ly && lx > 0 && ly > 0)
		return lx < ly ? -1 : 1;
	return strcmp(x, y);
}

static void
collect(const char *dir, char ***names, size_t *n, size_t *cap)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		size_t l = strlen(de->d_name);
		if (strstr(dir, "/cur") == NULL && strstr(dir, "/new") == NULL &&
		    (l < 5 || strcmp(de->d_name + l - 4, ".eml") != 0))
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			*names = xrealloc(*names, *cap * sizeof(char *));
		}
		(*names)[(*n)++] = strdup(p);
	}
	closedir(d);
}

static struct box *
box_load(const char *user)
{
	for (struct box *b = boxes; b != NULL; b = b->next)
		if (strcmp(b->user, user) == 0)
			return b;
	if (strchr(user, '/') != NULL || user[0] == '.' || user[0] == '\0')
		return NULL;
	char dir[4096], sub[4200];
	snprintf(dir, sizeof(dir), "%s/%s", mailroot, user);
	char **names = NULL;
	size_t n = 0, cap = 0;
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	collect(sub, &names, &n, &cap);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	collect(sub, &names, &n, &cap);
	collect(dir, &names, &n, &cap);
	qsort(names, n, sizeof(char *), cmp_str);
	struct box *b = calloc(1, sizeof(*b));
	b->user = strdup(user);
	b->msgs = calloc(n ? n : 1, sizeof(struct msg));
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) < 0)
			continue;
		char key[4096], szp[4200];
		snprintf(key, sizeof(key), "%s/%jx-%jx-%jx-%jx.wire", cachedir,
		    (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
		    (uintmax_t)st.st_size, (uintmax_t)st.st_mtime);
		snprintf(szp, sizeof(szp), "%s.size", key);
		uint64_t size = 0;
		FILE *f = fopen(szp, "r");
		bool ok = f != NULL && fscanf(f, "%" SCNu64, &size) == 1;
		if (f != NULL)
			fclose(f);
		if (!ok || access(key, R_OK) < 0) {
			if (make_wire(names[i], key, &size) < 0) {
				fprintf(stderr, "sfserver: %s: %s\n", names[i], strerror(errno));
				continue;
			}
			f = fopen(szp, "w");
			if (f != NULL) {
				fprintf(f, "%" PRIu64 "\n", size);
				fclose(f);
			}
		}
		struct stat ws;
		if (stat(key, &ws) < 0)
			continue;
		struct msg *m = &b->msgs[b->n++];
		m->wire_path = strdup(key);
		m->size = size;
		m->file_len = (uint64_t)ws.st_size;
		b->total += size;
		free(names[i]);
	}
	free(names);
	b->next = boxes;
	boxes = b;
	return b;
}

static void
out_add(struct client *c, const char *s, size_t len)
{
	if (c->outlen + len > c->outcap) {
		c->outcap = (c->outlen + len) * 2 + 256;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, s, len);
	c->outlen += len;
}

static void
out_fmt(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
out_fmt(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_add(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void
drop(struct client *c)
{
	if (c->file_fd >= 0)
		close(c->file_fd);
	if (c->ssl != NULL) {
		if (!c->handshaking)
			(void)SSL_shutdown(c->ssl);	/* close_notify, once */
		SSL_free(c->ssl);
	}
	close(c->fd);
	free(c->out);
	free(c);
}

static void
command(struct client *c, char *line)
{
	char *arg = strchr(line, ' ');
	if (arg != NULL)
		*arg++ = '\0';
	if (strcasecmp(line, "USER") == 0 && arg != NULL) {
		snprintf(c->user, sizeof(c->user), "%s", arg);
		out_add(c, "+OK\r\n", 5);
	} else if (strcasecmp(line, "PASS") == 0) {
		c->box = box_load(c->user);
		if (c->box == NULL)
			out_add(c, "-ERR no such mailbox\r\n", 22);
		else
			out_add(c, "+OK logged in\r\n", 15);
	} else if (strcasecmp(line, "QUIT") == 0) {
		out_add(c, "+OK bye\r\n", 9);
		c->closing = true;
	} else if (strcasecmp(line, "STLS") == 0 && ctx != NULL && c->ssl == NULL) {
		out_add(c, "+OK begin TLS\r\n", 15);
		c->stls = true;
	} else if (strcasecmp(line, "NOOP") == 0) {
		out_add(c, "+OK\r\n", 5);
	} else if (c->box == NULL) {
		out_add(c, "-ERR not logged in\r\n", 20);
	} else if (strcasecmp(line, "STAT") == 0) {
		out_fmt(c, "+OK %zu %" PRIu64 "\r\n", c->box->n, c->box->total);
	} else if (strcasecmp(line, "LIST") == 0 && arg == NULL) {
		out_fmt(c, "+OK %zu messages\r\n", c->box->n);
		for (size_t i = 0; i < c->box->n; i++)
			out_fmt(c, "%zu %" PRIu64 "\r\n", i + 1, c->box->msgs[i].size);
		out_add(c, ".\r\n", 3);
	} else if (strcasecmp(line, "RETR") == 0 && arg != NULL) {
		unsigned long k = strtoul(arg, NULL, 10);
		if (k < 1 || k > c->box->n) {
			out_add(c, "-ERR no such message\r\n", 22);
			return;
		}
		struct msg *m = &c->box->msgs[k - 1];
		int fd = open(m->wire_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			out_add(c, "-ERR cannot open\r\n", 18);
			return;
		}
		out_fmt(c, "+OK %" PRIu64 " octets\r\n", m->size);
		c->file_fd = fd;
		c->file_off = 0;
		c->file_left = m->file_len;
	} else {
		out_add(c, "-ERR unknown command\r\n", 22);
	}
}

static void
want(struct client *c, bool out)
{
	if (c->want_out == out)
		return;
	c->want_out = out;
	struct epoll_event e = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void pump(struct client *c);

static void
tls_begin(struct client *c, bool implicit)
{
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_accept_state(c->ssl);
	c->handshaking = true;
	c->implicit = implicit;
}

static void
handshake(struct client *c)
{
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshaking = false;
		if (c->implicit)
			out_add(c, "+OK sfserver ready\r\n", 20);
		pump(c);
		return;
	}
	enum tio w = tlsref_err(c->ssl, r);
	if (w == TIO_FATAL) {
		drop(c);
		return;
	}
	want(c, w == TIO_WRITE);
}

/* TLS: fills a record with pending reply bytes, then file data, and
 * writes it.  Returns false if the client must wait (or is gone: *gone). */
static bool
tls_send(struct client *c, bool *gone)
{
	if (c->rec_len == 0) {
		size_t n = c->outlen - c->outoff;
		if (n > REC_MAX)
			n = REC_MAX;
		memcpy(c->rec, c->out + c->outoff, n);
		c->outoff += n;
		if (c->outoff == c->outlen)
			c->outoff = c->outlen = 0;
		if (c->file_fd >= 0 && n < REC_MAX) {
			size_t want_n = REC_MAX - n;
			if (want_n > c->file_left)
				want_n = (size_t)c->file_left;
			ssize_t r = pread(c->file_fd, c->rec + n, want_n, c->file_off);
			if (r <= 0) {
				drop(c);
				*gone = true;
				return false;
			}
			c->file_off += r;
			c->file_left -= (uint64_t)r;
			n += (size_t)r;
			if (c->file_left == 0) {
				close(c->file_fd);
				c->file_fd = -1;
			}
		}
		c->rec_len = n;
	}
	int r = SSL_write(c->ssl, c->rec, (int)c->rec_len);
	if (r <= 0) {
		enum tio w = tlsref_err(c->ssl, r);
		if (w == TIO_FATAL) {
			drop(c);
			*gone = true;
		} else {
			want(c, w == TIO_WRITE);
		}
		return false;
	}
	c->rec_len = 0;
	return true;
}

/* Sends what is pending, then runs buffered commands, one at a time. */
static void
pump(struct client *c)
{
	for (;;) {
		if (c->ssl != NULL && (c->rec_len > 0 || c->outoff < c->outlen ||
		    c->file_fd >= 0)) {
			bool gone = false;
			if (!tls_send(c, &gone))
				return;
			continue;
		}
		if (c->outoff < c->outlen) {
			ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
			    MSG_NOSIGNAL | (c->file_fd >= 0 ? MSG_MORE : 0));
			if (n < 0) {
				if (errno == EAGAIN) {
					want(c, true);
					return;
				}
				drop(c);
				return;
			}
			c->outoff += (size_t)n;
			if (c->outoff == c->outlen)
				c->outoff = c->outlen = 0;
			continue;
		}
		if (c->file_fd >= 0) {
			size_t chunk = c->file_left > (1u << 30) ? (1u << 30) : (size_t)c->file_left;
			ssize_t n = sendfile(c->fd, c->file_fd, &c->file_off, chunk);
			if (n < 0 && errno == EAGAIN) {
				want(c, true);
				return;
			}
			if (n <= 0) {
				drop(c);
				return;
			}
			c->file_left -= (uint64_t)n;
			if (c->file_left == 0) {
				close(c->file_fd);
				c->file_fd = -1;
			}
			continue;
		}
		if (c->closing) {
			drop(c);
			return;
		}
		if (c->stls) {	/* "+OK" is out: now the handshake */
			c->stls = false;
			c->inlen = 0;
			tls_begin(c, false);
			handshake(c);
			return;
		}
		char *nl = memchr(c->in, '\n', c->inlen);
		if (nl == NULL) {
			want(c, false);
			return;
		}
		size_t len = (size_t)(nl - c->in) + 1;
		char line[IN_MAX];
		size_t ll = len - 1;
		if (ll > 0 && c->in[ll - 1] == '\r')
			ll--;
		memcpy(line, c->in, ll);
		line[ll] = '\0';
		memmove(c->in, c->in + len, c->inlen - len);
		c->inlen -= len;
		command(c, line);
	}
}

static void
on_input(struct client *c)
{
	if (c->inlen == sizeof(c->in)) {
		/* Full of pipelined commands: stop reading until pump eats some. */
		if (c->file_fd < 0 && c->outlen == 0 && c->rec_len == 0) {
			drop(c);
			return;
		}
		pump(c);
		return;
	}
	ssize_t n;
	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, c->in + c->inlen, (int)(sizeof(c->in) - c->inlen));
		if (r <= 0) {
			enum tio w = tlsref_err(c->ssl, r);
			if (w == TIO_FATAL)
				drop(c);
			else if (w == TIO_WRITE)
				want(c, true);
			return;
		}
		n = r;
	} else {
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
	}
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		drop(c);
		return;
	}
	c->inlen += (size_t)n;
	/* Only start new commands when nothing is being sent. */
	if (c->file_fd < 0 && c->outlen == 0 && c->rec_len == 0)
		pump(c);
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *cert = NULL, *key = NULL;
	int port = 0, tport = 0, ch;
	while ((ch = getopt(argc, argv, "a:p:m:C:s:t:k:")) != -1) {
		switch (ch) {
		case 's': tport = (int)strtol(optarg, NULL, 10); break;
		case 't': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': addr = optarg; break;
		case 'p': port = (int)strtol(optarg, NULL, 10); break;
		case 'm': mailroot = optarg; break;
		case 'C': cachedir = optarg; break;
		default: return 2;
		}
	}
	if (port <= 0 || port > 65535 || mailroot == NULL || cachedir == NULL ||
	    tport < 0 || tport > 65535 || (tport > 0 && cert == NULL)) {
		fprintf(stderr, "usage: sfserver -p PORT -m MAILROOT -C CACHEDIR [-a ADDR]"
		    " [-t CERT -k KEY [-s TLSPORT]]\n");
		return 2;
	}
	if (cert != NULL)
		ctx = tlsref_ctx("sfserver", cert, key != NULL ? key : cert);
	mkdir(cachedir, 0700);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int one = 1;
	static char lplain, ltls;	/* tell the listeners apart */
	int ls = tlsref_listen("sfserver", addr, port), lt = tport > 0 ? tlsref_listen("sfserver", addr, tport) : -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
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
					c->fd = fd;
					c->file_fd = -1;
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
					if (tls) {
						tls_begin(c, true);	/* wait for the hello */
						continue;
					}
					out_add(c, "+OK sfserver ready\r\n", 20);
					pump(c);
				}
				continue;
			}
			/* A peer that is gone must be dropped here: HUP stays
			 * ready, and pumping it would spin this (shared) core. */
			if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
				drop(c);
				continue;
			}
			if (c->handshaking) {
				handshake(c);
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				pump(c);
				continue;	/* c may be gone; EPOLLIN comes again */
			}
			if (evs[i].events & EPOLLIN)
				on_input(c);
		}
	}
}
