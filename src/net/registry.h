/*
 * registry.h - the live sessions of the server, for people and tools: who
 * is logged in, from where, doing what.  Written by the event loop threads
 * (every loop's sessions are in the one table) as sessions change, read
 * from any thread as a copy.
 *
 * A mutex-protected table with a snapshot-copy read, not a lock-free
 * structure: an entry is several fields that must be seen together (a
 * seqlock would need every field read into a copy anyway), writers only
 * hold the lock for a copy of a few dozen bytes (no syscall uncontended),
 * and readers are rare (an admin page, a SIGUSR1) and copy everything in
 * one short hold, so the loop thread never waits long.
 */
#ifndef POSUTO_NET_REGISTRY_H
#define POSUTO_NET_REGISTRY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct net_loop;
struct net_registry;

#define NET_REG_PROTO_LEN	8
#define NET_REG_USER_LEN	64	/* longer names are cut */
#define NET_REG_CLIENT_LEN	(INET6_ADDRSTRLEN + 8)
#define NET_REG_STATE_LEN	16
#define NET_REG_COMMAND_LEN	8	/* a verb, never its arguments */
/* Recent command lines kept per session, for the admin's Sessions page;
 * the protocol redacts them (passwords, SASL data) before they come here. */
#define NET_REG_HISTORY		16
#define NET_REG_HISTORY_LEN	72	/* longer lines are cut */

struct net_session_info {
	uint64_t id;
	char proto[NET_REG_PROTO_LEN];
	char user[NET_REG_USER_LEN];	/* "" before login */
	char client[NET_REG_CLIENT_LEN];
	char state[NET_REG_STATE_LEN];
	char command[NET_REG_COMMAND_LEN];	/* "" when none */
	time_t since;			/* wall clock of the connect */
	uint64_t bytes;			/* message octets sent */
	unsigned idle_timeout;		/* s, what the session was given */
	unsigned loop;			/* the event loop's index */
	/* Lines given so far; the last min(n_history, NET_REG_HISTORY) are
	 * kept: line k (0 the oldest kept) is net_registry_history_at(). */
	uint64_t n_history;
	/* In a snapshot: those lines, each NUL-terminated, oldest first,
	 * in the snapshot's own block (NULL when none). */
	const char *history;
};
/* How many lines info keeps, and the k-th oldest of them. */
unsigned net_registry_history_count(const struct net_session_info *info);
const char *net_registry_history_at(const struct net_session_info *info,
    unsigned k);

struct net_registry *net_registry_new(void);
void net_registry_free(struct net_registry **r);
/* A new entry; returns its slot for the calls below. */
int net_registry_add(struct net_registry *r, uint64_t id, const char *proto,
    const char *client);
void net_registry_remove(struct net_registry *r, int slot);
void net_registry_set_user(struct net_registry *r, int slot,
    const char *user);
void net_registry_set_state(struct net_registry *r, int slot,
    const char *state);
void net_registry_set_command(struct net_registry *r, int slot,
    const char *verb);
void net_registry_set_bytes(struct net_registry *r, int slot,
    uint64_t bytes);
void net_registry_set_idle_timeout(struct net_registry *r, int slot,
    unsigned secs);
/* Appends a (redacted) command line; control bytes become '?'. */
void net_registry_add_history(struct net_registry *r, int slot,
    const char *line, size_t len);
/* What owns the entry (its struct conn) and the loop (struct net_loop)
 * whose thread alone may touch it.  net_registry_owner(): on that
 * loop's thread, the owner of session id if it runs on loop, or NULL. */
void net_registry_set_owner(struct net_registry *r, int slot, void *owner,
    struct net_loop *loop);
void *net_registry_owner(struct net_registry *r, uint64_t id,
    struct net_loop *loop);
/* Any thread: the loop session id runs on, or NULL (none, or no loop). */
struct net_loop *net_registry_loop(struct net_registry *r, uint64_t id);
/* Whether session id is live (any thread). */
bool net_registry_has(struct net_registry *r, uint64_t id);
/* Live entries, copied into a malloc'd array (*out_r, free() it; NULL
 * when there are none), in no particular order. */
size_t net_registry_snapshot(struct net_registry *r,
    struct net_session_info **out_r);
size_t net_registry_count(struct net_registry *r);

#endif
