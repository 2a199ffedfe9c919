/*
 * conformance-arith - integer arithmetic and flags, one check per line.
 *
 * Every expected value is worked out by hand from the architectural
 * definition (the derivation is in the comment next to the check). Flags
 * that the SDM and the APM leave undefined for an instruction are masked
 * out of the comparison, so the output is the same on Intel and AMD CPUs:
 * AF after logic ops and shifts, OF after multi-bit shifts and rotates,
 * SF/ZF/AF/PF after MUL/IMUL, all flags after DIV/IDIV, all but CF after
 * BT*, all but ZF after BSF/BSR.
 *
 * Flag values: CF 0x1, PF 0x4, AF 0x10, ZF 0x40, SF 0x80, OF 0x800.
 * PF is set when the low byte of the result has an even number of 1 bits.
 */
#include "conf.h"

/* All six arithmetic flags set: OF|SF|ZF|AF|PF|CF. */
#define ALLF (OF | SF | ZF | AF | PF | CF)

/*
 * Preset the flags to `fin` (with popf), run `insn src, dst` with dst = a,
 * src = b (both of type T), capture dst and the flags.
 */
#define OP2(T, fin, insn, a, b)                                                    \
	__extension__({                                                            \
		T v_ = (T)(a);                                                     \
		uintptr_t f_ = (uintptr_t)(fin) | 2;                               \
		__asm__ volatile("push %1\n\tpopf\n\t" insn " %2, %0\n\tpushf\n\tpop %1" \
				 : "+r"(v_), "+r"(f_)                              \
				 : "r"((T)(b))                                     \
				 : "cc", "memory");                                \
		(struct alu){ (uint64_t)v_, f_ };                                  \
	})

/* One-operand form `insn dst` (insn may carry an immediate: "shlb $1,"). */
#define OP1(T, fin, insn, a)                                                       \
	__extension__({                                                            \
		T v_ = (T)(a);                                                     \
		uintptr_t f_ = (uintptr_t)(fin) | 2;                               \
		__asm__ volatile("push %1\n\tpopf\n\t" insn " %0\n\tpushf\n\tpop %1" \
				 : "+r"(v_), "+r"(f_)                              \
				 :                                                 \
				 : "cc", "memory");                                \
		(struct alu){ (uint64_t)v_, f_ };                                  \
	})

/* Count in CL: `insn %cl, dst`. */
#define OPCL(T, fin, insn, a, count)                                               \
	__extension__({                                                            \
		T v_ = (T)(a);                                                     \
		uintptr_t f_ = (uintptr_t)(fin) | 2;                               \
		__asm__ volatile("push %1\n\tpopf\n\t" insn " %%cl, %0\n\tpushf\n\tpop %1" \
				 : "+r"(v_), "+r"(f_)                              \
				 : "c"((uint8_t)(count))                           \
				 : "cc", "memory");                                \
		(struct alu){ (uint64_t)v_, f_ };                                  \
	})

/* ------------------------------------------------------ add/sub family */

