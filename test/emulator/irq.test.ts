// The shared-memory interrupt controller: device side (IrqDeviceLines) and
// driver side (IrqController) on the same state.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { IRQ_HANDLED, type IrqHandler } from '../../core/bus.js';
import { IrqController, IrqDeviceLines, createIrqState } from '../../emulator/irq/controller.js';

function setup(lines = 4): { dev: IrqDeviceLines; chip: IrqController; calls: number[]; handler: IrqHandler } {
  const sab = createIrqState(lines);
  const calls: number[] = [];
  const handler: IrqHandler = (line) => {
    calls.push(line);
    return IRQ_HANDLED;
  };
  return { dev: new IrqDeviceLines(sab), chip: new IrqController(sab), calls, handler };
}

describe('irq controller', () => {
  it('delivers a raised line to its handler and counts it', () => {
    const { dev, chip, calls, handler } = setup();
    chip.request(2, handler);
    expect(chip.isPending(2)).toBe(false);
    expect(chip.deliverPending()).toBe(0);
    dev.raise(2);
    expect(chip.isPending(2)).toBe(true);
    expect(chip.level(2)).toBe(true);
    expect(chip.deliverPending()).toBe(1);
    expect(calls).toEqual([2]);
    expect(chip.deliveredCount(2)).toBe(1);
    expect(chip.deliveredCount(1)).toBe(0);
  });

  it('is level-triggered: a line still high is delivered again, a lowered one is not', () => {
    const { dev, chip, calls, handler } = setup();
    chip.request(0, handler);
    dev.raise(0);
    expect(chip.deliverPending()).toBe(1);
    expect(chip.deliverPending()).toBe(1);
    dev.lower(0);
    expect(chip.isPending(0)).toBe(false);
    expect(chip.deliverPending()).toBe(0);
    expect(calls).toEqual([0, 0]);
  });

  it('latches a raise that was lowered before delivery and delivers it once', () => {
    const { dev, chip, calls, handler } = setup();
    chip.request(1, handler);
    dev.raise(1);
    dev.lower(1);
    expect(chip.level(1)).toBe(false);
    expect(chip.isPending(1)).toBe(true);
    expect(chip.deliverPending()).toBe(1);
    expect(chip.deliverPending()).toBe(0);
    expect(calls).toEqual([1]);
    expect(chip.raiseCount(1)).toBe(1);
  });

  it('keeps a masked line latched and delivers it on the first delivery after unmask', () => {
    const { dev, chip, calls, handler } = setup();
    chip.request(3, handler);
    chip.mask(3);
    expect(chip.isMasked(3)).toBe(true);
    dev.raise(3);
    dev.lower(3);
    expect(chip.deliverPending()).toBe(0);
    expect(chip.isPending(3)).toBe(true);
    expect(calls).toEqual([]);
    chip.unmask(3);
    expect(chip.isMasked(3)).toBe(false);
    expect(chip.deliverPending()).toBe(1);
    expect(calls).toEqual([3]);
    expect(chip.deliverPending()).toBe(0);
  });

  it('masking one line does not hold back another', () => {
    const { dev, chip, calls, handler } = setup();
    chip.request(0, handler);
    chip.request(1, handler);
    chip.mask(0);
    dev.raise(0);
    dev.raise(1);
    expect(chip.deliverPending()).toBe(1);
    expect(calls).toEqual([1]);
  });

  it('calls every handler of a shared line; free removes one', () => {
    const { dev, chip } = setup();
    const seen: string[] = [];
    const a: IrqHandler = () => (seen.push('a'), IRQ_HANDLED);
    const b: IrqHandler = () => (seen.push('b'), IRQ_HANDLED);
    chip.request(0, a);
    chip.request(0, b);
    dev.raise(0);
    dev.lower(0);
    chip.deliverPending();
    expect(seen).toEqual(['a', 'b']);
    chip.free(0, a);
    dev.raise(0);
    chip.deliverPending();
    expect(seen).toEqual(['a', 'b', 'b']);
    expect(() => chip.free(0, a)).toThrow(/not registered/);
  });

  it('does not deliver a line nobody requested, and keeps its latch', () => {
    const { dev, chip, handler, calls } = setup();
    dev.raise(2);
    dev.lower(2);
    expect(chip.deliverPending()).toBe(0);
    chip.request(2, handler);
    expect(chip.deliverPending()).toBe(1);
    expect(calls).toEqual([2]);
  });

  it('a raise from inside a handler is delivered on the next call, not lost', () => {
    const { dev, chip } = setup();
    let n = 0;
    chip.request(0, () => {
      n++;
      dev.lower(0);
      if (n === 1) dev.raise(0);
      return IRQ_HANDLED;
    });
    dev.raise(0);
    expect(chip.deliverPending()).toBe(1);
    expect(chip.deliverPending()).toBe(1);
    expect(chip.deliverPending()).toBe(0);
    expect(n).toBe(2);
  });

  it('rejects out-of-range lines', () => {
    const { dev, chip, handler } = setup(2);
    expect(() => dev.raise(2)).toThrow(RangeError);
    expect(() => chip.request(-1, handler)).toThrow(RangeError);
    expect(() => chip.mask(5)).toThrow(RangeError);
  });

  it('waitAndDeliver returns 0 on timeout, also when the pending line is masked', () => {
    const { dev, chip, handler, calls } = setup();
    chip.request(0, handler);
    expect(chip.waitAndDeliver(10)).toBe(0);
    chip.mask(0);
    dev.raise(0);
    expect(chip.waitAndDeliver(10)).toBe(0);
    expect(calls).toEqual([]);
    chip.unmask(0);
    expect(chip.waitAndDeliver(10)).toBe(1);
  });

  it('waitAndDeliver wakes when another thread raises the line', async () => {
    const sab = createIrqState(4);
    const chip = new IrqController(sab);
    const calls: number[] = [];
    chip.request(1, (l) => (calls.push(l), IRQ_HANDLED));
    const url = new URL('../../emulator/irq/controller.js', import.meta.url).href;
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(${JSON.stringify(url)}).then(({ IrqDeviceLines }) => {
         parentPort.postMessage('up');
         setTimeout(() => new IrqDeviceLines(workerData).raise(1), 50);
       });`,
      { eval: true, workerData: sab },
    );
    try {
      await new Promise((r) => w.once('message', r));
      // Generous: only a hang would exceed it.
      expect(chip.waitAndDeliver(10_000)).toBe(1);
      expect(calls).toEqual([1]);
    } finally {
      await w.terminate();
    }
  });

  it('auto delivery delivers from the event loop until stopped', async () => {
    const { dev, chip } = setup();
    let resolve: () => void = () => {};
    let hits = 0;
    chip.request(0, () => {
      hits++;
      dev.lower(0);
      resolve();
      return IRQ_HANDLED;
    });
    chip.startAutoDelivery();
    try {
      const first = new Promise<void>((r) => (resolve = r));
      setTimeout(() => dev.raise(0), 5);
      await first;
      expect(hits).toBe(1);
      const second = new Promise<void>((r) => (resolve = r));
      dev.raise(0);
      await second;
      expect(hits).toBe(2);
    } finally {
      chip.stopAutoDelivery();
    }
    expect(chip.autoDelivery).toBe(false);
    dev.raise(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(hits).toBe(2);
    expect(chip.isPending(0)).toBe(true);
  });
});
