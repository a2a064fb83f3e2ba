/*
 * cmd_user.h - `posuto user add|passwd|del|list|apop NAME`: user
 * administration on the config the server reads (posuto(8), USERS).
 *
 * Users live in the JSON config (Users[]) or in the passwd-file
 * (PasswdFile); add writes to the passwd-file when one is configured,
 * else to the JSON config (--to json|passwd-file chooses), and the other
 * commands edit the user where it is defined.  Every edit is checked by
 * loading the result as a reload would (config, users, certificates)
 * before it replaces the file, so what the server then picks up (it
 * watches both files) is a configuration it accepts.
 */
#ifndef POSUTO_CMD_USER_H
#define POSUTO_CMD_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes besides 0, 64 (usage) and 78 (the config has errors). */
#define CMD_USER_EXIT_REFUSED	1	/* bad input or I/O: nothing changed */
#define CMD_USER_EXIT_NOUSER	67	/* sysexits EX_NOUSER */

void cmd_user_usage(FILE *fp);

/*
 * The same edit for the web admin (its Users page): op is "add",
 * "passwd", "del" or "apop" (secret NULL: remove); nothing is read from
 * the terminal or printed, the first problem goes to msg.  Returns 0 or
 * an exit code as below (64 for an unknown scheme or op).
 */
struct cmd_user_req {
	const char *op;
	const char *config_path;
	const char *name;
	const char *scheme;		/* NULL: as `posuto user` chooses */
	const char *secret;		/* password / APOP secret */
	size_t secret_len;
	bool purge;			/* del: remove the mailbox too */
	int to_passwd_file;		/* add: -1 default, 0 json, 1 passwd-file */
};
int cmd_user_apply(const struct cmd_user_req *r, char *msg, size_t msgsz);

/* argv[0] is "user"; returns the exit status. */
int cmd_user(int argc, char **argv, const char *default_config);

#endif
