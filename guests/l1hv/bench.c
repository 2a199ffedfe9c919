/*
 * bench.c - mode=bench: loops for timing nested VMX from outside
 * (bench/nested.sh). No checks are reported; the command line chooses
 *
 *   what=spin    L2 runs N iterations of a 5-instruction loop without an
 *                exit, then one VMCALL (the baseline for L2's instructions)
 *   what=vmcall  the same loop with a VMCALL in each iteration: L1 sets
 *                GUEST_RIP past it and VMRESUMEs (bench.S), N nested round
 *                trips L2 -> L0 -> L1 -> L0 -> L2; then one more VMCALL
 *   what=cpuid   L1 executes N CPUIDs (leaf 0), each a VM exit to L0 and
 *                back; no L2
 *
 * and loops=N (1 to 10^10). Both L2 loops run in one VMCS set up once
 * like the benign payload's, and end in a VMCALL with L2's results, which
 * L1 checks against closed forms. One line follows:
 *
 *   bench: what=W loops=N done
 *
 * and the guest exits with 0; on anything unexpected `bench: error: ...`
 * and exit(1).
 */
#include "l1hv.h"
#include "payloads.h"

extern char l2_bench_spin[], l2_bench_spin_done[];
extern char l2_bench_vmcall[], l2_bench_vmcall_next[], l2_bench_vmcall_done[];

/* bench.S; the offsets are the OUT_* there. */
struct bench_out {
	uint64_t sum, xor, count, pending, rcx;
};
enum {
	BENCH_OK,
	BENCH_LAUNCH_FAILED,
	BENCH_RESUME_FAILED,
	BENCH_VMWRITE_FAILED,
	BENCH_UNEXPECTED_EXIT,
};
int bench_l2(uint64_t n, uint64_t resume_rip, struct bench_out *out);
void bench_cpuid(uint64_t n);

#define BENCH_MAX_LOOPS 10000000000ull

static void __attribute__((noreturn)) bench_fail(const char *what, uint64_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void bench_fail(const char *what, uint64_t n, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("bench: error: what=%s loops=%llu: %s\n", what, (unsigned long long)n, buf);
	exit(1);
}

/* sum of 1..n, mod 2^64 as L2's ADDs wrap */
static uint64_t sum_upto(uint64_t n)
{
	return n % 2 == 0 ? (n / 2) * (n + 1) : n * ((n + 1) / 2);
}

/* xor of 1..n */
static uint64_t xor_upto(uint64_t n)
{
	switch (n % 4) {
	case 0: return n;
	case 1: return 1;
	case 2: return n + 1;
	default: return 0;
	}
}

static void bench_l2_loop(const char *what, uint64_t n, int with_vmcall)
{
	struct l2_config c = { .mode = L2_LONG,
			       .rip = (uint64_t)(uintptr_t)(with_vmcall ? l2_bench_vmcall : l2_bench_spin),
			       .rsp = (uint64_t)(uintptr_t)l2_stack_top };
	uint64_t done = (uint64_t)(uintptr_t)(with_vmcall ? l2_bench_vmcall_done : l2_bench_spin_done);
	struct bench_out out;
	uint64_t pa = vmcs_region(7);
	int r;

	if (!vmcs_make_current(pa, "bench-setup") || !vmcs_setup(&c, "bench-setup"))
		bench_fail(what, n, "VMCS setup failed");
	memset(&out, 0, sizeof(out));
	r = bench_l2(n, (uint64_t)(uintptr_t)l2_bench_vmcall_next, &out);
	switch (r) {
	case BENCH_OK:
		break;
	case BENCH_LAUNCH_FAILED:
	case BENCH_RESUME_FAILED:
	case BENCH_VMWRITE_FAILED:
		bench_fail(what, n, "%s failed, VM-instruction error %u",
			   r == BENCH_LAUNCH_FAILED ? "VMLAUNCH" :
			   r == BENCH_RESUME_FAILED ? "VMRESUME" : "VMWRITE",
			   vm_instruction_error());
	default:
		bench_fail(what, n, "exit reason %u at rip %#llx with L2's RCX %llu, want a VMCALL at RCX %llu",
			   (uint32_t)vmr(VM_EXIT_REASON), (unsigned long long)vmr(GUEST_RIP),
			   (unsigned long long)out.rcx, (unsigned long long)out.pending);
	}

	/* The last exit: the VMCALL after the loop, with the loop's results;
	 * every in-loop VMCALL (vmcall) or none (spin) was seen. */
	uint32_t reason = (uint32_t)vmr(VM_EXIT_REASON);
	uint64_t rip = vmr(GUEST_RIP);
	uint64_t want_pending = with_vmcall ? 0 : n;
	if (reason != EXIT_REASON_VMCALL || rip != done)
		bench_fail(what, n, "last exit: reason %u at rip %#llx, want 18 (VMCALL) at %#llx",
			   reason, (unsigned long long)rip, (unsigned long long)done);
	if (out.sum != sum_upto(n) || out.xor != xor_upto(n) || out.count != n ||
	    out.pending != want_pending)
		bench_fail(what, n, "L2 returned sum %#llx xor %#llx count %llu after %llu resumes, want %#llx %#llx %llu after %llu",
			   (unsigned long long)out.sum, (unsigned long long)out.xor,
			   (unsigned long long)out.count, (unsigned long long)(n - out.pending),
			   (unsigned long long)sum_upto(n), (unsigned long long)xor_upto(n),
			   (unsigned long long)n, (unsigned long long)(n - want_pending));
}

void bench_run(const char *what, size_t what_len, const char *loops, size_t loops_len)
{
	char w[16];
	uint64_t n = 0;

	if (!what || what_len == 0 || what_len >= sizeof(w)) {
		printf("bench: error: want what=spin, what=vmcall or what=cpuid\n");
		exit(1);
	}
	memcpy(w, what, what_len);
	w[what_len] = 0;
	if (!loops || loops_len == 0 || loops_len > 11) {
		printf("bench: error: want loops=N, N from 1 to %llu\n", BENCH_MAX_LOOPS);
		exit(1);
	}
	for (size_t i = 0; i < loops_len; i++) {
		if (loops[i] < '0' || loops[i] > '9') {
			printf("bench: error: loops=%.*s is not a decimal number\n", (int)loops_len, loops);
			exit(1);
		}
		n = n * 10 + (uint64_t)(loops[i] - '0');
	}
	if (n < 1 || n > BENCH_MAX_LOOPS) {
		printf("bench: error: want loops=N, N from 1 to %llu\n", BENCH_MAX_LOOPS);
		exit(1);
	}

	if (strcmp(w, "spin") == 0)
		bench_l2_loop(w, n, 0);
	else if (strcmp(w, "vmcall") == 0)
		bench_l2_loop(w, n, 1);
	else if (strcmp(w, "cpuid") == 0)
		bench_cpuid(n);
	else
		bench_fail(w, n, "unknown what=%s: want spin, vmcall or cpuid", w);
	printf("bench: what=%s loops=%llu done\n", w, (unsigned long long)n);
	exit(0);
}
