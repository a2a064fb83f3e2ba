/*
 * test_store.c - real Maildirs and emldirs under mkdtemp(): sizes, UIDLs,
 * the session lock (same process and across fork()), UPDATE semantics,
 * concurrent changes by other programs, and the index cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/wire.h"
#include "store/store.h"
#include "store_test_open.h"
#include "store/store_lock.h"

struct fx {
	char root[64];		/* the mkdtemp directory */
	char box[128];		/* root/box: the mailbox under test */
};

/* The process's lock file (store_lock.h), as the daemon opens one; forked
 * children open it again to be processes of their own. */
static char lock_path[64];

static bool
lock_file_reopen(void)
{
	char err[256];

	if (store_lock_file_open(lock_path, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)))
		return true;
	fprintf(stderr, "%s: %s\n", lock_path, err);
	return false;
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
	snprintf(fx->root, sizeof(fx->root), "/tmp/posuto-store-XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	/* the tree is chowned to nobody in one test: let it in */
	assert_int_equal(chmod(fx->root, 0755), 0);
	snprintf(fx->box, sizeof(fx->box), "%s/box", fx->root);
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

static void
pathf(char *out, size_t sz, const struct fx *fx, const char *rel)
{
	snprintf(out, sz, "%s/%s", fx->box, rel);
}

static void
put(const struct fx *fx, const char *rel, const char *data, size_t len)
{
	char p[512];
	int fd;

	pathf(p, sizeof(p), fx, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
puts_(const struct fx *fx, const char *rel, const char *data)
{
	put(fx, rel, data, strlen(data));
}

static bool
exists(const struct fx *fx, const char *rel)
{
	char p[512];
	struct stat st;

	pathf(p, sizeof(p), fx, rel);
	return lstat(p, &st) == 0;
}

static void
mk_maildir(const struct fx *fx)
{
	char p[512];

	assert_int_equal(mkdir(fx->box, 0700), 0);
	pathf(p, sizeof(p), fx, "new");
	assert_int_equal(mkdir(p, 0700), 0);
	pathf(p, sizeof(p), fx, "cur");
	assert_int_equal(mkdir(p, 0700), 0);
	pathf(p, sizeof(p), fx, "tmp");
	assert_int_equal(mkdir(p, 0700), 0);
}

static uint64_t
wsize_of(const char *s)
{
	struct wire_size ws;

	wire_size_init(&ws);
	wire_size_update(&ws, s, strlen(s));
	return wire_size_final(&ws);
}

static struct mailbox *
open_ok(const struct fx *fx, const char *f)
{
	struct mailbox *mb = NULL;
	char err[256];

	assert_int_equal(open_fmt(fx->box, f, &mb, err, sizeof(err)),
	    STORE_OK);
	assert_non_null(mb);
	return mb;
}

/* Reads message idx whole through the reader. */
static char *
read_msg(struct mailbox *mb, uint32_t idx, size_t *len_r)
{
	struct msg_reader *r = NULL;
	char *buf = NULL;
	size_t len = 0;
	char chunk[7];	/* small on purpose */
	ssize_t n;

	assert_int_equal(mailbox_msg_open(mb, idx, &r), STORE_OK);
	while ((n = msg_reader_read(r, chunk, sizeof(chunk))) > 0) {
		buf = realloc(buf, len + (size_t)n + 1);
		assert_non_null(buf);
		memcpy(buf + len, chunk, (size_t)n);
		len += (size_t)n;
	}
	assert_int_equal(n, 0);
	msg_reader_close(&r);
	assert_null(r);
	if (buf == NULL)
		buf = calloc(1, 1);
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

/* A message in new/ is moved to cur/ at QUIT even when nothing was read
 * or deleted: the commit is needed (the driver says so, not new/
 * knowledge in the caller); emldir has nothing to record. */
static void
test_commit_needed_for_new(void **state)
{
	struct fx *fx = *state;
	uint8_t none[1] = { 0 };
	struct mailbox *mb;
	uint32_t n;

	mk_maildir(fx);
	put(fx, "new/1700000000.M1P1.h", "a\r\n", 3);
	put(fx, "cur/1600000000.M1P1.h:2,S", "b\r\n", 3);
	mb = open_ok(fx, "maildir");
	assert_true(mailbox_commit_needed(mb, none));
	assert_int_equal(mailbox_commit(mb, none, &n), STORE_OK);
	mailbox_close(&mb);
	assert_true(exists(fx, "cur/1700000000.M1P1.h:2,"));
	mb = open_ok(fx, "maildir");
	assert_false(mailbox_commit_needed(mb, none));
	mailbox_close(&mb);
	mb = open_ok(fx, "emldir");
	assert_false(mailbox_commit_needed(mb, none));
	mailbox_close(&mb);
}

static const char *M1 = "From: a\nSubject: lf\n\nline\n.dot\n";
static const char *M2 = "From: b\r\nSubject: crlf\r\n\r\nbody\r\n";
static const char *M3 = "From: c\n\nno final newline";

static void
fill_maildir(const struct fx *fx)
{
	mk_maildir(fx);
	puts_(fx, "new/1700000002.M1P1.host", M3);
	puts_(fx, "cur/1700000000.M1P1.host:2,S", M1);
	puts_(fx, "new/1700000001.M1P1.host", M2);
}

static void
test_maildir_basic(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char *body;
	size_t len;

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 3);
	/* delivery order, new/ and cur/ merged */
	assert_string_equal(mailbox_msg_uidl(mb, 0), "1700000000.M1P1.host");
	assert_string_equal(mailbox_msg_uidl(mb, 1), "1700000001.M1P1.host");
	assert_string_equal(mailbox_msg_uidl(mb, 2), "1700000002.M1P1.host");
	assert_int_equal(mailbox_msg_size(mb, 0), wsize_of(M1));
	assert_int_equal(mailbox_msg_size(mb, 1), strlen(M2));
	assert_int_equal(mailbox_msg_size(mb, 2), strlen(M3) + 4);
	assert_int_equal(mailbox_total_size(mb),
	    wsize_of(M1) + strlen(M2) + strlen(M3) + 4);
	body = read_msg(mb, 0, &len);
	assert_int_equal(len, strlen(M1));
	assert_memory_equal(body, M1, len);
	free(body);
	mailbox_close(&mb);
	assert_null(mb);
	/* our one file lives in the root, never in new/ cur/ tmp/; the
	 * lock is not a file in the mailbox */
	assert_false(exists(fx, ".posuto.lock"));
	assert_true(exists(fx, ".posuto.index"));
}

static void
test_stray_files(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char p[512], t[512];

	fill_maildir(fx);
	puts_(fx, "tmp/1700000003.M1P1.host", "in delivery\n");
	puts_(fx, "new/.hidden", "x\n");
	puts_(fx, "cur/.1700000004.x", "x\n");
	pathf(p, sizeof(p), fx, "new/1700000005.dir");
	assert_int_equal(mkdir(p, 0700), 0);
	pathf(p, sizeof(p), fx, "new/1700000006.fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	/* a symlink to a readable file outside the mailbox */
	snprintf(t, sizeof(t), "%s/secret", fx->root);
	{
		int fd = open(t, O_WRONLY | O_CREAT, 0600);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "secret\n", 7), 7);
		close(fd);
	}
	pathf(p, sizeof(p), fx, "new/1700000007.link");
	assert_int_equal(symlink(t, p), 0);
	puts_(fx, "stray-in-root", "x\n");
	mb = open_ok(fx, "maildir");
	assert_int_equal(mailbox_count(mb), 3);
	mailbox_close(&mb);
}

static void
test_uidl_stable(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char *u[3], p[512];
	int pass, i;

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	for (i = 0; i < 3; i++)
		u[i] = strdup(mailbox_msg_uidl(mb, (uint32_t)i));
	mailbox_close(&mb);
	for (pass = 0; pass < 3; pass++) {
		if (pass == 2) {	/* without the index */
			pathf(p, sizeof(p), fx, ".posuto.index");
			assert_int_equal(unlink(p), 0);
		}
		mb = open_ok(fx, "auto");
		assert_int_equal(mailbox_count(mb), 3);
		for (i = 0; i < 3; i++)
			assert_string_equal(mailbox_msg_uidl(mb, (uint32_t)i),
			    u[i]);
		mailbox_close(&mb);
	}
	for (i = 0; i < 3; i++)
		free(u[i]);
}

static void
test_uidl_sanitised(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char longname[200];
	const char *u;
	size_t i;

	mk_maildir(fx);
	memset(longname, 0, sizeof(longname));
	memcpy(longname, "new/1700000000.", 15);
	for (i = 15; i < 15 + 100; i++)
		longname[i] = 'x';
	puts_(fx, longname, "a\n");
	puts_(fx, "new/1700000001.sp ace\x01.h", "b\n");
	mb = open_ok(fx, "maildir");
	assert_int_equal(mailbox_count(mb), 2);
	for (i = 0; i < 2; i++) {
		size_t j;

		u = mailbox_msg_uidl(mb, (uint32_t)i);
		assert_true(strlen(u) >= 1 && strlen(u) <= 70);
		for (j = 0; u[j] != '\0'; j++)
			assert_true(u[j] >= 0x21 && u[j] <= 0x7e);
	}
	assert_string_not_equal(mailbox_msg_uidl(mb, 0),
	    mailbox_msg_uidl(mb, 1));
	mailbox_close(&mb);
}

static void
test_lock_same_process(void **state)
{
	struct fx *fx = *state;
	struct mailbox *a, *b = NULL;
	char err[128];

	fill_maildir(fx);
	a = open_ok(fx, "auto");
	assert_int_equal(open_fmt(fx->box, "auto", &b, err,
	    sizeof(err)), STORE_IN_USE);
	assert_null(b);
	mailbox_close(&a);
	b = open_ok(fx, "auto");
	mailbox_close(&b);
}

static int
child_open(const struct fx *fx)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mailbox *mb = NULL;
		enum store_status st;

		if (!lock_file_reopen())	/* its own lock owner */
			_exit(99);
		st = open_fmt(fx->box, "auto", &mb, NULL, 0);
		mailbox_close(&mb);
		_exit((int)st);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_lock_cross_process(void **state)
{
	struct fx *fx = *state;
	struct mailbox *a;
	int pfd[2];
	pid_t holder;
	char c;

	fill_maildir(fx);
	a = open_ok(fx, "auto");
	assert_int_equal(child_open(fx), STORE_IN_USE);
	mailbox_close(&a);
	assert_int_equal(child_open(fx), STORE_OK);

	/* a holder that dies without closing leaves no stale lock */
	assert_int_equal(pipe(pfd), 0);
	holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		struct mailbox *mb = NULL;

		close(pfd[0]);
		if (!lock_file_reopen())
			_exit(99);
		if (open_fmt(fx->box, "auto", &mb, NULL, 0) !=
		    STORE_OK)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	{
		struct mailbox *b = NULL;

		assert_int_equal(open_fmt(fx->box, "auto", &b,
		    NULL, 0), STORE_IN_USE);
	}
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	a = open_ok(fx, "auto");
	mailbox_close(&a);
}

static void
test_lock_other_mailbox(void **state)
{
	struct fx *fx = *state;
	struct fx other = *fx;
	struct mailbox *a, *b;

	fill_maildir(fx);
	snprintf(other.box, sizeof(other.box), "%s/other", fx->root);
	fill_maildir(&other);
	a = open_ok(fx, "auto");
	b = open_ok(&other, "auto");	/* this process */
	mailbox_close(&b);
	assert_int_equal(child_open(&other), STORE_OK);	/* another one */
	assert_int_equal(child_open(fx), STORE_IN_USE);
	mailbox_close(&a);
	assert_int_equal(child_open(fx), STORE_OK);
}

/* Descriptors this process has open now. */
static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* opendir()'s own */
}

/* An open mailbox, locked, holds no descriptor at all: a session costs
 * its socket only. */
static void
test_lock_holds_no_fd(void **state)
{
	struct fx *fx = *state;
	struct fx eml = *fx;
	struct mailbox *a, *b = NULL, *c = NULL;
	char *body;
	size_t len;
	int before;

	fill_maildir(fx);
	snprintf(eml.box, sizeof(eml.box), "%s/eml", fx->root);
	assert_int_equal(mkdir(eml.box, 0700), 0);
	puts_(&eml, "1.eml", M1);
	before = count_fds();
	for (int round = 0; round < 2; round++) {	/* cold, then warm */
		a = open_ok(fx, "auto");
		b = open_ok(&eml, "auto");
		assert_int_equal(count_fds(), before);
		assert_int_equal(open_fmt(fx->box, "auto", &c,
		    NULL, 0), STORE_IN_USE);
		assert_null(c);
		assert_int_equal(child_open(fx), STORE_IN_USE);
		/* reopened on demand, and the right files */
		body = read_msg(a, 0, &len);
		assert_int_equal(len, strlen(M1));
		assert_memory_equal(body, M1, len);
		free(body);
		mailbox_close(&a);
		mailbox_close(&b);
		assert_int_equal(count_fds(), before);
	}
	b = open_ok(&eml, "auto");
	body = read_msg(b, 0, &len);
	assert_int_equal(len, strlen(M1));
	free(body);
	mailbox_close(&b);
}

/* The mailbox directory is replaced during the session (renamed away, a
 * new one with the same names put in its place): the session must not
 * read or delete in the new one. */
static void
test_lock_root_replaced(void **state)
{
	struct fx *fx = *state;
	struct fx old = *fx;
	struct mailbox *a;
	struct msg_reader *r = NULL;
	uint8_t del[1] = { 0x07 };
	uint32_t n = 99;

	fill_maildir(fx);
	a = open_ok(fx, "auto");
	snprintf(old.box, sizeof(old.box), "%s/box.old", fx->root);
	assert_int_equal(rename(fx->box, old.box), 0);
	fill_maildir(fx);
	assert_int_equal(mailbox_msg_open(a, 1, &r), STORE_TEMP);
	assert_null(r);
	assert_int_equal(mailbox_commit(a, del, &n), STORE_TEMP);
	assert_int_equal(n, 0);
	mailbox_close(&a);
	assert_true(exists(fx, "cur/1700000000.M1P1.host:2,S"));
	assert_true(exists(fx, "new/1700000001.M1P1.host"));
	assert_true(exists(fx, "new/1700000002.M1P1.host"));
	assert_true(exists(&old, "cur/1700000000.M1P1.host:2,S"));
	assert_true(exists(&old, "new/1700000001.M1P1.host"));
	assert_true(exists(&old, "new/1700000002.M1P1.host"));
	/* the new directory is a mailbox of its own, and unlocked */
	a = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(a), 3);
	mailbox_close(&a);
}

