// System sleep for virtio-ccw. Current Linux virtio_ccw has no PM ops:
// they went with s390 hibernation ("virtio/s390: drop hibernation
// support", 2020). Before that the ccw_driver had .freeze =
// virtio_ccw_freeze (virtio_device_freeze) and .thaw = .restore =
// virtio_ccw_restore (renegotiate the transport revision, then
// virtio_device_restore). Those are wired here, and suspend/resume and
// poweroff map to the same pair as SET_SYSTEM_SLEEP_PM_OPS would, so ccw
// devices take part in suspend-to-RAM too. There are no noirq callbacks:
// every transport op waits for an I/O interrupt, which cannot arrive while
// device interrupts are masked (noirq_safe = false).
import { setSystemSleepPmOps, type DevPmOps } from '../../core/pm/pm.js';
import { virtioDeviceFreeze, virtioDeviceRestore, type VirtioDevice } from '../../core/virtio.js';
import { toVcDevice, virtioCcwSetTransportRev } from './device.js';

export function virtioCcwFreeze(dev: VirtioDevice): number {
  const vcdev = toVcDevice(dev);
  return virtioDeviceFreeze(vcdev);
}

export function virtioCcwRestore(dev: VirtioDevice): number {
  const vcdev = toVcDevice(dev);

  const ret = virtioCcwSetTransportRev(vcdev);
  if (ret) return ret;

  return virtioDeviceRestore(vcdev);
}

/** The transport's dev_pm_ops, shaped like virtioMmioPmOps but without any *_noirq entry. */
export const virtioCcwPmOps = setSystemSleepPmOps(virtioCcwFreeze, virtioCcwRestore) satisfies DevPmOps<VirtioDevice>;

/** Short alias: the transport's pm ops. */
export const pm = virtioCcwPmOps;
