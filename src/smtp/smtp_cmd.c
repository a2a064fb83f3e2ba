/*
 * smtp_cmd.c - the command table: which verbs each mode knows, which need
 * the client introduced first, and what each one does.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "smtp/smtp_int.h"

#define MODE_LMTP	(1u << SMTP_MODE_LMTP)
#define MODE_SINK	(1u << SMTP_MODE_SINK)
#define MODE_ALL	(MODE_LMTP | MODE_SINK)

struct smtp_cmd_def {
	unsigned modes;		/* MODE_* where the verb exists */
	bool needs_hello;	/* 503 before LHLO/EHLO/HELO */
	void (*proceed)(struct smtp_session *s, const struct smtp_cmd *cmd);
};

static const char *
hello_verb(const struct smtp_session *s)
{
	return s->p.mode == SMTP_MODE_LMTP ? "LHLO" : "EHLO/HELO";
}

/* A protocol error: reply, then count it toward the 421. */
static void
bad(struct smtp_session *s, unsigned code, const char *enh, const char *text)
{
	smtp_reply(s, code, enh, "%s", text);
	smtp_bad_command(s);
}

/* RFC 5321 §4.1.1.1: a domain or address literal; we only need it to be
 * one printable token, since it is only ever logged and traced. */
static bool
valid_client_name(const char *a, size_t len)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (a[i] <= ' ' || a[i] >= 0x7f)
			return false;
	}
	return true;
}

static void
cmd_hello(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (!valid_client_name(cmd->arg, cmd->arglen)) {
		bad(s, 501, "5.5.4", "Syntax: LHLO/EHLO/HELO hostname");
		return;
	}
	/* RFC 5321 §4.1.4: a new EHLO resets the transaction. */
	smtp_txn_reset(s);
	free(s->client);
	s->client = xstrndup(cmd->arg, cmd->arglen);
	s->env.client = s->client;
	if (cmd->verb == SMTP_VERB_HELO) {
		smtp_reply(s, 250, NULL, "%s", s->hostname);
	} else {
		/* RFC 2034 §3: no enhanced code on EHLO/LHLO replies. */
		smtp_reply_more(s, 250, "%s", s->hostname);
		smtp_reply_more(s, 250, "PIPELINING");
		smtp_reply_more(s, 250, "8BITMIME");
		smtp_reply_more(s, 250, "ENHANCEDSTATUSCODES");
		smtp_reply(s, 250, NULL, "SIZE %llu",
		    (unsigned long long)s->p.max_size);
	}
	smtp_enter_state(s, SMTP_STATE_READY);
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_path path;
	struct smtp_mail_params mp;

	if (s->state != SMTP_STATE_READY) {
		bad(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	switch (smtp_parse_path(cmd->arg, cmd->arglen, "FROM:",
	    SMTP_PATH_NULL_OK, &path)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_TOO_LONG:
		bad(s, 501, "5.1.7", "Path too long");
		return;
	case SMTP_PATH_ROUTE:
		smtp_reply(s, 553, "5.1.7", "Source routes are not accepted");
		return;
	case SMTP_PATH_QUOTED:
		smtp_reply(s, 553, "5.1.7", "Quoted local parts are not accepted");
		return;
	case SMTP_PATH_SYNTAX:
	case SMTP_PATH_NULL:
	default:
		bad(s, 501, "5.1.7", "Syntax: MAIL FROM:<address>");
		return;
	}
	switch (smtp_parse_mail_params(path.params, path.paramslen, &mp)) {
	case SMTP_PARAM_OK:
		break;
	case SMTP_PARAM_UNKNOWN:
		bad(s, 555, "5.5.4", "Unsupported parameter");
		return;
	case SMTP_PARAM_SYNTAX:
	case SMTP_PARAM_DUPLICATE:
	case SMTP_PARAM_BAD_VALUE:
	default:
		bad(s, 501, "5.5.4", "Bad MAIL parameters");
		return;
	}
	if (mp.has_size && mp.size > s->p.max_size) {
		smtp_reply(s, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size");
		return;
	}
	s->mail_from = xstrndup(path.addr, path.len);
	s->env.mail_from = s->mail_from;
	s->env.body_8bit = mp.body == SMTP_BODY_8BITMIME;
	s->env.size_hint = mp.has_size ? mp.size : 0;
	smtp_reply(s, 250, "2.1.0", "Ok");
	smtp_enter_state(s, SMTP_STATE_MAIL);
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_path path;
	enum smtp_op_status st;

	if (s->state != SMTP_STATE_MAIL) {
		bad(s, 503, "5.5.1", "Need MAIL command");
		return;
	}
	switch (smtp_parse_path(cmd->arg, cmd->arglen, "TO:",
	    SMTP_PATH_POSTMASTER_OK, &path)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_TOO_LONG:
		bad(s, 501, "5.1.3", "Path too long");
		return;
	case SMTP_PATH_ROUTE:
		smtp_reply(s, 553, "5.1.3", "Source routes are not accepted");
		return;
	case SMTP_PATH_QUOTED:
		smtp_reply(s, 553, "5.1.3", "Quoted local parts are not accepted");
		return;
	case SMTP_PATH_SYNTAX:
	case SMTP_PATH_NULL:
	default:
		bad(s, 501, "5.1.3", "Syntax: RCPT TO:<address>");
		return;
	}
	if (path.paramslen > 0) {
		bad(s, 555, "5.5.4", "Unsupported parameter");
		return;
	}
	if (s->n_rcpts >= s->p.max_rcpts) {
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	s->pending_rcpt = xstrndup(path.addr, path.len);
	smtp_result_set(&s->rcpt_res, 451, "4.3.0", "Lookup failed");
	smtp_enter_state(s, SMTP_STATE_RCPT_WAIT);
	s->in_op = true;
	s->early_done = false;
	st = s->ops->rcpt_check(s->ctx, &s->env, s->pending_rcpt, &s->rcpt_res);
	s->in_op = false;
	if (st == SMTP_OP_DONE || s->early_done)
		smtp_rcpt_finish(s, &s->rcpt_res);
}

static void
cmd_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_result res;

	if (cmd->arglen > 0) {
		bad(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->state != SMTP_STATE_MAIL) {
		bad(s, 503, "5.5.1", "Need MAIL command");
		return;
	}
	/* RFC 2033 §4.2: no accepted recipient makes DATA fail with 503. */
	if (s->n_rcpts == 0) {
		bad(s, 503, "5.5.1", "No valid recipients");
		return;
	}
	if (s->ops->data_begin != NULL) {
		smtp_result_set(&res, 451, "4.3.0", "Cannot accept data");
		if (!s->ops->data_begin(s->ctx, &s->env, &res)) {
			if (res.code >= 200 && res.code < 300)
				smtp_result_set(&res, 451, "4.3.0",
				    "Cannot accept data");
			smtp_reply_result(s, &res);
			return;
		}
	}
	smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	smtp_body_start(s);
}

static void
cmd_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arglen > 0) {
		bad(s, 501, "5.5.4", "Syntax: RSET");
		return;
	}
	smtp_txn_reset(s);
	smtp_reply(s, 250, "2.0.0", "Ok");
	if (s->state == SMTP_STATE_MAIL)
		smtp_enter_state(s, SMTP_STATE_READY);
}

static void
cmd_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	/* RFC 5321 §4.1.1.9: a string argument is allowed and ignored. */
	(void)cmd;
	smtp_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_close(s, 221, "2.0.0", "closing connection");
}

static void
cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arglen == 0) {
		bad(s, 501, "5.5.4", "Syntax: VRFY address");
		return;
	}
	/* RFC 5321 §3.5.3: 252 neither confirms nor denies (no user
	 * enumeration). */
	smtp_reply(s, 252, "2.5.0",
	    "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 214, "2.0.0", "Commands: %s MAIL RCPT DATA RSET NOOP "
	    "QUIT VRFY HELP", s->p.mode == SMTP_MODE_LMTP ? "LHLO" :
	    "EHLO HELO");
}

