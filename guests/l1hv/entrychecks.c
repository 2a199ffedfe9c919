/*
 * entrychecks.c - the entry-checks: one VMLAUNCH per VM-entry rule of SDM
 * Vol. 3C chapter 27 that the offered controls reach, each from a fresh
 * benign VMCS (region 10) with one rule broken, and the outcome the SDM
 * gives it:
 *
 *   controls (§27.2.1)       VMfailValid 7
 *   host state (§27.2.2-4)   VMfailValid 8
 *   guest state (§27.3.1)    VM-entry failure, exit reason 33 with bit 31,
 *                            qualification 0 (2 for the PDPTEs, 4 for the
 *                            VMCS link pointer) (§27.8)
 *
 * and a few settings the SDM allows, which must enter L2 (reason 18).
 * The MSR-area rules are msrlist.c's; the EPT rules ept.c's; the TPR
 * threshold against VTPR tpr.c's.
 */
#include "l1hv.h"
#include "payloads.h"

#define VPID_FIELD          0x0000
#define HOST_IA32_EFER_F    0x2C02
#define PDPTE0              0x280A
#define PROC_NMI_WINDOW     (1u << 22)
#define EXIT_SAVE_PREEMPT   (1u << 22)
#define ENTRY_LOAD_DEBUG    (1u << 2)
#define NONCANONICAL        0x0000800000000000ull
#define AR_G                (1u << 15)
#define AR_DB               (1u << 14)
#define AR_S                (1u << 4)
#define AR_P                (1u << 7)
#define AR_DPL3             (3u << 5)
#define AR_UNUSABLE         (1u << 16)
#define EPTP_OK             0x101Eull /* write-back, 4-level walk, at 0x1000 */
#define EPT_ON              W(OR, PROC_BASED_CONTROLS, PROC_ACTIVATE_SECONDARY), \
			    W(SET, SECONDARY_CONTROLS, PROC2_ENABLE_EPT)
#define UG_ON               W(OR, PROC_BASED_CONTROLS, PROC_ACTIVATE_SECONDARY), \
			    W(SET, SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST), \
			    W(SET, EPT_POINTER, EPTP_OK)

enum op {
	END, SET, OR, CLR,
	SETW, /* value | 1 << physical-address width */
	SUBW, /* (1 << physical-address width) - value */
	REGION, /* the address of VMCS region `value`, its revision written */
};
enum want { FAIL, EXIT33, RUNS };

struct write {
	uint8_t op;
	uint32_t field;
	uint64_t value;
};

struct rule {
	const char *name;
	enum want kind;
	uint32_t want; /* VM-instruction error, or qualification */
	struct write w[6];
};

#define W(op, f, v) { op, f, v }
#define INFO(type, vector) (0x80000000u | (type) << 8 | (vector))

