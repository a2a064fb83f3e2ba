/* test_mbox_store.c - mbox snapshots, the size index, the reader, append,
 * expunge, locking against other programs and concurrent appends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/mbox_int.h"
#include "store/mbox_store.h"

static char dir[256], mbox[300];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_mbox_XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(mbox, sizeof(mbox), "%s/bob", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[600];
	pid_t pid;
	int st;

	(void)state;
	/* rm -rf without a shell */
	snprintf(cmd, sizeof(cmd), "%s", dir);
	pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", cmd, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	return 0;
}

static void
write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static char *
read_file(const char *path, size_t *len_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	char *b;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
	b[st.st_size] = '\0';
	close(fd);
	if (len_r)
		*len_r = (size_t)st.st_size;
	return b;
}

static struct mbox *
open_ok(void)
{
	struct mbox_opts o;
	struct mbox *mb = NULL;
	char err[256] = "";

	mbox_opts_init(&o);
	o.lock.timeout_ms = 2000;
	if (mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)) != MBOX_OK)
		fail_msg("open: %s", err);
	return mb;
}

/* RETR of message i; NULL if the reader failed. */
static char *
retr(struct mbox *mb, uint32_t i, long long top, size_t *len_r)
{
	struct mbox_reader *r;
	size_t cap = 1 << 16, len = 0;
	char *b = malloc(cap);
	ssize_t n;

	assert_int_equal(mbox_msg_reader_open(mb, i, top, &r), MBOX_OK);
	/* small reads exercise every buffer boundary */
	while ((n = mbox_msg_reader_read(r, b + len, 8 + (len % 13))) > 0) {
		len += (size_t)n;
		if (cap - len < 64)
			b = realloc(b, cap *= 2);
	}
	mbox_msg_reader_close(&r);
	if (n < 0) {
		free(b);
		return NULL;
	}
	b[len] = '\0';
	*len_r = len;
	return b;
}

#define FROM(x) "From " x "  Mon Jan  6 10:00:00 2025\n"

static void
test_snapshot_reader(void **state)
{
	struct mbox *mb;
	size_t len;
	char *w;

	(void)state;
	write_file(mbox, FROM("a") "Subject: one\n\n>From the start\n"
	    ".dot line\n>>From x\n\n" FROM("b") "Subject: two\r\n\r\nb\r\n\n");
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 2);
	w = retr(mb, 0, -1, &len);
	assert_string_equal(w, "Subject: one\r\n\r\nFrom the start\r\n"
	    "..dot line\r\n>From x\r\n.\r\n");
	/* the size is the wire form before dot-stuffing, without ".\r\n" */
	assert_int_equal(mbox_msg_size(mb, 0), len - 3 - 1);
	free(w);
	w = retr(mb, 1, -1, &len);
	assert_string_equal(w, "Subject: two\r\n\r\nb\r\n.\r\n");
	assert_int_equal(mbox_msg_size(mb, 1), len - 3);
	free(w);
	w = retr(mb, 0, 1, &len);	/* TOP 1 */
	assert_string_equal(w, "Subject: one\r\n\r\nFrom the start\r\n.\r\n");
	free(w);
	assert_int_equal(mbox_total_size(mb),
	    mbox_msg_size(mb, 0) + mbox_msg_size(mb, 1));
	assert_string_not_equal(mbox_msg_uidl(mb, 0), mbox_msg_uidl(mb, 1));
	assert_int_equal(strlen(mbox_msg_uidl(mb, 0)), 24);
	mbox_close(&mb);
}

static void
test_missing_and_bad(void **state)
{
	struct mbox_opts o;
	struct mbox *mb;
	char err[256];

	(void)state;
	mb = open_ok();		/* no file yet: empty, not an error */
	assert_int_equal(mbox_msg_count(mb), 0);
	mbox_close(&mb);
	write_file(mbox, "Subject: not an mbox\n\nx\n");
	mbox_opts_init(&o);
	assert_int_equal(mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)),
	    MBOX_PERM);
	assert_null(mb);
	assert_int_equal(mkdir(mbox, 0700) == 0 || unlink(mbox) == 0, 1);
}

static ssize_t
str_reader(void *ctx, void *buf, size_t len)
{
	const char **s = ctx;
	size_t n = strlen(*s);

	if (n > len)
		n = len;
	if (n > 3)	/* short reads on purpose */
		n = 3;
	memcpy(buf, *s, n);
	*s += n;
	return (ssize_t)n;
}

