/*
 * vmx.h - VMX for the l1hv guest: VMCS field encodings, control bits, exit
 * reasons, VM-instruction error numbers, and inline-assembly wrappers for the
 * VMX instructions.
 *
 * Every VMX instruction reports its outcome in RFLAGS (SDM Vol. 3C §31.2):
 *   VMsucceed      CF = PF = AF = ZF = SF = OF = 0
 *   VMfailInvalid  CF = 1, the others 0 (no current VMCS to hold an error)
 *   VMfailValid    ZF = 1, the others 0; the error number is in the
 *                  VM-instruction error field of the current VMCS (§31.4)
 * The wrappers return RFLAGS as the instruction left it (PUSHFQ right after
 * it); vm_result() classifies it.
 */
#ifndef L1HV_VMX_H
#define L1HV_VMX_H

#include "rt.h"

/* ------------------------------------------------------------ MSRs */

#define MSR_FEATURE_CONTROL     0x03A
#define MSR_APIC_BASE           0x01B
#define MSR_VMX_BASIC           0x480
#define MSR_VMX_PINBASED        0x481
#define MSR_VMX_PROCBASED       0x482
#define MSR_VMX_EXIT            0x483
#define MSR_VMX_ENTRY           0x484
#define MSR_VMX_MISC            0x485
#define MSR_VMX_CR0_FIXED0      0x486
#define MSR_VMX_CR0_FIXED1      0x487
#define MSR_VMX_CR4_FIXED0      0x488
#define MSR_VMX_CR4_FIXED1      0x489
#define MSR_VMX_VMCS_ENUM       0x48A
#define MSR_VMX_PROCBASED2      0x48B
#define MSR_VMX_EPT_VPID_CAP    0x48C
#define MSR_VMX_TRUE_PINBASED   0x48D
#define MSR_VMX_TRUE_PROCBASED  0x48E
#define MSR_VMX_TRUE_EXIT       0x48F
#define MSR_VMX_TRUE_ENTRY      0x490

#define FEATURE_CONTROL_LOCKED      (1u << 0)
#define FEATURE_CONTROL_VMX_OUTSIDE (1u << 2)

/* IA32_VMX_BASIC (SDM Vol. 3C §A.1). */
#define VMX_BASIC_REVISION(v)   ((uint32_t)(v) & 0x7FFFFFFFu)
#define VMX_BASIC_SIZE(v)       ((uint32_t)((v) >> 32) & 0x1FFFu)
#define VMX_BASIC_ADDR32        (1ull << 48)
#define VMX_BASIC_MEMTYPE(v)    ((uint32_t)((v) >> 50) & 0xFu)
#define VMX_BASIC_INSOUTS       (1ull << 54)
#define VMX_BASIC_TRUE_CTLS     (1ull << 55)

/* IA32_VMX_MISC bit 29: VMWRITE may write VM-exit information fields (§A.6). */
#define VMX_MISC_VMWRITE_ANY    (1ull << 29)

/* IA32_VMX_EPT_VPID_CAP (§A.10). */
#define EPT_CAP_EXEC_ONLY       (1ull << 0)
#define EPT_CAP_WALK_4          (1ull << 6)
#define EPT_CAP_UC              (1ull << 8)
#define EPT_CAP_WB              (1ull << 14)
#define EPT_CAP_2M              (1ull << 16)
#define EPT_CAP_1G              (1ull << 17)
#define EPT_CAP_INVEPT          (1ull << 20)
#define EPT_CAP_AD              (1ull << 21)
#define EPT_CAP_INVEPT_SINGLE   (1ull << 25)
#define EPT_CAP_INVEPT_ALL      (1ull << 26)
#define VPID_CAP_INVVPID        (1ull << 32)
#define VPID_CAP_TYPE(t)        (1ull << (40 + (t)))

#define CR0_NE  (1u << 5)
#define CR0_ET  (1u << 4)
#define CR0_AM  (1u << 18)
#define CR4_PSE (1u << 4)
#define CR4_VMXE (1u << 13)
#define CR4_PCIDE (1u << 17)

/* ------------------------------------------------------------ VMCS fields */
/* Encodings from SDM Vol. 3C Appendix B. */

