// drivers/virtio/virtio.c with shared/reference/noirq-pm-patch.txt applied,
// plus the inline helpers of include/linux/virtio_config.h it relies on.
// Each function carries its C name in camelCase and keeps the C's checks in
// the C's order, so the two can be read side by side.
import { EINVAL, EIO, ENODEV, EOPNOTSUPP } from './uapi/errno.js';
import {
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_VERSION_1,
  VIRTIO_TRANSPORT_F_END,
  VIRTIO_TRANSPORT_F_START,
  bit,
  hasBit,
} from './uapi/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from './uapi/status.js';
import { devErr, devWarn, kernel } from './kernel.js';
import {
  VIRTIO_DEV_ANY_ID,
  VIRTIO_NOIRQ_ENTERED,
  VIRTIO_NOIRQ_NONE,
  VIRTIO_NOIRQ_RESTORED,
  type VirtioBus,
  type VirtioDevice,
  virtioBus,
  type VirtioDeviceId,
  type VirtioDriver,
  type Virtqueue,
  type VirtqueueInfo,
} from './virtio-types.js';

export {
  VIRTIO_DEV_ANY_ID,
  VIRTIO_NOIRQ_ENTERED,
  VIRTIO_NOIRQ_NONE,
  VIRTIO_NOIRQ_RESTORED,
  VirtioBus,
  VirtioDevice,
  virtioBus,
  type VirtioConfigOps,
  type VirtioDeviceId,
  type VirtioDriver,
  type VirtioNoirqState,
} from './virtio-types.js';

/** A kernel BUG(): the model stops the calling path, as the kernel would oops. */
export class KernelBug extends Error {
  constructor(where: string, what: string) {
    super(`kernel BUG in ${where}: ${what}`);
    this.name = 'KernelBug';
  }
}

function drvToVirtio(dev: VirtioDevice): VirtioDriver | null {
  return dev.driver;
}

/**
 * drv_to_virtio(dev->dev.driver) where the driver core guarantees a bound
 * driver (the bus probe and remove): Linux dereferences it unchecked, so a
 * NULL there is an oops, modelled as a KernelBug.
 */
function boundDriver(dev: VirtioDevice, where: string): VirtioDriver {
  if (!dev.driver) throw new KernelBug(where, 'NULL pointer dereference: dev->dev.driver');
  return dev.driver;
}

// ---------------------------------------------------------------------------
// Feature bits (virtio_config.h)

export function __virtioTestBit(vdev: VirtioDevice, fbit: number): boolean {
  return hasBit(vdev.features, fbit);
}

export function __virtioSetBit(vdev: VirtioDevice, fbit: number): void {
  vdev.features |= bit(fbit);
}

export function __virtioClearBit(vdev: VirtioDevice, fbit: number): void {
  vdev.features &= ~bit(fbit);
}

export function virtioCheckDriverOfferedFeature(vdev: VirtioDevice, fbit: number): void {
  const drv = drvToVirtio(vdev);
  if (drv) {
    if (drv.featureTable.includes(fbit)) return;
    if (drv.featureTableLegacy?.includes(fbit)) return;
  }
  throw new KernelBug('virtio_check_driver_offered_feature', `feature ${fbit} not in the driver's table`);
}

/** virtio_has_feature: device-type bits must be in the driver's table. */
export function virtioHasFeature(vdev: VirtioDevice, fbit: number): boolean {
  if (fbit < VIRTIO_TRANSPORT_F_START) virtioCheckDriverOfferedFeature(vdev, fbit);
  return __virtioTestBit(vdev, fbit);
}

/** Restricted-memory platforms (e.g. Xen grants) demand VERSION_1 + ACCESS_PLATFORM. */
export const platform = { restrictedMemoryAccess: false };

function virtioCheckMemAccCb(_dev: VirtioDevice): boolean {
  return platform.restrictedMemoryAccess;
}

