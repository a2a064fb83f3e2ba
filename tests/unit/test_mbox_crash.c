/*
 * test_mbox_crash.c - kill -9 during an mbox expunge, at every step and
 * at random moments, sometimes with an MTA appending before recovery and
 * sometimes killing the recovery too; then the mailbox must open, and
 * hold every kept message intact, nothing duplicated or joined, and the
 * deleted ones either all still there or all gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/mbox_int.h"

#define NMSG	30
#define TRIALS	160

static char dir[256], mbox[300];
static char *pristine;
static size_t pristine_len;
static char *want[NMSG + 1];	/* RETR text by message id; NMSG: MTA's */
static size_t want_len[NMSG + 1];
static char want_uidl[NMSG][64];

static unsigned rnd_state = 1;

static unsigned
rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

static void
put_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static struct mbox *
open_mb(void)
{
	struct mbox_opts o;
	struct mbox *mb = NULL;
	char err[256] = "";

	mbox_opts_init(&o);
	o.lock.timeout_ms = 5000;
	if (mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)) != MBOX_OK)
		fail_msg("open: %s", err);
	return mb;
}

static char *
retr(struct mbox *mb, uint32_t i, size_t *len_r)
{
	struct mbox_reader *r;
	size_t cap = 1 << 20, len = 0;
	char *b = malloc(cap);
	ssize_t n;

	assert_int_equal(mbox_msg_reader_open(mb, i, -1, &r), MBOX_OK);
	while ((n = mbox_msg_reader_read(r, b + len, 65536)) > 0) {
		len += (size_t)n;
		if (cap - len < 65536)
			b = realloc(b, cap *= 2);
	}
	mbox_msg_reader_close(&r);
	assert_int_equal(n, 0);
	*len_r = len;
	return b;
}

/* The id in "Subject: m<id>". */
static int
msg_id(const char *m)
{
	int id = -1;

	assert_int_equal(sscanf(m, "Subject: m%d", &id), 1);
	assert_true(id >= 0 && id <= NMSG);
	return id;
}

static void
unlink_side_files(void)
{
	char p[400];

	snprintf(p, sizeof(p), "%s.posuto-index", mbox);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s.posuto-journal", mbox);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s.posuto-journal.tmp", mbox);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s.lock", mbox);
	(void)unlink(p);
}

static const char mta_msg[] = "From mta@example.org  Tue Feb  4 05:06:07 "
    "2025\nSubject: m30\n\nappended by the MTA after the crash\n>From x\n\n";

static int
setup(void **state)
{
	size_t cap = 4 << 20, len = 0;
	struct mbox *mb;
	int i;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_mbox_crash_XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(mbox, sizeof(mbox), "%s/carol", dir);
	pristine = malloc(cap);
	for (i = 0; i < NMSG; i++) {
		/* sizes from tiny to several I/O chunks */
		size_t body = i % 7 == 3 ? 70000 + (size_t)i * 1000 :
		    40 + (size_t)i * 97;
		size_t k;

		len += (size_t)snprintf(pristine + len, 200, "From s%d@example."
		    "org  Mon Jan  6 10:%02d:00 2025\nSubject: m%d\n\n"
		    ">From quoted\n.dot\n", i, i, i);
		for (k = 0; k < body; k++)
			pristine[len++] = k % 61 == 60 ? '\n' :
			    (char)('a' + (k + (size_t)i) % 26);
		len += (size_t)snprintf(pristine + len, 20, "\nend %d\n\n", i);
	}
	pristine_len = len;
	put_file(mbox, pristine, pristine_len);
	put_file("/dev/null", "", 0);
	mb = open_mb();
	assert_int_equal(mbox_msg_count(mb), NMSG);
	for (i = 0; i < NMSG; i++) {
		char *m = retr(mb, (uint32_t)i, &want_len[i]);

		assert_int_equal(msg_id(m), i);
		want[i] = m;
		snprintf(want_uidl[i], 64, "%s", mbox_msg_uidl(mb, (uint32_t)i));
	}
	mbox_close(&mb);
	want[NMSG] = strdup("Subject: m30\r\n\r\nappended by the MTA after the "
	    "crash\r\nFrom x\r\n.\r\n");
	want_len[NMSG] = strlen(want[NMSG]);
	return 0;
}

static int
teardown(void **state)
{
	int i;

	(void)state;
	unlink_side_files();
	(void)unlink(mbox);
	(void)rmdir(dir);
	for (i = 0; i <= NMSG; i++)
		free(want[i]);
	free(pristine);
	return 0;
}

