/*
 * config_edit.c - atomic, locked edits of the files the server reads
 * (config_edit.h), and of the JSON config's Users[] through jansson,
 * which keeps object members in file order, so every key the edit does
 * not touch comes back where it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "config/config_edit.h"
#include "config/config_schema.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

static void
edit_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
edit_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

static char *
edit_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* Read-only means: no write bit for the owner (root included, see the
 * header), or no write access for us; the same for the directory, which
 * the rename changes. */
static bool
edit_check_writable(const char *shown, const char *real,
    const struct stat *st, char *err, size_t errsz)
{
	char *dir = edit_dir_of(real);
	struct stat dst;
	bool ok = false;

	if ((st->st_mode & S_IWUSR) == 0)
		edit_err(err, errsz, "%s is read-only (mode %04o): not "
		    "changed (chmod u+w to allow edits)", shown,
		    (unsigned)(st->st_mode & 07777));
	else if (access(real, W_OK) != 0)
		edit_err(err, errsz, "%s is read-only: %s: not changed",
		    shown, strerror(errno));
	else if (stat(dir, &dst) != 0)
		edit_err(err, errsz, "%s: directory %s: %s", shown, dir,
		    strerror(errno));
	else if ((dst.st_mode & S_IWUSR) == 0 || access(dir, W_OK) != 0)
		edit_err(err, errsz, "%s: directory %s is read-only (%s): not "
		    "changed; the edit writes a new file there and renames "
		    "it", shown, dir, (dst.st_mode & S_IWUSR) == 0 ?
		    "no write permission" : strerror(errno));
	else
		ok = true;
	free(dir);
	return ok;
}

static bool
edit_read_all(int fd, const char *shown, char **data_r, size_t *len_r,
    char *err, size_t errsz)
{
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap + 1);

	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap >= CONFIG_MAX_FILE_SIZE) {
				edit_err(err, errsz, "%s: larger than %u bytes",
				    shown, CONFIG_MAX_FILE_SIZE);
				free(buf);
				return false;
			}
			cap *= 2;
			buf = xreallocarray(buf, cap + 1, 1);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			edit_err(err, errsz, "%s: read: %s", shown,
			    strerror(errno));
			free_secret(buf);
			return false;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*data_r = buf;
	*len_r = len;
	return true;
}

/* Takes the lock without waiting forever: a stuck editor is reported. */
static bool
edit_lock(int fd, const char *shown, char *err, size_t errsz)
{
	const struct timespec pause = { .tv_sec = 0, .tv_nsec = 20000000 };
	const unsigned tries = CONFIG_EDIT_LOCK_WAIT * 50;

	for (unsigned i = 0; i < tries; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			edit_err(err, errsz, "%s: lock: %s", shown,
			    strerror(errno));
			return false;
		}
		(void)nanosleep(&pause, NULL);
	}
	edit_err(err, errsz, "%s: another edit has held it locked for %d s; "
	    "nothing changed", shown, CONFIG_EDIT_LOCK_WAIT);
	return false;
}

bool
config_edit_file_open(struct config_edit_file *f, const char *path,
    bool for_write, char *err, size_t errsz)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	/* Bounded: each round is a concurrent edit that replaced the file
	 * between our open and our lock. */
	for (int round = 0; round < 1000; round++) {
		struct stat st, now;
		char *real = realpath(path, NULL);

		if (real == NULL) {
			edit_err(err, errsz, "%s: %s", path, strerror(errno));
			return false;
		}
		free(f->path);
		f->path = real;	/* a symlinked config: edit its target */
		f->fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (f->fd < 0 && errno == ENOENT)
			continue;
		if (f->fd < 0 || fstat(f->fd, &st) != 0) {
			edit_err(err, errsz, "%s: %s", path, strerror(errno));
			config_edit_file_close(f);
			return false;
		}
		if (!S_ISREG(st.st_mode)) {
			edit_err(err, errsz, "%s: not a regular file", path);
			config_edit_file_close(f);
			return false;
		}
		if (!edit_lock(f->fd, path, err, errsz)) {
			config_edit_file_close(f);
			return false;
		}
		if (stat(real, &now) != 0 || now.st_dev != st.st_dev ||
		    now.st_ino != st.st_ino) {
			close(f->fd);
			f->fd = -1;
			continue;
		}
		if ((for_write && !edit_check_writable(path, real, &st, err,
		    errsz)) ||
		    !edit_read_all(f->fd, path, &f->data, &f->len, err, errsz)) {
			config_edit_file_close(f);
			return false;
		}
		f->writable = for_write;
		f->mode = st.st_mode & 07777;
		f->uid = st.st_uid;
		f->gid = st.st_gid;
		return true;
	}
	edit_err(err, errsz, "%s: keeps being replaced; nothing changed", path);
	config_edit_file_close(f);
	return false;
}

