/* serial.h - COM1 16550 UART output. */
#ifndef RT_SERIAL_H
#define RT_SERIAL_H

#include <stddef.h>

#define COM1_BASE 0x3F8

/* Program 115200 8N1, FIFOs on, interrupts off. Only writes registers. */
void serial_init(void);
/* Write one byte, waiting for LSR.THRE first. No newline translation. */
void serial_putc(char c);
/* Write n bytes. */
void serial_write(const char *s, size_t n);
/* Write a NUL-terminated string. */
void serial_puts(const char *s);

#endif
