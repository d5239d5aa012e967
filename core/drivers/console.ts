// virtio-console, after Linux drivers/char/virtio_console.c, reduced to port
// 0 without VIRTIO_CONSOLE_F_MULTIPORT (the "older host" path of
// virtcons_probe: one console port, queues "input" and "output"):
// - the receive queue is kept full of PAGE_SIZE buffers (fill_queue); what
//   the host sends is taken by in_intr → hvc_poll → get_chars into the
//   port's tty buffer, and each emptied buffer goes straight back;
// - transmit is put_chars → __send_to_port: one buffer per chunk, kick, then
//   spin on the used ring until the host has taken it (the hvc path may not
//   sleep, so Linux busy-waits; here the spin is bounded);
// - virtcons_freeze/virtcons_restore remove and re-add the queues.
import { Completion, irqChipForDevice, waitForCompletionTimeout } from '../completion.js';
import { PAGE_SIZE, dmaForDevice } from '../dma.js';
import { devWarn } from '../kernel.js';
import { VIRTIO_CONSOLE_CONFIG, VIRTIO_CONSOLE_F_SIZE } from '../uapi/console.js';
import { EAGAIN, EIO, ENODEV, ENOMEM, ETIMEDOUT } from '../uapi/errno.js';
import { VIRTIO_ID_CONSOLE } from '../uapi/ids.js';
import {
  VIRTIO_DEV_ANY_ID,
  type VirtioDevice,
  type VirtioDriver,
  virtioCread16,
  virtioDeviceReady,
  virtioFindVqs,
  virtioHasFeature,
  virtioResetDevice,
} from '../virtio.js';
import type { Virtqueue } from '../virtio-types.js';

export const virtconsOptions = {
  /** Bound on one transmit spin or input wait (Linux spins forever). */
  timeoutMs: 5000,
};

/** struct port_buffer */
interface PortBuffer {
  /** DMA address */
  buf: number;
  /** Bytes of valid data (receive). */
  len: number;
  /** Bytes of data already consumed. */
  offset: number;
  /** Size of the buffer. */
  size: number;
}

/** struct port_stats */
export interface PortStats {
  bytesSent: number;
  bytesReceived: number;
  bytesDiscarded: number;
  /** Transmit buffers the host took. */
  buffersSent: number;
  /** Newlines among the bytes sent (one per console line). */
  linesSent: number;
  /** Transmits that failed (ring error, host never took the buffer). */
  errors: number;
}

/** struct port, for port 0 as an hvc console. */
export interface Port {
  inVq: Virtqueue<PortBuffer> | null;
  outVq: Virtqueue<PortBuffer> | null;
  /** The receive buffer being read from (port->inbuf). */
  inbuf: PortBuffer | null;
  /** Bytes hvc took from the port and the tty has not read yet. */
  tty: number[];
  /** Completed each time input reaches the tty (readers wait on it). */
  inputArrived: Completion;
  guestConnected: boolean;
  hostConnected: boolean;
  /** Terminal size from config (VIRTIO_CONSOLE_F_SIZE), once the host reported one. */
  ws: { cols: number; rows: number } | null;
  stats: PortStats;
}

/** struct ports_device, without the multiport control queues. */
export interface PortsDevice {
  vdev: VirtioDevice;
  port: Port;
  /** Between freeze() and restore(). */
  frozen: boolean;
}

function portdevOf(vdev: VirtioDevice): PortsDevice {
  return vdev.priv as PortsDevice;
}

// ---------------------------------------------------------------------------
// Buffers

function allocBuf(vdev: VirtioDevice, size: number): PortBuffer | null {
  const buf = dmaForDevice(vdev).alloc(size, 64);
  return buf === null ? null : { buf, len: 0, offset: 0, size };
}

function freeBuf(vdev: VirtioDevice, buf: PortBuffer): void {
  dmaForDevice(vdev).free(buf.buf);
}

/** add_inbuf: queue a receive buffer; returns the free descriptors left, or -errno. */
function addInbuf(vq: Virtqueue<PortBuffer>, buf: PortBuffer): number {
  const ret = vq.addInbuf([{ addr: buf.buf, len: buf.size }], buf);
  vq.kick();
  return ret ? ret : vq.numFree;
}

/** fill_queue: post receive buffers until the ring is full; returns how many (-ENOMEM if none fit). */
function fillQueue(vdev: VirtioDevice, vq: Virtqueue<PortBuffer>): number {
  let added = 0;
  let ret: number;
  do {
    const buf = allocBuf(vdev, PAGE_SIZE);
    if (!buf) return added ? added : -ENOMEM;
    ret = addInbuf(vq, buf);
    if (ret < 0) {
      freeBuf(vdev, buf);
      break;
    }
    added++;
  } while (ret > 0);
  return added;
}

