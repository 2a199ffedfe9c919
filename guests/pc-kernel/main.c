/*
 * pc-kernel - a test kernel written the way suites for QEMU's `-kernel`
 * are (kvm-unit-tests style), to judge Vigil's PC platform against QEMU:
 *
 *   vigil run --guest pc-kernel --append "mode=check" --module config.txt
 *   qemu-system-x86_64 -kernel pc-kernel.elf -append "mode=check" \
 *       -initrd config.txt -device pc-testdev -device isa-debug-exit,...
 *
 * where config.txt holds KEY=VALUE lines, among them CPUS=<n>. It checks
 * the multiboot command line and module, fw_cfg, pc-testdev's port and MMIO
 * buffer, the local APIC's registers and its timer in periodic and one-shot
 * modes (interrupts counted by a handler that sends EOI), and, last, a trip
 * to real-address mode and back (rm.S): CR0.PE cleared and set again, 16-bit
 * code with segment:offset addressing, an INT n through an IVT at 0, then
 * the protected-mode state and a timer interrupt through the restored IDT;
 * then read-modify-write, exchange and string instructions on pc-testdev's
 * MMIO buffer and on unassigned memory, and accesses that straddle the end
 * of RAM and of the buffer.
 * Every line it prints is the same on every engine that implements the
 * platform.
 */
#include "rt.h"
#include "rm.h"
#include "rmlow.h"

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
};
struct mb_module {
	uint32_t start, end, string, reserved;
};

#define APIC_BASE 0xFEE00000u
#define APIC_ID 0x20
#define APIC_VERSION 0x30
#define APIC_TPR 0x80
#define APIC_EOI 0xB0
#define APIC_SVR 0xF0
#define APIC_ISR0 0x100
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR 0x390
#define APIC_TIMER_DIV 0x3E0
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define TIMER_VECTOR 0x40

#define TESTDEV_MMIO 0xFF000000u

static inline uint32_t apic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(uintptr_t)(APIC_BASE + reg);
}

static inline void apic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(APIC_BASE + reg) = v;
}

/* ------------------------------------------------ the timer interrupt */

volatile uint32_t timer_ticks;
void timer_isr(void);
/*
 * The handler returns without IRET: it reloads EFLAGS from the frame with
 * POPF and returns with a far RET that drops the frame's EFLAGS. For an
 * interrupt taken at the same privilege level this is what IRET does
 * (NMI unblocking aside), and it runs on hosts whose KVM cannot execute a
 * 32-bit IRET (kvm_pvm stops on it).
 */
__asm__(".text\n"
	".globl timer_isr\n"
	"timer_isr:\n\t"
	"incl timer_ticks\n\t"
	"movl $0, 0xFEE000B0\n\t" /* EOI */
	"pushl 8(%esp)\n\t"      /* the interrupted EFLAGS */
	"popfl\n\t"
	"lret $4\n");

static void set_gate(unsigned vector, void (*fn)(void))
{
	struct dtr idtr = sidt();
	uint32_t *g = (uint32_t *)(uintptr_t)(idtr.base + vector * 8);
	uint32_t off = (uint32_t)(uintptr_t)fn;
	g[0] = (off & 0xFFFF) | ((uint32_t)SEL_CODE32 << 16);
	g[1] = (off & 0xFFFF0000) | 0x8E00; /* present, DPL 0, 32-bit interrupt gate */
}

/* Waits with interrupts enabled until `n` timer interrupts arrived, or a
 * generous bound of HLTs passed (each HLT ends at some interrupt). */
static void wait_ticks(uint32_t n)
{
	for (unsigned i = 0; i < 1000 && timer_ticks < n; i++)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* ------------------------------------------------ fw_cfg */

static void fw_cfg_select(uint16_t key)
{
	outw(0x510, key);
}

static uint64_t fw_cfg_le(uint16_t key, unsigned bytes)
{
	uint64_t v = 0;
	fw_cfg_select(key);
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)inb(0x511) << (8 * i);
	return v;
}

/* ------------------------------------------------ KEY=VALUE module */

static int config_value(const char *p, const char *end, const char *key, uint32_t *out)
{
	size_t klen = strlen(key);
	while (p < end) {
		const char *line = p;
		while (p < end && *p != '\n')
			p++;
		if ((size_t)(p - line) > klen && memcmp(line, key, klen) == 0 && line[klen] == '=') {
			uint32_t v = 0;
			for (const char *q = line + klen + 1; q < p && *q >= '0' && *q <= '9'; q++)
				v = v * 10 + (uint32_t)(*q - '0');
			*out = v;
			return 1;
		}
		p++;
	}
	return 0;
}

