/*
 * test_sql.c - the Sql config keys (defaults, errors at FILE:LINE:COL
 * with their key), the sql userdb's load errors, and the pool's bounded
 * failure when no database answers.  The real databases are exercised by
 * tests/integration/test_sql_userdb.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "sql/sql.h"
#include "sql/sql_int.h"

static char tmpdir[64];
static char cfgpath[128], pwpath[128];
static char *errtext;
static struct posuto_config *cfg;

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/posuto-test-sql-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/posuto.json", tmpdir);
	snprintf(pwpath, sizeof(pwpath), "%s/pw", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	config_free(&cfg);
	free(errtext);
	errtext = NULL;
	unlink(cfgpath);
	unlink(pwpath);
	rmdir(tmpdir);
	return 0;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int
load(const char *text)
{
	size_t sz = 0;
	FILE *errs;
	int rc;

	config_free(&cfg);
	free(errtext);
	errtext = NULL;
	write_file(cfgpath, text);
	errs = open_memstream(&errtext, &sz);
	assert_non_null(errs);
	rc = config_load(cfgpath, &cfg, errs);
	assert_int_equal(fclose(errs), 0);
	return rc;
}

/* Some line of errtext is "<cfgpath>:<line>:<col>: <rest...>". */
static void
expect_at(unsigned line, const char *rest)
{
	char want[512];
	int n = snprintf(want, sizeof(want), "%s:%u:", cfgpath, line);

	for (const char *l = errtext; l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');
		const char *col;

		if (strncmp(l, want, (size_t)n) == 0 &&
		    (col = strchr(l + n, ':')) != NULL &&
		    strncmp(col + 2, rest, strlen(rest)) == 0)
			return;
		l = nl != NULL ? nl + 1 : l + strlen(l);
	}
	fail_msg("no line \"%s<col>: %s\" in:\n%s", want, rest,
	    errtext != NULL ? errtext : "");
}

static const char *const head =
	"{\n"
	"  \"Pop3Server\": {\n"
	"    \"BindAddress\": \"127.0.0.1\",\n"
	"    \"MailDir\": \"/srv/mail\",\n";

static char *
with_sql(const char *sql)
{
	size_t n = strlen(head) + strlen(sql) + 16;
	char *s = malloc(n);

	assert_non_null(s);
	snprintf(s, n, "%s%s  }\n}\n", head, sql);
	return s;
}

static void
test_sql_defaults(void **state)
{
	char *t = with_sql(
	    "    \"Sql\": {\n"
	    "      \"Driver\": \"MySQL\",\n"
	    "      \"Database\": \"posuto\",\n"
	    "      \"Socket\": \"run/mysqld.sock\"\n"
	    "    }\n");

	(void)state;
	assert_int_equal(load(t), 0);
	assert_int_equal(cfg->sql.driver, SQL_DRIVER_MYSQL);
	assert_string_equal(cfg->sql.database, "posuto");
	assert_int_equal(cfg->sql.schema, SQL_SCHEMA_POSUTO);
	assert_int_equal(cfg->sql.connect_timeout, 5);
	assert_int_equal(cfg->sql.query_timeout, 10);
	assert_int_equal(cfg->sql.pool_size, 8);
	assert_int_equal(cfg->sql.port, 0);
	assert_null(cfg->sql.host);
	/* Relative to the config file, as every path. */
	assert_non_null(cfg->sql.socket);
	assert_int_equal(strncmp(cfg->sql.socket, tmpdir, strlen(tmpdir)), 0);
	/* No "nobody can log in" warning: the database has the users. */
	assert_true(errtext == NULL || strstr(errtext, "nobody") == NULL);
	free(t);
}

static void
test_sql_absent(void **state)
{
	char *t = with_sql("    \"Users\": []\n");

	(void)state;
	assert_int_equal(load(t), 0);
	assert_int_equal(cfg->sql.driver, SQL_DRIVER_NONE);
	free(t);
}

static void
test_sql_errors_at_their_keys(void **state)
{
	char *t = with_sql(
	    "    \"Sql\": {\n"				/* line 5 */
	    "      \"Driver\": \"oracle\",\n"		/* 6 */
	    "      \"Host\": \"db host\",\n"		/* 7 */
	    "      \"Socket\": \"/run/x.sock\",\n"		/* 8 */
	    "      \"Port\": 0,\n"				/* 9 */
	    "      \"Schema\": \"tpops5\",\n"		/* 10 */
	    "      \"PoolSize\": 0,\n"			/* 11 */
	    "      \"QueryTimeOut\": \"10\"\n"		/* 12 */
	    "    }\n");

	(void)state;
	assert_int_not_equal(load(t), 0);
	expect_at(6, "Pop3Server.Sql.Driver: must be one of");
	expect_at(7, "Pop3Server.Sql.Host: may hold only");
	expect_at(8, "Pop3Server.Sql.Socket: give Host");
	expect_at(9, "Pop3Server.Sql.Port");
	expect_at(10, "Pop3Server.Sql.Schema: must be one of");
	expect_at(11, "Pop3Server.Sql.PoolSize");
	expect_at(12, "Pop3Server.Sql.QueryTimeOut");
	free(t);

	t = with_sql("    \"Sql\": { \"Driver\": \"pgsql\" }\n");
	assert_int_not_equal(load(t), 0);
	expect_at(5, "Pop3Server.Sql: missing required key \"Database\"");
	free(t);
}

