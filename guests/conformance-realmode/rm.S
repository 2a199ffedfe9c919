/*
 * rm.S - the real-mode half of conformance-realmode.
 *
 * rm_call(routine, via_lmsw) (32-bit, cdecl) leaves protected mode the way
 * Intel SDM Vol. 3A §9.9.2 describes, calls one 16-bit routine of the blob
 * in real-address mode, and comes back to protected mode (§9.9.1):
 *
 *   32-bit: save state, LGDT rm_gdt (the runtime's GDT plus a 16-bit code
 *     and a 16-bit data segment), LIDT of the real-mode IVT (step 5),
 *     far JMP to the 16-bit code segment (step 3);
 *   16-bit protected mode (rm_pm16): load every data segment register with
 *     a 64 KiB writable data segment (step 4), record CR0, clear CR0.PE
 *     with MOV CR0 (step 6), far JMP to RM_SEG:rm_real (step 7);
 *   real mode (rm_real): load DS, ES and SS:SP with real-mode values
 *     (step 8), record CR0 and CS, near CALL the routine;
 *   then set CR0.PE again (MOV CR0, or LMSW when via_lmsw is 1), far JMP
 *     with a 32-bit offset (0x66) to SEL_CODE32:rm_back32, reload the
 *     segments, the stack and the runtime's GDTR and IDTR, return.
 *
 * Interrupts stay disabled throughout (IF = 0): nothing but the routines'
 * own INT n and exceptions is delivered in real mode.
 *
 * The blob (.text16, code only) is copied to RM_BASE by main.c; it is
 * linked in the image, so an address inside it is used as an offset from
 * rm_blob: O(x). Its variables live in the data area at RM_BASE + D_BASE
 * (rm.h). Each routine writes what it observed into 32-bit result slots
 * (D_RES + 4 * n),
 * and for values that depend on the layout, the expected value too (the
 * assembler's address of a label: the architectural return address, not
 * something read back from the CPU). main.c compares and reports.
 *
 * Exceptions and INT n go through the IVT at IVT_BASE: every vector's
 * entry points at its own 8-byte stub (rm_stubs + 8 * vector) that pushes
 * the vector and jumps to rm_common, which records the 3-word frame (IP,
 * CS, FLAGS; real mode pushes no error code, SDM Vol. 3A §20.1.4), the
 * stack pointer, CS and EFLAGS inside the handler, and, when ex_resume is
 * set, changes the saved IP to it before IRET.
 */
#include "layout.h"
#include "rm.h"

#include "rmswitch.inc"

/* ---------------------------------------------------------------- switch */

	RM_BLOB_START
	/* Pointers and strings the routines use (the data area is not part of the blob). */
	movw $IVT_LIMIT, D_IDT_PROBE
	movl $0xAB000000 + IVT_BASE, D_IDT_PROBE + 2
	movw $0x40 * 4 + 3, D_IVT_SHORT          /* vectors 0..0x40 only */
	movl $IVT_BASE, D_IVT_SHORT + 2
	movw $0x0004, D_FARPTR
	movw $0x4123, D_FARPTR + 2
	movw $O(jmp_target) + 0x20, D_JMP_PTR
	movw $RM_SEG - 2, D_JMP_PTR + 2
	movl $0x4C4C4548, D_HELLO                /* "HELLO" */
	movb $'O', D_HELLO + 4
	movl $0x504C4548, D_HELP                 /* "HELP!" */
	movb $'!', D_HELP + 4
	RM_ENTER_REAL
	callw *D_TARGET
	incw D_ROUNDS
	/* Back to protected mode. */
	cmpb $0, D_LMSW
	jne 1f
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	jmp 2f
1:	smsw %ax
	orw $1, %ax
	lmsw %ax
2:	ljmpl $SEL_CODE32, $rm_back32

/* ------------------------------------------------------------ exceptions */

	.balign 8
	.globl rm_stubs
rm_stubs:
	.set vec, 0
	.rept 256
	.balign 8
	pushw $vec
	jmp rm_common
	.set vec, vec + 1
	.endr

/* SS:SP -> vector, IP, CS, FLAGS. */
rm_common:
	pushw %bp
	movw %sp, %bp
	pushw %ds
	pushl %eax
	movw $RM_SEG, %ax
	movw %ax, %ds
	pushfl
	popl %eax
	movl %eax, D_EX_HEFL      /* EFLAGS in the handler */
	incw D_EX_COUNT
	movw 2(%bp), %ax
	movw %ax, D_EX_VEC
	movw 4(%bp), %ax
	movw %ax, D_EX_IP
	movw 6(%bp), %ax
	movw %ax, D_EX_CS
	movw 8(%bp), %ax
	movw %ax, D_EX_FL
	leaw 4(%bp), %ax
	movw %ax, D_EX_SP         /* SP when the handler was entered */
	movw %cs, D_EX_HCS
	movw D_EX_RESUME, %ax
	testw %ax, %ax
	jz 1f
	movw %ax, 4(%bp)
	movw $0, D_EX_RESUME
