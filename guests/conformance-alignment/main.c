/*
 * conformance-alignment - alignment check (#AC, vector 17) in 64-bit mode.
 *
 * #AC needs CR0.AM = 1, RFLAGS.AC = 1 and CPL 3 (SDM Vol. 3A §6.15
 * "Interrupt 17"): a 2-byte access at an odd address, a 4-byte access not
 * on a multiple of 4, an 8-byte access not on a multiple of 8. It is a fault
 * with error code 0, delivered here through a ring-0 interrupt gate with a
 * stack switch to TSS.RSP0. Byte accesses never fault; nothing faults at
 * CPL 0, with AC = 0 or with AM = 0. Stack pushes and pops, CALL, string
 * instructions and locked read-modify-writes are data accesses like any
 * other.
 *
 * QEMU TCG does not implement #AC at all; the reference here is the SDM and
 * the host's KVM.
 */
#include "kit.h"

static uint64_t buf[8] __attribute__((aligned(64)));
#define B ((uintptr_t)buf)

/* ------------------------------------------------ ring-3 snippets (RDI = address) */

USER_FAULTING(u_ld2, "movw (%rdi), %ax");
USER_FAULTING(u_ld4, "movl (%rdi), %eax");
USER_FAULTING(u_ld8, "movq (%rdi), %rax");
USER_FAULTING(u_st2, "movw $0x1111, (%rdi)");
USER_FAULTING(u_st4, "movl $0x22222222, (%rdi)");
USER_FAULTING(u_st8, "movq $0x33333333, (%rdi)");
USER_FAULTING(u_add4, "addl $1, (%rdi)");
USER_FAULTING(u_xchg, "xchgl %eax, (%rdi)");
USER_FAULTING(u_cx8, "cmpxchg8b (%rdi)");
USER_FAULTING(u_movsw, "movq %rdi, %rsi\n\tleaq 32(%rdi), %rdi\n\t" "u_movsw_g: movsw");
USER_FAULTING(u_stosl, "stosl");
USER_FAULTING(u_lodsq, "movq %rdi, %rsi\n\t" "u_lodsq_g: lodsq");
USER_FAULTING(u_push, "subq $4, %rsp\n\t" "u_push_g: pushq %rax\n\t" "u_push_g2: addq $4, %rsp");
USER_FAULTING(u_call, "subq $4, %rsp\n\t" "u_call_g: call u_call_g2\n\t" "u_call_g2: addq $4, %rsp");
USER_FAULTING(u_pop, "subq $4, %rsp\n\t" "u_pop_g: popq %rax\n\t" "u_pop_g2: addq $4, %rsp");
extern char u_movsw_g[], u_lodsq_g[], u_push_g[], u_push_g2[], u_call_g[], u_call_g2[],
	u_pop_g[], u_pop_g2[];

/* No fault expected. */
USER_CODE(u_aligned, "movw (%rdi), %ax\n\tmovl (%rdi), %eax\n\tmovq (%rdi), %rax\n\t"
		     "movw %ax, 2(%rdi)\n\tmovl %eax, 4(%rdi)\n\tmovq %rax, 8(%rdi)\n\t"
		     "pushq %rax\n\tpopq %rax\n\tmovq %rdi, %rsi\n\tlodsq\n\tstosq");
USER_CODE(u_bytes, "movb 1(%rdi), %al\n\tmovb %al, 3(%rdi)\n\tmovb 7(%rdi), %al\n\t"
		   "leaq 33(%rdi), %rsi\n\tleaq 1(%rdi), %rdi\n\tmovl $5, %ecx\n\trep movsb");
USER_CODE(u_mis_all, "movw 1(%rdi), %ax\n\tmovl 2(%rdi), %eax\n\tmovq 4(%rdi), %rax\n\t"
		     "movl %eax, 6(%rdi)");
/* POPF clears AC, a misaligned load works, POPF sets AC again, the same
 * load faults. */
USER_FAULTING(u_popf_ac, "pushq $0x2\n\tpopfq\n\tmovl 2(%rdi), %eax\n\tpushq $0x40002\n\tpopfq\n\t"
			 "u_popf_ac_g: movl 2(%rdi), %eax");
USER_FAULTING(u_pushw, "subq $1, %rsp\n\t" "u_pushw_g: pushw %ax\n\t" "u_pushw_g2: addq $1, %rsp");
USER_FAULTING(u_ret, "subq $4, %rsp\n\t" "u_ret_g: ret\n\t" "u_ret_g2: addq $4, %rsp");
extern char u_pushw_g[], u_pushw_g2[], u_ret_g[], u_ret_g2[];
extern char u_popf_ac_g[], u_aligned[], u_bytes[], u_mis_all[];

