/*
 * popload.c - POP3 load generator for posuto's benchmark (bench/README.md).
 *
 * One thread, one epoll loop, non-blocking sockets; an optional second
 * thread probes NOOP latency.  Every reply is verified: "+OK", STAT
 * against the manifest (or against the first STAT seen for that user),
 * LIST against STAT, and each RETR payload after un-dot-stuffing must be
 * exactly the octet count LIST gave, with CRLF line endings.  Any error
 * makes the exit status 1.  Runs are always bounded in time.
 *
 * Modes:
 *   session  connect, USER, PASS, STAT, QUIT; rate and p50/p99 latency
 *   retr     USER, PASS, STAT, LIST, RETR 1..n, QUIT, repeat; MB/s payload
 *   idle     N logged-in sessions held (server memory is measured outside)
 *   bigbox   time from PASS sent to the first LIST line
 *   (fairness = retr with --probe)
 *
 * TLS (OpenSSL 3): --tls implicit (POP3S) or --tls stls (STLS after the
 * greeting) for any mode.  With --resume each client slot keeps the last
 * session ticket its server sent and offers it on its next connection, so
 * after a slot's first session every handshake is a resumption; the JSON
 * says how many were.  Certificates are not verified (loopback, a bench).
 * --server-pid: the CPU time of that process and its descendants inside
 * the measured window, from /proc, in total and by process name.
 *
 * Output: a human summary on stderr, one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LINE_MAX_LEN 1024
#define PQ_SIZE 64
#define WBUF_SIZE 2048
#define RBUF_SIZE (256 * 1024)
#define MAX_ERR_PRINT 20

enum mode { M_SESSION, M_RETR, M_IDLE, M_BIGBOX };

enum cmd {
	C_GREET, C_USER, C_PASS, C_STAT, C_LIST, C_RETR, C_NOOP, C_QUIT, C_STLS,
};
static const char *cmd_name[] = {
	"greeting", "USER", "PASS", "STAT", "LIST", "RETR", "NOOP", "QUIT", "STLS",
};

enum tlsmode { TLS_OFF, TLS_IMPLICIT, TLS_STLS };
enum tstate { TS_NONE, TS_HANDSHAKE, TS_UP };

enum cstate {
	CS_FREE, CS_CONNECTING, CS_ACTIVE, CS_WAIT_EOF, CS_HOLD,
};

enum rstate { R_STATUS, R_LIST, R_BODY };
enum bstate { B_BOL, B_DOT, B_DOTCR, B_MID };

enum errkind {
	E_CONNECT, E_ERR_REPLY, E_PROTO, E_VERIFY, E_TIMEOUT, E_EOF, E_IO,
	E__N
};
static const char *err_name[] = {
	"connect", "err_reply", "protocol", "verify", "timeout", "eof", "io",
};

struct conn {
	int fd;
	int id;			/* client slot */
	int user;		/* user number (1-based) */
	enum cstate st;
	enum rstate rs;
	enum bstate bs;
	bool failed;		/* session saw an error; not counted */
	bool in_window;		/* session started inside the window */
	uint8_t pq[PQ_SIZE];	/* outstanding commands */
	uint32_t pq_arg[PQ_SIZE];
	unsigned pq_head, pq_n;
	char line[LINE_MAX_LEN];
	size_t linelen;
	char last;		/* last body byte (CR check across reads) */
	uint64_t body_bytes;
	uint64_t retr_octets;	/* "+OK n octets" if the server said so */
	bool retr_has_octets;
	bool logged_in;
	bool epout;		/* EPOLLOUT registered */
	uint32_t nmsgs;
	uint64_t mbsize;
	uint32_t list_n;
	uint64_t list_sum;
	bool listed;
	uint32_t next_retr, retr_done;
	bool quit_sent;
	double t_start, t_pass, t_last, t_quit;
	bool first_list_line;
	char wbuf[WBUF_SIZE];
	size_t wlen;
	SSL *ssl;		/* freed by conn_close */
	enum tstate ts;
	bool stls_go;		/* STLS accepted: handshake next */
	bool tls_eof;		/* close_notify seen: the TCP close is next */
	bool resumed;
	/* kept across sessions of a slot; start_session clears the rest */
	uint32_t *sizes;
	uint32_t sizes_cap;
	SSL_SESSION *sess;	/* --resume: the last ticket of this slot */
};

struct samples {
	double *v;
	size_t n, cap;
};

struct manifest_ent {
	char *name;
	uint32_t count;
	uint64_t size;
};

static struct {
	enum mode mode;
	const char *host;
	int port;
	int clients;
	double duration;
	double warmup;
	double timeout;
	long max_sessions;
	const char *user_pat;
	const char *pass_pat;
	int nusers;
	int user_base;
	int pipeline;
	int sources;
	bool lax;
	double hold;
	const char *ready_file;
	int ramp;
	long retr_max;
	double probe_ms;
	const char *probe_user;
	const char *probe_pass;
	const char *label;
	const char *manifest_path;
	int quiet;
	enum tlsmode tls;
	bool resume;
	int server_pid;
} opt = {
	.mode = M_SESSION, .host = "127.0.0.1", .port = 0, .clients = 1,
	.duration = 5, .warmup = 0, .timeout = 10, .max_sessions = 0,
	.user_pat = "u%d", .pass_pat = "p%d", .nusers = 0, .user_base = 1,
	.pipeline = 1, .sources = 0, .lax = false, .hold = 5,
	.ready_file = NULL, .ramp = 256, .retr_max = 0, .probe_ms = 0,
	.probe_user = NULL, .probe_pass = NULL, .label = "",
	.manifest_path = NULL, .quiet = 0,
};

static struct {
	int ep;
	struct conn *conns;
	struct sockaddr_in dst;
	double t0, t_win, t_end, t_stop;
	bool stopping;		/* no new sessions/commands */
	bool measuring;
	long sessions_started;
	long sessions_ok;	/* completed inside the window */
	long sessions_total;
	uint64_t payload;	/* RETR payload bytes inside the window */
	uint64_t msgs;		/* RETRs completed and verified in window */
	uint64_t msgs_total;
	long errors[E__N];
	long err_printed;
	struct samples lat;	/* session latency, seconds */
	struct samples first_line;	/* bigbox: PASS sent -> first LIST line */
	struct samples list_end;	/* bigbox: PASS sent -> LIST end */
	struct samples pass_lat;	/* bigbox: PASS sent -> +OK */
	int active;		/* conns not free */
	int connecting;		/* not yet logged in */
	int holding;
	bool ready_written;
	struct rusage ru_win;
	int idle_failed;
	bool ramp_stop;
	int holding_max;	/* sessions held when ready */
	/* per-user learnt STAT (when no manifest) */
	uint32_t *learn_count;
	uint64_t *learn_size;
	bool *learnt;
	struct manifest_ent *man;
	size_t n_man;
	int src_next;
	SSL_CTX *ctx;
	long resumed;		/* sessions in the window that resumed */
	long hs_full;		/* ... that made a full handshake */
	char rbuf[RBUF_SIZE];
} g;

static volatile sig_atomic_t got_usr1;
static volatile sig_atomic_t got_int;

