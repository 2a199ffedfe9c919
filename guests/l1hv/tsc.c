/*
 * tsc.c - the tsc checks: "use TSC offsetting" (SDM Vol. 3C §25.6.5):
 * RDTSC and RDMSR of IA32_TSC in L2 read L1's TSC plus the TSC offset,
 * and only with the control; "RDTSC exiting" makes RDTSC an exit to L1
 * (reason 16) whatever the offsetting.
 *
 * The rdtsc payload (payloads.S) runs in a fresh VMCS (region 9) whose MSR
 * bitmap lets every MSR access through, so its RDMSR does not exit.
 */
#include "l1hv.h"
#include "payloads.h"

/* 2^48 cycles: far beyond any TSC this run reaches. */
#define OFFSET (1ull << 48)

static uint8_t open_msr_bitmap[4096] __attribute__((aligned(4096)));

/* A fresh rdtsc VMCS with the primary controls plus `proc` and TSC
 * offset `offset`; 0 (reported as `name`) on failure. */
static int fresh(const char *name, uint32_t proc, uint64_t offset)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_rdtsc,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };

	if (!vmcs_make_current(vmcs_region(9), name) || !vmcs_setup(&c, name))
		return 0;
	memset(open_msr_bitmap, 0, sizeof(open_msr_bitmap));
	vmw(MSR_BITMAP, (uint64_t)(uintptr_t)open_msr_bitmap);
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) | PROC_USE_MSR_BITMAPS | proc);
	vmw(TSC_OFFSET, offset);
	return 1;
}

/* Whether `v` lies in [lo + add, hi + add]. */
static int within(uint64_t v, uint64_t lo, uint64_t hi, uint64_t add)
{
	return v >= lo + add && v <= hi + add;
}

/* RDTSC, then RDMSR of IA32_TSC, in L2: each must read L1's TSC of that
 * moment plus `add`. */
static void offset_check(const char *name, uint32_t proc, uint64_t field, uint64_t add)
{
	struct l2_regs r;
	struct l2_exit e1, e2;
	uint64_t t0, t1, t2, v1, v2;

	if (!fresh(name, proc, field))
		return;
	memset(&r, 0, sizeof(r));
	t0 = rdtsc();
	e1 = l2_run("rdtsc", &r, 1);
	t1 = rdtsc();
	v1 = r.rax;
	skip_instruction(&e1);
	e2 = l2_run("rdtsc (RDMSR IA32_TSC)", &r, 0);
	t2 = rdtsc();
	v2 = r.rax;
	check(name,
	      vmcall_ok(&e1, v1, v1) && vmcall_ok(&e2, v2, v2) && within(v1, t0, t1, add) &&
		      within(v2, t1, t2, add),
	      "TSC_OFFSET %#llx: RDTSC %#llx in [%#llx, %#llx] + %#llx, RDMSR %#llx in [%#llx, %#llx] + %#llx (%s, %s)",
	      (unsigned long long)field, (unsigned long long)v1, (unsigned long long)t0,
	      (unsigned long long)t1, (unsigned long long)add, (unsigned long long)v2,
	      (unsigned long long)t1, (unsigned long long)t2, (unsigned long long)add,
	      exit_str(&e1), exit_str(&e2));
}

void tsc_checks(void)
{
	int offsetting = ((caps.proc >> 32) & PROC_USE_TSC_OFFSETTING) != 0;
	struct l2_regs r;
	struct l2_exit e;
	uint64_t back;

	if (!check("tsc-offsetting-offered", offsetting,
		   "use TSC offsetting may be 1: %s", offsetting ? "yes" : "no"))
		return;
	offset_check("tsc-offset", PROC_USE_TSC_OFFSETTING, OFFSET, OFFSET);
	/* A negative offset: two's complement, the sum wraps. */
	back = -(rdtsc() / 2);
	offset_check("tsc-offset-negative", PROC_USE_TSC_OFFSETTING, back, back);
	offset_check("tsc-offset-without-the-control", 0, OFFSET, 0);
	if (fresh("rdtsc-exiting", PROC_USE_TSC_OFFSETTING | PROC_RDTSC_EXITING, OFFSET)) {
		memset(&r, 0, sizeof(r));
		e = l2_run("rdtsc (RDTSC exiting)", &r, 1);
		check("rdtsc-exiting", is_exit(&e, EXIT_REASON_RDTSC) &&
					       e.rip == (uint64_t)(uintptr_t)l2_rdtsc && e.insn_len == 2,
		      "RDTSC with RDTSC exiting: %s at %#llx, length %u", exit_str(&e),
		      (unsigned long long)e.rip, e.insn_len);
	}
}
