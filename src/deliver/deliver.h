/*
 * deliver.h - the delivery core: one message, an envelope sender and
 * recipients in, a status per recipient out, stored through
 * store_deliver_*() in each recipient's mailbox whatever its store.
 * Used by `posuto deliver` (daemon/cmd_deliver.c) and meant for the
 * LMTP listener: nothing here touches privileges, signals or stdio, and
 * every call is safe on a worker thread (one spool per thread at a time;
 * the userdb is read-only).
 *
 * What is stored: "Return-Path: <sender>" and "Delivered-To: <rcpt>"
 * (as Dovecot's LDA adds them), then the message with a leading From_
 * line removed (Postfix pipe flags=F) and every line end made CRLF
 * (LF for a store that keeps LF: mbox), ending in a line end.  So a
 * Maildir file is the exact octets RETR sends (",S=" = ",W=") unless a
 * line starts with '.', and the first RETR can sendfile() it.
 */
#ifndef POSUTO_DELIVER_H
#define POSUTO_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/userdb.h"

/* Largest message accepted (bytes as received). */
#define DELIVER_MAX_SIZE	((uint64_t)512 << 20)

enum deliver_status {
	DELIVER_OK = 0,		/* durable in the mailbox */
	DELIVER_NO_USER,	/* no such user: 5.1.1, EX_NOUSER */
	DELIVER_TEMP,		/* disk full, lock timeout, db down: retry */
	DELIVER_PERM,		/* unusable mailbox: EX_CANTCREAT */
	DELIVER_BAD_MSG,	/* NUL bytes, empty: EX_DATAERR */
	DELIVER_TOO_BIG,	/* over DELIVER_MAX_SIZE: EX_CANTCREAT */
};

/* The message, spooled once (an unlinked temporary file) and replayed
 * for each recipient. */
struct deliver_spool;

/*
 * Reads the whole message from fd (stdin, a socket's DATA already
 * un-stuffed) into a new spool, dropping a first line that starts with
 * "From " (a From_ line).  DELIVER_BAD_MSG for an empty message or one
 * with a NUL byte, DELIVER_TOO_BIG, DELIVER_TEMP on I/O errors (err
 * says which).  On failure *sp_r is NULL.
 */
enum deliver_status deliver_spool_fd(int fd, struct deliver_spool **sp_r,
    char *err, size_t errsz);
/* The same from bytes in memory (LMTP, the SMTP sink: DATA is read into
 * memory anyway): the spool takes buf, a malloc()ed block, and frees it
 * (on failure too).  No temporary file is written and read back. */
enum deliver_status deliver_spool_take(void *buf, size_t len,
    struct deliver_spool **sp_r, char *err, size_t errsz);
void deliver_spool_free(struct deliver_spool **sp);

/*
 * An envelope address fit for a trace header: printable ASCII or
 * UTF-8 bytes, no control characters, no '<' '>' (so nothing can end
 * the header or add another); a surrounding <...> is accepted and
 * removed.  Writes the bare address to out; false if unfit.
 */
bool deliver_address_ok(const char *addr, char *out, size_t outsz);

/*
 * The user a recipient names, first that exists: the recipient exactly;
 * if it holds '@', the local part (before the last '@'); then that local
 * part cut at the first '+' (an address extension, Postfix
 * recipient_delimiter = +).  Each candidate passes userdb_name_check()
 * first.  USERDB_TEMPFAIL if the database is down.  Blocks (userdb).
 */
enum userdb_result deliver_resolve(const struct userdb *db, const char *rcpt,
    const struct userdb_entry **e_r);

/*
 * Stores the spooled message in e's mailbox, with the trace headers for
 * sender (NULL/"" = MAILER-DAEMON) and rcpt (as given: what
 * Delivered-To shows).  Returns only once it is durable (DELIVER_OK) or
 * nothing of it is visible.  id (may be NULL) gets the store's name.
 */
enum deliver_status deliver_to_entry(const struct deliver_spool *sp,
    const char *sender, const char *rcpt, const struct userdb_entry *e,
    char *id, size_t idsz, char *err, size_t errsz);

/* deliver_resolve() + deliver_to_entry() for one recipient. */
enum deliver_status deliver_one(const struct userdb *db,
    const struct deliver_spool *sp, const char *sender, const char *rcpt,
    char *err, size_t errsz);

/* Text for the log and for an MTA's bounce ("unknown user", ...). */
const char *deliver_status_str(enum deliver_status st);

#endif
