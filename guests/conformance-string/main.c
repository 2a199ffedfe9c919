/*
 * conformance-string - string instructions, one check per line.
 *
 * MOVS/STOS/LODS/CMPS/SCAS in every operand size, with REP/REPE/REPNE,
 * DF = 0 and 1, count 0, overlapping moves, the address-size prefix 0x67
 * in 64-bit mode, a segment override on the source, and page faults in the
 * middle of a REP instruction: the fault must leave RCX/RSI/RDI at the
 * faulting iteration and the saved RIP at the instruction, so that
 * returning from the handler (after mapping the page) finishes the job.
 *
 * Every expected value is worked out by hand in the comment next to it.
 */
#include "conf.h"

#define ALLF (OF | SF | ZF | AF | PF | CF)

static uint8_t src[64] __attribute__((aligned(64)));
static uint8_t dst[64] __attribute__((aligned(64)));

/* src[i] = 0x40 + i; dst[i] = 0xEE. */
static void reset_bufs(void)
{
	for (unsigned i = 0; i < sizeof(src); i++) {
		src[i] = (uint8_t)(0x40 + i);
		dst[i] = 0xEE;
	}
}

/* dst[from, to) == src[from, to) and everything else in dst is still 0xEE. */
static int dst_is_copy(unsigned from, unsigned to)
{
	for (unsigned i = 0; i < sizeof(dst); i++) {
		uint8_t want = (i >= from && i < to) ? (uint8_t)(0x40 + i) : 0xEE;
		if (dst[i] != want)
			return 0;
	}
	return 1;
}

/* Report the end registers of a string op (as offsets from the buffers). */
static void check_regs(const char *name, int mem_ok, uintptr_t cx, uintptr_t si, uintptr_t di,
		       uintptr_t want_cx, uintptr_t want_si, uintptr_t want_di)
{
	int ok = mem_ok && cx == want_cx && si == want_si && di == want_di;

	if (ok)
		report(name, 1, "memory ok, rcx %#lx rsi %+ld rdi %+ld", (unsigned long)cx,
		       (long)(si - (uintptr_t)src), (long)(di - (uintptr_t)dst));
	else
		report(name, 0, "memory %s, rcx %#lx rsi %+ld rdi %+ld; want rcx %#lx rsi %+ld rdi %+ld",
		       mem_ok ? "ok" : "WRONG", (unsigned long)cx, (long)(si - (uintptr_t)src),
		       (long)(di - (uintptr_t)dst), (unsigned long)want_cx,
		       (long)(want_si - (uintptr_t)src), (long)(want_di - (uintptr_t)dst));
}

/* --------------------------------------------------------------- MOVS */

#define REP_MOVS(insn, pre, s, d, n)                                              \
	__asm__ volatile(pre "\n\trep " insn "\n\tcld"                            \
			 : "+S"(s), "+D"(d), "+c"(n)                              \
			 :                                                        \
			 : "memory", "cc")

static void movs_checks(void)
{
	uintptr_t s, d, n;

	/* rep movsb, 13 bytes forward: RSI/RDI advance by 13, RCX = 0. */
	reset_bufs();
	s = (uintptr_t)src, d = (uintptr_t)dst, n = 13;
	REP_MOVS("movsb", "", s, d, n);
	check_regs("rep-movsb-forward", dst_is_copy(0, 13), n, s, d, 0, (uintptr_t)src + 13,
		   (uintptr_t)dst + 13);

	/* rep movsw, 5 words: 10 bytes. */
	reset_bufs();
	s = (uintptr_t)src, d = (uintptr_t)dst, n = 5;
	REP_MOVS("movsw", "", s, d, n);
	check_regs("rep-movsw-forward", dst_is_copy(0, 10), n, s, d, 0, (uintptr_t)src + 10,
		   (uintptr_t)dst + 10);

	/* rep movsl, 3 dwords: 12 bytes. */
	reset_bufs();
	s = (uintptr_t)src, d = (uintptr_t)dst, n = 3;
	REP_MOVS("movsl", "", s, d, n);
	check_regs("rep-movsl-forward", dst_is_copy(0, 12), n, s, d, 0, (uintptr_t)src + 12,
		   (uintptr_t)dst + 12);

	/* rep movsq, 3 qwords: 24 bytes. */
	reset_bufs();
	s = (uintptr_t)src, d = (uintptr_t)dst, n = 3;
	REP_MOVS("movsq", "", s, d, n);
	check_regs("rep-movsq-forward", dst_is_copy(0, 24), n, s, d, 0, (uintptr_t)src + 24,
		   (uintptr_t)dst + 24);

	/* DF = 1, rep movsb from offset 20 down, 13 bytes: bytes 8..20 copied,
	 * RSI/RDI end one below the last byte copied (offset 7). */
	reset_bufs();
	s = (uintptr_t)src + 20, d = (uintptr_t)dst + 20, n = 13;
	REP_MOVS("movsb", "std", s, d, n);
	check_regs("rep-movsb-backward", dst_is_copy(8, 21), n, s, d, 0, (uintptr_t)src + 7,
		   (uintptr_t)dst + 7);

	/* DF = 1, rep movsq, 3 qwords starting at offset 32: qwords at 32, 24
	 * and 16 (bytes 16..39); RSI/RDI end at offset 8. */
	reset_bufs();
	s = (uintptr_t)src + 32, d = (uintptr_t)dst + 32, n = 3;
	REP_MOVS("movsq", "std", s, d, n);
	check_regs("rep-movsq-backward", dst_is_copy(16, 40), n, s, d, 0, (uintptr_t)src + 8,
		   (uintptr_t)dst + 8);

	/* A single movsl without REP moves one dword and leaves RCX alone. */
	reset_bufs();
	s = (uintptr_t)src + 4, d = (uintptr_t)dst + 4, n = 0x77;
	__asm__ volatile("movsl" : "+S"(s), "+D"(d) : "c"(n) : "memory");
	check_regs("movsl-single", dst_is_copy(4, 8), n, s, d, 0x77, (uintptr_t)src + 8,
		   (uintptr_t)dst + 8);
}

