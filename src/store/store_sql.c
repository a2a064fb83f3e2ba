/*
 * store_sql.c - the "sql:" driver: mailboxes in PostgreSQL or
 * MariaDB/MySQL (Pop3Server.Sql), posuto's schema (docs/sql.md:
 * posuto_users, posuto_messages, posuto_message_chunks).
 *
 * "sql:" is the mailbox of the user who logs in (or is delivered to),
 * "sql:NAME" that of the posuto_users row NAME.
 *
 * Session lock: sql_lock_take() on the name, a database lock (advisory
 * lock / GET_LOCK) shared by every node on the database and dropped by
 * the server when the node dies.  The snapshot is one SELECT of the
 * message list (id, UIDL, wire size, flags): no content is read at login.
 *
 * Content is kept in wire form (CRLF line ends, not dot-stuffed) in
 * chunks of SQL_CHUNK_SIZE, so sizes are exact without reading, a reader
 * holds one chunk, and a delivery buffers one chunk.  Readers never
 * block: msg_read() gives what the last msg_fill() fetched and says
 * EAGAIN when that is used up; the caller runs msg_fill() (one SELECT per
 * chunk) on a worker thread (store.h); the first chunk is the prepare
 * (store.h), fetched before the +OK.  Every call that talks to the
 * database runs on a worker (open, fill, commit, close, delivery), as the
 * userdb's lookups do (sql.h says why a worker pool and not an
 * asynchronous API).
 *
 * QUIT's deletions and seen flags are one transaction, after checking
 * that the lock is still held (a database restart drops it, and another
 * node may own the mailbox since).  A delivery takes its UIDL from
 * posuto_users.next_uid in a short transaction of its own (so a UIDL is
 * never used twice, even by a delivery that fails later), then inserts
 * the message row and its chunks as they stream in, in one transaction
 * committed at deliver_commit: until then no reader sees any of it, and
 * a node that dies mid-delivery leaves nothing (the server rolls back).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "sql/sql.h"
#include "store/store_driver.h"
#include "store/store_int.h"	/* store_open_view */

/* Ids per DELETE/UPDATE statement at commit. */
#define SSQL_BATCH	256

/* --- the database (one per configuration) ----------------------------- */

struct ssql_db {
	int refs;			/* under ssql_mu */
	struct sql_cfg cfg;		/* own copy: the pool points at it */
	struct sql_pool *pool;
	unsigned fork_gen;		/* ssql_fork_gen it was last used in */
};

static pthread_mutex_t ssql_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ssql_db *ssql_cur;
static pthread_once_t ssql_once = PTHREAD_ONCE_INIT;
/* Bumped in every fork()ed child (pthread_atfork), so a pool inherited
 * from the parent forgets the parent's connections before its first
 * use (test_store_contract forks; posuto deliver forks to drop root). */
static volatile unsigned ssql_fork_gen;

static void
ssql_atfork_child(void)
{
	ssql_fork_gen++;
	/* another thread of the parent may have held it */
	(void)pthread_mutex_init(&ssql_mu, NULL);
}

static void
ssql_init_once(void)
{
	(void)pthread_atfork(NULL, NULL, ssql_atfork_child);
}

static void
ssql_db_free(struct ssql_db *db)
{
	sql_pool_free(&db->pool);
	sql_cfg_release(&db->cfg);
	free(db);
}

static void
ssql_db_unref(struct ssql_db **dbp)
{
	struct ssql_db *db = *dbp;
	bool last;

	if (db == NULL)
		return;
	*dbp = NULL;
	(void)pthread_mutex_lock(&ssql_mu);
	last = --db->refs == 0;
	(void)pthread_mutex_unlock(&ssql_mu);
	if (last)
		ssql_db_free(db);
}

void
store_sql_configure(const struct sql_cfg *cfg)
{
	struct ssql_db *db, *old;
	char err[SQL_ERR_MAX];

	(void)pthread_once(&ssql_once, ssql_init_once);
	if (cfg == NULL || cfg->driver == SQL_DRIVER_NONE) {
		(void)pthread_mutex_lock(&ssql_mu);
		old = ssql_cur;
		ssql_cur = NULL;
		(void)pthread_mutex_unlock(&ssql_mu);
		ssql_db_unref(&old);
		return;
	}
	(void)pthread_mutex_lock(&ssql_mu);
	if (ssql_cur != NULL && sql_cfg_same(&ssql_cur->cfg, cfg)) {
		(void)pthread_mutex_unlock(&ssql_mu);
		return;
	}
	(void)pthread_mutex_unlock(&ssql_mu);
	db = xcalloc(1, sizeof(*db));
	db->refs = 1;
	sql_cfg_copy(&db->cfg, cfg);
	db->fork_gen = ssql_fork_gen;
	/* Reads PasswordFile now, as the user posuto starts as; connects
	 * lazily, so a database that is down does not stop a start. */
	if ((db->pool = sql_pool_new(&db->cfg, err, sizeof(err))) == NULL) {
		log_error("sql store: %s", err);
		ssql_db_free(db);
		return;		/* keeps the previous one, if any */
	}
	(void)pthread_mutex_lock(&ssql_mu);
	old = ssql_cur;
	ssql_cur = db;
	(void)pthread_mutex_unlock(&ssql_mu);
	ssql_db_unref(&old);
}

/* The current database, referenced; NULL if none is configured. */
static struct ssql_db *
ssql_db_get(void)
{
	struct ssql_db *db;

	(void)pthread_mutex_lock(&ssql_mu);
	if ((db = ssql_cur) != NULL)
		db->refs++;
	(void)pthread_mutex_unlock(&ssql_mu);
	return db;
}

