/* test_strutil.c - strict numbers, base64, hex, constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/strutil.h"

static void
test_parse_u32(void **state)
{
	uint32_t v;
	(void)state;

	assert_true(parse_u32("1", 1, &v));
	assert_int_equal(v, 1);
	assert_true(parse_u32("4294967295", 10, &v));
	assert_int_equal(v, UINT32_MAX);
	/* popa3d's example: must not wrap to 1. */
	assert_false(parse_u32("4294967297", 10, &v));
	assert_false(parse_u32("4294967296", 10, &v));
	assert_false(parse_u32("-1", 2, &v));
	assert_false(parse_u32("+1", 2, &v));
	assert_false(parse_u32("1x", 2, &v));
	assert_false(parse_u32(" 1", 2, &v));
	assert_false(parse_u32("", 0, &v));
	assert_true(parse_u32("007", 3, &v));
	assert_int_equal(v, 7);
	/* Length-bounded: "12" of "123". */
	assert_true(parse_u32("123", 2, &v));
	assert_int_equal(v, 12);
}

static void
test_parse_u64(void **state)
{
	uint64_t v;
	(void)state;

	assert_true(parse_u64("18446744073709551615", 20, &v));
	assert_true(v == UINT64_MAX);
	assert_false(parse_u64("18446744073709551616", 20, &v));
	assert_false(parse_u64("184467440737095516150", 21, &v));
}

static void
test_base64(void **state)
{
	unsigned char out[64];
	char enc[64];
	(void)state;

	assert_int_equal(base64_decode("AHVzZXIAcGFzcw==", 16, out), 10);
	assert_memory_equal(out, "\0user\0pass", 10);
	assert_int_equal(base64_decode("", 0, out), 0);
	assert_int_equal(base64_decode("YQ=", 3, out), -1);
	assert_int_equal(base64_decode("Y===", 4, out), -1);
	assert_int_equal(base64_decode("YQ==YQ==", 8, out), -1);
	assert_int_equal(base64_decode("Y Q=", 4, out), -1);
	assert_int_equal(base64_decode("YWJj", 4, out), 3);
	assert_int_equal(base64_decode("YWI=", 4, out), 2);
	base64_encode((const unsigned char *)"ab", 2, enc);
	assert_string_equal(enc, "YWI=");
	assert_int_equal(base64_encoded_len(2), 4);
}

static void
test_hex_and_ct(void **state)
{
	unsigned char b[2];
	char h[5];
	(void)state;

	assert_true(hex_decode("aBff", 4, b, 2));
	assert_int_equal(b[0], 0xab);
	hex_encode(b, 2, h);
	assert_string_equal(h, "abff");
	assert_false(hex_decode("zz00", 4, b, 2));
	assert_false(hex_decode("abc", 3, b, 2));
	assert_true(ct_streq("abc", 3, "abc", 3));
	assert_false(ct_streq("abc", 3, "abd", 3));
	assert_false(ct_streq("abc", 3, "abcd", 4));
	assert_false(ct_streq("", 0, "a", 1));
	assert_true(ascii_caseeq("RetR", "rEtr"));
	assert_false(ascii_caseeq("RET", "RETR"));
	assert_true(ascii_casepfx("SCRAM-SHA-256-PLUS", "scram-"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u32),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_hex_and_ct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
