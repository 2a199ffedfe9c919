/*
 * conformance-privilege - CPL transitions in 64-bit long mode.
 *
 * Ring 3 is entered with IRETQ (kit_user) or a far RET, and left through an
 * exception delivered to ring 0: the handler must see CS.RPL = 3, the ring-3
 * SS:RSP in the frame, and the frame on the TSS.RSP0 stack. Privileged
 * instructions at CPL 3, I/O with IOPL 0 and 3, data-segment loads and far
 * transfers checked against DPL, the segment-nulling rule of RET/IRET to an
 * outer level, user/supervisor paging, POPF/IRETQ and IOPL, SYSCALL/SYSRET.
 *
 * Every expected value is worked out from the SDM by hand.
 */
#include "kit.h"

/* ------------------------------------------------ ring 3 snippets */

USER_CODE(u_ud, "u_ud_f: ud2\nu_ud_r:");
USER_LABELS(u_ud);
USER_CODE(u_selectors, "movl %cs, %eax\n\tmovl %ss, %ebx");

USER_FAULTING(u_hlt, "hlt");
USER_FAULTING(u_rd_cr0, "movq %cr0, %rax");
USER_FAULTING(u_wr_cr3, "movq %rax, %cr3");
USER_FAULTING(u_rdmsr, "movl $0xC0000080, %ecx\n\t" "u_rdmsr_g: rdmsr");
USER_FAULTING(u_wrmsr, "wrmsr");
USER_FAULTING(u_lgdt, "lgdt (%rdi)");
USER_FAULTING(u_lidt, "lidt (%rdi)");
USER_FAULTING(u_ltr, "ltr %di");
USER_FAULTING(u_in, "inb $0x80, %al");
USER_FAULTING(u_out, "outb %al, $0x80");
USER_FAULTING(u_wr_dr7, "movq %rax, %dr7");
USER_FAULTING(u_invlpg, "invlpg (%rdi)");
USER_FAULTING(u_clts, "clts");
USER_FAULTING(u_swapgs, "swapgs");
USER_FAULTING(u_sysret, "sysretq");
USER_FAULTING(u_rdtsc, "rdtsc");
USER_FAULTING(u_mov_ds0, "movl %edi, %ds");
USER_FAULTING(u_mov_ss, "movl %edi, %ss");
USER_FAULTING(u_ljmp, "ljmpl *(%rdi)");
USER_FAULTING(u_lcall, "lcalll *(%rdi)");
USER_FAULTING(u_read, "movl (%rdi), %eax");
USER_FAULTING(u_write, "movl %eax, (%rdi)");

USER_CODE(u_io_ok, "inb $0x80, %al\n\toutb %al, $0x80\n\tmovw $0x80, %dx\n\tinb %dx, %al\n\toutb %al, %dx");
USER_CODE(u_rw_ok, "movl (%rdi), %eax\n\taddl $1, %eax\n\tmovl %eax, (%rdi)");
USER_CODE(u_rdtsc_ok, "rdtsc");
USER_CODE(u_sgdt, "sgdt (%rdi)\n\tsmsw %eax");

/* POPF at CPL 3: RDI holds the image to load; RBX gets PUSHF after. */
USER_CODE(u_popf, "pushq %rdi\n\tpopfq\n\tpushfq\n\tpopq %rbx\n\tcld");

/* IRETQ at CPL 3 to CPL 3 with flags image RDI; RBX gets PUSHF after. */
USER_CODE(u_iret_same, "movq %rsp, %rcx\n\tpushq $0x33\n\tpushq %rcx\n\tpushq %rdi\n\t"
		       "pushq $0x3B\n\tpushq $u_iret_same_next\n\tiretq\n"
		       "u_iret_same_next: pushfq\n\tpopq %rbx");

/* IRETQ at CPL 3 to CS 0x18 (RPL 0 < CPL): #GP(0x18). */
USER_FAULTING(u_iret_up, "movq %rsp, %rcx\n\tpushq $0x10\n\tpushq %rcx\n\tpushfq\n\t"
		    "pushq $0x18\n\tpushq $u_iret_up_r\n\t" "u_iret_up_g: iretq");

