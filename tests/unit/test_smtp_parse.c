/* test_smtp_parse.c - verbs, RFC 5321 paths, ESMTP MAIL parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_parse.h"

#define S(x) x, (sizeof(x) - 1)

static void
test_verbs(void **state)
{
	struct smtp_cmd c;
	(void)state;

	assert_int_equal(smtp_parse_cmd(S("LHLO mx.example"), &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_VERB_LHLO);
	assert_int_equal(c.arglen, 10);
	assert_memory_equal(c.arg, "mx.example", 10);
	assert_int_equal(smtp_parse_cmd(S("mail FROM:<a@b>"), &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_VERB_MAIL);
	assert_int_equal(smtp_parse_cmd(S("DaTa"), &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_VERB_DATA);
	assert_int_equal(c.arglen, 0);
	assert_int_equal(smtp_parse_cmd(S("QUIT"), &c), SMTP_PARSE_OK);
	assert_int_equal(smtp_parse_cmd(S("HELP"), &c), SMTP_PARSE_OK);
	assert_int_equal(smtp_parse_cmd(S("VRFY x"), &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_VERB_VRFY);
	assert_int_equal(smtp_parse_cmd(S("BDAT 10 LAST"), &c), SMTP_PARSE_UNKNOWN);
	assert_int_equal(smtp_parse_cmd(S("DATAX"), &c), SMTP_PARSE_UNKNOWN);
	assert_int_equal(smtp_parse_cmd(S("DAT"), &c), SMTP_PARSE_UNKNOWN);
	assert_int_equal(smtp_parse_cmd(S(" DATA"), &c), SMTP_PARSE_UNKNOWN);
	assert_int_equal(smtp_parse_cmd(S(""), &c), SMTP_PARSE_EMPTY);
	/* "MAIL " keeps an empty argument: the MAIL handler rejects it. */
	assert_int_equal(smtp_parse_cmd(S("MAIL "), &c), SMTP_PARSE_OK);
	assert_int_equal(c.arglen, 0);
	for (unsigned v = 0; v < SMTP_VERB_COUNT; v++)
		assert_int_equal(strlen(smtp_verb_name((enum smtp_verb)v)), 4);
}

static void
test_bad_bytes(void **state)
{
	struct smtp_cmd c;
	(void)state;

	assert_int_equal(smtp_parse_cmd(S("NOOP a\0b"), &c), SMTP_PARSE_BAD_BYTES);
	assert_int_equal(smtp_parse_cmd(S("NO\0OP"), &c), SMTP_PARSE_BAD_BYTES);
	assert_int_equal(smtp_parse_cmd(S("NOOP a\rb"), &c), SMTP_PARSE_BAD_BYTES);
	assert_int_equal(smtp_parse_cmd(S("RCPT TO:<\xc3\xa9@x>"), &c),
	    SMTP_PARSE_BAD_BYTES);
	assert_int_equal(smtp_parse_cmd(S("NOOP \x7f"), &c), SMTP_PARSE_BAD_BYTES);
}

static enum smtp_path_result
path(const char *arg, const char *prefix, unsigned flags, struct smtp_path *p)
{
	return smtp_parse_path(arg, strlen(arg), prefix, flags, p);
}

static void
test_paths(void **state)
{
	struct smtp_path p;
	(void)state;

	assert_int_equal(path("FROM:<alice@example.org>", "FROM:", 0, &p),
	    SMTP_PATH_OK);
	assert_string_equal(p.addr, "alice@example.org");
	assert_int_equal(p.len, 17);
	assert_int_equal(p.paramslen, 0);
	assert_int_equal(path("from: <a.b+tag@x-y.example>", "FROM:", 0, &p),
	    SMTP_PATH_OK);
	assert_string_equal(p.addr, "a.b+tag@x-y.example");
	assert_int_equal(path("TO:<u@[127.0.0.1]>", "TO:", 0, &p), SMTP_PATH_OK);
	assert_int_equal(path("TO:<u@[IPv6:::1]>", "TO:", 0, &p), SMTP_PATH_OK);
	/* The null reverse-path, only where allowed. */
	assert_int_equal(path("FROM:<>", "FROM:", SMTP_PATH_NULL_OK, &p),
	    SMTP_PATH_OK);
	assert_string_equal(p.addr, "");
	assert_int_equal(path("TO:<>", "TO:", 0, &p), SMTP_PATH_NULL);
	assert_int_equal(path("TO:<Postmaster>", "TO:", SMTP_PATH_POSTMASTER_OK,
	    &p), SMTP_PATH_OK);
	assert_string_equal(p.addr, "Postmaster");
	assert_int_equal(path("TO:<Postmaster>", "TO:", 0, &p), SMTP_PATH_SYNTAX);
	assert_int_equal(path("TO:<bob>", "TO:", SMTP_PATH_POSTMASTER_OK, &p),
	    SMTP_PATH_SYNTAX);
	/* Parameters after one space. */
	assert_int_equal(path("FROM:<a@b> SIZE=10 BODY=8BITMIME", "FROM:", 0,
	    &p), SMTP_PATH_OK);
	assert_int_equal(p.paramslen, 21);
	assert_memory_equal(p.params, "SIZE=10 BODY=8BITMIME", 21);
	/* Syntax errors. */
	const char *bad[] = {
		"FROM:a@b", "FROM:<a@b", "FROM:<a@b>x", "FROM:<a@b> ",
		"FROM <a@b>", "TO:<a@b>", "FROM:<@b>", "FROM:<a@>",
		"FROM:<.a@b>", "FROM:<a.@b>", "FROM:<a..b@c>", "FROM:<a b@c>",
		"FROM:<a@b..c>", "FROM:<a@-b>", "FROM:<a@b->", "FROM:<a@b_c>",
		"FROM:<a@[]>", "FROM:<a@[x]y>", "FROM:<a@b.>", "FROM:",
		"FROM:<a<b@c>", "FROM:<a(b)@c>", "FROM:<a@b@c>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum smtp_path_result r = path(bad[i], "FROM:", 0, &p);
		if (r != SMTP_PATH_SYNTAX && r != SMTP_PATH_ROUTE)
			fail_msg("%s: %d", bad[i], r);
		assert_int_equal(p.len, 0);
	}
	/* Not accepted, each with its own reason. */
	assert_int_equal(path("TO:<@relay.example:u@x>", "TO:", 0, &p),
	    SMTP_PATH_ROUTE);
	assert_int_equal(path("TO:<@a,@b:u@x>", "TO:", 0, &p), SMTP_PATH_ROUTE);
	assert_int_equal(path("TO:<\"a b\"@x>", "TO:", 0, &p), SMTP_PATH_QUOTED);
}

