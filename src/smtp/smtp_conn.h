/*
 * smtp_conn.h - the smtp engine (smtp_session.h) on a listener: the
 * protocols "lmtp" (RFC 2033, for the MTA) and "smtp-sink" (the
 * development sink, not for the internet).  Recipients are looked up and
 * messages delivered (deliver.h) on the runtime's worker queue; the
 * event loop only moves bytes.
 */
#ifndef POSUTO_SMTP_CONN_H
#define POSUTO_SMTP_CONN_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct net_runtime;
struct smtp_conn;

/* What the smtp protocols keep beside the runtime (one per server). */
struct smtp_env {
	struct net_runtime *rt;
	unsigned idle_timeout;		/* s (TimeOut) */
	struct smtp_conn *sessions;	/* live sessions, for shutdown */
};

/* One listener's settings; given as the listener's protocol context. */
struct smtp_listen {
	struct smtp_env *env;
	bool sink;			/* "smtp-sink", else "lmtp" */
	uint64_t max_size;		/* MaxMessageSize */
	bool allow_remote;		/* sink: AllowNonLoopback */
};

/* At startup, before any listener is made: "lmtp" and "smtp-sink". */
void smtp_register(void);

/* Ends every session (shutdown); deliveries under way finish first
 * in their job, their replies go nowhere. */
void smtp_close_all(struct smtp_env *env);

#endif
