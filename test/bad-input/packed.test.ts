// Bad input on packed rings (VIRTIO_F_RING_PACKED, spec 2.8), the classes
// after BI-30 in the README's table: queue layout (BI-31), AVAIL/USED wrap
// bits (BI-32), buffer ids (BI-33), chain length and descriptors in flight
// (BI-34), INDIRECT forms (BI-35), buffers (BI-36), event suppression
// (BI-37) and a driver confusing the ring kinds (BI-38). Written as raw
// register and guest-memory writes through the packed queue builder; every
// test ends with the board answering, the bystander served and the device
// back after a reset.
import { describe, expect } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit, hi32 } from '../../core/uapi/features.js';
import { MMIO_WINDOW_SIZE, REG, VIRTIO_MMIO_INT_VRING } from '../../core/uapi/mmio.js';
import {
  VRING_DESC_F_INDIRECT as INDIRECT,
  VRING_DESC_F_NEXT as NEXT,
  VRING_DESC_F_WRITE as WRITE,
  VRING_PACKED_EVENT_FLAG_DESC,
  VRING_PACKED_EVENT_FLAG_DISABLE,
  VRING_PACKED_EVENT_FLAG_ENABLE,
} from '../../core/uapi/ring.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { P_AVAIL, P_USED, PackedQueueBuilder, availBits } from '../../tools/testkit/packed-queue-builder.js';
import { POISON, R, W } from '../../tools/testkit/queue-builder.js';
import { snapshot, writesOutside } from '../../tools/testkit/ranges.js';
import { packedFeatures, splitFeatures, type RawDriver } from '../helpers/raw-driver.js';
import {
  bringUp,
  bringUpPacked,
  expectPackedNeedsReset,
  expectRecovered,
  kick,
  onBoard,
  onBoth,
  requestPacked,
  type Rig,
} from './harness.js';
import { HOLD_Q, PROBE_FILL, PROBE_TYPE, ProbeDevice } from './probe-device.js';

const PROBE = { dut: { type: PROBE_TYPE, transport: 'mmio' as const } };

/** QueueNum and the three addresses, written as given (no RAM is touched). */
function programRaw(d: RawDriver, q: number, num: number, desc: number, driver: number, device: number): void {
  d.write(REG.QueueSel, q);
  d.write(REG.QueueNum, num);
  const pair = (low: number, a: number): void => {
    d.write(low, a % 0x1_0000_0000);
    d.write(low + 4, Math.floor(a / 0x1_0000_0000));
  };
  pair(REG.QueueDescLow, desc);
  pair(REG.QueueDriverLow, driver);
  pair(REG.QueueDeviceLow, device);
}

/** A packed ring of `size`, a malformed chain built on it, a kick: NEEDS_RESET with `reason`, nothing used. */
async function malformed(rig: Rig, build: (q: PackedQueueBuilder, rig: Rig) => void, reason: RegExp, opts: { size?: number; features?: (o: bigint) => bigint } = {}): Promise<void> {
  const [q] = bringUpPacked(rig, rig.dut, [opts.size ?? 8], opts.features ? { features: opts.features } : {});
  build(q!, rig);
  await kick(rig, rig.dut, 0);
  await expectPackedNeedsReset(rig, q!, 0, reason);
  expect(rig.stats().usedBuffers, 'nothing was used').toBe(0);
  await expectRecovered(rig, [8], {}, 'packed');
}

/** Kick and expect exactly `n` used descriptors, no NEEDS_RESET. */
async function served(rig: Rig, q: PackedQueueBuilder, n = 1): Promise<{ id: number; len: number }[]> {
  await kick(rig, rig.dut, 0);
  const got: { id: number; len: number }[] = [];
  await rig.until(`${n} used descriptor(s)`, () => {
    got.push(...q.reclaim());
    return got.length >= n;
  });
  expect(got).toHaveLength(n);
  expect(rig.dut.status() & NEEDS_RESET).toBe(0);
  return got;
}

