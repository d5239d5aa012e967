// Scenarios run in-process on real machines: each step kind, expectations
// that hold and that fail (the run stops there and reports the rest as
// skipped), injected PM failures with their expected outcome, and the
// progress bar's rules.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blkData, BlkShadow } from '../../tools/scenario/blk-data.js';
import { progressBar, type ProgressStream } from '../../tools/scenario/progress.js';
import { formatScenarioText } from '../../tools/scenario/report.js';
import { runScenario } from '../../tools/scenario/run-scenario.js';
import { validateScenario } from '../../tools/scenario/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'scenario-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Json = Record<string, unknown>;

function scenario(devices: Json[], steps: Json[], machine: Json = {}) {
  return validateScenario({ name: 'test', machine: { devices, ...machine }, steps });
}

async function run(devices: Json[], steps: Json[], machine: Json = {}) {
  const r = await runScenario(scenario(devices, steps, machine));
  return { r, steps: r.scenario!.steps, results: r.scenario!.steps.map((s) => s.result) };
}

describe('step kinds', () => {
  it('blk: write, read, verify against the record and against a seed or pattern, flush; file backend', async () => {
    const file = join(dir, 'disk.img');
    const { r, steps } = await run(
      [{ type: 'blk', name: 'disk', options: { file, create: '2M' } }],
      [
        { do: 'blk-write', device: 'disk', sector: 0, count: 64, seed: 7 },
        { do: 'blk-write', device: 'disk', sector: 32, count: 8, pattern: 'overwrite' },
        { do: 'blk-write', device: 'disk', sector: 1000, count: 4, pattern: 'far' },
        { do: 'blk-read', device: 'disk', sector: 0, count: 128 },
        { do: 'blk-verify', device: 'disk' },
        { do: 'blk-verify', device: 'disk', sector: 8, count: 8, seed: 7 },
        { do: 'blk-verify', device: 'disk', sector: 33, count: 2, pattern: 'overwrite' },
        { do: 'blk-flush', device: 'disk' },
        { do: 'expect', device: 'disk', works: true, driver: 'virtio_blk', status: 0x0f },
      ],
    );
    expect(steps.map((s) => `${s.result} ${s.detail}`)).toEqual([
      'ok wrote sectors 0+64 (seed 7)',
      'ok wrote sectors 32+8 (pattern "overwrite")',
      'ok wrote sectors 1000+4 (pattern "far")',
      'ok read sectors 0+128',
      'ok all 68 written sectors read back as written (2 ranges)',
      'ok sectors 8+8 hold seed 7',
      'ok sectors 33+2 hold pattern "overwrite"',
      'ok flushed',
      'ok works, driver virtio_blk, status ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK',
    ]);
    expect(r.ok).toBe(true);
    const img = readFileSync(file);
    expect(Buffer.compare(img.subarray(1000 * 512, 1004 * 512), Buffer.from(blkData({ pattern: 'far' }, 1000, 4)))).toBe(0);
  });

  it('console write and input, resize through inject, rng read, exercise, registers', async () => {
    const out = join(dir, 'console.txt');
    const { r, steps } = await run(
      [{ type: 'rng' }, { type: 'console', options: { out } }],
      [
        { do: 'rng-read', device: 'rng', bytes: 1000 },
        { do: 'console-write', device: 'console', text: 'line one\nline two\n' },
        { do: 'console-input', device: 'console', text: 'typed by the host' },
        { do: 'inject', device: 'console', event: 'resize', args: { cols: 100, rows: 30 } },
        { do: 'expect', device: 'console', consoleSize: { cols: 100, rows: 30 } },
        { do: 'expect', device: 'console', register: { name: 'Config+0x0', width: 2, value: 100 } },
        { do: 'expect', device: 'rng', register: { name: 'DeviceID', value: 4 } },
        { do: 'exercise' },
        { do: 'expect', noWarnings: true },
      ],
    );
    expect(steps.filter((s) => s.result !== 'ok')).toEqual([]);
    expect(steps[1]!.detail).toBe('sent 18 bytes, 2 lines');
    expect(steps[2]!.detail).toBe('host input of 17 bytes arrived');
    expect(readFileSync(out, 'utf8')).toMatch(/^line one\nline two\nvirtio-emu: virtio1 console check\n$/);
    expect(r.ok).toBe(true);
  });
});

