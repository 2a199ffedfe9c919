/* exit.c - end the run through QEMU's isa-debug-exit device. */
#include "rt.h"

#define DEBUG_EXIT_PORT 0xF4

void exit(int code)
{
	outl(DEBUG_EXIT_PORT, (uint32_t)code);
	for (;;)
		__asm__ volatile("cli; hlt");
}
