/*
 * cmd_sql_move.c - `posuto sql import` / `posuto sql export`: copies a
 * mailbox between a file store (Maildir, emldir, mbox) and the sql store,
 * each message under the UIDL it had, with its arrival time, in its
 * order, so a client that leaves mail on the server downloads nothing
 * twice after the switch.
 *
 * Safety: the source is only read (opened as a view; the sql mailbox is
 * opened with its lock so no POP3 session deletes from it meanwhile, and
 * nothing is ever committed on it).  Each message is one delivery, which
 * the store makes visible only once it is durable (sql: one transaction;
 * maildir: tmp/ -> fsync -> link into cur/ -> fsync cur/).  Messages the
 * destination already holds under the same UIDL are skipped, so a run
 * that was interrupted is completed by the next one: nothing lost,
 * nothing twice.  A message whose wire size does not come out as the
 * source listed it is not committed (clients would see a changed message).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cmd_sql_move.h"
#include "lib/wire.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define EXIT_DATAERR	65
#define EXIT_TEMPFAIL	75
#define MOVE_BUF	(64u * 1024)

struct move_stats {
	uint32_t copied, present, failed;
	bool temp;			/* stopped: try again later */
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The destination's UIDLs, sorted, for the "already there" test. */
static char **
uidl_set(const struct mailbox *mb, uint32_t *n_r)
{
	uint32_t n = mailbox_count(mb);
	char **v = xcalloc((size_t)n + 1, sizeof(*v));

	for (uint32_t i = 0; i < n; i++)
		v[i] = xstrdup(mailbox_msg_uidl(mb, i));
	qsort(v, n, sizeof(*v), cmp_str);
	*n_r = n;
	return v;
}

static void
uidl_set_free(char **v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
uidl_in(char *const *v, uint32_t n, const char *uidl)
{
	return bsearch(&uidl, v, n, sizeof(*v), cmp_str) != NULL;
}

/* Streams message idx of src into d; false (why in err) if it could not
 * be read whole or its wire size is not the one src lists. */
static enum store_status
copy_body(struct mailbox *src, uint32_t idx, struct store_delivery *d,
    char *err, size_t errsz)
{
	struct msg_reader *r = NULL;
	struct wire_size ws;
	enum store_status st;
	char *buf;
	ssize_t n;

	if ((st = mailbox_msg_open(src, idx, &r)) != STORE_OK) {
		(void)snprintf(err, errsz, "cannot open it: %s",
		    strerror(errno));
		return st;
	}
	buf = xmalloc(MOVE_BUF);
	wire_size_init(&ws);
	for (;;) {
		n = msg_reader_read(r, buf, MOVE_BUF);
		if (n == -1 && errno == EAGAIN) {
			/* sql: the next chunk (this is no event loop) */
			if (msg_reader_fill(r) != STORE_OK) {
				(void)snprintf(err, errsz, "cannot read it "
				    "from the database");
				st = STORE_TEMP;
				break;
			}
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == -1) {
				(void)snprintf(err, errsz, "cannot read it: "
				    "%s", strerror(errno));
				st = errno == ENODATA || errno == ENOENT ?
				    STORE_PERM : STORE_TEMP;
			}
			break;
		}
		wire_size_update(&ws, buf, (size_t)n);
		if ((st = store_deliver_write(d, buf, (size_t)n)) != STORE_OK) {
			(void)snprintf(err, errsz, "cannot write it");
			break;
		}
	}
	free(buf);
	if (st == STORE_OK && !msg_reader_unchanged(r)) {
		(void)snprintf(err, errsz, "it changed while being read");
		st = STORE_TEMP;
	}
	msg_reader_close(&r);
	if (st == STORE_OK && !mailbox_msg_size_is_hint(src, idx) &&
	    wire_size_final(&ws) != mailbox_msg_size(src, idx)) {
		(void)snprintf(err, errsz, "its size is %llu, not the %llu "
		    "listed", (unsigned long long)wire_size_final(&ws),
		    (unsigned long long)mailbox_msg_size(src, idx));
		st = STORE_PERM;
	}
	return st;
}

