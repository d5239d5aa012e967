// Chain walking and split-queue bookkeeping on a bare GuestRam, without a
// board: every bound of spec 2.7.5 and VIRTIO-NOTES §6 BI-01..BI-12, BI-25.
import { describe, expect, it } from 'vitest';
import { VRING_DESC_F_INDIRECT as IND, VRING_DESC_F_NEXT as NEXT, VRING_DESC_F_WRITE as WRITE } from '../../core/uapi/ring.js';
import { walkChain, type WalkParams } from '../../emulator/vring/chain.js';
import { GuestRam } from '../../emulator/vring/guest-ram.js';
import { RingError } from '../../emulator/vring/ring-error.js';
import { SplitQueue } from '../../emulator/vring/split-queue.js';

const BASE = 0x4000_0000;
const SIZE = 1 << 20;
const DESC = BASE + 0x1000;
const HOLE = { base: BASE + 0xf_0000, size: 0x200 };

function mem() {
  const u8 = new Uint8Array(new SharedArrayBuffer(SIZE));
  const ram = new GuestRam(u8, BASE, SIZE, [HOLE]);
  const view = new DataView(u8.buffer);
  const desc = (table: number, i: number, addr: number, len: number, flags = 0, next = 0) => {
    const at = table - BASE + 16 * i;
    view.setUint32(at, addr % 2 ** 32, true);
    view.setUint32(at + 4, Math.floor(addr / 2 ** 32), true);
    view.setUint32(at + 8, len, true);
    view.setUint16(at + 12, flags, true);
    view.setUint16(at + 14, next, true);
  };
  return { ram, view, desc };
}

const params = (over: Partial<WalkParams> = {}): WalkParams => ({ queue: 0, descTable: DESC, queueSize: 8, indirectAllowed: true, ...over });
const BUF = BASE + 0x8000;

function expectRingError(fn: () => unknown, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(RingError);
  expect((err as Error).message).toMatch(re);
}

describe('GuestRam bounds', () => {
  const { ram } = mem();
  it('accepts ranges inside RAM, including the last byte', () => {
    expect(ram.contains(BASE, HOLE.base - BASE)).toBe(true);
    expect(new GuestRam(new Uint8Array(SIZE), BASE, SIZE).contains(BASE, SIZE)).toBe(true);
    expect(ram.contains(BASE + SIZE - 1, 1)).toBe(true);
    expect(ram.contains(BASE + SIZE, 0)).toBe(true);
  });
  it('rejects ranges outside RAM, overflowing, non-integer or inside a hole', () => {
    expect(ram.contains(BASE - 1, 1)).toBe(false);
    expect(ram.contains(BASE + SIZE - 1, 2)).toBe(false);
    expect(ram.contains(BASE + 16, 2 ** 53)).toBe(false);
    expect(ram.contains(Number.POSITIVE_INFINITY, 1)).toBe(false);
    expect(ram.contains(BASE + 0.5, 1)).toBe(false);
    expect(ram.contains(BASE, -1)).toBe(false);
    expect(ram.contains(HOLE.base + 0x10, 4)).toBe(false);
    expect(ram.contains(HOLE.base - 2, 4)).toBe(false);
  });
});