/* ------------------------------------------------ checks */

static void boot_checks(const struct mb_info *mb)
{
	report("multiboot-magic", boot_magic == 0x2BADB002, "eax %#x", boot_magic);
	const char *cmd = (const char *)(uintptr_t)mb->cmdline;
	const char *args = cmd;
	while (*args && *args != ' ')
		args++;
	report("cmdline-kernel-name-then-append",
	       (mb->flags & 4) && *args == ' ' && strcmp(args + 1, "mode=check") == 0,
	       "arguments after the kernel name '%s'", *args ? args + 1 : "");
	report("module-present", (mb->flags & 8) && mb->mods_count >= 1, "mods_count %u",
	       mb->mods_count);
}

static void platform_checks(const struct mb_info *mb)
{
	char sig[5] = { 0 };
	fw_cfg_select(0);
	for (int i = 0; i < 4; i++)
		sig[i] = (char)inb(0x511);
	report("fw-cfg-signature", strcmp(sig, "QEMU") == 0, "'%s'", sig);
	uint32_t cpus = (uint32_t)fw_cfg_le(0x0005, 2);
	uint32_t want = 0;
	const struct mb_module *m = (const struct mb_module *)(uintptr_t)mb->mods_addr;
	int have = mb->mods_count >= 1 &&
		   config_value((const char *)(uintptr_t)m[0].start,
				(const char *)(uintptr_t)m[0].end, "CPUS", &want);
	report("module-cpus-match-fw-cfg", have && cpus == want, "fw_cfg %u, module CPUS=%u", cpus,
	       want);
	uint64_t ram = fw_cfg_le(0x0003, 8);
	report("fw-cfg-ram-size", ram == 128u << 20, "%u MiB", (uint32_t)(ram >> 20));

	outl(0xE0, 0xCAFEF00D);
	report("testdev-port-scratch", inl(0xE0) == 0xCAFEF00D, "%#x", inl(0xE0));
	volatile uint32_t *buf = (volatile uint32_t *)(uintptr_t)TESTDEV_MMIO;
	buf[0] = 0x01234567;
	buf[1] = 0x89ABCDEF;
	report("testdev-mmio-buffer", buf[0] == 0x01234567 && buf[1] == 0x89ABCDEF, "%#x %#x",
	       buf[0], buf[1]);
	/* Mask the legacy PIC, as such kernels do before using the APIC. */
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
	report("pic-masked", inb(0x21) == 0xFF && inb(0xA1) == 0xFF, "%#x %#x", inb(0x21),
	       inb(0xA1));
}

static void apic_checks(void)
{
	uint64_t base = rdmsr(0x1B);
	report("apic-base-msr", (base & ~0xFFFull) == APIC_BASE && (base & (1u << 11)) &&
					(base & (1u << 8)),
	       "IA32_APIC_BASE %#llx", (unsigned long long)base);
	uint32_t ver = apic_read(APIC_VERSION);
	report("apic-version", (ver & 0xFF) >= 0x10 && (ver & 0xFF) <= 0x15 && ((ver >> 16) & 0xFF) >= 5,
	       "version %#x max LVT %u", ver & 0xFF, (ver >> 16) & 0xFF);
	report("apic-id-zero", apic_read(APIC_ID) >> 24 == 0, "%#x", apic_read(APIC_ID));
	apic_write(APIC_TPR, 0x20);
	report("apic-tpr", (apic_read(APIC_TPR) & 0xFF) == 0x20, "%#x", apic_read(APIC_TPR));
	apic_write(APIC_TPR, 0);
	apic_write(APIC_SVR, 0x1FF);
	report("apic-software-enabled", apic_read(APIC_SVR) == 0x1FF, "SVR %#x", apic_read(APIC_SVR));

	set_gate(TIMER_VECTOR, timer_isr);
	/* Periodic: five interrupts, then masked; none after that. */
	timer_ticks = 0;
	apic_write(APIC_TIMER_DIV, 0x3); /* divide by 16 */
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR | LVT_PERIODIC);
	apic_write(APIC_TIMER_INIT, 200000);
	uint32_t c1 = apic_read(APIC_TIMER_CUR);
	for (volatile int i = 0; i < 2000; i++)
		;
	uint32_t c2 = apic_read(APIC_TIMER_CUR);
	/* The values depend on the engine's speed; only their order is printed. */
	report("apic-timer-counts-down", c1 <= 200000 && c2 < c1, "current count %s",
	       c1 <= 200000 && c2 < c1 ? "decreasing" : "not decreasing");
	wait_ticks(5);
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR | LVT_PERIODIC | LVT_MASKED);
	uint32_t seen = timer_ticks;
	report("apic-timer-periodic", seen == 5, "%u interrupts (want 5)", seen);
	apic_write(APIC_TIMER_INIT, 0);
	report("apic-isr-clear-after-eoi", apic_read(APIC_ISR0 + 0x10 * (TIMER_VECTOR / 32)) == 0,
	       "ISR word %#x", apic_read(APIC_ISR0 + 0x10 * (TIMER_VECTOR / 32)));

	/* One-shot: exactly one interrupt, and the count stops at 0. */
	timer_ticks = 0;
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR);
	apic_write(APIC_TIMER_INIT, 50000);
	wait_ticks(1);
	for (volatile int i = 0; i < 20000; i++)
		;
	report("apic-timer-one-shot", timer_ticks == 1 && apic_read(APIC_TIMER_CUR) == 0,
	       "%u interrupts, current count %u", timer_ticks, apic_read(APIC_TIMER_CUR));
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
}

