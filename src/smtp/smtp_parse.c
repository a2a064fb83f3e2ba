/* smtp_parse.c - verbs by table, RFC 5321 paths and ESMTP parameters. */
#include <string.h>

#include "lib/strutil.h"
#include "smtp/smtp_parse.h"

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_LHLO] = "LHLO", [SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_HELO] = "HELO", [SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT", [SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_RSET] = "RSET", [SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT", [SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_HELP] = "HELP",
};

const char *
smtp_verb_name(enum smtp_verb verb)
{
	return (unsigned)verb < SMTP_VERB_COUNT ? verb_names[verb] : "?";
}

static char
up(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static bool
mem_caseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (up(a[i]) != up(b[i]))
			return false;
	}
	return true;
}

enum smtp_parse_result
smtp_parse_cmd(const char *line, size_t len, struct smtp_cmd *cmd)
{
	size_t vlen;

	memset(cmd, 0, sizeof(*cmd));
	cmd->arg = line + len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		/* Commands are ASCII (no SMTPUTF8); a tab is harmless. */
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return SMTP_PARSE_BAD_BYTES;
	}
	if (len == 0)
		return SMTP_PARSE_EMPTY;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	/* Every verb we know is four letters. */
	if (vlen != 4)
		return SMTP_PARSE_UNKNOWN;
	for (unsigned v = 0; v < SMTP_VERB_COUNT; v++) {
		if (mem_caseeq(verb_names[v], line, 4)) {
			cmd->verb = (enum smtp_verb)v;
			if (len > 4) {
				cmd->arg = line + 5;
				cmd->arglen = len - 5;
			}
			return SMTP_PARSE_OK;
		}
	}
	return SMTP_PARSE_UNKNOWN;
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* RFC 5322 atext. */
static bool
is_atext(unsigned char c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Dot-string: atoms of atext joined by single dots. */
static bool
valid_local(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i - 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* sub-domain *("." sub-domain), or an address literal "[" dcontent "]". */
static bool
valid_domain(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0)
		return false;
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)s[i];
			/* dcontent: %d33-90 / %d94-126 */
			if (c < 33 || c > 126 || (c >= 91 && c <= 93))
				return false;
		}
		return true;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			/* Labels neither empty nor ending in a hyphen. */
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum((unsigned char)s[i]) &&
		    !(s[i] == '-' && label > 0))
			return false;
		label++;
	}
	return true;
}

enum smtp_path_result
smtp_parse_path(const char *arg, size_t len, const char *prefix,
    unsigned flags, struct smtp_path *path)
{
	size_t plen = strlen(prefix), i, open, close, at;
	const char *mb;
	size_t mblen;

	memset(path, 0, sizeof(*path));
	path->params = arg + len;
	if (len < plen || !mem_caseeq(arg, prefix, plen))
		return SMTP_PATH_SYNTAX;
	for (i = plen; i < len && arg[i] == ' '; i++)
		;
	if (i == len || arg[i] != '<')
		return SMTP_PATH_SYNTAX;
	open = i;
	for (close = open + 1; close < len && arg[close] != '>'; close++) {
		if (arg[close] == '"')
			return SMTP_PATH_QUOTED;
	}
	if (close == len)
		return SMTP_PATH_SYNTAX;
	if (close + 1 < len) {
		/* Parameters follow after exactly one space. */
		if (arg[close + 1] != ' ' || close + 2 >= len)
			return SMTP_PATH_SYNTAX;
		path->params = arg + close + 2;
		path->paramslen = len - close - 2;
	}
	if (close - open + 1 > SMTP_PATH_MAX)
		return SMTP_PATH_TOO_LONG;
	mb = arg + open + 1;
	mblen = close - open - 1;
	if (mblen == 0)
		return (flags & SMTP_PATH_NULL_OK) ? SMTP_PATH_OK : SMTP_PATH_NULL;
	/* A-d-l (RFC 5321 §4.1.2): "@relay,@relay:" before the mailbox. */
	if (mb[0] == '@')
		return SMTP_PATH_ROUTE;
	at = mblen;
	for (size_t k = mblen; k > 0; k--) {
		if (mb[k - 1] == '@') {
			at = k - 1;
			break;
		}
	}
	if (at == mblen) {
		/* RFC 5321 §4.1.1.3: <Postmaster> without a domain. */
		if ((flags & SMTP_PATH_POSTMASTER_OK) && mblen == 10 &&
		    mem_caseeq(mb, "postmaster", 10))
			goto ok;
		return SMTP_PATH_SYNTAX;
	}
	if (at > SMTP_LOCAL_MAX || mblen - at - 1 > SMTP_DOMAIN_MAX)
		return SMTP_PATH_TOO_LONG;
	if (!valid_local(mb, at) || !valid_domain(mb + at + 1, mblen - at - 1))
		return SMTP_PATH_SYNTAX;
ok:
	memcpy(path->addr, mb, mblen);
	path->addr[mblen] = '\0';
	path->len = mblen;
	return SMTP_PATH_OK;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
valid_keyword(const char *s, size_t len)
{
	if (len == 0 || !is_alnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126) */
static bool
valid_value(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return true;
}

static bool
word_caseeq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && mem_caseeq(s, word, len);
}

enum smtp_param_result
smtp_parse_mail_params(const char *s, size_t len, struct smtp_mail_params *mp)
{
	bool seen_size = false, seen_body = false;
	size_t i = 0;

	memset(mp, 0, sizeof(*mp));
	while (i < len) {
		size_t start = i, end, eq;
		const char *kw, *val = NULL;
		size_t kwlen, vallen = 0;

		while (i < len && s[i] != ' ')
			i++;
		end = i;
		/* One space between parameters, none at the end. */
		if (end == start || (i < len && i + 1 == len))
			return SMTP_PARAM_SYNTAX;
		if (i < len)
			i++;
		for (eq = start; eq < end && s[eq] != '='; eq++)
			;
		kw = s + start;
		kwlen = eq - start;
		if (eq < end) {
			val = s + eq + 1;
			vallen = end - eq - 1;
			if (!valid_value(val, vallen))
				return SMTP_PARAM_SYNTAX;
		}
		if (!valid_keyword(kw, kwlen))
			return SMTP_PARAM_SYNTAX;
		if (word_caseeq(kw, kwlen, "SIZE")) {
			if (seen_size)
				return SMTP_PARAM_DUPLICATE;
			seen_size = true;
			if (val == NULL || !parse_u64(val, vallen, &mp->size))
				return SMTP_PARAM_BAD_VALUE;
			mp->has_size = true;
		} else if (word_caseeq(kw, kwlen, "BODY")) {
			if (seen_body)
				return SMTP_PARAM_DUPLICATE;
			seen_body = true;
			if (val != NULL && word_caseeq(val, vallen, "7BIT"))
				mp->body = SMTP_BODY_7BIT;
			else if (val != NULL && word_caseeq(val, vallen, "8BITMIME"))
				mp->body = SMTP_BODY_8BITMIME;
			else
				return SMTP_PARAM_BAD_VALUE;
		} else {
			return SMTP_PARAM_UNKNOWN;
		}
	}
	return SMTP_PARAM_OK;
}
