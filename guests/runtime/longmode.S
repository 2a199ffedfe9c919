/*
 * longmode.S - multiboot entry for 64-bit guests.
 *
 * Entered like entry32.S (32-bit protected mode, paging off). Loads our GDT,
 * zeroes .bss, builds 4-level identity page tables mapping [0, 1 GiB) with
 * 2 MiB pages (everything above is unmapped, so accesses there page-fault),
 * enables CR4.PAE, EFER.LME and CR0.PG, far-jumps to the 64-bit code
 * segment, then rt_init(); exit(main()).
 *
 * This file is assembled into a 64-bit object; the code before the far jump
 * is .code32.
 */
#include "layout.h"

#define PTE_P   0x001
#define PTE_W   0x002
#define PTE_PS  0x080 /* 2 MiB page in a page-directory entry */

#include "entry.inc"

	.section .bss
	.balign 4096
	.globl pml4, pdpt, pd
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
	.balign 16
boot_stack:
	.skip RT_STACK_SIZE
boot_stack_top:

	.section .boot, "ax"
	.code32
	.globl _start
_start:
	ENTER_FLAT32

	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB (512 entries = 1 GiB). */
	movl $(pdpt + PTE_P + PTE_W), pml4
	movl $(pd + PTE_P + PTE_W), pdpt
	movl $pd, %edi
	movl $(PTE_P + PTE_W + PTE_PS), %eax
	movl $512, %ecx
2:	movl %eax, (%edi)
	addl $0x200000, %eax
	addl $8, %edi
	decl %ecx
	jnz 2b

	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax                 /* CR4.PAE */
	movl %eax, %cr4
	movl $0xC0000080, %ecx          /* IA32_EFER */
	rdmsr
	orl $0x100, %eax                /* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax           /* CR0.PG: long mode becomes active */
	movl %eax, %cr0
	ljmp $SEL_CODE64, $long_entry

	.text
	.code64
long_entry:
	movw $SEL_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	movq $boot_stack_top, %rsp
	xorl %ebp, %ebp

	call rt_init
	call main
	movl %eax, %edi
	call exit
3:	cli
	hlt
	jmp 3b

	.section .note.GNU-stack, "", @progbits
