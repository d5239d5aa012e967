// struct completion and wait_for_completion_timeout (core/completion.ts):
// waits deliver interrupts until the completion is done, and are bounded.
import { beforeEach, describe, expect, it } from 'vitest';
import type { IrqChip, IrqHandler } from '../../core/bus.js';
import { Completion, waitForCompletionTimeout } from '../../core/completion.js';
import { kernel, type LogTarget } from '../../core/kernel.js';

/** An interrupt controller whose single line fires after `after` waits. */
function chip(after: number, onFire: () => void): IrqChip & { waits: number } {
  const handlers: IrqHandler[] = [];
  const c = {
    lines: 1,
    waits: 0,
    request: (_l: number, h: IrqHandler) => void handlers.push(h),
    free: () => undefined,
    mask: () => undefined,
    unmask: () => undefined,
    isMasked: () => false,
    isPending: () => false,
    deliverPending: () => 0,
    waitAndDeliver(ms: number): number {
      c.waits++;
      if (c.waits === after) {
        onFire();
        return 1;
      }
      const end = performance.now() + ms;
      while (performance.now() < end);
      return 0;
    },
    deliveredCount: () => 0,
  };
  return c;
}

const target: LogTarget = { name: 'virtio9', warnings: [], messages: [] };

beforeEach(() => {
  kernel.clear();
  kernel.noirqDepth = 0;
});

describe('completion', () => {
  it('returns the time left once an interrupt completes it', () => {
    const x = new Completion();
    const irq = chip(3, () => x.complete());
    const left = waitForCompletionTimeout(x, irq, 5000);
    expect(left).toBeGreaterThan(0);
    expect(irq.waits).toBe(3);
    // The wait consumed the completion.
    expect(x.isDone()).toBe(false);
  });

  it('does not block when already completed, and counts completions', () => {
    const x = new Completion();
    x.complete();
    x.complete();
    const irq = chip(Infinity, () => undefined);
    expect(waitForCompletionTimeout(x, irq, 1000)).toBeGreaterThan(0);
    expect(waitForCompletionTimeout(x, irq, 1000)).toBeGreaterThan(0);
    expect(irq.waits).toBe(0);
    expect(x.tryWait()).toBe(false);
  });

  it('times out with 0 after about the timeout', () => {
    const x = new Completion();
    const t0 = performance.now();
    expect(waitForCompletionTimeout(x, chip(Infinity, () => undefined), 60)).toBe(0);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(55);
    expect(took).toBeLessThan(2000);
  });

  it('complete_all lets every waiter through until reinit', () => {
    const x = new Completion();
    x.completeAll();
    for (let i = 0; i < 3; i++) expect(x.tryWait()).toBe(true);
    x.reinit();
    expect(x.tryWait()).toBe(false);
  });

  it('is a sleeping wait: flagged in a noirq phase', () => {
    const x = new Completion();
    x.complete();
    kernel.noirqDepth = 1;
    waitForCompletionTimeout(x, chip(Infinity, () => undefined), 10, { target, where: 'test_wait' });
    kernel.noirqDepth = 0;
    expect(kernel.warnings).toEqual([{ kind: 'noirq-context', dev: 'virtio9', what: 'wait_for_completion', where: 'test_wait' }]);
  });
});
