/*
 * lmtpload.c - delivery load generator for posuto's benchmark
 * (bench/README.md): LMTP clients like Postfix's, or one delivery
 * process per message like an MTA's mailbox_command.
 *
 * One thread per client, blocking sockets with timeouts; every reply is
 * checked.  Runs are bounded in time (-d, warm-up, per-reply timeout and
 * a hard limit) and optionally in count (-n).  When the time is up no new
 * transaction starts; the ones in flight finish (or time out), so every
 * message is either acknowledged or counted as an error: the runner then
 * checks that the mailboxes hold exactly "msgs_total" new messages.
 *
 * Modes:
 *   lmtp   connect, LHLO, then per transaction MAIL FROM, RCPT TO, DATA
 *          pipelined (as Postfix does with PIPELINING), the message, one
 *          reply per recipient; RSET before reusing the connection (as
 *          Postfix does to check a cached session); QUIT after --per-conn
 *          transactions, then a new connection
 *   exec   run CMD ARGS... once per message with the message on stdin
 *          ("%u" in an argument = the recipient); exit status 0 expected
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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 1024
#define MAX_ERR_PRINT 20
#define MAX_CLIENTS 256
#define MAX_ARGS 64

enum mode { M_LMTP, M_EXEC };

static struct {
	enum mode mode;
	const char *host;
	int port;
	const char *unix_path;
	int clients;
	double duration;
	double warmup;
	double timeout;
	long max_msgs;
	const char *user_pat;
	int nusers;
	int user_base;
	int per_conn;
	const char *domain;
	const char *msg_path;
	const char *child_log;
	const char *label;
	int quiet;
	char **cmd;
	int ncmd;
} opt = {
	.mode = M_LMTP, .host = "127.0.0.1", .clients = 1, .duration = 5,
	.timeout = 30, .user_pat = "u%d", .user_base = 1, .per_conn = 10,
	.domain = "bench.example", .label = "",
};

static struct {
	char *wire;		/* the message: CRLF, dot-stuffed, ".\r\n" */
	size_t wire_len;
	size_t size;		/* octets as SIZE= counts them (CRLF) */
	bool eightbit;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	double t0, t_win, t_end, t_hard;
	volatile int measuring;	/* inside the window */
	volatile int stopping;	/* no new transactions */
	pthread_mutex_t mu;
	long msgs;		/* acknowledged inside the window */
	long msgs_total;	/* acknowledged, all */
	long started;		/* transactions begun (-n bound) */
	long conns;
	long next_user;
	long errors;
	long err_printed;
	double *lat;
	size_t nlat, caplat;
	struct rusage ru_win, ru_end, ch_win, ch_end;
	double t_ru_end;
} g;

static volatile sig_atomic_t got_int;

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
	fputs("lmtpload: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void report_err(int client, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
report_err(int client, const char *fmt, ...)
{
	pthread_mutex_lock(&g.mu);
	g.errors++;
	if (g.err_printed++ < MAX_ERR_PRINT) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "lmtpload: error client %d: ", client);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	} else if (g.err_printed == MAX_ERR_PRINT + 1) {
		fputs("lmtpload: further errors not printed\n", stderr);
	}
	pthread_mutex_unlock(&g.mu);
}

/* Takes the next transaction, or says the run is over. */
static bool
txn_begin(int *user_r)
{
	bool ok = false;
	pthread_mutex_lock(&g.mu);
	if (!g.stopping && !got_int && now() < g.t_end &&
	    (opt.max_msgs == 0 || g.started < opt.max_msgs)) {
		g.started++;
		*user_r = opt.user_base + (int)(g.next_user++ % opt.nusers);
		ok = true;
	}
	pthread_mutex_unlock(&g.mu);
	return ok;
}

static void
txn_done(double t_start)
{
	double t = now();
	pthread_mutex_lock(&g.mu);
	g.msgs_total++;
	if (g.measuring && t <= g.t_end) {
		g.msgs++;
		if (g.nlat == g.caplat && g.caplat < ((size_t)1 << 24)) {
			size_t nc = g.caplat ? g.caplat * 2 : 4096;
			double *nv = realloc(g.lat, nc * sizeof(*nv));
			if (nv != NULL) {
				g.lat = nv;
				g.caplat = nc;
			}
		}
		if (g.nlat < g.caplat)
			g.lat[g.nlat++] = t - t_start;
	}
	pthread_mutex_unlock(&g.mu);
}

