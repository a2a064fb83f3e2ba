/*
 * cmd_user.c - `posuto user`: add, passwd, del, list and apop on the
 * users of the config the server reads (cmd_user.h).
 *
 * An edit runs in this order, so that bad input changes nothing:
 *   1. load the config and users as they are (a broken config is
 *      reported, not edited), check the name and whether the user
 *      exists;
 *   2. read the password or APOP secret (before any lock: a prompt may
 *      wait for a person);
 *   3. lock the config (the lock every `posuto user` takes, so runs
 *      queue) and the passwd-file, re-read both, re-check, edit;
 *   4. stage the new file and load it as a reload would (config, users,
 *      SASL mechanisms, certificates), and check the change is there;
 *   5. rename it into place.  The server notices within two seconds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/passwd.h"
#include "auth/userdb.h"
#include "auth/userdb_passwd_edit.h"
#include "config/config.h"
#include "config/config_edit.h"
#include "daemon/cmd_hash.h"
#include "daemon/cmd_user.h"
#include "daemon/privdrop.h"
#include "daemon/server.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/tls.h"
#include "store/store.h"
#include "store/store_lock.h"

#define EXIT_USAGE	64
#define PURGE_DEPTH_MAX	8	/* Maildir++ folders are one level deep */

enum user_cmd {
	USER_ADD,
	USER_PASSWD,
	USER_DEL,
	USER_LIST,
	USER_APOP,
};

enum user_target {
	TARGET_DEFAULT = 0,
	TARGET_JSON,
	TARGET_PASSWD_FILE,
};

struct user_opts {
	enum user_cmd cmd;
	const char *sub;		/* "add", ... for messages */
	const char *config_path;
	const char *scheme;		/* NULL: the default */
	enum user_target to;
	bool purge;			/* del */
	bool remove;			/* apop */
	const char *name;
	/* The web admin's call (cmd_user_apply): the secret is given, the
	 * server's lock file is open already, nothing is printed. */
	const char *secret;
	size_t secret_len;
	bool in_server;
};

/* What the edit writes: the stored form, and for a JSON user the
 * Password and HashType members (JumboDogX keeps bare hex or plain). */
struct user_secret {
	char *stored;			/* "{SCHEME}data" */
	char *json_password;
	const char *hash_type;		/* NULL: no HashType member */
	const char *scheme;		/* for the message */
};

static char user_who[64];
/* cmd_user_apply(): messages go here instead of stderr.  Only one thread
 * of the server (the web admin's) edits users. */
static char *user_capture;
static size_t user_capture_sz;

static void
user_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
user_msg(const char *fmt, ...)
{
	va_list ap;

	if (user_capture != NULL) {
		size_t n = strlen(user_capture);

		/* The first message is the one that says why. */
		if (n == 0 && user_capture_sz > 0) {
			va_start(ap, fmt);
			(void)vsnprintf(user_capture, user_capture_sz, fmt, ap);
			va_end(ap);
		}
		return;
	}
	fprintf(stderr, "%s: ", user_who);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
cmd_user_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: posuto user add NAME [--scheme SCHEME] [--to json|passwd-file]\n"
	    "       posuto user passwd NAME [--scheme SCHEME]\n"
	    "       posuto user del NAME [--purge]\n"
	    "       posuto user apop NAME [--remove]\n"
	    "       posuto user list\n"
	    "  (each with [-c FILE])\n"
	    "\n"
	    "  add     new user; the password is prompted twice on a terminal,\n"
	    "          else one line on stdin.  Written to the PasswdFile when\n"
	    "          the config has one, else to the config's Users[]\n"
	    "  passwd  new password; keeps the user's scheme (and a JumboDogX\n"
	    "          HashType) unless --scheme is given\n"
	    "  del     removes the user; the mailbox stays unless --purge\n"
	    "  apop    sets the user's APOP secret (--remove: removes it)\n"
	    "  list    every user: source, scheme, APOP, messages, octets\n"
	    "\n"
	    "SCHEME as for posuto hash (default %s, or SCRAM-SHA-256 when\n"
	    "every user has SCRAM keys).  A running server picks the change\n"
	    "up by itself.  Exit: 0 done, 1 refused (nothing changed), 64\n"
	    "usage, 67 no such user, 78 the config has errors.\n",
	    CMD_HASH_DEFAULT_SCHEME);
}