describe('BI-31 packed queue layout', () => {
  onBoth('BI-31 any QueueNum from 1 to QueueNumMax is a packed ring (3, 100, 1023, 1024); the ring is served across its end', async (rig) => {
    for (const n of [3, 100, 1023, 1024]) {
      const [q] = bringUpPacked(rig, rig.dut, [n]);
      rig.dut.write(REG.QueueSel, 0);
      expect(rig.dut.read(REG.QueueReady), `QueueNum ${n}`).toBe(1);
      // Two laps of one-descriptor chains on the small ring: the wrap counters flip.
      const laps = n === 3 ? 2 * n + 1 : 2;
      for (let i = 0; i < laps; i++) {
        const r = await requestPacked(rig, rig.dut, q!, 0, [W(16)]);
        expect(r.used).toEqual({ id: r.chain.id, len: 16 });
      }
    }
    expect(rig.stats().guestErrors).toBe(0);
    await expectRecovered(rig, [8], {}, 'packed');
  });

  const alloc = (rig: Rig) => ({ desc: rig.alloc.take(16 * 8, 16), driver: rig.alloc.take(4, 4), device: rig.alloc.take(4, 4) });
  const cases: [string, (rig: Rig) => [number, number, number, number], RegExp][] = [
    ['QueueNum 0', (rig) => { const a = alloc(rig); return [0, a.desc, a.driver, a.device]; }, /QueueNum is 0/],
    ['QueueNum above QueueNumMax', (rig) => { const a = alloc(rig); return [1025, a.desc, a.driver, a.device]; }, /QueueNumMax/],
    ['a descriptor ring 8-aligned, not 16', (rig) => { const a = alloc(rig); return [8, a.desc + 8, a.driver, a.device]; }, /descriptor ring address is not 16-aligned/],
    ['a driver area 2-aligned, not 4', (rig) => { const a = alloc(rig); return [8, a.desc, a.driver + 2, a.device]; }, /driver event suppression area address is not 4-aligned/],
    ['a device area 2-aligned, not 4', (rig) => { const a = alloc(rig); return [8, a.desc, a.driver, a.device + 2]; }, /device event suppression area address is not 4-aligned/],
    ['a zero device area address', (rig) => { const a = alloc(rig); return [8, a.desc, a.driver, 0]; }, /address is 0/],
    ['the driver area inside the descriptor ring', (rig) => { const a = alloc(rig); return [8, a.desc, a.desc + 64, a.device]; }, /overlaps/],
    ['the two event areas at one address', (rig) => { const a = alloc(rig); return [8, a.desc, a.driver, a.driver]; }, /overlaps/],
    ['a descriptor ring crossing the end of RAM', (rig) => { const a = alloc(rig); return [8, rig.mem.base + rig.mem.size - 64, a.driver, a.device]; }, /not inside guest RAM/],
    ['a descriptor ring in a register window', (rig) => { const a = alloc(rig); return [8, PLATFORM.MMIO_BASE, a.driver, a.device]; }, /not inside guest RAM/],
    ['a device area in the device\'s own register window', (rig) => { const a = alloc(rig); return [8, a.desc, a.driver, PLATFORM.MMIO_BASE + 0x100]; }, /not inside guest RAM/],
    ['a descriptor ring above 4 GiB', (rig) => { const a = alloc(rig); return [8, a.desc + 2 ** 32, a.driver, a.device]; }, /not inside guest RAM/],
  ];
  for (const [what, layout, reason] of cases) {
    onBoth(`BI-31 ${what}: refused at QueueReady=1`, async (rig) => {
      rig.dut.negotiate({ features: packedFeatures });
      const [num, desc, driver, device] = layout(rig);
      programRaw(rig.dut, 0, num, desc, driver, device);
      rig.dut.write(REG.QueueReady, 1);
      expect(rig.dut.read(REG.QueueReady)).toBe(0);
      expect(`${rig.stats().lastGuestError}`).toMatch(reason);
      await expectRecovered(rig, [8], {}, 'packed');
    });
  }

  onBoard('BI-31 a QueueNum that is not a power of 2 is only a guest error without RING_PACKED', async (rig) => {
    rig.dut.negotiate({ features: packedFeatures });
    rig.dut.write(REG.QueueSel, 0);
    const before = rig.stats().guestErrors;
    rig.dut.write(REG.QueueNum, 100);
    expect(rig.stats().guestErrors).toBe(before);
    rig.dut.negotiate({ features: splitFeatures });
    rig.dut.write(REG.QueueSel, 0);
    rig.dut.write(REG.QueueNum, 100);
    expect(rig.stats().guestErrors).toBe(before + 1);
    expect(`${rig.stats().lastGuestError}`).toMatch(/QueueNum 100 invalid/);
  });
});

