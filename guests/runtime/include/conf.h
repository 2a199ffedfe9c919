/*
 * conf.h - helpers for the conformance guests: flag names, value/flag checks
 * and the fault-catching harness (after guests/selftest/exceptions.c).
 *
 * Shared by the conformance guests of arithmetic, string ops, control
 * transfer, segmentation and paging (the other areas use the runtime's
 * test kit, kit.h).
 *
 * A check that expects a fault arms the harness, runs an asm block that
 * stores the addresses of its local labels 1: (the instruction expected to
 * fault) and 2: (where to continue) in fault_ip and resume_ip, and then
 * runs the instruction. The handler records what the CPU delivered and
 * sets the saved instruction pointer to resume_ip; the code at 2: sets
 * `done`. expect() then compares vector, error code, saved IP and
 * resumption. Every expected value is worked out by hand.
 */
#ifndef CONF_H
#define CONF_H

#include "rt.h"

#define CF FLAGS_CF
#define PF FLAGS_PF
#define AF FLAGS_AF
#define ZF FLAGS_ZF
#define SF FLAGS_SF
#define OF FLAGS_OF
#define ARITH FLAGS_ARITH

#ifdef __x86_64__
#define SZ "q"
#define SEL_CODE SEL_CODE64
#else
#define SZ "l"
#define SEL_CODE SEL_CODE32
#endif

#define UNUSED __attribute__((unused))

struct alu {
	uint64_t v;
	uintptr_t f;
};

/* Report v == want and (f & mask) == want_flags; prints value and masked flags. */
static UNUSED void check_alu(const char *name, struct alu r, uint64_t want,
			     uintptr_t want_flags, uintptr_t mask)
{
	unsigned long f = (unsigned long)(r.f & mask);

	if (r.v == want && f == want_flags)
		report(name, 1, "%#llx flags %#lx", (unsigned long long)r.v, f);
	else
		report(name, 0, "got %#llx flags %#lx, want %#llx flags %#lx",
		       (unsigned long long)r.v, f, (unsigned long long)want,
		       (unsigned long)want_flags);
}

static UNUSED void check_eq(const char *name, uint64_t got, uint64_t want)
{
	report_eq(name, got, want);
}

/* A list of n values against n expected values, printed in hex. */
static UNUSED void check_vals(const char *name, unsigned n, const uint64_t *got,
			      const uint64_t *want)
{
	char buf[256];
	int len = 0, ok = 1;

	for (unsigned i = 0; i < n; i++)
		if (got[i] != want[i])
			ok = 0;
	for (unsigned i = 0; i < n && len < (int)sizeof(buf) - 24; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "%s%#llx", i ? " " : "",
				(unsigned long long)got[i]);
	if (ok) {
		report(name, 1, "%s", buf);
		return;
	}
	len += snprintf(buf + len, sizeof(buf) - len, ", want");
	for (unsigned i = 0; i < n && len < (int)sizeof(buf) - 24; i++)
		len += snprintf(buf + len, sizeof(buf) - len, " %#llx",
				(unsigned long long)want[i]);
	report(name, 0, "got %s", buf);
}

#define CHECK_VALS(name, got, want)                                           \
	check_vals(name, sizeof(want) / sizeof(want[0]), got, want)

/* ------------------------------------------------------------ faults */

static volatile unsigned hits;
static volatile uintptr_t seen_vector, seen_error, seen_ip, seen_cs, seen_flags, seen_sp;
static volatile uintptr_t seen_cr2;
static uintptr_t fault_ip, resume_ip; /* written by the asm blocks ("=m") */
/* If set, called by the handler before it returns (e.g. to map a page). */
static void (*volatile fixup)(struct trap_frame *f);
/* If set, the handler leaves the saved IP alone (resume at the faulting insn). */
static volatile int retry_same_ip;

/* Store the addresses of labels 1: and 2: in fault_ip and resume_ip. */
#define ARM "mov" SZ " $1f, %[fip]\n\tmov" SZ " $2f, %[rip]\n\t"
#define ARM_OUT [fip] "=m"(fault_ip), [rip] "=m"(resume_ip), [done] "+r"(done)
/* At label 2: note that execution resumed. */
#define RESUMED "2: mov $1, %[done]\n\t"

/* Set by arm(), cleared by the first delivery: a second fault, or one
 * outside an armed check, ends the run with FAIL unexpected-exception
 * instead of resuming at a stale resume_ip. */
static volatile int conf_armed;

