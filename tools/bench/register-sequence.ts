// The register sequence every peer is driven through, as data: probe the
// window, status handshake, feature negotiation, set up queue 0, DRIVER_OK,
// then reset so the next run starts from the same state. Written once and
// replayed on a synchronous port (the trapped bus) and an asynchronous one
// (a qtest peer), so all peers do exactly the same accesses.
import { MAGIC_VALUE, REG } from '../../core/uapi/mmio.js';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC } from '../../core/uapi/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE as ACK,
  VIRTIO_CONFIG_S_DRIVER as DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK as DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK as FEATURES_OK,
} from '../../core/uapi/status.js';

/** Guest RAM on the virt board starts here (QEMU and this emulator alike). */
const RAM = 0x4000_0000;
/** A 256-entry split ring, laid out in RAM as the queue registers want it. */
const QUEUE_NUM = 256;
const DESC = RAM + 0x10000;
const AVAIL = RAM + 0x11000;
const USED = RAM + 0x12000;

const WANT_LO = (1 << VIRTIO_RING_F_INDIRECT_DESC) | (1 << VIRTIO_RING_F_EVENT_IDX);
const WANT_HI = 1 << (VIRTIO_F_VERSION_1 - 32);

type Saved = Record<string, number>;

export type Step =
  | { kind: 'read'; reg: number; save?: string; check?: (v: number) => string | null }
  | { kind: 'write'; reg: number; value: number | ((s: Saved) => number) };

const r = (reg: number, save?: string, check?: (v: number) => string | null): Step => ({
  kind: 'read',
  reg,
  ...(save ? { save } : {}),
  ...(check ? { check } : {}),
});
const w = (reg: number, value: number | ((s: Saved) => number)): Step => ({ kind: 'write', reg, value });
const bitsSet = (bits: number, what: string) => (v: number) => ((v & bits) === bits ? null : `${what}: Status reads 0x${v.toString(16)}`);

export const REGISTER_SEQUENCE: readonly Step[] = [
  // probe
  r(REG.MagicValue, undefined, (v) => (v === MAGIC_VALUE ? null : `MagicValue 0x${v.toString(16)}`)),
  r(REG.Version, undefined, (v) => (v === 2 ? null : `Version ${v} (want 2: modern virtio-mmio)`)),
  r(REG.DeviceID),
  r(REG.VendorID),
  // status handshake
  w(REG.Status, 0),
  w(REG.Status, ACK),
  w(REG.Status, ACK | DRIVER),
  // feature negotiation
  w(REG.DeviceFeaturesSel, 1),
  r(REG.DeviceFeatures, 'hi'),
  w(REG.DeviceFeaturesSel, 0),
  r(REG.DeviceFeatures, 'lo'),
  w(REG.DriverFeaturesSel, 1),
  w(REG.DriverFeatures, (s) => s['hi']! & WANT_HI),
  w(REG.DriverFeaturesSel, 0),
  w(REG.DriverFeatures, (s) => s['lo']! & WANT_LO),
  w(REG.Status, ACK | DRIVER | FEATURES_OK),
  r(REG.Status, undefined, bitsSet(FEATURES_OK, 'FEATURES_OK did not stick')),
  // queue 0
  w(REG.QueueSel, 0),
  r(REG.QueueReady),
  r(REG.QueueNumMax, undefined, (v) => (v >= QUEUE_NUM ? null : `QueueNumMax ${v} < ${QUEUE_NUM}`)),
  w(REG.QueueNum, QUEUE_NUM),
  w(REG.QueueDescLow, DESC),
  w(REG.QueueDescHigh, 0),
  w(REG.QueueDriverLow, AVAIL),
  w(REG.QueueDriverHigh, 0),
  w(REG.QueueDeviceLow, USED),
  w(REG.QueueDeviceHigh, 0),
  w(REG.QueueReady, 1),
  w(REG.Status, ACK | DRIVER | FEATURES_OK | DRIVER_OK),
  r(REG.Status, undefined, bitsSet(DRIVER_OK, 'DRIVER_OK did not stick')),
  // back to the start
  w(REG.Status, 0),
];

export interface SyncPort {
  read(addr: number): number;
  write(addr: number, value: number): void;
}

export interface AsyncPort {
  read(addr: number): Promise<number>;
  write(addr: number, value: number): Promise<void>;
}

function problem(step: Step & { kind: 'read' }, v: number): string | null {
  return step.check ? step.check(v >>> 0) : null;
}

/** Run the sequence on the window at `base`; with check, throw at the first unexpected value. */
export function runSequenceSync(port: SyncPort, base: number, check = false): void {
  const saved: Saved = {};
  for (const step of REGISTER_SEQUENCE) {
    if (step.kind === 'read') {
      const v = port.read(base + step.reg);
      if (step.save) saved[step.save] = v;
      if (check) {
        const p = problem(step, v);
        if (p) throw new Error(`register sequence: ${p}`);
      }
    } else {
      port.write(base + step.reg, typeof step.value === 'number' ? step.value : step.value(saved));
    }
  }
}

export async function runSequence(port: AsyncPort, base: number, check = false): Promise<void> {
  const saved: Saved = {};
  for (const step of REGISTER_SEQUENCE) {
    if (step.kind === 'read') {
      const v = await port.read(base + step.reg);
      if (step.save) saved[step.save] = v;
      if (check) {
        const p = problem(step, v);
        if (p) throw new Error(`register sequence: ${p}`);
      }
    } else {
      await port.write(base + step.reg, typeof step.value === 'number' ? step.value : step.value(saved));
    }
  }
}

export const SEQUENCE_ACCESSES = REGISTER_SEQUENCE.length;
