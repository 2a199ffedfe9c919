/*
 * layout.h - constants shared by the assembly entry code and C.
 *
 * Everything here is part of the guest ABI described in guests/README.md.
 * This header is safe to include from .S files.
 */
#ifndef RT_LAYOUT_H
#define RT_LAYOUT_H

/* Multiboot v1. */
#define MB_HEADER_MAGIC     0x1BADB002
#define MB_HEADER_FLAGS     0x00000003 /* bit 0: page-align modules, bit 1: memory info */
#define MB_BOOT_MAGIC       0x2BADB002 /* EAX at entry */

/* Physical (= virtual, identity mapped) load address of every image. */
#define RT_LOAD_ADDR        0x00100000

/* GDT selectors (see gdt.S). */
#define SEL_NULL            0x00
#define SEL_CODE32          0x08 /* 32-bit ring-0 code, base 0, limit 4 GiB */
#define SEL_DATA            0x10 /* ring-0 data, base 0, limit 4 GiB */
#define SEL_CODE64          0x18 /* 64-bit ring-0 code (L=1) */
#define SEL_NOT_PRESENT     0x20 /* data descriptor with P=0, for #NP tests */
#define GDT_ENTRIES         5
#define GDT_LIMIT           (GDT_ENTRIES * 8 - 1)

/* Size of the boot stack in .bss. */
#define RT_STACK_SIZE       0x10000

/* Long mode: the identity map covers [0, RT_IDMAP_SIZE) with 2 MiB pages. */
#define RT_IDMAP_SIZE       0x40000000 /* 1 GiB */

/* Exception vectors. */
#define VEC_DE  0   /* divide error */
#define VEC_DB  1
#define VEC_NMI 2
#define VEC_BP  3
#define VEC_OF  4
#define VEC_BR  5
#define VEC_UD  6   /* invalid opcode */
#define VEC_NM  7
#define VEC_DF  8
#define VEC_TS  10
#define VEC_NP  11  /* segment not present */
#define VEC_SS  12
#define VEC_GP  13  /* general protection */
#define VEC_PF  14  /* page fault */
#define VEC_MF  16
#define VEC_AC  17
#define VEC_MC  18
#define VEC_XM  19
#define VEC_SYSCALL 0x80 /* software interrupt vector installed by the runtime */

#endif
