// SPDX-License-Identifier: GPL-2.0-only
/*
 * A minimal driver core: buses keep lists of their devices and drivers;
 * adding a device or registering a driver matches them through the bus
 * (bus->match) and probes (bus->probe, else drv->probe), as
 * drivers/base/dd.c does; removal calls bus->remove (else drv->remove)
 * and releases the device's managed resources. Devices are reference
 * counted and released through dev->release.
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/irqflags.h>
#include "lx.h"

#define LX_MAX_BUSES	4
#define LX_PROBE_DEPTH	8

struct lx_bus {
	const struct bus_type *bus;
	struct list_head devices;
	struct list_head drivers;
};

static struct lx_bus buses[LX_MAX_BUSES];

static struct device *probing[LX_PROBE_DEPTH];
static int probe_depth;

const char *lx_irq_context_name;

struct device *lx_current_device(void)
{
	return probe_depth ? probing[probe_depth - 1] : NULL;
}

const char *lx_context_name(void)
{
	struct device *dev;

	if (in_hardirq() && lx_irq_context_name)
		return lx_irq_context_name;
	dev = lx_current_device();
	return dev ? dev_name(dev) : NULL;
}

void lx_enter_device(struct device *dev)
{
	BUG_ON(probe_depth == LX_PROBE_DEPTH);
	probing[probe_depth++] = dev;
}

void lx_leave_device(void)
{
	probe_depth--;
}

static struct lx_bus *lx_bus_of(const struct bus_type *bus)
{
	int i;

	for (i = 0; i < LX_MAX_BUSES; i++)
		if (bus && buses[i].bus == bus)
			return &buses[i];
	return NULL;
}

int bus_register(const struct bus_type *bus)
{
	int i;

	if (lx_bus_of(bus))
		return -EEXIST;
	for (i = 0; i < LX_MAX_BUSES; i++) {
		if (!buses[i].bus) {
			buses[i].bus = bus;
			INIT_LIST_HEAD(&buses[i].devices);
			INIT_LIST_HEAD(&buses[i].drivers);
			return 0;
		}
	}
	return -ENOMEM;
}

void bus_unregister(const struct bus_type *bus)
{
	struct lx_bus *b = lx_bus_of(bus);

	if (WARN_ON(!b || !list_empty(&b->devices) || !list_empty(&b->drivers)))
		return;
	b->bus = NULL;
}

/* Managed resources */

struct lx_devres {
	struct list_head node;
	dr_release_t release;
	unsigned long long data[];
};

void *devres_alloc(dr_release_t release, size_t size, gfp_t gfp)
{
	struct lx_devres *dr = kmalloc(sizeof(*dr) + size, gfp | __GFP_ZERO);

	if (!dr)
		return NULL;
	INIT_LIST_HEAD(&dr->node);
	dr->release = release;
	return dr->data;
}

void devres_add(struct device *dev, void *res)
{
	struct lx_devres *dr = container_of(res, struct lx_devres, data);

	list_add_tail(&dr->node, &dev->lx_devres);
}

void devres_free(void *res)
{
	if (res)
		kfree(container_of(res, struct lx_devres, data));
}

static void devres_release_all(struct device *dev)
{
	while (!list_empty(&dev->lx_devres)) {
		struct lx_devres *dr = list_last_entry(&dev->lx_devres,
						       struct lx_devres, node);

		list_del(&dr->node);
		if (dr->release)
			dr->release(dev, dr->data);
		kfree(dr);
	}
}

void *devm_kmalloc(struct device *dev, size_t size, gfp_t gfp)
{
	void *p = devres_alloc(NULL, size, gfp);

	if (p)
		devres_add(dev, p);
	return p;
}

/* Devices */

void device_initialize(struct device *dev)
{
	dev->lx_refcount = 1;
	INIT_LIST_HEAD(&dev->lx_bus_node);
	INIT_LIST_HEAD(&dev->lx_children);
	INIT_LIST_HEAD(&dev->lx_sibling);
	INIT_LIST_HEAD(&dev->lx_devres);
}

int dev_set_name(struct device *dev, const char *fmt, ...)
{
	va_list args;
	char *name;

	va_start(args, fmt);
	name = kvasprintf(GFP_KERNEL, fmt, args);
	va_end(args);
	if (!name)
		return -ENOMEM;
	kfree(dev->lx_name);
	dev->lx_name = name;
	return 0;
}

struct device *get_device(struct device *dev)
{
	if (dev)
		dev->lx_refcount++;
	return dev;
}

void put_device(struct device *dev)
{
	char *name;

	if (!dev)
		return;
	if (WARN_ON(dev->lx_refcount <= 0))
		return;
	if (--dev->lx_refcount)
		return;
	name = dev->lx_name;
	if (dev->release)
		dev->release(dev);
	else
		WARN(1, "Device '%s' does not have a release() function, it is broken and must be fixed.\n",
		     name);
	kfree(name);
}

