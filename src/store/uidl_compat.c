/*
 * uidl_compat.c - parsers for dovecot-uidlist and courierpop3dsizelist,
 * and Dovecot's pop3_uidl_format expansion (uidl_compat.h).  The formats
 * are read as the servers read them (Dovecot 2.3 maildir-uidlist.c and
 * var-expand.c, Courier pop3dserver.c), but more strictly: a line either
 * server would have refused is skipped, never guessed at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "store/uidl_compat.h"

static const char *const uidl_compat_names[] = {
	[UIDL_COMPAT_AUTO] = "auto",
	[UIDL_COMPAT_NONE] = "none",
	[UIDL_COMPAT_DOVECOT] = "dovecot",
	[UIDL_COMPAT_COURIER] = "courier",
	[UIDL_COMPAT_UW] = "uw",
	[UIDL_COMPAT_QPOPPER] = "qpopper",
	[UIDL_COMPAT_TPOPS] = "tpops",
};

const char *
uidl_compat_source_name(enum uidl_compat_source s)
{
	if ((size_t)s >= sizeof(uidl_compat_names) / sizeof(*uidl_compat_names))
		return NULL;
	return uidl_compat_names[s];
}

bool
uidl_compat_source_parse(const char *s, enum uidl_compat_source *s_r)
{
	for (size_t i = 0; i < sizeof(uidl_compat_names) /
	    sizeof(*uidl_compat_names); i++)
		if (ascii_caseeq(s, uidl_compat_names[i])) {
			*s_r = (enum uidl_compat_source)i;
			return true;
		}
	return false;
}

static int
uidl_compat_rec_cmp(const void *a, const void *b)
{
	const struct uidl_compat_rec *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	/* the same file twice: the later (higher) uid last, which wins */
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static void
uidl_compat_add(struct uidl_compat_list *l, uint32_t *cap,
    const struct uidl_compat_rec *r)
{
	if (l->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		l->recs = xreallocarray(l->recs, *cap, sizeof(*l->recs));
	}
	l->recs[l->n++] = *r;
}

/* Sorts and keeps one record per key (the last one, as Dovecot does for
 * a duplicate file entry). */
static void
uidl_compat_finish(struct uidl_compat_list *l)
{
	uint32_t i, j;

	if (l->n == 0)
		return;
	qsort(l->recs, l->n, sizeof(*l->recs), uidl_compat_rec_cmp);
	for (i = 1, j = 0; i < l->n; i++) {
		if (l->recs[i].key_len == l->recs[j].key_len &&
		    memcmp(l->recs[i].key, l->recs[j].key,
		    l->recs[j].key_len) == 0) {
			l->recs[j] = l->recs[i];
			continue;
		}
		l->recs[++j] = l->recs[i];
	}
	l->n = j + 1;
}

static bool
uidl_compat_u32(const char *s, size_t len, uint32_t *v)
{
	return len > 0 && parse_u32(s, len, v);
}

/* The base name of a file name: up to ':' (Dovecot's MAILDIR_INFO_SEP). */
static bool
uidl_compat_key(const char *name, size_t len, struct uidl_compat_rec *r)
{
	const char *colon = memchr(name, ':', len);
	size_t k = colon != NULL ? (size_t)(colon - name) : len;

	if (k == 0 || k > UINT16_MAX || memchr(name, '/', len) != NULL ||
	    memchr(name, '\0', len) != NULL)
		return false;
	r->key = name;
	r->key_len = (uint16_t)k;
	return true;
}

static bool
uidl_compat_dovecot_header(const char *p, size_t len,
    struct uidl_compat_list *l)
{
	size_t i = 0;

