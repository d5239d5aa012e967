// Runs the registered cases one after another in this process and reports
// median and p99 of per-op batch times, with ratios between cases.
import * as os from 'node:os';
import { allCases } from './cases/index.js';
import { measure } from './stats.js';
import type { BenchCase, BenchContext } from './registry.js';

export interface BenchResult {
  name: string;
  median_ns: number;
  p99_ns: number;
  ops_per_s: number;
  ratio_to?: string;
  /** median / median of ratio_to */
  ratio?: number;
  batches?: number;
  batch_size?: number;
  /** Set when the case could not be set up or failed; no timings then. */
  error?: string;
}

export interface BenchReport {
  machine: { cpus: number; cpu_model: string; node: string; v8: string; platform: string; arch: string };
  results: BenchResult[];
}

export interface BenchRunOptions extends BenchContext {
  /** Only cases whose name contains this. */
  filter?: string;
  cases?: BenchCase[];
  /** Called as each case finishes (progress output). */
  onResult?: (r: BenchResult) => void;
}

export async function runBench(opts: BenchRunOptions): Promise<BenchReport> {
  const all = opts.cases ?? allCases;
  const selected = opts.filter ? all.filter((c) => c.name.includes(opts.filter!)) : all;
  const ctx: BenchContext = { quick: opts.quick, ...(opts.boardModule ? { boardModule: opts.boardModule } : {}) };
  const results: BenchResult[] = [];
  for (const c of selected) {
    let r: BenchResult;
    try {
      const inst = await c.setup(ctx);
      try {
        const t = await measure(inst, ctx);
        r = { name: c.name, ...t };
      } finally {
        await inst.teardown();
      }
    } catch (err) {
      r = { name: c.name, median_ns: NaN, p99_ns: NaN, ops_per_s: NaN, error: err instanceof Error ? err.message : String(err) };
    }
    if (c.ratioTo) {
      r.ratio_to = c.ratioTo;
      const base = results.find((x) => x.name === c.ratioTo);
      if (base && !base.error && !r.error) r.ratio = r.median_ns / base.median_ns;
    }
    results.push(r);
    opts.onResult?.(r);
  }
  const cpus = os.cpus();
  return {
    machine: {
      cpus: cpus.length,
      cpu_model: cpus[0]?.model ?? 'unknown',
      node: process.versions.node,
      v8: process.versions.v8,
      platform: process.platform,
      arch: process.arch,
    },
    results,
  };
}

function ns(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)} µs`;
  return `${v.toFixed(0)} ns`;
}

export function formatRow(r: BenchResult): string {
  if (r.error) return `${r.name.padEnd(30)} skipped: ${r.error.split('\n')[0]}`;
  const ops = Number.isFinite(r.ops_per_s) ? Math.round(r.ops_per_s).toLocaleString('en-US') : '-';
  const ratio = r.ratio !== undefined ? `${r.ratio.toFixed(2)}x ${r.ratio_to}` : '';
  return `${r.name.padEnd(30)} ${ns(r.median_ns).padStart(10)} ${ns(r.p99_ns).padStart(10)} ${ops.padStart(12)}  ${ratio}`;
}

export function formatHeader(report: Pick<BenchReport, 'machine'>): string {
  const m = report.machine;
  return [
    `node ${m.node} on ${m.platform}/${m.arch}, ${m.cpus} x ${m.cpu_model}`,
    `${'case'.padEnd(30)} ${'median'.padStart(10)} ${'p99'.padStart(10)} ${'ops/s'.padStart(12)}  ratio`,
  ].join('\n');
}
