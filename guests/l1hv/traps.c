/*
 * traps.c - single instructions run with #UD and #GP caught.
 *
 * Each wrapper stores the address after its instruction in catch_resume
 * and registers catcher() for #UD and #GP; a fault there lands in catcher,
 * which records the vector and error code and resumes after the
 * instruction, in 64-bit mode. Any other exception still goes to the
 * runtime's default handler (FAIL unexpected-exception, summary, exit 1).
 */
#include "l1hv.h"

#define STR(x) #x
#define XSTR(x) STR(x)

static volatile uint64_t catch_resume;
static volatile int caught;
static volatile uint64_t caught_error;

static void catcher(struct trap_frame *f)
{
	caught = (int)f->vector;
	caught_error = f->error;
	f->ip = catch_resume;
	/* vmcall_compat_safe faults in compatibility mode; every wrapper
	 * resumes in 64-bit code. */
	f->cs = SEL_CODE64;
}

uint64_t trap_error_code(void)
{
	return caught_error;
}

static void arm(void)
{
	caught = -1;
	caught_error = 0;
	trap_set_handler(VEC_UD, catcher);
	trap_set_handler(VEC_GP, catcher);
}

static int disarm(void)
{
	trap_set_handler(VEC_UD, 0);
	trap_set_handler(VEC_GP, 0);
	return caught;
}

/*
 * TRAPPED(insn, inputs...): runs `insn` (assembler text, its input
 * operands from %1 on) with #UD and #GP caught: the vector, or -1 if it
 * completed. TRAPPED_FLAGS(flags, insn, inputs...): the same with the
 * inputs from %2 on, and RFLAGS right after the instruction in *flags.
 */
#define TRAPPED(insn, ...)                                               \
	({                                                               \
		arm();                                                   \
		__asm__ volatile("movq $1f, %0\n\t" insn "\n1:"          \
				 : "=m"(catch_resume)                    \
				 : __VA_ARGS__                           \
				 : "memory");                            \
		disarm();                                                \
	})
#define TRAPPED_FLAGS(flags, insn, ...)                                  \
	({                                                               \
		uint64_t fl_ = 0;                                        \
		arm();                                                   \
		__asm__ volatile("movq $1f, %1\n\t" insn "\n"            \
				 "1:\tpushfq\n\t"                        \
				 "popq %0"                               \
				 : "=r"(fl_), "=m"(catch_resume)         \
				 : __VA_ARGS__                           \
				 : "cc", "memory");                      \
		*(flags) = fl_;                                          \
		disarm();                                                \
	})

/* RDMSR has register outputs, which neither macro offers. */
int rdmsr_safe(uint32_t msr, uint64_t *value)
{
	uint32_t lo = 0, hi = 0;

	arm();
	__asm__ volatile("movq $1f, %2\n\t"
			 "rdmsr\n"
			 "1:"
			 : "+a"(lo), "+d"(hi), "=m"(catch_resume)
			 : "c"(msr)
			 : "memory");
	*value = (uint64_t)hi << 32 | lo;
	return disarm();
}

int wrmsr_safe(uint32_t msr, uint64_t value)
{
	return TRAPPED("wrmsr", "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

int vmxon_safe(uint64_t pa, uint64_t *flags)
{
	return TRAPPED_FLAGS(flags, "vmxon %2", "m"(pa));
}

int vmxoff_safe(uint64_t *flags)
{
	return TRAPPED_FLAGS(flags, "vmxoff");
}

/* INVEPT r64, m128 (Intel order): type in a register, descriptor in memory. */
int invept_safe(uint64_t type, const void *desc, uint64_t *flags)
{
	return TRAPPED_FLAGS(flags, "invept %3, %2", "r"(type), "m"(*(const char(*)[16])desc));
}

/* INVVPID r64, m128 (Intel order): type in a register, descriptor in memory. */
int invvpid_safe(uint64_t type, const struct invvpid_desc *desc, uint64_t *flags)
{
	return TRAPPED_FLAGS(flags, "invvpid %3, %2", "r"(type), "m"(*desc));
}

int write_cr0_safe(uint64_t value)
{
	return TRAPPED("mov %1, %%cr0", "r"(value));
}

int write_cr4_safe(uint64_t value)
{
	return TRAPPED("mov %1, %%cr4", "r"(value));
}

int vmcall_safe(uint64_t *flags)
{
	return TRAPPED_FLAGS(flags, "vmcall");
}

/*
 * compat_vmcall(): a far return to SEL_CODE32 (L = 0, D = 1) with
 * IA32_EFER.LMA = 1 is compatibility mode; there VMCALL, then a far jump
 * back to 64-bit code, which returns RFLAGS as the VMCALL left them. A
 * fault lands in catcher(), which resumes at compat_vmcall_resume with
 * CS = SEL_CODE64; nothing was pushed in compatibility mode, so the stack
 * is the same either way. The 32-bit part is in .boot, which build.rs
 * disassembles as i386.
 */
uint64_t compat_vmcall(void);
extern char compat_vmcall_resume[];
__asm__(".text\n"
	".code64\n"
	".globl compat_vmcall, compat_vmcall_resume\n"
	"compat_vmcall:\n\t"
	"pushq $" XSTR(SEL_CODE32) "\n\t"
	"pushq $compat_vmcall_32\n\t"
	"lretq\n"
	"compat_vmcall_resume:\n\t"
	"pushfq\n\t"
	"popq %rax\n\t"
	"ret\n"
	".pushsection .boot, \"ax\"\n"
	".code32\n"
	"compat_vmcall_32:\n\t"
	"vmcall\n\t"
	"ljmp $" XSTR(SEL_CODE64) ", $compat_vmcall_resume\n"
	".code64\n"
	".popsection\n");

int vmcall_compat_safe(uint64_t *flags)
{
	arm();
	catch_resume = (uint64_t)(uintptr_t)compat_vmcall_resume;
	*flags = compat_vmcall();
	return disarm();
}
