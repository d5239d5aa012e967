// virtio-emu run: start a machine, probe every virtio-mmio window with the
// model's drivers, do some I/O on each bound device and report.
//
// Structure, so options and steps are easy to add:
//   RUN_OPTIONS  one entry per command-line option: its parseArgs spec, its
//                help line and how it changes RunSettings;
//   buildPlan()  turns settings into a RunPlan: machine options plus an
//                ordered list of named steps;
//   executePlan() runs the steps against one machine and returns a RunReport;
//   formatText()/formatJson() print it.
// A new feature is usually one option entry, a settings field and a step.
import { BusError } from '../../core/bus.js';
import { driverByName, driverForDeviceId, drivers, driverNames, type IoStats } from '../../core/drivers/index.js';
import { kernel } from '../../core/kernel.js';
import type { PmCallRecord, PmInjection } from '../../core/pm/dpm.js';
import { isPmCallbackName, PM_CALLBACKS } from '../../core/pm/pm.js';
import type { PmTransition } from '../../core/pm/system.js';
import { EIO, errnoByName, errnoName } from '../../core/uapi/errno.js';
import { featureHex } from '../../core/uapi/features.js';
import { deviceName } from '../../core/uapi/ids.js';
import { statusString } from '../../core/uapi/status.js';
import type { VirtioBus, VirtioDevice } from '../../core/virtio.js';
import type { Machine, BusKind, MachineDevice } from '../../emulator/machine.js';
import { VirtioSystem, type PowerModel, type SystemOptions } from '../system.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { consoleOutConflictsWithJson, preflightDevice } from '../scenario/preflight.js';
import { progressBar } from '../scenario/progress.js';
import type { ScenarioReport } from '../scenario/report.js';
import { UsageError, boolOpt, intOpt, stringOpt, stringsOpt, type CliCommand, type CliOptions, type CliValues } from './args.js';
import { parseDeviceArg } from './qtest.js';

// ---------------------------------------------------------------------------
// Settings and options

export interface RunSettings {
  devices: MachineDevice[];
  /** Transport for devices that do not name one. */
  transport: TransportKind;
  json: boolean;
  bus: BusKind;
  /** Bytes of I/O per device (rng: bytes read). */
  ioBytes: number;
  /** System sleep to cycle through after the first I/O, if any. */
  pm: 'suspend' | 'hibernate' | null;
  cycles: number;
  /** Device power across sleep (default: retain for suspend, fresh for hibernate). */
  power: PowerModel | null;
  /** PM callbacks made to fail. */
  fails: PmInjection[];
  /** Progress of long runs (cycle done of total). */
  onCycle?: (cycle: number, total: number) => void;
  /** A scenario file to run instead of the options' plan. */
  scenario?: string;
  /** Record register accesses, interrupts and PM callbacks to this file. */
  trace?: string;
}

export function defaultSettings(): RunSettings {
  return { devices: [], transport: 'mmio', json: false, bus: 'worker', ioBytes: 4096, pm: null, cycles: 1, power: null, fails: [] };
}

const POWER_MODELS: PowerModel[] = ['retain', 'reset', 'fresh'];

/** "suspend_noirq:1[:EIO]" → an injection (errno by name or number, default EIO). */
export function parseFail(spec: string): PmInjection {
  const [phase, slot, err, ...rest] = spec.split(':');
  if (rest.length || phase === undefined || slot === undefined)
    throw new UsageError(`--fail: expected PHASE:SLOT[:ERRNO], got '${spec}'`);
  if (!isPmCallbackName(phase)) throw new UsageError(`--fail: unknown PM phase '${phase}' (known: ${PM_CALLBACKS.join(', ')})`);
  if (!/^\d+$/.test(slot)) throw new UsageError(`--fail: slot must be a number, got '${slot}'`);
  let errno = EIO;
  if (err !== undefined) {
    const byName = errnoByName(err);
    const n = /^-?\d+$/.test(err) ? Math.abs(Number(err)) : byName;
    if (!n) throw new UsageError(`--fail: unknown errno '${err}'`);
    errno = n;
  }
  return { phase, device: Number(slot), errno };
}

export interface RunOption {
  name: string;
  spec: CliOptions[string];
  /** Help line(s), already aligned. */
  help: string;
  apply(settings: RunSettings, values: CliValues): void;
}

