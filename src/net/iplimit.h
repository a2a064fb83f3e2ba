/*
 * iplimit.h - per client IP accounting: concurrent connections, the rate
 * of new connections, and recent failed logins (the penalty grows with
 * them, like Dovecot's auth penalty).  Shared by the event loops (one
 * table, locked inside).
 */
#ifndef POSUTO_IPLIMIT_H
#define POSUTO_IPLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
/*
 * Token bucket of new connections: up to per_minute at once, refilled at
 * per_minute a minute (0 = unlimited).  now_ms: a monotonic clock.
 * Returns false if this connection is over the rate (nothing counted);
 * then *refused_r is how many were refused in a row from this address.
 */
bool iplimit_connect_rate(struct iplimit *l,
    const struct sockaddr_storage *addr, unsigned per_minute,
    uint64_t now_ms, unsigned *refused_r);
/* 127.0.0.0/8, ::1 and v4-mapped 127/8: traffic that never leaves the host. */
bool iplimit_is_loopback(const struct sockaddr_storage *addr);
/* Addresses tracked (for tests). */
size_t iplimit_entries(struct iplimit *l);
/* Records a failed login; returns recent failures from this IP. */
unsigned iplimit_fail(struct iplimit *l, const struct sockaddr_storage *addr);
unsigned iplimit_failures(struct iplimit *l,
    const struct sockaddr_storage *addr);
void iplimit_success(struct iplimit *l, const struct sockaddr_storage *addr);

#endif
