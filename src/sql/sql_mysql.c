/*
 * sql_mysql.c - the MariaDB/MySQL driver (libmariadb, Connector/C).
 *
 * Every statement is a server-side prepared statement (mysql_stmt_*), so
 * values travel in the binary protocol, never in the SQL text; the
 * general log shows the text at "Prepare" with '?' in it.  The library's
 * connect/read/write timeouts bound each step (seconds; see sql.h).
 * Automatic reconnection stays off: a lost connection is an error the
 * pool sees and replaces, never a silent new session that has lost its
 * locks.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysql.h>

#include "lib/xmalloc.h"
#include "sql/sql.h"
#include "sql/sql_int.h"

/* Statements prepared on a connection, kept for its next uses: a
 * prepare is a round trip and server work of its own (a RETR asks the
 * same chunk SELECT for every 256 KiB), so each text is prepared once
 * per connection.  Few distinct texts exist (posuto's fixed statements
 * and a handful of batch sizes at QUIT); the oldest slot is reused. */
#define MY_STMT_CACHE	16

struct my_stmt_slot {
	char *text;			/* NULL: empty */
	MYSQL_STMT *st;
};

struct my_conn {
	struct sql_conn base;		/* first: see sql_int.h */
	MYSQL *my;
	struct my_stmt_slot stmts[MY_STMT_CACHE];
	unsigned next_slot;		/* the one to reuse next */
	/* A statement sent without waiting (my_send): its execution goes
	 * on through the library's non-blocking calls in my_drain.  The
	 * binds stay until then, as the library may still read them. */
	MYSQL_STMT *pend;		/* NULL: none */
	int pend_wait;			/* MYSQL_WAIT_* it waits for */
	MYSQL_BIND *pend_b;
	unsigned long *pend_lens;
	my_bool *pend_nulls;
};

static pthread_once_t my_once = PTHREAD_ONCE_INIT;
static int my_init_rc;

/* mysql_library_init() is not thread-safe; mysql_init() calls it when
 * it was not, so do it once, first. */
static void
my_library_init(void)
{
	my_init_rc = mysql_library_init(0, NULL, NULL);
}

