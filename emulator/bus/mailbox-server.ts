// The worker end of the trap mailbox: the serving loop, the control plane
// and the death notice.
import type { AccessWidth } from '../../core/bus.js';
import type { Board, ControlRequest, ControlResponse } from '../board-contract.js';
import {
  DEFERRED_BUDGET,
  MB,
  OP_MASK,
  OP_READ,
  OP_WRITE,
  WIDTH_MASK,
  WIDTH_SHIFT,
  controlCodec,
  maskToWidth,
  type MailboxBuffers,
} from './mailbox.js';
import { WORKER_SPIN_MS, spinWhile } from './spin.js';

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
      if (spinWhile(mb, MB.REQ, last, WORKER_SPIN_MS) !== last) continue;
      Atomics.store(mb, MB.WORKER_SLEEPING, 1);
      // Blocks until a request, a close, or the next device timer.
      const t = board.nextTimerMs();
      this.stats.sleeps++;
      Atomics.wait(mb, MB.REQ, last, Math.max(t , 0));
      Atomics.store(mb, MB.WORKER_SLEEPING, 0);
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
