/*
 * test_maildir_name.c - Maildir file name parsing, flag merging, order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/maildir_name.h"

static struct maildir_name
parse_ok(const char *name)
{
	struct maildir_name mn;

	assert_true(maildir_name_parse(name, strlen(name), &mn));
	return mn;
}

static void
test_plain_names(void **state)
{
	struct maildir_name mn;

	(void)state;
	mn = parse_ok("1700000000.M123P456.host");
	assert_int_equal(mn.unique_len, strlen("1700000000.M123P456.host"));
	assert_false(mn.has_info);
	assert_false(mn.has_flags);
	assert_true(mn.has_time);
	assert_int_equal(mn.time, 1700000000);
	assert_false(mn.has_s);
	assert_false(mn.has_w);

	/* qmail: time.pid.host, flags in cur/ */
	mn = parse_ok("1042.12345.mail.example.org:2,RS");
	assert_int_equal(mn.unique_len, strlen("1042.12345.mail.example.org"));
	assert_true(mn.has_info);
	assert_true(mn.has_flags);
	assert_int_equal(mn.flags_len, 2);
	assert_true(maildir_name_has_flag("1042.12345.mail.example.org:2,RS",
	    &mn, 'S'));
	assert_false(maildir_name_has_flag("1042.12345.mail.example.org:2,RS",
	    &mn, 'T'));

	/* empty flag list */
	mn = parse_ok("1.2.h:2,");
	assert_true(mn.has_flags);
	assert_int_equal(mn.flags_len, 0);
	/* experimental info */
	mn = parse_ok("1.2.h:1,xyz");
	assert_true(mn.has_info);
	assert_false(mn.has_flags);
	/* no time prefix */
	mn = parse_ok("abc.def");
	assert_false(mn.has_time);
	assert_int_equal(mn.time, 0);
	/* an absurd time is no time */
	mn = parse_ok("999999999999999999999999.x");
	assert_false(mn.has_time);
}

static void
test_size_hints(void **state)
{
	struct maildir_name mn;

	(void)state;
	mn = parse_ok("1700000000.M1P2.host,S=1234,W=1260:2,S");
	assert_true(mn.has_s);
	assert_int_equal(mn.s_size, 1234);
	assert_true(mn.has_w);
	assert_int_equal(mn.w_size, 1260);
	assert_int_equal(mn.unique_len,
	    strlen("1700000000.M1P2.host,S=1234,W=1260"));

	mn = parse_ok("1700000000.M1P2.host,S=99");
	assert_true(mn.has_s);
	assert_false(mn.has_w);

	/* malformed hints are ignored, never half-parsed */
	mn = parse_ok("1.h,S=12x,W=-5,S=,W=18446744073709551616");
	assert_false(mn.has_s);
	assert_false(mn.has_w);
	mn = parse_ok("1.h,X=5,S=+7");
	assert_false(mn.has_s);
	/* hints after ':' are not hints */
	mn = parse_ok("1.h:2,S=5");
	assert_false(mn.has_s);
	/* first of duplicates wins */
	mn = parse_ok("1.h,S=5,S=6");
	assert_int_equal(mn.s_size, 5);
	mn = parse_ok("1.h,S=18446744073709551615");
	assert_int_equal(mn.s_size, UINT64_MAX);
}

static void
test_rejects(void **state)
{
	struct maildir_name mn;

	(void)state;
	assert_false(maildir_name_parse("", 0, &mn));
	assert_false(maildir_name_parse(".", 1, &mn));
	assert_false(maildir_name_parse("..", 2, &mn));
	assert_false(maildir_name_parse(".hidden", 7, &mn));
	assert_false(maildir_name_parse(":2,S", 4, &mn));
	assert_false(maildir_name_parse("a/b", 3, &mn));
	assert_false(maildir_name_parse("a\0b", 3, &mn));
}

/* Every prefix of a name parses without reading past it. */
static void
test_prefixes(void **state)
{
	const char *name = "1700000000.M1P2Q3.host.example,S=1234,W=1260:2,FRS";
	size_t n, len = strlen(name);

	(void)state;
	for (n = 0; n <= len; n++) {
		char *copy = malloc(n ? n : 1);
		struct maildir_name mn;

		assert_non_null(copy);
		memcpy(copy, name, n);
		if (maildir_name_parse(copy, n, &mn)) {
			assert_true(mn.unique_len <= n);
			assert_true(mn.flags_off + mn.flags_len <= n ||
			    !mn.has_flags);
		}
		free(copy);
	}
}

static void
expect_flag(const char *name, char add, const char *want)
{
	struct maildir_name mn = parse_ok(name);
	char out[256];
	size_t n = maildir_name_with_flag(name, &mn, add, out, sizeof(out));

	assert_int_equal(n, strlen(want));
	assert_string_equal(out, want);
}

static void
test_with_flag(void **state)
{
	struct maildir_name mn;
	char small[8];

	(void)state;
	expect_flag("1.2.h", 'S', "1.2.h:2,S");
	expect_flag("1.2.h", 0, "1.2.h:2,");
	expect_flag("1.2.h:2,", 'S', "1.2.h:2,S");
	expect_flag("1.2.h:2,FR", 'S', "1.2.h:2,FRS");
	expect_flag("1.2.h:2,RT", 'S', "1.2.h:2,RST");
	expect_flag("1.2.h:2,S", 'S', "1.2.h:2,S");
	expect_flag("1.2.h:2,DFT", 'S', "1.2.h:2,DFST");
	expect_flag("1.2.h:2,abc", 'S', "1.2.h:2,Sabc");
	expect_flag("1.2.h,S=5:2,P", 0, "1.2.h,S=5:2,P");
	expect_flag("1.2.h:1,exp", 'S', "1.2.h:2,S");
	mn = parse_ok("1234567.h");
	assert_int_equal(maildir_name_with_flag("1234567.h", &mn, 'S', small,
	    sizeof(small)), 0);
}

