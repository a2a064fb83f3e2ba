/*
 * userdb_sql.c - the "sql" driver: users in PostgreSQL or MariaDB/MySQL
 * (Pop3Server.Sql), in posuto's posuto_users table or in TPOPS 0.4's
 * `user` table as it is (docs/sql.md).
 *
 * Users are looked up one at a time, when they log in: a database may
 * hold more users than posuto should copy at every load, and changes
 * there (a new password) apply at the next login without a SIGHUP.  The
 * lookup blocks on the database, which is allowed: it runs on a worker
 * thread (userdb_int.h), never on the event loop; the pool in src/sql
 * bounds the connections and every wait (sql.h says why this and not
 * libpq's asynchronous API).  A database that is down or slow gives
 * USERDB_TEMPFAIL (the client sees -ERR [SYS/TEMP]) within ConnectTimeOut
 * + QueryTimeOut, and the next lookup connects again by itself.
 *
 * The user name reaches the database only as a statement parameter; the
 * password never does (it is checked here, against the stored hash).
 *
 * Entries must live as long as the snapshot (userdb_int.h), so each one
 * looked up is kept in the source; a later lookup of the same user that
 * finds the same row returns the same entry, and one that finds the row
 * changed keeps the old entry (a session may hold it) and adds a new one.
 * So memory grows with the users who log in during one snapshot's life,
 * as a table driver's holds them all.  The driver cannot list its users
 * (iterate is NULL): they form no cost class of their own (I6 timing is
 * then that of the database round trip plus one hash check).
 *
 * The cache (Sql CacheSize, off by default, as Dovecot's auth_cache_size):
 * a lookup answered less than CacheTimeToLive seconds ago (a name not
 * found: CacheNegativeTimeToLive) is answered again without the
 * database, so a login costs no round trip for the userdb.  It is a
 * fixed array of CacheSize slots, the name's hash picking the slot (a
 * newer name simply takes it over): memory is bounded and there is no
 * eviction list to keep.  A slot holds the entry looked up (the source
 * keeps entries anyway) or, for a name not found, a copy of the name,
 * and the monotonic time of the lookup.  Age is checked on every use, so
 * a password changed in the database is never served from the cache once
 * the TTL has passed; a failed lookup (database down) is never cached and
 * never answered from an expired slot.  A reload (SIGHUP, a new snapshot)
 * starts with an empty cache.
 */
#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/passwd.h"
#include "auth/userdb_int.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "sql/sql.h"

#define SQL_USER_BUCKETS	1024

/* One looked-up user; never freed before the source. */
struct sql_user {
	struct userdb_user u;
	struct sql_user *next;		/* same bucket (latest first) */
};

/* One cache slot (under the source's mu); at_ms 0: empty. */
struct sql_cache_slot {
	struct sql_user *su;		/* found; NULL: not found */
	char *neg_name;			/* not found: the name */
	int64_t at_ms;			/* CLOCK_MONOTONIC of the lookup */
};

struct userdb_source {
	/* Copies: the config is freed at SIGHUP while sessions keep this
	 * snapshot.  cfg holds only what mailbox defaults need. */
	struct posuto_config cfg;
	struct sql_cfg sql;
	char *origin;			/* "pgsql posuto_users" and the like */
	struct sql_pool *pool;
	pthread_mutex_t mu;
	struct sql_user *buckets[SQL_USER_BUCKETS];
	struct sql_cache_slot *cache;	/* sql.cache_size slots, or NULL */
};

/* The lookup statement of each schema and driver.  Only the user name
 * is a parameter; identifiers are quoted as each server wants (TPOPS's
 * table is called "user", a reserved word in PostgreSQL). */
static const char q_posuto[] =
    "SELECT name, password, apop_secret, location, login_delay, "
    "expire_days FROM posuto_users WHERE name = ?";
static const char q_tpops_pg[] =
    "SELECT login, passwd, maildir, uid FROM \"user\" WHERE login = ?";
static const char q_tpops_my[] =
    "SELECT login, passwd, maildir, uid FROM `user` WHERE login = ?";
/* Delivery: the user of an address, as tpops-store found it (user.mail;
 * column 4 is checked byte for byte, as login is). */
static const char q_tpops_mail_pg[] =
    "SELECT login, passwd, maildir, uid, mail FROM \"user\" "
    "WHERE mail = ?";
