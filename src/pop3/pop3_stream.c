/*
 * pop3_stream.c - multi-line replies that may not fit the output buffer:
 * RETR/TOP bodies and LIST/UIDL listings.  Filled up to a high-water mark,
 * resumed when the client has read enough: a session's memory does not
 * grow with message or mailbox size.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/params.h"
#include "net/conn.h"
#include "pop3/pop3_int.h"
#include "store/store.h"

/* Raw message bytes are read here; one loop thread, one buffer. */
static unsigned char stream_chunk[POP3_STREAM_CHUNK];

void
pop3_stream_free(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;

	if (st == NULL)
		return;
	if (st->r != NULL)
		msg_reader_close(&st->r);
	free(st);
	s->stream = NULL;
}

/* Stored form is already the wire form: hand the file to sendfile(). */
static bool
stream_sendfile(struct pop3_session *s, struct pop3_stream *st,
    struct evbuffer *out)
{
	struct evbuffer_file_segment *seg;
	off_t off, len;
	int fd, dfd;

	if (!conn_can_sendfile(s->conn) || st->enc.limit)
		return false;
	fd = msg_reader_wire_fd(st->r, &off, &len);
	if (fd < 0)
		return false;
	/* The segment outlives the reader, so it gets its own fd. */
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return false;
	seg = evbuffer_file_segment_new(dfd, off, len, EVBUF_FS_CLOSE_ON_FREE);
	if (seg == NULL) {
		close(dfd);
		return false;
	}
	if (len > 0 && evbuffer_add_file_segment(out, seg, 0, len) != 0) {
		evbuffer_file_segment_free(seg);
		return false;
	}
	evbuffer_file_segment_free(seg);
	evbuffer_add(out, ".\r\n", 3);
	st->sent = (uint64_t)len;
	return true;
}

static bool
stream_msg_fill(struct pop3_session *s, struct pop3_stream *st)
{
	struct evbuffer *out = conn_out(s->conn);
	struct evbuffer_iovec iov;
	size_t consumed, n;
	ssize_t got;

	if (st->sent == 0 && stream_sendfile(s, st, out))
		return true;
	while (evbuffer_get_length(out) < POP3_OUTPUT_HIGH_WATER) {
		if (wire_enc_done(&st->enc))
			got = 0;
		else
			got = msg_reader_read(st->r, stream_chunk, sizeof(stream_chunk));
		if (got < 0) {
			/* "+OK" is already out: we cannot turn this into -ERR
			 * without the client taking a truncated message as
			 * whole, so the connection goes (I9). */
			log_warn("session=%llx read of message %" PRIu32 " failed",
			    (unsigned long long)s->id, st->msg + 1);
			s->close_after_flush = true;
			s->end_reason = "store-error";
			evbuffer_drain(out, evbuffer_get_length(out));
			return true;
		}
		if (got == 0) {
			char end[5];
			n = wire_enc_finish(&st->enc, end);
			evbuffer_add(out, end, n);
			return true;
		}
		/* Mail lines are long enough that CRs and stuffing dots add a
		 * few percent: reserve that, and go round again in the rare
		 * case it was not enough, rather than reserve twice the chunk. */
		for (size_t done = 0; done < (size_t)got &&
		    !wire_enc_done(&st->enc); done += consumed) {
			size_t left = (size_t)got - done;

			if (evbuffer_reserve_space(out, left + left / 8 + 64,
			    &iov, 1) < 1)
				fatal("out of memory reserving output");
			n = wire_enc_update(&st->enc, stream_chunk + done, left,
			    iov.iov_base, iov.iov_len, &consumed);
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

	while (st->idx < count) {
		if (evbuffer_get_length(out) >= POP3_OUTPUT_HIGH_WATER)
			return false;
		uint32_t i = st->idx++;
		if (pop3_msg_deleted(s, i))
			continue;
		if (st->kind == POP3_STREAM_LIST)
			evbuffer_add_printf(out, "%" PRIu32 " %" PRIu64 "\r\n", i + 1,
			    mailbox_msg_size(s->mb, i));
		else
			evbuffer_add_printf(out, "%" PRIu32 " %s\r\n", i + 1,
			    mailbox_msg_uidl(s->mb, i));
	}
	evbuffer_add(out, ".\r\n", 3);
	return true;
}

/* Returns true when the stream is finished (and freed). */
bool
pop3_stream_fill(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	bool done;

	if (st->kind == POP3_STREAM_MSG)
		done = stream_msg_fill(s, st);
	else
		done = stream_list_fill(s, st);
	if (!done) {
		conn_want_drained(s->conn, POP3_OUTPUT_HIGH_WATER / 2);
		return false;
	}
	if (st->kind == POP3_STREAM_MSG)
		s->bytes_sent += st->sent;
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
