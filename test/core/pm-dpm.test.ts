// The PM core model (core/pm): list order, abort semantics of each phase as
// in drivers/base/power/main.c, interrupt masking for noirq phases, and the
// hibernation flow with its image.
import { beforeEach, describe, expect, it } from 'vitest';
import type { IrqChip } from '../../core/bus.js';
import { kernel } from '../../core/kernel.js';
import { DpmCore, formatRecord, type PmDevice } from '../../core/pm/dpm.js';
import { KernelImage } from '../../core/pm/image.js';
import { PM_CALLBACKS, PMSG_HIBERNATE, PMSG_ON, PMSG_RESTORE, pmLateEarlyOp, pmNoirqOp, pmOp, resumeEvent, type DevPmOps, type PmCallbackName } from '../../core/pm/pm.js';
import { hibernate, pmSuspend } from '../../core/pm/system.js';
import { EAGAIN, EBUSY, EINVAL, EIO } from '../../core/uapi/errno.js';

interface Dev {
  name: string;
  log: string[];
  noirqSeen: boolean[];
}

function allOps(): DevPmOps<Dev> {
  const ops: DevPmOps<Dev> = {};
  for (const cb of PM_CALLBACKS)
    ops[cb] = (d) => {
      d.log.push(cb);
      d.noirqSeen.push(kernel.inNoirq);
      return 0;
    };
  return ops;
}

/** An IrqChip stand-in that records masks (only what the PM core uses). */
function maskRecorder() {
  const masked = new Set<number>();
  let delivered = 0;
  const chip = {
    mask: (l: number) => void masked.add(l),
    unmask: (l: number) => void masked.delete(l),
    deliverPending: () => ++delivered,
  } as Partial<IrqChip> as IrqChip;
  return { chip, masked, delivered: () => delivered };
}

function setup(n = 3, irq?: IrqChip) {
  const dpm = new DpmCore<Dev>(irq ? { irq } : {});
  const devs: PmDevice<Dev>[] = [];
  for (let i = 0; i < n; i++) {
    const d: Dev = { name: `d${i}`, log: [], noirqSeen: [] };
    const pd: PmDevice<Dev> = { name: d.name, dev: d, ops: allOps(), irqLine: i, slot: i };
    dpm.devicePmAdd(pd);
    devs.push(pd);
  }
  return { dpm, devs };
}

function seq(dpm: DpmCore<Dev>, phase: PmCallbackName): string[] {
  return dpm.record.filter((r) => r.phase === phase).map((r) => r.device);
}

beforeEach(() => kernel.clear());

