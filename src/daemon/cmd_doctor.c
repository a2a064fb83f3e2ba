/* cmd_doctor.c - `posuto doctor`: what is wrong, in plain words. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/cmd_doctor.h"
#include "daemon/postfix_conf.h"
#include "daemon/privdrop.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/tls.h"
#include "store/store.h"
#include "store/store_lock.h"

#define DOCTOR_EXIT_USAGE	64
#define DOCTOR_WRAP		76

enum doctor_level {
	DOCTOR_OK,
	DOCTOR_WARN,
	DOCTOR_ERROR,
};

struct doctor {
	const struct posuto_config *cfg;
	struct postfix_conf pf;
	bool pf_ok;
	/* The server's user: RunAsUser, else whoever runs doctor. */
	char srv_name[128];
	uid_t srv_uid;
	gid_t srv_gid;
	bool srv_switch;	/* the probe child switches to RunAsUser */
	/* The lock file a running server holds, if there is one: the probe
	 * takes the session lock like a session would. */
	char lock_path[PATH_MAX];
	bool lock_exists;
	unsigned n_error, n_warn;
};

/* What the probe child (running as the server's user) found; sent back
 * whole through a pipe (same binary, so the layout is shared). */
struct doctor_probe {
	char drop_err[256];	/* non-empty: could not switch user */
	char denied[1024];	/* "PATH (reason); ..." not readable+writable */
	int open_status;	/* enum store_status */
	char open_err[256];
	uint32_t count;
	uint64_t total;
	unsigned sampled, lf, unreadable;
	char uidl_source[256];	/* mailbox_uidl_source() */
	struct mailbox_drift drift;	/* mailbox_drift_report() */
};

static const char *const doctor_level_names[] = {
	[DOCTOR_OK] = "OK", [DOCTOR_WARN] = "WARN", [DOCTOR_ERROR] = "ERROR",
};

/* One finding, one paragraph: "LEVEL: text", wrapped at spaces. */
static void __attribute__((format(printf, 3, 4)))
doctor_say(struct doctor *d, enum doctor_level level, const char *fmt, ...)
{
	va_list ap;
	char *text, *p;
	size_t col;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) == -1) {
		va_end(ap);
		abort();
	}
	va_end(ap);
	if (level == DOCTOR_ERROR)
		d->n_error++;
	else if (level == DOCTOR_WARN)
		d->n_warn++;
	col = (size_t)printf("%s:", doctor_level_names[level]);
	p = text;
	while (*p != '\0') {
		size_t w;

		while (*p == ' ')
			p++;
		w = strcspn(p, " ");
		if (w == 0)
			break;
		if (col + 1 + w > DOCTOR_WRAP && col > 0) {
			fputc('\n', stdout);
			col = 0;
		} else {
			fputc(' ', stdout);
			col++;
		}
		fwrite(p, 1, w, stdout);
		col += w;
		p += w;
	}
	fputs("\n\n", stdout);
	free(text);
}

/* Every line of a message buffer (config or userdb errors, mailbox_check
 * warnings) as its own finding. */
static void
doctor_say_lines(struct doctor *d, enum doctor_level level, char *text,
    const char *why)
{
	char *line = text;

	while (line != NULL && *line != '\0') {
		char *nl = strchr(line, '\n');
		enum doctor_level l = level;

		if (nl != NULL)
			*nl = '\0';
		if (strncmp(line, "warning: ", 9) == 0) {
			line += 9;
			if (l == DOCTOR_ERROR)
				l = DOCTOR_WARN;
		}
		/* mailbox_open() refuses these: a login fails. */
		if (strstr(line, "logins are refused") != NULL)
			l = DOCTOR_ERROR;
		if (*line != '\0')
			doctor_say(d, l, "%s%s", line, why);
		line = nl != NULL ? nl + 1 : NULL;
	}
}

/* ---------------------------------------------------------------- paths */

/* The user's MailboxFormat as written (case-insensitive). */
static bool
doctor_format_is(const struct userdb_entry *e, const char *format)
{
	return e->format != NULL && strcasecmp(e->format, format) == 0;
}

/* The absolute, symlink-free form of path even if its end does not exist
 * yet (mail not delivered): the deepest existing ancestor resolved, the
 * rest appended; no trailing '/'. */
static void
doctor_resolve(const char *path, char *out, size_t outsz)
{
	char buf[PATH_MAX], res[PATH_MAX];
	size_t len;
	char *cut = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		len = strlen(buf);
		while (len > 1 && buf[len - 1] == '/')
			buf[--len] = '\0';
		if (realpath(buf, res) != NULL)
			break;
		cut = strrchr(buf, '/');
		if (cut == NULL || cut == buf) {
			/* Nothing exists (or a relative path): as written. */
			snprintf(out, outsz, "%s", path);
			len = strlen(out);
			while (len > 1 && out[len - 1] == '/')
				out[--len] = '\0';
			return;
		}
		*cut = '\0';
	}
	/* res is buf resolved; append what was cut off path. */
	len = strlen(buf);
	snprintf(out, outsz, "%s%s", strcmp(res, "/") == 0 ? "" : res,
	    path + len);
	len = strlen(out);
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	if (out[0] == '\0')
		snprintf(out, outsz, "/");
}

/* If path is dir or below it, the part after "dir/" (may be ""). */
static const char *
doctor_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (strncmp(path, dir, n) != 0)
		return NULL;
	if (path[n] == '\0')
		return path + n;
	return path[n] == '/' ? path + n + 1 : NULL;
}

static bool
doctor_is_dir_at(int fd, const char *name)
{
	struct stat st;

	return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode);
}

static const char *
doctor_user_name(uid_t uid, char *buf, size_t bufsz)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, bufsz, "%s (uid %lu)", pw->pw_name,
		    (unsigned long)uid);
	else
		snprintf(buf, bufsz, "uid %lu", (unsigned long)uid);
	return buf;
}

/* The host account local(8) would deliver to: as written, then in lower
 * case (local(8) folds the local part). */
static struct passwd *
doctor_getpwnam(const char *local)
{
	struct passwd *pw = getpwnam(local);
	char low[256];
	size_t i;

	if (pw != NULL)
		return pw;
	for (i = 0; local[i] != '\0' && i < sizeof(low) - 1; i++)
		low[i] = (local[i] >= 'A' && local[i] <= 'Z') ?
		    (char)(local[i] - 'A' + 'a') : local[i];
	low[i] = '\0';
	return strcmp(low, local) != 0 ? getpwnam(low) : NULL;
}

/* ---------------------------------------------------------------- probe */

