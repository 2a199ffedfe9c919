/*
 * serial.c - COM1 output.
 *
 * Only LSR is ever read; everything else is write-only, so a minimal UART
 * model (THR plus an LSR that always reports THRE) is enough.
 */
#include "io.h"
#include "serial.h"

#define UART_THR 0 /* transmit holding register (DLAB=0) */
#define UART_DLL 0 /* divisor latch low (DLAB=1) */
#define UART_IER 1 /* interrupt enable (DLAB=0) */
#define UART_DLM 1 /* divisor latch high (DLAB=1) */
#define UART_FCR 2 /* FIFO control */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */

#define LCR_DLAB  0x80
#define LCR_8N1   0x03
#define LSR_THRE  0x20

void serial_init(void)
{
	outb(COM1_BASE + UART_IER, 0x00);     /* no interrupts */
	outb(COM1_BASE + UART_LCR, LCR_DLAB); /* divisor latch access */
	outb(COM1_BASE + UART_DLL, 0x01);     /* 115200 baud */
	outb(COM1_BASE + UART_DLM, 0x00);
	outb(COM1_BASE + UART_LCR, LCR_8N1);  /* 8 data bits, no parity, 1 stop */
	outb(COM1_BASE + UART_FCR, 0x07);     /* enable and clear FIFOs */
	outb(COM1_BASE + UART_MCR, 0x03);     /* DTR, RTS */
}

void serial_putc(char c)
{
	while (!(inb(COM1_BASE + UART_LSR) & LSR_THRE))
		;
	outb(COM1_BASE + UART_THR, (unsigned char)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		serial_putc(s[i]);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}
