/*
 * store_compat.c - Maildir UIDLs and sizes another POP3 server left
 * (Dovecot's dovecot-uidlist, Courier's courierpop3dsizelist), so that
 * clients that keep mail on the server download nothing again after the
 * switch.  posuto only reads those files, never writes them.
 *
 * Which source a mailbox uses is decided once and recorded in its
 * ".posuto-uidl" (posuto's own file: "posuto-uidl 2 <source> <format>"):
 * with UidlCompat "auto", a Maildir holding the old server's list and no
 * posuto index yet (posuto never served it) takes that server's UIDLs; one
 * posuto served before keeps posuto's own.  A message the old server
 * listed gets its UIDL (Dovecot: the P field pop3_save_uidl saved, else
 * UidlFormat over its uid, uidvalidity, file name, GUID; Courier:
 * "UID<n>-<uidv>"); one it did not list, i.e. mail that came later, gets
 * posuto's own.  Every UIDL served is then pinned in the index
 * (STORE_INDEX_F_UIDL_ONLY entries where sizes are not known), so a
 * message posuto first served with its own UIDL keeps it even if the old
 * server, run again, numbers it later.  A changed UidlFormat is a new
 * decision: the pinned UIDLs are computed again.
 *
 * Cost: one small read (the record) per cold open of a Maildir that has
 * one; with a source, a read and parse of the old server's list (about
 * 60 bytes a message) and a binary search per message not pinned yet.
 * Warm opens (store_cache) skip it all; Maildirs without another
 * server's files pay one failed openat() and two fstatat()s.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"
#include "store/uidl_compat.h"

/* Larger lists are not read (a damaged or hostile file). */
#define STORE_COMPAT_MAX_LIST	(256u * 1024 * 1024)
/* Replaced UIDLs logged one by one when a mailbox is taken over. */
#define STORE_COMPAT_LOG_MAX	5

struct store_compat {
	enum uidl_compat_source source;
	char fmt[128];
	uint32_t uidvalidity;	/* of the old server's list */
	bool have_list;
	bool adopted;		/* decided in this open: log replacements */
	bool dry;		/* migrate check: pin nothing */
	bool repin;		/* the index's UIDLs were made otherwise */
	const char *list_file;	/* the file the list came from */
	uint64_t tpops_since;	/* tpops: taken over then (name times) */
	char *buf;		/* the list file */
	struct uidl_compat_list list;
	uint8_t *status;	/* per message (enum store_compat_status) */
	uint32_t *old_off;	/* the old server's UIDL in mb->pool, 0 = none */
	uint32_t n;
	uint32_t kept;
};

/* --- configuration --------------------------------------------------- */

struct store_compat_user {
	char *name;
	enum uidl_compat_source source;
	char *fmt;
};

static pthread_mutex_t compat_mu = PTHREAD_MUTEX_INITIALIZER;
static enum uidl_compat_source compat_source = UIDL_COMPAT_AUTO;
static char *compat_fmt;
static struct store_compat_user *compat_users;
static size_t compat_n_users;
/* posuto migrate check: one source for every mailbox, nothing recorded */
static bool compat_forced;
static enum uidl_compat_source compat_forced_source;
static char *compat_forced_fmt;

void
store_uidl_configure(const struct posuto_config *cfg)
{
	struct store_compat_user *users = NULL;
	size_t n = 0;
	enum uidl_compat_source src = UIDL_COMPAT_AUTO;

	if (cfg->uidl_compat != NULL)
		(void)uidl_compat_source_parse(cfg->uidl_compat, &src);
	for (size_t i = 0; i < cfg->n_users; i++) {
		const struct user_cfg *u = &cfg->users[i];

		if (u->uidl_compat == NULL && u->uidl_format == NULL)
			continue;
		users = xreallocarray(users, n + 1, sizeof(*users));
		users[n].name = xstrdup(u->name);
		users[n].source = src;
		if (u->uidl_compat != NULL)
			(void)uidl_compat_source_parse(u->uidl_compat,
			    &users[n].source);
		users[n].fmt = u->uidl_format != NULL ?
		    xstrdup(u->uidl_format) : NULL;
		n++;
	}
	pthread_mutex_lock(&compat_mu);
	for (size_t i = 0; i < compat_n_users; i++) {
		free(compat_users[i].name);
		free(compat_users[i].fmt);
	}
	free(compat_users);
	free(compat_fmt);
	compat_users = users;
	compat_n_users = n;
	compat_source = src;
	compat_fmt = cfg->uidl_format != NULL ? xstrdup(cfg->uidl_format) :
	    NULL;
	pthread_mutex_unlock(&compat_mu);
}

