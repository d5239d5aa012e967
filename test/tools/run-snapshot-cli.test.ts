// `virtio-emu run --snapshot-at N FILE` and `run --restore FILE`, as a user
// meets them: child processes, exit codes, one-line errors; a restored run
// reports what the uninterrupted one did; every bad file is refused before
// any step runs (or, when it holds another run's state, at the point).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_LIMITS } from '../../tools/limits.js';
import { editDoc, type DocData } from '../helpers/snapshot-docs.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));
const SCENARIO = fileURLToPath(new URL('../../../scenarios/default.json', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'run-snapshot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const codec = new Packr({ useRecords: false, moreTypes: false });

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 120_000, cwd: dir });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function usage(r: ReturnType<typeof run>, message: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^virtio-emu run: /);
  expect(lines[0]).toMatch(message);
  expect(lines[0]!.length).toBeLessThan(1100);
}

type Report = { ok: boolean; checkpoint?: unknown; devices: unknown[]; pm?: unknown[]; scenario?: { steps: { result: string; do: string }[] } };
const report = (r: ReturnType<typeof run>): Report => JSON.parse(r.stdout) as Report;

const OPTIONS = ['--device', 'rng', '--device', 'blk,size=1M', '--device', 'console,out=none', '--device', 'rtc', '--pm', 'suspend', '--cycles', '3', '--power', 'snapshot', '--json'];

/** A snapshot file of the options run above, taken after cycle 1. */
function optionsSnapshot(name: string): string {
  const f = join(dir, name);
  const r = run(...OPTIONS, '--snapshot-at', '1', f);
  expect(r.code, r.stderr).toBe(0);
  return f;
}

/** The same file with its contents changed. */
function edited(from: string, name: string, change: (top: DocData) => void): string {
  const top = codec.unpack(readFileSync(from)) as DocData;
  change(top);
  const f = join(dir, name);
  writeFileSync(f, codec.pack(top));
  return f;
}

