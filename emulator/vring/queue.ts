// What the device core and the transports ask of a device-side virtqueue,
// whichever ring layout it uses: the split ring (split-queue.ts, spec 2.7)
// or the packed ring (packed-queue.ts, spec 2.8). Transports program the
// layout registers; the device core enables, pops, pushes and decides on
// notifications; a snapshot saves and loads the device's own indices.
import type { GuestRam } from './guest-ram.js';
import type { DescriptorChain, EpochSource } from './chain.js';
import { bool, fail, record, u32 } from '../snapshot/fields.js';

export type RingKind = 'split' | 'packed';

/** Ring features in effect for a queue, fixed when it is enabled. */
export interface RingFeatures {
  indirect: boolean;
  eventIdx: boolean;
}

/** The registers a driver programs, as they were written (validated only at enable). */
export interface QueueRegisters {
  num: number;
  descLo: number;
  descHi: number;
  driverLo: number;
  driverHi: number;
  deviceLo: number;
  deviceHi: number;
}

/** The device's private ring state, as a snapshot carries it (see DeviceQueue.saveState). */
export interface QueueState {
  kind: RingKind;
  regs: QueueRegisters;
  ready: boolean;
  parked: boolean;
  /** The ring features the queue was enabled with (ready queues only). */
  features?: RingFeatures;
  /** Kind-specific indices of a ready queue (absent when it is not ready). */
  ring?: Record<string, number | boolean>;
}

export interface DeviceQueue extends EpochSource {
  readonly kind: RingKind;
  readonly index: number;
  /** QueueNumMax. */
  readonly maxSize: number;
  /** QueueNum as written; validated only when the queue is enabled. */
  num: number;
  readonly descLo: number;
  readonly descHi: number;
  readonly driverLo: number;
  readonly driverHi: number;
  readonly deviceLo: number;
  readonly deviceHi: number;
  readonly ready: boolean;
  /** A malformed ring was seen: no processing until the queue or device is reset. */
  parked: boolean;
  /** Bumped by every stop/reset: chains and deferred work from older epochs are dead. */
  epoch: number;
  /** Size in effect while ready. */
  readonly size: number;
  /** Chains popped and not yet used. */
  readonly pendingChains: number;

  setDesc(lo: number, hi: number): void;
  setDriver(lo: number, hi: number): void;
  setDevice(lo: number, hi: number): void;
  /** For transports that compute addresses (legacy QueuePFN, ccw SET_VQ). */
  setLayout(num: number, desc: number, driver: number, device: number): void;
  /** Why the programmed layout cannot be enabled, or null if it can. */
  check(ram: GuestRam): string | null;
  /** Enable with the programmed layout; returns the refusal reason or null. Indices start at the ring's beginning. */
  enable(ram: GuestRam, features: RingFeatures): string | null;
  /** QueueReady=0 / QueuePFN=0: stop using the ring; the layout registers are kept. */
  stop(): void;
  /** Device reset or queue reset (RING_RESET): everything back to defaults. */
  reset(): void;
  /** The next available chain, or null. Throws RingError on a malformed ring. */
  pop(ram: GuestRam): DescriptorChain | null;
  /** The same into the queue's reusable record, for a chain served and pushed before the next pop. */
  popRecord(ram: GuestRam): DescriptorChain | null;
  /** Put a popped chain on the used ring. False (nothing written) if it is stale or not in flight. */
  pushUsed(ram: GuestRam, chain: DescriptorChain, len: number): boolean;
  /** Whether the used buffers pushed since the last decision need a notification; consumes the pending state. */
  takeNotification(ram: GuestRam): boolean;

  /** The device's state for a snapshot; only taken with no chain in flight. */
  saveState(): QueueState;
  /**
   * Check a snapshot's record of this queue's kind (nothing in it checked
   * yet) for loading over `ram`; throws SnapshotError at `path`. Changes nothing.
   */
  checkState(ram: GuestRam, state: unknown, path: string): QueueState;
  /** Load a state checkState accepted. */
  loadState(ram: GuestRam, state: QueueState): void;
}