static struct {
	pthread_t th;
	bool on;
	volatile int stop;
	struct samples lat;
	long errors;
	char err[256];
	pthread_mutex_t mu;
} probe;

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("popload: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

static void
samples_add(struct samples *s, double v)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 4096;
		if (nc > (size_t)16 << 20)	/* bounded: 16M samples */
			return;
		double *nv = realloc(s->v, nc * sizeof(*nv));
		if (nv == NULL)
			return;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
pct(struct samples *s, double p)
{
	if (s->n == 0)
		return -1;
	qsort(s->v, s->n, sizeof(double), cmp_double);
	size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
	if (i >= s->n)
		i = s->n - 1;
	return s->v[i];
}

static void
fmt_pat(char *out, size_t outsz, const char *pat, int n)
{
	/* Only "%d" is substituted; the patterns come from the command line. */
	size_t o = 0;
	for (const char *p = pat; *p != '\0' && o + 12 < outsz; p++) {
		if (p[0] == '%' && p[1] == 'd') {
			o += (size_t)snprintf(out + o, outsz - o, "%d", n);
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

static void report_err(struct conn *c, enum errkind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
report_err(struct conn *c, enum errkind k, const char *fmt, ...)
{
	g.errors[k]++;
	if (c != NULL)
		c->failed = true;
	/* idle: the server is at its limit; hold what it took, say so. */
	if (opt.mode == M_IDLE && !g.ready_written)
		g.ramp_stop = true;
	if (g.err_printed++ < MAX_ERR_PRINT) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "popload: error (%s)", err_name[k]);
		if (c != NULL)
			fprintf(stderr, " client %d user %d", c->id, c->user);
		fputs(": ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	} else if (g.err_printed == MAX_ERR_PRINT + 1) {
		fprintf(stderr, "popload: further errors not printed\n");
	}
}

/* ---- manifest ---------------------------------------------------------- */

static void
manifest_load(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	char buf[512];
	size_t cap = 0;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		char name[256];
		uint32_t cnt;
		uint64_t sz;
		if (buf[0] == '#' || buf[0] == '\n')
			continue;
		if (sscanf(buf, "%255s %" SCNu32 " %" SCNu64, name, &cnt, &sz) != 3)
			die("%s: bad line: %s", path, buf);
		if (g.n_man == cap) {
			cap = cap ? cap * 2 : 256;
			g.man = realloc(g.man, cap * sizeof(*g.man));
			if (g.man == NULL)
				die("out of memory");
		}
		g.man[g.n_man].name = strdup(name);
		g.man[g.n_man].count = cnt;
		g.man[g.n_man].size = sz;
		g.n_man++;
	}
	fclose(f);
}

static const struct manifest_ent *
manifest_find(const char *name)
{
	for (size_t i = 0; i < g.n_man; i++)
		if (strcmp(g.man[i].name, name) == 0)
			return &g.man[i];
	return NULL;
}

/* ---- connection plumbing ------------------------------------------------ */

static void
ep_mod(struct conn *c, uint32_t ev)
{
	bool out = (ev & EPOLLOUT) != 0;
	if (c->st != CS_CONNECTING && out == c->epout)
		return;
	c->epout = out;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
		die("epoll_ctl mod: %s", strerror(errno));
}

static void start_session(struct conn *c);

static const char *
tls_err(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();
	if (e == 0)
		return errno ? strerror(errno) : "unexpected EOF";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static void
conn_close(struct conn *c, bool rst)
{
	if (c->ssl != NULL) {
		/* No close_notify: the server closed first (QUIT) or the run
		 * cuts the stream.  Marked shut down so OpenSSL does not
		 * treat the slot's session as bad. */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		if (rst) {
			struct linger l = { 1, 0 };
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(c->fd);
	}
	if (!c->logged_in)
		g.connecting--;
	if (c->st == CS_HOLD)
		g.holding--;
	c->fd = -1;
	c->st = CS_FREE;
	g.active--;
}

/* Ends a session; if the run goes on, the slot starts a new one. */
static void
session_end(struct conn *c, bool rst)
{
	conn_close(c, rst);
	if (!g.stopping && opt.mode != M_IDLE &&
	    (opt.max_sessions == 0 || g.sessions_started < opt.max_sessions))
		start_session(c);
}

static void
pq_push(struct conn *c, enum cmd k, uint32_t arg)
{
	if (c->pq_n >= PQ_SIZE)
		die("internal: pipeline queue full");
	unsigned slot = (c->pq_head + c->pq_n) % PQ_SIZE;
	c->pq[slot] = (uint8_t)k;
	c->pq_arg[slot] = arg;
	c->pq_n++;
}

static void queue_cmd(struct conn *c, enum cmd k, uint32_t arg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
queue_cmd(struct conn *c, enum cmd k, uint32_t arg, const char *fmt, ...)
{
	pq_push(c, k, arg);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->wbuf + c->wlen, sizeof(c->wbuf) - c->wlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(c->wbuf) - c->wlen)
		die("internal: write buffer full");
	c->wlen += (size_t)n;
	if (k == C_PASS)
		c->t_pass = now();
	if (k == C_QUIT)
		c->quit_sent = true;
}

static void
flush(struct conn *c)
{
	if (c->fd < 0 || c->wlen == 0)
		return;
	ssize_t n;
	if (c->ssl != NULL) {
		if (c->ts != TS_UP)
			return;
		int r = SSL_write(c->ssl, c->wbuf, (int)c->wlen);
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_WRITE) {
				ep_mod(c, EPOLLIN | EPOLLOUT);
				return;
			}
			if (e == SSL_ERROR_WANT_READ)
				return;	/* retried after the next read */
			report_err(c, E_IO, "SSL_write: %s", tls_err());
			session_end(c, true);
			return;
		}
		n = r;
	} else {
		n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			ep_mod(c, EPOLLIN | EPOLLOUT);
			return;
		}
		report_err(c, E_IO, "send: %s", strerror(errno));
		session_end(c, true);
		return;
	}
	memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
	c->wlen -= (size_t)n;
	ep_mod(c, c->wlen ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void
start_session(struct conn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		report_err(c, E_CONNECT, "socket: %s", strerror(errno));
		g.stopping = true;
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.sources > 1) {
		/* Several 127.0.0.x sources multiply the ephemeral ports. */
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(g.src_next++ % opt.sources));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			report_err(c, E_CONNECT, "bind: %s", strerror(errno));
			close(fd);
			g.stopping = true;
			return;
		}
	}
	memset(c, 0, offsetof(struct conn, sizes));
	c->fd = fd;
	c->id = (int)(c - g.conns);
	c->user = opt.user_base + (c->id % opt.nusers);
	c->st = CS_CONNECTING;
	c->t_start = c->t_last = now();
	c->in_window = g.measuring;
	c->last = '\n';
	c->next_retr = 1;
	g.sessions_started++;
	g.active++;
	g.connecting++;
	if (connect(fd, (struct sockaddr *)&g.dst, sizeof(g.dst)) < 0 &&
	    errno != EINPROGRESS) {
		report_err(c, E_CONNECT, "connect: %s", strerror(errno));
		close(fd);
		c->fd = -1;
		c->st = CS_FREE;
		g.active--;
		g.connecting--;
		return;
	}
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &e) < 0)
		die("epoll_ctl add: %s", strerror(errno));
}

/* ---- the scripts --------------------------------------------------------- */

static void
send_login(struct conn *c)
{
	char u[128], p[128];
	fmt_pat(u, sizeof(u), opt.user_pat, c->user);
	fmt_pat(p, sizeof(p), opt.pass_pat, c->user);
	queue_cmd(c, C_USER, 0, "USER %s\r\n", u);
	if (opt.pipeline >= 2)
		queue_cmd(c, C_PASS, 0, "PASS %s\r\n", p);
}

