// Property: random packed rings (spec 2.8). A driver that negotiated
// VIRTIO_F_RING_PACKED writes well-formed chains at its next_avail with the
// right wrap bits, and also random descriptors (any flags, AVAIL/USED bits
// included, any id, address and length), random indirect-table entries,
// random event suppression values in its own area and in the device's, and
// kicks. Whatever it writes, the device writes guest memory only inside
// what was handed over (the descriptor ring, where used descriptors go, its
// own event suppression area, and the device-writable buffers a ring
// descriptor or an indirect table names), uses no buffer id twice without
// the driver making it available again, writes nothing once Status reads 0,
// keeps Status and InterruptStatus legal, and a Status=0 write brings it
// back to its reset state. Weight 1: one chain per deferred step, so the
// allowed set is recomputed before every pop.
import * as fc from 'fast-check';
import { REG } from '../../core/uapi/mmio.js';
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
  VRING_PACKED_DESC,
  VRING_PACKED_DESC_F_AVAIL_MASK,
  VRING_PACKED_DESC_F_USED_MASK,
  VRING_PACKED_EVENT_SIZE,
  packedRingSize,
} from '../../core/uapi/ring.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit } from '../../core/uapi/features.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../../core/uapi/status.js';
import { GuestView } from '../testkit/guest-view.js';
import { writesOutside, type Range } from '../testkit/ranges.js';
import { FUZZ_RAM_SIZE, FuzzBoard, MMIO_BASE, RAM_BASE, check, formatRanges, resetWritesNothing } from './fuzz-board.js';
import { expectResetState } from './mmio-registers.js';
import { LAYOUT } from './values.js';

const AVAIL = VRING_PACKED_DESC_F_AVAIL_MASK;
const USED = VRING_PACKED_DESC_F_USED_MASK;
const DESC = RAM_BASE + 0x1000;
const DRIVER_EVENT = RAM_BASE + 0x2000;
const DEVICE_EVENT = RAM_BASE + 0x2010;
const TABLES = 8;
const TABLE_ENTRIES = 32;
const TABLE_BYTES = TABLE_ENTRIES * VRING_DESC_SIZE;
const tableAddr = (t: number): number => RAM_BASE + LAYOUT.tables + TABLE_BYTES * t;

export interface PackedDescGen {
  addr: number;
  len: number;
  id: number;
  flags: number;
}

export type PackedStep =
  /** A well-formed chain at next_avail (readable segments first), direct or through table t. */
  | { k: 'chain'; segs: { len: number; write: boolean; buf: number }[]; indirect: boolean; t: number; id: number }
  /** Any descriptor at ring position pos. */
  | { k: 'desc'; pos: number; d: PackedDescGen }
  | { k: 'tdesc'; t: number; e: number; d: PackedDescGen }
  /** Only the flags of the descriptor at pos (wrap bits from either lap, or anything). */
  | { k: 'flags'; pos: number; v: number }
  | { k: 'kick' }
  | { k: 'driverEvent'; flags: number; offWrap: number }
  | { k: 'deviceEvent'; flags: number; offWrap: number }
  | { k: 'reset' };

export interface PackedCase {
  num: number;
  indirect: boolean;
  eventIdx: boolean;
  steps: PackedStep[];
}

const descAddr: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: 255 }).map((i) => RAM_BASE + LAYOUT.buffers + 64 * i) },
  { weight: 2, arbitrary: fc.nat({ max: TABLES - 1 }).map(tableAddr) },
  { weight: 1, arbitrary: fc.constantFrom(DESC, DRIVER_EVENT, DEVICE_EVENT, DESC + 8) },
  { weight: 1, arbitrary: fc.constantFrom(0, RAM_BASE - 8, RAM_BASE + FUZZ_RAM_SIZE - 8, RAM_BASE + FUZZ_RAM_SIZE, MMIO_BASE + REG.Status, 2 ** 32 + RAM_BASE, 2 ** 60) },
);

const descLen: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(1, 4, 8, 16, 32, 64, 48, 512) },
  { weight: 2, arbitrary: fc.nat({ max: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 0x1000, 0x7fff_ffff, 0xffff_ffff) },
);

const wrapBits: fc.Arbitrary<number> = fc.constantFrom(0, AVAIL, USED, AVAIL | USED);

