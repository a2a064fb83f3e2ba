/*
 * store_driver.h - what a store driver provides; never included outside
 * src/store/.  store.c (the front door) looks a driver up by the prefix
 * of a location ("maildir:/var/mail/u/Maildir") and calls it through
 * this table; nothing else in the server sees a driver.
 *
 * Every driver's mailbox, reader and delivery begins with the matching
 * head below (first member), so the front door can find the driver from
 * the handle alone.  A driver with nothing to offer for an optional
 * entry leaves it NULL.  The directory drivers (maildir, emldir) fill
 * the table with the filesystem engine's functions (store_int.h) and
 * differ only in their struct store_ops.
 */
#ifndef POSUTO_STORE_DRIVER_H
#define POSUTO_STORE_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "store/store.h"

struct store_driver;
struct store_ops;

struct mailbox {
	const struct store_driver *drv;
};

struct msg_reader {
	const struct store_driver *drv;
};

struct store_delivery {
	const struct store_driver *drv;
};

struct store_driver {
	const char *name;		/* the location prefix */
	/* Filesystem drivers: the engine's plug-in (store_int.h); NULL for
	 * a driver that is not a directory of files. */
	const struct store_ops *fs;
	/* Stores LF line ends (mbox: other mail programs read the file);
	 * a delivery agent converts to that instead of CRLF. */
	bool lf_store;
	/* Mail in a database, not in files: no owner to deliver as. */
	bool no_files;
	/* The location after the prefix names a mailbox by user name, or
	 * is empty for the user's own (sql:), not an absolute path. */
	bool by_name;
	/* close() talks to a server (sql: releases the database lock):
	 * the event loop hands it to a worker (mailbox_close_blocks()). */
	bool close_blocks;
	/* The snapshot calls of store.h, same contracts.  path is the
	 * location without its prefix; user is for drivers that look the
	 * mailbox up by name (SQL) and for messages. */
	enum store_status (*open)(const struct store_driver *drv,
	    const char *path, const char *user, struct mailbox **mb_r,
	    char *err, size_t errsz);
	uint32_t (*count)(const struct mailbox *mb);
	uint64_t (*msg_size)(const struct mailbox *mb, uint32_t idx);
	const char *(*msg_uidl)(const struct mailbox *mb, uint32_t idx);
	bool (*msg_size_is_hint)(const struct mailbox *mb, uint32_t idx);
	/* NULL: arrival times unknown (mailbox_msg_arrival() says 0) */
	int64_t (*msg_arrival)(const struct mailbox *mb, uint32_t idx);
	/* UIDL compatibility (mailbox_uidl_source/status); NULL = none */
	void (*uidl_source)(const struct mailbox *mb, char *buf, size_t bufsz);
	const char *(*uidl_status)(const struct mailbox *mb, uint32_t idx,
	    const char **old_r);
	uint64_t (*total_size)(const struct mailbox *mb);
	void (*mark_seen)(struct mailbox *mb, uint32_t idx);
	bool (*commit_needed)(const struct mailbox *mb,
	    const uint8_t *deleted);
	enum store_status (*commit)(struct mailbox *mb, const uint8_t *deleted,
	    uint32_t *n_deleted_r);
	void (*close)(struct mailbox *mb);
	/* Policy state kept in a server rather than in side files
	 * (store_policy.h); NULL: none (the fs engine keeps files).
	 * commit_expire / expire as mailbox_commit_expire / mailbox_expire;
	 * last_login from the snapshot (false: none); login_record. */
	enum store_status (*commit_expire)(struct mailbox *mb,
	    uint8_t *deleted, int days, uint64_t now, const char *user,
	    bool session, uint32_t *n_deleted_r, uint32_t *n_expired_r);
	bool (*last_login)(const struct mailbox *mb, uint64_t *t_r);
	void (*login_record)(struct mailbox *mb, uint64_t t);
	/* check-config; NULL = nothing to check */
	unsigned (*check)(const struct store_driver *drv, const char *user,
	    const char *path, FILE *out);

	/* Readers. */
	enum store_status (*msg_open)(struct mailbox *mb, uint32_t idx,
	    struct msg_reader **r_r);
	ssize_t (*msg_read)(struct msg_reader *r, void *buf, size_t len);
	/* NULL: msg_read never says EAGAIN (files: read where called) */
	enum store_status (*msg_fill)(struct msg_reader *r);
	/* NULL: a store whose messages cannot change under a reader */
	bool (*msg_unchanged)(struct msg_reader *r);
	int (*msg_wire_fd)(struct msg_reader *r, off_t *off_r, off_t *len_r);
	struct store_wire_job *(*msg_wire_job)(struct mailbox *mb,
	    struct msg_reader *r);
	void (*msg_close)(struct msg_reader *r);
	/* NULL: reads need no prepare (store.h msg_reader_prepare) */
	enum store_status (*msg_prepare)(struct msg_reader *r);
	bool (*msg_prepared)(const struct msg_reader *r);

	/* Delivery; NULL deliver_begin = read-only store. */
	enum store_status (*deliver_begin)(const struct store_driver *drv,
	    const char *path, const char *user, struct store_delivery **d_r,
	    char *err, size_t errsz);
	/* NULL: the store cannot keep a given UIDL (store.h
	 * store_deliver_begin_keep); the rest of the delivery is as above */
	enum store_status (*deliver_begin_keep)(const struct store_driver *drv,
	    const char *path, const char *user, const struct store_keep *keep,
	    struct store_delivery **d_r, char *err, size_t errsz);
	/* NULL: the store keeps no envelope sender */
	void (*deliver_sender)(struct store_delivery *d, const char *sender);
	enum store_status (*deliver_write)(struct store_delivery *d,
	    const void *buf, size_t len);
	enum store_status (*deliver_commit)(struct store_delivery *d,
	    char *id, size_t idsz);
	void (*deliver_abort)(struct store_delivery *d);
};

/* The table (store.c), NULL-terminated. */
extern const struct store_driver *const store_drivers[];
extern const struct store_driver store_driver_maildir;
extern const struct store_driver store_driver_emldir;
extern const struct store_driver store_driver_mbox;
extern const struct store_driver store_driver_tpops;
extern const struct store_driver store_driver_sql;
/* "auto:" (store_fs.c): maildir for a directory holding cur/ new/ tmp/
 * (or nothing yet), else emldir, decided on the root the open needs
 * anyway.  Not in the table: it is no store of its own. */
extern const struct store_driver store_driver_auto;

#endif
