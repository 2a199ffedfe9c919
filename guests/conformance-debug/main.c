/*
 * conformance-debug - debug registers and single-step in 64-bit long mode
 * (SDM Vol. 3B chapter 18).
 *
 * Instruction breakpoints (#DB fault, RIP at the instruction, RF), data
 * breakpoints on write and on read/write with lengths 1, 2, 4 and 8 (#DB
 * trap after the access, DR6.Bn), single-step with TF (DR6.BS), TF set by
 * POPF or IRETQ, MOV SS / POP SS delaying the single-step trap, DR6
 * stickiness, general detect (DR7.GD), DR4/DR5 aliasing, and a data
 * breakpoint on the stack slot an exception frame is written to (the
 * ingredient of CVE-2015-8104): #DB delivered right after the frame.
 *
 * No int3 / INT1: kvm_pvm, the development hosts' KVM, stops on them.
 * Every #DB handler path is bounded (kit_limit): a missing feature fails a
 * check, it cannot hang the guest.
 */
#include "kit.h"

#define DR6_B(n) (1u << (n))
#define DR6_INIT 0xFFFF0FF0u /* DR6 after writing 0: reserved bits read as 1 */

/* DR7 with breakpoint n enabled (Ln), R/W and LEN fields. */
#define RW_EXEC 0u
#define RW_WRITE 1u
#define RW_RDWR 3u
#define LEN1 0u
#define LEN2 1u
#define LEN8 2u
#define LEN4 3u
static uintptr_t dr7_bp(unsigned n, unsigned rw, unsigned len)
{
	return 0x400 | (uintptr_t)1 << (2 * n) | (uintptr_t)(rw | len << 2) << (16 + 4 * n);
}

/* What db_hook does on #DB: set RF in the image when the #DB is at h_rf_ip
 * (an instruction breakpoint, so IRETQ can run that instruction), clear
 * DR7 (stop all breakpoints), clear DR6. */
static volatile uintptr_t h_rf_ip;
static volatile unsigned h_clear_dr7, h_clear_dr6;

static void db_hook(struct trap_frame *f)
{
	if (f->vector == VEC_DB) {
		if (h_rf_ip && f->ip == h_rf_ip)
			f->flags |= FLAGS_RF;
		if (h_clear_dr7)
			write_dr7(0x400);
		if (h_clear_dr6)
			write_dr6(0);
	} else if (kit_resume) {
		f->ip = kit_resume;
	}
}

static void arm_db(const void *rf_ip, unsigned clear_dr7, unsigned clear_dr6)
{
	kit_arm();
	kit_limit = 24;
	kit_hook = db_hook;
	h_rf_ip = (uintptr_t)rf_ip;
	h_clear_dr7 = clear_dr7;
	h_clear_dr6 = clear_dr6;
	write_dr6(0);
}

static void disarm(void)
{
	write_dr7(0x400);
	write_dr6(0);
}

/* "#DB ip X dr6 Y" for event i. */
static const char *db_str(unsigned i)
{
	static char b[4][96];
	char *s = b[i & 3];
	if (i >= kit_nev || i >= KIT_MAX_EV)
		snprintf(s, sizeof(b[0]), "none");
	else
		snprintf(s, sizeof(b[0]), "vector %lu ip %#lx dr6 %#lx", (unsigned long)kit_ev[i].vector,
			 (unsigned long)kit_ev[i].ip, (unsigned long)kit_ev[i].dr6);
	return s;
}

/* One #DB with this ip and (dr6 & mask) == want. */
static int one_db(uintptr_t ip, uintptr_t mask, uintptr_t want)
{
	return kit_nev == 1 && kit_ev[0].vector == VEC_DB && kit_ev[0].ip == ip &&
	       (kit_ev[0].dr6 & mask) == want;
}

/* --------------------------------------------------------- registers */