/* Child: expunge with a crash point (0: none); exits 0 if it finished. */
static pid_t
spawn_expunge(const uint8_t *del, unsigned crash_at, int ready_fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mbox *mb = NULL;
		struct mbox_opts o;
		char err[256];
		uint32_t n;

		mbox_opts_init(&o);
		if (mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)) !=
		    MBOX_OK)
			_exit(2);
		if (ready_fd >= 0) {
			(void)!write(ready_fd, "r", 1);
			close(ready_fd);
		}
		mbox_test_crash_after(crash_at);
		_exit(mbox_expunge(mb, del, &n, err, sizeof(err)) == MBOX_OK ?
		    0 : 3);
	}
	return pid;
}

/* Child: only open (runs the recovery), killed at crash point n. */
static void
crash_recovery(unsigned crash_at)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mbox *mb = NULL;
		struct mbox_opts o;
		char err[256];

		mbox_opts_init(&o);
		mbox_test_crash_after(crash_at);
		_exit(mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)) ==
		    MBOX_OK ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true((WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
	    (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
}

static void
check_mailbox(const uint8_t *del, bool mta, unsigned *applied,
    unsigned *not_applied)
{
	int count[NMSG + 1] = { 0 }, last = -1, i, ndel_present = 0, ndel = 0;
	struct mbox *mb = open_mb();
	uint32_t k, n = mbox_msg_count(mb);

	for (k = 0; k < n; k++) {
		size_t len;
		char *m = retr(mb, k, &len);
		int id = msg_id(m);

		/* intact byte for byte: not cut, not joined to the next */
		assert_int_equal(len, want_len[id]);
		assert_memory_equal(m, want[id], len);
		count[id]++;
		/* original order kept, the MTA's mail last */
		assert_true(id > last);
		last = id;
		if (id < NMSG)
			assert_string_equal(mbox_msg_uidl(mb, k), want_uidl[id]);
		free(m);
	}
	mbox_close(&mb);
	for (i = 0; i < NMSG; i++) {
		assert_true(count[i] <= 1);
		if (del[i]) {
			ndel++;
			ndel_present += count[i];
		} else
			assert_int_equal(count[i], 1);
	}
	assert_int_equal(count[NMSG], mta ? 1 : 0);
	/* all or nothing */
	assert_true(ndel_present == 0 || ndel_present == ndel);
	if (ndel_present == 0)
		(*applied)++;
	else
		(*not_applied)++;
}

static void
test_kill_during_expunge(void **state)
{
	unsigned applied = 0, not_applied = 0;
	int t;

	(void)state;
	for (t = 0; t < TRIALS; t++) {
		uint8_t del[NMSG];
		bool timed = t % 2 == 1, mta = t % 4 >= 2;
		pid_t pid;
		int st, i, pfd[2];

		rnd_state = (unsigned)t * 7919u + 1;
		unlink_side_files();
		put_file(mbox, pristine, pristine_len);
		for (i = 0; i < NMSG; i++)
			del[i] = rnd() % 3 == 0;
		del[rnd() % NMSG] = 1;
		if (timed) {
			struct timespec ts = { 0, (long)(rnd() % 4000) * 1000 };
			char c;

			assert_int_equal(pipe(pfd), 0);
			pid = spawn_expunge(del, 0, pfd[1]);
			close(pfd[1]);
			assert_int_equal(read(pfd[0], &c, 1), 1);
			close(pfd[0]);
			nanosleep(&ts, NULL);
			kill(pid, SIGKILL);
		} else
			pid = spawn_expunge(del, 1 + (unsigned)(t / 2) % 32, -1);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true((WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
		    (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
		if (mta) {
			/* an MTA that broke the dead child's dotlock */
			int fd = open(mbox, O_WRONLY | O_APPEND);

			assert_true(fd >= 0);
			assert_int_equal(write(fd, mta_msg, strlen(mta_msg)),
			    (ssize_t)strlen(mta_msg));
			close(fd);
		}
		if (t % 5 == 0)
			crash_recovery(1 + (unsigned)(t / 5) % 9);
		check_mailbox(del, mta, &applied, &not_applied);
		/* a journal killed before its rename is not left lying
		 * about (it can be as big as the mbox) */
		{
			char jtmp[400];

			snprintf(jtmp, sizeof(jtmp), "%s.posuto-journal.tmp",
			    mbox);
			assert_true(access(jtmp, F_OK) != 0);
		}
	}
	/* both outcomes were really exercised */
	print_message("expunge applied %u, not applied %u of %d trials\n",
	    applied, not_applied, TRIALS);
	assert_true(applied > 0 && not_applied > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kill_during_expunge,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
