// The driver-visible virtqueue API (include/linux/virtio.h). Implemented by
// the split ring in split.ts; the core needs only this shape.
import type { IrqReturn } from '../bus.js';
import type { VirtioDevice } from '../virtio.js';

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
