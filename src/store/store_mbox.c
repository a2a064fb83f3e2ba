/*
 * store_mbox.c - the "mbox:" driver (/var/mail/%u, /var/spool/mail/%u):
 * store.h over the mbox core (mbox_store.h, docs/mbox.md).
 *
 * Session lock: the store lock (store_lock.h) on the mbox file's
 * (dev, ino), taken before the snapshot, so one POP3 session per mbox
 * across posuto processes; the MTA's locks (dotlock + fcntl) are held
 * only while the snapshot is taken, an append runs or the expunge runs.
 * A missing file is an empty mailbox and takes no lock, as the directory
 * drivers do.
 *
 * Side files (index, expunge journal) sit next to the mbox unless
 * store_mbox_configure() names a state directory (MboxStateDirectory):
 * then "<dir>/<basename>-<16 hex of SHA-256(path)>.posuto-index" etc.,
 * one name per mbox path however long, the same for every process.
 *
 * Delivery spools the message (memory, then an unlinked temporary file)
 * and appends it at commit, so the MTA locks are never held while a
 * slow writer streams in.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/log.h"
#include "lib/params.h"
#include "lib/xmalloc.h"
#include "store/mbox_int.h"
#include "store/store_driver.h"
#include "store/store_int.h"
#include "store/store_lock.h"
#include "store/uidl_compat.h"

#define MBOX_SPOOL_MEM	(1024 * 1024)	/* then a temporary file */

static char *mbox_state_dir;

void
store_mbox_configure(const char *state_dir)
{
	static bool set;

	if (state_dir != NULL && *state_dir == '\0')
		state_dir = NULL;
	if (set) {
		/* worker threads read it unlocked, and a journal must be
		 * found where it was written: a change needs a restart */
		if ((state_dir == NULL) != (mbox_state_dir == NULL) ||
		    (state_dir != NULL && strcmp(state_dir,
		    mbox_state_dir) != 0))
			log_warnx("MboxStateDirectory changed: takes effect "
			    "at the next start");
		return;
	}
	set = true;
	mbox_state_dir = state_dir != NULL ? xstrdup(state_dir) : NULL;
}

/* The state prefix for path (malloc'd), or NULL: next to the mbox. */
static char *
mbox_state_prefix(const char *path)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const char *base = strrchr(path, '/');
	char hex[17];

	if (mbox_state_dir == NULL)
		return NULL;
	base = base != NULL ? base + 1 : path;
	if (EVP_Digest(path, strlen(path), md, &mdlen, EVP_sha256(),
	    NULL) != 1 || mdlen < 8)
		abort();
	for (int i = 0; i < 8; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
	/* the basename is for people; cut it so the name fits NAME_MAX */
	return xasprintf("%s/%.100s-%s", mbox_state_dir, base, hex);
}

static void
mbox_store_opts(struct mbox_opts *o, char **prefix_r, const char *path)
{
	mbox_opts_init(o);
	*prefix_r = mbox_state_prefix(path);
	o->state_prefix = *prefix_r;
	/* Debian's /var/mail is root:mail 2775: a user's own process may
	 * not create a dotlock there; go on with fcntl as Postfix does */
	o->lock.dotlock_may_fail = true;
}

static enum store_status
mbox_status_store(enum mbox_status s)
{
	switch (s) {
	case MBOX_OK:
		return STORE_OK;
	case MBOX_PERM:
		return STORE_PERM;
	default:
		return STORE_TEMP;
	}
}

/* --- UIDL compatibility (mbox_compat.c) ------------------------------- */

/*
 * Which server's UIDLs an mbox serves is decided once and recorded in
 * "<prefix>.posuto-uidl" ("posuto-uidl 2 <source> -", as store_compat.c
 * does for Maildirs): with UidlCompat "auto", an mbox posuto never served
 * (no index yet) whose first message has c-client's X-IMAP/X-IMAPbase
 * takes c-client's UIDLs; one posuto served keeps posuto's own, even if
 * such headers turn up later (a mail client run on the spool).  qpopper's
 * X-UIDL is honoured only when configured: it is message content.
 */
