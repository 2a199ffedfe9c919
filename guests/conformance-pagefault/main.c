/*
 * conformance-pagefault - 4-level paging and page faults, one check per line.
 *
 * The guest builds its own page tables in free memory (.bss) and loads
 * CR3 with them: PML4[0] points at the runtime's PDPT (the identity map
 * of the first GiB, so code, data and stack stay mapped) and PML4[1]
 * holds a test hierarchy at T = 0x8000000000 (512 GiB) with 4 KiB and
 * 2 MiB pages. Checks: not-present at each level, write protection with
 * CR0.WP = 1 and 0 (at the PTE and at the PDE), NX with EFER.NXE (the
 * fetch faults with error bit 4; at the PTE and at the PDE), reserved bits
 * (error bit 3), U/S at CPL 0 (no fault without SMEP/SMAP), accessed and
 * dirty bits set by the CPU at every level, CR2 for split accesses and
 * straddling instruction fetches, INVLPG and CR3 reloads making PTE
 * changes visible, aliases.
 *
 * #PF error code: bit 0 P (protection violation, else not present), bit 1
 * W/R (write), bit 2 U/S (CPL 3; always 0 here), bit 3 RSVD, bit 4 I/D
 * (instruction fetch; reported with EFER.NXE = 1).
 */
#include "conf.h"

#define P   0x001ull
#define W   0x002ull
#define US  0x004ull
#define A   0x020ull
#define D   0x040ull
#define PS  0x080ull
#define XD  (1ull << 63)
#define ADDR(e) ((e) & 0x000FFFFFFFFFF000ull)

#define EFER_NXE (1ull << 11)
#define CR0_WP   (1ul << 16)

#define T 0x0000008000000000ull /* PML4[1] */
#define PAGE(i) (T + (uint64_t)(i) * 4096)
#define PD_VA(i) (T + (uint64_t)(i) * 0x200000)

extern uint64_t pml4[512], pdpt[512]; /* runtime/longmode.S */

static uint64_t my_pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt_t[512] __attribute__((aligned(4096)));
static uint64_t pd_t[512] __attribute__((aligned(4096)));
static uint64_t pt_t[512] __attribute__((aligned(4096)));   /* pd_t[0] */
static uint64_t pt_ro[512] __attribute__((aligned(4096)));  /* pd_t[2]: PDE W = 0 */
static uint64_t pt_nx[512] __attribute__((aligned(4096)));  /* pd_t[3]: PDE XD = 1 */
static uint64_t pt_ad[512] __attribute__((aligned(4096)));  /* pd_t[4]: fresh A/D */
static uint8_t pg[16][4096] __attribute__((aligned(4096)));

/* Physical 16 MiB: a free 2 MiB-aligned region for the 2 MiB page tests. */
#define BIG_PA 0x01000000ull

static uintptr_t saved_cr3;