/* The ring-3 #AC handler (gate selector 0x3B): the frame is on the user
 * stack; RAX = error, RBX = RIP, RCX = RSP, RDX = handler RSP, R8 = RFLAGS. */
USER_CODE(u_ac_handler, "movq (%rsp), %rax\n\tmovq 8(%rsp), %rbx\n\tmovq 32(%rsp), %rcx\n\t"
			"movq 24(%rsp), %r8\n\tmovq %rsp, %rdx");
USER_CODE(u_mis_stack, "subq $3, %rsp\n\t" "u_mis_stack_f: movl 2(%rdi), %eax");
extern char u_ac_handler[], u_mis_stack[], u_mis_stack_f[];

/* ------------------------------------------------ helpers */

static void am_on(void)
{
	write_cr0(read_cr0() | CR0_AM);
}

static void am_off(void)
{
	write_cr0(read_cr0() & ~(uintptr_t)CR0_AM);
}

/* A FAULTING snippet with RDI = addr at CPL 3 with AC = 1: #AC(0) at fip. */
static int ac_fault(const char *name, const void *fn, const char *fip, const char *res,
		    uintptr_t addr, uintptr_t want_sp)
{
	return kit_user_fault(name, fn, fip, res, FLAGS_AC, addr, VEC_AC, 0, want_sp);
}
#define AC_FAULT(name, sym, addr) ac_fault(name, sym, sym##_f, sym##_r, addr, KIT_USER_SP)

/* ------------------------------------------------ checks */

static void load_store_checks(void)
{
	/* Loads: word at +1, dword at +2, qword at +4. */
	AC_FAULT("ac-load-2-odd", u_ld2, B + 1);
	AC_FAULT("ac-load-4-at-2", u_ld4, B + 2);
	AC_FAULT("ac-load-8-at-4", u_ld8, B + 4);
	/* The image of the faulting context has AC = 1, the handler's RFLAGS
	 * too: delivery clears TF, NT, RF (and IF for an interrupt gate), not
	 * AC (SDM §6.12.1.3). */
	report("ac-image-and-handler-ac", kit_nev == 1 && (kit_ev[0].flags & FLAGS_AC) &&
						  (kit_ev[0].hflags & FLAGS_AC),
	       "image AC %lu, handler AC %lu", (unsigned long)(kit_ev[0].flags >> 18 & 1),
	       (unsigned long)(kit_ev[0].hflags >> 18 & 1));

	/* Stores fault before writing: memory keeps its value. */
	for (unsigned i = 0; i < 8; i++)
		buf[i] = 0;
	AC_FAULT("ac-store-2-at-3", u_st2, B + 3);
	AC_FAULT("ac-store-4-at-1", u_st4, B + 9);
	AC_FAULT("ac-store-8-at-12", u_st8, B + 12);
	report("ac-store-not-performed", buf[0] == 0 && buf[1] == 0 && buf[2] == 0,
	       "memory %#lx %#lx %#lx (want 0)", (unsigned long)buf[0], (unsigned long)buf[1],
	       (unsigned long)buf[2]);

	/* Read-modify-write and locked instructions. */
	AC_FAULT("ac-add-mem-4-at-6", u_add4, B + 6);
	AC_FAULT("ac-xchg-4-at-2", u_xchg, B + 2);
	AC_FAULT("ac-cmpxchg8b-at-4", u_cx8, B + 4);

	/* Aligned 2/4/8-byte accesses, stack and string ops: no fault. */
	kit_user_clean("ac-aligned-accesses-ok", u_aligned, FLAGS_AC, B + 16,
		       "aligned loads, stores, push/pop, lodsq/stosq: no #AC");
	/* Byte accesses at odd addresses never fault. */
	kit_user_clean("ac-byte-accesses-ok", u_bytes, FLAGS_AC, B, "byte loads, stores, rep movsb: no #AC");
}