static void
test_lock_file_checks(void **state)
{
	struct fx *fx = *state;
	char p[160], err[256];
	struct stat st;
	int fd;

	snprintf(p, sizeof(p), "%s/no/such.lock", fx->root);
	err[0] = '\0';
	assert_false(store_lock_file_open(p, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)));
	assert_non_null(strstr(err, strerror(ENOENT)));

	snprintf(p, sizeof(p), "%s/link.lock", fx->root);
	assert_int_equal(symlink(lock_path, p), 0);
	assert_false(store_lock_file_open(p, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "symbolic link"));

	snprintf(p, sizeof(p), "%s/fifo.lock", fx->root);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_false(store_lock_file_open(p, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "regular file"));

	snprintf(p, sizeof(p), "%s/new.lock", fx->root);
	assert_true(store_lock_file_open(p, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)));
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_uid, geteuid());

	if (geteuid() == 0) {
		/* someone else's file could be locked by them: refused,
		 * unless it is RunAsUser's */
		snprintf(p, sizeof(p), "%s/nobody.lock", fx->root);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_false(store_lock_file_open(p, (uid_t)-1, (gid_t)-1, err,
		    sizeof(err)));
		assert_non_null(strstr(err, "owned by uid 65534"));
		assert_false(store_lock_file_open(p, 1234, 1234, err,
		    sizeof(err)));
		assert_true(store_lock_file_open(p, 65534, 65534, err,
		    sizeof(err)));
		/* root's file (new or not) is handed to RunAsUser */
		snprintf(p, sizeof(p), "%s/handed.lock", fx->root);
		assert_true(store_lock_file_open(p, 65534, 65534, err,
		    sizeof(err)));
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	assert_true(lock_file_reopen());
}

