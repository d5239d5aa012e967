// Bounds on what a host user controls through the tools (command-line
// options, scenario files, trace files, fuzz runs), in one place so --help,
// the README and the checks agree. The machine's own bounds (slots, RAM,
// timeouts) are MACHINE_LIMITS in emulator/machine.ts; the qtest server's
// are QTEST_LIMITS in tools/qtest/server.ts. Every bound is checked before
// anything is allocated.
import { SECTOR_SIZE } from '../core/uapi/blk.js';

export const RUN_LIMITS = {
  /** Bytes of one I/O check (--bytes) or one rng-read / exercise step. */
  maxIoBytes: 16 * 1024 * 1024,
  /** Sleep/wake cycles of one run: --cycles, or the sum of a scenario's pm steps. */
  maxCycles: 1_000_000,
  /** --fail injections of one run, or of one pm step. */
  maxFails: 64,
  /** PM cycles listed one by one in a report; later ones are counted in pmSummary (and listed if they failed, up to as many again). */
  reportCycles: 100,
  /** Problems listed in a report's warnings; the rest are counted. */
  reportWarnings: 200,
  /** Bytes of a run snapshot file (--snapshot-at writes it, --restore reads it): the device document and the non-zero parts of guest RAM. */
  maxSnapshotFileBytes: 1024 * 1024 * 1024,
} as const;

export const SCENARIO_LIMITS = {
  /** Bytes of a scenario file. */
  maxFileBytes: 1024 * 1024,
  /** Nesting of arrays and objects (the grammar needs 6). */
  maxDepth: 16,
  maxSteps: 10_000,
  /** Sectors one blk step may cover (its data is generated in memory). */
  maxStepSectors: (256 * 1024 * 1024) / SECTOR_SIZE,
  /** Sectors all blk-write steps together may write (what blk-verify remembers). */
  maxWrittenSectors: (1024 * 1024 * 1024) / SECTOR_SIZE,
  /** Problems reported for one file; the count of the rest is given. */
  maxIssues: 50,
} as const;

export const FUZZ_LIMITS = {
  /** --seconds */
  maxSeconds: 7 * 24 * 3600,
  /** --property given at most this often. */
  maxProperties: 64,
} as const;
