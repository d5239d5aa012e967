// The register trap mailbox: a fixed Int32Array layout in a SharedArrayBuffer,
// shared by the driver (main thread) and the device worker. One access in
// flight at a time. The driver stores addr and value, then publishes a new
// REQ word carrying {seq, width, op} and spins on RESP; the worker handles
// the access and echoes REQ into RESP. Both sides spin briefly, then block
// in Atomics.wait, and notify the other only when it said it is sleeping.
// No allocation, serialization or BigInt per access; msgpackr is used only
// for control-plane requests, through the separate control area.
import { Packr } from 'msgpackr';
import { BusError, type AccessWidth, type Bus, type GuestMemory, type IrqChip } from '../../core/bus.js';
import type { Board, ControlRequest, ControlResponse } from '../board-contract.js';

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
  WORKER_SLEEPING: 32,
  WORKER_DEAD: 48,
  READY: 49,
  /** Bytes used in the control area: the request, then the response or the death note. */
  CTRL_LEN: 50,
  WORDS: 64,
} as const;

export const OP_READ = 0;
export const OP_WRITE = 1;
export const OP_CONTROL = 2;
const OP_MASK = 3;
const WIDTH_SHIFT = 2;
const WIDTH_MASK = 7;
const SEQ_SHIFT = 5;
const SEQ_MASK = 0x7ff_ffff;

export const CONTROL_AREA_DEFAULT = 1 << 20;

/** Default overall deadline for one trapped access. */
export const TRAP_TIMEOUT_DEFAULT_MS = 2000;

/**
 * Spin this long before blocking in Atomics.wait. It must exceed the other
 * side's wake-up latency: a thread woken from Atomics.wait takes ~100 µs to
 * run again on a 2-vCPU VM, and with a shorter spin the partner gives up
 * while it wakes, so every access pays two wake-ups (measured: 40 µs gave
 * ~100 µs per access in short bursts, 200 µs gave 0.5 µs). Idle cost is one
 * spin per burst of traffic.
 */
export const SPIN_MS = 0.2;
/**
 * The worker waits longer before it sleeps: between bursts of accesses the
 * driver often spends a few hundred µs on its own work (reaping and
 * resubmitting a queue's worth of requests), and a sleeping worker makes
 * the next access pay a futex wake on both sides. An idle worker spins once
 * after the last access, then blocks.
 */
export const WORKER_SPIN_MS = 1;
/** Check the clock only every so many spin iterations (performance.now() is ~50 ns). */
export const SPIN_CHECK_MASK = 255;
/** Longest single Atomics.wait on the driver side, to re-check the dead/closed flags. */
const DRIVER_WAIT_SLICE_MS = 20;
/** Deferred device work per step; the worker checks for requests between steps. */
const DEFERRED_BUDGET = 16;

export interface MailboxBuffers {
  mailbox: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

export function createMailbox(controlBytes = CONTROL_AREA_DEFAULT): MailboxBuffers {
  return {
    mailbox: new SharedArrayBuffer(MB.WORDS * 4),
    control: new SharedArrayBuffer(controlBytes),
  };
}

/** Both ends must agree: plain maps, no msgpackr records. */
export function controlCodec(): Packr {
  return new Packr({ useRecords: false });
}

/** Truncate a value to an access width, as the bus lanes would. */
export function maskToWidth(width: number, value: number): number {
  return width === 4 ? value >>> 0 : width === 2 ? value & 0xffff : value & 0xff;
}

export function badAccess(addr: number, width: number): BusError | null {
  if (width !== 1 && width !== 2 && width !== 4) {
    return new BusError('EMU_BAD_ACCESS', `access width ${width} not carried by the bus (1, 2 or 4)`);
  }
  if (addr >>> 0 !== addr) {
    return new BusError('EMU_BAD_ACCESS', `address ${addr} is not a 32-bit guest-physical address`);
  }
  return null;
}

function decodeText(ctrl: Uint8Array, len: number): string {
  // TextDecoder refuses views of shared memory: copy out first.
  return new TextDecoder().decode(ctrl.slice(0, Math.min(len, ctrl.length)));
}

export interface MailboxDriverOptions {
  /** Overall deadline for one access, ms (default 2000). */
  trapTimeoutMs?: number;
}

/**
 * The driver end: the Bus the transports use when the board runs in the
 * device worker. Every method is synchronous, like a CPU's load or store.
 */
export class MailboxBus implements Bus {
  readonly mem: GuestMemory;
  readonly irq: IrqChip;
  /** Overall deadline for one access, ms; may be changed at any time. */
  trapTimeoutMs: number;
  private readonly mb: Int32Array;
  private readonly ctrl: Uint8Array;
  private readonly codec = controlCodec();
  /** The last REQ value published, and its sequence number. */
  private req: number;
  private seq = 0;
  private failure: BusError | null = null;