1:	popl %eax
	popw %ds
	popw %bp
	addw $2, %sp
	iretw

/* --------------------------------------------------------------- routines */

/* Mode, CR0 views, descriptor-table registers. */
	.globl rt_mode
rt_mode:
	movw %cs, %ax
	movw %ax, D_RES + 4*0
	smsw %ax
	movw %ax, D_RES + 4*1
	smsw D_RES + 4*2
	/* SIDT: the IVT loaded before PE was cleared. */
	sidtl D_DTRBUF
	movw D_DTRBUF, %ax
	movw %ax, D_RES + 4*3
	movl D_DTRBUF+2, %eax
	movl %eax, D_RES + 4*4
	/* LIDT with a 16-bit operand loads a 24-bit base (SDM Vol. 2A LGDT/LIDT). */
	lidtw D_IDT_PROBE
	sidtl D_DTRBUF
	movw D_DTRBUF, %ax
	movw %ax, D_RES + 4*5
	movl D_DTRBUF+2, %eax
	movl %eax, D_RES + 4*6
	lidtl D_IVT_PTR
	sgdtl D_DTRBUF
	movw D_DTRBUF, %ax
	movw %ax, D_RES + 4*7
	movl D_DTRBUF+2, %eax
	movl %eax, D_RES + 4*8
	/* SS as loaded by rm_real. */
	movw %ss, D_RES + 4*9
	retw

/* 16-bit arithmetic and flags; 0x66-prefixed 32-bit arithmetic. */
	.globl rt_arith
rt_arith:
	movw $0x7FFF, %ax
	addw $1, %ax
	pushfw
	popw %bx
	movw %ax, D_RES + 4*10
	movw %bx, D_RES + 4*11

	xorw %ax, %ax
	subw $1, %ax
	pushfw
	popw %bx
	movw %ax, D_RES + 4*12
	movw %bx, D_RES + 4*13

	movw $0x1234, %ax
	movw $0x5678, %cx
	mulw %cx
	pushfw
	popw %bx
	movw %ax, D_RES + 4*14
	movw %dx, D_RES + 4*15
	movw %bx, D_RES + 4*16

	movw $0x0626, %dx
	movw $0x0061, %ax
	movw $0x5678, %cx
	divw %cx
	movw %ax, D_RES + 4*17
	movw %dx, D_RES + 4*18

	movl $0xFFFFFFFF, %eax
	addl $1, %eax
	pushfw
	popw %bx
	movl %eax, D_RES + 4*19
	movw %bx, D_RES + 4*20

	movl $-3, %eax
	movl $0x10001, %ecx
	imull %ecx, %eax
	movl %eax, D_RES + 4*21

	movl $0x80000001, %eax
	shll $1, %eax
	pushfw
	popw %bx
	movl %eax, D_RES + 4*22
	movw %bx, D_RES + 4*23

	movl $0x12345678, %edx
	movw $0xAAAA, %dx
	movl %edx, D_RES + 4*24

	stc
	movw $0xFFFF, %ax
	incw %ax
	pushfw
	popw %bx
	movw %ax, D_RES + 4*25
	movw %bx, D_RES + 4*26

	movb $0x80, %al
	cbtw
	cwtd
	movw %ax, D_RES + 4*27
	movw %dx, D_RES + 4*27+2

	movl $1, %edx
	xorl %eax, %eax
	movl $0x10, %ecx
	divl %ecx
	movl %eax, D_RES + 4*28
	movl %edx, D_RES + 4*29
	retw

/* Segment arithmetic: linear = segment * 16 + offset, 16-bit offsets wrap. */
	.globl rt_seg
