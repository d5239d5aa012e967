// The driver side of the packed virtqueue, after Linux drivers/virtio/
// virtio_ring.c (the *_packed functions of 6.12 and the generic wrappers
// around them). One descriptor ring that the device also writes used
// descriptors into, AVAIL/USED wrap counters, and two event suppression
// areas: the driver's (driver->flags/off_wrap, where the device looks before
// interrupting) and the device's (where the driver looks before kicking).
// Each part is its own page-aligned zeroed allocation, as
// vring_alloc_queue_packed makes them; the transport programs QueueDesc,
// QueueDriver and QueueDevice with their addresses.
import { IRQ_HANDLED, IRQ_NONE, type IrqReturn } from '../bus.js';
import { PAGE_SIZE, type DmaAllocator } from '../dma.js';
import { devErr, kernel } from '../kernel.js';
import { EIO, ENOMEM, ENOSPC } from '../uapi/errno.js';
import { VIRTIO_F_ORDER_PLATFORM, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC } from '../uapi/features.js';
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
  VRING_PACKED_DESC,
  VRING_PACKED_DESC_F_AVAIL_MASK,
  VRING_PACKED_DESC_F_USED_MASK,
  VRING_PACKED_EVENT,
  VRING_PACKED_EVENT_FLAG_DESC,
  VRING_PACKED_EVENT_FLAG_DISABLE,
  VRING_PACKED_EVENT_FLAG_ENABLE,
  VRING_PACKED_EVENT_F_WRAP_CTR,
  VRING_PACKED_EVENT_SIZE,
  alignUp,
  packedRingSize,
  vringNeedEvent,
} from '../uapi/ring.js';
import { KernelBug, virtioHasFeature, type VirtioDevice } from '../virtio.js';
import type { Sg, UsedBuf, Virtqueue, VqCallback } from '../virtio-types.js';
import { RingMem } from './ring-mem.js';
import { earlyIrqWarnOnce, type VqNotify } from './split.js';

const AVAIL = VRING_PACKED_DESC_F_AVAIL_MASK;
const USED = VRING_PACKED_DESC_F_USED_MASK;
const WRAP = 1 << VRING_PACKED_EVENT_F_WRAP_CTR;

/** packed_used_wrap_counter */
function packedUsedWrapCounter(lastUsedIdx: number): boolean {
  return (lastUsedIdx & WRAP) !== 0;
}

/** packed_last_used */
function packedLastUsed(lastUsedIdx: number): number {
  return lastUsedIdx & (WRAP - 1);
}

const descAt = (ring: number, i: number): number => ring + VRING_DESC_SIZE * i;

/** The memory of a packed vring (vring_virtqueue_packed.vring and its DMA addresses). */
export interface PackedVringLayout {
  num: number;
  /** Descriptor ring, driver event suppression area, device event suppression area. */
  desc: number;
  driver: number;
  device: number;
}

/** struct vring_virtqueue for a packed ring. */
export class PackedVirtqueue<T = unknown> implements Virtqueue<T> {
  readonly index: number;
  readonly name: string;
  readonly vdev: VirtioDevice;
  callback: VqCallback | null;
  broken: boolean;
  numFree: number;
  numMax = 0;
  readonly packedRing = true;

  /** Host supports indirect buffers */
  readonly indirect: boolean;
  /** Host publishes avail event idx */
  readonly event: boolean;
  readonly weakBarriers: boolean;

  /** Head of free buffer list. */
  private freeHead = 0;
  /** Number we've added since last sync. */
  private numAdded = 0;
  /** Last used index we've seen: bits 0-14 the index, bit 15 the used wrap counter. */
  private lastUsed = 0;
  /** Hint for event idx: already triggered no need to disable. */
  private eventTriggered = false;

  /** Driver ring wrap counter. */
  private availWrapCounter = true;
  /** Avail used flags. */
  private availUsedFlags = 0;
  /** Index of the next avail descriptor. */
  private nextAvailIdx = 0;
  /** Last written value to driver->flags. */
  private eventFlagsShadow = 0;

