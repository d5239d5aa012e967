// kernel-diff: run each scenario under the modelled kernel and under Linux
// on fresh machines and compare them access by access. A difference is a
// model bug (to be fixed) or one of the version differences listed in
// explained.ts, which the report names; nothing is hidden.
import { featureHex } from '../../core/uapi/features.js';
import type { BoardStats, SlotStats } from '../../emulator/board.js';
import { firstDifference, resultDifferences, type ResultDifference, type SlotResult, type TraceDifference } from './compare.js';
import { explain } from './explained.js';
import { bootKernel, type DiffKernel, type KernelName, type PmOutcome } from './kernels.js';
import type { DiffScenario } from './scenarios.js';

export interface ScenarioOutcome {
  name: string;
  /** Same register trace and the same device-visible results. */
  same: boolean;
  /** Register accesses compared (the longer of the two traces). */
  accesses: number;
  firstDifference?: TraceDifference;
  resultDifferences?: ResultDifference[];
  /** The first PM step whose callbacks, results or noirq states differ. */
  pmDifference?: PmDifference;
  /** Why the kernels differ here, if it is a known version difference. */
  explained?: string;
  /** What both kernels logged at error level or warned about, when they agree (it is data, e.g. a refused callback). */
  log?: string[];
  /** The kernels' logs differ: each side's lines. */
  logDifference?: { model: string[]; linux: string[] };
  /** A step could not run (an exception from a kernel or the machine). */
  errors?: string[];
}

export interface PmDifference {
  /** Index of the PM step among the scenario's PM steps. */
  step: number;
  field: 'records' | 'result' | 'failedStep' | 'poweredOff' | 'noirqState';
  model: string;
  linux: string;
}

/** One PM step as a kernel went through it, and the noirq state of each slot afterwards. */
interface PmRun extends PmOutcome {
  noirq: (number | null)[];
}

interface Run {
  accesses: import('./access-log.js').Access[];
  results: SlotResult[];
  bytes: number[];
  pm: PmRun[];
  log: string[];
  errors: string[];
}

/**
 * The device side's counters once it has served every notification: the
 * request a driver leaves pending (virtio-rng always has one) completes in
 * the worker at its own pace, so the counters are read when no device work
 * is left, not at an arbitrary moment.
 */
function settledStats(k: DiffKernel): SlotStats[] {
  const deadline = performance.now() + SETTLE_MS;
  for (;;) {
    const r = k.machine.control({ op: 'stats' });
    if (!r.ok) throw new Error(`stats: ${r.error}`);
    const stats = r.value as BoardStats;
    if (stats.pendingWork === 0 || performance.now() > deadline) return stats.slots;
    Atomics.wait(PAUSE, 0, 0, 1);
  }
}

/** How long device work may take to drain before the counters are read anyway. */
const SETTLE_MS = 2000;
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

async function runOn(name: KernelName, s: DiffScenario): Promise<Run> {
  const k = await bootKernel(name, {
    devices: s.devices,
    slots: s.slots,
    ...(s.drivers ? { drivers: s.drivers } : {}),
    ...(s.tweak ? { tweak: s.tweak } : {}),
    ...(s.beforeBoot ? { beforeBoot: s.beforeBoot } : {}),
  });
  const bytes: number[] = [];
  const pm: PmRun[] = [];
  const errors: string[] = [];
  const slotsOf = s.devices.map((d, i) => d.slot ?? i);
  try {
    // Between steps the device finishes what it was given, so that a step
    // (a remove's reset, say) never races the request the previous one left.
    settledStats(k);
    for (const step of s.steps) {
      try {
        if (step.do === 'rng-read') bytes.push(k.rngRead(step.slot, step.bytes));
        else if (step.do === 'remove') k.remove(step.slot);
        else if (step.do === 'probe') k.probe(step.slot);
        else pm.push({ ...k.pm(step), noirq: slotsOf.map((slot) => k.noirqState(slot)) });
        settledStats(k);
      } catch (err) {
        errors.push(`${name}: ${step.do}${'slot' in step ? ` slot ${step.slot}` : ''}: ${err instanceof Error ? err.message : String(err)}`);
        break;
      }
    }
    const stats = settledStats(k);
    const results = s.devices.map((d, i): SlotResult => {
      const slot = d.slot ?? i;
      const st = stats[slot]!;
      const v = k.view(slot);
      return {
        slot,
        status: st.status,
        driver: v.driver,
        features: featureHex(v.features),
        usedBuffers: st.usedBuffers,
        notifications: st.notifications,
        usedInterrupts: st.usedInterrupts,
        configInterrupts: st.configInterrupts,
        guestErrors: st.guestErrors,
      };
    });
    return { accesses: [...k.log.accesses], results, bytes, pm, log: k.problems(), errors };
  } finally {
    await k.close();
  }
}

/** Run one scenario under both kernels and compare. */
export async function diffScenario(s: DiffScenario): Promise<ScenarioOutcome> {
  const model = await runOn('model', s);
  const linux = await runOn('linux', s);
  const trace = firstDifference(model.accesses, linux.accesses);
  const pmDiff = pmDifference(model.pm, linux.pm);
  const results = resultDifferences(model.results, linux.results);
  model.bytes.forEach((b, i) => {
    if (b !== linux.bytes[i]) results.push({ slot: -1, field: 'bytes', model: String(b), linux: String(linux.bytes[i]) });
  });
  const errors = [...model.errors, ...linux.errors];
  const logSame = model.log.join('\n') === linux.log.join('\n');
  const out: ScenarioOutcome = {
    name: s.name,
    same: trace === null && pmDiff === null && results.length === 0 && logSame && errors.length === 0,
    accesses: Math.max(model.accesses.length, linux.accesses.length),
  };
  if (trace) out.firstDifference = trace;
  if (pmDiff) out.pmDifference = pmDiff;
  if (results.length) out.resultDifferences = results;
  if (logSame && model.log.length) out.log = model.log;
  if (!logSame) out.logDifference = { model: model.log, linux: linux.log };
  if (errors.length) out.errors = errors;
  if (!out.same) {
    const why = explain(s, trace, results);
    if (why) out.explained = why;
  }
  return out;
}

/** The first PM step where the kernels' callbacks, results or noirq states differ. */
function pmDifference(model: readonly PmRun[], linux: readonly PmRun[]): PmDifference | null {
  for (let i = 0; i < Math.max(model.length, linux.length); i++) {
    const m = model[i];
    const l = linux[i];
    if (!m || !l) return { step: i, field: 'records', model: m ? 'ran' : 'did not run', linux: l ? 'ran' : 'did not run' };
    for (const field of ['result', 'failedStep', 'poweredOff'] as const) {
      if (m[field] !== l[field]) return { step: i, field, model: String(m[field]), linux: String(l[field]) };
    }
    const at = m.records.findIndex((r, j) => r !== l.records[j]);
    if (at >= 0 || m.records.length !== l.records.length) {
      const j = at >= 0 ? at : Math.min(m.records.length, l.records.length);
      return { step: i, field: 'records', model: `#${j} ${m.records[j] ?? '(end)'}`, linux: `#${j} ${l.records[j] ?? '(end)'}` };
    }
    if (m.noirq.join() !== l.noirq.join()) return { step: i, field: 'noirqState', model: m.noirq.join(), linux: l.noirq.join() };
  }
  return null;
}