describe('HI-43 run --snapshot-at and --restore', () => {
  it('an option run: the snapshot after cycle 1, restored, reports what the uninterrupted run did', () => {
    const whole = run(...OPTIONS);
    expect(whole.code, whole.stderr).toBe(0);
    const f = optionsSnapshot('options.snap');
    expect(readFileSync(f).length).toBeLessThan(RUN_LIMITS.maxSnapshotFileBytes);
    const r = run('--restore', f, '--json');
    expect(r.code, r.stderr).toBe(0);
    const got = report(r);
    expect(got.checkpoint).toEqual({ kind: 'restore', file: f, at: 1 });
    const { checkpoint: _c, ...rest } = got;
    expect(rest).toEqual(report(whole));
    // The text summary says where it came from.
    const text = run('--restore', f);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`restored from ${f} after cycle 1 (the steps up to it ran again)`);
  });

  it('a scenario run (the default one), snapshot after step 2, restored: the same step results', () => {
    const f = join(dir, 'scenario.snap');
    const a = run('--scenario', SCENARIO, '--snapshot-at', '2', f, '--json');
    expect(a.code, a.stderr).toBe(0);
    expect(report(a).checkpoint).toEqual({ kind: 'snapshot', file: f, at: 2 });
    const b = run('--restore', f, '--json');
    expect(b.code, b.stderr).toBe(0);
    const steps = (x: Report): string[] => x.scenario!.steps.map((s) => `${s.do} ${s.result}`);
    expect(steps(report(b))).toEqual(steps(report(a)));
    expect(report(b).ok).toBe(true);
  });

  it('a run that stops before its point writes no file and fails', () => {
    const f = join(dir, 'never.snap');
    const scenario = join(dir, 'stops.json');
    writeFileSync(
      scenario,
      JSON.stringify({
        name: 'stops',
        machine: { devices: [{ type: 'rng' }] },
        steps: [{ do: 'rng-read', device: 'rng' }, { do: 'expect', device: 'rng', driver: 'nope' }, { do: 'rng-read', device: 'rng' }],
      }),
    );
    const r = run('--scenario', scenario, '--snapshot-at', '2', f, '--json');
    expect(r.code).toBe(1);
    expect(report(r).ok).toBe(false);
    expect(JSON.stringify(report(r))).toContain('snapshot: the run stopped before it reached its point (2)');
    expect(existsSync(f)).toBe(false);
  });

  describe('usage errors: exit 2, one line, nothing run', () => {
    it.each<[string, string[], RegExp]>([
      ['no file after --snapshot-at', ['--snapshot-at', '0'], /--snapshot-at N FILE: give one file to write/],
      ['two files', ['--snapshot-at', '0', 'a.snap', 'b.snap'], /give one file to write/],
      ['a file without --snapshot-at', ['a.snap'], /unexpected argument 'a\.snap'/],
      ['a point past the run', ['--pm', 'suspend', '--cycles', '2', '--snapshot-at', '3', 'x.snap'], /--snapshot-at 3: the run has 2 cycle\(s\)/],
      ['a cycle without --pm', ['--snapshot-at', '1', 'x.snap'], /--snapshot-at 1: the run has no PM cycles/],
      ['not a number', ['--snapshot-at', 'two', 'x.snap'], /--snapshot-at: expected an integer from 0 to 1000000, got 'two'/],
      ['a step past the scenario', ['--scenario', SCENARIO, '--snapshot-at', '16', 'x.snap'], /--snapshot-at 16: the scenario has 16 step\(s\) \(0 to 15\)/],
      ['a ccw device', ['--device', 'rng,transport=ccw', '--snapshot-at', '0', 'x.snap'], /device rng is on ccw, which the snapshot format does not cover/],
      ['--restore with run options', ['--restore', 'x.snap', '--pm', 'suspend'], /--restore takes only --json \(the file holds the run\), got --pm/],
      ['--restore with a file argument', ['--restore', 'x.snap', 'y.snap'], /--restore takes only --json/],
      ['no such file', ['--restore', 'missing.snap'], /cannot read snapshot file 'missing\.snap': no such file/],
      ['a directory', ['--restore', '.'], /snapshot file '\.' is not a regular file/],
      ['a device file', ['--restore', '/dev/zero'], /snapshot file '\/dev\/zero' is not a regular file/],
      ['a scenario instead', ['--restore', SCENARIO], /not a snapshot file/],
      ['bad power model', ['--pm', 'suspend', '--power', 'hibernate'], /--power: expected retain, reset, fresh, snapshot, got 'hibernate'/],
    ])('%s', (_name, args, message) => {
      usage(run(...args), message);
    });

    it('a file past the size limit is refused before it is read', () => {
      const f = join(dir, 'huge.snap');
      writeFileSync(f, '');
      truncateSync(f, RUN_LIMITS.maxSnapshotFileBytes + 1);
      usage(run('--restore', f), /is 1073741825 bytes, larger than the 1073741824-byte limit/);
    });

    it('truncated, from another version, or tampered with: refused with the field named', () => {
      const good = optionsSnapshot('good.snap');
      const cut = join(dir, 'cut.snap');
      writeFileSync(cut, readFileSync(good).subarray(0, 5000));
      usage(run('--restore', cut), /snapshot file '.*cut\.snap': truncated \(5000 bytes\)/);
      usage(run('--restore', edited(good, 'v2.snap', (t) => (t['version'] = 2))), /version: version 2 is not supported/);
      usage(run('--restore', edited(good, 'fmt.snap', (t) => (t['format'] = 'other'))), /format: expected 'virtio-emu-run-snapshot'/);
      usage(run('--restore', edited(good, 'ram.snap', (t) => (t['ram']['size'] = 4096))), /ram\.size: 4096 bytes, but the document's machine has 67108864/);
      usage(run('--restore', edited(good, 'chunk.snap', (t) => t['ram']['chunks'].push([1 << 20, new Uint8Array(65536)]))), /ram\.chunks\[\d+\]\[0\]: expected an integer from 0 to 1023/);
      usage(run('--restore', edited(good, 'opts.snap', (t) => (t['run']['options']['device'] = ['nvme']))), /--device: unknown device type 'nvme'/);
      usage(run('--restore', edited(good, 'at.snap', (t) => (t['at'] = 7))), /point 7 is past the run's last cycle/);
      // A document the machine refuses: checked against the new worker before any step runs.
      const bad = edited(good, 'status.snap', (t) => (t['doc'] = editDoc(t['doc'], (d) => (d['devices'][0]['device']['status'] = 0x1ff))));
      usage(run('--restore', bad), /restore refused: devices\[0\]\.device\.status: 0x1ff has bits a device never shows/);
      // Another machine's document.
      const other = edited(good, 'layout.snap', (t) => (t['doc'] = editDoc(t['doc'], (d) => (d['machine']['devices'][1]['options'] = { size: '2M' }))));
      usage(run('--restore', other), /slot 1 \(blk\): device options differ/);
      // A valid state the run's steps do not reach: found at the point.
      const moved = edited(good, 'moved.snap', (t) => {
        t['doc'] = editDoc(t['doc'], (d) => {
          const ring = d['devices'][0]['device']['queues'][0]['ring'];
          ring['nextAvail'] = ring['nextUsed'] = (ring['nextUsed'] + 1) & 0xffff;
        });
      });
      usage(run('--restore', moved), /the run's steps up to PM cycle 1 do not reach the file's state .*: it is not a snapshot of this run/);
    });
  });
});