/** get_inbuf */
function getInbuf(port: Port): PortBuffer | null {
  const used = port.inVq?.getBuf();
  if (!used) return null;
  const buf = used.data;
  buf.len = Math.min(used.len, buf.size);
  buf.offset = 0;
  port.stats.bytesReceived += buf.len;
  return buf;
}

/** port_has_data */
function portHasData(port: Port): boolean {
  if (!port.inbuf) port.inbuf = getInbuf(port);
  return port.inbuf !== null;
}

/** fill_readbuf: copy from the current receive buffer; re-queue it once emptied. */
function fillReadbuf(vdev: VirtioDevice, port: Port, outCount: number): number {
  if (!outCount || !portHasData(port)) return 0;
  const buf = port.inbuf!;
  const n = Math.min(outCount, buf.len - buf.offset);
  const bytes = dmaForDevice(vdev).bytes(buf.buf + buf.offset, n);
  for (const b of bytes) port.tty.push(b);
  buf.offset += n;
  if (buf.offset === buf.len) {
    // We're done using all the data in this buffer. Re-queue so that the
    // Host can send us more data.
    port.inbuf = null;
    if (addInbuf(port.inVq!, buf) < 0) {
      devWarn(vdev, 'failed add_buf');
      freeBuf(vdev, buf);
    }
  }
  return n;
}

/** hvc_poll → get_chars: move everything the host sent into the tty. */
function hvcPoll(vdev: VirtioDevice, port: Port): number {
  let total = 0;
  for (let n = fillReadbuf(vdev, port, PAGE_SIZE); n > 0; n = fillReadbuf(vdev, port, PAGE_SIZE)) total += n;
  if (total) port.inputArrived.complete();
  return total;
}

/** discard_port_data: drop received data nobody read; the buffers go back. */
function discardPortData(vdev: VirtioDevice, port: Port): void {
  let err = 0;
  for (let buf = port.inbuf ?? getInbuf(port); buf; buf = getInbuf(port)) {
    port.stats.bytesDiscarded += buf.len - buf.offset;
    if (addInbuf(port.inVq!, buf) < 0) {
      err++;
      freeBuf(vdev, buf);
    }
    port.inbuf = null;
  }
  if (err) devWarn(vdev, `Errors adding ${err} buffers back to vq`);
}

/** reclaim_consumed_buffers: transmit buffers the host is done with. */
function reclaimConsumedBuffers(vdev: VirtioDevice, port: Port): void {
  if (!port.outVq) return;
  for (let used = port.outVq.getBuf(); used; used = port.outVq.getBuf()) freeBuf(vdev, used.data);
}

// ---------------------------------------------------------------------------
// Callbacks

/** in_intr: the console port takes data at any time (guest_connected). */
function inIntr(vq: Virtqueue): void {
  const portdev = portdevOf(vq.vdev);
  if (!portdev) return;
  const port = portdev.port;
  if (!port.guestConnected) discardPortData(vq.vdev, port);
  else hvcPoll(vq.vdev, port);
}

/** out_intr: __send_to_port polls for its own buffers; nothing to do. */
function outIntr(_vq: Virtqueue): void {}

/** config_work_handler without multiport: the console was resized. */
function virtconsConfigChanged(vdev: VirtioDevice): void {
  const portdev = portdevOf(vdev);
  if (!portdev || !virtioHasFeature(vdev, VIRTIO_CONSOLE_F_SIZE)) return;
  const cols = virtioCread16(vdev, VIRTIO_CONSOLE_CONFIG.cols);
  const rows = virtioCread16(vdev, VIRTIO_CONSOLE_CONFIG.rows);
  portdev.port.ws = { cols, rows };
}

// ---------------------------------------------------------------------------
// Transmit

/** Spin on the used ring until the host took `buf` (bounded); false on timeout or a broken queue. */
function waitSent(vdev: VirtioDevice, vq: Virtqueue<PortBuffer>, buf: PortBuffer): boolean {
  const deadline = performance.now() + virtconsOptions.timeoutMs;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let spins = 0;
  for (;;) {
    for (let used = vq.getBuf(); used; used = vq.getBuf()) {
      freeBuf(vdev, used.data);
      if (used.data === buf) return true;
    }
    if (vq.isBroken() || performance.now() > deadline) return false;
    // cpu_relax(); after a while, nap so a slow worker gets the CPU.
    if (++spins > 1000) Atomics.wait(nap, 0, 0, 0.1);
  }
}

