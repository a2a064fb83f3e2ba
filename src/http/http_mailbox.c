/*
 * http_mailbox.c - the mailbox viewer's API (issue 12): mailboxes, their
 * messages (list, search, parsed, raw, HTML, parts), delete, upload, the
 * mailbox as an mbox file, the POP3 state overlay, and the CSP report
 * endpoint.  HTTP thread only.
 *
 * Mailboxes are read through store.h with mailbox_open_view(): a viewer
 * must see a mailbox while a POP3 session holds it, and must never make
 * a client's login fail with [IN-USE].  Only DELETE takes the session
 * lock (mailbox_open()), so it is refused with 409 while a session is in
 * the mailbox: the session's snapshot and message numbers stay true.
 *
 * The list of a big mailbox must not parse every message per request:
 * each viewed mailbox keeps a header cache (From, Subject, Date of each
 * message, keyed by UIDL, carried over when the snapshot changes), filled
 * as pages are asked for and in small steps by a timer, so that a search
 * over 100k messages reads each file once, not once per search.  At most
 * MBX_VIEWS mailboxes are kept (least recently used go).
 *
 * Live updates: while a page listens (SSE), a 500 ms timer looks at the
 * POP3 event ring's sequence number and at the directory stamps (mtime,
 * ctime, inode of the root, new/ and cur/) of every user's mailbox, three
 * stat()s each, so a delivery by another process shows within a second.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http/http_int.h"
#include "http/http_mime.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/mailevents.h"
#include "store/store.h"

#define MBX_VIEWS		4	/* mailboxes with a header cache */
#define MBX_GHOSTS		64	/* vanished messages remembered */
#define MBX_PAGE_DEFAULT	50
#define MBX_PAGE_MAX		500
#define MBX_QUERY_MAX		200	/* bytes of a search term */
#define MBX_POLL_MS		500
/* The header cache fills in ticks of MBX_INDEX_MS every MBX_INDEX_EVERY_MS
 * on the admin thread, so a request waits at most about one tick. */
#define MBX_INDEX_STEP		300	/* messages parsed per timer tick, at most */
#define MBX_INDEX_MS		5
#define MBX_INDEX_EVERY_US	10000
#define MBX_SEARCH_BUDGET_MS	300	/* parsing one search may do */
#define MBX_USERS_MAX		1024	/* users the list and the poll look at */
#define MBX_CHUNK		(256u << 10)	/* streamed per write */
#define MBX_CSP_LOGGED		20	/* reports logged before sampling */

/* The mail HTML's policy: nothing but inline style and images carried
 * in the message; `sandbox` so that even opened on its own it runs
 * nothing; framed only by our own pages. */
#define MBX_MAIL_CSP "default-src 'none'; style-src 'unsafe-inline'; " \
	"img-src data:%s; font-src data:; sandbox; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'self'; " \
	"report-uri /api/v1/csp-report?from=mail"

struct mbx_snap {			/* a snapshot shared with streams */
	struct mailbox *mb;
	unsigned refs;
};

struct mbx_entry {
	char *uidl;
	char *from, *subject;		/* NULL until parsed; one block */
	int64_t date;
	uint64_t size;
};

struct mbx_view {
	bool used;
	char user[256];
	char *location;
	struct mbx_snap *snap;
	struct mbx_entry *e;		/* snapshot order (oldest first) */
	uint32_t n, n_parsed;
	uint64_t stamp;
	time_t newest_mtime;
	time_t opened, last_used;
};

struct mbx_ghost {
	char user[64];
	char uidl[NET_MAILEV_UIDL_LEN];
	char from[HTTP_MIME_FROM_MAX];
	char subject[HTTP_MIME_SUBJECT_MAX];
};

enum mbx_stream_kind { MBX_STREAM_RAW, MBX_STREAM_MBOX };

struct mbx_stream {
	struct http_mailbox *m;
	struct mbx_stream *next;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct mbx_snap *snap;
	enum mbx_stream_kind kind;
	uint32_t idx, end;		/* messages [idx, end) */
	struct msg_reader *r;
	bool bol;			/* mbox: at the start of a line */
	bool last_cr;
	char line_head[64];		/* mbox: ">*From " being matched */
	size_t head_len;
};

struct http_mailbox {
	struct http_server *h;
	struct mbx_view views[MBX_VIEWS];
	struct mbx_ghost ghosts[MBX_GHOSTS];
	unsigned ghost_next;
	struct event *poll, *indexer;
	uint64_t seen_seq;
	uint64_t seen_stamps;
	struct mbx_stream *streams;
	struct net_mailev *evbuf;	/* NET_MAILEV_MAX, for the overlay */
	uint64_t csp_admin, csp_mail;
};

/* ------------------------------------------------------------------ */
/* Users and locations                                                 */

struct mbx_user_find {
	const char *name;
	char *location;			/* "<format>:<path>", malloc'd */
};

static char *
mbx_location(const struct http_admin_user *u)
{
	const char *fmt = u->format != NULL ? u->format : "auto";
	size_t n;
	char *loc;

	/* a store that names mailboxes by user (sql:) has no path */
	if ((u->mailbox == NULL || u->mailbox[0] != '/') &&
	    u->location != NULL && strncmp(u->location, "sql:", 4) == 0)
		return xstrdup(u->location);
	if (u->mailbox == NULL || u->mailbox[0] != '/')
		return NULL;
	n = strlen(fmt) + strlen(u->mailbox) + 2;
	loc = xmalloc(n);
	snprintf(loc, n, "%s:%s", fmt, u->mailbox);
	return loc;
}

static bool
mbx_find_fn(const struct http_admin_user *u, void *arg)
{
	struct mbx_user_find *f = arg;

	if (strcmp(u->name, f->name) != 0)
		return true;
	f->location = mbx_location(u);
	return false;
}

/* The location of user's mailbox (malloc'd), or NULL: no such user. */
static char *
mbx_user_location(struct http_mailbox *m, const char *user)
{
	struct mbx_user_find f = { .name = user };

	if (m->h->src.users != NULL)
		(void)m->h->src.users(m->h->src.arg, mbx_find_fn, &f);
	return f.location;
}

static const char *
mbx_path_of(const char *location)
{
	const char *colon = strchr(location, ':');

	return colon != NULL ? colon + 1 : location;
}

static void
mbx_stamp_add(uint64_t *h, const struct stat *st)
{
	const uint64_t v[] = { (uint64_t)st->st_ino, (uint64_t)st->st_size,
	    (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
	    (uint64_t)st->st_ctim.tv_sec, (uint64_t)st->st_ctim.tv_nsec };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		*h ^= v[i];
		*h *= 0x100000001b3ULL;
	}
}

/* What changes when mail arrives or goes: three stat()s, no reads. */
static uint64_t
mbx_stamp(const char *location, time_t *newest_r)
{
	const char *path = mbx_path_of(location);
	static const char *const sub[] = { "", "/new", "/cur" };
	uint64_t h = 0xcbf29ce484222325ULL;
	char buf[4096];
	struct stat st;

	*newest_r = 0;
	for (size_t i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "%s%s", path, sub[i]);
		if (stat(buf, &st) == -1) {
			h ^= 0x5a + i;
			h *= 0x100000001b3ULL;
			continue;
		}
		mbx_stamp_add(&h, &st);
		if (st.st_mtim.tv_sec > *newest_r)
			*newest_r = st.st_mtim.tv_sec;
	}
	return h;
}

