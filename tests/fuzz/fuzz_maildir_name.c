/*
 * fuzz_maildir_name.c - libFuzzer target for store/maildir_name.c.
 *
 * The input is split at the first NUL byte into two names (a NUL can
 * never be part of a real name, so the first one is a valid candidate).
 * Oracles: parsing reads only the given bytes; the unique part has no
 * ':' and is a prefix; hints parsed back agree; the cur/ name built with
 * a flag re-parses to the same unique part, carries the flag and keeps
 * the old flags; the order is antisymmetric and key2 agrees with it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/maildir_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_one(const char *name, size_t len)
{
	struct maildir_name mn, mn2;
	char out[600];
	size_t n, i;
	char *copy = malloc(len ? len : 1);	/* exact size: ASan bounds */

	if (copy == NULL)
		abort();
	memcpy(copy, name, len);
	if (!maildir_name_parse(copy, len, &mn)) {
		free(copy);
		return;
	}
	if (mn.unique_len == 0 || mn.unique_len > len ||
	    memchr(copy, ':', mn.unique_len) != NULL)
		abort();
	if (mn.has_flags && (mn.flags_off != mn.unique_len + 3 ||
	    mn.flags_off + mn.flags_len != len))
		abort();
	if (mn.has_time && !(copy[0] >= '0' && copy[0] <= '9'))
		abort();
	n = maildir_name_with_flag(copy, &mn, 'S', out, sizeof(out));
	if (n != 0) {
		if (strlen(out) != n || !maildir_name_parse(out, n, &mn2) ||
		    mn2.unique_len != mn.unique_len ||
		    memcmp(out, copy, mn.unique_len) != 0 ||
		    !mn2.has_flags || !maildir_name_has_flag(out, &mn2, 'S') ||
		    mn2.has_s != mn.has_s || mn2.s_size != mn.s_size ||
		    mn2.has_w != mn.has_w || mn2.w_size != mn.w_size)
			abort();
		for (i = 0; mn.has_flags && i < mn.flags_len; i++)
			if (!maildir_name_has_flag(out, &mn2,
			    copy[mn.flags_off + i]))
				abort();
		if (mn2.flags_len != mn.flags_len + 1 &&
		    !maildir_name_has_flag(copy, &mn, 'S'))
			abort();
	}
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *a = (const char *)data, *b;
	const char *nul = memchr(data, '\0', size);
	size_t alen = nul ? (size_t)(nul - a) : size, blen;
	uint64_t ta, tb, ka, kb;
	int c1, c2;

	check_one(a, alen);
	b = nul ? nul + 1 : a + size;
	blen = nul ? size - alen - 1 : 0;
	if (nul != NULL)
		check_one(b, blen);
	/* ordering on any two byte strings (unique parts) */
	ta = maildir_name_time(a, alen);
	tb = maildir_name_time(b, blen);
	ka = maildir_name_key2(a, alen);
	kb = maildir_name_key2(b, blen);
	c1 = maildir_name_cmp(a, alen, ta, b, blen, tb);
	c2 = maildir_name_cmp(b, blen, tb, a, alen, ta);
	if (c1 != -c2 || (c1 == 0) != (alen == blen &&
	    memcmp(a, b, alen) == 0))
		abort();
	if (ta == tb && ka != kb && (c1 < 0) != (ka < kb))
		abort();
	return 0;
}
