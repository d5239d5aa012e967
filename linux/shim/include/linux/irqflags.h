/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One CPU. "Interrupts disabled" is a flag: the host delivers interrupts
 * only while the kernel waits (wait_for_completion) or when asked to, and
 * a wait with interrupts disabled is reported as sleeping in atomic
 * context. A handler runs with interrupts disabled, as a hardirq does.
 */
#ifndef _LINUX_IRQFLAGS_H
#define _LINUX_IRQFLAGS_H

#include <linux/types.h>

extern unsigned long lx_irqs_off;
extern int lx_preempt_count;
extern int lx_hardirq_count;

#define local_irq_disable()	do { lx_irqs_off = 1; } while (0)
#define local_irq_enable()	do { lx_irqs_off = 0; } while (0)
#define local_irq_save(flags)	\
	do { (flags) = lx_irqs_off; lx_irqs_off = 1; } while (0)
#define local_irq_restore(flags)	do { lx_irqs_off = (flags); } while (0)
#define irqs_disabled()		(lx_irqs_off != 0)
#define in_hardirq()		(lx_hardirq_count != 0)
#define in_interrupt()		(lx_hardirq_count != 0)
#define in_atomic()		(lx_preempt_count != 0 || in_hardirq())

#define preempt_disable()	do { lx_preempt_count++; } while (0)
#define preempt_enable()	do { lx_preempt_count--; } while (0)

#endif /* _LINUX_IRQFLAGS_H */
