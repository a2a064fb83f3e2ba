/* conn.c - bufferevent-backed connections, plain or TLS, any protocol. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lib/log.h"
#include "lib/params.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/loop.h"
#include "net/registry.h"
#include "net/runtime.h"
#include "net/tls.h"

struct conn {
	struct event_base *base;
	int rfd, wfd;
	struct bufferevent *bev;	/* reads (and writes when rfd == wfd) */
	struct bufferevent *wbev;	/* writes when rfd != wfd, else NULL */
	struct evbuffer *stage;		/* plain socket: replies of this turn */
	struct ev_token_bucket_cfg *rate;	/* conn_set_write_rate() */
	struct event *flush_ev;		/* sends the stage once the turn ends */
	SSL *ssl;			/* owned by bev when TLS is on */
	struct tls_ctx *tls_pending;	/* STARTTLS: handshake once flushed */
	bool tls;
	bool handshaking;
	bool in_full;			/* input at CONN_INPUT_MAX: not reading */
	bool want_drained;
	bool bulk;			/* at CONN_PRI_BULK */
	bool out_dead;			/* a write failed: output is discarded */
	bool proxy_refuse;		/* first bytes a PROXY header: close */
	bool ktls_send;			/* kernel TLS has the send side */
	/* conn_send_file() over kernel TLS: the segment left to send, once
	 * the bufferevent's output (what came before it) is written. */
	int kfd;
	off_t koff, klen;
	struct event *kev;		/* socket writable, or a turn passed */
	size_t drained_low;
	unsigned timeout;
	unsigned hs_timeout;		/* TLS handshake deadline, s */
	struct event *hs_timer;		/* armed while handshaking */
	char *tls_err;			/* why the handshake failed, or NULL */
	/* After conn_free(): the close_notify waits for the socket. */
	struct event *linger_ev;
	struct timeval linger_until;	/* the wait's bound, monotonic */
	struct conn *lprev, *lnext;
	conn_cb *cb;
	void *ctx;
	/* The client, and the socket's peer: the same unless a PROXY
	 * header named another (the peer is kept small: only IP
	 * addresses matter, and a session's memory is counted in bytes). */
	struct sockaddr_storage client;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	char client_str[INET6_ADDRSTRLEN + 8];
	/* conn_attach(): counters and the registry entry */
	struct net_runtime *rt;
	unsigned proto;
	int slot;
	uint64_t id;
	conn_kick_fn *kick;
	void *kick_ctx;
};

static void conn_on_read(struct bufferevent *bev, void *arg);
static void conn_on_write(struct bufferevent *bev, void *arg);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);
static void conn_on_input(struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg);
static void conn_on_stage(struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg);
static void conn_on_flush(evutil_socket_t fd, short what, void *arg);
static void conn_on_hs_timeout(evutil_socket_t fd, short what, void *arg);
static void conn_on_ktls(evutil_socket_t fd, short what, void *arg);
static void conn_ktls_pump(struct conn *c);
static void conn_ktls_drop(struct conn *c);
static size_t conn_queued(struct conn *c);

/* Connections waiting to send their close_notify: each loop thread its
 * own (they are events of its base). */
static _Thread_local struct conn *conn_lingering_list;
static _Thread_local unsigned conn_n_lingering;

/*
 * What a client can make us buffer before we stop reading (I8).  Not a
 * libevent read watermark: at its high mark libevent 2.1 re-runs the read
 * callback through a deferred callback on every loop turn, which spins the
 * loop while a pipelining client waits for its output to drain, and it
 * starves the connections at CONN_PRI_BULK (the stalled one included).
 */
#define CONN_INPUT_MAX	(32 * 1024)

/* Until the owner sets its own. */
#define CONN_DEFAULT_TIMEOUT		600
#define CONN_DEFAULT_HANDSHAKE_TIMEOUT	30

static struct bufferevent *
conn_wbev(struct conn *c)
{
	return c->wbev != NULL ? c->wbev : c->bev;
}

static void
conn_apply_timeouts(struct conn *c)
{
	struct timeval tv = { .tv_sec = (time_t)c->timeout };
	const struct timeval *tvp = tv.tv_sec > 0 ? &tv : NULL;

	if (c->wbev != NULL) {
		bufferevent_set_timeouts(c->bev, tvp, NULL);
		bufferevent_set_timeouts(c->wbev, NULL, tvp);
	} else {
		bufferevent_set_timeouts(c->bev, tvp, tvp);
	}
}