#define MBOX_UIDL_REC	".posuto-uidl"
#define MBOX_COMPAT_LOG_MAX	5

static bool
mbox_rec_read(const char *base, enum uidl_compat_source *src_r)
{
	char *p = xasprintf("%s%s", base, MBOX_UIDL_REC), buf[128], f[32];
	FILE *fp = fopen(p, "re");
	bool ok = false;

	free(p);
	if (fp == NULL)
		return false;
	if (fgets(buf, sizeof(buf), fp) != NULL &&
	    sscanf(buf, "posuto-uidl 2 %31s", f) == 1 &&
	    uidl_compat_source_parse(f, src_r))
		ok = true;
	fclose(fp);
	return ok;
}

static void
mbox_rec_write(const char *base, enum uidl_compat_source src)
{
	char *p = xasprintf("%s%s", base, MBOX_UIDL_REC);
	char *tmp = xasprintf("%s.tmp", p);
	FILE *fp = fopen(tmp, "we");

	if (fp != NULL) {
		bool ok = fprintf(fp, "posuto-uidl 2 %s -\n",
		    uidl_compat_source_name(src)) > 0;

		if (fclose(fp) != 0 || !ok || rename(tmp, p) != 0)
			(void)unlink(tmp);
	}
	free(tmp);
	free(p);
}

/* What to ask the mbox core for; *rec_r: a decision was recorded. */
static enum mbox_compat
mbox_compat_want(const char *user, const char *base, bool *forced_r,
    bool *have_rec_r, enum uidl_compat_source *rec_r)
{
	int w;
	enum uidl_compat_source want;
	char *ix;
	bool served;

	*forced_r = store_compat_source_for(user, &w);
	want = (enum uidl_compat_source)w;
	*have_rec_r = mbox_rec_read(base, rec_r);
	if (want == UIDL_COMPAT_AUTO && *have_rec_r && !*forced_r)
		want = *rec_r == UIDL_COMPAT_UW || *rec_r == UIDL_COMPAT_QPOPPER ?
		    *rec_r : UIDL_COMPAT_NONE;
	switch (want) {
	case UIDL_COMPAT_UW:
		return MBOX_COMPAT_UW;
	case UIDL_COMPAT_QPOPPER:
		return MBOX_COMPAT_QPOPPER;
	case UIDL_COMPAT_AUTO:
		ix = xasprintf("%s.posuto-index", base);
		served = access(ix, F_OK) == 0;
		free(ix);
		return served ? MBOX_COMPAT_NONE : MBOX_COMPAT_UW_AUTO;
	default:
		return MBOX_COMPAT_NONE;
	}
}

/* Records the decision and logs replaced UIDLs once, when taken over. */
static void
mbox_compat_settle(struct mbox *mb, const char *path, const char *base,
    bool forced, bool have_rec, enum uidl_compat_source rec)
{
	enum mbox_compat used = mbox_compat_used(mb);
	enum uidl_compat_source src = used == MBOX_COMPAT_UW ?
	    UIDL_COMPAT_UW : used == MBOX_COMPAT_QPOPPER ?
	    UIDL_COMPAT_QPOPPER : UIDL_COMPAT_NONE;
	uint32_t n = mbox_msg_count(mb), logged = 0, replaced = 0;
	char what[256];

	if (forced) {
		/* migrate check leaves an index: without a record it would
		 * read as "posuto served it" */
		if (!have_rec && src != UIDL_COMPAT_NONE && mb->c_kept > 0)
			mbox_rec_write(base, src);
		return;
	}
	if (have_rec && rec == src)
		return;
	mbox_rec_write(base, src);
	if (src == UIDL_COMPAT_NONE)
		return;
	mbox_compat_describe(mb, what, sizeof(what));
	log_info("store: %s: serving the UIDLs of %s", path, what);
	for (uint32_t i = 0; i < n; i++) {
		const char *old, *st = mbox_msg_uidl_status(mb, i, &old);

		if (strcmp(st, "invalid") != 0 && strcmp(st, "duplicate") != 0)
			continue;
		if (logged++ < MBOX_COMPAT_LOG_MAX)
			log_warn("store: %s: %s UIDL \"%.80s\" of message %u "
			    "is %s; serving \"%s\" instead", path,
			    uidl_compat_source_name(src), old != NULL ? old : "",
			    (unsigned)i + 1, strcmp(st, "duplicate") == 0 ?
			    "a duplicate" : "not a valid RFC 1939 unique-id",
			    mbox_msg_uidl(mb, i));
		replaced++;
	}
	if (replaced > MBOX_COMPAT_LOG_MAX)
		log_warn("store: %s: %u more UIDLs replaced", path,
		    (unsigned)(replaced - MBOX_COMPAT_LOG_MAX));
}

