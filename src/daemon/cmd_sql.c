/*
 * cmd_sql.c - `posuto sql ...`: the schema and users of the sql userdb.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/cmd_sql.h"
#include "daemon/cmd_sql_move.h"
#include "lib/params.h"
#include "lib/xmalloc.h"
#include "sql/sql.h"
#include "store/store.h"

#define EXIT_USAGE	64
#define EXIT_TEMPFAIL	75

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: posuto sql init [-c FILE]\n"
	    "       posuto sql user add [-c FILE] [--scheme SCHEME]\n"
	    "                           [--location LOCATION] NAME\n"
	    "       posuto sql import [-c FILE] --from LOCATION NAME\n"
	    "       posuto sql export [-c FILE] --to LOCATION NAME\n"
	    "\n"
	    "  init      create posuto's tables in the database of\n"
	    "            Pop3Server.Sql, or bring them to this version's\n"
	    "            schema; safe to run again, and on several nodes\n"
	    "            at once.  With \"Schema\": \"tpops\" it only checks\n"
	    "            that TPOPS's tables are there (they are never changed)\n"
	    "  user add  add NAME to posuto_users with the password read from\n"
	    "            stdin (one line), hashed with SCHEME (default\n"
	    "            SHA512-CRYPT); LOCATION as in docs/sql.md\n"
	    "  import    copy the mailbox at LOCATION (maildir:, emldir:,\n"
	    "            mbox:) into NAME's sql mailbox, keeping UIDLs,\n"
	    "            arrival times and order; the source is only read;\n"
	    "            messages already there are skipped, so an\n"
	    "            interrupted run is completed by running it again\n"
	    "  export    the same from NAME's sql mailbox into the Maildir\n"
	    "            at LOCATION (maildir:PATH; run it as the Maildir's\n"
	    "            owner)\n");
}

static int
open_pool(const char *path, struct posuto_config **cfg_r,
    struct sql_pool **pool_r)
{
	char err[SQL_ERR_MAX], where[600];

	*pool_r = NULL;
	if (config_load(path, cfg_r, stderr) != 0)
		return EXIT_CONFIG;
	if ((*cfg_r)->sql.driver == SQL_DRIVER_NONE) {
		config_where(*cfg_r, "Pop3Server.Sql", where, sizeof(where));
		fprintf(stderr, "posuto sql: %s: not configured\n", where);
		config_free(cfg_r);
		return EXIT_CONFIG;
	}
	if (sql_driver_load((*cfg_r)->sql.driver, err, sizeof(err)) == NULL) {
		config_where(*cfg_r, "Pop3Server.Sql.Driver", where,
		    sizeof(where));
		fprintf(stderr, "posuto sql: %s: %s\n", where, err);
		config_free(cfg_r);
		return EXIT_CONFIG;
	}
	if ((*pool_r = sql_pool_new(&(*cfg_r)->sql, err, sizeof(err))) ==
	    NULL) {
		config_where(*cfg_r, "Pop3Server.Sql.PasswordFile", where,
		    sizeof(where));
		fprintf(stderr, "posuto sql: %s: %s\n", where, err);
		config_free(cfg_r);
		return EXIT_CONFIG;
	}
	return 0;
}

static int
sql_init(const char *path)
{
	struct posuto_config *cfg;
	struct sql_pool *pool;
	char err[SQL_ERR_MAX];
	int rc = open_pool(path, &cfg, &pool);

	if (rc != 0)
		return rc;
	if (cfg->sql.schema == SQL_SCHEMA_TPOPS) {
		if (sql_schema_check_tpops(pool, err, sizeof(err)) != 0) {
			fprintf(stderr, "posuto sql init: TPOPS tables: %s\n",
			    err);
			rc = EXIT_TEMPFAIL;
		} else {
			printf("TPOPS tables user and msg are there; posuto "
			    "uses them as they are\n");
		}
	} else if (sql_schema_init(pool, stdout, err, sizeof(err)) != 0) {
		fprintf(stderr, "posuto sql init: %s\n", err);
		rc = EXIT_TEMPFAIL;
	}
	sql_pool_free(&pool);
	config_free(&cfg);
	return rc;
}

static int
sql_user_add(const char *path, const char *name, const char *scheme,
    const char *location)
{
	static const char ins[] = "INSERT INTO posuto_users (name, password, "
	    "location) VALUES (?, ?, ?)";
	struct posuto_config *cfg;
	struct sql_pool *pool;
	char err[SQL_ERR_MAX], line[PASSWORD_MAX + 2];
	char *stored = NULL;
	const char *why;
	size_t len;
	int rc;

	if (!userdb_name_check(name, strlen(name), &why)) {
		fprintf(stderr, "posuto sql user add: %s\n", why);
		return EXIT_USAGE;
	}
	if (fgets(line, sizeof(line), stdin) == NULL ||
	    (len = strcspn(line, "\r\n")) == strlen(line)) {
		fprintf(stderr, "posuto sql user add: expected the password "
		    "as one line on stdin\n");
		return EXIT_USAGE;
	}
	line[len] = '\0';
	stored = passwd_hash(scheme, line, len);
	explicit_bzero(line, sizeof(line));
	if (stored == NULL) {
		fprintf(stderr, "posuto sql user add: cannot hash with "
		    "scheme %s\n", scheme);
		return EXIT_USAGE;
	}
	if ((rc = open_pool(path, &cfg, &pool)) != 0) {
		free_secret(stored);
		return rc;
	}
	if (cfg->sql.schema == SQL_SCHEMA_TPOPS) {
		fprintf(stderr, "posuto sql user add: Schema is tpops: add "
		    "users as TPOPS did (tpops-useradd)\n");
		rc = EXIT_USAGE;
	} else {
		struct sql_param p[3] = { SQL_PARAM_STR(name),
		    SQL_PARAM_STR(stored), SQL_PARAM_STR(location) };

		if (sql_pool_exec(pool, ins, p, 3, NULL, err, sizeof(err)) !=
		    SQL_OK) {
			fprintf(stderr, "posuto sql user add: %s\n", err);
			rc = EXIT_TEMPFAIL;
		}
	}
	free_secret(stored);
	sql_pool_free(&pool);
	config_free(&cfg);
	return rc;
}

static int
sql_move(const char *path, bool import, const char *name,
    const char *location)
{
	struct posuto_config *cfg;
	struct sql_pool *pool;
	const char *why;
	int rc;

	if (!userdb_name_check(name, strlen(name), &why)) {
		fprintf(stderr, "posuto sql %s: %s\n",
		    import ? "import" : "export", why);
		return EXIT_USAGE;
	}
	if (location == NULL) {
		fprintf(stderr, "posuto sql %s: %s LOCATION is needed\n",
		    import ? "import" : "export", import ? "--from" : "--to");
		return EXIT_USAGE;
	}
	/* the pool is only the check that Sql is there and loads */
	if ((rc = open_pool(path, &cfg, &pool)) != 0)
		return rc;
	sql_pool_free(&pool);
	store_uidl_configure(cfg);
	store_mbox_configure(cfg->mbox_state_dir);
	store_sql_configure(&cfg->sql);
	rc = cmd_sql_move(import, name, location);
	store_sql_configure(NULL);
	config_free(&cfg);
	return rc;
}