/* Every posuto process, of any version, must map a mailbox to the same
 * byte: pinned values. */
static void
test_lock_offset_fixed(void **state)
{
	(void)state;
	assert_int_equal(store_lock_offset(0, 0),
	    UINT64_C(0x2706dd2f4d197e6f));
	assert_int_equal(store_lock_offset(2049, 12345),
	    UINT64_C(0x1cd04b63c5619ba5));
	assert_int_equal(store_lock_offset(66306, 2),
	    UINT64_C(0x236535c4ff900f06));
	assert_int_not_equal(store_lock_offset(1, 2), store_lock_offset(2, 1));
	for (uint64_t i = 0; i < 1000; i++)
		assert_true(store_lock_offset((dev_t)i, (ino_t)(i * 7919)) <
		    (UINT64_C(1) << 62));
}

static void
test_commit(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	uint8_t del[1] = { 0 };
	uint32_t n = 99;

	fill_maildir(fx);
	puts_(fx, "cur/1700000003.M1P1.host:2,FR", "x\n");
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 4);
	mailbox_msg_mark_seen(mb, 1);	/* new/ ...01: gets S */
	mailbox_msg_mark_seen(mb, 3);	/* cur/ ...03: FR -> FRS */
	del[0] = 1u << 2;		/* delete new/ ...02 */
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	assert_int_equal(n, 1);
	mailbox_close(&mb);
	assert_false(exists(fx, "new/1700000002.M1P1.host"));
	assert_false(exists(fx, "new/1700000001.M1P1.host"));
	assert_true(exists(fx, "cur/1700000001.M1P1.host:2,S"));
	assert_true(exists(fx, "cur/1700000000.M1P1.host:2,S"));
	assert_true(exists(fx, "cur/1700000003.M1P1.host:2,FRS"));
	assert_false(exists(fx, "cur/1700000003.M1P1.host:2,FR"));

	/* the UIDLs survive the moves; the index follows them */
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 3);
	assert_string_equal(mailbox_msg_uidl(mb, 1), "1700000001.M1P1.host");
	assert_int_equal(mailbox_msg_size(mb, 1), strlen(M2));
	mailbox_close(&mb);
}

