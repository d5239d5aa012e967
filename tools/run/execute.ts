// Executing a run plan on a fresh system, and the report it yields.
import { BusError } from '../../core/bus.js';
import { driverForDeviceId, drivers, type IoStats } from '../../core/drivers/index.js';
import { formatWarning, kernel } from '../../core/kernel.js';
import { featureHex } from '../../core/uapi/features.js';
import { deviceName } from '../../core/uapi/ids.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { VirtioSystem, type SystemOptions } from '../system.js';
import { RUN_LIMITS } from '../limits.js';
import { UsageError } from '../usage-error.js';
import { newPmSummary, type PmCycleReport, type PmLog, type PmSummary, type RunContext, type RunPlan, type RunSettings } from './plan.js';

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
  /** The run wrote a snapshot file, or continued from one (`at`: the step or cycle after which). */
  checkpoint?: { kind: 'snapshot' | 'restore'; file: string; at: number };
  devices: DeviceReport[];
  pm?: PmCycleReport[];
  /** Present when pm[] does not list every cycle: what all of them did. */
  pmSummary?: PmSummary & { note: string };
  warnings: string[];
  /** The user stopped the run (SIGINT, SIGTERM) after `cyclesDone` of its `cycles` cycles; the rest of the report is what ran. */
  interrupted?: { signal: string; cyclesDone: number; cycles: number };
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
  const ctx: RunContext = {
    settings: plan.settings,
    sys,
    get machine() {
      return sys.machine;
    },
    virtioBus: sys.kernel.virtioBus,
    devices: [],
    pm: [],
    pmSummary: newPmSummary(),
    lastPm: null,
    errors: [],
    errorsDropped: 0,
  };
  const point = plan.settings.point;
  try {
    await point?.prepare?.(ctx);
    for (const step of plan.steps) {
      if (plan.settings.stopRequested?.()) break;
      try {
        await step.run(ctx);
      } catch (err) {
        // A snapshot file that cannot be used ends the command (exit 2).
        if (err instanceof UsageError) throw err;
        ctx.errors.push(`${step.name}: ${describe(err)}`);
        // A dead or closed machine makes every later step meaningless.
        if (err instanceof BusError) break;
      }
    }
    if (point && !point.done) ctx.errors.push(`${point.report.kind}: the run stopped before it reached its point (${point.at})`);
    const r = report(ctx);
    const { ok, ...rest } = r;
    return point ? { ok, checkpoint: point.report, ...rest } : r;
  } finally {
    await sys.close();
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
  return assembleReport({
    devices,
    warnings: kernel.warnings.map(formatWarning),
    warningsDropped: kernel.warningsDropped,
    errorMessages: kernel.messages.filter((m) => m.level === 'err').map((m) => `${m.dev}: ${m.msg}`),
    messagesDropped: kernel.dropped,
    errors: ctx.errors,
    errorsDropped: ctx.errorsDropped,
    pmRun: ctx.settings.pm !== null,
    log: ctx,
    settings: ctx.settings,
  });
}

/** What either kernel's run hands to the report. */
export interface ReportParts {
  devices: DeviceReport[];
  /** WARN_ONs and harness warnings, one line each: they fail the run. */
  warnings: string[];
  warningsDropped: number;
  /** Kernel messages at error level: reported, but they decide nothing by themselves. */
  errorMessages: string[];
  messagesDropped: number;
  /** Step problems: they fail the run. */
  errors: string[];
  errorsDropped: number;
  pmRun: boolean;
  log: PmLog;
  /** Says whether the user stopped the run, and how many cycles it was to run. */
  settings: Pick<RunSettings, 'stopRequested' | 'pm' | 'cycles'>;
}

/** The report, bounded: at most RUN_LIMITS.reportWarnings lines of problems, the rest counted. */
export function assembleReport(p: ReportParts): RunReport {
  const all = [...p.warnings, ...p.errorMessages, ...p.errors];
  const unlisted = Math.max(0, all.length - RUN_LIMITS.reportWarnings) + p.errorsDropped + p.messagesDropped;
  const warnings = all.slice(0, RUN_LIMITS.reportWarnings);
  if (unlisted) warnings.push(`... and ${unlisted} more problems and kernel messages not listed`);
  const ioErrors = p.devices.reduce((n, d) => n + d.io.errors, 0);
  // Kernel error messages are reported but do not decide the run by
  // themselves (an injected or refused PM callback logs one by design): the
  // run fails on WARN_ONs, step errors (a device not bound, or not working
  // after a cycle) and I/O errors.
  const errs = p.warnings.length + p.warningsDropped + p.errors.length + p.errorsDropped;
  const r: RunReport = { ok: errs === 0 && ioErrors === 0, devices: p.devices, warnings };
  if (p.pmRun || p.log.pm.length) r.pm = p.log.pm;
  const s = p.log.pmSummary;
  if (s.listed < s.cycles) {
    r.pmSummary = {
      ...s,
      note: `pm lists the first ${RUN_LIMITS.reportCycles} cycles and later ones that failed (up to ${2 * RUN_LIMITS.reportCycles} in all); every cycle is counted here`,
    };
  }
  const signal = p.settings.stopRequested?.() ?? null;
  if (signal !== null) r.interrupted = { signal, cyclesDone: s.cycles, cycles: p.settings.pm ? p.settings.cycles : 0 };
  return r;
}
