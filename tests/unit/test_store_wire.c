/*
 * test_store_wire.c - the wire cache on a real Maildir: which messages get
 * a copy, that the copy is byte for byte what RETR sends, that it is not
 * used once its message changed, the build limit, and removal at UPDATE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "store/store.h"
#include "store_test_open.h"

#define MIN_SIZE	4096
/* the copy is the wire form at offset 0 and a fixed-size identity trailer */
#define TRAILER		64

struct fx {
	char root[64];
	char box[128];
};

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
	char p[256];

	assert_non_null(fx);
	snprintf(fx->root, sizeof(fx->root), "/tmp/posuto-wire-XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	snprintf(fx->box, sizeof(fx->box), "%s/box", fx->root);
	assert_int_equal(mkdir(fx->box, 0700), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", fx->box,
		    (const char *[]){ "cur", "new", "tmp" }[i]);
		assert_int_equal(mkdir(p, 0700), 0);
	}
	store_wire_configure(MIN_SIZE);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	nftw(fx->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* name: "new/<unique>" or "cur/<unique>:2,<flags>" (S: read before) */
static void
deliver(const struct fx *fx, const char *name, const char *data, size_t len)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", fx->box, name);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* n bytes of LF mail with dot lines; *wire_r: CRLF + dot-stuffed form. */
static char *
lf_message(size_t n, char **wire_r, size_t *wlen_r)
{
	char *m = malloc(n + 1), *w = malloc(2 * n + 8);
	size_t i = 0, o = 0;
	int line = 0;

	assert_true(m != NULL && w != NULL);
	i = (size_t)snprintf(m, n, "Subject: t\n\n");
	while (i < n) {
		size_t l = line % 5 == 0 ? 1 : 60;
		for (size_t k = 0; k < l && i < n - 1; k++)
			m[i++] = k == 0 && line % 5 == 0 ? '.' : 'a' + (char)(k % 26);
		m[i++] = '\n';
		line++;
	}
	for (size_t k = 0; k < n; k++) {
		if ((k == 0 || m[k - 1] == '\n') && m[k] == '.')
			w[o++] = '.';
		if (m[k] == '\n')
			w[o++] = '\r';
		w[o++] = m[k];
	}
	*wire_r = w;
	*wlen_r = o;
	return m;
}

static struct mailbox *
open_box(const struct fx *fx)
{
	struct mailbox *mb = NULL;
	char err[160];

	assert_int_equal(open_fmt(fx->box, "maildir", &mb, err,
	    sizeof(err)), STORE_OK);
	return mb;
}

static void
build(struct mailbox *mb, uint32_t idx)
{
	struct msg_reader *r = NULL;
	struct store_wire_job *j;

	assert_int_equal(mailbox_msg_open(mb, idx, &r), STORE_OK);
	/* no sendfile() on this connection (TLS): the store wants no copy,
	 * and a later plain RETR still gets one */
	assert_null(msg_reader_wire_job(mb, r, false));
	j = msg_reader_wire_job(mb, r, true);
	assert_non_null(j);
	assert_null(msg_reader_wire_job(mb, r, true));	/* one per reader */
	store_wire_job_run(j);
	store_wire_job_free(&j);
	msg_reader_close(&r);
}

static void
test_copy_is_the_wire_form(void **state)
{
	struct fx *fx = *state;
	size_t wlen;
	char *wire, *msg = lf_message(20000, &wire, &wlen);
	struct mailbox *mb;
	struct msg_reader *r = NULL;
	off_t off = -1, len = -1;
	char *got;
	struct stat st;
	int fd;

	deliver(fx, "cur/1.M1P1.h:2,S", msg, 20000);
	mb = open_box(fx);
	assert_int_equal(mailbox_msg_open(mb, 0, &r), STORE_OK);
	assert_int_equal(msg_reader_wire_fd(r, &off, &len), -1);
	msg_reader_close(&r);
	build(mb, 0);
	assert_int_equal(mailbox_msg_open(mb, 0, &r), STORE_OK);
	fd = msg_reader_wire_fd(r, &off, &len);
	assert_true(fd >= 0);
	assert_int_equal(off, 0);	/* page-aligned for sendfile() */
	assert_int_equal(len, wlen);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, (off_t)wlen + TRAILER);
	assert_null(msg_reader_wire_job(mb, r, true));	/* cached: nothing to do */
	got = malloc(wlen);
	assert_int_equal(pread(fd, got, wlen, off), (ssize_t)wlen);
	assert_memory_equal(got, wire, wlen);
	msg_reader_close(&r);
	mailbox_close(&mb);
	free(got);
	free(msg);
	free(wire);
}