const RUN_TRANSPORTS: TransportKind[] = ['mmio', 'mmio-legacy', 'ccw'];

function checkTransport(t: string, what: string): TransportKind {
  if (!RUN_TRANSPORTS.includes(t as TransportKind)) {
    throw new UsageError(`${what}: transport '${t}' is not supported by run (expected ${RUN_TRANSPORTS.join(', ')})`);
  }
  return t as TransportKind;
}

export const RUN_OPTIONS: RunOption[] = [
  {
    name: 'device',
    spec: { type: 'string', multiple: true },
    help: '--device SPEC      TYPE[,transport=T][,slot=N][,k=v]; repeatable (default: one rng)',
    apply(s, v) {
      s.devices = stringsOpt(v, 'device').map(parseDeviceArg);
      for (const d of s.devices) {
        if (!driverByName(d.type)) throw new UsageError(`--device: no driver for device type '${d.type}' (known: ${driverNames().join(', ')})`);
      }
    },
  },
  {
    name: 'transport',
    spec: { type: 'string' },
    help: '--transport T      mmio (default), mmio-legacy or ccw, for devices that name none',
    apply(s, v) {
      const t = stringOpt(v, 'transport');
      if (t !== undefined) s.transport = checkTransport(t, '--transport');
    },
  },
  {
    name: 'bus',
    spec: { type: 'string' },
    help: '--bus KIND         worker (default: devices in a worker thread) or inthread',
    apply(s, v) {
      const b = stringOpt(v, 'bus');
      if (b === undefined) return;
      if (b !== 'worker' && b !== 'inthread') throw new UsageError(`--bus: expected worker or inthread, got '${b}'`);
      s.bus = b;
    },
  },
  {
    name: 'bytes',
    spec: { type: 'string' },
    help: '--bytes N          I/O size per device (default 4096)',
    apply(s, v) {
      const n = intOpt(v, 'bytes', 1);
      if (n !== undefined) s.ioBytes = n;
    },
  },
  {
    name: 'pm',
    spec: { type: 'string' },
    help: '--pm KIND          system sleep after the first I/O: suspend or hibernate',
    apply(s, v) {
      const k = stringOpt(v, 'pm');
      if (k === undefined) return;
      if (k !== 'suspend' && k !== 'hibernate') throw new UsageError(`--pm: expected suspend or hibernate, got '${k}'`);
      s.pm = k;
    },
  },
  {
    name: 'cycles',
    spec: { type: 'string' },
    help: '--cycles N         sleep/wake cycles (default 1), I/O checked after each',
    apply(s, v) {
      const n = intOpt(v, 'cycles', 1);
      if (n !== undefined) s.cycles = n;
    },
  },
  {
    name: 'power',
    spec: { type: 'string' },
    help: '--power MODEL      device power across sleep: retain (suspend default), reset, fresh (hibernate default)',
    apply(s, v) {
      const p = stringOpt(v, 'power');
      if (p === undefined) return;
      if (!POWER_MODELS.includes(p as PowerModel)) throw new UsageError(`--power: expected ${POWER_MODELS.join(', ')}, got '${p}'`);
      s.power = p as PowerModel;
    },
  },
  {
    name: 'fail',
    spec: { type: 'string', multiple: true },
    help: '--fail P:SLOT[:E]  make PM callback P (e.g. suspend_noirq) of SLOT fail with errno E (default EIO); repeatable',
    apply(s, v) {
      s.fails = stringsOpt(v, 'fail').map(parseFail);
    },
  },
  {
    name: 'scenario',
    spec: { type: 'string' },
    help: '--scenario FILE    run the steps of a scenario file (JSON); combines with --json only',
    apply(s, v) {
      const f = stringOpt(v, 'scenario');
      if (f !== undefined) s.scenario = f;
    },
  },
  {
    name: 'json',
    spec: { type: 'boolean' },
    help: '--json             print one JSON document instead of the summary',
    apply(s, v) {
      s.json = boolOpt(v, 'json');
    },
  },
  {
    name: 'trace',
    spec: { type: 'string' },
    help: '--trace FILE       record register accesses, interrupts and PM callbacks to FILE (read it with virtio-emu trace)',
    apply(s, v) {
      const f = stringOpt(v, 'trace');
      if (f !== undefined) s.trace = f;
    },
  },
];

