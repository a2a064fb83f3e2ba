/*
 * mailevents.h - what POP3 sessions did to messages, for the web admin's
 * mailbox viewer: "retrieved by session S at T", "marked for deletion in
 * session S", "deleted at QUIT by S".
 *
 * A small ring in memory (the newest NET_MAILEV_MAX events), not a log:
 * the viewer shows recent activity, and a restart forgets it.  Writers
 * (the POP3 loop on RETR/TOP/DELE/RSET, a worker at the QUIT commit) hold
 * a mutex for one fixed-size copy; readers (the admin thread) copy what
 * they need under the same mutex.  No allocation after the first call.
 */
#ifndef POSUTO_NET_MAILEVENTS_H
#define POSUTO_NET_MAILEVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define NET_MAILEV_MAX		4096
#define NET_MAILEV_USER_LEN	64	/* longer names are not recorded */
#define NET_MAILEV_UIDL_LEN	72	/* RFC 1939: at most 70 */

enum net_mailev_kind {
	NET_MAILEV_RETRIEVED = 1,	/* RETR (TOP counts as well) */
	NET_MAILEV_MARKED,		/* DELE */
	NET_MAILEV_UNMARKED,		/* RSET, or a session ended without QUIT */
	NET_MAILEV_DELETED,		/* removed in UPDATE after QUIT */
};

struct net_mailev {
	uint64_t seq;			/* 1, 2, ...: order of recording */
	enum net_mailev_kind kind;
	uint64_t session;		/* the session id of the log */
	time_t when;
	char user[NET_MAILEV_USER_LEN];
	char uidl[NET_MAILEV_UIDL_LEN];	/* "" for UNMARKED of a whole session */
};

/* Records one event (any thread).  uidl NULL or "" with UNMARKED: every
 * mark of that session is lifted. */
void net_mailev_record(enum net_mailev_kind kind, const char *user,
    const char *uidl, uint64_t session);
/* The sequence number of the newest event (0: none yet); cheap, lock-free:
 * a viewer polls it to know whether to look again. */
uint64_t net_mailev_seq(void);
/* Copies the events of user newer than after_seq, oldest first, into out
 * (at most max); returns how many. */
size_t net_mailev_copy(const char *user, uint64_t after_seq,
    struct net_mailev *out, size_t max);

#endif