/* db's pool, made to forget a parent's connections after a fork. */
static struct sql_pool *
ssql_pool(struct ssql_db *db)
{
	unsigned gen = ssql_fork_gen;

	if (db->fork_gen != gen) {
		sql_pool_after_fork(db->pool);
		db->fork_gen = gen;
	}
	return db->pool;
}

static bool
ssql_pg(const struct ssql_db *db)
{
	return db->cfg.driver == SQL_DRIVER_PGSQL;
}

/* A database for a location; STORE_PERM with err if there is none. */
static enum store_status
ssql_db_for(struct ssql_db **db_r, char *err, size_t errsz)
{
	struct ssql_db *db = ssql_db_get();

	*db_r = NULL;
	if (db == NULL) {
		(void)snprintf(err, errsz, "sql: mailbox, but no Sql database "
		    "is configured");
		return STORE_PERM;
	}
	if (db->cfg.schema != SQL_SCHEMA_POSUTO) {
		(void)snprintf(err, errsz, "sql: mailbox needs Sql Schema "
		    "\"posuto\"");
		ssql_db_unref(&db);
		return STORE_PERM;
	}
	*db_r = db;
	return STORE_OK;
}

/* An id or count column; false if it is not one. */
static bool
col_u64(const struct sql_result *r, size_t row, size_t col, uint64_t *v)
{
	size_t len;
	const char *s = sql_result_get(r, row, col, &len);

	return s != NULL && parse_u64(s, len, v);
}

/* RFC 1939 §7: 1..70 characters 0x21..0x7E. */
static bool
uidl_valid(const char *u, size_t len)
{
	if (len < 1 || len > 70)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return true;
}

static void
u64_param(char *buf, size_t bufsz, uint64_t v, struct sql_param *p)
{
	int n = snprintf(buf, bufsz, "%" PRIu64, v);

	p->data = buf;
	p->len = (size_t)n;
	p->binary = false;
}

/* --- mailboxes -------------------------------------------------------- */

#define SSQL_SEEN	1u		/* flags bit 0: retrieved once */

struct ssql_msg {
	uint64_t id;
	uint64_t size;
	int64_t arrival;		/* arrived_at, seconds since the epoch */
	uint64_t first_retr;		/* first_retr_at (Expire), 0: never */
	uint32_t flags;
	bool seen_now;			/* RETRed in this session */
	char uidl[71];
};

struct ssql_mailbox {
	struct mailbox base;		/* first: see store_driver.h */
	struct ssql_db *db;
	struct sql_lock *lock;
	char *name;
	uint64_t user_id;		/* 0: no posuto_users row */
	uint64_t last_login;		/* last_login_at, 0: none */
	uint32_t count;
	uint64_t total;
	struct ssql_msg *msgs;
};

static struct ssql_mailbox *
ssql_of(const struct mailbox *mb)
{
	return (struct ssql_mailbox *)(uintptr_t)mb;
}

static const char q_list_pg[] =
    "SELECT u.id, m.id, m.uidl, m.wire_size, m.flags, "
    "CAST(EXTRACT(EPOCH FROM m.arrived_at) AS bigint), "
    "CAST(EXTRACT(EPOCH FROM m.first_retr_at) AS bigint), u.last_login_at "
    "FROM posuto_users u LEFT JOIN posuto_messages m ON m.user_id = u.id "
    "WHERE u.name = ? ORDER BY m.id";
static const char q_list_my[] =
    "SELECT u.id, m.id, m.uidl, m.wire_size, m.flags, "
    "UNIX_TIMESTAMP(m.arrived_at), UNIX_TIMESTAMP(m.first_retr_at), "
    "u.last_login_at "
    "FROM posuto_users u LEFT JOIN posuto_messages m ON m.user_id = u.id "
    "WHERE u.name = ? ORDER BY m.id";

/* Fills mb's snapshot from the list; false with err if it is unusable. */
static bool
ssql_load_list(struct ssql_mailbox *mb, const struct sql_result *r,
    char *err, size_t errsz)
{
	size_t rows = sql_result_rows(r);

	mb->msgs = xcalloc(rows + 1, sizeof(*mb->msgs));
	for (size_t i = 0; i < rows; i++) {
		struct ssql_msg *m = &mb->msgs[mb->count];
		const char *u;
		uint64_t flags;
		size_t len;

		if (!col_u64(r, i, 0, &mb->user_id)) {
			(void)snprintf(err, errsz, "posuto_users.id is not "
			    "a number");
			return false;
		}
		if (!col_u64(r, i, 7, &mb->last_login))
			mb->last_login = 0;	/* NULL: never */
		if (sql_result_get(r, i, 1, NULL) == NULL)
			continue;	/* a user without messages */
		u = sql_result_get(r, i, 2, &len);
		if (!col_u64(r, i, 1, &m->id) || !col_u64(r, i, 3, &m->size) ||
		    !col_u64(r, i, 4, &flags) || u == NULL ||
		    !uidl_valid(u, len)) {
			/* never served, never deleted: someone's row to fix */
			log_warnx("sql store: user %s: message row %s is not "
			    "usable (UIDL, size or flags)", mb->name,
			    sql_result_get(r, i, 1, NULL));
			continue;
		}
		if (mb->count == UINT32_MAX - 1) {
			(void)snprintf(err, errsz, "too many messages");
			return false;
		}
		memcpy(m->uidl, u, len);
		m->uidl[len] = '\0';
		{
			uint64_t t;

			/* informational (import/export): 0 if unreadable */
			m->arrival = col_u64(r, i, 5, &t) && t <= INT64_MAX ?
			    (int64_t)t : 0;
			/* NULL or unreadable: not retrieved, never due */
			m->first_retr = col_u64(r, i, 6, &t) ? t : 0;
		}
		m->flags = (uint32_t)flags;
		mb->total += m->size;
		mb->count++;
	}
	return true;
}