static const struct rule rules[] = {
	/* §27.2.1.1 VM-execution control fields */
	{ "io-bitmap-a-unaligned", FAIL, 7, { W(OR, IO_BITMAP_A, 0x800) } },
	{ "io-bitmap-b-beyond-width", FAIL, 7, { W(SETW, IO_BITMAP_B, 0) } },
	{ "msr-bitmap-unaligned", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_USE_MSR_BITMAPS), W(SET, MSR_BITMAP, 0x10) } },
	{ "msr-bitmap-beyond-width", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_USE_MSR_BITMAPS), W(SETW, MSR_BITMAP, 0) } },
	{ "cr3-target-count", FAIL, 7, { W(SET, CR3_TARGET_COUNT, 1) } },
	{ "virtual-apic-unaligned", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_USE_TPR_SHADOW),
	    W(SET, VIRTUAL_APIC_PAGE_ADDR, 0x1080) } },
	{ "virtual-apic-beyond-width", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_USE_TPR_SHADOW),
	    W(SETW, VIRTUAL_APIC_PAGE_ADDR, 0) } },
	{ "tpr-threshold-bits-31-4", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_USE_TPR_SHADOW),
	    W(SUBW, VIRTUAL_APIC_PAGE_ADDR, 4096), W(SET, TPR_THRESHOLD, 0x10) } },
	{ "virtual-nmis-without-nmi-exiting", FAIL, 7,
	  { W(OR, PIN_BASED_CONTROLS, PIN_VIRTUAL_NMIS) } },
	{ "nmi-window-without-virtual-nmis", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_NMI_WINDOW) } },
	{ "vpid-zero", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_ACTIVATE_SECONDARY),
	    W(SET, SECONDARY_CONTROLS, PROC2_ENABLE_VPID), W(SET, VPID_FIELD, 0) } },
	{ "unrestricted-without-ept", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_ACTIVATE_SECONDARY),
	    W(SET, SECONDARY_CONTROLS, PROC2_UNRESTRICTED_GUEST) } },
	{ "proc-default1-bit-1-clear", FAIL, 7, { W(CLR, PROC_BASED_CONTROLS, 1u << 1) } },
	{ "proc2-bus-lock-detection-not-offered", FAIL, 7,
	  { W(OR, PROC_BASED_CONTROLS, PROC_ACTIVATE_SECONDARY), W(SET, SECONDARY_CONTROLS, 1u << 30) } },
	{ "eptp-walk-length-2", FAIL, 7, { EPT_ON, W(SET, EPT_POINTER, 0x1016) } },
	{ "eptp-bit-7", FAIL, 7, { EPT_ON, W(SET, EPT_POINTER, EPTP_OK | 1u << 7) } },
	{ "eptp-beyond-width", FAIL, 7, { EPT_ON, W(SETW, EPT_POINTER, EPTP_OK) } },
	{ "io-bitmap-a-beyond-width", FAIL, 7, { W(SETW, IO_BITMAP_A, 0) } },
	{ "io-bitmap-b-unaligned", FAIL, 7, { W(OR, IO_BITMAP_B, 0x10) } },
	{ "cr3-target-count-5", FAIL, 7, { W(SET, CR3_TARGET_COUNT, 5) } },
	/* §27.2.1.2 VM-exit control fields */
	{ "save-preemption-timer-without-timer", FAIL, 7,
	  { W(OR, VM_EXIT_CONTROLS, EXIT_SAVE_PREEMPT) } },
	{ "exit-ctl-load-perf-global-ctrl", FAIL, 7, { W(OR, VM_EXIT_CONTROLS, 1u << 12) } },
	{ "exit-ctl-default1-bit-2-clear", FAIL, 7, { W(CLR, VM_EXIT_CONTROLS, 1u << 2) } },
	{ "msr-area-exit-load-unaligned", FAIL, 7,
	  { W(SET, VM_EXIT_MSR_LOAD_ADDR, 0x1008), W(SET, VM_EXIT_MSR_LOAD_COUNT, 1) } },
	{ "msr-area-exit-store-unaligned", FAIL, 7,
	  { W(SET, VM_EXIT_MSR_STORE_ADDR, 0x1008), W(SET, VM_EXIT_MSR_STORE_COUNT, 1) } },
	{ "msr-area-entry-load-beyond-width", FAIL, 7,
	  { W(SETW, VM_ENTRY_MSR_LOAD_ADDR, 0), W(SET, VM_ENTRY_MSR_LOAD_COUNT, 1) } },
	/* §27.2.1.3 VM-entry control fields */
	{ "entry-ctl-entry-to-smm", FAIL, 7, { W(OR, VM_ENTRY_CONTROLS, 1u << 10) } },
	{ "entry-ctl-default1-bit-2-clear", FAIL, 7, { W(CLR, VM_ENTRY_CONTROLS, ENTRY_LOAD_DEBUG) } },
	{ "inject-external-with-error-code", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(0, 0x30) | INTR_INFO_ERROR_VALID) } },
	{ "inject-mtf-with-error-code", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(7, 0) | INTR_INFO_ERROR_VALID) } },
	{ "inject-ac-without-error-code", FAIL, 7, { W(SET, VM_ENTRY_INTR_INFO, INFO(3, 17)) } },
	/* Unrestricted guest with CR0.PE = 0: no error code is delivered. */
	{ "inject-gp-with-error-code-in-real-mode", FAIL, 7,
	  { UG_ON, W(CLR, GUEST_CR0, CR0_PE | CR0_PG),
	    W(SET, VM_ENTRY_INTR_INFO, INFO(3, 13) | INTR_INFO_ERROR_VALID) } },
	{ "inject-privileged-sw-length-0", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(5, 1)), W(SET, VM_ENTRY_INSTRUCTION_LEN, 0) } },
	{ "inject-sw-exception-length-16", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(6, 3)), W(SET, VM_ENTRY_INSTRUCTION_LEN, 16) } },
	/* §27.2.1.3 VM-entry control fields: event injection */
	{ "inject-type-1", FAIL, 7, { W(SET, VM_ENTRY_INTR_INFO, INFO(1, 0x30)) } },
	/* Type 7 exists with the monitor trap flag (offered): vector 0 only. */
	{ "inject-type-7-vector-1", FAIL, 7, { W(SET, VM_ENTRY_INTR_INFO, INFO(7, 1)) } },
	{ "inject-nmi-vector-3", FAIL, 7, { W(SET, VM_ENTRY_INTR_INFO, INFO(2, 3)) } },
	{ "inject-exception-vector-32", FAIL, 7, { W(SET, VM_ENTRY_INTR_INFO, INFO(3, 32)) } },
	{ "inject-gp-without-error-code", FAIL, 7, { W(SET, VM_ENTRY_INTR_INFO, INFO(3, 13)) } },
	{ "inject-ud-with-error-code", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(3, 6) | INTR_INFO_ERROR_VALID) } },
	{ "inject-reserved-bits", FAIL, 7, { W(SET, VM_ENTRY_INTR_INFO, INFO(0, 0x30) | 1u << 12) } },
	{ "inject-error-code-bit-16", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(3, 13) | INTR_INFO_ERROR_VALID),
	    W(SET, VM_ENTRY_EXCEPTION_ERROR_CODE, 0x10000) } },
	{ "inject-software-length-0", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(4, 0x80)), W(SET, VM_ENTRY_INSTRUCTION_LEN, 0) } },
	{ "inject-software-length-16", FAIL, 7,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(4, 0x80)), W(SET, VM_ENTRY_INSTRUCTION_LEN, 16) } },
	/* §27.2.2 host control registers and MSRs */
	{ "host-cr0-ne-clear", FAIL, 8, { W(CLR, HOST_CR0, CR0_NE) } },
	{ "host-cr3-beyond-width", FAIL, 8, { W(SETW, HOST_CR3, 0) } },
	{ "host-sysenter-esp-noncanonical", FAIL, 8, { W(SET, HOST_SYSENTER_ESP, NONCANONICAL) } },
	{ "host-sysenter-eip-noncanonical", FAIL, 8, { W(SET, HOST_SYSENTER_EIP, NONCANONICAL) } },
	{ "host-efer-reserved", FAIL, 8, { W(OR, HOST_IA32_EFER_F, 1u << 9) } },
	{ "host-efer-lma-clear", FAIL, 8, { W(CLR, HOST_IA32_EFER_F, EFER_LMA) } },
	{ "host-pat-invalid-type", FAIL, 8,
	  { W(OR, VM_EXIT_CONTROLS, 1u << 19), W(SET, HOST_IA32_PAT, 0x08) } },
	/* §27.2.3 host segment and descriptor-table registers */
	{ "host-ds-selector-rpl", FAIL, 8, { W(OR, HOST_DS_SELECTOR, 1) } },
	{ "host-es-selector-ti", FAIL, 8, { W(OR, HOST_ES_SELECTOR, 4) } },
	{ "host-cs-selector-null", FAIL, 8, { W(SET, HOST_CS_SELECTOR, 0) } },
	{ "host-tr-selector-null", FAIL, 8, { W(SET, HOST_TR_SELECTOR, 0) } },
	{ "host-fs-base-noncanonical", FAIL, 8, { W(SET, HOST_FS_BASE, NONCANONICAL) } },
	{ "host-gdtr-base-noncanonical", FAIL, 8, { W(SET, HOST_GDTR_BASE, NONCANONICAL) } },
	{ "host-tr-base-noncanonical", FAIL, 8, { W(SET, HOST_TR_BASE, NONCANONICAL) } },
	/* §27.2.4 address-space size */
	{ "host-rip-noncanonical", FAIL, 8, { W(SET, HOST_RIP, NONCANONICAL) } },
	{ "host-cr4-pae-clear", FAIL, 8, { W(CLR, HOST_CR4, CR4_PAE) } },
	{ "host-32-bit-from-ia32e", FAIL, 8,
	  { W(CLR, VM_EXIT_CONTROLS, EXIT_HOST_ADDR_SPACE_SIZE),
	    W(CLR, HOST_IA32_EFER_F, EFER_LMA | EFER_LME) } },
	/* §27.3.1.1 guest control registers, debug registers and MSRs */
	{ "guest-cr0-ne-clear", EXIT33, 0, { W(CLR, GUEST_CR0, CR0_NE) } },
	{ "guest-cr4-vmxe-clear", EXIT33, 0, { W(CLR, GUEST_CR4, CR4_VMXE) } },
	{ "guest-ia32e-without-pae", EXIT33, 0, { W(CLR, GUEST_CR4, CR4_PAE) } },
	{ "guest-cr3-beyond-width", EXIT33, 0, { W(SETW, GUEST_CR3, 0) } },
	{ "guest-debugctl-reserved", EXIT33, 0,
	  { W(OR, VM_ENTRY_CONTROLS, ENTRY_LOAD_DEBUG), W(SET, GUEST_IA32_DEBUGCTL, 1u << 2) } },
	{ "guest-dr7-high", EXIT33, 0,
	  { W(OR, VM_ENTRY_CONTROLS, ENTRY_LOAD_DEBUG), W(SET, GUEST_DR7, 1ull << 32 | 0x400) } },
	{ "guest-sysenter-esp-noncanonical", EXIT33, 0, { W(SET, GUEST_SYSENTER_ESP, NONCANONICAL) } },
	{ "guest-sysenter-eip-noncanonical", EXIT33, 0, { W(SET, GUEST_SYSENTER_EIP, NONCANONICAL) } },
	{ "guest-pat-invalid-type", EXIT33, 0,
	  { W(OR, VM_ENTRY_CONTROLS, 1u << 14), W(SET, GUEST_IA32_PAT, 0x02) } },
	{ "guest-efer-reserved", EXIT33, 0, { W(OR, GUEST_IA32_EFER, 1u << 9) } },
	{ "guest-efer-lma-clear", EXIT33, 0, { W(CLR, GUEST_IA32_EFER, EFER_LMA) } },
	{ "guest-efer-lme-clear", EXIT33, 0, { W(CLR, GUEST_IA32_EFER, EFER_LME) } },
	/* §27.3.1.2 guest segment registers */
	{ "guest-tr-selector-ti", EXIT33, 0, { W(OR, GUEST_TR_SELECTOR, 4) } },
	{ "guest-ldtr-selector-ti", EXIT33, 0,
	  { W(SET, GUEST_LDTR_AR, 0x82), W(SET, GUEST_LDTR_SELECTOR, 4) } },
	{ "guest-ss-rpl-not-cs-rpl", EXIT33, 0, { W(OR, GUEST_SS_SELECTOR, 3) } },
	{ "guest-tr-base-noncanonical", EXIT33, 0, { W(SET, GUEST_TR_BASE, NONCANONICAL) } },
	{ "guest-fs-base-noncanonical", EXIT33, 0, { W(SET, GUEST_FS_BASE, NONCANONICAL) } },
	{ "guest-gs-base-noncanonical", EXIT33, 0, { W(SET, GUEST_GS_BASE, NONCANONICAL) } },
	{ "guest-ldtr-base-noncanonical", EXIT33, 0,
	  { W(SET, GUEST_LDTR_AR, 0x82), W(SET, GUEST_LDTR_BASE, NONCANONICAL) } },
	{ "guest-cs-base-high", EXIT33, 0, { W(SET, GUEST_CS_BASE, 1ull << 32) } },
	{ "guest-ss-base-high", EXIT33, 0, { W(SET, GUEST_SS_BASE, 1ull << 32) } },
	{ "guest-ds-base-high", EXIT33, 0, { W(SET, GUEST_DS_BASE, 1ull << 32) } },
	{ "guest-cs-data-type", EXIT33, 0, { W(CLR, GUEST_CS_AR, 8) } },
	{ "guest-ss-code-type", EXIT33, 0, { W(OR, GUEST_SS_AR, 8) } },
	{ "guest-ds-not-accessed", EXIT33, 0, { W(CLR, GUEST_DS_AR, 1) } },
	{ "guest-ds-execute-only", EXIT33, 0, { W(CLR, GUEST_DS_AR, 0xF), W(OR, GUEST_DS_AR, 9) } },
	{ "guest-cs-system", EXIT33, 0, { W(CLR, GUEST_CS_AR, AR_S) } },
	{ "guest-cs-not-present", EXIT33, 0, { W(CLR, GUEST_CS_AR, AR_P) } },
	{ "guest-ds-not-present", EXIT33, 0, { W(CLR, GUEST_DS_AR, AR_P) } },
	{ "guest-cs-dpl-not-ss-dpl", EXIT33, 0, { W(OR, GUEST_CS_AR, AR_DPL3) } },
	{ "guest-ss-dpl-not-rpl", EXIT33, 0, { W(OR, GUEST_SS_AR, AR_DPL3) } },
	{ "guest-ds-dpl-below-rpl", EXIT33, 0, { W(OR, GUEST_DS_SELECTOR, 3) } },
	{ "guest-cs-ar-reserved", EXIT33, 0, { W(OR, GUEST_CS_AR, 1u << 8) } },
	{ "guest-ds-ar-reserved-high", EXIT33, 0, { W(OR, GUEST_DS_AR, 1u << 17) } },
	{ "guest-cs-l-and-d", EXIT33, 0, { W(OR, GUEST_CS_AR, AR_DB) } },
	{ "guest-cs-g-with-short-limit", EXIT33, 0,
	  { W(OR, GUEST_CS_AR, AR_G), W(SET, GUEST_CS_LIMIT, 0xFFFFF000) } },
	{ "guest-ds-no-g-with-long-limit", EXIT33, 0,
	  { W(CLR, GUEST_DS_AR, AR_G), W(SET, GUEST_DS_LIMIT, 0xFFFFFFFF) } },
	{ "guest-tr-available-tss", EXIT33, 0, { W(CLR, GUEST_TR_AR, 2) } },
	{ "guest-tr-16-bit-in-ia32e", EXIT33, 0, { W(CLR, GUEST_TR_AR, 8) } },
	{ "guest-tr-s-set", EXIT33, 0, { W(OR, GUEST_TR_AR, AR_S) } },
	{ "guest-tr-unusable", EXIT33, 0, { W(OR, GUEST_TR_AR, AR_UNUSABLE) } },
	{ "guest-ldtr-wrong-type", EXIT33, 0, { W(SET, GUEST_LDTR_AR, 0x83) } },
	/* §27.3.1.3 guest descriptor-table registers */
	{ "guest-gdtr-base-noncanonical", EXIT33, 0, { W(SET, GUEST_GDTR_BASE, NONCANONICAL) } },
	{ "guest-idtr-limit-high", EXIT33, 0, { W(SET, GUEST_IDTR_LIMIT, 0x10000) } },
	/* §27.3.1.4 guest RIP and RFLAGS */
	{ "guest-rip-noncanonical", EXIT33, 0, { W(SET, GUEST_RIP, NONCANONICAL) } },
	{ "guest-rflags-bit-15", EXIT33, 0, { W(OR, GUEST_RFLAGS, 1u << 15) } },
	{ "guest-rflags-vm-in-ia32e", EXIT33, 0, { W(OR, GUEST_RFLAGS, 1u << 17) } },
	{ "guest-if-clear-with-interrupt-injected", EXIT33, 0,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(0, 0x30)) } },
	/* §27.3.1.5 guest non-register state */
	{ "guest-activity-shutdown", EXIT33, 0, { W(SET, GUEST_ACTIVITY_STATE, 2) } },
	{ "guest-hlt-with-sti-blocking", EXIT33, 0,
	  { W(SET, GUEST_ACTIVITY_STATE, 1), W(SET, GUEST_RFLAGS, 0x202),
	    W(SET, GUEST_INTERRUPTIBILITY, 1) } },
	{ "guest-hlt-with-gp-injected", EXIT33, 0,
	  { W(SET, GUEST_ACTIVITY_STATE, 1),
	    W(SET, VM_ENTRY_INTR_INFO, INFO(3, 13) | INTR_INFO_ERROR_VALID) } },
	{ "guest-interruptibility-reserved", EXIT33, 0, { W(SET, GUEST_INTERRUPTIBILITY, 1u << 5) } },
	{ "guest-sti-and-mov-ss", EXIT33, 0,
	  { W(SET, GUEST_RFLAGS, 0x202), W(SET, GUEST_INTERRUPTIBILITY, 3) } },
	{ "guest-sti-blocking-with-if-clear", EXIT33, 0, { W(SET, GUEST_INTERRUPTIBILITY, 1) } },
	{ "guest-smi-blocking", EXIT33, 0, { W(SET, GUEST_INTERRUPTIBILITY, 4) } },
	{ "guest-interrupt-injected-in-sti-shadow", EXIT33, 0,
	  { W(SET, GUEST_RFLAGS, 0x202), W(SET, GUEST_INTERRUPTIBILITY, 1),
	    W(SET, VM_ENTRY_INTR_INFO, INFO(0, 0x30)) } },
	{ "guest-nmi-injected-in-mov-ss-shadow", EXIT33, 0,
	  { W(SET, GUEST_INTERRUPTIBILITY, 2), W(SET, VM_ENTRY_INTR_INFO, INFO(2, 2)) } },
	{ "guest-nmi-injected-while-virtual-nmis-blocked", EXIT33, 0,
	  { W(OR, PIN_BASED_CONTROLS, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS),
	    W(SET, GUEST_INTERRUPTIBILITY, 8), W(SET, VM_ENTRY_INTR_INFO, INFO(2, 2)) } },
	{ "guest-pending-debug-reserved", EXIT33, 0, { W(SET, GUEST_PENDING_DBG, 1u << 4) } },
	{ "guest-pending-bs-without-tf", EXIT33, 0,
	  { W(SET, GUEST_INTERRUPTIBILITY, 2), W(SET, GUEST_PENDING_DBG, 1u << 14) } },
	{ "guest-tf-without-pending-bs", EXIT33, 0,
	  { W(SET, GUEST_INTERRUPTIBILITY, 2), W(SET, GUEST_RFLAGS, 0x102) } },
	{ "guest-vmcs-link-pointer", EXIT33, 4, { W(SET, VMCS_LINK_POINTER, 0) } },
	/* More host-state rules (§27.2.2, §27.2.3) */
	{ "host-cr0-bits-63-32", FAIL, 8, { W(OR, HOST_CR0, 1ull << 32) } },
	{ "host-cr4-reserved-bit-15", FAIL, 8, { W(OR, HOST_CR4, 1u << 15) } },
	{ "host-efer-lme-clear", FAIL, 8, { W(CLR, HOST_IA32_EFER_F, EFER_LME) } },
	{ "host-cs-selector-rpl", FAIL, 8, { W(OR, HOST_CS_SELECTOR, 3) } },
	{ "host-ss-selector-ti", FAIL, 8, { W(OR, HOST_SS_SELECTOR, 4) } },
	{ "host-fs-selector-rpl", FAIL, 8, { W(OR, HOST_FS_SELECTOR, 1) } },
	{ "host-gs-selector-ti", FAIL, 8, { W(OR, HOST_GS_SELECTOR, 4) } },
	{ "host-tr-selector-rpl", FAIL, 8, { W(OR, HOST_TR_SELECTOR, 1) } },
	{ "host-gs-base-noncanonical", FAIL, 8, { W(SET, HOST_GS_BASE, NONCANONICAL) } },
	{ "host-idtr-base-noncanonical", FAIL, 8, { W(SET, HOST_IDTR_BASE, NONCANONICAL) } },
	/* More guest-state rules (§27.3.1) */
	{ "guest-cr0-bits-63-32", EXIT33, 0, { W(OR, GUEST_CR0, 1ull << 32) } },
	{ "guest-cr4-reserved-bit-15", EXIT33, 0, { W(OR, GUEST_CR4, 1u << 15) } },
	{ "guest-ia32e-without-pg", EXIT33, 0, { UG_ON, W(CLR, GUEST_CR0, CR0_PG) } },
	{ "guest-pg-without-pe", EXIT33, 0, { UG_ON, W(CLR, GUEST_CR0, CR0_PE) } },
	{ "guest-cs-conforming-dpl-above-ss", EXIT33, 0, { W(OR, GUEST_CS_AR, 4 | AR_DPL3) } },
	{ "guest-ss-system", EXIT33, 0, { W(CLR, GUEST_SS_AR, AR_S) } },
	{ "guest-ss-not-present", EXIT33, 0, { W(CLR, GUEST_SS_AR, AR_P) } },
	{ "guest-tr-not-present", EXIT33, 0, { W(CLR, GUEST_TR_AR, AR_P) } },
	{ "guest-tr-ar-bits-11-8", EXIT33, 0, { W(OR, GUEST_TR_AR, 1u << 8) } },
	{ "guest-tr-g-with-short-limit", EXIT33, 0, { W(OR, GUEST_TR_AR, AR_G) } },
	{ "guest-ldtr-not-present", EXIT33, 0, { W(SET, GUEST_LDTR_AR, 0x02) } },
	{ "guest-ldtr-s-set", EXIT33, 0, { W(SET, GUEST_LDTR_AR, 0x92) } },
	{ "guest-v86-segments", EXIT33, 0,
	  { W(CLR, VM_ENTRY_CONTROLS, ENTRY_IA32E_MODE_GUEST), W(CLR, GUEST_IA32_EFER, EFER_LMA | EFER_LME),
	    W(CLR, GUEST_CR4, CR4_PAE), W(OR, GUEST_RFLAGS, 1u << 17) } },
	{ "guest-rip-high-in-compat-mode", EXIT33, 0,
	  { W(CLR, GUEST_CS_AR, 1u << 13), W(SET, GUEST_RIP, 1ull << 32) } },
	{ "guest-rip-bits-63-48-differ", EXIT33, 0, { W(SET, GUEST_RIP, 1ull << 62) } },
	{ "guest-rflags-bit-22", EXIT33, 0, { W(OR, GUEST_RFLAGS, 1u << 22) } },
	{ "guest-rflags-bit-3", EXIT33, 0, { W(OR, GUEST_RFLAGS, 1u << 3) } },
	{ "guest-activity-wait-for-sipi", EXIT33, 0, { W(SET, GUEST_ACTIVITY_STATE, 3) } },
	{ "guest-activity-4", EXIT33, 0, { W(SET, GUEST_ACTIVITY_STATE, 4) } },
	{ "guest-hlt-at-cpl-3", EXIT33, 0,
	  { W(OR, GUEST_CS_SELECTOR, 3), W(OR, GUEST_CS_AR, AR_DPL3), W(OR, GUEST_SS_SELECTOR, 3),
	    W(OR, GUEST_SS_AR, AR_DPL3), W(SET, GUEST_ACTIVITY_STATE, 1) } },
	{ "guest-hlt-with-mov-ss-blocking", EXIT33, 0,
	  { W(SET, GUEST_ACTIVITY_STATE, 1), W(SET, GUEST_INTERRUPTIBILITY, 2) } },
	{ "guest-hlt-tf-without-pending-bs", EXIT33, 0,
	  { W(SET, GUEST_ACTIVITY_STATE, 1), W(SET, GUEST_RFLAGS, 0x102) } },
	{ "guest-interrupt-injected-in-mov-ss-shadow", EXIT33, 0,
	  { W(SET, GUEST_RFLAGS, 0x202), W(SET, GUEST_INTERRUPTIBILITY, 2),
	    W(SET, VM_ENTRY_INTR_INFO, INFO(0, 0x30)) } },
	{ "guest-interruptibility-enclave-bit", EXIT33, 0, { W(SET, GUEST_INTERRUPTIBILITY, 1u << 4) } },
	{ "guest-pending-bs-with-btf", EXIT33, 0,
	  { W(SET, GUEST_INTERRUPTIBILITY, 2), W(SET, GUEST_RFLAGS, 0x102),
	    W(SET, GUEST_PENDING_DBG, 1u << 14), W(SET, GUEST_IA32_DEBUGCTL, 2) } },
	{ "guest-pending-debug-rtm-bit", EXIT33, 0, { W(SET, GUEST_PENDING_DBG, 1u << 16) } },
	{ "guest-vmcs-link-pointer-unaligned", EXIT33, 4, { W(SET, VMCS_LINK_POINTER, 0x10) } },
	/* The region of the current VMCS (entry checks run in region 10). */
	{ "guest-vmcs-link-pointer-current", EXIT33, 4, { W(REGION, VMCS_LINK_POINTER, 10) } },
	{ "guest-vmcs-link-pointer-beyond-width", EXIT33, 4, { W(SETW, VMCS_LINK_POINTER, 0) } },
	/* What the SDM allows, which must enter L2 (an injected #GP or a
	 * single step then triple-faults: no IDT). */
	{ "allowed-msr-bitmap-beyond-ram", RUNS, 0,
	  { W(OR, PROC_BASED_CONTROLS, PROC_USE_MSR_BITMAPS), W(SUBW, MSR_BITMAP, 4096) } },
	{ "allowed-virtual-apic-beyond-ram", RUNS, 0,
	  { W(OR, PROC_BASED_CONTROLS, PROC_USE_TPR_SHADOW),
	    W(SUBW, VIRTUAL_APIC_PAGE_ADDR, 4096), W(SET, TPR_THRESHOLD, 0) } },
	{ "allowed-error-code-bit-15", RUNS, 0,
	  { W(SET, VM_ENTRY_INTR_INFO, INFO(3, 13) | INTR_INFO_ERROR_VALID),
	    W(SET, VM_ENTRY_EXCEPTION_ERROR_CODE, 0x8000) } },
	{ "allowed-tf-with-pending-bs", RUNS, 0,
	  { W(SET, GUEST_INTERRUPTIBILITY, 2), W(SET, GUEST_RFLAGS, 0x102),
	    W(SET, GUEST_PENDING_DBG, 1u << 14) } },
	{ "allowed-save-preemption-timer-with-timer", RUNS, 0,
	  { W(OR, PIN_BASED_CONTROLS, PIN_PREEMPTION_TIMER),
	    W(OR, VM_EXIT_CONTROLS, EXIT_SAVE_PREEMPT), W(SET, PREEMPTION_TIMER_VALUE, 0xFFFFFFFF) } },
	{ "allowed-secondary-ignored-unless-activated", RUNS, 0,
	  { W(CLR, PROC_BASED_CONTROLS, PROC_ACTIVATE_SECONDARY), W(SET, SECONDARY_CONTROLS, 0xFFFFFFFF) } },
	{ "allowed-msr-areas-anywhere-with-count-0", RUNS, 0,
	  { W(SET, VM_ENTRY_MSR_LOAD_ADDR, 8), W(SET, VM_EXIT_MSR_STORE_ADDR, 8),
	    W(SETW, VM_EXIT_MSR_LOAD_ADDR, 8) } },
	{ "allowed-ss-unusable", RUNS, 0, { W(SET, GUEST_SS_AR, AR_UNUSABLE) } },
	{ "allowed-ds-unusable-with-junk", RUNS, 0,
	  { W(SET, GUEST_DS_AR, AR_UNUSABLE | 0xF00), W(SET, GUEST_DS_BASE, 1ull << 32) } },
	{ "allowed-ldtr-unusable-with-junk", RUNS, 0,
	  { W(SET, GUEST_LDTR_AR, AR_UNUSABLE), W(SET, GUEST_LDTR_SELECTOR, 4),
	    W(SET, GUEST_LDTR_BASE, NONCANONICAL) } },
	{ "allowed-hlt-with-nmi-injected", RUNS, 0,
	  { W(SET, GUEST_ACTIVITY_STATE, 1), W(SET, VM_ENTRY_INTR_INFO, INFO(2, 2)) } },
	{ "allowed-hlt-with-db-injected", RUNS, 0,
	  { W(SET, GUEST_ACTIVITY_STATE, 1), W(SET, VM_ENTRY_INTR_INFO, INFO(3, 1)) } },
	{ "allowed-hlt-with-interrupt-injected", RUNS, 0,
	  { W(SET, GUEST_ACTIVITY_STATE, 1), W(SET, GUEST_RFLAGS, 0x202),
	    W(SET, VM_ENTRY_INTR_INFO, INFO(0, 0x30)) } },
	{ "allowed-cpl-3-active", RUNS, 0,
	  { W(OR, GUEST_CS_SELECTOR, 3), W(OR, GUEST_CS_AR, AR_DPL3), W(OR, GUEST_SS_SELECTOR, 3),
	    W(OR, GUEST_SS_AR, AR_DPL3) } },
	{ "allowed-pending-debug-breakpoints", RUNS, 0, { W(SET, GUEST_PENDING_DBG, 0x100F) } },
	/* Another ordinary VMCS region: nothing follows it without shadowing. */
	{ "allowed-vmcs-link-pointer-another-vmcs", RUNS, 0, { W(REGION, VMCS_LINK_POINTER, 9) } },
};

