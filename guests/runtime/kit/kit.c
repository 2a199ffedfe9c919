/* kit.c - the conformance kit: GDT, TSS, user pages, recording trap handler. */
#include "kit.h"

uint8_t kit_rsp0_stack[KIT_STACK] __attribute__((aligned(16)));
uint8_t kit_ist1_stack[KIT_STACK] __attribute__((aligned(16)));
uint8_t kit_ist2_stack[KIT_STACK] __attribute__((aligned(16)));
uint8_t kit_user_stack[KIT_STACK] __attribute__((aligned(16)));

struct tss64 kit_tss __attribute__((aligned(16)));
uint64_t kit_gdt[KIT_GDT_ENTRIES] __attribute__((aligned(16)));

volatile struct kit_event kit_ev[KIT_MAX_EV];
volatile unsigned kit_nev;
volatile uintptr_t kit_resume;
volatile uintptr_t kit_fault_ip;
void (*volatile kit_hook)(struct trap_frame *f);
volatile unsigned kit_runaway;
volatile unsigned kit_record_dr;
volatile unsigned kit_limit = 64;
volatile struct kit_uregs kit_uregs;
volatile unsigned kit_user_ok;
volatile unsigned kit_in_user;

extern uint64_t pml4[512], pdpt[512], pd[512]; /* longmode.S */
extern uintptr_t kit_ksp;                      /* kit64.S */

static struct gate64 saved_gates[32];
static struct dtr saved_idtr;

#define PTE_U 0x4

struct gate64 *kit_gate(unsigned vector)
{
	return (struct gate64 *)saved_idtr.base + (vector & 0xFF);
}

void kit_gate_set(unsigned vector, const void *handler, unsigned sel, unsigned type,
		  unsigned dpl, unsigned ist, unsigned present)
{
	struct gate64 *g = kit_gate(vector);
	uintptr_t off = (uintptr_t)handler;

	g->offset_lo = (uint16_t)off;
	g->selector = (uint16_t)sel;
	g->ist = (uint8_t)(ist & 7);
	g->attr = (uint8_t)((present ? 0x80 : 0) | (dpl & 3) << 5 | (type & 0xF));
	g->offset_mid = (uint16_t)(off >> 16);
	g->offset_hi = (uint32_t)(off >> 32);
	g->reserved = 0;
}

void kit_gate_ist(unsigned vector, unsigned ist)
{
	kit_gate(vector)->ist = (uint8_t)(ist & 7);
}

void kit_gate_type(unsigned vector, unsigned type)
{
	struct gate64 *g = kit_gate(vector);
	g->attr = (uint8_t)((g->attr & 0xF0) | (type & 0xF));
}

void kit_gate_present(unsigned vector, unsigned present)
{
	struct gate64 *g = kit_gate(vector);
	g->attr = (uint8_t)((g->attr & 0x7F) | (present ? 0x80 : 0));
}

void kit_idt_limit(unsigned limit)
{
	struct dtr d = saved_idtr;
	d.limit = (uint16_t)limit;
	__asm__ volatile("lidt %0" : : "m"(d) : "memory");
}

uintptr_t kit_stub(unsigned vector)
{
	const struct gate64 *g = &saved_gates[vector & 31];
	return (uintptr_t)g->offset_lo | (uintptr_t)g->offset_mid << 16 |
	       (uintptr_t)g->offset_hi << 32;
}

void kit_restore(void)
{
	for (unsigned v = 0; v < 32; v++)
		*kit_gate(v) = saved_gates[v];
	__asm__ volatile("lidt %0" : : "m"(saved_idtr) : "memory");
	kit_tss.rsp[0] = KIT_RSP0_TOP;
	kit_tss.ist[0] = KIT_IST1_TOP;
	kit_tss.ist[1] = KIT_IST2_TOP;
}

