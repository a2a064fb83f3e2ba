/*
 * pop3_session.h - one POP3 session: the RFC 1939 state machine over a
 * conn, with its mailbox.  Also the environment all sessions share.
 */
#ifndef POP3_SESSION_H
#define POP3_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/log.h"

struct event_base;
struct workq;
struct userdb;
struct tls_ctx;
struct iplimit;
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

/* Shared by all sessions; owned by the daemon, lives until exit. */
struct pop3_env {
	struct event_base *base;
	struct workq *wq;
	/* Work no client waits for (wire cache copies): never delays a
	 * login behind it.  NULL: none is done. */
	struct workq *bgq;
	struct userdb *db;		/* current snapshot; sessions take refs */
	struct tls_ctx *tls;		/* current, or NULL: no STLS/POP3S */
	struct iplimit *iplimit;
	struct pop3_params params;
	char hostname[256];
	uint64_t next_id;
	unsigned n_sessions;
	struct pop3_session *sessions;	/* all live sessions, for shutdown */
	struct pop3_expiry *expiry;	/* daemon's expiry job (pop3_policy.h) */
	bool shutting_down;
};

/*
 * Starts a session on connected fds (rfd == wfd for sockets): greets and
 * runs until the session ends, then frees itself.  peer: from accept(),
 * or NULL (inetd: looked up).  tls: implicit TLS
 * (POP3S) context, or NULL.  Returns false if it could not start (fds are
 * closed either way).
 */
bool pop3_session_start(struct pop3_env *env, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen, struct tls_ctx *tls);

/* Ends every session without UPDATE (nothing is deleted): shutdown. */
void pop3_session_close_all(struct pop3_env *env);

#endif