static void addsub_checks(void)
{
	/* 0x7F + 0x01 = 0x80: signed overflow, sign, carry out of bit 3 (F+1);
	 * 0x80 has one 1 bit: PF clear; no carry out of bit 7. */
	check_alu("add8-overflow", OP2(uint8_t, 0, "addb", 0x7F, 0x01), 0x80, OF | SF | AF, ARITH);
	/* 0xFFFF + 1 = 0x0000 (carry out): CF, ZF, AF (F+1), PF (0x00). */
	check_alu("add16-carry", OP2(uint16_t, 0, "addw", 0xFFFF, 0x0001), 0, CF | ZF | AF | PF,
		  ARITH);
	/* CF=1: 0xFFFF..FF + 0 + 1 = 0 with carry: CF, ZF, AF (F+0+1), PF. */
	check_alu("adc64-carry-in", OP2(uint64_t, CF, "adcq", ~0ull, 0), 0, CF | ZF | AF | PF,
		  ARITH);
	/* CF=1: 0x7FFFFFFF + 0x7FFFFFFF + 1 = 0xFFFFFFFF: positive + positive
	 * gives negative (OF), SF, no carry out; nibbles F+F+1 = 0x1F (AF);
	 * low byte 0xFF has 8 ones (PF). */
	check_alu("adc32-overflow", OP2(uint32_t, CF, "adcl", 0x7FFFFFFF, 0x7FFFFFFF),
		  0xFFFFFFFF, OF | SF | AF | PF, ARITH);
	/* 0x80 - 0x01 = 0x7F: negative - positive gives positive (OF); low
	 * nibble 0 - 1 borrows (AF); 0x7F has 7 ones (PF clear). */
	check_alu("sub8-overflow", OP2(uint8_t, 0, "subb", 0x80, 0x01), 0x7F, OF | AF, ARITH);
	/* CF=1: 0 - 0 - 1 = 0xFFFF: borrow (CF), SF, AF, low byte 0xFF (PF). */
	check_alu("sbb16-borrow-in", OP2(uint16_t, CF, "sbbw", 0, 0), 0xFFFF, CF | SF | AF | PF,
		  ARITH);
	/* CF=1: 0xFFFF..FF - 0x7FFF..FF - 1 = 0x7FFF..FF. Unsigned: no borrow.
	 * Signed: -1 - (2^63 - 1) - 1 = -2^63 - 1 does not fit: OF, and the
	 * result is positive (SF clear). Low nibble F - F - 1 borrows: AF.
	 * Low byte 0xFF: PF. */
	check_alu("sbb64-overflow", OP2(uint64_t, CF, "sbbq", ~0ull, 0x7FFFFFFFFFFFFFFFull),
		  0x7FFFFFFFFFFFFFFFull, OF | AF | PF, ARITH);
	/* neg 0x80 = 0x80: CF (source nonzero), OF (-(-128) overflows), SF;
	 * low nibble 0 - 0: no AF; one 1 bit: PF clear. */
	check_alu("neg8-min", OP1(uint8_t, 0, "negb", 0x80), 0x80, CF | OF | SF, ARITH);
	/* neg 0 = 0: CF clear even though it was set before; ZF, PF. */
	check_alu("neg32-zero", OP1(uint32_t, ALLF, "negl", 0), 0, ZF | PF, ARITH);
	/* CF=1: inc 0xFFFF = 0: ZF, AF, PF, and CF is left alone (stays 1). */
	check_alu("inc16-keeps-cf", OP1(uint16_t, CF, "incw", 0xFFFF), 0, CF | ZF | AF | PF,
		  ARITH);
	/* CF=0: dec 0x80 = 0x7F: OF, AF (0 - 1 in the low nibble), 7 ones: no PF;
	 * CF stays 0. */
	check_alu("dec8-overflow", OP1(uint8_t, 0, "decb", 0x80), 0x7F, OF | AF, ARITH);
	/* CF=1: dec 1 = 0 in 64 bits: ZF, PF; CF stays 1. */
	check_alu("dec64-keeps-cf", OP1(uint64_t, CF, "decq", 1), 0, CF | ZF | PF, ARITH);
	/* cmp: 1 - 2 = 0xFF..FF (not stored): CF, SF, AF, PF; dst stays 1. */
	check_alu("cmp64-below", OP2(uint64_t, 0, "cmpq", 1, 2), 1, CF | SF | AF | PF, ARITH);
	/* cmp: 0x7F - 0xFF = 0x80 mod 256: 127 < 255 unsigned (CF); 127 - (-1) =
	 * 128 overflows (OF); SF; nibble F - F: no AF; 0x80: PF clear. */
	check_alu("cmp8-overflow", OP2(uint8_t, 0, "cmpb", 0x7F, 0xFF), 0x7F, CF | OF | SF, ARITH);
	/* addb %ah, %al: AH = AL = 0xF0: 0x1E0 -> AL = 0xE0, CF, SF; -16 + -16
	 * fits (OF clear); 0 + 0 in the low nibble (AF clear); 0xE0 has 3
	 * ones (PF clear). The rest of RAX, AH included, is kept. */
	{
		uint64_t a = 0x1234567890ABF0F0ull;
		uintptr_t f;
		__asm__ volatile("addb %%ah, %%al\n\tpushf\n\tpop %1" : "+a"(a), "=r"(f) : : "cc");
		check_alu("add8-high-byte-register", (struct alu){ a, f }, 0x1234567890ABF0E0ull,
			  CF | SF, ARITH);
	}
	/* Logic: CF and OF cleared; AF undefined (masked). 0x8000 | 0x0001 =
	 * 0x8001: SF; low byte 0x01: PF clear. */
	check_alu("or16-clears-cf-of", OP2(uint16_t, CF | OF, "orw", 0x8000, 0x0001), 0x8001, SF,
		  ARITH & ~AF);
}

/* --------------------------------------------------------- MUL / IMUL */