static void device_uevent(struct device *dev, const char *action)
{
	struct kobj_uevent_env *env;

	if (!dev->bus || !dev->bus->uevent)
		return;
	env = kzalloc(sizeof(*env), GFP_KERNEL);
	if (!env)
		return;
	if (dev->bus->uevent(dev, env) == 0)
		lx_host_uevent(action, dev_name(dev), env->buf, env->buflen);
	kfree(env);
}

/* Returns 1 when bound, 0 when the driver declined (or the probe failed). */
static int really_probe(struct device *dev, struct device_driver *drv)
{
	int ret;

	dev->driver = drv;
	lx_enter_device(dev);
	if (dev->bus->probe)
		ret = dev->bus->probe(dev);
	else if (drv->probe)
		ret = drv->probe(dev);
	else
		ret = 0;
	lx_leave_device();
	if (ret == 0)
		return 1;

	devres_release_all(dev);
	dev->driver = NULL;
	dev_set_drvdata(dev, NULL);
	switch (ret) {
	case -EPROBE_DEFER:
		dev_dbg(dev, "Driver %s requests probe deferral\n", drv->name);
		break;
	case -ENODEV:
	case -ENXIO:
		dev_dbg(dev, "probe with driver %s rejects match %d\n",
			drv->name, ret);
		break;
	default:
		dev_err(dev, "probe with driver %s failed with error %d\n",
			drv->name, ret);
		break;
	}
	return 0;
}

static int driver_match_device(struct device_driver *drv, struct device *dev)
{
	return drv->bus->match ? drv->bus->match(dev, drv) : 1;
}

int device_attach(struct device *dev)
{
	struct lx_bus *b = lx_bus_of(dev->bus);
	struct device_driver *drv;

	if (dev->driver)
		return 1;
	if (!b)
		return 0;
	list_for_each_entry(drv, &b->drivers, lx_node) {
		int m = driver_match_device(drv, dev);

		if (m < 0)
			return m;
		if (m && really_probe(dev, drv))
			return 1;
	}
	return 0;
}

void device_release_driver(struct device *dev)
{
	struct device_driver *drv = dev->driver;

	if (!drv)
		return;
	lx_enter_device(dev);
	if (dev->bus && dev->bus->remove)
		dev->bus->remove(dev);
	else if (drv->remove)
		drv->remove(dev);
	lx_leave_device();
	devres_release_all(dev);
	dev->driver = NULL;
	dev_set_drvdata(dev, NULL);
}

int device_add(struct device *dev)
{
	struct lx_bus *b;

	dev = get_device(dev);
	if (dev->init_name) {
		int err = dev_set_name(dev, "%s", dev->init_name);

		dev->init_name = NULL;
		if (err) {
			put_device(dev);
			return err;
		}
	}
	if (!dev_name(dev)) {
		put_device(dev);
		return -EINVAL;
	}
	if (dev->parent) {
		get_device(dev->parent);
		list_add_tail(&dev->lx_sibling, &dev->parent->lx_children);
	}
	b = lx_bus_of(dev->bus);
	if (b)
		list_add_tail(&dev->lx_bus_node, &b->devices);
	dev->lx_added = true;
	device_uevent(dev, "add");
	if (b)
		device_attach(dev);
	put_device(dev);
	return 0;
}

void device_del(struct device *dev)
{
	if (WARN_ON(!dev->lx_added))
		return;
	device_release_driver(dev);
	device_uevent(dev, "remove");
	list_del_init(&dev->lx_bus_node);
	if (dev->parent) {
		list_del_init(&dev->lx_sibling);
		put_device(dev->parent);
	}
	dev->lx_added = false;
}

int device_register(struct device *dev)
{
	device_initialize(dev);
	return device_add(dev);
}

void device_unregister(struct device *dev)
{
	device_del(dev);
	put_device(dev);
}

int lx_device_walk_children(struct device *parent, void *data,
			    device_iter_t fn)
{
	struct device *child, *n;
	int err = 0;

	list_for_each_entry_safe(child, n, &parent->lx_children, lx_sibling) {
		err = fn(child, data);
		if (err)
			break;
	}
	return err;
}

/* Drivers */

int driver_register(struct device_driver *drv)
{
	struct lx_bus *b = lx_bus_of(drv->bus);
	struct device *dev, *n;

	if (!b) {
		pr_err("Driver '%s' was unable to register with bus_type '%s' because the bus was not initialized.\n",
		       drv->name, drv->bus ? drv->bus->name : "(null)");
		return -EINVAL;
	}
	list_add_tail(&drv->lx_node, &b->drivers);
	list_for_each_entry_safe(dev, n, &b->devices, lx_bus_node) {
		int m;

		if (dev->driver)
			continue;
		m = driver_match_device(drv, dev);
		if (m > 0)
			really_probe(dev, drv);
	}
	return 0;
}

void driver_unregister(struct device_driver *drv)
{
	struct lx_bus *b = lx_bus_of(drv->bus);
	struct device *dev, *n;

	if (WARN_ON(!b))
		return;
	list_for_each_entry_safe(dev, n, &b->devices, lx_bus_node)
		if (dev->driver == drv)
			device_release_driver(dev);
	list_del_init(&drv->lx_node);
}
