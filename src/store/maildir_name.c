/*
 * maildir_name.c - Maildir file name parsing, flag merging and ordering.
 */
#include "store/maildir_name.h"

#include <string.h>

#include "lib/strutil.h"

/* Looks for ",<key>=<digits>" fields in the unique part. */
static void
maildir_name_hints(const char *u, size_t ulen, struct maildir_name *mn)
{
	const char *p = memchr(u, ',', ulen), *end = u + ulen;

	while (p != NULL) {
		const char *f = p + 1;
		const char *next = memchr(f, ',', (size_t)(end - f));
		const char *fend = next != NULL ? next : end;
		uint64_t v;

		if (fend - f >= 3 && f[1] == '=' &&
		    parse_u64(f + 2, (size_t)(fend - f - 2), &v)) {
			if (f[0] == 'S' && !mn->has_s) {
				mn->has_s = true;
				mn->s_size = v;
			} else if (f[0] == 'W' && !mn->has_w) {
				mn->has_w = true;
				mn->w_size = v;
			}
		}
		p = next;
	}
}

bool
maildir_name_parse(const char *name, size_t len, struct maildir_name *mn)
{
	const char *colon;
	size_t i;

	memset(mn, 0, sizeof(*mn));
	if (len == 0 || name[0] == '.' || memchr(name, '/', len) != NULL ||
	    memchr(name, '\0', len) != NULL)
		return false;
	colon = memchr(name, ':', len);
	mn->unique_len = colon != NULL ? (size_t)(colon - name) : len;
	if (mn->unique_len == 0)
		return false;
	if (colon != NULL) {
		mn->has_info = true;
		if (len - mn->unique_len >= 3 && colon[1] == '2' &&
		    colon[2] == ',') {
			mn->has_flags = true;
			mn->flags_off = mn->unique_len + 3;
			mn->flags_len = len - mn->flags_off;
		}
	}
	for (i = 0; i < mn->unique_len && name[i] >= '0' && name[i] <= '9';
	    i++)
		;
	if (i > 0 && parse_u64(name, i, &mn->time))
		mn->has_time = true;
	else
		mn->time = 0;
	maildir_name_hints(name, mn->unique_len, mn);
	return true;
}

bool
maildir_name_has_flag(const char *name, const struct maildir_name *mn, char c)
{
	return mn->has_flags && mn->flags_len > 0 &&
	    memchr(name + mn->flags_off, c, mn->flags_len) != NULL;
}

size_t
maildir_name_with_flag(const char *name, const struct maildir_name *mn,
    char add_flag, char *out, size_t outsz)
{
	size_t n = 0, i;
	bool added = add_flag == 0;
	const char *fl = mn->has_flags ? name + mn->flags_off : "";
	size_t flen = mn->has_flags ? mn->flags_len : 0;

	/* unique + ":2," + flags + add + NUL */
	if (mn->unique_len + 3 + flen + 2 > outsz)
		return 0;
	memcpy(out, name, mn->unique_len);
	n = mn->unique_len;
	memcpy(out + n, ":2,", 3);
	n += 3;
	for (i = 0; i < flen; i++) {
		if (!added && fl[i] == add_flag)
			added = true;
		else if (!added && (unsigned char)fl[i] > (unsigned char)add_flag) {
			out[n++] = add_flag;
			added = true;
		}
		out[n++] = fl[i];
	}
	if (!added)
		out[n++] = add_flag;
	out[n] = '\0';
	return n;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
maildir_name_cmp(const char *a, size_t alen, uint64_t atime,
    const char *b, size_t blen, uint64_t btime)
{
	size_t i = 0, j = 0;

	if (atime != btime)
		return atime < btime ? -1 : 1;
	while (i < alen && j < blen) {
		if (is_digit(a[i]) && is_digit(b[j])) {
			size_t si, sj, li, lj;

			/* skip leading zeros, then the longer run is larger */
			while (i < alen && a[i] == '0')
				i++;
			while (j < blen && b[j] == '0')
				j++;
			for (si = i; i < alen && is_digit(a[i]); i++)
				;
			for (sj = j; j < blen && is_digit(b[j]); j++)
				;
			li = i - si;
			lj = j - sj;
			if (li != lj)
				return li < lj ? -1 : 1;
			if (li > 0) {
				int c = memcmp(a + si, b + sj, li);

				if (c != 0)
					return c;
			}
			continue;
		}
		if (a[i] != b[j])
			return (unsigned char)a[i] < (unsigned char)b[j] ? -1 : 1;
		i++;
		j++;
	}
	if (i < alen || j < blen)
		return i < alen ? 1 : -1;
	/* equal modulo leading zeros: fall back to plain bytes for a total
	 * order */
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}
