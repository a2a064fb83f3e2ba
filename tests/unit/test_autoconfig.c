/* test_autoconfig.c - the client setup documents: well-formed, carrying
 * the endpoints given, escaping what they are given; and Outlook's
 * request read safely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "http/http_autoconfig.h"

static struct autoconfig_info
sample(void)
{
	struct autoconfig_info ai = {
		.hostname = "mail.example.net",
		.domain = "example.net",
		.display_name = "Example <b>&</b> \"co\"",
		.smtp_hostname = "",
		.email = "alice@example.net",
		.login_local_part = true,
		.pop3 = { { 995, AUTOCONFIG_TLS }, { 110, AUTOCONFIG_STARTTLS } },
		.n_pop3 = 2,
		.smtp = { 1025, AUTOCONFIG_PLAIN },
		.smtp_auth = false,
	};
	return ai;
}

/* The n-th element called name below n in document order, or NULL. */
static xmlNode *
find_nth(xmlNode *n, const char *name, int *nth)
{
	for (; n != NULL; n = n->next) {
		xmlNode *hit;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (strcmp((const char *)n->name, name) == 0 && (*nth)-- == 0)
			return n;
		if ((hit = find_nth(n->children, name, nth)) != NULL)
			return hit;
	}
	return NULL;
}

static char *
elem_text(xmlDoc *doc, const char *name, int nth)
{
	xmlNode *n = find_nth(xmlDocGetRootElement(doc), name, &nth);

	return n != NULL ? (char *)xmlNodeGetContent(n) : NULL;
}

static void
assert_elem(xmlDoc *doc, const char *name, int nth, const char *want)
{
	char *got = elem_text(doc, name, nth);

	assert_non_null(got);
	assert_string_equal(got, want);
	xmlFree(got);
}

static xmlDoc *
parse(const char *text, size_t len)
{
	xmlDoc *doc = xmlReadMemory(text, (int)len, "t.xml", NULL,
	    XML_PARSE_NONET);

	assert_non_null(doc);
	return doc;
}

static void
test_thunderbird(void **state)
{
	struct autoconfig_info ai = sample();
	size_t len;
	char *x = autoconfig_thunderbird(&ai, &len);
	xmlDoc *doc = parse(x, len);
	(void)state;

	assert_string_equal((const char *)xmlDocGetRootElement(doc)->name,
	    "clientConfig");
	assert_elem(doc, "domain", 0, "example.net");
	/* The name went in escaped and comes out as it was. */
	assert_elem(doc, "displayName", 0, ai.display_name);
	assert_null(strstr(x, "<b>"));
	assert_elem(doc, "port", 0, "995");
	assert_elem(doc, "socketType", 0, "SSL");
	assert_elem(doc, "port", 1, "110");
	assert_elem(doc, "socketType", 1, "STARTTLS");
	assert_elem(doc, "username", 0, "%EMAILLOCALPART%");
	assert_elem(doc, "port", 2, "1025");
	assert_elem(doc, "socketType", 2, "plain");
	assert_elem(doc, "authentication", 2, "none");
	xmlFreeDoc(doc);
	free(x);
}

static void
test_autodiscover(void **state)
{
	struct autoconfig_info ai = sample();
	size_t len;
	char *x = autoconfig_autodiscover(&ai, &len);
	xmlDoc *doc = parse(x, len);
	(void)state;

	assert_elem(doc, "Type", 0, "POP3");
	assert_elem(doc, "Port", 0, "995");
	assert_elem(doc, "LoginName", 0, "alice");
	assert_elem(doc, "Encryption", 0, "SSL");
	assert_elem(doc, "Type", 1, "SMTP");
	assert_elem(doc, "AuthRequired", 1, "off");
	xmlFreeDoc(doc);
	free(x);

	ai.login_local_part = false;
	x = autoconfig_autodiscover(&ai, &len);
	doc = parse(x, len);
	assert_elem(doc, "LoginName", 0, "alice@example.net");
	xmlFreeDoc(doc);
	free(x);
}

