/*
 * idt.c - the interrupt descriptor table and the C side of the trap stubs.
 *
 * isr32.S / isr64.S provide one stub per installed vector (isr_stubs[] for
 * vectors 0-31, isr_syscall for VEC_SYSCALL); each pushes a struct trap_frame
 * and calls trap_dispatch().
 */
#include "rt.h"

#define GATE_INT32  0xE /* 32-bit interrupt gate; in long mode: 64-bit interrupt gate */
#define GATE_TRAP32 0xF /* 32-bit trap gate; in long mode: 64-bit trap gate */
#define GATE_P      0x80

struct __attribute__((packed)) gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;  /* 64-bit: IST index; 32-bit: reserved, 0 */
	uint8_t attr; /* P, DPL, type */
	uint16_t offset_mid;
#ifdef __x86_64__
	uint32_t offset_hi;
	uint32_t reserved;
#endif
};

#ifdef __x86_64__
#define SEL_KERNEL_CODE SEL_CODE64
#else
#define SEL_KERNEL_CODE SEL_CODE32
#endif

extern void (*const isr_stubs[32])(void);
extern void isr_syscall(void);

static struct gate idt[256] __attribute__((aligned(16)));
static trap_handler handlers[256];

static void set_gate(unsigned vector, void (*stub)(void), unsigned dpl, int trap)
{
	uintptr_t off = (uintptr_t)stub;
	struct gate *g = &idt[vector & 0xFF];

	g->offset_lo = (uint16_t)off;
	g->selector = SEL_KERNEL_CODE;
	g->ist = 0;
	g->attr = (uint8_t)(GATE_P | (dpl & 3) << 5 | (trap ? GATE_TRAP32 : GATE_INT32));
	g->offset_mid = (uint16_t)(off >> 16);
#ifdef __x86_64__
	g->offset_hi = (uint32_t)(off >> 32);
	g->reserved = 0;
#endif
}

void idt_init(void)
{
	struct dtr d;

	for (unsigned v = 0; v < 32; v++)
		set_gate(v, isr_stubs[v], 0, 0);
	set_gate(VEC_SYSCALL, isr_syscall, 0, 0);

	d.limit = sizeof(idt) - 1;
	d.base = (uintptr_t)idt;
	__asm__ volatile("lidt %0" : : "m"(d));
}

void idt_set_gate_attr(unsigned vector, unsigned dpl, int trap)
{
	struct gate *g = &idt[vector & 0xFF];

	if (g->attr & GATE_P)
		g->attr = (uint8_t)(GATE_P | (dpl & 3) << 5 | (trap ? GATE_TRAP32 : GATE_INT32));
}

void trap_set_handler(unsigned vector, trap_handler h)
{
	handlers[vector & 0xFF] = h;
}

/* Called by the assembly stubs with a pointer to the saved frame. */
void trap_dispatch(struct trap_frame *f)
{
	trap_handler h = handlers[f->vector & 0xFF];

	if (h) {
		h(f);
		return;
	}
	report("unexpected-exception", 0, "vector %lu error %#lx at ip %#lx",
	       (unsigned long)f->vector, (unsigned long)f->error, (unsigned long)f->ip);
	report_done();
}
