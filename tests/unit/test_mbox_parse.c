/* test_mbox_parse.c - From_ splitting, stored ranges, wire sizes, digests
 * and mboxrd (un)quoting; every input fed whole, byte by byte and split
 * at every offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire.h"
#include "store/mbox_parse.h"

/* Parses s fed in pieces: step 0 = whole, else split at `split` and then
 * fed step bytes at a time. */
static struct mbox_parser *
parse_split(const char *s, size_t len, size_t split, size_t step, bool *ok)
{
	struct mbox_parser *p = mbox_parser_new(0);
	size_t off = 0;

	*ok = true;
	if (split > 0 && split <= len) {
		*ok = mbox_parser_feed(p, s, split) && *ok;
		off = split;
	}
	while (off < len) {
		size_t k = step == 0 ? len - off : step;

		if (k > len - off)
			k = len - off;
		*ok = mbox_parser_feed(p, s + off, k) && *ok;
		off += k;
	}
	*ok = mbox_parser_finish(p) && *ok;
	return p;
}

/* Whole, byte by byte and split at every offset agree; returns the
 * whole-fed parser. */
static struct mbox_parser *
parse_all_ways(const char *s, bool want_ok)
{
	size_t len = strlen(s), i;
	bool ok;
	struct mbox_parser *w = parse_split(s, len, 0, 0, &ok);

	assert_int_equal(ok, want_ok);
	for (i = 0; i <= len + 1; i++) {
		struct mbox_parser *p = parse_split(s, len, i,
		    i == len + 1 ? 1 : 0, &ok);

		assert_int_equal(ok, want_ok);
		if (want_ok) {
			assert_int_equal(mbox_parser_count(p),
			    mbox_parser_count(w));
			assert_memory_equal(mbox_parser_msgs(p),
			    mbox_parser_msgs(w), mbox_parser_count(w) *
			    sizeof(struct mbox_msg));
		}
		mbox_parser_free(&p);
	}
	return w;
}

/* The stored bytes of message i, as a string. */
static char *
stored(const char *s, const struct mbox_msg *m)
{
	return strndup(s + m->data_off, (size_t)m->data_len);
}

/* Reference wire size: un-quote by hand, then lib/wire. */
static uint64_t
ref_wire(const char *unquoted)
{
	struct wire_size ws;

	wire_size_init(&ws);
	wire_size_update(&ws, unquoted, strlen(unquoted));
	return wire_size_final(&ws);
}

#define F1 "From alice@example.org  Mon Jan  6 10:00:00 2025\n"
#define F2 "From bob@example.org Tue Jan  7 11:22:33 2025\n"
#define F3 "From MAILER-DAEMON  Wed Jan  8 00:00:01 2025\n"

static void
test_three_messages(void **state)
{
	const char *s = F1 "Subject: a\n\nbody a\n\n" F2 "Subject: b\n\nb\n\n"
	    F3 "Subject: c\n\nc\n\n";
	struct mbox_parser *p = parse_all_ways(s, true);
	const struct mbox_msg *m = mbox_parser_msgs(p);
	char *t;

	(void)state;
	assert_int_equal(mbox_parser_count(p), 3);
	assert_int_equal(m[0].from_off, 0);
	assert_int_equal(m[0].data_off, strlen(F1));
	t = stored(s, &m[0]);
	assert_string_equal(t, "Subject: a\n\nbody a\n");
	free(t);
	assert_int_equal(m[0].end_off, m[1].from_off);
	assert_memory_equal(s + m[1].from_off, "From bob", 8);
	t = stored(s, &m[2]);
	assert_string_equal(t, "Subject: c\n\nc\n");
	free(t);
	assert_int_equal(m[2].end_off, strlen(s));
	assert_int_equal(m[0].wire_size, ref_wire("Subject: a\n\nbody a\n"));
	assert_int_equal(m[0].wire_size, strlen("Subject: a\n\nbody a\n") + 3);
	/* different From_ lines, different digests */
	assert_memory_not_equal(m[1].digest, m[2].digest, MBOX_DIGEST_LEN);
	mbox_parser_free(&p);
}