static void mul_checks(void)
{
	uint64_t a, d;
	uintptr_t f;

	/* mulb: AX = AL * r8 = 0x80 * 2 = 0x0100; AH != 0: CF = OF = 1. Bits
	 * 63:16 of RAX are kept. */
	a = 0x1111111111111180ull;
	__asm__ volatile("mulb %b2\n\tpushf\n\tpop %1" : "+a"(a), "=r"(f) : "q"((uint8_t)2) : "cc");
	check_alu("mul8", (struct alu){ a, f }, 0x1111111111110100ull, CF | OF, CF | OF);

	/* mulw: 0x1234 * 0x100 = 0x00123400: DX = 0x0012, AX = 0x3400; DX != 0:
	 * CF = OF = 1. Bits 63:16 of RAX and RDX are kept. */
	a = 0xAAAAAAAAAAAA1234ull;
	d = 0xBBBBBBBBBBBBBBBBull;
	__asm__ volatile("mulw %w3\n\tpushf\n\tpop %2"
			 : "+a"(a), "+d"(d), "=r"(f)
			 : "r"((uint16_t)0x100)
			 : "cc");
	{
		uint64_t got[] = { a, d, f & (CF | OF) };
		uint64_t want[] = { 0xAAAAAAAAAAAA3400ull, 0xBBBBBBBBBBBB0012ull, CF | OF };
		CHECK_VALS("mul16-dx-ax", got, want);
	}

	/* mull: 0x10000 * 0xFFFF = 0xFFFF0000: EDX = 0, CF = OF = 0; the 32-bit
	 * results zero-extend RAX and RDX. */
	a = 0xCCCCCCCC00010000ull;
	d = 0xDDDDDDDDDDDDDDDDull;
	__asm__ volatile("push %3\n\tpopf\n\tmull %k4\n\tpushf\n\tpop %2"
			 : "+a"(a), "+d"(d), "=&r"(f)
			 : "r"((uintptr_t)(CF | OF | 2)), "r"(0xFFFFull)
			 : "cc", "memory");
	{
		uint64_t got[] = { a, d, f & (CF | OF) };
		uint64_t want[] = { 0xFFFF0000ull, 0, 0 };
		CHECK_VALS("mul32-no-overflow", got, want);
	}

	/* mulq: (2^64 - 1) * 2 = 2^65 - 2: RDX = 1, RAX = 0xFF..FE; CF = OF = 1. */
	a = ~0ull;
	__asm__ volatile("mulq %3\n\tpushf\n\tpop %2" : "+a"(a), "=d"(d), "=r"(f) : "r"(2ull) : "cc");
	{
		uint64_t got[] = { a, d, f & (CF | OF) };
		uint64_t want[] = { 0xFFFFFFFFFFFFFFFEull, 1, CF | OF };
		CHECK_VALS("mul64", got, want);
	}

	/* imulb: -128 * 2 = -256 = AX 0xFF00; AL sign-extended (0x0000) != AX:
	 * CF = OF = 1. */
	a = 0x80;
	__asm__ volatile("imulb %b2\n\tpushf\n\tpop %1" : "+a"(a), "=r"(f) : "q"((uint8_t)2) : "cc");
	check_alu("imul8-one-operand", (struct alu){ a & 0xFFFF, f }, 0xFF00, CF | OF, CF | OF);

	/* imull: -2 * 0x40000000 = -2^31: EDX:EAX = 0xFFFFFFFF:0x80000000, which
	 * is EAX sign-extended: CF = OF = 0. */
	a = 0xFFFFFFFEull;
	__asm__ volatile("push %3\n\tpopf\n\timull %k4\n\tpushf\n\tpop %2"
			 : "+a"(a), "=d"(d), "=&r"(f)
			 : "r"((uintptr_t)(CF | OF | 2)), "r"(0x40000000ull)
			 : "cc", "memory");
	{
		uint64_t got[] = { a, d, f & (CF | OF) };
		uint64_t want[] = { 0x80000000ull, 0xFFFFFFFFull, 0 };
		CHECK_VALS("imul32-one-operand-fits", got, want);
	}

	/* imulq: 2^62 * 2 = 2^63: RDX = 0, RAX = 0x8000..00; RAX sign-extended
	 * would be all ones, not 0: CF = OF = 1. */
	a = 0x4000000000000000ull;
	__asm__ volatile("imulq %3\n\tpushf\n\tpop %2" : "+a"(a), "=d"(d), "=r"(f) : "r"(2ull) : "cc");
	{
		uint64_t got[] = { a, d, f & (CF | OF) };
		uint64_t want[] = { 0x8000000000000000ull, 0, CF | OF };
		CHECK_VALS("imul64-one-operand-overflow", got, want);
	}

	/* imul r32, r/m32: 0x40000000 * 2 = 0x80000000 truncated, which as a
	 * signed 32-bit value is not 2^31: CF = OF = 1; RAX bits 63:32 cleared. */
	check_alu("imul32-two-operand", OP2(uint64_t, 0, "imull %k2, %k0 #", 0xEEEEEEEE40000000ull, 2),
		  0x80000000ull, CF | OF, CF | OF);

	/* imul r64, r/m64, imm8: 7 * -3 = -21 = 0xFF..EB; fits: CF = OF = 0. */
	{
		uint64_t r;
		__asm__ volatile("push %2\n\tpopf\n\timulq $-3, %3, %0\n\tpushf\n\tpop %1"
				 : "=&r"(r), "=&r"(f)
				 : "r"((uintptr_t)(CF | OF | 2)), "r"(7ull)
				 : "cc", "memory");
		check_alu("imul64-three-operand", (struct alu){ r, f }, 0xFFFFFFFFFFFFFFEBull, 0,
			  CF | OF);
	}

	/* imul r16, r/m16, imm: 0x200 * 0x7F = 0xFE00 (65024), but as a 16-bit
	 * signed value 0xFE00 is -512: CF = OF = 1. */
	{
		uint16_t r;
		__asm__ volatile("imulw $0x7f, %2, %0\n\tpushf\n\tpop %1"
				 : "=&r"(r), "=r"(f)
				 : "r"((uint16_t)0x200)
				 : "cc");
		check_alu("imul16-three-operand", (struct alu){ r, f }, 0xFE00, CF | OF, CF | OF);
	}
}

/* --------------------------------------------------------- DIV / IDIV */

