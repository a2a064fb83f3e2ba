/*
 * test_wire.c - wire size and the CRLF/dot-stuffing/TOP encoder, checked
 * against a naive line-by-line reference, fed whole, byte by byte, split
 * at every offset and through tiny output buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/wire.h"

struct obuf {
	unsigned char *p;
	size_t len, cap;
};

static void
ob_put(struct obuf *ob, const void *d, size_t n)
{
	if (n == 0)
		return;
	if (ob->len + n > ob->cap) {
		ob->cap = (ob->len + n) * 2 + 16;
		ob->p = realloc(ob->p, ob->cap);
		assert_non_null(ob->p);
	}
	memcpy(ob->p + ob->len, d, n);
	ob->len += n;
}

/*
 * Reference: split at LF; a CR right before the LF belongs to it; every
 * line gets CRLF; lines starting with '.' get another; TOP keeps the
 * header, the blank line and n body lines.  stuff=false gives the plain
 * wire form whose length is the wire size.
 */
static void
ref_encode(const unsigned char *in, size_t len, long long top, bool stuff,
    struct obuf *ob)
{
	size_t i = 0;
	bool in_body = false;
	long long body = 0;

	while (i < len) {
		size_t s = i, e;
		bool has_lf, empty;

		while (i < len && in[i] != '\n')
			i++;
		has_lf = i < len;
		e = i;
		if (has_lf) {
			if (e > s && in[e - 1] == '\r')
				e--;
			i++;
		}
		if (stuff && e > s && in[s] == '.')
			ob_put(ob, ".", 1);
		ob_put(ob, in + s, e - s);
		ob_put(ob, "\r\n", 2);
		empty = e == s;
		if (top >= 0) {
			if (!in_body) {
				if (empty && has_lf) {
					in_body = true;
					if (top == 0)
						break;
				}
			} else if (++body >= top)
				break;
		}
		(void)empty;
	}
	if (stuff)
		ob_put(ob, ".\r\n", 3);
}

/* Encodes with input chunks of `step` bytes (0 = whole) and output room
 * limited to `ocap` bytes per call (0 = 2 * chunk).  Returns the dots
 * stuffed. */
static uint64_t
enc_run(const unsigned char *in, size_t len, long long top, size_t step,
    size_t ocap, struct obuf *ob)
{
	struct wire_enc we;
	unsigned char out[4096 + 8], fin[WIRE_ENC_FINISH_MAX];
	size_t off = 0;

	wire_enc_init(&we, top);
	while (off < len && !wire_enc_done(&we)) {
		size_t n = step == 0 ? len - off : step, cons, w;
		size_t cap;

		if (n > len - off)
			n = len - off;
		if (n > 2048)
			n = 2048;
		cap = ocap != 0 ? ocap : 2 * n;
		w = wire_enc_update(&we, in + off, n, out, cap, &cons);
		assert_true(w <= cap);
		ob_put(ob, out, w);
		off += cons;
		if (cons < n && !wire_enc_done(&we))
			assert_true(ocap != 0);	/* only a small out stops it */
		if (ocap == 0 && !wire_enc_done(&we))
			assert_int_equal(cons, n);
	}
	ob_put(ob, fin, wire_enc_finish(&we, fin));
	return wire_enc_stuffed(&we);
}

static uint64_t
size_run(const unsigned char *in, size_t len, size_t step, bool *wf_r)
{
	struct wire_size ws;
	size_t off = 0;

	wire_size_init(&ws);
	while (off < len) {
		size_t n = step == 0 ? len - off : step;

		if (n > len - off)
			n = len - off;
		wire_size_update(&ws, in + off, n);
		off += n;
	}
	if (wf_r != NULL)
		*wf_r = wire_size_is_wire_form(&ws);
	return wire_size_final(&ws);
}

