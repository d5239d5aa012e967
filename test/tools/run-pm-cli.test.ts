// `virtio-emu run --pm ...` as a user runs it: a child process, JSON out.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));
const run = promisify(execFile);

interface Phase {
  phase: string;
  slot: number | null;
  result: string;
  kernel?: string;
}
interface Cycle {
  kind: string;
  cycle: number;
  result: string;
  failedStep?: string;
  power: string;
  phases: Phase[];
  devicesOk: boolean;
}
interface Report {
  ok: boolean;
  devices: { slot: number; name: string; status: number; driver: string }[];
  pm: Cycle[];
  warnings: string[];
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { timeout: 60_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

describe('virtio-emu run --pm', () => {
  it('suspend cycles with the noirq clock: ok, resume_noirq before any resume, devices working', async () => {
    const r = await cli(['run', '--device', 'rng', '--device', 'rtc', '--pm', 'suspend', '--cycles', '3', '--power', 'reset', '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as Report;
    expect(rep.ok).toBe(true);
    expect(rep.pm.map((c) => [c.kind, c.cycle, c.result, c.power, c.devicesOk])).toEqual([
      ['suspend', 1, '0', 'reset', true],
      ['suspend', 2, '0', 'reset', true],
      ['suspend', 3, '0', 'reset', true],
    ]);
    const phases = rep.pm[0]!.phases.map((p) => `${p.phase}:${p.slot}`);
    expect(phases).toEqual([
      'suspend:1', 'suspend:0', 'suspend_noirq:1', 'suspend_noirq:0',
      'resume_noirq:0', 'resume_noirq:1', 'resume:0', 'resume:1',
    ]);
    expect(rep.devices.map((d) => d.status)).toEqual([15, 15]);
  });

  it('hibernate: the boot kernel quiesces, the image kernel restores; an injected freeze failure aborts and the devices still work', async () => {
    const ok = JSON.parse((await cli(['run', '--device', 'rtc', '--pm', 'hibernate', '--json'])).out) as Report;
    expect(ok.ok).toBe(true);
    expect(ok.pm[0]!.power).toBe('fresh');
    expect(ok.pm[0]!.phases.filter((p) => p.kernel === 'boot').map((p) => p.phase)).toEqual(['freeze', 'freeze_noirq']);
    expect(ok.pm[0]!.phases.filter((p) => !p.kernel).map((p) => p.phase).slice(-2)).toEqual(['restore_noirq', 'restore']);

    const r = await cli(['run', '--device', 'rng', '--device', 'rtc', '--pm', 'hibernate', '--fail', 'freeze_noirq:0:EBUSY', '--json']);
    const rep = JSON.parse(r.out) as Report;
    expect(r.code).toBe(0);
    expect(rep.ok).toBe(true);
    expect(rep.pm[0]).toMatchObject({ result: '-EBUSY', failedStep: 'freeze_noirq', devicesOk: true });
    // slot 1 completed freeze_noirq before slot 0 failed: it is thawed (recover)
    expect(rep.pm[0]!.phases.filter((p) => p.phase === 'thaw_noirq').map((p) => p.slot)).toEqual([1]);
  });

  it('a failed restore_noirq leaves the device FAILED: ok is false, exit 1', async () => {
    const r = await cli(['run', '--device', 'rtc', '--pm', 'suspend', '--fail', 'resume_noirq:0', '--json']);
    expect(r.code).toBe(1);
    const rep = JSON.parse(r.out) as Report;
    expect(rep.ok).toBe(false);
    expect(rep.pm[0]!.devicesOk).toBe(false);
    expect(rep.pm[0]!.phases.find((p) => p.phase === 'resume')?.result).toBe('-EIO');
    expect(rep.devices[0]!.status & 0x80).toBe(0x80);
  });

  it.each([
    [['--pm', 'nap'], /--pm: expected suspend or hibernate/],
    [['--pm', 'suspend', '--power', 'off'], /--power: expected retain, reset, fresh/],
    [['--pm', 'suspend', '--fail', 'resume_noirq'], /--fail: expected PHASE:SLOT/],
    [['--pm', 'suspend', '--fail', 'resume_noirq:x'], /slot must be a number/],
    [['--pm', 'suspend', '--fail', 'resume_noirq:0:EWHAT'], /unknown errno/],
    [['--cycles', '2'], /need --pm/],
    [['--pm', 'suspend', '--cycles', '0'], /--cycles: expected an integer from 1 to 1000000, got '0'/],
    [['--pm', 'suspend', '--cycles', '1000001'], /--cycles: expected an integer from 1 to 1000000/],
  ])('bad options %j: one line, exit 2', async (args, msg) => {
    const r = await cli(['run', ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('a driver with restore_noirq on ccw is refused at freeze (-EOPNOTSUPP): the suspend aborts cleanly and every device keeps working', async () => {
    const r = await cli(['run', '--transport', 'ccw', '--device', 'rng', '--device', 'rtc', '--pm', 'suspend', '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as Report;
    expect(rep.ok).toBe(true);
    expect(rep.pm[0]).toMatchObject({ result: '-EOPNOTSUPP', failedStep: 'suspend', devicesOk: true });
    // reverse order: slot 1 (rtc) is asked first and refuses; nothing was suspended
    expect(rep.pm[0]!.phases.map((p) => `${p.phase}:${p.slot}:${p.result}`)).toEqual(['suspend:1:-EOPNOTSUPP']);
    expect(rep.devices.map((d) => d.status)).toEqual([15, 15]);
  });

  it('an injection that matches no callback fails the run instead of passing silently', async () => {
    const r = await cli(['run', '--device', 'rng', '--pm', 'hibernate', '--fail', 'suspend_noirq:0']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/--fail suspend_noirq:0: no such callback ran in a hibernate cycle/);
  });
});

describe('virtio-emu run --pm hibernate --hibernate-mode', () => {
  it('shutdown (the default): no poweroff phases, a shutdown for each device, the mode in the report', async () => {
    const r = await cli(['run', '--device', 'rng', '--device', 'rtc', '--pm', 'hibernate', '--json']);
    expect(r.code).toBe(0);
    const c = (JSON.parse(r.out) as Report).pm[0]! as Cycle & { mode?: string };
    expect(c.mode).toBe('shutdown');
    const image = c.phases.filter((p) => !p.kernel).map((p) => `${p.phase}:${p.slot}`);
    expect(image.filter((p) => p.startsWith('poweroff'))).toEqual([]);
    expect(image.filter((p) => p.startsWith('shutdown'))).toEqual(['shutdown:1', 'shutdown:0']);
  });

  it('platform: the poweroff phases; an -EIO in poweroff_noirq powers off anyway and the image comes back', async () => {
    const r = await cli(['run', '--device', 'rng', '--device', 'rtc', '--pm', 'hibernate', '--hibernate-mode', 'platform', '--fail', 'poweroff_noirq:1:EIO', '--json']);
    expect(r.code).toBe(0);
    const c = (JSON.parse(r.out) as Report).pm[0]! as Cycle & { mode?: string; platformEnterError?: string };
    expect(c).toMatchObject({ result: '0', mode: 'platform', platformEnterError: '-EIO in poweroff_noirq', devicesOk: true });
    const image = c.phases.filter((p) => !p.kernel).map((p) => p.phase);
    expect(image).toContain('poweroff');
    expect(image.indexOf('shutdown')).toBeGreaterThan(image.indexOf('poweroff_noirq'));
  });

  it('--help names the option and its default', async () => {
    const r = await cli(['run', '--help']);
    expect(r.out).toMatch(/--hibernate-mode M hibernation_mode: shutdown \(default, as Linux without platform hibernation ops\) or platform/);
  });
});
