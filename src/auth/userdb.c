/*
 * userdb.c - users from the config and a Dovecot passwd-file, as one
 * immutable, sorted, refcounted snapshot.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/passwd.h"
#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

/* Longest passwd-file line we read; Dovecot's lines are short, a longer
 * one is a corrupt file, not a user. */
#define PASSWD_LINE_MAX		8192

struct user {
	struct userdb_entry pub;	/* points into the fields below */
	char *name;
	char *password;
	char *apop_secret;
	char *mailbox_path;
	char *home;
	char *origin;			/* "FILE:LINE" for messages */
};

struct userdb {
	atomic_uint refs;
	struct user *users;		/* sorted by name */
	size_t n_users, cap;
	bool has_apop;
	bool all_scram;
	/* Cost classes: one secret each, pointing into users[]. */
	const char *class_secret[USERDB_COST_CLASSES_MAX];
	size_t n_classes;
	const char *scram_example;	/* points into users[] */
	struct userdb_policy policy;
};

/* Loading context: the db being built and the error stream. */
struct load_ctx {
	struct userdb *db;
	const struct posuto_config *cfg;
	FILE *errs;
	unsigned n_errors;
};

static void load_error(struct load_ctx *ctx, const char *fmt, ...)
    LOG_PRINTF(2, 3);

static void
load_error(struct load_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	ctx->n_errors++;
	if (ctx->errs == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(ctx->errs, fmt, ap);
	va_end(ap);
	fputc('\n', ctx->errs);
}

/* Length of the UTF-8 sequence at s (at most len bytes), 0 if malformed,
 * overlong, a surrogate, above U+10FFFF or a C1 control. */
static size_t
utf8_seq_len(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (n > len)
		return 0;
	cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || cp < 0xa0)
		return 0;
	return n;
}

bool
userdb_name_valid(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;

	if (name == NULL || len == 0 || len > USERNAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; ) {
		unsigned char c = s[i];

		if (c >= 0x80) {
			size_t n = utf8_seq_len(s + i, len - i);
			if (n == 0)
				return false;
			i += n;
			continue;
		}
		/* Controls, space, DEL; path and passwd-file separators. */
		if (c <= 0x20 || c == 0x7f || c == '/' || c == '\\' ||
		    c == ':')
			return false;
		if (c == '.' && i + 1 < len && s[i + 1] == '.')
			return false;
		i++;
	}
	return true;
}

/* Appends n bytes to a growing string. */
static void
buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xreallocarray(*buf, *cap, 1);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

char *
userdb_expand_path_home(const char *tmpl, const char *user, const char *home,
    const char **why_r)
{
	const char *at = strchr(user, '@');
	size_t len = 0, cap = 0;
	char *out = NULL;

	buf_add(&out, &len, &cap, "", 0);
	for (const char *p = tmpl; *p != '\0'; ) {
		const char *lit = p;

		while (*p != '\0' && *p != '%')
			p++;
		buf_add(&out, &len, &cap, lit, (size_t)(p - lit));
		if (*p == '\0')
			break;
		switch (p[1]) {
		case 'u':
			buf_add(&out, &len, &cap, user, strlen(user));
			break;
		case 'n':
			buf_add(&out, &len, &cap, user,
			    at != NULL ? (size_t)(at - user) : strlen(user));
			break;
		case 'd':
			if (at != NULL)
				buf_add(&out, &len, &cap, at + 1,
				    strlen(at + 1));
			break;
		case 'h':
			if (home == NULL) {
				*why_r = "%h used but the user has no home";
				free(out);
				return NULL;
			}
			buf_add(&out, &len, &cap, home, strlen(home));
			break;
		case '%':
			buf_add(&out, &len, &cap, "%", 1);
			break;
		default:
			*why_r = "unknown %-sequence (known: %u %n %d %h %%)";
			free(out);
			return NULL;
		}
		p += 2;
	}
	return out;
}

char *
userdb_expand_path(const char *tmpl, const char *user, const char **why_r)
{
	return userdb_expand_path_home(tmpl, user, NULL, why_r);
}

