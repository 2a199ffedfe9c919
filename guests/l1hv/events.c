/*
 * events.c - the nested-events payload, after vmx-errors and before
 * VMXOFF: what L0 does about L1's control registers, interrupts and
 * queued events around the VMX instructions.
 *
 *   cr0-ne-fixed-in-vmx               MOV to CR0 clearing NE in VMX operation
 *   l2-cr0-pg-fixed                   MOV to CR0 clearing PG in a paged 32-bit
 *                                     L2 that is not an unrestricted guest:
 *                                     #GP(0), intercepted by L1
 *   interrupt-pending-at-vmlaunch     L1's timer interrupt requested before
 *                                     VMLAUNCH: exit 1 before L2's first
 *                                     instruction, and the VMCS launched
 *   entry-failure-keeps-queued-event  a VM-entry failure leaves the event
 *                                     L1 queued and the last exit's
 *                                     IDT-vectoring information alone
 *   vmcall-in-root                    VMCALL in L1 itself: VMfail
 *   vmcall-compat-mode                ... and #UD in compatibility mode
 *
 * cr4-reserved-with-vmxe, which needs CR4.VMXE clear, is in vmx_enable
 * (main.c).
 */
#include "l1hv.h"
#include "payloads.h"

/* The benign 64-bit payload, with the common controls: external-interrupt
 * exiting, acknowledge interrupt on exit (vmcs.c). */
static struct l2_config benign(void)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };
	return c;
}

/* ------------------------------------------------------------ CR0.NE */

/* In VMX operation CR0 must honour IA32_VMX_CR0_FIXED0, whose NE bit is 1:
 * a MOV to CR0 clearing NE is #GP(0) and CR0 keeps its value (SDM Vol. 3C
 * §24.8, Appendix A.7). */
static void cr0_ne_check(void)
{
	uint64_t cr0 = read_cr0(), bad = cr0 & ~(uint64_t)CR0_NE;
	int vec = write_cr0_safe(bad);
	uint64_t err = trap_error_code(), after = read_cr0();

	if (after != cr0)
		write_cr0_safe(cr0);
	if (!(caps.cr0_fixed0 & CR0_NE))
		check("cr0-ne-fixed-in-vmx", 0, "IA32_VMX_CR0_FIXED0 %#llx does not fix NE",
		      (unsigned long long)caps.cr0_fixed0);
	else if (vec == VEC_GP && err == 0 && after == cr0)
		check("cr0-ne-fixed-in-vmx", 1, "MOV %#llx to CR0 (NE clear) in VMX operation: #GP(0), CR0 still %#llx",
		      (unsigned long long)bad, (unsigned long long)after);
	else
		check("cr0-ne-fixed-in-vmx", 0,
		      "MOV %#llx to CR0 (NE clear) in VMX operation: %s (error %#llx), CR0 %#llx; want #GP(0) and CR0 %#llx",
		      (unsigned long long)bad,
		      vec == VEC_GP ? "#GP" : vec < 0 ? "no fault" : "a fault other than #GP",
		      (unsigned long long)err, (unsigned long long)after, (unsigned long long)cr0);
}

/* ------------------------------------------------------------ pending at VMLAUNCH */

/* How many times L1 reads IRR waiting for its 1 ms timer, with 100 PAUSEs
 * between reads (each read of the APIC page exits to L0). */
#define IRR_POLLS 100000

/*
 * L1, with IF = 0, lets its APIC timer request TIMER_VECTOR (IRR bit set),
 * then launches the benign payload with external-interrupt exiting and
 * acknowledge interrupt on exit. VM entry completes first and the pending
 * interrupt then exits before L2's first instruction (SDM Vol. 3C §27.7,
 * §26.2): reason 1, the vector acknowledged into the exit interruption
 * information (§28.2.2) and moved from IRR to ISR, GUEST_RIP still the
 * entry RIP. The entry succeeded, so the VMCS is launched (§31.3 VMLAUNCH):
 * another VMLAUNCH is VMfailValid 4, and VMRESUME runs L2 to its VMCALL.
 */