static void
ssql_mailbox_free(struct ssql_mailbox *mb)
{
	sql_lock_release(&mb->lock);
	ssql_db_unref(&mb->db);
	free(mb->name);
	free(mb->msgs);
	free(mb);
}

static enum store_status
ssql_open(const struct store_driver *drv, const char *path, const char *user,
    struct mailbox **mb_r, char *err, size_t errsz)
{
	struct ssql_mailbox *mb;
	struct ssql_db *db;
	struct sql_result *r = NULL;
	struct sql_param p;
	char lerr[SQL_ERR_MAX];
	enum store_status st;

	*mb_r = NULL;
	if ((st = ssql_db_for(&db, err, errsz)) != STORE_OK)
		return st;
	mb = xcalloc(1, sizeof(*mb));
	mb->base.drv = drv;
	mb->db = db;
	mb->name = xstrdup(*path != '\0' ? path : user);
	/* a viewer (mailbox_open_view: the web admin) reads only and must
	 * never make a login fail with [IN-USE]; with no lock its commit
	 * refuses (ssql_commit) */
	if (store_open_view)
		goto list;
	switch (sql_lock_take(ssql_pool(db), mb->name, &mb->lock, lerr,
	    sizeof(lerr))) {
	case SQL_LOCK_OK:
		break;
	case SQL_LOCK_BUSY:
		(void)snprintf(err, errsz, "%s", lerr);
		ssql_mailbox_free(mb);
		return STORE_IN_USE;
	case SQL_LOCK_TEMP:
	default:
		(void)snprintf(err, errsz, "sql lock: %s", lerr);
		ssql_mailbox_free(mb);
		return STORE_TEMP;
	}
list:
	p = SQL_PARAM_STR(mb->name);
	if (sql_pool_exec(ssql_pool(db), ssql_pg(db) ? q_list_pg : q_list_my,
	    &p, 1, &r, lerr,
	    sizeof(lerr)) != SQL_OK) {
		(void)snprintf(err, errsz, "sql: %s", lerr);
		ssql_mailbox_free(mb);
		return STORE_TEMP;
	}
	/* no row: no such user yet, an empty mailbox (as a missing
	 * Maildir); delivery refuses it, as nothing can keep its mail */
	if (!ssql_load_list(mb, r, err, errsz)) {
		sql_result_free(&r);
		ssql_mailbox_free(mb);
		return STORE_TEMP;
	}
	sql_result_free(&r);
	*mb_r = &mb->base;
	return STORE_OK;
}

static uint32_t
ssql_count(const struct mailbox *mb)
{
	return ssql_of(mb)->count;
}

static uint64_t
ssql_msg_size(const struct mailbox *mb, uint32_t idx)
{
	return ssql_of(mb)->msgs[idx].size;
}

static const char *
ssql_msg_uidl(const struct mailbox *mb, uint32_t idx)
{
	return ssql_of(mb)->msgs[idx].uidl;
}

static int64_t
ssql_msg_arrival(const struct mailbox *mb, uint32_t idx)
{
	return ssql_of(mb)->msgs[idx].arrival;
}

static uint64_t
ssql_total_size(const struct mailbox *mb)
{
	return ssql_of(mb)->total;
}

static void
ssql_mark_seen(struct mailbox *mb, uint32_t idx)
{
	ssql_of(mb)->msgs[idx].seen_now = true;
}

static bool
is_marked(const uint8_t *deleted, uint32_t i)
{
	return deleted != NULL && ((deleted[i / 8] >> (i % 8)) & 1);
}

static bool
seen_to_record(const struct ssql_msg *m)
{
	return m->seen_now && !(m->flags & SSQL_SEEN);
}

static bool
ssql_commit_needed(const struct mailbox *pub, const uint8_t *deleted)
{
	const struct ssql_mailbox *mb = ssql_of(pub);

	for (uint32_t i = 0; i < mb->count; i++)
		if (is_marked(deleted, i) || seen_to_record(&mb->msgs[i]))
			return true;
	return false;
}

/* Runs stmt_head "(?, ?, ...)" over every message that want() selects,
 * SSQL_BATCH ids at a time, user_id first. */
static enum sql_status
ssql_batch(struct sql_conn *c, struct ssql_mailbox *mb, const char *head,
    const uint8_t *deleted, bool del, char *err, size_t errsz)
{
	struct sql_param params[SSQL_BATCH + 1];
	char nums[SSQL_BATCH + 1][24];
	char stmt[512 + SSQL_BATCH * 3];
	uint32_t i = 0;

	u64_param(nums[0], sizeof(nums[0]), mb->user_id, &params[0]);
	while (i < mb->count) {
		size_t n = 0, off;
		enum sql_status st;

		for (; i < mb->count && n < SSQL_BATCH; i++) {
			const struct ssql_msg *m = &mb->msgs[i];
			bool want = del ? is_marked(deleted, i) :
			    !is_marked(deleted, i) && seen_to_record(m);

			if (want) {
				n++;
				u64_param(nums[n], sizeof(nums[n]), m->id,
				    &params[n]);
			}
		}
		if (n == 0)
			break;
		/* only placeholders are added to the text, never a value */
		off = (size_t)snprintf(stmt, sizeof(stmt), "%s (?", head);
		for (size_t k = 1; k < n; k++) {
			memcpy(stmt + off, ",?", 2);
			off += 2;
		}
		memcpy(stmt + off, ")", 2);
		st = sql_exec(c, stmt, params, n + 1, NULL, err, errsz);
		if (st != SQL_OK)
			return st;
	}
	return SQL_OK;
}

