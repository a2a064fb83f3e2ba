/*
 * test_store_contract.c - what every store driver promises (store.h),
 * run against each driver of the table.  A new driver adds one fixture
 * below (how to make an empty mailbox location in a scratch directory)
 * and no test code; test_every_driver_has_a_fixture fails until it does.
 * Messages get in only through store_deliver_*(), so nothing here knows
 * a driver's layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "sql/sql.h"
#include "store/store.h"
#include "store/store_driver.h"
#include "store/store_lock.h"

/* --- fixtures: one per driver ---------------------------------------- */

struct contract_driver {
	const char *name;
	/* An empty mailbox location inside the existing directory dir. */
	void (*make_empty)(const char *dir, char *loc, size_t locsz);
	/* The format cannot keep a message without a final newline
	 * (mbox: the blank line before the next From_ ends it): it is
	 * read back with "\n" added. */
	bool adds_final_newline;
	/* Keeps the wire form (sql: CRLF line ends, a final CRLF added):
	 * read back as wire_enc would send it, unstuffed. */
	bool stores_wire_form;
	/* A database store: no tmpfs to fill; a commit killed in a child
	 * is the child's own session (its connection drops), so the child
	 * opens the mailbox itself; variant names the database. */
	bool database;
	const char *variant;
	/* Called before the driver's group; false: skip it. */
	bool (*available)(const struct contract_driver *d);
	void (*remove)(const char *loc);
};

static void
maildir_empty(const char *dir, char *loc, size_t locsz)
{
	/* not created: the first delivery must make it (MaildirGuard) */
	(void)snprintf(loc, locsz, "maildir:%s/user/Maildir", dir);
}

