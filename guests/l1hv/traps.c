/*
 * traps.c - single instructions run with #UD and #GP caught.
 *
 * Each wrapper stores the address after its instruction in catch_resume
 * and registers catcher() for #UD and #GP; a fault there lands in catcher,
 * which records the vector and resumes after the instruction. Any other
 * exception still goes to the runtime's default handler (FAIL
 * unexpected-exception, summary, exit 1).
 */
#include "l1hv.h"

static volatile uint64_t catch_resume;
static volatile int caught;

static void catcher(struct trap_frame *f)
{
	caught = (int)f->vector;
	f->ip = catch_resume;
}

static void arm(void)
{
	caught = -1;
	trap_set_handler(VEC_UD, catcher);
	trap_set_handler(VEC_GP, catcher);
}

static int disarm(void)
{
	trap_set_handler(VEC_UD, 0);
	trap_set_handler(VEC_GP, 0);
	return caught;
}

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
	arm();
	__asm__ volatile("movq $1f, %0\n\t"
			 "wrmsr\n"
			 "1:"
			 : "=m"(catch_resume)
			 : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
			 : "memory");
	return disarm();
}

int vmxon_safe(uint64_t pa, uint64_t *flags)
{
	uint64_t fl = 0;

	arm();
	__asm__ volatile("movq $1f, %1\n\t"
			 "vmxon %2\n"
			 "1:\tpushfq\n\t"
			 "popq %0"
			 : "=r"(fl), "=m"(catch_resume)
			 : "m"(pa)
			 : "cc", "memory");
	*flags = fl;
	return disarm();
}

int vmxoff_safe(uint64_t *flags)
{
	uint64_t fl = 0;

	arm();
	__asm__ volatile("movq $1f, %1\n\t"
			 "vmxoff\n"
			 "1:\tpushfq\n\t"
			 "popq %0"
			 : "=r"(fl), "=m"(catch_resume)
			 :
			 : "cc", "memory");
	*flags = fl;
	return disarm();
}

/* INVEPT r64, m128 (Intel order): type in a register, descriptor in memory. */
int invept_safe(uint64_t type, const void *desc, uint64_t *flags)
{
	uint64_t fl = 0;

	arm();
	__asm__ volatile("movq $1f, %1\n\t"
			 "invept %3, %2\n"
			 "1:\tpushfq\n\t"
			 "popq %0"
			 : "=r"(fl), "=m"(catch_resume)
			 : "r"(type), "m"(*(const char(*)[16])desc)
			 : "cc", "memory");
	*flags = fl;
	return disarm();
}

/* INVVPID r64, m128 (Intel order): type in a register, descriptor in memory. */
int invvpid_safe(uint64_t type, const struct invvpid_desc *desc, uint64_t *flags)
{
	uint64_t fl = 0;

	arm();
	__asm__ volatile("movq $1f, %1\n\t"
			 "invvpid %3, %2\n"
			 "1:\tpushfq\n\t"
			 "popq %0"
			 : "=r"(fl), "=m"(catch_resume)
			 : "r"(type), "m"(*desc)
			 : "cc", "memory");
	*flags = fl;
	return disarm();
}

int write_cr4_safe(uint64_t value)
{
	arm();
	__asm__ volatile("movq $1f, %0\n\t"
			 "mov %1, %%cr4\n"
			 "1:"
			 : "=m"(catch_resume)
			 : "r"(value)
			 : "memory");
	return disarm();
}
