/*
 * test_store_drift.c - the UIDL-drift detector (store_drift.c) on real
 * Maildirs: a rename by hand is a changed UIDL, a restore after a DELE is
 * a reappearance, RETRs in 3 sessions are counted; flag changes and new
 * mail are quiet; and a damaged .posuto.drift (every truncation, every
 * byte flipped) is only ever forgotten, never a crash or a false finding;
 * a warm login still sees a state file edited in place.
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
#include <unistd.h>

#include "lib/log.h"
#include "store/store.h"
#include "store/store_lock.h"

static char lock_path[64];
static char root[64];
static char box[160];
static char loc[200];

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
pathf(char *out, size_t sz, const char *rel)
{
	snprintf(out, sz, "%s/%s", box, rel);
}

static void
put(const char *rel, const char *data)
{
	char p[512];
	int fd;

	pathf(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void
mv(const char *from, const char *to)
{
	char a[512], b[512];

	pathf(a, sizeof(a), from);
	pathf(b, sizeof(b), to);
	assert_int_equal(rename(a, b), 0);
}

static int
setup(void **state)
{
	static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
	char p[512];

	(void)state;
	snprintf(root, sizeof(root), "/tmp/posuto-drift-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(box, sizeof(box), "%s/box", root);
	snprintf(loc, sizeof(loc), "maildir:%s", box);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", box, subs[i]);
		assert_int_equal(mkdir(p, 0700), 0);
	}
	put("cur/1700000001.M1P1.host:2,S", "Subject: one\n\nbody one\n");
	put("cur/1700000002.M2P1.host:2,S", "Subject: two\n\nbody two\n");
	put("new/1700000003.M3P1.host", "Subject: three\n\nbody three\n");
	store_drift_configure(true);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* One session: login (the detector), RETR of the messages in retr,
 * DELE of those in dele, QUIT. */
static struct mailbox_drift
session(unsigned retr, unsigned dele)
{
	struct mailbox_drift r;
	struct mailbox *mb;
	uint8_t deleted[4] = { 0 };
	uint32_t n;
	char err[256];

	assert_int_equal(mailbox_open(loc, "u", &mb, err, sizeof(err)),
	    STORE_OK);
	mailbox_drift_login(mb, &r);
	for (uint32_t i = 0; i < mailbox_count(mb); i++) {
		if (retr & (1u << i))
			mailbox_msg_mark_seen(mb, i);
		if (dele & (1u << i))
			deleted[0] |= (uint8_t)(1u << i);
	}
	if (mailbox_commit_needed(mb, deleted))
		assert_int_equal(mailbox_commit(mb, deleted, &n), STORE_OK);
	mailbox_close(&mb);
	return r;
}

static struct mailbox_drift
report(void)
{
	struct mailbox_drift r;
	struct mailbox *mb;
	char err[256];

	assert_int_equal(mailbox_open(loc, "u", &mb, err, sizeof(err)),
	    STORE_OK);
	mailbox_drift_report(mb, &r);
	mailbox_close(&mb);
	return r;
}

static void
assert_quiet(struct mailbox_drift r)
{
	assert_int_equal(r.changed, 0);
	assert_int_equal(r.reappeared, 0);
	assert_int_equal(r.reretrieved, 0);
}

static void
test_rename_by_hand(void **state)
{
	struct mailbox_drift r;

	(void)state;
	r = session(0, 0);
	assert_true(r.enabled);
	assert_false(r.known);
	assert_quiet(r);
	r = session(0, 0);
	assert_true(r.known);
	assert_quiet(r);
	assert_int_equal(r.tracked, 3);
	mv("cur/1700000002.M2P1.host:2,S", "cur/1800000000.R1.renamed:2,S");
	/* doctor sees it first, and records nothing */
	r = report();
	assert_int_equal(r.changed, 1);
	r = report();
	assert_int_equal(r.changed, 1);
	r = session(0, 0);
	assert_int_equal(r.changed, 1);
	assert_int_equal(r.reappeared, 0);
	r = session(0, 0);
	assert_quiet(r);
	assert_int_equal(r.last_changed, 1);
	assert_int_equal(r.last_tracked, 3);
	assert_true(r.last_time > 0);
}

static void
test_flags_moves_new_mail_quiet(void **state)
{
	struct mailbox_drift r;

	(void)state;
	(void)session(0, 0);		/* new/ -> cur/ */
	mv("cur/1700000001.M1P1.host:2,S", "cur/1700000001.M1P1.host:2,FRS");
	mv("cur/1700000003.M3P1.host:2,", "new/1700000003.M3P1.host");
	put("new/1700000004.M4P1.host", "Subject: four\n\nbody four\n");
	r = session(0, 0);
	assert_true(r.known);
	assert_quiet(r);
	assert_int_equal(r.tracked, 4);
	assert_int_equal(r.last_time, 0);
}

static void
test_restore_after_dele(void **state)
{
	struct mailbox_drift r;

	(void)state;
	(void)session(0, 0);
	r = session(1u << 0, 1u << 0);	/* RETR 1, DELE 1, QUIT */
	assert_quiet(r);
	put("cur/1700000001.M1P1.host:2,S", "Subject: one\n\nbody one\n");
	r = session(0, 0);
	assert_int_equal(r.reappeared, 1);
	assert_int_equal(r.changed, 0);
	r = session(0, 0);
	assert_quiet(r);
	assert_int_equal(r.last_reappeared, 1);
}

