/* cidr.c - address blocks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cidr.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

bool
cidr_parse(const char *s, size_t len, struct cidr *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = memchr(s, '/', len);
	size_t hlen = slash != NULL ? (size_t)(slash - s) : len;
	uint32_t bits;
	unsigned max;

	memset(out, 0, sizeof(*out));
	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	bits = max;
	if (slash != NULL && (!parse_u32(slash + 1, len - hlen - 1, &bits) ||
	    bits > max))
		return false;
	out->bits = bits;
	for (unsigned i = bits; i < max; i++)
		if (out->addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	return true;
}

bool
cidr_list_parse(const char *s, struct cidr **list_r, size_t *n_r,
    const char **bad_r)
{
	struct cidr *list = NULL, c;
	size_t n = 0;
	const char *p = s;

	for (;;) {
		size_t len;

		p += strspn(p, " ,");
		if (*p == '\0')
			break;
		len = strcspn(p, " ,");
		if (!cidr_parse(p, len, &c)) {
			if (bad_r != NULL)
				*bad_r = p;
			free(list);
			return false;
		}
		if (list_r != NULL) {
			list = xreallocarray(list, n + 1, sizeof(*list));
			list[n] = c;
		}
		n++;
		p += len;
	}
	if (n == 0) {
		if (bad_r != NULL)
			*bad_r = s;
		return false;
	}
	if (list_r != NULL) {
		*list_r = list;
		*n_r = n;
	}
	return true;
}

static bool
cidr_match_one(const struct cidr *c, const uint8_t *a, int family)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family || memcmp(c->addr, a, full) != 0)
		return false;
	return rest == 0 ||
	    ((c->addr[full] ^ a[full]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

bool
cidr_match(const struct cidr *list, size_t n,
    const struct sockaddr_storage *addr)
{
	const uint8_t *a;
	int family = addr->ss_family;

	if (family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)addr)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)
		    (const void *)addr)->sin6_addr;

		a = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			a += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (cidr_match_one(&list[i], a, family))
			return true;
	return false;
}
