// Property: random descriptor tables, indirect tables, avail rings and ring
// indices, written by a driver that then kicks the queue. Whatever it
// writes, the device writes guest memory only inside what the driver handed
// over (the used ring, and the buffers of device-writable descriptors,
// directly in the table or in an indirect table a table entry names), writes
// nothing at all once Status reads 0, keeps Status and InterruptStatus legal,
// and a Status=0 write brings it back to its reset state. The board runs with
// weight 1 so each deferred step pops at most one chain: the allowed set is
// recomputed from guest memory before every step, which makes it exact even
// when the device's writes land in a table it reads later.
import * as fc from 'fast-check';
import { REG } from '../../core/uapi/mmio.js';
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
  descTableSize,
  usedRingSize,
} from '../../core/uapi/ring.js';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit } from '../../core/uapi/features.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../../core/uapi/status.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { GuestView, type Desc } from '../testkit/guest-view.js';
import { writesOutside, type Range } from '../testkit/ranges.js';
import { FUZZ_RAM_SIZE, FuzzBoard, MMIO_BASE, RAM_BASE, check, formatRanges, resetWritesNothing } from './fuzz-board.js';
import { expectResetState } from './mmio-registers.js';
import { LAYOUT } from './values.js';

const DESC = RAM_BASE + 0x1000;
const SPLIT_AVAIL = RAM_BASE + 0x1800;
const USED = RAM_BASE + 0x2000;
const TABLES = 8;
const TABLE_ENTRIES = 32;
const TABLE_BYTES = TABLE_ENTRIES * VRING_DESC_SIZE;

export type DescGen = Required<Desc>;

export type RingStep =
  /** A well-formed chain at descriptor `first` (readable segments first), published at once. */
  | { k: 'chain'; first: number; segs: { len: number; write: boolean; buf: number }[]; indirect: boolean; t: number }
  | { k: 'desc'; i: number; d: DescGen }
  | { k: 'tdesc'; t: number; e: number; d: DescGen }
  | { k: 'avail'; pos: number; head: number }
  | { k: 'publish'; n: number }
  | { k: 'kick' }
  | { k: 'usedEvent'; v: number }
  | { k: 'availFlags'; v: number }
  | { k: 'usedIdx'; v: number }
  | { k: 'reset' };

export interface RingCase {
  transport: TransportKind;
  num: number;
  indirect: boolean;
  eventIdx: boolean;
  steps: RingStep[];
}

const tableAddr = (t: number): number => RAM_BASE + LAYOUT.tables + TABLE_BYTES * t;

const descAddr: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: 255 }).map((i) => RAM_BASE + LAYOUT.buffers + 64 * i) },
  { weight: 2, arbitrary: fc.nat({ max: TABLES - 1 }).map(tableAddr) },
  { weight: 1, arbitrary: fc.constantFrom(DESC, SPLIT_AVAIL, USED, DESC + 8) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0, RAM_BASE - 8, RAM_BASE + FUZZ_RAM_SIZE - 8, RAM_BASE + FUZZ_RAM_SIZE, MMIO_BASE + REG.Status, 2 ** 32 + RAM_BASE, 2 ** 60, 0xffff_ffff_ffff_f000),
  },
);

const descLen: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(1, 4, 8, 16, 32, 64, 48, 512) },
  { weight: 2, arbitrary: fc.nat({ max: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 0x1000, 0x1_0000, 0x7fff_ffff, 0xffff_ffff) },
);

function descGen(num: number): fc.Arbitrary<DescGen> {
  return fc.record({
    addr: descAddr,
    len: descLen,
    flags: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 7 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffff }) }),
    next: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: Math.max(0, num) }) }, { weight: 1, arbitrary: fc.constantFrom(num, TABLE_ENTRIES, 0xffff) }),
  });
}

