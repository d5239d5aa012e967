// BI-01..BI-10 (VIRTIO-NOTES §6): malformed descriptor chains, written into
// guest RAM as a hostile driver would. A chain the device cannot walk safely
// is a malformed ring: the device sets DEVICE_NEEDS_RESET with a config
// interrupt and parks the queue (emulator/vring/chain.ts lists the rules);
// nothing is written to guest memory for it. Legal corner cases (a chain of
// exactly the queue size, 2^32 bytes, normal descriptors then one indirect)
// are served.
import { describe, expect } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import { VIRTIO_RING_F_INDIRECT_DESC, bit } from '../../core/uapi/features.js';
import { MMIO_WINDOW_SIZE, REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { RNG_DEFAULT_MAX_REQUEST } from '../../emulator/devices/rng.js';
import { INDIRECT, NEXT, POISON, R, W, WRITE, pattern, type QueueBuilder } from '../../tools/testkit/queue-builder.js';
import { snapshot, writesOutside } from '../../tools/testkit/ranges.js';
import { splitFeatures } from '../helpers/raw-driver.js';
import { bringUp, expectNeedsReset, expectRecovered, kick, onBoard, onBoth, type Rig } from './harness.js';
import { ECHO_Q, PROBE_TYPE } from './probe-device.js';

const end = (rig: Rig): number => rig.mem.base + rig.mem.size;

/** Bring up an 8-entry rng queue, write a malformed chain, kick: NEEDS_RESET, nothing used, recovered. */
async function malformed(rig: Rig, build: (q: QueueBuilder, rig: Rig) => void, reason: RegExp, features?: (o: bigint) => bigint): Promise<void> {
  const [q] = bringUp(rig, rig.dut, [8], features ? { features } : {});
  build(q!, rig);
  await kick(rig, rig.dut, 0);
  await expectNeedsReset(rig, q!, 0, reason);
  expect(q!.usedIdx(), 'nothing was put on the used ring').toBe(0);
  await expectRecovered(rig);
}

/** The chain is legal: served once, no DEVICE_NEEDS_RESET. */
async function served(rig: Rig, q: QueueBuilder, expected: { id: number; len: number }): Promise<void> {
  await kick(rig, rig.dut, 0);
  await rig.until('the chain is used', () => q.usedIdx() === 1);
  expect(q.usedElem(0)).toEqual(expected);
  expect(rig.dut.status() & NEEDS_RESET).toBe(0);
}

describe('BI-01 descriptor chain loop', () => {
  onBoth('BI-01 descriptor chain loop: the walk is bounded by the queue size; NEEDS_RESET, queue parked', (rig) =>
    malformed(rig, (q) => q.loop(2), /loop/),
  );
  onBoard('BI-01 descriptor chain loop: a descriptor pointing at itself', (rig) => malformed(rig, (q) => q.loop(1), /loop/));
  onBoard('BI-01 descriptor chain loop: back into the middle of the chain (0→1→2→1)', (rig) => malformed(rig, (q) => q.loop(3, 1), /loop/));
  onBoard('BI-01 descriptor chain loop: inside an indirect table', (rig) =>
    malformed(
      rig,
      (q) => {
        const b = q.buffer(W(16)).addr;
        const table = q.table([
          { addr: b, len: 16, flags: WRITE | NEXT, next: 1 },
          { addr: b, len: 16, flags: WRITE | NEXT, next: 0 },
        ]);
        q.indirectRaw(table, 32);
      },
      /loop/,
    ),
  );
});

describe('BI-02 chain longer than the queue size; exactly the queue size', () => {
  onBoard('BI-02 chain of exactly the queue size is served (8 of 8 descriptors)', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const head = q!.linked(8, 16);
    await served(rig, q!, { id: head, len: 8 * 16 });
    await expectRecovered(rig);
  });
  onBoard('BI-02 indirect table of exactly the queue size is served', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const c = q!.chain([W(4), W(4), W(4), W(4), W(4), W(4), W(4), W(4)], { indirect: true });
    await served(rig, q!, { id: c.head, len: 32 });
    await expectRecovered(rig);
  });
  onBoard('BI-02 chain of queue size + 1 descriptors in the ring is refused', (rig) =>
    // Nine descriptors in a ring of eight must revisit one: the ninth step ends the walk.
    malformed(rig, (q) => q.loop(8), /more than 8 descriptors/),
  );
  onBoard('BI-02 indirect table of queue size + 1 entries is refused', (rig) =>
    malformed(rig, (q) => q.chain([W(4), W(4), W(4), W(4), W(4), W(4), W(4), W(4), W(4)], { indirect: true }), /exceeds queue size 8/),
  );
});