describe('suspend-to-RAM', () => {
  it('runs every phase, suspend in reverse list order and resume in list order', () => {
    const { dpm, devs } = setup();
    const t = pmSuspend(dpm);
    expect(t.result).toBe(0);
    expect(devs[0]!.dev.log).toEqual(['prepare', 'suspend', 'suspend_late', 'suspend_noirq', 'resume_noirq', 'resume_early', 'resume', 'complete']);
    expect(seq(dpm, 'suspend')).toEqual(['d2', 'd1', 'd0']);
    expect(seq(dpm, 'suspend_noirq')).toEqual(['d2', 'd1', 'd0']);
    expect(seq(dpm, 'resume_noirq')).toEqual(['d0', 'd1', 'd2']);
    expect(seq(dpm, 'resume')).toEqual(['d0', 'd1', 'd2']);
    expect(seq(dpm, 'complete')).toEqual(['d2', 'd1', 'd0']);
    // every resume_noirq ran before any resume_early
    const phases = t.records.map((r) => r.phase);
    expect(phases.lastIndexOf('resume_noirq')).toBeLessThan(phases.indexOf('resume_early'));
    // a second cycle works from the restored list
    expect(pmSuspend(dpm).result).toBe(0);
    expect(seq(dpm, 'suspend')).toEqual(['d2', 'd1', 'd0', 'd2', 'd1', 'd0']);
  });

  it('masks device lines exactly for the noirq phases and redelivers on unmask', () => {
    const m = maskRecorder();
    const { dpm, devs } = setup(2, m.chip);
    let maskedInSleep: number[] = [];
    pmSuspend(dpm, { enterSleep: () => (maskedInSleep = [...m.masked]) });
    expect(maskedInSleep.sort()).toEqual([0, 1]);
    expect(m.masked.size).toBe(0);
    expect(m.delivered()).toBe(1);
    const d = devs[0]!.dev;
    const inNoirq = Object.fromEntries(d.log.map((p, i) => [p, d.noirqSeen[i]]));
    expect(inNoirq).toMatchObject({ suspend: false, suspend_late: false, suspend_noirq: true, resume_noirq: true, resume_early: false });
    expect(kernel.inNoirq).toBe(false);
  });

  it('a failure in suspend_noirq resumes (noirq) exactly the devices that completed it; the failing one gets only earlier resumes', () => {
    const { dpm, devs } = setup();
    dpm.inject({ phase: 'suspend_noirq', device: 'd1', errno: EIO });
    let slept = false;
    const t = pmSuspend(dpm, { enterSleep: () => (slept = true) });
    expect(t.result).toBe(-EIO);
    expect(t.failedStep).toBe('suspend_noirq');
    expect(slept).toBe(false);
    expect(seq(dpm, 'suspend_noirq')).toEqual(['d2', 'd1']);
    expect(seq(dpm, 'resume_noirq')).toEqual(['d2']);
    expect(devs[0]!.dev.log).toEqual(['prepare', 'suspend', 'suspend_late', 'resume_early', 'resume', 'complete']);
    expect(devs[1]!.dev.log).toEqual(['prepare', 'suspend', 'suspend_late', 'resume_early', 'resume', 'complete']);
    expect(t.records.find((r) => r.injected)).toMatchObject({ phase: 'suspend_noirq', device: 'd1', result: -EIO });
    expect(kernel.inNoirq).toBe(false);
  });

  it('a failure in suspend: completed devices resume, the failing device only completes', () => {
    const { dpm, devs } = setup();
    dpm.inject({ phase: 'suspend', device: 1, errno: EBUSY });
    const t = pmSuspend(dpm);
    expect(t.result).toBe(-EBUSY);
    expect(t.failedStep).toBe('suspend');
    expect(devs[2]!.dev.log).toEqual(['prepare', 'suspend', 'resume', 'complete']);
    expect(devs[1]!.dev.log).toEqual(['prepare', 'complete']);
    expect(devs[0]!.dev.log).toEqual(['prepare', 'complete']);
    expect(pmSuspend(dpm).result).toBe(-EBUSY); // injection stays
  });

  it('a failure in suspend_late resumes early the devices that completed it', () => {
    const { dpm, devs } = setup();
    dpm.inject({ phase: 'suspend_late', device: 'd1', errno: EIO });
    pmSuspend(dpm);
    expect(seq(dpm, 'resume_early')).toEqual(['d2']);
    expect(devs[1]!.dev.log).toEqual(['prepare', 'suspend', 'resume', 'complete']);
  });

  it('a failure in prepare: prepared devices complete, nothing is suspended', () => {
    const { dpm } = setup();
    dpm.inject({ phase: 'prepare', device: 'd1', errno: EIO });
    pmSuspend(dpm);
    expect(seq(dpm, 'suspend')).toEqual([]);
    expect(seq(dpm, 'complete')).toEqual(['d0']);
    dpm.injections.length = 0;
    expect(pmSuspend(dpm).result).toBe(0);
    expect(seq(dpm, 'suspend')).toEqual(['d2', 'd1', 'd0']);
  });

  it('a callback that throws is recorded as -EIO with its message', () => {
    const { dpm, devs } = setup(1);
    devs[0]!.ops.suspend = () => {
      throw new Error('boom');
    };
    const t = pmSuspend(dpm);
    expect(t.result).toBe(-EIO);
    expect(t.records.find((r) => r.phase === 'suspend')).toMatchObject({ result: -EIO, error: 'boom' });
  });
});