static void write_cr3(uintptr_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static void write_cr0(uintptr_t v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

static void invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static void flush_all(void)
{
	write_cr3(read_cr3());
}

static uint64_t pa(const void *p)
{
	return (uintptr_t)p; /* identity map */
}

/* pg[i] starts with `jmp *%rcx` (FF E1): executing it returns to RCX. */
static void put_ret_stub(unsigned i, unsigned off)
{
	pg[i][off] = 0xFF;
	pg[i][off + 1] = 0xE1;
}

static void tables_setup(void)
{
	for (unsigned i = 0; i < 16; i++)
		for (unsigned j = 0; j < 4096; j += 4)
			*(uint32_t *)&pg[i][j] = 0xA0000000u | i << 16 | j;

	my_pml4[0] = pml4[0];
	my_pml4[1] = pa(pdpt_t) | P | W;
	pdpt_t[0] = pa(pd_t) | P | W;
	pd_t[0] = pa(pt_t) | P | W;
	pd_t[2] = pa(pt_ro) | P;          /* W = 0 at the PDE */
	pd_t[3] = pa(pt_nx) | P | W | XD; /* XD at the PDE */
	pd_t[4] = pa(pt_ad) | P | W;
	pd_t[5] = BIG_PA | P | W | PS;    /* 2 MiB page */

	pt_t[0] = pa(pg[0]) | P | W;
	pt_t[1] = pa(pg[1]) | P;          /* read-only */
	pt_t[2] = pa(pg[2]) | P | W;      /* code page, XD toggled below */
	pt_t[3] = pa(pg[3]) | P | W | US; /* user page */
	pt_t[4] = pa(pg[4]) | P | W;      /* reserved-bit tests */
	pt_t[6] = pa(pg[6]) | P | W;      /* split access: 6 present, 7 not */
	pt_t[8] = pa(pg[8]) | P | W;      /* invlpg */
	pt_t[9] = pa(pg[9]) | P | W;      /* alias pair */
	pt_t[10] = pa(pg[9]) | P | W;
	pt_t[11] = pa(pg[11]) | P | W;    /* straddling fetch: 11 present, 12 not */
	pt_t[13] = pa(pg[13]) | P | W;    /* CR3 reload */
	pt_ro[0] = pa(pg[14]) | P | W;    /* writable PTE under a read-only PDE */
	pt_nx[0] = pa(pg[15]) | P | W;    /* executable PTE under an XD PDE */
	pt_ad[0] = pa(pg[0]) | P | W;

	put_ret_stub(2, 0);
	put_ret_stub(3, 0);
	put_ret_stub(15, 0);
	/* At 0xFFD of page 11: mov $0x44332211, %eax (B8 11 22 33 44), which
	 * continues into page 12, where jmp *%rcx follows at offset 2. */
	pg[11][0xFFD] = 0xB8;
	pg[11][0xFFE] = 0x11;
	pg[11][0xFFF] = 0x22;
	pg[12][0] = 0x33;
	pg[12][1] = 0x44;
	put_ret_stub(12, 2);

	saved_cr3 = read_cr3();
	write_cr3(pa(my_pml4));
}

static void tables_restore(void)
{
	write_cr3(saved_cr3);
}

/* ------------------------------------------------------------ helpers */

/* Read a dword at va with a fault armed; returns done, value in *v. */
static uintptr_t rd(uint64_t va, uint32_t *v)
{
	uintptr_t done = 0;
	uint32_t val = 0xBAD0BAD0;

	arm();
	__asm__ volatile(ARM "1: movl (%[p]), %[v]\n" RESUMED
			 : ARM_OUT, [v] "+r"(val)
			 : [p] "r"(va)
			 : "memory");
	*v = val;
	return done;
}

/* Write a dword at va with a fault armed; returns done. */
static uintptr_t wr(uint64_t va, uint32_t v)
{
	uintptr_t done = 0;

	arm();
	__asm__ volatile(ARM "1: movl %[v], (%[p])\n" RESUMED
			 : ARM_OUT
			 : [p] "r"(va), [v] "r"(v)
			 : "memory");
	return done;
}

/* Jump to va (which should jump back through RCX) with a fault armed.
 * Returns done (2: came back through RCX, 1: resumed after a fault). */
static uintptr_t fetch(uint64_t va)
{
	uintptr_t done = 0;

	arm();
	__asm__ volatile("movq $2f, %[rip]\n\t"
			 "movq $3f, %%rcx\n\t"
			 "jmp *%[p]\n"
			 "3: movq $2, %[done]\n\t"
			 "jmp 4f\n" RESUMED
			 "4:"
			 : [rip] "=m"(resume_ip), [done] "+r"(done)
			 : [p] "r"(va)
			 : "rcx", "rax", "memory");
	return done;
}

static void expect_fetch_ok(const char *name, uintptr_t done, const char *what)
{
	conf_armed = 0;
	if (hits == 0 && done == 2)
		report(name, 1, "%s", what);
	else
		report(name, 0, "hits %u vector %ld error %#lx ip %#lx cr2 %#lx; want no fault",
		       hits, (long)seen_vector, (unsigned long)seen_error,
		       (unsigned long)seen_ip, (unsigned long)seen_cr2);
}

/* ----------------------------------------------------------- mapping */

static void mapping_checks(void)
{
	uint32_t v1, v2;
	uintptr_t d1, d2;

	/* Reads through the guest-built 4 KiB mapping see the physical page:
	 * pg[0] dword at 0x124 holds 0xA0000124. */
	d1 = rd(PAGE(0) + 0x124, &v1);
	report("map-4k-read", hits == 0 && d1 && v1 == 0xA0000124, "hits %u value %#x", hits, v1);

	/* Two PTEs pointing at one page: a write through one is read through
	 * the other. */
	d1 = wr(PAGE(9) + 0x40, 0x5EED5EED);
	d2 = rd(PAGE(10) + 0x40, &v2);
	report("map-alias", d1 && d2 && hits == 0 && v2 == 0x5EED5EED && *(uint32_t *)&pg[9][0x40] == 0x5EED5EED,
	       "value through the alias %#x", v2);

	/* A 2 MiB page (PS in the PDE) at T + 10 MiB maps physical 16 MiB:
	 * offset 0x12344 of it is physical 0x1012344 (identity-mapped too). */
	*(volatile uint32_t *)(uintptr_t)(BIG_PA + 0x12344) = 0x2B16B16;
	d1 = rd(PD_VA(5) + 0x12344, &v1);
	report("map-2m-read", hits == 0 && d1 && v1 == 0x2B16B16, "hits %u value %#x", hits, v1);

	/* A fault leaves the destination register alone: mov (%rax), %rax from
	 * a not-present page. */
	{
		uint64_t r = PAGE(5);
		uintptr_t done = 0;
		arm();
		__asm__ volatile(ARM "1: movq (%%rax), %%rax\n" RESUMED
				 : ARM_OUT, "+a"(r) : : "memory");
		report("pf-register-unchanged", hits == 1 && seen_vector == VEC_PF && done &&
							r == PAGE(5),
		       "rax %#llx kept", (unsigned long long)r);
		conf_armed = 0;
	}
}

/* --------------------------------------------------------- not present */

static void not_present_checks(void)
{
	uint32_t v;
	uintptr_t done;

	/* PML4[2] = 0: VA 2 * 512 GiB. Read: error 0. */
	done = rd(0x0000010000000000ull + 0x88, &v);
	expect_pf("pf-not-present-pml4e", 0, fault_ip, 0x0000010000000088ull, done);
	/* PDPT_T[1] = 0: T + 1 GiB. */
	done = rd(T + 0x40000000 + 0x10, &v);
	expect_pf("pf-not-present-pdpte", 0, fault_ip, T + 0x40000010, done);
	/* PD_T[1] = 0: T + 2 MiB; a write: error W = 2. */
	done = wr(T + 0x200000 + 0x20, 1);
	expect_pf("pf-not-present-pde-write", 2, fault_ip, T + 0x200020, done);
	/* PT_T[5] = 0. */
	done = rd(PAGE(5) + 0xFFC, &v);
	expect_pf("pf-not-present-pte", 0, fault_ip, PAGE(5) + 0xFFC, done);

	/* A dword read at PAGE(6) + 0xFFE spans pages 6 (present) and 7 (not
	 * present): the fault reports CR2 = the first byte in page 7. */
	done = rd(PAGE(6) + 0xFFE, &v);
	expect_pf("pf-split-access-cr2", 0, fault_ip, PAGE(7), done);
}

/* --------------------------------------------------- write protection */

static void write_protect_checks(void)
{
	uintptr_t done, cr0 = read_cr0();
	uint32_t v;

	/* CR0.WP = 1: a supervisor write to a read-only page: error P|W = 3. */
	write_cr0(cr0 | CR0_WP);
	done = wr(PAGE(1) + 8, 0x11);
	expect_pf("pf-write-ro-pte-wp1", 3, fault_ip, PAGE(1) + 8, done);
	/* The same with the PTE writable but the PDE read-only: the effective
	 * permission is the AND of the levels. */
	done = wr(PD_VA(2) + 0x30, 0x22);
	expect_pf("pf-write-ro-pde-wp1", 3, fault_ip, PD_VA(2) + 0x30, done);
	/* Reads are fine. */
	done = rd(PAGE(1) + 8, &v);
	report("read-ro-page-ok", hits == 0 && done && v == 0xA0010008, "hits %u value %#x", hits,
	       v);
	conf_armed = 0;

	/* CR0.WP = 0: supervisor writes ignore R/W, at both levels, and set
	 * the dirty bit in the PTE. */
	write_cr0(cr0 & ~CR0_WP);
	pt_t[1] &= ~(A | D);
	invlpg(PAGE(1));
	done = wr(PAGE(1) + 8, 0x33);
	{
		uintptr_t done2 = wr(PD_VA(2) + 0x30, 0x44);
		report("write-ro-wp0-ok",
		       hits == 0 && done && done2 && *(uint32_t *)&pg[1][8] == 0x33 &&
			       *(uint32_t *)&pg[14][0x30] == 0x44 && (pt_t[1] & (A | D)) == (A | D),
		       "hits %u, writes landed, PTE A|D %#llx", hits,
		       (unsigned long long)(pt_t[1] & (A | D)));
		conf_armed = 0;
	}
	write_cr0(cr0);
}

/* --------------------------------------------------- reserved bits */

static void reserved_checks(void)
{
	uint32_t v;
	uintptr_t done;

	/* EFER.NXE = 0: bit 63 (XD) is reserved: a read faults with
	 * P|RSVD = 9. */
	pt_t[4] = pa(pg[4]) | P | W | XD;
	invlpg(PAGE(4));
	done = rd(PAGE(4), &v);
	expect_pf("pf-rsvd-xd-without-nxe", 0x9, fault_ip, PAGE(4), done);

	/* Bit 51 is above MAXPHYADDR (48 on the AMD host, 40 under QEMU):
	 * reserved. A write: P|W|RSVD = 0xB. */
	pt_t[4] = pa(pg[4]) | P | W | (1ull << 51);
	invlpg(PAGE(4));
	done = wr(PAGE(4) + 4, 1);
	expect_pf("pf-rsvd-bit51-pte-write", 0xB, fault_ip, PAGE(4) + 4, done);

	/* A 2 MiB PDE with bit 13 set (bits 20:13 are reserved). */
	pd_t[6] = BIG_PA | P | W | PS | (1ull << 13);
	invlpg(PD_VA(6));
	done = rd(PD_VA(6) + 0x100, &v);
	expect_pf("pf-rsvd-2m-pde-bit13", 0x9, fault_ip, PD_VA(6) + 0x100, done);

	/* Bit 51 in a non-leaf entry (the PDE of a page table). */
	pd_t[7] = pa(pt_ad) | P | W | (1ull << 51);
	invlpg(PD_VA(7));
	done = rd(PD_VA(7), &v);
	expect_pf("pf-rsvd-bit51-pde", 0x9, fault_ip, PD_VA(7), done);
	pd_t[7] = 0;
	pt_t[4] = pa(pg[4]) | P | W;
	invlpg(PD_VA(7));
	invlpg(PAGE(4));
}

/* ------------------------------------------------------------ NX, U/S */

static void map_page12(struct trap_frame *f)
{
	(void)f;
	pt_t[12] = pa(pg[12]) | P | W;
	invlpg(PAGE(12));
}

static void nx_checks(void)
{
	uint32_t v;
	uintptr_t done;

	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);

	/* Without XD the code page runs (jmp *%rcx back). */
	done = fetch(PAGE(2));
	expect_fetch_ok("nx-clear-fetch-ok", done, "executed the page and came back");

	/* XD in the PTE: the fetch faults at the target: error P|I/D = 0x11,
	 * CR2 = RIP = target. */
	pt_t[2] |= XD;
	invlpg(PAGE(2));
	done = fetch(PAGE(2));
	expect_pf("pf-nx-pte-fetch", 0x11, PAGE(2), PAGE(2), done);
	/* Data reads from an XD page are fine. */
	done = rd(PAGE(2) + 0x10, &v);
	report("nx-page-readable", hits == 0 && done && v == 0xA0020010, "hits %u value %#x",
	       hits, v);
	conf_armed = 0;

	/* XD in the PDE, not in the PTE: still not executable. */
	done = fetch(PD_VA(3));
	expect_pf("pf-nx-pde-fetch", 0x11, PD_VA(3), PD_VA(3), done);

	/* Fetch from a not-present page with NXE: error I/D = 0x10. */
	done = fetch(PAGE(5) + 0x20);
	expect_pf("pf-fetch-not-present-id-bit", 0x10, PAGE(5) + 0x20, PAGE(5) + 0x20, done);

	/* An instruction starting 3 bytes before the end of page 11 and
	 * continuing into not-present page 12: #PF at the instruction start
	 * with CR2 = the start of page 12. The handler maps page 12 and the
	 * instruction (mov $0x44332211, %eax) is restarted; then jmp *%rcx. */
	{
		uint32_t eax = 0;
		done = 0;
		arm();
		fixup = map_page12;
		retry_same_ip = 1;
		__asm__ volatile("movq $2f, %[rip]\n\t"
				 "movq $3f, %%rcx\n\t"
				 "jmp *%[p]\n"
				 "3: movq $1, %[done]\n"
				 "2:"
				 : [rip] "=m"(resume_ip), [done] "+r"(done), "=a"(eax)
				 : [p] "r"(PAGE(11) + 0xFFD)
				 : "rcx", "memory");
		conf_armed = 0;
		int ok = hits == 1 && seen_vector == VEC_PF && seen_error == 0x10 &&
			 seen_ip == PAGE(11) + 0xFFD && seen_cr2 == PAGE(12) && done == 1 &&
			 eax == 0x44332211;
		report("pf-fetch-straddling-page", ok,
		       "hits %u error %#lx ip %#lx cr2 %#lx, after mapping eax %#x", hits,
		       (unsigned long)seen_error, (unsigned long)seen_ip, (unsigned long)seen_cr2,
		       eax);
	}

	/* U/S at CPL 0 (no SMEP/SMAP): a user page can be read, written and
	 * executed by the supervisor. */
	{
		uintptr_t d1 = rd(PAGE(3) + 0x80, &v);
		uintptr_t d2 = wr(PAGE(3) + 0x84, 0x77);
		uintptr_t d3 = fetch(PAGE(3));
		report("user-page-supervisor-access-ok",
		       hits == 0 && d1 && d2 && d3 == 2 && v == 0xA0030080 &&
			       *(uint32_t *)&pg[3][0x84] == 0x77,
		       "read %#x, write and fetch ok (hits %u)", v, hits);
		conf_armed = 0;
	}

	pt_t[2] &= ~XD;
	invlpg(PAGE(2));
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_NXE);
}

