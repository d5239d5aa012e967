// Timing: warm up, size batches, time many batches with hrtime, and
// summarise the per-op time of each batch (batch time / batch size).
import type { BenchContext, BenchInstance } from './registry.js';

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

async function timeBatch(inst: BenchInstance, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = inst.run(n);
  if (r) await r;
  return Number(process.hrtime.bigint() - t0);
}

export async function measure(inst: BenchInstance, ctx: BenchContext): Promise<Timing> {
  const warmupNs = (ctx.quick ? 100 : 500) * 1e6;
  const measureNs = (ctx.quick ? 300 : 2000) * 1e6;
  // Long enough to dwarf the timer, short enough for many batches.
  const targetBatchNs = 200_000;
  const minBatches = ctx.quick ? 30 : 200;

  let size = 1;
  const warmStart = process.hrtime.bigint();
  for (;;) {
    const t = await timeBatch(inst, size);
    if (t < targetBatchNs && size < 1 << 24) size *= 2;
    if (Number(process.hrtime.bigint() - warmStart) >= warmupNs) break;
  }

  const perOp: number[] = [];
  const start = process.hrtime.bigint();
  while (perOp.length < minBatches || Number(process.hrtime.bigint() - start) < measureNs) {
    perOp.push((await timeBatch(inst, size)) / size);
  }
  perOp.sort((a, b) => a - b);
  const median = quantile(perOp, 0.5);
  return {
    median_ns: median,
    p99_ns: quantile(perOp, 0.99),
    ops_per_s: 1e9 / median,
    batches: perOp.length,
    batch_size: size,
  };
}
