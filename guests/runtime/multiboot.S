/*
 * multiboot.S - the Multiboot v1 header.
 *
 * The linker scripts place .multiboot first in the image, so the header sits
 * at the start of the first loadable segment, well inside the first 8 KiB of
 * the file. No a.out kludge (flag bit 16): the loader uses the ELF program
 * headers.
 */
#include "layout.h"

	.section .multiboot, "a"
	.balign 4
	.globl multiboot_header
multiboot_header:
	.long MB_HEADER_MAGIC
	.long MB_HEADER_FLAGS
	.long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)

	.section .note.GNU-stack, "", @progbits