static void div_checks(void)
{
	uint64_t a, d;

	/* divb: AX 0x0103 (259) / 0x10 = 16 rem 3: AL = 0x10, AH = 0x03. */
	a = 0x0103;
	__asm__ volatile("divb %b1" : "+a"(a) : "q"((uint8_t)0x10) : "cc");
	check_eq("div8", a & 0xFFFF, 0x0310);

	/* divl: EDX:EAX = 0x1_00000005 / 0x10 = 0x10000000 rem 5. */
	a = 5;
	d = 1;
	__asm__ volatile("divl %k2" : "+a"(a), "+d"(d) : "r"(0x10ull) : "cc");
	{
		uint64_t got[] = { a, d }, want[] = { 0x10000000, 5 };
		CHECK_VALS("div32", got, want);
	}

	/* divq: RDX:RAX = 2^64 / 2 = 2^63 rem 0. */
	a = 0;
	d = 1;
	__asm__ volatile("divq %2" : "+a"(a), "+d"(d) : "r"(2ull) : "cc");
	{
		uint64_t got[] = { a, d }, want[] = { 0x8000000000000000ull, 0 };
		CHECK_VALS("div64", got, want);
	}

	/* idivq: -7 / 2 truncates toward zero: quotient -3, remainder -1 (the
	 * remainder takes the dividend's sign). */
	a = (uint64_t)-7;
	d = ~0ull;
	__asm__ volatile("idivq %2" : "+a"(a), "+d"(d) : "r"(2ull) : "cc");
	{
		uint64_t got[] = { a, d }, want[] = { (uint64_t)-3, (uint64_t)-1 };
		CHECK_VALS("idiv64-negative", got, want);
	}

	/* idivb: AX = -7 (0xFFF9) / 2: AL = -3 (0xFD), AH = -1 (0xFF). */
	a = 0xFFF9;
	__asm__ volatile("idivb %b1" : "+a"(a) : "q"((uint8_t)2) : "cc");
	check_eq("idiv8-negative", a & 0xFFFF, 0xFFFD);

	/* #DE cases: the fault leaves RAX and RDX as they were and reports the
	 * divide instruction itself. */
	uintptr_t done;

	/* divq by zero. */
	done = 0;
	arm();
	a = 0x1234;
	d = 0x5678;
	__asm__ volatile(ARM "1: divq %[z]\n" RESUMED
			 : ARM_OUT, "+a"(a), "+d"(d)
			 : [z] "r"(0ull)
			 : "memory", "cc");
	report("de-div64-by-zero",
	       hits == 1 && seen_vector == VEC_DE && seen_ip == fault_ip && done && a == 0x1234 &&
		       d == 0x5678,
	       "vector %ld at the div, rax %#llx rdx %#llx kept, resumed", (long)seen_vector,
	       (unsigned long long)a, (unsigned long long)d);

	/* divl: EDX:EAX = 0x10:0 / 0x10 = 2^32: quotient needs 33 bits. */
	done = 0;
	arm();
	a = 0;
	d = 0x10;
	__asm__ volatile(ARM "1: divl %k[z]\n" RESUMED
			 : ARM_OUT, "+a"(a), "+d"(d)
			 : [z] "r"(0x10ull)
			 : "memory", "cc");
	report("de-div32-quotient-too-large",
	       hits == 1 && seen_vector == VEC_DE && seen_ip == fault_ip && done && a == 0 &&
		       d == 0x10,
	       "vector %ld at the div, rax %#llx rdx %#llx kept, resumed", (long)seen_vector,
	       (unsigned long long)a, (unsigned long long)d);

	/* idivw: DX:AX = -32768 / -1 = +32768 does not fit in 16 bits. */
	done = 0;
	arm();
	a = 0x8000;
	d = 0xFFFF;
	__asm__ volatile(ARM "1: idivw %w[z]\n" RESUMED
			 : ARM_OUT, "+a"(a), "+d"(d)
			 : [z] "r"(0xFFFFull)
			 : "memory", "cc");
	report("de-idiv16-overflow",
	       hits == 1 && seen_vector == VEC_DE && seen_ip == fault_ip && done && a == 0x8000 &&
		       d == 0xFFFF,
	       "vector %ld at the idiv, ax %#llx dx %#llx kept, resumed", (long)seen_vector,
	       (unsigned long long)a, (unsigned long long)d);

	/* idivb: AX = -128 (0xFF80) / -1 = +128 does not fit in AL; but
	 * -128 / 1 does (AL = 0x80, AH = 0). */
	done = 0;
	arm();
	a = 0xFF80;
	__asm__ volatile(ARM "1: idivb %b[z]\n" RESUMED
			 : ARM_OUT, "+a"(a)
			 : [z] "q"((uint8_t)0xFF)
			 : "memory", "cc");
	{
		uint64_t b = 0xFF80;
		__asm__ volatile("idivb %b1" : "+a"(b) : "q"((uint8_t)1) : "cc");
		report("de-idiv8-boundary",
		       hits == 1 && seen_vector == VEC_DE && seen_ip == fault_ip && done &&
			       a == 0xFF80 && (b & 0xFFFF) == 0x0080,
		       "-128/-1: vector %ld, ax %#llx kept; -128/1: ax %#llx",
		       (long)seen_vector, (unsigned long long)a, (unsigned long long)(b & 0xFFFF));
	}
}

/* ------------------------------------------------------ shifts, rotates */