/* ---------------------------------------------------- accessed, dirty */

static void ad_checks(void)
{
	uint32_t v;
	uintptr_t done;

	/* Clear A (and D) in every level on the path to PD_VA(4), flush the
	 * TLB, read: A is set at all four levels, D stays clear in the PTE. */
	my_pml4[1] &= ~A;
	pdpt_t[0] &= ~A;
	pd_t[4] &= ~A;
	pt_ad[0] &= ~(A | D);
	flush_all();
	done = rd(PD_VA(4) + 0x200, &v);
	{
		uint64_t got[] = { my_pml4[1] & A, pdpt_t[0] & A, pd_t[4] & A, pt_ad[0] & (A | D),
				   done && hits == 0 };
		uint64_t want[] = { A, A, A, A, 1 };
		CHECK_VALS("accessed-bits-after-read", got, want);
		conf_armed = 0;
	}
	/* Now a write: D is set in the PTE. */
	done = wr(PD_VA(4) + 0x200, 0x99);
	{
		uint64_t got[] = { pt_ad[0] & (A | D), done && hits == 0 };
		uint64_t want[] = { A | D, 1 };
		CHECK_VALS("dirty-bit-after-write", got, want);
	}

	/* 2 MiB page: A after a read and D after a write, in the PDE. */
	pd_t[5] &= ~(A | D);
	invlpg(PD_VA(5));
	done = rd(PD_VA(5) + 0x400, &v);
	uint64_t after_read = pd_t[5] & (A | D);
	done &= wr(PD_VA(5) + 0x400, 0x98);
	{
		uint64_t got[] = { after_read, pd_t[5] & (A | D), done && hits == 0 };
		uint64_t want[] = { A, A | D, 1 };
		CHECK_VALS("accessed-dirty-2m-pde", got, want);
	}

	/* A write that faults (read-only page, WP = 1) does not set D. */
	{
		uintptr_t cr0 = read_cr0();
		pt_t[1] = (pt_t[1] & ~(A | D)) | A;
		invlpg(PAGE(1));
		write_cr0(cr0 | CR0_WP);
		done = wr(PAGE(1) + 12, 0x55);
		write_cr0(cr0);
		int ok = hits == 1 && seen_vector == VEC_PF && seen_error == 3 && done &&
			 (pt_t[1] & D) == 0 && pg[1][12] != 0x55;
		report("faulting-write-no-dirty", ok, "#PF error %#lx, PTE D %#llx",
		       (unsigned long)seen_error, (unsigned long long)(pt_t[1] & D));
		conf_armed = 0;
	}
}

