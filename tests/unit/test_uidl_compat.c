/*
 * test_uidl_compat.c - dovecot-uidlist and courierpop3dsizelist parsing,
 * Dovecot's pop3_uidl_format expansion (expected values are what Dovecot
 * 2.3.19 served for the same files, see test_uidl_compat.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/uidl_compat.h"

static const char dovecot_v3[] =
    "3 V1796170616 N7 G542acb1478630f6bea1f000083ecc375\n"
    "1 W34 :1700000001.M1P1.host\n"
    "2 W40 S38 :1700000002.M2P2.host,S=38:2,S\n"
    "3 P000000036b0f6378 W10 :1700000003.M3P3.host\n"
    "4 P :1700000004.M4P4.host\n"
    "5 G0123abcd W12 :1700000005.M5P5.host\n"
    "3 W1 :1700000009.M9P9.host\n"		/* uid not ascending: skipped */
    "6 W1 :bad/name\n"				/* '/': skipped */
    "x W1 :garbage\n"
    "6 W99 :1700000006.M6P6.host";		/* being appended: ignored */

static const struct uidl_compat_rec *
find(const struct uidl_compat_list *l, const char *key)
{
	return uidl_compat_find(l, key, strlen(key));
}

static void
test_dovecot_v3(void **state)
{
	struct uidl_compat_list l;
	const struct uidl_compat_rec *r;

	(void)state;
	assert_true(uidl_compat_dovecot_parse(dovecot_v3, strlen(dovecot_v3),
	    &l));
	assert_int_equal(l.version, 3);
	assert_int_equal(l.uidvalidity, 1796170616u);
	assert_int_equal(l.next_uid, 7);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.bad_lines, 3);
	r = find(&l, "1700000001.M1P1.host");
	assert_non_null(r);
	assert_int_equal(r->uid, 1);
	assert_true(r->has_vsize);
	assert_int_equal(r->vsize, 34);
	assert_false(r->has_pop3);
	/* matched on the base name: flags and ":2," are not part of it */
	r = find(&l, "1700000002.M2P2.host,S=38");
	assert_non_null(r);
	assert_int_equal(r->vsize, 40);
	r = find(&l, "1700000003.M3P3.host");
	assert_true(r->has_pop3);
	assert_int_equal(r->pop3_len, 16);
	assert_memory_equal(r->pop3, "000000036b0f6378", 16);
	r = find(&l, "1700000004.M4P4.host");
	assert_true(r->has_pop3);
	assert_int_equal(r->pop3_len, 0);
	r = find(&l, "1700000005.M5P5.host");
	assert_int_equal(r->guid_len, 8);
	assert_null(find(&l, "1700000009.M9P9.host"));
	assert_null(find(&l, "1700000006.M6P6.host"));
	assert_null(find(&l, "1700000001.M1P1.hos"));
	uidl_compat_list_free(&l);
}

static void
test_dovecot_v1_and_bad_headers(void **state)
{
	static const char v1[] = "1 1234 3\n1 a.host\n2 b.host\n";
	static const char *const bad[] = {
		"", "3\n", "2 V1 N2\n", "3 N2\n", "3 V1\n", "3 V0 N1\n",
		"3 Vx N1\n", "1 12\n", "3 V1 N2",
	};
	struct uidl_compat_list l;

	(void)state;
	assert_true(uidl_compat_dovecot_parse(v1, strlen(v1), &l));
	assert_int_equal(l.uidvalidity, 1234);
	assert_int_equal(l.n, 2);
	assert_int_equal(find(&l, "b.host")->uid, 2);
	uidl_compat_list_free(&l);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_false(uidl_compat_dovecot_parse(bad[i], strlen(bad[i]),
		    &l));
		assert_int_equal(l.n, 0);
		uidl_compat_list_free(&l);
	}
}

/* Every prefix and every single-byte change parses without a fault. */
static void
test_dovecot_every_prefix(void **state)
{
	size_t len = strlen(dovecot_v3);
	char *buf = malloc(len);

	(void)state;
	for (size_t n = 0; n <= len; n++) {
		struct uidl_compat_list l;

		memcpy(buf, dovecot_v3, n);
		(void)uidl_compat_dovecot_parse(buf, n, &l);
		assert_true(l.n <= 5);
		uidl_compat_list_free(&l);
	}
	for (size_t i = 0; i < len; i++) {
		static const char subst[] = { ' ', ':', '\n', '\0', '/', 'P' };

		for (size_t k = 0; k < sizeof(subst); k++) {
			struct uidl_compat_list l;

			memcpy(buf, dovecot_v3, len);
			buf[i] = subst[k];
			(void)uidl_compat_dovecot_parse(buf, len, &l);
			uidl_compat_list_free(&l);
			(void)uidl_compat_courier_parse(buf, len, &l);
			uidl_compat_list_free(&l);
			(void)uidl_compat_tpops_parse(buf, len, &l);
			uidl_compat_list_free(&l);
		}
	}
	free(buf);
}

