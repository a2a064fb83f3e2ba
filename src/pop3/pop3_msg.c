/* pop3_msg.c - the catalogue's tables and bounded reply formatting. */
#include <stdio.h>
#include <string.h>

#include "lib/params.h"
#include "pop3/pop3_msg.h"

static const char *const msg_fmt[POP3_MSG_COUNT][POP3_LANG_COUNT] = {
#define POP3_MSG_ENTRY(id) \
	[POP3_MSG_##id] = { [POP3_LANG_EN] = POP3_EN_##id, \
			    [POP3_LANG_JA] = POP3_JA_##id },
	POP3_MSG_IDS(POP3_MSG_ENTRY)
#undef POP3_MSG_ENTRY
};

static const char *const msg_names[POP3_MSG_COUNT] = {
#define POP3_MSG_NAME(id) [POP3_MSG_##id] = #id,
	POP3_MSG_IDS(POP3_MSG_NAME)
#undef POP3_MSG_NAME
};

static const struct {
	const char *tag, *name;
} langs[POP3_LANG_COUNT] = {
	[POP3_LANG_EN] = { "en", "English" },
	[POP3_LANG_JA] = { "ja", "日本語" },
};

const char *
pop3_lang_tag(enum pop3_lang lang)
{
	return langs[lang].tag;
}

const char *
pop3_lang_name(enum pop3_lang lang)
{
	return langs[lang].name;
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* 1*8ALPHA *("-" 1*8alphanum) (RFC 4647 §2.1), lower-cased into buf. */
static bool
lang_range_parse(const char *s, size_t len, char *buf, size_t size)
{
	size_t sub = 0;
	bool first = true;

	if (len == 0 || len >= size)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '-') {
			if (sub == 0)
				return false;
			sub = 0;
			first = false;
		} else if (is_alpha(c) || (!first && c >= '0' && c <= '9')) {
			if (++sub > 8)
				return false;
		} else {
			return false;
		}
		buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	buf[len] = '\0';
	return sub > 0;
}

enum pop3_lang_match
pop3_lang_lookup(const char *range, size_t len, enum pop3_lang *lang_r)
{
	char buf[64];
	size_t n = len;

	if (len == 1 && range[0] == '*') {
		*lang_r = POP3_LANG_DEFAULT;
		return POP3_LANG_MATCH;
	}
	if (!lang_range_parse(range, len, buf, sizeof(buf)))
		return POP3_LANG_BAD_RANGE;
	/* RFC 2277's "i-default" is the default language. */
	if (strcmp(buf, "i-default") == 0) {
		*lang_r = POP3_LANG_DEFAULT;
		return POP3_LANG_MATCH;
	}
	for (;;) {
		for (unsigned l = 0; l < POP3_LANG_COUNT; l++) {
			if (strlen(langs[l].tag) == n &&
			    memcmp(langs[l].tag, buf, n) == 0) {
				*lang_r = (enum pop3_lang)l;
				return POP3_LANG_MATCH;
			}
		}
		/* Drop the last subtag, and a single-character one (an
		 * extension or private-use marker) left before it. */
		while (n > 0 && buf[n - 1] != '-')
			n--;
		if (n == 0)
			return POP3_LANG_NO_MATCH;
		n--;
		if (n >= 2 && buf[n - 2] == '-')
			n -= 2;
	}
}

const char *
pop3_msg_fmt(enum pop3_lang lang, enum pop3_msg_id id)
{
	return msg_fmt[id][lang];
}

const char *
pop3_msg_name(enum pop3_msg_id id)
{
	return msg_names[id];
}

/* Length of the UTF-8 sequence at s (at most len bytes), 0 if malformed. */
static size_t
utf8_seq_len(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned long cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool
pop3_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len; ) {
		size_t n = utf8_seq_len(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

size_t
pop3_utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n;

	if (len <= max)
		return len;
	n = max;
	/* Back off continuation bytes to the start of the cut sequence;
	 * that start is then excluded unless the sequence fits whole. */
	while (n > 0 && (u[n] & 0xc0) == 0x80)
		n--;
	return n;
}

size_t
pop3_msg_vformat(char *buf, size_t size, enum pop3_lang lang,
    enum pop3_msg_id id, va_list ap)
{
	/* A line as RFC 2449 §4 allows, one octet more (to see whether
	 * the cut falls inside a character) and the NUL. */
	char line[POP3_MAX_RESPONSE - 2 + 2];
	size_t max = POP3_MAX_RESPONSE - 2;
	size_t n;
	int r;

	if (size - 1 < max)
		max = size - 1;
	/* Every format is a catalogue literal whose arguments the compiler
	 * checked at the call site (POP3_MSG_CHECK), in both languages. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	r = vsnprintf(line, sizeof(line), msg_fmt[id][lang], ap);
#pragma GCC diagnostic pop
	if (r < 0)
		r = 0;
	n = (size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1;
	n = pop3_utf8_cut(line, n, max);
	memcpy(buf, line, n);
	buf[n] = '\0';
	return n;
}
