/*
 * sql_txn.c - transactions on one pooled connection (contract in sql.h).
 *
 * Why a helper: what to do with a connection after a failure inside a
 * transaction (roll back, or drop it when it broke) is the same for every
 * caller.  Built on sql_begin/sql_commit/sql_rollback (sql_pool.c).
 */
#include "sql/sql.h"

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
		st = sql_begin(*c_r, err, errsz);
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
	enum sql_status st;

	if (*c == NULL)
		return SQL_ERR_CONN;
	if (commit) {
		st = sql_commit(*c, err, errsz);
		if (st == SQL_ERR_QUERY)
			(void)sql_rollback(*c);
	} else {
		st = sql_rollback(*c);
	}
	sql_pool_put(pool, c, st == SQL_ERR_CONN);
	return st;
}