static void
test_path_lengths(void **state)
{
	struct smtp_path p;
	char buf[600], local[80], dom[300];
	(void)state;

	/* Local part: 64 is the limit. */
	memset(local, 'l', 64);
	local[64] = '\0';
	snprintf(buf, sizeof(buf), "TO:<%s@x>", local);
	assert_int_equal(path(buf, "TO:", 0, &p), SMTP_PATH_OK);
	memset(local, 'l', 65);
	local[65] = '\0';
	snprintf(buf, sizeof(buf), "TO:<%s@x>", local);
	assert_int_equal(path(buf, "TO:", 0, &p), SMTP_PATH_TOO_LONG);
	/* The path with its brackets: 256 is the limit. */
	memset(dom, 0, sizeof(dom));
	for (size_t i = 0; i < 250; i++)
		dom[i] = (i % 50 == 49 && i != 249) ? '.' : 'd';
	dom[250] = '\0';	/* "l@" + 250 + "<>" = 254 */
	snprintf(buf, sizeof(buf), "TO:<l@%s>", dom);
	assert_int_equal(path(buf, "TO:", 0, &p), SMTP_PATH_OK);
	assert_int_equal(p.len, 252);
	snprintf(buf, sizeof(buf), "TO:<lll@%s>", dom);	/* 256 */
	assert_int_equal(path(buf, "TO:", 0, &p), SMTP_PATH_OK);
	snprintf(buf, sizeof(buf), "TO:<llll@%s>", dom);	/* 257 */
	assert_int_equal(path(buf, "TO:", 0, &p), SMTP_PATH_TOO_LONG);
	assert_int_equal(p.len, 0);
}

static enum smtp_param_result
params(const char *s, struct smtp_mail_params *mp)
{
	return smtp_parse_mail_params(s, strlen(s), mp);
}

static void
test_mail_params(void **state)
{
	struct smtp_mail_params mp;
	(void)state;

	assert_int_equal(params("", &mp), SMTP_PARAM_OK);
	assert_false(mp.has_size);
	assert_int_equal(mp.body, SMTP_BODY_7BIT);
	assert_int_equal(params("SIZE=12345", &mp), SMTP_PARAM_OK);
	assert_true(mp.has_size);
	assert_int_equal(mp.size, 12345);
	assert_int_equal(params("size=1 body=8bitmime", &mp), SMTP_PARAM_OK);
	assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
	assert_int_equal(params("BODY=7BIT", &mp), SMTP_PARAM_OK);
	assert_int_equal(mp.body, SMTP_BODY_7BIT);
	assert_int_equal(params("SIZE=1 SIZE=2", &mp), SMTP_PARAM_DUPLICATE);
	assert_int_equal(params("BODY=8BITMIME BODY=7BIT", &mp),
	    SMTP_PARAM_DUPLICATE);
	assert_int_equal(params("SIZE=x", &mp), SMTP_PARAM_BAD_VALUE);
	assert_int_equal(params("SIZE", &mp), SMTP_PARAM_BAD_VALUE);
	/* Overflow is an error, never a wrap. */
	assert_int_equal(params("SIZE=18446744073709551616", &mp),
	    SMTP_PARAM_BAD_VALUE);
	assert_int_equal(params("SIZE=-1", &mp), SMTP_PARAM_BAD_VALUE);
	assert_int_equal(params("BODY=BINARYMIME", &mp), SMTP_PARAM_BAD_VALUE);
	assert_int_equal(params("SMTPUTF8", &mp), SMTP_PARAM_UNKNOWN);
	assert_int_equal(params("AUTH=<>", &mp), SMTP_PARAM_UNKNOWN);
	assert_int_equal(params("SIZE=1  BODY=7BIT", &mp), SMTP_PARAM_SYNTAX);
	assert_int_equal(params("SIZE=1 ", &mp), SMTP_PARAM_SYNTAX);
	assert_int_equal(params("=1", &mp), SMTP_PARAM_SYNTAX);
	assert_int_equal(params("-X=1", &mp), SMTP_PARAM_SYNTAX);
	assert_int_equal(params("SIZE=", &mp), SMTP_PARAM_SYNTAX);
	assert_int_equal(params("SIZE=1=2", &mp), SMTP_PARAM_SYNTAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_path_lengths),
		cmocka_unit_test(test_mail_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