static void pending_at_vmlaunch(void)
{
	static const char name[] = "interrupt-pending-at-vmlaunch";
	struct l2_config c = benign();
	struct l2_regs r;
	struct l2_exit e, relaunch, resume;
	uint64_t pa = vmcs_region(12);
	uint32_t isr_before = lapic_isr_count;
	unsigned polls = 0;
	int irr, acked, eoi_ok;

	if (!vmcs_make_current(pa, name) || !vmcs_setup(&c, name))
		return;
	memset(&r, 0, sizeof(r));
	cli();
	lapic_arm_oneshot(1);
	while (!(irr = lapic_irr(TIMER_VECTOR)) && polls < IRR_POLLS) {
		for (int i = 0; i < 100; i++)
			__asm__ volatile("pause");
		polls++;
	}
	if (!irr) {
		lapic_disarm();
		check(name, 0, "the timer (1 ms) never set IRR bit %#x in %u reads", TIMER_VECTOR,
		      polls);
		return;
	}

	e = l2_run("benign (interrupt pending at VMLAUNCH)", &r, 1);
	acked = !lapic_irr(TIMER_VECTOR) && lapic_isr(TIMER_VECTOR);
	if (is_exit(&e, EXIT_REASON_EXTERNAL_INTR) && (e.intr_info & INTR_INFO_VALID))
		lapic_eoi();
	eoi_ok = !lapic_isr(TIMER_VECTOR);
	relaunch = l2_run("benign (VMLAUNCH again)", &r, 1);
	resume = l2_run("benign (VMRESUME)", &r, 0);
	lapic_disarm();

	int first_ok = is_exit(&e, EXIT_REASON_EXTERNAL_INTR) &&
		       e.intr_info == (INTR_INFO_VALID | INTR_TYPE_EXT_INTR | TIMER_VECTOR) &&
		       e.rip == c.rip;
	int launched = relaunch.result == VM_FAIL_VALID && relaunch.error == VMERR_VMLAUNCH_NOT_CLEAR;
	int ran = vmcall_ok(&resume, r.rax, BENIGN_SUM_SQUARES);
	int l1_took = lapic_isr_count != isr_before;

	if (first_ok && acked && eoi_ok && launched && ran && !l1_took)
		check(name, 1,
		      "IRR bit set before VMLAUNCH (after %u reads); reason 1, interruption info %#x (acknowledged: IRR clear, ISR set until EOI), GUEST_RIP %#llx = L2's entry; VMLAUNCH again: VMfailValid 4; VMRESUME: VMCALL with %#llx",
		      polls + 1, e.intr_info, (unsigned long long)e.rip, (unsigned long long)r.rax);
	else
		check(name, 0,
		      "got %s interruption info %#x GUEST_RIP %#llx (want reason 1, %#x, entry RIP %#llx); acknowledged %s, EOI %s; VMLAUNCH again: %s (want VMfailValid 4); VMRESUME: %s rax %#llx (want VMCALL with %#x)%s",
		      exit_str(&e), e.intr_info, (unsigned long long)e.rip,
		      INTR_INFO_VALID | INTR_TYPE_EXT_INTR | TIMER_VECTOR,
		      (unsigned long long)c.rip, acked ? "yes" : "no (IRR/ISR)", eoi_ok ? "ok" : "left ISR set",
		      exit_str(&relaunch), exit_str(&resume), (unsigned long long)r.rax,
		      BENIGN_SUM_SQUARES, l1_took ? "; L1 took the interrupt through its IDT" : "");
}

/* ------------------------------------------------------------ VM-entry failure */

#define QUEUED_EXT_VECTOR 0x30
#define QUEUED_EXT   (INTR_INFO_VALID | INTR_TYPE_EXT_INTR | QUEUED_EXT_VECTOR)
#define QUEUED_UD    (INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_UD)
/* #GP with an error code: the IDT limit (0) refused vector 0x30. */
#define EXIT_GP      (INTR_INFO_VALID | INTR_INFO_ERROR_VALID | INTR_TYPE_HW_EXCEPTION | VEC_GP)
#define ENTRY_FAIL_GUEST (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST)

/* The exit-information fields the failures below must not touch, and the
 * event queued for the next entry. */
struct kept {
	uint32_t entry_info, vect_info, vect_error, exit_info;
};

