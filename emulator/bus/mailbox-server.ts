// The worker end of the trap mailbox: the serving loop, the control plane
// and the death notice.
import type { AccessWidth } from '../../core/bus.js';
import type { Board, ControlRequest, ControlResponse } from '../board-contract.js';
import {
  CONTROL_MESSAGE_MAX,
  CTRL_FRAME_LAST,
  CTRL_FRAME_MORE,
  CTRL_FRAME_NEXT,
  DEFERRED_BUDGET,
  MB,
  MB_TIME,
  OP_MASK,
  OP_READ,
  OP_WRITE,
  WIDTH_MASK,
  WIDTH_SHIFT,
  controlCodec,
  joinFrames,
  maskToWidth,
  type MailboxBuffers,
} from './mailbox.js';
import { IdleSpin, WakeEstimate, sharedClock } from './spin.js';

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
  /** Sleeps that ended with a new request (the driver's notify), not a device timer. */
  wakeups: number;
  /** Times the worker notified a driver that said it was asleep. */
  notifies: number;
  /** runDeferred() steps. */
  deferredSteps: number;
  /** Idle spins (waiting for the next request before sleeping). */
  idleSpins: number;
  /** Idle spins on the short budget: the answer before had to wake the driver. */
  shortIdleSpins: number;
  /** Idle spins lost (SpinBet), and idle spins skipped (slept at once) because of it. */
  idleLosses: number;
  idleSkips: number;
  /** Idle spins cut short: the worker found it had been descheduled mid-spin. */
  preemptions: number;
  /** This side's wake-up latency estimate, ms (published in MB.WORKER_WAKE_NS; sizes the idle spin). */
  wakeMs: number;
  /** Wake-ups measured for it. */
  wakeSamples: number;
  /** Typical gap before the driver's next request, ms, when longer than a few hundred loads (sizes the idle spin). */
  gapMs: number;
}

/** Handles one control request; may throw (the worker then dies). */
export type ControlHandler = (req: ControlRequest, server: MailboxServer) => ControlResponse;

/**
 * The worker end: a synchronous serving loop. serve() returns only when the
 * driver closes the mailbox; an exception from the board propagates (the
 * caller reports it with die()).
 */
export class MailboxServer {
  private readonly counters = { reads: 0, writes: 0, controls: 0, sleeps: 0, wakeups: 0, notifies: 0, deferredSteps: 0 };
  private readonly mb: Int32Array;
  private readonly times: Float64Array;
  private readonly selfWake = new WakeEstimate();
  private readonly idle: IdleSpin;
  /** The last answer had to wake the driver. */
  private wokeDriver = false;
  private readonly ctrl: Uint8Array;
  private readonly codec = controlCodec();
  /** Run once right after the current response is published (control 'hang'). */
  afterReply: (() => void) | null = null;
  /** The frames of a control request received so far, and their bytes. */
  private requestParts: Uint8Array[] = [];
  private requestBytes = 0;
  private requestOverflow = false;
  /** A control response being sent in frames, and how far. */
  private response: Uint8Array | null = null;
  private responseAt = 0;

  constructor(
    buffers: MailboxBuffers,
    private readonly board: Board,
    private readonly onControl: ControlHandler,
  ) {
    this.mb = new Int32Array(buffers.mailbox);
    this.times = new Float64Array(buffers.mailbox);
    this.ctrl = new Uint8Array(buffers.control);
    const mb = this.mb;
    this.idle = new IdleSpin(mb, MB.WORKER_BEAT, this.selfWake, () => Atomics.load(mb, MB.DRIVER_WAKE_NS) / 1e6);
  }

  get stats(): MailboxStats {
    const idle = this.idle;
    return {
      ...this.counters,
      idleSpins: idle.spins,
      shortIdleSpins: idle.short,
      idleLosses: idle.bet.losses + idle.shortBet.losses,
      idleSkips: idle.bet.skips + idle.shortBet.skips,
      preemptions: idle.preemptions,
      wakeMs: this.selfWake.ms,
      wakeSamples: this.selfWake.samples,
      gapMs: idle.gaps.ms,
    };
  }

