/* main.c - command line: serve, check-config, hash, doctor, user, deliver. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "daemon/admin.h"
#include "config/config.h"
#include "daemon/cmd_doctor.h"
#include "daemon/cmd_deliver.h"
#include "daemon/cmd_hash.h"
#include "daemon/cmd_chaos.h"
#include "daemon/cmd_user.h"
#include "daemon/cmd_sql.h"
#include "daemon/cmd_migrate.h"
#include "daemon/server.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "net/tls.h"
#include "store/store.h"

#ifndef POSUTO_SYSCONFDIR
#define POSUTO_SYSCONFDIR "/etc/posuto"
#endif
#define DEFAULT_CONFIG POSUTO_SYSCONFDIR "/posuto.json"

#define EXIT_USAGE 64

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: posuto serve [-c FILE] [--syslog] [--inetd] [--ready-fd N]\n"
	    "       posuto check-config [-c FILE]\n"
	    "       posuto hash [--scheme SCHEME]\n"
	    "       posuto doctor [-c FILE] [--postfix-config DIR] [USER]\n"
	    "       posuto user add|passwd|del|apop NAME | list [-c FILE] ...\n"
	    "       posuto deliver [-c FILE] [-f SENDER] [-a ADDRESS] "
	    "RECIPIENT...\n"
	    "       posuto sql init | user add | import | export  (posuto sql -h)\n"
	    "       posuto admin passwd [-c FILE] [--scheme SCHEME]\n"
	    "       posuto chaos [-c FILE] [list | USER KIND [N] | USER clear]\n"
	    "       posuto migrate check [-c FILE] --from SERVER USER...\n"
	    "       posuto --version | --help\n"
	    "\n"
	    "  serve         run the POP3 server in the foreground, logging to\n"
	    "                stderr (--syslog: to syslog, facility mail);\n"
	    "                --inetd serves one session on stdin/stdout;\n"
	    "                --ready-fd N writes a line to descriptor N once\n"
	    "                every port is bound\n"
	    "  check-config  load the configuration, its users and certificates;\n"
	    "                print the effective configuration, or every error;\n"
	    "                exit 0 if valid, 78 if not\n"
	    "  hash          read a password (stdin or prompt), print its stored\n"
	    "                form for the config or a passwd-file; SCHEME (default\n"
	    "                %s) is one of\n",
	    CMD_HASH_DEFAULT_SCHEME);
	cmd_hash_list_schemes(f, 16);
	fprintf(f,
	    "                (SHA256, SHA512: the bare hex of a JumboDogX config)\n"
	    "  doctor        check each user's mailbox (or USER's): where it is,\n"
	    "                owner, mode, access as RunAsUser, messages, LF files;\n"
	    "                where Postfix delivers (postconf; --postfix-config\n"
	    "                DIR for another main.cf) and whether posuto reads\n"
	    "                the same place; the TLS certificate's expiry; exit 1\n"
	    "                if a finding is an ERROR\n"
	    "  user          add, change (passwd, apop), remove (del) and list\n"
	    "                users in the config or its passwd-file; a running\n"
	    "                server picks the change up (posuto user --help)\n"
	    "  deliver       store the message on stdin in each RECIPIENT's\n"
	    "                mailbox (an MTA's delivery agent); -f envelope\n"
	    "                sender, -a address for Delivered-To; sysexits\n"
	    "  admin passwd  set the web admin's password (Admin.PasswordHash)\n"
	    "                in the config file, read like hash's\n"
	    "  chaos         make the server misbehave for one user, to test a\n"
	    "                mail client (Pop3Server.Faults; posuto chaos -h)\n"
	    "  migrate check before switching from dovecot or courier: per\n"
	    "                USER, how many messages keep their UIDL and why\n"
	    "                others would change (posuto migrate --help)\n"
	    "\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "\n"
	    "SIGTERM/SIGINT stop gracefully; SIGHUP reloads users, passwords and\n"
	    "certificates.  See posuto(8) and posuto.json(5).\n", DEFAULT_CONFIG);
}

/* Mailbox permission problems of every user, as warnings: they refuse a
 * login or a message, not the configuration (store.h: mailbox_check). */
