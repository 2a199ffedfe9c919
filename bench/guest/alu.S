# alu.S - register-only ALU loop: no memory access inside the loop.
#
# Each iteration is the twelve instructions from bench_loop to
# bench_loop_end (bench/speed.sh counts them with objdump). The loop ends
# on `dec %ecx; jnz`; the `cmp` in the body sets flags that nothing reads.
	.include "rt.inc"

	.section .rodata
bench_name:	.asciz "alu"

	.text
workload:
	movl $0x12345678, %eax
	movl $0x9abcdef0, %ebx
	movl $0x0f1e2d3c, %edx
	xorl %esi, %esi
	movl $0x13579bdf, %edi
	movl $ITERS, %ecx
	.globl bench_loop
bench_loop:
	addl %ebx, %eax
	xorl %eax, %edx
	shll $3, %ebx
	subl %edx, %ebx
	incl %esi
	addl %esi, %edi
	xorl %edi, %eax
	shll $1, %edx
	cmpl %eax, %edi
	subl $0x61c88647, %eax
	decl %ecx
	jnz bench_loop
	.globl bench_loop_end
bench_loop_end:
	xorl %ebx, %eax
	xorl %edx, %eax
	xorl %esi, %eax
	xorl %edi, %eax
	jmp finish
