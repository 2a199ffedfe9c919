/*
 * isr64.S - 64-bit trap stubs.
 *
 * Each stub pushes a 0 error code when the CPU pushes none, then the vector
 * number, and jumps to isr_common, which saves the general registers so the
 * stack holds a struct trap_frame (trap.h), calls trap_dispatch(frame),
 * restores the (possibly modified) registers and returns with IRETQ.
 */
#include "layout.h"

	.code64

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || \
		      (v) == 13 || (v) == 14 || (v) == 17 || (v) == 21 || \
		      (v) == 29 || (v) == 30)

.macro STUB name, vec
	.balign 16
\name:
	.if !HAS_ERROR(\vec)
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

	.text
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	STUB isr_\v, \v
	.endr

	.globl isr_syscall
	STUB isr_syscall, VEC_SYSCALL

	.balign 16
isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	/* The CPU aligned RSP to 16 before pushing its 5 words; we pushed 17 more
	 * (error, vector, 15 registers): 176 bytes, so RSP is 16-aligned here. */
	movq %rsp, %rdi
	call trap_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rbp
	popq %rbx
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp          /* vector, error code */
	iretq

	.section .rodata
	.balign 8
	.globl isr_stubs
isr_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr_\v
	.endr

	.section .note.GNU-stack, "", @progbits
