/*
 * protocol.h - what a listener serves.  A protocol is a table of calls
 * looked up by name; net runs the stages every connection has (PROXY
 * header, TLS) and then hands the connection to the protocol's start.
 * The first protocol registers itself; LMTP and HTTP do the same from their own
 * directories, without touching another protocol's code.
 */
#ifndef POSUTO_NET_PROTOCOL_H
#define POSUTO_NET_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct conn;

/* Protocols one process serves at most (each has its counters). */
#define NET_PROTOCOL_MAX	8

struct net_protocol {
	const char *name;	/* lower case, as a listener names it */
	/*
	 * Optional, before anything is built for the connection (no conn,
	 * no TLS): client is final (after PROXY).  False refuses it; the
	 * protocol may first send a line of its own on fd (tls false only)
	 * with a non-blocking send(); net closes fd.
	 */
	bool (*admit)(void *ctx, int fd, const struct sockaddr_storage *client,
	    bool tls);
	/*
	 * The connection is the protocol's from here: client address final,
	 * implicit TLS (if the listener has it) under way, so output queued
	 * now is sent once the handshake is over.  It sets its handler with
	 * conn_set_handler() and frees c when done.  False if it could not
	 * start (c is freed).
	 */
	bool (*start)(void *ctx, struct conn *c);
};

/* At startup, before any thread: false if the name is taken or the
 * table is full. */
bool net_protocol_register(const struct net_protocol *p);
const struct net_protocol *net_protocol_find(const char *name);
/* Its slot (counters): 0 .. net_protocol_count() - 1. */
unsigned net_protocol_index(const struct net_protocol *p);
unsigned net_protocol_count(void);
const struct net_protocol *net_protocol_at(unsigned i);

#endif
