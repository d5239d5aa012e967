// The driver end of the trap mailbox: the Bus the transports use when the
// board runs in the device worker.
import { BusError, type AccessWidth, type Bus, type GuestMemory, type IrqChip } from '../../core/bus.js';
import type { ControlRequest, ControlResponse } from '../board-contract.js';
import {
  CONTROL_MESSAGE_MAX,
  CONTROL_SLOW_TIMEOUT_MS,
  CTRL_FRAME_LAST,
  CTRL_FRAME_MORE,
  CTRL_FRAME_NEXT,
  DRIVER_WAIT_SLICE_MS,
  MB,
  MB_TIME,
  OP_CONTROL,
  OP_READ,
  OP_WRITE,
  SEQ_MASK,
  SEQ_SHIFT,
  TRAP_TIMEOUT_DEFAULT_MS,
  WIDTH_SHIFT,
  badAccess,
  controlCodec,
  decodeText,
  joinFrames,
  workerPartner,
  type MailboxBuffers,
} from './mailbox.js';
import { DRIVER_SPIN_MS, PartnerSpin, SPIN_CHECK_MASK, WakeEstimate, sharedClock, type Partner, type SpinStats } from './spin.js';

export interface MailboxDriverOptions {
  /** Overall deadline for one access, ms (default 2000). */
  trapTimeoutMs?: number;
}

/** Driver-side counters of the trap path (never reset). */
export interface MailboxDriverStats {
  /** Accesses and control requests published. */
  requests: number;
  /** Of them, posted writes (doorbells), which were not waited for. */
  posted: number;
  /** Answered within the first few hundred loads (the worker was spinning). */
  fast: number;
  /** The worker said it was asleep and was notified. */
  notifies: number;
  /** Requests that ended up blocked in Atomics.wait. */
  blocked: number;
  /** Atomics.wait calls (a blocked request waits in slices). */
  sleeps: number;
  /** Blocked waits ended by the worker's notify, each measured for the wake-up estimate. */
  wakeups: number;
  /** This side's wake-up latency estimate, ms (published for the worker's idle spin). */
  wakeMs: number;
  /** How the spins after the fast path ended (spin.ts). */
  spin: SpinStats;
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
  private readonly times: Float64Array;
  private readonly ctrl: Uint8Array;
  private readonly codec = controlCodec();
  /** The last REQ value published, and its sequence number. */
  private req: number;
  private seq = 0;
  private failure: BusError | null = null;
  /** The worker's heartbeat, sleeping flag and wake-up latency; the interrupt wait spins on the same evidence. */
  readonly partner: Partner;
  /** This thread's wake-up latency, published in MB.DRIVER_WAKE_NS. */
  private readonly selfWake = new WakeEstimate();
  private readonly spinner: PartnerSpin;
  private readonly counters = { requests: 0, posted: 0, fast: 0, notifies: 0, blocked: 0, sleeps: 0, wakeups: 0 };

  constructor(buffers: MailboxBuffers, mem: GuestMemory, irq: IrqChip, opts: MailboxDriverOptions = {}) {
    this.mb = new Int32Array(buffers.mailbox);
    this.times = new Float64Array(buffers.mailbox);
    this.ctrl = new Uint8Array(buffers.control);
    this.mem = mem;
    this.irq = irq;
    this.trapTimeoutMs = opts.trapTimeoutMs ?? TRAP_TIMEOUT_DEFAULT_MS;
    this.req = Atomics.load(this.mb, MB.REQ);
    this.partner = workerPartner(buffers.mailbox);
    this.spinner = new PartnerSpin(this.partner);
  }

