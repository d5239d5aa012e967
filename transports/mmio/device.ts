// drivers/virtio/virtio_mmio.c: the virtio_mmio_device and its
// virtio_config_ops. Every operation is a trapped register access on the
// device's 0x200-byte window; nothing here calls device code directly.
import { BusError, IRQ_HANDLED, IRQ_NONE, type Bus, type IrqHandler, type IrqReturn } from '../../core/bus.js';
import { setDeviceIrqChip } from '../../core/completion.js';
import { PAGE_SHIFT, PAGE_SIZE, dmaFor, setDeviceDma, type DmaAllocator } from '../../core/dma.js';
import { devErr, kernel, type LogTarget, type KernelMessage, type KernelWarning } from '../../core/kernel.js';
import { E2BIG, EINVAL, ENOENT, ENOMEM, ENXIO } from '../../core/uapi/errno.js';
import { VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_VERSION_1, fromWords, hi32, lo32 } from '../../core/uapi/features.js';
import { REG, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING } from '../../core/uapi/mmio.js';
import {
  KernelBug,
  VirtioDevice,
  __virtioTestBit,
  virtioBus as defaultVirtioBus,
  virtioConfigChanged,
  virtioHasFeature,
  type VirtioBus,
  type VirtioDeviceId,
} from '../../core/virtio.js';
import type { VirtioConfigOps } from '../../core/virtio-types.js';
import { toVvq, vringCreateVirtqueue, vringNotificationData, vringTransportFeatures, type VringVirtqueue } from '../../core/virtqueue/vring.js';
import type { Virtqueue, VirtqueueInfo, VqCallback } from '../../core/virtio-types.js';

/** The alignment between consumer and producer parts of the vring (hardcoded to the page size). */
export const VIRTIO_MMIO_VRING_ALIGN = PAGE_SIZE;

/** The platform device a virtio-mmio window is (pdev): logs go to its name. */
export class MmioPlatformDevice implements LogTarget {
  readonly name: string;
  readonly warnings: KernelWarning[] = [];
  readonly messages: KernelMessage[] = [];
  constructor(
    readonly io: Bus,
    readonly base: number,
    readonly irq: number,
  ) {
    // The name a DT-probed platform device gets: "<unit address>.<node name>".
    this.name = `${base.toString(16)}.virtio_mmio`;
  }

  readl(offset: number): number {
    return this.io.read(this.base + offset, 4) >>> 0;
  }

  writel(value: number, offset: number): void {
    this.io.write(this.base + offset, 4, value >>> 0);
  }

  /** A doorbell write: posted where the bus can (Bus.writePosted), else a plain write. */
  writelPosted(value: number, offset: number): void {
    const io = this.io;
    if (io.writePosted) io.writePosted(this.base + offset, 4, value >>> 0);
    else io.write(this.base + offset, 4, value >>> 0);
  }
}

/** struct virtio_mmio_device */
export class VirtioMmioDevice extends VirtioDevice {
  readonly pdev: MmioPlatformDevice;
  /** Version register value: 1 (legacy) or 2. */
  readonly version: number;
  readonly dma: DmaAllocator;
  /** The handlers request_irq registered with this device as dev_id, oldest first (free_irq removes the oldest). */
  readonly irqHandlers: IrqHandler[] = [];

  constructor(pdev: MmioPlatformDevice, version: number, id: VirtioDeviceId, virtioBus: VirtioBus = defaultVirtioBus) {
    super(virtioMmioConfigOps, id, virtioBus);
    this.pdev = pdev;
    this.version = version;
    this.dma = dmaFor(pdev.io.mem);
    setDeviceDma(this, this.dma);
    setDeviceIrqChip(this, pdev.io.irq);
  }

  /** The handler free_irq would remove next, or null when none is registered. */
  get irqHandler(): IrqHandler | null {
    return this.irqHandlers[0] ?? null;
  }

  get io(): Bus {
    return this.pdev.io;
  }
  get base(): number {
    return this.pdev.base;
  }
  get irq(): number {
    return this.pdev.irq;
  }

  readl(offset: number): number {
    return this.pdev.readl(offset);
  }
  writel(value: number, offset: number): void {
    this.pdev.writel(value, offset);
  }

