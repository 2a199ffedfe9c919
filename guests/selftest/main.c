/*
 * selftest - conformance checks, one PASS/FAIL line each, then a summary.
 *
 * This file: boot state, integer arithmetic and flags, shifts and rotates,
 * bit operations, conditional moves and setcc, sign/zero extension, string
 * instructions, calls and returns. exceptions.c: exceptions, software
 * interrupts and paging.
 *
 * Flag values: CF 0x1, PF 0x4, AF 0x10, ZF 0x40, SF 0x80, OF 0x800.
 * PF is set when the low byte of the result has an even number of 1 bits.
 */
#include "selftest.h"

#define CF FLAGS_CF
#define PF FLAGS_PF
#define AF FLAGS_AF
#define ZF FLAGS_ZF
#define SF FLAGS_SF
#define OF FLAGS_OF
#define ARITH FLAGS_ARITH

/* ---------------------------------------------------------------- helpers */

void check_alu(const char *name, struct alu r, uint64_t want, uintptr_t want_flags,
	       uintptr_t mask)
{
	unsigned long f = (unsigned long)(r.f & mask);

	if (r.v == want && f == want_flags)
		report(name, 1, "%#llx flags %#lx", (unsigned long long)r.v, f);
	else
		report(name, 0, "got %#llx flags %#lx, want %#llx flags %#lx",
		       (unsigned long long)r.v, f, (unsigned long long)want,
		       (unsigned long)want_flags);
}

void check_eq(const char *name, uint64_t got, uint64_t want)
{
	report_eq(name, got, want);
}

void check_pair(const char *name, uint64_t got_a, uint64_t got_b, uint64_t want_a,
		uint64_t want_b)
{
	if (got_a == want_a && got_b == want_b)
		report(name, 1, "%#llx %#llx", (unsigned long long)got_a,
		       (unsigned long long)got_b);
	else
		report(name, 0, "got %#llx %#llx, want %#llx %#llx",
		       (unsigned long long)got_a, (unsigned long long)got_b,
		       (unsigned long long)want_a, (unsigned long long)want_b);
}

/* ------------------------------------------------------------ boot state */

static void boot_checks(uintptr_t flags_at_main)
{
	struct dtr g = sgdt(), i = sidt();
	uint16_t cs, ds, ss;
	uintptr_t cr0 = read_cr0();

	check_eq("boot-magic", boot_magic, MB_BOOT_MAGIC);
#ifdef __x86_64__
	{
		uint64_t efer = rdmsr(MSR_EFER);
		uintptr_t cr4 = read_cr4();
		/* LME (bit 8) | LMA (bit 10) = 0x500; PG | PE; PAE. */
		report("long-mode", (efer & 0x500) == 0x500 &&
			       (cr0 & 0x80000001) == 0x80000001 && (cr4 & 0x20),
		       "EFER.LME/LMA %#llx, CR0.PG/PE %#lx, CR4.PAE %#lx",
		       (unsigned long long)(efer & 0x500), (unsigned long)(cr0 & 0x80000001),
		       (unsigned long)(cr4 & 0x20));
	}
	/* CPUID 0x80000001 EDX bit 29: long mode. */
	check_eq("cpuid-long-mode", (cpuid(0x80000001, 0).edx >> 29) & 1, 1);
#else
	/* PE on, PG off. */
	check_eq("protected-mode", cr0 & 0x80000001, 0x00000001);
#endif
	__asm__ volatile("mov %%cs, %0\n\tmov %%ds, %1\n\tmov %%ss, %2"
			 : "=r"(cs), "=r"(ds), "=r"(ss));
	report("segments", cs == SEL_CODE && ds == SEL_DATA && ss == SEL_DATA,
	       "cs %#x ds %#x ss %#x", cs, ds, ss);
	extern char gdt[];
	report("sgdt", g.base == (uintptr_t)gdt && g.limit == GDT_LIMIT, "base %#lx limit %#x",
	       (unsigned long)g.base, g.limit);
	/* 256 gates of 16 (long mode) or 8 bytes. */
	check_eq("sidt-limit", i.limit, 256 * 2 * WORD_BYTES - 1);
	/* The entry code ran cld; bit 1 of EFLAGS is always 1. */
	check_eq("flags-at-main", flags_at_main & (FLAGS_DF | 0x2), 0x2);
}

static void system_checks(void)
{
	uintptr_t before, after;
	uint64_t t1, t2;

	/* EFLAGS.ID (bit 21) is writable on a CPU with CPUID. */
	__asm__ volatile("pushf\n\t"
			 "pop %0\n\t"
			 "mov %0, %1\n\t"
			 "xor $0x200000, %1\n\t"
			 "push %1\n\t"
			 "popf\n\t"
			 "pushf\n\t"
			 "pop %1\n\t"
			 "push %0\n\t"
			 "popf"
			 : "=&r"(before), "=&r"(after)
			 :
			 : "cc", "memory");
	check_eq("eflags-id-toggle", (before ^ after) & 0x200000, 0x200000);

	t1 = rdtsc();
	for (volatile int n = 0; n < 1000; n++)
		;
	t2 = rdtsc();
	report("rdtsc-advances", t2 > t1, "second read is later");
}

/* ------------------------------------------------------- add, sub, adc... */

