// Device options checked on this thread before a machine starts, so a bad
// option is a usage error with a clear message instead of a worker that fails
// to build its board. The check builds each model once with the device's own
// option parser and releases any host resource it opened (an image file, an
// output file) at once; opening them is what the run would do first anyway.
import { modelOptions, withheldFeatures } from '../../emulator/board.js';
import { BlkDevice } from '../../emulator/devices/blk/device.js';
import { FileMedium } from '../../emulator/devices/blk/medium.js';
import { ConsoleDevice } from '../../emulator/devices/console/device.js';
import { createDeviceModel } from '../../emulator/devices/catalog.js';
import { parseCcwOptions } from '../../emulator/ccw/css.js';
import type { DeviceOptionValue, DeviceSpec } from '../../emulator/board-contract.js';

export interface DeviceCheck {
  /** Why the options are refused, or null. */
  error: string | null;
  /** blk: capacity in 512-byte sectors. */
  capacity: number | null;
}

/** Build the model once with its options; report the model's own complaint, if any. */
export function preflightDevice(spec: DeviceSpec): DeviceCheck {
  const type = spec.type;
  try {
    withheldFeatures(spec);
    if (spec.transport === 'ccw') parseCcwOptions(type, spec.options);
    else {
      // Only ccw has transport options: 'mmio.x' would be dropped unseen.
      const stray = Object.keys(spec.options ?? {}).find((k) => k.startsWith(`${spec.transport}.`));
      if (stray !== undefined) throw new Error(`unknown option '${stray}' (the ${spec.transport} transport takes no options)`);
    }
    const model = createDeviceModel(type, modelOptions(spec), { retained: new Map() });
    let capacity: number | null = null;
    if (model instanceof BlkDevice) {
      capacity = model.capacity;
      if (model.medium instanceof FileMedium) model.medium.close();
    }
    if (model instanceof ConsoleDevice) model.backend.close();
    return { error: null, capacity };
  } catch (err) {
    // The path or option already names the device: drop the model's "blk: " prefix.
    return { error: describeOptionError(err).replace(`${type}: `, ''), capacity: null };
  }
}

/** "ENOENT: no such file or directory, open 'x'" → "cannot open 'x': no such file or directory". */
function describeOptionError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const sys = err as NodeJS.ErrnoException;
  if (sys.syscall && sys.code) {
    const what = sys.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
    return `cannot ${sys.syscall} '${sys.path ?? '?'}': ${what}`;
  }
  return err.message;
}

/** The console's output defaults to stdout, which --json reserves for its document. */
export function consoleOutConflictsWithJson(type: string, options: Readonly<Record<string, DeviceOptionValue>>): 'default' | 'explicit' | null {
  if (type !== 'console') return null;
  const out = options['out'];
  if (out === undefined) return 'default';
  return out === 'stdout' ? 'explicit' : null;
}
