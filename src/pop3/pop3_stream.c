/*
 * pop3_stream.c - multi-line replies that may not fit the output buffer:
 * RETR/TOP bodies and LIST/UIDL listings.  Filled up to a high-water mark,
 * resumed when the client has read enough: a session's memory does not
 * grow with message or mailbox size.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/params.h"
#include "net/conn.h"
#include "net/runtime.h"
#include "pop3/pop3_int.h"
#include "store/store.h"

/* Raw message bytes are read here: one buffer per loop thread. */
static _Thread_local unsigned char stream_chunk[POP3_STREAM_CHUNK];

void
pop3_stream_free(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;

	if (st == NULL)
		return;
	if (st->prep != NULL)
		pop3_job_prep_detach(st->prep);
	if (st->fill != NULL)
		pop3_job_fill_detach(st->fill);	/* it closes st->r */
	else if (st->r != NULL)
		msg_reader_close(&st->r);
	free(st);
	s->stream = NULL;
}

/* Body octets queued so far as LIST counts them (before dot-stuffing;
 * a wire cache copy is counted as stored). */
static uint64_t
stream_wire_sent(const struct pop3_stream *st)
{
	return st->segment || st->raw ? st->sent :
	    st->sent - wire_enc_stuffed(&st->enc);
}

/*
 * The bytes going out are not (all) the message LIST described: it was
 * truncated or rewritten meanwhile.  "+OK" is out, so no -ERR can say so,
 * and a "." would make the client store a short or mixed message as
 * whole (and a download-and-delete client then deletes the original).
 * No ".", no further reply, no UPDATE: the connection is reset.
 */
static void
stream_abort(struct pop3_session *s, struct pop3_stream *st, const char *why)
{
	uint64_t sent = stream_wire_sent(st);
	uint64_t unsent = conn_out_unsent(s->conn);

	/* what is still queued never leaves */
	sent -= unsent < sent ? unsent : sent;
	log_warnx("session=%llx user=%s %s of message %" PRIu32 " aborted: "
	    "the message %s; %" PRIu64 " of %" PRIu64 " octets sent",
	    (unsigned long long)s->id, s->user != NULL ? s->user : "-",
	    st->enc.limit ? "TOP" : "RETR", st->msg + 1, why, sent,
	    mailbox_msg_size(s->mb, st->msg));
	s->end_reason = "message-changed";
	pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
	conn_abort(s->conn);
}

/* A message that fits one read is read: its check then comes before the
 * "." in the same turn, not one sendfile() and a wakeup later. */
#define STREAM_SENDFILE_MIN	POP3_STREAM_CHUNK

/* What one fill can queue: up to the high water, plus the last read with
 * the encoder's margin (the reservation in stream_msg_fill()). */
#define STREAM_FILL_RESERVE	(POP3_OUTPUT_HIGH_WATER + \
	POP3_STREAM_CHUNK + POP3_STREAM_CHUNK / 8 + 64)

/*
 * Stored form is already the wire form: hand the file to sendfile().  The
 * "." waits until the body has left (stream_segment_end()): libevent
 * sends what a file truncated meanwhile still has and then reports EOF,
 * and a file rewritten in place goes out mixed, without a word.
 */
static bool
stream_sendfile(struct pop3_session *s, struct pop3_stream *st)
{
	off_t off, len;
	int fd;

	/* A drop fault counts what goes out; sendfile() would not stop. */
	if (!conn_can_sendfile(s->conn) || st->enc.limit || s->faults.drop)
		return false;
	fd = msg_reader_wire_fd(st->r, &off, &len);
	if (fd < 0 || len <= STREAM_SENDFILE_MIN ||
	    !conn_send_file(s->conn, fd, off, len))
		return false;
	st->segment = true;
	st->sent = (uint64_t)len;
	return true;
}

/*
 * The wire form is on disk but cannot be handed to sendfile() (TLS
 * without kernel TLS): read it straight into the output.  The encoder's
 * pass over every byte (finding line ends and dots that are already
 * right) was a fifth of a TLS RETR's CPU besides OpenSSL's.
 */