void
store_uidl_force(const char *source, const char *fmt)
{
	pthread_mutex_lock(&compat_mu);
	free(compat_forced_fmt);
	compat_forced_fmt = NULL;
	compat_forced = source != NULL &&
	    uidl_compat_source_parse(source, &compat_forced_source);
	if (compat_forced && fmt != NULL)
		compat_forced_fmt = xstrdup(fmt);
	pthread_mutex_unlock(&compat_mu);
}

/* The settings for user: source, format, and whether they are forced. */
static bool
store_compat_settings(const char *user, enum uidl_compat_source *src_r,
    char *fmt, size_t fmtsz)
{
	const char *f = NULL;
	bool forced;

	pthread_mutex_lock(&compat_mu);
	forced = compat_forced;
	*src_r = compat_source;
	f = compat_fmt;
	for (size_t i = 0; user != NULL && i < compat_n_users; i++)
		if (strcmp(compat_users[i].name, user) == 0) {
			*src_r = compat_users[i].source;
			if (compat_users[i].fmt != NULL)
				f = compat_users[i].fmt;
			break;
		}
	if (forced) {
		*src_r = compat_forced_source;
		if (compat_forced_fmt != NULL)
			f = compat_forced_fmt;
	}
	(void)snprintf(fmt, fmtsz, "%s", f != NULL ? f :
	    UIDL_COMPAT_DEFAULT_FORMAT);
	pthread_mutex_unlock(&compat_mu);
	return forced;
}

/* --- the record -------------------------------------------------------- */

/* Small whole-file read through the mailbox root; NULL if absent. */
static char *
store_compat_slurp(int dirfd, const char *name, size_t max, size_t *len_r,
    bool *exists_r)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd;

	*exists_r = false;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max) {
		close(fd);
		return NULL;
	}
	*exists_r = true;
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*len_r = got;
	return buf;
}

/* ".posuto-uidl": "posuto-uidl 2 <source> <format>\n". */
static bool
store_compat_state_read(int dirfd, enum uidl_compat_source *src_r,
    char *fmt, size_t fmtsz)
{
	char *buf, *f[4];
	size_t len, n = 0;
	bool exists, ok = false;

	buf = store_compat_slurp(dirfd, STORE_COMPAT_STATE, 4096, &len,
	    &exists);
	if (buf == NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == ' ' || buf[i] == '\n') {
			buf[i] = '\0';
			continue;
		}
		if ((i == 0 || buf[i - 1] == '\0') && n++ < 4)
			f[n - 1] = buf + i;
	}
	if (n == 4 && strcmp(f[0], "posuto-uidl") == 0 &&
	    strcmp(f[1], "2") == 0 &&
	    uidl_compat_source_parse(f[2], src_r) &&
	    *src_r != UIDL_COMPAT_AUTO && strlen(f[3]) < fmtsz) {
		memcpy(fmt, f[3], strlen(f[3]) + 1);
		ok = true;
	}
	free(buf);
	return ok;
}

static void
store_compat_state_write(int dirfd, const char *path,
    enum uidl_compat_source src, const char *fmt)
{
	char line[200];
	int n, fd;

	n = snprintf(line, sizeof(line), "posuto-uidl 2 %s %s\n",
	    uidl_compat_source_name(src), fmt);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	(void)unlinkat(dirfd, STORE_COMPAT_STATE ".tmp", 0);
	fd = openat(dirfd, STORE_COMPAT_STATE ".tmp",
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, line, (size_t)n) != n || fsync(fd) == -1 ||
	    renameat(dirfd, STORE_COMPAT_STATE ".tmp", dirfd,
	    STORE_COMPAT_STATE) == -1) {
		/* not fatal: the same decision is made again next time */
		log_warn("store: %s: cannot record the UIDL source in %s",
		    path, STORE_COMPAT_STATE);
		if (fd != -1)
			(void)unlinkat(dirfd, STORE_COMPAT_STATE ".tmp", 0);
	} else {
		(void)fsync(dirfd);
	}
	if (fd != -1)
		close(fd);
}

