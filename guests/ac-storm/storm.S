/*
 * storm.S - tables and the drop to ring 3 for ac-storm (see main.c), from
 * runtime/include/acstorm.inc.
 */
#include "layout.h"
#include "acstorm.inc"

#define SEL_UCODE 0x1B /* 0x18 | RPL 3: 32-bit code, DPL 3 */
#define SEL_UDATA 0x23 /* 0x20 | RPL 3: data, DPL 3 */
#define SEL_TSS   0x28

	.code32
	/* The ring-0 code and data descriptors are the runtime's SEL_CODE32
	 * and SEL_DATA. */
	AC_STORM_TABLES storm_

	.section .text
	.globl ac_storm
ac_storm:
	cli
	AC_STORM_ENTER storm_, user_, SEL_DATA, SEL_TSS, SEL_UCODE, SEL_UDATA

	.section .note.GNU-stack, "", @progbits
