// A minimal virtio driver for the data-path cases: binds one device ID, sets
// up the device's first queue with a callback, and leaves the I/O to the
// case. Everything goes through the modelled kernel (virtio core, virtio-mmio
// transport, split virtqueue) exactly as the shipped drivers do; only the
// request pattern is the benchmark's. EVENT_IDX can be refused in validate(),
// as Linux drivers clear transport features they do not want.
import { VIRTIO_RING_F_EVENT_IDX } from '../../core/uapi/features.js';
import {
  VIRTIO_DEV_ANY_ID,
  __virtioClearBit,
  virtioDeviceReady,
  virtioFindVqs,
  virtioHasFeature,
  virtioResetDevice,
  type VirtioDevice,
  type VirtioDriver,
} from '../../core/virtio.js';
import type { Virtqueue } from '../../core/virtio-types.js';

export interface BenchQueue {
  vdev: VirtioDevice;
  vq: Virtqueue<number>;
  /** Called from vring_interrupt for every used-buffer interrupt (the case harvests there or later). */
  onInterrupt: () => void;
  eventIdx: boolean;
}

export interface BenchDriver {
  driver: VirtioDriver;
  /** The bound queue of a device, or null if this driver is not bound to it. */
  queue(vdev: VirtioDevice): BenchQueue | null;
}

export function benchDriver(name: string, deviceId: number, opts: { eventIdx: boolean; featureTable?: number[] }): BenchDriver {
  const bound = new WeakMap<VirtioDevice, BenchQueue>();
  const driver: VirtioDriver = {
    name,
    idTable: [{ device: deviceId, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: opts.featureTable ?? [],
    validate(vdev) {
      if (!opts.eventIdx) __virtioClearBit(vdev, VIRTIO_RING_F_EVENT_IDX);
      return 0;
    },
    probe(vdev) {
      const vqs: (Virtqueue | null)[] = [null];
      const q: BenchQueue = {
        vdev,
        vq: null as unknown as Virtqueue<number>,
        onInterrupt: () => {},
        eventIdx: virtioHasFeature(vdev, VIRTIO_RING_F_EVENT_IDX),
      };
      const err = virtioFindVqs(vdev, vqs, [{ name: 'bench', callback: () => q.onInterrupt() }]);
      if (err) return err;
      q.vq = vqs[0] as Virtqueue<number>;
      bound.set(vdev, q);
      virtioDeviceReady(vdev);
      return 0;
    },
    remove(vdev) {
      virtioResetDevice(vdev);
      vdev.config.delVqs(vdev);
      bound.delete(vdev);
    },
  };
  return { driver, queue: (vdev) => bound.get(vdev) ?? null };
}