static void register_checks(void)
{
	write_dr0(0x1000);
	write_dr1(0x2222);
	write_dr2(0x7FFFFFFFF000ull);
	write_dr3(0xFFFF800000000008ull);
	int ok = read_dr0() == 0x1000 && read_dr1() == 0x2222 && read_dr2() == 0x7FFFFFFFF000ull &&
		 read_dr3() == 0xFFFF800000000008ull;
	report("dr0-dr3-read-back", ok, "%#lx %#lx %#lx %#lx", (unsigned long)read_dr0(),
	       (unsigned long)read_dr1(), (unsigned long)read_dr2(), (unsigned long)read_dr3());

	/* DR6 bits 31:16 and 11:4 are reserved and read as 1 (bit 16, RTM/BLD,
	 * reads 1 when not in use), bit 12 reads 0: writing 0 reads 0xFFFF0FF0. */
	write_dr6(0);
	report_eq("dr6-reserved-bits", read_dr6(), DR6_INIT);
	/* DR7 bit 10 reads as 1. */
	write_dr7(0);
	report_eq("dr7-bit10-reads-1", read_dr7(), 0x400);

	/* DR6 / DR7 bits 63:32 must be zero: MOV DR is #GP(0). */
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n\t"
			 "movabsq $0x100000400, %%rax\n1: movq %%rax, %%dr7\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "rax", "memory");
	kit_expect("dr7-upper-bits-gp", VEC_GP, 0, kit_fault_ip);

	/* With CR4.DE = 0, DR4 and DR5 alias DR6 and DR7. */
	uintptr_t d4, d5;
	write_dr6(0);
	write_dr7(0x400);
	__asm__ volatile("movq %%dr4, %0\n\tmovq %%dr5, %1" : "=r"(d4), "=r"(d5));
	report("dr4-dr5-alias-dr6-dr7-de0", d4 == DR6_INIT && d5 == 0x400,
	       "dr4 %#lx dr5 %#lx (want %#x 0x400)", (unsigned long)d4, (unsigned long)d5, DR6_INIT);

	/* With CR4.DE = 1 they are reserved: #UD. */
	write_cr4(read_cr4() | CR4_DE);
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n1: movq %%dr4, %%rax\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "rax", "memory");
	write_cr4(read_cr4() & ~(uintptr_t)CR4_DE);
	kit_expect("dr4-ud-with-cr4-de", VEC_UD, 0, kit_fault_ip);

	/* DR8-DR15 do not exist: MOV DR with REX.R = 1 is #UD, not DR0-DR7
	 * (SDM Vol. 2B MOV-Move to/from Debug Registers). Hand-encoded:
	 * 44 0f 23 c0 = mov %rax, %dr8; 44 0f 21 f8 = mov %dr15, %rax. */
	write_dr0(0x1000);
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n\t"
			 "movq $0x3000, %%rax\n1: .byte 0x44, 0x0f, 0x23, 0xc0\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "rax", "memory");
	kit_expect("mov-to-dr8-ud", VEC_UD, 0, kit_fault_ip);
	report_eq("mov-to-dr8-leaves-dr0", read_dr0(), 0x1000);
	kit_arm();
	__asm__ volatile("movq $1f, %[kfip]\n\tmovq $2f, %[kres]\n1: .byte 0x44, 0x0f, 0x21, 0xf8\n2:"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 :
			 : "rax", "memory");
	kit_expect("mov-from-dr15-ud", VEC_UD, 0, kit_fault_ip);
}

/* --------------------------------------------------------- instruction breakpoints */

extern char xbp_a[], xbp_b[], xbp_c[], xbp_d[], xbp_e[];

