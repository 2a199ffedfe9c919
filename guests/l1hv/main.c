/*
 * l1hv - a small VMX hypervisor running as L1 on Vigil's L0.
 *
 * It turns VMX on the way a hypervisor on real hardware does (CPUID,
 * IA32_FEATURE_CONTROL, the capability MSRs, the CR0/CR4 fixed bits,
 * VMXON) and runs L2 payloads (payloads.S), each in a VMCS of its own:
 *
 *   benign           64-bit L2, two VMCALLs with computed results
 *   port-io          L2 writes COM1 directly (not intercepted), OUT 0x80 and
 *                    an IN that L1 intercepts through its I/O bitmap
 *   ept              L2 under L1's EPT (ept.c): translation, a remapped page,
 *                    EPT violations and a misconfiguration that L1 repairs
 *                    and resumes, INVEPT, unrestricted-guest L2s in 32-bit
 *                    protected mode with paging off and in real mode (and
 *                    the real-mode one's #GP for clearing CR0.NE), and
 *                    the VM-entry checks on EPT
 *   triple-fault     ud2 with IDTR.limit = 0; then VMCLEAR and the benign
 *                    payload relaunched in the same VMCS
 *   ac-storm-timer   32-bit L2 in the CVE-2015-5307 #AC loop; L1's APIC
 *                    timer gets it back (external-interrupt exit)
 *   ac-storm-notify  the same with notify VM exiting (window 0)
 *   vmx-errors       VMfailInvalid / VMfailValid / VM-entry failure / #UD
 *                    cases of the VMX instructions
 *   msr-lists        the VM-entry/VM-exit MSR lists loaded and stored, each
 *                    reason an entry fails (reason 34) and the area checks
 *                    (msrlist.c)
 *   tsc              RDTSC and RDMSR of IA32_TSC in L2 with and without TSC
 *                    offsetting, RDTSC exiting (tsc.c)
 *   preemption-timer the VMX-preemption timer: 0 exits at once, an endless
 *                    loop ends, the saved count, a halted L2 wakes (timer.c)
 *   entry-checks     one VMLAUNCH per VM-entry rule of SDM chapter 27 the
 *                    offered controls reach, with its VMfailValid or
 *                    VM-entry failure (entrychecks.c)
 *   nested-events    CR0.NE fixed in VMX operation, CR0.PG fixed for a paged
 *                    32-bit L2 (#GP to L1), an interrupt pending at
 *                    VMLAUNCH, a VM-entry failure keeping the queued event,
 *                    VMCALL in L1 itself (events.c); then VMXOFF
 *
 * Before VMXON, a MOV to CR4 with VMXE and a bit the processor lacks must
 * fault (cr4-reserved-with-vmxe).
 *
 * Command line (multiboot, after the kernel name):
 *   expect=notify    L0 does not intercept #AC (vigil run --no-intercept-ac-db):
 *                    ac-storm-notify must end in a notify exit
 *   expect=invalid   ... and L0 reports the first notify exit as "context
 *                    invalid": ac-storm-timer ends in a triple-fault exit
 *   mode=fuzz        instead of the payloads: VMWRITE the FIELD VALUE lines
 *                    of the first module over the benign VMCS, VMLAUNCH once,
 *                    print one verdict line (fuzz.c)
 *   mode=bench what=W loops=N
 *                    instead of the payloads: a loop for timing nested VMX
 *                    (W = spin, vmcall or cpuid), one result line (bench.c,
 *                    bench/nested.sh)
 */
#include "l1hv.h"
#include "payloads.h"

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
};
struct mb_module {
	uint32_t start, end, string, reserved;
};

int fuzz_mode, bench_mode;
static int expect_notify, expect_invalid;
uint64_t l1_ram_end;

int check(const char *name, int ok, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if ((fuzz_mode || bench_mode) && ok)
		return 1;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return report(name, ok, "%s", buf);
}

/* The first of the space-separated words after the kernel name that starts
 * with `prefix` (and, if `whole`, is nothing more): the rest of that word,
 * its length in *rest; NULL if there is none. */
static const char *find_arg(const char *cmd, const char *prefix, int whole, size_t *rest)
{
	size_t n = strlen(prefix);
	const char *p = cmd;

	while (*p && *p != ' ')
		p++;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		size_t len = (size_t)(p - w);
		if ((whole ? len == n : len >= n) && memcmp(w, prefix, n) == 0) {
			*rest = len - n;
			return w + n;
		}
	}
	*rest = 0;
	return NULL;
}

