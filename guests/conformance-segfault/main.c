/*
 * conformance-segfault - segment loads and their faults, one check per line.
 *
 * Built twice: conformance-segfault (64-bit long mode) and
 * conformance-segfault32 (32-bit protected mode), where null SS, segment
 * limits, expand-down segments and segment bases behave differently.
 *
 * The guest builds its own GDT (the runtime's five entries at the same
 * selectors, plus test descriptors) and an LDT, loads them, and checks:
 * null selectors, selectors beyond the GDT/LDT limit, system and code
 * descriptors in data segment registers, the SS rules (writable data,
 * RPL = DPL = CPL), RPL/DPL rules for data segments, not-present segments
 * (#NP, or #SS for SS), the accessed bit, LDT selectors with and without
 * an LDT, far JMP to data / not-present / wrong-privilege code, and
 * LAR/LSL/VERR/VERW. Error codes are the selector with the RPL bits
 * cleared (bit 0 EXT = 0, bit 1 IDT = 0, bit 2 = TI).
 *
 * In the 32-bit image, exceptions go through conf.h's IRET-free stubs, so
 * that kvm_pvm (which cannot run a 32-bit IRET) can run every check.
 */
#include "conf.h"

/* ------------------------------------------------------------- tables */

#ifdef __x86_64__
#define CODEF 0xA /* G, L */
#else
#define CODEF 0xC /* G, D */
#endif
#define DATAF 0xC /* G, B */

#define S_CODE32   0x08
#define S_DATA     0x10
#define S_CODE64   0x18
#define S_NP       0x20 /* data, P = 0 */
#define S_RO       0x28 /* read-only data */
#define S_XO       0x30 /* execute-only code */
#define S_DATA3    0x38 /* data, DPL 3 */
#define S_FRESH    0x40 /* data, accessed bit clear */
#define S_CODE_NP  0x48 /* code, P = 0 */
#define S_TSS      0x50 /* available TSS (16 bytes in long mode) */
#define S_LDT      0x60 /* LDT descriptor (16 bytes in long mode) */
#define S_CONF0    0x70 /* conforming readable code, DPL 0 */
#define S_CODE3    0x78 /* non-conforming code, DPL 3 */
#define S_BASE     0x80 /* data, base 0x1000 */
#define S_SMALL    0x88 /* data, limit 0xFFF, byte granular */
#define S_DOWN     0x90 /* expand-down data, limit 0xFFF */
#define S_STACK    0x98 /* data, limit 4 MiB (for SS) */
#define S_CONF3    0xA0 /* conforming code, DPL 3 */
#define N_GDT      21
#define S_BEYOND   0xA8 /* first selector past the GDT limit */

#define L_FRESH    0x04 /* LDT[0]: data, accessed clear */
#define L_NP       0x0C /* LDT[1]: data, P = 0 */
#define L_DATA     0x14 /* LDT[2]: data */
#define L_BEYOND   0x1C /* past the LDT limit (23) */

static uint64_t my_gdt[N_GDT] __attribute__((aligned(16)));
static uint64_t my_ldt[3] __attribute__((aligned(16)));
static uint8_t dummy_tss[104] __attribute__((aligned(16)));

static uint64_t desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
	return (limit & 0xFFFFull) | (uint64_t)(base & 0xFFFFFF) << 16 | (uint64_t)access << 40 |
	       (uint64_t)((limit >> 16) & 0xF) << 48 | (uint64_t)(flags & 0xF) << 52 |
	       (uint64_t)(base >> 24) << 56;
}

static struct dtr saved_gdt;

