// The device's view of a split ring, written straight from the spec layout
// (2.7) for virtqueue unit tests: pop what the driver made available, walk
// its descriptors (following an indirect table), and put used elements.
// Independent of both the driver (core/virtqueue) and the device model
// (emulator/vring) so it checks either against the spec, not itself.
import type { GuestMemory } from '../../core/bus.js';
import { VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';

export interface PeerDesc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

export interface PeerChain {
  head: number;
  /** The descriptor(s) in the main table; one for an indirect chain. */
  top: PeerDesc[];
  /** The buffers, after following an indirect table. */
  bufs: { addr: number; len: number; write: boolean }[];
  indirect: boolean;
}

export class VringPeer {
  /** Device's next avail index to read, and next used index to write. */
  nextAvail = 0;
  nextUsed = 0;

  constructor(
    readonly mem: GuestMemory,
    readonly num: number,
    readonly desc: number,
    readonly avail: number,
    readonly used: number,
  ) {}

  private off(a: number): number {
    return a - this.mem.base;
  }
  u16(a: number): number {
    return this.mem.view.getUint16(this.off(a), true);
  }
  set16(a: number, v: number): void {
    this.mem.view.setUint16(this.off(a), v, true);
  }
  u32(a: number): number {
    return this.mem.view.getUint32(this.off(a), true);
  }
  set32(a: number, v: number): void {
    this.mem.view.setUint32(this.off(a), v >>> 0, true);
  }

  get availFlags(): number {
    return this.u16(this.avail);
  }
  get availIdx(): number {
    return this.u16(this.avail + 2);
  }
  get usedEvent(): number {
    return this.u16(this.avail + 4 + 2 * this.num);
  }
  get usedFlags(): number {
    return this.u16(this.used);
  }
  set usedFlags(v: number) {
    this.set16(this.used, v);
  }
  get usedIdx(): number {
    return this.u16(this.used + 2);
  }
  set usedIdx(v: number) {
    this.set16(this.used + 2, v & 0xffff);
  }
  get availEvent(): number {
    return this.u16(this.used + 4 + 8 * this.num);
  }
  set availEvent(v: number) {
    this.set16(this.used + 4 + 8 * this.num, v & 0xffff);
  }

  readDesc(table: number, i: number): PeerDesc {
    const a = table + 16 * i;
    return {
      addr: this.u32(a) + this.u32(a + 4) * 0x1_0000_0000,
      len: this.u32(a + 8),
      flags: this.u16(a + 12),
      next: this.u16(a + 14),
    };
  }

  /** Pop the next available chain, or null if the driver published none. */
  pop(): PeerChain | null {
    if (this.nextAvail === this.availIdx) return null;
    const head = this.u16(this.avail + 4 + 2 * (this.nextAvail % this.num));
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    const top: PeerDesc[] = [];
    const bufs: PeerChain['bufs'] = [];
    let indirect = false;
    let i = head;
    for (let n = 0; n <= this.num; n++) {
      const d = this.readDesc(this.desc, i);
      top.push(d);
      if (d.flags & VRING_DESC_F_INDIRECT) {
        indirect = true;
        const count = d.len / 16;
        for (let j = 0; j < count; j++) {
          const e = this.readDesc(d.addr, j);
          bufs.push({ addr: e.addr, len: e.len, write: (e.flags & VRING_DESC_F_WRITE) !== 0 });
          if (!(e.flags & VRING_DESC_F_NEXT)) break;
        }
      } else {
        bufs.push({ addr: d.addr, len: d.len, write: (d.flags & VRING_DESC_F_WRITE) !== 0 });
      }
      if (!(d.flags & VRING_DESC_F_NEXT)) break;
      i = d.next;
    }
    return { head, top, bufs, indirect };
  }

  /** Put a used element and publish used.idx. */
  push(head: number, len: number): void {
    const e = this.used + 4 + 8 * (this.nextUsed % this.num);
    this.set32(e, head);
    this.set32(e + 4, len);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    this.usedIdx = this.nextUsed;
  }
}