static void add_sub_checks(void)
{
	/* 0x7FFFFFFF + 1 = 0x80000000: signed overflow, sign, carry out of bit 3
	 * (F + 1), low byte 0x00 has even parity. */
	check_alu("add-signed-overflow", ALU2("clc", "addl", 0x7FFFFFFF, 1), 0x80000000,
		  OF | SF | AF | PF, ARITH);
	/* 0xFFFFFFFF + 1 = 0: carry out, zero, AF, PF. */
	check_alu("add-carry-zero", ALU2("clc", "addl", 0xFFFFFFFF, 1), 0, CF | ZF | AF | PF,
		  ARITH);
	/* 0 - 1 = 0xFFFFFFFF: borrow, sign, nibble borrow, low byte 0xFF (8 ones). */
	check_alu("sub-borrow", ALU2("clc", "subl", 0, 1), 0xFFFFFFFF, CF | SF | AF | PF, ARITH);
	/* 0x80000000 - 1 = 0x7FFFFFFF: signed overflow, nibble borrow, 0xFF even. */
	check_alu("sub-signed-overflow", ALU2("clc", "subl", 0x80000000, 1), 0x7FFFFFFF,
		  OF | AF | PF, ARITH);
	/* cmp 5, 5: 0 result, destination unchanged. */
	check_alu("cmp-equal", ALU2("clc", "cmpl", 5, 5), 5, ZF | PF, ARITH);
	/* stc; 5 + 7 + 1 = 13 = 0b1101 (3 ones: PF=0); 5+7+1 < 16: no AF. */
	check_alu("adc-carry-in", ALU2("stc", "adcl", 5, 7), 13, 0, ARITH);
	/* stc; 5 - 7 - 1 = -3 = 0xFFFFFFFD: borrow, sign, nibble borrow; 0xFD has 7 ones. */
	check_alu("sbb-borrow-in", ALU2("stc", "sbbl", 5, 7), 0xFFFFFFFD, CF | SF | AF, ARITH);
	/* stc; inc 0x7FFFFFFF = 0x80000000: inc keeps CF; OF, SF, AF, PF. */
	check_alu("inc-keeps-cf", ALU1("stc", "incl", 0x7FFFFFFF), 0x80000000,
		  CF | OF | SF | AF | PF, ARITH);
	/* clc; dec 1 = 0: ZF, PF; CF stays clear. */
	check_alu("dec-to-zero", ALU1("clc", "decl", 1), 0, ZF | PF, ARITH);
	/* neg 5 = 0xFFFFFFFB: CF (source nonzero), SF, AF (0 - 5 borrows); 0xFB: 7 ones. */
	check_alu("neg-nonzero", ALU1("clc", "negl", 5), 0xFFFFFFFB, CF | SF | AF, ARITH);
	/* neg 0 = 0: CF clear, ZF, PF. */
	check_alu("neg-zero", ALU1("stc", "negl", 0), 0, ZF | PF, ARITH);

	/* Logic ops clear CF and OF; AF is undefined. */
	check_alu("and-flags", ALU2("stc", "andl", 0xF0F0F0F0, 0x0F0F0F0F), 0, ZF | PF,
		  ARITH & ~AF);
	/* 0x80000001: SF; low byte 0x01 has one 1 bit: PF clear. */
	check_alu("or-flags", ALU2("stc", "orl", 0x80000000, 1), 0x80000001, SF, ARITH & ~AF);
	check_alu("xor-flags", ALU2("stc", "xorl", 0x12345678, 0x12345678), 0, ZF | PF,
		  ARITH & ~AF);
	{
		/* test: 0x03 (two ones: PF), 0x07 (three ones), 0x100 (low byte 0: PF). */
		uint32_t p1 = ALU2("", "testl", 0x03, 0x03).f & PF;
		uint32_t p2 = ALU2("", "testl", 0x07, 0x07).f & PF;
		uint32_t p3 = ALU2("", "testl", 0x100, 0x100).f & PF;
		check_eq("parity-low-byte-only", (p1 << 16) | (p2 << 8) | p3, 0x040004);
	}

	/* Multi-word add and subtract with carry, native width. */
	{
		uintptr_t lo = ~(uintptr_t)0, hi = 1;
		__asm__("add %2, %0\n\tadc %3, %1" : "+r"(lo), "+r"(hi) : "r"((uintptr_t)1),
			"r"((uintptr_t)2) : "cc");
		/* (hi:lo) = (1:~0) + (2:1) = (4:0) */
		check_pair("adc-chain", hi, lo, 4, 0);
		lo = 0;
		hi = 5;
		__asm__("sub %2, %0\n\tsbb %3, %1" : "+r"(lo), "+r"(hi) : "r"((uintptr_t)1),
			"r"((uintptr_t)2) : "cc");
		/* (5:0) - (2:1) = (2:~0) */
		check_pair("sbb-chain", hi, lo, 2, ~(uintptr_t)0);
	}
#ifdef __x86_64__
	/* 64-bit: 0x7FFFFFFFFFFFFFFF + 1 overflows into the sign. */
	check_alu("add64-signed-overflow",
		  ALU2T(uint64_t, "clc", "addq", 0x7FFFFFFFFFFFFFFFull, 1),
		  0x8000000000000000ull, OF | SF | AF | PF, ARITH);
	/* A 32-bit result written to a 64-bit register zero-extends. */
	{
		uint64_t r = ~0ull;
		__asm__("movl $1, %k0" : "+r"(r));
		check_eq("mov32-zero-extends", r, 1);
		r = ~0ull;
		__asm__("addl $0, %k0" : "+r"(r) : : "cc");
		check_eq("add32-zero-extends", r, 0xFFFFFFFF);
	}
#endif
	{
		/* Writes to 8- and 16-bit registers preserve the rest. */
		uintptr_t r8 = ~(uintptr_t)0, r16 = ~(uintptr_t)0, rh = ~(uintptr_t)0;
		__asm__("movb $0, %b0" : "+q"(r8));
		__asm__("movw $0, %w0" : "+r"(r16));
		__asm__("movb $0x12, %h0" : "+Q"(rh));
		check_eq("mov8-preserves", r8, ~(uintptr_t)0xFF);
		check_eq("mov16-preserves", r16, ~(uintptr_t)0xFFFF);
		check_eq("mov8-high-preserves", rh, ~(uintptr_t)0xFF00 | 0x1200);
	}
}

/* ------------------------------------------------------- mul, imul, div */