static void tables_setup(void)
{
	struct dtr d;

	my_gdt[0] = 0;
	my_gdt[1] = desc(0, 0xFFFFF, 0x9B, 0xC);     /* S_CODE32 */
	my_gdt[2] = desc(0, 0xFFFFF, 0x93, DATAF);   /* S_DATA */
	my_gdt[3] = desc(0, 0xFFFFF, 0x9B, 0xA);     /* S_CODE64 */
	my_gdt[4] = desc(0, 0xFFFFF, 0x13, DATAF);   /* S_NP */
	my_gdt[5] = desc(0, 0xFFFFF, 0x91, DATAF);   /* S_RO */
	my_gdt[6] = desc(0, 0xFFFFF, 0x99, CODEF);   /* S_XO */
	my_gdt[7] = desc(0, 0xFFFFF, 0xF3, DATAF);   /* S_DATA3 */
	my_gdt[8] = desc(0, 0xFFFFF, 0x92, DATAF);   /* S_FRESH */
	my_gdt[9] = desc(0, 0xFFFFF, 0x1B, CODEF);   /* S_CODE_NP */
	my_gdt[10] = desc((uintptr_t)dummy_tss, sizeof(dummy_tss) - 1, 0x89, 0); /* S_TSS */
	my_gdt[11] = 0; /* upper half of a 16-byte descriptor (base 63:32 = 0) */
	my_gdt[12] = desc((uintptr_t)my_ldt, sizeof(my_ldt) - 1, 0x82, 0); /* S_LDT */
	my_gdt[13] = 0;
	my_gdt[14] = desc(0, 0xFFFFF, 0x9F, CODEF);  /* S_CONF0 */
	my_gdt[15] = desc(0, 0xFFFFF, 0xFB, CODEF);  /* S_CODE3 */
	my_gdt[16] = desc(0x1000, 0xFFFFF, 0x93, DATAF); /* S_BASE */
	my_gdt[17] = desc(0, 0xFFF, 0x93, 0x4);      /* S_SMALL: B, byte granular */
	my_gdt[18] = desc(0, 0xFFF, 0x97, 0x4);      /* S_DOWN: expand-down, B */
	my_gdt[19] = desc(0, 0x3FF, 0x93, DATAF);    /* S_STACK: 0x400 pages = 4 MiB */
	my_gdt[20] = desc(0, 0xFFFFF, 0xFF, CODEF);  /* S_CONF3 */

	my_ldt[0] = desc(0, 0xFFFFF, 0x92, DATAF);   /* L_FRESH */
	my_ldt[1] = desc(0, 0xFFFFF, 0x12, DATAF);   /* L_NP */
	my_ldt[2] = desc(0, 0xFFFFF, 0x93, DATAF);   /* L_DATA */

	saved_gdt = sgdt();
	d.limit = sizeof(my_gdt) - 1;
	d.base = (uintptr_t)my_gdt;
	__asm__ volatile("lgdt %0" : : "m"(d) : "memory");
}

static void tables_restore(void)
{
	__asm__ volatile("lgdt %0" : : "m"(saved_gdt) : "memory");
}

/* Access byte (bits 47:40) of a GDT or LDT entry. */
static unsigned access_byte(volatile uint64_t *e)
{
	return (unsigned)((*e >> 40) & 0xFF);
}

/* ------------------------------------------------------ segment loads */

/*
 * Load `sel` into segment register `seg`, catching a fault; afterwards the
 * register is restored to S_DATA. Returns `done` (1 if execution resumed).
 */
#define DEF_LOAD(seg)                                                            \
	static uintptr_t load_##seg(uint32_t sel)                                \
	{                                                                        \
		uintptr_t done = 0;                                              \
		arm();                                                           \
		__asm__ volatile(ARM "1: movl %[sel], %%" #seg "\n" RESUMED      \
				 "movl %[d], %%" #seg                            \
				 : ARM_OUT                                       \
				 : [sel] "r"(sel), [d] "r"((uint32_t)S_DATA)     \
				 : "memory");                                    \
		return done;                                                     \
	}
DEF_LOAD(ds)
DEF_LOAD(es)
DEF_LOAD(fs)
DEF_LOAD(gs)
DEF_LOAD(ss)

/* Load and expect no fault. */
static void load_ok(const char *name, uintptr_t (*load)(uint32_t), uint32_t sel)
{
	uintptr_t done = load(sel);
	char what[48];

	snprintf(what, sizeof(what), "selector %#x loaded", (unsigned)sel);
	expect_none(name, done, what);
}

