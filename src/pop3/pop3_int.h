/*
 * pop3_int.h - what the pop3/ files share among themselves: the session
 * struct, command handlers and replies.  Not for use outside src/pop3.
 */
#ifndef POP3_INT_H
#define POP3_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "lib/wire.h"
#include "pop3/pop3_msg.h"
#include "pop3/pop3_parse.h"
#include "pop3/pop3_session.h"
#include "store/store.h"

struct conn;
struct event;
struct mailbox;
struct msg_reader;
struct pop3_tr;

/*
 * Where a session is.  The RFC 1939 states, split where the session waits
 * for something other than the client's next command, because what may
 * happen next differs: the input loop reads commands only in
 * AUTHORIZATION, AUTH_SASL (a response line, not a command) and
 * TRANSACTION.  Every change goes through pop3_session_enter(), which
 * refuses one not in its table (pop3_session.c) and logs it.
 *
 * Facts that hold across several states stay flags: peer_gone (the input
 * ended; what was sent before still counts, in any state), discarding (the
 * line reader's), utf8 and lang (modes), conn_counted (owns an iplimit
 * slot), quit_seen (UPDATE was entered: history, not a place).  A
 * multi-line reply in flight is s->stream != NULL, inside TRANSACTION:
 * the protocol state does not change while it goes out, and the pointer
 * already says it.
 */
enum pop3_state {
	POP3_STATE_AUTHORIZATION = 0,	/* reading commands, not logged in */
	POP3_STATE_AUTH_SASL,		/* AUTH: waiting for the response line */
	POP3_STATE_LOGIN_PENDING,	/* credentials checked on a worker */
	POP3_STATE_LOGIN_DELAY,		/* failed login: -ERR after the penalty */
	POP3_STATE_STLS_HANDSHAKE,	/* STLS answered, handshake not done */
	POP3_STATE_TRANSACTION,		/* logged in, mailbox open */
	POP3_STATE_UPDATE,		/* QUIT from TRANSACTION: expunging */
	POP3_STATE_CLOSING,		/* last reply queued: end once it left */
	POP3_STATE_CLOSED,		/* freed when the last ref goes */
	POP3_STATE_COUNT
};
#define POP3_IN(st) (1u << (st))

/* What a command handler did (popa3d's event codes). */
enum pop3_ev {
	POP3_EV_OK = 0,		/* replied; read the next command */
	POP3_EV_BAD,		/* pop3_bad() replied to a malformed command */
	POP3_EV_WAIT,		/* work in flight (job, timer, stream, TLS) */
	POP3_EV_CLOSE,		/* replied; close once the reply is sent */
};

enum pop3_stream_kind {
	POP3_STREAM_MSG = 0,	/* RETR / TOP */
	POP3_STREAM_LIST,
	POP3_STREAM_UIDL,
};

/* RFC 1939 §7: a unique-id is 1 to 70 characters. */
#define POP3_UIDL_MAX	70

/* The faults a session was given at login (pop3_fault.c); all zero for
 * nearly every session. */
struct pop3_faults {
	bool any;
	bool drop;
	bool size_logged, uidl_logged;
	unsigned temp_fail_cmd;		/* N-th command after login; 0: none */
	unsigned delay_ms;
	unsigned throttle_bps;
	uint64_t drop_after;		/* message octets, with drop */
	uint32_t wrong_size_msg;	/* message number, 0: none */
	uint32_t uidl_drift_msg;
	unsigned n_cmds;		/* commands since login */
	/* delay: the command held back, inside TRANSACTION (the input
	 * loop reads no further line while it is held) */
	char *held;
	size_t held_len;
	struct event *timer;
};

