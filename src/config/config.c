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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_schema.h"
#include "config/json_loc.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* Shown where a message concerns the whole file rather than one key. */
#define CONFIG_TOP_LEVEL	"(top level)"

void
config_report(struct config_ctx *ctx, bool error, const char *path,
    enum config_at at, const char *fmt, ...)
{
	char msg[1024], spath[512];
	struct json_loc_pos pos;
	bool found = false, use_key = at == CONFIG_AT_KEY;
	char *p = xstrdup(path);
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Unknown keys come from the file: keep the output one clean line. */
	log_sanitize(spath, sizeof(spath), path, strlen(path));

	/* A key that is absent (a default, a missing required key) is shown
	 * at the object that should have held it. */
	for (;;) {
		char *dot, *bracket, *cut;

		if (json_loc_lookup(ctx->loc, p, use_key, &pos)) {
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

/* Reads a whole regular file; returns NULL with errno set. */
static char *
config_read_file(const char *path, size_t *len_r)
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

	*cfg_r = NULL;
	if (errs == NULL)
		errs = stderr;
	text = config_read_file(path, &len);
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

	if (json_dumpf(root, out, JSON_INDENT(2)) != 0)
		log_warnx("config_dump: cannot write");
	fputc('\n', out);
	json_decref(root);
}
