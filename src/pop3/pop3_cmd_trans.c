/* pop3_cmd_trans.c - TRANSACTION state: STAT LIST RETR TOP DELE NOOP RSET UIDL. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/mailevents.h"
#include "pop3/pop3_int.h"
#include "store/store.h"

/*
 * Message number argument -> 0-based index.  Strict (RFC 1939 §3, popa3d):
 * digits only, no overflow wrap; deleted messages are invisible.
 * True with *idx_r set; false after replying -ERR, with the handler's
 * event in *ev_r (*idx_r untouched).
 */
static bool
msg_arg(struct pop3_session *s, const char *arg, size_t len, uint32_t *idx_r,
    enum pop3_ev *ev_r)
{
	uint32_t n;

	if (!parse_u32(arg, len, &n)) {
		*ev_r = pop3_bad(s, MSG_BAD_NUMBER);
		return false;
	}
	if (n == 0 || n > mailbox_count(s->mb)) {
		pop3_msg(s, MSG_NO_SUCH);
		*ev_r = POP3_EV_OK;
		return false;
	}
	if (pop3_msg_deleted(s, n - 1)) {
		pop3_msg(s, MSG_ALREADY_DELETED, n);
		*ev_r = POP3_EV_OK;
		return false;
	}
	*idx_r = n - 1;
	return true;
}

enum pop3_ev
pop3_cmd_stat(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	pop3_msg(s, STAT, mailbox_count(s->mb) - s->n_deleted,
	    mailbox_total_size(s->mb) - s->deleted_size);
	return POP3_EV_OK;
}

static enum pop3_ev
start_listing(struct pop3_session *s, enum pop3_stream_kind kind)
{
	struct pop3_stream *st = xcalloc(1, sizeof(*st));

	st->kind = kind;
	pop3_stream_start(s, st);
	return POP3_EV_WAIT;
}

static enum pop3_ev
start_message(struct pop3_session *s, uint32_t idx, long long lines)
{
	struct msg_reader *r;
	enum store_status ss;

	ss = mailbox_msg_open(s->mb, idx, &r);
	if (ss != STORE_OK)
		return pop3_msg_unavailable(s, idx, ss, errno);
	/* A database store fetches on a worker, never on the loop. */
	if (msg_reader_needs_prepare(r))
		return pop3_job_msg_prepare(s, idx, lines, r);
	return pop3_msg_start(s, idx, lines, r);
}

enum pop3_ev
pop3_cmd_list(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint32_t idx;
	enum pop3_ev ev;

	if (cmd->nargs == 0) {
		pop3_msg_n(s, LIST_SUMMARY,
		    mailbox_count(s->mb) - s->n_deleted,
		    mailbox_total_size(s->mb) - s->deleted_size);
		return start_listing(s, POP3_STREAM_LIST);
	}
	if (!msg_arg(s, cmd->args[0], cmd->arglens[0], &idx, &ev))
		return ev;
	pop3_msg(s, LIST_ONE, idx + 1,
	    pop3_fault_size(s, idx, mailbox_msg_size(s->mb, idx)));
	return POP3_EV_OK;
}

enum pop3_ev
pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	char uidl[POP3_UIDL_MAX + 1];
	uint32_t idx;
	enum pop3_ev ev;

	if (cmd->nargs == 0) {
		pop3_msg(s, UIDL_LIST);
		return start_listing(s, POP3_STREAM_UIDL);
	}
	if (!msg_arg(s, cmd->args[0], cmd->arglens[0], &idx, &ev))
		return ev;
	pop3_msg(s, UIDL_ONE, idx + 1, pop3_fault_uidl(s, idx,
	    mailbox_msg_uidl(s->mb, idx), uidl, sizeof(uidl)));
	return POP3_EV_OK;
}

/*
 * Message idx could not be opened: another program removed it (Dovecot:
 * "expunged"), or this one file cannot be read or is refused (the store
 * logs why); its neighbours are still served.  Asking again will not
 * help, and a client that keeps asking would loop for ever: after a few
 * repeats it is told so and disconnected (Dovecot counts a repeated fetch
 * of an expunged message as a bad command).
 */