static void
doctor_probe_denied(struct doctor_probe *p, const char *path)
{
	size_t n = strlen(p->denied);

	snprintf(p->denied + n, sizeof(p->denied) - n, "%s%s (%s)",
	    n > 0 ? "; " : "", path, strerror(errno));
}

/* Line ends of up to DOCTOR_LF_SAMPLE message files of one directory. */
static void
doctor_probe_sample(const char *dir, bool maildir, struct doctor_probe *p,
    char *buf)
{
	DIR *dp = opendir(dir);
	struct dirent *de;

	if (dp == NULL)
		return;
	while ((de = readdir(dp)) != NULL &&
	    p->sampled + p->unreadable < DOCTOR_LF_SAMPLE) {
		size_t len = strlen(de->d_name), got = 0;
		bool lf = false;
		struct stat st;
		int fd;

		if (de->d_name[0] == '.' || (!maildir && (len < 5 ||
		    strcmp(de->d_name + len - 4, ".eml") != 0)))
			continue;
		fd = openat(dirfd(dp), de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd == -1) {
			if (errno != ENOENT && errno != ELOOP)
				p->unreadable++;
			continue;
		}
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		while (got < DOCTOR_LF_READ) {
			ssize_t k = read(fd, buf + got, DOCTOR_LF_READ - got);

			if (k == -1 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			got += (size_t)k;
		}
		close(fd);
		for (size_t i = 0; i < got && !lf; i++)
			lf = buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r');
		p->sampled++;
		p->lf += lf;
	}
	closedir(dp);
}

/* The user's mailbox is an mbox file, or in a database (no path). */
static bool
doctor_is_mbox(const struct userdb_entry *e)
{
	return e->location != NULL && strncmp(e->location, "mbox:", 5) == 0;
}

static bool
doctor_is_database(const struct userdb_entry *e)
{
	return e->location != NULL && (strncmp(e->location, "sql:", 4) == 0 ||
	    strncmp(e->location, "tpops:", 6) == 0);
}

/* What the OK lines call the mailbox. */
static const char *
doctor_kind_name(const struct userdb_entry *e, bool maildir)
{
	if (doctor_is_mbox(e))
		return "mbox";
	if (doctor_is_database(e))
		return "database mailbox";
	return maildir ? "Maildir" : "emldir";
}

/* In the child, as the server's user: access, count, sample. */
static void
doctor_probe_run(const struct doctor *d, const struct userdb_entry *e,
    bool maildir, struct doctor_probe *p)
{
	static const char *const subs[] = { "new", "cur", "tmp" };
	const char *path = e->mailbox_path;
	struct mailbox *mb = NULL;
	char sub[PATH_MAX], err[256];
	char *buf;

	p->open_status = -1;
	/* The store's own warnings repeat what doctor says in its words. */
	log_set_level(LOG_LVL_ERROR);
	if (d->lock_exists)
		(void)store_lock_file_open(d->lock_path, d->srv_uid, d->srv_gid,
		    err, sizeof(err));
	if (d->srv_switch && privdrop_to(d->cfg->run_as_user, p->drop_err,
	    sizeof(p->drop_err)) != 0)
		return;
	/* Below a directory we cannot enter, everything is denied too: say
	 * it once.  (A database mailbox has no path; an mbox is a file.) */
	if (path != NULL && path[0] == '/' && access(path, R_OK | W_OK |
	    (doctor_is_mbox(e) ? 0 : X_OK)) == -1)
		doctor_probe_denied(p, path);
	for (size_t i = 0; maildir && p->denied[0] == '\0' && i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, subs[i]);
		if (access(sub, R_OK | W_OK | X_OK) == -1)
			doctor_probe_denied(p, sub);
	}
	p->open_status = (int)mailbox_open(e->location, e->name, &mb, p->open_err,
	    sizeof(p->open_err));
	if (p->open_status == STORE_OK) {
		p->count = mailbox_count(mb);
		p->total = mailbox_total_size(mb);
		mailbox_uidl_source(mb, p->uidl_source,
		    sizeof(p->uidl_source));
		mailbox_drift_report(mb, &p->drift);
		mailbox_close(&mb);
	}
	buf = xmalloc(DOCTOR_LF_READ);
	if (doctor_is_mbox(e) || path == NULL || path[0] != '/') {
		/* an mbox is LF by nature; a database holds wire form */
	} else if (maildir) {
		for (size_t i = 0; i < 2; i++) {
			snprintf(sub, sizeof(sub), "%s/%s", path, subs[i]);
			doctor_probe_sample(sub, true, p, buf);
		}
	} else {
		doctor_probe_sample(path, false, p, buf);
	}
	free(buf);
}

/* The likely cause of n of tracked messages under new UIDLs. */
static const char *
doctor_drift_cause(uint32_t n, uint32_t tracked)
{
	if (n == tracked && n > 1)
		return "every UIDL changed at once: UidlFormat or UidlCompat "
		    "was changed, or the mailbox was converted from another "
		    "server";
	return "message files were renamed by hand (a new unique part "
	    "before ':'), or a tool rewrote their names";
}

/* The UIDL-drift detector's findings (store.h), in what the client does. */
static void
doctor_drift(struct doctor *d, const char *user, const struct mailbox_drift *r)
{
	char when[64] = "";
	bool quiet = true;

	if (!r->enabled)
		return;
	if (r->last_time > 0) {
		time_t t = (time_t)r->last_time;
		struct tm tm;

		if (gmtime_r(&t, &tm) != NULL)
			(void)strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC",
			    &tm);
	}
	if (r->changed > 0) {
		quiet = false;
		doctor_say(d, DOCTOR_WARN, "%s: UIDL drift: %u of %u messages "
		    "posuto served before have a new UIDL (same file: inode "
		    "and size): the client will download them again at the "
		    "next login, as new mail. Likely cause: %s.", user,
		    r->changed, r->tracked, doctor_drift_cause(r->changed,
		    r->tracked));
	}
	if (r->reappeared > 0) {
		quiet = false;
		doctor_say(d, DOCTOR_WARN, "%s: UIDL drift: %u messages deleted "
		    "at a QUIT are back under the same UIDL: the client will "
		    "download them again. Likely cause: a restore from a "
		    "backup, or files copied back by hand.", user,
		    r->reappeared);
	}
	if (r->last_changed > 0 || r->last_reappeared > 0) {
		quiet = false;
		if (r->last_changed > 0)
			doctor_say(d, DOCTOR_WARN, "%s: UIDL drift: at the login "
			    "of %s, %u of %u messages had a new UIDL for a file "
			    "posuto had served: the client downloaded them "
			    "again. Likely cause: %s.", user, when,
			    r->last_changed, r->last_tracked,
			    doctor_drift_cause(r->last_changed,
			    r->last_tracked));
		if (r->last_reappeared > 0)
			doctor_say(d, DOCTOR_WARN, "%s: UIDL drift: at the login "
			    "of %s, %u messages deleted at a QUIT were back: "
			    "the client downloaded them again. Likely cause: a "
			    "restore from a backup, or files copied back by "
			    "hand.", user, when, r->last_reappeared);
	}
	if (r->reretrieved > 0) {
		quiet = false;
		doctor_say(d, DOCTOR_WARN, "%s: UIDL drift: %u messages were "
		    "downloaded (RETR) in 3 or more sessions: this client "
		    "will download %u messages again at every check. It "
		    "leaves mail on the server but does not remember the "
		    "UIDLs it has seen (a new profile or a reinstall lost its "
		    "list, or it does not use UIDL): delete the mail, or turn "
		    "on its \"leave on server\" UIDL tracking.", user,
		    r->reretrieved, r->reretrieved);
	}
	if (quiet)
		doctor_say(d, DOCTOR_OK, r->known ? "%s: UIDLs are stable: no "
		    "message changed its UIDL, came back after a delete or "
		    "was downloaded again (%u tracked)." : "%s: no UIDL "
		    "history yet (%u messages; the next login records it).",
		    user, r->tracked);
}

