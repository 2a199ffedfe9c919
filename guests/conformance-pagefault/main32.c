/*
 * conformance-pagefault32 - 32-bit (2-level) paging and page faults, one
 * check per line; the 32-bit twin of conformance-pagefault.
 *
 * The guest turns paging on itself: CR4.PSE, a page directory that
 * identity-maps [0, 1 GiB) with 4 MiB pages, and a test window at
 * T = 0xC0000000 built from 4 KiB page tables and 4 MiB pages. Checks:
 * not-present PDE/PTE, CR2 of a split access, CR0.WP at the PTE and the
 * PDE, accessed/dirty bits (4 KiB and 4 MiB pages), INVLPG and CR3
 * reloads, U/S at CPL 0, instruction fetch from a not-present page.
 * Exceptions go through conf.h's IRET-free stubs. There is no NX and no
 * reserved-bit check here: 32-bit paging has neither (without PAE); the
 * I/D bit of the error code is only defined with NX or SMEP, so it is
 * masked for the fetch fault.
 */
#include "conf.h"

#define P   0x001u
#define W   0x002u
#define US  0x004u
#define A   0x020u
#define D   0x040u
#define PS  0x080u
#define CR0_WP (1u << 16)
#define CR4_PSE (1u << 4)

#define T 0xC0000000u
#define PAGE(i) (T + (uint32_t)(i) * 4096)
#define BIG(i) (T + (uint32_t)(i) * 0x400000) /* PDE 768 + i */
#define BIG_PA 0x01000000u /* physical 16 MiB, free, 4 MiB-aligned */

static uint32_t pdir[1024] __attribute__((aligned(4096)));
static uint32_t pt_t[1024] __attribute__((aligned(4096)));  /* PDE 768 */
static uint32_t pt_ro[1024] __attribute__((aligned(4096))); /* PDE 770: W = 0 */
static uint8_t pg[12][4096] __attribute__((aligned(4096)));