static int
user_parse(int argc, char **argv, const char *default_config,
    struct user_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "scheme", required_argument, NULL, 's' },
		{ "to", required_argument, NULL, 't' },
		{ "purge", no_argument, NULL, 'p' },
		{ "remove", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const subs[] = {
		[USER_ADD] = "add", [USER_PASSWD] = "passwd",
		[USER_DEL] = "del", [USER_LIST] = "list",
		[USER_APOP] = "apop",
	};
	bool found = false;
	int ch;

	memset(o, 0, sizeof(*o));
	o->config_path = default_config;
	(void)snprintf(user_who, sizeof(user_who), "posuto user");
	if (argc < 2) {
		cmd_user_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cmd_user_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i]) == 0) {
			o->cmd = (enum user_cmd)i;
			o->sub = subs[i];
			found = true;
		}
	}
	if (!found) {
		user_msg("unknown command '%s'", argv[1]);
		cmd_user_usage(stderr);
		return EXIT_USAGE;
	}
	(void)snprintf(user_who, sizeof(user_who), "posuto user %s", o->sub);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, ":c:h", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config_path = optarg;
			break;
		case 's':
			o->scheme = optarg;
			break;
		case 't':
			if (strcmp(optarg, "json") == 0)
				o->to = TARGET_JSON;
			else if (strcmp(optarg, "passwd-file") == 0)
				o->to = TARGET_PASSWD_FILE;
			else {
				user_msg("--to takes json or passwd-file, not "
				    "'%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'p':
			o->purge = true;
			break;
		case 'r':
			o->remove = true;
			break;
		case 'h':
			cmd_user_usage(stdout);
			return 0;
		default:
			/* getopt runs on argv + 1: the one just read. */
			user_msg("%s '%s'", ch == ':' ? "missing argument to" :
			    "bad option", argv[optind]);
			cmd_user_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if ((o->scheme != NULL && o->cmd != USER_ADD &&
	    o->cmd != USER_PASSWD) || (o->to != TARGET_DEFAULT &&
	    o->cmd != USER_ADD) || (o->purge && o->cmd != USER_DEL) ||
	    (o->remove && o->cmd != USER_APOP)) {
		user_msg("option not valid for %s", o->sub);
		cmd_user_usage(stderr);
		return EXIT_USAGE;
	}
	if (o->cmd == USER_LIST) {
		if (optind + 1 != argc) {
			user_msg("takes no NAME");
			return EXIT_USAGE;
		}
		return -1;
	}
	if (optind + 2 != argc) {
		user_msg(optind + 1 == argc ? "needs a user NAME" :
		    "takes one NAME");
		cmd_user_usage(stderr);
		return EXIT_USAGE;
	}
	o->name = argv[optind + 1];
	return -1;
}

/* ---- loading what the server would load ---- */

/* Prints text, with the staged files' names replaced by the real ones
 * (the messages are about the edit, not our temporary file). */
static void
user_print_errors(const char *text, const char *const from[2],
    const char *const to[2])
{
	const char *p = text;

	if (user_capture != NULL) {
		/* The first problem, with the real file names. */
		char line[1024];
		size_t k = 0;

		while (*p != '\0' && *p != '\n' && k + 1 < sizeof(line)) {
			bool mapped = false;

			for (int i = 0; i < 2 && !mapped; i++) {
				size_t fl = from[i] != NULL ? strlen(from[i]) : 0;

				if (fl > 0 && strncmp(p, from[i], fl) == 0) {
					k += (size_t)snprintf(line + k,
					    sizeof(line) - k, "%s", to[i]);
					if (k >= sizeof(line))
						k = sizeof(line) - 1;
					p += fl;
					mapped = true;
				}
			}
			if (!mapped)
				line[k++] = *p++;
		}
		line[k] = '\0';
		(void)snprintf(user_capture, user_capture_sz, "%s", line);
		return;
	}
	while (*p != '\0') {
		size_t best = strlen(p);
		int which = -1;

		for (int i = 0; i < 2; i++) {
			const char *hit = from[i] != NULL ? strstr(p, from[i]) :
			    NULL;

			if (hit != NULL && (size_t)(hit - p) < best) {
				best = (size_t)(hit - p);
				which = i;
			}
		}
		fwrite(p, 1, best, stderr);
		p += best;
		if (which >= 0) {
			fputs(to[which], stderr);
			p += strlen(from[which]);
		}
	}
}

/*
 * Loads the config at path (passwd_file, if not NULL, in place of its
 * PasswdFile) and its users, SASL mechanisms and certificate as a reload
 * would.  Messages are kept; on failure printed, names mapped back.
 */
static bool
user_load(const char *path, const char *passwd_file,
    const char *const from[2], const char *const to[2],
    struct posuto_config **cfg_r, struct userdb **db_r)
{
	struct tls_ctx *tls = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	bool ok;

	if (mem == NULL)
		fatal("open_memstream: %s", strerror(errno));
	*db_r = NULL;
	ok = config_load(path, cfg_r, mem) == 0;
	if (ok && passwd_file != NULL) {
		free((*cfg_r)->passwd_file);
		(*cfg_r)->passwd_file = xstrdup(passwd_file);
	}
	if (ok && !server_load_runtime(*cfg_r, false, mem, db_r, &tls)) {
		ok = false;
		config_free(cfg_r);
	}
	tls_ctx_unref(&tls);
	fclose(mem);
	if (!ok)
		user_print_errors(text, from, to);
	free(text);
	return ok;
}

static bool
user_is_passwd_file(const struct posuto_config *cfg,
    const struct userdb_entry *e)
{
	size_t n;

	if (cfg->passwd_file == NULL)
		return false;
	n = strlen(cfg->passwd_file);
	return strncmp(e->origin, cfg->passwd_file, n) == 0 &&
	    e->origin[n] == ':';
}

static const struct userdb_entry *
user_lookup(const struct userdb *db, const char *name)
{
	const struct userdb_entry *e;

	return userdb_lookup(db, name, &e) == USERDB_OK ? e : NULL;
}

/* ---- secrets ---- */

/* The creatable scheme named s (any case), in its canonical spelling. */
static const char *
user_scheme(const char *s)
{
	if (s == NULL)
		return NULL;
	for (const char *const *p = passwd_schemes(); *p != NULL; p++) {
		if (ascii_caseeq(*p, s))
			return *p;
	}
	return NULL;
}

static bool
user_jdx_hex(const char *scheme)
{
	return strcmp(scheme, "SHA256") == 0 || strcmp(scheme, "SHA512") == 0;
}

/*
 * Hashes pw with scheme.  SHA256 and SHA512 mean what they mean for
 * posuto hash: the hex digest of a JumboDogX config, which a JSON user
 * keeps as "Password": hex + "HashType"; so does a JumboDogX PLAIN user
 * (plain_hash_type).
 */
static bool
user_make_secret(const char *scheme, bool json, bool plain_hash_type,
    const char *pw, size_t len, struct user_secret *s)
{
	memset(s, 0, sizeof(*s));
	s->scheme = scheme;
	if (user_jdx_hex(scheme)) {
		s->stored = passwd_hash(strcmp(scheme, "SHA256") == 0 ?
		    "SHA256.HEX" : "SHA512.HEX", pw, len);
		if (s->stored != NULL && json) {
			s->json_password = xstrdup(strchr(s->stored, '}') + 1);
			s->hash_type = scheme;
		}
	} else {
		s->stored = passwd_hash(scheme, pw, len);
		if (s->stored != NULL && json && plain_hash_type &&
		    strcmp(scheme, "PLAIN") == 0) {
			s->json_password = xstrndup(pw, len);
			s->hash_type = "PLAIN";
		}
	}
	if (s->stored == NULL) {
		user_msg("cannot hash this password with %s; nothing changed",
		    scheme);
		return false;
	}
	if (json && s->json_password == NULL)
		s->json_password = xstrdup(s->stored);
	return true;
}

static void
user_secret_free(struct user_secret *s)
{
	free_secret(s->stored);
	free_secret(s->json_password);
	memset(s, 0, sizeof(*s));
}

/* An APOP secret goes into an APOP digest and a file line: printable. */
static bool
user_apop_ok(const char *sec, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)sec[i];

		if (c < 0x20 || c == 0x7f) {
			user_msg("the APOP secret holds a control character; "
			    "nothing changed");
			return false;
		}
	}
	return true;
}