/* Whether `arg` is one of the words after the kernel name. */
static int has_arg(const char *cmd, const char *arg)
{
	size_t rest;

	return find_arg(cmd, arg, 1, &rest) != NULL;
}

/* The value of the first word `key`VALUE after the kernel name (key ends
 * in '='), and its length in *len; NULL if there is none. */
static const char *arg_value(const char *cmd, const char *key, size_t *len)
{
	return find_arg(cmd, key, 0, len);
}

/* ------------------------------------------------------------ L2 runs */

const char *exit_reason_name(uint32_t reason)
{
	if (reason & EXIT_REASON_ENTRY_FAILURE) {
		switch (reason & 0xFFFF) {
		case EXIT_REASON_INVALID_GUEST: return "VM-entry failure: invalid guest state";
		case EXIT_REASON_MSR_LOADING: return "VM-entry failure: MSR loading";
		default: return "VM-entry failure";
		}
	}
	switch (reason & 0xFFFF) {
	case EXIT_REASON_EXCEPTION_NMI: return "exception or NMI";
	case EXIT_REASON_EXTERNAL_INTR: return "external interrupt";
	case EXIT_REASON_TRIPLE_FAULT: return "triple fault";
	case 7: return "interrupt window";
	case EXIT_REASON_CPUID: return "CPUID";
	case EXIT_REASON_HLT: return "HLT";
	case EXIT_REASON_RDTSC: return "RDTSC";
	case EXIT_REASON_MTF: return "MTF";
	case EXIT_REASON_PAUSE: return "PAUSE";
	case EXIT_REASON_TPR_BELOW: return "TPR below threshold";
	case EXIT_REASON_VMCALL: return "VMCALL";
	case 28: return "control-register access";
	case EXIT_REASON_IO: return "I/O instruction";
	case 31: return "RDMSR";
	case 32: return "WRMSR";
	case EXIT_REASON_EPT_VIOLATION: return "EPT violation";
	case EXIT_REASON_EPT_MISCONFIG: return "EPT misconfiguration";
	case EXIT_REASON_PML_FULL: return "page-modification log full";
	case EXIT_REASON_NOTIFY: return "notify";
	default: return "other";
	}
}

static const char *result_name(enum vm_result r)
{
	return r == VM_FAIL_INVALID ? "VMfailInvalid" : r == VM_FAIL_VALID ? "VMfailValid" : "?";
}

static uint32_t vmr32(uint32_t field)
{
	uint64_t v = 0;

	vmread_flags(field, &v);
	return (uint32_t)v;
}

static uint64_t vmr64(uint32_t field)
{
	uint64_t v = 0;

	vmread_flags(field, &v);
	return v;
}

struct l2_exit l2_run(const char *payload, struct l2_regs *regs, int launch)
{
	struct l2_exit e;

	memset(&e, 0, sizeof(e));
	e.result = vmx_run(regs, launch);
	if (e.result != VM_SUCCEED) {
		e.error = e.result == VM_FAIL_VALID ? vm_instruction_error() : 0;
		printf("l1: L2 %s: %s %s", payload, launch ? "VMLAUNCH" : "VMRESUME",
		       result_name(e.result));
		if (e.result == VM_FAIL_VALID)
			printf(", error %u", e.error);
		printf("\n");
		return e;
	}
	e.reason = vmr32(VM_EXIT_REASON);
	e.qual = vmr64(EXIT_QUALIFICATION);
	e.intr_info = vmr32(VM_EXIT_INTR_INFO);
	e.vect_info = vmr32(IDT_VECTORING_INFO);
	e.vect_error = vmr32(IDT_VECTORING_ERROR_CODE);
	e.insn_len = vmr32(VM_EXIT_INSTRUCTION_LEN);
	e.rip = vmr64(GUEST_RIP);
	if (e.reason == EXIT_REASON_EPT_VIOLATION || e.reason == EXIT_REASON_EPT_MISCONFIG) {
		/* Written on EPT exits only (SDM Vol. 3C §28.2.1); the linear
		 * address when qualification bit 7 says so. */
		e.gpa = vmr64(GUEST_PHYSICAL_ADDRESS);
		e.linear = vmr64(GUEST_LINEAR_ADDRESS);
	}