describe('BI-32 AVAIL/USED wrap bits', () => {
  onBoth('BI-32 a chain whose second descriptor carries the other lap\'s bits: NEEDS_RESET, queue parked', (rig) =>
    malformed(rig, (q) => {
      const a = q.buffer(W(8)).addr;
      q.raw(
        [
          { addr: a, len: 8, flags: WRITE | NEXT },
          { addr: a, len: 8, flags: WRITE },
        ],
        { bits: (i, wrap) => (i === 0 ? availBits(wrap) : availBits(!wrap)) },
      );
    }, /not available.*bad AVAIL\/USED bits inside a chain/),
  );
  onBoth('BI-32 a chain whose second descriptor has AVAIL = USED (a used descriptor): NEEDS_RESET', (rig) =>
    malformed(rig, (q) => {
      const a = q.buffer(W(8)).addr;
      q.raw(
        [
          { addr: a, len: 8, flags: WRITE | NEXT },
          { addr: a, len: 8, flags: WRITE },
        ],
        { bits: (i, wrap) => (i === 0 ? availBits(wrap) : P_AVAIL | P_USED) },
      );
    }, /bad AVAIL\/USED bits/),
  );
  onBoard('BI-32 a chain crossing the end of the ring: its descriptor at position 0 needs the next lap\'s bits', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [4]);
    for (let i = 0; i < 3; i++) await requestPacked(rig, rig.dut, q!, 0, [W(8)]);
    // Positions 3 and 0: legal with the next lap's bits at 0.
    q!.chain([R(4), W(8)]);
    expect(await served(rig, q!)).toHaveLength(1);
    // The same crossing with the old lap's bits at position 0 (wrapping at 3 again after 3 more).
    for (let i = 0; i < 2; i++) await requestPacked(rig, rig.dut, q!, 0, [W(8)]);
    const a = q!.buffer(W(8)).addr;
    q!.raw(
      [
        { addr: a, len: 8, flags: WRITE | NEXT, id: 2 },
        { addr: a, len: 8, flags: WRITE, id: 2 },
      ],
      // i = 1 is placed after the wrap: !wrap is the head's (old) lap
      { bits: (i, wrap) => availBits(i === 0 ? wrap : !wrap) },
    );
    await kick(rig, rig.dut, 0);
    await expectPackedNeedsReset(rig, q!, 0, /descriptor 0 is not available/);
    await expectRecovered(rig, [8], {}, 'packed');
  });
  onBoth('BI-32 a head with AVAIL = USED, or with the next lap\'s bits, is not available: nothing consumed, no error, served once made available', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    const c = q!.chain([W(16)], { publish: false });
    for (const bits of [P_AVAIL | P_USED, P_USED, 0]) {
      q!.setFlags(c.head, WRITE | bits);
      await kick(rig, rig.dut, 0);
      expect(rig.stats().usedBuffers).toBe(0);
      expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    }
    q!.setFlags(c.head, WRITE | availBits(true));
    expect(await served(rig, q!)).toEqual([{ id: c.id, len: 16 }]);
    await expectRecovered(rig, [8], {}, 'packed');
  });
});

