/*
 * http_mime.c - messages for the mailbox viewer, through GMime 3
 * (http_mime.h).
 *
 * GMime rather than a decoder of our own: MIME structure, transfer
 * encodings, RFC 2047/2231 and charset conversion (iconv) are where
 * hand-written mail code goes wrong, and GMime is what mail clients on
 * this platform use.  Two things it leaves to us: Japanese headers
 * written as raw ISO-2022-JP (no encoded-word: 7-bit escapes GMime keeps
 * as they are), and raw 8-bit headers, which it converts with the
 * fallback charsets set here (UTF-8, then CP932 — Shift_JIS as Windows
 * writes it — then EUC-JP, then Latin-1, which takes anything).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "http/http_mime.h"
#include "lib/plugin.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

static GMimeParserOptions *mime_opts;

static void
pm_init(void)
{
	static const char *fallback[] = { "UTF-8", "CP932", "EUC-JP",
	    "ISO-8859-1", NULL };

	if (mime_opts != NULL)
		return;
	g_mime_init();
	mime_opts = g_mime_parser_options_new();
	g_mime_parser_options_set_fallback_charsets(mime_opts, fallback);
	g_mime_parser_options_set_rfc2047_compliance_mode(mime_opts,
	    GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_address_compliance_mode(mime_opts,
	    GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(mime_opts,
	    GMIME_RFC_COMPLIANCE_LOOSE);
}

static void
pm_shutdown(void)
{
	if (mime_opts == NULL)
		return;
	g_mime_parser_options_free(mime_opts);
	mime_opts = NULL;
	g_mime_shutdown();
}

/*
 * A decoded header value as clean UTF-8 on one line: raw ISO-2022-JP
 * converted, invalid bytes replaced, controls (CR, LF, TAB, ESC) made
 * spaces.  g_free() it.
 */
static char *
mime_clean(const char *s)
{
	char *conv = NULL, *valid;

	if (s == NULL)
		return g_strdup("");
	if (strstr(s, "\x1b$B") != NULL || strstr(s, "\x1b$@") != NULL ||
	    strstr(s, "\x1b(J") != NULL)
		conv = g_convert(s, -1, "UTF-8", "ISO-2022-JP", NULL, NULL,
		    NULL);
	valid = g_utf8_make_valid(conv != NULL ? conv : s, -1);
	g_free(conv);
	for (char *p = valid; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return valid;
}

static json_t *
mime_json_str(const char *s)
{
	char *c = mime_clean(s);
	json_t *v = json_string(c);

	g_free(c);
	return v != NULL ? v : json_string("");
}

/* Multipart and message/rfc822 parts GMime would recurse into. */
static bool
mime_nesting_ok(const char *data, size_t len)
{
	unsigned n = 0;

	for (size_t i = 0; i + 10 <= len; i++) {
		if ((data[i] == 'm' || data[i] == 'M') &&
		    (g_ascii_strncasecmp(data + i, "multipart/", 10) == 0 ||
		    (i + 15 <= len &&
		    g_ascii_strncasecmp(data + i, "message/rfc822", 14) == 0)) &&
		    ++n > HTTP_MIME_MAX_NESTING * 4)
			return false;
	}
	return true;
}

static GMimeMessage *
mime_parse(const char *data, size_t len)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m;

	g_object_unref(st);
	m = g_mime_parser_construct_message(p, mime_opts);
	g_object_unref(p);
	return m;
}

static void
pm_summary(const char *data, size_t len, struct http_mime_summary *out)
{
	GMimeMessage *m;
	InternetAddressList *from;
	GDateTime *d;
	char *s;

	memset(out, 0, sizeof(*out));
	m = mime_parse(data, len);
	if (m == NULL)
		return;
	s = mime_clean(g_mime_message_get_subject(m));
	http_mime_copy_utf8(out->subject, sizeof(out->subject), s);
	g_free(s);
	from = g_mime_message_get_from(m);
	if (from != NULL && internet_address_list_length(from) > 0) {
		char *t = internet_address_list_to_string(from, NULL, FALSE);

		s = mime_clean(t);
		http_mime_copy_utf8(out->from, sizeof(out->from), s);
		g_free(s);
		g_free(t);
	}
	d = g_mime_message_get_date(m);
	if (d != NULL)
		out->date = (int64_t)g_date_time_to_unix(d);
	g_object_unref(m);
}

