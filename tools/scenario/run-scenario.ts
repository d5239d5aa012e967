// `virtio-emu run --scenario FILE`: load and validate the file (nothing
// starts if it is invalid), turn its steps into run steps after the probe,
// execute them on one system and report. The first failing step stops the
// scenario; the steps after it are reported as skipped.
import { closeSync, openSync, readSync } from 'node:fs';
import { SCENARIO_LIMITS } from '../limits.js';
import { BusError } from '../../core/bus.js';
import type { PmInjection } from '../../core/pm/dpm.js';
import { executePlan } from '../run/execute.js';
import { formatJson } from '../run/format.js';
import { atPoint, buildPlan, defaultSettings, probeStep, type RunPlan, type RunSettings, type RunStep } from '../run/plan.js';
import { UsageError } from '../usage-error.js';
import type { MachineDevice } from '../../emulator/machine.js';
import { progressBar } from './progress.js';
import { formatScenarioText, withScenario, type ScenarioReport, type ScenarioRunReport, type ScenarioStepReport } from './report.js';
import { totalCycles, type Scenario, type Step } from './schema.js';
import { StepFailure, runStep, type ScenarioState } from './steps.js';
import { ScenarioError, validateScenario, type ValidateOptions } from './validate.js';

/** "Unexpected token } in JSON at position 42" → "... at line 3 column 5". */
function jsonErrorMessage(text: string, err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /at position (\d+)/.exec(msg);
  if (!m) return msg;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  const what = msg.replace(/ in JSON at position \d+.*$/, '').replace(/ at position \d+.*$/, '');
  return `${what.length > 120 ? `${what.slice(0, 117)}...` : what} at line ${line} column ${column}`;
}

/**
 * A scenario file's text: at most SCENARIO_LIMITS.maxFileBytes are read,
 * whatever the file is (a FIFO or /dev/zero has no size to check first).
 */
export function readScenarioText(file: string): string {
  const cant = (e: NodeJS.ErrnoException): UsageError => {
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : (e.code ?? e.message);
    return new UsageError(`cannot read scenario '${file}': ${why}`);
  };
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw cant(err as NodeJS.ErrnoException);
  }
  try {
    const max = SCENARIO_LIMITS.maxFileBytes;
    const buf = Buffer.allocUnsafe(max + 1);
    let n = 0;
    try {
      for (;;) {
        const got = readSync(fd, buf, n, buf.length - n, null);
        if (got === 0) break;
        n += got;
        if (n > max) throw new UsageError(`scenario '${file}' is larger than ${max} bytes`);
      }
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw cant(err as NodeJS.ErrnoException);
    }
    const text = buf.toString('utf8', 0, n);
    // A UTF-8 byte order mark (editors on Windows write one) is not part of the JSON.
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } finally {
    closeSync(fd);
  }
}

/** Read, parse and validate a scenario file; usage errors (exit 2) for every way it can be wrong. */
export function loadScenario(file: string, opts: Omit<ValidateOptions, 'file'> = {}): Scenario {
  return parseScenario(readScenarioText(file), file, opts);
}

/** A scenario file's text (as loadScenario read it), parsed and validated; relative paths resolve against `file`. */
export function parseScenario(text: string, file: string, opts: Omit<ValidateOptions, 'file'> = {}): Scenario {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ScenarioError(file, [{ path: '', message: `not valid JSON: ${jsonErrorMessage(text, err)}` }]);
  }
  return validateScenario(raw, { ...opts, file });
}

/** The run's plan for a scenario, starting from `base` (so options like --trace carry over). */
export function scenarioPlan(scenario: Scenario, base: RunSettings = defaultSettings()): { plan: RunPlan; report: () => ScenarioReport } {
  const settings: RunSettings = {
    ...base,
    devices: scenario.machine.devices.map((d): MachineDevice => ({ type: d.type, transport: d.transport, slot: d.slot, options: d.options })),
    bus: scenario.machine.bus,
    pm: null,
    // Error messages an injected PM failure provokes are expected ones.
    fails: scenario.steps.flatMap((s): PmInjection[] => (s.do === 'pm' ? s.fail.map((f) => ({ phase: f.phase, device: f.slot, errno: f.errno })) : [])),
  };
  const plan = buildPlan(settings);
  plan.machine = {
    ...plan.machine,
    ...(scenario.machine.slots !== undefined ? { slots: scenario.machine.slots } : {}),
    ...(scenario.machine.ramSize !== undefined ? { ramSize: scenario.machine.ramSize } : {}),
  };
  const state: ScenarioState = {
    shadows: new Map(),
    cyclesDone: 0,
    totalCycles: totalCycles(scenario),
    names: new Map(scenario.machine.devices.map((d) => [d.slot, d.name])),
  };
  const results: ScenarioStepReport[] = scenario.steps.map((s, index) => ({
    index,
    do: s.do,
    device: deviceName(s),
    result: 'skipped',
    detail: 'not run',
  }));
  let stopped = false;
  const steps: RunStep[] = scenario.steps.map((step, index) => ({
    name: `steps[${index}] ${step.do}`,
    run(ctx) {
      const r = results[index]!;
      if (stopped) return;
      // A device that did not bind makes the probe fail: nothing else can work.
      if (ctx.errors.length) {
        stopped = true;
        r.detail = 'not run: the machine did not come up cleanly';
        return;
      }
      try {
        r.detail = runStep(ctx, state, step);
        r.result = 'ok';
      } catch (err) {
        stopped = true;
        r.result = 'failed';
        r.detail = err instanceof StepFailure ? err.message : `${err instanceof Error ? err.name : 'Error'}: ${err instanceof Error ? err.message : String(err)}`;
        ctx.errors.push(`steps[${index}] ${step.do}${r.device ? ` ${r.device}` : ''}: ${r.detail}`);
        // A dead machine: let the run stop as it does for any step.
        if (err instanceof BusError) throw err;
      }
      if (r.result === 'ok') atPoint(ctx, index);
    },
  }));
  plan.steps = [probeStep, ...steps];
  return { plan, report: () => ({ name: scenario.name, file: scenario.file, steps: results }) };
}

function deviceName(s: Step): string | null {
  return 'device' in s && s.device ? s.device.name : null;
}

/** Run a validated scenario on a fresh system and report (the in-process API). */
export async function runScenario(scenario: Scenario, base: RunSettings = defaultSettings()): Promise<ScenarioRunReport> {
  const { plan, report } = scenarioPlan(scenario, base);
  try {
    return withScenario(await executePlan(plan), report());
  } catch (err) {
    // executePlan only throws when the machine cannot start.
    if (err instanceof Error) err.message = `cannot start the machine: ${err.message}`;
    throw err;
  }
}

/** The CLI path: settings from `run --scenario FILE [--json]`. */
export async function runScenarioCommand(settings: RunSettings, scenario: Scenario = loadScenario(settings.scenario!, { json: settings.json })): Promise<number> {
  const progress = progressBar(totalCycles(scenario), { json: settings.json });
  if (progress) settings.onCycle = (done, total) => progress.update(done, total);
  let r: ScenarioRunReport;
  try {
    r = await runScenario(scenario, settings);
  } finally {
    progress?.end();
  }
  process.stdout.write(settings.json ? formatJson(r) : formatScenarioText(r));
  return r.ok ? 0 : 1;
}
