/* mbox_lock.c - dotlock + fcntl locking of mbox files (see the header). */
#include "store/mbox_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/strutil.h"
#include "lib/xmalloc.h"

static atomic_uint mbox_dot_seq;

void
mbox_lock_opts_init(struct mbox_lock_opts *o)
{
	o->timeout_ms = MBOX_LOCK_TIMEOUT_MS;
	o->stale_sec = MBOX_LOCK_STALE_SEC;
	o->dotlock = true;
	o->dotlock_may_fail = true;
}

static uint64_t
mbox_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps before retry number `tries`, never past the deadline. */
static void
mbox_lock_backoff(unsigned tries, uint64_t deadline)
{
	uint64_t now = mbox_now_ms(), ms = tries < 5 ? 10u << tries : 100;
	struct timespec ts;

	if (now >= deadline)
		return;
	if (ms > deadline - now)
		ms = deadline - now;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/* Is the existing lock file at path stale?  Removes it if so. */
static void
mbox_dot_break_stale(const char *path, unsigned stale_sec)
{
	struct stat st, st2;
	char buf[32];
	bool stale = false;
	uint32_t pid;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	if (time(NULL) - st.st_mtime > (time_t)stale_sec)
		stale = true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (!stale && n > 0) {
		size_t len = 0;

		while (len < (size_t)n && buf[len] >= '0' && buf[len] <= '9')
			len++;
		/* A pid we can parse and that is gone: its owner died. */
		if (len > 0 && parse_u32(buf, len, &pid) && pid > 1 &&
		    pid <= 0x3fffffff && kill((pid_t)pid, 0) != 0 &&
		    errno == ESRCH)
			stale = true;
	}
	/* Remove only the file we judged, not one created since. */
	if (stale && lstat(path, &st2) == 0 && st2.st_ino == st.st_ino &&
	    st2.st_dev == st.st_dev)
		(void)unlink(path);
}

/*
 * 1: got it, 0: held by someone, -1: cannot create (errno set).
 * The lock file is written under a private name and then link()ed into
 * place, so it never exists without our pid in it: a crash between
 * create and write would leave an empty lock that others must respect
 * for stale_sec.  Where link() is refused, plain O_EXCL.
 */
static int
mbox_dot_try(struct mbox_lock *lk, const struct mbox_lock_opts *o)
{
	char pidbuf[32], *tmp;
	struct stat st;
	int fd, len, r, e;

	len = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	/* A name of this attempt's own: with one per process, threads of a
	 * server (LMTP workers, POP3 opens) reused each other's, and one
	 * could link another's file into place, find its own identity not
	 * there at release, and leave the lock held under our live pid. */
	tmp = xasprintf("%s.posuto.%ld.%u", lk->dot_path, (long)getpid(),
	    atomic_fetch_add(&mbox_dot_seq, 1));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd < 0 && errno == EEXIST) {
		/* left by a process of the same pid that died here */
		(void)unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		free(tmp);
		return -1;
	}
	if (write(fd, pidbuf, (size_t)len) != len || fstat(fd, &st) != 0) {
		e = errno ? errno : EIO;
		close(fd);
		(void)unlink(tmp);
		free(tmp);
		errno = e;
		return -1;
	}
	close(fd);
	r = link(tmp, lk->dot_path);
	e = errno;
	if (r != 0 && e != EEXIST) {
		/* no hard links here: the classic O_EXCL create */
		fd = open(lk->dot_path, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0644);
		e = errno;
		if (fd >= 0) {
			if (write(fd, pidbuf, (size_t)len) != len ||
			    fstat(fd, &st) != 0) {
				e = errno ? errno : EIO;
				close(fd);
				(void)unlink(lk->dot_path);
				fd = -1;
			} else
				close(fd);
		}
		r = fd >= 0 ? 0 : -1;
	}
	(void)unlink(tmp);
	free(tmp);
	if (r != 0) {
		if (e == EEXIST) {
			mbox_dot_break_stale(lk->dot_path, o->stale_sec);
			return 0;
		}
		errno = e;
		return -1;
	}
	lk->dot_dev = st.st_dev;
	lk->dot_ino = st.st_ino;
	lk->have_dot = true;
	return 1;
}

enum mbox_status
mbox_lock_acquire(struct mbox_lock *lk, int fd, const char *path,
    const struct mbox_lock_opts *o, char *err, size_t errsz)
{
	uint64_t deadline = mbox_now_ms() + o->timeout_ms;
	struct flock fl;
	unsigned tries = 0;
	int acc;

	memset(lk, 0, sizeof(*lk));
	lk->fd = fd;
	if (o->dotlock) {
		lk->dot_path = xasprintf("%s.lock", path);
		for (;;) {
			int r = mbox_dot_try(lk, o);

			if (r == 1)
				break;
			if (r < 0) {
				if (o->dotlock_may_fail && (errno == EACCES ||
				    errno == EPERM || errno == EROFS))
					break;
				snprintf(err, errsz, "cannot create %s: %s",
				    lk->dot_path, strerror(errno));
				mbox_lock_release(lk);
				return MBOX_TEMP;
			}
			if (mbox_now_ms() >= deadline) {
				snprintf(err, errsz, "%s is held by another "
				    "program", lk->dot_path);
				mbox_lock_release(lk);
				return MBOX_TEMP;
			}
			mbox_lock_backoff(tries++, deadline);
		}
	}
	acc = fcntl(fd, F_GETFL);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = acc >= 0 && (acc & O_ACCMODE) == O_RDONLY ?
	    F_RDLCK : F_WRLCK;
	fl.l_whence = SEEK_SET;
	for (tries = 0;; tries++) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			break;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
			snprintf(err, errsz, "fcntl lock: %s", strerror(errno));
			mbox_lock_release(lk);
			return MBOX_TEMP;
		}
		if (mbox_now_ms() >= deadline) {
			snprintf(err, errsz, "mailbox is locked (fcntl) by "
			    "another program");
			mbox_lock_release(lk);
			return MBOX_TEMP;
		}
		mbox_lock_backoff(tries, deadline);
	}
	lk->have_fcntl = true;
	return MBOX_OK;
}

void
mbox_lock_touch(struct mbox_lock *lk)
{
	if (lk->have_dot)
		(void)utimensat(AT_FDCWD, lk->dot_path, NULL,
		    AT_SYMLINK_NOFOLLOW);
}

void
mbox_lock_release(struct mbox_lock *lk)
{
	struct stat st;

	if (lk->have_fcntl) {
		struct flock fl;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_UNLCK;
		fl.l_whence = SEEK_SET;
		(void)fcntl(lk->fd, F_OFD_SETLK, &fl);
		lk->have_fcntl = false;
	}
	if (lk->have_dot && lstat(lk->dot_path, &st) == 0 &&
	    st.st_ino == lk->dot_ino && st.st_dev == lk->dot_dev)
		(void)unlink(lk->dot_path);
	lk->have_dot = false;
	free(lk->dot_path);
	lk->dot_path = NULL;
}