/* ------------------------------------------------------------------ */
/* Snapshots and the header cache                                      */

static void
mbx_snap_unref(struct mbx_snap **sp)
{
	struct mbx_snap *s = *sp;

	*sp = NULL;
	if (s == NULL || --s->refs > 0)
		return;
	mailbox_close(&s->mb);
	free(s);
}

static void
mbx_entry_clear(struct mbx_entry *e)
{
	free(e->uidl);
	free(e->from);		/* subject lives in the same block */
	memset(e, 0, sizeof(*e));
}

static void
mbx_view_clear(struct mbx_view *v)
{
	for (uint32_t i = 0; i < v->n; i++)
		mbx_entry_clear(&v->e[i]);
	free(v->e);
	free(v->location);
	mbx_snap_unref(&v->snap);
	memset(v, 0, sizeof(*v));
}

static uint32_t
mbx_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static void
mbx_ghost_add(struct http_mailbox *m, const char *user,
    const struct mbx_entry *e)
{
	struct mbx_ghost *g = &m->ghosts[m->ghost_next++ % MBX_GHOSTS];

	if (e->subject == NULL || strlen(user) >= sizeof(g->user) ||
	    strlen(e->uidl) >= sizeof(g->uidl))
		return;
	memset(g, 0, sizeof(*g));
	(void)str_copy(g->user, sizeof(g->user), user);
	(void)str_copy(g->uidl, sizeof(g->uidl), e->uidl);
	(void)str_copy(g->from, sizeof(g->from), e->from);
	(void)str_copy(g->subject, sizeof(g->subject), e->subject);
}

/*
 * Fills v->e from a new snapshot, taking over what the old entries knew
 * (by UIDL, through an open-addressing table of old indexes); entries
 * that vanished become ghosts.
 */
static void
mbx_view_rebuild(struct http_mailbox *m, struct mbx_view *v,
    struct mbx_snap *snap)
{
	uint32_t n = mailbox_count(snap->mb);
	uint32_t cap = 16, *tab;
	struct mbx_entry *ne = xcalloc(n + 1, sizeof(*ne));
	bool *taken = xcalloc(v->n + 1, sizeof(*taken));

	while (cap < 2 * v->n + 2)
		cap *= 2;
	tab = xcalloc(cap, sizeof(*tab));	/* index + 1, 0 = empty */
	for (uint32_t i = 0; i < v->n; i++) {
		uint32_t k = mbx_hash(v->e[i].uidl) & (cap - 1);

		while (tab[k] != 0)
			k = (k + 1) & (cap - 1);
		tab[k] = i + 1;
	}
	v->n_parsed = 0;
	for (uint32_t i = 0; i < n; i++) {
		const char *uidl = mailbox_msg_uidl(snap->mb, i);
		uint32_t k = mbx_hash(uidl) & (cap - 1);

		for (; v->n > 0 && tab[k] != 0; k = (k + 1) & (cap - 1)) {
			struct mbx_entry *old = &v->e[tab[k] - 1];

			if (!taken[tab[k] - 1] && strcmp(old->uidl, uidl) == 0) {
				ne[i] = *old;
				memset(old, 0, sizeof(*old));
				taken[tab[k] - 1] = true;
				break;
			}
		}
		if (ne[i].uidl == NULL)
			ne[i].uidl = xstrdup(uidl);
		ne[i].size = mailbox_msg_size(snap->mb, i);
		if (ne[i].subject != NULL)
			v->n_parsed++;
	}
	for (uint32_t i = 0; i < v->n; i++) {
		if (!taken[i] && v->e[i].uidl != NULL)
			mbx_ghost_add(m, v->user, &v->e[i]);
		mbx_entry_clear(&v->e[i]);
	}
	free(v->e);
	free(tab);
	free(taken);
	v->e = ne;
	v->n = n;
	mbx_snap_unref(&v->snap);
	v->snap = snap;
}

static enum store_status
mbx_snap_open(const char *location, const char *user, struct mbx_snap **s_r,
    char *err, size_t errsz)
{
	struct mailbox *mb;
	enum store_status st;

	*s_r = NULL;
	st = mailbox_open_view(location, user, &mb, err, errsz);
	if (st != STORE_OK)
		return st;
	*s_r = xcalloc(1, sizeof(**s_r));
	(*s_r)->mb = mb;
	(*s_r)->refs = 1;
	return STORE_OK;
}

/*
 * The view of user's mailbox, current: reopened when its stamp moved,
 * or when it was opened within a second of its newest change (directory
 * times tick coarsely: a delivery in the same tick leaves no trace).
 */
static struct mbx_view *
mbx_view_get(struct http_mailbox *m, const char *user, const char *location,
    enum store_status *st_r)
{
	struct mbx_view *v = NULL, *lru = &m->views[0];
	time_t now = time(NULL), newest;
	uint64_t stamp = mbx_stamp(location, &newest);
	struct mbx_snap *snap;
	char err[512];

	*st_r = STORE_OK;
	for (size_t i = 0; i < MBX_VIEWS; i++) {
		struct mbx_view *c = &m->views[i];

		if (c->used && strcmp(c->user, user) == 0 &&
		    strcmp(c->location, location) == 0) {
			v = c;
			break;
		}
		if (!c->used || (lru->used && c->last_used < lru->last_used))
			lru = c;
	}
	if (v != NULL && v->stamp == stamp && v->opened > newest + 1) {
		v->last_used = now;
		return v;
	}
	*st_r = mbx_snap_open(location, user, &snap, err, sizeof(err));
	if (*st_r != STORE_OK) {
		log_warnx("admin: mailbox of %s: %s", user, err);
		/* a snapshot we have beats none (mbox while a session is in) */
		if (v != NULL) {
			*st_r = STORE_OK;
			v->last_used = now;
		}
		return v;
	}
	if (v == NULL) {
		v = lru;
		mbx_view_clear(v);
		v->used = true;
		(void)str_copy(v->user, sizeof(v->user), user);
		v->location = xstrdup(location);
	}
	mbx_view_rebuild(m, v, snap);
	v->stamp = stamp;
	v->newest_mtime = newest;
	v->opened = v->last_used = now;
	return v;
}

/*
 * msg_reader_read() that waits for a reader behind a server: the sql
 * store's reads say EAGAIN when the chunk fetched is used up, and the
 * next one is fetched here (msg_reader_fill(), one SELECT, bounded by
 * QueryTimeOut).  The admin thread may wait for it, as it waits for
 * mailbox_open_view() (a query too for sql): it serves no POP3 session.
 */
static ssize_t
mbx_reader_read(struct msg_reader *r, void *buf, size_t len)
{
	for (;;) {
		ssize_t got = msg_reader_read(r, buf, len);

		if (got >= 0 || errno != EAGAIN)
			return got;
		if (msg_reader_fill(r) != STORE_OK) {
			errno = EIO;
			return -1;
		}
	}
}

/* Reads message idx of snap whole, at most max bytes (more: false,
 * errno EFBIG). */
static bool
mbx_read(struct mbx_snap *snap, uint32_t idx, size_t max, char **buf_r,
    size_t *len_r)
{
	struct msg_reader *r;
	size_t cap = 8192, len = 0;
	char *buf;
	ssize_t got;

	*buf_r = NULL;
	if (mailbox_msg_open(snap->mb, idx, &r) != STORE_OK)
		return false;
	buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				free(buf);
				msg_reader_close(&r);
				errno = EFBIG;
				return false;
			}
			cap = cap * 2 > max ? max : cap * 2;
			buf = xreallocarray(buf, cap + 1, 1);
		}
		got = mbx_reader_read(r, buf + len, cap - len);
		if (got < 0) {
			free(buf);
			msg_reader_close(&r);
			return false;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	msg_reader_close(&r);
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return true;
}