function ringStep(num: number): fc.Arbitrary<RingStep> {
  const u16 = fc.oneof(fc.nat({ max: num + 2 }), fc.nat({ max: 0xffff }));
  const seg = fc.record({ len: fc.oneof(fc.constantFrom(1, 8, 16, 64), fc.integer({ min: 1, max: 64 })), write: fc.boolean(), buf: fc.nat({ max: 255 }) });
  const chain = fc.record({
    k: fc.constant('chain' as const),
    first: fc.nat({ max: num - 1 }),
    segs: fc.array(seg, { minLength: 1, maxLength: Math.min(3, num) }).map((ss) => [...ss].sort((a, b) => Number(a.write) - Number(b.write))),
    indirect: fc.boolean(),
    t: fc.nat({ max: TABLES - 1 }),
  });
  return fc.oneof(
    { weight: 8, arbitrary: chain },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('desc' as const), i: fc.nat({ max: num - 1 }), d: descGen(num) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('tdesc' as const), t: fc.nat({ max: TABLES - 1 }), e: fc.nat({ max: TABLE_ENTRIES - 1 }), d: descGen(TABLE_ENTRIES) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('avail' as const), pos: fc.nat({ max: num - 1 }), head: fc.oneof({ weight: 5, arbitrary: fc.nat({ max: num - 1 }) }, { weight: 1, arbitrary: u16 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('publish' as const), n: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: num }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffff }) }) }) },
    { weight: 6, arbitrary: fc.constant({ k: 'kick' as const }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('usedEvent' as const), v: u16 }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('availFlags' as const), v: u16 }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('usedIdx' as const), v: u16 }) },
    { weight: 1, arbitrary: fc.constant({ k: 'reset' as const }) },
  );
}

export const ringCase: fc.Arbitrary<RingCase> = fc
  .record({
    transport: fc.constantFrom<TransportKind>('mmio', 'mmio', 'mmio-legacy'),
    num: fc.constantFrom(1, 2, 4, 8, 16, 32, 64),
    indirect: fc.boolean(),
    eventIdx: fc.boolean(),
  })
  .chain((c) => fc.array(ringStep(c.num), { minLength: 1, maxLength: 40, size: 'max' }).map((steps) => ({ ...c, steps })));

class RingDriver {
  readonly avail: number;
  private readonly g: GuestView;
  private availIdx = 0;

  constructor(
    readonly fb: FuzzBoard,
    readonly c: RingCase,
  ) {
    // Legacy rings are contiguous: avail right after the table, used at the next 4 KiB.
    this.avail = c.transport === 'mmio' ? SPLIT_AVAIL : DESC + descTableSize(c.num);
    this.g = new GuestView(fb.mem);
  }

  private u16(addr: number, v: number): void {
    this.g.setU16(addr, v);
  }

  writeDesc(at: number, d: DescGen): void {
    // Generated addresses go up to 2^64: keep them 64-bit, as a driver would write them.
    this.g.setDesc(at, { ...d, addr: d.addr % 2 ** 64 });
  }

  /** Zeroed rings, feature negotiation, queue 0 at the fixed layout, DRIVER_OK. */
  init(): void {
    const { fb, c } = this;
    fb.ram.fill(0, DESC - RAM_BASE, USED - RAM_BASE + usedRingSize(c.num));
    this.availIdx = 0;
    let f = 0n;
    if (c.transport === 'mmio') f |= bit(VIRTIO_F_VERSION_1);
    if (c.indirect) f |= bit(VIRTIO_RING_F_INDIRECT_DESC);
    if (c.eventIdx) f |= bit(VIRTIO_RING_F_EVENT_IDX);
    fb.negotiate(0, f);
    fb.write(0, REG.QueueSel, 0);
    fb.write(0, REG.QueueNum, c.num);
    if (c.transport === 'mmio') {
      fb.write(0, REG.QueueDescLow, DESC);
      fb.write(0, REG.QueueDriverLow, SPLIT_AVAIL);
      fb.write(0, REG.QueueDeviceLow, USED);
      fb.write(0, REG.QueueReady, 1);
    } else {
      fb.write(0, REG.GuestPageSize, 4096);
      fb.write(0, REG.QueueAlign, 4096);
      fb.write(0, REG.QueuePFN, DESC / 4096);
    }
    fb.write(0, REG.Status, fb.read(0, REG.Status) | VIRTIO_CONFIG_S_DRIVER_OK);
    check((fb.read(0, REG.Status) & VIRTIO_CONFIG_S_DRIVER_OK) !== 0, 'the fuzz driver could not bring the device up');
  }