static void
send_pass(struct conn *c)
{
	char p[128];
	fmt_pat(p, sizeof(p), opt.pass_pat, c->user);
	queue_cmd(c, C_PASS, 0, "PASS %s\r\n", p);
}

static void
retr_more(struct conn *c)
{
	uint32_t last = c->nmsgs;
	if (opt.retr_max > 0 && last > (uint32_t)opt.retr_max)
		last = (uint32_t)opt.retr_max;
	while (!g.stopping && c->next_retr <= last &&
	    c->pq_n < (unsigned)opt.pipeline && c->pq_n < PQ_SIZE - 1) {
		queue_cmd(c, C_RETR, c->next_retr, "RETR %u\r\n", c->next_retr);
		c->next_retr++;
	}
	if (c->pq_n == 0 && !c->quit_sent)
		queue_cmd(c, C_QUIT, 0, "QUIT\r\n");
}

/* ---- TLS ------------------------------------------------------------------ */

/* TLS 1.3 tickets arrive after the handshake, while the greeting is read;
 * the newest one of a slot is what its next connection offers. */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct conn *c = SSL_get_app_data(ssl);
	if (!opt.resume || c == NULL)
		return 0;
	if (c->sess != NULL)
		SSL_SESSION_free(c->sess);
	c->sess = sess;
	return 1;		/* the reference is ours */
}

