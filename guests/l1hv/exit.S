/*
 * exit.S - VM entry and the VM-exit landing point for l1hv.
 *
 * VM entry and VM exit switch RSP, RIP and RFLAGS through the VMCS and
 * nothing else of the general registers (SDM Vol. 3C §27.3.2.3, §28.5.3),
 * so L2's GPRs live in a struct l2_regs between runs and L1's callee-saved
 * registers live on L1's stack while L2 runs.
 *
 * vmx_run(regs, launch) pushes the callee-saved registers and `regs`, points
 * HOST_RSP at that frame, loads L2's GPRs and executes VMLAUNCH or
 * VMRESUME. If the instruction fails (VMfailInvalid or VMfailValid) it
 * falls through: the frame is unwound and the outcome returned. If L2 runs,
 * the next VM exit - or a VM-entry failure on guest state, which loads host
 * state the same way (§27.8) - arrives at vmx_exit_entry with RSP = HOST_RSP
 * = the same frame: L2's GPRs are stored into `regs` and vmx_run returns 0
 * a second time, so to speak.
 */

/* struct l2_regs offsets (vmx.h) */
#define R_RAX  0
#define R_RBX  8
#define R_RCX  16
#define R_RDX  24
#define R_RSI  32
#define R_RDI  40
#define R_RBP  48
#define R_R8   56
#define R_R9   64
#define R_R10  72
#define R_R11  80
#define R_R12  88
#define R_R13  96
#define R_R14  104
#define R_R15  112

#include "frame.inc"

	.text
	.code64
	.globl vmx_run
/* enum vm_result vmx_run(struct l2_regs *regs, int launch): regs in RDI, launch in ESI */
vmx_run:
	VMX_FRAME_PUSH %rdi             /* regs, for the exit path */
	movl $HOST_RSP, %eax
	vmwrite %rsp, %rax              /* if there is no current VMCS this fails, and so will VMLAUNCH */

	testl %esi, %esi                /* ZF: resume; the MOVs below keep the flags */
	movq R_RAX(%rdi), %rax
	movq R_RBX(%rdi), %rbx
	movq R_RCX(%rdi), %rcx
	movq R_RDX(%rdi), %rdx
	movq R_RSI(%rdi), %rsi
	movq R_RBP(%rdi), %rbp
	movq R_R8(%rdi), %r8
	movq R_R9(%rdi), %r9
	movq R_R10(%rdi), %r10
	movq R_R11(%rdi), %r11
	movq R_R12(%rdi), %r12
	movq R_R13(%rdi), %r13
	movq R_R14(%rdi), %r14
	movq R_R15(%rdi), %r15
	movq R_RDI(%rdi), %rdi
	jz 1f
	vmlaunch
	jmp 2f
1:	vmresume
	/* Still here: the instruction failed, and RFLAGS says how (JMP and
	 * MOV leave the flags alone). */
2:	movl $1, %eax                   /* CF: VMfailInvalid */
	jc vmx_run_return
	movl $2, %eax                   /* ZF: VMfailValid */
	jz vmx_run_return
	movl $3, %eax                   /* neither: cannot happen (VMsucceed enters L2) */
	jmp vmx_run_return

/*
 * HOST_RIP. RSP = HOST_RSP: (%rsp) = regs, above it L1's callee-saved
 * registers and vmx_run's return address. RFLAGS = 0x2 (§28.5.3), so IF
 * and DF are 0.
 */
	.balign 16
	.globl vmx_exit_entry
vmx_exit_entry:
	pushq %rax                      /* L2's RAX; regs is now at 8(%rsp) */
	movq 8(%rsp), %rax
	movq %rbx, R_RBX(%rax)
	movq %rcx, R_RCX(%rax)
	movq %rdx, R_RDX(%rax)
	movq %rsi, R_RSI(%rax)
	movq %rdi, R_RDI(%rax)
	movq %rbp, R_RBP(%rax)
	movq %r8, R_R8(%rax)
	movq %r9, R_R9(%rax)
	movq %r10, R_R10(%rax)
	movq %r11, R_R11(%rax)
	movq %r12, R_R12(%rax)
	movq %r13, R_R13(%rax)
	movq %r14, R_R14(%rax)
	movq %r15, R_R15(%rax)
	popq %rcx
	movq %rcx, R_RAX(%rax)
	xorl %eax, %eax                 /* VM_SUCCEED: L2 ran */
/* Both ways out of vmx_run: unwinds its frame and returns EAX. */
vmx_run_return:
	VMX_FRAME_POP_RET

	.section .note.GNU-stack, "", @progbits
