// virtio-emu run: start a machine, probe every virtio-mmio window with the
// model's drivers, do some I/O on each bound device and report.
//
// RUN_OPTIONS has one entry per command-line option: its parseArgs spec, its
// help line and how it changes RunSettings. The run engine (tools/run/)
// does the rest: buildPlan() turns settings into named steps, executePlan()
// runs them against one system, formatText()/formatJson() print the report.
// A new feature is usually one option entry, a settings field and a step.
import { driverByName, driverNames } from '../../core/drivers/index.js';
import type { PmInjection } from '../../core/pm/dpm.js';
import { isPmCallbackName, PM_CALLBACKS } from '../../core/pm/pm.js';
import { HIBERNATION_MODES, type HibernationMode } from '../../core/pm/system.js';
import { EIO, errnoByName } from '../../core/uapi/errno.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { INSTALL_HINT } from '../../linux/build/config.js';
import { BUILD_COMMAND, linuxBuilt } from '../../linux/host/index.js';
import { executePlan, type RunReport } from '../run/execute.js';
import { LINUX_DEVICE_TYPES, executeLinuxRun } from '../run/linux.js';
import { formatJson, formatText } from '../run/format.js';
import { buildPlan, defaultSettings, type RunSettings } from '../run/plan.js';
import { readRunSnapshot, restorePoint, snapshotPoint } from '../run/checkpoint.js';
import type { StoredOptions } from '../run/snapshot-file.js';
import { resolve } from 'node:path';
import { consoleOutConflictsWithJson } from '../scenario/preflight.js';
import { progressBar } from '../scenario/progress.js';
import { POWER_MODELS, type PowerModel } from '../system.js';
import { PLATFORM } from '../../core/bus.js';
import { RUN_LIMITS } from '../limits.js';
import { UsageError, boolOpt, intOpt, shown, stringOpt, stringsOpt, type CliCommand, type CliOptions, type CliValues } from './args.js';
import { checkDevices, parseDeviceArg } from './device-arg.js';
import { listenForStop, signalExitCode } from './stop-signal.js';


/** "suspend_noirq:1[:EIO]" → an injection (errno by name or number, default EIO). */
export function parseFail(spec: string): PmInjection {
  const [phase, slot, err, ...rest] = spec.split(':');
  if (rest.length || phase === undefined || slot === undefined)
    throw new UsageError(`--fail: expected PHASE:SLOT[:ERRNO], got '${shown(spec)}'`);
  if (!isPmCallbackName(phase)) throw new UsageError(`--fail: unknown PM phase '${shown(phase)}' (known: ${PM_CALLBACKS.join(', ')})`);
  if (!/^\d{1,9}$/.test(slot)) throw new UsageError(`--fail: slot must be a number, got '${shown(slot)}'`);
  let errno = EIO;
  if (err !== undefined) {
    const byName = errnoByName(err);
    const n = /^-?\d+$/.test(err) ? Math.abs(Number(err)) : byName;
    if (!n || n > 4095) throw new UsageError(`--fail: unknown errno '${shown(err)}'`);
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
    throw new UsageError(`${what}: transport '${shown(t)}' is not supported by run (expected ${RUN_TRANSPORTS.join(', ')})`);
  }
  return t as TransportKind;
}