static void
emldir_empty(const char *dir, char *loc, size_t locsz)
{
	char p[PATH_MAX];

	(void)snprintf(p, sizeof(p), "%s/user", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	(void)snprintf(loc, locsz, "emldir:%s", p);
}

static void
mbox_empty(const char *dir, char *loc, size_t locsz)
{
	/* a spool file not there yet, as /var/mail/u before the first mail */
	(void)snprintf(loc, locsz, "mbox:%s/user", dir);
}

/*
 * sql: a real database named by the environment (the integration test
 * test_sql_store.py starts PostgreSQL and MariaDB and runs this binary
 * with them):
 *   POSUTO_TEST_PGSQL / POSUTO_TEST_MYSQL = "HOST PORT DATABASE USER PWFILE"
 * with posuto's schema made by `posuto sql init`.  Without it the group
 * is skipped, unless POSUTO_TEST_SQL_REQUIRED names it ("pgsql mysql":
 * then that is a failure).
 * Each test gets a posuto_users row of its own, "sql:NAME".
 */
static struct sql_cfg sql_test_cfg;
static struct sql_pool *sql_test_pool;
static char sql_test_words[5][256];
static unsigned sql_test_seq;

static bool
sql_available(const struct contract_driver *d)
{
	bool pg = strcmp(d->variant, "pgsql") == 0;
	const char *env = getenv(pg ? "POSUTO_TEST_PGSQL" : "POSUTO_TEST_MYSQL");
	char err[SQL_ERR_MAX];

	sql_pool_free(&sql_test_pool);
	store_sql_configure(NULL);
	if (env == NULL || sscanf(env, "%255s %255s %255s %255s %255s",
	    sql_test_words[0], sql_test_words[1], sql_test_words[2],
	    sql_test_words[3], sql_test_words[4]) != 5) {
		print_message("%s: no database (POSUTO_TEST_%s): skipped\n",
		    d->variant, pg ? "PGSQL" : "MYSQL");
		return false;
	}
	memset(&sql_test_cfg, 0, sizeof(sql_test_cfg));
	sql_test_cfg.driver = pg ? SQL_DRIVER_PGSQL : SQL_DRIVER_MYSQL;
	sql_test_cfg.host = sql_test_words[0];
	sql_test_cfg.port = (unsigned)strtoul(sql_test_words[1], NULL, 10);
	sql_test_cfg.database = sql_test_words[2];
	sql_test_cfg.user = sql_test_words[3];
	sql_test_cfg.password_file = sql_test_words[4];
	sql_test_cfg.schema = SQL_SCHEMA_POSUTO;
	sql_test_cfg.connect_timeout = 5;
	sql_test_cfg.query_timeout = 20;
	sql_test_cfg.pool_size = 4;
	store_sql_configure(&sql_test_cfg);
	sql_test_pool = sql_pool_new(&sql_test_cfg, err, sizeof(err));
	if (sql_test_pool == NULL)
		print_message("%s: %s\n", d->variant, err);
	return sql_test_pool != NULL;
}

static void
sql_empty(const char *dir, char *loc, size_t locsz)
{
	char name[64], err[SQL_ERR_MAX];
	struct sql_param p;

	(void)dir;
	(void)snprintf(name, sizeof(name), "ctr-%ld-%u", (long)getpid(),
	    ++sql_test_seq);
	p = SQL_PARAM_STR(name);
	if (sql_pool_exec(sql_test_pool, "INSERT INTO posuto_users (name, "
	    "password) VALUES (?, '{PLAIN}x')", &p, 1, NULL, err,
	    sizeof(err)) != SQL_OK)
		fail_msg("insert user: %s", err);
	(void)snprintf(loc, locsz, "sql:%s", name);
}

static void
sql_remove(const char *loc)
{
	struct sql_param p = SQL_PARAM_STR(loc + 4);
	char err[SQL_ERR_MAX];

	(void)sql_pool_exec(sql_test_pool, "DELETE FROM posuto_users WHERE "
	    "name = ?", &p, 1, NULL, err, sizeof(err));
}

static const struct contract_driver contract_drivers[] = {
	{ "maildir", maildir_empty, false, false, false, NULL, NULL, NULL },
	{ "emldir", emldir_empty, false, false, false, NULL, NULL, NULL },
	{ "mbox", mbox_empty, true, false, false, NULL, NULL, NULL },
	/* needs a database (TPOPS's tables): no scratch-directory fixture;
	 * tests/integration/test_tpops.py holds it to its contract */
	{ "tpops", NULL, false, false, false, NULL, NULL, NULL },
	{ "sql", sql_empty, false, true, true, "pgsql", sql_available,
	    sql_remove },
	{ "sql", sql_empty, false, true, true, "mysql", sql_available,
	    sql_remove },
	{ NULL, NULL, false, false, false, NULL, NULL, NULL },
};

/* --- per-test state -------------------------------------------------- */

struct fx {
	const struct contract_driver *drv;
	char root[64];
	char loc[PATH_MAX + 16];
};

static const struct contract_driver *current;

/* The process's lock file, as the daemon opens one; a forked child opens
 * it again to be a lock owner of its own (store_lock.h). */
static char lock_path[64];

static bool
lock_file_reopen(void)
{
	char err[256];

	return store_lock_file_open(lock_path, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err));
}

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->drv = current;
	(void)snprintf(fx->root, sizeof(fx->root), "/tmp/posuto-ctr-XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	fx->drv->make_empty(fx->root, fx->loc, sizeof(fx->loc));
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->drv->remove != NULL)
		fx->drv->remove(fx->loc);
	(void)nftw(fx->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* --- helpers --------------------------------------------------------- */

static char *
deliver(const char *loc, const char *msg, size_t len)
{
	struct store_delivery *d;
	char err[256], id[256];

	assert_int_equal(store_deliver_begin(loc, "user", &d, err,
	    sizeof(err)), STORE_OK);
	/* streamed in uneven pieces, as a socket delivers it */
	for (size_t off = 0; off < len;) {
		size_t n = len - off < 7 ? len - off : 7;

		assert_int_equal(store_deliver_write(d, msg + off, n),
		    STORE_OK);
		off += n;
	}
	assert_int_equal(store_deliver_commit(&d, id, sizeof(id)), STORE_OK);
	assert_null(d);
	assert_true(id[0] != '\0');
	return strdup(id);
}

static char *make_msg_as_sent(unsigned n, size_t *len_r);

/* Message n as the current driver gives it back. */
static char *
make_msg_stored(unsigned n, size_t *len_r)
{
	char *m = make_msg_as_sent(n, len_r);

	if (current != NULL && current->stores_wire_form) {
		struct wire_enc we;
		char *w = malloc(2 * *len_r + WIRE_ENC_FINISH_MAX);
		size_t consumed, wlen;
		char *out = malloc(2 * *len_r + WIRE_ENC_FINISH_MAX);
		size_t olen = 0;

		/* the wire form, without the stuffing and the "." */
		assert_non_null(w);
		assert_non_null(out);
		wire_enc_init(&we, -1);
		wlen = wire_enc_update(&we, m, *len_r, w, 2 * *len_r,
		    &consumed);
		wlen += wire_enc_finish(&we, w + wlen);
		wlen -= 3;
		for (size_t i = 0; i < wlen; i++) {
			if (w[i] == '.' && (i == 0 || w[i - 1] == '\n'))
				i++;
			out[olen++] = w[i];
		}
		free(w);
		free(m);
		out[olen] = '\0';
		*len_r = olen;
		return out;
	}
	if (current != NULL && current->adds_final_newline &&
	    (*len_r == 0 || m[*len_r - 1] != '\n')) {
		m = realloc(m, *len_r + 2);
		assert_non_null(m);
		m[(*len_r)++] = '\n';
		m[*len_r] = '\0';
	}
	return m;
}

/* Message number n, with one of a few line-ending styles. */
static char *
make_msg_as_sent(unsigned n, size_t *len_r)
{
	char *m = NULL;
	int len;

	switch (n % 3) {
	case 0:		/* CRLF, already wire form */
		len = asprintf(&m, "Message-Id: <%u@contract>\r\n"
		    "Subject: crlf\r\n\r\nbody %u\r\n", n, n);
		break;
	case 1:		/* LF, as Postfix writes Maildir */
		len = asprintf(&m, "Message-Id: <%u@contract>\n"
		    "Subject: lf\n\nbody %u\n.dot line\n", n, n);
		break;
	default:	/* no final newline */
		len = asprintf(&m, "Message-Id: <%u@contract>\r\n\r\n"
		    "last line %u", n, n);
		break;
	}
	assert_true(len > 0);
	*len_r = (size_t)len;
	return m;
}

static void
deliver_n(const struct fx *fx, unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++) {
		size_t len;
		char *m = make_msg_as_sent(i, &len);

		free(deliver(fx->loc, m, len));
		free(m);
	}
}

