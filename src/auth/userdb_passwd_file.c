/*
 * userdb_passwd_file.c - the "passwd-file" driver: a Dovecot passwd-file
 * (PasswdFile), format in userdb.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "auth/userdb_int.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

/* Longest passwd-file line we read; Dovecot's lines are short, a longer
 * one is a corrupt file, not a user. */
#define PASSWD_LINE_MAX		8192

/*
 * Dovecot extra field mail=/userdb_mail=: "[maildir:]PATH[:OPT=...]",
 * "~" meaning home.  Returns a template for userdb_user_set_mailbox() (caller
 * frees) or NULL if the line has none; *bad_r on something we cannot use.
 */
static char *
extra_mail_template(const char *extra, const char *home, const char
    **format_r, const char **why_r)
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
		*format_r = "maildir";
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
 * in u->pub, and apop=SECRET (the APOP secret, as Users[].ApopSecret;
 * `posuto user apop` writes it).  False with *why_r on a bad value.
 */
static bool
extra_policy_fields(const char *extra, struct userdb_user *u, const char **why_r)
{
	for (const char *p = extra; *p != '\0'; ) {
		const char *end = p + strcspn(p, " \t");
		size_t flen = (size_t)(end - p);
		uint32_t n;

		if (flen > 7 && strncmp(p, "userdb_", 7) == 0) {
			p += 7;
			flen -= 7;
		}
		if (flen > 5 && strncmp(p, "apop=", 5) == 0) {
			free_secret(u->apop_secret);
			u->apop_secret = xstrndup(p + 5, flen - 5);
		} else if (flen > 12 && strncmp(p, "login_delay=", 12) == 0) {
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

/* A numeric uid/gid field; Dovecot also takes a system user name there,
 * which posuto has no use for (it does not switch ids): left unset. */
static uint32_t
passwd_id(const char *field)
{
	uint32_t id;

	if (field[0] == '\0' || !parse_u32(field, strlen(field), &id))
		return USERDB_ID_NONE;
	return id;
}

static void
parse_passwd_line(struct userdb_load_ctx *ctx, struct userdb_source *t,
    const char *file, unsigned lineno, char *line)
{
	char *f[8] = { NULL };
	char *p = line, *tmpl;
	const char *why = NULL, *fmt = NULL;
	struct userdb_user *u;
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
		userdb_load_error(ctx, "%s:%u: expected user:{SCHEME}password[:...]",
		    file, lineno);
		return;
	}
	u = userdb_table_add(t, ctx->cfg);
	u->origin = xasprintf("%s:%u", file, lineno);
	u->name = xstrdup(f[0]);
	u->password = f[1][0] == '{' ? xstrdup(f[1]) :
	    xasprintf("{CRYPT}%s", f[1]);
	if (n > 3) {
		u->pub.uid = passwd_id(f[2]);
		u->pub.gid = passwd_id(f[3]);
	}
	if (n > 5 && f[5][0] != '\0')
		u->home = xstrdup(f[5]);
	if (!userdb_user_check(ctx, u))
		return;
	if (n > 7 && !extra_policy_fields(f[7], u, &why)) {
		userdb_load_error(ctx, "%s: user %s: %s", u->origin, u->name, why);
		return;
	}
	if (u->home != NULL && u->home[0] != '/') {
		userdb_load_error(ctx, "%s: user %s: home %s is not absolute",
		    u->origin, u->name, u->home);
		return;
	}
	tmpl = n > 7 ? extra_mail_template(f[7], u->home, &fmt, &why) : NULL;
	if (fmt != NULL) {
		free(u->format);
		u->format = xstrdup(fmt);
	}
	if (why != NULL) {
		userdb_load_error(ctx, "%s: user %s: %s", u->origin, u->name, why);
		return;
	}
	(void)userdb_user_set_mailbox(ctx, u, tmpl);
	free(tmpl);
}

/*
 * As for the config file (posuto.json(5)): plaintext passwords in a file
 * everyone can read are refused, hashes only warned about.
 */
static void
passwd_file_check_public(struct userdb_load_ctx *ctx,
    struct userdb_source *t, const char *file)
{
	const struct userdb_user *plain = NULL;
	size_t n_plain = 0;

	for (size_t i = 0; i < userdb_table_size(t); i++) {
		const struct userdb_user *u = userdb_table_at(t, i);
		const char *sc = passwd_scheme_name(u->password);

		if (((sc != NULL && (strcmp(sc, "PLAIN") == 0 ||
		    strcmp(sc, "CLEARTEXT") == 0)) || u->apop_secret != NULL) &&
		    n_plain++ == 0)
			plain = u;
	}
	if (plain != NULL)
		userdb_load_error(ctx, "%s: a plaintext password in a file "
		    "everyone on this host can read (%zu user%s, APOP "
		    "secrets included); chmod o-r %s, or store hashes "
		    "(posuto hash) and no apop=", plain->origin, n_plain,
		    n_plain == 1 ? "" : "s", file);
	else
		userdb_load_warning(ctx, "%s: readable by everyone; password "
		    "hashes should be private (chmod o-r)", file);
}

static bool
passwd_file_configured(const struct posuto_config *cfg)
{
	return cfg->passwd_file != NULL;
}

static struct userdb_source *
passwd_file_load(struct userdb_load_ctx *ctx)
{
	const char *file = ctx->cfg->passwd_file;
	FILE *fp = fopen(file, "re");
	struct userdb_source *t;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	bool public;

	if (fp == NULL) {
		char where[600];

		config_where(ctx->cfg, "Pop3Server.PasswdFile", where,
		    sizeof(where));
		userdb_load_error(ctx, "%s: %s: %s", where, file,
		    strerror(errno));
		return NULL;
	}
	t = userdb_table_new();
	public = config_file_public(fileno(fp), file);
	while ((len = getline(&line, &cap, fp)) != -1) {
		const char *s;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if ((size_t)len > PASSWD_LINE_MAX) {
			userdb_load_error(ctx, "%s:%u: line longer than %d bytes",
			    file, lineno, PASSWD_LINE_MAX);
			continue;
		}
		if (memchr(line, '\0', (size_t)len) != NULL) {
			userdb_load_error(ctx, "%s:%u: NUL byte in line", file,
			    lineno);
			continue;
		}
		s = line + strspn(line, " \t");
		if (*s == '\0' || *s == '#')
			continue;
		parse_passwd_line(ctx, t, file, lineno, line);
	}
	if (ferror(fp))
		userdb_load_error(ctx, "%s: read error: %s", file, strerror(errno));
	if (public)
		passwd_file_check_public(ctx, t, file);
	free_secret(line);
	fclose(fp);
	userdb_table_finish(ctx, t);
	return t;
}

const struct userdb_driver userdb_driver_passwd_file = {
	.name = "passwd-file",
	.configured = passwd_file_configured,
	.load = passwd_file_load,
	.lookup = userdb_table_lookup,
	.iterate = userdb_table_iterate,
	.free = userdb_table_free,
};

