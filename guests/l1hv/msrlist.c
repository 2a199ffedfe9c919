/*
 * msrlist.c - the msr-lists checks: the VM-entry MSR-load list, the VM-exit
 * MSR-store and MSR-load lists (SDM Vol. 3C §25.7.2, §25.8.2), their
 * processing at VM entry (§27.4) and VM exit (§28.4, §28.6), the VM-entry
 * checks on their addresses (§27.2.1.2, §27.2.1.3, VMfailValid 7), and
 * the VM-entry failure an entry that cannot be loaded makes (exit reason
 * 34, the qualification the entry's 1-based number, §27.8), which still
 * loads the VM-exit MSR-load list with the host state.
 *
 * Each check launches the benign payload in a fresh VMCS (region 8).
 */
#include "l1hv.h"
#include "payloads.h"

#define MSR_STAR             0xC0000081
#define MSR_FS_BASE          0xC0000100
#define MSR_KERNEL_GS_BASE   0xC0000102
#define MSR_SYSENTER_ESP     0x175
#define MSR_SMM_MONITOR_CTL  0x9B
#define MSR_X2APIC_TPR       0x808
#define MSR_PAT              0x277
#define EXIT_SAVE_PAT        (1u << 18)
#define EXIT_LOAD_PAT        (1u << 19)
#define ENTRY_LOAD_PAT       (1u << 14)

struct msr_entry {
	uint32_t index, reserved;
	uint64_t data;
};

/* 513 entries: one more than 512 x (IA32_VMX_MISC[27:25] + 1) when that
 * field is 0. */
#define BIG_LIST 513
static struct msr_entry entry_load[BIG_LIST] __attribute__((aligned(16)));
static struct msr_entry exit_store[4] __attribute__((aligned(16)));
static struct msr_entry exit_load[4] __attribute__((aligned(16)));

static uint64_t pa(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* A fresh benign VMCS in region 8; 0 (reported as `name`) on failure. */
static int fresh(const char *name)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };

	return vmcs_make_current(vmcs_region(8), name) && vmcs_setup(&c, name);
}

static void lists(uint32_t n_entry, uint32_t n_store, uint32_t n_load)
{
	vmw(VM_ENTRY_MSR_LOAD_ADDR, pa(entry_load));
	vmw(VM_ENTRY_MSR_LOAD_COUNT, n_entry);
	vmw(VM_EXIT_MSR_STORE_ADDR, pa(exit_store));
	vmw(VM_EXIT_MSR_STORE_COUNT, n_store);
	vmw(VM_EXIT_MSR_LOAD_ADDR, pa(exit_load));
	vmw(VM_EXIT_MSR_LOAD_COUNT, n_load);
}

static void set(struct msr_entry *e, uint32_t index, uint64_t data)
{
	e->index = index;
	e->reserved = 0;
	e->data = data;
}

static struct l2_exit launch(const char *payload)
{
	struct l2_regs r;

	memset(&r, 0, sizeof(r));
	return l2_run(payload, &r, 1);
}

/* Entry load, exit store and exit load seen together: L2 runs with the
 * entry list's IA32_KERNEL_GS_BASE and IA32_SYSENTER_ESP (the exit stores
 * them, and saves SYSENTER_ESP into the guest-state area), and L1 comes
 * back with the exit list's IA32_KERNEL_GS_BASE. */