export const RUN_OPTIONS: RunOption[] = [
  {
    name: 'device',
    spec: { type: 'string', multiple: true },
    help: `--device SPEC      TYPE[,transport=T][,slot=N][,k=v|flag]; repeatable, at most ${PLATFORM.MMIO_SLOTS_DEFAULT} (default: one rng)\n` +
      '                   blk,file=IMG uses an existing image (create=SIZE makes a missing one); the I/O check\n' +
      '                   only reads a file-backed disk unless scratch=SECTOR+COUNT names sectors it may overwrite',
    apply(s, v) {
      const list = stringsOpt(v, 'device');
      if (list.length > PLATFORM.MMIO_SLOTS_DEFAULT) throw new UsageError(`--device: at most ${PLATFORM.MMIO_SLOTS_DEFAULT} devices (one per slot), got ${list.length}`);
      s.devices = list.map(parseDeviceArg);
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
    name: 'kernel',
    spec: { type: 'string' },
    help: '--kernel K         the driver side: model (default) or linux (Linux 6.12 in WebAssembly: rng and rtc, mmio and mmio-legacy)',
    apply(s, v) {
      const k = stringOpt(v, 'kernel');
      if (k === undefined) return;
      if (k !== 'model' && k !== 'linux') throw new UsageError(`--kernel: expected model or linux, got '${shown(k)}'`);
      s.kernel = k;
    },
  },
  {
    name: 'linux-driver',
    spec: { type: 'string', multiple: true },
    help: '--linux-driver N   with --kernel linux: register driver N (virtio_rng, virtio_rtc_noirq, virtio_rtc, or one built in with build:linux --driver), in match order; repeatable',
    apply(s, v) {
      const names = stringsOpt(v, 'linux-driver');
      for (const n of names) if (!/^[A-Za-z_][A-Za-z0-9_]{0,30}$/.test(n)) throw new UsageError(`--linux-driver: '${shown(n)}' is not a driver name`);
      if (names.length) s.linuxDrivers = names;
    },
  },
  {
    name: 'bus',
    spec: { type: 'string' },
    help: '--bus KIND         worker (default: devices in a worker thread) or inthread',
    apply(s, v) {
      const b = stringOpt(v, 'bus');
      if (b === undefined) return;
      if (b !== 'worker' && b !== 'inthread') throw new UsageError(`--bus: expected worker or inthread, got '${shown(b)}'`);
      s.bus = b;
    },
  },
  {
    name: 'bytes',
    spec: { type: 'string' },
    help: `--bytes N          I/O size per device, 1 to ${RUN_LIMITS.maxIoBytes} (default 4096)`,
    apply(s, v) {
      const n = intOpt(v, 'bytes', 1, RUN_LIMITS.maxIoBytes);
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
      if (k !== 'suspend' && k !== 'hibernate') throw new UsageError(`--pm: expected suspend or hibernate, got '${shown(k)}'`);
      s.pm = k;
    },
  },
  {
    name: 'cycles',
    spec: { type: 'string' },
    help: `--cycles N         sleep/wake cycles, 1 to ${RUN_LIMITS.maxCycles} (default 1), I/O checked after each;\n` +
      `                   the report lists the first ${RUN_LIMITS.reportCycles} cycles and counts the rest (pmSummary)`,
    apply(s, v) {
      const n = intOpt(v, 'cycles', 1, RUN_LIMITS.maxCycles);
      if (n !== undefined) s.cycles = n;
    },
  },
  {
    name: 'power',
    spec: { type: 'string' },
    help: '--power MODEL      device power across sleep: retain (suspend default), reset, fresh (hibernate default),\n' +
      '                   snapshot (device state saved at power-off and loaded into new devices at power-on)',
    apply(s, v) {
      const p = stringOpt(v, 'power');
      if (p === undefined) return;
      if (!(POWER_MODELS as readonly string[]).includes(p)) throw new UsageError(`--power: expected ${POWER_MODELS.join(', ')}, got '${shown(p)}'`);
      s.power = p as PowerModel;
    },
  },
  {
    name: 'hibernate-mode',
    spec: { type: 'string' },
    help: '--hibernate-mode M hibernation_mode: shutdown (default, as Linux without platform hibernation ops) or platform (poweroff phases)',
    apply(s, v) {
      const m = stringOpt(v, 'hibernate-mode');
      if (m === undefined) return;
      if (!HIBERNATION_MODES.includes(m as HibernationMode)) throw new UsageError(`--hibernate-mode: expected ${HIBERNATION_MODES.join(' or ')}, got '${m}'`);
      s.hibernateMode = m as HibernationMode;
    },
  },
  {
    name: 'fail',
    spec: { type: 'string', multiple: true },
    help: `--fail P:SLOT[:E]  make PM callback P (e.g. suspend_noirq) of SLOT fail with errno E (default EIO); at most ${RUN_LIMITS.maxFails}`,
    apply(s, v) {
      const list = stringsOpt(v, 'fail');
      if (list.length > RUN_LIMITS.maxFails) throw new UsageError(`--fail: at most ${RUN_LIMITS.maxFails} injections, got ${list.length}`);
      s.fails = list.map(parseFail);
    },
  },
  {
    name: 'scenario',
    spec: { type: 'string' },
    help: '--scenario FILE    run the steps of a scenario file (JSON of at most 1 MiB, nested at most 16 deep); combines with --json and --trace only',
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
  {
    name: 'snapshot-at',
    spec: { type: 'string' },
    help:
      '--snapshot-at N FILE  write a snapshot file after PM cycle N (0: after the first I/O check), or after\n' +
      `                   scenario step N (counted from 0); the run goes on. At most ${RUN_LIMITS.maxSnapshotFileBytes} bytes; model kernel, mmio devices`,
    apply(s, v) {
      const n = intOpt(v, 'snapshot-at', 0, RUN_LIMITS.maxCycles);
      if (n !== undefined) s.snapshotAt = n;
    },
  },
  {
    name: 'restore',
    spec: { type: 'string' },
    help: '--restore FILE     continue the run a snapshot file was taken in from its point: its steps up to there run again\n' +
      '                   (the kernel model is not in the file), then the devices and guest RAM come from FILE; takes only --json',
    apply() {},
  },
];

/** Options a scenario run takes; the file says everything else. */
const SCENARIO_OPTIONS = new Set(['scenario', 'json', 'trace', 'snapshot-at']);

/** Bad device types, options and slots, and --fail for an empty slot, are usage errors found before a worker starts. */
function preflightDevices(s: RunSettings): void {
  for (const d of s.devices) {
    const conflict = consoleOutConflictsWithJson(d.type, d.options ?? {});
    if (s.json && conflict === 'explicit') throw new UsageError(`--device ${d.type}: out=stdout would mix console output into the --json document; use out=FILE or out=none`);
    // With --json, a console without an output sink writes nowhere.
    if (s.json && conflict === 'default') d.options = { ...d.options, out: 'none' };
  }
  const slots = checkDevices(s.devices, s.transport);
  for (const f of s.fails) {
    if (typeof f.device === 'number' && !slots.includes(f.device)) {
      throw new UsageError(`--fail ${f.phase}:${f.device}: slot ${f.device} holds no device (devices are in slot${slots.length > 1 ? 's' : ''} ${slots.join(', ')})`);
    }
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
  if (s.hibernateMode && s.pm !== 'hibernate') throw new UsageError('--hibernate-mode needs --pm hibernate');
  if (s.kernel === 'linux') checkLinuxRun(s);
  else if (s.linuxDrivers) throw new UsageError('--linux-driver needs --kernel linux');
  if (s.snapshotAt !== undefined) checkSnapshotRun(s);
  preflightDevices(s);
  return s;
}

/** What --snapshot-at can save: the model kernel's runs on virtio-mmio devices, at a point the run reaches. */
function checkSnapshotRun(s: RunSettings): void {
  if (s.kernel === 'linux') throw new UsageError('--snapshot-at needs the model kernel (the Linux kernel\'s host-side state is not in a snapshot)');
  const ccw = s.devices.find((d) => d.transport === 'ccw');
  if (ccw) throw new UsageError(`--snapshot-at: device ${ccw.type} is on ccw, which the snapshot format does not cover`);
  const last = s.pm ? s.cycles : 0;
  if (s.snapshotAt! > last) throw new UsageError(`--snapshot-at ${s.snapshotAt}: the run ${s.pm ? `has ${s.cycles} cycle(s)` : 'has no PM cycles (0 is after the I/O check)'}`);
}

/** The snapshot file after --snapshot-at N: one positional argument, and only with --snapshot-at. */
function snapshotFile(s: RunSettings, positionals: string[]): string | undefined {
  if (s.snapshotAt === undefined) {
    if (positionals.length) throw new UsageError(`unexpected argument '${shown(positionals[0]!)}'`);
    return undefined;
  }
  if (positionals.length !== 1) throw new UsageError('--snapshot-at N FILE: give one file to write');
  return positionals[0]!;
}

/** The options a snapshot file keeps to run the same steps again: all but where this command writes. */
function storedOptions(values: CliValues): StoredOptions {
  const out: StoredOptions = {};
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || k === 'snapshot-at' || k === 'trace' || k === 'restore') continue;
    out[k] = Array.isArray(v) ? v.map(String) : v;
  }
  return out;
}

/** `run --restore FILE [--json]`: the file's run, continued from its point. */
async function restoreCommand(values: CliValues, positionals: string[]): Promise<number> {
  const file = stringOpt(values, 'restore')!;
  const extra = Object.keys(values).filter((k) => values[k] !== undefined && k !== 'restore' && k !== 'json');
  if (extra.length || positionals.length) throw new UsageError(`--restore takes only --json (the file holds the run), got ${extra.length ? `--${extra[0]}` : `'${shown(positionals[0]!)}'`}`);
  const snap = readRunSnapshot(file);
  // The machine as the run built it (its own --json decided where consoles write); this command's --json decides the report.
  const settings = parseSettings(snap.run.options);
  const json = boolOpt(values, 'json');
  const name = `snapshot file '${file}'`;
  if (snap.run.scenario !== undefined) {
    const { parseScenario, runScenarioCommand } = await import('../scenario/run-scenario.js');
    const scenario = parseScenario(snap.run.scenario.text, snap.run.scenario.file, { json: settings.json });
    if (snap.at >= scenario.steps.length) throw new UsageError(`${name}: step ${snap.at} is past the scenario's ${scenario.steps.length} steps`);
    if (json && scenario.machine.devices.some((d) => consoleOutConflictsWithJson(d.type, d.options))) throw new UsageError(`${name}: its run writes console output to stdout; restore it without --json`);
    settings.json = json;
    settings.point = restorePoint(file, snap);
    return runScenarioCommand(settings, scenario);
  }
  if (snap.at > (settings.pm ? settings.cycles : 0)) throw new UsageError(`${name}: point ${snap.at} is past the run's last cycle`);
  if (settings.kernel === 'linux' || settings.devices.some((d) => d.transport === 'ccw')) throw new UsageError(`${name}: its run cannot be restored (Linux kernel or ccw devices)`);
  if (json && settings.devices.some((d) => consoleOutConflictsWithJson(d.type, d.options ?? {}))) throw new UsageError(`${name}: its run writes console output to stdout; restore it without --json`);
  settings.json = json;
  settings.point = restorePoint(file, snap);
  return runOptions(settings);
}

/** A run of the options' plan (or the Linux kernel's), printed. */
async function runOptions(settings: RunSettings): Promise<number> {
  const progress = settings.pm ? progressBar(settings.cycles, { json: settings.json }) : null;
  if (progress) settings.onCycle = (done, total) => progress.update(done, total);
  // SIGINT/SIGTERM: stop after the cycle under way and report what ran.
  const stop = listenForStop();
  settings.stopRequested = () => stop.signal;
  let r: RunReport;
  try {
    r = settings.kernel === 'linux' ? await executeLinuxRun(settings, RUN_LIMITS.reportWarnings) : await executePlan(buildPlan(settings));
  } finally {
    progress?.end();
    stop.dispose();
  }
  process.stdout.write(settings.json ? formatJson(r) : formatText(r));
  if (stop.signal) return signalExitCode(stop.signal);
  return r.ok ? 0 : 1;
}

/** What a run on the Linux kernel can do: its drivers, its transports, no trace yet. */
function checkLinuxRun(s: RunSettings): void {
  if (s.trace !== undefined) throw new UsageError('--trace is not available with --kernel linux (use virtio-emu kernel-diff to hold its register trace against the model)');
  for (const d of s.devices) {
    if (!s.linuxDrivers && !(LINUX_DEVICE_TYPES as readonly string[]).includes(d.type)) {
      throw new UsageError(`--device ${shown(d.type)}: the Linux kernel has no driver for it (it has: ${LINUX_DEVICE_TYPES.join(', ')})`);
    }
    if (d.transport === 'ccw') throw new UsageError(`--device ${d.type}: the Linux kernel is built with virtio-mmio only (mmio, mmio-legacy)`);
  }
  if (!linuxBuilt()) throw new UsageError(`the Linux kernel is not built: run \`${BUILD_COMMAND}\` (needs ${INSTALL_HINT})`);
}

export const command: CliCommand = {
  name: 'run',
  summary: 'start a machine, probe its devices with the model drivers and do I/O',
  usage:
    '[--device SPEC]... [--transport mmio|mmio-legacy|ccw] [--kernel model|linux] [--bus worker|inthread] [--bytes N]\n' +
    '        [--pm suspend|hibernate [--cycles N] [--power retain|reset|fresh|snapshot] [--hibernate-mode shutdown|platform]\n' +
    '        [--fail PHASE:SLOT[:ERRNO]]...] [--json] [--trace FILE] [--snapshot-at N FILE]\n' +
    '   or: virtio-emu run --scenario FILE.json [--json] [--trace FILE] [--snapshot-at N FILE]\n' +
    '   or: virtio-emu run --restore FILE [--json]',
  help: RUN_OPTIONS.map((o) => o.help).join('\n'),
  options: Object.fromEntries(RUN_OPTIONS.map((o) => [o.name, o.spec])),
  allowPositionals: true,
  async run(values, positionals) {
    if (values['restore'] !== undefined) return restoreCommand(values, positionals);
    const settings = parseSettings(values);
    const file = snapshotFile(settings, positionals);
    if (settings.scenario !== undefined) {
      const { parseScenario: parse, readScenarioText, runScenarioCommand } = await import('../scenario/run-scenario.js');
      const text = readScenarioText(settings.scenario);
      const scenario = parse(text, settings.scenario, { json: settings.json });
      if (file !== undefined) {
        const at = settings.snapshotAt!;
        if (at >= scenario.steps.length) throw new UsageError(`--snapshot-at ${at}: the scenario has ${scenario.steps.length} step(s) (0 to ${scenario.steps.length - 1})`);
        const ccw = scenario.machine.devices.find((d) => d.transport === 'ccw');
        if (ccw) throw new UsageError(`--snapshot-at: device ${ccw.name} is on ccw, which the snapshot format does not cover`);
        settings.point = snapshotPoint(at, file, { options: storedOptions(values), scenario: { file: resolve(settings.scenario), text } });
      }
      return runScenarioCommand(settings, scenario);
    }
    if (file !== undefined) settings.point = snapshotPoint(settings.snapshotAt!, file, { options: storedOptions(values) });
    return runOptions(settings);
  },
};
