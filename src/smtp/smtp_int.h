/* smtp_int.h - private to src/smtp: the session and the command table. */
#ifndef SMTP_INT_H
#define SMTP_INT_H

#include "lib/log.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_session.h"

enum smtp_state {
	SMTP_STATE_NEW = 0,	/* before smtp_session_start() */
	SMTP_STATE_REFUSED,	/* 554 greeting: only QUIT does anything */
	SMTP_STATE_CONNECTED,	/* greeted, waiting for LHLO/EHLO/HELO */
	SMTP_STATE_READY,	/* introduced, no transaction */
	SMTP_STATE_MAIL,	/* MAIL accepted, collecting RCPTs */
	SMTP_STATE_RCPT_WAIT,	/* rcpt_check pending */
	SMTP_STATE_DATA,	/* 354 sent, reading the body */
	SMTP_STATE_DATA_WAIT,	/* data_done pending */
	SMTP_STATE_CLOSED,	/* 221/421 sent */
	SMTP_STATE_COUNT
};

/* Where the body reader is within a line (dot-stuffing, end marker). */
enum smtp_dpos {
	SMTP_D_BOL = 0,		/* at the start of a line */
	SMTP_D_DOT,		/* a '.' at the start of a line, held */
	SMTP_D_DOT_CR,		/* ".\r" at the start of a line, held */
	SMTP_D_TEXT,		/* inside a line */
	SMTP_D_CR,		/* a '\r' inside a line, held */
};

struct smtp_session {
	uint64_t id;
	struct smtp_session_params p;
	char hostname[SMTP_DOMAIN_MAX + 1];
	const struct smtp_session_ops *ops;
	void *ctx;
	enum smtp_state state;
	unsigned bad_cmds;
	bool close_called;

	/* Command line reader: line holds max_line + 1 bytes (the CR). */
	char *line;
	size_t linelen;
	bool discarding;	/* inside a line over max_line */

	/* The transaction; env points into these. */
	struct smtp_envelope env;
	char *client;
	char *mail_from;
	char **rcpts;
	size_t n_rcpts;
	char *pending_rcpt;	/* address waiting for rcpt_check */

	/* Body reader. */
	enum smtp_dpos dpos;
	char *dbuf;		/* SMTP_DATA_CHUNK bytes during DATA */
	size_t dlen;
	uint64_t body_size;
	bool body_open;		/* data_begin/first write done, no done/abort */
	bool body_too_big;
	bool body_failed;

	/* Results the ops fill: valid until the matching *_done. */
	struct smtp_result rcpt_res;
	struct smtp_result *data_res;	/* n_rcpts entries in DATA_WAIT */
	/* *_done called from inside the op, before it returned PENDING. */
	bool in_op;
	bool early_done;
};

/* smtp_session.c */
void smtp_enter_state(struct smtp_session *s, enum smtp_state st);
void smtp_reply(struct smtp_session *s, unsigned code, const char *enh,
    const char *fmt, ...) LOG_PRINTF(4, 5);
/* A "250-..." continuation line (enh NULL: none, RFC 2034 for EHLO). */
void smtp_reply_more(struct smtp_session *s, unsigned code, const char *fmt,
    ...) LOG_PRINTF(3, 4);
void smtp_reply_result(struct smtp_session *s, const struct smtp_result *r);
/* A protocol error was answered: count it, 421 and close at the limit. */
void smtp_bad_command(struct smtp_session *s);
void smtp_close(struct smtp_session *s, unsigned code, const char *enh,
    const char *why);
void smtp_txn_reset(struct smtp_session *s);
void smtp_body_start(struct smtp_session *s);
void smtp_rcpt_finish(struct smtp_session *s, const struct smtp_result *res);

/* smtp_cmd.c */
void smtp_cmd_dispatch(struct smtp_session *s, const char *line, size_t len);

#endif