static bool
stream_raw_begin(struct pop3_session *s, struct pop3_stream *st)
{
	off_t off, len;
	int fd;

	if (st->enc.limit || s->faults.drop)
		return false;
	/* Any size: the check after the last read comes before the "." in
	 * the same turn, as with the encoder. */
	fd = msg_reader_wire_fd(st->r, &off, &len);
	if (fd < 0 || len <= 0)
		return false;
	st->raw = true;
	st->raw_fd = fd;
	st->raw_off = off;
	st->raw_left = (uint64_t)len;
	return true;
}

/* The segment has left whole: were those the bytes we opened? */
static bool
stream_segment_end(struct pop3_session *s, struct pop3_stream *st,
    struct evbuffer *out)
{
	if (!msg_reader_unchanged(st->r)) {
		stream_abort(s, st, "changed while being sent");
		return true;
	}
	evbuffer_add(out, ".\r\n", 3);
	return true;
}

/* Everything was read (or TOP has its lines): the "." if nothing changed. */
static bool
stream_msg_end(struct pop3_session *s, struct pop3_stream *st,
    struct evbuffer *out)
{
	uint64_t want = mailbox_msg_size(s->mb, st->msg), got;
	char end[WIRE_ENC_FINISH_MAX];
	size_t n;

	if (!msg_reader_unchanged(st->r)) {
		stream_abort(s, st, "changed while being read");
		return true;
	}
	n = wire_enc_finish(&st->enc, end);
	got = stream_wire_sent(st) + (n - 3);
	if (!st->enc.limit && got != want) {
		/* the same size, other bytes: rewritten before we opened it */
		if (!mailbox_msg_size_is_hint(s->mb, st->msg)) {
			stream_abort(s, st, "is not the size LIST announced");
			return true;
		}
		/* The file is what it was: only the delivery agent's size
		 * was wrong.  Refusing would make the message unreadable. */
		log_warnx("session=%llx user=%s message %" PRIu32 " is %"
		    PRIu64 " octets, its W= size hint said %" PRIu64,
		    (unsigned long long)s->id, s->user != NULL ? s->user : "-",
		    st->msg + 1, got, want);
	}
	evbuffer_add(out, end, n);
	return true;
}

/* Only for a message that needs more than one read: a small one keeps
 * the small chain it always had. */
static void
stream_fill_reserve(struct pop3_session *s, struct pop3_stream *st,
    struct evbuffer *out)
{
	uint64_t size = mailbox_msg_size(s->mb, st->msg);
	uint64_t left = size > st->sent ? size - st->sent : 0;
	size_t queued = evbuffer_get_length(out), want;

	if (st->enc.limit || left <= POP3_STREAM_CHUNK ||
	    queued >= POP3_OUTPUT_HIGH_WATER)
		return;
	want = STREAM_FILL_RESERVE - queued;
	if (left + left / 8 + 64 < want)
		want = (size_t)(left + left / 8 + 64);
	(void)evbuffer_expand(out, want);
}

/* A read of the stored message failed: as for a truncated file, the
 * connection goes (I9).  Returns true (the stream is over). */
static bool
stream_read_failed(struct pop3_session *s, const struct pop3_stream *st)
{
	log_warn("session=%llx read of message %" PRIu32 " failed",
	    (unsigned long long)s->id, st->msg + 1);
	s->end_reason = "store-error";
	pop3_session_enter(s, POP3_STATE_CLOSING, s->end_reason);
	conn_abort(s->conn);
	return true;
}

/* Up to the high water, then "." once all of it was read unchanged. */
static bool
stream_raw_fill(struct pop3_session *s, struct pop3_stream *st,
    struct evbuffer *out)
{
	struct evbuffer_iovec iov;
	ssize_t got;

