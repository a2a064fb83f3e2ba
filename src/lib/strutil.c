/* strutil.c - bounded copies, strict numbers, hex and base64. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lib/strutil.h"

static bool
parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9)
			return false;
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool
parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v;

	if (!parse_uint(s, len, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

bool
parse_u64(const char *s, size_t len, uint64_t *out)
{
	return parse_uint(s, len, UINT64_MAX, out);
}

bool
str_copy(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);

	if (dstsz == 0)
		return false;
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

bool
ct_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

bool
ct_streq(const char *a, size_t alen, const char *b, size_t blen)
{
	/* Compare over a's length whatever b's is, so the time depends only
	 * on the (secret-independent) length of the client's input. */
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < blen ? b[i] : 0);
	return diff == 0;
}

static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

bool
ascii_caseeq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
			return false;
	}
	return *a == *b;
}

bool
ascii_casepfx(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++) {
		if (*s == '\0' ||
		    ascii_lower((unsigned char)*s) != ascii_lower((unsigned char)*prefix))
			return false;
	}
	return true;
}

void
hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)ascii_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool
hex_decode(const char *in, size_t inlen, unsigned char *out, size_t n)
{
	if (inlen != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_val((unsigned char)in[2 * i]);
		int lo = hex_val((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

size_t
base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t
base64_decoded_max(size_t inlen)
{
	return inlen / 4 * 3 + 3;
}

void
base64_encode(const unsigned char *in, size_t n, char *out)
{
	/* EVP_EncodeBlock writes no newlines and NUL-terminates. */
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static bool
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

long
base64_decode(const char *in, size_t inlen, unsigned char *out)
{
	size_t pad = 0;
	int n;

	/* EVP_DecodeBlock skips whitespace and ignores some garbage; be
	 * strict ourselves: only the alphabet, '=' only at the end. */
	if (inlen % 4 != 0 || inlen > (size_t)1 << 30)
		return -1;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '=') {
			if (i < inlen - 2)
				return -1;
			pad++;
		} else if (pad != 0 || !b64_char(c)) {
			return -1;
		}
	}
	if (inlen == 0)
		return 0;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
	if (n < 0 || (size_t)n < pad)
		return -1;
	return n - (long)pad;
}
