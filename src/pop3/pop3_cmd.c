/* pop3_cmd.c - the command table: which verb, in which state, how many
 * arguments, which handler.  Handlers never count their own arguments. */
#include <string.h>

#include "lib/params.h"
#include "net/conn.h"
#include "net/registry.h"
#include "net/runtime.h"
#include "pop3/pop3_int.h"
#include "pop3/pop3_policy.h"

#define ARGS_REST (-1)	/* the whole rest of the line is one argument */

struct pop3_cmd_def {
	enum pop3_verb verb;
	unsigned states;
	int min_args, max_args;
	enum pop3_ev (*fn)(struct pop3_session *, const struct pop3_cmd *);
};

#define AUTHZ POP3_IN(POP3_STATE_AUTHORIZATION)
#define TRANS POP3_IN(POP3_STATE_TRANSACTION)

static const struct pop3_cmd_def cmd_table[POP3_VERB_COUNT] = {
	[POP3_VERB_USER] = { POP3_VERB_USER, AUTHZ, 1, ARGS_REST, pop3_cmd_user },
	[POP3_VERB_PASS] = { POP3_VERB_PASS, AUTHZ, 0, ARGS_REST, pop3_cmd_pass },
	[POP3_VERB_APOP] = { POP3_VERB_APOP, AUTHZ, 2, 2, pop3_cmd_apop },
	[POP3_VERB_AUTH] = { POP3_VERB_AUTH, AUTHZ, 0, 2, pop3_cmd_auth },
	[POP3_VERB_STLS] = { POP3_VERB_STLS, AUTHZ, 0, 0, pop3_cmd_stls },
	[POP3_VERB_CAPA] = { POP3_VERB_CAPA, AUTHZ | TRANS, 0, 0, pop3_cmd_capa },
	[POP3_VERB_QUIT] = { POP3_VERB_QUIT, AUTHZ | TRANS, 0, 0, pop3_cmd_quit },
	[POP3_VERB_STAT] = { POP3_VERB_STAT, TRANS, 0, 0, pop3_cmd_stat },
	[POP3_VERB_LIST] = { POP3_VERB_LIST, TRANS, 0, 1, pop3_cmd_list },
	[POP3_VERB_RETR] = { POP3_VERB_RETR, TRANS, 1, 1, pop3_cmd_retr },
	[POP3_VERB_DELE] = { POP3_VERB_DELE, TRANS, 1, 1, pop3_cmd_dele },
	[POP3_VERB_NOOP] = { POP3_VERB_NOOP, TRANS, 0, 0, pop3_cmd_noop },
	[POP3_VERB_RSET] = { POP3_VERB_RSET, TRANS, 0, 0, pop3_cmd_rset },
	[POP3_VERB_TOP]  = { POP3_VERB_TOP,  TRANS, 2, 2, pop3_cmd_top },
	[POP3_VERB_UIDL] = { POP3_VERB_UIDL, TRANS, 0, 1, pop3_cmd_uidl },
	[POP3_VERB_UTF8] = { POP3_VERB_UTF8, AUTHZ, 0, 0, pop3_cmd_utf8 },
	[POP3_VERB_LANG] = { POP3_VERB_LANG, AUTHZ | TRANS, 0, 1, pop3_cmd_lang },
};

/* Appends up to len bytes of p, cut at a NUL as "%.*s" cuts. */
static size_t
hist_put(char *b, size_t n, size_t cap, const char *p, size_t len)
{
	len = strnlen(p, len);
	if (len > cap - n)
		len = cap - n;
	memcpy(b + n, p, len);
	return n + len;
}

/*
 * The line as the Sessions page shows it: the verb and its arguments,
 * but never a secret: PASS's argument, APOP's digest and AUTH's initial
 * response become "****" (the lines of an AUTH exchange are recorded
 * as "****" by the session).
 */
/* The transcript (pop3_transcript.c) records the same line, whole: the
 * history cuts it at NET_REG_HISTORY_LEN.  Built by hand, not by
 * snprintf(): it runs for every command, and parsing the format was
 * most of its cost. */
static void
pop3_cmd_history(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	char line[POP3_MAX_LINE + 16];
	const size_t cap = sizeof(line) - 1;
	const char *verb = pop3_verb_name(cmd->verb);
	size_t n;

	n = hist_put(line, 0, cap, verb, strlen(verb));
	switch (cmd->verb) {
	case POP3_VERB_PASS:
		if (cmd->restlen > 0)
			n = hist_put(line, n, cap, " ****", 5);
		break;
	case POP3_VERB_APOP:
	case POP3_VERB_AUTH:
		/* The first argument (a name, a mechanism) is no secret. */
		if (cmd->nargs > 0) {
			n = hist_put(line, n, cap, " ", 1);
			n = hist_put(line, n, cap, cmd->args[0],
			    cmd->arglens[0]);
		}
		if (cmd->nargs > 1)
			n = hist_put(line, n, cap, " ****", 5);
		break;
	default:
		if (cmd->restlen > 0) {
			n = hist_put(line, n, cap, " ", 1);
			n = hist_put(line, n, cap, cmd->rest, cmd->restlen);
		}
		break;
	}
	line[n] = '\0';
	if (n > 0) {
		conn_info_history(s->conn, line, n);
		pop3_tr_client(s, verb, line, n);
	}
}

