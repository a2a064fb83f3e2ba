/*
 * admin_autoconfig.c - what the client setup documents say, derived from
 * the configuration in effect (see http/http_autoconfig.h): the POP3
 * listeners with their security, best first, and the SMTP server to name
 * (Admin.Autoconfig, or the development SMTP sink).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/admin.h"
#include "http/http_autoconfig.h"

static bool
address_is_loopback(const char *a)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, a, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, a, &v6) == 1 &&
	    IN6_IS_ADDR_LOOPBACK(&v6);
}

static enum autoconfig_security
security_of(enum listen_tls tls)
{
	switch (tls) {
	case LISTEN_TLS_IMPLICIT:
		return AUTOCONFIG_TLS;
	case LISTEN_TLS_STARTTLS:
		return AUTOCONFIG_STARTTLS;
	default:
		return AUTOCONFIG_PLAIN;
	}
}

/* Adds the endpoint once (a port on 0.0.0.0 and :: is one port). */
static void
add_pop3(struct autoconfig_info *ai, uint16_t port,
    enum autoconfig_security sec)
{
	for (size_t i = 0; i < ai->n_pop3; i++)
		if (ai->pop3[i].port == port)
			return;
	if (ai->n_pop3 < AUTOCONFIG_POP3_MAX)
		ai->pop3[ai->n_pop3++] =
		    (struct autoconfig_endpoint){ port, sec };
}

bool
admin_autoconfig_fill(const struct posuto_config *cfg,
    struct autoconfig_info *ai)
{
	const struct autoconfig_cfg *ac = &cfg->admin.autoconfig;
	const struct listen_cfg *sink = NULL;
	bool all_loopback = true;
	char host[AUTOCONFIG_NAME_MAX];

	memset(ai, 0, sizeof(*ai));
	/* Best first: a client that takes the first one gets TLS. */
	for (int sec = AUTOCONFIG_TLS; sec >= AUTOCONFIG_PLAIN; sec--) {
		for (size_t i = 0; i < cfg->n_listens; i++) {
			const struct listen_cfg *l = &cfg->listens[i];

			if (l->path != NULL)
				continue;
			if (l->protocol == LISTEN_PROTO_SMTP_SINK) {
				if (sink == NULL)
					sink = l;
				continue;
			}
			if (l->protocol != LISTEN_PROTO_POP3 ||
			    (int)security_of(l->tls) != sec)
				continue;
			add_pop3(ai, l->port, (enum autoconfig_security)sec);
			if (!address_is_loopback(l->address))
				all_loopback = false;
		}
	}
	if (ai->n_pop3 == 0)
		return false;
	if (ac->hostname != NULL)
		(void)snprintf(ai->hostname, sizeof(ai->hostname), "%s",
		    ac->hostname);
	else if (all_loopback || gethostname(host, sizeof(host)) != 0)
		(void)snprintf(ai->hostname, sizeof(ai->hostname), "localhost");
	else
		(void)snprintf(ai->hostname, sizeof(ai->hostname), "%.*s",
		    (int)sizeof(host) - 1, host);
	if (ac->domain != NULL)
		(void)snprintf(ai->domain, sizeof(ai->domain), "%s",
		    ac->domain);
	if (ac->display_name != NULL)
		(void)snprintf(ai->display_name, sizeof(ai->display_name), "%s",
		    ac->display_name);
	else
		(void)snprintf(ai->display_name, sizeof(ai->display_name),
		    "posuto on %.200s", ai->hostname);
	ai->login_local_part = ac->login == AUTOCONFIG_LOGIN_LOCAL_PART;
	if (ac->smtp_port != 0) {
		if (ac->smtp_hostname != NULL)
			(void)snprintf(ai->smtp_hostname,
			    sizeof(ai->smtp_hostname), "%s", ac->smtp_hostname);
		ai->smtp = (struct autoconfig_endpoint){ ac->smtp_port,
		    security_of(ac->smtp_security) };
		ai->smtp_auth = ac->smtp_auth;
	} else if (sink != NULL) {
		/* The sink takes mail from the machine it runs on. */
		if (address_is_loopback(sink->address))
			(void)snprintf(ai->smtp_hostname,
			    sizeof(ai->smtp_hostname), "localhost");
		ai->smtp = (struct autoconfig_endpoint){ sink->port,
		    AUTOCONFIG_PLAIN };
		ai->smtp_auth = false;
	}
	return true;
}
