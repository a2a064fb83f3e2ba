/* protocol.c - the table of protocols, filled at startup. */
#include <string.h>

#include "net/protocol.h"

static const struct net_protocol *net_protocols[NET_PROTOCOL_MAX];
static unsigned net_n_protocols;

bool
net_protocol_register(const struct net_protocol *p)
{
	if (net_protocol_find(p->name) != NULL)
		return net_protocol_find(p->name) == p;
	if (net_n_protocols == NET_PROTOCOL_MAX)
		return false;
	net_protocols[net_n_protocols++] = p;
	return true;
}

const struct net_protocol *
net_protocol_find(const char *name)
{
	for (unsigned i = 0; i < net_n_protocols; i++)
		if (strcmp(net_protocols[i]->name, name) == 0)
			return net_protocols[i];
	return NULL;
}

unsigned
net_protocol_index(const struct net_protocol *p)
{
	for (unsigned i = 0; i < net_n_protocols; i++)
		if (net_protocols[i] == p)
			return i;
	return 0;
}

unsigned
net_protocol_count(void)
{
	return net_n_protocols;
}

const struct net_protocol *
net_protocol_at(unsigned i)
{
	return i < net_n_protocols ? net_protocols[i] : NULL;
}
