/* pop3_cmd_auth.c - AUTHORIZATION state: USER, PASS, APOP, STLS (AUTH:
 * pop3_sasl.c). */
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
	if (!pop3_login_plaintext_ok(s)) {
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
	if (!pop3_login_plaintext_ok(s)) {
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
	pop3_session_enter(s, POP3_STATE_STLS_HANDSHAKE, "STLS");
	conn_starttls(s->conn, pop3_env_tls(s->env));
	return POP3_EV_WAIT;
}
