/*
 * payloads.h - the L2 payloads of l1hv (payloads.S) and the constants L1
 * and L2 share. Safe to include from assembly.
 */
#ifndef L1HV_PAYLOADS_H
#define L1HV_PAYLOADS_H

/* benign: sum of i*i for i = 1..100 = 100 * 101 * 201 / 6 = 338350 = 0x529AE */
#define BENIGN_SUM_SQUARES      0x529AE
/* benign: F(50), with F(0) = 0, F(1) = 1: 12586269025 = 0x2_EE33_3961
 * (F(40) = 102334155, F(45) = 1134903170, F(50) = 12586269025). */
#define BENIGN_FIB50            0x2EE333961

/* port-io: the byte L2 writes to port 0x80, the port L2 reads (intercepted;
 * nothing decodes it on a PC) and the value L1 hands back for it. */
#define PORTIO_POST_PORT        0x80
#define PORTIO_POST_VALUE       0x5A
#define PORTIO_IN_PORT          0x5F0
#define PORTIO_IN_VALUE         0xC0FFEE42

/*
 * ept: L1's EPT backs L2-physical [0, 2 MiB) with L1-physical
 * [EPT_L2_BASE, EPT_L2_BASE + 2 MiB), which holds a copy of L1's image at
 * the same offsets (so L2 runs L1's code and page tables, and its
 * addresses are L2-physical ones). 4 MiB: above the image (every guest
 * fits below 4 MiB) and 2 MiB-aligned, for the 2 MiB EPT page. A few
 * L2-physical pages near 2 MiB, above the image, are special:
 */
#define EPT_L2_BASE             0x400000
#define EPT_L2_SIZE             0x200000
#define EPT_GPA_REMAP           0x1FF000 /* maps an L1 page outside that region */
#define EPT_GPA_UNMAPPED        0x1FE000 /* not present until L2 reads it */
#define EPT_GPA_READONLY        0x1FD000 /* R only until L2 writes it */
#define EPT_GPA_MISCONFIG       0x1FC000 /* W without R until L2 reads it */
#define EPT_GPA_MMIO            0x1FB000 /* L1-physical 0xFF000000: pc-testdev's buffer */
/* eptad.c's pages, under an EPT with accessed and dirty flags: */
#define EPT_GPA_AD_READ         0x1FA000 /* L2 reads it */
#define EPT_GPA_AD_WRITE        0x1F9000 /* L2 writes it */
#define EPT_GPA_FILL            0x1F0000 /* L2 writes EPT_PML_FILL_PAGES pages from here */
#define EPT_PML_FILL_PAGES      5
#define EPT_GPA_LOWEST_SPECIAL  EPT_GPA_FILL
/* The words L1 plants and L2 reads or writes. Their low dwords differ,
 * so the 32-bit payloads can tell them apart. */
#define EPT_MARKER_COPY         0xE970000000000001 /* ept_marker in the copy */
#define EPT_MARKER_L1           0xE970000000000002 /* ept_marker in L1's image */
#define EPT_MARKER_L2           0xE970000000000003 /* what L2 writes there */
#define EPT_WORD_REMAP          0xE970000000000004
#define EPT_WORD_UNMAPPED       0xE970000000000005
#define EPT_WORD_READONLY       0xE970000000000006
#define EPT_WORD_L2_WRITE       0xE970000000000007 /* L2's write to the read-only page */
#define EPT_WORD_MISCONFIG      0xE970000000000008
/* The 1 GiB EPT page of the unrestricted payloads: L2-physical
 * [1 GiB, 2 GiB) is L1-physical [0, 1 GiB). */
#define EPT_GPA_1G_ALIAS        0x40000000
/* Real mode: code at CS:0 = L2-physical 0x8000, a dword at DS:0x10 =
 * L2-physical 0x9010, both in the copy region (L1-physical 0x9000 is the
 * multiboot information). */
#define EPT_REAL_CS             0x0800
#define EPT_REAL_DS             0x0900
#define EPT_REAL_DATA_OFF       0x10
#define EPT_WORD_REAL           0xE9700009

/* The 32-bit storm payload's selectors (its own GDT, payloads.S). */
#define STORM_SEL_CODE          0x08 /* ring-0 32-bit code */
#define STORM_SEL_DATA          0x10 /* ring-0 data */
#define STORM_SEL_UCODE         0x1B /* 0x18 | RPL 3: ring-3 32-bit code */
#define STORM_SEL_UDATA         0x23 /* 0x20 | RPL 3: ring-3 data */
#define STORM_SEL_TSS           0x28

#ifndef __ASSEMBLER__
#include <stdint.h>

/* 64-bit payloads (.text) */
extern char l2_benign[], l2_port_io[], l2_triple_fault[];
/* rdtsc: RDTSC, VMCALL; RDMSR of IA32_TSC (at l2_rdtsc_rdmsr), VMCALL */
extern char l2_rdtsc[], l2_rdtsc_rdmsr[];
extern char l2_pause_loop[];
/* cr8: MOV from and to CR8, then VMCALL at l2_cr8_after (tpr.c) */
extern char l2_cr8[], l2_cr8_after[];
extern char l2_stack_top[];
/* 32-bit storm payload (.boot, which build.rs disassembles as i386) */
extern char l2_ac_storm[];
/* 32-bit paged payload (.boot) clearing CR0.PG, and its MOV to CR0 */
extern char l2_cr0_clear_pg[], l2_cr0_clear_pg_mov[];
extern char l2s_gdt[], l2s_gdt_end[], l2s_idt[], l2s_idt_end[], l2s_tss[];
extern char l2s_kstack_top[];
/* ept payloads: the 64-bit one and its faulting instructions, the flat
 * 32-bit one (.boot), and the real-mode code L1 copies to L2-physical
 * EPT_REAL_CS << 4 (read-only data in the image). */
extern char l2_ept[], l2_ept_read_unmapped[], l2_ept_write_ro[], l2_ept_read_misconfig[];
extern char l2_ept_flat32[];
extern char l2_ept_real16[], l2_ept_real16_vmcall[], l2_ept_real16_end[];
/* ... and its second entry point, which clears CR0.NE (at the _mov label) */
extern char l2_ept_real16_cr0[], l2_ept_real16_cr0_mov[];
/* eptad payloads: reads and writes (VMCALL after each step), and the
 * writes that fill the page-modification log (at the _write label) */
extern char l2_eptad[], l2_eptad_fill[], l2_eptad_fill_write[];
extern uint64_t ept_marker;
#endif

#endif
