/*
 * listener.h - what a listening socket serves, and the stages every new
 * connection runs through before its protocol sees it: the PROXY header
 * (from trusted networks only), then TLS (implicit mode), then the
 * protocol's start.
 */
#ifndef POSUTO_LISTENER_H
#define POSUTO_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct net_protocol;
struct net_runtime;
struct cidr;

enum net_tls_mode {
	NET_TLS_NONE = 0,	/* plain, TLS never offered */
	NET_TLS_STARTTLS,	/* plain, the protocol may upgrade (STARTTLS) */
	NET_TLS_IMPLICIT,	/* TLS from the first byte */
};

struct net_listener {
	struct net_runtime *rt;
	/* The loop its connections run on (rt->base unless the daemon
	 * says otherwise): one description per loop and socket. */
	struct event_base *base;
	const struct net_protocol *proto;
	unsigned proto_index;		/* its counters */
	void *proto_ctx;		/* given to proto->admit and ->start */
	enum net_tls_mode tls_mode;
	/* Peers allowed to say who the client is with a PROXY header
	 * (haproxy); from any other peer no header is read. */
	struct cidr *proxy_trusted;
	size_t n_proxy_trusted;
	char name[80];			/* for the log */
};

/* Binds address:port (numeric IPv4/IPv6; IPv6 sockets are V6ONLY so "::"
 * and "0.0.0.0" can coexist) and listens.  Returns the fd or -1 with a
 * reason in err. */
int listener_open(const char *address, uint16_t port, char *err,
    size_t errsz);

/* Binds and listens on a unix socket at path (a stale socket there is
 * removed; anything else is left and refused), chmod mode (octal text,
 * NULL = 0660), chown owner/group (NULL = unchanged).  fd or -1. */
int listener_open_unix(const char *path, const char *mode, const char *owner,
    const char *group, char *err, size_t errsz);

/* A listener description, kept by rt (freed with it); name for the log.
 * NULL if proto is not registered. */
struct net_listener *net_listener_new(struct net_runtime *rt,
    const char *proto, void *proto_ctx, enum net_tls_mode tls_mode,
    const char *name);
void net_listener_free(struct net_listener **l);
/* Adds blocks ("127.0.0.1 10.0.0.0/8", lib/cidr.h) to the PROXY-trusted
 * networks; false (nothing added) if s does not parse. */
bool net_listener_trust_proxy(struct net_listener *l, const char *s);

/*
 * Runs a new connection (rfd == wfd for a socket; inetd over pipes may
 * differ) through its stages.  peer: from accept(), or NULL to look it
 * up.  Takes the fds.  False if it could not be started at all.
 */
bool net_listener_accept(struct net_listener *l, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen);

#endif
