// SPDX-License-Identifier: GPL-2.0-only
/*
 * Entry points for the host: boot (kernel services and core initcalls),
 * the board's platform devices, the transport's initcall, the virtio
 * drivers a run names (registered in its order), per-slot queries, unbind
 * and rebind, rng reads and sysfs attribute reads.
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/platform_device.h>
#include <linux/interrupt.h>
#include <linux/hw_random.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/slab.h>
#include "lx.h"

#define LX_MAX_SLOTS	1024

static struct platform_device *slot_pdev[LX_MAX_SLOTS];

LX_EXPORT("lx_boot") int lx_boot(unsigned int nr_irq_lines)
{
	int err;

	lx_mm_init();
	lx_nr_irq_lines = nr_irq_lines;
	err = bus_register(&platform_bus_type);
	if (err)
		return err;
	return lx_core_initcall_virtio();
}

LX_EXPORT("lx_platform_add")
int lx_platform_add(int slot, u32 base, u32 size, u32 line)
{
	struct resource res[2] = {
		{
			.start = base,
			.end = (resource_size_t)base + size - 1,
			.flags = IORESOURCE_MEM,
		}, {
			.start = LX_IRQ_BASE + line,
			.end = LX_IRQ_BASE + line,
			.flags = IORESOURCE_IRQ,
		},
	};
	struct platform_device *pdev;
	int err;

	if (slot < 0 || slot >= LX_MAX_SLOTS || slot_pdev[slot])
		return -EINVAL;
	pdev = platform_device_alloc("virtio-mmio", slot);
	if (!pdev)
		return -ENOMEM;
	err = platform_device_add_resources(pdev, res, ARRAY_SIZE(res));
	if (!err)
		err = platform_device_add(pdev);
	if (err) {
		platform_device_put(pdev);
		return err;
	}
	slot_pdev[slot] = pdev;
	return 0;
}

/* The transport: it probes the platform devices and registers virtio devices. */
LX_EXPORT("lx_initcalls") int lx_initcalls(void)
{
	return lx_device_initcall_virtio_mmio();
}

/*
 * The virtio drivers built in, by driver name. Linux registers every
 * built-in driver in link order; here the host registers the ones a run
 * names, in its order, so that it chooses which of two drivers for one
 * device ID binds (the first registered that matches), as the model's
 * driver list does.
 */
static struct {
	const char *name;
	int (*init)(void);
	bool registered;
} lx_drivers[] = {
	{ "virtio_rng", lx_device_initcall_virtio_rng },
	{ "virtio_rtc", lx_virtio_rtc_init },
	{ "virtio_rtc_noirq", lx_virtio_rtc_noirq_init },
	{ "clock_consumer", lx_device_initcall_clock_consumer },
	{ "test_driver", lx_device_initcall_lx_pm_test },
};

/* 0, -ENOENT (no such driver), -EEXIST (registered already) or the init's error. */
LX_EXPORT("lx_driver_register") int lx_driver_register(const char *name)
{
	int i, err;

	static bool user_registered[LX_MAX_USER_DRIVERS];

	for (i = 0; i < ARRAY_SIZE(lx_drivers); i++) {
		if (strcmp(lx_drivers[i].name, name))
			continue;
		if (lx_drivers[i].registered)
			return -EEXIST;
		err = lx_drivers[i].init();
		if (!err)
			lx_drivers[i].registered = true;
		return err;
	}
	for (i = 0; i < LX_MAX_USER_DRIVERS && lx_user_drivers[i].name; i++) {
		if (strcmp(lx_user_drivers[i].name, name))
			continue;
		if (user_registered[i])
			return -EEXIST;
		err = lx_user_drivers[i].init();
		if (!err)
			user_registered[i] = true;
		return err;
	}
	return -ENOENT;
}

struct platform_device *lx_slot_pdev(int slot)
{
	if (slot < 0 || slot >= LX_MAX_SLOTS)
		return NULL;
	return slot_pdev[slot];
}

static int find_virtio_child(struct device *dev, void *data)
{
	if (!is_virtio_device(dev))
		return 0;
	*(struct device **)data = dev;
	return 1;
}

struct virtio_device *lx_slot_vdev(int slot)
{
	struct platform_device *pdev = lx_slot_pdev(slot);
	struct device *child = NULL;

	if (!pdev)
		return NULL;
	device_for_each_child(&pdev->dev, &child, find_virtio_child);
	return child ? dev_to_virtio(child) : NULL;
}

/* Read by the host as 32-bit words; keep in step with linux/host. */
struct lx_slot_info {
	u32 present;
	u32 transport_bound;	/* the platform device has its driver */
	u32 has_vdev;
	s32 index;		/* virtio device index: virtio<index> */
	u32 device_id;
	u32 vendor_id;
	u32 status;		/* config->get_status(): a trapped read */
	u32 features_lo;	/* vdev->features, as negotiated */
	u32 features_hi;
	const char *dev_name;
	const char *driver;	/* bound virtio driver, or NULL */
	struct hwrng *rng;
	const char *rng_name;
	u32 nvqs;
	u32 vq0_desc_lo, vq0_desc_hi;
	u32 vq0_avail_lo, vq0_avail_hi;
	u32 vq0_used_lo, vq0_used_hi;
	u32 vq0_size;
	const char *transport_name;	/* the platform device's name */
	const char *transport_driver;
	s32 noirq_state;	/* enum virtio_noirq_state */
	u32 failed;		/* saved by virtio_device_freeze() */
	u32 config_core_enabled;
	u32 config_driver_disabled;
};

/*
 * hwrng_register() records the device it ran for: the virtio device (probe)
 * or its transport's platform device (a PM callback, virtio-rng's restore).
 */
