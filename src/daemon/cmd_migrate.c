/*
 * cmd_migrate.c - `posuto migrate check` (cmd_migrate.h): opens each
 * user's mailbox with the UIDL source forced (store_uidl_force()) and
 * reports, message by message, what the store decided.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/cmd_migrate.h"
#include "daemon/privdrop.h"
#include "lib/log.h"
#include "store/store.h"

#define MIGRATE_EXIT_USAGE	64
/* Changed messages listed one by one per user (-v: all). */
#define MIGRATE_LIST_MAX	20

static void
migrate_usage(FILE *f)
{
	fprintf(f,
	    "usage: posuto migrate check [-c FILE]\n"
	    "           --from dovecot|courier|uw|qpopper|tpops\n"
	    "           [--format FMT] [-v] USER...\n"
	    "  For each USER: how many messages keep the UIDL the old server\n"
	    "  gave them, and which would change and why.  --format is\n"
	    "  Dovecot's pop3_uidl_format (default: UidlFormat, else\n"
	    "  %%08Xu%%08Xv).  Exit 0 if every message keeps its UIDL.\n");
}

static const char *
migrate_why(const char *status, const char *from)
{
	if (strcmp(status, "new") == 0 && strcmp(from, "uw") == 0)
		return "no X-UID header (mail that came after c-client): "
		    "posuto's own UIDL";
	if (strcmp(status, "new") == 0 && strcmp(from, "qpopper") == 0)
		return "no X-UIDL header (mail that came after qpopper): "
		    "posuto's own UIDL";
	if (strcmp(status, "new") == 0 && strcmp(from, "tpops") == 0)
		return "TPOPS never listed it (its name does not start with "
		    "digits and '.'): posuto's own UIDL";
	if (strcmp(status, "new") == 0)
		return "not in the old server's list (it never listed it): "
		    "posuto's own UIDL";
	if (strcmp(status, "renumbered") == 0)
		return "the X-IMAPbase/X-UID headers are missing or do not "
		    "rise, so c-client renumbered the mailbox: posuto's own UIDL";
	if (strcmp(status, "invalid") == 0)
		return "its old UIDL is not a valid RFC 1939 unique-id: "
		    "replaced by posuto's own";
	if (strcmp(status, "duplicate") == 0)
		return "its old UIDL repeats another message's: replaced by "
		    "posuto's own";
	if (strcmp(status, "format") == 0)
		return "the format cannot be computed for it (Dovecot's %m is "
		    "for mbox only): posuto's own UIDL";
	if (strcmp(status, "nolist") == 0)
		return strcmp(from, "dovecot") == 0 ?
		    "there is no usable dovecot-uidlist: posuto's own UIDL" :
		    "there is no usable courierpop3dsizelist: posuto's own UIDL";
	return status;
}

/* One user; false if something changes or the mailbox cannot be read. */
static bool
migrate_user(const struct userdb_entry *e, const char *from, bool verbose)
{
	struct mailbox *mb = NULL;
	char err[256], src[256];
	enum store_status st;
	uint32_t n, kept = 0, shown = 0;

	st = mailbox_open(e->location, e->name, &mb, err, sizeof(err));
	if (st != STORE_OK) {
		printf("%s: cannot open %s: %s\n", e->name, e->mailbox_path,
		    st == STORE_IN_USE ? "a POP3 session holds it; try again" :
		    err[0] != '\0' ? err : "error");
		return false;
	}
	n = mailbox_count(mb);
	for (uint32_t i = 0; i < n; i++) {
		const char *old;

		if (strcmp(mailbox_uidl_status(mb, i, &old), "kept") == 0)
			kept++;
	}
	mailbox_uidl_source(mb, src, sizeof(src));
	printf("%s: %s: %u message%s, %u keep their UIDL, %u change "
	    "(UIDLs from %s)\n", e->name, e->mailbox_path, (unsigned)n,
	    n == 1 ? "" : "s", (unsigned)kept, (unsigned)(n - kept), src);
	for (uint32_t i = 0; i < n; i++) {
		const char *old, *status = mailbox_uidl_status(mb, i, &old);

		if (strcmp(status, "kept") == 0)
			continue;
		if (!verbose && shown++ >= MIGRATE_LIST_MAX) {
			printf("  ... (-v lists all)\n");
			break;
		}
		printf("  message %u: UIDL %s%s%s%s: %s\n", (unsigned)i + 1,
		    mailbox_msg_uidl(mb, i), old != NULL ? " (was \"" : "",
		    old != NULL ? old : "", old != NULL ? "\")" : "",
		    migrate_why(status, from));
	}
	mailbox_close(&mb);
	return kept == n;
}

int
cmd_migrate(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "from", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = default_config, *from = NULL, *fmt = NULL;
	struct posuto_config *cfg = NULL;
	struct userdb *db = NULL;
	bool verbose = false, all = true;
	int c, rc = 0;

	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
		    strcmp(argv[1], "--help") == 0)) {
			migrate_usage(stdout);
			return 0;
		}
		migrate_usage(stderr);
		return MIGRATE_EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'F':
			fmt = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			migrate_usage(stdout);
			return 0;
		default:
			migrate_usage(stderr);
			return MIGRATE_EXIT_USAGE;
		}
	}
	if (from == NULL || optind >= argc) {
		migrate_usage(stderr);
		return MIGRATE_EXIT_USAGE;
	}
	if (strcmp(from, "dovecot") != 0 && strcmp(from, "courier") != 0 &&
	    strcmp(from, "uw") != 0 && strcmp(from, "qpopper") != 0 &&
	    strcmp(from, "tpops") != 0) {
		fprintf(stderr, "posuto migrate: --from %s: posuto reads the "
		    "UIDLs of dovecot, courier and tpops Maildirs, uw and "
		    "qpopper mboxes and TPOPS 0.4 databases\n", from);
		return MIGRATE_EXIT_USAGE;
	}
	if (config_load(config, &cfg, stderr) != 0)
		return 1;
	store_uidl_configure(cfg);
	store_mbox_configure(cfg->mbox_state_dir);
	/* the database stores as the server sets them up (tpops:, sql:) */
	store_sql_configure(&cfg->sql);
	{
		char err[256];

		if (!store_tpops_configure(&cfg->sql, err, sizeof(err))) {
			fprintf(stderr, "posuto migrate: Sql: %s\n", err);
			config_free(&cfg);
			return 1;
		}
	}
	store_uidl_force(from, fmt);
	if ((db = userdb_load(cfg, stderr)) == NULL) {
		config_free(&cfg);
		return 1;
	}
	if (getuid() == 0 && cfg->run_as_user != NULL) {
		char err[256];

		/* read the mailboxes as the server does */
		if (privdrop_to(cfg->run_as_user, err, sizeof(err)) != 0) {
			fprintf(stderr, "posuto migrate: cannot become %s: %s\n",
			    cfg->run_as_user, err);
			rc = 1;
			goto out;
		}
	}
	log_set_level(LOG_LVL_ERROR);
	for (int i = optind; i < argc; i++) {
		const struct userdb_entry *e;

		switch (userdb_lookup(db, argv[i], &e)) {
		case USERDB_OK:
			if (!migrate_user(e, from, verbose))
				all = false;
			break;
		case USERDB_NOT_FOUND:
			printf("%s: no such user in %s\n", argv[i], config);
			all = false;
			break;
		default:
			printf("%s: the user database failed; try again\n",
			    argv[i]);
			all = false;
			break;
		}
	}
	rc = all ? 0 : 1;
out:
	store_uidl_force(NULL, NULL);
	userdb_unref(&db);
	config_free(&cfg);
	return rc;
}