  constructor(buffers: MailboxBuffers, mem: GuestMemory, irq: IrqChip, opts: MailboxDriverOptions = {}) {
    this.mb = new Int32Array(buffers.mailbox);
    this.ctrl = new Uint8Array(buffers.control);
    this.mem = mem;
    this.irq = irq;
    this.trapTimeoutMs = opts.trapTimeoutMs ?? TRAP_TIMEOUT_DEFAULT_MS;
    this.req = Atomics.load(this.mb, MB.REQ);
  }

  read(addr: number, width: AccessWidth): number {
    const mb = this.mb;
    this.begin(addr, width);
    mb[MB.ADDR] = addr;
    this.publishAndAwait((width << WIDTH_SHIFT) | OP_READ);
    return mb[MB.DATA]! >>> 0;
  }

  write(addr: number, width: AccessWidth, value: number): void {
    const mb = this.mb;
    this.begin(addr, width);
    mb[MB.ADDR] = addr;
    mb[MB.DATA] = value;
    this.publishAndAwait((width << WIDTH_SHIFT) | OP_WRITE);
  }

  /** A control-plane request to the worker (msgpackr through the control area). */
  control(req: ControlRequest): ControlResponse {
    this.begin(0, 4);
    const bytes = this.codec.pack(req);
    if (bytes.length > this.ctrl.length) {
      throw new RangeError(`control request of ${bytes.length} bytes exceeds the ${this.ctrl.length}-byte control area`);
    }
    this.ctrl.set(bytes);
    Atomics.store(this.mb, MB.CTRL_LEN, bytes.length);
    this.publishAndAwait(OP_CONTROL);
    const len = Atomics.load(this.mb, MB.CTRL_LEN);
    return this.codec.unpack(this.ctrl.slice(0, len)) as ControlResponse;
  }

  /** The bus failed for good (worker dead, or closed); null while usable. */
  get error(): BusError | null {
    return this.failure;
  }

  /** Mark the bus closed: every later access throws EMU_CLOSED. Tells the worker to stop serving. */
  close(): void {
    if (!this.failure) this.failure = new BusError('EMU_CLOSED', 'the machine is closed');
    Atomics.store(this.mb, MB.CLOSED, 1);
    Atomics.notify(this.mb, MB.REQ);
  }

  /**
   * The worker is gone (its 'exit'/'error' event, or terminate()). Sets the
   * shared dead flag too, so a wait in progress elsewhere sees it.
   */
  markDead(reason: string): void {
    if (!this.failure) this.failure = new BusError('EMU_WORKER_DEAD', `device worker died: ${reason}`);
    Atomics.store(this.mb, MB.WORKER_DEAD, 1);
    Atomics.notify(this.mb, MB.RESP);
  }

  private begin(addr: number, width: number): void {
    if (this.failure) throw this.failure;
    const bad = badAccess(addr, width);
    if (bad) throw bad;
    // An earlier access timed out and the worker may still be reading its
    // fields: wait for its late response before reusing the mailbox.
    if (Atomics.load(this.mb, MB.RESP) !== this.req) this.await(this.req, true);
  }

