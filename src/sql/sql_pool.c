/*
 * sql_pool.c - a bounded per-process pool of connections, and results.
 *
 * At most PoolSize connections exist; a worker that finds none idle and
 * the pool full waits (bounded by ConnectTimeOut) for one to come back,
 * so a slow database makes logins wait their turn, not open connections
 * without limit.  Broken connections are closed and replaced lazily:
 * after the database comes back the next statement simply connects.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/plugin.h"
#include "lib/xmalloc.h"
#include "sql/sql.h"
#include "sql/sql_int.h"

/* A password file is one short line; more is a wrong file. */
#define SQL_PASSWORD_MAX	1024

struct sql_pool {
	const struct sql_cfg *cfg;
	const struct sql_driver *drv;
	char *password;			/* NULL: none */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sql_conn *idle;		/* chain of idle connections */
	unsigned n_open;		/* idle + in use + being connected */
	struct sql_lockset locks;
};

struct sql_lockset *
sql_pool_lockset(struct sql_pool *p)
{
	return &p->locks;
}

int64_t
sql_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
sql_ms_left(int64_t deadline)
{
	int64_t left = deadline - sql_now_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* First line of the file, without its line end; NULL and err if it
 * cannot be read.  Read once per pool: a new password takes a SIGHUP. */
static char *
read_password_file(const char *path, char *err, size_t errsz)
{
	char buf[SQL_PASSWORD_MAX + 2];
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		(void)snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	while (len < sizeof(buf) - 1 &&
	    (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			(void)snprintf(err, errsz, "%s: %s", path,
			    strerror(errno));
			(void)close(fd);
			return NULL;
		}
		len += (size_t)n;
	}
	(void)close(fd);
	buf[len] = '\0';
	len = strcspn(buf, "\r\n");
	if (len > SQL_PASSWORD_MAX || memchr(buf, '\0', len) != NULL) {
		(void)snprintf(err, errsz, "%s: not a password (one line of "
		    "at most %d bytes)", path, SQL_PASSWORD_MAX);
		explicit_bzero(buf, sizeof(buf));
		return NULL;
	}
	buf[len] = '\0';
	{
		char *pw = xstrdup(buf);

		explicit_bzero(buf, sizeof(buf));
		return pw;
	}
}

const struct sql_driver *
sql_driver_load(enum sql_driver_kind kind, char *err, size_t errsz)
{
	return plugin_symbol("posuto_sql", kind == SQL_DRIVER_PGSQL ?
	    "sql_driver_pgsql" : "sql_driver_mysql", err, errsz);
}

struct sql_pool *
sql_pool_new(const struct sql_cfg *cfg, char *err, size_t errsz)
{
	struct sql_pool *p;
	char *pw = NULL;

	if (cfg->driver == SQL_DRIVER_NONE) {
		(void)snprintf(err, errsz, "no Sql driver configured");
		return NULL;
	}
	if (cfg->password_file != NULL &&
	    (pw = read_password_file(cfg->password_file, err, errsz)) == NULL)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->cfg = cfg;
	if ((p->drv = sql_driver_load(cfg->driver, err, errsz)) == NULL) {
		free_secret(pw);
		free(p);
		return NULL;
	}
	p->password = pw;
	if (pthread_mutex_init(&p->mu, NULL) != 0 ||
	    pthread_cond_init(&p->cv, NULL) != 0)
		abort();
	sql_lockset_init(&p->locks);
	return p;
}

void
sql_pool_free(struct sql_pool **pp)
{
	struct sql_pool *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	sql_lockset_fini(p, &p->locks);
	while (p->idle != NULL) {
		struct sql_conn *c = p->idle;

		p->idle = c->next_idle;
		c->drv->close(c);
	}
	free_secret(p->password);
	(void)pthread_cond_destroy(&p->cv);
	(void)pthread_mutex_destroy(&p->mu);
	free(p);
}

void
sql_pool_after_fork(struct sql_pool *p)
{
	/* Leaked on purpose; the child is short-lived.  The mutexes are
	 * made anew: another thread of the parent may have held them. */
	if (pthread_mutex_init(&p->mu, NULL) != 0 ||
	    pthread_cond_init(&p->cv, NULL) != 0 ||
	    pthread_mutex_init(&p->locks.mu, NULL) != 0)
		abort();
	p->idle = NULL;
	p->n_open = 0;
	p->locks.conn = NULL;
	p->locks.gen++;
	/* the parent's locks are the parent's: the database decides */
	p->locks.held = NULL;
}

enum sql_driver_kind
sql_pool_driver(const struct sql_pool *p)
{
	return p->cfg->driver;
}

struct sql_conn *
sql_pool_get(struct sql_pool *p, bool *reused_r, char *err, size_t errsz)
{
	const struct sql_connect_info ci = { p->cfg, p->password };
	struct timespec until;
	struct sql_conn *c;

	if (reused_r != NULL)
		*reused_r = false;
	(void)clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += p->cfg->connect_timeout;
	(void)pthread_mutex_lock(&p->mu);
	while (p->idle == NULL && p->n_open >= p->cfg->pool_size) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &until) ==
		    ETIMEDOUT && p->idle == NULL &&
		    p->n_open >= p->cfg->pool_size) {
			(void)pthread_mutex_unlock(&p->mu);
			(void)snprintf(err, errsz, "all %u database "
			    "connections busy for %us", p->cfg->pool_size,
			    p->cfg->connect_timeout);
			return NULL;
		}
	}
	if ((c = p->idle) != NULL) {
		p->idle = c->next_idle;
		c->next_idle = NULL;
		(void)pthread_mutex_unlock(&p->mu);
		if (reused_r != NULL)
			*reused_r = true;
		return c;
	}
	p->n_open++;
	(void)pthread_mutex_unlock(&p->mu);
	/* Outside the lock: connecting may take ConnectTimeOut. */
	c = p->drv->connect(&ci, err, errsz);
	if (c == NULL) {
		(void)pthread_mutex_lock(&p->mu);
		p->n_open--;
		(void)pthread_cond_signal(&p->cv);
		(void)pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	c->drv = p->drv;
	c->query_timeout = p->cfg->query_timeout;
	return c;
}

