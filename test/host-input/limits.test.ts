// HI-40..HI-45: every size a user controls is bounded and checked before
// anything is allocated; inherited key names, a byte order mark, NaN and
// Infinity, unknown enum values: each refused (or accepted) with a clear
// one-line message, never a crash or a silently different run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import type { MailboxBus } from '../../emulator/bus/mailbox-driver.js';
import { customDeviceType } from '../../emulator/devices/catalog.js';
import { MACHINE_LIMITS, Machine, buildBoardConfig, type MachineOptions } from '../../emulator/machine.js';
import { RUN_LIMITS, SCENARIO_LIMITS } from '../../tools/limits.js';
import { loadScenario } from '../../tools/scenario/run-scenario.js';
import { ScenarioError, checkScenario } from '../../tools/scenario/validate.js';
import { VirtioSystem } from '../../tools/system.js';

const BIN = new URL('../../../bin/virtio-emu.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'vemu-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

describe('HI-40: machine options are checked before anything is allocated', () => {
  const bad: [string, MachineOptions, RegExp][] = [
    ['no slots', { slots: 0 }, /slots must be an integer from 1 to 4096, got 0/],
    ['too many slots', { slots: MACHINE_LIMITS.maxSlots + 1 }, /slots must be an integer from 1 to 4096/],
    ['a fraction of a slot', { slots: 1.5 }, /slots must be an integer/],
    ['NaN slots', { slots: Number.NaN }, /slots must be an integer/],
    ['RAM too small', { ramSize: 100 }, /ramSize 100 must be at least 4096/],
    ['RAM past 4 GiB', { ramSize: 2 ** 32 }, /end below 4 GiB/],
    ['RAM Infinity', { ramSize: Number.POSITIVE_INFINITY }, /ramSize Infinity/],
    ['trap deadline NaN', { trapTimeoutMs: Number.NaN }, /trapTimeoutMs must be a number of ms in \(0, 3600000\], got NaN/],
    ['trap deadline Infinity', { trapTimeoutMs: Number.POSITIVE_INFINITY }, /trapTimeoutMs .* got Infinity/],
    ['trap deadline 0', { trapTimeoutMs: 0 }, /trapTimeoutMs/],
    ['start deadline negative', { startTimeoutMs: -1 }, /startTimeoutMs/],
    ['unknown bus', { bus: 'x' as never }, /bus must be worker or inthread, got 'x'/],
    ['unknown transport', { devices: [{ type: 'rng', transport: 'x' as never }] }, /unknown transport 'x'/],
    // A JavaScript caller is not held back by the types: the machine checks the name too.
    ['unknown device type', { devices: [customDeviceType('nvme')] }, /unknown device type 'nvme'/],
    ['a million devices', { devices: new Array<'rng'>(1_000_000).fill('rng') }, /no free slot: 1000000 devices for 32 slots/],
    ['an inherited option name', { devices: [{ type: 'rng', options: JSON.parse('{"__proto__": 1}') as Record<string, number> }] }, /bad option name '__proto__'/],
    ['a huge option', { devices: [{ type: 'blk', options: { serial: 'x'.repeat(MACHINE_LIMITS.maxOptionLength + 1) } }] }, /at most 4096 characters/],
  ];
  it.each(bad)('%s', async (_, opts, msg) => {
    expect(() => buildBoardConfig(opts)).toThrow(RangeError);
    expect(() => buildBoardConfig(opts)).toThrow(msg);
    await expect(Machine.create(opts)).rejects.toThrow(msg);
  });

  it('a trap deadline set to NaN on a live bus falls back to the default instead of waiting forever', async () => {
    const m = await Machine.create({ devices: ['rng'], slots: 1, ramSize: 1 << 20 });
    try {
      (m.bus as MailboxBus).trapTimeoutMs = Number.NaN;
      expect(m.control({ op: 'fault', kind: 'hang', ms: 60_000 })).toEqual({ ok: true });
      let err: unknown;
      try {
        m.bus.read(m.slotAddr(0), 4);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'EMU_TRAP_TIMEOUT', message: 'device worker did not answer within 2000 ms' });
    } finally {
      await m.close();
    }
  });

  it('the largest allowed machine is accepted, and no register window overlaps RAM', () => {
    const c = buildBoardConfig({ slots: MACHINE_LIMITS.maxSlots, ramSize: MACHINE_LIMITS.maxRamSize });
    expect(c.mmioBase + c.slots * 0x200).toBeLessThanOrEqual(PLATFORM.CSS_BASE);
    expect(PLATFORM.CSS_BASE + c.slots * PLATFORM.CSS_WINDOW_SIZE).toBeLessThanOrEqual(c.ramBase);
    expect(c.ramBase + c.ramSize).toBe(2 ** 32);
  });

  it('an unknown power model is refused before the transition starts', async () => {
    const sys = await VirtioSystem.create({ devices: ['rng'], bus: 'inthread' });
    try {
      expect(() => sys.suspend({ power: 'off' as never })).toThrow(/power must be retain, reset, fresh, snapshot, got 'off'/);
      expect(() => sys.hibernate({ power: 'off' as never })).toThrow(RangeError);
      expect(sys.dpm.record).toEqual([]);
      expect(sys.suspend().result).toBe(0);
    } finally {
      await sys.close();
    }
  });
});

