/*
 * config.c - config_load(): file -> jansson -> schema walk -> struct.
 *
 * jansson does all the JSON parsing; json_loc adds the line:column of each
 * key so that every message can point into the file; the schema tables in
 * config_schema.c say what each key means.  Loading never stops at the
 * first problem: an admin fixing a file wants all of them at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_schema.h"
#include "config/json_loc.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

/* Shown where a message concerns the whole file rather than one key. */
#define CONFIG_TOP_LEVEL	"(top level)"

/* The keys config_where() can place; the index is into cfg->where[]. */
static const char *const config_where_keys[] = {
	"Pop3Server.Enabled",
	"Pop3Server.RunAsUser",
	"Pop3Server.PasswdFile",
	"Pop3Server.LockFile",
	"Pop3Server.MailDir",
	"Pop3Server.MailboxPath",
	"Pop3Server.Tls",
	"Pop3Server.Tls.Certificate",
	"Pop3Server.Tls.Key",
	"Pop3Server.Tls.Ciphers",
	"Pop3Server.Tls.CipherSuites",
	"Pop3Server.Tls.MinVersion",
	"Pop3Server.Sql",
	"Pop3Server.Sql.PasswordFile",
	"Admin",
	"Admin.Port",
	"Admin.PasswordHash",
};
#define CONFIG_N_WHERE \
	(sizeof(config_where_keys) / sizeof(config_where_keys[0]))
_Static_assert(CONFIG_N_WHERE <= CONFIG_WHERE_MAX, "CONFIG_WHERE_MAX");

/*
 * Position of path in the file: its key (CONFIG_AT_KEY) or value, or if
 * it is not there (a default, a missing key) the object that should have
 * held it.  Returns false if not even the top level was seen.
 */
static bool
config_locate(const struct json_loc *loc, const char *path,
    enum config_at at, struct json_loc_pos *pos_r)
{
	bool found = false, use_key = at == CONFIG_AT_KEY;
	char *p = xstrdup(path);

	for (;;) {
		char *dot, *bracket, *cut;

		if (json_loc_lookup(loc, p, use_key, pos_r)) {
			found = true;
			break;
		}
		if (p[0] == '\0')
			break;
		dot = strrchr(p, '.');
		bracket = strrchr(p, '[');
		cut = dot > bracket ? dot : bracket;
		if (cut == NULL)
			p[0] = '\0';
		else
			*cut = '\0';
		use_key = false;
	}
	free(p);
	return found;
}

void
config_report(struct config_ctx *ctx, bool error, const char *path,
    enum config_at at, const char *fmt, ...)
{
	char msg[1024], spath[512];
	struct json_loc_pos pos;
	bool found;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Unknown keys come from the file: keep the output one clean line. */
	log_sanitize(spath, sizeof(spath), path, strlen(path));
	found = config_locate(ctx->loc, path, at, &pos);

	if (found)
		fprintf(ctx->errs, "%s%s:%u:%u: %s: %s\n",
		    error ? "" : "warning: ", ctx->file, pos.line, pos.col,
		    spath[0] != '\0' ? spath : CONFIG_TOP_LEVEL, msg);
	else
		fprintf(ctx->errs, "%s%s: %s: %s\n", error ? "" : "warning: ",
		    ctx->file, spath[0] != '\0' ? spath : CONFIG_TOP_LEVEL,
		    msg);
	if (error)
		ctx->n_errors++;
	else
		ctx->n_warnings++;
}

bool
config_file_public(int fd, const char *path)
{
	struct stat st;
	char *real, *slash;
	bool pub = true;

	if (fstat(fd, &st) != 0 || (st.st_mode & S_IROTH) == 0)
		return false;
	real = realpath(path, NULL);
	if (real == NULL)
		return true;	/* cannot tell: assume the worst */
	/* Everyone must be able to search every directory on the way. */
	while ((slash = strrchr(real, '/')) != NULL) {
		struct stat dst;

		if (slash == real)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(real, &dst) == 0 && (dst.st_mode & S_IXOTH) == 0) {
			pub = false;
			break;
		}
		if (slash == real)
			break;
	}
	free(real);
	return pub;
}

