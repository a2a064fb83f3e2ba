/*
 * userdb.h - the set of users, as one immutable, refcounted snapshot that
 * SIGHUP replaces while sessions keep the old one.  The users come from
 * drivers (OpenSMTPD's table backends): "static" (the config's Users[])
 * and "passwd-file" (a Dovecot passwd-file, PasswdFile), with room for
 * "sql" and others (userdb_int.h says how to add one).  Every configured
 * driver is asked in that order; a user defined by two of them (or twice
 * in one) is an error at load.
 *
 * passwd-file lines (as /etc/dovecot/users, seed 001):
 *   user:{SCHEME}pass:uid:gid:gecos:home:shell:extra_fields
 * '#' comments and blank lines are skipped; only user and password are
 * required; a password without {SCHEME} is {CRYPT} (Dovecot's default for
 * passwd-file).  Numeric uid/gid are kept in the entry (posuto does not
 * switch to per-user ids); gecos and shell are ignored.  Extra fields
 * "mail=" / "userdb_mail=" with Dovecot's "maildir:PATH" (~ = home) set
 * that user's mailbox location; posuto's own "login_delay=SECONDS" and
 * "expire=DAYS|never" (also with the "userdb_" prefix) override
 * LoginDelay and Expire for that user; "apop=SECRET" is its APOP secret.
 *
 * Threads: userdb_lookup() may block (an SQL driver waits for its
 * server), so it runs on a worker thread only (pop3_job.c, auth.c,
 * sasl_scram.c); so does userdb_iterate() (the expiry job).  The other
 * calls read what load computed and are fine on the event loop.
 */
#ifndef POSUTO_USERDB_H
#define POSUTO_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"

struct userdb;

/* uid/gid of a user whose driver has none (static) or left it empty. */
#define USERDB_ID_NONE	((uint32_t)-1)

struct userdb_entry {
	const char *name;
	const char *password;		/* "{SCHEME}...", checked at load */
	const char *apop_secret;	/* NULL if APOP not configured */
	/* Mailbox location, "FORMAT:PATH" with FORMAT maildir, emldir or
	 * auto (detect at open): what mailbox_open() takes (store.h). */
	const char *location;
	const char *mailbox_path;	/* expanded, absolute */
	const char *format;		/* FORMAT as given (MailboxFormat) */
	const char *home;		/* passwd-file home field or NULL */
	uint32_t uid, gid;		/* passwd-file fields or USERDB_ID_NONE */
	size_t cost_class;		/* see userdb_cost_class_secret() */
	/* RFC 2449 policies in effect for this user (own or server's). */
	unsigned login_delay;		/* s; 0 = none */
	int expire_days;		/* days, or EXPIRE_NEVER */
	const char *origin;		/* where it is defined, for messages */
};

enum userdb_result {
	USERDB_OK = 0,
	USERDB_NOT_FOUND,
	USERDB_TEMPFAIL,		/* the driver's backend failed: retry */
};

/* What CAPA says before login, when the user is not known yet: the
 * least favourable value any user has, and whether they differ. */
struct userdb_policy {
	unsigned login_delay_max;
	bool login_delay_varies;
	int expire_min;			/* EXPIRE_NEVER only if all are */
	bool expire_varies;
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

/*
 * Exact, case-sensitive match, asking the drivers in order.  On USERDB_OK
 * *entry_r lives as long as the caller's reference on db; otherwise it is
 * NULL.  May block: worker threads only.
 */
enum userdb_result userdb_lookup(const struct userdb *db, const char *name,
    const struct userdb_entry **entry_r);

/*
 * The user whose own mail address is addr (exact), from the drivers that
 * keep addresses (sql with Schema "tpops": user.mail, as tpops-store
 * looked it up); USERDB_NOT_FOUND if none does.  Delivery asks this
 * first, then userdb_lookup() by name.  Worker threads only.
 */
enum userdb_result userdb_lookup_address(const struct userdb *db,
    const char *addr, const struct userdb_entry **entry_r);

/* Return false to stop the iteration. */
typedef bool userdb_iter_fn(const struct userdb_entry *e, void *arg);
/* Calls fn for every user, driver by driver, each driver's in name
 * order.  False if fn stopped it.  May block: worker threads only. */
bool userdb_iterate(const struct userdb *db, userdb_iter_fn *fn, void *arg);
/* True if at least one user has an APOP secret. */
bool userdb_has_apop(const struct userdb *db);
const struct userdb_policy *userdb_policy(const struct userdb *db);

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
 * The one allowlist for user names, whether from clients, the config or a
 * passwd-file: 1..USERNAME_MAX bytes of printable ASCII or well-formed
 * UTF-8 (no overlongs, surrogates or C1 controls); no space (USER could
 * not send it), control chars, '/', '\\' or ':' (the passwd-file
 * separator); no leading '.', no "..".  Checked before any lookup or path
 * expansion.  userdb_name_check() says why in *why_r (if not NULL).
 */
bool userdb_name_check(const char *name, size_t len, const char **why_r);
static inline bool
userdb_name_valid(const char *name, size_t len)
{
	return userdb_name_check(name, len, NULL);
}

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
