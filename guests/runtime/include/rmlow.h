/*
 * rmlow.h - the 32-bit side's view of a real-mode blob (conformance-realmode,
 * pc-kernel): offsets into the blob, its data area's variables, copying it
 * to RM_BASE, and the segment selectors the trip back must restore.
 * Include after the guest's rm.h (RM_BASE, D_BASE, D_END).
 */
#ifndef RT_RMLOW_H
#define RT_RMLOW_H

#include <stdint.h>
#include "mem.h"
#include "report.h"

/* The 16-bit code (.text16), linked anywhere and run from RM_BASE. */
extern char rm_blob[], rm_blob_end[];

/* A blob label's offset from the blob's start: its IP in real mode. */
#define OFF(sym) ((uint32_t)((uintptr_t)(sym) - (uintptr_t)rm_blob))

/* A variable of the 16-bit code's data area (rm.h). */
static inline uint32_t low32(uint32_t off)
{
	return *(volatile uint32_t *)(uintptr_t)(RM_BASE + off);
}

static inline uint32_t low16(uint32_t off)
{
	return *(volatile uint16_t *)(uintptr_t)(RM_BASE + off);
}

/* The selector in CS (which 0), DS (1), ES (2) or SS (3). */
static inline uint16_t selector(int which)
{
	uint16_t v;

	switch (which) {
	case 0: __asm__ volatile("mov %%cs, %0" : "=r"(v)); break;
	case 1: __asm__ volatile("mov %%ds, %0" : "=r"(v)); break;
	case 2: __asm__ volatile("mov %%es, %0" : "=r"(v)); break;
	default: __asm__ volatile("mov %%ss, %0" : "=r"(v)); break;
	}
	return v;
}

/*
 * Copies the blob to RM_BASE and zeroes its data area. Returns 0, after a
 * failing check `check`, if the code would run into the data area.
 */
static inline int rm_load_blob(const char *check)
{
	uint32_t n = (uint32_t)(rm_blob_end - rm_blob);

	if (n > D_BASE) {
		report(check, 0, "%u bytes, limit %u", n, D_BASE);
		return 0;
	}
	memcpy((void *)(uintptr_t)RM_BASE, rm_blob, n);
	memset((void *)(uintptr_t)(RM_BASE + D_BASE), 0, D_END - D_BASE);
	return 1;
}

#endif