/* Reads a whole regular file; returns NULL with errno set.  *public_r
 * tells whether everyone can read it. */
static char *
config_read_file(const char *path, size_t *len_r, bool *public_r)
{
	struct stat st;
	char *buf;
	size_t off = 0;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	if ((unsigned long long)st.st_size > CONFIG_MAX_FILE_SIZE) {
		errno = EFBIG;
		goto fail;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	/* Read until EOF, not just st_size: the file may change meanwhile,
	 * and the cap still holds. */
	for (;;) {
		ssize_t n;

		if (off == (size_t)st.st_size + 1) {
			errno = EFBIG;
			free(buf);
			goto fail;
		}
		n = read(fd, buf + off, (size_t)st.st_size + 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			free(buf);
			errno = saved;
			goto fail;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	*public_r = config_file_public(fd, path);
	close(fd);
	buf[off] = '\0';
	*len_r = off;
	return buf;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return NULL;
}

/* Absolute directory of path, without a trailing '/' ("" for "/"). */
static char *
config_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *cwd, *out;

	if (slash == NULL)
		dir = xstrdup(".");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	if (path[0] == '/')
		return dir;
	cwd = getcwd(NULL, 0);
	if (cwd == NULL)
		fatal("getcwd: %s", strerror(errno));
	if (strcmp(dir, ".") == 0)
		out = xasprintf("%s", strcmp(cwd, "/") == 0 ? "" : cwd);
	else
		out = xasprintf("%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, dir);
	free(cwd);
	free(dir);
	return out;
}

/*
 * Reports a JSON syntax error at the place a person would look.  jansson
 * names the token where it gave up: for a trailing comma that is the '}'
 * after it, and for a truncated file a line past the end, column 0.  The
 * json_loc scan of the same text finds the comma, or the last character
 * before the end, instead.
 */
static void
config_syntax_error(const char *path, const char *body, size_t len,
    const json_error_t *jerr, FILE *errs)
{
	char stext[JSON_ERROR_TEXT_LENGTH + 64], spath[512], what[64];
	size_t upto = jerr->position > 0 && (size_t)jerr->position < len ?
	    (size_t)jerr->position : len;
	struct json_loc *loc, *full;
	struct json_loc_pos pos = { (unsigned)jerr->line,
	    (unsigned)jerr->column };
	enum json_loc_stop stop;
	const char *sp, *text = jerr->text, *near;
	size_t off;
	char closer;

	full = json_loc_scan(body, len);
	stop = json_loc_stop(full, &pos, &off, &closer);
	near = strstr(text, " near end of file");
	if (stop == JSON_LOC_STOP_TRAILING_COMMA && off < upto) {
		/* Name the object or array the comma is in. */
		loc = full;
		full = NULL;
		(void)snprintf(what, sizeof(what), "trailing comma before "
		    "'%c' (JSON allows none)", closer);
		text = what;
	} else if (stop == JSON_LOC_STOP_EOF && near != NULL) {
		loc = full;
		full = NULL;
		if (strncmp(text, "unexpected", 10) == 0)
			(void)snprintf(what, sizeof(what),
			    "unexpected end of file");
		else
			(void)snprintf(what, sizeof(what),
			    "unexpected end of file (%.*s)",
			    (int)(near - text), text);
		text = what;
	} else {
		/* Name the key being read where jansson gave up. */
		loc = json_loc_scan(body, upto);
		pos.line = (unsigned)jerr->line;
		pos.col = (unsigned)jerr->column;
	}
	sp = json_loc_stop_path(loc);
	log_sanitize(spath, sizeof(spath), sp, strlen(sp));
	log_sanitize(stext, sizeof(stext), text, strlen(text));
	fprintf(errs, "%s:%u:%u: %s: invalid JSON: %s\n", path, pos.line,
	    pos.col, spath[0] != '\0' ? spath : CONFIG_TOP_LEVEL, stext);
	json_loc_free(&loc);
	json_loc_free(&full);
}

/* Passwords are "{SCHEME}data" by now (user_verify()); scheme names are
 * case-insensitive, as in Dovecot. */
static bool
config_secret_is_plain(const char *stored)
{
	return stored != NULL && (ascii_casepfx(stored, "{PLAIN}") ||
	    ascii_casepfx(stored, "{CLEARTEXT}"));
}

/*
 * A file everyone on the host can read must not hold what logs a user in
 * as it stands: plaintext passwords and APOP secrets are refused.  Hashes
 * are only a warning: they still need cracking, and JumboDogX installs
 * kept them so.  See posuto.json(5).
 */
static void
config_check_public_secrets(struct config_ctx *ctx,
    const struct posuto_config *cfg)
{
	size_t n_plain = 0, first = 0;
	const char *first_key = NULL;

	for (size_t i = 0; i < cfg->n_users; i++) {
		const struct user_cfg *u = &cfg->users[i];
		const char *key = NULL;

		if (config_secret_is_plain(u->password))
			key = "Password";
		else if (u->apop_secret != NULL)
			key = "ApopSecret";
		if (key == NULL)
			continue;
		if (n_plain++ == 0) {
			first = i;
			first_key = key;
		}
	}
	if (n_plain > 0) {
		char *ep = json_loc_path_index("Pop3Server.Users", first);
		char *kp = json_loc_path_key(ep, first_key);

		config_error(ctx, kp, CONFIG_AT_VALUE, "a plaintext-equivalent "
		    "secret in a file everyone on this host can read (%zu "
		    "user%s); chmod o-r %s, or store hashes (posuto hash) and "
		    "no ApopSecret", n_plain, n_plain == 1 ? "" : "s",
		    ctx->file);
		free(kp);
		free(ep);
	} else if (cfg->n_users > 0) {
		config_warning(ctx, "Pop3Server.Users", CONFIG_AT_KEY,
		    "readable by everyone; password hashes should be private "
		    "(chmod o-r %s)", ctx->file);
	}
}

/* Keeps the positions config_where() reports after loc is gone. */
static void
config_where_fill(const struct json_loc *loc, struct posuto_config *cfg)
{
	for (size_t i = 0; i < CONFIG_N_WHERE; i++) {
		const char *key = config_where_keys[i];
		struct json_loc_pos pos;

		/* Key defaults to Certificate: show that one. */
		if (strcmp(key, "Pop3Server.Tls.Key") == 0 &&
		    !json_loc_lookup(loc, key, false, &pos))
			key = "Pop3Server.Tls.Certificate";
		if (config_locate(loc, key, CONFIG_AT_VALUE, &pos)) {
			cfg->where[i].line = pos.line;
			cfg->where[i].col = pos.col;
		}
	}
}

void
config_pos(struct config_ctx *ctx, const char *parent, const char *key,
    struct config_where_pos *pos_r)
{
	char *p = key != NULL ? json_loc_path_key(parent, key) :
	    xstrdup(parent);
	struct json_loc_pos pos;

	pos_r->line = pos_r->col = 0;
	if (config_locate(ctx->loc, p, CONFIG_AT_VALUE, &pos)) {
		pos_r->line = pos.line;
		pos_r->col = pos.col;
	}
	free(p);
}

/* "PREFIX[N]" then rest: N, and *rest_r after the ']'; false if key is
 * not of that form. */
static bool
config_where_index(const char *key, const char *prefix, size_t *n_r,
    const char **rest_r)
{
	size_t plen = strlen(prefix);
	const char *close;
	uint64_t n;

	if (strncmp(key, prefix, plen) != 0 || key[plen] != '[' ||
	    (close = strchr(key + plen, ']')) == NULL ||
	    !parse_u64(key + plen + 1, (size_t)(close - key - plen - 1), &n) ||
	    n > SIZE_MAX)
		return false;
	*n_r = (size_t)n;
	*rest_r = close + 1;
	return true;
}

/* The stored position of an element key (Users[N]..., SaslMechanisms[N]),
 * or NULL. */
static const struct config_where_pos *
config_where_element(const struct posuto_config *cfg, const char *key)
{
	const char *rest;
	size_t n;

	if (config_where_index(key, "Pop3Server.Users", &n, &rest) &&
	    n < cfg->n_users) {
		if (rest[0] == '\0')
			return &cfg->users[n].where;
		if (strcmp(rest, ".UserName") == 0)
			return &cfg->users[n].where_name;
		if (strcmp(rest, ".Password") == 0)
			return &cfg->users[n].where_password;
	}
	if (config_where_index(key, "Pop3Server.SaslMechanisms", &n, &rest) &&
	    n < cfg->n_sasl_mechanisms && rest[0] == '\0')
		return &cfg->sasl_mechanisms_where[n];
	return NULL;
}

void
config_where(const struct posuto_config *cfg, const char *key, char *buf,
    size_t bufsz)
{
	const char *file = cfg->path != NULL ? cfg->path : "config";
	const struct config_where_pos *el = config_where_element(cfg, key);

	if (el != NULL && el->line != 0) {
		(void)snprintf(buf, bufsz, "%s:%u:%u: %s", file, el->line,
		    el->col, key);
		return;
	}
	for (size_t i = 0; i < CONFIG_N_WHERE; i++) {
		if (strcmp(config_where_keys[i], key) != 0 ||
		    cfg->where[i].line == 0)
			continue;
		(void)snprintf(buf, bufsz, "%s:%u:%u: %s", file,
		    cfg->where[i].line, cfg->where[i].col, key);
		return;
	}
	(void)snprintf(buf, bufsz, "%s: %s", file, key);
}

int
config_load(const char *path, struct posuto_config **cfg_r, FILE *errs)
{
	struct config_ctx ctx;
	struct config_server *srv;
	struct posuto_config *cfg;
	struct json_loc *loc;
	json_error_t jerr;
	json_t *root;
	char *text;
	const char *body;
	size_t len;
	bool public = false;

	*cfg_r = NULL;
	if (errs == NULL)
		errs = stderr;
	text = config_read_file(path, &len, &public);
	if (text == NULL) {
		fprintf(errs, "%s: cannot read: %s\n", path, strerror(errno));
		return -1;
	}
	/* Windows editors (JumboDogX's home) often start files with a BOM. */
	body = text;
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		body += 3;
		len -= 3;
	}

	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		config_syntax_error(path, body, len, &jerr, errs);
		free(text);
		return -1;
	}

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = path;
	ctx.errs = errs;
	loc = json_loc_scan(body, len);
	ctx.loc = loc;
	ctx.dir = config_dir_of(path);

	srv = xcalloc(1, sizeof(*srv));
	cfg = &srv->cfg;
	cfg->path = xstrdup(path);
	config_section_defaults(&config_root_section, srv);
	if (!json_is_object(root))
		config_error(&ctx, "", CONFIG_AT_VALUE,
		    "expected an object with a \"Pop3Server\" member");
	else
		(void)config_section_parse(&ctx, &config_root_section, root,
		    "", srv);
	if (public)
		config_check_public_secrets(&ctx, cfg);
	config_where_fill(loc, cfg);

	json_decref(root);
	json_loc_free(&loc);
	free(ctx.dir);
	free(text);
	if (ctx.n_errors > 0) {
		config_free(&cfg);
		return -1;
	}
	*cfg_r = cfg;
	return 0;
}

void
config_free(struct posuto_config **cfgp)
{
	struct posuto_config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	/* cfg is the first member of the struct config_server allocated by
	 * config_load(), which the schema rows are relative to. */
	config_section_free(&config_root_section, cfg);
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

void
config_dump(const struct posuto_config *cfg, FILE *out)
{
	json_t *root = config_section_dump(&config_root_section, cfg);
	json_t *srv = json_object_get(root, "Pop3Server");

	/* what the store opens for a user without a MailboxPath of its own */
	if (json_is_object(srv) && cfg->mailbox_template != NULL &&
	    cfg->format != NULL)
		json_object_set_new(srv, "MailboxLocation",
		    config_location_json(cfg->format, cfg->mailbox_template));
	/* Only an Sql object that is there: its defaults alone say nothing. */
	if (cfg->sql.driver == SQL_DRIVER_NONE && srv != NULL)
		(void)json_object_del(srv, "Sql");
	if (json_dumpf(root, out, JSON_INDENT(2)) != 0)
		log_warnx("config_dump: cannot write");
	fputc('\n', out);
	json_decref(root);
}
