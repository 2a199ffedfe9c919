/*
 * conformance-cpu - what a booting kernel probes of the processor, one
 * check per line: the MTRRs (capability, default type, fixed and variable
 * ranges, and the #GP of SDM Vol. 3A §12.11 for reserved bits, undefined
 * types and IA32_MTRRCAP writes), CMPXCHG16B (both outcomes, LOCK, #GP for
 * an unaligned operand), CPUID leaf 0xB and the leaves beyond the maximum,
 * leaf 0x16 against leaf 0x15, RDTSCP and IA32_TSC_AUX, SWAPGS and
 * IA32_KERNEL_GS_BASE, STAR/LSTAR/CSTAR/FMASK, PAT, the hint instructions
 * (NOPL in every ModRM form, the reserved NOPs, PAUSE, the fences,
 * CLFLUSH, the prefetches) and TZCNT on a processor without BMI1.
 *
 * Every MSR a check writes is put back afterwards. Expected values are
 * architectural (SDM) or this model's documented CPUID/MSR values where
 * the check says so.
 */
#include "conf.h"

#define MSR_MTRRCAP 0xFE
#define MSR_MTRR_PHYSBASE7 0x20E
#define MSR_MTRR_PHYSMASK7 0x20F
#define MSR_MTRR_FIX64K 0x250
#define MSR_MTRR_FIX4K_C0000 0x268
#define MSR_MTRR_DEF_TYPE 0x2FF
#define MSR_PAT 0x277
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_CSTAR 0xC0000083
#define MSR_FMASK 0xC0000084
#define MSR_GS_BASE 0xC0000101
#define MSR_KERNEL_GS_BASE 0xC0000102
#define MSR_TSC_AUX 0xC0000103

