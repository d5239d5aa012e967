/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Spinlocks on one CPU: taking one disables preemption; taking one that
 * is already held would spin forever, so it is reported as a BUG (as
 * CONFIG_DEBUG_SPINLOCK does) instead of hanging.
 */
#ifndef _LINUX_SPINLOCK_H
#define _LINUX_SPINLOCK_H

#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/irqflags.h>
#include <linux/bug.h>

typedef struct spinlock {
	int locked;
} spinlock_t;

#define __SPIN_LOCK_UNLOCKED(lockname)	{ .locked = 0 }
#define DEFINE_SPINLOCK(x)	spinlock_t x = __SPIN_LOCK_UNLOCKED(x)

void __noreturn lx_spin_bug(spinlock_t *lock, const char *msg,
			    const char *file, int line);

#define spin_lock_init(lock)	((lock)->locked = 0)

#define spin_lock(lock)							\
	do {								\
		preempt_disable();					\
		if (unlikely((lock)->locked))				\
			lx_spin_bug(lock, "spinlock recursion",		\
				    __FILE__, __LINE__);		\
		(lock)->locked = 1;					\
	} while (0)

#define spin_unlock(lock)						\
	do {								\
		if (unlikely(!(lock)->locked))				\
			lx_spin_bug(lock, "spinlock already unlocked",	\
				    __FILE__, __LINE__);		\
		(lock)->locked = 0;					\
		preempt_enable();					\
	} while (0)

#define spin_lock_irq(lock)	\
	do { local_irq_disable(); spin_lock(lock); } while (0)
#define spin_unlock_irq(lock)	\
	do { spin_unlock(lock); local_irq_enable(); } while (0)
#define spin_lock_irqsave(lock, flags)	\
	do { local_irq_save(flags); spin_lock(lock); } while (0)
#define spin_unlock_irqrestore(lock, flags)	\
	do { spin_unlock(lock); local_irq_restore(flags); } while (0)
#define spin_lock_bh(lock)	spin_lock(lock)
#define spin_unlock_bh(lock)	spin_unlock(lock)

#endif /* _LINUX_SPINLOCK_H */
