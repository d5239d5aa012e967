// kernel-diff: run each scenario under the modelled kernel and under Linux
// on fresh machines and compare them access by access. A difference is a
// model bug (to be fixed) or one of the version differences listed in
// explained.ts, which the report names; nothing is hidden.
import { featureHex } from '../../core/uapi/features.js';
import type { BoardStats, SlotStats } from '../../emulator/board.js';
import { firstDifference, resultDifferences, type ResultDifference, type SlotResult, type TraceDifference } from './compare.js';
import { explain } from './explained.js';
import { bootKernel, type DiffKernel, type KernelName } from './kernels.js';
import type { DiffScenario } from './scenarios.js';

export interface ScenarioOutcome {
  name: string;
  /** Same register trace and the same device-visible results. */
  same: boolean;
  /** Register accesses compared (the longer of the two traces). */
  accesses: number;
  firstDifference?: TraceDifference;
  resultDifferences?: ResultDifference[];
  /** Why the kernels differ here, if it is a known version difference. */
  explained?: string;
  /** Something went wrong in a kernel (an exception, a warning, an error message). */
  errors?: string[];
}

interface Run {
  accesses: import('./access-log.js').Access[];
  results: SlotResult[];
  bytes: number[];
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
  const k = await bootKernel(name, { devices: s.devices, slots: s.slots, ...(s.beforeBoot ? { beforeBoot: s.beforeBoot } : {}) });
  const bytes: number[] = [];
  const errors: string[] = [];
  try {
    // Between steps the device finishes what it was given, so that a step
    // (a remove's reset, say) never races the request the previous one left.
    settledStats(k);
    for (const step of s.steps) {
      try {
        if (step.do === 'rng-read') bytes.push(k.rngRead(step.slot, step.bytes));
        else if (step.do === 'remove') k.remove(step.slot);
        else k.probe(step.slot);
        settledStats(k);
      } catch (err) {
        errors.push(`${name}: ${step.do} slot ${step.slot}: ${err instanceof Error ? err.message : String(err)}`);
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
    errors.push(...k.problems().map((p) => `${name}: ${p}`));
    return { accesses: [...k.log.accesses], results, bytes, errors };
  } finally {
    await k.close();
  }
}

/** Run one scenario under both kernels and compare. */
export async function diffScenario(s: DiffScenario): Promise<ScenarioOutcome> {
  const model = await runOn('model', s);
  const linux = await runOn('linux', s);
  const trace = firstDifference(model.accesses, linux.accesses);
  const results = resultDifferences(model.results, linux.results);
  model.bytes.forEach((b, i) => {
    if (b !== linux.bytes[i]) results.push({ slot: -1, field: 'bytes', model: String(b), linux: String(linux.bytes[i]) });
  });
  // Refused features log "device refuses features" in both kernels by design.
  const errors = [...model.errors, ...linux.errors].filter((e) => !/device refuses features/.test(e));
  const out: ScenarioOutcome = {
    name: s.name,
    same: trace === null && results.length === 0 && errors.length === 0,
    accesses: Math.max(model.accesses.length, linux.accesses.length),
  };
  if (trace) out.firstDifference = trace;
  if (results.length) out.resultDifferences = results;
  if (errors.length) out.errors = errors;
  if (!out.same) {
    const why = explain(s, trace, results);
    if (why) out.explained = why;
  }
  return out;
}