rt_seg:
	movw $DATA_SEG, %ax
	movw %ax, %es
	movb $0xA5, %es:0x1234
	movb $0x5A, %es:0x0001
	/* 0x4123:0x0004 and 0x4000:0x1234 are both linear 0x41234. */
	movw $0x4123, %ax
	movw %ax, %fs
	movb %fs:0x0004, %al
	movb %al, D_RES + 4*30
	/* BX + SI = 0xFFFF + 2 wraps to offset 1 (16-bit address size). */
	movw $0xFFFF, %bx
	movw $2, %si
	movb %es:(%bx,%si), %al
	movb %al, D_RES + 4*31
	/* disp16 0xFFFF + BX (2) wraps to offset 1 as well. */
	movw $2, %bx
	movb %es:0xFFFF(%bx), %al
	movb %al, D_RES + 4*32
	/* BP-based addressing uses SS by default. */
	movw $0x1177, %ss:0x0100
	pushw %bp
	movw $0x0100, %bp
	movw (%bp), %ax
	popw %bp
	movw %ax, D_RES + 4*33
	/* LDS loads DS = selector, base = selector * 16. */
	lds D_FARPTR, %si
	movw %ds, %cx
	movb (%si), %al
	movw $RM_SEG, %dx
	movw %dx, %ds
	movw %cx, D_RES + 4*34
	movb %al, D_RES + 4*35
	/* A 0x67 (32-bit address) access inside the 64 KiB limit. */
	movl $0x00001234, %esi
	movb %es:(%esi), %al
	movb %al, D_RES + 4*36
	/* 0xFFFF:0x0010 is linear 0x100000: the multiboot header (no 20-bit wrap). */
	movw $0xFFFF, %ax
	movw %ax, %gs
	movl %gs:0x0010, %eax
	movl %eax, D_RES + 4*37
	/* PUSH/POP of a segment register loads it as a real-mode segment. */
	pushw $0x4000
	popw %gs
	movb %gs:0x1234, %al
	movb %al, D_RES + 4*38
	movw %gs, D_RES + 4*39
	retw

/* Stack, near and far CALL/RET/JMP. */
	.globl rt_stack
rt_stack:
	movw %sp, %bx
	pushw $0x1234
	movw %sp, %cx
	popw %dx
	subw %cx, %bx
	movw %bx, D_RES + 4*50
	movw %dx, D_RES + 4*51

	movw %sp, %bx
	pushl $0x89ABCDEF
	movw %sp, %cx
	popw %ax
	popw %dx
	subw %cx, %bx
	movw %bx, D_RES + 4*52
	movw %ax, D_RES + 4*53
	movw %dx, D_RES + 4*53+2

	movw %sp, %bx
	pushw %ds
	movw %sp, %cx
	popw %ax
	subw %cx, %bx
	movw %bx, D_RES + 4*54
	movw %ax, D_RES + 4*55

	/* SP = 0: PUSH wraps to 0xFFFE in a 16-bit stack segment. */
	movw %sp, %si
	movw %ss, %di
	movw $DATA_SEG, %ax
	movw %ax, %ss
	movw $0, %sp
	pushw $0x55AA
	movw %sp, %cx
	movw %di, %ss
	movw %si, %sp
	movw %cx, D_RES + 4*56
	movw $DATA_SEG, %ax
	movw %ax, %es
	movw %es:0xFFFE, %ax
	movw %ax, D_RES + 4*57

	/* Near CALL pushes the 16-bit IP of the next instruction. */
	callw 1f
1:	popw %ax
	movw %ax, D_RES + 4*58
	movw $O(1b), D_RES + 4*59

	/* CALL with 0x66 pushes a 32-bit EIP. */
	movw %sp, %bx
	calll 1f
1:	movw %sp, %cx
	popl %eax
	subw %cx, %bx
	movw %bx, D_RES + 4*60
	movl %eax, D_RES + 4*61
	movl $O(1b), D_RES + 4*62

	/* Far CALL to CS = RM_SEG - 1 (the same code, offset + 16). */
	movw %sp, %bx
	movw %bx, D_SP
	lcallw $RM_SEG - 1, $O(far16) + 16
2:	movw %sp, %cx
	subw %cx, %bx
	movw %bx, D_RES + 4*67
	movw $O(2b), D_RES + 4*65

	/* RETF imm16 releases the parameters. */
	movw %sp, %bx
	pushw $0xAAAA
	pushw $0xBBBB
	lcallw $RM_SEG, $O(far16_ret4)
	movw %sp, %cx
	subw %cx, %bx
	movw %bx, D_RES + 4*68

	/* RETF to 0x0FFF (low bits 3: no RPL in real mode, no stack switch). */
	movw %sp, %bx
	pushw $RM_SEG - 1
	pushw $O(4f) + 16
	lretw
4:	movw %cs, %ax
	ljmpw $RM_SEG, $O(5f)
5:	movw %sp, %cx
	subw %cx, %bx
	movw %ax, D_RES + 4*74
	movw %bx, D_RES + 4*75

	/* Indirect far JMP through m16:16, and back. */
	ljmpw *D_JMP_PTR
