/*
 * sql_txn.c - transactions on one pooled connection (contract in sql.h).
 *
 * Why a helper: the two servers spell "begin" differently, and what to do
 * with a connection after a failure inside a transaction (roll back, or
 * drop it when it broke) is the same for every caller.
 */
#include "sql/sql.h"

static const char *const begin_stmt[] = {
	[SQL_DRIVER_PGSQL] = "BEGIN",
	[SQL_DRIVER_MYSQL] = "START TRANSACTION",
};

enum sql_status
sql_txn_begin(struct sql_pool *pool, struct sql_conn **c_r, char *err,
    size_t errsz)
{
	/* Twice at most, as sql_pool_exec: an idle connection may have died
	 * unseen (a server restart); nothing was done on it yet. */
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = false;
		enum sql_status st;

		if ((*c_r = sql_pool_get(pool, &reused, err, errsz)) == NULL)
			return SQL_ERR_CONN;
		st = sql_exec(*c_r, begin_stmt[sql_pool_driver(pool)], NULL, 0,
		    NULL, err, errsz);
		if (st == SQL_OK)
			return SQL_OK;
		sql_pool_put(pool, c_r, st == SQL_ERR_CONN);
		if (st != SQL_ERR_CONN || !reused)
			return st;
	}
	return SQL_ERR_CONN;
}

enum sql_status
sql_txn_end(struct sql_pool *pool, struct sql_conn **c, bool commit,
    char *err, size_t errsz)
{
	char rerr[SQL_ERR_MAX];
	enum sql_status st;

	if (*c == NULL)
		return SQL_ERR_CONN;
	if (commit) {
		st = sql_exec(*c, "COMMIT", NULL, 0, NULL, err, errsz);
		if (st == SQL_ERR_QUERY)
			(void)sql_exec(*c, "ROLLBACK", NULL, 0, NULL, rerr,
			    sizeof(rerr));
	} else {
		st = sql_exec(*c, "ROLLBACK", NULL, 0, NULL, rerr,
		    sizeof(rerr));
	}
	sql_pool_put(pool, c, st == SQL_ERR_CONN);
	return st;
}
