// Linux as the kernel of a run and of an embedding: `virtio-emu run --kernel
// linux` reports what Linux bound and did in the same JSON shape as the
// model's run, through suspend and hibernation; VirtioSystem.create({ kernel:
// 'linux' }) hands back a system whose kernel is Linux.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VIRTIO_ID_CLOCK, VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { VirtioSystem } from '../../tools/system.js';
import { built } from './helpers.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

interface Report {
  ok: boolean;
  devices: { slot: number; deviceId: number; dev: string; driver: string | null; transport: string; status: number; features: string; io: { requests: number; bytes: number; errors: number } }[];
  pm?: { kind: string; cycle: number; result: string; failedStep?: string; mode?: string; phases: { phase: string; slot: number | null; result: string; kernel?: string }[]; devicesOk: boolean }[];
  warnings: string[];
}

function run(...args: string[]): { code: number | null; report: Report | null; stderr: string } {
  const p = spawnSync(process.execPath, [CLI, 'run', '--kernel', 'linux', '--json', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: p.status, report: p.status === 0 || p.status === 1 ? (JSON.parse(p.stdout) as Report) : null, stderr: p.stderr };
}

describe.skipIf(!built)('run --kernel linux', () => {
  it.each(['mmio', 'mmio-legacy'])('binds virtio_rng over %s, DRIVER_OK, entropy read', (transport) => {
    const { code, report } = run('--device', 'rng', '--transport', transport);
    expect(code).toBe(0);
    const [d] = report!.devices;
    expect(d).toMatchObject({ slot: 0, deviceId: VIRTIO_ID_RNG, dev: 'virtio0', driver: 'virtio_rng', transport });
    expect(d!.status).toBe(transport === 'mmio' ? 0x0f : 0x07);
    expect(d!.io).toEqual({ requests: 1, bytes: 4096, errors: 0 });
  });

  it('suspends three times with the noirq clock: every cycle ok, resume_noirq ran for both, the devices work after each', () => {
    const { code, report } = run('--device', 'rtc', '--device', 'rng', '--pm', 'suspend', '--cycles', '3');
    expect(code).toBe(0);
    expect(report!.devices.map((d) => [d.deviceId, d.driver])).toEqual([
      [VIRTIO_ID_CLOCK, 'virtio_rtc_noirq'],
      [VIRTIO_ID_RNG, 'virtio_rng'],
    ]);
    expect(report!.pm!.map((c) => [c.cycle, c.result, c.devicesOk])).toEqual([
      [1, '0', true],
      [2, '0', true],
      [3, '0', true],
    ]);
    for (const c of report!.pm!) expect(c.phases.filter((p) => p.phase === 'resume_noirq').map((p) => p.slot)).toEqual([0, 1]);
    expect(report!.devices.map((d) => d.io.requests)).toEqual([4, 4]);
  });

  it('hibernation in platform mode with a boot kernel, and an injected abort', () => {
    const h = run('--device', 'rng', '--device', 'rtc', '--pm', 'hibernate', '--hibernate-mode', 'platform');
    expect(h.code).toBe(0);
    expect(h.report!.pm![0]).toMatchObject({ result: '0', mode: 'platform', devicesOk: true });
    expect(h.report!.pm![0]!.phases.some((p) => p.kernel === 'boot' && p.phase === 'freeze')).toBe(true);
    expect(h.report!.pm![0]!.phases.some((p) => p.phase === 'poweroff_noirq')).toBe(true);
    const a = run('--device', 'rng', '--device', 'rtc', '--pm', 'hibernate', '--fail', 'freeze_noirq:1:EBUSY');
    expect(a.code).toBe(0);
    expect(a.report!.pm![0]).toMatchObject({ result: '-EBUSY', failedStep: 'freeze_noirq', devicesOk: true });
  });

  it('a device without a Linux driver, ccw and --trace are usage errors', () => {
    for (const args of [['--device', 'blk'], ['--device', 'rng,transport=ccw'], ['--trace', '/tmp/x.trace']]) {
      const r = run(...args);
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });
});

describe.skipIf(!built)("VirtioSystem.create({ kernel: 'linux' })", () => {
  it('boots Linux on the machine: virtio_rng bound, entropy read, suspend through the PM core', async () => {
    const sys = await VirtioSystem.create({ kernel: 'linux', devices: ['rng', 'rtc'] });
    try {
      expect(sys.kernel.devices().map((d) => d.driver)).toEqual(['virtio_rng', 'virtio_rtc_noirq']);
      expect(sys.kernel.rngRead(0, 32)).toHaveLength(32);
      const t = sys.suspend({ power: 'reset' });
      expect(t.result).toBe(0);
      expect(sys.kernel.noirqState(1)).toBe(2);
      expect(typeof sys.kernel.rtcRead(1)).toBe('bigint');
    } finally {
      await sys.close();
    }
  });
});

describe.skipIf(!built)('a driver of your own', () => {
  it('build:linux --driver builds it in (into --out), and run --linux-driver binds it by its file name', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const out = mkdtempSync(join(tmpdir(), 'lx-driver-'));
    try {
      const build = fileURLToPath(new URL('../../linux/build/build.js', import.meta.url));
      const example = fileURLToPath(new URL('../../../linux/drivers/examples/example-rng.c', import.meta.url));
      const b = spawnSync(process.execPath, [build, '--driver', example, '--out', out], { encoding: 'utf8', timeout: 120_000 });
      expect(b.status, b.stderr).toBe(0);
      const env = { ...process.env, VIRTIO_EMU_LINUX_WASM: join(out, 'virtio-linux.wasm') };
      const p = spawnSync(process.execPath, [CLI, 'run', '--kernel', 'linux', '--linux-driver', 'example_rng', '--device', 'rng', '--json'], { encoding: 'utf8', env, timeout: 60_000 });
      expect(p.status).toBe(0);
      expect((JSON.parse(p.stdout) as Report).devices[0]).toMatchObject({ driver: 'example_rng', status: 0x0f });
      // The default module has no such driver: a clear error.
      const q = spawnSync(process.execPath, [CLI, 'run', '--kernel', 'linux', '--linux-driver', 'example_rng', '--device', 'rng'], { encoding: 'utf8', timeout: 60_000 });
      expect(q.status).toBe(1);
      expect(q.stderr).toMatch(/no driver example_rng in this Linux build/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