// ---------------------------------------------------------------------------
// Break / unbreak / synchronize (virtio_ring.c, virtio_config.h)

export function virtioBreakDevice(dev: VirtioDevice): void {
  for (const vq of dev.vqs) vq.broken = true;
}

export function __virtioUnbreakDevice(dev: VirtioDevice): void {
  for (const vq of dev.vqs) vq.broken = false;
}

/** virtio_synchronize_cbs: waits for running callbacks; it may sleep. */
export function virtioSynchronizeCbs(dev: VirtioDevice): void {
  kernel.checkSleepable(dev, 'virtio_synchronize_cbs', 'virtio_synchronize_cbs');
  if (dev.config.synchronizeCbs) dev.config.synchronizeCbs(dev);
  // else synchronize_rcu(): nothing runs concurrently on this thread.
}

/** virtio_device_ready (virtio_config.h) */
export function virtioDeviceReady(dev: VirtioDevice): void {
  const status = dev.config.getStatus(dev);

  kernel.warnOn((status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0, dev, 'status & VIRTIO_CONFIG_S_DRIVER_OK', 'virtio_device_ready');

  if (kernel.hardenNotification) {
    virtioSynchronizeCbs(dev);
    __virtioUnbreakDevice(dev);
  }

  dev.config.setStatus(dev, status | VIRTIO_CONFIG_S_DRIVER_OK);
}

/** virtio_device_ready_noirq (the patch): no synchronize_cbs. */
export function virtioDeviceReadyNoirq(dev: VirtioDevice): void {
  const status = dev.config.getStatus(dev);

  kernel.warnOn(!dev.config.noirqSafe, dev, '!dev->config->noirq_safe', 'virtio_device_ready_noirq');
  kernel.warnOn((status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0, dev, 'status & VIRTIO_CONFIG_S_DRIVER_OK', 'virtio_device_ready_noirq');

  if (kernel.hardenNotification) __virtioUnbreakDevice(dev);

  dev.config.setStatus(dev, status | VIRTIO_CONFIG_S_DRIVER_OK);
}

// ---------------------------------------------------------------------------
// Config change reporting

function __virtioConfigChanged(dev: VirtioDevice): void {
  const drv = drvToVirtio(dev);

  if (!dev.configCoreEnabled || dev.configDriverDisabled) dev.configChangePending = true;
  else if (drv && drv.configChanged) {
    drv.configChanged(dev);
    dev.configChangePending = false;
  }
}

/** Called from the transport's interrupt handler (spin_lock_irqsave). */
export function virtioConfigChanged(dev: VirtioDevice): void {
  __virtioConfigChanged(dev);
}

/** spin_lock_irq(): re-enables interrupts on unlock, wrong in noirq context. */
function spinLockIrq(dev: VirtioDevice, where: string): void {
  kernel.checkSleepable(dev, 'spin_lock_irq', where);
}

/** Drivers only; not nestable. */
export function virtioConfigDriverDisable(dev: VirtioDevice): void {
  spinLockIrq(dev, 'virtio_config_driver_disable');
  dev.configDriverDisabled = true;
}

export function virtioConfigDriverEnable(dev: VirtioDevice): void {
  spinLockIrq(dev, 'virtio_config_driver_enable');
  dev.configDriverDisabled = false;
  if (dev.configChangePending) __virtioConfigChanged(dev);
}

function virtioConfigCoreDisable(dev: VirtioDevice): void {
  spinLockIrq(dev, 'virtio_config_core_disable');
  dev.configCoreEnabled = false;
}

function virtioConfigCoreEnable(dev: VirtioDevice): void {
  spinLockIrq(dev, 'virtio_config_core_enable');
  dev.configCoreEnabled = true;
  if (dev.configChangePending) __virtioConfigChanged(dev);
}

/** The patch: spin_lock_irqsave variant, safe in noirq. */
export function virtioConfigCoreEnableNoirq(dev: VirtioDevice): void {
  dev.configCoreEnabled = true;
  if (dev.configChangePending) __virtioConfigChanged(dev);
}

// ---------------------------------------------------------------------------
// Status and feature negotiation

export function virtioAddStatus(dev: VirtioDevice, status: number): void {
  kernel.checkSleepable(dev, 'might_sleep', 'virtio_add_status');
  dev.config.setStatus(dev, dev.config.getStatus(dev) | status);
}

/** The patch: no might_sleep(); the transport must be noirq_safe. */
export function virtioAddStatusNoirq(dev: VirtioDevice, status: number): void {
  kernel.warnOn(!dev.config.noirqSafe, dev, '!dev->config->noirq_safe', 'virtio_add_status_noirq');
  dev.config.setStatus(dev, dev.config.getStatus(dev) | status);
}

/** Do some validation, then set FEATURES_OK */
function virtioFeaturesOk(dev: VirtioDevice): number {
  kernel.checkSleepable(dev, 'might_sleep', 'virtio_features_ok');

  if (virtioCheckMemAccCb(dev)) {
    if (!virtioHasFeature(dev, VIRTIO_F_VERSION_1)) {
      devWarn(dev, 'device must provide VIRTIO_F_VERSION_1');
      return -ENODEV;
    }

    if (!virtioHasFeature(dev, VIRTIO_F_ACCESS_PLATFORM)) {
      devWarn(dev, 'device must provide VIRTIO_F_ACCESS_PLATFORM');
      return -ENODEV;
    }
  }

  if (!virtioHasFeature(dev, VIRTIO_F_VERSION_1)) return 0;

  virtioAddStatus(dev, VIRTIO_CONFIG_S_FEATURES_OK);
  const status = dev.config.getStatus(dev);
  if (!(status & VIRTIO_CONFIG_S_FEATURES_OK)) {
    devErr(dev, `virtio: device refuses features: ${status.toString(16)}`);
    return -ENODEV;
  }
  return 0;
}

/** The patch: noirq-safe variant; skips the mem_acc check (it may sleep). */
export function virtioFeaturesOkNoirq(dev: VirtioDevice): number {
  if (!virtioHasFeature(dev, VIRTIO_F_VERSION_1)) return 0;

  virtioAddStatusNoirq(dev, VIRTIO_CONFIG_S_FEATURES_OK);
  const status = dev.config.getStatus(dev);
  if (!(status & VIRTIO_CONFIG_S_FEATURES_OK)) {
    devErr(dev, `virtio: device refuses features: ${status.toString(16)}`);
    return -ENODEV;
  }
  return 0;
}

/** virtio_reset_device - quiesce device for removal */
export function virtioResetDevice(dev: VirtioDevice): void {
  if (kernel.hardenNotification) {
    virtioBreakDevice(dev);
    virtioSynchronizeCbs(dev);
  }

  dev.config.reset(dev);
}

/** The patch: IRQ handlers are already quiesced in noirq, so no synchronize_cbs. */
export function virtioResetDeviceNoirq(dev: VirtioDevice): void {
  kernel.warnOn(!dev.config.noirqSafe, dev, '!dev->config->noirq_safe', 'virtio_reset_device_noirq');

  if (kernel.hardenNotification) virtioBreakDevice(dev);

  dev.config.reset(dev);
}

// ---------------------------------------------------------------------------
// Bus probe / remove / shutdown

function virtioDevProbe(dev: VirtioDevice): number {
  const drv = boundDriver(dev, 'virtio_dev_probe');
  let err: number;

  /* We have a driver! */
  virtioAddStatus(dev, VIRTIO_CONFIG_S_DRIVER);

  /* Figure out what features the device supports. */
  const deviceFeatures = dev.config.getFeatures(dev);

  /* Figure out what features the driver supports. */
  let driverFeatures = 0n;
  for (const f of drv.featureTable) {
    if (!kernel.warnOnOnce(f >= 128, dev, 'f >= VIRTIO_FEATURES_MAX', 'virtio_dev_probe')) driverFeatures |= bit(f);
  }

  /* Some drivers have a separate feature table for virtio v1.0 */
  let driverFeaturesLegacy: bigint;
  if (drv.featureTableLegacy) {
    driverFeaturesLegacy = 0n;
    for (const f of drv.featureTableLegacy) {
      if (!kernel.warnOnOnce(f >= 64, dev, 'f >= 64', 'virtio_dev_probe')) driverFeaturesLegacy |= bit(f);
    }
  } else {
    driverFeaturesLegacy = driverFeatures & 0xffff_ffff_ffff_ffffn;
  }

  if (hasBit(deviceFeatures, VIRTIO_F_VERSION_1)) dev.features = driverFeatures & deviceFeatures;
  else dev.features = driverFeaturesLegacy & deviceFeatures & 0xffff_ffff_ffff_ffffn;

  /* Transport features always preserved to pass to finalize_features. */
  for (let i = VIRTIO_TRANSPORT_F_START; i < VIRTIO_TRANSPORT_F_END; i++)
    if (hasBit(deviceFeatures, i)) __virtioSetBit(dev, i);

  err = dev.config.finalizeFeatures(dev);
  if (err) return probeErr(dev, err);

  if (drv.validate) {
    const features = dev.features;
    err = drv.validate(dev);
    if (err) return probeErr(dev, err);

    /* Did validation change any features? Then write them again. */
    if (features !== dev.features) {
      err = dev.config.finalizeFeatures(dev);
      if (err) return probeErr(dev, err);
    }
  }

  err = virtioFeaturesOk(dev);
  if (err) return probeErr(dev, err);

  err = drv.probe(dev);
  if (err) return probeErr(dev, err);

  /* If probe didn't do it, mark device DRIVER_OK ourselves. */
  if (!(dev.config.getStatus(dev) & VIRTIO_CONFIG_S_DRIVER_OK)) virtioDeviceReady(dev);

  if (drv.scan) drv.scan(dev);

  virtioConfigCoreEnable(dev);

  return 0;
}

/** virtio_dev_probe's err: label */
function probeErr(dev: VirtioDevice, err: number): number {
  virtioAddStatus(dev, VIRTIO_CONFIG_S_FAILED);
  return err;
}

function virtioDevRemove(dev: VirtioDevice): void {
  const drv = boundDriver(dev, 'virtio_dev_remove');

  virtioConfigCoreDisable(dev);

  drv.remove(dev);

  /* Driver should have reset device. */
  kernel.warnOnOnce(dev.config.getStatus(dev) !== 0, dev, 'dev->config->get_status(dev)', 'virtio_dev_remove');

  /* Acknowledge the device's existence again. */
  virtioAddStatus(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
}

/** virtio_dev_shutdown: stop accesses to or from the device. */
export function virtioDevShutdown(dev: VirtioDevice): void {
  const drv = drvToVirtio(dev);

  if (!drv) return;

  if (drv.shutdown) {
    drv.shutdown(dev);
    return;
  }

  virtioBreakDevice(dev);
  virtioSynchronizeCbs(dev);
  dev.config.reset(dev);
}

function virtioIdMatch(dev: VirtioDevice, id: VirtioDeviceId): boolean {
  if (id.device !== dev.id.device && id.device !== VIRTIO_DEV_ANY_ID) return false;
  return id.vendor === VIRTIO_DEV_ANY_ID || id.vendor === dev.id.vendor;
}

function virtioDevMatch(dev: VirtioDevice, drv: VirtioDriver): boolean {
  return drv.idTable.some((id) => id.device !== 0 && virtioIdMatch(dev, id));
}

/** really_probe(): bind, call the bus probe, unbind on failure. */
function reallyProbe(dev: VirtioDevice, drv: VirtioDriver): number {
  dev.driver = drv;
  const ret = virtioDevProbe(dev);
  dev.probeResult = ret;
  if (ret) {
    dev.driver = null;
    dev.priv = null;
    kernel.log('warn', dev, `${drv.name}: probe of ${dev.name} failed with error ${ret}`);
  }
  return ret;
}

/** bus_probe_device(): first matching driver wins. */
function busProbeDevice(dev: VirtioDevice): void {
  for (const drv of dev.bus.drivers) {
    if (!virtioDevMatch(dev, drv)) continue;
    reallyProbe(dev, drv);
    return;
  }
}

/** device_release_driver() */
function deviceReleaseDriver(dev: VirtioDevice): void {
  if (!dev.driver) return;
  virtioDevRemove(dev);
  dev.driver = null;
  dev.priv = null;
}

export function registerVirtioDriver(driver: VirtioDriver, bus: VirtioBus = virtioBus): number {
  bus.drivers.push(driver);
  for (const dev of bus.devices) if (!dev.driver && virtioDevMatch(dev, driver)) reallyProbe(dev, driver);
  return 0;
}

export function unregisterVirtioDriver(driver: VirtioDriver, bus: VirtioBus = virtioBus): void {
  for (const dev of bus.devices) if (dev.driver === driver) deviceReleaseDriver(dev);
  const i = bus.drivers.indexOf(driver);
  if (i >= 0) bus.drivers.splice(i, 1);
}

/**
 * virtio_device_of_init: bind the transport's one DT child node if it is
 * compatible with "virtio,device<id>". More than one child is WARN_ON and
 * -EINVAL.
 */
function virtioDeviceOfInit(dev: VirtioDevice): number {
  const count = dev.ofChildNodes.length;
  if (!count) return 0;

  /* There can be only 1 child node */
  if (kernel.warnOn(count > 1, dev, 'count > 1', 'virtio_device_of_init')) return -EINVAL;

  const np = dev.ofChildNodes[0]!;
  const compat = `virtio,device${dev.id.device.toString(16)}`;

  /* Not compatible: don't init of_node. */
  if (np !== compat) return 0;

  dev.ofNode = np;
  return 0;
}

/** device_add(): makes the device visible and lets the bus find it a driver. */
function deviceAdd(dev: VirtioDevice): number {
  if (dev.bus.deviceAddError) return -Math.abs(dev.bus.deviceAddError);
  dev.bus.devices.push(dev);
  busProbeDevice(dev);
  return 0;
}

/**
 * register_virtio_device - register virtio device
 * Returns 0 on success, -error on failure (FAILED set in the status, the
 * index freed again).
 */
export function registerVirtioDevice(dev: VirtioDevice): number {
  let err: number;

  /* Assign a unique device index and hence name. */
  err = dev.bus.idaAlloc();
  if (err < 0) return registerErr(dev, err);

  dev.index = err;
  dev.name = `virtio${dev.index}`;

  err = virtioDeviceOfInit(dev);
  if (err) {
    dev.bus.idaFree(dev.index);
    return registerErr(dev, err);
  }

  dev.configDriverDisabled = false;
  dev.configCoreEnabled = false;
  dev.configChangePending = false;
  dev.noirqState = VIRTIO_NOIRQ_NONE;

  dev.vqs.length = 0;

  /* We always start by resetting the device, in case a previous
   * driver messed it up.  This also tests that code path a little. */
  virtioResetDevice(dev);

  /* Acknowledge that we've seen the device. */
  virtioAddStatus(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);

  /* device_add() causes the bus infrastructure to look for a matching driver. */
  err = deviceAdd(dev);
  if (err) {
    dev.ofNode = null; /* of_node_put */
    dev.bus.idaFree(dev.index);
    return registerErr(dev, err);
  }

  return 0;
}

/** register_virtio_device's out: label */
function registerErr(dev: VirtioDevice, err: number): number {
  virtioAddStatus(dev, VIRTIO_CONFIG_S_FAILED);
  return err;
}

export function unregisterVirtioDevice(dev: VirtioDevice): void {
  const index = dev.index; /* save for after device release */

  deviceReleaseDriver(dev);
  const i = dev.bus.devices.indexOf(dev);
  if (i >= 0) dev.bus.devices.splice(i, 1);
  dev.bus.idaFree(index);
}

// ---------------------------------------------------------------------------
// Re-initialisation and system sleep

export function virtioDeviceReinit(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);

  /* We always start by resetting the device, in case a previous
   * driver messed it up. */
  virtioResetDevice(dev);

  /* Acknowledge that we've seen the device. */
  virtioAddStatus(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);

  /* Maybe driver failed before freeze.
   * Restore the failed status, for debugging. */
  if (dev.failed) virtioAddStatus(dev, VIRTIO_CONFIG_S_FAILED);

  if (!drv) return 0;

  /* We have a driver! */
  virtioAddStatus(dev, VIRTIO_CONFIG_S_DRIVER);

  const ret = dev.config.finalizeFeatures(dev);
  if (ret) return ret;

  return virtioFeaturesOk(dev);
}

/** The patch: noirq-safe variant of virtio_device_reinit(). */
export function virtioDeviceReinitNoirq(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);

  virtioResetDeviceNoirq(dev);

  virtioAddStatusNoirq(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);

  if (dev.failed) virtioAddStatusNoirq(dev, VIRTIO_CONFIG_S_FAILED);

  if (!drv) return 0;

  virtioAddStatusNoirq(dev, VIRTIO_CONFIG_S_DRIVER);

  const ret = dev.config.finalizeFeatures(dev);
  if (ret) return ret;

  return virtioFeaturesOkNoirq(dev);
}

/** Each callback pair must be fully implemented or fully absent. */
export function virtioHasValidPmCbs(drv: VirtioDriver): boolean {
  const hasFreeze = !!drv.freeze;
  const hasRestore = !!drv.restore;
  const hasFreezeNoirq = !!drv.freezeNoirq;
  const hasRestoreNoirq = !!drv.restoreNoirq;

  if (hasFreeze !== hasRestore) return false;
  if (hasFreezeNoirq !== hasRestoreNoirq) return false;
  return true;
}

export function virtioDeviceFreeze(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);

  virtioConfigCoreDisable(dev);

  dev.failed = (dev.config.getStatus(dev) & VIRTIO_CONFIG_S_FAILED) !== 0;
  dev.noirqState = VIRTIO_NOIRQ_NONE;

  /* freeze_noirq and restore_noirq must be implemented as a pair. */
  if (drv && !virtioHasValidPmCbs(drv)) {
    devWarn(dev, 'freeze/restore and freeze_noirq/restore_noirq must each be paired');
    virtioConfigCoreEnable(dev);
    return -EINVAL;
  }

  /* A driver with noirq callbacks needs a transport that never waits for an
   * interrupt in reset/get_status/set_status. */
  if (drv && drv.restoreNoirq && !dev.config.noirqSafe) {
    devWarn(dev, 'transport does not support noirq PM');
    virtioConfigCoreEnable(dev);
    return -EOPNOTSUPP;
  }

  if (drv && drv.freeze) {
    const ret = drv.freeze(dev);
    if (ret) {
      virtioConfigCoreEnable(dev);
      return ret;
    }
  }

  return 0;
}

