// The drivers this model ships, by name, with a small I/O exercise each so a
// runner can check a bound device end to end.
import { errnoName } from '../uapi/errno.js';
import { VIRTIO_ID_RNG } from '../uapi/ids.js';
import type { VirtioDevice, VirtioDriver } from '../virtio.js';
import { virtioRngDriver, virtioRngRead, virtioRngStats } from './rng.js';

export interface IoStats {
  requests: number;
  bytes: number;
  errors: number;
}

export interface IoResult extends IoStats {
  /** Problems seen (one line each). */
  failures: string[];
}

export interface DriverEntry {
  /** Short name used on command lines ("rng"). */
  name: string;
  /** The device ID it binds (spec 5). */
  deviceId: number;
  driver: VirtioDriver;
  /** Default I/O for a bound device; `bytes` is a size hint. */
  exercise(vdev: VirtioDevice, opts: { bytes: number }): IoResult;
  /** I/O totals of a device so far. */
  stats(vdev: VirtioDevice): IoStats;
}

const rng: DriverEntry = {
  name: 'rng',
  deviceId: VIRTIO_ID_RNG,
  driver: virtioRngDriver,
  exercise(vdev, { bytes }) {
    const failures: string[] = [];
    const r = virtioRngRead(vdev, bytes, true);
    if (typeof r === 'number') failures.push(`${vdev.name}: rng read of ${bytes} bytes failed: ${errnoName(r)}`);
    else if (r.length !== bytes) failures.push(`${vdev.name}: rng read returned ${r.length} of ${bytes} bytes`);
    return { ...rng.stats(vdev), failures };
  },
  stats(vdev) {
    const s = virtioRngStats(vdev);
    return { requests: s.completed, bytes: s.bytes, errors: s.errors };
  },
};

/** Every driver, by name. */
export const drivers: ReadonlyMap<string, DriverEntry> = new Map([[rng.name, rng]]);

export function driverByName(name: string): DriverEntry | undefined {
  return drivers.get(name);
}

export function driverForDeviceId(deviceId: number): DriverEntry | undefined {
  for (const d of drivers.values()) if (d.deviceId === deviceId) return d;
  return undefined;
}

export function driverNames(): string[] {
  return [...drivers.keys()];
}