static void
append(const char *body)
{
	struct mbox_opts o;
	const char *p = body;
	char err[256] = "";

	mbox_opts_init(&o);
	o.lock.timeout_ms = 5000;
	if (mbox_append(mbox, &o, "sender@example.org", time(NULL),
	    str_reader, NULL, &p, err, sizeof(err)) != MBOX_OK)
		fail_msg("append: %s", err);
}

static void
test_append_roundtrip_and_warm_index(void **state)
{
	struct mbox *mb;
	char *w, u0[64], u1[64];
	size_t len, flen;

	(void)state;
	append("Subject: 1\n\nFrom here\n>From there\nlast");
	append("Subject: 2\n\n.\n");
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 2);
	assert_true(mbox_bytes_parsed(mb) > 0);
	w = retr(mb, 0, -1, &len);
	assert_string_equal(w, "Subject: 1\r\n\r\nFrom here\r\n>From there"
	    "\r\nlast\r\n.\r\n");
	free(w);
	snprintf(u0, sizeof(u0), "%s", mbox_msg_uidl(mb, 0));
	snprintf(u1, sizeof(u1), "%s", mbox_msg_uidl(mb, 1));
	mbox_close(&mb);
	free(read_file(mbox, &flen));

	/* warm: reads no message */
	mb = open_ok();
	assert_int_equal(mbox_bytes_parsed(mb), 0);
	assert_int_equal(mbox_msg_count(mb), 2);
	assert_string_equal(mbox_msg_uidl(mb, 0), u0);
	mbox_close(&mb);

	/* grown: only the last known message and the new one are read */
	append("Subject: 3\n\nthree\n");
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 3);
	assert_true(mbox_bytes_parsed(mb) > 0);
	assert_true(mbox_bytes_parsed(mb) < flen);
	assert_string_equal(mbox_msg_uidl(mb, 0), u0);
	assert_string_equal(mbox_msg_uidl(mb, 1), u1);
	w = retr(mb, 2, -1, &len);
	assert_string_equal(w, "Subject: 3\r\n\r\nthree\r\n.\r\n");
	free(w);
	mbox_close(&mb);
}

static ssize_t
failing_reader(void *ctx, void *buf, size_t len)
{
	int *calls = ctx;

	if ((*calls)++ == 3) {
		errno = EIO;
		return -1;
	}
	memset(buf, 'x', len > 100 ? 100 : len);
	return len > 100 ? 100 : (ssize_t)len;
}