static void shift_checks(void)
{
	/* Count 0 (CL = 0): neither the value nor any flag changes. */
	check_alu("shl-count-0-keeps-flags", OPCL(uint64_t, ALLF, "shlq", 0x123, 0), 0x123, ALLF,
		  ARITH);
	/* CL = 64 is masked to 6 bits: 0, so nothing changes either. */
	check_alu("shl64-count-64-masked", OPCL(uint64_t, ALLF & ~CF, "shlq", 0x8000000000000001ull, 64),
		  0x8000000000000001ull, ALLF & ~CF, ARITH);
	/* shl $1, 0xC0 = 0x80: CF = old bit 7 = 1; OF = MSB(result) ^ CF = 0;
	 * SF; 0x80: PF clear. AF undefined. */
	check_alu("shl8-by-1", OP1(uint8_t, 0, "shlb $1,", 0xC0), 0x80, CF | SF, ARITH & ~AF);
	/* shl $1, 0x40 = 0x80: CF = 0; OF = 1 ^ 0 = 1; SF. */
	check_alu("shl8-by-1-overflow", OP1(uint8_t, 0, "shlb $1,", 0x40), 0x80, OF | SF,
		  ARITH & ~AF);
	/* shr $1, 0x80000001 = 0x40000000: CF = 1; OF = old MSB = 1; low byte 0: PF. */
	check_alu("shr32-by-1", OP1(uint32_t, 0, "shrl $1,", 0x80000001), 0x40000000, CF | OF | PF,
		  ARITH & ~AF);
	/* sar $1, 0x81 = 0xC0: CF = 1; OF = 0 for SAR by 1; SF; 0xC0 two ones: PF. */
	check_alu("sar8-by-1", OP1(uint8_t, OF, "sarb $1,", 0x81), 0xC0, CF | SF | PF, ARITH & ~AF);
	/* CL = 33 on a 32-bit operand is masked to 1: 0x80000001 << 1 =
	 * 0x00000002; CF = 1; OF = 0 ^ 1 = 1; 0x02 one 1 bit: PF clear. */
	check_alu("shl32-count-33-masked", OPCL(uint32_t, 0, "shll", 0x80000001, 33), 2, CF | OF,
		  ARITH & ~AF);
	/* CL = 9 on a byte: masked to 9 (5-bit mask), everything shifted out:
	 * 0; SF/ZF/PF from the result (CF, OF, AF undefined for count > 8). */
	check_alu("shl8-count-9", OPCL(uint8_t, SF, "shlb", 0xFF, 9), 0, ZF | PF, SF | ZF | PF);
	/* sar by 31 of 0x80000000 = 0xFFFFFFFF; CF = bit 30 = 0; SF; 0xFF: PF. */
	check_alu("sar32-by-31", OPCL(uint32_t, CF, "sarl", 0x80000000, 31), 0xFFFFFFFF, SF | PF,
		  CF | SF | ZF | PF);
	/* shr by 4 of 0x8421 = 0x0842; CF = bit 3 = 0; 0x42 two ones: PF. */
	check_alu("shr16-by-4", OPCL(uint16_t, CF | SF, "shrw", 0x8421, 4), 0x0842, PF,
		  CF | SF | ZF | PF);

	/* Rotates change only CF (and OF for count 1); SF, ZF, AF, PF keep
	 * their values. rol by 4 of 0x1234 = 0x2341, CF = LSB(result) = 1. */
	check_alu("rol16-by-4", OPCL(uint16_t, SF | ZF | AF | PF, "rolw", 0x1234, 4), 0x2341,
		  CF | SF | ZF | AF | PF, CF | SF | ZF | AF | PF);
	/* ror $1, 0x01 = 0x80: CF = MSB(result) = 1; OF = bit 7 ^ bit 6 of the
	 * result = 1; the other flags stay 0. */
	check_alu("ror8-by-1", OP1(uint8_t, 0, "rorb $1,", 0x01), 0x80, CF | OF, ARITH);
	/* rol $1, 0x8000..00 = 1: CF = LSB(result) = 1; OF = MSB(result) ^ CF = 1. */
	check_alu("rol64-by-1", OP1(uint64_t, ZF, "rolq $1,", 0x8000000000000000ull), 1,
		  CF | OF | ZF, ARITH);
	/* rcl $1 with CF = 1: 0x80 -> (0x80 << 1 | CF) = 0x01, CF = old MSB = 1,
	 * OF = MSB(result) ^ CF = 1. */
	check_alu("rcl8-by-1", OP1(uint8_t, CF, "rclb $1,", 0x80), 0x01, CF | OF, ARITH);
	/* rcr by 3 through the 17-bit [CF:dst], CF = 1, dst = 0x0005:
	 * 0x8002 CF 1 -> 0xC001 CF 0 -> 0x6000 CF 1. */
	check_alu("rcr16-by-3", OPCL(uint16_t, CF | ZF, "rcrw", 0x0005, 3), 0x6000, CF | ZF,
		  CF | SF | ZF | AF | PF);
	/* rcl of a byte by CL = 10: (10 & 0x1F) mod 9 = 1: CF = 0, 0xC1 ->
	 * 0x82, CF = 1. OF masked (the count was not 1). */
	check_alu("rcl8-count-10-mod-9", OPCL(uint8_t, 0, "rclb", 0xC1, 10), 0x82, CF,
		  CF | SF | ZF | AF | PF);
	/* rol of a byte by CL = 8: the 5-bit masked count is 8 (not 0), the
	 * rotation is 8 mod 8 = 0 bits: the value is unchanged and CF =
	 * LSB(result) = 1. */
	check_alu("rol8-count-8", OPCL(uint8_t, 0, "rolb", 0x81, 8), 0x81, CF, CF | SF | ZF | AF | PF);
	/* rcr of a byte by CL = 9: 9 mod 9 = 0: value and CF unchanged. */
	check_alu("rcr8-count-9", OPCL(uint8_t, CF | PF, "rcrb", 0x81, 9), 0x81, CF | PF,
		  CF | SF | ZF | AF | PF);
	/* rcl of a word by CL = 17: (17 & 0x1F) mod 17 = 0: nothing changes. */
	check_alu("rcl16-count-17", OPCL(uint16_t, CF | ZF, "rclw", 0x8001, 17), 0x8001, CF | ZF,
		  CF | SF | ZF | AF | PF);
	/* sar by 63 of a negative 64-bit value in memory: all ones; CF = bit 62
	 * of 0x8000..00 = 0; SF; PF (0xFF). */
	{
		static volatile uint64_t m;
		uintptr_t f;
		m = 0x8000000000000000ull;
		__asm__ volatile("sarq $63, %0\n\tpushf\n\tpop %1" : "+m"(m), "=r"(f) : : "cc", "memory");
		check_alu("sar64-mem-by-63", (struct alu){ m, f }, ~0ull, SF | PF, CF | SF | ZF | PF);
	}
	/* rcr $1 of a 64-bit value with CF = 0: 0x3 -> 0x1, CF = 1; OF = bit 63
	 * ^ bit 62 of the result = 0. */
	check_alu("rcr64-by-1", OP1(uint64_t, 0, "rcrq $1,", 3), 1, CF, ARITH);
}

/* ------------------------------------------------------------ SHLD/SHRD */

