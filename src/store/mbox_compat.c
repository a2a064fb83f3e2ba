/*
 * mbox_compat.c - the UIDLs (and sizes) an mbox's old POP3 server gave,
 * read from the headers it left in the file (mbox_store.h, MBOX_COMPAT_*).
 * posuto never writes these headers.
 *
 * UW ipop3d / c-client (imap-2007f src/osdep/unix/unix.c unix_parse(),
 * src/ipopd/ipop3d.c): UIDL = "%08lx%08lx" of the UIDVALIDITY from the
 * first message's X-IMAPbase: (or X-IMAP:) header and the message's X-UID:.
 * Header lines named Status, X-Status, X-Keywords, X-UID, X-IMAP or
 * X-IMAPbase (any case), and continuation lines after them, are not part
 * of the message c-client serves: not sent, not counted in LIST/STAT.  A
 * first message with X-IMAP: is c-client's folder-internal pseudo-message:
 * never listed.  c-client believes X-UID only with a UIDVALIDITY and
 * strictly rising UIDs; else it renumbered the whole mailbox, and posuto
 * serves its own UIDLs.
 *
 * qpopper (4.0 pop_dropcopy.c pop_dropinfo()): UIDL = the value of the
 * first X-UIDL: header (case-insensitive), after the colon and blanks, to
 * the end of the line; the header stays in the message (sent, counted).
 * Its pseudo-message rule (UW_KLUDGE): a first message with two of
 * "Subject: ...DON'T DELETE THIS MESSAGE/DO NOT DELETE/FOLDER INTERNAL
 * DATA", "X-IMAP: " and "From: Mail System Internal Data" is hidden.
 * The value is message content anyone who mails the user controls: only
 * used when configured ("qpopper", never auto) and only when RFC-clean
 * and unique; otherwise posuto's own UIDL.
 *
 * Cost: each message's header is read at every open (not the body).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "store/mbox_int.h"

#define MBOX_HDR_CHUNK	8192
#define MBOX_LINE_KEEP	160	/* bytes of a line kept for parsing */

/* One header line as the scanner sees it. */
struct mbox_hline {
	uint64_t off;		/* file offset of the line */
	uint64_t len;		/* with its LF */
	char head[MBOX_LINE_KEEP + 1];	/* first bytes, NUL-terminated */
	size_t head_len;
	bool has_lf, crlf;	/* ends in LF; in CRLF */
	bool prev_cr;
};

typedef bool (*mbox_hline_fn)(void *ctx, const struct mbox_hline *l);

/* Calls fn for each header line of m (up to the blank line); false on a
 * read error. */
static bool
mbox_header_lines(int fd, const struct mbox_msg *m, mbox_hline_fn fn,
    void *ctx)
{
	unsigned char *buf = xmalloc(MBOX_HDR_CHUNK);
	struct mbox_hline l;
	uint64_t off = m->data_off, end = m->data_off + m->data_len;
	bool ok = true, stop = false;

	memset(&l, 0, sizeof(l));
	l.off = off;
	while (off < end && !stop) {
		size_t k = end - off > MBOX_HDR_CHUNK ? MBOX_HDR_CHUNK :
		    (size_t)(end - off);

		if (!mbox_pread_full(fd, buf, k, off)) {
			ok = false;
			break;
		}
		for (size_t i = 0; i < k; i++) {
			if (l.head_len < MBOX_LINE_KEEP)
				l.head[l.head_len++] = buf[i] != '\0' ?
				    (char)buf[i] : ' ';
			l.len++;
			if (buf[i] != '\n') {
				l.prev_cr = buf[i] == '\r';
				continue;
			}
			l.has_lf = true;
			l.crlf = l.prev_cr;
			l.head[l.head_len] = '\0';
			if (l.len == 1 || (l.len == 2 && l.head[0] == '\r') ||
			    !fn(ctx, &l)) {
				stop = true;	/* the blank line ends it */
				break;
			}
			memset(&l, 0, sizeof(l));
			l.off = off + i + 1;
		}
		off += k;
	}
	/* a header running to the end of the message: its last line */
	if (ok && !stop && l.len > 0) {
		l.head[l.head_len] = '\0';
		(void)fn(ctx, &l);
	}
	free(buf);
	return ok;
}

