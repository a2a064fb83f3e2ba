/*
 * deliver.c - the delivery core (deliver.h): spool, recipient lookup,
 * trace headers, line-end conversion, store_deliver_*().
 */
#include "deliver/deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define DELIVER_CHUNK	(64 * 1024)

struct deliver_spool {
	int fd;			/* -1 for a spool in memory */
	uint64_t len;
	unsigned char *mem;	/* deliver_spool_take(): owned */
	size_t mem_off;		/* where the message starts in mem */
};

static int
deliver_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	int fd;

	if (dir == NULL || *dir != '/')
		dir = "/tmp";
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
		return fd;
	(void)snprintf(tmpl, sizeof(tmpl), "%s/posuto-deliver-XXXXXX", dir);
	if ((fd = mkostemp(tmpl, O_CLOEXEC)) >= 0)
		(void)unlink(tmpl);
	return fd;
}

static bool
deliver_write_all(int fd, const unsigned char *b, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return false;
		}
		b += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads a message from fd (or buf when fd < 0) into a spool. */
static enum deliver_status
deliver_spool_in(int fd, const unsigned char *buf, size_t buflen,
    struct deliver_spool **sp_r, char *err, size_t errsz)
{
	struct deliver_spool *sp;
	unsigned char *b = NULL;
	enum deliver_status st = DELIVER_OK;
	size_t moff = 0;
	/* 0: at the start, deciding about a From_ line; 1: skipping it;
	 * 2: copying */
	int phase = 0;
	unsigned char head[5];
	size_t head_len = 0;

	*sp_r = NULL;
	sp = xcalloc(1, sizeof(*sp));
	if ((sp->fd = deliver_tmpfile()) < 0) {
		(void)snprintf(err, errsz, "spool: %s", strerror(errno));
		free(sp);
		return DELIVER_TEMP;
	}
	if (fd >= 0)
		b = xmalloc(DELIVER_CHUNK);
	for (;;) {
		const unsigned char *p;
		ssize_t n;
		size_t i = 0;

		if (fd >= 0) {
			n = read(fd, b, DELIVER_CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				(void)snprintf(err, errsz, "reading the "
				    "message: %s", strerror(errno));
				st = DELIVER_TEMP;
				break;
			}
			p = b;
		} else {
			n = (ssize_t)(buflen - moff > DELIVER_CHUNK ?
			    DELIVER_CHUNK : buflen - moff);
			p = buf + moff;
			moff += (size_t)n;
		}
		if (n == 0)
			break;
		if (memchr(p, '\0', (size_t)n) != NULL) {
			(void)snprintf(err, errsz, "message contains a NUL "
			    "byte (RFC 5322 forbids it)");
			st = DELIVER_BAD_MSG;
			break;
		}
		while (phase == 0 && i < (size_t)n) {
			head[head_len++] = p[i++];
			if (memcmp(head, "From ", head_len) != 0) {
				phase = 2;
				if (!deliver_write_all(sp->fd, head,
				    head_len)) {
					st = DELIVER_TEMP;
					break;
				}
				sp->len += head_len;
			} else if (head_len == 5) {
				phase = 1;
			}
		}
		if (st != DELIVER_OK)
			break;
		if (phase == 1) {
			const unsigned char *nl = memchr(p + i, '\n',
			    (size_t)n - i);

			if (nl == NULL)
				continue;
			i = (size_t)(nl - p) + 1;
			phase = 2;
		}
		if (phase == 2 && i < (size_t)n) {
			if (sp->len + ((size_t)n - i) > DELIVER_MAX_SIZE) {
				(void)snprintf(err, errsz, "message larger "
				    "than %llu bytes",
				    (unsigned long long)DELIVER_MAX_SIZE);
				st = DELIVER_TOO_BIG;
				break;
			}
			if (!deliver_write_all(sp->fd, p + i, (size_t)n - i)) {
				(void)snprintf(err, errsz, "spool: %s",
				    strerror(errno));
				st = DELIVER_TEMP;
				break;
			}
			sp->len += (size_t)n - i;
		}
	}
	if (st == DELIVER_OK && phase == 0 && head_len > 0) {
		/* shorter than "From ": a message all the same */
		if (!deliver_write_all(sp->fd, head, head_len)) {
			(void)snprintf(err, errsz, "spool: %s", strerror(errno));
			st = DELIVER_TEMP;
		}
		sp->len += head_len;
	}
	if (st == DELIVER_OK && sp->len == 0) {
		(void)snprintf(err, errsz, "empty message");
		st = DELIVER_BAD_MSG;
	}
	free(b);
	if (st != DELIVER_OK) {
		deliver_spool_free(&sp);
		return st;
	}
	*sp_r = sp;
	return DELIVER_OK;
}

