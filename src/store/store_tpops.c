/*
 * store_tpops.c - the "tpops:" driver: an existing TPOPS 0.4 database's
 * mail, its `msg` table as TPOPS made it (sql.txt; docs/sql.md), in
 * MariaDB/MySQL or PostgreSQL.  A location is "tpops:/UID", UID being
 * user.uid (the sql userdb with Schema "tpops" gives its users that).
 *
 * What a client sees is what TPOPS 0.4 showed it, so one that switches
 * from TPOPS downloads nothing again and gets the same bytes:
 *   - messages in TPOPS's order (timestamp, id);
 *   - UIDL "id.uid.T", T being MySQL's `timestamp + 0` (YYYYMMDDHHMMSS,
 *     as a number: no leading zeros, "0" for a zero date), which is what
 *     TPOPS's uidl_all selected;
 *   - LIST/STAT sizes: the size column tpops-store wrote (the message's
 *     length with every LF counted as CRLF);
 *   - RETR: header, an empty line, body, every LF sent as CRLF (TPOPS's
 *     retr), then the wire encoder's dot-stuffing and final CRLF, which
 *     follow TPOPS's server (a line is what ends in LF).
 * The size column is the delivery agent's word, never measured here, so
 * it is reported as a hint (store.h): a row whose size is off is still
 * sent whole.
 *
 * Threads: every database call blocks, so none runs on the event loop.
 * open and commit run on workers already (store.h); a message is fetched
 * by msg_prepare (a worker, pop3_job.c) in one statement, header and body
 * being MEDIUMTEXT, 16 MiB at most each: that bound is what the reader
 * holds.  msg_read only copies, converting LF to CRLF.  mailbox_close
 * may run on the loop: a lock still held then is released by a thread of
 * this module, not by the caller.  QUIT always commits (commit_needed is
 * true), so the usual release is synchronous, at the end of the commit,
 * on its worker: a client that logs in again at once finds it free.
 *
 * Lock: sql_lock (sql.h) on "tpops:UID", shared by every posuto node on
 * the database.  TPOPS's own `locks` table is neither read nor written:
 * do not run TPOPS and posuto on one database at the same time.
 *
 * Delivery (posuto deliver, LMTP, the SMTP sink) stores as tpops-store
 * did: LF line ends (lf_store: the delivery agent converts CRLF), split
 * at the first empty line (header keeps its last LF; the empty line
 * belongs to neither), size with CRLF, timestamp now(), msgno 0 (the
 * value MySQL gave the column tpops-store left out; TPOPS numbers its
 * rows itself), the user's quota checked (quota > 0: the sum of sizes
 * may not pass it).  One transaction; the commit is acknowledged before
 * the delivery is.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "sql/sql.h"
#include "store/store_driver.h"

/* MEDIUMTEXT: what one header or body column of TPOPS's msg holds. */
#define TPOPS_TEXT_MAX		16777215u
/* Ids per DELETE statement at commit (all in one transaction). */
#define TPOPS_DELETE_BATCH	256

/* ---- the database ---------------------------------------------------- */

/* A configured database; mailboxes, readers and deliveries hold a ref,
 * so a SIGHUP that changes it frees the old one only once unused. */
struct tpops_db {
	struct sql_cfg cfg;		/* own copy: the pool points at it */
	struct sql_pool *pool;
	unsigned refs;			/* under tpops_mu; 1 while current */
};

static pthread_mutex_t tpops_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tpops_db *tpops_cur;

static void
db_free(struct tpops_db *db)
{
	sql_pool_free(&db->pool);
	sql_cfg_release(&db->cfg);
	free(db);
}

static void
db_unref(struct tpops_db **dbp)
{
	struct tpops_db *db = *dbp;
	bool last;

	if (db == NULL)
		return;
	*dbp = NULL;
	(void)pthread_mutex_lock(&tpops_mu);
	last = --db->refs == 0;
	(void)pthread_mutex_unlock(&tpops_mu);
	if (last)
		db_free(db);
}

static struct tpops_db *
db_ref_current(void)
{
	struct tpops_db *db;

	(void)pthread_mutex_lock(&tpops_mu);
	if ((db = tpops_cur) != NULL)
		db->refs++;
	(void)pthread_mutex_unlock(&tpops_mu);
	return db;
}

