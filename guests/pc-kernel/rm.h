/*
 * rm.h - layout shared by rm.S (the real-mode round trip) and main.c.
 * Safe to include from .S files. Adapted from conformance-realmode/rm.h.
 *
 * Low memory pc-kernel uses for its real-mode part (nothing of the runtime
 * lives there, and the multiboot data it reads at 0x8000-0x9FFF is left
 * alone):
 *   IVT_BASE  0x00000  the real-mode interrupt vector table (LIDT 0, 0x3FF)
 *   RM_BASE   0x10000  the 16-bit blob (.text16), copied here by main.c;
 *                      real-mode CS = DS = RM_SEG, so an offset in the blob
 *                      is the same in 16-bit protected mode (selector
 *                      SEL_CODE16/SEL_DATA16, base RM_BASE) and in real mode
 *   STK_SEG   0x2000   real-mode stack segment (SS), SP starts at RM_SP
 *   DATA_SEG  0x4000   scratch segment for segment:offset addressing
 */
#ifndef PCK_RM_H
#define PCK_RM_H

#define RM_BASE     0x10000
#define RM_SEG      0x1000
#define STK_SEG     0x2000
#define RM_SP       0xFFF0
#define IVT_BASE    0x0
#define IVT_LIMIT   0x3FF
#define DATA_SEG    0x4000
#define DATA_BASE   0x40000

/* The real-mode INT vector and what its handler adds to AX. */
#define RM_VECTOR   0x21
#define RM_INT_ADD  0x1111

/* Selectors of rm_gdt: the runtime's five, then two 16-bit ones. */
#define SEL_CODE16  0x28 /* 16-bit code, base RM_BASE, limit 0xFFFF */
#define SEL_DATA16  0x30 /* 16-bit data, base RM_BASE, limit 0xFFFF */
#define RM_GDT_ENTRIES 7

/*
 * The blob's variables: a data area at RM_BASE + D_BASE (offsets from
 * DS = RM_SEG), zeroed by main.c. Kept out of .text16 so that the build's
 * instruction guard, which disassembles .text16 as 8086 code, sees only code.
 */
#define D_BASE      0xC000
#define D_CR0_PM    (D_BASE + 0x00) /* dword: CR0 in 16-bit protected mode */
#define D_CR0_RM    (D_BASE + 0x04) /* dword: CR0 in real mode */
#define D_CS_RM     (D_BASE + 0x08) /* word: CS after the far JMP */
#define D_ROUNDS    (D_BASE + 0x0A) /* word: round trips completed */
#define D_SMSW      (D_BASE + 0x0C) /* word: SMSW in real mode */
#define D_IDTR      (D_BASE + 0x10) /* 6 bytes: SIDT in real mode */
#define D_IVT_PTR   (D_BASE + 0x18) /* 6 bytes: LIDT operand, base 0 limit 0x3FF */
#define D_SUM       (D_BASE + 0x20) /* word: sum of i*i, i = 1..40 */
#define D_ADD       (D_BASE + 0x22) /* word: 0xFFFF + 3 */
#define D_ADD_FL    (D_BASE + 0x24) /* word: FLAGS after it */
#define D_DIV       (D_BASE + 0x26) /* word: quotient, then remainder */
#define D_DIV_REM   (D_BASE + 0x28)
#define D_ALIAS     (D_BASE + 0x2A) /* word: 0x4123:0x0004 after a store to 0x4000:0x1234 */
#define D_WRAP      (D_BASE + 0x2C) /* byte: ES:[BX+SI] with BX + SI = 0x10001 */
#define D_HIGH      (D_BASE + 0x30) /* dword: 0xFFFF:0x0010, linear 1 MiB */
#define D_INT_COUNT (D_BASE + 0x34) /* word: handler entries */
#define D_INT_IP    (D_BASE + 0x36) /* words: the frame the handler saw */
#define D_INT_CS    (D_BASE + 0x38)
#define D_INT_FL    (D_BASE + 0x3A)
#define D_INT_WANT  (D_BASE + 0x3C) /* word: the offset INT should push */
#define D_INT_HFL   (D_BASE + 0x3E) /* word: FLAGS inside the handler */
#define D_INT_AX    (D_BASE + 0x40) /* word: AX after the INT */
#define D_INT_SP    (D_BASE + 0x42) /* word: SP before minus SP in the handler */
#define D_INT_AFTER (D_BASE + 0x44) /* word: SP after IRET minus SP before INT */
#define D_INT_RFL   (D_BASE + 0x46) /* word: FLAGS after IRET */
#define D_UNEXP     (D_BASE + 0x48) /* word: other vectors taken */
#define D_UNEXP_IP  (D_BASE + 0x4A) /* words: the last one's IP and CS */
#define D_UNEXP_CS  (D_BASE + 0x4C)
#define D_END       (D_BASE + 0x50)

#endif