static bool
edit_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= (size_t)n;
	}
	return true;
}

static void
edit_unstage(struct config_edit_file *f)
{
	if (f->tmp != NULL) {
		(void)unlink(f->tmp);
		free(f->tmp);
		f->tmp = NULL;
	}
}

bool
config_edit_file_stage(struct config_edit_file *f, const char *data,
    size_t len, char *err, size_t errsz)
{
	const char *base = strrchr(f->path, '/');
	char *dir = edit_dir_of(f->path);
	struct stat st;
	int fd, saved;

	edit_unstage(f);
	if (!f->writable) {
		edit_err(err, errsz, "%s: opened for reading only", f->path);
		return false;
	}
	base = base != NULL ? base + 1 : f->path;
	f->tmp = xasprintf("%s/.%s.tmp.XXXXXX", dir, base);
	free(dir);
	fd = mkostemp(f->tmp, O_CLOEXEC);
	if (fd < 0) {
		edit_err(err, errsz, "%s: cannot create a temporary file: %s",
		    f->path, strerror(errno));
		free(f->tmp);
		f->tmp = NULL;
		return false;
	}
	/* Owner first: chown clears set-id bits, and the mode keeps the
	 * permission rules (posuto.json(5)) holding for the new file. */
	if (fstat(fd, &st) != 0 ||
	    ((st.st_uid != f->uid || st.st_gid != f->gid) &&
	    fchown(fd, f->uid, f->gid) != 0)) {
		edit_err(err, errsz, "%s: cannot keep its owner %ld:%ld: %s; "
		    "nothing changed", f->path, (long)f->uid, (long)f->gid,
		    strerror(errno));
		goto fail;
	}
	if (fchmod(fd, f->mode) != 0) {
		edit_err(err, errsz, "%s: cannot keep its mode %04o: %s",
		    f->path, (unsigned)f->mode, strerror(errno));
		goto fail;
	}
	if (!edit_write_all(fd, data, len) || fsync(fd) != 0) {
		edit_err(err, errsz, "%s: writing the new file: %s; nothing "
		    "changed", f->path, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		edit_err(err, errsz, "%s: writing the new file: %s; nothing "
		    "changed", f->path, strerror(errno));
		goto fail;
	}
	return true;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	edit_unstage(f);
	errno = saved;
	return false;
}

bool
config_edit_file_commit(struct config_edit_file *f, char *err, size_t errsz)
{
	char *dir;
	struct stat a, b;
	int dfd;
	bool ok;

	if (f->tmp == NULL) {
		edit_err(err, errsz, "%s: nothing staged", f->path);
		return false;
	}
	/* An editor that does not lock (vi) may have replaced it: ours
	 * would silently undo that. */
	if (stat(f->path, &a) != 0 || fstat(f->fd, &b) != 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		edit_err(err, errsz, "%s: changed by another program during "
		    "the edit; nothing changed, try again", f->path);
		return false;
	}
	if (rename(f->tmp, f->path) != 0) {
		edit_err(err, errsz, "%s: rename: %s; nothing changed",
		    f->path, strerror(errno));
		return false;
	}
	free(f->tmp);
	f->tmp = NULL;
	dir = edit_dir_of(f->path);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok = dfd >= 0 && fsync(dfd) == 0;
	if (!ok)
		edit_err(err, errsz, "%s: changed, but fsync of %s failed: %s",
		    f->path, dir, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return ok;
}

void
config_edit_file_close(struct config_edit_file *f)
{
	edit_unstage(f);
	if (f->fd >= 0)
		close(f->fd);	/* drops the lock */
	f->fd = -1;
	free(f->path);
	f->path = NULL;
	free_secret(f->data);
	f->data = NULL;
	f->len = 0;
}

/* ------------------------------------------------------------------ */

struct config_edit {
	struct config_edit_file file;
	json_t *root;
	json_t *srv;		/* borrowed: root's Pop3Server */
	int indent;		/* the file's indentation width */
	bool bom;
};

/* The indentation of the first indented member: what the admin (or
 * JumboDogX) wrote, kept so the diff of an edit is the edit. */
static int
edit_guess_indent(const char *text)
{
	const char *nl = strchr(text, '\n');

	while (nl != NULL) {
		size_t n = strspn(nl + 1, " ");

		if (n > 0 && nl[1 + n] == '"')
			return n > 31 ? 31 : (int)n;	/* jansson's limit */
		if (nl[1] == '\t')
			return 4;	/* jansson indents with spaces only */
		nl = strchr(nl + 1, '\n');
	}
	return 2;
}

bool
config_edit_open(const char *path, bool for_write, struct config_edit **ed_r,
    char *err, size_t errsz)
{
	struct config_edit *ed = xcalloc(1, sizeof(*ed));
	json_error_t jerr;
	const char *body;
	size_t len;

	*ed_r = NULL;
	if (!config_edit_file_open(&ed->file, path, for_write, err, errsz)) {
		free(ed);
		return false;
	}
	body = ed->file.data;
	len = ed->file.len;
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		ed->bom = true;
		body += 3;
		len -= 3;
	}
	ed->indent = edit_guess_indent(body);
	ed->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (ed->root == NULL) {
		edit_err(err, errsz, "%s:%d:%d: invalid JSON: %s (posuto "
		    "check-config says more)", path, jerr.line, jerr.column,
		    jerr.text);
		config_edit_free(&ed);
		return false;
	}
	ed->srv = json_object_get(ed->root, "Pop3Server");
	if (!json_is_object(ed->srv)) {
		edit_err(err, errsz, "%s: no \"Pop3Server\" object", path);
		config_edit_free(&ed);
		return false;
	}
	*ed_r = ed;
	return true;
}

void
config_edit_free(struct config_edit **edp)
{
	struct config_edit *ed = *edp;

	if (ed == NULL)
		return;
	config_edit_file_close(&ed->file);
	json_decref(ed->root);
	free(ed);
	*edp = NULL;
}

static json_t *
edit_users(const struct config_edit *ed)
{
	json_t *u = json_object_get(ed->srv, "Users");

	return json_is_array(u) ? u : NULL;
}

long
config_edit_user_find(const struct config_edit *ed, const char *name)
{
	json_t *users = edit_users(ed);
	size_t n = users != NULL ? json_array_size(users) : 0;

	for (size_t i = 0; i < n && i < LONG_MAX; i++) {
		json_t *un = json_object_get(json_array_get(users, i),
		    "UserName");

		if (json_is_string(un) && strcmp(json_string_value(un),
		    name) == 0)
			return (long)i;
	}
	return -1;
}

static json_t *
edit_user_at(const struct config_edit *ed, long idx)
{
	json_t *users = edit_users(ed);
	json_t *u = users != NULL && idx >= 0 ?
	    json_array_get(users, (size_t)idx) : NULL;

	return json_is_object(u) ? u : NULL;
}

const char *
config_edit_user_get(const struct config_edit *ed, long idx, const char *key)
{
	json_t *u = edit_user_at(ed, idx);
	json_t *v = u != NULL ? json_object_get(u, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool
config_edit_user_set(struct config_edit *ed, long idx, const char *key,
    const char *value)
{
	json_t *u = edit_user_at(ed, idx), *v;

	if (u == NULL)
		return false;
	if (value == NULL) {
		(void)json_object_del(u, key);
		return true;
	}
	v = json_string(value);		/* NULL if not UTF-8 */
	return v != NULL && json_object_set_new(u, key, v) == 0;
}

long
config_edit_user_add(struct config_edit *ed, const char *name)
{
	json_t *users = edit_users(ed), *u;

	if (users == NULL) {
		users = json_array();
		if (users == NULL ||
		    json_object_set_new(ed->srv, "Users", users) != 0)
			fatal("config_edit: out of memory");
	}
	u = json_object();
	if (u == NULL || json_object_set_new(u, "UserName",
	    json_string(name)) != 0 || json_array_append_new(users, u) != 0)
		fatal("config_edit: out of memory");
	return (long)json_array_size(users) - 1;
}

void
config_edit_user_del(struct config_edit *ed, long idx)
{
	json_t *users = edit_users(ed);

	if (users != NULL && idx >= 0)
		(void)json_array_remove(users, (size_t)idx);
}

/* ---- Pop3Server.Faults[] (`posuto chaos`) ---- */

/* The element is user's and, if kind is not NULL, of that kind. */
static bool
fault_matches(json_t *f, const char *user, const char *kind)
{
	const char *u = json_string_value(json_object_get(f, "User"));
	const char *k = json_string_value(json_object_get(f, "Kind"));

	return u != NULL && strcmp(u, user) == 0 &&
	    (kind == NULL || (k != NULL && strcmp(k, kind) == 0));
}

size_t
config_edit_faults_clear(struct config_edit *ed, const char *user,
    const char *kind)
{
	json_t *faults = json_object_get(ed->srv, "Faults");
	size_t n = 0;

	if (!json_is_array(faults))
		return 0;
	for (size_t i = json_array_size(faults); i-- > 0;) {
		if (fault_matches(json_array_get(faults, i), user, kind)) {
			(void)json_array_remove(faults, i);
			n++;
		}
	}
	return n;
}

void
config_edit_fault_set(struct config_edit *ed, const char *user,
    const char *kind, const char *key, unsigned value)
{
	json_t *faults = json_object_get(ed->srv, "Faults"), *f;

	if (!json_is_array(faults)) {
		faults = json_array();
		if (faults == NULL ||
		    json_object_set_new(ed->srv, "Faults", faults) != 0)
			fatal("config_edit: out of memory");
	}
	/* One of each kind per user: setting it again changes it. */
	(void)config_edit_faults_clear(ed, user, kind);
	f = json_object();
	if (f == NULL || json_object_set_new(f, "User", json_string(user)) != 0 ||
	    json_object_set_new(f, "Kind", json_string(kind)) != 0 ||
	    (key != NULL && json_object_set_new(f, key,
	    json_integer(value)) != 0) || json_array_append_new(faults, f) != 0)
		fatal("config_edit: out of memory");
}

bool
config_edit_stage(struct config_edit *ed, const char **tmp_r, char *err,
    size_t errsz)
{
	char *text = json_dumps(ed->root, JSON_INDENT(ed->indent) |
	    JSON_REAL_PRECISION(17));
	char *out;
	bool ok;

	if (text == NULL)
		fatal("config_edit: cannot serialise the config");
	out = xasprintf("%s%s\n", ed->bom ? "\xEF\xBB\xBF" : "", text);
	free_secret(text);
	ok = config_edit_file_stage(&ed->file, out, strlen(out), err, errsz);
	free_secret(out);
	*tmp_r = ok ? ed->file.tmp : NULL;
	return ok;
}

bool
config_edit_commit(struct config_edit *ed, char *err, size_t errsz)
{
	return config_edit_file_commit(&ed->file, err, errsz);
}

const struct config_edit_file *
config_edit_file_of(const struct config_edit *ed)
{
	return &ed->file;
}

/* RFC 7386 JSON merge patch of patch into target (an object): null
 * removes a member, an object merges member by member, anything else
 * replaces.  Existing members keep their place (jansson keeps order). */
static void
edit_merge(json_t *target, json_t *patch)
{
	const char *key;
	json_t *pv;

	json_object_foreach(patch, key, pv) {
		json_t *tv = json_object_get(target, key);

		if (json_is_null(pv)) {
			json_object_del(target, key);
		} else if (json_is_object(pv) && json_is_object(tv)) {
			edit_merge(tv, pv);
		} else if (json_is_object(pv)) {
			json_t *o = json_object();

			edit_merge(o, pv);
			json_object_set_new(target, key, o);
		} else {
			json_object_set(target, key, pv);
		}
	}
}

bool
config_edit_merge(struct config_edit *ed, const char *patch, size_t len,
    char *err, size_t errsz)
{
	json_error_t jerr;
	json_t *p = json_loadb(patch, len, JSON_REJECT_DUPLICATES, &jerr);

	if (p == NULL || !json_is_object(p)) {
		edit_err(err, errsz, "the change is not a JSON object");
		json_decref(p);
		return false;
	}
	edit_merge(ed->root, p);
	json_decref(p);
	ed->srv = json_object_get(ed->root, "Pop3Server");
	if (!json_is_object(ed->srv)) {
		edit_err(err, errsz, "Pop3Server: must stay an object");
		return false;
	}
	return true;
}

/* `posuto admin passwd` and the first start: the one atomic writer of
 * the file, with the same lock as every other edit. */
bool
config_admin_set_password_hash(const char *path, const char *hash,
    char *err, size_t errsz)
{
	struct config_edit *ed = NULL;
	const char *tmp;
	json_t *admin;
	bool ok = false;

	if (!config_edit_open(path, true, &ed, err, errsz))
		return false;
	admin = json_object_get(ed->root, "Admin");
	if (admin == NULL) {
		admin = json_object();
		json_object_set_new(ed->root, "Admin", admin);
	} else if (!json_is_object(admin)) {
		edit_err(err, errsz, "%s: Admin: not an object", path);
		goto out;
	}
	json_object_set_new(admin, "PasswordHash", json_string(hash));
	ok = config_edit_stage(ed, &tmp, err, errsz) &&
	    config_edit_commit(ed, err, errsz);
out:
	config_edit_free(&ed);
	return ok;
}
