/* pop3_session.c - session lifecycle, input loop and state changes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/iplimit.h"
#include "net/mailevents.h"
#include "net/protocol.h"
#include "net/runtime.h"
#include "net/tls.h"
#include "pop3/pop3_int.h"
#include "store/store.h"

/* Lines are handled synchronously on a loop thread, one at a time: one
 * buffer per loop thread. */
static _Thread_local char pop3_linebuf[POP3_MAX_SASL_LINE + 1];

static const char *const state_names[POP3_STATE_COUNT] = {
	[POP3_STATE_AUTHORIZATION] = "AUTHORIZATION",
	[POP3_STATE_AUTH_SASL] = "AUTH_SASL",
	[POP3_STATE_LOGIN_PENDING] = "LOGIN_PENDING",
	[POP3_STATE_LOGIN_DELAY] = "LOGIN_DELAY",
	[POP3_STATE_STLS_HANDSHAKE] = "STLS_HANDSHAKE",
	[POP3_STATE_TRANSACTION] = "TRANSACTION",
	[POP3_STATE_UPDATE] = "UPDATE",
	[POP3_STATE_CLOSING] = "CLOSING",
	[POP3_STATE_CLOSED] = "CLOSED",
};

/*
 * Which changes are allowed: any live state may close (the peer can go,
 * the server can shut down, at any time); TRANSACTION only after the
 * worker checked credentials; UPDATE, where mail is removed, only from
 * TRANSACTION (RFC 1939 §6, I2); STLS only before login (RFC 2595 §4).
 * CLOSING is entered from every state in which a last reply can be
 * queued: timeouts and limits, as well as QUIT.
 */
#define TO(st) (1u << POP3_STATE_##st)
#define TO_END (TO(CLOSING) | TO(CLOSED))
static const unsigned state_next[POP3_STATE_COUNT] = {
	[POP3_STATE_AUTHORIZATION] = TO(LOGIN_PENDING) | TO(STLS_HANDSHAKE) |
	    TO_END,
	[POP3_STATE_AUTH_SASL] = TO(LOGIN_PENDING) | TO(AUTHORIZATION) | TO_END,
	[POP3_STATE_LOGIN_PENDING] = TO(AUTH_SASL) | TO(AUTHORIZATION) |
	    TO(LOGIN_DELAY) | TO(TRANSACTION) | TO_END,
	[POP3_STATE_LOGIN_DELAY] = TO(AUTHORIZATION) | TO_END,
	[POP3_STATE_STLS_HANDSHAKE] = TO(AUTHORIZATION) | TO_END,
	[POP3_STATE_TRANSACTION] = TO(UPDATE) | TO_END,
	[POP3_STATE_UPDATE] = TO_END,
	[POP3_STATE_CLOSING] = TO(CLOSED),
	[POP3_STATE_CLOSED] = 0,
};
#undef TO_END
#undef TO

static void pop3_session_on_conn(struct conn *c, enum conn_event ev,
    void *ctx);
static void pop3_session_process(struct pop3_session *s);

void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(conn_out(s->conn), fmt, ap);
	va_end(ap);
	evbuffer_add(conn_out(s->conn), "\r\n", 2);
	/* Every multi-line reply ends with pop3_reply(s, "."). */
	if (s->tr != NULL)
		pop3_tr_data(s, strcmp(fmt, ".") == 0);
}

/* A status line formatted before (a delayed reply). */
static void
reply_status_text(struct pop3_session *s, const char *line)
{
	evbuffer_add_printf(conn_out(s->conn), "%s\r\n", line);
	pop3_tr_server(s, line, strlen(line));
}

void
pop3_reply_challenge(struct pop3_session *s, const char *b64)
{
	evbuffer_add_printf(conn_out(s->conn), "+ %s\r\n", b64);
	/* SASL data, whatever the mechanism: never in a transcript. */
	pop3_tr_server(s, "+ ****", 6);
}

