/*
 * filewatch.h - notices that the config file or the passwd-file changed,
 * so a running server reloads (as on SIGHUP) after `posuto user` or an
 * editor changed them.
 *
 * A stat() of each file once a second on the event loop, not inotify:
 * it sees a file replaced by rename as well as one written in place,
 * works on any file system, survives the privilege drop and the
 * directory being replaced, and costs two stat()s a second.  A change
 * is acted on once the file has looked the same at two polls in a row,
 * so an editor still writing in place is not read half-way.
 */
#ifndef POSUTO_FILEWATCH_H
#define POSUTO_FILEWATCH_H

#include <stddef.h>

struct event_base;
struct filewatch;

typedef void filewatch_fn(void *arg);

#define FILEWATCH_MAX_PATHS	4

/* fn(arg) runs on the loop when a watched file changed. */
struct filewatch *filewatch_new(struct event_base *base, filewatch_fn *fn,
    void *arg);
/* Watches paths (NULL entries skipped) from their state now: call it
 * after each successful (re)load. */
void filewatch_set(struct filewatch *w, const char *const *paths, size_t n);
void filewatch_free(struct filewatch **w);

#endif