static void
test_append_failure_truncates(void **state)
{
	struct mbox_opts o;
	char err[256], *before, *after;
	size_t blen, alen;
	int calls = 0, st;
	pid_t pid;

	(void)state;
	append("Subject: keep\n\nx\n");
	before = read_file(mbox, &blen);
	mbox_opts_init(&o);
	assert_int_equal(mbox_append(mbox, &o, "s", time(NULL),
	    failing_reader, NULL, &calls, err, sizeof(err)), MBOX_TEMP);
	after = read_file(mbox, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(after);

	/* a write failure part way (file size limit: EFBIG, like ENOSPC) */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { blen + 1000, blen + 1000 };
		char big[5000];
		const char *p = big;

		signal(SIGXFSZ, SIG_IGN);
		memset(big, 'y', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		setrlimit(RLIMIT_FSIZE, &rl);
		_exit(mbox_append(mbox, &o, "s", time(NULL), str_reader, NULL,
		    &p, err, sizeof(err)) == MBOX_TEMP ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	after = read_file(mbox, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(after);
	free(before);
}

static void
test_reader_detects_change(void **state)
{
	struct mbox *mb;
	size_t len;
	char *w;
	int fd;

	(void)state;
	write_file(mbox, FROM("a") "Subject: x\n\nhello\n");
	mb = open_ok();
	/* same size, same inode, one byte changed in place */
	fd = open(mbox, O_WRONLY);
	assert_int_equal(pwrite(fd, "J", 1, (off_t)strlen(FROM("a")) + 13),
	    1);
	close(fd);
	w = retr(mb, 0, -1, &len);
	assert_null(w);		/* never handed out as complete */
	mbox_close(&mb);
	/* shrunk: refused at open */
	mb = open_ok();
	assert_int_equal(truncate(mbox, 10), 0);
	{
		struct mbox_reader *r;

		assert_int_equal(mbox_msg_reader_open(mb, 0, -1, &r),
		    MBOX_CHANGED);
	}
	mbox_close(&mb);
}

/* UW c-client's headers (mbox_compat.c): hidden from RETR, TOP and the
 * size, the pseudo-message unlisted and kept by an expunge; a change to
 * a hidden line under a RETR is still caught by the digest. */
#define UW_PSEUDO FROM("MAILER-DAEMON") "Subject: DON'T DELETE THIS " \
	"MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 0000000777 0000000002\n" \
	"Status: RO\n\nfolder data\n\n"
#define UW_MSG(n) FROM("a") "Subject: " #n "\nStatus: RO\nX-Status: \n" \
	"X-Keywords:    \n\tcontinued\nX-UID: " #n "\n\nbody " #n "\n\n"

static void
test_uw_headers_hidden(void **state)
{
	struct mbox_opts o;
	struct mbox *mb = NULL;
	char err[256] = "";
	const char *want = "Subject: 1\r\n\r\nbody 1\r\n.\r\n";
	uint8_t del[2] = { 1, 0 };
	uint32_t nd = 0;
	size_t len;
	char *w, *left;
	int fd;

	(void)state;
	write_file(mbox, UW_PSEUDO UW_MSG(1) UW_MSG(2));
	mbox_opts_init(&o);
	o.lock.timeout_ms = 2000;
	o.compat = MBOX_COMPAT_UW_AUTO;
	assert_int_equal(mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)),
	    MBOX_OK);
	assert_int_equal(mbox_compat_used(mb), MBOX_COMPAT_UW);
	assert_int_equal(mbox_msg_count(mb), 2);
	assert_string_equal(mbox_msg_uidl(mb, 0), "0000030900000001");
	assert_string_equal(mbox_msg_uidl(mb, 1), "0000030900000002");
	assert_int_equal(mbox_msg_size(mb, 0), strlen(want) - 3);
	assert_int_equal(mbox_total_size(mb), 2 * (strlen(want) - 3));
	w = retr(mb, 0, -1, &len);
	assert_non_null(w);
	assert_string_equal(w, want);
	free(w);
	w = retr(mb, 1, 0, &len);
	assert_non_null(w);
	assert_string_equal(w, "Subject: 2\r\n\r\n.\r\n");
	free(w);
	/* one byte of a hidden line changes in place: never complete */
	fd = open(mbox, O_WRONLY);
	assert_int_equal(pwrite(fd, "9", 1, (off_t)(strlen(UW_PSEUDO) +
	    2 * strlen(UW_MSG(1)) - strlen("2\n\nbody 2\n\n"))), 1);
	close(fd);
	assert_null(retr(mb, 1, -1, &len));
	mbox_close(&mb);
	/* an expunge of listed message 1 keeps the pseudo-message */
	write_file(mbox, UW_PSEUDO UW_MSG(1) UW_MSG(2));
	assert_int_equal(mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)),
	    MBOX_OK);
	assert_int_equal(mbox_expunge(mb, del, &nd, err, sizeof(err)),
	    MBOX_OK);
	assert_int_equal(nd, 1);
	mbox_close(&mb);
	left = read_file(mbox, NULL);
	assert_string_equal(left, UW_PSEUDO UW_MSG(2));
	free(left);
	/* without compat: the plain file, every message, nothing hidden */
	o.compat = MBOX_COMPAT_NONE;
	assert_int_equal(mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)),
	    MBOX_OK);
	assert_int_equal(mbox_msg_count(mb), 2);
	mbox_close(&mb);
}

/* qpopper (mbox_compat.c): its X-UIDL line moved before Status:, the
 * Content-Length line not sent but counted, the blank line before the
 * next From_ line sent; a change under a RETR, to the data or to that
 * blank line, is never complete. */
#define Q_MSG1 FROM("a") "X-UIDL: 0123456789abcdef\nSubject: 1\n" \
	"Content-Length: 7\nStatus: RO\n\nbody 1\n\n"
#define Q_MSG2 FROM("b") "Subject: 2\n\nnew mail\n\n"