static struct mailbox *
open_ok(const struct fx *fx)
{
	struct mailbox *mb = NULL;
	char err[256];

	assert_int_equal(mailbox_open(fx->loc, "user", &mb, err, sizeof(err)),
	    STORE_OK);
	assert_non_null(mb);
	return mb;
}

/* After a child holding the mailbox was killed: a database notices
 * the dropped connection a moment later (bounded wait). */
static struct mailbox *
open_after_kill(const struct fx *fx)
{
	struct mailbox *mb = NULL;
	enum store_status st = STORE_IN_USE;

	for (int i = 0; i < 250 && st == STORE_IN_USE; i++) {
		st = mailbox_open(fx->loc, "user", &mb, NULL, 0);
		if (st == STORE_IN_USE) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	assert_int_equal(st, STORE_OK);
	return mb;
}

/* The stored bytes of message idx (malloc'd). */
static char *
read_msg(struct mailbox *mb, uint32_t idx, size_t *len_r)
{
	struct msg_reader *r;
	size_t cap = 256, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	assert_int_equal(mailbox_msg_open(mb, idx, &r), STORE_OK);
	for (;;) {
		if (cap - len < 64)
			buf = realloc(buf, cap *= 2);
		assert_non_null(buf);
		n = msg_reader_read(r, buf + len, cap - len);
		if (n < 0 && errno == EAGAIN) {
			/* a store behind a server: fetch, as a worker would */
			assert_int_equal(msg_reader_fill(r), STORE_OK);
			continue;
		}
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	msg_reader_close(&r);
	assert_null(r);
	*len_r = len;
	return buf;
}

static uint64_t
wire_octets(const char *buf, size_t len)
{
	struct wire_size ws;

	wire_size_init(&ws);
	wire_size_update(&ws, buf, len);
	return wire_size_final(&ws);
}

/* The message number in a "Message-Id: <n@contract>" header. */
static unsigned
msg_number(const char *buf, size_t len)
{
	const char *p = memmem(buf, len, "Message-Id: <", 13);

	assert_non_null(p);
	return (unsigned)strtoul(p + 13, NULL, 10);
}

/* --- the contract ---------------------------------------------------- */

static void
test_open_empty(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb = open_ok(fx);

	assert_int_equal(mailbox_count(mb), 0);
	assert_int_equal(mailbox_total_size(mb), 0);
	assert_false(mailbox_commit_needed(mb, (const uint8_t *)"\0"));
	mailbox_close(&mb);
	assert_null(mb);
}

/* LIST sizes are the wire octets of what RETR sends, the total their
 * sum, and a zero-copy fd holds exactly the wire form. */
static void
test_sizes_are_wire_octets(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	uint64_t sum = 0;

	deliver_n(fx, 0, 6);
	mb = open_ok(fx);
	assert_int_equal(mailbox_count(mb), 6);
	for (uint32_t i = 0; i < 6; i++) {
		size_t len, olen;
		char *buf = read_msg(mb, i, &len);
		char *orig = make_msg_stored(msg_number(buf, len), &olen);
		struct msg_reader *r;
		off_t off, wlen;
		int fd;

		/* stored as delivered, in delivery order */
		assert_int_equal(msg_number(buf, len), i);
		assert_int_equal(len, olen);
		assert_memory_equal(buf, orig, len);
		assert_int_equal(mailbox_msg_size(mb, i), wire_octets(buf, len));
		sum += mailbox_msg_size(mb, i);

		assert_int_equal(mailbox_msg_open(mb, i, &r), STORE_OK);
		if ((fd = msg_reader_wire_fd(r, &off, &wlen)) != -1) {
			struct wire_enc we;
			char *enc = malloc(2 * len + WIRE_ENC_FINISH_MAX);
			char *got = malloc((size_t)wlen + 3);
			size_t consumed, elen;

			wire_enc_init(&we, -1);
			elen = wire_enc_update(&we, buf, len, enc, 2 * len,
			    &consumed);
			elen += wire_enc_finish(&we, enc + elen);
			assert_int_equal(pread(fd, got, (size_t)wlen, off),
			    wlen);
			memcpy(got + wlen, ".\r\n", 3);
			assert_int_equal((size_t)wlen + 3, elen);
			assert_memory_equal(got, enc, elen);
			free(enc);
			free(got);
		}
		msg_reader_close(&r);
		free(buf);
		free(orig);
	}
	assert_int_equal(mailbox_total_size(mb), sum);
	mailbox_close(&mb);
}

static void
test_uidl_stable_and_unique(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char *uidl[5];

	deliver_n(fx, 0, 5);
	mb = open_ok(fx);
	for (uint32_t i = 0; i < 5; i++) {
		const char *u = mailbox_msg_uidl(mb, i);
		size_t n = strlen(u);

		assert_true(n >= 1 && n <= 70);
		for (size_t k = 0; k < n; k++)
			assert_true(u[k] >= 0x21 && u[k] <= 0x7e);
		for (uint32_t j = 0; j < i; j++)
			assert_string_not_equal(uidl[j], u);
		uidl[i] = strdup(u);
	}
	/* reading and seen state change nothing a client sees */
	mailbox_msg_mark_seen(mb, 1);
	assert_true(mailbox_commit_needed(mb, (const uint8_t *)"\0"));
	{
		uint32_t n = 9;

		assert_int_equal(mailbox_commit(mb, NULL, &n), STORE_OK);
		assert_int_equal(n, 0);
	}
	mailbox_close(&mb);
	for (int round = 0; round < 2; round++) {
		mb = open_ok(fx);
		assert_int_equal(mailbox_count(mb), 5);
		for (uint32_t i = 0; i < 5; i++)
			assert_string_equal(mailbox_msg_uidl(mb, i), uidl[i]);
		mailbox_close(&mb);
	}
	for (int i = 0; i < 5; i++)
		free(uidl[i]);
}

static void
test_delete_only_at_commit(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	uint8_t del[1] = { 0x05 };	/* messages 1 and 3 (idx 0, 2) */
	char *keep[2];
	uint32_t n = 0;

	deliver_n(fx, 0, 4);
	mb = open_ok(fx);
	keep[0] = strdup(mailbox_msg_uidl(mb, 1));
	keep[1] = strdup(mailbox_msg_uidl(mb, 3));
	assert_true(mailbox_commit_needed(mb, del));
	mailbox_close(&mb);		/* no commit: nothing goes */

	mb = open_ok(fx);
	assert_int_equal(mailbox_count(mb), 4);
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	assert_int_equal(n, 2);
	mailbox_close(&mb);

	mb = open_ok(fx);
	assert_int_equal(mailbox_count(mb), 2);
	assert_string_equal(mailbox_msg_uidl(mb, 0), keep[0]);
	assert_string_equal(mailbox_msg_uidl(mb, 1), keep[1]);
	mailbox_close(&mb);
	free(keep[0]);
	free(keep[1]);
}

/* Mail delivered during a session is not in its snapshot, is not
 * touched by its commit, and is in the next one. */
static void
test_deliver_during_session(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	uint8_t del[1] = { 0x01 };
	uint32_t n = 0;
	size_t len;
	char *buf;

	deliver_n(fx, 0, 2);
	mb = open_ok(fx);
	assert_int_equal(mailbox_count(mb), 2);
	deliver_n(fx, 2, 1);		/* needs no lock */
	assert_int_equal(mailbox_count(mb), 2);
	mailbox_msg_mark_seen(mb, 1);
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	assert_int_equal(n, 1);
	mailbox_close(&mb);

	mb = open_ok(fx);
	assert_int_equal(mailbox_count(mb), 2);
	buf = read_msg(mb, 1, &len);
	assert_int_equal(msg_number(buf, len), 2);
	free(buf);
	mailbox_close(&mb);
}

static void
test_concurrent_open_in_use(void **state)
{
	struct fx *fx = *state;
	struct mailbox *a, *b = NULL;
	char err[256];
	pid_t pid;
	int status;

	deliver_n(fx, 0, 1);
	a = open_ok(fx);
	assert_int_equal(mailbox_open(fx->loc, "user", &b, err, sizeof(err)),
	    STORE_IN_USE);
	assert_null(b);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mailbox *c = NULL;

		if (!lock_file_reopen())	/* another process's view */
			_exit(2);
		_exit(mailbox_open(fx->loc, "user", &c, NULL, 0) ==
		    STORE_IN_USE ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	mailbox_close(&a);
	b = open_ok(fx);		/* released */
	mailbox_close(&b);
}

/* A delivery not committed is never seen: aborted, still being written,
 * or its writer killed. */
static void
test_partial_delivery_invisible(void **state)
{
	struct fx *fx = *state;
	struct store_delivery *d;
	struct mailbox *mb;
	pid_t pid;
	int status;
	size_t len;
	char *m = make_msg_as_sent(7, &len);

	deliver_n(fx, 0, 1);
	assert_int_equal(store_deliver_begin(fx->loc, "user", &d, NULL, 0),
	    STORE_OK);
	assert_int_equal(store_deliver_write(d, m, len / 2), STORE_OK);
	mb = open_ok(fx);
	assert_int_equal(mailbox_count(mb), 1);
	mailbox_close(&mb);
	store_deliver_abort(&d);
	assert_null(d);
	store_deliver_abort(&d);	/* NULL is fine */

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store_delivery *cd;

		if (store_deliver_begin(fx->loc, "user", &cd, NULL, 0) ==
		    STORE_OK)
			(void)store_deliver_write(cd, m, len);
		raise(SIGKILL);
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));

	mb = open_ok(fx);
	assert_int_equal(mailbox_count(mb), 1);
	mailbox_close(&mb);
	free(m);
}

/* A commit killed at any point loses nothing it was not told to delete
 * and duplicates nothing. */
static void
test_crash_during_commit(void **state)
{
	struct fx *fx = *state;
	enum { N = 40, ROUNDS = 12 };
	bool gone[N] = { false };
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int killed = 0;

	deliver_n(fx, 0, N);
	print_message("crash seed %u\n", seed);
	for (int round = 0; round < ROUNDS; round++) {
		struct mailbox *mb = open_ok(fx);
		uint32_t count = mailbox_count(mb);
		uint8_t del[(N + 7) / 8] = { 0 };
		bool marked[N] = { false };
		bool seen[N] = { false };
		bool seen_idx[N] = { false };
		int status;
		pid_t pid;

		/* mark a few, remember which (by message number) */
		for (uint32_t i = 0; i < count; i++) {
			size_t len;
			char *buf = read_msg(mb, i, &len);
			unsigned num = msg_number(buf, len);

			free(buf);
			if (rand_r(&seed) % 4 == 0) {
				del[i / 8] |= (uint8_t)(1u << (i % 8));
				marked[num] = true;
			} else if (rand_r(&seed) % 2 == 0) {
				mailbox_msg_mark_seen(mb, i);
				seen_idx[i] = true;
			}
		}
		/* A database store: the child's commit is its own session's
		 * (it dies with its connection), on a mailbox it opens. */
		if (current->database)
			mailbox_close(&mb);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct mailbox *cm = mb;
			uint32_t n;

			if (current->database) {
				if (mailbox_open(fx->loc, "user", &cm, NULL,
				    0) != STORE_OK || mailbox_count(cm) != count)
					_exit(3);
				for (uint32_t i = 0; i < count; i++)
					if (seen_idx[i])
						mailbox_msg_mark_seen(cm, i);
			}
			(void)mailbox_commit(cm, del, &n);
			_exit(0);
		}
		/* the parent's copy must not commit or unlock for the
		 * child: close it only after the child is gone */
		{
			/* a child that connects first needs longer */
			long us = current->database ? 120000 : 3000;
			struct timespec ts = { 0,
			    (long)(rand_r(&seed) % us) * 1000 };

			nanosleep(&ts, NULL);
		}
		(void)kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		killed += WIFSIGNALED(status);
		assert_true(WIFSIGNALED(status) || WEXITSTATUS(status) == 0);
		mailbox_close(&mb);

		mb = open_after_kill(fx);
		for (uint32_t i = 0; i < mailbox_count(mb); i++) {
			size_t len, olen;
			char *buf = read_msg(mb, i, &len);
			unsigned num = msg_number(buf, len);
			char *orig;

			assert_true(num < N);
			assert_false(gone[num]);	/* no resurrection */
			assert_false(seen[num]);	/* no duplicate */
			seen[num] = true;
			orig = make_msg_stored(num, &olen);
			assert_int_equal(len, olen);	/* intact */
			assert_memory_equal(buf, orig, len);
			free(orig);
			free(buf);
		}
		for (unsigned k = 0; k < N; k++) {
			if (!gone[k] && !marked[k])
				assert_true(seen[k]);	/* nothing lost */
			if (!seen[k])
				gone[k] = true;
		}
		mailbox_close(&mb);
	}
	print_message("%d of %d commits killed\n", killed, ROUNDS);
}

