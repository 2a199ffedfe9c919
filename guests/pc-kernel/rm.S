/*
 * rm.S - pc-kernel's trip to real-address mode and back, the way test
 * kernels do it (adapted from conformance-realmode/rm.S).
 *
 * rm_call (32-bit, called from main.c with interrupts already off) saves
 * the runtime's GDTR and IDTR, loads rm_gdt (the runtime's descriptors
 * plus a 16-bit code and data segment) and an IDTR for the real-mode IVT
 * (base 0, limit 0x3FF), and far-jumps to the 16-bit code segment. There,
 * as Intel SDM Vol. 3A §9.9.2 prescribes, it loads 16-bit data selectors,
 * clears CR0.PE with MOV CR0 and far-jumps to load a real-mode CS. The
 * real-mode code records what it sees in the data area (rm.h): CR0, SMSW,
 * SIDT, 16-bit arithmetic, segment:offset addressing, an INT n through the
 * IVT. Then it sets CR0.PE again and far-jumps with a 32-bit offset to
 * rm_back32 (§9.9.1), which reloads the data segments, the stack and the
 * saved GDTR and IDTR.
 *
 * Any other vector taken in real mode goes to rm_unexpected, which records
 * the frame and leaves real mode, so main.c can report it.
 */
#include "layout.h"
#include "rm.h"

#include "rmswitch.inc"

	RM_BLOB_START
	RM_ENTER_REAL
	smsw %ax
	movw %ax, D_SMSW
	sidtl D_IDTR
	lidtl D_IVT_PTR

	/* 16-bit arithmetic: the sum of i*i for i = 1..40, with MUL. */
	xorw %si, %si
	movw $1, %cx
1:	movw %cx, %ax
	mulw %cx
	addw %ax, %si
	incw %cx
	cmpw $40, %cx
	jbe 1b
	movw %si, D_SUM
	/* 0xFFFF + 3 wraps to 2 with CF and AF. */
	movw $0xFFFF, %ax
	addw $3, %ax
	pushfw
	popw %bx
	movw %ax, D_ADD
	movw %bx, D_ADD_FL
	/* DX:AX = 0x10000 / 7. */
	movw $1, %dx
	xorw %ax, %ax
	movw $7, %cx
	divw %cx
	movw %ax, D_DIV
	movw %dx, D_DIV_REM

	/* Segment:offset: 0x4000:0x1234 and 0x4123:0x0004 are both linear 0x41234. */
	movw $DATA_SEG, %ax
	movw %ax, %es
	movw $0xBEEF, %es:0x1234
	movw $0x4123, %ax
	movw %ax, %fs
	movw %fs:0x0004, %ax
	movw %ax, D_ALIAS
	/* BX + SI = 0xFFFF + 2 wraps to offset 1 (16-bit address size). */
	movb $0x5A, %es:0x0001
	movw $0xFFFF, %bx
	movw $2, %si
	movb %es:(%bx,%si), %al
	movb %al, D_WRAP
	/* 0xFFFF:0x0010 is linear 0x100000: the image's multiboot magic. */
	movw $0xFFFF, %ax
	movw %ax, %gs
	movl %gs:0x0010, %eax
	movl %eax, D_HIGH
	movw $RM_SEG, %ax
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs

	/* INT n through the IVT at 0, with CF = 1; the handler adds to AX (and clears CF). */
	movw $0, D_INT_COUNT
	movw $O(2f), D_INT_WANT
	movw %sp, %bx
	movw $0x1234, %ax
	pushw $0x0003             /* FLAGS = CF and the fixed bit 1 only (DIV left the rest undefined) */
	popfw
	int $RM_VECTOR
2:	pushfw
	popw %cx
	clc
	movw %ax, D_INT_AX
	movw %cx, D_INT_RFL
	movw %sp, %dx
	subw %bx, %dx
	movw %dx, D_INT_AFTER

rm_leave:
	incw D_ROUNDS
	/* Back to protected mode. */
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $rm_back32

/* The INT handler: BX = SP before the INT (set by the caller). */
	.globl rm_int
rm_int:
	pushfw                    /* FLAGS in the handler, before anything changes them */
	pushw %bp
	movw %sp, %bp
	incw %cs:D_INT_COUNT
	pushw %ax
	movw 2(%bp), %ax
	movw %ax, %cs:D_INT_HFL
	movw 4(%bp), %ax
	movw %ax, %cs:D_INT_IP
	movw 6(%bp), %ax
	movw %ax, %cs:D_INT_CS
	movw 8(%bp), %ax
	movw %ax, %cs:D_INT_FL
	movw %bx, %ax
	subw %bp, %ax
	subw $4, %ax              /* BP + 4 = SP when the handler was entered */
	movw %ax, %cs:D_INT_SP
	popw %ax
	addw $RM_INT_ADD, %ax     /* the "service" result, returned in AX */
	popw %bp
	addw $2, %sp              /* drop the saved FLAGS: IRET restores the caller's */
	iretw

/* Every other vector: record the frame and leave real mode. */
	.globl rm_unexpected
rm_unexpected:
	pushw %bp
	movw %sp, %bp
	movw $RM_SEG, %ax
	movw %ax, %ds
	movw 2(%bp), %ax
	movw %ax, D_UNEXP_IP
	movw 4(%bp), %ax
	movw %ax, D_UNEXP_CS
	incw D_UNEXP
	jmp rm_leave

	.globl rm_blob_end
rm_blob_end:

/* --------------------------------------------------------- 32-bit side */

	RM_SWITCH_DATA

/* uint32_t rm_call(void): one round trip; returns the round-trip count. */
	RM_CALL_PROLOGUE
	RM_ENTER_PM16

	.globl rm_back32
rm_back32:
	RM_RETURN_PM32

	.section .note.GNU-stack, "", @progbits
