/*
 * nmi-iret - a notify exit incident to an IRET that unblocked NMIs.
 *
 * The guest waits for an NMI (`vigil run --nmi-after 50ms`, or QEMU's
 * monitor command `nmi`). The NMI and #DB gates both switch to IST1, so
 * their frames land at the same addresses. The NMI handler sets DR0 to a
 * read/write breakpoint (8 bytes) on the frame's RIP slot (IST1 top - 40)
 * and returns with IRETQ. The IRET unblocks NMIs and reads that slot: a
 * data-breakpoint trap, delivered before the next instruction through IST1,
 * whose frame writes the slot again — the #DB loop of CVE-2015-8104, begun
 * by the IRET with no instruction boundary since. A notify exit there
 * reports qualification bit 12 ("NMI unblocking due to IRET"), and the
 * hypervisor must set blocking by NMI again before it resumes the guest.
 */
#include "kit.h"

void nmi_handler(void);

/* DR7: L0, R/W0 = 11 (reads and writes), LEN0 = 10 (8 bytes). */
#define NMI_IRET_DR7 (1 | (3u << 16) | (2u << 18))

__asm__(".text\n"
	".globl nmi_handler\n"
	"nmi_handler:\n\t"
	"leaq kit_ist1_stack + 8192 - 40(%rip), %rax\n\t"
	"movq %rax, %dr0\n\t"
	"movq $" "0xB0001" ", %rax\n\t"
	"movq %rax, %dr7\n\t"
	"iretq\n");

_Static_assert(NMI_IRET_DR7 == 0xB0001, "the handler's DR7 literal");
_Static_assert(KIT_STACK == 8192, "the handler's IST1 top");

int main(void)
{
	kit_init();
	kit_gate_set(VEC_NMI, nmi_handler, K_CS, GATE_INT, 0, 1, 1);
	kit_gate_ist(VEC_DB, 1);
	printf("nmi-iret: NMI and #DB through IST1; waiting for an NMI (vigil run --nmi-after 50ms)\n");
	for (;;)
		__asm__ volatile("pause");
}