static bool
check_mailbox_perms(const struct userdb_entry *e, void *arg)
{
	(void)arg;
	(void)mailbox_check(e->name, e->location, stderr);
	return true;
}

/* Everything serve would load and check before binding: the file, its
 * Enabled and RunAsUser, the users (passwd-file included) and the TLS
 * certificate and key. */
static int
check_config(const char *path)
{
	struct posuto_config *cfg;
	struct userdb *db;
	struct tls_ctx *tls;
	int rc = 0;

	if (config_load(path, &cfg, stderr) != 0)
		return EXIT_CONFIG;
	if (!server_load_runtime(cfg, true, stderr, &db, &tls))
		rc = EXIT_CONFIG;
	else
		(void)userdb_iterate(db, check_mailbox_perms, NULL);
	userdb_unref(&db);
	tls_ctx_unref(&tls);
	if (rc == 0)
		config_dump(cfg, stdout);
	config_free(&cfg);
	return rc;
}

static int
cmd_serve(int argc, char **argv, bool check_only)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "syslog", no_argument, NULL, 's' },
		{ "inetd", no_argument, NULL, 'i' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_opts opts = { .config_path = DEFAULT_CONFIG, .ready_fd = -1 };
	const char *bad;
	uint32_t fd;
	int ch;

	optind = 1;
	opterr = 0;	/* our messages name the command: see below */
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opts.config_path = optarg;
			break;
		case 's':
			opts.use_syslog = true;
			break;
		case 'i':
			opts.inetd = true;
			break;
		case 'r':
			if (!parse_u32(optarg, strlen(optarg), &fd) || fd > 1024 ||
			    fd <= 2 || fcntl((int)fd, F_GETFD) == -1) {
				fprintf(stderr, "posuto: --ready-fd %s: not an open "
				    "descriptor above 2\n", optarg);
				return EXIT_USAGE;
			}
			opts.ready_fd = (int)fd;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			/* The argument just read, or (inside a group of
			 * short options) the one being read. */
			bad = argv[optind - 1];
			if ((optind == 1 || bad[0] != '-') && optind < argc)
				bad = argv[optind];
			fprintf(stderr, "posuto %s: %s '%s'\n", argv[0],
			    ch == ':' ? "missing argument to" : "bad option",
			    bad);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (check_only && (opts.use_syslog || opts.inetd ||
	    opts.ready_fd >= 0)) || (opts.inetd && opts.ready_fd >= 0)) {
		/* Say which argument is wrong, not just the usage. */
		if (optind != argc)
			fprintf(stderr, "posuto %s: unexpected argument '%s'\n",
			    argv[0], argv[optind]);
		else if (check_only)
			fprintf(stderr, "posuto check-config: %s is an option "
			    "of serve only\n", opts.inetd ? "--inetd" :
			    opts.use_syslog ? "--syslog" : "--ready-fd");
		else
			fprintf(stderr, "posuto serve: --ready-fd cannot be "
			    "used with --inetd\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (check_only)
		return check_config(opts.config_path);
	return server_run(&opts);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("posuto %s\n", POSUTO_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1, false);
	if (strcmp(argv[1], "check-config") == 0)
		return cmd_serve(argc - 1, argv + 1, true);
	if (strcmp(argv[1], "hash") == 0)
		return cmd_hash(argc - 1, argv + 1);
	if (strcmp(argv[1], "doctor") == 0)
		return cmd_doctor(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (strcmp(argv[1], "user") == 0)
		return cmd_user(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (strcmp(argv[1], "deliver") == 0)
		return cmd_deliver(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (strcmp(argv[1], "sql") == 0)
		return cmd_sql(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (strcmp(argv[1], "admin") == 0)
		return cmd_admin(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (strcmp(argv[1], "chaos") == 0)
		return cmd_chaos(argc - 1, argv + 1, DEFAULT_CONFIG);
	fprintf(stderr, "posuto: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