3:	movw %ax, D_RES + 4*69

	/* CALL FAR with 0x66 pushes CS and EIP as two dwords; RETF with 0x66 pops them. */
	movw %sp, %bx
	movw %bx, D_SP
	lcalll $RM_SEG, $O(far32)
	movw D_SP, %bx
	movw %sp, %cx
	subw %cx, %bx
	movw %bx, D_RES + 4*72

	/* POPF/PUSHF: status flags and DF round-trip; IF and TF stay 0. */
	pushw $0x0CD5
	popfw
	pushfw
	popw %ax
	cld
	pushw $0x0002
	popfw
	movw %ax, D_RES + 4*73
	retw

far16:
	movw %cs, %ax
	movw %ax, D_RES + 4*63
	movw %sp, %bp
	movw (%bp), %ax
	movw %ax, D_RES + 4*64
	movw 2(%bp), %ax
	movw %ax, D_RES + 4*66
	lretw

far16_ret4:
	lretw $4

jmp_target:
	movw %cs, %ax
	ljmpw $RM_SEG, $O(3b)

far32:
	movw D_SP, %bx
	movw %sp, %cx
	subw %cx, %bx
	movw %bx, D_RES + 4*70
	movw %sp, %bp
	movw 4(%bp), %ax
	movw %ax, D_RES + 4*71
	lretl

/* INT n, IRET, exceptions through the IVT. */
	.globl rt_int
rt_int:
	/* INT 0x40 with DF = CF = 1: a 3-word frame; IRET restores FLAGS. */
	movw $0, D_EX_COUNT
	std
	stc
	movw %sp, %bx
	int $0x40
1:	pushfw
	popw %cx
	cld
	clc
	subw D_EX_SP, %bx
	movw D_EX_VEC, %ax
	movw %ax, D_RES + 4*80
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*81
	movw $O(1b), D_RES + 4*82
	movw D_EX_CS, %ax
	movw %ax, D_RES + 4*83
	movw D_EX_FL, %ax
	andw $0x0401, %ax
	movw %ax, D_RES + 4*84
	movw %bx, D_RES + 4*85
	movl D_EX_HEFL, %eax
	andw $0x0700, %ax
	movw %ax, D_RES + 4*86
	andw $0x0401, %cx
	movw %cx, D_RES + 4*87
	movw D_EX_COUNT, %ax
	movw %ax, D_RES + 4*88

	/* Vector 0x41's IVT entry names CS = RM_SEG - 0x10 (main.c). */
	int $0x41
1:	movw D_EX_HCS, %ax
	movw %ax, D_RES + 4*89
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*90
	movw $O(1b), D_RES + 4*91

	/* INT clears AC; a 16-bit IRET restores only FLAGS[15:0]. */
	pushfl
	orl $0x40000, (%esp)
	popfl
	int $0x40
	pushfl
	popl %eax
	andl $0x40000, %eax
	movl %eax, D_RES + 4*93
	movl D_EX_HEFL, %eax
	andl $0x40000, %eax
	movl %eax, D_RES + 4*92

	/* IRET with 0x66 pops EIP, CS and EFLAGS as dwords (AC included). */
	movw %sp, %bx
	pushfl
	orl $0x40000, (%esp)
	pushl $RM_SEG
	pushl $O(2f)
	iretl
2:	pushfl
	popl %eax
	andl $0x40000, %eax
	movl %eax, D_RES + 4*94
	movw %sp, %cx
	subw %cx, %bx
	movw %bx, D_RES + 4*95
	pushfl
	andl $0xFFFBFFFF, (%esp)
	popfl

	/* #DE from DIV: a fault, IP of the DIV, no error code. */
	movw $O(2f), D_EX_RESUME
	movw %sp, %bx
	xorb %cl, %cl
	movw $0x1234, %ax
1:	divb %cl
2:	subw D_EX_SP, %bx
	movw D_EX_VEC, %ax
	movw %ax, D_RES + 4*97
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*98
	movw $O(1b), D_RES + 4*99
	movw %bx, D_RES + 4*100

	/* INTO with OF = 1: vector 4, a trap (IP after INTO). */
	movb $0x7F, %al
	addb $1, %al
	into
1:	movw D_EX_VEC, %ax
	movw %ax, D_RES + 4*105
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*106
	movw $O(1b), D_RES + 4*107

	/* An IVT entry beyond the IDT limit: #GP at the INT (SDM INT n, real mode). */
	movw $0, D_EX_VEC
	lidtw D_IVT_SHORT
	movw $O(2f), D_EX_RESUME
1:	int $0x41
2:	lidtw D_IVT_PTR
	movw D_EX_VEC, %ax
	movw %ax, D_RES + 4*108
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*109
	movw $O(1b), D_RES + 4*110
	movw $0, D_EX_RESUME
	retw

