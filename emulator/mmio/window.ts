// One virtio-mmio register window (0x200 bytes) as the board's address
// decoder sees it. Offsets are relative to the window; the decoder guarantees
// offset + width ≤ 0x200. Neither method throws.
import type { AccessWidth } from '../../core/bus.js';
import type { DeviceCounters } from '../virtio/signals.js';

export interface MmioWindow {
  read(offset: number, width: AccessWidth): number;
  write(offset: number, width: AccessWidth, value: number): void;
  readonly counters: DeviceCounters;
}
