// virtio-rng, after Linux drivers/char/hw_random/virtio-rng.c: one "input"
// queue that always has one entropy request (a small DMA buffer) pending;
// reads copy out what the device returned and queue the next request.
import { registerKernelGlobal } from '../kernel.js';
import { Completion, irqChipForDevice, waitForCompletionTimeout } from '../completion.js';
import { dmaForDevice } from '../dma.js';
import { EAGAIN, ENODEV, ENOMEM, ETIMEDOUT } from '../uapi/errno.js';
import { VIRTIO_ID_RNG } from '../uapi/ids.js';
import {
  VIRTIO_DEV_ANY_ID,
  virtioDeviceReady,
  virtioFindVqs,
  virtioResetDevice,
  type VirtioDevice,
  type VirtioDriver,
} from '../virtio.js';
import type { Virtqueue } from '../virtio-types.js';

/** SMP_CACHE_BYTES on x86-64/arm64: the size of vi->data, one request. */
export const VIRTRNG_DATA_SIZE = 64;

/** How long a blocking read waits for the device (wait_for_completion_killable has no timeout; a model must). */
export const rngOptions = { waitTimeoutMs: 5000 };

/** What a device's reads have done (for summaries). */
export interface RngStats {
  /** Entropy requests queued to the device. */
  requests: number;
  /** Requests the device completed. */
  completed: number;
  /** Bytes handed to readers. */
  bytes: number;
  /** Reads that failed (timeout, removed device). */
  errors: number;
}

/** struct virtrng_info */
export interface VirtrngInfo {
  vdev: VirtioDevice;
  vq: Virtqueue<number>;
  name: string;
  index: number;
  hwrngRegisterDone: boolean;
  hwrngRemoved: boolean;
  /* data transfer */
  haveData: Completion;
  dataAvail: number;
  dataIdx: number;
  /** Guest-physical address of vi->data. */
  data: number;
  stats: RngStats;
}

// ---------------------------------------------------------------------------
// A minimal hw_random core: the registered rngs by name.

export interface Hwrng {
  name: string;
  read(buf: Uint8Array, wait: boolean): number;
}

/** The hw_random core's list (kernel memory: held by hibernation images). */
export const hwrngList = registerKernelGlobal(new Map<string, Hwrng>());

function hwrngRegister(rng: Hwrng): number {
  hwrngList.set(rng.name, rng);
  return 0;
}

function hwrngUnregister(rng: Hwrng): void {
  hwrngList.delete(rng.name);
}

const rngIndexIda = registerKernelGlobal(new Set<number>());

function idaAlloc(): number {
  let i = 0;
  while (rngIndexIda.has(i)) i++;
  rngIndexIda.add(i);
  return i;
}

// ---------------------------------------------------------------------------

function info(vdev: VirtioDevice): VirtrngInfo {
  return vdev.priv as VirtrngInfo;
}

const hwrngs = new WeakMap<VirtrngInfo, Hwrng>();

function randomRecvDone(vq: Virtqueue): void {
  const vi = info(vq.vdev);
  if (!vi) return;

  // We can get spurious callbacks, e.g. shared IRQs + virtio_pci.
  const used = vi.vq.getBuf();
  if (!used) return;

  vi.stats.completed++;
  // A used length past the buffer is the device's error: never copy beyond it.
  vi.dataAvail = Math.min(used.len, VIRTRNG_DATA_SIZE);
  vi.haveData.complete();
}

function requestEntropy(vi: VirtrngInfo): void {
  vi.haveData.reinit();
  vi.dataIdx = 0;

  // There should always be room for one buffer.
  if (vi.vq.addInbuf([{ addr: vi.data, len: VIRTRNG_DATA_SIZE }], vi.data) === 0) vi.stats.requests++;

  vi.vq.kick();
}

function copyData(vi: VirtrngInfo, buf: Uint8Array): number {
  const size = Math.min(buf.length, vi.dataAvail);
  const dma = dmaForDevice(vi.vdev);
  buf.set(dma.bytes(vi.data + vi.dataIdx, size));
  vi.dataIdx += size;
  vi.dataAvail -= size;
  vi.stats.bytes += size;
  if (vi.dataAvail === 0) requestEntropy(vi);
  return size;
}

