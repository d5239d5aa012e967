// The driver side of the split virtqueue, after Linux drivers/virtio/
// virtio_ring.c (the *_split functions and the generic wrappers). The ring
// lives in guest RAM allocated from the DMA allocator; the device reaches it
// only through the addresses the transport programs.
import { IRQ_HANDLED, IRQ_NONE, type IrqReturn } from '../bus.js';
import { PAGE_SIZE, type DmaAllocator } from '../dma.js';
import { devErr, devWarn, kernel } from '../kernel.js';
import { EINVAL, EIO, ENOMEM, ENOSPC } from '../uapi/errno.js';
import {
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_NOTIFICATION_DATA,
  VIRTIO_F_ORDER_PLATFORM,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  VIRTIO_TRANSPORT_F_END,
  VIRTIO_TRANSPORT_F_START,
} from '../uapi/features.js';
import {
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
  VRING_USED_ELEM_SIZE,
  VRING_USED_F_NO_NOTIFY,
  alignUp,
  vringNeedEvent,
  vringSize,
} from '../uapi/ring.js';
import { KernelBug, __virtioClearBit, virtioHasFeature, type VirtioDevice } from '../virtio.js';
import { RingMem } from './ring-mem.js';
import type { Sg, UsedBuf, Virtqueue, VqCallback } from '../virtio-types.js';

/** The transport's notify hook (vm_notify); false marks the vq broken. */
export type VqNotify = (vq: Virtqueue) => boolean;

/** struct vring: where the three parts of the ring sit in guest memory. */
export interface VringLayout {
  num: number;
  desc: number;
  avail: number;
  used: number;
}

/** vring_init(): the legacy contiguous layout with the used ring aligned. */
export function vringInit(num: number, queue: number, align: number): VringLayout {
  const avail = queue + VRING_DESC_SIZE * num;
  const used = alignUp(avail + 2 * (3 + num), align);
  return { num, desc: queue, avail, used };
}

// Field addresses (uapi virtio_ring.h).
const availFlags = (v: VringLayout): number => v.avail;
const availIdx = (v: VringLayout): number => v.avail + 2;
const availRing = (v: VringLayout, i: number): number => v.avail + 4 + 2 * i;
/** vring_used_event: avail->ring[num] */
const usedEvent = (v: VringLayout): number => v.avail + 4 + 2 * v.num;
const usedFlags = (v: VringLayout): number => v.used;
const usedIdx = (v: VringLayout): number => v.used + 2;
const usedElem = (v: VringLayout, i: number): number => v.used + 4 + VRING_USED_ELEM_SIZE * i;
/** vring_avail_event: the u16 after used->ring[num] */
const availEvent = (v: VringLayout): number => v.used + 4 + VRING_USED_ELEM_SIZE * v.num;
const descAddr = (table: number, i: number): number => table + VRING_DESC_SIZE * i;

/** "virtio vring IRQ raised before DRIVER_OK" is dev_warn_once (vring_interrupt, both ring kinds). */
const warnedEarlyIrq = new WeakSet<VirtioDevice>();

export function earlyIrqWarnOnce(vdev: VirtioDevice): void {
  if (warnedEarlyIrq.has(vdev)) return;
  warnedEarlyIrq.add(vdev);
  devWarn(vdev, 'virtio vring IRQ raised before DRIVER_OK');
}

/** struct vring_virtqueue for a split ring. */
export class SplitVirtqueue<T = unknown> implements Virtqueue<T> {
  readonly index: number;
  readonly name: string;
  readonly vdev: VirtioDevice;
  callback: VqCallback | null;
  broken: boolean;
  numFree: number;
  numMax = 0;
  readonly packedRing = false;

  /** Host supports indirect buffers */
  readonly indirect: boolean;
  /** Host publishes avail event idx */
  readonly event: boolean;
  readonly weakBarriers: boolean;

  /** Head of free buffer list. */
  private freeHead = 0;
  /** Number we've added since last sync. */
  private numAdded = 0;
  /** Last used index we've seen. */
  private lastUsed = 0;
  /** Hint for event idx: already triggered no need to disable. */
  private eventTriggered = false;
  /** Last written value to avail->flags */
  private availFlagsShadow = 0;
  /** Last written value to avail->idx */
  private availIdxShadow = 0;

