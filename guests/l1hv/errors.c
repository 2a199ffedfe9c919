/*
 * errors.c - the vmx-errors payload: each VMX instruction failing the way
 * the SDM says it fails (Vol. 3C Chapter 31, error numbers in §31.4), a
 * VM-entry failure on guest state (§27.8), INVEPT (#UD without EPT, else
 * a type that does not exist), and VMXOFF at the end of the run
 * (vmx_leave, after the nested-events payload).
 */
#include "l1hv.h"
#include "payloads.h"

/* A well-formed encoding no processor implements: 32-bit guest-state
 * field (width 2, type 2) with index 0x1FF, beyond any processor's highest
 * index (IA32_VMX_VMCS_ENUM[9:1]). */
#define BOGUS_FIELD 0x4BFE

static const char *error_name(uint32_t n)
{
	switch (n) {
	case VMERR_VMCALL_IN_ROOT: return "VMCALL executed in VMX root operation";
	case VMERR_VMCLEAR_BAD_ADDR: return "VMCLEAR with invalid physical address";
	case VMERR_VMCLEAR_VMXON_PTR: return "VMCLEAR with VMXON pointer";
	case VMERR_VMLAUNCH_NOT_CLEAR: return "VMLAUNCH with non-clear VMCS";
	case VMERR_VMRESUME_NOT_LAUNCHED: return "VMRESUME with non-launched VMCS";
	case VMERR_ENTRY_BAD_CONTROLS: return "VM entry with invalid control field(s)";
	case VMERR_ENTRY_BAD_HOST_STATE: return "VM entry with invalid host-state field(s)";
	case VMERR_VMPTRLD_BAD_ADDR: return "VMPTRLD with invalid physical address";
	case VMERR_VMPTRLD_VMXON_PTR: return "VMPTRLD with VMXON pointer";
	case VMERR_VMPTRLD_BAD_REVISION: return "VMPTRLD with incorrect VMCS revision identifier";
	case VMERR_UNSUPPORTED_FIELD: return "VMREAD/VMWRITE from/to unsupported VMCS component";
	case VMERR_VMWRITE_READ_ONLY: return "VMWRITE to read-only VMCS component";
	case VMERR_VMXON_IN_ROOT: return "VMXON executed in VMX root operation";
	case VMERR_INVALID_INVEPT_INVVPID: return "invalid operand to INVEPT/INVVPID";
	default: return "?";
	}
}

/* A VMX instruction that must end in VMfailValid with error `want`: ZF = 1
 * and CF, PF, AF, SF, OF = 0 (SDM Vol. 3C §31.2). */
void want_fail_valid(const char *name, const char *what, uint64_t fl, uint32_t want)
{
	enum vm_result r = vm_result(fl);
	uint32_t err = r == VM_FAIL_VALID ? vm_instruction_error() : 0;

	if (r == VM_FAIL_VALID && err == want && (fl & FLAGS_ARITH) == FLAGS_ZF)
		check(name, 1, "%s: VMfailValid, error %u (%s)", what, err, error_name(err));
	else if (r == VM_FAIL_VALID)
		check(name, 0, "%s: got VMfailValid error %u flags %#llx, want error %u (%s)", what,
		      err, (unsigned long long)(fl & FLAGS_ARITH), want, error_name(want));
	else
		check(name, 0, "%s: got %s (flags %#llx), want VMfailValid error %u (%s)", what,
		      r == VM_SUCCEED ? "VMsucceed" : "VMfailInvalid",
		      (unsigned long long)(fl & FLAGS_ARITH), want, error_name(want));
}

/* The same for VMLAUNCH/VMRESUME, which go through vmx_run. */
void want_entry_error(const char *name, const char *what, const struct l2_exit *e,
			     uint32_t want)
{
	if (e->result == VM_FAIL_VALID && e->error == want)
		check(name, 1, "%s: VMfailValid, error %u (%s)", what, e->error, error_name(e->error));
	else if (e->result == VM_FAIL_VALID)
		check(name, 0, "%s: got VMfailValid error %u, want error %u (%s)", what, e->error,
		      want, error_name(want));
	else if (e->result == VM_FAIL_INVALID)
		check(name, 0, "%s: got VMfailInvalid, want VMfailValid error %u (%s)", what, want,
		      error_name(want));
	else
		check(name, 0, "%s: got a VM entry and exit reason %#x, want VMfailValid error %u (%s)",
		      what, e->reason, want, error_name(want));
}

