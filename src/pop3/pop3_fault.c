/*
 * pop3_fault.c - fault injection for people who test mail clients
 * (Pop3Server.Faults[], `posuto chaos`): the failures a POP3 client meets
 * in the field, on demand, for one user.
 *
 * A fault changes what a session says, never what is stored: the login
 * faults refuse before the mailbox is used, the listing faults change a
 * number or a name on the wire only, drop and throttle act on the
 * connection.  Faults reach only clients on this machine unless
 * FaultsForRemoteClients says otherwise, so a forgotten fault never
 * breaks real users' mail.  Each one is logged when it acts.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/runtime.h"
#include "pop3/pop3_int.h"

static void
fault_log(struct pop3_session *s, enum fault_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fault_log(struct pop3_session *s, enum fault_kind k, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_info("session=%llx user=%s fault=%s %s",
	    (unsigned long long)s->id, s->user != NULL ? s->user : "-",
	    config_fault_kind_name(k), what);
	/* The session's page shows it among its commands. */
	(void)snprintf(what, sizeof(what), "FAULT %s",
	    config_fault_kind_name(k));
	conn_info_history(s->conn, what, strlen(what));
	pop3_tr_note(s, "[%s]", what);
}

bool
pop3_fault_login(struct pop3_session *s, const char *user)
{
	const struct posuto_config *cfg = net_runtime_gen(s->env->rt)->cfg;
	struct pop3_faults *f = &s->faults;
	int refuse = -1;

	memset(f, 0, sizeof(*f));
	/* (a generation without a config: the fuzz and unit harnesses) */
	if (cfg == NULL || cfg->n_faults == 0 ||
	    (!cfg->faults_for_remote && !conn_client_local(s->conn)))
		return false;
	for (size_t i = 0; i < cfg->n_faults; i++) {
		const struct fault_cfg *fc = &cfg->faults[i];

		if (strcmp(fc->user, user) != 0)
			continue;
		f->any = true;
		switch (fc->kind) {
		case FAULT_IN_USE:
		case FAULT_LOGIN_DELAY:
			refuse = (int)i;
			break;
		case FAULT_TEMP_FAIL:
			if (fc->command == 0)
				refuse = (int)i;
			else
				f->temp_fail_cmd = fc->command;
			break;
		case FAULT_THROTTLE:
			f->throttle_bps = fc->bytes_per_second;
			break;
		case FAULT_DROP:
			f->drop = true;
			f->drop_after = fc->after_bytes;
			break;
		case FAULT_DELAY:
			f->delay_ms = fc->milliseconds;
			break;
		case FAULT_WRONG_SIZE:
			f->wrong_size_msg = fc->message;
			break;
		case FAULT_UIDL_DRIFT:
			f->uidl_drift_msg = fc->message;
			break;
		case FAULT_KIND_COUNT:
			break;
		}
	}
	if (refuse < 0)
		return false;
	/* The name the client used, as the log of a real refusal has it. */
	free(s->user);
	s->user = xstrdup(user);
	switch (cfg->faults[refuse].kind) {
	case FAULT_IN_USE:
		pop3_msg(s, IN_USE);
		fault_log(s, FAULT_IN_USE, "at login");
		break;
	case FAULT_LOGIN_DELAY:
		pop3_msg(s, FAULT_LOGIN_DELAY, cfg->faults[refuse].seconds);
		fault_log(s, FAULT_LOGIN_DELAY, "at login: %u s",
		    cfg->faults[refuse].seconds);
		break;
	default:
		pop3_msg(s, FAULT_TEMP);
		fault_log(s, FAULT_TEMP_FAIL, "at login");
		break;
	}
	memset(f, 0, sizeof(*f));
	return true;
}

void
pop3_fault_logged_in(struct pop3_session *s)
{
	struct pop3_faults *f = &s->faults;

	if (!f->any)
		return;
	if (f->throttle_bps != 0) {
		conn_set_write_rate(s->conn, f->throttle_bps);
		fault_log(s, FAULT_THROTTLE, "%u bytes/s", f->throttle_bps);
	}
	if (f->delay_ms != 0)
		fault_log(s, FAULT_DELAY, "%u ms before every reply",
		    f->delay_ms);
}

