// drivers/s390/virtio/virtio_ccw.c: the virtio_ccw_device and its
// virtio_config_ops. Every operation is a channel program in guest memory,
// started on the device's subchannel and completed by its I/O interrupt
// (ccw_io_helper); nothing here calls device code directly. The transport is
// not noirq_safe and has no reset_vqs: with device interrupts masked its
// reset, get_status, set_status and finalize_features cannot complete.
import { setDeviceIrqChip } from '../../core/completion.js';
import { setDeviceDma, type DmaAllocator } from '../../core/dma.js';
import { devErr, devInfo, devWarn, kernel } from '../../core/kernel.js';
import {
  CCW1,
  CCW_CMD_READ_CONF,
  CCW_CMD_READ_FEAT,
  CCW_CMD_READ_STATUS,
  CCW_CMD_READ_VQ_CONF,
  CCW_CMD_SET_CONF_IND,
  CCW_CMD_SET_IND,
  CCW_CMD_SET_IND_ADAPTER,
  CCW_CMD_SET_VIRTIO_REV,
  CCW_CMD_SET_VQ,
  CCW_CMD_VDEV_RESET,
  CCW_CMD_WRITE_CONF,
  CCW_CMD_WRITE_FEAT,
  CCW_CMD_WRITE_STATUS,
  CCW_FLAG_SLI,
  CSS_REG,
  DEV_STAT_CHN_END,
  DEV_STAT_DEV_END,
  DEV_STAT_UNIT_CHECK,
  FEATURE_DESC,
  INDICATOR_ADDR_SIZE,
  KVM_VIRTIO_CCW_RING_ALIGN,
  REV_INFO,
  SNS0_CMD_REJECT,
  THININT_AREA,
  VIRTIO_CCW_CONFIG_SIZE,
  VIRTIO_CCW_DOING_READ_CONFIG,
  VIRTIO_CCW_DOING_READ_FEAT,
  VIRTIO_CCW_DOING_READ_STATUS,
  VIRTIO_CCW_DOING_READ_VQ_CONF,
  VIRTIO_CCW_DOING_RESET,
  VIRTIO_CCW_DOING_SET_CONF_IND,
  VIRTIO_CCW_DOING_SET_IND,
  VIRTIO_CCW_DOING_SET_IND_ADAPTER,
  VIRTIO_CCW_DOING_SET_VIRTIO_REV,
  VIRTIO_CCW_DOING_SET_VQ,
  VIRTIO_CCW_DOING_WRITE_CONFIG,
  VIRTIO_CCW_DOING_WRITE_FEAT,
  VIRTIO_CCW_DOING_WRITE_STATUS,
  VIRTIO_CCW_INTPARM_MASK,
  VIRTIO_CCW_REV_MAX,
  VQ_CONFIG_BLOCK,
  VQ_INFO_BLOCK,
  VQ_INFO_BLOCK_LEGACY,
} from '../../core/uapi/ccw.js';
import { EINVAL, EIO, ENODEV, ENOENT, ENOMEM, EOPNOTSUPP } from '../../core/uapi/errno.js';
import { VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_VERSION_1, fromWords, hi32, lo32 } from '../../core/uapi/features.js';
import {
  KernelBug,
  VirtioDevice,
  __virtioTestBit,
  virtioBus as defaultVirtioBus,
  virtioConfigChanged,
  type VirtioBus,
  type VirtioDeviceId,
} from '../../core/virtio.js';
import type { VirtioConfigOps } from '../../core/virtio-types.js';
import { vringCreateVirtqueue, vringNotificationData, vringTransportFeatures, type VringVirtqueue } from '../../core/virtqueue/vring.js';
import type { Virtqueue, VirtqueueInfo, VqCallback } from '../../core/virtio-types.js';
import type { CcwDevice, Irb } from './cio.js';
import { ccwIoHelper, type CcwIoState } from './io.js';

/** Module parameters and state of virtio_ccw that are not per device. */
export const virtioCcwParams = {
  /** virtio_ccw_use_airq: cleared once a host rejects adapter interrupts. */
  useAirq: true,
};

// vcdev->dma_area: {unsigned long indicators; unsigned long indicators2;
// struct vq_config_block config_block; u8 status;}
export const DMA_AREA = { indicators: 0, indicators2: 8, configBlock: 16, status: 20, SIZE: 24 } as const;