  readonly vring: PackedVringLayout;
  private readonly ring: RingMem;
  private readonly dma: DmaAllocator;
  private readonly notifyFn: VqNotify;
  readonly ringSizeInBytes: number;
  readonly eventSizeInBytes = VRING_PACKED_EVENT_SIZE;

  // desc_state: token, indirect table, descriptor count and last descriptor per buffer id.
  private readonly stateData: (T | null)[];
  private readonly stateIndir: Float64Array;
  private readonly stateNum: Uint16Array;
  private readonly stateLast: Uint16Array;
  // Indirect tables kept per buffer id across requests (Linux kmallocs one
  // per request; see README "Where the model and Linux differ"): DMA address
  // and capacity in descriptors, 0 when the id has none.
  private readonly indirCache: Float64Array;
  private readonly indirCap: Uint32Array;
  // desc_extra: the free list (Linux keeps addr/len/flags there only with the DMA API).
  private readonly extraNext: Uint16Array;

  constructor(
    index: number,
    vring: PackedVringLayout,
    vdev: VirtioDevice,
    weakBarriers: boolean,
    context: boolean,
    notify: VqNotify,
    callback: VqCallback | null,
    name: string,
    dma: DmaAllocator,
  ) {
    this.index = index;
    this.vring = vring;
    this.vdev = vdev;
    this.notifyFn = notify;
    this.callback = callback;
    this.name = name;
    this.dma = dma;
    this.ring = new RingMem(dma.mem);
    this.ringSizeInBytes = packedRingSize(vring.num);
    // CONFIG_VIRTIO_HARDEN_NOTIFICATION: callbacks stay off until DRIVER_OK.
    this.broken = kernel.hardenNotification;
    this.indirect = virtioHasFeature(vdev, VIRTIO_RING_F_INDIRECT_DESC) && !context;
    this.event = virtioHasFeature(vdev, VIRTIO_RING_F_EVENT_IDX);
    this.weakBarriers = weakBarriers && !virtioHasFeature(vdev, VIRTIO_F_ORDER_PLATFORM);

    const num = vring.num;
    this.stateData = new Array<T | null>(num).fill(null);
    this.stateIndir = new Float64Array(num);
    this.stateNum = new Uint16Array(num);
    this.stateLast = new Uint16Array(num);
    this.indirCache = new Float64Array(num);
    this.indirCap = new Uint32Array(num);
    // vring_alloc_desc_extra: next pre-linked, the last one 0.
    this.extraNext = new Uint16Array(num);
    for (let i = 0; i < num - 1; i++) this.extraNext[i] = i + 1;

    this.vringInitPacked();
    // virtqueue_init
    this.numFree = num;
    this.lastUsed = 0 | WRAP;
    this.eventTriggered = false;
    this.numAdded = 0;
    // virtqueue_vring_attach_packed: put everything in free lists.
    this.freeHead = 0;
  }

  // -------------------------------------------------------------------------
  // Adding buffers

  addSgs(sgs: Sg[], outSgs: number, inSgs: number, data: T): number {
    if (sgs.length < outSgs + inSgs) throw new KernelBug('virtqueue_add_sgs', 'fewer sg entries than out_sgs + in_sgs');
    // The add reads the list and keeps nothing of it: copy only to drop extra entries.
    const n = outSgs + inSgs;
    return this.addPacked(sgs.length === n ? sgs : sgs.slice(0, n), outSgs, data);
  }

  addOutbuf(sg: Sg[], data: T): number {
    return this.addPacked(sg, sg.length, data);
  }

  addInbuf(sg: Sg[], data: T): number {
    return this.addPacked(sg, 0, data);
  }

  /** virtqueue_use_indirect */
  private useIndirect(totalSg: number): boolean {
    // If the host supports indirect descriptor tables, and we have multiple
    // buffers, then go indirect. FIXME: tune this threshold
    return this.indirect && totalSg > 1 && this.numFree > 0;
  }

