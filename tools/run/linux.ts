// `virtio-emu run --kernel linux`: the same run on Linux 6.12 in
// WebAssembly (linux/). The machine, the PM core and the report are the
// model run's; what differs is the kernel: its probe (Linux's own
// virtio_mmio and drivers), its I/O check (the rng read as /dev/hwrng
// does, the clock read by the C virtio-rtc driver) and its log.
import type { IoStats } from '../../core/drivers/index.js';
import type { PmInjection } from '../../core/pm/dpm.js';
import { errnoName } from '../../core/uapi/errno.js';
import { featureHex } from '../../core/uapi/features.js';
import { deviceName } from '../../core/uapi/ids.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { LINUX_DRIVER_NAMES, bootLinuxSystem, type LinuxDriverSpec, type LinuxSystem } from '../../linux/host/index.js';
import { assembleReport, type DeviceReport, type RunReport } from './execute.js';
import { betweenCycles, countPmCycle, newPmSummary, pmCycleReport, type PmLog, type RunSettings } from './plan.js';

/** Device types the Linux build has a driver for. */
export const LINUX_DEVICE_TYPES = ['rng', 'rtc'] as const;

interface LinuxRun extends PmLog {
  readonly sys: LinuxSystem;
  readonly io: Map<number, IoStats>;
  readonly errors: string[];
  errorsDropped: number;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
}

/** The I/O check of every device bound to a driver it knows (virtio_rng, the clocks); returns the problems found. */
function exercise(run: LinuxRun, bytes: number): string[] {
  const failures: string[] = [];
  for (const d of run.sys.kernel.devices()) {
    if (!d.driver) continue;
    const io = run.io.get(d.slot) ?? { requests: 0, bytes: 0, errors: 0 };
    run.io.set(d.slot, io);
    try {
      if (d.driver === 'virtio_rng') {
        const got = run.sys.kernel.rngRead(d.slot, bytes).length;
        io.requests++;
        io.bytes += got;
        if (got !== bytes) {
          io.errors++;
          failures.push(`slot ${d.slot}: ${d.dev}: rng read ${got} of ${bytes} bytes`);
        }
      } else if (d.driver === 'virtio_rtc' || d.driver === 'virtio_rtc_noirq') {
        const t = run.sys.kernel.rtcRead(d.slot);
        io.requests++;
        if (typeof t === 'number') {
          io.errors++;
          failures.push(`slot ${d.slot}: ${d.dev}: clock read failed with ${errnoName(t)}`);
        } else io.bytes += 8;
      }
    } catch (err) {
      io.errors++;
      failures.push(`slot ${d.slot}: ${d.dev}: ${describe(err)}`);
    }
  }
  return failures;
}

function addErrors(run: LinuxRun, lines: readonly string[], cap: number): void {
  for (const l of lines) {
    if (run.errors.length < cap) run.errors.push(l);
    else run.errorsDropped++;
  }
}

/** Run `settings` (devices, I/O, PM cycles) with Linux as the kernel. */
export async function executeLinuxRun(settings: RunSettings, errorCap: number): Promise<RunReport> {
  const drivers = settings.linuxDrivers?.map((n): LinuxDriverSpec => ((LINUX_DRIVER_NAMES as readonly string[]).includes(n) ? (n as LinuxDriverSpec) : { driver: 'module', name: n }));
  const sys = await bootLinuxSystem({ devices: settings.devices, bus: settings.bus, ...(drivers ? { drivers } : {}) });
  const run: LinuxRun = { sys, io: new Map(), errors: [], errorsDropped: 0, pm: [], pmSummary: newPmSummary(), lastPm: null };
  try {
    for (const d of sys.kernel.devices()) {
      if (!d.driver) run.errors.push(`slot ${d.slot}: ${d.dev ?? 'virtio-mmio'} (${deviceName(d.deviceId)}) not bound`);
    }
    run.errors.push(...exercise(run, settings.ioBytes));
    if (settings.pm) {
      const kind = settings.pm;
      const power = settings.power ?? (kind === 'suspend' ? 'retain' : 'fresh');
      const mode = settings.hibernateMode ?? 'shutdown';
      for (const f of settings.fails) sys.injectPmFailure(f);
      const fired = new Set<PmInjection>();
      for (let cycle = 1; cycle <= settings.cycles; cycle++) {
        const t = kind === 'suspend' ? sys.suspend({ power }) : sys.hibernate({ power, mode });
        const failures = exercise(run, settings.ioBytes);
        addErrors(
          run,
          failures.map((f) => `${kind} cycle ${cycle}: ${f}`),
          errorCap,
        );
        for (const f of settings.fails) if (t.records.some((p) => p.phase === f.phase && p.slot === f.device)) fired.add(f);
        countPmCycle(run, pmCycleReport(t, cycle, power, failures.length === 0));
        sys.dpm.trimRecord();
        settings.onCycle?.(cycle, settings.cycles);
        if (cycle < settings.cycles && (await betweenCycles(settings))) break;
      }
      if (!settings.stopRequested?.()) for (const f of settings.fails) if (!fired.has(f)) run.errors.push(`--fail ${f.phase}:${f.device}: no such callback ran in a ${kind} cycle`);
    }
  } catch (err) {
    run.errors.push(describe(err));
  }
  try {
    return report(run, settings);
  } finally {
    await sys.close();
  }
}

function report(run: LinuxRun, settings: RunSettings): RunReport {
  const k = run.sys.kernel;
  const transports = new Map(settings.devices.map((d, i) => [d.slot ?? i, (d.transport ?? settings.transport) as TransportKind]));
  let devices: DeviceReport[] = [];
  if (!k.dead) {
    devices = k.devices().map((d) => ({
      slot: d.slot,
      deviceId: d.deviceId,
      name: deviceName(d.deviceId),
      dev: d.dev ?? `virtio-mmio.${d.slot}`,
      driver: d.driver,
      transport: transports.get(d.slot) ?? 'mmio',
      status: d.status,
      features: featureHex(d.features),
      io: run.io.get(d.slot) ?? { requests: 0, bytes: 0, errors: 0 },
    }));
  }
  const kernels = [k, ...(run.sys.lastBootKernel && run.sys.lastBootKernel !== k ? [run.sys.lastBootKernel] : [])];
  return assembleReport({
    devices,
    warnings: kernels.flatMap((x) => x.warnings.map((w) => `${w.dev}: ${w.kind} ${w.what} in ${w.where} (${w.file}:${w.line})`)),
    warningsDropped: 0,
    errorMessages: kernels.flatMap((x) => x.log.filter((m) => m.level === 'err').map((m) => `${m.dev}: ${m.msg}`)),
    messagesDropped: 0,
    errors: run.errors,
    errorsDropped: run.errorsDropped,
    pmRun: settings.pm !== null,
    log: run,
    settings,
  });
}