enum pop3_ev
pop3_cmd_dispatch(struct pop3_session *s, const char *line, size_t len)
{
	const struct pop3_cmd_def *def;
	struct pop3_cmd cmd;

	switch (pop3_parse(line, len, &cmd)) {
	case POP3_PARSE_OK:
		break;
	case POP3_PARSE_EMPTY:
		pop3_tr_client(s, NULL, "[empty line]", 12);
		return pop3_bad(s, EMPTY_CMD);
	case POP3_PARSE_BAD_BYTES:
		/* Not shown: a line we cannot parse may be anything. */
		pop3_tr_note(s, "[a line with bad bytes: %zu octets]", len);
		return pop3_bad(s, BAD_BYTES);
	case POP3_PARSE_UNKNOWN:
		pop3_tr_note(s, "[unknown command: %zu octets]", len);
		return pop3_bad(s, UNKNOWN_CMD);
	}
	def = &cmd_table[cmd.verb];
	/* The verb only: a known one, never what follows it. */
	conn_info_command(s->conn, pop3_verb_name(cmd.verb));
	pop3_cmd_history(s, &cmd);
	if ((def->states & POP3_IN(s->state)) == 0)
		return pop3_bad(s, WRONG_STATE, pop3_verb_name(cmd.verb));
	if (def->max_args == ARGS_REST) {
		if (def->min_args > 0 && cmd.restlen == 0)
			return pop3_bad(s, MISSING_ARG);
	} else if (cmd.nargs < (unsigned)def->min_args ||
	    cmd.nargs > (unsigned)def->max_args || cmd.empty_arg) {
		return pop3_bad(s, WRONG_ARGS);
	}
	return def->fn(s, &cmd);
}

enum pop3_ev
pop3_cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	bool plain_ok = pop3_login_plaintext_ok(s);

	(void)cmd;
	pop3_msg(s, CAPA);
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	pop3_policy_capa(s);
	/* RFC 6856: UTF-8 user names and passwords are accepted with or
	 * without the UTF8 command ("USER"), replies in LANG's languages. */
	pop3_reply(s, "UTF8 USER");
	pop3_reply(s, "LANG");
	if (s->state == POP3_STATE_AUTHORIZATION) {
		if (plain_ok)
			pop3_reply(s, "USER");
		pop3_sasl_capa(s);
		if (pop3_session_tls_offered(s))
			pop3_reply(s, "STLS");
	}
	pop3_reply(s, "IMPLEMENTATION posuto-%s", POSUTO_VERSION);
	pop3_reply(s, ".");
	return POP3_EV_OK;
}

/* RFC 6856 §2.1.  Mail is sent as it is stored either way: the mode
 * only tells us the client takes UTF-8 (and may send it: PASS). */
enum pop3_ev
pop3_cmd_utf8(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	s->utf8 = true;
	pop3_msg(s, UTF8_OK);
	return POP3_EV_OK;
}

/* RFC 6856 §3: list the languages, or choose one (answered in it). */
enum pop3_ev
pop3_cmd_lang(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	enum pop3_lang lang;

	if (cmd->nargs == 0) {
		pop3_msg(s, LANG_LIST);
		for (unsigned l = 0; l < POP3_LANG_COUNT; l++)
			pop3_reply(s, "%s %s", pop3_lang_tag((enum pop3_lang)l),
			    pop3_lang_name((enum pop3_lang)l));
		pop3_reply(s, ".");
		return POP3_EV_OK;
	}
	switch (pop3_lang_lookup(cmd->args[0], cmd->arglens[0], &lang)) {
	case POP3_LANG_MATCH:
		s->lang = lang;
		pop3_msg(s, LANG_CHANGED);
		return POP3_EV_OK;
	case POP3_LANG_NO_MATCH:
		/* The current language stays (RFC 6856 §3). */
		pop3_msg(s, LANG_UNKNOWN);
		return POP3_EV_OK;
	case POP3_LANG_BAD_RANGE:
		break;
	}
	return pop3_bad(s, LANG_INVALID);
}

enum pop3_ev
pop3_cmd_quit(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	if (s->state == POP3_STATE_AUTHORIZATION) {
		/* RFC 1939 §6: QUIT before login enters no UPDATE state. */
		pop3_msg(s, BYE);
		s->end_reason = "quit";
		return POP3_EV_CLOSE;
	}
	pop3_session_enter(s, POP3_STATE_UPDATE, "QUIT");
	return pop3_job_commit(s);
}