/** struct virtio_ccw_vq_info */
export interface VirtioCcwVqInfo {
  vq: VringVirtqueue;
  num: number;
  /** Guest-physical address of the info block (union of the legacy and current layouts). */
  infoBlock: number;
}

/** struct virtio_ccw_device */
export class VirtioCcwDevice extends VirtioDevice implements CcwIoState {
  readonly cdev: CcwDevice;
  readonly dma: DmaAllocator;
  /** vcdev->config: what the driver last read of the config area. */
  readonly configShadow = new Uint8Array(VIRTIO_CCW_CONFIG_SIZE);
  configReady = 0;
  currIo = 0;
  err = 0;
  /** Transport revision negotiated by SET_VIRTIO_REV. */
  revision = 0;
  isThinint: boolean;
  goingAway = false;
  deviceLost = false;
  /** vcdev->dma_area (guest-physical). */
  dmaArea = 0;
  /** vcdev->virtqueues */
  readonly virtqueues: VirtioCcwVqInfo[] = [];
  ioTimeoutMs: number | null = null;

  constructor(cdev: CcwDevice, id: VirtioDeviceId, virtioBus: VirtioBus = defaultVirtioBus) {
    super(virtioCcwConfigOps, id, virtioBus);
    this.cdev = cdev;
    this.dma = cdev.dma;
    this.isThinint = virtioCcwParams.useAirq; // at least try
    setDeviceDma(this, this.dma);
    setDeviceIrqChip(this, cdev.io.irq);
  }

  /** The cached status byte in dma_area. */
  get statusByte(): number {
    return this.u8(this.dmaArea + DMA_AREA.status);
  }
  set statusByte(v: number) {
    this.setU8(this.dmaArea + DMA_AREA.status, v);
  }

  get indicatorsAddr(): number {
    return this.dmaArea + DMA_AREA.indicators;
  }
  get indicators2Addr(): number {
    return this.dmaArea + DMA_AREA.indicators2;
  }

