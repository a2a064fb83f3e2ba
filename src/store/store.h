/*
 * store.h - the mailbox interface the protocols and the daemon use; the
 * store drivers (maildir, emldir, mbox; later SQL) sit behind it and are
 * chosen by a location string (store_driver.h):
 *
 *   maildir:/var/mail/u/Maildir   emldir:/srv/jdx/u   auto:/srv/mail/u
 *   mbox:/var/mail/u  (store_mbox.c: one mbox file, docs/mbox.md)
 *   tpops:/42         (store_tpops.c: TPOPS 0.4's msg rows of uid 42)
 *   sql:  sql:bob     (store_sql.c: the user's mailbox, or bob's, in the
 *                      Sql database, schema posuto, docs/sql.md)
 *
 * "auto:" takes maildir for a directory holding cur/ new/ tmp/ (or none
 * yet), emldir for any other.  Locations reach the store already
 * expanded (%u etc.: auth/userdb.c, which validates user names first).
 *
 * Life of a mailbox in one POP3 session:
 *   mailbox_open()   lock (one session per mailbox, across processes),
 *                    scan, fix message numbers, sizes and UIDLs  [blocking]
 *   mailbox_count/size/uidl      read the fixed snapshot          [cheap]
 *   mailbox_msg_open()           a reader over the stored bytes   [cheap]
 *   mailbox_commit()             UPDATE state: delete marked, set
 *                                the seen state                   [blocking]
 *   mailbox_close()              unlock, free                     [cheap]
 * and of one delivery (the delivery agent, LMTP):
 *   store_deliver_begin/write/commit (or _abort)                  [blocking]
 * Blocking calls run in a worker thread.  A mailbox is used by one thread
 * at a time.  Sizes are "wire sizes": the octets RETR sends before
 * dot-stuffing, with every line ending CRLF (see lib/wire.h).
 */
#ifndef POSUTO_STORE_H
#define POSUTO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum store_status {
	STORE_OK = 0,
	STORE_IN_USE,		/* another session holds the lock: [IN-USE] */
	STORE_TEMP,		/* I/O error etc.: [SYS/TEMP] */
	STORE_PERM,		/* unusable mailbox (too large, not a dir): [SYS/PERM] */
};

struct mailbox;
struct msg_reader;
struct store_driver;
struct store_delivery;

/* The driver called name ("maildir", "emldir"; case-insensitive), or
 * NULL.  "auto" is not a driver. */
const struct store_driver *store_driver_find(const char *name);
/*
 * Opens the mailbox at location for user (the name is for drivers that
 * look mailboxes up by user, and for messages).  A location is
 * "<driver>:<absolute path>" or "auto:<absolute path>"; anything else
 * (an unknown prefix, none) is STORE_PERM with the reason in err.
 *
 * The directory drivers (maildir, emldir): a missing
 * directory is an empty mailbox (mail may not have arrived yet) and is
 * created on first delivery, not here; it takes no lock (an empty
 * snapshot can neither delete nor move anything).  Otherwise takes the
 * session lock (store_lock.h) on the directory's (dev, ino), so a second
 * open of the same mailbox, from this process or another posuto process
 * using the same lock file, gets STORE_IN_USE; the kernel drops it if the
 * process dies.  After the scan no directory stays open (they are
 * reopened on demand, the root by its path and only if it is still the
 * directory that was locked), so an idle session costs its socket only.
 * Sizes come from "<path>/.posuto.index" when it is valid and matches,
 * so a warm open reads no message file; cold files are read by up to 16
 * short-lived threads.  A file another client renames meanwhile (new/ ->
 * cur/, flags) is found again; a directory read while it changed is read
 * again.  A message file that cannot be read, or that is not its
 * directory owner's, is listed (size from its S= hint, or 0) but never
 * served; running out of descriptors or memory fails the open with
 * STORE_TEMP (never a silently smaller mailbox).  A mailbox, new/ or cur/
 * directory every user may write to is refused (STORE_PERM).
 * On failure err (if not NULL) receives a human-readable reason for the
 * log.
 */
enum store_status mailbox_open(const char *location, const char *user,
    struct mailbox **mb_r, char *err, size_t errsz);

/*
 * The same snapshot without the session lock, for a viewer (the web
 * admin) that must see a mailbox while a POP3 session holds it: it reads
 * only (mailbox_commit() on it is a bug), and what it lists may vanish
 * under it (a message then reads as expunged).  The mbox driver cannot
 * read without the lock (an open may have to finish an interrupted
 * expunge): there it is mailbox_open() and may get STORE_IN_USE.
 */
enum store_status mailbox_open_view(const char *location, const char *user,
    struct mailbox **mb_r, char *err, size_t errsz);

