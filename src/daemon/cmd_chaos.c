/*
 * cmd_chaos.c - `posuto chaos [-c FILE] [list | USER KIND [N] |
 * USER clear [KIND]]` (see cmd_chaos.h, posuto(8)).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_edit.h"
#include "daemon/cmd_chaos.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"

#define CHAOS_EXIT_USAGE	64
#define CHAOS_EXIT_REFUSED	1	/* bad input or I/O: nothing changed */

static void
chaos_usage(FILE *f)
{
	fprintf(f,
	    "usage: posuto chaos [-c FILE] [list]\n"
	    "       posuto chaos [-c FILE] USER KIND [NUMBER]\n"
	    "       posuto chaos [-c FILE] USER clear [KIND]\n"
	    "kinds (and their NUMBER):\n"
	    "  in-use                -ERR [IN-USE] at login\n"
	    "  temp-fail [N]         -ERR [SYS/TEMP] at login, or to the N-th "
	    "command after it\n"
	    "  login-delay SECONDS   -ERR [LOGIN-DELAY] at login\n"
	    "  throttle BYTES/S      every reply at most this fast\n"
	    "  drop BYTES            close the connection this far into a "
	    "RETR or TOP\n"
	    "  delay MS              every reply this late\n"
	    "  wrong-size MESSAGE    LIST says one octet more for it\n"
	    "  uidl-drift MESSAGE    its UIDL changes in every session\n");
}

static void
chaos_list(const struct posuto_config *cfg)
{
	if (cfg->n_faults == 0) {
		printf("no faults in %s\n", cfg->path);
		return;
	}
	for (size_t i = 0; i < cfg->n_faults; i++) {
		const struct fault_cfg *f = &cfg->faults[i];
		const char *key = config_fault_kind_key(f->kind);
		unsigned v = 0;

		switch (f->kind) {
		case FAULT_TEMP_FAIL: v = f->command; break;
		case FAULT_LOGIN_DELAY: v = f->seconds; break;
		case FAULT_THROTTLE: v = f->bytes_per_second; break;
		case FAULT_DROP: v = f->after_bytes; break;
		case FAULT_DELAY: v = f->milliseconds; break;
		case FAULT_WRONG_SIZE:
		case FAULT_UIDL_DRIFT: v = f->message; break;
		default: key = NULL; break;
		}
		if (key != NULL)
			printf("%s %s %s=%u\n", f->user,
			    config_fault_kind_name(f->kind), key, v);
		else
			printf("%s %s\n", f->user,
			    config_fault_kind_name(f->kind));
	}
	if (!cfg->faults_for_remote)
		printf("(faults reach clients on this machine only: "
		    "FaultsForRemoteClients is false)\n");
}

/* Stages the edit, loads it as the server would, then commits. */
static int
chaos_commit(struct config_edit *ed, const char *path)
{
	struct posuto_config *ncfg = NULL;
	const char *tmp;
	char err[512];

	if (!config_edit_stage(ed, &tmp, err, sizeof(err))) {
		fprintf(stderr, "posuto chaos: %s\n", err);
		return CHAOS_EXIT_REFUSED;
	}
	if (config_load(tmp, &ncfg, stderr) != 0) {
		fprintf(stderr, "posuto chaos: the server would refuse the "
		    "result; %s not changed\n", path);
		return CHAOS_EXIT_REFUSED;
	}
	config_free(&ncfg);
	if (!config_edit_commit(ed, err, sizeof(err))) {
		fprintf(stderr, "posuto chaos: %s\n", err);
		return CHAOS_EXIT_REFUSED;
	}
	return 0;
}

int
cmd_chaos(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = default_config, *user, *verb;
	struct posuto_config *cfg = NULL;
	struct config_edit *ed = NULL;
	enum fault_kind kind = FAULT_IN_USE;
	const char *key = NULL;
	char err[512];
	uint32_t n = 0;
	int ch, rc = CHAOS_EXIT_REFUSED, nargs;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			chaos_usage(stdout);
			return 0;
		default:
			chaos_usage(stderr);
			return CHAOS_EXIT_USAGE;
		}
	}
	argv += optind;
	nargs = argc - optind;
	if (nargs == 0 || (nargs == 1 && strcmp(argv[0], "list") == 0)) {
		if (config_load(path, &cfg, stderr) != 0)
			return EXIT_CONFIG;
		chaos_list(cfg);
		config_free(&cfg);
		return 0;
	}
	if (nargs < 2 || nargs > 3) {
		chaos_usage(stderr);
		return CHAOS_EXIT_USAGE;
	}
	user = argv[0];
	verb = argv[1];
	if (strcmp(verb, "clear") != 0) {
		if (!config_fault_kind_lookup(verb, &kind)) {
			fprintf(stderr, "posuto chaos: unknown fault '%s'\n",
			    verb);
			chaos_usage(stderr);
			return CHAOS_EXIT_USAGE;
		}
		key = config_fault_kind_key(kind);
		if ((key == NULL && nargs == 3) || (nargs == 3 &&
		    !parse_u32(argv[2], strlen(argv[2]), &n))) {
			fprintf(stderr, "posuto chaos: %s takes %s\n", verb,
			    key != NULL ? "a number" : "no number");
			return CHAOS_EXIT_USAGE;
		}
		/* temp-fail alone: at login. */
		if (nargs == 2 && kind == FAULT_TEMP_FAIL)
			key = NULL;
		else if (nargs == 2 && key != NULL) {
			fprintf(stderr, "posuto chaos: %s needs its %s\n", verb,
			    key);
			return CHAOS_EXIT_USAGE;
		}
	} else if (nargs == 3 && !config_fault_kind_lookup(argv[2], &kind)) {
		fprintf(stderr, "posuto chaos: unknown fault '%s'\n", argv[2]);
		return CHAOS_EXIT_USAGE;
	}
	/* The file must load now: an edit never starts from a broken one. */
	if (config_load(path, &cfg, stderr) != 0) {
		fprintf(stderr, "posuto chaos: %s has errors; nothing changed\n",
		    path);
		return EXIT_CONFIG;
	}
	if (!config_edit_open(cfg->path, true, &ed, err, sizeof(err))) {
		fprintf(stderr, "posuto chaos: %s\n", err);
		goto out;
	}
	if (strcmp(verb, "clear") == 0) {
		size_t gone = config_edit_faults_clear(ed, user, nargs == 3 ?
		    argv[2] : NULL);

		if (gone == 0) {
			printf("%s has no such fault; nothing changed\n", user);
			rc = 0;
			goto out;
		}
		if ((rc = chaos_commit(ed, cfg->path)) == 0)
			printf("removed %zu fault%s of %s from %s\n", gone,
			    gone == 1 ? "" : "s", user, cfg->path);
		goto out;
	}
	config_edit_fault_set(ed, user, config_fault_kind_name(kind), key, n);
	if ((rc = chaos_commit(ed, cfg->path)) == 0)
		printf("fault %s set for %s in %s\n", verb, user, cfg->path);
out:
	config_edit_free(&ed);
	config_free(&cfg);
	return rc;
}
