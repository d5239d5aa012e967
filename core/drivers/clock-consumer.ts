// A driver whose restore() needs a clock: the dependent device of the noirq
// patch's motivation. It binds to any device ID it is given and, on every
// restore, reads the named clock; if the clock is not back yet the restore
// fails, as a driver that must timestamp its resume would.
import { VIRTIO_DEV_ANY_ID, type VirtioDevice, type VirtioDriver } from '../virtio.js';
import { clockRead } from './rtc.js';

export interface ClockConsumerState {
  /** Every clock read made from restore(): ns, or -errno. */
  reads: (bigint | number)[];
}

export function clockConsumerState(vdev: VirtioDevice): ClockConsumerState | null {
  const s = vdev.priv as ClockConsumerState | null;
  return s && Array.isArray(s.reads) ? s : null;
}

/** A driver for deviceId whose restore() reads clock `clock` (e.g. "rtc1.0"). */
export function clockConsumerDriver(deviceId: number, clock: string): VirtioDriver {
  return {
    name: `clock_consumer(${clock})`,
    idTable: [{ device: deviceId, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: [],
    probe(vdev) {
      const s: ClockConsumerState = { reads: [] };
      vdev.priv = s;
      return 0;
    },
    remove(vdev) {
      vdev.config.reset(vdev);
    },
    freeze() {
      return 0;
    },
    restore(vdev) {
      const s = clockConsumerState(vdev)!;
      const r = clockRead(clock);
      s.reads.push(r);
      return typeof r === 'number' ? r : 0;
    },
  };
}
