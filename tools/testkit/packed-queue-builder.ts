// The packed-ring twin of queue-builder.ts: a driver-side builder for tests
// and the fuzzer that lays out a packed virtqueue (spec 2.8) in guest RAM
// with plain stores: the descriptor ring and the two event suppression
// areas. It adds chains (directly or through an indirect table) with the
// AVAIL/USED bits of the driver's wrap counter, makes the head available
// last, walks the used descriptors the device wrote as a driver does
// (advancing by each buffer's descriptor count, flipping the used wrap
// counter), and writes the malformed forms a hostile driver would (wrong
// wrap bits, bad ids, chains longer than the ring, illegal INDIRECT forms).
// It never calls device code.
import type { GuestMemory } from '../../core/bus.js';
import { REG } from '../../core/uapi/mmio.js';
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
  VRING_PACKED_DESC,
  VRING_PACKED_DESC_F_AVAIL_MASK,
  VRING_PACKED_DESC_F_USED_MASK,
  VRING_PACKED_EVENT,
  VRING_PACKED_EVENT_F_WRAP_CTR,
  VRING_PACKED_EVENT_SIZE,
  packedRingSize,
} from '../../core/uapi/ring.js';
import { GuestView } from './guest-view.js';
import { placeBuffer, type Buf, type RamAllocator, type RegWriter, type Segment, type UsedElem } from './queue-builder.js';

export const P_AVAIL = VRING_PACKED_DESC_F_AVAIL_MASK;
export const P_USED = VRING_PACKED_DESC_F_USED_MASK;
const WRAP = 1 << VRING_PACKED_EVENT_F_WRAP_CTR;

/** One packed descriptor as the driver writes it (flags without the AVAIL/USED bits unless stated). */
export interface PackedDesc {
  addr: number;
  len: number;
  id?: number;
  flags?: number;
}

export interface PackedLayout {
  desc: number;
  driver: number;
  device: number;
}

export interface BuiltPackedChain {
  /** Buffer id (in every descriptor of the chain). */
  id: number;
  /** Ring position of the head, and of each descriptor of the chain. */
  head: number;
  positions: number[];
  bufs: Segment[];
  /** Guest address of the indirect table, if the chain uses one. */
  table?: number;
}

/** The AVAIL/USED bits that make a descriptor available for a driver at wrap counter `wrap`. */
export function availBits(wrap: boolean): number {
  return wrap ? P_AVAIL : P_USED;
}

export class PackedQueueBuilder {
  readonly g: GuestView;
  readonly desc: number;
  readonly driver: number;
  readonly device: number;
  /** The driver's next_avail position and avail wrap counter. */
  nextAvail = 0;
  availWrap = true;
  /** Where the driver looks for the next used descriptor, and its used wrap counter. */
  lastUsed = 0;
  usedWrap = true;
  private readonly freeIds: number[];
  /** Descriptor count of each buffer id in flight. */
  private readonly owned = new Map<number, number>();

