/*
 * conformance-realmode - leaving protected mode for real-address mode and
 * coming back, and what runs in between, one check per line.
 *
 * The guest starts in 32-bit protected mode (paging off) like every
 * multiboot kernel. rm.S switches to real mode as Intel SDM Vol. 3A §9.9.2
 * prescribes (through a 16-bit code segment, CR0.PE cleared with MOV CR0,
 * a far JMP to load CS) and back (§9.9.1: CR0.PE set with MOV CR0 or LMSW,
 * a far JMP with a 32-bit offset). In between it runs one 16-bit routine
 * that records what it sees in result slots (rm.h); this file compares with values
 * worked out by hand from the SDM (Vol. 1 §3.3 and Vol. 3A §20.1 for
 * real-address mode: linear = selector * 16 + offset, 16-bit offsets,
 * 0x66/0x67 for 32-bit operands and addresses; §20.1.4 for interrupts and
 * exceptions through the IVT, a 3-word frame and no error code).
 *
 * The order matters for the oracles: checks that an engine may stop on
 * come last (INT n and exceptions, then segment-limit faults).
 */
#include "conf.h"
#include "rm.h"
#include "rmlow.h"

extern char rm_stubs[], rm_gdt[];
extern char rt_mode[], rt_arith[], rt_seg[], rt_stack[], rt_int[], rt_limit[], rt_string[];
extern char rt_ud[];
uint32_t rm_call(uint32_t routine, uint32_t via_lmsw);

/* Result slot n. */
static uint32_t R(unsigned n)
{
	return low32(D_RES + 4 * n);
}

static unsigned rounds;

static void run(const char *routine, uint32_t via_lmsw)
{
	rounds = rm_call(OFF(routine), via_lmsw);
}

static void setup(void)
{
	volatile uint32_t *ivt = (volatile uint32_t *)(uintptr_t)IVT_BASE;

	if (!rm_load_blob("blob-fits-below-data"))
		report_done();
	/* Each IVT entry is offset (low word) : segment (high word). */
	for (uint32_t v = 0; v < 256; v++)
		ivt[v] = (uint32_t)RM_SEG << 16 | (OFF(rm_stubs) + 8 * v);
	/* Vector 0x41 reaches the same stub through another segment:offset pair. */
	ivt[0x41] = (uint32_t)(RM_SEG - 0x10) << 16 | (OFF(rm_stubs) + 8 * 0x41 + 0x100);
	memset((void *)(uintptr_t)DATA_BASE, 0, 0x10000);
}

#define V(...) ((const uint64_t[]){ __VA_ARGS__ })
#define CHECK(name, n, got, want) check_vals(name, n, got, want)

static void mode_checks(void)
{
	uint32_t pm, rm;

	run(rt_mode, 0);
	pm = low32(D_CR0_PM);
	rm = low32(D_CR0_RM);
	/* The far JMP after clearing PE loads CS = 0x1000, base 0x10000. */
	report_eq("far-jmp-loads-real-mode-cs", low16(D_CS_RM), RM_SEG);
	report_eq("routine-runs-in-cs", R(0) & 0xFFFF, RM_SEG);
	/* MOV CR0 cleared PE and nothing else; CR0 reads back that way. */
	report("cr0-pe-cleared", (pm & 1) && rm == (pm & ~1u), "pe %u then %u, other bits %s",
	       pm & 1, rm & 1, (rm | 1) == pm ? "unchanged" : "changed");
	/* SMSW: CR0[15:0] to a 16-bit register or to memory. */
	report("smsw-reg-real-mode", (R(1) & 0xFFFF) == (rm & 0xFFFF), "pe %u, %s", R(1) & 1,
	       (R(1) & 0xFFFF) == (rm & 0xFFFF) ? "= cr0[15:0]" : "differs from cr0");
	report("smsw-mem-real-mode", (R(2) & 0xFFFF) == (rm & 0xFFFF), "pe %u, %s", R(2) & 1,
	       (R(2) & 0xFFFF) == (rm & 0xFFFF) ? "= cr0[15:0]" : "differs from cr0");
	/* The LIDT done before PE was cleared (SDM §9.9.2 step 5). */
	CHECK("sidt-real-mode-ivt", 2, V(R(3) & 0xFFFF, R(4)), V(IVT_LIMIT, IVT_BASE));
	/* LIDT with a 16-bit operand: base 0xAB030000 loads as 0x030000. */
	CHECK("lidt-o16-24-bit-base", 2, V(R(5) & 0xFFFF, R(6)), V(IVT_LIMIT, IVT_BASE));
	CHECK("sgdt-real-mode", 2, V(R(7) & 0xFFFF, R(8)),
	      V(RM_GDT_ENTRIES * 8 - 1, (uintptr_t)rm_gdt));
	report_eq("mov-ss-real-mode", R(9) & 0xFFFF, STK_SEG);
	report("mov-cr0-back-to-protected-mode", read_cr0() == pm && rounds == 1,
	       "cr0 %s, round trips %u", read_cr0() == pm ? "restored" : "differs", rounds);
}