/* The field name of a header line (what c-client's mail_filter() takes):
 * up to ':' or a control/blank byte. */
static size_t
mbox_field_name(const char *s, char *out, size_t outsz)
{
	size_t n = 0;

	while (s[n] != '\0' && s[n] != ':' && (unsigned char)s[n] > ' ' &&
	    n + 1 < outsz) {
		out[n] = s[n];
		n++;
	}
	out[n] = '\0';
	return n;
}

/* Wire octets of a stored line alone (lib/wire.h): LF -> CRLF, CRLF
 * stays, no line end at all gets one. */
static uint64_t
mbox_line_wire(const struct mbox_hline *l)
{
	if (!l->has_lf)
		return l->len + 2;
	return l->crlf ? l->len : l->len + 1;
}

static bool
mbox_is_uw_field(const char *name)
{
	static const char *const f[] = { "Status", "X-Status", "X-Keywords",
	    "X-UID", "X-IMAP", "X-IMAPbase" };

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (strcasecmp(name, f[i]) == 0)
			return true;
	return false;
}

/* c-client's decimal: digits into an unsigned long (wraps alike). */
static const char *
mbox_ulong(const char *s, uint64_t *v_r)
{
	uint64_t v = 0;

	while (isdigit((unsigned char)*s))
		v = v * 10 + (uint64_t)(*s++ - '0');
	*v_r = v;
	return s;
}

struct mbox_uw_scan {
	struct mbox *mb;
	size_t msgno;		/* 0-based, in the file */
	bool retain;		/* c-client: keep a continuation line */
	bool has_uid;
	uint64_t uid;
	bool dup;		/* a second X-UID: */
	/* the first message */
	bool pseudo;
	/* hidden ranges of this message */
	struct mbox_hidden *r;
	size_t nr, cap;
	uint64_t hidden_wire;
	/* qpopper */
	bool q_mode;
	bool q_found, q_bad;
	char q_uidl[MBOX_UIDL_MAX + 32];
	unsigned uw_hint;
};

static void
mbox_scan_hide(struct mbox_uw_scan *s, const struct mbox_hline *l)
{
	if (s->nr == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 8;
		s->r = xreallocarray(s->r, s->cap, sizeof(*s->r));
	}
	/* adjacent lines (Status, X-Status, ...): one range */
	if (s->nr > 0 && s->r[s->nr - 1].off + s->r[s->nr - 1].len == l->off)
		s->r[s->nr - 1].len += l->len;
	else
		s->r[s->nr++] = (struct mbox_hidden){ l->off, l->len };
	s->hidden_wire += mbox_line_wire(l);
}

static bool
mbox_uw_line(void *ctx, const struct mbox_hline *l)
{
	struct mbox_uw_scan *s = ctx;
	struct mbox *mb = s->mb;
	const char *p = l->head;
	char name[32];

	if (p[0] == ' ' || p[0] == '\t') {
		if (!s->retain)
			mbox_scan_hide(s, l);
		return true;
	}
	/* c-client compares the name up to ':' or a blank, any case */
	mbox_field_name(p, name, sizeof(name));
	if (!mbox_is_uw_field(name)) {
		s->retain = true;
		return true;
	}
	s->retain = false;
	mbox_scan_hide(s, l);
	if (s->msgno == 0 && mb->c_uidvalidity == 0 &&
	    (strncmp(p, "X-IMAP:", 7) == 0 ||
	    strncmp(p, "X-IMAPbase:", 11) == 0)) {
		bool m = p[6] == ':';
		uint64_t v, last;

		p += m ? 7 : 11;
		while (*p == ' ')
			p++;
		p = mbox_ulong(p, &v);
		while (*p == ' ')
			p++;
		if (v != 0 && isdigit((unsigned char)*p)) {
			(void)mbox_ulong(p, &last);
			mb->c_uidvalidity = v;
			if (m)
				s->pseudo = true;
		}
	} else if (strncmp(p, "X-UID:", 6) == 0 && mb->c_uidvalidity != 0 &&
	    (s->msgno > 0 || !s->pseudo)) {
		uint64_t v;

		p += 6;
		while (*p == ' ')
			p++;
		(void)mbox_ulong(p, &v);
		if (s->has_uid)
			s->dup = true;
		s->has_uid = true;
		s->uid = v;
	}
	return true;
}