/* ---- parts */

struct mime_parts {
	GMimeObject *leaf[HTTP_MIME_MAX_PARTS];
	unsigned n;
	int text, html;			/* leaf index of the bodies, or -1 */
};

static void
mime_collect(GMimeObject *parent, GMimeObject *part, gpointer arg)
{
	struct mime_parts *p = arg;

	(void)parent;
	if ((GMIME_IS_PART(part) || GMIME_IS_MESSAGE_PART(part)) &&
	    p->n < HTTP_MIME_MAX_PARTS)
		p->leaf[p->n++] = part;
}

static void
mime_parts_of(GMimeMessage *m, struct mime_parts *p)
{
	GMimeObject *top = g_mime_message_get_mime_part(m);

	memset(p, 0, sizeof(*p));
	p->text = p->html = -1;
	if (top == NULL)
		return;
	if (GMIME_IS_MULTIPART(top))
		g_mime_message_foreach(m, mime_collect, p);
	else
		mime_collect(NULL, top, p);
	for (unsigned i = 0; i < p->n; i++) {
		GMimeObject *o = p->leaf[i];
		GMimeContentType *ct = g_mime_object_get_content_type(o);

		if (!GMIME_IS_PART(o) || g_mime_part_is_attachment(GMIME_PART(o)))
			continue;
		if (p->text < 0 && g_mime_content_type_is_type(ct, "text",
		    "plain"))
			p->text = (int)i;
		else if (p->html < 0 && g_mime_content_type_is_type(ct, "text",
		    "html"))
			p->html = (int)i;
	}
}

/* The decoded content of a leaf; g_byte_array_free(ba, TRUE) it. */
static GByteArray *
mime_leaf_bytes(GMimeObject *o)
{
	GMimeStream *out = g_mime_stream_mem_new();
	GByteArray *ba;

	if (GMIME_IS_PART(o)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));

		if (w != NULL)
			(void)g_mime_data_wrapper_write_to_stream(w, out);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));

		if (inner != NULL)
			(void)g_mime_object_write_to_stream(GMIME_OBJECT(inner),
			    NULL, out);
	}
	/* The stream would free the array with itself: take it over. */
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(out), FALSE);
	g_object_unref(out);
	return ba;
}

/* Text of a text part in UTF-8 (g_free()). */
static char *
mime_leaf_text(GMimeObject *o)
{
	char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
	char *v = g_utf8_make_valid(t != NULL ? t : "", -1);

	g_free(t);
	return v;
}

static char *
mime_type_of(GMimeObject *o)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	char *t = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;

	return t != NULL ? t : g_strdup("application/octet-stream");
}

static void
pm_safe_filename(char *buf, size_t bufsz, const char *name,
    const char *fallback)
{
	const char *base = name != NULL ? name : "";
	char *clean, *p;
	size_t k = 0;

	for (const char *q = base; *q != '\0'; q++)
		if (*q == '/' || *q == '\\')
			base = q + 1;
	clean = mime_clean(base);
	for (p = clean; *p == '.' || *p == ' '; p++)
		;
	for (; *p != '\0' && k + 1 < bufsz; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' ||
		    c == ';' || c == '%' || c == '*')
			c = '_';
		buf[k++] = (char)c;
	}
	buf[k] = '\0';
	g_free(clean);
	http_mime_copy_utf8(buf, bufsz > 100 ? 100 : bufsz, buf);
	if (buf[0] == '\0')
		(void)str_copy(buf, bufsz, fallback);
}