/* 16-bit */
#define VPID                    0x0000
#define GUEST_ES_SELECTOR       0x0800
#define GUEST_CS_SELECTOR       0x0802
#define GUEST_SS_SELECTOR       0x0804
#define GUEST_DS_SELECTOR       0x0806
#define GUEST_FS_SELECTOR       0x0808
#define GUEST_GS_SELECTOR       0x080A
#define GUEST_LDTR_SELECTOR     0x080C
#define GUEST_TR_SELECTOR       0x080E
#define GUEST_PML_INDEX         0x0812
#define HOST_ES_SELECTOR        0x0C00
#define HOST_CS_SELECTOR        0x0C02
#define HOST_SS_SELECTOR        0x0C04
#define HOST_DS_SELECTOR        0x0C06
#define HOST_FS_SELECTOR        0x0C08
#define HOST_GS_SELECTOR        0x0C0A
#define HOST_TR_SELECTOR        0x0C0C
/* 64-bit */
#define IO_BITMAP_A             0x2000
#define IO_BITMAP_B             0x2002
#define MSR_BITMAP              0x2004
#define VM_EXIT_MSR_STORE_ADDR  0x2006
#define VM_EXIT_MSR_LOAD_ADDR   0x2008
#define VM_ENTRY_MSR_LOAD_ADDR  0x200A
#define PML_ADDRESS             0x200E
#define TSC_OFFSET              0x2010
#define VIRTUAL_APIC_PAGE_ADDR  0x2012
#define EPT_POINTER             0x201A
#define GUEST_PHYSICAL_ADDRESS  0x2400
#define VMCS_LINK_POINTER       0x2800
#define GUEST_IA32_DEBUGCTL     0x2802
#define GUEST_IA32_PAT          0x2804
#define GUEST_IA32_EFER         0x2806
#define HOST_IA32_PAT           0x2C00
#define HOST_IA32_EFER          0x2C02
/* 32-bit */
#define PIN_BASED_CONTROLS      0x4000
#define PROC_BASED_CONTROLS     0x4002
#define EXCEPTION_BITMAP        0x4004
#define PF_ERROR_CODE_MASK      0x4006
#define PF_ERROR_CODE_MATCH     0x4008
#define CR3_TARGET_COUNT        0x400A
#define VM_EXIT_CONTROLS        0x400C
#define VM_EXIT_MSR_STORE_COUNT 0x400E
#define VM_EXIT_MSR_LOAD_COUNT  0x4010
#define VM_ENTRY_CONTROLS       0x4012
#define VM_ENTRY_MSR_LOAD_COUNT 0x4014
#define VM_ENTRY_INTR_INFO      0x4016
#define PLE_GAP                 0x4020
#define PLE_WINDOW              0x4022
#define VM_ENTRY_EXCEPTION_ERROR_CODE 0x4018
#define VM_ENTRY_INSTRUCTION_LEN 0x401A
#define TPR_THRESHOLD           0x401C
#define SECONDARY_CONTROLS      0x401E
#define NOTIFY_WINDOW           0x4024
#define VM_INSTRUCTION_ERROR    0x4400
#define VM_EXIT_REASON          0x4402
#define VM_EXIT_INTR_INFO       0x4404
#define VM_EXIT_INTR_ERROR_CODE 0x4406
#define IDT_VECTORING_INFO      0x4408
#define IDT_VECTORING_ERROR_CODE 0x440A
#define VM_EXIT_INSTRUCTION_LEN 0x440C
#define GUEST_ES_LIMIT          0x4800
#define GUEST_CS_LIMIT          0x4802
#define GUEST_SS_LIMIT          0x4804
#define GUEST_DS_LIMIT          0x4806
#define GUEST_FS_LIMIT          0x4808
#define GUEST_GS_LIMIT          0x480A
#define GUEST_LDTR_LIMIT        0x480C
#define GUEST_TR_LIMIT          0x480E
#define GUEST_GDTR_LIMIT        0x4810
#define GUEST_IDTR_LIMIT        0x4812
#define GUEST_ES_AR             0x4814
#define GUEST_CS_AR             0x4816
#define GUEST_SS_AR             0x4818
#define GUEST_DS_AR             0x481A
#define GUEST_FS_AR             0x481C
#define GUEST_GS_AR             0x481E
#define GUEST_LDTR_AR           0x4820
#define GUEST_TR_AR             0x4822
#define GUEST_INTERRUPTIBILITY  0x4824
#define GUEST_ACTIVITY_STATE    0x4826
#define GUEST_SYSENTER_CS       0x482A
#define PREEMPTION_TIMER_VALUE  0x482E
#define HOST_SYSENTER_CS        0x4C00
/* natural width */
#define CR0_GUEST_HOST_MASK     0x6000
#define CR4_GUEST_HOST_MASK     0x6002
#define CR0_READ_SHADOW         0x6004
#define CR4_READ_SHADOW         0x6006
#define EXIT_QUALIFICATION      0x6400
#define GUEST_LINEAR_ADDRESS    0x640A
#define GUEST_CR0               0x6800
#define GUEST_CR3               0x6802
#define GUEST_CR4               0x6804
#define GUEST_ES_BASE           0x6806
#define GUEST_CS_BASE           0x6808
#define GUEST_SS_BASE           0x680A
#define GUEST_DS_BASE           0x680C
#define GUEST_FS_BASE           0x680E
#define GUEST_GS_BASE           0x6810
#define GUEST_LDTR_BASE         0x6812
#define GUEST_TR_BASE           0x6814
#define GUEST_GDTR_BASE         0x6816
#define GUEST_IDTR_BASE         0x6818
#define GUEST_DR7               0x681A
#define GUEST_RSP               0x681C
#define GUEST_RIP               0x681E
#define GUEST_RFLAGS            0x6820
#define GUEST_PENDING_DBG       0x6822
#define GUEST_SYSENTER_ESP      0x6824
#define GUEST_SYSENTER_EIP      0x6826
#define HOST_CR0                0x6C00
#define HOST_CR3                0x6C02
#define HOST_CR4                0x6C04
#define HOST_FS_BASE            0x6C06
#define HOST_GS_BASE            0x6C08
#define HOST_TR_BASE            0x6C0A
#define HOST_GDTR_BASE          0x6C0C
#define HOST_IDTR_BASE          0x6C0E
#define HOST_SYSENTER_ESP       0x6C10
#define HOST_SYSENTER_EIP       0x6C12
#define HOST_RSP                0x6C14
#define HOST_RIP                0x6C16