type Json = Record<string, unknown>;
const good = (): Json => ({ name: 't', machine: { devices: [{ type: 'rng' }, { type: 'rtc' }] }, steps: [{ do: 'rng-read', device: 'rng', bytes: 64 }] });

function firstIssue(raw: unknown): string {
  const { issues } = checkScenario(raw, { preflight: false });
  return issues.length ? `${issues[0]!.path}: ${issues[0]!.message}` : 'valid';
}

describe('HI-41: scenario files', () => {
  it('nesting deeper than the limit is a usage error with the JSON path, not a stack overflow', () => {
    const deep = good();
    (deep['steps'] as Json[])[0]!['bytes'] = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(firstIssue(deep)).toBe(`steps[0].bytes${'[0]'.repeat(SCENARIO_LIMITS.maxDepth - 3)}: nested deeper than ${SCENARIO_LIMITS.maxDepth} levels of arrays and objects`);
    const file = join(dir, 'deep.json');
    writeFileSync(file, `{"name":"t","machine":${'{"a":'.repeat(150_000)}1${'}'.repeat(150_000)},"steps":[]}`);
    expect(() => loadScenario(file)).toThrow(ScenarioError);
    expect(() => loadScenario(file)).toThrow(/deep\.json: machine\.a\.a.*: nested deeper than 16 levels/);
  });

  it('a UTF-8 byte order mark is accepted', () => {
    const file = join(dir, 'bom.json');
    writeFileSync(file, `\uFEFF${JSON.stringify(good())}`);
    expect(loadScenario(file).name).toBe('t');
  });

  it('inherited key names are not values: __proto__, constructor, toString', () => {
    const s1 = good();
    (s1['steps'] as Json[]).push({ do: 'expect', device: 'rng', status: ['toString'] });
    expect(firstIssue(s1)).toMatch(/^steps\[1\]\.status\[0\]: expected a status bit/);
    const s2 = good();
    (s2['steps'] as Json[]).push({ do: 'expect', device: 'rng', register: { name: 'constructor', value: 0 } });
    expect(firstIssue(s2)).toMatch(/^steps\[1\]\.register\.name: unknown register 'constructor'/);
    const s3 = JSON.parse('{"name":"t","machine":{"devices":[{"type":"rng","options":{"__proto__":"x"}}]},"steps":[]}') as Json;
    expect(firstIssue(s3)).toMatch(/^machine\.devices\[0\]\.options\.__proto__: expected an option name/);
    const s4 = good();
    (s4['steps'] as Json[]).push(JSON.parse('{"do":"inject","device":"rng","event":"config-change","args":{"__proto__":1}}') as Json);
    expect(firstIssue(s4)).toMatch(/^steps\[1\]\.args\.__proto__: expected an argument name/);
    const s5 = good();
    (s5['steps'] as Json[])[0]!['constructor'] = 1;
    expect(firstIssue(s5)).toMatch(/^steps\[0\]\.constructor: unknown field/);
    const s6 = good();
    (s6['steps'] as Json[]).push({ do: 'toString' });
    expect(firstIssue(s6)).toMatch(/^steps\[1\]\.do: expected one of/);
  });

  it('every size is bounded: bytes, cycles (per step and in all), steps, slots, RAM, injections', () => {
    const at = (fn: (s: Json & { machine: Json; steps: Json[] }) => void): string => {
      const s = good() as Json & { machine: Json; steps: Json[] };
      fn(s);
      return firstIssue(s);
    };
    expect(at((s) => (s.steps[0]!['bytes'] = 4 * 2 ** 30))).toBe(`steps[0].bytes: at most ${RUN_LIMITS.maxIoBytes} bytes, got 4294967296`);
    expect(at((s) => s.steps.push({ do: 'pm', kind: 'suspend', cycles: RUN_LIMITS.maxCycles + 1 }))).toMatch(/^steps\[1\]\.cycles: at most 1000000 cycles/);
    expect(at((s) => s.steps.push({ do: 'pm', kind: 'suspend', cycles: RUN_LIMITS.maxCycles }, { do: 'pm', kind: 'suspend', cycles: 1 }))).toBe('steps: the pm steps add up to 1000001 cycles; at most 1000000');
    expect(at((s) => (s.steps = Array.from({ length: SCENARIO_LIMITS.maxSteps + 1 }, () => ({ do: 'rng-read', device: 'rng' }))))).toBe('steps: at most 10000 steps, got 10001');
    expect(at((s) => (s.machine['slots'] = 5000))).toBe('machine.slots: at most 4096 slots, got 5000');
    expect(at((s) => (s.machine['ramSize'] = '4G'))).toMatch(/^machine\.ramSize: expected 4096 to 3221225472 bytes/);
    expect(at((s) => (s.machine['ramSize'] = `${'9'.repeat(400)}`))).toMatch(/^machine\.ramSize: expected a size/);
    expect(at((s) => s.steps.push({ do: 'pm', kind: 'suspend', fail: Array.from({ length: 65 }, () => ({ phase: 'suspend', slot: 0 })) }))).toMatch(/^steps\[1\]\.fail: at most 64 injections/);
    expect(at((s) => (s.machine['devices'] = Array.from({ length: 33 }, () => ({ type: 'rng' }))))).toBe('machine.devices: 33 devices do not fit in 32 slots');
  });

  it('a file with 60 000 problems reports a bounded number of them and counts the rest', () => {
    const s = good();
    for (let i = 0; i < 60_000; i++) s[`x${i}`] = i;
    const r = checkScenario(s, { preflight: false });
    expect(r.issues).toHaveLength(SCENARIO_LIMITS.maxIssues);
    expect(r.total).toBe(60_000);
    expect(() => loadScenarioFromObject(s)).toThrow(/x0: unknown field .*\(and 59999 more problems\)$/);
  });

  it('files larger than the limit, and endless ones, are refused after reading at most the limit', async () => {
    const big = join(dir, 'big.json');
    writeFileSync(big, `{"name":"t","description":"${'d'.repeat(SCENARIO_LIMITS.maxFileBytes)}"}`);
    expect(() => loadScenario(big)).toThrow(`scenario '${big}' is larger than ${SCENARIO_LIMITS.maxFileBytes} bytes`);
    expect(() => loadScenario('/dev/zero')).toThrow(/is larger than 1048576 bytes/);
    const r = await cli(['run', '--scenario', '/dev/zero']);
    expect(r.code).toBe(2);
  });

  it('a long key is cut in the path the message shows', () => {
    const s = good();
    s['k'.repeat(100_000)] = 1;
    const msg = firstIssue(s);
    expect(msg.length).toBeLessThan(300);
    expect(msg).toMatch(/^k+\.\.\.: unknown field/);
  });
});

