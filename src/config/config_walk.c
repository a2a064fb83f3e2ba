/*
 * config_walk.c - the generic walker that applies the schema rows.
 *
 * Defaults, parsing (type and range checks, string kinds, enums, nested
 * objects), dumping and freeing, all driven by struct config_setting rows
 * (config_schema.h); nothing here knows any key by name.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_schema.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

/* Keys longer than this (after folding) get no suggestion. */
#define CONFIG_KEY_FOLD_MAX	64

static void *
config_field(void *base, size_t offset)
{
	return (char *)base + offset;
}

static const void *
config_cfield(const void *base, size_t offset)
{
	return (const char *)base + offset;
}

static bool
config_kind_is_string(enum config_kind kind)
{
	return kind == CONFIG_STRING || kind == CONFIG_PATH ||
	    kind == CONFIG_TEMPLATE || kind == CONFIG_SECRET;
}

static void
config_string_free(enum config_kind kind, char **p)
{
	if (kind == CONFIG_SECRET)
		free_secret(*p);
	else
		free(*p);
	*p = NULL;
}

void
config_section_defaults(const struct config_section *sec, void *base)
{
	for (size_t i = 0; i < sec->n_rows; i++) {
		const struct config_setting *row = &sec->rows[i];
		void *f = config_field(base, row->offset);
		int iv;

		switch (row->kind) {
		case CONFIG_BOOL:
			*(bool *)f = row->def_int != 0;
			break;
		case CONFIG_UINT:
			*(unsigned *)f = (unsigned)row->def_int;
			break;
		case CONFIG_U16:
			*(uint16_t *)f = (uint16_t)row->def_int;
			break;
		case CONFIG_STRING:
		case CONFIG_PATH:
		case CONFIG_TEMPLATE:
		case CONFIG_SECRET:
			*(char **)f = row->def_str != NULL ?
			    xstrdup(row->def_str) : NULL;
			break;
		case CONFIG_ENUM:
			iv = (int)row->def_int;
			memcpy(f, &iv, sizeof(iv));
			break;
		case CONFIG_OBJECT:
			config_section_defaults(row->sub, f);
			break;
		case CONFIG_CUSTOM:
			/* Arrays: the zeroed base already means "none". */
			break;
		}
	}
}

size_t
config_section_row(const struct config_section *sec, const char *key)
{
	for (size_t i = 0; i < sec->n_rows; i++)
		if (strcmp(sec->rows[i].key, key) == 0)
			return i;
	fatalx("config schema: no row %s", key);
}

const char *
config_json_type_name(json_type t)
{
	switch (t) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean (true or false)";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

static json_type
config_row_jtype(const struct config_setting *row)
{
	switch (row->kind) {
	case CONFIG_BOOL:
		return JSON_TRUE;	/* stands for "boolean" */
	case CONFIG_UINT:
	case CONFIG_U16:
		return JSON_INTEGER;
	case CONFIG_STRING:
	case CONFIG_PATH:
	case CONFIG_TEMPLATE:
	case CONFIG_SECRET:
	case CONFIG_ENUM:
		return JSON_STRING;
	case CONFIG_OBJECT:
		return JSON_OBJECT;
	case CONFIG_CUSTOM:
		return row->jtype;
	}
	return JSON_NULL;
}

static bool
config_jtype_matches(json_type want, const json_t *v)
{
	if (want == JSON_TRUE || want == JSON_FALSE)
		return json_is_boolean(v);
	return json_typeof(v) == want;
}

/* "C:\dir", "C:/dir" or "\\server\share": a JumboDogX file from Windows. */
static bool
config_is_windows_path(const char *s)
{
	if (isalpha((unsigned char)s[0]) && s[1] == ':' &&
	    (s[2] == '\\' || s[2] == '/'))
		return true;
	return s[0] == '\\' && s[1] == '\\';
}

char *
config_template_escape(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p != '\0'; p++)
		n += *p == '%' ? 2 : 1;
	out = o = xmalloc(n + 1);
	for (const char *p = s; *p != '\0'; p++) {
		*o++ = *p;
		if (*p == '%')
			*o++ = '%';
	}
	*o = '\0';
	return out;
}

/* Relative paths are taken relative to the config file's directory, so a
 * config and its mail directory can move together (a demo tree, a test). */
static char *
config_make_absolute(const struct config_ctx *ctx, const char *s,
    bool is_template)
{
	char *dir, *out;

	if (s[0] == '/' || (is_template && strncmp(s, "%h", 2) == 0))
		return xstrdup(s);
	if (strcmp(s, ".") == 0)
		return xstrdup(ctx->dir);
	if (strncmp(s, "./", 2) == 0)
		s += 2;
	dir = is_template ? config_template_escape(ctx->dir) : xstrdup(ctx->dir);
	out = xasprintf("%s/%s", dir, s);
	free(dir);
	return out;
}

static void
config_enum_list(const struct config_enum_name *names, char *buf,
    size_t bufsz)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i].name != NULL; i++) {
		int n = snprintf(buf + off, bufsz - off, "%s\"%s\"",
		    i == 0 ? "" : ", ", names[i].name);
		if (n < 0 || (size_t)n >= bufsz - off)
			break;
		off += (size_t)n;
	}
}

