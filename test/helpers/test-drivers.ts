// Small virtio drivers for transport tests: bind a device ID, set up N
// queues with counting callbacks, and count config changes; hooks let a test
// change features in validate() or fail probe.
import { VIRTIO_DEV_ANY_ID, virtioDeviceReadyNoirq, virtioFindVqs, virtioResetDevice, type VirtioDevice, type VirtioDriver } from '../../core/virtio.js';
import type { Virtqueue } from '../../core/virtio-types.js';

export interface TestDriverState {
  vqs: (Virtqueue | null)[];
  callbacks: number[];
  configChanges: number;
  probes: number;
  removes: number;
  findVqsResult: number | null;
}

export interface TestDriver extends VirtioDriver {
  state: TestDriverState;
}

export function testDriver(
  deviceId: number,
  opts: {
    queues?: (string | null)[];
    validate?: (dev: VirtioDevice) => number;
    noirq?: boolean;
    featureTable?: number[];
  } = {},
): TestDriver {
  const names = opts.queues ?? ['q0'];
  const state: TestDriverState = { vqs: [], callbacks: [], configChanges: 0, probes: 0, removes: 0, findVqsResult: null };
  const setup = (dev: VirtioDevice): number => {
    state.vqs = names.map(() => null);
    state.callbacks = names.map(() => 0);
    const err = virtioFindVqs(
      dev,
      state.vqs,
      names.map((name, i) => ({ name, callback: () => void state.callbacks[i]!++ })),
    );
    state.findVqsResult = err;
    return err;
  };
  const drv: TestDriver = {
    name: `test-driver-${deviceId}`,
    idTable: [{ device: deviceId, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: opts.featureTable ?? [],
    state,
    probe(dev) {
      state.probes++;
      return names.length ? setup(dev) : 0;
    },
    remove(dev) {
      state.removes++;
      virtioResetDevice(dev);
      dev.config.delVqs(dev);
    },
    configChanged() {
      state.configChanges++;
    },
  };
  if (opts.validate) drv.validate = opts.validate;
  if (opts.noirq) {
    // Keep the vqs across suspend: they come back through reset_vqs.
    drv.freeze = () => 0;
    drv.restore = () => 0;
    drv.freezeNoirq = () => 0;
    drv.restoreNoirq = (dev) => {
      virtioDeviceReadyNoirq(dev);
      return 0;
    };
  }
  return drv;
}
