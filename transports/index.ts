// The transports a modelled kernel can find devices on: each scans the
// board's slots through the bus and hands back registered devices with the
// dev_pm_ops their platform device carries.
import type { Bus } from '../core/bus.js';
import type { DevPmOps } from '../core/pm/pm.js';
import type { VirtioBus, VirtioDevice } from '../core/virtio.js';
import { ccwScanner } from './ccw/index.js';
import { virtioMmioPmOps, virtioMmioScan } from './mmio/index.js';

export interface FoundDevice {
  slot: number;
  /** The interrupt line the device's interrupts arrive on. */
  line: number;
  vdev: VirtioDevice;
  /** 'mmio', 'mmio-legacy', 'ccw' */
  transport: string;
  pm: DevPmOps<VirtioDevice>;
}

export interface TransportScan {
  devices: FoundDevice[];
  /** Windows or subchannels that are not empty but could not be registered. */
  errors: { slot: number; message: string }[];
}

export interface TransportScanner {
  name: string;
  /**
   * The transport's device initcall runs after the drivers register, as in a
   * kernel with everything built in: link order puts drivers/virtio/
   * (virtio_mmio) before drivers/char/ and drivers/block/ (the virtio
   * drivers), and drivers/s390/ (virtio_ccw) after them.
   */
  probesAfterDrivers: boolean;
  scan(bus: Bus, slots: number, virtioBus: VirtioBus): TransportScan;
}

export const mmioScanner: TransportScanner = {
  name: 'mmio',
  probesAfterDrivers: false,
  scan(bus, slots, virtioBus) {
    const r = virtioMmioScan(bus, slots, virtioBus);
    const out: TransportScan = { devices: [], errors: [] };
    for (const s of r.slots) {
      if (s.device) {
        out.devices.push({
          slot: s.slot,
          line: s.line,
          vdev: s.device,
          transport: s.device.version === 1 ? 'mmio-legacy' : 'mmio',
          pm: virtioMmioPmOps,
        });
      } else {
        out.errors.push({ slot: s.slot, message: s.message ?? `probe failed (${s.ret})` });
      }
    }
    return out;
  },
};

/** Every transport, scanned in this order; devices register in slot order within each. */
export const transportScanners: TransportScanner[] = [mmioScanner, ccwScanner];