/* The header block of message idx, parsed into its entry. */
static void
mbx_parse_entry(struct mbx_view *v, uint32_t idx)
{
	struct mbx_entry *e = &v->e[idx];
	struct http_mime_summary sum;
	struct msg_reader *r;
	char *buf;
	size_t len = 0;

	if (e->subject != NULL)
		return;
	memset(&sum, 0, sizeof(sum));
	if (mailbox_msg_open(v->snap->mb, idx, &r) == STORE_OK) {
		buf = xmalloc(HTTP_MIME_MAX_HEADER + 1);
		while (len < HTTP_MIME_MAX_HEADER) {
			ssize_t got = mbx_reader_read(r, buf + len,
			    HTTP_MIME_MAX_HEADER - len);
			char *end;

			if (got <= 0)
				break;
			len += (size_t)got;
			buf[len] = '\0';
			/* the header ends at the first empty line */
			if ((end = strstr(buf, "\n\n")) != NULL ||
			    (end = strstr(buf, "\n\r\n")) != NULL) {
				len = (size_t)(end - buf) + 1;
				break;
			}
		}
		msg_reader_close(&r);
		http_mime_summary(buf, len, &sum);
		free(buf);
	}
	/* one block "from\0subject\0": a search touches one allocation */
	{
		size_t fl = strlen(sum.from), sl = strlen(sum.subject);

		e->from = xmalloc(fl + sl + 2);
		memcpy(e->from, sum.from, fl + 1);
		e->subject = e->from + fl + 1;
		memcpy(e->subject, sum.subject, sl + 1);
	}
	e->date = sum.date;
	v->n_parsed++;
}

static double
mbx_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Parses unparsed entries, newest first, for up to budget_ms; true when
 * none is left. */
static bool
mbx_fill(struct mbx_view *v, double budget_ms, uint32_t max)
{
	struct timespec t0;
	uint32_t done = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint32_t k = v->n; k > 0 && v->n_parsed < v->n; k--) {
		if (v->e[k - 1].subject != NULL)
			continue;
		mbx_parse_entry(v, k - 1);
		/* every entry may be a cold file read: look at the clock
		 * after each (vDSO, cheap) */
		if (++done >= max || mbx_ms_since(&t0) > budget_ms)
			break;
	}
	return v->n_parsed >= v->n;
}

static void
mbx_on_index(evutil_socket_t fd, short what, void *arg)
{
	struct http_mailbox *m = arg;
	struct timeval tv = { .tv_usec = MBX_INDEX_EVERY_US };
	bool more = false;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < MBX_VIEWS; i++) {
		struct mbx_view *v = &m->views[i];

		if (v->used && v->snap != NULL && v->n_parsed < v->n) {
			more = !mbx_fill(v, MBX_INDEX_MS, MBX_INDEX_STEP) || more;
			break;
		}
	}
	for (size_t i = 0; i < MBX_VIEWS && !more; i++)
		more = m->views[i].used && m->views[i].n_parsed < m->views[i].n;
	if (more)
		event_add(m->indexer, &tv);
}

static void
mbx_index_later(struct http_mailbox *m)
{
	struct timeval tv = { .tv_usec = MBX_INDEX_EVERY_US };

	if (!event_pending(m->indexer, EV_TIMEOUT, NULL))
		event_add(m->indexer, &tv);
}

/* ------------------------------------------------------------------ */
/* The POP3 overlay                                                    */

struct mbx_overlay {
	uint64_t retr_sid, mark_sid, del_sid;
	time_t retr_at, mark_at, del_at;
};

static void
mbx_overlay_of(const struct net_mailev *ev, size_t nev, const char *uidl,
    struct mbx_overlay *o)
{
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < nev; i++) {
		const struct net_mailev *e = &ev[i];

		if (e->kind == NET_MAILEV_UNMARKED) {
			if (e->session == o->mark_sid && (e->uidl[0] == '\0' ||
			    strcmp(e->uidl, uidl) == 0))
				o->mark_sid = 0;
			continue;
		}
		if (strcmp(e->uidl, uidl) != 0)
			continue;
		if (e->kind == NET_MAILEV_RETRIEVED) {
			o->retr_sid = e->session;
			o->retr_at = e->when;
		} else if (e->kind == NET_MAILEV_MARKED) {
			o->mark_sid = e->session;
			o->mark_at = e->when;
		} else if (e->kind == NET_MAILEV_DELETED) {
			o->del_sid = e->session;
			o->del_at = e->when;
			o->mark_sid = 0;
		}
	}
}

static json_t *
mbx_sid(uint64_t sid)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llx", (unsigned long long)sid);
	return json_string(buf);
}