function loadScenarioFromObject(s: Json): unknown {
  const file = join(dir, 'obj.json');
  writeFileSync(file, JSON.stringify(s));
  return loadScenario(file);
}

describe('HI-42: command-line sizes', () => {
  it.each([
    [['run', '--bytes', String(RUN_LIMITS.maxIoBytes + 1)], /--bytes: expected an integer from 1 to 16777216/],
    [['run', '--pm', 'suspend', '--cycles', '99999999999999999999999'], /--cycles: expected an integer from 1 to 1000000/],
    [['run', '--pm', 'suspend', ...Array.from({ length: 65 }, () => ['--fail', 'suspend:0']).flat()], /--fail: at most 64 injections, got 65/],
    [['run', ...Array.from({ length: 33 }, () => ['--device', 'rng']).flat()], /--device: at most 32 devices/],
    [['run', '--device', 'rng,slot=40'], /slot 40 out of range 0\.\.31/],
    [['fuzz', '--seconds', '999999999'], /--seconds: expected an integer from 1 to 604800/],
    [['run', '--device', `blk,serial=${'s'.repeat(100_000)}`], /argument longer than/],
    [['trace', 'show', 'x', '--slot', '99999999999'], /--slot: expected an integer from 0 to 4294967295/],
  ])('%j', async (args, msg) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.err.length).toBeLessThan(1100);
  });
});
