/*
 * workq.h - a fixed pool of worker threads for blocking work (password
 * hashing, mailbox scans, the expunge at QUIT), so the event loop never
 * stalls.  Completions run on the event loop thread.  Worker threads never
 * touch libevent or a session; they only run work(arg).
 */
#ifndef POSUTO_WORKQ_H
#define POSUTO_WORKQ_H

struct event_base;
struct workq;

typedef void workq_fn(void *arg);

struct workq *workq_new(struct event_base *base, unsigned nthreads);
/* Finishes queued jobs, runs their completions, joins the threads. */
void workq_free(struct workq **wq);
/* work(arg) runs on a worker; then done(arg) on the event loop thread. */
void workq_submit(struct workq *wq, workq_fn *work, workq_fn *done,
    void *arg);
/* Jobs submitted and not yet completed (for graceful shutdown). */
unsigned workq_pending(const struct workq *wq);

#endif
