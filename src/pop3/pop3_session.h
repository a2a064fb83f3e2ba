/*
 * pop3_session.h - one POP3 session: the RFC 1939 state machine over a
 * conn, with its mailbox.  Also what POP3 adds to the server runtime.
 */
#ifndef POP3_SESSION_H
#define POP3_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/log.h"

struct conn;
struct event_base;
struct net_protocol;
struct net_runtime;
struct userdb;
struct tls_ctx;
struct pop3_session;

/* Tunables sessions read live; the daemon updates them on SIGHUP. */
struct pop3_params {
	unsigned idle_timeout;		/* s */
	unsigned session_timeout;	/* s, 0 = none */
	unsigned auth_fail_delay_ms;
	unsigned max_bad_commands;
	unsigned max_connections;	/* 0 = unlimited */
	unsigned max_connections_per_ip;
	unsigned line_timeout;		/* s: a line or TLS handshake */
	unsigned max_connect_rate_per_ip;	/* per minute, 0 = unlimited */
	bool limit_loopback;		/* per-IP limits for loopback too */
	bool allow_plaintext_auth;
	/* SaslMechanisms: bit (1u << enum sasl_mech) per mechanism; when
	 * !sasl_mechs_set, the default (see pop3_sasl_mech_enabled()). */
	bool sasl_mechs_set;
	unsigned sasl_mechs;
};

/* What POP3 keeps beside the runtime (rt: listeners, the configuration
 * generation, counters, the registry); owned by the daemon, lives until
 * exit.  The ctx of POP3 listeners: one per event loop, touched only by
 * that loop's thread (a reload hands it new params there). */
struct pop3_env {
	struct net_runtime *rt;
	struct event_base *base;	/* its loop's; NULL: rt->base */
	struct pop3_params params;
	char hostname[256];
	unsigned n_sessions;		/* this loop's */
	/* Every loop's sessions (MaxConnections); NULL: n_sessions. */
	atomic_uint *n_all;
	struct pop3_session *sessions;	/* all live sessions, for shutdown */
	struct pop3_expiry *expiry;	/* daemon's expiry job (pop3_policy.h) */
};

/* The protocol table ("pop3"); pop3_register() enters it. */
extern const struct net_protocol pop3_protocol;
/* At startup, before any listener is made. */
void pop3_register(void);

/* The loop its sessions' timers run on. */
struct event_base *pop3_env_base(const struct pop3_env *env);
/* The current generation's users and TLS context (NULL: no STLS/POP3S). */
struct userdb *pop3_env_userdb(const struct pop3_env *env);
struct tls_ctx *pop3_env_tls(const struct pop3_env *env);

/*
 * Starts a session on c (its handler is set here): greets and runs until
 * the session ends, then frees itself.  Returns false if it could not
 * start (c is freed either way).
 */
bool pop3_session_start(struct pop3_env *env, struct conn *c);

/* Ends every session without UPDATE (nothing is deleted): shutdown. */
void pop3_session_close_all(struct pop3_env *env);

#endif
