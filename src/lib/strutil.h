/* strutil.h - bounded string copies and strict number parsing. */
#ifndef POSUTO_STRUTIL_H
#define POSUTO_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Strict decimal parsers: only [0-9]+, no sign, no spaces, no leading '+',
 * no overflow (an overflow is an error, never a wrap: "4294967297" is not 1).
 * len is the number of bytes of s to parse (s need not be terminated).
 */
bool parse_u32(const char *s, size_t len, uint32_t *out);
bool parse_u64(const char *s, size_t len, uint64_t *out);

/* Copies src into dst; returns false (dst still terminated) if truncated. */
bool str_copy(char *dst, size_t dstsz, const char *src);

/* Constant-time comparison of two buffers of equal length n. */
bool ct_memeq(const void *a, const void *b, size_t n);
/* Constant-time in the contents; lengths may differ (then false). */
bool ct_streq(const char *a, size_t alen, const char *b, size_t blen);

/* Case-insensitive ASCII prefix/equality helpers (locale-independent). */
bool ascii_caseeq(const char *a, const char *b);
bool ascii_casepfx(const char *s, const char *prefix);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* Decodes exactly 2n hex chars (any case) into n bytes; false if invalid. */
bool hex_decode(const char *in, size_t inlen, unsigned char *out, size_t n);

/*
 * Base64 (RFC 4648, with padding). decode returns the decoded length or -1
 * for malformed input (bad characters, bad padding, wrong length).
 * out must hold base64_decoded_max(inlen) bytes; encode's out must hold
 * base64_encoded_len(n)+1 bytes and is NUL-terminated.
 */
size_t base64_encoded_len(size_t n);
size_t base64_decoded_max(size_t inlen);
void base64_encode(const unsigned char *in, size_t n, char *out);
long base64_decode(const char *in, size_t inlen, unsigned char *out);

#endif
