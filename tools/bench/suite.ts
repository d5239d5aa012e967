// Runs the registered cases one after another in this process and reports
// median and p99 of per-op batch times, with ratios between cases.
import { allCases } from './cases/index.js';
import { machineInfo, type MachineInfo } from './machine-info.js';
import { measure } from './stats.js';
import { BenchSkip, type BenchCase, type BenchContext, type BenchExtras } from './case.js';
import { startHogs } from './contend.js';

/** Contention levels of a run unless told otherwise: busy processes beside the pair. */
export const DEFAULT_CONTEND_LEVELS: readonly number[] = [2, 4];

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
  /**
   * Busy-process counts at which cases marked `contend` run again, right
   * after their quiet run (default DEFAULT_CONTEND_LEVELS; empty: none).
   * Given explicitly, it also applies to the cases a filter picks.
   */
  contendLevels?: readonly number[];
  /** Called as each case finishes (progress output): the result, and how many of how many runs are done. */
  onResult?: (r: BenchResult, done: number, total: number) => void;
}

function failed(name: string, err: unknown): BenchResult {
  const msg = err instanceof Error ? err.message : String(err);
  const r: BenchResult = { name, median_ns: NaN, p99_ns: NaN, ops_per_s: NaN };
  if (err instanceof BenchSkip) r.skipped = msg;
  else r.error = msg;
  return r;
}

/** The result name of a case at a contention level. */
export function contendName(name: string, level: number): string {
  return level > 0 ? `${name}.contend${level}` : name;
}

/**
 * Set up, measure, tear down. With ctx.contend > 0 the busy processes run
 * from just before the warm-up to the end of the measurement, so setup and
 * teardown (booting and closing machines) are not slowed by them.
 */
async function runCase(c: BenchCase, ctx: BenchContext): Promise<BenchResult> {
  const level = ctx.contend ?? 0;
  const name = contendName(c.name, level);
  try {
    if (c.measureSelf) {
      if (level > 0) throw new BenchSkip('self-timed cases do not run under contention');
      const t = await c.measureSelf(ctx);
      const { extras, ...timing } = t;
      return withPerDevice({ name, ...timing, ...(extras ?? {}) });
    }
    if (!c.setup) throw new Error('case has neither setup nor measureSelf');
    const inst = await c.setup(ctx);
    try {
      const hogs = level > 0 ? await startHogs(level) : null;
      let t: Awaited<ReturnType<typeof measure>>;
      try {
        t = await measure(inst, ctx);
      } finally {
        await hogs?.stop();
      }
      const extras: BenchExtras = inst.extras ? inst.extras(t) : {};
      return withPerDevice({ name, ...t, ...extras, ...(level > 0 ? { contend: level } : {}) });
    } finally {
      await inst.teardown();
    }
  } catch (err) {
    return failed(name, err);
  }
}

/** A case over several devices also gets its median per device. */
function withPerDevice(r: BenchResult): BenchResult {
  const n = r['devices'];
  if (typeof n === 'number' && n > 1 && Number.isFinite(r.median_ns)) r['median_ns_per_device'] = r.median_ns / n;
  return r;
}

/** ratio = this median / the named case's median, when both ran. */
function applyRatio(r: BenchResult, ratioTo: string | undefined, results: readonly BenchResult[]): void {
  if (!ratioTo) return;
  r.ratio_to = ratioTo;
  const base = results.find((x) => x.name === ratioTo);
  if (base && Number.isFinite(base.median_ns) && Number.isFinite(r.median_ns) && base.median_ns > 0) {
    r.ratio = r.median_ns / base.median_ns;
  }
}

/** One measurement of a run: a case at a contention level (0: quiet). */
interface Run {
  c: BenchCase;
  level: number;
}

/**
 * What a run measures. Without a filter: every case, and every case marked
 * `contend` again at each level (a quick run: only at levels given
 * explicitly). With a filter: the cases whose name contains a word; their
 * contention variants when the levels were given explicitly, or when a word
 * names a variant (`--filter .contend4`, which also brings in the quiet run
 * the ratio needs).
 */
export function plan(all: readonly BenchCase[], filter: string | undefined, levelsOpt: readonly number[] | undefined, quick = false): Run[] {
  const words = filter ? filter.split(',').filter((w) => w !== '') : [];
  const levels = [...new Set(levelsOpt ?? DEFAULT_CONTEND_LEVELS)].filter((n) => n > 0).sort((a, b) => a - b);
  const runs: Run[] = [];
  for (const c of all) {
    const base = words.length === 0 || words.some((w) => c.name.includes(w));
    const variants = c.contend
      ? levels.filter((level) => {
          const name = contendName(c.name, level);
          if (words.some((w) => w.includes('.contend') && name.includes(w))) return true;
          if (levelsOpt !== undefined) return base;
          // The default levels: a full run has them, a quick or filtered one does not.
          return words.length === 0 && !quick;
        })
      : [];
    if (!base && variants.length === 0) continue;
    runs.push({ c, level: 0 });
    for (const level of variants) runs.push({ c, level });
  }
  return runs;
}

export async function runBench(opts: BenchRunOptions): Promise<BenchReport> {
  const runs = plan(opts.cases ?? allCases, opts.filter, opts.contendLevels, opts.quick);
  const ctx: BenchContext = { quick: opts.quick, ...(opts.boardModule ? { boardModule: opts.boardModule } : {}) };
  const machine = machineInfo();
  const results: BenchResult[] = [];
  /** Each result's ratio target, by index. */
  const ratioTos: (string | undefined)[] = [];
  for (const { c, level } of runs) {
    const r = await runCase(c, level > 0 ? { ...ctx, contend: level } : ctx);
    // A contended run is compared with the same case measured quiet just before.
    const ratioTo = level > 0 ? c.name : c.ratioTo;
    applyRatio(r, ratioTo, results);
    results.push(r);
    ratioTos.push(ratioTo);
    opts.onResult?.(r, results.length, runs.length);
  }
  // A ratio to a case that ran later (or was filtered in after this one).
  for (const [i, r] of results.entries()) if (r.ratio === undefined) applyRatio(r, ratioTos[i], results);
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
