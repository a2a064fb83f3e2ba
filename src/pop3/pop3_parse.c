/* pop3_parse.c - verbs by table, arguments by single spaces. */
#include <string.h>

#include <event2/buffer.h>

#include "pop3/pop3_parse.h"

static const char *const verb_names[POP3_VERB_COUNT] = {
	[POP3_VERB_USER] = "USER", [POP3_VERB_PASS] = "PASS",
	[POP3_VERB_APOP] = "APOP", [POP3_VERB_AUTH] = "AUTH",
	[POP3_VERB_STLS] = "STLS", [POP3_VERB_CAPA] = "CAPA",
	[POP3_VERB_QUIT] = "QUIT", [POP3_VERB_STAT] = "STAT",
	[POP3_VERB_LIST] = "LIST", [POP3_VERB_RETR] = "RETR",
	[POP3_VERB_DELE] = "DELE", [POP3_VERB_NOOP] = "NOOP",
	[POP3_VERB_RSET] = "RSET", [POP3_VERB_TOP] = "TOP",
	[POP3_VERB_UIDL] = "UIDL", [POP3_VERB_UTF8] = "UTF8",
	[POP3_VERB_LANG] = "LANG",
};

const char *
pop3_verb_name(enum pop3_verb verb)
{
	return (unsigned)verb < POP3_VERB_COUNT ? verb_names[verb] : "?";
}

static bool
verb_lookup(const char *s, size_t len, enum pop3_verb *verb_r)
{
	char up[4];

	/* Every POP3 keyword is 3 or 4 characters (RFC 1939 §3). */
	if (len < 3 || len > 4)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
	}
	for (unsigned v = 0; v < POP3_VERB_COUNT; v++) {
		if (strlen(verb_names[v]) == len && memcmp(verb_names[v], up, len) == 0) {
			*verb_r = (enum pop3_verb)v;
			return true;
		}
	}
	return false;
}

enum pop3_parse_result
pop3_parse(const char *line, size_t len, struct pop3_cmd *cmd)
{
	size_t vlen, i, start;

	memset(cmd, 0, sizeof(*cmd));
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		/* Tabs are allowed inside passwords; other controls are not. */
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return POP3_PARSE_BAD_BYTES;
	}
	if (len == 0)
		return POP3_PARSE_EMPTY;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	if (!verb_lookup(line, vlen, &cmd->verb))
		return POP3_PARSE_UNKNOWN;
	if (vlen == len)
		return POP3_PARSE_OK;
	cmd->rest = line + vlen + 1;
	cmd->restlen = len - vlen - 1;
	start = 0;
	for (i = 0; i <= cmd->restlen; i++) {
		if (i < cmd->restlen && cmd->rest[i] != ' ')
			continue;
		if (i == start)
			cmd->empty_arg = true;
		if (cmd->nargs < POP3_MAX_ARGS) {
			cmd->args[cmd->nargs] = cmd->rest + start;
			cmd->arglens[cmd->nargs] = i - start;
		}
		cmd->nargs++;
		start = i + 1;
	}
	return POP3_PARSE_OK;
}

enum pop3_line_result
pop3_read_line(struct evbuffer *in, size_t max, bool *discarding, char *line,
    size_t *len_r)
{
	struct evbuffer_ptr p;
	size_t avail, n;

	for (;;) {
		avail = evbuffer_get_length(in);
		p = evbuffer_search(in, "\n", 1, NULL);
		if (*discarding) {
			if (p.pos < 0) {
				evbuffer_drain(in, avail);
				return POP3_LINE_MORE;
			}
			evbuffer_drain(in, (size_t)p.pos + 1);
			*discarding = false;
			return POP3_LINE_TOO_LONG;
		}
		if (p.pos < 0) {
			/* max bytes and the CR of their CRLF may wait for the
			 * LF: the verdict must not depend on how TCP split it. */
			if (avail <= max + 1)
				return POP3_LINE_MORE;
			/* No LF within max bytes: drop what we have, and the
			 * rest of the line as it arrives. */
			*discarding = true;
			continue;
		}
		n = (size_t)p.pos;
		if (n > 0) {
			/* CR before the LF is part of the terminator. */
			char last;
			struct evbuffer_ptr q;
			evbuffer_ptr_set(in, &q, n - 1, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &q, &last, 1);
			if (last == '\r')
				n--;
		}
		if (n > max) {
			evbuffer_drain(in, (size_t)p.pos + 1);
			return POP3_LINE_TOO_LONG;
		}
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, (size_t)p.pos + 1 - n);
		*len_r = n;
		return POP3_LINE_OK;
	}
}