static void round_trip(void)
{
	const char *name = "msr-lists-round-trip";
	uint64_t l1_kgs = rdmsr(MSR_KERNEL_GS_BASE), guest_fs, esp, kgs;
	struct l2_exit e;

	if (!fresh(name))
		return;
	set(&entry_load[0], MSR_KERNEL_GS_BASE, 0xFFFF800012345000ull);
	set(&entry_load[1], MSR_SYSENTER_ESP, 0x7000);
	set(&exit_store[0], MSR_KERNEL_GS_BASE, 0);
	set(&exit_store[1], MSR_SYSENTER_ESP, 0);
	set(&exit_store[2], MSR_FS_BASE, 0);
	set(&exit_load[0], MSR_KERNEL_GS_BASE, 0x5A5A000);
	guest_fs = vmr(GUEST_FS_BASE);
	lists(2, 3, 1);
	e = launch("benign (MSR lists)");
	kgs = rdmsr(MSR_KERNEL_GS_BASE);
	esp = vmr(GUEST_SYSENTER_ESP);
	wrmsr(MSR_KERNEL_GS_BASE, l1_kgs);
	check(name,
	      is_exit(&e, EXIT_REASON_VMCALL) && exit_store[0].data == 0xFFFF800012345000ull &&
		      exit_store[1].data == 0x7000 && exit_store[2].data == guest_fs &&
		      esp == 0x7000 && kgs == 0x5A5A000,
	      "%s; stored KERNEL_GS_BASE %#llx SYSENTER_ESP %#llx FS_BASE %#llx (want %#llx), "
	      "GUEST_SYSENTER_ESP %#llx, L1's KERNEL_GS_BASE after the exit %#llx",
	      exit_str(&e), (unsigned long long)exit_store[0].data,
	      (unsigned long long)exit_store[1].data, (unsigned long long)exit_store[2].data,
	      (unsigned long long)guest_fs, (unsigned long long)esp, (unsigned long long)kgs);
}

/* A VM-entry failure on entry `number` of the entry list (reason 34 with
 * bit 31, qualification = number); the exit list loads L1's
 * IA32_KERNEL_GS_BASE all the same. */
static void load_fails(const char *name, const char *what, uint32_t count, uint32_t number)
{
	uint32_t want = EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_MSR_LOADING;
	uint64_t l1_kgs = rdmsr(MSR_KERNEL_GS_BASE), kgs;
	struct l2_exit e;

	set(&exit_load[0], MSR_KERNEL_GS_BASE, 0x6B6B000 + number);
	lists(count, 0, 1);
	e = launch("benign (bad MSR-load entry)");
	kgs = rdmsr(MSR_KERNEL_GS_BASE);
	wrmsr(MSR_KERNEL_GS_BASE, l1_kgs);
	check(name, e.result == VM_SUCCEED && e.reason == want && e.qual == number &&
			    kgs == 0x6B6B000 + number,
	      "%s: %s, want reason %#x qualification %u; L1's KERNEL_GS_BASE %#llx", what,
	      exit_str(&e), want, number, (unsigned long long)kgs);
}

/* The entry list's entry 2 (after a good one) is `index`, `reserved`, `data`. */
static void bad_entry(const char *name, const char *what, uint32_t index, uint32_t reserved,
		      uint64_t data)
{
	if (!fresh(name))
		return;
	set(&entry_load[0], MSR_STAR, 0);
	set(&entry_load[1], index, data);
	entry_load[1].reserved = reserved;
	load_fails(name, what, 2, 2);
}

/* VMfailValid 7 for an MSR area that is misaligned or reaches beyond the
 * physical-address width. */
static void bad_area(const char *name, const char *what, uint32_t addr_field,
		     uint32_t count_field, uint64_t addr, uint32_t count)
{
	struct l2_exit e;

	if (!fresh(name))
		return;
	vmw(addr_field, addr);
	vmw(count_field, count);
	e = launch("benign (bad MSR area)");
	want_entry_error(name, what, &e, VMERR_ENTRY_BAD_CONTROLS);
}

/* "load IA32_PAT" at entry, "save IA32_PAT" and "load IA32_PAT" at exit:
 * L2 runs with vmcs12's guest PAT (the exit saves it back), L1 comes back
 * with the host PAT. */
