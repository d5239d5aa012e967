// virtio-blk, after Linux drivers/block/virtio_blk.c, reduced to one request
// queue ("req.0") and no block layer: a request is
//   struct virtio_blk_outhdr (device-readable)
//   data segments (device-readable for OUT, device-writable for IN/GET_ID)
//   u8 status (device-writable)
// as virtblk_add_req builds it. Several requests may be in flight: submit
// any number (virtblkSubmit), kick once, reap them as they complete
// (virtblkReap). virtblkRead/virtblkWrite split a transfer into requests
// within seg_max × size_max and keep the queue busy, as blk-mq would.
//
// freeze/restore are virtblk_freeze/virtblk_restore: commit requests
// queued without a kick and drain everything in flight (blk-mq's quiesce and
// freeze), reset, del_vqs; find_vqs again and DRIVER_OK on restore. While
// frozen, new requests are refused with -EAGAIN (blk-mq would hold them in
// its quiesced queue; a single-threaded model cannot block the caller).
import { Completion, irqChipForDevice, waitForCompletionTimeout } from '../completion.js';
import { PAGE_SIZE, dmaForDevice } from '../dma.js';
import { devInfo, devWarn, kernel, registerKernelGlobal } from '../kernel.js';
import {
  SECTOR_SIZE,
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from '../uapi/blk.js';
import { EAGAIN, EINVAL, EIO, ENODEV, ENOMEM, ENOSPC, EOPNOTSUPP, ETIMEDOUT } from '../uapi/errno.js';
import { VIRTIO_ID_BLOCK } from '../uapi/ids.js';
import {
  VIRTIO_DEV_ANY_ID,
  type VirtioDevice,
  type VirtioDriver,
  virtioCread32,
  virtioCread64,
  virtioDeviceReady,
  virtioFindVqs,
  virtioHasFeature,
  virtioResetDevice,
} from '../virtio.js';
import type { Sg, Virtqueue } from '../virtio-types.js';

export const virtblkOptions = {
  /** Bound on one wait for the device (blk-mq's request timeout is 30 s; a model must not hang a test). */
  timeoutMs: 5000,
  /** Data bytes in flight at most in virtblkRead/virtblkWrite (keeps DMA use bounded). */
  maxInflightBytes: 4 * 1024 * 1024,
};

/** BLK_DEF_MAX_SECTORS_CAP: the block layer's default request size cap. */
const BLK_DEF_MAX_SECTORS = 2560;
/** VIRTIO_BLK_MAX_SG_ELEMS, less the header and status descriptors. */
const VIRTIO_BLK_MAX_SG_ELEMS = 32768;
/** The status byte sits right after the 16-byte header in one DMA block. */
const STATUS_AT = VIRTIO_BLK_OUTHDR_SIZE;
/** A value no device writes: a request the device completed without a status reads as an I/O error. */
const STATUS_UNSET = 0xff;
/** Header + status stride of a tag set slot (16-byte aligned, as the per-request allocation was). */
const SLOT_HDR_BYTES = 32;
/**
 * Preallocated data bytes per slot: a page covers the common 4 KiB I/O and
 * GET_ID; larger requests allocate their data buffer per request.
 */
const SLOT_DATA_BYTES = PAGE_SIZE;

export type BlkOp = 'read' | 'write' | 'flush' | 'get_id';

/** One I/O for virtblkSubmit. */
export interface BlkIo {
  op: BlkOp;
  /** 512-byte sector (read, write). */
  sector?: number;
  /** Sectors to read (read). */
  count?: number;
  /** Read: where the data goes on completion (count × 512 bytes; becomes buf); else a new array. */
  into?: Uint8Array;
  /** Bytes to write, a multiple of 512 (write). */
  data?: Uint8Array;
}

/** struct virtblk_req, reduced: the request, its DMA and its outcome. */
export interface VirtblkReq {
  /** Submission number on this device (blk-mq's tag, never reused here). */
  tag: number;
  op: BlkOp;
  /** VIRTIO_BLK_T_* */
  type: number;
  sector: number;
  /** Data bytes (0 for FLUSH). */
  dataLen: number;
  /** DMA: out_hdr then the status byte. */
  hdr: number;
  /** DMA data buffer, or 0. */
  data: number;
  /** Tag set slot holding hdr (and data, unless the request needed a bigger buffer). */
  slot: number;
  /** data was allocated for this request alone (freed on completion). */
  ownData: boolean;
  /** Read destination given at submit, or null. */
  into: Uint8Array | null;
  done: boolean;
  /** 0 or -errno, valid once done. */
  result: number;
  /** Used length the device reported. */
  len: number;
  /** IN and GET_ID: the data read, once done with result 0. */
  buf: Uint8Array | null;
}

export interface VirtblkStats {
  /** Requests queued to the device. */
  requests: number;
  completed: number;
  /** Data bytes moved by requests that completed successfully. */
  bytes: number;
  /** Requests that failed (device status, timeout, reset). */
  errors: number;
  /** Requests completed by polling the used ring (device interrupts masked). */
  polled: number;
}

/**
 * blk_mq_tag_set, reduced: one slot per ring entry, each with its header +
 * status bytes and a data page in DMA memory, allocated when the queue is set
 * up so the I/O path allocates no DMA memory. Plain numbers only, so the
 * hibernation image captures it with the rest of dev.priv.
 */
export interface VirtblkTagSet {
  /** DMA: SLOT_HDR_BYTES per slot. */
  hdrs: number;
  /** DMA: SLOT_DATA_BYTES per slot. */
  datas: number;
  slots: number;
  /** Free slot numbers (a stack: the most recently freed slot is cache-warm). */
  free: number[];
}

/** struct virtio_blk, reduced. */
export interface VirtioBlk {
  vdev: VirtioDevice;
  vq: Virtqueue<VirtblkReq> | null;
  /** Request slots of vq; null while the queue is torn down. */
  tags: VirtblkTagSet | null;
  /** vd_index: "vda" is 0. */
  index: number;
  diskName: string;
  /** Capacity in 512-byte sectors. */
  capacity: number;
  /** Logical block size (VIRTIO_BLK_F_BLK_SIZE, else 512). */
  blkSize: number;
  /** seg_max: data segments per request ("sg_elems"). */
  sgElems: number;
  /** size_max: bytes per segment. */
  maxSegmentSize: number;
  /** Data bytes per request (max_hw_sectors). */
  maxRequestBytes: number;
  readOnly: boolean;
  /** VIRTIO_BLK_F_FLUSH: the device has a write cache to flush. */
  writeCache: boolean;
  /** Between freeze() and restore(). */
  frozen: boolean;
  roWarned: boolean;
  nextTag: number;
  /** Requests the device holds. */
  inflight: number;
  /** Completed requests not yet handed out by reap or wait, in completion order. */
  completed: VirtblkReq[];
  /** Completed once per finished request: what waiters sleep on. */
  anyDone: Completion;
  stats: VirtblkStats;
}

/** vd_index_ida (kernel memory: held by hibernation images). */
const vdIndexIda = registerKernelGlobal(new Set<number>());

function idaAlloc(): number {
  let i = 0;
  while (vdIndexIda.has(i)) i++;
  vdIndexIda.add(i);
  return i;
}

/** virtblk_name_format: 0 → vda, 25 → vdz, 26 → vdaa. */
export function virtblkNameFormat(prefix: string, index: number): string {
  let name = '';
  let i = index;
  do {
    name = String.fromCharCode(97 + (i % 26)) + name;
    i = Math.floor(i / 26) - 1;
  } while (i >= 0);
  return prefix + name;
}

function vblkOf(vdev: VirtioDevice): VirtioBlk {
  return vdev.priv as VirtioBlk;
}

/** virtio_cread_feature: a config field that is valid only with its feature. */
function virtioCreadFeature32(vdev: VirtioDevice, fbit: number, offset: number): number | null {
  if (!virtioHasFeature(vdev, fbit)) return null;
  return virtioCread32(vdev, offset);
}

/** virtblk_result: the status byte as an errno (BLK_STS_NOTSUPP → -EOPNOTSUPP, anything else bad → -EIO). */
function virtblkResult(status: number): number {
  switch (status) {
    case VIRTIO_BLK_S_OK:
      return 0;
    case VIRTIO_BLK_S_UNSUPP:
      return -EOPNOTSUPP;
    default:
      return -EIO;
  }
}

// ---------------------------------------------------------------------------
// Requests

/** blk_mq_alloc_tag_set: the slots for a queue of `slots` entries; -ENOMEM if DMA memory is short. */
function virtblkAllocTagSet(vblk: VirtioBlk, slots: number): number {
  const dma = dmaForDevice(vblk.vdev);
  const hdrs = dma.alloc(slots * SLOT_HDR_BYTES, 16);
  if (hdrs === null) return -ENOMEM;
  const datas = dma.alloc(slots * SLOT_DATA_BYTES, PAGE_SIZE);
  if (datas === null) {
    dma.free(hdrs);
    return -ENOMEM;
  }
  const free: number[] = [];
  for (let i = slots - 1; i >= 0; i--) free.push(i);
  vblk.tags = { hdrs, datas, slots, free };
  return 0;
}

/** blk_mq_free_tag_set: every request must be done (the queue was quiesced). */
function virtblkFreeTagSet(vblk: VirtioBlk): void {
  const tags = vblk.tags;
  if (!tags) return;
  const dma = dmaForDevice(vblk.vdev);
  dma.free(tags.datas);
  dma.free(tags.hdrs);
  vblk.tags = null;
}

function freeReqDma(vblk: VirtioBlk, req: VirtblkReq): void {
  if (req.ownData) dmaForDevice(vblk.vdev).free(req.data);
  vblk.tags!.free.push(req.slot);
  req.data = 0;
  req.hdr = 0;
  req.ownData = false;
}

/** blk_mq_complete_request → virtblk_request_done: record the outcome, copy IN data out, release the slot. */
function virtblkRequestDone(vblk: VirtioBlk, req: VirtblkReq, result: number): void {
  req.result = result;
  if (result === 0 && (req.type === VIRTIO_BLK_T_IN || req.type === VIRTIO_BLK_T_GET_ID)) {
    const data = dmaForDevice(vblk.vdev).bytes(req.data, req.dataLen);
    if (req.into) {
      req.into.set(data);
      req.buf = req.into;
    } else {
      req.buf = data.slice();
    }
  }
  req.into = null;
  freeReqDma(vblk, req);
  req.done = true;
  vblk.inflight--;
  vblk.stats.completed++;
  if (result) vblk.stats.errors++;
  else vblk.stats.bytes += req.type === VIRTIO_BLK_T_GET_ID ? 0 : req.dataLen;
  vblk.completed.push(req);
  vblk.anyDone.complete();
}

/** virtblk_done: the requestq callback. */
function virtblkDone(vq: Virtqueue): void {
  const vblk = vblkOf(vq.vdev);
  const rq = vq as Virtqueue<VirtblkReq>;
  do {
    rq.disableCb();
    for (let used = rq.getBuf(); used; used = rq.getBuf()) {
      const req = used.data;
      req.len = used.len;
      const status = dmaForDevice(vblk.vdev).bytes(req.hdr + STATUS_AT, 1)[0]!;
      virtblkRequestDone(vblk, req, virtblkResult(status));
    }
  } while (!rq.enableCb());
}

/** The sg list of a data buffer: segments of at most size_max bytes (blk_rq_map_sg). */
function dataSegments(vblk: VirtioBlk, addr: number, len: number): Sg[] {
  const sgs: Sg[] = [];
  for (let off = 0; off < len; off += vblk.maxSegmentSize) sgs.push({ addr: addr + off, len: Math.min(vblk.maxSegmentSize, len - off) });
  return sgs;
}

/** virtblk_add_req: header out, data out or in, status in. */
function virtblkAddReq(vq: Virtqueue<VirtblkReq>, vblk: VirtioBlk, req: VirtblkReq): number {
  const hdr: Sg = { addr: req.hdr, len: VIRTIO_BLK_OUTHDR_SIZE };
  const status: Sg = { addr: req.hdr + STATUS_AT, len: 1 };
  const data = req.dataLen ? dataSegments(vblk, req.data, req.dataLen) : [];
  if (req.type === VIRTIO_BLK_T_OUT) return vq.addSgs([hdr, ...data, status], 1 + data.length, 1, req);
  return vq.addSgs([hdr, ...data, status], 1, data.length + 1, req);
}

function typeOf(op: BlkOp): number {
  switch (op) {
    case 'read':
      return VIRTIO_BLK_T_IN;
    case 'write':
      return VIRTIO_BLK_T_OUT;
    case 'flush':
      return VIRTIO_BLK_T_FLUSH;
    case 'get_id':
      return VIRTIO_BLK_T_GET_ID;
  }
}

/** Data bytes an I/O moves, or -EINVAL for an I/O that cannot be expressed as one request. */
function dataLenOf(io: BlkIo): number {
  switch (io.op) {
    case 'read': {
      const count = io.count ?? 0;
      if (!Number.isSafeInteger(count) || count <= 0) return -EINVAL;
      return count * SECTOR_SIZE;
    }
    case 'write': {
      const len = io.data?.length ?? 0;
      if (len === 0 || len % SECTOR_SIZE !== 0) return -EINVAL;
      return len;
    }
    case 'flush':
      return 0;
    case 'get_id':
      return VIRTIO_BLK_ID_BYTES;
  }
}

/**
 * virtio_queue_rq for one I/O: build the request in DMA memory and add it to
 * the queue. The device range is not checked here (the device answers
 * IOERR), so this is also the raw path tests use to reach the device's checks.
 * Returns the request, or -errno: -EAGAIN frozen, -ENOSPC ring full (reap
 * and retry), -ENOMEM no DMA memory, -EINVAL a malformed I/O, -ENODEV unbound.
 */
export function virtblkSubmit(vdev: VirtioDevice, io: BlkIo, opts: { kick?: boolean } = {}): VirtblkReq | number {
  const vblk = virtblkInfo(vdev);
  if (!vblk) return -ENODEV;
  if (vblk.frozen || !vblk.vq || !vblk.tags) return -EAGAIN;
  const vq = vblk.vq;
  const tags = vblk.tags;
  if (vq.isBroken()) return -EIO;

  const dataLen = dataLenOf(io);
  if (dataLen < 0) return dataLen;
  const sector = io.op === 'read' || io.op === 'write' ? (io.sector ?? 0) : 0;
  if (!Number.isSafeInteger(sector) || sector < 0) return -EINVAL;
  if (dataLen > vblk.maxRequestBytes) return -EINVAL;
  const into = io.op === 'read' ? (io.into ?? null) : null;
  if (into && into.length !== dataLen) return -EINVAL;

  // No free slot means every ring entry holds a request: the ring is full.
  if (tags.free.length === 0) return -ENOSPC;
  const dma = dmaForDevice(vdev);
  let data = 0;
  const ownData = dataLen > SLOT_DATA_BYTES;
  if (ownData) {
    const a = dma.alloc(dataLen, 64);
    if (a === null) return -ENOMEM;
    data = a;
  }
  const slot = tags.free.pop()!;
  const hdr = tags.hdrs + slot * SLOT_HDR_BYTES;
  if (dataLen && !ownData) data = tags.datas + slot * SLOT_DATA_BYTES;

  const req: VirtblkReq = {
    tag: vblk.nextTag++,
    op: io.op,
    type: typeOf(io.op),
    sector,
    dataLen,
    hdr,
    data,
    slot,
    ownData,
    into,
    done: false,
    result: 0,
    len: 0,
    buf: null,
  };
  // virtblk_setup_cmd
  const h = dma.bytes(hdr, VIRTIO_BLK_OUTHDR_SIZE + 1);
  const view = new DataView(h.buffer, h.byteOffset, h.byteLength);
  view.setUint32(VIRTIO_BLK_OUTHDR.type, req.type, true);
  view.setUint32(VIRTIO_BLK_OUTHDR.ioprio, 0, true);
  view.setUint32(VIRTIO_BLK_OUTHDR.sector, sector % 0x1_0000_0000, true);
  view.setUint32(VIRTIO_BLK_OUTHDR.sector + 4, Math.floor(sector / 0x1_0000_0000), true);
  h[STATUS_AT] = STATUS_UNSET;
  if (req.type === VIRTIO_BLK_T_OUT) dma.bytes(data, dataLen).set(io.data!);

  const err = virtblkAddReq(vq, vblk, req);
  if (err) {
    freeReqDma(vblk, req);
    // -ENOSPC is BLK_STS_DEV_RESOURCE: not an error, the caller retries.
    if (err !== -ENOSPC) vblk.stats.errors++;
    return err;
  }
  vblk.inflight++;
  vblk.stats.requests++;
  if (opts.kick ?? true) vq.kick();
  return req;
}

/** virtio_commit_rqs: notify the device of requests submitted with kick false. */
export function virtblkKick(vdev: VirtioDevice): void {
  virtblkInfo(vdev)?.vq?.kick();
}

/** Poll the used ring: the only way to a completion while device interrupts are masked. */
function virtblkPoll(vblk: VirtioBlk, cond: () => boolean, deadline: number): void {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let spins = 0;
  while (!cond() && performance.now() < deadline && vblk.vq) {
    const before = vblk.stats.completed;
    virtblkDone(vblk.vq);
    vblk.stats.polled += vblk.stats.completed - before;
    // Spin briefly (the device answers in microseconds), then nap.
    if (!cond() && ++spins > 1000) Atomics.wait(nap, 0, 0, 0.1);
  }
}

/** Sleep until cond() holds or the timeout passes; false on timeout. */
function virtblkWaitFor(vblk: VirtioBlk, cond: () => boolean, where: string): boolean {
  const deadline = performance.now() + virtblkOptions.timeoutMs;
  if (kernel.inNoirq) {
    virtblkPoll(vblk, cond, deadline);
    return cond();
  }
  const irq = irqChipForDevice(vblk.vdev);
  while (!cond()) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    waitForCompletionTimeout(vblk.anyDone, irq, left, { target: vblk.vdev, where });
  }
  return true;
}

