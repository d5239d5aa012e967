// `npm start`: the default scenario (scenarios/default.json) run in-process
// through its runner, and as the CLI prints it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ScenarioRunReport as RunReport } from '../../tools/scenario/report.js';
import { loadScenario, runScenario } from '../../tools/scenario/run-scenario.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT = fileURLToPath(new URL('../../../scenarios/default.json', import.meta.url));
const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

describe('npm start', () => {
  it('builds, then runs the default scenario', () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toBe('npm run build && node dist/tools/cli.js run --scenario scenarios/default.json');
  });

  it('the default scenario passes: every device bound, I/O on each, a suspend with the noirq rtc, a hibernation with power loss, the disk verified after each', async () => {
    const r: RunReport = await runScenario(loadScenario(DEFAULT));
    expect(r.warnings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.devices.map((d) => `${d.name}:${d.driver}:${d.status}`)).toEqual([
      'rng:virtio_rng:15',
      'blk:virtio_blk:15',
      'console:virtio_console:15',
      'rtc:virtio_rtc_noirq:15',
    ]);
    for (const d of r.devices) {
      expect(d.io.requests).toBeGreaterThan(0);
      expect(d.io.errors).toBe(0);
    }
    const steps = r.scenario!.steps;
    expect(steps.every((s) => s.result === 'ok')).toBe(true);
    // one suspend: the rtc (slot 3) came back in resume_noirq, with device power reset
    const [suspend, hibernate] = r.pm!;
    expect(suspend).toMatchObject({ kind: 'suspend', power: 'reset', result: '0', devicesOk: true });
    expect(suspend!.phases).toContainEqual({ phase: 'resume_noirq', slot: 3, result: '0' });
    // one hibernation with power loss: a boot kernel quiesced, the image restored
    expect(hibernate).toMatchObject({ kind: 'hibernate', power: 'fresh', result: '0', devicesOk: true });
    expect(hibernate!.phases.some((p) => p.kernel === 'boot')).toBe(true);
    expect(hibernate!.phases).toContainEqual({ phase: 'restore_noirq', slot: 3, result: '0' });
    // the disk verified after each
    const pmAt = steps.filter((s) => s.do === 'pm').map((s) => s.index);
    for (const at of pmAt) {
      expect(steps.some((s) => s.do === 'blk-verify' && s.index > at && s.result === 'ok')).toBe(true);
    }
    expect(steps.find((s) => s.index > pmAt[1]! && s.do === 'blk-verify')!.detail).toMatch(/^all 384 written sectors read back as written/);
  });

  it('prints a short summary: the steps, the devices, ok; no progress bar off a terminal', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--scenario', DEFAULT], { encoding: 'utf8', timeout: 60_000, cwd: ROOT });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`scenario default (${DEFAULT})`);
    expect(lines.filter((l) => /^ +\d+ ok {3}/.test(l))).toHaveLength(16);
    expect(lines.filter((l) => l.startsWith('slot '))).toHaveLength(4);
    expect(lines.length).toBeLessThanOrEqual(24);
    expect(lines[lines.length - 1]).toBe('ok');
  });

  it('with --json prints one JSON document with the scenario steps', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--scenario', DEFAULT, '--json'], { encoding: 'utf8', timeout: 60_000, cwd: ROOT });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as RunReport;
    expect(doc.ok).toBe(true);
    expect(doc.scenario!.name).toBe('default');
    expect(doc.scenario!.steps).toHaveLength(16);
    expect(doc.pm!.map((c) => c.kind)).toEqual(['suspend', 'hibernate']);
  });
});
