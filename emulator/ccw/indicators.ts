// Classic virtio-ccw indicators: a u64 bitmap in guest memory that the device
// sets (bit n: queue n has used buffers; bit 0 of the second one: config
// changed) and the driver clears in its interrupt handler. Both sides touch
// the word concurrently, so the device sets bits atomically.
import { INDICATOR_ADDR_SIZE } from '../../core/uapi/ccw.js';
import type { GuestRam } from '../vring/guest-ram.js';

export class Indicator {
  /** The word as two little-endian u32 halves (bit n of the u64 = bit n%32 of half n/32). */
  private readonly words: Int32Array | null;

  constructor(
    private readonly ram: GuestRam,
    readonly addr: number,
  ) {
    const at = ram.u8.byteOffset + (addr - ram.base);
    this.words = at % 4 === 0 ? new Int32Array(ram.u8.buffer, at, 2) : null;
  }

  /** A valid indicator address: 8-aligned, inside RAM. */
  static valid(ram: GuestRam, addr: number): boolean {
    return addr % INDICATOR_ADDR_SIZE === 0 && ram.contains(addr, INDICATOR_ADDR_SIZE);
  }

  set(bit: number): void {
    const half = bit >>> 5;
    const mask = 1 << (bit & 31);
    if (this.words) {
      Atomics.or(this.words, half, mask);
      return;
    }
    const a = this.addr + 4 * half;
    this.ram.writeU32(a, this.ram.readU32(a) | mask);
  }
}