static void
test_reretrieved(void **state)
{
	struct mailbox_drift r;

	(void)state;
	for (int k = 0; k < 3; k++) {
		r = session(0x3, 0);	/* RETR 1 and 2, no DELE */
		assert_quiet(r);
	}
	r = session(0, 0);
	assert_int_equal(r.reretrieved, 2);
	assert_int_equal(r.changed, 0);
	/* new mail changes the snapshot: the full comparison agrees */
	put("new/1700000009.M9P1.host", "Subject: nine\n\nbody nine\n");
	r = session(0, 0);
	assert_int_equal(r.reretrieved, 2);
	/* and deleting them ends it */
	r = session(0, 0x3);
	r = session(0, 0);
	assert_quiet(r);
}

static void
test_off(void **state)
{
	struct mailbox_drift r;
	char p[512];
	struct stat st;

	(void)state;
	store_drift_configure(false);
	r = session(0x1, 0);
	assert_false(r.enabled);
	pathf(p, sizeof(p), ".posuto.drift");
	assert_int_equal(stat(p, &st), -1);
	store_drift_configure(true);
}

static void
write_file(const char *p, const unsigned char *b, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

static void
test_damaged_state(void **state)
{
	unsigned char buf[4096];
	char p[512];
	struct mailbox_drift r;
	ssize_t len;
	int fd;

	(void)state;
	(void)session(0x1, 0);
	(void)session(0x1, 0);
	pathf(p, sizeof(p), ".posuto.drift");
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	len = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(len > 64 && len < (ssize_t)sizeof(buf));
	/* a rename so each login compares (the header hash differs) */
	mv("cur/1700000002.M2P1.host:2,S", "cur/1800000000.R1.renamed:2,S");
	for (ssize_t cut = 0; cut < len; cut++) {
		write_file(p, buf, (size_t)cut);
		r = report();
		assert_false(r.known);
		assert_quiet(r);
	}
	for (ssize_t i = 0; i < len; i++) {
		unsigned char c = buf[i];

		buf[i] ^= 0x5a;
		write_file(p, buf, (size_t)len);
		r = report();
		/* the hash is checked first: a flip in the header can make
		 * the warm path miss, never find drift that is not there
		 * beyond the one rename */
		assert_true(r.changed <= 1);
		assert_int_equal(r.reappeared, 0);
		buf[i] = c;
	}
	write_file(p, buf, (size_t)len);
	r = session(0, 0);
	assert_int_equal(r.changed, 1);
}

/*
 * A warm login takes the state header from the snapshot cache while the
 * file's stat is unchanged (store_drift_preread): a same-size edit in
 * place, same inode, must still be read.  The cache keeps a snapshot only
 * of directories untouched for a second, and the header only of a file
 * whose ctime is over a second old: hence the aged mtimes and the sleep.
 */
static void
test_warm_cache_sees_edit_in_place(void **state)
{
	struct timespec old[2] = { { .tv_sec = 1000000000 },
	    { .tv_sec = 1000000000 } };
	unsigned char b[8];
	struct mailbox_drift r;
	char p[512];
	int fd;

	(void)state;
	(void)session(0, 0);
	r = session(0, 0);
	assert_true(r.known);
	pathf(p, sizeof(p), "new");
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	pathf(p, sizeof(p), "cur");
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	sleep(2);
	/* the scan caches the snapshot, its open the header */
	r = session(0, 0);
	assert_true(r.known);
	assert_quiet(r);
	/* answered by the cache: the header too */
	r = session(0, 0);
	assert_true(r.known);
	assert_quiet(r);
	/* the recorded snapshot hash (bytes 32..40) changed in place: a
	 * header taken from the cache would still match the snapshot */
	pathf(p, sizeof(p), ".posuto.drift");
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, sizeof(b), 32), (ssize_t)sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] ^= 0xff;
	assert_int_equal(pwrite(fd, b, sizeof(b), 32), (ssize_t)sizeof(b));
	close(fd);
	r = report();
	assert_false(r.known);
	r = session(0, 0);
	assert_false(r.known);
	/* that login wrote a good state again */
	r = session(0, 0);
	assert_true(r.known);
	assert_quiet(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_rename_by_hand),
		T(test_flags_moves_new_mail_quiet),
		T(test_restore_after_dele),
		T(test_reretrieved),
		T(test_off),
		T(test_damaged_state),
		T(test_warm_cache_sees_edit_in_place),
#undef T
	};
	char err[256];
	int fd, rc;

	log_init("test_store_drift", false, LOG_LVL_ERROR);
	snprintf(lock_path, sizeof(lock_path), "/tmp/posuto-lock-XXXXXX");
	if ((fd = mkstemp(lock_path)) == -1)
		return 1;
	close(fd);
	if (!store_lock_file_open(lock_path, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err))) {
		fprintf(stderr, "%s: %s\n", lock_path, err);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(lock_path);
	return rc;
}
