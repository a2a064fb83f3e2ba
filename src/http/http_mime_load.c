/*
 * http_mime_load.c - the mailbox viewer's MIME calls (http_mime.h),
 * forwarded to posuto_parse.so, which is loaded on first use; without
 * it a message's summary is empty and it is not parsed (the raw message
 * is still served), and one warning says why.
 */
#include <stdbool.h>
#include <string.h>

#include "http/http_mime.h"
#include "lib/log.h"
#include "lib/plugin.h"
#include "lib/strutil.h"

static const struct http_mime_ops *mime_ops;
static bool mime_tried;

/* Admin thread only, like every caller. */
static const struct http_mime_ops *
mime(void)
{
	char err[512];

	if (!mime_tried) {
		mime_tried = true;
		mime_ops = plugin_symbol("posuto_parse", "http_mime_ops", err,
		    sizeof(err));
		if (mime_ops == NULL)
			log_warnx("admin: messages are shown raw only: %s", err);
	}
	return mime_ops;
}

void
http_mime_init(void)
{
	if (mime() != NULL)
		mime_ops->init();
}

void
http_mime_shutdown(void)
{
	if (mime_ops != NULL)
		mime_ops->shutdown();
}

void
http_mime_summary(const char *data, size_t len, struct http_mime_summary *out)
{
	if (mime() != NULL) {
		mime_ops->summary(data, len, out);
		return;
	}
	memset(out, 0, sizeof(*out));
}

json_t *
http_mime_message_json(const char *data, size_t len)
{
	return mime() != NULL ? mime_ops->message_json(data, len) : NULL;
}

bool
http_mime_part(const char *data, size_t len, unsigned n, char **out_r,
    size_t *outlen_r, char *filename, size_t fnsz, char *type, size_t typesz)
{
	return mime() != NULL && mime_ops->part(data, len, n, out_r, outlen_r,
	    filename, fnsz, type, typesz);
}

char *
http_mime_html(const char *data, size_t len, size_t *outlen_r)
{
	return mime() != NULL ? mime_ops->html(data, len, outlen_r) : NULL;
}

void
http_mime_safe_filename(char *buf, size_t bufsz, const char *name,
    const char *fallback)
{
	if (mime() != NULL)
		mime_ops->safe_filename(buf, bufsz, name, fallback);
	else
		(void)str_copy(buf, bufsz, fallback);
}

void
http_mime_copy_utf8(char *buf, size_t bufsz, const char *s)
{
	size_t n = strlen(s);

	if (bufsz == 0)
		return;
	if (n >= bufsz) {
		n = bufsz - 1;
		/* back off to the start of a character */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
}