static void
test_commit_unseen_moves(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	uint32_t n;

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_commit(mb, NULL, &n), STORE_OK);
	assert_int_equal(n, 0);
	mailbox_close(&mb);
	assert_true(exists(fx, "cur/1700000001.M1P1.host:2,"));
	assert_true(exists(fx, "cur/1700000002.M1P1.host:2,"));
	assert_true(exists(fx, "cur/1700000000.M1P1.host:2,S"));
}

static void
test_close_without_commit(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	mailbox_msg_mark_seen(mb, 1);
	mailbox_close(&mb);
	assert_true(exists(fx, "new/1700000001.M1P1.host"));
	assert_true(exists(fx, "new/1700000002.M1P1.host"));
	assert_true(exists(fx, "cur/1700000000.M1P1.host:2,S"));
}

static void
test_delivery_during_session(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	uint8_t del[1] = { 0x01 };
	uint32_t n;

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	puts_(fx, "new/1600000000.M9P9.host", "older name, arrives late\n");
	puts_(fx, "new/1800000000.M9P9.host", "late\n");
	assert_int_equal(mailbox_count(mb), 3);
	assert_string_equal(mailbox_msg_uidl(mb, 0), "1700000000.M1P1.host");
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	mailbox_close(&mb);
	/* the late mail is untouched: not deleted, not moved */
	assert_true(exists(fx, "new/1600000000.M9P9.host"));
	assert_true(exists(fx, "new/1800000000.M9P9.host"));
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 4);
	mailbox_close(&mb);
}

static void
test_vanished(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	struct msg_reader *r = NULL;
	uint8_t del[1] = { 0x02 };
	uint32_t n;
	char p[512];

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	pathf(p, sizeof(p), fx, "new/1700000001.M1P1.host");
	assert_int_equal(unlink(p), 0);
	errno = 0;
	assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_PERM);
	assert_int_equal(errno, ENOENT);
	assert_null(r);
	/* deleting what is already gone is not an error */
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	assert_int_equal(n, 1);
	mailbox_close(&mb);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 2);
	mailbox_close(&mb);
}

/* Another client (IMAP) moves a message new/ -> cur/ mid-session. */
static void
test_external_rename(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char a[512], b[512], *body;
	uint8_t del[1] = { 0x02 };
	size_t len;
	uint32_t n;

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	pathf(a, sizeof(a), fx, "new/1700000001.M1P1.host");
	pathf(b, sizeof(b), fx, "cur/1700000001.M1P1.host:2,F");
	assert_int_equal(rename(a, b), 0);
	body = read_msg(mb, 1, &len);
	assert_int_equal(len, strlen(M2));
	free(body);
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	assert_int_equal(n, 1);
	mailbox_close(&mb);
	assert_false(exists(fx, "cur/1700000001.M1P1.host:2,F"));

	/* moved before the session: same UIDL and size, from the index */
	pathf(a, sizeof(a), fx, "cur/1700000002.M1P1.host:2,");
	pathf(b, sizeof(b), fx, "cur/1700000002.M1P1.host:2,ST");
	assert_int_equal(rename(a, b), 0);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 2);
	assert_string_equal(mailbox_msg_uidl(mb, 1), "1700000002.M1P1.host");
	assert_int_equal(mailbox_msg_size(mb, 1), strlen(M3) + 4);
	mailbox_close(&mb);
}

