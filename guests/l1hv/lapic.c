/*
 * lapic.c - L1's local APIC timer, the clock that gets L1 back from an L2
 * that never exits by itself.
 *
 * The xAPIC page is above the runtime's 1 GiB identity map, so it gets a
 * 2 MiB mapping of its own (uncached: PCD | PWT). The timer counts at the
 * core crystal clock (SDM Vol. 3A, "APIC Timer"; CPUID.15H:ECX) with the divider
 * at 1. With pin-based "external-interrupt exiting" and the exit control
 * "acknowledge interrupt on exit", a timer interrupt while L2 runs is a VM
 * exit with the vector in the exit interruption information (SDM Vol. 3C
 * §28.2.2), and L1 then writes EOI. An interrupt L1 itself takes (with IF
 * briefly set in lapic_disarm) goes through the gate below, which EOIs.
 */
#include "l1hv.h"

#define APIC_EOI        0x0B0
#define APIC_ISR        0x100 /* eight 32-bit registers, 16 bytes apart */
#define APIC_IRR        0x200
#define APIC_SVR        0x0F0
#define APIC_LVT_TIMER  0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_DIV  0x3E0
#define LVT_MASKED      (1u << 16)
#define PTE_P   0x001
#define PTE_W   0x002
#define PTE_PWT 0x008
#define PTE_PCD 0x010
#define PTE_PS  0x080

extern uint64_t pdpt[512]; /* runtime/longmode.S */
static uint64_t apic_pd[512] __attribute__((aligned(4096)));

static uintptr_t apic_base;
uint64_t lapic_eoi_addr; /* used by lapic_timer_isr */
volatile uint32_t lapic_isr_count;
int lapic_hz_from_cpuid;
static uint32_t timer_hz;

void lapic_timer_isr(void);
__asm__(".text\n"
	".balign 16\n"
	".globl lapic_timer_isr\n"
	"lapic_timer_isr:\n\t"
	"pushq %rax\n\t"
	"incl lapic_isr_count(%rip)\n\t"
	"movq lapic_eoi_addr(%rip), %rax\n\t"
	"movl $0, (%rax)\n\t"
	"popq %rax\n\t"
	"iretq\n");

static inline uint32_t apic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(apic_base + reg);
}

static inline void apic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(apic_base + reg) = v;
}

/* A 64-bit interrupt gate, DPL 0, in the runtime's IDT (found with SIDT). */
static void set_gate(unsigned vector, void (*fn)(void))
{
	struct dtr idtr = sidt();
	uint32_t *g = (uint32_t *)(idtr.base + vector * 16);
	uint64_t off = (uint64_t)(uintptr_t)fn;

	g[0] = (uint32_t)(off & 0xFFFF) | (uint32_t)SEL_CODE64 << 16;
	g[1] = (uint32_t)(off & 0xFFFF0000) | 0x8E00;
	g[2] = (uint32_t)(off >> 32);
	g[3] = 0;
}

static void map_apic(uint64_t base)
{
	unsigned i3 = (unsigned)(base >> 30) & 511, i2 = (unsigned)(base >> 21) & 511;

	if (base < RT_IDMAP_SIZE)
		return; /* already in the identity map */
	pdpt[i3] = (uint64_t)(uintptr_t)apic_pd | PTE_P | PTE_W;
	apic_pd[i2] = (base & ~0x1FFFFFull) | PTE_P | PTE_W | PTE_PWT | PTE_PCD | PTE_PS;
	__asm__ volatile("mov %0, %%cr3" : : "r"(read_cr3()) : "memory");
}

uint32_t lapic_init(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE) & ~0xFFFull & ((1ull << 52) - 1);

	map_apic(base);
	apic_base = (uintptr_t)base;
	lapic_eoi_addr = base + APIC_EOI;
	set_gate(TIMER_VECTOR, lapic_timer_isr);
	apic_write(APIC_SVR, 0x1FF); /* software enable, spurious vector 0xFF */
	apic_write(APIC_LVT_TIMER, LVT_MASKED | TIMER_VECTOR);
	apic_write(APIC_TIMER_DIV, 0xB); /* divide by 1 */
	timer_hz = 0;
	if (cpuid(0, 0).eax >= 0x15)
		timer_hz = cpuid(0x15, 0).ecx;
	lapic_hz_from_cpuid = timer_hz != 0;
	if (!timer_hz)
		timer_hz = 25000000; /* the usual crystal when CPUID does not say */
	return timer_hz;
}

void lapic_arm_oneshot(uint32_t ms)
{
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR); /* one-shot, unmasked */
	apic_write(APIC_TIMER_INIT, timer_hz / 1000 * ms);
}

void lapic_disarm(void)
{
	apic_write(APIC_TIMER_INIT, 0);
	apic_write(APIC_LVT_TIMER, LVT_MASKED | TIMER_VECTOR);
	/* A window with IF = 1 (after the first NOP: STI blocks interrupts for
	 * one instruction): a request raised before the mask is taken there
	 * and EOId by lapic_timer_isr. */
	__asm__ volatile("sti\n\tnop\n\tnop\n\tcli" : : : "memory");
}

void lapic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

/* Vector v is bit v % 32 of the register at base + 0x10 * (v / 32) (SDM
 * Vol. 3A, "Interrupt Acceptance for Fixed Interrupts"). */
static int apic_vector_bit(uint32_t base, unsigned vector)
{
	return (apic_read(base + 0x10 * (vector / 32)) >> (vector % 32)) & 1;
}

int lapic_irr(unsigned vector)
{
	return apic_vector_bit(APIC_IRR, vector);
}

int lapic_isr(unsigned vector)
{
	return apic_vector_bit(APIC_ISR, vector);
}