static void
test_qpopper_view(void **state)
{
	struct mbox_opts o;
	struct mbox *mb = NULL;
	char err[256] = "";
	const char *want = "Subject: 1\r\nX-UIDL: 0123456789abcdef\r\n"
	    "Status: RO\r\n\r\nbody 1\r\n\r\n.\r\n";
	size_t len;
	char *w;
	int fd;

	(void)state;
	write_file(mbox, Q_MSG1 Q_MSG2);
	mbox_opts_init(&o);
	o.lock.timeout_ms = 2000;
	o.compat = MBOX_COMPAT_QPOPPER;
	assert_int_equal(mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err)),
	    MBOX_OK);
	assert_int_equal(mbox_msg_count(mb), 2);
	assert_string_equal(mbox_msg_uidl(mb, 0), "0123456789abcdef");
	/* LIST: what is sent plus the Content-Length line and its CR */
	assert_int_equal(mbox_msg_size(mb, 0), strlen(want) - 3 +
	    strlen("Content-Length: 7\n") + 1);
	assert_true(mbox_msg_size_is_hint(mb, 0));
	assert_false(mbox_msg_size_is_hint(mb, 1));
	w = retr(mb, 0, -1, &len);
	assert_non_null(w);
	assert_string_equal(w, want);
	free(w);
	w = retr(mb, 0, 0, &len);
	assert_non_null(w);
	assert_string_equal(w, "Subject: 1\r\nX-UIDL: 0123456789abcdef\r\n"
	    "Status: RO\r\n\r\n.\r\n");
	free(w);
	/* new mail: as stored */
	w = retr(mb, 1, -1, &len);
	assert_non_null(w);
	assert_string_equal(w, "Subject: 2\r\n\r\nnew mail\r\n.\r\n");
	free(w);
	/* a dropped line changes: caught */
	fd = open(mbox, O_WRONLY);
	assert_int_equal(pwrite(fd, "8", 1, (off_t)(strlen(FROM("a")) +
	    strlen("X-UIDL: 0123456789abcdef\nSubject: 1\nContent-Length: "))),
	    1);
	assert_null(retr(mb, 0, -1, &len));
	/* the blank line before the next From_ line: caught too */
	assert_int_equal(pwrite(fd, "7", 1, (off_t)(strlen(FROM("a")) +
	    strlen("X-UIDL: 0123456789abcdef\nSubject: 1\nContent-Length: "))),
	    1);
	w = retr(mb, 0, -1, &len);
	assert_non_null(w);
	free(w);
	assert_int_equal(pwrite(fd, "x", 1, (off_t)(strlen(Q_MSG1) - 1)), 1);
	close(fd);
	assert_null(retr(mb, 0, -1, &len));
	mbox_close(&mb);
}

static void
test_expunge_uidls_survive(void **state)
{
	struct mbox *mb;
	char uidl[5][64], *w;
	uint8_t del[5] = { 0, 1, 0, 1, 0 };
	uint32_t n;
	size_t len;
	char err[256] = "";
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		char body[64];

		snprintf(body, sizeof(body), "Subject: %d\n\nbody %d\n", i, i);
		append(body);
	}
	mb = open_ok();
	for (i = 0; i < 5; i++)
		snprintf(uidl[i], 64, "%s", mbox_msg_uidl(mb, (uint32_t)i));
	append("Subject: late\n\narrived during the session\n");
	assert_int_equal(mbox_expunge(mb, del, &n, err, sizeof(err)), MBOX_OK);
	assert_int_equal(n, 2);
	mbox_close(&mb);
	mb = open_ok();
	assert_int_equal(mbox_bytes_parsed(mb) > 0, 1);	/* the late one */
	assert_int_equal(mbox_msg_count(mb), 4);
	assert_string_equal(mbox_msg_uidl(mb, 0), uidl[0]);
	assert_string_equal(mbox_msg_uidl(mb, 1), uidl[2]);
	assert_string_equal(mbox_msg_uidl(mb, 2), uidl[4]);
	w = retr(mb, 1, -1, &len);
	assert_string_equal(w, "Subject: 2\r\n\r\nbody 2\r\n.\r\n");
	free(w);
	w = retr(mb, 3, -1, &len);
	assert_string_equal(w, "Subject: late\r\n\r\narrived during the "
	    "session\r\n.\r\n");
	free(w);
	mbox_close(&mb);
	mb = open_ok();		/* warm after the expunge */
	assert_int_equal(mbox_bytes_parsed(mb), 0);
	assert_int_equal(mbox_msg_count(mb), 4);
	mbox_close(&mb);
}