function takeCompleted(vblk: VirtioBlk, req: VirtblkReq): void {
  const i = vblk.completed.indexOf(req);
  if (i >= 0) vblk.completed.splice(i, 1);
}

/** Wait for one request; returns its result (0 or -errno, -ETIMEDOUT if the device never answered). */
export function virtblkWait(vdev: VirtioDevice, req: VirtblkReq): number {
  const vblk = virtblkInfo(vdev);
  if (!req.done && vblk && !virtblkWaitFor(vblk, () => req.done, 'virtblk_wait')) return -ETIMEDOUT;
  if (!req.done) return -ENODEV;
  if (vblk) takeCompleted(vblk, req);
  return req.result;
}

/**
 * Wait until at least `min` submitted requests have completed (fewer if
 * fewer are in flight), then hand out every completed request not handed
 * out yet, in completion order. Returns -ETIMEDOUT if the device stalls.
 */
export function virtblkReap(vdev: VirtioDevice, min = 1): VirtblkReq[] | number {
  const vblk = virtblkInfo(vdev);
  if (!vblk) return -ENODEV;
  const want = Math.min(min, vblk.completed.length + vblk.inflight);
  if (!virtblkWaitFor(vblk, () => vblk.completed.length >= want, 'virtblk_reap')) return -ETIMEDOUT;
  return vblk.completed.splice(0);
}

