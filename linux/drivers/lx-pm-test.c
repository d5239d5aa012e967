// SPDX-License-Identifier: GPL-2.0-only
/*
 * A small virtio test driver for the PM cases the shipped drivers do not
 * reach, as the model's testDriver (test/helpers/test-drivers.ts): it binds
 * the device ID it is set up for, sets up nvqs queues ("q0", "q1", ...)
 * whose callbacks count, counts config changes, and has exactly the
 * freeze/restore/freeze_noirq/restore_noirq callbacks it is set up with,
 * so a test can pair them wrongly. freeze() and restore() keep the queues
 * (they come back through reset_vqs); restore_noirq() sets DRIVER_OK with
 * virtio_device_ready_noirq().
 *
 * The host sets it up before registering it (lx_pm_test_setup).
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include "../glue/lx.h"

#define LX_PM_TEST_MAX_VQS	4

/* lx_pm_test_setup() callbacks */
#define LX_PM_TEST_FREEZE		BIT(0)
#define LX_PM_TEST_RESTORE		BIT(1)
#define LX_PM_TEST_FREEZE_NOIRQ		BIT(2)
#define LX_PM_TEST_RESTORE_NOIRQ	BIT(3)

struct lx_pm_test {
	struct virtqueue *vqs[LX_PM_TEST_MAX_VQS];
	u32 callbacks[LX_PM_TEST_MAX_VQS];
	u32 config_changes;
};

static unsigned int test_nvqs = 1;
static char test_name[32] = "test-driver-0";
static u32 test_probes, test_removes;

static struct virtio_device_id id_table[] = {
	{ 0, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, id_table);

static void lx_pm_test_done(struct virtqueue *vq)
{
	struct lx_pm_test *t = vq->vdev->priv;

	t->callbacks[vq->index]++;
}

static int lx_pm_test_probe(struct virtio_device *vdev)
{
	static const char * const names[LX_PM_TEST_MAX_VQS] = {
		"q0", "q1", "q2", "q3"
	};
	struct virtqueue_info vqs_info[LX_PM_TEST_MAX_VQS] = { };
	struct lx_pm_test *t;
	unsigned int i;
	int err;

	test_probes++;
	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	vdev->priv = t;
	if (!test_nvqs)
		return 0;
	for (i = 0; i < test_nvqs; i++) {
		vqs_info[i].name = names[i];
		vqs_info[i].callback = lx_pm_test_done;
	}
	err = virtio_find_vqs(vdev, test_nvqs, t->vqs, vqs_info, NULL);
	if (err) {
		vdev->priv = NULL;
		kfree(t);
	}
	return err;
}

static void lx_pm_test_remove(struct virtio_device *vdev)
{
	test_removes++;
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	kfree(vdev->priv);
	vdev->priv = NULL;
}

static void lx_pm_test_config_changed(struct virtio_device *vdev)
{
	struct lx_pm_test *t = vdev->priv;

	t->config_changes++;
}

#ifdef CONFIG_PM_SLEEP
static int lx_pm_test_freeze(struct virtio_device *vdev)
{
	return 0;
}

static int lx_pm_test_restore(struct virtio_device *vdev)
{
	return 0;
}

static int lx_pm_test_freeze_noirq(struct virtio_device *vdev)
{
	return 0;
}

static int lx_pm_test_restore_noirq(struct virtio_device *vdev)
{
	virtio_device_ready_noirq(vdev);
	return 0;
}
#endif

static struct virtio_driver lx_pm_test_driver = {
	.driver.name = test_name,
	.id_table = id_table,
	.probe = lx_pm_test_probe,
	.remove = lx_pm_test_remove,
	.config_changed = lx_pm_test_config_changed,
};
module_virtio_driver(lx_pm_test_driver);

/*
 * Before registration: bind device_id with nvqs queues and the PM callbacks
 * in cbs (LX_PM_TEST_*). The driver is named "test-driver-<device_id>".
 */
LX_EXPORT("lx_pm_test_setup")
int lx_pm_test_setup(u32 device_id, unsigned int nvqs, u32 cbs)
{
	if (!device_id || nvqs > LX_PM_TEST_MAX_VQS)
		return -EINVAL;
	id_table[0].device = device_id;
	test_nvqs = nvqs;
	snprintf(test_name, sizeof(test_name), "test-driver-%u", device_id);
#ifdef CONFIG_PM_SLEEP
	lx_pm_test_driver.freeze = cbs & LX_PM_TEST_FREEZE ?
				   lx_pm_test_freeze : NULL;
	lx_pm_test_driver.restore = cbs & LX_PM_TEST_RESTORE ?
				    lx_pm_test_restore : NULL;
	lx_pm_test_driver.freeze_noirq = cbs & LX_PM_TEST_FREEZE_NOIRQ ?
					 lx_pm_test_freeze_noirq : NULL;
	lx_pm_test_driver.restore_noirq = cbs & LX_PM_TEST_RESTORE_NOIRQ ?
					  lx_pm_test_restore_noirq : NULL;
#endif
	return 0;
}

/* Read by the host as 32-bit words; keep in step with linux/host. */
struct lx_pm_test_info {
	u32 bound;
	u32 probes, removes;
	u32 config_changes;
	u32 callbacks[LX_PM_TEST_MAX_VQS];
};

static struct lx_pm_test_info test_info;

LX_EXPORT("lx_pm_test_info") struct lx_pm_test_info *lx_pm_test_info(int slot)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);
	struct lx_pm_test_info *ti = &test_info;
	struct lx_pm_test *t;

	memset(ti, 0, sizeof(*ti));
	ti->probes = test_probes;
	ti->removes = test_removes;
	if (!vdev || vdev->dev.driver != &lx_pm_test_driver.driver ||
	    !vdev->priv)
		return ti;
	t = vdev->priv;
	ti->bound = 1;
	ti->config_changes = t->config_changes;
	memcpy(ti->callbacks, t->callbacks, sizeof(ti->callbacks));
	return ti;
}