	printf("l1: L2 %s exited: reason ", payload);
	if (e.reason & EXIT_REASON_ENTRY_FAILURE)
		printf("%#x (%s) qualification %#llx\n", e.reason, exit_reason_name(e.reason),
		       (unsigned long long)e.qual);
	else if (e.reason == EXIT_REASON_VMCALL)
		printf("%u (VMCALL) rax=%#llx\n", e.reason, (unsigned long long)regs->rax);
	else if (e.reason == EXIT_REASON_IO && !(e.qual & (IOQ_IN | IOQ_STRING)))
		printf("%u (I/O instruction) out port %#x, %u byte%s, value %#llx\n", e.reason,
		       IOQ_PORT(e.qual), IOQ_SIZE(e.qual) + 1, IOQ_SIZE(e.qual) ? "s" : "",
		       (unsigned long long)(regs->rax & (IOQ_SIZE(e.qual) == 0 ? 0xFF :
							 IOQ_SIZE(e.qual) == 1 ? 0xFFFF : 0xFFFFFFFF)));
	else if (e.reason == EXIT_REASON_IO)
		printf("%u (I/O instruction) %s port %#x, %u byte%s%s\n", e.reason,
		       e.qual & IOQ_IN ? "in" : "out", IOQ_PORT(e.qual), IOQ_SIZE(e.qual) + 1,
		       IOQ_SIZE(e.qual) ? "s" : "", e.qual & IOQ_STRING ? ", string" : "");
	else if (e.reason == EXIT_REASON_EXTERNAL_INTR)
		printf("%u (external interrupt) interruption info %#x, IDT-vectoring %#x\n", e.reason,
		       e.intr_info, e.vect_info);
	else if (e.reason == EXIT_REASON_TRIPLE_FAULT)
		printf("%u (triple fault) IDT-vectoring %#x\n", e.reason, e.vect_info);
	else if (e.reason == EXIT_REASON_NOTIFY)
		printf("%u (notify) qualification %#llx, IDT-vectoring %#x\n", e.reason,
		       (unsigned long long)e.qual, e.vect_info);
	else if (e.reason == EXIT_REASON_EPT_VIOLATION || e.reason == EXIT_REASON_EPT_MISCONFIG)
		printf("%u (%s) guest-physical %#llx, qualification %#llx at rip %#llx\n", e.reason,
		       exit_reason_name(e.reason), (unsigned long long)e.gpa,
		       (unsigned long long)e.qual, (unsigned long long)e.rip);
	else
		printf("%u (%s) qualification %#llx at rip %#llx\n", e.reason,
		       exit_reason_name(e.reason), (unsigned long long)e.qual,
		       (unsigned long long)e.rip);
	return e;
}

/* "reason 18 (VMCALL)" or "VMfailValid error 7", for FAIL details. */
const char *exit_str(const struct l2_exit *e)
{
	static char buf[96];

	if (e->result == VM_FAIL_VALID)
		snprintf(buf, sizeof(buf), "VMfailValid error %u", e->error);
	else if (e->result != VM_SUCCEED)
		snprintf(buf, sizeof(buf), "%s", result_name(e->result));
	else if (e->reason & EXIT_REASON_ENTRY_FAILURE)
		snprintf(buf, sizeof(buf), "reason %#x (%s)", e->reason, exit_reason_name(e->reason));
	else
		snprintf(buf, sizeof(buf), "reason %u (%s)", e->reason, exit_reason_name(e->reason));
	return buf;
}

int is_exit(const struct l2_exit *e, uint32_t reason)
{
	return e->result == VM_SUCCEED && e->reason == reason;
}

/* Past the instruction that exited (VM-exit instruction length, §28.2.5). */
void skip_instruction(const struct l2_exit *e)
{
	vmw(GUEST_RIP, e->rip + e->insn_len);
}

static int setup_payload(unsigned region, const struct l2_config *c, const char *name,
			 uint64_t *pa)
{
	*pa = vmcs_region(region);
	return vmcs_make_current(*pa, name) && vmcs_setup(c, name);
}

static struct l2_config benign_cfg(void)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };
	return c;
}

/* ------------------------------------------------------------ 1. benign */

struct benign_run {
	struct l2_exit first, second;
	uint64_t rax1, rax2;
};