static struct user *
user_add(struct load_ctx *ctx)
{
	struct userdb *db = ctx->db;

	if (db->n_users == db->cap) {
		db->cap = db->cap == 0 ? 16 : db->cap * 2;
		db->users = xreallocarray(db->users, db->cap,
		    sizeof(*db->users));
	}
	memset(&db->users[db->n_users], 0, sizeof(db->users[0]));
	return &db->users[db->n_users++];
}

static void
user_free(struct user *u)
{
	free(u->name);
	free_secret(u->password);
	free_secret(u->apop_secret);
	free(u->mailbox_path);
	free(u->home);
	free(u->origin);
}

/*
 * Sets u->mailbox_path from the first template that applies (see
 * userdb.h); tmpl is the user's own one or NULL.
 */
static bool
user_set_mailbox(struct load_ctx *ctx, struct user *u, const char *tmpl)
{
	const struct posuto_config *cfg = ctx->cfg;
	char *dflt = NULL;
	const char *why;

	if (tmpl == NULL)
		tmpl = cfg->mailbox_template;
	if (tmpl == NULL && cfg->mail_dir != NULL)
		tmpl = dflt = xasprintf("%s/%%u", cfg->mail_dir);
	if (tmpl == NULL && u->home != NULL)
		tmpl = "%h/Maildir";
	if (tmpl == NULL) {
		load_error(ctx, "%s: user %s: no mailbox location (set MailDir "
		    "or MailboxPath)", u->origin, u->name);
		return false;
	}
	u->mailbox_path = userdb_expand_path_home(tmpl, u->name, u->home,
	    &why);
	free(dflt);
	if (u->mailbox_path == NULL) {
		load_error(ctx, "%s: user %s: mailbox template: %s", u->origin,
		    u->name, why);
		return false;
	}
	if (u->mailbox_path[0] != '/') {
		load_error(ctx, "%s: user %s: mailbox path %s is not absolute",
		    u->origin, u->name, u->mailbox_path);
		return false;
	}
	return true;
}

static bool
user_check(struct load_ctx *ctx, struct user *u)
{
	const char *why;

	if (!userdb_name_valid(u->name, strlen(u->name))) {
		load_error(ctx, "%s: invalid user name (printable ASCII or "
		    "UTF-8, no space, '/', '\\', ':', leading '.' or \"..\")",
		    u->origin);
		return false;
	}
	if (!passwd_stored_valid(u->password, &why)) {
		load_error(ctx, "%s: user %s: password: %s", u->origin,
		    u->name, why);
		return false;
	}
	return true;
}

static void
load_config_users(struct load_ctx *ctx)
{
	const struct posuto_config *cfg = ctx->cfg;

	for (size_t i = 0; i < cfg->n_users; i++) {
		const struct user_cfg *uc = &cfg->users[i];
		struct user *u = user_add(ctx);

		u->origin = xasprintf("%s: Users[%zu]",
		    cfg->path != NULL ? cfg->path : "config", i);
		u->name = xstrdup(uc->name != NULL ? uc->name : "");
		u->password = xstrdup(uc->password != NULL ? uc->password : "");
		if (uc->apop_secret != NULL)
			u->apop_secret = xstrdup(uc->apop_secret);
		u->pub.format = uc->format != MBOX_FORMAT_AUTO ? uc->format :
		    cfg->format;
		u->pub.login_delay = uc->has_login_delay ? uc->login_delay :
		    cfg->login_delay;
		u->pub.expire_days = uc->expire_days != EXPIRE_INHERIT ?
		    uc->expire_days : cfg->expire_days;
		if (user_check(ctx, u))
			(void)user_set_mailbox(ctx, u, uc->mailbox);
	}
}

/*
 * Dovecot extra field mail=/userdb_mail=: "[maildir:]PATH[:OPT=...]",
 * "~" meaning home.  Returns a template for user_set_mailbox() (caller
 * frees) or NULL if the line has none; *bad_r on something we cannot use.
 */
