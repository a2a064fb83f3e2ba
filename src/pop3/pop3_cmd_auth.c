/* pop3_cmd_auth.c - AUTHORIZATION state: USER, PASS, APOP, AUTH, STLS. */
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "pop3/pop3_int.h"

enum pop3_ev
pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	free(s->user);
	s->user = NULL;
	if (!pop3_session_plaintext_ok(s)) {
		pop3_log_login_failed(s, NULL, "USER", "plaintext-refused");
		pop3_msg(s, PLAINTEXT_REFUSED);
		return POP3_EV_OK;
	}
	/* Bytes that are not UTF-8 are no name at all, in any mode (RFC
	 * 6856; Dovecot's CVE-2019-10691): saying so reveals no account. */
	if (!pop3_utf8_valid(cmd->rest, cmd->restlen)) {
		pop3_log_login_failed(s, NULL, "USER", "invalid-utf8");
		return pop3_bad(s, USER_BAD_UTF8);
	}
	/* Unknown and invalid names answer the same: nothing is revealed
	 * before PASS (I6).  An invalid one can never log in. */
	if (cmd->restlen > USERNAME_MAX ||
	    !userdb_name_valid(cmd->rest, cmd->restlen)) {
		s->user = xstrdup("");
	} else {
		s->user = xstrndup(cmd->rest, cmd->restlen);
	}
	pop3_msg(s, SEND_PASS);
	return POP3_EV_OK;
}

enum pop3_ev
pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (!pop3_session_plaintext_ok(s)) {
		pop3_log_login_failed(s, s->user, "USER", "plaintext-refused");
		pop3_msg(s, PLAINTEXT_REFUSED);
		return POP3_EV_OK;
	}
	if (s->user == NULL)
		return pop3_bad(s, USER_FIRST);
	/* A client in UTF8 mode promised UTF-8.  Without it, a password is
	 * octets: a legacy 8-bit one (Shift_JIS) still matches its hash. */
	if (s->utf8 && !pop3_utf8_valid(cmd->rest, cmd->restlen)) {
		pop3_log_login_failed(s, s->user, "USER", "invalid-utf8");
		return pop3_bad(s, PASS_BAD_UTF8);
	}
	if (cmd->restlen > PASSWORD_MAX) {
		pop3_log_login_failed(s, s->user, "USER", "password-too-long");
		pop3_msg(s, AUTH_FAILED);
		return POP3_EV_OK;
	}
	/* "PASS" alone is an empty password: it fails like a wrong one. */
	return pop3_job_login_pass(s, cmd->restlen > 0 ? cmd->rest : "",
	    cmd->restlen);
}

enum pop3_ev
pop3_cmd_apop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	char user[USERNAME_MAX + 1];
	char digest[33];

	if (s->apop_ts == NULL) {
		pop3_log_login_failed(s, NULL, "APOP", "apop-not-offered");
		return pop3_bad(s, APOP_UNAVAILABLE);
	}
	free(s->user);
	s->user = NULL;
	if (cmd->arglens[1] != 32 || cmd->arglens[0] > USERNAME_MAX ||
	    !userdb_name_valid(cmd->args[0], cmd->arglens[0])) {
		pop3_log_login_failed(s, NULL, "APOP", cmd->arglens[1] != 32 ?
		    "malformed-digest" : AUTH_WHY_INVALID_NAME);
		pop3_msg(s, AUTH_FAILED);
		return POP3_EV_OK;
	}
	memcpy(user, cmd->args[0], cmd->arglens[0]);
	user[cmd->arglens[0]] = '\0';
	memcpy(digest, cmd->args[1], 32);
	digest[32] = '\0';
	return pop3_job_login_apop(s, user, digest);
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
			if (pop3_session_mech_offered(s, (enum sasl_mech)m))
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
	if (!pop3_session_mech_enabled(s, mech)) {
		/* Same answer as for an unknown one: it is not offered. */
		pop3_log_login_failed(s, NULL, sasl_mech_name(mech),
		    "mechanism-not-allowed");
		return pop3_bad(s, MECH_UNSUPPORTED);
	}
	if (sasl_mech_is_plaintext(mech) && !pop3_session_plaintext_ok(s)) {
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
	if (chan.tls && pop3_session_mech_offered(s,
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

enum pop3_ev
pop3_cmd_stls(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	if (conn_tls_active(s->conn))
		return pop3_bad(s, TLS_ALREADY);
	if (!pop3_session_tls_offered(s))
		return pop3_bad(s, STLS_UNAVAILABLE);
	/* RFC 6856 §2.1: the client MUST NOT, the server MAY refuse. */
	if (s->utf8)
		return pop3_bad(s, STLS_AFTER_UTF8);
	pop3_msg(s, STLS_BEGIN);
	/* Nothing read so far is processed after this (CVE-2011-0411). */
	s->busy = true;
	s->stls_wait = true;
	conn_starttls(s->conn, pop3_env_tls(s->env));
	return POP3_EV_WAIT;
}