describe('BI-03 next ≥ queue size', () => {
  onBoard('BI-03 next = queue size', (rig) => malformed(rig, (q) => q.badNext(8), /index 8 ≥ queue size 8/));
  onBoard('BI-03 next = 0xffff', (rig) => malformed(rig, (q) => q.badNext(0xffff), /index 65535 ≥ queue size/));
  onBoard('BI-03 next beyond the entries of an indirect table', (rig) =>
    malformed(
      rig,
      (q) => {
        const b = q.buffer(W(16)).addr;
        q.indirectRaw(q.table([{ addr: b, len: 16, flags: WRITE | NEXT, next: 2 }, { addr: b, len: 16, flags: WRITE }]), 32);
      },
      /index 2 ≥ indirect table entries 2/,
    ),
  );
});

describe('BI-04 illegal INDIRECT forms; normal descriptors then one indirect', () => {
  onBoard('BI-04 INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated', (rig) =>
    malformed(rig, (q) => q.chain([W(16)], { indirect: true }), /INDIRECT_DESC/, (o) => splitFeatures(o) & ~bit(VIRTIO_RING_F_INDIRECT_DESC)),
  );
  onBoard('BI-04 INDIRECT inside an indirect table', (rig) => malformed(rig, (q) => q.nestedIndirect(), /inside an indirect table/));
  onBoard('BI-04 INDIRECT together with NEXT in one descriptor', (rig) => malformed(rig, (q) => q.indirectWithNext(), /INDIRECT together with NEXT/));
  onBoard('BI-04 two indirect descriptors chained by NEXT', (rig) =>
    malformed(
      rig,
      (q) => {
        const b = q.buffer(W(16)).addr;
        const t1 = q.table([{ addr: b, len: 16, flags: WRITE }]);
        const t2 = q.table([{ addr: b, len: 16, flags: WRITE }]);
        q.raw([
          [0, { addr: t1, len: 16, flags: INDIRECT | NEXT, next: 1 }],
          [1, { addr: t2, len: 16, flags: INDIRECT }],
        ]);
      },
      /INDIRECT together with NEXT/,
    ),
  );
  onBoard('BI-04 normal descriptors then one indirect (legal; the WRITE flag on the indirect descriptor is ignored)', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const r = q!.buffer(R(4));
    const w1 = q!.buffer(W(8));
    const w2 = q!.buffer(W(8));
    const table = q!.table([
      { addr: w1.addr, len: 8, flags: WRITE | NEXT, next: 1 },
      { addr: w2.addr, len: 8, flags: WRITE },
    ]);
    const head = q!.raw([
      [0, { addr: r.addr, len: 4, flags: NEXT, next: 1 }],
      [1, { addr: table, len: 32, flags: INDIRECT | WRITE }],
    ]);
    await served(rig, q!, { id: head, len: 16 });
    expect(q!.g.bytes(r.addr, 4)).toEqual(pattern(4));
    await expectRecovered(rig);
  });
});

