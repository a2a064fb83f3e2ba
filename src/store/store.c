/*
 * store.c - the front door: the driver table, locations, and dispatch of
 * every store.h call to the mailbox's driver.  No driver knowledge here:
 * what a mailbox is belongs to the drivers (store_maildir.c,
 * store_emldir.c over the filesystem engine store_fs.c).
 */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store_driver.h"
#include "store/store_int.h"

const struct store_driver *const store_drivers[] = {
	&store_driver_maildir,
	&store_driver_emldir,
	&store_driver_mbox,
	&store_driver_tpops,
	&store_driver_sql,
	NULL,
};

const struct store_driver *
store_driver_find(const char *name)
{
	for (size_t i = 0; store_drivers[i] != NULL; i++)
		if (strcasecmp(store_drivers[i]->name, name) == 0)
			return store_drivers[i];
	return NULL;
}

/* Splits location into its driver and the rest; NULL with a reason in
 * err if it names none. */
static const struct store_driver *
store_location_driver(const char *location, const char **path_r, char *err,
    size_t errsz)
{
	const char *colon = strchr(location, ':');
	char name[32];
	size_t len;

	if (colon == NULL || colon == location ||
	    (len = (size_t)(colon - location)) >= sizeof(name)) {
		if (err != NULL && errsz > 0)
			(void)snprintf(err, errsz, "mailbox location \"%s\" "
			    "has no store prefix (as maildir:/path)", location);
		return NULL;
	}
	memcpy(name, location, len);
	name[len] = '\0';
	*path_r = colon + 1;
	if (strcasecmp(name, store_driver_auto.name) == 0) {
		if (**path_r == '/')
			return &store_driver_auto;
	} else {
		const struct store_driver *drv = store_driver_find(name);

		if (drv != NULL && (drv->by_name || **path_r == '/'))
			return drv;
		if (drv == NULL)
			goto unknown;
	}
	if (err != NULL && errsz > 0)
		(void)snprintf(err, errsz, "mailbox location \"%s\": "
		    "path is not absolute", location);
	return NULL;
unknown:
	if (err != NULL && errsz > 0) {
		size_t off = (size_t)snprintf(err, errsz, "mailbox location "
		    "\"%s\": unknown store \"%s\" (known: auto", location, name);

		for (size_t i = 0; store_drivers[i] != NULL && off < errsz; i++)
			off += (size_t)snprintf(err + off, errsz - off, ", %s",
			    store_drivers[i]->name);
		if (off < errsz)
			(void)snprintf(err + off, errsz - off, ")");
	}
	return NULL;
}

enum store_status
mailbox_open(const char *location, const char *user, struct mailbox **mb_r,
    char *err, size_t errsz)
{
	const struct store_driver *drv;
	const char *path;

	*mb_r = NULL;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if ((drv = store_location_driver(location, &path, err, errsz)) == NULL)
		return STORE_PERM;
	return drv->open(drv, path, user, mb_r, err, errsz);
}

/* Read by the filesystem engine's store_lock() (store_int.h): a flag of
 * the calling thread, so the driver table keeps its one open(). */
_Thread_local bool store_open_view;

enum store_status
mailbox_open_view(const char *location, const char *user,
    struct mailbox **mb_r, char *err, size_t errsz)
{
	enum store_status st;

	store_open_view = true;
	st = mailbox_open(location, user, mb_r, err, errsz);
	store_open_view = false;
	return st;
}

uint32_t
mailbox_count(const struct mailbox *mb)
{
	return mb->drv->count(mb);
}

uint64_t
mailbox_msg_size(const struct mailbox *mb, uint32_t idx)
{
	return mb->drv->msg_size(mb, idx);
}

const char *
mailbox_msg_uidl(const struct mailbox *mb, uint32_t idx)
{
	return mb->drv->msg_uidl(mb, idx);
}

void
mailbox_uidl_source(const struct mailbox *mb, char *buf, size_t bufsz)
{
	if (mb->drv->fs != NULL)
		store_fs_uidl_source(mb, buf, bufsz);
	else if (mb->drv->uidl_source != NULL)
		mb->drv->uidl_source(mb, buf, bufsz);
	else
		(void)snprintf(buf, bufsz, "posuto");
}

const char *
mailbox_uidl_status(const struct mailbox *mb, uint32_t idx,
    const char **old_r)
{
	*old_r = NULL;
	if (mb->drv->fs != NULL)
		return store_fs_uidl_status(mb, idx, old_r);
	if (mb->drv->uidl_status != NULL)
		return mb->drv->uidl_status(mb, idx, old_r);
	return "new";
}

int64_t
mailbox_msg_arrival(const struct mailbox *mb, uint32_t idx)
{
	return mb->drv->msg_arrival != NULL ?
	    mb->drv->msg_arrival(mb, idx) : 0;
}

bool
mailbox_msg_size_is_hint(const struct mailbox *mb, uint32_t idx)
{
	return mb->drv->msg_size_is_hint != NULL &&
	    mb->drv->msg_size_is_hint(mb, idx);
}

uint64_t
mailbox_total_size(const struct mailbox *mb)
{
	return mb->drv->total_size(mb);
}

void
mailbox_msg_mark_seen(struct mailbox *mb, uint32_t idx)
{
	mb->drv->mark_seen(mb, idx);
}

enum store_status
mailbox_msg_open(struct mailbox *mb, uint32_t idx, struct msg_reader **r_r)
{
	return mb->drv->msg_open(mb, idx, r_r);
}

