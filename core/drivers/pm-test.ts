// A driver with exactly the system-sleep callbacks it is given, for the PM
// core's refusals (mis-paired callbacks, a transport without reset_vqs or
// noirq_safe): the model's counterpart of linux/drivers/lx-pm-test.c, so
// both kernels can be held against each other on the same cases. Its
// callbacks do nothing but what the refused paths need: restore_noirq sets
// DRIVER_OK with virtio_device_ready_noirq.
import { virtioDeviceReadyNoirq, virtioFindVqs, virtioResetDevice, VIRTIO_DEV_ANY_ID, type VirtioDevice, type VirtioDriver } from '../virtio.js';
import type { Virtqueue } from '../virtio-types.js';

/** The virtio driver callbacks a test driver can be given (struct virtio_driver). */
export type PmTestCallback = 'freeze' | 'restore' | 'freeze_noirq' | 'restore_noirq';

export interface PmTestDriverOptions {
  /** Virtqueues found at probe, named q0..q3 (default 1). */
  queues?: number;
  callbacks?: readonly PmTestCallback[];
}

/** "test-driver-<deviceId>", binding deviceId. */
export function pmTestDriver(deviceId: number, opts: PmTestDriverOptions = {}): VirtioDriver {
  const queues = opts.queues ?? 1;
  if (!Number.isInteger(queues) || queues < 0 || queues > 4) throw new RangeError(`pmTestDriver: queues must be 0..4, got ${queues}`);
  const has = new Set(opts.callbacks ?? []);
  const drv: VirtioDriver = {
    name: `test-driver-${deviceId}`,
    idTable: [{ device: deviceId, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: [],
    probe(vdev: VirtioDevice): number {
      if (!queues) return 0;
      const vqs: (Virtqueue | null)[] = new Array<Virtqueue | null>(queues).fill(null);
      return virtioFindVqs(
        vdev,
        vqs,
        vqs.map((_, i) => ({ name: `q${i}`, callback: () => {} })),
      );
    },
    remove(vdev: VirtioDevice): void {
      virtioResetDevice(vdev);
      vdev.config.delVqs(vdev);
    },
  };
  if (has.has('freeze')) drv.freeze = () => 0;
  if (has.has('restore')) drv.restore = () => 0;
  if (has.has('freeze_noirq')) drv.freezeNoirq = () => 0;
  if (has.has('restore_noirq')) {
    drv.restoreNoirq = (vdev) => {
      virtioDeviceReadyNoirq(vdev);
      return 0;
    };
  }
  return drv;
}
