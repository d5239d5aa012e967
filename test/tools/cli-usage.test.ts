// Usage errors of `virtio-emu qtest` and `virtio-emu trace` as a user meets
// them (child processes): exit 2, one line on stderr naming the problem and
// what is accepted, nothing on stdout, no stack trace. `run`'s are in
// run-errors.test.ts.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, input: '' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function usage(command: string, r: ReturnType<typeof cli>, message: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^virtio-emu ${command}: `));
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe('qtest usage errors: exit 2, one line, before a worker starts', () => {
  it.each<[string, string[], RegExp]>([
    ['unknown device type, with the list run gives', ['--device', 'nvme'], /--device: unknown device type 'nvme' \(known: blk, console, rng, rtc\)$/],
    ['unknown device option, naming the known ones', ['--device', 'rng,foo=bar'], /--device rng: unknown option 'foo' \(known: queueSize, maxRequestBytes\)$/],
    ['a ccw device, which qtest cannot reach', ['--device', 'rng,transport=ccw'], /--device rng: qtest serves virtio-mmio only \(transport mmio or mmio-legacy\), not ccw$/],
    ['a bad ring option', ['--device', 'rng,packed=maybe'], /--device rng: option packed must be true or false/],
    ['two devices in one slot', ['--device', 'rng,slot=1', '--device', 'blk,size=1M,slot=1'], /--device blk: slot 1 already holds rng$/],
    ['a slot past --slots', ['--slots', '2', '--device', 'rng,slot=2'], /--device rng: slot 2 out of range 0\.\.1$/],
    ['a negative slot count', ['--slots', '-1'], /--slots: expected an integer from 1 to 4096, got '-1'$/],
  ])('%s', (_name, args, message) => {
    usage('qtest', cli('qtest', ...args), message);
  });
});

describe('trace usage errors', () => {
  it.each<[string, string[], RegExp]>([
    ['a trace file that does not exist', ['show', '/nonexistent'], /cannot read \/nonexistent: no such file$/],
    ['export without a format', ['export', '--json'], /trace export: the only format is --chrome: trace export --chrome FILE OUT\.json \(--json belongs to trace show\)$/],
    ['export without any option', ['export', 'a', 'b'], /the only format is --chrome/],
    ['an unknown register, naming the valid ones', ['show', '/nonexistent', '--reg', 'Nope'], /--reg: unknown register 'Nope' \(virtio-mmio: MagicValue, .*QueuePFN, .*ConfigGeneration, Config or Config\+0xN; ccw: css\.CuType, .*; or a 0x offset\)$/],
    ['an unknown phase', ['show', '/nonexistent', '--phase', 'sleep'], /--phase: unknown PM phase 'sleep'/],
  ])('%s', (_name, args, message) => {
    usage('trace', cli('trace', ...args), message);
  });
});

describe('trace show --reg', () => {
  it('takes every name a trace records an access under', async () => {
    const { regFilterError } = await import('../../tools/trace/show.js');
    for (const name of ['Status', 'status', 'QueuePFN', 'Config', 'config+0x4', 'css.Ssch', 'css.0x40', '0x0fc', '0x9000000']) expect(regFilterError(name)).toBeNull();
    for (const name of ['Nope', 'Config+4', 'css.Nope', 'Status2', '']) expect(regFilterError(name)).toMatch(/^unknown register/);
  });
});