static json_t *
mbx_overlay_json(const struct mbx_overlay *o)
{
	json_t *s = json_object();

	if (o->retr_sid != 0)
		json_object_set_new(s, "retrieved", json_pack("{s:o, s:I}",
		    "session", mbx_sid(o->retr_sid), "at",
		    (json_int_t)o->retr_at));
	if (o->mark_sid != 0)
		json_object_set_new(s, "marked", json_pack("{s:o, s:I}",
		    "session", mbx_sid(o->mark_sid), "at",
		    (json_int_t)o->mark_at));
	if (o->del_sid != 0)
		json_object_set_new(s, "deleted", json_pack("{s:o, s:I}",
		    "session", mbx_sid(o->del_sid), "at",
		    (json_int_t)o->del_at));
	return s;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */

static void
mbx_reply_json(struct evhttp_request *req, int code, json_t *v)
{
	char *text = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;

	if (text == NULL) {
		http_reply_error(req, 500, "cannot encode the reply");
		return;
	}
	http_reply_json_text(req, code, text);
	free(text);
	json_decref(v);
}

static void
mbx_reply_store_error(struct evhttp_request *req, enum store_status st)
{
	if (st == STORE_IN_USE)
		http_reply_error(req, 409, "mailbox in use by a POP3 session");
	else if (st == STORE_PERM)
		http_reply_error(req, 500, "mailbox not usable (see the log)");
	else
		http_reply_error(req, 503, "mailbox temporarily unreadable");
}

static void
mbx_reply_bytes(struct evhttp_request *req, const char *type,
    const void *data, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (b == NULL)
		fatal("out of memory");
	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type", type);
	evhttp_add_header(out, "Cache-Control", "no-store");
	evbuffer_add(b, data, len);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* Content-Disposition: attachment with an ASCII fallback name and the
 * UTF-8 one (RFC 6266, RFC 8187). */
static void
mbx_disposition(struct evhttp_request *req, const char *name)
{
	char ascii[128], ext[512], hdr[700];
	size_t k = 0, x = 0;

	for (const unsigned char *p = (const unsigned char *)name;
	    *p != '\0' && k + 1 < sizeof(ascii); p++)
		ascii[k++] = *p >= 0x20 && *p < 0x7f ? (char)*p : '_';
	ascii[k] = '\0';
	for (const unsigned char *p = (const unsigned char *)name;
	    *p != '\0' && x + 4 < sizeof(ext); p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL)
			ext[x++] = (char)*p;
		else
			x += (size_t)snprintf(ext + x, sizeof(ext) - x, "%%%02X",
			    *p);
	}
	ext[x] = '\0';
	snprintf(hdr, sizeof(hdr), "attachment; filename=\"%s\"; "
	    "filename*=UTF-8''%s", ascii, ext);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Disposition", hdr);
}

/* ------------------------------------------------------------------ */
/* Streams (raw message, mbox download)                                */

static void mbx_stream_more(struct evhttp_connection *evcon, void *arg);

static void
mbx_stream_free(struct mbx_stream *s)
{
	struct mbx_stream **pp;

	for (pp = &s->m->streams; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	msg_reader_close(&s->r);
	mbx_snap_unref(&s->snap);
	free(s);
}

static void
mbx_stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct mbx_stream *s = arg;

	(void)evcon;
	/* As with SSE: a peer gone mid-reply leaves the request to us. */
	if (evhttp_request_get_connection(s->req) == NULL)
		evhttp_send_reply_end(s->req);
	mbx_stream_free(s);
}

static void
mbx_stream_end(struct mbx_stream *s)
{
	evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	evhttp_send_reply_end(s->req);
	mbx_stream_free(s);
}

/* mboxrd: a line of ">*From " gets one more '>'; lines end in LF. */
static void
mbx_mbox_add(struct mbx_stream *s, struct evbuffer *b, const char *p,
    size_t n)
{
	static const char from[] = "From ";

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (s->last_cr) {
			s->last_cr = false;
			if (c != '\n')
				evbuffer_add(b, "\r", 1);
		}
		if (c == '\r') {
			s->last_cr = true;
			continue;
		}
		if (s->bol || s->head_len > 0) {
			/* matching ">*From " at the start of a line */
			size_t gt = 0;

			while (gt < s->head_len && s->line_head[gt] == '>')
				gt++;
			if ((c == '>' && gt == s->head_len &&
			    s->head_len < sizeof(s->line_head) - 6) ||
			    (s->head_len - gt < 5 && c == from[s->head_len - gt])) {
				s->line_head[s->head_len++] = c;
				s->bol = false;
				if (s->head_len - gt == 5) {
					evbuffer_add(b, ">", 1);
					evbuffer_add(b, s->line_head,
					    s->head_len);
					s->head_len = 0;
				}
				continue;
			}
			evbuffer_add(b, s->line_head, s->head_len);
			s->head_len = 0;
			s->bol = false;
		}
		evbuffer_add(b, &c, 1);
		if (c == '\n')
			s->bol = true;
	}
}

static void
mbx_mbox_end_message(struct mbx_stream *s, struct evbuffer *b)
{
	if (s->last_cr)
		evbuffer_add(b, "\r", 1);
	s->last_cr = false;
	evbuffer_add(b, s->line_head, s->head_len);
	s->head_len = 0;
	if (!s->bol)
		evbuffer_add(b, "\n", 1);
	evbuffer_add(b, "\n", 1);
	s->bol = true;
}

static void
mbx_stream_more(struct evhttp_connection *evcon, void *arg)
{
	struct mbx_stream *s = arg;
	struct evbuffer *b = evbuffer_new();
	char buf[65536];

	(void)evcon;
	if (b == NULL)
		fatal("out of memory");
	while (evbuffer_get_length(b) < MBX_CHUNK) {
		ssize_t got;

		if (s->r == NULL) {
			if (s->idx >= s->end)
				break;
			if (mailbox_msg_open(s->snap->mb, s->idx, &s->r) !=
			    STORE_OK) {
				/* gone meanwhile: the file has the others */
				s->idx++;
				continue;
			}
			if (s->kind == MBX_STREAM_MBOX) {
				char date[64];
				time_t now = time(NULL);
				struct tm tm;

				gmtime_r(&now, &tm);
				strftime(date, sizeof(date),
				    "%a %b %e %H:%M:%S %Y", &tm);
				evbuffer_add_printf(b, "From MAILER-DAEMON %s\n",
				    date);
				s->bol = true;
			}
		}
		got = mbx_reader_read(s->r, buf, sizeof(buf));
		if (got > 0) {
			if (s->kind == MBX_STREAM_MBOX)
				mbx_mbox_add(s, b, buf, (size_t)got);
			else
				evbuffer_add(b, buf, (size_t)got);
			continue;
		}
		if (got < 0)
			log_warn("admin: reading a message for download");
		if (s->kind == MBX_STREAM_MBOX)
			mbx_mbox_end_message(s, b);
		msg_reader_close(&s->r);
		s->idx++;
	}
	if (evbuffer_get_length(b) == 0) {
		evbuffer_free(b);
		mbx_stream_end(s);
		return;
	}
	evhttp_send_reply_chunk_with_cb(s->req, b, mbx_stream_more, s);
	evbuffer_free(b);
}

static void
mbx_stream_start(struct http_mailbox *m, struct evhttp_request *req,
    struct mbx_snap *snap, enum mbx_stream_kind kind, uint32_t first,
    uint32_t end, const char *type)
{
	struct mbx_stream *s = xcalloc(1, sizeof(*s));
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	s->m = m;
	s->req = req;
	s->evcon = evhttp_request_get_connection(req);
	s->snap = snap;
	snap->refs++;
	s->kind = kind;
	s->idx = first;
	s->end = end;
	s->next = m->streams;
	m->streams = s;
	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type", type);
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(s->evcon, mbx_stream_closed, s);
	mbx_stream_more(s->evcon, s);
}

/* ------------------------------------------------------------------ */
/* Request parsing                                                     */

struct mbx_call {
	struct http_mailbox *m;
	struct evhttp_request *req;
	struct http_login *login;
	enum evhttp_cmd_type method;
	char *user;			/* decoded path segments */
	char *uidl;
	char *tail;			/* "raw", "html", "parts", "download" */
	char *partno;
	char *location;			/* of user's mailbox */
	struct evkeyvalq query;
	bool have_query;
};

/* The decoded segment at *p (up to '/' or the end), or NULL if empty,
 * holding NUL, or too long. */
static char *
mbx_segment(const char **p)
{
	const char *s = *p, *e = strchr(s, '/');
	size_t n = e != NULL ? (size_t)(e - s) : strlen(s), dlen;
	char *raw, *dec;

	if (n == 0 || n > 1024)
		return NULL;
	raw = xmalloc(n + 1);
	memcpy(raw, s, n);
	raw[n] = '\0';
	dec = evhttp_uridecode(raw, 0, &dlen);
	free(raw);
	if (dec == NULL)
		return NULL;
	if (dlen != strlen(dec) || dlen == 0) {
		free(dec);
		return NULL;
	}
	*p = s + n + (e != NULL ? 1 : 0);
	if (e != NULL && **p == '\0') {
		free(dec);		/* trailing slash */
		return NULL;
	}
	return dec;
}

static const char *
mbx_query(struct mbx_call *c, const char *key)
{
	return c->have_query ? evhttp_find_header(&c->query, key) : NULL;
}

/* A date: unix seconds, or YYYY-MM-DD (UTC, the day's start). */
static bool
mbx_parse_date(const char *s, int64_t *out)
{
	uint64_t v;
	uint32_t y, mo, d;
	struct tm tm;

	if (parse_u64(s, strlen(s), &v) && v < (1ULL << 40)) {
		*out = (int64_t)v;
		return true;
	}
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    !parse_u32(s, 4, &y) || !parse_u32(s + 5, 2, &mo) ||
	    !parse_u32(s + 8, 2, &d) || y < 1970 || mo < 1 || mo > 12 ||
	    d < 1 || d > 31)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)mo - 1;
	tm.tm_mday = (int)d;
	*out = (int64_t)timegm(&tm);
	return true;
}

