/*
 * split-lock - bus locks from a guest: LOCK-prefixed read-modify-writes and
 * XCHG (locked implicitly) on a 4-byte operand that spans two 64-byte cache
 * lines, 1000 of each, next to 1000 locked increments of an aligned operand,
 * which assert no bus lock. With bus-lock detection on, the hypervisor sees
 * exactly 2000 bus locks (`vigil run --guest split-lock --stats`) and can
 * rate-limit them (`--bus-lock-ratelimit N`).
 */
#include "rt.h"

#define ROUNDS 1000

static uint8_t lines[128] __attribute__((aligned(64)));

int main(void)
{
	/* Bytes 62..65: the operand crosses the line boundary at 64. */
	volatile uint32_t *split = (volatile uint32_t *)(uintptr_t)(lines + 62);
	volatile uint32_t *aligned = (volatile uint32_t *)(uintptr_t)(lines + 8);
	uint32_t v = 0;

	for (int i = 0; i < ROUNDS; i++)
		__asm__ volatile("lock incl %0" : "+m"(*split) : : "memory");
	for (int i = 0; i < ROUNDS; i++) {
		v = (uint32_t)i;
		__asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*split) : : "memory");
	}
	for (int i = 0; i < ROUNDS; i++)
		__asm__ volatile("lock incl %0" : "+m"(*aligned) : : "memory");
	printf("split-lock: %u locked increments and %u exchanges across a cache line, "
	       "%u aligned locked increments\n",
	       ROUNDS, ROUNDS, ROUNDS);
	printf("split-lock: split operand %u, aligned operand %u\n", *split, *aligned);
	return (*split == ROUNDS - 1 && *aligned == ROUNDS) ? 0 : 1;
}