static int
cmp(const char *a, const char *b)
{
	struct maildir_name ma = parse_ok(a), mb = parse_ok(b);

	return maildir_name_cmp(a, ma.unique_len, ma.time, b, mb.unique_len,
	    mb.time);
}

static void
test_order(void **state)
{
	(void)state;
	/* delivery time first, numerically */
	assert_true(cmp("999999999.a.h", "1000000000.a.h") < 0);
	assert_true(cmp("1000000000.a.h", "999999999.a.h") > 0);
	/* same second: microseconds numerically, then the rest bytewise */
	assert_true(cmp("1700000000.M9P1.h", "1700000000.M10P1.h") < 0);
	assert_true(cmp("1700000000.M10P1.h", "1700000000.M10P2.h") < 0);
	/* qmail time.pid.host: no sub-second part, pids are no order */
	assert_true(cmp("1700000000.5.h", "1700000000.40.h") > 0);
	/* flags do not take part */
	assert_int_equal(cmp("1.2.h:2,S", "1.2.h"), 0);
	/* total order on distinct unique parts */
	assert_true(cmp("1.02.h", "1.2.h") != 0);
	assert_true(cmp("1.02.h", "1.2.h") == -cmp("1.2.h", "1.02.h"));
	assert_true(cmp("abc", "abd") < 0);
	assert_true(cmp("ab", "abc") < 0);
}

/* Names delivered in one second come out in arrival order: by the
 * microseconds or sequence the MTA put in them, never by inode, pid or
 * device (issue 9). */
static void
test_order_within_second(void **state)
{
	/* each list in arrival order */
	static const char *const postfix[] = {
		"1700000000.V803I1a2bM000005.host",	/* zero-padded */
		"1700000000.V803I0009M99.host",
		"1700000000.V803Iffff0M123456.host",
		"1700000000.V801I1M123457.host",
		"1700000000.V803I2M999999.host",
	};
	static const char *const dovecot[] = {
		"1700000000.M7P9999.mail.example.org",
		"1700000000.M80P1234.mail.example.org",
		"1700000000.M80P1234Q2.mail.example.org",
		"1700000000.M80P1234Q10.mail.example.org",
		"1700000000.M81P1.mail.example.org,S=1234,W=1260",
		"1700000000.M700000P22V000000000000FE01I0000000000abcd.h",
	};
	static const char *const courier[] = {
		"1700000000.M123P90V0000000000000803I00000000000fffff.h",
		"1700000000.M124P10V0000000000000803I0000000000000001.h",
	};
	static const char *const qmail[] = {
		"1700000000.123.h",		/* no sub-second: first, */
		"1700000000.99.h",		/* then by name */
		"1700000000.#2.h",
		"1700000000.#10.h",
		"1700000000.M5P77.h",
		"1700000001.1.h",
	};
	static const char *const *lists[] = { postfix, dovecot, courier,
	    qmail };
	static const size_t lens[] = { 5, 6, 2, 6 };
	size_t l, i, j;

	(void)state;
	for (l = 0; l < 4; l++)
		for (i = 0; i < lens[l]; i++)
			for (j = 0; j < lens[l]; j++) {
				int c = cmp(lists[l][i], lists[l][j]);

				if (i < j)
					assert_true(c < 0);
				else if (i > j)
					assert_true(c > 0);
				else
					assert_int_equal(c, 0);
			}
	/* a lone M with more than 6 digits or hex is no microsecond count */
	assert_true(cmp("1700000000.M1234567P1.h", "1700000000.M2P1.h") < 0);
	assert_true(cmp("1700000000.M12aP1.h", "1700000000.M2P1.h") < 0);
}

/* key2 agrees with the full comparison whenever it differs. */
static void
test_key2(void **state)
{
	static const char *const names[] = { "1700000000.M9P1.h",
	    "1700000000.M10P1.h", "1700000000.M10P2.h", "1700000000",
	    "1700000000.", "01.x", "1.x", "1.xyz", "abc", "ab", "",
	    "1700000000.M123456789", "1700000000.M1234567890",
	    "1700000000.V803I1a2bM123456.host", "1700000000.V803I2M99.host",
	    "1700000000.M5P1Q3.h", "1700000000.M5P1Q20.h", "1700000000.#7.h",
	    "1700000000.M5P1Q99999999.h", "1700000000.M5P1Q65535.h",
	    "1700000000.M999999", "1700000000.M0", "1700000000.X" };
	size_t i, j, n = sizeof(names) / sizeof(names[0]);

	(void)state;
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			const char *a = names[i], *b = names[j];
			size_t al = strlen(a), bl = strlen(b);
			uint64_t ta = maildir_name_time(a, al);
			uint64_t tb = maildir_name_time(b, bl);
			uint64_t ka = maildir_name_key2(a, al);
			uint64_t kb = maildir_name_key2(b, bl);
			int c = maildir_name_cmp(a, al, ta, b, bl, tb);

			assert_int_equal(c == 0, i == j);
			assert_int_equal(c, -maildir_name_cmp(b, bl, tb, a, al,
			    ta));
			if (ta == tb && ka != kb)
				assert_int_equal(c < 0, ka < kb);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_names),
		cmocka_unit_test(test_size_hints),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_with_flag),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_order_within_second),
		cmocka_unit_test(test_key2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