// ---------------------------------------------------------------------------
// Synchronous I/O, as a reader of /dev/vda sees it

/** bio_check_eod: the block layer refuses I/O past the end of the disk before any request is built. */
function checkEod(vblk: VirtioBlk, sector: number, count: number): number {
  if (!Number.isSafeInteger(sector) || !Number.isSafeInteger(count) || sector < 0 || count < 0) return -EINVAL;
  if (sector + count > vblk.capacity) {
    devInfo(vblk.vdev, `${vblk.diskName}: attempt to access beyond end of device (sector ${sector} + ${count} > ${vblk.capacity})`);
    return -EIO;
  }
  return 0;
}

/** Sectors per request: within max_hw_sectors and a whole number of logical blocks. */
function chunkSectors(vblk: VirtioBlk): number {
  const perBlock = vblk.blkSize / SECTOR_SIZE;
  const max = Math.floor(vblk.maxRequestBytes / SECTOR_SIZE);
  return Math.max(perBlock, max - (max % perBlock));
}

/**
 * Run a transfer as a train of requests with several in flight. `make`
 * builds the I/O for sectors [at, at+n); `done` takes each finished one.
 * Returns 0 or the first -errno.
 */
function transfer(
  vblk: VirtioBlk,
  sector: number,
  count: number,
  make: (at: number, n: number) => BlkIo,
  done: (req: VirtblkReq) => void,
): number {
  const chunk = chunkSectors(vblk);
  const pending: VirtblkReq[] = [];
  let inflightBytes = 0;
  let err = 0;
  const finishOldest = (): void => {
    const req = pending.shift()!;
    const r = virtblkWait(vblk.vdev, req);
    inflightBytes -= req.dataLen;
    if (r && !err) err = r;
    if (!r) done(req);
  };
  for (let at = sector; at < sector + count && !err; ) {
    const n = Math.min(chunk, sector + count - at);
    if (pending.length && inflightBytes + n * SECTOR_SIZE > virtblkOptions.maxInflightBytes) {
      finishOldest();
      continue;
    }
    const r = virtblkSubmit(vblk.vdev, make(at, n));
    if (typeof r === 'number') {
      // Ring full or DMA exhausted: wait for the oldest and retry.
      if ((r === -ENOSPC || r === -ENOMEM) && pending.length) {
        finishOldest();
        continue;
      }
      err = r;
      break;
    }
    pending.push(r);
    inflightBytes += r.dataLen;
    at += n;
  }
  while (pending.length) finishOldest();
  return err;
}