static const char q_delete[] =
    "DELETE FROM posuto_messages WHERE user_id = ? AND id IN";
static const char q_seen[] =
    "UPDATE posuto_messages SET flags = flags | 1, first_retr_at = "
    "COALESCE(first_retr_at, CURRENT_TIMESTAMP) WHERE user_id = ? AND id IN";

static enum store_status
ssql_commit(struct mailbox *pub, const uint8_t *deleted, uint32_t *n_r)
{
	struct ssql_mailbox *mb = ssql_of(pub);
	struct sql_pool *pool = ssql_pool(mb->db);
	char err[SQL_ERR_MAX];
	enum sql_status st = SQL_ERR_CONN;
	uint32_t n = 0;

	*n_r = 0;
	if (!ssql_commit_needed(pub, deleted))
		return STORE_OK;
	/* Another node may own the mailbox once our lock is gone. */
	if (mb->lock == NULL || !sql_lock_check(mb->lock, err, sizeof(err))) {
		log_warnx("sql store: user %s: nothing deleted: %s", mb->name,
		    err);
		return STORE_TEMP;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused;
		struct sql_conn *c = sql_pool_get(pool, &reused, err,
		    sizeof(err));

		if (c == NULL)
			break;
		st = sql_begin(c, err, sizeof(err));
		if (st == SQL_ERR_CONN && reused) {
			/* died idle in the pool (database restart) */
			sql_pool_put(pool, &c, true);
			continue;
		}
		if (st == SQL_OK)
			st = ssql_batch(c, mb, q_delete, deleted, true, err,
			    sizeof(err));
		if (st == SQL_OK)
			st = ssql_batch(c, mb, q_seen, deleted, false, err,
			    sizeof(err));
		if (st == SQL_OK)
			st = sql_commit(c, err, sizeof(err));
		else if (st == SQL_ERR_QUERY && sql_rollback(c) != SQL_OK)
			st = SQL_ERR_CONN;
		sql_pool_put(pool, &c, st == SQL_ERR_CONN);
		break;
	}
	if (st != SQL_OK) {
		/* the transaction is rolled back (or the server does it
		 * when the connection drops): nothing is deleted */
		log_warnx("sql store: user %s: commit failed, nothing "
		    "deleted: %s", mb->name, err);
		return STORE_TEMP;
	}
	for (uint32_t i = 0; i < mb->count; i++) {
		if (is_marked(deleted, i))
			n++;
		else if (mb->msgs[i].seen_now)
			mb->msgs[i].flags |= SSQL_SEEN;
	}
	*n_r = n;
	return STORE_OK;
}

/*
 * Expire (store_policy.h): due are messages first retrieved at least days
 * ago, by first_retr_at, or retrieved in this session (first_retr_at is
 * set by this very commit) with Expire 0.  They are deleted in the same
 * transaction as the session's DELEs, so either all of it happens or
 * none.  Without a session (the daemon's job) only due ones are deleted.
 */
static bool
expire_due(uint64_t first, int days, uint64_t now)
{
	return first > 0 && days >= 0 && first <= now &&
	    now - first >= (uint64_t)days * 86400;
}

static enum store_status
ssql_commit_expire(struct mailbox *pub, uint8_t *deleted, int days,
    uint64_t now, const char *user, bool session, uint32_t *n_deleted_r,
    uint32_t *n_expired_r)
{
	struct ssql_mailbox *mb = ssql_of(pub);
	uint32_t n_expired = 0;
	enum store_status st;

	*n_deleted_r = 0;
	*n_expired_r = 0;
	for (uint32_t i = 0; i < mb->count; i++) {
		struct ssql_msg *m = &mb->msgs[i];
		uint64_t first = m->first_retr;

		if (first == 0 && session && m->seen_now)
			first = now;	/* retrieved for the first time */
		if (is_marked(deleted, i) || !expire_due(first, days, now))
			continue;
		deleted[i / 8] |= (uint8_t)(1u << (i % 8));
		n_expired++;
		log_info("expire: deleting user=%s uidl=%s age=%llus "
		    "expire=%dd", user, m->uidl,
		    (unsigned long long)(now - first), days);
	}
	st = ssql_commit(pub, deleted, n_deleted_r);
	*n_expired_r = st == STORE_OK ? n_expired : 0;
	return st;
}

static bool
ssql_last_login(const struct mailbox *mb, uint64_t *t_r)
{
	*t_r = ssql_of(mb)->last_login;
	return *t_r > 0;
}

static const char q_login[] =
    "UPDATE posuto_users SET last_login_at = ? WHERE id = ?";

/* LoginDelay's record, as .posuto.login is: best effort (a lost one
 * costs one early login), on the worker that opened the mailbox. */