/** Options a scenario run takes; the file says everything else. */
const SCENARIO_OPTIONS = new Set(['scenario', 'json', 'trace']);

/** Bad device types and options are usage errors, found before a worker starts. */
function preflightDevices(s: RunSettings): void {
  for (const d of s.devices) {
    const conflict = consoleOutConflictsWithJson(d.type, d.options ?? {});
    if (s.json && conflict === 'explicit') throw new UsageError(`--device ${d.type}: out=stdout would mix console output into the --json document; use out=FILE or out=none`);
    // With --json, a console without an output sink writes nowhere.
    if (s.json && conflict === 'default') d.options = { ...d.options, out: 'none' };
    const { error } = preflightDevice({ type: d.type, transport: d.transport ?? s.transport, options: d.options ?? {} });
    if (error) throw new UsageError(`--device ${d.type}: ${error}`);
  }
}

export function parseSettings(values: CliValues): RunSettings {
  const s = defaultSettings();
  for (const o of RUN_OPTIONS) o.apply(s, values);
  if (s.scenario !== undefined) {
    const extra = Object.keys(values).filter((k) => values[k] !== undefined && !SCENARIO_OPTIONS.has(k));
    if (extra.length) throw new UsageError(`--scenario cannot be combined with ${extra.map((k) => `--${k}`).join(', ')} (the scenario file describes the run)`);
    return s;
  }
  if (s.devices.length === 0) s.devices = [{ type: 'rng' }];
  s.devices = s.devices.map((d) => ({ ...d, transport: checkTransport(d.transport ?? s.transport, `--device ${d.type}`) }));
  if (!s.pm && (s.power || s.fails.length || s.cycles !== 1)) throw new UsageError('--cycles, --power and --fail need --pm');
  preflightDevices(s);
  return s;
}

// ---------------------------------------------------------------------------
// Plan and steps

/** One device as the run sees it. */
export interface RunDevice {
  slot: number;
  vdev: VirtioDevice;
  transport: string;
}

/** One sleep/wake cycle in the report. */
export interface PmCycleReport {
  kind: 'suspend' | 'hibernate';
  cycle: number;
  /** 0 or the errno name of the step that aborted the transition. */
  result: string;
  failedStep?: string;
  power: PowerModel;
  phases: { phase: string; slot: number | null; result: string; kernel?: 'boot' }[];
  /** Every device did its I/O again after this cycle. */
  devicesOk: boolean;
}

export interface RunContext {
  readonly settings: RunSettings;
  readonly sys: VirtioSystem;
  readonly machine: Machine;
  /** The modelled kernel's virtio bus, with every driver registered. */
  readonly virtioBus: VirtioBus;
  devices: RunDevice[];
  readonly pm: PmCycleReport[];
  /** One line per problem; any entry makes the run fail. */
  readonly errors: string[];
}

export interface RunStep {
  name: string;
  run(ctx: RunContext): void | Promise<void>;
}

export interface RunPlan {
  settings: RunSettings;
  machine: SystemOptions;
  steps: RunStep[];
}

/** The kernel scanned every transport at boot; drivers bound as devices registered. */
export const probeStep: RunStep = {
  name: 'probe',
  run(ctx) {
    for (const e of ctx.sys.kernel.errors) ctx.errors.push(`slot ${e.slot}: probe failed: ${e.message}`);
    for (const d of ctx.sys.devices) ctx.devices.push({ slot: d.slot, vdev: d.vdev, transport: d.transport });
    for (const { slot, vdev } of ctx.devices) {
      if (!vdev.driver) {
        const why = vdev.probeResult ? `probe failed with ${errnoName(vdev.probeResult)}` : 'no matching driver';
        ctx.errors.push(`slot ${slot}: ${vdev.name} (${deviceName(vdev.id.device)}) not bound: ${why}`);
      }
    }
    const want = ctx.settings.devices.length;
    if (ctx.devices.length !== want) ctx.errors.push(`expected ${want} device(s), found ${ctx.devices.length}`);
  },
};

/** Run each bound device's default I/O; returns the problems found. */
export function exerciseAll(ctx: RunContext): string[] {
  const failures: string[] = [];
  for (const { vdev } of ctx.devices) {
    if (!vdev.driver) continue;
    const entry = driverForDeviceId(vdev.id.device);
    if (!entry) continue;
    failures.push(...entry.exercise(vdev, { bytes: ctx.settings.ioBytes }).failures);
  }
  return failures;
}

