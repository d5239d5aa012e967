// Property: random virtio-mmio register-access sequences (raw accesses of any
// width and offset, mixed with the init, queue-setup and request steps a
// driver makes so the sequences reach deep states) never make the board
// fail: no exception escapes, Status and InterruptStatus only take
// spec-allowed values, the interrupt line follows InterruptStatus, and a
// Status=0 write brings every device back to its reset state.
import * as fc from 'fast-check';
import type { AccessWidth } from '../../core/bus.js';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_F_RING_PACKED } from '../../core/uapi/features.js';
import { VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../../core/uapi/status.js';
import type { DeviceSpec } from '../../emulator/board-contract.js';
import { FuzzBoard, check, hex } from './fuzz-board.js';
import { LAYOUT, mmioOffset, queueNum, regValue, ringSlot, width } from './values.js';
import { RAM_BASE } from './fuzz-board.js';

export type RegOp =
  | { k: 'read'; slot: number; off: number; w: AccessWidth }
  | { k: 'write'; slot: number; off: number; w: AccessWidth; v: number }
  /** spec 3.1.1 steps 1-6 with the offered features (split rings: RING_PACKED refused), none, or two raw words. */
  | { k: 'init'; slot: number; features: 'offered' | 'none' | [number, number] }
  /** Program queue q with ring slot `ring` (v2 registers, or legacy QueuePFN). */
  | { k: 'queue'; slot: number; q: number; num: number; ring: number }
  | { k: 'driverOk'; slot: number }
  /** init with the offered features, queue 0 of `num` entries in the slot's own ring slot, DRIVER_OK. */
  | { k: 'bringUp'; slot: number; num: number }
  /**
   * Publish n one-buffer requests on ring slot `ring` (as laid out for `num`
   * entries) and kick queue q; with `own`, on the ring of the slot's last
   * bringUp instead.
   */
  | { k: 'request'; slot: number; q: number; ring: number; num: number; n: number; own: boolean }
  | { k: 'ack'; slot: number; v: number }
  | { k: 'inject'; slot: number; event: 'config-change' | 'needs-reset' }
  /** Platform power event for every device (system sleep): reset in place, or new instances. */
  | { k: 'power'; model: 'reset' | 'fresh' }
  /** Let device time pass (their timers come due). */
  | { k: 'time'; ms: number }
  | { k: 'run' };

export function regOp(slots: number): fc.Arbitrary<RegOp> {
  const slot = fc.nat({ max: slots - 1 });
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ k: fc.constant('read' as const), slot, off: mmioOffset, w: width }) },
    { weight: 6, arbitrary: fc.record({ k: fc.constant('write' as const), slot, off: mmioOffset, w: width, v: regValue }) },
    {
      weight: 1,
      arbitrary: fc.record({
        k: fc.constant('init' as const),
        slot,
        features: fc.oneof(fc.constantFrom<'offered' | 'none'>('offered', 'offered', 'none'), fc.tuple(regValue, regValue)),
      }),
    },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('queue' as const), slot, q: fc.nat({ max: 2 }), num: queueNum, ring: fc.nat({ max: LAYOUT.ringSlots - 1 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('driverOk' as const), slot }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('bringUp' as const), slot, num: fc.constantFrom(1, 2, 4, 8, 16, 32, 64) }) },
    {
      weight: 4,
      arbitrary: fc.record({ k: fc.constant('request' as const), slot, q: fc.nat({ max: 2 }), ring: fc.nat({ max: LAYOUT.ringSlots - 1 }), num: fc.constantFrom(1, 2, 4, 8, 16, 32, 64), n: fc.nat({ max: 4 }), own: fc.constantFrom(true, true, true, false) }),
    },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('ack' as const), slot, v: fc.oneof(fc.constantFrom(1, 2, 3), regValue) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('inject' as const), slot, event: fc.constantFrom<'config-change' | 'needs-reset'>('config-change', 'needs-reset') }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('power' as const), model: fc.constantFrom<'reset' | 'fresh'>('reset', 'fresh') }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('time' as const), ms: fc.oneof(fc.constantFrom(1, 10, 1000), fc.nat({ max: 100_000 })) }) },
    { weight: 2, arbitrary: fc.constant({ k: 'run' as const }) },
  );
}

/** The board operations a register sequence needs; in-thread or through the device worker. */
export interface RegTarget {
  read(slot: number, off: number, w: AccessWidth): number;
  write(slot: number, off: number, v: number, w: AccessWidth): void;
  inject(slot: number, event: string): void;
  power(model: 'reset' | 'fresh'): void;
  advance(ms: number): void;
  /** Let deferred device work run (in-thread: run it; worker: it runs by itself). */
  run(): void;
  ramWriteU16(addr: number, v: number): void;
  ramWriteU32(addr: number, v: number): void;
  ramRead16(addr: number): number;
}