static void
test_identical_copies(void **state)
{
	struct mbox *mb;
	char u[3][64];
	uint8_t del[3] = { 1, 0, 1 };
	uint32_t n;
	char err[256];

	(void)state;
	write_file(mbox, FROM("a") "same\n\n" FROM("a") "same\n\n"
	    FROM("a") "same\n\n");
	mb = open_ok();
	snprintf(u[0], 64, "%s", mbox_msg_uidl(mb, 0));
	snprintf(u[1], 64, "%s", mbox_msg_uidl(mb, 1));
	snprintf(u[2], 64, "%s", mbox_msg_uidl(mb, 2));
	assert_string_not_equal(u[0], u[1]);
	assert_string_not_equal(u[1], u[2]);
	/* deleting copy 0 while copy 1 stays would shift "-1" onto u[0]:
	 * copy 0 is kept; copy 2 (after the last kept one) goes */
	assert_int_equal(mbox_expunge(mb, del, &n, err, sizeof(err)), MBOX_OK);
	assert_int_equal(n, 1);
	mbox_close(&mb);
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 2);
	assert_string_equal(mbox_msg_uidl(mb, 0), u[0]);
	assert_string_equal(mbox_msg_uidl(mb, 1), u[1]);
	mbox_close(&mb);
}

static void
test_expunge_refuses_foreign_rewrite(void **state)
{
	struct mbox *mb;
	uint8_t del[2] = { 1, 0 };
	char err[256], *after;
	uint32_t n;

	(void)state;
	write_file(mbox, FROM("a") "one\n\n" FROM("b") "two\n\n");
	mb = open_ok();
	/* another program rewrote the file (new inode) */
	write_file(mbox, FROM("c") "other\n\n");
	{
		char tmp[400];

		snprintf(tmp, sizeof(tmp), "%s.new", mbox);
		write_file(tmp, FROM("c") "other\n\n");
		assert_int_equal(rename(tmp, mbox), 0);
	}
	assert_int_equal(mbox_expunge(mb, del, &n, err, sizeof(err)),
	    MBOX_CHANGED);
	assert_int_equal(n, 0);
	mbox_close(&mb);
	after = read_file(mbox, NULL);
	assert_string_equal(after, FROM("c") "other\n\n");
	free(after);
}

static enum mbox_status
open_status(unsigned timeout_ms)
{
	struct mbox_opts o;
	struct mbox *mb = NULL;
	char err[256];
	enum mbox_status s;

	mbox_opts_init(&o);
	o.lock.timeout_ms = timeout_ms;
	s = mbox_open_snapshot(mbox, &o, &mb, err, sizeof(err));
	mbox_close(&mb);
	return s;
}

static void
test_dotlock(void **state)
{
	char lock[400], buf[32];
	struct timespec old[2] = { { .tv_sec = 1000 }, { .tv_sec = 1000 } };
	pid_t pid;
	int st;

	(void)state;
	write_file(mbox, FROM("a") "x\n");
	snprintf(lock, sizeof(lock), "%s.lock", mbox);
	/* held by a live process (us): wait, then a temporary failure */
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	write_file(lock, buf);
	assert_int_equal(open_status(300), MBOX_TEMP);
	assert_int_equal(access(lock, F_OK), 0);	/* not ours to remove */
	/* held by a dead process: stale */
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, &st, 0);
	snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	write_file(lock, buf);
	assert_int_equal(open_status(3000), MBOX_OK);
	assert_int_equal(access(lock, F_OK), -1);
	/* An unchanged mbox (its index, made just now under both locks,
	 * still matches) is snapshotted under an fcntl read lock alone: a
	 * dotlock holder that has written nothing yet changes nothing. */
	write_file(lock, "");
	assert_int_equal(open_status(300), MBOX_OK);
	assert_int_equal(access(lock, F_OK), 0);
	/* changed since: the full path, which respects the dotlock; no pid
	 * (Postfix), fresh: respected; older than 500 s: stale */
	write_file(mbox, FROM("a") "x\n" "\n" FROM("b") "y\n");
	assert_int_equal(open_status(300), MBOX_TEMP);
	assert_int_equal(utimensat(AT_FDCWD, lock, old, 0), 0);
	assert_int_equal(open_status(3000), MBOX_OK);
	assert_int_equal(access(lock, F_OK), -1);
}

