/*
 * smtp_session.h - the LMTP (RFC 2033) / development SMTP sink protocol
 * engine, sans I/O: bytes in through smtp_session_input(), replies out
 * through ops->reply, recipients and delivery decided by the embedding
 * through ops that may complete later (nothing here blocks or reads a
 * socket).  One session per connection.  See docs/HACKING.md.
 */
#ifndef SMTP_SESSION_H
#define SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_session;

/* Defaults for the zero fields of smtp_session_params, with reasons. */
/* Postfix's message_size_limit is 10 MB; a development sink and a local
 * LMTP hop see attachments too, and the body is streamed, not held. */
#define SMTP_DEFAULT_MAX_SIZE	(64u * 1024 * 1024)
/* RFC 5321 §4.5.3.1.8: at least 100 recipients must be buffered. */
#define SMTP_DEFAULT_MAX_RCPTS	100
/* RFC 5321 §4.5.3.1.4 says 512 with CRLF, and lets extensions (SIZE,
 * BODY) raise it; a 256-octet path plus parameters fits in 1000. */
#define SMTP_DEFAULT_MAX_LINE	1000
/* Protocol errors (unknown, syntax, sequence) before 421 (Postfix's
 * smtpd_hard_error_limit 20; Dovecot's pop3-login 3).  Refused
 * recipients are not errors: LMTP clients meet unknown users. */
#define SMTP_DEFAULT_MAX_BAD_CMDS	10
/* Body bytes handed to data_write at a time; the only DATA buffer. */
#define SMTP_DATA_CHUNK		(32 * 1024)
/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with CRLF. */
#define SMTP_MAX_REPLY		512

enum smtp_mode {
	SMTP_MODE_LMTP = 0,	/* LHLO; one DATA reply per recipient */
	SMTP_MODE_SINK,		/* EHLO/HELO; one DATA reply */
};

struct smtp_session_params {
	enum smtp_mode mode;
	const char *hostname;	/* for the greeting; copied */
	uint64_t max_size;	/* SIZE: body octets (CRLF form); 0 = default */
	unsigned max_rcpts;	/* per transaction; 0 = default */
	size_t max_line;	/* command line without CRLF; 0 = default */
	unsigned max_bad_cmds;	/* protocol errors before 421; 0 = default */
	/*
	 * The client connects from loopback (or from wherever the embedding
	 * decided to trust).  In SINK mode a false here refuses the session:
	 * a 554 greeting and 503 to everything but QUIT.  LMTP ignores it.
	 */
	bool peer_loopback;
};

/* A verdict from the embedding, formatted by the engine into one line. */
#define SMTP_RESULT_TEXT_MAX 200
struct smtp_result {
	unsigned code;		/* 2xx, 4xx or 5xx; anything else -> 451 */
	char enhanced[16];	/* "5.1.1" (RFC 3463); "" -> X.0.0 */
	char text[SMTP_RESULT_TEXT_MAX];	/* controls become '?' */
};

void smtp_result_set(struct smtp_result *r, unsigned code,
    const char *enhanced, const char *text);

/* What the transaction is about; valid during the op that receives it. */
struct smtp_envelope {
	const char *client;	/* LHLO/EHLO/HELO argument; "" before it */
	const char *mail_from;	/* reverse-path without <>; "" for <> */
	bool body_8bit;		/* BODY=8BITMIME */
	uint64_t size_hint;	/* MAIL SIZE=, 0 if none */
	/* Recipients accepted so far, in RCPT order, without <>. */
	char *const *rcpts;
	size_t n_rcpts;
};

enum smtp_op_status {
	SMTP_OP_DONE = 0,	/* the result is filled in */
	SMTP_OP_PENDING,	/* the embedding calls smtp_session_*_done() */
};

struct smtp_session_ops {
	/* Reply bytes: whole CRLF-terminated lines, each <= 512 octets. */
	void (*reply)(void *ctx, const char *text, size_t len);
	/*
	 * Is addr (without <>) a recipient?  2xx accepts it, 4xx/5xx
	 * refuses it (550 5.1.1 unknown, 451 4.x temporary).  env->rcpts
	 * holds the ones accepted before it.
	 */
	enum smtp_op_status (*rcpt_check)(void *ctx,
	    const struct smtp_envelope *env, const char *addr,
	    struct smtp_result *res);
	/*
	 * Optional.  DATA is about to be answered 354: open the spool file.
	 * Return false with *res (4xx/5xx) to refuse DATA instead.
	 */
	bool (*data_begin)(void *ctx, const struct smtp_envelope *env,
	    struct smtp_result *res);
	/*
	 * Body bytes, un-dot-stuffed, with CRLF line ends, in order, in
	 * chunks of at most SMTP_DATA_CHUNK.  Return false on a write error:
	 * the rest is discarded and every recipient gets 451 4.3.0.
	 */
	bool (*data_write)(void *ctx, const char *bytes, size_t len);
	/*
	 * The final "." arrived: make the message durable for each of
	 * env->n_rcpts recipients and fill res[i] for env->rcpts[i] (LMTP
	 * replies with each in order; SINK mode sends one reply: 250 if all
	 * are 2xx, else the first 4xx, else the first 5xx).
	 */
	enum smtp_op_status (*data_done)(void *ctx,
	    const struct smtp_envelope *env, struct smtp_result *res);
	/*
	 * The message begun by data_begin (or the first data_write) will not
	 * get a data_done: size exceeded, write error, timeout or session
	 * freed mid-DATA.  Discard what was written.  Optional.
	 */
	void (*data_abort)(void *ctx);
	/*
	 * The engine has sent its last reply (221, 421): flush output and
	 * close.  Called once; do not free the session from inside it.
	 * Optional (see smtp_session_closed()).
	 */
	void (*close)(void *ctx);
};

struct smtp_session *smtp_session_new(const struct smtp_session_params *p,
    const struct smtp_session_ops *ops, void *ctx);
/* Ops must not call back into the session except for *_done. */
/* Frees; aborts a message in progress (data_abort).  A pending op must
 * be cancelled by the embedding first: it must not call *_done after. */
void smtp_session_free(struct smtp_session **sp);

/* Sends the 220 (or 554) greeting.  Input is refused until then. */
void smtp_session_start(struct smtp_session *s);

/*
 * Consumes client bytes; returns how many it took.  Fewer than len means
 * the session is blocked (an op is pending) or closed: keep the rest and
 * offer it again after calling smtp_session_*_done().  Partial lines are
 * kept inside (bounded by max_line), so any split of the stream gives
 * the same replies.
 */
size_t smtp_session_input(struct smtp_session *s, const void *bytes,
    size_t len);

/* Completes a pending rcpt_check. */
void smtp_session_rcpt_done(struct smtp_session *s,
    const struct smtp_result *res);
/* Completes a pending data_done; res[i] for each of the n_rcpts. */
void smtp_session_data_done(struct smtp_session *s,
    const struct smtp_result *res, size_t n);

/*
 * The idle timer fired: 421 4.4.2, abort any message, close.  Do not run
 * the timer while an op is pending: a 421 over a delivery that went on to
 * succeed makes the client send the message again (a duplicate).
 */
void smtp_session_timeout(struct smtp_session *s);

/* An op is pending: input is not consumed until its *_done call. */
bool smtp_session_blocked(const struct smtp_session *s);
/* The last reply went out; nothing more will be consumed. */
bool smtp_session_closed(const struct smtp_session *s);

#endif