static void
config_parse_string(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	const char *why = NULL;
	char **f = config_field(base, row->offset);
	char *val;

	if (len == 0) {
		config_error(ctx, path, CONFIG_AT_VALUE, "must not be empty");
		return;
	}
	if (row->kind != CONFIG_SECRET) {
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c < 0x20 || c == 0x7f) {
				config_error(ctx, path, CONFIG_AT_VALUE,
				    "contains a control character");
				return;
			}
		}
	}
	if ((row->kind == CONFIG_PATH || row->kind == CONFIG_TEMPLATE) &&
	    config_is_windows_path(s)) {
		config_error(ctx, path, CONFIG_AT_VALUE,
		    "is a Windows path; give a Unix path such as /var/mail");
		return;
	}
	if (row->kind == CONFIG_TEMPLATE && !config_template_valid(s, &why)) {
		config_error(ctx, path, CONFIG_AT_VALUE, "%s", why);
		return;
	}
	if (row->check != NULL && !row->check(s, &why)) {
		config_error(ctx, path, CONFIG_AT_VALUE, "%s", why);
		return;
	}
	if (row->kind == CONFIG_PATH || row->kind == CONFIG_TEMPLATE)
		val = config_make_absolute(ctx, s, row->kind == CONFIG_TEMPLATE);
	else
		val = xstrdup(s);
	config_string_free(row->kind, f);
	*f = val;
}

static void
config_parse_row(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	json_type want = config_row_jtype(row);
	void *f = config_field(base, row->offset);

	if ((row->flags & CONFIG_F_ANYTYPE) == 0 &&
	    !config_jtype_matches(want, v)) {
		config_error(ctx, path, CONFIG_AT_VALUE, "expected %s, got %s",
		    config_json_type_name(want),
		    config_json_type_name(json_typeof(v)));
		return;
	}
	switch (row->kind) {
	case CONFIG_BOOL:
		*(bool *)f = json_is_true(v);
		break;
	case CONFIG_UINT:
	case CONFIG_U16: {
		json_int_t n = json_integer_value(v);

		if (n < row->min || n > row->max) {
			config_error(ctx, path, CONFIG_AT_VALUE,
			    "%lld is out of range (%lld..%lld)", (long long)n,
			    row->min, row->max);
			return;
		}
		if (row->kind == CONFIG_UINT)
			*(unsigned *)f = (unsigned)n;
		else
			*(uint16_t *)f = (uint16_t)n;
		break;
	}
	case CONFIG_STRING:
	case CONFIG_PATH:
	case CONFIG_TEMPLATE:
	case CONFIG_SECRET:
		config_parse_string(ctx, row, v, path, base);
		break;
	case CONFIG_ENUM: {
		const char *s = json_string_value(v);
		char list[256];

		for (size_t i = 0; row->names[i].name != NULL; i++) {
			/* Case-insensitive: "Maildir", "sha256" are meant. */
			if (ascii_caseeq(s, row->names[i].name)) {
				memcpy(f, &row->names[i].value, sizeof(int));
				return;
			}
		}
		config_enum_list(row->names, list, sizeof(list));
		config_error(ctx, path, CONFIG_AT_VALUE, "must be one of %s",
		    list);
		break;
	}
	case CONFIG_OBJECT:
		(void)config_section_parse(ctx, row->sub, v, path, f);
		break;
	case CONFIG_CUSTOM:
		row->set(ctx, row, v, path, base);
		break;
	}
}

/* Exact match first; then case-insensitive, because JumboDogX reads its
 * file through .NET configuration binding, which ignores key case. */
static const struct config_setting *
config_find_row(const struct config_section *sec, const char *key,
    size_t *index_r)
{
	for (size_t i = 0; i < sec->n_rows; i++) {
		if (strcmp(sec->rows[i].key, key) == 0) {
			*index_r = i;
			return &sec->rows[i];
		}
	}
	for (size_t i = 0; i < sec->n_rows; i++) {
		if (ascii_caseeq(sec->rows[i].key, key)) {
			*index_r = i;
			return &sec->rows[i];
		}
	}
	return NULL;
}

/* key folded for comparison: lower case, without '_', '-', '.' and
 * blanks, so "listen_address" and "Max-Connections" compare as the
 * keys they resemble. */
static size_t
config_fold_key(const char *key, char *buf, size_t bufsz)
{
	size_t n = 0;

	for (const char *p = key; *p != '\0' && n + 1 < bufsz; p++) {
		if (*p == '_' || *p == '-' || *p == '.' || *p == ' ')
			continue;
		buf[n++] = (char)tolower((unsigned char)*p);
	}
	buf[n] = '\0';
	return n;
}

