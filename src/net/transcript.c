/* transcript.c - protocol transcripts (see transcript.h for the lock). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/xmalloc.h"
#include "net/transcript.h"

struct net_transcript {
	struct net_transcript *prev, *next;
	struct net_transcripts *ts;	/* whose lock */
	uint64_t id;
	char proto[8];
	char client[64];
	char user[64];
	time_t started;
	uint64_t start_ns;
	size_t cap;
	/* The text; buf[0..head_len) is the start kept when the middle
	 * goes (0: nothing went yet). */
	char *buf;
	size_t len, size, head_len;
	uint64_t dropped_lines, dropped_octets;
};

struct net_transcripts {
	pthread_mutex_t lock;
	struct net_transcript *live;
	struct net_transcript *done_first, *done_last;	/* oldest first */
	size_t n_done;
};

static uint64_t
tr_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
tr_copy(char *dst, size_t dstsz, const char *src)
{
	size_t n = src != NULL ? strnlen(src, dstsz - 1) : 0;

	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

struct net_transcripts *
net_transcripts_new(void)
{
	struct net_transcripts *ts = xcalloc(1, sizeof(*ts));

	pthread_mutex_init(&ts->lock, NULL);
	return ts;
}

static void
tr_free(struct net_transcript *t)
{
	free(t->buf);
	free(t);
}

void
net_transcripts_free(struct net_transcripts **tsp)
{
	struct net_transcripts *ts = *tsp;
	struct net_transcript *t, *next;

	if (ts == NULL)
		return;
	*tsp = NULL;
	for (t = ts->live; t != NULL; t = next) {
		next = t->next;
		tr_free(t);
	}
	for (t = ts->done_first; t != NULL; t = next) {
		next = t->next;
		tr_free(t);
	}
	pthread_mutex_destroy(&ts->lock);
	free(ts);
}

struct net_transcript *
net_transcript_open(struct net_transcripts *ts, uint64_t id,
    const char *proto, const char *client)
{
	struct net_transcript *t = xcalloc(1, sizeof(*t));

	t->ts = ts;
	t->id = id;
	tr_copy(t->proto, sizeof(t->proto), proto);
	tr_copy(t->client, sizeof(t->client), client);
	t->started = time(NULL);
	t->start_ns = tr_mono_ns();
	t->cap = NET_TR_PRELOGIN_MAX;
	pthread_mutex_lock(&ts->lock);
	t->next = ts->live;
	if (t->next != NULL)
		t->next->prev = t;
	ts->live = t;
	pthread_mutex_unlock(&ts->lock);
	return t;
}

/*
 * Room for need more octets within the cap (lock held): the middle goes,
 * whole lines, a quarter of the cap at least so that it is not moved for
 * every line.
 */
static void
tr_make_room(struct net_transcript *t, size_t need)
{
	size_t from, to, want;

	if (t->len + need <= t->cap)
		return;
	if (t->head_len == 0) {
		/* The start stays: the lines in the first half of the cap. */
		size_t h = 0;

		for (size_t i = 0; i < t->len && i < t->cap / 2; i++)
			if (t->buf[i] == '\n')
				h = i + 1;
		t->head_len = h;
	}
	from = t->head_len;
	want = t->len + need - t->cap;
	if (want < t->cap / 4)
		want = t->cap / 4;
	to = from;
	while (to < t->len && to - from < want) {
		char *nl = memchr(t->buf + to, '\n', t->len - to);

		to = nl != NULL ? (size_t)(nl - t->buf) + 1 : t->len;
		t->dropped_lines++;
	}
	t->dropped_octets += to - from;
	memmove(t->buf + from, t->buf + to, t->len - to);
	t->len -= to - from;
}

void
net_transcript_add(struct net_transcript *t, char who, const char *line,
    size_t len)
{
	char pre[32];
	uint64_t ms;
	size_t need;
	int p;

	if (t == NULL)
		return;
	if (len > NET_TR_LINE_MAX)
		len = NET_TR_LINE_MAX;
	ms = (tr_mono_ns() - t->start_ns) / 1000000u;
	p = snprintf(pre, sizeof(pre), "%6" PRIu64 " %c ", ms, who);
	if (p < 0 || (size_t)p >= sizeof(pre))
		return;
	need = (size_t)p + len + 1;
	/* One writer (the loop thread); the lock is for the readers, who
	 * may be copying the buffer this moves. */
	pthread_mutex_lock(&t->ts->lock);
	tr_make_room(t, need);
	if (t->len + need > t->size) {
		size_t size = t->size > 0 ? t->size : 1024;

		while (size < t->len + need)
			size *= 2;
		t->buf = xreallocarray(t->buf, size, 1);
		t->size = size;
	}
	memcpy(t->buf + t->len, pre, (size_t)p);
	t->len += (size_t)p;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		t->buf[t->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	t->buf[t->len++] = '\n';
	pthread_mutex_unlock(&t->ts->lock);
}

void
net_transcript_set_user(struct net_transcript *t, const char *user)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->ts->lock);
	tr_copy(t->user, sizeof(t->user), user);
	t->cap = NET_TR_MAX;
	pthread_mutex_unlock(&t->ts->lock);
}

