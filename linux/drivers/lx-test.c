// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test hooks: code paths the tests need that the shipped drivers do not
 * reach on a healthy machine. Nothing calls them unless a test does.
 */
#include <linux/kernel.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include "../glue/lx.h"

static DEFINE_SPINLOCK(lx_test_lock);

/* A plain BUG() in this file. */
LX_EXPORT("lx_test_bug") void lx_test_bug(void)
{
	BUG();
}

/* WARN_ON(cond) and WARN_ON_ONCE(cond); returns how many conditions held. */
LX_EXPORT("lx_test_warn") int lx_test_warn(int cond)
{
	int n = 0;

	if (WARN_ON(cond))
		n++;
	if (WARN_ON_ONCE(cond))
		n++;
	return n;
}

/*
 * virtio.c's own BUG(): checking a feature the bound driver never offered
 * (virtio-rng offers none).
 */
LX_EXPORT("lx_test_check_feature") int lx_test_check_feature(int slot,
							       int fbit)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);

	if (!vdev || !vdev->dev.driver)
		return -ENODEV;
	virtio_check_driver_offered_feature(vdev, fbit);
	return 0;
}

/* might_sleep() with a spinlock held and interrupts disabled. */
LX_EXPORT("lx_test_sleep_in_atomic") void lx_test_sleep_in_atomic(void)
{
	unsigned long flags;

	spin_lock_irqsave(&lx_test_lock, flags);
	might_sleep();
	spin_unlock_irqrestore(&lx_test_lock, flags);
}

/* Taking a spinlock twice: a deadlock on one CPU, reported as a BUG. */
LX_EXPORT("lx_test_spin_recursion") void lx_test_spin_recursion(void)
{
	spin_lock(&lx_test_lock);
	spin_lock(&lx_test_lock);
}
