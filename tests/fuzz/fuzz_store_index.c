/*
 * fuzz_store_index.c - libFuzzer target for the index file parser
 * (store/store_index.c): the file sits in a directory the mail user can
 * write, so any bytes must be rejected or parsed within bounds.
 * Byte 0 bit 0 picks the kind; bit 1 fixes up the checksum first, so the
 * fuzzer gets past it to the entry parser; the rest is the file.  Oracle: a parsed index
 * iterates exactly count entries, each inside the image, with a valid
 * UIDL when it has one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_index *ix;
	struct store_index_iter it;
	struct store_index_entry e;
	unsigned char *img;
	uint32_t n = 0;

	if (size < 1)
		return 0;
	img = malloc(size - 1 ? size - 1 : 1);	/* exact size for ASan */
	if (img == NULL)
		abort();
	memcpy(img, data + 1, size - 1);
	if (data[0] & 2)
		store_index_seal(img, size - 1);
	ix = store_index_parse(img, size - 1, data[0] & 1 ?
	    STORE_INDEX_KIND_MAILDIR : STORE_INDEX_KIND_EMLDIR);
	if (ix != NULL) {
		store_index_iter_init(ix, &it);
		while (store_index_iter_next(&it, &e)) {
			if ((const unsigned char *)e.key < img ||
			    (const unsigned char *)e.key + e.key_len +
			    e.uidl_len > img + size - 1 || e.wire_size <
			    e.raw_size)
				abort();
			n++;
		}
		if (n != store_index_count(ix))
			abort();
		store_index_free(&ix);
	}
	free(img);
	return 0;
}