bool
store_tpops_configure(const struct sql_cfg *cfg, char *err, size_t errsz)
{
	struct tpops_db *db, *old;
	bool same;

	if (cfg == NULL || cfg->driver == SQL_DRIVER_NONE ||
	    cfg->schema != SQL_SCHEMA_TPOPS) {
		(void)pthread_mutex_lock(&tpops_mu);
		old = tpops_cur;
		tpops_cur = NULL;
		(void)pthread_mutex_unlock(&tpops_mu);
		db_unref(&old);
		return true;
	}
	(void)pthread_mutex_lock(&tpops_mu);
	same = tpops_cur != NULL && sql_cfg_same(&tpops_cur->cfg, cfg);
	(void)pthread_mutex_unlock(&tpops_mu);
	if (same)
		return true;
	db = xcalloc(1, sizeof(*db));
	sql_cfg_copy(&db->cfg, cfg);
	/* Mail as stored (latin1 in TPOPS's day), never re-encoded. */
	db->cfg.bytes_as_stored = true;
	db->refs = 1;
	if ((db->pool = sql_pool_new(&db->cfg, err, errsz)) == NULL) {
		db_free(db);
		return false;
	}
	(void)pthread_mutex_lock(&tpops_mu);
	old = tpops_cur;
	tpops_cur = db;
	(void)pthread_mutex_unlock(&tpops_mu);
	db_unref(&old);
	return true;
}

static bool
db_is_pg(const struct tpops_db *db)
{
	return sql_pool_driver(db->pool) == SQL_DRIVER_PGSQL;
}

/* "/42" -> "42" (canonical decimal) in buf; false if it is no uid. */
static bool
uid_of_path(const char *path, char *buf, size_t bufsz)
{
	uint64_t uid;

	if (path[0] != '/' || !parse_u64(path + 1, strlen(path + 1), &uid) ||
	    uid > INT32_MAX)
		return false;
	(void)snprintf(buf, bufsz, "%" PRIu64, uid);
	return true;
}

static enum store_status
store_of_sql(enum sql_status st)
{
	return st == SQL_OK ? STORE_OK : STORE_TEMP;
}

/* ---- releasing locks off the event loop ------------------------------ */

/* mailbox_close() may run on the loop, and a release is a round trip:
 * one thread of ours does those, in order. */
struct tpops_release {
	struct tpops_release *next;
	struct sql_lock *lock;
	struct tpops_db *db;		/* ref: the pool outlives the lock */
};

static pthread_mutex_t rel_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rel_cv = PTHREAD_COND_INITIALIZER;
static struct tpops_release *rel_head, **rel_tail = &rel_head;
static bool rel_started;

static void *
release_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct tpops_release *r;

		(void)pthread_mutex_lock(&rel_mu);
		while (rel_head == NULL)
			(void)pthread_cond_wait(&rel_cv, &rel_mu);
		r = rel_head;
		if ((rel_head = r->next) == NULL)
			rel_tail = &rel_head;
		(void)pthread_mutex_unlock(&rel_mu);
		sql_lock_release(&r->lock);
		db_unref(&r->db);
		free(r);
	}
	return NULL;
}

static void
release_later(struct sql_lock **lock, struct tpops_db *db)
{
	struct tpops_release *r = xcalloc(1, sizeof(*r));
	pthread_t t;

	r->lock = *lock;
	*lock = NULL;
	(void)pthread_mutex_lock(&tpops_mu);
	db->refs++;
	(void)pthread_mutex_unlock(&tpops_mu);
	r->db = db;
	(void)pthread_mutex_lock(&rel_mu);
	if (!rel_started) {
		pthread_attr_t a;

		(void)pthread_attr_init(&a);
		(void)pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, release_main, NULL) == 0)
			rel_started = true;
		(void)pthread_attr_destroy(&a);
	}
	if (!rel_started) {
		/* no thread: release here, slow but correct */
		(void)pthread_mutex_unlock(&rel_mu);
		sql_lock_release(&r->lock);
		db_unref(&r->db);
		free(r);
		return;
	}
	*rel_tail = r;
	rel_tail = &r->next;
	(void)pthread_cond_signal(&rel_cv);
	(void)pthread_mutex_unlock(&rel_mu);
}

/* ---- snapshot -------------------------------------------------------- */

