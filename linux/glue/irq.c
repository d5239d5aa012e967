// SPDX-License-Identifier: GPL-2.0-only
/*
 * Interrupts. request_irq() keeps the action here and asks the host to
 * register a handler for the line on the interrupt controller; the host's
 * handler calls lx_irq_entry(), which runs the line's actions as a hardirq
 * would (interrupts disabled, in_hardirq() true) and returns what they
 * returned. Linux irq n is controller line n - LX_IRQ_BASE.
 */
#include <linux/kernel.h>
#include <linux/interrupt.h>
#include <linux/slab.h>
#include <linux/rcupdate.h>
#include "lx.h"

#define LX_MAX_IRQ_LINES	1024

struct irqaction {
	irq_handler_t handler;
	void *dev_id;
	const char *name;
	unsigned long flags;
	struct irqaction *next;
};

struct irq_desc {
	struct irqaction *action;
	unsigned int depth;		/* disable_irq() nesting */
	unsigned int unhandled;		/* deliveries nobody handled */
	unsigned int count;
};

static struct irq_desc irq_desc[LX_MAX_IRQ_LINES];
unsigned int lx_nr_irq_lines;

static struct irq_desc *irq_to_desc(unsigned int irq)
{
	if (irq < LX_IRQ_BASE || irq - LX_IRQ_BASE >= lx_nr_irq_lines)
		return NULL;
	return &irq_desc[irq - LX_IRQ_BASE];
}

int request_irq(unsigned int irq, irq_handler_t handler, unsigned long flags,
		const char *name, void *dev)
{
	struct irq_desc *desc = irq_to_desc(irq);
	struct irqaction *action, **pp;

	if (!desc || !handler)
		return -EINVAL;
	if ((flags & IRQF_SHARED) && !dev)
		return -EINVAL;
	if (desc->action &&
	    (!(flags & IRQF_SHARED) || !(desc->action->flags & IRQF_SHARED))) {
		pr_err("genirq: Flags mismatch irq %u. %08lx (%s) vs. %08lx (%s)\n",
		       irq, flags, name, desc->action->flags,
		       desc->action->name);
		return -EBUSY;
	}
	action = kzalloc(sizeof(*action), GFP_KERNEL);
	if (!action)
		return -ENOMEM;
	action->handler = handler;
	action->dev_id = dev;
	action->name = name;
	action->flags = flags;
	for (pp = &desc->action; *pp; pp = &(*pp)->next)
		;
	*pp = action;
	if (desc->action == action)
		lx_host_irq_request(irq - LX_IRQ_BASE);
	return 0;
}

const void *free_irq(unsigned int irq, void *dev_id)
{
	struct irq_desc *desc = irq_to_desc(irq);
	struct irqaction *action, **pp;
	const char *devname;

	if (!desc)
		return NULL;
	for (pp = &desc->action; (action = *pp); pp = &action->next)
		if (action->dev_id == dev_id)
			break;
	if (!action) {
		WARN(1, "Trying to free already-free IRQ %u\n", irq);
		return NULL;
	}
	*pp = action->next;
	if (!desc->action)
		lx_host_irq_free(irq - LX_IRQ_BASE);
	devname = action->name;
	kfree(action);
	return devname;
}

LX_EXPORT("lx_irq_entry") int lx_irq_entry(unsigned int line)
{
	unsigned int irq = line + LX_IRQ_BASE;
	struct irq_desc *desc = irq_to_desc(irq);
	const char *saved_name = lx_irq_context_name;
	unsigned long flags;
	struct irqaction *action;
	irqreturn_t ret = IRQ_NONE;

	if (!desc)
		return IRQ_NONE;
	local_irq_save(flags);
	lx_hardirq_count++;
	desc->count++;
	for (action = desc->action; action; action = action->next) {
		lx_irq_context_name = action->name;
		ret |= action->handler(irq, action->dev_id);
	}
	if (ret == IRQ_NONE)
		desc->unhandled++;
	lx_irq_context_name = saved_name;
	lx_hardirq_count--;
	local_irq_restore(flags);
	return ret;
}

void disable_irq_nosync(unsigned int irq)
{
	struct irq_desc *desc = irq_to_desc(irq);

	if (desc && desc->depth++ == 0)
		lx_host_irq_mask(irq - LX_IRQ_BASE);
}

/* Handlers never run concurrently with the caller: nothing to wait for. */
void disable_irq(unsigned int irq)
{
	disable_irq_nosync(irq);
}

void enable_irq(unsigned int irq)
{
	struct irq_desc *desc = irq_to_desc(irq);

	if (!desc)
		return;
	if (WARN(!desc->depth, "Unbalanced enable for IRQ %u\n", irq))
		return;
	if (--desc->depth == 0)
		lx_host_irq_unmask(irq - LX_IRQ_BASE);
}

void synchronize_irq(unsigned int irq)
{
}

/* The controller has no wake-up support (as a GIC without irq_set_wake). */
int enable_irq_wake(unsigned int irq)
{
	return -ENXIO;
}

int disable_irq_wake(unsigned int irq)
{
	return -ENXIO;
}

void synchronize_rcu(void)
{
	might_sleep();
}