void
sql_pool_put(struct sql_pool *p, struct sql_conn **cp, bool broken)
{
	struct sql_conn *c = *cp, *stale = NULL;

	if (c == NULL)
		return;
	*cp = NULL;
	if (broken)
		c->drv->close(c);
	(void)pthread_mutex_lock(&p->mu);
	if (broken) {
		/* A broken connection is most often a server restart or
		 * failover, which broke the idle ones too: close them all
		 * now, so the retry gets a fresh one, not the next dead one
		 * (PoolSize of them would each cost a failed statement). */
		p->n_open--;
		stale = p->idle;
		p->idle = NULL;
		for (struct sql_conn *s = stale; s != NULL; s = s->next_idle)
			p->n_open--;
	} else {
		c->next_idle = p->idle;
		p->idle = c;
	}
	(void)pthread_cond_broadcast(&p->cv);
	(void)pthread_mutex_unlock(&p->mu);
	while (stale != NULL) {
		struct sql_conn *next = stale->next_idle;

		stale->drv->close(stale);
		stale = next;
	}
}

enum sql_status
sql_exec(struct sql_conn *c, const char *stmt, const struct sql_param *params,
    size_t n_params, struct sql_result **res_r, char *err, size_t errsz)
{
	if (res_r != NULL)
		*res_r = NULL;
	return c->drv->exec(c, stmt, params, n_params, false, res_r, err,
	    errsz);
}

enum sql_status
sql_begin(struct sql_conn *c, char *err, size_t errsz)
{
	/* SQL's own spelling: PostgreSQL and MariaDB both take it. */
	return c->drv->simple(c, "START TRANSACTION", err, errsz);
}

enum sql_status
sql_commit(struct sql_conn *c, char *err, size_t errsz)
{
	return c->drv->simple(c, "COMMIT", err, errsz);
}