/* Forks the probe; false (with a finding) if it did not report. */
static bool
doctor_probe(struct doctor *d, const struct userdb_entry *e, bool maildir,
    struct doctor_probe *p)
{
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	memset(p, 0, sizeof(*p));
	if (pipe2(fds, O_CLOEXEC) == -1) {
		doctor_say(d, DOCTOR_ERROR, "%s: cannot check the mailbox: "
		    "pipe: %s.", e->name, strerror(errno));
		return false;
	}
	fflush(NULL);
	pid = fork();
	if (pid == -1) {
		doctor_say(d, DOCTOR_ERROR, "%s: cannot check the mailbox: "
		    "fork: %s.", e->name, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		const char *w = (const char *)p;
		size_t left = sizeof(*p);

		close(fds[0]);
		doctor_probe_run(d, e, maildir, p);
		while (left > 0) {
			ssize_t k = write(fds[1], w, left);

			if (k == -1 && errno == EINTR)
				continue;
			if (k <= 0)
				_exit(1);
			w += k;
			left -= (size_t)k;
		}
		_exit(0);
	}
	close(fds[1]);
	while (got < sizeof(*p)) {
		ssize_t k = read(fds[0], (char *)p + got, sizeof(*p) - got);

		if (k == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (got != sizeof(*p)) {
		doctor_say(d, DOCTOR_ERROR, "%s: the check of %s as %s did not "
		    "finish (it crashed?).", e->name, e->mailbox_path,
		    d->srv_name);
		return false;
	}
	p->drop_err[sizeof(p->drop_err) - 1] = '\0';
	p->denied[sizeof(p->denied) - 1] = '\0';
	p->open_err[sizeof(p->open_err) - 1] = '\0';
	p->uidl_source[sizeof(p->uidl_source) - 1] = '\0';
	return true;
}

/* -------------------------------------------------------------- postfix */

/* Next item of a Postfix list (whitespace or commas) into item; false at
 * the end. */
static bool
doctor_list_next(const char **s, char *item, size_t itemsz)
{
	const char *p = *s;
	size_t n;

	p += strspn(p, " \t,");
	if (*p == '\0')
		return false;
	n = strcspn(p, " \t,");
	snprintf(item, itemsz, "%.*s", (int)n, p);
	*s = p + n;
	return true;
}

/* 1 if domain is in the list (names compared without case, "type:table"
 * entries looked up with postmap), 0 if not, -1 if a lookup failed. */
static int
doctor_domain_in(struct doctor *d, const char *list, const char *domain,
    char *err, size_t errsz)
{
	char item[1024];
	int res = 0;

	while (doctor_list_next(&list, item, sizeof(item))) {
		char *val = NULL;
		int r;

		if (item[0] == '/' || strchr(item, ':') == NULL) {
			if (strcasecmp(item, domain) == 0)
				return 1;
			continue;
		}
		r = postfix_conf_map_query(&d->pf, item, domain, &val, err,
		    errsz);
		free(val);
		if (r == 1)
			return 1;
		if (r < 0)
			res = -1;
	}
	return res;
}

/*
 * A MailboxPath template for the mailbox at path: the user's home as %h,
 * a component equal to the user name as %u, to its local part as %n, to
 * its domain as %d; '%' doubled.  NULL if nothing could be generalised
 * (then only this user's own MailboxPath can say it).
 */
static char *
doctor_template(const struct userdb_entry *e, const char *path)
{
	const char *at = strrchr(e->name, '@');
	size_t nlen = at != NULL ? (size_t)(at - e->name) : strlen(e->name);
	const char *domain = at != NULL ? at + 1 : NULL;
	const char *p = path, *rest;
	char *out = xmalloc(strlen(path) * 2 + 4);
	size_t o = 0;
	bool general = false;

	if (e->home != NULL && (rest = doctor_below(path, e->home)) != NULL &&
	    e->home[0] == '/' && strlen(e->home) > 1) {
		memcpy(out, "%h", 2);
		o = 2;
		p = rest[0] == '\0' ? rest : rest - 1;
		general = true;
	}
	while (*p != '\0') {
		size_t n;

		if (*p == '/') {
			out[o++] = *p++;
			continue;
		}
		n = strcspn(p, "/");
		if (n == strlen(e->name) && strncmp(p, e->name, n) == 0) {
			memcpy(out + o, "%u", 2);
			o += 2;
			general = true;
		} else if (n == nlen && strncmp(p, e->name, n) == 0) {
			memcpy(out + o, "%n", 2);
			o += 2;
			general = true;
		} else if (domain != NULL && n == strlen(domain) &&
		    strncmp(p, domain, n) == 0) {
			memcpy(out + o, "%d", 2);
			o += 2;
			general = true;
		} else {
			for (size_t i = 0; i < n; i++) {
				if (p[i] == '%')
					out[o++] = '%';
				out[o++] = p[i];
			}
		}
		p += n;
	}
	out[o] = '\0';
	if (!general) {
		free(out);
		return NULL;
	}
	return out;
}

/* Where the delivery target D is not what posuto reads: say so, and the
 * fix on either side. */
static void
doctor_postfix_compare(struct doctor *d, const struct userdb_entry *e,
    const char *target, bool maildir, const char *where,
    const struct passwd *pw, const char *local, const char *home_mailbox,
    const char *vbase)
{
	char rd[PATH_MAX], rp[PATH_MAX], fixes[4096], tail[PATH_MAX];
	const char *rel;
	char *tmpl;
	size_t n = 0;

	doctor_resolve(target, rd, sizeof(rd));
	doctor_resolve(e->mailbox_path, rp, sizeof(rp));
	if (strcmp(rd, rp) == 0 && maildir) {
		if (doctor_format_is(e, "emldir"))
			doctor_say(d, DOCTOR_ERROR, "%s: Postfix delivers mail for "
			    "%s to the Maildir %s (%s), which posuto reads as a "
			    "JumboDogX emldir (MailboxFormat \"emldir\"), so it "
			    "sees none of that mail. Set \"MailboxFormat\": "
			    "\"maildir\" (or \"auto\").", e->name, e->name,
			    target, where);
		else
			doctor_say(d, DOCTOR_OK, "%s: Postfix delivers mail for "
			    "%s to %s (%s), the Maildir posuto reads.", e->name,
			    e->name, target, where);
		return;
	}
	fixes[0] = '\0';
	/* posuto's side: read where Postfix writes. */
	if (maildir) {
		snprintf(tail, sizeof(tail), "%s", target);
		for (size_t l = strlen(tail); l > 1 && tail[l - 1] == '/'; l--)
			tail[l - 1] = '\0';
		tmpl = doctor_template(e, tail);
		if (tmpl != NULL)
			n += (size_t)snprintf(fixes + n, sizeof(fixes) - n,
			    " in posuto's config set \"MailboxPath\": \"%s\"%s "
			    "(for %s that is %s);", tmpl,
			    doctor_format_is(e, "emldir") ?
			    " and \"MailboxFormat\": \"maildir\"" : "", e->name,
			    tail);
		else
			n += (size_t)snprintf(fixes + n, sizeof(fixes) - n,
			    " in %s's own entry in posuto's config set "
			    "\"MailboxPath\": \"%s\";", e->name, tail);
		free(tmpl);
	} else {
		n += (size_t)snprintf(fixes + n, sizeof(fixes) - n,
		    " Fix it on Postfix's side (posuto reads a directory "
		    "there, not an mbox file):");
	}
	/* Postfix's side: write where posuto reads. */
	if (n < sizeof(fixes) && pw != NULL &&
	    (rel = doctor_below(rp, pw->pw_dir)) != NULL && rel[0] != '\0') {
		n += (size_t)snprintf(fixes + n, sizeof(fixes) - n,
		    " %sin Postfix's main.cf set home_mailbox = %s/ (relative "
		    "to each user's home; the trailing / means Maildir)%s;",
		    maildir ? "or " : "", rel, home_mailbox[0] == '\0' ? "" :
		    " instead");
	} else if (n < sizeof(fixes) && pw != NULL) {
		char hm[PATH_MAX], newhome[PATH_MAX];
		size_t hl, pl = strlen(rp);

		snprintf(hm, sizeof(hm), "%s", home_mailbox[0] != '\0' ?
		    home_mailbox : "Maildir/");
		hl = strlen(hm);
		while (hl > 0 && hm[hl - 1] == '/')
			hm[--hl] = '\0';
		if (hl > 0 && pl > hl + 1 && strcmp(rp + pl - hl, hm) == 0 &&
		    rp[pl - hl - 1] == '/') {
			snprintf(newhome, sizeof(newhome), "%.*s",
			    (int)(pl - hl - 1), rp);
			n += (size_t)snprintf(fixes + n, sizeof(fixes) - n,
			    " %smake %s the home of %s (usermod -d %s %s)%s, "
			    "as seed 001 did;", maildir ? "or " : "", newhome,
			    pw->pw_name, newhome, pw->pw_name,
			    home_mailbox[0] == '\0' ? " and set home_mailbox = "
			    "Maildir/ in main.cf" : "");
		}
	} else if (n < sizeof(fixes) && vbase != NULL &&
	    (rel = doctor_below(rp, vbase)) != NULL && rel[0] != '\0') {
		n += (size_t)snprintf(fixes + n, sizeof(fixes) - n,
		    " %sin Postfix's virtual_mailbox_maps table map %s to %s/ "
		    "(then run postmap on it);", maildir ? "or " : "", e->name,
		    rel);
	}
	if (n < sizeof(fixes) && local != NULL)
		n += (size_t)snprintf(fixes + n, sizeof(fixes) - n,
		    " or have Postfix hand the mail to posuto deliver "
		    "(mailbox_command), which stores it where posuto reads;");
	if (n > 0 && n < sizeof(fixes) && fixes[n - 1] == ';')
		fixes[n - 1] = '.';
	if (maildir)
		doctor_say(d, DOCTOR_ERROR, "%s: Postfix delivers mail for %s to "
		    "%s (%s), but posuto reads %s, so %s never sees that mail. "
		    "Fix one side:%s", e->name, e->name, target, where,
		    e->mailbox_path, e->name, fixes);
	else
		doctor_say(d, DOCTOR_ERROR, "%s: Postfix appends mail for %s to "
		    "the mbox file %s (%s), but posuto reads the directory %s, "
		    "so %s never sees that mail.%s", e->name, e->name, target,
		    where, e->mailbox_path, e->name, fixes);
}

/* mailbox_transport / virtual_transport other than virtual(8). */
static void
doctor_postfix_transport(struct doctor *d, const struct userdb_entry *e,
    const char *param, const char *value)
{
	char service[256], err[512];
	char *line = NULL;
	const char *argv0;
	int r;

	if (strncmp(value, "lmtp:", 5) == 0) {
		if (strstr(value + 5, "posuto") != NULL)
			doctor_say(d, DOCTOR_OK, "%s: Postfix hands mail for %s to "
			    "posuto over LMTP at %s (%s = %s), which stores it "
			    "where posuto reads, %s.", e->name, e->name,
			    value + 5, param, value, e->mailbox_path);
		else
			doctor_say(d, DOCTOR_WARN, "%s: Postfix hands mail for %s "
			    "to the LMTP server at %s (%s = %s). If that is "
			    "posuto's LMTP listener, the mail lands where posuto "
			    "reads; if it is another server's (Dovecot's lmtp), "
			    "that server must store it in %s, the mailbox posuto "
			    "reads.", e->name, e->name, value + 5, param, value,
			    e->mailbox_path);
		return;
	}
	snprintf(service, sizeof(service), "%.*s",
	    (int)strcspn(value, ":"), value);
	r = postfix_conf_service(&d->pf, service, &line, err, sizeof(err));
	if (r == 0) {
		doctor_say(d, DOCTOR_ERROR, "%s: %s = %s names the transport %s, "
		    "which master.cf does not define: Postfix defers all mail "
		    "for %s.", e->name, param, value, service, e->name);
		return;
	}
	if (r < 0) {
		doctor_say(d, DOCTOR_WARN, "%s: Postfix hands mail for %s to the "
		    "transport %s (%s = %s), and postconf -M %s/unix failed (%s): "
		    "make sure it stores the mail in %s, the mailbox posuto "
		    "reads.", e->name, e->name, service, param, value, service,
		    err, e->mailbox_path);
		return;
	}
	argv0 = strstr(line, "argv=");
	if (argv0 != NULL && strstr(line, " pipe ") != NULL) {
		const char *base;
		size_t n;

		argv0 += 5;
		n = strcspn(argv0, " \t");
		base = memrchr(argv0, '/', n);
		base = base != NULL ? base + 1 : argv0;
		if ((size_t)(argv0 + n - base) == 6 &&
		    strncmp(base, "posuto", 6) == 0 &&
		    strstr(argv0 + n, "deliver") != NULL)
			doctor_say(d, DOCTOR_OK, "%s: Postfix hands mail for %s to "
			    "posuto deliver through the pipe transport %s (%s = "
			    "%s), which stores it where posuto reads, %s.",
			    e->name, e->name, service, param, value,
			    e->mailbox_path);
		else
			doctor_say(d, DOCTOR_WARN, "%s: Postfix hands mail for %s "
			    "to %.*s through the pipe transport %s (%s = %s): "
			    "that program decides where the mail goes. Make sure "
			    "it is %s, the mailbox posuto reads, or run posuto "
			    "deliver there instead.", e->name, e->name, (int)n,
			    argv0, service, param, value, e->mailbox_path);
	} else {
		doctor_say(d, DOCTOR_WARN, "%s: Postfix hands mail for %s to the "
		    "transport %s (%s = %s), whose master.cf entry is not a pipe "
		    "to posuto deliver: make sure it stores the mail in %s, the "
		    "mailbox posuto reads.", e->name, e->name, service, param,
		    value, e->mailbox_path);
	}
	free(line);
}

static void
doctor_postfix_command(struct doctor *d, const struct userdb_entry *e,
    const char *value)
{
	const char *p = value + strspn(value, " \t\"'");
	size_t n = strcspn(p, " \t\"'");
	const char *base = memrchr(p, '/', n);
	size_t bl;

	base = base != NULL ? base + 1 : p;
	bl = (size_t)(p + n - base);
	if (bl == 6 && strncmp(base, "posuto", 6) == 0 &&
	    strstr(p + n, "deliver") != NULL) {
		doctor_say(d, DOCTOR_OK, "%s: Postfix hands mail for %s to posuto "
		    "deliver (mailbox_command = %s), which stores it where posuto "
		    "reads, %s.", e->name, e->name, value, e->mailbox_path);
		return;
	}
	doctor_say(d, DOCTOR_WARN, "%s: Postfix hands mail for %s to %.*s "
	    "(mailbox_command = %s): that program decides where the mail goes, "
	    "and doctor cannot see where%s. Make sure it stores %s's mail in "
	    "%s, the mailbox posuto reads, or use posuto deliver as "
	    "mailbox_command.", e->name, e->name, (int)n, p, value,
	    (bl == 11 && strncmp(base, "dovecot-lda", 11) == 0) ||
	    (bl == 7 && strncmp(base, "deliver", 7) == 0) ?
	    " (Dovecot's LDA: its mail_location)" : "", e->name,
	    e->mailbox_path);
}

/* local(8): mailbox_transport, mailbox_command, home_mailbox,
 * mail_spool_directory, in that order (what local(8) itself does). */
static void
doctor_postfix_local(struct doctor *d, const struct userdb_entry *e,
    const char *local)
{
	const char *mt = postfix_conf_get(&d->pf, POSTFIX_MAILBOX_TRANSPORT);
	const char *mc = postfix_conf_get(&d->pf, POSTFIX_MAILBOX_COMMAND);
	const char *hm = postfix_conf_get(&d->pf, POSTFIX_HOME_MAILBOX);
	const char *spool = postfix_conf_get(&d->pf,
	    POSTFIX_MAIL_SPOOL_DIRECTORY);
	char target[PATH_MAX], where[PATH_MAX + 64];
	struct passwd *pw;
	struct stat st;
	size_t sl;

	errno = 0;
	pw = doctor_getpwnam(local);
	if (pw == NULL) {
		doctor_say(d, DOCTOR_WARN, "%s: Postfix delivers mail for %s "
		    "with local(8), which knows only this host's accounts, and "
		    "there is no account %s: the mail bounces unless an alias "
		    "sends it elsewhere. Create the account, or make the domain "
		    "a virtual mailbox domain.", e->name, e->name, local);
		return;
	}
	snprintf(target, sizeof(target), "%s/.forward", pw->pw_dir);
	if (stat(target, &st) == 0)
		doctor_say(d, DOCTOR_WARN, "%s: %s exists: local(8) follows it "
		    "before any mailbox setting, so the mail may go elsewhere. "
		    "Check it.", e->name, target);
	if (mt[0] != '\0') {
		doctor_postfix_transport(d, e, "mailbox_transport", mt);
		return;
	}
	if (mc[0] != '\0') {
		doctor_postfix_command(d, e, mc);
		return;
	}
	if (hm[0] != '\0') {
		snprintf(target, sizeof(target), "%s%s%s", pw->pw_dir,
		    pw->pw_dir[strlen(pw->pw_dir) - 1] == '/' ? "" : "/", hm);
		snprintf(where, sizeof(where), "home_mailbox = %s", hm);
		doctor_postfix_compare(d, e, target, hm[strlen(hm) - 1] == '/',
		    where, pw, local, hm, NULL);
		return;
	}
	sl = strlen(spool);
	snprintf(target, sizeof(target), "%s%s%s", spool,
	    sl > 0 && spool[sl - 1] == '/' ? "" : "/", pw->pw_name);
	snprintf(where, sizeof(where), "mail_spool_directory = %s, "
	    "home_mailbox not set", spool);
	/* A trailing '/' makes the spool Maildir-style. */
	doctor_postfix_compare(d, e, target, sl > 0 && spool[sl - 1] == '/',
	    where, pw, local, hm, NULL);
}

/* virtual(8) or another virtual_transport. */
static void
doctor_postfix_virtual(struct doctor *d, const struct userdb_entry *e)
{
	const char *vt = postfix_conf_get(&d->pf, POSTFIX_VIRTUAL_TRANSPORT);
	const char *base = postfix_conf_get(&d->pf,
	    POSTFIX_VIRTUAL_MAILBOX_BASE);
	const char *maps = postfix_conf_get(&d->pf,
	    POSTFIX_VIRTUAL_MAILBOX_MAPS);
	char item[1024], err[512], target[PATH_MAX], where[PATH_MAX + 1200];
	char *val = NULL;
	bool failed = false;
	const char *list = maps;
	size_t vl;

	if (vt[0] != '\0' && strcmp(vt, "virtual") != 0) {
		doctor_postfix_transport(d, e, "virtual_transport", vt);
		return;
	}
	err[0] = '\0';
	while (doctor_list_next(&list, item, sizeof(item))) {
		int r = postfix_conf_map_query(&d->pf, item, e->name, &val, err,
		    sizeof(err));

		if (r == 1)
			break;
		failed |= r < 0;
	}
	if (val == NULL) {
		if (failed)
			doctor_say(d, DOCTOR_WARN, "%s: cannot look %s up in "
			    "virtual_mailbox_maps (%s): %s.", e->name, e->name,
			    maps, err);
		else
			doctor_say(d, DOCTOR_ERROR, "%s: the domain is a virtual "
			    "mailbox domain, but %s is not in virtual_mailbox_maps "
			    "(%s): Postfix rejects mail for it (\"User unknown in "
			    "virtual mailbox table\").", e->name, e->name,
			    maps[0] != '\0' ? maps : "empty");
		return;
	}
	vl = strlen(val);
	snprintf(target, sizeof(target), "%s%s%s", base,
	    base[0] != '\0' && base[strlen(base) - 1] != '/' && val[0] != '/' ?
	    "/" : "", val);
	snprintf(where, sizeof(where), "virtual_mailbox_base = %s and %s in "
	    "virtual_mailbox_maps", base, val);
	doctor_postfix_compare(d, e, target, vl > 0 && val[vl - 1] == '/',
	    where, NULL, NULL, "", base);
	free(val);
}

static void
doctor_postfix_user(struct doctor *d, const struct userdb_entry *e)
{
	const char *at = strrchr(e->name, '@');
	char local[256], err[512];
	int r;

	if (at == NULL) {
		doctor_postfix_local(d, e, e->name);
		return;
	}
	snprintf(local, sizeof(local), "%.*s", (int)(at - e->name), e->name);
	err[0] = '\0';
	r = doctor_domain_in(d, postfix_conf_get(&d->pf,
	    POSTFIX_VIRTUAL_MAILBOX_DOMAINS), at + 1, err, sizeof(err));
	if (r == 1) {
		doctor_postfix_virtual(d, e);
		return;
	}
	if (doctor_domain_in(d, postfix_conf_get(&d->pf,
	    POSTFIX_MYDESTINATION), at + 1, err, sizeof(err)) == 1) {
		doctor_postfix_local(d, e, local);
		return;
	}
	doctor_say(d, DOCTOR_WARN, "%s: Postfix does not deliver mail for %s "
	    "on this host: it is neither in mydestination (%s) nor in "
	    "virtual_mailbox_domains (%s)%s%s, so mail for %s is relayed or "
	    "rejected. If Postfix should store it, add %s to one of them.",
	    e->name, at + 1, postfix_conf_get(&d->pf, POSTFIX_MYDESTINATION),
	    postfix_conf_get(&d->pf, POSTFIX_VIRTUAL_MAILBOX_DOMAINS),
	    err[0] != '\0' ? "; a lookup failed: " : "", err, e->name, at + 1);
}

/* ---------------------------------------------------------------- users */

static void
doctor_user(struct doctor *d, const struct userdb_entry *e)
{
	const char *path = e->mailbox_path;
	char owner[128], *text = NULL;
	size_t textlen = 0;
	struct doctor_probe p;
	struct stat st;
	bool maildir = false;
	FILE *mf;
	int fd;

	if (doctor_is_database(e)) {
		/* No file to look at: what the server's user can open. */
		memset(&st, 0, sizeof(st));
		path = e->location;
		goto probe;
	}
	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			doctor_say(d, DOCTOR_WARN, "%s: the mailbox %s does not "
			    "exist: posuto shows %s an empty mailbox until a "
			    "delivery creates it.", e->name, path, e->name);
		else
			doctor_say(d, DOCTOR_ERROR, "%s: cannot look at the "
			    "mailbox %s: %s.", e->name, path, strerror(errno));
		goto postfix;
	}
	if (doctor_is_mbox(e) ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode)) {
		doctor_say(d, DOCTOR_ERROR, doctor_is_mbox(e) ? "%s: %s is not "
		    "a file: MailboxFormat mbox reads one mbox file." :
		    "%s: %s is not a directory: posuto reads a mailbox "
		    "directory (Maildir or emldir) there, or an mbox file with "
		    "MailboxFormat mbox.", e->name, path);
		goto postfix;
	}
	fd = doctor_is_mbox(e) ? -1 :
	    open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1) {
		maildir = doctor_is_dir_at(fd, "cur") &&
		    doctor_is_dir_at(fd, "new") && doctor_is_dir_at(fd, "tmp");
		close(fd);
	}
	if (doctor_format_is(e, "emldir"))
		maildir = false;
	if (doctor_format_is(e, "maildir") && !maildir)
		doctor_say(d, DOCTOR_WARN, "%s: MailboxFormat is maildir, but %s "
		    "has no cur/, new/ and tmp/ directories yet.", e->name, path);
	doctor_user_name(st.st_uid, owner, sizeof(owner));
	if (e->uid != USERDB_ID_NONE && st.st_uid != (uid_t)e->uid) {
		doctor_say(d, DOCTOR_WARN, "%s: %s belongs to %s, but the "
		    "passwd-file gives %s uid %lu.", e->name, path, owner,
		    e->name, (unsigned long)e->uid);
	} else if (d->cfg->run_as_user != NULL && st.st_uid != d->srv_uid) {
		struct passwd *own = doctor_getpwnam(e->name);

		if (own == NULL || own->pw_uid != st.st_uid)
			doctor_say(d, DOCTOR_WARN, "%s: %s belongs to %s, neither "
			    "to %s (RunAsUser) nor to an account %s: posuto "
			    "serves only files of the directory's owner, and "
			    "files it creates there are %s's. Make it %s's "
			    "(chown -R %s: %s).", e->name, path, owner,
			    d->srv_name, e->name, d->srv_name, d->srv_name,
			    d->srv_name, path);
	}
	if (st.st_mode & S_IROTH)
		doctor_say(d, DOCTOR_WARN, "%s: every user on this host can read "
		    "%s (mode %04o): chmod o-rwx %s.", e->name, path,
		    (unsigned)(st.st_mode & 07777), path);
	/* What check-config warns about: world-writable directories (logins
	 * refused), foreign files (not served), hard links. */
	mf = open_memstream(&text, &textlen);
	if (mf != NULL) {
		(void)mailbox_check(e->name, e->location, mf);
		fclose(mf);
		doctor_say_lines(d, DOCTOR_WARN, text, "");
		free(text);
	}
probe:
	if (!doctor_probe(d, e, maildir, &p))
		goto postfix;
	if (p.drop_err[0] != '\0') {
		doctor_say(d, DOCTOR_ERROR, "%s: cannot check %s as %s: %s.",
		    e->name, path, d->srv_name, p.drop_err);
		goto postfix;
	}
	if (p.denied[0] != '\0')
		doctor_say(d, DOCTOR_ERROR, "%s: %s, the user posuto runs as, "
		    "cannot read and write %s: %s. posuto cannot serve or delete "
		    "that mail: make the mailbox %s's (chown -R %s: %s) or give "
		    "it access.", e->name, d->srv_name, path, p.denied,
		    d->srv_name, d->srv_name, path);
	if (p.open_status == STORE_OK && doctor_is_database(e))
		doctor_say(d, DOCTOR_OK, "%s: posuto reads the database mailbox "
		    "%s: %lu message%s, %llu octets.", e->name, path,
		    (unsigned long)p.count, p.count == 1 ? "" : "s",
		    (unsigned long long)p.total);
	else if (p.open_status == STORE_OK)
		doctor_say(d, DOCTOR_OK, "%s: posuto reads the %s at %s, owned "
		    "by %s, mode %04o%s%s: %lu message%s, %llu octets.", e->name,
		    doctor_kind_name(e, maildir), path, owner,
		    (unsigned)(st.st_mode & 07777), p.denied[0] == '\0' ?
		    "; readable and writable by " : "",
		    p.denied[0] == '\0' ? d->srv_name : "",
		    (unsigned long)p.count, p.count == 1 ? "" : "s",
		    (unsigned long long)p.total);
	else if (p.open_status == STORE_IN_USE)
		doctor_say(d, DOCTOR_OK, "%s: posuto reads the %s at %s; a POP3 "
		    "session holds it now, so its messages were not counted.",
		    e->name, doctor_kind_name(e, maildir), path);
	else
		doctor_say(d, DOCTOR_ERROR, "%s: posuto cannot open %s as %s: "
		    "%s.", e->name, path, d->srv_name, p.open_err[0] != '\0' ?
		    p.open_err : "unknown error");
	if (p.open_status == STORE_OK && p.uidl_source[0] != '\0')
		doctor_say(d, DOCTOR_OK, "%s: UIDLs come from %s.", e->name,
		    p.uidl_source);
	if (p.open_status == STORE_OK)
		doctor_drift(d, e->name, &p.drift);
	if (p.unreadable > 0)
		doctor_say(d, DOCTOR_WARN, "%s: %u message files in %s cannot be "
		    "read by %s: they are listed but never served.", e->name,
		    p.unreadable, path, d->srv_name);
	if (p.lf > 0)
		doctor_say(d, DOCTOR_WARN, "%s: %u of the %u message files "
		    "sampled in %s have LF-only line ends, as Postfix's local(8) "
		    "writes Maildir files. POP3 sends CRLF, so each RETR of "
		    "such a message converts it on the fly, and a big one "
		    "downloaded again gets a converted copy in posuto-wire/ "
		    "(that much disk again, see WireCacheMinSize); none of them "
		    "is a plain sendfile() of the file. posuto deliver as "
		    "Postfix's mailbox_command writes CRLF files that are sent "
		    "as they are.", e->name, p.lf, p.sampled, path);
postfix:
	if (d->pf_ok)
		doctor_postfix_user(d, e);
}