export function virtioDeviceRestore(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);
  let ret: number;

  /* freeze_noirq ran but restore_noirq did not complete: the noirq phase
   * failed, and the normal restore is no implicit same-device fallback. */
  if (drv && drv.restoreNoirq && dev.noirqState === VIRTIO_NOIRQ_ENTERED) {
    ret = -EIO;
    return restoreErr(dev, ret);
  }

  /* Re-initialization is needed only for drivers without restore_noirq:
   * NONE means the device is still live, RESTORED that noirq did it. */
  if (!drv || !drv.restoreNoirq) {
    ret = virtioDeviceReinit(dev);
    if (ret) return restoreErr(dev, ret);
    if (!drv) return 0;
  }

  if (drv.restore) {
    ret = drv.restore(dev);
    if (ret) return restoreErr(dev, ret);
  }

  /* If restore didn't do it, mark device DRIVER_OK ourselves. */
  if (!(dev.config.getStatus(dev) & VIRTIO_CONFIG_S_DRIVER_OK)) virtioDeviceReady(dev);

  virtioConfigCoreEnable(dev);

  return 0;
}

/** virtio_device_restore's err: label */
function restoreErr(dev: VirtioDevice, ret: number): number {
  virtioAddStatus(dev, VIRTIO_CONFIG_S_FAILED);
  return ret;
}