static UNUSED void conf_fault_handler(struct trap_frame *f)
{
	if (!conf_armed) { /* nobody expects a fault here: stop */
		report("unexpected-exception", 0, "vector %lu error %#lx at ip %#lx",
		       (unsigned long)f->vector, (unsigned long)f->error, (unsigned long)f->ip);
		report_done();
	}
	conf_armed = 0;
	hits++;
	seen_vector = f->vector;
	seen_error = f->error;
	seen_ip = f->ip;
	seen_cs = f->cs;
	seen_flags = f->flags;
	seen_sp = trap_frame_sp(f);
	if (f->vector == VEC_PF)
		seen_cr2 = read_cr2();
	if (fixup)
		fixup(f);
	if (!retry_same_ip)
		f->ip = resume_ip;
}

static UNUSED void arm(void)
{
	hits = 0;
	seen_vector = seen_error = seen_ip = seen_cr2 = ~(uintptr_t)0;
	fixup = 0;
	retry_same_ip = 0;
	conf_armed = 1;
}

static const unsigned conf_vectors[] = { VEC_DE, VEC_UD, VEC_NP, VEC_SS, VEC_GP, VEC_PF,
					 VEC_TS, VEC_AC, VEC_BR };

static UNUSED void faults_on(void)
{
	for (unsigned i = 0; i < sizeof(conf_vectors) / sizeof(conf_vectors[0]); i++)
		trap_set_handler(conf_vectors[i], conf_fault_handler);
}

static UNUSED void faults_off(void)
{
	for (unsigned i = 0; i < sizeof(conf_vectors) / sizeof(conf_vectors[0]); i++)
		trap_set_handler(conf_vectors[i], 0);
}

#ifndef __x86_64__
/*
 * 32-bit guests: exception handling without IRET.
 *
 * kvm_pvm (the development hosts' KVM) cannot execute a 32-bit IRET, and
 * the runtime's trap stubs return with IRET. nr_on() loads an IDT of our
 * own whose stubs record the delivery (as conf_fault_handler does), drop
 * the exception frame, restore EFLAGS from it and jump to resume_ip (or
 * back to the faulting instruction when retry_same_ip is set). Same
 * privilege only: the frame is EIP, CS, EFLAGS (+ error code). The stub
 * reloads DS and ES with SEL_DATA first, since the interrupted code may
 * have left a null or limited selector in them. A fault that nobody armed
 * for prints FAIL unexpected-exception and ends the run.
 */
struct nr_gate {
	uint16_t off_lo, sel;
	uint8_t zero, attr;
	uint16_t off_hi;
} __attribute__((packed));

static struct nr_gate nr_idt[32] __attribute__((aligned(8)));
static struct dtr nr_saved_idt;
uintptr_t nr_target;

/* Called by nr_common with the frame: vector, error, eip, cs, eflags. */
__attribute__((used)) static uintptr_t nr_dispatch(uint32_t *fr)
{
	if (!conf_armed) {
		report("unexpected-exception", 0, "vector %lu error %#lx at ip %#lx",
		       (unsigned long)fr[0], (unsigned long)fr[1], (unsigned long)fr[2]);
		report_done();
	}
	conf_armed = 0;
	hits++;
	seen_vector = fr[0];
	seen_error = fr[1];
	seen_ip = fr[2];
	seen_cs = fr[3];
	seen_flags = fr[4];
	seen_sp = (uintptr_t)(fr + 5);
	if (fr[0] == VEC_PF)
		seen_cr2 = read_cr2();
	if (fixup)
		fixup(0);
	return retry_same_ip ? fr[2] : resume_ip;
}

#define NR_STUB_ERR(n, v) #n ": pushl $" #v "\n\tjmp nr_common\n"
#define NR_STUB(n, v) #n ": pushl $0\n\tpushl $" #v "\n\tjmp nr_common\n"
__asm__(".text\n"
	NR_STUB(nr_de, 0) NR_STUB(nr_ud, 6) NR_STUB_ERR(nr_ts, 10) NR_STUB_ERR(nr_np, 11)
	NR_STUB_ERR(nr_ss, 12) NR_STUB_ERR(nr_gp, 13) NR_STUB_ERR(nr_pf, 14)
	NR_STUB_ERR(nr_ac, 17)
	"nr_common:\n\t"
	"pushl %eax\n\tpushl %ecx\n\tpushl %edx\n\t"
	"movl $0x10, %eax\n\tmovl %eax, %ds\n\tmovl %eax, %es\n\t"
	"cld\n\t"
	"leal 12(%esp), %eax\n\t"
	"pushl %eax\n\t"
	"call nr_dispatch\n\t"
	"addl $4, %esp\n\t"
	"movl %eax, nr_target\n\t"
	"popl %edx\n\tpopl %ecx\n\tpopl %eax\n\t"
	"pushl 16(%esp)\n\t" /* EFLAGS of the frame */
	"popfl\n\t"
	"leal 20(%esp), %esp\n\t" /* drop vector, error, EIP, CS, EFLAGS */
	"jmp *nr_target\n");
