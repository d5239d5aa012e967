// The register trace kernel-diff compares: a Bus wrapper between a kernel
// and its machine that records every trapped access to a virtio-mmio window
// as {slot, register, width, direction, value}. Accesses elsewhere (the
// model's kernel also scans the ccw subchannels; Linux here has no ccw
// transport) are counted but not compared.
import { PLATFORM, type AccessWidth, type Bus, type GuestMemory, type IrqChip } from '../../core/bus.js';
import { MMIO_WINDOW_SIZE } from '../../core/uapi/mmio.js';

export interface Access {
  slot: number;
  /** Offset in the slot's window. */
  reg: number;
  width: AccessWidth;
  dir: 'r' | 'w';
  value: number;
}

export class AccessLog implements Bus {
  readonly accesses: Access[] = [];
  /** Accesses outside the virtio-mmio windows. */
  outside = 0;
  /** Off while the tool itself looks at the kernel (its reads are not the kernel's doing). */
  recording = true;
  private readonly end: number;

  constructor(
    private readonly inner: Bus,
    slots: number,
  ) {
    this.end = PLATFORM.MMIO_BASE + slots * MMIO_WINDOW_SIZE;
  }

  get mem(): GuestMemory {
    return this.inner.mem;
  }

  get irq(): IrqChip {
    return this.inner.irq;
  }

  read(addr: number, width: AccessWidth): number {
    const value = this.inner.read(addr, width);
    this.record(addr, width, 'r', value);
    return value;
  }

  write(addr: number, width: AccessWidth, value: number): void {
    this.inner.write(addr, width, value);
    this.record(addr, width, 'w', value);
  }

  private record(addr: number, width: AccessWidth, dir: 'r' | 'w', value: number): void {
    if (!this.recording) return;
    if (addr < PLATFORM.MMIO_BASE || addr >= this.end) {
      this.outside++;
      return;
    }
    const off = addr - PLATFORM.MMIO_BASE;
    const slot = Math.floor(off / MMIO_WINDOW_SIZE);
    this.accesses.push({ slot, reg: off - slot * MMIO_WINDOW_SIZE, width, dir, value: value >>> 0 });
  }
}