describe('BI-33 buffer ids', () => {
  for (const id of [8, 0xffff]) {
    onBoth(`BI-33 buffer id ${id} on a ring of 8: NEEDS_RESET`, (rig) =>
      malformed(rig, (q) => q.raw([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE, id }]), /buffer id \d+ ≥ queue size 8/),
    );
  }
  onBoard('BI-33 the id is the last descriptor\'s (spec 2.8.6); other ids in the chain are not looked at', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    const a = q!.buffer(W(8)).addr;
    q!.raw(
      [
        { addr: a, len: 8, flags: WRITE | NEXT, id: 0xffff },
        { addr: a, len: 8, flags: WRITE, id: 6 },
      ],
      { owned: 2 },
    );
    expect(await served(rig, q!)).toEqual([{ id: 6, len: 16 }]);
    await expectRecovered(rig, [8], {}, 'packed');
  });
  onBoard(
    'BI-33 a buffer id made available again while in flight: NEEDS_RESET; the held chain is never completed twice',
    async (rig) => {
      const d = rig.dut;
      const [, hold] = bringUpPacked(rig, d, [8, 8]);
      const held = hold!.chain([W(16)], { id: 3 });
      await kick(rig, d, HOLD_Q);
      expect(ProbeDevice.last!.held).toHaveLength(1);
      hold!.raw([{ addr: hold!.buffer(W(16)).addr, len: 16, flags: WRITE, id: 3 }]);
      await kick(rig, d, HOLD_Q);
      await expectPackedNeedsReset(rig, hold!, HOLD_Q, /buffer id 3 made available again while in flight/);
      // The model completes what it holds: the queue is parked, so no used descriptor is written.
      const before = snapshot(rig.mem);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(writesOutside(rig.mem, before, held.bufs)).toEqual([]);
      expect(rig.stats().usedBuffers).toBe(0);
      await expectRecovered(rig, [8, 8], {}, 'packed');
    },
    PROBE,
  );
  onBoard(
    'BI-33 chains used out of order: each used descriptor names its id and the driver walks them by their descriptor counts',
    async (rig) => {
      const d = rig.dut;
      const [, hold] = bringUpPacked(rig, d, [8, 5]);
      // Three chains of 1, 2 and 1 descriptors held, then completed in reverse order.
      const c1 = hold!.chain([W(8)]);
      const c2 = hold!.chain([R(4), W(8)]);
      const c3 = hold!.chain([W(4)]);
      await kick(rig, d, HOLD_Q);
      const dev = ProbeDevice.last!;
      expect(dev.held.map((c) => c.head)).toEqual([c1.id, c2.id, c3.id]);
      dev.held.reverse();
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      const used = hold!.reclaim();
      expect(used).toEqual([
        { id: c3.id, len: 4 },
        { id: c2.id, len: 8 },
        { id: c1.id, len: 8 },
      ]);
      expect(new Uint8Array(hold!.g.bytes(c2.bufs[1]!.addr, 8))).toEqual(new Uint8Array(8).fill(PROBE_FILL));
      // The next lap starts where the walk says: 4 descriptors used on a ring of 5.
      expect([hold!.lastUsed, hold!.usedWrap]).toEqual([4, true]);
      const c4 = hold!.chain([R(4), W(8)]);
      await kick(rig, d, HOLD_Q);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(hold!.reclaim()).toEqual([{ id: c4.id, len: 8 }]);
      expect([hold!.lastUsed, hold!.usedWrap]).toEqual([1, false]);
      expect(d.status() & NEEDS_RESET).toBe(0);
      await expectRecovered(rig, [8, 8], {}, 'packed');
    },
    PROBE,
  );
});

