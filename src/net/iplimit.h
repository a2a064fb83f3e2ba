/*
 * iplimit.h - per client IP accounting: concurrent connections and recent
 * failed logins (the penalty grows with them, like Dovecot's auth
 * penalty).  Event loop thread only.
 */
#ifndef POSUTO_IPLIMIT_H
#define POSUTO_IPLIMIT_H

#include <stdbool.h>
#include <sys/socket.h>

struct iplimit;

struct iplimit *iplimit_new(void);
void iplimit_free(struct iplimit **l);
/* Counts a connection; false (and nothing counted) if max would be
 * exceeded (max 0 = unlimited). */
bool iplimit_conn_acquire(struct iplimit *l,
    const struct sockaddr_storage *addr, unsigned max);
void iplimit_conn_release(struct iplimit *l,
    const struct sockaddr_storage *addr);
/* Records a failed login; returns recent failures from this IP. */
unsigned iplimit_fail(struct iplimit *l, const struct sockaddr_storage *addr);
unsigned iplimit_failures(struct iplimit *l,
    const struct sockaddr_storage *addr);
void iplimit_success(struct iplimit *l, const struct sockaddr_storage *addr);

#endif