static bool
doctor_user_cb(const struct userdb_entry *e, void *arg)
{
	doctor_user(arg, e);
	return true;
}

/* ------------------------------------------------------------ the rest */

static bool
doctor_server_user(struct doctor *d)
{
	const struct posuto_config *cfg = d->cfg;
	char me[128];

	if (cfg->run_as_user == NULL) {
		d->srv_uid = geteuid();
		d->srv_gid = getegid();
		doctor_user_name(d->srv_uid, me, sizeof(me));
		snprintf(d->srv_name, sizeof(d->srv_name), "%s", me);
		doctor_say(d, DOCTOR_OK, "RunAsUser is not set: posuto runs as "
		    "the user that starts it. Mailbox access is checked as %s, "
		    "the user running doctor.", me);
		return true;
	}
	errno = 0;
	struct passwd *pw = getpwnam(cfg->run_as_user);
	if (pw == NULL) {
		doctor_say(d, DOCTOR_ERROR, "RunAsUser %s: there is no such "
		    "user, so posuto does not start.", cfg->run_as_user);
		return false;
	}
	d->srv_uid = pw->pw_uid;
	d->srv_gid = pw->pw_gid;
	snprintf(d->srv_name, sizeof(d->srv_name), "%s", pw->pw_name);
	if (geteuid() == 0) {
		d->srv_switch = pw->pw_uid != 0;
		doctor_say(d, DOCTOR_OK, "posuto runs as %s (RunAsUser, uid %lu, "
		    "gid %lu): mailbox access is checked as that user.",
		    pw->pw_name, (unsigned long)pw->pw_uid,
		    (unsigned long)pw->pw_gid);
	} else if (geteuid() != pw->pw_uid) {
		doctor_user_name(geteuid(), me, sizeof(me));
		snprintf(d->srv_name, sizeof(d->srv_name), "%s", me);
		doctor_say(d, DOCTOR_WARN, "posuto runs as %s (RunAsUser), but "
		    "doctor runs as %s and cannot become %s: mailbox access is "
		    "checked as %s. Run doctor as root to check it as %s.",
		    pw->pw_name, me, pw->pw_name, me, pw->pw_name);
	}
	return true;
}