static const char q_tpops_mail_my[] =
    "SELECT login, passwd, maildir, uid, mail FROM `user` WHERE mail = ?";

static bool
sql_configured(const struct posuto_config *cfg)
{
	return cfg->sql.driver != SQL_DRIVER_NONE;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
sql_source_free(struct userdb_source *src)
{
	if (src == NULL)
		return;
	sql_pool_free(&src->pool);
	for (size_t i = 0; i < SQL_USER_BUCKETS; i++) {
		struct sql_user *su, *next;

		for (su = src->buckets[i]; su != NULL; su = next) {
			next = su->next;
			free(su->u.name);
			free_secret(su->u.password);
			free_secret(su->u.apop_secret);
			free(su->u.mailbox_path);
			free(su->u.location);
			free(su->u.format);
			free(su);
		}
	}
	for (size_t i = 0; src->cache != NULL && i < src->sql.cache_size; i++)
		free(src->cache[i].neg_name);
	free(src->cache);
	free(src->cfg.mailbox_template);
	free(src->cfg.mail_dir);
	free(src->cfg.format);
	free(src->cfg.path);
	free(src->sql.host);
	free(src->sql.socket);
	free(src->sql.database);
	free(src->sql.user);
	free(src->sql.password_file);
	free(src->sql.password_scheme);
	free(src->origin);
	(void)pthread_mutex_destroy(&src->mu);
	free(src);
}

static struct userdb_source *
sql_load(struct userdb_load_ctx *ctx)
{
	const struct posuto_config *cfg = ctx->cfg;
	struct userdb_source *src = xcalloc(1, sizeof(*src));
	char err[SQL_ERR_MAX], where[600];

	if (pthread_mutex_init(&src->mu, NULL) != 0)
		abort();
	src->cfg.path = dup_or_null(cfg->path);
	src->cfg.mailbox_template = dup_or_null(cfg->mailbox_template);
	src->cfg.mail_dir = dup_or_null(cfg->mail_dir);
	src->cfg.format = dup_or_null(cfg->format);
	src->cfg.login_delay = cfg->login_delay;
	src->cfg.expire_days = cfg->expire_days;
	src->sql = cfg->sql;
	src->sql.host = dup_or_null(cfg->sql.host);
	src->sql.socket = dup_or_null(cfg->sql.socket);
	src->sql.database = dup_or_null(cfg->sql.database);
	src->sql.user = dup_or_null(cfg->sql.user);
	src->sql.password_file = dup_or_null(cfg->sql.password_file);
	src->sql.password_scheme = dup_or_null(cfg->sql.password_scheme);
	src->origin = xasprintf("%s %s", cfg->sql.driver == SQL_DRIVER_PGSQL ?
	    "pgsql" : "mysql", cfg->sql.schema == SQL_SCHEMA_TPOPS ?
	    "user (TPOPS)" : "posuto_users");

	if (src->sql.password_scheme != NULL) {
		char *probe = xasprintf("{%s}", src->sql.password_scheme);

		if (passwd_scheme_name(probe) == NULL) {
			config_where(cfg, "Pop3Server.Sql", where,
			    sizeof(where));
			userdb_load_error(ctx, "%s: PasswordScheme: unknown "
			    "scheme \"%s\"", where, src->sql.password_scheme);
		}
		free(probe);
	}
	/* Reads PasswordFile now (as the user posuto starts as); does not
	 * connect: a database that is down must not stop a start. */
	if (sql_driver_load(src->sql.driver, err, sizeof(err)) == NULL) {
		config_where(cfg, "Pop3Server.Sql.Driver", where,
		    sizeof(where));
		userdb_load_error(ctx, "%s: %s", where, err);
		sql_source_free(src);
		return NULL;
	}
	if (src->sql.cache_size > 0)
		src->cache = xcalloc(src->sql.cache_size, sizeof(*src->cache));
	src->pool = sql_pool_new(&src->sql, err, sizeof(err));
	if (src->pool == NULL) {
		config_where(cfg, "Pop3Server.Sql.PasswordFile", where,
		    sizeof(where));
		userdb_load_error(ctx, "%s: %s", where, err);
		sql_source_free(src);
		return NULL;
	}
	return src;
}

static size_t
name_hash(const char *s)
{
	size_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % SQL_USER_BUCKETS;
}

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
user_same(const struct userdb_user *a, const struct userdb_user *b)
{
	return strcmp(a->name, b->name) == 0 &&
	    str_eq(a->password, b->password) &&
	    str_eq(a->apop_secret, b->apop_secret) &&
	    str_eq(a->mailbox_path, b->mailbox_path) &&
	    str_eq(a->format, b->format) &&
	    a->pub.login_delay == b->pub.login_delay &&
	    a->pub.expire_days == b->pub.expire_days;
}

/* A location column: "FORMAT:PATH" (FORMAT a store driver name such as
 * maildir, emldir, auto; the store judges it at open) or an absolute
 * PATH (MailboxFormat applies), taken as it is (no %-sequences: the row
 * names one user's mailbox).  False if unusable. */
static bool
set_location(struct userdb_user *u, const char *loc, const char *dflt)
{
	size_t n = strspn(loc, "abcdefghijklmnopqrstuvwxyz0123456789-");

	if (n > 0 && loc[n] == ':') {
		u->format = xstrndup(loc, n);
		loc += n + 1;
	} else {
		u->format = xstrdup(dflt);
	}
	/* "sql:" (this user's mailbox) or "sql:NAME": a name, no path */
	if (strcasecmp(u->format, "sql") == 0) {
		u->mailbox_path = xstrdup(loc);
		return true;
	}
	if (loc[0] != '/' || strstr(loc, "/../") != NULL)
		return false;
	u->mailbox_path = xstrdup(loc);
	return true;
}

/* A per-user policy column: NULL keeps the server's value. */
static bool
policy_col(const char *v, uint32_t max, uint32_t *out)
{
	if (v == NULL)
		return false;
	return parse_u32(v, strlen(v), out) && *out <= max;
}

/*
 * Builds the user of one row (cols: name, password, apop, location
 * [, login_delay, expire_days]) into u.  False with *why_r if the row
 * cannot be used.
 */
static bool
user_from_row(struct userdb_source *src, const struct sql_result *r,
    size_t row, struct userdb_user *u, const char **why_r)
{
	bool tpops = src->sql.schema == SQL_SCHEMA_TPOPS;
	const char *pw = sql_result_get(r, row, 1, NULL);
	const char *loc = sql_result_get(r, row, tpops ? 2 : 3, NULL);
	uint32_t n;

	u->pub.uid = u->pub.gid = USERDB_ID_NONE;
	u->pub.login_delay = src->cfg.login_delay;
	u->pub.expire_days = src->cfg.expire_days;
	u->pub.cost_class = USERDB_NO_CLASS;
	if (pw == NULL || pw[0] == '\0') {
		*why_r = "empty password";
		return false;
	}
	if (tpops) {
		/* TPOPS 0.4 keeps the password as it is and checks APOP
		 * against it (tpops_auth-mysql.rb): PLAIN, and the APOP
		 * secret is the same text. */
		u->password = xasprintf("{PLAIN}%s", pw);
		u->apop_secret = xstrdup(pw);
	} else {
		const char *apop = sql_result_get(r, row, 2, NULL);

		if (pw[0] != '{' && src->sql.password_scheme != NULL)
			u->password = xasprintf("{%s}%s",
			    src->sql.password_scheme, pw);
		else
			u->password = xstrdup(pw);
		if (apop != NULL && apop[0] != '\0')
			u->apop_secret = xstrdup(apop);
		if (policy_col(sql_result_get(r, row, 4, NULL),
		    LOGIN_DELAY_MAX, &n))
			u->pub.login_delay = n;
		if (sql_result_get(r, row, 5, NULL) != NULL) {
			const char *e = sql_result_get(r, row, 5, NULL);

			if (strcmp(e, "-1") == 0)
				u->pub.expire_days = EXPIRE_NEVER;
			else if (policy_col(e, EXPIRE_MAX_DAYS, &n))
				u->pub.expire_days = (int)n;
		}
	}
	if (!passwd_stored_valid(u->password, why_r)) {
		if (*why_r == NULL)
			*why_r = "stored password not usable";
		return false;
	}
	if (tpops && src->sql.tpops_mailbox == SQL_TPOPS_MAILBOX_MSG) {
		/* TPOPS's MailboxType MySQL: the msg rows of user.uid. */
		const char *uid = sql_result_get(r, row, 3, NULL);
		uint64_t v;

		if (uid == NULL || !parse_u64(uid, strlen(uid), &v)) {
			*why_r = "uid is not a number";
			return false;
		}
		u->format = xstrdup("tpops");
		u->mailbox_path = xasprintf("/%" PRIu64, v);
	} else if (loc != NULL && loc[0] != '\0') {
		/* TPOPS's maildir column is a Maildir path. */
		if (!set_location(u, loc, tpops ? "maildir" :
		    src->cfg.format != NULL ? src->cfg.format : "auto")) {
			*why_r = "location is not an absolute path";
			return false;
		}
	} else {
		struct userdb_load_ctx lctx = { .cfg = &src->cfg };

		u->format = xstrdup(src->cfg.format != NULL ? src->cfg.format :
		    "auto");
		u->origin = src->origin;
		if (!userdb_user_set_mailbox(&lctx, u, NULL)) {
			u->origin = NULL;
			*why_r = "no location, and MailDir/MailboxPath give "
			    "none";
			return false;
		}
		u->origin = NULL;
	}
	u->location = xasprintf("%s:%s", u->format, u->mailbox_path);
	return true;
}

static void
user_clear(struct userdb_user *u)
{
	free(u->name);
	free_secret(u->password);
	free_secret(u->apop_secret);
	free(u->mailbox_path);
	free(u->location);
	free(u->format);
	memset(u, 0, sizeof(*u));
}

/* key_col: the column that must equal key byte for byte (0 login, 4
 * mail); the entry is the row's login's. */
static enum userdb_result
sql_find(struct userdb_source *src, const char *q, const char *key,
    size_t key_col, struct userdb_entry **entry_r);

static int64_t
mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sql_cache_slot *
cache_slot(struct userdb_source *src, const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = name; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return &src->cache[h % src->sql.cache_size];
}

/* The cached answer for name, if it is young enough; under src->mu. */
static bool
cache_get(struct userdb_source *src, const char *name, int64_t now,
    enum userdb_result *res_r, struct userdb_entry **entry_r)
{
	struct sql_cache_slot *c = cache_slot(src, name);
	int64_t age = now - c->at_ms;

	if (c->at_ms == 0 || age < 0)
		return false;
	if (c->su != NULL && strcmp(c->su->u.name, name) == 0 &&
	    age < (int64_t)src->sql.cache_ttl * 1000) {
		*res_r = USERDB_OK;
		*entry_r = &c->su->u.pub;
		return true;
	}
	if (c->su == NULL && c->neg_name != NULL &&
	    strcmp(c->neg_name, name) == 0 &&
	    age < (int64_t)src->sql.cache_negative_ttl * 1000) {
		*res_r = USERDB_NOT_FOUND;
		return true;
	}
	return false;
}

/* Records a lookup's answer (not a failure); under src->mu. */
static void
cache_put(struct userdb_source *src, const char *name, int64_t at,
    enum userdb_result res, struct userdb_entry *e)
{
	struct sql_cache_slot *c = cache_slot(src, name);

	if (res != USERDB_OK && (res != USERDB_NOT_FOUND ||
	    src->sql.cache_negative_ttl == 0))
		return;
	free(c->neg_name);
	c->neg_name = NULL;
	/* the entry is the pub of a struct sql_user (first members) */
	c->su = res == USERDB_OK ? (struct sql_user *)(void *)e : NULL;
	if (res == USERDB_NOT_FOUND)
		c->neg_name = xstrdup(name);
	/* the time the question was asked: a row changed during the
	 * round trip is not served longer than the TTL after it */
	c->at_ms = at > 0 ? at : 1;
}

static enum userdb_result
sql_lookup(struct userdb_source *src, const char *name,
    struct userdb_entry **entry_r)
{
	bool tpops = src->sql.schema == SQL_SCHEMA_TPOPS;
	const char *q = !tpops ? q_posuto : src->sql.driver ==
	    SQL_DRIVER_PGSQL ? q_tpops_pg : q_tpops_my;
	enum userdb_result res;
	int64_t now;
	bool hit;

	if (src->cache == NULL)
		return sql_find(src, q, name, 0, entry_r);
	now = mono_ms();
	*entry_r = NULL;
	(void)pthread_mutex_lock(&src->mu);
	hit = cache_get(src, name, now, &res, entry_r);
	(void)pthread_mutex_unlock(&src->mu);
	if (hit)
		return res;
	res = sql_find(src, q, name, 0, entry_r);
	(void)pthread_mutex_lock(&src->mu);
	cache_put(src, name, now, res, *entry_r);
	(void)pthread_mutex_unlock(&src->mu);
	return res;
}

static enum userdb_result
sql_lookup_address(struct userdb_source *src, const char *addr,
    struct userdb_entry **entry_r)
{
	*entry_r = NULL;
	if (src->sql.schema != SQL_SCHEMA_TPOPS)
		return USERDB_NOT_FOUND;
	return sql_find(src, src->sql.driver == SQL_DRIVER_PGSQL ?
	    q_tpops_mail_pg : q_tpops_mail_my, addr, 4, entry_r);
}

static enum userdb_result
sql_find(struct userdb_source *src, const char *q, const char *key,
    size_t key_col, struct userdb_entry **entry_r)
{
	struct sql_param p = SQL_PARAM_STR(key);
	const char *name = key;
	struct sql_result *r = NULL;
	char err[SQL_ERR_MAX];
	struct userdb_user u;
	struct sql_user *su;
	const char *why = NULL;
	size_t row, h;

	*entry_r = NULL;
	if (sql_pool_exec(src->pool, q, &p, 1, &r, err, sizeof(err)) !=
	    SQL_OK) {
		log_warnx("userdb %s: %s", src->origin, err);
		return USERDB_TEMPFAIL;
	}
	/* Byte for byte, whatever the column's collation folds or pads
	 * (MariaDB's default folds case; TPOPS's char(16) pads). */
	for (row = 0; row < sql_result_rows(r); row++) {
		size_t len;
		const char *v = sql_result_get(r, row, key_col, &len);

		if (v != NULL && len == strlen(key) &&
		    memcmp(v, key, len) == 0)
			break;
	}
	if (row == sql_result_rows(r)) {
		sql_result_free(&r);
		return USERDB_NOT_FOUND;
	}
	if (key_col != 0) {
		/* found by address: the user is the row's login, which must
		 * be a name posuto accepts */
		size_t len;

		name = sql_result_get(r, row, 0, &len);
		if (name == NULL || !userdb_name_valid(name, len)) {
			log_error("userdb %s: the user of an address has an "
			    "unusable login", src->origin);
			sql_result_free(&r);
			return USERDB_NOT_FOUND;
		}
	}
	memset(&u, 0, sizeof(u));
	u.name = xstrdup(name);
	if (!user_from_row(src, r, row, &u, &why)) {
		log_error("userdb %s: user %s: %s", src->origin, name, why);
		user_clear(&u);
		sql_result_free(&r);
		return USERDB_NOT_FOUND;
	}
	name = u.name;		/* r (which name may point into) goes now */
	sql_result_free(&r);

	h = name_hash(name);
	(void)pthread_mutex_lock(&src->mu);
	for (su = src->buckets[h]; su != NULL; su = su->next)
		if (strcmp(su->u.name, name) == 0)
			break;
	if (su != NULL && user_same(&su->u, &u)) {
		user_clear(&u);
	} else {
		su = xcalloc(1, sizeof(*su));
		su->u = u;
		su->u.origin = src->origin;
		su->u.pub.name = su->u.name;
		su->u.pub.password = su->u.password;
		su->u.pub.apop_secret = su->u.apop_secret;
		su->u.pub.mailbox_path = su->u.mailbox_path;
		su->u.pub.location = su->u.location;
		su->u.pub.format = su->u.format;
		su->u.pub.origin = src->origin;
		/* Latest first, so the search above finds it. */
		su->next = src->buckets[h];
		src->buckets[h] = su;
	}
	*entry_r = &su->u.pub;
	(void)pthread_mutex_unlock(&src->mu);
	return USERDB_OK;
}

/* Users' APOP secrets are known only at login: offer APOP (TPOPS users
 * always have one; posuto_users may). */
static bool
sql_has_apop(struct userdb_source *src)
{
	(void)src;
	return true;
}

const struct userdb_driver userdb_driver_sql = {
	.name = "sql",
	.configured = sql_configured,
	.load = sql_load,
	.lookup = sql_lookup,
	.lookup_address = sql_lookup_address,
	.iterate = NULL,
	.has_apop = sql_has_apop,
	.free = sql_source_free,
};
