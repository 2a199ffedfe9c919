/*
 * ept.c - the ept payloads: L2 under L1's EPT (SDM Vol. 3C §29.3).
 *
 * L1 backs L2-physical [0, 2 MiB) with 2 MiB of its own memory at
 * EPT_L2_BASE, holding a copy of the image at the same offsets: L2 runs
 * L1's code on L1's page tables (CR3 and every paging-structure address
 * are L2-physical), and none of those L2-physical addresses is the
 * L1-physical address behind it. Two EPTs, both 4-level walks with
 * write-back structures:
 *
 *   EPT A  4 KiB pages for [0, 2 MiB), every one on the copy except
 *            EPT_GPA_REMAP      on a page of L1's image outside the region
 *            EPT_GPA_UNMAPPED   not present
 *            EPT_GPA_READONLY   read-only
 *            EPT_GPA_MISCONFIG  write without read: misconfigured
 *          The 64-bit payload touches each; L1 gets the EPT violation or
 *          misconfiguration, repairs the entry, executes INVEPT and resumes
 *          L2 at the same RIP, so the access is made again (§29.3.3).
 *   EPT B  a 2 MiB page for [0, 2 MiB) on the copy, and a read-only 1 GiB
 *          page mapping L2-physical [1 GiB, 2 GiB) to L1-physical
 *          [0, 1 GiB): for the unrestricted guests, in 32-bit protected
 *          mode with paging off and in real-address mode; the real-mode
 *          one also clears CR0.NE, which is #GP without an error code.
 *
 *          Last, EPT_GPA_MMIO maps pc-testdev's MMIO buffer (L1-physical
 *          0xFF000000, not RAM): L2's MOV, ADD and LOCK INC there reach the
 *          device through L0's MMIO emulation.
 *
 * Then INVEPT's error cases (§31.3 INVEPT) and the VM-entry control checks
 * on EPT (§27.2.1.1).
 */
#include "l1hv.h"
#include "payloads.h"

/* EPT paging-structure entries (§29.3.2). Bits 5:3 of a leaf are its
 * memory type, and bit 7 makes a PDPTE or PDE a leaf; in the entries that
 * reference a table, bits 7:3 are reserved. */
#define EPT_R           (1ull << 0)
#define EPT_W           (1ull << 1)
#define EPT_X           (1ull << 2)
#define EPT_RWX         (EPT_R | EPT_W | EPT_X)
#define EPT_MT_WB       (6ull << 3)
#define EPT_PS          (1ull << 7)
/* EPTP (§25.6.11): structures' memory type in bits 2:0, walk length - 1
 * in 5:3, accessed/dirty flags in 6, bits 11:7 reserved. */
#define EPTP_MT_WB      6ull
#define EPTP_WALK_4     (3ull << 3)
#define EPTP_AD         (1ull << 6)

#define PAGE            4096ull

/* How long an L2 run may take before L1's APIC timer takes the CPU back:
 * an L2 gone astray under EPT ends as an external-interrupt exit (a FAIL)
 * instead of a hang. Each run is a few instructions. */
#define EPT_WATCHDOG_MS 100

/* L2 reads and writes it through EPT (payloads.S). */
uint64_t ept_marker;

static uint64_t ept_a_pml4[512] __attribute__((aligned(4096)));
static uint64_t ept_a_pdpt[512] __attribute__((aligned(4096)));
static uint64_t ept_a_pd[512] __attribute__((aligned(4096)));
static uint64_t ept_a_pt[512] __attribute__((aligned(4096)));
static uint64_t ept_b_pml4[512] __attribute__((aligned(4096)));
static uint64_t ept_b_pdpt[512] __attribute__((aligned(4096)));
static uint64_t ept_b_pd[512] __attribute__((aligned(4096)));
/* The L1 page behind EPT_GPA_REMAP. */
static uint64_t ept_remap_page[512] __attribute__((aligned(4096)));

extern char __image_start[], __image_end[]; /* link64.ld */

