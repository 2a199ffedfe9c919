/*
 * storm.S - tables and the drop to ring 3 for ac-storm (see main.c).
 */
#include "layout.h"

#define SEL_UCODE 0x1B /* 0x18 | RPL 3: 32-bit code, DPL 3 */
#define SEL_UDATA 0x23 /* 0x20 | RPL 3: data, DPL 3 */
#define SEL_TSS   0x28
#define CR0_AM    (1 << 18)
#define EFLAGS_AC (1 << 18)

	.code32
	.section .data
	.balign 16
storm_gdt:
	.quad 0
	.quad 0x00CF9B000000FFFF   /* 0x08 ring-0 code (the runtime's SEL_CODE32) */
	.quad 0x00CF93000000FFFF   /* 0x10 ring-0 data (the runtime's SEL_DATA) */
	.quad 0x00CFFB000000FFFF   /* 0x18 ring-3 code, DPL 3 */
	.quad 0x00CFF3000000FFFF   /* 0x20 ring-3 data, DPL 3 */
storm_tss_desc:
	.quad 0                    /* 0x28 32-bit TSS, filled in at run time */
storm_gdt_end:
	.balign 4
	.word 0
storm_gdt_ptr:
	.word storm_gdt_end - storm_gdt - 1
	.long storm_gdt

	.balign 8
	.word 0
storm_idt_ptr:
	.word 18 * 8 - 1           /* vectors 0..17: #AC is the last */
	.long storm_idt

	.section .bss
	.balign 16
storm_idt:
	.skip 18 * 8
storm_tss:
	.skip 104
	.balign 16
	.skip 4096
storm_kstack_top:
	.skip 4096
storm_ustack_top:

	.section .text
	.globl ac_storm
ac_storm:
	cli
	/* TSS descriptor: base storm_tss, limit 103, type 9 (available 32-bit TSS), P. */
	movl $storm_tss, %eax
	movl %eax, %edx
	shll $16, %edx
	orl $103, %edx
	movl %edx, storm_tss_desc
	movl %eax, %edx
	shrl $16, %edx
	andl $0xFF, %edx
	movl %eax, %ecx
	andl $0xFF000000, %ecx
	orl %ecx, %edx
	orl $0x00008900, %edx
	movl %edx, storm_tss_desc + 4
	/* TSS.SS0:ESP0, for completeness: nothing here returns to ring 0. */
	movl $storm_kstack_top, storm_tss + 4
	movl $SEL_DATA, storm_tss + 8
	lgdt storm_gdt_ptr
	movw $SEL_TSS, %ax
	ltr %ax
	/* IDT gate 17: 32-bit interrupt gate, DPL 3, to ring-3 code. */
	movl $user_ac_handler, %eax
	movl %eax, %edx
	andl $0xFFFF, %edx
	orl $(SEL_UCODE << 16), %edx
	movl %edx, storm_idt + 17 * 8
	andl $0xFFFF0000, %eax
	orl $0x0000EE00, %eax
	movl %eax, storm_idt + 17 * 8 + 4
	lidt storm_idt_ptr
	/* CR0.AM = 1. */
	movl %cr0, %eax
	orl $CR0_AM, %eax
	movl %eax, %cr0
	/* To ring 3 with EFLAGS.AC = 1 and ESP = 2 mod 4. */
	pushl $SEL_UDATA
	pushl $(storm_ustack_top - 2)
	pushl $(EFLAGS_AC | 2)
	pushl $SEL_UCODE
	pushl $user_code
	iret

user_code:
	movw $SEL_UDATA, %ax
	movw %ax, %ds
	movw %ax, %es
	pushl %eax                 /* misaligned 4-byte push: #AC */
1:	jmp 1b

user_ac_handler:
	/* Never reached: the frame push that would lead here raises #AC. */
	jmp user_ac_handler

	.section .note.GNU-stack, "", @progbits
