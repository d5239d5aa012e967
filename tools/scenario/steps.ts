// What each scenario step does on a running system. A step returns one line
// saying what it did, or throws StepFailure saying what it expected and saw.
import { virtblkFlush, virtblkRead, virtblkWrite } from '../../core/drivers/blk.js';
import { virtconsInfo, virtconsRead, virtconsReadWait, virtconsStats, virtconsWrite } from '../../core/drivers/console.js';
import { driverForDeviceId } from '../../core/drivers/index.js';
import { virtioRngRead } from '../../core/drivers/rng.js';
import { formatWarning, kernel } from '../../core/kernel.js';
import type { PmInjection } from '../../core/pm/dpm.js';
import type { PmTransition } from '../../core/pm/system.js';
import { SECTOR_SIZE } from '../../core/uapi/blk.js';
import { errnoName } from '../../core/uapi/errno.js';
import { statusString } from '../../core/uapi/status.js';
import { VIRTIO_NOIRQ_ENTERED, VIRTIO_NOIRQ_NONE, VIRTIO_NOIRQ_RESTORED, type VirtioDevice } from '../../core/virtio.js';
import { exerciseAll, exerciseOptions, pmCycle, pmCycleReport, recordPmCycle, type PmCycleReport, type RunContext } from '../run/plan.js';
import { BlkShadow, blkData, describeData, firstDifference } from './blk-data.js';
import type { DeviceRef, NoirqStateName, PmExpect, Step } from './schema.js';

/** A step that did not get what it expected. */
export class StepFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepFailure';
  }
}

/** What steps share across a run. */
export interface ScenarioState {
  /** What the scenario wrote, per blk slot. */
  readonly shadows: Map<number, BlkShadow>;
  cyclesDone: number;
  readonly totalCycles: number;
  /** Scenario device names by slot, for messages. */
  readonly names: ReadonlyMap<number, string>;
}

const NOIRQ_NAMES: Record<number, NoirqStateName> = {
  [VIRTIO_NOIRQ_NONE]: 'none',
  [VIRTIO_NOIRQ_ENTERED]: 'entered',
  [VIRTIO_NOIRQ_RESTORED]: 'restored',
};

const utf8 = new TextDecoder();

function vdevOf(ctx: RunContext, ref: DeviceRef): VirtioDevice {
  const d = ctx.devices.find((x) => x.slot === ref.slot);
  if (!d) throw new StepFailure(`'${ref.name}' (slot ${ref.slot}) was not found by the kernel`);
  return d.vdev;
}

