/*
 * eptad.c - accessed and dirty flags for EPT (SDM Vol. 3C §29.3.5) and
 * page-modification logging (§29.3.6), on the copy ept.c built.
 *
 * EPT C maps L2-physical [0, 2 MiB) with 4 KiB pages onto the copy, as
 * EPT A does, every page R/W/X and every flag clear, and its EPTP sets bit
 * 6. The eptad payload reads EPT_GPA_AD_READ and writes EPT_GPA_AD_WRITE:
 * the processor must set the accessed flag (bit 8) of every entry the
 * translations used, and the dirty flag (bit 9) of the written page's
 * leaf only. L2's page walks count as writes with the flags on, so the
 * leaf of the page at L2's CR3 is dirty too. L1 then clears the written
 * page's flags and executes INVEPT: a read sets the accessed flag alone,
 * the next write the dirty flag again.
 *
 * Then PML: the eptad-fill payload writes EPT_PML_FILL_PAGES clean pages
 * with a log of three free entries (PML index 2). Each newly dirty page is
 * logged at the index, which goes down; the fourth write finds the index
 * at 0xFFFF and is a page-modification log-full exit (reason 62) before
 * the write. L1 empties the log (index 511) and resumes: the write is made
 * again, and the last two pages are logged from entry 511 down.
 *
 * Last, the VM-entry checks on PML (§27.2.1.1): the log address must be
 * page-aligned, and PML needs EPT.
 */
#include "l1hv.h"
#include "payloads.h"

#define EPT_R           (1ull << 0)
#define EPT_W           (1ull << 1)
#define EPT_X           (1ull << 2)
#define EPT_RWX         (EPT_R | EPT_W | EPT_X)
#define EPT_MT_WB       (6ull << 3)
#define EPT_A           (1ull << 8)
#define EPT_D           (1ull << 9)
#define EPTP_MT_WB      6ull
#define EPTP_WALK_4     (3ull << 3)
#define EPTP_AD         (1ull << 6)
#define PAGE            4096ull
#define WATCHDOG_MS     100
/* What L1 plants in the log's entries before L2 runs. */
#define LOG_EMPTY       0xE9700000DEADull

static uint64_t ept_c_pml4[512] __attribute__((aligned(4096)));
static uint64_t ept_c_pdpt[512] __attribute__((aligned(4096)));
static uint64_t ept_c_pd[512] __attribute__((aligned(4096)));
static uint64_t ept_c_pt[512] __attribute__((aligned(4096)));
static uint64_t pml_log[512] __attribute__((aligned(4096)));

