/*
 * store_policy.h - what the RFC 2449 policies (LOGIN-DELAY, EXPIRE) keep
 * in a mailbox: two small files of posuto's in its root directory, next
 * to .posuto.index, written only by the holder of the session lock.
 *
 * ".posuto.expire": when each message was first retrieved (RETR), so
 * that Expire can delete it that many days later.  Text, one line each:
 *     posuto-expire 1
 *     <unix seconds> <UIDL>
 *     ...
 * A message is listed from the UPDATE of the first session that RETRed
 * it (a session that ends without QUIT records nothing, as it changes
 * nothing else).  A line that does not parse is ignored, a file with
 * another first line is ignored whole: both only keep mail longer.  An
 * administrator (or a test) may edit the times.  Written tmp -> fsync ->
 * rename.
 *
 * ".posuto.login": the time of the last successful login, for
 * LoginDelay ("posuto-login 1 <unix seconds>").  Not fsynced: losing it
 * costs one early login.  A mailbox whose directory does not exist yet
 * has nowhere to keep it, so its user is not delayed (such a login costs
 * one failed open()).
 */
#ifndef POSUTO_STORE_POLICY_H
#define POSUTO_STORE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_EXPIRE_NAME	".posuto.expire"
#define STORE_EXPIRE_TMP	".posuto.expire.tmp"
#define STORE_LOGIN_NAME	".posuto.login"
#define STORE_LOGIN_TMP		".posuto.login.tmp"

/* --- .posuto.expire (store_expire.c) ---------------------------------- */

struct store_expire;

/* Parses a state file image; NULL if it is not one (wrong first line).
 * Bad lines are skipped; a UIDL listed twice keeps its earlier time.
 * The result copies what it needs: buf may go. */
struct store_expire *store_expire_parse(const char *buf, size_t len);
/* Reads "<dir>/.posuto.expire" (no lock needed: it is replaced by
 * rename); NULL if missing, unreadable or invalid. */
struct store_expire *store_expire_load_path(const char *dir);
size_t store_expire_count(const struct store_expire *x);
/* First-retrieval time of uidl, 0 if not listed. */
uint64_t store_expire_lookup(const struct store_expire *x, const char *uidl,
    size_t len);
/* True if some listed message is due for deletion under days at now. */
bool store_expire_any_due(const struct store_expire *x, int days,
    uint64_t now);
void store_expire_free(struct store_expire **x);
/* A message first retrieved at first (> 0) is due when days have passed. */
bool store_expire_due(uint64_t first, int days, uint64_t now);

/*
 * UPDATE state with Expire on (days >= 0): records messages RETRed in
 * this session, adds every message due for deletion (logged with user,
 * UIDL and age) to deleted, then mailbox_commit(); the state file keeps
 * the messages that remain.  *n_expired_r counts the messages deleted by
 * policy, not DELE (they are in *n_deleted_r too).
 */
enum store_status mailbox_commit_expire(struct mailbox *mb, uint8_t *deleted,
    int days, uint64_t now, const char *user, uint32_t *n_deleted_r,
    uint32_t *n_expired_r);

/*
 * The daemon's expiry job on a mailbox it has opened (so locked) itself:
 * deletes only the messages due, nothing else (no new/ -> cur/ moves, no
 * flags), logs each one, and keeps the state file in step.
 */
enum store_status mailbox_expire(struct mailbox *mb, int days, uint64_t now,
    const char *user, uint32_t *n_expired_r);

/* --- .posuto.login (store_login.c) ------------------------------------ */

/* The last login recorded in "<dir>/.posuto.login"; false if none. */
bool store_login_last(const char *dir, uint64_t *t_r);
/* The last login a store without files keeps (sql: posuto_users
 * .last_login_at, read at open); false if none or if the store keeps
 * it in a file (store_login_last() before the open reads that). */
bool mailbox_login_last(const struct mailbox *mb, uint64_t *t_r);
/* Records a login at t in the mailbox (which this session has locked);
 * nothing if its directory does not exist.  Failures are logged. */
void mailbox_login_record(struct mailbox *mb, uint64_t t);
/* Parses a .posuto.login image (unit tests); false if invalid. */
bool store_login_parse(const char *buf, size_t len, uint64_t *t_r);

#endif