static char *
extra_mail_template(const char *extra, const char *home, enum mbox_format
    *format_r, const char **why_r)
{
	const char *p = extra, *val = NULL;
	size_t vlen = 0;
	char *tmpl;

	while (*p != '\0') {
		const char *end = p + strcspn(p, " \t");
		size_t flen = (size_t)(end - p);

		if (flen > 5 && strncmp(p, "mail=", 5) == 0) {
			val = p + 5;
			vlen = flen - 5;
		} else if (flen > 12 && strncmp(p, "userdb_mail=", 12) == 0) {
			val = p + 12;
			vlen = flen - 12;
		}
		p = end + strspn(end, " \t");
	}
	if (val == NULL)
		return NULL;
	if (vlen > 8 && strncmp(val, "maildir:", 8) == 0) {
		*format_r = MBOX_FORMAT_MAILDIR;
		val += 8;
		vlen -= 8;
	} else if (memchr(val, ':', vlen) != NULL &&
	    (memchr(val, '/', vlen) == NULL ||
	    (const char *)memchr(val, ':', vlen) <
	    (const char *)memchr(val, '/', vlen))) {
		*why_r = "mail= format other than maildir: is not supported";
		return NULL;
	}
	/* Options after the path (":INDEX=...") do not concern us. */
	if (memchr(val, ':', vlen) != NULL)
		vlen = (size_t)((const char *)memchr(val, ':', vlen) - val);
	if (vlen > 0 && val[0] == '~') {
		if (home == NULL) {
			*why_r = "mail= uses ~ but the user has no home";
			return NULL;
		}
		tmpl = xasprintf("%%h%.*s", (int)(vlen - 1), val + 1);
	} else {
		tmpl = xstrndup(val, vlen);
	}
	return tmpl;
}

/*
 * posuto's extra fields login_delay=SECONDS and expire=DAYS|never (or
 * userdb_login_delay=, userdb_expire=), over the server's values already
 * in u->pub.  False with *why_r on a bad value.
 */
static bool
extra_policy_fields(const char *extra, struct user *u, const char **why_r)
{
	for (const char *p = extra; *p != '\0'; ) {
		const char *end = p + strcspn(p, " \t");
		size_t flen = (size_t)(end - p);
		uint32_t n;

		if (flen > 7 && strncmp(p, "userdb_", 7) == 0) {
			p += 7;
			flen -= 7;
		}
		if (flen > 12 && strncmp(p, "login_delay=", 12) == 0) {
			if (!parse_u32(p + 12, flen - 12, &n) ||
			    n > LOGIN_DELAY_MAX) {
				*why_r = "login_delay= needs 0..86400 seconds";
				return false;
			}
			u->pub.login_delay = n;
		} else if (flen > 7 && strncmp(p, "expire=", 7) == 0) {
			if (flen == 12 && strncmp(p + 7, "never", 5) == 0)
				u->pub.expire_days = EXPIRE_NEVER;
			else if (parse_u32(p + 7, flen - 7, &n) &&
			    n <= EXPIRE_MAX_DAYS)
				u->pub.expire_days = (int)n;
			else {
				*why_r = "expire= needs 0..36500 days or never";
				return false;
			}
		}
		p = end + strspn(end, " \t");
	}
	return true;
}