static void
ssql_login_record(struct mailbox *pub, uint64_t t)
{
	struct ssql_mailbox *mb = ssql_of(pub);
	struct sql_param p[2];
	char tb[24], ib[24], err[SQL_ERR_MAX];

	if (mb->user_id == 0 || mb->lock == NULL)
		return;
	u64_param(tb, sizeof(tb), t, &p[0]);
	u64_param(ib, sizeof(ib), mb->user_id, &p[1]);
	if (sql_pool_exec(ssql_pool(mb->db), q_login, p, 2, NULL, err,
	    sizeof(err)) != SQL_OK)
		log_warnx("sql store: user %s: last login not recorded: %s",
		    mb->name, err);
	else
		mb->last_login = t;
}

static void
ssql_close(struct mailbox *pub)
{
	ssql_mailbox_free(ssql_of(pub));
}

static unsigned
ssql_check(const struct store_driver *drv, const char *user, const char *path,
    FILE *out)
{
	struct ssql_db *db;
	char err[256];

	(void)drv;
	(void)path;
	/* check-config makes no pool: the config check says whether Sql
	 * is there (MailboxFormat "sql" needs it) */
	if ((db = ssql_db_get()) == NULL)
		return 0;
	ssql_db_unref(&db);
	if (ssql_db_for(&db, err, sizeof(err)) != STORE_OK) {
		fprintf(out, "warning: user %s: %s\n", user, err);
		return 1;
	}
	ssql_db_unref(&db);
	return 0;
}

/* --- readers ---------------------------------------------------------- */

struct ssql_reader {
	struct msg_reader base;		/* first: see store_driver.h */
	struct ssql_db *db;		/* ref: may outlive its mailbox */
	uint64_t msg_id;
	uint64_t size;			/* wire size, from the snapshot */
	uint64_t fetched;		/* bytes of the chunks fetched */
	uint32_t next_seq;
	char *buf;			/* the last chunk */
	size_t len, off;
	int error;			/* errno for reads once failed */
};

static enum store_status
ssql_msg_open(struct mailbox *pub, uint32_t idx, struct msg_reader **r_r)
{
	struct ssql_mailbox *mb = ssql_of(pub);
	struct ssql_reader *r = xcalloc(1, sizeof(*r));

	/* no round trip here: the first read says EAGAIN */
	r->base.drv = pub->drv;
	(void)pthread_mutex_lock(&ssql_mu);
	mb->db->refs++;
	(void)pthread_mutex_unlock(&ssql_mu);
	r->db = mb->db;
	r->msg_id = mb->msgs[idx].id;
	r->size = mb->msgs[idx].size;
	*r_r = &r->base;
	return STORE_OK;
}

static ssize_t
ssql_msg_read(struct msg_reader *pub, void *buf, size_t len)
{
	struct ssql_reader *r = (struct ssql_reader *)pub;
	size_t n;

	if (r->off < r->len) {
		n = r->len - r->off < len ? r->len - r->off : len;
		memcpy(buf, r->buf + r->off, n);
		r->off += n;
		return (ssize_t)n;
	}
	if (r->error != 0) {
		errno = r->error;
		return -1;
	}
	if (r->fetched == r->size)
		return 0;
	errno = EAGAIN;
	return -1;
}

static const char q_chunk[] =
    "SELECT data FROM posuto_message_chunks WHERE message_id = ? AND "
    "seq = ?";

static enum store_status
ssql_msg_fill(struct msg_reader *pub)
{
	struct ssql_reader *r = (struct ssql_reader *)pub;
	struct sql_param p[2];
	char id[24], seq[24], err[SQL_ERR_MAX];
	struct sql_result *res = NULL;
	const char *data;
	size_t len;

	if (r->error != 0 || r->off < r->len || r->fetched == r->size)
		return r->error != 0 ? STORE_TEMP : STORE_OK;
	u64_param(id, sizeof(id), r->msg_id, &p[0]);
	u64_param(seq, sizeof(seq), r->next_seq, &p[1]);
	if (sql_pool_exec_bytes(ssql_pool(r->db), q_chunk, p, 2, &res, err,
	    sizeof(err)) != SQL_OK) {
		log_warnx("sql store: message %" PRIu64 ": %s", r->msg_id, err);
		r->error = EIO;
		errno = EIO;
		return STORE_TEMP;
	}
	data = sql_result_get(res, 0, 0, &len);
	if (sql_result_rows(res) != 1 || data == NULL || len == 0 ||
	    len > r->size - r->fetched) {
		/* deleted meanwhile, or chunks that do not add up to the
		 * size LIST announced: as a truncated file */
		log_warnx("sql store: message %" PRIu64 ": chunk %" PRIu32
		    " missing or too long", r->msg_id, r->next_seq);
		sql_result_free(&res);
		r->error = ENODATA;
		return STORE_OK;
	}
	free(r->buf);
	r->buf = sql_result_take(res, 0, 0, &len);
	r->len = len;
	r->off = 0;
	r->fetched += len;
	r->next_seq++;
	sql_result_free(&res);
	return STORE_OK;
}

/* The first chunk is fetched before the +OK (store.h prepare), so a
 * database that is down gives -ERR [SYS/TEMP], not a cut message. */
static bool
ssql_msg_prepared(const struct msg_reader *pub)
{
	const struct ssql_reader *r = (const struct ssql_reader *)pub;

	return r->fetched > 0 || r->size == 0 || r->error != 0;
}

static void
ssql_msg_close(struct msg_reader *pub)
{
	struct ssql_reader *r = (struct ssql_reader *)pub;

	ssql_db_unref(&r->db);
	free(r->buf);
	free(r);
}

/* --- delivery --------------------------------------------------------- */

