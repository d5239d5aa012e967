// The drivers this model ships, by name, with a small I/O exercise each so a
// runner can check a bound device end to end.
import { errnoName } from '../uapi/errno.js';
import { SECTOR_SIZE } from '../uapi/blk.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_RNG } from '../uapi/ids.js';
import type { VirtioDevice, VirtioDriver } from '../virtio.js';
import { virtblkFlush, virtblkGetId, virtblkInfo, virtblkRead, virtblkStats, virtblkWrite, virtioBlkDriver } from './blk.js';
import { virtconsInfo, virtconsStats, virtconsWrite, virtioConsoleDriver } from './console.js';
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

/** What the I/O check of a device may do. */
export interface ExerciseOptions {
  /** Size hint: bytes to read from an rng, sectors (rounded up) a blk check covers. */
  bytes: number;
  /**
   * blk only, where the check may write:
   * - 'end' (default): a pattern over the last sectors, read back, then the
   *   old contents written back (a RAM disk: nothing outlives the process);
   * - a range: a pattern over (the start of) that range, read back and left
   *   there (a scratch range the user gave up for it);
   * - null: nothing; the check only reads (a user's disk image).
   */
  blkWrites?: 'end' | { sector: number; count: number } | null;
}

export interface DriverEntry {
  /** Short name used on command lines ("rng"). */
  name: string;
  /** The device ID it binds (spec 5). */
  deviceId: number;
  driver: VirtioDriver;
  /** Default I/O for a bound device. */
  exercise(vdev: VirtioDevice, opts: ExerciseOptions): IoResult;
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

/** Sectors the blk check uses at most. */
const BLK_CHECK_MAX_SECTORS = 64;

/**
 * virtio-blk: GET_ID must answer, and a few sectors (`bytes` of them,
 * rounded up, at most 64) must read. Where opts.blkWrites allows, a pattern
 * is written there and read back: at the end of the disk with the old
 * contents put back afterwards ('end'), or in a scratch range, left there.
 * A read-only disk, or blkWrites null, is only read.
 */
const blk: DriverEntry = {
  name: 'blk',
  deviceId: VIRTIO_ID_BLOCK,
  driver: virtioBlkDriver,
  exercise(vdev, opts) {
    const { bytes } = opts;
    const failures: string[] = [];
    const fail = (what: string, r: number): void => void failures.push(`${vdev.name}: blk ${what} failed: ${errnoName(r)}`);
    const vblk = virtblkInfo(vdev);
    if (!vblk) return { ...blk.stats(vdev), failures: [`${vdev.name}: blk driver not bound`] };
    const writes = opts.blkWrites === undefined ? 'end' : opts.blkWrites;
    const want = Math.min(BLK_CHECK_MAX_SECTORS, Math.max(1, Math.ceil(bytes / SECTOR_SIZE)));
    const scratch = writes !== null && writes !== 'end' ? writes : null;
    const count = Math.min(vblk.capacity, want, scratch ? scratch.count : want);
    const sector = scratch ? scratch.sector : vblk.capacity - count;
    const id = virtblkGetId(vdev);
    if (typeof id === 'number') fail('GET_ID', id);
    const saved = virtblkRead(vdev, sector, count);
    if (typeof saved === 'number') {
      fail(`read of sectors ${sector}+${count}`, saved);
    } else if (!vblk.readOnly && writes !== null) {
      const salt = vblk.stats.requests & 0xff;
      const pattern = Uint8Array.from({ length: count * SECTOR_SIZE }, (_, i) => (i * 131 + salt + (i >> 9)) & 0xff);
      let r = virtblkWrite(vdev, sector, pattern);
      if (r < 0) fail(`write of sectors ${sector}+${count}`, r);
      const back = virtblkRead(vdev, sector, count);
      if (typeof back === 'number') fail(`read-back of sectors ${sector}+${count}`, back);
      else if (!back.every((b, i) => b === pattern[i])) failures.push(`${vdev.name}: blk sectors ${sector}+${count} read back differ from what was written`);
      if (!scratch) {
        r = virtblkWrite(vdev, sector, saved);
        if (r < 0) fail(`restore of sectors ${sector}+${count}`, r);
      }
      r = virtblkFlush(vdev);
      if (r < 0) fail('flush', r);
    }
    return { ...blk.stats(vdev), failures };
  },
  stats(vdev) {
    const s = virtblkStats(vdev);
    return { requests: s.requests, bytes: s.bytes, errors: s.errors };
  },
};

/** virtio-console: transmit one line; `bytes` is ignored. */
const cons: DriverEntry = {
  name: 'console',
  deviceId: VIRTIO_ID_CONSOLE,
  driver: virtioConsoleDriver,
  exercise(vdev) {
    const failures: string[] = [];
    if (!virtconsInfo(vdev)) return { ...cons.stats(vdev), failures: [`${vdev.name}: console driver not bound`] };
    const before = virtconsStats(vdev).linesSent;
    const line = `virtio-emu: ${vdev.name} console check\n`;
    const r = virtconsWrite(vdev, line);
    if (r < 0) failures.push(`${vdev.name}: console write failed: ${errnoName(r)}`);
    else if (virtconsStats(vdev).linesSent !== before + 1) failures.push(`${vdev.name}: console line not counted as sent`);
    return { ...cons.stats(vdev), failures };
  },
  stats(vdev) {
    const s = virtconsStats(vdev);
    return { requests: s.buffersSent, bytes: s.bytesSent + s.bytesReceived, errors: s.errors };
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
  [blk.name, blk],
  [cons.name, cons],
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
