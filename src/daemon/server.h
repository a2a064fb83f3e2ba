/* server.h - the daemon: listeners, signals, reload, the event loop. */
#ifndef POSUTO_SERVER_H
#define POSUTO_SERVER_H

#include <stdbool.h>

struct server_opts {
	const char *config_path;
	bool use_syslog;
	bool inetd;		/* one session on stdin/stdout */
	int ready_fd;		/* -1, or gets a line once the ports are bound */
};

/* Runs until SIGTERM/SIGINT (or the inetd session ends).  Returns the
 * process exit code. */
int server_run(const struct server_opts *opts);

#endif
