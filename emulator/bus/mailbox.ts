// The register trap mailbox's layout: a fixed Int32Array in a SharedArrayBuffer,
// shared by the driver (main thread) and the device worker. One access in
// flight at a time. The driver stores addr and value, then publishes a new
// REQ word carrying {seq, width, op} and spins on RESP; the worker handles
// the access and echoes REQ into RESP. Both sides spin briefly, then block
// in Atomics.wait, and notify the other only when it said it is sleeping;
// the driver spins only while the worker's heartbeat shows it running
// (spin.ts).
// No allocation, serialization or BigInt per access; msgpackr is used only
// for control-plane requests, through the separate control area.
import { Packr } from 'msgpackr';
import { BusError } from '../../core/bus.js';
import { WAKE_ESTIMATE_MS, type Partner } from './spin.js';
import { SNAPSHOT_LIMITS } from '../snapshot/format.js';

/** Word indices in the mailbox Int32Array. */
export const MB = {
  // The hot block: every word an access touches, within 16 bytes so that it
  // sits in one cache line (buffers are at least 16-byte aligned). A round
  // trip then moves one line each way; with the request and the response on
  // separate lines it measured twice as slow.
  /** Driver: (seq << 5) | (width << 2) | op. A new value is a new request. */
  REQ: 0,
  ADDR: 1,
  /** The value of a write (driver), or the result of a read (worker). */
  DATA: 2,
  /** Worker: the REQ value it has finished. */
  RESP: 3,
  // Cold words, one 64-byte line per writer.
  DRIVER_SLEEPING: 16,
  CLOSED: 17,
  /** Driver: its own wake-up latency (notify to running again), ns, as it measured it. */
  DRIVER_WAKE_NS: 18,
  WORKER_SLEEPING: 32,
  /**
   * Worker: its heartbeat. Bumped every ~1 µs while it spins for requests,
   * when it wakes, and between steps of device work; the driver spins only
   * while it moves (spin.ts). On the line of WORKER_SLEEPING, which the
   * driver reads with it.
   */
  WORKER_BEAT: 33,
  /** Worker: its own wake-up latency (notify to running again), ns, as it measured it. */
  WORKER_WAKE_NS: 34,
  WORKER_DEAD: 48,
  READY: 49,
  /** Bytes used in the control area: the request, then the response or the death note. */
  CTRL_LEN: 50,
  /** Framing of a control message larger than the area (CTRL_FRAME_*), written with CTRL_LEN by whoever wrote the frame. */
  CTRL_FRAME: 51,
  WORDS: 64,
} as const;

/**
 * Float64 indices into the same buffer (sharedClock ms), each on its
 * writer's line: when a side last notified the other, so the woken side can
 * measure its wake-up, and when the worker last went to sleep, so the driver
 * can tell a worker it has notified (waking up) from one nobody has.
 */
export const MB_TIME = {
  /** Driver (words 20-21): when it last notified the sleeping worker. */
  WORKER_NOTIFIED_AT: 10,
  /** Worker (words 36-37): when it last notified the sleeping driver. */
  DRIVER_NOTIFIED_AT: 18,
  /** Worker (words 38-39): when it last went to sleep. */
  WORKER_SLEPT_AT: 19,
} as const;

export const OP_READ = 0;
export const OP_WRITE = 1;
export const OP_CONTROL = 2;
export const OP_MASK = 3;
export const WIDTH_SHIFT = 2;
export const WIDTH_MASK = 7;
export const SEQ_SHIFT = 5;
export const SEQ_MASK = 0x7ff_ffff;

export const CONTROL_AREA_DEFAULT = 1 << 20;

/**
 * A control message (request or response) larger than the control area
 * travels in frames of at most the area's size: each frame but the last is
 * marked CTRL_FRAME_MORE. The worker acknowledges a request frame with an
 * empty one; the driver fetches each further response frame with an empty
 * request marked CTRL_FRAME_NEXT.
 */
export const CTRL_FRAME_LAST = 0;
export const CTRL_FRAME_MORE = 1;
export const CTRL_FRAME_NEXT = 2;
/** A control message's bytes at most, either way: a snapshot document and its envelope. */
export const CONTROL_MESSAGE_MAX = SNAPSHOT_LIMITS.maxDocBytes + (1 << 20);
/** The deadline of a snapshot or restore request (a document of many MiB), if longer than the trap deadline. */
export const CONTROL_SLOW_TIMEOUT_MS = 120_000;

/** Default overall deadline for one trapped access. */
export const TRAP_TIMEOUT_DEFAULT_MS = 2000;

/** Longest single Atomics.wait on the driver side, to re-check the dead/closed flags. */
export const DRIVER_WAIT_SLICE_MS = 20;
/** Deferred device work per step; the worker checks for requests between steps. */
export const DEFERRED_BUDGET = 16;

export interface MailboxBuffers {
  mailbox: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

export function createMailbox(controlBytes = CONTROL_AREA_DEFAULT): MailboxBuffers {
  const mailbox = new SharedArrayBuffer(MB.WORDS * 4);
  const mb = new Int32Array(mailbox);
  // Until a side has measured its wake-up latency, the other assumes the default.
  mb[MB.DRIVER_WAKE_NS] = mb[MB.WORKER_WAKE_NS] = Math.round(WAKE_ESTIMATE_MS * 1e6);
  return { mailbox, control: new SharedArrayBuffer(controlBytes) };
}

/** Both ends must agree: plain maps, no msgpackr records. */
export function controlCodec(): Packr {
  return new Packr({ useRecords: false });
}

/** The worker as the driver thread sees it: its heartbeat, its sleeping flag, its wake-up latency. */
export function workerPartner(mailbox: SharedArrayBuffer): Partner {
  const mb = new Int32Array(mailbox);
  const times = new Float64Array(mailbox);
  return {
    beat: () => Atomics.load(mb, MB.WORKER_BEAT),
    asleep: () => Atomics.load(mb, MB.WORKER_SLEEPING) !== 0,
    waking: () => Atomics.load(mb, MB.WORKER_SLEEPING) !== 0 && times[MB_TIME.WORKER_NOTIFIED_AT]! >= times[MB_TIME.WORKER_SLEPT_AT]!,
    wakeMs: () => Atomics.load(mb, MB.WORKER_WAKE_NS) / 1e6,
  };
}

/** Truncate a value to an access width, as the bus lanes would. */
export function maskToWidth(width: number, value: number): number {
  return width === 4 ? value >>> 0 : width === 2 ? value & 0xffff : value & 0xff;
}

export function badAccess(addr: number, width: number): BusError | null {
  if (width !== 1 && width !== 2 && width !== 4) {
    return new BusError('EMU_BAD_ACCESS', `access width ${width} not carried by the bus (1, 2 or 4; a 64-bit access is two 32-bit ones: read64/write64)`);
  }
  if (addr >>> 0 !== addr) {
    return new BusError('EMU_BAD_ACCESS', `address ${addr} is not a 32-bit guest-physical address`);
  }
  return null;
}

/** The parts of a framed message, joined. */
export function joinFrames(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function decodeText(ctrl: Uint8Array, len: number): string {
  // TextDecoder refuses views of shared memory: copy out first.
  return new TextDecoder().decode(ctrl.slice(0, Math.min(len, ctrl.length)));
}