  /** virtqueue_add_packed: sgs[0..nOut) device-readable, the rest device-writable. */
  private addPacked(sgs: Sg[], nOut: number, data: T): number {
    const ring = this.ring;
    const num = this.vring.num;
    const totalSg = sgs.length;

    if (data === null || data === undefined) throw new KernelBug('virtqueue_add_packed', 'data == NULL');

    if (this.broken) return -EIO;

    if (totalSg === 0) throw new KernelBug('virtqueue_add_packed', 'total_sg == 0');

    if (this.useIndirect(totalSg)) {
      const err = this.addIndirectPacked(sgs, nOut, data);
      if (err !== -ENOMEM) return err;
      // fall back on direct
    }

    const head = this.nextAvailIdx;

    kernel.warnOnOnce(totalSg > num && !this.indirect, this.vdev, 'total_sg > vq->packed.vring.num && !vq->indirect', 'virtqueue_add_packed');

    let i = head;
    const descsUsed = totalSg;

    if (this.numFree < descsUsed) return -ENOSPC;

    const id = this.freeHead;
    if (id === num) throw new KernelBug('virtqueue_add_packed', 'id == vq->packed.vring.num');

    let curr = id;
    let prev = id;
    let headFlags = 0;
    for (let n = 0; n < totalSg; n++) {
      const sg = sgs[n]!;
      const flags = this.availUsedFlags | (n + 1 === totalSg ? 0 : VRING_DESC_F_NEXT) | (n < nOut ? 0 : VRING_DESC_F_WRITE);
      const d = descAt(this.vring.desc, i);
      if (i === head) headFlags = flags;
      else ring.write16(d + VRING_PACKED_DESC.flags, flags);
      ring.write64(d + VRING_PACKED_DESC.addr, sg.addr);
      ring.write32(d + VRING_PACKED_DESC.len, sg.len);
      ring.write16(d + VRING_PACKED_DESC.id, id);

      prev = curr;
      curr = this.extraNext[curr]!;

      if (++i >= num) {
        i = 0;
        this.availUsedFlags ^= AVAIL | USED;
      }
    }

    if (i <= head) this.availWrapCounter = !this.availWrapCounter;

    // We're using some buffers from the free list.
    this.numFree -= descsUsed;

    // Update free pointer
    this.nextAvailIdx = i;
    this.freeHead = curr;

    // Store token.
    this.stateNum[id] = descsUsed;
    this.stateData[id] = data;
    this.stateIndir[id] = 0;
    this.stateLast[id] = prev;

    // A driver MUST NOT make the first descriptor in the list available
    // before all subsequent descriptors comprising the list are made
    // available (the store is a release: everything above is visible first).
    ring.publish16(descAt(this.vring.desc, head) + VRING_PACKED_DESC.flags, headFlags);
    this.numAdded += descsUsed;

    return 0;
  }

