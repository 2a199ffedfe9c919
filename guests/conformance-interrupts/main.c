/*
 * conformance-interrupts - RFLAGS.IF and the instructions and gates that
 * change it, in 64-bit long mode, without an interrupt controller.
 *
 * Interrupt gates clear IF, trap gates keep it; IRETQ and POPF restore it
 * subject to CPL and IOPL; CLI/STI at CPL 3 need IOPL 3 (#GP(0) otherwise);
 * POPF at CPL 3 with IOPL < 3 leaves IF alone without faulting; HLT at
 * CPL 3 is #GP(0); the single-step #DB after STI. Exceptions only (ud2,
 * div, privileged instructions): no INT n, which kvm_pvm cannot run. NMI
 * blocking needs an NMI source and is not tested. The 8259s are masked
 * (kit_init), so IF = 1 windows see no IRQ.
 */
#include "kit.h"

#define IF_OF(f) ((unsigned long)((f) >> 9 & 1))

/* ------------------------------------------------ ring-3 snippets */

USER_FAULTING(u_cli, "cli");
USER_FAULTING(u_sti, "sti");
USER_FAULTING(u_hlt, "hlt");
/* CLI / STI allowed (IOPL 3): RBX = RFLAGS after CLI, RCX = after STI. */
USER_CODE(u_cli_sti, "cli\n\tpushfq\n\tpopq %rbx\n\tsti\n\tpushfq\n\tpopq %rcx\n\tcli");
/* POPF with image RDI, RBX = RFLAGS after. */
USER_CODE(u_popf, "pushq %rdi\n\tpopfq\n\tpushfq\n\tpopq %rbx");
/* ud2 at CPL 3, resumed after it: RBX = RFLAGS after the handler's IRETQ. */
USER_CODE(u_ud, "u_ud_f: ud2\n" "u_ud_r: pushfq\n\tpopq %rbx");
USER_LABELS(u_ud);
/* IRETQ at CPL 3 to CPL 3 with flags image RDI: RBX = RFLAGS after. */
USER_CODE(u_iret, "movq %rsp, %rcx\n\tpushq $0x33\n\tpushq %rcx\n\tpushq %rdi\n\t"
		  "pushq $0x3B\n\tpushq $u_iret_next\n\tiretq\n"
		  "u_iret_next: pushfq\n\tpopq %rbx");
extern char u_cli_sti[], u_popf[], u_iret[];

/* ------------------------------------------------ CPL 0 */

extern char st_sti[], st_n1[], st_n2[], st_cli[], st_end[];

static void step_hook(struct trap_frame *f)
{
	if (f->vector != VEC_DB && kit_resume)
		f->ip = kit_resume;
}