static void
parse_passwd_line(struct load_ctx *ctx, const char *file, unsigned lineno,
    char *line)
{
	char *f[8] = { NULL };
	char *p = line, *tmpl;
	const char *why = NULL;
	struct user *u;
	int n = 0;

	/* user:pass:uid:gid:gecos:home:shell:extra (extra may hold ':') */
	while (n < 8) {
		f[n++] = p;
		if (n == 8)
			break;
		p = strchr(p, ':');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (n < 2 || f[1][0] == '\0') {
		load_error(ctx, "%s:%u: expected user:{SCHEME}password[:...]",
		    file, lineno);
		return;
	}
	u = user_add(ctx);
	u->origin = xasprintf("%s:%u", file, lineno);
	u->name = xstrdup(f[0]);
	u->password = f[1][0] == '{' ? xstrdup(f[1]) :
	    xasprintf("{CRYPT}%s", f[1]);
	if (n > 5 && f[5][0] != '\0')
		u->home = xstrdup(f[5]);
	u->pub.format = ctx->cfg->format;
	u->pub.login_delay = ctx->cfg->login_delay;
	u->pub.expire_days = ctx->cfg->expire_days;
	if (!user_check(ctx, u))
		return;
	if (n > 7 && !extra_policy_fields(f[7], u, &why)) {
		load_error(ctx, "%s: user %s: %s", u->origin, u->name, why);
		return;
	}
	if (u->home != NULL && u->home[0] != '/') {
		load_error(ctx, "%s: user %s: home %s is not absolute",
		    u->origin, u->name, u->home);
		return;
	}
	tmpl = n > 7 ? extra_mail_template(f[7], u->home, &u->pub.format,
	    &why) : NULL;
	if (why != NULL) {
		load_error(ctx, "%s: user %s: %s", u->origin, u->name, why);
		return;
	}
	(void)user_set_mailbox(ctx, u, tmpl);
	free(tmpl);
}

/*
 * As for the config file (posuto.json(5)): plaintext passwords in a file
 * everyone can read are refused, hashes only warned about.
 */
static void
passwd_file_check_public(struct load_ctx *ctx, const char *file,
    size_t first_user)
{
	const struct user *plain = NULL;
	size_t n_plain = 0;

	for (size_t i = first_user; i < ctx->db->n_users; i++) {
		const char *sc = passwd_scheme_name(ctx->db->users[i].password);

		if (sc != NULL && (strcmp(sc, "PLAIN") == 0 ||
		    strcmp(sc, "CLEARTEXT") == 0) && n_plain++ == 0)
			plain = &ctx->db->users[i];
	}
	if (plain != NULL)
		load_error(ctx, "%s: a plaintext password in a file everyone "
		    "on this host can read (%zu user%s); chmod o-r %s, or "
		    "store hashes (posuto hash)", plain->origin, n_plain,
		    n_plain == 1 ? "" : "s", file);
	else if (ctx->errs != NULL)
		fprintf(ctx->errs, "warning: %s: readable by everyone; "
		    "password hashes should be private (chmod o-r)\n", file);
}

static void
load_passwd_file(struct load_ctx *ctx, const char *file)
{
	FILE *fp = fopen(file, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	size_t first_user;
	bool public;

	if (fp == NULL) {
		char where[600];

		config_where(ctx->cfg, "Pop3Server.PasswdFile", where,
		    sizeof(where));
		load_error(ctx, "%s: %s: %s", where, file, strerror(errno));
		return;
	}
	first_user = ctx->db->n_users;
	public = config_file_public(fileno(fp), file);
	while ((len = getline(&line, &cap, fp)) != -1) {
		const char *s;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if ((size_t)len > PASSWD_LINE_MAX) {
			load_error(ctx, "%s:%u: line longer than %d bytes",
			    file, lineno, PASSWD_LINE_MAX);
			continue;
		}
		if (memchr(line, '\0', (size_t)len) != NULL) {
			load_error(ctx, "%s:%u: NUL byte in line", file,
			    lineno);
			continue;
		}
		s = line + strspn(line, " \t");
		if (*s == '\0' || *s == '#')
			continue;
		parse_passwd_line(ctx, file, lineno, line);
	}
	if (ferror(fp))
		load_error(ctx, "%s: read error: %s", file, strerror(errno));
	if (public)
		passwd_file_check_public(ctx, file, first_user);
	free_secret(line);
	fclose(fp);
}

static int
user_cmp(const void *a, const void *b)
{
	const struct user *ua = a, *ub = b;

	return strcmp(ua->name, ub->name);
}

/* One user's cost key while the classes are formed. */
struct cost_ent {
	char key[80];		/* longer (absurd parameters): one class "" */
	size_t user;
	size_t run;		/* index of its run of equal keys */
};

/* A run of equal keys: a class before the biggest are picked. */
struct cost_run {
	size_t user;		/* its first user: the class's secret */
	size_t run;
	size_t size;
};

static int
cost_ent_cmp(const void *a, const void *b)
{
	const struct cost_ent *ea = a, *eb = b;
	int c = strcmp(ea->key, eb->key);

	return c != 0 ? c : (ea->user > eb->user) - (ea->user < eb->user);
}

/* Bigger classes first, then in key order, so numbering is stable. */
static int
cost_run_cmp(const void *a, const void *b)
{
	const struct cost_run *ra = a, *rb = b;

	if (ra->size != rb->size)
		return ra->size < rb->size ? 1 : -1;
	return (ra->run > rb->run) - (ra->run < rb->run);
}

/*
 * Groups users by passwd_cost_key() (sorted, not pairwise: there may be
 * many thousands of users) and keeps the USERDB_COST_CLASSES_MAX biggest
 * classes; see userdb.h.
 */
static void
cost_classes(struct load_ctx *ctx)
{
	struct userdb *db = ctx->db;
	struct cost_ent *ents;
	struct cost_run *heads;
	size_t *class_of_run;
	size_t n = db->n_users, n_heads = 0, scram_best = 0;

	db->all_scram = n > 0;
	if (n == 0)
		return;
	ents = xcalloc(n, sizeof(*ents));
	for (size_t i = 0; i < n; i++) {
		const char *sc = passwd_scheme_name(db->users[i].password);

		ents[i].user = i;
		if (!passwd_cost_key(db->users[i].password, ents[i].key,
		    sizeof(ents[i].key)))
			ents[i].key[0] = '\0';	/* load already failed */
		if (sc == NULL || strcmp(sc, "SCRAM-SHA-256") != 0)
			db->all_scram = false;
	}
	qsort(ents, n, sizeof(*ents), cost_ent_cmp);
	/* The first entry of each run of equal keys heads its class. */
	heads = xcalloc(n, sizeof(*heads));
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(ents[i].key, ents[i - 1].key) != 0) {
			heads[n_heads].user = ents[i].user;
			heads[n_heads].run = n_heads;
			n_heads++;
		}
		ents[i].run = n_heads - 1;
		heads[n_heads - 1].size++;
	}
	qsort(heads, n_heads, sizeof(*heads), cost_run_cmp);
	class_of_run = xcalloc(n_heads, sizeof(*class_of_run));
	for (size_t c = 0; c < n_heads; c++)
		class_of_run[heads[c].run] = c < USERDB_COST_CLASSES_MAX ? c :
		    USERDB_NO_CLASS;
	for (size_t c = 0; c < n_heads && c < USERDB_COST_CLASSES_MAX; c++) {
		struct user *rep = &db->users[heads[c].user];

		const char *sc = passwd_scheme_name(rep->password);

		db->class_secret[c] = rep->password;
		if (sc != NULL && strcmp(sc, "SCRAM-SHA-256") == 0 &&
		    heads[c].size > scram_best) {
			scram_best = heads[c].size;
			db->scram_example = rep->password;
		}
	}
	db->n_classes = n_heads < USERDB_COST_CLASSES_MAX ? n_heads :
	    USERDB_COST_CLASSES_MAX;
	for (size_t i = 0; i < n; i++)
		db->users[ents[i].user].pub.cost_class = class_of_run[ents[i].run];
	if (n_heads > USERDB_COST_CLASSES_MAX && ctx->errs != NULL)
		fprintf(ctx->errs, "warning: %zu kinds of password hash "
		    "(scheme and cost); failed logins are made to cost the "
		    "same only for the %d most common: re-hash the others\n",
		    n_heads, USERDB_COST_CLASSES_MAX);
	free(class_of_run);
	free(heads);
	free(ents);
}

