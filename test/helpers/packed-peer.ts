// The device's view of a packed ring, written straight from the spec layout
// (2.8) for virtqueue unit tests: pop what the driver made available (the
// AVAIL/USED bits against the device's wrap counter, following NEXT and an
// indirect table), write used descriptors, and read or write the two event
// suppression areas. Independent of the driver (core/virtqueue/packed.ts)
// and of the device model (emulator/vring/packed-queue.ts).
import type { GuestMemory } from '../../core/bus.js';
import { VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';

const AVAIL = 1 << 7;
const USED = 1 << 15;

export interface PackedPeerDesc {
  addr: number;
  len: number;
  id: number;
  flags: number;
}

export interface PackedPeerChain {
  id: number;
  /** Ring descriptors of the chain (one for an indirect chain). */
  top: PackedPeerDesc[];
  bufs: { addr: number; len: number; write: boolean }[];
  indirect: boolean;
}

export class PackedPeer {
  nextAvail = 0;
  availWrap = true;
  nextUsed = 0;
  usedWrap = true;

  constructor(
    readonly mem: GuestMemory,
    readonly num: number,
    readonly desc: number,
    readonly driver: number,
    readonly device: number,
  ) {}

  private off(a: number): number {
    return a - this.mem.base;
  }
  u16(a: number): number {
    return this.mem.view.getUint16(this.off(a), true);
  }
  set16(a: number, v: number): void {
    this.mem.view.setUint16(this.off(a), v & 0xffff, true);
  }
  u32(a: number): number {
    return this.mem.view.getUint32(this.off(a), true);
  }
  set32(a: number, v: number): void {
    this.mem.view.setUint32(this.off(a), v >>> 0, true);
  }

  readDesc(table: number, i: number): PackedPeerDesc {
    const a = table + 16 * i;
    return { addr: this.u32(a) + this.u32(a + 4) * 0x1_0000_0000, len: this.u32(a + 8), id: this.u16(a + 12), flags: this.u16(a + 14) };
  }

  private available(flags: number, wrap: boolean): boolean {
    return ((flags & AVAIL) !== 0) === wrap && ((flags & USED) !== 0) !== wrap;
  }

  /** Pop the chain at next_avail, or null if it is not available. */
  pop(): PackedPeerChain | null {
    if (!this.available(this.readDesc(this.desc, this.nextAvail).flags, this.availWrap)) return null;
    const top: PackedPeerDesc[] = [];
    const bufs: PackedPeerChain['bufs'] = [];
    let indirect = false;
    for (let n = 0; n < this.num; n++) {
      const d = this.readDesc(this.desc, this.nextAvail);
      if (n > 0 && !this.available(d.flags, this.availWrap)) throw new Error(`peer: descriptor ${this.nextAvail} of a chain is not available`);
      top.push(d);
      if (++this.nextAvail === this.num) {
        this.nextAvail = 0;
        this.availWrap = !this.availWrap;
      }
      if (d.flags & VRING_DESC_F_INDIRECT) {
        indirect = true;
        for (let j = 0; j < d.len / 16; j++) {
          const e = this.readDesc(d.addr, j);
          bufs.push({ addr: e.addr, len: e.len, write: (e.flags & VRING_DESC_F_WRITE) !== 0 });
        }
        break;
      }
      bufs.push({ addr: d.addr, len: d.len, write: (d.flags & VRING_DESC_F_WRITE) !== 0 });
      if (!(d.flags & VRING_DESC_F_NEXT)) break;
    }
    return { id: top[top.length - 1]!.id, top, bufs, indirect };
  }

  /** Write a used descriptor for buffer `id` of `count` ring descriptors, flags last. */
  push(id: number, len: number, count = 1): void {
    const a = this.desc + 16 * this.nextUsed;
    this.set32(a + 8, len);
    this.set16(a + 12, id);
    this.set16(a + 14, this.usedWrap ? AVAIL | USED : 0);
    this.nextUsed += count;
    if (this.nextUsed >= this.num) {
      this.nextUsed -= this.num;
      this.usedWrap = !this.usedWrap;
    }
  }

  /** Pop and use everything available, each with its writable length. */
  serveAll(): number {
    let n = 0;
    for (let c = this.pop(); c; c = this.pop()) {
      this.push(c.id, c.bufs.filter((b) => b.write).reduce((s, b) => s + b.len, 0), c.top.length);
      n++;
    }
    return n;
  }

  /** The driver's event suppression area. */
  get driverFlags(): number {
    return this.u16(this.driver + 2);
  }
  get driverOffWrap(): number {
    return this.u16(this.driver);
  }
  /** The device's event suppression area. */
  setDeviceEvent(flags: number, offWrap = 0): void {
    this.set16(this.device, offWrap);
    this.set16(this.device + 2, flags);
  }
  get deviceFlags(): number {
    return this.u16(this.device + 2);
  }
}