/** Read `count` sectors from `sector`: the bytes, or -errno. */
export function virtblkRead(vdev: VirtioDevice, sector: number, count: number): Uint8Array | number {
  const vblk = virtblkInfo(vdev);
  if (!vblk) return -ENODEV;
  if (vblk.frozen) return -EAGAIN;
  const eod = checkEod(vblk, sector, count);
  if (eod) return eod;
  const out = new Uint8Array(count * SECTOR_SIZE);
  const err = transfer(
    vblk,
    sector,
    count,
    // Each request completes straight into its part of out.
    (at, n) => ({ op: 'read', sector: at, count: n, into: out.subarray((at - sector) * SECTOR_SIZE, (at - sector + n) * SECTOR_SIZE) }),
    () => {},
  );
  return err || out;
}

/** Write whole sectors at `sector`: bytes written, or -errno (-EIO from a read-only device). */
export function virtblkWrite(vdev: VirtioDevice, sector: number, data: Uint8Array): number {
  const vblk = virtblkInfo(vdev);
  if (!vblk) return -ENODEV;
  if (vblk.frozen) return -EAGAIN;
  if (data.length === 0 || data.length % SECTOR_SIZE !== 0) return -EINVAL;
  const count = data.length / SECTOR_SIZE;
  const eod = checkEod(vblk, sector, count);
  if (eod) return eod;
  // bio_check_ro: the kernel warns once and sends the write; the device refuses it.
  if (vblk.readOnly && !vblk.roWarned) {
    vblk.roWarned = true;
    devWarn(vdev, `Trying to write to read-only block-device ${vblk.diskName}`);
  }
  const err = transfer(
    vblk,
    sector,
    count,
    (at, n) => ({ op: 'write', sector: at, data: data.subarray((at - sector) * SECTOR_SIZE, (at - sector + n) * SECTOR_SIZE) }),
    () => {},
  );
  return err || data.length;
}

