// A descriptor chain as the devices see it (Chain), and walking and holding
// one split-ring descriptor chain (spec 2.7.5).
// Each descriptor is read exactly once and copied into the chain, so a guest
// that rewrites the table afterwards cannot change what was validated.
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
} from '../../core/uapi/ring.js';
import { addr64, type GuestRam } from './guest-ram.js';
import { RingError } from './ring-error.js';

/**
 * One validated descriptor chain popped from a queue. Its descriptors were
 * read once and checked when it was popped (bounds, direction order, length);
 * the data accessors below only touch the chain's own buffers.
 *
 * A chain belongs to the queue epoch it was popped in: after a device reset,
 * a queue reset or QueueReady=0 it is dead, and every accessor and pushUsed
 * become no-ops, so late completions never write guest memory.
 */
export interface Chain {
  readonly queue: number;
  /** Head descriptor index (the id the used element carries). */
  readonly head: number;
  /** Total bytes of the device-readable descriptors (they come first). */
  readonly readableBytes: number;
  /** Total bytes of the device-writable descriptors. */
  readonly writableBytes: number;
  /** False once a reset made the chain stale. */
  readonly live: boolean;
  /** Copy device-readable bytes starting at `offset` into dst; returns the count copied. */
  read(dst: Uint8Array, offset?: number): number;
  /** Copy src into the device-writable bytes starting at `offset`; returns the count written. */
  write(src: Uint8Array, offset?: number): number;
  /**
   * Hand the device-writable buffers, in order and capped at maxBytes in total,
   * to `fill` as views of guest RAM (for in-place producers such as
   * randomFillSync). The views must not be kept. Returns the bytes covered.
   */
  fillWritable(maxBytes: number, fill: (view: Uint8Array) => void): number;
  /**
   * Hand up to maxBytes of the device-readable bytes from `offset`, in order,
   * to `visit` as views of guest RAM (for consumers that copy straight to
   * their destination). The views must not be kept. Returns the bytes covered.
   */
  visitReadable(offset: number, maxBytes: number, visit: (view: Uint8Array) => void): number;
}

/** One guest buffer: guest-physical address and length. */
export interface Segment {
  readonly addr: number;
  readonly len: number;
}

/** spec 2.7.5.2: a chain never describes more than 2^32 bytes. */
export const MAX_CHAIN_BYTES = 0x1_0000_0000;

export interface WalkedChain {
  readable: Segment[];
  writable: Segment[];
  readableBytes: number;
  writableBytes: number;
}

export interface WalkParams {
  queue: number;
  /** Guest-physical address of the queue's descriptor table. */
  descTable: number;
  queueSize: number;
  indirectAllowed: boolean;
}

function hex(n: number): string {
  return Number.isFinite(n) ? `0x${n.toString(16)}` : '>2^53';
}

/**
 * Validate the chain starting at `head` and copy its buffers out.
 * Rules (spec 2.7.5, VIRTIO-NOTES §6 BI-01..BI-10):
 * - every index < the size of the table it indexes; at most queueSize
 *   descriptors in the ring part and at most the table's entry count in an
 *   indirect table, which also ends any loop;
 * - INDIRECT only if negotiated, never inside an indirect table, never with
 *   NEXT (so it is the last ring descriptor); the table's len is a non-zero
 *   multiple of 16 with at most queueSize entries, inside RAM; its WRITE flag
 *   is ignored;
 * - every buffer is non-empty and inside RAM; the total ≤ 2^32 bytes;
 * - device-readable buffers precede device-writable ones.
 */
