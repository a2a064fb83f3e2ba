/*
 * cmd_hash.h - `posuto hash [--scheme S]`: prints a stored secret
 * ("{SCHEME}...") for a password read from stdin (one line) or, on a
 * terminal, prompted twice on /dev/tty with echo off.
 */
#ifndef POSUTO_CMD_HASH_H
#define POSUTO_CMD_HASH_H

/* Default scheme for new secrets. */
#define CMD_HASH_DEFAULT_SCHEME	"SHA512-CRYPT"

/*
 * argv[0] is the subcommand name ("hash"); options follow.  Returns the
 * process exit status: 0 ok, 64 usage error (EX_USAGE), 1 other failure.
 */
int cmd_hash(int argc, char **argv);

#endif
