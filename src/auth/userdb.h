/*
 * userdb.h - the set of users: from the config's Users[] and an optional
 * Dovecot-format passwd-file.  A userdb is an immutable, refcounted
 * snapshot: SIGHUP builds a new one while sessions keep the old.
 */
#ifndef POSUTO_USERDB_H
#define POSUTO_USERDB_H

#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"

struct userdb;

struct userdb_entry {
	const char *name;
	const char *password;		/* "{SCHEME}..." */
	const char *apop_secret;	/* NULL if APOP not configured */
	const char *mailbox_path;	/* expanded, absolute */
	enum mbox_format format;	/* AUTO = detect */
};

/* Returns NULL on error (each one written to errs, naming file and line). */
struct userdb *userdb_load(const struct posuto_config *cfg, FILE *errs);
void userdb_ref(struct userdb *db);
void userdb_unref(struct userdb **db);

/* Exact, case-sensitive match; NULL if no such user.  The entry lives as
 * long as the caller's reference on db. */
const struct userdb_entry *userdb_lookup(const struct userdb *db,
    const char *name);
/* True if at least one user has an APOP secret. */
bool userdb_has_apop(const struct userdb *db);

/*
 * Allowlist for user names arriving from clients or files: 1..USERNAME_MAX
 * bytes of printable ASCII or UTF-8, no '/', no control chars, no leading
 * '.', no "..".  Checked before any lookup or path expansion.
 */
bool userdb_name_valid(const char *name, size_t len);

/*
 * Expands a mailbox template: %u user, %n local part (before '@'),
 * %d domain (after '@', empty if none), %% a percent sign.
 * Returns NULL (and sets *why_r) for an unknown %-sequence.
 */
char *userdb_expand_path(const char *tmpl, const char *user,
    const char **why_r);

#endif
