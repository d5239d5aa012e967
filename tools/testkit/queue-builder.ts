// A driver-side split-queue builder for tests, after rust-vmm's
// MockSplitQueue: it lays out the descriptor table, the driver (avail) ring
// and the device (used) ring in guest RAM with plain stores, adds chains of
// device-readable and device-writable buffers (directly or through an
// indirect table), reclaims used chains so indices wrap, and writes the
// malformed layouts a hostile driver would, so that each test states its
// ring in a few lines. It never calls device code: the device sees only what
// a guest could have written.
import type { GuestMemory } from '../../core/bus.js';
import { GuestView, type Desc } from './guest-view.js';
import { REG } from '../../core/uapi/mmio.js';
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
  VRING_USED_ELEM_SIZE,
  alignUp,
  availRingSize,
  descTableSize,
  usedRingSize,
  vringSize,
} from '../../core/uapi/ring.js';

export const NEXT = VRING_DESC_F_NEXT;
export const WRITE = VRING_DESC_F_WRITE;
export const INDIRECT = VRING_DESC_F_INDIRECT;

export { GuestView, type Desc };

/** Byte written into device-writable buffers when they are handed over, to see what the device wrote. */
export const POISON = 0xee;

/** Where guest RAM for rings and buffers comes from (raw-driver's Alloc fits). */
export interface RamAllocator {
  take(len: number, align?: number): number;
}

/** A buffer of a chain: device-readable (bytes or a length, filled with a pattern) or device-writable. */
export type Buf = { read: Uint8Array | number } | { write: number };

export const R = (data: Uint8Array | number): Buf => ({ read: data });
export const W = (len: number): Buf => ({ write: len });

export interface Segment {
  addr: number;
  len: number;
  write: boolean;
}

/** A buffer in guest RAM from `alloc`: readable ones hold the data (or a pattern), writable ones POISON. Either ring kind's builder. */
export function placeBuffer(alloc: RamAllocator, g: GuestView, b: Buf): Segment {
  if ('write' in b) {
    const addr = alloc.take(Math.max(1, b.write), 8);
    g.bytes(addr, b.write).fill(POISON);
    return { addr, len: b.write, write: true };
  }
  const data = typeof b.read === 'number' ? pattern(b.read) : b.read;
  const addr = alloc.take(Math.max(1, data.length), 8);
  g.bytes(addr, data.length).set(data);
  return { addr, len: data.length, write: false };
}

export interface BuiltChain {
  head: number;
  /** Descriptor indices used in the queue's table. */
  descs: number[];
  bufs: Segment[];
  /** Guest address of the indirect table, if the chain uses one. */
  table?: number;
}

export interface UsedElem {
  id: number;
  len: number;
}

export interface RingLayout {
  desc: number;
  avail: number;
  used: number;
}

/** The register writes of a driver: raw-driver's RawDriver fits. */
export interface RegWriter {
  write(offset: number, value: number): void;
}

export class QueueBuilder {
  readonly g: GuestView;
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  private availIdx = 0;
  private lastUsed = 0;
  private readonly free: boolean[];
  private cursor = 0;
  /** Descriptor indices of each published, not yet reclaimed head. */
  private readonly owned = new Map<number, number[]>();

  constructor(
    readonly mem: GuestMemory,
    readonly alloc: RamAllocator,
    readonly size: number,
    layout?: Partial<RingLayout>,
  ) {
    this.g = new GuestView(mem);
    this.desc = layout?.desc ?? alloc.take(descTableSize(size), 16);
    this.avail = layout?.avail ?? alloc.take(availRingSize(size), 2);
    this.used = layout?.used ?? alloc.take(usedRingSize(size), 4);
    // Linux allocates rings zeroed; a test that passes its own layout gets it zeroed too.
    this.g.bytes(this.desc, descTableSize(size)).fill(0);
    this.g.bytes(this.avail, availRingSize(size)).fill(0);
    this.g.bytes(this.used, usedRingSize(size)).fill(0);
    this.free = new Array<boolean>(size).fill(true);
  }

  /** The contiguous legacy layout (spec 4.2.4: desc, avail, used at the next `align` boundary), page aligned. */
  static legacy(mem: GuestMemory, alloc: RamAllocator, size: number, align = 4096): QueueBuilder {
    const desc = alloc.take(vringSize(size, align), Math.max(4096, align));
    const avail = desc + descTableSize(size);
    return new QueueBuilder(mem, alloc, size, { desc, avail, used: alignUp(avail + availRingSize(size), align) });
  }

  get layout(): RingLayout {
    return { desc: this.desc, avail: this.avail, used: this.used };
  }

