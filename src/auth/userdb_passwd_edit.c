/*
 * userdb_passwd_edit.c - line-level edits of a passwd-file
 * (userdb_passwd_edit.h).  Lines are split into fields exactly as
 * userdb_passwd_file.c reads them: at most eight, the last (extra
 * fields) keeping any further ':'.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/userdb_passwd_edit.h"
#include "lib/xmalloc.h"

#define PASSWD_FIELDS	8
#define PASSWD_EXTRA	7	/* index of the extra fields */

struct userdb_passwd_edit {
	struct config_edit_file file;
	char **lines;		/* each with its own line end, if any */
	size_t n, cap;
	const char *eol;	/* for new lines: the file's first one */
};

static void
pwedit_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pwedit_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

static void
pwedit_push(struct userdb_passwd_edit *ed, char *line)
{
	if (ed->n == ed->cap) {
		ed->cap = ed->cap == 0 ? 64 : ed->cap * 2;
		ed->lines = xreallocarray(ed->lines, ed->cap,
		    sizeof(*ed->lines));
	}
	ed->lines[ed->n++] = line;
}

bool
userdb_passwd_edit_open(const char *path, bool for_write,
    struct userdb_passwd_edit **ed_r, char *err, size_t errsz)
{
	struct userdb_passwd_edit *ed = xcalloc(1, sizeof(*ed));
	const char *p, *end;

	*ed_r = NULL;
	if (!config_edit_file_open(&ed->file, path, for_write, err, errsz)) {
		free(ed);
		return false;
	}
	if (memchr(ed->file.data, '\0', ed->file.len) != NULL) {
		pwedit_err(err, errsz, "%s: NUL byte in the file; fix it "
		    "first", path);
		userdb_passwd_edit_free(&ed);
		return false;
	}
	p = ed->file.data;
	end = p + ed->file.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 :
		    (size_t)(end - p);

		pwedit_push(ed, xstrndup(p, len));
		p += len;
	}
	ed->eol = ed->n > 0 && strstr(ed->lines[0], "\r\n") != NULL ?
	    "\r\n" : "\n";
	*ed_r = ed;
	return true;
}

void
userdb_passwd_edit_free(struct userdb_passwd_edit **edp)
{
	struct userdb_passwd_edit *ed = *edp;

	if (ed == NULL)
		return;
	for (size_t i = 0; i < ed->n; i++)
		free_secret(ed->lines[i]);
	free(ed->lines);
	config_edit_file_close(&ed->file);
	free(ed);
	*edp = NULL;
}

/* The line end of line (pointer into it: "\r\n", "\n" or ""). */
static const char *
pwedit_eol(const char *line)
{
	size_t len = strlen(line);

	if (len >= 2 && strcmp(line + len - 2, "\r\n") == 0)
		return line + len - 2;
	if (len >= 1 && line[len - 1] == '\n')
		return line + len - 1;
	return line + len;
}

/* Splits a copy of line idx (without its end) into f[]; returns the
 * number of fields and the copy in *buf_r (caller frees). */
static int
pwedit_split(const char *line, char *f[PASSWD_FIELDS], char **buf_r)
{
	char *buf = xstrndup(line, (size_t)(pwedit_eol(line) - line));
	char *p = buf;
	int n = 0;

	while (n < PASSWD_FIELDS) {
		f[n++] = p;
		if (n == PASSWD_FIELDS)
			break;
		p = strchr(p, ':');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	for (int i = n; i < PASSWD_FIELDS; i++)
		f[i] = NULL;
	*buf_r = buf;
	return n;
}

static bool
pwedit_is_user_line(const char *line)
{
	const char *s = line + strspn(line, " \t");

	return *s != '\0' && *s != '#' && *s != '\r' && *s != '\n';
}

long
userdb_passwd_edit_find(const struct userdb_passwd_edit *ed, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < ed->n; i++) {
		const char *l = ed->lines[i];

		if (pwedit_is_user_line(l) && strncmp(l, name, nlen) == 0 &&
		    (l[nlen] == ':' || l + nlen == pwedit_eol(l)))
			return (long)i;
	}
	return -1;
}

char *
userdb_passwd_edit_password(const struct userdb_passwd_edit *ed, long idx)
{
	char *f[PASSWD_FIELDS], *buf, *out;
	int n;

	if (idx < 0 || (size_t)idx >= ed->n)
		return NULL;
	n = pwedit_split(ed->lines[idx], f, &buf);
	if (n < 2)
		out = xstrdup("");
	else
		out = f[1][0] == '{' ? xstrdup(f[1]) :
		    xasprintf("{CRYPT}%s", f[1]);
	free_secret(buf);
	return out;
}

static bool
pwedit_value_ok(const char *what, const char *v, const char *bad, char *err,
    size_t errsz)
{
	if (v[0] == '\0' || v[strcspn(v, bad)] != '\0') {
		pwedit_err(err, errsz, "%s cannot be stored in a passwd-file "
		    "(empty, or it holds a separator or line break)", what);
		return false;
	}
	return true;
}