  readonly vring: VringLayout;
  private readonly ring: RingMem;
  private readonly dma: DmaAllocator;
  private readonly notifyFn: VqNotify;
  /** DMA address and size of the ring (split.queue_dma_addr / queue_size_in_bytes). */
  readonly queueDmaAddr: number;
  readonly queueSizeInBytes: number;

  // desc_state: token and indirect table per head.
  private readonly stateData: (T | null)[];
  private readonly stateIndir: Float64Array;
  // Indirect tables kept per head across requests (Linux kmallocs one per
  // request; see README "Where the model and Linux differ"): DMA address
  // and capacity in descriptors, 0 when the head has none.
  private readonly indirCache: Float64Array;
  private readonly indirCap: Uint32Array;
  // desc_extra: what the driver wrote, so detach never trusts ring memory.
  private readonly extraAddr: Float64Array;
  private readonly extraLen: Uint32Array;
  private readonly extraFlags: Uint16Array;
  private readonly extraNext: Uint16Array;

  constructor(
    index: number,
    vring: VringLayout,
    vdev: VirtioDevice,
    weakBarriers: boolean,
    context: boolean,
    notify: VqNotify,
    callback: VqCallback | null,
    name: string,
    dma: DmaAllocator,
    queueDmaAddr: number,
    queueSizeInBytes: number,
  ) {
    this.index = index;
    this.vring = vring;
    this.vdev = vdev;
    this.notifyFn = notify;
    this.callback = callback;
    this.name = name;
    this.dma = dma;
    this.ring = new RingMem(dma.mem);
    this.queueDmaAddr = queueDmaAddr;
    this.queueSizeInBytes = queueSizeInBytes;
    // CONFIG_VIRTIO_HARDEN_NOTIFICATION: callbacks stay off until DRIVER_OK.
    this.broken = kernel.hardenNotification;
    this.indirect = virtioHasFeature(vdev, VIRTIO_RING_F_INDIRECT_DESC) && !context;
    this.event = virtioHasFeature(vdev, VIRTIO_RING_F_EVENT_IDX);
    this.weakBarriers = weakBarriers && !virtioHasFeature(vdev, VIRTIO_F_ORDER_PLATFORM);

    const num = vring.num;
    this.numFree = num;
    this.stateData = new Array<T | null>(num).fill(null);
    this.stateIndir = new Float64Array(num);
    this.indirCache = new Float64Array(num);
    this.indirCap = new Uint32Array(num);
    this.extraAddr = new Float64Array(num);
    this.extraLen = new Uint32Array(num);
    this.extraFlags = new Uint16Array(num);
    this.extraNext = new Uint16Array(num);
    this.initDescState();
    this.vringInitSplit();
  }

  // -------------------------------------------------------------------------
  // Adding buffers

  addSgs(sgs: Sg[], outSgs: number, inSgs: number, data: T): number {
    if (sgs.length < outSgs + inSgs) throw new KernelBug('virtqueue_add_sgs', 'fewer sg entries than out_sgs + in_sgs');
    // The add reads the list and keeps nothing of it: copy only to drop extra entries.
    const n = outSgs + inSgs;
    return this.addSplit(sgs.length === n ? sgs : sgs.slice(0, n), outSgs, data);
  }

  addOutbuf(sg: Sg[], data: T): number {
    return this.addSplit(sg, sg.length, data);
  }

  addInbuf(sg: Sg[], data: T): number {
    return this.addSplit(sg, 0, data);
  }