/* Overlapping moves run element by element, in order. */
static void overlap_checks(void)
{
	static uint8_t buf[16];
	uintptr_t s, d, n;

	/* Forward, dst = src + 1: each byte copies the one just written, so
	 * "ABCDEFGH" becomes "AAAAAAAA". */
	memcpy(buf, "ABCDEFGH", 9);
	s = (uintptr_t)buf, d = (uintptr_t)buf + 1, n = 7;
	REP_MOVS("movsb", "", s, d, n);
	report("movsb-overlap-forward-propagates", memcmp(buf, "AAAAAAAA", 9) == 0, "%.8s",
	       (char *)buf);

	/* DF = 1, dst = src - 1, from the top: "ABCDEFGH" becomes "HHHHHHHH". */
	memcpy(buf, "ABCDEFGH", 9);
	s = (uintptr_t)buf + 7, d = (uintptr_t)buf + 6, n = 7;
	REP_MOVS("movsb", "std", s, d, n);
	report("movsb-overlap-backward-propagates", memcmp(buf, "HHHHHHHH", 9) == 0, "%.8s",
	       (char *)buf);

	/* DF = 1, dst = src + 1, from the top: a correct memmove,
	 * "ABCDEFGH" becomes "AABCDEFG". */
	memcpy(buf, "ABCDEFGH", 9);
	s = (uintptr_t)buf + 6, d = (uintptr_t)buf + 7, n = 7;
	REP_MOVS("movsb", "std", s, d, n);
	report("movsb-overlap-backward-memmove", memcmp(buf, "AABCDEFG", 9) == 0, "%.8s",
	       (char *)buf);

	/* rep movsw forward with dst = src + 2: word k reads what word k-1
	 * wrote, so the first word "AB" repeats: "ABABABABAB". */
	memcpy(buf, "ABCDEFGHIJ", 11);
	s = (uintptr_t)buf, d = (uintptr_t)buf + 2, n = 4;
	REP_MOVS("movsw", "", s, d, n);
	report("movsw-overlap-forward-propagates", memcmp(buf, "ABABABABAB", 11) == 0, "%.10s",
	       (char *)buf);
}

/* --------------------------------------------------------------- STOS */