static void
test_from_in_body_not_split(void **state)
{
	/* no blank line before; after a blank line but no date; quoted */
	const char *s = F1 "S: x\n\nline\nFrom here on\n\nFrom my point of "
	    "view\n\n>From 12:00 2025 quoted\n>>From x\n\n" F2 "b\n";
	struct mbox_parser *p = parse_all_ways(s, true);
	const struct mbox_msg *m = mbox_parser_msgs(p);
	char *t;

	(void)state;
	assert_int_equal(mbox_parser_count(p), 2);
	t = stored(s, &m[0]);
	assert_string_equal(t, "S: x\n\nline\nFrom here on\n\nFrom my point "
	    "of view\n\n>From 12:00 2025 quoted\n>>From x\n");
	free(t);
	assert_int_equal(m[0].wire_size, ref_wire("S: x\n\nline\nFrom here "
	    "on\n\nFrom my point of view\n\nFrom 12:00 2025 quoted\n>From x\n"));
	assert_int_equal(m[0].quoted, 2);	/* two '>' dropped */
	assert_int_equal(m[1].quoted, 0);
	t = stored(s, &m[1]);
	assert_string_equal(t, "b\n");	/* no final blank: all kept */
	free(t);
	mbox_parser_free(&p);
}

static void
test_crlf_and_edges(void **state)
{
	const char *s = "\n\r\n" "From a Thu Jan  1 00:00:00 1970\r\n"
	    "X: 1\r\n\r\nbody\r\n\r\n"
	    "From b Thu Jan  1 00:00:01 1970\r\nlast line no newline";
	struct mbox_parser *p = parse_all_ways(s, true);
	const struct mbox_msg *m = mbox_parser_msgs(p);
	char *t;

	(void)state;
	assert_int_equal(mbox_parser_count(p), 2);
	assert_int_equal(m[0].from_off, 3);	/* leading blank lines skipped */
	t = stored(s, &m[0]);
	assert_string_equal(t, "X: 1\r\n\r\nbody\r\n");
	free(t);
	assert_int_equal(m[0].wire_size, strlen("X: 1\r\n\r\nbody\r\n"));
	t = stored(s, &m[1]);
	assert_string_equal(t, "last line no newline");
	free(t);
	assert_int_equal(m[1].wire_size, strlen("last line no newline") + 2);
	mbox_parser_free(&p);
}

static void
test_blank_lines_kept_inside(void **state)
{
	/* a message ending in blank lines keeps all but the separator */
	const char *s = F1 "a\n\n\n\n" F2 "\n";
	struct mbox_parser *p = parse_all_ways(s, true);
	const struct mbox_msg *m = mbox_parser_msgs(p);
	char *t;

	(void)state;
	assert_int_equal(mbox_parser_count(p), 2);
	t = stored(s, &m[0]);
	assert_string_equal(t, "a\n\n\n");
	free(t);
	assert_int_equal(m[1].data_len, 0);	/* empty message */
	assert_int_equal(m[1].wire_size, 0);
	mbox_parser_free(&p);
}

static void
test_not_mbox(void **state)
{
	struct mbox_parser *p;

	(void)state;
	p = parse_all_ways("Return-Path: <x>\n\nbody\n", false);
	mbox_parser_free(&p);
	p = parse_all_ways("\n\nFro", false);
	mbox_parser_free(&p);
	p = parse_all_ways("", true);
	assert_int_equal(mbox_parser_count(p), 0);
	mbox_parser_free(&p);
	p = parse_all_ways("\n\r\n\n", true);
	assert_int_equal(mbox_parser_count(p), 0);
	mbox_parser_free(&p);
	/* any "From " line starts a file, even without a date */
	p = parse_all_ways("From x\nbody\n", true);
	assert_int_equal(mbox_parser_count(p), 1);
	mbox_parser_free(&p);
}

static void
test_long_from_line(void **state)
{
	size_t n = MBOX_FROM_MAX + 100;
	char *s = malloc(3 * n), *q = s;
	struct mbox_parser *p;

	(void)state;
	q += snprintf(q, 100, "%s", F1 "a\n\n" "From ");
	memset(q, 'x', n);
	q += n;
	q += snprintf(q, 100, " Mon Jan  6 10:00:00 2025\nb\n");
	p = parse_all_ways(s, true);
	/* too long to be a separator: part of the first message */
	assert_int_equal(mbox_parser_count(p), 1);
	mbox_parser_free(&p);
	free(s);
}

