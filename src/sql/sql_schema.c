/*
 * sql_schema.c - posuto's tables, versioned, and `posuto sql init`.
 *
 * docs/sql.md documents every table and column; this file is the one
 * place they are created.  A migration is a list of statements that are
 * each idempotent (IF NOT EXISTS), applied in order and then recorded in
 * posuto_schema_version, so a run cut short (MariaDB commits each DDL
 * statement by itself) is completed by the next run.  PostgreSQL also
 * gets each migration in one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/strutil.h"
#include "sql/sql.h"
#include "sql/sql_int.h"

/* Advisory lock key / name for init: two nodes may run it at once. */
#define SCHEMA_LOCK_PG		"7070110001"
#define SCHEMA_LOCK_MY		"posuto.schema"
#define SCHEMA_LOCK_WAIT	"30"

struct schema_migration {
	int version;
	const char *const *pgsql;	/* NULL-terminated */
	const char *const *mysql;
};

static const char *const v0_pgsql[] = {
	"CREATE TABLE IF NOT EXISTS posuto_schema_version ("
	" version integer PRIMARY KEY,"
	" applied_at timestamptz NOT NULL DEFAULT now())",
	NULL,
};

static const char *const v0_mysql[] = {
	"CREATE TABLE IF NOT EXISTS posuto_schema_version ("
	" version INT NOT NULL PRIMARY KEY,"
	" applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
	") ENGINE=InnoDB",
	NULL,
};

static const char *const v1_pgsql[] = {
	"CREATE TABLE IF NOT EXISTS posuto_users ("
	" id bigserial PRIMARY KEY,"
	" name varchar(255) NOT NULL UNIQUE,"
	" password varchar(1024) NOT NULL,"
	" apop_secret varchar(1024),"
	" location varchar(4096),"
	" login_delay integer,"
	" expire_days integer,"
	" next_uid bigint NOT NULL DEFAULT 1,"
	" created_at timestamptz NOT NULL DEFAULT now())",
	"CREATE TABLE IF NOT EXISTS posuto_messages ("
	" id bigserial PRIMARY KEY,"
	" user_id bigint NOT NULL REFERENCES posuto_users (id)"
	" ON DELETE CASCADE,"
	" uidl varchar(70) NOT NULL,"
	" arrived_at timestamptz NOT NULL DEFAULT now(),"
	" wire_size bigint NOT NULL,"
	" flags integer NOT NULL DEFAULT 0,"
	" first_retr_at timestamptz,"
	" n_chunks integer NOT NULL DEFAULT 0,"
	" UNIQUE (user_id, uidl))",
	"CREATE TABLE IF NOT EXISTS posuto_message_chunks ("
	" message_id bigint NOT NULL REFERENCES posuto_messages (id)"
	" ON DELETE CASCADE,"
	" seq integer NOT NULL,"
	" data bytea NOT NULL,"
	" PRIMARY KEY (message_id, seq))",
	NULL,
};

/* _bin collations: names, UIDLs and secrets compare byte for byte, as
 * posuto's own lookups do (MariaDB's default collation folds case). */
static const char *const v1_mysql[] = {
	"CREATE TABLE IF NOT EXISTS posuto_users ("
	" id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
	" name VARCHAR(255) NOT NULL,"
	" password VARCHAR(1024) NOT NULL,"
	" apop_secret VARCHAR(1024) NULL,"
	" location VARCHAR(4096) NULL,"
	" login_delay INT NULL,"
	" expire_days INT NULL,"
	" next_uid BIGINT NOT NULL DEFAULT 1,"
	" created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
	" UNIQUE KEY posuto_users_name (name)"
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"CREATE TABLE IF NOT EXISTS posuto_messages ("
	" id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
	" user_id BIGINT NOT NULL,"
	" uidl VARCHAR(70) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
	" arrived_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
	" wire_size BIGINT NOT NULL,"
	" flags INT NOT NULL DEFAULT 0,"
	" first_retr_at DATETIME NULL,"
	" n_chunks INT NOT NULL DEFAULT 0,"
	" UNIQUE KEY posuto_messages_uidl (user_id, uidl),"
	" FOREIGN KEY (user_id) REFERENCES posuto_users (id)"
	" ON DELETE CASCADE"
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"CREATE TABLE IF NOT EXISTS posuto_message_chunks ("
	" message_id BIGINT NOT NULL,"
	" seq INT NOT NULL,"
	" data MEDIUMBLOB NOT NULL,"
	" PRIMARY KEY (message_id, seq),"
	" FOREIGN KEY (message_id) REFERENCES posuto_messages (id)"
	" ON DELETE CASCADE"
	") ENGINE=InnoDB",
	NULL,
};

