/*
 * listener.c - socket(), bind(), listen() with the options a server wants,
 * and the stages a new connection runs before its protocol.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/protocol.h"
#include "net/runtime.h"

#define LISTEN_BACKLOG 4096

int
listener_open(const char *address, uint16_t port, char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		sslen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, address,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		sslen = sizeof(*s6);
	} else {
		snprintf(err, errsz, "%s: not a numeric IPv4 or IPv6 address",
		    address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errsz, "cannot listen on %s%s%s:%u: %s",
		    ss.ss_family == AF_INET6 ? "[" : "", address,
		    ss.ss_family == AF_INET6 ? "]" : "", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct net_listener *
net_listener_new(struct net_runtime *rt, const char *proto, void *proto_ctx,
    enum net_tls_mode tls_mode, const char *name)
{
	const struct net_protocol *p = net_protocol_find(proto);
	struct net_listener *l;

	if (p == NULL)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->rt = rt;
	l->proto = p;
	l->proto_index = net_protocol_index(p);
	l->proto_ctx = proto_ctx;
	l->tls_mode = tls_mode;
	snprintf(l->name, sizeof(l->name), "%s", name);
	rt->listeners = xreallocarray(rt->listeners, rt->n_listeners + 1,
	    sizeof(*rt->listeners));
	rt->listeners[rt->n_listeners++] = l;
	return l;
}

void
net_listener_free(struct net_listener **lp)
{
	struct net_listener *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	free(l->proxy_trusted);
	free(l);
}

bool
net_cidr_parse(const char *s, struct net_cidr *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint32_t bits;
	unsigned max;

	memset(out, 0, sizeof(*out));
	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	bits = max;
	if (slash != NULL &&
	    (!parse_u32(slash + 1, strlen(slash + 1), &bits) || bits > max))
		return false;
	out->bits = bits;
	/* host bits set: a typo ("10.0.0.1/8"), not what was meant */
	for (unsigned i = bits; i < max; i++)
		if (out->addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	return true;
}

static bool
net_cidr_match_one(const struct net_cidr *c, const uint8_t *a, int family)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family || memcmp(c->addr, a, full) != 0)
		return false;
	return rest == 0 ||
	    ((c->addr[full] ^ a[full]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

bool
net_cidr_match(const struct net_cidr *list, size_t n,
    const struct sockaddr_storage *addr)
{
	const uint8_t *a;
	int family = addr->ss_family;

	if (family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)addr)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)
		    (const void *)addr)->sin6_addr;

		a = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			a += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (net_cidr_match_one(&list[i], a, family))
			return true;
	return false;
}

bool
net_listener_trust_proxy(struct net_listener *l, const char *s)
{
	struct net_cidr c;

	if (!net_cidr_parse(s, &c))
		return false;
	l->proxy_trusted = xreallocarray(l->proxy_trusted,
	    l->n_proxy_trusted + 1, sizeof(*l->proxy_trusted));
	l->proxy_trusted[l->n_proxy_trusted++] = c;
	return true;
}

static void
net_close_fds(int rfd, int wfd)
{
	close(rfd);
	if (wfd != rfd)
		close(wfd);
}

/*
 * TLS (implicit mode), then the protocol.  client: the address a PROXY
 * header gave, or NULL (the socket's peer is the client).
 */
static bool
net_listener_run(struct net_listener *l, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr_storage *client)
{
	struct net_runtime *rt = l->rt;
	struct tls_ctx *tls = NULL;
	struct sockaddr_storage ss;
	struct conn *c;

	if (l->tls_mode == NET_TLS_IMPLICIT) {
		tls = rt->gen != NULL ? rt->gen->tls : NULL;
		if (tls == NULL || rfd != wfd) {
			net_close_fds(rfd, wfd);
			return true;
		}
	}
	if (client == NULL && peer != NULL && peerlen <= sizeof(ss)) {
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, peer, peerlen);
		client = &ss;
	}
	/* Refusals cost no connection and no handshake. */
	if (l->proto->admit != NULL && rfd == wfd && client != NULL &&
	    !l->proto->admit(l->proto_ctx, rfd, client, tls != NULL)) {
		close(rfd);
		return true;
	}
	c = conn_new(rt->base, rfd, wfd, peer, peerlen, tls, NULL, NULL);
	if (c == NULL) {
		net_close_fds(rfd, wfd);
		return false;
	}
	if (client != NULL && client != &ss)
		conn_set_client(c, client);
	conn_attach(c, rt, l->proto_index, l->proto->name, ++rt->next_id);
	return l->proto->start(l->proto_ctx, c);
}

bool
net_listener_accept(struct net_listener *l, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct sockaddr_storage ss;

	/*
	 * The PROXY stage: a trusted peer (haproxy) names the client in a
	 * header before anything else.  The header reader is not written
	 * yet, so such a connection is refused rather than served with the
	 * proxy's address as the client's (fail closed: a local proxy would
	 * make every client look local).
	 */
	if (l->n_proxy_trusted > 0 && peer != NULL && peerlen <= sizeof(ss)) {
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, peer, peerlen);
		if (net_cidr_match(l->proxy_trusted, l->n_proxy_trusted, &ss)) {
			log_warnx("%s: PROXY header from a trusted peer: not "
			    "supported yet, connection closed", l->name);
			net_close_fds(rfd, wfd);
			return true;
		}
	}
	return net_listener_run(l, rfd, wfd, peer, peerlen, NULL);
}