struct tpops_msg {
	char *id;			/* msg.id, decimal */
	char *uidl;
	uint64_t size;
};

struct tpops_mailbox {
	struct mailbox pub;
	struct tpops_db *db;		/* ref */
	struct sql_lock *lock;		/* NULL once released */
	char uid[24];
	uint32_t n;
	struct tpops_msg *msgs;
	uint64_t total;
};

static struct tpops_mailbox *
tmb_of(struct mailbox *pub)
{
	return (struct tpops_mailbox *)pub;
}

static const struct tpops_mailbox *
tmb_cof(const struct mailbox *pub)
{
	return (const struct tpops_mailbox *)pub;
}

/* TPOPS's order and what its uidl_all and list_all selected. */
static const char list_pg[] =
    "SELECT id, uid, to_char(\"timestamp\", 'YYYYMMDDHH24MISS'), size "
    "FROM msg WHERE uid = ? ORDER BY \"timestamp\", id";
static const char list_my[] =
    "SELECT id, uid, DATE_FORMAT(`timestamp`, '%Y%m%d%H%i%s'), size "
    "FROM msg WHERE uid = ? ORDER BY `timestamp`, id";

/* MySQL's `datetime + 0` from its 14 digits: a number, so leading zeros
 * go ("0000-00-00 00:00:00" + 0 is 0). */
static const char *
ts_number(const char *digits)
{
	if (digits == NULL)
		return "0";
	while (*digits == '0')
		digits++;
	return *digits != '\0' ? digits : "0";
}