/* ---- --purge ---- */

/* Names posuto keeps in a mailbox of its own (index, wire cache). */
static bool
purge_ours(const char *name)
{
	return strncmp(name, ".posuto", 7) == 0 ||
	    strncmp(name, "posuto-", 7) == 0;
}

static bool
purge_is_eml(const char *name)
{
	size_t d = strspn(name, "0123456789");

	return d > 0 && strcmp(name + d, ".eml") == 0;
}

/*
 * True if the directory open on dfd is a mailbox: a Maildir (cur, new
 * and tmp directories) or an emldir (N.eml files and posuto's own only).
 * Anything else might be a home directory a template points at by
 * mistake: it is not ours to remove.
 */
static bool
purge_looks_like_mailbox(int dfd, char *why, size_t whysz)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	struct stat st;
	unsigned n_sub = 0;
	struct dirent *de;
	DIR *d;
	int fd2;
	bool ok = true;

	for (size_t i = 0; i < 3; i++) {
		if (fstatat(dfd, sub[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			n_sub++;
	}
	if (n_sub == 3)
		return true;
	fd2 = dup(dfd);
	if (fd2 < 0 || (d = fdopendir(fd2)) == NULL) {
		(void)snprintf(why, whysz, "%s", strerror(errno));
		if (fd2 >= 0)
			close(fd2);
		return false;
	}
	while (ok && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 || purge_ours(de->d_name))
			continue;
		if (!purge_is_eml(de->d_name) || fstatat(dfd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
			(void)snprintf(why, whysz, "neither a Maildir nor an "
			    "emldir (it holds \"%.100s\")", de->d_name);
			ok = false;
		}
	}
	closedir(d);
	return ok;
}

/* Removes everything under dfd, never following a symlink (it is
 * removed as a link) nor crossing into another file system. */
static bool
purge_tree(int dfd, dev_t dev, int depth)
{
	struct dirent *de;
	bool ok = true;
	DIR *d;
	int fd2 = dup(dfd);

	if (fd2 < 0 || (d = fdopendir(fd2)) == NULL) {
		if (fd2 >= 0)
			close(fd2);
		return false;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			ok = false;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub;

			if (st.st_dev != dev || depth >= PURGE_DEPTH_MAX) {
				ok = false;
				continue;
			}
			sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || !purge_tree(sub, dev, depth + 1))
				ok = false;
			if (sub >= 0)
				close(sub);
			if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) != 0)
				ok = false;
		} else if (unlinkat(dfd, de->d_name, 0) != 0) {
			ok = false;
		}
	}
	closedir(d);
	return ok;
}