enum deliver_status
deliver_spool_fd(int fd, struct deliver_spool **sp_r, char *err, size_t errsz)
{
	return deliver_spool_in(fd, NULL, 0, sp_r, err, errsz);
}

enum deliver_status
deliver_spool_take(void *buf, size_t len, struct deliver_spool **sp_r,
    char *err, size_t errsz)
{
	unsigned char *b = buf;
	struct deliver_spool *sp;
	size_t off = 0;

	*sp_r = NULL;
	/* what deliver_spool_in() checks, on the bytes where they are */
	if (len >= 5 && memcmp(b, "From ", 5) == 0) {
		const unsigned char *nl = memchr(b, '\n', len);

		off = nl != NULL ? (size_t)(nl - b) + 1 : len;
	}
	if (memchr(b, '\0', len) != NULL) {
		(void)snprintf(err, errsz, "message contains a NUL byte "
		    "(RFC 5322 forbids it)");
		free(buf);
		return DELIVER_BAD_MSG;
	}
	if (len - off > DELIVER_MAX_SIZE) {
		(void)snprintf(err, errsz, "message larger than %llu bytes",
		    (unsigned long long)DELIVER_MAX_SIZE);
		free(buf);
		return DELIVER_TOO_BIG;
	}
	if (len - off == 0) {
		(void)snprintf(err, errsz, "empty message");
		free(buf);
		return DELIVER_BAD_MSG;
	}
	sp = xcalloc(1, sizeof(*sp));
	sp->fd = -1;
	sp->mem = b;
	sp->mem_off = off;
	sp->len = len - off;
	*sp_r = sp;
	return DELIVER_OK;
}

/* Up to len bytes of the message from off; -1 with errno on error. */
static ssize_t
deliver_spool_pread(const struct deliver_spool *sp, void *buf, size_t len,
    uint64_t off)
{
	ssize_t n;

	if (sp->mem != NULL) {
		if (off >= sp->len)
			return 0;
		if (len > sp->len - off)
			len = (size_t)(sp->len - off);
		memcpy(buf, sp->mem + sp->mem_off + off, len);
		return (ssize_t)len;
	}
	do
		n = pread(sp->fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n;
}

void
deliver_spool_free(struct deliver_spool **spp)
{
	struct deliver_spool *sp = *spp;

	if (sp == NULL)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp->mem);
	free(sp);
	*spp = NULL;
}

bool
deliver_address_ok(const char *addr, char *out, size_t outsz)
{
	size_t len = strlen(addr);

	if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>') {
		addr++;
		len -= 2;
	}
	if (len >= outsz || len > 998)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			return false;
	}
	memcpy(out, addr, len);
	out[len] = '\0';
	return true;
}

static enum userdb_result
deliver_try(const struct userdb *db, const char *name, size_t len,
    const struct userdb_entry **e_r)
{
	char buf[USERNAME_MAX + 1];

	if (len == 0 || len > USERNAME_MAX || !userdb_name_valid(name, len))
		return USERDB_NOT_FOUND;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return userdb_lookup(db, buf, e_r);
}

enum userdb_result
deliver_resolve(const struct userdb *db, const char *rcpt,
    const struct userdb_entry **e_r)
{
	const char *at = strrchr(rcpt, '@');
	const char *plus;
	enum userdb_result r;
	size_t local;

	*e_r = NULL;
	/* TPOPS users by their user.mail first, as tpops-store did. */
	r = userdb_lookup_address(db, rcpt, e_r);
	if (r != USERDB_NOT_FOUND)
		return r;
	r = deliver_try(db, rcpt, strlen(rcpt), e_r);
	if (r != USERDB_NOT_FOUND || at == NULL)
		return r;
	local = (size_t)(at - rcpt);
	r = deliver_try(db, rcpt, local, e_r);
	if (r != USERDB_NOT_FOUND)
		return r;
	plus = memchr(rcpt, '+', local);
	if (plus == NULL || plus == rcpt)
		return USERDB_NOT_FOUND;
	return deliver_try(db, rcpt, (size_t)(plus - rcpt), e_r);
}

/* Buffered writer into a store delivery, converting line ends. */
struct deliver_out {
	struct store_delivery *d;
	bool lf;		/* LF store; else CRLF */
	bool cr;		/* the last byte taken was '\r' */
	unsigned char last;	/* last byte written, '\n' at the start */
	enum store_status st;
	size_t len;
	unsigned char buf[DELIVER_CHUNK];
};