static void stos_checks(void)
{
	uintptr_t d, n;
	uint64_t q[4];

	/* rep stosb: 9 bytes of 0x5A. */
	reset_bufs();
	d = (uintptr_t)dst + 3, n = 9;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0x11223344556677A5ull) : "memory");
	{
		int ok = 1;
		for (unsigned i = 0; i < sizeof(dst); i++)
			ok &= dst[i] == ((i >= 3 && i < 12) ? 0xA5 : 0xEE);
		check_regs("rep-stosb", ok, n, (uintptr_t)src, d, 0, (uintptr_t)src,
			   (uintptr_t)dst + 12);
	}

	/* rep stosw / stosl / stosq store AX / EAX / RAX: 2 words at 0, 2
	 * dwords at 4, 2 qwords at 12. */
	reset_bufs();
	{
		uint64_t d2 = (uintptr_t)dst, n2 = 2;
		__asm__ volatile("rep stosw" : "+D"(d2), "+c"(n2) : "a"(0x1122334455667788ull) : "memory");
		n2 = 2;
		__asm__ volatile("rep stosl" : "+D"(d2), "+c"(n2) : "a"(0x99AABBCCDDEEFF00ull) : "memory");
		n2 = 2;
		__asm__ volatile("rep stosq" : "+D"(d2), "+c"(n2) : "a"(0x0123456789ABCDEFull) : "memory");
		memcpy(q, dst, sizeof(q));
		/* bytes 0..3: 88 77 88 77; 4..11: 00 FF EE DD twice;
		 * 12..27: EF CD AB 89 67 45 23 01 twice; 28..31: EE. */
		uint64_t got[] = { q[0], q[1], q[2], q[3], d2 - (uintptr_t)dst, n2 };
		uint64_t want[] = { 0xDDEEFF0077887788ull, 0x89ABCDEFDDEEFF00ull,
				    0x89ABCDEF01234567ull, 0xEEEEEEEE01234567ull, 28, 0 };
		CHECK_VALS("rep-stosw-stosl-stosq", got, want);
	}

	/* DF = 1, rep stosl: 3 dwords ending at offset 8 going down: offsets 8,
	 * 4, 0; RDI ends at -4. */
	reset_bufs();
	d = (uintptr_t)dst + 8, n = 3;
	__asm__ volatile("std\n\trep stosl\n\tcld" : "+D"(d), "+c"(n) : "a"(0xCAFEF00Du) : "memory");
	memcpy(q, dst, sizeof(q));
	{
		uint64_t got[] = { q[0], q[1], q[2], (uint64_t)(d - (uintptr_t)dst), n };
		uint64_t want[] = { 0xCAFEF00DCAFEF00Dull, 0xEEEEEEEECAFEF00Dull,
				    0xEEEEEEEEEEEEEEEEull, (uint64_t)-4, 0 };
		CHECK_VALS("rep-stosl-backward", got, want);
	}
}

/* --------------------------------------------------------------- LODS */

static void lods_checks(void)
{
	uintptr_t s;
	uint64_t a1 = 0xFFFFFFFFFFFFFFFFull, a2 = 0xFFFFFFFFFFFFFFFFull, a3 = 0xFFFFFFFFFFFFFFFFull,
		 a4 = 0;

	reset_bufs();
	/* src = 40 41 42 ...: lodsb at 0 -> AL 0x40 (rest kept); lodsw at 1 ->
	 * AX 0x4241 (rest kept); lodsl at 3 -> EAX 0x46454443 (zero-extended);
	 * lodsq at 7 -> 0x4E4D4C4B4A494847. RSI ends at 15. */
	s = (uintptr_t)src;
	__asm__ volatile("lodsb" : "+S"(s), "+a"(a1) : : "memory");
	__asm__ volatile("lodsw" : "+S"(s), "+a"(a2) : : "memory");
	__asm__ volatile("lodsl" : "+S"(s), "+a"(a3) : : "memory");
	__asm__ volatile("lodsq" : "+S"(s), "+a"(a4) : : "memory");
	{
		uint64_t got[] = { a1, a2, a3, a4, s - (uintptr_t)src };
		uint64_t want[] = { 0xFFFFFFFFFFFFFF40ull, 0xFFFFFFFFFFFF4241ull, 0x46454443ull,
				    0x4E4D4C4B4A494847ull, 15 };
		CHECK_VALS("lods-all-widths", got, want);
	}

	/* rep lodsb, 3 bytes: AL = the third byte (0x42), RCX = 0. DF = 1
	 * lodsw from offset 10: AX = 0x4B4A, RSI = 8. */
	{
		uintptr_t n = 3;
		uint64_t a = 0, b = 0;
		s = (uintptr_t)src;
		__asm__ volatile("rep lodsb" : "+S"(s), "+c"(n), "+a"(a) : : "memory");
		uintptr_t s2 = (uintptr_t)src + 10;
		__asm__ volatile("std\n\tlodsw\n\tcld" : "+S"(s2), "+a"(b) : : "memory");
		uint64_t got[] = { a, n, s - (uintptr_t)src, b, s2 - (uintptr_t)src };
		uint64_t want[] = { 0x42, 0, 3, 0x4B4A, 8 };
		CHECK_VALS("rep-lodsb-and-lodsw-backward", got, want);
	}
}

/* --------------------------------------------------------- CMPS / SCAS */

struct scan {
	uintptr_t cx, si, di, f;
};

