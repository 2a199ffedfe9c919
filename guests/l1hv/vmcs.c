/*
 * vmcs.c - capabilities, VMCS regions, and the control, host-state and
 * guest-state fields of every l1hv VMCS.
 */
#include "l1hv.h"
#include "payloads.h"

struct vmx_caps caps;

/* ------------------------------------------------------------ capabilities */

static int read_cap(uint32_t msr, uint64_t *v)
{
	int vec = rdmsr_safe(msr, v);

	if (vec >= 0)
		check("vmx-capability-msrs", 0, "rdmsr %#x raised vector %d", msr, vec);
	return vec < 0;
}

int vmx_read_caps(void)
{
	int true_ctls;

	if (!read_cap(MSR_VMX_BASIC, &caps.basic) || !read_cap(MSR_VMX_MISC, &caps.misc) ||
	    !read_cap(MSR_VMX_VMCS_ENUM, &caps.vmcs_enum) ||
	    !read_cap(MSR_VMX_CR0_FIXED0, &caps.cr0_fixed0) ||
	    !read_cap(MSR_VMX_CR0_FIXED1, &caps.cr0_fixed1) ||
	    !read_cap(MSR_VMX_CR4_FIXED0, &caps.cr4_fixed0) ||
	    !read_cap(MSR_VMX_CR4_FIXED1, &caps.cr4_fixed1))
		return 0;
	caps.revision = VMX_BASIC_REVISION(caps.basic);
	true_ctls = (caps.basic & VMX_BASIC_TRUE_CTLS) != 0;
	if (!read_cap(true_ctls ? MSR_VMX_TRUE_PINBASED : MSR_VMX_PINBASED, &caps.pin) ||
	    !read_cap(true_ctls ? MSR_VMX_TRUE_PROCBASED : MSR_VMX_PROCBASED, &caps.proc) ||
	    !read_cap(true_ctls ? MSR_VMX_TRUE_EXIT : MSR_VMX_EXIT, &caps.exit) ||
	    !read_cap(true_ctls ? MSR_VMX_TRUE_ENTRY : MSR_VMX_ENTRY, &caps.entry))
		return 0;
	/* IA32_VMX_PROCBASED_CTLS2 exists only if "activate secondary controls"
	 * may be 1; IA32_VMX_EPT_VPID_CAP only if "enable EPT" or "enable VPID"
	 * may be 1 (SDM Vol. 3C §A.3.3, §A.10). */
	caps.proc2 = 0;
	caps.ept_vpid = 0;
	if ((caps.proc >> 32) & PROC_ACTIVATE_SECONDARY) {
		if (!read_cap(MSR_VMX_PROCBASED2, &caps.proc2))
			return 0;
		if ((caps.proc2 >> 32) & (PROC2_ENABLE_EPT | PROC2_ENABLE_VPID)) {
			if (!read_cap(MSR_VMX_EPT_VPID_CAP, &caps.ept_vpid))
				return 0;
		}
	}
	return 1;
}

/* ------------------------------------------------------------ controls */

/* Common to every payload: external interrupts exit (so the APIC timer gets
 * L1 back from any L2) and are acknowledged on exit (the vector is in the
 * exit interruption information, L1 then EOIs); HLT exits; port I/O goes
 * through the I/O bitmaps. The exit controls give a 64-bit host with its
 * own IA32_EFER; the entry controls load L2's IA32_EFER. */
#define WANT_PIN   PIN_EXT_INTR_EXITING
#define WANT_PROC  (PROC_HLT_EXITING | PROC_USE_IO_BITMAPS)
#define WANT_EXIT  (EXIT_HOST_ADDR_SPACE_SIZE | EXIT_ACK_INTR_ON_EXIT | EXIT_SAVE_EFER | \
		    EXIT_LOAD_EFER)
#define WANT_ENTRY ENTRY_LOAD_EFER

struct vmx_controls vmx_controls_for(const struct l2_config *c)
{
	struct vmx_controls v;
	uint32_t want_proc = WANT_PROC | (c->proc2 ? PROC_ACTIVATE_SECONDARY : 0);
	uint32_t want_entry = WANT_ENTRY | (c->mode == L2_LONG ? ENTRY_IA32E_MODE_GUEST : 0);