/* qpopper's X-UIDL: value, from a kept line head. */
static bool
mbox_q_line(void *ctx, const struct mbox_hline *l)
{
	struct mbox_uw_scan *s = ctx;
	const char *p = l->head, *e;

	if (s->msgno == 0) {
		if (strncasecmp(p, "Subject: ", 9) == 0 &&
		    (strstr(p, "DO NOT DELETE") != NULL ||
		    strstr(p, "DON'T DELETE THIS MESSAGE") != NULL ||
		    strstr(p, "FOLDER INTERNAL DATA") != NULL))
			s->uw_hint++;
		else if (strncasecmp(p, "X-IMAP: ", 8) == 0)
			s->uw_hint++;
		else if (strncasecmp(p, "From: Mail System Internal Data",
		    31) == 0)
			s->uw_hint++;
		if (s->uw_hint == 2)
			s->pseudo = true;
	}
	if (s->q_found || strncasecmp(p, "X-UIDL:", 7) != 0)
		return true;
	p += 7;
	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strlen(p);
	if (e > p && e[-1] == '\n')
		e--;
	if ((size_t)(e - p) >= sizeof(s->q_uidl) ||
	    l->head_len != l->len) {
		s->q_bad = true;	/* longer than any UIDL */
		(void)snprintf(s->q_uidl, sizeof(s->q_uidl), "%.*s...", 40, p);
		return true;
	}
	memcpy(s->q_uidl, p, (size_t)(e - p));
	s->q_uidl[e - p] = '\0';
	if (mbox_uidl_ok(s->q_uidl, (size_t)(e - p)))
		s->q_found = true;	/* later ones are ignored */
	else
		s->q_bad = true;
	return true;
}