static struct kept read_kept(void)
{
	struct kept k;

	k.entry_info = (uint32_t)vmr(VM_ENTRY_INTR_INFO);
	k.vect_info = (uint32_t)vmr(IDT_VECTORING_INFO);
	k.vect_error = (uint32_t)vmr(IDT_VECTORING_ERROR_CODE);
	k.exit_info = (uint32_t)vmr(VM_EXIT_INTR_INFO);
	return k;
}

static int same_kept(const struct kept *a, const struct kept *b)
{
	return a->entry_info == b->entry_info && a->vect_info == b->vect_info &&
	       a->vect_error == b->vect_error && a->exit_info == b->exit_info;
}

/*
 * A VM-entry failure on guest state writes the exit reason and the exit
 * qualification and nothing else (SDM Vol. 3C §27.8): the event queued in
 * the VM-entry interruption information stays valid (a VM exit would clear
 * its valid bit, §28.2), and the IDT-vectoring and exit interruption
 * information of the last exit stay. The last exit here: external interrupt 0x30 injected
 * into the benign L2 (RFLAGS.IF = 1, which an injected external interrupt
 * needs, §27.3.1.4), whose IDT limit 0 turns its delivery into a #GP that
 * the exception bitmap intercepts: IDT-vectoring information 0x80000030
 * (§28.2.4). Then #UD is queued and GUEST_RFLAGS bit 1 cleared: VMRESUME
 * fails; after VMCLEAR and VMPTRLD, VMLAUNCH fails the same way.
 */
static void entry_failure_keeps_event(void)
{
	static const char name[] = "entry-failure-keeps-queued-event";
	struct l2_config c = benign();
	struct l2_regs r;
	struct l2_exit first, resume, launch;
	struct kept before, after_resume, after_launch;
	uint64_t pa = vmcs_region(13);
	uint32_t entry_after_exit;

	if (!vmcs_make_current(pa, name) || !vmcs_setup(&c, name))
		return;
	memset(&r, 0, sizeof(r));
	vmw(EXCEPTION_BITMAP, 1u << VEC_GP);
	vmw(VM_ENTRY_INTR_INFO, QUEUED_EXT);
	vmw(GUEST_RFLAGS, 0x202);
	first = l2_run("benign (external interrupt 0x30 injected, IDT limit 0)", &r, 1);
	entry_after_exit = (uint32_t)vmr(VM_ENTRY_INTR_INFO);
	int first_ok = is_exit(&first, EXIT_REASON_EXCEPTION_NMI) && first.intr_info == EXIT_GP &&
		       first.vect_info == QUEUED_EXT && !(entry_after_exit & INTR_INFO_VALID);
	if (!first_ok) {
		check(name, 0,
		      "the first entry: got %s interruption info %#x IDT-vectoring %#x, VM-entry interruption info %#x after it; want reason 0, %#x, IDT-vectoring %#x, valid bit cleared",
		      exit_str(&first), first.intr_info, first.vect_info, entry_after_exit, EXIT_GP,
		      QUEUED_EXT);
		return;
	}

	vmcs_errors_reset();
	vmw(VM_ENTRY_INTR_INFO, QUEUED_UD);
	vmw(GUEST_RFLAGS, 0);
	before = read_kept();
	resume = l2_run("benign (#UD queued, GUEST_RFLAGS = 0)", &r, 0);
	after_resume = read_kept();
	uint64_t qual_resume = resume.qual;

	uint64_t fl = vmclear(pa);
	uint64_t fl2 = vmptrld(pa);
	launch = l2_run("benign (#UD queued, GUEST_RFLAGS = 0, VMCLEAR, VMPTRLD)", &r, 1);
	after_launch = read_kept();
	vmw(GUEST_RFLAGS, 2);
	struct vmcs_error ve = vmcs_errors();

	int ok = before.entry_info == QUEUED_UD && before.vect_info == QUEUED_EXT &&
		 is_exit(&resume, ENTRY_FAIL_GUEST) && qual_resume == 0 &&
		 same_kept(&before, &after_resume) && vm_result(fl) == VM_SUCCEED &&
		 vm_result(fl2) == VM_SUCCEED && is_exit(&launch, ENTRY_FAIL_GUEST) &&
		 launch.qual == 0 && same_kept(&before, &after_launch) && ve.count == 0;
	if (ok)
		check(name, 1,
		      "after exit 0 with IDT-vectoring %#x: #UD queued (%#x) and GUEST_RFLAGS 0; VMRESUME, and VMLAUNCH after VMCLEAR: reason %#x, qualification 0; VM-entry interruption info still %#x, IDT-vectoring still %#x, exit interruption info still %#x",
		      QUEUED_EXT, QUEUED_UD, ENTRY_FAIL_GUEST, after_launch.entry_info,
		      after_launch.vect_info, after_launch.exit_info);
	else
		check(name, 0,
		      "VMRESUME: %s qualification %#llx, then entry info %#x IDT-vectoring %#x/%#x exit info %#x; VMLAUNCH: %s qualification %#llx, then %#x %#x/%#x %#x; want reason %#x qualification 0 and %#x %#x/%#x %#x kept%s",
		      exit_str(&resume), (unsigned long long)qual_resume, after_resume.entry_info,
		      after_resume.vect_info, after_resume.vect_error, after_resume.exit_info,
		      exit_str(&launch), (unsigned long long)launch.qual, after_launch.entry_info,
		      after_launch.vect_info, after_launch.vect_error, after_launch.exit_info,
		      ENTRY_FAIL_GUEST, before.entry_info, before.vect_info, before.vect_error,
		      before.exit_info, ve.count ? "; a VMREAD/VMWRITE failed" : "");
}