  serve(): void {
    const mb = this.mb;
    const board = this.board;
    let last = Atomics.load(mb, MB.REQ);
    // Device work beats the heartbeat and gives way to a waiting access.
    board.setYieldHook?.(() => {
      this.idle.pulse();
      return Atomics.load(mb, MB.REQ) !== last;
    });
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
        this.counters.deferredSteps++;
        this.idle.pulse();
        continue;
      }
      if (this.idle.spin(MB.REQ, last, this.wokeDriver) !== last) continue;
      const slept = sharedClock();
      this.times[MB_TIME.WORKER_SLEPT_AT] = slept;
      Atomics.store(mb, MB.WORKER_SLEEPING, 1);
      // Blocks until a request, a close, or the next device timer.
      const t = board.nextTimerMs();
      this.counters.sleeps++;
      const r = Atomics.wait(mb, MB.REQ, last, Math.max(t, 0));
      Atomics.store(mb, MB.WORKER_SLEEPING, 0);
      this.idle.pulse();
      if (r === 'ok') this.learnWake(slept);
      if (Atomics.load(mb, MB.REQ) !== last) this.idle.woke();
    }
  }

  /**
   * Woken by the driver's notify: how long this thread took to run again
   * (the driver stamped the notify), published for the driver's wake spin.
   */
  private learnWake(slept: number): void {
    const at = this.times[MB_TIME.WORKER_NOTIFIED_AT]!;
    if (at < slept) return;
    this.counters.wakeups++;
    this.selfWake.learn(sharedClock() - at);
    Atomics.store(this.mb, MB.WORKER_WAKE_NS, this.selfWake.ns);
  }

  private handle(req: number): void {
    const mb = this.mb;
    const op = req & OP_MASK;
    const width = ((req >>> WIDTH_SHIFT) & WIDTH_MASK) as AccessWidth;
    if (op === OP_READ) {
      this.counters.reads++;
      mb[MB.DATA] = this.board.read(mb[MB.ADDR]! >>> 0, width);
    } else if (op === OP_WRITE) {
      this.counters.writes++;
      this.board.write(mb[MB.ADDR]! >>> 0, width, maskToWidth(width, mb[MB.DATA]!));
    } else {
      this.counters.controls++;
      this.handleControl();
    }
    Atomics.store(mb, MB.RESP, req);
    this.wokeDriver = Atomics.load(mb, MB.DRIVER_SLEEPING) !== 0;
    if (this.wokeDriver) {
      this.times[MB_TIME.DRIVER_NOTIFIED_AT] = sharedClock();
      Atomics.notify(mb, MB.RESP, 1);
      this.counters.notifies++;
    }
    const after = this.afterReply;
    if (after) {
      this.afterReply = null;
      after();
    }
  }

  /**
   * One control frame (see CTRL_FRAME_*): a request frame is collected (the
   * whole request bounded by CONTROL_MESSAGE_MAX; past it the rest is
   * dropped and the answer is an error), the last one is decoded and
   * handled, and the response goes back in frames the driver fetches.
   */
  private handleControl(): void {
    const mb = this.mb;
    const len = Atomics.load(mb, MB.CTRL_LEN);
    const frame = Atomics.load(mb, MB.CTRL_FRAME);
    if (frame === CTRL_FRAME_NEXT) return this.sendFrame();
    this.response = null;
    if (frame === CTRL_FRAME_MORE) {
      if (this.requestBytes + len > CONTROL_MESSAGE_MAX) this.requestOverflow = true;
      else this.requestParts.push(this.ctrl.slice(0, len));
      this.requestBytes += len;
      Atomics.store(mb, MB.CTRL_LEN, 0);
      Atomics.store(mb, MB.CTRL_FRAME, CTRL_FRAME_LAST);
      return;
    }
    const parts = [...this.requestParts, this.ctrl.slice(0, len)];
    const total = this.requestBytes + len;
    const overflow = this.requestOverflow || total > CONTROL_MESSAGE_MAX;
    this.requestParts = [];
    this.requestBytes = 0;
    this.requestOverflow = false;
    let req: ControlRequest | null = null;
    let res: ControlResponse = { ok: false, error: `control request of ${total} bytes exceeds the ${CONTROL_MESSAGE_MAX}-byte limit` };
    if (!overflow) {
      try {
        req = this.codec.unpack(joinFrames(parts)) as ControlRequest;
      } catch (err) {
        res = { ok: false, error: `undecodable control request: ${String(err).slice(0, 200)}` };
      }
    }
    // Outside the try: a throwing handler is a worker crash, by design.
    if (req) res = this.onControl(req, this);
    let bytes = this.codec.pack(res);
    if (bytes.length > CONTROL_MESSAGE_MAX) {
      bytes = this.codec.pack({ ok: false, error: `control response of ${bytes.length} bytes exceeds the ${CONTROL_MESSAGE_MAX}-byte limit` });
    }
    // Sent over several requests: a copy, not the codec's reusable buffer.
    this.response = bytes.length > this.ctrl.length ? new Uint8Array(bytes) : bytes;
    this.responseAt = 0;
    this.sendFrame();
  }

  /** The next frame of the response being sent. */
  private sendFrame(): void {
    const mb = this.mb;
    const res = this.response ?? this.codec.pack({ ok: false, error: 'no control response left to send' });
    const n = Math.min(this.ctrl.length, res.length - this.responseAt);
    this.ctrl.set(res.subarray(this.responseAt, this.responseAt + n));
    this.responseAt += n;
    const more = this.responseAt < res.length;
    if (!more) this.response = null;
    Atomics.store(mb, MB.CTRL_LEN, n);
    Atomics.store(mb, MB.CTRL_FRAME, more ? CTRL_FRAME_MORE : CTRL_FRAME_LAST);
  }
}