/* ------------------------------------------------------------ controls */
/* SDM Vol. 3C §25.6 (execution), §25.7 (exit), §25.8 (entry). */

#define PIN_EXT_INTR_EXITING    (1u << 0)
#define PIN_NMI_EXITING         (1u << 3)
#define PIN_VIRTUAL_NMIS        (1u << 5)
#define PIN_PREEMPTION_TIMER    (1u << 6)

#define PROC_INTR_WINDOW        (1u << 2)
#define PROC_HLT_EXITING        (1u << 7)
#define PROC_INVLPG_EXITING     (1u << 9)
#define PROC_MWAIT_EXITING      (1u << 10)
#define PROC_RDPMC_EXITING      (1u << 11)
#define PROC_USE_TSC_OFFSETTING (1u << 3)
#define PROC_RDTSC_EXITING      (1u << 12)
#define PROC_MONITOR_TRAP_FLAG  (1u << 27)
#define PROC_CR3_LOAD_EXITING   (1u << 15)
#define PROC_CR3_STORE_EXITING  (1u << 16)
#define PROC_CR8_LOAD_EXITING   (1u << 19)
#define PROC_CR8_STORE_EXITING  (1u << 20)
#define PROC_USE_TPR_SHADOW     (1u << 21)
#define PROC_UNCOND_IO_EXITING  (1u << 24)
#define PROC_USE_IO_BITMAPS     (1u << 25)
#define PROC_USE_MSR_BITMAPS    (1u << 28)
#define PROC_ACTIVATE_SECONDARY (1u << 31)

#define PROC2_ENABLE_EPT        (1u << 1)
#define PROC2_DESC_TABLE_EXITING (1u << 2)
#define PROC2_PAUSE_LOOP_EXITING (1u << 10)
#define PROC2_ENABLE_VPID       (1u << 5)
#define PROC2_UNRESTRICTED_GUEST (1u << 7)
#define PROC2_ENABLE_PML        (1u << 17)
#define PROC2_NOTIFY_VM_EXITING (1u << 31)

#define EXIT_HOST_ADDR_SPACE_SIZE (1u << 9)
#define EXIT_ACK_INTR_ON_EXIT   (1u << 15)
#define EXIT_SAVE_EFER          (1u << 20)
#define EXIT_LOAD_EFER          (1u << 21)
#define EXIT_SAVE_PREEMPTION_TIMER (1u << 22)

