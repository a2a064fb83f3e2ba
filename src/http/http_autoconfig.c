/*
 * http_autoconfig.c - client setup documents (contract in
 * http_autoconfig.h).
 *
 * The three documents are small fixed trees of elements with a few
 * values in them, so they are printed, with every value escaped, rather
 * than built as a DOM: nothing here depends on parsing.  The one document
 * posuto reads (Outlook's request) goes through libxml2, in
 * posuto_parse.so (http_xml.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <strings.h>

#include "http/http_autoconfig.h"
#include "http/http_int.h"
#include "lib/log.h"
#include "lib/plugin.h"

/* Longest address the documents carry (RFC 5321's path limit). */
#define AUTOCONFIG_EMAIL_MAX	254
/* An autodiscover request is a few hundred bytes. */
#define AUTOCONFIG_REQUEST_MAX	(16 * 1024)

struct doc {
	FILE *f;
	char *text;
	size_t len;
};

static void
doc_open(struct doc *d)
{
	d->text = NULL;
	d->len = 0;
	if ((d->f = open_memstream(&d->text, &d->len)) == NULL)
		fatal("out of memory");
}

static char *
doc_close(struct doc *d, size_t *len_r)
{
	if (fclose(d->f) != 0 || d->text == NULL)
		fatal("out of memory");
	*len_r = d->len;
	return d->text;
}

/* s as XML character data or attribute value. */
static void
doc_text(struct doc *d, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<': fputs("&lt;", d->f); break;
		case '>': fputs("&gt;", d->f); break;
		case '&': fputs("&amp;", d->f); break;
		case '"': fputs("&quot;", d->f); break;
		case '\'': fputs("&apos;", d->f); break;
		default:
			/* XML 1.0 has no way to write other controls. */
			if ((unsigned char)*s >= 0x20 || *s == '\t')
				fputc(*s, d->f);
		}
	}
}

/* <name>value</name> at the given indent. */
static void
doc_elem(struct doc *d, int indent, const char *name, const char *value)
{
	fprintf(d->f, "%*s<%s>", indent, "", name);
	doc_text(d, value);
	fprintf(d->f, "</%s>\n", name);
}

static void
doc_elem_uint(struct doc *d, int indent, const char *name, unsigned v)
{
	fprintf(d->f, "%*s<%s>%u</%s>\n", indent, "", name, v, name);
}

bool
autoconfig_email_ok(const char *email)
{
	const char *at = strchr(email, '@');
	size_t n = strlen(email);

	if (n == 0 || n > AUTOCONFIG_EMAIL_MAX || at == NULL || at == email ||
	    at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return false;
	for (const char *p = email; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || strchr("<>&\"'`\\()[],;:", c))
			return false;
	}
	return true;
}

/* The login name for email, into buf. */
static const char *
login_name(const struct autoconfig_info *ai, char *buf, size_t bufsz)
{
	const char *at;

	if (ai->email == NULL)
		return NULL;
	at = strchr(ai->email, '@');
	if (!ai->login_local_part || at == NULL)
		return ai->email;
	(void)snprintf(buf, bufsz, "%.*s", (int)(at - ai->email), ai->email);
	return buf;
}

static const char *
smtp_host(const struct autoconfig_info *ai)
{
	return ai->smtp_hostname[0] != '\0' ? ai->smtp_hostname : ai->hostname;
}

/* ---- Thunderbird: config-v1.1.xml ---- */

static const char *const tb_socket[] = {
	[AUTOCONFIG_PLAIN] = "plain",
	[AUTOCONFIG_STARTTLS] = "STARTTLS",
	[AUTOCONFIG_TLS] = "SSL",
};