  /**
   * virtqueue_add_indirect_packed: one ring descriptor for a table in DMA
   * memory. Linux allocates the table before it looks at num_free and the
   * buffer id; the table here is the id's, so those come first (num_free is
   * at least 1 whenever virtqueue_use_indirect chose this path).
   */
  private addIndirectPacked(sgs: Sg[], nOut: number, data: T): number {
    const ring = this.ring;
    const num = this.vring.num;
    const totalSg = sgs.length;
    const head = this.nextAvailIdx;

    if (this.numFree < 1) return -ENOSPC;

    const id = this.freeHead;
    if (id === num) throw new KernelBug('virtqueue_add_indirect_packed', 'id == vq->packed.vring.num');

    const table = this.allocIndirect(id, totalSg);
    if (table === 0) return -ENOMEM;

    for (let i = 0; i < totalSg; i++) {
      const sg = sgs[i]!;
      const d = descAt(table, i);
      ring.write16(d + VRING_PACKED_DESC.flags, i < nOut ? 0 : VRING_DESC_F_WRITE);
      ring.write64(d + VRING_PACKED_DESC.addr, sg.addr);
      ring.write32(d + VRING_PACKED_DESC.len, sg.len);
      // Reserved in a table; 0 as in a freshly zeroed one, whatever a reused table held.
      ring.write16(d + VRING_PACKED_DESC.id, 0);
    }

    const d = descAt(this.vring.desc, head);
    ring.write64(d + VRING_PACKED_DESC.addr, table);
    ring.write32(d + VRING_PACKED_DESC.len, totalSg * VRING_DESC_SIZE);
    ring.write16(d + VRING_PACKED_DESC.id, id);

    // A driver MUST NOT make the first descriptor in the list available
    // before all subsequent descriptors comprising the list are made available.
    ring.publish16(d + VRING_PACKED_DESC.flags, VRING_DESC_F_INDIRECT | this.availUsedFlags);

    // We're using some buffers from the free list.
    this.numFree -= 1;

    // Update free pointer
    let n = head + 1;
    if (n >= num) {
      n = 0;
      this.availWrapCounter = !this.availWrapCounter;
      this.availUsedFlags ^= AVAIL | USED;
    }
    this.nextAvailIdx = n;
    this.freeHead = this.extraNext[id]!;

    // Store token and indirect buffer state.
    this.stateNum[id] = 1;
    this.stateData[id] = data;
    this.stateIndir[id] = table;
    this.stateLast[id] = id;

    this.numAdded += 1;

    return 0;
  }

  /**
   * alloc_indirect_packed: a table of at least totalSg descriptors for buffer
   * `id`; 0 if none. The id's cached table when it is big enough; else the
   * cached one is freed and one of totalSg allocated and cached in its place.
   */
  private allocIndirect(id: number, totalSg: number): number {
    if (this.indirCap[id]! >= totalSg) return this.indirCache[id]!;
    this.dropIndirect(id);
    const table = this.dma.alloc(totalSg * VRING_DESC_SIZE, VRING_DESC_SIZE);
    if (table === null) return 0;
    this.indirCache[id] = table;
    this.indirCap[id] = totalSg;
    return table;
  }

  /** Free the indirect table cached for a buffer id (none in flight there). */
  private dropIndirect(id: number): void {
    const table = this.indirCache[id]!;
    if (table === 0) return;
    this.dma.free(table);
    this.indirCache[id] = 0;
    this.indirCap[id] = 0;
  }

  // -------------------------------------------------------------------------
  // Kicking

  kick(): boolean {
    if (this.kickPrepare()) return this.notify();
    return true;
  }

