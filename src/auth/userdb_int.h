/*
 * userdb_int.h - the userdb driver interface (private to src/auth).
 *
 * A driver is a table of functions picked by name, as OpenSMTPD's
 * struct table_backend: userdb.c keeps the built-in ones in an array and
 * asks each configured one, in array order, for its part of a snapshot.
 * Adding a driver (docs/HACKING.md): write userdb_<name>.c with a
 * `const struct userdb_driver userdb_driver_<name>`, list it in
 * userdb_drivers[] (userdb.c) and in src/auth/meson.build.
 *
 * Drivers that hold their users in memory (static, passwd-file) share the
 * sorted table below and its lookup/iterate/free.  A driver whose users
 * live elsewhere (sql) implements lookup itself; it may block there.
 */
#ifndef POSUTO_USERDB_INT_H
#define POSUTO_USERDB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "auth/userdb.h"
#include "lib/log.h"

/* What a driver's load reports into. */
struct userdb_load_ctx {
	const struct posuto_config *cfg;
	FILE *errs;			/* NULL: count only */
	unsigned n_errors;
};

/* One line to ctx->errs; an error makes userdb_load() fail, after every
 * driver has reported all of its problems. */
void userdb_load_error(struct userdb_load_ctx *ctx, const char *fmt, ...)
    LOG_PRINTF(2, 3);
/* "warning: " and the line; does not fail the load. */
void userdb_load_warning(struct userdb_load_ctx *ctx, const char *fmt, ...)
    LOG_PRINTF(2, 3);

/* A driver's part of one snapshot. */
struct userdb_source;

/* Entries are mutable for the front door (it sets cost_class at load). */
typedef bool userdb_source_iter_fn(struct userdb_entry *e, void *arg);

struct userdb_driver {
	const char *name;		/* "static", "passwd-file", "sql", ... */
	/* True if cfg asks for this driver (Users[] given, PasswdFile). */
	bool (*configured)(const struct posuto_config *cfg);
	/* Reads the driver's users, reporting every problem into ctx; the
	 * source is returned even then (duplicates are checked across
	 * drivers afterwards).  NULL: nothing usable, error reported. */
	struct userdb_source *(*load)(struct userdb_load_ctx *ctx);
	/* Exact, case-sensitive; the entry lives as long as src.  May
	 * block: called on worker threads only. */
	enum userdb_result (*lookup)(struct userdb_source *src,
	    const char *name, struct userdb_entry **entry_r);
	/* Optional: the user whose mail address is addr, for a driver
	 * whose users have one (TPOPS's user.mail).  Same rules as lookup. */
	enum userdb_result (*lookup_address)(struct userdb_source *src,
	    const char *addr, struct userdb_entry **entry_r);
	/* Every user, in name order; false if fn stopped.  Used at load
	 * (cost classes, CAPA policy, duplicates) and by the expiry job.
	 * A driver that cannot list its users sets this NULL (its users
	 * then form no cost class of their own). */
	bool (*iterate)(struct userdb_source *src, userdb_source_iter_fn *fn,
	    void *arg);
	/* Optional, for a driver that cannot iterate: true if its users
	 * may have APOP secrets (the greeting then offers APOP). */
	bool (*has_apop)(struct userdb_source *src);
	void (*free)(struct userdb_source *src);
};

extern const struct userdb_driver userdb_driver_static;
extern const struct userdb_driver userdb_driver_passwd_file;
extern const struct userdb_driver userdb_driver_sql;

/* The built-in driver called name, or NULL. */
const struct userdb_driver *userdb_driver_find(const char *name);

/* ---- the in-memory table (userdb_table.c) ---- */

/* One user of a table; pub points into the strings. */
struct userdb_user {
	struct userdb_entry pub;
	char *name;
	char *password;
	char *apop_secret;
	char *mailbox_path;
	char *location;
	char *format;			/* pub.format */
	char *home;
	char *origin;			/* "FILE:LINE" and the like */
	size_t seq;			/* order of definition, for messages */
};

struct userdb_source *userdb_table_new(void);
/* A zeroed user appended to the table (ids USERDB_ID_NONE, policy the
 * server's); the pointer is valid until the next add. */
struct userdb_user *userdb_table_add(struct userdb_source *t,
    const struct posuto_config *cfg);
/* Users added so far, and the i-th (for a driver's own checks at load). */
size_t userdb_table_size(const struct userdb_source *t);
struct userdb_user *userdb_table_at(struct userdb_source *t, size_t i);
/* Sorts, reports a name defined twice, sets pub.  Call once, last. */
void userdb_table_finish(struct userdb_load_ctx *ctx,
    struct userdb_source *t);
enum userdb_result userdb_table_lookup(struct userdb_source *t,
    const char *name, struct userdb_entry **entry_r);
bool userdb_table_iterate(struct userdb_source *t, userdb_source_iter_fn *fn,
    void *arg);
void userdb_table_free(struct userdb_source *t);

/* Checks u's name and password, reporting at u->origin.  False if bad. */
bool userdb_user_check(struct userdb_load_ctx *ctx, struct userdb_user *u);
/* Sets u's mailbox from the first template that applies (userdb_load()
 * in userdb.h); tmpl is the user's own one or NULL.  False if bad. */
bool userdb_user_set_mailbox(struct userdb_load_ctx *ctx,
    struct userdb_user *u, const char *tmpl);

#endif