/* The pre-login CAPA values: with no users, the server's own. */
static void
finish_policy(struct load_ctx *ctx)
{
	struct userdb *db = ctx->db;
	struct userdb_policy *p = &db->policy;

	p->login_delay_max = ctx->cfg->login_delay;
	p->expire_min = ctx->cfg->expire_days;
	for (size_t i = 0; i < db->n_users; i++) {
		const struct userdb_entry *e = &db->users[i].pub;

		if (i == 0) {
			p->login_delay_max = e->login_delay;
			p->expire_min = e->expire_days;
			continue;
		}
		if (e->login_delay != p->login_delay_max)
			p->login_delay_varies = true;
		if (e->login_delay > p->login_delay_max)
			p->login_delay_max = e->login_delay;
		if (e->expire_days != p->expire_min)
			p->expire_varies = true;
		if (e->expire_days != EXPIRE_NEVER &&
		    (p->expire_min == EXPIRE_NEVER ||
		    e->expire_days < p->expire_min))
			p->expire_min = e->expire_days;
	}
}

/* Sorts, rejects duplicates, fills in pub and the derived fields. */
static void
finish(struct load_ctx *ctx)
{
	struct userdb *db = ctx->db;

	if (db->n_users > 0)	/* qsort(NULL, 0) is undefined */
		qsort(db->users, db->n_users, sizeof(*db->users), user_cmp);
	for (size_t i = 0; i < db->n_users; i++) {
		struct user *u = &db->users[i];

		if (i > 0 && strcmp(u->name, db->users[i - 1].name) == 0)
			load_error(ctx, "%s: user %s already defined at %s",
			    u->origin, u->name, db->users[i - 1].origin);
		u->pub.name = u->name;
		u->pub.password = u->password;
		u->pub.apop_secret = u->apop_secret;
		u->pub.mailbox_path = u->mailbox_path;
		u->pub.home = u->home;
		if (u->apop_secret != NULL)
			db->has_apop = true;
	}
	cost_classes(ctx);
	finish_policy(ctx);
}

