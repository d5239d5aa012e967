/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Interrupt lines of the board's interrupt controller. Linux interrupt
 * number = LX_IRQ_BASE + line (0 is never a valid Linux irq), see
 * linux/glue/irq.c.
 */
#ifndef _LINUX_INTERRUPT_H
#define _LINUX_INTERRUPT_H

#include <linux/types.h>
#include <linux/irqreturn.h>
#include <linux/irqflags.h>

#define LX_IRQ_BASE	32

#define IRQF_SHARED		0x00000080
#define IRQF_ONESHOT		0x00002000
#define IRQF_NO_SUSPEND		0x00004000
#define IRQF_NO_THREAD		0x00010000

typedef irqreturn_t (*irq_handler_t)(int irq, void *dev_id);

int request_irq(unsigned int irq, irq_handler_t handler, unsigned long flags,
		const char *name, void *dev);
const void *free_irq(unsigned int irq, void *dev_id);
void disable_irq(unsigned int irq);
void disable_irq_nosync(unsigned int irq);
void enable_irq(unsigned int irq);
void synchronize_irq(unsigned int irq);
int enable_irq_wake(unsigned int irq);
int disable_irq_wake(unsigned int irq);

#endif /* _LINUX_INTERRUPT_H */