ssize_t
msg_reader_read(struct msg_reader *r, void *buf, size_t len)
{
	return r->drv->msg_read(r, buf, len);
}

enum store_status
msg_reader_fill(struct msg_reader *r)
{
	return r->drv->msg_fill != NULL ? r->drv->msg_fill(r) : STORE_OK;
}

bool
msg_reader_unchanged(struct msg_reader *r)
{
	return r->drv->msg_unchanged == NULL || r->drv->msg_unchanged(r);
}

int
msg_reader_wire_fd(struct msg_reader *r, off_t *off_r, off_t *len_r)
{
	if (r->drv->msg_wire_fd == NULL)
		return -1;
	return r->drv->msg_wire_fd(r, off_r, len_r);
}

struct store_wire_job *
msg_reader_wire_job(struct mailbox *mb, struct msg_reader *r, bool zero_copy)
{
	/* a copy is only ever read by sendfile() */
	if (!zero_copy || mb->drv->msg_wire_job == NULL)
		return NULL;
	return mb->drv->msg_wire_job(mb, r);
}

bool
msg_reader_needs_prepare(const struct msg_reader *r)
{
	return r->drv->msg_prepare != NULL && !r->drv->msg_prepared(r);
}

enum store_status
msg_reader_prepare(struct msg_reader *r)
{
	if (r->drv->msg_prepare == NULL)
		return STORE_OK;
	return r->drv->msg_prepare(r);
}

void
msg_reader_close(struct msg_reader **rp)
{
	if (*rp == NULL)
		return;
	(*rp)->drv->msg_close(*rp);
	*rp = NULL;
}

enum store_status
mailbox_commit(struct mailbox *mb, const uint8_t *deleted,
    uint32_t *n_deleted_r)
{
	return mb->drv->commit(mb, deleted, n_deleted_r);
}

bool
mailbox_commit_needed(const struct mailbox *mb, const uint8_t *deleted)
{
	return mb->drv->commit_needed(mb, deleted);
}

void
mailbox_close(struct mailbox **mbp)
{
	if (*mbp == NULL)
		return;
	(*mbp)->drv->close(*mbp);
	*mbp = NULL;
}

bool
mailbox_close_blocks(const struct mailbox *mb)
{
	return mb != NULL && mb->drv->close_blocks;
}

unsigned
mailbox_check(const char *user, const char *location, FILE *out)
{
	const struct store_driver *drv;
	const char *path;
	char err[256];

	if ((drv = store_location_driver(location, &path, err,
	    sizeof(err))) == NULL) {
		fprintf(out, "warning: user %s: %s\n", user, err);
		return 1;
	}
	return drv->check != NULL ? drv->check(drv, user, path, out) : 0;
}

/* The driver of location, if it can deliver (keep: under a given UIDL);
 * NULL with the reason in err. */
static const struct store_driver *
store_deliver_driver(const char *location, bool keep, const char **path_r,
    char *err, size_t errsz)
{
	const struct store_driver *drv;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if ((drv = store_location_driver(location, path_r, err, errsz)) == NULL)
		return NULL;
	if (keep ? drv->deliver_begin_keep == NULL : drv->deliver_begin == NULL) {
		if (err != NULL && errsz > 0)
			(void)snprintf(err, errsz, keep ? "store %s cannot keep "
			    "a message's UIDL (use maildir: or sql:)" :
			    "store %s cannot deliver", drv->name);
		return NULL;
	}
	return drv;
}

enum store_status
store_deliver_begin(const char *location, const char *user,
    struct store_delivery **d_r, char *err, size_t errsz)
{
	const struct store_driver *drv;
	const char *path;

	*d_r = NULL;
	if ((drv = store_deliver_driver(location, false, &path, err,
	    errsz)) == NULL)
		return STORE_PERM;
	return drv->deliver_begin(drv, path, user, d_r, err, errsz);
}

enum store_status
store_deliver_begin_keep(const char *location, const char *user,
    const struct store_keep *keep, struct store_delivery **d_r, char *err,
    size_t errsz)
{
	const struct store_driver *drv;
	const char *path;

	*d_r = NULL;
	if ((drv = store_deliver_driver(location, true, &path, err,
	    errsz)) == NULL)
		return STORE_PERM;
	return drv->deliver_begin_keep(drv, path, user, keep, d_r, err, errsz);
}

bool
store_location_lf(const char *location)
{
	const struct store_driver *drv;
	const char *path;

	drv = store_location_driver(location, &path, NULL, 0);
	return drv != NULL && drv->lf_store;
}

bool
store_location_has_files(const char *location)
{
	const struct store_driver *drv;
	const char *path;

	drv = store_location_driver(location, &path, NULL, 0);
	return drv == NULL || !drv->no_files;
}

void
store_deliver_set_sender(struct store_delivery *d, const char *sender)
{
	if (d->drv->deliver_sender != NULL)
		d->drv->deliver_sender(d, sender);
}

enum store_status
store_deliver_write(struct store_delivery *d, const void *buf, size_t len)
{
	return d->drv->deliver_write(d, buf, len);
}

enum store_status
store_deliver_commit(struct store_delivery **dp, char *id, size_t idsz)
{
	enum store_status st = (*dp)->drv->deliver_commit(*dp, id, idsz);

	*dp = NULL;
	return st;
}

void
store_deliver_abort(struct store_delivery **dp)
{
	if (*dp == NULL)
		return;
	(*dp)->drv->deliver_abort(*dp);
	*dp = NULL;
}
