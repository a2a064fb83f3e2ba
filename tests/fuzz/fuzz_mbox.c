/*
 * fuzz_mbox.c - libFuzzer target for the mbox splitter and the mbox
 * size index (store/mbox_parse.c, store/mbox_store.c): mailbox content
 * is mail, i.e. attacker input, and the index sits in a writable place.
 * Byte 0 bit 0: 0 = mbox bytes, 1 = index image.  Oracles for the
 * splitter: fed whole and in two pieces it gives the same messages; the
 * messages tile the input in order; each message's wire size equals the
 * size of its stored bytes un-quoted and CRLF-ed (lib/wire).  For the
 * index: a parsed image has entries
 * inside the file it describes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire.h"
#include "store/mbox_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mbox_parser *
run(const uint8_t *d, size_t n, size_t split, bool *ok)
{
	struct mbox_parser *p = mbox_parser_new(0);

	*ok = mbox_parser_feed(p, d, split);
	*ok = mbox_parser_feed(p, d + split, n - split) && *ok;
	*ok = mbox_parser_finish(p) && *ok;
	return p;
}

static void
fuzz_split(const uint8_t *d, size_t n)
{
	bool ok1, ok2;
	struct mbox_parser *a = run(d, n, 0, &ok1);
	struct mbox_parser *b = run(d, n, n / 3, &ok2);
	const struct mbox_msg *m = mbox_parser_msgs(a);
	size_t i, cnt = mbox_parser_count(a);

	if (ok1 != ok2)
		abort();
	if (ok1) {
		if (cnt != mbox_parser_count(b) ||
		    (cnt > 0 && memcmp(m, mbox_parser_msgs(b),
		    cnt * sizeof(*m)) != 0))
			abort();
		for (i = 0; i < cnt; i++) {
			struct mbox_unquote u;
			struct wire_size ws;
			unsigned char *out;
			size_t o;

			if (m[i].from_off >= m[i].data_off ||
			    m[i].data_off + m[i].data_len > m[i].end_off ||
			    m[i].end_off > n ||
			    (i + 1 < cnt && m[i].end_off != m[i + 1].from_off) ||
			    memcmp(d + m[i].from_off, "From ", 5) != 0)
				abort();
			out = malloc(m[i].data_len + MBOX_UNQUOTE_SLACK * 2);
			mbox_unquote_init(&u);
			o = mbox_unquote_update(&u, d + m[i].data_off,
			    (size_t)m[i].data_len, out);
			o += mbox_unquote_finish(&u, out + o);
			wire_size_init(&ws);
			wire_size_update(&ws, out, o);
			if (wire_size_final(&ws) != m[i].wire_size)
				abort();
			free(out);
		}
		if (cnt > 0 && m[cnt - 1].end_off != n)
			abort();
	}
	mbox_parser_free(&a);
	mbox_parser_free(&b);
}

static void
fuzz_index(const uint8_t *d, size_t n)
{
	struct mbox_file_id id;
	unsigned char tail[MBOX_DIGEST_LEN];
	struct mbox_msg *m;
	unsigned char *img = malloc(n ? n : 1);	/* exact size for ASan */
	size_t cnt, i;

	memcpy(img, d, n);
	if (mbox_index_parse(img, n, &id, tail, &m, &cnt)) {
		for (i = 0; i < cnt; i++)
			if (m[i].end_off > id.size ||
			    m[i].data_off + m[i].data_len > m[i].end_off)
				abort();
		free(m);
	}
	free(img);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_index(data + 1, size - 1);
	else
		fuzz_split(data + 1, size - 1);
	return 0;
}