static void
tls_ctx_init(void)
{
	g.ctx = SSL_CTX_new(TLS_client_method());
	if (g.ctx == NULL)
		die("SSL_CTX_new: %s", tls_err());
	SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(g.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(g.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(g.ctx,
	    SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(g.ctx, on_new_session);
}

static void
tls_handshake(struct conn *c)
{
	c->t_last = now();
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->ts = TS_UP;
		c->resumed = SSL_session_reused(c->ssl) == 1;
		ep_mod(c, EPOLLIN);
		if (opt.tls == TLS_STLS) {	/* no second greeting (RFC 2595) */
			send_login(c);
			flush(c);
		}
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ep_mod(c, EPOLLIN);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		ep_mod(c, EPOLLIN | EPOLLOUT);
		return;
	}
	report_err(c, E_IO, "TLS handshake: %s", tls_err());
	session_end(c, true);
}

static void
tls_start(struct conn *c)
{
	c->ssl = SSL_new(g.ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		die("SSL_new: %s", tls_err());
	SSL_set_app_data(c->ssl, c);
	if (opt.resume && c->sess != NULL)
		SSL_set_session(c->ssl, c->sess);
	SSL_set_connect_state(c->ssl);
	c->ts = TS_HANDSHAKE;
	tls_handshake(c);
}

/* Called when the reply to k is complete and good. */
static void
advance(struct conn *c, enum cmd k)
{
	switch (k) {
	case C_GREET:
		if (opt.tls == TLS_STLS) {
			queue_cmd(c, C_STLS, 0, "STLS\r\n");
			break;
		}
		send_login(c);
		if (opt.mode == M_SESSION && opt.pipeline >= 4) {
			queue_cmd(c, C_STAT, 0, "STAT\r\n");
			queue_cmd(c, C_QUIT, 0, "QUIT\r\n");
		}
		break;
	case C_USER:
		if (opt.pipeline < 2)
			send_pass(c);
		break;
	case C_PASS:
		c->logged_in = true;
		g.connecting--;
		if (opt.mode == M_BIGBOX) {
			queue_cmd(c, C_LIST, 0, "LIST\r\n");
			break;
		}
		if (opt.mode == M_SESSION && opt.pipeline >= 4)
			break;
		queue_cmd(c, C_STAT, 0, "STAT\r\n");
		if (opt.mode == M_RETR && opt.pipeline >= 2)
			queue_cmd(c, C_LIST, 0, "LIST\r\n");
		break;
	case C_STAT:
		if (opt.mode == M_SESSION) {
			if (opt.pipeline < 4)
				queue_cmd(c, C_QUIT, 0, "QUIT\r\n");
		} else if (opt.mode == M_RETR) {
			if (opt.pipeline < 2)
				queue_cmd(c, C_LIST, 0, "LIST\r\n");
		} else if (opt.mode == M_IDLE) {
			c->st = CS_HOLD;
			g.holding++;
		}
		break;
	case C_LIST:
		if (opt.mode == M_BIGBOX)
			queue_cmd(c, C_QUIT, 0, "QUIT\r\n");
		else
			retr_more(c);
		break;
	case C_RETR:
		retr_more(c);
		break;
	case C_NOOP:
		if (opt.mode == M_IDLE && c->pq_n == 0)
			queue_cmd(c, C_QUIT, 0, "QUIT\r\n");
		break;
	case C_QUIT:
		c->t_quit = now();
		c->st = CS_WAIT_EOF;
		break;
	case C_STLS:
		c->stls_go = true;
		break;
	}
}

static bool
user_expect(struct conn *c, uint32_t *cnt_r, uint64_t *size_r)
{
	if (g.n_man > 0) {
		char u[128];
		fmt_pat(u, sizeof(u), opt.user_pat, c->user);
		const struct manifest_ent *m = manifest_find(u);
		if (m == NULL)
			return false;
		*cnt_r = m->count;
		*size_r = m->size;
		return true;
	}
	int i = c->user - opt.user_base;
	if (i < 0 || i >= opt.nusers)
		return false;
	if (!g.learnt[i])
		return false;
	*cnt_r = g.learn_count[i];
	*size_r = g.learn_size[i];
	return true;
}

static void
user_learn(struct conn *c, uint32_t cnt, uint64_t size)
{
	int i = c->user - opt.user_base;
	if (g.n_man > 0 || i < 0 || i >= opt.nusers || g.learnt[i])
		return;
	g.learnt[i] = true;
	g.learn_count[i] = cnt;
	g.learn_size[i] = size;
}

/* A complete status line (without CRLF).  Returns false if the session
 * must end. */
static bool
on_status(struct conn *c, enum cmd k, const char *ln)
{
	if (strncmp(ln, "+OK", 3) != 0 || (ln[3] != '\0' && ln[3] != ' ')) {
		if (strncmp(ln, "-ERR", 4) == 0)
			report_err(c, E_ERR_REPLY, "%s: %.200s", cmd_name[k], ln);
		else
			report_err(c, E_PROTO, "%s: bad status line: %.200s",
			    cmd_name[k], ln);
		return false;
	}
	if (opt.lax)
		return true;
	if (k == C_STAT) {
		uint32_t n, en;
		uint64_t sz, esz;
		if (sscanf(ln + 3, " %" SCNu32 " %" SCNu64, &n, &sz) != 2) {
			report_err(c, E_PROTO, "STAT: %.200s", ln);
			return false;
		}
		c->nmsgs = n;
		c->mbsize = sz;
		if (user_expect(c, &en, &esz)) {
			if (n != en || sz != esz) {
				report_err(c, E_VERIFY, "STAT %u %" PRIu64
				    ", expected %u %" PRIu64, n, sz, en, esz);
				return false;
			}
		} else if (g.n_man > 0) {
			report_err(c, E_VERIFY, "user not in manifest");
			return false;
		} else {
			user_learn(c, n, sz);
		}
	} else if (k == C_RETR) {
		uint64_t oct;
		c->retr_has_octets = sscanf(ln + 3, " %" SCNu64 " octets", &oct) == 1;
		c->retr_octets = c->retr_has_octets ? oct : 0;
	}
	return true;
}

static bool
on_list_line(struct conn *c, const char *ln)
{
	uint32_t n;
	uint64_t sz;
	if (!c->first_list_line) {
		c->first_list_line = true;
		if (opt.mode == M_BIGBOX && c->t_pass > 0)
			samples_add(&g.first_line, now() - c->t_pass);
	}
	if (sscanf(ln, "%" SCNu32 " %" SCNu64, &n, &sz) != 2) {
		report_err(c, E_PROTO, "LIST line: %.200s", ln);
		return false;
	}
	if (n != c->list_n + 1) {
		report_err(c, E_VERIFY, "LIST numbering: %u after %u", n, c->list_n);
		return false;
	}
	if (sz > UINT32_MAX) {
		report_err(c, E_VERIFY, "LIST size too large: %" PRIu64, sz);
		return false;
	}
	if (c->list_n == c->sizes_cap) {
		uint32_t nc = c->sizes_cap ? c->sizes_cap * 2 : 256;
		uint32_t *ns = realloc(c->sizes, nc * sizeof(*ns));
		if (ns == NULL)
			die("out of memory");
		c->sizes = ns;
		c->sizes_cap = nc;
	}
	c->sizes[c->list_n++] = (uint32_t)sz;
	c->list_sum += sz;
	return true;
}

static bool
on_list_end(struct conn *c)
{
	if (opt.mode == M_BIGBOX) {
		uint32_t en;
		uint64_t esz;
		samples_add(&g.list_end, now() - c->t_pass);
		if (!c->first_list_line)	/* empty box */
			samples_add(&g.first_line, now() - c->t_pass);
		if (user_expect(c, &en, &esz)) {
			if (c->list_n != en || c->list_sum != esz) {
				report_err(c, E_VERIFY, "LIST %u msgs %" PRIu64
				    " octets, expected %u %" PRIu64,
				    c->list_n, c->list_sum, en, esz);
				return false;
			}
		} else {
			user_learn(c, c->list_n, c->list_sum);
		}
	} else if (c->list_n != c->nmsgs || c->list_sum != c->mbsize) {
		report_err(c, E_VERIFY, "LIST %u msgs %" PRIu64
		    " octets, STAT said %u %" PRIu64,
		    c->list_n, c->list_sum, c->nmsgs, c->mbsize);
		return false;
	}
	c->listed = true;
	return true;
}

static bool
on_retr_end(struct conn *c, uint32_t msg)
{
	if (!c->listed || msg == 0 || msg > c->list_n) {
		report_err(c, E_VERIFY, "RETR %u without LIST entry", msg);
		return false;
	}
	uint64_t want = c->sizes[msg - 1];
	if (c->body_bytes != want) {
		report_err(c, E_VERIFY, "RETR %u: %" PRIu64
		    " octets after un-stuffing, LIST said %" PRIu64,
		    msg, c->body_bytes, want);
		return false;
	}
	if (c->retr_has_octets && c->retr_octets != want) {
		report_err(c, E_VERIFY, "RETR %u: +OK said %" PRIu64
		    " octets, LIST said %" PRIu64, msg, c->retr_octets, want);
		return false;
	}
	c->retr_done++;
	g.msgs_total++;
	if (g.measuring)
		g.msgs++;
	return true;
}

/* Pops the finished command and lets the script go on. */
static void
reply_done(struct conn *c)
{
	enum cmd k = (enum cmd)c->pq[c->pq_head];
	c->pq_head = (c->pq_head + 1) % PQ_SIZE;
	c->pq_n--;
	c->rs = R_STATUS;
	c->linelen = 0;
	advance(c, k);
}

/* Feeds received bytes.  Returns false if the connection was ended. */
static bool
process(struct conn *c, const char *p, size_t len)
{
	const char *end = p + len;
	while (p < end) {
		if (c->stls_go) {	/* the handshake must come next */
			report_err(c, E_PROTO, "data after the STLS reply");
			session_end(c, true);
			return false;
		}
		if (c->pq_n == 0) {
			report_err(c, E_PROTO, "unsolicited data: %.40s", p);
			session_end(c, true);
			return false;
		}
		enum cmd k = (enum cmd)c->pq[c->pq_head];
		if (c->rs == R_BODY) {
			/* RETR payload: un-stuff, count, check CRLF. */
			while (p < end && c->rs == R_BODY) {
				switch (c->bs) {
				case B_BOL:
					if (*p == '.') {
						c->bs = B_DOT;
						c->last = '.';
						p++;
					} else {
						c->bs = B_MID;
					}
					break;
				case B_DOT:
					if (*p == '\r') {
						c->bs = B_DOTCR;
						p++;
					} else {
						c->bs = B_MID;	/* stuffed dot dropped */
					}
					break;
				case B_DOTCR:
					if (*p != '\n') {
						report_err(c, E_PROTO, "RETR: '.' CR not followed by LF");
						session_end(c, true);
						return false;
					}
					p++;
					if (!on_retr_end(c, c->pq_arg[c->pq_head])) {
						session_end(c, true);
						return false;
					}
					reply_done(c);
					break;
				case B_MID: {
					const char *q = memchr(p, '\n', (size_t)(end - p));
					size_t n;
					if (q == NULL) {
						n = (size_t)(end - p);
						c->last = end[-1];
					} else {
						char prev = q > p ? q[-1] : c->last;
						if (prev != '\r') {
							report_err(c, E_VERIFY, "RETR %u: bare LF in payload",
							    c->pq_arg[c->pq_head]);
							session_end(c, true);
							return false;
						}
						n = (size_t)(q - p) + 1;
						c->last = '\n';
						c->bs = B_BOL;
					}
					c->body_bytes += n;
					if (g.measuring)
						g.payload += n;
					p += n;
					break;
				}
				}
			}
			continue;
		}
		/* Line-oriented: status lines and LIST lines. */
		const char *q = memchr(p, '\n', (size_t)(end - p));
		size_t n = q ? (size_t)(q - p) + 1 : (size_t)(end - p);
		if (c->linelen + n >= sizeof(c->line)) {
			report_err(c, E_PROTO, "%s: line too long", cmd_name[k]);
			session_end(c, true);
			return false;
		}
		memcpy(c->line + c->linelen, p, n);
		c->linelen += n;
		p += n;
		if (q == NULL)
			break;
		if (c->linelen < 2 || c->line[c->linelen - 2] != '\r') {
			report_err(c, E_PROTO, "%s: line not ended by CRLF", cmd_name[k]);
			session_end(c, true);
			return false;
		}
		c->line[c->linelen - 2] = '\0';
		c->linelen = 0;
		if (c->rs == R_STATUS) {
			if (!on_status(c, k, c->line)) {
				session_end(c, true);
				return false;
			}
			if (k == C_LIST) {
				c->rs = R_LIST;
				c->list_n = 0;
				c->list_sum = 0;
				c->first_list_line = false;
			} else if (k == C_RETR) {
				c->rs = R_BODY;
				c->bs = B_BOL;
				c->body_bytes = 0;
				c->last = '\n';
			} else {
				reply_done(c);
				if (c->st == CS_WAIT_EOF)
					return true;	/* anything more is checked at EOF */
			}
		} else {	/* R_LIST */
			if (strcmp(c->line, ".") == 0) {
				if (!on_list_end(c)) {
					session_end(c, true);
					return false;
				}
				reply_done(c);
			} else if (!on_list_line(c, c->line[0] == '.' ? c->line + 1 : c->line)) {
				session_end(c, true);
				return false;
			}
		}
	}
	return true;
}

static void
session_finished(struct conn *c)
{
	g.sessions_total++;
	if (!c->failed && c->in_window && g.measuring) {
		g.sessions_ok++;
		if (c->ssl != NULL) {
			if (c->resumed)
				g.resumed++;
			else
				g.hs_full++;
		}
		if (opt.mode == M_SESSION)
			samples_add(&g.lat, c->t_quit - c->t_start);
	}
	session_end(c, false);
}

/* recv(), or SSL_read() once TLS is up: > 0 bytes, 0 EOF, < 0 with errno
 * (EAGAIN: nothing now). */
static ssize_t
conn_recv(struct conn *c)
{
	if (c->ssl == NULL || c->tls_eof)
		return recv(c->fd, g.rbuf, sizeof(g.rbuf), 0);
	ERR_clear_error();
	int r = SSL_read(c->ssl, g.rbuf, sizeof(g.rbuf));
	if (r > 0)
		return r;
	int e = SSL_get_error(c->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_WRITE:
		ep_mod(c, EPOLLIN | EPOLLOUT);
		/* fall through */
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		/* A session ends when the server closes the connection, as in
		 * the clear: close_notify may come before the server is done
		 * with the mailbox. */
		c->tls_eof = true;
		return recv(c->fd, g.rbuf, sizeof(g.rbuf), 0);
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return 0;
		return -1;
	default:
		report_err(c, E_IO, "SSL_read: %s", tls_err());
		errno = EPROTO;
		return -2;	/* reported */
	}
}

static void
on_readable(struct conn *c)
{
	if (c->ts == TS_HANDSHAKE) {
		tls_handshake(c);
		if (c->fd < 0 || c->ts != TS_UP)
			return;
	}
	/* TLS: each SSL_read() gives at most one record, so read on until
	 * the socket is empty (bounded, for fairness between clients). */
	int max_rounds = c->ssl != NULL ? 64 : 4;
	for (int rounds = 0; rounds < max_rounds; rounds++) {
		ssize_t n = conn_recv(c);
		if (n == -2) {
			session_end(c, true);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (c->st == CS_WAIT_EOF) {	/* RST after QUIT is fine */
				session_finished(c);
				return;
			}
			report_err(c, E_IO, "recv: %s", strerror(errno));
			session_end(c, true);
			return;
		}
		c->t_last = now();
		if (n == 0) {
			if (c->st == CS_WAIT_EOF) {
				session_finished(c);
			} else if (g.stopping && opt.mode == M_RETR) {
				session_end(c, true);
			} else {
				report_err(c, E_EOF, "server closed the connection%s%s",
				    c->pq_n ? " awaiting " : "",
				    c->pq_n ? cmd_name[c->pq[c->pq_head]] : "");
				session_end(c, true);
			}
			return;
		}
		if (c->st == CS_WAIT_EOF) {
			report_err(c, E_PROTO, "data after QUIT reply");
			session_end(c, true);
			return;
		}
		if (!process(c, g.rbuf, (size_t)n))
			return;
		if (c->stls_go) {
			c->stls_go = false;
			tls_start(c);
			return;
		}
		flush(c);
		if (c->fd < 0 || (c->ssl == NULL && (size_t)n < sizeof(g.rbuf)))
			return;
	}
}

static void
on_writable(struct conn *c)
{
	if (c->st == CS_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err != 0) {
			report_err(c, E_CONNECT, "connect: %s", strerror(err));
			session_end(c, true);
			return;
		}
		ep_mod(c, EPOLLIN);
		c->st = CS_ACTIVE;
		pq_push(c, C_GREET, 0);
		if (opt.tls == TLS_IMPLICIT)
			tls_start(c);
		return;
	}
	if (c->ts == TS_HANDSHAKE) {
		tls_handshake(c);
		return;
	}
	flush(c);
}

/* ---- probe thread ------------------------------------------------------ */

static int
probe_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = recv(fd, buf + n, 1, 0);
		if (r <= 0)
			return -1;
		if (buf[n] == '\n') {
			buf[n + 1] = '\0';
			return strncmp(buf, "+OK", 3) == 0 ? 0 : -1;
		}
		n++;
	}
	return -1;
}