static uint64_t seg(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
	return (uint64_t)(limit & 0xFFFF) | (uint64_t)(base & 0xFFFFFF) << 16 |
	       (uint64_t)(access & 0xFF) << 40 | (uint64_t)((limit >> 16) & 0xF) << 48 |
	       (uint64_t)(flags & 0xF) << 52 | (uint64_t)(base >> 24) << 56;
}

void kit_init(void)
{
	extern uint64_t gdt[GDT_ENTRIES]; /* runtime gdt.S */
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} gd;
	uintptr_t t = (uintptr_t)&kit_tss;

	/* 8259 PICs: mask everything, so IF = 1 windows see no IRQ. */
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);

	saved_idtr = sidt();
	for (unsigned v = 0; v < 32; v++)
		saved_gates[v] = *kit_gate(v);

	for (unsigned i = 0; i < GDT_ENTRIES; i++)
		kit_gdt[i] = gdt[i];
	/* Access bytes: P | DPL | S | type (accessed preset). Flags: G, D/B, L. */
	kit_gdt[U_CS32 >> 3] = seg(0, 0xFFFFF, 0xFB, 0xC);  /* 32-bit code, DPL 3 */
	kit_gdt[U_DS >> 3] = seg(0, 0xFFFFF, 0xF3, 0xC);    /* data, DPL 3 */
	kit_gdt[U_CS64 >> 3] = seg(0, 0xFFFFF, 0xFB, 0xA);  /* 64-bit code, DPL 3 */
	kit_gdt[SC_CS >> 3] = seg(0, 0xFFFFF, 0x9B, 0xA);   /* 64-bit code, DPL 0 */
	kit_gdt[SC_DS >> 3] = seg(0, 0xFFFFF, 0x93, 0xC);   /* data, DPL 0 */
	kit_gdt[TSS_SEL >> 3] = seg((uint32_t)t, sizeof(kit_tss) - 1, 0x89, 0); /* available TSS */
	kit_gdt[(TSS_SEL >> 3) + 1] = (uint64_t)(t >> 32);
	kit_gdt[K_DS_RO >> 3] = seg(0, 0xFFFFF, 0x91, 0xC); /* read-only data, DPL 0 */

	kit_tss.rsp[0] = KIT_RSP0_TOP;
	kit_tss.ist[0] = KIT_IST1_TOP;
	kit_tss.ist[1] = KIT_IST2_TOP;
	kit_tss.iomap_base = sizeof(kit_tss); /* beyond the limit: no I/O bitmap */

	gd.limit = sizeof(kit_gdt) - 1;
	gd.base = (uintptr_t)kit_gdt;
	__asm__ volatile("lgdt %0\n\t"
			 "ltr %w1"
			 :
			 : "m"(gd), "r"(TSS_SEL)
			 : "memory");

	/* U/S on every level of the identity map, but not on KIT_SUPER_VA. */
	pml4[0] |= PTE_U;
	pdpt[0] |= PTE_U;
	for (unsigned i = 0; i < 512; i++)
		if (i != KIT_SUPER_VA >> 21)
			pd[i] |= PTE_U;
	__asm__ volatile("mov %%cr3, %%rax\n\tmov %%rax, %%cr3" : : : "rax", "memory");

	for (unsigned v = 0; v < 32; v++)
		trap_set_handler(v, NULL);
	extern void kit_trap(struct trap_frame *);
	for (unsigned v = 0; v < 32; v++)
		trap_set_handler(v, kit_trap);
}

void kit_arm(void)
{
	kit_nev = 0;
	kit_resume = 0;
	kit_fault_ip = 0;
	kit_hook = 0;
	kit_runaway = 0;
	kit_limit = 64;
	for (unsigned i = 0; i < KIT_MAX_EV; i++) {
		volatile uintptr_t *w = (volatile uintptr_t *)&kit_ev[i];
		for (unsigned j = 0; j < sizeof(kit_ev[0]) / sizeof(uintptr_t); j++)
			w[j] = 0;
		kit_ev[i].vector = ~(uintptr_t)0;
	}
}

