/*
 * workq.h - a fixed pool of worker threads for blocking work (password
 * hashing, mailbox scans, the expunge at QUIT), so the event loop never
 * stalls.  Completions run on the event loop thread that submitted the
 * job (each loop has its own port: an eventfd and a finished list), so a
 * session's completion never runs on another loop's thread.  Worker
 * threads never touch libevent or a session; they only run work(arg).
 * One pool for every loop: a hash runs on whichever core is free.
 */
#ifndef POSUTO_WORKQ_H
#define POSUTO_WORKQ_H

struct event_base;
struct workq;

typedef void workq_fn(void *arg);

/* base: loop 0's (the main thread's, or any thread's without a loop). */
struct workq *workq_new(struct event_base *base, unsigned nthreads);
/* Loop index's port (net_loop_index(), 1..): jobs submitted from that
 * loop's thread complete on base.  Before any thread submits. */
void workq_add_loop(struct workq *wq, struct event_base *base,
    unsigned index);
/* Finishes queued jobs, runs their completions, joins the threads. */
void workq_free(struct workq **wq);
/* work(arg) runs on a worker; then done(arg) on the submitting loop. */
void workq_submit(struct workq *wq, workq_fn *work, workq_fn *done,
    void *arg);
/* Jobs the calling loop submitted and not yet completed (for graceful
 * shutdown). */
unsigned workq_pending(const struct workq *wq);

#endif