static void
probe_fail(const char *what, const char *line)
{
	pthread_mutex_lock(&probe.mu);
	probe.errors++;
	if (probe.err[0] == '\0')
		snprintf(probe.err, sizeof(probe.err), "%s: %.200s", what, line);
	pthread_mutex_unlock(&probe.mu);
}

static void *
probe_main(void *arg)
{
	(void)arg;
	char line[LINE_MAX_LEN];
	/* Real-time when allowed (root): a reply wakes the probe at once
	 * instead of after the streaming thread's time slice, so on a busy
	 * generator core p99 still measures the server. */
	struct sched_param sp = { .sched_priority = 1 };
	(void)pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = (time_t)opt.timeout };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&g.dst, sizeof(g.dst)) < 0) {
		probe_fail("connect", strerror(errno));
		close(fd);
		return NULL;
	}
	char cmd[300];
	if (probe_line(fd, line, sizeof(line)) < 0) {
		probe_fail("greeting", line);
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "USER %s\r\n", opt.probe_user);
	if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0 ||
	    probe_line(fd, line, sizeof(line)) < 0) {
		probe_fail("USER", line);
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "PASS %s\r\n", opt.probe_pass);
	if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0 ||
	    probe_line(fd, line, sizeof(line)) < 0) {
		probe_fail("PASS", line);
		goto out;
	}
	long period_ns = (long)(opt.probe_ms * 1e6);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!probe.stop) {
		double t = now();
		if (send(fd, "NOOP\r\n", 6, MSG_NOSIGNAL) != 6 ||
		    probe_line(fd, line, sizeof(line)) < 0) {
			probe_fail("NOOP", line);
			goto out;
		}
		double d = now() - t;
		pthread_mutex_lock(&probe.mu);
		if (__atomic_load_n(&g.measuring, __ATOMIC_RELAXED))
			samples_add(&probe.lat, d);
		pthread_mutex_unlock(&probe.mu);
		next.tv_nsec += period_ns;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	if (send(fd, "QUIT\r\n", 6, MSG_NOSIGNAL) != 6 ||
	    probe_line(fd, line, sizeof(line)) < 0)
		probe_fail("QUIT", line);
out:
	close(fd);
	return NULL;
}

/* ---- main loop ----------------------------------------------------------- */

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_int = 1;
}

/* ---- server CPU time (--server-pid) --------------------------------------- */

#define CPU_NAMES 24
struct cpu_snap {
	char name[CPU_NAMES][32];
	double secs[CPU_NAMES];
	int n;
};

/* user+system time of root and all its descendants, by process name, with
 * reaped children's (cutime/cstime) counted under their parent's name. */
