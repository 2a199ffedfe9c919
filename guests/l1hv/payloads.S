/*
 * payloads.S - the L2 guests l1hv launches.
 *
 * Without EPT, L2's guest-physical addresses are L1's physical addresses,
 * and without unrestricted guest L2 runs with CR0.PE = PG = 1 (SDM Vol. 3C
 * §27.3.1.1): the 64-bit payloads share L1's identity-mapped page tables,
 * the 32-bit storm payload gets a 32-bit page directory of 4 MiB pages
 * from L1 (vmcs.c). The ept payloads run under L1's EPT on a copy of the
 * image at the same L2-physical addresses (ept.c), so the same code and
 * page tables serve.
 *
 * Everything is position-dependent and lives in the image, below 4 MiB.
 */
#include "payloads.h"
#include "acstorm.inc"

#define COM1     0x3F8
#define COM1_LSR 0x3FD
#define LSR_THRE 0x20

/*
 * The body of l2_puts64 and l2_puts32: writes the NUL-terminated string at
 * `ptr` (RSI or ESI) to COM1, polling LSR.THRE before each byte; returns.
 */
.macro L2_PUTS ptr
1:	movb (\ptr), %bl
	testb %bl, %bl
	jz 3f
	movw $COM1_LSR, %dx
2:	inb %dx, %al
	testb $LSR_THRE, %al
	jz 2b
	movw $COM1, %dx
	movb %bl, %al
	outb %al, %dx
	inc \ptr
	jmp 1b
3:	ret
.endm

/* ======================================================== 64-bit payloads */

	.text
	.code64

/*
 * benign: two computations with known results, each handed to L1 with
 * VMCALL in RAX (0F 01 C1, 3 bytes). L1 advances RIP and resumes after the
 * first; it does not resume after the second.
 */
	.globl l2_benign
l2_benign:
	/* RAX = sum of i*i, i = 1..100 (payloads.h: 338350) */
	xorl %eax, %eax
	movl $1, %ecx
1:	movl %ecx, %edx
	imull %edx, %edx
	addq %rdx, %rax
	incl %ecx
	cmpl $100, %ecx
	jbe 1b
	vmcall
	/* (a, b) = (F(0), F(1)); fifty times (a, b) = (b, a + b): a = F(50) */
	xorl %eax, %eax
	movl $1, %edx
	movl $50, %ecx
2:	leaq (%rax,%rdx), %rsi
	movq %rdx, %rax
	movq %rsi, %rdx
	decl %ecx
	jnz 2b
	vmcall
3:	hlt                             /* HLT exiting is on: another exit */
	jmp 3b

/*
 * pause-loop: a spin loop of PAUSEs at CPL 0, for PAUSE-loop exiting.
 */
	.globl l2_pause_loop
l2_pause_loop:
	pause
	jmp l2_pause_loop

/*
 * cr8: RBX = CR8 (4 bytes), CR8 = RAX (4 bytes), RDX = CR8, CR8 = RCX,
 * then VMCALL at l2_cr8_after; with the TPR shadow each works on VTPR
 * (tpr.c).
 */
	.globl l2_cr8, l2_cr8_after
l2_cr8:
	movq %cr8, %rbx
	movq %rax, %cr8
	movq %cr8, %rdx
	movq %rcx, %cr8
l2_cr8_after:
	vmcall

/*
 * rdtsc: the TSC as RDTSC reads it, handed to L1 with VMCALL in RAX; after
 * L1 resumes, IA32_TSC as RDMSR reads it (L1's MSR bitmap lets it through),
 * the same way; then HLT.
 */
	.globl l2_rdtsc, l2_rdtsc_rdmsr
l2_rdtsc:
	rdtsc
	shlq $32, %rdx
	orq %rdx, %rax
	vmcall
l2_rdtsc_rdmsr:
	movl $0x10, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	vmcall
1:	hlt
	jmp 1b

/*
 * port-io: a line straight to COM1 (L1 does not intercept 0x3F8-0x3FF, so
 * it reaches the machine's UART), then OUT 0x80 and IN from PORTIO_IN_PORT,
 * both intercepted through L1's I/O bitmap A, then VMCALL with what the IN
 * returned.
 */
	.globl l2_port_io
l2_port_io:
	leaq l2_hello(%rip), %rsi
	call l2_puts64
	movb $PORTIO_POST_VALUE, %al
	outb %al, $PORTIO_POST_PORT     /* E6 80: immediate port, 1 byte, out */
	movw $PORTIO_IN_PORT, %dx
	xorl %eax, %eax
	inl %dx, %eax                   /* ED: port in DX, 4 bytes, in */
	vmcall
1:	hlt
	jmp 1b