describe('hibernation', () => {
  it('freeze → image → thaw → poweroff → boot kernel quiesce → restore, with the image restored', () => {
    const { dpm, devs } = setup(2);
    const state = { noirq: 'none' };
    devs[0]!.ops.freeze_noirq = (d) => (d.log.push('freeze_noirq'), (state.noirq = 'entered'), 0);
    devs[0]!.ops.thaw_noirq = (d) => (d.log.push('thaw_noirq'), (state.noirq = 'restored'), 0);
    devs[0]!.ops.restore_noirq = (d) => (d.log.push(`restore_noirq(${state.noirq})`), 0);
    const ram = new Uint8Array(new SharedArrayBuffer(16));
    ram[0] = 7;
    const boot = setup(2);
    const events: string[] = [];
    const t = hibernate(
      dpm,
      {
        powerOff: () => {
          events.push('powerOff');
          ram[0] = 0; // power loss
        },
        bootKernel: () => {
          events.push('boot');
          ram[1] = 9; // the boot kernel's own use of memory
          return boot.dpm;
        },
      },
      { imageRoots: [state], ram, mode: 'platform' },
    );
    expect(t.result).toBe(0);
    expect(events).toEqual(['powerOff', 'boot']);
    expect(devs[0]!.dev.log).toEqual([
      'prepare', 'freeze', 'freeze_late', 'freeze_noirq',
      'thaw_noirq', 'thaw_early', 'thaw', 'complete',
      'prepare', 'poweroff', 'poweroff_late', 'poweroff_noirq',
      'restore_noirq(entered)', 'restore_early', 'restore', 'complete',
    ]);
    expect(boot.devs[0]!.dev.log).toEqual(['prepare', 'freeze', 'freeze_late', 'freeze_noirq']);
    expect(t.records.filter((r) => r.kernel === 'boot').map((r) => r.phase)).toContain('freeze_noirq');
    expect(ram[0]).toBe(7);
    expect(ram[1]).toBe(0);
    expect(kernel.inNoirq).toBe(false);
  });

  it('a failure in freeze_noirq aborts image creation with the thaw (recover) callbacks', () => {
    const { dpm, devs } = setup(2);
    dpm.inject({ phase: 'freeze_noirq', device: 'd0', errno: EIO });
    let off = false;
    const t = hibernate(dpm, { powerOff: () => (off = true) }, { imageRoots: [], mode: 'platform' });
    expect(t.result).toBe(-EIO);
    expect(off).toBe(false);
    expect(devs[1]!.dev.log).toEqual(['prepare', 'freeze', 'freeze_late', 'freeze_noirq', 'thaw_noirq', 'thaw_early', 'thaw', 'complete']);
    expect(devs[0]!.dev.log).toEqual(['prepare', 'freeze', 'freeze_late', 'thaw_early', 'thaw', 'complete']);
  });

  it('a failure in poweroff restores devices and does not power off', () => {
    // Only -EBUSY/-EAGAIN (a wakeup event) roll back; other errors power off anyway (below).
    const { dpm, devs } = setup(1);
    dpm.inject({ phase: 'poweroff', device: 'd0', errno: EBUSY });
    let off = false;
    const t = hibernate(dpm, { powerOff: () => (off = true) }, { imageRoots: [], mode: 'platform' });
    expect(t).toMatchObject({ result: -EBUSY, failedStep: 'poweroff' });
    expect(off).toBe(false);
    expect(devs[0]!.dev.log.slice(8)).toEqual(['prepare', 'complete']);
  });
});