/* Load and expect `vector` with error code `error` at the mov. */
static void load_fault(const char *name, uintptr_t (*load)(uint32_t), uint32_t sel,
		       uintptr_t vector, uintptr_t error)
{
	uintptr_t done = load(sel);
	expect(name, vector, error, fault_ip, done);
}

static void null_checks(void)
{
	static uint32_t ds, es, fs, gs; /* static: absolute addresses, stored via SS */
	uintptr_t done = 0;

	/* A null selector (any RPL) may be loaded into DS, ES, FS and GS. */
	arm();
	__asm__ volatile(ARM "1: movl %[z], %%ds\n\t"
			     "movl %[z3], %%es\n\t"
			     "movl %[z], %%fs\n\t"
			     "movl %[z3], %%gs\n\t"
			     "movl %%ds, %%eax\n\tmovl %%eax, %%ss:%[a]\n\t"
			     "movl %%es, %%eax\n\tmovl %%eax, %%ss:%[b]\n\t"
			     "movl %%fs, %%eax\n\tmovl %%eax, %%ss:%[c]\n\t"
			     "movl %%gs, %%eax\n\tmovl %%eax, %%ss:%[d]\n\t"
			     "movl %[sd], %%ds\n\t"
			     "movl %[sd], %%es\n\t"
			     "movl %[sd], %%fs\n\t"
			     "movl %[sd], %%gs\n" RESUMED
			 : ARM_OUT, [a] "=m"(ds), [b] "=m"(es), [c] "=m"(fs), [d] "=m"(gs)
			 : [z] "r"(0), [z3] "r"(3), [sd] "r"(S_DATA)
			 : "eax", "memory");
	report("null-into-ds-es-fs-gs", hits == 0 && done && (ds & 0xFFFF) == 0 &&
					       (es & 0xFFFF) == 3 && (fs & 0xFFFF) == 0 &&
					       (gs & 0xFFFF) == 3,
	       "no fault, read back %#x %#x %#x %#x", ds & 0xFFFF, es & 0xFFFF, fs & 0xFFFF,
	       gs & 0xFFFF);

#ifdef __x86_64__
	/* 64-bit mode, CPL 0: a null selector with RPL = CPL = 0 may be loaded
	 * into SS (and the stack still works: push/pop); RPL 3 != CPL is
	 * #GP(0). */
	{
		uintptr_t v = 0;
		done = 0;
		arm();
		__asm__ volatile(ARM "1: movl %[z], %%ss\n\t"
				     "pushq $0x5A\n\t"
				     "popq %[v]\n\t"
				     "movl %[sd], %%ss\n" RESUMED
				 : ARM_OUT, [v] "+r"(v)
				 : [z] "r"(0), [sd] "r"(S_DATA)
				 : "memory");
		report("null-ss-rpl0-allowed-in-64-bit", hits == 0 && done && v == 0x5A,
		       "hits %u, stack works: %#lx", hits, (unsigned long)v);
	}
	load_fault("null-ss-rpl3-gp", load_ss, 3, VEC_GP, 0);
#else
	/* Protected mode: a null selector in SS is #GP(0). */
	load_fault("null-ss-gp", load_ss, 0, VEC_GP, 0);

	/* A null DS loads, but an access through it is #GP(0). */
	done = 0;
	arm();
	{
		static volatile uint32_t word = 0x1234;
		uint32_t v = 0;
		__asm__ volatile(ARM "movl %[z], %%ds\n"
				     "1: movl (%[p]), %[v]\n" RESUMED
				     "movl %[sd], %%ds"
				 : ARM_OUT, [v] "+r"(v)
				 : [z] "r"(0), [sd] "r"(S_DATA), [p] "r"(&word)
				 : "memory");
		expect("null-ds-access-gp", VEC_GP, 0, fault_ip, done);
	}
#endif
}