  view(addr: number, len: number): DataView {
    const b = this.dma.bytes(addr, len);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u8(addr: number): number {
    return this.dma.bytes(addr, 1)[0]!;
  }
  setU8(addr: number, v: number): void {
    this.dma.bytes(addr, 1)[0] = v & 0xff;
  }
  setU64(addr: number, v: number): void {
    const d = this.view(addr, 8);
    d.setUint32(0, v % 0x1_0000_0000, true);
    d.setUint32(4, Math.floor(v / 0x1_0000_0000), true);
  }

  /** Atomically take the bits of the indicator word at addr (test_and_clear over the whole word). */
  takeIndicators(addr: number): bigint {
    const b = this.dma.bytes(addr, 8);
    if (b.byteOffset % 4 !== 0) throw new KernelBug('virtio_ccw_int_handler', 'misaligned indicators');
    const w = new Int32Array(b.buffer, b.byteOffset, 2);
    const lo = Atomics.exchange(w, 0, 0);
    const hi = Atomics.exchange(w, 1, 0);
    return fromWords(lo >>> 0, hi >>> 0);
  }

  /** clear_bit(nr) on the indicator word at addr; returns whether it was set. */
  testAndClearIndicator(addr: number, nr: number): boolean {
    const b = this.dma.bytes(addr, 8);
    const w = new Int32Array(b.buffer, b.byteOffset, 2);
    const mask = 1 << (nr & 31);
    return (Atomics.and(w, nr >>> 5, ~mask) & mask) !== 0;
  }
}

/** to_vc_device (container_of) */
export function toVcDevice(vdev: VirtioDevice): VirtioCcwDevice {
  if (!(vdev instanceof VirtioCcwDevice)) throw new KernelBug('to_vc_device', `${vdev.name} is not a virtio-ccw device`);
  return vdev;
}

// ---------------------------------------------------------------------------
// Channel programs

/** ccw_device_dma_zalloc(): zeroed DMA memory, or null (the caller returns -ENOMEM). */
function dmaZalloc(vcdev: VirtioCcwDevice, size: number): number | null {
  return vcdev.dma.alloc(size, 8);
}

function dmaFree(vcdev: VirtioCcwDevice, addr: number | null): void {
  if (addr !== null && addr !== 0) vcdev.dma.free(addr);
}

/** Fill the struct ccw1 at addr. */
function setCcw(vcdev: VirtioCcwDevice, ccw: number, cmd: number, flags: number, count: number, cda: number): void {
  const d = vcdev.view(ccw, CCW1.SIZE);
  d.setUint8(CCW1.cmd_code, cmd);
  d.setUint8(CCW1.flags, flags);
  d.setUint16(CCW1.count, count, true);
  d.setUint32(CCW1.cda, cda >>> 0, true);
}

/**
 * One command: allocate the ccw and a payload, let fill() prepare the
 * payload, run it, let done() read the result, and free both even when the
 * wait throws. Returns the ccw_io_helper result, or -ENOMEM.
 */
function runCommand(
  vcdev: VirtioCcwDevice,
  cmd: number,
  intparm: number,
  payload: { size: number; count?: number; flags?: number; fill?: (addr: number) => void; done?: (addr: number) => void },
): number {
  const ccw = dmaZalloc(vcdev, CCW1.SIZE);
  if (ccw === null) return -ENOMEM;
  const area = payload.size > 0 ? dmaZalloc(vcdev, payload.size) : 0;
  if (area === null) {
    dmaFree(vcdev, ccw);
    return -ENOMEM;
  }
  try {
    payload.fill?.(area);
    setCcw(vcdev, ccw, cmd, payload.flags ?? 0, payload.count ?? payload.size, area);
    const ret = ccwIoHelper(vcdev, ccw, intparm);
    if (!ret) payload.done?.(area);
    return ret;
  } finally {
    dmaFree(vcdev, area);
    dmaFree(vcdev, ccw);
  }
}

// ---------------------------------------------------------------------------
// Queues and indicators

/** virtio_ccw_kvm_notify: DIAGNOSE 0x500 with the queue index (the hypercall's cookie is not modelled). */
function virtioCcwKvmNotify(vq: Virtqueue): boolean {
  const vcdev = toVcDevice(vq.vdev);
  vcdev.cdev.writel(vq.index, CSS_REG.Notify);
  return true;
}

/** The VIRTIO_F_NOTIFICATION_DATA variant: the next avail idx above the index. */
function virtioCcwKvmNotifyWithData(vq: Virtqueue): boolean {
  const vcdev = toVcDevice(vq.vdev);
  vcdev.cdev.writel(vringNotificationData(vq), CSS_REG.Notify);
  return true;
}

/** virtio_ccw_read_vq_conf: the queue's size, or -ENOENT when it has none. */
function virtioCcwReadVqConf(vcdev: VirtioCcwDevice, index: number): number {
  const block = vcdev.dmaArea + DMA_AREA.configBlock;
  const ccw = dmaZalloc(vcdev, CCW1.SIZE);
  if (ccw === null) return -ENOMEM;
  try {
    vcdev.view(block, VQ_CONFIG_BLOCK.SIZE).setUint16(VQ_CONFIG_BLOCK.index, index, true);
    setCcw(vcdev, ccw, CCW_CMD_READ_VQ_CONF, 0, VQ_CONFIG_BLOCK.SIZE, block);
    const ret = ccwIoHelper(vcdev, ccw, VIRTIO_CCW_DOING_READ_VQ_CONF);
    if (ret) return ret;
    return vcdev.view(block, VQ_CONFIG_BLOCK.SIZE).getUint16(VQ_CONFIG_BLOCK.num, true) || -ENOENT;
  } finally {
    dmaFree(vcdev, ccw);
  }
}

/** Fill a vq info block: the legacy layout at revision 0, the split one above. */
function fillInfoBlock(vcdev: VirtioCcwDevice, info: number, index: number, vq: VringVirtqueue | null, num: number): number {
  const d = vcdev.view(info, VQ_INFO_BLOCK.SIZE);
  if (vcdev.revision === 0) {
    vcdev.setU64(info + VQ_INFO_BLOCK_LEGACY.queue, vq ? vq.getDescAddr() : 0);
    d.setUint32(VQ_INFO_BLOCK_LEGACY.align, vq ? KVM_VIRTIO_CCW_RING_ALIGN : 0, true);
    d.setUint16(VQ_INFO_BLOCK_LEGACY.index, index, true);
    d.setUint16(VQ_INFO_BLOCK_LEGACY.num, num, true);
    return VQ_INFO_BLOCK_LEGACY.SIZE;
  }
  vcdev.setU64(info + VQ_INFO_BLOCK.desc, vq ? vq.getDescAddr() : 0);
  d.setUint32(VQ_INFO_BLOCK.res0, 0, true);
  d.setUint16(VQ_INFO_BLOCK.index, index, true);
  d.setUint16(VQ_INFO_BLOCK.num, num, true);
  vcdev.setU64(info + VQ_INFO_BLOCK.avail, vq ? vq.getAvailAddr() : 0);
  vcdev.setU64(info + VQ_INFO_BLOCK.used, vq ? vq.getUsedAddr() : 0);
  return VQ_INFO_BLOCK.SIZE;
}

/** SET_VQ with the info block at info. */
function setVq(vcdev: VirtioCcwDevice, info: number, count: number, index: number): number {
  const ccw = dmaZalloc(vcdev, CCW1.SIZE);
  if (ccw === null) return -ENOMEM;
  try {
    setCcw(vcdev, ccw, CCW_CMD_SET_VQ, 0, count, info);
    return ccwIoHelper(vcdev, ccw, VIRTIO_CCW_DOING_SET_VQ | index);
  } finally {
    dmaFree(vcdev, ccw);
  }
}

function virtioCcwSetupVq(vdev: VirtioDevice, i: number, callback: VqCallback | null, name: string, ctx: boolean): VringVirtqueue | number {
  const vcdev = toVcDevice(vdev);
  const notify = __virtioTestBit(vdev, VIRTIO_F_NOTIFICATION_DATA) ? virtioCcwKvmNotifyWithData : virtioCcwKvmNotify;

  // Allocate queue.
  const infoBlock = dmaZalloc(vcdev, VQ_INFO_BLOCK.SIZE);
  if (infoBlock === null) {
    devWarn(vcdev.cdev, 'no info block');
    return -ENOMEM;
  }
  let vq: VringVirtqueue | null = null;
  try {
    const num = virtioCcwReadVqConf(vcdev, i);
    if (num < 0) {
      dmaFree(vcdev, infoBlock);
      return num;
    }
    const mayReduce = vcdev.revision > 0;
    const created = vringCreateVirtqueue(i, num, KVM_VIRTIO_CCW_RING_ALIGN, vdev, true, mayReduce, ctx, notify, callback, name, vcdev.dma);
    if (typeof created === 'number') {
      // For now, we fail if we can't get the requested size.
      devWarn(vcdev.cdev, 'no vq');
      dmaFree(vcdev, infoBlock);
      return -ENOMEM;
    }
    vq = created;
    vq.numMax = num;
    // It may have been reduced.
    const size = vq.getVringSize();

    // Register it with the host.
    const count = fillInfoBlock(vcdev, infoBlock, i, vq, size);
    const err = setVq(vcdev, infoBlock, count, i);
    if (err) {
      devWarn(vcdev.cdev, 'SET_VQ failed');
      vq.del();
      dmaFree(vcdev, infoBlock);
      return err;
    }
    vcdev.virtqueues.push({ vq, num: size, infoBlock });
    return vq;
  } catch (e) {
    // The wait threw (deadlock, dead machine): undo what this call set up.
    vq?.del();
    dmaFree(vcdev, infoBlock);
    throw e;
  }
}

/** virtio_ccw_del_vq: release the queue from the host (SET_VQ with zero addresses), then free it. */
function virtioCcwDelVq(vcdev: VirtioCcwDevice, info: VirtioCcwVqInfo): void {
  const index = info.vq.index;

  // Remove from our list.
  const at = vcdev.virtqueues.indexOf(info);
  if (at >= 0) vcdev.virtqueues.splice(at, 1);

  try {
    const count = fillInfoBlock(vcdev, info.infoBlock, index, null, 0);
    const ret = setVq(vcdev, info.infoBlock, count, index);
    // -ENODEV isn't considered an error: the device is gone anyway.
    if (ret && ret !== -ENODEV) devWarn(vcdev, `Error ${ret} while deleting queue ${index}`);
  } finally {
    info.vq.del();
    dmaFree(vcdev, info.infoBlock);
  }
}

/** virtio_ccw_drop_indicator: deregister the queue indicators from the host. */
function virtioCcwDropIndicator(vcdev: VirtioCcwDevice): void {
  let ret: number;
  if (vcdev.isThinint) {
    ret = runCommand(vcdev, CCW_CMD_SET_IND_ADAPTER, VIRTIO_CCW_DOING_SET_IND_ADAPTER, { size: THININT_AREA.SIZE });
  } else {
    // The payload is the address of the indicators: 0 deregisters.
    ret = runCommand(vcdev, CCW_CMD_SET_IND, VIRTIO_CCW_DOING_SET_IND, { size: INDICATOR_ADDR_SIZE });
  }
  vcdev.view(vcdev.indicatorsAddr, 8).setBigUint64(0, 0n, true);
  if (ret && ret !== -ENODEV) devInfo(vcdev.cdev, `Failed to deregister indicators (${ret})`);
}

function virtioCcwDelVqs(vdev: VirtioDevice): void {
  const vcdev = toVcDevice(vdev);
  // Every queue is freed even when a channel program throws (a deadlock or a
  // dead machine); the first such error is rethrown afterwards.
  let error: unknown = null;
  const attempt = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      error ??= e;
    }
  };
  attempt(() => virtioCcwDropIndicator(vcdev));
  for (const info of [...vcdev.virtqueues]) attempt(() => virtioCcwDelVq(vcdev, info));
  if (error !== null) throw error;
}