static uint64_t pa(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static uint64_t eptp_c(void)
{
	return pa(ept_c_pml4) | EPTP_WALK_4 | EPTP_MT_WB | EPTP_AD;
}

/* EPT C's leaf for L2-physical `gpa` in [0, 2 MiB). */
static volatile uint64_t *pte_c(uint64_t gpa)
{
	return &ept_c_pt[(gpa >> 12) & 511];
}

static uint64_t flags_of(uint64_t entry)
{
	return entry & (EPT_A | EPT_D);
}

static const char *flags_str(uint64_t entry)
{
	switch (flags_of(entry)) {
	case 0: return "none";
	case EPT_A: return "A";
	case EPT_D: return "D";
	default: return "A, D";
	}
}

static void build_ept_c(void)
{
	memset(ept_c_pml4, 0, sizeof(ept_c_pml4));
	memset(ept_c_pdpt, 0, sizeof(ept_c_pdpt));
	memset(ept_c_pd, 0, sizeof(ept_c_pd));
	ept_c_pml4[0] = pa(ept_c_pdpt) | EPT_RWX;
	ept_c_pdpt[0] = pa(ept_c_pd) | EPT_RWX;
	ept_c_pd[0] = pa(ept_c_pt) | EPT_RWX;
	for (uint64_t i = 0; i < 512; i++)
		ept_c_pt[i] = (EPT_L2_BASE + i * PAGE) | EPT_MT_WB | EPT_RWX;
}

static int invept_c(void)
{
	struct invept_desc d = { eptp_c(), 0 };
	uint64_t fl = 0;

	return invept_safe(INVEPT_SINGLE_CONTEXT, &d, &fl) < 0 && vm_result(fl) == VM_SUCCEED;
}

static struct l2_exit run(const char *payload, struct l2_regs *r, int launch)
{
	struct l2_exit e;

	lapic_arm_oneshot(WATCHDOG_MS);
	e = l2_run(payload, r, launch);
	if (is_exit(&e, EXIT_REASON_EXTERNAL_INTR) && (e.intr_info & INTR_INFO_VALID))
		lapic_eoi();
	lapic_disarm();
	return e;
}

/* Region `region` current and set up for the 64-bit `rip` under EPT C
 * with secondary controls `proc2`; 0 (a FAIL named `name`) if not. */
static int setup(unsigned region, uint64_t rip, uint32_t proc2, const char *name)
{
	struct l2_config c = { .mode = L2_LONG, .rip = rip, .rsp = pa(l2_stack_top),
			       .proc2 = proc2, .eptp = eptp_c() };

	return vmcs_make_current(vmcs_region(region), name) && vmcs_setup(&c, name);
}

static int caps_check(void)
{
	int ad = (caps.ept_vpid & EPT_CAP_AD) != 0;
	int pml = ((caps.proc2 >> 32) & PROC2_ENABLE_PML) != 0;

	return check("ept-ad-caps", ad && pml,
		     "IA32_VMX_EPT_VPID_CAP bit 21 (accessed and dirty flags): %s; secondary control 17 (enable PML) may be 1: %s",
		     ad ? "yes" : "no", pml ? "yes" : "no");
}

/* The read, the write, and what they left in EPT C; 1 if L2 is at its
 * first VMCALL. */
static int ad_first(struct l2_exit *e, struct l2_regs *r)
{
	uint64_t code = pa(l2_eptad), cr3;

	if (!setup(7, code, PROC2_ENABLE_EPT, "ept-ad-flags"))
		return 0;
	memset(r, 0, sizeof(*r));
	*e = run("eptad", r, 1);
	if (!is_exit(e, EXIT_REASON_VMCALL)) {
		check("ept-ad-flags", 0, "got %s, want reason 18 (VMCALL)", exit_str(e));
		return 0;
	}
	uint64_t rd = *pte_c(EPT_GPA_AD_READ), wr = *pte_c(EPT_GPA_AD_WRITE);
	uint64_t cd = *pte_c(code), idle = *pte_c(EPT_GPA_FILL);
	uint64_t upper = ept_c_pml4[0] & ept_c_pdpt[0] & ept_c_pd[0];
	check("ept-ad-flags",
	      flags_of(rd) == EPT_A && flags_of(wr) == (EPT_A | EPT_D) && flags_of(cd) == EPT_A &&
		      flags_of(idle) == 0 && (upper & EPT_A),
	      "leaf flags: page read %s, page written %s, code page %s, page untouched %s (want A; A, D; A; none); PML4E, PDPTE, PDE accessed: %s",
	      flags_str(rd), flags_str(wr), flags_str(cd), flags_str(idle),
	      upper & EPT_A ? "yes" : "no");

	cr3 = vmr(GUEST_CR3) & ~0xFFFull;
	uint64_t pt = cr3 < EPT_L2_SIZE ? *pte_c(cr3) : 0;
	check("ept-ad-paging-structure", cr3 < EPT_L2_SIZE && flags_of(pt) == (EPT_A | EPT_D),
	      "the leaf of L2's PML4 page (CR3 %#llx), which L2 only walked: %s (want A, D: page walks are writes with A/D on)",
	      (unsigned long long)cr3, flags_str(pt));
	return 1;
}

/* Flags cleared and INVEPT: a read, then a write. */
static void ad_again(struct l2_exit *e, struct l2_regs *r)
{
	int inv;

	*pte_c(EPT_GPA_AD_WRITE) &= ~(EPT_A | EPT_D);
	inv = invept_c();
	skip_instruction(e);
	*e = run("eptad", r, 0);
	uint64_t after_read = *pte_c(EPT_GPA_AD_WRITE);
	int ok = inv && is_exit(e, EXIT_REASON_VMCALL) && flags_of(after_read) == EPT_A;
	check("ept-ad-read-stays-clean", ok,
	      "L1 cleared A and D of the written page, INVEPT single-context: %s; L2 read it, then %s: flags %s (want A)",
	      inv ? "VMsucceed" : "failed", exit_str(e), flags_str(after_read));
	if (!is_exit(e, EXIT_REASON_VMCALL)) {
		check("ept-ad-dirty-again", 0, "not run: the step before it failed");
		return;
	}
	skip_instruction(e);
	*e = run("eptad", r, 0);
	uint64_t after_write = *pte_c(EPT_GPA_AD_WRITE);
	check("ept-ad-dirty-again",
	      is_exit(e, EXIT_REASON_VMCALL) && flags_of(after_write) == (EPT_A | EPT_D),
	      "L2 wrote it again, then %s: flags %s (want A, D)", exit_str(e),
	      flags_str(after_write));
}

static uint64_t fill_gpa(unsigned i)
{
	return EPT_GPA_FILL + i * PAGE;
}

/* The log-full exit: three pages logged from index 2 down. */
static int pml_until_full(struct l2_exit *e, struct l2_regs *r)
{
	const char *name = "ept-pml-full";

	for (unsigned i = 0; i < EPT_PML_FILL_PAGES; i++)
		*pte_c(fill_gpa(i)) &= ~(EPT_A | EPT_D);
	for (unsigned i = 0; i < 512; i++)
		pml_log[i] = LOG_EMPTY;
	if (!invept_c() ||
	    !setup(8, pa(l2_eptad_fill), PROC2_ENABLE_EPT | PROC2_ENABLE_PML, name))
		return check(name, 0, "INVEPT or the VMCS setup failed");
	vmw(PML_ADDRESS, pa(pml_log));
	vmw(GUEST_PML_INDEX, 2);
	memset(r, 0, sizeof(*r));
	*e = run("eptad-fill", r, 1);
	uint64_t index = vmr(GUEST_PML_INDEX), fourth = *pte_c(fill_gpa(3));
	int logged = pml_log[2] == fill_gpa(0) && pml_log[1] == fill_gpa(1) &&
		     pml_log[0] == fill_gpa(2) && pml_log[3] == LOG_EMPTY;
	int ok = is_exit(e, EXIT_REASON_PML_FULL) && e->qual == 0 &&
		 e->rip == pa(l2_eptad_fill_write) && r->rcx == EPT_PML_FILL_PAGES - 3 &&
		 index == 0xFFFF && logged && flags_of(fourth) == 0;
	check(name, ok,
	      "%s, qualification %#llx, at L2's write (%s) with RCX %llu; PML index %#llx; log[2..0] %#llx %#llx %#llx, log[3] %s; the fourth page's flags %s (want reason 62, 0, RCX %u, index 0xffff, pages %#x %#x %#x, log[3] untouched, none)",
	      exit_str(e), (unsigned long long)e->qual,
	      e->rip == pa(l2_eptad_fill_write) ? "same RIP" : "another RIP",
	      (unsigned long long)r->rcx, (unsigned long long)index,
	      (unsigned long long)pml_log[2], (unsigned long long)pml_log[1],
	      (unsigned long long)pml_log[0], pml_log[3] == LOG_EMPTY ? "untouched" : "written",
	      flags_str(fourth), EPT_PML_FILL_PAGES - 3, EPT_GPA_FILL, EPT_GPA_FILL + 0x1000,
	      EPT_GPA_FILL + 0x2000);
	return is_exit(e, EXIT_REASON_PML_FULL);
}

/* L1 empties the log and resumes: the rest is logged from 511 down. */
static void pml_resume(struct l2_exit *e, struct l2_regs *r)
{
	int landed = 1, dirty = 1;

	vmw(GUEST_PML_INDEX, 511);
	*e = run("eptad-fill", r, 0);
	for (unsigned i = 0; i < EPT_PML_FILL_PAGES; i++) {
		landed &= *(volatile uint64_t *)(uintptr_t)(EPT_L2_BASE + fill_gpa(i)) ==
			  EPT_PML_FILL_PAGES - i;
		dirty &= flags_of(*pte_c(fill_gpa(i))) == (EPT_A | EPT_D);
	}
	uint64_t index = vmr(GUEST_PML_INDEX);
	check("ept-pml-resume",
	      is_exit(e, EXIT_REASON_VMCALL) && index == 509 && pml_log[511] == fill_gpa(3) &&
		      pml_log[510] == fill_gpa(4) && landed && dirty,
	      "PML index 511, VMRESUME: %s; index %llu, log[511] %#llx, log[510] %#llx; every write landed: %s; every page A, D: %s (want VMCALL, 509, %#x, %#x)",
	      exit_str(e), (unsigned long long)index, (unsigned long long)pml_log[511],
	      (unsigned long long)pml_log[510], landed ? "yes" : "no", dirty ? "yes" : "no",
	      EPT_GPA_FILL + 0x3000, EPT_GPA_FILL + 0x4000);
}

/* §27.2.1.1: with "enable PML", the PML address has bits 11:0 clear and
 * "enable EPT" is 1; otherwise VMfailValid 7. */
static void pml_entry_checks(void)
{
	struct l2_regs r;
	struct l2_exit e;

	if (setup(10, pa(l2_eptad_fill), PROC2_ENABLE_EPT | PROC2_ENABLE_PML,
		  "ept-pml-vmlaunch-unaligned")) {
		vmw(PML_ADDRESS, pa(pml_log) | 8);
		memset(&r, 0, sizeof(r));
		e = run("eptad-fill (PML address not aligned)", &r, 1);
		want_entry_error("ept-pml-vmlaunch-unaligned",
				 "VMLAUNCH with a PML address 8 bytes into a page", &e,
				 VMERR_ENTRY_BAD_CONTROLS);
	}
	if (setup(10, pa(l2_eptad_fill), PROC2_ENABLE_PML, "ept-pml-vmlaunch-without-ept")) {
		vmw(PML_ADDRESS, pa(pml_log));
		memset(&r, 0, sizeof(r));
		e = run("eptad-fill (PML without EPT)", &r, 1);
		want_entry_error("ept-pml-vmlaunch-without-ept",
				 "VMLAUNCH with enable PML and not enable EPT", &e,
				 VMERR_ENTRY_BAD_CONTROLS);
	}
}

void eptad_checks(void)
{
	struct l2_exit e;
	struct l2_regs r;

	if (!caps_check())
		return;
	build_ept_c();
	if (ad_first(&e, &r))
		ad_again(&e, &r);
	if (pml_until_full(&e, &r))
		pml_resume(&e, &r);
	pml_entry_checks();
}
