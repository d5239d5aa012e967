// A window with no device behind it: MagicValue, Version 2, VendorID and
// DeviceID 0 (the placeholder a driver must skip silently, MMIO-R3); every
// other register reads 0 / ignores writes and counts a guest error, since a
// driver must touch nothing else after DeviceID 0 (MMIO-I1).
import type { AccessWidth } from '../../core/bus.js';
import { MAGIC_VALUE, REG, regName } from '../../core/uapi/mmio.js';
import { newCounters } from '../virtio/signals.js';
import { VENDOR_ID } from './registers.js';
import type { MmioWindow } from './window.js';

export class EmptySlot implements MmioWindow {
  readonly counters = newCounters();

  read(offset: number, width: AccessWidth): number {
    if (width === 4) {
      switch (offset) {
        case REG.MagicValue:
          return MAGIC_VALUE;
        case REG.Version:
          return 2;
        case REG.VendorID:
          return VENDOR_ID;
        case REG.DeviceID:
          return 0;
      }
    }
    this.error(`${width}-byte read of ${regName(offset)} in an empty slot`);
    return 0;
  }

  write(offset: number, width: AccessWidth, _value: number): void {
    this.error(`${width}-byte write of ${regName(offset)} in an empty slot`);
  }

  private error(msg: string): void {
    this.counters.guestErrors++;
    this.counters.lastGuestError = msg;
  }
}
