// Little-endian access to ring fields in guest memory. Payload fields
// (descriptors, ring entries) use plain DataView access; the u16 fields that
// publish progress to the other side (avail.idx, avail.flags, used_event;
// used.idx, used.flags, avail_event) use Atomics when guest RAM is a
// SharedArrayBuffer. The device runs in another thread and polls avail.idx
// without waiting for a notify when notifications are suppressed, so a plain
// store could become visible before the ring entry it publishes; a
// sequentially consistent Atomics.store orders it after every earlier write
// (virtio_wmb + the idx store), and Atomics.load on used.idx orders the
// reads of the used element after it (virtio_rmb).
import type { GuestMemory } from '../bus.js';

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class RingMem {
  readonly mem: GuestMemory;
  private readonly view: DataView;
  /** u16 view for Atomics; null when RAM is not shared or the host is big-endian. */
  private readonly u16: Uint16Array | null;

  constructor(mem: GuestMemory) {
    this.mem = mem;
    this.view = mem.view;
    const u8 = mem.u8;
    const shared = typeof SharedArrayBuffer !== 'undefined' && u8.buffer instanceof SharedArrayBuffer;
    this.u16 =
      shared && HOST_LE && u8.byteOffset % 2 === 0
        ? new Uint16Array(u8.buffer, u8.byteOffset, u8.byteLength >> 1)
        : null;
  }

  private off(addr: number, len: number): number {
    const off = addr - this.mem.base;
    if (off < 0 || off + len > this.mem.size) {
      throw new RangeError(`ring access 0x${addr.toString(16)}+${len} outside guest RAM`);
    }
    return off;
  }

  read16(addr: number): number {
    return this.view.getUint16(this.off(addr, 2), true);
  }

  write16(addr: number, v: number): void {
    this.view.setUint16(this.off(addr, 2), v & 0xffff, true);
  }

  read32(addr: number): number {
    return this.view.getUint32(this.off(addr, 4), true);
  }

  write32(addr: number, v: number): void {
    this.view.setUint32(this.off(addr, 4), v >>> 0, true);
  }

  /** A 64-bit address as two u32 halves (no BigInt on the data path). */
  write64(addr: number, v: number): void {
    const off = this.off(addr, 8);
    this.view.setUint32(off, v >>> 0, true);
    this.view.setUint32(off + 4, Math.floor(v / 0x1_0000_0000) >>> 0, true);
  }

  read64(addr: number): number {
    const off = this.off(addr, 8);
    return this.view.getUint32(off, true) + this.view.getUint32(off + 4, true) * 0x1_0000_0000;
  }

  /** Publish a u16 index/flags field (release: all earlier writes are visible first). */
  publish16(addr: number, v: number): void {
    const off = this.off(addr, 2);
    if (this.u16 && off % 2 === 0) Atomics.store(this.u16, off >> 1, v & 0xffff);
    else this.view.setUint16(off, v & 0xffff, true);
  }

  /** Read a u16 field the other side publishes (acquire). */
  acquire16(addr: number): number {
    const off = this.off(addr, 2);
    if (this.u16 && off % 2 === 0) return Atomics.load(this.u16, off >> 1);
    return this.view.getUint16(off, true);
  }
}