static void descriptor_checks(void)
{
	/* Selectors past the GDT limit: #GP(selector), RPL bits dropped. */
	load_fault("gdt-limit-gp", load_ds, S_BEYOND, VEC_GP, S_BEYOND);
	load_fault("gdt-limit-rpl3-gp", load_es, S_BEYOND | 3, VEC_GP, S_BEYOND);
	/* System descriptors cannot go into data segment registers. */
	load_fault("tss-into-ds-gp", load_ds, S_TSS, VEC_GP, S_TSS);
	load_fault("ldt-descriptor-into-fs-gp", load_fs, S_LDT, VEC_GP, S_LDT);
	/* Execute-only code is not readable. */
	load_fault("exec-only-code-into-ds-gp", load_ds, S_XO, VEC_GP, S_XO);
	/* Readable code is fine in a data segment register. */
	load_ok("readable-code-into-ds-ok", load_ds, SEL_CODE);
	/* Conforming readable code: no privilege check, RPL 3 is fine. */
	load_ok("conforming-code-rpl3-into-gs-ok", load_gs, S_CONF0 | 3);
	/* Non-conforming code with RPL 3 > DPL 0: #GP(selector). */
	load_fault("code-rpl3-into-es-gp", load_es, SEL_CODE | 3, VEC_GP, SEL_CODE);
	/* Data with DPL 3 >= max(CPL 0, RPL): fine with RPL 0 or 3. */
	load_ok("dpl3-data-into-fs-ok", load_fs, S_DATA3);
	load_ok("dpl3-data-rpl3-into-ds-ok", load_ds, S_DATA3 | 3);
	/* Data with DPL 0 and RPL 3: max(CPL, RPL) = 3 > DPL: #GP. */
	load_fault("dpl0-data-rpl3-into-gs-gp", load_gs, S_DATA | 3, VEC_GP, S_DATA);

	/* SS: writable data with RPL = DPL = CPL only. */
	load_fault("readonly-data-into-ss-gp", load_ss, S_RO, VEC_GP, S_RO);
	load_fault("code-into-ss-gp", load_ss, SEL_CODE, VEC_GP, SEL_CODE);
	load_fault("dpl3-data-into-ss-gp", load_ss, S_DATA3, VEC_GP, S_DATA3);
	load_fault("rpl3-data-into-ss-gp", load_ss, S_DATA | 3, VEC_GP, S_DATA);
	load_ok("data-into-ss-ok", load_ss, S_DATA);

	/* Not present: #NP(selector), or #SS(selector) for SS. The type is
	 * checked before P: a not-present code segment in SS is #GP. */
	load_fault("not-present-into-ds-np", load_ds, S_NP, VEC_NP, S_NP);
	load_fault("not-present-into-ss-ss", load_ss, S_NP, VEC_SS, S_NP);
	load_fault("not-present-code-into-ss-gp", load_ss, S_CODE_NP, VEC_GP, S_CODE_NP);

	/* The CPU sets the accessed bit of a descriptor it loads: 0x92 ->
	 * 0x93. A faulting load (not present) leaves the entry alone. */
	{
		unsigned before = access_byte(&my_gdt[S_FRESH >> 3]);
		unsigned np_before = access_byte(&my_gdt[S_NP >> 3]);
		uintptr_t done = load_es(S_FRESH);
		unsigned after = access_byte(&my_gdt[S_FRESH >> 3]);
		(void)load_es(S_NP);
		unsigned np_after = access_byte(&my_gdt[S_NP >> 3]);
		report("accessed-bit-set-on-load",
		       done && before == 0x92 && after == 0x93 && np_before == 0x13 &&
			       np_after == 0x13,
		       "access byte %#x -> %#x; not-present entry %#x -> %#x", before, after,
		       np_before, np_after);
	}

	/* mov to CS does not exist: #UD. */
	{
		uintptr_t done = 0;
		arm();
		__asm__ volatile(ARM "1: .byte 0x8E, 0xC8\n" RESUMED /* mov %eax, %cs */
				 : ARM_OUT
				 : "a"(SEL_CODE)
				 : "memory");
		expect("mov-to-cs-ud", VEC_UD, 0, fault_ip, done);
	}
}