enum pop3_ev
pop3_msg_unavailable(struct pop3_session *s, uint32_t idx,
    enum store_status ss, int err)
{
	bool removed = ss == STORE_PERM && err == ENOENT;

	if (s->gone == NULL)
		s->gone = xcalloc(mailbox_count(s->mb) / 8 + 1, 1);
	if (((s->gone[idx / 8] >> (idx % 8)) & 1) &&
	    ++s->gone_retries >= POP3_MAX_GONE_RETRIES) {
		if (removed)
			pop3_msg(s, MSG_GONE_CLOSE, idx + 1);
		else
			pop3_msg(s, MSG_UNREADABLE_CLOSE, idx + 1);
		s->end_reason = "expunged-retries";
		return POP3_EV_CLOSE;
	}
	s->gone[idx / 8] |= (uint8_t)(1u << (idx % 8));
	if (removed)
		pop3_msg(s, MSG_GONE, idx + 1);
	else if (ss == STORE_TEMP)
		pop3_msg(s, MSG_UNREADABLE_TEMP, idx + 1);
	else
		pop3_msg(s, MSG_UNREADABLE_PERM, idx + 1);
	return POP3_EV_OK;
}

enum pop3_ev
pop3_msg_start(struct pop3_session *s, uint32_t idx, long long lines,
    struct msg_reader *r)
{
	struct pop3_stream *st;

	st = xcalloc(1, sizeof(*st));
	st->kind = POP3_STREAM_MSG;
	st->msg = idx;
	st->r = r;
	wire_enc_init(&st->enc, lines);
	if (lines < 0) {
		pop3_msg(s, RETR, mailbox_msg_size(s->mb, idx));
		mailbox_msg_mark_seen(s->mb, idx);
		net_mailev_record(NET_MAILEV_RETRIEVED, s->user,
		    mailbox_msg_uidl(s->mb, idx), s->id);
		s->n_retr++;
		pop3_job_wire_cache(s, r);
	} else {
		pop3_msg(s, TOP);
	}
	pop3_stream_start(s, st);
	return POP3_EV_WAIT;
}

enum pop3_ev
pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint32_t idx;
	enum pop3_ev ev;

	if (!msg_arg(s, cmd->args[0], cmd->arglens[0], &idx, &ev))
		return ev;
	return start_message(s, idx, -1);
}

enum pop3_ev
pop3_cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint32_t idx, lines;
	enum pop3_ev ev;

	if (!parse_u32(cmd->args[1], cmd->arglens[1], &lines))
		return pop3_bad(s, BAD_LINE_COUNT);
	if (!msg_arg(s, cmd->args[0], cmd->arglens[0], &idx, &ev))
		return ev;
	return start_message(s, idx, (long long)lines);
}

enum pop3_ev
pop3_cmd_dele(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint32_t idx;
	enum pop3_ev ev;

	if (!msg_arg(s, cmd->args[0], cmd->arglens[0], &idx, &ev))
		return ev;
	/* Only marked here; removed in UPDATE after QUIT (RFC 1939 §6, I2). */
	s->deleted[idx / 8] |= (uint8_t)(1u << (idx % 8));
	s->n_deleted++;
	s->deleted_size += mailbox_msg_size(s->mb, idx);
	net_mailev_record(NET_MAILEV_MARKED, s->user,
	    mailbox_msg_uidl(s->mb, idx), s->id);
	pop3_msg(s, DELE, idx + 1);
	return POP3_EV_OK;
}

enum pop3_ev
pop3_cmd_noop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	pop3_msg(s, NOOP);
	return POP3_EV_OK;
}

enum pop3_ev
pop3_cmd_rset(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	memset(s->deleted, 0, (mailbox_count(s->mb) + 7) / 8);
	s->n_deleted = 0;
	s->deleted_size = 0;
	net_mailev_record(NET_MAILEV_UNMARKED, s->user, NULL, s->id);
	pop3_msg_n(s, RSET, mailbox_count(s->mb));
	return POP3_EV_OK;
}