char *
autoconfig_thunderbird(const struct autoconfig_info *ai, size_t *len_r)
{
	/* Thunderbird fills these in from what the user typed. */
	const char *user = ai->login_local_part ? "%EMAILLOCALPART%" :
	    "%EMAILADDRESS%";
	struct doc d;

	doc_open(&d);
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<clientConfig version=\"1.1\">\n  <emailProvider id=\"", d.f);
	doc_text(&d, ai->domain);
	fputs("\">\n", d.f);
	doc_elem(&d, 4, "domain", ai->domain);
	doc_elem(&d, 4, "displayName", ai->display_name);
	doc_elem(&d, 4, "displayShortName", ai->display_name);
	for (size_t i = 0; i < ai->n_pop3; i++) {
		fputs("    <incomingServer type=\"pop3\">\n", d.f);
		doc_elem(&d, 6, "hostname", ai->hostname);
		doc_elem_uint(&d, 6, "port", ai->pop3[i].port);
		doc_elem(&d, 6, "socketType", tb_socket[ai->pop3[i].security]);
		doc_elem(&d, 6, "authentication", "password-cleartext");
		doc_elem(&d, 6, "username", user);
		fputs("      <pop3>\n"
		    "        <leaveMessagesOnServer>false</leaveMessagesOnServer>\n"
		    "        <downloadOnBiff>true</downloadOnBiff>\n"
		    "      </pop3>\n"
		    "    </incomingServer>\n", d.f);
	}
	if (ai->smtp.port != 0) {
		fputs("    <outgoingServer type=\"smtp\">\n", d.f);
		doc_elem(&d, 6, "hostname", smtp_host(ai));
		doc_elem_uint(&d, 6, "port", ai->smtp.port);
		doc_elem(&d, 6, "socketType", tb_socket[ai->smtp.security]);
		if (ai->smtp_auth) {
			doc_elem(&d, 6, "authentication", "password-cleartext");
			doc_elem(&d, 6, "username", user);
		} else {
			doc_elem(&d, 6, "authentication", "none");
		}
		fputs("    </outgoingServer>\n", d.f);
	}
	fputs("  </emailProvider>\n</clientConfig>\n", d.f);
	return doc_close(&d, len_r);
}

/* ---- Outlook: POX autodiscover ---- */

static void
ad_protocol(struct doc *d, const char *type, const char *host,
    const struct autoconfig_endpoint *ep, const char *login, bool auth)
{
	static const char *const encryption[] = {
		[AUTOCONFIG_PLAIN] = "None",
		[AUTOCONFIG_STARTTLS] = "TLS",
		[AUTOCONFIG_TLS] = "SSL",
	};

	fputs("      <Protocol>\n", d->f);
	doc_elem(d, 8, "Type", type);
	doc_elem(d, 8, "Server", host);
	doc_elem_uint(d, 8, "Port", ep->port);
	if (login != NULL && auth)
		doc_elem(d, 8, "LoginName", login);
	doc_elem(d, 8, "DomainRequired", "off");
	doc_elem(d, 8, "SPA", "off");
	/* SSL for clients that predate Encryption, which overrides it. */
	doc_elem(d, 8, "SSL", ep->security == AUTOCONFIG_PLAIN ? "off" : "on");
	doc_elem(d, 8, "Encryption", encryption[ep->security]);
	doc_elem(d, 8, "AuthRequired", auth ? "on" : "off");
	if (strcmp(type, "SMTP") == 0 && auth)
		doc_elem(d, 8, "UsePOPAuth", "on");
	fputs("      </Protocol>\n", d->f);
}

char *
autoconfig_autodiscover(const struct autoconfig_info *ai, size_t *len_r)
{
	char buf[AUTOCONFIG_EMAIL_MAX + 1];
	const char *login = login_name(ai, buf, sizeof(buf));
	struct doc d;

	doc_open(&d);
	fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
	    "autodiscover/responseschema/2006\">\n"
	    "  <Response xmlns=\"http://schemas.microsoft.com/exchange/"
	    "autodiscover/outlook/responseschema/2006a\">\n"
	    "    <Account>\n"
	    "      <AccountType>email</AccountType>\n"
	    "      <Action>settings</Action>\n", d.f);
	/* Outlook takes the first of a type: the best one. */
	if (ai->n_pop3 > 0)
		ad_protocol(&d, "POP3", ai->hostname, &ai->pop3[0], login,
		    true);
	if (ai->smtp.port != 0)
		ad_protocol(&d, "SMTP", smtp_host(ai), &ai->smtp, login,
		    ai->smtp_auth);
	fputs("    </Account>\n  </Response>\n</Autodiscover>\n", d.f);
	return doc_close(&d, len_r);
}