static void arith_checks(void)
{
	uint32_t pm = low32(D_CR0_PM);

	run(rt_arith, 1);
	/* 0x7FFF + 1 = 0x8000: OF, SF, AF; PF of 0x00 is 1. */
	CHECK("add16-overflow", 2, V(R(10) & 0xFFFF, R(11) & ARITH), V(0x8000, OF | SF | AF | PF));
	/* 0 - 1 = 0xFFFF: CF, SF, AF, PF (0xFF has 8 bits set). */
	CHECK("sub16-borrow", 2, V(R(12) & 0xFFFF, R(13) & ARITH), V(0xFFFF, CF | SF | AF | PF));
	/* 0x1234 * 0x5678 = 0x06260060: DX != 0 sets CF and OF. */
	CHECK("mul16-dx-ax", 3, V(R(14) & 0xFFFF, R(15) & 0xFFFF, R(16) & (CF | OF)),
	      V(0x0060, 0x0626, CF | OF));
	/* 0x06260061 / 0x5678 = 0x1234 remainder 1. */
	CHECK("div16-dx-ax", 2, V(R(17) & 0xFFFF, R(18) & 0xFFFF), V(0x1234, 1));
	/* 0x66: 0xFFFFFFFF + 1 = 0: CF, ZF, AF, PF. */
	CHECK("o32-add-carry", 2, V(R(19), R(20) & ARITH), V(0, CF | ZF | AF | PF));
	/* 0x66: -3 * 0x10001 = -0x30003. */
	report_eq("o32-imul", R(21), 0xFFFCFFFDu);
	/* 0x66: 0x80000001 << 1 = 2, CF = the bit shifted out. */
	CHECK("o32-shl", 2, V(R(22), R(23) & CF), V(2, CF));
	/* A 16-bit write to DX leaves EDX[31:16]. */
	report_eq("o16-write-keeps-upper-half", R(24), 0x1234AAAAu);
	/* INC 0xFFFF = 0: ZF, AF, PF; CF (set before) unchanged. */
	CHECK("inc16-wraps-keeps-cf", 2, V(R(25) & 0xFFFF, R(26) & ARITH), V(0, ZF | AF | PF | CF));
	/* CBW 0x80 = 0xFF80, CWD = DX 0xFFFF. */
	report_eq("cbw-cwd", R(27), 0xFFFFFF80u);
	/* 0x66 DIV: EDX:EAX = 1:0 / 0x10 = 0x10000000 remainder 0. */
	CHECK("o32-div", 2, V(R(28), R(29)), V(0x10000000, 0));
	report("lmsw-back-to-protected-mode", read_cr0() == pm && rounds == 2,
	       "cr0 %s, round trips %u", read_cr0() == pm ? "restored" : "differs", rounds);
}

static void seg_checks(void)
{
	run(rt_seg, 0);
	/* 0x4123:0x0004 and 0x4000:0x1234 are both linear 0x41234. */
	report_eq("segment-times-16-plus-offset", R(30) & 0xFF, 0xA5);
	/* BX + SI = 0xFFFF + 2 is offset 1 with a 16-bit address size. */
	report_eq("addr16-base-index-wraps", R(31) & 0xFF, 0x5A);
	report_eq("addr16-disp-wraps", R(32) & 0xFF, 0x5A);
	report_eq("bp-addressing-uses-ss", R(33) & 0xFFFF, 0x1177);
	CHECK("lds-real-mode", 2, V(R(34) & 0xFFFF, R(35) & 0xFF), V(0x4123, 0xA5));
	report_eq("addr32-within-limit", R(36) & 0xFF, 0xA5);
	/* 0xFFFF * 16 + 0x10 = 0x100000: the image's multiboot magic. */
	report_eq("segment-ffff-reaches-1mib", R(37), 0x1BADB002u);
	CHECK("pop-segment-real-mode", 2, V(R(38) & 0xFF, R(39) & 0xFFFF), V(0xA5, 0x4000));
}