struct ssql_delivery {
	struct store_delivery base;	/* first: see store_driver.h */
	struct ssql_db *db;
	struct sql_conn *conn;		/* in a transaction until the end */
	uint64_t msg_id;
	uint64_t wire;			/* bytes in chunks and buf */
	uint32_t seq;
	bool failed;
	bool prev_cr;			/* last byte taken was CR */
	bool any;			/* a byte was taken */
	bool last_lf;			/* ... and it was LF */
	char uidl[71];
	char *buf;			/* SQL_CHUNK_SIZE */
	size_t len;
};

static const char q_next_uid[] =
    "UPDATE posuto_users SET next_uid = next_uid + 1 WHERE name = ?";
static const char q_user_uid[] =
    "SELECT id, next_uid - 1 FROM posuto_users WHERE name = ?";
/* arrived_at: the given time (import), else now (NULL parameter) */
static const char q_ins_msg_pg[] =
    "INSERT INTO posuto_messages (user_id, uidl, arrived_at, wire_size, "
    "n_chunks) VALUES (?, ?, COALESCE(to_timestamp(?), now()), 0, 0) "
    "RETURNING id";
static const char q_ins_msg_my[] =
    "INSERT INTO posuto_messages (user_id, uidl, arrived_at, wire_size, "
    "n_chunks) VALUES (?, ?, COALESCE(FROM_UNIXTIME(?), "
    "CURRENT_TIMESTAMP), 0, 0)";
static const char q_last_id_my[] = "SELECT LAST_INSERT_ID()";
static const char q_ins_chunk[] =
    "INSERT INTO posuto_message_chunks (message_id, seq, data) "
    "VALUES (?, ?, ?)";
static const char q_fin_msg[] =
    "UPDATE posuto_messages SET wire_size = ?, n_chunks = ? WHERE id = ?";

/* Takes the next UIDL number of name in a transaction of its own: a
 * number handed out is never handed out again. */
static enum store_status
ssql_take_uid(struct sql_conn *c, const char *name, uint64_t *user_id_r,
    uint64_t *uid_r, char *err, size_t errsz)
{
	struct sql_param p = SQL_PARAM_STR(name);
	struct sql_result *r = NULL;
	enum sql_status st;

	if ((st = sql_begin(c, err, errsz)) != SQL_OK)
		return STORE_TEMP;
	st = sql_exec(c, q_next_uid, &p, 1, &r, err, errsz);
	if (st == SQL_OK && sql_result_affected(r) != 1) {
		sql_result_free(&r);
		(void)sql_rollback(c);
		(void)snprintf(err, errsz, "sql: no user %s in posuto_users",
		    name);
		return STORE_PERM;
	}
	sql_result_free(&r);
	if (st == SQL_OK)
		st = sql_exec(c, q_user_uid, &p, 1, &r, err, errsz);
	if (st == SQL_OK && (!col_u64(r, 0, 0, user_id_r) ||
	    !col_u64(r, 0, 1, uid_r))) {
		(void)snprintf(err, errsz, "sql: posuto_users row of %s is "
		    "not usable", name);
		st = SQL_ERR_QUERY;
	}
	sql_result_free(&r);
	if (st == SQL_OK)
		st = sql_commit(c, err, errsz);
	else
		(void)sql_rollback(c);
	return st == SQL_OK ? STORE_OK : STORE_TEMP;
}

static void
ssql_delivery_end(struct ssql_delivery *d, bool broken)
{
	if (d->conn != NULL)
		sql_pool_put(ssql_pool(d->db), &d->conn, broken);
	ssql_db_unref(&d->db);
	free(d->buf);
	free(d);
}

/* A failed statement: roll back, so nothing of it stays. */
static void
ssql_delivery_fail(struct ssql_delivery *d, enum sql_status st)
{
	d->failed = true;
	if (d->conn == NULL)
		return;
	if (st != SQL_ERR_CONN && sql_rollback(d->conn) == SQL_OK)
		sql_pool_put(ssql_pool(d->db), &d->conn, false);
	else
		sql_pool_put(ssql_pool(d->db), &d->conn, true);
}

/* Opens d's transaction and inserts its message row (user_id, d->uidl,
 * arrival or now); chunks follow as they stream in.  Ends d on failure. */
static enum store_status
ssql_deliver_start(struct ssql_delivery *d, uint64_t user_id, int64_t arrival,
    struct store_delivery **d_r, char *err, size_t errsz)
{
	struct ssql_db *db = d->db;
	struct sql_result *r = NULL;
	struct sql_param p[3];
	char ubuf[24], tbuf[24];
	enum sql_status sst;

	u64_param(ubuf, sizeof(ubuf), user_id, &p[0]);
	p[1] = SQL_PARAM_STR(d->uidl);
	if (arrival > 0)
		u64_param(tbuf, sizeof(tbuf), (uint64_t)arrival, &p[2]);
	else
		p[2] = (struct sql_param){ NULL, 0, false };
	sst = sql_begin(d->conn, err, errsz);
	if (sst == SQL_OK)
		sst = sql_exec(d->conn, ssql_pg(db) ? q_ins_msg_pg :
		    q_ins_msg_my, p, 3, ssql_pg(db) ? &r : NULL, err, errsz);
	if (sst == SQL_OK && !ssql_pg(db))
		sst = sql_exec(d->conn, q_last_id_my, NULL, 0, &r, err, errsz);
	if (sst == SQL_OK && (!col_u64(r, 0, 0, &d->msg_id) ||
	    d->msg_id == 0)) {
		(void)snprintf(err, errsz, "sql: no id for the new message");
		sst = SQL_ERR_QUERY;
	}
	sql_result_free(&r);
	if (sst != SQL_OK) {
		ssql_delivery_fail(d, sst);
		ssql_delivery_end(d, false);
		return STORE_TEMP;
	}
	d->buf = xmalloc(SQL_CHUNK_SIZE);
	*d_r = &d->base;
	return STORE_OK;
}

