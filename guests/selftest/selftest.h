/*
 * selftest.h - helpers shared by the selftest sources.
 *
 * The selftest is built twice: `selftest` (64-bit long mode) and
 * `selftest32` (32-bit protected mode). Checks that only exist in one mode
 * are under #ifdef __x86_64__.
 *
 * Every expected value is an architectural constant worked out by hand (the
 * derivation is in the comment next to it), never the result of running the
 * same operation.
 */
#ifndef SELFTEST_H
#define SELFTEST_H

#include "rt.h"

#ifdef __x86_64__
#define SZ      "q"     /* native operand-size suffix */
#define WORD    ".quad" /* native pointer-sized data directive */
#define XAX     "%%rax"
#define XSP     "%%rsp"
#define SEL_CODE SEL_CODE64
#else
#define SZ      "l"
#define WORD    ".long"
#define XAX     "%%eax"
#define XSP     "%%esp"
#define SEL_CODE SEL_CODE32
#endif
#define WORD_BYTES ((uintptr_t)sizeof(uintptr_t))

/* Result and full flags image of one operation. */
struct alu {
	uint64_t v;
	uintptr_t f;
};

/*
 * Run `pre` (typically "clc" or "stc" to preset CF), then the two-operand
 * instruction `insn src, dst` with dst = a and src = b (both of type T),
 * and capture dst and the flags.
 */
#define ALU2T(T, pre, insn, a, b)                                            \
	__extension__({                                                      \
		T v_ = (T)(a);                                               \
		uintptr_t f_;                                                \
		__asm__ volatile(pre "\n\t" insn " %2, %0\n\tpushf\n\tpop %1" \
				 : "+r"(v_), "=&r"(f_)                       \
				 : "r"((T)(b))                               \
				 : "cc");                                    \
		(struct alu){ (uint64_t)v_, f_ };                            \
	})

/* As ALU2T for a one-operand form `insn dst` (insn may carry an immediate, "shll $1,"). */
#define ALU1T(T, pre, insn, a)                                               \
	__extension__({                                                      \
		T v_ = (T)(a);                                               \
		uintptr_t f_;                                                \
		__asm__ volatile(pre "\n\t" insn " %0\n\tpushf\n\tpop %1"     \
				 : "+r"(v_), "=&r"(f_)                       \
				 :                                           \
				 : "cc");                                    \
		(struct alu){ (uint64_t)v_, f_ };                            \
	})

/* As ALU2T with the count in CL: `insn %cl, dst`. */
#define ALUCLT(T, pre, insn, a, count)                                       \
	__extension__({                                                      \
		T v_ = (T)(a);                                               \
		uintptr_t f_;                                                \
		__asm__ volatile(pre "\n\t" insn " %%cl, %0\n\tpushf\n\tpop %1" \
				 : "+r"(v_), "=&r"(f_)                       \
				 : "c"((uint32_t)(count))                    \
				 : "cc");                                    \
		(struct alu){ (uint64_t)v_, f_ };                            \
	})

#define ALU2(pre, insn, a, b)      ALU2T(uint32_t, pre, insn, a, b)
#define ALU1(pre, insn, a)         ALU1T(uint32_t, pre, insn, a)
#define ALUCL(pre, insn, a, count) ALUCLT(uint32_t, pre, insn, a, count)

/* Report r.v == want and (r.f & mask) == want_flags. */
void check_alu(const char *name, struct alu r, uint64_t want, uintptr_t want_flags,
	       uintptr_t mask);
/* Report got == want (a value printed in hex). */
void check_eq(const char *name, uint64_t got, uint64_t want);
/* Report a pair of values: (got_a, got_b) == (want_a, want_b). */
void check_pair(const char *name, uint64_t got_a, uint64_t got_b, uint64_t want_a,
		uint64_t want_b);

/* exceptions.c: exception delivery, IDT, software interrupts, paging. */
void exception_checks(void);

#endif