/* Out of space: a temporary failure, and nothing half-written shows. */
static void
test_enospc_is_temporary(void **state)
{
	struct fx *fx = *state;
	char mnt[PATH_MAX], loc[PATH_MAX + 16];
	struct store_delivery *d;
	enum store_status st = STORE_OK;
	struct mailbox *mb = NULL;
	char *big;

	if (fx->drv->database) {
		print_message("a database's space is not ours to fill: "
		    "skipped\n");
		skip();
	}
	(void)snprintf(mnt, sizeof(mnt), "%s/tiny", fx->root);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") == -1) {
		print_message("tmpfs not mountable (%s): skipped\n",
		    strerror(errno));
		skip();
	}
	fx->drv->make_empty(mnt, loc, sizeof(loc));
	big = malloc(1 << 20);
	assert_non_null(big);
	memset(big, 'x', 1 << 20);
	memcpy(big, "Message-Id: <1@contract>\r\n\r\n", 29);
	if (store_deliver_begin(loc, "user", &d, NULL, 0) == STORE_OK) {
		for (int i = 0; i < 4 && st == STORE_OK; i++)
			st = store_deliver_write(d, big, 1 << 20);
		if (st == STORE_OK)
			st = store_deliver_commit(&d, NULL, 0);
		else
			store_deliver_abort(&d);
	} else {
		st = STORE_TEMP;
	}
	assert_int_equal(st, STORE_TEMP);
	assert_int_equal(mailbox_open(loc, "user", &mb, NULL, 0), STORE_OK);
	assert_int_equal(mailbox_count(mb), 0);
	mailbox_close(&mb);
	free(big);
	(void)umount(mnt);
}