/**
 * The layout registers every ring kind has, as the transport programs them:
 * QueueNum and the three areas' addresses (split: descriptor table, avail,
 * used; packed: descriptor ring, driver and device event suppression).
 */
export abstract class QueueLayout {
  /** QueueNum as written; validated only when the queue is enabled. */
  num = 0;
  descLo = 0;
  descHi = 0;
  driverLo = 0;
  driverHi = 0;
  deviceLo = 0;
  deviceHi = 0;

  setDesc(lo: number, hi: number): void {
    this.descLo = lo >>> 0;
    this.descHi = hi >>> 0;
  }
  setDriver(lo: number, hi: number): void {
    this.driverLo = lo >>> 0;
    this.driverHi = hi >>> 0;
  }
  setDevice(lo: number, hi: number): void {
    this.deviceLo = lo >>> 0;
    this.deviceHi = hi >>> 0;
  }
  /** For transports that compute addresses (legacy QueuePFN, ccw SET_VQ). */
  setLayout(num: number, desc: number, driver: number, device: number): void {
    this.num = num >>> 0;
    const split = (a: number): [number, number] =>
      Number.isSafeInteger(a) && a >= 0 ? [a % 0x1_0000_0000, Math.floor(a / 0x1_0000_0000)] : [0xffff_ffff, 0xffff_ffff];
    this.setDesc(...split(desc));
    this.setDriver(...split(driver));
    this.setDevice(...split(device));
  }
}

export function copyRegisters(from: QueueRegisters, to: DeviceQueue): void {
  to.num = from.num;
  to.setDesc(from.descLo, from.descHi);
  to.setDriver(from.driverLo, from.driverHi);
  to.setDevice(from.deviceLo, from.deviceHi);
}

export function registersOf(q: QueueRegisters): QueueRegisters {
  return { num: q.num, descLo: q.descLo, descHi: q.descHi, driverLo: q.driverLo, driverHi: q.driverHi, deviceLo: q.deviceLo, deviceHi: q.deviceHi };
}

const REGISTER_KEYS = ['num', 'descLo', 'descHi', 'driverLo', 'driverHi', 'deviceLo', 'deviceHi'];

/** Refuse a snapshot's layout that `probe` (a fresh queue of the same kind) would not enable over `ram`. */
export function checkLayoutOn(probe: DeviceQueue, regs: QueueRegisters, ram: GuestRam, path: string): void {
  copyRegisters(regs, probe);
  const why = probe.check(ram);
  if (why) fail(`${path}.regs`, `layout refused: ${why}`);
}

/**
 * The common fields of a snapshot's queue record, checked (throws
 * SnapshotError at `path`): exactly the keys of a ready or a stopped queue,
 * u32 registers, boolean flags and ring features, and the ring record's
 * keys; its values are the queue kind's own check.
 */
export function checkCommonState(state: unknown, path: string, ringKeys: readonly string[]): QueueState {
  const pre = record(state, path, ['kind', 'regs', 'ready', 'parked'], ['features', 'ring']);
  const ready = bool(pre['ready'], `${path}.ready`);
  const parked = bool(pre['parked'], `${path}.parked`);
  record(state, path, ready ? ['kind', 'regs', 'ready', 'parked', 'features', 'ring'] : ['kind', 'regs', 'ready', 'parked']);
  const r = record(pre['regs'], `${path}.regs`, REGISTER_KEYS);
  for (const k of REGISTER_KEYS) u32(r[k], `${path}.regs.${k}`);
  if (!ready) {
    if (parked) fail(`${path}.parked`, 'a queue that is not ready cannot be parked');
    return pre as unknown as QueueState;
  }
  const f = record(pre['features'], `${path}.features`, ['indirect', 'eventIdx']);
  bool(f['indirect'], `${path}.features.indirect`);
  bool(f['eventIdx'], `${path}.features.eventIdx`);
  record(pre['ring'], `${path}.ring`, ringKeys);
  return pre as unknown as QueueState;
}