	if (len < 2 || p[1] != ' ' || (p[0] != '1' && p[0] != '3'))
		return false;
	l->version = (unsigned)(p[0] - '0');
	i = 2;
	if (l->version == 1) {
		const char *sp = memchr(p + i, ' ', len - i);

		if (sp == NULL ||
		    !uidl_compat_u32(p + i, (size_t)(sp - p) - i,
		    &l->uidvalidity) ||
		    !uidl_compat_u32(sp + 1, len - (size_t)(sp + 1 - p),
		    &l->next_uid))
			return false;
	} else {
		while (i < len) {
			size_t s = i;

			while (i < len && p[i] != ' ')
				i++;
			if (i - s >= 2 && p[s] == 'V' &&
			    !uidl_compat_u32(p + s + 1, i - s - 1,
			    &l->uidvalidity))
				return false;
			if (i - s >= 2 && p[s] == 'N' &&
			    !uidl_compat_u32(p + s + 1, i - s - 1,
			    &l->next_uid))
				return false;
			while (i < len && p[i] == ' ')
				i++;
		}
	}
	return l->uidvalidity != 0 && l->next_uid != 0;
}

static bool
uidl_compat_dovecot_line(const char *p, size_t len, uint32_t prev_uid,
    struct uidl_compat_rec *r, const struct uidl_compat_list *l)
{
	size_t i = 0, s;

	memset(r, 0, sizeof(*r));
	while (i < len && p[i] >= '0' && p[i] <= '9')
		i++;
	if (i == 0 || i >= len || p[i] != ' ' ||
	    !uidl_compat_u32(p, i, &r->uid) || r->uid == 0 ||
	    r->uid <= prev_uid || r->uid == UINT32_MAX)
		return false;
	while (i < len && p[i] == ' ')
		i++;
	if (l->version == 3) {
		while (i < len && p[i] != ':') {
			char k = p[i];

			s = ++i;
			while (i < len && p[i] != ' ')
				i++;
			if (k < 'A' || k > 'Z')
				return false;
			if (k == 'W') {
				r->has_vsize = parse_u64(p + s, i - s,
				    &r->vsize);
			} else if (k == 'P' && i - s <= UINT16_MAX) {
				r->has_pop3 = true;
				r->pop3 = p + s;
				r->pop3_len = (uint16_t)(i - s);
			} else if (k == 'G' && i - s > 0 &&
			    i - s <= UINT16_MAX) {
				r->guid = p + s;
				r->guid_len = (uint16_t)(i - s);
			}
			while (i < len && p[i] == ' ')
				i++;
		}
		if (i >= len)
			return false;
		i++;	/* ':' */
	}
	return i < len && uidl_compat_key(p + i, len - i, r);
}

bool
uidl_compat_dovecot_parse(const char *buf, size_t len,
    struct uidl_compat_list *l)
{
	const char *p = buf, *end = buf + len, *nl;
	uint32_t cap = 0, prev = 0;

	memset(l, 0, sizeof(*l));
	l->source = UIDL_COMPAT_DOVECOT;
	if ((nl = memchr(p, '\n', len)) == NULL ||
	    !uidl_compat_dovecot_header(p, (size_t)(nl - p), l)) {
		l->version = 0;
		return false;
	}
	for (p = nl + 1; p < end && (nl = memchr(p, '\n',
	    (size_t)(end - p))) != NULL; p = nl + 1) {
		struct uidl_compat_rec r;

		if (uidl_compat_dovecot_line(p, (size_t)(nl - p), prev, &r,
		    l)) {
			prev = r.uid;
			uidl_compat_add(l, &cap, &r);
		} else {
			l->bad_lines++;
		}
	}
	uidl_compat_finish(l);
	return true;
}

bool
uidl_compat_courier_parse(const char *buf, size_t len,
    struct uidl_compat_list *l)
{
	const char *p = buf, *end = buf + len, *nl, *sp;
	uint32_t cap = 0;

