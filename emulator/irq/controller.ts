// The interrupt controller, in a SharedArrayBuffer so the device worker can
// raise lines while the main thread delivers them. Lines are level-triggered
// with a pending latch (like a GIC SPI): raising sets level and latch;
// lowering clears only the level, so an interrupt that fired while the line
// was masked is still delivered on unmask.
import type { IrqChip, IrqHandler } from '../../core/bus.js';
import type { IrqLines } from '../board-contract.js';
import { waitAsync } from '../bus/atomics.js';
import { DRIVER_SPIN_MS, PartnerSpin, spinWhile, type Partner, type SpinStats } from '../bus/spin.js';

// Header words.
/** Bumped by the device side on every raise; the main thread waits on it. */
const SEQ = 0;
/** Number of main-thread waiters on SEQ (sync wait or auto delivery). */
const WAITERS = 1;
const LINES = 2;
const HEADER_WORDS = 4;

// Per-line words.
const LEVEL = 0;
const MASK = 1;
const PENDING = 2;
const DELIVERED = 3;
/** Raises seen on this line (lets an observer see a raise+lower pulse). */
const RAISES = 4;
const LINE_WORDS = 8;

function lineBase(line: number): number {
  return HEADER_WORDS + line * LINE_WORDS;
}

/** Allocate the shared state for `lines` lines (all low, unmasked, not pending). */
export function createIrqState(lines: number): SharedArrayBuffer {
  if (!Number.isInteger(lines) || lines < 1) throw new RangeError(`bad irq line count ${lines}`);
  const sab = new SharedArrayBuffer((HEADER_WORDS + lines * LINE_WORDS) * 4);
  new Int32Array(sab)[LINES] = lines;
  return sab;
}

function checkedLines(i32: Int32Array): number {
  const n = Atomics.load(i32, LINES);
  if (n < 1 || i32.length < HEADER_WORDS + n * LINE_WORDS) throw new RangeError('irq state buffer too small');
  return n;
}

/** Device side: what device models see as IrqLines. Safe in any thread. */
export class IrqDeviceLines implements IrqLines {
  private readonly i32: Int32Array;
  readonly lines: number;

  constructor(sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.lines = checkedLines(this.i32);
  }

  raise(line: number): void {
    const i32 = this.i32;
    const b = lineBase(this.check(line));
    Atomics.store(i32, b + LEVEL, 1);
    Atomics.store(i32, b + PENDING, 1);
    Atomics.add(i32, b + RAISES, 1);
    Atomics.add(i32, SEQ, 1);
    // Atomics.notify costs ~40 ns; only pay it when someone is waiting.
    if (Atomics.load(i32, WAITERS) !== 0) Atomics.notify(i32, SEQ);
  }

  lower(line: number): void {
    Atomics.store(this.i32, lineBase(this.check(line)) + LEVEL, 0);
  }

  private check(line: number): number {
    if (line >>> 0 !== line || line >= this.lines) throw new RangeError(`irq line ${line} out of range`);
    return line;
  }
}

/** The driver side (main thread): the IrqChip of core/bus.ts. */
export class IrqController implements IrqChip {
  readonly lines: number;
  private readonly i32: Int32Array;
  private readonly handlers: IrqHandler[][] = [];
  /**
   * Called before blocking in waitAndDeliver; returns the longest the caller
   * may block (ms) before calling it again. The in-thread bus uses it to run
   * device timers, which have no thread of their own there.
   */
  pump: (() => number) | null = null;
  /** The spin before blocking in waitAndDeliver, adapted to the device thread once attachPartner() told it which. */
  private spinner: PartnerSpin | null = null;
  private auto: { stopped: boolean; keepAlive: NodeJS.Timeout } | null = null;

  constructor(sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.lines = checkedLines(this.i32);
    for (let i = 0; i < this.lines; i++) this.handlers.push([]);
  }

  /**
   * The device thread's heartbeat (the trap mailbox's view of the worker):
   * from now on waitAndDeliver spins only while the worker runs, and not
   * at all while it sleeps unwoken (spin.ts).
   */
  attachPartner(partner: Partner): void {
    this.spinner = new PartnerSpin(partner);
  }

  /** How waitAndDeliver's spins ended, once a partner is attached. */
  get spinStats(): SpinStats | null {
    return this.spinner ? { ...this.spinner.stats } : null;
  }

  request(line: number, handler: IrqHandler): void {
    this.handlers[this.check(line)]!.push(handler);
  }

  free(line: number, handler: IrqHandler): void {
    const list = this.handlers[this.check(line)]!;
    const i = list.indexOf(handler);
    if (i < 0) throw new Error(`free_irq: handler not registered on line ${line}`);
    list.splice(i, 1);
  }

  mask(line: number): void {
    Atomics.store(this.i32, lineBase(this.check(line)) + MASK, 1);
  }

  unmask(line: number): void {
    Atomics.store(this.i32, lineBase(this.check(line)) + MASK, 0);
  }

  isMasked(line: number): boolean {
    return Atomics.load(this.i32, lineBase(this.check(line)) + MASK) !== 0;
  }

  isPending(line: number): boolean {
    const b = lineBase(this.check(line));
    return Atomics.load(this.i32, b + LEVEL) !== 0 || Atomics.load(this.i32, b + PENDING) !== 0;
  }