/* L1 is identity-mapped below 1 GiB: its linear addresses are physical. */
static uint64_t pa(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static void *l1_va(uint64_t pa)
{
	return (void *)(uintptr_t)pa;
}

/* Where L2-physical `gpa` in [0, 2 MiB) is in L1's copy. */
static void *copy_of(uint64_t gpa)
{
	return l1_va(EPT_L2_BASE + gpa);
}

static uint64_t eptp_of(const uint64_t *pml4)
{
	return pa(pml4) | EPTP_WALK_4 | EPTP_MT_WB;
}

static uint64_t leaf(uint64_t pa, uint64_t perms)
{
	return pa | EPT_MT_WB | perms;
}

static uint64_t *pte_a(uint64_t gpa)
{
	return &ept_a_pt[(gpa >> 12) & 511];
}

/* ------------------------------------------------------------ setup */

static int ept_caps_check(void)
{
	uint32_t may2 = (uint32_t)(caps.proc2 >> 32), want2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST;
	uint64_t want = EPT_CAP_WALK_4 | EPT_CAP_WB | EPT_CAP_2M | EPT_CAP_1G | EPT_CAP_INVEPT |
			EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL;

	if ((may2 & want2) == want2 && (caps.ept_vpid & want) == want)
		return check("ept-caps", 1,
			     "EPT and unrestricted guest may be 1; IA32_VMX_EPT_VPID_CAP %#llx: 4-level walks, WB, 2 MiB and 1 GiB pages, INVEPT single-context and all-context, execute-only %s, accessed/dirty flags %s",
			     (unsigned long long)caps.ept_vpid,
			     caps.ept_vpid & EPT_CAP_EXEC_ONLY ? "yes" : "no",
			     caps.ept_vpid & EPT_CAP_AD ? "yes" : "no");
	return check("ept-caps", 0,
		     "missing: secondary controls %#x, IA32_VMX_EPT_VPID_CAP bits %#llx (it reads %#llx)",
		     want2 & ~may2, (unsigned long long)(want & ~caps.ept_vpid),
		     (unsigned long long)caps.ept_vpid);
}

/* The copy, the words L2 looks for, and both EPTs. */
static int ept_build(void)
{
	uint64_t start = pa(__image_start), end = pa(__image_end);

	if (end > EPT_GPA_LOWEST_SPECIAL || l1_ram_end < EPT_L2_BASE + EPT_L2_SIZE)
		return check("ept-setup", 0,
			     "the image ends at %#llx (want at most %#x), RAM at %#llx (want at least %#x)",
			     (unsigned long long)end, EPT_GPA_LOWEST_SPECIAL,
			     (unsigned long long)l1_ram_end, EPT_L2_BASE + EPT_L2_SIZE);

	/* ept_marker is one thing in the copy and another in L1's image. */
	ept_marker = EPT_MARKER_COPY;
	memcpy(copy_of(start), l1_va(start), end - start);
	ept_marker = EPT_MARKER_L1;
	*(uint64_t *)copy_of(EPT_GPA_UNMAPPED) = EPT_WORD_UNMAPPED;
	*(uint64_t *)copy_of(EPT_GPA_READONLY) = EPT_WORD_READONLY;
	*(uint64_t *)copy_of(EPT_GPA_MISCONFIG) = EPT_WORD_MISCONFIG;
	ept_remap_page[0] = EPT_WORD_REMAP;
	memcpy(copy_of((uint64_t)EPT_REAL_CS << 4), l2_ept_real16,
	       (size_t)(l2_ept_real16_end - l2_ept_real16));
	*(uint32_t *)copy_of(((uint64_t)EPT_REAL_DS << 4) + EPT_REAL_DATA_OFF) = EPT_WORD_REAL;

	/* EPT A. Non-leaf entries allow everything; the leaves decide. */
	memset(ept_a_pml4, 0, sizeof(ept_a_pml4));
	memset(ept_a_pdpt, 0, sizeof(ept_a_pdpt));
	memset(ept_a_pd, 0, sizeof(ept_a_pd));
	ept_a_pml4[0] = pa(ept_a_pdpt) | EPT_RWX;
	ept_a_pdpt[0] = pa(ept_a_pd) | EPT_RWX;
	ept_a_pd[0] = pa(ept_a_pt) | EPT_RWX;
	for (uint64_t i = 0; i < 512; i++)
		ept_a_pt[i] = leaf(EPT_L2_BASE + i * PAGE, EPT_RWX);
	*pte_a(EPT_GPA_REMAP) = leaf(pa(ept_remap_page), EPT_R | EPT_W);
	*pte_a(EPT_GPA_UNMAPPED) = 0;
	*pte_a(EPT_GPA_READONLY) = leaf(EPT_L2_BASE + EPT_GPA_READONLY, EPT_R);
	/* Write without read is a misconfiguration whatever the processor
	 * supports (§29.3.3.1). */
	*pte_a(EPT_GPA_MISCONFIG) = leaf(EPT_L2_BASE + EPT_GPA_MISCONFIG, EPT_W);
	*pte_a(EPT_GPA_MMIO) = leaf(0xFF000000ull, EPT_R | EPT_W);

	/* EPT B: a 2 MiB page (PDE with bit 7) and a 1 GiB page (PDPTE with
	 * bit 7), each address aligned to its size. */
	memset(ept_b_pml4, 0, sizeof(ept_b_pml4));
	memset(ept_b_pdpt, 0, sizeof(ept_b_pdpt));
	memset(ept_b_pd, 0, sizeof(ept_b_pd));
	ept_b_pml4[0] = pa(ept_b_pdpt) | EPT_RWX;
	ept_b_pdpt[0] = pa(ept_b_pd) | EPT_RWX;
	ept_b_pd[0] = leaf(EPT_L2_BASE, EPT_RWX) | EPT_PS;
	ept_b_pdpt[EPT_GPA_1G_ALIAS >> 30] = leaf(0, EPT_R) | EPT_PS;
	return 1;
}

/* ------------------------------------------------------------ runs */

static struct l2_exit ept_run(const char *payload, struct l2_regs *r, int launch)
{
	struct l2_exit e;

	lapic_arm_oneshot(EPT_WATCHDOG_MS);
	e = l2_run(payload, r, launch);
	if (is_exit(&e, EXIT_REASON_EXTERNAL_INTR) && (e.intr_info & INTR_INFO_VALID))
		lapic_eoi();
	lapic_disarm();
	return e;
}

/* VMCS region `region` current and set up for `c` (a FAIL named `name` if
 * that fails: then 0), then the payload launched from zeroed registers *r;
 * 1 with its exit in *e. */
static int ept_launch(unsigned region, const struct l2_config *c, const char *name,
		      const char *payload, struct l2_regs *r, struct l2_exit *e)
{
	if (!vmcs_make_current(vmcs_region(region), name) || !vmcs_setup(c, name))
		return 0;
	memset(r, 0, sizeof(*r));
	*e = ept_run(payload, r, 1);
	return 1;
}

/* INVEPT single-context for EPT A, as a hypervisor does after changing an
 * entry (§29.4.3): 1 on VMsucceed. */
static int invept_a(uint64_t *fl)
{
	struct invept_desc d = { eptp_of(ept_a_pml4), 0 };
	int vec = invept_safe(INVEPT_SINGLE_CONTEXT, &d, fl);

	return vec < 0 && vm_result(*fl) == VM_SUCCEED;
}

static const char *invept_str(int ok, uint64_t fl)
{
	return ok ? "VMsucceed" : vm_result(fl) == VM_FAIL_VALID ? "VMfailValid" :
		  vm_result(fl) == VM_FAIL_INVALID ? "VMfailInvalid" : "a fault";
}

#define NOT_RUN "not run: the step before it failed"

/*
 * An EPT violation as L1 must see it: reason 48, GUEST_PHYSICAL_ADDRESS
 * and GUEST_LINEAR_ADDRESS the address touched (L2's linear addresses are
 * its physical ones here), RIP at the instruction. The qualification
 * (Table 28-7): the access in bits 2:0, what the EPT entries allowed in
 * 5:3 (0 when one was not present), bit 7 = linear address valid, bit 8 =
 * the access was to the translated address, not a paging structure, bit
 * 12 (NMI unblocking) 0. Bit 6 and bits 9-11 are left out: they are
 * defined only with mode-based execute control and with advanced VM-exit
 * information (IA32_VMX_EPT_VPID_CAP bit 22), neither of them in use.
 */
static void violation_check(const char *name, const struct l2_exit *e, uint64_t gpa,
			    uint32_t access, uint32_t perms, const char *insn, uint64_t rip)
{
	uint64_t want = access | perms << 3 | EPTQ_LINEAR_VALID | EPTQ_TRANSLATED;
	uint64_t mask = 0x11BF; /* bits 12, 8:7, 5:0 */

	if (is_exit(e, EXIT_REASON_EPT_VIOLATION) && e->gpa == gpa && (e->qual & mask) == want &&
	    e->linear == gpa && e->rip == rip)
		check(name, 1,
		      "reason 48 (EPT violation) at L2's %s: guest-physical %#llx, qualification %#llx (%s; entries allow %s%s%s; linear address valid, translated access)",
		      insn, (unsigned long long)gpa, (unsigned long long)e->qual,
		      access == EPTQ_READ ? "read" : "write", perms & 1 ? "R" : "", perms & 2 ? "W" : "",
		      perms ? "" : "nothing, not present");
	else
		check(name, 0,
		      "got %s guest-physical %#llx linear %#llx qualification %#llx rip %#llx, want reason 48 at %#llx, qualification %#llx (bits 12, 8:7, 5:0), rip %#llx",
		      exit_str(e), (unsigned long long)e->gpa, (unsigned long long)e->linear,
		      (unsigned long long)e->qual, (unsigned long long)e->rip,
		      (unsigned long long)gpa, (unsigned long long)want, (unsigned long long)rip);
}

/*
 * After an EPT exit on L2-physical `gpa`: L1 makes its entry in EPT A R/W
 * on the copy, executes INVEPT single-context and resumes L2 at the same
 * RIP, so the read is made again and must get `word` (then a VMCALL). `did`
 * says what L1 did, for the PASS line. 1 if all went so.
 */
static int ept_repair_rw(const char *name, uint64_t gpa, uint64_t word, const char *did,
			 struct l2_exit *e, struct l2_regs *r)
{
	uint64_t fl = 0;
	int inv, ok;

	*pte_a(gpa) = leaf(EPT_L2_BASE + gpa, EPT_R | EPT_W);
	inv = invept_a(&fl);
	*e = ept_run("ept", r, 0);
	ok = inv && vmcall_ok(e, r->rax, word);
	if (ok)
		check(name, 1, "%s: the read made again got %#llx", did, (unsigned long long)r->rax);
	else
		check(name, 0,
		      "INVEPT single-context: %s; then %s rax %#llx, want VMsucceed, then reason 18 (VMCALL) with %#llx",
		      invept_str(inv, fl), exit_str(e), (unsigned long long)r->rax,
		      (unsigned long long)word);
	return ok;
}

/* The 64-bit payload on EPT A; leaves its VMCS current. Returns 0 if the
 * VMCS could not be set up. */
static int ept_long(void)
{
	struct l2_config c = { .mode = L2_LONG, .rip = pa(l2_ept), .rsp = pa(l2_stack_top),
			       .proc2 = PROC2_ENABLE_EPT, .eptp = eptp_of(ept_a_pml4) };
	uint64_t marker_gpa = pa(&ept_marker), fl = 0, rax1 = 0;
	struct l2_exit e;
	struct l2_regs r;
	int alive, inv;

	/* Translation: L2 reads ept_marker, gets the copy's value, writes its
	 * own there; L1's variable keeps L1's value. */
	if (!ept_launch(7, &c, "ept-translation", "ept", &r, &e))
		return 0;
	rax1 = r.rax;
	alive = vmcall_ok(&e, r.rax, EPT_MARKER_COPY);
	if (is_exit(&e, EXIT_REASON_VMCALL)) {
		skip_instruction(&e);
		e = ept_run("ept", &r, 0);
	}
	uint64_t in_copy = *(volatile uint64_t *)copy_of(marker_gpa);
	volatile uint64_t *l1_marker = &ept_marker;
	if (alive && is_exit(&e, EXIT_REASON_VMCALL) && in_copy == EPT_MARKER_L2 &&
	    *l1_marker == EPT_MARKER_L1)
		check("ept-translation", 1,
		      "L2-physical %#llx is L1-physical %#llx: L2 read %#llx there (L1's own variable holds %#llx), and its write of %#llx landed there",
		      (unsigned long long)marker_gpa, (unsigned long long)(EPT_L2_BASE + marker_gpa),
		      (unsigned long long)rax1, (unsigned long long)*l1_marker,
		      (unsigned long long)in_copy);
	else
		check("ept-translation", 0,
		      "L2 read %#llx (want %#llx), then %s; the copy holds %#llx (want %#llx), L1's variable %#llx (want %#llx)",
		      (unsigned long long)rax1, (unsigned long long)EPT_MARKER_COPY, exit_str(&e),
		      (unsigned long long)in_copy, (unsigned long long)EPT_MARKER_L2,
		      (unsigned long long)*l1_marker, (unsigned long long)EPT_MARKER_L1);

	/* A 4 KiB page elsewhere: L2-physical EPT_GPA_REMAP. */
	alive = vmcall_ok(&e, r.rax, EPT_WORD_REMAP);
	if (alive)
		check("ept-remap", 1,
		      "L2-physical %#x is L1-physical %#llx (a page of L1's image): L2 read %#llx",
		      EPT_GPA_REMAP, (unsigned long long)pa(ept_remap_page),
		      (unsigned long long)r.rax);
	else
		check("ept-remap", 0, "got %s rax %#llx, want reason 18 (VMCALL) with %#llx",
		      exit_str(&e), (unsigned long long)r.rax, (unsigned long long)EPT_WORD_REMAP);

	/* Not present: a read, nothing allowed. */
	if (is_exit(&e, EXIT_REASON_VMCALL)) {
		skip_instruction(&e);
		e = ept_run("ept", &r, 0);
	}
	violation_check("ept-violation-read", &e, EPT_GPA_UNMAPPED, EPTQ_READ, 0, "MOV from memory",
			pa(l2_ept_read_unmapped));
	alive = is_exit(&e, EXIT_REASON_EPT_VIOLATION) && e.gpa == EPT_GPA_UNMAPPED;

	/* L1 maps the page and resumes without touching RIP: the MOV again. */
	if (!alive)
		check("ept-violation-retry", 0, NOT_RUN);
	else
		alive = ept_repair_rw("ept-violation-retry", EPT_GPA_UNMAPPED, EPT_WORD_UNMAPPED,
				      "L1 mapped it R/W, INVEPT single-context: VMsucceed, VMRESUME at the same RIP",
				      &e, &r);

	/* Read-only: the read goes through, the write does not. */
	if (alive) {
		skip_instruction(&e);
		e = ept_run("ept", &r, 0);
		violation_check("ept-violation-write", &e, EPT_GPA_READONLY, EPTQ_WRITE, EPT_R,
				"MOV to memory", pa(l2_ept_write_ro));
		alive = is_exit(&e, EXIT_REASON_EPT_VIOLATION) && e.gpa == EPT_GPA_READONLY;
	} else {
		check("ept-violation-write", 0, NOT_RUN);
	}
	if (!alive) {
		check("ept-violation-write-retry", 0, NOT_RUN);
	} else {
		*pte_a(EPT_GPA_READONLY) |= EPT_W;
		inv = invept_a(&fl);
		e = ept_run("ept", &r, 0);
		uint64_t now = *(volatile uint64_t *)copy_of(EPT_GPA_READONLY);
		alive = inv && vmcall_ok(&e, r.rax, EPT_WORD_READONLY) && now == EPT_WORD_L2_WRITE;
		if (alive)
			check("ept-violation-write-retry", 1,
			      "L1 made it writable, INVEPT single-context: VMsucceed, VMRESUME: L2 had read %#llx, its write of %#llx landed",
			      (unsigned long long)r.rax, (unsigned long long)now);
		else
			check("ept-violation-write-retry", 0,
			      "INVEPT single-context: %s; then %s rax %#llx, page holds %#llx; want VMsucceed, reason 18 (VMCALL) with %#llx, page %#llx",
			      invept_str(inv, fl), exit_str(&e), (unsigned long long)r.rax,
			      (unsigned long long)now, (unsigned long long)EPT_WORD_READONLY,
			      (unsigned long long)EPT_WORD_L2_WRITE);
	}

	/* Misconfigured: reason 49 with the address in GUEST_PHYSICAL_ADDRESS.
	 * §28.2.1 lists the exits that save an exit qualification, and EPT
	 * misconfigurations are not among them: "for all other VM exits, this
	 * field is cleared". */
	if (alive) {
		skip_instruction(&e);
		e = ept_run("ept", &r, 0);
		alive = is_exit(&e, EXIT_REASON_EPT_MISCONFIG) && e.gpa == EPT_GPA_MISCONFIG &&
			e.rip == pa(l2_ept_read_misconfig);
		if (alive && e.qual == 0)
			check("ept-misconfig", 1,
			      "EPT entry with W = 1, R = 0: reason 49 (EPT misconfiguration) at L2's MOV from memory, guest-physical %#llx, qualification 0",
			      (unsigned long long)e.gpa);
		else
			check("ept-misconfig", 0,
			      "got %s guest-physical %#llx qualification %#llx rip %#llx, want reason 49 at %#x, qualification 0, rip %#llx",
			      exit_str(&e), (unsigned long long)e.gpa, (unsigned long long)e.qual,
			      (unsigned long long)e.rip, EPT_GPA_MISCONFIG,
			      (unsigned long long)pa(l2_ept_read_misconfig));
	} else {
		check("ept-misconfig", 0, NOT_RUN);
	}
	if (!alive)
		check("ept-misconfig-retry", 0, NOT_RUN);
	else
		alive = ept_repair_rw("ept-misconfig-retry", EPT_GPA_MISCONFIG, EPT_WORD_MISCONFIG,
				      "L1 made the entry R/W, INVEPT single-context: VMsucceed, VMRESUME",
				      &e, &r);

	/* MMIO behind L1's EPT: MOV 0x10, ADD 5, LOCK INC, then the load. */
	if (alive) {
		skip_instruction(&e);
		e = ept_run("ept", &r, 0);
		if (vmcall_ok(&e, r.rax & 0xFFFFFFFF, 0x16))
			check("ept-mmio", 1,
			      "L2-physical %#x is L1-physical 0xff000000 (pc-testdev): MOV, ADD, LOCK INC there, then read back %#llx",
			      EPT_GPA_MMIO, (unsigned long long)(r.rax & 0xFFFFFFFF));
		else
			check("ept-mmio", 0, "got %s rax %#llx, want reason 18 (VMCALL) with 0x16",
			      exit_str(&e), (unsigned long long)r.rax);
	} else {
		check("ept-mmio", 0, NOT_RUN);
	}
	return 1;
}

/* INVEPT (§31.3): types 1 and 2 are the ones IA32_VMX_EPT_VPID_CAP
 * offers; type 1 wants an EPTP that VM entry would accept. A current VMCS
 * is needed for VMfailValid. */
static void ept_invept_checks(void)
{
	struct invept_desc d = { eptp_of(ept_a_pml4), 0 };
	uint64_t fl = 0;
	int vec;

	vec = invept_safe(INVEPT_ALL_CONTEXT, &d, &fl);
	check("ept-invept-all-context", vec < 0 && vm_result(fl) == VM_SUCCEED,
	      "INVEPT type 2 (all contexts): %s", vec >= 0 ? "a fault" : invept_str(vm_result(fl) == VM_SUCCEED, fl));

	vec = invept_safe(3, &d, &fl);
	if (vec >= 0)
		check("ept-invept-type-3", 0, "INVEPT type 3: vector %d, want VMfailValid 28", vec);
	else
		want_fail_valid("ept-invept-type-3", "INVEPT type 3", fl, VMERR_INVALID_INVEPT_INVVPID);

	/* Bit 6 of an EPTP enables accessed and dirty flags: it must be 0
	 * unless IA32_VMX_EPT_VPID_CAP bit 21 offers them (§25.6.11); bits
	 * 11:7 are reserved either way. */
	int ad = (caps.ept_vpid & EPT_CAP_AD) != 0;
	d.eptp |= ad ? 1ull << 7 : EPTP_AD;
	vec = invept_safe(INVEPT_SINGLE_CONTEXT, &d, &fl);
	if (vec >= 0)
		check("ept-invept-bad-eptp", 0, "INVEPT type 1: vector %d, want VMfailValid 28", vec);
	else
		want_fail_valid("ept-invept-bad-eptp",
				ad ? "INVEPT type 1 with EPTP bit 7 (reserved) set" :
				     "INVEPT type 1 with EPTP bit 6 (A/D, not offered) set",
				fl, VMERR_INVALID_INVEPT_INVVPID);
}

/* The GUEST_CR0 L2 exited with, as PE/PG. */
static const char *pe_pg(uint64_t cr0)
{
	return (cr0 & CR0_PE) ? (cr0 & CR0_PG) ? "PE = 1, PG = 1" : "PE = 1, PG = 0" :
		(cr0 & CR0_PG) ? "PE = 0, PG = 1" : "PE = 0, PG = 0";
}

static void ept_flat32(void)
{
	struct l2_config c = { .mode = L2_FLAT32, .rip = pa(l2_ept_flat32), .rsp = pa(l2_stack_top),
			       .proc2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST,
			       .eptp = eptp_of(ept_b_pml4) };
	uint32_t want_eax = (uint32_t)EPT_MARKER_L2, want_edx = (uint32_t)EPT_MARKER_L1;
	struct l2_exit e;
	struct l2_regs r;

	if (!ept_launch(8, &c, "ept-unrestricted-flat32", "ept-flat32", &r, &e))
		return;
	uint64_t cr0 = vmr(GUEST_CR0);
	/* A 32-bit guest's VM exit leaves bits 63:32 of the GPRs undefined
	 * as far as L2 is concerned: compare the low halves. */
	if (is_exit(&e, EXIT_REASON_VMCALL) && (uint32_t)r.rax == want_eax &&
	    (uint32_t)r.rdx == want_edx && (cr0 & (CR0_PE | CR0_PG)) == CR0_PE)
		check("ept-unrestricted-flat32", 1,
		      "CR0 %#llx (%s): ept_marker through the 2 MiB page %#x (the copy), through the 1 GiB page %#x (L1's)",
		      (unsigned long long)cr0, pe_pg(cr0), (uint32_t)r.rax, (uint32_t)r.rdx);
	else
		check("ept-unrestricted-flat32", 0,
		      "got %s eax %#x edx %#x CR0 %#llx (%s), want reason 18 (VMCALL) with eax %#x edx %#x, PE = 1, PG = 0",
		      exit_str(&e), (uint32_t)r.rax, (uint32_t)r.rdx, (unsigned long long)cr0,
		      pe_pg(cr0), want_eax, want_edx);
}

static void ept_real16(void)
{
	struct l2_config c = { .mode = L2_REAL16, .rip = 0, .rsp = 0,
			       .proc2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST,
			       .eptp = eptp_of(ept_b_pml4), .real_cs = EPT_REAL_CS,
			       .real_ds = EPT_REAL_DS };
	uint64_t vmcall_ip = (uint64_t)(l2_ept_real16_vmcall - l2_ept_real16);
	struct l2_exit e;
	struct l2_regs r;

	if (!ept_launch(9, &c, "ept-unrestricted-real", "ept-real16", &r, &e))
		return;
	uint64_t cr0 = vmr(GUEST_CR0);
	if (is_exit(&e, EXIT_REASON_VMCALL) && (uint32_t)r.rax == EPT_WORD_REAL &&
	    e.rip == vmcall_ip && e.insn_len == 3 && !(cr0 & (CR0_PE | CR0_PG)))
		check("ept-unrestricted-real", 1,
		      "CR0 %#llx (%s): VMCALL at %04x:%04llx with eax %#x, read at %04x:%04x = L2-physical %#x",
		      (unsigned long long)cr0, pe_pg(cr0), EPT_REAL_CS, (unsigned long long)e.rip,
		      (uint32_t)r.rax, EPT_REAL_DS, EPT_REAL_DATA_OFF,
		      (EPT_REAL_DS << 4) + EPT_REAL_DATA_OFF);
	else
		check("ept-unrestricted-real", 0,
		      "got %s eax %#x ip %#llx length %u CR0 %#llx (%s), want reason 18 (VMCALL) at ip %#llx with eax %#x, PE = PG = 0",
		      exit_str(&e), (uint32_t)r.rax, (unsigned long long)e.rip, e.insn_len,
		      (unsigned long long)cr0, pe_pg(cr0), (unsigned long long)vmcall_ip,
		      EPT_WORD_REAL);
}

/*
 * The real-mode L2 again, from its second entry point: a MOV of 0x10 to
 * CR0, which clears NE. An unrestricted guest is exempt from the PE and
 * PG fixed bits only; NE stays fixed to 1 (§24.8, §26.3, Appendix A.7), so
 * the MOV is #GP and CR0 keeps its value. L1 intercepts #GP. In real-address
 * mode an exception pushes no error code, and VM entry refuses to deliver
 * one there (§27.2.1.3): reason 0 with interruption information valid |
 * hardware exception | 13 and bit 11 (error code valid) clear, GUEST_RIP
 * at the MOV. As for every ept run, L1's APIC timer is armed: should the
 * run never come back on its own, L1 gets an external-interrupt exit (a
 * FAIL) - provided L0 still delivers L1's interrupts.
 */
static void ept_real16_cr0_ne(void)
{
	static const char name[] = "l2-real-mode-cr0-ne-fault";
	struct l2_config c = { .mode = L2_REAL16,
			       .rip = (uint64_t)(l2_ept_real16_cr0 - l2_ept_real16), .rsp = 0,
			       .proc2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST,
			       .eptp = eptp_of(ept_b_pml4), .real_cs = EPT_REAL_CS,
			       .real_ds = EPT_REAL_DS };
	uint64_t mov_ip = (uint64_t)(l2_ept_real16_cr0_mov - l2_ept_real16), cr0_before, cr0;
	uint32_t want = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_GP;
	struct l2_exit e;
	struct l2_regs r;

	if (!vmcs_make_current(vmcs_region(14), name) || !vmcs_setup(&c, name))
		return;
	vmw(EXCEPTION_BITMAP, 1u << VEC_GP);
	cr0_before = vmr(GUEST_CR0);
	memset(&r, 0, sizeof(r));
	e = ept_run("ept-real16 (MOV 0x10 to CR0: NE clear)", &r, 1);
	cr0 = vmr(GUEST_CR0);
	if (is_exit(&e, EXIT_REASON_EXCEPTION_NMI) && e.intr_info == want && e.rip == mov_ip &&
	    cr0 == cr0_before)
		check(name, 1,
		      "MOV %#x to CR0 at %04x:%04llx in real mode (CR0 %#llx, %s): reason 0, interruption info %#x (#GP, no error code), CR0 unchanged",
		      (uint32_t)r.rax, EPT_REAL_CS, (unsigned long long)e.rip,
		      (unsigned long long)cr0, pe_pg(cr0), e.intr_info);
	else
		check(name, 0,
		      "MOV %#x to CR0 in real mode (CR0 %#llx): got %s interruption info %#x ip %#llx CR0 %#llx; want reason 0, %#x (#GP, error code not valid), ip %#llx, CR0 unchanged",
		      (uint32_t)r.rax, (unsigned long long)cr0_before, exit_str(&e), e.intr_info,
		      (unsigned long long)e.rip, (unsigned long long)cr0, want,
		      (unsigned long long)mov_ip);
}

/* VM-entry checks on the controls (§27.2.1.1): the EPTP's memory type must
 * be one IA32_VMX_EPT_VPID_CAP offers (bit 8 UC, bit 14 WB), and
 * unrestricted guest needs enable EPT. Either failure is VMfailValid 7. */
static void ept_entry_checks(void)
{
	int uc = (caps.ept_vpid & EPT_CAP_UC) != 0;
	struct l2_config c = { .mode = L2_LONG, .rip = pa(l2_ept), .rsp = pa(l2_stack_top),
			       .proc2 = PROC2_ENABLE_EPT,
			       .eptp = (eptp_of(ept_a_pml4) & ~7ull) | (uc ? 1 : 0) };
	struct l2_regs r;
	struct l2_exit e;
	char what[96];

	if (ept_launch(10, &c, "ept-vmlaunch-bad-eptp", "ept (bad EPTP)", &r, &e)) {
		snprintf(what, sizeof(what), "VMLAUNCH with EPTP %#llx (memory type %s)",
			 (unsigned long long)c.eptp, uc ? "1, reserved" : "0, UC not offered");
		want_entry_error("ept-vmlaunch-bad-eptp", what, &e, VMERR_ENTRY_BAD_CONTROLS);
	}

	c.proc2 = PROC2_UNRESTRICTED_GUEST;
	c.eptp = 0;
	if (ept_launch(10, &c, "ept-vmlaunch-unrestricted-without-ept",
		       "ept (unrestricted guest, no EPT)", &r, &e)) {
		want_entry_error("ept-vmlaunch-unrestricted-without-ept",
				 "VMLAUNCH with unrestricted guest and not enable EPT", &e,
				 VMERR_ENTRY_BAD_CONTROLS);
	}
}

void payload_ept(void)
{
	if (!ept_caps_check() || !ept_build())
		return;
	if (ept_long())
		ept_invept_checks();
	ept_flat32();
	ept_real16();
	ept_real16_cr0_ne();
	ept_entry_checks();
	eptad_checks();
}