static void
conn_apply_priority(struct conn *c)
{
	int pri = c->bulk ? CONN_PRI_BULK : CONN_PRI_NORMAL;

	/* libevent 2.1 also moves the bufferevent's deferred callback to the
	 * new priority without unqueueing it, which corrupts the loop's active
	 * queues if it is scheduled; an OpenSSL bufferevent schedules it for
	 * every write, so TLS connections keep the default priority. */
	if (c->tls)
		return;
	/* Best effort: libevent refuses while an event is active, and the
	 * next call (the next command) tries again. */
	(void)bufferevent_priority_set(c->bev, pri);
	if (c->wbev != NULL)
		(void)bufferevent_priority_set(c->wbev, pri);
}

static void
conn_setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, conn_on_read, c->wbev ? NULL : conn_on_write,
	    conn_on_event, c);
	if (c->wbev != NULL)
		bufferevent_setcb(c->wbev, NULL, conn_on_write, conn_on_event, c);
	c->in_full = false;
	evbuffer_add_cb(bufferevent_get_input(c->bev), conn_on_input, c);
	bufferevent_setwatermark(conn_wbev(c), EV_WRITE, c->drained_low, 0);
	/* libevent writes at most 16 KiB per wakeup by default: a 5 MB RETR
	 * would take 300 loop iterations.  Bigger turns cannot delay other
	 * clients' commands: streams run at CONN_PRI_BULK. */
	bufferevent_set_max_single_write(conn_wbev(c), CONN_MAX_SINGLE_WRITE);
	conn_apply_priority(c);
	conn_apply_timeouts(c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (c->wbev != NULL)
		bufferevent_enable(c->wbev, EV_WRITE);
}

/*
 * The whole handshake has one deadline from its start: the idle timers
 * restart with every byte, so a peer trickling its ClientHello would
 * otherwise hold the connection for as long as it likes (CVE-2014-3430).
 */
static void
conn_arm_handshake_deadline(struct conn *c)
{
	struct timeval tv = { .tv_sec = (time_t)c->hs_timeout };

	if (c->hs_timer == NULL) {
		c->hs_timer = evtimer_new(c->base, conn_on_hs_timeout, c);
		if (c->hs_timer == NULL)
			fatal("out of memory for a connection");
	}
	evtimer_add(c->hs_timer, &tv);
}

static void
conn_set_tls_err(struct conn *c, const char *why)
{
	free(c->tls_err);
	c->tls_err = xstrdup(why);
}

/* The first OpenSSL reason libevent kept for the failed handshake: the
 * TLS alert received or sent ("unsupported protocol", "tlsv1 alert
 * unknown ca"), for the log. */
static void
conn_note_handshake_error(struct conn *c)
{
	const char *why = NULL;
	unsigned long e;

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
		const char *r = ERR_GET_LIB(e) != 0 ?
		    ERR_reason_error_string(e) : NULL;

		if (why == NULL && r != NULL)
			why = r;
	}
	conn_set_tls_err(c, why != NULL ? why : "connection closed");
}

static bool
conn_start_tls_bev(struct conn *c, struct tls_ctx *tls)
{
	c->ssl = SSL_new(tls_ctx_ssl_ctx(tls));
	if (c->ssl == NULL)
		return false;
	/* CLOSE_ON_FREE: only then does libevent free the SSL (and close
	 * the fd) once the bufferevent is really gone. */
	c->bev = bufferevent_openssl_socket_new(c->base, c->rfd, c->ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return false;
	}
	/* Many clients just close the socket without close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	c->tls = true;
	c->handshaking = true;
	conn_arm_handshake_deadline(c);
	return true;
}

/* "ip:port" of the client, for the log and the registry. */
static void
conn_format_client(struct conn *c)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port = 0;

	if (c->client.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->client;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(c->client_str, sizeof(c->client_str), "%s:%u", host,
		    port);
	} else if (c->client.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->client;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(c->client_str, sizeof(c->client_str), "[%s]:%u", host,
		    port);
	} else if (c->client.ss_family == AF_UNSPEC) {
		snprintf(c->client_str, sizeof(c->client_str), "stdin");
	} else {
		snprintf(c->client_str, sizeof(c->client_str), "local");
	}
}

static void
conn_fill_peer(struct conn *c, const struct sockaddr *peer, socklen_t peerlen)
{
	socklen_t len = sizeof(c->client);

	memset(&c->client, 0, sizeof(c->client));
	if (peer != NULL && peerlen <= sizeof(c->client))
		memcpy(&c->client, peer, peerlen);
	else if (getpeername(c->rfd, (struct sockaddr *)&c->client, &len) != 0)
		c->client.ss_family = AF_UNSPEC;
	memcpy(&c->peer, &c->client, sizeof(c->peer));
	conn_format_client(c);
}