  /** Driver-side counters of the trap path. */
  get stats(): MailboxDriverStats {
    return { ...this.counters, wakeMs: this.selfWake.ms, spin: { ...this.spinner.stats } };
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

  /**
   * A posted write (Bus.writePosted): published, the worker woken if it
   * sleeps, and no wait for its answer; the next access waits for it in
   * begin(), with the same deadline.
   */
  writePosted(addr: number, width: AccessWidth, value: number): void {
    const mb = this.mb;
    this.begin(addr, width);
    if (Atomics.load(mb, MB.WORKER_DEAD) !== 0) throw this.dead();
    mb[MB.ADDR] = addr;
    mb[MB.DATA] = value;
    this.publish((width << WIDTH_SHIFT) | OP_WRITE);
    this.counters.posted++;
  }

  /**
   * A control-plane request to the worker (msgpackr through the control
   * area, in frames when the request or its response is larger than it).
   */
  control(req: ControlRequest): ControlResponse {
    this.begin(0, 4);
    const mb = this.mb;
    const bytes = this.codec.pack(req);
    if (bytes.length > CONTROL_MESSAGE_MAX) throw new RangeError(`control request of ${bytes.length} bytes exceeds the ${CONTROL_MESSAGE_MAX}-byte limit`);
    const slow = req.op === 'snapshot' || req.op === 'restore' ? Math.max(this.trapTimeoutMs, CONTROL_SLOW_TIMEOUT_MS) : undefined;
    const area = this.ctrl.length;
    for (let at = 0; ; ) {
      const n = Math.min(area, bytes.length - at);
      this.ctrl.set(bytes.subarray(at, at + n));
      at += n;
      Atomics.store(mb, MB.CTRL_LEN, n);
      Atomics.store(mb, MB.CTRL_FRAME, at < bytes.length ? CTRL_FRAME_MORE : CTRL_FRAME_LAST);
      this.publishAndAwait(OP_CONTROL, slow);
      if (at >= bytes.length) break;
    }
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const len = Atomics.load(mb, MB.CTRL_LEN);
      total += len;
      if (total > CONTROL_MESSAGE_MAX) throw new RangeError(`control response exceeds the ${CONTROL_MESSAGE_MAX}-byte limit`);
      parts.push(this.ctrl.slice(0, len));
      if (Atomics.load(mb, MB.CTRL_FRAME) !== CTRL_FRAME_MORE) break;
      Atomics.store(mb, MB.CTRL_LEN, 0);
      Atomics.store(mb, MB.CTRL_FRAME, CTRL_FRAME_NEXT);
      this.publishAndAwait(OP_CONTROL, slow);
    }
    return this.codec.unpack(joinFrames(parts)) as ControlResponse;
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

  /** Publish a request; true if the worker slept and was notified. */
  private publish(cmd: number): boolean {
    const mb = this.mb;
    const stats = this.counters;
    this.seq = (this.seq + 1) & SEQ_MASK;
    const req = (this.seq << SEQ_SHIFT) | cmd;
    this.req = req;
    stats.requests++;
    // Sequentially consistent: the plain ADDR/DATA stores above are visible
    // to a worker that observes this REQ; and either the worker sees this
    // REQ before it sleeps, or this load sees its sleeping flag.
    Atomics.store(mb, MB.REQ, req);
    if (Atomics.load(mb, MB.WORKER_SLEEPING) === 0) return false;
    this.times[MB_TIME.WORKER_NOTIFIED_AT] = sharedClock();
    Atomics.notify(mb, MB.REQ, 1);
    stats.notifies++;
    return true;
  }

  private publishAndAwait(cmd: number, limitMs?: number): void {
    const mb = this.mb;
    this.publish(cmd);
    const req = this.req;
    const stats = this.counters;
    // Fast path: the worker is spinning and answers in well under a microsecond.
    for (let i = 0; i <= SPIN_CHECK_MASK; i++) {
      if (Atomics.load(mb, MB.RESP) === req) {
        stats.fast++;
        return;
      }
    }
    this.await(req, false, limitMs);
  }

  /**
   * Until RESP == req, the worker dies, or the deadline passes: spin while
   * the worker shows progress (spin.ts), then block in slices.
   */
  private await(req: number, stale: boolean, limitMs?: number): void {
    const mb = this.mb;
    const start = performance.now();
    const cap = Math.min(DRIVER_SPIN_MS, this.trapTimeoutMs);
    for (let cur = Atomics.load(mb, MB.RESP); cur !== req; cur = Atomics.load(mb, MB.RESP)) {
      if (!this.spinner.spin(mb, MB.RESP, cur, cap)) break;
    }
    if (Atomics.load(mb, MB.RESP) === req) return;
    // A deadline that is not a positive finite number (NaN, Infinity, set by
    // hand) would remove it: the default applies instead.
    const limit = limitMs ?? (this.trapTimeoutMs > 0 && Number.isFinite(this.trapTimeoutMs) ? this.trapTimeoutMs : TRAP_TIMEOUT_DEFAULT_MS);
    const deadline = start + limit;
    const stats = this.counters;
    stats.blocked++;
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
      stats.sleeps++;
      const slept = sharedClock();
      const r = Atomics.wait(mb, MB.RESP, cur, Math.min(left, DRIVER_WAIT_SLICE_MS));
      Atomics.store(mb, MB.DRIVER_SLEEPING, 0);
      if (r === 'ok') this.learnWake(slept);
    }
    throw new BusError(
      'EMU_TRAP_TIMEOUT',
      stale
        ? `device worker still busy with an earlier access after ${limit} ms`
        : `device worker did not answer within ${limit} ms`,
    );
  }

  /**
   * Woken by the worker's notify: how long this thread took to run again
   * (the worker stamped the notify), published for the worker's idle spin.
   */
  private learnWake(slept: number): void {
    const at = this.times[MB_TIME.DRIVER_NOTIFIED_AT]!;
    if (at < slept) return;
    this.counters.wakeups++;
    this.selfWake.learn(sharedClock() - at);
    Atomics.store(this.mb, MB.DRIVER_WAKE_NS, this.selfWake.ns);
  }

  private dead(): BusError {
    if (this.failure) return this.failure;
    const mb = this.mb;
    const note = decodeText(this.ctrl, Atomics.load(mb, MB.CTRL_LEN));
    this.failure = new BusError('EMU_WORKER_DEAD', `device worker died: ${note || 'no reason given'}`);
    return this.failure;
  }
}