function descGen(num: number): fc.Arbitrary<PackedDescGen> {
  return fc.record({
    addr: descAddr,
    len: descLen,
    id: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: num - 1 }) }, { weight: 1, arbitrary: fc.constantFrom(num, 0xffff) }),
    flags: fc.oneof({ weight: 6, arbitrary: fc.tuple(fc.nat({ max: 7 }), wrapBits).map(([f, w]) => f | w) }, { weight: 1, arbitrary: fc.nat({ max: 0xffff }) }),
  });
}

function packedStep(num: number): fc.Arbitrary<PackedStep> {
  const u16 = fc.oneof(fc.nat({ max: num + 2 }), fc.nat({ max: 0xffff }));
  const seg = fc.record({ len: fc.oneof(fc.constantFrom(1, 8, 16, 64), fc.integer({ min: 1, max: 64 })), write: fc.boolean(), buf: fc.nat({ max: 255 }) });
  const chain = fc.record({
    k: fc.constant('chain' as const),
    segs: fc.array(seg, { minLength: 1, maxLength: Math.min(3, num) }).map((ss) => [...ss].sort((a, b) => Number(a.write) - Number(b.write))),
    indirect: fc.boolean(),
    t: fc.nat({ max: TABLES - 1 }),
    id: fc.oneof({ weight: 8, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat({ max: num }) }),
  });
  const event = fc.record({ flags: fc.oneof(fc.nat({ max: 3 }), fc.nat({ max: 0xffff })), offWrap: u16 });
  return fc.oneof(
    { weight: 10, arbitrary: chain },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('desc' as const), pos: fc.nat({ max: num - 1 }), d: descGen(num) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('tdesc' as const), t: fc.nat({ max: TABLES - 1 }), e: fc.nat({ max: TABLE_ENTRIES - 1 }), d: descGen(num) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('flags' as const), pos: fc.nat({ max: num - 1 }), v: fc.oneof(fc.tuple(fc.nat({ max: 7 }), wrapBits).map(([f, w]) => f | w), fc.nat({ max: 0xffff })) }) },
    { weight: 7, arbitrary: fc.constant({ k: 'kick' as const }) },
    { weight: 1, arbitrary: event.map((e) => ({ k: 'driverEvent' as const, ...e })) },
    { weight: 1, arbitrary: event.map((e) => ({ k: 'deviceEvent' as const, ...e })) },
    { weight: 1, arbitrary: fc.constant({ k: 'reset' as const }) },
  );
}

export const packedCase: fc.Arbitrary<PackedCase> = fc
  .record({
    // Any size up to the device's 64: packed rings need not be powers of 2.
    num: fc.oneof(fc.constantFrom(1, 2, 3, 4, 8, 64), fc.integer({ min: 1, max: 64 })),
    indirect: fc.boolean(),
    eventIdx: fc.boolean(),
  })
  .chain((c) => fc.array(packedStep(c.num), { minLength: 1, maxLength: 40, size: 'max' }).map((steps) => ({ ...c, steps })));

class PackedDriver {
  private readonly g: GuestView;
  private nextAvail = 0;
  private availWrap = true;
  private nextId = 0;
  /**
   * Per buffer id: ring descriptors the driver wrote with it (each can end at
   * most one chain), and the used descriptors the device wrote for it;
   * the second never passes the first.
   */
  readonly published = new Map<number, number>();
  readonly completed = new Map<number, number>();

  constructor(
    readonly fb: FuzzBoard,
    readonly c: PackedCase,
  ) {
    this.g = new GuestView(fb.mem);
  }

  private writeDesc(at: number, d: PackedDescGen, flags = true): void {
    this.g.setU32(at, d.addr % 0x1_0000_0000);
    this.g.setU32(at + 4, Math.floor(d.addr / 0x1_0000_0000) % 0x1_0000_0000);
    this.g.setU32(at + VRING_PACKED_DESC.len, d.len);
    this.g.setU16(at + VRING_PACKED_DESC.id, d.id);
    if (flags) this.g.setU16(at + VRING_PACKED_DESC.flags, d.flags);
  }

  private publishId(id: number): void {
    this.published.set(id, (this.published.get(id) ?? 0) + 1);
  }