/* ---- Apple: a configuration profile (.mobileconfig) ---- */

static void
pl_key_string(struct doc *d, int indent, const char *key, const char *value)
{
	fprintf(d->f, "%*s<key>%s</key>\n%*s<string>", indent, "", key,
	    indent, "");
	doc_text(d, value);
	fputs("</string>\n", d->f);
}

static void
pl_key_int(struct doc *d, int indent, const char *key, unsigned v)
{
	fprintf(d->f, "%*s<key>%s</key>\n%*s<integer>%u</integer>\n",
	    indent, "", key, indent, "", v);
}

static void
pl_key_bool(struct doc *d, int indent, const char *key, bool v)
{
	fprintf(d->f, "%*s<key>%s</key>\n%*s<%s/>\n", indent, "", key,
	    indent, "", v ? "true" : "false");
}

/*
 * A UUID that is the same for the same server and address, so that
 * installing the profile again replaces the old one rather than adding
 * a second account; shaped as RFC 9562 version 8 (custom).
 */
static void
pl_uuid(const struct autoconfig_info *ai, const char *what, char out[37])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, what, strlen(what) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, ai->hostname, strlen(ai->hostname) + 1) !=
	    1 || (ai->email != NULL && EVP_DigestUpdate(ctx, ai->email,
	    strlen(ai->email)) != 1) ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16)
		fatal("SHA-256 failed");
	EVP_MD_CTX_free(ctx);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x80);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	(void)snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
	    "%02X%02X%02X%02X%02X%02X", md[0], md[1], md[2], md[3], md[4],
	    md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12], md[13],
	    md[14], md[15]);
}

