// The in-thread board every fuzz property drives: guest RAM, an interrupt
// controller stand-in that keeps each line's level, and the invariants that
// must hold after any access sequence (checked from the board's stats and
// the lines, never by touching device state directly).
import { PLATFORM, type AccessWidth, type GuestMemory } from '../../core/bus.js';
import { MMIO_WINDOW_SIZE, REG } from '../../core/uapi/mmio.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
} from '../../core/uapi/status.js';
import { createBoard, type BoardOptions, type BoardStats } from '../../emulator/board.js';
import type { Board, DeviceSpec, IrqLines } from '../../emulator/board-contract.js';
import { writesOutside, type Range } from '../testkit/ranges.js';

export const RAM_BASE = PLATFORM.RAM_BASE;
export const MMIO_BASE = PLATFORM.MMIO_BASE;
/** Guest RAM of a fuzz board: small, so snapshots and diffs stay cheap. */
export const FUZZ_RAM_SIZE = 64 * 1024;

/** Status bits a device without VIRTIO_F_SUSPEND may show. */
export const STATUS_BITS =
  VIRTIO_CONFIG_S_ACKNOWLEDGE |
  VIRTIO_CONFIG_S_DRIVER |
  VIRTIO_CONFIG_S_DRIVER_OK |
  VIRTIO_CONFIG_S_FEATURES_OK |
  VIRTIO_CONFIG_S_NEEDS_RESET |
  VIRTIO_CONFIG_S_FAILED;

/** Interrupt lines as levels: what a level-triggered controller would see. */
export class LevelIrq implements IrqLines {
  readonly level: boolean[] = [];
  raise(line: number): void {
    this.level[line] = true;
  }
  lower(line: number): void {
    this.level[line] = false;
  }
  high(line: number): boolean {
    return this.level[line] ?? false;
  }
}

