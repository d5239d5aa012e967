// The drivers this model ships, by name, with a small I/O exercise each so a
// runner can check a bound device end to end.
import { errnoName } from '../uapi/errno.js';
import { VIRTIO_ID_CLOCK, VIRTIO_ID_RNG } from '../uapi/ids.js';
import type { VirtioDevice, VirtioDriver } from '../virtio.js';
import { virtioRngDriver, virtioRngRead, virtioRngStats } from './rng.js';
import { viortcDev, viortcRead, virtioRtcDriver, virtioRtcNoirqDriver } from './rtc.js';

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

/** virtio-rtc: read clock 0 a few times; `bytes` is ignored. */
function rtcEntry(name: string, driver: VirtioDriver): DriverEntry {
  const entry: DriverEntry = {
    name,
    deviceId: VIRTIO_ID_CLOCK,
    driver,
    exercise(vdev) {
      const failures: string[] = [];
      const vi = viortcDev(vdev);
      if (!vi) failures.push(`${vdev.name}: rtc driver not bound`);
      else
        for (let i = 0; i < 4; i++) {
          const r = viortcRead(vi, 0);
          if (typeof r === 'number') failures.push(`${vdev.name}: clock read failed: ${errnoName(r)}`);
        }
      return { ...entry.stats(vdev), failures };
    },
    stats(vdev) {
      const s = viortcDev(vdev)?.stats;
      return s ? { requests: s.requests, bytes: s.completed * 8, errors: s.errors } : { requests: 0, bytes: 0, errors: 0 };
    },
  };
  return entry;
}

/** The clock driver with noirq callbacks (the patch's use case) binds first. */
const rtc = rtcEntry('rtc', virtioRtcNoirqDriver);
const rtcClassic = rtcEntry('rtc-classic', virtioRtcDriver);

/** Every driver, by name, in match order. */
export const drivers: ReadonlyMap<string, DriverEntry> = new Map([
  [rng.name, rng],
  [rtc.name, rtc],
  [rtcClassic.name, rtcClassic],
]);

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
