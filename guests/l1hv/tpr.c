/*
 * tpr.c - the tpr checks: the "use TPR shadow" control with its
 * virtual-APIC page and TPR threshold (SDM Vol. 3C chapter 30). L2's MOV
 * from CR8 reads VTPR[7:4] (VTPR: the dword at 0x80 of the page) and MOV
 * to CR8 writes VTPR - bits 7:4 from the source's bits 3:0, the rest
 * cleared - leaving L1's own CR8 alone (§30.3); a MOV to CR8 that takes
 * VTPR[7:4] below TPR threshold[3:0] exits to L1 with reason 43, RIP past
 * it (trap-like, §30.1.2); CR8-load and CR8-store exiting come first.
 * VM entry refuses a threshold above VTPR[7:4] (VMfailValid 7,
 * §27.2.1.1), so after such an exit L1 lowers the threshold before
 * VMRESUME. Without virtualize APIC accesses (not offered) that rule also
 * keeps the TPR exit right after VM entry (§27.7.7) from happening.
 *
 * The payload is l2_cr8 (payloads.S): mov rbx, cr8 (4 bytes);
 * mov cr8, rax; mov rdx, cr8; mov cr8, rcx; VMCALL at l2_cr8_after.
 */
#include "l1hv.h"
#include "payloads.h"

static uint8_t vapic[4096] __attribute__((aligned(4096)));
#define VTPR (*(volatile uint32_t *)&vapic[0x80])

/* Region 15 with the TPR shadow on `vapic`, VTPR = `vtpr`, the threshold
 * `threshold` and the primary controls `extra` besides. */
static int tpr_setup(const char *name, uint32_t vtpr, uint32_t threshold, uint32_t extra)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_cr8,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };

	if (!vmcs_make_current(vmcs_region(15), name) || !vmcs_setup(&c, name))
		return 0;
	VTPR = vtpr;
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) | PROC_USE_TPR_SHADOW | extra);
	vmw(VIRTUAL_APIC_PAGE_ADDR, (uint64_t)(uintptr_t)vapic);
	vmw(TPR_THRESHOLD, threshold);
	return 1;
}

static uint64_t read_cr8(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr8, %0" : "=r"(v));
	return v;
}

static struct l2_exit run(struct l2_regs *r, uint64_t rax, uint64_t rcx)
{
	memset(r, 0, sizeof(*r));
	r->rax = rax;
	r->rcx = rcx;
	return l2_run("cr8 (TPR shadow)", r, 1);
}

void tpr_checks(void)
{
	int offered = ((caps.proc >> 32) & PROC_USE_TPR_SHADOW) != 0;
	uint64_t start = (uint64_t)(uintptr_t)l2_cr8;
	uint64_t after = (uint64_t)(uintptr_t)l2_cr8_after;
	uint64_t cr8 = read_cr8();
	struct l2_regs r;
	struct l2_exit e, e2, e3;
	uint32_t vtpr;

	if (!check("tpr-shadow-offered", offered, "use TPR shadow may be 1: %s",
		   offered ? "yes" : "no"))
		return;

	/* Threshold 0: no exit; RBX = 2 from VTPR 0x...2F, RDX = 5 after
	 * the first write, VTPR 0x30 after the second, L1's CR8 as it was. */
	if (!tpr_setup("tpr-mov-cr8", 0xFFFFFF2F, 0, 0))
		return;
	e = run(&r, 5, 3);
	vtpr = VTPR;
	check("tpr-mov-cr8", is_exit(&e, EXIT_REASON_VMCALL) && e.rip == after && r.rbx == 2 &&
		      r.rdx == 5 && vtpr == 0x30 && read_cr8() == cr8,
	      "%s at +%lld, read %llu then %llu, VTPR %#x, L1's CR8 %llu (was %llu)", exit_str(&e),
	      (long long)(e.rip - start), (unsigned long long)r.rbx, (unsigned long long)r.rdx,
	      vtpr, (unsigned long long)read_cr8(), (unsigned long long)cr8);

	/* Threshold 4, VTPR 0x40: writing 7 and 4 stays at or above it. */
	if (!tpr_setup("tpr-threshold-not-below", 0x40, 4, 0))
		return;
	e = run(&r, 7, 4);
	check("tpr-threshold-not-below", is_exit(&e, EXIT_REASON_VMCALL) && VTPR == 0x40,
	      "CR8 = 7, then 4 with threshold 4: %s, VTPR %#x", exit_str(&e), VTPR);

	/* Writing 2 goes below: exit 43 after the MOV; VMRESUME as it is
	 * fails (threshold above VTPR), and runs on once L1 lowers it. */
	if (!tpr_setup("tpr-below-threshold", 0x40, 4, 0))
		return;
	e = run(&r, 6, 2);
	vtpr = VTPR;
	check("tpr-below-threshold-exit",
	      is_exit(&e, EXIT_REASON_TPR_BELOW) && e.rip == after && r.rdx == 6 && vtpr == 0x20 &&
		      e.qual == 0,
	      "CR8 = 6, then 2 with threshold 4: %s at +%lld (want +%lld), VTPR %#x, "
	      "qualification %#llx",
	      exit_str(&e), (long long)(e.rip - start), (long long)(after - start), vtpr,
	      (unsigned long long)e.qual);
	e2 = l2_run("cr8 (threshold above VTPR)", &r, 0);
	want_entry_error("tpr-resume-threshold-above-vtpr", "VMRESUME with threshold 4, VTPR 0x20",
			 &e2, 7);
	vmw(TPR_THRESHOLD, 2);
	e3 = l2_run("cr8 (threshold lowered)", &r, 0);
	check("tpr-resume-threshold-lowered", is_exit(&e3, EXIT_REASON_VMCALL) && e3.rip == after,
	      "threshold 2: %s", exit_str(&e3));

	/* A launch with the threshold above VTPR[7:4] fails (§27.2.1.1). */
	if (!tpr_setup("tpr-entry-threshold-above-vtpr", 0x3F, 4, 0))
		return;
	e = run(&r, 0, 0);
	want_entry_error("tpr-entry-threshold-above-vtpr", "threshold 4, VTPR 0x3F", &e, 7);

	/* CR8 exiting comes before the shadow: MOV to CR8 exits (reason 28,
	 * qualification 8: CR8, MOV to, RAX) after the read from VTPR; MOV
	 * from CR8 exits (0x318: MOV from, RBX) before it. */
	if (!tpr_setup("tpr-cr8-load-exiting", 0x40, 0, PROC_CR8_LOAD_EXITING))
		return;
	e = run(&r, 1, 1);
	check("tpr-cr8-load-exiting-first",
	      is_exit(&e, 28) && e.qual == 8 && e.rip == start + 4 && r.rbx == 4 && VTPR == 0x40,
	      "%s qualification %#llx at +%lld, read %llu, VTPR %#x", exit_str(&e),
	      (unsigned long long)e.qual, (long long)(e.rip - start), (unsigned long long)r.rbx,
	      VTPR);
	if (!tpr_setup("tpr-cr8-store-exiting", 0x40, 0, PROC_CR8_STORE_EXITING))
		return;
	e = run(&r, 1, 1);
	check("tpr-cr8-store-exiting-first",
	      is_exit(&e, 28) && e.qual == 0x318 && e.rip == start && VTPR == 0x40,
	      "%s qualification %#llx at +%lld, VTPR %#x", exit_str(&e),
	      (unsigned long long)e.qual, (long long)(e.rip - start), VTPR);
}