describe('PM steps', () => {
  it('suspend cycles with the noirq rtc, then hibernation: the disk keeps its data, the pm array has one entry per cycle', async () => {
    const { r, steps } = await run(
      [{ type: 'blk', options: { size: '4M' } }, { type: 'rtc' }],
      [
        { do: 'blk-write', device: 'blk', sector: 100, count: 50, seed: 3 },
        { do: 'pm', kind: 'suspend', power: 'fresh', cycles: 3 },
        { do: 'expect', device: 'rtc', noirqState: 'restored', pm: { result: 0, devicesOk: true } },
        { do: 'blk-verify', device: 'blk' },
        { do: 'pm', kind: 'hibernate' },
        { do: 'blk-verify', device: 'blk' },
      ],
    );
    expect(steps.map((s) => s.result)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(steps[1]!.detail).toMatch(/^suspend x3 \(power fresh\): ok, \d+ callbacks per cycle, back in restore_noirq: rtc$/);
    expect(steps[4]!.detail).toMatch(/^hibernate \(power fresh\): ok/);
    expect(r.pm!.map((c) => `${c.kind}:${c.cycle}:${c.result}`)).toEqual(['suspend:1:0', 'suspend:2:0', 'suspend:3:0', 'hibernate:1:0']);
    expect(r.ok).toBe(true);
  });

  it('power snapshot in pm steps: the devices come back from their saved state, the disk keeps its data', async () => {
    const { r, steps } = await run(
      [{ type: 'blk', options: { size: '4M' } }, { type: 'console', options: { out: 'none' } }, { type: 'rtc' }],
      [
        { do: 'blk-write', device: 'blk', sector: 8, count: 16, seed: 5 },
        { do: 'pm', kind: 'suspend', power: 'snapshot', cycles: 2 },
        { do: 'pm', kind: 'hibernate', power: 'snapshot', mode: 'platform' },
        { do: 'console-input', device: 'console', text: 'still here' },
        { do: 'blk-verify', device: 'blk' },
      ],
    );
    expect(steps.map((s) => s.result)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(steps[1]!.detail).toMatch(/^suspend x2 \(power snapshot\): ok/);
    expect(r.ok).toBe(true);
  });

  it('an injected failure with its expected outcome passes; the injection is gone for the next step', async () => {
    const { r, steps } = await run(
      [{ type: 'rng' }, { type: 'rtc' }],
      [
        { do: 'pm', kind: 'suspend', fail: [{ phase: 'suspend_noirq', device: 'rtc', errno: 'EIO' }], expect: { result: '-EIO', failedStep: 'suspend_noirq', devicesOk: true } },
        { do: 'expect', device: 'rtc', noirqState: 'none', works: true },
        { do: 'pm', kind: 'suspend' },
        { do: 'expect', pm: { result: 0 } },
      ],
    );
    expect(steps.map((s) => s.result)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(steps[0]!.detail).toMatch(/1 aborted \(-EIO in suspend_noirq\)/);
    expect(r.pm![0]!.phases).toContainEqual({ phase: 'suspend_noirq', slot: 1, result: '-EIO' });
    expect(r.ok).toBe(true);
  });

  it('a resume failure leaves the device FAILED: expected, it passes; Status shows it', async () => {
    const { r, steps } = await run(
      [{ type: 'rtc' }],
      [
        { do: 'pm', kind: 'suspend', power: 'reset', fail: [{ phase: 'resume_noirq', slot: 0 }], expect: { result: 0, devicesOk: false } },
        // the injected failure means restore_noirq never re-initialised the reset device
        { do: 'expect', device: 'rtc', noirqState: 'entered', status: ['FAILED'], works: false },
      ],
    );
    expect(steps.map((s) => `${s.result} ${s.detail}`)).toEqual([
      expect.stringMatching(/^ok suspend \(power reset\): ok/),
      'ok does not work, status FAILED, noirq entered',
    ]);
    expect(r.ok).toBe(true);
  });
});

describe('failures', () => {
  it('a failed expectation stops the scenario: the rest is skipped, ok is false, the reason is a warning', async () => {
    const { r, steps, results } = await run(
      [{ type: 'blk', options: { size: '1M' } }],
      [
        { do: 'blk-write', device: 'blk', sector: 0, count: 4, seed: 1 },
        { do: 'blk-verify', device: 'blk', sector: 0, count: 4, seed: 2 },
        { do: 'blk-flush', device: 'blk' },
      ],
    );
    expect(results).toEqual(['ok', 'failed', 'skipped']);
    expect(steps[1]!.detail).toMatch(/^sector 0 differs at byte \d+: read 0x[0-9a-f]+, expected 0x[0-9a-f]+$/);
    expect(r.ok).toBe(false);
    expect(r.warnings).toContainEqual(expect.stringMatching(/^steps\[1\] blk-verify blk: sector 0 differs/));
    const text = formatScenarioText(r);
    expect(text).toMatch(/ 2 FAIL blk-verify blk {2}sector 0 differs/);
    expect(text).toMatch(/ 3 skip blk-flush blk {3}not run/);
    expect(text.trim().split('\n').pop()).toBe('FAILED');
  });

  it('an injected failure that never runs is reported', async () => {
    const { results, steps } = await run([{ type: 'rng' }], [{ do: 'pm', kind: 'suspend', fail: [{ phase: 'restore_noirq', slot: 0 }] }]);
    expect(results).toEqual(['failed']);
    expect(steps[0]!.detail).toMatch(/injected restore_noirq failure on slot 0 never ran/);
  });

  it('a pm cycle that misses its expectation names the cycle and the difference', async () => {
    const { results, steps, r } = await run([{ type: 'rtc' }], [{ do: 'pm', kind: 'suspend', cycles: 2, expect: { result: '-EIO' } }]);
    expect(results).toEqual(['failed']);
    expect(steps[0]!.detail).toBe('suspend cycle 1: result 0, expected -EIO');
    expect(r.pm).toHaveLength(1); // stopped at the first cycle that missed
  });

  it('a wrong register value and a wrong noirq state are reported with what was read', async () => {
    const a = await run([{ type: 'rng' }], [{ do: 'expect', device: 'rng', register: { name: 'Status', value: 0 } }]);
    expect(a.steps[0]!.detail).toBe('Status = 0x0f, expected 0x00');
    const b = await run([{ type: 'rtc' }], [{ do: 'expect', device: 'rtc', noirqState: 'restored' }]);
    expect(b.steps[0]!.detail).toBe('noirq state none, expected restored');
  });
});

describe('helpers', () => {
  it('blk data is anchored to sectors: a sub-range regenerates the same bytes; seeds differ', () => {
    const all = blkData({ seed: 5 }, 10, 8);
    expect(Buffer.compare(blkData({ seed: 5 }, 13, 2), all.subarray(3 * 512, 5 * 512))).toBe(0);
    expect(Buffer.compare(blkData({ seed: 6 }, 10, 1), all.subarray(0, 512))).not.toBe(0);
    expect(Buffer.compare(blkData({ seed: 5 }, 11, 1), all.subarray(0, 512))).not.toBe(0);
    const p = blkData({ pattern: 'abc' }, 1, 1);
    expect(String.fromCharCode(...p.subarray(0, 4))).toBe('cabc'); // 512 % 3 == 2
  });

  it('the shadow keeps the last write per sector and merges runs', () => {
    const s = new BlkShadow();
    s.record(0, blkData({ seed: 1 }, 0, 4));
    s.record(2, blkData({ seed: 2 }, 2, 4));
    s.record(10, blkData({ seed: 3 }, 10, 1));
    const runs = s.runs();
    expect(runs.map((x) => [x.sector, x.data.length / 512])).toEqual([
      [0, 6],
      [10, 1],
    ]);
    expect(Buffer.compare(runs[0]!.data.subarray(2 * 512), blkData({ seed: 2 }, 2, 4))).toBe(0);
  });

  it('the progress bar draws only on a terminal, only for long runs, never with --json', () => {
    const out: string[] = [];
    const tty: ProgressStream = { isTTY: true, columns: 60, write: (s) => out.push(s) > 0 };
    expect(progressBar(100, { json: true, stream: tty })).toBeNull();
    expect(progressBar(3, { json: false, stream: tty })).toBeNull();
    expect(progressBar(100, { json: false, stream: { ...tty, isTTY: false } })).toBeNull();
    const bar = progressBar(100, { json: false, stream: tty })!;
    bar.update(100, 100);
    bar.end();
    expect(out[0]).toMatch(/^\r\[#+\] 100\/100 cycles$/);
    expect(out[1]).toBe('\r\x1b[K');
  });
});