struct purge {
	bool present;
	char *path;
	dev_t dev;
	ino_t ino;
	bool locked;
};

/* Before the edit: may e's mailbox be removed?  Takes its session lock
 * (held until purge_finish()), so no session opens it meanwhile. */
static bool
purge_prepare(const struct posuto_config *cfg, const struct userdb_entry *e,
    struct purge *pg)
{
	char why[256] = "", *real;
	enum store_status st;
	struct stat sb;
	int dfd;

	memset(pg, 0, sizeof(*pg));
	pg->path = xstrdup(e->mailbox_path);
	if (lstat(pg->path, &sb) != 0) {
		if (errno == ENOENT)
			return true;	/* no mail yet: nothing to purge */
		user_msg("--purge: %s: %s; nothing changed", pg->path,
		    strerror(errno));
		return false;
	}
	if (S_ISLNK(sb.st_mode) || !S_ISDIR(sb.st_mode)) {
		user_msg("--purge: %s is %s, not a mailbox directory; nothing "
		    "changed", pg->path, S_ISLNK(sb.st_mode) ?
		    "a symbolic link" : "not a directory");
		return false;
	}
	real = realpath(pg->path, NULL);
	if (real == NULL || strcmp(real, pg->path) != 0) {
		user_msg("--purge: %s goes through a symbolic link (to %s); "
		    "nothing changed", pg->path, real != NULL ? real : "?");
		free(real);
		return false;
	}
	free(real);
	if (strcmp(pg->path, "/") == 0 || (cfg->mail_dir != NULL &&
	    strcmp(pg->path, cfg->mail_dir) == 0) || (e->home != NULL &&
	    strcmp(pg->path, e->home) == 0)) {
		user_msg("--purge: %s is the mail or home directory itself, "
		    "not a mailbox; nothing changed", pg->path);
		return false;
	}
	dfd = open(pg->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &sb) != 0 ||
	    !purge_looks_like_mailbox(dfd, why, sizeof(why))) {
		user_msg("--purge: %s: %s; nothing changed", pg->path,
		    why[0] != '\0' ? why : strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return false;
	}
	close(dfd);
	pg->dev = sb.st_dev;
	pg->ino = sb.st_ino;
	st = store_lock_acquire(pg->dev, pg->ino, why, sizeof(why));
	if (st != STORE_OK) {
		user_msg("--purge: mailbox %s %s; nothing changed", pg->path,
		    st == STORE_IN_USE ? "is in use by a POP3 session" : why);
		return false;
	}
	pg->locked = true;
	pg->present = true;
	return true;
}

