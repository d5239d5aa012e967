// A test-side driver that programs a board with raw register accesses and
// lays out split rings in guest RAM with plain memory writes, the way a
// guest kernel would. No driver-side model code is involved, so the tests
// exercise the device side exactly as a hostile or buggy guest could.
import { PLATFORM } from '../../core/bus.js';
import type { AccessWidth } from '../../core/bus.js';
import { REG, MMIO_WINDOW_SIZE } from '../../core/uapi/mmio.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../core/uapi/status.js';
import { alignUp, availRingSize, descTableSize, usedRingSize } from '../../core/uapi/ring.js';
import { VIRTIO_F_RING_PACKED, bit, fromWords, hi32, lo32 } from '../../core/uapi/features.js';
import { createBoard, type BoardOptions, type BoardStats, type SlotStats } from '../../emulator/board.js';
import type { Board, DeviceSpec, IrqLines } from '../../emulator/board-contract.js';
import type { ClockMode } from '../../emulator/virtio/clock.js';

export const RAM_BASE = PLATFORM.RAM_BASE;
export const MMIO_BASE = PLATFORM.MMIO_BASE;

/** IrqLines that records every raise/lower and tracks the level per line. */
export class RecordingIrq implements IrqLines {
  readonly events: { op: 'raise' | 'lower'; line: number }[] = [];
  private readonly level = new Map<number, boolean>();
  raise(line: number): void {
    this.events.push({ op: 'raise', line });
    this.level.set(line, true);
  }
  lower(line: number): void {
    this.events.push({ op: 'lower', line });
    this.level.set(line, false);
  }
  isHigh(line: number): boolean {
    return this.level.get(line) ?? false;
  }
  raises(line: number): number {
    return this.events.filter((e) => e.op === 'raise' && e.line === line).length;
  }
}

/** A controllable clock for device timers. */
export class FakeClock {
  t = 0;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface TestBoard {
  board: Board;
  ram: Uint8Array;
  view: DataView;
  irq: RecordingIrq;
  clock: FakeClock;
  alloc: Alloc;
}

export const TEST_RAM_SIZE = 1 << 20;

export function makeBoard(
  devices: (DeviceSpec | null)[],
  /** clock: the board's virtual clock drives the timers (default: the FakeClock of the TestBoard does). */
  opts: { slots?: number; ramSize?: number; weight?: number; clock?: ClockMode } = {},
): TestBoard {
  const ramSize = opts.ramSize ?? TEST_RAM_SIZE;
  const ram = new Uint8Array(new SharedArrayBuffer(ramSize));
  const irq = new RecordingIrq();
  const clock = new FakeClock();
  const boardOpts: BoardOptions = opts.clock ? {} : { now: clock.now };
  if (opts.weight !== undefined) boardOpts.weight = opts.weight;
  const board = createBoard(
    { ramBase: RAM_BASE, ramSize, mmioBase: MMIO_BASE, slots: opts.slots ?? Math.max(devices.length, 1), devices, ...(opts.clock ? { clock: opts.clock } : {}) },
    ram,
    irq,
    boardOpts,
  );
  return { board, ram, view: new DataView(ram.buffer), irq, clock, alloc: new Alloc(RAM_BASE + 0x1000, ramSize - 0x1000) };
}

/** Bump allocator over guest RAM (guest-physical addresses). */
export class Alloc {
  private next: number;
  private readonly end: number;
  constructor(base: number, size: number) {
    this.next = base;
    this.end = base + size;
  }
  take(len: number, align = 16): number {
    const at = alignUp(this.next, align);
    if (at + len > this.end) throw new Error('test RAM exhausted');
    this.next = at + len;
    return at;
  }
}

/** Guest-side view of one split ring, written with plain memory stores. */
export class RawRing {
  private availIdx = 0;
  constructor(
    private readonly tb: TestBoard,
    readonly num: number,
    readonly desc: number,
    readonly avail: number,
    readonly used: number,
  ) {}

  private off(addr: number): number {
    return addr - RAM_BASE;
  }
  writeDesc(i: number, addr: number, len: number, flags = 0, next = 0, table = this.desc): void {
    const v = this.tb.view;
    const at = this.off(table + 16 * i);
    v.setUint32(at, addr % 0x1_0000_0000, true);
    v.setUint32(at + 4, Math.floor(addr / 0x1_0000_0000), true);
    v.setUint32(at + 8, len, true);
    v.setUint16(at + 12, flags, true);
    v.setUint16(at + 14, next, true);
  }
  /** Put head on the avail ring and publish the new avail idx. */
  addAvail(head: number): void {
    const v = this.tb.view;
    v.setUint16(this.off(this.avail + 4 + 2 * (this.availIdx % this.num)), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    v.setUint16(this.off(this.avail + 2), this.availIdx, true);
  }
  /** Overwrite avail idx directly (corruption tests). */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.tb.view.setUint16(this.off(this.avail + 2), this.availIdx, true);
  }
  setAvailFlags(flags: number): void {
    this.tb.view.setUint16(this.off(this.avail), flags, true);
  }
  setUsedEvent(v: number): void {
    this.tb.view.setUint16(this.off(this.avail + 4 + 2 * this.num), v, true);
  }
  availEvent(): number {
    return this.tb.view.getUint16(this.off(this.used + 4 + 8 * this.num), true);
  }
  usedIdx(): number {
    return this.tb.view.getUint16(this.off(this.used + 2), true);
  }
  usedElem(i: number): { id: number; len: number } {
    const at = this.off(this.used + 4 + 8 * (i % this.num));
    return { id: this.tb.view.getUint32(at, true), len: this.tb.view.getUint32(at + 4, true) };
  }
}

export interface InitOptions {
  /**
   * Features to accept; default: everything offered but VIRTIO_F_RING_PACKED,
   * since this driver lays out split rings (packedFeatures accepts it too).
   */
  features?: (offered: bigint) => bigint;
  /** Stop before DRIVER_OK (queue setup comes in between). */
  driverOk?: boolean;
}

/** What a split-ring driver accepts of an offer: everything but VIRTIO_F_RING_PACKED. */
export function splitFeatures(offered: bigint): bigint {
  return offered & ~bit(VIRTIO_F_RING_PACKED);
}

/** What a packed-ring driver accepts: everything offered (VIRTIO_F_RING_PACKED included). */
export function packedFeatures(offered: bigint): bigint {
  return offered;
}

/** Raw register access to one slot, plus the spec 3.1.1 / 4.2.3 procedures. */
export class RawDriver {
  readonly base: number;
  constructor(
    readonly tb: TestBoard,
    readonly slot = 0,
  ) {
    this.base = MMIO_BASE + MMIO_WINDOW_SIZE * slot;
  }