/** The default I/O of each bound device's driver. */
export const ioStep: RunStep = {
  name: 'io',
  run(ctx) {
    ctx.errors.push(...exerciseAll(ctx));
  },
};

export function phaseRecord(r: PmCallRecord): PmCycleReport['phases'][number] {
  return { phase: r.phase, slot: r.slot ?? null, result: errnoName(r.result), ...(r.kernel ? { kernel: r.kernel } : {}) };
}

/** Sleep and wake `cycles` times; every device must do its I/O again after each. */
export function pmStep(kind: 'suspend' | 'hibernate', cycles: number, power: PowerModel, fails: PmInjection[]): RunStep {
  return {
    name: `pm ${kind}`,
    run(ctx) {
      for (const f of fails) ctx.sys.injectPmFailure(f);
      for (let cycle = 1; cycle <= cycles; cycle++) {
        const t: PmTransition = kind === 'suspend' ? ctx.sys.suspend({ power }) : ctx.sys.hibernate({ power });
        const failures = exerciseAll(ctx);
        ctx.errors.push(...failures.map((f) => `${kind} cycle ${cycle}: ${f}`));
        ctx.pm.push({
          kind,
          cycle,
          result: errnoName(t.result),
          ...(t.failedStep ? { failedStep: t.failedStep } : {}),
          power,
          phases: t.records.map(phaseRecord),
          devicesOk: failures.length === 0,
        });
        ctx.settings.onCycle?.(cycle, cycles);
      }
      for (const f of fails) {
        const fired = ctx.pm.some((c) => c.phases.some((p) => p.phase === f.phase && p.slot === f.device));
        if (!fired) ctx.errors.push(`--fail ${f.phase}:${f.device}: no such callback ran in a ${kind} cycle`);
      }
    },
  };
}

export function buildPlan(settings: RunSettings): RunPlan {
  const machine: SystemOptions = {
    devices: settings.devices,
    bus: settings.bus,
  };
  const steps = [probeStep, ioStep];
  if (settings.pm) {
    const power = settings.power ?? (settings.pm === 'suspend' ? 'retain' : 'fresh');
    steps.push(pmStep(settings.pm, settings.cycles, power, settings.fails));
  }
  return { settings, machine, steps };
}

// ---------------------------------------------------------------------------
// Execution and report

export interface DeviceReport {
  slot: number;
  deviceId: number;
  name: string;
  /** The kernel's device name (virtio0, ...). */
  dev: string;
  driver: string | null;
  transport: TransportKind;
  /** Final Status register value. */
  status: number;
  features: string;
  io: IoStats;
}

export interface RunReport {
  ok: boolean;
  devices: DeviceReport[];
  pm?: PmCycleReport[];
  /** Step by step, for --scenario runs. */
  scenario?: ScenarioReport;
  warnings: string[];
}

