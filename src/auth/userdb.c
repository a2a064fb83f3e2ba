/*
 * userdb.c - the front door: the driver table, one snapshot over every
 * configured driver, and what is derived from all users at load (cost
 * classes, the pre-login CAPA policy).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

/* The built-in drivers, in the order a lookup asks them. */
static const struct userdb_driver *const userdb_drivers[] = {
	&userdb_driver_static,
	&userdb_driver_passwd_file,
	&userdb_driver_sql,
};
#define USERDB_N_DRIVERS \
	(sizeof(userdb_drivers) / sizeof(userdb_drivers[0]))

/* One configured driver's part of a snapshot. */
struct userdb_part {
	const struct userdb_driver *drv;
	struct userdb_source *src;
};

struct userdb {
	atomic_uint refs;
	struct userdb_part parts[USERDB_N_DRIVERS];
	size_t n_parts;
	bool has_apop;
	bool all_scram;
	/* Cost classes: one secret each, pointing into the entries. */
	const char *class_secret[USERDB_COST_CLASSES_MAX];
	size_t n_classes;
	const char *scram_example;	/* points into an entry */
	struct userdb_policy policy;
};

const struct userdb_driver *
userdb_driver_find(const char *name)
{
	for (size_t i = 0; i < USERDB_N_DRIVERS; i++)
		if (strcmp(userdb_drivers[i]->name, name) == 0)
			return userdb_drivers[i];
	return NULL;
}

static void load_vreport(struct userdb_load_ctx *, const char *,
    const char *, va_list) __attribute__((format(printf, 3, 0)));

static void
load_vreport(struct userdb_load_ctx *ctx, const char *prefix,
    const char *fmt, va_list ap)
{
	if (ctx->errs == NULL)
		return;
	fputs(prefix, ctx->errs);
	vfprintf(ctx->errs, fmt, ap);
	fputc('\n', ctx->errs);
}

void
userdb_load_error(struct userdb_load_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	ctx->n_errors++;
	va_start(ap, fmt);
	load_vreport(ctx, "", fmt, ap);
	va_end(ap);
}

