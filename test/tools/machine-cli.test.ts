// The virtio-emu command dispatcher and the bench command's report shape.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const BIN = new URL('../../../bin/virtio-emu.js', import.meta.url).pathname;
const FAKE = new URL('../helpers/fake-board.js', import.meta.url).href;

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe('virtio-emu dispatcher', () => {
  it('lists commands with --help and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: virtio-emu <command>/);
    expect(r.out).toContain('qtest');
    expect(r.out).toContain('bench');
  });

  it('prints per-command help', async () => {
    const r = await cli(['qtest', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('usage: virtio-emu qtest');
    expect(r.out).toContain('--socket PATH');
  });

  it('rejects an unknown command with one line and exit 2', async () => {
    const r = await cli(['frob']);
    expect(r.code).toBe(2);
    expect(r.err).toBe("virtio-emu: unknown command 'frob' (try --help)\n");
  });

  it('rejects an unknown option with one line, no stack, exit 2', async () => {
    const r = await cli(['qtest', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^virtio-emu qtest: .*no-such-flag/);
  });

  it('rejects a bad option value with exit 2', async () => {
    const r = await cli(['qtest', '--bus', 'carrier-pigeon']);
    expect(r.code).toBe(2);
    expect(r.err).toBe("virtio-emu qtest: --bus: expected worker or inthread, got 'carrier-pigeon'\n");
  });

  it('without a command prints usage to stderr and exits 2', async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^usage:/);
  });
});

describe('virtio-emu bench', () => {
  it('--json prints the machine and one result per selected case', async () => {
    const r = await cli(['bench', '--json', '--quick', '--filter', 'sab.pingpong', '--board', FAKE]);
    // Progress stays on stderr, one short line per case; stdout is the JSON alone.
    expect(r.err).toBe('bench: 1/1 sab.pingpong\n');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { machine: { cpus: number; node: string }; results: { name: string; median_ns: number; p99_ns: number; ops_per_s: number }[] };
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.versions.node);
    expect(report.results.map((x) => x.name)).toEqual(['sab.pingpong']);
    const [res] = report.results;
    expect(res!.median_ns).toBeGreaterThan(0);
    expect(res!.p99_ns).toBeGreaterThanOrEqual(res!.median_ns);
    expect(res!.ops_per_s).toBeCloseTo(1e9 / res!.median_ns, 0);
  });

  it('--list names the mailbox cases', async () => {
    const r = await cli(['bench', '--list']);
    expect(r.code).toBe(0);
    for (const name of ['sab.pingpong', 'mmio.read32.trap', 'mmio.write32.trap', 'mmio.read32.inthread', 'baseline.postmessage.read32']) {
      expect(r.out).toContain(name);
    }
  });
});
