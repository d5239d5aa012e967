// A scenario file, as the validator hands it to the runner: every default
// filled in, every device reference resolved to a slot, every path absolute.
//
// The file (JSON):
//   { "name": "...", "description": "...",
//     "machine": { "bus": "worker"|"inthread", "slots": 32, "ramSize": "64M",
//                  "devices": [ { "type": "blk", "name": "disk", "transport": "mmio"|"mmio-legacy",
//                                 "slot": 1, "options": { "size": "16M" } }, ... ] },
//     "steps": [ { "do": KIND, ... }, ... ] }
// A device's name defaults to its type (rng0, rng1 when the type repeats);
// steps name a device by name or slot. Relative paths in device options
// (blk file, console out/in) are relative to the scenario file. Steps:
//   rng-read       device, bytes (4096)
//   blk-write      device, sector, count, seed | pattern
//   blk-read       device, sector, count
//   blk-verify     device [, sector, count, seed | pattern]: without a range,
//                  every sector written so far must read back as written
//   blk-flush      device
//   console-write  device, text          console-input  device, text (injected, must arrive)
//   exercise       [device], [bytes]: the driver's own I/O check (all devices without one)
//   inject         device, event, [args]: a board event (config-change, resize, ...)
//   pm             kind suspend|hibernate, [power retain|reset|fresh|snapshot], [cycles 1],
//                  [mode shutdown|platform] (hibernate only: hibernation_mode,
//                  default shutdown as Linux without platform hibernation ops),
//                  [fail: [{phase, slot|device, errno (EIO)}]],
//                  [expect: {result, failedStep, devicesOk}] (default without fail:
//                  result 0 and every device working after each cycle)
//   expect         [device], works, driver, status (byte or bit names), noirqState,
//                  register {name, value, width}, consoleSize {cols, rows},
//                  pm {result, failedStep, devicesOk} (the last cycle), noWarnings
// The first step that fails stops the scenario. Bounds (tools/limits.ts,
// checked before anything runs): a file of at most 1 MiB nested at most 16
// deep, 10 000 steps, bytes at most 16 MiB, 256 MiB per blk step and 1 GiB
// written in all, 1 000 000 cycles in all, 64 injections per pm step,
// slots 1..4096, ramSize 4096 B..3 GiB.
import type { PmCallbackName } from '../../core/pm/pm.js';
import type { HibernationMode } from '../../core/pm/system.js';
import type { BusKind } from '../../emulator/machine.js';
import type { DeviceOptionValue, TransportKind } from '../../emulator/board-contract.js';
import type { CustomDeviceType, DeviceType } from '../../emulator/devices/catalog.js';
import type { PowerModel } from '../system.js';

export interface ScenarioDevice {
  /** Unique within the scenario: given, or the type (rng, blk, ...) numbered when it repeats (rng0, rng1). */
  name: string;
  type: DeviceType | CustomDeviceType;
  transport: TransportKind;
  slot: number;
  options: Record<string, DeviceOptionValue>;
}

export interface ScenarioMachine {
  bus: BusKind;
  slots?: number;
  ramSize?: number;
  devices: ScenarioDevice[];
}

/** A device a step names, resolved. */
export interface DeviceRef {
  name: string;
  slot: number;
  type: DeviceType | CustomDeviceType;
}

/** Data a blk step writes or verifies: a seeded pseudo-random stream or a repeated text. */
export type DataSpec = { seed: number } | { pattern: string };

export interface PmExpect {
  /** 0 or -errno. */
  result?: number;
  failedStep?: string;
  /** Every device did its I/O check after the cycle. */
  devicesOk?: boolean;
}

export interface PmFail {
  phase: PmCallbackName;
  slot: number;
  /** Positive errno. */
  errno: number;
}

export type NoirqStateName = 'none' | 'entered' | 'restored';

export interface RegisterExpect {
  /** Register name (Status, InterruptStatus, ...) or Config+0xNN. */
  name: string;
  offset: number;
  width: 1 | 2 | 4;
  value: number;
}

export type Step =
  | { do: 'rng-read'; device: DeviceRef; bytes: number }
  | { do: 'blk-write'; device: DeviceRef; sector: number; count: number; data: DataSpec }
  | { do: 'blk-read'; device: DeviceRef; sector: number; count: number }
  /** Without a range: every sector the scenario wrote so far reads back as written. */
  | { do: 'blk-verify'; device: DeviceRef; range: { sector: number; count: number; data: DataSpec } | null }
  | { do: 'blk-flush'; device: DeviceRef }
  | { do: 'console-write'; device: DeviceRef; text: string }
  | { do: 'console-input'; device: DeviceRef; text: string }
  /** The driver's own I/O check (core/drivers registry) on one device, or on all. */
  | { do: 'exercise'; device: DeviceRef | null; bytes: number }
  | { do: 'inject'; device: DeviceRef; event: string; args: Record<string, DeviceOptionValue> }
  | {
      do: 'pm';
      kind: 'suspend' | 'hibernate';
      power: PowerModel;
      /** hibernation_mode (hibernate steps only). */
      mode?: HibernationMode;
      cycles: number;
      fail: PmFail[];
      expect: PmExpect | null;
    }
  | {
      do: 'expect';
      device: DeviceRef | null;
      works?: boolean;
      /** Bound driver's name, or null for unbound. */
      driver?: string | null;
      status?: number;
      noirqState?: NoirqStateName;
      register?: RegisterExpect;
      consoleSize?: { cols: number; rows: number };
      pm?: PmExpect;
      noWarnings?: boolean;
    };

export type StepKind = Step['do'];

export interface Scenario {
  name: string;
  description: string | null;
  /** The file it came from, if any (relative paths in it resolve against its directory). */
  file: string | null;
  machine: ScenarioMachine;
  steps: Step[];
}

/** Fields each step kind accepts besides "do". */
export const STEP_FIELDS: Record<StepKind, readonly string[]> = {
  'rng-read': ['device', 'bytes'],
  'blk-write': ['device', 'sector', 'count', 'seed', 'pattern'],
  'blk-read': ['device', 'sector', 'count'],
  'blk-verify': ['device', 'sector', 'count', 'seed', 'pattern'],
  'blk-flush': ['device'],
  'console-write': ['device', 'text'],
  'console-input': ['device', 'text'],
  exercise: ['device', 'bytes'],
  inject: ['device', 'event', 'args'],
  pm: ['kind', 'power', 'mode', 'cycles', 'fail', 'expect'],
  expect: ['device', 'works', 'driver', 'status', 'noirqState', 'register', 'consoleSize', 'pm', 'noWarnings'],
};

/** Total sleep/wake cycles of a scenario (for progress). */
export function totalCycles(s: Scenario): number {
  return s.steps.reduce((n, st) => n + (st.do === 'pm' ? st.cycles : 0), 0);
}