  constructor(
    readonly mem: GuestMemory,
    readonly alloc: RamAllocator,
    readonly size: number,
    layout?: Partial<PackedLayout>,
  ) {
    this.g = new GuestView(mem);
    this.desc = layout?.desc ?? alloc.take(packedRingSize(size), 16);
    this.driver = layout?.driver ?? alloc.take(VRING_PACKED_EVENT_SIZE, 4);
    this.device = layout?.device ?? alloc.take(VRING_PACKED_EVENT_SIZE, 4);
    // Linux allocates the ring and both areas zeroed.
    this.g.bytes(this.desc, packedRingSize(size)).fill(0);
    this.g.bytes(this.driver, VRING_PACKED_EVENT_SIZE).fill(0);
    this.g.bytes(this.device, VRING_PACKED_EVENT_SIZE).fill(0);
    this.freeIds = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  get layout(): PackedLayout {
    return { desc: this.desc, driver: this.driver, device: this.device };
  }

  /** spec 4.2.3.2 for queue q on a v2 window: QueueNum, the three addresses, QueueReady. */
  program(regs: RegWriter, q: number, opts: { ready?: boolean; num?: number } = {}): void {
    regs.write(REG.QueueSel, q);
    regs.write(REG.QueueNum, opts.num ?? this.size);
    const pair = (low: number, a: number): void => {
      regs.write(low, a % 0x1_0000_0000);
      regs.write(low + 4, Math.floor(a / 0x1_0000_0000));
    };
    pair(REG.QueueDescLow, this.desc);
    pair(REG.QueueDriverLow, this.driver);
    pair(REG.QueueDeviceLow, this.device);
    if (opts.ready ?? true) regs.write(REG.QueueReady, 1);
  }

  // ---- descriptors ----

  descAddr(pos: number, table = this.desc): number {
    return table + VRING_DESC_SIZE * pos;
  }

  writeDesc(pos: number, d: PackedDesc, table = this.desc, writeFlags = true): void {
    const at = this.descAddr(pos, table);
    this.g.setU32(at, d.addr % 0x1_0000_0000);
    this.g.setU32(at + 4, Math.floor(d.addr / 0x1_0000_0000));
    this.g.setU32(at + VRING_PACKED_DESC.len, d.len);
    this.g.setU16(at + VRING_PACKED_DESC.id, d.id ?? 0);
    if (writeFlags) this.g.setU16(at + VRING_PACKED_DESC.flags, d.flags ?? 0);
  }

  readDesc(pos: number, table = this.desc): Required<PackedDesc> {
    const at = this.descAddr(pos, table);
    return {
      addr: this.g.u32(at) + this.g.u32(at + 4) * 0x1_0000_0000,
      len: this.g.u32(at + VRING_PACKED_DESC.len),
      id: this.g.u16(at + VRING_PACKED_DESC.id),
      flags: this.g.u16(at + VRING_PACKED_DESC.flags),
    };
  }

  setFlags(pos: number, flags: number): void {
    this.g.setU16(this.descAddr(pos) + VRING_PACKED_DESC.flags, flags);
  }

  /** An indirect table in guest RAM holding `descs` (flags as given); returns its address. */
  table(descs: PackedDesc[]): number {
    const addr = this.alloc.take(Math.max(1, descs.length) * VRING_DESC_SIZE, 16);
    descs.forEach((d, i) => this.writeDesc(i, d, addr));
    return addr;
  }

  /** A buffer in guest RAM: readable ones hold the data (or a pattern), writable ones POISON. */
  buffer(b: Buf): Segment {
    return placeBuffer(this.alloc, this.g, b);
  }

  /** A free buffer id (the lowest free one unless `id` is given). */
  takeId(id?: number): number {
    if (id !== undefined) {
      const i = this.freeIds.indexOf(id);
      if (i >= 0) this.freeIds.splice(i, 1);
      return id;
    }
    const got = this.freeIds.pop();
    if (got === undefined) throw new Error('test bug: no free buffer id');
    return got;
  }

  get freeDescriptors(): number {
    let inFlight = 0;
    for (const n of this.owned.values()) inFlight += n;
    return this.size - inFlight;
  }

  // ---- chains ----

  /**
   * Add a well-formed chain at next_avail: its descriptors with NEXT, WRITE
   * and the AVAIL/USED bits of their lap, the buffer id in each, the head's
   * flags written last (unless publish is false: then publishHead() does it).
   * With `indirect` one ring descriptor points to a table of the buffers.
   */
  chain(bufs: Buf[], opts: { indirect?: boolean; publish?: boolean; id?: number } = {}): BuiltPackedChain {
    const segs = bufs.map((b) => this.buffer(b));
    const id = this.takeId(opts.id);
    if (opts.indirect) {
      const table = this.table(segs.map((s) => ({ addr: s.addr, len: s.len, flags: s.write ? VRING_DESC_F_WRITE : 0 })));
      const built = this.place([{ addr: table, len: segs.length * VRING_DESC_SIZE, id, flags: VRING_DESC_F_INDIRECT }], opts.publish ?? true);
      this.owned.set(id, 1);
      return { id, head: built.head, positions: built.positions, bufs: segs, table };
    }
    const descs = segs.map((s, i): PackedDesc => ({
      addr: s.addr,
      len: s.len,
      id,
      flags: (s.write ? VRING_DESC_F_WRITE : 0) | (i < segs.length - 1 ? VRING_DESC_F_NEXT : 0),
    }));
    const built = this.place(descs, opts.publish ?? true);
    this.owned.set(id, descs.length);
    return { id, head: built.head, positions: built.positions, bufs: segs };
  }

  /**
   * Write raw descriptors in ring order from next_avail (a hostile chain):
   * each gets the AVAIL/USED bits of its lap ORed in unless `bits` supplies
   * its own (a function of the descriptor's index and lap's wrap counter).
   * The head's flags go last. next_avail moves past them. Returns the head.
   */
  raw(descs: PackedDesc[], opts: { publish?: boolean; bits?: (i: number, wrap: boolean) => number; owned?: number } = {}): number {
    const built = this.place(descs, opts.publish ?? true, opts.bits);
    const id = descs[descs.length - 1]?.id ?? 0;
    if (opts.owned !== undefined) this.owned.set(id, opts.owned);
    return built.head;
  }

  private pendingHead: { pos: number; flags: number } | null = null;

  private place(descs: PackedDesc[], publish: boolean, bits?: (i: number, wrap: boolean) => number): { head: number; positions: number[] } {
    const head = this.nextAvail;
    const positions: number[] = [];
    let headFlags = 0;
    descs.forEach((d, i) => {
      const flags = (d.flags ?? 0) | (bits ? bits(i, this.availWrap) : availBits(this.availWrap));
      const pos = this.nextAvail;
      positions.push(pos);
      if (i === 0) {
        headFlags = flags;
        this.writeDesc(pos, { ...d, flags }, this.desc, false);
      } else {
        this.writeDesc(pos, { ...d, flags });
      }
      if (++this.nextAvail === this.size) {
        this.nextAvail = 0;
        this.availWrap = !this.availWrap;
      }
    });
    this.pendingHead = { pos: head, flags: headFlags };
    if (publish) this.publishHead();
    return { head, positions };
  }

  /** Make the last placed chain available: its head's flags. */
  publishHead(): void {
    if (!this.pendingHead) return;
    this.setFlags(this.pendingHead.pos, this.pendingHead.flags);
    this.pendingHead = null;
  }

  /** Skip ring positions without writing them (the driver's next_avail jumps). */
  advance(n: number): void {
    for (let i = 0; i < n; i++) {
      if (++this.nextAvail === this.size) {
        this.nextAvail = 0;
        this.availWrap = !this.availWrap;
      }
    }
  }

  // ---- used descriptors ----

  /** is_used_desc_packed at `pos` for a used wrap counter. */
  isUsed(pos: number, wrap = this.usedWrap): boolean {
    const flags = this.g.u16(this.descAddr(pos) + VRING_PACKED_DESC.flags);
    const a = (flags & P_AVAIL) !== 0;
    const u = (flags & P_USED) !== 0;
    return a === u && u === wrap;
  }

  /** Whether the device has written the used descriptor the driver looks at next. */
  hasUsed(): boolean {
    return this.isUsed(this.lastUsed);
  }

  /**
   * The used descriptors written since the last call, as a driver walks them:
   * each advances last_used by its buffer's descriptor count (1 for an id
   * this builder does not know), flipping the used wrap counter at the end.
   * At most `size` per call.
   */
  takeUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    while (out.length < this.size && this.isUsed(this.lastUsed)) {
      const d = this.readDesc(this.lastUsed);
      out.push({ id: d.id, len: d.len });
      this.lastUsed += this.owned.get(d.id) ?? 1;
      if (this.lastUsed >= this.size) {
        this.lastUsed -= this.size;
        this.usedWrap = !this.usedWrap;
      }
    }
    return out;
  }

