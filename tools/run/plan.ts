// The run engine's plan: what a run is asked to do (RunSettings), the steps
// it takes against one system (probe, I/O, PM cycles) and the context they
// share. `virtio-emu run` builds a plan from its options, a scenario file
// from its steps; both execute it with executePlan().
import { driverForDeviceId, type ExerciseOptions } from '../../core/drivers/index.js';
import type { PmCallRecord, PmInjection } from '../../core/pm/dpm.js';
import type { HibernationMode, PmTransition } from '../../core/pm/system.js';
import { errnoName } from '../../core/uapi/errno.js';
import { deviceName } from '../../core/uapi/ids.js';
import type { VirtioBus, VirtioDevice } from '../../core/virtio.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { modelOptions } from '../../emulator/board.js';
import { parseBlkOptions } from '../../emulator/devices/blk/options.js';
import type { BusKind, Machine, MachineDevice } from '../../emulator/machine.js';
import { RUN_LIMITS } from '../limits.js';
import type { PowerModel, SystemOptions, VirtioSystem } from '../system.js';

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
  /** hibernation_mode for hibernate cycles (default: shutdown, as Linux without platform hibernation ops). */
  hibernateMode: HibernationMode | null;
  /** PM callbacks made to fail. */
  fails: PmInjection[];
  /** Progress of long runs (cycle done of total). */
  onCycle?: (cycle: number, total: number) => void;
  /**
   * The signal the user sent to stop the run (SIGINT, SIGTERM), or null:
   * asked between cycles (see betweenCycles); the run then reports what it did.
   */
  stopRequested?: () => string | null;
  /** A scenario file to run instead of the options' plan. */
  scenario?: string;
  /** Record register accesses, interrupts and PM callbacks to this file. */
  trace?: string;
  /** The driver side: the TypeScript model (default) or Linux 6.12 in WebAssembly. */
  kernel: 'model' | 'linux';
  /** With the Linux kernel: the drivers to register, in match order (default its built-in order). */
  linuxDrivers?: string[];
  /** --snapshot-at N: the point (a PM cycle, or a scenario step) after which a snapshot file is written. */
  snapshotAt?: number;
  /** Where the run writes a snapshot file, or puts the machine restored from one under the kernel (tools/run/checkpoint.ts). */
  point?: RunPoint;
}

/**
 * A point of a run: after scenario step `at` (its index), or after PM cycle
 * `at` of an option run and the I/O check that follows it (0: after the
 * first I/O check, before any cycle).
 */
export interface RunPoint {
  readonly at: number;
  /** What the report says about it. */
  readonly report: { kind: 'snapshot' | 'restore'; file: string; at: number };
  /** Once the system is up, before the first step. */
  prepare?(ctx: RunContext): Promise<void>;
  /** At the point (synchronous: it may be in the middle of a step). A UsageError ends the command as a usage error. */
  reached(ctx: RunContext): void;
  /** reached() ran. */
  done: boolean;
}

/** Run the settings' point if the run is at it. */
export function atPoint(ctx: RunContext, at: number): void {
  const p = ctx.settings.point;
  if (!p || p.at !== at || p.done) return;
  p.done = true;
  p.reached(ctx);
}

export function defaultSettings(): RunSettings {
  return { devices: [], transport: 'mmio', json: false, bus: 'worker', ioBytes: 4096, pm: null, cycles: 1, power: null, hibernateMode: null, fails: [], kernel: 'model' };
}

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
  /** Hibernation: hibernation_mode. */
  mode?: HibernationMode;
  /**
   * Hibernation, platform mode: the error of hibernation_platform_enter() that
   * power_down() powered off through anyway (the image was restored on the
   * next boot), as "-EIO in poweroff_noirq".
   */
  platformEnterError?: string;
  phases: { phase: string; slot: number | null; result: string; kernel?: 'boot' }[];
  /** Every device did its I/O again after this cycle. */
  devicesOk: boolean;
}

