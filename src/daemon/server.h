/* server.h - the daemon: listeners, signals, reload, the event loop. */
#ifndef POSUTO_SERVER_H
#define POSUTO_SERVER_H

#include <stdbool.h>
#include <stdio.h>

struct posuto_config;
struct tls_ctx;
struct userdb;

struct server_opts {
	const char *config_path;
	bool use_syslog;
	bool inetd;		/* one session on stdin/stdout */
	int ready_fd;		/* -1, or gets a line once the ports are bound */
};

/*
 * What serve loads and checks after the file itself, shared with
 * check-config so that a config it passes also starts: with startup, that
 * Enabled is true and RunAsUser exists; always, the users (passwd-file
 * included) and the TLS certificate and key.  Each problem is written to
 * errs (NULL: the log) as "FILE:LINE:COL: KEY: message".  Returns false
 * if there was one; otherwise *db_r and *tls_r (NULL without Tls) are
 * the caller's.
 */
bool server_load_runtime(const struct posuto_config *cfg, bool startup,
    FILE *errs, struct userdb **db_r, struct tls_ctx **tls_r);

/* Opens the mailbox lock file cfg names (or the default), shared with
 * RunAsUser when run as root; false with the path and the reason in err. */
bool server_lock_file_open(const struct posuto_config *cfg, char *err,
    size_t errsz);

/* Runs until SIGTERM/SIGINT (or the inetd session ends).  Returns the
 * process exit code. */
int server_run(const struct server_opts *opts);

#endif