static void stack_checks(void)
{
	run(rt_stack, 0);
	CHECK("push16-pop16", 2, V(R(50) & 0xFFFF, R(51) & 0xFFFF), V(2, 0x1234));
	CHECK("push-o32", 2, V(R(52) & 0xFFFF, R(53)), V(4, 0x89ABCDEF));
	CHECK("push-segment-register", 2, V(R(54) & 0xFFFF, R(55) & 0xFFFF), V(2, RM_SEG));
	/* SP = 0, PUSH: SP = 0xFFFE, the word at SS:0xFFFE. */
	CHECK("push-sp-wraps", 2, V(R(56) & 0xFFFF, R(57) & 0xFFFF), V(0xFFFE, 0x55AA));
	report_eq("call-near16-return-ip", R(58) & 0xFFFF, R(59) & 0xFFFF);
	CHECK("call-o32-pushes-eip", 2, V(R(60) & 0xFFFF, R(61)), V(4, R(62)));
	/* Far CALL to 0x0FFF:off+16: CS in the callee, pushed IP and CS, RETF. */
	CHECK("call-far16-retf", 4,
	      V(R(63) & 0xFFFF, R(64) & 0xFFFF, R(66) & 0xFFFF, R(67) & 0xFFFF),
	      V(RM_SEG - 1, R(65) & 0xFFFF, RM_SEG, 0));
	report_eq("retf-imm16-pops-parameters", R(68) & 0xFFFF, 0);
	/* RETF to segment 0x0FFF: its low bits are no RPL in real mode. */
	CHECK("retf-to-segment-0fff", 2, V(R(74) & 0xFFFF, R(75) & 0xFFFF), V(RM_SEG - 1, 0));
	report_eq("jmp-far-indirect-m16-16", R(69) & 0xFFFF, RM_SEG - 2);
	CHECK("call-far-o32-retf-o32", 3, V(R(70) & 0xFFFF, R(71) & 0xFFFF, R(72) & 0xFFFF),
	      V(8, RM_SEG, 0));
	/* POPF 0x0CD5 (status flags, DF): PUSHF shows them with bit 1 set. */
	report_eq("popf-pushf-16", R(73) & 0xFFFF, 0x0CD7);
}

static void string_checks(void)
{
	run(rt_string, 0);
	/* "HELLO" from DS:SI to ES:0x100: CX 0, SI and DI + 5. */
	CHECK("rep-movsb", 4, V(R(120) & 0xFFFF, R(121) & 0xFFFF, R(123) & 0xFFFF, R(124)),
	      V(0, R(122) & 0xFFFF, 0x105, 0x4C4C4548));
	/* DF = 1, REP STOSW from 0x208, 3 words: 0x208, 0x206, 0x204; DI 0x202. */
	CHECK("rep-stosw-df1", 4, V(R(125) & 0xFFFF, R(126) & 0xFFFF, R(127) & 0xFFFF,
				   R(128) & 0xFFFF), V(0x202, 0, 0xBEEF, 0x1111));
	/* 'L' is the 3rd byte of "HELLO": 3 bytes scanned. */
	CHECK("repne-scasb", 2, V(R(129) & 0xFFFF, R(130) & 0xFFFF), V(2, 0x103));
	/* "HELLO" vs "HELP!": 4 bytes compared, ZF = 0. */
	CHECK("repe-cmpsb", 2, V(R(131) & 0xFFFF, R(132) & 0xFFFF), V(1, 0));
	/* DF = 1, LODSW: SI - 2, AX = "HE". */
	CHECK("lodsw-df1", 2, V(R(133) & 0xFFFF, R(134) & 0xFFFF), V(0xFFFE, 0x4548));
	/* 0x66 0x67 REP MOVSD: ECX, ESI, EDI. */
	CHECK("rep-movsd-o32-a32", 3, V(R(135), R(136), R(137)), V(0, 8, 0x308));
	/* MOVSB with SI = 0xFFFF: SI wraps to 0, ESI[31:16] stay. */
	report_eq("movsb-si-wraps-16", R(138), 0x12340000u);
}