static void
test_courier(void **state)
{
	static const char v3[] =
	    "/3 5 1599999999\n"
	    "1600000001.M1P1V2I3.courier 208 1:1599999999:0\n"
	    "1600000002.M2P1V2I4.courier:2,S 300 2:1599999999:1\n"
	    "name with spaces 10 3:1599999999:0\n"
	    "noversion0 12 0:0:0\n"
	    "short 12\n"
	    "1600000004.M4P1V2I6.courier 12 4:1599999999\n"; /* v2 form in v3 */
	static const char v2[] = "/2 3 77\na.host 10 1:77\nb.host 11 2:0\n";
	struct uidl_compat_list l;
	const struct uidl_compat_rec *r;
	char u[64];

	(void)state;
	assert_true(uidl_compat_courier_parse(v3, strlen(v3), &l));
	assert_int_equal(l.next_uid, 5);
	assert_int_equal(l.uidvalidity, 1599999999u);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.bad_lines, 2);
	r = find(&l, "1600000001.M1P1V2I3.courier");
	assert_int_equal(r->vsize, 208);
	assert_int_not_equal(uidl_compat_courier_uidl(r, u, sizeof(u)), 0);
	assert_string_equal(u, "UID1-1599999999");
	assert_non_null(find(&l, "1600000002.M2P1V2I4.courier"));
	assert_int_equal(find(&l, "name with spaces")->uid, 3);
	/* uid 0: Courier's own "version 0" file name UIDL, not ours to make */
	assert_int_equal(uidl_compat_courier_uidl(find(&l, "noversion0"), u,
	    sizeof(u)), 0);
	uidl_compat_list_free(&l);

	assert_true(uidl_compat_courier_parse(v2, strlen(v2), &l));
	assert_int_equal(l.n, 2);
	assert_int_not_equal(uidl_compat_courier_uidl(find(&l, "b.host"), u,
	    sizeof(u)), 0);
	assert_string_equal(u, "UID2");
	uidl_compat_list_free(&l);
	assert_false(uidl_compat_courier_parse("/1 2 3\n", 7, &l));
	assert_false(uidl_compat_courier_parse("3 2 3\n", 6, &l));
}

static const char *
fmt(const char *f, const struct uidl_compat_vars *v)
{
	static char out[UIDL_COMPAT_MAX];

	if (uidl_compat_format(f, v, out, sizeof(out)) == 0)
		return NULL;
	return out;
}

/* As TPOPS's l.chomp.split(/\t/, 2) read its map. */
static void
test_tpops(void **state)
{
	static const char map[] =
	    "1100000001.M1P1.old\t1.3.20041008235025\n"
	    "1100000002.M2P1.old\tUIDL with\ttab and spaces\r\n"
	    "1100000003.M3P1.old\t\n"		/* TPOPS served "" */
	    "1100000004.M4P1.old\tfirst\n"
	    "1100000004.M4P1.old\tsecond\n"	/* the last one wins */
	    "1100000005.M5P1.old\tmapped\n"
	    "1100000005.M5P1.old\n"		/* no tab: nil, unmapped */
	    "1100000006.M6P1.old:2,S\tflags\n"	/* never a base name */
	    "dir/1100000007\tslash\n"
	    "\tno name\n"
	    "\n"
	    "1100000008.M8P1.old\tlast line";	/* no final newline */
	struct uidl_compat_list l;
	const struct uidl_compat_rec *r;

	(void)state;
	assert_true(uidl_compat_tpops_parse(map, strlen(map), &l));
	assert_int_equal(l.bad_lines, 3);
	r = find(&l, "1100000001.M1P1.old");
	assert_true(r->has_pop3);
	assert_int_equal(r->pop3_len, strlen("1.3.20041008235025"));
	assert_memory_equal(r->pop3, "1.3.20041008235025", r->pop3_len);
	r = find(&l, "1100000002.M2P1.old");
	assert_int_equal(r->pop3_len, strlen("UIDL with\ttab and spaces"));
	assert_memory_equal(r->pop3, "UIDL with\ttab and spaces", r->pop3_len);
	r = find(&l, "1100000003.M3P1.old");
	assert_true(r->has_pop3);
	assert_int_equal(r->pop3_len, 0);
	r = find(&l, "1100000004.M4P1.old");
	assert_memory_equal(r->pop3, "second", 6);
	assert_false(find(&l, "1100000005.M5P1.old")->has_pop3);
	assert_null(find(&l, "1100000006.M6P1.old"));
	assert_null(find(&l, "1100000006.M6P1.old:2,S"));
	r = find(&l, "1100000008.M8P1.old");
	assert_memory_equal(r->pop3, "last line", 9);
	uidl_compat_list_free(&l);
	assert_true(uidl_compat_tpops_parse("", 0, &l));
	assert_int_equal(l.n, 0);
	uidl_compat_list_free(&l);
}