/*
 * Replies to a plain socket are written straight from the stage at the end
 * of the loop turn that produced them, when nothing is queued before them:
 * no write event is armed and polled for (two epoll_ctl and an epoll_wait
 * per reply), and a reply's status line, body and end leave in one turn.  Only
 * what the socket does not take goes to the bufferevent.
 */
static void
conn_stage_new(struct conn *c)
{
	c->stage = evbuffer_new();
	c->flush_ev = event_new(c->base, -1, 0, conn_on_flush, c);
	if (c->stage == NULL || c->flush_ev == NULL)
		fatal("out of memory for a connection");
	/* lets evbuffer_add_file_segment() keep sendfile() segments */
	evbuffer_set_flags(c->stage, EVBUFFER_FLAG_DRAINS_TO_FD);
	evbuffer_add_cb(c->stage, conn_on_stage, c);
	event_priority_set(c->flush_ev, CONN_PRI_NORMAL);
}

/* From here on every byte goes through the bufferevent (STARTTLS, teardown). */
static void
conn_stage_free(struct conn *c)
{
	if (c->stage == NULL)
		return;
	if (evbuffer_get_length(c->stage) > 0 && !c->out_dead)
		evbuffer_add_buffer(bufferevent_get_output(c->bev), c->stage);
	event_free(c->flush_ev);
	evbuffer_free(c->stage);
	c->flush_ev = NULL;
	c->stage = NULL;
}

struct conn *
conn_new(struct event_base *base, int rfd, int wfd,
    const struct sockaddr *peer, socklen_t peerlen, struct tls_ctx *tls,
    conn_cb *cb, void *ctx)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	int one = 1;

	c->base = base;
	c->rfd = rfd;
	c->wfd = wfd;
	c->cb = cb;
	c->ctx = ctx;
	c->timeout = CONN_DEFAULT_TIMEOUT;
	c->hs_timeout = CONN_DEFAULT_HANDSHAKE_TIMEOUT;
	c->slot = -1;
	c->kfd = -1;
	/* accept4() already made listener sockets non-blocking. */
	if (peer == NULL) {
		evutil_make_socket_nonblocking(rfd);
		if (wfd != rfd)
			evutil_make_socket_nonblocking(wfd);
	}
	conn_fill_peer(c, peer, peerlen);
	/* Replies are built whole before they are written; don't let Nagle
	 * hold the last segment for the client's delayed ACK. */
	if (c->peer.sa.sa_family == AF_INET || c->peer.sa.sa_family == AF_INET6)
		(void)setsockopt(rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (tls != NULL && rfd == wfd) {
		if (!conn_start_tls_bev(c, tls)) {
			if (c->hs_timer != NULL)
				event_free(c->hs_timer);
			free(c);
			return NULL;
		}
	} else {
		c->bev = bufferevent_socket_new(base, rfd, 0);
		if (wfd != rfd)
			c->wbev = bufferevent_socket_new(base, wfd, 0);
		if (c->bev == NULL || (wfd != rfd && c->wbev == NULL)) {
			if (c->bev != NULL)
				bufferevent_free(c->bev);
			free(c);
			return NULL;
		}
		if (wfd == rfd)
			conn_stage_new(c);
	}
	conn_setup_bev(c);
	return c;
}

static void
conn_destroy(struct conn *c)
{
	if (c->linger_ev != NULL) {
		event_free(c->linger_ev);
		if (c->lprev != NULL)
			c->lprev->lnext = c->lnext;
		else
			conn_lingering_list = c->lnext;
		if (c->lnext != NULL)
			c->lnext->lprev = c->lprev;
		conn_n_lingering--;
	}
	if (c->hs_timer != NULL)
		event_free(c->hs_timer);
	conn_ktls_drop(c);
	if (c->kev != NULL)
		event_free(c->kev);
	if (c->bev != NULL)
		bufferevent_free(c->bev);	/* TLS: frees c->ssl, closes rfd */
	if (c->wbev != NULL)
		bufferevent_free(c->wbev);
	/* after the bufferevents that used it */
	if (c->rate != NULL)
		ev_token_bucket_cfg_free(c->rate);
	if (c->tls_pending != NULL)
		tls_ctx_unref(&c->tls_pending);
	if (!c->tls || c->bev == NULL)
		close(c->rfd);
	if (c->wfd != c->rfd)
		close(c->wfd);
	free(c->tls_err);
	free(c);
}

