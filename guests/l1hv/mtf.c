/*
 * mtf.c - the mtf checks: the "monitor trap flag" control (SDM Vol. 3C
 * §26.5.2): with it set, L2 exits to L1 (reason 37) on the instruction
 * boundary after each instruction, RIP at the next one and no instruction
 * length; an instruction that exits itself (VMCALL) exits for its own
 * reason; clearing the control lets L2 run on. VM entry injecting a
 * pending MTF VM exit (type 7, vector 0; §27.6.2) exits at once, before any
 * instruction, whatever the control.
 *
 * A single step in L2 under MTF (mtf-single-step-*): the MTF VM exit comes
 * before the single-step #DB (§26.5.2), which waits in vmcs12's pending
 * debug exceptions as BS (§28.3.4); the next VM entry delivers it before
 * L2's next instruction (§27.7.3), here as a #DB exit to L1 (exception
 * bitmap bit 1) with BS in the qualification and RIP past the stepped
 * instruction.
 *
 * The payload is l2_benign (payloads.S): xor eax, eax (2 bytes); mov ecx, 1
 * (5 bytes); mov edx, ecx (2 bytes); ... VMCALL with 338350.
 */
#include "l1hv.h"
#include "payloads.h"

void mtf_checks(void)
{
	int offered = ((caps.proc >> 32) & PROC_MONITOR_TRAP_FLAG) != 0;
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };
	uint64_t start = (uint64_t)(uintptr_t)l2_benign;
	struct l2_regs r;
	struct l2_exit e1, e2, e3, e4;
	uint64_t rax1;
	int pending_left;

	if (!check("mtf-offered", offered, "monitor trap flag may be 1: %s", offered ? "yes" : "no"))
		return;
	if (!vmcs_make_current(vmcs_region(15), "mtf") || !vmcs_setup(&c, "mtf"))
		return;
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) | PROC_MONITOR_TRAP_FLAG);
	memset(&r, 0, sizeof(r));
	r.rax = 5;
	r.rcx = 7;
	e1 = l2_run("benign (MTF)", &r, 1);
	e2 = l2_run("benign (MTF)", &r, 0);
	e3 = l2_run("benign (MTF)", &r, 0);
	check("mtf-one-instruction-at-a-time",
	      is_exit(&e1, EXIT_REASON_MTF) && e1.rip == start + 2 && r.rax == 0 &&
		      is_exit(&e2, EXIT_REASON_MTF) && e2.rip == start + 7 && r.rcx == 1 &&
		      is_exit(&e3, EXIT_REASON_MTF) && e3.rip == start + 9 && r.rdx == 1 &&
		      e1.insn_len == 0 && e1.qual == 0,
	      "%s at +%lld, %s at +%lld, %s at +%lld (length %u, qualification %#llx)",
	      exit_str(&e1), (long long)(e1.rip - start), exit_str(&e2), (long long)(e2.rip - start),
	      exit_str(&e3), (long long)(e3.rip - start), e1.insn_len, (unsigned long long)e1.qual);
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) & ~PROC_MONITOR_TRAP_FLAG);
	e4 = l2_run("benign (MTF cleared)", &r, 0);
	check("mtf-cleared-runs-on", vmcall_ok(&e4, r.rax, 338350),
	      "MTF cleared after three steps: %s, RAX %llu", exit_str(&e4),
	      (unsigned long long)r.rax);

	/* A pending MTF VM exit injected, the control clear: an exit at the
	 * entry, RIP unchanged; the next entry runs. */
	if (!vmcs_make_current(vmcs_region(15), "mtf-pending") || !vmcs_setup(&c, "mtf-pending"))
		return;
	vmw(VM_ENTRY_INTR_INFO, INTR_INFO_VALID | 7u << 8);
	memset(&r, 0, sizeof(r));
	r.rax = 5;
	e1 = l2_run("benign (pending MTF)", &r, 1);
	rax1 = r.rax;
	pending_left = (vmr(VM_ENTRY_INTR_INFO) & INTR_INFO_VALID) != 0;
	check("mtf-pending-injected",
	      is_exit(&e1, EXIT_REASON_MTF) && e1.rip == start && rax1 == 5 && !pending_left,
	      "type 7 vector 0 injected: %s at +%lld, RAX %llu, entry information %s",
	      exit_str(&e1), (long long)(e1.rip - start), (unsigned long long)rax1,
	      pending_left ? "still valid" : "cleared");
	e2 = l2_run("benign (after the pending MTF)", &r, 0);
	check("mtf-pending-then-runs", vmcall_ok(&e2, r.rax, 338350),
	      "the next entry: %s, RAX %llu", exit_str(&e2), (unsigned long long)r.rax);

	/* TF = 1 under MTF. */
	if (!vmcs_make_current(vmcs_region(15), "mtf-step") || !vmcs_setup(&c, "mtf-step"))
		return;
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) | PROC_MONITOR_TRAP_FLAG);
	vmw(EXCEPTION_BITMAP, vmr(EXCEPTION_BITMAP) | 1u << 1);
	vmw(GUEST_RFLAGS, vmr(GUEST_RFLAGS) | RFLAGS_TF);
	memset(&r, 0, sizeof(r));
	e1 = l2_run("benign (MTF, TF)", &r, 1);
	uint64_t pending = vmr(GUEST_PENDING_DBG);
	check("mtf-single-step-pending-bs",
	      is_exit(&e1, EXIT_REASON_MTF) && e1.rip == start + 2 && pending == PENDING_DBG_BS,
	      "%s at +%lld, pending debug exceptions %#llx", exit_str(&e1),
	      (long long)(e1.rip - start), (unsigned long long)pending);
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) & ~PROC_MONITOR_TRAP_FLAG);
	e2 = l2_run("benign (pending #DB)", &r, 0);
	pending = vmr(GUEST_PENDING_DBG);
	check("mtf-single-step-delivered-at-entry",
	      is_exit(&e2, EXIT_REASON_EXCEPTION_NMI) &&
		      e2.intr_info == (INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 1) &&
		      e2.qual == PENDING_DBG_BS && e2.rip == start + 2 && pending == 0,
	      "%s, interruption information %#x, qualification %#llx at +%lld, pending %#llx",
	      exit_str(&e2), e2.intr_info, (unsigned long long)e2.qual,
	      (long long)(e2.rip - start), (unsigned long long)pending);
}