/* ------------------------------------------------------------ CR0.PG in L2 */

/* How long the run may take before L1's APIC timer takes the CPU back: an
 * L2 (or an L0) gone astray ends as an external-interrupt exit, a FAIL,
 * instead of a hang. The run is four instructions. */
#define CR0_WATCHDOG_MS 100

/*
 * A 32-bit L2 in protected mode with 32-bit paging (the storm payload's
 * set-up: L2_PROT32, EFER = 0, so no long mode to leave), not an
 * unrestricted guest, executes a MOV to CR0 that clears PG. CR0.PE and
 * PG are fixed to 1 in VMX operation unless the guest is unrestricted
 * (SDM Vol. 3C §24.8, §26.3, Appendix A.7): the MOV is #GP(0) and CR0
 * keeps its value. L1 intercepts #GP (exception bitmap bit 13): reason 0,
 * exit interruption information valid | hardware exception | error code
 * valid | 13, error code 0 (§28.2.2), GUEST_RIP at the MOV (a fault:
 * RIP is not advanced), GUEST_CR0 as L2 entered with it, PG set.
 */
static void cr0_pg_l2_check(void)
{
	static const char name[] = "l2-cr0-pg-fixed";
	struct l2_config c = { .mode = L2_PROT32, .rip = (uint64_t)(uintptr_t)l2_cr0_clear_pg,
			       .rsp = (uint64_t)(uintptr_t)l2s_kstack_top };
	uint64_t mov_rip = (uint64_t)(uintptr_t)l2_cr0_clear_pg_mov, cr0_before, cr0_after;
	uint32_t err;
	struct l2_regs r;
	struct l2_exit e;

	if (!vmcs_make_current(vmcs_region(11), name) || !vmcs_setup(&c, name))
		return;
	vmw(EXCEPTION_BITMAP, 1u << VEC_GP);
	cr0_before = vmr(GUEST_CR0);
	memset(&r, 0, sizeof(r));
	lapic_arm_oneshot(CR0_WATCHDOG_MS);
	e = l2_run("cr0-clear-pg (32-bit paging, not unrestricted)", &r, 1);
	if (is_exit(&e, EXIT_REASON_EXTERNAL_INTR) && (e.intr_info & INTR_INFO_VALID))
		lapic_eoi();
	lapic_disarm();
	err = (uint32_t)vmr(VM_EXIT_INTR_ERROR_CODE);
	cr0_after = vmr(GUEST_CR0);

	/* What L2 wrote: its CR0 without PG (EAX, the low half of RAX). */
	uint32_t wrote = (uint32_t)r.rax;
	int ok = is_exit(&e, EXIT_REASON_EXCEPTION_NMI) && e.intr_info == EXIT_GP && err == 0 &&
		 e.rip == mov_rip && (cr0_before & CR0_PG) && cr0_after == cr0_before;
	if (ok)
		check(name, 1,
		      "MOV %#x (PG clear) to CR0 in a paged 32-bit L2 (CR0 %#llx, not unrestricted): reason 0, interruption info %#x (#GP, error code %#x), GUEST_RIP %#llx = the MOV, GUEST_CR0 still %#llx (PG set)",
		      wrote, (unsigned long long)cr0_before, e.intr_info, err,
		      (unsigned long long)e.rip, (unsigned long long)cr0_after);
	else
		check(name, 0,
		      "MOV %#x (PG clear) to CR0 from CR0 %#llx: got %s interruption info %#x error code %#x GUEST_RIP %#llx GUEST_CR0 %#llx; want reason 0, %#x, error code 0, GUEST_RIP %#llx, GUEST_CR0 %#llx (PG set)",
		      wrote, (unsigned long long)cr0_before, exit_str(&e), e.intr_info, err,
		      (unsigned long long)e.rip, (unsigned long long)cr0_after, EXIT_GP,
		      (unsigned long long)mov_rip, (unsigned long long)cr0_before);
}

