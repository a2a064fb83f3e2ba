/*
 * pop3_sasl.c - RFC 5034 AUTH, all of it: which mechanisms are offered
 * (CAPA, AUTH with no argument), starting an exchange, the client's
 * response lines in AUTH_SASL, and each step's run on a worker and its
 * completion.  The mechanisms themselves are auth/sasl.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "pop3/pop3_int.h"

bool
pop3_sasl_mech_enabled(struct pop3_session *s, enum sasl_mech m)
{
	const struct pop3_params *p = &s->env->params;

	if (p->sasl_mechs_set)
		return (p->sasl_mechs >> m & 1u) != 0;
	/* Default: what every client can finish.  A client picks the best
	 * mechanism in CAPA before it knows whether its user has SCRAM keys
	 * (mpop's "auth on"), so SCRAM-SHA-256 only when every user has
	 * them; -PLUS never (GNU SASL clients such as neomutt choose it over
	 * TLS but cannot supply tls-exporter data). */
	if (m == SASL_MECH_PLAIN || m == SASL_MECH_LOGIN)
		return true;
	return m == SASL_MECH_SCRAM_SHA_256 &&
	    userdb_all_scram(pop3_session_userdb(s));
}

bool
pop3_sasl_mech_offered(struct pop3_session *s, enum sasl_mech m)
{
	if (!pop3_sasl_mech_enabled(s, m))
		return false;
	if (sasl_mech_is_plaintext(m) && !pop3_login_plaintext_ok(s))
		return false;
	return m != SASL_MECH_SCRAM_SHA_256_PLUS || conn_tls_active(s->conn);
}

void
pop3_sasl_capa(struct pop3_session *s)
{
	char mechs[128] = "SASL";

	for (unsigned m = 0; m < SASL_MECH_COUNT; m++) {
		if (!pop3_sasl_mech_offered(s, (enum sasl_mech)m))
			continue;
		strncat(mechs, " ", sizeof(mechs) - strlen(mechs) - 1);
		strncat(mechs, sasl_mech_name((enum sasl_mech)m),
		    sizeof(mechs) - strlen(mechs) - 1);
	}
	if (strcmp(mechs, "SASL") != 0)	/* none offered: no line */
		pop3_reply(s, "%s", mechs);
}

enum pop3_ev
pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	enum sasl_mech mech;
	struct sasl_channel chan;
	char name[64];
	unsigned char *ir = NULL;
	size_t irlen = 0;
	bool have_ir = false;

	if (cmd->nargs == 0) {
		/* Pre-RFC 5034 clients (Outlook) list mechanisms this way. */
		pop3_msg(s, MECH_LIST);
		for (unsigned m = 0; m < SASL_MECH_COUNT; m++) {
			if (pop3_sasl_mech_offered(s, (enum sasl_mech)m))
				pop3_reply(s, "%s", sasl_mech_name((enum sasl_mech)m));
		}
		pop3_reply(s, ".");
		return POP3_EV_OK;
	}
	name[0] = '\0';
	if (cmd->arglens[0] < sizeof(name)) {
		memcpy(name, cmd->args[0], cmd->arglens[0]);
		name[cmd->arglens[0]] = '\0';
	}
	if (name[0] == '\0' || !sasl_mech_lookup(name, &mech)) {
		pop3_log_login_failed(s, NULL, "AUTH", "unknown-mechanism");
		return pop3_bad(s, MECH_UNSUPPORTED);
	}
	if (!pop3_sasl_mech_enabled(s, mech)) {
		/* Same answer as for an unknown one: it is not offered. */
		pop3_log_login_failed(s, NULL, sasl_mech_name(mech),
		    "mechanism-not-allowed");
		return pop3_bad(s, MECH_UNSUPPORTED);
	}
	if (sasl_mech_is_plaintext(mech) && !pop3_login_plaintext_ok(s)) {
		pop3_log_login_failed(s, NULL, sasl_mech_name(mech),
		    "plaintext-refused");
		pop3_msg(s, PLAINTEXT_REFUSED);
		return POP3_EV_OK;
	}
	memset(&chan, 0, sizeof(chan));
	chan.tls = conn_tls_active(s->conn);
	if (mech == SASL_MECH_SCRAM_SHA_256_PLUS && !chan.tls) {
		pop3_log_login_failed(s, NULL, sasl_mech_name(mech),
		    "plus-without-tls");
		return pop3_bad(s, SCRAM_PLUS_NEEDS_TLS);
	}
	/* Binding data only when -PLUS is offered: otherwise a client that
	 * can bind rightly says "y" (RFC 5802 §6) and must not be taken
	 * for a downgrade. */
	if (chan.tls && pop3_sasl_mech_offered(s,
	    SASL_MECH_SCRAM_SHA_256_PLUS) &&
	    !conn_channel_binding(s->conn, &chan.cb_type,
	    chan.cb_data, sizeof(chan.cb_data), &chan.cb_len))
		chan.cb_len = 0;
	if (cmd->nargs == 2) {
		have_ir = true;
		/* RFC 5034 §4: "=" is an empty initial response. */
		if (!(cmd->arglens[1] == 1 && cmd->args[1][0] == '=')) {
			long n;
			ir = xmalloc(base64_decoded_max(cmd->arglens[1]));
			n = base64_decode(cmd->args[1], cmd->arglens[1], ir);
			if (n < 0) {
				free(ir);
				pop3_log_login_failed(s, NULL,
				    sasl_mech_name(mech), "malformed-base64");
				return pop3_bad(s, IR_BAD_B64);
			}
			irlen = (size_t)n;
		} else {
			ir = xmalloc(1);
		}
	}
	s->sasl = sasl_server_new(mech, pop3_session_userdb(s), &chan);
	s->sasl_mech = mech;
	if (!have_ir) {
		/* Let the mechanism speak first ("+ " challenge). */
		return pop3_job_sasl_step(s, NULL, 0);
	}
	return pop3_job_sasl_step(s, ir, irlen);
}