  /** virtqueue_add_split: sgs[0..nOut) device-readable, the rest device-writable. */
  private addSplit(sgs: Sg[], nOut: number, data: T): number {
    const ring = this.ring;
    const totalSg = sgs.length;

    if (data === null || data === undefined) throw new KernelBug('virtqueue_add_split', 'data == NULL');

    if (this.broken) return -EIO;

    if (totalSg === 0) throw new KernelBug('virtqueue_add_split', 'total_sg == 0');

    const head = this.freeHead;
    let table = 0;
    // If the host supports indirect descriptor tables, and we have multiple
    // buffers, then go indirect (Linux's heuristic).
    if (this.indirect && totalSg > 1 && this.numFree > 0) table = this.allocIndirect(head, totalSg);
    else kernel.warnOnOnce(totalSg > this.vring.num && !this.indirect, this.vdev, 'total_sg > vq->split.vring.num && !vq->indirect', 'virtqueue_add_split');

    const indirect = table !== 0;
    const descsUsed = indirect ? 1 : totalSg;

    if (this.numFree < descsUsed) {
      // For historical reasons Linux forces a notify here if there are
      // outgoing parts to the buffer, so the host services the ring ASAP.
      if (nOut) this.notifyFn(this);
      // (Linux frees the table here; the model keeps it cached for the head.)
      return -ENOSPC;
    }

    let i = indirect ? 0 : head;
    let prev = i;
    for (let n = 0; n < totalSg; n++) {
      const sg = sgs[n]!;
      const flags = VRING_DESC_F_NEXT | (n < nOut ? 0 : VRING_DESC_F_WRITE);
      prev = i;
      i = this.addDesc(indirect ? table : this.vring.desc, i, sg.addr, sg.len, flags, indirect);
    }
    // Last one doesn't continue.
    const lastFlags = descAddr(indirect ? table : this.vring.desc, prev) + 12;
    ring.write16(lastFlags, ring.read16(lastFlags) & ~VRING_DESC_F_NEXT);
    if (!indirect) this.extraFlags[prev] = this.extraFlags[prev]! & ~VRING_DESC_F_NEXT;

    if (indirect) this.addDesc(this.vring.desc, head, table, totalSg * VRING_DESC_SIZE, VRING_DESC_F_INDIRECT, false);

    // We're using some buffers from the free list.
    this.numFree -= descsUsed;

    // Update free pointer
    this.freeHead = indirect ? this.extraNext[head]! : i;

    // Store token and indirect buffer state.
    this.stateData[head] = data;
    this.stateIndir[head] = table;

    // Put entry in available array, then expose it by publishing avail->idx
    // (descriptors and ring entry are written before the idx store).
    const avail = this.availIdxShadow & (this.vring.num - 1);
    ring.write16(availRing(this.vring, avail), head);
    this.availIdxShadow = (this.availIdxShadow + 1) & 0xffff;
    ring.publish16(availIdx(this.vring), this.availIdxShadow);
    this.numAdded++;

    // This is very unlikely, but theoretically possible. Kick just in case.
    if (this.numAdded === 0xffff) this.kick();

    return 0;
  }

  /**
   * alloc_indirect_split: a table of at least totalSg descriptors for the
   * chain at `head`; 0 if none (the caller falls back on direct descriptors).
   * The head's cached table when it is big enough; else the cached one is
   * freed and one of totalSg allocated and cached in its place.
   */
  private allocIndirect(head: number, totalSg: number): number {
    if (this.indirCap[head]! >= totalSg) return this.indirCache[head]!;
    this.dropIndirect(head);
    const table = this.dma.alloc(totalSg * VRING_DESC_SIZE, VRING_DESC_SIZE);
    if (table === null) return 0;
    this.indirCache[head] = table;
    this.indirCap[head] = totalSg;
    return table;
  }

  /** Free the indirect table cached for a head (none in flight there). */
  private dropIndirect(head: number): void {
    const table = this.indirCache[head]!;
    if (table === 0) return;
    this.dma.free(table);
    this.indirCache[head] = 0;
    this.indirCap[head] = 0;
  }

  /**
   * virtqueue_add_desc_split: fill desc[i]; returns the next index to use.
   * In an indirect table next is i + 1, as alloc_indirect_split links its
   * extra[] (written here, never read back from memory the device could write).
   */
  private addDesc(table: number, i: number, addr: number, len: number, flags: number, indirect: boolean): number {
    const ring = this.ring;
    const d = descAddr(table, i);
    ring.write16(d + 12, flags);
    ring.write64(d, addr);
    ring.write32(d + 8, len);
    if (indirect) {
      ring.write16(d + 14, i + 1);
      return i + 1;
    }
    const next = this.extraNext[i]!;
    ring.write16(d + 14, next);
    this.extraAddr[i] = addr;
    this.extraLen[i] = len;
    this.extraFlags[i] = flags;
    return next;
  }

  // -------------------------------------------------------------------------
  // Kicking

  kick(): boolean {
    if (this.kickPrepare()) return this.notify();
    return true;
  }

