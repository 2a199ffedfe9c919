/*
 * isr32.S - 32-bit trap stubs.
 *
 * Each stub pushes a 0 error code when the CPU pushes none, then the vector
 * number, and jumps to isr_common, which saves the general registers so the
 * stack holds a struct trap_frame (trap.h), calls trap_dispatch(frame),
 * restores the (possibly modified) registers and returns with IRET.
 * Same-privilege delivery pushes no ESP/SS; see trap_frame_sp().
 */
#include "layout.h"

	.code32

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || \
		      (v) == 13 || (v) == 14 || (v) == 17 || (v) == 21 || \
		      (v) == 29 || (v) == 30)

.macro STUB name, vec
	.balign 16
\name:
	.if !HAS_ERROR(\vec)
	pushl $0
	.endif
	pushl $\vec
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
	pushl %eax
	pushl %ecx
	pushl %edx
	pushl %ebx
	pushl %ebp
	pushl %esi
	pushl %edi
	cld
	movl %esp, %eax
	pushl %eax              /* argument: struct trap_frame * */
	call trap_dispatch
	addl $4, %esp
	popl %edi
	popl %esi
	popl %ebp
	popl %ebx
	popl %edx
	popl %ecx
	popl %eax
	addl $8, %esp           /* vector, error code */
	iret

	.section .rodata
	.balign 4
	.globl isr_stubs
isr_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.long isr_\v
	.endr

	.section .note.GNU-stack, "", @progbits
