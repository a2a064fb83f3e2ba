/*
 * store_login.c - LoginDelay's memory: the last successful login of a
 * mailbox in ".posuto.login" (store_policy.h), so that every posuto
 * process (daemons, --inetd instances) sees the same one.  It lives in
 * the mailbox rather than in a process because an --inetd process
 * serves one session and forgets everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "store/store_int.h"
#include "store/store_policy.h"

#define LOGIN_MAGIC	"posuto-login 1 "

bool
store_login_parse(const char *buf, size_t len, uint64_t *t_r)
{
	size_t ml = strlen(LOGIN_MAGIC);

	if (len > ml && buf[len - 1] == '\n')
		len--;
	return len > ml && memcmp(buf, LOGIN_MAGIC, ml) == 0 &&
	    parse_u64(buf + ml, len - ml, t_r) && *t_r > 0;
}

bool
store_login_last(const char *dir, uint64_t *t_r)
{
	char path[4096], buf[64];
	struct stat st;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOGIN_NAME) >=
	    (int)sizeof(path))
		return false;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK);
	if (fd == -1)
		return false;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	do
		n = read(fd, buf, sizeof(buf));
	while (n == -1 && errno == EINTR);
	close(fd);
	return n > 0 && store_login_parse(buf, (size_t)n, t_r);
}

bool
mailbox_login_last(const struct mailbox *mb, uint64_t *t_r)
{
	return mb->drv->last_login != NULL && mb->drv->last_login(mb, t_r);
}

void
mailbox_login_record(struct mailbox *pub, uint64_t t)
{
	struct store_fs *mb = store_fs_of(pub);
	char buf[64];
	bool parked, ok;
	int root, fd, n;

	if (pub->drv->login_record != NULL) {
		pub->drv->login_record(pub, t);
		return;
	}
	if (pub->drv->fs == NULL)
		return;
	parked = mb->dirfd[STORE_DIR_ROOT] == -1;
	if (!mb->locked || (root = store_dirfd(mb, STORE_DIR_ROOT)) == -1)
		return;
	n = snprintf(buf, sizeof(buf), LOGIN_MAGIC "%llu\n",
	    (unsigned long long)t);
	/* Only the lock holder writes the tmp file; no fsync: a lost
	 * update costs one early login, and logins must not wait on disk. */
	fd = openat(root, STORE_LOGIN_TMP, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	ok = fd != -1 && write(fd, buf, (size_t)n) == n;
	if (fd != -1 && close(fd) == -1)
		ok = false;
	if (ok && renameat(root, STORE_LOGIN_TMP, root, STORE_LOGIN_NAME) == -1)
		ok = false;
	if (!ok) {
		log_warn("store: %s: cannot write %s", mb->path,
		    STORE_LOGIN_NAME);
		(void)unlinkat(root, STORE_LOGIN_TMP, 0);
	}
	/* parked again: an idle session holds no directory (store_fs.c) */
	if (parked) {
		close(root);
		mb->dirfd[STORE_DIR_ROOT] = -1;
		mb->parked |= 1u << STORE_DIR_ROOT;
	}
}
