/* test_pop3_parse.c - verbs, arguments, line splitting at every offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "lib/params.h"
#include "pop3/pop3_parse.h"

static void
test_verbs(void **state)
{
	struct pop3_cmd c;
	(void)state;

	assert_int_equal(pop3_parse("RETR 1", 6, &c), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_VERB_RETR);
	assert_int_equal(c.nargs, 1);
	assert_int_equal(c.arglens[0], 1);
	assert_int_equal(pop3_parse("retr 1", 6, &c), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_VERB_RETR);
	assert_int_equal(pop3_parse("uIdL", 4, &c), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_VERB_UIDL);
	assert_int_equal(c.nargs, 0);
	/* RFC 6856 */
	assert_int_equal(pop3_parse("utf8", 4, &c), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_VERB_UTF8);
	assert_int_equal(pop3_parse("LANG ja", 7, &c), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_VERB_LANG);
	assert_int_equal(c.nargs, 1);
	assert_int_equal(pop3_parse("UTF9", 4, &c), POP3_PARSE_UNKNOWN);
	assert_int_equal(pop3_parse("RETRX 1", 7, &c), POP3_PARSE_UNKNOWN);
	assert_int_equal(pop3_parse("RET", 3, &c), POP3_PARSE_UNKNOWN);
	assert_int_equal(pop3_parse("", 0, &c), POP3_PARSE_EMPTY);
	assert_int_equal(pop3_parse("TOP 1 2", 7, &c), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_VERB_TOP);
	assert_int_equal(c.nargs, 2);
	assert_memory_equal(c.args[1], "2", 1);
}

static void
test_args(void **state)
{
	struct pop3_cmd c;
	(void)state;

	/* PASS keeps spaces: the rest of the line is the password. */
	assert_int_equal(pop3_parse("PASS my secret pw", 17, &c), POP3_PARSE_OK);
	assert_int_equal(c.restlen, 12);
	assert_memory_equal(c.rest, "my secret pw", 12);
	assert_int_equal(c.nargs, 3);
	/* Double space gives an empty argument: strict callers reject it. */
	assert_int_equal(pop3_parse("LIST  1", 7, &c), POP3_PARSE_OK);
	assert_true(c.empty_arg);
	assert_int_equal(pop3_parse("LIST 1 ", 7, &c), POP3_PARSE_OK);
	assert_true(c.empty_arg);
	assert_int_equal(pop3_parse("LIST 1 2 3", 10, &c), POP3_PARSE_OK);
	assert_int_equal(c.nargs, 3);
}

static void
test_bad_bytes(void **state)
{
	struct pop3_cmd c;
	(void)state;

	assert_int_equal(pop3_parse("USER a\0b", 8, &c), POP3_PARSE_BAD_BYTES);
	assert_int_equal(pop3_parse("USER a\rb", 8, &c), POP3_PARSE_BAD_BYTES);
	assert_int_equal(pop3_parse("\x01STAT", 5, &c), POP3_PARSE_BAD_BYTES);
	assert_int_equal(pop3_parse("PASS a\tb", 8, &c), POP3_PARSE_OK);
}

/* Feeds input split at offset k and collects the lines (as "L:" or "T"). */
static void
collect(const char *in, size_t inlen, size_t k, size_t max, char *out,
    size_t outsz)
{
	struct evbuffer *b = evbuffer_new();
	bool disc = false;
	char line[1024];
	size_t len, o = 0;
	size_t cuts[3] = { 0, k, inlen };

	out[0] = '\0';
	for (int part = 0; part < 2; part++) {
		evbuffer_add(b, in + cuts[part], cuts[part + 1] - cuts[part]);
		for (;;) {
			enum pop3_line_result r = pop3_read_line(b, max, &disc,
			    line, &len);
			if (r == POP3_LINE_MORE)
				break;
			if (r == POP3_LINE_TOO_LONG)
				o += (size_t)snprintf(out + o, outsz - o, "T|");
			else
				o += (size_t)snprintf(out + o, outsz - o, "L:%.*s|",
				    (int)len, line);
		}
	}
	evbuffer_free(b);
}

static void
test_lines_split_everywhere(void **state)
{
	static const char in[] =
	    "USER a\r\nPASS b c\r\n\r\nSTAT\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n"
	    "LIST 1\r\nQUIT\r";
	const char *want = "L:USER a|L:PASS b c|L:|L:STAT|T|L:LIST 1|";
	char got[512];
	(void)state;

	for (size_t k = 0; k <= sizeof(in) - 1; k++) {
		collect(in, sizeof(in) - 1, k, 16, got, sizeof(got));
		assert_string_equal(got, want);
	}
}

static void
test_long_line_then_normal(void **state)
{
	struct evbuffer *b = evbuffer_new();
	char *big = malloc(100000);
	char line[POP3_MAX_LINE];
	bool disc = false;
	size_t len;
	(void)state;

	memset(big, 'A', 100000);
	/* No LF yet: dropped as it arrives, buffer never grows past max. */
	for (int i = 0; i < 10; i++) {
		evbuffer_add(b, big, 10000);
		assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
		    POP3_LINE_MORE);
		assert_true(evbuffer_get_length(b) <= POP3_MAX_LINE);
	}
	evbuffer_add(b, "AAA\r\nNOOP\r\n", 11);
	assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
	    POP3_LINE_TOO_LONG);
	assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
	    POP3_LINE_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(line, "NOOP", 4);
	free(big);
	evbuffer_free(b);
}

/* Found by fuzz_pop3_parse: a line of exactly max bytes whose LF arrives
 * after its CR was taken as too long, but only when split there. */
static void
test_max_line_split_before_lf(void **state)
{
	struct evbuffer *b = evbuffer_new();
	char line[POP3_MAX_LINE], in[POP3_MAX_LINE + 2];
	bool disc = false;
	size_t len;
	(void)state;

	memset(in, 'A', POP3_MAX_LINE);
	in[POP3_MAX_LINE] = '\r';
	in[POP3_MAX_LINE + 1] = '\n';
	evbuffer_add(b, in, POP3_MAX_LINE + 1);
	assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
	    POP3_LINE_MORE);
	evbuffer_add(b, in + POP3_MAX_LINE + 1, 1);
	assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
	    POP3_LINE_OK);
	assert_int_equal(len, POP3_MAX_LINE);
	/* one byte more is too long however it arrives */
	evbuffer_add(b, "B", 1);
	evbuffer_add(b, in, POP3_MAX_LINE);
	assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
	    POP3_LINE_MORE);
	evbuffer_add(b, "\r\nNOOP\r\n", 8);
	assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
	    POP3_LINE_TOO_LONG);
	assert_int_equal(pop3_read_line(b, POP3_MAX_LINE, &disc, line, &len),
	    POP3_LINE_OK);
	assert_int_equal(len, 4);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_lines_split_everywhere),
		cmocka_unit_test(test_long_line_then_normal),
		cmocka_unit_test(test_max_line_split_before_lf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