static void
test_mobileconfig(void **state)
{
	struct autoconfig_info ai = sample();
	size_t len, len2;
	char *x = autoconfig_mobileconfig(&ai, &len);
	char *again = autoconfig_mobileconfig(&ai, &len2);
	xmlDoc *doc = parse(x, len);
	(void)state;

	assert_string_equal((const char *)xmlDocGetRootElement(doc)->name,
	    "plist");
	assert_non_null(strstr(x, "<string>EmailTypePOP</string>"));
	assert_non_null(strstr(x, "<integer>995</integer>"));
	assert_non_null(strstr(x, "<key>IncomingMailServerUseSSL</key>\n"
	    "      <true/>"));
	assert_non_null(strstr(x, "<string>alice</string>"));
	/* Same server and address: same UUIDs, so a reinstall replaces. */
	assert_int_equal(len, len2);
	assert_memory_equal(x, again, len);
	xmlFreeDoc(doc);
	free(x);
	free(again);

	ai.email = "bob@example.net";
	again = autoconfig_mobileconfig(&ai, &len2);
	x = autoconfig_mobileconfig(&(struct autoconfig_info){ .hostname =
	    "h", .domain = "d", .display_name = "n" }, &len);
	assert_null(strstr(x, "EmailAddress"));
	assert_null(strstr(x, "PortNumber"));
	free(x);
	free(again);
}

static void
test_request(void **state)
{
	static const char good[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
	    "autodiscover/outlook/requestschema/2006\"><Request>"
	    "<EMailAddress>alice@example.net</EMailAddress>"
	    "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/"
	    "autodiscover/outlook/responseschema/2006a"
	    "</AcceptableResponseSchema></Request></Autodiscover>";
	static const char bomb[] =
	    "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY a \"aaaa\">"
	    "<!ENTITY b \"&a;&a;&a;&a;\">]><Autodiscover><Request>"
	    "<EMailAddress>&b;@x</EMailAddress></Request></Autodiscover>";
	static const char xxe[] =
	    "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e SYSTEM "
	    "\"file:///etc/passwd\">]><Autodiscover><Request><EMailAddress>"
	    "&e;</EMailAddress></Request></Autodiscover>";
	static const char other[] = "<Other><EMailAddress>a@b</EMailAddress>"
	    "</Other>";
	static const char bad_addr[] = "<Autodiscover><Request><EMailAddress>"
	    "a&lt;script&gt;@b</EMailAddress></Request></Autodiscover>";
	char buf[256];
	char *big;
	(void)state;

	assert_true(autoconfig_request_email(good, sizeof(good) - 1, buf,
	    sizeof(buf)));
	assert_string_equal(buf, "alice@example.net");
	assert_false(autoconfig_request_email(good, sizeof(good) - 1, buf, 8));
	assert_false(autoconfig_request_email(bomb, sizeof(bomb) - 1, buf,
	    sizeof(buf)));
	assert_false(autoconfig_request_email(xxe, sizeof(xxe) - 1, buf,
	    sizeof(buf)));
	assert_false(autoconfig_request_email(other, sizeof(other) - 1, buf,
	    sizeof(buf)));
	assert_false(autoconfig_request_email(bad_addr, sizeof(bad_addr) - 1,
	    buf, sizeof(buf)));
	assert_false(autoconfig_request_email("<Autodiscover", 13, buf,
	    sizeof(buf)));
	assert_false(autoconfig_request_email("", 0, buf, sizeof(buf)));
	big = malloc(1 << 20);
	assert_non_null(big);
	memset(big, ' ', 1 << 20);
	memcpy(big, good, sizeof(good) - 1);
	assert_false(autoconfig_request_email(big, 1 << 20, buf, sizeof(buf)));
	free(big);
}

static void
test_email_ok(void **state)
{
	(void)state;
	assert_true(autoconfig_email_ok("a@b"));
	assert_true(autoconfig_email_ok("first.last+tag@example.co.jp"));
	assert_false(autoconfig_email_ok(""));
	assert_false(autoconfig_email_ok("nobody"));
	assert_false(autoconfig_email_ok("@b"));
	assert_false(autoconfig_email_ok("a@"));
	assert_false(autoconfig_email_ok("a@b@c"));
	assert_false(autoconfig_email_ok("a b@c"));
	assert_false(autoconfig_email_ok("<a>@c"));
	assert_false(autoconfig_email_ok("a@c\r\nX: y"));
	assert_false(autoconfig_email_ok("\xe3\x81\x82@c"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thunderbird),
		cmocka_unit_test(test_autodiscover),
		cmocka_unit_test(test_mobileconfig),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_email_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