/**
 * Every PM cycle of a run, counted. The report lists the first
 * RUN_LIMITS.reportCycles cycles in full and, after those, only cycles that
 * failed (up to as many again), so its size does not grow with --cycles.
 */
export interface PmSummary {
  /** Cycles run. */
  cycles: number;
  /** Cycles listed in the report's pm[]. */
  listed: number;
  /** Cycles per result ("0", "-EBUSY", ...). */
  results: Record<string, number>;
  /** Cycles after which some device did not do its I/O. */
  devicesNotOk: number;
}

export interface RunContext {
  readonly settings: RunSettings;
  readonly sys: VirtioSystem;
  /** The system's machine (a new one once a restore put it under the kernel). */
  readonly machine: Machine;
  /** The modelled kernel's virtio bus, with every driver registered. */
  readonly virtioBus: VirtioBus;
  devices: RunDevice[];
  /** The cycles listed in the report (see PmSummary). */
  readonly pm: PmCycleReport[];
  readonly pmSummary: PmSummary;
  /** The last cycle run, listed or not. */
  lastPm: PmCycleReport | null;
  /** One line per problem; any entry makes the run fail. Cycles add theirs through cycleErrors(). */
  readonly errors: string[];
  /** Problems of PM cycles not kept in `errors` (past RUN_LIMITS.reportWarnings). */
  errorsDropped: number;
}

export function newPmSummary(): PmSummary {
  return { cycles: 0, listed: 0, results: {}, devicesNotOk: 0 };
}

/** Count a finished cycle, list it if the report has room for it, and let the PM core forget its records. */
export function recordPmCycle(ctx: RunContext, c: PmCycleReport): void {
  countPmCycle(ctx, c);
  // The transition's records are in c.phases: the PM core need not keep them.
  ctx.sys.dpm.trimRecord();
}

/** Where a run keeps its cycles: listed ones, the summary of all, the last. */
export interface PmLog {
  readonly pm: PmCycleReport[];
  readonly pmSummary: PmSummary;
  lastPm: PmCycleReport | null;
}

/** Count a cycle, and list it if the report still lists cycles of its kind (see PmSummary). */
export function countPmCycle(ctx: PmLog, c: PmCycleReport): void {
  const s = ctx.pmSummary;
  s.cycles++;
  s.results[c.result] = (s.results[c.result] ?? 0) + 1;
  if (!c.devicesOk) s.devicesNotOk++;
  const failed = c.result !== '0' || !c.devicesOk;
  if (s.cycles <= RUN_LIMITS.reportCycles || (failed && s.listed < 2 * RUN_LIMITS.reportCycles)) {
    ctx.pm.push(c);
    s.listed++;
  }
  ctx.lastPm = c;
}

/** Problems a cycle found: kept in ctx.errors up to RUN_LIMITS.reportWarnings, counted after. */
export function cycleErrors(ctx: RunContext, lines: readonly string[]): void {
  for (const l of lines) {
    if (ctx.errors.length < RUN_LIMITS.reportWarnings) ctx.errors.push(l);
    else ctx.errorsDropped++;
  }
}

/** Longest stretch of cycles without a turn of the event loop, ms: a signal's handler runs only there. */
const CYCLE_YIELD_MS = 20;
let lastYield = 0;

/**
 * Between two cycles of a long run: every CYCLE_YIELD_MS, let the event loop
 * run (a SIGINT handler only runs there); true when the user asked to stop.
 */