static void instruction_breakpoint_checks(void)
{
	uint32_t v;

	/* DR0 on an instruction, L0: #DB fault before it runs, RIP = the
	 * instruction, DR6.B0; the image's RF is 0 (the processor does not set
	 * RF for instruction breakpoints, SDM §18.3.1.1). The handler sets RF in
	 * the image, so IRETQ re-executes the instruction without a new #DB. */
	arm_db(xbp_a, 0, 0);
	write_dr0((uintptr_t)xbp_a);
	write_dr7(dr7_bp(0, RW_EXEC, LEN1));
	__asm__ volatile("movl $0, %0\nxbp_a: movl $0x55, %0" : "=r"(v));
	disarm();
	report("exec-bp-fault-at-instruction", one_db((uintptr_t)xbp_a, 0xF, DR6_B(0)),
	       "%s (want ip %#lx, B0)", db_str(0), (unsigned long)xbp_a);
	report("exec-bp-image-rf-0", kit_nev == 1 && !(kit_ev[0].flags & FLAGS_RF),
	       "RF in the pushed image %lu", (unsigned long)(kit_ev[0].flags >> 16 & 1));
	report("exec-bp-rf-resumes-once", kit_nev == 1 && v == 0x55,
	       "%u #DB, the instruction ran once (eax %#x)", kit_nev, v);

	/* Global enable G3 (bit 7) works like L3: DR6.B3. */
	arm_db(xbp_b, 0, 0);
	write_dr3((uintptr_t)xbp_b);
	write_dr7(0x400 | 1u << 7);
	__asm__ volatile("nop\nxbp_b: nop" ::: "memory");
	disarm();
	report("exec-bp-global-enable-dr3", one_db((uintptr_t)xbp_b, 0xF, DR6_B(3)),
	       "%s (want ip %#lx, B3)", db_str(0), (unsigned long)xbp_b);

	/* Address in DR1 but L1 = G1 = 0: no #DB. */
	arm_db(xbp_c, 0, 0);
	write_dr1((uintptr_t)xbp_c);
	write_dr7(0x400);
	__asm__ volatile("nop\nxbp_c: nop" ::: "memory");
	disarm();
	kit_expect_none("exec-bp-disabled-no-db", "DR1 set, L1 = G1 = 0: no #DB");

	/* RF set by IRETQ suppresses the breakpoint on the first instruction. */
	arm_db(xbp_d, 0, 0);
	write_dr0((uintptr_t)xbp_d);
	write_dr7(dr7_bp(0, RW_EXEC, LEN1));
	__asm__ volatile("movq %%rsp, %%rcx\n\tpushq %[ss]\n\tpushq %%rcx\n\tpushfq\n\t"
			 "orq $0x10000, (%%rsp)\n\tpushq %[cs]\n\tpushq $xbp_d\n\tiretq\n"
			 "xbp_d: nop"
			 :
			 : [ss] "i"(K_DS), [cs] "i"(K_CS)
			 : "rcx", "memory");
	disarm();
	kit_expect_none("exec-bp-suppressed-by-rf-from-iretq", "IRETQ with RF = 1 onto the breakpoint: no #DB");

	/* Delivery clears RF: IRETQ with RF = 1 onto a ud2; a breakpoint on the
	 * first instruction of the #UD handler still fires. */
	arm_db(0, 1, 0);
	kit_resume = 0;
	write_dr0(kit_stub(VEC_UD));
	write_dr7(dr7_bp(0, RW_EXEC, LEN1));
	__asm__ volatile("movq $xbp_e_r, %[kres]\n\t"
			 "movq %%rsp, %%rcx\n\tpushq %[ss]\n\tpushq %%rcx\n\tpushfq\n\t"
			 "orq $0x10000, (%%rsp)\n\tpushq %[cs]\n\tpushq $xbp_e\n\tiretq\n"
			 "xbp_e: ud2\nxbp_e_r: movq %%rcx, %%rsp"
			 : [kres] "=m"(kit_resume)
			 : [ss] "i"(K_DS), [cs] "i"(K_CS)
			 : "rcx", "memory");
	disarm();
	report("delivery-clears-rf",
	       kit_nev == 2 && kit_ev[0].vector == VEC_DB && kit_ev[0].ip == kit_stub(VEC_UD) &&
		       (kit_ev[0].dr6 & 0xF) == DR6_B(0) && kit_ev[1].vector == VEC_UD &&
		       kit_ev[1].ip == (uintptr_t)xbp_e,
	       "%u deliveries: %s; %s (want #DB at the #UD handler %#lx, then #UD at %#lx)", kit_nev,
	       db_str(0), db_str(1), (unsigned long)kit_stub(VEC_UD), (unsigned long)xbp_e);
}