void
userdb_load_warning(struct userdb_load_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	load_vreport(ctx, "warning: ", fmt, ap);
	va_end(ap);
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
userdb_name_check(const char *name, size_t len, const char **why_r)
{
	const unsigned char *s = (const unsigned char *)name;
	const char *why = NULL;

	if (name == NULL || len == 0 || len > USERNAME_MAX)
		why = "user names are 1 to 255 bytes long";
	else if (s[0] == '.')
		why = "user name must not start with '.'";
	for (size_t i = 0; why == NULL && i < len; ) {
		unsigned char c = s[i];

		if (c >= 0x80) {
			size_t n = utf8_seq_len(s + i, len - i);
			if (n == 0)
				why = "user name is not valid UTF-8 (or holds a "
				    "C1 control character)";
			i += n;
			continue;
		}
		if (c == ' ')
			why = "user name must not contain a space (USER could "
			    "not send it)";
		else if (c < 0x20 || c == 0x7f)
			why = "user name contains a control character";
		else if (c == '/')
			why = "user name must not contain '/'";
		else if (c == '\\')
			why = "user name must not contain '\\'";
		else if (c == ':')
			why = "user name must not contain ':' (the passwd-file "
			    "separator)";
		else if (c == '.' && i + 1 < len && s[i + 1] == '.')
			why = "user name must not contain \"..\"";
		i++;
	}
	_Static_assert(USERNAME_MAX == 255, "the message says 255");
	if (why_r != NULL)
		*why_r = why;
	return why == NULL;
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
cost_classes(struct userdb_load_ctx *ctx, struct userdb *db,
    struct userdb_entry **all, size_t n)
{
	struct cost_ent *ents;
	struct cost_run *heads;
	size_t *class_of_run;
	size_t n_heads = 0, scram_best = 0;

	db->all_scram = n > 0;
	if (n == 0)
		return;
	ents = xcalloc(n, sizeof(*ents));
	for (size_t i = 0; i < n; i++) {
		const char *sc = passwd_scheme_name(all[i]->password);

		ents[i].user = i;
		if (!passwd_cost_key(all[i]->password, ents[i].key,
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
		const struct userdb_entry *rep = all[heads[c].user];
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
		all[ents[i].user]->cost_class = class_of_run[ents[i].run];
	if (n_heads > USERDB_COST_CLASSES_MAX)
		userdb_load_warning(ctx, "%zu kinds of password hash (scheme "
		    "and cost); failed logins are made to cost the same only "
		    "for the %d most common: re-hash the others", n_heads,
		    USERDB_COST_CLASSES_MAX);
	free(class_of_run);
	free(heads);
	free(ents);
}

/* The pre-login CAPA values: with no users, the server's own. */
static void
finish_policy(const struct posuto_config *cfg, struct userdb *db,
    struct userdb_entry **all, size_t n)
{
	struct userdb_policy *p = &db->policy;

	p->login_delay_max = cfg->login_delay;
	p->expire_min = cfg->expire_days;
	for (size_t i = 0; i < n; i++) {
		const struct userdb_entry *e = all[i];

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

/* Collects every entry (for the derived fields) while checking that no
 * user is defined by two drivers. */
struct collect_ctx {
	struct userdb_load_ctx *load;
	struct userdb *db;
	size_t part;			/* the part being iterated */
	struct userdb_entry **all;
	size_t n, cap;
};

static bool
collect_one(struct userdb_entry *e, void *arg)
{
	struct collect_ctx *cc = arg;
	struct userdb *db = cc->db;

	for (size_t i = 0; i < cc->part; i++) {
		struct userdb_entry *prev;

		if (db->parts[i].drv->lookup(db->parts[i].src, e->name,
		    &prev) == USERDB_OK)
			userdb_load_error(cc->load, "%s: user %s already "
			    "defined at %s", e->origin, e->name, prev->origin);
	}
	if (cc->n == cc->cap) {
		cc->cap = cc->cap == 0 ? 64 : cc->cap * 2;
		cc->all = xreallocarray(cc->all, cc->cap, sizeof(*cc->all));
	}
	cc->all[cc->n++] = e;
	if (e->apop_secret != NULL)
		db->has_apop = true;
	return true;
}

static void
userdb_free(struct userdb *db)
{
	for (size_t i = 0; i < db->n_parts; i++)
		db->parts[i].drv->free(db->parts[i].src);
	free(db);
}

struct userdb *
userdb_load(const struct posuto_config *cfg, FILE *errs)
{
	struct userdb_load_ctx ctx = { .cfg = cfg, .errs = errs };
	struct collect_ctx cc = { .load = &ctx };
	struct userdb *db = xcalloc(1, sizeof(*db));

	atomic_init(&db->refs, 1);
	cc.db = db;
	for (size_t i = 0; i < USERDB_N_DRIVERS; i++) {
		const struct userdb_driver *drv = userdb_drivers[i];
		struct userdb_source *src;

		if (!drv->configured(cfg) || (src = drv->load(&ctx)) == NULL)
			continue;
		db->parts[db->n_parts].drv = drv;
		db->parts[db->n_parts].src = src;
		db->n_parts++;
	}
	for (cc.part = 0; cc.part < db->n_parts; cc.part++) {
		const struct userdb_part *p = &db->parts[cc.part];

		if (p->drv->iterate != NULL)
			(void)p->drv->iterate(p->src, collect_one, &cc);
		if (p->drv->has_apop != NULL && p->drv->has_apop(p->src))
			db->has_apop = true;
	}
	cost_classes(&ctx, db, cc.all, cc.n);
	finish_policy(cfg, db, cc.all, cc.n);
	free(cc.all);
	if (ctx.n_errors > 0) {
		userdb_free(db);
		return NULL;
	}
	return db;
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

enum userdb_result
userdb_lookup(const struct userdb *db, const char *name,
    const struct userdb_entry **entry_r)
{
	*entry_r = NULL;
	for (size_t i = 0; i < db->n_parts; i++) {
		struct userdb_entry *e;
		enum userdb_result r = db->parts[i].drv->lookup(db->parts[i].src,
		    name, &e);

		/* A driver that cannot answer must not let a later one
		 * answer for a user it may hold. */
		if (r != USERDB_NOT_FOUND) {
			*entry_r = r == USERDB_OK ? e : NULL;
			return r;
		}
	}
	return USERDB_NOT_FOUND;
}

enum userdb_result
userdb_lookup_address(const struct userdb *db, const char *addr,
    const struct userdb_entry **entry_r)
{
	*entry_r = NULL;
	for (size_t i = 0; i < db->n_parts; i++) {
		struct userdb_entry *e;
		enum userdb_result r;

		if (db->parts[i].drv->lookup_address == NULL)
			continue;
		r = db->parts[i].drv->lookup_address(db->parts[i].src, addr,
		    &e);
		if (r != USERDB_NOT_FOUND) {
			*entry_r = r == USERDB_OK ? e : NULL;
			return r;
		}
	}
	return USERDB_NOT_FOUND;
}

/* Adapts the public (const) callback to a driver's iterate. */
struct iter_ctx {
	userdb_iter_fn *fn;
	void *arg;
};

static bool
iter_one(struct userdb_entry *e, void *arg)
{
	struct iter_ctx *ic = arg;

	return ic->fn(e, ic->arg);
}

bool
userdb_iterate(const struct userdb *db, userdb_iter_fn *fn, void *arg)
{
	struct iter_ctx ic = { fn, arg };

	for (size_t i = 0; i < db->n_parts; i++) {
		const struct userdb_part *p = &db->parts[i];

		if (p->drv->iterate != NULL &&
		    !p->drv->iterate(p->src, iter_one, &ic))
			return false;
	}
	return true;
}

bool
userdb_has_apop(const struct userdb *db)
{
	return db->has_apop;
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
