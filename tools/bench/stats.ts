// Timing: warm up, size batches, time many batches with hrtime, and
// summarise the per-op time of each batch (batch time / batch size).
import type { BenchContext, BenchInstance } from './case.js';

export interface Timing {
  median_ns: number;
  p99_ns: number;
  ops_per_s: number;
  batches: number;
  batch_size: number;
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** Median and p99 of unsorted samples (ns per op). */
export function summarise(samples: number[]): { median_ns: number; p99_ns: number; ops_per_s: number } {
  const s = [...samples].sort((a, b) => a - b);
  const median = quantile(s, 0.5);
  return { median_ns: median, p99_ns: quantile(s, 0.99), ops_per_s: 1e9 / median };
}

async function timeBatch(inst: BenchInstance, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  let r = inst.run(n);
  if (r instanceof Promise) r = await r;
  const wall = Number(process.hrtime.bigint() - t0);
  return typeof r === 'number' ? r : wall;
}

/** Per-case time budget: warm-up and measurement windows, ms. */
export function budget(ctx: BenchContext): { warmupMs: number; measureMs: number; minBatches: number } {
  return ctx.quick ? { warmupMs: 40, measureMs: 150, minBatches: 15 } : { warmupMs: 500, measureMs: 2000, minBatches: 200 };
}

export async function measure(inst: BenchInstance, ctx: BenchContext): Promise<Timing> {
  const b = budget(ctx);
  const warmupNs = b.warmupMs * 1e6;
  const measureNs = b.measureMs * 1e6;
  // Long enough to dwarf the timer, short enough for many batches.
  const targetBatchNs = 200_000;
  const minBatches = inst.minBatches ?? b.minBatches;

  let size = inst.batchSize ?? 1;
  const warmStart = process.hrtime.bigint();
  for (;;) {
    const t = await timeBatch(inst, size);
    if (inst.batchSize === undefined && t < targetBatchNs && size < 1 << 24) size *= 2;
    if (Number(process.hrtime.bigint() - warmStart) >= warmupNs) break;
  }

  const perOp: number[] = [];
  const start = process.hrtime.bigint();
  while (perOp.length < minBatches || Number(process.hrtime.bigint() - start) < measureNs) {
    perOp.push((await timeBatch(inst, size)) / size);
  }
  return { ...summarise(perOp), batches: perOp.length, batch_size: size };
}