static void write_cr0(uint32_t v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static void write_cr3(uint32_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static void write_cr4(uint32_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
static void invlpg(uint32_t va) { __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory"); }
static void flush_all(void) { write_cr3(read_cr3()); }
static uint32_t pa(const void *p) { return (uintptr_t)p; }

static void paging_on(void)
{
	for (unsigned i = 0; i < 12; i++)
		for (unsigned j = 0; j < 4096; j += 4)
			*(uint32_t *)&pg[i][j] = 0xA0000000u | i << 16 | j;
	for (uint32_t i = 0; i < 256; i++)
		pdir[i] = i << 22 | P | W | PS;
	pdir[768] = pa(pt_t) | P | W;
	pdir[770] = pa(pt_ro) | P;        /* read-only at the PDE */
	pdir[771] = BIG_PA | P | W | PS;  /* 4 MiB page */

	pt_t[0] = pa(pg[0]) | P | W;
	pt_t[1] = pa(pg[1]) | P;          /* read-only */
	pt_t[3] = pa(pg[3]) | P | W | US; /* user page */
	pt_t[6] = pa(pg[6]) | P | W;      /* split: 6 present, 7 not */
	pt_t[8] = pa(pg[8]) | P | W;      /* invlpg */
	pt_t[9] = pa(pg[9]) | P | W;      /* alias pair */
	pt_t[10] = pa(pg[9]) | P | W;
	pt_t[11] = pa(pg[11]) | P | W;    /* CR3 reload */
	pt_ro[0] = pa(pg[2]) | P | W;
	pg[3][0] = 0xFF;                  /* jmp *%ecx */
	pg[3][1] = 0xE1;

	write_cr4(read_cr4() | CR4_PSE);
	write_cr3(pa(pdir));
	write_cr0(read_cr0() | CR0_PG);
}

static void paging_off(void)
{
	write_cr0(read_cr0() & ~(CR0_PG | CR0_WP));
	write_cr4(read_cr4() & ~CR4_PSE);
}

static uintptr_t rd(uint32_t va, uint32_t *v)
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

static uintptr_t wr(uint32_t va, uint32_t v)
{
	uintptr_t done = 0;

	arm();
	__asm__ volatile(ARM "1: movl %[v], (%[p])\n" RESUMED
			 : ARM_OUT
			 : [p] "r"(va), [v] "r"(v)
			 : "memory");
	return done;
}

/* No fault expected: report with the detail given. */
static void ok_if(const char *name, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ok_if(const char *name, int ok, const char *fmt, ...)
{
	char buf[160];
	va_list ap;

	conf_armed = 0;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (ok && hits == 0)
		report(name, 1, "%s", buf);
	else
		report(name, 0, "hits %u vector %ld error %#lx cr2 %#lx; %s", hits,
		       (long)seen_vector, (unsigned long)seen_error, (unsigned long)seen_cr2, buf);
}

int main(void)
{
	uint32_t v, v2;
	uintptr_t done, d2;

	nr_on();
	paging_on();
	report("paging-on-32bit-pse", (read_cr0() & CR0_PG) && read_cr3() == pa(pdir),
	       "CR0.PG on, CR3 = page directory, 4 MiB identity pages");

	/* Mappings built by the guest. */
	done = rd(PAGE(0) + 0x124, &v);
	ok_if("map-4k-read", done && v == 0xA0000124, "value %#x", v);
	done = wr(PAGE(9) + 0x40, 0x5EED5EED);
	d2 = rd(PAGE(10) + 0x40, &v);
	ok_if("map-alias", done && d2 && v == 0x5EED5EED, "value through the alias %#x", v);
	*(volatile uint32_t *)(BIG_PA + 0x12344) = 0x4B16B16;
	done = rd(BIG(3) + 0x12344, &v);
	ok_if("map-4m-read", done && v == 0x4B16B16, "value %#x", v);

	/* Not present: the PDE (769), the PTE (5); a split access. */
	done = rd(BIG(1) + 0x10, &v);
	expect_pf("pf-not-present-pde", 0, fault_ip, BIG(1) + 0x10, done);
	done = wr(PAGE(5) + 0xFFC, 1);
	expect_pf("pf-not-present-pte-write", 2, fault_ip, PAGE(5) + 0xFFC, done);
	done = rd(PAGE(6) + 0xFFE, &v);
	expect_pf("pf-split-access-cr2", 0, fault_ip, PAGE(7), done);
	{
		uint32_t r = PAGE(5);
		done = 0;
		arm();
		__asm__ volatile(ARM "1: movl (%%eax), %%eax\n" RESUMED
				 : ARM_OUT, "+a"(r) : : "memory");
		conf_armed = 0;
		report("pf-register-unchanged", hits == 1 && seen_vector == VEC_PF && done && r == PAGE(5),
		       "eax %#x kept", r);
	}

	/* Write protection. */
	{
		uint32_t cr0 = read_cr0();
		write_cr0(cr0 | CR0_WP);
		done = wr(PAGE(1) + 8, 0x11);
		expect_pf("pf-write-ro-pte-wp1", 3, fault_ip, PAGE(1) + 8, done);
		done = wr(BIG(2) + 0x30, 0x22);
		expect_pf("pf-write-ro-pde-wp1", 3, fault_ip, BIG(2) + 0x30, done);
		write_cr0(cr0 & ~CR0_WP);
		pt_t[1] &= ~(A | D);
		invlpg(PAGE(1));
		done = wr(PAGE(1) + 8, 0x33);
		d2 = wr(BIG(2) + 0x30, 0x44);
		ok_if("write-ro-wp0-ok",
		      done && d2 && *(uint32_t *)&pg[1][8] == 0x33 && *(uint32_t *)&pg[2][0x30] == 0x44 &&
			      (pt_t[1] & (A | D)) == (A | D),
		      "writes landed, PTE A|D %#x", pt_t[1] & (A | D));
		/* A faulting write does not set D. */
		pt_t[1] = (pt_t[1] & ~D) | A;
		invlpg(PAGE(1));
		write_cr0(cr0 | CR0_WP);
		done = wr(PAGE(1) + 12, 0x55);
		write_cr0(cr0);
		conf_armed = 0;
		report("faulting-write-no-dirty",
		       hits == 1 && seen_vector == VEC_PF && seen_error == 3 && done &&
			       (pt_t[1] & D) == 0 && pg[1][12] != 0x55,
		       "#PF error %#lx, PTE D %#x", (unsigned long)seen_error, pt_t[1] & D);
	}

	/* Accessed and dirty bits: PDE and PTE after a read, PTE D after a
	 * write; a 4 MiB PDE gets A then D. */
	pdir[768] &= ~A;
	pt_t[0] &= ~(A | D);
	flush_all();
	done = rd(PAGE(0) + 0x200, &v);
	{
		uint32_t pde = pdir[768] & A, pte = pt_t[0] & (A | D);
		d2 = wr(PAGE(0) + 0x200, 0x99);
		uint64_t got[] = { pde, pte, pt_t[0] & (A | D), done && d2 && hits == 0 };
		uint64_t want[] = { A, A, A | D, 1 };
		CHECK_VALS("accessed-dirty-4k", got, want);
		conf_armed = 0;
	}
	pdir[771] &= ~(A | D);
	invlpg(BIG(3));
	done = rd(BIG(3) + 0x400, &v);
	{
		uint32_t after_read = pdir[771] & (A | D);
		d2 = wr(BIG(3) + 0x400, 0x98);
		uint64_t got[] = { after_read, pdir[771] & (A | D), done && d2 && hits == 0 };
		uint64_t want[] = { A, A | D, 1 };
		CHECK_VALS("accessed-dirty-4m-pde", got, want);
		conf_armed = 0;
	}

	/* A 4 MiB page with R/W = 0 in its PDE, CR0.WP = 1: error 3. */
	{
		uint32_t cr0 = read_cr0();
		pdir[772] = (BIG_PA + 0x400000) | P | PS;
		invlpg(BIG(4));
		write_cr0(cr0 | CR0_WP);
		done = wr(BIG(4) + 0x3FFFFC, 1);
		write_cr0(cr0);
		expect_pf("pf-write-ro-4m-page-wp1", 3, fault_ip, BIG(4) + 0x3FFFFC, done);
	}
	/* Remapping a 4 MiB page (16 MiB -> 20 MiB physical) + invlpg. */
	*(volatile uint32_t *)(BIG_PA + 0x400000 + 0x88) = 0x20202020;
	*(volatile uint32_t *)(BIG_PA + 0x88) = 0x16161616;
	done = rd(BIG(3) + 0x88, &v);
	pdir[771] = (BIG_PA + 0x400000) | P | W | PS;
	invlpg(BIG(3));
	d2 = rd(BIG(3) + 0x88, &v2);
	ok_if("invlpg-4m-remap-visible", done && d2 && v == 0x16161616 && v2 == 0x20202020,
	      "%#x then %#x", v, v2);

	/* INVLPG and CR3 reloads make PTE changes visible. */
	done = rd(PAGE(8) + 0x10, &v);
	pt_t[8] = pa(pg[10]) | P | W;
	invlpg(PAGE(8));
	d2 = rd(PAGE(8) + 0x10, &v2);
	ok_if("invlpg-remap-visible", done && d2 && v == 0xA0080010 && v2 == 0xA00A0010,
	      "%#x then %#x", v, v2);
	pt_t[8] = 0;
	invlpg(PAGE(8));
	done = rd(PAGE(8) + 0x10, &v);
	expect_pf("invlpg-unmap-faults", 0, fault_ip, PAGE(8) + 0x10, done);
	done = rd(PAGE(11) + 0x20, &v);
	pt_t[11] = pa(pg[4]) | P | W;
	flush_all();
	d2 = rd(PAGE(11) + 0x20, &v2);
	ok_if("cr3-reload-remap-visible", done && d2 && v == 0xA00B0020 && v2 == 0xA0040020,
	      "%#x then %#x", v, v2);
	pt_t[11] = 0;
	flush_all();
	done = wr(PAGE(11) + 0x20, 7);
	expect_pf("cr3-reload-unmap-faults", 2, fault_ip, PAGE(11) + 0x20, done);

	/* U/S at CPL 0: a user page is readable, writable and executable. */
	{
		uintptr_t d1 = rd(PAGE(3) + 0x80, &v);
		uintptr_t dw = wr(PAGE(3) + 0x84, 0x77);
		uintptr_t df = 0;
		arm();
		__asm__ volatile("movl $2f, %[rip]\n\t"
				 "movl $3f, %%ecx\n\t"
				 "jmp *%[p]\n"
				 "3: movl $2, %[done]\n\t"
				 "jmp 4f\n" RESUMED
				 "4:"
				 : [rip] "=m"(resume_ip), [done] "+r"(df)
				 : [p] "r"(PAGE(3))
				 : "ecx", "memory");
		ok_if("user-page-supervisor-access-ok",
		      d1 && dw && df == 2 && v == 0xA0030080 && *(uint32_t *)&pg[3][0x84] == 0x77,
		      "read %#x, write and fetch ok", v);
	}

	/* Fetch from a not-present page: #PF at the target, CR2 = target,
	 * error bits 3:0 = 0 (bit 4 is not defined without NX/SMEP). */
	{
		uintptr_t df = 0;
		arm();
		__asm__ volatile("movl $2f, %[rip]\n\t"
				 "jmp *%[p]\n" RESUMED
				 : [rip] "=m"(resume_ip), [done] "+r"(df)
				 : [p] "r"(PAGE(5) + 0x20)
				 : "memory");
		conf_armed = 0;
		int ok = hits == 1 && seen_vector == VEC_PF && (seen_error & 0xF) == 0 &&
			 seen_ip == PAGE(5) + 0x20 && seen_cr2 == PAGE(5) + 0x20 && df == 1;
		report("pf-fetch-not-present", ok, "vector %ld error&0xf %#lx ip %#lx cr2 %#lx",
		       (long)seen_vector, (unsigned long)(seen_error & 0xF), (unsigned long)seen_ip,
		       (unsigned long)seen_cr2);
	}

	paging_off();
	nr_off();
	report_done();
}
