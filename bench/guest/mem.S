# mem.S - memory-heavy loop over a 4 KiB array (1024 dwords).
#
# Each iteration is the twelve instructions from bench_loop to
# bench_loop_end: three loads and three stores (one of them a
# read-modify-write), with index arithmetic that wraps in the array.
	.include "rt.inc"

	.set WORDS, 1024

	.section .rodata
bench_name:	.asciz "mem"

	.bss
	.balign 4096
array:	.skip WORDS * 4

	.text
workload:
	# array[i] = i * 0x9e3779b9 (the image never relies on zeroed .bss)
	xorl %ecx, %ecx
	xorl %eax, %eax
1:	movl %eax, array(,%ecx,4)
	addl $0x9e3779b9, %eax
	incl %ecx
	cmpl $WORDS, %ecx
	jnz 1b

	xorl %ebx, %ebx
	movl $0x2545f491, %edx
	movl $ITERS, %ecx
	.globl bench_loop
bench_loop:
	movl %ebx, %eax
	andl $WORDS - 1, %eax
	movl array(,%eax,4), %esi	# load
	addl %edx, %esi
	movl %esi, array(,%eax,4)	# store
	leal 0x155(%ebx), %edi
	andl $WORDS - 1, %edi
	xorl array(,%edi,4), %edx	# load
	addl %esi, array(,%edi,4)	# load and store
	addl $7, %ebx
	decl %ecx
	jnz bench_loop
	.globl bench_loop_end
bench_loop_end:

	# result: %edx plus the sum of the array
	xorl %ecx, %ecx
	movl %edx, %eax
2:	addl array(,%ecx,4), %eax
	incl %ecx
	cmpl $WORDS, %ecx
	jnz 2b
	jmp finish