describe('walkChain', () => {
  it('copies a readable-then-writable chain', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, BUF, 16, NEXT, 3);
    desc(DESC, 3, BUF + 16, 32, WRITE | NEXT, 1);
    desc(DESC, 1, BUF + 48, 8, WRITE);
    const c = walkChain(ram, params(), 0);
    expect(c.readable).toEqual([{ addr: BUF, len: 16 }]);
    expect(c.writable).toEqual([{ addr: BUF + 16, len: 32 }, { addr: BUF + 48, len: 8 }]);
    expect(c.readableBytes).toBe(16);
    expect(c.writableBytes).toBe(40);
  });
  it('accepts a chain of exactly queue-size descriptors (BI-02)', () => {
    const { ram, desc } = mem();
    for (let i = 0; i < 8; i++) desc(DESC, i, BUF, 1, i < 7 ? NEXT | WRITE : WRITE, i + 1);
    expect(walkChain(ram, params(), 0).writable).toHaveLength(8);
  });
  it('rejects a loop (BI-01)', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, BUF, 4, NEXT, 1);
    desc(DESC, 1, BUF, 4, NEXT, 0);
    expectRingError(() => walkChain(ram, params(), 0), /more than 8 descriptors/);
  });
  it('rejects a self loop', () => {
    const { ram, desc } = mem();
    desc(DESC, 2, BUF, 4, NEXT, 2);
    expectRingError(() => walkChain(ram, params(), 2), /loop/);
  });
  it('rejects next ≥ queue size (BI-03)', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, BUF, 4, NEXT, 8);
    expectRingError(() => walkChain(ram, params(), 0), /index 8 ≥ queue size 8/);
  });
  it.each([
    ['below RAM', BASE - 16, 16],
    ['past the end of RAM', BASE + SIZE - 8, 16],
    ['with addr+len overflowing 64 bits', 0xffff_ffff_ffff_f000, 0x2000],
    ['above 2^53', 2 ** 60, 16],
    ['in the MMIO window (DMA reflection)', HOLE.base, 4],
  ])('rejects a buffer %s (BI-06)', (_n, addr, len) => {
    const { ram, desc } = mem();
    desc(DESC, 0, addr, len, WRITE);
    expectRingError(() => walkChain(ram, params(), 0), /outside guest RAM/);
  });
  it('rejects a zero-length descriptor (BI-08)', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, 0, 0, WRITE);
    expectRingError(() => walkChain(ram, params(), 0), /length 0/);
  });
  it('rejects a chain of more than 2^32 bytes (BI-07)', () => {
    const big = 8 << 20;
    const u8 = new Uint8Array(new SharedArrayBuffer(big));
    const ram = new GuestRam(u8, BASE, big);
    const view = new DataView(u8.buffer);
    const n = 1024;
    for (let i = 0; i < n; i++) {
      const at = 0x1000 + 16 * i;
      view.setUint32(at, BASE + 0x10_0000, true);
      view.setUint32(at + 8, (4 << 20) + 1, true);
      view.setUint16(at + 12, WRITE | (i < n - 1 ? NEXT : 0), true);
      view.setUint16(at + 14, i + 1, true);
    }
    expectRingError(() => walkChain(ram, params({ queueSize: n }), 0), /2\^32/);
  });
  it('rejects a readable descriptor after a writable one (BI-10)', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, BUF, 4, WRITE | NEXT, 1);
    desc(DESC, 1, BUF, 4, 0);
    expectRingError(() => walkChain(ram, params(), 0), /readable descriptor after a device-writable/);
  });
});

describe('walkChain: indirect descriptors (BI-04, BI-05)', () => {
  const TABLE = BASE + 0x4000;
  it('follows an indirect table; the WRITE flag of the indirect descriptor is ignored', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, TABLE, 32, IND | WRITE);
    desc(TABLE, 0, BUF, 8, NEXT, 1);
    desc(TABLE, 1, BUF + 8, 24, WRITE);
    const c = walkChain(ram, params(), 0);
    expect(c.readable).toEqual([{ addr: BUF, len: 8 }]);
    expect(c.writable).toEqual([{ addr: BUF + 8, len: 24 }]);
  });
  it('accepts normal descriptors followed by one indirect', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, BUF, 8, NEXT, 1);
    desc(DESC, 1, TABLE, 16, IND);
    desc(TABLE, 0, BUF + 8, 8, WRITE);
    const c = walkChain(ram, params(), 0);
    expect(c.readableBytes).toBe(8);
    expect(c.writableBytes).toBe(8);
  });
  it('rejects INDIRECT when not negotiated', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, TABLE, 16, IND);
    desc(TABLE, 0, BUF, 8, WRITE);
    expectRingError(() => walkChain(ram, params({ indirectAllowed: false }), 0), /without VIRTIO_F_INDIRECT_DESC/);
  });
  it('rejects INDIRECT together with NEXT', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, TABLE, 16, IND | NEXT, 1);
    expectRingError(() => walkChain(ram, params(), 0), /INDIRECT together with NEXT/);
  });
  it('rejects an indirect descriptor inside an indirect table', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, TABLE, 32, IND);
    desc(TABLE, 0, BUF, 8, NEXT, 1);
    desc(TABLE, 1, TABLE, 32, IND);
    expectRingError(() => walkChain(ram, params(), 0), /inside an indirect table/);
  });
  it.each([
    ['of length 0', 0],
    ['whose length is not a multiple of 16', 24],
  ])('rejects a table %s', (_n, len) => {
    const { ram, desc } = mem();
    desc(DESC, 0, TABLE, len, IND);
    expectRingError(() => walkChain(ram, params(), 0), /multiple of 16/);
  });
  it('rejects a table with more entries than the queue size', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, TABLE, 16 * 9, IND);
    expectRingError(() => walkChain(ram, params(), 0), /9 entries exceeds queue size 8/);
  });
  it('rejects a table outside RAM', () => {
    const { ram, desc } = mem();
    desc(DESC, 0, BASE + SIZE - 16, 32, IND);
    expectRingError(() => walkChain(ram, params(), 0), /indirect table .* outside guest RAM/);
  });
  it('rejects next beyond the table and loops inside the table', () => {
    const a = mem();
    a.desc(DESC, 0, TABLE, 32, IND);
    a.desc(TABLE, 0, BUF, 8, NEXT, 2);
    expectRingError(() => walkChain(a.ram, params(), 0), /index 2 ≥ indirect table entries 2/);
    const b = mem();
    b.desc(DESC, 0, TABLE, 32, IND);
    b.desc(TABLE, 0, BUF, 8, NEXT, 1);
    b.desc(TABLE, 1, BUF, 8, NEXT, 0);
    expectRingError(() => walkChain(b.ram, params(), 0), /loop/);
  });
});