uint32_t mailbox_count(const struct mailbox *mb);
/* idx is 0-based; callers check idx < mailbox_count(). */
uint64_t mailbox_msg_size(const struct mailbox *mb, uint32_t idx);
/* Unique, stable, 1..70 chars in 0x21..0x7E (RFC 1939 §7). */
const char *mailbox_msg_uidl(const struct mailbox *mb, uint32_t idx);
/* Sum of all message sizes. */
uint64_t mailbox_total_size(const struct mailbox *mb);
/* When message idx arrived, in seconds since the epoch, as far as the
 * store knows (sql: arrived_at; maildir: the delivery time its name
 * starts with; emldir: the file's mtime); 0 if it does not know (mbox:
 * the From_ line's date is the sender's clock). */
int64_t mailbox_msg_arrival(const struct mailbox *mb, uint32_t idx);
/* True if the size is a delivery agent's ",W=" hint, never measured: if
 * it is wrong, RETR sends the message whole but not that many octets. */
bool mailbox_msg_size_is_hint(const struct mailbox *mb, uint32_t idx);

/*
 * Opens message idx for reading (O_NOFOLLOW, regular files only; a
 * Maildir file another client moved to cur/ meanwhile is found again).
 * STORE_PERM with errno ENOENT means the file vanished, or (emldir) its
 * name now holds a different message: "-ERR message expunged"; with
 * EPERM, the file is not its directory owner's (refused, logged).
 * STORE_TEMP: it cannot be read (now or when the mailbox was opened);
 * with ESTALE, it is not the size the snapshot measured (rewritten in
 * place): the next session measures it again.
 * The reader holds one fd and no buffer: memory does not depend on the
 * message size.
 */
enum store_status mailbox_msg_open(struct mailbox *mb, uint32_t idx,
    struct msg_reader **r_r);
/* Reads up to len raw stored bytes; 0 at end (the size the file had when
 * opened), -1 on error (errno set; ENODATA: the file ended before that,
 * someone truncated it).  Never blocks: a store behind a server (sql:)
 * says -1 with EAGAIN when what it has fetched is used up; then run
 * msg_reader_fill() on a worker and read again. */
ssize_t msg_reader_read(struct msg_reader *r, void *buf, size_t len);
/* Fetches the next piece (sql: one 256 KiB chunk) [blocking, worker].
 * STORE_TEMP: the server failed; later reads say -1 with EIO.  A no-op
 * for stores whose reads never say EAGAIN.  One thread at a time per
 * reader, never concurrently with msg_reader_read() or close. */
enum store_status msg_reader_fill(struct msg_reader *r);
/* After the last read (or once a sendfile() of msg_reader_wire_fd() has
 * left): false if the message file, or the copy sent instead, is not
 * the size or mtime it had when opened, so what went out may mix old and
 * new bytes or end early.  One fstat() each. */
bool msg_reader_unchanged(struct msg_reader *r);
/*
 * If the exact wire form of the message (CRLF endings, dot-stuffed,
 * ending in CRLF) is on disk, returns an fd the caller may sendfile()
 * from (*len_r bytes at *off_r, then send ".\r\n"), else -1 (always,
 * for a driver without files).  That is
 * the message file itself when its stored bytes need no change (known
 * when the file was read for sizing or the index says so; a ",W=" hint
 * alone does not tell), or its wire cache copy.  The reader owns the fd.
 */
int msg_reader_wire_fd(struct msg_reader *r, off_t *off_r, off_t *len_r);
void msg_reader_close(struct msg_reader **r);
/*
 * A reader of a store that fetches its message over the network (tpops:
 * a database row) needs msg_reader_prepare() first, on a worker thread:
 * mailbox_msg_open() did no I/O, and msg_reader_read() then only copies
 * what the prepare fetched (cheap, fine on the event loop).  Without a
 * prepare, the first read fetches (blocks).  The prepare touches only r
 * (never its mailbox, which may be closed meanwhile) and returns what
 * mailbox_msg_open() would have: STORE_PERM with errno ENOENT for a
 * message gone meanwhile, STORE_TEMP (EIO) when the store did not answer.
 */
bool msg_reader_needs_prepare(const struct msg_reader *r);
enum store_status msg_reader_prepare(struct msg_reader *r);

/*
 * The wire cache: for messages of at least min_size wire octets whose
 * stored form must be converted (LF endings, lines starting with '.'),
 * a converted copy kept in "<mailbox>/posuto-wire/" so later RETRs are
 * a sendfile().  Built on a message's second download (read before:
 * Maildir S flag, or earlier in the session), never for one-time
 * downloads.  It costs that much disk again; 0 turns it off (and the
 * next UPDATE of each mailbox removes what is there).  Any thread, any
 * time (SIGHUP).
 */
