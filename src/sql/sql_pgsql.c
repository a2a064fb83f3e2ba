/*
 * sql_pgsql.c - the PostgreSQL driver (libpq).
 *
 * libpq's non-blocking calls are used, but only to put a deadline on
 * each step (poll() with what is left of ConnectTimeOut / QueryTimeOut):
 * the calling worker still waits, see sql.h for why.  Statements go out
 * with PQsendQueryParams, the extended protocol, so values are never part
 * of the SQL text; the server logs them as "parameters: $1 = ...".
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "lib/plugin.h"
#include "lib/xmalloc.h"
#include "sql/sql.h"
#include "sql/sql_int.h"

/* posuto_sql.so (lib/plugin.h): both drivers; this file carries the mark. */
POSUTO_PLUGIN_ABI;

#define PG_BYTEA_OID	17

/* Statements prepared (named) on a connection, for their next uses:
 * an unnamed statement is parsed and planned again at every execution,
 * which is most of the server's work for posuto's short queries (the
 * login's list, the RETR's chunk SELECT).  The first PG_STMT_CACHE
 * texts a connection runs are kept; later ones run unnamed (posuto has
 * few: its fixed statements and some batch sizes at QUIT). */
#define PG_STMT_CACHE	16

struct pg_conn {
	struct sql_conn base;		/* first: see sql_int.h */
	PGconn *pg;
	char *stmts[PG_STMT_CACHE];	/* text of "posuto_<i>", or NULL */
	unsigned n_stmts;
	bool pending;			/* a sent statement's reply is unread */
};