  get line(): number {
    return this.slot;
  }
  read(offset: number, width: AccessWidth = 4): number {
    return this.tb.board.read(this.base + offset, width);
  }
  write(offset: number, value: number, width: AccessWidth = 4): void {
    this.tb.board.write(this.base + offset, width, value);
  }
  status(): number {
    return this.read(REG.Status);
  }
  addStatus(bits: number): void {
    this.write(REG.Status, this.status() | bits);
  }
  reset(): void {
    this.write(REG.Status, 0);
  }
  /** Device features, high word first as Linux reads them. */
  deviceFeatures(): bigint {
    this.write(REG.DeviceFeaturesSel, 1);
    const hi = this.read(REG.DeviceFeatures);
    this.write(REG.DeviceFeaturesSel, 0);
    return fromWords(this.read(REG.DeviceFeatures), hi);
  }
  writeDriverFeatures(f: bigint): void {
    this.write(REG.DriverFeaturesSel, 1);
    this.write(REG.DriverFeatures, hi32(f));
    this.write(REG.DriverFeaturesSel, 0);
    this.write(REG.DriverFeatures, lo32(f));
  }
  /**
   * Steps 1-6 of spec 3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK,
   * read back. Returns the status read back after FEATURES_OK.
   */
  negotiate(opts: InitOptions = {}): number {
    this.reset();
    this.addStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    this.addStatus(VIRTIO_CONFIG_S_DRIVER);
    const offered = this.deviceFeatures();
    this.writeDriverFeatures(opts.features ? opts.features(offered) : splitFeatures(offered));
    this.addStatus(VIRTIO_CONFIG_S_FEATURES_OK);
    return this.status();
  }
  driverOk(): void {
    this.addStatus(VIRTIO_CONFIG_S_DRIVER_OK);
  }

  /** spec 4.2.3.2 for a v2 device: layout allocated from test RAM, zeroed. */
  setupQueue(q: number, num: number): RawRing {
    const a = this.tb.alloc;
    const desc = a.take(descTableSize(num), 16);
    const avail = a.take(availRingSize(num), 2);
    const used = a.take(usedRingSize(num), 4);
    this.programQueue(q, num, desc, avail, used);
    this.write(REG.QueueReady, 1);
    return new RawRing(this.tb, num, desc, avail, used);
  }
  programQueue(q: number, num: number, desc: number, avail: number, used: number): void {
    this.write(REG.QueueSel, q);
    this.write(REG.QueueNum, num);
    const pair = (low: number, a: number) => {
      this.write(low, a % 0x1_0000_0000);
      this.write(low + 4, Math.floor(a / 0x1_0000_0000));
    };
    pair(REG.QueueDescLow, desc);
    pair(REG.QueueDriverLow, avail);
    pair(REG.QueueDeviceLow, used);
  }

  /** Legacy (v1) queue setup: GuestPageSize must have been written. */
  setupLegacyQueue(q: number, num: number, pageSize: number, align: number): RawRing {
    const a = this.tb.alloc;
    const usedOff = alignUp(descTableSize(num) + availRingSize(num), align);
    const base = a.take(usedOff + usedRingSize(num), Math.max(pageSize, align));
    this.write(REG.QueueSel, q);
    this.write(REG.QueueNum, num);
    this.write(REG.QueueAlign, align);
    this.write(REG.QueuePFN, base / pageSize);
    return new RawRing(this.tb, num, base, base + descTableSize(num), base + usedOff);
  }

  /** Full v2 bring-up: negotiate, one queue per entry of nums, DRIVER_OK. */
  bringUp(nums: number[], opts: InitOptions = {}): RawRing[] {
    this.negotiate(opts);
    const rings = nums.map((n, q) => this.setupQueue(q, n));
    this.driverOk();
    return rings;
  }

  interruptStatus(): number {
    return this.read(REG.InterruptStatus);
  }
  ack(bits: number): void {
    this.write(REG.InterruptACK, bits);
  }
  notify(q: number): void {
    this.write(REG.QueueNotify, q);
  }
}

export function ramBytes(tb: TestBoard, addr: number, len: number): Uint8Array {
  return tb.ram.subarray(addr - RAM_BASE, addr - RAM_BASE + len);
}

export function slotStats(tb: TestBoard, slot = 0): SlotStats {
  return boardStats(tb).slots[slot]!;
}

export function boardStats(tb: TestBoard): BoardStats {
  const res = tb.board.control({ op: 'stats' });
  if (!res.ok) throw new Error(res.error);
  return res.value as BoardStats;
}