/** A property failed: the message says which invariant and where. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

export function check(cond: boolean, what: string): void {
  if (!cond) throw new InvariantError(what);
}

export interface SlotView {
  slot: number;
  type: string | null;
  transport: string | null;
  status: number;
  interruptStatus: number;
  lastGuestError: string | null;
}

export class FuzzBoard {
  readonly board: Board;
  readonly ram: Uint8Array;
  readonly view: DataView;
  /** The same RAM as a driver sees it (guest-physical addresses). */
  readonly mem: GuestMemory;
  readonly irq = new LevelIrq();
  /** Device time in ms: it moves only when a property says so, so a run depends only on its input. */
  private now = 0;

  constructor(
    readonly devices: (DeviceSpec | null)[],
    readonly ramSize = FUZZ_RAM_SIZE,
    opts: { weight?: number } = {},
  ) {
    this.ram = new Uint8Array(ramSize);
    this.view = new DataView(this.ram.buffer);
    this.mem = { base: RAM_BASE, size: ramSize, u8: this.ram, view: this.view };
    const board: BoardOptions = { now: () => this.now };
    if (opts.weight !== undefined) board.weight = opts.weight;
    this.board = createBoard({ ramBase: RAM_BASE, ramSize, mmioBase: MMIO_BASE, slots: devices.length, devices }, this.ram, this.irq, board);
  }

  advance(ms: number): void {
    this.now += ms;
  }

  slotBase(slot: number): number {
    return MMIO_BASE + MMIO_WINDOW_SIZE * slot;
  }

  read(slot: number, off: number, width: AccessWidth = 4): number {
    return this.board.read(this.slotBase(slot) + off, width);
  }

  write(slot: number, off: number, value: number, width: AccessWidth = 4): void {
    this.board.write(this.slotBase(slot) + off, width, value);
  }

  /** Run deferred device work until none is left (bounded: a run that never ends is a failure). */
  run(maxItems = 100_000): void {
    let n = 0;
    while (this.board.hasDeferred()) {
      this.board.runDeferred(16);
      n += 16;
      check(n <= maxItems, `deferred work did not drain after ${maxItems} items`);
    }
  }

  stats(): BoardStats {
    const res = this.board.control({ op: 'stats' });
    if (!res.ok) throw new InvariantError(`stats refused: ${res.error}`);
    return res.value as BoardStats;
  }

  /** spec 3.1.1 steps 1-6 on a virtio-mmio window: returns Status read back. */
  negotiate(slot: number, features: bigint): number {
    this.write(slot, REG.Status, 0);
    this.write(slot, REG.Status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    this.write(slot, REG.Status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    this.write(slot, REG.DriverFeaturesSel, 1);
    this.write(slot, REG.DriverFeatures, Number((features >> 32n) & 0xffff_ffffn));
    this.write(slot, REG.DriverFeaturesSel, 0);
    this.write(slot, REG.DriverFeatures, Number(features & 0xffff_ffffn));
    this.write(slot, REG.Status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    return this.read(slot, REG.Status);
  }

  offered(slot: number): bigint {
    this.write(slot, REG.DeviceFeaturesSel, 1);
    const hi = this.read(slot, REG.DeviceFeatures);
    this.write(slot, REG.DeviceFeaturesSel, 0);
    return (BigInt(hi) << 32n) | BigInt(this.read(slot, REG.DeviceFeatures));
  }

  /**
   * Invariants after any access: no internal fault in the board, Status only
   * shows defined bits (and on a Version 2 device never DRIVER_OK without
   * FEATURES_OK), InterruptStatus only bits 0-1, and a virtio-mmio line is
   * high exactly while InterruptStatus is non-zero (level-triggered).
   */
  checkInvariants(where: string): void {
    const s = this.stats();
    check(s.internalErrors === 0, `${where}: board internal error: ${s.lastInternalError}`);
    for (const slot of s.slots as SlotView[]) {
      if (!slot.type) continue;
      const at = `${where}: slot ${slot.slot} (${slot.type} on ${slot.transport})`;
      check((slot.status & ~STATUS_BITS) === 0, `${at}: Status 0x${slot.status.toString(16)} has undefined bits`);
      if (slot.transport === 'mmio' && slot.status & VIRTIO_CONFIG_S_DRIVER_OK) {
        check((slot.status & VIRTIO_CONFIG_S_FEATURES_OK) !== 0, `${at}: DRIVER_OK without FEATURES_OK (0x${slot.status.toString(16)})`);
      }
      check(!/internally/.test(slot.lastGuestError ?? ''), `${at}: an internal failure was reported as a guest error: ${slot.lastGuestError}`);
      if (slot.transport === 'mmio' || slot.transport === 'mmio-legacy') {
        check((slot.interruptStatus & ~3) === 0, `${at}: InterruptStatus 0x${slot.interruptStatus.toString(16)} has undefined bits`);
        check(this.irq.high(slot.slot) === (slot.interruptStatus !== 0), `${at}: line ${this.irq.high(slot.slot) ? 'high' : 'low'} with InterruptStatus ${slot.interruptStatus}`);
      }
    }
  }

  /**
   * The registers a driver can read back on a virtio-mmio window, read the
   * same way each time without writing any selector first (after a reset
   * every selector is back at 0): the device's visible reset state.
   * ConfigGeneration is left out: it is monotonic across resets on purpose.
   */
  resetView(slot: number, queues: number): number[] {
    const version = this.read(slot, REG.Version);
    const regs: number[] = [REG.MagicValue, REG.Version, REG.DeviceID, REG.VendorID, REG.DeviceFeatures, REG.QueueNumMax, REG.InterruptStatus, REG.Status];
    if (version === 2) regs.push(REG.QueueReady, REG.QueueReset, REG.SHMLenLow, REG.SHMLenHigh, REG.SHMBaseLow, REG.SHMBaseHigh);
    else regs.push(REG.QueuePFN);
    const out = regs.map((r) => this.read(slot, r));
    out.push(this.irq.high(slot) ? 1 : 0);
    for (let q = 0; q < queues; q++) {
      this.write(slot, REG.QueueSel, q);
      out.push(this.read(slot, REG.QueueNumMax), this.read(slot, version === 2 ? REG.QueueReady : REG.QueuePFN));
    }
    this.write(slot, REG.QueueSel, 0);
    return out;
  }

  /** Queues of a slot: QueueNumMax is non-zero up to the first missing one. */
  queueCount(slot: number): number {
    let q = 0;
    for (; q < 64; q++) {
      this.write(slot, REG.QueueSel, q);
      if (this.read(slot, REG.QueueNumMax) === 0) break;
    }
    this.write(slot, REG.QueueSel, 0);
    return q;
  }
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** The first few ranges, for a failure message. */
export function formatRanges(ranges: Range[]): string {
  return ranges
    .slice(0, 4)
    .map((r) => `${hex(r.addr)}+${r.len}`)
    .join(', ');
}

/** Status=0 on slot 0, then the device's deferred work: it must write no guest memory after the reset. */
export function resetWritesNothing(fb: FuzzBoard): void {
  fb.write(0, REG.Status, 0);
  const before = fb.ram.slice();
  fb.run();
  const stray = writesOutside(fb.mem, before, []);
  check(stray.length === 0, `device wrote guest memory after Status=0: ${formatRanges(stray)}`);
}
