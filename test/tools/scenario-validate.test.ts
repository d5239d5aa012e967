// The scenario validator: good files come back with defaults filled in and
// references resolved; each bad field is reported with its JSON path.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EIO, ENODEV } from '../../core/uapi/errno.js';
import { loadScenario } from '../../tools/scenario/run-scenario.js';
import { ScenarioError, checkScenario, validateScenario } from '../../tools/scenario/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'scenario-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DEFAULT = new URL('../../../scenarios/default.json', import.meta.url);

type Json = Record<string, unknown>;

/** A small valid scenario to break one field at a time. */
function base(): Json {
  return {
    name: 't',
    machine: {
      devices: [{ type: 'rng' }, { type: 'blk', name: 'disk', options: { size: '1M' } }, { type: 'console', options: { out: 'none' } }, { type: 'rtc', slot: 5 }],
    },
    steps: [
      { do: 'rng-read', device: 'rng', bytes: 64 },
      { do: 'blk-write', device: 'disk', sector: 0, count: 8, seed: 1 },
      { do: 'pm', kind: 'suspend', cycles: 2 },
      { do: 'blk-verify', device: 'disk' },
    ],
  };
}

/** base() with fn applied. */
function mutate(fn: (s: Json & { machine: Json & { devices: Json[] }; steps: Json[] }) => void): Json {
  const s = base() as Json & { machine: Json & { devices: Json[] }; steps: Json[] };
  fn(s);
  return s;
}

function issues(raw: unknown, opts = {}): string[] {
  return checkScenario(raw, opts).issues.map((i) => `${i.path}: ${i.message}`);
}

