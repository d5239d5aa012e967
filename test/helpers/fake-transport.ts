// A config-ops transport kept in memory, recording every op: for unit tests
// of the core's order of checks, without any bus. Real-register tests use
// transports/mmio.ts over the machine.
import type { VirtioConfigOps } from '../../core/virtio-types.js';
import { VirtioBus, VirtioDevice } from '../../core/virtio.js';
import type { Virtqueue, VirtqueueInfo } from '../../core/virtio-types.js';
import { VIRTIO_CONFIG_S_FEATURES_OK } from '../../core/uapi/status.js';

export interface FakeTransportState {
  status: number;
  deviceFeatures: bigint;
  driverFeatures: bigint;
  /** Refuse FEATURES_OK (the device does not keep it set). */
  refuseFeaturesOk: boolean;
  ops: string[];
}

export function fakeTransport(
  opts: { noirqSafe?: boolean; resetVqs?: boolean; deviceFeatures?: bigint } = {},
): { ops: VirtioConfigOps; state: FakeTransportState } {
  const state: FakeTransportState = {
    status: 0,
    deviceFeatures: opts.deviceFeatures ?? (1n << 32n),
    driverFeatures: 0n,
    refuseFeaturesOk: false,
    ops: [],
  };
  const ops: VirtioConfigOps = {
    get: () => state.ops.push('get'),
    set: () => state.ops.push('set'),
    getStatus: () => {
      state.ops.push('get_status');
      return state.status;
    },
    setStatus: (_v, s) => {
      state.ops.push(`set_status ${s}`);
      state.status = state.refuseFeaturesOk ? s & ~VIRTIO_CONFIG_S_FEATURES_OK : s;
    },
    reset: () => {
      state.ops.push('reset');
      state.status = 0;
    },
    findVqs: (_v: VirtioDevice, _vqs: (Virtqueue | null)[], _info: VirtqueueInfo[]) => 0,
    delVqs: () => state.ops.push('del_vqs'),
    getFeatures: () => {
      state.ops.push('get_features');
      return state.deviceFeatures;
    },
    finalizeFeatures: (v) => {
      state.ops.push('finalize_features');
      state.driverFeatures = v.features;
      return 0;
    },
    busName: () => 'fake',
    noirqSafe: opts.noirqSafe ?? true,
  };
  if (opts.resetVqs !== false)
    ops.resetVqs = () => {
      state.ops.push('reset_vqs');
      return 0;
    };
  return { ops, state };
}

export function fakeDevice(opts: Parameters<typeof fakeTransport>[0] = {}, bus = new VirtioBus()) {
  const t = fakeTransport(opts);
  const dev = new VirtioDevice(t.ops, { device: 4, vendor: 0 }, bus);
  return { dev, bus, ...t };
}

/** A stand-in for an active virtqueue on dev->vqs (only list membership matters to the core). */
export function fakeVq(dev: VirtioDevice, index = 0): Virtqueue {
  const vq = { index, name: `vq${index}`, vdev: dev, callback: null, broken: false } as Partial<Virtqueue>;
  return vq as Virtqueue;
}