	memset(l, 0, sizeof(*l));
	l->source = UIDL_COMPAT_COURIER;
	/* "/<version> <next uid> <uidv>"; Courier takes 2 and 3 */
	if ((nl = memchr(p, '\n', len)) == NULL || nl - p < 4 || p[0] != '/' ||
	    (p[1] != '2' && p[1] != '3') || p[2] != ' ')
		return false;
	l->version = (unsigned)(p[1] - '0');
	p += 3;
	if ((sp = memchr(p, ' ', (size_t)(nl - p))) == NULL ||
	    !uidl_compat_u32(p, (size_t)(sp - p), &l->next_uid) ||
	    !uidl_compat_u32(sp + 1, (size_t)(nl - sp - 1), &l->uidvalidity)) {
		l->version = 0;
		return false;
	}
	for (p = nl + 1; p < end && (nl = memchr(p, '\n',
	    (size_t)(end - p))) != NULL; p = nl + 1) {
		/* "<name> <size> <uid>:<uidv>[:<utf8>]": the name is what
		 * comes before the last two spaces, as Courier splits it */
		const char *s2 = NULL, *s1 = NULL, *c1, *c2;
		struct uidl_compat_rec r;

		memset(&r, 0, sizeof(r));
		for (const char *q = nl; q > p; q--)
			if (q[-1] == ' ') {
				if (s2 == NULL) {
					s2 = q - 1;
				} else {
					s1 = q - 1;
					break;
				}
			}
		if (s1 == NULL || s1 == p ||
		    !parse_u64(s1 + 1, (size_t)(s2 - s1 - 1), &r.vsize) ||
		    (c1 = memchr(s2 + 1, ':', (size_t)(nl - s2 - 1))) == NULL ||
		    !uidl_compat_u32(s2 + 1, (size_t)(c1 - s2 - 1), &r.uid)) {
			l->bad_lines++;
			continue;
		}
		c2 = memchr(c1 + 1, ':', (size_t)(nl - c1 - 1));
		if (c2 == NULL)
			c2 = nl;
		if ((l->version == 3 && c2 == nl) ||
		    !uidl_compat_u32(c1 + 1, (size_t)(c2 - c1 - 1), &r.uidv) ||
		    !uidl_compat_key(p, (size_t)(s1 - p), &r)) {
			l->bad_lines++;
			continue;
		}
		r.has_vsize = true;
		uidl_compat_add(l, &cap, &r);
	}
	uidl_compat_finish(l);
	return true;
}

bool
uidl_compat_tpops_parse(const char *buf, size_t len,
    struct uidl_compat_list *l)
{
	const char *p = buf, *end = buf + len;
	uint32_t cap = 0, line = 0;

	memset(l, 0, sizeof(*l));
	l->source = UIDL_COMPAT_TPOPS;
	l->version = 1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl : end, *tab;
		struct uidl_compat_rec r;

