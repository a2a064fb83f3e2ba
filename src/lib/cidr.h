/*
 * cidr.h - address blocks ("10.0.0.0/8", "::1"): parsed where the config
 * is checked, matched where connections are accepted.
 */
#ifndef POSUTO_CIDR_H
#define POSUTO_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned bits;
	uint8_t addr[16];
};

/* "a.b.c.d[/n]" or "v6[/n]", len bytes of s; host bits must be zero (a
 * typo such as "10.0.0.1/8" is not what was meant). */
bool cidr_parse(const char *s, size_t len, struct cidr *out);
/*
 * A list separated by spaces or commas ("127.0.0.1 10.0.0.0/8").  With
 * list_r NULL it only checks; otherwise *list_r (malloc'd) and *n_r.
 * False (nothing allocated) if an entry does not parse or there is none;
 * then *bad_r (if not NULL) points at the entry.
 */
bool cidr_list_parse(const char *s, struct cidr **list_r, size_t *n_r,
    const char **bad_r);
/* addr in any block; v4-mapped IPv6 addresses match IPv4 blocks. */
bool cidr_match(const struct cidr *list, size_t n,
    const struct sockaddr_storage *addr);

#endif