/* Every way of feeding must agree with the reference. */
static void
check_one(const unsigned char *in, size_t len)
{
	static const long long tops[] = { -1, 0, 1, 2, 5, 1000 };
	struct obuf ref = { 0 }, plain = { 0 };
	size_t t, step, cut;
	bool wf;

	ref_encode(in, len, -1, false, &plain);
	assert_int_equal(size_run(in, len, 0, &wf), plain.len);
	for (step = 1; step <= 3; step++)
		assert_int_equal(size_run(in, len, step, NULL), plain.len);
	/* wire form <=> the stored bytes are already what RETR sends */
	assert_int_equal(wf, plain.len == len &&
	    (len == 0 || memcmp(plain.p, in, len) == 0) &&
	    !(len > 0 && in[0] == '.') &&
	    memmem(in, len, "\n.", 2) == NULL);

	for (t = 0; t < sizeof(tops) / sizeof(tops[0]); t++) {
		ref.len = 0;
		ref_encode(in, len, tops[t], true, &ref);
		for (step = 0; step <= 3; step++) {
			struct obuf got = { 0 };
			uint64_t stuffed;

			stuffed = enc_run(in, len, tops[t], step, 0, &got);
			assert_int_equal(got.len, ref.len);
			/* RETR: output less the stuffing and the ".\r\n" is
			 * the LIST size (what pop3_stream checks) */
			if (tops[t] < 0)
				assert_int_equal(got.len - stuffed - 3,
				    plain.len);
			assert_memory_equal(got.p, ref.p, ref.len);
			free(got.p);
		}
		for (step = 2; step <= 5; step++) {
			struct obuf got = { 0 };

			enc_run(in, len, tops[t], 0, step, &got);
			assert_int_equal(got.len, ref.len);
			assert_memory_equal(got.p, ref.p, ref.len);
			free(got.p);
		}
		/* split in two at every offset */
		for (cut = 0; cut <= len && len < 300; cut++) {
			struct obuf got = { 0 };
			struct wire_enc we;
			unsigned char out[1024], fin[WIRE_ENC_FINISH_MAX];
			size_t cons = 0, w;

			wire_enc_init(&we, tops[t]);
			w = wire_enc_update(&we, in, cut, out, sizeof(out), &cons);
			ob_put(&got, out, w);
			if (!wire_enc_done(&we)) {
				assert_int_equal(cons, cut);
				w = wire_enc_update(&we, in + cut, len - cut,
				    out, sizeof(out), &cons);
				ob_put(&got, out, w);
			}
			ob_put(&got, fin, wire_enc_finish(&we, fin));
			assert_int_equal(got.len, ref.len);
			assert_memory_equal(got.p, ref.p, ref.len);
			free(got.p);
		}
	}
	free(ref.p);
	free(plain.p);
}

static void
check_str(const char *s)
{
	check_one((const unsigned char *)s, strlen(s));
}

static void
expect_enc(const char *in, long long top, const char *want)
{
	struct obuf got = { 0 };

	enc_run((const unsigned char *)in, strlen(in), top, 0, 0, &got);
	assert_int_equal(got.len, strlen(want));
	assert_memory_equal(got.p, want, got.len);
	free(got.p);
}

static uint64_t
wsize(const char *s)
{
	return size_run((const unsigned char *)s, strlen(s), 0, NULL);
}

