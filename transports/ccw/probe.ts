// The virtio_ccw ccw_driver: probe (take the subchannel's interrupt),
// online (negotiate the revision, register the virtio device), remove, and
// a scan of the board's subchannels (what the css scan gives Linux).
import { PLATFORM, type Bus } from '../../core/bus.js';
import { devWarn, kernel } from '../../core/kernel.js';
import type { DevPmOps } from '../../core/pm/pm.js';
import { VIRTIO_CCW_CU_TYPE } from '../../core/uapi/ccw.js';
import { ENODEV, ENOMEM, errnoName } from '../../core/uapi/errno.js';
import { registerVirtioDevice, unregisterVirtioDevice, virtioBreakDevice, type VirtioBus, type VirtioDevice } from '../../core/virtio.js';
import { CcwDevice } from './cio.js';
import { DMA_AREA, VirtioCcwDevice, virtioCcwIntHandler, virtioCcwSetTransportRev } from './device.js';
import { virtioCcwPmOps } from './pm.js';

/** What probing one subchannel gave. */
export interface CcwProbeResult {
  schid: number;
  line: number;
  /** 0, or the -errno the probe returned. */
  ret: number;
  device: VirtioCcwDevice | null;
  message: string | null;
  /** No device on the subchannel (or not a virtio one): skipped silently. */
  empty: boolean;
}

/** Release what virtio_ccw_online set up when it fails. */
function offline(cdev: CcwDevice, vcdev: VirtioCcwDevice | null): void {
  if (vcdev?.dmaArea) vcdev.dma.free(vcdev.dmaArea);
  cdev.drvdata = null;
  cdev.handler = null;
  cdev.disable();
}

function probeSubchannel(io: Bus, schid: number, virtioBus?: VirtioBus): CcwProbeResult {
  const result = (ret: number, message: string | null, empty = false): CcwProbeResult => ({ schid, line: schid, ret, device: null, message, empty });
  const cdev = new CcwDevice(io, schid);
  // The ccw bus matches CCW_DEVICE(0x3832, 0): any model of that control unit.
  if (cdev.id.cuType !== VIRTIO_CCW_CU_TYPE) return result(-ENODEV, null, true);

  // virtio_ccw_probe: the interrupt handler goes in first; every later step needs it.
  let ret = cdev.enable();
  if (ret) return result(ret, `set online failed: ${errnoName(ret)}`);
  cdev.handler = virtioCcwIntHandler;

  // virtio_ccw_online
  const vcdev = new VirtioCcwDevice(cdev, { vendor: cdev.id.cuType, device: cdev.id.cuModel }, virtioBus);
  try {
    const area = vcdev.dma.alloc(DMA_AREA.SIZE, 8);
    if (area === null) {
      offline(cdev, null);
      return result(-ENOMEM, 'Could not get memory for virtio');
    }
    vcdev.dmaArea = area;
    cdev.drvdata = vcdev;

    ret = virtioCcwSetTransportRev(vcdev);
    if (ret) {
      offline(cdev, vcdev);
      return result(ret, `setting the transport revision failed: ${errnoName(ret)}`);
    }
    ret = registerVirtioDevice(vcdev);
    if (ret) {
      const msg = `Failed to register virtio device: ${ret}`;
      devWarn(cdev, msg);
      offline(cdev, vcdev);
      return result(ret, msg);
    }
  } catch (e) {
    // A machine fault or a wait that cannot end: leave the subchannel as found.
    kernel.log('err', cdev, `virtio_ccw online failed: ${e instanceof Error ? e.message : String(e)}`);
    try {
      offline(cdev, vcdev);
    } catch {
      // the bus is gone; nothing more to release
    }
    throw e;
  }
  return { schid, line: schid, ret: 0, device: vcdev, message: null, empty: false };
}

/**
 * Probe and set online the ccw device on subchannel `schid` (= board slot,
 * interrupt line = slot): the registered device (bound to a driver if one on
 * `virtioBus` matches), or -errno (-ENODEV: no virtio-ccw device there).
 */
export function virtioCcwProbe(io: Bus, schid: number, virtioBus?: VirtioBus): VirtioCcwDevice | number {
  const r = probeSubchannel(io, schid, virtioBus);
  return r.device ?? r.ret;
}

/** virtio_ccw_remove (set offline): unregister, then release the subchannel. */
export function virtioCcwRemove(vcdev: VirtioCcwDevice): void {
  const cdev = vcdev.cdev;
  if (vcdev.goingAway) return;
  vcdev.goingAway = true;
  if (vcdev.deviceLost) virtioBreakDevice(vcdev);
  unregisterVirtioDevice(vcdev);
  offline(cdev, vcdev);
  vcdev.dmaArea = 0;
}

export interface CcwScanResult {
  devices: VirtioCcwDevice[];
  /** One entry per subchannel with a virtio-ccw device: registered or rejected. */
  slots: (CcwProbeResult & { slot: number })[];
}

/** Probe subchannels 0..count-1 (board slots); subchannels without a device are skipped silently. */
export function virtioCcwScan(io: Bus, count: number = PLATFORM.MMIO_SLOTS_DEFAULT, virtioBus?: VirtioBus): CcwScanResult {
  const out: CcwScanResult = { devices: [], slots: [] };
  for (let slot = 0; slot < count; slot++) {
    const r = probeSubchannel(io, slot, virtioBus);
    if (r.empty) continue;
    out.slots.push({ slot, ...r });
    if (r.device) out.devices.push(r.device);
  }
  return out;
}

/** A scanned device the way transports/index.ts's TransportScanner reports it. */
export interface CcwFoundDevice {
  slot: number;
  line: number;
  vdev: VirtioDevice;
  transport: 'ccw';
  pm: DevPmOps<VirtioDevice>;
}

/** The ccw entry for the list of transport scanners (transports/index.ts). */
export const ccwScanner = {
  name: 'ccw',
  probesAfterDrivers: true,
  scan(bus: Bus, slots: number, virtioBus: VirtioBus): { devices: CcwFoundDevice[]; errors: { slot: number; message: string }[] } {
    const r = virtioCcwScan(bus, slots, virtioBus);
    const out: { devices: CcwFoundDevice[]; errors: { slot: number; message: string }[] } = { devices: [], errors: [] };
    for (const s of r.slots) {
      if (s.device) out.devices.push({ slot: s.slot, line: s.line, vdev: s.device, transport: 'ccw', pm: virtioCcwPmOps });
      else out.errors.push({ slot: s.slot, message: s.message ?? `probe failed (${errnoName(s.ret)})` });
    }
    return out;
  },
};