/* --- independent of any driver ---------------------------------------- */

static void
test_every_driver_has_a_fixture(void **state)
{
	(void)state;
	for (size_t i = 0; store_drivers[i] != NULL; i++) {
		bool found = false;

		for (size_t k = 0; contract_drivers[k].name != NULL; k++)
			if (strcmp(contract_drivers[k].name,
			    store_drivers[i]->name) == 0)
				found = true;
		assert_true(found);
		assert_ptr_equal(store_driver_find(store_drivers[i]->name),
		    store_drivers[i]);
	}
	/* the MailboxFormat names config accepts */
	assert_non_null(store_driver_find("maildir"));
	assert_non_null(store_driver_find("Maildir"));
	assert_non_null(store_driver_find("emldir"));
	assert_null(store_driver_find("auto"));
	assert_non_null(store_driver_find("mbox"));
	assert_null(store_driver_find("mboxrd"));
}

static void
test_bad_locations(void **state)
{
	static const char *const bad[] = {
		"/var/mail/u", "nosuch:/var/mail/u", ":/x", "maildir:relative",
		"maildir:", "",
	};
	struct mailbox *mb = NULL;
	struct store_delivery *d = NULL;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mailbox_open(bad[i], "u", &mb, err,
		    sizeof(err)), STORE_PERM);
		assert_null(mb);
		assert_true(strlen(err) > 0);
		assert_int_equal(store_deliver_begin(bad[i], "u", &d, err,
		    sizeof(err)), STORE_PERM);
		assert_null(d);
		err[0] = '\0';
	}
	assert_int_equal(mailbox_open("nosuch:/x", "u", &mb, err,
	    sizeof(err)), STORE_PERM);
	assert_non_null(strstr(err, "unknown store \"nosuch\""));
	assert_non_null(strstr(err, "maildir"));
}

