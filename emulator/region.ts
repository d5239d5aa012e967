// What the board's address decoder asks of a region of the address map: a
// bank of virtio-mmio windows, a channel subsystem. Each region hosts the
// device cores of its transport; the board decodes addresses, owns the
// device models' lifetime, and reports per-slot state.
import type { AccessWidth } from '../core/bus.js';
import type { BoardConfig, DeviceSpec, IrqLines } from './board-contract.js';
import type { DeviceModel } from './devices/device.js';
import type { DeviceCore } from './virtio/device-core.js';
import type { Scheduler } from './virtio/scheduler.js';
import type { DeviceCounters } from './virtio/signals.js';
import type { GuestRam } from './vring/guest-ram.js';
import type { SnapshotOptions } from './snapshot/format.js';

/** Everything a region needs to host device cores on a board. */
export interface RegionEnv {
  config: BoardConfig;
  ram: GuestRam;
  irq: IrqLines;
  scheduler: Scheduler;
  weight?: number;
}

/** A device the board plugged into a region. */
export interface RegionDevice {
  slot: number;
  spec: DeviceSpec;
  model: DeviceModel;
  /** Features kept out of the model's offer (device option packed=false). */
  withheld: bigint;
}

/** What a region reports of one slot. */
export interface RegionSlotState {
  counters: DeviceCounters;
  /** virtio-mmio InterruptStatus (0 where the transport has none). */
  interruptStatus: number;
  /** Times the slot's line was raised. */
  irqRaised: number;
}

/** A slot's entry in a snapshot, as a region saves it; checked by the region before it is loaded. */
export interface SlotState {
  registers: unknown;
  device: unknown;
}

/** What a region does for snapshots of its devices (a region without it has none: the board refuses). */
export interface RegionSnapshots {
  /** The state of the device in `slot` (the board has made it quiescent); throws SnapshotError. */
  save(slot: number, opts: SnapshotOptions): SlotState;
  /** Check a slot's saved state against the device in `slot` (throws SnapshotError at `path`); changes nothing. */
  check(slot: number, state: SlotState, path: string, opts: SnapshotOptions): SlotState;
  /** Load a state check() returned into the device in `slot`, a fresh instance. */
  load(slot: number, state: SlotState, opts: SnapshotOptions): void;
}

export interface Region {
  readonly base: number;
  readonly size: number;
  /**
   * offset is in [0, size); offset + width may pass the end of a window or
   * of the region, and the region refuses such an access itself (read 0,
   * counted). Neither method throws for a guest mistake.
   */
  read(offset: number, width: AccessWidth): number;
  write(offset: number, width: AccessWidth, value: number): void;
  /** Platform reset of every device in the region. */
  reset(): void;
  /** The device core serving a board slot, for inject/fault/stats. */
  core(slot: number): DeviceCore | undefined;
  state(slot: number): RegionSlotState | undefined;
  readonly snapshots?: RegionSnapshots;
}

export type RegionFactory = (env: RegionEnv, devices: RegionDevice[]) => Region;