static void
fmt_user(char *out, size_t outsz, int n)
{
	/* Only "%d" is substituted; the pattern comes from the command line. */
	size_t o = 0;
	for (const char *p = opt.user_pat; *p != '\0' && o + 12 < outsz; p++) {
		if (p[0] == '%' && p[1] == 'd') {
			o += (size_t)snprintf(out + o, outsz - o, "%d", n);
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

/* ---- the message ------------------------------------------------------- */

static void
msg_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || st.st_size <= 0 || st.st_size > (64 << 20))
		die("%s: empty or too big", path);
	size_t n = (size_t)st.st_size;
	char *raw = malloc(n);
	if (raw == NULL || fread(raw, 1, n, f) != n)
		die("%s: read failed", path);
	fclose(f);
	/* At most: every byte a LF (+CR) after a dot (+dot), and the end. */
	g.wire = malloc(n * 3 + 8);
	if (g.wire == NULL)
		die("out of memory");
	size_t o = 0;
	bool bol = true;
	for (size_t i = 0; i < n; i++) {
		char ch = raw[i];
		if ((unsigned char)ch >= 0x80)
			g.eightbit = true;
		if (bol && ch == '.')
			g.wire[o++] = '.';
		if (ch == '\n' && (i == 0 || raw[i - 1] != '\r')) {
			g.wire[o++] = '\r';
			g.size++;
		}
		g.wire[o++] = ch;
		g.size++;
		bol = ch == '\n';
	}
	if (!bol) {
		g.wire[o++] = '\r';
		g.wire[o++] = '\n';
		g.size += 2;
	}
	memcpy(g.wire + o, ".\r\n", 3);
	g.wire_len = o + 3;
	free(raw);
}

/* ---- LMTP -------------------------------------------------------------- */

/* What LHLO's reply offers (Postfix uses only what is offered). */
#define CAP_PIPELINING 1
#define CAP_SIZE 2
#define CAP_8BITMIME 4

struct lconn {
	int id;
	int fd;
	unsigned caps;
	char buf[8192];
	size_t len, off;
};

static bool
send_all(struct lconn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			report_err(c->id, "send: %s", strerror(errno));
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* One reply (all its lines); its code must be `want`. */
static bool
reply(struct lconn *c, int want, const char *what)
{
	char line[LINE_MAX_LEN];
	size_t ll = 0;
	for (;;) {
		if (c->off == c->len) {
			ssize_t r = recv(c->fd, c->buf, sizeof(c->buf), 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				report_err(c->id, "%s: %s", what,
				    r == 0 ? "server closed the connection" :
				    errno == EAGAIN ? "timeout" : strerror(errno));
				return false;
			}
			c->len = (size_t)r;
			c->off = 0;
		}
		char ch = c->buf[c->off++];
		if (ch != '\n') {
			if (ll + 1 >= sizeof(line)) {
				report_err(c->id, "%s: reply line too long", what);
				return false;
			}
			line[ll++] = ch;
			continue;
		}
		if (ll == 0 || line[ll - 1] != '\r') {
			report_err(c->id, "%s: reply line without CRLF", what);
			return false;
		}
		line[--ll] = '\0';
		if (ll > 4 && want == 250) {
			const char *kw = line + 4;
			if (strcasecmp(kw, "PIPELINING") == 0)
				c->caps |= CAP_PIPELINING;
			else if (strcasecmp(kw, "8BITMIME") == 0)
				c->caps |= CAP_8BITMIME;
			else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == '\0' || kw[4] == ' '))
				c->caps |= CAP_SIZE;
		}
		if (ll < 3 || strtol(line, NULL, 10) != want ||
		    (ll > 3 && line[3] != ' ' && line[3] != '-')) {
			report_err(c->id, "%s: %.200s (wanted %d)", what, line, want);
			return false;
		}
		if (ll == 3 || line[3] == ' ')
			return true;
		ll = 0;		/* "250-": more lines follow */
	}
}