/* #UD from UD2 (alone: kvm_pvm stops on it). */
	.globl rt_ud
rt_ud:
	movw $O(2f), D_EX_RESUME
1:	ud2
2:	movw D_EX_VEC, %ax
	movw %ax, D_RES + 4*102
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*103
	movw $O(1b), D_RES + 4*104
	movw $0, D_EX_RESUME
	retw

/* Segment-limit faults in real mode (the hidden limit is 0xFFFF). */
	.globl rt_limit
rt_limit:
	movw $DATA_SEG, %ax
	movw %ax, %es
	/* A 32-bit address (0x67) beyond the limit: #GP, no error code. */
	movw $0, D_EX_VEC
	movw $0, D_EX_IP
	movw $O(2f), D_EX_RESUME
	movw %sp, %bx
	movl $0x00010000, %esi
1:	movb %es:(%esi), %al
2:	subw D_EX_SP, %bx
	movw D_EX_VEC, %ax
	movw %ax, D_RES + 4*111
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*112
	movw $O(1b), D_RES + 4*113
	movw %bx, D_RES + 4*114
	/* A word at offset 0xFFFF runs past the limit: #GP. */
	movw $0, D_EX_VEC
	movw $0, D_EX_IP
	movw $O(2f), D_EX_RESUME
	movw $0xFFFF, %di
1:	movw %es:(%di), %ax
2:	movw D_EX_VEC, %ax
	movw %ax, D_RES + 4*115
	movw D_EX_IP, %ax
	movw %ax, D_RES + 4*116
	movw $O(1b), D_RES + 4*117
	movw $0, D_EX_RESUME
	retw

/* String instructions: 16-bit SI/DI/CX, DF, and the 0x66/0x67 forms. */
	.globl rt_string
rt_string:
	movw $DATA_SEG, %ax
	movw %ax, %es
	cld
	movw $D_HELLO, %si
	movw $0x0100, %di
	movw $5, %cx
	rep movsb
	movw %cx, D_RES + 4*120
	movw %si, D_RES + 4*121
	movw $D_HELLO + 5, D_RES + 4*122
	movw %di, D_RES + 4*123
	movl %es:0x0100, %eax
	movl %eax, D_RES + 4*124

	movw $0x1111, %es:0x0202
	std
	movw $0x0208, %di
	movw $3, %cx
	movw $0xBEEF, %ax
	rep stosw
	cld
	movw %di, D_RES + 4*125
	movw %cx, D_RES + 4*126
	movw %es:0x0204, %ax
	movw %ax, D_RES + 4*127
	movw %es:0x0202, %ax
	movw %ax, D_RES + 4*128

	movw $0x0100, %di
	movw $5, %cx
	movb $'L', %al
	repne scasb
	movw %cx, D_RES + 4*129
	movw %di, D_RES + 4*130

	movw $D_HELLO, %si
	movw $D_HELP, %di
	pushw %ds
	popw %es
	movw $5, %cx
	repe cmpsb
	pushfw
	popw %ax
	andw $0x40, %ax
	movw %cx, D_RES + 4*131
	movw %ax, D_RES + 4*132

	std
	movw $D_HELLO, %si
	lodsw
	cld
	subw $D_HELLO, %si
	movw %si, D_RES + 4*133
	movw %ax, D_RES + 4*134

	movw $DATA_SEG, %ax
	movw %ax, %es
	movl $2, %ecx
	movl $D_HELLO, %esi
	movl $0x0300, %edi
	addr32 rep movsl
	movl %ecx, D_RES + 4*135
	subl $D_HELLO, %esi
	movl %esi, D_RES + 4*136
	movl %edi, D_RES + 4*137

	/* MOVSB with a 16-bit address size: SI wraps, ESI[31:16] stay. */
	movl $0x1234FFFF, %esi
	movw $0x0400, %di
	movsb
	movl %esi, D_RES + 4*138
	retw

	.globl rm_blob_end
rm_blob_end:

/* --------------------------------------------------------- 32-bit side */

	.globl rm_gdt_ptr
	RM_SWITCH_DATA

/* uint32_t rm_call(uint32_t routine_offset, uint32_t via_lmsw) */
	RM_CALL_PROLOGUE
	movl 24(%esp), %eax
	movw %ax, RM_BASE + D_TARGET
	movl 28(%esp), %eax
	movb %al, RM_BASE + D_LMSW
	RM_ENTER_PM16

	.globl rm_back32
rm_back32:
	RM_RETURN_PM32

	.section .note.GNU-stack, "", @progbits