/*
 * Sends our close_notify (RFC 8446 §6.1): without it a strict client
 * ("unexpected eof") cannot tell the end of the session from a cut.  Only
 * on a healthy connection whose output has all been written: after a
 * fatal error OpenSSL must not be asked, and with records still queued
 * the peer is not reading anyway.  The peer's close_notify is not waited
 * for.  Returns true if the socket has not taken it yet.
 */
static bool
conn_tls_shutdown(struct conn *c)
{
	int r;

	if (!c->tls || c->ssl == NULL || c->handshaking || c->out_dead ||
	    c->tls_pending != NULL || conn_queued(c) > 0 ||
	    !SSL_is_init_finished(c->ssl))
		return false;
	ERR_clear_error();
	r = SSL_shutdown(c->ssl);
	if (r < 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_WRITE)
		return true;
	ERR_clear_error();
	return false;
}

static void
conn_now(struct timeval *tv)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
}

/* Waits for the socket until linger_until; false if that has passed. */
static bool
conn_linger_wait(struct conn *c)
{
	struct timeval now, left;

	conn_now(&now);
	if (!evutil_timercmp(&now, &c->linger_until, <))
		return false;
	evutil_timersub(&c->linger_until, &now, &left);
	return event_add(c->linger_ev, &left) == 0;
}

static void
conn_on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	/* Writable: the rest of the alert goes (or never will); timed out:
	 * the peer does not read, and it is closed without.  A peer reading
	 * a byte at a time gets no more than the first bound. */
	if ((what & EV_WRITE) && conn_tls_shutdown(c) && conn_linger_wait(c))
		return;
	conn_destroy(c);
}

void
conn_free(struct conn **cp)
{
	struct conn *c = *cp;
	struct timeval now, tv = { .tv_sec = TLS_SHUTDOWN_TIMEOUT };

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->rt != NULL && c->slot >= 0)
		net_registry_remove(c->rt->registry, c->slot);
	c->slot = -1;
	conn_stage_free(c);
	if (c->hs_timer != NULL)
		evtimer_del(c->hs_timer);
	if (!conn_tls_shutdown(c)) {
		conn_destroy(c);
		return;
	}
	/* The socket is full: wait (boundedly) until it takes the alert.  The
	 * owner is gone, so nothing calls back any more. */
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	c->cb = NULL;
	c->linger_ev = event_new(c->base, c->rfd, EV_WRITE, conn_on_linger, c);
	if (c->linger_ev == NULL) {
		conn_destroy(c);
		return;
	}
	c->lnext = conn_lingering_list;
	if (c->lnext != NULL)
		c->lnext->lprev = c;
	conn_lingering_list = c;
	conn_n_lingering++;
	conn_now(&now);
	evutil_timeradd(&now, &tv, &c->linger_until);
	if (!conn_linger_wait(c))
		conn_destroy(c);
}

unsigned
conn_lingering(void)
{
	return conn_n_lingering;
}

void
conn_lingering_free_all(void)
{
	while (conn_lingering_list != NULL)
		conn_destroy(conn_lingering_list);
}

struct evbuffer *
conn_in(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

struct evbuffer *
conn_out(struct conn *c)
{
	return c->stage != NULL ? c->stage :
	    bufferevent_get_output(conn_wbev(c));
}

/* Everything queued: the stage comes after the bufferevent's output. */
static size_t
conn_queued(struct conn *c)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(conn_wbev(c)));

	if (c->kfd >= 0)
		n += (size_t)c->klen;
	return c->stage != NULL ? n + evbuffer_get_length(c->stage) : n;
}

size_t
conn_out_pending(struct conn *c)
{
	/* libevent keeps a socket's output start frozen: what is there
	 * stays until conn_free(), and only counts while it can leave. */
	return c->out_dead ? 0 : conn_queued(c);
}

size_t
conn_out_unsent(struct conn *c)
{
	return conn_queued(c);
}

bool
conn_out_dead(const struct conn *c)
{
	return c->out_dead;
}

void
conn_abort(struct conn *c)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };

	c->out_dead = true;
	c->want_drained = false;
	conn_ktls_drop(c);
	bufferevent_disable(conn_wbev(c), EV_WRITE);
	/* pipes (inetd) just close */
	(void)setsockopt(c->wfd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
}

void
conn_set_timeout(struct conn *c, unsigned secs)
{
	c->timeout = secs;
	conn_apply_timeouts(c);
}