static void
userdb_free(struct userdb *db)
{
	for (size_t i = 0; i < db->n_users; i++)
		user_free(&db->users[i]);
	free(db->users);
	free(db);
}

struct userdb *
userdb_load(const struct posuto_config *cfg, FILE *errs)
{
	struct load_ctx ctx = { .cfg = cfg, .errs = errs };

	ctx.db = xcalloc(1, sizeof(*ctx.db));
	atomic_init(&ctx.db->refs, 1);
	load_config_users(&ctx);
	if (cfg->passwd_file != NULL)
		load_passwd_file(&ctx, cfg->passwd_file);
	finish(&ctx);
	if (ctx.n_errors > 0) {
		userdb_free(ctx.db);
		return NULL;
	}
	return ctx.db;
}

void
userdb_ref(struct userdb *db)
{
	atomic_fetch_add_explicit(&db->refs, 1, memory_order_relaxed);
}

void
userdb_unref(struct userdb **dbp)
{
	struct userdb *db = *dbp;

	if (db == NULL)
		return;
	*dbp = NULL;
	if (atomic_fetch_sub_explicit(&db->refs, 1, memory_order_acq_rel) == 1)
		userdb_free(db);
}

const struct userdb_entry *
userdb_lookup(const struct userdb *db, const char *name)
{
	size_t lo = 0, hi = db->n_users;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, db->users[mid].name);

		if (c == 0)
			return &db->users[mid].pub;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

bool
userdb_has_apop(const struct userdb *db)
{
	return db->has_apop;
}

size_t
userdb_count(const struct userdb *db)
{
	return db->n_users;
}

const struct userdb_entry *
userdb_entry_at(const struct userdb *db, size_t i)
{
	return &db->users[i].pub;
}

const struct userdb_policy *
userdb_policy(const struct userdb *db)
{
	return &db->policy;
}

size_t
userdb_cost_classes(const struct userdb *db)
{
	return db->n_classes;
}

const char *
userdb_cost_class_secret(const struct userdb *db, size_t i)
{
	return i < db->n_classes ? db->class_secret[i] : NULL;
}

bool
userdb_all_scram(const struct userdb *db)
{
	return db->all_scram;
}

const char *
userdb_scram_example(const struct userdb *db)
{
	return db->scram_example;
}
