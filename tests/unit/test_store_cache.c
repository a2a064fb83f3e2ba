/* test_store_cache.c - warm snapshots of big Maildirs: used only while
 * new/ and cur/ are unchanged, never after a delivery, move or deletion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store_test_open.h"
#include "store/store_cache.h"

#define N_MSGS 2100

static char root[256];

static void
write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

/* Directory mtimes pushed into the past, as on a mailbox nobody touched
 * for a while. */
static void
age_dirs(void)
{
	struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
	char p[512];

	snprintf(p, sizeof(p), "%s/new", root);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	snprintf(p, sizeof(p), "%s/cur", root);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static int
setup(void **state)
{
	char p[512];
	(void)state;

	snprintf(root, sizeof(root), "/tmp/posuto-cache-XXXXXX");
	assert_non_null(mkdtemp(root));
	for (const char *d = "new\0cur\0tmp\0"; *d; d += strlen(d) + 1) {
		snprintf(p, sizeof(p), "%s/%s", root, d);
		assert_int_equal(mkdir(p, 0700), 0);
	}
	for (int i = 0; i < N_MSGS; i++) {
		snprintf(p, sizeof(p), "%s/cur/1700000000.M%dP1.host:2,S", root, i);
		write_file(p, "Subject: x\n\nbody\n");
	}
	age_dirs();
	return 0;
}

static int
teardown(void **state)
{
	char cmd[600];
	(void)state;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static struct mailbox *
open_box(void)
{
	struct mailbox *mb = NULL;
	char err[256];

	assert_int_equal(open_fmt(root, "maildir", &mb, err,
	    sizeof(err)), STORE_OK);
	return mb;
}

static void
test_warm_open_hits_and_matches(void **state)
{
	struct mailbox *a, *b;
	unsigned long hits;
	(void)state;

	a = open_box();
	assert_int_equal(mailbox_count(a), N_MSGS);
	/* The scan left a snapshot behind: its own index write does not
	 * touch new/ or cur/. */
	hits = store_cache_hits();
	mailbox_close(&a);
	b = open_box();
	assert_int_equal(store_cache_hits(), hits + 1);
	assert_int_equal(mailbox_count(b), N_MSGS);
	assert_int_equal(mailbox_total_size(b), (uint64_t)N_MSGS * 20);
	a = b;
	mailbox_close(&a);
	/* Same answers with and without the cache. */
	b = open_box();
	for (uint32_t i = 0; i < mailbox_count(b); i += 97) {
		assert_true(strncmp(mailbox_msg_uidl(b, i), "1700000000.M", 12) == 0);
		assert_int_equal(mailbox_msg_size(b, i), 20);
	}
	mailbox_close(&b);
}

static void
test_delivery_invalidates(void **state)
{
	struct mailbox *mb;
	char p[512];
	(void)state;

	mb = open_box();
	mailbox_close(&mb);
	snprintf(p, sizeof(p), "%s/new/1800000000.Mnew.host", root);
	write_file(p, "Subject: new\n\nhello\n");
	mb = open_box();
	assert_int_equal(mailbox_count(mb), N_MSGS + 1);
	mailbox_close(&mb);
	assert_int_equal(unlink(p), 0);
	age_dirs();
}

static void
test_external_delete_invalidates(void **state)
{
	struct mailbox *mb;
	char p[512];
	(void)state;

	mb = open_box();
	mailbox_close(&mb);
	snprintf(p, sizeof(p), "%s/cur/1700000000.M5P1.host:2,S", root);
	assert_int_equal(unlink(p), 0);
	mb = open_box();
	assert_int_equal(mailbox_count(mb), N_MSGS - 1);
	mailbox_close(&mb);
	write_file(p, "Subject: x\n\nbody\n");
	age_dirs();
}

static void
test_recent_change_not_cached(void **state)
{
	struct mailbox *mb;
	unsigned long hits;
	char p[512];
	(void)state;

	/* A directory changed within the last second may change again in
	 * the same mtime tick: such a scan is never reused. */
	snprintf(p, sizeof(p), "%s/new/1800000001.Mr.host", root);
	write_file(p, "x\n");
	mb = open_box();
	mailbox_close(&mb);
	hits = store_cache_hits();
	mb = open_box();
	assert_int_equal(store_cache_hits(), hits);
	assert_int_equal(mailbox_count(mb), N_MSGS + 1);
	mailbox_close(&mb);
	assert_int_equal(unlink(p), 0);
	age_dirs();
}

/* A warm open answers mailbox_commit_needed() from what the cache kept
 * (store_fs_commit_needed() walks no messages): still true for mail in
 * new/, a DELE of any message (the last one in a partial byte too) and
 * a RETR, false only for a QUIT that changes nothing. */
static void
test_warm_commit_needed(void **state)
{
	struct timespec other[2] = { { .tv_sec = 1000000100 },
	    { .tv_sec = 1000000100 } };
	uint8_t deleted[(N_MSGS + 1 + 7) / 8];
	struct mailbox *mb;
	unsigned long hits;
	char p[512];
	(void)state;

	memset(deleted, 0, sizeof(deleted));
	snprintf(p, sizeof(p), "%s/new/1800000002.Mn.host", root);
	write_file(p, "Subject: n\n\nnew\n");
	age_dirs();
	mb = open_box();
	mailbox_close(&mb);
	hits = store_cache_hits();
	mb = open_box();
	assert_int_equal(store_cache_hits(), hits + 1);
	assert_int_equal(mailbox_count(mb), N_MSGS + 1);
	assert_true(mailbox_commit_needed(mb, deleted));
	mailbox_close(&mb);
	assert_int_equal(unlink(p), 0);
	/* aged to another second than age_dirs(): else the stamp matches
	 * the snapshot that still has the message in new/ */
	snprintf(p, sizeof(p), "%s/new", root);
	assert_int_equal(utimensat(AT_FDCWD, p, other, 0), 0);
	mb = open_box();
	assert_int_equal(mailbox_count(mb), N_MSGS);
	mailbox_close(&mb);
	hits = store_cache_hits();
	mb = open_box();
	assert_int_equal(store_cache_hits(), hits + 1);
	assert_false(mailbox_commit_needed(mb, deleted));
	deleted[(N_MSGS - 1) / 8] = (uint8_t)(1u << ((N_MSGS - 1) % 8));
	assert_true(mailbox_commit_needed(mb, deleted));
	deleted[(N_MSGS - 1) / 8] = 0;
	deleted[0] = 1;
	assert_true(mailbox_commit_needed(mb, deleted));
	deleted[0] = 0;
	assert_false(mailbox_commit_needed(mb, deleted));
	mailbox_msg_mark_seen(mb, N_MSGS / 2);
	assert_true(mailbox_commit_needed(mb, deleted));
	mailbox_close(&mb);
	age_dirs();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_warm_open_hits_and_matches),
		cmocka_unit_test(test_delivery_invalidates),
		cmocka_unit_test(test_external_delete_invalidates),
		cmocka_unit_test(test_recent_change_not_cached),
		cmocka_unit_test(test_warm_commit_needed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