static bool
purge_finish(struct purge *pg)
{
	char *slash;
	struct stat sb;
	bool ok = false;
	int dfd, pfd;

	if (!pg->present)
		return true;
	dfd = open(pg->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0 && fstat(dfd, &sb) == 0 && sb.st_dev == pg->dev &&
	    sb.st_ino == pg->ino && purge_tree(dfd, pg->dev, 0)) {
		slash = strrchr(pg->path, '/');
		*slash = '\0';
		pfd = open(slash == pg->path ? "/" : pg->path,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		/* Still the directory checked, not one swapped in. */
		ok = pfd >= 0 && fstatat(pfd, slash + 1, &sb,
		    AT_SYMLINK_NOFOLLOW) == 0 && sb.st_ino == pg->ino &&
		    sb.st_dev == pg->dev &&
		    unlinkat(pfd, slash + 1, AT_REMOVEDIR) == 0 &&
		    fsync(pfd) == 0;
		if (pfd >= 0)
			close(pfd);
		*slash = '/';
	}
	if (dfd >= 0)
		close(dfd);
	if (!ok)
		user_msg("--purge: the user is removed, but mailbox %s could "
		    "not be removed entirely: %s", pg->path, strerror(errno));
	return ok;
}

static void
purge_free(struct purge *pg)
{
	if (pg->locked)
		store_lock_release(pg->dev, pg->ino);
	free(pg->path);
	memset(pg, 0, sizeof(*pg));
}

/* The lock file the server uses, so [IN-USE] holds across processes. */
static bool
user_open_lock_file(const struct posuto_config *cfg)
{
	char err[PATH_MAX + 256];

	if (!server_lock_file_open(cfg, err, sizeof(err))) {
		user_msg("%s", err);
		return false;
	}
	return true;
}

/* ---- list ---- */

struct list_ctx {
	const struct userdb_entry **e;
	size_t n, cap;
};

static bool
list_collect(const struct userdb_entry *e, void *arg)
{
	struct list_ctx *lc = arg;

	if (lc->n == lc->cap) {
		lc->cap = lc->cap == 0 ? 64 : lc->cap * 2;
		lc->e = xreallocarray(lc->e, lc->cap, sizeof(*lc->e));
	}
	lc->e[lc->n++] = e;
	return true;
}

static int
user_list(const struct user_opts *o, const struct posuto_config *cfg,
    const struct userdb *db)
{
	struct list_ctx lc = { NULL, 0, 0 };
	char err[256];
	int w = 4, rc = 0;

	if (!user_open_lock_file(cfg))
		return CMD_USER_EXIT_REFUSED;
	/* Opening a mailbox may write its index: as the server's user, so
	 * the server can still rewrite it. */
	if (cfg->run_as_user != NULL && geteuid() == 0 &&
	    privdrop_to(cfg->run_as_user, err, sizeof(err)) != 0) {
		user_msg("%s", err);
		return CMD_USER_EXIT_REFUSED;
	}
	(void)o;
	(void)userdb_iterate(db, list_collect, &lc);
	for (size_t i = 0; i < lc.n; i++) {
		int l = (int)strlen(lc.e[i]->name);

		if (l > w)
			w = l;
	}
	printf("%-*s  %-11s  %-13s  %-4s  %8s  %12s\n", w, "NAME", "SOURCE",
	    "SCHEME", "APOP", "MESSAGES", "OCTETS");
	for (size_t i = 0; i < lc.n; i++) {
		const struct userdb_entry *e = lc.e[i];
		const char *sc = passwd_scheme_name(e->password);
		struct mailbox *mb = NULL;
		enum store_status st;
		char count[32], size[32];

		err[0] = '\0';
		st = mailbox_open(e->location, e->name, &mb, err,
		    sizeof(err));
		if (st == STORE_OK) {
			(void)snprintf(count, sizeof(count), "%u",
			    mailbox_count(mb));
			(void)snprintf(size, sizeof(size), "%llu",
			    (unsigned long long)mailbox_total_size(mb));
			mailbox_close(&mb);
		} else {
			(void)snprintf(count, sizeof(count), "%s",
			    st == STORE_IN_USE ? "in use" : "error");
			(void)snprintf(size, sizeof(size), "-");
			if (st != STORE_IN_USE) {
				user_msg("%s: mailbox %s: %s", e->name,
				    e->mailbox_path, err);
				rc = CMD_USER_EXIT_REFUSED;
			}
		}
		printf("%-*s  %-11s  %-13s  %-4s  %8s  %12s\n", w, e->name,
		    user_is_passwd_file(cfg, e) ? "passwd-file" : "config",
		    sc != NULL ? sc : "?", e->apop_secret != NULL ? "yes" :
		    "no", count, size);
	}
	free(lc.e);
	if (fflush(stdout) != 0)
		rc = CMD_USER_EXIT_REFUSED;
	return rc;
}

/* ---- the edits ---- */

struct user_edit {
	struct config_edit *json;
	struct userdb_passwd_edit *pw;
	long json_idx, pw_idx;
	bool in_passwd_file;		/* the user's (or new user's) place */
};

/* The scheme passwd keeps: a JumboDogX HashType, else the user's own
 * if posuto can create it, else the default. */
static const char *
user_kept_scheme(const struct user_edit *ed, const char *stored,
    bool *plain_ht_r)
{
	const char *ht = !ed->in_passwd_file ?
	    config_edit_user_get(ed->json, ed->json_idx, "HashType") : NULL;
	const char *sc;

	*plain_ht_r = false;
	if (ht != NULL && (ascii_caseeq(ht, "SHA256") ||
	    ascii_caseeq(ht, "SHA512")))
		return user_scheme(ht);
	if (ht != NULL && ascii_caseeq(ht, "PLAIN")) {
		*plain_ht_r = true;
		return "PLAIN";
	}
	sc = user_scheme(passwd_scheme_name(stored));
	/* SHA256/SHA512 here are Dovecot's base64 ones, not hex. */
	if (sc == NULL || user_jdx_hex(sc))
		return CMD_HASH_DEFAULT_SCHEME;
	return sc;
}

/* Applies the change to the locked files; false (message given) if the
 * user's state no longer allows it. */
static int
user_apply(const struct user_opts *o, struct user_edit *ed,
    const struct userdb *db, const char *secret, size_t len,
    struct user_secret *sec)
{
	char err[512];
	bool plain_ht = false, ok = true;
	const char *scheme;

	ed->json_idx = config_edit_user_find(ed->json, o->name);
	ed->pw_idx = ed->pw != NULL ?
	    userdb_passwd_edit_find(ed->pw, o->name) : -1;
	if (o->cmd == USER_ADD) {
		if (ed->json_idx >= 0 || ed->pw_idx >= 0) {
			user_msg("user %s already exists; nothing changed",
			    o->name);
			return CMD_USER_EXIT_REFUSED;
		}
	} else if ((ed->in_passwd_file ? ed->pw_idx : ed->json_idx) < 0) {
		user_msg("no such user %s; nothing changed", o->name);
		return CMD_USER_EXIT_NOUSER;
	}
	switch (o->cmd) {
	case USER_ADD:
		scheme = user_scheme(o->scheme);
		if (scheme == NULL)
			scheme = userdb_all_scram(db) ? "SCRAM-SHA-256" :
			    CMD_HASH_DEFAULT_SCHEME;
		if (!user_make_secret(scheme, !ed->in_passwd_file, false,
		    secret, len, sec))
			return CMD_USER_EXIT_REFUSED;
		if (ed->in_passwd_file) {
			ok = userdb_passwd_edit_add(ed->pw, o->name, sec->stored,
			    err, sizeof(err)) >= 0;
		} else {
			long i = config_edit_user_add(ed->json, o->name);

			ok = config_edit_user_set(ed->json, i, "Password",
			    sec->json_password) &&
			    (sec->hash_type == NULL || config_edit_user_set(
			    ed->json, i, "HashType", sec->hash_type));
			(void)snprintf(err, sizeof(err), "the password cannot "
			    "be stored in JSON (not UTF-8)");
		}
		break;
	case USER_PASSWD: {
		char *cur = ed->in_passwd_file ?
		    userdb_passwd_edit_password(ed->pw, ed->pw_idx) : NULL;
		const char *stored = cur;
		const struct userdb_entry *e = user_lookup(db, o->name);

		if (stored == NULL && e != NULL)
			stored = e->password;
		scheme = user_scheme(o->scheme);
		if (scheme == NULL)
			scheme = user_kept_scheme(ed, stored != NULL ? stored :
			    "", &plain_ht);
		free_secret(cur);
		if (!user_make_secret(scheme, !ed->in_passwd_file, plain_ht,
		    secret, len, sec))
			return CMD_USER_EXIT_REFUSED;
		if (ed->in_passwd_file) {
			ok = userdb_passwd_edit_set_password(ed->pw, ed->pw_idx,
			    sec->stored, err, sizeof(err));
		} else {
			ok = config_edit_user_set(ed->json, ed->json_idx,
			    "Password", sec->json_password) &&
			    config_edit_user_set(ed->json, ed->json_idx,
			    "HashType", sec->hash_type);
			(void)snprintf(err, sizeof(err), "the password cannot "
			    "be stored in JSON (not UTF-8)");
		}
		break;
	}
	case USER_APOP:
		if (ed->in_passwd_file)
			ok = userdb_passwd_edit_set_apop(ed->pw, ed->pw_idx,
			    secret, err, sizeof(err));
		else {
			ok = config_edit_user_set(ed->json, ed->json_idx,
			    "ApopSecret", secret);
			(void)snprintf(err, sizeof(err), "the APOP secret "
			    "cannot be stored in JSON (not UTF-8)");
		}
		break;
	case USER_DEL:
		if (ed->in_passwd_file)
			userdb_passwd_edit_del(ed->pw, ed->pw_idx);
		else
			config_edit_user_del(ed->json, ed->json_idx);
		break;
	case USER_LIST:
		break;
	}
	if (!ok) {
		user_msg("%s; nothing changed", err);
		return CMD_USER_EXIT_REFUSED;
	}
	return 0;
}

/* After loading the staged files: is the change what the server sees? */
static bool
user_verify(const struct user_opts *o, const struct userdb *db,
    const char *secret, size_t len)
{
	const struct userdb_entry *e = user_lookup(db, o->name);

	switch (o->cmd) {
	case USER_DEL:
		return e == NULL;
	case USER_APOP:
		if (e == NULL)
			return false;
		if (secret == NULL)
			return e->apop_secret == NULL;
		return e->apop_secret != NULL &&
		    ct_streq(e->apop_secret, strlen(e->apop_secret), secret,
		    len);
	case USER_ADD:
	case USER_PASSWD:
		return e != NULL &&
		    passwd_verify(e->password, secret, len) == PASSWD_OK;
	case USER_LIST:
		break;
	}
	return false;
}

static int
user_edit(const struct user_opts *o, const struct posuto_config *cfg,
    const struct userdb *db)
{
	const struct userdb_entry *e = user_lookup(db, o->name);
	char secret[PASSWORD_MAX + 2], err[1024];
	struct user_edit ed = { .json = NULL };
	struct user_secret sec = { NULL, NULL, NULL, NULL };
	struct purge pg = { .present = false };
	struct posuto_config *ncfg = NULL;
	struct userdb *ndb = NULL;
	const char *json_tmp = NULL, *pw_tmp = NULL;
	const char *from[2], *to[2];
	bool have_secret = o->cmd == USER_ADD || o->cmd == USER_PASSWD ||
	    (o->cmd == USER_APOP && !o->remove);
	int len = 0, rc = CMD_USER_EXIT_REFUSED;

	/* 1. Against the users as they are. */
	if (o->cmd == USER_ADD && e != NULL) {
		user_msg("user %s already exists (%s); nothing changed",
		    o->name, e->origin);
		return CMD_USER_EXIT_REFUSED;
	}
	if (o->cmd != USER_ADD && e == NULL) {
		user_msg("no such user %s; nothing changed", o->name);
		return CMD_USER_EXIT_NOUSER;
	}
	if (o->cmd == USER_ADD)
		ed.in_passwd_file = o->to == TARGET_PASSWD_FILE ||
		    (o->to == TARGET_DEFAULT && cfg->passwd_file != NULL);
	else
		ed.in_passwd_file = user_is_passwd_file(cfg, e);
	if (ed.in_passwd_file && cfg->passwd_file == NULL) {
		user_msg("--to passwd-file: the config has no PasswdFile; "
		    "nothing changed");
		return CMD_USER_EXIT_REFUSED;
	}
	if (o->scheme != NULL && user_scheme(o->scheme) == NULL) {
		user_msg("unknown scheme '%s'; one of:", o->scheme);
		if (!o->in_server)
			cmd_hash_list_schemes(stderr, 2);
		return EXIT_USAGE;
	}
	/* 2. The secret, before any lock. */
	if (have_secret && o->secret != NULL) {
		if (o->secret_len > PASSWORD_MAX || memchr(o->secret, '\0',
		    o->secret_len) != NULL || memchr(o->secret, '\n',
		    o->secret_len) != NULL || memchr(o->secret, '\r',
		    o->secret_len) != NULL) {
			user_msg("the %s is too long or holds a line break or "
			    "NUL; nothing changed", o->cmd == USER_APOP ?
			    "APOP secret" : "password");
			goto out;
		}
		memcpy(secret, o->secret, o->secret_len);
		secret[o->secret_len] = '\0';
		len = (int)o->secret_len;
	} else if (have_secret) {
		len = cmd_hash_read_secret(user_who, o->cmd == USER_APOP ?
		    "APOP secret" : "password", secret, sizeof(secret));
		if (len < 0) {
			user_msg("nothing changed");
			return CMD_USER_EXIT_REFUSED;
		}
	}
	if (have_secret) {
		if (len == 0) {
			user_msg("empty %s refused; nothing changed",
			    o->cmd == USER_APOP ? "APOP secret" : "password");
			goto out;
		}
		if (o->cmd == USER_APOP && !user_apop_ok(secret, (size_t)len))
			goto out;
	}
	/* 3. Lock, re-read, edit.  The config is locked even when only
	 * the passwd-file changes: it is the one lock of every edit. */
	if (!config_edit_open(cfg->path, !ed.in_passwd_file, &ed.json, err,
	    sizeof(err)) || (cfg->passwd_file != NULL &&
	    !userdb_passwd_edit_open(cfg->passwd_file, ed.in_passwd_file,
	    &ed.pw, err, sizeof(err)))) {
		user_msg("%s", err);
		goto out;
	}
	rc = user_apply(o, &ed, db, have_secret ? secret : NULL, (size_t)len,
	    &sec);
	if (rc != 0)
		goto out;
	rc = CMD_USER_EXIT_REFUSED;
	/* 4. Stage and load as the server would. */
	if (ed.in_passwd_file ?
	    !userdb_passwd_edit_stage(ed.pw, &pw_tmp, err, sizeof(err)) :
	    !config_edit_stage(ed.json, &json_tmp, err, sizeof(err))) {
		user_msg("%s", err);
		goto out;
	}
	from[0] = json_tmp;
	to[0] = cfg->path;
	from[1] = pw_tmp;
	to[1] = cfg->passwd_file;
	if (!user_load(json_tmp != NULL ? json_tmp : cfg->path, pw_tmp, from,
	    to, &ncfg, &ndb)) {
		user_msg("the server would refuse the result; nothing changed");
		goto out;
	}
	if (!user_verify(o, ndb, have_secret ? secret : NULL, (size_t)len)) {
		user_msg("the edited file does not read back as intended; "
		    "nothing changed");
		goto out;
	}
	if (o->cmd == USER_DEL && o->purge) {
		if ((!o->in_server && !user_open_lock_file(cfg)) ||
		    !purge_prepare(cfg, e, &pg))
			goto out;
	}
	/* 5. In place. */
	if (ed.in_passwd_file ?
	    !userdb_passwd_edit_commit(ed.pw, err, sizeof(err)) :
	    !config_edit_commit(ed.json, err, sizeof(err))) {
		user_msg("%s", err);
		goto out;
	}
	rc = 0;
	if (o->in_server) {
		if (o->cmd == USER_DEL && o->purge && pg.present &&
		    !purge_finish(&pg))
			rc = CMD_USER_EXIT_REFUSED;
		goto out;
	}
	switch (o->cmd) {
	case USER_ADD:
	case USER_PASSWD:
		printf("%s %s in %s (%s)\n", o->cmd == USER_ADD ? "added" :
		    "new password for", o->name, ed.in_passwd_file ?
		    cfg->passwd_file : cfg->path, sec.scheme);
		break;
	case USER_APOP:
		printf("%s the APOP secret of %s in %s\n", o->remove ?
		    "removed" : "set", o->name, ed.in_passwd_file ?
		    cfg->passwd_file : cfg->path);
		break;
	case USER_DEL:
		printf("removed %s from %s; ", o->name, ed.in_passwd_file ?
		    cfg->passwd_file : cfg->path);
		if (!o->purge)
			printf("mailbox %s kept\n", e->mailbox_path);
		else if (!pg.present)
			printf("no mailbox at %s\n", e->mailbox_path);
		else if (purge_finish(&pg))
			printf("mailbox %s removed\n", e->mailbox_path);
		else {
			printf("mailbox %s NOT removed\n", e->mailbox_path);
			rc = CMD_USER_EXIT_REFUSED;
		}
		break;
	case USER_LIST:
		break;
	}
	if (!ncfg->sasl_mechanisms_set && userdb_all_scram(db) &&
	    !userdb_all_scram(ndb))
		user_msg("note: SASL SCRAM-SHA-256 is no longer offered, as "
		    "%s has no {SCRAM-SHA-256} secret (posuto.json(5), "
		    "SaslMechanisms)", o->name);
out:
	explicit_bzero(secret, sizeof(secret));
	purge_free(&pg);
	user_secret_free(&sec);
	userdb_unref(&ndb);
	config_free(&ncfg);
	config_edit_free(&ed.json);
	userdb_passwd_edit_free(&ed.pw);
	return rc;
}

int
cmd_user_apply(const struct cmd_user_req *r, char *msg, size_t msgsz)
{
	static const struct {
		const char *name;
		enum user_cmd cmd;
	} ops[] = {
		{ "add", USER_ADD }, { "passwd", USER_PASSWD },
		{ "del", USER_DEL }, { "apop", USER_APOP },
	};
	struct user_opts o;
	struct posuto_config *cfg = NULL;
	struct userdb *db = NULL;
	const char *none[2] = { NULL, NULL };
	const char *why;
	bool found = false;
	int rc;

	memset(&o, 0, sizeof(o));
	msg[0] = '\0';
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(r->op, ops[i].name) == 0) {
			o.cmd = ops[i].cmd;
			o.sub = ops[i].name;
			found = true;
		}
	}
	if (!found) {
		(void)snprintf(msg, msgsz, "unknown operation");
		return EXIT_USAGE;
	}
	o.config_path = r->config_path;
	o.scheme = r->scheme;
	o.purge = r->purge && o.cmd == USER_DEL;
	o.remove = o.cmd == USER_APOP && r->secret == NULL;
	o.name = r->name;
	o.secret = r->secret;
	o.secret_len = r->secret_len;
	o.in_server = true;
	if (o.scheme != NULL && o.cmd != USER_ADD && o.cmd != USER_PASSWD)
		o.scheme = NULL;
	if (o.cmd == USER_ADD && r->to_passwd_file >= 0)
		o.to = r->to_passwd_file ? TARGET_PASSWD_FILE : TARGET_JSON;
	if (!userdb_name_check(o.name, strlen(o.name), &why)) {
		(void)snprintf(msg, msgsz, "invalid user name: %s", why);
		return CMD_USER_EXIT_REFUSED;
	}
	(void)snprintf(user_who, sizeof(user_who), "user %s", o.sub);
	user_capture = msg;
	user_capture_sz = msgsz;
	if (!user_load(o.config_path, NULL, none, none, &cfg, &db)) {
		rc = EXIT_CONFIG;
	} else {
		rc = user_edit(&o, cfg, db);
	}
	user_capture = NULL;
	user_capture_sz = 0;
	userdb_unref(&db);
	config_free(&cfg);
	return rc;
}

int
cmd_user(int argc, char **argv, const char *default_config)
{
	struct user_opts o;
	struct posuto_config *cfg = NULL;
	struct userdb *db = NULL;
	const char *none[2] = { NULL, NULL };
	const char *why;
	char shown[USERNAME_MAX * 4 + 8];
	int rc;

	rc = user_parse(argc, argv, default_config, &o);
	if (rc >= 0)
		return rc;
	if (o.name != NULL &&
	    !userdb_name_check(o.name, strlen(o.name), &why)) {
		log_sanitize(shown, sizeof(shown), o.name, strlen(o.name));
		user_msg("invalid user name '%s': %s; nothing changed", shown,
		    why);
		return CMD_USER_EXIT_REFUSED;
	}
	if (!user_load(o.config_path, NULL, none, none, &cfg, &db)) {
		user_msg("%s has errors (posuto check-config -c %s); fix them "
		    "first, nothing changed", o.config_path, o.config_path);
		return EXIT_CONFIG;
	}
	if (o.cmd == USER_LIST)
		rc = user_list(&o, cfg, db);
	else
		rc = user_edit(&o, cfg, db);
	userdb_unref(&db);
	config_free(&cfg);
	return rc;
}