/* VMCLEAR + VMPTRLD: the VMCS is current and its launch state clear, so
 * VMLAUNCH gets as far as the checks under test. */
static int fresh(uint64_t pa, const char *name)
{
	return vmcs_make_current(pa, name);
}

static int lowest_bit(uint32_t v)
{
	for (int i = 0; i < 32; i++)
		if (v & (1u << i))
			return i;
	return -1;
}

void vmx_error_checks(void)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };
	uint64_t pa = vmcs_region(5), vmxon_pa = vmxon_region_pa(), fl, v, ptr = 0;
	struct l2_regs r;
	struct l2_exit e;
	int vec;

	memset(&r, 0, sizeof(r));
	if (!vmcs_make_current(pa, "vmx-errors-setup") || !vmcs_setup(&c, "vmx-errors-setup"))
		return;

	/* VMPTRST stores the current-VMCS pointer. */
	fl = vmptrst(&ptr);
	check("vmptrst", vm_result(fl) == VM_SUCCEED && ptr == pa,
	      "VMPTRST: %s, %#llx (want the current VMCS %#llx)",
	      vm_result(fl) == VM_SUCCEED ? "VMsucceed" : "failed", (unsigned long long)ptr,
	      (unsigned long long)pa);

	/* VMREAD of an encoding that is no VMCS field. */
	fl = vmread_flags(BOGUS_FIELD, &v);
	want_fail_valid("vmread-unsupported-field", "VMREAD 0x4bfe", fl, VMERR_UNSUPPORTED_FIELD);

	/* VMWRITE to a VM-exit information field: error 13, unless
	 * IA32_VMX_MISC[29] lets software write them (SDM Vol. 3C §A.6). */
	fl = vmwrite_flags(VM_EXIT_REASON, 0x12);
	if (caps.misc & VMX_MISC_VMWRITE_ANY)
		check("vmwrite-read-only-field", vm_result(fl) == VM_SUCCEED,
		      "VMWRITE VM_EXIT_REASON with IA32_VMX_MISC[29] = 1: %s",
		      vm_result(fl) == VM_SUCCEED ? "VMsucceed" : "failed");
	else
		want_fail_valid("vmwrite-read-only-field", "VMWRITE VM_EXIT_REASON (0x4402)", fl,
				VMERR_VMWRITE_READ_ONLY);

	/* Launch the benign payload (to its first VMCALL): the VMCS is now
	 * "launched", and VMLAUNCH wants it "clear". */
	e = l2_run("benign (for vmx-errors)", &r, 1);
	if (e.result != VM_SUCCEED || e.reason != EXIT_REASON_VMCALL)
		check("vmlaunch-launched", 0, "the first VMLAUNCH did not reach the VMCALL");
	else {
		e = l2_run("benign (launched VMCS)", &r, 1);
		want_entry_error("vmlaunch-launched", "VMLAUNCH of a launched VMCS", &e,
				 VMERR_VMLAUNCH_NOT_CLEAR);
	}

	/* VMCLEAR makes it "clear"; VMRESUME wants "launched". */
	if (fresh(pa, "vmresume-clear")) {
		e = l2_run("benign (clear VMCS)", &r, 0);
		want_entry_error("vmresume-clear", "VMRESUME of a clear VMCS", &e,
				 VMERR_VMRESUME_NOT_LAUNCHED);
	}

	/* VMPTRLD checks the revision identifier in the region's first 31 bits. */
	fl = vmptrld(vmcs_bad_revision_region());
	want_fail_valid("vmptrld-bad-revision", "VMPTRLD of a region with revision id + 1", fl,
			VMERR_VMPTRLD_BAD_REVISION);

	/* The VMXON region is not a VMCS. */
	fl = vmptrld(vmxon_pa);
	want_fail_valid("vmptrld-vmxon-region", "VMPTRLD of the VMXON region", fl,
			VMERR_VMPTRLD_VMXON_PTR);

	/* VMCLEAR wants a 4 KiB-aligned address; with a current VMCS the error
	 * is VMfailValid. */
	fl = vmclear(pa + 8);
	want_fail_valid("vmclear-unaligned", "VMCLEAR of VMCS + 8", fl, VMERR_VMCLEAR_BAD_ADDR);

	/* VMXON in VMX root operation, with a current VMCS. */
	vec = vmxon_safe(vmxon_pa, &fl);
	if (vec >= 0)
		check("vmxon-in-root", 0, "VMXON in VMX root operation: vector %d, want VMfailValid 15",
		      vec);
	else
		want_fail_valid("vmxon-in-root", "VMXON in VMX root operation", fl,
				VMERR_VMXON_IN_ROOT);

	/* Control checks (SDM Vol. 3C §27.2.1.1): a pin-based control that
	 * must be 1 left 0 (or, if none must be 1, one that may not be 1 set). */
	if (fresh(pa, "vmlaunch-bad-pin-controls")) {
		uint32_t pin = (uint32_t)vmr(PIN_BASED_CONTROLS), bad;
		int bit = lowest_bit((uint32_t)caps.pin);
		char what[80];

		if (bit >= 0) {
			bad = pin & ~(1u << bit);
			snprintf(what, sizeof(what), "VMLAUNCH with must-be-1 pin control bit %d clear", bit);
		} else {
			bit = lowest_bit(~(uint32_t)(caps.pin >> 32));
			bad = pin | (1u << bit);
			snprintf(what, sizeof(what), "VMLAUNCH with pin control bit %d set (may not be 1)", bit);
		}
		vmw(PIN_BASED_CONTROLS, bad);
		e = l2_run("benign (bad pin controls)", &r, 1);
		vmw(PIN_BASED_CONTROLS, pin);
		want_entry_error("vmlaunch-bad-pin-controls", what, &e, VMERR_ENTRY_BAD_CONTROLS);
	}

	/* Host-state checks (§27.2.2): HOST_CR4 must have the CR4 fixed-1 bits,
	 * VMXE among them. */
	if (fresh(pa, "vmlaunch-bad-host-state")) {
		uint64_t cr4 = vmr(HOST_CR4);

		vmw(HOST_CR4, cr4 & ~(uint64_t)CR4_VMXE);
		e = l2_run("benign (HOST_CR4 without VMXE)", &r, 1);
		vmw(HOST_CR4, cr4);
		want_entry_error("vmlaunch-bad-host-state", "VMLAUNCH with HOST_CR4.VMXE = 0", &e,
				 VMERR_ENTRY_BAD_HOST_STATE);
	}

	/* Guest-state checks (§27.3.1.4): RFLAGS bit 1 must be 1. A failure
	 * here is not VMfail but a VM exit with bit 31 set in the exit reason
	 * (basic reason 33) and qualification 0 (§27.8). */
	if (fresh(pa, "vmlaunch-bad-guest-state")) {
		vmw(GUEST_RFLAGS, 0);
		e = l2_run("benign (GUEST_RFLAGS = 0)", &r, 1);
		vmw(GUEST_RFLAGS, 2);
		uint32_t want = EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST;
		if (e.result == VM_SUCCEED && e.reason == want && e.qual == 0)
			check("vmlaunch-bad-guest-state", 1,
			      "VMLAUNCH with GUEST_RFLAGS bit 1 clear: VM-entry failure, reason %#x, qualification 0",
			      e.reason);
		else
			check("vmlaunch-bad-guest-state", 0,
			      "VMLAUNCH with GUEST_RFLAGS bit 1 clear: got %s result, reason %#x qualification %#llx, want reason %#x qualification 0",
			      e.result == VM_SUCCEED ? "an exit" : e.result == VM_FAIL_VALID ? "VMfailValid" : "VMfailInvalid",
			      e.reason, (unsigned long long)e.qual, want);
	}

	/* INVVPID: #UD unless VPIDs and INVVPID are offered (§31.3 INVVPID);
	 * a type whose IA32_VMX_EPT_VPID_CAP bit (40 + type) is 0 - type 4 has
	 * none - is VMfailValid 28. */
	int vpid = ((caps.proc2 >> 32) & PROC2_ENABLE_VPID) && (caps.ept_vpid & VPID_CAP_INVVPID);
	struct invvpid_desc d = { 0, 0 };
	vec = invvpid_safe(4, &d, &fl);
	if (!vpid)
		check("invvpid-bad-type", vec == VEC_UD,
		      "INVVPID without VPID support: %s, want #UD", vec == VEC_UD ? "#UD" : "no #UD");
	else if (vec >= 0)
		check("invvpid-bad-type", 0, "INVVPID type 4: vector %d, want VMfailValid 28", vec);
	else
		want_fail_valid("invvpid-bad-type", "INVVPID type 4", fl, VMERR_INVALID_INVEPT_INVVPID);
	if (vpid && (caps.ept_vpid & VPID_CAP_TYPE(2))) {
		vec = invvpid_safe(2, &d, &fl);
		check("invvpid-all-context", vec < 0 && vm_result(fl) == VM_SUCCEED,
		      "INVVPID type 2 (all contexts): %s", vec >= 0 ? "fault" :
		      vm_result(fl) == VM_SUCCEED ? "VMsucceed" : "VMfail");
	}

	/* INVEPT is #UD when "enable EPT" may not be 1 or IA32_VMX_EPT_VPID_CAP
	 * reports no INVEPT (bit 20) (§31.3 INVEPT). */
	int ept = ((caps.proc2 >> 32) & PROC2_ENABLE_EPT) && (caps.ept_vpid & EPT_CAP_INVEPT);
	uint64_t ept_desc[2] = { 0, 0 };
	vec = invept_safe(ept ? 4 : 1, ept_desc, &fl);
	if (!ept)
		check("invept-ud", vec == VEC_UD, "INVEPT without EPT: %s",
		      vec == VEC_UD ? "#UD" : vec >= 0 ? "a fault other than #UD" : "no fault");
	else if (vec >= 0)
		check("invept-ud", 0, "EPT is offered; INVEPT type 4: vector %d, want VMfailValid 28",
		      vec);
	else
		want_fail_valid("invept-ud", "EPT is offered; INVEPT type 4", fl,
				VMERR_INVALID_INVEPT_INVVPID);

	/* VMCLEAR of the current VMCS leaves no current VMCS (pointer all
	 * ones); VMLAUNCH then is VMfailInvalid: CF = 1, no error number. */
	fl = vmclear(pa);
	uint64_t fl2 = vmptrst(&ptr);
	check("vmptrst-after-vmclear",
	      vm_result(fl) == VM_SUCCEED && vm_result(fl2) == VM_SUCCEED && ptr == ~0ull,
	      "VMCLEAR of the current VMCS, then VMPTRST: %#llx", (unsigned long long)ptr);
	e = l2_run("benign (no current VMCS)", &r, 1);
	check("vmlaunch-no-current-vmcs", e.result == VM_FAIL_INVALID,
	      "VMLAUNCH without a current VMCS: %s%s",
	      e.result == VM_FAIL_INVALID ? "VMfailInvalid" :
	      e.result == VM_FAIL_VALID ? "VMfailValid" : "a VM entry",
	      e.result == VM_FAIL_INVALID ? "" : ", want VMfailInvalid");
}

/* Leaves VMX operation: the last check of the run. */
void vmx_leave(void)
{
	uint64_t fl;
	int vec = vmxoff_safe(&fl);

	check("vmxoff", vec < 0 && vm_result(fl) == VM_SUCCEED, "VMXOFF: %s",
	      vec >= 0 ? "fault" : vm_result(fl) == VM_SUCCEED ? "VMsucceed" : "VMfail");
}