  private publishAndAwait(cmd: number): void {
    const mb = this.mb;
    this.seq = (this.seq + 1) & SEQ_MASK;
    const req = (this.seq << SEQ_SHIFT) | cmd;
    this.req = req;
    // Sequentially consistent: the plain ADDR/DATA stores above are visible
    // to a worker that observes this REQ.
    Atomics.store(mb, MB.REQ, req);
    if (Atomics.load(mb, MB.WORKER_SLEEPING) !== 0) Atomics.notify(mb, MB.REQ, 1);
    // Fast path: the worker is spinning and answers in well under a microsecond.
    for (let i = 0; i <= SPIN_CHECK_MASK; i++) {
      if (Atomics.load(mb, MB.RESP) === req) return;
    }
    this.await(req, false);
  }

  /** Spin then block until RESP == req, the worker dies, or the deadline passes. */
  private await(req: number, stale: boolean): void {
    const mb = this.mb;
    const start = performance.now();
    const spinEnd = start + SPIN_MS;
    for (;;) {
      for (let i = 0; i <= SPIN_CHECK_MASK; i++) {
        if (Atomics.load(mb, MB.RESP) === req) return;
      }
      if (Atomics.load(mb, MB.WORKER_DEAD) !== 0) throw this.dead();
      if (performance.now() >= spinEnd) break;
    }
    const deadline = start + this.trapTimeoutMs;
    for (;;) {
      const cur = Atomics.load(mb, MB.RESP);
      if (cur === req) return;
      if (Atomics.load(mb, MB.WORKER_DEAD) !== 0) throw this.dead();
      if (this.failure) throw this.failure;
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.store(mb, MB.DRIVER_SLEEPING, 1);
      // Re-check after flagging: the worker may have answered in between
      // (Atomics.wait also returns at once if RESP moved).
      Atomics.wait(mb, MB.RESP, cur, Math.min(left, DRIVER_WAIT_SLICE_MS));
      Atomics.store(mb, MB.DRIVER_SLEEPING, 0);
    }
    throw new BusError(
      'EMU_TRAP_TIMEOUT',
      stale
        ? `device worker still busy with an earlier access after ${this.trapTimeoutMs} ms`
        : `device worker did not answer within ${this.trapTimeoutMs} ms`,
    );
  }

  private dead(): BusError {
    if (this.failure) return this.failure;
    const mb = this.mb;
    const note = decodeText(this.ctrl, Atomics.load(mb, MB.CTRL_LEN));
    this.failure = new BusError('EMU_WORKER_DEAD', `device worker died: ${note || 'no reason given'}`);
    return this.failure;
  }
}

/**
 * Worker side: report the worker's death to the driver. The text goes into
 * the control area and ends up in the driver's BusError message.
 */
export function announceDeath(buffers: MailboxBuffers, reason: string): void {
  const mb = new Int32Array(buffers.mailbox);
  const ctrl = new Uint8Array(buffers.control);
  const bytes = new TextEncoder().encode(reason).subarray(0, ctrl.length);
  ctrl.set(bytes);
  Atomics.store(mb, MB.CTRL_LEN, bytes.length);
  Atomics.store(mb, MB.WORKER_DEAD, 1);
  Atomics.notify(mb, MB.RESP);
  Atomics.notify(mb, MB.READY);
}

/** Worker-side counters, reported by 'stats'. */
export interface MailboxStats {
  reads: number;
  writes: number;
  controls: number;
  /** Times the worker went to sleep in Atomics.wait. */
  sleeps: number;
  /** runDeferred() steps. */
  deferredSteps: number;
}

/** Handles one control request; may throw (the worker then dies). */
export type ControlHandler = (req: ControlRequest, server: MailboxServer) => ControlResponse;

/**
 * The worker end: a synchronous serving loop. serve() returns only when the
 * driver closes the mailbox; an exception from the board propagates (the
 * caller reports it with die()).
 */
export class MailboxServer {
  readonly stats: MailboxStats = { reads: 0, writes: 0, controls: 0, sleeps: 0, deferredSteps: 0 };
  private readonly mb: Int32Array;
  private readonly ctrl: Uint8Array;
  private readonly codec = controlCodec();
  /** Run once right after the current response is published (control 'hang'). */
  afterReply: (() => void) | null = null;