/** Driver state a sequence keeps: avail idx published per ring slot, queue size of each slot's bringUp. */
export class SeqState {
  readonly availIdx = new Map<number, number>();
  readonly own = new Map<number, number>();
}

export function applyRegOp(t: RegTarget, op: RegOp, st: SeqState): void {
  switch (op.k) {
    case 'read':
      t.read(op.slot, op.off, op.w);
      return;
    case 'write':
      t.write(op.slot, op.off, op.v, op.w);
      return;
    case 'init': {
      t.write(op.slot, REG.Status, 0, 4);
      t.write(op.slot, REG.Status, 1, 4);
      t.write(op.slot, REG.Status, 3, 4);
      let lo: number;
      let hi: number;
      if (op.features === 'offered') {
        t.write(op.slot, REG.DeviceFeaturesSel, 0, 4);
        lo = t.read(op.slot, REG.DeviceFeatures, 4);
        t.write(op.slot, REG.DeviceFeaturesSel, 1, 4);
        // The requests below are split-ring chains: a split-ring driver does not accept VIRTIO_F_RING_PACKED.
        hi = t.read(op.slot, REG.DeviceFeatures, 4) & ~(1 << (VIRTIO_F_RING_PACKED - 32));
      } else if (op.features === 'none') {
        lo = hi = 0;
      } else {
        [lo, hi] = op.features;
      }
      t.write(op.slot, REG.DriverFeaturesSel, 1, 4);
      t.write(op.slot, REG.DriverFeatures, hi, 4);
      t.write(op.slot, REG.DriverFeaturesSel, 0, 4);
      t.write(op.slot, REG.DriverFeatures, lo, 4);
      t.write(op.slot, REG.Status, 0xb, 4);
      return;
    }
    case 'queue': {
      const r = ringSlot(op.ring);
      const legacy = t.read(op.slot, REG.Version, 4) === 1;
      t.write(op.slot, REG.QueueSel, op.q, 4);
      t.write(op.slot, REG.QueueNum, op.num, 4);
      if (legacy) {
        t.write(op.slot, REG.GuestPageSize, 4096, 4);
        t.write(op.slot, REG.QueueAlign, 4096, 4);
        t.write(op.slot, REG.QueuePFN, r.desc / 4096, 4);
      } else {
        t.write(op.slot, REG.QueueDescLow, r.desc, 4);
        t.write(op.slot, REG.QueueDescHigh, 0, 4);
        t.write(op.slot, REG.QueueDriverLow, r.avail, 4);
        t.write(op.slot, REG.QueueDriverHigh, 0, 4);
        t.write(op.slot, REG.QueueDeviceLow, r.used, 4);
        t.write(op.slot, REG.QueueDeviceHigh, 0, 4);
        t.write(op.slot, REG.QueueReady, 1, 4);
      }
      return;
    }
    case 'bringUp': {
      const ring = op.slot % LAYOUT.ringSlots;
      applyRegOp(t, { k: 'init', slot: op.slot, features: 'offered' }, st);
      // A fresh ring, as a driver allocates it zeroed.
      for (let a = ringSlot(ring).desc; a < ringSlot(ring).desc + LAYOUT.ringSlot; a += 4) t.ramWriteU32(a, 0);
      applyRegOp(t, { k: 'queue', slot: op.slot, q: 0, num: op.num, ring }, st);
      st.own.set(op.slot, op.num);
      st.availIdx.set(ring, 0);
      applyRegOp(t, { k: 'driverOk', slot: op.slot }, st);
      return;
    }
    case 'driverOk':
      t.write(op.slot, REG.Status, t.read(op.slot, REG.Status, 4) | VIRTIO_CONFIG_S_DRIVER_OK, 4);
      return;
    case 'request': {
      const ownNum = op.own ? st.own.get(op.slot) : undefined;
      if (ownNum !== undefined) op = { ...op, q: 0, ring: op.slot % LAYOUT.ringSlots, num: ownNum };
      const r = ringSlot(op.ring);
      // A legacy ring puts avail right after the table; write both places so either layout sees the request.
      const availAreas = [r.avail, r.desc + 16 * op.num];
      let idx = st.availIdx.get(op.ring) ?? 0;
      for (let i = 0; i < op.n; i++) {
        const head = (idx + i) % op.num;
        const buf = RAM_BASE + LAYOUT.buffers + 64 * ((op.ring * 64 + head) % 256);
        const at = r.desc + 16 * head;
        t.ramWriteU32(at, buf);
        t.ramWriteU32(at + 4, 0);
        t.ramWriteU32(at + 8, 64);
        t.ramWriteU16(at + 12, VRING_DESC_F_WRITE);
        t.ramWriteU16(at + 14, 0);
        for (const a of availAreas) t.ramWriteU16(a + 4 + 2 * ((idx + i) % op.num), head);
      }
      idx = (idx + op.n) & 0xffff;
      st.availIdx.set(op.ring, idx);
      for (const a of availAreas) t.ramWriteU16(a + 2, idx);
      t.write(op.slot, REG.QueueNotify, op.q, 4);
      return;
    }
    case 'ack':
      t.write(op.slot, REG.InterruptACK, op.v, 4);
      return;
    case 'inject':
      t.inject(op.slot, op.event);
      return;
    case 'power':
      t.power(op.model);
      return;
    case 'time':
      t.advance(op.ms);
      return;
    case 'run':
      t.run();
      return;
  }
}

