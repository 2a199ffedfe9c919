/*
 * conformance-control - control transfer, one check per line.
 *
 * Near and far JMP/CALL/RET (RET imm16, far RET through a far pointer on
 * the stack, LJMP/LCALL through a memory operand, a round trip through a
 * compatibility-mode code segment), indirect branches through registers
 * and memory, LOOP/LOOPE/LOOPNE/JRCXZ/JECXZ, the 16 conditions of Jcc
 * (rel8 and rel32), SETcc and CMOVcc, ENTER/LEAVE, PUSH/POP of segment
 * registers, stack-pointer subtleties (PUSH RSP, POP RSP, POP [RSP],
 * CALL [RSP]), IRETQ to the same level, and branches to non-canonical
 * targets (#GP with RIP at the branch).
 *
 * Every expected value is worked out by hand in the comment next to it.
 */
#include "conf.h"

#define ALLF (OF | SF | ZF | AF | PF | CF)

/* ------------------------------------------------------ near call/ret */

static void near_checks(void)
{
	uintptr_t sp0, sp1, ret, want;

	/* call pushes the address of the next instruction; RSP drops by 8. */
	__asm__ volatile("mov %%rsp, %[sp0]\n\t"
			 "movq $3f, %[want]\n\t"
			 "call 4f\n"
			 "3: jmp 5f\n"
			 "4: mov (%%rsp), %[ret]\n\t"
			 "mov %%rsp, %[sp1]\n\t"
			 "ret\n"
			 "5:"
			 : [sp0] "=&r"(sp0), [sp1] "=&r"(sp1), [ret] "=&r"(ret), [want] "=&r"(want)
			 :
			 : "memory");
	report("call-pushes-return-address", ret == want && sp1 == sp0 - 8,
	       "return address %s, rsp %+ld in the callee", ret == want ? "ok" : "WRONG",
	       (long)(sp1 - sp0));

	/* ret $16 pops the return address and 16 bytes of arguments. */
	__asm__ volatile("mov %%rsp, %[sp0]\n\t"
			 "pushq $0x11\n\t"
			 "pushq $0x22\n\t"
			 "call 4f\n\t"
			 "jmp 5f\n"
			 "4: ret $16\n"
			 "5: mov %%rsp, %[sp1]"
			 : [sp0] "=&r"(sp0), [sp1] "=&r"(sp1)
			 :
			 : "memory");
	report("ret-imm16", sp1 == sp0, "rsp %+ld after call + ret $16 with two arguments",
	       (long)(sp1 - sp0));

	/* Indirect calls through a register, a memory operand, and [RSP]: the
	 * address of the [RSP] operand is taken before the return address is
	 * pushed. Each callee records the return address it sees. */
	{
		/* static: "m" operands must not be addressed relative to RSP */
		static uintptr_t target, seen_target;
		uintptr_t r1, r2, r3, w1, w2, w3;
		__asm__ volatile("movq $4f, %%rax\n\t"
				 "movq %%rax, %[mem]\n\t"
				 "movq $5f, %[w1]\n\t"
				 "movq $6f, %[w2]\n\t"
				 "movq $7f, %[w3]\n\t"
				 "xorl %%ecx, %%ecx\n\t"
				 "call *%%rax\n"
				 "5: mov %%rdx, %[r1]\n\t"
				 "call *%[mem]\n"
				 "6: mov %%rdx, %[r2]\n\t"
				 "pushq %%rax\n\t"
				 "movl $1, %%ecx\n\t"
				 "call *(%%rsp)\n"
				 "7: mov %%rdx, %[r3]\n\t"
				 "addq $8, %%rsp\n\t"
				 "jmp 9f\n"
				 "4: mov (%%rsp), %%rdx\n\t"
				 "jrcxz 8f\n\t"
				 "mov 8(%%rsp), %%rsi\n\t"
				 "mov %%rsi, %[t]\n"
				 "8: ret\n"
				 "9:"
				 : [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [w1] "=&r"(w1),
				   [w2] "=&r"(w2), [w3] "=&r"(w3), [mem] "=m"(target), [t] "=m"(seen_target)
				 :
				 : "rax", "rcx", "rdx", "rsi", "memory");
		report("call-indirect-reg-mem-rsp",
		       r1 == w1 && r2 == w2 && r3 == w3 && seen_target == target,
		       "return addresses %s %s %s, [rsp] operand read before the push: %s",
		       r1 == w1 ? "ok" : "WRONG", r2 == w2 ? "ok" : "WRONG",
		       r3 == w3 ? "ok" : "WRONG", seen_target == target ? "ok" : "WRONG");
	}

	/* jmp through a table in memory (index 2) and through a register. */
	{
		uint32_t v1, v2;
		__asm__ volatile(".pushsection .rodata\n\t"
				 ".balign 8\n"
				 "7: .quad 10f, 11f, 12f, 13f\n\t"
				 ".popsection\n\t"
				 "jmp *7b(,%q2,8)\n"
				 "10: movl $10, %0\n\tjmp 9f\n"
				 "11: movl $11, %0\n\tjmp 9f\n"
				 "12: movl $12, %0\n\tjmp 9f\n"
				 "13: movl $13, %0\n"
				 "9: movq $14f, %%rax\n\t"
				 "jmp *%%rax\n\t"
				 "movl $0, %1\n\t"
				 "jmp 15f\n"
				 "14: movl $14, %1\n"
				 "15:"
				 : "=&r"(v1), "=&r"(v2)
				 : "r"((uintptr_t)2)
				 : "rax", "memory");
		uint64_t got[] = { v1, v2 }, want2[] = { 12, 14 };
		CHECK_VALS("jmp-indirect-table-and-reg", got, want2);
	}
}

/* ------------------------------------------------------- far transfers */

static void far_checks(void)
{
	uintptr_t sp0, sp1, cs, slot, want;

	/* ljmp through a memory operand (m16:32) to the 64-bit code segment. */
	__asm__ volatile(".pushsection .data\n"
			 "7: .long 8f\n\t"
			 ".word 0x18\n\t"
			 ".popsection\n\t"
			 "xorl %k0, %k0\n\t"
			 "ljmp *7b\n\t"
			 "movq $0xBAD, %0\n\t"
			 "jmp 9f\n"
			 "8: mov %%cs, %k0\n"
			 "9:"
			 : "=&r"(cs)
			 :
			 : "memory");
	check_eq("ljmp-mem-m16-32", cs, SEL_CODE64);

	/* lcall through m16:32 pushes CS and EIP as two 32-bit slots (the
	 * default operand size of far CALL in 64-bit mode); only the low 16
	 * bits of the CS slot are defined. lretl pops them again. */
	__asm__ volatile(".pushsection .data\n"
			 "7: .long 4f\n\t"
			 ".word 0x18\n\t"
			 ".popsection\n\t"
			 "mov %%rsp, %[sp0]\n\t"
			 "movq $3f, %[want]\n\t"
			 "lcall *7b\n"
			 "3: jmp 5f\n"
			 "4: mov (%%rsp), %[slot]\n\t"
			 "mov %%rsp, %[sp1]\n\t"
			 "lretl\n"
			 "5:"
			 : [sp0] "=&r"(sp0), [sp1] "=&r"(sp1), [slot] "=&r"(slot), [want] "=&r"(want)
			 :
			 : "memory");
	{
		uint64_t got[] = { (uint32_t)slot == (uint32_t)want, (slot >> 32) & 0xFFFF,
				   (uint64_t)(sp1 - sp0) };
		uint64_t want2[] = { 1, SEL_CODE64, (uint64_t)-8 };
		CHECK_VALS("lcall-mem-pushes-cs-eip", got, want2);
	}

	/* Far return to the same privilege through a far pointer built on the
	 * stack (RIP, CS), with lretq $16 dropping two argument slots. */
	__asm__ volatile("mov %%rsp, %[sp0]\n\t"
			 "pushq $0x11\n\t"
			 "pushq $0x22\n\t"
			 "pushq $0x18\n\t"
			 "pushq $4f\n\t"
			 "lretq $16\n\t"
			 "ud2\n"
			 "4: mov %%rsp, %[sp1]\n\t"
			 "mov %%cs, %k[cs]"
			 : [sp0] "=&r"(sp0), [sp1] "=&r"(sp1), [cs] "=&r"(cs)
			 :
			 : "memory");
	{
		uint64_t got[] = { cs, (uint64_t)(sp1 - sp0) }, want2[] = { SEL_CODE64, 0 };
		CHECK_VALS("lretq-imm16-far-pointer-on-stack", got, want2);
	}

	/* iretq to the same level: pops RIP, CS, RFLAGS, RSP and SS, so RSP
	 * can move (here 256 bytes down) and the flags image (CF, ZF) is live. */
	{
		uintptr_t fl, sp_after;
		__asm__ volatile("mov %%rsp, %%r8\n\t"
				 "lea -256(%%rsp), %%rcx\n\t"
				 "mov %%ss, %%eax\n\t"
				 "pushq %%rax\n\t"
				 "pushq %%rcx\n\t"
				 "pushfq\n\t"
				 "orq $0x41, (%%rsp)\n\t"
				 "mov %%cs, %%eax\n\t"
				 "pushq %%rax\n\t"
				 "pushq $4f\n\t"
				 "iretq\n"
				 "4: pushfq\n\t"
				 "popq %[fl]\n\t"
				 "mov %%rsp, %[sp]\n\t"
				 "sub %%r8, %[sp]\n\t"
				 "mov %%r8, %%rsp"
				 : [fl] "=&r"(fl), [sp] "=&r"(sp_after)
				 :
				 : "rax", "rcx", "r8", "memory", "cc");
		uint64_t got[] = { fl & (CF | ZF), (uint64_t)sp_after };
		uint64_t want2[] = { CF | ZF, (uint64_t)-256 };
		CHECK_VALS("iretq-same-level-moves-rsp", got, want2);
	}
}

/* ------------------------------------------------------------- LOOP */

static void loop_checks(void)
{
	uint64_t n, c, p;

	/* loop: RCX = 5 runs the body 5 times, RCX ends at 0. */
	n = 5, c = 0;
	__asm__ volatile("1: incl %k1\n\tloop 1b" : "+c"(n), "+r"(c) : : "cc");
	{
		uint64_t got[] = { c, n }, want[] = { 5, 0 };
		CHECK_VALS("loop", got, want);
	}

	/* loope over {3,3,3,4,3} comparing with 3: the 4th compare is unequal:
	 * 4 iterations, RCX = 1, RSI advanced by 16. */
	{
		static const uint32_t a[] = { 3, 3, 3, 4, 3 };
		n = 5, p = (uintptr_t)a;
		__asm__ volatile("1: cmpl $3, (%1)\n\tlea 4(%1), %1\n\tloope 1b"
				 : "+c"(n), "+r"(p) : : "cc", "memory");
		uint64_t got[] = { n, p - (uintptr_t)a }, want[] = { 1, 16 };
		CHECK_VALS("loope-stops-on-ne", got, want);
	}

	/* loopne over {1,2,0,5,6} comparing with 0: the 3rd is equal: RCX = 2. */
	{
		static const uint32_t a[] = { 1, 2, 0, 5, 6 };
		n = 5, p = (uintptr_t)a;
		__asm__ volatile("1: cmpl $0, (%1)\n\tlea 4(%1), %1\n\tloopne 1b"
				 : "+c"(n), "+r"(p) : : "cc", "memory");
		uint64_t got[] = { n, p - (uintptr_t)a }, want[] = { 2, 12 };
		CHECK_VALS("loopne-stops-on-eq", got, want);
	}

	/* loope that runs out of count with every compare equal: RCX = 0, and
	 * loop ends even though ZF = 1. */
	{
		static const uint32_t a[] = { 3, 3 };
		uintptr_t f;
		n = 2, p = (uintptr_t)a;
		__asm__ volatile("1: cmpl $3, (%1)\n\tlea 4(%1), %1\n\tloope 1b\n\tpushf\n\tpop %2"
				 : "+c"(n), "+r"(p), "=r"(f) : : "cc", "memory");
		uint64_t got[] = { n, p - (uintptr_t)a, f & ZF }, want[] = { 0, 8, ZF };
		CHECK_VALS("loope-count-exhausted", got, want);
	}

	/* 0x67 loop counts in ECX: RCX = 0xAAAAAAAA00000003 runs 3 times; the
	 * count is written back as ECX (zero-extended into RCX). The body
	 * gives up after 10 rounds so that a CPU counting in RCX fails the
	 * check instead of looping for 2^63 rounds. */
	n = 0xAAAAAAAA00000003ull, c = 0;
	__asm__ volatile("1: incl %k1\n\tcmpl $10, %k1\n\tja 2f\n\taddr32 loop 1b\n2:"
			 : "+c"(n), "+r"(c) : : "cc");
	{
		uint64_t got[] = { c, n }, want[] = { 3, 0 };
		CHECK_VALS("loop-addr32-uses-ecx", got, want);
	}

	/* jrcxz: taken for RCX = 0, not taken for RCX = 2^32; jecxz (0x67)
	 * is taken for RCX = 2^32 (ECX = 0). */
	{
		uint32_t t1, t2, t3;
		__asm__ volatile("movl $1, %0\n\tjrcxz 1f\n\tmovl $0, %0\n1:"
				 : "=&r"(t1) : "c"(0ull));
		__asm__ volatile("movl $1, %0\n\tjrcxz 1f\n\tmovl $0, %0\n1:"
				 : "=&r"(t2) : "c"(0x100000000ull));
		__asm__ volatile("movl $1, %0\n\tjecxz 1f\n\tmovl $0, %0\n1:"
				 : "=&r"(t3) : "c"(0x100000000ull));
		uint64_t got[] = { t1, t2, t3 }, want[] = { 1, 0, 1 };
		CHECK_VALS("jrcxz-jecxz", got, want);
	}
}

/* -------------------------------------------------- conditions: Jcc etc. */

/*
 * The 16 conditions in opcode order: O NO B AE E NE BE A S NS P NP L GE LE G.
 * For each flag pattern, the mask of conditions that hold (bit i =
 * condition i), worked out from the definitions (O: OF, B: CF, E: ZF,
 * BE: CF|ZF, S: SF, P: PF, L: SF!=OF, LE: ZF|(SF!=OF); odd codes negate):
 *   flags 0      : NO AE NE A NS NP GE G              = 0xAAAA
 *   CF           : NO B NE BE NS NP GE G              = 0xAA66
 *   ZF           : NO AE E BE NS NP GE LE             = 0x6A5A
 *   SF           : NO AE NE A S NP L LE               = 0x59AA
 *   OF           : O AE NE A NS NP L LE               = 0x5AA9
 *   PF           : NO AE NE A NS P GE G               = 0xA6AA
 *   SF|OF        : O AE NE A S NP GE G                = 0xA9A9
 *   CF|ZF        : NO B E BE NS NP GE LE              = 0x6A56
 *   ZF|SF        : NO AE E BE S NP L LE               = 0x595A
 *   all six      : O B E BE S P GE LE                 = 0x6555
 */
static const uintptr_t cc_flags[] = { 0, CF, ZF, SF, OF, PF, SF | OF, CF | ZF, ZF | SF, ALLF };
static const uint16_t cc_want[] = { 0xAAAA, 0xAA66, 0x6A5A, 0x59AA, 0x5AA9,
				    0xA6AA, 0xA9A9, 0x6A56, 0x595A, 0x6555 };
#define NPAT (sizeof(cc_flags) / sizeof(cc_flags[0]))

#define ALLCC(M)                                                                          \
	M("o", 0) M("no", 1) M("b", 2) M("ae", 3) M("e", 4) M("ne", 5) M("be", 6) M("a", 7) \
	M("s", 8) M("ns", 9) M("p", 10) M("np", 11) M("l", 12) M("ge", 13) M("le", 14)   \
	M("g", 15)

#define JCC8(cc, i) "j" cc " 1f\n\tjmp 2f\n1: movb $1, " #i "(%[a])\n2:\n\t"
#define JCC32(cc, i) "%{disp32%} j" cc " 1f\n\tjmp 2f\n1: movb $1, " #i "(%[a])\n2:\n\t"
#define SETCC(cc, i) "set" cc " " #i "(%[a])\n\t"
#define CMOVCC(cc, i) "movl $0, %%ecx\n\tcmov" cc "l %%edx, %%ecx\n\tmovb %%cl, " #i "(%[a])\n\t"

static uint16_t to_mask(const uint8_t *a)
{
	uint16_t m = 0;
	for (unsigned i = 0; i < 16; i++)
		m |= (uint16_t)((a[i] & 1) << i);
	return m;
}

static void report_masks(const char *name, const uint16_t *got)
{
	char buf[128];
	int len = 0, ok = 1;

	for (unsigned p = 0; p < NPAT; p++) {
		ok &= got[p] == cc_want[p];
		len += snprintf(buf + len, sizeof(buf) - len, "%s%04x", p ? " " : "", got[p]);
	}
	if (ok)
		report(name, 1, "%s", buf);
	else
		report(name, 0, "got %s, want aaaa aa66 6a5a 59aa 5aa9 a6aa a9a9 6a56 595a 6555",
		       buf);
}

static void condition_checks(void)
{
	uint8_t a[16];
	uint16_t j8[NPAT], j32[NPAT], set[NPAT], cmov[NPAT];

	for (unsigned p = 0; p < NPAT; p++) {
		uintptr_t f = cc_flags[p] | 2;

		memset(a, 0, sizeof(a));
		__asm__ volatile("push %[f]\n\tpopf\n\t" ALLCC(JCC8) : : [a] "r"(a), [f] "r"(f)
				 : "memory", "cc");
		j8[p] = to_mask(a);

		memset(a, 0, sizeof(a));
		__asm__ volatile("push %[f]\n\tpopf\n\t" ALLCC(JCC32) : : [a] "r"(a), [f] "r"(f)
				 : "memory", "cc");
		j32[p] = to_mask(a);

		memset(a, 0xFE, sizeof(a)); /* setcc writes 0 or 1 over 0xFE */
		__asm__ volatile("push %[f]\n\tpopf\n\t" ALLCC(SETCC) : : [a] "r"(a), [f] "r"(f)
				 : "memory", "cc");
		set[p] = to_mask(a);
		for (unsigned i = 0; i < 16; i++)
			if (a[i] > 1)
				set[p] = 0xDEAD;

		memset(a, 0, sizeof(a));
		__asm__ volatile("push %[f]\n\tpopf\n\t" ALLCC(CMOVCC)
				 :
				 : [a] "r"(a), [f] "r"(f), "d"(1)
				 : "rcx", "memory", "cc");
		cmov[p] = to_mask(a);
	}
	report_masks("jcc-rel8-16-conditions", j8);
	report_masks("jcc-rel32-16-conditions", j32);
	report_masks("setcc-16-conditions", set);
	report_masks("cmovcc-16-conditions", cmov);

	/* cmov with a 32-bit operand writes the destination even when the
	 * condition is false: bits 63:32 are cleared. With a 64-bit operand
	 * and a false condition nothing changes. */
	{
		uint64_t r1 = 0xFFFFFFFF00000001ull, r2 = 0xFFFFFFFF00000001ull;
		__asm__ volatile("push %2\n\tpopf\n\tcmovzl %k3, %k0\n\tcmovzq %3, %1"
				 : "+r"(r1), "+r"(r2)
				 : "r"((uintptr_t)2), "r"(0x5555555555555555ull)
				 : "cc", "memory");
		uint64_t got[] = { r1, r2 }, want[] = { 1, 0xFFFFFFFF00000001ull };
		CHECK_VALS("cmov32-false-zero-extends", got, want);
	}
}

/* ---------------------------------------------------------- ENTER/LEAVE */

/*
 * Run `enter size, level` with RBP = B0 and report, relative to R0 (RSP
 * before enter): the four stack slots below R0, RBP and RSP after enter,
 * then RSP and RBP after leave.
 */
#define ENTER_TEST(size, level, out, b0)                                                \
	__asm__ volatile("push %%rbp\n\t"                                                \
			 "mov %%rsp, %%r8\n\t"                                           \
			 "mov %[bp], %%rbp\n\t"                                          \
			 "enter $" #size ", $" #level "\n\t"                             \
			 "mov -8(%%r8), %%r9\n\tmov %%r9, 0(%[o])\n\t"                   \
			 "mov -16(%%r8), %%r9\n\tmov %%r9, 8(%[o])\n\t"                  \
			 "mov -24(%%r8), %%r9\n\tmov %%r9, 16(%[o])\n\t"                 \
			 "mov -32(%%r8), %%r9\n\tmov %%r9, 24(%[o])\n\t"                 \
			 "mov %%rbp, 32(%[o])\n\t"                                       \
			 "mov %%rsp, 40(%[o])\n\t"                                       \
			 "leave\n\t"                                                     \
			 "mov %%rsp, 48(%[o])\n\t"                                       \
			 "mov %%rbp, 56(%[o])\n\t"                                       \
			 "mov %%r8, 64(%[o])\n\t"                                        \
			 "pop %%rbp"                                                     \
			 :                                                               \
			 : [o] "r"(out), [bp] "r"(b0)                                    \
			 : "r8", "r9", "memory")

static void enter_checks(void)
{
	static uint64_t frame[8];
	uint64_t o[9];
	uintptr_t b0 = (uintptr_t)&frame[4];

	frame[3] = 0x1111; /* [B0 - 8] */
	frame[2] = 0x2222; /* [B0 - 16] */

	/* enter $32, $0: push RBP (B0 at R0-8); RBP = R0-8; RSP = R0-8-32.
	 * leave: RSP = RBP, pop RBP: back to R0 and B0. */
	for (unsigned i = 0; i < 9; i++)
		o[i] = 0;
	ENTER_TEST(32, 0, o, b0);
	{
		uint64_t r0 = o[8];
		uint64_t got[] = { o[0] == b0, r0 - o[4], r0 - o[5], o[6] - r0, o[7] == b0 };
		uint64_t want[] = { 1, 8, 40, 0, 1 };
		CHECK_VALS("enter-level-0-leave", got, want);
	}

	/* enter $16, $1: push B0; frame = R0-8; push frame (at R0-16);
	 * RBP = R0-8; RSP = R0-16-16 = R0-32. */
	ENTER_TEST(16, 1, o, b0);
	{
		uint64_t r0 = o[8];
		uint64_t got[] = { o[0] == b0, r0 - o[1], r0 - o[4], r0 - o[5], o[6] - r0,
				   o[7] == b0 };
		uint64_t want[] = { 1, 8, 8, 32, 0, 1 };
		CHECK_VALS("enter-level-1", got, want);
	}

	/* enter $8, $3: push B0 (R0-8); frame = R0-8; copy two outer frame
	 * pointers from [B0-8] = 0x1111 (to R0-16) and [B0-16] = 0x2222 (to
	 * R0-24); push frame (R0-32); RBP = R0-8; RSP = R0-32-8 = R0-40. */
	ENTER_TEST(8, 3, o, b0);
	{
		uint64_t r0 = o[8];
		uint64_t got[] = { o[0] == b0, o[1], o[2], r0 - o[3], r0 - o[4], r0 - o[5],
				   o[6] - r0, o[7] == b0 };
		uint64_t want[] = { 1, 0x1111, 0x2222, 8, 8, 40, 0, 1 };
		CHECK_VALS("enter-level-3-copies-frame-pointers", got, want);
	}
}

/* ------------------------------------------------- stack and segments */

static void stack_checks(void)
{
	/* push %rsp pushes the value before the push; pop %rsp loads the
	 * popped value (no increment afterwards); pop (%rsp) computes the
	 * address after the increment. */
	{
		uint64_t o[4];
		__asm__ volatile("mov %%rsp, %%r8\n\t"
				 "push %%rsp\n\t"
				 "pop %%rax\n\t"
				 "sub %%r8, %%rax\n\t"
				 "mov %%rax, 0(%[o])\n\t"
				 "lea -64(%%rsp), %%rax\n\t"
				 "push %%rax\n\t"
				 "pop %%rsp\n\t"
				 "mov %%rsp, %%rax\n\t"
				 "mov %%r8, %%rsp\n\t"
				 "sub %%r8, %%rax\n\t"
				 "mov %%rax, 8(%[o])\n\t"
				 "pushq $0x77\n\t"
				 "pushq $0x55\n\t"
				 "pop (%%rsp)\n\t"
				 "mov %%rsp, %%rax\n\t"
				 "sub %%r8, %%rax\n\t"
				 "mov %%rax, 16(%[o])\n\t"
				 "pop %%rax\n\t"
				 "mov %%rax, 24(%[o])\n\t"
				 "mov %%r8, %%rsp"
				 :
				 : [o] "r"(o)
				 : "rax", "r8", "memory");
		/* push rsp: popped R0 (diff 0); pop rsp: R0-64; pop (rsp): RSP =
		 * R0-8 and the 0x55 lands at R0-8, which pop rax reads back. */
		uint64_t want[] = { 0, (uint64_t)-64, (uint64_t)-8, 0x55 };
		CHECK_VALS("push-rsp-pop-rsp-pop-mem-rsp", o, want);
	}

	/* Segment registers: push %fs pushes 8 bytes, the selector
	 * zero-extended over whatever was in the slot; pop %fs of a null
	 * selector is allowed; pushw/popw %gs move RSP by 2. */
	{
		uint64_t o[6];
		__asm__ volatile("mov %%rsp, %%r8\n\t"
				 "movq $-1, -8(%%rsp)\n\t"
				 "push %%fs\n\t"
				 "mov (%%rsp), %%rax\n\t"
				 "mov %%rax, 0(%[o])\n\t"
				 "mov %%rsp, %%rax\n\t"
				 "sub %%r8, %%rax\n\t"
				 "mov %%rax, 8(%[o])\n\t"
				 "movq $0, (%%rsp)\n\t"
				 "pop %%fs\n\t"
				 "mov %%fs, %%eax\n\t"
				 "mov %%rax, 16(%[o])\n\t"
				 "pushw %%gs\n\t"
				 "mov %%rsp, %%rax\n\t"
				 "sub %%r8, %%rax\n\t"
				 "mov %%rax, 24(%[o])\n\t"
				 "movw $0, (%%rsp)\n\t"
				 "popw %%gs\n\t"
				 "mov %%gs, %%eax\n\t"
				 "mov %%rax, 32(%[o])\n\t"
				 "mov %%rsp, %%rax\n\t"
				 "sub %%r8, %%rax\n\t"
				 "mov %%rax, 40(%[o])\n\t"
				 "mov %[ds], %%eax\n\t"
				 "mov %%eax, %%fs\n\t"
				 "mov %%eax, %%gs\n\t"
				 "mov %%r8, %%rsp"
				 :
				 : [o] "r"(o), [ds] "i"(SEL_DATA)
				 : "rax", "r8", "memory");
		uint64_t want[] = { SEL_DATA, (uint64_t)-8, 0, (uint64_t)-2, 0, 0 };
		CHECK_VALS("push-pop-fs-gs", o, want);
	}
}

/* --------------------------------------------------------- faults */

static void fault_checks(void)
{
	uintptr_t done;
	static uintptr_t sp_before; /* static: not addressed relative to RSP */

	/* push %ds (0x1E) is invalid in 64-bit mode: #UD. */
	done = 0;
	arm();
	__asm__ volatile(ARM "1: .byte 0x1E\n" RESUMED : ARM_OUT : : "memory");
	expect("push-ds-ud-in-64-bit", VEC_UD, 0, fault_ip, done);

	/* jmp to a non-canonical address: #GP(0) reported at the jmp itself. */
	done = 0;
	arm();
	__asm__ volatile(ARM "movabsq $0x0000800000000000, %%rax\n"
			     "1: jmp *%%rax\n" RESUMED
			 : ARM_OUT
			 :
			 : "rax", "memory");
	expect("jmp-non-canonical-gp-at-jmp", VEC_GP, 0, fault_ip, done);

	/* call to a non-canonical address: #GP(0) at the call, and no return
	 * address was pushed (RSP in the frame = RSP before the call). */
	done = 0;
	arm();
	__asm__ volatile(ARM "movabsq $0xFFFF7FFFFFFFF000, %%rax\n\t"
			     "mov %%rsp, %[sp]\n"
			     "1: call *%%rax\n" RESUMED
			 : ARM_OUT, [sp] "=m"(sp_before)
			 :
			 : "rax", "memory");
	expect("call-non-canonical-gp-at-call", VEC_GP, 0, fault_ip, done);
	report("call-non-canonical-rsp-unchanged", hits == 1 && seen_sp == sp_before,
	       "rsp in the #GP frame %+ld from before the call", (long)(seen_sp - sp_before));

	/* ret to a non-canonical address: #GP(0) at the ret; RSP still points
	 * at the bad return address. */
	done = 0;
	arm();
	__asm__ volatile(ARM "mov %%rsp, %%r8\n\t"
			     "movabsq $0x8000000000000000, %%rax\n\t"
			     "pushq %%rax\n\t"
			     "mov %%rsp, %[sp]\n"
			     "1: ret\n" RESUMED "mov %%r8, %%rsp"
			 : ARM_OUT, [sp] "=m"(sp_before)
			 :
			 : "rax", "r8", "memory");
	expect("ret-non-canonical-gp-at-ret", VEC_GP, 0, fault_ip, done);
	report("ret-non-canonical-rsp-unchanged", hits == 1 && seen_sp == sp_before,
	       "rsp in the #GP frame %+ld from before the ret", (long)(seen_sp - sp_before));

	/* By contrast, a jump to a canonical but unmapped address completes and
	 * the fetch faults: #PF at the target, CR2 = target (error bits 3:0:
	 * not present, read, supervisor; bit 4 is only defined with NXE). */
	done = 0;
	arm();
	__asm__ volatile("movq $2f, %[rip]\n\t"
			 "movabsq $0xFFFF800000001000, %%rax\n\t"
			 "jmp *%%rax\n" RESUMED
			 : [rip] "=m"(resume_ip), [done] "+r"(done)
			 :
			 : "rax", "memory");
	{
		int ok = hits == 1 && seen_vector == VEC_PF && (seen_error & 0xF) == 0 &&
			 seen_ip == 0xFFFF800000001000ull && seen_cr2 == 0xFFFF800000001000ull &&
			 done;
		report("jmp-canonical-unmapped-pf-at-target", ok,
		       "vector %ld error&0xf %#lx ip %#lx cr2 %#lx", (long)seen_vector,
		       (unsigned long)(seen_error & 0xF), (unsigned long)seen_ip,
		       (unsigned long)seen_cr2);
	}
}

/* ------------------------------------------------ compatibility mode */

/*
 * ljmp through m16:32 to the 32-bit code segment (compatibility mode);
 * there 0x48 is DEC EAX (in 64-bit mode it would be a REX prefix) and
 * PUSH moves ESP by 4; then a direct far jmp back to the 64-bit segment.
 * Second round trip: lretq into compatibility mode, lretl back.
 * The 32-bit code is in section .boot, which the build disassembles as
 * 32-bit code. R8-R15 and the upper halves of the registers are not
 * relied on across compatibility mode (the SDM leaves them undefined):
 * RDX and RSI are saved on the stack, the others are clobbers, and the
 * output pointer is in RDI below 4 GiB.
 */
static void compat_checks(void)
{
	uint64_t o[6];

	__asm__ volatile(".pushsection .data\n"
			 "7: .long 20f\n\t"
			 ".word 0x08\n\t"
			 ".popsection\n\t"
			 ".pushsection .boot, \"ax\"\n\t"
			 ".code32\n"
			 "20: movl %%cs, %%ebx\n\t"
			 "movl $5, %%eax\n\t"
			 ".byte 0x48\n\t" /* dec %eax */
			 "nop\n\t"
			 "movl %%esp, %%ecx\n\t"
			 "pushl %%eax\n\t"
			 "subl %%esp, %%ecx\n\t"
			 "popl %%eax\n\t"
			 "ljmp $0x18, $21f\n"
			 "22: movl %%cs, %%ebx\n\t"
			 "movl $0x7777, %%eax\n\t"
			 "lretl\n\t"
			 ".code64\n\t"
			 ".popsection\n\t"
			 "pushq %%rdx\n\t"
			 "pushq %%rsi\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "xorl %%ebx, %%ebx\n\t"
			 "xorl %%ecx, %%ecx\n\t"
			 "ljmp *7b\n"
			 "21: movq %%rbx, 0(%[o])\n\t"
			 "movq %%rax, 8(%[o])\n\t"
			 "movq %%rcx, 16(%[o])\n\t"
			 "mov %%cs, %%eax\n\t"
			 "movq %%rax, 24(%[o])\n\t"
			 /* round trip 2: lretq to 0x08:22, lretl back to 0x18:23 */
			 "pushq $0x18\n\t" /* low dword: CS for lretl (EIP below) */
			 "movl $23f, 0(%%rsp)\n\t"
			 "movl $0x18, 4(%%rsp)\n\t"
			 "pushq $0x08\n\t"
			 "pushq $22b\n\t"
			 "lretq\n"
			 "23: movq %%rbx, 32(%[o])\n\t"
			 "movq %%rax, 40(%[o])\n\t"
			 "popq %%rsi\n\t"
			 "popq %%rdx"
			 :
			 : [o] "D"(o)
			 : "rax", "rbx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
			   "memory", "cc");
	/* cs in compat mode 0x08; dec eax: 4; push moved ESP by 4; cs back
	 * 0x18; second trip: cs 0x08, eax 0x7777. */
	uint64_t want[] = { SEL_CODE32, 4, 4, SEL_CODE64, SEL_CODE32, 0x7777 };
	CHECK_VALS("compat-mode-round-trips", o, want);
}

int main(void)
{
	faults_on();
	near_checks();
	far_checks();
	loop_checks();
	condition_checks();
	stack_checks();
	fault_checks();
	compat_checks();
	/* Last: kvm_pvm (the development hosts' KVM) stops with an emulation
	 * failure on ENTER with a nesting level above 0. */
	enter_checks();
	faults_off();
	report_done();
}