/* --- snapshot -------------------------------------------------------- */

struct store_mbox {
	struct mailbox pub;
	struct mbox *mb;		/* NULL: no file, empty */
	bool locked;
	dev_t dev;
	ino_t ino;
	bool any_seen;
};

static struct store_mbox *
smb_of(struct mailbox *pub)
{
	return (struct store_mbox *)pub;
}

static const struct store_mbox *
smb_cof(const struct mailbox *pub)
{
	return (const struct store_mbox *)pub;
}

static enum store_status
mbox_drv_open(const struct store_driver *drv, const char *path,
    const char *user, struct mailbox **mb_r, char *err, size_t errsz)
{
	struct store_mbox *s;
	struct mbox *mb = NULL;
	struct mbox_opts o;
	struct stat st;
	char *prefix = NULL;
	char why[256] = "";
	enum store_status rc;
	enum mbox_status ms;
	enum uidl_compat_source rec = UIDL_COMPAT_NONE;
	bool forced = false, have_rec = false;

	*mb_r = NULL;
	if (lstat(path, &st) == -1) {
		if (errno != ENOENT) {
			if (err != NULL)
				(void)snprintf(err, errsz, "%s: %s", path,
				    strerror(errno));
			return STORE_TEMP;
		}
		s = xcalloc(1, sizeof(*s));	/* no mail yet: no lock */
		s->pub.drv = drv;
		*mb_r = &s->pub;
		return STORE_OK;
	}
	s = xcalloc(1, sizeof(*s));
	s->pub.drv = drv;
	if (!S_ISREG(st.st_mode)) {
		if (err != NULL)
			(void)snprintf(err, errsz, "%s: not a regular file",
			    path);
		free(s);
		return STORE_PERM;
	}
	if ((rc = store_lock_acquire(st.st_dev, st.st_ino, err, errsz)) !=
	    STORE_OK) {
		free(s);
		return rc;
	}
	s->locked = true;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	mbox_store_opts(&o, &prefix, path);
	o.compat = mbox_compat_want(user, prefix != NULL ? prefix : path,
	    &forced, &have_rec, &rec);
	ms = mbox_open_snapshot(path, &o, &mb, why, sizeof(why));
	if (ms == MBOX_OK)
		mbox_compat_settle(mb, path, prefix != NULL ? prefix : path,
		    forced, have_rec, rec);
	free(prefix);
	rc = mbox_status_store(ms);
	if (ms == MBOX_OK && mb->fd >= 0 &&
	    (mb->id.dev != (uint64_t)st.st_dev ||
	    mb->id.ino != (uint64_t)st.st_ino)) {
		/* replaced between lstat and open: the lock is on another
		 * file; let the client try again */
		(void)snprintf(why, sizeof(why), "replaced while opening");
		rc = STORE_TEMP;
	} else if (ms == MBOX_OK &&
	    mbox_msg_count(mb) > MAILBOX_MAX_MESSAGES) {
		(void)snprintf(why, sizeof(why), "more than %u messages",
		    (unsigned)MAILBOX_MAX_MESSAGES);
		rc = STORE_PERM;
	}
	if (rc != STORE_OK) {
		if (err != NULL)
			(void)snprintf(err, errsz, "mbox %s: %s", path, why);
		mbox_close(&mb);
		store_lock_release(s->dev, s->ino);
		free(s);
		return rc;
	}
	s->mb = mb;
	*mb_r = &s->pub;
	return STORE_OK;
}

