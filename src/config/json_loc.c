/*
 * json_loc.c - a position-recording walk over JSON text (see json_loc.h).
 *
 * Recursive descent over the same grammar jansson accepts.  It is lenient
 * (it only has to find keys and where values start) but never reads past
 * the end and stops at the first thing it cannot make sense of.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/json_loc.h"
#include "lib/xmalloc.h"

struct json_loc_entry {
	char *path;
	struct json_loc_pos key;
	struct json_loc_pos val;
};

struct json_loc {
	struct json_loc_entry *v;
	size_t n, cap;
	char *stop_path;	/* NULL while the scan has not stopped early */
	enum json_loc_stop stop;
	struct json_loc_pos stop_pos;
	size_t stop_off;
	char stop_closer;
};

struct scan {
	const unsigned char *p, *end;
	const unsigned char *start;
	struct json_loc_pos pos;	/* position of *p */
	struct json_loc_pos last;	/* of the last non-blank byte read */
	size_t last_off;
	struct json_loc *jl;
};

static bool scan_value(struct scan *s, const char *path, size_t entry,
    unsigned depth);

char *
json_loc_path_key(const char *parent, const char *key)
{
	if (parent == NULL || parent[0] == '\0')
		return xstrdup(key);
	return xasprintf("%s.%s", parent, key);
}

char *
json_loc_path_index(const char *parent, size_t index)
{
	return xasprintf("%s[%zu]", parent != NULL ? parent : "", index);
}

static bool
scan_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
scan_advance(struct scan *s)
{
	unsigned char c = *s->p;

	if (!scan_is_ws(c) && (c & 0xC0) != 0x80) {
		s->last = s->pos;
		s->last_off = (size_t)(s->p - s->start);
	}
	s->p++;
	if (c == '\n') {
		s->pos.line++;
		s->pos.col = 1;
	} else if ((c & 0xC0) != 0x80) {
		/* UTF-8 continuation bytes do not start a new column. */
		s->pos.col++;
	}
}

static void
scan_skip_ws(struct scan *s)
{
	while (s->p < s->end && scan_is_ws(*s->p))
		scan_advance(s);
}

static bool
scan_fail(struct scan *s, const char *path)
{
	struct json_loc *jl = s->jl;

	if (jl->stop_path != NULL)
		return false;
	jl->stop_path = xstrdup(path);
	if (s->p >= s->end) {
		jl->stop = JSON_LOC_STOP_EOF;
		jl->stop_pos = s->last;
		jl->stop_off = s->last_off;
	} else {
		jl->stop = JSON_LOC_STOP_OTHER;
		jl->stop_pos = s->pos;
		jl->stop_off = (size_t)(s->p - s->start);
	}
	return false;
}

/* Called where a ',' was followed by the closer instead of a member. */
static bool
scan_fail_comma(struct scan *s, const char *path, struct json_loc_pos comma,
    size_t comma_off)
{
	struct json_loc *jl = s->jl;

	if (jl->stop_path != NULL)
		return false;
	jl->stop_path = xstrdup(path);
	jl->stop = JSON_LOC_STOP_TRAILING_COMMA;
	jl->stop_pos = comma;
	jl->stop_off = comma_off;
	jl->stop_closer = (char)*s->p;
	return false;
}

static size_t
scan_add_entry(struct scan *s, char *path, struct json_loc_pos key)
{
	struct json_loc *jl = s->jl;

	if (jl->n == jl->cap) {
		jl->cap = jl->cap == 0 ? 64 : jl->cap * 2;
		jl->v = xreallocarray(jl->v, jl->cap, sizeof(*jl->v));
	}
	jl->v[jl->n].path = path;
	jl->v[jl->n].key = key;
	jl->v[jl->n].val = key;
	return jl->n++;
}

struct strbuf {
	char *s;
	size_t len, cap;
};

static void
strbuf_add(struct strbuf *b, const char *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap == 0 ? 32 : b->cap * 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	memcpy(b->s + b->len, data, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads 4 hex digits after "\u"; -1 if malformed or truncated. */
static long
scan_u4(struct scan *s)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int h;

		if (s->p >= s->end || (h = hexval(*s->p)) < 0)
			return -1;
		v = v * 16 + h;
		scan_advance(s);
	}
	return v;
}

