/* params.h - every built-in limit, with the reason for its value. */
#ifndef POSUTO_PARAMS_H
#define POSUTO_PARAMS_H

/* RFC 2449 §4: commands up to 255 octets including CRLF must be accepted.
 * We accept a little more (some clients send long USER names) but never
 * an unbounded line. */
#define POP3_MAX_LINE		512
/* RFC 5034 §4: SASL continuation lines carry base64 of larger messages. */
#define POP3_MAX_SASL_LINE	8192
/* RFC 2449 §4: a status line at most 512 octets, CRLF included (longer
 * ones are cut, pop3_msg.h). */
#define POP3_MAX_RESPONSE	512
/* Consecutive bad commands before we hang up (Dovecot's pop3-login: 3;
 * nginx max_errors).  Post-login a client gets a few more: the default
 * of MaxBadCommands, which also caps the pre-login limit. */
#define POP3_MAX_BAD_CMDS_PREAUTH	3
#define POP3_MAX_BAD_CMDS		10
/* RETR/TOP of messages another program removed meanwhile, asked for
 * again, before we hang up: a client that retries for ever would loop. */
#define POP3_MAX_GONE_RETRIES	3
/* RFC 1939 §3: autologout timer of at least 10 minutes. */
#define POP3_DEFAULT_IDLE_TIMEOUT	600
/* Stop reading a client's commands while this much output is queued:
 * pipelined RETRs cannot make us buffer more than one chunk ahead. */
#define POP3_OUTPUT_HIGH_WATER	(256 * 1024)
/* More output queued than this is a stream: it is written at the bulk
 * priority, after everyone else's commands. */
#define CONN_BULK_MIN		(POP3_OUTPUT_HIGH_WATER / 4)
/* Bulk (streaming) callbacks run before the loop looks for new events. */
#define CONN_BULK_CALLBACKS	2
/* Bytes written to one socket per event loop turn (libevent: 16 KiB). */
#define CONN_MAX_SINGLE_WRITE	(1024 * 1024)
/* Bytes of a message read per chunk when streaming it. */
#define POP3_STREAM_CHUNK	(64 * 1024)
/* Pre-auth: output buffered for a client that does not read before we
 * stop reading its commands (Dovecot's login processes: 4 KiB). */
#define POP3_PREAUTH_OUTPUT_MAX	(16 * 1024)
/* A command line, or a TLS handshake (CVE-2014-3430), must be complete
 * this many seconds after its first byte (LineTimeOut; at most TimeOut):
 * the idle timer restarts with every byte, so a peer trickling one byte a
 * second is bounded only by this.  nginx's client_header_timeout is 60. */
#define POP3_DEFAULT_LINE_TIMEOUT	30
/* After QUIT a TLS close_notify waits at most this long for the socket to
 * take it (a peer that does not read), then the connection is closed. */
#define TLS_SHUTDOWN_TIMEOUT	5
/* Failed logins: delay before the -ERR (Dovecot auth_failure_delay 2 s). */
#define AUTH_DEFAULT_FAIL_DELAY_MS	2000
/* Sessions per client IP (Dovecot mail_max_userip_connections 10). */
#define DEFAULT_MAX_CONN_PER_IP	64
/* New connections per minute from one IP (token bucket: up to this many
 * at once, refilled at this many a minute).  A NAT gateway of a thousand
 * users polling every five minutes makes about 200. */
#define DEFAULT_MAX_CONNECT_RATE_PER_IP	600
#define DEFAULT_MAX_CONN	20000
/* User names: longer ones are refused before any lookup. */
#define USERNAME_MAX		255
/* Passwords: longer ones are refused (bounds hashing work per attempt). */
#define PASSWORD_MAX		1024
/* Messages at least this big get a wire-form copy for sendfile() (see
 * store.h): where the bytes are, and few enough files to be cheap. */
#define WIRE_CACHE_DEFAULT_MIN_SIZE	(128 * 1024)
/* A mailbox larger than this many messages is refused with [SYS/PERM]
 * rather than exhausting memory (popa3d's explicit limits). */
#define MAILBOX_MAX_MESSAGES	2000000

#endif
