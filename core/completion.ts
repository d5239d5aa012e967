// struct completion and the waits drivers use on it, modelled on one thread:
// a waiter "sleeps" by blocking in the interrupt controller until a line is
// delivered, which runs the handlers (vm_interrupt → vring_interrupt → the
// driver's callback → complete()). The wait is always bounded.
import type { IrqChip } from './bus.js';
import { kernel, type LogTarget } from './kernel.js';

/** How long one blocking step waits before re-checking (ms). */
const WAIT_SLICE_MS = 50;

/** struct completion */
export class Completion {
  /** x->done: completions not yet consumed by a waiter. */
  done = 0;

  /** complete(): wake one waiter. */
  complete(): void {
    if (this.done !== Infinity) this.done++;
  }

  /** complete_all(): every current and future waiter passes until reinit. */
  completeAll(): void {
    this.done = Infinity;
  }

  /** reinit_completion() */
  reinit(): void {
    this.done = 0;
  }

  /** completion_done(): would a wait pass without blocking? */
  isDone(): boolean {
    return this.done > 0;
  }

  /** try_wait_for_completion(): consume a completion without blocking. */
  tryWait(): boolean {
    if (this.done === 0) return false;
    if (this.done !== Infinity) this.done--;
    return true;
  }
}

/** init_completion() */
export function initCompletion(): Completion {
  return new Completion();
}

export interface WaitOptions {
  /** Whose log the might_sleep() check of a noirq phase goes to. */
  target?: LogTarget | null;
  /** Caller name for that check. */
  where?: string;
}

/**
 * wait_for_completion_timeout(x, timeout): deliver interrupts until x is
 * completed or timeoutMs passes. Returns the time left in ms (at least 1)
 * on completion, 0 on timeout, as Linux returns jiffies.
 */
export function waitForCompletionTimeout(x: Completion, irq: IrqChip, timeoutMs: number, opts: WaitOptions = {}): number {
  kernel.checkSleepable(opts.target ?? null, 'wait_for_completion', opts.where ?? 'wait_for_completion_timeout');
  const deadline = performance.now() + Math.max(0, timeoutMs);
  for (;;) {
    // Interrupts that are already pending run first, as they would on unlock.
    if (!x.isDone()) irq.deliverPending();
    if (x.tryWait()) return Math.max(1, Math.ceil(deadline - performance.now()));
    const left = deadline - performance.now();
    if (left <= 0) return 0;
    irq.waitAndDeliver(Math.min(WAIT_SLICE_MS, left));
  }
}

const deviceIrq = new WeakMap<object, IrqChip>();

/** The transport records the interrupt controller a device's interrupts arrive on. */
export function setDeviceIrqChip(dev: object, irq: IrqChip): void {
  deviceIrq.set(dev, irq);
}

/** The interrupt controller a driver waits on for its device. */
export function irqChipForDevice(dev: LogTarget): IrqChip {
  const irq = deviceIrq.get(dev);
  if (!irq) throw new Error(`${dev.name}: transport registered no interrupt controller`);
  return irq;
}