static uint64_t width_bit;

static void apply(const struct write *w)
{
	uint64_t v = vmr(w->field);

	switch (w->op) {
	case SET: v = w->value; break;
	case OR: v |= w->value; break;
	case CLR: v &= ~w->value; break;
	case SETW: v = w->value | width_bit; break;
	case SUBW: v = width_bit - w->value; break;
	case REGION:
		v = vmcs_region((unsigned)w->value);
		*(volatile uint32_t *)(uintptr_t)v = caps.revision;
		break;
	default: return;
	}
	vmw(w->field, v);
}

static int fresh(const char *name, enum l2_mode mode)
{
	struct l2_config c = { .mode = mode, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };

	return vmcs_make_current(vmcs_region(10), name) && vmcs_setup(&c, name);
}

/* The outcome of one rule, checked. */
static void verdict(const char *name, enum want kind, uint32_t want, const struct l2_exit *e)
{
	uint32_t failure = EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST;

	switch (kind) {
	case FAIL:
		want_entry_error(name, name, e, want);
		break;
	case EXIT33:
		check(name, e->result == VM_SUCCEED && e->reason == failure && e->qual == want,
		      "%s, want reason %#x qualification %u", exit_str(e), failure, want);
		break;
	case RUNS:
		check(name, e->result == VM_SUCCEED && !(e->reason & EXIT_REASON_ENTRY_FAILURE),
		      "%s, want L2 to run", exit_str(e));
		break;
	}
}