/*
 * triple-fault: L1 gives this payload IDTR.limit = 0. The #UD cannot be
 * delivered (vector 6 is beyond the limit: #GP), nor the #GP, so a double
 * fault; its delivery fails as well, which is a triple fault (SDM Vol. 3A
 * §6.15, "Interrupt 8"): a VM exit with reason 2 (Vol. 3C §26.2).
 */
	.globl l2_triple_fault
l2_triple_fault:
	ud2
1:	jmp 1b

/*
 * ept: under L1's EPT (ept.c). L2-physical addresses here are linear ones
 * (L1's page tables map [0, 1 GiB) one to one), backed by L1's copy of the
 * image; each VMCALL hands L1 a result in RAX. The labelled instructions
 * are the ones whose accesses L1's EPT refuses at first: L1 fixes its EPT
 * and resumes at the same RIP, and the access is made again.
 */
	.globl l2_ept, l2_ept_read_unmapped, l2_ept_write_ro, l2_ept_read_misconfig
l2_ept:
	movq ept_marker(%rip), %rax     /* the copy's value, not L1's */
	vmcall
	movabsq $EPT_MARKER_L2, %rax
	movq %rax, ept_marker(%rip)     /* lands in the copy */
	movq EPT_GPA_REMAP, %rax        /* absolute address: 48 8B 04 25 disp32 */
	vmcall
l2_ept_read_unmapped:
	movq EPT_GPA_UNMAPPED, %rax     /* not present: EPT violation, read */
	vmcall
	movq EPT_GPA_READONLY, %rax     /* readable */
	movabsq $EPT_WORD_L2_WRITE, %rcx
l2_ept_write_ro:
	movq %rcx, EPT_GPA_READONLY     /* not writable: EPT violation, write */
	vmcall
l2_ept_read_misconfig:
	movq EPT_GPA_MISCONFIG, %rax    /* W without R: EPT misconfiguration */
	vmcall
	/* A device page behind L1's EPT: L0 emulates each of these, whatever
	 * the instruction. */
	movl $0x10, EPT_GPA_MMIO
	addl $5, EPT_GPA_MMIO
	lock incl EPT_GPA_MMIO
	movl EPT_GPA_MMIO, %eax
	vmcall
1:	hlt
	jmp 1b

/*
 * eptad: under an EPT with accessed and dirty flags (eptad.c). A read of
 * one page and a write of another; then, after L1 cleared the written
 * page's flags and executed INVEPT, a read of it, and a write.
 */
	.globl l2_eptad
l2_eptad:
	movq EPT_GPA_AD_READ, %rax
	movq %rax, EPT_GPA_AD_WRITE
	vmcall
	movq EPT_GPA_AD_WRITE, %rax
	vmcall
	movq %rax, EPT_GPA_AD_WRITE
	vmcall
1:	hlt
	jmp 1b

/* eptad-fill: writes RCX = EPT_PML_FILL_PAGES, 4, ... 1 to the first
 * quadword of each page from EPT_GPA_FILL up, then VMCALL. */
	.globl l2_eptad_fill, l2_eptad_fill_write
l2_eptad_fill:
	movl $EPT_GPA_FILL, %edi
	movl $EPT_PML_FILL_PAGES, %ecx
l2_eptad_fill_write:
	movq %rcx, (%rdi)
	addq $0x1000, %rdi
	decl %ecx
	jnz l2_eptad_fill_write
	vmcall
1:	hlt
	jmp 1b

/* RSI = NUL-terminated string. */
l2_puts64:
	L2_PUTS %rsi

	.section .rodata
l2_hello:
	.asciz "l2: hello through L0's serial port (COM1 is not intercepted by L1)\n"
l2_storm_msg:
	.asciz "l2: ac-storm: CR0.AM=1, #AC gate to ring 3, ring-3 push with EFLAGS.AC=1 and ESP=2 mod 4\n"

	.section .bss
	.balign 16
	.skip 16384
	.globl l2_stack_top
l2_stack_top:

/* ======================================================== 32-bit payload */

/*
 * ac-storm: CVE-2015-5307, from the macros guests/ac-storm uses as well
 * (runtime/include/acstorm.inc). L2 starts here in 32-bit protected mode
 * with 32-bit paging (4 MiB pages, U/S = 1 so ring 3 may use them), CPL 0,
 * CS = 0x08, SS = DS = 0x10 of l2s_gdt. It loads its GDT, TSS and IDT,
 * sets CR0.AM and IRETs to ring 3 with EFLAGS.AC = 1 and ESP = 2 mod 4.
 * The first PUSH raises #AC; the #AC gate leads to ring-3 code, so the
 * delivery pushes its frame at CPL 3 onto the same misaligned stack and
 * raises #AC again, which is benign after #AC (SDM Vol. 3A Table 6-5):
 * delivery after delivery, no instruction boundary. (In 64-bit mode the
 * CPU aligns RSP before pushing a frame, so the loop needs 32-bit mode.)
 *
 * The code is in .boot, which link64.ld keeps with the 32-bit multiboot
 * entry and build.rs disassembles as i386.
 */
	.section .boot, "ax"
	.code32
	.globl l2_ac_storm