describe('BI-05 malformed indirect tables', () => {
  const cases: [string, (rig: Rig, q: QueueBuilder) => [number, number], RegExp][] = [
    ['length 0', (_r, q) => [q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }]), 0], /not a non-zero multiple of 16/],
    ['length not a multiple of 16', (_r, q) => [q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }]), 17], /not a non-zero multiple of 16/],
    ['more than 65535 entries', (_r, q) => [q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }]), 65536 * 16], /65536 entries exceeds queue size/],
    ['more entries than the queue size', (_r, q) => [q.table([{ addr: q.buffer(W(8)).addr, len: 8, flags: WRITE }]), 9 * 16], /9 entries exceeds queue size 8/],
    ['outside guest RAM', (rig) => [end(rig) + 0x1000, 16], /outside guest RAM/],
    ['crossing the end of guest RAM', (rig) => [end(rig) - 16, 32], /outside guest RAM/],
    ['inside the virtio-mmio windows', () => [PLATFORM.MMIO_BASE, 16], /outside guest RAM/],
    ['above 2^53', () => [2 ** 60, 16], /outside guest RAM/],
  ];
  for (const [name, table, reason] of cases) {
    onBoard(`BI-05 indirect table ${name}`, (rig) =>
      malformed(
        rig,
        (q) => {
          const [addr, len] = table(rig, q);
          q.indirectRaw(addr, len);
        },
        reason,
      ),
    );
  }
});

describe('BI-06 buffers outside guest RAM, overflowing, or in the register windows', () => {
  const cases: [string, (rig: Rig) => { addr: number; len: number; flags: number }][] = [
    ['below guest RAM', (rig) => ({ addr: rig.mem.base - 16, len: 16, flags: WRITE })],
    ['past the end of guest RAM', (rig) => ({ addr: end(rig), len: 16, flags: WRITE })],
    ['spanning the end of guest RAM', (rig) => ({ addr: end(rig) - 8, len: 16, flags: WRITE })],
    ['with addr+len overflowing 64 bits', () => ({ addr: 0xffff_ffff_ffff_f000, len: 0x2000, flags: WRITE })],
    ['device-readable with len 0xffffffff', (rig) => ({ addr: rig.mem.base + 0x100, len: 0xffff_ffff, flags: 0 })],
    ["in the device's own register window", () => ({ addr: PLATFORM.MMIO_BASE + REG.QueueNotify, len: 4, flags: WRITE })],
  ];
  for (const [name, desc] of cases) {
    onBoard(`BI-06 buffer ${name}`, (rig) => malformed(rig, (q) => q.single(desc(rig)), /outside guest RAM/));
  }
  onBoth("BI-06 DMA reflection: a writable buffer over the other device's Status register never reaches it", async (rig) => {
    const statusBefore = rig.other.status();
    await malformed(
      rig,
      (q) => q.single({ addr: PLATFORM.MMIO_BASE + MMIO_WINDOW_SIZE + REG.Status, len: 4, flags: WRITE }),
      /outside guest RAM/,
    );
    expect(rig.other.status()).toBe(statusBefore);
  });
});

describe('BI-07 chain byte total over 2^32', () => {
  const ramSize = 64 << 20;
  const opts = { dut: { type: 'rng' as const, transport: 'mmio' as const, options: { queueSize: 128 } }, ramSize };
  /** n readable descriptors, each the whole of guest RAM (64 MiB). */
  const wholeRam = (q: QueueBuilder, rig: Rig, n: number): number =>
    q.raw(Array.from({ length: n }, (_, i): [number, { addr: number; len: number; flags: number; next: number }] => [i, { addr: rig.mem.base, len: ramSize, flags: i < n - 1 ? NEXT : 0, next: i + 1 }]));
  onBoard(
    'BI-07 chain byte total of exactly 2^32 is accepted',
    async (rig) => {
      const [q] = bringUp(rig, rig.dut, [128]);
      const head = wholeRam(q!, rig, 64);
      await served(rig, q!, { id: head, len: 0 });
      await expectRecovered(rig);
    },
    opts,
  );
  onBoard(
    'BI-07 chain byte total over 2^32 is refused',
    async (rig) => {
      const [q] = bringUp(rig, rig.dut, [128]);
      wholeRam(q!, rig, 65);
      await kick(rig, rig.dut, 0);
      await expectNeedsReset(rig, q!, 0, /more than 2\^32 bytes/);
      await expectRecovered(rig);
    },
    opts,
  );
});