static void
reply_vmsg(struct pop3_session *s, enum pop3_msg_id id, va_list ap)
{
	char line[POP3_MAX_RESPONSE];
	size_t n;

	n = pop3_msg_vformat(line, sizeof(line), s->lang, id, ap);
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(conn_out(s->conn), line, n + 2);
	pop3_tr_server(s, line, n);
}

void
pop3_reply_msg(struct pop3_session *s, enum pop3_msg_id id, ...)
{
	va_list ap;

	va_start(ap, id);
	reply_vmsg(s, id, ap);
	va_end(ap);
}

void
pop3_session_ref(struct pop3_session *s)
{
	s->refs++;
}

static void
pop3_session_free(struct pop3_session *s)
{
	struct pop3_env *env = s->env;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		env->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	env->n_sessions--;
	if (env->n_all != NULL)
		atomic_fetch_sub_explicit(env->n_all, 1, memory_order_relaxed);
	pop3_tr_end(s);
	free(s->deleted);
	free(s->gone);
	free(s->user);
	free(s->apop_ts);
	free(s->pending_reply);
	userdb_unref(&s->db);
	free(s);
}

void
pop3_session_unref(struct pop3_session *s)
{
	if (--s->refs == 0)
		pop3_session_free(s);
}

const char *
pop3_state_name(enum pop3_state st)
{
	return (unsigned)st < POP3_STATE_COUNT ? state_names[st] : "?";
}

bool
pop3_state_change_ok(enum pop3_state from, enum pop3_state to)
{
	return (unsigned)from < POP3_STATE_COUNT &&
	    (unsigned)to < POP3_STATE_COUNT && (state_next[from] >> to & 1u);
}

void
pop3_session_enter(struct pop3_session *s, enum pop3_state st,
    const char *why)
{
	if (!pop3_state_change_ok(s->state, st))
		fatalx("session=%llx illegal state change %s -> %s (%s)",
		    (unsigned long long)s->id, pop3_state_name(s->state),
		    pop3_state_name(st), why);
	/* Tested here: no formatting, no varargs call when debug is off. */
	if (log_get_level() >= LOG_LVL_DEBUG)
		log_debug("session=%llx state %s -> %s (%s)",
		    (unsigned long long)s->id, state_names[s->state],
		    state_names[st], why);
	if (st == POP3_STATE_UPDATE)
		s->quit_seen = true;
	s->state = st;
	if (s->conn == NULL)
		return;
	if (st == POP3_STATE_TRANSACTION) {
		conn_info_user(s->conn, s->user);
		pop3_tr_login(s);
		conn_count(s->conn, NET_CNT_LOGIN_OK, 1);
		net_observe(s->env->rt, NET_HIST_LOGIN, s->cmd_start_ns);
	}
	conn_info_state(s->conn, state_names[st]);
}

struct event_base *
pop3_env_base(const struct pop3_env *env)
{
	return env->base != NULL ? env->base : env->rt->base;
}

struct userdb *
pop3_env_userdb(const struct pop3_env *env)
{
	return net_runtime_gen(env->rt)->userdb;
}

struct tls_ctx *
pop3_env_tls(const struct pop3_env *env)
{
	return net_runtime_gen(env->rt)->tls;
}

struct userdb *
pop3_session_userdb(struct pop3_session *s)
{
	struct userdb *cur = pop3_env_userdb(s->env);

	/* A SIGHUP may have loaded new users since this client connected;
	 * each login attempt sees the current ones. */
	if (s->db != cur) {
		userdb_unref(&s->db);
		s->db = cur;
		userdb_ref(s->db);
	}
	return s->db;
}

bool
pop3_session_tls_offered(struct pop3_session *s)
{
	return pop3_env_tls(s->env) != NULL && !conn_tls_active(s->conn) &&
	    conn_tls_possible(s->conn) && s->state == POP3_STATE_AUTHORIZATION;
}

/*
 * Ends the session: no UPDATE here, so nothing is deleted (RFC 1939 §6);
 * an UPDATE in flight finishes in its job and releases the mailbox there.
 */
