/*
 * kit.h - shared test kit of the conformance-* guests (64-bit long mode).
 *
 * The six conformance guests (exceptions, privilege, debug, alignment,
 * interrupts, softint), db-storm and nmi-iret build kit.c and kit64.S from
 * runtime/kit/ (named in their guest.list). The kit extends
 * the runtime's environment with what CPL transitions and event-delivery
 * checks need:
 *
 *   - a bigger GDT: the runtime's five descriptors at the same selectors,
 *     then ring-3 code and data, a second ring-0 code/data pair for SYSCALL,
 *     and a 64-bit TSS (RSP0, IST1, IST2; no I/O bitmap);
 *   - user pages: the U/S bit on the runtime's identity map, except for the
 *     2 MiB page at KIT_SUPER_VA, which stays supervisor-only;
 *   - ring 3: kit_user() IRETQs to a function at CPL 3; the function ends
 *     with `jmp kit_user_exit` (a ud2 the handler recognises), which brings
 *     the CPU back to ring 0 and makes kit_user() return;
 *   - one C handler (kit_trap) for vectors 0-31 through the runtime's stubs.
 *     It records each delivery in kit_ev[] and then either calls kit_hook,
 *     or resumes at kit_resume, or (for an unexpected fault at CPL 3) goes
 *     back to ring 0. A runaway guard stops endless single-step or
 *     breakpoint streams, so a missing feature fails a check but never hangs
 *     the guest;
 *   - kit_raw_stub: a gate target that copies the top of its stack (the
 *     frame exactly as the CPU pushed it) and jumps back to the test without
 *     IRET, for checks of the frame layout.
 *
 * The IDT is the runtime's (found with sidt); kit_restore() puts back the
 * gates and the limit the runtime installed.
 */
#ifndef CONFORMANCE_KIT_H
#define CONFORMANCE_KIT_H

#include "rt.h"

#ifndef __x86_64__
#error "the conformance kit is 64-bit only"
#endif

/* ------------------------------------------------------------ selectors */

#define K_CS32   SEL_CODE32 /* 0x08, the runtime's (compatibility mode in long mode) */
#define K_DS     SEL_DATA   /* 0x10 */
#define K_CS     SEL_CODE64 /* 0x18 */
#define K_NP     SEL_NOT_PRESENT /* 0x20 */
#define U_CS32   0x2B       /* 0x28 | RPL 3: 32-bit code, DPL 3 */
#define U_DS     0x33       /* 0x30 | RPL 3: data, DPL 3 */
#define U_CS64   0x3B       /* 0x38 | RPL 3: 64-bit code, DPL 3 */
#define SC_CS    0x40       /* ring-0 64-bit code for SYSCALL (STAR[47:32]) */
#define SC_DS    0x48       /* ring-0 data, SC_CS + 8 */
#define TSS_SEL  0x50       /* 64-bit TSS, 16 bytes (0x50, 0x58) */
#define K_DS_RO  0x60       /* ring-0 read-only data */
#define KIT_GDT_ENTRIES 13

/* ------------------------------------------------------------ flags */

#define FLAGS_IOPL3 0x3000u
#define FLAGS_NT    0x4000u
#define FLAGS_RF    0x10000u
#define FLAGS_AC    0x40000u
#define FLAGS_FIXED 0x2u /* bit 1 always reads 1 */

#define CR0_AM (1u << 18)
#define CR0_WP (1u << 16)
#define CR4_DE (1u << 3)
#define CR4_TSD (1u << 2)
#define MSR_STAR  0xC0000081u
#define MSR_LSTAR 0xC0000082u
#define MSR_FMASK 0xC0000084u
#define EFER_SCE  (1u << 0)

#define DR6_BS (1u << 14)
#define DR6_BD (1u << 13)
#define DR7_GD (1u << 13)

/* ------------------------------------------------------------ memory */

/* 2 MiB page [6 MiB, 8 MiB): present, writable, supervisor-only. */
#define KIT_SUPER_VA 0x600000u
/* Never mapped (above the 1 GiB identity map). */
#define KIT_UNMAPPED_VA 0x40000000u