  /** virtqueue_kick_prepare_split */
  kickPrepare(): boolean {
    const newIdx = this.availIdxShadow;
    const old = (newIdx - this.numAdded) & 0xffff;
    this.numAdded = 0;

    if (this.event) return vringNeedEvent(this.ring.acquire16(availEvent(this.vring)), newIdx, old);
    return !(this.ring.acquire16(usedFlags(this.vring)) & VRING_USED_F_NO_NOTIFY);
  }

  /** virtqueue_notify */
  notify(): boolean {
    if (this.broken) return false;

    // Prod other side to tell it about changes.
    if (!this.notifyFn(this)) {
      this.broken = true;
      return false;
    }
    return true;
  }

  // -------------------------------------------------------------------------
  // Harvesting

  private moreUsed(): boolean {
    return this.lastUsed !== this.ring.acquire16(usedIdx(this.vring));
  }

  /** virtqueue_get_buf_ctx_split */
  getBuf(): UsedBuf<T> | null {
    if (this.broken) return null;

    if (!this.moreUsed()) return null;

    const lastUsed = this.lastUsed & (this.vring.num - 1);
    const e = usedElem(this.vring, lastUsed);
    const i = this.ring.read32(e);
    const len = this.ring.read32(e + 4);

    if (i >= this.vring.num) return this.badRing(`id ${i} out of range`);
    const data = this.stateData[i];
    if (data === null || data === undefined) return this.badRing(`id ${i} is not a head!`);

    this.detachBuf(i);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    // If we expect an interrupt for the next entry, tell host by writing
    // the event index.
    if (!(this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT)) this.ring.publish16(usedEvent(this.vring), this.lastUsed);

    return { data, len };
  }

  /** BAD_RING without DEBUG: complain and stop using the queue. */
  private badRing(msg: string): null {
    devErr(this.vdev, `${this.name}:${msg}`);
    this.broken = true;
    return null;
  }

  /** detach_buf_split: put the chain back on the free list; its indirect table stays cached for the head. */
  private detachBuf(head: number): void {
    this.stateData[head] = null;

    let i = head;
    while (this.extraFlags[i]! & VRING_DESC_F_NEXT) {
      i = this.extraNext[i]!;
      this.numFree++;
    }
    this.extraNext[i] = this.freeHead;
    this.freeHead = head;

    // Plus final descriptor
    this.numFree++;

    const table = this.stateIndir[head]!;
    if (table !== 0) {
      if (!(this.extraFlags[head]! & VRING_DESC_F_INDIRECT)) throw new KernelBug('detach_buf_split', 'indirect head without VRING_DESC_F_INDIRECT');
      this.stateIndir[head] = 0;
    }
  }

  // -------------------------------------------------------------------------
  // Callback control

  /** virtqueue_disable_cb_split */
  disableCb(): void {
    if (!(this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT)) {
      this.availFlagsShadow |= VRING_AVAIL_F_NO_INTERRUPT;

      // If device triggered an event already it won't trigger one again:
      // no need to disable.
      if (this.eventTriggered) return;

      if (this.event) this.ring.publish16(usedEvent(this.vring), 0); // Linux's "hack" value
      else this.ring.publish16(availFlags(this.vring), this.availFlagsShadow);
    }
  }

  /** virtqueue_enable_cb_prepare(_split): returns the opaque last_used_idx for poll(). */
  enableCbPrepare(): number {
    this.eventTriggered = false;

    // Turn interrupts back on optimistically; with EVENT_IDX point the
    // event index at the next entry (always written, to keep it simple).
    if (this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT) {
      this.availFlagsShadow &= ~VRING_AVAIL_F_NO_INTERRUPT;
      if (!this.event) this.ring.publish16(availFlags(this.vring), this.availFlagsShadow);
    }
    const lastUsedIdx = this.lastUsed;
    this.ring.publish16(usedEvent(this.vring), lastUsedIdx);
    return lastUsedIdx;
  }

  /** virtqueue_poll: pending used buffers since enableCbPrepare()? */
  poll(lastUsedIdx: number): boolean {
    if (this.broken) return false;
    return (lastUsedIdx & 0xffff) !== this.ring.acquire16(usedIdx(this.vring));
  }

  /** virtqueue_enable_cb */
  enableCb(): boolean {
    const lastUsedIdx = this.enableCbPrepare();
    return !this.poll(lastUsedIdx);
  }