static void int_checks(void)
{
	run(rt_int, 0);
	/* INT 0x40: vector, return IP, CS, one delivery. */
	CHECK("int-n-through-ivt", 4, V(R(80) & 0xFFFF, R(81) & 0xFFFF, R(83) & 0xFFFF, R(88) & 0xFFFF),
	      V(0x40, R(82) & 0xFFFF, RM_SEG, 1));
	report_eq("int-frame-is-3-words", R(85) & 0xFFFF, 6);
	report_eq("int-pushes-flags", R(84) & 0xFFFF, 0x401);
	/* INT clears IF and TF (both 0 already) and keeps DF (SDM INT n, real mode). */
	report_eq("int-handler-flags", R(86) & 0xFFFF, 0x400);
	report_eq("iret16-restores-flags", R(87) & 0xFFFF, 0x401);
	CHECK("ivt-entry-segment-offset", 2, V(R(89) & 0xFFFF, R(90) & 0xFFFF),
	      V(RM_SEG - 0x10, R(91) & 0xFFFF));
	report_eq("int-clears-ac", R(92), 0);
	report_eq("iret16-keeps-eflags-upper", R(93), 0);
	CHECK("iret-o32-pops-eflags", 2, V(R(94), R(95) & 0xFFFF), V(0x40000, 0));
	/* #DE: a fault (IP of the DIV), 3-word frame, no error code. */
	CHECK("de-through-ivt", 3, V(R(97) & 0xFFFF, R(98) & 0xFFFF, R(100) & 0xFFFF),
	      V(0, R(99) & 0xFFFF, 6));
	/* INTO with OF = 1: vector 4, a trap (IP after INTO). */
	CHECK("into-through-ivt", 2, V(R(105) & 0xFFFF, R(106) & 0xFFFF), V(4, R(107) & 0xFFFF));
	/* IDTR limit 0x103: vector 0x41's entry lies beyond it, #GP at the INT. */
	CHECK("int-beyond-ivt-limit-gp", 2, V(R(108) & 0xFFFF, R(109) & 0xFFFF),
	      V(13, R(110) & 0xFFFF));
}

static void limit_checks(void)
{
	run(rt_limit, 0);
	/* Real-mode offsets are checked against the hidden limit 0xFFFF. */
	CHECK("gp-addr32-beyond-limit", 3, V(R(111) & 0xFFFF, R(112) & 0xFFFF, R(114) & 0xFFFF),
	      V(13, R(113) & 0xFFFF, 6));
	CHECK("gp-word-at-offset-ffff", 2, V(R(115) & 0xFFFF, R(116) & 0xFFFF),
	      V(13, R(117) & 0xFFFF));
}

static void ud_checks(void)
{
	run(rt_ud, 0);
	CHECK("ud-through-ivt", 2, V(R(102) & 0xFFFF, R(103) & 0xFFFF), V(6, R(104) & 0xFFFF));
}

static void pm_checks(unsigned expected_rounds)
{
	struct dtr idt = sidt();
	int done = 0;

	report_eq("round-trips", rounds, expected_rounds);
	CHECK("protected-mode-selectors-after-return", 4,
	      V(selector(0), selector(1), selector(2), selector(3)),
	      V(SEL_CODE32, SEL_DATA, SEL_DATA, SEL_DATA));
	report("protected-mode-idtr-after-return", idt.base != IVT_BASE,
	       "%s", idt.base != IVT_BASE ? "runtime IDT" : "still the IVT");
	/* A protected-mode fault is delivered through a protected-mode IDT again. */
	nr_on();
	arm();
	__asm__ volatile(ARM "1: ud2\n\t" RESUMED : ARM_OUT : : "memory");
	nr_off();
	CHECK("protected-mode-fault-after-return", 3, V(hits, seen_vector, seen_ip),
	      V(1, VEC_UD, fault_ip));
	(void)done;
}

int main(void)
{
	printf("conformance-realmode: real-address mode entered from and left to 32-bit protected mode\n");
	setup();
	mode_checks();
	arith_checks();
	seg_checks();
	stack_checks();
	string_checks();
	pm_checks(5);
	limit_checks();
	int_checks();
	ud_checks();
	report_eq("round-trips-after-exceptions", rounds, 8);
	report_done();
}