  writelPosted(value: number, offset: number): void {
    this.pdev.writelPosted(value, offset);
  }
}

/** to_virtio_mmio_device (container_of) */
export function toVirtioMmioDevice(vdev: VirtioDevice): VirtioMmioDevice {
  if (!(vdev instanceof VirtioMmioDevice)) throw new KernelBug('to_virtio_mmio_device', `${vdev.name} is not a virtio-mmio device`);
  return vdev;
}

// ---------------------------------------------------------------------------
// Configuration interface

/** vm_get_features: high word first, then low. */
function vmGetFeatures(vdev: VirtioDevice): bigint {
  const vmDev = toVirtioMmioDevice(vdev);

  vmDev.writel(1, REG.DeviceFeaturesSel);
  const hi = vmDev.readl(REG.DeviceFeatures);

  vmDev.writel(0, REG.DeviceFeaturesSel);
  const lo = vmDev.readl(REG.DeviceFeatures);

  return fromWords(lo, hi);
}

function vmFinalizeFeatures(vdev: VirtioDevice): number {
  const vmDev = toVirtioMmioDevice(vdev);

  // Give virtio_ring a chance to accept features.
  vringTransportFeatures(vdev);

  // Make sure there are no mixed devices
  if (vmDev.version === 2 && !__virtioTestBit(vdev, VIRTIO_F_VERSION_1)) {
    devErr(vdev, 'New virtio-mmio devices (version 2) must provide VIRTIO_F_VERSION_1 feature!');
    return -EINVAL;
  }

  vmDev.writel(1, REG.DriverFeaturesSel);
  vmDev.writel(hi32(vdev.features), REG.DriverFeatures);

  vmDev.writel(0, REG.DriverFeaturesSel);
  vmDev.writel(lo32(vdev.features), REG.DriverFeatures);

  return 0;
}

/** vm_get: v1 bytewise; v2 one access of the field's width (8 = two 32-bit reads). */
function vmGet(vdev: VirtioDevice, offset: number, buf: Uint8Array): void {
  const vmDev = toVirtioMmioDevice(vdev);
  const addr = vmDev.base + REG.Config + offset;
  const io = vmDev.io;
  const out = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

  if (vmDev.version === 1) {
    for (let i = 0; i < buf.length; i++) buf[i] = io.read(addr + i, 1);
    return;
  }

  switch (buf.length) {
    case 1:
      out.setUint8(0, io.read(addr, 1));
      break;
    case 2:
      out.setUint16(0, io.read(addr, 2), true);
      break;
    case 4:
      out.setUint32(0, io.read(addr, 4) >>> 0, true);
      break;
    case 8:
      out.setUint32(0, io.read(addr, 4) >>> 0, true);
      out.setUint32(4, io.read(addr + 4, 4) >>> 0, true);
      break;
    default:
      throw new KernelBug('vm_get', `config read of length ${buf.length}`);
  }
}

function vmSet(vdev: VirtioDevice, offset: number, buf: Uint8Array): void {
  const vmDev = toVirtioMmioDevice(vdev);
  const addr = vmDev.base + REG.Config + offset;
  const io = vmDev.io;
  const src = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

  if (vmDev.version === 1) {
    for (let i = 0; i < buf.length; i++) io.write(addr + i, 1, buf[i]!);
    return;
  }

  switch (buf.length) {
    case 1:
      io.write(addr, 1, src.getUint8(0));
      break;
    case 2:
      io.write(addr, 2, src.getUint16(0, true));
      break;
    case 4:
      io.write(addr, 4, src.getUint32(0, true));
      break;
    case 8:
      io.write(addr, 4, src.getUint32(0, true));
      io.write(addr + 4, 4, src.getUint32(4, true));
      break;
    default:
      throw new KernelBug('vm_set', `config write of length ${buf.length}`);
  }
}

/** vm_generation: legacy devices have no ConfigGeneration register. */
function vmGeneration(vdev: VirtioDevice): number {
  const vmDev = toVirtioMmioDevice(vdev);
  if (vmDev.version === 1) return 0;
  return vmDev.readl(REG.ConfigGeneration);
}