function syncRequest(vdev: VirtioDevice, io: BlkIo): VirtblkReq | number {
  const vblk = virtblkInfo(vdev);
  if (!vblk) return -ENODEV;
  let req = virtblkSubmit(vdev, io);
  // A full ring: wait for a completion to make room (they stay queued for reap).
  while (req === -ENOSPC && vblk.inflight > 0) {
    if (!virtblkWaitFor(vblk, () => vblk.vq !== null && vblk.vq.numFree > 0, 'virtblk_wait')) return -ETIMEDOUT;
    req = virtblkSubmit(vdev, io);
  }
  if (typeof req === 'number') return req;
  const r = virtblkWait(vdev, req);
  return r || req;
}

/**
 * REQ_OP_FLUSH: 0 or -errno. Without VIRTIO_BLK_F_FLUSH the device has no
 * write cache and the block layer completes flushes at once, sending nothing.
 */
export function virtblkFlush(vdev: VirtioDevice): number {
  const vblk = virtblkInfo(vdev);
  if (!vblk) return -ENODEV;
  if (vblk.frozen) return -EAGAIN;
  if (!vblk.writeCache) return 0;
  const r = syncRequest(vdev, { op: 'flush' });
  return typeof r === 'number' ? r : 0;
}

/** virtblk_get_id: the serial (up to 20 bytes, NUL-padded), or -errno. */
export function virtblkGetId(vdev: VirtioDevice): string | number {
  const r = syncRequest(vdev, { op: 'get_id' });
  if (typeof r === 'number') return r;
  const b = r.buf!;
  const end = b.indexOf(0);
  return String.fromCharCode(...b.subarray(0, end < 0 ? b.length : end));
}

