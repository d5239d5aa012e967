// SPDX-License-Identifier: GPL-2.0-only
/*
 * An example of a virtio driver of your own, built into the WebAssembly
 * kernel with:
 *
 *   npm run build:linux -- --driver linux/drivers/examples/example-rng.c
 *
 * and registered by its file name (example_rng). It binds a virtio-rng
 * device, asks it once for 16 bytes of entropy at probe, waits for the
 * answer and logs how much came back.
 */
#include <linux/completion.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

struct example_rng {
	struct virtqueue *vq;
	struct completion done;
	unsigned int len;
	u8 buf[16];
};

static void example_rng_done(struct virtqueue *vq)
{
	struct example_rng *e = vq->vdev->priv;
	unsigned int len;

	if (virtqueue_get_buf(vq, &len)) {
		e->len = len;
		complete(&e->done);
	}
}

static int example_rng_probe(struct virtio_device *vdev)
{
	struct example_rng *e;
	struct scatterlist sg;
	int err;

	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	init_completion(&e->done);
	vdev->priv = e;

	e->vq = virtio_find_single_vq(vdev, example_rng_done, "input");
	if (IS_ERR(e->vq)) {
		err = PTR_ERR(e->vq);
		goto free;
	}
	virtio_device_ready(vdev);

	sg_init_one(&sg, e->buf, sizeof(e->buf));
	err = virtqueue_add_inbuf(e->vq, &sg, 1, e->buf, GFP_KERNEL);
	if (err)
		goto reset;
	virtqueue_kick(e->vq);
	wait_for_completion(&e->done);
	dev_info(&vdev->dev, "example_rng: %u bytes of entropy\n", e->len);
	return 0;

reset:
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
free:
	kfree(e);
	vdev->priv = NULL;
	return err;
}

static void example_rng_remove(struct virtio_device *vdev)
{
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	kfree(vdev->priv);
	vdev->priv = NULL;
}

static const struct virtio_device_id id_table[] = {
	{ VIRTIO_ID_RNG, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

static struct virtio_driver example_rng_driver = {
	.driver.name = "example_rng",
	.id_table = id_table,
	.probe = example_rng_probe,
	.remove = example_rng_remove,
};
module_virtio_driver(example_rng_driver);

MODULE_DESCRIPTION("An example virtio driver built into the WebAssembly kernel");
MODULE_LICENSE("GPL");