static int
lmtp_connect(struct lconn *c)
{
	int fd = socket(g.dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		report_err(c->id, "socket: %s", strerror(errno));
		return -1;
	}
	struct timeval tv = { .tv_sec = (time_t)opt.timeout };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (g.dst.ss_family == AF_INET) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (connect(fd, (struct sockaddr *)&g.dst, g.dst_len) < 0) {
		report_err(c->id, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->len = c->off = 0;
	return 0;
}

static void *
lmtp_client(void *arg)
{
	struct lconn *c = arg;
	char cmd[1024], rcpt[256];
	while (!g.stopping && !got_int) {
		int user;
		if (!txn_begin(&user))
			break;
		if (lmtp_connect(c) < 0)
			goto fail_txn;
		pthread_mutex_lock(&g.mu);
		g.conns++;
		pthread_mutex_unlock(&g.mu);
		if (!reply(c, 220, "greeting"))
			goto fail;
		snprintf(cmd, sizeof(cmd), "LHLO loadgen.%s\r\n", opt.domain);
		c->caps = 0;
		if (!send_all(c, cmd, strlen(cmd)) || !reply(c, 250, "LHLO"))
			goto fail;
		char size_arg[64] = "";
		if (c->caps & CAP_SIZE)
			snprintf(size_arg, sizeof(size_arg), " SIZE=%zu", g.size);
		for (int t = 0; t < opt.per_conn; t++) {
			if (t > 0) {
				if (!txn_begin(&user))
					break;
				if (!send_all(c, "RSET\r\n", 6) || !reply(c, 250, "RSET"))
					goto fail;
			}
			double t_start = now();
			fmt_user(rcpt, sizeof(rcpt), user);
			int l1 = snprintf(cmd, sizeof(cmd), "MAIL FROM:<sender@%s>%s%s\r\n",
			    opt.domain, size_arg,
			    g.eightbit && (c->caps & CAP_8BITMIME) ? " BODY=8BITMIME" : "");
			int l2 = snprintf(cmd + l1, sizeof(cmd) - (size_t)l1,
			    "RCPT TO:<%s@%s>\r\n", rcpt, opt.domain);
			memcpy(cmd + l1 + l2, "DATA\r\n", 7);
			bool ok;
			if (c->caps & CAP_PIPELINING)	/* one write, as Postfix does */
				ok = send_all(c, cmd, (size_t)(l1 + l2 + 6)) &&
				    reply(c, 250, "MAIL") && reply(c, 250, "RCPT") &&
				    reply(c, 354, "DATA");
			else
				ok = send_all(c, cmd, (size_t)l1) && reply(c, 250, "MAIL") &&
				    send_all(c, cmd + l1, (size_t)l2) && reply(c, 250, "RCPT") &&
				    send_all(c, cmd + l1 + l2, 6) && reply(c, 354, "DATA");
			if (!ok)
				goto fail;
			if (!send_all(c, g.wire, g.wire_len) ||
			    !reply(c, 250, "end of data"))
				goto fail;
			txn_done(t_start);
		}
		if (!send_all(c, "QUIT\r\n", 6) || !reply(c, 221, "QUIT"))
			goto fail;
		/* The server closes after 221. */
		char b[64];
		ssize_t r = recv(c->fd, b, sizeof(b), 0);
		if (r != 0)
			report_err(c->id, "no close after QUIT");
		close(c->fd);
		c->fd = -1;
		continue;
fail:
		close(c->fd);
		c->fd = -1;
		continue;
fail_txn:
		break;	/* (reported) no server: this client stops */
	}
	return NULL;
}

/* ---- exec: one delivery process per message ----------------------------- */

static void *
exec_client(void *arg)
{
	int id = (int)(intptr_t)arg;
	char user[256];
	char *argv[MAX_ARGS + 1];
	char *bufs[MAX_ARGS];
	for (int i = 0; i < opt.ncmd; i++)
		bufs[i] = malloc(LINE_MAX_LEN);
	int user_n;
	while (txn_begin(&user_n)) {
		fmt_user(user, sizeof(user), user_n);
		for (int i = 0; i < opt.ncmd; i++) {
			/* "%u" anywhere in an argument is the recipient. */
			const char *s = opt.cmd[i];
			size_t o = 0;
			for (; *s != '\0' && o + strlen(user) + 2 < LINE_MAX_LEN; s++) {
				if (s[0] == '%' && s[1] == 'u') {
					memcpy(bufs[i] + o, user, strlen(user));
					o += strlen(user);
					s++;
				} else {
					bufs[i][o++] = *s;
				}
			}
			bufs[i][o] = '\0';
			argv[i] = bufs[i];
		}
		argv[opt.ncmd] = NULL;
		double t_start = now();
		int in = open(opt.msg_path, O_RDONLY | O_CLOEXEC);
		int errfd = open(opt.child_log ? opt.child_log : "/dev/null",
		    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (in < 0 || errfd < 0) {
			report_err(id, "open: %s", strerror(errno));
			if (in >= 0)
				close(in);
			if (errfd >= 0)
				close(errfd);
			break;
		}
		pid_t pid = fork();
		if (pid == 0) {
			dup2(in, 0);
			dup2(errfd, 1);
			dup2(errfd, 2);
			execv(argv[0], argv);
			_exit(127);
		}
		close(in);
		close(errfd);
		if (pid < 0) {
			report_err(id, "fork: %s", strerror(errno));
			break;
		}
		/* Bounded: a child that hangs is killed after the timeout. */
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			int r;
			do
				r = poll(&p, 1, (int)(opt.timeout * 1000));
			while (r < 0 && errno == EINTR);
			if (r == 0) {
				report_err(id, "%s %s: no exit after %.0f s, killed",
				    argv[0], user, opt.timeout);
				kill(pid, SIGKILL);
			}
			close(pfd);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			txn_done(t_start);
		else
			report_err(id, "%s for %s: %s %d", argv[0], user,
			    WIFEXITED(st) ? "exit" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
	for (int i = 0; i < opt.ncmd; i++)
		free(bufs[i]);
	return NULL;
}

/* ---- main ---------------------------------------------------------------- */

static void
on_signal(int sig)
{
	(void)sig;
	got_int = 1;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
pct(double p)
{
	if (g.nlat == 0)
		return -1;
	size_t i = (size_t)(p / 100.0 * (double)(g.nlat - 1) + 0.5);
	return g.lat[i < g.nlat ? i : g.nlat - 1];
}

static double
ru_secs(const struct rusage *r)
{
	return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 +
	    r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
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
"usage: lmtpload -m lmtp (-p PORT [-H ADDR] | -S PATH) --msg FILE [options]\n"
"       lmtpload -m exec --msg FILE [options] -- CMD [ARG...]   (%u = recipient)\n"
"  -c N             parallel clients / delivery processes (1, at most 256)\n"
"  -d SECS          measured duration (5)\n"
"  -w SECS          warm-up seconds before measuring (0)\n"
"  -n N             at most N messages in all (0 = only the time bound)\n"
"  -u PAT           recipient pattern, %d = user number (u%d)\n"
"  -U N             number of users, used in turn (= -c)\n"
"  --user-base N    first user number (1)\n"
"  --per-conn K     lmtp: transactions per connection (10)\n"
"  --domain D       lmtp: recipient and sender domain (bench.example)\n"
"  --child-log F    exec: the children's stdout and stderr (/dev/null)\n"
"  --timeout SECS   per reply / per process (30)\n"
"  --label S        copied into the JSON output\n", stderr);
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
	enum { O_PERCONN = 256, O_DOMAIN, O_MSG, O_CHILDLOG, O_TIMEOUT, O_LABEL, O_UBASE };
	static const struct option lo[] = {
		{ "per-conn", required_argument, NULL, O_PERCONN },
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "msg", required_argument, NULL, O_MSG },
		{ "child-log", required_argument, NULL, O_CHILDLOG },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "label", required_argument, NULL, O_LABEL },
		{ "user-base", required_argument, NULL, O_UBASE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "+m:H:p:S:c:d:w:n:u:U:qh", lo, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "lmtp") == 0) opt.mode = M_LMTP;
			else if (strcmp(optarg, "exec") == 0) opt.mode = M_EXEC;
			else die("unknown mode %s", optarg);
			break;
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = (int)parse_num(optarg, "port"); break;
		case 'S': opt.unix_path = optarg; break;
		case 'c': opt.clients = (int)parse_num(optarg, "clients"); break;
		case 'd': opt.duration = parse_num(optarg, "duration"); break;
		case 'w': opt.warmup = parse_num(optarg, "warm-up"); break;
		case 'n': opt.max_msgs = (long)parse_num(optarg, "count"); break;
		case 'u': opt.user_pat = optarg; break;
		case 'U': opt.nusers = (int)parse_num(optarg, "users"); break;
		case 'q': opt.quiet = 1; break;
		case O_PERCONN: opt.per_conn = (int)parse_num(optarg, "per-conn"); break;
		case O_DOMAIN: opt.domain = optarg; break;
		case O_MSG: opt.msg_path = optarg; break;
		case O_CHILDLOG: opt.child_log = optarg; break;
		case O_TIMEOUT: opt.timeout = parse_num(optarg, "timeout"); break;
		case O_LABEL: opt.label = optarg; break;
		case O_UBASE: opt.user_base = (int)parse_num(optarg, "user-base"); break;
		default: usage();
		}
	}
	opt.cmd = argv + optind;
	opt.ncmd = argc - optind;
	if (opt.msg_path == NULL || opt.clients < 1 || opt.clients > MAX_CLIENTS)
		usage();
	if (opt.mode == M_LMTP && (opt.ncmd != 0 ||
	    (opt.unix_path == NULL && (opt.port <= 0 || opt.port > 65535))))
		usage();
	if (opt.mode == M_EXEC && (opt.ncmd < 1 || opt.ncmd > MAX_ARGS || opt.cmd[0][0] != '/'))
		die("exec: want -- /ABSOLUTE/CMD [ARG...] (at most %d)", MAX_ARGS);
	if (opt.duration > 86400 || opt.warmup > 3600 || opt.timeout <= 0 || opt.timeout > 3600)
		die("unreasonable bounds");
	if (opt.per_conn < 1)
		opt.per_conn = 1;
	if (opt.nusers <= 0)
		opt.nusers = opt.clients;
	msg_load(opt.msg_path);

	if (opt.mode == M_LMTP) {
		memset(&g.dst, 0, sizeof(g.dst));
		if (opt.unix_path != NULL) {
			struct sockaddr_un *su = (struct sockaddr_un *)&g.dst;
			su->sun_family = AF_UNIX;
			if (strlen(opt.unix_path) >= sizeof(su->sun_path))
				die("socket path too long");
			memcpy(su->sun_path, opt.unix_path, strlen(opt.unix_path) + 1);
			g.dst_len = sizeof(*su);
		} else {
			struct sockaddr_in *si = (struct sockaddr_in *)&g.dst;
			si->sin_family = AF_INET;
			si->sin_port = htons((uint16_t)opt.port);
			if (inet_pton(AF_INET, opt.host, &si->sin_addr) != 1)
				die("bad address %s", opt.host);
			g.dst_len = sizeof(*si);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pthread_mutex_init(&g.mu, NULL);

	g.t0 = now();
	g.t_win = g.t0 + opt.warmup;
	g.t_end = g.t_win + opt.duration;
	g.t_hard = g.t_end + opt.timeout * 3 + 5;
	g.measuring = opt.warmup <= 0;
	if (g.measuring) {
		getrusage(RUSAGE_SELF, &g.ru_win);
		getrusage(RUSAGE_CHILDREN, &g.ch_win);
	}

	pthread_t th[MAX_CLIENTS];
	struct lconn *lc = calloc((size_t)opt.clients, sizeof(*lc));
	if (lc == NULL)
		die("out of memory");
	for (int i = 0; i < opt.clients; i++) {
		int rc;
		lc[i].id = i;
		lc[i].fd = -1;
		if (opt.mode == M_LMTP)
			rc = pthread_create(&th[i], NULL, lmtp_client, &lc[i]);
		else
			rc = pthread_create(&th[i], NULL, exec_client, (void *)(intptr_t)i);
		if (rc != 0)
			die("pthread_create: %s", strerror(rc));
	}
	/* The clock: window start and end; the hard bound ends the process. */
	bool hard = false;
	for (;;) {
		double t = now();
		pthread_mutex_lock(&g.mu);
		if (!g.measuring && t >= g.t_win) {
			g.measuring = 1;
			getrusage(RUSAGE_SELF, &g.ru_win);
			getrusage(RUSAGE_CHILDREN, &g.ch_win);
		}
		bool done = (g.stopping || t >= g.t_end || got_int ||
		    (opt.max_msgs > 0 && g.started >= opt.max_msgs));
		if (done && !g.stopping) {
			g.stopping = 1;
			getrusage(RUSAGE_SELF, &g.ru_end);
			getrusage(RUSAGE_CHILDREN, &g.ch_end);
			g.t_ru_end = t < g.t_end ? t : g.t_end;
			if (t < g.t_end)	/* -n reached: the window ends when they finish */
				g.t_ru_end = 0;
		}
		pthread_mutex_unlock(&g.mu);
		if (done)
			break;
		usleep(10000);
	}
	/* Join what finishes within the hard bound. */
	for (int i = 0; i < opt.clients; i++) {
		struct timespec ts;
		double left = g.t_hard - now();
		clock_gettime(CLOCK_REALTIME, &ts);
		if (left < 0)
			left = 0;
		ts.tv_sec += (time_t)left;
		if (pthread_timedjoin_np(th[i], NULL, &ts) != 0) {
			report_err(i, "still busy at the hard time limit");
			hard = true;
		}
	}
	double t_done = now();
	if (g.t_ru_end == 0) {	/* -n: the last message ends the window */
		getrusage(RUSAGE_SELF, &g.ru_end);
		getrusage(RUSAGE_CHILDREN, &g.ch_end);
		g.t_ru_end = t_done;
		pthread_mutex_lock(&g.mu);
		g.msgs = g.msgs_total;
		pthread_mutex_unlock(&g.mu);
	}
	double win = g.t_ru_end - (opt.warmup > 0 ? g.t_win : g.t0);
	if (win <= 0)
		win = 1e-9;
	double cpu = ru_secs(&g.ru_end) - ru_secs(&g.ru_win);
	double cpu_pct = 100.0 * cpu / win;
	/* exec: the delivery processes' CPU, the "server" of that mode */
	double child_cpu = ru_secs(&g.ch_end) - ru_secs(&g.ch_win);
	pthread_mutex_lock(&g.mu);
	qsort(g.lat, g.nlat, sizeof(double), cmp_double);
	double rate = g.msgs / win;
	double mbps = (double)g.msgs * (double)g.size / win / 1e6;
	double p50 = pct(50) * 1e3, p99 = pct(99) * 1e3;
	if (!opt.quiet) {
		fprintf(stderr, "lmtpload %s%s%s: clients %d, window %.2f s, loadgen CPU %.0f%%\n",
		    opt.mode == M_LMTP ? "lmtp" : "exec", *opt.label ? " " : "", opt.label,
		    opt.clients, win, cpu_pct);
		fprintf(stderr, "  %ld messages of %zu octets in window (%.1f/s, %.1f MB/s), %ld in all,"
		    " latency p50 %.2f ms p99 %.2f ms, errors %ld\n",
		    g.msgs, g.size, rate, mbps, g.msgs_total, p50, p99, g.errors);
	}
	printf("{\"mode\":\"%s\",\"label\":\"%s\",\"clients\":%d,\"per_conn\":%d,"
	    "\"window_s\":%.4f,\"msg_octets\":%zu,\"msgs\":%ld,\"msgs_total\":%ld,"
	    "\"connections\":%ld,\"rate\":%.2f,\"mbps\":%.2f,\"loadgen_cpu_pct\":%.1f,"
	    "\"child_cpu_s\":%.3f,\"errors\":%ld",
	    opt.mode == M_LMTP ? "lmtp" : "exec", opt.label, opt.clients, opt.per_conn,
	    win, g.size, g.msgs, g.msgs_total, g.conns, rate, mbps, cpu_pct, child_cpu, g.errors);
	json_num("lat_p50_ms", p50);
	json_num("lat_p99_ms", p99);
	printf("}\n");
	fflush(stdout);
	long errs = g.errors;
	pthread_mutex_unlock(&g.mu);
	if (hard)
		_exit(1);	/* threads still blocked: do not wait for them */
	return errs > 0 ? 1 : 0;
}
