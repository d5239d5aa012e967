// Benchmark cases. A group is one file under emulator/bench/cases/ exporting
// its cases; cases/index.ts lists the groups in report order.

export interface BenchContext {
  /** Shorter warm-up and measurement. */
  quick: boolean;
  /** Module exporting createBoard, for cases that boot a machine (default: the real board). */
  boardModule?: string;
}

/** A case set up and ready to measure. */
export interface BenchInstance {
  /** Run n operations back to back. */
  run(n: number): void | Promise<void>;
  teardown(): void | Promise<void>;
}

export interface BenchCase {
  /** "group.what.how", e.g. "mmio.read32.trap". */
  name: string;
  description: string;
  /** Report this case's median as a multiple of another case's. */
  ratioTo?: string;
  setup(ctx: BenchContext): Promise<BenchInstance>;
}
