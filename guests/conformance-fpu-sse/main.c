/*
 * conformance-fpu-sse - the x87 FPU, SSE/SSE2 and MMX, one check per line.
 *
 * Expected values are IEEE 754 results worked out from the operands: the
 * 64-bit significands of the x87 constants and of 1/3 and sqrt(2) are
 * their binary expansions rounded as the comment says; double results are
 * the correctly rounded doubles (the same a C compiler folds). Status
 * words: IE 0x1, DE 0x2, ZE 0x4, OE 0x8, UE 0x10, PE 0x20, SF 0x40,
 * ES 0x80, C0 0x100, C1 0x200, C2 0x400, TOP bits 13:11, C3 0x4000,
 * B 0x8000. MXCSR flags use bits 5:0 the same way, masks bits 12:7.
 *
 * The C code is built with -mgeneral-regs-only like every guest, so the
 * compiler keeps nothing in x87 or XMM registers and the asm blocks need
 * not name them as clobbered.
 */
#include "conf.h"

#define CR0_MP (1ul << 1)
#define CR0_EM (1ul << 2)
#define CR0_TS (1ul << 3)
#define CR0_NE (1ul << 5)
#define CR4_OSFXSR (1ul << 9)
#define CR4_OSXMMEXCPT (1ul << 10)