/* --------------------------------------------------------- data breakpoints */

static volatile uint64_t dvar[4] __attribute__((aligned(32)));
extern char dbp_1[], dbp_2[], dbp_4[], dbp_8[], dbp_r[], dbp_rw[], dbp_nohit[], dbp_push[],
	dbp_both[];

static void data_breakpoint_checks(void)
{
	uint8_t *b = (uint8_t *)dvar;

	/* Write, length 1, DR1: trap after the store, RIP = next instruction,
	 * DR6.B1, the value is in memory. */
	dvar[0] = 0;
	arm_db(0, 0, 0);
	write_dr1((uintptr_t)b);
	write_dr7(dr7_bp(1, RW_WRITE, LEN1));
	__asm__ volatile("movb $0x5A, (%0)\n" "dbp_1: nop" : : "r"(b) : "memory");
	disarm();
	report("data-bp-write-len1-trap", one_db((uintptr_t)dbp_1, 0xF, DR6_B(1)) && b[0] == 0x5A,
	       "%s, byte %#x (want ip %#lx, B1, 0x5a)", db_str(0), b[0], (unsigned long)dbp_1);

	/* Length 2 on dvar[0] bytes 0-1, DR2: a byte store to byte 1 hits. */
	arm_db(0, 0, 0);
	write_dr2((uintptr_t)b);
	write_dr7(dr7_bp(2, RW_WRITE, LEN2));
	__asm__ volatile("movb $1, 1(%0)\n" "dbp_2: nop" : : "r"(b) : "memory");
	disarm();
	report("data-bp-write-len2-overlap", one_db((uintptr_t)dbp_2, 0xF, DR6_B(2)),
	       "%s (want ip %#lx, B2)", db_str(0), (unsigned long)dbp_2);

	/* Length 4 on bytes 8-11, DR3: a store to byte 12 does not hit, a
	 * word store to bytes 11-12 does. */
	arm_db(0, 0, 0);
	write_dr3((uintptr_t)(b + 8));
	write_dr7(dr7_bp(3, RW_WRITE, LEN4));
	__asm__ volatile("movb $1, 12(%0)\n\tmovw $2, 11(%0)\n" "dbp_4: nop" : : "r"(b) : "memory");
	disarm();
	report("data-bp-write-len4-range", one_db((uintptr_t)dbp_4, 0xF, DR6_B(3)),
	       "%s (want one #DB at %#lx, B3: byte 12 outside, bytes 11-12 inside)", db_str(0),
	       (unsigned long)dbp_4);

	/* Length 8 (64-bit mode) on bytes 16-23, DR0: a store to byte 23 hits. */
	arm_db(0, 0, 0);
	write_dr0((uintptr_t)(b + 16));
	write_dr7(dr7_bp(0, RW_WRITE, LEN8));
	__asm__ volatile("movb $1, 23(%0)\n" "dbp_8: nop" : : "r"(b) : "memory");
	disarm();
	report("data-bp-write-len8", one_db((uintptr_t)dbp_8, 0xF, DR6_B(0)),
	       "%s (want ip %#lx, B0)", db_str(0), (unsigned long)dbp_8);

	/* A write-only breakpoint ignores reads. */
	uint64_t x;
	arm_db(0, 0, 0);
	write_dr0((uintptr_t)b);
	write_dr7(dr7_bp(0, RW_WRITE, LEN8));
	__asm__ volatile("movq (%1), %0\n" "dbp_r: nop" : "=r"(x) : "r"(b) : "memory");
	disarm();
	kit_expect_none("data-bp-write-ignores-read", "read of a write-only breakpoint: no #DB");

	/* Read/write breakpoint: a read hits. */
	arm_db(0, 0, 0);
	write_dr0((uintptr_t)b);
	write_dr7(dr7_bp(0, RW_RDWR, LEN4));
	__asm__ volatile("movl 2(%1), %k0\n" "dbp_rw: nop" : "=r"(x) : "r"(b) : "memory");
	disarm();
	report("data-bp-rw-read-hits", one_db((uintptr_t)dbp_rw, 0xF, DR6_B(0)),
	       "%s (want ip %#lx, B0)", db_str(0), (unsigned long)dbp_rw);

	/* A PUSH writes the stack: a write breakpoint on the slot hits. */
	arm_db(0, 0, 0);
	__asm__ volatile("leaq -8(%%rsp), %%rax\n\tmovq %%rax, %%dr0\n\tmovq %[d7], %%rax\n\t"
			 "movq %%rax, %%dr7\n\tpushq $7\n" "dbp_push: popq %%rax"
			 :
			 : [d7] "r"(dr7_bp(0, RW_WRITE, LEN8))
			 : "rax", "memory");
	disarm();
	report("data-bp-push-hits", one_db((uintptr_t)dbp_push, 0xF, DR6_B(0)),
	       "%s (want ip %#lx, B0)", db_str(0), (unsigned long)dbp_push);

	/* Single-step and a data breakpoint on the same instruction: one #DB
	 * reporting both, DR6.BS | DR6.B0. */
	arm_db(0, 0, 0);
	write_dr0((uintptr_t)b);
	write_dr7(dr7_bp(0, RW_WRITE, LEN1));
	__asm__ volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\t"
			 "movb $3, (%0)\n" "dbp_both: pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq"
			 : : "r"(b) : "memory", "cc");
	disarm();
	report("data-bp-and-single-step-one-db",
	       kit_nev >= 1 && kit_ev[0].vector == VEC_DB && kit_ev[0].ip == (uintptr_t)dbp_both &&
		       (kit_ev[0].dr6 & (DR6_BS | 0xF)) == (DR6_BS | DR6_B(0)),
	       "%s (want ip %#lx, BS | B0)", db_str(0), (unsigned long)dbp_both);
}