export function virtioDeviceFreezeNoirq(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);

  if (!drv) return 0;

  /* Pairing is validated in virtio_device_freeze(). Guard the transport
   * again: this should have been caught at freeze time. */
  if (drv.freezeNoirq && !dev.config.noirqSafe) {
    devWarn(dev, 'transport does not support noirq PM');
    return -EOPNOTSUPP;
  }

  /* Active vqs need reset_vqs to come back in restore_noirq; fail now so the
   * PM core can abort gracefully. */
  if (drv.freezeNoirq && dev.vqs.length !== 0 && !dev.config.resetVqs) {
    devWarn(dev, 'transport does not support noirq PM restore with active vqs (missing reset_vqs)');
    return -EOPNOTSUPP;
  }

  /* On failure the driver has rolled back, so the state stays NONE and
   * restore() proceeds without reinit. */
  if (drv.freezeNoirq) {
    const ret = drv.freezeNoirq(dev);

    if (!ret) dev.noirqState = VIRTIO_NOIRQ_ENTERED;

    return ret;
  }

  return 0;
}

export function virtioDeviceRestoreNoirq(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);
  let ret: number;

  if (!drv || !drv.restoreNoirq) return 0;

  /* reset, get_status and set_status below must be noirq-safe. */
  if (!dev.config.noirqSafe) {
    devWarn(dev, 'transport does not support noirq PM; skipping restore');
    return -EOPNOTSUPP;
  }

  ret = virtioDeviceReinitNoirq(dev);
  if (ret) return restoreNoirqErr(dev, ret);

  if (dev.vqs.length !== 0) {
    if (!dev.config.resetVqs) {
      ret = -EOPNOTSUPP;
      return restoreNoirqErr(dev, ret);
    }

    ret = dev.config.resetVqs(dev);
    if (ret) return restoreNoirqErr(dev, ret);
  }

  ret = drv.restoreNoirq(dev);
  if (ret) return restoreNoirqErr(dev, ret);

  /* Mark that noirq restore has completed successfully. */
  dev.noirqState = VIRTIO_NOIRQ_RESTORED;

  /* If restore_noirq set DRIVER_OK, enable config now. */
  if (dev.config.getStatus(dev) & VIRTIO_CONFIG_S_DRIVER_OK) virtioConfigCoreEnableNoirq(dev);

  return 0;
}