	v.pin = vmx_ctl(caps.pin, WANT_PIN);
	v.proc = vmx_ctl(caps.proc, want_proc);
	v.proc2 = vmx_ctl(caps.proc2, c->proc2);
	v.exit = vmx_ctl(caps.exit, WANT_EXIT);
	v.entry = vmx_ctl(caps.entry, want_entry);
	/* IA-32e mode guest is the only entry control that must follow the
	 * payload both ways: clear it for the other payloads even if some
	 * capability MSR said it must be 1 (the check below then fails). */
	v.missing_pin = WANT_PIN & ~v.pin;
	v.missing_proc = want_proc & ~v.proc;
	v.missing_proc2 = c->proc2 & ~v.proc2;
	v.missing_exit = WANT_EXIT & ~v.exit;
	v.missing_entry = want_entry & ~v.entry;
	if (c->mode != L2_LONG && (v.entry & ENTRY_IA32E_MODE_GUEST)) {
		v.entry &= ~ENTRY_IA32E_MODE_GUEST;
		v.missing_entry |= ENTRY_IA32E_MODE_GUEST;
	}
	return v;
}

/* ------------------------------------------------------------ regions */

static uint8_t vmxon_region[4096] __attribute__((aligned(4096)));
static uint8_t vmcs_regions[VMCS_REGIONS][4096] __attribute__((aligned(4096)));
static uint8_t bad_region[4096] __attribute__((aligned(4096)));