/* ASCII-case-insensitive substring (UTF-8 bytes compare as they are);
 * strpbrk() finds the candidates, so a search of 100k entries stays a
 * few milliseconds. */
static bool
mbx_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	char first[3];

	if (n == 0)
		return true;
	first[0] = (char)tolower((unsigned char)needle[0]);
	first[1] = (char)toupper((unsigned char)needle[0]);
	first[2] = '\0';
	for (const char *p = hay; (p = strpbrk(p, first)) != NULL; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

static uint32_t
mbx_find_uidl(const struct mbx_view *v, const char *uidl)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (strcmp(v->e[i].uidl, uidl) == 0)
			return i;
	return UINT32_MAX;
}

static json_t *
mbx_entry_json(const struct mbx_entry *e, const struct net_mailev *ev,
    size_t nev)
{
	struct mbx_overlay o;

	mbx_overlay_of(ev, nev, e->uidl, &o);
	return json_pack("{s:s, s:I, s:s, s:s, s:o, s:o}", "uidl", e->uidl,
	    "size", (json_int_t)e->size, "from", e->from != NULL ? e->from : "",
	    "subject", e->subject != NULL ? e->subject : "",
	    "date", e->date != 0 ? json_integer((json_int_t)e->date) :
	    json_null(), "state", mbx_overlay_json(&o));
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */

struct mbx_list_ctx {
	struct http_mailbox *m;
	json_t *a;
	unsigned n;
};

static bool
mbx_list_fn(const struct http_admin_user *u, void *arg)
{
	struct mbx_list_ctx *x = arg;
	char *loc = mbx_location(u), err[512];
	struct mailbox *mb;
	enum store_status st;
	json_t *o;

	if (++x->n > MBX_USERS_MAX)
		return false;
	o = json_pack("{s:s, s:s}", "user", u->name, "format",
	    u->format != NULL ? u->format : "auto");
	if (o == NULL) {
		free(loc);
		return true;
	}
	st = loc != NULL ? mailbox_open_view(loc, u->name, &mb, err,
	    sizeof(err)) : STORE_PERM;
	if (st == STORE_OK) {
		json_object_set_new(o, "count", json_integer(
		    (json_int_t)mailbox_count(mb)));
		json_object_set_new(o, "size", json_integer(
		    (json_int_t)mailbox_total_size(mb)));
		mailbox_close(&mb);
	} else {
		json_object_set_new(o, "count", json_null());
		json_object_set_new(o, "size", json_null());
		json_object_set_new(o, "error", json_string(st == STORE_IN_USE ?
		    "in use" : st == STORE_PERM ? "not usable" : "unreadable"));
	}
	json_array_append_new(x->a, o);
	free(loc);
	return true;
}

static void
mbx_route_mailboxes(struct mbx_call *c)
{
	struct mbx_list_ctx x = { .m = c->m, .a = json_array() };
	bool ok = c->m->h->src.users != NULL &&
	    c->m->h->src.users(c->m->h->src.arg, mbx_list_fn, &x);

	mbx_reply_json(c->req, 200, json_pack("{s:o, s:b}", "mailboxes", x.a,
	    "available", ok));
}

static void
mbx_route_list(struct mbx_call *c)
{
	struct http_mailbox *m = c->m;
	const char *q = mbx_query(c, "q"), *qf = mbx_query(c, "from");
	const char *qs = mbx_query(c, "subject"), *t;
	uint32_t offset = 0, limit = MBX_PAGE_DEFAULT, total = 0;
	int64_t since = 0, until = INT64_MAX;
	bool search, complete = true;
	enum store_status st;
	struct mbx_view *v;
	json_t *a, *o, *dels;
	size_t nev;

	if (((t = mbx_query(c, "offset")) != NULL &&
	    !parse_u32(t, strlen(t), &offset)) ||
	    ((t = mbx_query(c, "limit")) != NULL &&
	    (!parse_u32(t, strlen(t), &limit) || limit == 0 ||
	    limit > MBX_PAGE_MAX))) {
		http_reply_error(c->req, 400, "offset and limit must be numbers "
		    "(limit 1..500)");
		return;
	}
	if (((t = mbx_query(c, "since")) != NULL && !mbx_parse_date(t, &since)) ||
	    ((t = mbx_query(c, "until")) != NULL && !mbx_parse_date(t, &until))) {
		http_reply_error(c->req, 400, "since and until are unix times "
		    "or YYYY-MM-DD");
		return;
	}
	if ((q != NULL && strlen(q) > MBX_QUERY_MAX) ||
	    (qf != NULL && strlen(qf) > MBX_QUERY_MAX) ||
	    (qs != NULL && strlen(qs) > MBX_QUERY_MAX)) {
		http_reply_error(c->req, 400, "search term too long");
		return;
	}
	/* until=YYYY-MM-DD includes that day */
	if ((t = mbx_query(c, "until")) != NULL && strlen(t) == 10)
		until += 86399;
	search = (q != NULL && q[0] != '\0') || (qf != NULL && qf[0] != '\0') ||
	    (qs != NULL && qs[0] != '\0') || since > 0 || until != INT64_MAX;
	v = mbx_view_get(m, c->user, c->location, &st);
	if (v == NULL) {
		mbx_reply_store_error(c->req, st);
		return;
	}
	nev = net_mailev_copy(c->user, 0, m->evbuf, NET_MAILEV_MAX);
	a = json_array();
	if (search) {
		complete = mbx_fill(v, MBX_SEARCH_BUDGET_MS, UINT32_MAX);
		for (uint32_t k = v->n; k > 0; k--) {
			const struct mbx_entry *e = &v->e[k - 1];

			if (e->subject == NULL ||
			    (q != NULL && !mbx_contains(e->from, q) &&
			    !mbx_contains(e->subject, q)) ||
			    (qf != NULL && !mbx_contains(e->from, qf)) ||
			    (qs != NULL && !mbx_contains(e->subject, qs)) ||
			    e->date < since || e->date > until)
				continue;
			if (total >= offset && total - offset < limit)
				json_array_append_new(a,
				    mbx_entry_json(e, m->evbuf, nev));
			total++;
		}
	} else {
		total = v->n;
		for (uint32_t i = offset; i < v->n && i - offset < limit; i++) {
			uint32_t k = v->n - 1 - i;	/* newest first */

			mbx_parse_entry(v, k);
			json_array_append_new(a, mbx_entry_json(&v->e[k],
			    m->evbuf, nev));
		}
	}
	if (v->n_parsed < v->n)
		mbx_index_later(m);
	/* Messages removed at QUIT are gone from the store: the newest few
	 * are told apart, with what the cache knew of them. */
	dels = json_array();
	for (size_t i = nev; i > 0 && json_array_size(dels) < 20; i--) {
		const struct net_mailev *e = &m->evbuf[i - 1];
		const struct mbx_ghost *g = NULL;

		if (e->kind != NET_MAILEV_DELETED ||
		    mbx_find_uidl(v, e->uidl) != UINT32_MAX)
			continue;
		for (size_t j = 0; j < MBX_GHOSTS; j++)
			if (strcmp(m->ghosts[j].user, c->user) == 0 &&
			    strcmp(m->ghosts[j].uidl, e->uidl) == 0)
				g = &m->ghosts[j];
		json_array_append_new(dels, json_pack("{s:s, s:o, s:I, s:s, s:s}",
		    "uidl", e->uidl, "session", mbx_sid(e->session), "at",
		    (json_int_t)e->when, "from", g != NULL ? g->from : "",
		    "subject", g != NULL ? g->subject : ""));
	}
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:b, s:I, s:o}",
	    "user", c->user, "total", (json_int_t)total,
	    "count", (json_int_t)v->n, "offset", (json_int_t)offset,
	    "limit", (json_int_t)limit, "messages", a, "complete", complete,
	    "indexed", (json_int_t)v->n_parsed, "deleted", dels);
	mbx_reply_json(c->req, 200, o);
}