/** Devices of the in-thread register property: every model type on virtio-mmio v2, and rng on legacy. */
export function registerBoardDevices(types: string[]): DeviceSpec[] {
  const devs: DeviceSpec[] = types.map((type) => ({ type, transport: 'mmio' }));
  devs.push({ type: 'rng', transport: 'mmio-legacy' });
  return devs;
}

function target(fb: FuzzBoard): RegTarget {
  return {
    read: (s, o, w) => fb.read(s, o, w),
    write: (s, o, v, w) => fb.write(s, o, v, w),
    inject: (slot, event) => {
      fb.board.control({ op: 'inject', slot, event });
    },
    power: (model) => {
      fb.board.control({ op: 'power', model });
    },
    advance: (ms) => fb.advance(ms),
    run: () => fb.run(),
    ramWriteU16: (a, v) => fb.view.setUint16(a - RAM_BASE, v, true),
    ramWriteU32: (a, v) => fb.view.setUint32(a - RAM_BASE, v >>> 0, true),
    ramRead16: (a) => fb.view.getUint16(a - RAM_BASE, true),
  };
}

/** What one sequence reached, for coverage checks. */
export interface RegOutcome {
  /** Devices that were running (DRIVER_OK) at some check. */
  driverOk: number;
  usedBuffers: number;
}

/** Run one sequence on a fresh board; throws InvariantError on a violated property. */
export function runRegOps(devices: DeviceSpec[], ops: RegOp[]): RegOutcome {
  const fb = new FuzzBoard(devices);
  const queues = devices.map((_, s) => fb.queueCount(s));
  const fresh = devices.map((_, s) => fb.resetView(s, queues[s]!));
  const t = target(fb);
  const st = new SeqState();
  const running = new Set<number>();
  ops.forEach((op, i) => {
    applyRegOp(t, op, st);
    fb.checkInvariants(`after op ${i} (${op.k})`);
    for (const s of fb.stats().slots) if (s.status & VIRTIO_CONFIG_S_DRIVER_OK) running.add(s.slot);
  });
  fb.run();
  fb.checkInvariants('after the sequence');
  const usedBuffers = fb.stats().slots.reduce((n, s) => n + s.usedBuffers, 0);
  expectResetState(fb, devices, queues, fresh);
  return { driverOk: running.size, usedBuffers };
}

/** The property over in-thread boards holding `devices`. */
export function mmioRegisterProperty(devices: DeviceSpec[], maxOps = 60): fc.IPropertyWithHooks<[RegOp[]]> {
  return fc.property(fc.array(regOp(devices.length), { minLength: 1, maxLength: maxOps, size: 'max' }), (ops) => {
    runRegOps(devices, ops);
  });
}

/** Status=0 on every device: each reads its reset values again, before and after pending work runs. */
export function expectResetState(fb: FuzzBoard, devices: DeviceSpec[], queues: number[], fresh: number[][]): void {
  devices.forEach((_, s) => fb.write(s, REG.Status, 0));
  for (const when of ['right after Status=0', 'after pending work ran']) {
    if (when !== 'right after Status=0') fb.run();
    devices.forEach((d, s) => {
      const now = fb.resetView(s, queues[s]!);
      check(
        now.every((v, i) => v === fresh[s]![i]),
        `slot ${s} (${d.type} on ${d.transport}) ${when}: registers [${now.map(hex).join(' ')}], reset values [${fresh[s]!.map(hex).join(' ')}]`,
      );
    });
  }
  fb.checkInvariants('after the reset');
}