static enum store_status
ssql_deliver_begin(const struct store_driver *drv, const char *path,
    const char *user, struct store_delivery **d_r, char *err, size_t errsz)
{
	struct ssql_delivery *d;
	struct ssql_db *db;
	const char *name = *path != '\0' ? path : user;
	uint64_t user_id = 0, uid = 0;
	enum store_status st;
	bool reused;

	*d_r = NULL;
	if ((st = ssql_db_for(&db, err, errsz)) != STORE_OK)
		return st;
	d = xcalloc(1, sizeof(*d));
	d->base.drv = drv;
	d->db = db;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((d->conn = sql_pool_get(ssql_pool(db), &reused, err,
		    errsz)) == NULL) {
			ssql_delivery_end(d, false);
			return STORE_TEMP;
		}
		st = ssql_take_uid(d->conn, name, &user_id, &uid, err, errsz);
		if (st != STORE_TEMP || !reused)
			break;
		/* a connection that died idle: once more on a fresh one */
		sql_pool_put(ssql_pool(db), &d->conn, true);
	}
	if (st != STORE_OK) {
		ssql_delivery_end(d, st == STORE_TEMP);
		return st;
	}
	(void)snprintf(d->uidl, sizeof(d->uidl), "%" PRIu64, uid);
	return ssql_deliver_start(d, user_id, 0, d_r, err, errsz);
}

static const char q_user_id[] =
    "SELECT id FROM posuto_users WHERE name = ?";
/* Deliveries number on from above a numeric UIDL brought in, so the two
 * never meet (UNIQUE (user_id, uidl) would refuse the delivery). */
static const char q_bump_uid[] =
    "UPDATE posuto_users SET next_uid = ? WHERE id = ? AND next_uid < ?";

/* A UIDL that a delivery could produce: decimal, no leading zero. */
static bool
uidl_number(const char *u, uint64_t *v)
{
	size_t len = strlen(u);

	return len > 0 && len < 20 && u[0] != '0' &&
	    parse_u64(u, len, v) && *v < UINT64_MAX;
}

static enum store_status
ssql_deliver_begin_keep(const struct store_driver *drv, const char *path,
    const char *user, const struct store_keep *keep,
    struct store_delivery **d_r, char *err, size_t errsz)
{
	struct ssql_delivery *d;
	struct ssql_db *db;
	const char *name = *path != '\0' ? path : user;
	struct sql_param p = SQL_PARAM_STR(name), bp[3];
	struct sql_result *r = NULL;
	char b0[24], b1[24];
	uint64_t user_id = 0, num;
	enum store_status st;
	enum sql_status sst;
	bool reused;

	*d_r = NULL;
	if (!uidl_valid(keep->uidl, strlen(keep->uidl))) {
		(void)snprintf(err, errsz, "sql: not an RFC 1939 unique-id");
		return STORE_PERM;
	}
	if ((st = ssql_db_for(&db, err, errsz)) != STORE_OK)
		return st;
	d = xcalloc(1, sizeof(*d));
	d->base.drv = drv;
	d->db = db;
	(void)snprintf(d->uidl, sizeof(d->uidl), "%s", keep->uidl);
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((d->conn = sql_pool_get(ssql_pool(db), &reused, err,
		    errsz)) == NULL) {
			ssql_delivery_end(d, false);
			return STORE_TEMP;
		}
		sst = sql_exec(d->conn, q_user_id, &p, 1, &r, err, errsz);
		if (sst != SQL_ERR_CONN || !reused)
			break;
		sql_pool_put(ssql_pool(db), &d->conn, true);
	}
	if (sst == SQL_OK && sql_result_rows(r) == 0) {
		sql_result_free(&r);
		(void)snprintf(err, errsz, "sql: no user %s in posuto_users",
		    name);
		ssql_delivery_end(d, false);
		return STORE_PERM;
	}
	if (sst == SQL_OK && !col_u64(r, 0, 0, &user_id)) {
		(void)snprintf(err, errsz, "sql: posuto_users row of %s is "
		    "not usable", name);
		sst = SQL_ERR_QUERY;
	}
	sql_result_free(&r);
	if (sst == SQL_OK && uidl_number(keep->uidl, &num)) {
		/* its own statement (autocommit): a number skipped over
		 * by an import that fails later is simply never used */
		u64_param(b0, sizeof(b0), num + 1, &bp[0]);
		u64_param(b1, sizeof(b1), user_id, &bp[1]);
		bp[2] = bp[0];
		sst = sql_exec(d->conn, q_bump_uid, bp, 3, NULL, err, errsz);
	}
	if (sst != SQL_OK) {
		ssql_delivery_end(d, sst == SQL_ERR_CONN);
		return STORE_TEMP;
	}
	return ssql_deliver_start(d, user_id, keep->arrival, d_r, err, errsz);
}