describe('BI-34 chain length and descriptors in flight', () => {
  onBoth('BI-34 a chain of exactly the ring\'s size is served', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    q!.chain(Array.from({ length: 8 }, () => W(4)));
    expect(await served(rig, q!)).toEqual([{ id: 0, len: 32 }]);
    await expectRecovered(rig, [8], {}, 'packed');
  });
  onBoth('BI-34 a NEXT chain that runs round the ring onto its own head: NEEDS_RESET, the walk bounded by the ring', (rig) =>
    malformed(rig, (q) => {
      const a = q.buffer(W(4)).addr;
      // Eight descriptors with NEXT all the way: the ninth would be the head again (the old lap's bits).
      q.raw(Array.from({ length: 8 }, () => ({ addr: a, len: 4, flags: WRITE | NEXT })));
    }, /not available|more than 8 descriptors/),
  );
  onBoard(
    'BI-34 positions republished while their chains are in flight: more descriptors in flight than the ring, NEEDS_RESET',
    async (rig) => {
      const d = rig.dut;
      const [, hold] = bringUpPacked(rig, d, [8, 8]);
      for (let i = 0; i < 4; i++) hold!.chain([R(4), W(8)]);
      await kick(rig, d, HOLD_Q);
      expect(ProbeDevice.last!.held).toHaveLength(4);
      // The ring is full of chains in flight; the driver makes position 0 available again anyway.
      hold!.raw([{ addr: hold!.buffer(W(8)).addr, len: 8, flags: WRITE, id: 7 }]);
      await kick(rig, d, HOLD_Q);
      await expectPackedNeedsReset(rig, hold!, HOLD_Q, /9 descriptors in flight, more than the ring's 8/);
      await expectRecovered(rig, [8, 8], {}, 'packed');
    },
    PROBE,
  );
});

describe('BI-35 INDIRECT on a packed ring', () => {
  const noIndirect = (o: bigint): bigint => packedFeatures(o) & ~bit(VIRTIO_RING_F_INDIRECT_DESC);
  onBoth('BI-35 INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated', (rig) =>
    malformed(rig, (q) => q.chain([W(16)], { indirect: true }), /INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC/, { features: noIndirect }),
  );
  onBoth('BI-35 INDIRECT together with NEXT', (rig) =>
    malformed(rig, (q) => {
      const t = q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }]);
      const b = q.buffer(W(8)).addr;
      q.raw([
        { addr: t, len: 16, flags: INDIRECT | NEXT },
        { addr: b, len: 8, flags: WRITE },
      ]);
    }, /INDIRECT together with NEXT/),
  );
  onBoth('BI-35 normal descriptors then an indirect one (legal on a split ring, not on a packed one)', (rig) =>
    malformed(rig, (q) => {
      const r = q.buffer(R(4)).addr;
      const t = q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }]);
      q.raw([
        { addr: r, len: 4, flags: NEXT },
        { addr: t, len: 16, flags: INDIRECT },
      ]);
    }, /INDIRECT descriptor inside a NEXT chain/),
  );
  onBoth('BI-35 INDIRECT inside an indirect table', (rig) =>
    malformed(rig, (q) => {
      const inner = q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }]);
      const outer = q.table([{ addr: inner, len: 16, flags: INDIRECT }]);
      q.raw([{ addr: outer, len: 16, flags: INDIRECT }]);
    }, /INDIRECT descriptor inside an indirect table/),
  );
  const tables: [string, (q: PackedQueueBuilder, rig: Rig) => [number, number], RegExp][] = [
    ['length 0', (q) => [q.table([]), 0], /not a non-zero multiple of 16/],
    ['length 24', (q) => [q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }, { addr: 0, len: 0 }]), 24], /not a non-zero multiple of 16/],
    ['9 entries on a ring of 8', (q) => [q.table(Array.from({ length: 9 }, () => ({ addr: q.buffer(W(4)).addr, len: 4, flags: WRITE }))), 9 * 16], /exceeds queue size 8/],
    ['outside RAM', () => [PLATFORM.RAM_BASE - 4096, 16], /outside guest RAM/],
    ['crossing the end of RAM', (_q, rig) => [rig.mem.base + rig.mem.size - 16, 32], /outside guest RAM/],
    ['in a register window', () => [PLATFORM.MMIO_BASE + MMIO_WINDOW_SIZE, 16], /outside guest RAM/],
  ];
  for (const [what, table, reason] of tables) {
    onBoth(`BI-35 indirect table ${what}`, (rig) =>
      malformed(rig, (q, r) => {
        const [addr, len] = table(q, r);
        q.raw([{ addr, len, flags: INDIRECT }]);
      }, reason),
    );
  }
  onBoth('BI-35 the legal form: NEXT and ids inside the table ignored, WRITE on the ring descriptor ignored, served as one descriptor', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    const r = q!.buffer(R(4));
    const w1 = q!.buffer(W(8));
    const w2 = q!.buffer(W(8));
    const t = q!.table([
      { addr: r.addr, len: 4, flags: NEXT, id: 0x1234 },
      { addr: w1.addr, len: 8, flags: WRITE | NEXT, id: 7 },
      { addr: w2.addr, len: 8, flags: WRITE },
    ]);
    q!.raw([{ addr: t, len: 48, flags: INDIRECT | WRITE, id: 2 }], { owned: 1 });
    expect(await served(rig, q!)).toEqual([{ id: 2, len: 16 }]);
    // Written (entropy may hold the poison byte itself; all 8 of them is 2^-64).
    expect(q!.g.bytes(w2.addr, 8).every((b) => b === POISON)).toBe(false);
    // One ring descriptor used: the next chain goes at position 1.
    expect(q!.lastUsed).toBe(1);
    await expectRecovered(rig, [8], {}, 'packed');
  });
});