/* A far RET from ring 0 arrives here at CPL 3. */
USER_CODE(u_landing, "nop");

/* The ring-3 handler of an exception raised at CPL 3 (gate selector
 * U_CS64): RAX = saved RIP, RBX = saved CS, RCX = saved RSP, RDX = RSP. */
USER_CODE(u_handler, "movq (%rsp), %rax\n\tmovq 8(%rsp), %rbx\n\tmovq 24(%rsp), %rcx\n\t"
		     "movq %rsp, %rdx");
USER_CODE(u_de_to_handler, "xorl %ecx, %ecx\n\tmovl $1, %eax\n\txorl %edx, %edx\n"
			    "u_de_to_handler_f: divl %ecx");
extern char u_handler[], u_de_to_handler[], u_de_to_handler_f[];

/* SYSCALL from ring 3: RBX gets PUSHF after SYSRET. */
USER_CODE(u_syscall, "pushq %rdi\n\tpopfq\n\t" "u_syscall_f: syscall\n" "u_syscall_r: pushfq\n\tpopq %rbx\n\tcld");
USER_LABELS(u_syscall);

extern char u_selectors[], u_io_ok[], u_rw_ok[], u_rdtsc_ok[], u_sgdt[], u_popf[],
	u_iret_same[], u_iret_same_next[], u_landing[], u_iret_up_g[], u_rdmsr_g[];

/* ------------------------------------------------ checks */

static void entry_checks(void)
{
	/* IRETQ to CS 0x3B / SS 0x33, then #UD back to ring 0: the frame holds
	 * the ring-3 selectors and RSP, on the RSP0 stack. */
	KIT_USER_FAULT("iretq-to-ring3-and-back", u_ud, 0, 0, VEC_UD, 0);

	/* MOV from CS/SS at CPL 3 reads the selectors IRETQ loaded. */
	kit_arm();
	kit_user(u_selectors, 0, 0, 0);
	report("cpl3-reads-own-selectors",
	       kit_user_ok && kit_nev == 0 && kit_uregs.ax == U_CS64 && kit_uregs.bx == U_DS,
	       "cs %#lx ss %#lx (want %#x %#x)", (unsigned long)kit_uregs.ax,
	       (unsigned long)kit_uregs.bx, U_CS64, U_DS);

	/* RSP0 = top - 8: aligned down to 16 on the privilege change. */
	kit_tss.rsp[0] = KIT_RSP0_TOP - 8;
	kit_arm();
	kit_resume = (uintptr_t)u_ud_r;
	kit_user(u_ud, 0, 0, 0);
	kit_restore();
	report("rsp0-aligned-down-to-16",
	       kit_user_ok && kit_nev == 1 && kit_ev[0].frame_top == KIT_RSP0_TOP - 16,
	       "RSP0 %#lx, frame top %#lx (want %#lx)", (unsigned long)(KIT_RSP0_TOP - 8),
	       (unsigned long)kit_ev[0].frame_top, (unsigned long)(KIT_RSP0_TOP - 16));

	/* A gate with IST1: the IST stack wins over RSP0. */
	kit_gate_ist(VEC_UD, 1);
	kit_arm();
	kit_resume = (uintptr_t)u_ud_r;
	kit_user(u_ud, 0, 0, 0);
	kit_restore();
	report("ist-overrides-rsp0",
	       kit_user_ok && kit_nev == 1 && kit_ev[0].frame_top == KIT_IST1_TOP &&
		       kit_ev[0].cs == U_CS64,
	       "frame top %#lx (IST1 %#lx)", (unsigned long)kit_ev[0].frame_top,
	       (unsigned long)KIT_IST1_TOP);
}

