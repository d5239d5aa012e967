// Little-endian access to guest RAM by guest-physical address, as a driver
// writes it, and split-ring descriptors (spec 2.7.5) at any address.
import type { GuestMemory } from '../../core/bus.js';

/** One descriptor as the driver writes it. */
export interface Desc {
  addr: number;
  len: number;
  flags?: number;
  next?: number;
}

/** Little-endian helpers over guest-physical addresses. */
export class GuestView {
  constructor(readonly mem: GuestMemory) {}
  private off(addr: number, len: number): number {
    const o = addr - this.mem.base;
    if (!Number.isSafeInteger(o) || o < 0 || o + len > this.mem.size) {
      throw new RangeError(`test bug: 0x${addr.toString(16)}+${len} is outside guest RAM`);
    }
    return o;
  }
  u16(addr: number): number {
    return this.mem.view.getUint16(this.off(addr, 2), true);
  }
  setU16(addr: number, v: number): void {
    this.mem.view.setUint16(this.off(addr, 2), v & 0xffff, true);
  }
  u32(addr: number): number {
    return this.mem.view.getUint32(this.off(addr, 4), true);
  }
  setU32(addr: number, v: number): void {
    this.mem.view.setUint32(this.off(addr, 4), v >>> 0, true);
  }
  bytes(addr: number, len: number): Uint8Array {
    const o = this.off(addr, len);
    return this.mem.u8.subarray(o, o + len);
  }
  /** [addr, addr + len) lies inside guest RAM. */
  inside(addr: number, len: number): boolean {
    const o = addr - this.mem.base;
    return Number.isSafeInteger(o) && o >= 0 && o + len <= this.mem.size;
  }
  /** The 16-byte split-ring descriptor at addr. */
  desc(addr: number): Required<Desc> {
    return { addr: this.u32(addr) + this.u32(addr + 4) * 0x1_0000_0000, len: this.u32(addr + 8), flags: this.u16(addr + 12), next: this.u16(addr + 14) };
  }
  setDesc(addr: number, d: Desc): void {
    this.setU32(addr, d.addr % 0x1_0000_0000);
    this.setU32(addr + 4, Math.floor(d.addr / 0x1_0000_0000));
    this.setU32(addr + 8, d.len);
    this.setU16(addr + 12, d.flags ?? 0);
    this.setU16(addr + 14, d.next ?? 0);
  }
}