static void mul_div_checks(void)
{
	uint32_t a, d;
	uintptr_t f;

	/* 0xFFFFFFFF^2 = 0xFFFFFFFE_00000001; high half nonzero: CF = OF = 1. */
	a = 0xFFFFFFFF;
	__asm__("mull %3\n\tpushf\n\tpop %2" : "+a"(a), "=d"(d), "=r"(f) : "r"(0xFFFFFFFFu)
		: "cc");
	check_alu("mul32", (struct alu){ ((uint64_t)d << 32) | a, f }, 0xFFFFFFFE00000001ull,
		  CF | OF, CF | OF);
	/* 3 * 7 = 21, EDX = 0: CF = OF = 0. */
	a = 3;
	__asm__("mull %3\n\tpushf\n\tpop %2" : "+a"(a), "=d"(d), "=r"(f) : "r"(7u) : "cc");
	check_alu("mul32-small", (struct alu){ ((uint64_t)d << 32) | a, f }, 21, 0, CF | OF);
	/* -3 * 7 = -21: EDX:EAX = 0xFFFFFFFF:0xFFFFFFEB; the sign extension fits: CF=OF=0. */
	a = (uint32_t)-3;
	__asm__("imull %3\n\tpushf\n\tpop %2" : "+a"(a), "=d"(d), "=r"(f) : "r"(7u) : "cc");
	check_alu("imul32-one-operand", (struct alu){ ((uint64_t)d << 32) | a, f },
		  0xFFFFFFFFFFFFFFEBull, 0, CF | OF);
	/* imul $-2, 0x40000000 = -0x80000000: fits in 32 bits. */
	check_alu("imul-imm-fits", ALU2("", "imull $-2,", 0, 0x40000000), 0x80000000, 0,
		  CF | OF);
	/* imul $-2, 0x40000001 = -0x80000002: truncates to 0x7FFFFFFE, CF = OF = 1. */
	check_alu("imul-imm-overflow", ALU2("", "imull $-2,", 0, 0x40000001), 0x7FFFFFFE,
		  CF | OF, CF | OF);
	/* 0x10000 * 0x10000 = 2^32: truncates to 0. */
	check_alu("imul-reg-overflow", ALU2("", "imull", 0x10000, 0x10000), 0, CF | OF, CF | OF);

	/* 100 / 7 = 14 remainder 2. */
	a = 100;
	d = 0;
	__asm__("divl %2" : "+a"(a), "+d"(d) : "r"(7u) : "cc");
	check_pair("div32", a, d, 14, 2);
	/* EDX:EAX = 5 * 2^32 + 3; / 16 = 5 * 2^28 = 0x50000000 remainder 3. */
	a = 3;
	d = 5;
	__asm__("divl %2" : "+a"(a), "+d"(d) : "r"(16u) : "cc");
	check_pair("div32-wide-dividend", a, d, 0x50000000, 3);
	/* -100 / 7 = -14 remainder -2 (truncation toward zero). */
	a = (uint32_t)-100;
	__asm__("cltd\n\tidivl %2" : "+a"(a), "=&d"(d) : "r"(7u) : "cc");
	check_pair("idiv32", a, d, 0xFFFFFFF2, 0xFFFFFFFE);
	/* 100 / -7 = -14 remainder 2 (the remainder takes the dividend's sign). */
	a = 100;
	__asm__("cltd\n\tidivl %2" : "+a"(a), "=&d"(d) : "r"((uint32_t)-7) : "cc");
	check_pair("idiv32-negative-divisor", a, d, 0xFFFFFFF2, 2);
	{
		/* AX = 1000 / BL = 7: AL = 142 = 0x8E, AH = 1000 - 994 = 6. */
		uint16_t ax = 1000;
		__asm__("divb %b1" : "+a"(ax) : "q"((uint8_t)7) : "cc");
		check_eq("div8", ax, 0x068E);
		/* AX = -100 / 7: AL = -14 = 0xF2, AH = -2 = 0xFE. */
		ax = (uint16_t)-100;
		__asm__("idivb %b1" : "+a"(ax) : "q"((uint8_t)7) : "cc");
		check_eq("idiv8", ax, 0xFEF2);
		/* DX:AX = 0x10000 / 3 = 0x5555 remainder 1. */
		uint16_t dx = 1;
		ax = 0;
		__asm__("divw %w2" : "+a"(ax), "+d"(dx) : "r"((uint16_t)3) : "cc");
		check_pair("div16", ax, dx, 0x5555, 1);
	}
#ifdef __x86_64__
	{
		uint64_t ra = ~0ull, rd;
		/* (2^64-1)^2 = 2^128 - 2^65 + 1: RDX = 2^64 - 2, RAX = 1. */
		__asm__("mulq %2" : "+a"(ra), "=d"(rd) : "r"(~0ull) : "cc");
		check_pair("mul64", rd, ra, 0xFFFFFFFFFFFFFFFEull, 1);
		/* RDX:RAX = 5 * 2^64 + 3; / 16 = 5 * 2^60 remainder 3. */
		ra = 3;
		rd = 5;
		__asm__("divq %2" : "+a"(ra), "+d"(rd) : "r"(16ull) : "cc");
		check_pair("div64-wide-dividend", ra, rd, 0x5000000000000000ull, 3);
		/* -100 / 7 in 64 bits. */
		ra = (uint64_t)-100;
		__asm__("cqto\n\tidivq %2" : "+a"(ra), "=&d"(rd) : "r"(7ull) : "cc");
		check_pair("idiv64", ra, rd, (uint64_t)-14, (uint64_t)-2);
		/* 3 * 0x5555555555555556 = 2^64 + 2: truncates to 2, signed overflow. */
		check_alu("imul64-overflow",
			  ALU2T(uint64_t, "", "imulq $3,", 0, 0x5555555555555556ull), 2, CF | OF,
			  CF | OF);
	}
#endif
}

