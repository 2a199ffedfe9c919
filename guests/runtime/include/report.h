/*
 * report.h - one line per check, then a summary and the exit code.
 *
 *   PASS <name>: <detail>
 *   FAIL <name>: <detail>
 *   ...
 *   summary: N passed, M failed
 */
#ifndef RT_REPORT_H
#define RT_REPORT_H

#include <stdint.h>

/* Print one PASS/FAIL line for check `name`; returns ok. */
int report(const char *name, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Check that got == want (as 64-bit values) and report it:
 * "PASS name: 0x..." or "FAIL name: got 0x..., want 0x...".
 */
int report_eq(const char *name, uint64_t got, uint64_t want);

/* Number of PASS and FAIL lines printed so far. */
unsigned report_passed(void);
unsigned report_failed(void);

/* Print "summary: N passed, M failed" and exit(0) if M == 0, else exit(1). */
void report_done(void) __attribute__((noreturn));

#endif