describe('hibernation: modes, power_down() and the boot kernel (kernel/power/hibernate.c)', () => {
  function withShutdown(n = 2) {
    const r = setup(n);
    const order: string[] = [];
    r.devs.forEach((pd, i) => Object.assign(pd, { shutdown: (d: Dev) => (d.log.push('shutdown'), order.push(`d${i}`)) }));
    return { ...r, order };
  }

  it('shutdown mode (the default): no poweroff callbacks; device_shutdown last device first, then power off', () => {
    const { dpm, devs, order } = withShutdown();
    const events: string[] = [];
    // The image holds the PM lists (and with them the devices' logs, as at the snapshot).
    const t = hibernate(dpm, { powerOff: () => events.push(`off after ${order.join(',')}`) }, { imageRoots: [dpm] });
    expect(t).toMatchObject({ result: 0, mode: 'shutdown', poweredOff: true });
    expect(order).toEqual(['d1', 'd0']);
    expect(events).toEqual(['off after d1,d0']);
    expect(t.records.filter((r) => r.device === 'd0').map((r) => r.phase)).toEqual([
      'prepare', 'freeze', 'freeze_late', 'freeze_noirq', 'thaw_noirq', 'thaw_early', 'thaw', 'complete',
      'shutdown', 'restore_noirq', 'restore_early', 'restore', 'complete',
    ]);
    expect(devs[0]!.dev.log).toEqual(['prepare', 'freeze', 'freeze_late', 'freeze_noirq', 'restore_noirq', 'restore_early', 'restore', 'complete']);
    expect(t.records.filter((r) => r.phase === 'shutdown').map((r) => [r.device, r.slot, r.result])).toEqual([
      ['d1', 1, 0],
      ['d0', 0, 0],
    ]);
  });

  it('platform mode: the poweroff phases and enter(), no device_shutdown', () => {
    const { dpm, order } = withShutdown();
    const t = hibernate(dpm, { powerOff: () => {} }, { imageRoots: [], mode: 'platform' });
    expect(t).toMatchObject({ result: 0, mode: 'platform', poweredOff: true });
    expect(order).toEqual([]);
    expect(t.records.some((r) => r.phase === 'poweroff_noirq')).toBe(true);
  });

  it.each([
    ['poweroff', EIO, 'poweroff', ['complete']],
    ['poweroff_late', EIO, 'poweroff_noirq', ['restore', 'complete']],
    ['poweroff_noirq', EINVAL, 'poweroff_noirq', ['restore_early', 'restore', 'complete']],
  ] as const)('platform mode, %s failing with another errno: restore callbacks, then device_shutdown and power off; the image is restored', (phase, errno, step, back) => {
    const { dpm, order } = withShutdown(1);
    dpm.inject({ phase, device: 'd0', errno });
    let off = 0;
    const t = hibernate(dpm, { powerOff: () => void off++ }, { imageRoots: [dpm], mode: 'platform' });
    expect(t).toMatchObject({ result: 0, poweredOff: true, platformEnterError: { result: -errno, step } });
    expect(off).toBe(1);
    expect(order).toEqual(['d0']);
    const log = t.records.map((r) => r.phase);
    const failed = log.indexOf(phase);
    // Resume_devices: dpm_resume_end(PMSG_RESTORE) (restore for what got past poweroff, complete) before the shutdown
    expect(log.slice(failed + 1, log.indexOf('shutdown'))).toEqual([...back]);
    // the image, still valid, is restored on the next boot
    expect(log.slice(log.indexOf('shutdown') + 1)).toEqual(['restore_noirq', 'restore_early', 'restore', 'complete']);
  });

  it('platform mode, -EAGAIN: rolled back with the restore callbacks, no power off, the image discarded', () => {
    const { dpm, devs, order } = withShutdown(1);
    dpm.inject({ phase: 'poweroff_noirq', device: 0, errno: EAGAIN });
    let off = false;
    let booted = false;
    const t = hibernate(dpm, { powerOff: () => (off = true), bootKernel: () => ((booted = true), setup(1).dpm) }, { imageRoots: [], mode: 'platform' });
    expect(t).toMatchObject({ result: -EAGAIN, failedStep: 'poweroff_noirq', poweredOff: false });
    expect([off, booted, order]).toEqual([false, false, []]);
    expect(devs[0]!.dev.log.slice(-3)).toEqual(['restore_early', 'restore', 'complete']);
    expect(kernel.messages.map((m) => m.msg)).toContain('PM: Wakeup event detected during hibernation, rolling back.');
  });

  it.each([
    ['freeze', 'freeze'],
    ['freeze_late', 'freeze_noirq'],
    ['prepare', 'freeze'],
  ] as const)('a failure in %s during image creation: recover callbacks, no image, no power off', (phase, step) => {
    const { dpm } = setup(2);
    dpm.inject({ phase, device: 'd0', errno: EIO });
    let off = false;
    const t = hibernate(dpm, { powerOff: () => (off = true) }, { imageRoots: [] });
    expect(t).toMatchObject({ result: -EIO, failedStep: step, poweredOff: false });
    expect(t.imageObjects).toBeUndefined();
    expect(off).toBe(false);
  });

  it.each(['freeze', 'freeze_late', 'freeze_noirq'] as const)('the boot kernel failing to quiesce (%s): the boot kernel carries on, the image kernel never runs again', (phase) => {
    const { dpm, devs } = setup(1);
    const boot = setup(2);
    boot.dpm.inject({ phase, device: 'd0', errno: EBUSY });
    const t = hibernate(dpm, { powerOff: () => {}, bootKernel: () => boot.dpm }, { imageRoots: [] });
    expect(t).toMatchObject({ result: -EBUSY, failedStep: 'quiesce', poweredOff: true });
    expect(devs[0]!.dev.log).not.toContain('restore_noirq');
    // recover (thaw) callbacks in the boot kernel for what had been quiesced
    expect(boot.devs[1]!.dev.log).toContain('thaw');
    expect(t.records.filter((r) => r.kernel === 'boot').length).toBeGreaterThan(0);
  });

  it('a shutdown that throws is recorded as -EIO; devices without one are skipped', () => {
    const { dpm, devs } = setup(2);
    Object.assign(devs[1]!, {
      shutdown: () => {
        throw new Error('wedged');
      },
    });
    dpm.deviceShutdown();
    expect(dpm.record.map((r) => [r.phase, r.device, r.result, r.error])).toEqual([['shutdown', 'd1', -EIO, 'wedged']]);
  });
});