static void
test_fixed_cases(void **state)
{
	(void)state;
	expect_enc("", -1, ".\r\n");
	assert_int_equal(wsize(""), 0);
	expect_enc("a\nb\n", -1, "a\r\nb\r\n.\r\n");
	assert_int_equal(wsize("a\nb\n"), 6);
	expect_enc("a\r\nb\r\n", -1, "a\r\nb\r\n.\r\n");
	expect_enc("a\r\nb\n", -1, "a\r\nb\r\n.\r\n");
	expect_enc("a\rb\n", -1, "a\rb\r\n.\r\n");	/* lone CR passes */
	assert_int_equal(wsize("a\rb\n"), 5);
	expect_enc("abc", -1, "abc\r\n.\r\n");	/* no final newline */
	assert_int_equal(wsize("abc"), 5);
	expect_enc("x\r", -1, "x\r\r\n.\r\n");
	expect_enc(".\n..\n.x\n", -1, "..\r\n...\r\n..x\r\n.\r\n");
	assert_int_equal(wsize(".\n..\n.x\n"), 11);
	expect_enc("a\r.b\n", -1, "a\r.b\r\n.\r\n");	/* not a line start */
	expect_enc("\n\n", -1, "\r\n\r\n.\r\n");
	/* TOP */
	expect_enc("H: 1\nH: 2\n\nb1\nb2\nb3\n", 0, "H: 1\r\nH: 2\r\n\r\n.\r\n");
	expect_enc("H: 1\n\nb1\nb2\nb3\n", 2, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n");
	expect_enc("H: 1\n\nb1\nb2", 5, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n");
	expect_enc("H: 1\r\n\r\n.b1\r\n", 1, "H: 1\r\n\r\n..b1\r\n.\r\n");
	expect_enc("H: 1\nH: 2", 0, "H: 1\r\nH: 2\r\n.\r\n");	/* no body */
	expect_enc("\nbody\n", 0, "\r\n.\r\n");		/* empty header */
	expect_enc("H\n\r\nb\n", 0, "H\r\n\r\n.\r\n");	/* CRLF blank */
	expect_enc("H\n\r\r\nb\n", 0, "H\r\n\r\r\nb\r\n.\r\n"); /* "\r" line is not blank */
}

static void
test_binary_and_8bit(void **state)
{
	static const unsigned char bin[] = { 0, 1, '\n', 0xff, 0xfe, '\r',
	    '\n', '.', 0, '\n', 0x80, '\r', 0x1b, '$', 'B' };
	const char *jp = "Subject: \xe6\x97\xa5\xe6\x9c\xac\n\n\x1b$B$3$s\x1b(B\n";

	(void)state;
	check_one(bin, sizeof(bin));
	check_str(jp);
	assert_int_equal(wsize(jp), strlen(jp) + 3);
}

static void
test_named_shapes(void **state)
{
	static const char *const cases[] = {
		"", "\n", "\r", "\r\n", ".", ".\n", ".\r\n", "..", "\n.",
		"\r\n.\r\n", "a", "a\n", "a\r\n", "a\r", "a\r\r\n", "\r\r\n\n",
		"H: x\nH2: y\n\nbody\n.\n..\nlast", "H: x\r\n\r\n.\r\n",
		"no header break\njust lines\n", "\n\n\n\n", ".\n.\n.\n",
		"From: a\n\n.\r\n\r\n\r\n\n\n.x",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_str(cases[i]);
}

/* Deterministic random inputs over an alphabet rich in edge bytes. */
static void
test_random(void **state)
{
	static const unsigned char alpha[] = { 'a', '.', '\r', '\n', '\n',
	    0, 0xff, ' ' };
	uint64_t x = 88172645463325252ULL;
	unsigned char buf[200];
	int iter;

	(void)state;
	for (iter = 0; iter < 1500; iter++) {
		size_t len, i;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = x % sizeof(buf);
		for (i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = alpha[x % sizeof(alpha)];
		}
		check_one(buf, iter < 1400 ? len % 40 : len);
	}
}

static void
test_wire_form(void **state)
{
	bool wf;

	(void)state;
	size_run((const unsigned char *)"a\r\nb\r\n", 6, 0, &wf);
	assert_true(wf);
	size_run((const unsigned char *)"", 0, 0, &wf);
	assert_true(wf);
	size_run((const unsigned char *)"a\r\nb", 4, 0, &wf);
	assert_false(wf);
	size_run((const unsigned char *)"a\nb\r\n", 5, 0, &wf);
	assert_false(wf);
	size_run((const unsigned char *)"a\r\n.b\r\n", 7, 0, &wf);
	assert_false(wf);
	size_run((const unsigned char *)"a\r\n.b\r\n", 7, 1, &wf);
	assert_false(wf);
	size_run((const unsigned char *)"a\rb\r\n", 5, 0, &wf);
	assert_true(wf);
}

/* A big buffer: sizes agree and the TOP limit stops consuming input. */
static void
test_large(void **state)
{
	size_t len = 1 << 20, i;
	unsigned char *in = malloc(len);
	struct obuf ref = { 0 }, got = { 0 };

	(void)state;
	assert_non_null(in);
	for (i = 0; i < len; i++)
		in[i] = (i % 73 == 72) ? '\n' : (i % 73 == 0 ? '.' : 'x');
	ref_encode(in, len, -1, true, &ref);
	enc_run(in, len, -1, 0, 0, &got);
	assert_int_equal(got.len, ref.len);
	assert_memory_equal(got.p, ref.p, ref.len);
	assert_int_equal(size_run(in, len, 4096, NULL),
	    ref.len - 3 - (len / 73 + 1));
	free(ref.p);
	free(got.p);
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_cases),
		cmocka_unit_test(test_binary_and_8bit),
		cmocka_unit_test(test_named_shapes),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_wire_form),
		cmocka_unit_test(test_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