  constructor(
    buffers: MailboxBuffers,
    private readonly board: Board,
    private readonly onControl: ControlHandler,
  ) {
    this.mb = new Int32Array(buffers.mailbox);
    this.ctrl = new Uint8Array(buffers.control);
  }

  serve(): void {
    const mb = this.mb;
    const board = this.board;
    let last = Atomics.load(mb, MB.REQ);
    Atomics.store(mb, MB.READY, 1);
    Atomics.notify(mb, MB.READY);
    for (;;) {
      const req = Atomics.load(mb, MB.REQ);
      if (req !== last) {
        last = req;
        this.handle(req);
        continue;
      }
      if (Atomics.load(mb, MB.CLOSED) !== 0) return;
      // Device work in small steps, looking for a new request between steps
      // so the register path is never starved by a busy queue.
      if (board.hasDeferred() || board.nextTimerMs() <= 0) {
        board.runDeferred(DEFERRED_BUDGET);
        this.stats.deferredSteps++;
        continue;
      }
      if (this.spin(last) !== last) continue;
      Atomics.store(mb, MB.WORKER_SLEEPING, 1);
      // Blocks until a request, a close, or the next device timer.
      const t = board.nextTimerMs();
      this.stats.sleeps++;
      Atomics.wait(mb, MB.REQ, last, t > 0 ? t : 0);
      Atomics.store(mb, MB.WORKER_SLEEPING, 0);
    }
  }

  private spin(last: number): number {
    const mb = this.mb;
    let end = 0;
    for (let i = 1; ; i++) {
      const s = Atomics.load(mb, MB.REQ);
      if (s !== last) return s;
      if ((i & SPIN_CHECK_MASK) === 0) {
        const now = performance.now();
        if (end === 0) end = now + WORKER_SPIN_MS;
        else if (now >= end) return last;
      }
    }
  }

  private handle(req: number): void {
    const mb = this.mb;
    const op = req & OP_MASK;
    const width = ((req >>> WIDTH_SHIFT) & WIDTH_MASK) as AccessWidth;
    if (op === OP_READ) {
      this.stats.reads++;
      mb[MB.DATA] = this.board.read(mb[MB.ADDR]! >>> 0, width);
    } else if (op === OP_WRITE) {
      this.stats.writes++;
      this.board.write(mb[MB.ADDR]! >>> 0, width, maskToWidth(width, mb[MB.DATA]!));
    } else {
      this.stats.controls++;
      this.handleControl();
    }
    Atomics.store(mb, MB.RESP, req);
    if (Atomics.load(mb, MB.DRIVER_SLEEPING) !== 0) Atomics.notify(mb, MB.RESP, 1);
    const after = this.afterReply;
    if (after) {
      this.afterReply = null;
      after();
    }
  }

  private handleControl(): void {
    const mb = this.mb;
    const len = Atomics.load(mb, MB.CTRL_LEN);
    let req: ControlRequest | null = null;
    let res: ControlResponse = { ok: false, error: 'undecodable control request' };
    try {
      req = this.codec.unpack(this.ctrl.slice(0, len)) as ControlRequest;
    } catch (err) {
      res = { ok: false, error: `undecodable control request: ${String(err)}` };
    }
    // Outside the try: a throwing handler is a worker crash, by design.
    if (req) res = this.onControl(req, this);
    let bytes = this.codec.pack(res);
    if (bytes.length > this.ctrl.length) {
      bytes = this.codec.pack({ ok: false, error: `control response of ${bytes.length} bytes exceeds the control area` });
    }
    this.ctrl.set(bytes);
    Atomics.store(mb, MB.CTRL_LEN, bytes.length);
  }
}