#define KIT_STACK 8192
extern uint8_t kit_rsp0_stack[KIT_STACK];
extern uint8_t kit_ist1_stack[KIT_STACK];
extern uint8_t kit_ist2_stack[KIT_STACK];
extern uint8_t kit_user_stack[KIT_STACK];
#define KIT_RSP0_TOP ((uintptr_t)kit_rsp0_stack + KIT_STACK)
#define KIT_IST1_TOP ((uintptr_t)kit_ist1_stack + KIT_STACK)
#define KIT_IST2_TOP ((uintptr_t)kit_ist2_stack + KIT_STACK)
#define KIT_USER_TOP ((uintptr_t)kit_user_stack + KIT_STACK)

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};
extern struct tss64 kit_tss;

extern uint64_t kit_gdt[KIT_GDT_ENTRIES];

/* ------------------------------------------------------------ IDT */

struct __attribute__((packed)) gate64 {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t attr; /* P, DPL, type */
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
};

#define GATE_INT  0xE
#define GATE_TRAP 0xF

/* The runtime's IDT (base from sidt). */
struct gate64 *kit_gate(unsigned vector);
/* Point `vector` at handler through selector sel, with type, DPL, IST, P. */
void kit_gate_set(unsigned vector, const void *handler, unsigned sel, unsigned type,
		  unsigned dpl, unsigned ist, unsigned present);
/* Change only the IST index / the type / the present bit of a gate. */
void kit_gate_ist(unsigned vector, unsigned ist);
void kit_gate_type(unsigned vector, unsigned type);
void kit_gate_present(unsigned vector, unsigned present);
/* Reload the IDT register with the runtime's base and this limit. */
void kit_idt_limit(unsigned limit);
/* Handler address the runtime installed for vector (0-31). */
uintptr_t kit_stub(unsigned vector);
/* Put back the runtime's gates 0-31, the IDT limit, the TSS stacks. */
void kit_restore(void);

/* ------------------------------------------------------------ events */

struct kit_event {
	uintptr_t vector, error, ip, cs, flags, sp, ss;
	uintptr_t frame_top; /* RSP the CPU pushed below: &ss + 8 */
	uintptr_t hflags;    /* RFLAGS at the handler's first C instruction */
	uintptr_t cr2, dr6, dr7;
	uintptr_t ax, bx, cx, dx, si, di;
};
#define KIT_MAX_EV 16
extern volatile struct kit_event kit_ev[KIT_MAX_EV];
extern volatile unsigned kit_nev;         /* deliveries since kit_arm (may exceed KIT_MAX_EV) */
extern volatile uintptr_t kit_resume;     /* resume here after a fault (0: no redirect) */
extern volatile uintptr_t kit_fault_ip;   /* written by test code: the expected fault */
extern void (*volatile kit_hook)(struct trap_frame *f); /* optional */
extern volatile unsigned kit_runaway;     /* set when the runaway guard fired */
extern volatile unsigned kit_record_dr;   /* read DR6/DR7 in the handler (debug guest) */
extern volatile unsigned kit_limit;       /* runaway guard: max deliveries (default 64) */

/* Forget previous deliveries; no hook, no resume address. */
void kit_arm(void);

/* Registers of the user code when it reached kit_user_exit. */
struct kit_uregs {
	uintptr_t ax, bx, cx, dx, si, di, bp, r8, r9, flags, sp;
	uintptr_t ds, es, fs, gs; /* read by the ring-0 handler */
};
extern volatile struct kit_uregs kit_uregs;
extern volatile unsigned kit_user_ok; /* 1 if the last kit_user() ended at kit_user_exit */
extern volatile unsigned kit_in_user; /* 1 while ring-3 code runs: faults go back to ring 0 */

/* Set up GDT, TSS, user pages, handlers, mask the 8259s. */
void kit_init(void);

/* Send `f` back to ring 0: kit_user() returns. */
void kit_to_kernel(struct trap_frame *f);

/*
 * Run code at CPL 3 (CS U_CS64, SS U_DS) at `fn` with RSP = sp and
 * RFLAGS = flags; RDI = a, RSI = b. The code ends with `jmp kit_user_exit`
 * (a C function may simply return if sp points at kit_user_exit's address;
 * kit_user_c() arranges that).
 */
