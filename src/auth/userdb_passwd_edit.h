/*
 * userdb_passwd_edit.h - changing users in a passwd-file (userdb.h has
 * the format) for `posuto user`: every line not edited stays byte for
 * byte (comments, blank lines, CRLF endings, fields posuto ignores).
 * Locking and the atomic replacement are config_edit.h's.
 */
#ifndef POSUTO_USERDB_PASSWD_EDIT_H
#define POSUTO_USERDB_PASSWD_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config_edit.h"

struct userdb_passwd_edit;

/* Locks and reads path (for_write: see config_edit_file_open()). */
bool userdb_passwd_edit_open(const char *path, bool for_write,
    struct userdb_passwd_edit **ed_r, char *err, size_t errsz);
void userdb_passwd_edit_free(struct userdb_passwd_edit **ed);

/* Line index of user name, or -1. */
long userdb_passwd_edit_find(const struct userdb_passwd_edit *ed,
    const char *name);
/* The stored password of line idx as the server reads it ("{SCHEME}..",
 * {CRYPT} when the field has no scheme); caller frees. */
char *userdb_passwd_edit_password(const struct userdb_passwd_edit *ed,
    long idx);

/*
 * Edits.  stored is "{SCHEME}data"; it may not hold ':' or a line
 * break, nor an APOP secret white space (the extra fields are separated
 * by it).  False with a reason in err; nothing is changed then.
 */
long userdb_passwd_edit_add(struct userdb_passwd_edit *ed, const char *name,
    const char *stored, char *err, size_t errsz);
bool userdb_passwd_edit_set_password(struct userdb_passwd_edit *ed, long idx,
    const char *stored, char *err, size_t errsz);
/* Sets the extra field apop=SECRET (NULL removes it). */
bool userdb_passwd_edit_set_apop(struct userdb_passwd_edit *ed, long idx,
    const char *secret, char *err, size_t errsz);
void userdb_passwd_edit_del(struct userdb_passwd_edit *ed, long idx);

/* Stages the new file (*tmp_r: its path, for checking) and commits it;
 * see config_edit.h. */
bool userdb_passwd_edit_stage(struct userdb_passwd_edit *ed,
    const char **tmp_r, char *err, size_t errsz);
bool userdb_passwd_edit_commit(struct userdb_passwd_edit *ed, char *err,
    size_t errsz);
const struct config_edit_file *userdb_passwd_edit_file(
    const struct userdb_passwd_edit *ed);

#endif