static void
deliver_out_flush(struct deliver_out *o)
{
	if (o->st == STORE_OK && o->len > 0)
		o->st = store_deliver_write(o->d, o->buf, o->len);
	o->len = 0;
}

static void
deliver_out_byte(struct deliver_out *o, unsigned char c)
{
	if (o->len == sizeof(o->buf))
		deliver_out_flush(o);
	o->buf[o->len++] = c;
	o->last = c;
}

/* Feeds message bytes: "\r\n" and a lone "\n" become the store's line
 * end; any other '\r' stays as it is. */
/* A run of bytes that are neither '\r' nor '\n': copied as they are. */
static void
deliver_out_span(struct deliver_out *o, const unsigned char *p, size_t n)
{
	while (n > 0 && o->st == STORE_OK) {
		size_t k;

		if (o->len == sizeof(o->buf))
			deliver_out_flush(o);
		k = sizeof(o->buf) - o->len;
		if (k > n)
			k = n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		o->last = p[k - 1];
		p += k;
		n -= k;
	}
}

static void
deliver_out_conv(struct deliver_out *o, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n && o->st == STORE_OK; i++) {
		unsigned char c = p[i];

		if (!o->cr && c != '\r' && c != '\n') {
			/* the common case, a line's text: in bulk */
			size_t j = i + 1;

			while (j < n && p[j] != '\r' && p[j] != '\n')
				j++;
			deliver_out_span(o, p + i, j - i);
			i = j - 1;
			continue;
		}

		if (o->cr) {
			o->cr = false;
			if (c == '\n') {
				if (!o->lf)
					deliver_out_byte(o, '\r');
				deliver_out_byte(o, '\n');
				continue;
			}
			deliver_out_byte(o, '\r');
		}
		if (c == '\r') {
			o->cr = true;
			continue;
		}
		if (c == '\n' && !o->lf)
			deliver_out_byte(o, '\r');
		deliver_out_byte(o, c);
	}
}

static void
deliver_out_finish(struct deliver_out *o)
{
	if (o->cr) {
		o->cr = false;
		deliver_out_conv(o, (const unsigned char *)"\n", 1);
	}
	if (o->last != '\n')
		deliver_out_conv(o, (const unsigned char *)"\n", 1);
	deliver_out_flush(o);
}

/* Is the value of header field f (n bytes, no line end, its name
 * namelen bytes with the colon) addr or <addr>? */
static bool
deliver_field_is(const char *f, size_t n, size_t namelen, const char *addr)
{
	size_t rl = strlen(addr);

	f += namelen;
	n -= namelen;
	while (n > 0 && (*f == ' ' || *f == '\t')) {
		f++;
		n--;
	}
	while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\t' ||
	    f[n - 1] == '\r'))
		n--;
	if (n >= 2 && f[0] == '<' && f[n - 1] == '>') {
		f++;
		n -= 2;
	}
	return n == rl && strncasecmp(f, addr, rl) == 0;
}

/*
 * Which trace fields the MTA already prepended (Postfix local(8) does
 * Return-Path, X-Original-To and Delivered-To for mailbox_command, pipe(8)
 * with flags=DR): those we do not add a second time.  Only complete
 * fields in the block at the very top count, and only with the values we
 * would write: the message never overrides the envelope.
 */
static void
deliver_scan_prepended(const struct deliver_spool *sp, const char *sender,
    const char *rcpt, bool *rp_r, bool *dt_r)
{
	char b[4096];
	ssize_t n;
	size_t pos = 0;

	*rp_r = *dt_r = false;
	n = deliver_spool_pread(sp, b, sizeof(b) - 1, 0);
	if (n <= 0)
		return;
	b[n] = '\0';
	for (;;) {
		size_t end = pos;
		const char *nl;

		/* the field with its continuation lines; the byte after
		 * each line end must be in the buffer to know */
		for (;;) {
			nl = memchr(b + end, '\n', (size_t)n - end);
			if (nl == NULL || (size_t)(nl - b) + 1 >= (size_t)n)
				return;
			end = (size_t)(nl - b) + 1;
			if (b[end] != ' ' && b[end] != '\t')
				break;
		}
		if (ascii_casepfx(b + pos, "Return-Path:")) {
			if (deliver_field_is(b + pos, (size_t)(nl - b) - pos,
			    12, sender))
				*rp_r = true;
		} else if (ascii_casepfx(b + pos, "Delivered-To:")) {
			if (deliver_field_is(b + pos, (size_t)(nl - b) - pos,
			    13, rcpt))
				*dt_r = true;
		} else if (!ascii_casepfx(b + pos, "X-Original-To:"))
			return;
		pos = end;
	}
}