char *
autoconfig_mobileconfig(const struct autoconfig_info *ai, size_t *len_r)
{
	char buf[AUTOCONFIG_EMAIL_MAX + 1], ident[512], uuid[37];
	const char *login = login_name(ai, buf, sizeof(buf));
	const struct autoconfig_endpoint *in = &ai->pop3[0];
	struct doc d;

	(void)snprintf(ident, sizeof(ident), "posuto.%s", ai->hostname);
	doc_open(&d);
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
	    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
	    "<plist version=\"1.0\">\n<dict>\n"
	    "  <key>PayloadContent</key>\n  <array>\n    <dict>\n", d.f);
	pl_key_string(&d, 6, "EmailAccountDescription", ai->display_name);
	pl_key_string(&d, 6, "EmailAccountType", "EmailTypePOP");
	/* Without them the device asks the user. */
	if (ai->email != NULL)
		pl_key_string(&d, 6, "EmailAddress", ai->email);
	pl_key_string(&d, 6, "IncomingMailServerAuthentication",
	    "EmailAuthPassword");
	pl_key_string(&d, 6, "IncomingMailServerHostName", ai->hostname);
	if (ai->n_pop3 > 0) {
		pl_key_int(&d, 6, "IncomingMailServerPortNumber", in->port);
		pl_key_bool(&d, 6, "IncomingMailServerUseSSL",
		    in->security == AUTOCONFIG_TLS);
	}
	if (login != NULL)
		pl_key_string(&d, 6, "IncomingMailServerUsername", login);
	if (ai->smtp.port != 0) {
		pl_key_string(&d, 6, "OutgoingMailServerAuthentication",
		    ai->smtp_auth ? "EmailAuthPassword" : "EmailAuthNone");
		pl_key_string(&d, 6, "OutgoingMailServerHostName",
		    smtp_host(ai));
		pl_key_int(&d, 6, "OutgoingMailServerPortNumber",
		    ai->smtp.port);
		pl_key_bool(&d, 6, "OutgoingMailServerUseSSL",
		    ai->smtp.security == AUTOCONFIG_TLS);
		if (ai->smtp_auth && login != NULL)
			pl_key_string(&d, 6, "OutgoingMailServerUsername",
			    login);
		pl_key_bool(&d, 6, "OutgoingPasswordSameAsIncomingPassword",
		    ai->smtp_auth);
	}
	pl_key_string(&d, 6, "PayloadDisplayName", ai->display_name);
	fprintf(d.f, "      <key>PayloadIdentifier</key>\n      <string>");
	doc_text(&d, ident);
	fputs(".mail</string>\n", d.f);
	pl_key_string(&d, 6, "PayloadType", "com.apple.mail.managed");
	pl_uuid(ai, "mail", uuid);
	pl_key_string(&d, 6, "PayloadUUID", uuid);
	pl_key_int(&d, 6, "PayloadVersion", 1);
	fputs("    </dict>\n  </array>\n", d.f);
	pl_key_string(&d, 2, "PayloadDisplayName", ai->display_name);
	pl_key_string(&d, 2, "PayloadIdentifier", ident);
	pl_key_string(&d, 2, "PayloadType", "Configuration");
	pl_uuid(ai, "profile", uuid);
	pl_key_string(&d, 2, "PayloadUUID", uuid);
	pl_key_int(&d, 2, "PayloadVersion", 1);
	fputs("</dict>\n</plist>\n", d.f);
	return doc_close(&d, len_r);
}

/* ---- Outlook's request ---- */

typedef bool autoconfig_parse_fn(const char *body, size_t len, char *buf,
    size_t bufsz);

bool
autoconfig_request_email(const char *body, size_t len, char *buf,
    size_t bufsz)
{
	static autoconfig_parse_fn *parse;
	char err[512];

	if (len == 0 || len > AUTOCONFIG_REQUEST_MAX ||
	    memmem(body, len, "<!", 2) != NULL)
		return false;
	/* libxml2 lives in posuto_parse.so (lib/plugin.h); HTTP thread. */
	if (parse == NULL &&
	    (parse = (autoconfig_parse_fn *)plugin_symbol("posuto_parse",
	    "autoconfig_parse_request", err, sizeof(err))) == NULL) {
		log_warnx("admin: autodiscover: %s", err);
		return false;
	}
	return parse(body, len, buf, bufsz);
}

/* ---- the routes ---- */

enum autoconfig_doc {
	DOC_THUNDERBIRD,
	DOC_AUTODISCOVER,
	DOC_MOBILECONFIG,
};

static const struct {
	const char *path;
	enum autoconfig_doc doc;
	enum evhttp_cmd_type method;
} autoconfig_routes[] = {
	/* Thunderbird asks autoconfig.DOMAIN for the first, the domain
	 * itself for the second. */
	{ "/mail/config-v1.1.xml", DOC_THUNDERBIRD, EVHTTP_REQ_GET },
	{ "/.well-known/autoconfig/mail/config-v1.1.xml", DOC_THUNDERBIRD,
	  EVHTTP_REQ_GET },
	/* Outlook spells it either way; matched without case. */
	{ "/autodiscover/autodiscover.xml", DOC_AUTODISCOVER,
	  EVHTTP_REQ_POST },
	{ "/mobileconfig", DOC_MOBILECONFIG, EVHTTP_REQ_GET },
};

static const struct {
	const char *type;
	const char *disposition;
} doc_types[] = {
	[DOC_THUNDERBIRD] = { "text/xml; charset=utf-8", NULL },
	[DOC_AUTODISCOVER] = { "application/xml; charset=utf-8", NULL },
	[DOC_MOBILECONFIG] = { "application/x-apple-aspen-config",
	    "attachment; filename=\"posuto.mobileconfig\"" },
};