void
pop3_session_end(struct pop3_session *s, const char *reason)
{
	struct pop3_env *env = s->env;

	if (s->state == POP3_STATE_CLOSED)
		return;
	if (s->end_reason == NULL)
		s->end_reason = reason;
	log_info("session=%llx logout user=%s reason=%s retrieved=%u "
	    "deleted=%u bytes=%llu", (unsigned long long)s->id,
	    s->user != NULL && s->login_method != NULL ? s->user : "-",
	    s->end_reason, s->n_retr, s->quit_seen ? s->n_deleted : 0,
	    (unsigned long long)s->bytes_sent);
	if (s->quit_seen && s->n_deleted > 0)
		conn_count(s->conn, NET_CNT_DELETED, s->n_deleted);
	pop3_session_enter(s, POP3_STATE_CLOSED, s->end_reason);
	pop3_stream_free(s);
	sasl_server_free(&s->sasl);
	pop3_fault_free(s);
	pop3_tr_note(s, "[end: %s]", s->end_reason != NULL ? s->end_reason :
	    "-");
	pop3_tr_end(s);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->session_timer != NULL)
		event_free(s->session_timer);
	if (s->line_timer != NULL)
		event_free(s->line_timer);
	s->timer = s->session_timer = s->line_timer = NULL;
	/* Jobs never hold s->mb (the commit job takes it over), so it is
	 * always ours to release: without UPDATE, nothing is deleted. */
	if (s->mb != NULL && s->n_deleted > 0 && s->user != NULL)
		net_mailev_record(NET_MAILEV_UNMARKED, s->user, NULL, s->id);
	pop3_job_mailbox_close(s, &s->mb);
	if (s->conn_counted)
		iplimit_conn_release(env->rt->iplimit, conn_client_addr(s->conn));
	conn_free(&s->conn);
	pop3_session_unref(s);
}

static void
pop3_session_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	/* A timeout closed the session meanwhile: its reply was the last. */
	if (s->state != POP3_STATE_LOGIN_DELAY)
		return;
	if (s->pending_reply != NULL) {
		reply_status_text(s, s->pending_reply);
		free(s->pending_reply);
		s->pending_reply = NULL;
	}
	pop3_session_enter(s, s->after_delay, "delay-over");
	pop3_session_resume(s);
}

static char *
msg_render(struct pop3_session *s, enum pop3_msg_id id, ...)
{
	char line[POP3_MAX_RESPONSE];
	va_list ap;

	va_start(ap, id);
	(void)pop3_msg_vformat(line, sizeof(line), s->lang, id, ap);
	va_end(ap);
	return xstrdup(line);
}

void
pop3_session_delayed_reply(struct pop3_session *s, unsigned ms,
    enum pop3_msg_id id, enum pop3_state after)
{
	struct timeval tv = { .tv_sec = ms / 1000,
	    .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	free(s->pending_reply);
	s->pending_reply = msg_render(s, id);
	s->after_delay = after;
	pop3_session_enter(s, POP3_STATE_LOGIN_DELAY, "login-failed");
	if (s->timer == NULL)
		s->timer = evtimer_new(pop3_env_base(s->env), pop3_session_on_timer,
		    s);
	evtimer_add(s->timer, &tv);
}

static void
pop3_session_on_session_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	/* Let the expunge finish, and its reply go out. */
	if (s->state == POP3_STATE_UPDATE ||
	    (s->state == POP3_STATE_CLOSING && s->quit_seen))
		return;
	pop3_msg(s, SESSION_TIMEOUT);
	s->end_reason = "session-timeout";
	if (s->state != POP3_STATE_CLOSING)
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
	conn_want_drained(s->conn, 0);
}

/* The administrator's kick (Sessions page): the session-timeout path,
 * with its own words.  Never during UPDATE: the expunge finishes. */