/* The view and index of the call's message, or NULL after a reply. */
static struct mbx_view *
mbx_message_of(struct mbx_call *c, uint32_t *idx_r)
{
	enum store_status st;
	struct mbx_view *v = mbx_view_get(c->m, c->user, c->location, &st);

	if (v == NULL) {
		mbx_reply_store_error(c->req, st);
		return NULL;
	}
	*idx_r = mbx_find_uidl(v, c->uidl);
	if (*idx_r == UINT32_MAX) {
		http_reply_error(c->req, 404, "no such message");
		return NULL;
	}
	return v;
}

/* The whole message for parsing, or false after a reply. */
static bool
mbx_message_bytes(struct mbx_call *c, struct mbx_view *v, uint32_t idx,
    char **buf_r, size_t *len_r)
{
	if (mbx_read(v->snap, idx, HTTP_MIME_MAX_MESSAGE, buf_r, len_r))
		return true;
	if (errno == EFBIG)
		http_reply_error(c->req, 413, "message too large to show; "
		    "download it raw");
	else
		http_reply_error(c->req, 404, "message gone");
	return false;
}

static void
mbx_route_message(struct mbx_call *c)
{
	struct mbx_view *v;
	uint32_t idx;
	char *buf;
	size_t len, nev;
	json_t *o;
	struct mbx_overlay ov;

	if ((v = mbx_message_of(c, &idx)) == NULL ||
	    !mbx_message_bytes(c, v, idx, &buf, &len))
		return;
	o = http_mime_message_json(buf, len);
	free(buf);
	if (o == NULL) {
		o = json_pack("{s:[], s:n, s:b, s:[]}", "headers", "text",
		    "html", false, "attachments");
		json_object_set_new(o, "unparsed", json_true());
	}
	nev = net_mailev_copy(c->user, 0, c->m->evbuf, NET_MAILEV_MAX);
	mbx_overlay_of(c->m->evbuf, nev, c->uidl, &ov);
	json_object_set_new(o, "uidl", json_string(c->uidl));
	json_object_set_new(o, "size", json_integer(
	    (json_int_t)v->e[idx].size));
	json_object_set_new(o, "state", mbx_overlay_json(&ov));
	mbx_reply_json(c->req, 200, o);
}

static void
mbx_route_raw(struct mbx_call *c)
{
	struct mbx_view *v;
	uint32_t idx;

	if ((v = mbx_message_of(c, &idx)) == NULL)
		return;
	/* text/plain, never message/rfc822: a browser shows it as text */
	mbx_stream_start(c->m, c->req, v->snap, MBX_STREAM_RAW, idx, idx + 1,
	    "text/plain; charset=utf-8");
}

static void
mbx_route_html(struct mbx_call *c)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);
	const char *remote = mbx_query(c, "remote");
	struct mbx_view *v;
	uint32_t idx;
	char *buf, *html, csp[512];
	size_t len, hlen;

	if ((v = mbx_message_of(c, &idx)) == NULL ||
	    !mbx_message_bytes(c, v, idx, &buf, &len))
		return;
	html = http_mime_html(buf, len, &hlen);
	free(buf);
	if (html == NULL) {
		http_reply_error(c->req, 404, "no HTML part");
		return;
	}
	/* Remote images only when the user asked (they tell the sender the
	 * mail was read, and from where). */
	snprintf(csp, sizeof(csp), MBX_MAIL_CSP,
	    remote != NULL && strcmp(remote, "1") == 0 ? " https: http:" : "");
	evhttp_remove_header(out, "Content-Security-Policy");
	evhttp_remove_header(out, "X-Frame-Options");
	evhttp_add_header(out, "Content-Security-Policy", csp);
	evhttp_add_header(out, "X-Frame-Options", "SAMEORIGIN");
	mbx_reply_bytes(c->req, "text/html; charset=utf-8", html, hlen);
	free(html);
}

static void
mbx_route_part(struct mbx_call *c)
{
	struct mbx_view *v;
	uint32_t idx, n;
	char *buf, *data, fn[256], type[128];
	size_t len, dlen;
	bool ok;

	if (!parse_u32(c->partno, strlen(c->partno), &n)) {
		http_reply_error(c->req, 400, "part number expected");
		return;
	}
	if ((v = mbx_message_of(c, &idx)) == NULL ||
	    !mbx_message_bytes(c, v, idx, &buf, &len))
		return;
	ok = http_mime_part(buf, len, n, &data, &dlen, fn, sizeof(fn), type,
	    sizeof(type));
	free(buf);
	if (!ok) {
		http_reply_error(c->req, 404, "no such part");
		return;
	}
	/* Always a download of opaque bytes: an attached page must never
	 * run as one of ours. */
	mbx_disposition(c->req, fn);
	evhttp_add_header(evhttp_request_get_output_headers(c->req),
	    "X-Posuto-Part-Type", type);
	mbx_reply_bytes(c->req, "application/octet-stream", data, dlen);
	free(data);
}

static void
mbx_changed(struct http_mailbox *m)
{
	http_sse_broadcast(m->h,
	    "event: changed\ndata: {\"what\":\"mailboxes\"}\n\n");
}

static void
mbx_route_delete(struct mbx_call *c)
{
	struct mailbox *mb;
	enum store_status st;
	uint32_t n, idx = UINT32_MAX, ndel = 0;
	uint8_t *bits;
	char err[512];

	/* The session lock: not while a POP3 session has the mailbox (its
	 * snapshot would then list a message we removed). */
	st = mailbox_open(c->location, c->user, &mb, err, sizeof(err));
	if (st != STORE_OK) {
		if (st != STORE_IN_USE)
			log_warnx("admin: delete in %s: %s", c->user, err);
		mbx_reply_store_error(c->req, st);
		return;
	}
	n = mailbox_count(mb);
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(mailbox_msg_uidl(mb, i), c->uidl) == 0)
			idx = i;
	if (idx == UINT32_MAX) {
		mailbox_close(&mb);
		http_reply_error(c->req, 404, "no such message");
		return;
	}
	bits = xcalloc(n / 8 + 1, 1);
	bits[idx / 8] |= (uint8_t)(1u << (idx % 8));
	st = mailbox_commit(mb, bits, &ndel);
	free(bits);
	mailbox_close(&mb);
	if (st != STORE_OK) {
		mbx_reply_store_error(c->req, st);
		return;
	}
	log_info("admin: deleted message %s of %s", c->uidl, c->user);
	mbx_changed(c->m);
	mbx_reply_json(c->req, 200, json_pack("{s:s, s:i}", "uidl", c->uidl,
	    "deleted", (int)ndel));
}

