// The same sleep cycle under both kernels on fresh machines: the TypeScript
// model (VirtioSystem, core/drivers) and Linux (linux/drivers over the
// patched virtio core and virtio-mmio), compared access by access per slot
// (ring addresses aside) and record by record (phase, device, result). What
// differs is pinned here and explained in linux/README.md ("PM: where the
// model and Linux differ").
import { describe, expect, it } from 'vitest';
import { virtioRngDriver } from '../../core/drivers/rng.js';
import { virtioRtcDriver, virtioRtcNoirqDriver } from '../../core/drivers/rtc.js';
import { kernel } from '../../core/kernel.js';
import type { PmInjection } from '../../core/pm/dpm.js';
import type { PmTransition } from '../../core/pm/system.js';
import { EIO } from '../../core/uapi/errno.js';
import { REG } from '../../core/uapi/mmio.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import type { LinuxPowerModel } from '../../linux/host/index.js';
import { VirtioSystem } from '../../tools/system.js';
import { TraceBus, formatEntry, type TraceEntry } from '../helpers/trace-bus.js';
import { boot, built, closeAllAfterEach } from './helpers.js';

const ADDRESS_REGS = new Set<number>([REG.QueueDescLow, REG.QueueDriverLow, REG.QueueDeviceLow, REG.QueuePFN]);

interface Run {
  t: PmTransition;
  /** Per slot: the accesses of the cycle, "-- phase" markers before each callback. */
  slots: string[][];
}

interface Scenario {
  kind: 'suspend' | 'hibernate';
  power: LinuxPowerModel;
  transport: TransportKind;
  /** The clock driver: with the noirq pair, or freeze/restore only. */
  noirq: boolean;
  fail?: PmInjection[];
}

function show(log: (TraceEntry | string)[], base: number): string[] {
  return log
    .filter((e) => typeof e === 'string' || e.addr - e.offset === base)
    .map((e) => (typeof e === 'string' ? e : ADDRESS_REGS.has(e.offset) && e.op === 'W' && e.value !== 0 ? `${formatEntry({ ...e, value: 0 }).slice(0, -3)}(ring)` : formatEntry(e)));
}

function records(t: PmTransition): string[] {
  return t.records.map((r) => `${r.kernel ? 'boot ' : ''}${r.phase} ${r.device} ${r.result}${r.injected ? ' injected' : ''}`);
}

async function runModel(s: Scenario): Promise<Run> {
  let trace: TraceBus | null = null;
  const devices = [
    { type: 'rng', transport: s.transport },
    { type: 'rtc', transport: s.transport },
  ];
  const sys = await VirtioSystem.create({
    devices,
    slots: 2,
    drivers: [virtioRngDriver, s.noirq ? virtioRtcNoirqDriver : virtioRtcDriver],
    wrapBus: (b) => (trace = new TraceBus(b)),
  });
  try {
    const log: (TraceEntry | string)[] = [];
    const tr = trace! as TraceBus;
    tr.after = (e) => void log.push(e);
    tr.recording = false;
    sys.dpm.hooks.push((e) => {
      if (e.when === 'before') log.push(`-- ${e.kernel ? 'boot ' : ''}${e.phase}`);
    });
    for (const i of s.fail ?? []) sys.injectPmFailure(i);
    const t = s.kind === 'suspend' ? sys.suspend({ power: s.power }) : sys.hibernate({ power: s.power });
    tr.after = null;
    return { t, slots: [0, 1].map((slot) => show(log, sys.machine.slotAddr(slot))) };
  } finally {
    await sys.close();
    kernel.clear();
  }
}

async function runLinux(s: Scenario): Promise<Run> {
  let trace: TraceBus | null = null;
  const sys = await boot({
    devices: ['rng', 'rtc'],
    transport: s.transport,
    slots: 2,
    drivers: ['virtio_rng', s.noirq ? 'virtio_rtc_noirq' : 'virtio_rtc'],
    wrapBus: (b) => (trace = new TraceBus(b)),
  });
  const log: (TraceEntry | string)[] = [];
  const tr = trace! as TraceBus;
  tr.after = (e) => void log.push(e);
  tr.recording = false;
  sys.dpm.hooks.push((e) => {
    if (e.when === 'before') log.push(`-- ${e.kernel ? 'boot ' : ''}${e.phase}`);
  });
  for (const i of s.fail ?? []) sys.injectPmFailure(i);
  const t = s.kind === 'suspend' ? sys.suspend({ power: s.power }) : sys.hibernate({ power: s.power });
  tr.after = null;
  expect(sys.kernel.warnings).toEqual([]);
  return { t, slots: [0, 1].map((slot) => show(log, sys.machine.slotAddr(slot))) };
}

describe.skipIf(!built)('PM under both kernels: the model and Linux, access by access', () => {
  closeAllAfterEach();

  const same: Scenario[] = [];
  for (const transport of ['mmio', 'mmio-legacy'] as const) {
    for (const power of ['retain', 'reset', 'fresh'] as const) {
      same.push({ kind: 'suspend', power, transport, noirq: true });
      same.push({ kind: 'suspend', power, transport, noirq: false });
    }
    same.push({ kind: 'suspend', power: 'reset', transport, noirq: true, fail: [{ phase: 'suspend_noirq', device: 0, errno: EIO }] });
    same.push({ kind: 'suspend', power: 'reset', transport, noirq: true, fail: [{ phase: 'resume_noirq', device: 1, errno: EIO }] });
    same.push({ kind: 'suspend', power: 'retain', transport, noirq: true, fail: [{ phase: 'suspend', device: 0, errno: EIO }] });
    same.push({ kind: 'hibernate', power: 'fresh', transport, noirq: false });
    same.push({ kind: 'hibernate', power: 'fresh', transport, noirq: true });
    same.push({ kind: 'hibernate', power: 'fresh', transport, noirq: true, fail: [{ phase: 'freeze_noirq', device: 0, errno: EIO }] });
    same.push({ kind: 'hibernate', power: 'fresh', transport, noirq: true, fail: [{ phase: 'poweroff_noirq', device: 0, errno: EIO }] });
  }

  const name = (s: Scenario): string =>
    `${s.kind} power ${s.power} over ${s.transport}, clock ${s.noirq ? 'with' : 'without'} the noirq pair${s.fail?.length ? `, ${s.fail.map((f) => `${f.phase}:${f.device} fails`).join(', ')}` : ''}`;

  it.each(same.map((s) => [name(s), s] as const))('%s: same records, same accesses', async (_n, s) => {
    const [model, linux] = [await runModel(s), await runLinux(s)];
    expect(records(linux.t)).toEqual(records(model.t));
    expect(linux.t.result).toBe(model.t.result);
    expect(linux.t.failedStep).toBe(model.t.failedStep);
    for (const slot of [0, 1]) expect(linux.slots[slot]).toEqual(model.slots[slot]);
  });
});
