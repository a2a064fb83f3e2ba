/* proxy.c - PROXY protocol v1 and v2 headers, strictly bounded. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "lib/strutil.h"
#include "net/proxy.h"

#define V1_MAX	107		/* "PROXY TCP6 ...\r\n", the spec's bound */

static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_sig[] = "PROXY ";

/* buf[0..len) is a prefix of sig[0..siglen): more may make it one. */
static bool
proxy_prefix(const uint8_t *buf, size_t len, const void *sig, size_t siglen)
{
	return memcmp(buf, sig, len < siglen ? len : siglen) == 0;
}

static bool
proxy_port(const char *s, size_t len, uint16_t *port_r)
{
	uint32_t v;

	/* 1-5 digits, no sign, no leading zero but "0" itself */
	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (!parse_u32(s, len, &v) || v > 65535)
		return false;
	*port_r = (uint16_t)v;
	return true;
}

static enum net_proxy_result
proxy_v1(const uint8_t *buf, size_t len, size_t *len_r,
    struct sockaddr_storage *client_r)
{
	/* after "PROXY ": TCP4|TCP6, source, destination, their ports */
	const char *tok[5];
	size_t toklen[5], n = 0, end;
	char line[V1_MAX + 1], addr[INET6_ADDRSTRLEN];
	uint16_t sport, dport;
	int family;

	for (end = 0; end < len && end < V1_MAX; end++) {
		if (buf[end] == '\n')
			break;
		/* printable ASCII and the final CR only */
		if ((buf[end] < 0x20 || buf[end] > 0x7e) && buf[end] != '\r')
			return NET_PROXY_BAD;
	}
	if (end == len && len < V1_MAX)
		return NET_PROXY_MORE;
	if (end == len || end == V1_MAX || end < 1 || buf[end - 1] != '\r')
		return NET_PROXY_BAD;
	/* buf[0..end-1) is the line without its CRLF */
	memcpy(line, buf, end - 1);
	line[end - 1] = '\0';
	if (memchr(line, '\r', end - 1) != NULL)
		return NET_PROXY_BAD;
	for (char *p = line + sizeof(v1_sig) - 1; n < 5; n++) {
		char *sp = strchr(p, ' ');

		tok[n] = p;
		toklen[n] = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (toklen[n] == 0)
			return NET_PROXY_BAD;	/* two spaces, or a trailing one */
		if (sp == NULL) {
			n++;
			break;
		}
		p = sp + 1;
		if (n == 4)
			return NET_PROXY_BAD;	/* a sixth field */
	}
	if (toklen[0] == 4 && memcmp(tok[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (toklen[0] == 4 && memcmp(tok[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return NET_PROXY_BAD;		/* UNKNOWN included */
	if (n != 5 || !proxy_port(tok[3], toklen[3], &sport) ||
	    !proxy_port(tok[4], toklen[4], &dport) ||
	    toklen[1] >= sizeof(addr))
		return NET_PROXY_BAD;
	memcpy(addr, tok[1], toklen[1]);
	addr[toklen[1]] = '\0';
	memset(client_r, 0, sizeof(*client_r));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)client_r;

		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return NET_PROXY_BAD;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(sport);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)client_r;

		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return NET_PROXY_BAD;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(sport);
	}
	/* the destination must be an address of the same family too */
	if (toklen[2] >= sizeof(addr))
		return NET_PROXY_BAD;
	{
		uint8_t dst[16];

		memcpy(addr, tok[2], toklen[2]);
		addr[toklen[2]] = '\0';
		if (inet_pton(family, addr, dst) != 1)
			return NET_PROXY_BAD;
	}
	*len_r = end + 1;
	return NET_PROXY_OK;
}

static enum net_proxy_result
proxy_v2(const uint8_t *buf, size_t len, size_t *len_r,
    struct sockaddr_storage *client_r)
{
	size_t body;
	unsigned cmd;

	if (len < 16)
		return NET_PROXY_MORE;
	if ((buf[12] & 0xf0) != 0x20)
		return NET_PROXY_BAD;		/* version 2 only */
	cmd = buf[12] & 0x0f;
	if (cmd > 1)
		return NET_PROXY_BAD;
	body = (size_t)buf[14] << 8 | buf[15];
	if (body > NET_PROXY_V2_MAX_BODY)
		return NET_PROXY_BAD;
	if (len < 16 + body)
		return NET_PROXY_MORE;
	memset(client_r, 0, sizeof(*client_r));
	if (cmd == 0) {
		/* LOCAL: the proxy's own connection (health check) */
		client_r->ss_family = AF_UNSPEC;
	} else if (buf[13] == 0x11 && body >= 12) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)client_r;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, buf + 16, 4);
		memcpy(&s4->sin_port, buf + 24, 2);	/* network order */
	} else if (buf[13] == 0x21 && body >= 36) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)client_r;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, buf + 16, 16);
		memcpy(&s6->sin6_port, buf + 48, 2);
	} else {
		return NET_PROXY_BAD;	/* UNSPEC, UDP, UNIX, short */
	}
	*len_r = 16 + body;
	return NET_PROXY_OK;
}

enum net_proxy_result
net_proxy_parse(const uint8_t *buf, size_t len, size_t *len_r,
    struct sockaddr_storage *client_r)
{
	if (len == 0)
		return NET_PROXY_MORE;
	if (proxy_prefix(buf, len, v2_sig, sizeof(v2_sig)))
		return len < sizeof(v2_sig) ? NET_PROXY_MORE :
		    proxy_v2(buf, len, len_r, client_r);
	if (proxy_prefix(buf, len, v1_sig, sizeof(v1_sig) - 1))
		return len < sizeof(v1_sig) - 1 ? NET_PROXY_MORE :
		    proxy_v1(buf, len, len_r, client_r);
	return NET_PROXY_BAD;
}