describe('BI-08 zero-length descriptors', () => {
  onBoard('BI-08 a zero-length writable descriptor', (rig) => malformed(rig, (q) => q.single({ addr: q.buffer(W(8)).addr, len: 0, flags: WRITE }), /length 0/));
  onBoard('BI-08 addr 0 with len 0', (rig) => malformed(rig, (q) => q.single({ addr: 0, len: 0, flags: WRITE }), /length 0/));
  onBoard('BI-08 a zero-length descriptor in the middle of a chain', (rig) =>
    malformed(
      rig,
      (q) => {
        const r = q.buffer(R(4));
        const w = q.buffer(W(8));
        q.raw([
          [0, { addr: r.addr, len: 4, flags: NEXT, next: 1 }],
          [1, { addr: r.addr, len: 0, flags: NEXT, next: 2 }],
          [2, { addr: w.addr, len: 8, flags: WRITE }],
        ]);
      },
      /length 0/,
    ),
  );
});

describe('BI-09 huge lengths', () => {
  onBoard('BI-09 a huge writable buffer inside RAM: the device caps its work, not the guest', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const c = q!.chain([W(512 << 10)]);
    await served(rig, q!, { id: c.head, len: RNG_DEFAULT_MAX_REQUEST });
    const buf = q!.g.bytes(c.bufs[0]!.addr, 512 << 10);
    expect(buf.subarray(RNG_DEFAULT_MAX_REQUEST).every((b) => b === POISON), 'nothing written past the cap').toBe(true);
    await expectRecovered(rig);
  });
  onBoard('BI-09 len 0xffffffff is refused before any allocation or access', (rig) =>
    malformed(rig, (q) => q.single({ addr: q.buffer(W(8)).addr, len: 0xffff_ffff, flags: WRITE }), /outside guest RAM/),
  );
});

describe('BI-10 wrong buffer directions', () => {
  onBoard('BI-10 a device-readable descriptor after a device-writable one', (rig) =>
    malformed(rig, (q) => q.chain([W(8), R(8)]), /readable descriptor after a device-writable/),
  );
  onBoard('BI-10 only device-readable buffers where rng expects writable ones: returned with len 0, nothing written', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const c = q!.chain([R(32), R(32)]);
    const published = snapshot(rig.mem);
    await served(rig, q!, { id: c.head, len: 0 });
    expect(writesOutside(rig.mem, published, [q!.deviceArea()])).toEqual([]);
    await expectRecovered(rig);
  });
  onBoard('BI-10 readable then writable: the device writes only the writable buffer and the used ring', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const c = q!.chain([R(16), W(16)]);
    const before = snapshot(rig.mem);
    const allowed = [q!.deviceArea(), c.bufs[1]!];
    await served(rig, q!, { id: c.head, len: 16 });
    expect(writesOutside(rig.mem, before, allowed)).toEqual([]);
    expect(q!.g.bytes(c.bufs[0]!.addr, 16)).toEqual(pattern(16));
    await expectRecovered(rig);
  });
  onBoard(
    'BI-10 writable-only chain where the echo queue expects readable data: len 0, the buffer untouched',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const c = qs[ECHO_Q]!.chain([W(16)]);
      await kick(rig, rig.dut, ECHO_Q);
      expect(qs[ECHO_Q]!.usedElem(0)).toEqual({ id: c.head, len: 0 });
      expect(qs[ECHO_Q]!.g.bytes(c.bufs[0]!.addr, 16).every((b) => b === POISON)).toBe(true);
      await expectRecovered(rig, [8, 8]);
    },
    { dut: { type: PROBE_TYPE, transport: 'mmio' } },
  );
});
