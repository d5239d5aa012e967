// The benchmark suite's shape, never its timings (2 noisy cores): the CLI
// runs and prints the documented JSON, ratios are medians over medians,
// skips are reported as skips, and the qtest client speaks to `virtio-emu qtest`.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MAGIC_VALUE, REG } from '../../core/uapi/mmio.js';
import { PLATFORM } from '../../core/bus.js';
import { launchSelf } from '../../tools/bench/qemu.js';
import { runSequence } from '../../tools/bench/register-sequence.js';
import { BenchSkip, type BenchCase } from '../../tools/bench/case.js';
import { runBench, type BenchReport } from '../../tools/bench/suite.js';

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

  it('--list names every case and the table goes to stdout', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'bench', '--list'], { timeout: 20_000 });
    for (const name of ['sab.pingpong', 'mmio.write32.reset.trap', 'peer.qemu.qtest.read32', 'pm.suspend_cycle.32dev', 'rng.rtt16', 'blk.read4k.qd64', 'idle.worker.cpu']) {
      expect(stdout).toContain(name);
    }
  });
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