static void
doctor_cert(struct doctor *d)
{
	const char *cert = d->cfg->tls.cert_file;
	char err[512];
	int days;

	if (cert == NULL)
		return;
	if (!tls_cert_days_left(cert, &days, err, sizeof(err))) {
		doctor_say(d, DOCTOR_ERROR, "TLS certificate: %s.", err);
		return;
	}
	if (days < 0)
		doctor_say(d, DOCTOR_ERROR, "The TLS certificate %s expired %d "
		    "day%s ago: clients refuse to connect over TLS. Renew it; "
		    "SIGHUP loads the new one.", cert, -days, days == -1 ? "" :
		    "s");
	else if (days < DOCTOR_CERT_WARN_DAYS)
		doctor_say(d, DOCTOR_WARN, "The TLS certificate %s expires in %d "
		    "day%s: renew it soon (SIGHUP loads the new one without a "
		    "restart).", cert, days, days == 1 ? "" : "s");
	else
		doctor_say(d, DOCTOR_OK, "The TLS certificate %s is valid for "
		    "%d more days.", cert, days);
}

static void
doctor_postfix(struct doctor *d, const char *dir)
{
	char err[2048];
	enum postfix_conf_status st;

	st = postfix_conf_read(dir, &d->pf, err, sizeof(err));
	switch (st) {
	case POSTFIX_CONF_OK:
		d->pf_ok = true;
		doctor_say(d, DOCTOR_OK, "Postfix: read %s with %s; for each "
		    "user below, where Postfix delivers and whether posuto reads "
		    "that place.", d->pf.config_dir, d->pf.postconf);
		break;
	case POSTFIX_CONF_NO_POSTCONF:
		doctor_say(d, dir != NULL ? DOCTOR_WARN : DOCTOR_OK, "Postfix "
		    "not checked: %s (Postfix is not installed, or /usr/sbin is "
		    "not on PATH).", err);
		break;
	case POSTFIX_CONF_NO_MAIN_CF:
		doctor_say(d, dir != NULL ? DOCTOR_WARN : DOCTOR_OK, "Postfix "
		    "not checked: %s has no main.cf (%s)%s.", d->pf.config_dir,
		    err, dir != NULL ? "" : "; --postfix-config DIR names "
		    "another configuration directory");
		break;
	case POSTFIX_CONF_FAILED:
		doctor_say(d, DOCTOR_WARN, "Postfix not checked: %s.", err);
		break;
	}
}