/** virtio_device_restore_noirq's err: label */
function restoreNoirqErr(dev: VirtioDevice, ret: number): number {
  virtioAddStatusNoirq(dev, VIRTIO_CONFIG_S_FAILED);
  return ret;
}

export function virtioDeviceResetPrepare(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);

  if (!drv || !drv.resetPrepare) return -EOPNOTSUPP;

  virtioConfigCoreDisable(dev);

  dev.failed = (dev.config.getStatus(dev) & VIRTIO_CONFIG_S_FAILED) !== 0;

  const ret = drv.resetPrepare(dev);
  if (ret) {
    virtioConfigCoreEnable(dev);
    return ret;
  }
  return 0;
}

export function virtioDeviceResetDone(dev: VirtioDevice): number {
  const drv = drvToVirtio(dev);
  let ret: number;

  if (!drv || !drv.resetDone) return -EOPNOTSUPP;

  ret = virtioDeviceReinit(dev);
  if (ret) return restoreErr(dev, ret);

  ret = drv.resetDone(dev);
  if (ret) return restoreErr(dev, ret);

  /* If reset_done didn't do it, mark device DRIVER_OK ourselves. */
  if (!(dev.config.getStatus(dev) & VIRTIO_CONFIG_S_DRIVER_OK)) virtioDeviceReady(dev);

  virtioConfigCoreEnable(dev);
  return 0;
}

