// SPDX-License-Identifier: GPL-2.0-only
/*
 * System sleep callbacks for the host's PM core. The device PM lists and
 * phase walks of drivers/base/power/main.c are the host's (core/pm/dpm.ts,
 * shared with the TypeScript model): for each platform device it asks
 * which dev_pm_ops callbacks the bound driver has and runs them one at a
 * time, as dpm_run_callback() does. Callbacks are numbered in the order of
 * struct dev_pm_ops (prepare, complete, suspend, resume, ..., restore_noirq).
 *
 * Only the driver's dev_pm_ops is looked at: the platform bus here has no
 * dev_pm_ops of its own (Linux's platform_dev_pm_ops only forwards to the
 * driver's), and there are no PM domains, device types or classes.
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/platform_device.h>
#include <linux/pm.h>
#include <linux/virtio.h>
#include "lx.h"

enum lx_pm_callback {
	LX_PM_PREPARE,
	LX_PM_COMPLETE,
	LX_PM_SUSPEND,
	LX_PM_RESUME,
	LX_PM_FREEZE,
	LX_PM_THAW,
	LX_PM_POWEROFF,
	LX_PM_RESTORE,
	LX_PM_SUSPEND_LATE,
	LX_PM_RESUME_EARLY,
	LX_PM_FREEZE_LATE,
	LX_PM_THAW_EARLY,
	LX_PM_POWEROFF_LATE,
	LX_PM_RESTORE_EARLY,
	LX_PM_SUSPEND_NOIRQ,
	LX_PM_RESUME_NOIRQ,
	LX_PM_FREEZE_NOIRQ,
	LX_PM_THAW_NOIRQ,
	LX_PM_POWEROFF_NOIRQ,
	LX_PM_RESTORE_NOIRQ,
	LX_PM_NR_CALLBACKS
};

/* Every callback but complete(), which returns nothing. */
static int (*lx_pm_callback(const struct dev_pm_ops *ops,
			    unsigned int cb))(struct device *dev)
{
	switch (cb) {
	case LX_PM_PREPARE:
		return ops->prepare;
	case LX_PM_SUSPEND:
		return ops->suspend;
	case LX_PM_RESUME:
		return ops->resume;
	case LX_PM_FREEZE:
		return ops->freeze;
	case LX_PM_THAW:
		return ops->thaw;
	case LX_PM_POWEROFF:
		return ops->poweroff;
	case LX_PM_RESTORE:
		return ops->restore;
	case LX_PM_SUSPEND_LATE:
		return ops->suspend_late;
	case LX_PM_RESUME_EARLY:
		return ops->resume_early;
	case LX_PM_FREEZE_LATE:
		return ops->freeze_late;
	case LX_PM_THAW_EARLY:
		return ops->thaw_early;
	case LX_PM_POWEROFF_LATE:
		return ops->poweroff_late;
	case LX_PM_RESTORE_EARLY:
		return ops->restore_early;
	case LX_PM_SUSPEND_NOIRQ:
		return ops->suspend_noirq;
	case LX_PM_RESUME_NOIRQ:
		return ops->resume_noirq;
	case LX_PM_FREEZE_NOIRQ:
		return ops->freeze_noirq;
	case LX_PM_THAW_NOIRQ:
		return ops->thaw_noirq;
	case LX_PM_POWEROFF_NOIRQ:
		return ops->poweroff_noirq;
	case LX_PM_RESTORE_NOIRQ:
		return ops->restore_noirq;
	default:
		return NULL;
	}
}

static const struct dev_pm_ops *lx_slot_pm_ops(int slot, struct device **dev)
{
	struct platform_device *pdev = lx_slot_pdev(slot);

	if (!pdev || !pdev->dev.driver)
		return NULL;
	*dev = &pdev->dev;
	return pdev->dev.driver->pm;
}

/* Bit n set: the slot's driver has callback n. 0 when unbound. */
LX_EXPORT("lx_pm_ops") u32 lx_pm_ops(int slot)
{
	const struct dev_pm_ops *ops;
	struct device *dev;
	u32 mask = 0;
	unsigned int cb;

	ops = lx_slot_pm_ops(slot, &dev);
	if (!ops)
		return 0;
	for (cb = 0; cb < LX_PM_NR_CALLBACKS; cb++) {
		if (cb == LX_PM_COMPLETE ? !!ops->complete :
		    !!lx_pm_callback(ops, cb))
			mask |= BIT(cb);
	}
	return mask;
}

/*
 * Run callback cb of the slot's driver on its platform device; returns
 * what it returned (0 for complete()). -ENODEV without a driver, -ENOENT
 * for a callback the driver does not have (the host never asks for one).
 */
LX_EXPORT("lx_pm_call") int lx_pm_call(int slot, unsigned int cb)
{
	const struct dev_pm_ops *ops;
	int (*fn)(struct device *dev);
	struct device *dev;
	int ret;

	ops = lx_slot_pm_ops(slot, &dev);
	if (!ops)
		return -ENODEV;
	if (cb == LX_PM_COMPLETE) {
		if (!ops->complete)
			return -ENOENT;
		lx_enter_device(dev);
		ops->complete(dev);
		lx_leave_device();
		return 0;
	}
	fn = lx_pm_callback(ops, cb);
	if (!fn)
		return -ENOENT;
	lx_enter_device(dev);
	ret = fn(dev);
	lx_leave_device();
	return ret;
}

static void lx_shutdown_one(struct device *dev)
{
	if (!dev)
		return;
	lx_enter_device(dev);
	if (dev->bus && dev->bus->shutdown)
		dev->bus->shutdown(dev);
	else if (dev->driver && dev->driver->shutdown)
		dev->driver->shutdown(dev);
	lx_leave_device();
}

/*
 * device_shutdown() for one slot, as kernel_power_off() runs it: devices go
 * in the reverse of their registration, so the virtio device (a child of
 * the platform device) before the platform device itself.
 */
LX_EXPORT("lx_device_shutdown") void lx_device_shutdown(int slot)
{
	struct platform_device *pdev = lx_slot_pdev(slot);
	struct virtio_device *vdev = lx_slot_vdev(slot);

	if (vdev)
		lx_shutdown_one(&vdev->dev);
	if (pdev)
		lx_shutdown_one(&pdev->dev);
}
