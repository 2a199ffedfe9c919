/* init.c - runtime initialisation, called by the entry code before main. */
#include "rt.h"

void rt_init(void)
{
	serial_init();
	idt_init();
}