/* ------------------------------------------------------ shifts, rotates */

static void shift_checks(void)
{
	/* shl 0x80000000 by 1: 0, CF = old bit 31; OF = MSB(result) ^ CF = 1. */
	check_alu("shl1-flags", ALU1("clc", "shll $1,", 0x80000000), 0, CF | OF | ZF | PF,
		  ARITH & ~AF);
	/* shr 0x80000001 by 1: 0x40000000, CF = old bit 0, OF = old MSB. */
	check_alu("shr1-flags", ALU1("clc", "shrl $1,", 0x80000001), 0x40000000, CF | OF | PF,
		  ARITH & ~AF);
	/* sar 0x80000000 by 4: 0xF8000000, CF = old bit 3 = 0 (OF undefined for count > 1). */
	check_alu("sar-sign-fill", ALU1("stc", "sarl $4,", 0x80000000), 0xF8000000, SF | PF,
		  CF | ZF | SF | PF);
	/* 32-bit shift counts are masked to 5 bits: 33 -> 1. */
	check_alu("shl-count-masked", ALUCL("clc", "shll", 1, 33), 2, 0, CF | ZF);
	/* A masked count of 0 (32 & 31) changes nothing, not even the flags. */
	check_alu("shl-count-zero", ALUCL("stc", "shll", 0x12345678, 32), 0x12345678, CF, CF);
	{
		/* 8-bit shifts also mask to 5 bits: 33 -> 1 (1 << 1 = 2); 9 stays 9 (0). */
		uint8_t x = 1, y = 1;
		__asm__("shlb %%cl, %b0" : "+q"(x) : "c"(33) : "cc");
		__asm__("shlb %%cl, %b0" : "+q"(y) : "c"(9) : "cc");
		check_eq("shl8-count-masked", (uint32_t)x << 8 | y, 0x0200);
		/* rol8 by 9: masked to 9, rotates by 9 mod 8 = 1: 0x81 -> 0x03. */
		x = 0x81;
		__asm__("rolb %%cl, %b0" : "+q"(x) : "c"(9) : "cc");
		check_eq("rol8-count", x, 0x03);
	}
	/* rol 0x80000001 by 1 = 0x00000003; CF = new bit 0; OF = MSB ^ CF = 1. */
	check_alu("rol1", ALU1("clc", "roll $1,", 0x80000001), 3, CF | OF, CF | OF);
	/* ror 1 by 1 = 0x80000000; CF = new MSB; OF = bit 31 ^ bit 30 = 1. */
	check_alu("ror1", ALU1("clc", "rorl $1,", 1), 0x80000000, CF | OF, CF | OF);
	/* stc; rcl 0x80000000 by 1 = 1 (old CF in), CF = old bit 31; OF = MSB ^ CF = 1. */
	check_alu("rcl1", ALU1("stc", "rcll $1,", 0x80000000), 1, CF | OF, CF | OF);
	/* clc; rcr 1 by 1 = 0, CF = old bit 0; OF = old MSB ^ old CF = 0. */
	check_alu("rcr1", ALU1("clc", "rcrl $1,", 1), 0, CF, CF | OF);
	/* shld $4: 0x12345678 << 4 | 0x9ABCDEF0 >> 28 = 0x23456789; CF = old bit 28 = 1. */
	check_alu("shld", ALU2("clc", "shldl $4,", 0x12345678, 0x9ABCDEF0), 0x23456789, CF, CF);
	/* shrd $4: 0x12345678 >> 4 | (0x9ABCDEF1 & 0xF) << 28 = 0x11234567; CF = old bit 3. */
	check_alu("shrd", ALU2("clc", "shrdl $4,", 0x12345678, 0x9ABCDEF1), 0x11234567, CF, CF);
#ifdef __x86_64__
	/* 64-bit shift counts are masked to 6 bits: 65 -> 1. */
	check_alu("shl64-count-masked", ALUCLT(uint64_t, "clc", "shlq", 1, 65), 2, 0, CF | ZF);
	/* 1 << 63 by shl 63: the sign bit. */
	check_alu("shl64-to-sign", ALUCLT(uint64_t, "clc", "shlq", 1, 63), 0x8000000000000000ull,
		  SF | PF, CF | ZF | SF | PF);
#endif
}

/* --------------------------------------------------- bits, cmov, setcc */

static uint32_t setcc_bits(uint32_t a, uint32_t b)
{
	uint8_t s[13];

	/* cmp b, a computes a - b. */
	__asm__ volatile("cmpl %[b], %[a]\n\t"
			 "setl 0(%[s])\n\t"
			 "setb 1(%[s])\n\t"
			 "setg 2(%[s])\n\t"
			 "seta 3(%[s])\n\t"
			 "sete 4(%[s])\n\t"
			 "setne 5(%[s])\n\t"
			 "sets 6(%[s])\n\t"
			 "seto 7(%[s])\n\t"
			 "setle 8(%[s])\n\t"
			 "setae 9(%[s])\n\t"
			 "setbe 10(%[s])\n\t"
			 "setge 11(%[s])\n\t"
			 "setp 12(%[s])"
			 :
			 : [a] "r"(a), [b] "r"(b), [s] "r"(s)
			 : "cc", "memory");
	uint32_t bits = 0;
	for (int i = 0; i < 13; i++)
		bits |= (uint32_t)(s[i] & 1) << i;
	return bits;
}

