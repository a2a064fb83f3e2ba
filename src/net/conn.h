/*
 * conn.h - one client connection, whatever the protocol: bytes in, bytes
 * out (with flow control and sendfile()), timeouts, TLS, the client's
 * address, and the connection's entry in the runtime (counters, registry).
 *
 * The protocol sees two evbuffers and a few events; whether TLS is on
 * (implicit, or after STARTTLS) is hidden here.  Over libevent
 * bufferevents.
 */
#ifndef POSUTO_CONN_H
#define POSUTO_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "net/runtime.h"

struct event_base;
struct evbuffer;
struct tls_ctx;
struct conn;

enum conn_event {
	CONN_EV_READ,		/* new input is in conn_in() */
	CONN_EV_DRAINED,	/* output fell to the conn_want_drained() mark */
	CONN_EV_TLS_READY,	/* TLS handshake completed */
	CONN_EV_TIMEOUT,	/* idle timeout: no input (or output progress) */
	CONN_EV_CLOSED,		/* peer closed, I/O or TLS error */
};

typedef void conn_cb(struct conn *c, enum conn_event ev, void *ctx);

/*
 * Wraps connected fds (rfd == wfd for a socket; inetd mode over pipes may
 * differ).  peer is the address accept() returned (then rfd is already
 * non-blocking), or NULL to look it up; it is the socket's peer, and the
 * client's address until conn_set_client() says otherwise.  If tls is set
 * the connection starts with a TLS handshake (implicit TLS); output
 * written meanwhile is sent once it completes.  cb may be NULL until
 * conn_set_handler().  Takes ownership of the fds (not on failure).
 * A server's connections come from net_listener_accept() (listener.h).
 */
struct conn *conn_new(struct event_base *base, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen, struct tls_ctx *tls,
    conn_cb *cb, void *ctx);
/* A healthy TLS connection sends its close_notify first; if the socket
 * cannot take it at once, the connection stays behind without its owner
 * until it has (at most TLS_SHUTDOWN_TIMEOUT s). */
void conn_free(struct conn **c);
/* Connections of the calling loop still sending a close_notify after
 * conn_free(). */
unsigned conn_lingering(void);
/* Closes the calling loop's at once (exit: it will not run again). */
void conn_lingering_free_all(void);

void conn_set_handler(struct conn *c, conn_cb *cb, void *ctx);
/* The client named by a PROXY header (before conn_attach()). */
void conn_set_client(struct conn *c, const struct sockaddr_storage *client);
/* Gives the connection its id, counts it and enters it in rt's registry
 * under proto (net_listener does this); until conn_free(). */
void conn_attach(struct conn *c, struct net_runtime *rt, unsigned proto,
    const char *proto_name, uint64_t id);
/* Its id (0 when not attached): the session id in the log. */
/* On a listener that reads PROXY headers from trusted peers, a peer that
 * is not one and starts with a header is closed on its first bytes (a
 * proxy sending from the wrong address, or a client posing as one),
 * rather than served as if it had sent a command. */
void conn_refuse_proxy_header(struct conn *c);
uint64_t conn_id(const struct conn *c);

/* What the registry shows of the session (no-ops when not attached).
 * command: the verb alone, never arguments (a password could be one). */
void conn_info_user(struct conn *c, const char *user);
void conn_info_state(struct conn *c, const char *state);
void conn_info_command(struct conn *c, const char *verb);
void conn_info_bytes(struct conn *c, uint64_t bytes);
void conn_info_idle_timeout(struct conn *c, unsigned secs);
/* A recent command line for the admin's Sessions page: the protocol
 * passes it redacted (no password, digest or SASL data ever). */
void conn_info_history(struct conn *c, const char *line, size_t len);

/*
 * What ends the session when an administrator kicks it: the loop thread
 * calls fn(ctx) (net_runtime_kick() queues the request there); a
 * connection without one cannot be kicked.
 */
typedef void conn_kick_fn(void *ctx);
void conn_set_kick(struct conn *c, conn_kick_fn *fn, void *ctx);
/* Loop thread: false if c has no kick function. */
bool conn_kick(struct conn *c);
/* The protocol's counters in the runtime (no-ops when not attached). */
void conn_count(struct conn *c, enum net_counter k, uint64_t n);
void conn_count_login_failed(struct conn *c, const char *reason);

struct evbuffer *conn_in(struct conn *c);
struct evbuffer *conn_out(struct conn *c);

/* Idle timeout in seconds for reading and for output progress. */
void conn_set_timeout(struct conn *c, unsigned secs);
/* A TLS handshake (implicit or after STARTTLS) must be over this many seconds
 * after it began, or CONN_EV_CLOSED comes with conn_tls_error() set. */