static bool
all_digits(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void
tpops_mailbox_free(struct tpops_mailbox *m)
{
	for (uint32_t i = 0; i < m->n; i++) {
		free(m->msgs[i].id);
		free(m->msgs[i].uidl);
	}
	free(m->msgs);
	if (m->lock != NULL)
		release_later(&m->lock, m->db);
	db_unref(&m->db);
	free(m);
}

static enum store_status
tpops_list(struct tpops_mailbox *m, char *err, size_t errsz)
{
	struct sql_param p = SQL_PARAM_STR(m->uid);
	struct sql_result *r = NULL;
	enum sql_status sst;
	size_t rows;

	sst = sql_pool_exec(m->db->pool, db_is_pg(m->db) ? list_pg : list_my,
	    &p, 1, &r, err, errsz);
	if (sst != SQL_OK)
		return STORE_TEMP;
	rows = sql_result_rows(r);
	if (rows > MAILBOX_MAX_MESSAGES) {
		(void)snprintf(err, errsz, "more than %u messages",
		    (unsigned)MAILBOX_MAX_MESSAGES);
		sql_result_free(&r);
		return STORE_PERM;
	}
	m->msgs = xcalloc(rows > 0 ? rows : 1, sizeof(*m->msgs));
	for (size_t i = 0; i < rows; i++) {
		const char *id = sql_result_get(r, i, 0, NULL);
		const char *uid = sql_result_get(r, i, 1, NULL);
		const char *ts = sql_result_get(r, i, 2, NULL);
		const char *sz = sql_result_get(r, i, 3, NULL);
		struct tpops_msg *msg = &m->msgs[m->n];
		uint64_t size = 0;

		/* Both columns are NOT NULL integers: anything else is not
		 * TPOPS's table, and such a row cannot be named safely. */
		if (!all_digits(id) || !all_digits(uid)) {
			log_warnx("tpops uid %s: a msg row without a numeric "
			    "id/uid is skipped", m->uid);
			continue;
		}
		/* A negative size (not tpops-store's) counts as 0. */
		if (sz != NULL && all_digits(sz))
			(void)parse_u64(sz, strlen(sz), &size);
		msg->id = xstrdup(id);
		msg->uidl = xasprintf("%s.%s.%s", id, uid, ts_number(ts));
		msg->size = size;
		m->total += size;
		m->n++;
	}
	sql_result_free(&r);
	return STORE_OK;
}

static enum store_status
tpops_open(const struct store_driver *drv, const char *path,
    const char *user, struct mailbox **mb_r, char *err, size_t errsz)
{
	struct tpops_mailbox *m;
	char name[40];
	enum sql_lock_status ls;
	enum store_status st;

	(void)user;
	*mb_r = NULL;
	m = xcalloc(1, sizeof(*m));
	m->pub.drv = drv;
	if (!uid_of_path(path, m->uid, sizeof(m->uid))) {
		(void)snprintf(err, errsz, "tpops location \"%s\": not /UID",
		    path);
		free(m);
		return STORE_PERM;
	}
	if ((m->db = db_ref_current()) == NULL) {
		(void)snprintf(err, errsz, "tpops:%s: no Sql database with "
		    "Schema \"tpops\" is configured", path);
		free(m);
		return STORE_PERM;
	}
	(void)snprintf(name, sizeof(name), "tpops:%s", m->uid);
	ls = sql_lock_take(m->db->pool, name, &m->lock, err, errsz);
	if (ls != SQL_LOCK_OK) {
		db_unref(&m->db);
		free(m);
		return ls == SQL_LOCK_BUSY ? STORE_IN_USE : STORE_TEMP;
	}
	if ((st = tpops_list(m, err, errsz)) != STORE_OK) {
		/* on a worker here: release now, not later */
		sql_lock_release(&m->lock);
		tpops_mailbox_free(m);
		return st;
	}
	*mb_r = &m->pub;
	return STORE_OK;
}

static uint32_t
tpops_count(const struct mailbox *pub)
{
	return tmb_cof(pub)->n;
}

static uint64_t
tpops_msg_size(const struct mailbox *pub, uint32_t idx)
{
	return tmb_cof(pub)->msgs[idx].size;
}

static const char *
tpops_msg_uidl(const struct mailbox *pub, uint32_t idx)
{
	return tmb_cof(pub)->msgs[idx].uidl;
}

static bool
tpops_size_is_hint(const struct mailbox *pub, uint32_t idx)
{
	(void)pub;
	(void)idx;
	return true;
}

/* doctor, migrate check: these are TPOPS's own UIDLs (msg.id is the
 * primary key, so "id.uid.T" is unique and RFC 1939-clean). */
static void
tpops_uidl_source(const struct mailbox *pub, char *buf, size_t bufsz)
{
	(void)snprintf(buf, bufsz, "tpops (TPOPS 0.4's msg table: "
	    "id.uid.timestamp; %u of %u messages have its UIDL)",
	    (unsigned)tmb_cof(pub)->n, (unsigned)tmb_cof(pub)->n);
}

static const char *
tpops_uidl_status(const struct mailbox *pub, uint32_t idx,
    const char **old_r)
{
	*old_r = tmb_cof(pub)->msgs[idx].uidl;
	return "kept";
}

static uint64_t
tpops_total_size(const struct mailbox *pub)
{
	return tmb_cof(pub)->total;
}

static void
tpops_mark_seen(struct mailbox *pub, uint32_t idx)
{
	/* TPOPS keeps no seen state */
	(void)pub;
	(void)idx;
}

static bool
tpops_commit_needed(const struct mailbox *pub, const uint8_t *deleted)
{
	/* Always: the commit (on a worker) releases the lock, so the next
	 * login, on any node, finds the mailbox free at once. */
	(void)pub;
	(void)deleted;
	return true;
}

static bool
is_deleted(const uint8_t *deleted, uint32_t i)
{
	return deleted != NULL && ((deleted[i / 8] >> (i % 8)) & 1);
}

/* DELETE ... WHERE uid = ? AND id IN (?, ...) for n ids. */
static char *
delete_stmt(size_t n)
{
	size_t len = 64 + 3 * n;
	char *s = xmalloc(len);
	size_t off = (size_t)snprintf(s, len,
	    "DELETE FROM msg WHERE uid = ? AND id IN (");

	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, len - off, i == 0 ? "?" :
		    ",?");
	(void)snprintf(s + off, len - off, ")");
	return s;
}