static void
pop3_session_on_kick(void *arg)
{
	struct pop3_session *s = arg;

	if (s->state == POP3_STATE_CLOSED || s->state == POP3_STATE_UPDATE ||
	    (s->state == POP3_STATE_CLOSING && s->quit_seen))
		return;
	pop3_msg(s, KICKED);
	s->end_reason = "kicked";
	if (s->state != POP3_STATE_CLOSING)
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
	conn_want_drained(s->conn, 0);
}

static void
pop3_session_on_line_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	/* Input waits while we are busy; it is not the client's time. */
	if (!pop3_state_reads(s->state) || s->stream != NULL)
		return;
	pop3_msg(s, LINE_TIMEOUT);
	s->end_reason = "line-timeout";
	pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
	conn_want_drained(s->conn, 0);
}

/*
 * A command line must be complete LineTimeOut seconds after its first
 * byte (I8): the idle timer restarts with every byte, so a client sending
 * one a second, never a CRLF, would otherwise be held for ever.
 */
static void
pop3_session_line_deadline(struct pop3_session *s, bool mid_line)
{
	const struct pop3_params *p = &s->env->params;
	struct timeval tv = { .tv_sec = (time_t)(p->line_timeout <
	    p->idle_timeout ? p->line_timeout : p->idle_timeout) };

	if (!mid_line || tv.tv_sec == 0) {
		if (s->line_timer != NULL)
			evtimer_del(s->line_timer);
		return;
	}
	if (s->line_timer == NULL)
		s->line_timer = evtimer_new(pop3_env_base(s->env),
		    pop3_session_on_line_timeout, s);
	if (s->line_timer != NULL && !evtimer_pending(s->line_timer, NULL))
		evtimer_add(s->line_timer, &tv);
}

/* The per-IP limits guard a public listener; loopback peers (a local test
 * harness, webmail, a TLS proxy that makes every client 127.0.0.1) are
 * exempt unless LimitLoopback is set.  MaxConnections always applies. */
static bool
pop3_session_ip_limited(struct pop3_env *env,
    const struct sockaddr_storage *ss)
{
	return env->params.limit_loopback || !iplimit_is_loopback(ss);
}

/*
 * MaxConnectRatePerIp (the protocol's admit): checked before any work is
 * done for the connection (no session, no TLS handshake, one log line
 * per burst); a plain client is told why.  False if the connection is
 * refused (net closes fd).
 */
