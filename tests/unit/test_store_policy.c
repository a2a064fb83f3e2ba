/* test_store_policy.c - the state files of LoginDelay and Expire
 * (store_policy.h): whatever is in them, parsing never crashes, never
 * reads past the buffer, and a damaged line can only keep mail longer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_policy.h"

static struct store_expire *
parse_str(const char *s)
{
	/* an exact-size heap copy: ASan sees any read past the end */
	size_t len = strlen(s);
	char *buf = malloc(len > 0 ? len : 1);
	struct store_expire *x;

	assert_non_null(buf);
	memcpy(buf, s, len);
	x = store_expire_parse(buf, len);
	free(buf);
	return x;
}

static uint64_t
lookup(const struct store_expire *x, const char *uidl)
{
	return store_expire_lookup(x, uidl, strlen(uidl));
}

static void
test_expire_good(void **state)
{
	struct store_expire *x;
	(void)state;

	x = parse_str("posuto-expire 1\n"
	    "1700000000 1732000001.M1P124.host\n"
	    "1700000500 Habcdef0123456789abcdef0123456789\n"
	    "1700000100 last-without-newline");
	assert_non_null(x);
	assert_int_equal(store_expire_count(x), 3);
	assert_int_equal(lookup(x, "1732000001.M1P124.host"), 1700000000);
	assert_int_equal(lookup(x, "Habcdef0123456789abcdef0123456789"),
	    1700000500);
	assert_int_equal(lookup(x, "last-without-newline"), 1700000100);
	assert_int_equal(lookup(x, "1732000001.M1P124.hos"), 0);
	assert_int_equal(lookup(x, "1732000001.M1P124.hostx"), 0);
	assert_int_equal(lookup(x, ""), 0);
	store_expire_free(&x);
	assert_null(x);
	store_expire_free(&x);		/* NULL is fine */
}

