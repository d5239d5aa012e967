// Property: random orders of Status writes and feature-register accesses.
// Status only shows defined bits, never loses a bit except through a write
// of 0 (which reads back 0), never shows DRIVER_OK without FEATURES_OK on a
// Version 2 device, and FEATURES_OK only sticks for a feature set the device
// can accept: a subset of what it offers, with VERSION_1 on Version 2, and no
// non-zero word beyond bit 63. Every model type is exercised.
import * as fc from 'fast-check';
import { VIRTIO_F_VERSION_1, bit, fromWords } from '../../core/uapi/features.js';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET } from '../../core/uapi/status.js';
import type { DeviceSpec } from '../../emulator/board-contract.js';
import { FuzzBoard, STATUS_BITS, check, hex } from './fuzz-board.js';
import { statusValue } from './values.js';

export type StatusOp =
  | { k: 'status'; v: number }
  | { k: 'devSel'; v: number }
  | { k: 'devRead' }
  | { k: 'drvSel'; v: number }
  /** A driver feature word: the offered word of the current selector, a part of it, or anything. */
  | { k: 'drvWord'; v: number | 'offered' | 'offered-minus-one' };

const selector = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.constantFrom(2, 3, 0xffff_ffff) });

export const statusOp: fc.Arbitrary<StatusOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('status' as const), v: statusValue }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('devSel' as const), v: selector }) },
  { weight: 1, arbitrary: fc.constant({ k: 'devRead' as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('drvSel' as const), v: selector }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('drvWord' as const),
      v: fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom<'offered' | 'offered-minus-one'>('offered', 'offered-minus-one') },
        { weight: 1, arbitrary: fc.constantFrom(0, 1, 0x3000_0000, 0xffff_ffff) },
        { weight: 1, arbitrary: fc.nat({ max: 0xffff_ffff }) },
      ),
    }),
  },
);

/** One device per model type on virtio-mmio v2, and rng on legacy. */
export function statusDevices(types: string[]): DeviceSpec[] {
  return [...types.map((type): DeviceSpec => ({ type, transport: 'mmio' })), { type: 'rng', transport: 'mmio-legacy' }];
}

/** Run one sequence against the device in slot 0 of a fresh board; throws InvariantError on a violation. */
export function runStatusOps(device: DeviceSpec, ops: StatusOp[]): { featuresOk: boolean } {
  const fb = new FuzzBoard([device]);
  const modern = device.transport === 'mmio';
  const offered = fb.offered(0);
  const offeredWord = (sel: number): number => (sel === 0 ? Number(offered & 0xffff_ffffn) : sel === 1 ? Number(offered >> 32n) : 0);
  // What the driver wrote since the last reset, while the features could still change.
  let words = new Map<number, number>();
  let drvSel = 0;
  let status = 0;
  let featuresOkSeen = false;
  ops.forEach((op, i) => {
    const at = `op ${i} (${op.k})`;
    switch (op.k) {
      case 'status': {
        fb.write(0, REG.Status, op.v);
        const s = fb.read(0, REG.Status);
        check((s & ~STATUS_BITS) === 0, `${at}: Status 0x${s.toString(16)} has undefined bits`);
        if (op.v === 0) {
          check(s === 0, `${at}: Status reads ${hex(s)} after a write of 0`);
          // A reset also returns the selectors to 0 (as QEMU's virtio_mmio_reset does).
          words = new Map();
          drvSel = 0;
        } else {
          check((status & ~s) === 0, `${at}: Status went from ${hex(status)} to ${hex(s)} without a reset`);
        }
        check((s & VIRTIO_CONFIG_S_NEEDS_RESET) === 0, `${at}: DEVICE_NEEDS_RESET from status and feature writes alone`);
        if (modern && s & VIRTIO_CONFIG_S_DRIVER_OK) check((s & VIRTIO_CONFIG_S_FEATURES_OK) !== 0, `${at}: DRIVER_OK without FEATURES_OK`);
        if (s & VIRTIO_CONFIG_S_FEATURES_OK && !(status & VIRTIO_CONFIG_S_FEATURES_OK)) {
          featuresOkSeen = true;
          const accepted = fromWords(words.get(0) ?? 0, words.get(1) ?? 0);
          check((accepted & ~offered) === 0n, `${at}: FEATURES_OK stuck with features 0x${(accepted & ~offered).toString(16)} that were not offered (offered 0x${offered.toString(16)})`);
          if (modern) check((accepted & bit(VIRTIO_F_VERSION_1)) !== 0n, `${at}: FEATURES_OK stuck without VERSION_1`);
          for (const [sel, w] of words) check(sel < 2 || w === 0, `${at}: FEATURES_OK stuck with features word ${sel} = ${hex(w)}`);
        }
        status = s;
        return;
      }
      case 'devSel':
        fb.write(0, REG.DeviceFeaturesSel, op.v);
        return;
      case 'devRead':
        fb.read(0, REG.DeviceFeatures);
        return;
      case 'drvSel':
        drvSel = op.v;
        fb.write(0, REG.DriverFeaturesSel, op.v);
        return;
      case 'drvWord': {
        const w = op.v === 'offered' ? offeredWord(drvSel) : op.v === 'offered-minus-one' ? offeredWord(drvSel) & (offeredWord(drvSel) - 1) : op.v;
        fb.write(0, REG.DriverFeatures, w);
        if (!(status & (VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK))) words.set(drvSel, w >>> 0);
        return;
      }
    }
  });
  fb.checkInvariants('after the sequence');
  return { featuresOk: featuresOkSeen };
}

export function statusFeatureProperty(devices: DeviceSpec[]): fc.IPropertyWithHooks<[number, StatusOp[]]> {
  return fc.property(fc.nat({ max: devices.length - 1 }), fc.array(statusOp, { minLength: 1, maxLength: 40, size: 'max' }), (d, ops) => {
    runStatusOps(devices[d]!, ops);
  });
}
