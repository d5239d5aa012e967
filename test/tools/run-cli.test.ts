// `virtio-emu run` as a child process (the documented JSON and summary, exit
// codes), and its plan/step structure in-process.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSettings } from '../../tools/cli/run.js';
import { executePlan } from '../../tools/run/execute.js';
import { formatText } from '../../tools/run/format.js';
import { buildPlan, type RunStep } from '../../tools/run/plan.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('virtio-emu run', () => {
  it('--device rng --json prints the documented document with ok=true and exits 0', () => {
    const r = run('--device', 'rng', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({
      ok: true,
      warnings: [],
      devices: [
        {
          slot: 0,
          deviceId: 4,
          name: 'rng',
          transport: 'mmio',
          status: 0x0f,
          features: '0x0000000530000000',
          io: { bytes: 4096, errors: 0 },
        },
      ],
    });
    const io = (doc.devices as { io: { requests: number } }[])[0]!.io;
    expect(io.requests).toBeGreaterThanOrEqual(64);
  });

  it('prints a readable summary for several legacy devices', () => {
    const r = run('--device', 'rng', '--device', 'rng', '--transport', 'mmio-legacy', '--bytes', '10000');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^slot 0: virtio0 rng \(mmio-legacy\) driver virtio_rng {2}status 0x07 ACKNOWLEDGE\|DRIVER\|DRIVER_OK .* 10000 bytes, 0 errors$/);
    expect(lines[1]).toMatch(/^slot 1: virtio1 rng \(mmio-legacy\)/);
    expect(lines[2]).toBe('ok');
  });

  it('rejects bad input with one line on stderr and exit status 2', () => {
    for (const args of [['--device', 'nosuch'], ['--transport', 'pci'], ['--bytes', '0'], ['--frobnicate']]) {
      const r = run(...args);
      expect({ args, code: r.code, stdout: r.stdout, lines: r.stderr.trim().split('\n').length }).toEqual({ args, code: 2, stdout: '', lines: 1 });
    }
  });
});

describe('run plan', () => {
  it('builds settings from options and defaults to one rng on mmio', () => {
    expect(parseSettings({}).devices).toEqual([{ type: 'rng', transport: 'mmio' }]);
    const s = parseSettings({ device: ['rng,slot=3', 'rng,transport=mmio'], transport: 'mmio-legacy', json: true, bus: 'inthread' });
    expect(s.devices).toEqual([
      { type: 'rng', slot: 3, transport: 'mmio-legacy' },
      { type: 'rng', transport: 'mmio' },
    ]);
    expect(s).toMatchObject({ json: true, bus: 'inthread', ioBytes: 4096 });
    expect(buildPlan(s).steps.map((x) => x.name)).toEqual(['probe', 'io']);
  });

  it('runs extra steps and turns a device that refuses FEATURES_OK into ok=false with the reason', async () => {
    const plan = buildPlan(parseSettings({ bus: 'inthread' }));
    plan.machine.beforeBoot = (m) => void m.control({ op: 'inject', slot: 0, event: 'refuse-features' });
    let ran = false;
    const extra: RunStep = { name: 'extra', run: () => void (ran = true) };
    plan.steps.push(extra);
    const report = await executePlan(plan);
    expect(ran).toBe(true);
    expect(report.ok).toBe(false);
    expect(report.devices[0]!.status & 0x80).toBe(0x80);
    expect(report.warnings.join('\n')).toMatch(/device refuses features/);
    expect(report.warnings.join('\n')).toMatch(/not bound: probe failed with -ENODEV/);
    expect(formatText(report).trim().split('\n').pop()).toBe('FAILED');
  });
});