/**
 * virtio_ccw_register_adapter_ind: ask for adapter (thin) interrupts. This
 * model has no adapter-interrupt facility of its own, so the area names the
 * classic indicators; a host that cannot do adapter interrupts (this board)
 * rejects the command and the driver stops trying.
 */
function virtioCcwRegisterAdapterInd(vcdev: VirtioCcwDevice): number {
  const ret = runCommand(vcdev, CCW_CMD_SET_IND_ADAPTER, VIRTIO_CCW_DOING_SET_IND_ADAPTER, {
    size: THININT_AREA.SIZE,
    flags: CCW_FLAG_SLI,
    fill: (area) => {
      vcdev.setU64(area + THININT_AREA.summary_indicator, vcdev.indicators2Addr);
      vcdev.setU64(area + THININT_AREA.indicator, vcdev.indicatorsAddr);
    },
  });
  if (ret) {
    if (ret === -EOPNOTSUPP) {
      // The host does not support adapter interrupts for virtio-ccw, stop trying.
      virtioCcwParams.useAirq = false;
      kernel.log('info', null, 'virtio_ccw: Adapter interrupts unsupported on host');
    } else {
      devWarn(vcdev.cdev, `enabling adapter interrupts = ${ret}`);
    }
  }
  return ret;
}

/** Register an indicator word's address with SET_IND or SET_CONF_IND. */
function setIndicator(vcdev: VirtioCcwDevice, cmd: number, intparm: number, indicator: number): number {
  vcdev.view(indicator, 8).setBigUint64(0, 0n, true);
  return runCommand(vcdev, cmd, intparm, { size: INDICATOR_ADDR_SIZE, fill: (p) => vcdev.setU64(p, indicator) });
}