static void
test_fcntl_lock(void **state)
{
	int pfd[2], st;
	pid_t pid;
	char c;

	(void)state;
	write_file(mbox, FROM("a") "x\n");
	/* the index matches the file: a writer holding the fcntl lock is
	 * still waited for, never read past (mbox_snapshot_unchanged()) */
	assert_int_equal(open_status(3000), MBOX_OK);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		/* a classic POSIX lock, as Postfix and procmail take */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(mbox, O_RDWR);

		if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0)
			_exit(1);
		close(pfd[0]);
		(void)!write(pfd[1], "l", 1);
		for (int k = 0; k < 600; k++)	/* until killed, bounded */
			sleep(1);
		_exit(0);
	}
	close(pfd[1]);
	{
		int p2 = pfd[0];

		assert_int_equal(read(p2, &c, 1), 1);
		assert_int_equal(open_status(300), MBOX_TEMP);
		kill(pid, SIGTERM);
		waitpid(pid, &st, 0);
		close(p2);
	}
	assert_int_equal(open_status(3000), MBOX_OK);
}

/* lockfile-progs (liblockfile, procmail-style dotlocks) holds the lock. */
static void
test_lockfile_progs(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	if (access("/usr/bin/lockfile-create", X_OK) != 0) {
		skip();
		return;
	}
	write_file(mbox, FROM("a") "x\n");
	pid = fork();
	if (pid == 0) {
		char lock[400];

		snprintf(lock, sizeof(lock), "%s.lock", mbox);
		execl("/usr/bin/lockfile-create", "lockfile-create",
		    "--retry", "0", "--lock-name", lock, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(open_status(400), MBOX_TEMP);
	pid = fork();
	if (pid == 0) {
		char lock[400];

		snprintf(lock, sizeof(lock), "%s.lock", mbox);
		execl("/usr/bin/lockfile-remove", "lockfile-remove",
		    "--lock-name", lock, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(open_status(3000), MBOX_OK);
}

#define WRITERS 4
#define PER_WRITER 25

/* A message that carries its own id and length, so a torn or joined one
 * shows. */
static void
test_concurrent_appends(void **state)
{
	pid_t pids[WRITERS];
	int seen[WRITERS][PER_WRITER];
	int w, i, alive, rounds = 0, st;
	struct mbox *mb;

	(void)state;
	for (w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			for (i = 0; i < PER_WRITER; i++) {
				char body[2048];
				int n = snprintf(body, sizeof(body),
				    "Subject: w%d-%d\n\nFrom me\n", w, i);

				while (n < 200 + 37 * i) {
					body[n] = (char)('a' + (n % 26));
					n++;
				}
				body[n++] = '\n';
				body[n] = '\0';
				append(body);
			}
			_exit(0);
		}
	}
	do {
		uint32_t cnt;

		alive = 0;
		for (w = 0; w < WRITERS; w++)
			if (pids[w] > 0 && waitpid(pids[w], &st, WNOHANG) == 0)
				alive++;
		mb = open_ok();
		cnt = mbox_msg_count(mb);
		if (cnt > 0) {
			size_t len;
			char *m = retr(mb, cnt - 1, -1, &len);

			assert_non_null(m);
			assert_memory_equal(m, "Subject: w", 10);
			assert_memory_equal(m + len - 5, "\r\n.\r\n", 5);
			free(m);
		}
		mbox_close(&mb);
	} while (alive > 0 && ++rounds < 5000);
	for (w = 0; w < WRITERS; w++) {
		assert_int_equal(waitpid(pids[w], &st, 0) == pids[w] ||
		    errno == ECHILD, 1);
	}
	memset(seen, 0, sizeof(seen));
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), WRITERS * PER_WRITER);
	for (i = 0; i < WRITERS * PER_WRITER; i++) {
		size_t len, want;
		char *m = retr(mb, (uint32_t)i, -1, &len);
		int a, b;

		assert_non_null(m);
		assert_int_equal(sscanf(m, "Subject: w%d-%d", &a, &b), 2);
		assert_true(a >= 0 && a < WRITERS && b >= 0 && b < PER_WRITER);
		seen[a][b]++;
		/* header + blank + "From me" + filler, CRLF, + ".\r\n" */
		want = (size_t)(200 + 37 * b) + 4 + 1 + 3;
		assert_int_equal(len, want);
		assert_non_null(strstr(m, "\r\n\r\nFrom me\r\n"));
		free(m);
	}
	for (w = 0; w < WRITERS; w++)
		for (i = 0; i < PER_WRITER; i++)
			assert_int_equal(seen[w][i], 1);
	mbox_close(&mb);
}

#define THREADS 6
#define PER_THREAD 15

static void *
thread_appender(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int i = 0; i < PER_THREAD; i++) {
		char body[128];
		struct mbox *mb;

		(void)snprintf(body, sizeof(body), "Subject: t%d-%d\n\nx\n", t,
		    i);
		append(body);
		mb = open_ok();		/* snapshots between the appends */
		mbox_close(&mb);
	}
	return NULL;
}