function vmGetStatus(vdev: VirtioDevice): number {
  return toVirtioMmioDevice(vdev).readl(REG.Status) & 0xff;
}

function vmSetStatus(vdev: VirtioDevice, status: number): void {
  const vmDev = toVirtioMmioDevice(vdev);

  // We should never be setting status to 0.
  if (status === 0) throw new KernelBug('vm_set_status', 'BUG_ON(status == 0)');

  vmDev.writel(status, REG.Status);
}

/** vm_reset: 0 status means a reset; the device completes it within the write. */
function vmReset(vdev: VirtioDevice): void {
  toVirtioMmioDevice(vdev).writel(0, REG.Status);
}

// ---------------------------------------------------------------------------
// Transport interface

/** vm_notify: write the queue's selector into QueueNotify. */
function vmNotify(vq: Virtqueue): boolean {
  // A posted write, as QueueNotify through an ioeventfd: the kick does not
  // wait for the device thread.
  toVirtioMmioDevice(vq.vdev).writelPosted(vq.index, REG.QueueNotify);
  return true;
}

/** vm_notify_with_data (VIRTIO_F_NOTIFICATION_DATA): next avail idx in the high half. */
function vmNotifyWithData(vq: Virtqueue): boolean {
  toVirtioMmioDevice(vq.vdev).writelPosted(vringNotificationData(vq), REG.QueueNotify);
  return true;
}

/**
 * vm_interrupt: read InterruptStatus and ACK exactly that value before any
 * processing, so an event that lands after the read stays set (and keeps the
 * line up) for the next interrupt instead of being acknowledged unseen.
 */
export function vmInterrupt(vmDev: VirtioMmioDevice, irq: number): IrqReturn {
  let ret: IrqReturn = IRQ_NONE;

  // Read and acknowledge interrupts
  const status = vmDev.readl(REG.InterruptStatus);
  vmDev.writel(status, REG.InterruptACK);

  if (status & VIRTIO_MMIO_INT_CONFIG) {
    virtioConfigChanged(vmDev);
    ret = IRQ_HANDLED;
  }

  if (status & VIRTIO_MMIO_INT_VRING) {
    for (const vq of [...vmDev.vqs]) if (vq.interrupt(irq) === IRQ_HANDLED) ret = IRQ_HANDLED;
  }

  return ret;
}

/** Deactivate the selected queue: v1 QueuePFN = 0; v2 QueueReady = 0 and check it reads back 0. */
function vmDeactivateQueue(vmDev: VirtioMmioDevice, where: string): void {
  if (vmDev.version === 1) {
    vmDev.writel(0, REG.QueuePFN);
  } else {
    vmDev.writel(0, REG.QueueReady);
    kernel.warnOn(vmDev.readl(REG.QueueReady) !== 0, vmDev, 'readl(vm_dev->base + VIRTIO_MMIO_QUEUE_READY)', where);
  }
}

function vmDelVq(vq: VringVirtqueue): void {
  const vmDev = toVirtioMmioDevice(vq.vdev);
  const index = vq.index;

  // Select and deactivate the queue
  vmDev.writel(index, REG.QueueSel);
  vmDeactivateQueue(vmDev, 'vm_del_vq');

  vq.del();
}

function vmDelVqs(vdev: VirtioDevice): void {
  const vmDev = toVirtioMmioDevice(vdev);

  for (const vq of [...vdev.vqs]) vmDelVq(toVvq(vq));

  freeIrq(vmDev);
}

/** vm_synchronize_cbs → synchronize_irq(): waits for a running handler, so it may sleep. */
function vmSynchronizeCbs(vdev: VirtioDevice): void {
  kernel.checkSleepable(vdev, 'synchronize_irq', 'vm_synchronize_cbs');
  // Handlers run on this thread only, so none can be in flight here.
}

/**
 * vm_active_vq: program the selected queue's size and ring addresses and
 * make it live. Shared by vm_setup_vq and vm_reset_vqs; allocates nothing.
 */
