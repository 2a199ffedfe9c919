/*
 * hello32 - the smallest useful guest: 32-bit protected mode, paging off.
 * Prints a greeting and an FNV-1a checksum over 64 KiB of xorshift32 output,
 * then exits 0. hello64 computes the same checksum in long mode.
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

	printf("hello from 32-bit protected mode\n");
	printf("checksum: 0x%08x\n", hash);
	return 0;
}