/* --------------------------------------------------------- single step */

extern char ss_b[], ss_c[], ss_d[], ss_e[], ss_f[], ss_g[];
extern char ms_b[], ms_c[], ms_d[];
extern char tf_a[], tf_b[], tf_c[];
extern char it_a[], it_b[];
extern char xbp_sticky[];

static void single_step_checks(void)
{
	/* TF set by POPF: the first #DB follows the instruction after POPF;
	 * then one #DB after each instruction, DR6.BS, RIP = next instruction.
	 * The POPF that clears TF still traps (TF was set when it started). */
	arm_db(0, 0, 1);
	__asm__ volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n"
			 "nop\n"
			 "ss_b: movl $1, %%eax\n"
			 "ss_c: addl $2, %%eax\n"
			 "ss_d: pushfq\n"
			 "ss_e: andq $~0x100, (%%rsp)\n"
			 "ss_f: popfq\n"
			 "ss_g: nop"
			 :
			 :
			 : "eax", "memory", "cc");
	disarm();
	const char *want[6] = { ss_b, ss_c, ss_d, ss_e, ss_f, ss_g };
	int ok = kit_nev == 6;
	for (unsigned i = 0; i < 6 && ok; i++)
		ok = kit_ev[i].vector == VEC_DB && kit_ev[i].ip == (uintptr_t)want[i] &&
		     (kit_ev[i].dr6 & DR6_BS);
	report("single-step-each-instruction", ok, "%u #DB, first %s, last %s (want 6, %#lx .. %#lx, BS)",
	       kit_nev, db_str(0), db_str(kit_nev ? kit_nev - 1 : 0), (unsigned long)ss_b,
	       (unsigned long)ss_g);
	report("single-step-popf-sets-tf-late", kit_nev >= 1 && kit_ev[0].ip == (uintptr_t)ss_b,
	       "first #DB at %#lx (want %#lx: after the instruction following POPF)",
	       (unsigned long)kit_ev[0].ip, (unsigned long)ss_b);
	report("single-step-popf-clearing-tf-traps", kit_nev == 6 && kit_ev[5].ip == (uintptr_t)ss_g,
	       "last #DB at %#lx (want %#lx)", (unsigned long)kit_ev[kit_nev ? (kit_nev - 1) % KIT_MAX_EV : 0].ip,
	       (unsigned long)ss_g);

	/* MOV SS blocks the single-step #DB for one instruction: none at the
	 * instruction after MOV SS, one after the next (SDM §6.8.3). */
	arm_db(0, 0, 1);
	__asm__ volatile("movl %%ss, %%ecx\n\t"
			 "pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n"
			 "nop\n"
			 "ms_b: movl %%ecx, %%ss\n"
			 "ms_c: nop\n"
			 "ms_d: pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq"
			 :
			 :
			 : "ecx", "memory", "cc");
	disarm();
	ok = kit_nev == 5 && kit_ev[0].ip == (uintptr_t)ms_b && kit_ev[1].ip == (uintptr_t)ms_d &&
	     (kit_ev[1].dr6 & DR6_BS);
	report("mov-ss-delays-single-step", ok,
	       "%u #DB: %s, %s (want 5: %#lx, then %#lx, none at %#lx)", kit_nev, db_str(0),
	       db_str(1), (unsigned long)ms_b, (unsigned long)ms_d, (unsigned long)ms_c);

	/* Single-step over a faulting instruction: #UD at the ud2, no #DB for
	 * it; IRETQ restores TF, so the next instruction traps after it. */
	arm_db(0, 0, 1);
	__asm__ volatile("movq $tf_b, %[kres]\n\t"
			 "pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n"
			 "tf_a: ud2\n"
			 "tf_b: nop\n"
			 "tf_c: pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq"
			 : [kres] "=m"(kit_resume)
			 :
			 : "memory", "cc");
	disarm();
	report("single-step-over-fault",
	       kit_nev >= 2 && kit_ev[0].vector == VEC_UD && kit_ev[0].ip == (uintptr_t)tf_a &&
		       kit_ev[1].vector == VEC_DB && kit_ev[1].ip == (uintptr_t)tf_c,
	       "%s; %s (want #UD at %#lx, then #DB at %#lx)", db_str(0), db_str(1),
	       (unsigned long)tf_a, (unsigned long)tf_c);

	/* TF set by IRETQ: the first instruction at the target runs, then #DB. */
	arm_db(0, 0, 1);
	__asm__ volatile("movq %%rsp, %%rcx\n\tpushq %[ss]\n\tpushq %%rcx\n\tpushfq\n\t"
			 "orq $0x100, (%%rsp)\n\tpushq %[cs]\n\tpushq $it_a\n\tiretq\n"
			 "it_a: nop\n"
			 "it_b: pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq"
			 :
			 : [ss] "i"(K_DS), [cs] "i"(K_CS)
			 : "rcx", "memory", "cc");
	disarm();
	report("single-step-tf-from-iretq", kit_nev >= 1 && kit_ev[0].ip == (uintptr_t)it_b,
	       "first #DB %s (want ip %#lx: after the first instruction at the target)", db_str(0),
	       (unsigned long)it_b);

	/* DR6.BS is sticky: after single-step #DBs (the last one after the
	 * POPF that clears TF), an instruction-breakpoint #DB two instructions
	 * later (DR6 not cleared in between) reports B0 with BS still set. */
	arm_db(xbp_sticky, 0, 0);
	write_dr0((uintptr_t)xbp_sticky);
	__asm__ volatile("movq %[d7], %%rax\n\tmovq %%rax, %%dr7\n\t"
			 "pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n"
			 "nop\n"
			 "pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq\n"
			 "nop\n"
			 "xbp_sticky: nop"
			 :
			 : [d7] "r"(dr7_bp(0, RW_EXEC, LEN1))
			 : "rax", "memory", "cc");
	disarm();
	unsigned last = kit_nev ? (kit_nev - 1) % KIT_MAX_EV : 0;
	report("dr6-bs-sticky",
	       kit_nev == 5 && kit_ev[last].ip == (uintptr_t)xbp_sticky &&
		       (kit_ev[last].dr6 & (DR6_BS | 0xF)) == (DR6_BS | DR6_B(0)),
	       "%u #DB, last %s (want 5, the last at %#lx with BS | B0)", kit_nev, db_str(last),
	       (unsigned long)xbp_sticky);
}

