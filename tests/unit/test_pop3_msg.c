/* test_pop3_msg.c - the reply catalogue: both languages for every id,
 * the same status, response code and conversions in each; bounded,
 * UTF-8-safe formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/params.h"
#include "pop3/pop3_msg.h"

/* "+OK" or "-ERR", then end or a space; returns the prefix length. */
static size_t
status_len(const char *f)
{
	if (strncmp(f, "+OK", 3) == 0 && (f[3] == '\0' || f[3] == ' '))
		return 3;
	if (strncmp(f, "-ERR", 4) == 0 && (f[4] == '\0' || f[4] == ' '))
		return 4;
	return 0;
}

/* The "[CODE]" right after the status, or "" (into buf). */
static void
resp_code(const char *f, char *buf, size_t size)
{
	const char *p = f + status_len(f);
	const char *e;

	buf[0] = '\0';
	if (p[0] != ' ' || p[1] != '[')
		return;
	e = strchr(p, ']');
	assert_non_null(e);
	assert_true((size_t)(e - p) < size);
	memcpy(buf, p + 1, (size_t)(e - p));
	buf[e - p] = '\0';
}

/* The conversions of a format, in order ("%u%lu%s"), into buf. */
static void
conversions(const char *f, char *buf, size_t size)
{
	size_t n = 0;

	for (const char *p = f; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		const char *start = p++;
		while (*p != '\0' && strchr("0123456789.-+ #hlzjt", *p) != NULL)
			p++;
		assert_true(*p != '\0');
		size_t len = (size_t)(p - start) + 1;
		assert_true(n + len < size);
		memcpy(buf + n, start, len);
		n += len;
	}
	buf[n] = '\0';
}

/* True if the text has words (letters outside status, code and
 * conversions): then it is for people and must be translated. */
static bool
has_words(const char *f)
{
	char code[64];
	const char *p = f + status_len(f);

	resp_code(f, code, sizeof(code));
	if (code[0] != '\0')
		p = strchr(p, ']') + 1;
	for (; *p != '\0'; p++) {
		if (*p == '%') {
			while (*++p != '\0' && strchr("0123456789.-+ #hlzjt", *p))
				;
			if (*p == '\0')
				break;
			continue;
		}
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			return true;
	}
	return false;
}

/* Each failing check names its id: a failure says which text to fix. */
#define CHECK(cond) do { \
	if (!(cond)) { \
		print_error("%s: %s\n", pop3_msg_name(id), #cond); \
		bad++; \
	} \
} while (0)

static void
test_every_id_has_both_texts(void **state)
{
	unsigned bad = 0;

	(void)state;
	for (unsigned i = 0; i < POP3_MSG_COUNT; i++) {
		enum pop3_msg_id id = (enum pop3_msg_id)i;
		const char *en = pop3_msg_fmt(POP3_LANG_EN, id);
		const char *ja = pop3_msg_fmt(POP3_LANG_JA, id);
		char ca[64], cb[64], va[64], vb[64];

		assert_non_null(pop3_msg_name(id));
		assert_non_null(en);
		assert_non_null(ja);
		/* Same status, same response code, same arguments. */
		CHECK(status_len(en) > 0);
		CHECK(status_len(en) == status_len(ja) &&
		    memcmp(en, ja, status_len(en)) == 0);
		resp_code(en, ca, sizeof(ca));
		resp_code(ja, cb, sizeof(cb));
		CHECK(strcmp(ca, cb) == 0);
		conversions(en, va, sizeof(va));
		conversions(ja, vb, sizeof(vb));
		CHECK(strcmp(va, vb) == 0);
		/* English is printable ASCII; Japanese is UTF-8 without
		 * controls, and really translated. */
		for (const char *p = en; *p != '\0'; p++)
			CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
		for (const char *p = ja; *p != '\0'; p++)
			CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f);
		CHECK(pop3_utf8_valid(ja, strlen(ja)));
		CHECK(!has_words(en) || strcmp(en, ja) != 0);
		CHECK(strlen(en) <= POP3_MAX_RESPONSE - 2);
		CHECK(strlen(ja) <= POP3_MAX_RESPONSE - 2);
	}
	assert_int_equal(bad, 0);
}

static size_t
fmt(char *buf, size_t size, enum pop3_lang lang, enum pop3_msg_id id, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = pop3_msg_vformat(buf, size, lang, id, ap);
	va_end(ap);
	return n;
}

static void
test_format(void **state)
{
	char buf[POP3_MAX_RESPONSE];
	size_t n;

	(void)state;
	n = fmt(buf, sizeof(buf), POP3_LANG_EN, POP3_MSG_DELE, (uint32_t)7);
	assert_string_equal(buf, "+OK Message 7 deleted");
	assert_int_equal(n, strlen(buf));
	n = fmt(buf, sizeof(buf), POP3_LANG_JA, POP3_MSG_DELE, (uint32_t)7);
	assert_string_equal(buf, "+OK メッセージ7を削除しました");
	n = fmt(buf, sizeof(buf), POP3_LANG_EN, POP3_MSG_STAT, (uint32_t)2,
	    (uint64_t)320);
	assert_string_equal(buf, "+OK 2 320");
	/* A small buffer: cut, terminated, never inside a character. */
	n = fmt(buf, 12, POP3_LANG_JA, POP3_MSG_DELE, (uint32_t)7);
	assert_int_equal(n, 10);		/* "+OK " and two characters */
	assert_int_equal(buf[n], '\0');
	assert_memory_equal(buf, "+OK メッ", n);
}