  /** spec 4.2.3.2 steps 1, 5, 6 and 7 for queue q on a v2 window. */
  program(regs: RegWriter, q: number, opts: { ready?: boolean } = {}): void {
    regs.write(REG.QueueSel, q);
    regs.write(REG.QueueNum, this.size);
    const pair = (low: number, a: number): void => {
      regs.write(low, a % 0x1_0000_0000);
      regs.write(low + 4, Math.floor(a / 0x1_0000_0000));
    };
    pair(REG.QueueDescLow, this.desc);
    pair(REG.QueueDriverLow, this.avail);
    pair(REG.QueueDeviceLow, this.used);
    if (opts.ready ?? true) regs.write(REG.QueueReady, 1);
  }

  /** Legacy (Version 1) queue setup: QueueNum, QueueAlign, then QueuePFN, which enables the queue. */
  programLegacy(regs: RegWriter, q: number, pageSize = 4096, align = 4096): void {
    regs.write(REG.QueueSel, q);
    regs.write(REG.QueueNum, this.size);
    regs.write(REG.QueueAlign, align);
    regs.write(REG.QueuePFN, this.desc / pageSize);
  }

  // ---- descriptors ----

  writeDesc(i: number, d: Desc, table = this.desc): void {
    this.g.setDesc(table + VRING_DESC_SIZE * i, d);
  }

  readDesc(i: number, table = this.desc): Required<Desc> {
    return this.g.desc(table + VRING_DESC_SIZE * i);
  }

  /** Allocate an indirect table in guest RAM holding `descs`; returns its address. */
  table(descs: Desc[]): number {
    const addr = this.alloc.take(Math.max(1, descs.length) * VRING_DESC_SIZE, 16);
    descs.forEach((d, i) => this.writeDesc(i, d, addr));
    return addr;
  }

  /** A buffer in guest RAM: readable ones hold the data (or a pattern), writable ones POISON. */
  buffer(b: Buf): Segment {
    return placeBuffer(this.alloc, this.g, b);
  }

  /** Take n free descriptor indices (not necessarily consecutive). */
  takeDescs(n: number): number[] {
    const out: number[] = [];
    for (let scanned = 0; out.length < n && scanned < this.size; scanned++) {
      const i = this.cursor;
      this.cursor = (this.cursor + 1) % this.size;
      if (this.free[i]) out.push(i);
    }
    if (out.length < n) throw new Error(`test bug: ${n} descriptors wanted, ${out.length} free`);
    for (const i of out) this.free[i] = false;
    return out;
  }

  // ---- chains ----

  /**
   * Add a well-formed chain; with `indirect` its buffers go into an indirect
   * table referenced by one descriptor. Published on the avail ring unless
   * publish is false.
   */
  chain(bufs: Buf[], opts: { indirect?: boolean; publish?: boolean } = {}): BuiltChain {
    const segs = bufs.map((b) => this.buffer(b));
    const link = (s: Segment, i: number, n: number): Desc => ({
      addr: s.addr,
      len: s.len,
      flags: (s.write ? WRITE : 0) | (i < n - 1 ? NEXT : 0),
      next: i + 1,
    });
    let built: BuiltChain;
    if (opts.indirect) {
      const table = this.table(segs.map((s, i) => link(s, i, segs.length)));
      const [head] = this.takeDescs(1) as [number];
      this.writeDesc(head, { addr: table, len: segs.length * VRING_DESC_SIZE, flags: INDIRECT });
      built = { head, descs: [head], bufs: segs, table };
    } else {
      const descs = this.takeDescs(segs.length);
      segs.forEach((s, i) => this.writeDesc(descs[i]!, { ...link(s, i, segs.length), next: descs[i + 1] ?? 0 }));
      built = { head: descs[0]!, descs, bufs: segs };
    }
    this.owned.set(built.head, built.descs);
    if (opts.publish ?? true) this.publish(built.head);
    return built;
  }

  /**
   * Write raw descriptors at the given indices (a hostile layout); the head is
   * the first index. Published unless publish is false.
   */
  raw(entries: [index: number, d: Desc][], opts: { publish?: boolean } = {}): number {
    for (const [i, d] of entries) {
      if (i < this.size) this.free[i] = false;
      this.writeDesc(i, d);
    }
    const head = entries[0]![0];
    if (opts.publish ?? true) this.publish(head);
    return head;
  }

  // ---- malformed layouts (each returns the published head) ----

  /** n descriptors whose last one points back to the first (BI-01). */
  loop(n: number, to = 0): number {
    const descs = this.takeDescs(n);
    const buf = this.buffer(W(16));
    descs.forEach((d, i) => this.writeDesc(d, { addr: buf.addr, len: 16, flags: WRITE | NEXT, next: descs[i + 1] ?? descs[to]! }));
    this.publish(descs[0]!);
    return descs[0]!;
  }