/* A file seen in both new/ and cur/ (rename race) is one message. */
static void
test_duplicate_unique(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;

	fill_maildir(fx);
	puts_(fx, "cur/1700000001.M1P1.host:2,S", M2);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 3);
	assert_string_equal(mailbox_msg_uidl(mb, 1), "1700000001.M1P1.host");
	mailbox_close(&mb);
}

static void
check_sizes(const struct fx *fx)
{
	struct mailbox *mb = open_ok(fx, "auto");

	assert_int_equal(mailbox_count(mb), 3);
	assert_int_equal(mailbox_msg_size(mb, 0), wsize_of(M1));
	assert_int_equal(mailbox_msg_size(mb, 1), strlen(M2));
	assert_int_equal(mailbox_msg_size(mb, 2), strlen(M3) + 4);
	mailbox_close(&mb);
}

static void
test_index_damage(void **state)
{
	struct fx *fx = *state;
	char p[512];
	struct stat st;
	int fd, kind;

	fill_maildir(fx);
	check_sizes(fx);
	pathf(p, sizeof(p), fx, ".posuto.index");
	assert_int_equal(stat(p, &st), 0);
	for (kind = 0; kind < 5; kind++) {
		unsigned char b;

		fd = open(p, O_RDWR);
		assert_true(fd >= 0);
		switch (kind) {
		case 0:	/* truncated */
			assert_int_equal(ftruncate(fd, st.st_size / 2), 0);
			break;
		case 1:	/* one byte flipped in a size field */
			assert_int_equal(pread(fd, &b, 1, 48), 1);
			b ^= 0x40;
			assert_int_equal(pwrite(fd, &b, 1, 48), 1);
			break;
		case 2:	/* garbage */
			assert_int_equal(ftruncate(fd, 0), 0);
			assert_int_equal(write(fd, "garbage garbage garbage "
			    "garbage garbage garbage garbage\n", 56), 56);
			break;
		case 3:	/* empty */
			assert_int_equal(ftruncate(fd, 0), 0);
			break;
		case 4:	/* grown */
			assert_int_equal(pwrite(fd, "xx", 2, st.st_size), 2);
			break;
		}
		close(fd);
		check_sizes(fx);
		/* rebuilt: a valid index of the same size is back */
		{
			struct stat st2;

			assert_int_equal(stat(p, &st2), 0);
			assert_int_equal(st2.st_size, st.st_size);
		}
	}
	assert_int_equal(unlink(p), 0);
	check_sizes(fx);
	assert_true(exists(fx, ".posuto.index"));
	/* a symlink in place of the index is neither followed nor kept */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	check_sizes(fx);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void
test_index_external_changes(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char p[512];

	fill_maildir(fx);
	check_sizes(fx);
	/* MTA adds, someone removes, someone re-flags */
	puts_(fx, "new/1700000009.M1P1.host", "added\n.\n");
	pathf(p, sizeof(p), fx, "cur/1700000000.M1P1.host:2,S");
	assert_int_equal(unlink(p), 0);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 3);
	assert_string_equal(mailbox_msg_uidl(mb, 2), "1700000009.M1P1.host");
	assert_int_equal(mailbox_msg_size(mb, 2), 10);
	assert_int_equal(mailbox_msg_size(mb, 0), strlen(M2));
	mailbox_close(&mb);

	/* same unique name, new file (different inode): recomputed.  The
	 * new file is made while the old one exists, as a delivery through
	 * tmp/ would, so the filesystem cannot hand out the old inode. */
	puts_(fx, "tmp/replacement", "now longer\nand longer\n");
	{
		char t[512];

		pathf(t, sizeof(t), fx, "tmp/replacement");
		pathf(p, sizeof(p), fx, "new/1700000009.M1P1.host");
		assert_int_equal(rename(t, p), 0);
	}
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_msg_size(mb, 2), 24);
	mailbox_close(&mb);
}

/* A file rewritten in place (same inode): the reader notices, it is not
 * served as the message LIST described, and the index is dropped so the
 * next session has the true size. */
static void
test_index_in_place_rewrite(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	struct msg_reader *r = NULL;

	fill_maildir(fx);
	check_sizes(fx);
	puts_(fx, "new/1700000001.M1P1.host", "short\r\n");
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_msg_size(mb, 1), strlen(M2));	/* stale */
	assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_TEMP);
	assert_int_equal(errno, ESTALE);
	assert_null(r);
	mailbox_close(&mb);
	assert_false(exists(fx, ".posuto.index"));
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_msg_size(mb, 1), 7);
	mailbox_close(&mb);
}

/* Truncated or rewritten while a reader has it open: the reader never
 * ends as if the message were whole, and says it changed. */
