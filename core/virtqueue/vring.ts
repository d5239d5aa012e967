// The generic half of virtio_ring.c: vring_create_virtqueue picks the split
// or the packed ring by the negotiated VIRTIO_F_RING_PACKED, and the
// helpers the transports call work on either (to_vvq, vring_del_virtqueue,
// vring_notification_data). Drivers see only the Virtqueue interface.
import type { DmaAllocator } from '../dma.js';
import { VIRTIO_F_RING_PACKED } from '../uapi/features.js';
import { KernelBug, virtioHasFeature, type VirtioDevice } from '../virtio.js';
import type { Virtqueue, VqCallback } from '../virtio-types.js';
import { PackedVirtqueue, vringCreateVirtqueuePacked } from './packed.js';
import { SplitVirtqueue, vringCreateVirtqueueSplit, vringTransportFeatures, type VqNotify } from './split.js';

export { vringTransportFeatures, type VqNotify };

/** struct vring_virtqueue: a split or a packed ring. */
export type VringVirtqueue<T = unknown> = SplitVirtqueue<T> | PackedVirtqueue<T>;

/**
 * vring_create_virtqueue: the packed ring when VIRTIO_F_RING_PACKED was
 * negotiated (vring_align and may_reduce_num do not apply to it), else the
 * split ring. Returns the queue or -errno.
 */
export function vringCreateVirtqueue<T = unknown>(
  index: number,
  num: number,
  vringAlign: number,
  vdev: VirtioDevice,
  weakBarriers: boolean,
  mayReduceNum: boolean,
  context: boolean,
  notify: VqNotify,
  callback: VqCallback | null,
  name: string,
  dma: DmaAllocator,
): VringVirtqueue<T> | number {
  if (virtioHasFeature(vdev, VIRTIO_F_RING_PACKED)) return vringCreateVirtqueuePacked<T>(index, num, vdev, weakBarriers, context, notify, callback, name, dma);
  return vringCreateVirtqueueSplit<T>(index, num, vringAlign, vdev, weakBarriers, mayReduceNum, context, notify, callback, name, dma);
}

/** to_vvq: the ring behind a virtqueue the transport created. */
export function toVvq(vq: Virtqueue): VringVirtqueue {
  if (vq instanceof SplitVirtqueue || vq instanceof PackedVirtqueue) return vq;
  throw new KernelBug('to_vvq', `${vq.name} is not a vring virtqueue`);
}

/** vring_del_virtqueue */
export function vringDelVirtqueue(vq: Virtqueue): void {
  toVvq(vq).del();
}

/**
 * vring_notification_data: the next avail index above the queue index; for
 * a packed ring the index's low 15 bits and the avail wrap counter in bit 15.
 */
export function vringNotificationData(vq: Virtqueue): number {
  const v = toVvq(vq);
  return ((v.availIdx << 16) | v.index) >>> 0;
}