static struct hwrng *lx_slot_hwrng(struct platform_device *pdev,
				   struct virtio_device *vdev)
{
	struct hwrng *rng = lx_hwrng_of_device(&vdev->dev);

	return rng ? rng : lx_hwrng_of_device(&pdev->dev);
}

static struct lx_slot_info slot_info;

LX_EXPORT("lx_slot_info") struct lx_slot_info *lx_get_slot_info(int slot)
{
	struct platform_device *pdev = lx_slot_pdev(slot);
	struct lx_slot_info *si = &slot_info;
	struct virtio_device *vdev;
	struct virtqueue *vq;

	memset(si, 0, sizeof(*si));
	si->index = -1;
	if (!pdev)
		return si;
	si->present = 1;
	si->transport_name = dev_name(&pdev->dev);
	si->transport_bound = pdev->dev.driver != NULL;
	if (pdev->dev.driver)
		si->transport_driver = pdev->dev.driver->name;
	vdev = lx_slot_vdev(slot);
	if (!vdev)
		return si;
	si->has_vdev = 1;
	si->index = vdev->index;
	si->device_id = vdev->id.device;
	si->vendor_id = vdev->id.vendor;
	si->status = vdev->config->get_status(vdev);
	si->features_lo = lower_32_bits(vdev->features);
	si->features_hi = upper_32_bits(vdev->features);
	si->dev_name = dev_name(&vdev->dev);
	si->driver = vdev->dev.driver ? vdev->dev.driver->name : NULL;
	si->noirq_state = vdev->noirq_state;
	si->failed = vdev->failed;
	si->config_core_enabled = vdev->config_core_enabled;
	si->config_driver_disabled = vdev->config_driver_disabled;
	si->rng = lx_slot_hwrng(pdev, vdev);
	si->rng_name = si->rng ? si->rng->name : NULL;
	list_for_each_entry(vq, &vdev->vqs, list)
		si->nvqs++;
	vq = list_first_entry_or_null(&vdev->vqs, struct virtqueue, list);
	if (vq) {
		dma_addr_t a;

		a = virtqueue_get_desc_addr(vq);
		si->vq0_desc_lo = lower_32_bits(a);
		si->vq0_desc_hi = upper_32_bits(a);
		a = virtqueue_get_avail_addr(vq);
		si->vq0_avail_lo = lower_32_bits(a);
		si->vq0_avail_hi = upper_32_bits(a);
		a = virtqueue_get_used_addr(vq);
		si->vq0_used_lo = lower_32_bits(a);
		si->vq0_used_hi = upper_32_bits(a);
		si->vq0_size = virtqueue_get_vring_size(vq);
	}
	return si;
}

/* The slot's virtio device name ("virtio0"), or NULL; no register access. */
LX_EXPORT("lx_slot_vdev_name") const char *lx_slot_vdev_name(int slot)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);

	return vdev ? dev_name(&vdev->dev) : NULL;
}

/* Unbind the transport driver: the virtio device goes away with it. */
LX_EXPORT("lx_unbind") int lx_unbind(int slot)
{
	struct platform_device *pdev = lx_slot_pdev(slot);

	if (!pdev)
		return -ENODEV;
	device_release_driver(&pdev->dev);
	return 0;
}

/* 1: a driver bound, 0: none would, < 0: an error. */
LX_EXPORT("lx_bind") int lx_bind(int slot)
{
	struct platform_device *pdev = lx_slot_pdev(slot);

	if (!pdev)
		return -ENODEV;
	return device_attach(&pdev->dev);
}

/* The same one level up: the virtio driver of the slot's virtio device. */
LX_EXPORT("lx_virtio_unbind") int lx_virtio_unbind(int slot)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);

	if (!vdev)
		return -ENODEV;
	device_release_driver(&vdev->dev);
	return 0;
}

LX_EXPORT("lx_virtio_bind") int lx_virtio_bind(int slot)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);

	if (!vdev)
		return -ENODEV;
	return device_attach(&vdev->dev);
}

LX_EXPORT("lx_slot_rng") struct hwrng *lx_slot_rng(int slot)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);

	return vdev ? lx_slot_hwrng(lx_slot_pdev(slot), vdev) : NULL;
}

/*
 * Show one attribute of the slot's virtio device from its bus's
 * dev_groups, as reading /sys/bus/virtio/devices/virtioN/<name> would.
 * buf must be a page (lx_alloc_page).
 */
LX_EXPORT("lx_sysfs_show")
int lx_sysfs_show(int slot, const char *name, char *buf)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);
	const struct attribute_group **g;
	struct attribute **a;

	if (!vdev)
		return -ENODEV;
	if (!vdev->dev.bus->dev_groups)
		return -ENOENT;
	for (g = vdev->dev.bus->dev_groups; *g; g++) {
		for (a = (*g)->attrs; *a; a++) {
			struct device_attribute *da;

			if (strcmp((*a)->name, name))
				continue;
			da = container_of(*a, struct device_attribute, attr);
			if (!da->show)
				return -EIO;
			return da->show(&vdev->dev, da, buf);
		}
	}
	return -ENOENT;
}

LX_EXPORT("lx_alloc") void *lx_alloc(size_t size)
{
	return kmalloc(size, GFP_KERNEL);
}

LX_EXPORT("lx_free") void lx_free(void *p)
{
	kfree(p);
}

LX_EXPORT("lx_alloc_page") void *lx_alloc_page(void)
{
	return (void *)__get_free_page(GFP_KERNEL | __GFP_ZERO);
}

LX_EXPORT("lx_free_page") void lx_free_page(void *p)
{
	free_page((unsigned long)p);
}
