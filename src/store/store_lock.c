/*
 * store_lock.c - the session lock: an in-process table of locked
 * mailboxes plus one OFD lock per mailbox on a shared lock file.
 *
 * Why not flock() on the mailbox directory, as before: that costs an open
 * directory per session for as long as it lasts, and descriptors, not
 * memory, are what runs out first with thousands of idle sessions.  One
 * lock file for the process carries every lock instead.
 *
 * Why OFD locks (F_OFD_SETLK) and not POSIX record locks: POSIX locks are
 * dropped when the process closes *any* fd of the file, and belong to the
 * process, which would make them invisible between our own threads.  OFD
 * locks belong to the open file description, so they live exactly as long
 * as our one descriptor (the process).  They do not exclude each other
 * within one description either, hence the table: it answers for this
 * process, the kernel for the others.  The kernel lock is taken and
 * released under the table's mutex, or an unlock by one thread could drop
 * the lock another thread had just taken on the same byte.
 *
 * The table and the descriptor are process-wide state by nature (they
 * describe the process's locks), the one exception to "no globals".
 */
#include "store/store_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"

#define STORE_LOCK_RUN_DIR	"/run/posuto"
#define STORE_LOCK_RUN_FILE	STORE_LOCK_RUN_DIR "/mailbox.lock"
/* Offsets are below 2^62: l_start + l_len stays far inside off_t. */
#define STORE_LOCK_OFF_MASK	((UINT64_C(1) << 62) - 1)
/* A byte no mailbox maps to, for probing OFD lock support. */
#define STORE_LOCK_PROBE_OFF	(UINT64_C(1) << 62)

struct lock_entry {
	struct lock_entry *next;
	uint64_t off;
	dev_t dev;
	ino_t ino;
};

static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;
static int lock_fd = -1;		/* the lock file; -1: in-process only */
static struct lock_entry **lock_tab;	/* chained by off; size a power of 2 */
static size_t lock_tab_size;
static size_t lock_count;

/* splitmix64's finaliser: a fixed bijection, the same in every process. */
static uint64_t
lock_mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

uint64_t
store_lock_offset(dev_t dev, ino_t ino)
{
	return lock_mix(lock_mix((uint64_t)dev) ^ (uint64_t)ino) &
	    STORE_LOCK_OFF_MASK;
}

const char *
store_lock_default_path(char *buf, size_t bufsz)
{
	const char *xdg;
	struct stat st;
	int n;

	if (geteuid() == 0) {
		/* A failure shows when the file cannot be opened. */
		if (mkdir(STORE_LOCK_RUN_DIR, 0755) == -1 && errno != EEXIST)
			log_warn("cannot create %s", STORE_LOCK_RUN_DIR);
		(void)snprintf(buf, bufsz, "%s", STORE_LOCK_RUN_FILE);
		return buf;
	}
	xdg = secure_getenv("XDG_RUNTIME_DIR");
	if (xdg != NULL && xdg[0] == '/' && stat(xdg, &st) == 0 &&
	    S_ISDIR(st.st_mode)) {
		n = snprintf(buf, bufsz, "%s/posuto-mailbox.lock", xdg);
		if (n > 0 && (size_t)n < bufsz)
			return buf;
	}
	(void)snprintf(buf, bufsz, "/tmp/posuto-%lu.lock",
	    (unsigned long)geteuid());
	return buf;
}

static int
lock_fcntl(int fd, int cmd, short type, uint64_t off)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));	/* l_pid must be 0 for OFD locks */
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
	return fcntl(fd, cmd, &fl);
}

