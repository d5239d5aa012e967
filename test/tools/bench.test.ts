// The benchmark suite's shape, never its timings (2 noisy cores): the CLI
// runs and prints the documented JSON, ratios are medians over medians,
// skips are reported as skips, and the qtest client speaks to `virtio-emu qtest`.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MAGIC_VALUE, REG } from '../../core/uapi/mmio.js';
import { PLATFORM } from '../../core/bus.js';
import { launchSelf } from '../../tools/bench/qemu.js';
import { runSequence } from '../../tools/bench/register-sequence.js';
import { BenchSkip, type BenchCase } from '../../tools/bench/case.js';
import { contendName, plan, runBench, type BenchReport } from '../../tools/bench/suite.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

function expectResultShape(r: Record<string, unknown>): void {
  expect(typeof r['name']).toBe('string');
  for (const k of ['median_ns', 'p99_ns', 'ops_per_s']) expect(k in r).toBe(true);
}

describe('virtio-emu bench', () => {
  it('--quick --json --filter prints {machine, results} with ratios where a pair is defined', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'bench', '--quick', '--json', '--filter', 'sab.pingpong,mmio.read32'], { timeout: 60_000 });
    const report = JSON.parse(stdout) as BenchReport;
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(typeof report.machine.node).toBe('string');
    expect(report.results.map((r) => r.name)).toEqual(['sab.pingpong', 'mmio.read32.trap', 'mmio.read32.inthread']);
    for (const r of report.results) {
      expectResultShape(r);
      expect(r.error).toBeUndefined();
      expect(r.median_ns).toBeGreaterThan(0);
      expect(r.p99_ns).toBeGreaterThanOrEqual(r.median_ns);
    }
    const trap = report.results[1]!;
    expect(trap.ratio_to).toBe('sab.pingpong');
    expect(trap.ratio).toBeCloseTo(trap.median_ns / report.results[0]!.median_ns, 6);
    expect(trap['accesses_per_op']).toBe(1);
  }, 60_000);

  it('with stderr not a terminal, progress is one short line per case, never the rows the table prints', async () => {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'bench', '--quick', '--filter', 'mmio.read32'], { timeout: 60_000 });
    expect(stderr.trimEnd().split('\n')).toEqual(['bench: 1/2 mmio.read32.trap', 'bench: 2/2 mmio.read32.inthread']);
    expect(stdout).toMatch(/^mmio\.read32\.trap +\d/m);
  }, 60_000);

  it('usage errors: exit 2 and one line', async () => {
    for (const [args, message] of [
      [['--filter', 'nomatch'], /^virtio-emu bench: --filter: no case matches 'nomatch' \(bench --list names them\)$/],
      [['--json', '--markdown'], /^virtio-emu bench: --json and --markdown are two output formats: give one$/],
      [['--contend', '-1'], /^virtio-emu bench: --contend takes busy-process counts 0\.\.64/],
    ] as [string[], RegExp][]) {
      const r = spawnSync(process.execPath, [CLI, 'bench', ...args], { encoding: 'utf8', timeout: 20_000 });
      expect({ code: r.status, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(message);
    }
  });

  it('a reader that closes the pipe early (bench --list | head -2) ends it quietly: exit 0, no stack trace', async () => {
    const child = spawn(process.execPath, [CLI, 'bench', '--list'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Gone before the first line is written, as `| true` is (and `| head` may be).
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('--list names every case and the table goes to stdout', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'bench', '--list'], { timeout: 20_000 });
    for (const name of ['sab.pingpong', 'mmio.write32.reset.trap', 'peer.qemu.qtest.read32', 'pm.suspend_cycle.32dev', 'rng.rtt16', 'blk.read4k.qd64', 'idle.worker.cpu']) {
      expect(stdout).toContain(name);
    }
    for (const name of ['ring.rng.packed', 'blk.read4k.qd64.packed', 'blk.write4k.qd64.packed']) {
      expect(stdout).toMatch(new RegExp(`^${name.replaceAll('.', '\\.')} +\\S.*packed ring`, 'm'));
    }
  });

  it('the ring cases run on the layout their name says: split unless named .packed, compared with the split case', async () => {
    const report = await runBench({ quick: true, filter: 'ring.rng.eventidx_on,ring.rng.packed,blk.write4k.qd64', contendLevels: [] });
    expect(report.results.map((r) => [r.name, r['ring'], r.ratio_to])).toEqual([
      ['ring.rng.eventidx_on', 'split', 'sab.ring'],
      ['ring.rng.packed', 'packed', 'ring.rng.eventidx_on'],
      ['blk.write4k.qd64', 'split', 'blk.write4k.qd1'],
      ['blk.write4k.qd64.packed', 'packed', 'blk.write4k.qd64'],
    ]);
    for (const r of report.results) expect(r.error).toBeUndefined();
    const packed = report.results[1]!;
    expect(packed.ratio).toBeCloseTo(packed.median_ns / report.results[0]!.median_ns, 6);
  }, 120_000);
});

describe('runner', () => {
  const fake = (name: string, ratioTo?: string): BenchCase => ({
    name,
    description: name,
    ...(ratioTo ? { ratioTo } : {}),
    setup: async () => ({ run: () => {}, teardown: () => {}, batchSize: 8, extras: () => ({ tag: name }) }),
  });

  it('reports skips apart from failures and fills ratios to cases that ran later', async () => {
    const cases: BenchCase[] = [
      fake('a', 'b'),
      fake('b'),
      { name: 'skipped', description: '', setup: () => Promise.reject(new BenchSkip('not here')) },
      { name: 'broken', description: '', setup: () => Promise.reject(new Error('boom')) },
    ];
    const report = await runBench({ quick: true, cases });
    const [a, b, s, x] = report.results;
    expect(a!.ratio).toBeCloseTo(a!.median_ns / b!.median_ns, 6);
    expect(a!['tag']).toBe('a');
    expect(s!.skipped).toBe('not here');
    expect(s!.error).toBeUndefined();
    expect(x!.error).toBe('boom');
    expect(JSON.parse(JSON.stringify(report)).results[2].median_ns).toBeNull();
  });
});

describe('qtest client', () => {
  it('drives `virtio-emu qtest` through the register sequence', async () => {
    const client = await launchSelf();
    try {
      const base = PLATFORM.MMIO_BASE;
      expect(await client.readl(base + REG.MagicValue)).toBe(MAGIC_VALUE);
      await runSequence({ read: (a) => client.readl(a), write: (a, v) => client.writel(a, v) }, base, true);
      expect(await client.readl(base + REG.Status)).toBe(0);
    } finally {
      client.close();
    }
  });
});

describe('contention variants', () => {
  const quiet = (name: string, contend?: boolean): BenchCase => ({
    name,
    description: name,
    ...(contend ? { contend } : {}),
    setup: async () => ({ run: () => {}, teardown: () => {}, batchSize: 8 }),
  });
  const names = (runs: { c: BenchCase; level: number }[]): string[] => runs.map((r) => contendName(r.c.name, r.level));

  it('runs cases marked contend again at each level, right after their quiet run', () => {
    const cases = [quiet('a', true), quiet('b'), quiet('c', true)];
    expect(names(plan(cases, undefined, undefined))).toEqual(['a', 'a.contend2', 'a.contend4', 'b', 'c', 'c.contend2', 'c.contend4']);
    expect(names(plan(cases, undefined, [4]))).toEqual(['a', 'a.contend4', 'b', 'c', 'c.contend4']);
    expect(names(plan(cases, undefined, []))).toEqual(['a', 'b', 'c']);
  });

  it('a quick run has no variants unless levels are given or a word names one', () => {
    const cases = [quiet('a', true), quiet('b')];
    expect(names(plan(cases, undefined, undefined, true))).toEqual(['a', 'b']);
    expect(names(plan(cases, undefined, [2], true))).toEqual(['a', 'a.contend2', 'b']);
    expect(names(plan(cases, 'a.contend4', undefined, true))).toEqual(['a', 'a.contend4']);
  });

  it('with a filter, adds variants only when the levels are given or a word names one', () => {
    const cases = [quiet('x.one', true), quiet('x.two', true), quiet('y')];
    expect(names(plan(cases, 'x.', undefined))).toEqual(['x.one', 'x.two']);
    expect(names(plan(cases, 'x.one,y', [2]))).toEqual(['x.one', 'x.one.contend2', 'y']);
    expect(names(plan(cases, 'two.contend4', undefined))).toEqual(['x.two', 'x.two.contend4']);
    expect(names(plan(cases, '.contend2', undefined))).toEqual(['x.one', 'x.one.contend2', 'x.two', 'x.two.contend2']);
  });

  it('measures a variant with the busy processes running, as a ratio to the quiet run, and stops them after', async () => {
    let seen = 0;
    const c: BenchCase = {
      name: 'probe',
      description: '',
      contend: true,
      setup: async (ctx) => ({
        run: () => {
          seen = Math.max(seen, ctx.contend ?? 0);
        },
        teardown: () => {},
        batchSize: 8,
      }),
    };
    const report = await runBench({ quick: true, cases: [c], contendLevels: [1] });
    const [q, v] = report.results;
    expect(q!.name).toBe('probe');
    expect(v!.name).toBe('probe.contend1');
    expect(v!['contend']).toBe(1);
    expect(v!.ratio_to).toBe('probe');
    expect(v!.ratio).toBeCloseTo(v!.median_ns / q!.median_ns, 6);
    expect(seen).toBe(1);
  });
});