static void cmps_scas_checks(void)
{
	static const char s1[] = "abcdXf", s2[] = "abcdYf";
	static const uint16_t w1[] = { 1, 2, 3, 4 }, w2[] = { 9, 9, 3, 9 };
	static const uint64_t q1[] = { 5, 6, 7 }, q2[] = { 1, 6, 7 };
	static const char hello[] = "hello";
	static const uint32_t dw[] = { 7, 7, 7, 8 };
	uintptr_t s, d, n, f;

	/* repe cmpsb: the fifth pair differs ('X' 0x58 - 'Y' 0x59 = 0xFF):
	 * stops there with RCX = 6 - 5 = 1, RSI/RDI past it; flags of the
	 * compare: CF, SF, AF, PF (0xFF), ZF clear. */
	s = (uintptr_t)s1, d = (uintptr_t)s2, n = 6;
	__asm__ volatile("repe cmpsb\n\tpushf\n\tpop %3"
			 : "+S"(s), "+D"(d), "+c"(n), "=r"(f) : : "memory", "cc");
	{
		uint64_t got[] = { n, s - (uintptr_t)s1, d - (uintptr_t)s2, f & ARITH };
		uint64_t want[] = { 1, 5, 5, CF | SF | AF | PF };
		CHECK_VALS("repe-cmpsb-mismatch", got, want);
	}

	/* repe cmpsb over 4 equal bytes: runs out: RCX = 0, ZF = 1 (and PF). */
	s = (uintptr_t)s1, d = (uintptr_t)s2, n = 4;
	__asm__ volatile("repe cmpsb\n\tpushf\n\tpop %3"
			 : "+S"(s), "+D"(d), "+c"(n), "=r"(f) : : "memory", "cc");
	{
		uint64_t got[] = { n, s - (uintptr_t)s1, f & ARITH };
		uint64_t want[] = { 0, 4, ZF | PF };
		CHECK_VALS("repe-cmpsb-all-equal", got, want);
	}

	/* repne cmpsw: the third pair is equal (3, 3): RCX = 4 - 3 = 1,
	 * RSI/RDI advanced by 6; ZF = 1. */
	s = (uintptr_t)w1, d = (uintptr_t)w2, n = 4;
	__asm__ volatile("repne cmpsw\n\tpushf\n\tpop %3"
			 : "+S"(s), "+D"(d), "+c"(n), "=r"(f) : : "memory", "cc");
	{
		uint64_t got[] = { n, s - (uintptr_t)w1, d - (uintptr_t)w2, f & ARITH };
		uint64_t want[] = { 1, 6, 6, ZF | PF };
		CHECK_VALS("repne-cmpsw-match", got, want);
	}

	/* DF = 1, repe cmpsq from the last element down: 7 = 7, 6 = 6, 5 != 1:
	 * RCX = 0, RSI/RDI end 8 bytes below q1/q2; the last compare 5 - 1 = 4
	 * sets no flag (no borrow, 0x04 has one 1 bit: PF clear). */
	s = (uintptr_t)&q1[2], d = (uintptr_t)&q2[2], n = 3;
	__asm__ volatile("std\n\trepe cmpsq\n\tpushf\n\tpop %3\n\tcld"
			 : "+S"(s), "+D"(d), "+c"(n), "=r"(f) : : "memory", "cc");
	{
		uint64_t got[] = { n, (uint64_t)(s - (uintptr_t)q1), (uint64_t)(d - (uintptr_t)q2),
				   f & ARITH };
		uint64_t want[] = { 0, (uint64_t)-8, (uint64_t)-8, 0 };
		CHECK_VALS("repe-cmpsq-backward", got, want);
	}

	/* repne scasb for 'l' in "hello": found at index 2: RCX = 5 - 3 = 2,
	 * RDI = +3, ZF = 1. */
	d = (uintptr_t)hello, n = 5;
	__asm__ volatile("repne scasb\n\tpushf\n\tpop %2"
			 : "+D"(d), "+c"(n), "=r"(f) : "a"('l') : "memory", "cc");
	{
		uint64_t got[] = { n, d - (uintptr_t)hello, f & ZF };
		uint64_t want[] = { 2, 3, ZF };
		CHECK_VALS("repne-scasb-found", got, want);
	}

	/* repne scasb for 'z': not found, RCX = 0, RDI = +5; the last compare
	 * is 'z' 0x7A - 'o' 0x6F = 0x0B: A - F borrows (AF); 0x0B has 3 ones. */
	d = (uintptr_t)hello, n = 5;
	__asm__ volatile("repne scasb\n\tpushf\n\tpop %2"
			 : "+D"(d), "+c"(n), "=r"(f) : "a"('z') : "memory", "cc");
	{
		uint64_t got[] = { n, d - (uintptr_t)hello, f & ARITH };
		uint64_t want[] = { 0, 5, AF };
		CHECK_VALS("repne-scasb-not-found", got, want);
	}

	/* repe scasl for EAX = 7 over 7, 7, 7, 8: the fourth differs; RCX = 0,
	 * RDI = +16; 7 - 8 = 0xFFFFFFFF: CF, SF, AF, PF. */
	d = (uintptr_t)dw, n = 4;
	__asm__ volatile("repe scasl\n\tpushf\n\tpop %2"
			 : "+D"(d), "+c"(n), "=r"(f) : "a"(0xFFFFFFFF00000007ull) : "memory", "cc");
	{
		uint64_t got[] = { n, d - (uintptr_t)dw, f & ARITH };
		uint64_t want[] = { 0, 16, CF | SF | AF | PF };
		CHECK_VALS("repe-scasl-mismatch-at-end", got, want);
	}

	/* scasw without REP, DF = 1: AX 0x0003 vs w2[2] = 3: ZF, PF; RDI -2. */
	d = (uintptr_t)&w2[2];
	__asm__ volatile("std\n\tscasw\n\tpushf\n\tpop %1\n\tcld"
			 : "+D"(d), "=r"(f) : "a"(0xABCD0003ull) : "memory", "cc");
	{
		uint64_t got[] = { (uint64_t)(d - (uintptr_t)w2), f & ARITH };
		uint64_t want[] = { 2, ZF | PF };
		CHECK_VALS("scasw-backward", got, want);
	}
}

