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

/*
 * The slot's transport as one without some of what the noirq series adds:
 * the device's config ops pointer is pointed at a copy of its ops with
 * reset_vqs cleared (LX_TEST_NO_RESET_VQS) and/or noirq_safe false
 * (LX_TEST_NOT_NOIRQ_SAFE); 0 puts the transport's own ops back. Linux's
 * code is unchanged: virtio_mmio keeps using its own functions, only the
 * core sees the copy. One slot at a time.
 */
#define LX_TEST_NO_RESET_VQS	BIT(0)
#define LX_TEST_NOT_NOIRQ_SAFE	BIT(1)

static struct virtio_config_ops lx_test_ops;
static const struct virtio_config_ops *lx_test_saved_ops;
static struct virtio_device *lx_test_ops_vdev;

LX_EXPORT("lx_test_config_ops") int lx_test_config_ops(int slot, u32 drop)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);

	if (!vdev)
		return -ENODEV;
	if (lx_test_ops_vdev && lx_test_ops_vdev != vdev)
		return -EBUSY;
	if (!lx_test_ops_vdev) {
		lx_test_saved_ops = vdev->config;
		lx_test_ops_vdev = vdev;
	}
	if (!drop) {
		vdev->config = lx_test_saved_ops;
		lx_test_ops_vdev = NULL;
		return 0;
	}
	lx_test_ops = *lx_test_saved_ops;
	if (drop & LX_TEST_NO_RESET_VQS)
		lx_test_ops.reset_vqs = NULL;
	if (drop & LX_TEST_NOT_NOIRQ_SAFE)
		lx_test_ops.noirq_safe = false;
	vdev->config = &lx_test_ops;
	return 0;
}