/* RFC 2449 §4: a status line, CRLF included, is at most 512 octets,
 * whatever an argument holds. */
static void
test_format_bounded(void **state)
{
	char buf[2048];
	char arg[1500];
	size_t n;

	(void)state;
	memset(arg, 'x', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	n = fmt(buf, sizeof(buf), POP3_LANG_EN, POP3_MSG_GREETING_APOP, arg);
	assert_int_equal(n, POP3_MAX_RESPONSE - 2);
	assert_int_equal(strlen(buf), n);
	assert_memory_equal(buf, "+OK POP3 server ready xxx", 25);
	/* Three-octet characters across the limit at every alignment. */
	for (size_t shift = 0; shift < 3; shift++) {
		size_t k = 0;
		for (; k < shift; k++)
			arg[k] = 'a';
		while (k + 3 < sizeof(arg)) {
			memcpy(arg + k, "\xe3\x81\x82", 3);	/* あ */
			k += 3;
		}
		arg[k] = '\0';
		for (unsigned l = 0; l < POP3_LANG_COUNT; l++) {
			n = fmt(buf, sizeof(buf), (enum pop3_lang)l,
			    POP3_MSG_GREETING_APOP, arg);
			assert_true(n <= POP3_MAX_RESPONSE - 2);
			assert_true(n >= POP3_MAX_RESPONSE - 2 - 2);
			assert_true(pop3_utf8_valid(buf, n));
		}
	}
}

static void
test_utf8(void **state)
{
	(void)state;
	assert_true(pop3_utf8_valid("", 0));
	assert_true(pop3_utf8_valid("abc", 3));
	assert_true(pop3_utf8_valid("ユーザー@example.jp", strlen("ユーザー@example.jp")));
	assert_true(pop3_utf8_valid("\xf0\x9f\x93\xa7", 4));	/* U+1F4E7 */
	assert_false(pop3_utf8_valid("\xc0\xaf", 2));		/* overlong '/' */
	assert_false(pop3_utf8_valid("\xe0\x80\xaf", 3));	/* overlong */
	assert_false(pop3_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(pop3_utf8_valid("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	assert_false(pop3_utf8_valid("\xe3\x81", 2));		/* truncated */
	assert_false(pop3_utf8_valid("\x82", 1));		/* lone continuation */
	assert_false(pop3_utf8_valid("\xff", 1));
	assert_false(pop3_utf8_valid("\x83\x86\x81\x5b", 4));	/* Shift_JIS */
	/* Cuts never end inside a character. */
	assert_int_equal(pop3_utf8_cut("ab", 2, 5), 2);
	assert_int_equal(pop3_utf8_cut("a\xe3\x81\x82", 4, 3), 1);
	assert_int_equal(pop3_utf8_cut("a\xe3\x81\x82", 4, 2), 1);
	assert_int_equal(pop3_utf8_cut("a\xe3\x81\x82" "b", 5, 4), 4);
}

static enum pop3_lang_match
lookup(const char *range, enum pop3_lang *lang_r)
{
	return pop3_lang_lookup(range, strlen(range), lang_r);
}

static void
test_lang_lookup(void **state)
{
	enum pop3_lang l;

	(void)state;
	assert_string_equal(pop3_lang_tag(POP3_LANG_EN), "en");
	assert_string_equal(pop3_lang_tag(POP3_LANG_JA), "ja");
	assert_string_equal(pop3_lang_name(POP3_LANG_JA), "日本語");
	/* Tags are case-insensitive; lookup falls back subtag by subtag,
	 * dropping a single-character subtag with what follows it. */
	static const struct {
		const char *range;
		enum pop3_lang lang;
	} match[] = {
		{ "en", POP3_LANG_EN }, { "EN", POP3_LANG_EN },
		{ "en-US", POP3_LANG_EN }, { "en-GB-oxendict", POP3_LANG_EN },
		{ "ja", POP3_LANG_JA }, { "JA", POP3_LANG_JA },
		{ "ja-JP", POP3_LANG_JA }, { "ja-Jpan-JP", POP3_LANG_JA },
		{ "ja-x-osaka", POP3_LANG_JA }, { "ja-JP-u-ca-japanese", POP3_LANG_JA },
		{ "*", POP3_LANG_DEFAULT }, { "i-default", POP3_LANG_DEFAULT },
		{ "I-DEFAULT", POP3_LANG_DEFAULT },
	};
	for (size_t i = 0; i < sizeof(match) / sizeof(match[0]); i++) {
		l = POP3_LANG_COUNT;
		assert_int_equal(lookup(match[i].range, &l), POP3_LANG_MATCH);
		assert_int_equal(l, match[i].lang);
	}
	static const char *const none[] = {
		"fr", "de-DE", "jax", "j", "e", "x-ja", "i", "eng", "uga",
	};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		assert_int_equal(lookup(none[i], &l), POP3_LANG_NO_MATCH);
	static const char *const bad[] = {
		"", "-", "ja-", "-ja", "ja--JP", "ja_JP", "1ja", "ja JP",
		"abcdefghi", "ja-abcdefghi", "ja-*", "**", "日本語", "ja.JP",
		/* 64 octets: well-formed, but over our 63-octet cap */
		"en-US-aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaa",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(lookup(bad[i], &l), POP3_LANG_BAD_RANGE);
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(pop3_lang_lookup("jaXYZ", 2, &l), POP3_LANG_MATCH);
	assert_int_equal(l, POP3_LANG_JA);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_id_has_both_texts),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_bounded),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_lang_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