/* Launches the benign payload in the current VMCS: VMCALL, resume, VMCALL. */
static struct benign_run run_benign(const char *payload)
{
	struct benign_run b;
	struct l2_regs r;

	memset(&b, 0, sizeof(b));
	memset(&r, 0, sizeof(r));
	b.first = l2_run(payload, &r, 1);
	b.rax1 = r.rax;
	b.second.result = VM_FAIL_INVALID; /* not run */
	if (is_exit(&b.first, EXIT_REASON_VMCALL)) {
		skip_instruction(&b.first);
		b.second = l2_run(payload, &r, 0);
		b.rax2 = r.rax;
	}
	return b;
}

int vmcall_ok(const struct l2_exit *e, uint64_t rax, uint64_t want)
{
	/* VMCALL is 0F 01 C1: 3 bytes. */
	return is_exit(e, EXIT_REASON_VMCALL) && rax == want && e->insn_len == 3;
}

static void vmcall_check(const char *name, const struct l2_exit *e, uint64_t rax, uint64_t want)
{
	if (vmcall_ok(e, rax, want))
		check(name, 1, "reason 18 (VMCALL), rax %#llx, instruction length 3",
		      (unsigned long long)rax);
	else if (e->result != VM_SUCCEED || e->reason != EXIT_REASON_VMCALL)
		check(name, 0, "got %s, want reason 18 (VMCALL)", exit_str(e));
	else
		check(name, 0, "got rax %#llx length %u, want rax %#llx length 3",
		      (unsigned long long)rax, e->insn_len, (unsigned long long)want);
}

static void payload_benign(void)
{
	struct l2_config c = benign_cfg();
	struct benign_run b;
	uint64_t pa;

	if (!setup_payload(0, &c, "benign", &pa))
		return;
	b = run_benign("benign");
	vmcall_check("benign-vmcall-1", &b.first, b.rax1, BENIGN_SUM_SQUARES);
	vmcall_check("benign-vmcall-2", &b.second, b.rax2, BENIGN_FIB50);
}

/* ------------------------------------------------------------ 2. port-io */

static void payload_port_io(void)
{
	struct l2_config c = benign_cfg();
	struct l2_regs r;
	struct l2_exit e;
	uint64_t pa, post_qual = ~0ull, in_qual = ~0ull, post_value = ~0ull;
	unsigned other_io = 0;

	c.rip = (uint64_t)(uintptr_t)l2_port_io;
	if (!setup_payload(1, &c, "port-io", &pa))
		return;
	memset(&r, 0, sizeof(r));
	/* Emulate each intercepted port access, then resume; stop at anything
	 * else (the VMCALL at the end). */
	for (int launch = 1, n = 0; n < 8; n++, launch = 0) {
		e = l2_run("port-io", &r, launch);
		if (!is_exit(&e, EXIT_REASON_IO))
			break;
		uint32_t port = IOQ_PORT(e.qual), size = IOQ_SIZE(e.qual) + 1;
		if (e.qual & IOQ_IN) {
			uint32_t v = port == PORTIO_IN_PORT ? PORTIO_IN_VALUE : 0xFFFFFFFFu;
			if (port == PORTIO_IN_PORT)
				in_qual = e.qual;
			else
				other_io++;
			/* IN AL/AX keep the rest of RAX; IN EAX zero-extends. */
			if (size == 1)
				r.rax = (r.rax & ~0xFFull) | (v & 0xFF);
			else if (size == 2)
				r.rax = (r.rax & ~0xFFFFull) | (v & 0xFFFF);
			else
				r.rax = v;
		} else if (port == PORTIO_POST_PORT) {
			post_qual = e.qual;
			post_value = r.rax & 0xFF;
		} else {
			other_io++;
		}
		skip_instruction(&e);
	}

	/* OUT imm8, AL: size 0 (1 byte), direction 0 (out), not string, not
	 * REP, operand encoding 1 (immediate), port in bits 31:16 (SDM Vol. 3C
	 * Table 28-5). */
	uint64_t want_post = (uint64_t)PORTIO_POST_PORT << 16 | IOQ_IMMEDIATE;
	if (post_qual == want_post && post_value == PORTIO_POST_VALUE)
		check("port-io-out-0x80", 1, "port 0x80, 1 byte, out, immediate operand, al %#llx",
		      (unsigned long long)post_value);
	else
		check("port-io-out-0x80", 0, "got qualification %#llx al %#llx, want %#llx al %#x",
		      (unsigned long long)post_qual, (unsigned long long)post_value,
		      (unsigned long long)want_post, PORTIO_POST_VALUE);
	/* IN EAX, DX: size 3 (4 bytes), direction 1 (in), encoding 0 (DX). */
	uint64_t want_in = (uint64_t)PORTIO_IN_PORT << 16 | IOQ_IN | 3;
	if (in_qual == want_in)
		check("port-io-in", 1, "port %#x, 4 bytes, in, port in DX; L1 answered %#x",
		      PORTIO_IN_PORT, PORTIO_IN_VALUE);
	else
		check("port-io-in", 0, "got qualification %#llx, want %#llx",
		      (unsigned long long)in_qual, (unsigned long long)want_in);
	if (is_exit(&e, EXIT_REASON_VMCALL) && r.rax == PORTIO_IN_VALUE && other_io == 0)
		check("port-io-l2-read", 1, "L2 read %#llx and said so with VMCALL; no other port exited",
		      (unsigned long long)r.rax);
	else
		check("port-io-l2-read", 0, "got %s rax %#llx with %u other port exits, want reason 18 rax %#x",
		      exit_str(&e), (unsigned long long)r.rax, other_io, PORTIO_IN_VALUE);
}