static const struct smtp_cmd_def cmd_table[SMTP_VERB_COUNT] = {
	[SMTP_VERB_LHLO] = { MODE_LMTP, false, cmd_hello },
	[SMTP_VERB_EHLO] = { MODE_SINK, false, cmd_hello },
	[SMTP_VERB_HELO] = { MODE_SINK, false, cmd_hello },
	[SMTP_VERB_MAIL] = { MODE_ALL, true, cmd_mail },
	[SMTP_VERB_RCPT] = { MODE_ALL, true, cmd_rcpt },
	[SMTP_VERB_DATA] = { MODE_ALL, true, cmd_data },
	[SMTP_VERB_RSET] = { MODE_ALL, false, cmd_rset },
	[SMTP_VERB_NOOP] = { MODE_ALL, false, cmd_noop },
	[SMTP_VERB_QUIT] = { MODE_ALL, false, cmd_quit },
	[SMTP_VERB_VRFY] = { MODE_ALL, false, cmd_vrfy },
	[SMTP_VERB_HELP] = { MODE_ALL, false, cmd_help },
};

void
smtp_cmd_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	const struct smtp_cmd_def *def;

	switch (smtp_parse_cmd(line, len, &cmd)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_EMPTY:
		bad(s, 500, "5.5.2", "Empty command");
		return;
	case SMTP_PARSE_BAD_BYTES:
		bad(s, 500, "5.5.2", "Bad characters in command");
		return;
	case SMTP_PARSE_UNKNOWN:
	default:
		bad(s, 500, "5.5.1", "Command unrecognized");
		return;
	}
	def = &cmd_table[cmd.verb];
	if (!(def->modes & (1u << s->p.mode))) {
		bad(s, 500, "5.5.1", s->p.mode == SMTP_MODE_LMTP ?
		    "Command unrecognized: this is LMTP, use LHLO" :
		    "Command unrecognized");
		return;
	}
	if (s->state == SMTP_STATE_REFUSED && cmd.verb != SMTP_VERB_QUIT) {
		bad(s, 503, "5.7.1", "No service here, only QUIT");
		return;
	}
	if (def->needs_hello && s->state == SMTP_STATE_CONNECTED) {
		smtp_reply(s, 503, "5.5.1", "Send %s first", hello_verb(s));
		smtp_bad_command(s);
		return;
	}
	def->proceed(s, &cmd);
}
