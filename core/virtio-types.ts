// include/linux/virtio.h and include/linux/virtio_config.h: the structures
// the virtio core, the transports and the drivers share (virtio_device,
// virtio_driver, virtqueue, virtio_config_ops). The functions of virtio.c
// that work on them are in virtio.ts.
import type { IrqReturn } from './bus.js';
import { ENOSPC } from './uapi/errno.js';
import { keepOutOfImage, type KernelMessage, type KernelWarning, type LogTarget } from './kernel.js';

/** enum virtio_noirq_state */
export const VIRTIO_NOIRQ_NONE = 0;
export const VIRTIO_NOIRQ_ENTERED = 1;
export const VIRTIO_NOIRQ_RESTORED = 2;
export type VirtioNoirqState = typeof VIRTIO_NOIRQ_NONE | typeof VIRTIO_NOIRQ_ENTERED | typeof VIRTIO_NOIRQ_RESTORED;

export const VIRTIO_DEV_ANY_ID = 0xffffffff;

/** struct virtio_device_id */
export interface VirtioDeviceId {
  device: number;
  vendor: number;
}

/** struct virtio_driver. Callbacks return 0 or -errno, as in C. */
export interface VirtioDriver {
  name: string;
  idTable: VirtioDeviceId[];
  featureTable: number[];
  featureTableLegacy?: number[];
  validate?(dev: VirtioDevice): number;
  probe(dev: VirtioDevice): number;
  scan?(dev: VirtioDevice): void;
  remove(dev: VirtioDevice): void;
  configChanged?(dev: VirtioDevice): void;
  freeze?(dev: VirtioDevice): number;
  restore?(dev: VirtioDevice): number;
  freezeNoirq?(dev: VirtioDevice): number;
  restoreNoirq?(dev: VirtioDevice): number;
  resetPrepare?(dev: VirtioDevice): number;
  resetDone?(dev: VirtioDevice): number;
  shutdown?(dev: VirtioDevice): void;
}

/**
 * The virtio bus: its drivers and devices, and the driver core's binding
 * (device_add/driver_register → match → really_probe). One per modelled
 * kernel; tests make their own to bind the drivers they need.
 */
export class VirtioBus {
  readonly name = 'virtio';
  readonly drivers: VirtioDriver[] = [];
  readonly devices: VirtioDevice[] = [];
  private readonly ida = new Set<number>();
  /** Highest index ida_alloc may hand out (INT_MAX in Linux; lower it to exhaust the IDA). */
  idaMax = 0x7fff_ffff;
  /**
   * Harness fault: device_add() fails with this -errno (0: it does not), as
   * a sysfs or allocation failure in kobject_add/bus_add_device would.
   */
  deviceAddError = 0;

  /** ida_alloc: lowest free index, or -ENOSPC when every index up to idaMax is taken. */
  idaAlloc(): number {
    let i = 0;
    while (this.ida.has(i)) i++;
    if (i > this.idaMax) return -ENOSPC;
    this.ida.add(i);
    return i;
  }

  idaFree(i: number): void {
    this.ida.delete(i);
  }
}

/** The default bus, as the kernel has one. */
export const virtioBus = new VirtioBus();

/** struct virtio_device */
export class VirtioDevice implements LogTarget {
  index = -1;
  name = 'virtio?';
  failed = false;
  configCoreEnabled = false;
  configDriverDisabled = false;
  configChangePending = false;
  noirqState: VirtioNoirqState = VIRTIO_NOIRQ_NONE;
  readonly id: VirtioDeviceId;
  readonly config: VirtioConfigOps;
  readonly vqs: Virtqueue[] = [];
  /** Negotiated features (dev->features). */
  features = 0n;
  /** dev->dev.driver, set by the driver core while bound. */
  driver: VirtioDriver | null = null;
  /** dev->priv: the bound driver's private data. */
  priv: unknown = null;
  readonly bus: VirtioBus;
  /** Last probe result (0 when bound). */
  probeResult = 0;
  /**
   * The available child nodes of the transport's DT node, by compatible
   * string ("virtio,device4"): what virtio_device_of_init() looks at.
   */
  ofChildNodes: readonly string[] = [];
  /** dev->dev.of_node: the matching child node, once virtio_device_of_init() found it. */
  ofNode: string | null = null;
  /** This device's share of the kernel log; kept out of hibernation images. */
  readonly warnings: KernelWarning[] = keepOutOfImage([]);
  readonly messages: KernelMessage[] = keepOutOfImage([]);

