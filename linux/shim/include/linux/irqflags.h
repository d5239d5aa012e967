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

static inline void local_irq_disable(void)
{
	lx_irqs_off = 1;
}

static inline void local_irq_enable(void)
{
	lx_irqs_off = 0;
}

static inline unsigned long arch_local_irq_save(void)
{
	unsigned long flags = lx_irqs_off;

	lx_irqs_off = 1;
	return flags;
}

static inline void local_irq_restore(unsigned long flags)
{
	lx_irqs_off = flags;
}

#define local_irq_save(flags)	((flags) = arch_local_irq_save())
#define irqs_disabled()		(lx_irqs_off != 0)
#define in_hardirq()		(lx_hardirq_count != 0)
#define in_interrupt()		(lx_hardirq_count != 0)
#define preemptible()		(lx_preempt_count == 0 && !irqs_disabled())
#define in_atomic()		(lx_preempt_count != 0 || in_hardirq())

static inline void preempt_disable(void)
{
	lx_preempt_count++;
}

static inline void preempt_enable(void)
{
	lx_preempt_count--;
}

#endif /* _LINUX_IRQFLAGS_H */
