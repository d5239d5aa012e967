// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-rtc clock driver, reduced to the requestq: CFG, CLOCK_CAP and
 * READ over one queue, each clock registered as a clock other drivers can
 * read (lx-clock.h; the full driver registers RTC and PTP class devices).
 * It mirrors the TypeScript model's driver (core/drivers/rtc.ts) request
 * for request, so that the register traces of the two can be compared.
 *
 * Two drivers share the code:
 *  - virtio_rtc: freeze() resets the device and deletes the queue,
 *    restore() sets it up again, so the clock is back only when its own
 *    restore() runs in the normal resume phase.
 *  - virtio_rtc_noirq: the "virtio-clock" case of the noirq PM series.
 *    freeze() only quiesces and the queue survives; the core resets and
 *    renegotiates in virtio_device_restore_noirq(), the transport
 *    reprograms the queue (config->reset_vqs), and restore_noirq() brings
 *    the clock back before any normal restore() runs. Device interrupts
 *    are masked then, so the request is kicked and the used ring polled.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <asm/processor.h>
#include <uapi/linux/virtio_rtc.h>
#include "lx-clock.h"
#include "../glue/lx.h"

#define VIORTC_MSG_TIMEOUT_MS	2000
/* Poll: spin this often (the device answers in microseconds), then nap. */
#define VIORTC_POLL_SPINS	1000
#define VIORTC_POLL_DELAY_US	100

/* The largest request and response of the messages this driver sends. */
#define VIORTC_REQ_MAX		16
#define VIORTC_RESP_MAX		24

struct viortc_msg {
	struct completion done;
	/* bytes the device wrote (used length) */
	unsigned int len;
};

struct viortc_stats {
	u32 requests;
	u32 completed;
	u32 errors;
	/* completed by polling the used ring (device interrupts masked) */
	u32 polled;
};

struct viortc_dev;

struct viortc_clock {
	struct lx_clock clk;
	struct viortc_dev *viortc;
	u16 id;
	u8 type;
	char name[24];
};

struct viortc_dev {
	struct virtio_device *vdev;
	struct virtqueue *vq;
	/* protects vq */
	spinlock_t lock;
	/* buffers of the one message in flight (requests are serialized) */
	void *req;
	void *resp;
	struct viortc_msg msg;
	u16 num_clocks;
	struct viortc_clock *clocks;
	/* between freeze() and the restore that brings the clock back */
	bool frozen;
	/* in restore_noirq(): poll instead of waiting for the interrupt */
	bool polling;
	/* the reading taken when the clock came back from sleep */
	bool resume_valid;
	u64 resume_reading;
	struct viortc_stats stats;
};