function vmActiveVq(vmDev: VirtioMmioDevice, vq: VringVirtqueue): number {
  vmDev.writel(vq.getVringSize(), REG.QueueNum);
  if (vmDev.version === 1) {
    const qPfn = Math.floor(vq.getDescAddr() / PAGE_SIZE);

    // virtio-mmio v1 uses a 32bit QUEUE PFN. If we have something that
    // doesn't fit in 32bit, fail the setup rather than pretending to be
    // successful.
    if (qPfn > 0xffff_ffff) {
      devErr(vmDev, `platform bug: legacy virtio-mmio must not be used with RAM above 0x${(1 << (32 + PAGE_SHIFT - 30)).toString(16)}GB`);
      return -E2BIG;
    }

    vmDev.writel(PAGE_SIZE, REG.QueueAlign);
    vmDev.writel(qPfn, REG.QueuePFN);
  } else {
    let addr = vq.getDescAddr();
    vmDev.writel(lo32n(addr), REG.QueueDescLow);
    vmDev.writel(hi32n(addr), REG.QueueDescHigh);

    addr = vq.getAvailAddr();
    vmDev.writel(lo32n(addr), REG.QueueDriverLow);
    vmDev.writel(hi32n(addr), REG.QueueDriverHigh);

    addr = vq.getUsedAddr();
    vmDev.writel(lo32n(addr), REG.QueueDeviceLow);
    vmDev.writel(hi32n(addr), REG.QueueDeviceHigh);

    vmDev.writel(1, REG.QueueReady);
  }
  return 0;
}

function vmSetupVq(vdev: VirtioDevice, index: number, callback: VqCallback | null, name: string, ctx: boolean): VringVirtqueue | number {
  const vmDev = toVirtioMmioDevice(vdev);
  const notify = virtioHasFeature(vdev, VIRTIO_F_NOTIFICATION_DATA) ? vmNotifyWithData : vmNotify;

  // Select the queue we're interested in
  vmDev.writel(index, REG.QueueSel);

  // Queue shouldn't already be set up.
  if (vmDev.readl(vmDev.version === 1 ? REG.QueuePFN : REG.QueueReady)) return -ENOENT;

  const num = vmDev.readl(REG.QueueNumMax);
  if (num === 0) {
    vmDeactivateQueue(vmDev, 'vm_setup_vq');
    return -ENOENT;
  }

  // Create the vring
  const vq = vringCreateVirtqueue(index, num, VIRTIO_MMIO_VRING_ALIGN, vdev, true, true, ctx, notify, callback, name, vmDev.dma);
  if (typeof vq === 'number') {
    vmDeactivateQueue(vmDev, 'vm_setup_vq');
    // Linux's vring_create_virtqueue returns NULL for every failure (a bad
    // length included, after its "Bad virtqueue length" warning): -ENOMEM.
    return -ENOMEM;
  }

  vq.numMax = num;

  // Activate the queue
  const err = vmActiveVq(vmDev, vq);
  if (err) {
    vq.del();
    vmDeactivateQueue(vmDev, 'vm_setup_vq');
    return err;
  }

  return vq;
}

function vmFindVqs(vdev: VirtioDevice, vqs: (Virtqueue | null)[], vqsInfo: VirtqueueInfo[]): number {
  const vmDev = toVirtioMmioDevice(vdev);
  const irq = vmDev.irq;
  let queueIdx = 0;

  // platform_get_irq()
  if (!Number.isInteger(irq) || irq < 0 || irq >= vmDev.io.irq.lines) return -ENXIO;

  const err = requestIrq(vmDev);
  if (err) return err;

  for (let i = 0; i < vqsInfo.length; ++i) {
    const info = vqsInfo[i]!;
    if (!info.name) {
      vqs[i] = null;
      continue;
    }

    const vq = vmSetupVq(vdev, queueIdx++, info.callback ?? null, info.name, info.ctx ?? false);
    if (typeof vq === 'number') {
      vmDelVqs(vdev);
      return vq;
    }
    vqs[i] = vq;
  }

  return 0;
}

function vmBusName(vdev: VirtioDevice): string {
  return toVirtioMmioDevice(vdev).pdev.name;
}