/**
 * virtio_read(rng, buf, size, wait): copy what is available; with wait,
 * block until buf is full. Returns the bytes read or -errno.
 */
export function virtioRead(vi: VirtrngInfo, buf: Uint8Array, wait: boolean): number {
  if (vi.hwrngRemoved) return -ENODEV;

  let size = buf.length;
  let read = 0;

  // copy available data
  if (vi.dataAvail) {
    const chunk = copyData(vi, buf);
    size -= chunk;
    read += chunk;
  }

  if (!wait) return read;

  // We have already copied available entropy, so either size is 0 or
  // data_avail is 0.
  while (size !== 0) {
    // data_avail is 0 but a request is pending
    const left = waitForCompletionTimeout(vi.haveData, irqChipForDevice(vi.vdev), rngOptions.waitTimeoutMs, {
      target: vi.vdev,
      where: 'virtio_read',
    });
    if (left === 0) {
      vi.stats.errors++;
      return read || -ETIMEDOUT;
    }
    // if vi->data_avail is 0, we have been interrupted by a cleanup, but
    // buffer stays in the queue
    if (vi.dataAvail === 0) return read;

    const chunk = copyData(vi, buf.subarray(read));
    size -= chunk;
    read += chunk;
  }

  return read;
}

function probeCommon(vdev: VirtioDevice): number {
  const dma = dmaForDevice(vdev);
  const data = dma.alloc(VIRTRNG_DATA_SIZE, VIRTRNG_DATA_SIZE);
  if (data === null) return -ENOMEM;

  const index = idaAlloc();
  const vqs: (Virtqueue | null)[] = [null];
  const vi: VirtrngInfo = {
    vdev,
    // Filled in right below by find_vqs.
    vq: null as unknown as Virtqueue<number>,
    name: `virtio_rng.${index}`,
    index,
    hwrngRegisterDone: false,
    hwrngRemoved: false,
    haveData: new Completion(),
    dataAvail: 0,
    dataIdx: 0,
    data,
    stats: { requests: 0, completed: 0, bytes: 0, errors: 0 },
  };
  hwrngs.set(vi, { name: vi.name, read: (buf, wait) => virtioRead(vi, buf, wait) });
  vdev.priv = vi;

  // We expect a single virtqueue.
  const err = virtioFindVqs(vdev, vqs, [{ name: 'input', callback: randomRecvDone }]);
  if (err) {
    rngIndexIda.delete(index);
    dma.free(data);
    vdev.priv = null;
    return err;
  }
  vi.vq = vqs[0] as Virtqueue<number>;

  virtioDeviceReady(vdev);

  // we always have a pending entropy request
  requestEntropy(vi);

  return 0;
}

function removeCommon(vdev: VirtioDevice): void {
  const vi = info(vdev);

  vi.hwrngRemoved = true;
  vi.dataAvail = 0;
  vi.dataIdx = 0;
  vi.haveData.complete();
  if (vi.hwrngRegisterDone) hwrngUnregister(hwrngs.get(vi)!);
  virtioResetDevice(vdev);
  vdev.config.delVqs(vdev);
  rngIndexIda.delete(vi.index);
  dmaForDevice(vdev).free(vi.data);
  // Linux kfrees vi (data is in it): a second remove_common on this vi (a
  // freeze after a restore that never ran) is a double free. With the
  // address forgotten the allocator reports it every time, instead of
  // freeing whatever was allocated there since.
  vi.data = 0;
  retired.set(vdev, vi.stats);
}

/** Stats survive freeze/restore and remove, for summaries. */
const retired = new WeakMap<VirtioDevice, RngStats>();

function virtrngProbe(vdev: VirtioDevice): number {
  return probeCommon(vdev);
}

function virtrngRemove(vdev: VirtioDevice): void {
  removeCommon(vdev);
}

function virtrngScan(vdev: VirtioDevice): void {
  const vi = info(vdev);
  const err = hwrngRegister(hwrngs.get(vi)!);
  if (!err) vi.hwrngRegisterDone = true;
}

function virtrngFreeze(vdev: VirtioDevice): number {
  removeCommon(vdev);
  return 0;
}