/* Identity-mapped: L1's linear addresses are physical addresses. */
static uint64_t pa_of(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

uint64_t vmxon_region_init(void)
{
	memset(vmxon_region, 0, sizeof(vmxon_region));
	*(uint32_t *)vmxon_region = caps.revision;
	return pa_of(vmxon_region);
}

uint64_t vmxon_region_pa(void)
{
	return pa_of(vmxon_region);
}

uint64_t vmcs_region(unsigned n)
{
	uint8_t *r = vmcs_regions[n % VMCS_REGIONS];

	memset(r, 0, 4096);
	*(uint32_t *)r = caps.revision; /* bit 31 = 0: not a shadow VMCS */
	return pa_of(r);
}

uint64_t vmcs_bad_revision_region(void)
{
	memset(bad_region, 0, sizeof(bad_region));
	*(uint32_t *)bad_region = (caps.revision + 1) & 0x7FFFFFFFu;
	return pa_of(bad_region);
}

int vmcs_make_current(uint64_t pa, const char *name)
{
	uint64_t fl = vmclear(pa);

	if (vm_result(fl) != VM_SUCCEED) {
		check(name, 0, "VMCLEAR %#llx: %s, error %u", (unsigned long long)pa,
		      vm_result(fl) == VM_FAIL_VALID ? "VMfailValid" : "VMfailInvalid",
		      vm_result(fl) == VM_FAIL_VALID ? vm_instruction_error() : 0);
		return 0;
	}
	fl = vmptrld(pa);
	if (vm_result(fl) != VM_SUCCEED) {
		check(name, 0, "VMPTRLD %#llx: %s, error %u", (unsigned long long)pa,
		      vm_result(fl) == VM_FAIL_VALID ? "VMfailValid" : "VMfailInvalid",
		      vm_result(fl) == VM_FAIL_VALID ? vm_instruction_error() : 0);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ VMREAD/VMWRITE */

static struct vmcs_error first_error = { ~0u, 0, 0 };

void vmcs_errors_reset(void)
{
	first_error.field = ~0u;
	first_error.error = 0;
	first_error.count = 0;
}

struct vmcs_error vmcs_errors(void)
{
	return first_error;
}

uint32_t vm_instruction_error(void)
{
	uint64_t v = ~0ull;

	if (vm_result(vmread_flags(VM_INSTRUCTION_ERROR, &v)) != VM_SUCCEED)
		return ~0u;
	return (uint32_t)v;
}

static void note_failure(uint32_t field, uint64_t fl)
{
	if (first_error.count++ == 0) {
		first_error.field = field;
		first_error.error = vm_result(fl) == VM_FAIL_VALID ? vm_instruction_error() : 0;
	}
}

void vmw(uint32_t field, uint64_t value)
{
	uint64_t fl = vmwrite_flags(field, value);

	if (vm_result(fl) != VM_SUCCEED)
		note_failure(field, fl);
}

uint64_t vmr(uint32_t field)
{
	uint64_t v = 0, fl = vmread_flags(field, &v);

	if (vm_result(fl) != VM_SUCCEED)
		note_failure(field, fl);
	return v;
}

/* ------------------------------------------------------------ L1 tables */

extern uint64_t gdt[GDT_ENTRIES]; /* runtime/gdt.S */

/* The runtime's descriptors at their selectors, then a 64-bit TSS
 * descriptor (16 bytes) at L1_SEL_TSS. */
static uint64_t l1_gdt[GDT_ENTRIES + 2] __attribute__((aligned(16)));
static uint8_t l1_tss[104] __attribute__((aligned(16)));
/* The 64-bit payloads' TR: a TSS they never use (no privilege changes,
 * no IST), but TR must be usable at VM entry (§27.3.1.2). */
static uint8_t l2_tss64[104] __attribute__((aligned(16)));

static uint64_t tss_desc_lo(uint64_t base, uint32_t limit, unsigned type)
{
	return (limit & 0xFFFFull) | (base & 0xFFFFFFull) << 16 | (uint64_t)type << 40 |
	       1ull << 47 /* P */ | ((uint64_t)(limit >> 16) & 0xF) << 48 |
	       ((base >> 24) & 0xFF) << 56;
}

void l1_tables_init(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} d;
	uint64_t base = pa_of(l1_tss);

	for (unsigned i = 0; i < GDT_ENTRIES; i++)
		l1_gdt[i] = gdt[i];
	l1_gdt[GDT_ENTRIES] = tss_desc_lo(base, sizeof(l1_tss) - 1, 9); /* available 64-bit TSS */
	l1_gdt[GDT_ENTRIES + 1] = base >> 32;
	d.limit = sizeof(l1_gdt) - 1;
	d.base = pa_of(l1_gdt);
	/* Same descriptors at the same selectors: the segment registers need
	 * no reload. LTR marks the TSS descriptor busy. */
	__asm__ volatile("lgdt %0" : : "m"(d) : "memory");
	__asm__ volatile("ltr %w0" : : "r"(L1_SEL_TSS) : "memory");
}

/* ------------------------------------------------------------ L2 tables */

/* The 32-bit payload's page directory: 1024 4 MiB pages mapping all of
 * [0, 4 GiB) one to one, P | W | U/S | PS (SDM Vol. 3A §4.3, CR4.PSE = 1). */
static uint32_t l2_pd32[1024] __attribute__((aligned(4096)));

/* I/O bitmaps A (ports 0-0x7FFF) and B (0x8000-0xFFFF): a set bit makes the
 * port exit; an access of several bytes exits if any of its ports' bits
 * is set (SDM Vol. 3C §25.6.4, §26.1.3). */
static uint8_t io_bitmap_a[4096] __attribute__((aligned(4096)));
static uint8_t io_bitmap_b[4096] __attribute__((aligned(4096)));

static void io_intercept(uint16_t port)
{
	uint8_t *map = port < 0x8000 ? io_bitmap_a : io_bitmap_b;
	uint16_t bit = port & 0x7FFF;

	map[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

static void l2_tables_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	for (uint32_t i = 0; i < 1024; i++)
		l2_pd32[i] = i << 22 | 0x87;
	io_intercept(PORTIO_POST_PORT);
	io_intercept(PORTIO_IN_PORT);
}

/* ------------------------------------------------------------ the VMCS */

/* Access rights (SDM Vol. 3C §25.4.1, Table 25-2): type, S, DPL, P, AVL,
 * L, D/B, G, unusable (bit 16). */
#define AR_CODE64   0xA09B  /* execute/read, accessed, S, P, L, G */
#define AR_CODE32   0xC09B  /* execute/read, accessed, S, P, D, G */
#define AR_DATA     0xC093  /* read/write, accessed, S, P, B, G */
#define AR_CODE16   0x009B  /* execute/read, accessed, S, P; byte granular */
#define AR_DATA16   0x0093  /* read/write, accessed, S, P; byte granular */
#define AR_TSS_BUSY 0x008B  /* busy 32-bit / 64-bit TSS, P */
#define AR_UNUSABLE 0x10000

static void guest_segment_at(uint32_t sel_field, uint16_t sel, uint64_t base, uint32_t limit,
			     uint32_t ar)
{
	/* Selector, limit, AR and base fields of one segment register are at
	 * the same index in each group. */
	uint32_t i = sel_field - GUEST_ES_SELECTOR;

	vmw(sel_field, sel);
	vmw(GUEST_ES_LIMIT + i, limit);
	vmw(GUEST_ES_AR + i, ar);
	vmw(GUEST_ES_BASE + i, base);
}

/* Flat: base 0, limit 4 GiB. */
static void guest_segment(uint32_t sel_field, uint16_t sel, uint32_t ar)
{
	guest_segment_at(sel_field, sel, 0, 0xFFFFFFFF, ar);
}

/* VMWRITEs 0 to each of `n` fields, in order. */
static void vmw_zeroes(const uint32_t *fields, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vmw(fields[i], 0);
}

/* Controls every payload has at 0: no exception exits, CR3-target values,
 * MSR loads or stores, no event injection; L1 owns no CR0/CR4 bit, so
 * L2's MOV to CR0 (CR0.AM) does not exit. */
static const uint32_t controls_zero[] = {
	EXCEPTION_BITMAP,
	PF_ERROR_CODE_MASK,
	PF_ERROR_CODE_MATCH,
	CR3_TARGET_COUNT,
	VM_EXIT_MSR_STORE_COUNT,
	VM_EXIT_MSR_LOAD_COUNT,
	VM_ENTRY_MSR_LOAD_COUNT,
	VM_ENTRY_INTR_INFO,
	VM_ENTRY_EXCEPTION_ERROR_CODE,
	VM_ENTRY_INSTRUCTION_LEN,
	CR0_GUEST_HOST_MASK,
	CR4_GUEST_HOST_MASK,
};

/* Guest state every payload starts with at 0: no pending debug
 * exceptions, no blocking, active, no SYSENTER. */
static const uint32_t guest_zero[] = {
	GUEST_PENDING_DBG,
	GUEST_INTERRUPTIBILITY,
	GUEST_ACTIVITY_STATE,
	GUEST_SYSENTER_CS,
	GUEST_SYSENTER_ESP,
	GUEST_SYSENTER_EIP,
};

static void setup_controls(const struct l2_config *c, const struct vmx_controls *v)
{
	vmw(PIN_BASED_CONTROLS, v->pin);
	vmw(PROC_BASED_CONTROLS, v->proc);
	if (v->proc & PROC_ACTIVATE_SECONDARY)
		vmw(SECONDARY_CONTROLS, v->proc2);
	if (v->proc2 & PROC2_NOTIFY_VM_EXITING)
		vmw(NOTIFY_WINDOW, c->notify_window);
	if (v->proc2 & PROC2_ENABLE_EPT)
		vmw(EPT_POINTER, c->eptp);
	vmw(VM_EXIT_CONTROLS, v->exit);
	vmw(VM_ENTRY_CONTROLS, v->entry);
	vmw_zeroes(controls_zero, sizeof(controls_zero) / sizeof(controls_zero[0]));
	if (v->proc & PROC_USE_IO_BITMAPS) {
		vmw(IO_BITMAP_A, pa_of(io_bitmap_a));
		vmw(IO_BITMAP_B, pa_of(io_bitmap_b));
	}
}

/* Host state: what the CPU is in now, except RSP (vmx_run writes it) and
 * RIP (the exit stub). SDM Vol. 3C §27.2.2-§27.2.4, §28.5. */
static void setup_host(const struct vmx_controls *v)
{
	struct dtr idtr = sidt();

	vmw(HOST_CR0, read_cr0());
	vmw(HOST_CR3, read_cr3());
	vmw(HOST_CR4, read_cr4());
	vmw(HOST_ES_SELECTOR, SEL_DATA);
	vmw(HOST_CS_SELECTOR, SEL_CODE64);
	vmw(HOST_SS_SELECTOR, SEL_DATA);
	vmw(HOST_DS_SELECTOR, SEL_DATA);
	vmw(HOST_FS_SELECTOR, SEL_DATA);
	vmw(HOST_GS_SELECTOR, SEL_DATA);
	vmw(HOST_TR_SELECTOR, L1_SEL_TSS);
	vmw(HOST_FS_BASE, 0);
	vmw(HOST_GS_BASE, 0);
	vmw(HOST_TR_BASE, pa_of(l1_tss));
	vmw(HOST_GDTR_BASE, pa_of(l1_gdt));
	vmw(HOST_IDTR_BASE, idtr.base);
	/* L1 never uses SYSENTER; the fields must still be canonical. */
	vmw(HOST_SYSENTER_CS, 0);
	vmw(HOST_SYSENTER_ESP, 0);
	vmw(HOST_SYSENTER_EIP, 0);
	if (v->exit & EXIT_LOAD_EFER)
		vmw(HOST_IA32_EFER, rdmsr(MSR_EFER));
	vmw(HOST_RIP, (uint64_t)(uintptr_t)vmx_exit_entry);
}

static void setup_guest(const struct l2_config *c)
{
	uint64_t cr0, cr4, cr0_fixed0 = caps.cr0_fixed0;
	uint16_t data_sel = SEL_DATA;

	switch (c->mode) {
	case L2_LONG:
		/* L1's own paging: CR0 (PE, PG, NE...), CR3, CR4 (PAE, VMXE).
		 * Under EPT, CR3 and the tables are L2-physical addresses,
		 * which the ept payload backs with a copy of L1's image. */
		cr0 = read_cr0();
		cr4 = read_cr4();
		vmw(GUEST_CR3, read_cr3());
		guest_segment(GUEST_CS_SELECTOR, SEL_CODE64, AR_CODE64);
		vmw(GUEST_GDTR_BASE, pa_of(l1_gdt));
		vmw(GUEST_GDTR_LIMIT, sizeof(l1_gdt) - 1);
		vmw(GUEST_TR_BASE, pa_of(l2_tss64));
		vmw(GUEST_IA32_EFER, EFER_LME | EFER_LMA);
		break;
	case L2_PROT32:
		/* 32-bit paging with 4 MiB pages; CR0.NE and CR4.VMXE from the
		 * fixed-bit MSRs (§27.3.1.1). */
		cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
		cr4 = CR4_PSE;
		vmw(GUEST_CR3, pa_of(l2_pd32));
		guest_segment(GUEST_CS_SELECTOR, STORM_SEL_CODE, AR_CODE32);
		vmw(GUEST_GDTR_BASE, pa_of(l2s_gdt));
		vmw(GUEST_GDTR_LIMIT, (uint64_t)(l2s_gdt_end - l2s_gdt) - 1);
		vmw(GUEST_TR_BASE, pa_of(l2s_tss));
		vmw(GUEST_IA32_EFER, 0);
		break;
	case L2_FLAT32:
		/* Protected mode without paging: linear addresses are
		 * L2-physical. The runtime's flat descriptors, which L2 never
		 * loads (VM entry loads the hidden parts from here). */
		cr0 = CR0_PE | CR0_ET | CR0_NE;
		cr4 = 0;
		vmw(GUEST_CR3, 0);
		guest_segment(GUEST_CS_SELECTOR, SEL_CODE32, AR_CODE32);
		vmw(GUEST_GDTR_BASE, pa_of(l1_gdt));
		vmw(GUEST_GDTR_LIMIT, sizeof(l1_gdt) - 1);
		vmw(GUEST_TR_BASE, pa_of(l2_tss64));
		vmw(GUEST_IA32_EFER, 0);
		break;
	case L2_REAL16:
	default:
		/* Real-address mode: 64 KiB segments at selector << 4, no
		 * descriptor tables in use. */
		cr0 = CR0_ET | CR0_NE;
		cr4 = 0;
		vmw(GUEST_CR3, 0);
		guest_segment_at(GUEST_CS_SELECTOR, c->real_cs, (uint64_t)c->real_cs << 4, 0xFFFF,
				 AR_CODE16);
		data_sel = c->real_ds;
		vmw(GUEST_GDTR_BASE, 0);
		vmw(GUEST_GDTR_LIMIT, 0);
		vmw(GUEST_TR_BASE, 0);
		vmw(GUEST_IA32_EFER, 0);
		break;
	}
	/* With unrestricted guest, CR0.PE and CR0.PG are exempt from
	 * IA32_VMX_CR0_FIXED0 (§27.3.1.1); PG = 1 still needs PE = 1. */
	if (c->proc2 & PROC2_UNRESTRICTED_GUEST)
		cr0_fixed0 &= ~(uint64_t)(CR0_PE | CR0_PG);
	cr0 = (cr0 | cr0_fixed0) & caps.cr0_fixed1;
	cr4 = (cr4 | caps.cr4_fixed0) & caps.cr4_fixed1;
	vmw(GUEST_CR0, cr0);
	vmw(GUEST_CR4, cr4);
	vmw(CR0_READ_SHADOW, cr0);
	vmw(CR4_READ_SHADOW, cr4);
	if (c->mode == L2_REAL16) {
		/* SS.DPL must be 0 in real-address mode (§27.3.1.2). */
		guest_segment_at(GUEST_SS_SELECTOR, data_sel, (uint64_t)data_sel << 4, 0xFFFF, AR_DATA16);
		guest_segment_at(GUEST_DS_SELECTOR, data_sel, (uint64_t)data_sel << 4, 0xFFFF, AR_DATA16);
		guest_segment_at(GUEST_ES_SELECTOR, data_sel, (uint64_t)data_sel << 4, 0xFFFF, AR_DATA16);
		guest_segment_at(GUEST_FS_SELECTOR, data_sel, (uint64_t)data_sel << 4, 0xFFFF, AR_DATA16);
		guest_segment_at(GUEST_GS_SELECTOR, data_sel, (uint64_t)data_sel << 4, 0xFFFF, AR_DATA16);
	} else {
		/* SS must have the RPL of CS (§27.3.1.2): both 0 here. */
		guest_segment(GUEST_SS_SELECTOR, SEL_DATA, AR_DATA);
		guest_segment(GUEST_DS_SELECTOR, SEL_DATA, AR_DATA);
		guest_segment(GUEST_ES_SELECTOR, SEL_DATA, AR_DATA);
		guest_segment(GUEST_FS_SELECTOR, SEL_DATA, AR_DATA);
		guest_segment(GUEST_GS_SELECTOR, SEL_DATA, AR_DATA);
	}
	/* TR must be a busy TSS in every mode, real-address mode included
	 * (§27.3.1.2); only the storm payload ever uses its TSS. */
	vmw(GUEST_TR_SELECTOR, c->mode == L2_PROT32 ? STORM_SEL_TSS :
			       c->mode == L2_REAL16 ? 0 : L1_SEL_TSS);
	vmw(GUEST_TR_LIMIT, 103);
	vmw(GUEST_TR_AR, AR_TSS_BUSY);
	vmw(GUEST_LDTR_SELECTOR, 0);
	vmw(GUEST_LDTR_LIMIT, 0);
	vmw(GUEST_LDTR_AR, AR_UNUSABLE);
	vmw(GUEST_LDTR_BASE, 0);
	/* Only the storm payload gets an IDT. Elsewhere any exception is a
	 * triple fault (IDTR.limit 0: even the #DF cannot be delivered), which
	 * exits to L1: what l2_triple_fault wants, and a clear verdict for
	 * any other payload gone wrong. */
	if (c->mode == L2_PROT32) {
		vmw(GUEST_IDTR_BASE, pa_of(l2s_idt));
		vmw(GUEST_IDTR_LIMIT, (uint64_t)(l2s_idt_end - l2s_idt) - 1);
	} else {
		vmw(GUEST_IDTR_BASE, 0);
		vmw(GUEST_IDTR_LIMIT, 0);
	}
	vmw(GUEST_DR7, 0x400);
	vmw(GUEST_IA32_DEBUGCTL, 0);
	vmw(GUEST_RSP, c->rsp);
	vmw(GUEST_RIP, c->rip);
	vmw(GUEST_RFLAGS, 0x2);
	vmw_zeroes(guest_zero, sizeof(guest_zero) / sizeof(guest_zero[0]));
	/* No shadow VMCS: the link pointer must be all ones (§27.3.1.5). */
	vmw(VMCS_LINK_POINTER, ~0ull);
}

int vmcs_setup(const struct l2_config *c, const char *name)
{
	struct vmx_controls v = vmx_controls_for(c);
	struct vmcs_error e;

	if (v.missing_pin | v.missing_proc | v.missing_proc2 | v.missing_exit | v.missing_entry) {
		check(name, 0, "controls not offered: pin %#x proc %#x proc2 %#x exit %#x entry %#x",
		      v.missing_pin, v.missing_proc, v.missing_proc2, v.missing_exit, v.missing_entry);
		return 0;
	}
	l2_tables_init();
	vmcs_errors_reset();
	setup_controls(c, &v);
	setup_host(&v);
	setup_guest(c);
	e = vmcs_errors();
	if (e.count) {
		check(name, 0, "%u VMWRITEs failed, the first to field %#x with error %u", e.count,
		      e.field, e.error);
		return 0;
	}
	return 1;
}