void
conn_set_handshake_timeout(struct conn *c, unsigned secs)
{
	c->hs_timeout = secs;
	/* An implicit-TLS handshake began in conn_new(), a moment ago. */
	if (c->handshaking)
		conn_arm_handshake_deadline(c);
}

const char *
conn_tls_error(const struct conn *c)
{
	return c->tls_err;
}

void
conn_set_bulk(struct conn *c, bool bulk)
{
	if (c->bulk == bulk || c->tls_pending != NULL)
		return;
	c->bulk = bulk;
	conn_apply_priority(c);
}

void
conn_want_drained(struct conn *c, size_t low)
{
	c->want_drained = true;
	c->drained_low = low;
	bufferevent_setwatermark(conn_wbev(c), EV_WRITE, low, 0);
	/* Already there: libevent only calls back on a transition. */
	if (conn_queued(c) <= low) {
		c->want_drained = false;
		c->cb(c, CONN_EV_DRAINED, c->ctx);
	}
}

static void
conn_begin_handshake(struct conn *c)
{
	struct tls_ctx *tls = c->tls_pending;

	c->tls_pending = NULL;
	/* The plain bufferevent goes, with anything it read: bytes sent
	 * before the handshake are never interpreted (CVE-2011-0411). */
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (!conn_start_tls_bev(c, tls)) {
		tls_ctx_unref(&tls);
		c->cb(c, CONN_EV_CLOSED, c->ctx);
		return;
	}
	tls_ctx_unref(&tls);
	c->want_drained = false;
	c->drained_low = 0;
	conn_setup_bev(c);
}

void
conn_starttls(struct conn *c, struct tls_ctx *tls)
{
	struct evbuffer *in = conn_in(c);

	conn_stage_free(c);		/* the reply to STARTTLS goes first, in clear */
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(c->bev, EV_READ);
	tls_ctx_ref(tls);
	c->tls_pending = tls;
	c->want_drained = false;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(conn_out(c)) == 0)
		conn_begin_handshake(c);
	/* else conn_on_write starts it once that reply is flushed. */
}

bool
conn_tls_active(const struct conn *c)
{
	return c->tls;
}

bool
conn_tls_possible(const struct conn *c)
{
	return c->wbev == NULL;
}

bool
conn_channel_binding(struct conn *c, const char **type_r, unsigned char *buf,
    size_t bufsz, size_t *len_r)
{
	if (!c->tls || c->ssl == NULL)
		return false;
	*type_r = tls_default_cb_type(c->ssl);
	return tls_channel_binding(c->ssl, *type_r, buf, bufsz, len_r);
}

void
conn_tls_describe(struct conn *c, char *buf, size_t bufsz)
{
	if (c->ssl == NULL)
		snprintf(buf, bufsz, "none");
	else
		tls_describe(c->ssl, buf, bufsz);
}

enum conn_sendfile
conn_sendfile_path(bool tls, bool ktls_send, bool own_fd, bool rate_limited)
{
	/* A rate limit is the bufferevent's: a segment would pass it. */
	if (!own_fd || rate_limited)
		return CONN_SENDFILE_NONE;
	if (!tls)
		return CONN_SENDFILE_PLAIN;
	/* Without the kernel's tls module OpenSSL encrypts in user space:
	 * the bytes must be read anyway. */
	return ktls_send ? CONN_SENDFILE_KTLS : CONN_SENDFILE_NONE;
}

static enum conn_sendfile
conn_sendfile_how(const struct conn *c)
{
	/* STARTTLS pending or a handshake under way: neither path is safe. */
	if (c->tls_pending != NULL || c->handshaking)
		return CONN_SENDFILE_NONE;
	return conn_sendfile_path(c->tls, c->ktls_send, c->wbev == NULL,
	    c->rate != NULL);
}

bool
conn_can_sendfile(const struct conn *c)
{
	return conn_sendfile_how(c) != CONN_SENDFILE_NONE;
}

/* The segment is done with (sent, or never will be). */
static void
conn_ktls_drop(struct conn *c)
{
	if (c->kfd < 0)
		return;
	if (c->kev != NULL)
		event_del(c->kev);
	close(c->kfd);
	c->kfd = -1;
	c->klen = 0;
}