/* ------------------------------------------------ real mode and back */

extern char rm_int[], rm_unexpected[], rm_gdt[];
uint32_t rm_call(void);

static int same_dtr(struct dtr a, struct dtr b)
{
	return a.limit == b.limit && a.base == b.base;
}

/* Copies the 16-bit code to RM_BASE and builds the IVT at 0: vector
 * RM_VECTOR names rm_int, every other vector rm_unexpected. */
static int realmode_setup(void)
{
	uintptr_t ivt_addr = IVT_BASE;
	volatile uint32_t *ivt;

	if (!rm_load_blob("realmode-blob-fits"))
		return 0;
	/* Hide the constant 0 from gcc, which would treat it as a null pointer. */
	__asm__("" : "+r"(ivt_addr));
	ivt = (volatile uint32_t *)ivt_addr;
	/* Each IVT entry is offset (low word) : segment (high word). */
	for (uint32_t v = 0; v < 256; v++)
		ivt[v] = (uint32_t)RM_SEG << 16 | OFF(rm_unexpected);
	ivt[RM_VECTOR] = (uint32_t)RM_SEG << 16 | OFF(rm_int);
	return 1;
}

static void realmode_checks(void)
{
	/* The APIC timer is masked and IF is 0 here; rm_call keeps it so. */
	if (!realmode_setup())
		return;
	struct dtr gdt0 = sgdt(), idt0 = sidt();
	uint32_t cr0 = read_cr0(), flags = read_flags();
	uint32_t rounds = rm_call();
	struct dtr gdt1 = sgdt(), idt1 = sidt();
	uint32_t cr0_after = read_cr0(), flags_after = read_flags();

	if (low16(D_UNEXP))
		report("realmode-unexpected-interrupt", 0, "%u, the last at %04x:%04x",
		       low16(D_UNEXP), low16(D_UNEXP_CS), low16(D_UNEXP_IP));

	/* SDM Vol. 3A §9.9.2: MOV CR0 clears PE and nothing else; the far JMP
	 * loads CS = RM_SEG. §9.9.1: PE set again, a far JMP to 32-bit code. */
	uint32_t pm = low32(D_CR0_PM), rm = low32(D_CR0_RM);
	int pe_ok = (pm & 1) && rm == (pm & ~1u);
	report("realmode-round-trip", rounds == 1 && low16(D_CS_RM) == RM_SEG && pe_ok,
	       "round trips %u, cs %#x after the far jmp, cr0.pe %u then %u, other cr0 bits %s",
	       rounds, low16(D_CS_RM), pm & 1, rm & 1, (rm | 1) == pm ? "unchanged" : "changed");

	/* SMSW is CR0[15:0]; SIDT shows the IVT loaded for real mode. */
	uint32_t msw = low16(D_SMSW), idt_limit = low16(D_IDTR), idt_base = low32(D_IDTR + 2);
	report("realmode-smsw-sidt",
	       msw == (rm & 0xFFFF) && idt_limit == IVT_LIMIT && idt_base == IVT_BASE,
	       "msw pe %u %s, idtr base %#x limit %#x", msw & 1,
	       msw == (rm & 0xFFFF) ? "= cr0[15:0]" : "differs from cr0", idt_base, idt_limit);

	/* sum(i*i, 1..40) = 40*41*81/6 = 22140 = 0x567C; 0xFFFF + 3 = 0x0002
	 * with CF (carry out) and AF (0xF + 3 carries out of bit 3), PF 0 (one
	 * bit set); 0x10000 / 7 = 0x2492 remainder 2. */
	uint32_t add_fl = low16(D_ADD_FL) & FLAGS_ARITH;
	report("realmode-arith",
	       low16(D_SUM) == 0x567C && low16(D_ADD) == 2 && add_fl == (FLAGS_CF | FLAGS_AF) &&
		       low16(D_DIV) == 0x2492 && low16(D_DIV_REM) == 2,
	       "sum %#x, 0xffff+3 = %#x flags %#x, 0x10000/7 = %#x rem %u", low16(D_SUM),
	       low16(D_ADD), add_fl, low16(D_DIV), low16(D_DIV_REM));

	/* linear = segment * 16 + offset; 16-bit offsets wrap; 0xFFFF:0x10 is
	 * 1 MiB, where the multiboot header's magic is. */
	report("realmode-segment-offset",
	       low16(D_ALIAS) == 0xBEEF && (low16(D_WRAP) & 0xFF) == 0x5A &&
		       low32(D_HIGH) == 0x1BADB002,
	       "4123:0004 %#x, es:[bx+si] wraps to %#x, ffff:0010 %#x", low16(D_ALIAS),
	       low16(D_WRAP) & 0xFF, low32(D_HIGH));

	/* SDM Vol. 3A §20.1.4: INT pushes FLAGS, CS, IP (6 bytes), takes CS:IP
	 * from IVT entry n, clears IF and TF; IRET pops them back, so CF = 1
	 * set before the INT survives the handler's ADD. */
	uint32_t mask = FLAGS_ARITH | FLAGS_DF | FLAGS_IF | FLAGS_TF;
	uint32_t fl = low16(D_INT_FL) & mask, hfl = low16(D_INT_HFL) & mask;
	uint32_t rfl = low16(D_INT_RFL) & mask;
	int int_ok = low16(D_INT_COUNT) == 1 && low16(D_INT_IP) == low16(D_INT_WANT) &&
		     low16(D_INT_CS) == RM_SEG && low16(D_INT_SP) == 6 && fl == FLAGS_CF &&
		     hfl == FLAGS_CF && low16(D_INT_AX) == 0x1234 + RM_INT_ADD &&
		     low16(D_INT_AFTER) == 0 && rfl == FLAGS_CF;
	report("realmode-int-through-ivt", int_ok,
	       "int %#x: %u entry, frame %u bytes ip %s cs %#x flags %#x, handler flags %#x, "
	       "ax %#x, after iret sp %+d flags %#x",
	       RM_VECTOR, low16(D_INT_COUNT), low16(D_INT_SP),
	       low16(D_INT_IP) == low16(D_INT_WANT) ? "next" : "wrong", low16(D_INT_CS), fl, hfl,
	       low16(D_INT_AX), (int)(int16_t)low16(D_INT_AFTER), rfl);

	/* Back in 32-bit protected mode: the runtime's selectors, GDTR, IDTR,
	 * CR0 and EFLAGS, and the APIC timer's interrupt delivered through the
	 * restored IDT (its gate at TIMER_VECTOR). */
	int sel_ok = selector(0) == SEL_CODE32 && selector(1) == SEL_DATA &&
		     selector(2) == SEL_DATA && selector(3) == SEL_DATA;
	timer_ticks = 0;
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR);
	apic_write(APIC_TIMER_INIT, 50000);
	wait_ticks(1);
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	uint32_t ticks = timer_ticks;
	report("protected-mode-restored",
	       sel_ok && same_dtr(gdt0, gdt1) && same_dtr(idt0, idt1) && cr0 == cr0_after &&
		       flags == flags_after && ticks == 1,
	       "selectors %s, gdtr %s, idtr %s, cr0 %s, eflags %s, %u timer interrupt",
	       sel_ok ? "restored" : "differ", same_dtr(gdt0, gdt1) ? "restored" : "differs",
	       same_dtr(idt0, idt1) ? "restored" : "differs", cr0 == cr0_after ? "restored" : "differs",
	       flags == flags_after ? "restored" : "differs", ticks);
}