static void
my_err(char *err, size_t errsz, const char *what, unsigned no,
    const char *msg)
{
	(void)snprintf(err, errsz, "mysql %s: %s (%u)", what,
	    msg != NULL && *msg != '\0' ? msg : "unknown error", no);
	for (char *p = err; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

/* Client-side errors (2000..2999: lost, gone, out of sync, ...) leave
 * the connection unusable; server errors are about the statement. */
static enum sql_status
my_status(unsigned no)
{
	return no >= 2000 && no < 3000 ? SQL_ERR_CONN : SQL_ERR_QUERY;
}

static struct sql_conn *
my_connect(const struct sql_connect_info *ci, char *err, size_t errsz)
{
	const struct sql_cfg *cfg = ci->cfg;
	unsigned ct = cfg->connect_timeout, qt = cfg->query_timeout;
	my_bool no = 0;
	unsigned zero = 0;
	MYSQL *my;
	struct my_conn *c;

	(void)pthread_once(&my_once, my_library_init);
	if (my_init_rc != 0 || (my = mysql_init(NULL)) == NULL) {
		(void)snprintf(err, errsz, "mysql: cannot initialise the "
		    "client library");
		return NULL;
	}
	(void)mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	(void)mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &qt);
	(void)mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &qt);
	(void)mysql_options(my, MYSQL_OPT_RECONNECT, &no);
	(void)mysql_options(my, MYSQL_OPT_LOCAL_INFILE, &zero);
	(void)mysql_options(my, MYSQL_SET_CHARSET_NAME,
	    ci->cfg->bytes_as_stored ? "binary" : "utf8mb4");
	/* for my_send (the *_start/_cont calls); every other call still
	 * blocks, with the timeouts above */
	(void)mysql_options(my, MYSQL_OPT_NONBLOCK, 0);
	/* No option files: what posuto connects to is in its config. */
	if (mysql_real_connect(my, cfg->socket != NULL ? "localhost" :
	    cfg->host, cfg->user, ci->password, cfg->database, cfg->port,
	    cfg->socket, 0) == NULL) {
		my_err(err, errsz, "connect", mysql_errno(my), mysql_error(my));
		mysql_close(my);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->my = my;
	return &c->base;
}

static enum sql_status
my_stmt_fail(MYSQL_STMT *st, const char *what, char *err, size_t errsz)
{
	unsigned no = mysql_stmt_errno(st);

	my_err(err, errsz, what, no, mysql_stmt_error(st));
	return my_status(no);
}

/* Fetches every row of an executed statement that has a result set. */
static enum sql_status
my_fetch_rows(MYSQL_STMT *st, MYSQL_RES *meta, struct sql_result *r,
    char *err, size_t errsz)
{
	size_t cols = r->cols;
	MYSQL_BIND *b = xcalloc(cols, sizeof(*b));
	unsigned long *lens = xcalloc(cols, sizeof(*lens));
	my_bool *nulls = xcalloc(cols, sizeof(*nulls));
	my_bool *errs = xcalloc(cols, sizeof(*errs));
	enum sql_status status = SQL_OK;
	int rc;

	(void)meta;
	/* Zero-length buffers: each fetch says how long every value is,
	 * then mysql_stmt_fetch_column() copies it into one of that size
	 * (so a value of any size, a content chunk too, fits). */
	for (size_t i = 0; i < cols; i++) {
		b[i].buffer_type = MYSQL_TYPE_STRING;
		b[i].length = &lens[i];
		b[i].is_null = &nulls[i];
		b[i].error = &errs[i];
	}
	if (mysql_stmt_bind_result(st, b) != 0) {
		status = my_stmt_fail(st, "bind result", err, errsz);
		goto out;
	}
	while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		struct sql_cell *row = sql_result_add_row(r);

		for (size_t i = 0; i < cols; i++) {
			MYSQL_BIND one;
			char *buf;

			if (nulls[i])
				continue;
			buf = xmalloc(lens[i] + 1);
			memset(&one, 0, sizeof(one));
			one.buffer_type = MYSQL_TYPE_STRING;
			one.buffer = buf;
			one.buffer_length = lens[i] + 1;
			if (lens[i] > 0 && mysql_stmt_fetch_column(st, &one,
			    (unsigned)i, 0) != 0) {
				free(buf);
				status = my_stmt_fail(st, "fetch column", err,
				    errsz);
				goto out;
			}
			buf[lens[i]] = '\0';
			row[i].data = buf;
			row[i].len = lens[i];
		}
	}
	if (rc != MYSQL_NO_DATA)
		status = my_stmt_fail(st, "fetch", err, errsz);
out:
	free(b);
	free(lens);
	free(nulls);
	free(errs);
	return status;
}

static void
my_pend_free(struct my_conn *c)
{
	free(c->pend_b);
	free(c->pend_lens);
	free(c->pend_nulls);
	c->pend_b = NULL;
	c->pend_lens = NULL;
	c->pend_nulls = NULL;
	c->pend = NULL;
}

/* The slot holding st, forgotten and st closed: a statement that failed
 * is not trusted again. */
static void
my_slot_drop(struct my_conn *c, MYSQL_STMT *st)
{
	for (size_t i = 0; i < MY_STMT_CACHE; i++)
		if (c->stmts[i].st == st) {
			free(c->stmts[i].text);
			c->stmts[i].text = NULL;
			c->stmts[i].st = NULL;
		}
	(void)mysql_stmt_close(st);
}

/* Completes the statement my_send left running and drops its rows, so
 * the connection is idle again.  Only a broken (or silent) connection
 * is an error: what that statement answered, nobody asked. */