static bool
conn_ktls_queue(struct conn *c, int dfd, off_t off, off_t len)
{
	if (c->kfd >= 0)
		return false;		/* one at a time: the caller reads it */
	if (c->kev == NULL) {
		c->kev = event_new(c->base, c->rfd, EV_WRITE, conn_on_ktls, c);
		if (c->kev == NULL)
			return false;
		event_priority_set(c->kev, CONN_PRI_BULK);
	}
	c->kfd = dfd;
	c->koff = off;
	c->klen = len;
	/* Nothing before it: whatever comes after waits from now on. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_disable(c->bev, EV_WRITE);
	/* Not from here: the caller is not done queueing.  The next turn,
	 * or conn_on_write() once what came before has been written. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		event_active(c->kev, EV_WRITE, 1);
	return true;
}

/* With nothing before it left in the bufferevent: the segment, by at
 * most CONN_MAX_SINGLE_WRITE a turn (like the bufferevent's writes). */
static void
conn_ktls_pump(struct conn *c)
{
	struct timeval tv = { .tv_sec = (time_t)c->timeout };
	ossl_ssize_t r;
	size_t n;

	if (c->kfd < 0 || c->out_dead ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;
	/* Nothing queued after it may overtake it. */
	bufferevent_disable(c->bev, EV_WRITE);
	n = c->klen > CONN_MAX_SINGLE_WRITE ? CONN_MAX_SINGLE_WRITE :
	    (size_t)c->klen;
	ERR_clear_error();
	r = SSL_sendfile(c->ssl, c->kfd, c->koff, n, 0);
	if (r > 0) {
		c->koff += r;
		c->klen -= r;
		if (c->klen > 0) {
			event_active(c->kev, EV_WRITE, 1);
			return;
		}
		conn_ktls_drop(c);
		bufferevent_enable(c->bev, EV_WRITE);
		if (c->want_drained && conn_queued(c) <= c->drained_low) {
			c->want_drained = false;
			c->cb(c, CONN_EV_DRAINED, c->ctx);
		}
		return;
	}
	if (r < 0 && SSL_get_error(c->ssl, (int)r) == SSL_ERROR_WANT_WRITE) {
		(void)event_add(c->kev, tv.tv_sec > 0 ? &tv : NULL);
		return;
	}
	/* 0: the file ended early (truncated), as sendfile() reports it;
	 * or the socket failed.  Either way what follows cannot be sent. */
	ERR_clear_error();
	conn_ktls_drop(c);
	c->out_dead = true;
	c->cb(c, CONN_EV_CLOSED, c->ctx);
}

static void
conn_on_ktls(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		conn_ktls_drop(c);
		c->out_dead = true;
		c->cb(c, CONN_EV_TIMEOUT, c->ctx);
		return;
	}
	conn_ktls_pump(c);
}

void
conn_set_write_rate(struct conn *c, unsigned bytes_per_sec)
{
	struct timeval tick = { .tv_sec = 1 };
	struct bufferevent *w = c->wbev != NULL ? c->wbev : c->bev;

	if (c->rate != NULL || bytes_per_sec == 0)
		return;
	/* The stage writes to the socket itself, past any limit. */
	conn_stage_free(c);
	c->rate = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX,
	    bytes_per_sec, bytes_per_sec, &tick);
	if (c->rate == NULL || bufferevent_set_rate_limit(w, c->rate) != 0)
		log_warnx("connection %s: cannot limit its rate",
		    conn_client(c));
}

bool
conn_send_file(struct conn *c, int fd, off_t off, off_t len)
{
	struct evbuffer_file_segment *seg;
	int dfd;

	enum conn_sendfile how = conn_sendfile_how(c);

	if (how == CONN_SENDFILE_NONE || c->out_dead || len <= 0)
		return false;
	/* The segment outlives the caller's descriptor: its own fd. */
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return false;
	if (how == CONN_SENDFILE_KTLS) {
		if (conn_ktls_queue(c, dfd, off, len))
			return true;
		close(dfd);
		return false;
	}
	seg = evbuffer_file_segment_new(dfd, off, len, EVBUF_FS_CLOSE_ON_FREE);
	if (seg == NULL) {
		close(dfd);
		return false;
	}
	/* The stage drains to the fd (EVBUFFER_FLAG_DRAINS_TO_FD), so the
	 * segment stays a sendfile() and is never read into memory. */
	if (evbuffer_add_file_segment(conn_out(c), seg, 0, len) != 0) {
		evbuffer_file_segment_free(seg);
		return false;
	}
	evbuffer_file_segment_free(seg);	/* the buffer holds its own ref */
	return true;
}

void
conn_set_handler(struct conn *c, conn_cb *cb, void *ctx)
{
	c->cb = cb;
	c->ctx = ctx;
}