enum deliver_status
deliver_to_entry(const struct deliver_spool *sp, const char *sender,
    const char *rcpt, const struct userdb_entry *e, char *id, size_t idsz,
    char *err, size_t errsz)
{
	struct deliver_out *o;
	struct store_delivery *d = NULL;
	char why[256] = "";
	char *hdr;
	unsigned char *b;
	enum store_status st;
	uint64_t off = 0;
	bool have_rp, have_dt;

	if (sender == NULL || *sender == '\0')
		sender = "MAILER-DAEMON";
	st = store_deliver_begin(e->location, e->name, &d, why, sizeof(why));
	if (st != STORE_OK) {
		(void)snprintf(err, errsz, "%s", why);
		return st == STORE_TEMP ? DELIVER_TEMP : DELIVER_PERM;
	}
	store_deliver_set_sender(d, strcmp(sender, "MAILER-DAEMON") == 0 ?
	    NULL : sender);
	o = xmalloc(sizeof(*o));
	o->d = d;
	o->lf = store_location_lf(e->location);
	o->cr = false;
	o->last = '\n';
	o->st = STORE_OK;
	o->len = 0;
	/* Dovecot's LDA: Return-Path <> for the null sender */
	deliver_scan_prepended(sp, strcmp(sender, "MAILER-DAEMON") == 0 ?
	    "" : sender, rcpt, &have_rp, &have_dt);
	hdr = xasprintf("%s%s%s%s%s%s",
	    have_rp ? "" : "Return-Path: <",
	    have_rp ? "" : (strcmp(sender, "MAILER-DAEMON") == 0 ? "" : sender),
	    have_rp ? "" : ">\n", have_dt ? "" : "Delivered-To: <",
	    have_dt ? "" : rcpt, have_dt ? "" : ">\n");
	deliver_out_conv(o, (const unsigned char *)hdr, strlen(hdr));
	free(hdr);
	if (sp->mem != NULL) {
		/* converted straight from memory: no copy to a buffer */
		deliver_out_conv(o, sp->mem + sp->mem_off, (size_t)sp->len);
		off = sp->len;
	}
	b = off < sp->len ? xmalloc(DELIVER_CHUNK) : NULL;
	while (o->st == STORE_OK && off < sp->len) {
		size_t k = sp->len - off > DELIVER_CHUNK ? DELIVER_CHUNK :
		    (size_t)(sp->len - off);
		ssize_t n = deliver_spool_pread(sp, b, k, off);

		if (n <= 0) {
			(void)snprintf(err, errsz, "spool: %s",
			    n == 0 ? "short read" : strerror(errno));
			free(b);
			free(o);
			store_deliver_abort(&d);
			return DELIVER_TEMP;
		}
		deliver_out_conv(o, b, (size_t)n);
		off += (uint64_t)n;
	}
	free(b);
	deliver_out_finish(o);
	st = o->st;
	free(o);
	if (st != STORE_OK) {
		store_deliver_abort(&d);
		(void)snprintf(err, errsz, "writing to %s failed (see log)",
		    e->location);
		return st == STORE_TEMP ? DELIVER_TEMP : DELIVER_PERM;
	}
	st = store_deliver_commit(&d, id, idsz);
	if (st != STORE_OK) {
		(void)snprintf(err, errsz, "storing in %s failed (see log)",
		    e->location);
		return st == STORE_TEMP ? DELIVER_TEMP : DELIVER_PERM;
	}
	return DELIVER_OK;
}

enum deliver_status
deliver_one(const struct userdb *db, const struct deliver_spool *sp,
    const char *sender, const char *rcpt, char *err, size_t errsz)
{
	const struct userdb_entry *e;

	switch (deliver_resolve(db, rcpt, &e)) {
	case USERDB_OK:
		return deliver_to_entry(sp, sender, rcpt, e, NULL, 0, err,
		    errsz);
	case USERDB_TEMPFAIL:
		(void)snprintf(err, errsz, "user database unavailable");
		return DELIVER_TEMP;
	default:
		(void)snprintf(err, errsz, "unknown user");
		return DELIVER_NO_USER;
	}
}

const char *
deliver_status_str(enum deliver_status st)
{
	switch (st) {
	case DELIVER_OK:
		return "delivered";
	case DELIVER_NO_USER:
		return "unknown user";
	case DELIVER_TEMP:
		return "temporary failure";
	case DELIVER_PERM:
		return "mailbox unusable";
	case DELIVER_BAD_MSG:
		return "malformed message";
	case DELIVER_TOO_BIG:
		return "message too large";
	}
	return "?";
}