/* WRMSR that may fault; 1 when execution went on past it. */
static uintptr_t try_wrmsr(uint32_t msr, uint64_t v)
{
	uintptr_t done = 0;

	arm();
	__asm__ volatile(ARM "1: wrmsr\n\t" RESUMED
			 : ARM_OUT
			 : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
	return done;
}

/* RDMSR that may fault. */
static uintptr_t try_rdmsr(uint32_t msr)
{
	uintptr_t done = 0;
	uint32_t lo = 0, hi = 0;

	arm();
	__asm__ volatile(ARM "1: rdmsr\n\t" RESUMED
			 : ARM_OUT, "+a"(lo), "+d"(hi)
			 : "c"(msr)
			 : "memory");
	return done;
}

static void wrmsr_gp(const char *name, uint32_t msr, uint64_t v)
{
	uintptr_t done = try_wrmsr(msr, v);
	expect(name, VEC_GP, 0, fault_ip, done);
}

/* Write v, read it back, restore the old value. */
static void msr_roundtrip(const char *name, uint32_t msr, uint64_t v)
{
	uint64_t old = rdmsr(msr);

	wrmsr(msr, v);
	uint64_t got = rdmsr(msr);
	wrmsr(msr, old);
	report_eq(name, got, v);
}

/* ------------------------------------------------------------- MTRRs */

static void mtrr_checks(void)
{
	/* CPUID.1:EDX.MTRR (bit 12). */
	report_eq("cpuid-mtrr", (cpuid(1, 0).edx >> 12) & 1, 1);
	/* VCNT 8 (7:0), FIX (8), WC (10), no SMRR (11): 0x508. */
	report_eq("mtrrcap", rdmsr(MSR_MTRRCAP), 0x508);
	/* E (11), FE (10), default type WB (6). */
	msr_roundtrip("mtrr-def-type", MSR_MTRR_DEF_TYPE, 0xC06);
	/* Eight valid types, one per sub-range: WB WP WT WC UC WB WP WT. */
	msr_roundtrip("mtrr-fix4k", MSR_MTRR_FIX4K_C0000, 0x0605040100060504ull);
	/* A WP range at 1 GiB, 1 GiB long: the mask uses bits below 36 only,
	 * valid for every MAXPHYADDR an engine may have. */
	msr_roundtrip("mtrr-physbase7", MSR_MTRR_PHYSBASE7, 0x40000005ull);
	msr_roundtrip("mtrr-physmask7", MSR_MTRR_PHYSMASK7, 0xFC0000800ull);

	wrmsr_gp("mtrrcap-write-gp", MSR_MTRRCAP, 0x508);
	/* DEF_TYPE bit 9 is reserved. */
	wrmsr_gp("mtrr-def-type-reserved-gp", MSR_MTRR_DEF_TYPE, 0x206);
	/* Type 2 is reserved; 7 (UC-) is a PAT type only. */
	wrmsr_gp("mtrr-def-type-type2-gp", MSR_MTRR_DEF_TYPE, 0x802);
	wrmsr_gp("mtrr-fix64k-uc-minus-gp", MSR_MTRR_FIX64K, 0x0706060606060606ull);
	/* PHYSBASE bits 11:8 and PHYSMASK bits 10:0 are reserved. */
	wrmsr_gp("mtrr-physbase-reserved-gp", MSR_MTRR_PHYSBASE7, 0x40000105ull);
	wrmsr_gp("mtrr-physmask-reserved-gp", MSR_MTRR_PHYSMASK7, 0xFC0000801ull);
	/* Bit 63 is above any MAXPHYADDR. */
	wrmsr_gp("mtrr-physbase-above-maxphyaddr-gp", MSR_MTRR_PHYSBASE7, (1ull << 63) | 6);
	/* PHYSBASE8 (0x210) does not exist with VCNT = 8. */
	{
		uintptr_t done = try_rdmsr(0x210);
		expect("mtrr-physbase8-gp", VEC_GP, 0, fault_ip, done);
	}
}

/* -------------------------------------------------------- CMPXCHG16B */

static uint64_t m128[4] __attribute__((aligned(16)));

struct cx16 {
	uint64_t rax, rdx;
	uintptr_t zf;
};

/* cmpxchg16b (p) with RDX:RAX = e1:e0 and RCX:RBX = n1:n0. */
#define CX16(insn, p, e0, e1, n0, n1, out)                                          \
	__asm__ volatile(insn " %[m]\n\tsetz %b[zf]"                                 \
			 : [m] "+m"(*(volatile uint64_t(*)[2])(p)), "+a"((out).rax),  \
			   "+d"((out).rdx), [zf] "=q"((out).zf)                      \
			 : "b"(n0), "c"(n1)                                           \
			 : "cc")

static void cx16_checks(void)
{
	struct cx16 r;

	report_eq("cpuid-cx16", (cpuid(1, 0).ecx >> 13) & 1, 1);

	/* Equal: RCX:RBX stored, ZF = 1, RDX:RAX unchanged. */
	m128[0] = 0x1111222233334444ull, m128[1] = 0x5555666677778888ull;
	r.rax = m128[0], r.rdx = m128[1], r.zf = 0;
	CX16("cmpxchg16b", m128, r.rax, r.rdx, 0xAAAAull, 0xBBBBull, r);
	{
		uint64_t got[] = { m128[0], m128[1], r.rax, r.rdx, r.zf & 0xFF };
		uint64_t want[] = { 0xAAAA, 0xBBBB, 0x1111222233334444ull, 0x5555666677778888ull, 1 };
		CHECK_VALS("cmpxchg16b-equal", got, want);
	}
	/* Different: memory loaded into RDX:RAX, ZF = 0, memory unchanged. */
	r.rax = 1, r.rdx = 2;
	CX16("lock cmpxchg16b", m128, r.rax, r.rdx, 0xCCCCull, 0xDDDDull, r);
	{
		uint64_t got[] = { m128[0], m128[1], r.rax, r.rdx, r.zf & 0xFF };
		uint64_t want[] = { 0xAAAA, 0xBBBB, 0xAAAA, 0xBBBB, 0 };
		CHECK_VALS("lock-cmpxchg16b-differ", got, want);
	}
	/* An operand 8 bytes off a 16-byte boundary: #GP(0), nothing written. */
	{
		uintptr_t done = 0;
		uint64_t *p = &m128[1];

		m128[1] = 0xAAAA, m128[2] = 0xBBBB;
		arm();
		__asm__ volatile(ARM "mov %%rax, %%rbx\n\tmov %%rdx, %%rcx\n\t"
				 "1: lock cmpxchg16b (%[p])\n\t" RESUMED
				 : ARM_OUT
				 : [p] "r"(p), "a"(0xAAAAull), "d"(0xBBBBull)
				 : "rbx", "rcx", "memory", "cc");
		expect("cmpxchg16b-unaligned-gp", VEC_GP, 0, fault_ip, done);
		report_eq("cmpxchg16b-unaligned-unchanged", m128[1] ^ m128[2], 0xAAAA ^ 0xBBBB);
	}
}

/* -------------------------------------------------------------- CPUID */

static void cpuid_checks(void)
{
	struct cpuid_regs l0 = cpuid(0, 0), l1 = cpuid(1, 0);
	uint32_t apic_id = l1.ebx >> 24;

	/* Leaf 0xB: SMT level (type 1) with one thread, core level (type 2)
	 * with one logical processor, then an invalid level that echoes the
	 * subleaf; EDX the x2APIC ID, equal to the initial APIC ID. */
	if (l0.eax < 0xB) {
		report("cpuid-b-smt", 0, "max leaf %#x below 0xb", l0.eax);
	} else {
		struct cpuid_regs s = cpuid(0xB, 0), c = cpuid(0xB, 1), i = cpuid(0xB, 2);
		uint64_t got[] = { s.ebx & 0xFFFF, s.ecx, s.edx == apic_id };
		uint64_t want[] = { 1, 0x100, 1 };
		CHECK_VALS("cpuid-b-smt", got, want);
		uint64_t gotc[] = { c.ebx & 0xFFFF, c.ecx, c.edx == apic_id };
		uint64_t wantc[] = { 1, 0x201, 1 };
		CHECK_VALS("cpuid-b-core", gotc, wantc);
		uint64_t goti[] = { i.eax, i.ebx, i.ecx, i.edx == apic_id };
		uint64_t wanti[] = { 0, 0, 2, 1 };
		CHECK_VALS("cpuid-b-invalid-level", goti, wanti);
	}
	/* Above the highest basic and extended leaves: the highest basic leaf. */
	{
		uint32_t ext = cpuid(0x80000000, 0).eax;
		struct cpuid_regs top = cpuid(l0.eax, 0), b = cpuid(l0.eax + 1, 0);
		struct cpuid_regs e = cpuid(ext + 1, 0);
		report("cpuid-beyond-max-basic", b.eax == top.eax && b.ebx == top.ebx &&
		       b.ecx == top.ecx && b.edx == top.edx, "answers as the highest basic leaf");
		report("cpuid-beyond-max-extended", e.eax == top.eax && e.ebx == top.ebx &&
		       e.ecx == top.ecx && e.edx == top.edx, "answers as the highest basic leaf");
	}
	/* Leaf 0x16 base frequency = the TSC frequency of leaf 0x15, in MHz. */
	if (l0.eax < 0x16) {
		report("cpuid-16-tsc", 0, "max leaf %#x below 0x16", l0.eax);
	} else {
		struct cpuid_regs t = cpuid(0x15, 0), f = cpuid(0x16, 0);
		uint64_t mhz = t.eax ? (uint64_t)t.ecx * t.ebx / t.eax / 1000000 : 0;
		report("cpuid-16-tsc", mhz && f.eax == mhz && f.ebx >= f.eax,
		       "base = maximum = leaf 0x15's TSC frequency");
	}
}

/* ---------------------------------------------- MSRs of the fast calls */

static void msr_checks(void)
{
	uint32_t aux;
	uint64_t t0, t1;

	/* RDTSCP: ECX = IA32_TSC_AUX, the TSC not behind an earlier RDTSC.
	 * Only where CPUID.80000001H:EDX.RDTSCP (bit 27) offers it. */
	if (!((cpuid(0x80000001, 0).edx >> 27) & 1)) {
		report("rdtscp-tsc-aux", 0, "RDTSCP not offered");
	} else {
		uint64_t old = rdmsr(MSR_TSC_AUX);
		uint32_t lo, hi;

		wrmsr(MSR_TSC_AUX, 0x2A);
		t0 = rdtsc();
		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
		t1 = ((uint64_t)hi << 32) | lo;
		wrmsr(MSR_TSC_AUX, old);
		report("rdtscp-tsc-aux", aux == 0x2A && t1 >= t0, "ecx %#x, not behind rdtsc",
		       aux);
	}
	/* TSC_AUX bits 63:32 are reserved. */
	if ((cpuid(0x80000001, 0).edx >> 27) & 1)
		wrmsr_gp("tsc-aux-reserved-gp", MSR_TSC_AUX, 1ull << 32);

	/* SWAPGS exchanges GS.base and IA32_KERNEL_GS_BASE. */
	{
		uint64_t gs = rdmsr(MSR_GS_BASE), kgs = rdmsr(MSR_KERNEL_GS_BASE);

		wrmsr(MSR_GS_BASE, 0x1000);
		wrmsr(MSR_KERNEL_GS_BASE, 0xFFFF800000002000ull);
		__asm__ volatile("swapgs" ::: "memory");
		uint64_t got[] = { rdmsr(MSR_GS_BASE), rdmsr(MSR_KERNEL_GS_BASE) };
		__asm__ volatile("swapgs" ::: "memory");
		wrmsr(MSR_GS_BASE, gs);
		wrmsr(MSR_KERNEL_GS_BASE, kgs);
		uint64_t want[] = { 0xFFFF800000002000ull, 0x1000 };
		CHECK_VALS("swapgs", got, want);
	}
	wrmsr_gp("kernel-gs-base-noncanonical-gp", MSR_KERNEL_GS_BASE, 0x8000000000000000ull);

	/* STAR, LSTAR, CSTAR, FMASK hold what is written (canonical targets). */
	msr_roundtrip("star", MSR_STAR, 0x0023001000000000ull);
	msr_roundtrip("lstar", MSR_LSTAR, 0xFFFFFFFF81000000ull);
	msr_roundtrip("cstar", MSR_CSTAR, 0xFFFFFFFF81000040ull);
	msr_roundtrip("fmask", MSR_FMASK, 0x47700);
	wrmsr_gp("lstar-noncanonical-gp", MSR_LSTAR, 0x0000800000000000ull);

	/* PAT: the reset value reads back; type 2 in an entry is #GP. */
	msr_roundtrip("pat", MSR_PAT, 0x0007040600070406ull);
	wrmsr_gp("pat-reserved-type-gp", MSR_PAT, 0x0007040600070402ull);
}

/* ------------------------------------------------- hint instructions */

static uint8_t line[64] __attribute__((aligned(64)));

static void hint_checks(void)
{
	uintptr_t done = 0;

	/* NOPL (0F 1F /0) with every ModRM form gcc and the SDM's table of
	 * recommended multi-byte NOPs use, and a register operand. */
	arm();
	__asm__ volatile(ARM "1:\n\t"
			 ".byte 0x0f, 0x1f, 0x00\n\t"                         /* nopl (%rax) */
			 ".byte 0x0f, 0x1f, 0x40, 0x00\n\t"                   /* nopl 0(%rax) */
			 ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"             /* nopl 0(%rax,%rax) */
			 ".byte 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"       /* nopw */
			 ".byte 0x0f, 0x1f, 0x80, 0, 0, 0, 0\n\t"             /* nopl disp32(%rax) */
			 ".byte 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0\n\t"       /* nopl disp32(sib) */
			 ".byte 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0\n\t"
			 ".byte 0x0f, 0x1f, 0x05, 0, 0, 0, 0\n\t"             /* nopl rip-relative */
			 ".byte 0x0f, 0x1f, 0xc0\n\t"                         /* nop %eax */
			 ".byte 0x48, 0x0f, 0x1f, 0xc0\n\t"                   /* nop %rax */
			 RESUMED
			 : ARM_OUT
			 :
			 : "memory");
	expect_none("nopl-forms", done, "ten forms executed");

	/* 0F 19-0F 1E and 0F 1F /1-/7: the reserved-NOP space (SDM Vol. 2B
	 * NOP, opcode map "NOP Ev"); 0F 18 /4-/7 reserved hints. */
	done = 0;
	arm();
	__asm__ volatile(ARM "1:\n\t"
			 ".byte 0x0f, 0x19, 0x00\n\t"
			 ".byte 0x0f, 0x1c, 0x40, 0x00\n\t"
			 ".byte 0x0f, 0x1f, 0x08\n\t"
			 ".byte 0x0f, 0x1f, 0x78, 0x00\n\t"
			 ".byte 0x0f, 0x18, 0x20\n\t"
			 ".byte 0x0f, 0x18, 0x38\n\t"
			 RESUMED
			 : ARM_OUT
			 :
			 : "memory");
	expect_none("reserved-nops", done, "six forms executed");

	done = 0;
	arm();
	__asm__ volatile(ARM "1: pause\n\tlfence\n\tsfence\n\tmfence\n\t"
			 "clflush %[l]\n\t"
			 "prefetchnta %[l]\n\tprefetcht0 %[l]\n\tprefetcht1 %[l]\n\t"
			 "prefetcht2 %[l]\n\tprefetchw %[l]\n\t"
			 ".byte 0x0f, 0x0d, 0x00\n\t" /* 0F 0D /0, PREFETCH (%rax) */
			 RESUMED
			 : ARM_OUT, [l] "+m"(line)
			 : "a"(line)
			 : "memory");
	expect_none("hints-fences-prefetch", done, "pause, fences, clflush, prefetches executed");
}

/* TZCNT without BMI1 (CPUID.7:EBX bit 3) is BSF: a zero source leaves the
 * destination and sets ZF. With BMI1 it writes the operand size and CF. */
static void tzcnt_checks(void)
{
	uint32_t bmi1 = cpuid(0, 0).eax >= 7 ? (cpuid(7, 0).ebx >> 3) & 1 : 0;
	uint64_t dst = 0x1234, zero = 0;
	uint8_t zf;

	__asm__ volatile("tzcnt %[s], %[d]\n\tsetz %[z]"
			 : [d] "+r"(dst), [z] "=q"(zf)
			 : [s] "r"(zero)
			 : "cc");
	if (bmi1)
		report("tzcnt-without-bmi1", 0, "BMI1 offered: tzcnt of 0 gave %#llx",
		       (unsigned long long)dst);
	else
		report("tzcnt-without-bmi1", dst == 0x1234 && zf == 1,
		       "bsf of 0: destination %#llx, zf %u", (unsigned long long)dst, zf);
}

int main(void)
{
	faults_on();
	mtrr_checks();
	cpuid_checks();
	msr_checks();
	hint_checks();
	tzcnt_checks();
	/* Last: kvm_pvm stops on CMPXCHG16B. */
	cx16_checks();
	faults_off();
	report_done();
}