static void bit_checks(void)
{
	/* bit order of setcc_bits: l b g a e ne s o le ae be ge p */
	/* -1 vs 1: signed less, unsigned above; -2 = 0xFE has 7 ones (no PF).
	 * l, a, ne, s, le, ae = bits 0, 3, 5, 6, 8, 9 = 0x369. */
	check_eq("setcc-minus1-vs-1", setcc_bits(0xFFFFFFFF, 1), 0x369);
	/* 3 vs 5: less both ways: l, b, ne, s, le, be = bits 0, 1, 5, 6, 8, 10 = 0x563. */
	check_eq("setcc-3-vs-5", setcc_bits(3, 5), 0x563);
	/* 0x80000000 - 1 = 0x7FFFFFFF overflows: SF=0, OF=1, so "less" (SF != OF);
	 * unsigned above; 0xFF parity even. l, a, ne, o, le, ae, p =
	 * bits 0, 3, 5, 7, 8, 9, 12 = 0x13A9. */
	check_eq("setcc-overflow", setcc_bits(0x80000000, 1), 0x13A9);

	{
		uint32_t taken = 0, not_taken = 0;
		/* -1 < 1 signed (cmovl taken), not below unsigned (cmovb not taken). */
		__asm__("cmpl %3, %2\n\t"
			"cmovl %4, %0\n\t"
			"cmovb %4, %1"
			: "+&r"(taken), "+&r"(not_taken)
			: "r"(0xFFFFFFFFu), "r"(1u), "r"(111u)
			: "cc");
		check_pair("cmov", taken, not_taken, 111, 0);
	}
#ifdef __x86_64__
	{
		/* A 32-bit cmov zero-extends its destination even when not taken. */
		uint64_t r = ~0ull;
		__asm__("cmpl %1, %1\n\tcmovne %k2, %k0" : "+r"(r) : "r"(1u), "r"(5u) : "cc");
		check_eq("cmov32-not-taken-zero-extends", r, 0xFFFFFFFF);
	}
#endif

	/* bt $5, 0x20: CF = 1; bt $4: CF = 0. */
	check_eq("bt-imm", (ALU1("clc", "btl $5,", 0x20).f & CF) << 1 |
				   (ALU1("stc", "btl $4,", 0x20).f & CF),
		 2);
	check_alu("bts", ALU1("stc", "btsl $3,", 0), 8, 0, CF);
	check_alu("btr", ALU1("clc", "btrl $3,", 0xF), 7, CF, CF);
	check_alu("btc", ALU1("clc", "btcl $0,", 1), 0, CF, CF);
	{
		/* With a register bit offset, bt on memory addresses a bit string:
		 * bit 37 is bit 5 of the second dword. bts 66 sets bit 2 of the third. */
		uint32_t bits[4] = { 0, 0x20, 0, 0 };
		uintptr_t f37, f36;
		__asm__ volatile("btl %1, %2\n\tpushf\n\tpop %0" : "=r"(f37) : "r"(37), "m"(bits)
				 : "cc");
		__asm__ volatile("btl %1, %2\n\tpushf\n\tpop %0" : "=r"(f36) : "r"(36), "m"(bits)
				 : "cc");
		__asm__ volatile("btsl %1, %0" : "+m"(bits) : "r"(66) : "cc");
		check_eq("bt-memory-bitstring",
			 (f37 & CF) << 8 | (f36 & CF) << 4 | bits[2] | bits[0] << 12, 0x104);
	}
	/* 0x00018000: lowest set bit 15, highest 16. */
	check_pair("bsf-bsr", ALU2("", "bsfl", 0, 0x18000).v, ALU2("", "bsrl", 0, 0x18000).v, 15,
		   16);
	/* ZF = 1 for a zero source, 0 otherwise (the destination is left alone). */
	check_eq("bsf-zero-source",
		 (ALU2("", "bsfl", 0, 0).f & ZF) | (ALU2("", "bsfl", 0, 1).f & ZF) >> 4, ZF);
	{
		uint32_t x = 0x12345678;
		__asm__("bswap %0" : "+r"(x));
		check_eq("bswap32", x, 0x78563412);
#ifdef __x86_64__
		uint64_t y = 0x0102030405060708ull;
		__asm__("bswap %0" : "+r"(y));
		check_eq("bswap64", y, 0x0807060504030201ull);
#endif
	}
}

/* --------------------------------------------------- sign/zero extension */

static void extension_checks(void)
{
	uint32_t r;
	uint32_t a, d;

	__asm__("movsbl %b1, %0" : "=r"(r) : "q"((uint8_t)0x80));
	check_eq("movsx8", r, 0xFFFFFF80);
	__asm__("movzbl %b1, %0" : "=r"(r) : "q"((uint8_t)0x80));
	check_eq("movzx8", r, 0x80);
	__asm__("movswl %w1, %0" : "=r"(r) : "r"((uint16_t)0x8000));
	check_eq("movsx16", r, 0xFFFF8000);
	__asm__("movzwl %w1, %0" : "=r"(r) : "r"((uint16_t)0xFFFF));
	check_eq("movzx16", r, 0xFFFF);
	/* cbw sign-extends AL into AX and leaves bits 31:16 alone; cwde then
	 * extends AX into EAX. */
	a = 0x12345680;
	__asm__("cbtw" : "+a"(a));
	check_eq("cbw", a, 0x1234FF80);
	__asm__("cwtl" : "+a"(a));
	check_eq("cwde", a, 0xFFFFFF80);
	a = 0x80000000;
	__asm__("cltd" : "+a"(a), "=d"(d));
	check_eq("cdq", d, 0xFFFFFFFF);
#ifdef __x86_64__
	{
		uint64_t q;
		__asm__("movslq %k1, %0" : "=r"(q) : "r"(0x80000000u));
		check_eq("movsxd", q, 0xFFFFFFFF80000000ull);
		q = 0x1234567880000000ull;
		__asm__("cltq" : "+a"(q));
		check_eq("cdqe", q, 0xFFFFFFFF80000000ull);
		uint64_t qd;
		q = 0x8000000000000000ull;
		__asm__("cqto" : "+a"(q), "=d"(qd));
		check_eq("cqo", qd, ~0ull);
	}
#endif
	{
		/* lea 0x10(base, index, 4) with base 0x1000, index 3 = 0x101C. */
		uintptr_t res;
		__asm__("lea 0x10(%1,%2,4), %0" : "=r"(res) : "r"((uintptr_t)0x1000),
			"r"((uintptr_t)3));
		check_eq("lea-scaled-index", res, 0x101C);
	}
}