static void ldt_checks(void)
{
	uintptr_t done;
	uint32_t ldtr = 0xFFFF;

	/* With LDTR null, a TI = 1 selector is #GP(selector). */
	__asm__ volatile("lldt %w0" : : "r"(0) : "memory");
	load_fault("ldt-selector-without-ldt-gp", load_ds, L_FRESH, VEC_GP, L_FRESH);

	/* lldt with a selector that is not an LDT descriptor: #GP(selector). */
	done = 0;
	arm();
	__asm__ volatile(ARM "1: lldt %w[s]\n" RESUMED : ARM_OUT : [s] "r"(S_TSS) : "memory");
	expect("lldt-tss-gp", VEC_GP, S_TSS, fault_ip, done);

	/* lldt with a real LDT descriptor; sldt reads it back; an LDT data
	 * selector then loads and gets its accessed bit set. */
	__asm__ volatile("lldt %w1\n\tsldt %k0" : "+r"(ldtr) : "r"(S_LDT) : "memory");
	{
		unsigned before = access_byte(&my_ldt[0]);
		done = load_ds(L_FRESH);
		unsigned after = access_byte(&my_ldt[0]);
		report("lldt-then-ldt-data-ok", hits == 0 && done && (ldtr & 0xFFFF) == S_LDT &&
						before == 0x92 && after == 0x93,
		       "sldt %#x, load ok (hits %u), accessed %#x -> %#x", ldtr & 0xFFFF, hits,
		       before, after);
	}
	load_ok("ldt-data-into-fs-ok", load_fs, L_DATA);
	load_fault("ldt-not-present-np", load_gs, L_NP, VEC_NP, L_NP);
	load_fault("ldt-limit-gp", load_ds, L_BEYOND, VEC_GP, L_BEYOND);

	/* Back to a null LDTR: the same selector faults again. */
	__asm__ volatile("lldt %w0" : : "r"(0) : "memory");
	load_fault("ldt-selector-after-null-lldt-gp", load_es, L_DATA, VEC_GP, L_DATA);
}

/* ------------------------------------------------------------ far JMP */

static struct {
	uint32_t off;
	uint16_t sel;
} __attribute__((packed)) far_ptr, back_ptr;

/*
 * ljmp through far_ptr (m16:32) to sel:3. If the jump succeeds, the code at
 * 3 records CS, jumps back to SEL_CODE:4 and sets *ok. A fault resumes at
 * 2 (done = 1).
 */
static uintptr_t far_jmp(uint32_t sel, uint32_t *cs_seen, uint32_t *ok)
{
	uintptr_t done = 0;
	uint32_t cs = 0, okv = 0;

	back_ptr.off = 0;
	arm();
	__asm__ volatile("movl $3f, %[fo]\n\t"
			 "movw %w[s], %[fs]\n\t"
			 "movl $4f, %[bo]\n\t"
			 "movw %[cs0], %[bs]\n\t" ARM
			 "1: ljmp *%[fp]\n"
			 "3: movl %%cs, %[cs]\n\t"
			 "ljmp *%[bp]\n"
			 "4: movl $1, %[ok]\n\t"
			 "jmp 5f\n" RESUMED
			 "5:"
			 : ARM_OUT, [cs] "+r"(cs), [ok] "+r"(okv), [fo] "=m"(far_ptr.off),
			   [fs] "=m"(far_ptr.sel), [bo] "=m"(back_ptr.off), [bs] "=m"(back_ptr.sel)
			 : [s] "r"(sel), [cs0] "i"(SEL_CODE), [fp] "m"(far_ptr), [bp] "m"(back_ptr)
			 : "memory");
	*cs_seen = cs & 0xFFFF;
	*ok = okv;
	return done;
}

static void far_jmp_fault(const char *name, uint32_t sel, uintptr_t vector, uintptr_t error)
{
	uint32_t cs, ok;
	uintptr_t done = far_jmp(sel, &cs, &ok);
	expect(name, vector, error, fault_ip, done);
}