static void double_shift_checks(void)
{
	uint64_t v;
	uintptr_t f;

	/* shld $4: 0x12345678 << 4 | top 4 bits of 0xABCD0000 (0xA) = 0x2345678A;
	 * CF = last bit out = bit 28 of 0x12345678 = 1; SF 0; 0x8A has 3 ones:
	 * PF clear. OF, AF undefined. */
	v = 0x12345678;
	__asm__ volatile("push %3\n\tpopf\n\tshldl $4, %k2, %k0\n\tpushf\n\tpop %1"
			 : "+r"(v), "=&r"(f)
			 : "r"(0xABCD0000ull), "r"((uintptr_t)(SF | ZF | PF | 2))
			 : "cc", "memory");
	check_alu("shld32-imm4", (struct alu){ v, f }, 0x2345678A, CF, CF | SF | ZF | PF);

	/* shrd $4: 0x1234 >> 4 with the low 4 bits of 0x000F on top = 0xF123;
	 * CF = bit 3 of 0x1234 = 0; SF; 0x23 has 3 ones: PF clear. */
	v = 0x1234;
	__asm__ volatile("push %3\n\tpopf\n\tshrdw $4, %w2, %w0\n\tpushf\n\tpop %1"
			 : "+r"(v), "=&r"(f)
			 : "r"(0x000Full), "r"((uintptr_t)(CF | ZF | 2))
			 : "cc", "memory");
	check_alu("shrd16-imm4", (struct alu){ v & 0xFFFF, f }, 0xF123, SF, CF | SF | ZF | PF);

	/* shld %cl = 1: 0x4000..00 << 1 | bit 63 of 0x8000..00 = 0x8000..01;
	 * CF = 0; OF (count 1) = sign changed = 1; SF; 0x01: PF clear. */
	v = 0x4000000000000000ull;
	__asm__ volatile("shldq %%cl, %2, %0\n\tpushf\n\tpop %1"
			 : "+r"(v), "=r"(f)
			 : "r"(0x8000000000000000ull), "c"(1)
			 : "cc");
	check_alu("shld64-by-1", (struct alu){ v, f }, 0x8000000000000001ull, OF | SF,
		  ARITH & ~AF);

	/* shrd %cl = 32 on a 32-bit operand: masked to 0, nothing changes. */
	v = 0xDEADBEEF;
	__asm__ volatile("push %3\n\tpopf\n\tshrdl %%cl, %k2, %k0\n\tpushf\n\tpop %1"
			 : "+r"(v), "=&r"(f)
			 : "r"(0x55555555ull), "r"((uintptr_t)(ALLF | 2)), "c"(32)
			 : "cc", "memory");
	check_alu("shrd32-count-32-masked", (struct alu){ v, f }, 0xDEADBEEF, ALLF, ARITH);
}

/* ------------------------------------------------------ bits and bytes */

static void bit_checks(void)
{
	uint64_t v;
	uintptr_t f;

	/* bt $5 of 0x20: CF = 1. */
	check_alu("bt32-imm", OP2(uint32_t, 0, "btl $5, %0 #", 0x20, 0), 0x20, CF, CF);

	/* btr with an immediate on a 16-bit operand: 17 mod 16 = bit 1:
	 * 0xFFFF -> 0xFFFD, CF = 1. */
	check_alu("btr16-imm-masked", OP2(uint16_t, 0, "btrw $17, %0 #", 0xFFFF, 0), 0xFFFD, CF, CF);

	/* btc with a register offset on a register: 65 mod 64 = bit 1. */
	check_alu("btc64-reg-masked", OP2(uint64_t, CF, "btcq", 0, 65), 2, 0, CF);

	/* bts with a register offset on memory addresses a bit string: bit 37
	 * is bit 5 of the dword at +4. Twice: first CF = 0, then CF = 1. */
	{
		static volatile uint32_t bits[4];
		uintptr_t f1, f2;
		bits[0] = bits[1] = bits[2] = bits[3] = 0;
		__asm__ volatile("btsl %2, %0\n\tpushf\n\tpop %1" : "+m"(bits[0]), "=r"(f1) : "r"(37) : "cc", "memory");
		__asm__ volatile("btsl %2, %0\n\tpushf\n\tpop %1" : "+m"(bits[0]), "=r"(f2) : "r"(37) : "cc", "memory");
		uint64_t got[] = { bits[0], bits[1], bits[2], f1 & CF, f2 & CF };
		uint64_t want[] = { 0, 0x20, 0, 0, CF };
		CHECK_VALS("bts32-mem-bit-string", got, want);
	}
	/* btr with offset -1 relative to bits[1]: bit 31 of bits[0]. */
	{
		static volatile uint32_t bits[2];
		bits[0] = bits[1] = 0xFFFFFFFF;
		__asm__ volatile("btrl %2, %0\n\tpushf\n\tpop %1" : "+m"(bits[1]), "=r"(f) : "r"(-1) : "cc", "memory");
		uint64_t got[] = { bits[0], bits[1], f & CF };
		uint64_t want[] = { 0x7FFFFFFF, 0xFFFFFFFF, CF };
		CHECK_VALS("btr32-mem-negative-offset", got, want);
	}

	/* bt with an immediate on memory does not address a bit string: the
	 * offset is masked to the operand size (37 mod 32 = bit 5 of the dword
	 * itself, not of the next one). */
	{
		static volatile uint32_t bits[2];
		uintptr_t f1;
		bits[0] = 0x20;
		bits[1] = 0;
		__asm__ volatile("btsl $37, %0\n\tpushf\n\tpop %1" : "+m"(bits[0]), "=r"(f1) : : "cc", "memory");
		uint64_t got[] = { bits[0], bits[1], f1 & CF };
		uint64_t want[] = { 0x20, 0, CF };
		CHECK_VALS("bts32-mem-imm-masked", got, want);
	}

	/* bsf/bsr of 0x00018000: lowest set bit 15, highest 16; ZF = 0. */
	{
		uint64_t lo, hi;
		uintptr_t f1, f2;
		__asm__ volatile("push %2\n\tpopf\n\tbsfl %k3, %k0\n\tpushf\n\tpop %1"
				 : "=&r"(lo), "=&r"(f1) : "r"((uintptr_t)(ZF | 2)), "r"(0x18000ull) : "cc", "memory");
		__asm__ volatile("push %2\n\tpopf\n\tbsrl %k3, %k0\n\tpushf\n\tpop %1"
				 : "=&r"(hi), "=&r"(f2) : "r"((uintptr_t)(ZF | 2)), "r"(0x18000ull) : "cc", "memory");
		uint64_t got[] = { lo, hi, f1 & ZF, f2 & ZF };
		uint64_t want[] = { 15, 16, 0, 0 };
		CHECK_VALS("bsf-bsr32", got, want);
	}
	/* bsr/bsf of 0x8000..00 in 64 bits: 63 both. */
	{
		uint64_t lo, hi;
		__asm__ volatile("bsfq %1, %0" : "=r"(lo) : "r"(0x8000000000000000ull) : "cc");
		__asm__ volatile("bsrq %1, %0" : "=r"(hi) : "r"(0x8000000000000000ull) : "cc");
		uint64_t got[] = { lo, hi }, want[] = { 63, 63 };
		CHECK_VALS("bsf-bsr64-top-bit", got, want);
	}
	/* bsf of 0: ZF = 1 (the destination is undefined and not compared). */
	__asm__ volatile("bsfq %1, %0\n\tpushf\n\tpop %1" : "=&r"(v), "=r"(f) : "1"(0ull) : "cc");
	check_eq("bsf64-zero-sets-zf", f & ZF, ZF);

	/* bswap. The 32-bit form zero-extends into bits 63:32. */
	{
		uint64_t a = 0xFFFFFFFF12345678ull, b = 0x0123456789ABCDEFull;
		__asm__ volatile("bswapl %k0\n\tbswapq %1" : "+r"(a), "+r"(b));
		uint64_t got[] = { a, b }, want[] = { 0x78563412ull, 0xEFCDAB8967452301ull };
		CHECK_VALS("bswap32-bswap64", got, want);
	}
}