export async function executePlan(plan: RunPlan): Promise<RunReport> {
  kernel.clear();
  const opts: SystemOptions = { ...plan.machine, drivers: [...drivers.values()].map((d) => d.driver) };
  // Loaded only with --trace: an untraced run does not pay for the recorder.
  const trace = plan.settings.trace;
  const recorder = trace === undefined ? null : new (await import('../trace/recorder.js')).TraceRecorder(trace);
  const sys = await VirtioSystem.create(recorder ? recorder.systemOptions(opts) : opts).catch((err: unknown) => {
    recorder?.close();
    throw err;
  });
  recorder?.attachPm(sys.dpm);
  const machine = sys.machine;
  const ctx: RunContext = { settings: plan.settings, sys, machine, virtioBus: sys.kernel.virtioBus, devices: [], pm: [], errors: [] };
  try {
    for (const step of plan.steps) {
      try {
        await step.run(ctx);
      } catch (err) {
        ctx.errors.push(`${step.name}: ${describe(err)}`);
        // A dead or closed machine makes every later step meaningless.
        if (err instanceof BusError) break;
      }
    }
    return report(ctx);
  } finally {
    await machine.close();
    recorder?.close();
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
}

function report(ctx: RunContext): RunReport {
  const devices = ctx.devices.map(({ slot, vdev, transport }): DeviceReport => {
    let status = -1;
    try {
      status = vdev.config.getStatus(vdev);
    } catch (err) {
      ctx.errors.push(`slot ${slot}: status read failed: ${describe(err)}`);
    }
    const entry = driverForDeviceId(vdev.id.device);
    return {
      slot,
      deviceId: vdev.id.device,
      name: deviceName(vdev.id.device),
      dev: vdev.name,
      driver: vdev.driver?.name ?? null,
      transport: transport as TransportKind,
      status,
      features: featureHex(vdev.features),
      io: entry ? entry.stats(vdev) : { requests: 0, bytes: 0, errors: 0 },
    };
  });
  const warnings = [
    ...kernel.warnings.map((w) => `${w.dev}: ${w.kind} ${w.what} in ${w.where}`),
    ...kernel.messages.filter((m) => m.level === 'err').map((m) => `${m.dev}: ${m.msg}`),
    ...ctx.errors,
  ];
  const ioErrors = devices.reduce((n, d) => n + d.io.errors, 0);
  // Kernel error messages are reported but do not decide the run by
  // themselves (an injected or refused PM callback logs one by design): the
  // run fails on WARN_ONs, step errors (a device not bound, or not working
  // after a cycle) and I/O errors.
  const errs = kernel.warnings.length + ctx.errors.length;
  const r: RunReport = { ok: errs === 0 && ioErrors === 0, devices, warnings };
  if (ctx.settings.pm || ctx.pm.length) r.pm = ctx.pm;
  return r;
}

export function formatJson(r: RunReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/** One summary line per device. */
export function formatDevice(d: DeviceReport): string {
  return (
    `slot ${d.slot}: ${d.dev} ${d.name} (${d.transport}) driver ${d.driver ?? '-'}` +
    `  status 0x${d.status.toString(16).padStart(2, '0')} ${d.status >= 0 ? statusString(d.status) : '?'}` +
    `  features ${d.features}` +
    `  io ${d.io.requests} requests, ${d.io.bytes} bytes, ${d.io.errors} errors`
  );
}

export function formatText(r: RunReport): string {
  const lines: string[] = [];
  if (r.devices.length === 0) lines.push('no virtio devices found');
  for (const d of r.devices) lines.push(formatDevice(d));
  for (const c of r.pm ?? []) {
    const failed = c.phases.filter((p) => p.result !== '0');
    lines.push(
      `${c.kind} cycle ${c.cycle} (power ${c.power}): ${c.result === '0' ? 'ok' : `aborted ${c.result}${c.failedStep ? ` in ${c.failedStep}` : ''}`}, ` +
        `${c.phases.length} callbacks${failed.length ? `, failed: ${failed.map((p) => `${p.phase}@${p.slot} ${p.result}`).join(' ')}` : ''}` +
        `, devices ${c.devicesOk ? 'ok' : 'NOT ok'}`,
    );
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(r.ok ? 'ok' : 'FAILED');
  return `${lines.join('\n')}\n`;
}

export const command: CliCommand = {
  name: 'run',
  summary: 'start a machine, probe its devices with the model drivers and do I/O',
  usage:
    '[--device SPEC]... [--transport mmio|mmio-legacy|ccw] [--bus worker|inthread] [--bytes N]\n' +
    '        [--pm suspend|hibernate [--cycles N] [--power retain|reset|fresh] [--fail PHASE:SLOT[:ERRNO]]...] [--json] [--trace FILE]\n' +
    '   or: virtio-emu run --scenario FILE.json [--json] [--trace FILE]',
  help: RUN_OPTIONS.map((o) => o.help).join('\n'),
  options: Object.fromEntries(RUN_OPTIONS.map((o) => [o.name, o.spec])),
  async run(values) {
    const settings = parseSettings(values);
    if (settings.scenario !== undefined) {
      const { runScenarioCommand } = await import('../scenario/run-scenario.js');
      return runScenarioCommand(settings);
    }
    const progress = settings.pm ? progressBar(settings.cycles, { json: settings.json }) : null;
    if (progress) settings.onCycle = (done, total) => progress.update(done, total);
    let r: RunReport;
    try {
      r = await executePlan(buildPlan(settings));
    } finally {
      progress?.end();
    }
    process.stdout.write(settings.json ? formatJson(r) : formatText(r));
    return r.ok ? 0 : 1;
  },
};