  init(): void {
    const { fb, c } = this;
    fb.ram.fill(0, DESC - RAM_BASE, DEVICE_EVENT - RAM_BASE + VRING_PACKED_EVENT_SIZE);
    this.nextAvail = 0;
    this.availWrap = true;
    this.published.clear();
    this.completed.clear();
    let f = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_RING_PACKED);
    if (c.indirect) f |= bit(VIRTIO_RING_F_INDIRECT_DESC);
    if (c.eventIdx) f |= bit(VIRTIO_RING_F_EVENT_IDX);
    fb.negotiate(0, f);
    fb.write(0, REG.QueueSel, 0);
    fb.write(0, REG.QueueNum, c.num);
    fb.write(0, REG.QueueDescLow, DESC);
    fb.write(0, REG.QueueDriverLow, DRIVER_EVENT);
    fb.write(0, REG.QueueDeviceLow, DEVICE_EVENT);
    fb.write(0, REG.QueueReady, 1);
    fb.write(0, REG.Status, fb.read(0, REG.Status) | VIRTIO_CONFIG_S_DRIVER_OK);
    check((fb.read(0, REG.Status) & VIRTIO_CONFIG_S_DRIVER_OK) !== 0, 'the fuzz driver could not bring the device up');
    check(fb.read(0, REG.QueueReady) === 1, `a packed ring of ${c.num} was refused: ${fb.stats().slots[0]!.lastGuestError}`);
  }

  apply(s: PackedStep): void {
    const { fb, c } = this;
    switch (s.k) {
      case 'chain': {
        const id = s.id >= 0 ? s.id : this.nextId++ % c.num;
        const bits = (wrap: boolean): number => (wrap ? AVAIL : USED);
        const seg = (i: number): PackedDescGen => ({
          addr: RAM_BASE + LAYOUT.buffers + 64 * s.segs[i]!.buf,
          len: s.segs[i]!.len,
          id,
          flags: s.segs[i]!.write ? VRING_DESC_F_WRITE : 0,
        });
        const ring: PackedDescGen[] = [];
        if (s.indirect) {
          s.segs.forEach((_, i) => this.writeDesc(tableAddr(s.t) + VRING_DESC_SIZE * i, seg(i)));
          ring.push({ addr: tableAddr(s.t), len: s.segs.length * VRING_DESC_SIZE, id, flags: VRING_DESC_F_INDIRECT });
        } else {
          s.segs.forEach((_, i) => ring.push({ ...seg(i), flags: seg(i).flags | (i < s.segs.length - 1 ? VRING_DESC_F_NEXT : 0) }));
        }
        const head = this.nextAvail;
        let headFlags = 0;
        ring.forEach((d, i) => {
          const flags = d.flags | bits(this.availWrap);
          const at = DESC + VRING_DESC_SIZE * this.nextAvail;
          if (i === 0) {
            headFlags = flags;
            this.writeDesc(at, d, false);
          } else this.writeDesc(at, { ...d, flags });
          this.publishId(id);
          if (++this.nextAvail === c.num) {
            this.nextAvail = 0;
            this.availWrap = !this.availWrap;
          }
        });
        return this.g.setU16(DESC + VRING_DESC_SIZE * head + VRING_PACKED_DESC.flags, headFlags);
      }
      case 'desc':
        // Any id the driver writes may be made available by it.
        this.publishId(s.d.id);
        return this.writeDesc(DESC + VRING_DESC_SIZE * s.pos, s.d);
      case 'tdesc':
        return this.writeDesc(tableAddr(s.t) + VRING_DESC_SIZE * s.e, s.d);
      case 'flags': {
        const at = DESC + VRING_DESC_SIZE * s.pos;
        this.publishId(this.g.u16(at + VRING_PACKED_DESC.id));
        return this.g.setU16(at + VRING_PACKED_DESC.flags, s.v);
      }
      case 'driverEvent':
        this.g.setU16(DRIVER_EVENT, s.offWrap);
        return this.g.setU16(DRIVER_EVENT + 2, s.flags);
      case 'deviceEvent':
        this.g.setU16(DEVICE_EVENT, s.offWrap);
        return this.g.setU16(DEVICE_EVENT + 2, s.flags);
      case 'kick':
        fb.write(0, REG.QueueNotify, 0);
        return this.runChecked();
      case 'reset':
        resetWritesNothing(fb);
        return this.init();
    }
  }

  /** The descriptor ring, the device's area, and every device-writable buffer a ring descriptor or a table it names reaches. */
  allowed(): Range[] {
    const { c } = this;
    const out: Range[] = [
      { addr: DESC, len: packedRingSize(c.num) },
      { addr: DEVICE_EVENT, len: VRING_PACKED_EVENT_SIZE },
    ];
    const read = (at: number): PackedDescGen | null =>
      this.g.inside(at, VRING_DESC_SIZE)
        ? { addr: this.g.u32(at) + this.g.u32(at + 4) * 0x1_0000_0000, len: this.g.u32(at + 8), id: this.g.u16(at + 12), flags: this.g.u16(at + 14) }
        : null;
    for (let i = 0; i < c.num; i++) {
      const d = read(DESC + VRING_DESC_SIZE * i)!;
      if (d.flags & VRING_DESC_F_INDIRECT) {
        for (let e = 0; e < Math.min(Math.floor(d.len / VRING_DESC_SIZE), 0x1_0000); e++) {
          const inner = read(d.addr + VRING_DESC_SIZE * e);
          if (!inner) break;
          if (inner.flags & VRING_DESC_F_WRITE) out.push({ addr: inner.addr, len: inner.len });
        }
      } else if (d.flags & VRING_DESC_F_WRITE) {
        out.push({ addr: d.addr, len: d.len });
      }
    }
    return out;
  }

  /** Used descriptors the last step wrote: ring positions that changed and now have AVAIL = USED. */
  private countUsed(before: Uint8Array): void {
    for (let pos = 0; pos < this.c.num; pos++) {
      const at = DESC + VRING_DESC_SIZE * pos;
      const off = at - RAM_BASE;
      let changed = false;
      for (let b = 0; b < VRING_DESC_SIZE && !changed; b++) changed = this.fb.ram[off + b] !== before[off + b];
      if (!changed) continue;
      const flags = this.g.u16(at + VRING_PACKED_DESC.flags);
      if (((flags & AVAIL) !== 0) !== ((flags & USED) !== 0)) continue;
      const id = this.g.u16(at + VRING_PACKED_DESC.id);
      const done = (this.completed.get(id) ?? 0) + 1;
      this.completed.set(id, done);
      check(done <= (this.published.get(id) ?? 0), `buffer id ${id} used ${done} times, written into ${this.published.get(id) ?? 0} ring descriptors`);
    }
  }

  runChecked(): void {
    const fb = this.fb;
    for (let n = 0; fb.board.hasDeferred(); n++) {
      check(n < 10_000, 'deferred work did not drain');
      const allowed = this.allowed();
      const before = fb.ram.slice();
      const used = fb.stats().slots[0]!.usedBuffers;
      fb.board.runDeferred(1);
      const stray = writesOutside(fb.mem, before, allowed);
      check(stray.length === 0, `device wrote outside what was handed over: ${formatRanges(stray)}`);
      // A buffer over the ring itself makes the device's data writes look like
      // used descriptors: count completions only when no writable buffer does.
      const ringEnd = DESC + packedRingSize(this.c.num);
      const intoRing = allowed.slice(2).some((r) => r.addr < ringEnd && DESC < r.addr + r.len);
      if (!intoRing && fb.stats().slots[0]!.usedBuffers !== used) this.countUsed(before);
    }
  }
}

export interface PackedOutcome {
  num: number;
  usedBuffers: number;
  ringErrors: number;
}

/** Run one case; throws InvariantError on a violated property. */
export function runPackedCase(c: PackedCase): PackedOutcome {
  const devices = [{ type: 'rng', transport: 'mmio' as const, options: { queueSize: 64 } }];
  const fb = new FuzzBoard(devices, FUZZ_RAM_SIZE, { weight: 1 });
  const fresh = [fb.resetView(0, 1)];
  const drv = new PackedDriver(fb, c);
  drv.init();
  drv.runChecked();
  c.steps.forEach((s, i) => {
    drv.apply(s);
    fb.checkInvariants(`after step ${i} (${s.k})`);
  });
  drv.runChecked();
  const slot = fb.stats().slots[0]!;
  expectResetState(fb, devices, [1], fresh);
  return { num: c.num, usedBuffers: slot.usedBuffers, ringErrors: slot.ringErrors };
}

export function packedRingProperty(): fc.IPropertyWithHooks<[PackedCase]> {
  return fc.property(packedCase, (c) => {
    runPackedCase(c);
  });
}
