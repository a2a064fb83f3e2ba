/*
 * bytes.h - unaligned loads and stores in host byte order, and a 64-bit
 * mixer, for posuto's own side files (.posuto.index, .posuto.drift): a
 * file is read by the host that wrote it, and a foreign one fails its
 * checksum and is rebuilt.
 */
#ifndef POSUTO_LIB_BYTES_H
#define POSUTO_LIB_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint32_t
bytes_rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t
bytes_rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline void
bytes_wr32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void
bytes_wr64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* MurmurHash3's finalizer: every input bit reaches every output bit. */
static inline uint64_t
bytes_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

#endif