static enum store_status
tpops_delete(struct tpops_mailbox *m, const uint8_t *deleted,
    uint32_t *n_deleted_r)
{
	struct sql_param *params = NULL;
	struct sql_conn *c = NULL;
	char err[SQL_ERR_MAX];
	uint32_t marked = 0, i = 0;
	enum sql_status sst;

	for (uint32_t k = 0; k < m->n; k++)
		marked += is_deleted(deleted, k);
	if (marked == 0)
		return STORE_OK;
	/* Another node may own the mailbox if our lock is gone. */
	if (!sql_lock_check(m->lock, err, sizeof(err))) {
		log_error("tpops uid %s: nothing deleted: %s", m->uid, err);
		return STORE_TEMP;
	}
	if ((sst = sql_txn_begin(m->db->pool, &c, err, sizeof(err))) !=
	    SQL_OK) {
		log_error("tpops uid %s: nothing deleted: %s", m->uid, err);
		return STORE_TEMP;
	}
	params = xcalloc(TPOPS_DELETE_BATCH + 1, sizeof(*params));
	params[0] = SQL_PARAM_STR(m->uid);
	while (sst == SQL_OK && i < m->n) {
		size_t n = 0;
		char *stmt;

		for (; i < m->n && n < TPOPS_DELETE_BATCH; i++)
			if (is_deleted(deleted, i))
				params[1 + n++] = SQL_PARAM_STR(m->msgs[i].id);
		if (n == 0)
			break;
		stmt = delete_stmt(n);
		sst = sql_exec(c, stmt, params, 1 + n, NULL, err, sizeof(err));
		free(stmt);
	}
	free(params);
	if (sst != SQL_OK) {
		(void)sql_txn_end(m->db->pool, &c, false, NULL, 0);
		log_error("tpops uid %s: nothing deleted: %s", m->uid, err);
		return STORE_TEMP;
	}
	if ((sst = sql_txn_end(m->db->pool, &c, true, err, sizeof(err))) !=
	    SQL_OK) {
		log_error("tpops uid %s: deletions %s: %s", m->uid,
		    sst == SQL_ERR_CONN ? "not confirmed (the database went "
		    "away during COMMIT)" : "not committed", err);
		return STORE_TEMP;
	}
	/* rows another program removed meanwhile count as deleted too */
	*n_deleted_r = marked;
	return STORE_OK;
}

static enum store_status
tpops_commit(struct mailbox *pub, const uint8_t *deleted,
    uint32_t *n_deleted_r)
{
	struct tpops_mailbox *m = tmb_of(pub);
	enum store_status st;

	*n_deleted_r = 0;
	st = tpops_delete(m, deleted, n_deleted_r);
	/* On the worker: the lock goes now (close follows). */
	sql_lock_release(&m->lock);
	return st;
}

static void
tpops_close(struct mailbox *pub)
{
	tpops_mailbox_free(tmb_of(pub));
}

static unsigned
tpops_check(const struct store_driver *drv, const char *user,
    const char *path, FILE *out)
{
	char uid[24];
	struct tpops_db *db = db_ref_current();
	unsigned n = 0;

	(void)drv;
	if (!uid_of_path(path, uid, sizeof(uid))) {
		fprintf(out, "warning: user %s: tpops location \"%s\" is not "
		    "/UID\n", user, path);
		n++;
	} else if (db == NULL) {
		fprintf(out, "warning: user %s: tpops:%s needs Sql with Schema "
		    "\"tpops\"\n", user, path);
		n++;
	}
	db_unref(&db);
	return n;
}

/* ---- readers --------------------------------------------------------- */

struct tpops_reader {
	struct msg_reader pub;
	struct tpops_db *db;		/* ref */
	char *id;
	char uid[24];
	bool prepared;
	struct sql_result *res;		/* header, body */
	/* what is sent: header, "\n", body, each LF as CRLF */
	const char *part[3];
	size_t plen[3];
	unsigned pi;			/* part being read */
	size_t pos;
	bool lf_next;			/* a CR went out, its LF is next */
};

static const char retr_stmt[] =
    "SELECT header, body FROM msg WHERE id = ? AND uid = ?";

static enum store_status
tpops_msg_open(struct mailbox *pub, uint32_t idx, struct msg_reader **r_r)
{
	struct tpops_mailbox *m = tmb_of(pub);
	struct tpops_reader *r = xcalloc(1, sizeof(*r));

	r->pub.drv = pub->drv;
	(void)pthread_mutex_lock(&tpops_mu);
	m->db->refs++;
	(void)pthread_mutex_unlock(&tpops_mu);
	r->db = m->db;
	r->id = xstrdup(m->msgs[idx].id);
	memcpy(r->uid, m->uid, sizeof(r->uid));
	*r_r = &r->pub;
	return STORE_OK;
}