/* ------------------------------------------------ MMIO for every instruction */

/* An address in the PCI hole where no device answers: loads read all ones,
 * stores are dropped (a PC's unassigned memory). */
#define UNASSIGNED 0xFE000000u
/* The end of the 128 MiB of RAM fw-cfg-ram-size checked. */
#define RAM_END (128u << 20)
#define TESTDEV_MMIO_END (TESTDEV_MMIO + 0x10000u)

/* Read-modify-write, exchange and string instructions on device memory
 * complete as on silicon (SDM Vol. 2: each is one instruction with a
 * memory operand; nothing restricts it to RAM); each byte of an access
 * that straddles the end of RAM or of a device goes where its own address
 * says. Last, because a host KVM that cannot run some instruction stops
 * here and leaves the lines before to compare. */
static void mmio_checks(void)
{
	volatile uint32_t *buf = (volatile uint32_t *)(uintptr_t)TESTDEV_MMIO;
	uint32_t x = 0xAA, cf;
	buf[2] = 0x10;
	__asm__ volatile("addl $5, %0\n\t"
			 "orl $0x100, %0\n\t"
			 "lock incl %0\n\t"
			 "subl $0x20, %0\n\t"
			 "setc %b1\n\t"
			 "xchgl %2, %0"
			 : "+m"(buf[2]), "=&q"(cf), "+r"(x)
			 :
			 : "cc", "memory");
	report("mmio-read-modify-write", x == 0xF6 && (cf & 0xFF) == 0 && buf[2] == 0xAA,
	       "add, or, lock inc, sub %#x (cf %u), xchg left %#x", x, cf & 0xFF, buf[2]);

	static uint32_t ram_copy[4];
	uint32_t n = 4;
	void *d = (void *)&buf[8];
	__asm__ volatile("cld\n\trep stosl" : "+D"(d), "+c"(n) : "a"(0x5A5A0000u) : "memory");
	const void *s = (const void *)&buf[8];
	void *to = ram_copy;
	n = 4;
	__asm__ volatile("rep movsl" : "+S"(s), "+D"(to), "+c"(n) : : "memory");
	buf[9] = 0x77;
	s = ram_copy;
	to = (void *)&buf[16];
	n = 2;
	__asm__ volatile("rep movsl" : "+S"(s), "+D"(to), "+c"(n) : : "memory");
	report("mmio-rep-stos-movs",
	       ram_copy[0] == 0x5A5A0000u && ram_copy[3] == 0x5A5A0000u && buf[9] == 0x77 &&
		       buf[16] == 0x5A5A0000u && buf[17] == 0x5A5A0000u,
	       "stos then movs to RAM %#x..%#x, movs back %#x %#x", ram_copy[0], ram_copy[3],
	       buf[16], buf[17]);

	volatile uint32_t *none = (volatile uint32_t *)(uintptr_t)UNASSIGNED;
	uint32_t sum = 1;
	__asm__ volatile("addl %1, %0" : "+r"(sum) : "m"(*none) : "cc");
	__asm__ volatile("incl %0" : "+m"(*none) : : "cc", "memory");
	report("unassigned-reads-ones", sum == 0 && *none == 0xFFFFFFFFu,
	       "1 + load = %#x, after inc %#x", sum, *none);

	volatile uint16_t *ram_end = (volatile uint16_t *)(uintptr_t)(RAM_END - 2);
	volatile uint32_t *across = (volatile uint32_t *)(uintptr_t)(RAM_END - 2);
	*ram_end = 0;
	*across = 0x11223344u;
	uint32_t back = *across;
	report("straddle-ram-end", *ram_end == 0x3344 && back == 0xFFFF3344u,
	       "RAM half %#x, dword read back %#x", *ram_end, back);

	volatile uint32_t *edge = (volatile uint32_t *)(uintptr_t)(TESTDEV_MMIO_END - 2);
	volatile uint16_t *dev_end = (volatile uint16_t *)(uintptr_t)(TESTDEV_MMIO_END - 2);
	*dev_end = 0;
	*edge = 0xA1B2C3D4u;
	back = *edge;
	report("straddle-device-end", *dev_end == 0xC3D4 && back == 0xFFFFC3D4u,
	       "device half %#x, dword read back %#x", *dev_end, back);
}

int main(void)
{
	const struct mb_info *mb = (const struct mb_info *)(uintptr_t)boot_info;
	boot_checks(mb);
	platform_checks(mb);
	apic_checks();
	realmode_checks();
	mmio_checks();
	report_done();
}
