/*
 * transcript.h - protocol transcripts (Pop3Server.Transcripts): the
 * dialogue of a session as the protocol hands it over, already redacted,
 * kept for the admin (live, and the last NET_TR_KEEP finished ones) and
 * written to a file at the end if asked.
 *
 * The same lock discipline as registry.h: the loop thread appends a line
 * under a short mutex hold, the HTTP thread copies a whole text out under
 * one.  Each transcript is capped: over the cap the middle goes (the
 * start and the latest lines stay, a marker says how much went).
 */
#ifndef POSUTO_NET_TRANSCRIPT_H
#define POSUTO_NET_TRANSCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_transcripts;
struct net_transcript;

#define NET_TR_MAX		(256 * 1024)	/* octets per transcript */
#define NET_TR_PRELOGIN_MAX	(8 * 1024)	/* before the user is known */
#define NET_TR_KEEP		32		/* finished ones kept */
#define NET_TR_LINE_MAX		512		/* longer lines are cut */

struct net_transcripts *net_transcripts_new(void);
void net_transcripts_free(struct net_transcripts **ts);

/* A live session's transcript, capped at NET_TR_PRELOGIN_MAX until
 * net_transcript_set_user(). */
struct net_transcript *net_transcript_open(struct net_transcripts *ts,
    uint64_t id, const char *proto, const char *client);
/* One line: who is 'C' (client), 'S' (server) or '*' (a note such as a
 * summary); control bytes become '?'.  Prefixed with the milliseconds
 * since the session started. */
void net_transcript_add(struct net_transcript *t, char who, const char *line,
    size_t len);
/* The session logged in as user: the cap becomes NET_TR_MAX. */
void net_transcript_set_user(struct net_transcript *t, const char *user);
/*
 * The session ended.  keep: among the finished ones (the oldest beyond
 * NET_TR_KEEP goes), else freed.  text_r (may be NULL): a malloc'd copy
 * of the text, for a file.
 */
void net_transcript_close(struct net_transcripts *ts,
    struct net_transcript **t, bool keep, char **text_r, size_t *len_r);
/* Any thread: a malloc'd copy of session id's text, live or kept;
 * false if there is none. */
bool net_transcripts_get(struct net_transcripts *ts, uint64_t id,
    char **text_r, size_t *len_r);

/*
 * Writes text to dir/user/name (dir and user made 0700 if missing, the
 * file 0600) through a temporary file, fsync()ed and renamed: a reader
 * never sees half of one.  user must already be a checked name (no '/',
 * no leading '.').  Blocks: for a worker thread.  Returns 0 or an errno.
 */
int net_transcript_write_file(const char *dir, const char *user,
    const char *name, const char *text, size_t len);

#endif