/* --------------------------------------------- exchange, stack, loops */

static void misc_checks(void)
{
	uint32_t a = 1, b = 2, m, e;
	uintptr_t f;

	__asm__("xchgl %0, %1" : "+r"(a), "+r"(b));
	check_pair("xchg", a, b, 2, 1);
	/* xadd src, dst: dst = 5 + 3, src = old dst 5. */
	a = 5;
	b = 3;
	__asm__("xaddl %1, %0" : "+r"(a), "+r"(b) : : "cc");
	check_pair("xadd", a, b, 8, 5);
	/* cmpxchg: EAX == mem: mem = new, ZF = 1. */
	m = 5;
	e = 5;
	__asm__ volatile("cmpxchgl %3, %1\n\tpushf\n\tpop %2" : "+a"(e), "+m"(m), "=r"(f)
			 : "r"(9u) : "cc", "memory");
	check_eq("cmpxchg-success", (uint64_t)m << 32 | e << 8 | (f & ZF), 0x900000500 | ZF);
	/* EAX != mem: EAX = mem, mem unchanged, ZF = 0. */
	m = 7;
	e = 5;
	__asm__ volatile("cmpxchgl %3, %1\n\tpushf\n\tpop %2" : "+a"(e), "+m"(m), "=r"(f)
			 : "r"(9u) : "cc", "memory");
	check_eq("cmpxchg-failure", (uint64_t)m << 32 | e << 8 | (f & ZF), 0x700000700);

	{
		/* push $-2 pushes a sign-extended native word and moves SP by one word. */
		uintptr_t v, sp0, sp1;
		__asm__ volatile("mov " XSP ", %1\n\t"
				 "push $-2\n\t"
				 "mov " XSP ", %2\n\t"
				 "pop %0"
				 : "=r"(v), "=&r"(sp0), "=&r"(sp1)
				 :
				 : "memory");
		check_pair("push-imm-sign-extends", v, sp0 - sp1, ~(uintptr_t)1, WORD_BYTES);
	}
	{
		/* std is visible through pushf, and popf restores it. */
		uintptr_t fl;
		__asm__ volatile("std\n\tpushf\n\tpop %0\n\tcld" : "=r"(fl) : : "cc");
		check_eq("pushf-df", fl & FLAGS_DF, FLAGS_DF);
	}
	{
		/* loop: 10 iterations of += 3; ECX ends at 0. */
		uintptr_t c = 10;
		uint32_t acc = 0;
		__asm__("1: addl $3, %1\n\tloop 1b" : "+c"(c), "+r"(acc) : : "cc");
		check_pair("loop", acc, c, 30, 0);
	}
}

/* ----------------------------------------------------------- strings */

static uint8_t src_buf[256], dst_buf[256 + 2];

static void fill_pattern(uint8_t *p, unsigned n, uint8_t seed)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* 1 if p[0..n) is the pattern fill_pattern(seed) would write. */
static int is_pattern(const uint8_t *p, unsigned n, uint8_t seed)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i] != (uint8_t)(seed + i * 7))
			return 0;
	return 1;
}

static void string_checks(void)
{
	uint8_t *dst = dst_buf + 1; /* dst_buf[0] and dst[n] are guards */
	uint8_t *src = src_buf;
	uintptr_t n;
	uint8_t *d, *s;

	/* rep movsb forward: 37 bytes, pointers advance by 37, count 0. */
	fill_pattern(src, 37, 1);
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst;
	s = src;
	n = 37;
	__asm__ volatile("cld\n\trep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	report("rep-movsb-forward",
	       is_pattern(dst, 37, 1) && dst_buf[0] == 0xEE && dst[37] == 0xEE &&
		       d == dst + 37 && s == src + 37 && n == 0,
	       "37 bytes, pointers +37");

	/* rep movsb backward (DF=1): start at the last byte; pointers end one below. */
	fill_pattern(src, 37, 2);
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst + 36;
	s = src + 36;
	n = 37;
	__asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	report("rep-movsb-backward",
	       is_pattern(dst, 37, 2) && dst_buf[0] == 0xEE && dst[37] == 0xEE &&
		       (uintptr_t)d == (uintptr_t)dst - 1 && (uintptr_t)s == (uintptr_t)src - 1 &&
		       n == 0,
	       "37 bytes, pointers end at start - 1");

	{
		/* Overlapping forward copy by one byte replicates the first byte:
		 * movs is defined element by element. */
		char buf[] = "abcdefghij";
		d = (uint8_t *)buf + 1;
		s = (uint8_t *)buf;
		n = 8;
		__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
		report("rep-movsb-overlap", memcmp(buf, "aaaaaaaaaj", 11) == 0, "%s", buf);
	}

	/* rep movsl: 10 dwords, pointers + 40. */
	fill_pattern(src, 40, 3);
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst;
	s = src;
	n = 10;
	__asm__ volatile("rep movsl" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	report("rep-movsd", is_pattern(dst, 40, 3) && dst[40] == 0xEE && d == dst + 40 &&
				    s == src + 40,
	       "10 dwords, pointers +40");

	/* rep movsw backward: 5 words from the last word down. */
	fill_pattern(src, 10, 4);
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst + 8;
	s = src + 8;
	n = 5;
	__asm__ volatile("std\n\trep movsw\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	report("rep-movsw-backward", is_pattern(dst, 10, 4) && dst_buf[0] == 0xEE &&
					     dst[10] == 0xEE && (uintptr_t)d == (uintptr_t)dst - 2 &&
					     (uintptr_t)s == (uintptr_t)src - 2,
	       "5 words, pointers end at start - 2");

#ifdef __x86_64__
	/* rep movsq: 5 qwords, pointers + 40. */
	fill_pattern(src, 40, 5);
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst;
	s = src;
	n = 5;
	__asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	report("rep-movsq", is_pattern(dst, 40, 5) && dst[40] == 0xEE && d == dst + 40 &&
				    s == src + 40,
	       "5 qwords, pointers +40");
#endif

	/* A single movsb without rep. */
	fill_pattern(src, 1, 6);
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst;
	s = src;
	__asm__ volatile("movsb" : "+D"(d), "+S"(s) : : "memory");
	report("movsb-single", dst[0] == 6 && dst[1] == 0xEE && d == dst + 1 && s == src + 1,
	       "one byte, pointers +1");

	/* rep with a zero count does nothing. */
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst;
	s = src;
	n = 0;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	report("rep-zero-count", dst[0] == 0xEE && d == dst && s == src, "no effect");

	/* rep stosb: 100 bytes of 0x5A, guards intact. */
	memset(dst_buf, 0xEE, sizeof(dst_buf));
	d = dst;
	n = 100;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0x5A) : "memory");
	{
		int ok = d == dst + 100 && dst_buf[0] == 0xEE && dst[100] == 0xEE;
		for (int i = 0; i < 100; i++)
			ok &= dst[i] == 0x5A;
		report("rep-stosb", ok, "100 bytes");
	}

	{
		/* rep stosl backward from the last of 4 dwords; EDI ends 4 bytes below. */
		uint32_t w[6] = { 1, 2, 3, 4, 5, 6 };
		uint32_t *p = &w[4];
		n = 4;
		__asm__ volatile("std\n\trep stosl\n\tcld" : "+D"(p), "+c"(n) : "a"(0xCAFEF00D)
				 : "memory");
		report("rep-stosd-backward",
		       w[0] == 1 && w[1] == 0xCAFEF00D && w[2] == 0xCAFEF00D && w[3] == 0xCAFEF00D &&
			       w[4] == 0xCAFEF00D && w[5] == 6 && p == &w[0],
		       "4 dwords, EDI ends one dword below");
	}
