// The scenario validator: raw JSON → Scenario, or every problem found, each
// with the JSON path of the bad field ("steps[3].cycles: expected a positive
// integer, got 0"). Nothing starts before a scenario passes: the structure is
// checked first, then each device's options by building its model once
// (preflight.ts), then the blk ranges against the disks' capacities.
import { isAbsolute, resolve } from 'node:path';
import { PLATFORM } from '../../core/bus.js';
import { PM_CALLBACKS, isPmCallbackName } from '../../core/pm/pm.js';
import type { HibernationMode } from '../../core/pm/system.js';
import { EIO, errnoByName } from '../../core/uapi/errno.js';
import { REG, type RegName } from '../../core/uapi/mmio.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../../core/uapi/status.js';
import { UsageError } from '../usage-error.js';
import { RUN_LIMITS, SCENARIO_LIMITS } from '../limits.js';
import { deviceTypes, knownDeviceType } from '../../emulator/devices/catalog.js';
import { MACHINE_LIMITS, type BusKind } from '../../emulator/machine.js';
import type { DeviceOptionValue, TransportKind } from '../../emulator/board-contract.js';
import { POWER_MODELS, type PowerModel } from '../system.js';
import { consoleOutConflictsWithJson, preflightDevice } from './preflight.js';
import {
  STEP_FIELDS,
  totalCycles,
  type DataSpec,
  type DeviceRef,
  type NoirqStateName,
  type PmExpect,
  type PmFail,
  type RegisterExpect,
  type Scenario,
  type ScenarioDevice,
  type Step,
  type StepKind,
} from './schema.js';

export interface ScenarioIssue {
  /** JSON path of the bad field ("" for the document itself). */
  path: string;
  message: string;
}

/** A scenario that cannot run: a usage error (exit 2) naming the first problem. */
export class ScenarioError extends UsageError {
  constructor(
    readonly source: string,
    readonly issues: ScenarioIssue[],
    /** Problems found, including those past SCENARIO_LIMITS.maxIssues that were not kept. */
    readonly total = issues.length,
  ) {
    const first = issues[0] ?? { path: '', message: 'invalid scenario' };
    const more = total > 1 ? ` (and ${total - 1} more problem${total > 2 ? 's' : ''})` : '';
    super(`${source}: ${first.path ? `${first.path}: ` : ''}${first.message}${more}`);
    this.name = 'ScenarioError';
  }
}

export interface ValidateOptions {
  /** Where the scenario came from, for messages and relative paths. */
  file?: string | null;
  /** Directory relative file paths in device options resolve against (default: the file's, else the cwd). */
  baseDir?: string;
  /** --json: stdout carries the report, so a console may not write there. */
  json?: boolean;
  /** Build each device model to check its options (default true). */
  preflight?: boolean;
}

const TRANSPORTS: readonly TransportKind[] = ['mmio', 'mmio-legacy', 'ccw'];
const BUSES: readonly BusKind[] = ['worker', 'inthread'];
const HIBERNATION_MODES: readonly HibernationMode[] = ['shutdown', 'platform'];
const KINDS = ['suspend', 'hibernate'] as const;
const NOIRQ_STATES: readonly NoirqStateName[] = ['none', 'entered', 'restored'];
const STATUS_BITS: Record<string, number> = {
  ACKNOWLEDGE: VIRTIO_CONFIG_S_ACKNOWLEDGE,
  DRIVER: VIRTIO_CONFIG_S_DRIVER,
  DRIVER_OK: VIRTIO_CONFIG_S_DRIVER_OK,
  FEATURES_OK: VIRTIO_CONFIG_S_FEATURES_OK,
  SUSPEND: VIRTIO_CONFIG_S_SUSPEND,
  DEVICE_NEEDS_RESET: VIRTIO_CONFIG_S_NEEDS_RESET,
  FAILED: VIRTIO_CONFIG_S_FAILED,
};
/** Device types each step needs. */
const STEP_DEVICE: Partial<Record<StepKind, string>> = {
  'rng-read': 'rng',
  'blk-write': 'blk',
  'blk-read': 'blk',
  'blk-verify': 'blk',
  'blk-flush': 'blk',
  'console-write': 'console',
  'console-input': 'console',
};
/** What an option or inject argument may be called ('__proto__' may not). */
const OPTION_NAME = /^[A-Za-z][\w.-]{0,63}$/;
/** Device options that name host files: resolved against the scenario's directory. */
const PATH_OPTIONS: Record<string, readonly string[]> = { blk: ['file'], console: ['out', 'in'] };
const MAX_STEP_SECTORS = SCENARIO_LIMITS.maxStepSectors;