l2_ac_storm:
	cli
	movl $l2_storm_msg, %esi
	call l2_puts32
	/* L1 does not own CR0.AM: setting it does not exit. */
	AC_STORM_ENTER l2s_, l2s_user_, STORM_SEL_DATA, STORM_SEL_TSS, STORM_SEL_UCODE, STORM_SEL_UDATA

/* ESI = NUL-terminated string. */
l2_puts32:
	L2_PUTS %esi

/*
 * ept-flat32: an unrestricted guest in 32-bit protected mode with paging
 * off (CR0.PE = 1, PG = 0), under L1's second EPT: L2-physical [0, 2 MiB)
 * is a 2 MiB page on L1's copy, [1 GiB, 2 GiB) a 1 GiB page on
 * L1-physical [0, 1 GiB). The same variable read both ways: EAX from the
 * copy (what l2_ept wrote there), EDX from L1's image.
 */
	.globl l2_ept_flat32
l2_ept_flat32:
	movl ept_marker, %eax
	movl ept_marker + EPT_GPA_1G_ALIAS, %edx
	vmcall
1:	hlt
	jmp 1b

/*
 * cr0-clear-pg: 32-bit protected mode with 32-bit paging, set up as the
 * storm payload is (L2_PROT32: CS = STORM_SEL_CODE of l2s_gdt, 4 MiB
 * pages), but not an unrestricted guest: CR0.PE and PG are fixed to 1 in
 * VMX operation (SDM Vol. 3C §24.8, §26.3), so the MOV to CR0 that clears
 * PG is #GP(0), which L1 intercepts. Outside VMX operation the same MOV
 * would simply turn paging off (no long mode here, EFER = 0). CR0.NE stays
 * as it was.
 */
	.globl l2_cr0_clear_pg, l2_cr0_clear_pg_mov
l2_cr0_clear_pg:
	movl %cr0, %eax
	andl $0x7FFFFFFF, %eax          /* PG (bit 31) clear, everything else kept */
l2_cr0_clear_pg_mov:
	movl %eax, %cr0                 /* 0F 22 C0 */
	vmcall                          /* not reached if the MOV faults */
1:	hlt
	jmp 1b

	.globl l2s_gdt, l2s_gdt_end, l2s_idt, l2s_idt_end, l2s_tss, l2s_kstack_top
	AC_STORM_TABLES l2s_
	.set l2s_idt_end, l2s_idt + 18 * 8

/*
 * ept-real16: real-address mode code that L1 copies to L2-physical
 * EPT_REAL_CS << 4 and runs as an unrestricted guest with CR0.PE = PG = 0,
 * CS = EPT_REAL_CS, IP = 0, DS = EPT_REAL_DS. It reads the dword L1
 * planted at DS:EPT_REAL_DATA_OFF and hands it over with VMCALL. link64.ld
 * has no .text16 output section, so it travels as read-only data; the
 * instructions are MOV (to CR0 as well), VMCALL, HLT and JMP only.
 */
	.section .rodata.l2_real16, "a"
	.code16
	.globl l2_ept_real16, l2_ept_real16_vmcall, l2_ept_real16_end
	.globl l2_ept_real16_cr0, l2_ept_real16_cr0_mov
l2_ept_real16:
	movl EPT_REAL_DATA_OFF, %eax    /* 66 A1 disp16: DS-relative */
l2_ept_real16_vmcall:
	vmcall
1:	hlt
	jmp 1b
/*
 * A second entry point in the same copy (ept.c's cr0-ne check): a MOV to
 * CR0 of 0x10 (ET only: NE clear, PE = PG = 0 as they are). NE is fixed
 * to 1 even for an unrestricted guest (SDM Vol. 3C §24.8), so the MOV is
 * #GP - in real-address mode, with no error code.
 */
l2_ept_real16_cr0:
	movl $0x10, %eax                /* 66 B8 imm32 */
l2_ept_real16_cr0_mov:
	movl %eax, %cr0                 /* 0F 22 C0 */
	vmcall                          /* not reached if the MOV faults */
2:	hlt
	jmp 2b
l2_ept_real16_end:
	.code64

	.section .note.GNU-stack, "", @progbits