extern char nr_de[], nr_ud[], nr_ts[], nr_np[], nr_ss[], nr_gp[], nr_pf[], nr_ac[];

static UNUSED void nr_set(unsigned v, void *stub)
{
	uintptr_t off = (uintptr_t)stub;
	nr_idt[v].off_lo = (uint16_t)off;
	nr_idt[v].sel = SEL_CODE32;
	nr_idt[v].zero = 0;
	nr_idt[v].attr = 0x8E; /* present, DPL 0, 32-bit interrupt gate */
	nr_idt[v].off_hi = (uint16_t)(off >> 16);
}

static UNUSED void nr_on(void)
{
	struct dtr d;

	nr_saved_idt = sidt();
	nr_set(VEC_DE, nr_de);
	nr_set(VEC_UD, nr_ud);
	nr_set(VEC_TS, nr_ts);
	nr_set(VEC_NP, nr_np);
	nr_set(VEC_SS, nr_ss);
	nr_set(VEC_GP, nr_gp);
	nr_set(VEC_PF, nr_pf);
	nr_set(VEC_AC, nr_ac);
	d.limit = sizeof(nr_idt) - 1;
	d.base = (uintptr_t)nr_idt;
	__asm__ volatile("lidt %0" : : "m"(d));
}

static UNUSED void nr_off(void)
{
	__asm__ volatile("lidt %0" : : "m"(nr_saved_idt));
}
#endif

static UNUSED const char *vec_name(uintptr_t v)
{
	switch (v) {
	case VEC_DE: return "#DE";
	case VEC_UD: return "#UD";
	case VEC_TS: return "#TS";
	case VEC_NP: return "#NP";
	case VEC_SS: return "#SS";
	case VEC_GP: return "#GP";
	case VEC_PF: return "#PF";
	case VEC_AC: return "#AC";
	default: return "#?";
	}
}

/*
 * Check the last delivery: exactly one exception, the vector, the error
 * code, the saved instruction pointer, and that execution resumed.
 */
static UNUSED int expect(const char *name, uintptr_t vector, uintptr_t error, uintptr_t ip,
			 uintptr_t done)
{
	conf_armed = 0;
	int ok = hits == 1 && seen_vector == vector && seen_error == error && seen_ip == ip &&
		 done == 1;

	if (ok)
		return report(name, 1, "%s error %#lx at the faulting instruction, resumed",
			      vec_name(vector), (unsigned long)error);
	return report(name, 0,
		      "hits %u vector %ld error %#lx ip %#lx resumed %lu; "
		      "want vector %lu error %#lx ip %#lx",
		      hits, (long)seen_vector, (unsigned long)seen_error,
		      (unsigned long)seen_ip, (unsigned long)done, (unsigned long)vector,
		      (unsigned long)error, (unsigned long)ip);
}

/* As expect() for a page fault: error code and CR2 too. */
static UNUSED int expect_pf(const char *name, uintptr_t error, uintptr_t ip, uintptr_t cr2,
			    uintptr_t done)
{
	conf_armed = 0;
	int ok = hits == 1 && seen_vector == VEC_PF && seen_error == error && seen_ip == ip &&
		 seen_cr2 == cr2 && done == 1;

	if (ok)
		return report(name, 1, "#PF error %#lx cr2 %#lx, resumed",
			      (unsigned long)error, (unsigned long)cr2);
	return report(name, 0,
		      "hits %u vector %ld error %#lx ip %#lx cr2 %#lx resumed %lu; "
		      "want #PF error %#lx ip %#lx cr2 %#lx",
		      hits, (long)seen_vector, (unsigned long)seen_error,
		      (unsigned long)seen_ip, (unsigned long)seen_cr2, (unsigned long)done,
		      (unsigned long)error, (unsigned long)ip, (unsigned long)cr2);
}

/* No exception at all, and the code after the instruction ran. */
static UNUSED int expect_none(const char *name, uintptr_t done, const char *what)
{
	conf_armed = 0;
	if (hits == 0 && done == 1)
		return report(name, 1, "%s", what);
	return report(name, 0, "hits %u vector %ld error %#lx ip %#lx; want no exception",
		      hits, (long)seen_vector, (unsigned long)seen_error,
		      (unsigned long)seen_ip);
}

#endif