#define ENTRY_IA32E_MODE_GUEST  (1u << 9)
#define ENTRY_LOAD_EFER         (1u << 15)

/* ------------------------------------------------------------ exits */
/* Basic exit reasons (SDM Vol. 3C Appendix C). */

#define EXIT_REASON_EXCEPTION_NMI   0
#define EXIT_REASON_EXTERNAL_INTR   1
#define EXIT_REASON_TRIPLE_FAULT    2
#define EXIT_REASON_CPUID           10
#define EXIT_REASON_HLT             12
#define EXIT_REASON_RDTSC           16
#define EXIT_REASON_VMCALL          18
#define EXIT_REASON_IO              30
#define EXIT_REASON_INVALID_GUEST   33
#define EXIT_REASON_MSR_LOADING     34
#define EXIT_REASON_MTF             37
#define EXIT_REASON_PAUSE           40
#define EXIT_REASON_TPR_BELOW       43
#define EXIT_REASON_PREEMPTION_TIMER 52
#define EXIT_REASON_EPT_VIOLATION   48
#define EXIT_REASON_EPT_MISCONFIG   49
#define EXIT_REASON_PML_FULL        62
#define EXIT_REASON_NOTIFY          75
/* Bit 31 of the exit-reason field: VM-entry failure (§28.2.1, §27.8). */
#define EXIT_REASON_ENTRY_FAILURE   (1u << 31)

/* Interruption-information format (§25.9.2, §25.9.3). */
#define INTR_INFO_VALID         (1u << 31)
#define INTR_INFO_ERROR_VALID   (1u << 11)
#define INTR_TYPE_EXT_INTR      (0u << 8)
#define INTR_TYPE_HW_EXCEPTION  (3u << 8)

/* RFLAGS.TF, and BS in the pending debug exceptions (Table 25-5) and in a
 * #DB's exit qualification (Table 28-1). */
#define RFLAGS_TF               (1ull << 8)
#define PENDING_DBG_BS          (1ull << 14)

/* Exit qualification for I/O instructions (Table 28-5). */
#define IOQ_SIZE(q)     ((uint32_t)(q) & 7u)      /* 0: 1 byte, 1: 2, 3: 4 */
#define IOQ_IN          (1u << 3)
#define IOQ_STRING      (1u << 4)
#define IOQ_REP         (1u << 5)
#define IOQ_IMMEDIATE   (1u << 6)
#define IOQ_PORT(q)     ((uint32_t)((q) >> 16) & 0xFFFFu)

/* Exit qualification for EPT violations (Table 28-7). */
#define EPTQ_READ       (1u << 0)   /* the access was a data read */
#define EPTQ_WRITE      (1u << 1)   /* a data write */
#define EPTQ_FETCH      (1u << 2)   /* an instruction fetch */
#define EPTQ_PERMS(q)   ((uint32_t)((q) >> 3) & 7u) /* R/W/X the entries allowed (AND over the walk) */
#define EPTQ_LINEAR_VALID (1u << 7) /* GUEST_LINEAR_ADDRESS is valid */
#define EPTQ_TRANSLATED (1u << 8)   /* the access was to the translated address, not a paging structure */

/* VM-instruction error numbers (SDM Vol. 3C §31.4, Table 31-1). */
#define VMERR_VMCALL_IN_ROOT            1
#define VMERR_VMCLEAR_BAD_ADDR          2
#define VMERR_VMCLEAR_VMXON_PTR         3
#define VMERR_VMLAUNCH_NOT_CLEAR        4
#define VMERR_VMRESUME_NOT_LAUNCHED     5
#define VMERR_ENTRY_BAD_CONTROLS        7
#define VMERR_ENTRY_BAD_HOST_STATE      8
#define VMERR_VMPTRLD_BAD_ADDR          9
#define VMERR_VMPTRLD_VMXON_PTR         10
#define VMERR_VMPTRLD_BAD_REVISION      11
#define VMERR_UNSUPPORTED_FIELD         12
#define VMERR_VMWRITE_READ_ONLY         13
#define VMERR_VMXON_IN_ROOT             15
#define VMERR_INVALID_INVEPT_INVVPID    28

/* ------------------------------------------------------------ instructions */

enum vm_result { VM_SUCCEED = 0, VM_FAIL_INVALID = 1, VM_FAIL_VALID = 2 };