static void
doctor_usage(FILE *f)
{
	fprintf(f, "usage: posuto doctor [-c FILE] [--postfix-config DIR] "
	    "[USER]\n");
}

int
cmd_doctor(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "postfix-config", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor d = { 0 };
	const char *config = default_config, *pf_dir = NULL, *user = NULL;
	struct posuto_config *cfg = NULL;
	struct userdb *db = NULL;
	char *text = NULL;
	size_t textlen = 0;
	FILE *mf;
	int ch, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'P':
			pf_dir = optarg;
			break;
		case 'h':
			doctor_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "posuto doctor: %s '%s'\n", ch == ':' ?
			    "missing argument to" : "bad option",
			    argv[optind - 1]);
			doctor_usage(stderr);
			return DOCTOR_EXIT_USAGE;
		}
	}
	if (optind < argc)
		user = argv[optind++];
	if (optind != argc) {
		fprintf(stderr, "posuto doctor: unexpected argument '%s'\n",
		    argv[optind]);
		doctor_usage(stderr);
		return DOCTOR_EXIT_USAGE;
	}

	mf = open_memstream(&text, &textlen);
	if (mf == NULL)
		abort();
	rc = config_load(config, &cfg, mf);
	fclose(mf);
	doctor_say_lines(&d, rc == 0 ? DOCTOR_WARN : DOCTOR_ERROR, text, "");
	free(text);
	text = NULL;
	if (rc != 0) {
		doctor_say(&d, DOCTOR_ERROR, "The configuration %s does not "
		    "load (above); nothing else was checked.", config);
		return 1;
	}
	d.cfg = cfg;
	store_uidl_configure(cfg);
	store_drift_configure(cfg->uidl_drift);
	/* the stores as the server sets them up (server_apply_params) */
	store_mbox_configure(cfg->mbox_state_dir);
	store_sql_configure(&cfg->sql);
	doctor_say(&d, DOCTOR_OK, "Configuration %s loaded.", config);
	{
		char terr[256];

		if (!store_tpops_configure(&cfg->sql, terr, sizeof(terr)))
			doctor_say(&d, DOCTOR_ERROR, "Sql: %s.", terr);
	}
	if (!cfg->enabled)
		doctor_say(&d, DOCTOR_WARN, "Enabled is false: posuto serve "
		    "refuses to start.");
	if (!doctor_server_user(&d))
		goto done;
	if (cfg->lock_file != NULL)
		snprintf(d.lock_path, sizeof(d.lock_path), "%s", cfg->lock_file);
	else
		(void)store_lock_default_path(d.lock_path, sizeof(d.lock_path));
	d.lock_exists = access(d.lock_path, F_OK) == 0;
	doctor_cert(&d);
	doctor_postfix(&d, pf_dir);

	mf = open_memstream(&text, &textlen);
	if (mf == NULL)
		abort();
	db = userdb_load(cfg, mf);
	fclose(mf);
	doctor_say_lines(&d, db != NULL ? DOCTOR_WARN : DOCTOR_ERROR, text, "");
	free(text);
	if (db == NULL) {
		doctor_say(&d, DOCTOR_ERROR, "The users do not load (above): no "
		    "mailbox was checked.");
		goto done;
	}
	if (user != NULL) {
		const struct userdb_entry *e;

		switch (userdb_lookup(db, user, &e)) {
		case USERDB_OK:
			doctor_user(&d, e);
			break;
		case USERDB_NOT_FOUND:
			doctor_say(&d, DOCTOR_ERROR, "There is no user %s in %s "
			    "or its passwd-file.", user, config);
			break;
		case USERDB_TEMPFAIL:
			doctor_say(&d, DOCTOR_ERROR, "%s: the user database "
			    "failed; try again.", user);
			break;
		}
	} else {
		(void)userdb_iterate(db, doctor_user_cb, &d);
	}
done:
	printf("%u error%s, %u warning%s.\n", d.n_error,
	    d.n_error == 1 ? "" : "s", d.n_warn, d.n_warn == 1 ? "" : "s");
	store_sql_configure(NULL);	/* it points into cfg */
	userdb_unref(&db);
	postfix_conf_free(&d.pf);
	config_free(&cfg);
	return d.n_error > 0 ? 1 : 0;
}