void kit_user_call(const void *fn, uintptr_t sp, uintptr_t flags, uintptr_t a, uintptr_t b);
void kit_user(const void *fn, uintptr_t flags, uintptr_t a, uintptr_t b);
extern char kit_user_exit[];
extern char kit_user_ret[];

/* Raw frame capture (kit_raw_stub): see kit64.S. */
extern char kit_raw_stub[];
extern volatile uintptr_t kit_raw_words[8];
extern volatile uintptr_t kit_raw_sp, kit_raw_hflags;
extern volatile uintptr_t kit_raw_ksp, kit_raw_kip;

/* Debug registers. */
#define DEFINE_DR(n)                                                          \
	static inline uintptr_t read_dr##n(void)                              \
	{                                                                     \
		uintptr_t v;                                                  \
		__asm__ volatile("mov %%dr" #n ", %0" : "=r"(v));             \
		return v;                                                     \
	}                                                                     \
	static inline void write_dr##n(uintptr_t v)                           \
	{                                                                     \
		__asm__ volatile("mov %0, %%dr" #n : : "r"(v) : "memory");    \
	}
DEFINE_DR(0)
DEFINE_DR(1)
DEFINE_DR(2)
DEFINE_DR(3)
DEFINE_DR(6)
DEFINE_DR(7)
#undef DEFINE_DR

static inline void write_cr0(uintptr_t v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}
static inline void write_cr4(uintptr_t v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}
static inline void write_flags(uintptr_t v)
{
	__asm__ volatile("push %0\n\tpopf" : : "r"(v) : "memory", "cc");
}

/*
 * Ring-3 snippets: USER_CODE(name, body) defines, in .text, the global
 * label `name` followed by `body` and `jmp kit_user_exit`. Inside body,
 * labels named <name>_f (the instruction expected to fault) and <name>_r
 * (where to resume) can be declared with USER_LABELS(name).
 */
#define USER_CODE(name, body)                                                 \
	__asm__(".text\n\t.globl " #name "\n\t.balign 16\n" #name ":\n\t" body    \
		"\n\tjmp kit_user_exit\n")
#define USER_LABELS(name) extern char name[], name##_f[], name##_r[]

/* The RSP kit_user() starts ring-3 code with. */
#define KIT_USER_SP (KIT_USER_TOP - 64)

/* A ring-3 snippet whose instruction `insn` (label <name>_f) is expected to
 * fault; execution resumes at <name>_r. */
#define USER_FAULTING(name, insn)                                             \
	USER_CODE(name, #name "_f: " insn "\n" #name "_r:");                   \
	USER_LABELS(name)

/*
 * Run ring-3 code at fn (kit_user with flags, a) and check exactly one
 * exception: vector, error code, saved RIP = fip, the ring-3 CS (0x3B) and
 * SS (0x33) in the frame, saved RSP = want_sp, and the frame at the top of
 * the TSS.RSP0 stack; the handler resumes ring-3 code at res.
 */
int kit_user_fault(const char *name, const void *fn, const char *fip, const char *res,
		   uintptr_t flags, uintptr_t a, unsigned vector, uintptr_t error,
		   uintptr_t want_sp);
#define KIT_USER_FAULT(name, sym, flags, a, vector, error)                    \
	kit_user_fault(name, sym, sym##_f, sym##_r, flags, a, vector, error, KIT_USER_SP)
/* Run ring-3 code that must not fault. */
int kit_user_clean(const char *name, const void *fn, uintptr_t flags, uintptr_t a,
		   const char *detail);

/* One-line description of event i for FAIL details. */
const char *kit_ev_str(unsigned i);
/* "vector V error E ip X" of event 0, or "no exception" if none. */
const char *kit_ev0(void);

/*
 * Check that exactly one exception was delivered with this vector and error
 * code, at saved ip, and print a deterministic detail. Returns ok.
 */
int kit_expect(const char *name, unsigned vector, uintptr_t error, uintptr_t ip);
/* Check that nothing was delivered. */
int kit_expect_none(const char *name, const char *detail);

#endif