static void
mbox_drv_uidl_source(const struct mailbox *pub, char *buf, size_t bufsz)
{
	const struct store_mbox *s = smb_cof(pub);

	if (s->mb == NULL)
		(void)snprintf(buf, bufsz, "posuto");
	else
		mbox_compat_describe(s->mb, buf, bufsz);
}

static const char *
mbox_drv_uidl_status(const struct mailbox *pub, uint32_t idx,
    const char **old_r)
{
	const struct store_mbox *s = smb_cof(pub);

	*old_r = NULL;
	return s->mb != NULL ? mbox_msg_uidl_status(s->mb, idx, old_r) : "new";
}

static uint32_t
mbox_drv_count(const struct mailbox *pub)
{
	const struct store_mbox *s = smb_cof(pub);

	return s->mb != NULL ? mbox_msg_count(s->mb) : 0;
}

static uint64_t
mbox_drv_msg_size(const struct mailbox *pub, uint32_t idx)
{
	return mbox_msg_size(smb_cof(pub)->mb, idx);
}

static bool
mbox_drv_msg_size_is_hint(const struct mailbox *pub, uint32_t idx)
{
	return mbox_msg_size_is_hint(smb_cof(pub)->mb, idx);
}

static const char *
mbox_drv_msg_uidl(const struct mailbox *pub, uint32_t idx)
{
	return mbox_msg_uidl(smb_cof(pub)->mb, idx);
}

static uint64_t
mbox_drv_total_size(const struct mailbox *pub)
{
	const struct store_mbox *s = smb_cof(pub);

	return s->mb != NULL ? mbox_total_size(s->mb) : 0;
}

static void
mbox_drv_mark_seen(struct mailbox *pub, uint32_t idx)
{
	(void)idx;
	/* mbox keeps no flags of ours (a Status: header would rewrite the
	 * message); remembered only so commit_needed answers alike */
	smb_of(pub)->any_seen = true;
}

static bool
mbox_any_deleted(const struct store_mbox *s, const uint8_t *deleted)
{
	uint32_t n = mbox_drv_count(&s->pub);

	if (deleted == NULL)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if ((deleted[i / 8] >> (i % 8)) & 1)
			return true;
	return false;
}

static bool
mbox_drv_commit_needed(const struct mailbox *pub, const uint8_t *deleted)
{
	const struct store_mbox *s = smb_cof(pub);

	return s->any_seen || mbox_any_deleted(s, deleted);
}

static enum store_status
mbox_drv_commit(struct mailbox *pub, const uint8_t *deleted,
    uint32_t *n_deleted_r)
{
	struct store_mbox *s = smb_of(pub);
	uint32_t n = mbox_drv_count(pub), nd = 0;
	uint8_t *del;
	char why[256] = "";
	enum mbox_status ms;

	*n_deleted_r = 0;
	if (!mbox_any_deleted(s, deleted))
		return STORE_OK;
	del = xcalloc(n, 1);
	for (uint32_t i = 0; i < n; i++)
		del[i] = (deleted[i / 8] >> (i % 8)) & 1;
	ms = mbox_expunge(s->mb, del, &nd, why, sizeof(why));
	free(del);
	*n_deleted_r = nd;
	if (ms != MBOX_OK) {
		log_msg(LOG_LVL_ERROR, "mbox %s: expunge: %s", s->mb->path,
		    ms == MBOX_CHANGED ? "changed by another program, "
		    "nothing deleted" : why);
		return STORE_TEMP;
	}
	return STORE_OK;
}

static void
mbox_drv_close(struct mailbox *pub)
{
	struct store_mbox *s = smb_of(pub);

	mbox_close(&s->mb);
	if (s->locked)
		store_lock_release(s->dev, s->ino);
	free(s);
}

static unsigned
mbox_drv_check(const struct store_driver *drv, const char *user,
    const char *path, FILE *out)
{
	struct stat st;
	char *prefix = mbox_state_prefix(path);
	unsigned n = 0;

	(void)drv;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(out, "warning: user %s: mbox %s is not a regular file\n",
		    user, path);
		n++;
	} else if (lstat(path, &st) == 0 && (st.st_mode & S_IWOTH)) {
		fprintf(out, "warning: user %s: mbox %s is writable by every "
		    "user\n", user, path);
		n++;
	}
	if (prefix != NULL && access(mbox_state_dir, W_OK) != 0) {
		fprintf(out, "warning: user %s: MboxStateDirectory %s is not "
		    "writable: %s\n", user, mbox_state_dir, strerror(errno));
		n++;
	}
	free(prefix);
	return n;
}

