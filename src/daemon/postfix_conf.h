/*
 * postfix_conf.h - what Postfix's own tools say about its configuration,
 * for `posuto doctor`: postconf(1) for the delivery parameters, postmap(1)
 * for a lookup table entry.  Both run through fork + execve with an
 * argument vector (never a shell: nothing in a parameter value or a user
 * name is ever interpreted), stdin /dev/null, a fixed environment, their
 * output read up to POSTFIX_CONF_OUT_MAX and within POSTFIX_CONF_TIMEOUT_MS,
 * after which the child is killed.  postconf is found on PATH (absolute
 * entries only); postmap next to it.
 */
#ifndef POSUTO_POSTFIX_CONF_H
#define POSUTO_POSTFIX_CONF_H

#include <stdbool.h>
#include <stddef.h>

#define POSTFIX_CONF_OUT_MAX	(256 * 1024)
#define POSTFIX_CONF_TIMEOUT_MS	20000
/* Postfix's own default config directory. */
#define POSTFIX_CONF_DEFAULT_DIR	"/etc/postfix"

/* The parameters doctor reads, in postconf's spelling. */
enum postfix_param {
	POSTFIX_HOME_MAILBOX = 0,
	POSTFIX_MAIL_SPOOL_DIRECTORY,
	POSTFIX_MAILBOX_COMMAND,
	POSTFIX_MAILBOX_TRANSPORT,
	POSTFIX_VIRTUAL_MAILBOX_BASE,
	POSTFIX_VIRTUAL_TRANSPORT,
	POSTFIX_VIRTUAL_MAILBOX_MAPS,
	POSTFIX_VIRTUAL_MAILBOX_DOMAINS,
	POSTFIX_MYDESTINATION,
	POSTFIX_PARAM_COUNT,
};

enum postfix_conf_status {
	POSTFIX_CONF_OK = 0,
	POSTFIX_CONF_NO_POSTCONF,	/* not on PATH: Postfix not installed */
	POSTFIX_CONF_NO_MAIN_CF,	/* the directory has no main.cf */
	POSTFIX_CONF_FAILED,		/* postconf ran and failed */
};

struct postfix_conf {
	char *config_dir;
	char *postconf;			/* absolute path of postconf(1) */
	char *postmap;			/* next to it */
	/* Values as `postconf -x` prints them ($name expanded, the
	 * delivery-time $user etc. kept); NULL if not printed. */
	char *values[POSTFIX_PARAM_COUNT];
};

/*
 * Reads the parameters from config_dir (NULL: POSTFIX_CONF_DEFAULT_DIR)
 * with `postconf -c DIR -x NAME...`.  On anything but POSTFIX_CONF_OK, err
 * says why in plain words (postconf's own message included).  pc is
 * always initialised: free it with postfix_conf_free().
 */
enum postfix_conf_status postfix_conf_read(const char *config_dir,
    struct postfix_conf *pc, char *err, size_t errsz);
/* The value, "" if unset. */
const char *postfix_conf_get(const struct postfix_conf *pc,
    enum postfix_param p);
const char *postfix_conf_param_name(enum postfix_param p);

/*
 * `postmap -c DIR -q KEY MAP`: 1 and *value_r (malloc'd, first line) if
 * found, 0 if not, -1 with err if the lookup failed (unreadable table,
 * unknown type).  map is one "type:name" table.
 */
int postfix_conf_map_query(const struct postfix_conf *pc, const char *map,
    const char *key, char **value_r, char *err, size_t errsz);

/*
 * `postconf -c DIR -M SERVICE/unix`: the master.cf line of a transport,
 * malloc'd into *line_r (1), 0 if there is none, -1 on error.
 */
int postfix_conf_service(const struct postfix_conf *pc, const char *service,
    char **line_r, char *err, size_t errsz);

void postfix_conf_free(struct postfix_conf *pc);

#endif