/* ------------------------------------------------------------ 3. triple fault */

static void payload_triple_fault(void)
{
	struct l2_config c = benign_cfg();
	struct l2_regs r;
	struct l2_exit e;
	struct benign_run b;
	uint64_t pa;

	c.rip = (uint64_t)(uintptr_t)l2_triple_fault;
	if (!setup_payload(2, &c, "triple-fault", &pa))
		return;
	memset(&r, 0, sizeof(r));
	e = l2_run("triple-fault", &r, 1);
	if (is_exit(&e, EXIT_REASON_TRIPLE_FAULT))
		check("triple-fault", 1, "reason 2 (triple fault) after ud2 with IDTR.limit 0");
	else
		check("triple-fault", 0, "got %s, want reason 2 (triple fault)", exit_str(&e));

	/* L1 goes on: the same VMCS, cleared (launch state "clear" again,
	 * SDM Vol. 3C §25.1), made current, set up for the benign payload and
	 * launched. */
	c = benign_cfg();
	if (!vmcs_make_current(pa, "triple-fault-relaunch") ||
	    !vmcs_setup(&c, "triple-fault-relaunch"))
		return;
	b = run_benign("benign (relaunched after the triple fault)");
	if (vmcall_ok(&b.first, b.rax1, BENIGN_SUM_SQUARES) &&
	    vmcall_ok(&b.second, b.rax2, BENIGN_FIB50))
		check("triple-fault-relaunch", 1,
		      "VMCLEAR, VMPTRLD, VMLAUNCH of the same VMCS: VMCALLs with %#llx and %#llx",
		      (unsigned long long)b.rax1, (unsigned long long)b.rax2);
	else
		check("triple-fault-relaunch", 0, "got %s rax %#llx, then %s rax %#llx, want VMCALLs with %#llx and %#llx",
		      exit_str(&b.first), (unsigned long long)b.rax1, exit_str(&b.second),
		      (unsigned long long)b.rax2, (unsigned long long)BENIGN_SUM_SQUARES,
		      (unsigned long long)BENIGN_FIB50);
}

/* ------------------------------------------------------------ 4, 5. #AC storm */

/* IDT-vectoring information of an #AC being delivered: valid, hardware
 * exception, error code valid, vector 17 (SDM Vol. 3C §25.9.3; bit 12 is
 * undefined there). Its error code is 0. */
#define VECTORING_AC (INTR_INFO_VALID | INTR_INFO_ERROR_VALID | INTR_TYPE_HW_EXCEPTION | VEC_AC)

static int vectoring_ac(const struct l2_exit *e)
{
	return (e->vect_info & 0x80000FFFu) == VECTORING_AC && e->vect_error == 0;
}

/* The APIC timer's exit: acknowledged on exit, so the vector is in the exit
 * interruption information (type 0, external interrupt). */
static int timer_exit(const struct l2_exit *e)
{
	return is_exit(e, EXIT_REASON_EXTERNAL_INTR) &&
	       e->intr_info == (INTR_INFO_VALID | INTR_TYPE_EXT_INTR | TIMER_VECTOR);
}