void
conn_set_client(struct conn *c, const struct sockaddr_storage *client)
{
	/* The registry entry and the per-IP counts use the client: it
	 * must be known before them. */
	if (c->rt != NULL)
		fatalx("conn_set_client after conn_attach");
	c->client = *client;
	conn_format_client(c);
}

void
conn_attach(struct conn *c, struct net_runtime *rt, unsigned proto,
    const char *proto_name, uint64_t id)
{
	c->rt = rt;
	c->proto = proto;
	c->id = id;
	c->slot = net_registry_add(rt->registry, id, proto_name, c->client_str);
	net_registry_set_owner(rt->registry, c->slot, c, net_loop_self());
	net_count(rt, proto, NET_CNT_CONNECTIONS, 1);
}

void
conn_refuse_proxy_header(struct conn *c)
{
	c->proxy_refuse = true;
}

uint64_t
conn_id(const struct conn *c)
{
	return c->id;
}

void
conn_info_user(struct conn *c, const char *user)
{
	if (c->rt != NULL)
		net_registry_set_user(c->rt->registry, c->slot, user);
}

void
conn_info_state(struct conn *c, const char *state)
{
	if (c->rt != NULL)
		net_registry_set_state(c->rt->registry, c->slot, state);
}

void
conn_info_command(struct conn *c, const char *verb)
{
	if (c->rt != NULL)
		net_registry_set_command(c->rt->registry, c->slot, verb);
}

void
conn_info_bytes(struct conn *c, uint64_t bytes)
{
	if (c->rt != NULL)
		net_registry_set_bytes(c->rt->registry, c->slot, bytes);
}

void
conn_info_idle_timeout(struct conn *c, unsigned secs)
{
	if (c->rt != NULL)
		net_registry_set_idle_timeout(c->rt->registry, c->slot, secs);
}

void
conn_info_history(struct conn *c, const char *line, size_t len)
{
	if (c->rt != NULL)
		net_registry_add_history(c->rt->registry, c->slot, line, len);
}

void
conn_set_kick(struct conn *c, conn_kick_fn *fn, void *ctx)
{
	c->kick = fn;
	c->kick_ctx = ctx;
}

bool
conn_kick(struct conn *c)
{
	if (c->kick == NULL)
		return false;
	c->kick(c->kick_ctx);
	return true;
}

void
conn_count(struct conn *c, enum net_counter k, uint64_t n)
{
	net_count(c->rt, c->proto, k, n);
}

void
conn_count_login_failed(struct conn *c, const char *reason)
{
	net_count_login_failed(c->rt, c->proto, reason);
}

const char *
conn_client(const struct conn *c)
{
	return c->client_str;
}

const struct sockaddr_storage *
conn_client_addr(const struct conn *c)
{
	return &c->client;
}

const struct sockaddr *
conn_socket_peer(const struct conn *c)
{
	return &c->peer.sa;
}

bool
conn_client_local(const struct conn *c)
{
	const struct sockaddr_storage *a = &c->client;

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
		const uint8_t *b = s6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && b[12] == 127;
	}
	return a->ss_family == AF_UNSPEC;
}

/* Reading stops at CONN_INPUT_MAX and resumes once the session has
 * consumed half of it (not on every line: each toggle is an epoll_ctl). */
static void
conn_on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn *c = arg;
	size_t len = info->orig_size + info->n_added - info->n_deleted;

	(void)buf;
	if (c->tls_pending != NULL)
		return;		/* STARTTLS: no reading until the handshake */
	if (!c->in_full && len >= CONN_INPUT_MAX) {
		c->in_full = true;
		bufferevent_disable(c->bev, EV_READ);
	} else if (c->in_full && len < CONN_INPUT_MAX / 2) {
		c->in_full = false;
		bufferevent_enable(c->bev, EV_READ);
	}
}

/* What a PROXY header starts with (proxy.h), v1 and v2. */
static bool
conn_input_is_proxy_header(struct conn *c)
{
	static const char v2[12] = "\r\n\r\n\0\r\nQUIT\n";
	char buf[sizeof(v2)];
	ev_ssize_t n = evbuffer_copyout(conn_in(c), buf, sizeof(buf));

	return (n >= 6 && memcmp(buf, "PROXY ", 6) == 0) ||
	    (n == (ev_ssize_t)sizeof(v2) && memcmp(buf, v2, sizeof(v2)) == 0);
}