static void far_jmp_checks(void)
{
	far_jmp_fault("far-jmp-data-segment-gp", S_DATA, VEC_GP, S_DATA);
	far_jmp_fault("far-jmp-not-present-code-np", S_CODE_NP, VEC_NP, S_CODE_NP);
	far_jmp_fault("far-jmp-null-gp", 0, VEC_GP, 0);
	far_jmp_fault("far-jmp-beyond-gdt-gp", S_BEYOND, VEC_GP, S_BEYOND);
	/* Non-conforming code needs DPL = CPL: DPL 3 from CPL 0 is #GP. */
	far_jmp_fault("far-jmp-dpl3-code-gp", S_CODE3, VEC_GP, S_CODE3);
	/* Conforming code needs DPL <= CPL: DPL 3 from CPL 0 is #GP. */
	far_jmp_fault("far-jmp-conforming-dpl3-gp", S_CONF3, VEC_GP, S_CONF3);
	/* Conforming code with DPL 0 from CPL 0: fine; CS.RPL = CPL = 0 even
	 * when the selector's RPL is 3. */
	{
		uint32_t cs, ok;
		uintptr_t done = far_jmp(S_CONF0 | 3, &cs, &ok);
		report("far-jmp-conforming-dpl0-ok", hits == 0 && ok && !done && cs == S_CONF0,
		       "hits %u, cs in the target %#x, back", hits, cs);
	}
}

/* ------------------------------------------------------ bases, limits */

static volatile uint32_t probe_word = 0xC0FFEE11;

#ifdef __x86_64__
static void base_checks(void)
{
	uint32_t v1 = 0, v2 = 0;

	/* Loading FS in 64-bit mode takes the base from the descriptor
	 * (0x1000): fs:(p - 0x1000) reads p. DS's base is ignored: ds:p
	 * reads p even with the same descriptor in DS. */
	__asm__ volatile("movl %[b], %%fs\n\t"
			 "movl %%fs:(%[q]), %[v1]\n\t"
			 "movl %[b], %%ds\n\t"
			 "movl (%[p]), %[v2]\n\t"
			 "movl %[sd], %%ds\n\t"
			 "movl %[sd], %%fs"
			 : [v1] "=&r"(v1), [v2] "=&r"(v2)
			 : [b] "r"(S_BASE), [sd] "r"(S_DATA), [p] "r"(&probe_word),
			   [q] "r"((uintptr_t)&probe_word - 0x1000)
			 : "memory");
	{
		uint64_t got[] = { v1, v2 }, want[] = { 0xC0FFEE11, 0xC0FFEE11 };
		CHECK_VALS("fs-base-from-descriptor-ds-base-ignored", got, want);
	}

	/* Segment limits are not checked in 64-bit mode: ES with a limit of
	 * 0xFFF reads far beyond it. */
	{
		uint32_t v = 0;
		uintptr_t done = 0;
		arm();
		__asm__ volatile(ARM "movl %[sm], %%es\n"
				     "1: movl %%es:(%[p]), %[v]\n" RESUMED
				     "movl %[sd], %%es"
				 : ARM_OUT, [v] "+r"(v)
				 : [sm] "r"(S_SMALL), [sd] "r"(S_DATA), [p] "r"(&probe_word)
				 : "memory");
		report("limit-ignored-in-64-bit", hits == 0 && done && v == 0xC0FFEE11,
		       "hits %u, read %#x through a 4 KiB segment", hits, v);
	}

	/* LGDT and LIDT of a non-canonical base in 64-bit mode: #GP(0), and
	 * the register keeps its value (read back before it is restored). */
	{
		struct dtr bad = { .limit = 0xFFF, .base = 0x0000800000000000ull };
		struct dtr gdt = sgdt(), idt = sidt(), after_g, after_i;
		uintptr_t done = 0;

		arm();
		__asm__ volatile(ARM "1: lgdt %[bad]\n" RESUMED
				     "sgdt %[after]\n\t"
				     "lgdt %[good]"
				 : ARM_OUT, [after] "=m"(after_g)
				 : [bad] "m"(bad), [good] "m"(gdt)
				 : "memory");
		expect("lgdt-non-canonical-base-gp", VEC_GP, 0, fault_ip, done);
		report("lgdt-non-canonical-keeps-gdtr",
		       after_g.base == gdt.base && after_g.limit == gdt.limit,
		       "GDTR %#lx/%#x after (want %#lx/%#x)", (unsigned long)after_g.base,
		       after_g.limit, (unsigned long)gdt.base, gdt.limit);
		done = 0;
		arm();
		__asm__ volatile(ARM "1: lidt %[bad]\n" RESUMED
				     "sidt %[after]\n\t"
				     "lidt %[good]"
				 : ARM_OUT, [after] "=m"(after_i)
				 : [bad] "m"(bad), [good] "m"(idt)
				 : "memory");
		expect("lidt-non-canonical-base-gp", VEC_GP, 0, fault_ip, done);
		report("lidt-non-canonical-keeps-idtr",
		       after_i.base == idt.base && after_i.limit == idt.limit,
		       "IDTR %#lx/%#x after (want %#lx/%#x)", (unsigned long)after_i.base,
		       after_i.limit, (unsigned long)idt.base, idt.limit);
	}
}
#else
/* Read the dword at `off` through `sel` loaded in ES (or SS with ss = 1). */
static uintptr_t read_via(uint32_t sel, uintptr_t off, int ss, uint32_t *v)
{
	uintptr_t done = 0;
	uint32_t val = 0xDEADDEAD;

	arm();
	if (ss)
		__asm__ volatile(ARM "movl %[s], %%ss\n"
				     "1: movl %%ss:(%[p]), %[v]\n" RESUMED
				     "movl %[sd], %%ss"
				 : ARM_OUT, [v] "+r"(val)
				 : [s] "r"(sel), [sd] "r"(S_DATA), [p] "r"(off)
				 : "memory");
	else
		__asm__ volatile(ARM "movl %[s], %%es\n"
				     "1: movl %%es:(%[p]), %[v]\n" RESUMED
				     "movl %[sd], %%es"
				 : ARM_OUT, [v] "+r"(val)
				 : [s] "r"(sel), [sd] "r"(S_DATA), [p] "r"(off)
				 : "memory");
	*v = val;
	return done;
}