static void pat_load_save(void)
{
	const char *name = "pat-load-save";
	const uint64_t guest = 0x0606060606060606ull, host = 0x0007010600070106ull;
	uint64_t l1_pat = rdmsr(MSR_PAT), after, saved;
	uint32_t exit_ctls = EXIT_SAVE_PAT | EXIT_LOAD_PAT;
	struct l2_exit e;

	if (!check("pat-controls-offered", ((caps.exit >> 32) & exit_ctls) == exit_ctls &&
				 ((caps.entry >> 32) & ENTRY_LOAD_PAT),
		   "save/load IA32_PAT offered") ||
	    !fresh(name))
		return;
	vmw(VM_ENTRY_CONTROLS, vmr(VM_ENTRY_CONTROLS) | ENTRY_LOAD_PAT);
	vmw(VM_EXIT_CONTROLS, vmr(VM_EXIT_CONTROLS) | exit_ctls);
	vmw(GUEST_IA32_PAT, guest);
	vmw(HOST_IA32_PAT, host);
	e = launch("benign (PAT)");
	after = rdmsr(MSR_PAT);
	saved = vmr(GUEST_IA32_PAT);
	wrmsr(MSR_PAT, l1_pat);
	check(name, is_exit(&e, EXIT_REASON_VMCALL) && saved == guest && after == host,
	      "%s; saved guest PAT %#llx (want %#llx), L1's PAT after the exit %#llx (want %#llx)",
	      exit_str(&e), (unsigned long long)saved, (unsigned long long)guest,
	      (unsigned long long)after, (unsigned long long)host);
}

void msr_list_checks(void)
{
	uint32_t max = 512u * (uint32_t)(((caps.misc >> 25) & 7) + 1);
	uint32_t width = cpuid(0x80000008, 0).eax & 0xFF;
	uint64_t beyond = 1ull << width, l1_star = rdmsr(MSR_STAR);

	round_trip();
	pat_load_save();
	bad_entry("msr-load-fs-base", "IA32_FS_BASE in the VM-entry MSR-load list",
		  MSR_FS_BASE, 0, 0);
	bad_entry("msr-load-gs-base", "IA32_GS_BASE in the VM-entry MSR-load list",
		  0xC0000101, 0, 0);
	bad_entry("msr-load-smbase", "IA32_SMBASE (0x9E) in the VM-entry MSR-load list", 0x9E, 0, 0);
	bad_entry("msr-load-efer-lme-under-paging",
		  "IA32_EFER with LME clear for a paged 64-bit L2 (WRMSR #GP)", 0xC0000080, 0, 1);
	bad_entry("msr-load-reserved", "an entry with bits 63:32 set", MSR_STAR, 1, 0);
	bad_entry("msr-load-x2apic", "x2APIC MSR 0x808", MSR_X2APIC_TPR, 0, 0);
	bad_entry("msr-load-smm", "IA32_SMM_MONITOR_CTL (SMM only)", MSR_SMM_MONITOR_CTL, 0, 0);
	bad_entry("msr-load-gp", "a non-canonical IA32_KERNEL_GS_BASE (WRMSR #GP)",
		  MSR_KERNEL_GS_BASE, 0, 0x0000800000000000ull);
	if (max + 1 > BIG_LIST) {
		check("msr-load-count-limit", 0, "IA32_VMX_MISC allows %u entries; the list holds %u",
		      max, BIG_LIST);
	} else if (fresh("msr-load-count-limit")) {
		for (uint32_t i = 0; i <= max; i++)
			set(&entry_load[i], MSR_STAR, 0);
		load_fails("msr-load-count-limit", "one entry beyond 512 x (IA32_VMX_MISC[27:25] + 1)",
			   max + 1, max + 1);
	}
	bad_area("msr-area-entry-unaligned", "VM-entry MSR-load address not 16-byte aligned",
		 VM_ENTRY_MSR_LOAD_ADDR, VM_ENTRY_MSR_LOAD_COUNT, pa(entry_load) + 8, 1);
	bad_area("msr-area-store-width", "VM-exit MSR-store address beyond the physical-address width",
		 VM_EXIT_MSR_STORE_ADDR, VM_EXIT_MSR_STORE_COUNT, beyond, 1);
	bad_area("msr-area-load-last-byte",
		 "VM-exit MSR-load area whose last byte is beyond the physical-address width",
		 VM_EXIT_MSR_LOAD_ADDR, VM_EXIT_MSR_LOAD_COUNT, beyond - 16, 2);
	wrmsr(MSR_STAR, l1_star);
}
