// Benchmark cases. A group is one file under tools/bench/cases/ exporting
// its cases; cases/index.ts lists the groups in report order.

export interface BenchContext {
  /** Shorter warm-up and measurement. */
  quick: boolean;
  /** Module exporting createBoard, for cases that boot a machine (default: the real board). */
  boardModule?: string;
  /** Busy processes running beside the measurement (the *.contendN variants); 0 or absent: none. */
  contend?: number;
}

/** Extra per-result fields a case reports (accesses_per_device, iops, ...). */
export type BenchExtras = Record<string, number | string | boolean>;

/** A case set up and ready to measure. */
export interface BenchInstance {
  /**
   * Run n operations back to back. May return the nanoseconds the n
   * operations took when the batch also does untimed work (re-arming a
   * probe); otherwise the wall time of the call is used.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a case's run returns nothing, or the time it measured itself
  run(n: number): void | number | Promise<void | number>;
  teardown(): void | Promise<void>;
  /** Operations per batch, for operations too slow to batch-size by doubling (a probe of 1024 devices). */
  batchSize?: number;
  /** Fewest batches for a stable median when one operation is slow (default: the harness's). */
  minBatches?: number;
  /** Fields added to the result after measuring (given the timing, for derived rates). */
  extras?(t: { median_ns: number; ops_per_s: number }): BenchExtras;
}

/**
 * A case that takes its own measurement instead of the batch timer (an idle
 * window, a one-off memory reading): it returns the per-op time itself.
 */
export interface SelfTimed {
  median_ns: number;
  p99_ns: number;
  ops_per_s: number;
  extras?: BenchExtras;
}

export interface BenchCase {
  /** "group.what.how", e.g. "mmio.read32.trap". */
  name: string;
  description: string;
  /** Report this case's median as a multiple of another case's (ratio = this / that). */
  ratioTo?: string;
  /**
   * Also run the case with busy processes beside it (the run's contention
   * levels), reported as `<name>.contend<N>` with the ratio to this case.
   */
  contend?: boolean;
  setup?(ctx: BenchContext): Promise<BenchInstance>;
  /** Instead of setup: measure in one go. */
  measureSelf?(ctx: BenchContext): Promise<SelfTimed>;
}

/** Thrown by setup when a case cannot run here (QEMU not installed): reported as skipped, not failed. */
export class BenchSkip extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchSkip';
  }
}