static void string_and_stack_checks(void)
{
	/* MOVSW with RSI = B + 1 and RDI = B + 33 (both odd). */
	kit_user_fault("ac-movsw-odd-source", u_movsw, u_movsw_g, u_movsw_r, FLAGS_AC, B + 1, VEC_AC,
		       0, KIT_USER_SP);
	AC_FAULT("ac-stosl-at-2", u_stosl, B + 2);
	kit_user_fault("ac-lodsq-at-4", u_lodsq, u_lodsq_g, u_lodsq_r, FLAGS_AC, B + 4, VEC_AC, 0,
		       KIT_USER_SP);

	/* RSP = 4 mod 8: PUSH, CALL (pushes RIP), POP and RET of 8 bytes fault. The
	 * saved RSP is the misaligned one; resume at the add that repairs it. */
	kit_user_fault("ac-push-misaligned-stack", u_push, u_push_g, u_push_g2, FLAGS_AC, 0, VEC_AC, 0,
		       KIT_USER_SP - 4);
	kit_user_fault("ac-call-misaligned-stack", u_call, u_call_g, u_call_g2, FLAGS_AC, 0, VEC_AC, 0,
		       KIT_USER_SP - 4);
	kit_user_fault("ac-pop-misaligned-stack", u_pop, u_pop_g, u_pop_g2, FLAGS_AC, 0, VEC_AC, 0,
		       KIT_USER_SP - 4);
	kit_user_fault("ac-ret-misaligned-stack", u_ret, u_ret_g, u_ret_g2, FLAGS_AC, 0, VEC_AC, 0,
		       KIT_USER_SP - 4);
	/* A 2-byte PUSH with RSP odd. */
	kit_user_fault("ac-pushw-odd-stack", u_pushw, u_pushw_g, u_pushw_g2, FLAGS_AC, 0, VEC_AC, 0,
		       KIT_USER_SP - 1);
}

static void condition_checks(void)
{
	/* CR0.AM = 1 but RFLAGS.AC = 0: no #AC. */
	kit_user_clean("ac-flag-clear-no-ac", u_mis_all, 0, B, "AC = 0: misaligned accesses work");

	/* RFLAGS.AC = 1 but CR0.AM = 0: no #AC. */
	am_off();
	kit_user_clean("ac-am-clear-no-ac", u_mis_all, FLAGS_AC, B, "AM = 0: misaligned accesses work");
	am_on();

	/* CPL 0 with AM = 1 and AC = 1: no #AC. */
	kit_arm();
	uintptr_t f0 = read_flags();
	uint64_t v;
	write_flags(f0 | FLAGS_AC);
	__asm__ volatile("movq 4(%1), %0\n\tmovl %k0, 6(%1)\n\tpushq %0\n\tpopq %0"
			 : "=&r"(v)
			 : "r"(buf)
			 : "memory");
	uintptr_t f1 = read_flags();
	write_flags(f0);
	report("ac-cpl0-no-ac", kit_nev == 0 && (f1 & FLAGS_AC),
	       "AC = 1 at CPL 0: %u exceptions (want 0)", kit_nev);

	/* AC is not privileged: POPF at CPL 3 clears and sets it. */
	kit_user_fault("ac-popf-at-cpl3", u_popf_ac, u_popf_ac_g, u_popf_ac_r, FLAGS_AC, B, VEC_AC, 0,
		       KIT_USER_SP);
}

static void ring3_handler_check(void)
{
	/*
	 * The #AC gate's selector is the ring-3 code segment (0x3B): #AC at
	 * CPL 3 is delivered without a stack switch, on the misaligned user
	 * stack. In 64-bit mode the CPU aligns RSP to 16 before pushing, so the
	 * frame pushes are aligned and do not raise #AC again (in 32-bit mode
	 * they would, endlessly: CVE-2015-5307). The handler sees error 0, RIP
	 * at the load, the misaligned RSP, AC = 1 in the image.
	 */
	uintptr_t sp = KIT_USER_SP - 3;
	kit_gate_set(VEC_AC, u_ac_handler, U_CS64, GATE_INT, 0, 0, 1);
	kit_arm();
	kit_user(u_mis_stack, FLAGS_AC, B, 0);
	kit_restore();
	report("ac-ring3-handler-64bit-frame-aligned",
	       kit_user_ok && kit_nev == 0 && kit_uregs.ax == 0 &&
		       kit_uregs.bx == (uintptr_t)u_mis_stack_f && kit_uregs.cx == sp &&
		       kit_uregs.dx == (sp & ~(uintptr_t)15) - 48 && (kit_uregs.r8 & FLAGS_AC),
	       "error %#lx rip %#lx rsp %#lx frame at %#lx rflags.AC %lu (want 0 %#lx %#lx %#lx 1)",
	       (unsigned long)kit_uregs.ax, (unsigned long)kit_uregs.bx, (unsigned long)kit_uregs.cx,
	       (unsigned long)kit_uregs.dx, (unsigned long)(kit_uregs.r8 >> 18 & 1),
	       (unsigned long)(uintptr_t)u_mis_stack_f, (unsigned long)sp,
	       (unsigned long)((sp & ~(uintptr_t)15) - 48));
}

int main(void)
{
	kit_init();
	am_on();
	load_store_checks();
	string_and_stack_checks();
	condition_checks();
	ring3_handler_check();
	am_off();
	report_done();
}