/* Levenshtein distance of two short strings; large if either is long. */
static size_t
config_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t row[CONFIG_KEY_FOLD_MAX + 1];

	if (la > CONFIG_KEY_FOLD_MAX || lb > CONFIG_KEY_FOLD_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best;

			best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/*
 * The key an unknown key was probably meant to be, or NULL: the same
 * letters without separators ("time_out"), a typo or two ("BindAdress"),
 * or a known key followed by more ("listen_adress" -> Listen).
 */
static const char *
config_suggest_key(const struct config_section *sec, const char *key)
{
	char fk[CONFIG_KEY_FOLD_MAX + 2], fr[CONFIG_KEY_FOLD_MAX + 2];
	size_t lk = config_fold_key(key, fk, sizeof(fk));
	size_t best_d = SIZE_MAX, best_prefix = 0;
	const char *best = NULL, *prefix = NULL;

	if (lk == 0)
		return NULL;
	for (size_t i = 0; i < sec->n_rows; i++) {
		size_t lr = config_fold_key(sec->rows[i].key, fr, sizeof(fr));
		size_t d = config_edit_distance(fk, lk, fr, lr);
		size_t shorter = lk < lr ? lk : lr;

		/* One edit per four letters, at most two. */
		if (d <= 2 && d <= (lr + 3) / 4 && d < best_d) {
			best_d = d;
			best = sec->rows[i].key;
		}
		if (shorter >= 4 && shorter > best_prefix &&
		    strncmp(fk, fr, shorter) == 0) {
			best_prefix = shorter;
			prefix = sec->rows[i].key;
		}
	}
	return best != NULL ? best : prefix;
}

uint64_t
config_section_parse(struct config_ctx *ctx, const struct config_section *sec,
    json_t *obj, const char *path, void *base)
{
	uint64_t seen = 0;
	const char *key;
	json_t *v;

	if (sec->n_rows > 64)
		fatalx("config schema: section with %zu rows", sec->n_rows);
	json_object_foreach(obj, key, v) {
		char *kp = json_loc_path_key(path, key);
		const struct config_setting *row;
		size_t i;

		row = config_find_row(sec, key, &i);
		if (row == NULL) {
			const char *hint = config_suggest_key(sec, key);

			config_warning(ctx, kp, CONFIG_AT_KEY, "%s%s%s%s",
			    sec->unknown_note != NULL ? sec->unknown_note :
			    "unknown key, ignored",
			    hint != NULL ? " (did you mean \"" : "",
			    hint != NULL ? hint : "",
			    hint != NULL ? "\"?)" : "");
		} else if (seen & ((uint64_t)1 << i)) {
			config_error(ctx, kp, CONFIG_AT_KEY,
			    "\"%s\" given twice (key names ignore case)",
			    row->key);
		} else {
			seen |= (uint64_t)1 << i;
			config_parse_row(ctx, row, v, kp, base);
		}
		free(kp);
	}
	for (size_t i = 0; i < sec->n_rows; i++) {
		if ((sec->rows[i].flags & CONFIG_F_REQUIRED) != 0 &&
		    (seen & ((uint64_t)1 << i)) == 0)
			config_error(ctx, path, CONFIG_AT_VALUE,
			    "missing required key \"%s\"", sec->rows[i].key);
	}
	if (sec->verify != NULL)
		sec->verify(ctx, path, base, seen);
	return seen;
}

json_t *
config_section_dump(const struct config_section *sec, const void *base)
{
	json_t *obj = json_object();

	if (obj == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < sec->n_rows; i++) {
		const struct config_setting *row = &sec->rows[i];
		const void *f = config_cfield(base, row->offset);
		json_t *v = NULL;
		int iv;

		if (row->flags & CONFIG_F_NODUMP)
			continue;
		switch (row->kind) {
		case CONFIG_BOOL:
			v = json_boolean(*(const bool *)f);
			break;
		case CONFIG_UINT:
			v = json_integer(*(const unsigned *)f);
			break;
		case CONFIG_U16:
			v = json_integer(*(const uint16_t *)f);
			break;
		case CONFIG_STRING:
		case CONFIG_PATH:
		case CONFIG_TEMPLATE:
			if (*(char *const *)f != NULL)
				v = json_string(*(char *const *)f);
			break;
		case CONFIG_SECRET:
			if (*(char *const *)f != NULL)
				v = json_string("<hidden>");
			break;
		case CONFIG_ENUM:
			memcpy(&iv, f, sizeof(iv));
			for (size_t k = 0; row->names[k].name != NULL; k++) {
				if (row->names[k].value == iv) {
					v = json_string(row->names[k].name);
					break;
				}
			}
			break;
		case CONFIG_OBJECT:
			v = config_section_dump(row->sub, f);
			break;
		case CONFIG_CUSTOM:
			if (row->dump != NULL)
				v = row->dump(row, base);
			break;
		}
		if (v != NULL)
			json_object_set_new(obj, row->key, v);
	}
	return obj;
}

void
config_section_free(const struct config_section *sec, void *base)
{
	for (size_t i = 0; i < sec->n_rows; i++) {
		const struct config_setting *row = &sec->rows[i];
		void *f = config_field(base, row->offset);

		if (config_kind_is_string(row->kind))
			config_string_free(row->kind, f);
		else if (row->kind == CONFIG_OBJECT)
			config_section_free(row->sub, f);
		else if (row->kind == CONFIG_CUSTOM && row->free != NULL)
			row->free(row, base);
	}
}