static void base_checks(void)
{
	uint32_t v;
	uintptr_t done;

	/* Base 0x1000: es:(p - 0x1000) reads p. */
	done = read_via(S_BASE, (uintptr_t)&probe_word - 0x1000, 0, &v);
	report("segment-base", hits == 0 && done && v == 0xC0FFEE11, "hits %u, read %#x", hits, v);

	/* Limit 0xFFF (byte granular): a dword at 0xFFC is inside (last byte
	 * 0xFFF); at 0xFFD its last byte is 0x1000 > limit: #GP(0). */
	done = read_via(S_SMALL, 0xFFC, 0, &v);
	expect_none("limit-last-dword-ok", done, "dword at 0xffc read");
	done = read_via(S_SMALL, 0xFFD, 0, &v);
	expect("limit-crossing-dword-gp", VEC_GP, 0, fault_ip, done);

	/* Expand-down with limit 0xFFF and B = 1: valid offsets are 0x1000 ..
	 * 0xFFFFFFFF; 0x800 is #GP(0), p (above 1 MiB) is fine. */
	done = read_via(S_DOWN, 0x800, 0, &v);
	expect("expand-down-below-limit-gp", VEC_GP, 0, fault_ip, done);
	done = read_via(S_DOWN, (uintptr_t)&probe_word, 0, &v);
	report("expand-down-above-limit-ok", hits == 0 && done && v == 0xC0FFEE11,
	       "hits %u, read %#x", hits, v);

	/* An SS-relative access past SS's limit (4 MiB; the probe at 8 MiB is
	 * still RAM) is #SS(0). The stack itself (below 2 MiB) is inside the
	 * limit, so the delivery works. */
	done = read_via(S_STACK, 0x800000, 1, &v);
	expect("ss-limit-ss-fault", VEC_SS, 0, fault_ip, done);
}
#endif