static void
cpu_sample(struct cpu_snap *snap)
{
	memset(snap, 0, sizeof(*snap));
	if (opt.server_pid <= 0)
		return;
	size_t cap = 1024, n = 0;
	struct pent { int pid, ppid; bool in; double t; char comm[32]; } *v;
	v = xcalloc(cap, sizeof(*v));
	DIR *d = opendir("/proc");
	if (d == NULL)
		return;
	struct dirent *de;
	static long hz;
	if (hz == 0)
		hz = sysconf(_SC_CLK_TCK);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		char path[64], buf[1024];
		snprintf(path, sizeof(path), "/proc/%.20s/stat", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
		if (lp == NULL || rp == NULL)
			continue;
		int ppid;
		unsigned long ut, st;
		long cut, cst;
		if (sscanf(rp + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld",
		    &ppid, &ut, &st, &cut, &cst) != 5)
			continue;
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				die("out of memory");
		}
		struct pent *e = &v[n++];
		memset(e, 0, sizeof(*e));
		e->pid = atoi(de->d_name);
		e->ppid = ppid;
		e->t = (double)(ut + st + (unsigned long)cut + (unsigned long)cst) / (double)hz;
		size_t cl = (size_t)(rp - lp - 1);
		if (cl >= sizeof(e->comm))
			cl = sizeof(e->comm) - 1;
		memcpy(e->comm, lp + 1, cl);
		e->in = e->pid == opt.server_pid;
	}
	closedir(d);
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			if (v[i].in)
				continue;
			for (size_t j = 0; j < n; j++)
				if (v[j].in && v[j].pid == v[i].ppid) {
					v[i].in = changed = true;
					break;
				}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i].in)
			continue;
		int k;
		for (k = 0; k < snap->n; k++)
			if (strcmp(snap->name[k], v[i].comm) == 0)
				break;
		if (k == snap->n) {
			if (snap->n == CPU_NAMES)
				k = CPU_NAMES - 1;	/* the rest, lumped */
			else
				snprintf(snap->name[snap->n++], 32, "%s", v[i].comm);
		}
		snap->secs[k] += v[i].t;
	}
	free(v);
}

static struct cpu_snap cpu_win0, cpu_win1;