/* Rebuilds line idx from its fields, keeping its line end. */
static void
pwedit_join(struct userdb_passwd_edit *ed, long idx, char *f[PASSWD_FIELDS],
    int n)
{
	const char *eol = pwedit_eol(ed->lines[idx]);
	size_t len = strlen(eol) + 1;
	char *line, *p;

	for (int i = 0; i < n; i++)
		len += strlen(f[i] != NULL ? f[i] : "") + 1;
	line = p = xmalloc(len);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(f[i] != NULL ? f[i] : "");

		if (i > 0)
			*p++ = ':';
		memcpy(p, f[i] != NULL ? f[i] : "", l);
		p += l;
	}
	memcpy(p, eol, strlen(eol) + 1);
	free_secret(ed->lines[idx]);
	ed->lines[idx] = line;
}

long
userdb_passwd_edit_add(struct userdb_passwd_edit *ed, const char *name,
    const char *stored, char *err, size_t errsz)
{
	if (!pwedit_value_ok("the password hash", stored, ":\r\n", err, errsz))
		return -1;
	/* A last line without its end gets one, or we would join it. */
	if (ed->n > 0 && *pwedit_eol(ed->lines[ed->n - 1]) == '\0') {
		char *l = xasprintf("%s%s", ed->lines[ed->n - 1], ed->eol);

		free_secret(ed->lines[ed->n - 1]);
		ed->lines[ed->n - 1] = l;
	}
	pwedit_push(ed, xasprintf("%s:%s%s", name, stored, ed->eol));
	return (long)ed->n - 1;
}

bool
userdb_passwd_edit_set_password(struct userdb_passwd_edit *ed, long idx,
    const char *stored, char *err, size_t errsz)
{
	char *f[PASSWD_FIELDS], *buf;
	int n;

	if (!pwedit_value_ok("the password hash", stored, ":\r\n", err, errsz))
		return false;
	n = pwedit_split(ed->lines[idx], f, &buf);
	f[1] = (char *)(uintptr_t)stored;	/* only read by join */
	pwedit_join(ed, idx, f, n < 2 ? 2 : n);
	free_secret(buf);
	return true;
}

bool
userdb_passwd_edit_set_apop(struct userdb_passwd_edit *ed, long idx,
    const char *secret, char *err, size_t errsz)
{
	char *f[PASSWD_FIELDS], *buf, *extra, *out, *p;
	size_t olen = 0;

	if (secret != NULL && !pwedit_value_ok("the APOP secret", secret,
	    " \t\r\n", err, errsz))
		return false;
	(void)pwedit_split(ed->lines[idx], f, &buf);
	extra = f[PASSWD_EXTRA] != NULL ? f[PASSWD_EXTRA] : (char *)"";
	out = xmalloc(strlen(extra) + (secret != NULL ? strlen(secret) : 0) +
	    8);
	/* Every other extra field kept, in order. */
	for (p = extra; *p != '\0'; ) {
		size_t flen = strcspn(p, " \t");
		const char *tok = p;

		if (strncmp(tok, "userdb_", 7) == 0 && flen > 7)
			tok += 7;
		if (flen > 0 && strncmp(tok, "apop=", 5) != 0) {
			if (olen > 0)
				out[olen++] = ' ';
			memcpy(out + olen, p, flen);
			olen += flen;
		}
		p += flen;
		p += strspn(p, " \t");
	}
	if (secret != NULL) {
		if (olen > 0)
			out[olen++] = ' ';
		memcpy(out + olen, "apop=", 5);
		memcpy(out + olen + 5, secret, strlen(secret));
		olen += 5 + strlen(secret);
	}
	out[olen] = '\0';
	f[PASSWD_EXTRA] = out;
	/* Fields up to the extra ones exist, if empty: "u:p::::::apop=x". */
	pwedit_join(ed, idx, f, olen > 0 ? PASSWD_FIELDS : 2);
	free_secret(out);
	free_secret(buf);
	return true;
}

void
userdb_passwd_edit_del(struct userdb_passwd_edit *ed, long idx)
{
	if (idx < 0 || (size_t)idx >= ed->n)
		return;
	free_secret(ed->lines[idx]);
	memmove(ed->lines + idx, ed->lines + idx + 1,
	    (ed->n - (size_t)idx - 1) * sizeof(*ed->lines));
	ed->n--;
}

bool
userdb_passwd_edit_stage(struct userdb_passwd_edit *ed, const char **tmp_r,
    char *err, size_t errsz)
{
	size_t len = 0, off = 0;
	char *out;
	bool ok;

	for (size_t i = 0; i < ed->n; i++)
		len += strlen(ed->lines[i]);
	out = xmalloc(len + 1);
	for (size_t i = 0; i < ed->n; i++) {
		size_t l = strlen(ed->lines[i]);

		memcpy(out + off, ed->lines[i], l);
		off += l;
	}
	out[off] = '\0';
	ok = config_edit_file_stage(&ed->file, out, off, err, errsz);
	free_secret(out);
	*tmp_r = ok ? ed->file.tmp : NULL;
	return ok;
}

bool
userdb_passwd_edit_commit(struct userdb_passwd_edit *ed, char *err,
    size_t errsz)
{
	return config_edit_file_commit(&ed->file, err, errsz);
}

const struct config_edit_file *
userdb_passwd_edit_file(const struct userdb_passwd_edit *ed)
{
	return &ed->file;
}