describe('BI-36 packed buffers', () => {
  const cases: [string, (q: PackedQueueBuilder, rig: Rig) => { addr: number; len: number; flags: number }[], RegExp][] = [
    ['below RAM', () => [{ addr: PLATFORM.RAM_BASE - 64, len: 64, flags: WRITE }], /outside guest RAM/],
    ['spanning the end of RAM', (_q, rig) => [{ addr: rig.mem.base + rig.mem.size - 8, len: 64, flags: WRITE }], /outside guest RAM/],
    ['over the device\'s own register window', () => [{ addr: PLATFORM.MMIO_BASE, len: 0x200, flags: WRITE }], /outside guest RAM/],
    ['with a 64-bit address', () => [{ addr: 2 ** 63, len: 8, flags: WRITE }], /outside guest RAM/],
    ['of length 0', (q) => [{ addr: q.buffer(W(8)).addr, len: 0, flags: WRITE }], /length 0/],
    ['readable after writable', (q) => [
      { addr: q.buffer(W(8)).addr, len: 8, flags: WRITE | NEXT },
      { addr: q.buffer(R(8)).addr, len: 8, flags: 0 },
    ], /device-readable descriptor after a device-writable one/],
  ];
  for (const [what, descs, reason] of cases) {
    onBoth(`BI-36 a buffer ${what}: NEEDS_RESET`, (rig) => malformed(rig, (b, r) => b.raw(descs(b, r)), reason));
  }
  onBoard(
    'BI-36 a chain of more than 2^32 bytes: NEEDS_RESET; exactly 2^32 is served',
    async (rig) => {
      const ramSize = 64 << 20;
      const whole = (n: number): { addr: number; len: number; flags: number }[] =>
        Array.from({ length: n }, (_, i) => ({ addr: rig.mem.base, len: ramSize, flags: i < n - 1 ? NEXT : 0 }));
      const [q] = bringUpPacked(rig, rig.dut, [128]);
      q!.raw(whole(64), { owned: 64 });
      expect(await served(rig, q!)).toEqual([{ id: 0, len: 0 }]);
      q!.raw(whole(65));
      await kick(rig, rig.dut, 0);
      await expectPackedNeedsReset(rig, q!, 0, /more than 2\^32 bytes/);
      await expectRecovered(rig, [8], {}, 'packed');
    },
    { dut: { type: 'rng', transport: 'mmio', options: { queueSize: 128 } }, ramSize: 64 << 20 },
  );
  onBoard('BI-36 what the device writes: only the device-writable buffers, the used descriptors and its own event area (RAM diff)', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    const chains = [q!.chain([R(16), W(32)]), q!.chain([W(8), W(8)], { indirect: true }), q!.chain([R(64)])];
    const before = snapshot(rig.mem);
    const used = await served(rig, q!, 3);
    expect(used).toEqual([
      { id: chains[0]!.id, len: 32 },
      { id: chains[1]!.id, len: 16 },
      { id: chains[2]!.id, len: 0 },
    ]);
    const allowed = [...q!.deviceAreas(), ...chains.flatMap((c) => c.bufs.filter((b) => b.write))];
    expect(writesOutside(rig.mem, before, allowed)).toEqual([]);
    await expectRecovered(rig, [8], {}, 'packed');
  });
});