void store_wire_configure(uint64_t min_size);
/*
 * mbox: where the side files of each mbox go (index, expunge journal):
 * NULL or "" = next to the mbox ("/var/mail/bob.posuto-index"), else
 * "<state_dir>/bob-<hash of the path>.posuto-index".  Every process
 * using an mbox must use the same setting (the journal must be found).
 * Call before any mailbox is opened.
 */
void store_mbox_configure(const char *state_dir);
/*
 * UIDL compatibility with the server that served a Maildir before
 * (UidlCompat, UidlFormat, server-wide and per user: posuto.json(5);
 * store_compat.c).  Any thread, any time (SIGHUP); a mailbox decides its
 * source once and records it in its ".posuto-uidl".
 */
struct posuto_config;
void store_uidl_configure(const struct posuto_config *cfg);
/* posuto migrate check: every mailbox opened from now on reads source
 * ("dovecot", "courier"; NULL = back to the configuration) with fmt
 * (NULL = the configured one) and records nothing. */
void store_uidl_force(const char *source, const char *fmt);
/* Where the UIDLs of an open mailbox come from, in words (doctor). */
void mailbox_uidl_source(const struct mailbox *mb, char *buf, size_t bufsz);
/* For message idx: "kept" (the old server's UIDL), "new" (it had none),
 * "invalid" / "duplicate" (its UIDL breaks RFC 1939: replaced),
 * "format" (UidlFormat cannot be expanded for it), "nolist" (its list
 * is missing or unusable); *old_r = the old UIDL when there is one. */
const char *mailbox_uidl_status(const struct mailbox *mb, uint32_t idx,
    const char **old_r);
/*
 * tpops: the database of "tpops:/UID" locations (TPOPS 0.4's msg table,
 * docs/sql.md): cfg is Pop3Server.Sql, used when its Schema is "tpops"
 * (else none).  Copied; a later call with another database replaces it
 * for mailboxes opened from then on.  Reads PasswordFile now: false with
 * err if it cannot (the previous database is kept).
 */
struct sql_cfg;
bool store_tpops_configure(const struct sql_cfg *cfg, char *err,
    size_t errsz);
/*
 * The UIDL-drift detector (store_drift.c, issue 14): the directory
 * drivers remember the UIDLs they served ("<mailbox>/.posuto.drift") and
 * a login compares the snapshot with them.  Counts of one comparison:
 */
struct mailbox_drift {
	bool enabled;		/* the mailbox is tracked */
	bool known;		/* a state was recorded before (else all new) */
	uint32_t changed;	/* a served file (inode, size) under a new UIDL */
	uint32_t reappeared;	/* deleted at a QUIT, back again */
	uint32_t reretrieved;	/* RETRieved in 3 or more sessions */
	uint32_t tracked;	/* messages compared (the newest 10000) */
	/* the last login that found changed or reappeared ones (0: none) */
	uint64_t last_time;
	uint32_t last_changed, last_reappeared, last_tracked;
};
/* UidlDrift (default on).  Any thread, any time. */
void store_drift_configure(bool on);
/* After mailbox_open(), on the worker: compares and records the state
 * (a warm login with nothing changed costs one hash and a 64-byte read,
 * or just a stat of the state file when the snapshot was cached).
 * Sessions that RETRieved a message and messages deleted at QUIT are
 * recorded by mailbox_commit(). */
void mailbox_drift_login(struct mailbox *mb, struct mailbox_drift *r);
/* The same comparison, recording nothing (doctor). */
void mailbox_drift_report(struct mailbox *mb, struct mailbox_drift *r);
struct store_wire_job;
/*
 * After mailbox_msg_open(): a job that writes the copy of r's message,
 * or NULL when none is wanted (the connection cannot use it: zero_copy
 * false, e.g. TLS; cache off, small, already wire form or cached, first
 * download, enough builds under way, a driver without files).  Run
 * store_wire_job_run() on a worker (it needs nothing else: the mailbox
 * may be closed meanwhile), then store_wire_job_free().  Failures only
 * cost speed; they are logged.
 */
struct store_wire_job *msg_reader_wire_job(struct mailbox *mb,
    struct msg_reader *r, bool zero_copy);
void store_wire_job_run(struct store_wire_job *j);
void store_wire_job_free(struct store_wire_job **j);

/* Records that message idx was retrieved (Maildir: gets the S flag at
 * commit, in new/ or cur/; emldir has no flags). */
void mailbox_msg_mark_seen(struct mailbox *mb, uint32_t idx);

/*
 * UPDATE state: removes every message whose bit is set in deleted
 * (bit idx of deleted[idx / 8]; NULL = none) and records the rest as
 * seen by this session (Maildir: moved from new/ to cur/, ":2," + flags,
 * never replacing an existing file).  A file
 * already gone counts as deleted.  A message that cannot be removed is
 * logged and reported with STORE_TEMP after trying all the others;
 * nothing unmarked is deleted, and mail delivered during the session is
 * not touched at all.  Directories are fsync()ed before returning.
 */