static void
mime_addr_field(json_t *o, const char *key, InternetAddressList *l)
{
	char *t = l != NULL && internet_address_list_length(l) > 0 ?
	    internet_address_list_to_string(l, NULL, FALSE) : NULL;

	json_object_set_new(o, key, t != NULL ? mime_json_str(t) :
	    json_null());
	g_free(t);
}

static json_t *
pm_message_json(const char *data, size_t len)
{
	json_t *o, *hdrs, *atts;
	GMimeMessage *m;
	GMimeHeaderList *hl;
	struct mime_parts *p;
	GDateTime *d;
	int n;

	if (!mime_nesting_ok(data, len))
		return NULL;
	m = mime_parse(data, len);
	if (m == NULL)
		return NULL;
	o = json_object();
	hdrs = json_array();
	hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
	for (int i = 0; i < n && i < 1000; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);

		json_array_append_new(hdrs, json_pack("[o, o]",
		    mime_json_str(g_mime_header_get_name(h)),
		    mime_json_str(g_mime_header_get_value(h))));
	}
	json_object_set_new(o, "headers", hdrs);
	mime_addr_field(o, "from", g_mime_message_get_from(m));
	mime_addr_field(o, "to", g_mime_message_get_to(m));
	mime_addr_field(o, "cc", g_mime_message_get_cc(m));
	json_object_set_new(o, "subject",
	    mime_json_str(g_mime_message_get_subject(m)));
	d = g_mime_message_get_date(m);
	json_object_set_new(o, "date", d != NULL ?
	    json_integer((json_int_t)g_date_time_to_unix(d)) : json_null());

	p = xcalloc(1, sizeof(*p));
	mime_parts_of(m, p);
	if (p->text >= 0) {
		char *t = mime_leaf_text(p->leaf[p->text]);

		json_object_set_new(o, "text", json_string(t));
		g_free(t);
	} else {
		json_object_set_new(o, "text", json_null());
	}
	json_object_set_new(o, "html", json_boolean(p->html >= 0));
	atts = json_array();
	for (unsigned i = 0; i < p->n; i++) {
		GMimeObject *leaf = p->leaf[i];
		GByteArray *ba;
		char fn[256], fb[32], *type;
		const char *cid;

		if ((int)i == p->text || (int)i == p->html)
			continue;
		ba = mime_leaf_bytes(leaf);
		type = mime_type_of(leaf);
		snprintf(fb, sizeof(fb), "part-%u.%s", i,
		    GMIME_IS_MESSAGE_PART(leaf) ? "eml" : "bin");
		pm_safe_filename(fn, sizeof(fn), GMIME_IS_PART(leaf) ?
		    g_mime_part_get_filename(GMIME_PART(leaf)) : NULL, fb);
		cid = g_mime_object_get_content_id(leaf);
		json_array_append_new(atts, json_pack("{s:i, s:o, s:o, s:I, s:o}",
		    "n", (int)i, "filename", mime_json_str(fn),
		    "type", mime_json_str(type), "size", (json_int_t)ba->len,
		    "content_id", cid != NULL ? mime_json_str(cid) :
		    json_null()));
		g_free(type);
		g_byte_array_free(ba, TRUE);
	}
	json_object_set_new(o, "attachments", atts);
	free(p);
	g_object_unref(m);
	return o;
}

static bool
pm_part(const char *data, size_t len, unsigned n, char **out_r,
    size_t *outlen_r, char *filename, size_t fnsz, char *type, size_t typesz)
{
	struct mime_parts *p;
	GMimeMessage *m;
	GByteArray *ba;
	char fb[32], *t;
	bool ok = false;

	*out_r = NULL;
	if (!mime_nesting_ok(data, len) || (m = mime_parse(data, len)) == NULL)
		return false;
	p = xcalloc(1, sizeof(*p));
	mime_parts_of(m, p);
	if (n < p->n) {
		GMimeObject *leaf = p->leaf[n];

		ba = mime_leaf_bytes(leaf);
		*out_r = xmalloc(ba->len + 1);
		memcpy(*out_r, ba->data, ba->len);
		*outlen_r = ba->len;
		g_byte_array_free(ba, TRUE);
		snprintf(fb, sizeof(fb), "part-%u.%s", n,
		    GMIME_IS_MESSAGE_PART(leaf) ? "eml" : "bin");
		pm_safe_filename(filename, fnsz, GMIME_IS_PART(leaf) ?
		    g_mime_part_get_filename(GMIME_PART(leaf)) : NULL, fb);
		t = mime_type_of(leaf);
		http_mime_copy_utf8(type, typesz, t);
		g_free(t);
		ok = true;
	}
	free(p);
	g_object_unref(m);
	return ok;
}

