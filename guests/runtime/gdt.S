/*
 * gdt.S - the runtime's global descriptor table (both widths).
 *
 * Accessed bits are preset so loading a selector never writes the table.
 */
#include "layout.h"

	.section .data
	.balign 16
	.globl gdt
gdt:
	.quad 0                    /* SEL_NULL */
	.quad 0x00CF9B000000FFFF   /* SEL_CODE32: base 0, 4 GiB, exec/read, D=1, G=1 */
	.quad 0x00CF93000000FFFF   /* SEL_DATA: base 0, 4 GiB, read/write, B=1, G=1 */
	.quad 0x00AF9B000000FFFF   /* SEL_CODE64: exec/read, L=1, D=0 */
	.quad 0x00CF13000000FFFF   /* SEL_NOT_PRESENT: as SEL_DATA but P=0 */
gdt_end:

	.balign 4
	.word 0                    /* pad so the base below is 4-byte aligned */
	.globl gdt_ptr
gdt_ptr:                           /* operand of lgdt in either mode */
	.word gdt_end - gdt - 1
	.long gdt
	.long 0

	.if (gdt_end - gdt) != (GDT_ENTRIES * 8)
	.error "GDT_ENTRIES in layout.h does not match gdt.S"
	.endif

	.section .note.GNU-stack, "", @progbits