/* Looks like a message: a first line "Name: value" (a header field). */
static bool
mbx_looks_like_mail(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] > 0x20 && p[i] < 0x7f && p[i] != ':')
		i++;
	return i > 0 && i < len && p[i] == ':';
}

static void
mbx_route_upload(struct mbx_call *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	const char *ct = evhttp_find_header(
	    evhttp_request_get_input_headers(c->req), "Content-Type");
	size_t len = evbuffer_get_length(in);
	struct store_delivery *d;
	const unsigned char *p;
	enum store_status st;
	char err[512], id[256] = "";
	bool lf;

	if (ct == NULL || !(ascii_casepfx(ct, "message/rfc822") ||
	    ascii_casepfx(ct, "application/octet-stream"))) {
		http_reply_error(c->req, 415, "Content-Type must be "
		    "message/rfc822");
		return;
	}
	if (len > HTTP_UPLOAD_MAX) {
		http_reply_error(c->req, 413, "message too large");
		return;
	}
	p = evbuffer_pullup(in, -1);
	if (len == 0 || !mbx_looks_like_mail(p, len)) {
		http_reply_error(c->req, 400, "not a message (no header)");
		return;
	}
	lf = store_location_lf(c->location);
	st = store_deliver_begin(c->location, c->user, &d, err, sizeof(err));
	if (st != STORE_OK) {
		log_warnx("admin: upload to %s: %s", c->user, err);
		mbx_reply_store_error(c->req, st);
		return;
	}
	/* The store keeps line ends as given; an LF store (mbox) gets LF. */
	for (size_t i = 0, start = 0; st == STORE_OK && i <= len; i++) {
		if (i == len || (lf && p[i] == '\r' && i + 1 < len &&
		    p[i + 1] == '\n')) {
			if (i > start)
				st = store_deliver_write(d, p + start,
				    i - start);
			start = i + 1;
		}
	}
	if (st != STORE_OK) {
		store_deliver_abort(&d);
		mbx_reply_store_error(c->req, st);
		return;
	}
	st = store_deliver_commit(&d, id, sizeof(id));
	if (st != STORE_OK) {
		mbx_reply_store_error(c->req, st);
		return;
	}
	log_info("admin: uploaded a message of %zu bytes to %s", len, c->user);
	mbx_changed(c->m);
	mbx_reply_json(c->req, 201, json_pack("{s:s, s:I}", "user", c->user,
	    "size", (json_int_t)len));
}

static void
mbx_route_download(struct mbx_call *c)
{
	struct mbx_snap *snap;
	enum store_status st;
	char err[512], base[256], fn[300];

	st = mbx_snap_open(c->location, c->user, &snap, err, sizeof(err));
	if (st != STORE_OK) {
		mbx_reply_store_error(c->req, st);
		return;
	}
	http_mime_safe_filename(base, sizeof(base), c->user, "mailbox");
	snprintf(fn, sizeof(fn), "%s.mbox", base);
	mbx_disposition(c->req, fn);
	mbx_stream_start(c->m, c->req, snap, MBX_STREAM_MBOX, 0,
	    mailbox_count(snap->mb), "application/mbox");
	mbx_snap_unref(&snap);
}

/* ---- CSP reports */

static void
mbx_route_csp_report(struct mbx_call *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	const char *ct = evhttp_find_header(
	    evhttp_request_get_input_headers(c->req), "Content-Type");
	const char *from = mbx_query(c, "from");
	bool mail = from != NULL && strcmp(from, "mail") == 0;
	size_t len = evbuffer_get_length(in), n = 1;
	uint64_t *ctr = mail ? &c->m->csp_mail : &c->m->csp_admin;
	json_t *v, *r, *blocked, *dir;
	char b1[160], b2[80];

	if (ct == NULL || !(ascii_casepfx(ct, "application/csp-report") ||
	    ascii_casepfx(ct, "application/reports+json") ||
	    ascii_casepfx(ct, "application/json"))) {
		http_reply_error(c->req, 415, "Content-Type must be "
		    "application/csp-report or application/reports+json");
		return;
	}
	if (len > HTTP_MAX_BODY) {
		http_reply_error(c->req, 413, "report too large");
		return;
	}
	v = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
	if (v == NULL || (!json_is_object(v) && !json_is_array(v))) {
		json_decref(v);
		http_reply_error(c->req, 400, "report is not JSON");
		return;
	}
	/* report-uri: {"csp-report": {...}}; Reporting API: [{type, body}] */
	if (json_is_array(v)) {
		n = json_array_size(v);
		r = json_object_get(json_array_get(v, 0), "body");
		blocked = json_object_get(r, "blockedURL");
		dir = json_object_get(r, "effectiveDirective");
	} else {
		r = json_object_get(v, "csp-report");
		blocked = json_object_get(r, "blocked-uri");
		dir = json_object_get(r, "violated-directive");
	}
	if (n > 0 && (*ctr < MBX_CSP_LOGGED || *ctr % 100 == 0)) {
		const char *bs = json_is_string(blocked) ?
		    json_string_value(blocked) : "";
		const char *ds = json_is_string(dir) ? json_string_value(dir) :
		    "";

		log_warnx("admin: CSP violation on %s: %s blocked %s",
		    mail ? "a mail" : "the admin page",
		    log_sanitize(b2, sizeof(b2), ds, strlen(ds)),
		    log_sanitize(b1, sizeof(b1), bs, strlen(bs)));
	}
	*ctr += n;
	json_decref(v);
	evhttp_send_reply(c->req, 204, "No Content", NULL);
}