static void
test_reader_sees_change(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	struct msg_reader *r = NULL;
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
	char p[512], buf[8];
	int fd;

	fill_maildir(fx);
	mb = open_ok(fx, "auto");
	pathf(p, sizeof(p), fx, "new/1700000001.M1P1.host");
	/* truncated after the first read */
	assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_OK);
	assert_true(msg_reader_unchanged(r));
	assert_int_equal(msg_reader_read(r, buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(truncate(p, sizeof(buf)), 0);
	assert_int_equal(msg_reader_read(r, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
	assert_false(msg_reader_unchanged(r));
	msg_reader_close(&r);
	mailbox_close(&mb);
	/* the same size, other bytes: only the mtime tells */
	puts_(fx, "new/1700000001.M1P1.host", M2);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_OK);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 0), 1);
	assert_int_equal(futimens(fd, ts), 0);	/* whatever the clock */
	close(fd);
	assert_false(msg_reader_unchanged(r));
	msg_reader_close(&r);
	/* a rename (another client's flags) is no change */
	assert_int_equal(mailbox_msg_open(mb, 0, &r), STORE_OK);
	{
		char q[512];

		pathf(p, sizeof(p), fx, "cur/1700000000.M1P1.host:2,S");
		pathf(q, sizeof(q), fx, "cur/1700000000.M1P1.host:2,RS");
		assert_int_equal(rename(p, q), 0);
	}
	assert_true(msg_reader_unchanged(r));
	msg_reader_close(&r);
	mailbox_close(&mb);
}

static void
test_size_hints(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;

	mk_maildir(fx);
	/* W= is the wire size and is believed without reading the file */
	puts_(fx, "new/1700000000.M1P1.host,S=4,W=1234", "abc\n");
	/* S= alone is not a wire size: LF file, computed */
	puts_(fx, "new/1700000001.M1P1.host,S=4", "abc\n");
	mb = open_ok(fx, "maildir");
	assert_int_equal(mailbox_msg_size(mb, 0), 1234);
	assert_int_equal(mailbox_msg_size(mb, 1), 5);
	assert_string_equal(mailbox_msg_uidl(mb, 1),
	    "1700000001.M1P1.host,S=4");
	mailbox_close(&mb);
}

static void
test_wire_fd(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	struct msg_reader *r;
	off_t off = -1, len = 0;
	int pass;

	fill_maildir(fx);
	for (pass = 0; pass < 2; pass++) {	/* cold, then from index */
		mb = open_ok(fx, "auto");
		assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_OK);
		assert_true(msg_reader_wire_fd(r, &off, &len) >= 0);
		assert_int_equal(off, 0);	/* the message file itself */
		assert_int_equal(len, (off_t)strlen(M2));
		msg_reader_close(&r);
		assert_int_equal(mailbox_msg_open(mb, 0, &r), STORE_OK);
		assert_int_equal(msg_reader_wire_fd(r, &off, &len), -1);
		msg_reader_close(&r);
		mailbox_close(&mb);
	}
}

static void
test_missing_and_bad_paths(void **state)
{
	struct fx *fx = *state;
	struct mailbox *a, *b = NULL;
	uint32_t n;
	char err[256];
	int fd;

	a = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(a), 0);
	assert_int_equal(mailbox_total_size(a), 0);
	assert_int_equal(mailbox_commit(a, NULL, &n), STORE_OK);
	b = open_ok(fx, "maildir");	/* no lock, no conflict */
	mailbox_close(&b);
	mailbox_close(&a);
	assert_false(exists(fx, ""));	/* nothing was created */

	fd = open(fx->box, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open_fmt(fx->box, "auto", &b, err,
	    sizeof(err)), STORE_PERM);
	assert_null(b);
	assert_true(strlen(err) > 0);
}

static int
chown_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return lchown(p, 65534, 65534);
}

/* What the child of test_unreadable_message checks, as nobody: the
 * mailbox opens, the unreadable file is listed (size from its S= hint)
 * but not served, its neighbours are, and DELE removes it. */
static int
unreadable_child(const struct fx *fx)
{
	struct mailbox *mb = NULL;
	struct msg_reader *r = NULL;
	uint8_t del[1] = { 0x02 };
	uint32_t n = 0;
	char p[512];

	if (open_fmt(fx->box, "auto", &mb, NULL, 0) != STORE_OK)
		return 10;
	if (mailbox_count(mb) != 3 || mailbox_msg_size(mb, 1) != 1234)
		return 11;
	if (mailbox_msg_open(mb, 1, &r) != STORE_TEMP || r != NULL)
		return 12;
	if (mailbox_msg_open(mb, 0, &r) != STORE_OK)
		return 13;
	msg_reader_close(&r);
	if (mailbox_msg_open(mb, 2, &r) != STORE_OK)
		return 14;
	msg_reader_close(&r);
	if (mailbox_commit(mb, del, &n) != STORE_OK || n != 1)
		return 15;
	mailbox_close(&mb);
	if (open_fmt(fx->box, "auto", &mb, NULL, 0) != STORE_OK ||
	    mailbox_count(mb) != 2)
		return 16;
	mailbox_close(&mb);
	/* a directory that cannot be read is still the mailbox's error */
	pathf(p, sizeof(p), fx, "cur");
	if (chmod(p, 0) != 0)
		return 17;
	if (open_fmt(fx->box, "auto", &mb, NULL, 0) != STORE_TEMP)
		return 18;
	return 0;
}

