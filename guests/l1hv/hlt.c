/*
 * hlt.c - the hlt and pause-loop checks. PAUSE-loop exiting (§26.1.3): an
 * L2 spinning on PAUSE at CPL 0 exits to L1 (reason 40, RIP at a PAUSE,
 * length 2) once its loop is older than PLE_Window.
 *
 * The hlt checks: "HLT exiting" may be 0 (SDM Vol. 3C §26.1.3).
 * L2's HLT then does not exit: the processor halts in L2 (activity state
 * HLT) until an event. Here L1's own APIC timer, with external-interrupt
 * exiting, makes the halted L2 exit to L1 (reason 1, the timer's vector
 * acknowledged); vmcs12 then holds activity state 1 (HLT) and a RIP past
 * the HLT, which has completed (§28.3.4).
 *
 * The payload is l2_benign (payloads.S): two VMCALLs, then hlt; jmp.
 */
#include "l1hv.h"
#include "payloads.h"

void hlt_checks(void)
{
	int optional = (caps.proc & PROC_HLT_EXITING) == 0;
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };
	struct l2_regs r;
	struct l2_exit e;
	uint64_t activity;
	uint8_t before;

	if (!check("hlt-exiting-optional", optional, "HLT exiting must be 1: %s",
		   optional ? "no" : "yes"))
		return;
	if (!vmcs_make_current(vmcs_region(15), "hlt") || !vmcs_setup(&c, "hlt"))
		return;
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) & ~PROC_HLT_EXITING);
	memset(&r, 0, sizeof(r));
	e = l2_run("benign (no HLT exiting)", &r, 1);
	skip_instruction(&e);
	e = l2_run("benign (no HLT exiting)", &r, 0);
	if (!check("hlt-not-exiting-reaches-the-hlt", vmcall_ok(&e, r.rax, BENIGN_FIB50),
		   "the second VMCALL: %s", exit_str(&e)))
		return;
	skip_instruction(&e);
	lapic_arm_oneshot(5);
	e = l2_run("benign (halted, L1's timer)", &r, 0);
	if (is_exit(&e, EXIT_REASON_EXTERNAL_INTR) && (e.intr_info & INTR_INFO_VALID))
		lapic_eoi();
	lapic_disarm();
	activity = vmr(GUEST_ACTIVITY_STATE);
	before = *(const uint8_t *)(uintptr_t)(e.rip - 1);
	check("hlt-halts-l2-until-an-event",
	      is_exit(&e, EXIT_REASON_EXTERNAL_INTR) &&
		      e.intr_info == (INTR_INFO_VALID | INTR_TYPE_EXT_INTR | TIMER_VECTOR) &&
		      activity == 1 && before == 0xF4,
	      "%s, interruption information %#x, activity state %llu, byte before RIP %#x",
	      exit_str(&e), e.intr_info, (unsigned long long)activity, before);
}

void pause_loop_checks(void)
{
	int offered = ((caps.proc2 >> 32) & PROC2_PAUSE_LOOP_EXITING) != 0;
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_pause_loop,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top,
			       .proc2 = PROC2_PAUSE_LOOP_EXITING };
	struct l2_regs r;
	struct l2_exit e;

	if (!check("pause-loop-exiting-offered", offered, "PAUSE-loop exiting may be 1: %s",
		   offered ? "yes" : "no"))
		return;
	if (!vmcs_make_current(vmcs_region(15), "pause-loop") || !vmcs_setup(&c, "pause-loop"))
		return;
	vmw(PLE_GAP, 128);
	vmw(PLE_WINDOW, 4096);
	memset(&r, 0, sizeof(r));
	e = l2_run("pause-loop", &r, 1);
	check("pause-loop-exits",
	      is_exit(&e, EXIT_REASON_PAUSE) && e.rip == (uint64_t)(uintptr_t)l2_pause_loop &&
		      e.insn_len == 2,
	      "a PAUSE spin with PLE_Gap 128, PLE_Window 4096: %s at %#llx, length %u",
	      exit_str(&e), (unsigned long long)e.rip, e.insn_len);
}
