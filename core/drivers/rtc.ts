// virtio-rtc (drivers/virtio/virtio_rtc_driver.c, reduced to the requestq):
// CFG, CLOCK_CAP and READ over one queue, each clock registered as a clock
// other drivers can read (as the RTC/PTP class devices are).
//
// Two variants share the code:
// - virtioRtcDriver: the usual pair; freeze() tears the queue down and
//   restore() sets it up again, so the clock is back only when its own
//   restore() runs in the normal resume phase.
// - virtioRtcNoirqDriver: the "virtio-clock" driver the noirq patch is for;
//   freeze() only quiesces, the queue survives (reset_vqs re-programs it),
//   and restore_noirq() brings the clock back before any normal restore()
//   runs. With device interrupts masked it polls its used ring.
import { Completion, irqChipForDevice, waitForCompletionTimeout } from '../completion.js';
import { dmaForDevice } from '../dma.js';
import { kernel, registerKernelGlobal } from '../kernel.js';
import { EAGAIN, EINVAL, EIO, ENODEV, ENOMEM, EOPNOTSUPP, ETIMEDOUT } from '../uapi/errno.js';
import { VIRTIO_ID_CLOCK } from '../uapi/ids.js';
import {
  VIRTIO_RTC_MSG_SIZES,
  VIRTIO_RTC_REQ,
  VIRTIO_RTC_REQ_CFG,
  VIRTIO_RTC_REQ_CLOCK_CAP,
  VIRTIO_RTC_REQ_READ,
  VIRTIO_RTC_RESP,
  VIRTIO_RTC_S_EINVAL,
  VIRTIO_RTC_S_ENODEV,
  VIRTIO_RTC_S_EOPNOTSUPP,
  VIRTIO_RTC_S_OK,
} from '../uapi/rtc.js';
import {
  VIRTIO_DEV_ANY_ID,
  type VirtioDevice,
  type VirtioDriver,
  virtioDeviceReady,
  virtioDeviceReadyNoirq,
  virtioFindVqs,
  virtioResetDevice,
} from '../virtio.js';
import type { Virtqueue } from '../virtio-types.js';

export const viortcOptions = { timeoutMs: 2000 };

/** Largest request and response of the messages this driver sends. */
const REQ_MAX = 16;
const RESP_MAX = 24;

interface ViortcMsg {
  done: Completion;
  /** Bytes the device wrote (used len). */
  len: number;
}

export interface ViortcStats {
  requests: number;
  completed: number;
  errors: number;
  /** Requests completed by polling the used ring (device interrupts masked). */
  polled: number;
}

export interface ViortcDev {
  vdev: VirtioDevice;
  vq: Virtqueue<ViortcMsg> | null;
  /** DMA buffers for the one message in flight (the driver serialises). */
  req: number;
  resp: number;
  numClocks: number;
  clockTypes: number[];
  /** Between freeze() and the restore that brings the clock back. */
  frozen: boolean;
  /** The clock reading taken when the clock came back from sleep. */
  resumeReading: bigint | null;
  stats: ViortcStats;
}

/** A readable clock (the RTC/PTP class device of Linux, reduced). */
export interface ClockProvider {
  name: string;
  read(): bigint | number;
}

/** Registered clocks by name ("rtc0", ...): kernel memory. */
export const clockProviders = registerKernelGlobal(new Map<string, ClockProvider>());

function viortc(vdev: VirtioDevice): ViortcDev {
  return vdev.priv as ViortcDev;
}

function viortcStatusToErrno(status: number): number {
  switch (status) {
    case VIRTIO_RTC_S_OK:
      return 0;
    case VIRTIO_RTC_S_EOPNOTSUPP:
      return -EOPNOTSUPP;
    case VIRTIO_RTC_S_ENODEV:
      return -ENODEV;
    case VIRTIO_RTC_S_EINVAL:
      return -EINVAL;
    default:
      return -EIO;
  }
}

/** viortc_cb_requestq: complete every used message. */
function viortcCbRequestq(vq: Virtqueue): void {
  for (;;) {
    const used = (vq as Virtqueue<ViortcMsg>).getBuf();
    if (!used) return;
    used.data.len = used.len;
    used.data.done.complete();
  }
}

/** Poll the used ring: the only way to a completion while device interrupts are masked. */
function viortcPoll(vq: Virtqueue<ViortcMsg>, msg: ViortcMsg, timeoutMs: number): boolean {
  const deadline = performance.now() + timeoutMs;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let spins = 0;
  while (!msg.done.isDone()) {
    viortcCbRequestq(vq);
    if (msg.done.isDone()) break;
    if (performance.now() > deadline) return false;
    // Spin briefly (the device answers in microseconds), then nap.
    if (++spins > 1000) Atomics.wait(nap, 0, 0, 0.1);
  }
  return true;
}