  apply(s: RingStep): void {
    const { fb, c } = this;
    switch (s.k) {
      case 'chain': {
        const n = s.segs.length;
        const link = (i: number, at: (i: number) => number, next: (i: number) => number): void =>
          this.writeDesc(at(i), {
            addr: RAM_BASE + LAYOUT.buffers + 64 * s.segs[i]!.buf,
            len: s.segs[i]!.len,
            flags: (s.segs[i]!.write ? VRING_DESC_F_WRITE : 0) | (i < n - 1 ? VRING_DESC_F_NEXT : 0),
            next: next(i),
          });
        if (s.indirect) {
          for (let i = 0; i < n; i++) link(i, (e) => tableAddr(s.t) + VRING_DESC_SIZE * e, (e) => e + 1);
          this.writeDesc(DESC + VRING_DESC_SIZE * s.first, { addr: tableAddr(s.t), len: n * VRING_DESC_SIZE, flags: VRING_DESC_F_INDIRECT, next: 0 });
        } else {
          const idx = (i: number): number => (s.first + i) % c.num;
          for (let i = 0; i < n; i++) link(i, (j) => DESC + VRING_DESC_SIZE * idx(j), (j) => idx(j + 1));
        }
        this.u16(this.avail + 4 + 2 * (this.availIdx % c.num), s.first);
        this.availIdx = (this.availIdx + 1) & 0xffff;
        return this.u16(this.avail + 2, this.availIdx);
      }
      case 'desc':
        return this.writeDesc(DESC + VRING_DESC_SIZE * s.i, s.d);
      case 'tdesc':
        return this.writeDesc(tableAddr(s.t) + VRING_DESC_SIZE * s.e, s.d);
      case 'avail':
        return this.u16(this.avail + 4 + 2 * s.pos, s.head);
      case 'publish':
        this.availIdx = (this.availIdx + s.n) & 0xffff;
        return this.u16(this.avail + 2, this.availIdx);
      case 'usedEvent':
        return this.u16(this.avail + 4 + 2 * c.num, s.v);
      case 'availFlags':
        return this.u16(this.avail, s.v);
      case 'usedIdx':
        return this.u16(USED + 2, s.v);
      case 'kick':
        fb.write(0, REG.QueueNotify, 0);
        return this.runChecked();
      case 'reset':
        resetWritesNothing(fb);
        return this.init();
    }
  }

  /**
   * What the driver has handed over for writing: the used ring, and every
   * device-writable buffer a chain could reach (table entries, and entries
   * of any table an INDIRECT table entry names).
   */
  allowed(): Range[] {
    const { c } = this;
    const out: Range[] = [{ addr: USED, len: usedRingSize(c.num) }];
    const read = (at: number): DescGen | null => (this.g.inside(at, VRING_DESC_SIZE) ? this.g.desc(at) : null);
    const visit = (d: DescGen, top: boolean): void => {
      if (d.flags & VRING_DESC_F_INDIRECT) {
        if (!top) return;
        const n = Math.floor(d.len / VRING_DESC_SIZE);
        for (let e = 0; e < Math.min(n, 0x1_0000); e++) {
          const inner = read(d.addr + VRING_DESC_SIZE * e);
          if (!inner) break;
          visit(inner, false);
        }
      } else if (d.flags & VRING_DESC_F_WRITE) {
        out.push({ addr: d.addr, len: d.len });
      }
    };
    for (let i = 0; i < c.num; i++) visit(read(DESC + VRING_DESC_SIZE * i)!, true);
    return out;
  }

  /** Run deferred work one item (≤ one chain) at a time, checking every write against what was handed over. */
  runChecked(): void {
    const fb = this.fb;
    for (let n = 0; fb.board.hasDeferred(); n++) {
      check(n < 10_000, 'deferred work did not drain');
      const allowed = this.allowed();
      const before = fb.ram.slice();
      fb.board.runDeferred(1);
      const stray = writesOutside(fb.mem, before, allowed);
      check(stray.length === 0, `device wrote outside the buffers handed over: ${formatRanges(stray)}`);
    }
  }
}

/** What one case reached, for coverage checks. */
export interface RingOutcome {
  usedBuffers: number;
  ringErrors: number;
}

/** Run one case; throws InvariantError on a violated property. */
export function runRingCase(c: RingCase): RingOutcome {
  const devices = [{ type: 'rng', transport: c.transport, options: { queueSize: 64 } }];
  const fb = new FuzzBoard(devices, FUZZ_RAM_SIZE, { weight: 1 });
  const fresh = [fb.resetView(0, 1)];
  const drv = new RingDriver(fb, c);
  drv.init();
  drv.runChecked();
  c.steps.forEach((s, i) => {
    drv.apply(s);
    fb.checkInvariants(`after step ${i} (${s.k})`);
  });
  drv.runChecked();
  const slot = fb.stats().slots[0]!;
  expectResetState(fb, devices, [1], fresh);
  return { usedBuffers: slot.usedBuffers, ringErrors: slot.ringErrors };
}

export function ringProperty(): fc.IPropertyWithHooks<[RingCase]> {
  return fc.property(ringCase, (c) => {
    runRingCase(c);
  });
}