static struct l2_exit run_storm(const char *payload, unsigned region, uint32_t proc2,
				uint32_t timer_ms)
{
	struct l2_config c = { .mode = L2_PROT32, .rip = (uint64_t)(uintptr_t)l2_ac_storm,
			       .rsp = (uint64_t)(uintptr_t)l2s_kstack_top, .proc2 = proc2 };
	struct l2_regs r;
	struct l2_exit e;
	uint64_t pa;

	memset(&e, 0, sizeof(e));
	e.result = VM_FAIL_INVALID; /* not run */
	if (!setup_payload(region, &c, payload, &pa))
		return e;
	memset(&r, 0, sizeof(r));
	lapic_arm_oneshot(timer_ms);
	e = l2_run(payload, &r, 1);
	if (is_exit(&e, EXIT_REASON_EXTERNAL_INTR) && (e.intr_info & INTR_INFO_VALID))
		lapic_eoi();
	lapic_disarm();
	return e;
}

static void payload_ac_storm_timer(void)
{
	/* No notify: only L1's timer (~20 ms of guest time) ends the storm,
	 * unless L0 reports a notify exit of its own as "context invalid",
	 * which it turns into a triple fault for L1 (expect=invalid). */
	struct l2_exit e = run_storm("ac-storm-timer", 3, 0, 20);

	if (expect_invalid) {
		if (is_exit(&e, EXIT_REASON_TRIPLE_FAULT) && !(e.vect_info & INTR_INFO_VALID))
			check("ac-storm-timer", 1,
			      "reason 2 (triple fault: L0's notify exit had an invalid context), IDT-vectoring not valid");
		else
			check("ac-storm-timer", 0,
			      "got %s IDT-vectoring %#x, want reason 2 (triple fault) with IDT-vectoring not valid",
			      exit_str(&e), e.vect_info);
		return;
	}
	if (timer_exit(&e) && vectoring_ac(&e))
		check("ac-storm-timer", 1,
		      "reason 1 (external interrupt, vector %#x) during #AC delivery: IDT-vectoring %#x",
		      TIMER_VECTOR, e.vect_info);
	else
		check("ac-storm-timer", 0,
		      "got %s interruption info %#x IDT-vectoring %#x error %#x, want reason 1 vector %#x with IDT-vectoring %#x error 0",
		      exit_str(&e), e.intr_info, e.vect_info, e.vect_error, TIMER_VECTOR, VECTORING_AC);
}

static void payload_ac_storm_notify(void)
{
	/* Notify window 0: the CPU's own threshold alone. The timer (~40 ms)
	 * is the fallback that gets L1 back if no notify exit comes. */
	struct l2_exit e = run_storm("ac-storm-notify", 4, PROC2_NOTIFY_VM_EXITING, 40);
	int strict = expect_notify || expect_invalid;

	/* Notify exit qualification bit 0: VM context invalid (SDM Vol. 3C
	 * §28.2.1, exit qualification for notify VM exits); 0 here, so L1
	 * could resume L2. */
	if (is_exit(&e, EXIT_REASON_NOTIFY) && vectoring_ac(&e) && !(e.qual & 1))
		check("ac-storm-notify", 1,
		      "reason 75 (notify), qualification %#llx (context valid), IDT-vectoring %#x",
		      (unsigned long long)e.qual, e.vect_info);
	else if (!strict && timer_exit(&e) && vectoring_ac(&e))
		check("ac-storm-notify", 1,
		      "reason 1 (external interrupt, vector %#x) first: L0 intercepts #AC, so no notify exit; IDT-vectoring %#x",
		      TIMER_VECTOR, e.vect_info);
	else
		check("ac-storm-notify", 0,
		      "got %s qualification %#llx IDT-vectoring %#x error %#x, want reason 75 (notify) with qualification bit 0 clear and IDT-vectoring %#x%s",
		      exit_str(&e), (unsigned long long)e.qual, e.vect_info, e.vect_error,
		      VECTORING_AC, strict ? "" : " (or reason 1 from the timer)");
}

/* ------------------------------------------------------------ VMX on */

