/*
 * http_autoconfig.h - the documents mail clients fetch to set themselves
 * up: Thunderbird's autoconfig XML, Outlook's autodiscover answer and an
 * Apple configuration profile, served without a login on the admin's
 * port and, if configured, on a listener of their own.
 *
 * The documents are built from a description of the server (which POP3
 * endpoints exist, with which security) that the daemon derives from the
 * listeners in effect (http_admin_source.autoconfig), so they can never
 * name a port nothing listens on.  Every string that goes into a
 * document is escaped for it.
 */
#ifndef POSUTO_HTTP_AUTOCONFIG_H
#define POSUTO_HTTP_AUTOCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum autoconfig_security {
	AUTOCONFIG_PLAIN,
	AUTOCONFIG_STARTTLS,
	AUTOCONFIG_TLS,		/* implicit TLS (POP3S 995, SMTPS 465) */
};

struct autoconfig_endpoint {
	uint16_t port;
	enum autoconfig_security security;
};

#define AUTOCONFIG_POP3_MAX	8

#define AUTOCONFIG_NAME_MAX	256

struct autoconfig_info {
	char hostname[AUTOCONFIG_NAME_MAX];	/* what clients connect to */
	char domain[AUTOCONFIG_NAME_MAX];	/* the mail domain */
	char display_name[AUTOCONFIG_NAME_MAX];
	/* The address being set up, or NULL: the documents then carry
	 * Thunderbird's placeholders where they can. */
	const char *email;
	/* Log in with the address's local part (posuto's user names, the
	 * SMTP sink's users) rather than the whole address. */
	bool login_local_part;
	/* Best first: the caller orders them TLS, STARTTLS, plain. */
	struct autoconfig_endpoint pop3[AUTOCONFIG_POP3_MAX];
	size_t n_pop3;
	/* Outgoing mail; port 0: none configured. */
	char smtp_hostname[AUTOCONFIG_NAME_MAX];	/* "": hostname */
	struct autoconfig_endpoint smtp;
	bool smtp_auth;
};

/* The documents, malloc'd and NUL-terminated; *len_r is their length. */
char *autoconfig_thunderbird(const struct autoconfig_info *ai, size_t *len_r);
char *autoconfig_autodiscover(const struct autoconfig_info *ai,
    size_t *len_r);
char *autoconfig_mobileconfig(const struct autoconfig_info *ai,
    size_t *len_r);

/*
 * The EMailAddress of an Outlook autodiscover request (POX schema), into
 * buf.  The body is parsed by libxml2 with no network access, and a
 * body holding any "<!" (DOCTYPE, entity declarations, comments, CDATA:
 * none of which a real request has) is refused before parsing, so entity
 * bombs and external entities have nothing to work with.  false if the
 * body is not such a request or the address is not plausible.
 */
bool autoconfig_request_email(const char *body, size_t len, char *buf,
    size_t bufsz);

struct http_server;
struct evhttp_request;

/* Serves path if it is one of the documents; false if it is not. */
bool http_autoconfig_dispatch(struct http_server *h,
    struct evhttp_request *req, const char *path);

/* A plausible address (one '@', no space or control character, no XML
 * or shell metacharacter), short enough for every document. */
bool autoconfig_email_ok(const char *email);

#endif