/** __send_to_port (blocking): one buffer; returns the bytes sent or -errno. */
function sendToPort(portdev: PortsDevice, data: Uint8Array): number {
  const { vdev, port } = portdev;
  const vq = port.outVq;
  if (!vq) return -EAGAIN;
  reclaimConsumedBuffers(vdev, port);
  const buf = allocBuf(vdev, data.length);
  if (!buf) return -ENOMEM;
  dmaForDevice(vdev).bytes(buf.buf, data.length).set(data);
  buf.len = data.length;
  const err = vq.addOutbuf([{ addr: buf.buf, len: data.length }], buf);
  // Tell Host to go!
  vq.kick();
  if (err) {
    freeBuf(vdev, buf);
    port.stats.errors++;
    return err;
  }
  if (!waitSent(vdev, vq, buf)) {
    // Left on the ring: freeze or remove reclaims it.
    port.stats.errors++;
    return vq.isBroken() ? -EIO : -ETIMEDOUT;
  }
  port.stats.bytesSent += data.length;
  port.stats.buffersSent++;
  for (const b of data) if (b === 0x0a) port.stats.linesSent++;
  return data.length;
}

const utf8 = new TextEncoder();

/**
 * Write to the console (hvc put_chars, in chunks of at most a page): the
 * bytes written, or -errno (-EAGAIN while frozen, -ENODEV if not bound).
 */
export function virtconsWrite(vdev: VirtioDevice, data: Uint8Array | string): number {
  const portdev = virtconsInfo(vdev);
  if (!portdev) return -ENODEV;
  if (portdev.frozen) return -EAGAIN;
  const bytes = typeof data === 'string' ? utf8.encode(data) : data;
  let sent = 0;
  while (sent < bytes.length) {
    const n = sendToPort(portdev, bytes.subarray(sent, Math.min(bytes.length, sent + PAGE_SIZE)));
    if (n < 0) return sent || n;
    sent += n;
  }
  return sent;
}

/** Take what arrived from the host so far (the tty's read); empty if nothing. */
export function virtconsRead(vdev: VirtioDevice): Uint8Array | number {
  const portdev = virtconsInfo(vdev);
  if (!portdev) return -ENODEV;
  const port = portdev.port;
  // Interrupts that already arrived run first; then anything left in the ring.
  irqChipForDevice(vdev).deliverPending();
  if (!portdev.frozen) hvcPoll(vdev, port);
  return Uint8Array.from(port.tty.splice(0));
}

/**
 * Wait until at least `count` bytes are in the tty (through the interrupt
 * path), then take them all. -ETIMEDOUT if they do not come.
 */
export function virtconsReadWait(vdev: VirtioDevice, count: number): Uint8Array | number {
  const portdev = virtconsInfo(vdev);
  if (!portdev) return -ENODEV;
  if (portdev.frozen) return -EAGAIN;
  const port = portdev.port;
  const irq = irqChipForDevice(vdev);
  const deadline = performance.now() + virtconsOptions.timeoutMs;
  irq.deliverPending();
  while (port.tty.length < count) {
    const left = deadline - performance.now();
    if (left <= 0) return -ETIMEDOUT;
    waitForCompletionTimeout(port.inputArrived, irq, left, { target: vdev, where: 'virtcons_read' });
  }
  return Uint8Array.from(port.tty.splice(0));
}

// ---------------------------------------------------------------------------
// Probe, remove, PM

/** init_vqs for a single port: "input" (receiveq) and "output" (transmitq). */
function initVqs(portdev: PortsDevice): number {
  const vqs: (Virtqueue | null)[] = [null, null];
  const err = virtioFindVqs(portdev.vdev, vqs, [
    { name: 'input', callback: inIntr },
    { name: 'output', callback: outIntr },
  ]);
  if (err) return err;
  portdev.port.inVq = vqs[0] as Virtqueue<PortBuffer>;
  portdev.port.outVq = vqs[1] as Virtqueue<PortBuffer>;
  return 0;
}

/** remove_port_data */
function removePortData(vdev: VirtioDevice, port: Port): void {
  // Remove unused data this port might have received.
  discardPortData(vdev, port);
  reclaimConsumedBuffers(vdev, port);
}

