/*
 * tls.h - TLS server contexts (OpenSSL 3).  Only net/ sees OpenSSL's SSL
 * API.  A tls_ctx is refcounted: SIGHUP builds a new one from the files
 * and, only if that works, swaps it in; sessions keep the one they have.
 */
#ifndef POSUTO_TLS_H
#define POSUTO_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct tls_ctx;

/* NULL on error, with a reason naming the file in err and in *key_r the
 * Tls member at fault ("Certificate", "Key", "Ciphers", "CipherSuites"),
 * or NULL if none is. */
struct tls_ctx *tls_ctx_new(const struct tls_cfg *cfg, char *err,
    size_t errsz, const char **key_r);
void tls_ctx_ref(struct tls_ctx *t);
void tls_ctx_unref(struct tls_ctx **t);
/* Whether the kernel can take over TLS records (kTLS: the tls module,
 * listed in net.ipv4.tcp_available_ulp, or loadable), asked once.  Only
 * then do contexts ask OpenSSL for kernel TLS: elsewhere OpenSSL
 * encrypts records itself, as it would after failing to hand them over. */
bool tls_kernel_offload(void);
/* The underlying SSL_CTX (as void * so callers need no OpenSSL headers). */
void *tls_ctx_ssl_ctx(struct tls_ctx *t);

struct bufferevent;
struct event_base;
/* A server-side TLS bufferevent with no socket yet (for evhttp's bevcb:
 * the web admin's HTTPS); NULL on failure. */
struct bufferevent *tls_bufferevent_accept(struct tls_ctx *t,
    struct event_base *base);

/* Channel binding of an established TLS session (SSL * as void *):
 * "tls-exporter" (RFC 9266, TLS 1.3 only) or "tls-server-end-point"
 * (RFC 5929).  Returns false if unavailable. */
bool tls_channel_binding(void *ssl, const char *type, unsigned char *buf,
    size_t bufsz, size_t *len_r);
/* The binding type a SCRAM-PLUS client should use on this session. */
const char *tls_default_cb_type(void *ssl);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for the log. */
void tls_describe(void *ssl, char *buf, size_t bufsz);

/* Whole days until the first certificate in the PEM file at path
 * expires (negative: expired that many days ago, -1 within the last
 * day), for `posuto doctor`.  False with a reason in err. */
bool tls_cert_days_left(const char *path, int *days_r, char *err,
    size_t errsz);

#endif