/* ------------------------------------------------------ CMPXCHG / XADD */

static void atomic_checks(void)
{
	uintptr_t f;

	/* cmpxchg: EAX == mem (5): ZF = 1, mem = src (9), EAX kept; flags as
	 * cmp 5, 5: ZF, PF. */
	{
		static volatile uint32_t m;
		uint64_t a = 5;
		m = 5;
		__asm__ volatile("lock cmpxchgl %k3, %0\n\tpushf\n\tpop %2"
				 : "+m"(m), "+a"(a), "=r"(f) : "r"(9ull) : "cc", "memory");
		uint64_t got[] = { m, a, f & ARITH }, want[] = { 9, 5, ZF | PF };
		CHECK_VALS("cmpxchg32-equal", got, want);
	}
	/* cmpxchg: AL (5) != mem (7): AL = 7, mem unchanged, ZF = 0; flags as
	 * cmp 5, 7: 5 - 7 = 0xFE: CF, SF, AF; 0xFE has 7 ones: PF clear. */
	{
		static volatile uint8_t m;
		uint64_t a = 0x1111111111111105ull;
		m = 7;
		__asm__ volatile("cmpxchgb %b3, %0\n\tpushf\n\tpop %2"
				 : "+m"(m), "+a"(a), "=r"(f) : "q"((uint8_t)9) : "cc", "memory");
		uint64_t got[] = { m, a, f & ARITH }, want[] = { 7, 0x1111111111111107ull, CF | SF | AF };
		CHECK_VALS("cmpxchg8-not-equal", got, want);
	}
	/* cmpxchg with a register destination, 64-bit, not equal: RAX = dst. */
	{
		uint64_t a = 1, dst = 0x8000000000000000ull;
		__asm__ volatile("cmpxchgq %3, %1\n\tpushf\n\tpop %2"
				 : "+a"(a), "+r"(dst), "=r"(f) : "r"(2ull) : "cc");
		/* 1 - 0x8000..00 = 0x8000..01: borrow (CF), OF (positive - negative
		 * gives negative), SF; nibble 1 - 0: no AF; 0x01: PF clear. */
		uint64_t got[] = { a, dst, f & ARITH };
		uint64_t want[] = { 0x8000000000000000ull, 0x8000000000000000ull, CF | OF | SF };
		CHECK_VALS("cmpxchg64-reg-not-equal", got, want);
	}
	/* cmpxchg8b: EDX:EAX == m64: ZF = 1, m64 = ECX:EBX; then again with the
	 * old value: not equal, EDX:EAX = m64, ZF = 0. */
	{
		static volatile uint64_t m;
		uint32_t a = 0x22222222, d = 0x11111111;
		uintptr_t f1, f2;
		m = 0x1111111122222222ull;
		__asm__ volatile("lock cmpxchg8b %0\n\tpushf\n\tpop %3"
				 : "+m"(m), "+a"(a), "+d"(d), "=r"(f1)
				 : "b"(0x44444444), "c"(0x33333333) : "cc", "memory");
		uint64_t m1 = m;
		__asm__ volatile("cmpxchg8b %0\n\tpushf\n\tpop %3"
				 : "+m"(m), "+a"(a), "+d"(d), "=r"(f2)
				 : "b"(0x66666666), "c"(0x55555555) : "cc", "memory");
		uint64_t got[] = { m1, f1 & ZF, m, ((uint64_t)d << 32) | a, f2 & ZF };
		uint64_t want[] = { 0x3333333344444444ull, ZF, 0x3333333344444444ull,
				    0x3333333344444444ull, 0 };
		CHECK_VALS("cmpxchg8b", got, want);
	}
	/* xadd: dst = dst + src, src = old dst. 0xFFFFFFFF + 1 = 0: CF, ZF, AF, PF. */
	{
		uint64_t dst = 0xFFFFFFFF, src = 1;
		__asm__ volatile("xaddl %k1, %k0\n\tpushf\n\tpop %2"
				 : "+r"(dst), "+r"(src), "=r"(f) : : "cc");
		uint64_t got[] = { dst, src, f & ARITH };
		uint64_t want[] = { 0, 0xFFFFFFFF, CF | ZF | AF | PF };
		CHECK_VALS("xadd32-reg", got, want);
	}
	/* lock xadd on memory, 16-bit: 0x7FFF + 1 = 0x8000: OF, SF, AF, PF (0x00). */
	{
		static volatile uint16_t m;
		uint16_t src = 1;
		m = 0x7FFF;
		__asm__ volatile("lock xaddw %w1, %0\n\tpushf\n\tpop %2"
				 : "+m"(m), "+r"(src), "=r"(f) : : "cc", "memory");
		uint64_t got[] = { m, src, f & ARITH };
		uint64_t want[] = { 0x8000, 0x7FFF, OF | SF | AF | PF };
		CHECK_VALS("xadd16-lock-mem", got, want);
	}
}

