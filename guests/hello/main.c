/*
 * hello32 / hello64 - the smallest useful guests, built from this one file:
 * 32-bit protected mode with paging off, or 64-bit long mode (4-level
 * paging, identity map). Each prints a greeting naming its mode and an
 * FNV-1a checksum over 64 KiB of xorshift32 output (the same value in both
 * modes), then exits 0.
 */
#include "rt.h"

#define BUF_SIZE 65536

static uint8_t buf[BUF_SIZE];

int main(void)
{
	uint32_t x = 0x12345678, hash = 0x811C9DC5;

	for (unsigned i = 0; i < BUF_SIZE; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
	for (unsigned i = 0; i < BUF_SIZE; i++) {
		hash ^= buf[i];
		hash *= 0x01000193;
	}

#ifdef __x86_64__
	printf("hello from 64-bit long mode\n");
#else
	printf("hello from 32-bit protected mode\n");
#endif
	printf("checksum: 0x%08x\n", hash);
	return 0;
}