/* --------------------------------------------------------- POP SS (compatibility mode) */

/*
 * POP SS does not exist in 64-bit mode, so this runs in compatibility mode
 * (the runtime's 32-bit code segment 0x08 under long mode): far JMP in,
 * single-step across POP SS, far JMP back to 0x18.
 */
extern char cm_entry[], cm_b[], cm_c[], cm_d[];
__asm__(".text\n\t.code32\n\t.balign 16\n"
	"cm_entry:\n\t"
	"pushl %ss\n\t"
	"pushfl\n\torl $0x100, (%esp)\n\tpopfl\n\t"
	"nop\n"
	"cm_b: popl %ss\n"
	"cm_c: nop\n"
	"cm_d: pushfl\n\tandl $~0x100, (%esp)\n\tpopfl\n\t"
	"ljmp $0x18, $cm_back\n\t"
	".code64\n");
extern char cm_back[];

static void pop_ss_check(void)
{
	static struct __attribute__((packed)) {
		uint32_t off;
		uint16_t sel;
	} far_cm;
	far_cm.off = (uint32_t)(uintptr_t)cm_entry;
	far_cm.sel = K_CS32;

	arm_db(0, 0, 1);
	__asm__ volatile("ljmpl *%0\n"
			 "cm_back:"
			 :
			 : "m"(far_cm)
			 : "memory", "cc");
	disarm();
	int ok = kit_nev == 5 && kit_ev[0].ip == (uintptr_t)cm_b && kit_ev[0].cs == K_CS32 &&
		 kit_ev[1].ip == (uintptr_t)cm_d && (kit_ev[1].dr6 & DR6_BS);
	report("pop-ss-delays-single-step", ok,
	       "%u #DB: %s, %s (want 5: %#lx, then %#lx, none at %#lx, cs 0x8)", kit_nev, db_str(0),
	       db_str(1), (unsigned long)cm_b, (unsigned long)cm_d, (unsigned long)cm_c);
}

