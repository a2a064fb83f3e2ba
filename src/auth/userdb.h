/*
 * userdb.h - the set of users: from the config's Users[] and an optional
 * Dovecot-format passwd-file.  A userdb is an immutable, refcounted
 * snapshot: SIGHUP builds a new one while sessions keep the old.
 *
 * passwd-file lines (as /etc/dovecot/users, seed 001):
 *   user:{SCHEME}pass:uid:gid:gecos:home:shell:extra_fields
 * '#' comments and blank lines are skipped; only user and password are
 * required; a password without {SCHEME} is {CRYPT} (Dovecot's default for
 * passwd-file).  uid/gid/gecos/shell are ignored (posuto does not switch
 * to per-user ids).  Extra fields "mail=" / "userdb_mail=" with Dovecot's
 * "maildir:PATH" (~ = home) set that user's mailbox location.
 * A user defined twice (in either source) is an error.
 */
#ifndef POSUTO_USERDB_H
#define POSUTO_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

struct userdb;

struct userdb_entry {
	const char *name;
	const char *password;		/* "{SCHEME}...", checked at load */
	const char *apop_secret;	/* NULL if APOP not configured */
	const char *mailbox_path;	/* expanded, absolute */
	enum mbox_format format;	/* AUTO = detect */
	const char *home;		/* passwd-file home field or NULL */
	size_t cost_class;		/* see userdb_cost_class_secret() */
};

/*
 * Mailbox location of each user, first that applies: the user's own
 * MailboxPath / passwd-file mail= field, the config's MailboxPath, then
 * "<MailDir>/%u", then "%h/Maildir" for a passwd-file user with a home.
 * Returns NULL on error (each one written to errs, naming file and line);
 * warnings go to errs too, prefixed "warning: ".
 */
struct userdb *userdb_load(const struct posuto_config *cfg, FILE *errs);
/* Atomic: references may be taken and dropped from any thread. */
void userdb_ref(struct userdb *db);
void userdb_unref(struct userdb **db);

/* Exact, case-sensitive match; NULL if no such user.  The entry lives as
 * long as the caller's reference on db. */
const struct userdb_entry *userdb_lookup(const struct userdb *db,
    const char *name);
/* True if at least one user has an APOP secret. */
bool userdb_has_apop(const struct userdb *db);
size_t userdb_count(const struct userdb *db);
/* The i-th user (i < userdb_count()), in name order. */
const struct userdb_entry *userdb_entry_at(const struct userdb *db, size_t i);

/*
 * Cost classes, for I6 with users of different schemes: users whose
 * secrets cost the same to verify (same passwd_cost_key()) form a class,
 * numbered 0.. by falling size.  A failed login verifies one secret of
 * every class (the user's own for theirs, the class's first user's,
 * through passwd_verify_dummy(), for the others), so unknown users and
 * wrong passwords for cheap or costly schemes all cost the same.
 * At most USERDB_COST_CLASSES_MAX classes are kept (a warning says so);
 * users beyond them have cost_class USERDB_NO_CLASS.
 */
#define USERDB_COST_CLASSES_MAX	16
#define USERDB_NO_CLASS		((size_t)-1)
size_t userdb_cost_classes(const struct userdb *db);
const char *userdb_cost_class_secret(const struct userdb *db, size_t i);

/* True if there are users and every one has a {SCRAM-SHA-256} secret. */
bool userdb_all_scram(const struct userdb *db);
/* The {SCRAM-SHA-256} secret of the most common iteration count, whose
 * iterations and salt length fake SCRAM exchanges imitate; NULL if none. */
const char *userdb_scram_example(const struct userdb *db);

/*
 * Allowlist for user names arriving from clients or files: 1..USERNAME_MAX
 * bytes of printable ASCII or well-formed UTF-8 (no overlongs, surrogates
 * or C1 controls); no space, control chars, '/', '\\' or ':'; no leading
 * '.', no "..".  Checked before any lookup or path expansion.
 */
bool userdb_name_valid(const char *name, size_t len);

/*
 * Expands a mailbox template: %u user, %n local part (before the first
 * '@', as Dovecot), %d domain (after it, empty if none), %h home, %% a
 * percent sign.
 * The values are substituted once, never re-expanded.  Returns NULL (and
 * sets *why_r) for an unknown %-sequence, or %h when home is NULL.
 */
char *userdb_expand_path_home(const char *tmpl, const char *user,
    const char *home, const char **why_r);
/* Same without a home (%h is an error). */
char *userdb_expand_path(const char *tmpl, const char *user,
    const char **why_r);

#endif
