/*
 * cmd_deliver.h - `posuto deliver [-c FILE] [-f SENDER] [-a ADDRESS]
 * RECIPIENT...`: the local delivery agent for an MTA (Postfix
 * mailbox_command or pipe, a .qmail "|" line).  Reads one message on
 * stdin and stores it for every recipient (deliver/deliver.h); as root,
 * each recipient's delivery runs in a child that has dropped to the
 * mailbox owner.  Exit codes are sysexits, see posuto(8).
 */
#ifndef POSUTO_CMD_DELIVER_H
#define POSUTO_CMD_DELIVER_H

/* argv[0] is "deliver"; returns the exit status. */
int cmd_deliver(int argc, char **argv, const char *default_config);

#endif
