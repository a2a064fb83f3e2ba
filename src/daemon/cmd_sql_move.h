/*
 * cmd_sql_move.h - `posuto sql import USER --from LOCATION` and
 * `posuto sql export USER --to LOCATION` (cmd_sql_move.c says how they
 * stay safe to interrupt and to run again).
 */
#ifndef POSUTO_CMD_SQL_MOVE_H
#define POSUTO_CMD_SQL_MOVE_H

#include <stdbool.h>

/* Copies the file store at location into "sql:USER" (import) or back
 * (export); the stores must be configured (store_sql_configure...).
 * Returns the exit status: 0 all there, 64 a bad location, 65 some
 * messages could not be copied (each named on stderr), 75 the database
 * or the files failed for now, or the mailbox is in use: run it again. */
int cmd_sql_move(bool import, const char *user, const char *location);

#endif