/* One message: PERM and TEMP are counted, the loop decides. */
static enum store_status
copy_one(struct mailbox *src, uint32_t idx, const char *dst_loc,
    const char *user, struct move_stats *s)
{
	struct store_keep keep = {
		.uidl = mailbox_msg_uidl(src, idx),
		.arrival = mailbox_msg_arrival(src, idx),
	};
	struct store_delivery *d = NULL;
	char err[512], id[256];
	enum store_status st;

	st = store_deliver_begin_keep(dst_loc, user, &keep, &d, err,
	    sizeof(err));
	if (st == STORE_OK) {
		st = copy_body(src, idx, d, err, sizeof(err));
		if (st == STORE_OK)
			st = store_deliver_commit(&d, id, sizeof(id));
		else
			store_deliver_abort(&d);
		if (st != STORE_OK && err[0] == '\0')
			(void)snprintf(err, sizeof(err), "not stored (see "
			    "the log)");
	}
	if (st != STORE_OK) {
		fprintf(stderr, "posuto sql: message %u (UIDL %s): %s\n",
		    idx + 1, keep.uidl, err);
		s->failed++;
	} else {
		s->copied++;
	}
	return st;
}

/* The sql mailbox is opened locked (no session may delete from it while
 * it is read or filled); a file store as a view (only read). */
static enum store_status
open_side(const char *loc, const char *user, struct mailbox **mb_r)
{
	char err[512];
	enum store_status st;

	st = strncmp(loc, "sql:", 4) == 0 ?
	    mailbox_open(loc, user, mb_r, err, sizeof(err)) :
	    mailbox_open_view(loc, user, mb_r, err, sizeof(err));
	if (st == STORE_IN_USE)
		fprintf(stderr, "posuto sql: %s: in use by a POP3 session; "
		    "try again when it has ended\n", loc);
	else if (st != STORE_OK)
		fprintf(stderr, "posuto sql: %s: %s\n", loc, err);
	return st;
}

static int
move(const char *src_loc, const char *dst_loc, const char *user)
{
	struct mailbox *src = NULL, *dst = NULL;
	struct move_stats s = { 0 };
	char **have;
	uint32_t n_have, n;
	enum store_status st;

	if ((st = open_side(src_loc, user, &src)) != STORE_OK)
		return st == STORE_PERM ? EXIT_DATAERR : EXIT_TEMPFAIL;
	if ((st = open_side(dst_loc, user, &dst)) != STORE_OK) {
		mailbox_close(&src);
		return st == STORE_PERM ? EXIT_DATAERR : EXIT_TEMPFAIL;
	}
	have = uidl_set(dst, &n_have);
	n = mailbox_count(src);
	/* in the source's order: the destination numbers them so */
	for (uint32_t i = 0; i < n && !s.temp; i++) {
		if (uidl_in(have, n_have, mailbox_msg_uidl(src, i))) {
			s.present++;
			continue;
		}
		if (copy_one(src, i, dst_loc, user, &s) == STORE_TEMP)
			s.temp = true;
	}
	uidl_set_free(have, n_have);
	/* nothing is committed on either: closing only unlocks */
	mailbox_close(&dst);
	mailbox_close(&src);
	printf("%s -> %s: %u copied, %u already there, %u failed%s\n",
	    src_loc, dst_loc, s.copied, s.present, s.failed,
	    s.temp ? " (stopped: run it again later)" : "");
	if (s.temp)
		return EXIT_TEMPFAIL;
	return s.failed > 0 ? EXIT_DATAERR : 0;
}

int
cmd_sql_move(bool import, const char *user, const char *location)
{
	char *sql_loc = xasprintf("sql:%s", user);
	int rc;

	if (strncmp(location, "sql:", 4) == 0 ||
	    strncmp(location, "tpops:", 6) == 0) {
		fprintf(stderr, "posuto sql: %s: give the file store (maildir:, "
		    "emldir:, mbox:)\n", location);
		free(sql_loc);
		return 64;
	}
	rc = import ? move(location, sql_loc, user) :
	    move(sql_loc, location, user);
	free(sql_loc);
	return rc;
}