describe('good scenarios', () => {
  it('the default scenario is valid', () => {
    const s = loadScenario(DEFAULT.pathname);
    expect(s.name).toBe('default');
    expect(s.machine.devices.map((d) => `${d.name}@${d.slot}:${d.type}`)).toEqual(['rng@0:rng', 'disk@1:blk', 'console@2:console', 'rtc@3:rtc']);
    expect(s.steps.filter((st) => st.do === 'pm').map((st) => st.do === 'pm' && `${st.kind}/${st.power}`)).toEqual(['suspend/reset', 'hibernate/fresh']);
  });

  it('fills in defaults and resolves names and slots', () => {
    const s = validateScenario(base());
    expect(s.machine.bus).toBe('worker');
    // explicit slot 5 for rtc; the rest fill 0, 1, 2
    expect(s.machine.devices.map((d) => [d.name, d.slot, d.transport])).toEqual([
      ['rng', 0, 'mmio'],
      ['disk', 1, 'mmio'],
      ['console', 2, 'mmio'],
      ['rtc', 5, 'mmio'],
    ]);
    expect(s.steps[1]).toEqual({ do: 'blk-write', device: { name: 'disk', slot: 1, type: 'blk' }, sector: 0, count: 8, data: { seed: 1 } });
    expect(s.steps[2]).toEqual({ do: 'pm', kind: 'suspend', power: 'retain', cycles: 2, fail: [], expect: null });
    expect(s.steps[3]).toEqual({ do: 'blk-verify', device: { name: 'disk', slot: 1, type: 'blk' }, range: null });
  });

  it('a hibernate step takes mode shutdown (the default) or platform', () => {
    const steps = (extra: Json) => validateScenario(mutate((s) => Object.assign(s.steps[2]!, { kind: 'hibernate', ...extra }))).steps[2];
    expect(steps({})).toMatchObject({ do: 'pm', kind: 'hibernate', power: 'fresh', mode: 'shutdown' });
    expect(steps({ mode: 'platform' })).toMatchObject({ kind: 'hibernate', mode: 'platform' });
  });

  it('numbers repeated types, takes slots and names as device references, and parses failures and expectations', () => {
    const s = validateScenario({
      name: 'many',
      machine: { bus: 'inthread', slots: 4, ramSize: '16M', devices: [{ type: 'rng' }, { type: 'rng' }, { type: 'rtc', transport: 'mmio-legacy' }] },
      steps: [
        { do: 'rng-read', device: 1 },
        { do: 'pm', kind: 'hibernate', fail: [{ phase: 'restore_noirq', device: 'rtc', errno: 'ENODEV' }, { phase: 'freeze', slot: 0 }], expect: { result: 0, devicesOk: false } },
        { do: 'expect', device: 'rtc', status: ['ACKNOWLEDGE', 'DRIVER', 'FEATURES_OK', 'FAILED'], register: { name: 'Status', value: 0x8b }, pm: { result: '0' } },
        { do: 'expect', device: 'rng0', register: { name: 'Config+0x0', value: 0, width: 1 }, driver: null },
        { do: 'inject', device: 'rng1', event: 'config-change' },
        { do: 'exercise' },
      ],
    });
    expect(s.machine).toMatchObject({ bus: 'inthread', slots: 4, ramSize: 16 << 20 });
    expect(s.machine.devices.map((d) => d.name)).toEqual(['rng0', 'rng1', 'rtc']);
    expect(s.steps[0]).toMatchObject({ device: { name: 'rng1', slot: 1 }, bytes: 4096 });
    expect(s.steps[1]).toMatchObject({
      power: 'fresh',
      fail: [
        { phase: 'restore_noirq', slot: 2, errno: ENODEV },
        { phase: 'freeze', slot: 0, errno: EIO },
      ],
      expect: { result: 0, devicesOk: false },
    });
    expect(s.steps[2]).toMatchObject({ status: 0x8b, register: { name: 'Status', offset: 0x70, width: 4, value: 0x8b }, pm: { result: 0 } });
    expect(s.steps[3]).toMatchObject({ register: { offset: 0x100, width: 1 }, driver: null });
  });

  it('resolves relative file paths against the scenario file, and --json silences a console without a sink', () => {
    const file = join(dir, 'rel.json');
    writeFileSync(file, JSON.stringify({ name: 'rel', machine: { devices: [{ type: 'blk', options: { file: 'disk.img', create: '1M' } }, { type: 'console' }] }, steps: [] }));
    const s = loadScenario(file, { json: true });
    expect(s.machine.devices[0]!.options['file']).toBe(join(dir, 'disk.img'));
    expect(s.machine.devices[1]!.options['out']).toBe('none');
    expect(loadScenario(file).machine.devices[1]!.options['out']).toBeUndefined();
  });
});

