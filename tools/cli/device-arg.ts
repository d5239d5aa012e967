// The --device argument every command that builds a machine takes (run,
// qtest, kernel-diff): "TYPE[,transport=T][,slot=N][,key=value|flag]...",
// and the checks that make a bad one a usage error before a worker starts.
import { PLATFORM } from '../../core/bus.js';
import type { DeviceOptionValue, TransportKind } from '../../emulator/board-contract.js';
import { deviceTypes, knownDeviceType } from '../../emulator/devices/catalog.js';
import { MACHINE_LIMITS, assignSlots, type MachineDevice } from '../../emulator/machine.js';
import { preflightDevice } from '../scenario/preflight.js';
import { UsageError, shown } from './args.js';

const TRANSPORTS: readonly TransportKind[] = ['mmio', 'mmio-legacy', 'ccw'];
/** Longest --device argument accepted (a path option included). */
const MAX_DEVICE_ARG = MACHINE_LIMITS.maxOptionLength + 256;

/**
 * "TYPE[,transport=T][,slot=N][,key=value...]". A bare key is a boolean flag
 * set to true (`blk,ro` is `blk,ro=true`); transport and slot need a value.
 */
export function parseDeviceArg(arg: string): MachineDevice {
  if (arg.length > MAX_DEVICE_ARG) throw new UsageError(`--device: argument longer than ${MAX_DEVICE_ARG} characters`);
  const [name, ...rest] = arg.split(',');
  if (!name || !/^[a-z0-9-]+$/i.test(name)) throw new UsageError(`--device: bad device type in '${shown(arg)}'`);
  const type = knownDeviceType(name);
  if (type === null) throw new UsageError(`--device: unknown device type '${shown(name)}' (known: ${deviceTypes().join(', ')})`);
  const dev: MachineDevice = { type };
  const options: Record<string, DeviceOptionValue> = {};
  const seen = new Set<string>();
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    const key = eq < 0 ? kv : kv.slice(0, eq);
    // Own, plain names only: '__proto__' or 'constructor' are not options.
    if (!/^[A-Za-z][\w.-]{0,63}$/.test(key) || key === 'constructor') throw new UsageError(`--device ${type}: bad option name '${shown(key)}'`);
    if (seen.has(key)) throw new UsageError(`--device ${type}: option '${key}' given twice`);
    seen.add(key);
    if (eq < 0 && (key === 'transport' || key === 'slot')) throw new UsageError(`--device ${type}: ${key} needs a value (${key}=...)`);
    const raw = kv.slice(eq + 1);
    if (key === 'transport') {
      if (!TRANSPORTS.includes(raw as TransportKind)) throw new UsageError(`--device ${type}: unknown transport '${shown(raw)}' (known: ${TRANSPORTS.join(', ')})`);
      dev.transport = raw as TransportKind;
    } else if (key === 'slot') {
      if (!/^\d{1,9}$/.test(raw)) throw new UsageError(`--device ${type}: bad slot '${shown(raw)}'`);
      dev.slot = Number(raw);
    } else if (eq < 0) {
      options[key] = true;
    } else {
      options[key] = raw === 'true' ? true : raw === 'false' ? false : /^-?\d{1,15}$/.test(raw) ? Number(raw) : raw;
    }
  }
  if (Object.keys(options).length > 0) dev.options = options;
  return dev;
}

/**
 * Each device's options checked by its own model (and its transport's), and
 * the devices placed in `slots` slots: a bad option, two devices in one
 * slot or a slot past the last are usage errors. Returns the slot each
 * device lands in, in the order given.
 */
export function checkDevices(devices: readonly MachineDevice[], defaultTransport: TransportKind, slots: number = PLATFORM.MMIO_SLOTS_DEFAULT): number[] {
  for (const d of devices) {
    const { error } = preflightDevice({ type: d.type, transport: d.transport ?? defaultTransport, options: d.options ?? {} });
    if (error) throw new UsageError(`--device ${d.type}: ${error}`);
  }
  try {
    return assignSlots(devices, slots);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new UsageError(msg.startsWith('device ') ? `--${msg}` : `--device: ${msg}`);
  }
}