/* ------------------------------------------------------------ VMCALL */

/*
 * VMCALL in VMX root operation (SDM Vol. 3C §31.3 VMCALL): #UD in
 * compatibility mode, #GP(0) above CPL 0, else - no SMM monitor here -
 * VMfail: VMfailValid 1 with a current VMCS, VMfailInvalid without one.
 * Leaves no current VMCS.
 */
static void vmcall_checks(void)
{
	uint64_t pa = vmcs_region(12), fl_valid = 0, fl_invalid = 0, ptr = 0, fl;
	uint32_t err = 0;
	int vec1 = -1, vec2 = -1, vec;

	if (vmcs_make_current(pa, "vmcall-in-root")) {
		vec1 = vmcall_safe(&fl_valid);
		if (vec1 < 0 && vm_result(fl_valid) == VM_FAIL_VALID)
			err = vm_instruction_error();
		/* VMCLEAR of the current VMCS: none is current any more. */
		vmclear(pa);
		vmptrst(&ptr);
		vec2 = vmcall_safe(&fl_invalid);
		int ok = vec1 < 0 && (fl_valid & FLAGS_ARITH) == FLAGS_ZF && err == VMERR_VMCALL_IN_ROOT &&
			 ptr == ~0ull && vec2 < 0 && (fl_invalid & FLAGS_ARITH) == FLAGS_CF;
		check("vmcall-in-root", ok,
		      "VMCALL in L1 with a current VMCS: %s flags %#llx error %u%s; without one (VMPTRST %#llx): %s flags %#llx%s",
		      vec1 >= 0 ? "fault" : "completed", (unsigned long long)(fl_valid & FLAGS_ARITH), err,
		      ok ? " (VMfailValid, VMCALL executed in VMX root operation)" : " (want ZF only, error 1)",
		      (unsigned long long)ptr, vec2 >= 0 ? "fault" : "completed",
		      (unsigned long long)(fl_invalid & FLAGS_ARITH),
		      ok ? " (VMfailInvalid)" : " (want CF only)");
	}

	vec = vmcall_compat_safe(&fl);
	if (vec == VEC_UD)
		check("vmcall-compat-mode", 1, "VMCALL in L1 in compatibility mode (CS %#x): #UD",
		      SEL_CODE32);
	else
		check("vmcall-compat-mode", 0,
		      "VMCALL in L1 in compatibility mode (CS %#x): %s (flags %#llx), want #UD",
		      SEL_CODE32, vec == VEC_GP ? "#GP" : vec >= 0 ? "another fault" : "no fault",
		      (unsigned long long)(fl & FLAGS_ARITH));
}

void nested_event_checks(void)
{
	cr0_ne_check();
	cr0_pg_l2_check();
	pending_at_vmlaunch();
	entry_failure_keeps_event();
	vmcall_checks();
}