static double
ru_secs(const struct rusage *r)
{
	return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 +
	    r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

static void
check_timeouts(double t)
{
	for (int i = 0; i < opt.clients; i++) {
		struct conn *c = &g.conns[i];
		if (c->st == CS_FREE || c->st == CS_HOLD)
			continue;
		if (t - c->t_last > opt.timeout) {
			report_err(c, E_TIMEOUT, "no reply for %.1f s (awaiting %s)",
			    t - c->t_last,
			    c->pq_n ? cmd_name[c->pq[c->pq_head]] :
			    c->st == CS_CONNECTING ? "connect" : "EOF");
			conn_close(c, true);
			if (!g.stopping && opt.mode != M_IDLE)
				start_session(c);
		}
	}
}

static void
write_ready(void)
{
	g.ready_written = true;
	g.holding_max = g.holding;
	fprintf(stderr, "popload: %d sessions logged in and held\n", g.holding);
	if (opt.ready_file != NULL) {
		FILE *f = fopen(opt.ready_file, "w");
		if (f != NULL) {
			fprintf(f, "%d\n", g.holding);
			fclose(f);
		}
	}
}

/* Absent figures (negative) are null. */
static void
json_num(const char *key, double v)
{
	if (v < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%.4f", key, v);
}

static void
usage(void)
{
	fputs(
"usage: popload -p PORT [options]\n"
"  -m MODE          session | retr | idle | bigbox (default session)\n"
"  -H ADDR          server IPv4 address (127.0.0.1)\n"
"  -c N             concurrent clients (1)\n"
"  -d SECS          measured duration (5); idle: seconds to hold\n"
"  -w SECS          warm-up seconds before measuring (0)\n"
"  -n N             stop after N sessions (0 = only the time bound)\n"
"  -u PAT -P PAT    user / password patterns, %d = user number (u%d p%d)\n"
"  -U N             number of users; client i uses user base+(i mod N) (= -c)\n"
"  --user-base N    first user number (1)\n"
"  --pipeline K     commands in flight (1); session: >=4 sends all at once\n"
"  --sources K      bind to K source addresses 127.0.0.1.. (auto)\n"
"  --manifest F     lines 'user count octets' to verify STAT/LIST against\n"
"  --lax            check only '+OK' (trivial reference server)\n"
"  --retr-max N     RETR at most N messages per session (all)\n"
"  --probe MS       extra thread: NOOP every MS ms as --probe-user\n"
"  --probe-user U --probe-pass P\n"
"  --ready-file F   idle: written once all sessions are held\n"
"  --ramp N         idle: logins in flight at once (256)\n"
"  --timeout SECS   per-reply timeout (10)\n"
"  --label S        copied into the JSON output\n"
"  --tls MODE       implicit (POP3S) | stls (STLS after the greeting)\n"
"  --resume         TLS: each client slot offers its last session ticket\n"
"  --server-pid PID server CPU time in the window (PID and descendants)\n", stderr);
	exit(2);
}

static double
parse_num(const char *s, const char *what)
{
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (errno != 0 || e == s || *e != '\0' || v < 0)
		die("bad %s: %s", what, s);
	return v;
}

int
main(int argc, char **argv)
{
	enum {
		O_PIPE = 256, O_SOURCES, O_MANIFEST, O_LAX, O_RETRMAX, O_PROBE,
		O_PUSER, O_PPASS, O_READY, O_RAMP, O_TIMEOUT, O_LABEL, O_UBASE,
		O_TLS, O_RESUME, O_SRVPID,
	};
	static const struct option lo[] = {
		{ "pipeline", required_argument, NULL, O_PIPE },
		{ "sources", required_argument, NULL, O_SOURCES },
		{ "manifest", required_argument, NULL, O_MANIFEST },
		{ "lax", no_argument, NULL, O_LAX },
		{ "retr-max", required_argument, NULL, O_RETRMAX },
		{ "probe", required_argument, NULL, O_PROBE },
		{ "probe-user", required_argument, NULL, O_PUSER },
		{ "probe-pass", required_argument, NULL, O_PPASS },
		{ "ready-file", required_argument, NULL, O_READY },
		{ "ramp", required_argument, NULL, O_RAMP },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "label", required_argument, NULL, O_LABEL },
		{ "user-base", required_argument, NULL, O_UBASE },
		{ "tls", required_argument, NULL, O_TLS },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "server-pid", required_argument, NULL, O_SRVPID },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "m:H:p:c:d:w:n:u:P:U:qh", lo, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "session") == 0) opt.mode = M_SESSION;
			else if (strcmp(optarg, "retr") == 0) opt.mode = M_RETR;
			else if (strcmp(optarg, "idle") == 0) opt.mode = M_IDLE;
			else if (strcmp(optarg, "bigbox") == 0) opt.mode = M_BIGBOX;
			else die("unknown mode %s", optarg);
			break;
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = (int)parse_num(optarg, "port"); break;
		case 'c': opt.clients = (int)parse_num(optarg, "clients"); break;
		case 'd': opt.duration = parse_num(optarg, "duration"); break;
		case 'w': opt.warmup = parse_num(optarg, "warm-up"); break;
		case 'n': opt.max_sessions = (long)parse_num(optarg, "count"); break;
		case 'u': opt.user_pat = optarg; break;
		case 'P': opt.pass_pat = optarg; break;
		case 'U': opt.nusers = (int)parse_num(optarg, "users"); break;
		case 'q': opt.quiet = 1; break;
		case O_PIPE: opt.pipeline = (int)parse_num(optarg, "pipeline"); break;
		case O_SOURCES: opt.sources = (int)parse_num(optarg, "sources"); break;
		case O_MANIFEST: opt.manifest_path = optarg; break;
		case O_LAX: opt.lax = true; break;
		case O_RETRMAX: opt.retr_max = (long)parse_num(optarg, "retr-max"); break;
		case O_PROBE: opt.probe_ms = parse_num(optarg, "probe"); break;
		case O_PUSER: opt.probe_user = optarg; break;
		case O_PPASS: opt.probe_pass = optarg; break;
		case O_READY: opt.ready_file = optarg; break;
		case O_RAMP: opt.ramp = (int)parse_num(optarg, "ramp"); break;
		case O_TIMEOUT: opt.timeout = parse_num(optarg, "timeout"); break;
		case O_LABEL: opt.label = optarg; break;
		case O_UBASE: opt.user_base = (int)parse_num(optarg, "user-base"); break;
		case O_TLS:
			if (strcmp(optarg, "implicit") == 0) opt.tls = TLS_IMPLICIT;
			else if (strcmp(optarg, "stls") == 0) opt.tls = TLS_STLS;
			else if (strcmp(optarg, "none") == 0) opt.tls = TLS_OFF;
			else die("unknown --tls %s", optarg);
			break;
		case O_RESUME: opt.resume = true; break;
		case O_SRVPID: opt.server_pid = (int)parse_num(optarg, "server-pid"); break;
		default: usage();
		}
	}
	if (optind != argc || opt.port <= 0 || opt.port > 65535 || opt.clients < 1)
		usage();
	if (opt.clients > 1000000 || opt.duration > 86400 || opt.timeout <= 0)
		die("unreasonable bounds");
	if (opt.pipeline < 1)
		opt.pipeline = 1;
	if (opt.pipeline > PQ_SIZE / 2)
		opt.pipeline = PQ_SIZE / 2;
	if (opt.nusers <= 0)
		opt.nusers = opt.clients;
	if (opt.ramp < 1)
		opt.ramp = 1;
	if (opt.probe_ms > 0 && (opt.probe_user == NULL || opt.probe_pass == NULL))
		die("--probe needs --probe-user and --probe-pass");
	if (opt.manifest_path != NULL)
		manifest_load(opt.manifest_path);
	if (opt.resume && opt.tls == TLS_OFF)
		die("--resume needs --tls");
	if (opt.tls != TLS_OFF)
		tls_ctx_init();

	memset(&g.dst, 0, sizeof(g.dst));
	g.dst.sin_family = AF_INET;
	g.dst.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &g.dst.sin_addr) != 1)
		die("bad address %s", opt.host);
	bool loopback = (ntohl(g.dst.sin_addr.s_addr) >> 24) == 127;
	if (opt.sources == 0)
		opt.sources = loopback ? 8 : 1;
	if (!loopback)
		opt.sources = 1;

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)opt.clients + 64)
			die("open file limit %lu too low for %d clients",
			    (unsigned long)rl.rlim_cur, opt.clients);
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	g.learn_count = xcalloc((size_t)opt.nusers, sizeof(*g.learn_count));
	g.learn_size = xcalloc((size_t)opt.nusers, sizeof(*g.learn_size));
	g.learnt = xcalloc((size_t)opt.nusers, sizeof(*g.learnt));
	g.conns = xcalloc((size_t)opt.clients, sizeof(*g.conns));
	for (int i = 0; i < opt.clients; i++) {
		g.conns[i].fd = -1;
		g.conns[i].st = CS_FREE;
	}
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (g.ep < 0)
		die("epoll_create1: %s", strerror(errno));

	g.t0 = now();
	g.measuring = opt.warmup <= 0 && opt.mode != M_IDLE;
	if (g.measuring) {
		g.t_win = g.t0;
		getrusage(RUSAGE_SELF, &g.ru_win);
		cpu_sample(&cpu_win0);
	}
	double t_measure = g.t0 + opt.warmup;
	g.t_end = t_measure + opt.duration;
	/* Hard bound for everything, including idle ramp-up and drain. */
	double t_hard = g.t_end + opt.timeout + 5;
	if (opt.mode == M_IDLE)
		t_hard = g.t0 + opt.timeout * 6 + opt.clients / 200.0 + opt.duration + 30;

	pthread_mutex_init(&probe.mu, NULL);
	if (opt.probe_ms > 0) {
		probe.on = true;
		if (pthread_create(&probe.th, NULL, probe_main, NULL) != 0)
			die("pthread_create failed");
		/* The probe thread shares our core: make the streaming thread
		 * yield to it so its latency is the server's, not ours. */
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	}

	int started = 0;
	if (opt.mode != M_IDLE) {
		for (int i = 0; i < opt.clients; i++) {
			if (opt.max_sessions > 0 && g.sessions_started >= opt.max_sessions)
				break;
			start_session(&g.conns[i]);
		}
		started = opt.clients;
	}

	struct epoll_event evs[512];
	double last_tcheck = g.t0;
	double hold_until = 0;
	bool drain_sent = false;
	struct rusage ru_end;
	double t_ru_end = 0;
	bool ru_end_set = false;
	for (;;) {
		double t = now();
		if (got_int) {
			fprintf(stderr, "popload: interrupted\n");
			report_err(NULL, E_IO, "interrupted");
			break;
		}
		if (t >= t_hard) {
			for (int i = 0; i < opt.clients; i++)
				if (g.conns[i].st != CS_FREE)
					report_err(&g.conns[i], E_TIMEOUT,
					    "still busy at the hard time limit");
			break;
		}
		if (!g.measuring && !g.stopping && opt.mode != M_IDLE && t >= t_measure) {
			g.measuring = true;
			g.t_win = t;
			getrusage(RUSAGE_SELF, &g.ru_win);
			cpu_sample(&cpu_win0);
		}
		if (opt.mode == M_IDLE) {
			/* Ramp up: at most opt.ramp logins in flight. */
			while (started < opt.clients && g.connecting < opt.ramp &&
			    !g.stopping && !g.ramp_stop)
				start_session(&g.conns[started++]);
			if (!g.ready_written && g.holding == opt.clients) {
				write_ready();
				hold_until = t + opt.duration;
				g.measuring = true;
				g.t_win = t;
				getrusage(RUSAGE_SELF, &g.ru_win);
				cpu_sample(&cpu_win0);
			}
			if (g.ready_written && !drain_sent &&
			    (t >= hold_until || got_usr1)) {
				/* Every held session must still answer. */
				drain_sent = true;
				g.stopping = true;
				getrusage(RUSAGE_SELF, &ru_end);
				cpu_sample(&cpu_win1);
				t_ru_end = t;
				ru_end_set = true;
				for (int i = 0; i < opt.clients; i++) {
					struct conn *c = &g.conns[i];
					if (c->st != CS_HOLD)
						continue;
					c->st = CS_ACTIVE;
					g.holding--;
					c->t_last = t;
					queue_cmd(c, C_NOOP, 0, "NOOP\r\n");
					flush(c);
				}
			}
			if (!g.ready_written && (started == opt.clients || g.ramp_stop) &&
			    g.connecting == 0 && g.holding == g.active) {
				/* Some logins failed (already reported): hold the rest. */
				fprintf(stderr, "popload: only %d of %d sessions could be held%s\n",
				    g.holding, opt.clients,
				    g.ramp_stop ? " (stopped at the first failure)" : "");
				g.idle_failed = opt.clients - g.holding;
				write_ready();
				hold_until = t + opt.duration;
				g.measuring = true;
				g.t_win = t;
				getrusage(RUSAGE_SELF, &g.ru_win);
				cpu_sample(&cpu_win0);
			}
			if (drain_sent && g.active == 0)
				break;
		} else {
			if (!g.stopping && t >= g.t_end) {
				g.stopping = true;
				g.measuring = false;
				getrusage(RUSAGE_SELF, &ru_end);
				cpu_sample(&cpu_win1);
				t_ru_end = t;
				ru_end_set = true;
				if (opt.mode == M_RETR) {
					/* Throughput is counted up to now; cut the streams. */
					for (int i = 0; i < opt.clients; i++)
						if (g.conns[i].st != CS_FREE)
							conn_close(&g.conns[i], true);
				}
			}
			if (opt.max_sessions > 0 && !g.stopping &&
			    g.sessions_started >= opt.max_sessions && g.active == 0) {
				g.stopping = true;
				g.measuring = false;
				getrusage(RUSAGE_SELF, &ru_end);
				cpu_sample(&cpu_win1);
				t_ru_end = t;
				ru_end_set = true;
			}
			if (g.stopping && g.active == 0)
				break;
		}
		if (t - last_tcheck > 0.1) {
			last_tcheck = t;
			check_timeouts(t);
		}
		int n = epoll_wait(g.ep, evs, 512, 50);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->st == CS_FREE || c->fd < 0)
				continue;
			if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP) &&
			    c->st == CS_CONNECTING) {
				on_writable(c);
				continue;
			}
			int fd = c->fd;
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(c);
			/* (not if the slot went on to a new connection meanwhile) */
			if (c->st != CS_FREE && c->fd == fd && (evs[i].events & EPOLLOUT))
				on_writable(c);
		}
	}
	double t_done = now();
	if (!ru_end_set) {
		getrusage(RUSAGE_SELF, &ru_end);
		cpu_sample(&cpu_win1);
		t_ru_end = t_done;
	}
	if (probe.on) {
		probe.stop = 1;
		pthread_join(probe.th, NULL);
		if (probe.errors > 0) {
			g.errors[E_ERR_REPLY] += probe.errors;
			fprintf(stderr, "popload: probe error: %s\n", probe.err);
		}
	}
	for (int i = 0; i < opt.clients; i++)
		if (g.conns[i].st != CS_FREE)
			conn_close(&g.conns[i], true);

	if (g.t_win == 0)
		g.t_win = g.t0;
	double win = t_ru_end - g.t_win;
	if (win <= 0)
		win = 1e-9;
	double cpu = ru_secs(&ru_end) - ru_secs(&g.ru_win);
	double cpu_pct = 100.0 * cpu / win;
	long errs = 0;
	for (int i = 0; i < E__N; i++)
		errs += g.errors[i];

	static const char *mname[] = { "session", "retr", "idle", "bigbox" };
	double rate = g.sessions_ok / win;
	double mbps = g.payload / win / 1e6;
	double p50 = pct(&g.lat, 50) * 1e3, p99 = pct(&g.lat, 99) * 1e3;
	double pp50 = pct(&probe.lat, 50) * 1e3, pp99 = pct(&probe.lat, 99) * 1e3;
	double pmax = pct(&probe.lat, 100) * 1e3;
	double fl50 = pct(&g.first_line, 50) * 1e3;
	double le50 = pct(&g.list_end, 50) * 1e3;

	if (!opt.quiet) {
		fprintf(stderr, "popload %s%s%s: clients %d, window %.2f s, loadgen CPU %.0f%%%s\n",
		    mname[opt.mode], *opt.label ? " " : "", opt.label, opt.clients,
		    win, cpu_pct, cpu_pct > 90 ? " (SATURATED: figures may be the load generator's limit)" : "");
		if (opt.mode == M_SESSION)
			fprintf(stderr, "  sessions %ld (%.0f/s), latency p50 %.2f ms p99 %.2f ms\n",
			    g.sessions_ok, rate, p50, p99);
		if (opt.tls != TLS_OFF)
			fprintf(stderr, "  TLS %s: %ld full handshakes, %ld resumed\n",
			    opt.tls == TLS_IMPLICIT ? "implicit" : "STLS", g.hs_full, g.resumed);
		if (opt.mode == M_RETR)
			fprintf(stderr, "  %" PRIu64 " messages verified in window, %.1f MB/s payload (%" PRIu64 " total)\n",
			    g.msgs, mbps, g.msgs_total);
		if (opt.mode == M_IDLE)
			fprintf(stderr, "  held %d sessions\n", g.holding_max);
		if (opt.mode == M_BIGBOX)
			fprintf(stderr, "  PASS -> first LIST line p50 %.1f ms, -> LIST end %.1f ms (%zu runs)\n",
			    fl50, le50, g.first_line.n);
		if (probe.on)
			fprintf(stderr, "  probe NOOP p50 %.2f ms p99 %.2f ms max %.2f ms (%zu)\n",
			    pp50, pp99, pmax, probe.lat.n);
		fprintf(stderr, "  errors %ld", errs);
		for (int i = 0; i < E__N; i++)
			if (g.errors[i])
				fprintf(stderr, " %s=%ld", err_name[i], g.errors[i]);
		fputc('\n', stderr);
	}
	printf("{\"mode\":\"%s\",\"label\":\"%s\",\"clients\":%d,\"pipeline\":%d,"
	    "\"window_s\":%.4f,\"sessions\":%ld,\"sessions_total\":%ld,"
	    "\"rate\":%.2f,\"payload_bytes\":%" PRIu64 ",\"mbps\":%.2f,"
	    "\"msgs\":%" PRIu64 ",\"held\":%d,\"probe_n\":%zu,"
	    "\"loadgen_cpu_pct\":%.1f,\"errors\":%ld",
	    mname[opt.mode], opt.label, opt.clients, opt.pipeline, win,
	    g.sessions_ok, g.sessions_total, rate, g.payload, mbps,
	    g.msgs, opt.mode == M_IDLE ? g.holding_max : 0,
	    probe.lat.n, cpu_pct, errs);
	json_num("lat_p50_ms", p50);
	json_num("lat_p99_ms", p99);
	json_num("first_line_ms", fl50);
	json_num("list_end_ms", le50);
	json_num("probe_p50_ms", pp50);
	json_num("probe_p99_ms", pp99);
	json_num("probe_max_ms", pmax);
	static const char *tname[] = { "none", "implicit", "stls" };
	printf(",\"tls\":\"%s\",\"resume\":%s,\"tls_full\":%ld,\"tls_resumed\":%ld",
	    tname[opt.tls], opt.resume ? "true" : "false", g.hs_full, g.resumed);
	if (opt.server_pid > 0) {
		/* by name: what was there at the window's end, minus its start */
		double tot = 0;
		printf(",\"srv_cpu_by\":{");
		for (int i = 0; i < cpu_win1.n; i++) {
			double b = 0;
			for (int j = 0; j < cpu_win0.n; j++)
				if (strcmp(cpu_win0.name[j], cpu_win1.name[i]) == 0)
					b = cpu_win0.secs[j];
			double dlt = cpu_win1.secs[i] - b;
			tot += dlt;
			printf("%s\"%s\":%.3f", i ? "," : "", cpu_win1.name[i], dlt);
		}
		printf("},\"srv_cpu_win_s\":%.3f", tot);
	}
	for (int i = 0; i < E__N; i++)
		printf(",\"err_%s\":%ld", err_name[i], g.errors[i]);
	printf("}\n");
	fflush(stdout);
	return errs > 0 ? 1 : 0;
}