function virtioCcwFindVqs(vdev: VirtioDevice, vqs: (Virtqueue | null)[], vqsInfo: VirtqueueInfo[]): number {
  const vcdev = toVcDevice(vdev);
  let queueIdx = 0;
  let ret = 0;

  try {
    for (let i = 0; i < vqsInfo.length; ++i) {
      const info = vqsInfo[i]!;
      if (!info.name) {
        vqs[i] = null;
        continue;
      }
      const vq = virtioCcwSetupVq(vdev, queueIdx++, info.callback ?? null, info.name, info.ctx ?? false);
      if (typeof vq === 'number') {
        vqs[i] = null;
        ret = vq;
        break;
      }
      vqs[i] = vq;
    }
    if (!ret) {
      if (vcdev.isThinint) {
        // No error, just fall back to classic indicators.
        if (virtioCcwRegisterAdapterInd(vcdev)) vcdev.isThinint = false;
      }
      // Register queue indicators with host.
      if (!vcdev.isThinint) ret = setIndicator(vcdev, CCW_CMD_SET_IND, VIRTIO_CCW_DOING_SET_IND, vcdev.indicatorsAddr);
    }
    // Register indicators2 with host for config changes.
    if (!ret) ret = setIndicator(vcdev, CCW_CMD_SET_CONF_IND, VIRTIO_CCW_DOING_SET_CONF_IND, vcdev.indicators2Addr);
  } catch (e) {
    for (const info of [...vcdev.virtqueues]) {
      info.vq.del();
      dmaFree(vcdev, info.infoBlock);
    }
    vcdev.virtqueues.length = 0;
    throw e;
  }
  if (ret) virtioCcwDelVqs(vdev);
  return ret;
}