		/* Ruby's chomp: one "\r\n", "\n" or "\r" */
		if (e > p && e[-1] == '\r')
			e--;
		memset(&r, 0, sizeof(r));
		tab = memchr(p, '\t', (size_t)(e - p));
		if (e > p) {
			size_t k = (size_t)((tab != NULL ? tab : e) - p);

			if (k == 0 || k > UINT16_MAX ||
			    memchr(p, ':', k) != NULL ||
			    memchr(p, '/', k) != NULL ||
			    memchr(p, '\0', k) != NULL ||
			    (size_t)(e - p) - k > UINT16_MAX) {
				l->bad_lines++;
			} else {
				r.key = p;
				r.key_len = (uint16_t)k;
				/* no tab: Ruby's nil, which unmaps the name */
				if (tab != NULL) {
					r.pop3 = tab + 1;
					r.pop3_len = (uint16_t)(e - tab - 1);
					r.has_pop3 = true;
				}
				/* the line number: the last one wins */
				r.uid = ++line;
				uidl_compat_add(l, &cap, &r);
			}
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	uidl_compat_finish(l);
	return true;
}

void
uidl_compat_list_free(struct uidl_compat_list *l)
{
	free(l->recs);
	memset(l, 0, sizeof(*l));
}

const struct uidl_compat_rec *
uidl_compat_find(const struct uidl_compat_list *l, const char *key,
    size_t len)
{
	if (l->n == 0 || len > UINT16_MAX)
		return NULL;
	{
		uint32_t lo = 0, hi = l->n;

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			const struct uidl_compat_rec *r = &l->recs[mid];
			size_t n = r->key_len < len ? r->key_len : len;
			int c = memcmp(r->key, key, n);

			if (c == 0 && r->key_len != len)
				c = r->key_len < len ? -1 : 1;
			if (c == 0)
				return r;
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return NULL;
}

/* --- pop3_uidl_format ---------------------------------------------- */

struct uidl_compat_buf {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void
uidl_compat_put(struct uidl_compat_buf *b, const char *s, size_t n)
{
	if (n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
uidl_compat_u32_str(uint32_t v, char *out, size_t outsz)
{
	(void)snprintf(out, outsz, "%u", (unsigned)v);
}

/* One modifier applied to val[0..*len) in place (val has cap bytes). */
static bool
uidl_compat_modify(char m, char *val, size_t *len, size_t cap)
{
	size_t i, n = *len;

	switch (m) {
	case 'L':
	case 'U':
		for (i = 0; i < n; i++) {
			if (m == 'L' && val[i] >= 'A' && val[i] <= 'Z')
				val[i] = (char)(val[i] - 'A' + 'a');
			if (m == 'U' && val[i] >= 'a' && val[i] <= 'z')
				val[i] = (char)(val[i] - 'a' + 'A');
		}
		return true;
	case 'X': {
		/* Dovecot: the decimal value in lower-case hex (0 if it is
		 * no number) */
		uint64_t v = 0;
		int w;

		if (!parse_u64(val, n, &v))
			v = 0;
		w = snprintf(val, cap, "%llx", (unsigned long long)v);
		if (w < 0 || (size_t)w >= cap)
			return false;
		*len = (size_t)w;
		return true;
	}
	case 'R':
		for (i = 0; i < n / 2; i++) {
			char t = val[i];

			val[i] = val[n - 1 - i];
			val[n - 1 - i] = t;
		}
		return true;
	case 'T':
		while (*len > 0 && (val[*len - 1] == ' ' ||
		    val[*len - 1] == '\t' || val[*len - 1] == '\n' ||
		    val[*len - 1] == '\r'))
			(*len)--;
		return true;
	case 'M': {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;

		if (cap < 33 || EVP_Digest(val, n, md, &mdlen, EVP_md5(),
		    NULL) != 1 || mdlen != 16)
			return false;
		hex_encode(md, 16, val);
		*len = 32;
		return true;
	}
	default:
		return false;
	}
}

static bool
uidl_compat_is_modifier(char c)
{
	return c == 'L' || c == 'U' || c == 'X' || c == 'R' || c == 'M' ||
	    c == 'T';
}

/* The value of variable name[0..n) (one letter, or a long name). */
static bool
uidl_compat_var(const char *name, size_t n, const struct uidl_compat_vars *v,
    char *val, size_t cap, size_t *len_r)
{
	const char *s = NULL;
	size_t sl = 0;
	char num[16];

#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
	if (IS("v") || IS("uidvalidity")) {
		uidl_compat_u32_str(v->uidvalidity, num, sizeof(num));
		s = num;
		sl = strlen(num);
	} else if (IS("u") || IS("uid")) {
		uidl_compat_u32_str(v->uid, num, sizeof(num));
		s = num;
		sl = strlen(num);
	} else if (IS("f") || IS("filename")) {
		s = v->filename;
		sl = v->filename_len;
	} else if (IS("g") || IS("guid")) {
		s = v->guid != NULL ? v->guid : v->filename;
		sl = v->guid != NULL ? v->guid_len : v->filename_len;
	} else if (IS("m") || IS("md5")) {
		s = v->md5;
		sl = s != NULL ? strlen(s) : 0;
	} else if (IS("%")) {
		s = "%";
		sl = 1;
	}
#undef IS
	/* Dovecot fails the UIDL command when %m/%f/%g have no value */
	if (s == NULL || sl == 0 || sl >= cap)
		return false;
	memcpy(val, s, sl);
	*len_r = sl;
	return true;
}

size_t
uidl_compat_format(const char *fmt, const struct uidl_compat_vars *v,
    char *out, size_t outsz)
{
	struct uidl_compat_buf b = { out, 0, outsz > 0 ? outsz - 1 : 0,
	    false };

	if (outsz == 0)
		return 0;
	for (const char *p = fmt; *p != '\0'; p++) {
		char mods[10], val[UIDL_COMPAT_MAX + 40];
		size_t nmods = 0, vlen = 0, name_len;
		const char *name;
		int width = 0, offset = 0, sign = 1;
		bool zero = false;

		if (*p != '%') {
			uidl_compat_put(&b, p, 1);
			continue;
		}
		p++;
		if (*p == '-') {
			sign = -1;
			p++;
		}
		if (*p == '0') {
			zero = true;
			p++;
		}
		while (*p >= '0' && *p <= '9' && width < 1000)
			width = width * 10 + (*p++ - '0');
		if (*p == '.') {
			offset = sign * width;
			sign = 1;
			width = 0;
			zero = false;
			p++;
			if (*p == '0') {
				zero = true;
				p++;
			}
			if (*p == '-') {
				sign = -1;
				p++;
			}
			while (*p >= '0' && *p <= '9' && width < 1000)
				width = width * 10 + (*p++ - '0');
			width *= sign;
		}
		while (nmods < sizeof(mods) && uidl_compat_is_modifier(*p))
			mods[nmods++] = *p++;
		if (*p == '\0')
			break;
		if (*p == '{') {
			const char *close = strchr(p, '}');

			if (close == NULL)
				return 0;
			name = p + 1;
			name_len = (size_t)(close - p - 1);
			p = close;
		} else {
			name = p;
			name_len = 1;
		}
		if (!uidl_compat_var(name, name_len, v, val, sizeof(val),
		    &vlen))
			return 0;
		for (size_t i = 0; i < nmods; i++)
			if (!uidl_compat_modify(mods[i], val, &vlen,
			    sizeof(val)))
				return 0;
		{
			const char *s = val;
			size_t sl = vlen;

			if (offset < 0) {
				if (sl > (size_t)-offset) {
					s += sl - (size_t)-offset;
					sl = (size_t)-offset;
				}
			} else {
				size_t o = (size_t)offset < sl ?
				    (size_t)offset : sl;

				s += o;
				sl -= o;
			}
			if (width == 0) {
				uidl_compat_put(&b, s, sl);
			} else if (!zero) {
				size_t w = width < 0 ? (sl > (size_t)-width ?
				    sl - (size_t)-width : 0) : (size_t)width;

				uidl_compat_put(&b, s, sl < w ? sl : w);
			} else {
				for (size_t i = sl; i < (size_t)width; i++)
					uidl_compat_put(&b, "0", 1);
				uidl_compat_put(&b, s, sl);
			}
		}
	}
	if (b.overflow || b.len == 0)
		return 0;
	out[b.len] = '\0';
	return b.len;
}

bool
uidl_compat_format_valid(const char *fmt, const char **why_r)
{
	static const struct uidl_compat_vars probe = {
		1234567890u, 42u, "1700000000.M1P2.host", 20, NULL, 0,
		"0123456789abcdef0123456789abcdef",
	};
	char out[UIDL_COMPAT_MAX];

	if (*fmt == '\0') {
		*why_r = "must not be empty";
		return false;
	}
	if (uidl_compat_format(fmt, &probe, out, sizeof(out)) == 0) {
		*why_r = "is not a pop3_uidl_format posuto can expand "
		    "(variables %v %u %m %f %g, modifiers L U X R M T)";
		return false;
	}
	return true;
}

size_t
uidl_compat_courier_uidl(const struct uidl_compat_rec *r, char *out,
    size_t outsz)
{
	int n;

	if (r->uid == 0)
		return 0;	/* Courier's "version 0": the file name */
	n = r->uidv != 0 ?
	    snprintf(out, outsz, "UID%u-%u", (unsigned)r->uid,
	    (unsigned)r->uidv) :
	    snprintf(out, outsz, "UID%u", (unsigned)r->uid);

	return n > 0 && (size_t)n < outsz ? (size_t)n : 0;
}