// ---------------------------------------------------------------------------
// Probe, remove, PM

function initVq(vblk: VirtioBlk): number {
  const vqs: (Virtqueue | null)[] = [null];
  let err = virtioFindVqs(vblk.vdev, vqs, [{ name: 'req.0', callback: virtblkDone }]);
  if (err) return err;
  const vq = vqs[0] as Virtqueue<VirtblkReq>;
  // A request takes at least one descriptor: one slot per ring entry.
  err = virtblkAllocTagSet(vblk, vq.getVringSize());
  if (err) {
    virtioResetDevice(vblk.vdev);
    vblk.vdev.config.delVqs(vblk.vdev);
    return err;
  }
  vblk.vq = vq;
  return 0;
}

/** virtblk_update_capacity */
function virtblkUpdateCapacity(vblk: VirtioBlk, resize: boolean): void {
  const capacity = virtioCread64(vblk.vdev, VIRTIO_BLK_CONFIG.capacity);
  // Sector numbers here are JS numbers: exact up to 2^53.
  const sectors = capacity > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(capacity);
  if (resize && sectors !== vblk.capacity) devInfo(vblk.vdev, `[${vblk.diskName}] new size: ${sectors} 512-byte logical blocks`);
  vblk.capacity = sectors;
}

/** blk_validate_block_size: a power of two in [512, PAGE_SIZE]. */
function blkValidateBlockSize(bsize: number): boolean {
  return bsize >= SECTOR_SIZE && bsize <= PAGE_SIZE && (bsize & (bsize - 1)) === 0;
}

