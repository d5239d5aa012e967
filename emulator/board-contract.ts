// The contract between the machine (guest RAM, trap mailbox, worker,
// interrupt controller) and the board it hosts (address decoder, transports,
// device models). The board runs wherever the bus puts it: in the device
// worker, or in the caller's thread for the in-thread bus.
import type { AccessWidth } from '../core/bus.js';
import type { ClockMode } from './virtio/clock.js';

export type TransportKind = 'mmio' | 'mmio-legacy' | 'ccw';

export type DeviceOptionValue = string | number | boolean;

/** One device to plug into a slot. */
export interface DeviceSpec {
  /** Device model name: 'rng', 'blk', 'console', 'rtc', ... */
  type: string;
  transport: TransportKind;
  options?: Record<string, DeviceOptionValue>;
}

export interface BoardConfig {
  ramBase: number;
  ramSize: number;
  mmioBase: number;
  /** Number of virtio-mmio windows; slot i drives interrupt line i. */
  slots: number;
  /** Index = slot; null = empty slot (reads DeviceID 0). */
  devices: (DeviceSpec | null)[];
  /** The virtual clock: 'host' (default) runs with the host's time, 'manual' only moves by the 'clock' control request (qtest). */
  clock?: ClockMode;
}

/** Device side of the interrupt controller. */
export interface IrqLines {
  raise(line: number): void;
  lower(line: number): void;
}

/**
 * What the platform does to devices across a system sleep (VIRTIO-NOTES
 * §3.3 item 6): retain their state, reset them, replace them by new
 * instances (fresh), or save their state at power-off and load it into new
 * instances at power-on (snapshot, through the snapshot document).
 */
export const POWER_MODELS = ['retain', 'reset', 'fresh', 'snapshot'] as const;
export type PowerModel = (typeof POWER_MODELS)[number];

/** Control-plane requests (msgpackr records; never per register access). */
export type ControlRequest =
  | { op: 'ping' }
  | { op: 'stats' }
  /** Platform power event for devices across system sleep. */
  | { op: 'power'; model: PowerModel }
  /** The devices' state as a snapshot document (a Uint8Array; emulator/snapshot/format.ts), taken at a quiescent point. */
  | { op: 'snapshot' }
  /** Load a snapshot document into this machine's devices (check: only validate it); a refusal changes nothing. */
  | { op: 'restore'; doc: Uint8Array; check?: boolean }
  /** Device-side event injection (config change, needs-reset, ...). */
  | { op: 'inject'; slot: number; event: string; args?: Record<string, DeviceOptionValue> }
  /**
   * The virtual clock (ns since power-on, as decimal strings: the clock is
   * an int64, past 2^53): read it, `step` it by that many ns or to the next
   * timer's deadline, or move it `to` a time; timers come due on the way.
   * The value is { ns, moved }.
   */
  | { op: 'clock'; step?: string | 'deadline'; to?: string }
  /** Test hook: make the worker misbehave (crash, hang) to test fault handling. */
  | { op: 'fault'; kind: 'crash' | 'hang' | 'throw-in-device'; slot?: number; ms?: number };

export type ControlResponse = { ok: true; value?: unknown } | { ok: false; error: string };

export interface Board {
  /** A trapped read. Never throws: a bad access reads 0 and counts a guest error. */
  read(addr: number, width: AccessWidth): number;
  /** A trapped write. Never throws: a bad access is ignored and counts a guest error. */
  write(addr: number, width: AccessWidth, value: number): void;
  /** Run deferred device work (queue processing) within budget; true if more remains. */
  runDeferred(budget: number): boolean;
  hasDeferred(): boolean;
  /** ms until the next device timer, or Infinity. */
  nextTimerMs(): number;
  control(req: ControlRequest): ControlResponse;
  /**
   * The worker's hook into device work (optional: a board without it never
   * yields early). Queue handlers call it every few chains; it publishes the
   * worker's heartbeat and returns true when a register access is waiting,
   * and the handler then stops at that chain boundary and re-queues itself,
   * as when its weight is spent, so a trapped access (a kick) never waits
   * for a whole queue's worth of work.
   */
  setYieldHook?(hook: (() => boolean) | null): void;
}
