# boot.S - floppy boot sector for Bochs, which has no multiboot loader.
#
# The BIOS loads this sector at 0x7C00 in real mode. It reads SECTORS
# sectors from LBA 1 of the boot floppy to 0x10000 (the workload's raw
# image: objcopy -O binary of the multiboot ELF, whose first byte belongs at
# 1 MiB), turns on A20, enters 32-bit protected mode with a flat GDT, copies
# the image to 1 MiB and jumps to ENTRY with EAX = 0x2BADB002, as a
# multiboot loader would. The workload then loads its own GDT.
#
# Assemble with --defsym SECTORS=n --defsym ENTRY=addr; link at 0x7C00.

	.ifndef SECTORS
	.error "assemble with --defsym SECTORS=N"
	.endif
	.ifndef ENTRY
	.error "assemble with --defsym ENTRY=ADDR"
	.endif

	.set STAGE_SEG, 0x1000		# staging buffer at linear 0x10000
	.set LOAD_ADDR, 0x100000

	.code16
	.text
	.globl _start
_start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %ss
	movw $0x7c00, %sp
	ljmp $0, $1f			# CS:IP = 0000:7Cxx whatever the BIOS used
1:	movb %dl, drive

	movw $STAGE_SEG, %ax
	movw %ax, %es
	movw $1, %si			# next LBA
	movw $SECTORS, %di		# sectors left
read_next:
	movw $3, %bp			# tries
retry:
	# LBA -> CHS for 18 sectors per track, 2 heads
	movw %si, %ax
	xorw %dx, %dx
	movw $18, %cx
	divw %cx			# AX = track, DX = sector - 1
	movb %dl, %cl
	incb %cl			# CL = sector (cylinder < 256: no high bits)
	movb %al, %dh
	andb $1, %dh			# DH = head
	shrw $1, %ax
	movb %al, %ch			# CH = cylinder
	movb drive, %dl
	xorw %bx, %bx			# ES:BX = buffer
	movw $0x0201, %ax		# read one sector
	int $0x13
	jnc read_ok
	xorw %ax, %ax			# reset the drive and try again
	movb drive, %dl
	int $0x13
	decw %bp
	jnz retry
	jmp fail
read_ok:
	movw %es, %ax
	addw $0x20, %ax			# 512 bytes further
	movw %ax, %es
	incw %si
	decw %di
	jnz read_next

	# A20: ask the BIOS, then the fast A20 gate (port 0x92) as well
	movw $0x2401, %ax
	int $0x15
	inb $0x92, %al
	orb $0x02, %al
	andb $0xfe, %al
	outb %al, $0x92

	cli
	lgdt gdt_ptr
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmp $0x08, $pmode

fail:
	movw $0x0e46, %ax		# 'F' on the screen, then stop
	xorw %bx, %bx
	int $0x10
2:	hlt
	jmp 2b

	.code32
pmode:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $0x10000, %esi
	movl $LOAD_ADDR, %edi
	movl $SECTORS * 128, %ecx
	cld
	rep movsl
	movl $0x2badb002, %eax
	xorl %ebx, %ebx
	movl $ENTRY, %edx
	jmp *%edx

	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	# 0x08: flat 32-bit code
	.quad 0x00cf93000000ffff	# 0x10: flat data
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
drive:	.byte 0

	.org 510
	.byte 0x55, 0xaa
