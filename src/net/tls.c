/* tls.c - SSL_CTX setup from files; channel binding data. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <event2/bufferevent_ssl.h>

#include "lib/xmalloc.h"
#include "net/tls.h"
#include "net/tls_ticket.h"

struct tls_ctx {
	/* Sessions on every loop and the admin's thread hold it. */
	atomic_int refs;
	SSL_CTX *ctx;
};

/* Fetched once: EVP_aes_256_cbc() would be looked up in the provider
 * store (locks, name compares) for every ticket, two per handshake. */
static pthread_once_t tls_cipher_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *tls_ticket_cipher;

static void
tls_cipher_fetch(void)
{
	tls_ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

static const EVP_CIPHER *
tls_ticket_cipher_get(void)
{
	(void)pthread_once(&tls_cipher_once, tls_cipher_fetch);
	return tls_ticket_cipher != NULL ? tls_ticket_cipher :
	    EVP_aes_256_cbc();
}

/* The ring's key into OpenSSL's contexts (tls_ticket.h). */
static int
tls_ticket_keys(struct tls_ticket_key *k, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, unsigned char *iv, int enc)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_CipherInit_ex(cctx, tls_ticket_cipher_get(), NULL, k->aes, iv,
	    enc) != 1 || EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return 1;
}

/*
 * Tickets under the process's key ring, so they resume on any loop and
 * after a reload; every resumption gets a new ticket under the current
 * key (an older key's ticket is thereby replaced).
 */
static int
tls_on_ticket(SSL *ssl, unsigned char *key_name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ticket_key k;
	enum tls_ticket_find f;
	int r;

	(void)ssl;
	if (enc) {
		if (!tls_ticket_current(time(NULL), &k) ||
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(tls_ticket_cipher_get()))
		    != 1)
			return -1;
		memcpy(key_name, k.name, TLS_TICKET_NAME_LEN);
		r = tls_ticket_keys(&k, cctx, hctx, iv, 1);
	} else {
		f = tls_ticket_find(key_name, time(NULL), &k);
		if (f == TLS_TICKET_NONE)
			return 0;
		r = tls_ticket_keys(&k, cctx, hctx, iv, 0);
		/* 2: resume and issue a fresh ticket.  With 1 a TLS 1.3
		 * resumption gets none, and a client that uses each ticket
		 * once (as RFC 8446 8.1 asks) falls back to a full
		 * handshake every other time. */
		if (r == 1)
			r = 2;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return r;
}

static void
tls_err(char *err, size_t errsz, const char *what, const char *file)
{
	char ebuf[256];
	unsigned long e = ERR_peek_last_error();

	ERR_error_string_n(e, ebuf, sizeof(ebuf));
	snprintf(err, errsz, "%s %s: %s", what, file ? file : "", e ? ebuf :
	    "unknown error");
	ERR_clear_error();
}

struct tls_ctx *
tls_ctx_new(const struct tls_cfg *cfg, char *err, size_t errsz,
    const char **key_r)
{
	SSL_CTX *ctx;
	int minv = TLS1_2_VERSION;

	*key_r = "Certificate";
	if (cfg->cert_file == NULL || cfg->key_file == NULL) {
		snprintf(err, errsz, "Tls.Certificate and Tls.Key are both required");
		return NULL;
	}
	/* OpenSSL would only say "system lib" for a missing file. */
	if (access(cfg->cert_file, R_OK) != 0 || access(cfg->key_file, R_OK) != 0) {
		const char *f = access(cfg->cert_file, R_OK) != 0 ?
		    cfg->cert_file : cfg->key_file;
		if (f != cfg->cert_file)
			*key_r = "Key";
		snprintf(err, errsz, "cannot read %s: %s", f, strerror(errno));
		return NULL;
	}
	if (cfg->min_version != NULL && strcmp(cfg->min_version, "TLSv1.3") == 0)
		minv = TLS1_3_VERSION;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*key_r = NULL;
		tls_err(err, errsz, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, minv);
	/* Idle sessions should not pin 2 x 16 KiB of record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Kernel TLS where the kernel has it (the tls module): records are
	 * encrypted in the kernel once the handshake is over, and a file
	 * goes out with SSL_sendfile() (conn.c).  Only then: OpenSSL would
	 * try (two failing setsockopt()s) on every handshake. */
	if (tls_kernel_offload())
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	/* Tickets (and cached sessions) never outlive the key that made
	 * them: one period of encrypting, one of decrypting. */
	SSL_CTX_set_timeout(ctx, TLS_TICKET_PERIOD);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_on_ticket);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
		tls_err(err, errsz, "cannot load certificate", cfg->cert_file);
		goto fail;
	}
	*key_r = "Key";
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errsz, "cannot load key", cfg->key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errsz, "key does not match certificate", cfg->key_file);
		goto fail;
	}
	*key_r = "Ciphers";
	if (cfg->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1) {
		tls_err(err, errsz, "bad Tls.Ciphers", cfg->ciphers);
		goto fail;
	}
	*key_r = "CipherSuites";
	if (cfg->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1) {
		tls_err(err, errsz, "bad Tls.CipherSuites", cfg->ciphersuites);
		goto fail;
	}
	*key_r = NULL;
	struct tls_ctx *t = xcalloc(1, sizeof(*t));
	atomic_init(&t->refs, 1);
	t->ctx = ctx;
	return t;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_ctx_ref(struct tls_ctx *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void
tls_ctx_unref(struct tls_ctx **tp)
{
	struct tls_ctx *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) > 1)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* The tls module loaded (listed), or loadable: the kernel loads it at
 * the first TCP_ULP asking for it, and an unconnected socket then gets
 * ENOTCONN where one without it gets ENOENT. */
