/*
 * kit64.S - ring-3 entry and exit, and the raw frame-capture stub of the
 * conformance kit (see kit.h).
 */
#include "layout.h"

#define U_CS64 0x3B
#define U_DS   0x33

	.code64
	.text

/*
 * void kit_user_call(fn %rdi, sp %rsi, flags %rdx, a %rcx, b %r8)
 *
 * Saves the callee-saved registers and RFLAGS, records RSP in kit_ksp, and
 * IRETQs to fn at CPL 3 with RDI = a, RSI = b. The trap handler comes back
 * to kit_user_ret on the ring-0 stack at kit_ksp (kit_to_kernel).
 */
	.globl kit_user_call
	.balign 16
kit_user_call:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushfq
	movq %rsp, kit_ksp(%rip)
	pushq $U_DS
	pushq %rsi
	pushq %rdx
	pushq $U_CS64
	pushq %rdi
	movq %rcx, %rdi
	movq %r8, %rsi
	xorl %eax, %eax
	xorl %ebx, %ebx
	xorl %ecx, %ecx
	xorl %edx, %edx
	xorl %ebp, %ebp
	iretq

	.globl kit_user_ret
kit_user_ret:
	popfq
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	ret

/* The end of every ring-3 snippet: kit_trap recognises this #UD. */
	.globl kit_user_exit
	.balign 16
kit_user_exit:
	ud2

/*
 * kit_raw_stub: a gate target. Saves RFLAGS as the handler sees them, its
 * RSP, and the eight words on top of the stack (the frame exactly as the
 * CPU pushed it), then continues at kit_raw_kip with RSP = kit_raw_ksp.
 * No IRET. Clobbers RAX.
 */
	.globl kit_raw_stub
	.balign 16
kit_raw_stub:
	pushfq
	popq kit_raw_hflags(%rip)
	movq %rsp, kit_raw_sp(%rip)
	movq 0(%rsp), %rax
	movq %rax, kit_raw_words+0(%rip)
	movq 8(%rsp), %rax
	movq %rax, kit_raw_words+8(%rip)
	movq 16(%rsp), %rax
	movq %rax, kit_raw_words+16(%rip)
	movq 24(%rsp), %rax
	movq %rax, kit_raw_words+24(%rip)
	movq 32(%rsp), %rax
	movq %rax, kit_raw_words+32(%rip)
	movq 40(%rsp), %rax
	movq %rax, kit_raw_words+40(%rip)
	movq 48(%rsp), %rax
	movq %rax, kit_raw_words+48(%rip)
	movq 56(%rsp), %rax
	movq %rax, kit_raw_words+56(%rip)
	movq kit_raw_ksp(%rip), %rsp
	jmp *kit_raw_kip(%rip)

	.data
	.balign 8
	.globl kit_ksp, kit_raw_words, kit_raw_sp, kit_raw_hflags, kit_raw_ksp, kit_raw_kip
kit_ksp:	.quad 0
kit_raw_words:	.skip 64
kit_raw_sp:	.quad 0
kit_raw_hflags:	.quad 0
kit_raw_ksp:	.quad 0
kit_raw_kip:	.quad 0

	.section .note.GNU-stack, "", @progbits