static int viortc_status_to_errno(u8 status)
{
	switch (status) {
	case VIRTIO_RTC_S_OK:
		return 0;
	case VIRTIO_RTC_S_EOPNOTSUPP:
		return -EOPNOTSUPP;
	case VIRTIO_RTC_S_ENODEV:
		return -ENODEV;
	case VIRTIO_RTC_S_EINVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static int viortc_msg_sizes(u16 msg_type, unsigned int *req_size,
			    unsigned int *resp_size)
{
	switch (msg_type) {
	case VIRTIO_RTC_REQ_READ:
		*req_size = sizeof(struct virtio_rtc_req_read);
		*resp_size = sizeof(struct virtio_rtc_resp_read);
		return 0;
	case VIRTIO_RTC_REQ_CFG:
		*req_size = sizeof(struct virtio_rtc_req_cfg);
		*resp_size = sizeof(struct virtio_rtc_resp_cfg);
		return 0;
	case VIRTIO_RTC_REQ_CLOCK_CAP:
		*req_size = sizeof(struct virtio_rtc_req_clock_cap);
		*resp_size = sizeof(struct virtio_rtc_resp_clock_cap);
		return 0;
	default:
		return -EINVAL;
	}
}

/* Complete every used message. */
static void viortc_cb_requestq(struct virtqueue *vq)
{
	struct viortc_dev *viortc = vq->vdev->priv;
	struct viortc_msg *msg;
	unsigned long flags;
	unsigned int len;

	spin_lock_irqsave(&viortc->lock, flags);
	while ((msg = virtqueue_get_buf(vq, &len))) {
		msg->len = len;
		complete(&msg->done);
	}
	spin_unlock_irqrestore(&viortc->lock, flags);
}

/* Poll the used ring: the only way to a response with interrupts masked. */
static bool viortc_poll(struct viortc_dev *viortc, struct viortc_msg *msg,
			unsigned int timeout_ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(timeout_ms);
	unsigned int spins = 0;

	while (!completion_done(&msg->done)) {
		viortc_cb_requestq(viortc->vq);
		if (completion_done(&msg->done))
			break;
		if (time_after(jiffies, deadline))
			return false;
		if (++spins > VIORTC_POLL_SPINS)
			udelay(VIORTC_POLL_DELAY_US);
		else
			cpu_relax();
	}
	return true;
}

/*
 * Send one request and wait for its response, which is then in
 * viortc->resp. Returns 0 or -errno.
 */
static int viortc_msg_xfer(struct viortc_dev *viortc, u16 msg_type,
			   u16 clock_id)
{
	struct scatterlist out_sg, in_sg, *sgs[2] = { &out_sg, &in_sg };
	struct viortc_msg *msg = &viortc->msg;
	struct virtqueue *vq = viortc->vq;
	struct virtio_rtc_req_read *req = viortc->req;
	struct virtio_rtc_resp_head *resp = viortc->resp;
	unsigned int req_size, resp_size;
	unsigned long flags;
	bool done;
	int err;

	if (!vq || virtqueue_is_broken(vq))
		return -ENODEV;
	err = viortc_msg_sizes(msg_type, &req_size, &resp_size);
	if (err)
		return err;

	memset(viortc->req, 0, VIORTC_REQ_MAX);
	req->head.msg_type = cpu_to_le16(msg_type);
	if (req_size > offsetof(struct virtio_rtc_req_read, clock_id))
		req->clock_id = cpu_to_le16(clock_id);

	init_completion(&msg->done);
	msg->len = 0;
	sg_init_one(&out_sg, viortc->req, req_size);
	sg_init_one(&in_sg, viortc->resp, resp_size);

	spin_lock_irqsave(&viortc->lock, flags);
	err = virtqueue_add_sgs(vq, sgs, 1, 1, msg, GFP_ATOMIC);
	if (err) {
		spin_unlock_irqrestore(&viortc->lock, flags);
		viortc->stats.errors++;
		return err;
	}
	viortc->stats.requests++;
	virtqueue_kick(vq);
	spin_unlock_irqrestore(&viortc->lock, flags);

	if (viortc->polling) {
		done = viortc_poll(viortc, msg, VIORTC_MSG_TIMEOUT_MS);
		if (done)
			viortc->stats.polled++;
	} else {
		unsigned long timeout = msecs_to_jiffies(VIORTC_MSG_TIMEOUT_MS);

		done = wait_for_completion_timeout(&msg->done, timeout);
	}
	if (!done) {
		viortc->stats.errors++;
		return -ETIMEDOUT;
	}
	viortc->stats.completed++;
	if (msg->len < resp_size) {
		viortc->stats.errors++;
		return -EIO;
	}
	err = viortc_status_to_errno(resp->status);
	if (err)
		viortc->stats.errors++;
	return err;
}

/* One reading of a clock, in ns. */
static int viortc_read(struct viortc_dev *viortc, u16 clock_id, u64 *reading)
{
	struct virtio_rtc_resp_read *resp = viortc->resp;
	int err;

	if (viortc->frozen)
		return -EAGAIN;
	err = viortc_msg_xfer(viortc, VIRTIO_RTC_REQ_READ, clock_id);
	if (err)
		return err;
	*reading = le64_to_cpu(resp->clock_reading);
	return 0;
}

static int viortc_clock_read(struct lx_clock *clk, u64 *ns)
{
	struct viortc_clock *vclk = container_of(clk, struct viortc_clock, clk);

	return viortc_read(vclk->viortc, vclk->id, ns);
}

static int viortc_init_vqs(struct viortc_dev *viortc)
{
	struct virtqueue_info vqs_info[] = {
		{ "requestq", viortc_cb_requestq },
	};
	struct virtqueue *vq;
	int err;

	err = virtio_find_vqs(viortc->vdev, 1, &vq, vqs_info, NULL);
	if (err)
		return err;
	viortc->vq = vq;
	return 0;
}

static void viortc_clocks_exit(struct viortc_dev *viortc)
{
	unsigned int i;

	for (i = 0; i < viortc->num_clocks; i++)
		if (viortc->clocks[i].viortc)
			lx_clock_unregister(&viortc->clocks[i].clk);
	kfree(viortc->clocks);
	viortc->clocks = NULL;
	viortc->num_clocks = 0;
}

static int viortc_clocks_init(struct viortc_dev *viortc)
{
	struct virtio_rtc_resp_clock_cap *cap = viortc->resp;
	struct virtio_rtc_resp_cfg *cfg = viortc->resp;
	struct viortc_clock *vclk;
	unsigned int i;
	int err;

	err = viortc_msg_xfer(viortc, VIRTIO_RTC_REQ_CFG, 0);
	if (err)
		return err;
	viortc->num_clocks = le16_to_cpu(cfg->num_clocks);
	if (!viortc->num_clocks)
		return 0;
	viortc->clocks = kcalloc(viortc->num_clocks, sizeof(*viortc->clocks),
				 GFP_KERNEL);
	if (!viortc->clocks) {
		viortc->num_clocks = 0;
		return -ENOMEM;
	}

	for (i = 0; i < viortc->num_clocks; i++) {
		err = viortc_msg_xfer(viortc, VIRTIO_RTC_REQ_CLOCK_CAP, i);
		if (err)
			goto err_exit;
		vclk = &viortc->clocks[i];
		vclk->id = i;
		vclk->type = cap->type;
		snprintf(vclk->name, sizeof(vclk->name), "rtc%d.%u",
			 viortc->vdev->index, i);
		vclk->clk.name = vclk->name;
		vclk->clk.read = viortc_clock_read;
		err = lx_clock_register(&vclk->clk);
		if (err)
			goto err_exit;
		vclk->viortc = viortc;
	}
	return 0;

err_exit:
	viortc_clocks_exit(viortc);
	return err;
}

static void viortc_free(struct viortc_dev *viortc)
{
	viortc->vdev->priv = NULL;
	kfree(viortc->req);
	kfree(viortc->resp);
	kfree(viortc);
}

static int viortc_probe(struct virtio_device *vdev)
{
	struct viortc_dev *viortc;
	int err;

	viortc = kzalloc(sizeof(*viortc), GFP_KERNEL);
	if (!viortc)
		return -ENOMEM;
	viortc->vdev = vdev;
	spin_lock_init(&viortc->lock);
	vdev->priv = viortc;
	viortc->req = kzalloc(VIORTC_REQ_MAX, GFP_KERNEL);
	viortc->resp = kzalloc(VIORTC_RESP_MAX, GFP_KERNEL);
	if (!viortc->req || !viortc->resp) {
		err = -ENOMEM;
		goto err_free;
	}

	err = viortc_init_vqs(viortc);
	if (err)
		goto err_free;

	virtio_device_ready(vdev);

	err = viortc_clocks_init(viortc);
	if (err)
		goto err_reset;
	return 0;

err_reset:
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
err_free:
	viortc_free(viortc);
	return err;
}

static void viortc_remove(struct virtio_device *vdev)
{
	struct viortc_dev *viortc = vdev->priv;

	viortc_clocks_exit(viortc);
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	viortc->vq = NULL;
	viortc_free(viortc);
}

/* The clock is back: take a reading, as timekeeping does on resume. */
static void viortc_resumed(struct viortc_dev *viortc)
{
	viortc->frozen = false;
	viortc->resume_valid = !viortc_read(viortc, 0, &viortc->resume_reading);
}

#ifdef CONFIG_PM_SLEEP
/* virtio_rtc: tear down in freeze(), set up again in restore() */

static int viortc_freeze(struct virtio_device *vdev)
{
	struct viortc_dev *viortc = vdev->priv;

	viortc->frozen = true;
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	viortc->vq = NULL;
	return 0;
}

static int viortc_restore(struct virtio_device *vdev)
{
	struct viortc_dev *viortc = vdev->priv;
	int err;

	err = viortc_init_vqs(viortc);
	if (err)
		return err;
	virtio_device_ready(vdev);
	viortc_resumed(viortc);
	return 0;
}

/* virtio_rtc_noirq: back in restore_noirq() */

/* Only quiesce: the queue stays for config->reset_vqs. */
static int viortc_freeze_quiesce(struct virtio_device *vdev)
{
	struct viortc_dev *viortc = vdev->priv;

	viortc->frozen = true;
	return 0;
}

/* Nothing is in flight (requests are synchronous); the core resets later. */
static int viortc_freeze_noirq(struct virtio_device *vdev)
{
	return 0;
}

/* The core has reset and renegotiated, the transport reprogrammed the queue. */
static int viortc_restore_noirq(struct virtio_device *vdev)
{
	struct viortc_dev *viortc = vdev->priv;

	virtio_device_ready_noirq(vdev);
	viortc->polling = true;
	viortc_resumed(viortc);
	viortc->polling = false;
	return 0;
}

/* After restore_noirq() nothing is left; after an abort, undo freeze(). */
static int viortc_restore_after_noirq(struct virtio_device *vdev)
{
	struct viortc_dev *viortc = vdev->priv;

	if (viortc->frozen)
		viortc_resumed(viortc);
	return 0;
}
#endif

static const struct virtio_device_id id_table[] = {
	{ VIRTIO_ID_CLOCK, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, id_table);

static struct virtio_driver virtio_rtc_driver = {
	.driver.name = "virtio_rtc",
	.id_table = id_table,
	.probe = viortc_probe,
	.remove = viortc_remove,
#ifdef CONFIG_PM_SLEEP
	.freeze = viortc_freeze,
	.restore = viortc_restore,
#endif
};

static struct virtio_driver virtio_rtc_noirq_driver = {
	.driver.name = "virtio_rtc_noirq",
	.id_table = id_table,
	.probe = viortc_probe,
	.remove = viortc_remove,
#ifdef CONFIG_PM_SLEEP
	.freeze = viortc_freeze_quiesce,
	.restore = viortc_restore_after_noirq,
	.freeze_noirq = viortc_freeze_noirq,
	.restore_noirq = viortc_restore_noirq,
#endif
};

/*
 * Both are built in and neither has an initcall: a run registers the ones
 * it names, in its order (linux/glue/entry.c), and the first that matches
 * a device binds it.
 */
int lx_virtio_rtc_init(void)
{
	return register_virtio_driver(&virtio_rtc_driver);
}

int lx_virtio_rtc_noirq_init(void)
{
	return register_virtio_driver(&virtio_rtc_noirq_driver);
}

/* Host queries */

static struct viortc_dev *lx_slot_viortc(int slot)
{
	struct virtio_device *vdev = lx_slot_vdev(slot);

	if (!vdev || !vdev->priv)
		return NULL;
	if (vdev->dev.driver != &virtio_rtc_driver.driver &&
	    vdev->dev.driver != &virtio_rtc_noirq_driver.driver)
		return NULL;
	return vdev->priv;
}

/* Read by the host as 32-bit words; keep in step with linux/host. */
struct lx_rtc_info {
	u32 bound;		/* 1: virtio_rtc, 2: virtio_rtc_noirq */
	u32 has_vq;
	u32 frozen;
	u32 num_clocks;
	u32 resume_valid;
	u32 resume_lo, resume_hi;
	u32 requests, completed, errors, polled;
	u32 clock0_type;
};

static struct lx_rtc_info rtc_info;

LX_EXPORT("lx_rtc_info") struct lx_rtc_info *lx_rtc_info(int slot)
{
	struct viortc_dev *viortc = lx_slot_viortc(slot);
	struct lx_rtc_info *ri = &rtc_info;

	memset(ri, 0, sizeof(*ri));
	if (!viortc)
		return ri;
	ri->bound = viortc->vdev->dev.driver == &virtio_rtc_driver.driver ?
		    1 : 2;
	ri->has_vq = !!viortc->vq;
	ri->frozen = viortc->frozen;
	ri->num_clocks = viortc->num_clocks;
	ri->resume_valid = viortc->resume_valid;
	ri->resume_lo = lower_32_bits(viortc->resume_reading);
	ri->resume_hi = upper_32_bits(viortc->resume_reading);
	ri->requests = viortc->stats.requests;
	ri->completed = viortc->stats.completed;
	ri->errors = viortc->stats.errors;
	ri->polled = viortc->stats.polled;
	ri->clock0_type = viortc->num_clocks ? viortc->clocks[0].type : 0;
	return ri;
}

/* A reading of clock_id in *ns, or -errno (-ENODEV: no rtc driver bound). */
LX_EXPORT("lx_rtc_read") int lx_rtc_read(int slot, u16 clock_id, u64 *ns)
{
	struct viortc_dev *viortc = lx_slot_viortc(slot);

	return viortc ? viortc_read(viortc, clock_id, ns) : -ENODEV;
}