/* ------------------------------------------------------------ count 0 */

static void count0_checks(void)
{
	uintptr_t s, d, n, f;

	/* rep movsb with RCX = 0: nothing moves, no register changes. */
	reset_bufs();
	s = (uintptr_t)src, d = (uintptr_t)dst, n = 0;
	REP_MOVS("movsb", "", s, d, n);
	check_regs("rep-movsb-count-0", dst_is_copy(0, 0), n, s, d, 0, (uintptr_t)src,
		   (uintptr_t)dst);

	/* repe cmpsb and repne scasb with RCX = 0 leave every flag alone. */
	{
		uintptr_t f2;
		s = (uintptr_t)src, d = (uintptr_t)dst, n = 0;
		__asm__ volatile("push %4\n\tpopf\n\trepe cmpsb\n\tpushf\n\tpop %3"
				 : "+S"(s), "+D"(d), "+c"(n), "=&r"(f)
				 : "r"((uintptr_t)(ALLF | 2)) : "memory", "cc");
		__asm__ volatile("push %3\n\tpopf\n\trepne scasb\n\tpushf\n\tpop %2"
				 : "+D"(d), "+c"(n), "=&r"(f2)
				 : "r"((uintptr_t)2), "a"(0xEE) : "memory", "cc");
		uint64_t got[] = { f & ARITH, f2 & ARITH, n, s - (uintptr_t)src, d - (uintptr_t)dst };
		uint64_t want[] = { ALLF, 0, 0, 0, 0 };
		CHECK_VALS("rep-cmps-scas-count-0-keep-flags", got, want);
	}
}

/* ---------------------------------------- address size, segment override */

