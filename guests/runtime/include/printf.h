/*
 * printf.h - formatted output.
 *
 * Conversions: %d %i %u %x %X %o %p %c %s %%.
 * Flags: '-' (left-justify), '0' (zero-pad), '#' (0x prefix), '+', ' '.
 * Field width and precision (also as '*'), length modifiers hh h l ll z t j.
 * No floating point.
 */
#ifndef RT_PRINTF_H
#define RT_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