static enum store_status
tpops_msg_prepare(struct msg_reader *pub)
{
	struct tpops_reader *r = (struct tpops_reader *)pub;
	struct sql_param p[2] = { SQL_PARAM_STR(r->id),
	    SQL_PARAM_STR(r->uid) };
	char err[SQL_ERR_MAX];

	if (r->prepared)
		return r->res != NULL ? STORE_OK : STORE_TEMP;
	r->prepared = true;
	if (sql_pool_exec(r->db->pool, retr_stmt, p, 2, &r->res, err,
	    sizeof(err)) != SQL_OK) {
		log_error("tpops msg %s: %s", r->id, err);
		errno = EIO;
		return STORE_TEMP;
	}
	if (sql_result_rows(r->res) != 1) {
		sql_result_free(&r->res);
		errno = ENOENT;
		return STORE_PERM;
	}
	r->part[0] = sql_result_get(r->res, 0, 0, &r->plen[0]);
	r->part[1] = "\n";
	r->plen[1] = 1;
	r->part[2] = sql_result_get(r->res, 0, 1, &r->plen[2]);
	for (int i = 0; i < 3; i += 2)
		if (r->part[i] == NULL) {
			r->part[i] = "";
			r->plen[i] = 0;
		}
	return STORE_OK;
}

static bool
tpops_msg_prepared(const struct msg_reader *pub)
{
	return ((const struct tpops_reader *)pub)->prepared;
}

static ssize_t
tpops_msg_read(struct msg_reader *pub, void *buf, size_t len)
{
	struct tpops_reader *r = (struct tpops_reader *)pub;
	unsigned char *out = buf;
	size_t n = 0;

	if (!r->prepared)
		(void)tpops_msg_prepare(pub);
	if (r->res == NULL) {
		errno = EIO;
		return -1;
	}
	while (n < len) {
		const char *src, *lf;
		size_t left, run;

		if (r->lf_next) {
			out[n++] = '\n';
			r->lf_next = false;
			continue;
		}
		if (r->pi == 3)
			break;
		if (r->pos == r->plen[r->pi]) {
			r->pi++;
			r->pos = 0;
			continue;
		}
		src = r->part[r->pi] + r->pos;
		left = r->plen[r->pi] - r->pos;
		run = left < len - n ? left : len - n;
		if ((lf = memchr(src, '\n', run)) != NULL)
			run = (size_t)(lf - src);
		memcpy(out + n, src, run);
		n += run;
		r->pos += run;
		if (lf != NULL) {
			out[n++] = '\r';
			r->pos++;
			r->lf_next = true;
		}
	}
	return (ssize_t)n;
}

static void
tpops_msg_close(struct msg_reader *pub)
{
	struct tpops_reader *r = (struct tpops_reader *)pub;

	sql_result_free(&r->res);
	db_unref(&r->db);
	free(r->id);
	free(r);
}

/* ---- delivery -------------------------------------------------------- */

struct tpops_delivery {
	struct store_delivery pub;
	struct tpops_db *db;		/* ref */
	char uid[24];
	char *buf;			/* the message, LF line ends */
	size_t len, cap;
	bool too_big;
};

static enum store_status
tpops_deliver_begin(const struct store_driver *drv, const char *path,
    const char *user, struct store_delivery **d_r, char *err, size_t errsz)
{
	struct tpops_delivery *d;

	(void)user;
	*d_r = NULL;
	d = xcalloc(1, sizeof(*d));
	d->pub.drv = drv;
	if (!uid_of_path(path, d->uid, sizeof(d->uid))) {
		(void)snprintf(err, errsz, "tpops location \"%s\": not /UID",
		    path);
		free(d);
		return STORE_PERM;
	}
	if ((d->db = db_ref_current()) == NULL) {
		(void)snprintf(err, errsz, "tpops:%s: no Sql database with "
		    "Schema \"tpops\" is configured", path);
		free(d);
		return STORE_PERM;
	}
	*d_r = &d->pub;
	return STORE_OK;
}