/* ------------------------------------------------- invalidation, CR2 */

static void tlb_checks(void)
{
	uint32_t v1, v2;
	uintptr_t done;

	/* Remap PAGE(8) from pg[8] to pg[10] and invlpg: the new page is read. */
	done = rd(PAGE(8) + 0x10, &v1);
	pt_t[8] = pa(pg[10]) | P | W;
	invlpg(PAGE(8));
	done &= rd(PAGE(8) + 0x10, &v2);
	{
		uint64_t got[] = { v1, v2, done && hits == 0 };
		uint64_t want[] = { 0xA0080010, 0xA00A0010, 1 };
		CHECK_VALS("invlpg-remap-visible", got, want);
	}
	/* Unmap it and invlpg: #PF. */
	pt_t[8] = 0;
	invlpg(PAGE(8));
	done = rd(PAGE(8) + 0x10, &v1);
	expect_pf("invlpg-unmap-faults", 0, fault_ip, PAGE(8) + 0x10, done);

	/* The same with a CR3 reload instead of invlpg. */
	done = rd(PAGE(13) + 0x20, &v1);
	pt_t[13] = pa(pg[11]) | P | W;
	flush_all();
	done &= rd(PAGE(13) + 0x20, &v2);
	{
		uint64_t got[] = { v1, v2, done && hits == 0 };
		uint64_t want[] = { 0xA00D0020, 0xA00B0020, 1 };
		CHECK_VALS("cr3-reload-remap-visible", got, want);
	}
	pt_t[13] = 0;
	flush_all();
	done = wr(PAGE(13) + 0x20, 7);
	expect_pf("cr3-reload-unmap-faults", 2, fault_ip, PAGE(13) + 0x20, done);

	/* CR2 is written only by page faults: a #GP (non-canonical address)
	 * leaves the previous value. */
	{
		uintptr_t before = read_cr2();
		done = 0;
		arm();
		__asm__ volatile(ARM "movabsq $0x8000000000000000, %%rax\n"
				 "1: movl (%%rax), %%eax\n" RESUMED
				 : ARM_OUT : : "rax", "memory");
		conf_armed = 0;
		report("cr2-unchanged-by-gp", hits == 1 && seen_vector == VEC_GP && done &&
							before == PAGE(13) + 0x20 &&
							read_cr2() == before,
		       "#GP, cr2 still %#lx", (unsigned long)read_cr2());
	}
}

int main(void)
{
	faults_on();
	tables_setup();
	mapping_checks();
	not_present_checks();
	write_protect_checks();
	reserved_checks();
	ad_checks();
	tlb_checks();
	nx_checks();
	tables_restore();
	faults_off();
	report_done();
}
