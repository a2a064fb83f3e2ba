/*
 * config_edit.h - editing the files the server reads (`posuto user`):
 * the JSON config, and, for auth's passwd-file editor, any small text
 * file.
 *
 * An edit is: open (takes an exclusive lock, reads), change in memory,
 * stage (writes a temporary file in the same directory with the
 * original's mode and owner, fsync), let the caller check the staged
 * file (load it as the server would), then commit (rename over the
 * original, fsync the directory) or free without committing (the
 * original is untouched, the temporary file removed).  So a reader, the
 * running server included, sees the old file or the new one, never a
 * mix, and a crash leaves at most a stray ".PATH.tmp.*" file.
 *
 * The lock is flock(2) on the file itself, re-taken if a concurrent edit
 * replaced the file meanwhile, so two `posuto user` runs queue and
 * neither loses the other's change; it needs no extra file.
 * A file without write permission for its owner, or in a directory we
 * cannot write, is refused as read-only, even for root: chmod a-w is an
 * administrator's way of saying "do not change this".
 */
#ifndef POSUTO_CONFIG_EDIT_H
#define POSUTO_CONFIG_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* How long open waits for another editor's lock, in seconds. */
#define CONFIG_EDIT_LOCK_WAIT	30

/* ---- any file ---- */

struct config_edit_file {
	char *path;		/* the real path (a symlink's target) */
	int fd;			/* the locked original */
	bool writable;		/* opened for_write: may be staged */
	mode_t mode;		/* the original's */
	uid_t uid;
	gid_t gid;
	char *data;		/* its contents, NUL-terminated */
	size_t len;
	char *tmp;		/* staged file, or NULL */
};

/*
 * Locks and reads path; for_write also refuses a read-only file or
 * directory (without it the file is only locked and read, and cannot be
 * staged).  false with a reason in err (naming the file).
 */
bool config_edit_file_open(struct config_edit_file *f, const char *path,
    bool for_write, char *err, size_t errsz);
/* Writes data to f->tmp (replacing an earlier stage) and fsyncs it. */
bool config_edit_file_stage(struct config_edit_file *f, const char *data,
    size_t len, char *err, size_t errsz);
/* Renames the staged file over the original and fsyncs the directory. */
bool config_edit_file_commit(struct config_edit_file *f, char *err,
    size_t errsz);
/* Removes an uncommitted stage, unlocks, frees.  Safe on a zeroed f. */
void config_edit_file_close(struct config_edit_file *f);

/* ---- the JSON config's Users[] ---- */

struct config_edit;

/* Opens path as config_edit_file_open() does and parses it as
 * config_load() would (duplicate keys refused); it needs an object
 * "Pop3Server". */
bool config_edit_open(const char *path, bool for_write,
    struct config_edit **ed_r, char *err, size_t errsz);
void config_edit_free(struct config_edit **ed);

/* Index in Pop3Server.Users of the element whose UserName is name, or -1. */
long config_edit_user_find(const struct config_edit *ed, const char *name);
/* A string member of user idx, or NULL if absent or not a string. */
const char *config_edit_user_get(const struct config_edit *ed, long idx,
    const char *key);
/*
 * Sets the string member key of user idx (value NULL removes it).  An
 * existing key keeps its place; a new one goes after the others.  False
 * if value is not UTF-8 (JSON cannot hold it) or there is no user idx.
 */
bool config_edit_user_set(struct config_edit *ed, long idx, const char *key,
    const char *value);
/* Appends {"UserName": name}, creating Users[] if needed; returns its
 * index.  Set the rest with config_edit_user_set(). */
long config_edit_user_add(struct config_edit *ed, const char *name);
void config_edit_user_del(struct config_edit *ed, long idx);

/* Pop3Server.Faults[]: removes user's faults (of kind, or all with kind
 * NULL) and returns how many; or sets user's fault of kind, with its
 * number under key (NULL: none), replacing one of the same kind.  The
 * caller checks the staged file as the server would load it. */
size_t config_edit_faults_clear(struct config_edit *ed, const char *user,
    const char *kind);
void config_edit_fault_set(struct config_edit *ed, const char *user,
    const char *kind, const char *key, unsigned value);

/*
 * Serialises the edited document (every other key kept, in its order;
 * the original's indentation width and byte order mark) and stages it.
 * The staged file's path, for checking it, is returned in *tmp_r.
 */
bool config_edit_stage(struct config_edit *ed, const char **tmp_r,
    char *err, size_t errsz);
bool config_edit_commit(struct config_edit *ed, char *err, size_t errsz);
/*
 * Applies an RFC 7386 merge patch (JSON text: an object; null removes a
 * member) to the whole document, keeping every member it does not name
 * in its place.  Check the result by staging and loading it.
 */
bool config_edit_merge(struct config_edit *ed, const char *patch,
    size_t len, char *err, size_t errsz);
/* The file being edited (mode, owner, path). */
const struct config_edit_file *config_edit_file_of(const struct config_edit *ed);

#endif
