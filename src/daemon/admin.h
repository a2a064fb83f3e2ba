/*
 * admin.h - the daemon's side of the web admin: starts src/http on its own
 * thread and fills its struct http_admin_source from the net runtime
 * (generation, counters, session registry), and `posuto admin passwd`.
 *
 * Threads: admin_new/start/reloaded/tick/free run on the daemon's loop;
 * the source callbacks run on the HTTP thread.
 */
#ifndef POSUTO_ADMIN_H
#define POSUTO_ADMIN_H

#include <stdbool.h>

struct admin;
struct autoconfig_info;
struct net_runtime;
struct posuto_config;

/*
 * Binds the admin port (call before the privilege drop).  With no
 * Admin.PasswordHash, generates a password, logs it once and stores its
 * hash in the config file.  *a_r is NULL when Admin is not enabled.
 * False (logged) on failure.
 */
bool admin_new(const struct posuto_config *cfg, struct net_runtime *rt,
    struct admin **a_r);
/* Starts the HTTP thread (after the privilege drop). */
bool admin_start(struct admin *a);
/* After a reload (the new generation is current): the password, and
 * live pages told to fetch users and settings again. */
void admin_reloaded(struct admin *a, const struct posuto_config *cfg);
/* Once a second from the loop: tells pages when sessions come and go. */
void admin_tick(struct admin *a);
void admin_free(struct admin **a);

/* The client setup documents' view of cfg (admin_autoconfig.c); false
 * when there is no POP3 listener to name. */
bool admin_autoconfig_fill(const struct posuto_config *cfg,
    struct autoconfig_info *ai);
/*
 * What applies an edit the web admin made to the files: the server's
 * reload (as SIGHUP), run on the loop thread; true if the new
 * configuration is in effect.  Until set, edits wait for the file
 * watcher.
 */
typedef bool admin_reload_fn(void *arg);
void admin_set_reload(struct admin *a, admin_reload_fn *fn, void *arg);

/* `posuto admin passwd [-c FILE] [--scheme S]`; argv[0] is "admin". */
int cmd_admin(int argc, char **argv, const char *default_config);

#endif
