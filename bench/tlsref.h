/*
 * tlsref.h - the TLS part of the reference servers (okserver, sfserver):
 * one server context from a certificate and key, OpenSSL's defaults
 * otherwise (TLS 1.3, two session tickets per full handshake, stateless
 * ticket keys), so the ceilings are what OpenSSL itself costs.
 */
#ifndef TLSREF_H
#define TLSREF_H

#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum tio { TIO_READ, TIO_WRITE, TIO_FATAL };

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
