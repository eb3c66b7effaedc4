/*
 * crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of journal records.
 *
 * Two implementations giving the same answer: the SSE4.2 crc32 instruction
 * when the CPU has it (checked once at run time), else slicing-by-8 tables in
 * software.  Tables and the choice are set up once under pthread_once, so any
 * thread may call crc32c().
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc32c_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 1; k < 8; k++)
			crc_table[k][n] = (crc_table[k - 1][n] >> 8) ^
			    crc_table[0][crc_table[k - 1][n] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* crc32c_sw: slicing-by-8 over the raw (pre-inverted) register. */
static uint32_t
crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		n--;
	}
	while (n >= 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo = __builtin_bswap32(lo);
		hi = __builtin_bswap32(hi);
#endif
		lo ^= crc;
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		n--;
	}
	while (n >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

/*
 * crc32c: continue CRC `crc` (0 to start) over n bytes; feeding a buffer in
 * pieces gives the same result as feeding it whole.
 */
uint32_t
crc32c(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&crc_once, crc32c_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc32c_hw(crc, buf, n);
#endif
	return ~crc32c_sw(crc, buf, n);
}

/* crc32c_soft: the table version whatever the CPU (for the unit test). */
uint32_t
crc32c_soft(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&crc_once, crc32c_init);
	return ~crc32c_sw(~crc, buf, n);
}