static inline enum vm_result vm_result(uint64_t rflags)
{
	if (rflags & FLAGS_CF)
		return VM_FAIL_INVALID;
	if (rflags & FLAGS_ZF)
		return VM_FAIL_VALID;
	return VM_SUCCEED;
}

/* The instructions taking a 64-bit physical address in memory. */
#define VMX_PA_INSN(name, insn)                                               \
	static inline uint64_t name(uint64_t pa)                              \
	{                                                                     \
		uint64_t fl;                                                  \
		__asm__ volatile(insn " %1\n\tpushfq\n\tpopq %0"              \
				 : "=r"(fl)                                   \
				 : "m"(pa)                                    \
				 : "cc", "memory");                           \
		return fl;                                                    \
	}
VMX_PA_INSN(vmxon, "vmxon")
VMX_PA_INSN(vmclear, "vmclear")
VMX_PA_INSN(vmptrld, "vmptrld")
#undef VMX_PA_INSN

static inline uint64_t vmptrst(uint64_t *pa)
{
	uint64_t fl;
	__asm__ volatile("vmptrst %1\n\tpushfq\n\tpopq %0" : "=r"(fl), "=m"(*pa) : : "cc", "memory");
	return fl;
}

static inline uint64_t vmxoff(void)
{
	uint64_t fl;
	__asm__ volatile("vmxoff\n\tpushfq\n\tpopq %0" : "=r"(fl) : : "cc", "memory");
	return fl;
}

/* VMREAD r/m64, r64 (Intel order): the encoding in a register, the value out. */
static inline uint64_t vmread_flags(uint64_t field, uint64_t *value)
{
	uint64_t fl, v = 0;
	__asm__ volatile("vmread %2, %1\n\tpushfq\n\tpopq %0"
			 : "=r"(fl), "+r"(v)
			 : "r"(field)
			 : "cc", "memory");
	*value = v;
	return fl;
}

/* VMWRITE r64, r/m64 (Intel order): the encoding in a register, the value in. */
static inline uint64_t vmwrite_flags(uint64_t field, uint64_t value)
{
	uint64_t fl;
	__asm__ volatile("vmwrite %2, %1\n\tpushfq\n\tpopq %0"
			 : "=r"(fl)
			 : "r"(field), "rm"(value)
			 : "cc", "memory");
	return fl;
}

/* The INVEPT descriptor (SDM Vol. 3C §31.3, INVEPT). */
struct invept_desc {
	uint64_t eptp;
	uint64_t reserved; /* must be 0 */
};

/* INVEPT types; IA32_VMX_EPT_VPID_CAP bit 24 + type says which exist. */
#define INVEPT_SINGLE_CONTEXT   1
#define INVEPT_ALL_CONTEXT      2

struct invvpid_desc {
	uint64_t vpid; /* bits 15:0; 63:16 reserved, must be 0 */
	uint64_t linear_address;
};

/* ------------------------------------------------------------ L1 side */

/* L2's general registers, which VM entries and exits neither load nor save
 * (only RSP, RIP and RFLAGS are in the VMCS); exit.S moves them. The order
 * is the offsets exit.S uses. */
struct l2_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
};

/*
 * exit.S: writes HOST_RSP, loads `regs` into the GPRs and executes
 * VMLAUNCH (launch != 0) or VMRESUME. Returns VM_SUCCEED when L2 ran and
 * exited (or the entry failed on guest state, which also lands on HOST_RIP),
 * with L2's GPRs stored back into `regs`; VM_FAIL_INVALID or VM_FAIL_VALID
 * when the instruction itself failed.
 */
enum vm_result vmx_run(struct l2_regs *regs, int launch);
/* HOST_RIP: the VM-exit entry point in exit.S. */
extern char vmx_exit_entry[];

/* VMWRITE/VMREAD for setup code; a failure is recorded (vmcs.c). */
void vmw(uint32_t field, uint64_t value);
uint64_t vmr(uint32_t field);
/* The first VMWRITE/VMREAD that failed since vmcs_errors_reset(): its field
 * and VM-instruction error (0 for VMfailInvalid), or field ~0 if none. */
struct vmcs_error {
	uint32_t field;
	uint32_t error;
	unsigned count;
};
void vmcs_errors_reset(void);
struct vmcs_error vmcs_errors(void);
/* The VM-instruction error field of the current VMCS. */
uint32_t vm_instruction_error(void);

#endif
