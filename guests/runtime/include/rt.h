/*
 * rt.h - the Vigil guest runtime. Include this one header from a guest.
 *
 * A guest defines `int main(void)`; the runtime enters it with a flat GDT,
 * a 64 KiB stack, .bss zeroed, COM1 initialised and the IDT loaded. Returning
 * from main calls exit() with the return value.
 */
#ifndef RT_RT_H
#define RT_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "io.h"
#include "cpu.h"
#include "serial.h"
#include "printf.h"
#include "report.h"
#include "trap.h"
#include "mem.h"

/* EAX and EBX as the boot loader left them at _start. */
extern uint32_t boot_magic;
extern uint32_t boot_info;

/*
 * End the run: write `code` to the isa-debug-exit port 0xF4 (QEMU exits with
 * status (code << 1) | 1), then cli; hlt forever in case nothing listens.
 */
void exit(int code) __attribute__((noreturn));

/* Called by the entry code before main: serial_init, idt_init. */
void rt_init(void);

int main(void);

#endif