/* Threads of one process (a server's LMTP workers and POP3 opens) take
 * the dotlock in turn: each gets it, none takes another's for its own,
 * and none is left behind under our (live) pid, which would hold every
 * later delivery off until the lock went stale. */
static void
test_threads_share_the_dotlock(void **state)
{
	pthread_t th[THREADS];
	char lock[400];
	struct mbox *mb;

	(void)state;
	write_file(mbox, FROM("a") "x\n");
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, thread_appender,
		    (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	snprintf(lock, sizeof(lock), "%s.lock", mbox);
	assert_int_equal(access(lock, F_OK), -1);
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 1 + THREADS * PER_THREAD);
	mbox_close(&mb);
	/* the appends left their marker cleared (empty): an unchanged mbox
	 * still opens without the dotlock, here held by a live process... */
	{
		char marker[400], buf[32];
		struct stat st;

		snprintf(marker, sizeof(marker), "%s.posuto-append", mbox);
		assert_int_equal(stat(marker, &st), 0);
		assert_int_equal(st.st_size, 0);
		snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
		write_file(lock, buf);
		assert_int_equal(open_status(300), MBOX_OK);
		/* ...but a marker with content (a crash mid-append) needs
		 * the recovery, under the dotlock */
		write_file(marker, "x");
		assert_int_equal(open_status(300), MBOX_TEMP);
		assert_int_equal(unlink(lock), 0);
	}
}

/* A reader that can start over and kills its process on the second
 * pass (the one that writes) after kill_at bytes. */
struct kill_reader {
	const char *data;
	size_t len, off, kill_at;
	int pass;
};

static ssize_t
kill_read(void *ctx, void *buf, size_t len)
{
	struct kill_reader *k = ctx;
	size_t n = k->len - k->off;

	if (k->pass == 1 && k->off >= k->kill_at)
		raise(SIGKILL);
	if (n > len)
		n = len;
	if (n > 4096)
		n = 4096;
	memcpy(buf, k->data + k->off, n);
	k->off += n;
	return (ssize_t)n;
}

static void
kill_rewind(void *ctx)
{
	struct kill_reader *k = ctx;

	k->off = 0;
	k->pass++;
}

static char *
big_body(size_t lines)
{
	char *b = malloc(lines * 16 + 32), *p = b;

	memcpy(p, "Subject: torn\n\n", 15);
	p += 15;
	for (size_t i = 0; i < lines; i++)
		p += snprintf(p, 32, "line %09zu\n", i);
	return b;
}

/* Appends body in a child killed after kill_at bytes of the writing
 * pass; returns the mbox size it left. */
static off_t
torn_append(const char *body, size_t kill_at)
{
	struct stat st;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct kill_reader k = { body, strlen(body), 0, kill_at, 0 };
		struct mbox_opts o;
		char err[256];

		mbox_opts_init(&o);
		(void)mbox_append(mbox, &o, "s@example.org", time(NULL),
		    kill_read, kill_rewind, &k, err, sizeof(err));
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(stat(mbox, &st), 0);
	return st.st_size;
}