describe('BI-37 event suppression', () => {
  /** The VRING bit of InterruptStatus after one request, then ACKed. */
  async function interrupted(rig: Rig, q: PackedQueueBuilder): Promise<boolean> {
    rig.dut.ack(VIRTIO_MMIO_INT_VRING);
    await requestPacked(rig, rig.dut, q, 0, [W(8)]);
    await rig.settle();
    const got = (rig.dut.interruptStatus() & VIRTIO_MMIO_INT_VRING) !== 0;
    rig.dut.ack(VIRTIO_MMIO_INT_VRING);
    return got;
  }
  onBoth('BI-37 the driver area: DISABLE never interrupts, ENABLE always; DESC without EVENT_IDX and the reserved value 3 interrupt (spurious at worst)', async (rig) => {
    const noEventIdx = (o: bigint): bigint => packedFeatures(o) & ~bit(VIRTIO_RING_F_EVENT_IDX);
    const [q] = bringUpPacked(rig, rig.dut, [8], { features: noEventIdx });
    q!.setDriverEvent(VRING_PACKED_EVENT_FLAG_DISABLE);
    expect(await interrupted(rig, q!)).toBe(false);
    q!.setDriverEvent(VRING_PACKED_EVENT_FLAG_ENABLE);
    expect(await interrupted(rig, q!)).toBe(true);
    q!.setDriverEvent(VRING_PACKED_EVENT_FLAG_DESC, 0x7fff);
    expect(await interrupted(rig, q!)).toBe(true);
    q!.setDriverEvent(3);
    expect(await interrupted(rig, q!)).toBe(true);
    // Without EVENT_IDX the device never writes DESC into its own area.
    expect(q!.deviceEvent().flags).toBe(VRING_PACKED_EVENT_FLAG_ENABLE);
    await expectRecovered(rig, [8], {}, 'packed');
  });
  onBoth('BI-37 with EVENT_IDX: an interrupt when the used position passes off_wrap, none before; a poisoned off_wrap is at worst spurious', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    // The first used buffer always notifies (nothing signalled yet).
    q!.setDriverEvent(VRING_PACKED_EVENT_FLAG_DESC, PackedQueueBuilder.offWrap(5, true));
    expect(await interrupted(rig, q!)).toBe(true);
    // Positions 1..4: not yet at 5.
    for (let i = 1; i <= 4; i++) expect(await interrupted(rig, q!), `position ${i}`).toBe(false);
    // The buffer at position 5 passes the event.
    expect(await interrupted(rig, q!)).toBe(true);
    // An event in the next lap (position 1, wrap 0): not at 6, 7, then at 0 and 1 of the next lap.
    q!.setDriverEvent(VRING_PACKED_EVENT_FLAG_DESC, PackedQueueBuilder.offWrap(1, false));
    expect(await interrupted(rig, q!)).toBe(false);
    expect(await interrupted(rig, q!)).toBe(false);
    expect(await interrupted(rig, q!)).toBe(false);
    expect(await interrupted(rig, q!)).toBe(true);
    q!.setDriverEvent(VRING_PACKED_EVENT_FLAG_DESC, 0xffff);
    for (let i = 0; i < 10; i++) await interrupted(rig, q!);
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    expect(rig.stats().ringErrors).toBe(0);
    await expectRecovered(rig, [8], {}, 'packed');
  });
  onBoth('BI-37 the device area: with EVENT_IDX the device asks for a kick at next_avail (DESC); a driver that scribbles on it changes nothing the device relies on', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    for (let i = 0; i < 3; i++) await requestPacked(rig, rig.dut, q!, 0, [W(8)]);
    await rig.settle();
    expect(q!.deviceEvent()).toEqual({ flags: VRING_PACKED_EVENT_FLAG_DESC, offWrap: PackedQueueBuilder.offWrap(3, true) });
    q!.setDeviceEvent(0xffff, 0xffff);
    for (let i = 0; i < 10; i++) {
      const r = await requestPacked(rig, rig.dut, q!, 0, [W(8)]);
      expect(r.used.len).toBe(8);
    }
    await rig.settle();
    // 13 used: next_avail at 5 of the second lap (wrap 0).
    expect(q!.deviceEvent().offWrap).toBe(PackedQueueBuilder.offWrap(5, false));
    expect(rig.stats().ringErrors).toBe(0);
    await expectRecovered(rig, [8], {}, 'packed');
  });
});