describe('the PM core without slots or interrupt chip', () => {
  it('records without a slot, injections by name, callbacks that are missing or throw non-Errors, formatRecord', () => {
    const dpm = new DpmCore<Dev>();
    const d: Dev = { name: 'solo', log: [], noirqSeen: [] };
    const ops: DevPmOps<Dev> = {
      suspend: () => {
        throw 'plain';
      },
    };
    const pd: PmDevice<Dev> = { name: 'solo', dev: d, ops, shutdown: () => {
      throw 7;
    } };
    dpm.devicePmAdd(pd);
    const t = pmSuspend(dpm);
    expect(t.result).toBe(-EIO);
    const r = t.records[0]!;
    expect(r).toEqual({ phase: 'suspend', device: 'solo', result: -EIO, error: 'plain' });
    expect(formatRecord(r)).toBe('suspend solo: -EIO (plain)');
    dpm.inject({ phase: 'resume', device: 'solo', errno: EIO });
    dpm.inject({ phase: 'suspend_noirq', device: 'solo', errno: EBUSY });
    delete ops.suspend;
    const t2 = pmSuspend(dpm);
    expect(t2.records.map(formatRecord)).toEqual(['suspend_noirq solo: -EBUSY (injected)', 'resume solo: -EIO (injected)']);
    dpm.deviceShutdown();
    expect(dpm.record.at(-1)).toEqual({ phase: 'shutdown', device: 'solo', result: -EIO, error: '7' });
    dpm.devicePmRemove(pd);
    dpm.devicePmRemove(pd);
    expect(dpm.devices).toEqual([]);
  });

  it('devices without an interrupt line are left alone by suspend_device_irqs()', () => {
    const m = maskRecorder();
    const dpm = new DpmCore<Dev>({ irq: m.chip });
    dpm.devicePmAdd({ name: 'noline', dev: { name: 'noline', log: [], noirqSeen: [] }, ops: allOps() });
    dpm.devicePmAdd({ name: 'line3', dev: { name: 'line3', log: [], noirqSeen: [] }, ops: allOps(), irqLine: 3 });
    let masked: number[] = [];
    pmSuspend(dpm, { enterSleep: () => (masked = [...m.masked]) });
    expect(masked).toEqual([3]);
  });

  it('a boot kernel of its own tags records and hook events; PM_EVENT_ON runs no callback', () => {
    const dpm = new DpmCore<Dev>({ tag: 'boot' });
    const d: Dev = { name: 'b', log: [], noirqSeen: [] };
    dpm.devicePmAdd({ name: 'b', dev: d, ops: allOps(), shutdown: () => {} });
    const seen: (string | undefined)[] = [];
    dpm.hooks.push((e) => seen.push(e.kernel));
    dpm.deviceShutdown();
    expect(dpm.record[0]).toEqual({ phase: 'shutdown', device: 'b', result: 0, kernel: 'boot' });
    expect(seen).toEqual(['boot', 'boot']);
    expect(pmOp(PMSG_ON)).toBeNull();
    expect(pmLateEarlyOp(PMSG_ON)).toBeNull();
    expect(pmNoirqOp(PMSG_ON)).toBeNull();
    expect(resumeEvent(PMSG_HIBERNATE)).toBe(PMSG_RESTORE);
    expect(resumeEvent(PMSG_ON)).toBe(PMSG_ON);
    // a message without callbacks (PMSG_ON) still moves the device along the lists
    dpm.dpmPrepare(PMSG_ON);
    expect(dpm.dpmSuspend(PMSG_ON)).toBe(0);
    expect(dpm.dpmSuspendLate(PMSG_ON)).toBe(0);
    expect(d.log).toEqual(['prepare']);
  });
});

