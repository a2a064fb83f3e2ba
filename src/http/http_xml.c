/*
 * http_xml.c - Outlook's autodiscover request read by libxml2, in
 * posuto_parse.so (lib/plugin.h); http_autoconfig.c has already refused
 * bodies that are too long or hold "<!" (no DTD, no entities).
 */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "http/http_autoconfig.h"

bool autoconfig_parse_request(const char *body, size_t len, char *buf,
    size_t bufsz);

/* The first element called name below n, depth first. */
static xmlNode *
find_elem(xmlNode *n, const char *name)
{
	for (; n != NULL; n = n->next) {
		xmlNode *hit;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (xmlStrcmp(n->name, (const xmlChar *)name) == 0)
			return n;
		if ((hit = find_elem(n->children, name)) != NULL)
			return hit;
	}
	return NULL;
}

bool
autoconfig_parse_request(const char *body, size_t len, char *buf,
    size_t bufsz)
{
	xmlDoc *doc;
	xmlNode *root, *n;
	xmlChar *text;
	bool ok = false;

	doc = xmlReadMemory(body, (int)len, "request.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		return false;
	root = xmlDocGetRootElement(doc);
	if (root != NULL &&
	    xmlStrcmp(root->name, (const xmlChar *)"Autodiscover") == 0 &&
	    (n = find_elem(root->children, "EMailAddress")) != NULL &&
	    (text = xmlNodeGetContent(n)) != NULL) {
		size_t tl = strlen((const char *)text);

		if (tl < bufsz) {
			memcpy(buf, text, tl + 1);
			ok = autoconfig_email_ok(buf);
		}
		xmlFree(text);
	}
	xmlFreeDoc(doc);
	return ok;
}

