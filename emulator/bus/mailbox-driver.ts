// The driver end of the trap mailbox: the Bus the transports use when the
// board runs in the device worker.
import { BusError, type AccessWidth, type Bus, type GuestMemory, type IrqChip } from '../../core/bus.js';
import type { ControlRequest, ControlResponse } from '../board-contract.js';
import {
  DRIVER_WAIT_SLICE_MS,
  MB,
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
  type MailboxBuffers,
} from './mailbox.js';
import { DRIVER_SPIN_MS, SPIN_CHECK_MASK } from './spin.js';

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
    const spinEnd = start + DRIVER_SPIN_MS;
    for (;;) {
      for (let i = 0; i <= SPIN_CHECK_MASK; i++) {
        if (Atomics.load(mb, MB.RESP) === req) return;
      }
      if (Atomics.load(mb, MB.WORKER_DEAD) !== 0) throw this.dead();
      if (performance.now() >= spinEnd) break;
    }
    // A deadline that is not a positive finite number (NaN, Infinity, set by
    // hand) would remove it: the default applies instead.
    const limit = this.trapTimeoutMs > 0 && Number.isFinite(this.trapTimeoutMs) ? this.trapTimeoutMs : TRAP_TIMEOUT_DEFAULT_MS;
    const deadline = start + limit;
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
        ? `device worker still busy with an earlier access after ${limit} ms`
        : `device worker did not answer within ${limit} ms`,
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

