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
import { errnoName } from '../../core/uapi/errno.js';
import { featureHex } from '../../core/uapi/features.js';
import { deviceName } from '../../core/uapi/ids.js';
import { statusString } from '../../core/uapi/status.js';
import { VirtioBus, registerVirtioDriver } from '../../core/virtio.js';
import { virtioMmioScan, type MmioScanResult, type VirtioMmioDevice } from '../../transports/mmio.js';
import { Machine, type BusKind, type MachineDevice, type MachineOptions } from '../machine.js';
import type { TransportKind } from '../platform.js';
import { UsageError, boolOpt, intOpt, stringOpt, stringsOpt, type CliCommand, type CliOptions, type CliValues } from './command.js';
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
}

export function defaultSettings(): RunSettings {
  return { devices: [], transport: 'mmio', json: false, bus: 'worker', ioBytes: 4096 };
}

export interface RunOption {
  name: string;
  spec: CliOptions[string];
  /** Help line(s), already aligned. */
  help: string;
  apply(settings: RunSettings, values: CliValues): void;
}

const RUN_TRANSPORTS: TransportKind[] = ['mmio', 'mmio-legacy'];

function checkTransport(t: string, what: string): TransportKind {
  if (!RUN_TRANSPORTS.includes(t as TransportKind)) {
    throw new UsageError(`${what}: transport '${t}' is not supported by run (expected ${RUN_TRANSPORTS.join(' or ')})`);
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
    help: '--transport T      mmio (default) or mmio-legacy, for devices that name none',
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
    name: 'json',
    spec: { type: 'boolean' },
    help: '--json             print one JSON document instead of the summary',
    apply(s, v) {
      s.json = boolOpt(v, 'json');
    },
  },
];

export function parseSettings(values: CliValues): RunSettings {
  const s = defaultSettings();
  for (const o of RUN_OPTIONS) o.apply(s, values);
  if (s.devices.length === 0) s.devices = [{ type: 'rng' }];
  s.devices = s.devices.map((d) => ({ ...d, transport: checkTransport(d.transport ?? s.transport, `--device ${d.type}`) }));
  return s;
}

// ---------------------------------------------------------------------------
// Plan and steps

/** One device as the run sees it. */
export interface RunDevice {
  slot: number;
  vdev: VirtioMmioDevice;
}

export interface RunContext {
  readonly settings: RunSettings;
  readonly machine: Machine;
  /** The modelled kernel's virtio bus, with every driver registered. */
  readonly virtioBus: VirtioBus;
  devices: RunDevice[];
  scan: MmioScanResult | null;
  /** One line per problem; any entry makes the run fail. */
  readonly errors: string[];
}

export interface RunStep {
  name: string;
  run(ctx: RunContext): void | Promise<void>;
}

export interface RunPlan {
  settings: RunSettings;
  machine: MachineOptions;
  steps: RunStep[];
}

/** Scan the windows; drivers bind as devices register (virtio_mmio_probe → bus probe). */
export const probeStep: RunStep = {
  name: 'probe',
  run(ctx) {
    const scan = virtioMmioScan(ctx.machine.bus, ctx.machine.config.slots, ctx.virtioBus);
    ctx.scan = scan;
    for (const r of scan.slots) {
      if (r.ret) ctx.errors.push(`slot ${r.slot}: virtio_mmio probe failed: ${errnoName(r.ret)}${r.message ? ` (${r.message})` : ''}`);
      else if (r.device) ctx.devices.push({ slot: r.slot, vdev: r.device });
    }
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

/** The default I/O of each bound device's driver. */
export const ioStep: RunStep = {
  name: 'io',
  run(ctx) {
    for (const { vdev } of ctx.devices) {
      if (!vdev.driver) continue;
      const entry = driverForDeviceId(vdev.id.device);
      if (!entry) continue;
      const r = entry.exercise(vdev, { bytes: ctx.settings.ioBytes });
      ctx.errors.push(...r.failures);
    }
  },
};

export function buildPlan(settings: RunSettings): RunPlan {
  const machine: MachineOptions = {
    devices: settings.devices,
    bus: settings.bus,
  };
  return { settings, machine, steps: [probeStep, ioStep] };
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
  warnings: string[];
}

export async function executePlan(plan: RunPlan): Promise<RunReport> {
  kernel.clear();
  const machine = await Machine.create(plan.machine);
  const virtioBus = new VirtioBus();
  for (const d of drivers.values()) registerVirtioDriver(d.driver, virtioBus);
  const ctx: RunContext = { settings: plan.settings, machine, virtioBus, devices: [], scan: null, errors: [] };
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
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
}

function report(ctx: RunContext): RunReport {
  const devices = ctx.devices.map(({ slot, vdev }): DeviceReport => {
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
      transport: vdev.version === 1 ? 'mmio-legacy' : 'mmio',
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
  return { ok: warnings.length === 0 && ioErrors === 0, devices, warnings };
}

export function formatJson(r: RunReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

export function formatText(r: RunReport): string {
  const lines: string[] = [];
  if (r.devices.length === 0) lines.push('no virtio devices found');
  for (const d of r.devices) {
    lines.push(
      `slot ${d.slot}: ${d.dev} ${d.name} (${d.transport}) driver ${d.driver ?? '-'}` +
        `  status 0x${d.status.toString(16).padStart(2, '0')} ${d.status >= 0 ? statusString(d.status) : '?'}` +
        `  features ${d.features}` +
        `  io ${d.io.requests} requests, ${d.io.bytes} bytes, ${d.io.errors} errors`,
    );
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(r.ok ? 'ok' : 'FAILED');
  return `${lines.join('\n')}\n`;
}

export const command: CliCommand = {
  name: 'run',
  summary: 'start a machine, probe its devices with the model drivers and do I/O',
  usage: '[--device SPEC]... [--transport mmio|mmio-legacy] [--bus worker|inthread] [--bytes N] [--json]',
  help: RUN_OPTIONS.map((o) => o.help).join('\n'),
  options: Object.fromEntries(RUN_OPTIONS.map((o) => [o.name, o.spec])),
  async run(values) {
    const settings = parseSettings(values);
    const r = await executePlan(buildPlan(settings));
    process.stdout.write(settings.json ? formatJson(r) : formatText(r));
    return r.ok ? 0 : 1;
  },
};