  /** One chain of n ≤ size descriptors at indices 0..n-1, all over one writable buffer of len bytes. */
  linked(n: number, len = 16): number {
    if (n > this.size) throw new Error('test bug: a ring chain longer than the queue must revisit an index; use loop()');
    const buf = this.buffer(W(len));
    const entries: [number, Desc][] = [];
    for (let i = 0; i < n; i++) entries.push([i, { addr: buf.addr, len, flags: WRITE | (i < n - 1 ? NEXT : 0), next: i + 1 }]);
    return this.raw(entries);
  }

  /** A descriptor whose NEXT points at `next` (≥ size for BI-03). */
  badNext(next: number): number {
    const buf = this.buffer(W(16));
    const [i] = this.takeDescs(1) as [number];
    return this.raw([[i, { addr: buf.addr, len: 16, flags: WRITE | NEXT, next }]]);
  }

  /** One descriptor with any addr/len/flags (out-of-RAM, zero-length, huge...). */
  single(d: Desc): number {
    const [i] = this.takeDescs(1) as [number];
    return this.raw([[i, d]]);
  }

  /** An indirect descriptor that also has NEXT (BI-04). */
  indirectWithNext(): number {
    const buf = this.buffer(W(16));
    const table = this.table([{ addr: buf.addr, len: 16, flags: WRITE }]);
    const [a, b] = this.takeDescs(2) as [number, number];
    return this.raw([
      [a, { addr: table, len: 16, flags: INDIRECT | NEXT, next: b }],
      [b, { addr: buf.addr, len: 16, flags: WRITE }],
    ]);
  }

  /** An indirect table containing another INDIRECT descriptor (BI-04). */
  nestedIndirect(): number {
    const buf = this.buffer(W(16));
    const inner = this.table([{ addr: buf.addr, len: 16, flags: WRITE }]);
    const outer = this.table([{ addr: inner, len: 16, flags: INDIRECT }]);
    return this.single({ addr: outer, len: 16, flags: INDIRECT });
  }

  /** An indirect descriptor with a table address and length of the test's choosing (BI-05). */
  indirectRaw(addr: number, len: number): number {
    return this.single({ addr, len, flags: INDIRECT });
  }

  // ---- driver ring ----

  /** Put heads on the avail ring in order, then publish the new avail idx once. */
  publish(...heads: number[]): void {
    for (const h of heads) {
      this.g.setU16(this.avail + 4 + 2 * (this.availIdx % this.size), h);
      this.availIdx = (this.availIdx + 1) & 0xffff;
    }
    this.g.setU16(this.avail + 2, this.availIdx);
  }

  /** The driver's avail idx (what it last published). */
  get availIndex(): number {
    return this.availIdx;
  }

  /** Overwrite avail idx (jumps, decrements: BI-11). Later publishes continue from it. */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.g.setU16(this.avail + 2, this.availIdx);
  }

  setAvailFlags(flags: number): void {
    this.g.setU16(this.avail, flags);
  }
  setUsedEvent(v: number): void {
    this.g.setU16(this.avail + 4 + 2 * this.size, v);
  }

  // ---- device ring ----

  usedIdx(): number {
    return this.g.u16(this.used + 2);
  }
  /** Tamper with the device's ring (BI-26). */
  setUsedIdx(v: number): void {
    this.g.setU16(this.used + 2, v);
  }
  setUsedFlags(v: number): void {
    this.g.setU16(this.used, v);
  }
  availEvent(): number {
    return this.g.u16(this.used + 4 + VRING_USED_ELEM_SIZE * this.size);
  }
  setAvailEvent(v: number): void {
    this.g.setU16(this.used + 4 + VRING_USED_ELEM_SIZE * this.size, v);
  }
  usedElem(i: number): UsedElem {
    const at = this.used + 4 + VRING_USED_ELEM_SIZE * (i % this.size);
    return { id: this.g.u32(at), len: this.g.u32(at + 4) };
  }

  /** Used elements published since the last call (the driver's last_used_idx walk). */
  takeUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    const idx = this.usedIdx();
    while (this.lastUsed !== idx) {
      out.push(this.usedElem(this.lastUsed));
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    return out;
  }

  /** takeUsed(), and free the descriptors of those heads for new chains. */
  reclaim(): UsedElem[] {
    const used = this.takeUsed();
    for (const u of used) {
      for (const i of this.owned.get(u.id) ?? []) this.free[i] = true;
      this.owned.delete(u.id);
    }
    return used;
  }

  /** Guest RAM the device is allowed to write for this ring: the used ring (with avail_event). */
  deviceArea(): Segment {
    return { addr: this.used, len: usedRingSize(this.size), write: true };
  }
}

/** A recognisable non-zero pattern of n bytes. */
export function pattern(n: number, seed = 0x31): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed + i * 7) & 0xff || 1;
  return out;
}
