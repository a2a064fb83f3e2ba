/*
 * cmd_hash.h - `posuto hash [--scheme S]`: prints a stored secret
 * ("{SCHEME}...") for a password read from stdin (one line) or, on a
 * terminal, prompted twice on /dev/tty with echo off.  SHA256 and SHA512
 * print the bare hex digest a JumboDogX config holds in Password (with
 * that HashType); SHA256.HEX and SHA512.HEX the same with the {SCHEME}
 * prefix, for a passwd-file.
 */
#ifndef POSUTO_CMD_HASH_H
#define POSUTO_CMD_HASH_H

#include <stdio.h>

/* Default scheme for new secrets. */
#define CMD_HASH_DEFAULT_SCHEME	"SHA512-CRYPT"

/* Writes the scheme names, wrapped and indented by indent columns. */
void cmd_hash_list_schemes(FILE *fp, int indent);

/*
 * Reads a secret (what: "password", "APOP secret") as hash does: one
 * line from stdin when it is not a terminal, else prompted twice on
 * /dev/tty with echo off.  buf holds at most bufsz - 2 bytes of it.
 * Returns its length, or -1 after a message prefixed who.
 */
int cmd_hash_read_secret(const char *who, const char *what, char *buf,
    size_t bufsz);

/*
 * argv[0] is the subcommand name ("hash"); options follow.  Returns the
 * process exit status: 0 ok, 64 usage error (EX_USAGE), 1 other failure.
 */
int cmd_hash(int argc, char **argv);

#endif
