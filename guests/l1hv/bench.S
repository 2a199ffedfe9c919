/*
 * bench.S - mode=bench (bench.c): the L2 loops and L1's side of them.
 *
 * The two L2 loops are the same five instructions per iteration; the
 * vmcall loop has a VMCALL in the middle as well. RCX = N comes from L1
 * (VM entry does not load the GPRs: L2 starts with L1's). At the end both
 * hand L1 the results with one more VMCALL, at RCX = 0:
 *
 *   RAX = sum of i, i = 1..N     RDX = xor of i, i = 1..N     RSI = N
 *
 * L1's VM-exit handler (bench_l2_exit) touches none of RAX, RCX, RDX, RSI;
 * L2 touches none of RBX, RBP, R12-R15 nor its stack.
 */

#include "frame.inc"

/* bench_l2's return values (bench.c) */
#define BENCH_OK              0
#define BENCH_LAUNCH_FAILED   1
#define BENCH_RESUME_FAILED   2
#define BENCH_VMWRITE_FAILED  3
#define BENCH_UNEXPECTED_EXIT 4

/* struct bench_out offsets (bench.c) */
#define OUT_SUM     0
#define OUT_XOR     8
#define OUT_COUNT   16
#define OUT_PENDING 24
#define OUT_RCX     32

	.text
	.code64

/* ======================================================== L2 */

/*
 * L2_BENCH_LOOP name, vmcall: the loop at `name`, ending at name_done with
 * the results VMCALL. With vmcall = 1 each iteration has a VMCALL as well,
 * after which L1 resumes at name_next; the instructions around it are the
 * same as in the loop without one, so the difference is the VMCALL's.
 */
.macro L2_BENCH_LOOP name, vmcall
	.globl \name, \name\()_done
\name:
	xorl %eax, %eax
	xorl %edx, %edx
	xorl %esi, %esi
1:	addq %rcx, %rax
	xorq %rcx, %rdx
	incq %rsi
	.if \vmcall
	vmcall
	.globl \name\()_next
\name\()_next:
	.endif
	decq %rcx
	jnz 1b
\name\()_done:
	vmcall
2:	hlt
	jmp 2b
.endm

/* No exit in the loop: the baseline for L2's instructions. */
	L2_BENCH_LOOP l2_bench_spin, 0

/* The same loop with a VMCALL in each iteration; L1 resumes at
 * l2_bench_vmcall_next. */
	L2_BENCH_LOOP l2_bench_vmcall, 1

/* ======================================================== L1 */

/*
 * int bench_l2(uint64_t n, uint64_t resume_rip, struct bench_out *out)
 *   n in RDI, resume_rip in RSI, out in RDX
 *
 * VMLAUNCHes the current VMCS (set up for one of the loops above) with
 * RCX = n. Every VM exit lands on bench_l2_exit, which is the whole of
 * L1's handler: an exit with RCX != 0 must be the in-loop VMCALL of the
 * iteration L1 expects (R12); L1 VMWRITEs GUEST_RIP = resume_rip (past
 * the VMCALL: L1 knows where it is, so no VMREAD) and VMRESUMEs. The exit
 * with RCX = 0 ends the run: L2's results go to *out and bench_l2 returns
 * BENCH_OK; bench.c then VMREADs the exit reason and RIP of that last
 * exit. The handler does not save L2's GPRs (it uses none of L2's).
 */
	.globl bench_l2
bench_l2:
	VMX_FRAME_PUSH %rdx             /* out, at (%rsp) = HOST_RSP */
	movl $HOST_RSP, %eax
	vmwrite %rsp, %rax
	jbe bench_vmwrite_failed
	movl $HOST_RIP, %eax
	leaq bench_l2_exit(%rip), %rbx
	vmwrite %rbx, %rax
	jbe bench_vmwrite_failed
	movq %rdi, %rcx                 /* L2's loop count */
	movq %rdi, %r12                 /* RCX at L2's next in-loop VMCALL */
	movq %rsi, %r13                 /* GUEST_RIP to resume at */
	movl $GUEST_RIP, %r14d
	vmlaunch
	movl $BENCH_LAUNCH_FAILED, %eax
	jmp bench_l2_return

	.balign 16
bench_l2_exit:                          /* HOST_RIP; RSP = HOST_RSP, RFLAGS = 2 */
	testq %rcx, %rcx
	jz bench_l2_done
	cmpq %rcx, %r12
	jne bench_l2_unexpected
	decq %r12
	vmwrite %r13, %r14              /* GUEST_RIP = past the VMCALL */
	jbe bench_vmwrite_failed
	vmresume
	movl $BENCH_RESUME_FAILED, %eax
	jmp bench_l2_return

bench_l2_done:
	movl $BENCH_OK, %ebx
	jmp bench_l2_store
bench_l2_unexpected:
	movl $BENCH_UNEXPECTED_EXIT, %ebx
bench_l2_store:
	movq (%rsp), %rdi               /* out */
	movq %rax, OUT_SUM(%rdi)
	movq %rdx, OUT_XOR(%rdi)
	movq %rsi, OUT_COUNT(%rdi)
	movq %r12, OUT_PENDING(%rdi)
	movq %rcx, OUT_RCX(%rdi)
	movl %ebx, %eax
	jmp bench_l2_return

bench_vmwrite_failed:
	movl $BENCH_VMWRITE_FAILED, %eax
bench_l2_return:
	VMX_FRAME_POP_RET

/*
 * void bench_cpuid(uint64_t n): n CPUIDs of leaf 0 in L1 (n >= 1), each a
 * VM exit to L0 and back; four instructions an iteration.
 */
	.globl bench_cpuid
bench_cpuid:
	pushq %rbx
	movq %rdi, %r8
1:	xorl %eax, %eax
	cpuid
	decq %r8
	jnz 1b
	popq %rbx
	ret

	.section .note.GNU-stack, "", @progbits