/* libpq messages end in a newline; the log line should not. */
static void
pg_err(char *err, size_t errsz, const char *what, const char *msg)
{
	size_t n;

	(void)snprintf(err, errsz, "%s: %s", what, msg != NULL && *msg != '\0' ?
	    msg : "unknown error");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r'))
		err[--n] = '\0';
	for (char *p = err; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

/* Waits until fd is ready for events or the deadline passes: 1 ready,
 * 0 timed out, -1 error. */
static int
pg_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int left = sql_ms_left(deadline), r;

		if (left == 0)
			return 0;
		r = poll(&pfd, 1, left);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void
pg_notice_ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static struct sql_conn *
pg_connect(const struct sql_connect_info *ci, char *err, size_t errsz)
{
	const struct sql_cfg *cfg = ci->cfg;
	const char *keys[10], *vals[10];
	char port[16], opts[64];
	size_t n = 0;
	PGconn *pg;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t deadline = sql_now_ms() + (int64_t)cfg->connect_timeout * 1000;
	struct pg_conn *c;

	if (cfg->host != NULL || cfg->socket != NULL) {
		keys[n] = "host";	/* a directory means a unix socket */
		vals[n++] = cfg->host != NULL ? cfg->host : cfg->socket;
	}
	if (cfg->port != 0) {
		(void)snprintf(port, sizeof(port), "%u", cfg->port);
		keys[n] = "port";
		vals[n++] = port;
	}
	keys[n] = "dbname";
	vals[n++] = cfg->database;
	if (cfg->user != NULL) {
		keys[n] = "user";
		vals[n++] = cfg->user;
	}
	if (ci->password != NULL) {
		keys[n] = "password";
		vals[n++] = ci->password;
	}
	keys[n] = "application_name";
	vals[n++] = "posuto";
	keys[n] = "client_encoding";
	/* SQL_ASCII: no conversion either way (sql.h bytes_as_stored) */
	vals[n++] = cfg->bytes_as_stored ? "SQL_ASCII" : "UTF8";
	/* The server gives up on a statement too, so a query we stopped
	 * waiting for does not run on holding locks. */
	(void)snprintf(opts, sizeof(opts), "-c statement_timeout=%u",
	    cfg->query_timeout * 1000);
	keys[n] = "options";
	vals[n++] = opts;
	keys[n] = NULL;
	vals[n] = NULL;

	pg = PQconnectStartParams(keys, vals, 0);
	if (pg == NULL) {
		(void)snprintf(err, errsz, "pgsql: out of memory");
		return NULL;
	}
	if (PQstatus(pg) == CONNECTION_BAD) {
		pg_err(err, errsz, "pgsql connect", PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	while (st != PGRES_POLLING_OK) {
		int r;

		if (st == PGRES_POLLING_FAILED) {
			pg_err(err, errsz, "pgsql connect", PQerrorMessage(pg));
			PQfinish(pg);
			return NULL;
		}
		r = pg_wait(PQsocket(pg), st == PGRES_POLLING_READING ?
		    POLLIN : POLLOUT, deadline);
		if (r <= 0) {
			(void)snprintf(err, errsz, "pgsql connect: %s",
			    r == 0 ? "timed out" : strerror(errno));
			PQfinish(pg);
			return NULL;
		}
		st = PQconnectPoll(pg);
	}
	/* "already exists, skipping" and the like are not for stderr. */
	(void)PQsetNoticeProcessor(pg, pg_notice_ignore, NULL);
	if (PQsetnonblocking(pg, 1) != 0) {
		pg_err(err, errsz, "pgsql", PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->pg = pg;
	return &c->base;
}

/* stmt with each '?' numbered $1, $2, ... (our statements hold no '?'
 * inside literals). */
static char *
pg_number_params(const char *stmt)
{
	size_t cap = strlen(stmt) * 4 + 1, len = 0;
	char *out = xmalloc(cap);
	unsigned k = 0;

	for (const char *p = stmt; *p != '\0'; p++) {
		if (*p == '?') {
			int w = snprintf(out + len, cap - len, "$%u", ++k);

			len += (size_t)w;
		} else {
			out[len++] = *p;
		}
	}
	out[len] = '\0';
	return out;
}

/* The next result, waiting for it until the deadline.  false on a
 * timeout or a broken connection (err set); *res_r NULL at the end. */
static bool
pg_next_result(PGconn *pg, int64_t deadline, PGresult **res_r, char *err,
    size_t errsz)
{
	*res_r = NULL;
	while (PQisBusy(pg)) {
		int r = pg_wait(PQsocket(pg), POLLIN, deadline);

		if (r <= 0) {
			(void)snprintf(err, errsz, "pgsql: %s", r == 0 ?
			    "query timed out" : strerror(errno));
			return false;
		}
		if (!PQconsumeInput(pg)) {
			pg_err(err, errsz, "pgsql", PQerrorMessage(pg));
			return false;
		}
	}
	*res_r = PQgetResult(pg);
	return true;
}

/* Copies a result's rows; bytea columns decoded to their bytes. */
static struct sql_result *
pg_copy_result(PGresult *pr)
{
	int rows = PQntuples(pr), cols = PQnfields(pr);
	struct sql_result *r = sql_result_new((size_t)cols);
	const char *aff = PQcmdTuples(pr);
	uint64_t a = 0;

	for (const char *p = aff; *p >= '0' && *p <= '9'; p++)
		a = a * 10 + (uint64_t)(*p - '0');
	r->affected = a;
	for (int i = 0; i < rows; i++) {
		struct sql_cell *row = sql_result_add_row(r);

		for (int j = 0; j < cols; j++) {
			const char *v;
			size_t len;
			unsigned char *raw;

			if (PQgetisnull(pr, i, j))
				continue;
			v = PQgetvalue(pr, i, j);
			len = (size_t)PQgetlength(pr, i, j);
			/* binary form (sql_pool_exec_bytes): bytea as is */
			if (PQfformat(pr, j) == 0 &&
			    PQftype(pr, j) == PG_BYTEA_OID && (raw =
			    PQunescapeBytea((const unsigned char *)v, &len)) !=
			    NULL) {
				sql_cell_set(&row[j], raw, len);
				PQfreemem(raw);
			} else {
				sql_cell_set(&row[j], v, len);
			}
		}
	}
	return r;
}

/* Sends what is queued.  SQL_ERR_CONN on a timeout or a broken
 * connection. */
static enum sql_status
pg_flush(PGconn *pg, int64_t deadline, char *err, size_t errsz)
{
	int f;

	while ((f = PQflush(pg)) == 1) {
		int r = pg_wait(PQsocket(pg), POLLOUT | POLLIN, deadline);

		if (r <= 0 || !PQconsumeInput(pg)) {
			(void)snprintf(err, errsz, "pgsql: %s", r == 0 ?
			    "query timed out" : "connection lost");
			return SQL_ERR_CONN;
		}
	}
	if (f < 0) {
		pg_err(err, errsz, "pgsql", PQerrorMessage(pg));
		return SQL_ERR_CONN;
	}
	return SQL_OK;
}

/* Sends what is queued and reads every result, so the connection is
 * idle again; *first_r gets the first (one statement: one result; the
 * caller clears it).  SQL_ERR_CONN on a timeout or a broken connection,
 * SQL_ERR_QUERY if there was no result. */
static enum sql_status
pg_finish(PGconn *pg, int64_t deadline, PGresult **first_r, char *err,
    size_t errsz)
{
	enum sql_status st;
	PGresult *pr = NULL, *first = NULL;

	if ((st = pg_flush(pg, deadline, err, errsz)) != SQL_OK)
		return st;
	for (;;) {
		if (!pg_next_result(pg, deadline, &pr, err, errsz)) {
			if (first != NULL)
				PQclear(first);
			return SQL_ERR_CONN;
		}
		if (pr == NULL)
			break;
		if (first == NULL)
			first = pr;
		else
			PQclear(pr);
	}
	if (first == NULL) {
		(void)snprintf(err, errsz, "pgsql: no result");
		st = PQstatus(pg) == CONNECTION_OK ? SQL_ERR_QUERY :
		    SQL_ERR_CONN;
		return st;
	}
	*first_r = first;
	return SQL_OK;
}

/* Reads and drops the reply of a statement sent without waiting
 * (pg_send), so the connection is idle again; whatever that statement
 * answered, only a broken connection is an error here. */
static enum sql_status
pg_drain(struct pg_conn *c, int64_t deadline, char *err, size_t errsz)
{
	PGresult *pr = NULL;

	if (!c->pending)
		return SQL_OK;
	if (pg_flush(c->pg, deadline, err, errsz) != SQL_OK)
		return SQL_ERR_CONN;
	do {
		if (!pg_next_result(c->pg, deadline, &pr, err, errsz))
			return SQL_ERR_CONN;
		PQclear(pr);
	} while (pr != NULL);
	c->pending = false;
	if (PQstatus(c->pg) != CONNECTION_OK) {
		pg_err(err, errsz, "pgsql", PQerrorMessage(c->pg));
		return SQL_ERR_CONN;
	}
	return SQL_OK;
}

/* wait false: send only (pg_send); the reply is drained later. */
static enum sql_status
pg_run(struct sql_conn *sc, const char *stmt, const struct sql_param *params,
    size_t n_params, bool bytes, bool prepare, bool wait,
    struct sql_result **res_r, char *err, size_t errsz)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	PGconn *pg = c->pg;
	int64_t deadline = sql_now_ms() + (int64_t)sc->query_timeout * 1000;
	enum sql_status st = SQL_OK;
	const char **vals = xcalloc(n_params + 1, sizeof(*vals));
	char **copies = xcalloc(n_params + 1, sizeof(*copies));
	int *lens = xcalloc(n_params + 1, sizeof(*lens));
	int *fmts = xcalloc(n_params + 1, sizeof(*fmts));
	char *sql = pg_number_params(stmt);
	PGresult *first = NULL;
	char name[32] = "";

	if ((st = pg_drain(c, deadline, err, errsz)) != SQL_OK)
		goto out;
	for (size_t i = 0; i < n_params; i++) {
		const struct sql_param *p = &params[i];

		if (p->data == NULL)
			continue;
		if (p->len > INT32_MAX || (!p->binary &&
		    memchr(p->data, '\0', p->len) != NULL)) {
			(void)snprintf(err, errsz, "pgsql: parameter %zu "
			    "holds a NUL byte or is too long", i + 1);
			st = SQL_ERR_QUERY;
			goto out;
		}
		/* Text parameters are C strings to libpq: copy to add the
		 * NUL.  Binary ones go with their length. */
		if (p->binary) {
			vals[i] = p->data;
			fmts[i] = 1;
		} else {
			copies[i] = xstrndup(p->data, p->len);
			vals[i] = copies[i];
		}
		lens[i] = (int)p->len;
	}
	if (prepare) {
		size_t i;

		for (i = 0; i < c->n_stmts; i++)
			if (strcmp(c->stmts[i], stmt) == 0)
				break;
		if (i == c->n_stmts && i < PG_STMT_CACHE) {
			/* prepared once; a failure (a statement the server
			 * refuses) is reported as the statement's own */
			(void)snprintf(name, sizeof(name), "posuto_%zu", i);
			if (!PQsendPrepare(pg, name, sql, (int)n_params, NULL)) {
				pg_err(err, errsz, "pgsql", PQerrorMessage(pg));
				st = SQL_ERR_CONN;
				goto out;
			}
			if ((st = pg_finish(pg, deadline, &first, err,
			    errsz)) != SQL_OK)
				goto out;
			if (PQresultStatus(first) != PGRES_COMMAND_OK) {
				pg_err(err, errsz, "pgsql",
				    PQresultErrorMessage(first));
				st = PQstatus(pg) == CONNECTION_OK ?
				    SQL_ERR_QUERY : SQL_ERR_CONN;
				goto out;
			}
			PQclear(first);
			first = NULL;
			c->stmts[c->n_stmts++] = xstrdup(stmt);
		}
		if (i < c->n_stmts)
			(void)snprintf(name, sizeof(name), "posuto_%zu", i);
		else
			name[0] = '\0';
	}
	if (!(name[0] != '\0' ?
	    PQsendQueryPrepared(pg, name, (int)n_params, vals, lens, fmts,
	    bytes ? 1 : 0) :
	    PQsendQueryParams(pg, sql, (int)n_params, NULL, vals, lens, fmts,
	    bytes ? 1 : 0))) {
		pg_err(err, errsz, "pgsql", PQerrorMessage(pg));
		st = SQL_ERR_CONN;
		goto out;
	}
	if (!wait) {
		/* libpq refuses the next statement until this one's reply
		 * is read: pg_drain does that first */
		c->pending = true;
		st = pg_flush(pg, deadline, err, errsz);
		goto out;
	}
	if ((st = pg_finish(pg, deadline, &first, err, errsz)) != SQL_OK)
		goto out;
	switch (PQresultStatus(first)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		if (res_r != NULL)
			*res_r = pg_copy_result(first);
		break;
	default:
		pg_err(err, errsz, "pgsql", PQresultErrorMessage(first));
		st = PQstatus(pg) == CONNECTION_OK ? SQL_ERR_QUERY :
		    SQL_ERR_CONN;
		break;
	}
out:
	if (first != NULL)
		PQclear(first);
	for (size_t i = 0; i < n_params; i++)
		free(copies[i]);
	free(copies);
	free(vals);
	free(lens);
	free(fmts);
	free(sql);
	return st;
}

static enum sql_status
pg_exec(struct sql_conn *sc, const char *stmt, const struct sql_param *params,
    size_t n_params, bool bytes, struct sql_result **res_r, char *err,
    size_t errsz)
{
	return pg_run(sc, stmt, params, n_params, bytes, true, true, res_r, err,
	    errsz);
}

static enum sql_status
pg_send(struct sql_conn *sc, const char *stmt, const struct sql_param *params,
    size_t n_params, char *err, size_t errsz)
{
	return pg_run(sc, stmt, params, n_params, false, true, false, NULL, err,
	    errsz);
}

static void
pg_close(struct sql_conn *sc)
{
	struct pg_conn *c = (struct pg_conn *)sc;

	PQfinish(c->pg);
	for (unsigned i = 0; i < c->n_stmts; i++)
		free(c->stmts[i]);
	free(c);
}

static enum sql_status
pg_simple(struct sql_conn *sc, const char *stmt, char *err, size_t errsz)
{
	/* BEGIN, COMMIT, ROLLBACK: nothing to plan */
	return pg_run(sc, stmt, NULL, 0, false, false, true, NULL, err, errsz);
}

const struct sql_driver sql_driver_pgsql = {
	.name = "pgsql",
	.connect = pg_connect,
	.exec = pg_exec,
	.send = pg_send,
	.close = pg_close,
	.simple = pg_simple,
};