describe('SplitQueue', () => {
  function queue(num = 8) {
    const m = mem();
    const q = new SplitQueue(0, 256);
    q.setLayout(num, DESC, BASE + 0x2000, BASE + 0x3000);
    expect(q.enable(m.ram, { indirect: true, eventIdx: false })).toBeNull();
    const avail = (ring: number[], idx = ring.length) => {
      ring.forEach((h, i) => m.view.setUint16(0x2000 + 4 + 2 * i, h, true));
      m.view.setUint16(0x2002, idx, true);
    };
    return { ...m, q, avail };
  }

  it('pops in avail order and pushes used elements', () => {
    const { ram, view, desc, q, avail } = queue();
    desc(DESC, 1, BUF, 8, WRITE);
    desc(DESC, 4, BUF, 8, WRITE);
    avail([4, 1]);
    const a = q.pop(ram)!;
    const b = q.pop(ram)!;
    expect([a.head, b.head]).toEqual([4, 1]);
    expect(q.pop(ram)).toBeNull();
    expect(q.pushUsed(ram, b, 5)).toBe(true);
    expect(view.getUint16(0x3002, true)).toBe(1);
    expect(view.getUint32(0x3004, true)).toBe(1);
    expect(view.getUint32(0x3008, true)).toBe(5);
  });
  it('clamps used len to the writable bytes', () => {
    const { ram, view, desc, q, avail } = queue();
    desc(DESC, 0, BUF, 8, WRITE);
    avail([0]);
    q.pushUsed(ram, q.pop(ram)!, 1000);
    expect(view.getUint32(0x3008, true)).toBe(8);
  });
  it('reads each descriptor once: rewriting the table after the pop changes nothing (BI-25)', () => {
    const { ram, desc, q, avail } = queue();
    desc(DESC, 0, BUF, 8, WRITE);
    avail([0]);
    const c = q.pop(ram)!;
    desc(DESC, 0, BASE + SIZE - 4, 4096, WRITE);
    expect(c.writable).toEqual([{ addr: BUF, len: 8 }]);
    expect(c.write(new Uint8Array(16).fill(1))).toBe(8);
  });
  it('rejects an avail idx more than a ring ahead, or moved backwards (BI-11)', () => {
    const a = queue();
    a.avail([0], 9);
    expect(() => a.q.pop(a.ram)).toThrow(/9 entries past next_avail 0/);
    const b = queue();
    b.avail([], 0xffff);
    expect(() => b.q.pop(b.ram)).toThrow(/65535 entries past/);
  });
  it('rejects a head ≥ queue size (BI-12)', () => {
    const { ram, q, avail } = queue();
    avail([8]);
    expect(() => q.pop(ram)).toThrow(/head 8 ≥ queue size 8/);
  });
  it('rejects a head made available again while still in flight (BI-12)', () => {
    const { ram, desc, q, avail } = queue();
    desc(DESC, 0, BUF, 8, WRITE);
    avail([0, 0]);
    q.pop(ram);
    expect(() => q.pop(ram)).toThrow(/head 0 made available again/);
  });
  it('a used push is refused for a chain popped before a stop/reset, or pushed twice', () => {
    const { ram, view, desc, q, avail } = queue();
    desc(DESC, 0, BUF, 8, WRITE);
    avail([0]);
    const c = q.pop(ram)!;
    expect(q.pushUsed(ram, c, 8)).toBe(true);
    expect(q.pushUsed(ram, c, 8)).toBe(false);
    avail([0, 0]);
    const d = q.pop(ram)!;
    q.stop();
    expect(d.live).toBe(false);
    expect(d.write(new Uint8Array(8).fill(7))).toBe(0);
    expect(q.pushUsed(ram, d, 8)).toBe(false);
    expect(view.getUint16(0x3002, true)).toBe(1);
  });
  it('with EVENT_IDX the device publishes avail_event when it runs dry', () => {
    const m = mem();
    const q = new SplitQueue(0, 256);
    q.setLayout(8, DESC, BASE + 0x2000, BASE + 0x3000);
    q.enable(m.ram, { indirect: false, eventIdx: true });
    m.desc(DESC, 0, BUF, 8, WRITE);
    m.view.setUint16(0x2004, 0, true);
    m.view.setUint16(0x2006, 0, true);
    m.view.setUint16(0x2002, 2, true);
    q.pushUsed(m.ram, q.pop(m.ram)!, 0);
    q.pushUsed(m.ram, q.pop(m.ram)!, 0);
    expect(q.pop(m.ram)).toBeNull();
    expect(m.view.getUint16(0x3000 + 4 + 8 * 8, true)).toBe(2);
  });
});