static bool
store_compat_load_list(int dirfd, struct store_compat *c)
{
	const char *name = c->source == UIDL_COMPAT_DOVECOT ?
	    UIDL_COMPAT_DOVECOT_FILE : c->source == UIDL_COMPAT_TPOPS ?
	    UIDL_COMPAT_TPOPS_FILE : UIDL_COMPAT_COURIER_FILE;
	size_t len = 0;
	bool exists, ok;

	c->buf = store_compat_slurp(dirfd, name, STORE_COMPAT_MAX_LIST, &len,
	    &exists);
	if (c->buf == NULL && c->source == UIDL_COMPAT_TPOPS) {
		/* TPOPS 0.7's name (0.8 went back to the one above) */
		name = UIDL_COMPAT_TPOPS_FILE_07;
		c->buf = store_compat_slurp(dirfd, name,
		    STORE_COMPAT_MAX_LIST, &len, &exists);
	}
	if (c->buf == NULL)
		return false;
	c->list_file = name;
	ok = c->source == UIDL_COMPAT_DOVECOT ?
	    uidl_compat_dovecot_parse(c->buf, len, &c->list) :
	    c->source == UIDL_COMPAT_TPOPS ?
	    uidl_compat_tpops_parse(c->buf, len, &c->list) :
	    uidl_compat_courier_parse(c->buf, len, &c->list);
	if (!ok) {
		free(c->buf);
		c->buf = NULL;
	}
	return ok;
}