/**
 * viortc_msg_xfer: send one request and wait for its response. Returns the
 * response bytes or -errno.
 */
function viortcMsgXfer(vi: ViortcDev, msgType: number, clockId: number): DataView | number {
  const vq = vi.vq;
  if (!vq || vq.isBroken()) return -ENODEV;
  const sizes = VIRTIO_RTC_MSG_SIZES.get(msgType);
  if (!sizes) return -EINVAL;

  const dma = dmaForDevice(vi.vdev);
  const req = new DataView(dma.bytes(vi.req, REQ_MAX).buffer, dma.bytes(vi.req, REQ_MAX).byteOffset, REQ_MAX);
  for (let i = 0; i < REQ_MAX; i++) req.setUint8(i, 0);
  req.setUint16(VIRTIO_RTC_REQ.msg_type, msgType, true);
  if (sizes.req > VIRTIO_RTC_REQ.clock_id) req.setUint16(VIRTIO_RTC_REQ.clock_id, clockId, true);

  const msg: ViortcMsg = { done: new Completion(), len: 0 };
  const err = vq.addSgs(
    [
      { addr: vi.req, len: sizes.req },
      { addr: vi.resp, len: sizes.resp },
    ],
    1,
    1,
    msg,
  );
  if (err) {
    vi.stats.errors++;
    return err;
  }
  vi.stats.requests++;
  vq.kick();

  let ok: boolean;
  if (kernel.inNoirq) {
    ok = viortcPoll(vq, msg, viortcOptions.timeoutMs);
    if (ok) vi.stats.polled++;
  } else {
    ok = waitForCompletionTimeout(msg.done, irqChipForDevice(vi.vdev), viortcOptions.timeoutMs, { target: vi.vdev, where: 'viortc_msg_xfer' }) > 0;
  }
  if (!ok) {
    vi.stats.errors++;
    return -ETIMEDOUT;
  }
  vi.stats.completed++;
  if (msg.len < sizes.resp) {
    vi.stats.errors++;
    return -EIO;
  }
  const b = dma.bytes(vi.resp, RESP_MAX);
  const resp = new DataView(b.buffer, b.byteOffset, RESP_MAX);
  const rc = viortcStatusToErrno(resp.getUint8(VIRTIO_RTC_RESP.status));
  if (rc) {
    vi.stats.errors++;
    return rc;
  }
  return resp;
}

/** viortc_read: one clock reading in ns, or -errno. */
export function viortcRead(vi: ViortcDev, clockId: number): bigint | number {
  if (vi.frozen) return -EAGAIN;
  const r = viortcMsgXfer(vi, VIRTIO_RTC_REQ_READ, clockId);
  if (typeof r === 'number') return r;
  return r.getBigUint64(VIRTIO_RTC_RESP.clock_reading, true);
}

function viortcInitVqs(vi: ViortcDev): number {
  const vqs: (Virtqueue | null)[] = [null];
  const err = virtioFindVqs(vi.vdev, vqs, [{ name: 'requestq', callback: viortcCbRequestq }]);
  if (err) return err;
  vi.vq = vqs[0] as Virtqueue<ViortcMsg>;
  return 0;
}

function clockName(vi: ViortcDev, clockId: number): string {
  return `rtc${vi.vdev.index}.${clockId}`;
}

function viortcClocksInit(vi: ViortcDev): number {
  const cfg = viortcMsgXfer(vi, VIRTIO_RTC_REQ_CFG, 0);
  if (typeof cfg === 'number') return cfg;
  vi.numClocks = cfg.getUint16(VIRTIO_RTC_RESP.num_clocks, true);
  vi.clockTypes = [];
  for (let id = 0; id < vi.numClocks; id++) {
    const cap = viortcMsgXfer(vi, VIRTIO_RTC_REQ_CLOCK_CAP, id);
    if (typeof cap === 'number') {
      // The clocks registered so far go again, as the C driver's error path does.
      for (let j = 0; j < id; j++) clockProviders.delete(clockName(vi, j));
      return cap;
    }
    vi.clockTypes.push(cap.getUint8(VIRTIO_RTC_RESP.type));
    const name = clockName(vi, id);
    clockProviders.set(name, { name, read: () => viortcRead(vi, id) });
  }
  return 0;
}

function viortcClocksExit(vi: ViortcDev): void {
  for (let id = 0; id < vi.numClocks; id++) clockProviders.delete(clockName(vi, id));
}

