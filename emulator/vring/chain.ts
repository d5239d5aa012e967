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
  /**
   * Copy src (from srcStart, srcLen bytes; default all of it) into the
   * device-writable bytes starting at `offset`; returns the count written.
   */
  write(src: Uint8Array, offset?: number, srcStart?: number, srcLen?: number): number;
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

/**
 * A validated chain's buffers as walkChainInto leaves them: guest addresses
 * and lengths in two growable typed arrays, the device-readable ones first.
 * Reused from chain to chain (one per queue), so validating a chain
 * allocates nothing once the arrays have grown to the longest chain seen.
 */
export class ChainBuffers {
  addr: Float64Array;
  len: Uint32Array;
  /** Buffers in all, and how many of the first ones are device-readable. */
  count = 0;
  readableCount = 0;
  readableBytes = 0;
  writableBytes = 0;

  constructor(capacity = 4) {
    this.addr = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
  }

  clear(): void {
    this.count = this.readableCount = this.readableBytes = this.writableBytes = 0;
  }

  push(addr: number, len: number): void {
    if (this.count === this.addr.length) {
      const addr2 = new Float64Array(this.count * 2);
      const len2 = new Uint32Array(this.count * 2);
      addr2.set(this.addr);
      len2.set(this.len);
      this.addr = addr2;
      this.len = len2;
    }
    this.addr[this.count] = addr;
    this.len[this.count] = len;
    this.count++;
  }

  /** A copy sized to this chain, for a chain that outlives the walk (a model holding it). */
  copy(): ChainBuffers {
    const c = new ChainBuffers(Math.max(1, this.count));
    c.addr.set(this.addr.subarray(0, this.count));
    c.len.set(this.len.subarray(0, this.count));
    c.count = this.count;
    c.readableCount = this.readableCount;
    c.readableBytes = this.readableBytes;
    c.writableBytes = this.writableBytes;
    return c;
  }
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
 * Validate the chain starting at `head` and copy its buffers into `out`.
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
 * Throws RingError; `out` is then partly filled and must not be used.
 */
export function walkChainInto(ram: GuestRam, p: WalkParams, head: number, out: ChainBuffers): void {
  out.clear();
  let table = p.descTable;
  let tableSize = p.queueSize;
  let indirect = false;
  let index = head;
  let visited = 0;
  let total = 0;
  for (;;) {
    if (index >= tableSize) badChain(p, head, `descriptor index ${index} ≥ ${indirect ? 'indirect table entries' : 'queue size'} ${tableSize}`);
    if (++visited > tableSize) badChain(p, head, `more than ${tableSize} descriptors (loop?)`);
    const at = table + index * VRING_DESC_SIZE;
    const addr = addr64(ram.readU32(at), ram.readU32(at + 4));
    const len = ram.readU32(at + 8);
    const flags = ram.readU16(at + 12);
    const next = ram.readU16(at + 14);

    if (flags & VRING_DESC_F_INDIRECT) {
      if (!p.indirectAllowed) badChain(p, head, 'INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC');
      if (indirect) badChain(p, head, 'INDIRECT descriptor inside an indirect table');
      if (flags & VRING_DESC_F_NEXT) badChain(p, head, 'INDIRECT together with NEXT');
      if (len === 0 || len % VRING_DESC_SIZE !== 0) badChain(p, head, `indirect table length ${len} is not a non-zero multiple of 16`);
      const entries = len / VRING_DESC_SIZE;
      if (entries > p.queueSize) badChain(p, head, `indirect table of ${entries} entries exceeds queue size ${p.queueSize}`);
      if (!ram.contains(addr, len)) badChain(p, head, `indirect table ${hex(addr)}+${len} outside guest RAM`);
      table = addr;
      tableSize = entries;
      indirect = true;
      index = 0;
      visited = 0;
      continue;
    }

    if (len === 0) badChain(p, head, `descriptor ${index} has length 0`);
    if (!ram.contains(addr, len)) badChain(p, head, `buffer ${hex(addr)}+${len} outside guest RAM`);
    total += len;
    if (total > MAX_CHAIN_BYTES) badChain(p, head, 'chain describes more than 2^32 bytes');
    if (flags & VRING_DESC_F_WRITE) {
      out.push(addr, len);
      out.writableBytes += len;
    } else {
      if (out.count > out.readableCount) badChain(p, head, 'device-readable descriptor after a device-writable one');
      out.push(addr, len);
      out.readableCount++;
      out.readableBytes += len;
    }
    if (!(flags & VRING_DESC_F_NEXT)) return;
    index = next;
  }
}

function badChain(p: WalkParams, head: number, reason: string): never {
  throw new RingError(p.queue, `chain at head ${head}: ${reason}`);
}

/** walkChainInto, with the buffers as segment lists (tests, tools). */
export function walkChain(ram: GuestRam, p: WalkParams, head: number): WalkedChain {
  const b = new ChainBuffers();
  walkChainInto(ram, p, head, b);
  const seg = (i: number): Segment => ({ addr: b.addr[i]!, len: b.len[i]! });
  return {
    readable: Array.from({ length: b.readableCount }, (_, i) => seg(i)),
    writable: Array.from({ length: b.count - b.readableCount }, (_, i) => seg(b.readableCount + i)),
    readableBytes: b.readableBytes,
    writableBytes: b.writableBytes,
  };
}

/** Liveness of a chain: the owning queue's epoch must not have moved. */
export interface EpochSource {
  readonly epoch: number;
}

/** Copies of up to this many bytes go byte by byte: no subarray view allocated for a small buffer. */
const SMALL_COPY = 64;

/**
 * A popped chain. Either a chain of its own (pop: a model may hold it), or
 * the queue's reusable record (the serve path: it is handed to one serve
 * call, pushed, then retired until the next chain reuses it). A retired or
 * stale record reads and writes nothing, like a chain from an older epoch.
 */
export class DescriptorChain implements Chain {
  head = 0;
  epoch = 0;
  /** The serve path has pushed this record; it is dead until reused. */
  private retired = false;

