// The ring layout a data-path case runs on. Every device model offers
// VIRTIO_F_RING_PACKED and the modelled kernel accepts it, as Linux does, so
// a split-ring case has the board withhold it (packed=false) and every case
// checks the layout its queue was given.
import type { Virtqueue } from '../../core/virtio-types.js';
import { toVvq } from '../../core/virtqueue/vring.js';
import type { DeviceOptionValue } from '../../emulator/board-contract.js';
import type { DeviceType } from '../../emulator/devices/catalog.js';
import type { MachineDevice } from '../../emulator/machine.js';
import type { RingKind } from '../../emulator/vring/queue.js';

export type { RingKind };

/** A device of `type` whose driver ends up on `ring`. */
export function deviceOnRing(type: DeviceType, ring: RingKind, options: Record<string, DeviceOptionValue> = {}): MachineDevice {
  return { type, options: { ...options, packed: ring === 'packed' } };
}

/** The layout the modelled kernel set up for vq. */
export function ringOf(vq: Virtqueue): RingKind {
  return toVvq(vq).packedRing ? 'packed' : 'split';
}

/** Throw unless vq is on `ring` (a case must measure the layout its name says). */
export function expectRing(vq: Virtqueue, ring: RingKind): void {
  const got = ringOf(vq);
  if (got !== ring) throw new Error(`${vq.name}: the queue is on a ${got} ring, the case measures ${ring}`);
}