/* --- readers --------------------------------------------------------- */

struct store_mbox_reader {
	struct msg_reader pub;
	struct mbox_reader *r;
};

static enum store_status
mbox_drv_msg_open(struct mailbox *pub, uint32_t idx, struct msg_reader **r_r)
{
	struct store_mbox *s = smb_of(pub);
	struct store_mbox_reader *sr;
	struct mbox_reader *r = NULL;
	enum mbox_status ms;

	*r_r = NULL;
	ms = mbox_msg_reader_open_stored(s->mb, idx, &r);
	if (ms != MBOX_OK) {
		errno = ms == MBOX_CHANGED ? ESTALE : EIO;
		return STORE_TEMP;
	}
	sr = xcalloc(1, sizeof(*sr));
	sr->pub.drv = pub->drv;
	sr->r = r;
	*r_r = &sr->pub;
	return STORE_OK;
}

static ssize_t
mbox_drv_msg_read(struct msg_reader *pub, void *buf, size_t len)
{
	return mbox_msg_reader_read(((struct store_mbox_reader *)pub)->r, buf,
	    len);
}

static void
mbox_drv_msg_close(struct msg_reader *pub)
{
	struct store_mbox_reader *sr = (struct store_mbox_reader *)pub;

	mbox_msg_reader_close(&sr->r);
	free(sr);
}

/* --- delivery -------------------------------------------------------- */

struct store_mbox_delivery {
	struct store_delivery pub;
	char *path;
	char *sender;
	unsigned char *mem;
	size_t mem_len;
	int spool_fd;		/* -1 while it fits in mem */
	uint64_t len, rd_off;
	bool failed;
	int err;
};

static enum store_status
mbox_drv_deliver_begin(const struct store_driver *drv, const char *path,
    const char *user, struct store_delivery **d_r, char *err, size_t errsz)
{
	struct store_mbox_delivery *d;
	struct stat st;

	(void)user;
	*d_r = NULL;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (err != NULL)
			(void)snprintf(err, errsz, "%s: not a regular file",
			    path);
		return STORE_PERM;
	}
	d = xcalloc(1, sizeof(*d));
	d->pub.drv = drv;
	d->path = xstrdup(path);
	d->spool_fd = -1;
	*d_r = &d->pub;
	return STORE_OK;
}

static void
mbox_drv_deliver_sender(struct store_delivery *pub, const char *sender)
{
	struct store_mbox_delivery *d = (struct store_mbox_delivery *)pub;

	free(d->sender);
	d->sender = sender != NULL ? xstrdup(sender) : NULL;
}

/* An unlinked temporary file (TMPDIR or /tmp). */
static int
mbox_spool_open(void)
{
	const char *dir = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	int fd;

	if (dir == NULL || *dir != '/')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	(void)snprintf(tmpl, sizeof(tmpl), "%s/posuto-mbox-XXXXXX", dir);
	if ((fd = mkostemp(tmpl, O_CLOEXEC)) >= 0)
		(void)unlink(tmpl);
	return fd;
}

static enum store_status
mbox_drv_deliver_write(struct store_delivery *pub, const void *buf,
    size_t len)
{
	struct store_mbox_delivery *d = (struct store_mbox_delivery *)pub;
	const unsigned char *b = buf;

	if (d->failed)
		return STORE_TEMP;
	if (d->spool_fd < 0 && d->mem_len + len <= MBOX_SPOOL_MEM) {
		if (d->mem == NULL)
			d->mem = xmalloc(MBOX_SPOOL_MEM);
		memcpy(d->mem + d->mem_len, b, len);
		d->mem_len += len;
		d->len += len;
		return STORE_OK;
	}
	if (d->spool_fd < 0) {
		if ((d->spool_fd = mbox_spool_open()) < 0 ||
		    !mbox_pwrite_full(d->spool_fd, d->mem, d->mem_len, 0)) {
			d->failed = true;
			d->err = errno;
			log_msg(LOG_LVL_ERROR, "mbox %s: spool: %s", d->path,
			    strerror(d->err));
			return STORE_TEMP;
		}
		free(d->mem);
		d->mem = NULL;
	}
	if (!mbox_pwrite_full(d->spool_fd, b, len, d->len)) {
		d->failed = true;
		d->err = errno;
		log_msg(LOG_LVL_ERROR, "mbox %s: spool: %s", d->path,
		    strerror(d->err));
		return STORE_TEMP;
	}
	d->len += len;
	return STORE_OK;
}