static void
test_format(void **state)
{
	struct uidl_compat_vars v = {
		1796170616u, 1, "1700000001.M1P1.host", 20, NULL, 0, NULL,
	};

	(void)state;
	/* Dovecot's default: X gives lower-case hex (var-expand.c %llx) */
	assert_string_equal(fmt("%08Xu%08Xv", &v), "000000016b0f6378");
	v.uid = 26;
	assert_string_equal(fmt("%08Xu%08Xv", &v), "0000001a6b0f6378");
	/* modifiers apply left to right, as var_expand's */
	assert_string_equal(fmt("%08UXu", &v), "0000001a");
	assert_string_equal(fmt("%08XUu", &v), "0000001A");
	assert_string_equal(fmt("%u.%v", &v), "26.1796170616");
	assert_string_equal(fmt("%{uid}-%{uidvalidity}", &v), "26-1796170616");
	assert_string_equal(fmt("%f", &v), "1700000001.M1P1.host");
	assert_string_equal(fmt("%Uf", &v), "1700000001.M1P1.HOST");
	/* %g without a G field is the base file name, as Dovecot's maildir */
	assert_string_equal(fmt("%g", &v), "1700000001.M1P1.host");
	v.guid = "abc123";
	v.guid_len = 6;
	assert_string_equal(fmt("%g", &v), "abc123");
	assert_string_equal(fmt("%Rg", &v), "321cba");
	/* width truncates, zero padding pads, offsets cut */
	assert_string_equal(fmt("%5f", &v), "17000");
	assert_string_equal(fmt("%11.4f", &v), "M1P1");
	assert_string_equal(fmt("%-4.4f", &v), "host");
	assert_string_equal(fmt("100%%", &v), "100%");
	assert_string_equal(fmt("%Mu", &v),
	    "4e732ced3463d06de0ca9a15b6153677");	/* md5("26") */
	/* %m: Dovecot fails the command when the storage has no header MD5 */
	assert_null(fmt("%m", &v));
	v.md5 = "d41d8cd98f00b204e9800998ecf8427e";
	assert_string_equal(fmt("%m", &v), v.md5);
	assert_null(fmt("%q", &v));
	assert_null(fmt("%{nope}", &v));
	assert_null(fmt("", &v));
}

static void
test_format_overflow(void **state)
{
	struct uidl_compat_vars v = {
		1, 2, "x", 1, NULL, 0, NULL,
	};
	char small[8];

	(void)state;
	assert_int_equal(uidl_compat_format("%08Xu%08Xv", &v, small,
	    sizeof(small)), 0);
	assert_int_equal(uidl_compat_format("1234567", &v, small,
	    sizeof(small)), 7);
	assert_int_equal(uidl_compat_format("%0999u", &v, small,
	    sizeof(small)), 0);
}

static void
test_source_names(void **state)
{
	enum uidl_compat_source s;

	(void)state;
	assert_true(uidl_compat_source_parse("Dovecot", &s));
	assert_int_equal(s, UIDL_COMPAT_DOVECOT);
	assert_string_equal(uidl_compat_source_name(UIDL_COMPAT_COURIER),
	    "courier");
	assert_false(uidl_compat_source_parse("tpops2", &s));
	assert_true(uidl_compat_source_parse("TPOPS", &s));
	assert_int_equal(s, UIDL_COMPAT_TPOPS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dovecot_v3),
		cmocka_unit_test(test_dovecot_v1_and_bad_headers),
		cmocka_unit_test(test_dovecot_every_prefix),
		cmocka_unit_test(test_courier),
		cmocka_unit_test(test_tpops),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_overflow),
		cmocka_unit_test(test_source_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