/* Inserts buf as the next chunk. */
static enum sql_status
ssql_flush(struct ssql_delivery *d, char *err, size_t errsz)
{
	struct sql_param p[3];
	char id[24], seq[24];

	if (d->len == 0)
		return SQL_OK;
	u64_param(id, sizeof(id), d->msg_id, &p[0]);
	u64_param(seq, sizeof(seq), d->seq, &p[1]);
	p[2] = (struct sql_param){ d->buf, d->len, true };
	if (d->seq == INT32_MAX) {
		(void)snprintf(err, errsz, "sql: message too large");
		return SQL_ERR_QUERY;
	}
	{
		enum sql_status st = sql_exec(d->conn, q_ins_chunk, p, 3, NULL,
		    err, errsz);

		if (st != SQL_OK)
			return st;
	}
	d->seq++;
	d->len = 0;
	return SQL_OK;
}

/* One byte of wire form into the chunk buffer, flushing a full one. */
static enum sql_status
ssql_put(struct ssql_delivery *d, char c, char *err, size_t errsz)
{
	if (d->len == SQL_CHUNK_SIZE) {
		enum sql_status st = ssql_flush(d, err, errsz);

		if (st != SQL_OK)
			return st;
	}
	d->buf[d->len++] = c;
	d->wire++;
	return SQL_OK;
}

static enum store_status
ssql_deliver_write(struct store_delivery *pub, const void *buf, size_t len)
{
	struct ssql_delivery *d = (struct ssql_delivery *)pub;
	const char *p = buf;
	char err[SQL_ERR_MAX];
	enum sql_status st = SQL_OK;

	if (d->failed)
		return STORE_TEMP;
	/* to wire form as lib/wire.h defines it: a bare LF gets its CR */
	for (size_t i = 0; i < len && st == SQL_OK; i++) {
		if (p[i] == '\n' && !d->prev_cr)
			st = ssql_put(d, '\r', err, sizeof(err));
		if (st == SQL_OK)
			st = ssql_put(d, p[i], err, sizeof(err));
		d->prev_cr = p[i] == '\r';
		d->last_lf = p[i] == '\n';
		d->any = true;
	}
	if (st != SQL_OK) {
		log_warnx("sql store: delivery: %s", err);
		ssql_delivery_fail(d, st);
		return STORE_TEMP;
	}
	return STORE_OK;
}

static enum store_status
ssql_deliver_commit(struct store_delivery *pub, char *id, size_t idsz)
{
	struct ssql_delivery *d = (struct ssql_delivery *)pub;
	char err[SQL_ERR_MAX], wbuf[24], nbuf[24], ibuf[24];
	struct sql_param p[3];
	enum sql_status st = SQL_OK;

	if (d->failed) {
		ssql_delivery_end(d, false);
		return STORE_TEMP;
	}
	/* a final line without a newline gets one, as on the wire */
	if (d->any && !d->last_lf) {
		st = ssql_put(d, '\r', err, sizeof(err));
		if (st == SQL_OK)
			st = ssql_put(d, '\n', err, sizeof(err));
	}
	if (st == SQL_OK)
		st = ssql_flush(d, err, sizeof(err));
	if (st == SQL_OK) {
		u64_param(wbuf, sizeof(wbuf), d->wire, &p[0]);
		u64_param(nbuf, sizeof(nbuf), d->seq, &p[1]);
		u64_param(ibuf, sizeof(ibuf), d->msg_id, &p[2]);
		st = sql_exec(d->conn, q_fin_msg, p, 3, NULL, err, sizeof(err));
	}
	/* acknowledged only once the database has committed */
	if (st == SQL_OK)
		st = sql_commit(d->conn, err, sizeof(err));
	else if (st == SQL_ERR_QUERY && sql_rollback(d->conn) != SQL_OK)
		st = SQL_ERR_CONN;
	if (st != SQL_OK) {
		log_warnx("sql store: delivery: %s", err);
		ssql_delivery_end(d, true);
		return STORE_TEMP;
	}
	if (id != NULL && idsz > 0)
		(void)snprintf(id, idsz, "%s", d->uidl);
	ssql_delivery_end(d, false);
	return STORE_OK;
}

static void
ssql_deliver_abort(struct store_delivery *pub)
{
	struct ssql_delivery *d = (struct ssql_delivery *)pub;

	if (!d->failed)
		ssql_delivery_fail(d, SQL_ERR_QUERY);
	ssql_delivery_end(d, false);
}

const struct store_driver store_driver_sql = {
	.name = "sql",
	.fs = NULL,
	.lf_store = false,
	.no_files = true,
	.by_name = true,
	.close_blocks = true,
	.open = ssql_open,
	.count = ssql_count,
	.msg_size = ssql_msg_size,
	.msg_uidl = ssql_msg_uidl,
	.msg_size_is_hint = NULL,
	.msg_arrival = ssql_msg_arrival,
	.total_size = ssql_total_size,
	.mark_seen = ssql_mark_seen,
	.commit_needed = ssql_commit_needed,
	.commit = ssql_commit,
	.close = ssql_close,
	.commit_expire = ssql_commit_expire,
	.last_login = ssql_last_login,
	.login_record = ssql_login_record,
	.check = ssql_check,
	.msg_open = ssql_msg_open,
	.msg_read = ssql_msg_read,
	.msg_fill = ssql_msg_fill,
	.msg_prepare = ssql_msg_fill,
	.msg_prepared = ssql_msg_prepared,
	.msg_unchanged = NULL,
	.msg_wire_fd = NULL,
	.msg_wire_job = NULL,
	.msg_close = ssql_msg_close,
	.deliver_begin = ssql_deliver_begin,
	.deliver_begin_keep = ssql_deliver_begin_keep,
	.deliver_sender = NULL,
	.deliver_write = ssql_deliver_write,
	.deliver_commit = ssql_deliver_commit,
	.deliver_abort = ssql_deliver_abort,
};