  /** virtqueue_kick_prepare_packed: the device's event suppression area decides. */
  kickPrepare(): boolean {
    const old = (this.nextAvailIdx - this.numAdded) & 0xffff;
    const newIdx = this.nextAvailIdx;
    this.numAdded = 0;

    // Linux reads flags and off_wrap as one 32-bit snapshot; the device
    // writes off_wrap before flags, so flags first (acquire), then off_wrap.
    const flags = this.ring.acquire16(this.vring.device + VRING_PACKED_EVENT.flags);
    if (flags !== VRING_PACKED_EVENT_FLAG_DESC) return flags !== VRING_PACKED_EVENT_FLAG_DISABLE;

    const offWrap = this.ring.acquire16(this.vring.device + VRING_PACKED_EVENT.off_wrap);
    const wrapCounter = (offWrap >> VRING_PACKED_EVENT_F_WRAP_CTR) !== 0;
    let eventIdx = offWrap & ~WRAP;
    if (wrapCounter !== this.availWrapCounter) eventIdx = (eventIdx - this.vring.num) & 0xffff;

    return vringNeedEvent(eventIdx, newIdx, old);
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

  /** is_used_desc_packed */
  private isUsedDesc(idx: number, usedWrapCounter: boolean): boolean {
    const flags = this.ring.acquire16(descAt(this.vring.desc, idx) + VRING_PACKED_DESC.flags);
    const avail = (flags & AVAIL) !== 0;
    const used = (flags & USED) !== 0;
    return avail === used && used === usedWrapCounter;
  }

  /** more_used_packed */
  private moreUsed(): boolean {
    return this.isUsedDesc(packedLastUsed(this.lastUsed), packedUsedWrapCounter(this.lastUsed));
  }

  /** virtqueue_get_buf_ctx_packed */
  getBuf(): UsedBuf<T> | null {
    if (this.broken) return null;

    if (!this.moreUsed()) return null;

    let usedWrapCounter = packedUsedWrapCounter(this.lastUsed);
    let lastUsed = packedLastUsed(this.lastUsed);
    const d = descAt(this.vring.desc, lastUsed);
    const id = this.ring.read16(d + VRING_PACKED_DESC.id);
    const len = this.ring.read32(d + VRING_PACKED_DESC.len);

    if (id >= this.vring.num) return this.badRing(`id ${id} out of range`);
    const data = this.stateData[id];
    if (data === null || data === undefined) return this.badRing(`id ${id} is not a head!`);

    // detach_buf_packed clears data, so grab it now.
    this.detachBuf(id);

    lastUsed += this.stateNum[id]!;
    if (lastUsed >= this.vring.num) {
      lastUsed -= this.vring.num;
      usedWrapCounter = !usedWrapCounter;
    }

    this.lastUsed = lastUsed | (usedWrapCounter ? WRAP : 0);

    // If we expect an interrupt for the next entry, tell host by writing
    // event index and flush out the write before the read in the next
    // get_buf call.
    if (this.eventFlagsShadow === VRING_PACKED_EVENT_FLAG_DESC) this.ring.publish16(this.vring.driver + VRING_PACKED_EVENT.off_wrap, this.lastUsed);

    return { data, len };
  }

  /** BAD_RING without DEBUG: complain and stop using the queue. */
  private badRing(msg: string): null {
    devErr(this.vdev, `${this.name}:${msg}`);
    this.broken = true;
    return null;
  }

  /** detach_buf_packed: the buffer's descriptors back on the free list; its indirect table stays cached for the id. */
  private detachBuf(id: number): void {
    // Clear data ptr.
    this.stateData[id] = null;

    this.extraNext[this.stateLast[id]!] = this.freeHead;
    this.freeHead = id;
    this.numFree += this.stateNum[id]!;

    // The indirect table, if any, is no longer the device's.
    if (this.indirect) this.stateIndir[id] = 0;
  }

  // -------------------------------------------------------------------------
  // Callback control

  /** virtqueue_disable_cb_packed */
  disableCb(): void {
    if (this.eventFlagsShadow !== VRING_PACKED_EVENT_FLAG_DISABLE) {
      this.eventFlagsShadow = VRING_PACKED_EVENT_FLAG_DISABLE;

      // If device triggered an event already it won't trigger one again:
      // no need to disable.
      if (this.eventTriggered) return;

      this.ring.publish16(this.vring.driver + VRING_PACKED_EVENT.flags, this.eventFlagsShadow);
    }
  }

  /** virtqueue_enable_cb_prepare(_packed): returns last_used_idx (with its wrap bit) for poll(). */
  enableCbPrepare(): number {
    if (this.eventTriggered) this.eventTriggered = false;

    // We optimistically turn back on interrupts, then check if there was
    // more to do. The event offset and wrap counter go out before the flags.
    if (this.event) this.ring.publish16(this.vring.driver + VRING_PACKED_EVENT.off_wrap, this.lastUsed);

    if (this.eventFlagsShadow === VRING_PACKED_EVENT_FLAG_DISABLE) {
      this.eventFlagsShadow = this.event ? VRING_PACKED_EVENT_FLAG_DESC : VRING_PACKED_EVENT_FLAG_ENABLE;
      this.ring.publish16(this.vring.driver + VRING_PACKED_EVENT.flags, this.eventFlagsShadow);
    }

    return this.lastUsed;
  }

  /** virtqueue_poll(_packed): is the descriptor at off_wrap used? */
  poll(lastUsedIdx: number): boolean {
    if (this.broken) return false;
    const offWrap = lastUsedIdx & 0xffff;
    return this.isUsedDesc(offWrap & ~WRAP, (offWrap & WRAP) !== 0);
  }

  /** virtqueue_enable_cb */
  enableCb(): boolean {
    const lastUsedIdx = this.enableCbPrepare();
    return !this.poll(lastUsedIdx);
  }

  /** virtqueue_enable_cb_delayed_packed: ask for an interrupt after ~3/4 of the outstanding buffers. */
  enableCbDelayed(): boolean {
    if (this.eventTriggered) this.eventTriggered = false;

    if (this.event) {
      // TODO: tune this threshold
      const bufs = Math.floor(((this.vring.num - this.numFree) * 3) / 4) & 0xffff;
      let wrapCounter = packedUsedWrapCounter(this.lastUsed);

      let usedIdx = (packedLastUsed(this.lastUsed) + bufs) & 0xffff;
      if (usedIdx >= this.vring.num) {
        usedIdx -= this.vring.num;
        wrapCounter = !wrapCounter;
      }

      this.ring.publish16(this.vring.driver + VRING_PACKED_EVENT.off_wrap, usedIdx | (wrapCounter ? WRAP : 0));
    }

    if (this.eventFlagsShadow === VRING_PACKED_EVENT_FLAG_DISABLE) {
      this.eventFlagsShadow = this.event ? VRING_PACKED_EVENT_FLAG_DESC : VRING_PACKED_EVENT_FLAG_ENABLE;
      this.ring.publish16(this.vring.driver + VRING_PACKED_EVENT.flags, this.eventFlagsShadow);
    }

    // We need to update event suppression structure first before
    // re-checking for more used buffers.
    if (this.isUsedDesc(packedLastUsed(this.lastUsed), packedUsedWrapCounter(this.lastUsed))) return false;

    return true;
  }

  /** virtqueue_detach_unused_buf_packed: only valid once the device is reset. */
  detachUnusedBuf(): T | null {
    for (let i = 0; i < this.vring.num; i++) {
      const buf = this.stateData[i];
      if (buf === null || buf === undefined) continue;
      // detach_buf clears data, so grab it now.
      this.detachBuf(i);
      return buf;
    }
    // That should have freed everything.
    if (this.numFree !== this.vring.num) throw new KernelBug('virtqueue_detach_unused_buf_packed', 'num_free != packed.vring.num');
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

  /** virtqueue_get_desc_addr: packed.ring_dma_addr */
  getDescAddr(): number {
    return this.vring.desc;
  }

  /** virtqueue_get_avail_addr: packed.driver_event_dma_addr */
  getAvailAddr(): number {
    return this.vring.driver;
  }

  /** virtqueue_get_used_addr: packed.device_event_dma_addr */
  getUsedAddr(): number {
    return this.vring.device;
  }

  /** last_used_idx, wrap counter in bit 15 (what enableCbPrepare would return, without arming anything). */
  get lastUsedIdx(): number {
    return this.lastUsed;
  }

  /** The next avail index with the avail wrap counter in bit 15 (vring_notification_data's "next"). */
  get availIdx(): number {
    return (this.nextAvailIdx & ~WRAP) | (this.availWrapCounter ? WRAP : 0);
  }

  /**
   * virtqueue_reinit_vring → virtqueue_reinit_packed: zero both event
   * suppression areas and the descriptor ring in place (the descriptors'
   * flags must be reset, see is_used_desc_packed), then virtqueue_init() and
   * virtqueue_vring_init_packed(). As for the split ring, free_head,
   * desc_state and desc_extra are left alone, and virtqueue_reinit_vring
   * WARNs about buffers still in flight. The cached indirect tables are
   * freed, but for those of buffers still in flight, which stay until del().
   */
  reinitVring(): void {
    const ring = this.ring;
    const v = this.vring;
    kernel.warnOn(this.numFree !== v.num, this.vdev, '_vq->num_free != virtqueue_get_vring_size(_vq)', 'virtqueue_reinit_vring');
    for (let id = 0; id < v.num; id++) if (this.stateIndir[id] === 0) this.dropIndirect(id);

    const mem = ring.mem;
    mem.u8.fill(0, v.device - mem.base, v.device - mem.base + this.eventSizeInBytes);
    mem.u8.fill(0, v.driver - mem.base, v.driver - mem.base + this.eventSizeInBytes);
    // we need to reset the desc.flags. For more, see is_used_desc_packed()
    mem.u8.fill(0, v.desc - mem.base, v.desc - mem.base + this.ringSizeInBytes);

    // virtqueue_init
    this.numFree = v.num;
    this.lastUsed = 0 | WRAP;
    this.eventTriggered = false;
    this.numAdded = 0;

    this.vringInitPacked();
  }

  /** virtqueue_vring_init_packed: wrap counter 1, AVAIL set; no callback → ask for no interrupts. */
  private vringInitPacked(): void {
    this.nextAvailIdx = 0;
    this.availWrapCounter = true;
    this.eventFlagsShadow = 0;
    this.availUsedFlags = AVAIL;

    // No callback?  Tell other side not to bother us.
    if (!this.callback) {
      this.eventFlagsShadow = VRING_PACKED_EVENT_FLAG_DISABLE;
      this.ring.publish16(this.vring.driver + VRING_PACKED_EVENT.flags, this.eventFlagsShadow);
    }
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

  /** vring_del_virtqueue → vring_free (vring_free_packed): unlink and free the ring memory and every indirect table. */
  del(): void {
    const list = this.vdev.vqs;
    const at = list.indexOf(this as Virtqueue);
    if (at >= 0) list.splice(at, 1);
    for (let id = 0; id < this.vring.num; id++) {
      this.stateIndir[id] = 0;
      this.dropIndirect(id);
    }
    this.dma.free(this.vring.desc);
    this.dma.free(this.vring.driver);
    this.dma.free(this.vring.device);
  }
}

/** vring_alloc_queue: alloc_pages_exact(PAGE_ALIGN(size)) with __GFP_ZERO. */
function allocQueue(dma: DmaAllocator, size: number): number | null {
  return dma.alloc(alignUp(size, PAGE_SIZE), PAGE_SIZE);
}

/**
 * vring_create_virtqueue_packed: allocate the descriptor ring (num × 16
 * bytes) and the two event suppression areas, each zeroed and page-aligned
 * (vring_alloc_queue_packed); num need not be a power of two and is never
 * reduced. Adds the queue to vdev.vqs. Returns the queue or -ENOMEM.
 */
export function vringCreateVirtqueuePacked<T = unknown>(
  index: number,
  num: number,
  vdev: VirtioDevice,
  weakBarriers: boolean,
  context: boolean,
  notify: VqNotify,
  callback: VqCallback | null,
  name: string,
  dma: DmaAllocator,
): PackedVirtqueue<T> | number {
  if (!Number.isInteger(num) || num <= 0 || num > 0x8000) return -ENOMEM;
  const desc = allocQueue(dma, packedRingSize(num));
  if (desc === null) return -ENOMEM;
  const driver = allocQueue(dma, VRING_PACKED_EVENT_SIZE);
  if (driver === null) {
    dma.free(desc);
    return -ENOMEM;
  }
  const device = allocQueue(dma, VRING_PACKED_EVENT_SIZE);
  if (device === null) {
    dma.free(desc);
    dma.free(driver);
    return -ENOMEM;
  }
  const vq = new PackedVirtqueue<T>(index, { num, desc, driver, device }, vdev, weakBarriers, context, notify, callback, name, dma);
  vdev.vqs.push(vq as Virtqueue);
  return vq;
}