function viortcProbe(vdev: VirtioDevice): number {
  const dma = dmaForDevice(vdev);
  const req = dma.alloc(REQ_MAX, 16);
  const resp = req === null ? null : dma.alloc(RESP_MAX, 16);
  if (req === null || resp === null) {
    if (req !== null) dma.free(req);
    return -ENOMEM;
  }
  const vi: ViortcDev = {
    vdev,
    vq: null,
    req,
    resp,
    numClocks: 0,
    clockTypes: [],
    frozen: false,
    resumeReading: null,
    stats: { requests: 0, completed: 0, errors: 0, polled: 0 },
  };
  vdev.priv = vi;

  let err = viortcInitVqs(vi);
  if (!err) {
    virtioDeviceReady(vdev);
    err = viortcClocksInit(vi);
    if (err) {
      virtioResetDevice(vdev);
      vdev.config.delVqs(vdev);
    }
  }
  if (err) {
    dma.free(req);
    dma.free(resp);
    vdev.priv = null;
  }
  return err;
}

function viortcRemove(vdev: VirtioDevice): void {
  const vi = viortc(vdev);
  viortcClocksExit(vi);
  virtioResetDevice(vdev);
  vdev.config.delVqs(vdev);
  vi.vq = null;
  const dma = dmaForDevice(vdev);
  dma.free(vi.req);
  dma.free(vi.resp);
}

/** The clock is back: take a reading (as timekeeping does on resume). */
function viortcResumed(vi: ViortcDev): void {
  vi.frozen = false;
  const r = viortcRead(vi, 0);
  vi.resumeReading = typeof r === 'bigint' ? r : null;
}

// --- the usual pair: tear down in freeze, set up in restore ---------------

function viortcFreeze(vdev: VirtioDevice): number {
  const vi = viortc(vdev);
  vi.frozen = true;
  virtioResetDevice(vdev);
  vdev.config.delVqs(vdev);
  vi.vq = null;
  return 0;
}

function viortcRestore(vdev: VirtioDevice): number {
  const vi = viortc(vdev);
  const err = viortcInitVqs(vi);
  if (err) return err;
  virtioDeviceReady(vdev);
  viortcResumed(vi);
  return 0;
}

export const virtioRtcDriver: VirtioDriver = {
  name: 'virtio_rtc',
  idTable: [{ device: VIRTIO_ID_CLOCK, vendor: VIRTIO_DEV_ANY_ID }],
  featureTable: [],
  probe: viortcProbe,
  remove: viortcRemove,
  freeze: viortcFreeze,
  restore: viortcRestore,
};

// --- the noirq pair: back in restore_noirq --------------------------------

/** freeze() with restore_noirq: only quiesce; the queue stays for reset_vqs. */
function viortcFreezeQuiesce(vdev: VirtioDevice): number {
  viortc(vdev).frozen = true;
  return 0;
}

/** Nothing is in flight (requests are synchronous); the core resets at restore_noirq. */
function viortcFreezeNoirq(_vdev: VirtioDevice): number {
  return 0;
}

/** The core has reset, renegotiated and re-programmed the queue (reset_vqs). */
function viortcRestoreNoirq(vdev: VirtioDevice): number {
  virtioDeviceReadyNoirq(vdev);
  viortcResumed(viortc(vdev));
  return 0;
}

/** After RESTORED nothing is left; after an abort before noirq, undo freeze(). */
function viortcRestoreAfterNoirq(vdev: VirtioDevice): number {
  const vi = viortc(vdev);
  if (vi.frozen) viortcResumed(vi);
  return 0;
}

export const virtioRtcNoirqDriver: VirtioDriver = {
  name: 'virtio_rtc_noirq',
  idTable: [{ device: VIRTIO_ID_CLOCK, vendor: VIRTIO_DEV_ANY_ID }],
  featureTable: [],
  probe: viortcProbe,
  remove: viortcRemove,
  freeze: viortcFreezeQuiesce,
  restore: viortcRestoreAfterNoirq,
  freezeNoirq: viortcFreezeNoirq,
  restoreNoirq: viortcRestoreNoirq,
};

/** The bound rtc driver's state, or null. */
export function viortcDev(vdev: VirtioDevice): ViortcDev | null {
  return (vdev.driver === virtioRtcDriver || vdev.driver === virtioRtcNoirqDriver) && vdev.priv ? viortc(vdev) : null;
}

/** Read a clock by provider name: ns, or -errno (-ENODEV: no such clock). */
export function clockRead(name: string): bigint | number {
  const p = clockProviders.get(name);
  return p ? p.read() : -ENODEV;
}
