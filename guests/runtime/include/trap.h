/*
 * trap.h - IDT and exception/interrupt handlers in C.
 *
 * The runtime installs gates for vectors 0-31 and VEC_SYSCALL (0x80), all
 * ring-0 interrupt gates. Every gate enters a common assembly stub that
 * pushes a struct trap_frame and calls the registered C handler for the
 * vector. When the handler returns, the (possibly modified) frame is popped
 * and the stub executes IRET, so a handler may change any saved register,
 * including ip (e.g. to skip the faulting instruction).
 *
 * A vector without a handler prints "FAIL unexpected-exception: ..." and
 * ends the run through report_done().
 */
#ifndef RT_TRAP_H
#define RT_TRAP_H

#include <stdint.h>

/* Saved state, lowest address first, exactly as the stubs push it. */
struct trap_frame {
#ifdef __x86_64__
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
#endif
	uintptr_t di, si, bp, bx, dx, cx, ax;
	uintptr_t vector; /* pushed by the stub */
	uintptr_t error;  /* pushed by the CPU, or 0 pushed by the stub */
	uintptr_t ip;     /* return RIP/EIP: faulting insn for faults, next insn for traps */
	uintptr_t cs;
	uintptr_t flags;
#ifdef __x86_64__
	uintptr_t sp; /* in 64-bit mode the CPU always pushes RSP and SS */
	uintptr_t ss;
#endif
};

typedef void (*trap_handler)(struct trap_frame *f);

/* Build the IDT and load it with lidt (called by the runtime before main). */
void idt_init(void);

/* Register (or with NULL, remove) the C handler for a vector. */
void trap_set_handler(unsigned vector, trap_handler h);

/*
 * Change the gate's DPL (0-3) and type (trap = 1: trap gate, IF unchanged;
 * trap = 0: interrupt gate, IF cleared) for an installed vector.
 */
void idt_set_gate_attr(unsigned vector, unsigned dpl, int trap);

/* Stack pointer of the interrupted code (32-bit: the CPU pushed no ESP). */
static inline uintptr_t trap_frame_sp(const struct trap_frame *f)
{
#ifdef __x86_64__
	return f->sp;
#else
	return (uintptr_t)(&f->flags + 1);
#endif
}

#endif