/* The address named by the query (?emailaddress= for Thunderbird,
 * ?email= otherwise) into buf, "" if none; false if one is given and is
 * not plausible. */
static bool
query_email(struct evhttp_request *req, char *buf, size_t bufsz)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	const char *v;
	bool ok = true;

	buf[0] = '\0';
	if (query == NULL)
		return true;
	if (evhttp_parse_query_str(query, &q) != 0)
		return false;
	if ((v = evhttp_find_header(&q, "emailaddress")) != NULL ||
	    (v = evhttp_find_header(&q, "email")) != NULL) {
		ok = autoconfig_email_ok(v) && strlen(v) < bufsz;
		if (ok)
			(void)snprintf(buf, bufsz, "%s", v);
	}
	evhttp_clear_headers(&q);
	return ok;
}

bool
http_autoconfig_dispatch(struct http_server *h, struct evhttp_request *req,
    const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	char email[AUTOCONFIG_EMAIL_MAX + 1];
	struct autoconfig_info ai;
	enum autoconfig_doc doc;
	struct evbuffer *b;
	size_t i, len;
	char *text;

	for (i = 0; i < sizeof(autoconfig_routes) /
	    sizeof(autoconfig_routes[0]); i++)
		if (strcasecmp(path, autoconfig_routes[i].path) == 0)
			break;
	if (i == sizeof(autoconfig_routes) / sizeof(autoconfig_routes[0]))
		return false;
	doc = autoconfig_routes[i].doc;
	if (m != autoconfig_routes[i].method &&
	    !(m == EVHTTP_REQ_HEAD &&
	    autoconfig_routes[i].method == EVHTTP_REQ_GET)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", autoconfig_routes[i].method == EVHTTP_REQ_GET ?
		    "GET, HEAD" : "POST");
		http_reply_error(req, 405, "method not allowed");
		return true;
	}
	if (doc == DOC_AUTODISCOVER) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(in);

		if (n == 0 || !autoconfig_request_email((const char *)
		    evbuffer_pullup(in, -1), n, email, sizeof(email))) {
			http_reply_error(req, 400, "not an autodiscover "
			    "request with an EMailAddress");
			return true;
		}
	} else if (!query_email(req, email, sizeof(email))) {
		http_reply_error(req, 400, "not a plausible mail address");
		return true;
	}
	memset(&ai, 0, sizeof(ai));
	if (h->src.autoconfig == NULL || !h->src.autoconfig(h->src.arg, &ai) ||
	    ai.n_pop3 == 0) {
		http_reply_error(req, 404, "no POP3 listener to describe");
		return true;
	}
	ai.email = email[0] != '\0' ? email : NULL;
	/* Without a configured Domain, the one the client asks about, or
	 * the host's parent domain (mail.example.net: example.net). */
	if (ai.domain[0] == '\0') {
		const char *dot = strchr(ai.hostname, '.');
		const char *d = ai.email != NULL ? strchr(ai.email, '@') + 1 :
		    dot != NULL && strchr(dot + 1, '.') != NULL ? dot + 1 :
		    ai.hostname;

		(void)snprintf(ai.domain, sizeof(ai.domain), "%s", d);
	}
	switch (doc) {
	case DOC_THUNDERBIRD:
		text = autoconfig_thunderbird(&ai, &len);
		break;
	case DOC_AUTODISCOVER:
		text = autoconfig_autodiscover(&ai, &len);
		break;
	default:
		text = autoconfig_mobileconfig(&ai, &len);
		break;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", doc_types[doc].type);
	if (doc_types[doc].disposition != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Disposition", doc_types[doc].disposition);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	if ((b = evbuffer_new()) == NULL)
		fatal("out of memory");
	evbuffer_add(b, text, len);
	free(text);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
	return true;
}