/* The text, with its header and the marker where the middle went (lock
 * held). */
static char *
tr_render(const struct net_transcript *t, size_t *len_r)
{
	char head[256], mark[96], when[32];
	struct tm tm;
	size_t hl, ml = 0, n;
	char *out;
	int r;

	gmtime_r(&t->started, &tm);
	if (strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		when[0] = '\0';
	r = snprintf(head, sizeof(head), "# posuto %s transcript, session "
	    "%" PRIu64 " (session=%" PRIx64 " in the log), from %s, user %s, "
	    "started %s (ms since then; C client, S server, * summary)\n",
	    t->proto, t->id, t->id, t->client,
	    t->user[0] != '\0' ? t->user : "-", when);
	hl = r > 0 ? ((size_t)r < sizeof(head) ? (size_t)r :
	    sizeof(head) - 1) : 0;
	if (t->dropped_lines > 0) {
		r = snprintf(mark, sizeof(mark), "[... %" PRIu64 " lines, %"
		    PRIu64 " octets dropped ...]\n", t->dropped_lines,
		    t->dropped_octets);
		ml = r > 0 && (size_t)r < sizeof(mark) ? (size_t)r : 0;
	}
	n = hl + t->len + ml;
	out = xmalloc(n + 1);
	memcpy(out, head, hl);
	if (t->len > 0)
		memcpy(out + hl, t->buf, t->head_len > 0 ? t->head_len :
		    t->len);
	if (t->head_len > 0) {
		memcpy(out + hl + t->head_len, mark, ml);
		memcpy(out + hl + t->head_len + ml, t->buf + t->head_len,
		    t->len - t->head_len);
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

void
net_transcript_close(struct net_transcripts *ts, struct net_transcript **tp,
    bool keep, char **text_r, size_t *len_r)
{
	struct net_transcript *t = *tp, *old = NULL;

	if (text_r != NULL)
		*text_r = NULL;
	if (t == NULL)
		return;
	*tp = NULL;
	pthread_mutex_lock(&ts->lock);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		ts->live = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	if (text_r != NULL)
		*text_r = tr_render(t, len_r);
	if (keep) {
		/* The buffer's slack goes: 32 of them stay a while. */
		if (t->len > 0 && t->len < t->size) {
			t->buf = xreallocarray(t->buf, t->len, 1);
			t->size = t->len;
		}
		t->prev = ts->done_last;
		if (ts->done_last != NULL)
			ts->done_last->next = t;
		else
			ts->done_first = t;
		ts->done_last = t;
		if (++ts->n_done > NET_TR_KEEP) {
			old = ts->done_first;
			ts->done_first = old->next;
			ts->done_first->prev = NULL;
			ts->n_done--;
		}
	} else {
		old = t;
	}
	pthread_mutex_unlock(&ts->lock);
	if (old != NULL)
		tr_free(old);
}

bool
net_transcripts_get(struct net_transcripts *ts, uint64_t id, char **text_r,
    size_t *len_r)
{
	struct net_transcript *t;

	*text_r = NULL;
	pthread_mutex_lock(&ts->lock);
	for (t = ts->live; t != NULL && t->id != id; t = t->next)
		;
	if (t == NULL)
		for (t = ts->done_last; t != NULL && t->id != id; t = t->prev)
			;
	if (t != NULL)
		*text_r = tr_render(t, len_r);
	pthread_mutex_unlock(&ts->lock);
	return t != NULL;
}

static int
tr_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* dir fd's subdirectory name, made 0700 if missing; never a symlink. */
static int
tr_open_dir(int at, const char *name)
{
	if (mkdirat(at, name, 0700) != 0 && errno != EEXIST)
		return -1;
	return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

int
net_transcript_write_file(const char *dir, const char *user,
    const char *name, const char *text, size_t len)
{
	char tmp[256];
	int dfd = -1, ufd = -1, fd = -1, err = 0;
	int r;

	if (user[0] == '\0' || user[0] == '.' || strchr(user, '/') != NULL ||
	    strchr(name, '/') != NULL)
		return EINVAL;
	r = snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	if (r < 0 || (size_t)r >= sizeof(tmp))
		return ENAMETOOLONG;
	if ((dfd = tr_open_dir(AT_FDCWD, dir)) < 0 ||
	    (ufd = tr_open_dir(dfd, user)) < 0) {
		err = errno;
		goto out;
	}
	fd = openat(ufd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	if ((err = tr_write_all(fd, text, len)) != 0)
		goto out;
	if (fsync(fd) != 0) {
		err = errno;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		err = errno;
		goto out;
	}
	fd = -1;
	if (renameat(ufd, tmp, ufd, name) != 0) {
		err = errno;
		goto out;
	}
	(void)fsync(ufd);
out:
	if (fd >= 0) {
		(void)close(fd);
		(void)unlinkat(ufd, tmp, 0);
	} else if (err != 0 && ufd >= 0) {
		(void)unlinkat(ufd, tmp, 0);
	}
	if (ufd >= 0)
		(void)close(ufd);
	if (dfd >= 0)
		(void)close(dfd);
	return err;
}