// ---------------------------------------------------------------------------
// Config space access (virtio_config.h)

export function virtioFindVqs(
  vdev: VirtioDevice,
  vqs: (Virtqueue | null)[],
  vqsInfo: VirtqueueInfo[],
): number {
  return vdev.config.findVqs(vdev, vqs, vqsInfo);
}

function cget(vdev: VirtioDevice, offset: number, len: number): DataView {
  kernel.checkSleepable(vdev, 'might_sleep', 'virtio_cread');
  const buf = new Uint8Array(len);
  vdev.config.get(vdev, offset, buf);
  return new DataView(buf.buffer);
}

export function virtioCread8(vdev: VirtioDevice, offset: number): number {
  return cget(vdev, offset, 1).getUint8(0);
}

export function virtioCread16(vdev: VirtioDevice, offset: number): number {
  return cget(vdev, offset, 2).getUint16(0, true);
}

export function virtioCread32(vdev: VirtioDevice, offset: number): number {
  return cget(vdev, offset, 4).getUint32(0, true);
}

/**
 * __virtio_cread_many: reads that are not atomic loop until ConfigGeneration
 * is the same before and after.
 */
export function virtioCreadBytes(vdev: VirtioDevice, offset: number, len: number, bytesPerRead = len): Uint8Array {
  kernel.checkSleepable(vdev, 'might_sleep', 'virtio_cread_bytes');
  const out = new Uint8Array(len);
  let old: number;
  let gen = vdev.config.generation ? vdev.config.generation(vdev) : 0;
  do {
    old = gen;
    for (let i = 0; i < len; i += bytesPerRead) {
      const chunk = out.subarray(i, Math.min(len, i + bytesPerRead));
      vdev.config.get(vdev, offset + i, chunk);
    }
    gen = vdev.config.generation ? vdev.config.generation(vdev) : 0;
  } while (gen !== old);
  return out;
}

/** virtio_cread64: two 32-bit halves inside a generation loop. */
export function virtioCread64(vdev: VirtioDevice, offset: number): bigint {
  const b = virtioCreadBytes(vdev, offset, 8, 4);
  return new DataView(b.buffer).getBigUint64(0, true);
}

function cput(vdev: VirtioDevice, offset: number, len: number, fill: (v: DataView) => void): void {
  kernel.checkSleepable(vdev, 'might_sleep', 'virtio_cwrite');
  const buf = new Uint8Array(len);
  fill(new DataView(buf.buffer));
  vdev.config.set(vdev, offset, buf);
}

export function virtioCwrite8(vdev: VirtioDevice, offset: number, v: number): void {
  cput(vdev, offset, 1, (d) => d.setUint8(0, v));
}

export function virtioCwrite16(vdev: VirtioDevice, offset: number, v: number): void {
  cput(vdev, offset, 2, (d) => d.setUint16(0, v, true));
}

export function virtioCwrite32(vdev: VirtioDevice, offset: number, v: number): void {
  cput(vdev, offset, 4, (d) => d.setUint32(0, v >>> 0, true));
}