	while (st->raw_left > 0 &&
	    evbuffer_get_length(out) < POP3_OUTPUT_HIGH_WATER) {
		size_t want = st->raw_left < POP3_STREAM_CHUNK ?
		    (size_t)st->raw_left : POP3_STREAM_CHUNK;

		if (evbuffer_reserve_space(out, want, &iov, 1) < 1)
			fatal("out of memory reserving output");
		if (iov.iov_len > want)
			iov.iov_len = want;
		got = pread(st->raw_fd, iov.iov_base, iov.iov_len, st->raw_off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got == 0) {
			stream_abort(s, st, "ended early (truncated)");
			return true;
		}
		if (got < 0)
			return stream_read_failed(s, st);
		iov.iov_len = (size_t)got;
		evbuffer_commit_space(out, &iov, 1);
		st->raw_off += got;
		st->raw_left -= (uint64_t)got;
		st->sent += (uint64_t)got;
	}
	if (st->raw_left > 0)
		return false;
	return stream_segment_end(s, st, out);
}

static bool
stream_msg_fill(struct pop3_session *s, struct pop3_stream *st)
{
	struct evbuffer *out = conn_out(s->conn);
	struct evbuffer_iovec iov;
	size_t consumed, n;
	ssize_t got;

	if (st->segment)
		return stream_segment_end(s, st, out);
	if (st->sent == 0 && stream_sendfile(s, st))
		return false;
	if (st->raw || (st->sent == 0 && stream_raw_begin(s, st))) {
		stream_fill_reserve(s, st, out);
		return stream_raw_fill(s, st, out);
	}
	/* One chain for this fill's reads: each reservation below would
	 * otherwise start a chain of its own (~66 KiB in a 128 KiB one), and
	 * TLS writes a chain at a time, so every chain ended in a short
	 * record and a write() of its own (a quarter more of both). */
	stream_fill_reserve(s, st, out);
	while (evbuffer_get_length(out) < POP3_OUTPUT_HIGH_WATER) {
		uint64_t room = UINT64_MAX;

		if (pop3_fault_cut(s, st->sent, &room)) {
			/* The client gets what was queued, then the end of
			 * the connection: no ".", no UPDATE. */
			st->cut = true;
			s->end_reason = "fault-drop";
			pop3_session_enter(s, POP3_STATE_CLOSING,
			    s->end_reason);
			return true;
		}
		if (wire_enc_done(&st->enc))
			got = 0;
		else
			got = msg_reader_read(st->r, stream_chunk, sizeof(stream_chunk));
		if (got < 0 && errno == EAGAIN) {
			/* fetched on a worker; pop3_job_fill() goes on */
			pop3_job_fill(s, st);
			return false;
		}
		if (got < 0 && errno == ENODATA) {
			stream_abort(s, st, "ended early (truncated)");
			return true;
		}
		if (got < 0)
			return stream_read_failed(s, st);
		if (got == 0)
			return stream_msg_end(s, st, out);
		/* Mail lines are long enough that CRs and stuffing dots add a
		 * few percent: reserve that, and go round again in the rare
		 * case it was not enough, rather than reserve twice the chunk. */
		for (size_t done = 0; done < (size_t)got &&
		    !wire_enc_done(&st->enc) && room > 0; done += consumed) {
			size_t left = (size_t)got - done;

			if (evbuffer_reserve_space(out, left + left / 8 + 64,
			    &iov, 1) < 1)
				fatal("out of memory reserving output");
			if (iov.iov_len > room)
				iov.iov_len = (size_t)room;
			n = wire_enc_update(&st->enc, stream_chunk + done, left,
			    iov.iov_base, iov.iov_len, &consumed);
			room -= n;
			iov.iov_len = n;
			evbuffer_commit_space(out, &iov, 1);
			st->sent += n;
		}
	}
	return false;
}

static bool
stream_list_fill(struct pop3_session *s, struct pop3_stream *st)
{
	struct evbuffer *out = conn_out(s->conn);
	uint32_t count = mailbox_count(s->mb);
	char uidl[POP3_UIDL_MAX + 1];

	while (st->idx < count) {
		if (evbuffer_get_length(out) >= POP3_OUTPUT_HIGH_WATER)
			return false;
		uint32_t i = st->idx++;
		if (pop3_msg_deleted(s, i))
			continue;
		st->lines++;
		if (st->kind == POP3_STREAM_LIST)
			evbuffer_add_printf(out, "%" PRIu32 " %" PRIu64 "\r\n", i + 1,
			    pop3_fault_size(s, i, mailbox_msg_size(s->mb, i)));
		else
			evbuffer_add_printf(out, "%" PRIu32 " %s\r\n", i + 1,
			    pop3_fault_uidl(s, i, mailbox_msg_uidl(s->mb, i),
			    uidl, sizeof(uidl)));
	}
	evbuffer_add(out, ".\r\n", 3);
	return true;
}

