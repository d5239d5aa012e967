// virtio_mmio_probe / virtio_mmio_remove, and a scan of the board's
// virtio-mmio windows (what the DT's "virtio,mmio" nodes give Linux).
import { PLATFORM, type Bus } from '../../core/bus.js';
import { PAGE_SIZE } from '../../core/dma.js';
import { kernel } from '../../core/kernel.js';
import { ENODEV, ENXIO, errnoName } from '../../core/uapi/errno.js';
import { MAGIC_VALUE, MMIO_WINDOW_SIZE, REG } from '../../core/uapi/mmio.js';
import { registerVirtioDevice, unregisterVirtioDevice, type VirtioBus } from '../../core/virtio.js';
import { MmioPlatformDevice, VirtioMmioDevice } from './device.js';

/** What probing one window gave. */
export interface MmioProbeResult {
  base: number;
  line: number;
  /** 0, or the -errno virtio_mmio_probe returned. */
  ret: number;
  /** The registered device when ret is 0. */
  device: VirtioMmioDevice | null;
  /** Why the window was rejected (the kernel message), if it was reported. */
  message: string | null;
  /** An empty slot: DeviceID 0, skipped silently as Linux does. */
  empty: boolean;
}

function probeWindow(io: Bus, base: number, line: number, virtioBus?: VirtioBus): MmioProbeResult {
  const pdev = new MmioPlatformDevice(io, base, line);
  const result = (ret: number, message: string | null, empty = false): MmioProbeResult => ({
    base,
    line,
    ret,
    device: null,
    message,
    empty,
  });

  // Check magic value
  const magic = pdev.readl(REG.MagicValue);
  if (magic !== MAGIC_VALUE) {
    const msg = `Wrong magic value 0x${magic.toString(16).padStart(8, '0')}!`;
    kernel.log('warn', pdev, msg);
    return result(-ENODEV, msg);
  }

  // Check device version
  const version = pdev.readl(REG.Version);
  if (version < 1 || version > 2) {
    const msg = `Version ${version} not supported!`;
    kernel.log('err', pdev, msg);
    return result(-ENXIO, msg);
  }

  const device = pdev.readl(REG.DeviceID);
  if (device === 0) {
    // virtio-mmio device with an ID 0 is a (dummy) placeholder with no
    // function. End probing now with no error reported.
    return result(-ENODEV, null, true);
  }
  const vendor = pdev.readl(REG.VendorID);

  // Legacy devices need the guest page size to turn QueuePFN into an address.
  if (version === 1) pdev.writel(PAGE_SIZE, REG.GuestPageSize);

  const vmDev = new VirtioMmioDevice(pdev, version, { device, vendor }, virtioBus);
  const rc = registerVirtioDevice(vmDev);
  if (rc) return result(rc, `register_virtio_device failed: ${errnoName(rc)}`);

  return { base, line, ret: 0, device: vmDev, message: null, empty: false };
}

/**
 * virtio_mmio_probe for the window at `base` wired to interrupt `line`:
 * the registered device (bound to a driver if one on `virtioBus` matches),
 * or -errno (-ENODEV wrong magic or empty slot, -ENXIO bad version).
 */
export function virtioMmioProbe(io: Bus, base: number, line: number, virtioBus?: VirtioBus): VirtioMmioDevice | number {
  const r = probeWindow(io, base, line, virtioBus);
  return r.device ?? r.ret;
}

/** virtio_mmio_remove */
export function virtioMmioRemove(vmDev: VirtioMmioDevice): void {
  unregisterVirtioDevice(vmDev);
}

export interface MmioScanResult {
  /** Devices registered, in slot order. */
  devices: VirtioMmioDevice[];
  /** One entry per window that is not empty: registered or rejected. */
  slots: (MmioProbeResult & { slot: number })[];
}

/**
 * Probe `count` windows at PLATFORM.MMIO_BASE + 0x200*i, window i on line i
 * (the QEMU virt board's wiring). Empty slots are skipped silently; rejected
 * windows stay in `slots` with their message.
 */
export function virtioMmioScan(io: Bus, count: number = PLATFORM.MMIO_SLOTS_DEFAULT, virtioBus?: VirtioBus): MmioScanResult {
  const out: MmioScanResult = { devices: [], slots: [] };
  for (let slot = 0; slot < count; slot++) {
    const r = probeWindow(io, PLATFORM.MMIO_BASE + MMIO_WINDOW_SIZE * slot, slot, virtioBus);
    if (r.empty) continue;
    out.slots.push({ slot, ...r });
    if (r.device) out.devices.push(r.device);
  }
  return out;
}