/* The exchange ends without an outcome: AUTHORIZATION again. */
static void
sasl_abandon(struct pop3_session *s, const char *why)
{
	pop3_log_login_failed(s, sasl_server_username(s->sasl),
	    sasl_mech_name(s->sasl_mech), why);
	sasl_server_free(&s->sasl);
	pop3_session_enter(s, POP3_STATE_AUTHORIZATION, why);
}

enum pop3_ev
pop3_sasl_line(struct pop3_session *s, const char *line, size_t len)
{
	unsigned char *buf;
	long n;

	/* RFC 5034 §4: a lone "*" cancels and MUST get -ERR. */
	if (len == 1 && line[0] == '*') {
		sasl_abandon(s, "cancelled");
		pop3_msg(s, AUTH_CANCELLED);
		return POP3_EV_OK;
	}
	buf = xmalloc(base64_decoded_max(len));
	n = base64_decode(line, len, buf);
	if (n < 0) {
		free(buf);
		sasl_abandon(s, "malformed-base64");
		return pop3_bad(s, SASL_BAD_B64);
	}
	/* The job owns buf from here. */
	return pop3_job_sasl_step(s, buf, (size_t)n);
}

enum pop3_ev
pop3_sasl_line_too_long(struct pop3_session *s)
{
	sasl_server_free(&s->sasl);
	pop3_session_enter(s, POP3_STATE_AUTHORIZATION, "line-too-long");
	return pop3_bad(s, SASL_TOO_LONG);
}

void
pop3_sasl_step_work(struct pop3_sasl_step *st, struct pop3_login *l)
{
	st->ss = sasl_server_step(st->sasl, st->in, st->inlen, &st->out,
	    &st->outlen);
	if (st->ss == SASL_OK) {
		l->entry = sasl_server_entry(st->sasl);
		l->ar = AUTH_OK;
	} else {
		l->ar = st->ss == SASL_TEMPFAIL ? AUTH_TEMPFAIL : AUTH_FAILED;
		/* A string literal: outlives the exchange. */
		l->why = sasl_server_fail_reason(st->sasl);
	}
}

bool
pop3_sasl_step_done(struct pop3_session *s, struct pop3_sasl_step *st,
    const struct pop3_login *l, char **user)
{
	if (st->ss == SASL_CONTINUE) {
		char *b64 = xmalloc(base64_encoded_len(st->outlen) + 1);

		base64_encode(st->out, st->outlen, b64);
		pop3_reply_challenge(s, b64);
		free(b64);
		s->sasl = st->sasl;
		st->sasl = NULL;
		pop3_session_enter(s, POP3_STATE_AUTH_SASL, "challenge");
		return false;
	}
	if (*user == NULL && sasl_server_username(st->sasl) != NULL)
		*user = xstrdup(sasl_server_username(st->sasl));
	sasl_server_free(&st->sasl);
	if (st->ss == SASL_BAD_INPUT) {
		pop3_log_login_failed(s, *user, s->login_method, l->why);
		s->login_method = NULL;
		pop3_msg(s, SASL_MALFORMED);
		pop3_session_enter(s, POP3_STATE_AUTHORIZATION, "malformed");
		return false;
	}
	return true;
}
