/*
 * cmd_migrate.h - `posuto migrate check [-c FILE] --from SERVER
 * [--format FMT] [-v] USER...`: before switching from another POP3 server
 * (dovecot, courier), says per user how many messages will keep the UIDL
 * that server gave them and which will not, and why, so clients that keep
 * mail on the server are known to download nothing again.  Reads the
 * mailbox as the server would (as RunAsUser when run as root); changes
 * nothing but posuto's own side files (its size index, and the UIDL
 * source it checked in ".posuto-uidl" where none was recorded yet).
 */
#ifndef POSUTO_CMD_MIGRATE_H
#define POSUTO_CMD_MIGRATE_H

/* argv[0] is "migrate".  Exit 0: every message keeps its UIDL; 1: some
 * would change or a mailbox could not be read; 64: bad command line. */
int cmd_migrate(int argc, char **argv, const char *default_config);

#endif
