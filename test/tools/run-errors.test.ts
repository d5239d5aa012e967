// Every way `virtio-emu run` (with or without --scenario) can be given bad
// input, as a user meets it: a child process that exits by itself (no worker
// keeps it alive), one line on stderr naming the problem, no stack trace
// unless --debug, exit status 2 for usage errors and 1 for a failed run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDeviceArg } from '../../tools/cli/device-arg.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'run-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return p;
}

const machine = (devices: unknown[]) => ({ devices });

/** The expected shape of a usage error. */
function usage(r: ReturnType<typeof run>, message: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^virtio-emu run: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe('usage errors: exit 2, one line, no stack', () => {
  it.each<[string, string[], RegExp]>([
    ['unknown device', ['--device', 'nvme'], /^virtio-emu run: --device: unknown device type 'nvme' \(known: blk, console, rng, rtc\)$/],
    ['unknown device option', ['--device', 'blk,bogus=1'], /--device blk: unknown option 'bogus'/],
    ['bad device option value', ['--device', 'blk,size=huge'], /--device blk: option size 'huge' is not a size/],
    ['unreadable disk image', ['--device', 'blk,file=/nonexistent/disk.img,ro=true'], /cannot open '\/nonexistent\/disk\.img': no such file or directory/],
    ['console to stdout with --json', ['--device', 'console,out=stdout', '--json'], /would mix console output into the --json document/],
    ['unknown option', ['--frobnicate'], /frobnicate/],
    ['scenario file missing', ['--scenario', 'missing.json'], /cannot read scenario 'missing\.json': no such file/],
    ['scenario is a directory', ['--scenario', '.'], /cannot read scenario '\.': is a directory/],
    ['scenario with other options', ['--scenario', 'x.json', '--pm', 'suspend'], /--scenario cannot be combined with --pm/],
    ['bad hibernation mode', ['--pm', 'hibernate', '--hibernate-mode', 'reboot'], /--hibernate-mode: expected platform or shutdown, got 'reboot'/],
    ['hibernation mode without hibernate', ['--pm', 'suspend', '--hibernate-mode', 'platform'], /--hibernate-mode needs --pm hibernate/],
    ['unknown rng option, naming the known ones', ['--device', 'rng,foo=bar'], /^virtio-emu run: --device rng: unknown option 'foo' \(known: queueSize, maxRequestBytes\)$/],
    ['unknown ccw option', ['--device', 'rng,transport=ccw,ccw.foo=1'], /--device rng: unknown ccw option 'ccw\.foo' \(known: ccw\.max_revision\)/],
    ['an option for a transport without options', ['--device', 'rng,mmio.x=1'], /unknown option 'mmio\.x' \(the mmio transport takes no options\)/],
    ['slot without a value', ['--device', 'blk,size=1M,slot'], /--device blk: slot needs a value/],
    ['two devices in one slot', ['--device', 'rng,slot=3', '--device', 'rtc,slot=3'], /--device rtc: slot 3 already holds rng$/],
    ['a slot past the last', ['--device', 'rng,slot=40'], /--device rng: slot 40 out of range 0\.\.31$/],
    ['--fail for a slot without a device', ['--device', 'rng', '--pm', 'suspend', '--fail', 'suspend:5'], /--fail suspend:5: slot 5 holds no device \(devices are in slot 0\)$/],
    ['a negative count', ['--pm', 'suspend', '--cycles', '-1'], /--cycles: expected an integer from 1 to 1000000, got '-1'$/],
    ['a count that is not a number', ['--pm', 'suspend', '--cycles', 'many'], /--cycles: expected an integer from 1 to 1000000, got 'many'$/],
    ['an option where a value belongs', ['--pm', 'suspend', '--cycles', '--json'], /--cycles needs a value \(write --cycles=VALUE for one that starts with '-'\)$/],
    ['a value missing at the end', ['--pm', 'suspend', '--cycles'], /--cycles needs a value$/],
  ])('%s', (_name, args, message) => {
    usage(run(...args), message);
  });

  it.each<[string, unknown, RegExp]>([
    ['not JSON', '{ "name": "x", }', /bad\.json: not valid JSON: .* at line 1 column \d+/],
    ['unknown device type', { name: 'x', machine: machine([{ type: 'nvme' }]), steps: [] }, /bad\.json: machine\.devices\[0\]\.type: unknown device type 'nvme'/],
    ['bad device option', { name: 'x', machine: machine([{ type: 'blk', options: { size: 'huge' } }]), steps: [] }, /machine\.devices\[0\]\.options: option size 'huge' is not a size/],
    ['missing image', { name: 'x', machine: machine([{ type: 'blk', options: { file: 'nope.img', ro: true } }]), steps: [] }, /machine\.devices\[0\]\.options: cannot open '.*nope\.img': no such file/],
    [
      'bad step field',
      { name: 'x', machine: machine([{ type: 'rng' }]), steps: [{ do: 'rng-read', device: 'rng' }, { do: 'pm', kind: 'suspend', cycles: 0 }] },
      /bad\.json: steps\[1\]\.cycles: expected a positive integer, got 0$/,
    ],
    ['unknown device reference', { name: 'x', machine: machine([{ type: 'rng' }]), steps: [{ do: 'rng-read', device: 'rgn' }] }, /steps\[0\]\.device: no device named 'rgn'/],
  ])('scenario: %s', (_name, content, message) => {
    file('bad.json', content);
    usage(run('--scenario', 'bad.json'), message);
  });
});

describe('other outcomes', () => {
  it('a bare device option is a flag set to true, as the README writes blk,ro', () => {
    expect(parseDeviceArg('blk,size=1M,ro')).toEqual({ type: 'blk', options: { size: '1M', ro: true } });
    const r = run('--device', 'blk,size=1M,ro', '--json');
    expect(r.code).toBe(0);
    const features = BigInt((JSON.parse(r.stdout) as { devices: { features: string }[] }).devices[0]!.features);
    // VIRTIO_BLK_F_RO (bit 5): the device offers a read-only disk.
    expect(features & (1n << 5n)).toBe(1n << 5n);
  });

  it('--debug prints the stack of the same error', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--scenario', 'missing.json', '--debug'], { encoding: 'utf8', timeout: 60_000, cwd: dir });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot read scenario/);
    expect(r.stderr).toMatch(/^\s+at /m);
  });

  it('a scenario whose step fails: exit 1, the summary says FAILED and where, stderr stays empty, the process ends', () => {
    const p = file('fails.json', {
      name: 'fails',
      machine: machine([{ type: 'blk', options: { size: '1M' } }]),
      steps: [
        { do: 'blk-write', device: 'blk', sector: 0, count: 1, seed: 1 },
        { do: 'blk-verify', device: 'blk', sector: 0, count: 1, seed: 2 },
        { do: 'blk-flush', device: 'blk' },
      ],
    });
    const r = run('--scenario', p);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/ 2 FAIL blk-verify blk +sector 0 differs/);
    expect(r.stdout).toMatch(/ 3 skip blk-flush blk +not run/);
    expect(r.stdout.trim().split('\n').pop()).toBe('FAILED');
    const j = run('--scenario', p, '--json');
    expect(j.code).toBe(1);
    expect((JSON.parse(j.stdout) as { ok: boolean }).ok).toBe(false);
  });
});