void conn_set_handshake_timeout(struct conn *c, unsigned secs);
/* Why the TLS handshake failed ("unsupported protocol", "handshake timed
 * out"), once CONN_EV_CLOSED came during it; NULL otherwise. */
const char *conn_tls_error(const struct conn *c);
/*
 * Event priorities of the loop (event_base_priority_init(CONN_PRIORITIES)
 * by the caller): a connection streaming a big reply is served after
 * everything else that is ready, so one that sends a command is answered
 * in a fraction of a millisecond however many others stream.
 */
#define CONN_PRIORITIES	3
#define CONN_PRI_NORMAL	1	/* libevent's default: timers, jobs, accepts */
#define CONN_PRI_BULK	2
void conn_set_bulk(struct conn *c, bool bulk);
/* Deliver CONN_EV_DRAINED once buffered output is at most low bytes. */
void conn_want_drained(struct conn *c, size_t low);
/* Bytes queued to be sent; 0 once the output is dead. */
size_t conn_out_pending(struct conn *c);
/* Bytes queued that never left, even once the output is dead. */
size_t conn_out_unsent(struct conn *c);
/* A write failed (or the connection broke): nothing queued will be sent
 * and CONN_EV_DRAINED will not come.  Set before CONN_EV_CLOSED. */
bool conn_out_dead(const struct conn *c);
/* Nothing more is sent, and closing resets the connection (the kernel
 * drops what it still holds): a reply cut short must not end the way a
 * whole one does.  The caller then frees the connection. */
void conn_abort(struct conn *c);

/*
 * STARTTLS: discards every byte the client sent so far (CVE-2011-0411),
 * stops reading, waits until the output (the reply that says yes) is
 * flushed, then
 * starts the handshake.  CONN_EV_TLS_READY or CONN_EV_CLOSED follows.
 */
void conn_starttls(struct conn *c, struct tls_ctx *tls);
bool conn_tls_active(const struct conn *c);
/* True if STARTTLS is possible at all (a socket, not inetd pipes). */
bool conn_tls_possible(const struct conn *c);
/* Channel binding of the TLS session (see tls.h); false if none. */
bool conn_channel_binding(struct conn *c, const char **type_r,
    unsigned char *buf, size_t bufsz, size_t *len_r);
void conn_tls_describe(struct conn *c, char *buf, size_t bufsz);

/* How conn_send_file() sends a file segment. */
enum conn_sendfile {
	CONN_SENDFILE_NONE,	/* it cannot: the caller reads and writes */
	CONN_SENDFILE_PLAIN,	/* sendfile() on a plain socket */
	CONN_SENDFILE_KTLS,	/* SSL_sendfile(): kernel TLS encrypts it */
};
/*
 * The decision, from what the connection is: TLS on, kernel TLS holding
 * its send side (known once the handshake is done), the output its own
 * socket (not inetd's second pipe), a write rate limit set.
 */
enum conn_sendfile conn_sendfile_path(bool tls, bool ktls_send, bool own_fd,
    bool rate_limited);
/* sendfile() (or SSL_sendfile()) can be used for output. */
bool conn_can_sendfile(const struct conn *c);
/*
 * Queues len bytes of fd from off after what conn_out() holds, to leave
 * by sendfile() (never read into memory); fd is duplicated, the caller
 * keeps its own.  False (nothing queued) when the connection cannot
 * (TLS without kernel TLS, pipes, output dead) or the kernel refuses:
 * send the bytes another way.  Over kernel TLS nothing else may be
 * queued until it has left (CONN_EV_DRAINED).  The bytes are read when they are sent, so a file truncated
 * meanwhile sends less and the connection then ends (CONN_EV_CLOSED):
 * the caller checks its file once CONN_EV_DRAINED(0) says it left.
 */
bool conn_send_file(struct conn *c, int fd, off_t off, off_t len);

/*
 * The client: the socket's peer, or whom a trusted PROXY header named.
 * Everything about the client (limits, the log, "is plaintext safe")
 * asks these, never the socket.
 */
/*
 * Writes at most bytes_per_sec from now on (a fault for testers: a slow
 * link).  Replies then go through the bufferevent's rate limit rather
 * than straight from the stage, and sendfile() is off.
 */
void conn_set_write_rate(struct conn *c, unsigned bytes_per_sec);

/* "ip:port" of the client ("stdin" for pipes). */
const char *conn_client(const struct conn *c);
/* Its address (family AF_UNSPEC for pipes). */
const struct sockaddr_storage *conn_client_addr(const struct conn *c);
/* Loopback client or a pipe: traffic never leaves the machine. */
bool conn_client_local(const struct conn *c);
/* The socket's own peer (a proxy's address behind one). */
const struct sockaddr *conn_socket_peer(const struct conn *c);

#endif
