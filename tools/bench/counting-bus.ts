// A Bus wrapper that counts the register accesses a kernel makes (plugged in
// through VirtioSystem's wrapBus), for the accesses-per-device figures and
// the kicks of the data-path cases.
import type { AccessWidth, Bus, GuestMemory, IrqChip } from '../../core/bus.js';
import { REG } from '../../core/uapi/mmio.js';
import { MMIO_WINDOW_SIZE } from '../../core/uapi/mmio.js';

export class CountingBus implements Bus {
  readonly mem: GuestMemory;
  readonly irq: IrqChip;
  reads = 0;
  writes = 0;
  /** Writes to a QueueNotify register (virtio-mmio kicks). */
  notifies = 0;

  constructor(private readonly inner: Bus) {
    this.mem = inner.mem;
    this.irq = inner.irq;
  }

  get accesses(): number {
    return this.reads + this.writes;
  }

  read(addr: number, width: AccessWidth): number {
    this.reads++;
    return this.inner.read(addr, width);
  }

  write(addr: number, width: AccessWidth, value: number): void {
    this.writes++;
    if (addr % MMIO_WINDOW_SIZE === REG.QueueNotify) this.notifies++;
    this.inner.write(addr, width, value);
  }

  writePosted(addr: number, width: AccessWidth, value: number): void {
    this.writes++;
    if (addr % MMIO_WINDOW_SIZE === REG.QueueNotify) this.notifies++;
    const inner = this.inner;
    if (inner.writePosted) inner.writePosted(addr, width, value);
    else inner.write(addr, width, value);
  }

  reset(): void {
    this.reads = this.writes = this.notifies = 0;
  }
}