static void
test_who_gets_a_copy(void **state)
{
	struct fx *fx = *state;
	size_t wlen;
	char *wire, *msg = lf_message(20000, &wire, &wlen);
	struct mailbox *mb;
	struct msg_reader *r = NULL;
	struct store_wire_job *j[3];
	off_t off, len;

	char crlf[8192];

	for (size_t i = 0; i < sizeof(crlf); i++)
		crlf[i] = i % 64 == 62 ? '\r' : i % 64 == 63 ? '\n' : 'x';
	deliver(fx, "cur/1.M1P1.h:2,S", "Subject: small\n\nhi\n", 19);
	deliver(fx, "cur/2.M2P1.h:2,S", crlf, sizeof(crlf));	/* wire form */
	for (int i = 3; i <= 5; i++) {
		char name[32];
		snprintf(name, sizeof(name), "cur/%d.M%dP1.h:2,S", i, i);
		deliver(fx, name, msg, 20000);
	}
	mb = open_box(fx);
	assert_int_equal(mailbox_count(mb), 5);
	/* small: never */
	assert_int_equal(mailbox_msg_open(mb, 0, &r), STORE_OK);
	assert_null(msg_reader_wire_job(mb, r, true));
	msg_reader_close(&r);
	/* wire form: the file itself goes out */
	assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_OK);
	assert_true(msg_reader_wire_fd(r, &off, &len) >= 0);
	assert_int_equal(off, 0);
	assert_int_equal(len, sizeof(crlf));
	assert_null(msg_reader_wire_job(mb, r, true));
	msg_reader_close(&r);
	/* at most two builds at a time */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mailbox_msg_open(mb, (uint32_t)(2 + i), &r),
		    STORE_OK);
		j[i] = msg_reader_wire_job(mb, r, true);
		msg_reader_close(&r);	/* the job keeps its own fd */
	}
	assert_non_null(j[0]);
	assert_non_null(j[1]);
	assert_null(j[2]);
	store_wire_job_run(j[0]);
	store_wire_job_free(&j[0]);
	store_wire_job_free(&j[1]);	/* freed unrun: a slot again */
	build(mb, 4);
	/* cache off: nothing built, nothing used */
	store_wire_configure(0);
	assert_int_equal(mailbox_msg_open(mb, 2, &r), STORE_OK);
	assert_int_equal(msg_reader_wire_fd(r, &off, &len), -1);
	assert_null(msg_reader_wire_job(mb, r, true));
	msg_reader_close(&r);
	store_wire_configure(MIN_SIZE);
	mailbox_close(&mb);
	free(msg);
	free(wire);
}

/* Most clients download a message once and delete it: only a message
 * read before (S flag) or already retrieved in this session gets a copy. */
static void
test_copy_on_second_download(void **state)
{
	struct fx *fx = *state;
	size_t wlen;
	char *wire, *msg = lf_message(20000, &wire, &wlen);
	struct mailbox *mb;
	struct msg_reader *r = NULL;

	deliver(fx, "new/1.M1P1.h", msg, 20000);
	deliver(fx, "cur/2.M2P1.h:2,FS", msg, 20000);
	deliver(fx, "cur/3.M3P1.h:2,F", msg, 20000);
	mb = open_box(fx);
	assert_int_equal(mailbox_count(mb), 3);
	/* new/: a first download */
	assert_int_equal(mailbox_msg_open(mb, 0, &r), STORE_OK);
	assert_null(msg_reader_wire_job(mb, r, true));
	msg_reader_close(&r);
	/* retrieved once in this session: the next RETR builds */
	mailbox_msg_mark_seen(mb, 0);
	build(mb, 0);
	/* S among other flags: read before */
	build(mb, 1);
	/* flagged but never read */
	assert_int_equal(mailbox_msg_open(mb, 2, &r), STORE_OK);
	assert_null(msg_reader_wire_job(mb, r, true));
	msg_reader_close(&r);
	mailbox_close(&mb);
	/* the copies serve the next session */
	mb = open_box(fx);
	for (uint32_t i = 0; i < 2; i++) {
		off_t off, len;

		assert_int_equal(mailbox_msg_open(mb, i, &r), STORE_OK);
		assert_true(msg_reader_wire_fd(r, &off, &len) >= 0);
		assert_int_equal(len, wlen);
		msg_reader_close(&r);
	}
	mailbox_close(&mb);
	free(msg);
	free(wire);
}

