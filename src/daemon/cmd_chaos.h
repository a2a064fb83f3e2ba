/*
 * cmd_chaos.h - `posuto chaos`: the faults of Pop3Server.Faults[], set and
 * cleared from the command line (the file is edited as `posuto user`
 * edits it; a running server picks the change up by itself).
 */
#ifndef POSUTO_CMD_CHAOS_H
#define POSUTO_CMD_CHAOS_H

/* argv[0] is "chaos". */
int cmd_chaos(int argc, char **argv, const char *default_config);

#endif