enum store_status mailbox_commit(struct mailbox *mb, const uint8_t *deleted,
    uint32_t *n_deleted_r);

/*
 * False if mailbox_commit() would change nothing in the store (nothing
 * marked deleted, nothing the driver would record), so the caller may
 * skip it and only close.  Cheap: looks at the in-memory snapshot only.
 */
bool mailbox_commit_needed(const struct mailbox *mb, const uint8_t *deleted);

/*
 * check-config: writes a "warning: user <user>: ..." line to out for each
 * problem of the mailbox at location: a bad location; for the directory
 * drivers each permission problem: a mailbox, new/ or cur/
 * directory every user may write to (mailbox_open() refuses it), message
 * files that are not their directory owner's (never served), and a count
 * of files with other hard links (served).  Takes no lock, reads no
 * message.  Returns the number of problems.
 */
unsigned mailbox_check(const char *user, const char *location, FILE *out);

/* Releases the lock and frees everything.  Never deletes anything. */
void mailbox_close(struct mailbox **mb);
/* True if mailbox_close() may block (sql: releases the lock in the
 * database): the event loop then closes on a worker. */
bool mailbox_close_blocks(const struct mailbox *mb);

/*
 * The Sql database of the sql: store (Pop3Server.Sql): makes its pool
 * now, reading PasswordFile (call it as the user posuto starts as, and
 * again at a reload; an unchanged cfg keeps the pool).  NULL, or driver
 * NONE: no database (sql: locations then fail with STORE_PERM).
 * Mailboxes open meanwhile keep the pool they were opened with.
 */
struct sql_cfg;
void store_sql_configure(const struct sql_cfg *cfg);

/*
 * Delivery of one message into the mailbox at location, streamed in:
 * begin, write the message's bytes as received (any line endings; the
 * store keeps them as they are), then commit, which returns only once
 * the message is durable (file and directory entry on disk: maildir
 * tmp/ -> fsync -> rename into new/ -> fsync new/; emldir the next free
 * N.eml, same steps), or abort.  Until commit the message is invisible
 * to every reader, and a crash leaves at most a stray file no reader
 * lists.  A session's snapshot opened before the commit does not show
 * it; the next open does.  The directory drivers create a missing
 * mailbox (maildir: cur/ new/ tmp/), mode 0700.  No session lock is
 * needed or taken.  After a failed write only commit (which then fails
 * and cleans up) or abort make sense; commit frees d whatever it
 * returns.
 * STORE_TEMP for what may work later (ENOSPC, EDQUOT, EIO: a delivery
 * agent exits 75, EX_TEMPFAIL), STORE_PERM for what will not (a bad
 * location, a read-only driver, a mailbox refused as unsafe); begin
 * writes the reason to err, write and commit log it.  commit writes the
 * message's name or id to id[idsz] (may be NULL); abort removes what was
 * written and frees d.
 */
enum store_status store_deliver_begin(const char *location, const char *user,
    struct store_delivery **d_r, char *err, size_t errsz);
/*
 * A delivery that keeps what a message had in another store (posuto sql
 * import/export): its UIDL, exactly, and its arrival time (0: now), so
 * that clients which leave mail on the server see the same message under
 * the same UIDL.  Otherwise as store_deliver_begin().  STORE_PERM (err
 * says why) for a store that cannot keep a given UIDL (mbox, emldir, tpops:
 * their UIDLs come from the content or the position), for a UIDL the
 * store cannot hold (maildir: it becomes the file name, so no ':', '/',
 * leading '.' or size hint ",S=" / ",W="), and for one the mailbox holds
 * already (the caller skips those: that is what makes an import that is
 * run again add nothing twice).
 */
struct store_keep {
	const char *uidl;	/* RFC 1939 unique-id */
	int64_t arrival;	/* seconds since the epoch; 0 = now */
};
enum store_status store_deliver_begin_keep(const char *location,
    const char *user, const struct store_keep *keep,
    struct store_delivery **d_r, char *err, size_t errsz);
/* The envelope sender, for a store that records it (mbox: the From_
 * line; NULL or "" = MAILER-DAEMON); before commit; others ignore it. */
void store_deliver_set_sender(struct store_delivery *d, const char *sender);
/* True if the store at location keeps LF line ends (mbox), so a delivery
 * agent should write LF, not CRLF; false for an invalid location. */
bool store_location_lf(const char *location);
/* False for a store that keeps mail in a database (tpops): a delivery
 * agent running as root need not become the mailbox's owner. */
bool store_location_has_files(const char *location);
enum store_status store_deliver_write(struct store_delivery *d,
    const void *buf, size_t len);
enum store_status store_deliver_commit(struct store_delivery **d, char *id,
    size_t idsz);
void store_deliver_abort(struct store_delivery **d);

#endif