function check(r: number, what: string): number {
  if (r < 0) throw new StepFailure(`${what} failed: ${errnoName(r)}`);
  return r;
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------
// I/O

function rngRead(ctx: RunContext, step: Extract<Step, { do: 'rng-read' }>): string {
  const r = virtioRngRead(vdevOf(ctx, step.device), step.bytes);
  if (typeof r === 'number') check(r, `read of ${step.bytes} bytes`);
  const b = r as Uint8Array;
  if (b.length !== step.bytes) throw new StepFailure(`read returned ${b.length} of ${step.bytes} bytes`);
  if (b.length >= 64 && b.every((x) => x === 0)) throw new StepFailure(`${b.length} random bytes are all zero`);
  return `read ${step.bytes} random bytes`;
}

function shadow(state: ScenarioState, slot: number): BlkShadow {
  let s = state.shadows.get(slot);
  if (!s) state.shadows.set(slot, (s = new BlkShadow()));
  return s;
}

function blkWrite(ctx: RunContext, state: ScenarioState, step: Extract<Step, { do: 'blk-write' }>): string {
  const data = blkData(step.data, step.sector, step.count);
  check(virtblkWrite(vdevOf(ctx, step.device), step.sector, data), `write of sectors ${step.sector}+${step.count}`);
  shadow(state, step.device.slot).record(step.sector, data);
  return `wrote sectors ${step.sector}+${step.count} (${describeData(step.data)})`;
}

function readSectors(vdev: VirtioDevice, sector: number, count: number): Uint8Array {
  const r = virtblkRead(vdev, sector, count);
  if (typeof r === 'number') check(r, `read of sectors ${sector}+${count}`);
  return r as Uint8Array;
}

function compare(got: Uint8Array, want: Uint8Array, sector: number): void {
  const at = firstDifference(got, want);
  if (at >= 0) {
    const s = sector + Math.floor(at / SECTOR_SIZE);
    throw new StepFailure(`sector ${s} differs at byte ${at % SECTOR_SIZE}: read 0x${(got[at] ?? 0).toString(16)}, expected 0x${(want[at] ?? 0).toString(16)}`);
  }
}

function blkVerify(ctx: RunContext, state: ScenarioState, step: Extract<Step, { do: 'blk-verify' }>): string {
  const vdev = vdevOf(ctx, step.device);
  if (step.range) {
    const { sector, count, data } = step.range;
    compare(readSectors(vdev, sector, count), blkData(data, sector, count), sector);
    return `sectors ${sector}+${count} hold ${describeData(data)}`;
  }
  const sh = state.shadows.get(step.device.slot);
  if (!sh || sh.size === 0) throw new StepFailure('nothing was written to verify');
  const runs = sh.runs();
  for (const run of runs) compare(readSectors(vdev, run.sector, run.data.length / SECTOR_SIZE), run.data, run.sector);
  return `all ${sh.size} written sectors read back as written (${runs.length} range${runs.length > 1 ? 's' : ''})`;
}

function consoleWrite(ctx: RunContext, step: Extract<Step, { do: 'console-write' }>): string {
  const vdev = vdevOf(ctx, step.device);
  const before = virtconsStats(vdev);
  const n = check(virtconsWrite(vdev, step.text), 'console write');
  const after = virtconsStats(vdev);
  const lines = after.linesSent - before.linesSent;
  if (after.bytesSent - before.bytesSent !== n) throw new StepFailure(`sent ${n} bytes but the port counted ${after.bytesSent - before.bytesSent}`);
  return `sent ${n} bytes, ${lines} line${lines === 1 ? '' : 's'}`;
}

function consoleInput(ctx: RunContext, step: Extract<Step, { do: 'console-input' }>): string {
  const vdev = vdevOf(ctx, step.device);
  // Whatever arrived earlier is not this step's input.
  virtconsRead(vdev);
  const want = new TextEncoder().encode(step.text);
  check(injectOk(ctx, step.device, 'input', { data: step.text }), 'input injection');
  const r = virtconsReadWait(vdev, want.length);
  if (typeof r === 'number') check(r, `waiting for ${want.length} bytes of input`);
  const got = utf8.decode(r as Uint8Array);
  if (got !== step.text) throw new StepFailure(`the guest read ${JSON.stringify(got)}, the host sent ${JSON.stringify(step.text)}`);
  return `host input of ${want.length} bytes arrived`;
}

function exercise(ctx: RunContext, step: Extract<Step, { do: 'exercise' }>): string {
  if (step.device) {
    const vdev = vdevOf(ctx, step.device);
    const entry = driverForDeviceId(vdev.id.device);
    if (!entry) throw new StepFailure(`no driver entry for ${step.device.type}`);
    const r = entry.exercise(vdev, exerciseOptions(ctx, step.device.slot, step.bytes));
    if (r.failures.length) throw new StepFailure(r.failures.join('; '));
    return `I/O check passed (${r.requests} requests, ${r.bytes} bytes so far)`;
  }
  const failures = exerciseAll(ctx);
  if (failures.length) throw new StepFailure(failures.join('; '));
  return `I/O check passed on all ${ctx.devices.length} devices`;
}

/** Board control 'inject'; 0 or -1 with the board's reason thrown. */
function injectOk(ctx: RunContext, ref: DeviceRef, event: string, args: Record<string, string | number | boolean>): number {
  const r = ctx.machine.control({ op: 'inject', slot: ref.slot, event, args });
  if (!r.ok) throw new StepFailure(`inject ${event}: ${r.error}`);
  return 0;
}

function inject(ctx: RunContext, step: Extract<Step, { do: 'inject' }>): string {
  injectOk(ctx, step.device, step.event, step.args);
  // Deliver what the event raised (a config interrupt) before the next step.
  ctx.sys.bus.irq.deliverPending();
  return `${step.event} injected`;
}

// ---------------------------------------------------------------------------
// PM

function pmMismatch(c: PmCycleReport, e: PmExpect): string | null {
  const bad: string[] = [];
  if (e.result !== undefined && c.result !== errnoName(e.result)) bad.push(`result ${c.result}, expected ${errnoName(e.result)}`);
  if (e.failedStep !== undefined && c.failedStep !== e.failedStep) bad.push(`failed step ${c.failedStep ?? 'none'}, expected ${e.failedStep}`);
  if (e.devicesOk !== undefined && c.devicesOk !== e.devicesOk) bad.push(`devices ${c.devicesOk ? 'ok' : 'not ok'} after the cycle, expected ${e.devicesOk ? 'ok' : 'not ok'}`);
  return bad.length ? bad.join(', ') : null;
}

function pm(ctx: RunContext, state: ScenarioState, step: Extract<Step, { do: 'pm' }>): string {
  const injections: PmInjection[] = step.fail.map((f) => ({ phase: f.phase, device: f.slot, errno: f.errno }));
  // Without failures injected a cycle must succeed and leave every device working.
  const expect: PmExpect | null = step.expect ?? (injections.length ? null : { result: 0, devicesOk: true });
  // Counted, not kept: a step may run a million cycles.
  let ran = 0;
  let ok = 0;
  let last: PmCycleReport | null = null;
  const fired = new Set<number>();
  for (const i of injections) ctx.sys.injectPmFailure(i);
  try {
    for (let cycle = 1; cycle <= step.cycles; cycle++) {
      const t: PmTransition = pmCycle(ctx.sys, step.kind, step.power, step.mode ?? 'shutdown');
      const failures = exerciseAll(ctx);
      const report: PmCycleReport = pmCycleReport(t, cycle, step.power, failures.length === 0);
      step.fail.forEach((f, i) => {
        if (t.records.some((p) => p.phase === f.phase && p.slot === f.slot)) fired.add(i);
      });
      recordPmCycle(ctx, report);
      ran++;
      if (report.result === '0') ok++;
      last = report;
      state.cyclesDone++;
      ctx.settings.onCycle?.(state.cyclesDone, state.totalCycles);
      const bad = expect ? pmMismatch(report, expect) : null;
      if (bad) {
        const why = !report.devicesOk && expect?.devicesOk ? `: ${failures[0]}` : '';
        throw new StepFailure(`${step.kind} cycle ${cycle}: ${bad}${why}`);
      }
    }
  } finally {
    // The injections belong to this step only.
    for (const i of injections) ctx.sys.clearPmFailures(i);
  }
  step.fail.forEach((f, i) => {
    if (!fired.has(i)) throw new StepFailure(`injected ${f.phase} failure on slot ${f.slot} never ran (no such callback in a ${step.kind} cycle)`);
  });
  const end = last as PmCycleReport | null;
  if (!end) throw new StepFailure('no cycle ran');
  const times = step.cycles > 1 ? ` x${step.cycles}` : '';
  const outcome = ok === ran ? 'ok' : `${ran - ok} aborted (${end.result}${end.failedStep ? ` in ${end.failedStep}` : ''})`;
  // The devices whose drivers came back in the noirq phase (the patch's path).
  const noirq = ctx.devices.filter((d) => d.vdev.noirqState === VIRTIO_NOIRQ_RESTORED).map((d) => state.names.get(d.slot) ?? d.vdev.name);
  const via = noirq.length ? `, back in restore_noirq: ${noirq.join(', ')}` : '';
  const mode = step.kind === 'hibernate' ? `, hibernation mode ${step.mode}` : '';
  const fellThrough = end.platformEnterError ? ` (powered off despite ${end.platformEnterError})` : '';
  return `${step.kind}${times} (power ${step.power}): ${outcome}${fellThrough}, ${end.phases.length} callbacks per cycle${via}${mode}`;
}

// ---------------------------------------------------------------------------
// Expectations

function expectStep(ctx: RunContext, step: Extract<Step, { do: 'expect' }>): string {
  const seen: string[] = [];
  const vdev = step.device ? vdevOf(ctx, step.device) : null;
  if (step.works !== undefined) {
    let failures: string[];
    if (vdev) {
      const entry = driverForDeviceId(vdev.id.device);
      failures = entry ? entry.exercise(vdev, exerciseOptions(ctx, step.device!.slot, 4096)).failures : [`no driver entry for ${step.device!.type}`];
    } else {
      failures = exerciseAll(ctx);
    }
    if (step.works && failures.length) throw new StepFailure(`expected to work: ${failures[0]}`);
    if (!step.works && !failures.length) throw new StepFailure('expected its I/O check to fail, it passed');
    seen.push(step.works ? 'works' : 'does not work');
  }
  if (vdev && step.driver !== undefined) {
    const name = vdev.driver?.name ?? null;
    if (name !== step.driver) throw new StepFailure(`driver ${name ?? 'none'}, expected ${step.driver ?? 'none'}`);
    seen.push(`driver ${name ?? 'none'}`);
  }
  if (vdev && step.status !== undefined) {
    const st = vdev.config.getStatus(vdev);
    if (st !== step.status) throw new StepFailure(`Status ${hex(st)} ${statusString(st)}, expected ${hex(step.status)} ${statusString(step.status)}`);
    seen.push(`status ${statusString(st)}`);
  }
  if (vdev && step.noirqState !== undefined) {
    const n = NOIRQ_NAMES[vdev.noirqState]!;
    if (n !== step.noirqState) throw new StepFailure(`noirq state ${n}, expected ${step.noirqState}`);
    seen.push(`noirq ${n}`);
  }
  if (step.device && step.register) {
    const r = step.register;
    const v = ctx.sys.bus.read(ctx.machine.slotAddr(step.device.slot) + r.offset, r.width) >>> 0;
    if (v !== r.value) throw new StepFailure(`${r.name} = ${hex(v)}, expected ${hex(r.value)}`);
    seen.push(`${r.name} = ${hex(v)}`);
  }
  if (vdev && step.consoleSize) {
    const ws = virtconsInfo(vdev)?.port.ws ?? null;
    const want = step.consoleSize;
    if (!ws || ws.cols !== want.cols || ws.rows !== want.rows) {
      throw new StepFailure(`console size ${ws ? `${ws.cols}x${ws.rows}` : 'unknown'}, expected ${want.cols}x${want.rows}`);
    }
    seen.push(`size ${ws.cols}x${ws.rows}`);
  }
  if (step.pm) {
    const last = ctx.lastPm;
    if (!last) throw new StepFailure('no PM cycle has run');
    const bad = pmMismatch(last, step.pm);
    if (bad) throw new StepFailure(`last ${last.kind} cycle: ${bad}`);
    seen.push(`last ${last.kind}: ${last.result}${last.failedStep ? ` in ${last.failedStep}` : ''}`);
  }
  if (step.noWarnings !== undefined) {
    const n = kernel.warnings.length;
    if (step.noWarnings && n) {
      const w = kernel.warnings[0]!;
      throw new StepFailure(`${n} kernel warning${n > 1 ? 's' : ''}, first: ${formatWarning(w)}`);
    }
    if (!step.noWarnings && !n) throw new StepFailure('expected kernel warnings, there are none');
    seen.push(step.noWarnings ? 'no kernel warnings' : `${n} kernel warnings`);
  }
  return seen.join(', ');
}

/** Run one step; returns its one-line result or throws StepFailure (or a machine error). */
export function runStep(ctx: RunContext, state: ScenarioState, step: Step): string {
  switch (step.do) {
    case 'rng-read':
      return rngRead(ctx, step);
    case 'blk-write':
      return blkWrite(ctx, state, step);
    case 'blk-read':
      readSectors(vdevOf(ctx, step.device), step.sector, step.count);
      return `read sectors ${step.sector}+${step.count}`;
    case 'blk-verify':
      return blkVerify(ctx, state, step);
    case 'blk-flush':
      check(virtblkFlush(vdevOf(ctx, step.device)), 'flush');
      return 'flushed';
    case 'console-write':
      return consoleWrite(ctx, step);
    case 'console-input':
      return consoleInput(ctx, step);
    case 'exercise':
      return exercise(ctx, step);
    case 'inject':
      return inject(ctx, step);
    case 'pm':
      return pm(ctx, state, step);
    case 'expect':
      return expectStep(ctx, step);
  }
}