/* ------------------------------------------------ LAR, LSL, VERR, VERW */

/* Run `insn` (operands: %[r] in/out, %[s] selector) with a fault armed;
 * record the result register and ZF. A fault (e.g. #UD from an engine
 * without the instruction) is counted in *faults. */
#define PROBE(insn, sel, outv, zf, faults)                                           \
	do {                                                                      \
		uintptr_t done = 0, fl_ = 0;                                      \
		arm();                                                            \
		__asm__ volatile(ARM "1: " insn "\n\t"                            \
				 "pushf\n\tpop %[f]\n" RESUMED                    \
				 : ARM_OUT, [r] "+r"(outv), [f] "+r"(fl_)            \
				 : [s] "r"((uint32_t)(sel))                       \
				 : "memory", "cc");                               \
		conf_armed = 0;                                                   \
		*(faults) += hits;                                                \
		zf = (uint32_t)(fl_ & ZF);                                        \
	} while (0)

static void probe_checks(void)
{
	uint32_t ar_ro = 0, ar_ldt = 0, lim_data = 0, lim_small = 0, bad = 0x5555, dummy = 0;
	uint32_t z1, z2, z3, z4, z5, faults = 0;

	/* lar: bits 23:8 of the descriptor's high dword; bits 19:16 are
	 * undefined (masked). S_RO: 0x00CF9100 -> 0x00C09100. The LDT
	 * descriptor is a valid type for LAR: 0x8200. */
	PROBE("larl %[s], %[r]", S_RO, ar_ro, z1, &faults);
	PROBE("larl %[s], %[r]", S_LDT, ar_ldt, z2, &faults);
	/* lsl: the byte limit, scaled by G: 0xFFFFF pages -> 0xFFFFFFFF;
	 * S_SMALL -> 0xFFF. Beyond the GDT: ZF = 0, destination not written. */
	PROBE("lsll %[s], %[r]", S_DATA, lim_data, z3, &faults);
	PROBE("lsll %[s], %[r]", S_SMALL, lim_small, z4, &faults);
	PROBE("lsll %[s], %[r]", S_BEYOND, bad, z5, &faults);
	{
		uint64_t got[] = { ar_ro & 0x00F0FF00, z1, ar_ldt & 0x00F0FF00, z2, lim_data, z3,
				   lim_small, z4, bad, z5, faults };
		uint64_t want[] = { 0x00C09100, ZF, 0x8200, ZF, 0xFFFFFFFF, ZF, 0xFFF, ZF, 0x5555,
				    0, 0 };
		CHECK_VALS("lar-lsl", got, want);
	}

	/* verr/verw set ZF when the segment is readable/writable at CPL 0:
	 * execute-only code: not readable; readable code: readable;
	 * read-only data: not writable; data: writable. */
	faults = 0;
	PROBE("verr %w[s]", S_XO, dummy, z1, &faults);
	PROBE("verr %w[s]", SEL_CODE, dummy, z2, &faults);
	PROBE("verw %w[s]", S_RO, dummy, z3, &faults);
	PROBE("verw %w[s]", S_DATA, dummy, z4, &faults);
	{
		uint64_t got[] = { z1, z2, z3, z4, faults };
		uint64_t want[] = { 0, ZF, 0, ZF, 0 };
		CHECK_VALS("verr-verw", got, want);
	}
}

int main(void)
{
#ifdef __x86_64__
	faults_on();
#else
	nr_on();
#endif
	tables_setup();
	null_checks();
	descriptor_checks();
	ldt_checks();
	far_jmp_checks();
	base_checks();
	probe_checks();
	/* Last: kvm_pvm stops with an emulation failure on a far jmp to an LDT
	 * descriptor. An LDT descriptor is not a valid far jmp target in
	 * either mode: #GP(selector). */
	far_jmp_fault("far-jmp-ldt-descriptor-gp", S_LDT, VEC_GP, S_LDT);
	tables_restore();
#ifdef __x86_64__
	faults_off();
#else
	nr_off();
#endif
	report_done();
}
