/*
 * sql_int.h - the driver table behind sql.h (private to src/sql).
 *
 * A driver is a handful of functions: connect (with a deadline), run one
 * parameterised statement into a generic result, close.  Results are
 * copied out of the library's own structures so callers never see libpq
 * or libmariadb types.
 */
#ifndef POSUTO_SQL_INT_H
#define POSUTO_SQL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "sql/sql.h"

/* What a connection is made of, resolved from struct sql_cfg. */
struct sql_connect_info {
	const struct sql_cfg *cfg;
	const char *password;		/* NULL: none */
};

struct sql_driver {
	const char *name;
	/* A new connection within cfg->connect_timeout, or NULL and err. */
	struct sql_conn *(*connect)(const struct sql_connect_info *ci,
	    char *err, size_t errsz);
	/* bytes: every result column is bytea/BLOB, wanted in the
	 * server's binary form (sql_pool_exec_bytes) */
	enum sql_status (*exec)(struct sql_conn *c, const char *stmt,
	    const struct sql_param *params, size_t n_params, bool bytes,
	    struct sql_result **res_r, char *err, size_t errsz);
	/* exec without waiting: the statement is sent (prepared first if
	 * it is new) and its reply is read and dropped by the next call on
	 * c, which fails with SQL_ERR_CONN if c broke meanwhile.  For a
	 * statement whose answer nobody needs (a lock release). */
	enum sql_status (*send)(struct sql_conn *c, const char *stmt,
	    const struct sql_param *params, size_t n_params, char *err,
	    size_t errsz);
	void (*close)(struct sql_conn *c);
	/* A statement without parameters or rows (BEGIN, COMMIT,
	 * ROLLBACK): MariaDB cannot prepare every one of them. */
	enum sql_status (*simple)(struct sql_conn *c, const char *stmt,
	    char *err, size_t errsz);
};

extern const struct sql_driver sql_driver_pgsql;
extern const struct sql_driver sql_driver_mysql;

/* Every connection starts with this, so the pool can chain them. */
struct sql_conn {
	const struct sql_driver *drv;
	struct sql_conn *next_idle;
	unsigned query_timeout;		/* s */
};

/* ---- results (sql_result.c) ---- */

struct sql_cell {
	char *data;			/* NULL: SQL NULL; else NUL-terminated */
	size_t len;
};

struct sql_result {
	size_t rows, cols, cap_rows;
	struct sql_cell *cells;		/* rows * cols */
	uint64_t affected;
};

struct sql_result *sql_result_new(size_t cols);
/* Appends a row of NULLs and returns its cells. */
struct sql_cell *sql_result_add_row(struct sql_result *r);
/* Sets a cell to a copy of len bytes (data NULL: SQL NULL). */
void sql_cell_set(struct sql_cell *cell, const void *data, size_t len);

/* CLOCK_MONOTONIC in ms, and the ms left until deadline (at least 0,
 * at most INT_MAX, for poll()). */
int64_t sql_now_ms(void);
int sql_ms_left(int64_t deadline);

/* ---- the pool's lock connection (sql_lock.c) ---- */

struct sql_lock {
	struct sql_pool *pool;
	struct sql_lock *next;
	uint64_t gen;			/* of the connection that took it */
	char name[];
};

/* Embedded in struct sql_pool; all fields under mu. */
struct sql_lockset {
	pthread_mutex_t mu;
	struct sql_conn *conn;		/* NULL: none yet, or lost */
	uint64_t gen;			/* bumped for every new conn */
	struct sql_lock *held;
};

struct sql_lockset *sql_pool_lockset(struct sql_pool *pool);
void sql_lockset_init(struct sql_lockset *ls);
/* Closes the lock connection (every lock must be released). */
void sql_lockset_fini(struct sql_pool *pool, struct sql_lockset *ls);

#endif
