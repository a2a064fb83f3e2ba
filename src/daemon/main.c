/* main.c - command line: serve, check-config, hash. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/cmd_hash.h"
#include "daemon/server.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "net/tls.h"

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
	    "                form for the config or a passwd-file\n"
	    "\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "\n"
	    "SIGTERM/SIGINT stop gracefully; SIGHUP reloads users, passwords and\n"
	    "certificates.  See posuto(8) and posuto.json(5).\n", DEFAULT_CONFIG);
}

/* Everything serve would load: the file, the users (passwd-file
 * included) and the TLS certificate and key. */
static int
check_config(const char *path)
{
	struct posuto_config *cfg;
	struct userdb *db;
	int rc = 0;

	if (config_load(path, &cfg, stderr) != 0)
		return EXIT_CONFIG;
	if ((db = userdb_load(cfg, stderr)) == NULL)
		rc = EXIT_CONFIG;
	userdb_unref(&db);
	if (cfg->tls.cert_file != NULL) {
		char err[512];
		struct tls_ctx *tls = tls_ctx_new(&cfg->tls, err, sizeof(err));
		if (tls == NULL) {
			fprintf(stderr, "%s: Tls: %s\n", path, err);
			rc = EXIT_CONFIG;
		}
		tls_ctx_unref(&tls);
	}
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
	uint32_t fd;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
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
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (check_only && (opts.use_syslog || opts.inetd ||
	    opts.ready_fd >= 0)) || (opts.inetd && opts.ready_fd >= 0)) {
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
	fprintf(stderr, "posuto: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
