/* listener.h - bound, listening TCP sockets. */
#ifndef POSUTO_LISTENER_H
#define POSUTO_LISTENER_H

#include <stddef.h>
#include <stdint.h>

/* Binds address:port (numeric IPv4/IPv6; IPv6 sockets are V6ONLY so "::"
 * and "0.0.0.0" can coexist) and listens.  Returns the fd or -1 with a
 * reason in err. */
int listener_open(const char *address, uint16_t port, char *err,
    size_t errsz);

#endif