static void
test_unreadable_message(void **state)
{
	struct fx *fx = *state;
	char p[512], q[512];
	pid_t pid;
	int status;

	fill_maildir(fx);
	pathf(p, sizeof(p), fx, "new/1700000001.M1P1.host");
	pathf(q, sizeof(q), fx, "new/1700000001.M1P1.host,S=1234");
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(chmod(q, 0), 0);
	/* root reads mode-000 files anyway: run the open as nobody */
	if (geteuid() == 0)
		assert_int_equal(nftw(fx->box, chown_cb, 16, FTW_PHYS), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) != 0 ||
		    setuid(65534) != 0))
			_exit(100);
		_exit(unreadable_child(fx));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(exists(fx, "new/1700000001.M1P1.host,S=1234"));
}

/* A message file that is not its directory owner's (a hard link to
 * another user's message) is listed but never served; DELE removes the
 * link only. */
static void
test_foreign_owner(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	struct msg_reader *r = NULL;
	uint8_t del[1] = { 0x02 };
	char p[512], other[512];
	uint32_t n;
	int pass;

	if (geteuid() != 0)
		skip();
	fill_maildir(fx);
	snprintf(other, sizeof(other), "%s/other-users-message", fx->root);
	put(fx, "../other-users-message", M2, strlen(M2));
	assert_int_equal(chown(other, 65534, 65534), 0);
	pathf(p, sizeof(p), fx, "new/1700000001.M1P1.host");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(link(other, p), 0);
	/* cold (sized now) and warm (index): the same answer */
	for (pass = 0; pass < 2; pass++) {
		mb = open_ok(fx, "auto");
		assert_int_equal(mailbox_count(mb), 3);
		errno = 0;
		assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_PERM);
		assert_int_equal(errno, EPERM);
		assert_null(r);
		assert_int_equal(mailbox_msg_open(mb, 2, &r), STORE_OK);
		msg_reader_close(&r);
		mailbox_close(&mb);
	}
	/* owned by the mailbox's user again (chown): served */
	assert_int_equal(chown(other, 0, 0), 0);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_OK);
	msg_reader_close(&r);
	assert_int_equal(chown(other, 65534, 65534), 0);
	assert_int_equal(mailbox_msg_open(mb, 1, &r), STORE_PERM);
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	assert_int_equal(n, 1);
	mailbox_close(&mb);
	assert_false(exists(fx, "new/1700000001.M1P1.host"));
	assert_int_equal(access(other, F_OK), 0);
}

/* Directories every user may write to are refused. */
static void
test_world_writable(void **state)
{
	static const char *const dirs[] = { "", "/new", "/cur" };
	struct fx *fx = *state;
	struct mailbox *mb = NULL;
	char p[512], err[256];
	size_t i;

	fill_maildir(fx);
	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", fx->box, dirs[i]);
		assert_int_equal(chmod(p, 01777), 0);
		err[0] = '\0';
		assert_int_equal(open_fmt(fx->box, "auto", &mb,
		    err, sizeof(err)), STORE_PERM);
		assert_null(mb);
		assert_non_null(strstr(err, "writable by every user"));
		assert_int_equal(chmod(p, 0750), 0);
	}
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 3);
	mailbox_close(&mb);
}

/* Enough files for the parallel (and io_uring batched) sizing, with
 * sizes around its first-read boundary (16 KiB) and reads of the rest. */
static void
test_size_many(void **state)
{
	struct fx *fx = *state;
	static const size_t sizes[] = { 0, 1, 2, 16383, 16384, 16385, 16386,
	    32768, 40000, 65536, 65537, 200000 };
	enum { N = 150 };
	uint64_t want[N], got[N], total = 0;
	struct mailbox *mb;
	char name[64];
	uint32_t i, j;

	mk_maildir(fx);
	for (i = 0; i < N; i++) {
		size_t len = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))] + i;
		char *m = malloc(len + 1);

		assert_non_null(m);
		for (j = 0; j < len; j++) {
			/* lines of varying length, some dotted, some CRLF */
			uint32_t k = (j * 7 + i) % 61;
			m[j] = k == 0 ? '\n' : k == 1 && i % 3 == 0 ? '\r' :
			    k == 2 ? '.' : (char)('a' + k % 26);
		}
		m[len] = '\0';
		want[i] = wsize_of(m);
		snprintf(name, sizeof(name), "new/17%08u.M%uP1.host", i, i);
		put(fx, name, m, len);
		free(m);
	}
	mb = open_ok(fx, "maildir");
	assert_int_equal(mailbox_count(mb), N);
	for (i = 0; i < N; i++) {
		got[i] = mailbox_msg_size(mb, i);
		total += got[i];
	}
	assert_int_equal(mailbox_total_size(mb), total);
	/* the order is the mailbox's: compare as multisets */
	for (i = 0; i < N; i++) {
		for (j = 0; j < N; j++)
			if (got[j] == want[i])
				break;
		assert_true(j < N);
		got[j] = UINT64_MAX;
	}
	mailbox_close(&mb);
}

/* --- emldir ------------------------------------------------------------ */

static void
fill_emldir(const struct fx *fx)
{
	char p[512];

	assert_int_equal(mkdir(fx->box, 0700), 0);
	puts_(fx, "10.eml", M3);
	puts_(fx, "2.eml", M2);
	puts_(fx, "1.eml", M1);
	puts_(fx, "notes.txt", "x\n");
	puts_(fx, "3.eml.bak", "x\n");
	puts_(fx, "x.eml", "x\n");
	puts_(fx, ".eml", "x\n");
	pathf(p, sizeof(p), fx, "4.eml");
	assert_int_equal(symlink("1.eml", p), 0);
	pathf(p, sizeof(p), fx, "5.eml");
	assert_int_equal(mkdir(p, 0700), 0);
}