struct pop3_stream {
	enum pop3_stream_kind kind;
	uint32_t idx;		/* next message for LIST/UIDL */
	uint32_t msg;		/* RETR/TOP: which message */
	uint32_t lines;		/* LIST/UIDL: lines sent (transcript) */
	struct msg_reader *r;
	struct wire_enc enc;
	uint64_t sent;		/* body octets queued (dot-stuffed) */
	bool segment;		/* sendfile() queued; "." waits for it */
	/* The stored bytes are the wire form but sendfile() is out (TLS):
	 * copied as they are, without the encoder (stream_raw_fill()). */
	bool raw;
	int raw_fd;		/* the reader's */
	off_t raw_off;
	uint64_t raw_left;
	bool cut;		/* a drop fault ended it: not sent whole */
	/* The reader is being prepared on a worker (pop3_job.c); r is
	 * NULL and nothing is sent until it is back. */
	struct pop3_prep_job *prep;
	/* A reader that fetches piece by piece (sql:): the next piece is
	 * fetched on a worker; nothing touches r until it is back. */
	struct pop3_fill_job *fill;
};

struct pop3_session {
	struct pop3_session *prev, *next;	/* env->sessions */
	struct pop3_env *env;
	struct conn *conn;
	uint64_t id;
	int refs;			/* the session itself + jobs in flight */
	enum pop3_state state;

	enum pop3_state after_delay;	/* LOGIN_DELAY: where its reply leads */

	bool peer_gone;			/* EOF/error seen: finish input, then end */
	bool discarding;		/* dropping the rest of an overlong line */
	bool conn_counted;		/* holds an iplimit slot */
	bool quit_seen;			/* set by entering UPDATE */
	enum pop3_lang lang;		/* of the reply texts (LANG) */
	bool utf8;			/* RFC 6856 UTF8 mode */

	struct userdb *db;		/* ref taken at start */
	char *user;			/* after USER, or the logged-in name */
	const char *login_method;
	unsigned policy_login_delay;	/* the user's LoginDelay, Expire */
	int policy_expire;		/* (pop3_policy.h), from the login */
	struct mailbox *mb;
	uint8_t *deleted;		/* bitmap, TRANSACTION only */
	uint8_t *gone;			/* bitmap: could not be opened, or NULL */
	unsigned gone_retries;		/* requests for those again */
	uint32_t n_deleted;
	uint64_t deleted_size;

	struct sasl_server *sasl;	/* AUTH_SASL: the exchange */
	enum sasl_mech sasl_mech;
	char *apop_ts;			/* greeting timestamp if APOP is on */

	struct pop3_stream *stream;
	struct event *timer;		/* failed-login delay */
	struct event *session_timer;	/* SessionTimeOut */
	struct event *line_timer;	/* LineTimeOut of a partial line */
	char *pending_reply;		/* sent when the timer fires */

	struct pop3_faults faults;
	struct pop3_tr *tr;		/* transcript (pop3_transcript.c), or NULL */

	unsigned bad_cmds;
	unsigned auth_failures;
	uint32_t n_retr;
	uint64_t bytes_sent;
	/* net_mono_ns() when the current command line arrived: login and
	 * RETR latency (/metrics). */
	uint64_t cmd_start_ns;
	const char *end_reason;
};

/* A line of a reply's data (CAPA, listings, "+ " challenges): protocol
 * text, not for people.  Text is ours, never a format built from client
 * input. */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A status line (+OK/-ERR) from the catalogue, in the session's
 * language: pop3_msg(s, UNKNOWN_CMD) or pop3_msg(s, DELE, n). */