/* Data URIs of inline images: at most this much in one page. */
#define MIME_INLINE_MAX	(8u << 20)

static GMimeObject *
mime_find_cid(struct mime_parts *p, const char *id, size_t idlen)
{
	for (unsigned i = 0; i < p->n; i++) {
		const char *cid = g_mime_object_get_content_id(p->leaf[i]);

		if (cid != NULL && strlen(cid) == idlen &&
		    memcmp(cid, id, idlen) == 0 && GMIME_IS_PART(p->leaf[i]))
			return p->leaf[i];
	}
	return NULL;
}

/* A MIME type that is safe in a data: URI: type/subtype of tokens. */
static bool
mime_type_plain(const char *t)
{
	for (const char *q = t; *q != '\0'; q++)
		if (!isalnum((unsigned char)*q) && strchr("/+-.", *q) == NULL)
			return false;
	return strncmp(t, "image/", 6) == 0;
}

static char *
pm_html(const char *data, size_t len, size_t *outlen_r)
{
	struct mime_parts *p;
	GMimeMessage *m;
	GString *out;
	char *html, *q;
	size_t inlined = 0;

	if (!mime_nesting_ok(data, len) || (m = mime_parse(data, len)) == NULL)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	mime_parts_of(m, p);
	if (p->html < 0) {
		free(p);
		g_object_unref(m);
		return NULL;
	}
	html = mime_leaf_text(p->leaf[p->html]);
	out = g_string_sized_new(strlen(html) + 64);
	for (q = html; *q != '\0';) {
		char *hit = strstr(q, "cid:");
		size_t idlen;
		GMimeObject *img;

		if (hit == NULL) {
			g_string_append(out, q);
			break;
		}
		g_string_append_len(out, q, hit - q);
		hit += 4;
		idlen = strcspn(hit, "\"' >)\t\r\n");
		img = mime_find_cid(p, hit, idlen);
		if (img != NULL) {
			GByteArray *ba = mime_leaf_bytes(img);
			char *t = mime_type_of(img);

			if (mime_type_plain(t) &&
			    inlined + ba->len <= MIME_INLINE_MAX) {
				gchar *b64 = g_base64_encode(ba->data, ba->len);

				inlined += ba->len;
				g_string_append_printf(out, "data:%s;base64,%s",
				    t, b64);
				g_free(b64);
			} else {
				img = NULL;
			}
			g_free(t);
			g_byte_array_free(ba, TRUE);
		}
		/* An unresolved reference loads nothing (no request, no
		 * CSP report for a name that was never a URL). */
		if (img == NULL)
			g_string_append(out, "data:,");
		q = hit + idlen;
	}
	g_free(html);
	free(p);
	g_object_unref(m);
	*outlen_r = out->len;
	q = xmalloc(out->len + 1);
	memcpy(q, out->str, out->len + 1);
	g_string_free(out, TRUE);
	return q;
}

/* posuto_parse.so (lib/plugin.h): what http_mime_load.c calls. */
POSUTO_PLUGIN_ABI;

const struct http_mime_ops http_mime_ops = {
	.init = pm_init,
	.shutdown = pm_shutdown,
	.summary = pm_summary,
	.message_json = pm_message_json,
	.part = pm_part,
	.html = pm_html,
	.safe_filename = pm_safe_filename,
};