static int vmx_enable(void)
{
	struct cpuid_regs id = cpuid(1, 0);
	uint64_t fc = 0, fl = 0;
	int vec;

	if (!check("vmx-cpuid", (id.ecx >> 5) & 1, "CPUID.1:ECX %#x, VMX (bit 5) %u", id.ecx,
		   (id.ecx >> 5) & 1))
		return 0;
	/* SDM Vol. 3C §24.7: VMXON outside SMX needs IA32_FEATURE_CONTROL
	 * locked (bit 0) with bit 2 set; once locked, WRMSR to it is #GP. */
	vec = rdmsr_safe(MSR_FEATURE_CONTROL, &fc);
	if (!check("feature-control",
		   vec < 0 && (fc & (FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE)) ==
				      (FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE),
		   "IA32_FEATURE_CONTROL %#llx%s (want lock and VMX outside SMX)",
		   (unsigned long long)fc, vec < 0 ? "" : ", RDMSR faulted"))
		return 0;
	vec = wrmsr_safe(MSR_FEATURE_CONTROL, fc);
	check("feature-control-locked", vec == VEC_GP, "WRMSR to the locked MSR: %s",
	      vec == VEC_GP ? "#GP" : vec < 0 ? "no fault" : "fault other than #GP");

	if (!vmx_read_caps())
		return 0;
	uint32_t size = VMX_BASIC_SIZE(caps.basic), type = VMX_BASIC_MEMTYPE(caps.basic);
	if (!check("vmx-basic", caps.revision != 0 && size != 0 && size <= 4096 && type == 6,
		   "revision %u, %u-byte regions, memory type %u, INS/OUTS information %s, TRUE controls %s",
		   caps.revision, size, type, caps.basic & VMX_BASIC_INSOUTS ? "yes" : "no",
		   caps.basic & VMX_BASIC_TRUE_CTLS ? "yes" : "no"))
		return 0;

	struct l2_config c64 = benign_cfg();
	struct l2_config c32 = { .mode = L2_PROT32 };
	struct vmx_controls v64 = vmx_controls_for(&c64), v32 = vmx_controls_for(&c32);
	int ctl_ok = !(v64.missing_pin | v64.missing_proc | v64.missing_exit | v64.missing_entry |
		       v32.missing_entry);
	check("vmx-controls", ctl_ok,
	      "pin %#x, proc %#x, exit %#x, entry %#x (64-bit L2) / %#x (32-bit L2)%s", v64.pin,
	      v64.proc, v64.exit, v64.entry, v32.entry, ctl_ok ? "" : ": wanted bits missing");

	if (!fuzz_mode && !bench_mode)
		printf("l1: secondary controls may be 1: %#x, IA32_VMX_EPT_VPID_CAP %#llx, IA32_VMX_MISC %#llx\n",
		       (uint32_t)(caps.proc2 >> 32), (unsigned long long)caps.ept_vpid,
		       (unsigned long long)caps.misc);

	/* A MOV to CR4 setting a bit the processor does not have is #GP(0)
	 * (SDM Vol. 2B, MOV to/from Control Registers; Vol. 3A §2.5), VMXE in
	 * the same value or not; IA32_VMX_CR4_FIXED1 lists the bits it has
	 * (Vol. 3C Appendix A.8). Here PCIDE (bit 17), while CR4.VMXE is still
	 * clear as L1 sees it. CR4 keeps its value. */
	uint64_t cr4_old = read_cr4(), cr4_bad = cr4_old | CR4_VMXE | CR4_PCIDE;
	vec = write_cr4_safe(cr4_bad);
	uint64_t cr4_err = trap_error_code(), cr4_after = read_cr4();
	if (cr4_after != cr4_old)
		write_cr4_safe(cr4_old);
	if (caps.cr4_fixed1 & CR4_PCIDE)
		check("cr4-reserved-with-vmxe", 0,
		      "IA32_VMX_CR4_FIXED1 %#llx has PCIDE (bit 17): no unsupported bit to try",
		      (unsigned long long)caps.cr4_fixed1);
	else if (cr4_old & CR4_VMXE)
		check("cr4-reserved-with-vmxe", 0, "CR4 %#llx: VMXE already set before VMXON",
		      (unsigned long long)cr4_old);
	else
		check("cr4-reserved-with-vmxe", vec == VEC_GP && cr4_err == 0 && cr4_after == cr4_old,
		      "MOV %#llx (VMXE and PCIDE, which IA32_VMX_CR4_FIXED1 %#llx lacks) to CR4: %s, error %#llx; CR4 %#llx%s",
		      (unsigned long long)cr4_bad, (unsigned long long)caps.cr4_fixed1,
		      vec == VEC_GP ? "#GP" : vec < 0 ? "no fault" : "a fault other than #GP",
		      (unsigned long long)cr4_err, (unsigned long long)cr4_after,
		      cr4_after == cr4_old ? " (unchanged)" : ", want it unchanged");

	/* SDM Vol. 3C §24.8: CR0 and CR4 must honour the fixed-bit MSRs in VMX
	 * operation; here that means CR0.NE and CR4.VMXE. VMXE alone is fine. */
	uint64_t cr0 = (read_cr0() | caps.cr0_fixed0) & caps.cr0_fixed1;
	uint64_t cr4 = (read_cr4() | caps.cr4_fixed0) & caps.cr4_fixed1;
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
	vec = write_cr4_safe(cr4);
	if (!check("cr4-vmxe", vec < 0 && read_cr4() == cr4, "CR0 %#llx, CR4 %#llx%s",
		   (unsigned long long)read_cr0(), (unsigned long long)read_cr4(),
		   vec < 0 ? "" : ": MOV to CR4 faulted"))
		return 0;

	vec = vmxon_safe(vmxon_region_init(), &fl);
	if (vec >= 0)
		return check("vmxon", 0, "got vector %d, want VMsucceed", vec);
	return check("vmxon", vm_result(fl) == VM_SUCCEED, "%s (RFLAGS %#llx)",
		     vm_result(fl) == VM_SUCCEED ? "VMsucceed" : result_name(vm_result(fl)),
		     (unsigned long long)fl);
}