/** remove_vqs: every buffer back from the (reset) device, then del_vqs. */
function removeVqs(portdev: PortsDevice): void {
  const { vdev, port } = portdev;
  for (const vq of [port.inVq, port.outVq]) {
    if (!vq) continue;
    // flush_bufs, then what the device never used.
    for (let used = vq.getBuf(); used; used = vq.getBuf()) freeBuf(vdev, used.data);
    for (let buf = vq.detachUnusedBuf(); buf; buf = vq.detachUnusedBuf()) freeBuf(vdev, buf);
  }
  vdev.config.delVqs(vdev);
  port.inVq = null;
  port.outVq = null;
  port.inbuf = null;
}

/** add_port(portdev, 0): post receive buffers and connect the console. */
function addPort(portdev: PortsDevice): number {
  const n = fillQueue(portdev.vdev, portdev.port.inVq!);
  if (n <= 0) {
    devWarn(portdev.vdev, 'Error allocating inbufs');
    return -ENOMEM;
  }
  // init_port_console: the hvc console is there for the guest at once.
  portdev.port.guestConnected = true;
  // Without multiport there is no control message: the host is assumed connected.
  portdev.port.hostConnected = true;
  return 0;
}

function virtconsProbe(vdev: VirtioDevice): number {
  const portdev: PortsDevice = {
    vdev,
    frozen: false,
    port: {
      inVq: null,
      outVq: null,
      inbuf: null,
      tty: [],
      inputArrived: new Completion(),
      guestConnected: false,
      hostConnected: false,
      ws: null,
      stats: { bytesSent: 0, bytesReceived: 0, bytesDiscarded: 0, buffersSent: 0, linesSent: 0, errors: 0 },
    },
  };
  const before = retired.get(vdev);
  if (before) Object.assign(portdev.port.stats, before);
  vdev.priv = portdev;

  let err = initVqs(portdev);
  if (err) {
    vdev.priv = null;
    return err;
  }
  virtioDeviceReady(vdev);
  err = addPort(portdev);
  if (err) {
    virtioResetDevice(vdev);
    removeVqs(portdev);
    vdev.priv = null;
    return err;
  }
  return 0;
}

/** Stats survive remove, for summaries. */
const retired = new WeakMap<VirtioDevice, PortStats>();

function virtconsRemove(vdev: VirtioDevice): void {
  const portdev = portdevOf(vdev);
  virtioResetDevice(vdev);
  removePortData(vdev, portdev.port);
  removeVqs(portdev);
  retired.set(vdev, { ...portdev.port.stats });
  vdev.priv = null;
}

/** virtcons_freeze */
function virtconsFreeze(vdev: VirtioDevice): number {
  const portdev = portdevOf(vdev);
  const port = portdev.port;
  portdev.frozen = true;
  virtioResetDevice(vdev);
  port.inVq?.disableCb();
  port.outVq?.disableCb();
  // We'll ask the host later if the new invocation has the port opened or closed.
  port.hostConnected = false;
  removePortData(vdev, port);
  removeVqs(portdev);
  return 0;
}

/** virtcons_restore */
function virtconsRestore(vdev: VirtioDevice): number {
  const portdev = portdevOf(vdev);
  const err = initVqs(portdev);
  if (err) return err;
  virtioDeviceReady(vdev);
  if (fillQueue(vdev, portdev.port.inVq!) <= 0) devWarn(vdev, 'Error allocating inbufs');
  portdev.port.hostConnected = true;
  portdev.frozen = false;
  return 0;
}

export const virtioConsoleDriver: VirtioDriver = {
  name: 'virtio_console',
  idTable: [{ device: VIRTIO_ID_CONSOLE, vendor: VIRTIO_DEV_ANY_ID }],
  featureTable: [VIRTIO_CONSOLE_F_SIZE],
  probe: virtconsProbe,
  remove: virtconsRemove,
  configChanged: virtconsConfigChanged,
  freeze: virtconsFreeze,
  restore: virtconsRestore,
};

/** The bound driver's state, or null if virtio_console is not bound to vdev. */
export function virtconsInfo(vdev: VirtioDevice): PortsDevice | null {
  return vdev.driver === virtioConsoleDriver && vdev.priv ? portdevOf(vdev) : null;
}

/** Port 0 totals, including an earlier binding's. */
export function virtconsStats(vdev: VirtioDevice): PortStats {
  const portdev = virtconsInfo(vdev);
  if (portdev) return { ...portdev.port.stats };
  return { ...(retired.get(vdev) ?? { bytesSent: 0, bytesReceived: 0, bytesDiscarded: 0, buffersSent: 0, linesSent: 0, errors: 0 }) };
}