/* Version 2: LoginDelay's last login for sql: mailboxes (unix seconds,
 * as posuto's clock says: no time zone to convert). */
static const char *const v2_pgsql[] = {
	"ALTER TABLE posuto_users ADD COLUMN IF NOT EXISTS last_login_at bigint",
	NULL,
};

static const char *const v2_mysql[] = {
	"ALTER TABLE posuto_users ADD COLUMN IF NOT EXISTS last_login_at "
	"BIGINT NULL",
	NULL,
};

/* Version 3: content chunks stored as they are.  PostgreSQL's default
 * for bytea (EXTENDED) tries pglz on every value over 2 KB, so each RETR
 * decompressed every chunk again on the server (mail is mostly text and
 * compresses): EXTERNAL keeps the bytes out of line but uncompressed, as
 * a Maildir keeps them.  It applies to rows written from now on; rows
 * already there stay as they were stored and are still read the same.
 * InnoDB stores BLOBs uncompressed already: nothing to change there. */
static const char *const v3_pgsql[] = {
	"ALTER TABLE posuto_message_chunks ALTER COLUMN data SET STORAGE "
	"EXTERNAL",
	NULL,
};

static const char *const v3_mysql[] = {
	NULL,
};

static const struct schema_migration migrations[] = {
	{ 1, v1_pgsql, v1_mysql },
	{ 2, v2_pgsql, v2_mysql },
	{ 3, v3_pgsql, v3_mysql },
};
#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(N_MIGRATIONS == SQL_SCHEMA_VERSION, "one per version");

static bool
is_pg(const struct sql_pool *pool)
{
	return sql_pool_driver(pool) == SQL_DRIVER_PGSQL;
}

/* The one integer a statement returns (NULL counts as 0); -1 if none. */
static long long
result_int(const struct sql_result *r)
{
	const char *v = r != NULL ? sql_result_get(r, 0, 0, NULL) : NULL;
	uint64_t n;

	if (r == NULL || sql_result_rows(r) != 1)
		return -1;
	if (v == NULL)
		return 0;
	if (v[0] == '-' || !parse_u64(v, strlen(v), &n) || n > INT32_MAX)
		return -1;
	return (long long)n;
}

static int
table_exists(struct sql_conn *c, bool pg, const char *table, char *err,
    size_t errsz)
{
	static const char q_pg[] = "SELECT count(*) FROM "
	    "information_schema.tables WHERE table_schema = current_schema()"
	    " AND table_name = ?";
	static const char q_my[] = "SELECT count(*) FROM "
	    "information_schema.tables WHERE table_schema = DATABASE()"
	    " AND table_name = ?";
	struct sql_param p = SQL_PARAM_STR(table);
	struct sql_result *r;
	long long n;

	if (sql_exec(c, pg ? q_pg : q_my, &p, 1, &r, err, errsz) != SQL_OK)
		return -1;
	n = result_int(r);
	sql_result_free(&r);
	return n > 0;
}

static int
conn_version(struct sql_conn *c, bool pg, char *err, size_t errsz)
{
	struct sql_result *r;
	long long v;
	int ex = table_exists(c, pg, "posuto_schema_version", err, errsz);

	if (ex <= 0)
		return ex;
	if (sql_exec(c, "SELECT max(version) FROM posuto_schema_version",
	    NULL, 0, &r, err, errsz) != SQL_OK)
		return -1;
	v = result_int(r);
	sql_result_free(&r);
	if (v < 0)
		(void)snprintf(err, errsz, "posuto_schema_version: not a "
		    "version number");
	return (int)v;
}

int
sql_schema_version(struct sql_pool *pool, char *err, size_t errsz)
{
	struct sql_conn *c = sql_pool_get(pool, NULL, err, errsz);
	int v;

	if (c == NULL)
		return -1;
	v = conn_version(c, is_pg(pool), err, errsz);
	sql_pool_put(pool, &c, v < 0);
	return v;
}

static int
run_list(struct sql_conn *c, const char *const *stmts, char *err,
    size_t errsz)
{
	for (size_t i = 0; stmts[i] != NULL; i++)
		if (sql_exec(c, stmts[i], NULL, 0, NULL, err, errsz) != SQL_OK)
			return -1;
	return 0;
}