static struct l2_exit launch(void)
{
	struct l2_regs r;

	memset(&r, 0, sizeof(r));
	return l2_run("benign (entry check)", &r, 1);
}

/* PAE paging in a 32-bit L2 (§27.3.1.6): a present PDPTE with a reserved
 * bit fails the entry with qualification 2. */
static void pdpte_check(const char *name, uint64_t pdpte, enum want kind)
{
	static uint64_t pdpt[4] __attribute__((aligned(32)));
	struct l2_exit e;

	if (!fresh(name, L2_PROT32))
		return;
	memset(pdpt, 0, sizeof(pdpt));
	pdpt[1] = pdpte;
	vmw(GUEST_CR4, vmr(GUEST_CR4) | CR4_PAE);
	vmw(GUEST_CR3, (uint64_t)(uintptr_t)pdpt);
	e = launch();
	verdict(name, kind, kind == EXIT33 ? 2 : 0, &e);
}

/* The same with EPT (§27.3.1.6): the PDPTEs come from vmcs12's PDPTE
 * fields, not from memory, which holds clean entries here. Nothing runs:
 * the check comes before the EPTP is ever used. */
static void pdpte_field_check(const char *name, uint64_t pdpte)
{
	static uint64_t pdpt[4] __attribute__((aligned(32)));
	struct l2_exit e;

	if (!fresh(name, L2_PROT32))
		return;
	memset(pdpt, 0, sizeof(pdpt));
	vmw(GUEST_CR4, vmr(GUEST_CR4) | CR4_PAE);
	vmw(GUEST_CR3, (uint64_t)(uintptr_t)pdpt);
	vmw(PROC_BASED_CONTROLS, vmr(PROC_BASED_CONTROLS) | PROC_ACTIVATE_SECONDARY);
	vmw(SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	vmw(EPT_POINTER, EPTP_OK);
	vmw(PDPTE0 + 2, pdpte); /* PDPTE1 */
	e = launch();
	verdict(name, EXIT33, 2, &e);
}

void entry_checks(void)
{
	unsigned n = sizeof(rules) / sizeof(rules[0]);

	width_bit = 1ull << (cpuid(0x80000008, 0).eax & 0xFF);
	for (unsigned i = 0; i < n; i++) {
		const struct rule *r = &rules[i];

		if (!fresh(r->name, L2_LONG))
			continue;
		for (unsigned k = 0; k < 6 && r->w[k].op != END; k++)
			apply(&r->w[k]);
		struct l2_exit e = launch();
		verdict(r->name, r->kind, r->want, &e);
	}
	pdpte_check("guest-pdpte-reserved-bit", 1 | 1u << 5, EXIT33);
	pdpte_check("guest-pdpte-beyond-width", 1 | width_bit, EXIT33);
	pdpte_check("guest-pdpte-bits-2-1", 1 | 1u << 1, EXIT33);
	/* Only present PDPTEs are checked. */
	pdpte_check("allowed-pdpte-not-present-with-reserved-bits", 1u << 5 | 1u << 1, RUNS);
	pdpte_field_check("guest-pdpte-field-reserved-bit-with-ept", 1 | 1u << 5);
}