function virtrngRestore(vdev: VirtioDevice): number {
  const before = retired.get(vdev);
  let err = probeCommon(vdev);
  if (!err) {
    const vi = info(vdev);
    if (before) addStats(vi.stats, before);

    // Set hwrng_removed to ensure that virtio_read() does not block
    // waiting for data before the registration is complete.
    vi.hwrngRemoved = true;
    err = hwrngRegister(hwrngs.get(vi)!);
    if (!err) {
      vi.hwrngRegisterDone = true;
      vi.hwrngRemoved = false;
    }
  }
  return err;
}

function addStats(to: RngStats, from: RngStats): void {
  to.requests += from.requests;
  to.completed += from.completed;
  to.bytes += from.bytes;
  to.errors += from.errors;
}

export const virtioRngDriver: VirtioDriver = {
  name: 'virtio_rng',
  idTable: [{ device: VIRTIO_ID_RNG, vendor: VIRTIO_DEV_ANY_ID }],
  featureTable: [],
  probe: virtrngProbe,
  remove: virtrngRemove,
  scan: virtrngScan,
  freeze: virtrngFreeze,
  restore: virtrngRestore,
};

/** The bound driver's state, or null if virtio_rng is not bound to vdev. */
export function virtrngInfo(vdev: VirtioDevice): VirtrngInfo | null {
  return vdev.driver === virtioRngDriver && vdev.priv ? info(vdev) : null;
}

/**
 * Read `size` random bytes from a device bound to virtio_rng, blocking as
 * /dev/hwrng does. Returns the bytes, or -errno (-ENODEV if not bound or
 * removed, -ETIMEDOUT if the device never answered).
 */
export function virtioRngRead(vdev: VirtioDevice, size: number, wait = true): Uint8Array | number {
  const vi = virtrngInfo(vdev);
  if (!vi) return -ENODEV;
  const buf = new Uint8Array(size);
  const n = virtioRead(vi, buf, wait);
  if (n < 0) return n;
  return buf.subarray(0, n);
}

/** Totals for a device, including what earlier bindings (before freeze or remove) did. */
export function virtioRngStats(vdev: VirtioDevice): RngStats {
  const vi = virtrngInfo(vdev);
  if (vi) return { ...vi.stats };
  return { ...(retired.get(vdev) ?? { requests: 0, completed: 0, bytes: 0, errors: 0 }) };
}

// ---------------------------------------------------------------------------
// The hw_random core's reader (drivers/char/hw_random/core.c rng_dev_read):
// every fill asks the rng's read() for rng_buffer_size() bytes with wait,
// and what the reader does not take stays in rng_buffer for the next read.

/** rng_buffer_size(): max(32, SMP_CACHE_BYTES) on the same 64-byte-line systems as VIRTRNG_DATA_SIZE. */
export const RNG_BUFFER_SIZE = 64;

const rngReader = registerKernelGlobal({ rng: null as string | null, buffer: new Uint8Array(RNG_BUFFER_SIZE), dataAvail: 0 });

/**
 * rng_dev_read(): read `size` bytes of /dev/hwrng with the device's hwrng
 * as the current rng. Returns the bytes, or -errno from the rng's read().
 */
export function rngDevRead(vdev: VirtioDevice, size: number): Uint8Array | number {
  const vi = virtrngInfo(vdev);
  if (!vi) return -ENODEV;
  const rng = hwrngs.get(vi)!;
  const r = rngReader;
  if (r.rng !== rng.name) {
    r.rng = rng.name;
    r.dataAvail = 0;
  }
  const out = new Uint8Array(size);
  let ret = 0;
  // virtio_read() returns 0 when a cleanup interrupted its wait; Linux reads
  // again until a signal arrives. The model has no signals: it gives up after
  // as many empty reads in a row as a reader would sit through.
  for (let empty = 0; ret < size; ) {
    if (!r.dataAvail) {
      const bytesRead = rng.read(r.buffer, true);
      if (bytesRead < 0) return bytesRead;
      if (bytesRead === 0 && ++empty > 16) return -EAGAIN;
      r.dataAvail = bytesRead;
    }
    let len = r.dataAvail;
    if (len) {
      if (len > size - ret) len = size - ret;
      r.dataAvail -= len;
      out.set(r.buffer.subarray(r.dataAvail, r.dataAvail + len), ret);
      ret += len;
    }
  }
  return out;
}
