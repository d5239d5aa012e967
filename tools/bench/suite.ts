// Runs the registered cases one after another in this process and reports
// median and p99 of per-op batch times, with ratios between cases.
import { allCases } from './cases/index.js';
import { machineInfo, type MachineInfo } from './machine-info.js';
import { measure } from './stats.js';
import { BenchSkip, type BenchCase, type BenchContext, type BenchExtras } from './case.js';

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
  /** Set when the case cannot run here (QEMU absent); no timings then. */
  skipped?: string;
  /** Set when the case failed; no timings then. */
  error?: string;
  /** Case-specific fields (accesses_per_device, iops, ...). */
  [extra: string]: number | string | boolean | undefined;
}

export interface BenchReport {
  machine: MachineInfo;
  results: BenchResult[];
}

export interface BenchRunOptions extends BenchContext {
  /** Only cases whose name contains this (or, comma-separated, any of these). */
  filter?: string;
  cases?: BenchCase[];
  /** Called as each case finishes (progress output). */
  onResult?: (r: BenchResult) => void;
}

function failed(name: string, err: unknown): BenchResult {
  const msg = err instanceof Error ? err.message : String(err);
  const r: BenchResult = { name, median_ns: NaN, p99_ns: NaN, ops_per_s: NaN };
  if (err instanceof BenchSkip) r.skipped = msg;
  else r.error = msg;
  return r;
}

async function runCase(c: BenchCase, ctx: BenchContext): Promise<BenchResult> {
  try {
    if (c.measureSelf) {
      const t = await c.measureSelf(ctx);
      const { extras, ...timing } = t;
      return withPerDevice({ name: c.name, ...timing, ...(extras ?? {}) });
    }
    if (!c.setup) throw new Error('case has neither setup nor measureSelf');
    const inst = await c.setup(ctx);
    try {
      const t = await measure(inst, ctx);
      const extras: BenchExtras = inst.extras ? inst.extras(t) : {};
      return withPerDevice({ name: c.name, ...t, ...extras });
    } finally {
      await inst.teardown();
    }
  } catch (err) {
    return failed(c.name, err);
  }
}

/** A case over several devices also gets its median per device. */
function withPerDevice(r: BenchResult): BenchResult {
  const n = r['devices'];
  if (typeof n === 'number' && n > 1 && Number.isFinite(r.median_ns)) r['median_ns_per_device'] = r.median_ns / n;
  return r;
}

/** ratio = this median / the named case's median, when both ran. */
function applyRatio(r: BenchResult, c: BenchCase, results: readonly BenchResult[]): void {
  if (!c.ratioTo) return;
  r.ratio_to = c.ratioTo;
  const base = results.find((x) => x.name === c.ratioTo);
  if (base && Number.isFinite(base.median_ns) && Number.isFinite(r.median_ns) && base.median_ns > 0) {
    r.ratio = r.median_ns / base.median_ns;
  }
}

export async function runBench(opts: BenchRunOptions): Promise<BenchReport> {
  const all = opts.cases ?? allCases;
  const words = opts.filter ? opts.filter.split(',').filter((w) => w !== '') : [];
  const selected = words.length ? all.filter((c) => words.some((w) => c.name.includes(w))) : all;
  const ctx: BenchContext = { quick: opts.quick, ...(opts.boardModule ? { boardModule: opts.boardModule } : {}) };
  const machine = machineInfo();
  const results: BenchResult[] = [];
  for (const c of selected) {
    const r = await runCase(c, ctx);
    applyRatio(r, c, results);
    results.push(r);
    opts.onResult?.(r);
  }
  // A ratio to a case that ran later (or was filtered in after this one).
  for (const [i, c] of selected.entries()) if (results[i]!.ratio === undefined) applyRatio(results[i]!, c, results);
  return { machine, results };
}

function ns(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)} µs`;
  return `${v.toFixed(0)} ns`;
}

function ops(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-';
}

/** The fields every result has; the rest are shown as key=value. */
const CORE_FIELDS = new Set(['name', 'median_ns', 'p99_ns', 'ops_per_s', 'ratio_to', 'ratio', 'batches', 'batch_size', 'skipped', 'error']);

function extrasText(r: BenchResult): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(r)) {
    if (CORE_FIELDS.has(k) || v === undefined) continue;
    parts.push(`${k}=${typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v}`);
  }
  return parts.join(' ');
}

const NAME_W = 36;

export function formatRow(r: BenchResult): string {
  if (r.skipped) return `${r.name.padEnd(NAME_W)} skipped: ${r.skipped}`;
  if (r.error) return `${r.name.padEnd(NAME_W)} FAILED: ${r.error.split('\n')[0]}`;
  const ratio = r.ratio !== undefined ? `${r.ratio.toFixed(2)}x ${r.ratio_to}` : '';
  const extra = extrasText(r);
  return `${r.name.padEnd(NAME_W)} ${ns(r.median_ns).padStart(10)} ${ns(r.p99_ns).padStart(10)} ${ops(r.ops_per_s).padStart(12)}  ${ratio}${extra ? `${ratio ? '  ' : ''}${extra}` : ''}`;
}

export function formatHeader(report: Pick<BenchReport, 'machine'>): string {
  const m = report.machine;
  return [
    `node ${m.node} on ${m.platform}/${m.arch}, ${m.cpus} x ${m.cpu_model}, load ${m.loadavg_1m}${m.qemu ? `, ${m.qemu}` : ', no QEMU'}`,
    `${'case'.padEnd(NAME_W)} ${'median'.padStart(10)} ${'p99'.padStart(10)} ${'ops/s'.padStart(12)}  ratio  extras`,
  ].join('\n');
}

export function formatTable(report: BenchReport): string {
  return [formatHeader(report), ...report.results.map(formatRow)].join('\n');
}

/** The report as a Markdown table (for the README's results section). */
export function formatMarkdown(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `node ${m.node}, ${m.platform}/${m.arch}, ${m.cpus} x ${m.cpu_model}, load ${m.loadavg_1m} at start${m.qemu ? `, ${m.qemu}` : ', no QEMU'}`,
    '',
    '| case | median | p99 | ops/s | ratio | extras |',
    '|---|---:|---:|---:|---|---|',
  ];
  for (const r of report.results) {
    if (r.skipped || r.error) {
      lines.push(`| ${r.name} | | | | | ${r.skipped ? `skipped: ${r.skipped}` : `FAILED: ${r.error!.split('\n')[0]}`} |`);
      continue;
    }
    const ratio = r.ratio !== undefined ? `${r.ratio.toFixed(2)}x ${r.ratio_to}` : '';
    lines.push(`| ${r.name} | ${ns(r.median_ns)} | ${ns(r.p99_ns)} | ${ops(r.ops_per_s)} | ${ratio} | ${extrasText(r)} |`);
  }
  return lines.join('\n');
}