// ---------------------------------------------------------------------------
// Configuration interface

function virtioCcwReset(vdev: VirtioDevice): void {
  const vcdev = toVcDevice(vdev);
  // Zero status bits.
  vcdev.statusByte = 0;
  // Send a reset ccw on device.
  runCommand(vcdev, CCW_CMD_VDEV_RESET, VIRTIO_CCW_DOING_RESET, { size: 0 });
}

function virtioCcwGetFeatures(vdev: VirtioDevice): bigint {
  const vcdev = toVcDevice(vdev);
  let lo = 0;
  let hi = 0;
  const read = (index: number): number | null => {
    let word: number | null = null;
    const ret = runCommand(vcdev, CCW_CMD_READ_FEAT, VIRTIO_CCW_DOING_READ_FEAT, {
      size: FEATURE_DESC.SIZE,
      fill: (p) => vcdev.setU8(p + FEATURE_DESC.index, index),
      done: (p) => (word = vcdev.view(p, FEATURE_DESC.SIZE).getUint32(FEATURE_DESC.features, true)),
    });
    return ret ? null : word;
  };
  // Read the feature bits from the host.
  const w0 = read(0);
  if (w0 === null) return 0n;
  lo = w0;
  if (vcdev.revision === 0) return fromWords(lo, 0);
  // Read second half of the feature bits from the host.
  hi = read(1) ?? 0;
  return fromWords(lo, hi);
}

function virtioCcwFinalizeFeatures(vdev: VirtioDevice): number {
  const vcdev = toVcDevice(vdev);

  if (vcdev.revision >= 1 && !__virtioTestBit(vdev, VIRTIO_F_VERSION_1)) {
    devErr(vdev, 'virtio: device uses revision 1 but does not have VIRTIO_F_VERSION_1');
    return -EINVAL;
  }

  // Give virtio_ring a chance to accept features.
  vringTransportFeatures(vdev);
  // Give virtio_ccw a chance to accept features (ccw_transport_features: nothing to do).

  const write = (index: number, word: number): number =>
    runCommand(vcdev, CCW_CMD_WRITE_FEAT, VIRTIO_CCW_DOING_WRITE_FEAT, {
      size: FEATURE_DESC.SIZE,
      fill: (p) => {
        vcdev.view(p, FEATURE_DESC.SIZE).setUint32(FEATURE_DESC.features, word, true);
        vcdev.setU8(p + FEATURE_DESC.index, index);
      },
    });

  // Write the first half of the feature bits to the host.
  let ret = write(0, lo32(vdev.features));
  if (ret || vcdev.revision === 0) return ret;
  // Write the second half of the feature bits to the host.
  ret = write(1, hi32(vdev.features));
  return ret;
}

/** virtio_ccw_get_config: READ_CONF of the first offset + len bytes. */
function virtioCcwGetConfig(vdev: VirtioDevice, offset: number, buf: Uint8Array): void {
  const vcdev = toVcDevice(vdev);
  const len = buf.length;
  if (offset + len > VIRTIO_CCW_CONFIG_SIZE) throw new KernelBug('virtio_ccw_get_config', `config read past 0x${VIRTIO_CCW_CONFIG_SIZE.toString(16)}`);
  runCommand(vcdev, CCW_CMD_READ_CONF, VIRTIO_CCW_DOING_READ_CONFIG, {
    size: VIRTIO_CCW_CONFIG_SIZE,
    count: offset + len,
    done: (area) => {
      const data = vcdev.dma.bytes(area, offset + len);
      vcdev.configShadow.set(data);
      if (vcdev.configReady < offset + len) vcdev.configReady = offset + len;
      buf.set(data.subarray(offset, offset + len));
    },
  });
}