static void
strbuf_add_utf8(struct strbuf *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	strbuf_add(b, u, n);
}

/*
 * Reads a string starting at '"'.  If out_r is non-NULL the decoded text
 * (escapes resolved, as jansson resolves them for object keys) is stored
 * there; the caller frees it.
 */
static bool
scan_string(struct scan *s, char **out_r)
{
	struct strbuf b = { NULL, 0, 0 };

	scan_advance(s);	/* opening quote */
	for (;;) {
		const unsigned char *start = s->p;

		while (s->p < s->end && *s->p != '"' && *s->p != '\\')
			scan_advance(s);
		if (out_r != NULL)
			strbuf_add(&b, (const char *)start,
			    (size_t)(s->p - start));
		if (s->p >= s->end)
			goto fail;
		if (*s->p == '"') {
			scan_advance(s);
			break;
		}
		scan_advance(s);	/* backslash */
		if (s->p >= s->end)
			goto fail;
		unsigned char c = *s->p;
		const char *rep = NULL;
		switch (c) {
		case '"': rep = "\""; break;
		case '\\': rep = "\\"; break;
		case '/': rep = "/"; break;
		case 'b': rep = "\b"; break;
		case 'f': rep = "\f"; break;
		case 'n': rep = "\n"; break;
		case 'r': rep = "\r"; break;
		case 't': rep = "\t"; break;
		case 'u':
			break;
		default:
			goto fail;
		}
		scan_advance(s);
		if (rep != NULL) {
			if (out_r != NULL)
				strbuf_add(&b, rep, 1);
			continue;
		}
		long cp = scan_u4(s);
		if (cp < 0)
			goto fail;
		if (cp >= 0xD800 && cp < 0xDC00) {
			/* High surrogate: a low one must follow. */
			if (s->end - s->p < 2 || s->p[0] != '\\' ||
			    s->p[1] != 'u')
				goto fail;
			scan_advance(s);
			scan_advance(s);
			long lo = scan_u4(s);
			if (lo < 0xDC00 || lo > 0xDFFF)
				goto fail;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
			goto fail;
		}
		if (out_r != NULL)
			strbuf_add_utf8(&b, (unsigned long)cp);
	}
	if (out_r != NULL)
		*out_r = b.s != NULL ? b.s : xstrdup("");
	return true;
fail:
	free(b.s);
	return false;
}

enum scan_after { SCAN_NEXT, SCAN_CLOSED, SCAN_FAILED };

/* After a member or an element: a ',' (remembered, for the error of a
 * trailing one) or the closing bracket. */
static enum scan_after
scan_after_value(struct scan *s, const char *path, char close,
    struct json_loc_pos *comma, size_t *comma_off)
{
	scan_skip_ws(s);
	if (s->p < s->end && *s->p == ',') {
		*comma = s->pos;
		*comma_off = (size_t)(s->p - s->start);
		scan_advance(s);
		return SCAN_NEXT;
	}
	if (s->p < s->end && *s->p == close) {
		scan_advance(s);
		return SCAN_CLOSED;
	}
	(void)scan_fail(s, path);
	return SCAN_FAILED;
}

static bool
scan_object(struct scan *s, const char *path, unsigned depth)
{
	struct json_loc_pos comma = { 0, 0 };
	size_t comma_off = 0;

	scan_advance(s);	/* '{' */
	scan_skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		scan_advance(s);
		return true;
	}
	for (;;) {
		char *key, *child;
		struct json_loc_pos kpos;
		size_t e;

		scan_skip_ws(s);
		if (comma.line != 0 && s->p < s->end && *s->p == '}')
			return scan_fail_comma(s, path, comma, comma_off);
		if (s->p >= s->end || *s->p != '"')
			return scan_fail(s, path);
		kpos = s->pos;
		if (!scan_string(s, &key))
			return scan_fail(s, path);
		child = json_loc_path_key(path, key);
		free(key);
		e = scan_add_entry(s, child, kpos);
		scan_skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return scan_fail(s, child);
		scan_advance(s);
		/* child is owned by the entry table from here on; entries
		 * are addressed by index because the table may move. */
		if (!scan_value(s, child, e, depth + 1))
			return false;
		switch (scan_after_value(s, path, '}', &comma, &comma_off)) {
		case SCAN_NEXT:
			continue;
		case SCAN_CLOSED:
			return true;
		default:
			return false;
		}
	}
}

