/*
 * sql.h - connections to PostgreSQL (libpq) and MariaDB/MySQL
 * (libmariadb) behind one small interface, and a bounded pool of them.
 *
 * Statements are written once with '?' placeholders; the pgsql driver
 * numbers them $1.. for libpq.  Values only ever travel as parameters
 * (PQsendQueryParams, mysql_stmt_*): this module has no escaping or
 * quoting function at all, so no caller can build SQL from data.
 *
 * Threads: every call may block (network), for at most the configured
 * ConnectTimeOut / QueryTimeOut, so it runs on worker threads only, never
 * on the event loop.  Why a bounded worker pool and not libpq's
 * asynchronous API on the loop: the userdb lookup and the store already
 * run on the worker queue (net/workq.c, userdb_int.h: lookup may block),
 * libmariadb has no usable asynchronous API for prepared statements, and
 * one blocking model for both drivers keeps one set of bugs.  The pool
 * (PoolSize connections) bounds what one process asks of the database;
 * WorkerThreads bounds how many wait.  Each driver still polls with a
 * deadline, so a hung server costs a worker QueryTimeOut seconds, no more.
 *
 * A pool is immutable apart from its connections and is thread-safe.
 */
#ifndef POSUTO_SQL_H
#define POSUTO_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

struct sql_pool;
struct sql_conn;
struct sql_driver;
struct sql_result;

enum sql_status {
	SQL_OK = 0,
	SQL_ERR_CONN,	/* no connection, or it broke: retry later (TEMP) */
	SQL_ERR_QUERY,	/* the statement failed; the connection is fine */
};

/* One parameter: len bytes at data (not NUL-terminated), or SQL NULL if
 * data is NULL.  Text (the default) must not hold a NUL byte: such a
 * statement fails (SQL_ERR_QUERY) rather than send a truncated value.
 * binary: bytes for a bytea/BLOB column (message content). */
struct sql_param {
	const void *data;
	size_t len;
	bool binary;
};
#define SQL_PARAM_STR(s) \
	((struct sql_param){ (s), (s) != NULL ? strlen(s) : 0, false })

/* Longest error text the calls write (err buffers: SQL_ERR_MAX bytes). */
#define SQL_ERR_MAX	256

/* A deep copy of src (its strings duplicated), released by
 * sql_cfg_release(); and whether two name the same database the same
 * way (sql_cfg.c): for stores that keep a pool across reloads. */
void sql_cfg_copy(struct sql_cfg *dst, const struct sql_cfg *src);
void sql_cfg_release(struct sql_cfg *cfg);
bool sql_cfg_same(const struct sql_cfg *a, const struct sql_cfg *b);

/*
 * The driver for kind, from posuto_sql.so (lib/plugin.h), loaded on the
 * first call; NULL with err if the module cannot be loaded.  Callers that
 * report config errors call it first, to say it is about Driver.
 */
const struct sql_driver *sql_driver_load(enum sql_driver_kind kind,
    char *err, size_t errsz);

/*
 * A pool for cfg (which must outlive it), reading PasswordFile now.  NULL
 * with err filled if the file cannot be read.  Connects lazily: a
 * database that is down does not stop posuto from starting.
 */
struct sql_pool *sql_pool_new(const struct sql_cfg *cfg, char *err,
    size_t errsz);
/* Closes every idle connection; none may be in use. */
void sql_pool_free(struct sql_pool **pool);
enum sql_driver_kind sql_pool_driver(const struct sql_pool *pool);
/* In a fork()ed child, before any other call on pool: forgets every
 * connection without closing it (they are the parent's: closing one
 * would end the parent's database session) and with them the locks
 * taken on them; the pool connects anew when next used. */
void sql_pool_after_fork(struct sql_pool *pool);

/*
 * A connection of the pool: an idle one, a new one (connected within
 * ConnectTimeOut) if fewer than PoolSize exist, or else waits up to
 * ConnectTimeOut for one to come back.  NULL with err on failure.
 * *reused_r (if not NULL) is true for a connection that was idle: a
 * server restart shows on it only at its first statement, so callers
 * retry once on SQL_ERR_CONN with a fresh one (sql_pool_exec does).
 */
struct sql_conn *sql_pool_get(struct sql_pool *pool, bool *reused_r,
    char *err, size_t errsz);
/* Gives c back (idle) or, if broken (any SQL_ERR_CONN), closes it. */
void sql_pool_put(struct sql_pool *pool, struct sql_conn **c, bool broken);

/*
 * Runs stmt ('?' placeholders, one per param) and, if res_r is not NULL,
 * returns its rows in *res_r (NULL on error).  Bounded by QueryTimeOut.
 */
enum sql_status sql_exec(struct sql_conn *c, const char *stmt,
    const struct sql_param *params, size_t n_params,
    struct sql_result **res_r, char *err, size_t errsz);
/* sql_exec on a pooled connection, once more on a fresh connection if a
 * reused one turned out broken; the connection goes back to the pool. */
enum sql_status sql_pool_exec(struct sql_pool *pool, const char *stmt,
    const struct sql_param *params, size_t n_params,
    struct sql_result **res_r, char *err, size_t errsz);

/* sql_pool_exec for a statement whose every column is bytea/BLOB (message
 * content): rows in the server's binary form, as PostgreSQL otherwise
 * sends bytea as hex text (twice the bytes, encoded there and decoded
 * here).  MariaDB sends BLOBs as bytes either way. */
enum sql_status sql_pool_exec_bytes(struct sql_pool *pool, const char *stmt,
    const struct sql_param *params, size_t n_params,
    struct sql_result **res_r, char *err, size_t errsz);