/** virtio_ccw_set_config: WRITE_CONF of the shadow's first offset + len bytes. */
function virtioCcwSetConfig(vdev: VirtioDevice, offset: number, buf: Uint8Array): void {
  const vcdev = toVcDevice(vdev);
  const len = buf.length;
  if (offset + len > VIRTIO_CCW_CONFIG_SIZE) throw new KernelBug('virtio_ccw_set_config', `config write past 0x${VIRTIO_CCW_CONFIG_SIZE.toString(16)}`);
  // Make sure we don't overwrite fields.
  if (vcdev.configReady < offset) virtioCcwGetConfig(vdev, 0, new Uint8Array(offset));
  vcdev.configShadow.set(buf, offset);
  runCommand(vcdev, CCW_CMD_WRITE_CONF, VIRTIO_CCW_DOING_WRITE_CONFIG, {
    size: VIRTIO_CCW_CONFIG_SIZE,
    count: offset + len,
    fill: (area) => vcdev.dma.bytes(area, VIRTIO_CCW_CONFIG_SIZE).set(vcdev.configShadow),
  });
}

/** Revision ≥ 2 reads the status from the device; below, the cached byte is all there is. */
function virtioCcwGetStatus(vdev: VirtioDevice): number {
  const vcdev = toVcDevice(vdev);
  if (vcdev.revision < 2) return vcdev.statusByte;

  const ccw = dmaZalloc(vcdev, CCW1.SIZE);
  if (ccw === null) return vcdev.statusByte;
  try {
    setCcw(vcdev, ccw, CCW_CMD_READ_STATUS, 0, 1, vcdev.dmaArea + DMA_AREA.status);
    // If the channel program failed, the status byte was not overwritten
    // and the old status is returned, which is fine.
    ccwIoHelper(vcdev, ccw, VIRTIO_CCW_DOING_READ_STATUS);
  } finally {
    dmaFree(vcdev, ccw);
  }
  return vcdev.statusByte;
}

function virtioCcwSetStatus(vdev: VirtioDevice, status: number): void {
  const vcdev = toVcDevice(vdev);
  const oldStatus = vcdev.statusByte;
  const ccw = dmaZalloc(vcdev, CCW1.SIZE);
  if (ccw === null) return;
  let ok = false;
  try {
    // Write the status to the host.
    vcdev.statusByte = status;
    setCcw(vcdev, ccw, CCW_CMD_WRITE_STATUS, 0, 1, vcdev.dmaArea + DMA_AREA.status);
    ok = ccwIoHelper(vcdev, ccw, VIRTIO_CCW_DOING_WRITE_STATUS) === 0;
  } finally {
    // Write failed? We assume status is unchanged.
    if (!ok) vcdev.statusByte = oldStatus;
    dmaFree(vcdev, ccw);
  }
}

/** virtio_ccw_synchronize_cbs: write_lock_irq/unlock of the handler's lock (it may sleep). */
function virtioCcwSynchronizeCbs(vdev: VirtioDevice): void {
  kernel.checkSleepable(vdev, 'write_lock_irq', 'virtio_ccw_synchronize_cbs');
  // Handlers run on this thread only, so none is in flight here.
}

function virtioCcwBusName(vdev: VirtioDevice): string {
  return toVcDevice(vdev).cdev.name;
}

export const virtioCcwConfigOps: VirtioConfigOps = {
  get: virtioCcwGetConfig,
  set: virtioCcwSetConfig,
  getStatus: virtioCcwGetStatus,
  setStatus: virtioCcwSetStatus,
  reset: virtioCcwReset,
  findVqs: virtioCcwFindVqs,
  delVqs: virtioCcwDelVqs,
  synchronizeCbs: virtioCcwSynchronizeCbs,
  getFeatures: virtioCcwGetFeatures,
  finalizeFeatures: virtioCcwFinalizeFeatures,
  busName: virtioCcwBusName,
  // Every op above is a channel program that waits for an I/O interrupt:
  // with device interrupts masked (noirq) it cannot complete. No reset_vqs.
  noirqSafe: false,
};

// ---------------------------------------------------------------------------
// Revision and interrupts