static void cpl0_checks(void)
{
	uintptr_t after;

	/* Interrupt gate: IF = 0 in the handler, 1 in the image; IRETQ puts it
	 * back. The ud2 sits in the STI shadow: exceptions are not blocked by it. */
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n\tsti\n1: ud2\n2: pushfq\n\t"
			 "popq %[a]\n\tcli"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume), [a] "=r"(after)
			 :
			 : "memory");
	report("interrupt-gate-clears-if",
	       kit_nev == 1 && kit_ev[0].ip == kit_fault_ip && (kit_ev[0].flags & FLAGS_IF) &&
		       !(kit_ev[0].hflags & FLAGS_IF),
	       "image IF %lu, handler IF %lu", IF_OF(kit_ev[0].flags), IF_OF(kit_ev[0].hflags));
	report("iretq-restores-if", kit_nev == 1 && (after & FLAGS_IF), "IF after the handler's iretq %lu",
	       IF_OF(after));
	report("exception-in-sti-shadow-delivered",
	       kit_nev == 1 && kit_ev[0].vector == VEC_UD && kit_ev[0].ip == kit_fault_ip,
	       "%s: the STI shadow blocks interrupts, not exceptions", kit_ev0());

	/* The MOV SS shadow does not block a fault of the next instruction. */
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n\tmovl %%ss, %%eax\n\t"
			 "movl %%eax, %%ss\n1: ud2\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "eax", "memory");
	kit_expect("exception-in-mov-ss-shadow-delivered", VEC_UD, 0, kit_fault_ip);

	/* Trap gate: IF unchanged (1) in the handler. */
	kit_gate_type(VEC_UD, GATE_TRAP);
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n\tsti\n1: ud2\n2: cli"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "memory");
	kit_restore();
	report("trap-gate-keeps-if",
	       kit_nev == 1 && (kit_ev[0].flags & FLAGS_IF) && (kit_ev[0].hflags & FLAGS_IF),
	       "image IF %lu, handler IF %lu", IF_OF(kit_ev[0].flags), IF_OF(kit_ev[0].hflags));

	/* Trap gate with IF = 0 at the fault: IF stays 0. */
	kit_gate_type(VEC_UD, GATE_TRAP);
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n\tcli\n1: ud2\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "memory");
	kit_restore();
	report("trap-gate-if0-stays-0",
	       kit_nev == 1 && !(kit_ev[0].flags & FLAGS_IF) && !(kit_ev[0].hflags & FLAGS_IF),
	       "image IF %lu, handler IF %lu", IF_OF(kit_ev[0].flags), IF_OF(kit_ev[0].hflags));

	/* IRETQ at CPL 0 loads IF from the image: 0 -> 1 and 1 -> 0. */
	uintptr_t f_set, f_clr;
	__asm__ volatile("cli\n\tmovq %%rsp, %%rcx\n\tpushq %[ss]\n\tpushq %%rcx\n\tpushfq\n\t"
			 "orq $0x200, (%%rsp)\n\tpushq %[cs]\n\tpushq $1f\n\tiretq\n"
			 "1: pushfq\n\tpopq %[a]\n\t"
			 "movq %%rsp, %%rcx\n\tpushq %[ss]\n\tpushq %%rcx\n\tpushfq\n\t"
			 "andq $~0x200, (%%rsp)\n\tpushq %[cs]\n\tpushq $2f\n\tiretq\n"
			 "2: pushfq\n\tpopq %[b]\n\tcli"
			 : [a] "=&r"(f_set), [b] "=&r"(f_clr)
			 : [ss] "i"(K_DS), [cs] "i"(K_CS)
			 : "rcx", "memory", "cc");
	report("iretq-cpl0-loads-if", (f_set & FLAGS_IF) && !(f_clr & FLAGS_IF),
	       "IF after iretq of IF=1: %lu, of IF=0: %lu", IF_OF(f_set), IF_OF(f_clr));

	/* POPF at CPL 0 loads IF; CLI / STI at CPL 0. */
	uintptr_t p1, p0, c0, s1;
	__asm__ volatile("cli\n\tpushfq\n\torq $0x200, (%%rsp)\n\tpopfq\n\tpushfq\n\tpopq %[p1]\n\t"
			 "pushfq\n\tandq $~0x200, (%%rsp)\n\tpopfq\n\tpushfq\n\tpopq %[p0]\n\t"
			 "sti\n\tpushfq\n\tpopq %[s1]\n\tcli\n\tpushfq\n\tpopq %[c0]"
			 : [p1] "=&r"(p1), [p0] "=&r"(p0), [s1] "=&r"(s1), [c0] "=&r"(c0)
			 :
			 : "memory", "cc");
	report("popf-cli-sti-cpl0",
	       (p1 & FLAGS_IF) && !(p0 & FLAGS_IF) && (s1 & FLAGS_IF) && !(c0 & FLAGS_IF),
	       "popf 1 -> %lu, popf 0 -> %lu, sti -> %lu, cli -> %lu", IF_OF(p1), IF_OF(p0),
	       IF_OF(s1), IF_OF(c0));

	/* Single-step across STI: the #DB for STI itself is not held back by
	 * the STI interrupt shadow (only maskable interrupts are): one #DB
	 * after each instruction, the one after STI with IF = 1 in the image. */
	kit_arm();
	kit_limit = 16;
	kit_hook = step_hook;
	__asm__ volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n"
			 "nop\n"
			 "st_sti: sti\n"
			 "st_n1: nop\n"
			 "st_n2: cli\n"
			 "st_cli: pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq\n"
			 "st_end:"
			 :
			 :
			 : "memory", "cc");
	int ok = kit_nev == 7 && kit_ev[0].ip == (uintptr_t)st_sti && kit_ev[1].ip == (uintptr_t)st_n1 &&
		 kit_ev[2].ip == (uintptr_t)st_n2 && kit_ev[3].ip == (uintptr_t)st_cli &&
		 !(kit_ev[0].flags & FLAGS_IF) && (kit_ev[1].flags & FLAGS_IF) &&
		 !(kit_ev[3].flags & FLAGS_IF);
	report("single-step-db-after-sti", ok,
	       "%u #DB; after sti: ip %#lx IF %lu; after cli: ip %#lx IF %lu (want 7, %#lx IF 1, %#lx IF 0)",
	       kit_nev, (unsigned long)kit_ev[1].ip, IF_OF(kit_ev[1].flags),
	       (unsigned long)kit_ev[3].ip, IF_OF(kit_ev[3].flags), (unsigned long)st_n1,
	       (unsigned long)st_cli);
	/* The single-step #DB goes through an interrupt gate: IF = 0 in its
	 * handler, although the image after STI has IF = 1. */
	report("db-interrupt-gate-clears-if", kit_nev >= 2 && !(kit_ev[1].hflags & FLAGS_IF),
	       "handler IF %lu after sti", IF_OF(kit_ev[1].hflags));
}

