// SPDX-License-Identifier: GPL-2.0-only
/*
 * The hw_random core reduced to a registry. hwrng_register() records the
 * rng with the device whose probe registered it; the host reads an rng
 * through lx_hwrng_read(), which does what the core's rng_get_data() does
 * for a /dev/hwrng read (init on first use, ->read, else ->data_read).
 * There is no entropy pool to feed and no "current rng" choice.
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/hw_random.h>
#include <linux/string.h>
#include "lx.h"

static LIST_HEAD(rng_list);

int hwrng_register(struct hwrng *rng)
{
	struct hwrng *tmp;

	if (!rng->name || (!rng->data_read && !rng->read))
		return -EINVAL;
	list_for_each_entry(tmp, &rng_list, list)
		if (strcmp(tmp->name, rng->name) == 0)
			return -EEXIST;
	rng->lx_dev = lx_current_device();
	rng->lx_inited = false;
	list_add_tail(&rng->list, &rng_list);
	return 0;
}

void hwrng_unregister(struct hwrng *rng)
{
	list_del(&rng->list);
	if (rng->lx_inited && rng->cleanup)
		rng->cleanup(rng);
	rng->lx_inited = false;
}

static void devm_hwrng_release(struct device *dev, void *res)
{
	hwrng_unregister(*(struct hwrng **)res);
}

int devm_hwrng_register(struct device *dev, struct hwrng *rng)
{
	struct hwrng **ptr;
	int error;

	ptr = devres_alloc(devm_hwrng_release, sizeof(*ptr), GFP_KERNEL);
	if (!ptr)
		return -ENOMEM;
	error = hwrng_register(rng);
	if (error) {
		devres_free(ptr);
		return error;
	}
	*ptr = rng;
	devres_add(dev, ptr);
	return 0;
}

void devm_hwrng_unregister(struct device *dev, struct hwrng *rng)
{
	hwrng_unregister(rng);
}

struct hwrng *lx_hwrng_of_device(struct device *dev)
{
	struct hwrng *rng;

	list_for_each_entry(rng, &rng_list, list)
		if (rng->lx_dev == dev)
			return rng;
	return NULL;
}

LX_EXPORT("lx_hwrng_read")
int lx_hwrng_read(struct hwrng *rng, void *buf, size_t size, int wait)
{
	int err, present;

	if (!rng->lx_inited) {
		if (rng->init) {
			err = rng->init(rng);
			if (err)
				return err;
		}
		rng->lx_inited = true;
	}
	if (rng->read) {
		err = rng->read(rng, buf, size, wait);
		if (WARN_ON_ONCE(err > 0 && err > size))
			err = size;
		return err;
	}
	present = rng->data_present ? rng->data_present(rng, wait) : 1;
	if (present)
		return rng->data_read(rng, (u32 *)buf);
	return 0;
}