type Json = Record<string, unknown>;

/** A key as a path shows it: long ones cut, so a message stays one short line. */
function keyText(key: string): string {
  return key.length > 64 ? `${key.slice(0, 61)}...` : key;
}

const at = (path: string, key: string | number): string => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${keyText(key)}` : keyText(key));

/** At most 40 characters of a value (the document was checked for depth first, so stringify is safe). */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string' && v.length > 40) return `${JSON.stringify(v.slice(0, 36)).slice(0, -1)}...`;
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Own properties only: a key such as 'constructor' or 'toString' is not in a table because Object.prototype has it. */
const has = (o: object, k: string): boolean => Object.hasOwn(o, k);

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

function hint(word: string, choices: readonly string[]): string {
  // Distance is quadratic: long words get no hint.
  if (word.length > 64) return '';
  const best = choices.map((c) => [c, distance(word.toLowerCase(), c.toLowerCase())] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= 2 ? `; did you mean '${best[0]}'?` : '';
}

/** Reads typed values out of parsed JSON, recording what is wrong and where. */
class Checker {
  readonly issues: ScenarioIssue[] = [];
  /** Problems found, kept or not. */
  total = 0;

  fail(path: string, message: string): undefined {
    this.total++;
    if (this.issues.length < SCENARIO_LIMITS.maxIssues) this.issues.push({ path, message });
    return undefined;
  }

  get full(): boolean {
    return this.issues.length >= SCENARIO_LIMITS.maxIssues;
  }

  object(v: unknown, path: string): Json | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.fail(path, `expected an object, got ${show(v)}`);
    return v as Json;
  }

  array(v: unknown, path: string): unknown[] | undefined {
    if (!Array.isArray(v)) return this.fail(path, `expected an array, got ${show(v)}`);
    return v;
  }

  /** Unknown fields are errors (a typo must not be silently ignored). */
  fields(o: Json, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (allowed.includes(k)) continue;
      if (this.full) this.total++;
      else this.fail(at(path, k), `unknown field${hint(k, allowed)} (known: ${allowed.join(', ')})`);
    }
  }

  /** o[key] if o has it as its own property (JSON.parse only makes own ones; this keeps it so). */
  get(o: Json, key: string): unknown {
    return has(o, key) ? o[key] : undefined;
  }

  /** o[key] through read(), or a "missing" issue. */
  need<T>(o: Json, key: string, path: string, read: (v: unknown, p: string) => T | undefined): T | undefined {
    const v = this.get(o, key);
    if (v === undefined) return this.fail(at(path, key), 'missing (required)');
    return read(v, at(path, key));
  }

  /** o[key] through read(), or fallback when absent. */
  opt<T>(o: Json, key: string, path: string, fallback: T, read: (v: unknown, p: string) => T | undefined): T | undefined {
    const v = this.get(o, key);
    return v === undefined ? fallback : read(v, at(path, key));
  }

  string(v: unknown, path: string): string | undefined {
    if (typeof v !== 'string' || v === '') return this.fail(path, `expected a non-empty string, got ${show(v)}`);
    return v;
  }

  text(v: unknown, path: string): string | undefined {
    if (typeof v !== 'string') return this.fail(path, `expected a string, got ${show(v)}`);
    return v;
  }

  bool(v: unknown, path: string): boolean | undefined {
    if (typeof v !== 'boolean') return this.fail(path, `expected true or false, got ${show(v)}`);
    return v;
  }

  int(v: unknown, path: string, min: number, what = min > 0 ? 'a positive integer' : 'an integer >= 0'): number | undefined {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return this.fail(path, `expected ${what}, got ${show(v)}`);
    return v;
  }

  /** An integer in [min, max]. */
  bounded(v: unknown, path: string, min: number, max: number, unit = ''): number | undefined {
    const n = this.int(v, path, min);
    if (n !== undefined && n > max) return this.fail(path, `at most ${max}${unit}, got ${n}`);
    return n;
  }

  oneOf<T extends string>(v: unknown, path: string, choices: readonly T[]): T | undefined {
    if (typeof v !== 'string' || !choices.includes(v as T)) {
      return this.fail(path, `expected one of ${choices.join(', ')}, got ${show(v)}${typeof v === 'string' ? hint(v, choices) : ''}`);
    }
    return v as T;
  }

  /** Bytes: an integer, or "64M"-style text (K/M/G binary multiples). */
  size(v: unknown, path: string): number | undefined {
    if (typeof v === 'number') return this.int(v, path, 1, 'a size in bytes');
    const m = typeof v === 'string' && v.length <= 32 ? /^\s*(\d+)\s*([KMG]?)(?:i?B)?\s*$/i.exec(v) : null;
    if (!m) return this.fail(path, `expected a size (bytes, or a number with K, M or G), got ${show(v)}`);
    const mult: Record<string, number> = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 };
    const n = Number(m[1]) * mult[m[2]!.toUpperCase()]!;
    if (!Number.isSafeInteger(n)) return this.fail(path, `size ${show(v)} is too large`);
    return n;
  }

  /** A positive errno: "EIO", "-EIO" or 5. */
  errno(v: unknown, path: string): number | undefined {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v !== 0) return Math.abs(v);
    if (typeof v === 'string') {
      const n = /^-?\d+$/.test(v) ? Math.abs(Number(v)) : errnoByName(v);
      if (n) return n;
    }
    return this.fail(path, `expected an errno such as "EIO" or 5, got ${show(v)}`);
  }

  /** A PM result: 0, or a -errno as "-EIO", "EIO", -5 or 5. */
  result(v: unknown, path: string): number | undefined {
    if (v === 0 || v === '0') return 0;
    const e = this.errno(v, path);
    return e === undefined ? undefined : -e;
  }
}

// ---------------------------------------------------------------------------

interface Ctx {
  c: Checker;
  devices: ScenarioDevice[];
}

/** A device as written: name and slot still optional. */
type DeviceEntry = Omit<ScenarioDevice, 'name' | 'slot'> & { name?: string; slot?: number };

function readDevice(c: Checker, v: unknown, path: string, baseDir: string, json: boolean): DeviceEntry | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ['type', 'name', 'transport', 'slot', 'options']);
  const types = deviceTypes();
  const type = c.need(o, 'type', path, (x, p) => {
    const s = c.string(x, p);
    if (s === undefined) return undefined;
    return knownDeviceType(s) ?? c.fail(p, `unknown device type '${s}'${hint(s, types)} (known: ${types.join(', ')})`);
  });
  const name = c.opt<string | undefined>(o, 'name', path, undefined, (x, p) => {
    const s = c.string(x, p);
    if (s !== undefined && !/^[A-Za-z][\w.-]*$/.test(s)) return c.fail(p, `expected a name of letters, digits, '_', '.', '-' starting with a letter, got ${show(s)}`);
    return s;
  });
  const transport = c.opt<TransportKind>(o, 'transport', path, 'mmio', (x, p) => c.oneOf(x, p, TRANSPORTS));
  const slot = c.opt<number | undefined>(o, 'slot', path, undefined, (x, p) => c.int(x, p, 0));
  const options: Record<string, DeviceOptionValue> = {};
  const rawOptions = c.get(o, 'options');
  const raw = rawOptions === undefined ? {} : c.object(rawOptions, at(path, 'options'));
  if (raw) {
    for (const [k, x] of Object.entries(raw)) {
      if (!OPTION_NAME.test(k)) {
        c.fail(at(at(path, 'options'), k), 'expected an option name (letters, digits, _ . -, starting with a letter)');
        continue;
      }
      if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') {
        c.fail(at(at(path, 'options'), k), `expected a string, number or boolean, got ${show(x)}`);
        continue;
      }
      options[k] = typeof x === 'string' && type && has(PATH_OPTIONS, type) && PATH_OPTIONS[type]!.includes(k) && !(k === 'out' && (x === 'stdout' || x === 'none')) && !isAbsolute(x) ? resolve(baseDir, x) : x;
    }
  }
  if (type === undefined || transport === undefined) return undefined;
  if (json && raw) {
    const conflict = consoleOutConflictsWithJson(type, options);
    if (conflict === 'explicit') c.fail(at(at(path, 'options'), 'out'), "'stdout' would mix console output into the --json document; use a file or 'none'");
    // With --json, a console without an output sink writes nowhere.
    if (conflict === 'default') options['out'] = 'none';
  }
  return { type, transport, options, ...(name !== undefined ? { name } : {}), ...(slot !== undefined ? { slot } : {}) };
}

function readMachine(c: Checker, v: unknown, baseDir: string, json: boolean): Scenario['machine'] | undefined {
  const path = 'machine';
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ['bus', 'slots', 'ramSize', 'devices']);
  const bus = c.opt<BusKind>(o, 'bus', path, 'worker', (x, p) => c.oneOf(x, p, BUSES));
  const slots = c.opt<number | undefined>(o, 'slots', path, undefined, (x, p) => c.bounded(x, p, 1, MACHINE_LIMITS.maxSlots, ' slots'));
  const ramSize = c.opt<number | undefined>(o, 'ramSize', path, undefined, (x, p) => {
    const n = c.size(x, p);
    if (n !== undefined && (n < MACHINE_LIMITS.minRamSize || n > MACHINE_LIMITS.maxRamSize)) {
      return c.fail(p, `expected ${MACHINE_LIMITS.minRamSize} to ${MACHINE_LIMITS.maxRamSize} bytes (RAM ends below 4 GiB), got ${show(x)}`);
    }
    return n;
  });
  const list = c.need(o, 'devices', path, (x, p) => c.array(x, p));
  if (list && list.length === 0) c.fail(at(path, 'devices'), 'expected at least one device');
  const room = slots ?? PLATFORM.MMIO_SLOTS_DEFAULT;
  if (list && list.length > room) {
    c.fail(at(path, 'devices'), `${list.length} devices do not fit in ${room} slots`);
    return undefined;
  }
  const read = (list ?? []).map((d, i) => readDevice(c, d, at(at(path, 'devices'), i), baseDir, json));
  if (bus === undefined || read.some((d) => d === undefined)) return undefined;
  const devices = place(c, read as DeviceEntry[], slots ?? PLATFORM.MMIO_SLOTS_DEFAULT);
  if (!devices) return undefined;
  return { bus, ...(slots !== undefined ? { slots } : {}), ...(ramSize !== undefined ? { ramSize } : {}), devices };
}

/** Names and slots, as Machine's placeDevices assigns them: explicit slots first, the rest in order into the lowest free. */
function place(c: Checker, read: DeviceEntry[], slots: number): ScenarioDevice[] | undefined {
  const base = 'machine.devices';
  const taken = new Map<number, number>();
  let ok = true;
  read.forEach((d, i) => {
    if (d.slot === undefined) return;
    if (d.slot >= slots) ok = !!c.fail(at(at(base, i), 'slot'), `slot ${d.slot} out of range 0..${slots - 1}`);
    else if (taken.has(d.slot)) ok = !!c.fail(at(at(base, i), 'slot'), `slot ${d.slot} already holds machine.devices[${taken.get(d.slot)}]`);
    else taken.set(d.slot, i);
  });
  let next = 0;
  const out: ScenarioDevice[] = [];
  const perType = new Map<string, number>();
  for (const d of read) perType.set(d.type, (perType.get(d.type) ?? 0) + 1);
  const seen = new Map<string, number>();
  const names = new Map<string, number>();
  read.forEach((d, i) => {
    let slot = d.slot;
    if (slot === undefined) {
      while (next < slots && taken.has(next)) next++;
      if (next >= slots) {
        ok = !!c.fail(at(base, i), `no free slot (${slots} slots)`);
        return;
      }
      slot = next;
      taken.set(slot, i);
    }
    const ordinal = seen.get(d.type) ?? 0;
    seen.set(d.type, ordinal + 1);
    const name = d.name ?? (perType.get(d.type) === 1 ? d.type : `${d.type}${ordinal}`);
    if (names.has(name)) ok = !!c.fail(at(at(base, i), d.name ? 'name' : 'type'), `duplicate device name '${name}' (also machine.devices[${names.get(name)}]); give each a "name"`);
    names.set(name, i);
    out.push({ name, type: d.type, transport: d.transport, slot, options: d.options });
  });
  return ok ? out : undefined;
}

function deviceRef(ctx: Ctx, v: unknown, path: string, kind: StepKind): DeviceRef | undefined {
  const { c, devices } = ctx;
  let d: ScenarioDevice | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) {
    d = devices.find((x) => x.slot === v);
    if (!d) return c.fail(path, `no device in slot ${v} (slots in use: ${devices.map((x) => x.slot).join(', ')})`);
  } else if (typeof v === 'string') {
    d = devices.find((x) => x.name === v);
    const names = devices.map((x) => x.name);
    if (!d) return c.fail(path, `no device named '${v}'${hint(v, names)} (devices: ${names.join(', ')})`);
  } else {
    return c.fail(path, `expected a device name or slot number, got ${show(v)}`);
  }
  const need = has(STEP_DEVICE, kind) ? STEP_DEVICE[kind] : undefined;
  if (need && d.type !== need) return c.fail(path, `'${d.name}' is a ${d.type} device; ${kind} needs a ${need} device`);
  return { name: d.name, slot: d.slot, type: d.type };
}

/** seed or pattern (exactly one); `required` false allows neither. */
function dataSpec(c: Checker, o: Json, path: string, required: boolean): DataSpec | null | undefined {
  const hasSeed = c.get(o, 'seed') !== undefined;
  const hasPattern = c.get(o, 'pattern') !== undefined;
  if (hasSeed && hasPattern) return c.fail(at(path, 'pattern'), 'give either seed or pattern, not both');
  if (hasSeed) {
    const seed = c.int(o['seed'], at(path, 'seed'), 0);
    return seed === undefined ? undefined : { seed };
  }
  if (hasPattern) {
    const pattern = c.string(o['pattern'], at(path, 'pattern'));
    return pattern === undefined ? undefined : { pattern };
  }
  if (required) return c.fail(at(path, 'seed'), 'missing: give seed (an integer) or pattern (a string)');
  return null;
}

function pmExpect(c: Checker, v: unknown, path: string): PmExpect | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ['result', 'failedStep', 'devicesOk']);
  const e: PmExpect = {};
  if (o['result'] !== undefined) {
    const r = c.result(o['result'], at(path, 'result'));
    if (r !== undefined) e.result = r;
  }
  if (o['failedStep'] !== undefined) {
    const f = c.string(o['failedStep'], at(path, 'failedStep'));
    if (f !== undefined) e.failedStep = f;
  }
  if (o['devicesOk'] !== undefined) {
    const ok = c.bool(o['devicesOk'], at(path, 'devicesOk'));
    if (ok !== undefined) e.devicesOk = ok;
  }
  if (Object.keys(o).length === 0) c.fail(path, 'expected at least one of result, failedStep, devicesOk');
  return e;
}

function pmFail(ctx: Ctx, v: unknown, path: string): PmFail | undefined {
  const { c } = ctx;
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ['phase', 'slot', 'device', 'errno']);
  const phase = c.need(o, 'phase', path, (x, p) => {
    if (typeof x === 'string' && isPmCallbackName(x)) return x;
    return c.fail(p, `expected a PM callback (${PM_CALLBACKS.join(', ')}), got ${show(x)}${typeof x === 'string' ? hint(x, PM_CALLBACKS) : ''}`);
  });
  let slot: number | undefined;
  if (o['slot'] !== undefined && o['device'] !== undefined) c.fail(at(path, 'device'), 'give either slot or device, not both');
  else if (o['slot'] !== undefined) {
    const n = c.int(o['slot'], at(path, 'slot'), 0);
    if (n !== undefined) slot = deviceRef(ctx, n, at(path, 'slot'), 'pm')?.slot;
  }
  else if (o['device'] !== undefined) slot = deviceRef(ctx, o['device'], at(path, 'device'), 'pm')?.slot;
  else c.fail(at(path, 'slot'), 'missing: give slot or device');
  const errno = c.opt(o, 'errno', path, EIO, (x, p) => c.errno(x, p));
  if (phase === undefined || slot === undefined || errno === undefined) return undefined;
  return { phase, slot, errno };
}

function register(ctx: Ctx, v: unknown, path: string): RegisterExpect | undefined {
  const { c } = ctx;
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ['name', 'value', 'width']);
  const regs = Object.keys(REG);
  const reg = c.need(o, 'name', path, (x, p) => {
    const s = c.string(x, p);
    if (s === undefined) return undefined;
    const cfg = /^Config\+0x([0-9a-f]+)$/i.exec(s);
    if (cfg) {
      const off = parseInt(cfg[1]!, 16);
      return off < 0x100 ? { name: s, offset: REG.Config + off } : c.fail(p, `config offset 0x${off.toString(16)} is past the 0x100 bytes of config space`);
    }
    if (has(REG, s)) return { name: s, offset: REG[s as RegName] };
    return c.fail(p, `unknown register '${s}'${hint(s, regs)} (a virtio-mmio register name, or Config+0xNN)`);
  });
  const value = c.need(o, 'value', path, (x, p) => c.int(x, p, 0, 'an integer >= 0'));
  const width = c.opt<1 | 2 | 4>(o, 'width', path, 4, (x, p) => (x === 1 || x === 2 || x === 4 ? x : c.fail(p, `expected 1, 2 or 4, got ${show(x)}`)));
  if (!reg || value === undefined || width === undefined) return undefined;
  if (reg.offset % width !== 0) return c.fail(at(path, 'width'), `${reg.name} is not aligned for a ${width}-byte access`);
  return { ...reg, width, value };
}

function status(c: Checker, v: unknown, path: string): number | undefined {
  if (typeof v === 'number') return c.int(v, path, 0, 'a status byte');
  if (!Array.isArray(v)) return c.fail(path, `expected a number or a list of status bits (${Object.keys(STATUS_BITS).join(', ')}), got ${show(v)}`);
  let s = 0;
  for (const [i, n] of v.entries()) {
    const bit = typeof n === 'string' && has(STATUS_BITS, n) ? STATUS_BITS[n] : undefined;
    if (bit === undefined) c.fail(at(path, i), `expected a status bit (${Object.keys(STATUS_BITS).join(', ')}), got ${show(n)}`);
    else s |= bit;
  }
  return s;
}

const CHECKS = ['works', 'driver', 'status', 'noirqState', 'register', 'consoleSize', 'pm', 'noWarnings'] as const;
const DEVICE_CHECKS = ['driver', 'status', 'noirqState', 'register', 'consoleSize'] as const;

function expectStep(ctx: Ctx, o: Json, path: string): Step | undefined {
  const { c } = ctx;
  const device = o['device'] === undefined ? null : deviceRef(ctx, o['device'], at(path, 'device'), 'expect');
  if (!CHECKS.some((k) => o[k] !== undefined)) return c.fail(path, `expect needs at least one of ${CHECKS.join(', ')}`);
  if (device === null) for (const k of DEVICE_CHECKS) if (o[k] !== undefined) c.fail(at(path, k), `${k} needs a "device"`);
  const s: Extract<Step, { do: 'expect' }> = { do: 'expect', device: device ?? null };
  if (o['works'] !== undefined) {
    const w = c.bool(o['works'], at(path, 'works'));
    if (w !== undefined) s.works = w;
  }
  if (o['driver'] !== undefined) {
    const d = o['driver'] === null ? null : c.string(o['driver'], at(path, 'driver'));
    if (d !== undefined) s.driver = d;
  }
  if (o['status'] !== undefined) {
    const st = status(c, o['status'], at(path, 'status'));
    if (st !== undefined) s.status = st;
  }
  if (o['noirqState'] !== undefined) {
    const n = c.oneOf(o['noirqState'], at(path, 'noirqState'), NOIRQ_STATES);
    if (n !== undefined) s.noirqState = n;
  }
  if (o['register'] !== undefined) {
    const r = register(ctx, o['register'], at(path, 'register'));
    if (r) s.register = r;
  }
  if (o['consoleSize'] !== undefined) {
    const p = at(path, 'consoleSize');
    const cs = c.object(o['consoleSize'], p);
    if (device && device.type !== 'console') c.fail(p, `'${device.name}' is a ${device.type} device; consoleSize needs a console device`);
    if (cs) {
      c.fields(cs, p, ['cols', 'rows']);
      const cols = c.need(cs, 'cols', p, (x, q) => c.int(x, q, 0));
      const rows = c.need(cs, 'rows', p, (x, q) => c.int(x, q, 0));
      if (cols !== undefined && rows !== undefined) s.consoleSize = { cols, rows };
    }
  }
  if (o['pm'] !== undefined) {
    const e = pmExpect(c, o['pm'], at(path, 'pm'));
    if (e) s.pm = e;
  }
  if (o['noWarnings'] !== undefined) {
    const w = c.bool(o['noWarnings'], at(path, 'noWarnings'));
    if (w !== undefined) s.noWarnings = w;
  }
  return device === undefined ? undefined : s;
}

function readStep(ctx: Ctx, v: unknown, path: string, sawPm: boolean): Step | undefined {
  const { c } = ctx;
  const o = c.object(v, path);
  if (!o) return undefined;
  const kinds = Object.keys(STEP_FIELDS) as StepKind[];
  const kind = c.need(o, 'do', path, (x, p) => c.oneOf(x, p, kinds));
  if (!kind) return undefined;
  c.fields(o, path, ['do', ...STEP_FIELDS[kind]]);
  const dev = (): DeviceRef | undefined => c.need(o, 'device', path, (x, p) => deviceRef(ctx, x, p, kind));
  const sectors = (): { sector: number | undefined; count: number | undefined } => ({
    sector: c.need(o, 'sector', path, (x, p) => c.int(x, p, 0)),
    count: c.need(o, 'count', path, (x, p) => {
      const n = c.int(x, p, 1);
      return n !== undefined && n > MAX_STEP_SECTORS ? c.fail(p, `at most ${MAX_STEP_SECTORS} sectors per step, got ${n}`) : n;
    }),
  });
  switch (kind) {
    case 'rng-read': {
      const device = dev();
      const bytes = c.opt(o, 'bytes', path, 4096, (x, p) => c.bounded(x, p, 1, RUN_LIMITS.maxIoBytes, ' bytes'));
      return device && bytes !== undefined ? { do: kind, device, bytes } : undefined;
    }
    case 'blk-write': {
      const device = dev();
      const { sector, count } = sectors();
      const data = dataSpec(c, o, path, true);
      return device && sector !== undefined && count !== undefined && data ? { do: kind, device, sector, count, data } : undefined;
    }
    case 'blk-read': {
      const device = dev();
      const { sector, count } = sectors();
      return device && sector !== undefined && count !== undefined ? { do: kind, device, sector, count } : undefined;
    }
    case 'blk-verify': {
      const device = dev();
      const ranged = o['sector'] !== undefined || o['count'] !== undefined || o['seed'] !== undefined || o['pattern'] !== undefined;
      if (!ranged) return device ? { do: kind, device, range: null } : undefined;
      const { sector, count } = sectors();
      const data = dataSpec(c, o, path, true);
      return device && sector !== undefined && count !== undefined && data ? { do: kind, device, range: { sector, count, data } } : undefined;
    }
    case 'blk-flush': {
      const device = dev();
      return device ? { do: kind, device } : undefined;
    }
    case 'console-write':
    case 'console-input': {
      const device = dev();
      const text = c.need(o, 'text', path, (x, p) => c.string(x, p));
      return device && text !== undefined ? { do: kind, device, text } : undefined;
    }
    case 'exercise': {
      const device = o['device'] === undefined ? null : deviceRef(ctx, o['device'], at(path, 'device'), kind);
      const bytes = c.opt(o, 'bytes', path, 4096, (x, p) => c.bounded(x, p, 1, RUN_LIMITS.maxIoBytes, ' bytes'));
      return device !== undefined && bytes !== undefined ? { do: kind, device, bytes } : undefined;
    }
    case 'inject': {
      const device = dev();
      const event = c.need(o, 'event', path, (x, p) => c.string(x, p));
      const args: Record<string, DeviceOptionValue> = {};
      const raw = o['args'] === undefined ? {} : c.object(o['args'], at(path, 'args'));
      for (const [k, x] of Object.entries(raw ?? {})) {
        if (!OPTION_NAME.test(k)) c.fail(at(at(path, 'args'), k), 'expected an argument name (letters, digits, _ . -, starting with a letter)');
        else if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') args[k] = x;
        else c.fail(at(at(path, 'args'), k), `expected a string, number or boolean, got ${show(x)}`);
      }
      return device && event !== undefined ? { do: kind, device, event, args } : undefined;
    }
    case 'pm': {
      const k = c.need(o, 'kind', path, (x, p) => c.oneOf(x, p, KINDS));
      const power = c.opt<PowerModel | undefined>(o, 'power', path, undefined, (x, p) => c.oneOf(x, p, POWER_MODELS));
      const mode = c.opt<HibernationMode | undefined>(o, 'mode', path, undefined, (x, p) => c.oneOf(x, p, HIBERNATION_MODES));
      if (mode !== undefined && k === 'suspend') c.fail(at(path, 'mode'), 'mode is the hibernation mode; a suspend step takes none');
      const cycles = c.opt(o, 'cycles', path, 1, (x, p) => c.bounded(x, p, 1, RUN_LIMITS.maxCycles, ' cycles'));
      let list = o['fail'] === undefined ? [] : c.array(o['fail'], at(path, 'fail'));
      if (list && list.length > RUN_LIMITS.maxFails) list = c.fail(at(path, 'fail'), `at most ${RUN_LIMITS.maxFails} injections per step, got ${list.length}`);
      const fail = (list ?? []).map((f, i) => pmFail(ctx, f, at(at(path, 'fail'), i)));
      const expect = o['expect'] === undefined ? null : pmExpect(c, o['expect'], at(path, 'expect'));
      if (!k || cycles === undefined || expect === undefined || fail.some((f) => !f)) return undefined;
      return {
        do: kind,
        kind: k,
        power: power ?? (k === 'suspend' ? 'retain' : 'fresh'),
        ...(k === 'hibernate' ? { mode: mode ?? 'shutdown' } : {}),
        cycles,
        fail: fail as PmFail[],
        expect,
      };
    }
    case 'expect': {
      if (o['pm'] !== undefined && !sawPm) c.fail(at(path, 'pm'), 'no pm step runs before this expectation');
      return expectStep(ctx, o, path);
    }
  }
}

/** blk ranges inside the disks; done once the device options are known good. */
function checkRanges(c: Checker, s: Scenario, caps: ReadonlyMap<number, number | null>): void {
  s.steps.forEach((st, i) => {
    const range = st.do === 'blk-write' || st.do === 'blk-read' ? st : st.do === 'blk-verify' ? st.range : null;
    if (!range || !('device' in st) || !st.device) return;
    const cap = caps.get(st.device.slot);
    if (cap === null || cap === undefined) return;
    if (range.sector + range.count > cap) {
      c.fail(at(at('steps', i), 'count'), `sectors ${range.sector}+${range.count} go past the end of '${st.device.name}' (${cap} sectors)`);
    }
  });
}

/** Check a parsed scenario; returns it with defaults filled in, or the issues found (never both). */
export function checkScenario(raw: unknown, opts: ValidateOptions = {}): { scenario: Scenario | null; issues: ScenarioIssue[]; total: number } {
  const c = new Checker();
  const deep = tooDeep(raw, SCENARIO_LIMITS.maxDepth);
  if (deep !== null) {
    c.fail(deep, `nested deeper than ${SCENARIO_LIMITS.maxDepth} levels of arrays and objects`);
    return { scenario: null, issues: c.issues, total: c.total };
  }
  const file = opts.file ?? null;
  const baseDir = opts.baseDir ?? (file ? resolve(file, '..') : process.cwd());
  const o = c.object(raw, '');
  if (!o) return { scenario: null, issues: c.issues, total: c.total };
  c.fields(o, '', ['name', 'description', 'machine', 'steps']);
  const name = c.need(o, 'name', '', (x, p) => c.string(x, p));
  const description = c.opt<string | null>(o, 'description', '', null, (x, p) => c.text(x, p));
  const machine = c.need(o, 'machine', '', (x) => readMachine(c, x, baseDir, opts.json ?? false));
  let list = c.need(o, 'steps', '', (x, p) => c.array(x, p));
  if (list && list.length > SCENARIO_LIMITS.maxSteps) list = c.fail('steps', `at most ${SCENARIO_LIMITS.maxSteps} steps, got ${list.length}`);
  if (!machine) {
    if (!c.issues.length) c.fail('machine', 'invalid');
    return { scenario: null, issues: c.issues, total: c.total };
  }
  const ctx: Ctx = { c, devices: machine.devices };
  let sawPm = false;
  const steps = (list ?? []).map((st, i) => {
    const step = readStep(ctx, st, at('steps', i), sawPm);
    if (step?.do === 'pm') sawPm = true;
    return step;
  });
  if (c.issues.length || name === undefined || description === undefined || steps.some((s) => !s)) return { scenario: null, issues: c.issues, total: c.total };

  const scenario: Scenario = { name, description, file, machine, steps: steps as Step[] };
  const cycles = totalCycles(scenario);
  if (cycles > RUN_LIMITS.maxCycles) c.fail('steps', `the pm steps add up to ${cycles} cycles; at most ${RUN_LIMITS.maxCycles}`);
  const written = scenario.steps.reduce((n, st) => n + (st.do === 'blk-write' ? st.count : 0), 0);
  if (written > SCENARIO_LIMITS.maxWrittenSectors) c.fail('steps', `the blk-write steps add up to ${written} sectors; at most ${SCENARIO_LIMITS.maxWrittenSectors} (what blk-verify remembers)`);
  if (c.issues.length) return { scenario: null, issues: c.issues, total: c.total };
  if (opts.preflight ?? true) {
    const caps = new Map<number, number | null>();
    machine.devices.forEach((d, i) => {
      const r = preflightDevice({ type: d.type, transport: d.transport, options: d.options });
      if (r.error) c.fail(at(at('machine.devices', i), 'options'), r.error);
      caps.set(d.slot, r.capacity);
    });
    if (!c.issues.length) checkRanges(c, scenario, caps);
  }
  return c.issues.length ? { scenario: null, issues: c.issues, total: c.total } : { scenario, issues: [], total: 0 };
}

/**
 * The JSON path of the first array or object nested deeper than `max`, or
 * null. Iterative (a deep document must not overflow the stack here, or in
 * the checks after it) and linear in the document's size.
 */
export function tooDeep(root: unknown, max: number): string | null {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: root, path: '', depth: 1 }];
  while (stack.length) {
    const { v, path, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return path || '(document)';
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) if (v[i] !== null && typeof v[i] === 'object') stack.push({ v: v[i], path: at(path, i), depth: depth + 1 });
    } else {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const x = (v as Json)[keys[i]!];
        if (x !== null && typeof x === 'object') stack.push({ v: x, path: at(path, keys[i]!), depth: depth + 1 });
      }
    }
  }
  return null;
}

/** checkScenario, throwing a ScenarioError (a usage error) for an invalid one. */
export function validateScenario(raw: unknown, opts: ValidateOptions = {}): Scenario {
  const { scenario, issues, total } = checkScenario(raw, opts);
  if (!scenario) throw new ScenarioError(opts.file ?? 'scenario', issues, total);
  return scenario;
}