static inline uint64_t cr0_get(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}
static inline void cr0_set(uint64_t v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline uint64_t cr4_get(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}
static inline void cr4_set(uint64_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

static inline void fldcw(uint16_t cw) { __asm__ volatile("fldcw %0" : : "m"(cw)); }
static inline uint16_t fnstsw(void)
{
	uint16_t sw;
	__asm__ volatile("fnstsw %0" : "=m"(sw));
	return sw;
}
static inline void ldmxcsr(uint32_t v) { __asm__ volatile("ldmxcsr %0" : : "m"(v)); }
static inline uint32_t stmxcsr(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

struct f80 {
	uint64_t sig;
	uint16_t se;
} __attribute__((packed));

static void check_f80(const char *name, struct f80 got, uint16_t se, uint64_t sig)
{
	if (got.se == se && got.sig == sig)
		report(name, 1, "%#x:%#llx", got.se, (unsigned long long)got.sig);
	else
		report(name, 0, "got %#x:%#llx, want %#x:%#llx", got.se,
		       (unsigned long long)got.sig, se, (unsigned long long)sig);
}

/* The encoding of a double (no floating-point code: the union is folded). */
#define dbits(x) ((union { double d_; uint64_t u_; }){ .d_ = (x) }.u_)

/* ------------------------------------------------------------------ x87 */

static void x87_basics(void)
{
	uint16_t cw;
	struct f80 r;

	__asm__ volatile("fninit\n\tfnstcw %0" : "=m"(cw));
	check_eq("x87-fninit-control-word", cw, 0x037F);
	check_eq("x87-fninit-status-word", fnstsw(), 0);

	/* 1.0: exponent 0x3FFF, significand 1.000… */
	__asm__ volatile("fninit\n\tfld1\n\tfstpt %0" : "=m"(r));
	check_f80("x87-fld1", r, 0x3FFF, 0x8000000000000000ull);
	/* pi = 0xC90FDAA22168C234C4C6…: to nearest …C235, down/zero …C234. */
	__asm__ volatile("fninit\n\tfldpi\n\tfstpt %0" : "=m"(r));
	check_f80("x87-fldpi-nearest", r, 0x4000, 0xC90FDAA22168C235ull);
	fldcw(0x077F);
	__asm__ volatile("fldpi\n\tfstpt %0" : "=m"(r));
	check_f80("x87-fldpi-down", r, 0x4000, 0xC90FDAA22168C234ull);
	/* ln 2 = 0xB17217F7D1CF79ABC9E3…: up gives …79AC. */
	fldcw(0x0B7F);
	__asm__ volatile("fldln2\n\tfstpt %0" : "=m"(r));
	check_f80("x87-fldln2-up", r, 0x3FFE, 0xB17217F7D1CF79ACull);

	/* 1/3 = 0.AAAA…: 64 bits 0xAAAA…AA, next bit 1 → rounds up to …AB;
	 * PE, C1 (rounded up), TOP 7 after the pop. */
	double three = 3.0;
	uint16_t sw;
	__asm__ volatile("fninit\n\tfld1\n\tfldl %2\n\tfdivrp\n\tfnstsw %1\n\tfstpt %0"
			 : "=m"(r), "=m"(sw)
			 : "m"(three));
	check_f80("x87-one-third", r, 0x3FFD, 0xAAAAAAAAAAAAAAABull);
	check_eq("x87-one-third-status", sw, 0x3A20);

	/* 0.1 + 0.2 in extended precision is exact (54 bits); stored as a
	 * double it rounds to 0x3FD3333333333334. */
	double a = 0.1, b = 0.2, s;
	__asm__ volatile("fninit\n\tfldl %1\n\tfaddl %2\n\tfstpl %0" : "=m"(s) : "m"(a), "m"(b));
	check_eq("x87-add-store-double", dbits(s), 0x3FD3333333333334ull);

	/* sqrt(2) = 1.6A09E667F3BCC908B2FB…: 64 bits …6484 (next bits 0x5…). */
	double two = 2.0;
	__asm__ volatile("fninit\n\tfldl %1\n\tfsqrt\n\tfstpt %0" : "=m"(r) : "m"(two));
	check_f80("x87-fsqrt-2", r, 0x3FFF, 0xB504F333F9DE6484ull);
}

static void x87_integers(void)
{
	double pos = 2.5, neg = -2.5, big = 1e10;
	int32_t out[4];
	int16_t w;
	static const uint16_t cws[4] = { 0x037F, 0x077F, 0x0B7F, 0x0F7F };
	const char *names[4] = { "x87-fistp-nearest", "x87-fistp-down", "x87-fistp-up",
				  "x87-fistp-zero" };
	/* 2.5 and -2.5 under each rounding control. */
	static const int32_t want_pos[4] = { 2, 2, 3, 2 }, want_neg[4] = { -2, -3, -2, -2 };

	for (int i = 0; i < 4; i++) {
		__asm__ volatile("fninit");
		fldcw(cws[i]);
		__asm__ volatile("fldl %2\n\tfistpl %0\n\tfldl %3\n\tfistpl %1"
				 : "=m"(out[0]), "=m"(out[1])
				 : "m"(pos), "m"(neg));
		uint64_t got[2] = { (uint64_t)(int64_t)out[0], (uint64_t)(int64_t)out[1] };
		uint64_t want[2] = { (uint64_t)(int64_t)want_pos[i], (uint64_t)(int64_t)want_neg[i] };
		CHECK_VALS(names[i], got, want);
	}
	/* 1e10 does not fit 16 bits: integer indefinite 0x8000, IE. */
	__asm__ volatile("fninit\n\tfldl %1\n\tfistps %0" : "=m"(w) : "m"(big));
	check_eq("x87-fistp-overflow", (uint16_t)w, 0x8000);
	check_eq("x87-fistp-overflow-status", fnstsw() & 0x3F, 0x1);

	int64_t q = -123456789012345ll;
	double d;
	__asm__ volatile("fninit\n\tfildll %1\n\tfstpl %0" : "=m"(d) : "m"(q));
	check_eq("x87-fild-m64", dbits(d), dbits(-123456789012345.0));
}

static void x87_compare(void)
{
	double one = 1.0, two = 2.0, nan = __builtin_nan("");
	uint64_t f;
	uint16_t sw;

	/* FCOMI 1 vs 2: CF. */
	__asm__ volatile("fninit\n\tfldl %2\n\tfldl %1\n\tfcomi %%st(1), %%st\n\tpushfq\n\tpopq %0"
			 : "=r"(f)
			 : "m"(one), "m"(two)
			 : "cc");
	check_eq("x87-fcomi-less", f & (ZF | PF | CF | OF | SF | AF), CF);
	/* FUCOMIP with a QNaN: unordered (ZF PF CF), no IE. */
	__asm__ volatile("fninit\n\tfldl %2\n\tfldl %1\n\tfucomip %%st(1), %%st\n\tpushfq\n\tpopq %0"
			 : "=r"(f)
			 : "m"(nan), "m"(one)
			 : "cc");
	check_eq("x87-fucomip-nan", f & (ZF | PF | CF), ZF | PF | CF);
	check_eq("x87-fucomip-nan-status", fnstsw() & 0x3F, 0);
	/* FCOM equal: C3; with a QNaN: C3 C2 C0 and IE. */
	__asm__ volatile("fninit\n\tfldl %1\n\tfcoml %1\n\tfnstsw %0" : "=m"(sw) : "m"(one));
	check_eq("x87-fcom-equal", sw, 0x4000 | 0x3800);
	__asm__ volatile("fninit\n\tfldl %1\n\tfcoml %2\n\tfnstsw %0"
			 : "=m"(sw)
			 : "m"(one), "m"(nan));
	check_eq("x87-fcom-nan", sw, 0x4000 | 0x400 | 0x100 | 0x1 | 0x3800);
	/* FTST of -2: C0 (less than zero). FXAM of -2: C2 C1 (negative normal). */
	double m2 = -2.0;
	__asm__ volatile("fninit\n\tfldl %1\n\tftst\n\tfnstsw %0" : "=m"(sw) : "m"(m2));
	check_eq("x87-ftst-negative", sw & 0x4700, 0x100);
	__asm__ volatile("fninit\n\tfldl %1\n\tfxam\n\tfnstsw %0" : "=m"(sw) : "m"(m2));
	check_eq("x87-fxam-negative-normal", sw & 0x4700, 0x600);
	__asm__ volatile("fninit\n\tfxam\n\tfnstsw %0" : "=m"(sw));
	check_eq("x87-fxam-empty", sw & 0x4500, 0x4100);
	/* FCMOVB with CF set copies ST(1). */
	__asm__ volatile("fninit\n\tfldl %1\n\tfldl %2\n\tstc\n\tfcmovb %%st(1), %%st\n\tfstpl %0\n\tfstp %%st(0)"
			 : "=m"(m2)
			 : "m"(one), "m"(two)
			 : "cc");
	check_eq("x87-fcmovb", dbits(m2), dbits(1.0));
}

static void x87_stack_and_misc(void)
{
	double d, e;
	uint16_t sw;

	/* Stack underflow: IE SF; ST(0) gets the indefinite. */
	__asm__ volatile("fninit\n\tfadd %%st(1), %%st\n\tfnstsw %1\n\tfstpl %0" : "=m"(d), "=m"(sw));
	check_eq("x87-stack-underflow", sw, 0x41);
	check_eq("x87-stack-underflow-value", dbits(d), 0xFFF8000000000000ull);
	/* Stack overflow: the ninth push: IE SF C1, TOP wraps to 7. */
	__asm__ volatile("fninit\n\t"
			 "fld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\t"
			 "fnstsw %0\n\tfninit"
			 : "=m"(sw));
	check_eq("x87-stack-overflow", sw, 0x3A41);

	/* FPREM 7.5, 2: remainder 1.5, quotient 3 (C1 = bit 0, C3 = bit 1). */
	double x = 7.5, y = 2.0;
	__asm__ volatile("fninit\n\tfldl %3\n\tfldl %2\n\tfprem\n\tfnstsw %1\n\tfstpl %0\n\tfstp %%st(0)"
			 : "=m"(d), "=m"(sw)
			 : "m"(x), "m"(y));
	check_eq("x87-fprem", dbits(d), dbits(1.5));
	check_eq("x87-fprem-quotient-bits", sw & 0x4700, 0x4200);
	/* FPREM1: 7.5 / 2 = 3.75 rounds to 4: remainder -0.5, quotient 4 (C0). */
	__asm__ volatile("fninit\n\tfldl %3\n\tfldl %2\n\tfprem1\n\tfnstsw %1\n\tfstpl %0\n\tfstp %%st(0)"
			 : "=m"(d), "=m"(sw)
			 : "m"(x), "m"(y));
	check_eq("x87-fprem1", dbits(d), dbits(-0.5));
	check_eq("x87-fprem1-quotient-bits", sw & 0x4700, 0x100);
	/* FXTRACT -48 = -1.5 * 2^5. */
	double m48 = -48.0;
	__asm__ volatile("fninit\n\tfldl %2\n\tfxtract\n\tfstpl %0\n\tfstpl %1"
			 : "=m"(d), "=m"(e)
			 : "m"(m48));
	uint64_t got[2] = { dbits(d), dbits(e) }, want[2] = { dbits(-1.5), dbits(5.0) };
	CHECK_VALS("x87-fxtract", got, want);
	/* FSCALE 1 * 2^trunc(4.7) = 16. */
	double s47 = 4.7;
	__asm__ volatile("fninit\n\tfldl %1\n\tfld1\n\tfscale\n\tfstpl %0\n\tfstp %%st(0)"
			 : "=m"(d)
			 : "m"(s47));
	check_eq("x87-fscale", dbits(d), dbits(16.0));
	/* FRNDINT 2.5 to nearest even: 2, PE. */
	double h = 2.5;
	__asm__ volatile("fninit\n\tfldl %2\n\tfrndint\n\tfnstsw %1\n\tfstpl %0"
			 : "=m"(d), "=m"(sw)
			 : "m"(h));
	check_eq("x87-frndint", dbits(d), dbits(2.0));
	check_eq("x87-frndint-status", sw & 0x3F, 0x20);

}

static void x87_faults(void)
{
	uintptr_t done;
	uint16_t sw = 0;

	/* ZE unmasked: 1/0 sets ZE ES B; the next waiting instruction is #MF. */
	__asm__ volatile("fninit");
	fldcw(0x037B);
	__asm__ volatile("fld1\n\tfldz\n\tfdivrp\n\tfnstsw %0" : "=m"(sw));
	check_eq("x87-unmasked-ze-status", sw & 0x80FF, 0x8084);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: fwait\n" RESUMED "fnclex\n\tfninit" : ARM_OUT : : "memory");
	expect("x87-pending-mf", VEC_MF, 0, fault_ip, done);

	uint64_t cr0 = cr0_get();
	cr0_set(cr0 | CR0_TS);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: fld1\n" RESUMED : ARM_OUT : : "memory");
	cr0_set(cr0);
	expect("x87-nm-ts", VEC_NM, 0, fault_ip, done);

	cr0_set(cr0 | CR0_TS | CR0_MP);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: fwait\n" RESUMED : ARM_OUT : : "memory");
	cr0_set(cr0);
	expect("x87-nm-wait-ts-mp", VEC_NM, 0, fault_ip, done);

	cr0_set((cr0 | CR0_TS) & ~CR0_MP);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: fwait\n" RESUMED : ARM_OUT : : "memory");
	cr0_set(cr0);
	expect_none("x87-wait-ts-without-mp", done, "no #NM");
}

/* ------------------------------------------------------------------ SSE */

static void sse_float(void)
{
	static const float pa[4] __attribute__((aligned(16))) = { 1, 2, 3, 4 };
	static const float pb[4] __attribute__((aligned(16))) = { 0.5, 0.25, -3, 1e30f };
	float pr[4] __attribute__((aligned(16)));
	double d;
	double one = 1.0, three = 3.0, two = 2.0;

	ldmxcsr(0x1F80);
	__asm__ volatile("movaps %1, %%xmm0\n\tmulps %2, %%xmm0\n\tmovaps %%xmm0, %0"
			 : "=m"(pr)
			 : "m"(pa), "m"(pb));
	/* 1*0.5, 2*0.25, 3*-3, 4e30 (exact in single? 4e30f = 4 * 1e30f exactly). */
	uint32_t pg[4];
	__builtin_memcpy(pg, pr, 16);
	uint64_t got[4] = { pg[0], pg[1], pg[2], pg[3] };
	uint64_t want[4] = { 0x3F000000, 0x3F000000, 0xC1100000, 0x7249F2CA };
	CHECK_VALS("sse-mulps", got, want);

	/* 1/3 in each rounding mode: nearest/down/zero 0x3FD5555555555555, up …556. */
	static const uint32_t modes[4] = { 0x1F80, 0x3F80, 0x5F80, 0x7F80 };
	static const uint64_t thirds[4] = { 0x3FD5555555555555ull, 0x3FD5555555555555ull,
					    0x3FD5555555555556ull, 0x3FD5555555555555ull };
	const char *names[4] = { "sse-divsd-nearest", "sse-divsd-down", "sse-divsd-up",
				 "sse-divsd-zero" };
	for (int i = 0; i < 4; i++) {
		ldmxcsr(modes[i]);
		__asm__ volatile("movsd %1, %%xmm0\n\tdivsd %2, %%xmm0\n\tmovsd %%xmm0, %0"
				 : "=m"(d)
				 : "m"(one), "m"(three));
		check_eq(names[i], dbits(d), thirds[i]);
	}
	check_eq("sse-divsd-mxcsr", stmxcsr(), 0x7F80 | 0x20);

	ldmxcsr(0x1F80);
	__asm__ volatile("sqrtsd %1, %%xmm0\n\tmovsd %%xmm0, %0" : "=m"(d) : "m"(two));
	check_eq("sse-sqrtsd-2", dbits(d), 0x3FF6A09E667F3BCDull);

	/* Conversions: 2.5 → 2 (ties to even), -2.7 truncated → -2, 3e10 →
	 * indefinite 0x80000000 with IE. */
	double h = 2.5, m27 = -2.7, big = 3e10;
	uint32_t i1, i2, i3;
	ldmxcsr(0x1F80);
	__asm__ volatile("cvtsd2si %3, %0\n\tcvttsd2si %4, %1\n\tcvttsd2si %5, %2"
			 : "=r"(i1), "=r"(i2), "=r"(i3)
			 : "m"(h), "m"(m27), "m"(big));
	uint64_t cg[4] = { i1, i2, i3, stmxcsr() },
		 cw[4] = { 2, 0xFFFFFFFE, 0x80000000, 0x1F80 | 0x21 };
	CHECK_VALS("sse-cvt-to-int", cg, cw);

	/* 0.1f widened: 0x3DCCCCCD → 0x3FB99999A0000000; 0.1 narrowed → 0x3DCCCCCD. */
	float f01 = 0.1f, fr;
	double d01 = 0.1;
	ldmxcsr(0x1F80);
	__asm__ volatile("cvtss2sd %2, %%xmm0\n\tmovsd %%xmm0, %0\n\tcvtsd2ss %3, %%xmm1\n\tmovss %%xmm1, %1"
			 : "=m"(d), "=m"(fr)
			 : "m"(f01), "m"(d01));
	uint32_t frb;
	__builtin_memcpy(&frb, &fr, 4);
	uint64_t vg[3] = { dbits(d), frb, stmxcsr() }, vw[3] = { 0x3FB99999A0000000ull, 0x3DCCCCCD, 0x1FA0 };
	CHECK_VALS("sse-cvtss2sd-cvtsd2ss", vg, vw);

	/* UCOMISD with a QNaN: ZF PF CF, no IE; COMISD: IE. */
	double nan = __builtin_nan("");
	uint64_t f;
	ldmxcsr(0x1F80);
	__asm__ volatile("movsd %1, %%xmm0\n\tucomisd %2, %%xmm0\n\tpushfq\n\tpopq %0"
			 : "=r"(f)
			 : "m"(one), "m"(nan)
			 : "cc");
	uint64_t ug[2] = { f & (ZF | PF | CF | OF | SF | AF), stmxcsr() }, uw[2] = { ZF | PF | CF, 0x1F80 };
	CHECK_VALS("sse-ucomisd-nan", ug, uw);
	__asm__ volatile("movsd %1, %%xmm0\n\tcomisd %2, %%xmm0\n\tpushfq\n\tpopq %0"
			 : "=r"(f)
			 : "m"(one), "m"(two)
			 : "cc");
	uint64_t og[2] = { f & (ZF | PF | CF | OF | SF | AF), stmxcsr() }, ow[2] = { CF, 0x1F80 };
	CHECK_VALS("sse-comisd-less", og, ow);
	__asm__ volatile("movsd %0, %%xmm0\n\tcomisd %1, %%xmm0" : : "m"(one), "m"(nan) : "cc");
	check_eq("sse-comisd-nan-ie", stmxcsr(), 0x1F81);

	/* MINSD 1, NaN returns the second operand (the NaN), IE. */
	ldmxcsr(0x1F80);
	__asm__ volatile("movsd %1, %%xmm0\n\tminsd %2, %%xmm0\n\tmovsd %%xmm0, %0"
			 : "=m"(d)
			 : "m"(one), "m"(nan));
	uint64_t mg[2] = { dbits(d), stmxcsr() }, mw[2] = { dbits(nan), 0x1F81 };
	CHECK_VALS("sse-minsd-nan", mg, mw);

	/* CMPPS LT / UNORD / NLE on (1, 2, NaN, 4) vs (2, 2, 1, 3). */
	static const float ca[4] __attribute__((aligned(16))) = { 1, 2, __builtin_nanf(""), 4 };
	static const float cb[4] __attribute__((aligned(16))) = { 2, 2, 1, 3 };
	uint32_t m[3][4] __attribute__((aligned(16)));
	ldmxcsr(0x1F80);
	__asm__ volatile("movaps %3, %%xmm0\n\tcmpltps %4, %%xmm0\n\tmovaps %%xmm0, %0\n\t"
			 "movaps %3, %%xmm0\n\tcmpunordps %4, %%xmm0\n\tmovaps %%xmm0, %1\n\t"
			 "movaps %3, %%xmm0\n\tcmpnleps %4, %%xmm0\n\tmovaps %%xmm0, %2"
			 : "=m"(m[0]), "=m"(m[1]), "=m"(m[2])
			 : "m"(ca), "m"(cb));
	uint64_t pg2[3] = { 0, 0, 0 }, pw2[3] = { 0x1, 0x4, 0xC };
	for (int k = 0; k < 3; k++)
		for (int j = 0; j < 4; j++)
			pg2[k] |= (uint64_t)(m[k][j] & 1) << j;
	CHECK_VALS("sse-cmpps-lt-unord-nle", pg2, pw2);
	check_eq("sse-cmpps-mxcsr", stmxcsr(), 0x1F81);

	/* FTZ: 1e-200 * 1e-200 underflows: zero, UE PE. DAZ: a denormal reads as
	 * zero: 0 + denormal = 0, no DE. Without DAZ: DE, result the denormal. */
	double tiny = 1e-200, den = 4.9e-324, zero = 0.0;
	ldmxcsr(0x1F80 | 0x8000);
	__asm__ volatile("movsd %1, %%xmm0\n\tmulsd %1, %%xmm0\n\tmovsd %%xmm0, %0" : "=m"(d) : "m"(tiny));
	uint64_t zg[2] = { dbits(d), stmxcsr() }, zw[2] = { 0, 0x9F80 | 0x30 };
	CHECK_VALS("sse-ftz", zg, zw);
	ldmxcsr(0x1F80 | 0x40);
	__asm__ volatile("movsd %1, %%xmm0\n\taddsd %2, %%xmm0\n\tmovsd %%xmm0, %0" : "=m"(d) : "m"(zero), "m"(den));
	uint64_t dg[2] = { dbits(d), stmxcsr() }, dw[2] = { 0, 0x1FC0 };
	CHECK_VALS("sse-daz", dg, dw);
	ldmxcsr(0x1F80);
	__asm__ volatile("movsd %1, %%xmm0\n\taddsd %2, %%xmm0\n\tmovsd %%xmm0, %0" : "=m"(d) : "m"(zero), "m"(den));
	uint64_t ng[2] = { dbits(d), stmxcsr() }, nw[2] = { 1, 0x1F82 };
	CHECK_VALS("sse-denormal-operand", ng, nw);
	ldmxcsr(0x1F80);
}

static void sse_faults(void)
{
	uintptr_t done;
	double one = 1.0, zero = 0.0, d = 0;
	static char buf[48] __attribute__((aligned(16)));

	/* Unmasked ZE: #XM, the destination keeps 1.0, MXCSR records ZE. */
	ldmxcsr(0x1F80 & ~0x200u);
	done = 0;
	arm();
	__asm__ volatile("movsd %[o], %%xmm0\n\t" ARM "1: divsd %[z], %%xmm0\n" RESUMED
			 "movsd %%xmm0, %[d]"
			 : ARM_OUT, [d] "=m"(d)
			 : [o] "m"(one), [z] "m"(zero)
			 : "memory");
	uint32_t mx = stmxcsr();
	ldmxcsr(0x1F80);
	expect("sse-xm-divide-by-zero", VEC_XM, 0, fault_ip, done);
	uint64_t xg[2] = { dbits(d), mx }, xw[2] = { dbits(1.0), 0x1D84 };
	CHECK_VALS("sse-xm-state", xg, xw);

	/* The same with CR4.OSXMMEXCPT clear: #UD. */
	uint64_t cr4 = cr4_get();
	cr4_set(cr4 & ~CR4_OSXMMEXCPT);
	ldmxcsr(0x1F80 & ~0x200u);
	done = 0;
	arm();
	__asm__ volatile("movsd %[o], %%xmm0\n\t" ARM "1: divsd %[z], %%xmm0\n" RESUMED
			 : ARM_OUT
			 : [o] "m"(one), [z] "m"(zero)
			 : "memory");
	ldmxcsr(0x1F80);
	cr4_set(cr4);
	expect("sse-ud-without-osxmmexcpt", VEC_UD, 0, fault_ip, done);

	/* CR4.OSFXSR clear: #UD. */
	cr4_set(cr4 & ~CR4_OSFXSR);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: addps %%xmm1, %%xmm0\n" RESUMED : ARM_OUT : : "memory");
	cr4_set(cr4);
	expect("sse-ud-without-osfxsr", VEC_UD, 0, fault_ip, done);

	/* CR0.TS: #NM. */
	uint64_t cr0 = cr0_get();
	cr0_set(cr0 | CR0_TS);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: addps %%xmm1, %%xmm0\n" RESUMED : ARM_OUT : : "memory");
	cr0_set(cr0);
	expect("sse-nm-ts", VEC_NM, 0, fault_ip, done);

	/* MOVAPS misaligned: #GP(0); MOVUPS is fine. */
	done = 0;
	arm();
	__asm__ volatile(ARM "1: movaps %[m], %%xmm0\n" RESUMED
			 : ARM_OUT
			 : [m] "m"(buf[8])
			 : "memory");
	expect("sse-movaps-misaligned", VEC_GP, 0, fault_ip, done);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: movups %[m], %%xmm0\n" RESUMED
			 : ARM_OUT
			 : [m] "m"(buf[8])
			 : "memory");
	expect_none("sse-movups-misaligned", done, "no fault");

	/* LDMXCSR with a reserved bit: #GP(0). */
	uint32_t bad = 0x10000 | 0x1F80;
	done = 0;
	arm();
	__asm__ volatile(ARM "1: ldmxcsr %[m]\n" RESUMED : ARM_OUT : [m] "m"(bad) : "memory");
	expect("sse-ldmxcsr-reserved", VEC_GP, 0, fault_ip, done);
}

static void sse2_integer(void)
{
	static const uint8_t a[16] __attribute__((aligned(16))) = { 0,  1,  2,  3,  4,  5,  6,  7,
								    8,  9,  10, 11, 12, 13, 14, 0xF0 };
	static const uint8_t b[16] __attribute__((aligned(16))) = { 0x80, 0xFF, 2, 3, 4, 5, 6, 7,
								    8,    9,    10, 11, 12, 13, 14, 0x20 };
	uint64_t r[2] __attribute__((aligned(16)));
	uint32_t mask;

	/* PCMPEQB: bytes 2..14 equal → mask 0x7FFC. */
	__asm__ volatile("movdqa %1, %%xmm0\n\tpcmpeqb %2, %%xmm0\n\tpmovmskb %%xmm0, %0"
			 : "=r"(mask)
			 : "m"(a), "m"(b));
	check_eq("sse2-pcmpeqb-pmovmskb", mask, 0x7FFC);
	/* PADDUSB: 0+0x80, 1+0xFF → 0xFF (saturated), …, 0xF0+0x20 → 0xFF. */
	__asm__ volatile("movdqa %1, %%xmm0\n\tpaddusb %2, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a), "m"(b));
	uint64_t w1[2] = { 0x0E0C0A080604FF80ull, 0xFF1C1A1816141210ull };
	CHECK_VALS("sse2-paddusb", r, w1);
	/* PSUBSW: words 0x0100 - 0xFF80 (−128) = 0x0180 …; 0xF00E - 0x200E. */
	__asm__ volatile("movdqa %1, %%xmm0\n\tpsubsw %2, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a), "m"(b));
	uint64_t w2[2] = { 0x0000000000000180ull, 0xD000000000000000ull };
	CHECK_VALS("sse2-psubsw", r, w2);
	/* PSHUFD 0x1B reverses the dwords. */
	__asm__ volatile("pshufd $0x1B, %1, %%xmm0\n\tmovdqa %%xmm0, %0" : "=m"(r) : "m"(a));
	uint64_t w3[2] = { 0x0B0A0908F00E0D0Cull, 0x0302010007060504ull };
	CHECK_VALS("sse2-pshufd", r, w3);
	/* PUNPCKLBW a, b interleaves the low bytes. */
	__asm__ volatile("movdqa %1, %%xmm0\n\tpunpcklbw %2, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a), "m"(b));
	uint64_t w4[2] = { 0x03030202FF018000ull, 0x0707060605050404ull };
	CHECK_VALS("sse2-punpcklbw", r, w4);
	/* PSRAW by 4 and PSRLQ by 8 and PSLLDQ by 3. */
	__asm__ volatile("movdqa %1, %%xmm0\n\tpsraw $4, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(b));
	/* Words 0xFF80 0x0302 0x0504 0x0706 0x0908 0x0B0A 0x0D0C 0x200E
	 * shifted right arithmetically by 4. */
	uint64_t w5[2] = { 0x007000500030FFF8ull, 0x020000D000B00090ull };
	CHECK_VALS("sse2-psraw", r, w5);
	__asm__ volatile("movdqa %1, %%xmm0\n\tpsrlq $8, %%xmm0\n\tpslldq $3, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a));
	/* Quadwords 0x0007060504030201 and 0x00F00E0D0C0B0A09, then the whole
	 * register three bytes up. */
	uint64_t w6[2] = { 0x0504030201000000ull, 0x0D0C0B0A09000706ull };
	CHECK_VALS("sse2-psrlq-pslldq", r, w6);
	/* PMULUDQ low dwords: 0x03020100 * 0x0302FF80; PMADDWD; PSADBW. */
	__asm__ volatile("movdqa %1, %%xmm0\n\tpmuludq %2, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a), "m"(b));
	uint64_t w7[2] = { 0x03020100ull * 0x0302FF80ull, 0x0B0A0908ull * 0x0B0A0908ull };
	CHECK_VALS("sse2-pmuludq", r, w7);
	__asm__ volatile("movdqa %1, %%xmm0\n\tpsadbw %2, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a), "m"(b));
	/* |0-128| + |1-255| = 128 + 254 = 382; high: |0xF0-0x20| = 208. */
	uint64_t w8[2] = { 382, 208 };
	CHECK_VALS("sse2-psadbw", r, w8);
	/* PACKUSWB of words (0x0100, 0x0302, …) saturates to 0xFF. */
	__asm__ volatile("movdqa %1, %%xmm0\n\tpackuswb %%xmm0, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a));
	uint64_t w9[2] = { 0x00FFFFFFFFFFFFFFull, 0x00FFFFFFFFFFFFFFull };
	CHECK_VALS("sse2-packuswb", r, w9);
	/* PEXTRW 7 and PINSRW; MOVD/MOVQ zero the upper part. */
	uint32_t e;
	__asm__ volatile("movdqa %1, %%xmm0\n\tpextrw $7, %%xmm0, %0" : "=r"(e) : "m"(a));
	check_eq("sse2-pextrw", e, 0xF00E);
	__asm__ volatile("movdqa %1, %%xmm0\n\tmovl $0x12345678, %%eax\n\tmovd %%eax, %%xmm0\n\t"
			 "movl $0xABCD, %%eax\n\tpinsrw $5, %%eax, %%xmm0\n\tmovdqa %%xmm0, %0"
			 : "=m"(r)
			 : "m"(a)
			 : "rax");
	uint64_t w10[2] = { 0x12345678, 0x00000000ABCD0000ull };
	CHECK_VALS("sse2-movd-pinsrw", r, w10);
}

static void mmx_checks(void)
{
	uint64_t v = 0x1122334455667788ull, out;
	uint32_t env[7];

	/* Zero all eight registers first, so the tags below depend only on
	 * this check. */
	__asm__ volatile("fninit\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz");
	__asm__ volatile("fninit\n\tmovq %2, %%mm1\n\tpaddw %%mm1, %%mm1\n\tmovq %%mm1, %0\n\t"
			 "fnstenv %1\n\temms"
			 : "=m"(out), "=m"(env)
			 : "m"(v));
	check_eq("mmx-paddw", out, 0x22446688AACCEF10ull);
	/* After an MMX instruction TOP is 0 and every register in use (R1
	 * special with its exponent of ones, the others zero). */
	uint64_t g[2] = { env[1] & 0x3800, env[2] & 0xFFFF }, w[2] = { 0, 0x5559 };
	CHECK_VALS("mmx-tags", g, w);
	__asm__ volatile("fnstenv %0" : "=m"(env));
	check_eq("mmx-emms-tags", env[2] & 0xFFFF, 0xFFFF);
}

/* FNSTENV (kvm_pvm stops on it, so these come last). */
static void env_checks(void)
{
	uint32_t env[7];

	__asm__ volatile("fninit\n\tfnstenv %0" : "=m"(env));
	check_eq("x87-fninit-tag-word", env[2] & 0xFFFF, 0xFFFF);
	/* FNSTENV after one push: control (reserved bits ones), status TOP 7,
	 * tag word R7 valid. */
	__asm__ volatile("fninit\n\tfld1\n\tfnstenv %0\n\tfninit" : "=m"(env));
	uint64_t eg[3] = { env[0], env[1], env[2] },
		 ew[3] = { 0xFFFF037F, 0xFFFF3800, 0xFFFF3FFF };
	CHECK_VALS("x87-fnstenv-layout", eg, ew);
}

static void fxsave_checks(void)
{
	static uint8_t img[512] __attribute__((aligned(16)));
	static const double half = 0.5;
	uintptr_t done;

	for (int i = 0; i < 512; i++)
		img[i] = 0xA5;
	ldmxcsr(0x1F80 | 0x20);
	__asm__ volatile("fninit\n\tfld1\n\tfldl %1\n\tmovl $0x89ABCDEF, %%eax\n\tmovd %%eax, %%xmm3\n\t"
			 "fxsave64 %0"
			 : "=m"(img)
			 : "m"(half)
			 : "rax");
	uint64_t hg[5], hw[5] = { 0x037F, 0x3000, 0xC0, 0x1FA0, 0xFFFF };
	hg[0] = img[0] | img[1] << 8;
	hg[1] = img[2] | img[3] << 8;
	hg[2] = img[4];
	__builtin_memcpy(&hg[3], &img[24], 4);
	hg[3] &= 0xFFFFFFFF;
	__builtin_memcpy(&hg[4], &img[28], 4);
	hg[4] &= 0xFFFFFFFF;
	CHECK_VALS("fxsave-header", hg, hw);
	/* ST0 = 0.5 (0x3FFE:8000…) at 32, ST1 = 1.0 at 48, XMM3 at 160+48. */
	uint64_t sg[4], sw[4] = { 0x8000000000000000ull, 0x3FFE, 0x3FFF, 0x89ABCDEF };
	__builtin_memcpy(&sg[0], &img[32], 8);
	sg[1] = img[40] | img[41] << 8;
	sg[2] = img[56] | img[57] << 8;
	__builtin_memcpy(&sg[3], &img[208], 8);
	CHECK_VALS("fxsave-registers", sg, sw);
	/* Bytes 464..511 are left to software. */
	check_eq("fxsave-software-area-untouched", img[500], 0xA5);

	/* FXRSTOR brings back a changed MXCSR; a reserved MXCSR bit is #GP(0). */
	img[25] = 0x7F;
	__asm__ volatile("fxrstor64 %0\n\tfninit" : : "m"(img));
	check_eq("fxrstor-mxcsr", stmxcsr(), 0x7FA0);
	ldmxcsr(0x1F80);
	img[26] = 0x01;
	done = 0;
	arm();
	__asm__ volatile(ARM "1: fxrstor64 %[m]\n" RESUMED : ARM_OUT : [m] "m"(img) : "memory");
	expect("fxrstor-reserved-mxcsr", VEC_GP, 0, fault_ip, done);
	done = 0;
	arm();
	__asm__ volatile(ARM "1: fxsave64 %[m]\n" RESUMED : ARM_OUT : [m] "m"(img[8]) : "memory");
	expect("fxsave-misaligned", VEC_GP, 0, fault_ip, done);
}

int main(void)
{
	faults_on();
	trap_set_handler(VEC_NM, conf_fault_handler);
	trap_set_handler(VEC_MF, conf_fault_handler);
	trap_set_handler(VEC_XM, conf_fault_handler);
	cr0_set((cr0_get() | CR0_MP | CR0_NE) & ~(CR0_EM | CR0_TS));
	cr4_set(cr4_get() | CR4_OSFXSR | CR4_OSXMMEXCPT);

	x87_basics();
	x87_integers();
	x87_compare();
	x87_stack_and_misc();
	x87_faults();
	sse_float();
	sse_faults();
	sse2_integer();
	fxsave_checks();
	env_checks();
	mmx_checks();
	report_done();
}
