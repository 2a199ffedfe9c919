/*
 * entry32.S - multiboot entry for 32-bit guests.
 *
 * Entered in 32-bit protected mode, paging off, EAX = 0x2BADB002,
 * EBX = multiboot info. Loads our own GDT, sets up the stack, zeroes .bss,
 * then rt_init(); exit(main()).
 */
#include "layout.h"

	.section .data
	.balign 4
	.globl boot_magic, boot_info
boot_magic:	.long 0
boot_info:	.long 0

	.section .bss
	.balign 16
boot_stack:
	.skip RT_STACK_SIZE
boot_stack_top:

	.section .boot, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	/* The loader's DS is a flat data segment; .data is not zeroed below. */
	movl %eax, boot_magic
	movl %ebx, boot_info

	lgdt gdt_ptr
	ljmp $SEL_CODE32, $1f
1:	movw $SEL_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	movl $boot_stack_top, %esp
	xorl %ebp, %ebp

	/* Zero .bss (the stack lives there too; nothing is on it yet). */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	call rt_init
	call main
	pushl %eax
	call exit
2:	cli
	hlt
	jmp 2b

	.section .note.GNU-stack, "", @progbits
