/*
 * entry32.S - multiboot entry for 32-bit guests.
 *
 * Entered in 32-bit protected mode, paging off, EAX = 0x2BADB002,
 * EBX = multiboot info. Loads our own GDT, sets up the stack, zeroes .bss,
 * then rt_init(); exit(main()).
 */
#include "layout.h"

#include "entry.inc"

	.section .bss
	.balign 16
boot_stack:
	.skip RT_STACK_SIZE
boot_stack_top:

	.section .boot, "ax"
	.code32
	.globl _start
_start:
	ENTER_FLAT32

	call rt_init
	call main
	pushl %eax
	call exit
2:	cli
	hlt
	jmp 2b

	.section .note.GNU-stack, "", @progbits