/**
 * vm_reset_vqs (the noirq series): bring every existing vq back to its
 * initial state in place and reprogram it, without allocating, so
 * restore_noirq can run with interrupts off. Each queue gets vm_setup_vq's
 * checks first: a queue that is already live (QueueReady, or legacy
 * QueuePFN, non-zero) is -ENOENT without cleanup writes, QueueNumMax is read
 * (0 is -ENOENT with the queue deactivated, as in vm_setup_vq; a maximum
 * below the ring's size is -ENOENT too, since the device would refuse the
 * ring) and kept in vq->num_max. On an error no queue is left live: the
 * queues already re-programmed are deactivated as vm_del_vq does (QueueSel,
 * QueueReady=0 read back, or QueuePFN=0), without freeing anything; the
 * driver still owns its vqs and restore_noirq's error path sets FAILED.
 */
function vmResetVqs(vdev: VirtioDevice): number {
  const vmDev = toVirtioMmioDevice(vdev);
  const done: VringVirtqueue[] = [];
  let err = 0;

  for (const v of vdev.vqs) {
    const vq = toVvq(v);
    const num = vq.getVringSize();

    // Select the queue we're interested in
    vmDev.writel(vq.index, REG.QueueSel);

    // Queue shouldn't already be set up.
    if (vmDev.readl(vmDev.version === 1 ? REG.QueuePFN : REG.QueueReady)) {
      err = -ENOENT;
      break;
    }

    const max = vmDev.readl(REG.QueueNumMax);
    if (max === 0 || max < num) {
      vmDeactivateQueue(vmDev, 'vm_reset_vqs');
      err = -ENOENT;
      break;
    }
    vq.numMax = max;

    vq.reinitVring();

    err = vmActiveVq(vmDev, vq);
    if (err) {
      vmDeactivateQueue(vmDev, 'vm_reset_vqs');
      break;
    }
    done.push(vq);
  }

  if (err) {
    for (const vq of done) {
      vmDev.writel(vq.index, REG.QueueSel);
      vmDeactivateQueue(vmDev, 'vm_reset_vqs');
    }
  }
  return err;
}

export const virtioMmioConfigOps: VirtioConfigOps = {
  get: vmGet,
  set: vmSet,
  generation: vmGeneration,
  getStatus: vmGetStatus,
  setStatus: vmSetStatus,
  reset: vmReset,
  findVqs: vmFindVqs,
  delVqs: vmDelVqs,
  resetVqs: vmResetVqs,
  synchronizeCbs: vmSynchronizeCbs,
  getFeatures: vmGetFeatures,
  finalizeFeatures: vmFinalizeFeatures,
  busName: vmBusName,
  // reset, get/set_status and finalize_features are plain register
  // accesses that complete within the trap: safe with interrupts off.
  noirqSafe: true,
};

// ---------------------------------------------------------------------------
// Helpers

/**
 * request_irq(irq, vm_interrupt, IRQF_SHARED, dev_name, vm_dev). As in Linux,
 * a second find_vqs without del_vqs registers vm_interrupt a second time on
 * the shared line: each interrupt then runs it twice, the first ACKs what it
 * read and the second reads InterruptStatus 0 (IRQ_NONE). The wakeup-source
 * property (enable_irq_wake) is not modelled.
 */
function requestIrq(vmDev: VirtioMmioDevice): number {
  const handler: IrqHandler = (line) => vmInterrupt(vmDev, line);
  try {
    vmDev.io.irq.request(vmDev.irq, handler);
  } catch (e) {
    if (e instanceof BusError) throw e;
    devErr(vmDev, `request_irq ${vmDev.irq} failed: ${(e as Error).message}`);
    return -EINVAL;
  }
  vmDev.irqHandlers.push(handler);
  return 0;
}

/**
 * free_irq(irq, vm_dev): removes the first action registered with this
 * dev_id; with none left, __free_irq's WARN "Trying to free already-free IRQ".
 */
function freeIrq(vmDev: VirtioMmioDevice): void {
  const handler = vmDev.irqHandlers.shift();
  if (!handler) {
    kernel.warnOn(true, vmDev, `Trying to free already-free IRQ ${vmDev.irq}`, '__free_irq');
    return;
  }
  vmDev.io.irq.free(vmDev.irq, handler);
}

function lo32n(addr: number): number {
  return addr >>> 0;
}

function hi32n(addr: number): number {
  return Math.floor(addr / 0x1_0000_0000) >>> 0;
}