describe('BI-38 ring-kind confusion', () => {
  onBoth('BI-38 RING_PACKED negotiated, a split ring laid out: the device reads a packed ring, finds nothing available or a malformed chain, and stays bounded', async (rig) => {
    const [split] = bringUp(rig, rig.dut, [8], { features: packedFeatures });
    split!.chain([W(16)]);
    await kick(rig, rig.dut, 0);
    // The split descriptor's next (0) sits where a packed descriptor has its
    // flags: nothing is available, nothing is used; the split avail ring is
    // never read as indices (the device only wrote its own event area there).
    expect(rig.stats().usedBuffers).toBe(0);
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    expect(rig.internalErrors()).toBe(0);
    await expectRecovered(rig, [8], {}, 'packed');
  });
  onBoth('BI-38 RING_PACKED refused, a packed ring laid out: the split reading sees avail idx 0 and does nothing', async (rig) => {
    rig.dut.negotiate({ features: splitFeatures });
    const q = new PackedQueueBuilder(rig.mem, rig.alloc, 8);
    q.program(rig.dut, 0);
    rig.dut.driverOk();
    q.chain([W(16)]);
    await kick(rig, rig.dut, 0);
    expect(q.hasUsed()).toBe(false);
    expect(rig.stats().usedBuffers).toBe(0);
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    await expectRecovered(rig);
  });
  onBoth(
    'BI-38 legacy: VIRTIO_F_RING_PACKED is not offered and accepting it changes nothing (features above 31 are dropped)',
    async (rig) => {
      const d = rig.dut;
      expect(hi32(d.deviceFeatures())).toBe(0);
      const [q] = bringUp(rig, d, [8], { features: (o) => o | bit(VIRTIO_F_RING_PACKED) });
      expect(`${rig.stats().lastGuestError}`).toMatch(/legacy driver accepted unoffered features/);
      q!.chain([W(16)]);
      await kick(rig, d, 0);
      await rig.until('the split chain is used', () => q!.usedIdx() === 1);
      expect(q!.usedElem(0).len).toBe(16);
      await expectRecovered(rig);
    },
    { dut: { type: 'rng', transport: 'mmio-legacy' } },
  );
});