int
cmd_sql(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "scheme", required_argument, NULL, 's' },
		{ "location", required_argument, NULL, 'l' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = default_config, *scheme = "SHA512-CRYPT";
	const char *location = NULL, *from = NULL, *to = NULL;
	bool user_add, import, export;
	int ch;

	/* A database that drops the connection must give an error, not
	 * kill the command (libmariadb writes with plain send()). */
	(void)signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	user_add = argc >= 3 && strcmp(argv[1], "user") == 0 &&
	    strcmp(argv[2], "add") == 0;
	import = argc >= 2 && strcmp(argv[1], "import") == 0;
	export = argc >= 2 && strcmp(argv[1], "export") == 0;
	if (argc < 2 || (!user_add && !import && !export &&
	    strcmp(argv[1], "init") != 0)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= user_add ? 2 : 1;
	argv += user_add ? 2 : 1;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 's':
			scheme = optarg;
			break;
		case 'l':
			location = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "posuto sql: bad option or missing "
			    "argument: %s\n", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if ((import && to == NULL) || (export && from == NULL)) {
		if (optind + 1 == argc && location == NULL &&
		    strcmp(scheme, "SHA512-CRYPT") == 0)
			return sql_move(path, import, argv[optind],
			    import ? from : to);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (from != NULL || to != NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!user_add && optind == argc && (scheme == NULL ||
	    strcmp(scheme, "SHA512-CRYPT") == 0) && location == NULL)
		return sql_init(path);
	if (user_add && optind + 1 == argc)
		return sql_user_add(path, argv[optind], scheme, location);
	usage(stderr);
	return EXIT_USAGE;
}
