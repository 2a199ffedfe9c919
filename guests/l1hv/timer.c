/*
 * timer.c - the VMX-preemption timer L0 offers L1 (SDM Vol. 3C §26.5.1,
 * §26.7.4, §28.3.4). The timer counts down by one each time bit X of the
 * TSC changes, X = IA32_VMX_MISC[4:0], from the value each VM entry loads;
 * at 0 the guest exits (reason 52). A value of 0 exits before L2's first
 * instruction. With "save VMX-preemption timer value" every VM exit stores
 * the count, so a VMRESUME goes on from it; without, the field keeps the
 * value L1 wrote. A halted L2 wakes for the exit.
 *
 * Each check runs in a fresh VMCS (region 15) over the benign payload (two
 * VMCALLs, then hlt) or the PAUSE spin (no PAUSE exiting: it never ends).
 */
#include "l1hv.h"
#include "payloads.h"

/* A fresh VMCS running `rip` with the timer at `value`, saved on exit when
 * `save`; 0 (reported as `name`) on failure. */
static int fresh(const char *name, char *rip, uint32_t value, int save)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)rip,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };

	if (!vmcs_make_current(vmcs_region(15), name) || !vmcs_setup(&c, name))
		return 0;
	vmw(PIN_BASED_CONTROLS, vmr(PIN_BASED_CONTROLS) | PIN_PREEMPTION_TIMER);
	if (save)
		vmw(VM_EXIT_CONTROLS, vmr(VM_EXIT_CONTROLS) | EXIT_SAVE_PREEMPTION_TIMER);
	vmw(PREEMPTION_TIMER_VALUE, value);
	return 1;
}

void preemption_timer_checks(void)
{
	int offered = ((caps.pin >> 32) & PIN_PREEMPTION_TIMER) &&
		      ((caps.exit >> 32) & EXIT_SAVE_PREEMPTION_TIMER);
	unsigned rate = caps.misc & 0x1F;
	const uint32_t spin = 2000, large = 0x10000000;
	struct l2_regs r;
	struct l2_exit e;
	uint64_t t0, t1, left, saved, again, activity;

	if (!check("preemption-timer-offered", offered,
		   "pin bit 6 and exit bit 22 may be 1: %s; rate %u", offered ? "yes" : "no", rate))
		return;

	/* 0: an exit before any instruction, RIP where L2 would have begun. */
	if (!fresh("preemption-timer-zero", l2_benign, 0, 1))
		return;
	memset(&r, 0, sizeof(r));
	e = l2_run("benign (timer 0)", &r, 1);
	saved = vmr(PREEMPTION_TIMER_VALUE);
	check("preemption-timer-zero-exits-before-l2-runs",
	      is_exit(&e, EXIT_REASON_PREEMPTION_TIMER) &&
		      e.rip == (uint64_t)(uintptr_t)l2_benign && e.qual == 0 && saved == 0,
	      "%s at %#llx (L2 starts at %p), qualification %#llx, saved %llu", exit_str(&e),
	      (unsigned long long)e.rip, (void *)l2_benign, (unsigned long long)e.qual,
	      (unsigned long long)saved);

	/* An endless loop ends after `spin` changes of bit `rate`, and not
	 * before. (No upper bound: under paced virtual time L1's TSC also
	 * counts L0's own work on the entry, in host time.) */
	if (!fresh("preemption-timer-spin", l2_pause_loop, spin, 1))
		return;
	memset(&r, 0, sizeof(r));
	t0 = rdtsc();
	e = l2_run("pause spin (timer)", &r, 1);
	t1 = rdtsc();
	saved = vmr(PREEMPTION_TIMER_VALUE);
	check("preemption-timer-ends-an-endless-loop",
	      is_exit(&e, EXIT_REASON_PREEMPTION_TIMER) && saved == 0 &&
		      t1 - t0 >= ((uint64_t)(spin - 1) << rate),
	      "%s, saved %llu, %llu TSC cycles for %u ticks of 2^%u", exit_str(&e),
	      (unsigned long long)saved, (unsigned long long)(t1 - t0), spin, rate);

	/* Saved at another exit: what is left; VMRESUME goes on from it. */
	if (!fresh("preemption-timer-save", l2_benign, large, 1))
		return;
	memset(&r, 0, sizeof(r));
	t0 = rdtsc();
	e = l2_run("benign (timer saved)", &r, 1);
	t1 = rdtsc();
	left = vmr(PREEMPTION_TIMER_VALUE);
	check("preemption-timer-saves-what-is-left",
	      vmcall_ok(&e, r.rax, BENIGN_SUM_SQUARES) && left < large &&
		      large - left <= ((t1 - t0) >> rate) + 1,
	      "%s, %llu of %u left after %llu TSC cycles", exit_str(&e), (unsigned long long)left,
	      large, (unsigned long long)(t1 - t0));
	skip_instruction(&e);
	e = l2_run("benign (timer resumed)", &r, 0);
	again = vmr(PREEMPTION_TIMER_VALUE);
	check("preemption-timer-resumes-from-the-saved-count",
	      vmcall_ok(&e, r.rax, BENIGN_FIB50) && again <= left && again > 0,
	      "%s, %llu left (%llu before)", exit_str(&e), (unsigned long long)again,
	      (unsigned long long)left);

	/* A halted L2 (no HLT exiting) wakes for the timer's exit. */
	if ((caps.proc & PROC_HLT_EXITING) == 0) {
		skip_instruction(&e);
		vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) & ~PROC_HLT_EXITING);
		vmw(PREEMPTION_TIMER_VALUE, spin);
		e = l2_run("benign (halted, timer)", &r, 0);
		activity = vmr(GUEST_ACTIVITY_STATE);
		check("preemption-timer-wakes-a-halted-l2",
		      is_exit(&e, EXIT_REASON_PREEMPTION_TIMER) && activity == 1 &&
			      *(const uint8_t *)(uintptr_t)(e.rip - 1) == 0xF4,
		      "%s, activity state %llu", exit_str(&e), (unsigned long long)activity);
	}

	/* Without "save", the field keeps what L1 wrote. */
	if (!fresh("preemption-timer-nosave", l2_benign, large, 0))
		return;
	memset(&r, 0, sizeof(r));
	e = l2_run("benign (timer not saved)", &r, 1);
	saved = vmr(PREEMPTION_TIMER_VALUE);
	check("preemption-timer-unsaved-value-stays",
	      vmcall_ok(&e, r.rax, BENIGN_SUM_SQUARES) && saved == large,
	      "%s, field %#llx", exit_str(&e), (unsigned long long)saved);
}