static void prefix_checks(void)
{
	uintptr_t s, d, n;

	/* 0x67: ESI/EDI/ECX are the address and count registers. Garbage in
	 * bits 63:32 is ignored for addressing and the count (ECX = 5), and the
	 * registers are written back as 32-bit registers (zero-extended). */
	reset_bufs();
	s = 0xDEAD000000000000ull | (uintptr_t)src;
	d = 0xBEEF000000000000ull | (uintptr_t)dst;
	n = 0x0000000700000005ull;
	__asm__ volatile("addr32 rep movsb" : "+S"(s), "+D"(d), "+c"(n) : : "memory");
	check_regs("addr32-rep-movsb", dst_is_copy(0, 5), n, s, d, 0, (uintptr_t)src + 5,
		   (uintptr_t)dst + 5);

	/* 0x67 with ECX = 0 but RCX != 0: zero iterations, no memory written;
	 * Intel parts write ECX back, clearing RCX[63:32] (AMD parts keep it). */
	reset_bufs();
	s = (uintptr_t)src, d = (uintptr_t)dst, n = 0x100000000ull;
	__asm__ volatile("addr32 rep movsb" : "+S"(s), "+D"(d), "+c"(n) : : "memory");
	check_regs("addr32-rep-ecx-0", dst_is_copy(0, 0), n, s, d, 0, (uintptr_t)src,
		   (uintptr_t)dst);

	/* 0x67 repne scasb: the scan uses EDI and ECX. */
	{
		static const char text[] = "xyzzy";
		uint64_t d2 = 0xFFFF000000000000ull | (uintptr_t)text, n2 = 0x1234500000005ull;
		uintptr_t f;
		__asm__ volatile("addr32 repne scasb\n\tpushf\n\tpop %2"
				 : "+D"(d2), "+c"(n2), "=r"(f) : "a"('z') : "memory", "cc");
		uint64_t got[] = { d2 - (uintptr_t)text, n2, f & ZF };
		uint64_t want[] = { 3, 2, ZF };
		CHECK_VALS("addr32-repne-scasb", got, want);
	}

	/* FS override on the source of movsb: the byte comes from FS.base +
	 * RSI. FS.base = 16 (IA32_FS_BASE), RSI = src: reads src[16] = 0x50.
	 * The destination is always ES:RDI. */
	reset_bufs();
	wrmsr(0xC0000100u, 16);
	s = (uintptr_t)src, d = (uintptr_t)dst;
	__asm__ volatile("fs movsb" : "+S"(s), "+D"(d) : : "memory");
	/* STOS ignores a segment override: it writes ES:RDI = dst[1]. */
	__asm__ volatile("fs stosb" : "+D"(d) : "a"(0x99) : "memory");
	wrmsr(0xC0000100u, 0);
	{
		uint64_t got[] = { dst[0], dst[1], dst[2], s - (uintptr_t)src, d - (uintptr_t)dst };
		uint64_t want[] = { 0x50, 0x99, 0xEE, 1, 2 };
		CHECK_VALS("movs-fs-source-stos-ignores-override", got, want);
	}
}

/* ------------------------------------------------- page faults in REP */

#define PTE_P 0x001
#define PTE_W 0x002
#define TV 0xC0000000ull /* test window: PDPT[3] -> test_pd -> test_pt */

extern uint64_t pdpt[512]; /* runtime/longmode.S */
static uint64_t test_pd[512] __attribute__((aligned(4096)));
static uint64_t test_pt[512] __attribute__((aligned(4096)));
static uint64_t top_pt[512] __attribute__((aligned(4096))); /* [4 GiB - 2 MiB, 4 GiB) */
static uint8_t pages[6][4096] __attribute__((aligned(4096)));