/* A message's body is queued (whole unless aborted or lost): the
 * session's and the server's counts.  One call per RETR/TOP, not per
 * chunk. */
static void
stream_count(struct pop3_session *s, const struct pop3_stream *st,
    bool whole)
{
	s->bytes_sent += st->sent;
	conn_count(s->conn, NET_CNT_RETRIEVED_BYTES, st->sent);
	if (whole && !st->enc.limit && !conn_out_dead(s->conn)) {
		conn_count(s->conn, NET_CNT_RETRIEVED, 1);
		net_observe(s->env->rt, NET_HIST_RETR, s->cmd_start_ns);
	}
	conn_info_bytes(s->conn, s->bytes_sent);
}

/* Returns true when the stream is finished (and freed). */
bool
pop3_stream_fill(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	bool done;

	if (st->prep != NULL || st->fill != NULL)
		return false;	/* its job resumes the session */
	if (st->kind == POP3_STREAM_MSG)
		done = stream_msg_fill(s, st);
	else
		done = stream_list_fill(s, st);
	if (!done) {
		/* a fill job resumes it, not the output draining */
		if (st->fill == NULL)
			conn_want_drained(s->conn, st->segment ? 0 :
			    POP3_OUTPUT_HIGH_WATER / 2);
		return false;
	}
	if (st->kind == POP3_STREAM_MSG)
		stream_count(s, st, !st->cut && !conn_out_dead(s->conn));
	if (s->tr != NULL) {
		/* A body or a listing is never in a transcript: its size is. */
		if (st->kind == POP3_STREAM_MSG)
			pop3_tr_note(s, "[%s %s: %" PRIu64 " octets%s]",
			    st->enc.limit ? "TOP" : "RETR",
			    st->enc.limit ? "lines" : "body",
			    stream_wire_sent(st), st->cut ? ", cut" :
			    s->state == POP3_STATE_CLOSING ? ", aborted" : "");
		else
			pop3_tr_note(s, "[%s: %" PRIu32 " line%s]",
			    st->kind == POP3_STREAM_LIST ? "LIST" : "UIDL",
			    st->lines, st->lines == 1 ? "" : "s");
	}
	pop3_stream_free(s);
	return true;
}

void
pop3_stream_start(struct pop3_session *s, struct pop3_stream *st)
{
	s->stream = st;
	/* Nobody will read it: the command counted (RETR marks the message
	 * seen), the body need not be produced. */
	if (conn_out_dead(s->conn)) {
		pop3_stream_free(s);
		return;
	}
	/* A small reply finishes here and the command loop goes on; a big
	 * one resumes from CONN_EV_DRAINED. */
	(void)pop3_stream_fill(s);
}

bool
pop3_stream_lost(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	bool segment = st->kind == POP3_STREAM_MSG && st->segment;

	if (st->prep != NULL)
		return true;	/* nothing went out yet */
	/* libevent takes the 0 of a sendfile() past the end of a truncated
	 * file for the peer's EOF: not the client's doing, say so. */
	if (st->kind == POP3_STREAM_MSG && !msg_reader_unchanged(st->r)) {
		stream_abort(s, st, "changed while being sent");
		return true;
	}
	/* Streaming to a peer that is gone is pointless. */
	if (!segment)
		return true;
	/* A whole body was queued, as it was before its "." had to wait:
	 * commands pipelined after it count as they did then.  A half-close
	 * still gets the body, its "." and their replies. */
	if (conn_out_dead(s->conn)) {
		stream_count(s, st, false);
		pop3_stream_free(s);
	}
	return false;
}