void kit_to_kernel(struct trap_frame *f)
{
	f->ip = (uintptr_t)kit_user_ret;
	f->cs = K_CS;
	f->ss = K_DS;
	f->sp = kit_ksp;
	f->flags = FLAGS_FIXED;
}

void kit_trap(struct trap_frame *f)
{
	uintptr_t hflags = read_flags();
	unsigned n = kit_nev;

	if (f->vector == VEC_UD && f->ip == (uintptr_t)kit_user_exit) {
		kit_uregs.ax = f->ax;
		kit_uregs.bx = f->bx;
		kit_uregs.cx = f->cx;
		kit_uregs.dx = f->dx;
		kit_uregs.si = f->si;
		kit_uregs.di = f->di;
		kit_uregs.bp = f->bp;
		kit_uregs.r8 = f->r8;
		kit_uregs.r9 = f->r9;
		kit_uregs.flags = f->flags;
		kit_uregs.sp = f->sp;
		{
			uint32_t ds, es, fs, gs;
			__asm__ volatile("mov %%ds, %0\n\tmov %%es, %1\n\tmov %%fs, %2\n\tmov %%gs, %3"
					 : "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
			kit_uregs.ds = ds;
			kit_uregs.es = es;
			kit_uregs.fs = fs;
			kit_uregs.gs = gs;
		}
		kit_user_ok = 1;
		kit_to_kernel(f);
		return;
	}

	if (n < KIT_MAX_EV) {
		volatile struct kit_event *e = &kit_ev[n];
		e->vector = f->vector;
		e->error = f->error;
		e->ip = f->ip;
		e->cs = f->cs;
		e->flags = f->flags;
		e->sp = f->sp;
		e->ss = f->ss;
		e->frame_top = (uintptr_t)(&f->ss + 1);
		e->hflags = hflags;
		e->cr2 = (f->vector == VEC_PF || f->vector == VEC_DF) ? read_cr2() : 0;
		e->dr6 = e->dr7 = 0;
		if (kit_record_dr && (f->vector == VEC_DB || f->vector == VEC_DF)) {
			e->dr6 = read_dr6();
			e->dr7 = read_dr7();
		}
		e->ax = f->ax;
		e->bx = f->bx;
		e->cx = f->cx;
		e->dx = f->dx;
		e->si = f->si;
		e->di = f->di;
	}
	kit_nev = n + 1;

	if (n + 1 > kit_limit + 16) {
		/* The escape below did not work: give up on the whole run. */
		report("runaway", 0, "%u deliveries, last vector %lu error %#lx ip %#lx cs %#lx",
		       n + 1, (unsigned long)f->vector, (unsigned long)f->error,
		       (unsigned long)f->ip, (unsigned long)f->cs);
		report_done();
	}
	if (n + 1 > kit_limit) {
		/* Runaway: stop single-stepping and breakpoints, leave the test. */
		kit_runaway = 1;
		f->flags &= ~(uintptr_t)(FLAGS_TF);
		if (kit_record_dr)
			write_dr7(0x400);
		if (kit_in_user)
			kit_to_kernel(f);
		else if (kit_resume)
			f->ip = kit_resume;
		return;
	}

	if (kit_hook) {
		kit_hook(f);
		return;
	}
	if (kit_resume) {
		f->ip = kit_resume;
		return;
	}
	if (kit_in_user) {
		/* An unexpected fault during kit_user(): back to its caller. */
		kit_to_kernel(f);
		return;
	}
	if (f->vector == VEC_DB) /* stray trap: continue, stop stepping */
	{
		f->flags &= ~(uintptr_t)FLAGS_TF;
		return;
	}
	report("unexpected-exception", 0, "vector %lu error %#lx at ip %#lx",
	       (unsigned long)f->vector, (unsigned long)f->error, (unsigned long)f->ip);
	report_done();
}

void kit_user_call(const void *fn, uintptr_t sp, uintptr_t flags, uintptr_t a, uintptr_t b);

void kit_user(const void *fn, uintptr_t flags, uintptr_t a, uintptr_t b)
{
	/* The word at the user RSP returns to kit_user_exit for C functions. */
	uintptr_t sp = KIT_USER_TOP - 64;
	*(uintptr_t *)sp = (uintptr_t)kit_user_exit;
	kit_user_ok = 0;
	kit_in_user = 1;
	kit_user_call(fn, sp, flags | FLAGS_FIXED, a, b);
	kit_in_user = 0;
}

static char ev_buf[4][128];

const char *kit_ev_str(unsigned i)
{
	char *b = ev_buf[i & 3];
	if (i >= kit_nev) {
		snprintf(b, sizeof(ev_buf[0]), "no exception");
		return b;
	}
	if (i >= KIT_MAX_EV) {
		snprintf(b, sizeof(ev_buf[0]), "(not recorded)");
		return b;
	}
	snprintf(b, sizeof(ev_buf[0]), "vector %lu error %#lx ip %#lx cs %#lx",
		 (unsigned long)kit_ev[i].vector, (unsigned long)kit_ev[i].error,
		 (unsigned long)kit_ev[i].ip, (unsigned long)kit_ev[i].cs);
	return b;
}

const char *kit_ev0(void)
{
	return kit_ev_str(0);
}

int kit_expect(const char *name, unsigned vector, uintptr_t error, uintptr_t ip)
{
	int ok = kit_nev == 1 && kit_ev[0].vector == vector && kit_ev[0].error == error &&
		 kit_ev[0].ip == ip;
	if (ok)
		return report(name, 1, "vector %u error %#lx at ip %#lx", vector,
			      (unsigned long)error, (unsigned long)ip);
	return report(name, 0, "%u deliveries, first: %s; want vector %u error %#lx ip %#lx",
		      kit_nev, kit_ev0(), vector, (unsigned long)error, (unsigned long)ip);
}

int kit_expect_none(const char *name, const char *detail)
{
	if (kit_nev == 0)
		return report(name, 1, "%s", detail);
	return report(name, 0, "%u deliveries, first: %s; want none", kit_nev, kit_ev0());
}

int kit_user_fault(const char *name, const void *fn, const char *fip, const char *res,
		   uintptr_t flags, uintptr_t a, unsigned vector, uintptr_t error,
		   uintptr_t want_sp)
{
	kit_arm();
	kit_resume = (uintptr_t)res;
	kit_user(fn, flags, a, 0);
	volatile struct kit_event *e = &kit_ev[0];
	int ok = kit_user_ok && kit_nev == 1 && e->vector == vector && e->error == error &&
		 e->ip == (uintptr_t)fip && e->cs == U_CS64 && e->ss == U_DS && e->sp == want_sp &&
		 e->frame_top == KIT_RSP0_TOP;
	if (ok)
		return report(name, 1, "vector %u error %#lx at ip %#lx, cs %#x ss %#x from ring 3",
			      vector, (unsigned long)error, (unsigned long)(uintptr_t)fip, U_CS64,
			      U_DS);
	return report(name, 0,
		      "%u deliveries, first %s ss %#lx sp %#lx frame top %#lx, back %u; want vector %u "
		      "error %#lx ip %#lx cs %#x ss %#x sp %#lx on RSP0 %#lx",
		      kit_nev, kit_ev0(), (unsigned long)e->ss, (unsigned long)e->sp,
		      (unsigned long)e->frame_top, kit_user_ok, vector, (unsigned long)error,
		      (unsigned long)(uintptr_t)fip, U_CS64, U_DS, (unsigned long)want_sp,
		      (unsigned long)KIT_RSP0_TOP);
}

int kit_user_clean(const char *name, const void *fn, uintptr_t flags, uintptr_t a,
		   const char *detail)
{
	kit_arm();
	kit_user(fn, flags, a, 0);
	if (kit_user_ok && kit_nev == 0)
		return report(name, 1, "%s", detail);
	return report(name, 0, "%u deliveries, first %s, back %u; want none", kit_nev, kit_ev0(),
		      kit_user_ok);
}
