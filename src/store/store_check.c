/*
 * store_check.c - what check-config reports about a mailbox's
 * permissions: the cases mailbox_open() refuses (a directory every user
 * may write to) or mailbox_msg_open() will not serve (a file that is not
 * its directory owner's), and files with other hard links.  Reads
 * directories and inodes only, never message contents.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xmalloc.h"
#include "store/maildir_name.h"
#include "store/store.h"
#include "store/store_int.h"

/* Foreign files named one by one; the rest are counted. */
#define CHECK_NAMED	5

static bool
check_is_msg(const char *name, bool maildir)
{
	size_t len = strlen(name);
	struct maildir_name mn;

	if (maildir)
		return maildir_name_parse(name, len, &mn);
	return len > 4 && name[0] != '.' &&
	    strcmp(name + len - 4, ".eml") == 0;
}

/* One directory holding messages (new/, cur/ or an emldir). */
static unsigned
check_dir(const char *user, const char *path, const char *sub, int fd,
    bool maildir, FILE *out)
{
	struct store_dirscan *ds = xmalloc(sizeof(*ds));
	const struct dirent64 *de;
	unsigned problems = 0, foreign = 0, linked = 0;
	struct stat dst, st;

	if (fstat(fd, &dst) == -1 || !store_dirscan_start(ds, fd)) {
		fprintf(out, "warning: user %s: cannot read %s%s: %s\n", user,
		    path, sub, strerror(errno));
		free(ds);
		return 1;
	}
	if (dst.st_mode & S_IWOTH) {
		fprintf(out, "warning: user %s: %s%s is writable by every "
		    "user (mode %04o): logins are refused until you chmod "
		    "o-w it\n", user, path, sub,
		    (unsigned)(dst.st_mode & 07777));
		problems++;
	}
	while ((de = store_dirscan_next(ds)) != NULL) {
		if (!check_is_msg(de->d_name, maildir) ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (st.st_uid != dst.st_uid) {
			if (foreign++ < CHECK_NAMED)
				fprintf(out, "warning: user %s: %s%s/%s belongs "
				    "to uid %lu, not to the directory's owner "
				    "(uid %lu): it is not served\n", user, path,
				    sub, de->d_name, (unsigned long)st.st_uid,
				    (unsigned long)dst.st_uid);
		} else if (st.st_nlink > 1) {
			linked++;
		}
	}
	if (foreign > CHECK_NAMED)
		fprintf(out, "warning: user %s: %u more files in %s%s are not "
		    "their directory owner's\n", user, foreign - CHECK_NAMED,
		    path, sub);
	if (linked > 0)
		fprintf(out, "warning: user %s: %u message files in %s%s have "
		    "other hard links (served: only the same user can have "
		    "made them, e.g. Dovecot's hard-link copies)\n", user,
		    linked, path, sub);
	free(ds);
	return problems + foreign + (linked > 0);
}

unsigned
store_fs_check_dir(const char *user, const char *path, bool maildir,
    FILE *out)
{
	static const char *const subs[] = { "/new", "/cur" };
	struct stat st;
	unsigned problems = 0;
	int root;

	root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	if (root == -1) {
		if (errno == ENOENT)
			return 0;	/* no mail yet */
		fprintf(out, "warning: user %s: cannot open %s: %s\n", user,
		    path, strerror(errno));
		return 1;
	}
	if (!maildir) {
		problems = check_dir(user, path, "", root, false, out);
		close(root);
		return problems;
	}
	if (fstat(root, &st) == 0 && (st.st_mode & S_IWOTH)) {
		fprintf(out, "warning: user %s: %s is writable by every user "
		    "(mode %04o): logins are refused until you chmod o-w it\n",
		    user, path, (unsigned)(st.st_mode & 07777));
		problems++;
	}
	for (size_t i = 0; i < 2; i++) {
		int fd = openat(root, subs[i] + 1,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (fd == -1)
			continue;
		problems += check_dir(user, path, subs[i], fd, true, out);
		close(fd);
	}
	close(root);
	return problems;
}