  /** virtqueue_enable_cb_delayed_split: ask for an interrupt after ~3/4 of the outstanding buffers. */
  enableCbDelayed(): boolean {
    this.eventTriggered = false;

    if (this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT) {
      this.availFlagsShadow &= ~VRING_AVAIL_F_NO_INTERRUPT;
      if (!this.event) this.ring.publish16(availFlags(this.vring), this.availFlagsShadow);
    }
    const bufs = Math.floor((((this.availIdxShadow - this.lastUsed) & 0xffff) * 3) / 4);

    this.ring.publish16(usedEvent(this.vring), (this.lastUsed + bufs) & 0xffff);

    if (((this.ring.acquire16(usedIdx(this.vring)) - this.lastUsed) & 0xffff) > bufs) return false;
    return true;
  }

  /** virtqueue_detach_unused_buf_split: only valid once the device is reset. */
  detachUnusedBuf(): T | null {
    for (let i = 0; i < this.vring.num; i++) {
      const buf = this.stateData[i];
      if (buf === null || buf === undefined) continue;
      this.detachBuf(i);
      this.availIdxShadow = (this.availIdxShadow - 1) & 0xffff;
      this.ring.publish16(availIdx(this.vring), this.availIdxShadow);
      return buf;
    }
    // That should have freed everything.
    if (this.numFree !== this.vring.num) throw new KernelBug('virtqueue_detach_unused_buf_split', 'num_free != vring.num');
    return null;
  }

  // -------------------------------------------------------------------------
  // Introspection and reset

  getVringSize(): number {
    return this.vring.num;
  }

  isBroken(): boolean {
    return this.broken;
  }

  getDescAddr(): number {
    return this.queueDmaAddr;
  }

  getAvailAddr(): number {
    return this.vring.avail;
  }

  getUsedAddr(): number {
    return this.vring.used;
  }

  /** Current software indices (for tests and traces). */
  get lastUsedIdx(): number {
    return this.lastUsed;
  }

  get availIdx(): number {
    return this.availIdxShadow;
  }

  /**
   * virtqueue_reinit_vring → virtqueue_reset_split (virtqueue_reinit_split
   * in 6.12): zero the shared flags, indices and event fields in place, then
   * virtqueue_init() and virtqueue_vring_init_split(). As in Linux,
   * free_head, desc_state (tokens, indirect tables) and desc_extra are left
   * alone: every buffer must have been used or detached first. A buffer still
   * in flight is a driver bug: num_free says the whole ring is free while the
   * free list still lacks the in-flight chains, whose tokens never complete;
   * the state later trips virtqueue_detach_unused_buf_split's
   * BUG_ON(num_free != vring.num). virtqueue_reinit_vring (the project's
   * linux/patches/0002) WARNs about it and goes on, as the ring reset itself
   * does not check. The cached indirect tables are freed, but for those of
   * chains still in flight (the driver bug above), which stay until del().
   */
  reinitVring(): void {
    const ring = this.ring;
    const v = this.vring;
    kernel.warnOn(this.numFree !== v.num, this.vdev, '_vq->num_free != virtqueue_get_vring_size(_vq)', 'virtqueue_reinit_vring');
    for (let h = 0; h < v.num; h++) if (this.stateIndir[h] === 0) this.dropIndirect(h);

    ring.publish16(availFlags(v), 0);
    ring.publish16(availIdx(v), 0);
    // reset avail event
    ring.publish16(usedEvent(v), 0);
    ring.publish16(usedFlags(v), 0);
    ring.publish16(usedIdx(v), 0);
    // reset used event
    ring.publish16(availEvent(v), 0);

    // virtqueue_init
    this.numFree = v.num;
    this.lastUsed = 0;
    this.eventTriggered = false;
    this.numAdded = 0;

    this.vringInitSplit();
  }

  /** virtqueue_vring_init_split: shadows to 0; no callback → ask for no interrupts. */
  private vringInitSplit(): void {
    this.availFlagsShadow = 0;
    this.availIdxShadow = 0;

    // No callback?  Tell other side not to bother us.
    if (!this.callback) {
      this.availFlagsShadow |= VRING_AVAIL_F_NO_INTERRUPT;
      if (!this.event) this.ring.publish16(availFlags(this.vring), this.availFlagsShadow);
    }
  }