void pop3_reply_msg(struct pop3_session *s, enum pop3_msg_id id, ...);
#define pop3_msg(s, ID, ...) do { \
	if (0) \
		(void)POP3_MSG_CHECK(ID, ##__VA_ARGS__); \
	pop3_reply_msg((s), POP3_MSG_##ID, ##__VA_ARGS__); \
} while (0)
/* The same with a count: ID_1 when n is 1, else ID (plural). */
#define pop3_msg_n(s, ID, n, ...) do { \
	uint32_t n_ = (n); \
	if (n_ == 1) \
		pop3_msg(s, ID##_1, n_, ##__VA_ARGS__); \
	else \
		pop3_msg(s, ID, n_, ##__VA_ARGS__); \
} while (0)
/* A -ERR to a malformed command: counts towards the bad-command limit.
 * The command that reaches it gets one reply all the same, the one that
 * says the connection closes (then it does). */
enum pop3_ev pop3_reply_bad(struct pop3_session *s, enum pop3_msg_id id, ...);
#define pop3_bad(s, ID, ...) \
	((void)sizeof(POP3_MSG_CHECK(ID, ##__VA_ARGS__)), \
	 pop3_reply_bad((s), POP3_MSG_##ID, ##__VA_ARGS__))

/* Session internals used by handlers. */
void pop3_session_ref(struct pop3_session *s);
void pop3_session_unref(struct pop3_session *s);
/*
 * The one way the state changes (no other code assigns s->state): checks
 * the change is in the table (else fatalx: a bug), logs "session=N state
 * A -> B (why)" at debug level.  Where a registry of live sessions learns
 * of it too.  why: a short token, for that log.
 */
void pop3_session_enter(struct pop3_session *s, enum pop3_state st,
    const char *why);
/* True if the table allows from -> to (for the tests too). */
bool pop3_state_change_ok(enum pop3_state from, enum pop3_state to);
const char *pop3_state_name(enum pop3_state st);

/* The input loop reads lines (commands, SASL responses) in st. */
static inline bool
pop3_state_reads(enum pop3_state st)
{
	return st == POP3_STATE_AUTHORIZATION || st == POP3_STATE_AUTH_SASL ||
	    st == POP3_STATE_TRANSACTION;
}

/* Nobody has shown who they are yet (fewer tries, less output). */
static inline bool
pop3_state_preauth(enum pop3_state st)
{
	return st < POP3_STATE_TRANSACTION;
}

/* Resume command processing after a job/timer/stream finished. */
void pop3_session_resume(struct pop3_session *s);
/* What the input loop does after a command's handler returned ev. */
void pop3_session_command_done(struct pop3_session *s, enum pop3_ev ev);
/* Enters LOGIN_DELAY: reply id (formatted now, no arguments) after ms,
 * then enter after (AUTHORIZATION, or CLOSING when it is the last reply)
 * and resume. */
void pop3_session_delayed_reply(struct pop3_session *s, unsigned ms,
    enum pop3_msg_id id, enum pop3_state after);
void pop3_session_end(struct pop3_session *s, const char *reason);
/* The current user database (refreshed after a reload). */
struct userdb *pop3_session_userdb(struct pop3_session *s);
bool pop3_session_tls_offered(struct pop3_session *s);

/* --- Login policy (pop3_login.c) ----------------------------------- */

/* What a login attempt found on the worker (pop3_job.c fills it in). */
struct pop3_login {
	enum auth_result ar;
	const char *why;		/* failure reason token, for the log */
	const struct userdb_entry *entry;	/* AUTH_OK: whose */
	struct mailbox *mb;		/* opened; taken by pop3_login_finish() */
	enum store_status st;
	bool too_early;			/* LoginDelay not over (pop3_policy.h) */
	struct mailbox_drift drift;	/* the UIDL-drift findings (store.h) */
	char err[160];
};

/* True if plaintext credentials (USER/PASS, PLAIN, LOGIN) are taken on
 * this connection: inside TLS, from a local peer, or AllowPlaintextAuth. */
bool pop3_login_plaintext_ok(struct pop3_session *s);
/* Worker side, after right credentials: LoginDelay, then the mailbox. */
void pop3_login_open(struct pop3_login *l);
/* Loop side, in LOGIN_PENDING: acts on the outcome (TRANSACTION, the
 * failed-login penalty and three strikes, or back to AUTHORIZATION).
 * user: as the client gave it, for the log. */
void pop3_login_finish(struct pop3_session *s, struct pop3_login *l,
    const char *user);
/* Logs "login failed user=U method=M reason=WHY" (WHY a token such as
 * unknown-user, wrong-password, plaintext-refused): the log tells what the
 * client's identical -ERR does not (I6). */
void pop3_log_login_failed(struct pop3_session *s, const char *user,
    const char *method, const char *why);

/* --- Fault injection (pop3_fault.c, Pop3Server.Faults[]) ----------- */

/* Right credentials for user: loads the user's faults into s->faults;
 * true if one refuses this login (its -ERR is sent). */
bool pop3_fault_login(struct pop3_session *s, const char *user);
/* Logged in: the faults that act on the connection start. */
void pop3_fault_logged_in(struct pop3_session *s);
/* Before a command in TRANSACTION: true if a fault answers it or holds
 * it back (*ev_r is then the outcome). */
bool pop3_fault_command(struct pop3_session *s, const char *line,
    size_t len, enum pop3_ev *ev_r);
void pop3_fault_free(struct pop3_session *s);
/* LIST's size and UIDL's name of message idx, as the faults have them. */
uint64_t pop3_fault_size(struct pop3_session *s, uint32_t idx,
    uint64_t size);
const char *pop3_fault_uidl(struct pop3_session *s, uint32_t idx,
    const char *uidl, char *buf, size_t bufsz);
/* A drop fault, sent octets into a message: true when the connection
 * must close now; else *room_r is how many more may go (untouched
 * without a drop fault). */
bool pop3_fault_cut(struct pop3_session *s, uint64_t sent,
    uint64_t *room_r);

/* --- Transcripts (pop3_transcript.c, Pop3Server.Transcripts) ------ */

/* Session start: a transcript if Transcripts.Users names anyone. */
void pop3_tr_start(struct pop3_session *s);
/* A client line, already redacted (pop3_cmd.c); verb: the command's,
 * for the summary of its multi-line reply, or NULL. */
void pop3_tr_client(struct pop3_session *s, const char *verb,
    const char *line, size_t len);
/* A status line (+OK, -ERR, a "+ " challenge as "+ ****"). */
void pop3_tr_server(struct pop3_session *s, const char *line, size_t len);
/* A data line of a multi-line reply, or its "." (end): the summary. */
void pop3_tr_data(struct pop3_session *s, bool end);
void pop3_tr_note(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Entered TRANSACTION as s->user: kept if selected, else dropped. */
void pop3_tr_login(struct pop3_session *s);
void pop3_tr_end(struct pop3_session *s);
/* The "+ " challenge of an AUTH exchange (recorded as "+ ****"). */
void pop3_reply_challenge(struct pop3_session *s, const char *b64);

/* --- SASL, RFC 5034 AUTH (pop3_sasl.c) ----------------------------- */

/* One step of an exchange, run on a worker. */
struct pop3_sasl_step {
	struct sasl_server *sasl;	/* the worker's until the completion */
	unsigned char *in;		/* malloc'd, or NULL: no response */
	size_t inlen;
	enum sasl_status ss;
	const unsigned char *out;	/* challenge, owned by sasl */
	size_t outlen;
};

/* True if SaslMechanisms (or its default) enables m at all. */
bool pop3_sasl_mech_enabled(struct pop3_session *s, enum sasl_mech m);
/* True if mechanism m may be offered on this connection now: enabled by
 * SaslMechanisms (or its default), plaintext ones only where the plaintext
 * policy allows, -PLUS only inside TLS. */
bool pop3_sasl_mech_offered(struct pop3_session *s, enum sasl_mech m);
/* CAPA's "SASL mech..." line, if any mechanism is offered. */
void pop3_sasl_capa(struct pop3_session *s);
/* In AUTH_SASL: the client's response line, or one that was too long. */
enum pop3_ev pop3_sasl_line(struct pop3_session *s, const char *line,
    size_t len);
enum pop3_ev pop3_sasl_line_too_long(struct pop3_session *s);
/* Worker side: runs the step, filling in l when the exchange ended. */
void pop3_sasl_step_work(struct pop3_sasl_step *st, struct pop3_login *l);
/* Loop side, in LOGIN_PENDING: true if the exchange ended in an outcome
 * for pop3_login_finish(); false if handled here (a challenge: back to
 * AUTH_SASL; malformed input: AUTHORIZATION).  *user gets the name the
 * exchange saw, for the log. */
bool pop3_sasl_step_done(struct pop3_session *s, struct pop3_sasl_step *st,
    const struct pop3_login *l, char **user);

/* DELE marks, kept in a bitmap until UPDATE. */
static inline bool
pop3_msg_deleted(const struct pop3_session *s, uint32_t idx)
{
	return (s->deleted[idx / 8] >> (idx % 8)) & 1;
}

/* Command dispatch (pop3_cmd.c). */
enum pop3_ev pop3_cmd_dispatch(struct pop3_session *s, const char *line,
    size_t len);

/* Handlers, by state group. */
enum pop3_ev pop3_cmd_user(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_pass(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_apop(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_auth(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_stls(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_capa(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_quit(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_stat(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_list(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_retr(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_top(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_dele(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_noop(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_rset(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_uidl(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_utf8(struct pop3_session *, const struct pop3_cmd *);
enum pop3_ev pop3_cmd_lang(struct pop3_session *, const struct pop3_cmd *);

/* Multi-line output (pop3_stream.c): true when finished. */
void pop3_stream_start(struct pop3_session *s, struct pop3_stream *st);
bool pop3_stream_fill(struct pop3_session *s);
void pop3_stream_free(struct pop3_session *s);
/* The connection broke with a stream in flight: true if the session is
 * over, false if the commands pipelined after it still count. */
bool pop3_stream_lost(struct pop3_session *s);

/* The worker jobs of login and UPDATE (pop3_job.c).  A login job enters
 * LOGIN_PENDING; the commit job runs in UPDATE and enters CLOSING. */
enum pop3_ev pop3_job_login_pass(struct pop3_session *s, const char *pass,
    size_t len);
enum pop3_ev pop3_job_login_apop(struct pop3_session *s, const char *user,
    const char *digest);
/* Takes ownership of in (malloc'd, may be NULL for "no response"). */
enum pop3_ev pop3_job_sasl_step(struct pop3_session *s,
    unsigned char *in, size_t inlen);
enum pop3_ev pop3_job_commit(struct pop3_session *s);
/* RETR of a message the wire cache wants: build its copy meanwhile. */
void pop3_job_wire_cache(struct pop3_session *s, struct msg_reader *r);
/* RETR/TOP of a message whose reader needs a prepare (store.h): a
 * placeholder stream holds the commands back while a worker fetches;
 * then pop3_msg_start() or pop3_msg_unavailable() as if opened here. */
enum pop3_ev pop3_job_msg_prepare(struct pop3_session *s, uint32_t idx,
    long long lines, struct msg_reader *r);
/* The placeholder stream goes (session end): the job frees the reader. */
void pop3_job_prep_detach(struct pop3_prep_job *j);
/* A read said EAGAIN: fetches st's next piece on a worker
 * (msg_reader_fill()), then goes on with the stream. */
void pop3_job_fill(struct pop3_session *s, struct pop3_stream *st);
/* The stream goes while its fill is on a worker: the job closes the
 * reader when it is back. */
void pop3_job_fill_detach(struct pop3_fill_job *j);
/* Closes *mb, on a worker if that may block (mailbox_close_blocks()). */
void pop3_job_mailbox_close(struct pop3_session *s, struct mailbox **mb);
/* pop3_cmd_trans.c: the reply and stream of RETR (lines < 0) or TOP
 * over an open reader; and the reply for a message that cannot be read */
enum pop3_ev pop3_msg_start(struct pop3_session *s, uint32_t idx,
    long long lines, struct msg_reader *r);
enum pop3_ev pop3_msg_unavailable(struct pop3_session *s, uint32_t idx,
    enum store_status ss, int err);

#endif