static bool
store_compat_has(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

static const char *
store_compat_file(enum uidl_compat_source src)
{
	return src == UIDL_COMPAT_DOVECOT ? UIDL_COMPAT_DOVECOT_FILE :
	    src == UIDL_COMPAT_TPOPS ? UIDL_COMPAT_TPOPS_FILE :
	    UIDL_COMPAT_COURIER_FILE;
}

/*
 * TPOPS (0.6, plugin/mailbox-maildir.rb) listed only the files of cur/
 * and new/ whose names match /^(\d+)\./ and served as UIDL the name up
 * to ':' (or its tpops_uidl entry).
 */
static bool
store_compat_tpops_listed(const char *name, size_t len)
{
	size_t d = 0;

	while (d < len && name[d] >= '0' && name[d] <= '9')
		d++;
	return d > 0 && d < len && name[d] == '.';
}

/*
 * The size TPOPS reported with its defaults (maildir-extended and
 * maildir-use-filesize "yes"): the first ",S=<digits>" anywhere in the
 * file name, else the file's size on disk (LF line ends: not the wire
 * size, as TPOPS's README warns).  A name with ,W= (posuto's delivery)
 * keeps that.  False if the file cannot be stat()ed (sized as usual).
 */
static bool
store_compat_tpops_size(const struct store_fs *mb, const struct store_msg *m,
    uint64_t *size_r)
{
	const char *name = store_pool_str(mb, m->name_off);
	const char *s = strstr(name, ",S=");
	struct stat st;
	int fd = mb->dirfd[m->dir];

	while (s != NULL && !(s[3] >= '0' && s[3] <= '9'))
		s = strstr(s + 1, ",S=");	/* as the regexp searches on */
	if (s != NULL) {
		size_t d = 3;

		while (s[d] >= '0' && s[d] <= '9')
			d++;
		if (parse_u64(s + 3, d - 3, size_r))
			return true;
	}
	if (fd == -1 || fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return false;
	*size_r = (uint64_t)st.st_size;
	return true;
}

void
store_compat_maildir_scan(struct store_fs *mb)
{
	struct store_compat *c;
	enum uidl_compat_source want, rec_src = UIDL_COMPAT_NONE;
	char rec_fmt[128];
	int root = mb->dirfd[STORE_DIR_ROOT];
	bool forced, have_rec;

	if (root == -1)
		return;
	c = xcalloc(1, sizeof(*c));
	forced = store_compat_settings(mb->user, &want, c->fmt, sizeof(c->fmt));
	if (want == UIDL_COMPAT_NONE || want == UIDL_COMPAT_UW ||
	    want == UIDL_COMPAT_QPOPPER) {
		free(c);
		return;
	}
	have_rec = store_compat_state_read(root, &rec_src, rec_fmt,
	    sizeof(rec_fmt));
	c->dry = forced;
	c->repin = forced;
	if (want == UIDL_COMPAT_AUTO && have_rec) {
		c->source = rec_src;	/* decided before */
	} else if (want == UIDL_COMPAT_AUTO) {
		if (store_compat_has(root, UIDL_COMPAT_DOVECOT_FILE))
			c->source = UIDL_COMPAT_DOVECOT;
		else if (store_compat_has(root, UIDL_COMPAT_COURIER_FILE))
			c->source = UIDL_COMPAT_COURIER;
		else if (store_compat_has(root, UIDL_COMPAT_TPOPS_FILE) ||
		    store_compat_has(root, UIDL_COMPAT_TPOPS_FILE_07) ||
		    store_compat_has(root, UIDL_COMPAT_TPOPS_LOCK))
			c->source = UIDL_COMPAT_TPOPS;
		else {
			free(c);	/* nothing to take over */
			return;
		}
		/* posuto served it before (it has posuto's index): what
		 * clients know now are posuto's UIDLs */
		if (store_compat_has(root, STORE_INDEX_NAME))
			c->source = UIDL_COMPAT_NONE;
	} else {
		c->source = want;
	}
	if (c->source != UIDL_COMPAT_NONE &&
	    store_compat_load_list(root, c)) {
		c->have_list = true;
		c->uidvalidity = c->list.uidvalidity;
	}
	if (c->source == UIDL_COMPAT_TPOPS) {
		/* TPOPS has no format; its record's format field is the
		 * time posuto took over ("T0": only checked so far), so
		 * that TPOPS's sizes go to the mail TPOPS could have
		 * listed, not to later mail */
		uint64_t t = 0;

		if (have_rec && rec_src == UIDL_COMPAT_TPOPS &&
		    rec_fmt[0] == 'T')
			(void)parse_u64(rec_fmt + 1, strlen(rec_fmt + 1), &t);
		if (t == 0 && !forced)
			have_rec = false;	/* the takeover is now */
		c->tpops_since = t != 0 ? t : (uint64_t)time(NULL);
		(void)snprintf(c->fmt, sizeof(c->fmt), "T%llu", forced &&
		    t == 0 ? 0ULL : (unsigned long long)c->tpops_since);
	}
	/* record a new decision; migrate check records the source it
	 * checked only where none was recorded and that server's list is
	 * there (so the index it leaves does not read as "posuto's") */
	if ((!forced && (!have_rec || rec_src != c->source ||
	    (c->source == UIDL_COMPAT_DOVECOT && strcmp(rec_fmt, c->fmt) != 0))) ||
	    (forced && !have_rec && (c->have_list ||
	    c->source == UIDL_COMPAT_TPOPS))) {
		store_compat_state_write(root, mb->path, c->source, c->fmt);
		c->adopted = !forced;
		c->repin = true;
		if (c->adopted && c->source == UIDL_COMPAT_TPOPS)
			log_info("store: %s: serving the UIDLs of tpops (%s: "
			    "%s, %u entries; TPOPS's sizes for mail named "
			    "before %llu)", mb->path, c->have_list ?
			    c->list_file : UIDL_COMPAT_TPOPS_FILE,
			    c->have_list ? "read" : "none: the base names",
			    (unsigned)c->list.n,
			    (unsigned long long)c->tpops_since);
		else if (c->adopted && c->source != UIDL_COMPAT_NONE)
			log_info("store: %s: serving the UIDLs of %s (%s: %s, "
			    "%u entries, uidvalidity %u, UidlFormat %s)",
			    mb->path, uidl_compat_source_name(c->source),
			    store_compat_file(c->source), c->have_list ?
			    "read" : "missing or unusable",
			    (unsigned)c->list.n, (unsigned)c->uidvalidity,
			    c->fmt);
	}
	if (c->source == UIDL_COMPAT_NONE) {
		free(c->buf);
		uidl_compat_list_free(&c->list);
		free(c);
		return;
	}
	mb->compat = c;
	if (c->source == UIDL_COMPAT_TPOPS) {
		/* TPOPS's sizes come from the names and files, not a list */
		for (uint32_t i = 0; i < mb->count; i++) {
			struct store_msg *m = &mb->msgs[i];
			uint64_t size;

			if ((m->flags & STORE_MSG_W_HINT) ||
			    m->order > c->tpops_since ||
			    !store_compat_tpops_listed(store_pool_str(mb,
			    m->name_off), m->key_len) ||
			    !store_compat_tpops_size(mb, m, &size))
				continue;
			m->wire_size = size;
			m->flags |= STORE_MSG_W_HINT;
		}
		return;
	}
	if (!c->have_list)
		return;
	/* the sizes the old server reported, for messages not sized yet */
	for (uint32_t i = 0; i < mb->count; i++) {
		struct store_msg *m = &mb->msgs[i];
		const struct uidl_compat_rec *r;

		if (m->flags & STORE_MSG_W_HINT)
			continue;
		r = uidl_compat_find(&c->list, store_pool_str(mb, m->name_off),
		    m->key_len);
		if (r != NULL && r->has_vsize) {
			m->wire_size = r->vsize;
			m->flags |= STORE_MSG_W_HINT;
		}
	}
}

bool
store_compat_source_for(const char *user, int *src_r)
{
	enum uidl_compat_source s;
	char fmt[128];
	bool forced = store_compat_settings(user, &s, fmt, sizeof(fmt));

	*src_r = (int)s;
	return forced;
}

bool
store_compat_pins(const struct store_fs *mb)
{
	return (mb->compat != NULL && !mb->compat->dry) || mb->compat_pinned;
}

enum store_compat_status {
	STORE_COMPAT_OWN = 0,	/* no old UIDL: new since, or unknown */
	STORE_COMPAT_KEPT,	/* the old server's UIDL */
	STORE_COMPAT_INVALID,	/* the old UIDL is not RFC 1939-clean */
	STORE_COMPAT_DUP,	/* the old UIDL repeats another message's */
	STORE_COMPAT_NOFORMAT,	/* the format cannot be expanded for it */
	STORE_COMPAT_NOLIST,	/* the old server's list is missing/unusable */
};

/* The old server's UIDL of message m into out; 0 if none (*why_r). */
static size_t
store_compat_old(const struct store_fs *mb, const struct store_compat *c,
    const struct store_msg *m, char *out, size_t outsz, uint8_t *why_r)
{
	const char *key = store_pool_str(mb, m->name_off);
	const struct uidl_compat_rec *r;
	struct uidl_compat_vars v;

	if (c->source == UIDL_COMPAT_TPOPS) {
		/* @uidl_conv[base] || base; the map without the file is not
		 * an error: TPOPS then served every base name */
		const char *s = key;
		size_t n = m->key_len;

		*why_r = STORE_COMPAT_OWN;
		if (!store_compat_tpops_listed(key, m->key_len))
			return 0;	/* TPOPS never listed it */
		r = c->have_list ? uidl_compat_find(&c->list, key,
		    m->key_len) : NULL;
		if (r != NULL && r->has_pop3) {
			s = r->pop3;
			n = r->pop3_len;
			if (n == 0) {
				/* TPOPS sent an empty UIDL */
				*why_r = STORE_COMPAT_INVALID;
				return 0;
			}
		}
		if (n >= outsz)
			n = outsz - 1;
		memcpy(out, s, n);
		out[n] = '\0';
		return n;
	}
	if (!c->have_list) {
		*why_r = STORE_COMPAT_NOLIST;
		return 0;
	}
	r = uidl_compat_find(&c->list, key, m->key_len);
	*why_r = STORE_COMPAT_OWN;
	if (r == NULL)
		return 0;
	if (c->source == UIDL_COMPAT_COURIER)
		return uidl_compat_courier_uidl(r, out, outsz);
	if (r->has_pop3) {
		/* pop3_save_uidl: what Dovecot served; empty = file name */
		const char *s = r->pop3_len > 0 ? r->pop3 : key;
		size_t n = r->pop3_len > 0 ? r->pop3_len : m->key_len;

		if (n >= outsz)
			n = outsz - 1;
		memcpy(out, s, n);
		out[n] = '\0';
		return n;
	}
	memset(&v, 0, sizeof(v));
	v.uidvalidity = c->uidvalidity;
	v.uid = r->uid;
	v.filename = key;
	v.filename_len = m->key_len;
	v.guid = r->guid;
	v.guid_len = r->guid_len;
	{
		size_t n = uidl_compat_format(c->fmt, &v, out, outsz);

		if (n == 0)
			*why_r = STORE_COMPAT_NOFORMAT;
		return n;
	}
}

static int
store_compat_uidl_cmp(const void *a, const void *b, void *arg)
{
	const struct store_fs *mb = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(store_pool_str(mb, mb->msgs[x].uidl_off),
	    store_pool_str(mb, mb->msgs[y].uidl_off));

	if (c != 0)
		return c;
	return x < y ? -1 : x > y;
}

/* posuto's own UIDL of message i (store_maildir.c's rule). */
static void
store_compat_own(struct store_fs *mb, uint32_t i)
{
	struct store_msg *m = &mb->msgs[i];
	const char *name = store_pool_str(mb, m->name_off);
	char h[40];

	if (store_uidl_valid(name, m->key_len)) {
		m->uidl_off = name[m->key_len] == '\0' ? m->name_off :
		    store_pool_add(mb, name, m->key_len);
	} else {
		store_hash_uidl(name, m->key_len, 'H', h);
		m->uidl_off = store_pool_add(mb, h, strlen(h));
	}
}

/* --- the old server's order ------------------------------------------- */

struct store_compat_ord {
	uint64_t k1;		/* dovecot: uid; tpops: the leading number */
	const char *name;	/* tpops: then the file name, bytewise */
	uint32_t idx;		/* then posuto's (file) order */
	bool later;		/* not listed by the old server: after */
};

static int
store_compat_ord_cmp(const void *a, const void *b)
{
	const struct store_compat_ord *x = a, *y = b;
	int c;

	if (x->later != y->later)
		return x->later ? 1 : -1;
	if (!x->later) {
		if (x->k1 != y->k1)
			return x->k1 < y->k1 ? -1 : 1;
		if (x->name != NULL && (c = strcmp(x->name, y->name)) != 0)
			return c;
	}
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Messages in the order the old server numbered them, so that message n
 * is what it was: Dovecot's by UID (dovecot-uidlist), TPOPS's by the
 * number its names start with, then the whole name (mailbox-maildir.rb:
 * mtime <=> mtime, then basename <=> basename).  Mail it never listed
 * comes after, in posuto's order.  Courier's is posuto's already (file
 * names).  The index is written in key order whatever the order here
 * (store_index.c).
 */
static void
store_compat_order(struct store_fs *mb, struct store_compat *c)
{
	struct store_compat_ord *o;
	struct store_msg *msgs;
	uint8_t *st;
	uint32_t *old, i;
	bool moved = false;

	if (mb->count < 2 || (c->source != UIDL_COMPAT_TPOPS &&
	    (c->source != UIDL_COMPAT_DOVECOT || !c->have_list)))
		return;
	o = xcalloc(mb->count, sizeof(*o));
	for (i = 0; i < mb->count; i++) {
		const struct store_msg *m = &mb->msgs[i];
		const char *name = store_pool_str(mb, m->name_off);

		o[i].idx = i;
		if (c->source == UIDL_COMPAT_TPOPS) {
			size_t d = 0;

			o[i].later = !store_compat_tpops_listed(name,
			    m->key_len);
			while (name[d] >= '0' && name[d] <= '9')
				d++;
			if (!o[i].later && !parse_u64(name, d, &o[i].k1))
				o[i].k1 = UINT64_MAX;	/* Ruby's bignum */
			o[i].name = name;
		} else {
			const struct uidl_compat_rec *r =
			    uidl_compat_find(&c->list, name, m->key_len);

			o[i].later = r == NULL;
			o[i].k1 = r != NULL ? r->uid : 0;
		}
	}
	qsort(o, mb->count, sizeof(*o), store_compat_ord_cmp);
	for (i = 0; i < mb->count && !moved; i++)
		moved = o[i].idx != i;
	if (!moved) {
		free(o);
		return;
	}
	msgs = xreallocarray(NULL, mb->cap, sizeof(*msgs));
	st = xcalloc(mb->count, sizeof(*st));
	old = xcalloc(mb->count, sizeof(*old));
	for (i = 0; i < mb->count; i++) {
		msgs[i] = mb->msgs[o[i].idx];
		st[i] = c->status[o[i].idx];
		old[i] = c->old_off[o[i].idx];
	}
	free(mb->msgs);
	mb->msgs = msgs;
	free(c->status);
	c->status = st;
	free(c->old_off);
	c->old_off = old;
	free(o);
}

void
store_compat_maildir_uidls(struct store_fs *mb)
{
	struct store_compat *c = mb->compat;
	uint32_t i, *ord, logged = 0, replaced = 0;

	if (c == NULL) {
		for (i = 0; i < mb->count; i++)
			store_compat_own(mb, i);
		return;
	}
	c->n = mb->count;
	c->kept = 0;
	free(c->status);
	free(c->old_off);
	c->status = xcalloc(mb->count ? mb->count : 1, sizeof(*c->status));
	c->old_off = xcalloc(mb->count ? mb->count : 1, sizeof(*c->old_off));
	for (i = 0; i < mb->count; i++) {
		char u[UIDL_COMPAT_MAX];
		size_t n;

		if (mb->msgs[i].uidl_off != 0 && !c->repin) {
			/* pinned by an earlier open: it stays */
			const char *name = store_pool_str(mb,
			    mb->msgs[i].name_off);
			const char *p = store_pool_str(mb,
			    mb->msgs[i].uidl_off);

			c->status[i] = strlen(p) == mb->msgs[i].key_len &&
			    memcmp(p, name, mb->msgs[i].key_len) == 0 &&
			    (c->source != UIDL_COMPAT_TPOPS ||
			    !store_compat_tpops_listed(name,
			    mb->msgs[i].key_len)) ?
			    STORE_COMPAT_OWN : STORE_COMPAT_KEPT;
			continue;
		}
		mb->msgs[i].uidl_off = 0;
		if (!c->dry)
			mb->index_dirty = true;	/* pin it */
		n = store_compat_old(mb, c, &mb->msgs[i], u, sizeof(u),
		    &c->status[i]);
		if (n == 0) {
			store_compat_own(mb, i);
			continue;
		}
		c->old_off[i] = store_pool_add(mb, u, n);
		if (!store_uidl_valid(u, n)) {
			c->status[i] = STORE_COMPAT_INVALID;
			store_compat_own(mb, i);
			continue;
		}
		mb->msgs[i].uidl_off = c->old_off[i];
		c->status[i] = STORE_COMPAT_KEPT;
	}
	/* unique in the mailbox: an old UIDL that repeats one already taken
	 * (by another old one or by posuto's own) gives way */
	ord = xcalloc(mb->count ? mb->count : 1, sizeof(*ord));
	for (i = 0; i < mb->count; i++)
		ord[i] = i;
	qsort_r(ord, mb->count, sizeof(*ord), store_compat_uidl_cmp, mb);
	for (i = 1; i < mb->count; i++) {
		uint32_t a = ord[i - 1], b = ord[i];

		if (strcmp(store_pool_str(mb, mb->msgs[a].uidl_off),
		    store_pool_str(mb, mb->msgs[b].uidl_off)) != 0)
			continue;
		/* replace the compat one; of two compat ones, the later */
		if (c->status[b] != STORE_COMPAT_KEPT)
			b = a;
		if (c->status[b] == STORE_COMPAT_KEPT) {
			c->status[b] = STORE_COMPAT_DUP;
			store_compat_own(mb, b);
		}
	}
	free(ord);
	for (i = 0; i < mb->count; i++) {
		if (c->status[i] == STORE_COMPAT_KEPT)
			c->kept++;
		if (c->status[i] != STORE_COMPAT_INVALID &&
		    c->status[i] != STORE_COMPAT_DUP)
			continue;
		replaced++;
		/* logged once: when the mailbox is taken over */
		if (c->adopted && logged++ < STORE_COMPAT_LOG_MAX)
			log_warn("store: %s: %s UIDL \"%.80s\" of %s is %s; "
			    "serving \"%s\" instead", mb->path,
			    uidl_compat_source_name(c->source),
			    store_pool_str(mb, c->old_off[i]),
			    store_pool_str(mb, mb->msgs[i].name_off),
			    c->status[i] == STORE_COMPAT_DUP ? "a duplicate" :
			    "not a valid RFC 1939 unique-id",
			    store_pool_str(mb, mb->msgs[i].uidl_off));
	}
	if (c->adopted && replaced > logged)
		log_warn("store: %s: %u more UIDLs replaced", mb->path,
		    (unsigned)(replaced - logged));
	store_compat_order(mb, c);
	/* the list is no longer needed; the statuses are (doctor, migrate) */
	uidl_compat_list_free(&c->list);
	free(c->buf);
	c->buf = NULL;
}

void
store_compat_free(struct store_compat **cp)
{
	struct store_compat *c = *cp;

	if (c == NULL)
		return;
	uidl_compat_list_free(&c->list);
	free(c->buf);
	free(c->status);
	free(c->old_off);
	free(c);
	*cp = NULL;
}

/* --- what the front door shows ----------------------------------------- */

void
store_fs_uidl_source(const struct mailbox *pub, char *buf, size_t bufsz)
{
	const struct store_fs *mb = store_fs_cof(pub);
	const struct store_compat *c = mb->compat;

	if (c == NULL || c->source == UIDL_COMPAT_NONE) {
		(void)snprintf(buf, bufsz, "posuto");
		return;
	}
	if (c->source == UIDL_COMPAT_TPOPS) {
		(void)snprintf(buf, bufsz, "tpops (%s; TPOPS's sizes; %u of "
		    "%u messages have its UIDL)", c->have_list ?
		    (strcmp(c->list_file, UIDL_COMPAT_TPOPS_FILE) == 0 ?
		    "the tpops_uidl map, else the base name" :
		    "the .tpops_uidl map, else the base name") :
		    "no tpops_uidl map: the base name", (unsigned)c->kept,
		    (unsigned)c->n);
		return;
	}
	if (!c->have_list) {
		(void)snprintf(buf, bufsz, "%s (its list is missing or "
		    "unusable: posuto's own UIDLs)",
		    uidl_compat_source_name(c->source));
		return;
	}
	(void)snprintf(buf, bufsz, "%s (%s, UidlFormat %s; %u of %u "
	    "messages have its UIDL)", uidl_compat_source_name(c->source),
	    store_compat_file(c->source), c->fmt, (unsigned)c->kept,
	    (unsigned)c->n);
}

const char *
store_fs_uidl_status(const struct mailbox *pub, uint32_t idx,
    const char **old_r)
{
	const struct store_fs *mb = store_fs_cof(pub);
	const struct store_compat *c = mb->compat;

	*old_r = NULL;
	if (c == NULL || idx >= c->n)
		return "new";
	if (c->old_off[idx] != 0)
		*old_r = store_pool_str(mb, c->old_off[idx]);
	switch (c->status[idx]) {
	case STORE_COMPAT_KEPT:
		return "kept";
	case STORE_COMPAT_INVALID:
		return "invalid";
	case STORE_COMPAT_DUP:
		return "duplicate";
	case STORE_COMPAT_NOFORMAT:
		return "format";
	case STORE_COMPAT_NOLIST:
		return "nolist";
	default:
		return "new";
	}
}