#ifdef __x86_64__
	{
		uint64_t q[4] = { 1, 2, 3, 4 };
		uint64_t *p = &q[1];
		n = 2;
		__asm__ volatile("rep stosq" : "+D"(p), "+c"(n) : "a"(0x1122334455667788ull)
				 : "memory");
		report("rep-stosq", q[0] == 1 && q[1] == 0x1122334455667788ull &&
					    q[2] == 0x1122334455667788ull && q[3] == 4 && p == &q[3],
		       "2 qwords");
	}
#endif

	{
		static const char a[] = "hello world", b[] = "hello wOrld";
		const char *pa = a, *pb = b;
		uintptr_t fl;
		/* Mismatch at index 7 ('o' 0x6F vs 'O' 0x4F): stops after comparing it,
		 * count = 11 - 8 = 3, ESI = a + 8, ZF = 0, CF = 0 (0x6F > 0x4F). */
		n = 11;
		__asm__ volatile("repe cmpsb\n\tpushf\n\tpop %3"
				 : "+S"(pa), "+D"(pb), "+c"(n), "=r"(fl)
				 :
				 : "cc", "memory");
		report("repe-cmpsb-mismatch",
		       n == 3 && pa == a + 8 && pb == b + 8 && (fl & (ZF | CF)) == 0,
		       "stops after index 7, count 3");
		pa = a;
		pb = a;
		n = 11;
		__asm__ volatile("repe cmpsb\n\tpushf\n\tpop %3"
				 : "+S"(pa), "+D"(pb), "+c"(n), "=r"(fl)
				 :
				 : "cc", "memory");
		report("repe-cmpsb-equal", n == 0 && pa == a + 11 && (fl & ZF),
		       "runs out the count, ZF=1");

		/* repne scasb for 'w' (index 6): count = 11 - 7 = 4, EDI = a + 7, ZF = 1. */
		const char *p = a;
		n = 11;
		__asm__ volatile("repne scasb\n\tpushf\n\tpop %2"
				 : "+D"(p), "+c"(n), "=r"(fl)
				 : "a"('w')
				 : "cc", "memory");
		report("repne-scasb-found", n == 4 && p == a + 7 && (fl & ZF),
		       "stops after index 6, count 4");
		p = a;
		n = 11;
		__asm__ volatile("repne scasb\n\tpushf\n\tpop %2"
				 : "+D"(p), "+c"(n), "=r"(fl)
				 : "a"('z')
				 : "cc", "memory");
		report("repne-scasb-not-found", n == 0 && p == a + 11 && !(fl & ZF),
		       "runs out the count, ZF=0");

		/* lodsb forward over "ABC" then backward: acc = acc << 8 | AL. */
		uint32_t acc = 0, al;
		p = "ABC";
		for (int i = 0; i < 3; i++) {
			__asm__ volatile("lodsb" : "+S"(p), "=a"(al) : : "memory");
			acc = acc << 8 | (al & 0xFF);
		}
		check_eq("lodsb-forward", acc, 0x414243);
		const char *abc = "ABC";
		p = abc + 2;
		acc = 0;
		for (int i = 0; i < 3; i++) {
			__asm__ volatile("std\n\tlodsb\n\tcld" : "+S"(p), "=a"(al) : : "memory");
			acc = acc << 8 | (al & 0xFF);
		}
		report("lodsb-backward", acc == 0x434241 && (uintptr_t)p == (uintptr_t)abc - 1, "%#x", acc);
	}
}

/* ----------------------------------------------------- calls, returns */

/*
 * Hand-written callees with known register use (only EAX/RAX and the stack):
 *   st_ret41/42: return 41/42.   st_retaddr: return the return address.
 *   st_add2_ret: return arg1 + arg2 from the stack, pop them with ret imm16.
 */