static bool
pop3_admit(void *ctx, int fd, const struct sockaddr_storage *client,
    bool tls)
{
	struct pop3_env *env = ctx;
	const struct sockaddr_storage *ss = client;
	struct timespec ts;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned refused;

	if (env->params.max_connect_rate_per_ip == 0 ||
	    !pop3_session_ip_limited(env, ss))
		return true;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (iplimit_connect_rate(env->rt->iplimit, ss,
	    env->params.max_connect_rate_per_ip,
	    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
	    &refused))
		return true;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    host, sizeof(host));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr,
		    host, sizeof(host));
	if (refused == 1)
		log_warnx("refused: more than %u connections a minute from %s "
		    "(MaxConnectRatePerIp)", env->params.max_connect_rate_per_ip,
		    host);
	else
		log_debug("refused: connection rate from %s (%u in a row)", host,
		    refused);
	if (!tls) {
		/* No session, so no LANG yet: the default language. */
		const char *text = pop3_msg_fmt(POP3_LANG_DEFAULT,
		    POP3_MSG_CONN_RATE);
		char line[POP3_MAX_RESPONSE];
		size_t n = strlen(text);

		(void)sizeof(POP3_MSG_CHECK(CONN_RATE));	/* no arguments */
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
		memcpy(line, text, n);
		memcpy(line + n, "\r\n", 2);
		(void)send(fd, line, n + 2, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	return false;
}

static bool
pop3_start(void *ctx, struct conn *c)
{
	return pop3_session_start(ctx, c);
}

const struct net_protocol pop3_protocol = {
	.name = "pop3",
	.admit = pop3_admit,
	.start = pop3_start,
};

void
pop3_register(void)
{
	if (!net_protocol_register(&pop3_protocol))
		fatalx("cannot register protocol pop3");
}

bool
pop3_session_start(struct pop3_env *env, struct conn *c)
{
	struct pop3_session *s;
	unsigned per_ip, n_all;

	s = xcalloc(1, sizeof(*s));
	s->env = env;
	s->id = conn_id(c);
	s->refs = 1;
	s->conn = c;
	conn_set_handler(c, pop3_session_on_conn, s);
	conn_set_kick(c, pop3_session_on_kick, s);
	conn_info_state(c, state_names[POP3_STATE_AUTHORIZATION]);
	conn_info_idle_timeout(c, env->params.idle_timeout);
	/* Before any refusal below: its reply must not wait longer either.
	 * A handshake is a "line" too, and never longer than TimeOut. */
	conn_set_timeout(s->conn, env->params.idle_timeout);
	conn_set_handshake_timeout(s->conn,
	    env->params.line_timeout < env->params.idle_timeout ?
	    env->params.line_timeout : env->params.idle_timeout);
	s->next = env->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	env->sessions = s;
	env->n_sessions++;
	n_all = env->n_all == NULL ? env->n_sessions :
	    atomic_fetch_add_explicit(env->n_all, 1, memory_order_relaxed) + 1;

	log_info("session=%llx connect from=%s%s", (unsigned long long)s->id,
	    conn_client(s->conn), conn_tls_active(s->conn) ?
	    " tls=implicit" : "");
	pop3_tr_start(s);
	per_ip = pop3_session_ip_limited(env, conn_client_addr(s->conn)) ?
	    env->params.max_connections_per_ip : 0;
	if (!iplimit_conn_acquire(env->rt->iplimit, conn_client_addr(s->conn),
	    per_ip)) {
		log_warnx("session=%llx refused: too many connections from %s",
		    (unsigned long long)s->id, conn_client(s->conn));
		pop3_msg(s, CONN_LIMIT_IP);
		s->end_reason = "per-ip-limit";
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
		conn_want_drained(s->conn, 0);
		return true;
	}
	s->conn_counted = true;
	if (env->params.max_connections != 0 &&
	    n_all > env->params.max_connections) {
		log_warnx("session=%llx refused: MaxConnections reached",
		    (unsigned long long)s->id);
		pop3_msg(s, CONN_LIMIT);
		s->end_reason = "connection-limit";
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
		conn_want_drained(s->conn, 0);
		return true;
	}
	s->db = pop3_env_userdb(env);
	userdb_ref(s->db);
	if (env->params.session_timeout != 0) {
		struct timeval tv = { .tv_sec = env->params.session_timeout };
		s->session_timer = evtimer_new(pop3_env_base(env),
		    pop3_session_on_session_timeout, s);
		evtimer_add(s->session_timer, &tv);
	}
	if (userdb_has_apop(s->db)) {
		/* RFC 1939 §7: <process-ID.clock@hostname>, unique per greeting. */
		s->apop_ts = xasprintf("<%ld.%lld.%llx@%s>", (long)getpid(),
		    (long long)time(NULL), (unsigned long long)s->id,
		    env->hostname);
		pop3_msg(s, GREETING_APOP, s->apop_ts);
	} else {
		pop3_msg(s, GREETING);
	}
	return true;
}

void
pop3_session_close_all(struct pop3_env *env)
{
	struct pop3_session *s, *next;

	for (s = env->sessions; s != NULL; s = next) {
		next = s->next;
		/* An UPDATE finishes, and its reply goes out. */
		if (s->state != POP3_STATE_CLOSED &&
		    s->state != POP3_STATE_UPDATE &&
		    !(s->state == POP3_STATE_CLOSING && s->quit_seen))
			pop3_session_end(s, "shutdown");
	}
}

enum pop3_ev
pop3_reply_bad(struct pop3_session *s, enum pop3_msg_id id, ...)
{
	unsigned limit = s->env->params.max_bad_commands;
	va_list ap;

	/* Someone who has not logged in gets fewer tries (Dovecot's
	 * pop3-login: 3). */
	if (pop3_state_preauth(s->state) && limit > POP3_MAX_BAD_CMDS_PREAUTH)
		limit = POP3_MAX_BAD_CMDS_PREAUTH;
	if (++s->bad_cmds >= limit) {
		/* Its own reply would be the last but one: this one says
		 * why nothing more comes. */
		pop3_msg(s, TOO_MANY_BAD);
		s->end_reason = "too-many-errors";
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
		return POP3_EV_BAD;
	}
	va_start(ap, id);
	reply_vmsg(s, id, ap);
	va_end(ap);
	return POP3_EV_BAD;
}

void
pop3_session_resume(struct pop3_session *s)
{
	if (s->state == POP3_STATE_CLOSED)
		return;
	pop3_session_process(s);
}

void
pop3_session_command_done(struct pop3_session *s, enum pop3_ev ev)
{
	switch (ev) {
	case POP3_EV_OK:
		s->bad_cmds = 0;
		break;
	case POP3_EV_BAD:
		break;		/* counted by pop3_bad() */
	case POP3_EV_WAIT:
		break;
	case POP3_EV_CLOSE:
		if (s->state != POP3_STATE_CLOSING)
			pop3_session_enter(s, POP3_STATE_CLOSING,
			    s->end_reason != NULL ? s->end_reason : "close");
		break;
	}
}

static void
pop3_session_process(struct pop3_session *s)
{
	struct evbuffer *in;
	enum pop3_line_result lr;
	enum pop3_ev ev;
	size_t len, max;

	while (pop3_state_reads(s->state) && s->stream == NULL &&
	    s->faults.held == NULL) {
		size_t pending = conn_out_pending(s->conn);
		/* Before login nobody has shown who they are: they get
		 * less of our memory (Dovecot's login processes: 4 KiB). */
		size_t high = pop3_state_preauth(s->state) ?
		    POP3_PREAUTH_OUTPUT_MAX : POP3_OUTPUT_HIGH_WATER;

		/* Streaming: everyone else's commands go first. */
		conn_set_bulk(s->conn, pending > CONN_BULK_MIN);
		/* A pipelining client that never reads its replies must not
		 * make us buffer without bound (I8). */
		if (pending > high) {
			conn_want_drained(s->conn, high / 2);
			return;
		}
		in = conn_in(s->conn);
		max = s->state == POP3_STATE_AUTH_SASL ? POP3_MAX_SASL_LINE :
		    POP3_MAX_LINE;
		lr = pop3_read_line(in, max, &s->discarding, pop3_linebuf, &len);
		pop3_session_line_deadline(s, lr == POP3_LINE_MORE &&
		    (s->discarding || evbuffer_get_length(in) > 0));
		if (lr == POP3_LINE_MORE) {
			/* Half-closed: the replies still go out, then we end. */
			if (s->peer_gone)
				pop3_session_enter(s, POP3_STATE_CLOSING,
				    "peer-gone");
			break;
		}
		if (lr == POP3_LINE_TOO_LONG) {
			pop3_tr_client(s, NULL, "[line too long]", 15);
			if (s->state == POP3_STATE_AUTH_SASL)
				(void)pop3_sasl_line_too_long(s);
			else
				(void)pop3_bad(s, LINE_TOO_LONG);
			continue;
		}
		s->cmd_start_ns = net_mono_ns();
		if (s->state == POP3_STATE_AUTH_SASL) {
			/* SASL data is a secret: only that a line came. */
			conn_info_history(s->conn, "****", 4);
			pop3_tr_client(s, NULL, "****", 4);
			ev = pop3_sasl_line(s, pop3_linebuf, len);
		} else if (!pop3_fault_command(s, pop3_linebuf, len, &ev))
			ev = pop3_cmd_dispatch(s, pop3_linebuf, len);
		explicit_bzero(pop3_linebuf, len);	/* may hold a password */
		pop3_session_command_done(s, ev);
	}
	if (s->state == POP3_STATE_CLOSING) {
		/* no flush will ever come: done now */
		if (conn_out_dead(s->conn)) {
			pop3_session_end(s, s->end_reason ? s->end_reason :
			    "disconnected");
			return;
		}
		conn_want_drained(s->conn, 0);
	}
}

static void
pop3_session_on_conn(struct conn *c, enum conn_event ev, void *ctx)
{
	struct pop3_session *s = ctx;

	(void)c;
	switch (ev) {
	case CONN_EV_READ:
		pop3_session_process(s);
		break;
	case CONN_EV_DRAINED:
		if (s->state == POP3_STATE_CLOSING) {
			pop3_session_end(s, s->end_reason ? s->end_reason : "quit");
			return;
		}
		if (s->stream != NULL && !pop3_stream_fill(s))
			return;
		pop3_session_process(s);
		break;
	case CONN_EV_TLS_READY: {
		char desc[128];
		conn_tls_describe(s->conn, desc, sizeof(desc));
		log_info("session=%llx tls=%s", (unsigned long long)s->id, desc);
		/* RFC 2595 §4: forget everything from before STLS. */
		free(s->user);
		s->user = NULL;
		s->lang = POP3_LANG_DEFAULT;
		s->discarding = false;
		/* Implicit TLS (POP3S) is ready in AUTHORIZATION already. */
		if (s->state == POP3_STATE_STLS_HANDSHAKE)
			pop3_session_enter(s, POP3_STATE_AUTHORIZATION,
			    "tls-ready");
		pop3_session_process(s);
		break;
	}
	case CONN_EV_TIMEOUT:
		if (s->state == POP3_STATE_UPDATE) {
			/* The expunge finishes in its job; after it, only the
			 * reply is left, to a peer that does not take it. */
			s->peer_gone = true;
			break;
		}
		/* RFC 1939 §3: autologout without UPDATE.  A peer that stopped
		 * reading gets nothing more; an idle one is told why. */
		if (s->state == POP3_STATE_CLOSING ||
		    conn_out_pending(s->conn) > 0 || conn_out_dead(s->conn)) {
			pop3_session_end(s, "timeout");
			break;
		}
		pop3_msg(s, IDLE_TIMEOUT);
		s->end_reason = "timeout";
		pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
		conn_want_drained(s->conn, 0);
		break;
	case CONN_EV_CLOSED:
		s->peer_gone = true;
		if (conn_tls_error(s->conn) != NULL) {
			/* Say why (a client offering only TLS 1.0, a clock
			 * or a CA the client rejects): info, not a warning,
			 * as anyone on the Internet can cause it. */
			log_info("session=%llx tls handshake failed client=%s "
			    "reason=\"%s\"", (unsigned long long)s->id,
			    conn_client(s->conn), conn_tls_error(s->conn));
			if (s->end_reason == NULL)
				s->end_reason = "tls-handshake-failed";
		}
		if (s->end_reason == NULL)
			s->end_reason = "disconnected";
		/* After STLS the input is discarded and the handshake can
		 * never finish. */
		if (s->state == POP3_STATE_STLS_HANDSHAKE ||
		    (s->state == POP3_STATE_CLOSING && conn_out_dead(s->conn))) {
			pop3_session_end(s, s->end_reason);
			return;
		}
		/* Half-closed: the last replies still go out, then
		 * CONN_EV_DRAINED ends the session. */
		if (s->state == POP3_STATE_CLOSING)
			break;
		/* Commands the client sent before closing still count (a
		 * pipelined "DELE 1\r\nQUIT\r\n" then close must delete),
		 * but a stream to a peer that is gone is pointless. */
		if (s->stream != NULL && pop3_stream_lost(s)) {
			pop3_session_end(s, s->end_reason);
			return;
		}
		/* Busy (a job, the login delay): it resumes the input. */
		if (pop3_state_reads(s->state))
			pop3_session_process(s);
		break;
	}
}
