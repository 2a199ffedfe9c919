/*
 * l1hv.h - what the parts of the l1hv guest share.
 */
#ifndef L1HV_H
#define L1HV_H

#include "vmx.h"

/* ------------------------------------------------ capabilities (vmcs.c) */

struct vmx_caps {
	uint64_t basic, misc, vmcs_enum;
	uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	/* The control MSRs consulted: the TRUE ones when IA32_VMX_BASIC[55]
	 * says they exist (SDM Vol. 3C §A.2), and the secondary controls. */
	uint64_t pin, proc, proc2, exit, entry;
	uint64_t ept_vpid; /* 0 when IA32_VMX_EPT_VPID_CAP does not exist */
	uint32_t revision;
};
extern struct vmx_caps caps;

/* Reads the capability MSRs (faults caught); reports and returns 0 on a fault. */
int vmx_read_caps(void);

/* (want | must-be-1) & may-be-1 of a control MSR (SDM Vol. 3C §A.3-A.5). */
static inline uint32_t vmx_ctl(uint64_t msr, uint32_t want)
{
	return (want | (uint32_t)msr) & (uint32_t)(msr >> 32);
}

/* ------------------------------------------------ VMCS (vmcs.c) */

enum l2_mode {
	L2_LONG,    /* 64-bit, on L1's page tables */
	L2_PROT32,  /* 32-bit protected mode, 32-bit paging with 4 MiB pages */
	L2_FLAT32,  /* 32-bit protected mode, paging off (unrestricted guest) */
	L2_REAL16,  /* real-address mode (unrestricted guest) */
};

/* What a payload asks of its VMCS, on top of the common settings. */
struct l2_config {
	enum l2_mode mode;
	uint64_t rip, rsp;
	uint32_t proc2;          /* secondary controls wanted (0: none) */
	uint32_t notify_window;  /* with PROC2_NOTIFY_VM_EXITING */
	uint64_t eptp;           /* with PROC2_ENABLE_EPT */
	uint16_t real_cs, real_ds; /* L2_REAL16: CS, and SS = DS = ES = FS = GS;
				    * each base is the selector << 4 */
};

/* L1's own GDT (the runtime's descriptors plus a 64-bit TSS at 0x28) and
 * TSS, which VM exits need: HOST_TR_SELECTOR must not be 0 (§27.2.3). */
#define L1_SEL_TSS 0x28
void l1_tables_init(void);

/* VMXON region and VMCS regions: 4 KiB each, revision identifier in the
 * first 31 bits (SDM Vol. 3C §25.2, §25.11.5). */
uint64_t vmxon_region_init(void); /* before VMXON */
uint64_t vmxon_region_pa(void);
uint64_t vmcs_region(unsigned n);   /* n < VMCS_REGIONS */
#define VMCS_REGIONS 16
/* A region whose revision identifier is not the processor's. */
uint64_t vmcs_bad_revision_region(void);

/* VMCLEAR + VMPTRLD; reports a FAIL named `check` and returns 0 on failure. */
int vmcs_make_current(uint64_t pa, const char *check);
/* Every control, host and guest field for `c` (VMCS must be current);
 * reports a FAIL named `check` and returns 0 if a VMWRITE failed. */
int vmcs_setup(const struct l2_config *c, const char *check);
/* The controls vmcs_setup() computes for `c`, and the wanted bits that did
 * not survive the capability MSRs (vmcs_setup refuses those). */
struct vmx_controls {
	uint32_t pin, proc, proc2, exit, entry;
	uint32_t missing_pin, missing_proc, missing_proc2, missing_exit, missing_entry;
};
struct vmx_controls vmx_controls_for(const struct l2_config *c);

/* ------------------------------------------------ traps (traps.c) */

/* Each runs one instruction with #UD and #GP caught: the vector, or -1 if
 * the instruction completed (then *flags is RFLAGS after it). */
int rdmsr_safe(uint32_t msr, uint64_t *value);
int wrmsr_safe(uint32_t msr, uint64_t value);
int vmxon_safe(uint64_t pa, uint64_t *flags);
int invept_safe(uint64_t type, const void *desc, uint64_t *flags);
int invvpid_safe(uint64_t type, const struct invvpid_desc *desc, uint64_t *flags);
int write_cr0_safe(uint64_t value);
int write_cr4_safe(uint64_t value);
int vmxoff_safe(uint64_t *flags);
int vmcall_safe(uint64_t *flags);
/* VMCALL in compatibility mode (CS = SEL_CODE32 with IA32_EFER.LMA = 1);
 * back in 64-bit mode either way. */