bool
mbox_uidl_ok(const char *s, size_t n)
{
	if (n < 1 || n > 70)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static int
mbox_uidl_idx_cmp(const void *a, const void *b, void *ctx)
{
	const struct mbox *mb = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(mb->uidl[x], mb->uidl[y]);

	if (c != 0)
		return c;
	return x < y ? -1 : x > y;
}

void
mbox_compat_free(struct mbox *mb)
{
	if (mb->c_old != NULL)
		for (size_t i = 0; i < mb->n; i++)
			free(mb->c_old[i]);
	free(mb->c_status);
	free(mb->c_old);
	free(mb->c_hide);
	free(mb->c_hide_at);
	free(mb->c_size);
	mb->c_status = NULL;
	mb->c_old = NULL;
	mb->c_hide = NULL;
	mb->c_hide_at = NULL;
	mb->c_size = NULL;
}

enum mbox_status
mbox_compat_apply(struct mbox *mb, char *err, size_t errsz)
{
	struct mbox_uw_scan s;
	enum mbox_compat want = mb->opts.compat;
	size_t i, nh = 0;
	bool uw, renumber = false;
	uint64_t prev = 0;

	mb->c_used = MBOX_COMPAT_NONE;
	if (want == MBOX_COMPAT_NONE || mb->n == 0 || mb->fd < 0)
		return MBOX_OK;
	uw = want == MBOX_COMPAT_UW || want == MBOX_COMPAT_UW_AUTO;
	mb->c_status = xcalloc(mb->n, sizeof(*mb->c_status));
	mb->c_old = xcalloc(mb->n, sizeof(*mb->c_old));
	mb->c_size = xcalloc(mb->n, sizeof(*mb->c_size));
	mb->c_hide_at = xcalloc(mb->n + 1, sizeof(*mb->c_hide_at));
	memset(&s, 0, sizeof(s));
	s.mb = mb;
	for (i = 0; i < mb->n; i++) {
		s.msgno = i;
		s.retain = true;
		s.has_uid = s.dup = false;
		s.q_found = s.q_bad = false;
		s.hidden_wire = 0;
		s.nr = 0;
		if (!mbox_header_lines(mb->fd, &mb->msgs[i],
		    uw ? mbox_uw_line : mbox_q_line, &s)) {
			snprintf(err, errsz, "read: %s", strerror(errno));
			mbox_compat_free(mb);
			return MBOX_TEMP;
		}
		if (i == 0 && want == MBOX_COMPAT_UW_AUTO &&
		    mb->c_uidvalidity == 0) {
			/* no c-client headers: nothing to take over */
			mbox_compat_free(mb);
			free(s.r);
			return MBOX_OK;
		}
		/* served as stored: every ">From " line one octet more */
		mb->c_size[i] = mb->msgs[i].wire_size + mb->msgs[i].quoted;
		if (uw) {
			mb->c_size[i] -= s.hidden_wire;
			mb->c_hide = xreallocarray(mb->c_hide, nh + s.nr + 1,
			    sizeof(*mb->c_hide));
			memcpy(mb->c_hide + nh, s.r, s.nr * sizeof(*s.r));
			nh += s.nr;
		}
		mb->c_hide_at[i + 1] = (uint32_t)nh;
		if (i == 0 && s.pseudo)
			mb->skip = 1;
		if (i == 0 && s.pseudo)
			continue;
		if (uw) {
			if (s.has_uid && (s.dup || s.uid <= prev))
				renumber = true;
			if (s.has_uid && !renumber) {
				prev = s.uid;
				mb->c_old[i] = xasprintf("%08llx%08llx",
				    (unsigned long long)mb->c_uidvalidity,
				    (unsigned long long)s.uid);
				mb->c_status[i] = MBOX_CSTAT_KEPT;
			}
		} else if (s.q_found) {
			mb->c_old[i] = xstrdup(s.q_uidl);
			mb->c_status[i] = MBOX_CSTAT_KEPT;
		} else if (s.q_bad) {
			mb->c_old[i] = xstrdup(s.q_uidl);
			mb->c_status[i] = MBOX_CSTAT_INVALID;
		}
	}
	free(s.r);
	mb->c_used = uw ? MBOX_COMPAT_UW : MBOX_COMPAT_QPOPPER;
	if (uw && (renumber || mb->c_uidvalidity == 0)) {
		/* c-client gave every message a new UID: nothing to keep */
		mb->c_renumbered = true;
		for (i = mb->skip; i < mb->n; i++)
			mb->c_status[i] = MBOX_CSTAT_RENUMBERED;
	}
	for (i = mb->skip; i < mb->n; i++) {
		if (mb->c_status[i] != MBOX_CSTAT_KEPT)
			continue;
		if (!mbox_uidl_ok(mb->c_old[i], strlen(mb->c_old[i])) ||
		    strlen(mb->c_old[i]) >= MBOX_UIDL_MAX) {
			mb->c_status[i] = MBOX_CSTAT_INVALID;
			continue;
		}
		snprintf(mb->uidl[i], MBOX_UIDL_MAX, "%s", mb->c_old[i]);
	}
	/* unique: a compat UIDL repeating another (old or posuto's) gives
	 * way to posuto's own (the later of two old ones) */
	{
		uint32_t *ord = xcalloc(mb->n, sizeof(*ord));
		char (*own)[MBOX_UIDL_MAX] = xcalloc(mb->n, sizeof(*own));
		size_t m = 0;
		bool again = true;

		mbox_assign_uidls(mb->msgs, mb->n, own);

		while (again) {
			again = false;
			m = 0;
			for (i = mb->skip; i < mb->n; i++)
				ord[m++] = (uint32_t)i;
			qsort_r(ord, m, sizeof(*ord), mbox_uidl_idx_cmp, mb);
			for (i = 1; i < m; i++) {
				uint32_t a = ord[i - 1], b = ord[i];

				if (strcmp(mb->uidl[a], mb->uidl[b]) != 0)
					continue;
				if (mb->c_status[b] != MBOX_CSTAT_KEPT)
					b = a;
				if (mb->c_status[b] != MBOX_CSTAT_KEPT)
					continue;
				mb->c_status[b] = MBOX_CSTAT_DUP;
				memcpy(mb->uidl[b], own[b], MBOX_UIDL_MAX);
				again = true;	/* posuto's own may repeat */
			}
		}
		free(ord);
		free(own);
	}
	for (i = mb->skip; i < mb->n; i++)
		if (mb->c_status[i] == MBOX_CSTAT_KEPT)
			mb->c_kept++;
	return MBOX_OK;
}