static void
test_from_line_ok(void **state)
{
	(void)state;
	assert_true(mbox_from_line_ok("From a  Mon Jan  6 10:00:00 2025", 32));
	assert_true(mbox_from_line_ok("From a Mon, 6 Jan 2025 9:05 +0100", 33));
	assert_false(mbox_from_line_ok("From my point of view", 21));
	assert_false(mbox_from_line_ok("From 10:00", 10));
	assert_false(mbox_from_line_ok("from a 10:00 2025", 17));
}

/* Un-quote fed in every split equals the reference. */
static void
unquote_check(const char *in, const char *want)
{
	size_t len = strlen(in), i, j;

	for (i = 0; i <= len; i++) {
		char out[512];
		struct mbox_unquote u;
		size_t o = 0;

		mbox_unquote_init(&u);
		o += mbox_unquote_update(&u, in, i, out + o);
		for (j = i; j < len; j++)	/* the rest byte by byte */
			o += mbox_unquote_update(&u, in + j, 1, out + o);
		o += mbox_unquote_finish(&u, out + o);
		assert_int_equal(o, strlen(want));
		assert_memory_equal(out, want, o);
	}
}

static void
quote_check(const char *in, const char *want)
{
	size_t len = strlen(in), i, j;

	for (i = 0; i <= len; i++) {
		char out[512];
		struct mbox_quote q;
		size_t o = 0;

		mbox_quote_init(&q);
		o += mbox_quote_update(&q, in, i, out + o);
		for (j = i; j < len; j++)
			o += mbox_quote_update(&q, in + j, 1, out + o);
		o += mbox_quote_finish(&q, out + o);
		assert_int_equal(o, strlen(want));
		assert_memory_equal(out, want, o);
	}
}

static void
test_unquote(void **state)
{
	(void)state;
	unquote_check(">From x\n>>From y\n>>>From z\nFrom w\n",
	    "From x\n>From y\n>>From z\nFrom w\n");
	unquote_check("a>From x\n>Fro\n>\n>>\n> From\n>From", 
	    "a>From x\n>Fro\n>\n>>\n> From\n>From");
	unquote_check(">Fr", ">Fr");
	quote_check("From x\n>From y\na From\n>Fro\nFro", 
	    ">From x\n>>From y\na From\n>Fro\nFro");
	quote_check(">>>From \n", ">>>>From \n");
}

/* quote then unquote is the identity, on pseudo-random text. */
static void
test_quote_roundtrip(void **state)
{
	static const char *atoms[] = { "From ", ">", "\n", "Fr", "x", "\r\n",
	    "om ", ">From " };
	unsigned seed = 12345;
	int t;

	(void)state;
	for (t = 0; t < 2000; t++) {
		char in[256], q[600], out[700];
		struct mbox_quote qs;
		struct mbox_unquote us;
		size_t n = 0, qn, on;

		while (n < 200) {
			const char *a;

			seed = seed * 1103515245 + 12345;
			a = atoms[(seed >> 16) % 8];
			memcpy(in + n, a, strlen(a));
			n += strlen(a);
		}
		mbox_quote_init(&qs);
		qn = mbox_quote_update(&qs, in, n, q);
		qn += mbox_quote_finish(&qs, q + qn);
		mbox_unquote_init(&us);
		on = mbox_unquote_update(&us, q, qn, out);
		on += mbox_unquote_finish(&us, out + on);
		assert_int_equal(on, n);
		assert_memory_equal(out, in, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_messages),
		cmocka_unit_test(test_from_in_body_not_split),
		cmocka_unit_test(test_crlf_and_edges),
		cmocka_unit_test(test_blank_lines_kept_inside),
		cmocka_unit_test(test_not_mbox),
		cmocka_unit_test(test_long_from_line),
		cmocka_unit_test(test_from_line_ok),
		cmocka_unit_test(test_unquote),
		cmocka_unit_test(test_quote_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