static void
mbx_route_csp_counts(struct mbx_call *c)
{
	mbx_reply_json(c->req, 200, json_pack("{s:I, s:I, s:I}",
	    "admin", (json_int_t)c->m->csp_admin,
	    "mail", (json_int_t)c->m->csp_mail,
	    "total", (json_int_t)(c->m->csp_admin + c->m->csp_mail)));
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

enum mbx_auth { MBX_LOGIN, MBX_CHANGES, MBX_PUBLIC };

static bool
mbx_reads(enum evhttp_cmd_type m)
{
	return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
}

/* Same rules as http_api.c: a login (cookie, or Basic for reads), and
 * the CSRF token for changes; false after replying. */
static bool
mbx_auth_ok(struct mbx_call *c, enum mbx_auth need)
{
	struct http_server *h = c->m->h;
	time_t now = time(NULL);
	bool tried = false;
	char peer[64];

	if (need == MBX_PUBLIC)
		return true;
	(void)http_peer(c->req, peer, sizeof(peer));
	c->login = http_auth_session(&h->auth, c->req, now);
	if (c->login == NULL && !(mbx_reads(c->method) &&
	    http_auth_basic(&h->auth, c->req, peer, now, &tried))) {
		if (tried)
			evhttp_add_header(
			    evhttp_request_get_output_headers(c->req),
			    "WWW-Authenticate",
			    "Basic realm=\"posuto\", charset=\"UTF-8\"");
		http_reply_error(c->req, 401, "login required");
		return false;
	}
	if (need == MBX_CHANGES && !http_auth_csrf_ok(c->login, c->req)) {
		http_reply_error(c->req, 403, "missing or wrong X-CSRF-Token");
		return false;
	}
	return true;
}

static void
mbx_call_free(struct mbx_call *c)
{
	free(c->user);
	free(c->uidl);
	free(c->tail);
	free(c->partno);
	free(c->location);
	if (c->have_query)
		evhttp_clear_headers(&c->query);
}

/* Picks the route for the parsed path; NULL: none (404). */
static void
mbx_route(struct mbx_call *c, const char *rest, bool is_csp, bool counts)
{
	static const struct {
		int shape;		/* 0 mailboxes, 1 messages, 2 message,
					 * 3 message/tail, 4 parts/n, 5 download,
					 * 6 csp-report, 7 csp-reports */
		const char *tail;
		enum evhttp_cmd_type method;
		enum mbx_auth auth;
		void (*fn)(struct mbx_call *c);
	} routes[] = {
		{ 0, NULL, EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_mailboxes },
		{ 1, NULL, EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_list },
		{ 1, NULL, EVHTTP_REQ_POST, MBX_CHANGES, mbx_route_upload },
		{ 2, NULL, EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_message },
		{ 2, NULL, EVHTTP_REQ_DELETE, MBX_CHANGES, mbx_route_delete },
		{ 3, "raw", EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_raw },
		{ 3, "html", EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_html },
		{ 4, "parts", EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_part },
		{ 5, NULL, EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_download },
		{ 6, NULL, EVHTTP_REQ_POST, MBX_PUBLIC, mbx_route_csp_report },
		{ 7, NULL, EVHTTP_REQ_GET, MBX_LOGIN, mbx_route_csp_counts },
	};
	const char *p = rest;
	int shape = -1;
	bool found = false;
	enum mbx_auth need = MBX_LOGIN;
	char allow[32] = "";

	if (is_csp) {
		shape = counts ? 7 : 6;
	} else if (*p == '\0') {
		shape = 0;
	} else if ((c->user = mbx_segment(&p)) != NULL) {
		char *what = *p != '\0' ? mbx_segment(&p) : NULL;

		if (what != NULL && strcmp(what, "download") == 0 && *p == '\0') {
			shape = 5;
		} else if (what != NULL && strcmp(what, "messages") == 0) {
			if (*p == '\0')
				shape = 1;
			else if ((c->uidl = mbx_segment(&p)) != NULL) {
				if (*p == '\0')
					shape = 2;
				else if ((c->tail = mbx_segment(&p)) != NULL) {
					if (*p == '\0')
						shape = 3;
					else if ((c->partno = mbx_segment(&p)) !=
					    NULL && *p == '\0')
						shape = 4;
				}
			}
		}
		free(what);
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (routes[i].shape != shape || (routes[i].tail != NULL &&
		    (c->tail == NULL || strcmp(routes[i].tail, c->tail) != 0)))
			continue;
		if (!found)
			need = routes[i].auth;
		found = true;
		if (routes[i].method == c->method || (c->method ==
		    EVHTTP_REQ_HEAD && routes[i].method == EVHTTP_REQ_GET)) {
			need = routes[i].auth;
			if (!mbx_auth_ok(c, need))
				return;
			if (shape >= 1 && shape <= 5) {
				c->location = mbx_user_location(c->m, c->user);
				if (c->location == NULL) {
					http_reply_error(c->req, 404,
					    "no such user or no mailbox");
					return;
				}
			}
			routes[i].fn(c);
			return;
		}
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
		    "%s%s", allow[0] != '\0' ? ", " : "",
		    routes[i].method == EVHTTP_REQ_GET ? "GET, HEAD" :
		    routes[i].method == EVHTTP_REQ_POST ? "POST" : "DELETE");
	}
	/* Without a login nothing, not even which routes exist, is told. */
	if (!mbx_auth_ok(c, MBX_LOGIN))
		return;
	if (!found) {
		http_reply_error(c->req, 404, "no such route");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow",
	    allow);
	http_reply_error(c->req, 405, "method not allowed");
}

bool
http_mailbox_dispatch(struct http_server *h, struct evhttp_request *req,
    const char *path)
{
	static const char pfx[] = "/api/v1/mailboxes";
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	bool csp = strcmp(path, "/api/v1/csp-report") == 0;
	bool counts = strcmp(path, "/api/v1/csp-reports") == 0;
	struct mbx_call c;

	if (h->mbx == NULL)
		return false;
	if (!csp && !counts && (strncmp(path, pfx, sizeof(pfx) - 1) != 0 ||
	    (path[sizeof(pfx) - 1] != '\0' && path[sizeof(pfx) - 1] != '/')))
		return false;
	memset(&c, 0, sizeof(c));
	c.m = h->mbx;
	c.req = req;
	c.method = evhttp_request_get_command(req);
	if (query != NULL) {
		if (evhttp_parse_query_str(query, &c.query) != 0) {
			http_reply_error(req, 400, "bad query string");
			evhttp_clear_headers(&c.query);
			return true;
		}
		c.have_query = true;
	}
	path += sizeof(pfx) - 1;
	if (*path == '/')
		path++;
	mbx_route(&c, csp || counts ? "" : path, csp || counts, counts);
	mbx_call_free(&c);
	return true;
}

/* ------------------------------------------------------------------ */
/* Live updates                                                        */

struct mbx_poll_ctx {
	uint64_t h;
	unsigned n;
};

static bool
mbx_poll_fn(const struct http_admin_user *u, void *arg)
{
	struct mbx_poll_ctx *x = arg;
	char *loc;
	time_t newest;

	if (++x->n > MBX_USERS_MAX || (loc = mbx_location(u)) == NULL)
		return x->n <= MBX_USERS_MAX;
	x->h = x->h * 31 + mbx_stamp(loc, &newest);
	free(loc);
	return true;
}

static void
mbx_on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct http_mailbox *m = arg;
	struct mbx_poll_ctx x = { .h = 0 };
	uint64_t seq;
	bool changed = false;

	(void)fd;
	(void)what;
	if (m->h->n_sse == 0)
		return;
	seq = net_mailev_seq();
	if (seq != m->seen_seq) {
		m->seen_seq = seq;
		changed = true;
	}
	if (m->h->src.users != NULL)
		(void)m->h->src.users(m->h->src.arg, mbx_poll_fn, &x);
	if (x.h != m->seen_stamps) {
		m->seen_stamps = x.h;
		changed = true;
	}
	if (changed)
		mbx_changed(m);
}

struct http_mailbox *
http_mailbox_new(struct http_server *h)
{
	struct http_mailbox *m = xcalloc(1, sizeof(*m));
	struct timeval tv = { .tv_usec = MBX_POLL_MS * 1000 };

	http_mime_init();
	m->h = h;
	m->evbuf = xcalloc(NET_MAILEV_MAX, sizeof(*m->evbuf));
	m->seen_seq = net_mailev_seq();
	m->poll = event_new(h->base, -1, EV_PERSIST, mbx_on_poll, m);
	m->indexer = evtimer_new(h->base, mbx_on_index, m);
	if (m->poll == NULL || m->indexer == NULL)
		fatal("out of memory");
	event_add(m->poll, &tv);
	return m;
}

/* After evhttp_free(): connections are gone, and their close callbacks
 * have freed their streams. */
void
http_mailbox_free(struct http_mailbox **mp)
{
	struct http_mailbox *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	while (m->streams != NULL)
		mbx_stream_free(m->streams);
	for (size_t i = 0; i < MBX_VIEWS; i++)
		mbx_view_clear(&m->views[i]);
	if (m->poll != NULL)
		event_free(m->poll);
	if (m->indexer != NULL)
		event_free(m->indexer);
	free(m->evbuf);
	free(m);
	http_mime_shutdown();
}