/* ------------------------------------------------------------ main */

int main(void)
{
	const struct mb_info *mb = (const struct mb_info *)(uintptr_t)boot_info;
	const char *cmd = (mb->flags & 4) ? (const char *)(uintptr_t)mb->cmdline : "";

	/* mem_upper: KiB of memory from 1 MiB up (multiboot flags bit 0). */
	l1_ram_end = (mb->flags & 1) ? 0x100000 + (uint64_t)mb->mem_upper * 1024 : 0;
	fuzz_mode = has_arg(cmd, "mode=fuzz");
	bench_mode = !fuzz_mode && has_arg(cmd, "mode=bench");
	expect_notify = has_arg(cmd, "expect=notify");
	expect_invalid = has_arg(cmd, "expect=invalid");
	printf("l1hv: a VMX hypervisor as L1%s\n",
	       fuzz_mode ? ", fuzz mode" :
	       bench_mode ? ", bench mode" :
	       expect_invalid ? ": #AC not intercepted by L0, first notify exit invalid" :
	       expect_notify ? ": #AC not intercepted by L0, notify exits expected" :
			       ": default expectations (L0 may intercept #AC)");

	l1_tables_init();
	if (!vmx_enable()) {
		if (fuzz_mode || bench_mode)
			exit(1);
		report_done();
	}
	if (bench_mode) {
		/* No APIC timer: nothing interrupts L1 or L2 but L0's own. */
		size_t what_len, loops_len;
		const char *what = arg_value(cmd, "what=", &what_len);
		const char *loops = arg_value(cmd, "loops=", &loops_len);
		bench_run(what, what_len, loops, loops_len);
	}
	uint32_t hz = lapic_init();
	if (!fuzz_mode)
		printf("l1: APIC timer at %u Hz (%s), vector %#x\n", hz,
		       lapic_hz_from_cpuid ? "CPUID.15H:ECX" : "assumed", TIMER_VECTOR);

	if (fuzz_mode) {
		const struct mb_module *m = (const struct mb_module *)(uintptr_t)mb->mods_addr;
		if (!(mb->flags & 8) || mb->mods_count < 1) {
			printf("fuzz: no module\n");
			exit(1);
		}
		fuzz_run((const void *)(uintptr_t)m[0].start, m[0].end - m[0].start);
	}

	payload_benign();
	payload_port_io();
	payload_ept();
	payload_triple_fault();
	payload_ac_storm_timer();
	payload_ac_storm_notify();
	vmx_error_checks();
	msr_list_checks();
	tsc_checks();
	mtf_checks();
	hlt_checks();
	pause_loop_checks();
	preemption_timer_checks();
	entry_checks();
	tpr_checks();
	nested_event_checks();
	vmx_leave();
	report_done();
}