  constructor(
    private readonly ram: GuestRam,
    readonly owner: EpochSource,
    readonly queue: number,
    readonly bufs: ChainBuffers,
  ) {}

  /** Point the record at a newly validated chain (its buffers are already in bufs). */
  reuse(head: number, epoch: number): this {
    this.head = head;
    this.epoch = epoch;
    this.retired = false;
    return this;
  }

  /** The serve call is over: the record is dead until reused. */
  retire(): void {
    this.retired = true;
  }

  get readableBytes(): number {
    return this.bufs.readableBytes;
  }

  get writableBytes(): number {
    return this.bufs.writableBytes;
  }

  /** The validated buffers as segments (tests, traces). */
  get readable(): readonly Segment[] {
    return this.segments(0, this.bufs.readableCount);
  }

  get writable(): readonly Segment[] {
    return this.segments(this.bufs.readableCount, this.bufs.count);
  }

  get live(): boolean {
    return !this.retired && this.owner.epoch === this.epoch;
  }

  read(dst: Uint8Array, offset = 0): number {
    if (!this.live) return 0;
    const b = this.bufs;
    const u8 = this.ram.u8;
    const base = this.ram.base;
    const want = dst.length;
    let skip = Math.max(0, offset);
    let done = 0;
    for (let i = 0; i < b.readableCount && done < want; i++) {
      const len = b.len[i]!;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, want - done);
      const off = b.addr[i]! + skip - base;
      if (n <= SMALL_COPY) for (let k = 0; k < n; k++) dst[done + k] = u8[off + k]!;
      else dst.set(u8.subarray(off, off + n), done);
      done += n;
      skip = 0;
    }
    return done;
  }

  /**
   * Copy src[srcStart, srcStart + srcLen) into the device-writable bytes
   * starting at `offset`; returns the count written.
   */
  write(src: Uint8Array, offset = 0, srcStart = 0, srcLen = src.length - srcStart): number {
    if (!this.live) return 0;
    const b = this.bufs;
    const u8 = this.ram.u8;
    const base = this.ram.base;
    const want = Math.max(0, Math.min(srcLen, src.length - srcStart));
    let skip = Math.max(0, offset);
    let done = 0;
    for (let i = b.readableCount; i < b.count && done < want; i++) {
      const len = b.len[i]!;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, want - done);
      const off = b.addr[i]! + skip - base;
      const from = srcStart + done;
      if (n <= SMALL_COPY) for (let k = 0; k < n; k++) u8[off + k] = src[from + k]!;
      else u8.set(src.subarray(from, from + n), off);
      done += n;
      skip = 0;
    }
    return done;
  }

  fillWritable(maxBytes: number, fill: (view: Uint8Array) => void): number {
    if (!this.live) return 0;
    const b = this.bufs;
    const want = Math.max(0, maxBytes);
    let done = 0;
    for (let i = b.readableCount; i < b.count && done < want; i++) {
      const n = Math.min(b.len[i]!, want - done);
      fill(this.ram.bytes(b.addr[i]!, n));
      done += n;
    }
    return done;
  }

  visitReadable(offset: number, maxBytes: number, visit: (view: Uint8Array) => void): number {
    if (!this.live) return 0;
    const b = this.bufs;
    const want = Math.max(0, maxBytes);
    let skip = Math.max(0, offset);
    let done = 0;
    for (let i = 0; i < b.readableCount && done < want; i++) {
      const len = b.len[i]!;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, want - done);
      visit(this.ram.bytes(b.addr[i]! + skip, n));
      done += n;
      skip = 0;
    }
    return done;
  }

  private segments(from: number, to: number): Segment[] {
    const out: Segment[] = [];
    for (let i = from; i < to; i++) out.push({ addr: this.bufs.addr[i]!, len: this.bufs.len[i]! });
    return out;
  }
}