static void invlpg(uintptr_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static void set_pte(unsigned i, int present)
{
	test_pt[i] = present ? ((uintptr_t)pages[i] | PTE_P | PTE_W) : 0;
	invlpg(TV + i * 4096ull);
}

static volatile uintptr_t at_cx, at_si, at_di;
static volatile unsigned map_on_fault;

/* Record the string registers at the fault and map the missing page. */
static void map_fixup(struct trap_frame *f)
{
	at_cx = f->cx;
	at_si = f->si;
	at_di = f->di;
	set_pte(map_on_fault, 1);
}

static void arm_retry(unsigned page)
{
	arm();
	fixup = map_fixup;
	retry_same_ip = 1;
	map_on_fault = page;
	at_cx = at_si = at_di = ~(uintptr_t)0;
}

static void pf_report(const char *name, uintptr_t error, uintptr_t cr2, uintptr_t done,
		      int data_ok, uint64_t cx, uint64_t si, uint64_t di, uint64_t end_cx,
		      uint64_t end_si, uint64_t end_di, uint64_t want_cx, uint64_t want_si,
		      uint64_t want_di, uint64_t want_end_si, uint64_t want_end_di)
{
	int ok = hits == 1 && seen_vector == VEC_PF && seen_error == error && seen_ip == fault_ip &&
		 seen_cr2 == cr2 && done == 1 && cx == want_cx && si == want_si && di == want_di &&
		 end_cx == 0 && end_si == want_end_si && end_di == want_end_di && data_ok;

	if (ok)
		report(name, 1,
		       "#PF error %#lx cr2 %#llx at the rep insn, at fault rcx %#llx rsi %#llx "
		       "rdi %#llx; resumed to the end",
		       (unsigned long)error, (unsigned long long)cr2, (unsigned long long)cx,
		       (unsigned long long)si, (unsigned long long)di);
	else
		report(name, 0,
		       "hits %u vector %ld error %#lx ip-ok %d cr2 %#lx done %lu; at fault rcx "
		       "%#llx rsi %#llx rdi %#llx; end rcx %#llx rsi %#llx rdi %#llx data %s; want "
		       "error %#lx cr2 %#llx rcx %#llx rsi %#llx rdi %#llx end rsi %#llx rdi %#llx",
		       hits, (long)seen_vector, (unsigned long)seen_error, seen_ip == fault_ip,
		       (unsigned long)seen_cr2, (unsigned long)done, (unsigned long long)cx,
		       (unsigned long long)si, (unsigned long long)di, (unsigned long long)end_cx,
		       (unsigned long long)end_si, (unsigned long long)end_di,
		       data_ok ? "ok" : "WRONG", (unsigned long)error, (unsigned long long)cr2,
		       (unsigned long long)want_cx, (unsigned long long)want_si,
		       (unsigned long long)want_di, (unsigned long long)want_end_si,
		       (unsigned long long)want_end_di);
}

static void rep_fault_checks(void)
{
	uintptr_t s, d, n, done;

	/* Window: page i of TV maps pages[i] when present. */
	pdpt[TV >> 30] = (uintptr_t)test_pd | PTE_P | PTE_W;
	test_pd[0] = (uintptr_t)test_pt | PTE_P | PTE_W;
	__asm__ volatile("mov %%cr3, %%rax\n\tmov %%rax, %%cr3" : : : "rax", "memory");
	for (unsigned i = 0; i < 6; i++)
		for (unsigned j = 0; j < 4096; j++)
			pages[i][j] = (uint8_t)(i * 16 + (j & 15));

	/* rep movsb of 10 bytes from TV + 0xFFB: 5 bytes come from page 0,
	 * the sixth read hits page 1 (not present): #PF error 0 (read, not
	 * present), CR2 = TV + 0x1000, RCX = 5, RSI = TV + 0x1000, RDI =
	 * dst + 5. The handler maps page 1 and returns to the rep movsb, which
	 * finishes: dst = 0B 0C 0D 0E 0F 10 11 12 13 14. */
	reset_bufs();
	set_pte(0, 1);
	set_pte(1, 0);
	s = TV + 0xFFB, d = (uintptr_t)dst, n = 10, done = 0;
	arm_retry(1);
	__asm__ volatile(ARM "1: rep movsb\n" RESUMED
			 : ARM_OUT, "+S"(s), "+D"(d), "+c"(n) : : "memory");
	{
		static const uint8_t want[10] = { 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
						  0x10, 0x11, 0x12, 0x13, 0x14 };
		pf_report("pf-mid-rep-movsb-read", 0, TV + 0x1000, done,
			  memcmp(dst, want, 10) == 0 && dst[10] == 0xEE, at_cx, at_si, at_di, n, s,
			  d, 5, TV + 0x1000, (uintptr_t)dst + 5, TV + 0x1005, (uintptr_t)dst + 10);
	}

	/* rep stosq of 4 qwords to TV + 0x2FF0: two fit in page 2, the third
	 * write hits page 3: #PF error 2 (write, not present), CR2 = TV +
	 * 0x3000, RCX = 2, RDI = TV + 0x3000. Resumed, all four are stored. */
	set_pte(2, 1);
	set_pte(3, 0);
	d = TV + 0x2FF0, n = 4, done = 0;
	s = 0x5151515151515151ull; /* RSI is not used; it must stay */
	arm_retry(3);
	__asm__ volatile(ARM "1: rep stosq\n" RESUMED
			 : ARM_OUT, "+D"(d), "+c"(n), "+S"(s)
			 : "a"(0x0102030405060708ull)
			 : "memory");
	{
		uint64_t *p2 = (uint64_t *)&pages[2][0xFF0], *p3 = (uint64_t *)&pages[3][0];
		int data_ok = p2[0] == 0x0102030405060708ull && p2[1] == 0x0102030405060708ull &&
			      p3[0] == 0x0102030405060708ull && p3[1] == 0x0102030405060708ull &&
			      pages[3][16] == 0x30;
		pf_report("pf-mid-rep-stosq-write", 2, TV + 0x3000, done, data_ok, at_cx,
			  at_si, at_di, n, s, d, 2, 0x5151515151515151ull, TV + 0x3000,
			  0x5151515151515151ull, TV + 0x3010);
	}

	/* DF = 1: rep movsb of 8 bytes from TV + 0x5003 down: 4 bytes from
	 * page 5 (offsets 3..0), then the read of TV + 0x4FFF faults (page 4
	 * not present): CR2 = TV + 0x4FFF, RCX = 4, RSI = TV + 0x4FFF, RDI =
	 * dst + 7 - 4 = dst + 3. Resumed: dst[0..7] = 4C 4D 4E 4F 50 51 52 53
	 * (page 4 bytes 0x4C..0x4F from offsets FFC..FFF, page 5 bytes 0x50..
	 * 0x53), RSI/RDI end one below. */
	reset_bufs();
	set_pte(5, 1);
	set_pte(4, 0);
	s = TV + 0x5003, d = (uintptr_t)dst + 7, n = 8, done = 0;
	arm_retry(4);
	__asm__ volatile("std\n\t" ARM "1: rep movsb\n" RESUMED "cld"
			 : ARM_OUT, "+S"(s), "+D"(d), "+c"(n) : : "memory", "cc");
	{
		static const uint8_t want[8] = { 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0x53 };
		pf_report("pf-mid-rep-movsb-backward", 0, TV + 0x4FFF, done,
			  memcmp(dst, want, 8) == 0 && dst[8] == 0xEE, at_cx, at_si, at_di, n, s, d,
			  4, TV + 0x4FFF, (uintptr_t)dst + 3, TV + 0x4FFF - 4,
			  (uintptr_t)dst - 1);
	}

	/* rep movsl of 3 dwords from TV + 0xFFA: the second dword (FFE..1001)
	 * straddles into not-present page 1: the fault is taken for that
	 * element with CR2 = TV + 0x1000 (its first byte in page 1), RCX = 2,
	 * RSI = TV + 0xFFE, RDI = dst + 4. Resumed: dst = 0A..0F 10..15. */
	reset_bufs();
	set_pte(0, 1);
	set_pte(1, 0);
	s = TV + 0xFFA, d = (uintptr_t)dst, n = 3, done = 0;
	arm_retry(1);
	__asm__ volatile(ARM "1: rep movsl\n" RESUMED
			 : ARM_OUT, "+S"(s), "+D"(d), "+c"(n) : : "memory");
	{
		static const uint8_t want[12] = { 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
						  0x10, 0x11, 0x12, 0x13, 0x14, 0x15 };
		pf_report("pf-mid-rep-movsl-split-element", 0, TV + 0x1000, done,
			  memcmp(dst, want, 12) == 0 && dst[12] == 0xEE, at_cx, at_si, at_di, n,
			  s, d, 2, TV + 0xFFE, (uintptr_t)dst + 4, TV + 0x1006,
			  (uintptr_t)dst + 12);
	}

	/* repe cmpsb from page 0 into not-present page 1 (equal bytes): the
	 * fault comes at the first byte of page 1 with RCX = 2 left; resumed,
	 * the compare finishes equal (ZF = 1, RCX = 0). */
	set_pte(0, 1);
	set_pte(1, 0);
	{
		static uint8_t same[4] = { 0x0E, 0x0F, 0x10, 0x11 };
		uintptr_t f;
		s = TV + 0xFFE, d = (uintptr_t)same, n = 4, done = 0;
		arm_retry(1);
		__asm__ volatile(ARM "1: repe cmpsb\n" RESUMED "pushf\n\tpop %[f]"
				 : ARM_OUT, "+S"(s), "+D"(d), "+c"(n), [f] "=r"(f) : : "memory", "cc");
		pf_report("pf-mid-repe-cmpsb", 0, TV + 0x1000, done, (f & ZF) != 0, at_cx, at_si,
			  at_di, n, s, d, 2, TV + 0x1000, (uintptr_t)same + 2, TV + 0x1002,
			  (uintptr_t)same + 4);
	}

	/* 0x67 in 64-bit mode: ESI wraps from 0xFFFFFFFF to 0, it does not
	 * carry into bit 32. Map the page at 0xFFFFF000 (test_pd[511] ->
	 * top_pt, entry 511 -> pages[5]); addr32 lodsb at ESI = 0xFFFFFFFF
	 * reads the last byte (5 * 16 + 15 = 0x5F) and RSI becomes 0. */
	test_pd[511] = (uintptr_t)top_pt | PTE_P | PTE_W;
	top_pt[511] = (uintptr_t)pages[5] | PTE_P | PTE_W;
	invlpg(0xFFFFF000u);
	{
		uint64_t si = 0xFFFFFFFFull, a = 0;
		uintptr_t done = 0;
		arm();
		__asm__ volatile(ARM "1: addr32 lodsb\n" RESUMED
				 : ARM_OUT, "+S"(si), "+a"(a) : : "memory");
		conf_armed = 0;
		report("addr32-esi-wraps-to-0", hits == 0 && done && si == 0 && a == 0x5F,
		       "hits %u, al %#llx, rsi %#llx", hits, (unsigned long long)a,
		       (unsigned long long)si);
	}

	pdpt[TV >> 30] = 0;
	__asm__ volatile("mov %%cr3, %%rax\n\tmov %%rax, %%cr3" : : : "rax", "memory");
}

int main(void)
{
	faults_on();
	movs_checks();
	overlap_checks();
	stos_checks();
	lods_checks();
	cmps_scas_checks();
	count0_checks();
	prefix_checks();
	rep_fault_checks();
	faults_off();
	report_done();
}
