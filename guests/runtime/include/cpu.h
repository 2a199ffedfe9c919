/* cpu.h - control registers, MSRs, CPUID, descriptor-table registers. */
#ifndef RT_CPU_H
#define RT_CPU_H

#include <stdint.h>

#define CR0_PE   (1u << 0)
#define CR0_PG   (1u << 31)
#define CR4_PAE  (1u << 5)
#define MSR_EFER 0xC0000080u
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

#define FLAGS_CF 0x0001u
#define FLAGS_PF 0x0004u
#define FLAGS_AF 0x0010u
#define FLAGS_ZF 0x0040u
#define FLAGS_SF 0x0080u
#define FLAGS_TF 0x0100u
#define FLAGS_IF 0x0200u
#define FLAGS_DF 0x0400u
#define FLAGS_OF 0x0800u
/* The six arithmetic status flags. */
#define FLAGS_ARITH (FLAGS_CF | FLAGS_PF | FLAGS_AF | FLAGS_ZF | FLAGS_SF | FLAGS_OF)

/* Descriptor-table register image as stored by sgdt/sidt. */
struct __attribute__((packed)) dtr {
	uint16_t limit;
	uintptr_t base;
};

#define DEFINE_READ_CR(n)                                                \
	static inline uintptr_t read_cr##n(void)                         \
	{                                                                \
		uintptr_t v;                                             \
		__asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));        \
		return v;                                                \
	}
DEFINE_READ_CR(0)
DEFINE_READ_CR(2)
DEFINE_READ_CR(3)
DEFINE_READ_CR(4)
#undef DEFINE_READ_CR

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

struct cpuid_regs {
	uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct cpuid_regs r;
	__asm__ volatile("cpuid"
			 : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			 : "a"(leaf), "c"(subleaf));
	return r;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uintptr_t read_flags(void)
{
	uintptr_t f;
	__asm__ volatile("pushf\n\tpop %0" : "=r"(f));
	return f;
}

static inline struct dtr sgdt(void)
{
	struct dtr d;
	__asm__ volatile("sgdt %0" : "=m"(d));
	return d;
}

static inline struct dtr sidt(void)
{
	struct dtr d;
	__asm__ volatile("sidt %0" : "=m"(d));
	return d;
}

static inline void cli(void) { __asm__ volatile("cli"); }
static inline void sti(void) { __asm__ volatile("sti"); }
static inline void hlt(void) { __asm__ volatile("hlt"); }

#endif