/* --------------------------------------------------------- general detect */

static void general_detect_checks(void)
{
	uintptr_t d7_after;

	/* DR7.GD = 1: the next MOV DR is a #DB fault (RIP at the MOV), DR6.BD,
	 * and the CPU clears GD when it delivers the #DB so the handler can use
	 * the debug registers. IRETQ re-executes the MOV, which now works. */
	arm_db(0, 0, 0);
	write_dr7(0x400 | DR7_GD);
	__asm__ volatile("gd_a: movq %%dr0, %%rax" : : : "rax", "memory");
	extern char gd_a[];
	d7_after = read_dr7();
	disarm();
	report("gd-mov-dr-faults",
	       kit_nev == 1 && kit_ev[0].vector == VEC_DB && kit_ev[0].ip == (uintptr_t)gd_a &&
		       (kit_ev[0].dr6 & DR6_BD),
	       "%s (want ip %#lx, BD)", db_str(0), (unsigned long)gd_a);
	report("gd-cleared-on-db-delivery",
	       kit_nev == 1 && !(kit_ev[0].dr7 & DR7_GD) && !(d7_after & DR7_GD),
	       "DR7 in the handler %#lx, after %#lx (GD clear)", (unsigned long)kit_ev[0].dr7,
	       (unsigned long)d7_after);
}

/* --------------------------------------------------------- breakpoints on the exception frame */