static enum sql_status
my_drain(struct my_conn *c, char *err, size_t errsz)
{
	int64_t deadline = sql_now_ms() + (int64_t)c->base.query_timeout *
	    1000;
	MYSQL_STMT *st = c->pend;
	int wait = c->pend_wait, ret = 0;

	if (st == NULL)
		return SQL_OK;
	while (wait != 0) {
		struct pollfd pfd = { .fd = mysql_get_socket(c->my) };
		int left = sql_ms_left(deadline), r, ready = 0;

		if (wait & MYSQL_WAIT_READ)
			pfd.events |= POLLIN;
		if (wait & MYSQL_WAIT_WRITE)
			pfd.events |= POLLOUT;
		if (wait & MYSQL_WAIT_EXCEPT)
			pfd.events |= POLLPRI;
		if ((wait & MYSQL_WAIT_TIMEOUT) &&
		    (int64_t)mysql_get_timeout_value_ms(c->my) < left)
			left = (int)mysql_get_timeout_value_ms(c->my);
		r = poll(&pfd, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r == 0 && sql_ms_left(deadline) == 0)) {
			/* the library is mid-statement: only closing the
			 * connection ends it */
			(void)snprintf(err, errsz, "mysql: %s", r < 0 ?
			    strerror(errno) : "query timed out");
			my_pend_free(c);
			return SQL_ERR_CONN;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			ready |= MYSQL_WAIT_READ;
		if (pfd.revents & POLLOUT)
			ready |= MYSQL_WAIT_WRITE;
		if (pfd.revents & POLLPRI)
			ready |= MYSQL_WAIT_EXCEPT;
		if (r == 0)
			ready |= MYSQL_WAIT_TIMEOUT;
		wait = mysql_stmt_execute_cont(&ret, st, ready);
	}
	my_pend_free(c);
	if (ret != 0) {
		unsigned no = mysql_stmt_errno(st);

		my_err(err, errsz, "execute", no, mysql_stmt_error(st));
		my_slot_drop(c, st);
		return my_status(no) == SQL_ERR_CONN ? SQL_ERR_CONN : SQL_OK;
	}
	/* its rows (a lock function's one value): read, dropped */
	if (mysql_stmt_store_result(st) != 0) {
		unsigned no = mysql_stmt_errno(st);

		my_err(err, errsz, "result", no, mysql_stmt_error(st));
		my_slot_drop(c, st);
		return my_status(no) == SQL_ERR_CONN ? SQL_ERR_CONN : SQL_OK;
	}
	(void)mysql_stmt_free_result(st);
	return SQL_OK;
}

/* wait false: my_send (execution started, finished by my_drain). */
static enum sql_status
my_run(struct sql_conn *sc, const char *stmt, const struct sql_param *params,
    size_t n_params, bool wait, struct sql_result **res_r, char *err,
    size_t errsz)
{
	struct my_conn *c = (struct my_conn *)sc;
	struct my_stmt_slot *slot = NULL;
	MYSQL_STMT *st = NULL;
	MYSQL_BIND *b = NULL;
	unsigned long *lens = NULL;
	my_bool *nulls = NULL;
	MYSQL_RES *meta = NULL;
	struct sql_result *r = NULL;
	enum sql_status status = SQL_OK;

	if ((status = my_drain(c, err, errsz)) != SQL_OK)
		return status;
	for (size_t i = 0; i < MY_STMT_CACHE; i++)
		if (c->stmts[i].text != NULL &&
		    strcmp(c->stmts[i].text, stmt) == 0) {
			slot = &c->stmts[i];
			st = slot->st;
			break;
		}
	if (st == NULL) {
		if ((st = mysql_stmt_init(c->my)) == NULL) {
			my_err(err, errsz, "statement", mysql_errno(c->my),
			    mysql_error(c->my));
			return my_status(mysql_errno(c->my));
		}
		if (mysql_stmt_prepare(st, stmt, strlen(stmt)) != 0) {
			status = my_stmt_fail(st, "prepare", err, errsz);
			goto out;
		}
		slot = &c->stmts[c->next_slot];
		c->next_slot = (c->next_slot + 1) % MY_STMT_CACHE;
		if (slot->st != NULL)
			(void)mysql_stmt_close(slot->st);
		free(slot->text);
		slot->text = xstrdup(stmt);
		slot->st = st;
	}
	if (mysql_stmt_param_count(st) != n_params) {
		(void)snprintf(err, errsz, "mysql: statement takes %lu "
		    "parameters, %zu given", mysql_stmt_param_count(st),
		    n_params);
		status = SQL_ERR_QUERY;
		goto out;
	}
	b = xcalloc(n_params + 1, sizeof(*b));
	lens = xcalloc(n_params + 1, sizeof(*lens));
	nulls = xcalloc(n_params + 1, sizeof(*nulls));
	for (size_t i = 0; i < n_params; i++) {
		const struct sql_param *p = &params[i];

		if (p->data != NULL && !p->binary &&
		    memchr(p->data, '\0', p->len) != NULL) {
			(void)snprintf(err, errsz, "mysql: parameter %zu "
			    "holds a NUL byte", i + 1);
			status = SQL_ERR_QUERY;
			goto out;
		}
		b[i].buffer_type = p->binary ? MYSQL_TYPE_BLOB :
		    MYSQL_TYPE_STRING;
		/* The library only reads it. */
		b[i].buffer = (void *)(uintptr_t)p->data;
		b[i].buffer_length = (unsigned long)p->len;
		lens[i] = (unsigned long)p->len;
		nulls[i] = p->data == NULL;
		b[i].length = &lens[i];
		b[i].is_null = &nulls[i];
	}
	if (n_params > 0 && mysql_stmt_bind_param(st, b) != 0) {
		status = my_stmt_fail(st, "bind", err, errsz);
		goto out;
	}
	if (!wait && slot != NULL) {
		int ret = 0, w = mysql_stmt_execute_start(&ret, st);

		c->pend = st;
		c->pend_wait = w;
		c->pend_b = b;
		c->pend_lens = lens;
		c->pend_nulls = nulls;
		if (w == 0 && ret != 0) {
			/* failed at once (not even sent, as a rule) */
			c->pend_b = NULL;
			c->pend_lens = NULL;
			c->pend_nulls = NULL;
			c->pend = NULL;
			status = my_stmt_fail(st, "execute", err, errsz);
			goto out;
		}
		/* my_drain finishes it: reads the reply, drops the rows */
		return SQL_OK;
	}
	if (mysql_stmt_execute(st) != 0) {
		status = my_stmt_fail(st, "execute", err, errsz);
		goto out;
	}
	meta = mysql_stmt_result_metadata(st);
	r = sql_result_new(meta != NULL ? mysql_num_fields(meta) : 0);
	if (meta != NULL)
		status = my_fetch_rows(st, meta, r, err, errsz);
	else
		r->affected = (uint64_t)mysql_stmt_affected_rows(st);
out:
	if (meta != NULL)
		mysql_free_result(meta);
	if (slot != NULL && status == SQL_OK) {
		/* kept for the next use: its rows are all read */
		(void)mysql_stmt_free_result(st);
	} else {
		/* a failed one is not trusted again (its state, or the
		 * connection's, is unknown) */
		if (slot != NULL) {
			free(slot->text);
			slot->text = NULL;
			slot->st = NULL;
		}
		(void)mysql_stmt_close(st);
	}
	free(b);
	free(lens);
	free(nulls);
	if (status == SQL_OK && res_r != NULL)
		*res_r = r;
	else
		sql_result_free(&r);
	return status;
}