/* ------------------------------------------------------- LAHF / SAHF */

static void ahf_checks(void)
{
	uint64_t a;
	uintptr_t f;

	/* sahf with AH = 0xFF: SF ZF AF PF CF = 1 (bits 3 and 5 are reserved,
	 * bit 1 is always 1); OF (preset 1) is not touched. */
	a = 0xFF00;
	__asm__ volatile("push %2\n\tpopf\n\tsahf\n\tpushf\n\tpop %1"
			 : "+a"(a), "=&r"(f) : "r"((uintptr_t)(OF | 2)) : "cc", "memory");
	check_eq("sahf", f & 0xFFF, OF | SF | ZF | AF | PF | CF | 2);

	/* lahf with SF ZF AF PF CF set: AH = 0xD7 (bit 1 reads as 1); the rest
	 * of RAX is kept. */
	a = 0x1111111111111111ull;
	__asm__ volatile("push %1\n\tpopf\n\tlahf"
			 : "+a"(a) : "r"((uintptr_t)(SF | ZF | AF | PF | CF | 2)) : "cc", "memory");
	check_eq("lahf", a, 0x111111111111D711ull);

	/* lahf with no flags set: AH = 0x02. */
	a = 0xFFFFFFFFFFFFFFFFull;
	__asm__ volatile("push %1\n\tpopf\n\tlahf"
			 : "+a"(a) : "r"((uintptr_t)2) : "cc", "memory");
	check_eq("lahf-clear", a, 0xFFFFFFFFFFFF02FFull);
}

/* ------------------------------------------------------ sign extension */

static void extension_checks(void)
{
	uint64_t a;

	/* cbw: AL 0x80 -> AX 0xFF80, bits 63:16 kept. cwde: AX 0x8000 ->
	 * EAX 0xFFFF8000, bits 63:32 cleared. cdqe: EAX 0x80000000 -> RAX
	 * 0xFFFFFFFF80000000. */
	{
		uint64_t x = 0x1234567812345680ull, y = 0x1234567812348000ull, z = 0x1234567880000000ull;
		__asm__ volatile("cbtw" : "+a"(x));
		__asm__ volatile("cwtl" : "+a"(y));
		__asm__ volatile("cltq" : "+a"(z));
		uint64_t got[] = { x, y, z };
		uint64_t want[] = { 0x123456781234FF80ull, 0xFFFF8000ull, 0xFFFFFFFF80000000ull };
		CHECK_VALS("cbw-cwde-cdqe", got, want);
	}
	/* cwd: AX 0x8000 -> DX 0xFFFF (RDX bits 63:16 kept); cdq: EAX
	 * 0x7FFFFFFF -> EDX 0 (RDX zero-extended); cqo: RAX negative -> RDX
	 * all ones. */
	{
		uint64_t d1 = 0x5555555555555555ull, d2 = 0x5555555555555555ull, d3 = 0;
		a = 0x8000;
		__asm__ volatile("cwtd" : "+d"(d1) : "a"(a));
		a = 0x7FFFFFFF;
		__asm__ volatile("cltd" : "+d"(d2) : "a"(a));
		a = 0x8000000000000000ull;
		__asm__ volatile("cqto" : "+d"(d3) : "a"(a));
		uint64_t got[] = { d1, d2, d3 };
		uint64_t want[] = { 0x555555555555FFFFull, 0, ~0ull };
		CHECK_VALS("cwd-cdq-cqo", got, want);
	}
	/* movsx / movzx / movsxd. */
	{
		uint64_t r1, r2, r3, r4, r5;
		__asm__ volatile("movsbq %b1, %0" : "=r"(r1) : "q"((uint8_t)0x80));
		__asm__ volatile("movswl %w1, %k0" : "=r"(r2) : "r"((uint16_t)0x8001));
		__asm__ volatile("movslq %k1, %0" : "=r"(r3) : "r"(0xFFFFFFFF80000002ull));
		r4 = 0xFFFFFFFFFFFFFFFFull;
		__asm__ volatile("movzbw %b1, %w0" : "+r"(r4) : "q"((uint8_t)0x81));
		__asm__ volatile("movzwq %w1, %0" : "=r"(r5) : "r"((uint16_t)0xFFFF));
		uint64_t got[] = { r1, r2, r3, r4, r5 };
		uint64_t want[] = { 0xFFFFFFFFFFFFFF80ull, 0xFFFF8001ull, 0xFFFFFFFF80000002ull,
				    0xFFFFFFFFFFFF0081ull, 0xFFFF };
		CHECK_VALS("movsx-movzx", got, want);
	}
}

int main(void)
{
	faults_on();
	addsub_checks();
	mul_checks();
	div_checks();
	shift_checks();
	double_shift_checks();
	bit_checks();
	atomic_checks();
	ahf_checks();
	extension_checks();
	faults_off();
	report_done();
}
