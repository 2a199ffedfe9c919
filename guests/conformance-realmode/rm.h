/*
 * rm.h - layout shared by rm.S (the 16-bit code) and main.c (the checks).
 * Safe to include from .S files.
 *
 * Low memory used by the guest (nothing of the runtime lives there):
 *   RM_BASE   0x10000  the 16-bit blob (.text16), copied here by main.c;
 *                      real-mode CS = DS = RM_SEG, so an offset in the blob
 *                      is the same in 16-bit protected mode (selector
 *                      SEL_CODE16/SEL_DATA16, base RM_BASE) and in real mode
 *   STK_SEG   0x2000   real-mode stack segment (SS), SP starts at RM_SP
 *   IVT_BASE  0x30000  the real-mode interrupt vector table (LIDT base)
 *   DATA_SEG  0x4000   scratch segment for segment arithmetic and strings
 */
#ifndef RM_H
#define RM_H

#define RM_BASE     0x10000
#define RM_SEG      0x1000
#define STK_SEG     0x2000
#define RM_SP       0xFFF0
#define IVT_BASE    0x30000
#define IVT_LIMIT   0x3FF
#define DATA_SEG    0x4000
#define DATA_BASE   0x40000

/* Selectors of the guest's GDT (rm_gdt): the runtime's five, then two more. */
#define SEL_CODE16  0x28 /* 16-bit code, base RM_BASE, limit 0xFFFF */
#define SEL_DATA16  0x30 /* 16-bit data, base RM_BASE, limit 0xFFFF */
#define RM_GDT_ENTRIES 7

/*
 * The blob's variables: a data area at RM_BASE + D_BASE, so offsets from
 * DS = RM_SEG (zeroed by main.c; rm.S fills in the pointers and strings).
 * It is kept out of .text16 so that the build's instruction guard, which
 * disassembles .text16, sees only code.
 */
#define D_BASE      0xC000
#define D_TARGET    (D_BASE + 0x00) /* word: offset of the routine to call */
#define D_LMSW      (D_BASE + 0x02) /* byte: return to protected mode with LMSW */
#define D_CR0_PM    (D_BASE + 0x04) /* dword: CR0 in 16-bit protected mode */
#define D_CR0_RM    (D_BASE + 0x08) /* dword: CR0 in real mode */
#define D_CS_RM     (D_BASE + 0x0C) /* word: CS after the far JMP */
#define D_ROUNDS    (D_BASE + 0x0E) /* word: round trips completed */
#define D_SP        (D_BASE + 0x10) /* word: scratch SP */
#define D_EX_COUNT  (D_BASE + 0x12) /* words: the last delivery through the IVT */
#define D_EX_VEC    (D_BASE + 0x14)
#define D_EX_IP     (D_BASE + 0x16)
#define D_EX_CS     (D_BASE + 0x18)
#define D_EX_FL     (D_BASE + 0x1A)
#define D_EX_SP     (D_BASE + 0x1C)
#define D_EX_HCS    (D_BASE + 0x1E)
#define D_EX_RESUME (D_BASE + 0x20) /* word: if set, the handler returns here */
#define D_EX_HEFL   (D_BASE + 0x24) /* dword: EFLAGS inside the handler */
#define D_DTRBUF    (D_BASE + 0x28) /* 6 bytes: SIDT/SGDT destination */
#define D_IVT_PTR   (D_BASE + 0x30) /* LIDT operands */
#define D_IDT_PROBE (D_BASE + 0x38)
#define D_IVT_SHORT (D_BASE + 0x40)
#define D_FARPTR    (D_BASE + 0x48) /* m16:16 for LDS */
#define D_JMP_PTR   (D_BASE + 0x4C) /* m16:16 for JMP FAR */
#define D_HELLO     (D_BASE + 0x50) /* "HELLO" */
#define D_HELP      (D_BASE + 0x58) /* "HELP!" */
#define D_RES       (D_BASE + 0x100) /* 32-bit result slots */
#define RES_SLOTS   160
#define D_END       (D_RES + 4 * RES_SLOTS)

#endif
