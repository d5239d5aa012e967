// Device model types by name ('rng', ...), as used in DeviceSpec.type.
// Built-in models are listed here so the device worker, which loads this
// module on its own, knows them; registerDeviceType() adds models for
// in-thread boards (embedding, tests).
import { VIRTQUEUE_MAX_SIZE, isPowerOf2 } from '../../core/uapi/ring.js';
import type { DeviceFactory, DeviceHost, DeviceModel, DeviceOptions } from './device.js';
import { createBlk } from './blk/device.js';
import { createConsole } from './console/device.js';
import { createRng } from './rng.js';
import { createRtc } from './rtc.js';

/** The device models every board has. */
export const BUILTIN_DEVICE_TYPES = ['rng', 'blk', 'console', 'rtc'] as const;
export type DeviceType = (typeof BUILTIN_DEVICE_TYPES)[number];

declare const customDevice: unique symbol;
/**
 * A model that is not built in: one added with registerDeviceType() (for
 * in-thread boards), or one a board module of your own provides. Named
 * with customDeviceType('name'), so a misspelt built-in type ('nvme',
 * 'rgn') does not compile.
 */
export type CustomDeviceType = string & { readonly [customDevice]: true };

export function customDeviceType(name: string): CustomDeviceType {
  return name as CustomDeviceType;
}

const BUILTIN_FACTORIES: Record<DeviceType, DeviceFactory> = { rng: createRng, blk: createBlk, console: createConsole, rtc: createRtc };
const FACTORIES = new Map<string, DeviceFactory>(Object.entries(BUILTIN_FACTORIES));

/** Add a model for in-thread boards (embedding, tests); returns its name for MachineDevice.type. */
export function registerDeviceType(type: string, factory: DeviceFactory): CustomDeviceType {
  FACTORIES.set(type, factory);
  return customDeviceType(type);
}

/** `name` as a device type if a model of that name is known here (built in or registered), else null. */
export function knownDeviceType(name: string): DeviceType | CustomDeviceType | null {
  if (!FACTORIES.has(name)) return null;
  return (BUILTIN_DEVICE_TYPES as readonly string[]).includes(name) ? (name as DeviceType) : customDeviceType(name);
}

export function deviceTypes(): string[] {
  return [...FACTORIES.keys()].sort();
}

/** A new model instance; throws for an unknown type, bad options or an inconsistent model. */
export function createDeviceModel(type: string, options: DeviceOptions = {}, host: DeviceHost = { retained: new Map() }): DeviceModel {
  const factory = FACTORIES.get(type);
  if (!factory) throw new Error(`unknown device type '${type}' (known: ${deviceTypes().join(', ')})`);
  const model = factory(options, host);
  checkModel(model);
  return model;
}

/** Reject models the transports cannot expose (programming errors, not guest errors). */
export function checkModel(model: DeviceModel): void {
  if (!Number.isInteger(model.deviceId) || model.deviceId <= 0) throw new Error(`${model.name}: invalid device ID ${model.deviceId}`);
  for (const max of model.queueNumMax) {
    if (!isPowerOf2(max) || max > VIRTQUEUE_MAX_SIZE) {
      throw new Error(`${model.name}: QueueNumMax ${max} must be a power of 2 ≤ ${VIRTQUEUE_MAX_SIZE}`);
    }
  }
  if (!Number.isInteger(model.configSize) || model.configSize < 0) throw new Error(`${model.name}: invalid config size ${model.configSize}`);
}
