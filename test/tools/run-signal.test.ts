// SIGINT during a long `virtio-emu run`: the run stops after the cycle under
// way and prints the summary of what ran (cycles done, ok or FAILED), then
// exits 130 as a process stopped by SIGINT does. The child records a trace,
// so the test sends the signal once a whole cycle is in it, not after a guess
// at how long startup takes.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../tools/run/execute.js';
import { openTrace } from '../../tools/trace/reader.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'run-signal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The trace so far holds the end of a cycle's last resume callback. */
function cycleRecorded(file: string): boolean {
  try {
    for (const e of openTrace(file, { partial: true }).events()) if (e.type === 'pm' && e.when === 'after' && e.phase === 'resume') return true;
  } catch {
    // The first frame is not written yet, or is being written.
  }
  return false;
}

async function interruptedRun(extra: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const trace = join(dir, `${extra.join('') || 'text'}.trace`);
  const child = spawn(process.execPath, [CLI, 'run', '--device', 'rng', '--pm', 'suspend', '--cycles', '100000', '--trace', trace, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  while (!done && !cycleRecorded(trace)) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  return { ...(await exited), stdout, stderr };
}

describe('SIGINT during a long run', () => {
  it('prints the summary so far and exits 130', async () => {
    const r = await interruptedRun([]);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 130, signal: null, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^slot 0: virtio0 rng \(mmio\) driver virtio_rng/);
    expect(lines[1]).toBe('suspend cycle 1 (power retain): ok, 4 callbacks, devices ok');
    const [, done] = /^interrupted by SIGINT after (\d+) of 100000 cycles; the report covers what ran$/.exec(lines.at(-2)!) ?? [];
    expect(Number(done)).toBeGreaterThanOrEqual(1);
    expect(Number(done)).toBeLessThan(100000);
    expect(lines.at(-1)).toBe('ok so far');
  }, 60_000);

  it('--json: the document says where the run stopped', async () => {
    const r = await interruptedRun(['--json']);
    expect(r.code).toBe(130);
    const doc = JSON.parse(r.stdout) as RunReport;
    expect(doc.ok).toBe(true);
    expect(doc.interrupted).toMatchObject({ signal: 'SIGINT', cycles: 100000 });
    const done = doc.interrupted!.cyclesDone;
    expect(done).toBeGreaterThanOrEqual(1);
    // Every cycle that ran is counted, listed or not.
    expect(doc.pmSummary?.cycles ?? doc.pm!.length).toBe(done);
    expect(doc.pm!.every((c) => c.result === '0' && c.devicesOk)).toBe(true);
  }, 60_000);
});