  /** takeUsed(), and free those buffer ids for new chains. */
  reclaim(): UsedElem[] {
    const used = this.takeUsed();
    for (const u of used) {
      if (this.owned.delete(u.id)) this.freeIds.push(u.id);
    }
    return used;
  }

  // ---- event suppression ----

  /** The driver's area (where the device looks before interrupting). */
  setDriverEvent(flags: number, offWrap = 0): void {
    this.g.setU16(this.driver + VRING_PACKED_EVENT.off_wrap, offWrap);
    this.g.setU16(this.driver + VRING_PACKED_EVENT.flags, flags);
  }

  /** off_wrap for ring position pos at wrap counter wrap. */
  static offWrap(pos: number, wrap: boolean): number {
    return (pos & (WRAP - 1)) | (wrap ? WRAP : 0);
  }

  /** The device's area (where the driver looks before kicking). */
  deviceEvent(): { flags: number; offWrap: number } {
    return { flags: this.g.u16(this.device + VRING_PACKED_EVENT.flags), offWrap: this.g.u16(this.device + VRING_PACKED_EVENT.off_wrap) };
  }

  /** Tamper with the device's area. */
  setDeviceEvent(flags: number, offWrap: number): void {
    this.g.setU16(this.device + VRING_PACKED_EVENT.off_wrap, offWrap);
    this.g.setU16(this.device + VRING_PACKED_EVENT.flags, flags);
  }

  /** Guest RAM the device may write for this ring: the descriptor ring (used descriptors) and its own event area. */
  deviceAreas(): Segment[] {
    return [
      { addr: this.desc, len: packedRingSize(this.size), write: true },
      { addr: this.device, len: VRING_PACKED_EVENT_SIZE, write: true },
    ];
  }
}