describe('KernelImage', () => {
  it('restores fields, arrays, maps and sets in place, and leaves out-of-image objects alone', () => {
    class Box {
      n = 1;
      list = [1, 2];
      map = new Map([['a', 1]]);
      set = new Set([1]);
    }
    const b = new Box();
    const log: string[] = [];
    const holder = { b, log };
    const img = KernelImage.capture([holder]);
    b.n = 5;
    b.list.push(3);
    b.map.set('b', 2);
    b.set.add(2);
    const rec = b as unknown as Record<string, unknown>;
    rec.extra = 9;
    const newList = [7];
    b.list = newList;
    img.restore();
    expect(b.n).toBe(1);
    expect(b.list).toEqual([1, 2]);
    expect(b.list).not.toBe(newList);
    expect([...b.map.keys()]).toEqual(['a']);
    expect([...b.set]).toEqual([1]);
    expect('extra' in b).toBe(false);
  });

  it('leaves functions, array buffers, promises and weak collections out of the image', () => {
    const fn = () => 1;
    const buf = new ArrayBuffer(4);
    const p = Promise.resolve(1);
    const wm = new WeakMap<object, number>();
    const holder: Record<string, unknown> = { fn, buf, p, wm };
    new Uint8Array(buf)[0] = 1;
    const img = KernelImage.capture([fn, holder]);
    new Uint8Array(buf)[0] = 2;
    holder.fn = null;
    img.restore();
    expect(holder.fn).toBe(fn);
    expect(holder.p).toBe(p);
    expect(holder.wm).toBe(wm);
    // not saved, so not written back
    expect(new Uint8Array(buf)[0]).toBe(2);
    expect(img.objects).toBe(1);
  });
});