/** virtio_ccw_set_transport_rev: start at the highest revision, step down on command reject. */
export function virtioCcwSetTransportRev(vcdev: VirtioCcwDevice): number {
  let ret: number;
  vcdev.revision = VIRTIO_CCW_REV_MAX;
  do {
    // None of our supported revisions carry payload.
    ret = runCommand(vcdev, CCW_CMD_SET_VIRTIO_REV, VIRTIO_CCW_DOING_SET_VIRTIO_REV, {
      size: REV_INFO.SIZE,
      fill: (p) => vcdev.view(p, REV_INFO.SIZE).setUint16(REV_INFO.revision, vcdev.revision, true),
    });
    if (ret === -EOPNOTSUPP) {
      // The host device does not support setting the revision: operate it in legacy mode.
      if (vcdev.revision === 0) ret = 0;
      else vcdev.revision--;
    }
  } while (ret === -EOPNOTSUPP);
  return ret;
}

function irbIsError(irb: Irb): boolean {
  if (irb.cstat !== 0) return true;
  if (irb.dstat & ~(DEV_STAT_CHN_END | DEV_STAT_DEV_END)) return true;
  if (irb.cc !== 0) return true;
  return false;
}

const KNOWN_ACTIVITIES = [
  VIRTIO_CCW_DOING_READ_FEAT,
  VIRTIO_CCW_DOING_WRITE_FEAT,
  VIRTIO_CCW_DOING_READ_CONFIG,
  VIRTIO_CCW_DOING_WRITE_CONFIG,
  VIRTIO_CCW_DOING_WRITE_STATUS,
  VIRTIO_CCW_DOING_READ_STATUS,
  VIRTIO_CCW_DOING_SET_VQ,
  VIRTIO_CCW_DOING_SET_IND,
  VIRTIO_CCW_DOING_SET_CONF_IND,
  VIRTIO_CCW_DOING_RESET,
  VIRTIO_CCW_DOING_READ_VQ_CONF,
  VIRTIO_CCW_DOING_SET_IND_ADAPTER,
  VIRTIO_CCW_DOING_SET_VIRTIO_REV,
];

function virtioCcwCheckActivity(vcdev: VirtioCcwDevice, activity: number): void {
  if (!(vcdev.currIo & activity)) return;
  if (KNOWN_ACTIVITIES.includes(activity)) {
    vcdev.currIo = (vcdev.currIo & ~activity) >>> 0; // and wake_up(&vcdev->wait_q)
    return;
  }
  // don't know what to do...
  devWarn(vcdev.cdev, `Suspicious activity '${activity.toString(16).padStart(8, '0')}'`);
  kernel.warnOn(true, vcdev, '1', 'virtio_ccw_check_activity');
}

function virtioCcwVqByInd(vcdev: VirtioCcwDevice, index: number): VringVirtqueue | null {
  return vcdev.virtqueues.find((i) => i.vq.index === index)?.vq ?? null;
}

/** virtio_ccw_int_handler */
export function virtioCcwIntHandler(cdev: CcwDevice, intparm: number, irb: Irb | number): void {
  const activity = (intparm & VIRTIO_CCW_INTPARM_MASK) >>> 0;
  const vcdev = cdev.drvdata instanceof VirtioCcwDevice ? cdev.drvdata : null;
  if (!vcdev) return;
  if (typeof irb === 'number') {
    vcdev.err = irb;
    virtioCcwCheckActivity(vcdev, activity);
    // Don't poke around indicators, something's wrong.
    return;
  }
  if (irbIsError(irb)) {
    // Command reject? Map everything else to -EIO.
    if (irb.dstat & DEV_STAT_UNIT_CHECK && irb.ecw[0]! & SNS0_CMD_REJECT) vcdev.err = -EOPNOTSUPP;
    else vcdev.err = -EIO;
  }
  virtioCcwCheckActivity(vcdev, activity);
  // The bits are cleared before the vring kick.
  const bits = vcdev.takeIndicators(vcdev.indicatorsAddr);
  for (let i = 0; bits >> BigInt(i) !== 0n; i++) {
    if (!((bits >> BigInt(i)) & 1n)) continue;
    const vq = virtioCcwVqByInd(vcdev, i);
    if (vq) vq.interrupt(cdev.line);
  }
  // Cleared before the call, so a change reported during it raises the bit again.
  if (vcdev.testAndClearIndicator(vcdev.indicators2Addr, 0)) virtioConfigChanged(vcdev);
}

