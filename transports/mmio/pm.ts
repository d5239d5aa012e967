// virtio-mmio's dev_pm_ops: the normal system-sleep pair (upstream) and the
// noirq pair the series adds. Legacy devices get GuestPageSize again before
// either restore, since the device may have lost it across the sleep.
import { PAGE_SIZE } from '../../core/dma.js';
import { setNoirqSystemSleepPmOps, setSystemSleepPmOps, type DevPmOps } from '../../core/pm/pm.js';
import { REG } from '../../core/uapi/mmio.js';
import {
  virtioDeviceFreeze,
  virtioDeviceFreezeNoirq,
  virtioDeviceRestore,
  virtioDeviceRestoreNoirq,
  type VirtioDevice,
} from '../../core/virtio.js';
import { toVirtioMmioDevice } from './device.js';

export function virtioMmioFreeze(dev: VirtioDevice): number {
  const vmDev = toVirtioMmioDevice(dev);
  return virtioDeviceFreeze(vmDev);
}

export function virtioMmioRestore(dev: VirtioDevice): number {
  const vmDev = toVirtioMmioDevice(dev);

  if (vmDev.version === 1) vmDev.writel(PAGE_SIZE, REG.GuestPageSize);

  return virtioDeviceRestore(vmDev);
}

export function virtioMmioFreezeNoirq(dev: VirtioDevice): number {
  const vmDev = toVirtioMmioDevice(dev);
  return virtioDeviceFreezeNoirq(vmDev);
}

export function virtioMmioRestoreNoirq(dev: VirtioDevice): number {
  const vmDev = toVirtioMmioDevice(dev);

  if (vmDev.version === 1) vmDev.writel(PAGE_SIZE, REG.GuestPageSize);

  return virtioDeviceRestoreNoirq(vmDev);
}

/**
 * virtio_mmio_pm_ops: SET_SYSTEM_SLEEP_PM_OPS(virtio_mmio_freeze,
 * virtio_mmio_restore) and SET_NOIRQ_SYSTEM_SLEEP_PM_OPS(
 * virtio_mmio_freeze_noirq, virtio_mmio_restore_noirq): suspend, freeze and
 * poweroff map to the first, resume, thaw and restore to the second.
 */
export const virtioMmioPmOps = {
  ...setSystemSleepPmOps(virtioMmioFreeze, virtioMmioRestore),
  ...setNoirqSystemSleepPmOps(virtioMmioFreezeNoirq, virtioMmioRestoreNoirq),
} satisfies DevPmOps<VirtioDevice>;

/** Short alias: the transport's pm ops. */
export const pm = virtioMmioPmOps;