/*
 * Transactions: a connection from sql_pool_get() held across statements.
 * sql_begin opens one (PostgreSQL BEGIN, MariaDB START TRANSACTION), so
 * the statements after it see and change nothing others see until
 * sql_commit; a commit that fails (or whose answer is lost) is reported,
 * and then what it did is unknown only if the connection broke.
 * sql_rollback is best effort (a broken connection rolls back by itself
 * on the server).  Put a connection back only outside a transaction, or
 * as broken.
 */
enum sql_status sql_begin(struct sql_conn *c, char *err, size_t errsz);
enum sql_status sql_commit(struct sql_conn *c, char *err, size_t errsz);
/* Returns the status of the ROLLBACK, for sql_pool_put(broken). */
enum sql_status sql_rollback(struct sql_conn *c);

/* Rows of a result, all columns as bytes (text form; bytea and BLOB
 * columns as their raw bytes). */
size_t sql_result_rows(const struct sql_result *r);
size_t sql_result_cols(const struct sql_result *r);
/* Rows changed by an INSERT/UPDATE/DELETE. */
uint64_t sql_result_affected(const struct sql_result *r);
/* The value (NUL-terminated after *len_r bytes), or NULL for SQL NULL. */
const char *sql_result_get(const struct sql_result *r, size_t row,
    size_t col, size_t *len_r);
/* The value's buffer, taken out of r (NULL for SQL NULL or no such
 * cell): the caller free()s it; r's cell is SQL NULL after.  Spares
 * copying a content chunk once more. */
char *sql_result_take(struct sql_result *r, size_t row, size_t col,
    size_t *len_r);
void sql_result_free(struct sql_result **r);

/* ---- the schema (sql_schema.c, docs/sql.md) ---- */

/* The version `posuto sql init` creates. */
#define SQL_SCHEMA_VERSION	3
/* Sizes of a message's content chunks (posuto_message_chunks.data). */
#define SQL_CHUNK_SIZE		(256u * 1024)

/*
 * Creates or migrates posuto's tables to SQL_SCHEMA_VERSION, under a
 * database lock so that two nodes running it at once do not collide;
 * every step is idempotent (IF NOT EXISTS), so a run that was cut short
 * is completed by the next.  Progress goes to out.  Returns 0, or -1
 * with err (a newer schema than this binary knows is an error too).
 */
int sql_schema_init(struct sql_pool *pool, FILE *out, char *err,
    size_t errsz);
/* The version in the database: 0 if none, -1 with err on failure. */
int sql_schema_version(struct sql_pool *pool, char *err, size_t errsz);
/* Checks that TPOPS's user and msg tables are there with the columns
 * posuto reads.  0, or -1 with err. */
int sql_schema_check_tpops(struct sql_pool *pool, char *err, size_t errsz);

/* ---- mailbox locks shared by every node (sql_lock.c) ---- */

/*
 * One held lock.  A mailbox in SQL is served by one session at a time
 * across all nodes: the lock lives in the database (PostgreSQL advisory
 * lock, MariaDB GET_LOCK), held on one connection per pool that holds
 * all of this process's locks, so a node that dies (its connection
 * drops) frees its mailboxes at once, with no stale row to clean up.
 * Within the process a table of held names refuses a second session
 * before the database is asked (both databases let one connection take
 * the same lock twice).
 *
 * That connection is taken from the pool once and kept, so PoolSize
 * must be at least 2.  Takes and releases are serialised on it: a take
 * is one short round trip at login; a release (logout) is sent without
 * waiting for its answer, which the connection's next statement reads.
 *
 * If the connection is lost (database restart, failover), every lock it
 * held is gone; the next take reconnects.  Sessions holding such a lock
 * learn it from sql_lock_check() and must not commit (another node may
 * own the mailbox now); they keep their local name until released.
 */
struct sql_lock;

enum sql_lock_status {
	SQL_LOCK_OK = 0,
	SQL_LOCK_BUSY,		/* held by another session, here or elsewhere */
	SQL_LOCK_TEMP,		/* the database did not answer: try later */
};

/* Takes the lock called name (any bytes but NUL, e.g. a user name)
 * without waiting.  *lock_r is set only on SQL_LOCK_OK. */
enum sql_lock_status sql_lock_take(struct sql_pool *pool, const char *name,
    struct sql_lock **lock_r, char *err, size_t errsz);
/* True while l is still held in the database; false (err filled) once
 * the connection that held it was lost.  One round trip: call it right
 * before a commit that needs the lock (QUIT's deletions). */
bool sql_lock_check(struct sql_lock *l, char *err, size_t errsz);
/* Releases and frees *l (NULL is fine); sets *l to NULL. */
void sql_lock_release(struct sql_lock **l);

/* ---- transactions (sql_txn.c) ---- */

/*
 * Takes a connection from the pool and begins a transaction on it
 * (retried once on a fresh connection if an idle one was dead).  On
 * SQL_OK, *c_r is the caller's until sql_txn_end(); else it is NULL.
 * Statements inside go through sql_exec(*c_r, ...).
 */
enum sql_status sql_txn_begin(struct sql_pool *pool, struct sql_conn **c_r,
    char *err, size_t errsz);
/*
 * COMMIT (commit true) or ROLLBACK, then gives the connection back (or
 * closes it if broken); *c is NULL after.  SQL_OK only if the commit is
 * acknowledged: SQL_ERR_CONN means it may or may not have happened (the
 * server died meanwhile), SQL_ERR_QUERY that it did not.  A rollback's
 * own failure is not reported (the server rolls back a transaction whose
 * connection drops).
 */
enum sql_status sql_txn_end(struct sql_pool *pool, struct sql_conn **c,
    bool commit, char *err, size_t errsz);

#endif
