/*
 * tlsref.h - what the reference servers (okserver, sfserver) share: the
 * listening socket, and for TLS one server context from a certificate and
 * key with OpenSSL's defaults
 * otherwise (TLS 1.3, two session tickets per full handshake, stateless
 * ticket keys), so the ceilings are what OpenSSL itself costs.
 */
#ifndef TLSREF_H
#define TLSREF_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum tio { TIO_READ, TIO_WRITE, TIO_FATAL };

/* A non-blocking listening socket on addr:port, or exit. */
static int
tlsref_listen(const char *prog, const char *addr, int port)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(ls, 4096) < 0) {
		fprintf(stderr, "%s: bind/listen: ", prog);
		perror(NULL);
		exit(1);
	}
	return ls;
}

static SSL_CTX *
tlsref_ctx(const char *prog, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "%s: TLS setup (%s, %s) failed:\n", prog, cert, key);
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* What a failed SSL_* call (return r) waits for. */
static enum tio
tlsref_err(SSL *ssl, int r)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ: return TIO_READ;
	case SSL_ERROR_WANT_WRITE: return TIO_WRITE;
	default:
		ERR_clear_error();
		return TIO_FATAL;
	}
}

#endif