/* auto: a fresh location becomes a Maildir at the first delivery and
 * is read as one; an existing plain directory is emldir. */
static void
test_auto_location(void **state)
{
	char root[64] = "/tmp/posuto-ctr-XXXXXX", loc[256], p[256];
	struct mailbox *mb;
	struct stat st;
	char *id;

	(void)state;
	assert_non_null(mkdtemp(root));
	(void)snprintf(loc, sizeof(loc), "auto:%s/a", root);
	id = deliver(loc, "Subject: x\r\n\r\nx\r\n", 17);
	/* maildir names carry the stored size and the wire (LIST) size,
	 * whatever the line ends, as Dovecot's S= and W= */
	assert_non_null(strstr(id, ",S=17,W=17"));
	(void)snprintf(p, sizeof(p), "%s/a/new/%s", root, id);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	(void)snprintf(p, sizeof(p), "%s/a/cur", root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	free(id);
	id = deliver(loc, "Subject: lf\n\nx\n", 15);
	assert_non_null(strstr(id, ",S=15,W=18"));
	free(id);
	assert_int_equal(mailbox_open(loc, "u", &mb, NULL, 0), STORE_OK);
	assert_int_equal(mailbox_count(mb), 2);
	assert_int_equal(mailbox_msg_size(mb, 0), 17);
	assert_int_equal(mailbox_msg_size(mb, 1), 18);	/* CRLF on the wire */
	mailbox_close(&mb);

	(void)snprintf(p, sizeof(p), "%s/b", root);
	assert_int_equal(mkdir(p, 0700), 0);
	(void)snprintf(loc, sizeof(loc), "auto:%s/b", root);
	id = deliver(loc, "Subject: y\r\n\r\ny\r\n", 17);
	assert_string_equal(id, "1.eml");
	free(id);
	id = deliver(loc, "Subject: z\r\n\r\nz\r\n", 17);
	assert_string_equal(id, "2.eml");
	free(id);
	assert_int_equal(mailbox_open(loc, "u", &mb, NULL, 0), STORE_OK);
	assert_int_equal(mailbox_count(mb), 2);
	mailbox_close(&mb);
	(void)nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static const struct CMUnitTest contract_tests[] = {
	cmocka_unit_test_setup_teardown(test_open_empty, setup, teardown),
	cmocka_unit_test_setup_teardown(test_sizes_are_wire_octets, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_uidl_stable_and_unique, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_delete_only_at_commit, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_deliver_during_session, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_concurrent_open_in_use, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_partial_delivery_invisible, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_crash_during_commit, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_enospc_is_temporary, setup,
	    teardown),
};

int
main(void)
{
	static const struct CMUnitTest common_tests[] = {
		cmocka_unit_test(test_every_driver_has_a_fixture),
		cmocka_unit_test(test_bad_locations),
		cmocka_unit_test(test_auto_location),
	};
	int failed, fd;

	log_init("test_store_contract", false, LOG_LVL_ERROR);
	(void)snprintf(lock_path, sizeof(lock_path), "/tmp/posuto-lock-XXXXXX");
	if ((fd = mkstemp(lock_path)) == -1)
		return 1;
	close(fd);
	if (!lock_file_reopen())
		return 1;
	failed = cmocka_run_group_tests_name("store_common", common_tests,
	    NULL, NULL);
	for (size_t i = 0; contract_drivers[i].name != NULL; i++) {
		char group[64];

		current = &contract_drivers[i];
		if (current->make_empty == NULL)
			continue;
		if (current->available != NULL && !current->available(current)) {
			/* the integration run must not pass by skipping */
			const char *req = getenv("POSUTO_TEST_SQL_REQUIRED");

			if (req != NULL && current->variant != NULL &&
			    strstr(req, current->variant) != NULL)
				failed++;
			continue;
		}
		(void)snprintf(group, sizeof(group), "store_contract_%s%s%s",
		    current->name, current->variant != NULL ? "_" : "",
		    current->variant != NULL ? current->variant : "");
		failed += _cmocka_run_group_tests(group, contract_tests,
		    sizeof(contract_tests) / sizeof(contract_tests[0]), NULL,
		    NULL);
	}
	sql_pool_free(&sql_test_pool);
	store_sql_configure(NULL);
	unlink(lock_path);
	return failed;
}
