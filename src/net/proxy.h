/*
 * proxy.h - the PROXY protocol header (haproxy's proxy-protocol.txt,
 * versions 1 and 2) that a trusted proxy sends before the client's first
 * byte, naming the client.  Read only from peers in a listener's trusted
 * networks (listener.h); never from anyone else.
 */
#ifndef POSUTO_NET_PROXY_H
#define POSUTO_NET_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest header accepted: v1's limit is 107; v2 is 16 octets plus
 * addresses and TLVs, which we bound. */
#define NET_PROXY_V2_MAX_BODY	512
#define NET_PROXY_MAX		(16 + NET_PROXY_V2_MAX_BODY)
/* Seconds a trusted peer has to send it. */
#define NET_PROXY_TIMEOUT	10

enum net_proxy_result {
	NET_PROXY_MORE = 0,	/* incomplete: every byte so far is header */
	NET_PROXY_OK,		/* *len_r octets are the header */
	NET_PROXY_BAD,		/* not a header we accept: close */
};

/*
 * Parses the start of buf.  OK: *len_r is the header's length and
 * *client_r the client (TCP over IPv4 or IPv6), or family AF_UNSPEC for
 * a v2 LOCAL header (the proxy speaking for itself: the socket's peer is
 * the client).  "PROXY UNKNOWN", UDP and UNIX sources are refused: the
 * client would otherwise take the proxy's (often loopback) address.
 */
enum net_proxy_result net_proxy_parse(const uint8_t *buf, size_t len,
    size_t *len_r, struct sockaddr_storage *client_r);

#endif