#ifdef __x86_64__
__asm__(".text\n"
	"st_ret41: movl $41, %eax\n\tret\n"
	"st_ret42: movl $42, %eax\n\tret\n"
	"st_retaddr: movq (%rsp), %rax\n\tret\n"
	"st_add2_ret: movq 8(%rsp), %rax\n\taddq 16(%rsp), %rax\n\tret $16\n"
	".section .rodata\n"
	".balign 8\n"
	"st_table: .quad st_ret41, st_ret42\n"
	".text\n");
#else
__asm__(".text\n"
	"st_ret41: movl $41, %eax\n\tret\n"
	"st_ret42: movl $42, %eax\n\tret\n"
	"st_retaddr: movl (%esp), %eax\n\tret\n"
	"st_add2_ret: movl 4(%esp), %eax\n\taddl 8(%esp), %eax\n\tret $8\n"
	".section .rodata\n"
	".balign 4\n"
	"st_table: .long st_ret41, st_ret42\n"
	".text\n");
#endif
extern char st_ret41[], st_ret42[];

static __attribute__((noinline)) uint32_t add_mul(uint32_t a, uint32_t b, uint32_t c)
{
	__asm__("" : "+r"(a)); /* keep the call from being folded */
	return a + b * c;
}

static __attribute__((noinline)) uint32_t fib(uint32_t n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static __attribute__((noinline)) uint32_t ackermann(uint32_t m, uint32_t n)
{
	if (m == 0)
		return n + 1;
	if (n == 0)
		return ackermann(m - 1, 1);
	return ackermann(m - 1, ackermann(m, n - 1));
}

static uint32_t (*volatile add_mul_ptr)(uint32_t, uint32_t, uint32_t) = add_mul;

static void call_checks(void)
{
	volatile uint32_t two = 2;
	uintptr_t r, ret_label;

	check_eq("call-direct", add_mul(two, 3, 4), 14);
	check_eq("call-indirect-c", add_mul_ptr(two, 5, 6), 32);

	__asm__ volatile("call *%1" : "=a"(r) : "r"(st_ret42) : "memory", "cc");
	check_eq("call-indirect-register", r & 0xFFFFFFFF, 42);

#ifdef __x86_64__
	__asm__ volatile("call *st_table(,%1,8)" : "=a"(r) : "r"((uintptr_t)1) : "memory", "cc");
#else
	__asm__ volatile("call *st_table(,%1,4)" : "=a"(r) : "r"((uintptr_t)1) : "memory", "cc");
#endif
	check_eq("call-indirect-memory", r & 0xFFFFFFFF, 42);

	/* call pushes the address of the next instruction. */
	__asm__ volatile("call st_retaddr\n"
			 "1:\n\t"
			 "mov $1b, %1"
			 : "=a"(r), "=r"(ret_label)
			 :
			 : "memory", "cc");
	check_eq("call-pushes-return-address", r, ret_label);

	{
		/* ret imm16 pops the return address and then the arguments. */
		uintptr_t sp0, sp1;
		__asm__ volatile("mov " XSP ", %1\n\t"
				 "push $3\n\t"
				 "push $4\n\t"
				 "call st_add2_ret\n\t"
				 "mov " XSP ", %2"
				 : "=a"(r), "=&r"(sp0), "=&r"(sp1)
				 :
				 : "memory", "cc");
		check_pair("ret-imm16", r, sp0 - sp1, 7, 0);
	}

	{
		/* An indirect jump through a table in memory. */
		uintptr_t idx = 2, out;
#ifdef __x86_64__
#define JT_JMP "jmp *9b(,%1,8)\n"
#else
#define JT_JMP "jmp *9b(,%1,4)\n"
#endif
		__asm__ volatile(".pushsection .rodata\n"
				 ".balign 8\n"
				 "9: " WORD " 1f, 2f, 3f\n"
				 ".popsection\n\t" JT_JMP "1: mov $10, %0\n\tjmp 4f\n"
				 "2: mov $20, %0\n\tjmp 4f\n"
				 "3: mov $30, %0\n"
				 "4:"
				 : "=r"(out)
				 : "r"(idx)
				 : "memory");
		check_eq("jmp-indirect-table", out, 30);
#undef JT_JMP
	}

	{
		/* A far return to the current CS continues at the pushed offset. */
		uintptr_t done = 0;
#ifdef __x86_64__
		__asm__ volatile("mov %%cs, %%eax\n\t"
				 "pushq %%rax\n\t"
				 "pushq $1f\n\t"
				 "lretq\n\t"
				 "jmp 2f\n"
				 "1: mov $1, %0\n"
				 "2:"
				 : "+r"(done)
				 :
				 : "rax", "memory");
#else
		__asm__ volatile("pushl %%cs\n\t"
				 "pushl $1f\n\t"
				 "lretl\n\t"
				 "jmp 2f\n"
				 "1: mov $1, %0\n"
				 "2:"
				 : "+r"(done)
				 :
				 : "memory");
#endif
		check_eq("far-return", done, 1);
	}

	{
		volatile uint32_t n = 20, m = 2, k = 3;
		/* fib(20) = 6765; Ackermann(2, 3) = 2*3 + 3 = 9. */
		check_eq("recursion-fib", fib(n), 6765);
		check_eq("recursion-ackermann", ackermann(m, k), 9);
	}
}

int main(void)
{
	uintptr_t flags_at_main = read_flags();

	printf("selftest: %s\n",
#ifdef __x86_64__
	       "64-bit long mode"
#else
	       "32-bit protected mode"
#endif
	);
	boot_checks(flags_at_main);
	system_checks();
	add_sub_checks();
	mul_div_checks();
	shift_checks();
	bit_checks();
	extension_checks();
	misc_checks();
	string_checks();
	call_checks();
	exception_checks();
	report_done();
}
