// Guest-physical memory as the device sees it. Every access the device makes
// on behalf of the guest goes through contains() first: addresses come from
// the guest (ring registers, descriptors) and are untrusted.
//
// The RAM is normally a view of a SharedArrayBuffer that the driver thread
// writes concurrently. Ring index fields (avail idx, used idx, used_event,
// avail_event) are published with Atomics so the other thread sees the
// payload written before them; everything else is plain little-endian access.

export interface AddressRange {
  base: number;
  size: number;
}

const HOST_IS_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A 64-bit guest address from two u32 words; Infinity if above 2^53 (never valid RAM). */
export function addr64(lo: number, hi: number): number {
  const h = hi >>> 0;
  return h < 0x20_0000 ? h * 0x1_0000_0000 + (lo >>> 0) : Number.POSITIVE_INFINITY;
}

export class GuestRam {
  readonly u8: Uint8Array;
  readonly view: DataView;
  /** Aligned 16-bit view for Atomics on ring index fields, when the layout allows it. */
  private readonly u16: Uint16Array | null;

  /**
   * @param u8 the RAM bytes; index 0 is guest-physical `base`
   * @param holes ranges the device must never reach through a guest address
   *   (its own register windows), even if they overlap RAM
   */
  constructor(
    u8: Uint8Array,
    readonly base: number,
    readonly size: number,
    private readonly holes: readonly AddressRange[] = [],
  ) {
    if (size > u8.length) throw new Error(`guest RAM view (${u8.length} bytes) is smaller than ramSize ${size}`);
    this.u8 = u8.subarray(0, size);
    this.view = new DataView(u8.buffer, u8.byteOffset, size);
    this.u16 =
      HOST_IS_LE && u8.byteOffset % 2 === 0 && base % 2 === 0
        ? new Uint16Array(u8.buffer, u8.byteOffset, size >>> 1)
        : null;
  }

  /** [addr, addr + len) lies inside RAM and outside every hole (checked arithmetic). */
  contains(addr: number, len: number): boolean {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || len < 0) return false;
    const off = addr - this.base;
    if (off < 0 || off > this.size || len > this.size - off) return false;
    for (const h of this.holes) {
      if (addr < h.base + h.size && h.base < addr + len) return false;
    }
    return true;
  }

  // The accessors below assume the caller checked the range with contains().

  readU16(addr: number): number {
    return this.view.getUint16(addr - this.base, true);
  }
  readU32(addr: number): number {
    return this.view.getUint32(addr - this.base, true);
  }
  writeU16(addr: number, value: number): void {
    this.view.setUint16(addr - this.base, value & 0xffff, true);
  }
  writeU32(addr: number, value: number): void {
    this.view.setUint32(addr - this.base, value >>> 0, true);
  }

  /** Atomic load of a 2-aligned u16 (ring idx / event fields). */
  loadU16(addr: number): number {
    const off = addr - this.base;
    if (this.u16 && off % 2 === 0) return Atomics.load(this.u16, off >>> 1);
    return this.view.getUint16(off, true);
  }

  /** Atomic store of a 2-aligned u16: publishes everything written before it. */
  storeU16(addr: number, value: number): void {
    const off = addr - this.base;
    if (this.u16 && off % 2 === 0) Atomics.store(this.u16, off >>> 1, value & 0xffff);
    else this.view.setUint16(off, value & 0xffff, true);
  }

  /** A view of guest RAM for [addr, addr + len); caller checked the range. */
  bytes(addr: number, len: number): Uint8Array {
    const off = addr - this.base;
    return this.u8.subarray(off, off + len);
  }
}