  /** Put everything in free lists (vring_alloc_desc_extra + desc_state memset). */
  private initDescState(): void {
    const num = this.vring.num;
    this.freeHead = 0;
    this.stateData.fill(null);
    this.stateIndir.fill(0);
    this.extraAddr.fill(0);
    this.extraLen.fill(0);
    this.extraFlags.fill(0);
    for (let i = 0; i < num; i++) this.extraNext[i] = i + 1 < num ? i + 1 : 0;
  }

  /** vring_interrupt(irq, vq) */
  interrupt(_line: number): IrqReturn {
    if (!this.moreUsed()) return IRQ_NONE;

    if (this.broken) {
      if (kernel.hardenNotification) {
        earlyIrqWarnOnce(this.vdev);
        return IRQ_NONE;
      }
      return IRQ_HANDLED;
    }

    // Just a hint for performance: so it's ok that this can be racy!
    if (this.event) this.eventTriggered = true;

    if (this.callback) this.callback(this);

    return IRQ_HANDLED;
  }

  /** vring_del_virtqueue: unlink from the device and free the ring memory and every indirect table. */
  del(): void {
    const list = this.vdev.vqs;
    const at = list.indexOf(this as Virtqueue);
    if (at >= 0) list.splice(at, 1);
    for (let h = 0; h < this.vring.num; h++) {
      this.stateIndir[h] = 0;
      this.dropIndirect(h);
    }
    this.dma.free(this.queueDmaAddr);
  }
}

/**
 * vring_create_virtqueue_split: allocate a zeroed, page-aligned ring of
 * `num` entries (halving num while the allocation fails if mayReduceNum),
 * and add the new queue to vdev.vqs. Returns the queue or -errno: -EINVAL
 * for a num that is not a power of two, -ENOMEM when no ring fits.
 */
export function vringCreateVirtqueueSplit<T = unknown>(
  index: number,
  num: number,
  vringAlign: number,
  vdev: VirtioDevice,
  weakBarriers: boolean,
  mayReduceNum: boolean,
  context: boolean,
  notify: VqNotify,
  callback: VqCallback | null,
  name: string,
  dma: DmaAllocator,
): SplitVirtqueue<T> | number {
  // We assume num is a power of 2.
  if (num & (num - 1) || num < 0) {
    devWarn(vdev, `Bad virtqueue length ${num}`);
    return -EINVAL;
  }

  let queue: number | null = null;
  for (; num && vringSize(num, vringAlign) > PAGE_SIZE; num = num >>> 1) {
    queue = allocQueue(dma, vringSize(num, vringAlign));
    if (queue !== null) break;
    if (!mayReduceNum) return -ENOMEM;
  }

  if (!num) return -ENOMEM;

  // Try to get a single page. You are my only hope!
  if (queue === null) queue = allocQueue(dma, vringSize(num, vringAlign));
  if (queue === null) return -ENOMEM;

  const vring = vringInit(num, queue, vringAlign);
  const vq = new SplitVirtqueue<T>(
    index,
    vring,
    vdev,
    weakBarriers,
    context,
    notify,
    callback,
    name,
    dma,
    queue,
    vringSize(num, vringAlign),
  );
  vdev.vqs.push(vq as Virtqueue);
  return vq;
}

/** alloc_pages_exact(PAGE_ALIGN(size)) with __GFP_ZERO. */
function allocQueue(dma: DmaAllocator, size: number): number | null {
  return dma.alloc(alignUp(size, PAGE_SIZE), PAGE_SIZE);
}

/** Transport bits in [28, 42) that vring_transport_features keeps. */
const TRANSPORT_FEATURES_KEPT: readonly number[] = [
  VIRTIO_RING_F_INDIRECT_DESC,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_ORDER_PLATFORM,
  VIRTIO_F_NOTIFICATION_DATA,
];

/** vring_transport_features: clear every transport bit the ring code does not understand. */
export function vringTransportFeatures(vdev: VirtioDevice): void {
  for (let i = VIRTIO_TRANSPORT_F_START; i < VIRTIO_TRANSPORT_F_END; i++) {
    if (!TRANSPORT_FEATURES_KEPT.includes(i)) __virtioClearBit(vdev, i);
  }
}
