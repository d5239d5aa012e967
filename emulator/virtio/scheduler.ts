// Deferred device work and device timers, run by Board.runDeferred().
// A register write never processes a queue itself: QueueNotify only queues
// work, so a trapped write returns quickly and the worker decides when to
// spend time on rings. Items are closures; the device core wraps them with
// its reset epoch so work queued before a reset does nothing.

export type Clock = () => number;

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

export class Scheduler {
  /** See Board.setYieldHook: true when device work should stop at the next chain boundary. */
  yieldHook: (() => boolean) | null = null;
  private work: (() => void)[] = [];
  private workHead = 0;
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(private readonly now: Clock) {}

  /** Device work should stop at this chain boundary (a register access waits). */
  shouldYield(): boolean {
    return this.yieldHook?.() === true;
  }

  defer(fn: () => void): void {
    this.work.push(fn);
  }

  pendingWork(): number {
    return this.work.length - this.workHead;
  }

  /**
   * Run at most `budget` items, and never items queued by this call (a queue
   * that hit its weight re-queues itself), so one call is always bounded.
   * Returns the number run.
   */
  runWork(budget: number): number {
    const end = this.work.length;
    let ran = 0;
    while (this.workHead < end && ran < budget) {
      const fn = this.work[this.workHead]!;
      this.workHead++;
      ran++;
      fn();
    }
    if (this.workHead === this.work.length) {
      this.work = [];
      this.workHead = 0;
    } else if (this.workHead > 1024) {
      this.work = this.work.slice(this.workHead);
      this.workHead = 0;
    }
    return ran;
  }

  setTimer(ms: number, fn: () => void): number {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const id = this.nextId++;
    this.timers.push({ id, due: this.now() + delay, fn });
    return id;
  }

  clearTimer(id: number): void {
    const i = this.timers.findIndex((t) => t.id === id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** ms until the earliest timer (0 if one is due), or Infinity. */
  nextTimerMs(): number {
    if (this.timers.length === 0) return Number.POSITIVE_INFINITY;
    let due = Number.POSITIVE_INFINITY;
    for (const t of this.timers) due = Math.min(due, t.due);
    return Math.max(0, due - this.now());
  }

  /** Run up to `budget` due timers, earliest first; returns the number run. */
  runTimers(budget: number): number {
    let ran = 0;
    const now = this.now();
    while (ran < budget) {
      let best = -1;
      for (let i = 0; i < this.timers.length; i++) {
        const t = this.timers[i]!;
        if (t.due <= now && (best < 0 || t.due < this.timers[best]!.due)) best = i;
      }
      if (best < 0) break;
      const [t] = this.timers.splice(best, 1);
      ran++;
      t!.fn();
    }
    return ran;
  }
}