static void
conn_on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->proxy_refuse) {
		c->proxy_refuse = false;
		if (conn_input_is_proxy_header(c)) {
			log_warnx("PROXY header from untrusted peer %s: "
			    "connection closed", c->client_str);
			c->out_dead = true;
			c->cb(c, CONN_EV_CLOSED, c->ctx);
			return;
		}
	}
	c->cb(c, CONN_EV_READ, c->ctx);
}

static void
conn_on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->tls_pending != NULL) {
		if (evbuffer_get_length(conn_out(c)) == 0)
			conn_begin_handshake(c);
		return;
	}
	if (c->kfd >= 0) {
		conn_ktls_pump(c);	/* once what came before it is out */
		return;
	}
	if (c->want_drained && conn_queued(c) <= c->drained_low) {
		c->want_drained = false;
		c->cb(c, CONN_EV_DRAINED, c->ctx);
	}
}

static void
conn_on_stage(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn *c = arg;

	(void)buf;
	/* A non-empty stage always has its flush pending (conn_on_flush
	 * empties it or re-arms), so only the first byte arms it. */
	if (info->n_added > 0 && info->orig_size == 0)
		event_active(c->flush_ev, 0, 0);
}

static void
conn_on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t sent = 0;
	int n;

	(void)fd;
	(void)what;
	if (c->out_dead) {
		evbuffer_drain(c->stage, evbuffer_get_length(c->stage));
		return;
	}
	/* A stream (one sendfile() takes a whole segment, megabytes) is
	 * written once everyone else's turn is done, like the bufferevent's
	 * own writes at CONN_PRI_BULK. */
	if (evbuffer_get_length(out) == 0 &&
	    event_get_priority(c->flush_ev) != CONN_PRI_BULK &&
	    (c->bulk || evbuffer_get_length(c->stage) > CONN_BULK_MIN)) {
		event_priority_set(c->flush_ev, CONN_PRI_BULK);
		event_active(c->flush_ev, 0, 0);
		return;
	}
	event_priority_set(c->flush_ev, CONN_PRI_NORMAL);
	/* Bytes already queued go first; a write error is left for the
	 * bufferevent to meet again and report the usual way. */
	while (evbuffer_get_length(out) == 0 &&
	    evbuffer_get_length(c->stage) > 0) {
		n = evbuffer_write(c->stage, c->wfd);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	if (evbuffer_get_length(c->stage) > 0) {
		evbuffer_add_buffer(out, c->stage);
		return;
	}
	if (sent > 0 && c->want_drained &&
	    evbuffer_get_length(out) <= c->drained_low) {
		c->want_drained = false;
		c->cb(c, CONN_EV_DRAINED, c->ctx);
	}
}

static void
conn_on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->handshaking = false;
	c->out_dead = true;		/* nothing can be sent without TLS */
	conn_set_tls_err(c, "handshake timed out");
	net_count(c->rt, c->proto, NET_CNT_TLS_FAILURES, 1);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->cb(c, CONN_EV_CLOSED, c->ctx);
}

static void
conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->handshaking = false;
		evtimer_del(c->hs_timer);
		/* SSL_OP_ENABLE_KTLS (tls.c): the kernel took the keys, or
		 * (no tls module, as on most of our machines) it did not. */
		c->ktls_send = BIO_get_ktls_send(SSL_get_wbio(c->ssl));
		conn_apply_timeouts(c);
		net_count(c->rt, c->proto, NET_CNT_TLS_HANDSHAKES, 1);
		c->cb(c, CONN_EV_TLS_READY, c->ctx);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		/* libevent stops writing: what is queued stays there. */
		if (what & BEV_EVENT_WRITING)
			c->out_dead = true;
		c->cb(c, CONN_EV_TIMEOUT, c->ctx);
		return;
	}
	if (c->handshaking) {
		c->handshaking = false;
		evtimer_del(c->hs_timer);
		conn_note_handshake_error(c);
		net_count(c->rt, c->proto, NET_CNT_TLS_FAILURES, 1);
	}
	/* A read EOF may be a half-close (the peer still reads); an error or
	 * a failed write means nothing we queue will ever leave.  So does any
	 * end of a TLS bufferevent: libevent stops writing too, even on the
	 * "dirty" EOF of a peer's RST; waiting for that output to drain held
	 * the session (in UPDATE after QUIT: past SIGTERM) for good. */
	if (c->tls || (what & (BEV_EVENT_ERROR | BEV_EVENT_WRITING)))
		c->out_dead = true;
	/* EOF or error: the session decides what that means (never a QUIT). */
	c->cb(c, CONN_EV_CLOSED, c->ctx);
}
