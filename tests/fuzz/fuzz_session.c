/*
 * fuzz_session.c - a whole POP3 session driven by fuzz bytes: the input is
 * everything a client sends (then it half-closes), the real session code
 * runs over a socketpair with a real Maildir, worker pool and users.
 * Oracles: no sanitizer report, the session always ends, the mailbox
 * loses messages only through DELE followed by QUIT (RFC 1939 §6, I2), and
 * every state change it takes is in the session's table
 * (pop3_session_enter() aborts on any other).
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "lib/log.h"
#include "net/conn.h"
#include "net/iplimit.h"
#include "net/runtime.h"
#include "net/workq.h"
#include "pop3/pop3_session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_MSGS 3
static char dir[64];
static struct pop3_env env;
static struct event_base *base;

static void
fuzz_userdb_unref(void *db)
{
	struct userdb *u = db;

	userdb_unref(&u);
}
static struct posuto_config *cfg;

static const char *const msgs[N_MSGS] = {
	"From: a@example.com\nSubject: one\n\nbody\n.dot\n",
	"Subject: two\r\n\r\nline\r\n",
	"Subject: three\n\nno final newline",
};

static void
msg_path(char *buf, size_t sz, int i)
{
	snprintf(buf, sz, "%s/mail/u/cur/170000000%d.M%dP1.host:2,S", dir, i, i);
}

static void
restore_mailbox(void)
{
	char p[256];

	for (int i = 0; i < N_MSGS; i++) {
		msg_path(p, sizeof(p), i);
		if (access(p, F_OK) == 0)
			continue;
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, msgs[i], strlen(msgs[i])) < 0)
			abort();
		close(fd);
	}
}

static int
count_mailbox(void)
{
	char p[256];
	int n = 0;

	for (int i = 0; i < N_MSGS; i++) {
		msg_path(p, sizeof(p), i);
		n += access(p, F_OK) == 0;
	}
	return n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[256];
	struct userdb *db;
	FILE *f;

	(void)argc;
	(void)argv;
	log_init("fuzz", false, LOG_LVL_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/posuto-fuzz-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	for (const char *d = "mail\0mail/u\0mail/u/new\0mail/u/cur\0mail/u/tmp\0";
	    *d; d += strlen(d) + 1) {
		snprintf(p, sizeof(p), "%s/%s", dir, d);
		mkdir(p, 0700);
	}
	restore_mailbox();
	snprintf(p, sizeof(p), "%s/posuto.json", dir);
	f = fopen(p, "w");
	if (f == NULL)
		abort();
	/* "password": SHA256 hex, as JumboDogX stores it; APOP secret on so
	 * the APOP path is reachable too. */
	fprintf(f, "{\"Pop3Server\": {\"BindAddress\": \"127.0.0.1\", "
	    "\"MailDir\": \"%s/mail\", \"MailboxFormat\": \"maildir\", "
	    "\"AuthFailDelay\": 0, \"AllowPlaintextAuth\": true, "
	    "\"LogLevel\": \"error\", \"Users\": [{\"UserName\": \"u\", "
	    "\"Password\": \"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\", "
	    "\"HashType\": \"SHA256\", \"ApopSecret\": \"tanstaaf\"}]}}\n", dir);
	fclose(f);
	if (config_load(p, &cfg, stderr) != 0)
		abort();
	base = event_base_new();
	db = userdb_load(cfg, stderr);
	if (base == NULL || db == NULL)
		abort();
	env.rt = net_runtime_new(base);
	env.rt->wq = workq_new(base, 1);
	env.rt->iplimit = iplimit_new();
	/* cfg stays ours (the generation would free it) */
	net_runtime_set_gen(env.rt, net_gen_new(NULL, db, fuzz_userdb_unref,
	    NULL));
	env.params.idle_timeout = 5;
	env.params.auth_fail_delay_ms = 0;
	env.params.max_bad_commands = 10;
	env.params.allow_plaintext_auth = true;
	snprintf(env.hostname, sizeof(env.hostname), "fuzz.example");
	return 0;
}

struct client {
	int fd;
	const uint8_t *data;
	size_t size, off;
	struct event *ev;
};

static void
client_io(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	char buf[65536];

	if (what & EV_READ) {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
	if ((what & EV_WRITE) && c->off < c->size) {
		ssize_t n = write(fd, c->data + c->off, c->size - c->off);
		if (n > 0)
			c->off += (size_t)n;
		if (c->off == c->size) {
			shutdown(fd, SHUT_WR);
			event_del(c->ev);
			event_assign(c->ev, base, fd, EV_READ | EV_PERSIST,
			    client_io, c);
			event_add(c->ev, NULL);
		}
	}
}

static void
watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (env.n_sessions == 0 && workq_pending(env.rt->wq) == 0)
		event_base_loopbreak(base);
}

static bool
has_quit(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 4 <= size; i++) {
		if (toupper(data[i]) == 'Q' && toupper(data[i + 1]) == 'U' &&
		    toupper(data[i + 2]) == 'I' && toupper(data[i + 3]) == 'T')
			return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client c = { .data = data, .size = size };
	struct timeval tick = { .tv_sec = 0, .tv_usec = 1000 };
	struct event *wd;
	struct conn *conn;
	int sv[2];

	if (size > 65536)
		return 0;
	restore_mailbox();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		abort();
	c.fd = sv[1];
	c.ev = event_new(base, sv[1], EV_READ | EV_WRITE | EV_PERSIST,
	    client_io, &c);
	event_add(c.ev, NULL);
	conn = conn_new(base, sv[0], sv[0], NULL, 0, NULL, NULL, NULL);
	if (conn == NULL || !pop3_session_start(&env, conn))
		abort();
	wd = event_new(base, -1, EV_PERSIST, watchdog, NULL);
	event_add(wd, &tick);
	event_base_dispatch(base);
	event_free(wd);
	event_free(c.ev);
	close(sv[1]);
	/* I2: nothing is deleted by a session that never sent QUIT. */
	if (count_mailbox() != N_MSGS && !has_quit(data, size))
		abort();
	return 0;
}