static bool
tls_kernel_probe(void)
{
	char buf[256], *save = NULL;
	size_t n;
	int fd, r, e;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");

	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		(void)fclose(f);
		buf[n] = '\0';
		for (char *w = strtok_r(buf, " \n", &save); w != NULL;
		    w = strtok_r(NULL, " \n", &save))
			if (strcmp(w, "tls") == 0)
				return true;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	r = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
	e = errno;
	(void)close(fd);
	return r == 0 || e == ENOTCONN;
}

bool
tls_kernel_offload(void)
{
	/* 0 unknown, 1 no, 2 yes: the kernel's modules do not come and go
	 * under a running server often enough to ask again. */
	static atomic_int known;
	int k = atomic_load_explicit(&known, memory_order_relaxed);

	if (k == 0) {
		k = tls_kernel_probe() ? 2 : 1;
		atomic_store_explicit(&known, k, memory_order_relaxed);
	}
	return k == 2;
}

void *
tls_ctx_ssl_ctx(struct tls_ctx *t)
{
	return t->ctx;
}

struct bufferevent *
tls_bufferevent_accept(struct tls_ctx *t, struct event_base *base)
{
	SSL *ssl = SSL_new(t->ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	/* fd -1: evhttp sets the socket itself; CLOSE_ON_FREE frees ssl. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

bool
tls_channel_binding(void *sslp, const char *type, unsigned char *buf,
    size_t bufsz, size_t *len_r)
{
	SSL *ssl = sslp;

	if (strcmp(type, "tls-exporter") == 0) {
		static const char label[] = "EXPORTER-Channel-Binding";
		/* RFC 9266 §2: defined for TLS 1.3 only (or 1.2 with EMS). */
		if (SSL_version(ssl) < TLS1_3_VERSION || bufsz < 32)
			return false;
		if (SSL_export_keying_material(ssl, buf, 32, label,
		    sizeof(label) - 1, NULL, 0, 0) != 1)
			return false;
		*len_r = 32;
		return true;
	}
	if (strcmp(type, "tls-server-end-point") == 0) {
		X509 *cert = SSL_get_certificate(ssl);
		int md_nid = NID_undef, pk_nid;
		const EVP_MD *md;
		unsigned int n;

		if (cert == NULL ||
		    !OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid,
		    &pk_nid))
			return false;
		/* RFC 5929 §4.1: MD5 and SHA-1 are replaced by SHA-256. */
		if (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef)
			md_nid = NID_sha256;
		md = EVP_get_digestbynid(md_nid);
		if (md == NULL || (size_t)EVP_MD_get_size(md) > bufsz)
			return false;
		if (X509_digest(cert, md, buf, &n) != 1)
			return false;
		*len_r = n;
		return true;
	}
	return false;
}

const char *
tls_default_cb_type(void *sslp)
{
	return SSL_version(sslp) >= TLS1_3_VERSION ? "tls-exporter" :
	    "tls-server-end-point";
}

void
tls_describe(void *sslp, char *buf, size_t bufsz)
{
	SSL *ssl = sslp;

	snprintf(buf, bufsz, "%s %s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
}

bool
tls_cert_days_left(const char *path, int *days_r, char *err, size_t errsz)
{
	X509 *x = NULL;
	FILE *f;
	int days = 0, secs = 0;

	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return false;
	}
	/* The first certificate of the chain is the server's own. */
	x = PEM_read_X509(f, NULL, NULL, NULL);
	(void)fclose(f);
	if (x == NULL) {
		tls_err(err, errsz, "no PEM certificate in", path);
		return false;
	}
	/* NULL "from" is now; the difference is signed (negative: expired). */
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1) {
		tls_err(err, errsz, "unreadable expiry date in", path);
		X509_free(x);
		return false;
	}
	X509_free(x);
	/* Whole days left: a certificate with 12 hours left has 0, one that
	 * expired an hour ago has -1. */
	if (secs < 0)
		days--;
	*days_r = days;
	return true;
}