static void
fault_on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;
	char *line = s->faults.held;
	size_t len = s->faults.held_len;

	(void)fd;
	(void)what;
	s->faults.held = NULL;
	/* The session may have ended meanwhile (a timeout, the peer). */
	if (line == NULL || s->state != POP3_STATE_TRANSACTION) {
		free(line);
		return;
	}
	pop3_session_command_done(s, pop3_cmd_dispatch(s, line, len));
	explicit_bzero(line, len);
	free(line);
	pop3_session_resume(s);
}

bool
pop3_fault_command(struct pop3_session *s, const char *line, size_t len,
    enum pop3_ev *ev_r)
{
	struct pop3_faults *f = &s->faults;

	if (!f->any || s->state != POP3_STATE_TRANSACTION)
		return false;
	f->n_cmds++;
	if (f->temp_fail_cmd != 0 && f->n_cmds == f->temp_fail_cmd) {
		fault_log(s, FAULT_TEMP_FAIL, "command %u after login",
		    f->n_cmds);
		pop3_msg(s, FAULT_TEMP);
		*ev_r = POP3_EV_OK;
		return true;
	}
	if (f->delay_ms != 0) {
		struct timeval tv = { .tv_sec = f->delay_ms / 1000,
		    .tv_usec = (suseconds_t)(f->delay_ms % 1000) * 1000 };

		if (f->timer == NULL)
			f->timer = evtimer_new(pop3_env_base(s->env), fault_on_delay,
			    s);
		f->held = xmalloc(len + 1);
		memcpy(f->held, line, len);
		f->held[len] = '\0';
		f->held_len = len;
		evtimer_add(f->timer, &tv);
		*ev_r = POP3_EV_WAIT;
		return true;
	}
	return false;
}

void
pop3_fault_free(struct pop3_session *s)
{
	struct pop3_faults *f = &s->faults;

	if (f->timer != NULL)
		event_free(f->timer);
	f->timer = NULL;
	if (f->held != NULL) {
		explicit_bzero(f->held, f->held_len);
		free(f->held);
		f->held = NULL;
	}
}

uint64_t
pop3_fault_size(struct pop3_session *s, uint32_t idx, uint64_t size)
{
	struct pop3_faults *f = &s->faults;

	if (f->wrong_size_msg == 0 || idx + 1 != f->wrong_size_msg)
		return size;
	if (!f->size_logged) {
		fault_log(s, FAULT_WRONG_SIZE, "LIST says %" PRIu64 " for "
		    "message %" PRIu32 " of %" PRIu64 " octets", size + 1,
		    idx + 1, size);
		f->size_logged = true;
	}
	return size + 1;
}

const char *
pop3_fault_uidl(struct pop3_session *s, uint32_t idx, const char *uidl,
    char *buf, size_t bufsz)
{
	struct pop3_faults *f = &s->faults;

	if (f->uidl_drift_msg == 0 || idx + 1 != f->uidl_drift_msg)
		return uidl;
	/* A new name in every session, still a valid one (1-70 printable
	 * characters): the session id is new each time. */
	(void)snprintf(buf, bufsz, "%.53s-%016llx", uidl,
	    (unsigned long long)s->id);
	if (!f->uidl_logged) {
		fault_log(s, FAULT_UIDL_DRIFT, "message %" PRIu32 " is %s "
		    "instead of %s", idx + 1, buf, uidl);
		f->uidl_logged = true;
	}
	return buf;
}

bool
pop3_fault_cut(struct pop3_session *s, uint64_t sent, uint64_t *room_r)
{
	struct pop3_faults *f = &s->faults;

	if (!f->drop)
		return false;
	if (sent >= f->drop_after) {
		fault_log(s, FAULT_DROP, "connection closed %" PRIu64 " octets "
		    "into a message", sent);
		return true;
	}
	*room_r = f->drop_after - sent;
	return false;
}
