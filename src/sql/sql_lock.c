/*
 * sql_lock.c - mailbox locks in the database, shared by every node
 * (contract in sql.h).
 *
 * Why database locks and not a lock table: a row written by a node that
 * dies stays behind and needs a timeout or a janitor to clear it, during
 * which the user cannot log in anywhere; a lock that lives in the
 * database session is gone the moment the node's connection drops.
 * Why one connection for all of a process's locks and not one per
 * session: 1,000 open mailboxes would otherwise pin 1,000 connections.
 *
 * PostgreSQL: pg_try_advisory_lock on a 64-bit hash of the name
 * (hashtextextended, PostgreSQL 11+); a collision would only make two
 * users wait for each other.  MariaDB/MySQL: GET_LOCK, whose names are at
 * most 64 characters, so the name goes in as a hash too.  Both hash on
 * the server, so client and server can never disagree on the key.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "sql/sql.h"
#include "sql/sql_int.h"

static const char *const take_stmt[] = {
	[SQL_DRIVER_PGSQL] = "SELECT pg_try_advisory_lock("
	    "hashtextextended('posuto:mailbox:' || ?, 0))",
	[SQL_DRIVER_MYSQL] = "SELECT GET_LOCK(CONCAT('posuto:', "
	    "LEFT(SHA2(?, 256), 56)), 0)",
};
static const char *const release_stmt[] = {
	[SQL_DRIVER_PGSQL] = "SELECT pg_advisory_unlock("
	    "hashtextextended('posuto:mailbox:' || ?, 0))",
	[SQL_DRIVER_MYSQL] = "SELECT RELEASE_LOCK(CONCAT('posuto:', "
	    "LEFT(SHA2(?, 256), 56)))",
};

void
sql_lockset_init(struct sql_lockset *ls)
{
	memset(ls, 0, sizeof(*ls));
	if (pthread_mutex_init(&ls->mu, NULL) != 0)
		abort();
}

/* Drops the lock connection: every lock it held is gone with it, and
 * the locks taken on it (their gen) are stale from now on. */
static void
lockset_drop(struct sql_pool *pool, struct sql_lockset *ls)
{
	sql_pool_put(pool, &ls->conn, true);
}

void
sql_lockset_fini(struct sql_pool *pool, struct sql_lockset *ls)
{
	lockset_drop(pool, ls);
	(void)pthread_mutex_destroy(&ls->mu);
}

/* "1"/"t": taken; "0"/"f": busy; NULL: MariaDB's error answer. */
static enum sql_lock_status
lock_answer(const struct sql_result *res)
{
	const char *v;

	if (res == NULL || sql_result_rows(res) != 1 ||
	    (v = sql_result_get(res, 0, 0, NULL)) == NULL)
		return SQL_LOCK_TEMP;
	if (strcmp(v, "1") == 0 || strcmp(v, "t") == 0)
		return SQL_LOCK_OK;
	return SQL_LOCK_BUSY;
}

enum sql_lock_status
sql_lock_take(struct sql_pool *pool, const char *name,
    struct sql_lock **lock_r, char *err, size_t errsz)
{
	struct sql_lockset *ls = sql_pool_lockset(pool);
	enum sql_driver_kind kind = sql_pool_driver(pool);
	struct sql_param param = SQL_PARAM_STR(name);
	enum sql_lock_status st = SQL_LOCK_TEMP;
	struct sql_lock *l;

	*lock_r = NULL;
	(void)pthread_mutex_lock(&ls->mu);
	for (l = ls->held; l != NULL; l = l->next) {
		if (strcmp(l->name, name) == 0) {
			(void)pthread_mutex_unlock(&ls->mu);
			(void)snprintf(err, errsz, "mailbox in use here");
			return SQL_LOCK_BUSY;
		}
	}
	/* Twice at most: a kept connection may have died unseen (database
	 * restart); a fresh one failing means the database is down. */
	for (int attempt = 0; attempt < 2; attempt++) {
		struct sql_result *res = NULL;
		bool fresh = ls->conn == NULL, reused = false;
		enum sql_status sst;

		if (fresh) {
			if ((ls->conn = sql_pool_get(pool, &reused, err,
			    errsz)) == NULL)
				break;
			ls->gen++;
			/* one that sat idle may have died unseen, too */
			fresh = !reused;
		}
		sst = sql_exec(ls->conn, take_stmt[kind], &param, 1, &res,
		    err, errsz);
		if (sst == SQL_OK) {
			st = lock_answer(res);
			if (st == SQL_LOCK_TEMP)
				(void)snprintf(err, errsz,
				    "the database refused the lock");
		}
		sql_result_free(&res);
		if (sst == SQL_ERR_CONN) {
			lockset_drop(pool, ls);
			if (!fresh)
				continue;
		}
		break;
	}
	if (st == SQL_LOCK_OK) {
		size_t n = strlen(name) + 1;

		l = xmalloc(sizeof(*l) + n);
		l->pool = pool;
		l->gen = ls->gen;
		memcpy(l->name, name, n);
		l->next = ls->held;
		ls->held = l;
		*lock_r = l;
	} else if (st == SQL_LOCK_BUSY) {
		(void)snprintf(err, errsz, "mailbox in use on another node");
	}
	(void)pthread_mutex_unlock(&ls->mu);
	return st;
}

bool
sql_lock_check(struct sql_lock *l, char *err, size_t errsz)
{
	struct sql_lockset *ls = sql_pool_lockset(l->pool);
	bool held = false;

	(void)pthread_mutex_lock(&ls->mu);
	if (ls->conn != NULL && l->gen == ls->gen) {
		if (sql_exec(ls->conn, "SELECT 1", NULL, 0, NULL, err,
		    errsz) == SQL_OK)
			held = true;
		else
			lockset_drop(l->pool, ls);
	}
	if (!held)
		(void)snprintf(err, errsz, "the database connection holding "
		    "the mailbox lock was lost");
	(void)pthread_mutex_unlock(&ls->mu);
	return held;
}

void
sql_lock_release(struct sql_lock **lp)
{
	struct sql_lock *l = *lp;
	struct sql_lockset *ls;
	struct sql_lock **pp;

	if (l == NULL)
		return;
	*lp = NULL;
	ls = sql_pool_lockset(l->pool);
	(void)pthread_mutex_lock(&ls->mu);
	for (pp = &ls->held; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	/* A stale lock went with its connection: nothing to release.
	 * The release is sent, not waited for: the server runs it as soon
	 * as it reads it (another node may take the lock from then on),
	 * and its answer is read by the next statement on the connection,
	 * so a logout costs no round trip.  A connection that broke
	 * meanwhile shows there, as it would have here. */
	if (ls->conn != NULL && l->gen == ls->gen) {
		struct sql_param param = SQL_PARAM_STR(l->name);
		char err[SQL_ERR_MAX];

		if (ls->conn->drv->send(ls->conn,
		    release_stmt[sql_pool_driver(l->pool)], &param, 1, err,
		    sizeof(err)) == SQL_ERR_CONN)
			lockset_drop(l->pool, ls);
	}
	(void)pthread_mutex_unlock(&ls->mu);
	free(l);
}