  constructor(config: VirtioConfigOps, id: VirtioDeviceId, bus: VirtioBus = virtioBus) {
    this.config = config;
    this.id = id;
    this.bus = bus;
  }
}

/** struct virtio_config_ops (with the reference patch's reset_vqs and noirq_safe). */
export interface VirtioConfigOps {
  /** Read buf.length bytes of config space at offset. */
  get(vdev: VirtioDevice, offset: number, buf: Uint8Array): void;
  set(vdev: VirtioDevice, offset: number, buf: Uint8Array): void;
  /** ConfigGeneration, or undefined when the transport has none. */
  generation?(vdev: VirtioDevice): number;
  getStatus(vdev: VirtioDevice): number;
  setStatus(vdev: VirtioDevice, status: number): void;
  reset(vdev: VirtioDevice): void;
  /** Fills vqs[]; returns 0 or -errno. */
  findVqs(vdev: VirtioDevice, vqs: (Virtqueue | null)[], vqsInfo: VirtqueueInfo[]): number;
  delVqs(vdev: VirtioDevice): void;
  /** Reinitialise existing virtqueues without allocating (noirq restore). */
  resetVqs?(vdev: VirtioDevice): number;
  synchronizeCbs?(vdev: VirtioDevice): void;
  getFeatures(vdev: VirtioDevice): bigint;
  finalizeFeatures(vdev: VirtioDevice): number;
  busName(vdev: VirtioDevice): string;
  /** reset, get_status, set_status and finalize_features never wait for an interrupt. */
  readonly noirqSafe: boolean;
}

// ---------------------------------------------------------------------------
// struct virtqueue and friends: the driver-visible virtqueue API, implemented
// by the split ring in virtqueue/split.ts.

/** One scatter-gather element: guest-physical address and length. */
export interface Sg {
  addr: number;
  len: number;
}

export type VqCallback = (vq: Virtqueue) => void;

/** struct virtqueue_info */
export interface VirtqueueInfo {
  /** null: the slot is skipped and consumes no queue index (vm_find_vqs). */
  name: string | null;
  callback?: VqCallback | null;
  ctx?: boolean;
}

export interface UsedBuf<T> {
  data: T;
  len: number;
}

export interface Virtqueue<T = unknown> {
  readonly index: number;
  readonly name: string;
  readonly vdev: VirtioDevice;
  callback: VqCallback | null;
  /** Set by virtio_break_device; add returns -EIO, get_buf returns null. */
  broken: boolean;
  /** Free descriptors. */
  readonly numFree: number;
  /** QueueNumMax the transport read when it set up the queue. */
  numMax: number;

  /** virtqueue_add_sgs: out_sgs device-readable, then in_sgs device-writable. Returns 0 or -errno. */
  addSgs(sgs: Sg[], outSgs: number, inSgs: number, data: T): number;
  addOutbuf(sg: Sg[], data: T): number;
  addInbuf(sg: Sg[], data: T): number;
  /** virtqueue_kick_prepare + virtqueue_notify. */
  kick(): boolean;
  kickPrepare(): boolean;
  notify(): boolean;
  /** virtqueue_get_buf */
  getBuf(): UsedBuf<T> | null;
  disableCb(): void;
  /** virtqueue_enable_cb: false if buffers are pending (caller should poll). */
  enableCb(): boolean;
  enableCbPrepare(): number;
  poll(lastUsedIdx: number): boolean;
  enableCbDelayed(): boolean;
  /** virtqueue_detach_unused_buf: only after a reset made the vq not live. */
  detachUnusedBuf(): T | null;
  getVringSize(): number;
  isBroken(): boolean;
  /** virtqueue_reinit_vring: zero the ring in place (all buffers must be done or detached). */
  reinitVring(): void;
  getDescAddr(): number;
  getAvailAddr(): number;
  getUsedAddr(): number;
  /** vring_interrupt(irq, vq) */
  interrupt(line: number): IrqReturn;
}
