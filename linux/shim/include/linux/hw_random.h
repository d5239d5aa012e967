/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The hw_random core, reduced to a registry: hwrng_register() records the
 * rng, and the host reads it through linux/glue/hwrng.c as the core's
 * /dev/hwrng reader would.
 */
#ifndef _LINUX_HW_RANDOM_H
#define _LINUX_HW_RANDOM_H

#include <linux/types.h>
#include <linux/list.h>
#include <linux/completion.h>

struct device;

struct hwrng {
	const char *name;
	int (*init)(struct hwrng *rng);
	void (*cleanup)(struct hwrng *rng);
	int (*data_present)(struct hwrng *rng, int wait);
	int (*data_read)(struct hwrng *rng, u32 *data);
	int (*read)(struct hwrng *rng, void *data, size_t max, bool wait);
	unsigned long priv;
	unsigned short quality;

	/* the registry */
	struct list_head list;
	struct device *lx_dev;
	bool lx_inited;
};

int hwrng_register(struct hwrng *rng);
int devm_hwrng_register(struct device *dev, struct hwrng *rng);
void hwrng_unregister(struct hwrng *rng);
void devm_hwrng_unregister(struct device *dev, struct hwrng *rng);

#endif /* _LINUX_HW_RANDOM_H */