static enum sql_status
my_exec(struct sql_conn *sc, const char *stmt, const struct sql_param *params,
    size_t n_params, bool bytes, struct sql_result **res_r, char *err,
    size_t errsz)
{
	(void)bytes;	/* BLOBs come as bytes: nothing to ask for */
	return my_run(sc, stmt, params, n_params, true, res_r, err, errsz);
}

static enum sql_status
my_send(struct sql_conn *sc, const char *stmt, const struct sql_param *params,
    size_t n_params, char *err, size_t errsz)
{
	return my_run(sc, stmt, params, n_params, false, NULL, err, errsz);
}

static void
my_close(struct sql_conn *sc)
{
	struct my_conn *c = (struct my_conn *)sc;

	my_pend_free(c);
	for (size_t i = 0; i < MY_STMT_CACHE; i++) {
		if (c->stmts[i].st != NULL)
			(void)mysql_stmt_close(c->stmts[i].st);
		free(c->stmts[i].text);
	}
	mysql_close(c->my);
	free(c);
}

/* The text protocol, for fixed statements only (no values in them). */
static enum sql_status
my_simple(struct sql_conn *sc, const char *stmt, char *err, size_t errsz)
{
	struct my_conn *c = (struct my_conn *)sc;
	MYSQL_RES *res;
	enum sql_status st;

	if ((st = my_drain(c, err, errsz)) != SQL_OK)
		return st;
	if (mysql_real_query(c->my, stmt, strlen(stmt)) != 0) {
		my_err(err, errsz, "query", mysql_errno(c->my),
		    mysql_error(c->my));
		return my_status(mysql_errno(c->my));
	}
	/* none of these has rows; drop any so the connection is idle */
	if ((res = mysql_store_result(c->my)) != NULL)
		mysql_free_result(res);
	return SQL_OK;
}

const struct sql_driver sql_driver_mysql = {
	.name = "mysql",
	.connect = my_connect,
	.exec = my_exec,
	.send = my_send,
	.close = my_close,
	.simple = my_simple,
};