static int
apply_migration(struct sql_conn *c, bool pg, const struct schema_migration *m,
    char *err, size_t errsz)
{
	char vbuf[16];
	struct sql_param p = { vbuf, 0, false };
	static const char ins[] =
	    "INSERT INTO posuto_schema_version (version) VALUES (?)";

	p.len = (size_t)snprintf(vbuf, sizeof(vbuf), "%d", m->version);
	if (pg && sql_exec(c, "BEGIN", NULL, 0, NULL, err, errsz) != SQL_OK)
		return -1;
	if (run_list(c, pg ? m->pgsql : m->mysql, err, errsz) != 0 ||
	    sql_exec(c, ins, &p, 1, NULL, err, errsz) != SQL_OK ||
	    (pg && sql_exec(c, "COMMIT", NULL, 0, NULL, err, errsz) !=
	    SQL_OK)) {
		char ignored[SQL_ERR_MAX];

		if (pg)
			(void)sql_exec(c, "ROLLBACK", NULL, 0, NULL, ignored,
			    sizeof(ignored));
		return -1;
	}
	return 0;
}

int
sql_schema_init(struct sql_pool *pool, FILE *out, char *err, size_t errsz)
{
	bool pg = is_pg(pool);
	struct sql_conn *c = sql_pool_get(pool, NULL, err, errsz);
	struct sql_result *r = NULL;
	char ignored[SQL_ERR_MAX];
	int from, rc = -1;

	if (c == NULL)
		return -1;
	/* Session-level lock: it dies with the connection if we do. */
	if (sql_exec(c, pg ? "SELECT pg_advisory_lock(" SCHEMA_LOCK_PG ")" :
	    "SELECT GET_LOCK('" SCHEMA_LOCK_MY "', " SCHEMA_LOCK_WAIT ")",
	    NULL, 0, &r, err, errsz) != SQL_OK)
		goto out;
	if (!pg && result_int(r) != 1) {
		(void)snprintf(err, errsz, "another posuto sql init has held "
		    "the schema lock for " SCHEMA_LOCK_WAIT "s");
		goto out;
	}
	if (run_list(c, pg ? v0_pgsql : v0_mysql, err, errsz) != 0 ||
	    (from = conn_version(c, pg, err, errsz)) < 0)
		goto unlock;
	if (from > SQL_SCHEMA_VERSION) {
		(void)snprintf(err, errsz, "the database has schema version "
		    "%d; this posuto knows only up to %d", from,
		    SQL_SCHEMA_VERSION);
		goto unlock;
	}
	for (size_t i = 0; i < N_MIGRATIONS; i++) {
		const struct schema_migration *m = &migrations[i];

		if (m->version <= from)
			continue;
		if (apply_migration(c, pg, m, err, errsz) != 0)
			goto unlock;
		fprintf(out, "schema version %d applied\n", m->version);
	}
	if (from == SQL_SCHEMA_VERSION)
		fprintf(out, "schema is at version %d: nothing to do\n", from);
	rc = 0;
unlock:
	(void)sql_exec(c, pg ? "SELECT pg_advisory_unlock(" SCHEMA_LOCK_PG ")" :
	    "SELECT RELEASE_LOCK('" SCHEMA_LOCK_MY "')", NULL, 0, NULL,
	    ignored, sizeof(ignored));
out:
	sql_result_free(&r);
	/* Closed, not pooled: the lock must not outlive us by mistake. */
	sql_pool_put(pool, &c, true);
	return rc;
}

int
sql_schema_check_tpops(struct sql_pool *pool, char *err, size_t errsz)
{
	static const char *const q_pg[] = {
		"SELECT uid, login, passwd, mail, maildir, quota FROM "
		"\"user\" WHERE 1 = 0",
		"SELECT id, uid, msgno, \"timestamp\", header, body, size "
		"FROM msg WHERE 1 = 0",
		NULL,
	};
	static const char *const q_my[] = {
		"SELECT uid, login, passwd, mail, maildir, quota FROM `user` "
		"WHERE 1 = 0",
		"SELECT id, uid, msgno, `timestamp`, header, body, size "
		"FROM msg WHERE 1 = 0",
		NULL,
	};
	const char *const *q = is_pg(pool) ? q_pg : q_my;

	for (size_t i = 0; q[i] != NULL; i++)
		if (sql_pool_exec(pool, q[i], NULL, 0, NULL, err, errsz) !=
		    SQL_OK)
			return -1;
	return 0;
}
