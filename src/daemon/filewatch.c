/* filewatch.c - the once-a-second stat() poll of filewatch.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "daemon/filewatch.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* What tells a file changed: a rename changes the inode, a write the
 * size or mtime, chmod the ctime. */
struct filewatch_state {
	bool present;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};

struct filewatch_file {
	char *path;
	struct filewatch_state seen;	/* as of the last (re)load */
	struct filewatch_state pending;	/* a change seen at the last poll */
	bool has_pending;
};

struct filewatch {
	struct event *tick;
	filewatch_fn *fn;
	void *arg;
	struct filewatch_file files[FILEWATCH_MAX_PATHS];
	size_t n;
};

static void
filewatch_stat(const char *path, struct filewatch_state *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (stat(path, &st) != 0)
		return;
	s->present = true;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtim = st.st_mtim;
	s->ctim = st.st_ctim;
}

static bool
filewatch_same(const struct filewatch_state *a,
    const struct filewatch_state *b)
{
	return a->present == b->present && a->dev == b->dev &&
	    a->ino == b->ino && a->size == b->size &&
	    a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec &&
	    a->ctim.tv_sec == b->ctim.tv_sec &&
	    a->ctim.tv_nsec == b->ctim.tv_nsec;
}

static void
filewatch_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct filewatch *w = arg;
	bool fire = false;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < w->n; i++) {
		struct filewatch_file *f = &w->files[i];
		struct filewatch_state now;

		filewatch_stat(f->path, &now);
		if (filewatch_same(&now, &f->seen)) {
			f->has_pending = false;
		} else if (f->has_pending && filewatch_same(&now, &f->pending)) {
			fire = true;
		} else {
			f->pending = now;
			f->has_pending = true;
		}
	}
	if (!fire)
		return;
	/* Taken as seen whether the reload works or not: a broken file is
	 * reported once, not every second; the next change tries again. */
	for (size_t i = 0; i < w->n; i++) {
		filewatch_stat(w->files[i].path, &w->files[i].seen);
		w->files[i].has_pending = false;
	}
	w->fn(w->arg);
}

struct filewatch *
filewatch_new(struct event_base *base, filewatch_fn *fn, void *arg)
{
	struct filewatch *w = xcalloc(1, sizeof(*w));
	struct timeval tv = { .tv_sec = 1, .tv_usec = 0 };

	w->fn = fn;
	w->arg = arg;
	w->tick = event_new(base, -1, EV_PERSIST, filewatch_on_tick, w);
	if (w->tick == NULL || event_add(w->tick, &tv) != 0)
		fatal("filewatch: cannot add the timer");
	return w;
}

void
filewatch_set(struct filewatch *w, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->files[i].path);
	w->n = 0;
	for (size_t i = 0; i < n && w->n < FILEWATCH_MAX_PATHS; i++) {
		struct filewatch_file *f = &w->files[w->n];

		if (paths[i] == NULL)
			continue;
		memset(f, 0, sizeof(*f));
		f->path = xstrdup(paths[i]);
		filewatch_stat(f->path, &f->seen);
		w->n++;
	}
}

void
filewatch_free(struct filewatch **wp)
{
	struct filewatch *w = *wp;

	if (w == NULL)
		return;
	if (w->tick != NULL)
		event_free(w->tick);
	for (size_t i = 0; i < w->n; i++)
		free(w->files[i].path);
	free(w);
	*wp = NULL;
}