  /** Which lines are masked (disable_irq), for a system snapshot. */
  masks(): boolean[] {
    return Array.from({ length: this.lines }, (_, line) => this.isMasked(line));
  }

  /**
   * Back to a snapshot's masks, with every latch cleared: the devices
   * loaded next raise their lines again as their InterruptStatus says.
   */
  restoreMasks(masks: readonly boolean[]): void {
    for (let line = 0; line < this.lines; line++) {
      const b = lineBase(line);
      Atomics.store(this.i32, b + MASK, masks[line] ? 1 : 0);
      Atomics.store(this.i32, b + PENDING, 0);
    }
  }

  /** The line's current level (what a qtest client sees as IRQ raise/lower). */
  level(line: number): boolean {
    return Atomics.load(this.i32, lineBase(this.check(line)) + LEVEL) !== 0;
  }

  /** How many times the device raised the line since the machine started. */
  raiseCount(line: number): number {
    return Atomics.load(this.i32, lineBase(this.check(line)) + RAISES) >>> 0;
  }

  deliveredCount(line: number): number {
    return Atomics.load(this.i32, lineBase(this.check(line)) + DELIVERED) >>> 0;
  }

  /** The raise sequence word; changes whenever any line is raised. */
  sequence(): number {
    return Atomics.load(this.i32, SEQ);
  }

  deliverPending(): number {
    const i32 = this.i32;
    let delivered = 0;
    for (let line = 0; line < this.lines; line++) {
      const b = lineBase(line);
      if (Atomics.load(i32, b + MASK) !== 0) continue;
      if (Atomics.load(i32, b + PENDING) === 0 && Atomics.load(i32, b + LEVEL) === 0) continue;
      const list = this.handlers[line]!;
      // A line nobody requested stays disabled, as in Linux: it keeps its latch.
      if (list.length === 0) continue;
      // Clear the latch before the handlers run, so a raise during a handler
      // is delivered again rather than lost.
      Atomics.store(i32, b + PENDING, 0);
      Atomics.add(i32, b + DELIVERED, 1);
      delivered++;
      // Copy: a handler may free itself (shared handlers, IRQF_SHARED).
      for (const h of list.slice()) h(line);
    }
    return delivered;
  }

  waitAndDeliver(timeoutMs: number): number {
    const i32 = this.i32;
    const deadline = performance.now() + Math.max(0, timeoutMs);
    let spun = false;
    for (;;) {
      // Read the sequence before looking at the lines: a raise after the
      // look changes it and Atomics.wait returns at once.
      const seq = Atomics.load(i32, SEQ);
      let slice = deadline - performance.now();
      if (this.pump) slice = Math.min(slice, this.pump());
      const n = this.deliverPending();
      if (n > 0) return n;
      const left = deadline - performance.now();
      if (left <= 0) return 0;
      // A device in the worker usually answers within microseconds, and a
      // futex wake costs tens of them: spin briefly first, as the trap
      // mailbox does, and only while the worker runs. Not with a pump: then
      // device work runs only here.
      if (!spun && !this.pump) {
        spun = true;
        const cap = Math.min(DRIVER_SPIN_MS, left);
        if (this.spinner ? this.spinner.spin(i32, SEQ, seq, cap) : spinWhile(i32, SEQ, seq, cap) !== seq) continue;
      }
      slice = Math.max(0, Math.min(slice, left));
      Atomics.add(i32, WAITERS, 1);
      try {
        Atomics.wait(i32, SEQ, seq, slice);
      } finally {
        Atomics.sub(i32, WAITERS, 1);
      }
    }
  }

  /**
   * Resolve when the raise sequence moves past `seq` or after timeoutMs.
   * Does not keep the process alive by itself.
   */
  async waitForRaise(seq: number, timeoutMs: number): Promise<void> {
    const i32 = this.i32;
    Atomics.add(i32, WAITERS, 1);
    try {
      const r = waitAsync(i32, SEQ, seq, timeoutMs);
      if (r.async) await r.value;
    } finally {
      Atomics.sub(i32, WAITERS, 1);
    }
  }

  /**
   * Deliver interrupts from the event loop as they arrive. Holds the process
   * alive until stopAutoDelivery() (a pending Atomics.waitAsync does not).
   */
  startAutoDelivery(): void {
    if (this.auto) return;
    const state = { stopped: false, keepAlive: setInterval(() => {}, 1 << 30) };
    this.auto = state;
    const loop = async (): Promise<void> => {
      while (!state.stopped) {
        const seq = Atomics.load(this.i32, SEQ);
        this.deliverPending();
        if (state.stopped) break;
        await this.waitForRaise(seq, Infinity);
      }
    };
    loop().catch((err: unknown) => {
      // A throwing handler stops auto delivery; surface it like any uncaught error.
      this.stopAutoDelivery();
      queueMicrotask(() => {
        throw err;
      });
    });
  }

  stopAutoDelivery(): void {
    const state = this.auto;
    if (!state) return;
    this.auto = null;
    state.stopped = true;
    clearInterval(state.keepAlive);
    // Wake the pending waitAsync so its promise settles and the loop ends.
    Atomics.notify(this.i32, SEQ);
  }

  get autoDelivery(): boolean {
    return this.auto !== null;
  }

  private check(line: number): number {
    if (line >>> 0 !== line || line >= this.lines) throw new RangeError(`irq line ${line} out of range`);
    return line;
  }
}