export function walkChain(ram: GuestRam, p: WalkParams, head: number): WalkedChain {
  const fail = (reason: string): never => {
    throw new RingError(p.queue, `chain at head ${head}: ${reason}`);
  };
  const out: WalkedChain = { readable: [], writable: [], readableBytes: 0, writableBytes: 0 };
  let table = p.descTable;
  let tableSize = p.queueSize;
  let indirect = false;
  let index = head;
  let visited = 0;
  let total = 0;
  for (;;) {
    if (index >= tableSize) fail(`descriptor index ${index} ≥ ${indirect ? 'indirect table entries' : 'queue size'} ${tableSize}`);
    if (++visited > tableSize) fail(`more than ${tableSize} descriptors (loop?)`);
    const at = table + index * VRING_DESC_SIZE;
    const addr = addr64(ram.readU32(at), ram.readU32(at + 4));
    const len = ram.readU32(at + 8);
    const flags = ram.readU16(at + 12);
    const next = ram.readU16(at + 14);

    if (flags & VRING_DESC_F_INDIRECT) {
      if (!p.indirectAllowed) fail('INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC');
      if (indirect) fail('INDIRECT descriptor inside an indirect table');
      if (flags & VRING_DESC_F_NEXT) fail('INDIRECT together with NEXT');
      if (len === 0 || len % VRING_DESC_SIZE !== 0) fail(`indirect table length ${len} is not a non-zero multiple of 16`);
      const entries = len / VRING_DESC_SIZE;
      if (entries > p.queueSize) fail(`indirect table of ${entries} entries exceeds queue size ${p.queueSize}`);
      if (!ram.contains(addr, len)) fail(`indirect table ${hex(addr)}+${len} outside guest RAM`);
      table = addr;
      tableSize = entries;
      indirect = true;
      index = 0;
      visited = 0;
      continue;
    }

    if (len === 0) fail(`descriptor ${index} has length 0`);
    if (!ram.contains(addr, len)) fail(`buffer ${hex(addr)}+${len} outside guest RAM`);
    total += len;
    if (total > MAX_CHAIN_BYTES) fail('chain describes more than 2^32 bytes');
    if (flags & VRING_DESC_F_WRITE) {
      out.writable.push({ addr, len });
      out.writableBytes += len;
    } else {
      if (out.writable.length > 0) fail('device-readable descriptor after a device-writable one');
      out.readable.push({ addr, len });
      out.readableBytes += len;
    }
    if (!(flags & VRING_DESC_F_NEXT)) return out;
    index = next;
  }
}

/** Liveness of a chain: the owning queue's epoch must not have moved. */
export interface EpochSource {
  readonly epoch: number;
}

export class DescriptorChain implements Chain {
  readonly readableBytes: number;
  readonly writableBytes: number;
  readonly readable: readonly Segment[];
  readonly writable: readonly Segment[];

  constructor(
    private readonly ram: GuestRam,
    readonly owner: EpochSource,
    readonly queue: number,
    readonly head: number,
    readonly epoch: number,
    walked: WalkedChain,
  ) {
    this.readable = walked.readable;
    this.writable = walked.writable;
    this.readableBytes = walked.readableBytes;
    this.writableBytes = walked.writableBytes;
  }

  get live(): boolean {
    return this.owner.epoch === this.epoch;
  }

  read(dst: Uint8Array, offset = 0): number {
    if (!this.live) return 0;
    return this.copy(this.readable, offset, dst.length, (seg, segOff, pos, n) => {
      dst.set(this.ram.bytes(seg.addr + segOff, n), pos);
    });
  }

  write(src: Uint8Array, offset = 0): number {
    if (!this.live) return 0;
    return this.copy(this.writable, offset, src.length, (seg, segOff, pos, n) => {
      this.ram.bytes(seg.addr + segOff, n).set(src.subarray(pos, pos + n));
    });
  }

  fillWritable(maxBytes: number, fill: (view: Uint8Array) => void): number {
    if (!this.live) return 0;
    return this.copy(this.writable, 0, Math.max(0, maxBytes), (seg, segOff, _pos, n) => {
      fill(this.ram.bytes(seg.addr + segOff, n));
    });
  }

  visitReadable(offset: number, maxBytes: number, visit: (view: Uint8Array) => void): number {
    if (!this.live) return 0;
    return this.copy(this.readable, offset, Math.max(0, maxBytes), (seg, segOff, _pos, n) => {
      visit(this.ram.bytes(seg.addr + segOff, n));
    });
  }

  /** Visit up to `want` bytes of segs starting at byte `offset`; returns bytes visited. */
  private copy(
    segs: readonly Segment[],
    offset: number,
    want: number,
    visit: (seg: Segment, segOff: number, pos: number, n: number) => void,
  ): number {
    let skip = Math.max(0, offset);
    let done = 0;
    for (const seg of segs) {
      if (done >= want) break;
      if (skip >= seg.len) {
        skip -= seg.len;
        continue;
      }
      const n = Math.min(seg.len - skip, want - done);
      visit(seg, skip, done, n);
      done += n;
      skip = 0;
    }
    return done;
  }
}
