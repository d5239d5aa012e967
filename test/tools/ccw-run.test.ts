// `virtio-emu run --transport ccw`: every device model over virtio-ccw, with
// suspend and hibernation cycles, in-process and as the CLI.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSettings } from '../../tools/cli/run.js';
import { executePlan } from '../../tools/run/execute.js';
import { buildPlan } from '../../tools/run/plan.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

describe('virtio-emu run --transport ccw', () => {
  it('runs every device model over ccw with the driver I/O checks', async () => {
    const s = parseSettings({ transport: 'ccw', device: ['rng', 'blk', 'console,out=none', 'rtc'], bus: 'inthread' });
    expect(s.devices.every((d) => d.transport === 'ccw')).toBe(true);
    const r = await executePlan(buildPlan(s));
    expect(r.warnings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.devices.map((d) => [d.name, d.transport, d.status, d.io.errors])).toEqual([
      ['rng', 'ccw', 0x0f, 0],
      ['blk', 'ccw', 0x0f, 0],
      ['console', 'ccw', 0x0f, 0],
      ['rtc', 'ccw', 0x0f, 0],
    ]);
  });

  it.each(['suspend', 'hibernate'])('%s cycles over ccw beside mmio: every cycle ok and the devices work after', async (pm) => {
    const s = parseSettings({ transport: 'ccw', device: ['rng', 'blk,transport=mmio', 'console,out=none'], pm, cycles: '2', power: 'fresh' });
    const r = await executePlan(buildPlan(s));
    expect(r.warnings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.pm!.map((c) => [c.kind, c.result, c.devicesOk])).toEqual([
      [pm, '0', true],
      [pm, '0', true],
    ]);
    expect(r.devices.map((d) => d.transport)).toEqual(['ccw', 'mmio', 'ccw']);
  });

  it('a driver with restore_noirq on ccw: suspend is refused with -EOPNOTSUPP and the devices keep working', async () => {
    const s = parseSettings({ transport: 'ccw', device: ['rtc', 'rng'], pm: 'suspend' });
    const r = await executePlan(buildPlan(s));
    expect(r.pm![0]).toMatchObject({ result: '-EOPNOTSUPP', failedStep: 'suspend', devicesOk: true });
    expect(r.devices.map((d) => [d.transport, d.status])).toEqual([
      ['ccw', 0x0f],
      ['ccw', 0x0f],
    ]);
  });

  it('the CLI accepts --transport ccw and reports the transport', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--transport', 'ccw', '--json'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { ok: boolean; devices: { transport: string; io: { bytes: number } }[] };
    expect(doc.ok).toBe(true);
    expect(doc.devices).toMatchObject([{ transport: 'ccw', io: { bytes: 4096 } }]);
  });
});