static ssize_t
mbox_spool_read(void *ctx, void *buf, size_t len)
{
	struct store_mbox_delivery *d = ctx;
	uint64_t left = d->len - d->rd_off;
	ssize_t n;

	if (left == 0)
		return 0;
	if (len > left)
		len = (size_t)left;
	if (d->spool_fd < 0) {
		memcpy(buf, d->mem + d->rd_off, len);
		n = (ssize_t)len;
	} else {
		do
			n = pread(d->spool_fd, buf, len, (off_t)d->rd_off);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			errno = EIO;
			return -1;
		}
	}
	if (n > 0)
		d->rd_off += (uint64_t)n;
	return n;
}

static void
mbox_spool_rewind(void *ctx)
{
	struct store_mbox_delivery *d = ctx;

	d->rd_off = 0;
}

static void
mbox_drv_deliver_abort(struct store_delivery *pub)
{
	struct store_mbox_delivery *d = (struct store_mbox_delivery *)pub;

	if (d->spool_fd >= 0)
		close(d->spool_fd);
	free(d->mem);
	free(d->path);
	free(d->sender);
	free(d);
}

static enum store_status
mbox_drv_deliver_commit(struct store_delivery *pub, char *id, size_t idsz)
{
	struct store_mbox_delivery *d = (struct store_mbox_delivery *)pub;
	struct mbox_opts o;
	char *prefix = NULL;
	char why[256] = "";
	enum mbox_status ms = MBOX_TEMP;
	time_t now = time(NULL);

	if (!d->failed) {
		mbox_store_opts(&o, &prefix, d->path);
		ms = mbox_append(d->path, &o, d->sender, now, mbox_spool_read,
		    mbox_spool_rewind, d, why, sizeof(why));
		free(prefix);
		if (ms != MBOX_OK)
			log_msg(LOG_LVL_ERROR, "mbox %s: %s", d->path, why);
	}
	if (ms == MBOX_OK && id != NULL && idsz > 0)
		(void)snprintf(id, idsz, "mbox:%lld", (long long)now);
	mbox_drv_deliver_abort(pub);
	return mbox_status_store(ms);
}

const struct store_driver store_driver_mbox = {
	.name = "mbox",
	.fs = NULL,
	.lf_store = true,
	.open = mbox_drv_open,
	.count = mbox_drv_count,
	.msg_size = mbox_drv_msg_size,
	.msg_uidl = mbox_drv_msg_uidl,
	.msg_size_is_hint = mbox_drv_msg_size_is_hint,
	.uidl_source = mbox_drv_uidl_source,
	.uidl_status = mbox_drv_uidl_status,
	.total_size = mbox_drv_total_size,
	.mark_seen = mbox_drv_mark_seen,
	.commit_needed = mbox_drv_commit_needed,
	.commit = mbox_drv_commit,
	.close = mbox_drv_close,
	.check = mbox_drv_check,
	.msg_open = mbox_drv_msg_open,
	.msg_read = mbox_drv_msg_read,
	.msg_unchanged = NULL,	/* the reader checks the digest itself */
	.msg_wire_fd = NULL,
	.msg_wire_job = NULL,
	.msg_close = mbox_drv_msg_close,
	.deliver_begin = mbox_drv_deliver_begin,
	.deliver_sender = mbox_drv_deliver_sender,
	.deliver_write = mbox_drv_deliver_write,
	.deliver_commit = mbox_drv_deliver_commit,
	.deliver_abort = mbox_drv_deliver_abort,
};