static void
test_emldir_basic(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char *u[3];
	int pass, i;
	char p[512];

	fill_emldir(fx);
	for (pass = 0; pass < 3; pass++) {
		if (pass == 2) {
			pathf(p, sizeof(p), fx, ".posuto.index");
			assert_int_equal(unlink(p), 0);
		}
		mb = open_ok(fx, "auto");
		assert_int_equal(mailbox_count(mb), 3);
		assert_int_equal(mailbox_msg_size(mb, 0), wsize_of(M1));
		assert_int_equal(mailbox_msg_size(mb, 1), strlen(M2));
		assert_int_equal(mailbox_msg_size(mb, 2), strlen(M3) + 4);
		for (i = 0; i < 3; i++) {
			const char *x = mailbox_msg_uidl(mb, (uint32_t)i);

			assert_int_equal(strlen(x), 33);
			if (pass == 0)
				u[i] = strdup(x);
			else
				assert_string_equal(x, u[i]);
		}
		mailbox_close(&mb);
	}
	assert_string_not_equal(u[0], u[1]);
	for (i = 0; i < 3; i++)
		free(u[i]);
}

static void
test_emldir_reuse_and_duplicates(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char *old;
	char p[512];

	fill_emldir(fx);
	puts_(fx, "6.eml", M1);		/* identical copy of 1.eml */
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 4);
	assert_string_not_equal(mailbox_msg_uidl(mb, 0),
	    mailbox_msg_uidl(mb, 2));
	old = strdup(mailbox_msg_uidl(mb, 0));
	mailbox_close(&mb);

	/* 1.eml deleted, later a different message takes the name */
	pathf(p, sizeof(p), fx, "1.eml");
	assert_int_equal(unlink(p), 0);
	puts_(fx, "1.eml", "From: z\n\nanother message\n");
	mb = open_ok(fx, "auto");
	assert_string_not_equal(mailbox_msg_uidl(mb, 0), old);
	mailbox_close(&mb);
	free(old);
}

static void
test_emldir_commit(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	uint8_t del[1] = { 0x05 };	/* 1.eml and 10.eml */
	uint32_t n;
	struct msg_reader *r = NULL;

	fill_emldir(fx);
	mb = open_ok(fx, "emldir");
	/* 10.eml replaced by another message under the same name */
	{
		char p[512];

		pathf(p, sizeof(p), fx, "10.eml");
		assert_int_equal(unlink(p), 0);
		puts_(fx, "10.eml", "From: new\n\nnew mail in old slot\n");
	}
	assert_int_equal(mailbox_msg_open(mb, 2, &r), STORE_PERM);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(mailbox_commit(mb, del, &n), STORE_OK);
	mailbox_close(&mb);
	assert_false(exists(fx, "1.eml"));
	assert_true(exists(fx, "2.eml"));
	assert_true(exists(fx, "10.eml"));	/* the new one survived */
	assert_true(exists(fx, "notes.txt"));
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 2);
	mailbox_close(&mb);
}

/* 200 files: enough to take the threaded sizing path. */
static void
test_many(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mb;
	char name[64];
	uint32_t i;
	uint64_t tot = 0;

	mk_maildir(fx);
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "new/%u.M%uP1.h", 1700000000u + i % 7, i);
		puts_(fx, name, i % 2 ? M1 : M2);
		tot += i % 2 ? wsize_of(M1) : strlen(M2);
	}
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_count(mb), 200);
	assert_int_equal(mailbox_total_size(mb), tot);
	for (i = 1; i < 200; i++)
		assert_string_not_equal(mailbox_msg_uidl(mb, i - 1),
		    mailbox_msg_uidl(mb, i));
	mailbox_close(&mb);
	mb = open_ok(fx, "auto");
	assert_int_equal(mailbox_total_size(mb), tot);
	mailbox_close(&mb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_commit_needed_for_new),
		T(test_maildir_basic),
		T(test_stray_files),
		T(test_uidl_stable),
		T(test_uidl_sanitised),
		T(test_lock_same_process),
		T(test_lock_cross_process),
		T(test_lock_other_mailbox),
		T(test_lock_holds_no_fd),
		T(test_lock_root_replaced),
		T(test_lock_file_checks),
		T(test_lock_offset_fixed),
		T(test_commit),
		T(test_commit_unseen_moves),
		T(test_close_without_commit),
		T(test_delivery_during_session),
		T(test_vanished),
		T(test_external_rename),
		T(test_duplicate_unique),
		T(test_index_damage),
		T(test_index_external_changes),
		T(test_index_in_place_rewrite),
		T(test_reader_sees_change),
		T(test_size_hints),
		T(test_wire_fd),
		T(test_missing_and_bad_paths),
		T(test_unreadable_message),
		T(test_foreign_owner),
		T(test_world_writable),
		T(test_size_many),
		T(test_emldir_basic),
		T(test_emldir_reuse_and_duplicates),
		T(test_emldir_commit),
		T(test_many),
#undef T
	};

	int fd, rc;

	log_init("test_store", false, LOG_LVL_ERROR);
	snprintf(lock_path, sizeof(lock_path), "/tmp/posuto-lock-XXXXXX");
	if ((fd = mkstemp(lock_path)) == -1)
		return 1;
	close(fd);
	if (!lock_file_reopen())
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(lock_path);
	return rc;
}