static void
test_expire_bad_header(void **state)
{
	static const char *const bad[] = {
		"", "posuto-expire", "posuto-expire 1", "posuto-expire 2\n",
		"Posuto-expire 1\n", " posuto-expire 1\n",
		"posuto-index\n1700000000 a\n", "\n1700000000 a\n",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(parse_str(bad[i]));
	/* NUL bytes in the header */
	assert_null(store_expire_parse("posuto\0expire 1\n", 16));
}

static void
test_expire_bad_lines_skipped(void **state)
{
	struct store_expire *x;
	char line[200];
	(void)state;

	x = parse_str("posuto-expire 1\n"
	    "\n"
	    "garbage\n"
	    " 1700000000 leading-space\n"
	    "1700000000  two-spaces\n"
	    "0 zero-time\n"
	    "-5 negative\n"
	    "+5 plus\n"
	    "18446744073709551616 overflow\n"
	    "1700000000 \n"
	    "1700000000 crlf\r\n"
	    "1700000000 has space\n"
	    "1700000000 tab\there\n"
	    "1700000000 ctl\x01\n"
	    "1700000000 high\xc3\xa9\n"
	    "1700000000 ok\n"
	    "17000a0000 digits\n"
	    "18446744073709551615 max\n");
	assert_non_null(x);
	assert_int_equal(store_expire_count(x), 2);
	assert_int_equal(lookup(x, "ok"), 1700000000);
	assert_int_equal(lookup(x, "max"), UINT64_MAX);
	assert_int_equal(lookup(x, "crlf"), 0);
	assert_int_equal(lookup(x, "two-spaces"), 0);
	assert_int_equal(lookup(x, " two-spaces"), 0);
	store_expire_free(&x);

	/* a UIDL of 71 octets is not a UIDL (RFC 1939: 1..70) */
	memset(line, 0, sizeof(line));
	snprintf(line, sizeof(line), "posuto-expire 1\n1 ");
	memset(line + strlen(line), 'u', 71);
	x = parse_str(line);
	assert_non_null(x);
	assert_int_equal(store_expire_count(x), 0);
	line[strlen(line) - 1] = '\0';	/* 70: fine */
	store_expire_free(&x);
	x = parse_str(line);
	assert_int_equal(store_expire_count(x), 1);
	store_expire_free(&x);
}

static void
test_expire_duplicates_keep_earliest(void **state)
{
	struct store_expire *x;
	(void)state;

	x = parse_str("posuto-expire 1\n"
	    "1700000900 a\n1700000100 a\n1700000500 a\n1700000000 b\n");
	assert_non_null(x);
	assert_int_equal(store_expire_count(x), 2);
	assert_int_equal(lookup(x, "a"), 1700000100);
	assert_int_equal(lookup(x, "b"), 1700000000);
	store_expire_free(&x);
}

static void
test_expire_due(void **state)
{
	struct store_expire *x;
	(void)state;

	assert_false(store_expire_due(0, 0, 1700000000));	/* unlisted */
	assert_true(store_expire_due(1700000000, 0, 1700000000));
	assert_false(store_expire_due(1700000000, -1, UINT64_MAX)); /* never */
	assert_false(store_expire_due(1700000000, 1, 1700086399));
	assert_true(store_expire_due(1700000000, 1, 1700086400));
	/* a first retrieval in the future is not due */
	assert_false(store_expire_due(1700000001, 0, 1700000000));
	assert_false(store_expire_due(UINT64_MAX, 36500, UINT64_MAX - 1));
	assert_true(store_expire_due(1, 36500, UINT64_MAX));

	x = parse_str("posuto-expire 1\n1700000000 a\n1700100000 b\n");
	assert_false(store_expire_any_due(x, 2, 1700100000));
	assert_true(store_expire_any_due(x, 1, 1700100000));
	assert_false(store_expire_any_due(x, -1, 1800000000));
	assert_false(store_expire_any_due(NULL, 0, 1800000000));
	store_expire_free(&x);
}

/* Every prefix of a valid file and every single-byte change parse
 * without crashing (ASan checks the reads). */
static void
test_expire_mutations(void **state)
{
	const char *good = "posuto-expire 1\n1700000000 uidl-one\n"
	    "1700000001 uidl-two\n";
	size_t len = strlen(good);
	(void)state;

	for (size_t cut = 0; cut <= len; cut++) {
		char *buf = malloc(cut > 0 ? cut : 1);
		struct store_expire *x;

		assert_non_null(buf);
		memcpy(buf, good, cut);
		x = store_expire_parse(buf, cut);
		if (cut < 16)
			assert_null(x);
		store_expire_free(&x);
		free(buf);
	}
	for (size_t i = 0; i < len; i++) {
		for (unsigned b = 0; b < 256; b += 7) {
			char *buf = malloc(len);
			struct store_expire *x;

			assert_non_null(buf);
			memcpy(buf, good, len);
			buf[i] = (char)b;
			x = store_expire_parse(buf, len);
			assert_true(store_expire_count(x) <= 2);
			(void)store_expire_lookup(x, "uidl-one", 8);
			store_expire_free(&x);
			free(buf);
		}
	}
}

static void
test_login_parse(void **state)
{
	uint64_t t = 0;
	(void)state;

	assert_true(store_login_parse("posuto-login 1 1700000000\n", 26, &t));
	assert_int_equal(t, 1700000000);
	assert_true(store_login_parse("posuto-login 1 5", 16, &t));
	assert_int_equal(t, 5);
	assert_false(store_login_parse("posuto-login 1 0\n", 17, &t));
	assert_false(store_login_parse("posuto-login 1 \n", 16, &t));
	assert_false(store_login_parse("posuto-login 1 ", 15, &t));
	assert_false(store_login_parse("posuto-login 2 5\n", 17, &t));
	assert_false(store_login_parse("posuto-login 1 5\n\n", 18, &t));
	assert_false(store_login_parse("posuto-login 1 -5\n", 18, &t));
	assert_false(store_login_parse("posuto-login 1 99999999999999999999\n",
	    36, &t));
	assert_false(store_login_parse("", 0, &t));
	assert_false(store_login_parse("\n", 1, &t));
}

static void
test_load_missing(void **state)
{
	uint64_t t;
	(void)state;

	assert_null(store_expire_load_path("/nonexistent/posuto"));
	assert_false(store_login_last("/nonexistent/posuto", &t));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expire_good),
		cmocka_unit_test(test_expire_bad_header),
		cmocka_unit_test(test_expire_bad_lines_skipped),
		cmocka_unit_test(test_expire_duplicates_keep_earliest),
		cmocka_unit_test(test_expire_due),
		cmocka_unit_test(test_expire_mutations),
		cmocka_unit_test(test_login_parse),
		cmocka_unit_test(test_load_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
