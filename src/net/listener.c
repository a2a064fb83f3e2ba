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
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/cidr.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/protocol.h"
#include "net/proxy.h"
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

int
listener_open_unix(const char *path, const char *mode, const char *owner,
    const char *group, char *err, size_t errsz)
{
	struct sockaddr_un sun;
	struct stat st;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	unsigned long m = 0660;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "%s: path too long for a unix socket", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if (mode != NULL) {
		m = 0;
		for (const char *p = mode; *p != '\0'; p++) {
			if (*p < '0' || *p > '7' || m > 07777) {
				snprintf(err, errsz, "%s: bad Mode %s", path,
				    mode);
				return -1;
			}
			m = m * 8 + (unsigned long)(*p - '0');
		}
	}
	if (owner != NULL) {
		struct passwd *pw = getpwnam(owner);
		if (pw == NULL) {
			snprintf(err, errsz, "%s: no user %s", path, owner);
			return -1;
		}
		uid = pw->pw_uid;
	}
	if (group != NULL) {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			snprintf(err, errsz, "%s: no group %s", path, group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	/* A socket left by a previous run is in the way of bind(); anything
	 * else at that path (a file, a directory) is not ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsz, "%s exists and is not a socket: "
			    "not removed", path);
			return -1;
		}
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(err, errsz, "cannot remove stale socket %s: %s",
			    path, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    chmod(path, (mode_t)(m & 07777)) != 0 ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    chown(path, uid, gid) != 0) ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", path,
		    strerror(errno));
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
	l->base = rt->base;
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
net_listener_trust_proxy(struct net_listener *l, const char *s)
{
	struct cidr *list;
	size_t n;

	if (!cidr_list_parse(s, &list, &n, NULL))
		return false;
	l->proxy_trusted = xreallocarray(l->proxy_trusted,
	    l->n_proxy_trusted + n, sizeof(*l->proxy_trusted));
	memcpy(l->proxy_trusted + l->n_proxy_trusted, list, n * sizeof(*list));
	l->n_proxy_trusted += n;
	free(list);
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
 * header gave, or NULL (the socket's peer is the client); proxied: a
 * trusted peer's header was read (a v2 LOCAL one names no client).
 */
static bool
net_listener_run(struct net_listener *l, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr_storage *client, bool proxied)
{
	struct net_runtime *rt = l->rt;
	struct tls_ctx *tls = NULL;
	struct sockaddr_storage ss;
	struct conn *c;

	if (l->tls_mode == NET_TLS_IMPLICIT) {
		struct net_gen *g = net_runtime_gen(rt);

		tls = g != NULL ? g->tls : NULL;
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
	c = conn_new(l->base, rfd, wfd, peer, peerlen, tls, NULL, NULL);
	if (c == NULL) {
		net_close_fds(rfd, wfd);
		return false;
	}
	if (client != NULL && client != &ss)
		conn_set_client(c, client);
	else if (l->n_proxy_trusted > 0 && !proxied)
		conn_refuse_proxy_header(c);
	conn_attach(c, rt, l->proto_index, l->proto->name, net_runtime_next_id(rt));
	return l->proto->start(l->proto_ctx, c);
}

/* A trusted peer's connection while its PROXY header comes in. */
struct net_proxy_wait {
	struct net_listener *l;
	int fd;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct event *ev;
	size_t have;			/* header octets already consumed */
	uint8_t buf[NET_PROXY_MAX];
};

static void
net_proxy_done(struct net_proxy_wait *w, const struct sockaddr_storage *client)
{
	struct net_listener *l = w->l;
	struct sockaddr_storage peer = w->peer;
	socklen_t peerlen = w->peerlen;
	int fd = w->fd;

	event_free(w->ev);
	free(w);
	if (client == NULL) {
		close(fd);
		return;
	}
	(void)net_listener_run(l, fd, fd, (struct sockaddr *)&peer, peerlen,
	    client->ss_family != AF_UNSPEC ? client : NULL, true);
}

/*
 * Reads the header without ever taking a byte past it: the bytes are
 * peeked, and consumed only as far as they are header (an incomplete
 * header is header to its last byte), so what follows is left in the
 * socket for the TLS handshake or the protocol.
 */
static void
net_proxy_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct net_proxy_wait *w = arg;
	struct sockaddr_storage client;
	enum net_proxy_result r;
	size_t hlen = 0;
	uint8_t sink[NET_PROXY_MAX];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		log_info("%s: no PROXY header from a trusted peer in %u s",
		    w->l->name, NET_PROXY_TIMEOUT);
		net_proxy_done(w, NULL);
		return;
	}
	n = recv(fd, w->buf + w->have, sizeof(w->buf) - w->have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		net_proxy_done(w, NULL);
		return;
	}
	r = net_proxy_parse(w->buf, w->have + (size_t)n, &hlen, &client);
	if (r == NET_PROXY_BAD) {
		log_warnx("%s: bad PROXY header from a trusted peer: connection "
		    "closed", w->l->name);
		net_proxy_done(w, NULL);
		return;
	}
	if (r == NET_PROXY_MORE)
		hlen = w->have + (size_t)n;
	/* What was peeked is there: this recv() takes exactly it. */
	if (recv(fd, sink, hlen - w->have, 0) != (ssize_t)(hlen - w->have)) {
		net_proxy_done(w, NULL);
		return;
	}
	w->have = hlen;
	if (r == NET_PROXY_OK)
		net_proxy_done(w, &client);
}

static bool
net_proxy_begin(struct net_listener *l, int fd,
    const struct sockaddr_storage *peer, socklen_t peerlen)
{
	struct net_proxy_wait *w = xcalloc(1, sizeof(*w));
	struct timeval tv = { .tv_sec = NET_PROXY_TIMEOUT };

	w->l = l;
	w->fd = fd;
	w->peer = *peer;
	w->peerlen = peerlen;
	w->ev = event_new(l->base, fd, EV_READ | EV_PERSIST,
	    net_proxy_on_read, w);
	if (w->ev == NULL || event_add(w->ev, &tv) != 0) {
		if (w->ev != NULL)
			event_free(w->ev);
		free(w);
		close(fd);
		return false;
	}
	return true;
}

bool
net_listener_accept(struct net_listener *l, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct sockaddr_storage ss;

	/*
	 * The PROXY stage: a trusted peer (haproxy) names the client in a
	 * header before anything else, and must (a peer that may send one
	 * and does not would pass for its clients).  From anyone else no
	 * header is read: it would be the client's first bytes.
	 */
	if (l->n_proxy_trusted > 0 && rfd == wfd && peer != NULL &&
	    peerlen <= sizeof(ss)) {
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, peer, peerlen);
		if (cidr_match(l->proxy_trusted, l->n_proxy_trusted, &ss))
			return net_proxy_begin(l, rfd, &ss, peerlen);
	}
	return net_listener_run(l, rfd, wfd, peer, peerlen, NULL, false);
}