static void
test_changed_message_is_not_served_from_copy(void **state)
{
	struct fx *fx = *state;
	size_t wlen;
	char *wire, *msg = lf_message(20000, &wire, &wlen);
	struct mailbox *mb;
	struct msg_reader *r = NULL;
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	char p[512];
	off_t off, len;

	deliver(fx, "cur/1.M1P1.h:2,S", msg, 20000);
	mb = open_box(fx);
	build(mb, 0);
	/* rewritten in place with the same size: only the mtime tells */
	snprintf(p, sizeof(p), "%s/cur/1.M1P1.h:2,S", fx->box);
	msg[100] = 'Z';
	deliver(fx, "cur/1.M1P1.h:2,S", msg, 20000);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	assert_int_equal(mailbox_msg_open(mb, 0, &r), STORE_OK);
	assert_int_equal(msg_reader_wire_fd(r, &off, &len), -1);
	msg_reader_close(&r);
	mailbox_close(&mb);
	free(msg);
	free(wire);
}

static void
test_update_removes_copies_of_deleted(void **state)
{
	struct fx *fx = *state;
	size_t wlen;
	char *wire, *msg = lf_message(20000, &wire, &wlen);
	struct mailbox *mb;
	uint8_t deleted[1] = { 1 };	/* message 1 */
	uint32_t n = 0;
	char p[512];

	deliver(fx, "cur/1.M1P1.h:2,S", msg, 20000);
	deliver(fx, "cur/2.M2P1.h:2,S", msg, 20000);
	mb = open_box(fx);
	build(mb, 0);
	build(mb, 1);
	assert_int_equal(mailbox_commit(mb, deleted, &n), STORE_OK);
	assert_int_equal(n, 1);
	mailbox_close(&mb);
	snprintf(p, sizeof(p), "%s/posuto-wire/1.M1P1.h", fx->box);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/posuto-wire/2.M2P1.h", fx->box);
	assert_int_equal(access(p, F_OK), 0);
	free(msg);
	free(wire);
}

/* Reading a message (its sizing at the open, RETR, a copy's trailer)
 * writes no inode: the atime a download would otherwise set stays. */
static void
test_reading_keeps_atime(void **state)
{
	struct fx *fx = *state;
	size_t wlen;
	char *wire, *msg = lf_message(20000, &wire, &wlen);
	/* older than the mtime: relatime would update it on a read */
	const struct timespec old[2] = { { .tv_sec = 1000 },
	    { .tv_nsec = UTIME_OMIT } };
	const char *files[] = { "cur/1.M1P1.h:2,S", "posuto-wire/1.M1P1.h",
	    "new/2.M2P1.h" };
	struct mailbox *mb;
	struct msg_reader *r = NULL;
	char p[512], buf[4096];
	struct stat st;
	ssize_t n;

	deliver(fx, files[0], msg, 20000);
	deliver(fx, files[2], "Subject: s\n\nsmall\n", 19);
	mb = open_box(fx);
	build(mb, 0);
	mailbox_close(&mb);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", fx->box, files[i]);
		assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	}
	mb = open_box(fx);
	for (uint32_t idx = 0; idx < 2; idx++) {
		assert_int_equal(mailbox_msg_open(mb, idx, &r), STORE_OK);
		while ((n = msg_reader_read(r, buf, sizeof(buf))) > 0)
			;
		assert_int_equal(n, 0);
		msg_reader_close(&r);
	}
	mailbox_close(&mb);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", fx->box, files[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_atim.tv_sec, 1000);
	}
	free(msg);
	free(wire);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_is_the_wire_form,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_who_gets_a_copy,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_on_second_download,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_changed_message_is_not_served_from_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_update_removes_copies_of_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reading_keeps_atime,
		    setup, teardown),
	};

	log_init("test_store_wire", false, LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
