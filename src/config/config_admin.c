/*
 * config_admin.c - writes the web admin's password hash into the config
 * file (`posuto admin passwd`, and the first start that generates one).
 *
 * Minimal on purpose: the general editor of the file (users, settings
 * from the web admin) is src/config/config_edit.c; this is one key, with
 * the same atomic replace (temp, fsync, rename, fsync of the directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/xmalloc.h"

static bool
config_admin_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

bool
config_admin_set_password_hash(const char *path, const char *hash,
    char *err, size_t errsz)
{
	char real[PATH_MAX], tmp[PATH_MAX + 16], dir[PATH_MAX];
	json_error_t jerr;
	json_t *root, *admin;
	struct stat st;
	char *text = NULL, *slash;
	int fd = -1, dfd;
	bool ok = false;

	/* A symlinked config is edited where it lives, not replaced. */
	if (realpath(path, real) == NULL || stat(real, &st) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return false;
	}
	root = json_load_file(real, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		snprintf(err, errsz, "%s:%d: %s", path, jerr.line,
		    root == NULL ? jerr.text : "not a JSON object");
		json_decref(root);
		return false;
	}
	admin = json_object_get(root, "Admin");
	if (admin == NULL) {
		admin = json_object();
		json_object_set_new(root, "Admin", admin);
	} else if (!json_is_object(admin)) {
		snprintf(err, errsz, "%s: Admin: not an object", path);
		goto out;
	}
	json_object_set_new(admin, "PasswordHash", json_string(hash));
	/* jansson keeps the keys in the order read. */
	text = json_dumps(root, JSON_INDENT(2));
	if (text == NULL) {
		snprintf(err, errsz, "%s: cannot encode", path);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", real);
	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* Keep who may read it: the file holds hashes. */
	if (fchmod(fd, st.st_mode & 07777) != 0 ||
	    (geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) != 0) ||
	    !config_admin_write_all(fd, text, strlen(text)) ||
	    !config_admin_write_all(fd, "\n", 1) || fsync(fd) != 0) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, real) != 0) {
		snprintf(err, errsz, "%s: rename: %s", real, strerror(errno));
		goto out_unlink;
	}
	snprintf(dir, sizeof(dir), "%s", real);
	slash = strrchr(dir, '/');
	if (slash != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	dfd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	ok = true;
	goto out;
out_unlink:
	(void)unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	if (text != NULL) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	json_decref(root);
	return ok;
}
