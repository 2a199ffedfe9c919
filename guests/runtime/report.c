/* report.c - PASS/FAIL lines and the final summary. */
#include "rt.h"

static unsigned passed, failed;

int report(const char *name, int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		passed++;
	else
		failed++;
	printf("%s %s: ", ok ? "PASS" : "FAIL", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	serial_putc('\n');
	return ok;
}

int report_eq(const char *name, uint64_t got, uint64_t want)
{
	if (got == want)
		return report(name, 1, "%#llx", (unsigned long long)got);
	return report(name, 0, "got %#llx, want %#llx", (unsigned long long)got,
		      (unsigned long long)want);
}

unsigned report_passed(void)
{
	return passed;
}

unsigned report_failed(void)
{
	return failed;
}

void report_done(void)
{
	printf("summary: %u passed, %u failed\n", passed, failed);
	exit(failed ? 1 : 0);
}