static enum store_status
tpops_deliver_write(struct store_delivery *pub, const void *buf, size_t len)
{
	struct tpops_delivery *d = (struct tpops_delivery *)pub;

	/* header + body: two MEDIUMTEXTs at most; no more is kept */
	if (d->too_big || len > 2 * (size_t)TPOPS_TEXT_MAX - d->len) {
		d->too_big = true;
		return STORE_OK;	/* commit says so */
	}
	if (d->len + len > d->cap) {
		size_t cap = d->cap > 0 ? d->cap : 64 * 1024;

		while (cap < d->len + len)
			cap *= 2;
		d->buf = xreallocarray(d->buf, cap, 1);
		d->cap = cap;
	}
	memcpy(d->buf + d->len, buf, len);
	d->len += len;
	return STORE_OK;
}

static void
tpops_deliver_abort(struct store_delivery *pub)
{
	struct tpops_delivery *d = (struct tpops_delivery *)pub;

	db_unref(&d->db);
	free(d->buf);
	free(d);
}

static const char quota_pg[] = "SELECT quota FROM \"user\" WHERE uid = ?";
static const char quota_my[] = "SELECT quota FROM `user` WHERE uid = ?";
static const char used_stmt[] =
    "SELECT COALESCE(SUM(size), 0) FROM msg WHERE uid = ?";
static const char insert_pg[] =
    "INSERT INTO msg (uid, msgno, \"timestamp\", header, body, size) "
    "VALUES (?, 0, date_trunc('second', localtimestamp), ?, ?, ?) "
    "RETURNING id";
static const char insert_my[] =
    "INSERT INTO msg (uid, msgno, `timestamp`, header, body, size) "
    "VALUES (?, 0, NOW(), ?, ?, ?)";

/* One value of a one-row result as a u64 (NULL: 0). */
static bool
result_u64(const struct sql_result *r, uint64_t *v)
{
	const char *s;

	*v = 0;
	if (r == NULL || sql_result_rows(r) != 1)
		return false;
	s = sql_result_get(r, 0, 0, NULL);
	if (s == NULL)
		return true;
	if (*s == '-')
		return true;		/* a negative quota: none */
	return parse_u64(s, strlen(s), v);
}

/*
 * In the transaction on c: the quota check, then the row.  STORE_PERM
 * for an unknown uid or a full mailbox (the delivery agent's 73, as
 * tpops-store's EX_CANTCREAT).
 */
static enum store_status
tpops_insert(struct tpops_delivery *d, struct sql_conn *c, char *id,
    size_t idsz, char *err, size_t errsz)
{
	bool pg = db_is_pg(d->db);
	const char *msg = d->buf != NULL ? d->buf : "";
	const char *sep = d->len > 0 ? memmem(msg, d->len, "\n\n", 2) : NULL;
	size_t hlen = sep != NULL ? (size_t)(sep - msg) + 1 : d->len;
	size_t boff = sep != NULL ? hlen + 1 : d->len;
	uint64_t size = d->len, quota, used;
	struct sql_param p[4];
	struct sql_result *r = NULL;
	char sizestr[24];
	enum sql_status sst;

	for (size_t i = 0; i < d->len; i++)
		size += msg[i] == '\n';
	p[0] = SQL_PARAM_STR(d->uid);
	sst = sql_exec(c, pg ? quota_pg : quota_my, p, 1, &r, err, errsz);
	if (sst != SQL_OK)
		return STORE_TEMP;
	if (sql_result_rows(r) == 0) {
		sql_result_free(&r);
		(void)snprintf(err, errsz, "no user with uid %s", d->uid);
		return STORE_PERM;
	}
	if (!result_u64(r, &quota)) {
		sql_result_free(&r);
		(void)snprintf(err, errsz, "user.quota is not a number");
		return STORE_TEMP;
	}
	sql_result_free(&r);
	if (quota > 0) {
		sst = sql_exec(c, used_stmt, p, 1, &r, err, errsz);
		if (sst != SQL_OK || !result_u64(r, &used)) {
			sql_result_free(&r);
			return STORE_TEMP;
		}
		sql_result_free(&r);
		if (used + size > quota) {
			(void)snprintf(err, errsz, "quota limit exceeded");
			return STORE_PERM;
		}
	}
	(void)snprintf(sizestr, sizeof(sizestr), "%" PRIu64, size);
	p[1] = (struct sql_param){ msg, hlen, false };
	p[2] = (struct sql_param){ msg + boff, d->len - boff, false };
	p[3] = SQL_PARAM_STR(sizestr);
	if ((sst = sql_exec(c, pg ? insert_pg : insert_my, p, 4, &r, err,
	    errsz)) != SQL_OK)
		return store_of_sql(sst);
	if (!pg) {
		sql_result_free(&r);
		if (sql_exec(c, "SELECT LAST_INSERT_ID()", NULL, 0, &r, err,
		    errsz) != SQL_OK)
			r = NULL;	/* the row is in; only its id is unknown */
	}
	if (id != NULL && idsz > 0) {
		const char *v = r != NULL && sql_result_rows(r) == 1 ?
		    sql_result_get(r, 0, 0, NULL) : NULL;

		(void)snprintf(id, idsz, "tpops:%s", v != NULL ? v : "?");
	}
	sql_result_free(&r);
	return STORE_OK;
}