static bool
scan_array(struct scan *s, const char *path, unsigned depth)
{
	struct json_loc_pos comma = { 0, 0 };
	size_t comma_off = 0, index = 0;

	scan_advance(s);	/* '[' */
	scan_skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		scan_advance(s);
		return true;
	}
	for (;; index++) {
		char *child;
		size_t e;

		scan_skip_ws(s);
		if (comma.line != 0 && s->p < s->end && *s->p == ']')
			return scan_fail_comma(s, path, comma, comma_off);
		child = json_loc_path_index(path, index);
		e = scan_add_entry(s, child, s->pos);
		if (!scan_value(s, child, e, depth + 1))
			return false;
		switch (scan_after_value(s, path, ']', &comma, &comma_off)) {
		case SCAN_NEXT:
			continue;
		case SCAN_CLOSED:
			return true;
		default:
			return false;
		}
	}
}

static bool
scan_scalar(struct scan *s, const char *path)
{
	const unsigned char *start = s->p;

	/* Numbers, true, false, null: letters, digits, sign, dot. */
	while (s->p < s->end && ((*s->p >= '0' && *s->p <= '9') ||
	    (*s->p >= 'a' && *s->p <= 'z') || (*s->p >= 'A' && *s->p <= 'Z') ||
	    *s->p == '-' || *s->p == '+' || *s->p == '.'))
		scan_advance(s);
	if (s->p == start)
		return scan_fail(s, path);
	return true;
}

static bool
scan_value(struct scan *s, const char *path, size_t entry, unsigned depth)
{
	scan_skip_ws(s);
	s->jl->v[entry].val = s->pos;
	if (depth > JSON_LOC_MAX_DEPTH || s->p >= s->end)
		return scan_fail(s, path);
	switch (*s->p) {
	case '{':
		return scan_object(s, path, depth);
	case '[':
		return scan_array(s, path, depth);
	case '"':
		if (!scan_string(s, NULL))
			return scan_fail(s, path);
		return true;
	default:
		return scan_scalar(s, path);
	}
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct json_loc_entry *ea = a, *eb = b;

	return strcmp(ea->path, eb->path);
}

struct json_loc *
json_loc_scan(const char *text, size_t len)
{
	struct json_loc *jl = xcalloc(1, sizeof(*jl));
	struct scan s = {
		.p = (const unsigned char *)text,
		.start = (const unsigned char *)text,
		.last = { 1, 1 },
		.end = (const unsigned char *)text + len,
		.pos = { 1, 1 },
		.jl = jl,
	};
	size_t root;

	scan_skip_ws(&s);
	root = scan_add_entry(&s, xstrdup(""), s.pos);
	(void)scan_value(&s, "", root, 0);
	/* Sorted once so that lookups stay cheap for long Users[] lists. */
	qsort(jl->v, jl->n, sizeof(*jl->v), entry_cmp);
	return jl;
}

bool
json_loc_lookup(const struct json_loc *jl, const char *path, bool key,
    struct json_loc_pos *pos_r)
{
	struct json_loc_entry k = { .path = (char *)(uintptr_t)path };
	const struct json_loc_entry *e;

	if (jl == NULL || jl->n == 0)
		return false;
	e = bsearch(&k, jl->v, jl->n, sizeof(*jl->v), entry_cmp);
	if (e == NULL)
		return false;
	*pos_r = key ? e->key : e->val;
	return true;
}

const char *
json_loc_stop_path(const struct json_loc *jl)
{
	return jl->stop_path != NULL ? jl->stop_path : "";
}

enum json_loc_stop
json_loc_stop(const struct json_loc *jl, struct json_loc_pos *pos_r,
    size_t *offset_r, char *closer_r)
{
	*pos_r = jl->stop_pos;
	*offset_r = jl->stop_off;
	*closer_r = jl->stop_closer;
	return jl->stop_path != NULL ? jl->stop : JSON_LOC_STOP_NONE;
}

void
json_loc_free(struct json_loc **jlp)
{
	struct json_loc *jl = *jlp;

	if (jl == NULL)
		return;
	for (size_t i = 0; i < jl->n; i++)
		free(jl->v[i].path);
	free(jl->v);
	free(jl->stop_path);
	free(jl);
	*jlp = NULL;
}