static void frame_breakpoint_checks(void)
{
	/*
	 * RSP is set to S (16-aligned); a #UD there pushes SS at S-8, RSP S-16,
	 * RFLAGS S-24, CS S-32, RIP S-40. A write breakpoint on S-40 (8 bytes)
	 * is hit by the delivery itself: the #DB (a trap) is delivered right
	 * after the #UD frame is written, before the first instruction of the
	 * #UD handler: #DB with RIP = the #UD handler, DR6.B0, then the #UD.
	 * The #DB handler clears DR7 (otherwise every delivery that writes the
	 * slot re-arms the loop of CVE-2015-8104).
	 */
	arm_db(0, 1, 0);
	__asm__ volatile("movq $fb_ud, %[kfip]\n\tmovq $fb_ud_r, %[kres]\n\t"
			 "movq %%rsp, %%r12\n\tandq $-16, %%rsp\n\tsubq $64, %%rsp\n\t"
			 "leaq -40(%%rsp), %%rax\n\tmovq %%rax, %%dr0\n\t"
			 "movq %[d7], %%rax\n\tmovq %%rax, %%dr7\n"
			 "fb_ud: ud2\n"
			 "fb_ud_r: movq %%r12, %%rsp"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 : [d7] "r"(dr7_bp(0, RW_WRITE, LEN8))
			 : "rax", "r12", "memory");
	disarm();
	report("data-bp-on-exception-frame",
	       kit_nev == 2 && kit_ev[0].vector == VEC_DB && kit_ev[0].ip == kit_stub(VEC_UD) &&
		       (kit_ev[0].dr6 & 0xF) == DR6_B(0) && kit_ev[1].vector == VEC_UD &&
		       kit_ev[1].ip == kit_fault_ip,
	       "%u deliveries: %s; %s (want #DB at the #UD handler %#lx, then #UD at %#lx)", kit_nev,
	       db_str(0), db_str(1), (unsigned long)kit_stub(VEC_UD), (unsigned long)kit_fault_ip);

	/*
	 * The same with #GP (contributory): #DB is benign, so a #DB raised by
	 * the #GP delivery is handled serially, not as a double fault. The #GP
	 * frame puts the error code at S-48 and RIP at S-40.
	 */
	arm_db(0, 1, 0);
	__asm__ volatile("movq $fb_gp, %[kfip]\n\tmovq $fb_gp_r, %[kres]\n\t"
			 "movq %%rsp, %%r12\n\tandq $-16, %%rsp\n\tsubq $64, %%rsp\n\t"
			 "leaq -40(%%rsp), %%rax\n\tmovq %%rax, %%dr0\n\t"
			 "movq %[d7], %%rax\n\tmovq %%rax, %%dr7\n\t"
			 "movl $0x6B, %%eax\n"
			 "fb_gp: movl %%eax, %%ds\n"
			 "fb_gp_r: movq %%r12, %%rsp"
			 : [kfip] "=m"(kit_fault_ip), [kres] "=m"(kit_resume)
			 : [d7] "r"(dr7_bp(0, RW_WRITE, LEN8))
			 : "rax", "r12", "memory");
	disarm();
	__asm__ volatile("movl %0, %%ds" : : "r"(K_DS));
	report("db-during-gp-delivery-no-df",
	       kit_nev == 2 && kit_ev[0].vector == VEC_DB && kit_ev[0].ip == kit_stub(VEC_GP) &&
		       kit_ev[1].vector == VEC_GP && kit_ev[1].error == 0x68 &&
		       kit_ev[1].ip == kit_fault_ip,
	       "%u deliveries: %s; %s (want #DB at the #GP handler %#lx, then #GP(0x68) at %#lx)",
	       kit_nev, db_str(0), db_str(1), (unsigned long)kit_stub(VEC_GP),
	       (unsigned long)kit_fault_ip);
}

int main(void)
{
	kit_init();
	kit_record_dr = 1;
	register_checks();
	instruction_breakpoint_checks();
	single_step_checks();
	general_detect_checks();
	pop_ss_check();
	/* Data breakpoints last: kvm_pvm has none (they never fire), and QEMU
	 * TCG aborts on a watchpoint hit during exception delivery, which the
	 * last two checks do. */
	data_breakpoint_checks();
	frame_breakpoint_checks();
	disarm();
	report_done();
}