enum sql_status
sql_rollback(struct sql_conn *c)
{
	char ignored[SQL_ERR_MAX];

	return c->drv->simple(c, "ROLLBACK", ignored, sizeof(ignored));
}

static enum sql_status
pool_exec(struct sql_pool *p, const char *stmt,
    const struct sql_param *params, size_t n_params, bool bytes,
    struct sql_result **res_r, char *err, size_t errsz)
{
	enum sql_status st = SQL_ERR_CONN;

	if (res_r != NULL)
		*res_r = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused;
		struct sql_conn *c = sql_pool_get(p, &reused, err, errsz);

		if (c == NULL)
			return SQL_ERR_CONN;
		if (res_r != NULL)
			*res_r = NULL;
		st = c->drv->exec(c, stmt, params, n_params, bytes, res_r, err,
		    errsz);
		sql_pool_put(p, &c, st == SQL_ERR_CONN);
		/* Only a connection that sat idle may have died unseen
		 * (server restart); a fresh one failing means the server
		 * is really not answering. */
		if (st != SQL_ERR_CONN || !reused)
			break;
	}
	return st;
}

enum sql_status
sql_pool_exec(struct sql_pool *p, const char *stmt,
    const struct sql_param *params, size_t n_params,
    struct sql_result **res_r, char *err, size_t errsz)
{
	return pool_exec(p, stmt, params, n_params, false, res_r, err, errsz);
}

enum sql_status
sql_pool_exec_bytes(struct sql_pool *p, const char *stmt,
    const struct sql_param *params, size_t n_params,
    struct sql_result **res_r, char *err, size_t errsz)
{
	return pool_exec(p, stmt, params, n_params, true, res_r, err, errsz);
}

/* ---- results ---- */

struct sql_result *
sql_result_new(size_t cols)
{
	struct sql_result *r = xcalloc(1, sizeof(*r));

	r->cols = cols;
	return r;
}

struct sql_cell *
sql_result_add_row(struct sql_result *r)
{
	struct sql_cell *row;

	if (r->rows == r->cap_rows) {
		r->cap_rows = r->cap_rows == 0 ? 4 : r->cap_rows * 2;
		r->cells = xreallocarray(r->cells, r->cap_rows * (r->cols > 0 ?
		    r->cols : 1), sizeof(*r->cells));
	}
	row = r->cells + r->rows * r->cols;
	memset(row, 0, r->cols * sizeof(*row));
	r->rows++;
	return row;
}

void
sql_cell_set(struct sql_cell *cell, const void *data, size_t len)
{
	free(cell->data);
	cell->data = NULL;
	cell->len = 0;
	if (data == NULL)
		return;
	cell->data = xmalloc(len + 1);
	memcpy(cell->data, data, len);
	cell->data[len] = '\0';
	cell->len = len;
}

size_t
sql_result_rows(const struct sql_result *r)
{
	return r->rows;
}

size_t
sql_result_cols(const struct sql_result *r)
{
	return r->cols;
}

uint64_t
sql_result_affected(const struct sql_result *r)
{
	return r->affected;
}

const char *
sql_result_get(const struct sql_result *r, size_t row, size_t col,
    size_t *len_r)
{
	const struct sql_cell *cell;

	if (row >= r->rows || col >= r->cols) {
		if (len_r != NULL)
			*len_r = 0;
		return NULL;
	}
	cell = &r->cells[row * r->cols + col];
	if (len_r != NULL)
		*len_r = cell->len;
	return cell->data;
}

char *
sql_result_take(struct sql_result *r, size_t row, size_t col, size_t *len_r)
{
	struct sql_cell *cell;
	char *data;

	*len_r = 0;
	if (row >= r->rows || col >= r->cols)
		return NULL;
	cell = &r->cells[row * r->cols + col];
	data = cell->data;
	*len_r = cell->len;
	cell->data = NULL;
	cell->len = 0;
	return data;
}

void
sql_result_free(struct sql_result **rp)
{
	struct sql_result *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	for (size_t i = 0; i < r->rows * r->cols; i++)
		free(r->cells[i].data);
	free(r->cells);
	free(r);
}