/**
 * blk_mq_quiesce_queue + blk_mq_freeze_queue: commit what was queued but
 * not yet notified (requests submitted with kick false; virtio_commit_rqs),
 * wait for everything in flight, then reset and fail what the device still
 * holds (it will never complete it), so no request outlives its queue and
 * none is dropped because nobody kicked it.
 */
function virtblkQuiesce(vblk: VirtioBlk, where: string): void {
  if (vblk.inflight > 0) {
    vblk.vq?.kick();
    virtblkWaitFor(vblk, () => vblk.inflight === 0, where);
  }
  virtioResetDevice(vblk.vdev);
  const vq = vblk.vq;
  if (vq) {
    virtblkDone(vq);
    for (let req = vq.detachUnusedBuf(); req; req = vq.detachUnusedBuf()) virtblkRequestDone(vblk, req, -EIO);
  }
  vblk.vdev.config.delVqs(vblk.vdev);
  vblk.vq = null;
  virtblkFreeTagSet(vblk);
}

function virtblkProbe(vdev: VirtioDevice): number {
  const index = idaAlloc();
  const vblk: VirtioBlk = {
    vdev,
    vq: null,
    tags: null,
    index,
    diskName: virtblkNameFormat('vd', index),
    capacity: 0,
    blkSize: SECTOR_SIZE,
    sgElems: 1,
    maxSegmentSize: 0,
    maxRequestBytes: 0,
    readOnly: false,
    writeCache: false,
    frozen: false,
    roWarned: false,
    nextTag: 0,
    inflight: 0,
    completed: [],
    anyDone: new Completion(),
    stats: { requests: 0, completed: 0, bytes: 0, errors: 0, polled: 0 },
  };
  const before = retired.get(vdev);
  if (before) Object.assign(vblk.stats, before);
  vdev.priv = vblk;

  // We need to know how many segments before we allocate.
  let sgElems = virtioCreadFeature32(vdev, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_CONFIG.seg_max) ?? 0;
  // We need at least one SG element, whatever they say.
  if (!sgElems) sgElems = 1;
  // Prevent integer overflows and honor max vq size.
  vblk.sgElems = Math.min(sgElems, VIRTIO_BLK_MAX_SG_ELEMS - 2);

  let err = initVq(vblk);
  if (err) return probeFail(vblk, err);

  virtblkUpdateCapacity(vblk, false);

  // Host can optionally specify maximum segment size and number of segments.
  const sizeMax = virtioCreadFeature32(vdev, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_CONFIG.size_max);
  vblk.maxSegmentSize = sizeMax ? Math.max(PAGE_SIZE, sizeMax - (sizeMax % SECTOR_SIZE)) : 0xffffffff;

  // Host can optionally specify the block size of the device.
  const blkSize = virtioCreadFeature32(vdev, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_CONFIG.blk_size);
  if (blkSize !== null) {
    if (!blkValidateBlockSize(blkSize)) {
      devWarn(vdev, `virtio_blk: invalid block size: 0x${blkSize.toString(16)}`);
      err = -EINVAL;
      virtioResetDevice(vdev);
      vdev.config.delVqs(vdev);
      vblk.vq = null;
      virtblkFreeTagSet(vblk);
      return probeFail(vblk, err);
    }
    vblk.blkSize = blkSize;
  }

  const maxBytes = Math.min(BLK_DEF_MAX_SECTORS * SECTOR_SIZE, vblk.sgElems * vblk.maxSegmentSize);
  vblk.maxRequestBytes = Math.max(vblk.blkSize, maxBytes - (maxBytes % vblk.blkSize));
  vblk.writeCache = virtioHasFeature(vdev, VIRTIO_BLK_F_FLUSH);

  virtioDeviceReady(vdev);

  // set_disk_ro
  vblk.readOnly = virtioHasFeature(vdev, VIRTIO_BLK_F_RO);
  devInfo(vdev, `[${vblk.diskName}] ${vblk.capacity} 512-byte logical blocks, ${vblk.blkSize}-byte blocks${vblk.readOnly ? ', read-only' : ''}`);
  return 0;
}

