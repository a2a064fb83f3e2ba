/*
 * sql_cfg.c - copies of a configuration's Sql object for the stores that
 * keep their own database across reloads (contract in sql.h).
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "sql/sql.h"

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static bool
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

void
sql_cfg_copy(struct sql_cfg *dst, const struct sql_cfg *src)
{
	*dst = *src;
	dst->host = dup_or_null(src->host);
	dst->socket = dup_or_null(src->socket);
	dst->database = dup_or_null(src->database);
	dst->user = dup_or_null(src->user);
	dst->password_file = dup_or_null(src->password_file);
	dst->password_scheme = dup_or_null(src->password_scheme);
}

void
sql_cfg_release(struct sql_cfg *cfg)
{
	free(cfg->host);
	free(cfg->socket);
	free(cfg->database);
	free(cfg->user);
	free(cfg->password_file);
	free(cfg->password_scheme);
	memset(cfg, 0, sizeof(*cfg));
}

bool
sql_cfg_same(const struct sql_cfg *a, const struct sql_cfg *b)
{
	return a->driver == b->driver && a->port == b->port &&
	    a->schema == b->schema && a->connect_timeout == b->connect_timeout &&
	    a->query_timeout == b->query_timeout &&
	    a->pool_size == b->pool_size && str_same(a->host, b->host) &&
	    str_same(a->socket, b->socket) &&
	    str_same(a->database, b->database) && str_same(a->user, b->user) &&
	    str_same(a->password_file, b->password_file);
}
