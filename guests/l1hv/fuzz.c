/*
 * fuzz.c - mode=fuzz: one VM entry with fields from a multiboot module.
 *
 * The first module is text, one `FIELD VALUE` pair per line in hex (an
 * optional 0x prefix; blank lines and lines starting with # are skipped),
 * e.g. `4002 84006172`. l1hv sets up the benign payload's VMCS, VMWRITEs
 * every pair over it (printing `fuzz: vmwrite FIELD -> vmfail N` for each
 * that fails), turns pin-based external-interrupt exiting back on and arms
 * its APIC timer, so whatever L2 becomes L1 gets the CPU back, and executes
 * VMLAUNCH once. Exactly one verdict line follows:
 *
 *   fuzz: vmfail-invalid
 *   fuzz: vmfail-valid N
 *   fuzz: entry-failure reason 0xR qualification 0xQ
 *   fuzz: exit reason N
 *
 * and the guest exits with 0. L2 is never resumed. Host-state fields are
 * written like any other (HOST_RSP excepted: vmx_run writes it at entry);
 * a host state that passes the checks but is wrong takes L1 down with it.
 */
#include "l1hv.h"
#include "payloads.h"

#define FUZZ_TIMER_MS 50

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A hex number at *p (after blanks); advances *p. 0 if there is none. */
static int parse_hex(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (end - s >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	while (s < end && hexval(*s) >= 0 && digits < 16) {
		v = v << 4 | (uint64_t)hexval(*s);
		s++;
		digits++;
	}
	if (!digits || (s < end && hexval(*s) >= 0))
		return 0;
	*p = s;
	*out = v;
	return 1;
}

void fuzz_run(const void *module, uint32_t len)
{
	struct l2_config c = { .mode = L2_LONG, .rip = (uint64_t)(uintptr_t)l2_benign,
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };
	const char *p = module, *end = p + len;
	struct l2_regs r;
	struct l2_exit e;
	uint64_t pa = vmcs_region(6), fl;
	unsigned line = 0, applied = 0;

	if (!vmcs_make_current(pa, "fuzz-setup") || !vmcs_setup(&c, "fuzz-setup"))
		exit(1);

	while (p < end) {
		const char *eol = p;
		uint64_t field, value;

		while (eol < end && *eol != '\n')
			eol++;
		line++;
		const char *q = p;
		while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q < eol && *q != '#') {
			const char *t = q;
			if (parse_hex(&t, eol, &field) && parse_hex(&t, eol, &value)) {
				while (t < eol && (*t == ' ' || *t == '\t' || *t == '\r'))
					t++;
			} else {
				t = q; /* marks the line bad below */
			}
			if (t == eol) {
				fl = vmwrite_flags(field, value);
				applied++;
				if (vm_result(fl) == VM_FAIL_VALID)
					printf("fuzz: vmwrite %llx -> vmfail %u\n", (unsigned long long)field,
					       vm_instruction_error());
				else if (vm_result(fl) == VM_FAIL_INVALID)
					printf("fuzz: vmwrite %llx -> vmfail-invalid\n",
					       (unsigned long long)field);
			} else {
				printf("l1: fuzz: module line %u is not `FIELD VALUE` in hex, skipped\n",
				       line);
			}
		}
		p = eol + 1;
	}
	printf("l1: fuzz: %u VMWRITEs from the module, then VMLAUNCH\n", applied);

	/* Whatever the module did to the pin-based controls, external
	 * interrupts exit again, and the timer raises one. */
	vmw(PIN_BASED_CONTROLS, vmr(PIN_BASED_CONTROLS) | PIN_EXT_INTR_EXITING);
	memset(&r, 0, sizeof(r));
	lapic_arm_oneshot(FUZZ_TIMER_MS);
	e = l2_run("fuzz", &r, 1);
	lapic_disarm();

	if (e.result == VM_FAIL_INVALID)
		printf("fuzz: vmfail-invalid\n");
	else if (e.result == VM_FAIL_VALID)
		printf("fuzz: vmfail-valid %u\n", e.error);
	else if (e.reason & EXIT_REASON_ENTRY_FAILURE)
		printf("fuzz: entry-failure reason %#x qualification %#llx\n", e.reason,
		       (unsigned long long)e.qual);
	else
		printf("fuzz: exit reason %u\n", e.reason & 0xFFFF);
	exit(0);
}