static enum store_status
tpops_deliver_commit(struct store_delivery *pub, char *id, size_t idsz)
{
	struct tpops_delivery *d = (struct tpops_delivery *)pub;
	struct sql_conn *c = NULL;
	char err[SQL_ERR_MAX] = "";
	enum store_status st;
	enum sql_status sst;
	const char *sep = d->buf != NULL && d->len > 0 ?
	    memmem(d->buf, d->len, "\n\n", 2) : NULL;
	size_t hlen = sep != NULL ? (size_t)(sep - d->buf) + 1 : d->len;

	if (d->too_big || hlen > TPOPS_TEXT_MAX ||
	    d->len - hlen > TPOPS_TEXT_MAX + 1u) {
		log_error("tpops uid %s: message too large for TPOPS's msg "
		    "table (MEDIUMTEXT header and body)", d->uid);
		tpops_deliver_abort(pub);
		return STORE_PERM;
	}
	if (d->len > 0 && memchr(d->buf, '\0', d->len) != NULL) {
		log_error("tpops uid %s: message holds a NUL byte, which a "
		    "text column cannot", d->uid);
		tpops_deliver_abort(pub);
		return STORE_PERM;
	}
	if ((sst = sql_txn_begin(d->db->pool, &c, err, sizeof(err))) !=
	    SQL_OK) {
		log_error("tpops uid %s: not delivered: %s", d->uid, err);
		tpops_deliver_abort(pub);
		return STORE_TEMP;
	}
	st = tpops_insert(d, c, id, idsz, err, sizeof(err));
	if (st != STORE_OK) {
		(void)sql_txn_end(d->db->pool, &c, false, NULL, 0);
		log_error("tpops uid %s: not delivered: %s", d->uid, err);
	} else if ((sst = sql_txn_end(d->db->pool, &c, true, err,
	    sizeof(err))) != SQL_OK) {
		/* not acknowledged: the MTA tries again (a lost COMMIT
		 * answer may mean a second copy, never no copy) */
		log_error("tpops uid %s: not delivered: COMMIT: %s", d->uid,
		    err);
		st = STORE_TEMP;
	}
	tpops_deliver_abort(pub);
	return st;
}

const struct store_driver store_driver_tpops = {
	.name = "tpops",
	.fs = NULL,
	.lf_store = true,
	.no_files = true,
	.open = tpops_open,
	.count = tpops_count,
	.msg_size = tpops_msg_size,
	.msg_uidl = tpops_msg_uidl,
	.msg_size_is_hint = tpops_size_is_hint,
	.uidl_source = tpops_uidl_source,
	.uidl_status = tpops_uidl_status,
	.total_size = tpops_total_size,
	.mark_seen = tpops_mark_seen,
	.commit_needed = tpops_commit_needed,
	.commit = tpops_commit,
	.close = tpops_close,
	.check = tpops_check,
	.msg_open = tpops_msg_open,
	.msg_read = tpops_msg_read,
	.msg_unchanged = NULL,	/* one SELECT: a consistent copy */
	.msg_wire_fd = NULL,
	.msg_wire_job = NULL,
	.msg_close = tpops_msg_close,
	.msg_prepare = tpops_msg_prepare,
	.msg_prepared = tpops_msg_prepared,
	.deliver_begin = tpops_deliver_begin,
	.deliver_sender = NULL,
	.deliver_write = tpops_deliver_write,
	.deliver_commit = tpops_deliver_commit,
	.deliver_abort = tpops_deliver_abort,
};
