/*
 * pc-probe - prints what a multiboot boot loader and the PC platform
 * present to a kernel, so runs on Vigil and on QEMU can be compared line by
 * line: the multiboot information (flags, memory, command line, modules and
 * their first line), fw_cfg items, the pc-testdev scratch port, the PIC
 * mask registers.
 */
#include "rt.h"

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4], mmap_length, mmap_addr;
};
struct __attribute__((packed)) mb_mmap {
	uint32_t size;
	uint64_t base, length;
	uint32_t type;
};
struct mb_module {
	uint32_t start, end, string, reserved;
};

static void print_line(const char *p, uint32_t max)
{
	for (uint32_t i = 0; i < max && p[i] && p[i] != '\n'; i++)
		printf("%c", p[i]);
}

static void fw_cfg_select(uint16_t key)
{
	outw(0x510, key);
}

static uint8_t fw_cfg_byte(void)
{
	return inb(0x511);
}

int main(void)
{
	const struct mb_info *mb = (const struct mb_info *)(uintptr_t)boot_info;

	printf("magic %#x flags %#x\n", boot_magic, mb->flags);
	if (mb->flags & 1)
		printf("mem_lower %u KiB mem_upper %u KiB\n", mb->mem_lower, mb->mem_upper);
	if (mb->flags & 2)
		printf("boot_device %#x\n", mb->boot_device);
	if (mb->flags & 64) {
		uint32_t off = 0;
		while (off < mb->mmap_length) {
			const struct mb_mmap *e = (const struct mb_mmap *)(uintptr_t)(mb->mmap_addr + off);
			printf("mmap %#llx +%#llx type %u\n", (unsigned long long)e->base,
			       (unsigned long long)e->length, e->type);
			off += e->size + 4;
		}
	}
	if (mb->flags & 4) {
		printf("cmdline '");
		print_line((const char *)(uintptr_t)mb->cmdline, 200);
		printf("'\n");
	}
	if (mb->flags & 8) {
		printf("mods_count %u\n", mb->mods_count);
		const struct mb_module *m = (const struct mb_module *)(uintptr_t)mb->mods_addr;
		for (uint32_t i = 0; i < mb->mods_count && i < 8; i++) {
			printf("module %u: size %u page-aligned %u string '", i, m[i].end - m[i].start,
			       (m[i].start & 0xFFF) == 0);
			print_line((const char *)(uintptr_t)m[i].string, 200);
			printf("' first line '");
			print_line((const char *)(uintptr_t)m[i].start, m[i].end - m[i].start);
			printf("'\n");
		}
	}

	/* fw_cfg: signature, ID, RAM size, CPUs, command line. */
	char sig[5] = { 0 };
	fw_cfg_select(0x0000);
	for (int i = 0; i < 4; i++)
		sig[i] = (char)fw_cfg_byte();
	printf("fw_cfg signature '%s'\n", sig);
	fw_cfg_select(0x0001);
	uint32_t id = 0;
	for (int i = 0; i < 4; i++)
		id |= (uint32_t)fw_cfg_byte() << (8 * i);
	printf("fw_cfg id %#x\n", id);
	fw_cfg_select(0x0003);
	uint64_t ram = 0;
	for (int i = 0; i < 8; i++)
		ram |= (uint64_t)fw_cfg_byte() << (8 * i);
	printf("fw_cfg ram %u MiB\n", (uint32_t)(ram >> 20));
	fw_cfg_select(0x0005);
	uint16_t cpus = fw_cfg_byte();
	cpus |= (uint16_t)(fw_cfg_byte() << 8);
	printf("fw_cfg cpus %u\n", cpus);
	fw_cfg_select(0x0014);
	uint32_t clen = 0;
	for (int i = 0; i < 4; i++)
		clen |= (uint32_t)fw_cfg_byte() << (8 * i);
	printf("fw_cfg cmdline size %u '", clen);
	fw_cfg_select(0x0015);
	for (uint32_t i = 0; i < clen && i < 200; i++) {
		char c = (char)fw_cfg_byte();
		if (c)
			printf("%c", c);
	}
	printf("'\n");

	/* pc-testdev: port 0xE0 is a 32-bit scratch register. */
	outl(0xE0, 0x12345678);
	printf("testdev scratch %#x\n", inl(0xE0));
	outb(0xE0, 0xAB);
	printf("testdev scratch after byte write %#x\n", inl(0xE0));

	/* PIC: mask everything, read the masks back. */
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
	printf("pic masks %#x %#x\n", inb(0x21), inb(0xA1));
	return 0;
}