static void
test_sql_userdb_load_errors(void **state)
{
	char *t = with_sql(
	    "    \"Sql\": {\n"
	    "      \"Driver\": \"pgsql\",\n"
	    "      \"Database\": \"posuto\",\n"
	    "      \"PasswordScheme\": \"NOPE\",\n"
	    "      \"PasswordFile\": \"pw\"\n"		/* line 9 */
	    "    }\n");
	char *out = NULL;
	size_t sz = 0;
	FILE *errs;
	struct userdb *db;

	(void)state;
	assert_int_equal(load(t), 0);
	errs = open_memstream(&out, &sz);
	db = userdb_load(cfg, errs);
	fclose(errs);
	assert_null(db);
	assert_non_null(strstr(out, "PasswordScheme: unknown scheme \"NOPE\""));
	assert_non_null(strstr(out, ":9:"));
	assert_non_null(strstr(out, "Pop3Server.Sql.PasswordFile: "));
	free(out);

	/* With the file there (and a known scheme), the load succeeds
	 * without a database: it connects at the first login. */
	free(t);
	t = with_sql(
	    "    \"Sql\": {\n"
	    "      \"Driver\": \"pgsql\",\n"
	    "      \"Database\": \"posuto\",\n"
	    "      \"PasswordScheme\": \"SHA256.HEX\",\n"
	    "      \"PasswordFile\": \"pw\"\n"
	    "    }\n");
	write_file(pwpath, "secret\n");
	assert_int_equal(load(t), 0);
	db = userdb_load(cfg, stderr);
	assert_non_null(db);
	assert_true(userdb_has_apop(db));
	userdb_unref(&db);
	free(t);
}

/* A loopback port nobody listens on. */
static unsigned
closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void
test_pool_without_server_fails_cleanly(void **state)
{
	static const enum sql_driver_kind drivers[] = {
		SQL_DRIVER_PGSQL, SQL_DRIVER_MYSQL,
	};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct sql_cfg sc = {
			.driver = drivers[i], .host = (char *)"127.0.0.1",
			.port = closed_port(), .database = (char *)"posuto",
			.user = (char *)"posuto", .connect_timeout = 2,
			.query_timeout = 2, .pool_size = 1,
		};
		char err[SQL_ERR_MAX];
		struct sql_pool *pool = sql_pool_new(&sc, err, sizeof(err));
		struct sql_result *r = (struct sql_result *)&sc;
		struct sql_param p = SQL_PARAM_STR("x'OR'1'='1");

		assert_non_null(pool);
		/* Twice: a failed connect gives its pool slot back. */
		for (int k = 0; k < 2; k++) {
			err[0] = '\0';
			assert_int_equal(sql_pool_exec(pool, "SELECT ?", &p, 1,
			    &r, err, sizeof(err)), SQL_ERR_CONN);
			assert_null(r);
			assert_true(err[0] != '\0');
		}
		sql_pool_free(&pool);
		assert_null(pool);
	}
}

static void
test_password_file(void **state)
{
	struct sql_cfg sc = { .driver = SQL_DRIVER_PGSQL, .pool_size = 1,
	    .password_file = pwpath, .connect_timeout = 1 };
	char err[SQL_ERR_MAX];
	struct sql_pool *pool;

	(void)state;
	unlink(pwpath);
	assert_null(sql_pool_new(&sc, err, sizeof(err)));
	assert_non_null(strstr(err, pwpath));
	write_file(pwpath, "only the first line\r\nsecond\n");
	pool = sql_pool_new(&sc, err, sizeof(err));
	assert_non_null(pool);
	sql_pool_free(&pool);
}

static void
test_result_cells(void **state)
{
	struct sql_result *r = sql_result_new(2);
	struct sql_cell *row;
	size_t len = 99;

	(void)state;
	for (int i = 0; i < 10; i++) {
		row = sql_result_add_row(r);
		sql_cell_set(&row[0], "a\0b", 3);
	}
	assert_int_equal(sql_result_rows(r), 10);
	assert_int_equal(sql_result_cols(r), 2);
	assert_memory_equal(sql_result_get(r, 9, 0, &len), "a\0b", 3);
	assert_int_equal(len, 3);
	assert_null(sql_result_get(r, 9, 1, &len));	/* SQL NULL */
	assert_null(sql_result_get(r, 10, 0, &len));	/* no such row */
	assert_int_equal(len, 0);
	sql_result_free(&r);
	assert_null(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sql_defaults, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sql_absent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sql_errors_at_their_keys,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sql_userdb_load_errors,
		    setup, teardown),
		cmocka_unit_test(test_pool_without_server_fails_cleanly),
		cmocka_unit_test_setup_teardown(test_password_file, setup,
		    teardown),
		cmocka_unit_test(test_result_cells),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