function probeFail(vblk: VirtioBlk, err: number): number {
  vdIndexIda.delete(vblk.index);
  vblk.vdev.priv = null;
  return err;
}

/** Stats survive remove, for summaries. */
const retired = new WeakMap<VirtioDevice, VirtblkStats>();

function virtblkRemove(vdev: VirtioDevice): void {
  const vblk = vblkOf(vdev);
  // Make sure no work handler is accessing the device, and stop all requests.
  virtblkQuiesce(vblk, 'virtblk_remove');
  vdIndexIda.delete(vblk.index);
  retired.set(vdev, { ...vblk.stats });
  vdev.priv = null;
}

/** virtblk_config_changed → virtblk_config_changed_work: the disk may have been resized. */
function virtblkConfigChanged(vdev: VirtioDevice): void {
  virtblkUpdateCapacity(vblkOf(vdev), true);
}

/** virtblk_freeze: drain (blk_mq_freeze_queue), reset, del_vqs. */
function virtblkFreeze(vdev: VirtioDevice): number {
  const vblk = vblkOf(vdev);
  vblk.frozen = true;
  virtblkQuiesce(vblk, 'virtblk_freeze');
  return 0;
}

/** virtblk_restore: the core re-initialised the device; set the queue up again. */
function virtblkRestore(vdev: VirtioDevice): number {
  const vblk = vblkOf(vdev);
  const err = initVq(vblk);
  if (err) return err;
  virtioDeviceReady(vdev);
  vblk.frozen = false;
  return 0;
}

export const virtioBlkDriver: VirtioDriver = {
  name: 'virtio_blk',
  idTable: [{ device: VIRTIO_ID_BLOCK, vendor: VIRTIO_DEV_ANY_ID }],
  featureTable: [VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH],
  probe: virtblkProbe,
  remove: virtblkRemove,
  configChanged: virtblkConfigChanged,
  freeze: virtblkFreeze,
  restore: virtblkRestore,
};

/** The bound driver's state, or null if virtio_blk is not bound to vdev. */
export function virtblkInfo(vdev: VirtioDevice): VirtioBlk | null {
  return vdev.driver === virtioBlkDriver && vdev.priv ? vblkOf(vdev) : null;
}

/** Totals for a device, including an earlier binding's. */
export function virtblkStats(vdev: VirtioDevice): VirtblkStats {
  const vblk = virtblkInfo(vdev);
  if (vblk) return { ...vblk.stats };
  return { ...(retired.get(vdev) ?? { requests: 0, completed: 0, bytes: 0, errors: 0, polled: 0 }) };
}
