/*
 * cmd_sql.h - `posuto sql init` (create or migrate posuto's tables) and
 * `posuto sql user add NAME` (a user in posuto_users), `posuto sql
 * import/export` (cmd_sql_move.h), on the database
 * the config's Pop3Server.Sql names.  docs/sql.md has the schema.
 */
#ifndef POSUTO_CMD_SQL_H
#define POSUTO_CMD_SQL_H

/* argv[0] is "sql".  Returns the exit status: 0 ok, 64 usage, 78 config,
 * 75 (EX_TEMPFAIL) database unreachable or a statement failed. */
int cmd_sql(int argc, char **argv, const char *default_config);

#endif