export async function betweenCycles(settings: RunSettings): Promise<boolean> {
  if (!settings.stopRequested) return false;
  const now = performance.now();
  if (now - lastYield >= CYCLE_YIELD_MS) {
    lastYield = now;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return settings.stopRequested() !== null;
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

/**
 * What the I/O check of the device in `slot` may do: a blk disk backed by
 * the user's image file is only read, unless its scratch= option names
 * sectors the check may overwrite; a RAM disk is written at its end and
 * put back (or written in its scratch range).
 */
export function exerciseOptions(ctx: RunContext, slot: number, bytes: number): ExerciseOptions {
  const spec = ctx.machine.config.devices[slot];
  if (spec?.type !== 'blk') return { bytes };
  const o = parseBlkOptions(modelOptions(spec));
  return { bytes, blkWrites: o.scratch ?? (o.file !== undefined ? null : 'end') };
}

/** Run each bound device's default I/O; returns the problems found. */
export function exerciseAll(ctx: RunContext): string[] {
  const failures: string[] = [];
  for (const { vdev, slot } of ctx.devices) {
    if (!vdev.driver) continue;
    const entry = driverForDeviceId(vdev.id.device);
    if (!entry) continue;
    failures.push(...entry.exercise(vdev, exerciseOptions(ctx, slot, ctx.settings.ioBytes)).failures);
  }
  return failures;
}

/** The default I/O of each bound device's driver. */
export const ioStep: RunStep = {
  name: 'io',
  run(ctx) {
    ctx.errors.push(...exerciseAll(ctx));
    atPoint(ctx, 0);
  },
};

export function phaseRecord(r: PmCallRecord): PmCycleReport['phases'][number] {
  return { phase: r.phase, slot: r.slot ?? null, result: errnoName(r.result), ...(r.kernel ? { kernel: r.kernel } : {}) };
}

/** One sleep/wake cycle on the system: suspend, or hibernate in `mode`. */
export function pmCycle(sys: VirtioSystem, kind: 'suspend' | 'hibernate', power: PowerModel, mode: HibernationMode): PmTransition {
  return kind === 'suspend' ? sys.suspend({ power }) : sys.hibernate({ power, mode });
}

/** A cycle's line in the report. */
export function pmCycleReport(t: PmTransition, cycle: number, power: PowerModel, devicesOk: boolean): PmCycleReport {
  const e = t.platformEnterError;
  return {
    kind: t.kind,
    cycle,
    result: errnoName(t.result),
    ...(t.failedStep ? { failedStep: t.failedStep } : {}),
    power,
    ...(t.mode ? { mode: t.mode } : {}),
    ...(e ? { platformEnterError: `${errnoName(e.result)} in ${e.step}` } : {}),
    phases: t.records.map(phaseRecord),
    devicesOk,
  };
}

/** Sleep and wake `cycles` times; every device must do its I/O again after each. */
export function pmStep(kind: 'suspend' | 'hibernate', cycles: number, power: PowerModel, fails: PmInjection[], mode: HibernationMode = 'shutdown'): RunStep {
  return {
    name: `pm ${kind}`,
    async run(ctx) {
      for (const f of fails) ctx.sys.injectPmFailure(f);
      const fired = new Set<PmInjection>();
      for (let cycle = 1; cycle <= cycles; cycle++) {
        const t = pmCycle(ctx.sys, kind, power, mode);
        const failures = exerciseAll(ctx);
        cycleErrors(ctx, failures.map((f) => `${kind} cycle ${cycle}: ${f}`));
        for (const f of fails) if (t.records.some((p) => p.phase === f.phase && p.slot === f.device)) fired.add(f);
        recordPmCycle(ctx, pmCycleReport(t, cycle, power, failures.length === 0));
        ctx.settings.onCycle?.(cycle, cycles);
        atPoint(ctx, cycle);
        if (cycle < cycles && (await betweenCycles(ctx.settings))) return;
      }
      for (const f of fails) {
        if (!fired.has(f)) ctx.errors.push(`--fail ${f.phase}:${f.device}: no such callback ran in a ${kind} cycle`);
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
    steps.push(pmStep(settings.pm, settings.cycles, power, settings.fails, settings.hibernateMode ?? 'shutdown'));
  }
  return { settings, machine, steps };
}
