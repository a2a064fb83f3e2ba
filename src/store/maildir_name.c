/*
 * maildir_name.c - Maildir file name parsing, flag merging and ordering.
 */
#include "store/maildir_name.h"

#include <stdbool.h>
#include <string.h>

#include "lib/strutil.h"

static size_t maildir_digits(const char *s, size_t len);

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
	i = maildir_digits(name, mn->unique_len);
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

static size_t
maildir_digits(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	return i;
}

/* A tag of the delivery identifier: an upper-case letter that is not a
 * hex digit (values of V and I are hex), or qmail's '#'. */
static bool
maildir_is_tag(char c)
{
	return c == '#' || (c >= 'G' && c <= 'Z');
}

static bool
maildir_is_xdigit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * Where a name says it was delivered within its second.  The part after
 * "<time>." is, in djb's maildir spec and as Postfix (V<dev>I<ino>M<usec>),
 * Dovecot (M<usec>P<pid>[Q<n>]) and Courier (M<usec>P<pid>V<dev>I<ino>)
 * write it, a run of tag + value fields: M is the microseconds, Q the
 * deliveries by that process and # a sequence number.  qmail's older
 * "<time>.<pid>.host" has neither (pids are not arrival order).  *usec1_r
 * is microseconds + 1 (0 = none), *seq_r the Q or # value capped at
 * 0xffff (0 = none).
 */
static void
maildir_name_subsec(const char *u, size_t ulen, uint32_t *usec1_r,
    uint32_t *seq_r)
{
	size_t p = maildir_digits(u, ulen);
	uint64_t v;

	*usec1_r = 0;
	*seq_r = 0;
	if (p == 0 || p >= ulen || u[p] != '.')
		return;
	for (p++; p < ulen && maildir_is_tag(u[p]);) {
		char tag = u[p];
		size_t start = ++p, dec;

		while (p < ulen && maildir_is_xdigit(u[p]))
			p++;
		dec = maildir_digits(u + start, p - start);
		if (dec == 0 || dec != p - start)
			continue;	/* empty or hex: not a count */
		if (tag == 'M' && *usec1_r == 0 && dec <= 6 &&
		    parse_u64(u + start, dec, &v))
			*usec1_r = (uint32_t)v + 1;
		else if ((tag == 'Q' || tag == '#') && *seq_r == 0 &&
		    dec <= 19 && parse_u64(u + start, dec, &v))
			*seq_r = v > 0xffff ? 0xffff : (uint32_t)v;
	}
}

uint64_t
maildir_name_key2(const char *u, size_t ulen)
{
	size_t d = maildir_digits(u, ulen), i;
	uint32_t usec1, seq;
	uint64_t k = 0;

	maildir_name_subsec(u, ulen, &usec1, &seq);
	/* usec1 <= 1e6 < 2^20, seq < 2^16, then 3 bytes after the time */
	for (i = 0; i < 3; i++)
		k = (k << 8) | (d + i < ulen ? (unsigned char)u[d + i] : 0);
	return ((uint64_t)usec1 << 40) | ((uint64_t)seq << 24) | k;
}

uint64_t
maildir_name_time(const char *u, size_t ulen)
{
	size_t d = maildir_digits(u, ulen);
	uint64_t t;

	return d > 0 && parse_u64(u, d, &t) ? t : 0;
}

int
maildir_name_cmp(const char *a, size_t alen, uint64_t atime,
    const char *b, size_t blen, uint64_t btime)
{
	size_t da, db, ra, rb;
	uint32_t ua, sa, ub, sb;
	int c;

	if (atime != btime)
		return atime < btime ? -1 : 1;
	/* then the microseconds and sequence the names carry ... */
	maildir_name_subsec(a, alen, &ua, &sa);
	maildir_name_subsec(b, blen, &ub, &sb);
	if (ua != ub)
		return ua < ub ? -1 : 1;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	/* ... then what follows the time digits, bytewise ... */
	da = maildir_digits(a, alen);
	db = maildir_digits(b, blen);
	ra = alen - da;
	rb = blen - db;
	c = memcmp(a + da, b + db, ra < rb ? ra : rb);
	if (c != 0)
		return c < 0 ? -1 : 1;
	if (ra != rb)
		return ra < rb ? -1 : 1;
	/* ... and the whole unique part for a total order ("01.x", "1.x") */
	c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}