int vmcall_compat_safe(uint64_t *flags);
/* The error code of the last fault one of the above caught (0 for #UD). */
uint64_t trap_error_code(void);

/* ------------------------------------------------ local APIC (lapic.c) */

#define TIMER_VECTOR 0x40
/* Maps the APIC page, software-enables the APIC, installs the timer gate.
 * Returns the timer's input clock in Hz (CPUID.15H:ECX, else assumed). */
uint32_t lapic_init(void);
void lapic_arm_oneshot(uint32_t ms);
/* Stops the timer and lets a request that is still pending through (with
 * IF = 1 for one instruction) so the next L2 run starts clean. */
void lapic_disarm(void);
void lapic_eoi(void);
/* Whether `vector` is requested (IRR) or in service (ISR). */
int lapic_irr(unsigned vector);
int lapic_isr(unsigned vector);
extern volatile uint32_t lapic_isr_count;
extern int lapic_hz_from_cpuid;

/* ------------------------------------------------ reporting (main.c) */

/* report(), except that in fuzz and bench modes PASS lines are not printed. */
int check(const char *name, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
extern int fuzz_mode, bench_mode;

/* One L2 run and what its VM exit left in the VMCS (main.c). */
struct l2_exit {
	enum vm_result result;  /* of VMLAUNCH/VMRESUME itself */
	uint32_t error;         /* VM-instruction error, for VM_FAIL_VALID */
	uint32_t reason;        /* full exit-reason field */
	uint64_t qual;
	uint32_t intr_info, vect_info, vect_error, insn_len;
	uint64_t rip;
	uint64_t gpa, linear;   /* EPT violations and misconfigurations */
};
struct l2_exit l2_run(const char *payload, struct l2_regs *regs, int launch);
const char *exit_reason_name(uint32_t reason);
/* "reason 18 (VMCALL)" or "VMfailValid error 7" (a static buffer). */
const char *exit_str(const struct l2_exit *e);
/* The run ended in a VM exit with basic reason `reason`. */
int is_exit(const struct l2_exit *e, uint32_t reason);
/* A VMCALL exit (3 bytes) with RAX = want. */
int vmcall_ok(const struct l2_exit *e, uint64_t rax, uint64_t want);
/* GUEST_RIP past the instruction that exited (VM-exit instruction length). */
void skip_instruction(const struct l2_exit *e);
/* End of RAM from the multiboot information (0 if it gave none). */
extern uint64_t l1_ram_end;

/* errors.c: VMfailValid with error `want` from a VMX instruction's RFLAGS
 * `fl`, or from a VMLAUNCH/VMRESUME; a PASS or FAIL line named `name`. */
void want_fail_valid(const char *name, const char *what, uint64_t fl, uint32_t want);
void want_entry_error(const char *name, const char *what, const struct l2_exit *e, uint32_t want);

/* errors.c, events.c, ept.c, fuzz.c, bench.c */
void vmx_error_checks(void);
void vmx_leave(void); /* VMXOFF, the last check */
void nested_event_checks(void);
void msr_list_checks(void); /* msrlist.c */
void tsc_checks(void);      /* tsc.c */
void mtf_checks(void);      /* mtf.c */
void hlt_checks(void);      /* hlt.c */
void pause_loop_checks(void); /* hlt.c */
void preemption_timer_checks(void); /* timer.c */
void entry_checks(void);    /* entrychecks.c */
void tpr_checks(void);      /* tpr.c */
void payload_ept(void);
void eptad_checks(void);    /* eptad.c, once payload_ept built the copy */
void fuzz_run(const void *module, uint32_t len) __attribute__((noreturn));
/* mode=bench: `what` and `loops` are the values of what= and loops= on the
 * command line (not NUL-terminated; NULL if absent). */
void bench_run(const char *what, size_t what_len, const char *loops, size_t loops_len)
	__attribute__((noreturn));

#endif