static void
test_torn_append_is_removed(void **state)
{
	char *before, *after, *body = big_body(40000), marker[400], *w;
	struct mbox *mb;
	struct stat st;
	size_t blen, alen, len;

	(void)state;
	append("Subject: keep\n\nx\n");
	before = read_file(mbox, &blen);
	/* killed with part of the message written: a reader never sees
	 * it, the file is what it was */
	assert_true((size_t)torn_append(body, 300000) > blen);
	snprintf(marker, sizeof(marker), "%s.posuto-append", mbox);
	assert_int_equal(stat(marker, &st), 0);
	assert_true(st.st_size > 0);
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 1);
	mbox_close(&mb);
	after = read_file(mbox, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(after);
	assert_int_equal(stat(marker, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* killed again, then the next append removes it itself and the
	 * new message stands on its own */
	assert_true((size_t)torn_append(body, 100000) > blen);
	append("Subject: next\n\nnext\n");
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 2);
	w = retr(mb, 1, -1, &len);
	assert_string_equal(w, "Subject: next\r\n\r\nnext\r\n.\r\n");
	free(w);
	mbox_close(&mb);
	free(before);
	free(body);
}

/* An MTA that broke our stale dotlock appended after the torn message,
 * at a line start or glued onto the torn line: its mail stays, ours
 * goes. */
static void
test_torn_append_then_mta_append(void **state)
{
	static const char *const mta[] = {
		"\n" FROM("mta") "Subject: mta\n\nhello\n\n",
		FROM("mta") "Subject: mta\n\nhello\n\n",
	};
	char *body = big_body(40000), *w;
	struct mbox *mb;
	size_t len;

	(void)state;
	for (int i = 0; i < 2; i++) {
		int fd;

		assert_int_equal(truncate(mbox, 0) == 0 || errno == ENOENT, 1);
		append("Subject: keep\n\nx\n");
		torn_append(body, 200000);
		fd = open(mbox, O_WRONLY | O_APPEND);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, mta[i], strlen(mta[i])),
		    (ssize_t)strlen(mta[i]));
		close(fd);
		mb = open_ok();
		assert_int_equal(mbox_msg_count(mb), 2);
		w = retr(mb, 0, -1, &len);
		assert_string_equal(w, "Subject: keep\r\n\r\nx\r\n.\r\n");
		free(w);
		w = retr(mb, 1, -1, &len);
		assert_string_equal(w, "Subject: mta\r\n\r\nhello\r\n.\r\n");
		free(w);
		mbox_close(&mb);
	}
	free(body);
}

/* Killed after the fsync but before the marker was emptied: the
 * message is complete and stays (the marker's hash says so). */
static void
test_complete_append_with_marker_left_stays(void **state)
{
	struct mbox_append_mark mk;
	struct stat st;
	char marker[400], *all, from[200];
	size_t blen, alen;
	struct mbox *mb;
	int fd;

	(void)state;
	append("Subject: keep\n\nx\n");
	free(read_file(mbox, &blen));
	append("Subject: second\n\ny\n");
	all = read_file(mbox, &alen);
	fd = open(mbox, O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	memset(&mk, 0, sizeof(mk));
	mk.dev = (uint64_t)st.st_dev;
	mk.ino = (uint64_t)st.st_ino;
	mk.orig = blen;
	mk.from_off = blen;
	mk.end = alen;
	assert_true(mbox_hash_range(fd, blen, alen - blen, mk.hash, 32));
	close(fd);
	mk.from_len = (size_t)(strchr(all + blen, '\n') - (all + blen)) + 1;
	memcpy(from, all + blen, mk.from_len);
	mk.from = from;
	snprintf(marker, sizeof(marker), "%s.posuto-append", mbox);
	assert_true(mbox_append_mark_set(marker, &mk));
	mb = open_ok();
	assert_int_equal(mbox_msg_count(mb), 2);
	mbox_close(&mb);
	assert_int_equal(stat(marker, &st), 0);
	assert_int_equal(st.st_size, 0);
	free(all);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_reader, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_bad, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_append_roundtrip_and_warm_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_failure_truncates,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_detects_change,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_qpopper_view, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_uw_headers_hidden, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expunge_uidls_survive,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_identical_copies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_expunge_refuses_foreign_rewrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_the_dotlock,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_fcntl_lock, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lockfile_progs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_appends, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_append_is_removed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_torn_append_then_mta_append, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_complete_append_with_marker_left_stays, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
