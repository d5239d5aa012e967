// SPDX-License-Identifier: GPL-2.0-only
/*
 * A driver whose restore() needs a clock: the dependent device of the noirq
 * PM series' motivation (core/drivers/clock-consumer.ts in the model). It
 * binds the device ID it is set up for and, on every restore, reads the
 * clock it is set up for; if the clock is not back yet the restore fails,
 * as a driver that must timestamp its resume would.
 *
 * The host sets it up before registering it (lx_clock_consumer_setup): the
 * device ID to bind and the clock to read, e.g. "rtc1.0". The driver is
 * named after the clock, "clock_consumer(rtc1.0)", as in the model.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include "lx-clock.h"
#include "../glue/lx.h"

#define CLOCK_CONSUMER_MAX_READS	64

struct clock_consumer_read {
	int err;
	u64 ns;
};

struct clock_consumer {
	unsigned int nr_reads;
	struct clock_consumer_read reads[CLOCK_CONSUMER_MAX_READS];
};

static char consumer_clock[24] = "rtc0.0";
static char consumer_name[48] = "clock_consumer(rtc0.0)";

static struct virtio_device_id id_table[] = {
	{ 0, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, id_table);

static int clock_consumer_probe(struct virtio_device *vdev)
{
	struct clock_consumer *cc = kzalloc(sizeof(*cc), GFP_KERNEL);

	if (!cc)
		return -ENOMEM;
	vdev->priv = cc;
	return 0;
}

static void clock_consumer_remove(struct virtio_device *vdev)
{
	vdev->config->reset(vdev);
	kfree(vdev->priv);
	vdev->priv = NULL;
}

#ifdef CONFIG_PM_SLEEP
static int clock_consumer_freeze(struct virtio_device *vdev)
{
	return 0;
}

static int clock_consumer_restore(struct virtio_device *vdev)
{
	struct clock_consumer *cc = vdev->priv;
	struct clock_consumer_read r = { };

	r.err = lx_clock_read(consumer_clock, &r.ns);
	if (cc->nr_reads < CLOCK_CONSUMER_MAX_READS)
		cc->reads[cc->nr_reads++] = r;
	return r.err;
}
#endif

static struct virtio_driver clock_consumer_driver = {
	.driver.name = consumer_name,
	.id_table = id_table,
	.probe = clock_consumer_probe,
	.remove = clock_consumer_remove,
#ifdef CONFIG_PM_SLEEP
	.freeze = clock_consumer_freeze,
	.restore = clock_consumer_restore,
#endif
};
module_virtio_driver(clock_consumer_driver);

/* Before registration: bind device_id, read clock (at most 23 chars). */
LX_EXPORT("lx_clock_consumer_setup")
int lx_clock_consumer_setup(u32 device_id, const char *clock)
{
	if (!device_id || strlen(clock) >= sizeof(consumer_clock))
		return -EINVAL;
	id_table[0].device = device_id;
	strscpy(consumer_clock, clock, sizeof(consumer_clock));
	snprintf(consumer_name, sizeof(consumer_name), "clock_consumer(%s)",
		 clock);
	return 0;
}

/*
 * The reads the slot's restore() made, oldest first, as (err, ns) pairs
 * into buf (at most max); returns how many were made, or -ENODEV.
 */
LX_EXPORT("lx_clock_consumer_reads")
int lx_clock_consumer_reads(int slot, struct clock_consumer_read *buf,
			    unsigned int max)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);
	struct clock_consumer *cc;

	if (!vdev || vdev->dev.driver != &clock_consumer_driver.driver ||
	    !vdev->priv)
		return -ENODEV;
	cc = vdev->priv;
	memcpy(buf, cc->reads, min(max, cc->nr_reads) * sizeof(*buf));
	return cc->nr_reads;
}
