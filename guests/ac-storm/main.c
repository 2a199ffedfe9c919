/*
 * ac-storm - the #AC delivery loop of CVE-2015-5307.
 *
 * 32-bit protected mode: CR0.AM = 1, the #AC gate (vector 17) leads to a
 * ring-3 code segment, and ring-3 code runs with EFLAGS.AC = 1 on a stack
 * whose pointer is 2 mod 4. Its first push raises #AC; delivering it at
 * CPL 3 pushes EFLAGS onto the same misaligned stack, which raises #AC
 * again, and #AC after #AC is benign (SDM Vol. 3A Table 6-5): delivered
 * one after the other, forever, without an instruction boundary. In 64-bit
 * mode the CPU aligns RSP before pushing a frame, so the loop needs 32-bit
 * mode.
 *
 * Nothing after the storm starts is ever printed. A hypervisor that
 * intercepts #AC sees one exit per delivery; one that relies on notify VM
 * exiting sees a notify exit per window; one with neither loses the CPU.
 */
#include "rt.h"

void ac_storm(void) __attribute__((noreturn));

int main(void)
{
	printf("ac-storm: CR0.AM=1, #AC gate to ring 3, ring-3 push with EFLAGS.AC=1 and ESP=2 mod 4\n");
	printf("ac-storm: from here on no instruction completes\n");
	ac_storm();
}