static void privileged_instruction_checks(void)
{
	static struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} dt = { 7, 0 };

	KIT_USER_FAULT("hlt-cpl3-gp", u_hlt, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("mov-from-cr0-cpl3-gp", u_rd_cr0, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("mov-to-cr3-cpl3-gp", u_wr_cr3, 0, 0, VEC_GP, 0);
	kit_user_fault("rdmsr-cpl3-gp", u_rdmsr, u_rdmsr_g, u_rdmsr_r, 0, 0, VEC_GP, 0, KIT_USER_SP);
	KIT_USER_FAULT("wrmsr-cpl3-gp", u_wrmsr, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("lgdt-cpl3-gp", u_lgdt, 0, (uintptr_t)&dt, VEC_GP, 0);
	KIT_USER_FAULT("lidt-cpl3-gp", u_lidt, 0, (uintptr_t)&dt, VEC_GP, 0);
	KIT_USER_FAULT("ltr-cpl3-gp", u_ltr, 0, TSS_SEL, VEC_GP, 0);
	KIT_USER_FAULT("mov-to-dr7-cpl3-gp", u_wr_dr7, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("invlpg-cpl3-gp", u_invlpg, 0, (uintptr_t)&dt, VEC_GP, 0);
	KIT_USER_FAULT("clts-cpl3-gp", u_clts, 0, 0, VEC_GP, 0);
	/* SWAPGS is CPL-0 only: #GP(0). */
	KIT_USER_FAULT("swapgs-cpl3-gp", u_swapgs, 0, 0, VEC_GP, 0);

	/* RDTSC is allowed at CPL 3 with CR4.TSD = 0, #GP(0) with TSD = 1. */
	kit_user_clean("rdtsc-cpl3-tsd0-allowed", u_rdtsc_ok, 0, 0, "no fault");
	write_cr4(read_cr4() | CR4_TSD);
	KIT_USER_FAULT("rdtsc-cpl3-tsd1-gp", u_rdtsc, 0, 0, VEC_GP, 0);
	write_cr4(read_cr4() & ~(uintptr_t)CR4_TSD);

	/* SGDT and SMSW are not privileged (CR4.UMIP = 0): the GDTR image is
	 * the kit's GDT (limit 103), SMSW gives CR0[15:0] (PE | MP? only PE,
	 * ET, ... as set: compared with CR0 read at CPL 0). */
	static struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} g;
	kit_arm();
	kit_user(u_sgdt, 0, (uintptr_t)&g, 0);
	uintptr_t cr0 = read_cr0();
	report("sgdt-smsw-cpl3-allowed",
	       kit_user_ok && kit_nev == 0 && g.limit == sizeof(kit_gdt) - 1 &&
		       g.base == (uintptr_t)kit_gdt && (kit_uregs.ax & 0xFFFF) == (cr0 & 0xFFFF),
	       "gdtr %#x:%#lx (want %#lx:%#lx), msw %#lx (want %#lx)", g.limit,
	       (unsigned long)g.base, (unsigned long)(sizeof(kit_gdt) - 1),
	       (unsigned long)(uintptr_t)kit_gdt, (unsigned long)(kit_uregs.ax & 0xFFFF),
	       (unsigned long)(cr0 & 0xFFFF));
}

static void io_checks(void)
{
	/* IOPL 0 < CPL 3 and no I/O bitmap (iomap base beyond the TSS limit):
	 * IN and OUT fault with #GP(0). */
	KIT_USER_FAULT("in-cpl3-iopl0-gp", u_in, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("out-cpl3-iopl0-gp", u_out, 0, 0, VEC_GP, 0);
	/* IOPL 3: allowed (port 0x80, the POST port: nothing listens). */
	kit_user_clean("in-out-cpl3-iopl3-allowed", u_io_ok, FLAGS_IOPL3, 0, "in/out imm8 and dx, no fault");
}

static void segment_checks(void)
{
	static struct __attribute__((packed)) {
		uint32_t off;
		uint16_t sel;
	} far_k = { 0, K_CS };
	far_k.off = (uint32_t)(uintptr_t)u_landing;

	/* Data segment with DPL 0 into DS at CPL 3: #GP(selector). */
	KIT_USER_FAULT("mov-ds-dpl0-cpl3-gp", u_mov_ds0, 0, K_DS, VEC_GP, K_DS);
	/* SS must have RPL = DPL = CPL: 0x30 (RPL 0) at CPL 3 is #GP(0x30). */
	KIT_USER_FAULT("mov-ss-rpl-mismatch-gp", u_mov_ss, 0, 0x30, VEC_GP, 0x30);
	/* Far JMP / CALL to a non-conforming DPL-0 code segment: #GP(0x18). */
	KIT_USER_FAULT("ljmp-to-ring0-code-gp", u_ljmp, 0, (uintptr_t)&far_k, VEC_GP, K_CS);
	KIT_USER_FAULT("lcall-to-ring0-code-gp", u_lcall, 0, (uintptr_t)&far_k, VEC_GP, K_CS);
	/* IRETQ at CPL 3 to a CS with RPL 0: #GP(selector) = #GP(0x18). */
	/* (the snippet pushed the 5-word frame: RSP is 40 below the start) */
	kit_user_fault("iretq-to-inner-ring-gp", u_iret_up, u_iret_up_g, u_iret_up_r, 0, 0, VEC_GP,
		      K_CS, KIT_USER_SP - 40);
}

static void iret_null_checks(void)
{
	/* IRETQ to ring 3 nulls DS, ES, FS, GS holding DPL-0 data (0x10) and
	 * keeps DPL-3 data (0x33) (SDM IRET, RETURN-TO-OUTER-PRIVILEGE-LEVEL). */
	__asm__ volatile("movl %[ds], %%eax\n\tmovl %%eax, %%ds\n\tmovl %%eax, %%es\n\t"
			 "movl %[us], %%eax\n\tmovl %%eax, %%fs\n\tmovl %%eax, %%gs"
			 :
			 : [ds] "i"(K_DS), [us] "i"(U_DS)
			 : "rax");
	kit_arm();
	kit_user(u_landing, 0, 0, 0);
	report("iretq-outer-nulls-dpl0-data-segments",
	       kit_user_ok && kit_uregs.ds == 0 && kit_uregs.es == 0 && kit_uregs.fs == U_DS &&
		       kit_uregs.gs == U_DS,
	       "ds %#lx es %#lx fs %#lx gs %#lx (want 0 0 0x33 0x33)", (unsigned long)kit_uregs.ds,
	       (unsigned long)kit_uregs.es, (unsigned long)kit_uregs.fs, (unsigned long)kit_uregs.gs);
}

static void far_return_checks(void)
{
	/* Far RET (REX.W lret) from ring 0 to ring 3: pops RIP, CS, RSP, SS.
	 * DS, FS, GS hold DPL-0 data (0x10) and become null; ES holds the DPL-3
	 * data selector 0x33 and keeps it (SDM RET: "FOR each SegReg in ES, FS,
	 * GS, DS: IF DPL < CPL and data or non-conforming code THEN null"). */
	kit_arm();
	kit_user_ok = 0;
	kit_in_user = 1;
	__asm__ volatile("movl %[ds], %%eax\n\tmovl %%eax, %%ds\n\tmovl %%eax, %%fs\n\tmovl %%eax, %%gs\n\t"
			 "movl %[us], %%eax\n\tmovl %%eax, %%es\n\t"
			 "call 1f\n\tjmp 2f\n"
			 "1: pushq %%rbx\n\tpushq %%rbp\n\tpushq %%r12\n\tpushq %%r13\n\tpushq %%r14\n\t"
			 "pushq %%r15\n\tpushfq\n\tmovq %%rsp, kit_ksp(%%rip)\n\t"
			 "pushq %[us]\n\tpushq %[usp]\n\tpushq %[ucs]\n\tpushq %[uip]\n\tlretq\n"
			 "2:"
			 :
			 : [ds] "i"(K_DS), [us] "i"(U_DS), [ucs] "i"(U_CS64),
			   [usp] "r"((uintptr_t)KIT_USER_SP), [uip] "r"((uintptr_t)u_landing)
			 : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc");
	kit_in_user = 0;
	report("lret-to-ring3",
	       kit_user_ok && kit_nev == 0 && kit_uregs.sp == KIT_USER_SP,
	       "back from ring 3 through kit_user_exit, rsp %#lx (want %#lx)",
	       (unsigned long)kit_uregs.sp, (unsigned long)KIT_USER_SP);
	report("lret-outer-nulls-dpl0-data-segments",
	       kit_user_ok && kit_uregs.ds == 0 && kit_uregs.fs == 0 && kit_uregs.gs == 0 &&
		       kit_uregs.es == U_DS,
	       "ds %#lx es %#lx fs %#lx gs %#lx (want 0 0x33 0 0)", (unsigned long)kit_uregs.ds,
	       (unsigned long)kit_uregs.es, (unsigned long)kit_uregs.fs, (unsigned long)kit_uregs.gs);
}

extern uint64_t pd[512];

static void paging_checks(void)
{
	static volatile uint32_t user_word = 0x1234;

	/* User pages: read and write at CPL 3. */
	kit_arm();
	kit_user(u_rw_ok, 0, (uintptr_t)&user_word, 0);
	report("user-page-read-write-cpl3",
	       kit_user_ok && kit_nev == 0 && user_word == 0x1235 && kit_uregs.ax == 0x1235,
	       "word %#x (want 0x1235)", user_word);

	/* The supervisor-only 2 MiB page: #PF with U = 1 | P = 1 (error 5 for a
	 * read, 7 for a write), CR2 the address. */
	uintptr_t va = KIT_SUPER_VA + 0x10;
	KIT_USER_FAULT("pf-cpl3-read-supervisor-page", u_read, 0, va, VEC_PF, 5);
	report("pf-cpl3-read-supervisor-page-cr2", kit_ev[0].cr2 == va, "cr2 %#lx (want %#lx)",
	       (unsigned long)kit_ev[0].cr2, (unsigned long)va);
	KIT_USER_FAULT("pf-cpl3-write-supervisor-page", u_write, 0, va + 4, VEC_PF, 7);
	/* Not present from CPL 3: error U = 4. */
	KIT_USER_FAULT("pf-cpl3-read-not-present", u_read, 0, KIT_UNMAPPED_VA, VEC_PF, 4);

	/* A read-only user page (the 2 MiB page at 14 MiB with W = 0): reads
	 * work, a write is #PF error P | W | U = 7 even though CR0.WP = 0
	 * (WP only concerns supervisor writes). */
	pd[7] &= ~(uint64_t)2;
	__asm__ volatile("invlpg (%0)" : : "r"((uintptr_t)0xE00000) : "memory");
	KIT_USER_FAULT("pf-cpl3-write-read-only-page", u_write, 0, 0xE00000 + 0x20, VEC_PF, 7);
	pd[7] |= 2;
	__asm__ volatile("invlpg (%0)" : : "r"((uintptr_t)0xE00000) : "memory");
}

static void flags_checks(void)
{
	/* POPF at CPL 3 with IOPL 0: IOPL and IF are left alone (no fault),
	 * DF and CF are loaded: image IOPL 3 | IF | DF | CF gives DF | CF only. */
	kit_arm();
	kit_user(u_popf, 0, FLAGS_IOPL3 | FLAGS_IF | FLAGS_DF | FLAGS_CF | FLAGS_FIXED, 0);
	uintptr_t got = kit_uregs.bx & (FLAGS_IOPL3 | FLAGS_IF | FLAGS_DF | FLAGS_CF);
	report("popf-cpl3-keeps-iopl-and-if", kit_user_ok && kit_nev == 0 && got == (FLAGS_DF | FLAGS_CF),
	       "pushf after popf %#lx: iopl/if/df/cf %#lx (want %#x)", (unsigned long)kit_uregs.bx,
	       (unsigned long)got, FLAGS_DF | FLAGS_CF);

	/* With IOPL 3 at CPL 3, POPF still cannot change IOPL (CPL != 0). */
	kit_arm();
	kit_user(u_popf, FLAGS_IOPL3, FLAGS_FIXED, 0);
	report("popf-cpl3-cannot-lower-iopl",
	       kit_user_ok && kit_nev == 0 && (kit_uregs.bx & FLAGS_IOPL3) == FLAGS_IOPL3,
	       "iopl after popf of iopl 0: %lu (want 3)", (unsigned long)(kit_uregs.bx >> 12 & 3));

	/* POPF at CPL 0 loads IOPL. */
	uintptr_t f0 = read_flags();
	write_flags(f0 | FLAGS_IOPL3);
	uintptr_t f1 = read_flags();
	write_flags(f0);
	report("popf-cpl0-sets-iopl", (f1 & FLAGS_IOPL3) == FLAGS_IOPL3 && !(read_flags() & FLAGS_IOPL3),
	       "iopl %lu then %lu", (unsigned long)(f1 >> 12 & 3),
	       (unsigned long)(read_flags() >> 12 & 3));

	/* IRETQ at CPL 3 to CPL 3 cannot raise IOPL (CPL > 0) or set IF
	 * (CPL > IOPL): image IOPL 3 | IF | CF gives CF only. */
	kit_arm();
	kit_user(u_iret_same, 0, FLAGS_IOPL3 | FLAGS_IF | FLAGS_CF | FLAGS_FIXED, 0);
	got = kit_uregs.bx & (FLAGS_IOPL3 | FLAGS_IF | FLAGS_CF);
	report("iretq-cpl3-keeps-iopl-and-if", kit_user_ok && kit_nev == 0 && got == FLAGS_CF,
	       "iopl/if/cf after iretq %#lx (want %#x)", (unsigned long)got, FLAGS_CF);
}

/* SYSCALL entry at CPL 0: record RCX, R11, RSP and RFLAGS, take a #UD (its
 * frame shows CS and SS), then SYSRETQ. */
extern char sc_entry[], sc_entry_f[], sc_entry_r[];
volatile uintptr_t sc_rcx, sc_r11, sc_flags;
__asm__(".text\n\t.balign 16\nsc_entry:\n\t"
	"movq %rcx, sc_rcx(%rip)\n\tmovq %r11, sc_r11(%rip)\n\t"
	"pushfq\n\tpopq sc_flags(%rip)\n"
	"sc_entry_f: ud2\n"
	"sc_entry_r: sysretq\n");

static void syscall_checks(void)
{
	/* EFER.SCE = 0: SYSCALL is #UD. */
	KIT_USER_FAULT("syscall-sce0-ud", u_syscall, 0, FLAGS_FIXED, VEC_UD, 0);

	/* STAR[47:32] = 0x40 (SYSCALL CS 0x40, SS 0x48); STAR[63:48] = 0x28
	 * (SYSRETQ CS 0x28 + 16 | 3 = 0x3B, SS 0x28 + 8 | 3 = 0x33). FMASK
	 * clears TF | IF | DF | AC. */
	uint64_t efer = rdmsr(MSR_EFER);
	wrmsr(MSR_STAR, (uint64_t)0x28 << 48 | (uint64_t)SC_CS << 32);
	wrmsr(MSR_LSTAR, (uintptr_t)sc_entry);
	wrmsr(MSR_FMASK, FLAGS_TF | FLAGS_IF | FLAGS_DF | FLAGS_AC);
	wrmsr(MSR_EFER, efer | EFER_SCE);
	kit_arm();
	kit_resume = (uintptr_t)sc_entry_r;
	sc_rcx = sc_r11 = sc_flags = 0;
	uintptr_t uflags = FLAGS_DF | FLAGS_CF | FLAGS_FIXED;
	kit_user(u_syscall, 0, uflags, 0);
	volatile struct kit_event *e = &kit_ev[0];
	report("syscall-entry-state",
	       kit_nev >= 1 && e->vector == VEC_UD && e->ip == (uintptr_t)sc_entry_f &&
		       e->cs == SC_CS && e->ss == SC_DS && sc_rcx == (uintptr_t)u_syscall_r &&
		       (sc_r11 & 0xFFFF) == uflags && !(sc_flags & (FLAGS_DF | FLAGS_IF)) &&
		       e->sp == KIT_USER_SP,
	       "cs %#lx ss %#lx rcx %#lx r11 %#lx rsp %#lx flags DF %lu (want cs %#x ss %#x rcx "
	       "%#lx r11 %#lx, user rsp, DF 0)",
	       (unsigned long)e->cs, (unsigned long)e->ss, (unsigned long)sc_rcx,
	       (unsigned long)sc_r11, (unsigned long)e->sp, (unsigned long)(sc_flags >> 10 & 1),
	       SC_CS, SC_DS, (unsigned long)(uintptr_t)u_syscall_r, (unsigned long)uflags);
	report("sysret-back-to-ring3",
	       kit_user_ok && kit_nev == 1 && (kit_uregs.bx & 0xFFFF) == uflags,
	       "back at CPL 3, rflags %#lx restored from r11 (want %#lx)",
	       (unsigned long)(kit_uregs.bx & 0xFFFF), (unsigned long)uflags);

	/* SYSRET at CPL 3 (EFER.SCE = 1): #GP(0). */
	KIT_USER_FAULT("sysret-cpl3-gp", u_sysret, 0, 0, VEC_GP, 0);
	wrmsr(MSR_EFER, efer);
}

static void handler_ring_checks(void)
{
	/* #DE at CPL 3 through a gate whose selector is the ring-3
	 * code segment: no privilege change, the frame goes on the user stack
	 * (aligned down to 16), saved CS = 0x3B. */
	kit_gate_set(VEC_DE, u_handler, U_CS64, GATE_INT, 0, 0, 1);
	kit_arm();
	kit_user(u_de_to_handler, 0, 0, 0);
	kit_restore();
	report("exception-to-ring3-handler",
	       kit_user_ok && kit_nev == 0 && kit_uregs.ax == (uintptr_t)u_de_to_handler_f &&
		       kit_uregs.bx == U_CS64 && kit_uregs.cx == KIT_USER_SP && kit_uregs.dx == KIT_USER_SP - 40,
	       "rip %#lx cs %#lx rsp %#lx, frame at %#lx (want rsp - 40)", (unsigned long)kit_uregs.ax,
	       (unsigned long)kit_uregs.bx, (unsigned long)kit_uregs.cx, (unsigned long)kit_uregs.dx);

}

static void outer_gate_checks(void)
{
	/* At CPL 0, #UD (benign) through such a gate would go to an outer
	 * ring: #GP(0x38 | EXT), delivered serially:
	 * a gate to a less privileged ring is refused (SDM "IF DPL > CPL"). */
	kit_gate_set(VEC_UD, u_handler, U_CS64, GATE_INT, 0, 0, 1);
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n1: ud2\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "memory");
	kit_restore();
	kit_expect("exception-gate-to-outer-ring-gp", VEC_GP, 0x38 | 1, kit_fault_ip);

	/* The same with #DE (contributory): the #GP is contributory too, so
	 * the CPU delivers #DF (error 0) instead. */
	kit_gate_set(VEC_DE, u_handler, U_CS64, GATE_INT, 0, 0, 1);
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n\t"
			 "xorl %%ecx, %%ecx\n\tmovl $1, %%eax\n\txorl %%edx, %%edx\n1: divl %%ecx\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "eax", "ecx", "edx", "memory", "cc");
	kit_restore();
	report("df-de-gate-to-outer-ring",
	       kit_nev == 1 && kit_ev[0].vector == VEC_DF && kit_ev[0].error == 0,
	       "%s (want #DF error 0)", kit_ev0());
}

int main(void)
{
	kit_init();
	entry_checks();
	privileged_instruction_checks();
	io_checks();
	segment_checks();
	paging_checks();
	flags_checks();
	syscall_checks();
	handler_ring_checks();
	iret_null_checks();
	/* Last: kvm_pvm (the development hosts' KVM) triple-faults on a gate to
	 * an outer ring and stops with an internal error on a far RET to an
	 * outer privilege level. */
	outer_gate_checks();
	far_return_checks();
	report_done();
}