/* ------------------------------------------------ CPL 3 */

static void cpl3_checks(void)
{
	/* IOPL 0 < CPL 3: CLI, STI are #GP(0); HLT is #GP(0) at any IOPL. */
	KIT_USER_FAULT("cli-cpl3-iopl0-gp", u_cli, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("sti-cpl3-iopl0-gp", u_sti, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("hlt-cpl3-gp", u_hlt, 0, 0, VEC_GP, 0);
	KIT_USER_FAULT("hlt-cpl3-iopl3-gp", u_hlt, FLAGS_IOPL3, 0, VEC_GP, 0);

	/* IOPL 3: CLI and STI work at CPL 3 (entered with IF = 1). */
	kit_arm();
	kit_user(u_cli_sti, FLAGS_IOPL3 | FLAGS_IF, 0, 0);
	report("cli-sti-cpl3-iopl3",
	       kit_user_ok && kit_nev == 0 && !(kit_uregs.bx & FLAGS_IF) && (kit_uregs.cx & FLAGS_IF),
	       "IF after cli %lu, after sti %lu (want 0, 1)", IF_OF(kit_uregs.bx), IF_OF(kit_uregs.cx));

	/* POPF at CPL 3, IOPL 0: IF is left alone, no fault. */
	kit_arm();
	kit_user(u_popf, 0, FLAGS_IF | FLAGS_FIXED, 0);
	report("popf-cpl3-iopl0-cannot-set-if", kit_user_ok && kit_nev == 0 && !(kit_uregs.bx & FLAGS_IF),
	       "IF 0, popf of IF=1 -> %lu (want 0)", IF_OF(kit_uregs.bx));
	kit_arm();
	kit_user(u_popf, FLAGS_IF, FLAGS_FIXED, 0);
	report("popf-cpl3-iopl0-cannot-clear-if", kit_user_ok && kit_nev == 0 && (kit_uregs.bx & FLAGS_IF),
	       "IF 1, popf of IF=0 -> %lu (want 1)", IF_OF(kit_uregs.bx));

	/* POPF at CPL 3, IOPL 3: IF is loaded (the image keeps IOPL 3). */
	kit_arm();
	kit_user(u_popf, FLAGS_IOPL3, FLAGS_IOPL3 | FLAGS_IF | FLAGS_FIXED, 0);
	uintptr_t set = kit_uregs.bx;
	kit_arm();
	kit_user(u_popf, FLAGS_IOPL3 | FLAGS_IF, FLAGS_IOPL3 | FLAGS_FIXED, 0);
	report("popf-cpl3-iopl3-loads-if", kit_user_ok && (set & FLAGS_IF) && !(kit_uregs.bx & FLAGS_IF),
	       "popf IF=1 -> %lu, IF=0 -> %lu", IF_OF(set), IF_OF(kit_uregs.bx));

	/* IRETQ at CPL 3 loads IF only if CPL <= IOPL: with IOPL 0 the image's
	 * IF = 1 is ignored, with IOPL 3 it is loaded. */
	kit_arm();
	kit_user(u_iret, 0, FLAGS_IF | FLAGS_FIXED, 0);
	uintptr_t i0 = kit_uregs.bx;
	int ok0 = kit_user_ok && kit_nev == 0;
	kit_arm();
	kit_user(u_iret, FLAGS_IOPL3, FLAGS_IOPL3 | FLAGS_IF | FLAGS_FIXED, 0);
	report("iretq-cpl3-iopl0-keeps-if", ok0 && !(i0 & FLAGS_IF), "IF after iretq of IF=1: %lu (want 0)",
	       IF_OF(i0));
	report("iretq-cpl3-iopl3-loads-if", kit_user_ok && kit_nev == 0 && (kit_uregs.bx & FLAGS_IF),
	       "IF after iretq of IF=1: %lu (want 1)", IF_OF(kit_uregs.bx));

	/* An exception at CPL 3 with IF = 1 through a DPL-0 interrupt gate:
	 * delivered (the gate DPL only matters for INT n), IF = 0 in the
	 * handler, 1 in the image; IRETQ back to ring 3 restores IF = 1. */
	kit_arm();
	kit_resume = (uintptr_t)u_ud_r;
	kit_user(u_ud, FLAGS_IF, 0, 0);
	report("cpl3-exception-dpl0-gate-delivered",
	       kit_nev == 1 && kit_ev[0].vector == VEC_UD && kit_ev[0].ip == (uintptr_t)u_ud_f &&
		       kit_ev[0].cs == U_CS64,
	       "%s (gate DPL 0)", kit_ev0());
	report("cpl3-interrupt-gate-clears-if",
	       kit_nev == 1 && (kit_ev[0].flags & FLAGS_IF) && !(kit_ev[0].hflags & FLAGS_IF),
	       "image IF %lu, handler IF %lu", IF_OF(kit_ev[0].flags), IF_OF(kit_ev[0].hflags));
	report("iretq-to-cpl3-restores-if", kit_user_ok && (kit_uregs.bx & FLAGS_IF),
	       "IF at CPL 3 after the handler %lu", IF_OF(kit_uregs.bx));

	/* Same through a trap gate: IF stays 1 in the handler. */
	kit_gate_type(VEC_UD, GATE_TRAP);
	kit_arm();
	kit_resume = (uintptr_t)u_ud_r;
	kit_user(u_ud, FLAGS_IF, 0, 0);
	kit_restore();
	report("cpl3-trap-gate-keeps-if",
	       kit_nev == 1 && (kit_ev[0].flags & FLAGS_IF) && (kit_ev[0].hflags & FLAGS_IF),
	       "image IF %lu, handler IF %lu", IF_OF(kit_ev[0].flags), IF_OF(kit_ev[0].hflags));

	/* A gate with DPL 3 changes nothing for exceptions either. */
	kit_gate_set(VEC_UD, (void *)kit_stub(VEC_UD), K_CS, GATE_INT, 3, 0, 1);
	kit_arm();
	kit_resume = (uintptr_t)u_ud_r;
	kit_user(u_ud, 0, 0, 0);
	kit_restore();
	report("cpl3-exception-dpl3-gate-delivered",
	       kit_nev == 1 && kit_ev[0].vector == VEC_UD && kit_ev[0].ip == (uintptr_t)u_ud_f &&
		       kit_ev[0].frame_top == KIT_RSP0_TOP,
	       "%s on RSP0", kit_ev0());
}

int main(void)
{
	kit_init();
	cpl0_checks();
	cpl3_checks();
	report_done();
}