/* Called with lock_mu held. */
static void
lock_table_clear(void)
{
	for (size_t i = 0; i < lock_tab_size; i++) {
		struct lock_entry *e = lock_tab[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(lock_tab);
	lock_tab = NULL;
	lock_tab_size = 0;
	lock_count = 0;
}

bool
store_lock_file_open(const char *path, uid_t run_as_uid, gid_t run_as_gid,
    char *err, size_t errsz)
{
	uid_t euid = geteuid();
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
	    0600);
	if (fd == -1) {
		if (errno == ELOOP)
			store_err(err, errsz, "is a symbolic link");
		else
			store_err(err, errsz, "cannot open: %s", strerror(errno));
		return false;
	}
	if (fstat(fd, &st) == -1) {
		store_err(err, errsz, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		store_err(err, errsz, "not a regular file");
		goto fail;
	}
	/* Whoever can open the file can hold every mailbox hostage. */
	if (st.st_uid != euid && st.st_uid != 0 &&
	    (run_as_uid == (uid_t)-1 || st.st_uid != run_as_uid)) {
		store_err(err, errsz, "owned by uid %lu, which is neither this "
		    "user, root nor RunAsUser", (unsigned long)st.st_uid);
		goto fail;
	}
	if (euid == 0 && run_as_uid != (uid_t)-1 && run_as_uid != 0 &&
	    st.st_uid == 0 && fchown(fd, run_as_uid, run_as_gid) == -1) {
		store_err(err, errsz, "cannot hand it to RunAsUser: %s",
		    strerror(errno));
		goto fail;
	}
	/* Better refused now than at every login (pre-3.15 kernels, some
	 * network file systems). */
	if (lock_fcntl(fd, F_OFD_GETLK, F_WRLCK, STORE_LOCK_PROBE_OFF) == -1) {
		store_err(err, errsz, "no OFD locks on this file system: %s",
		    strerror(errno));
		goto fail;
	}
	pthread_mutex_lock(&lock_mu);
	if (lock_fd != -1)
		close(lock_fd);
	lock_table_clear();
	lock_fd = fd;
	pthread_mutex_unlock(&lock_mu);
	return true;
fail:
	close(fd);
	return false;
}

/* Called with lock_mu held. */
static struct lock_entry **
lock_table_slot(uint64_t off)
{
	struct lock_entry **p;

	if (lock_tab_size == 0)
		return NULL;
	p = &lock_tab[off & (lock_tab_size - 1)];
	while (*p != NULL && (*p)->off != off)
		p = &(*p)->next;
	return p;
}

/* Called with lock_mu held; keeps chains short (load factor <= 1). */
static void
lock_table_grow(void)
{
	size_t nsize = lock_tab_size ? lock_tab_size * 2 : 64;
	struct lock_entry **ntab = xcalloc(nsize, sizeof(*ntab));

	for (size_t i = 0; i < lock_tab_size; i++) {
		struct lock_entry *e = lock_tab[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = ntab[e->off & (nsize - 1)];
			ntab[e->off & (nsize - 1)] = e;
		}
	}
	free(lock_tab);
	lock_tab = ntab;
	lock_tab_size = nsize;
}

enum store_status
store_lock_acquire(dev_t dev, ino_t ino, char *err, size_t errsz)
{
	uint64_t off = store_lock_offset(dev, ino);
	struct lock_entry **slot, *e;
	enum store_status st = STORE_OK;

	pthread_mutex_lock(&lock_mu);
	slot = lock_table_slot(off);
	if (slot != NULL && *slot != NULL) {
		/* this mailbox, or one sharing its byte: the kernel could not
		 * tell the two apart, so neither can we */
		store_err(err, errsz, "mailbox in use");
		st = STORE_IN_USE;
	} else if (lock_fd != -1 &&
	    lock_fcntl(lock_fd, F_OFD_SETLK, F_WRLCK, off) == -1) {
		if (errno == EAGAIN || errno == EACCES) {
			store_err(err, errsz, "mailbox in use by another "
			    "process");
			st = STORE_IN_USE;
		} else {
			store_err(err, errsz, "cannot lock mailbox: %s",
			    strerror(errno));
			st = STORE_TEMP;
		}
	} else {
		if (lock_count + 1 > lock_tab_size)
			lock_table_grow();
		e = xmalloc(sizeof(*e));
		e->off = off;
		e->dev = dev;
		e->ino = ino;
		e->next = lock_tab[off & (lock_tab_size - 1)];
		lock_tab[off & (lock_tab_size - 1)] = e;
		lock_count++;
	}
	pthread_mutex_unlock(&lock_mu);
	return st;
}

void
store_lock_release(dev_t dev, ino_t ino)
{
	uint64_t off = store_lock_offset(dev, ino);
	struct lock_entry **slot, *e;

	pthread_mutex_lock(&lock_mu);
	slot = lock_table_slot(off);
	if (slot != NULL && (e = *slot) != NULL && e->dev == dev &&
	    e->ino == ino) {
		if (lock_fd != -1 &&
		    lock_fcntl(lock_fd, F_OFD_SETLK, F_UNLCK, off) == -1)
			log_warn("store: cannot unlock mailbox lock byte");
		*slot = e->next;
		free(e);
		lock_count--;
	}
	pthread_mutex_unlock(&lock_mu);
}