describe('bad scenarios: each problem with its path', () => {
  const cases: [string, Json | unknown, RegExp][] = [
    ['not an object', [1, 2], /^: expected an object/],
    ['missing name', mutate((s) => delete s['name']), /^name: missing/],
    ['unknown top-level field', mutate((s) => (s['setps'] = [])), /^setps: unknown field; did you mean 'steps'\?/],
    ['no devices', mutate((s) => (s.machine['devices'] = [])), /^machine\.devices: expected at least one device/],
    ['unknown device type', mutate((s) => (s.machine.devices[1]!['type'] = 'nvme')), /^machine\.devices\[1\]\.type: unknown device type 'nvme'/],
    ['bad transport', mutate((s) => (s.machine.devices[0]!['transport'] = 'pci')), /^machine\.devices\[0\]\.transport: expected one of mmio, mmio-legacy/],
    ['bad bus', mutate((s) => (s.machine['bus'] = 'thread')), /^machine\.bus: expected one of worker, inthread/],
    ['slot out of range', mutate((s) => (s.machine.devices[3]!['slot'] = 40)), /^machine\.devices\[3\]\.slot: slot 40 out of range 0\.\.31/],
    ['slot taken twice', mutate((s) => (s.machine.devices[0]!['slot'] = 5)), /^machine\.devices\[3\]\.slot: slot 5 already holds machine\.devices\[0\]/],
    ['duplicate name', mutate((s) => (s.machine.devices[0]!['name'] = 'disk')), /^machine\.devices\[1\]\.name: duplicate device name 'disk'/],
    ['bad option value type', mutate((s) => (s.machine.devices[1]!['options'] = { size: [1] })), /^machine\.devices\[1\]\.options\.size: expected a string, number or boolean/],
    ['bad blk option', mutate((s) => (s.machine.devices[1]!['options'] = { size: 'huge' })), /^machine\.devices\[1\]\.options: option size 'huge' is not a size/],
    ['unknown blk option', mutate((s) => (s.machine.devices[1]!['options'] = { sise: '1M' })), /^machine\.devices\[1\]\.options: unknown option 'sise'/],
    ['missing image of a read-only disk', mutate((s) => (s.machine.devices[1]!['options'] = { file: '/nonexistent/x.img', ro: true })), /^machine\.devices\[1\]\.options: cannot open '\/nonexistent\/x\.img': no such file/],
    ['missing do', mutate((s) => delete s.steps[0]!['do']), /^steps\[0\]\.do: missing/],
    ['unknown step', mutate((s) => (s.steps[0]!['do'] = 'rng-reed')), /^steps\[0\]\.do: expected one of .*; did you mean 'rng-read'\?/],
    ['zero cycles', mutate((s) => (s.steps[2]!['cycles'] = 0)), /^steps\[2\]\.cycles: expected a positive integer, got 0$/],
    ['misspelt field', mutate((s) => (s.steps[2]!['cycle'] = 2)), /^steps\[2\]\.cycle: unknown field; did you mean 'cycles'\?/],
    ['bad pm kind', mutate((s) => (s.steps[2]!['kind'] = 'sleep')), /^steps\[2\]\.kind: expected one of suspend, hibernate/],
    ['bad power', mutate((s) => (s.steps[2]!['power'] = 'off')), /^steps\[2\]\.power: expected one of retain, reset, fresh/],
    ['bad hibernation mode', mutate((s) => Object.assign(s.steps[2]!, { kind: 'hibernate', mode: 'reboot' })), /^steps\[2\]\.mode: expected one of shutdown, platform/],
    ['hibernation mode on a suspend', mutate((s) => (s.steps[2]!['mode'] = 'platform')), /^steps\[2\]\.mode: mode is the hibernation mode; a suspend step takes none/],
    ['bad fail phase', mutate((s) => (s.steps[2]!['fail'] = [{ phase: 'suspend_noirk', slot: 0 }])), /^steps\[2\]\.fail\[0\]\.phase: expected a PM callback .*did you mean 'suspend_noirq'\?/],
    ['fail on an empty slot', mutate((s) => (s.steps[2]!['fail'] = [{ phase: 'suspend', slot: 9 }])), /^steps\[2\]\.fail\[0\]\.slot: no device in slot 9/],
    ['bad errno', mutate((s) => (s.steps[2]!['fail'] = [{ phase: 'suspend', slot: 0, errno: 'EFOO' }])), /^steps\[2\]\.fail\[0\]\.errno: expected an errno/],
    ['bad pm expectation', mutate((s) => (s.steps[2]!['expect'] = { result: 'bad' })), /^steps\[2\]\.expect\.result: expected an errno/],
    ['unknown device reference', mutate((s) => (s.steps[1]!['device'] = 'dsk')), /^steps\[1\]\.device: no device named 'dsk'; did you mean 'disk'\?/],
    ['wrong device type', mutate((s) => (s.steps[1]!['device'] = 'rng')), /^steps\[1\]\.device: 'rng' is a rng device; blk-write needs a blk device/],
    ['negative sector', mutate((s) => (s.steps[1]!['sector'] = -1)), /^steps\[1\]\.sector: expected an integer >= 0, got -1/],
    ['seed and pattern', mutate((s) => (s.steps[1]!['pattern'] = 'x')), /^steps\[1\]\.pattern: give either seed or pattern/],
    ['no data', mutate((s) => delete s.steps[1]!['seed']), /^steps\[1\]\.seed: missing: give seed/],
    ['past the end of the disk', mutate((s) => (s.steps[1]!['sector'] = 2045)), /^steps\[1\]\.count: sectors 2045\+8 go past the end of 'disk' \(2048 sectors\)/],
    ['empty expect', mutate((s) => s.steps.push({ do: 'expect', device: 'rtc' })), /^steps\[4\]: expect needs at least one of/],
    ['device check without device', mutate((s) => s.steps.push({ do: 'expect', status: 15 })), /^steps\[4\]\.status: status needs a "device"/],
    ['bad status bit', mutate((s) => s.steps.push({ do: 'expect', device: 'rtc', status: ['DRIVER_OKAY'] })), /^steps\[4\]\.status\[0\]: expected a status bit/],
    ['bad noirq state', mutate((s) => s.steps.push({ do: 'expect', device: 'rtc', noirqState: 'done' })), /^steps\[4\]\.noirqState: expected one of none, entered, restored/],
    ['unknown register', mutate((s) => s.steps.push({ do: 'expect', device: 'rtc', register: { name: 'Statuss', value: 0 } })), /^steps\[4\]\.register\.name: unknown register 'Statuss'; did you mean 'Status'\?/],
    ['consoleSize on a blk', mutate((s) => s.steps.push({ do: 'expect', device: 'disk', consoleSize: { cols: 1, rows: 1 } })), /^steps\[4\]\.consoleSize: 'disk' is a blk device/],
    ['pm expectation before any pm step', mutate((s) => s.steps.unshift({ do: 'expect', pm: { result: 0 } })), /^steps\[0\]\.pm: no pm step runs before this expectation/],
    ['console text missing', mutate((s) => s.steps.push({ do: 'console-write', device: 'console' })), /^steps\[4\]\.text: missing/],
    ['inject arg not a scalar', mutate((s) => s.steps.push({ do: 'inject', device: 'console', event: 'resize', args: { cols: { n: 1 } } })), /^steps\[4\]\.args\.cols: expected a string, number or boolean/],
  ];

  it.each(cases)('%s', (_name, raw, want) => {
    const got = issues(raw);
    expect(got.length).toBeGreaterThan(0);
    expect(got[0]).toMatch(want);
  });

  it('collects every problem, and the error names the first and counts the rest', () => {
    const raw = mutate((s) => {
      s.steps[0]!['bytes'] = 0;
      s.steps[2]!['cycles'] = -3;
      s.steps[3]!['device'] = 7;
    });
    expect(issues(raw).map((i) => i.split(':')[0])).toEqual(['steps[0].bytes', 'steps[2].cycles', 'steps[3].device']);
    expect(() => validateScenario(raw, { file: 'x.json' })).toThrow(/^x\.json: steps\[0\]\.bytes: expected a positive integer, got 0 \(and 2 more problems\)$/);
    try {
      validateScenario(raw);
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioError);
      expect((e as ScenarioError).issues).toHaveLength(3);
    }
  });

  it('with --json, a console writing to stdout is refused', () => {
    const raw = mutate((s) => (s.machine.devices[2]!['options'] = { out: 'stdout' }));
    expect(issues(raw, { json: true })[0]).toMatch(/^machine\.devices\[2\]\.options\.out: 'stdout' would mix console output into the --json document/);
    expect(issues(raw)).toEqual([]);
  });

  it('files: unreadable, not JSON (with line and column)', () => {
    expect(() => loadScenario(join(dir, 'missing.json'))).toThrow(/cannot read scenario '.*missing\.json': no such file/);
    expect(() => loadScenario(dir)).toThrow(/is a directory/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{\n  "name": "x",\n  "machine": { }\n  "steps": []\n}\n');
    expect(() => loadScenario(bad)).toThrow(/bad\.json: not valid JSON: .* at line 4 column 3/);
    expect(readFileSync(bad, 'utf8')).toContain('steps');
  });
});
