// `virtio-emu trace show` and `trace export --chrome` as a user runs them
// (child processes), on a trace of a known run, and the one-line errors for
// files that are not good traces.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { virtioRngDriver, virtioRngRead } from '../../core/drivers/rng.js';
import { virtioRtcNoirqDriver } from '../../core/drivers/rtc.js';
import { kernel } from '../../core/kernel.js';
import { VirtioSystem } from '../../tools/system.js';
import { NO_DEVICE_TID, PM_CORE_TID, type ChromeEvent, type ChromeTrace } from '../../tools/trace/chrome.js';
import { readTrace, type Trace } from '../../tools/trace/reader.js';
import { TraceRecorder } from '../../tools/trace/recorder.js';
import { TRACE_MAGIC, type TraceEvent } from '../../tools/trace/records.js';
import { filterEvents, formatEvent } from '../../tools/trace/show.js';

const BIN = new URL('../../../bin/virtio-emu.js', import.meta.url).pathname;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vemu-trace-cli-'));
const file = path.join(dir, 'run.trace');
let trace: Trace;

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  kernel.clear();
  const rec = new TraceRecorder(file);
  const sys = await VirtioSystem.create(
    rec.systemOptions({ devices: ['rng', 'rtc'], drivers: [virtioRngDriver, virtioRtcNoirqDriver], slots: 4 }),
  );
  try {
    rec.attachPm(sys.dpm);
    virtioRngRead(sys.device(0)!, 256);
    expect(sys.suspend().result).toBe(0);
  } finally {
    await sys.close();
    rec.close();
  }
  trace = readTrace(file);
});

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

/** Output lines without the header comment and without timestamps. */
function body(out: string): string[] {
  return out
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => {
      expect(l).toMatch(/^\d+\.\d{6} /);
      return l.replace(/^\S+ /, '');
    });
}

describe('trace show', () => {
  it('prints a header comment and one line per event', async () => {
    const r = await cli(['trace', 'show', file]);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^# virtio-emu trace v1, started .*; slot 0: rng \(mmio\), slot 1: rtc \(mmio\)$/);
    expect(lines).toHaveLength(trace.events.length + 1);
    expect(body(r.out).slice(0, 4)).toEqual([
      'virtio_mmio_read slot=0 MagicValue = 0x74726976',
      'virtio_mmio_read slot=0 Version = 0x2',
      'virtio_mmio_read slot=0 DeviceID = 0x4',
      'virtio_mmio_read slot=0 VendorID = 0x554d4556',
    ]);
    expect(body(r.out)).toContain('irq_deliver line=0 slot=0');
    expect(body(r.out)).toContain('irq_mask line=1 slot=1');
    expect(body(r.out)).toContain('pm slot=1 resume_noirq -> 0 (virtio1)');
  });

  it('--slot and --reg combine: the Status accesses of slot 0 during probe, with names and the value before', async () => {
    const r = await cli(['trace', 'show', file, '--slot', '0', '--reg', 'Status']);
    expect(r.code).toBe(0);
    expect(body(r.out).slice(0, 11)).toEqual([
      'virtio_mmio_write slot=0 Status <- 0x0 (0)',
      'virtio_mmio_read slot=0 Status = 0x0 (0)',
      'virtio_mmio_write slot=0 Status <- 0x1 (ACKNOWLEDGE) from 0x0 (0)',
      'virtio_mmio_read slot=0 Status = 0x1 (ACKNOWLEDGE)',
      'virtio_mmio_write slot=0 Status <- 0x3 (ACKNOWLEDGE|DRIVER) from 0x1 (ACKNOWLEDGE)',
      'virtio_mmio_read slot=0 Status = 0x3 (ACKNOWLEDGE|DRIVER)',
      'virtio_mmio_write slot=0 Status <- 0xb (ACKNOWLEDGE|DRIVER|FEATURES_OK) from 0x3 (ACKNOWLEDGE|DRIVER)',
      'virtio_mmio_read slot=0 Status = 0xb (ACKNOWLEDGE|DRIVER|FEATURES_OK)',
      'virtio_mmio_read slot=0 Status = 0xb (ACKNOWLEDGE|DRIVER|FEATURES_OK)',
      'virtio_mmio_write slot=0 Status <- 0xf (ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK) from 0xb (ACKNOWLEDGE|DRIVER|FEATURES_OK)',
      'virtio_mmio_read slot=0 Status = 0xf (ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK)',
    ]);
    expect(body(r.out).every((l) => /^virtio_mmio_(read|write) slot=0 Status /.test(l))).toBe(true);
    const want = trace.events.filter((e) => e.type === 'access' && e.slot === 0 && e.reg === 'Status').length;
    expect(body(r.out)).toHaveLength(want);
  });

  it('--phase selects a callback and what it did on the bus; with --slot only that device', async () => {
    const r = await cli(['trace', 'show', file, '--phase', 'resume_noirq', '--slot', '1']);
    expect(r.code).toBe(0);
    const lines = body(r.out);
    expect(lines[0]).toBe('pm_begin slot=1 resume_noirq (virtio1)');
    expect(lines[lines.length - 1]).toBe('pm slot=1 resume_noirq -> 0 (virtio1)');
    // virtio_device_restore_noirq over mmio: reset and re-initialise the device.
    expect(lines).toContain('virtio_mmio_write slot=1 Status <- 0x0 (0) from 0xf (ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK)');
    expect(lines.slice(1, -1).every((l) => /^(virtio_mmio_\w+|irq_\w+) .*slot=1/.test(l))).toBe(true);
    const all = body((await cli(['trace', 'show', file, '--phase', 'resume_noirq'])).out);
    expect(all.filter((l) => l.startsWith('pm'))).toEqual([
      'pm_begin slot=0 resume_noirq (virtio0)',
      'pm slot=0 resume_noirq -> 0 (virtio0)',
      'pm_begin slot=1 resume_noirq (virtio1)',
      'pm slot=1 resume_noirq -> 0 (virtio1)',
    ]);
  });

  it('a filter nothing matches prints only the header', async () => {
    const r = await cli(['trace', 'show', file, '--reg', 'QueueNotify', '--slot', '3']);
    expect(r.code).toBe(0);
    expect(body(r.out)).toEqual([]);
  });

  it('--reg is case-insensitive and Config matches every config-space offset', () => {
    const at = (t: number, reg: string, off: number): TraceEvent => ({ type: 'access', t, slot: 0, reg, off, width: 1, dir: 'r', value: 0 });
    const ev = [at(1, 'Config+0x0', 0x100), at(2, 'Status', 0x70), at(3, 'Config+0x4', 0x104)];
    expect(filterEvents(ev, { reg: 'config' }).map((e) => e.t)).toEqual([1, 3]);
    expect(filterEvents(ev, { reg: 'CONFIG+0x4' }).map((e) => e.t)).toEqual([3]);
    expect(filterEvents(ev, { reg: 'status', slot: 1 })).toEqual([]);
    expect(formatEvent(ev[0]!)).toBe('0.000000 virtio_mmio_read slot=0 Config+0x0 = 0x0 width=1');
  });

  it('--json prints the header and then one JSON record per event', async () => {
    const r = await cli(['trace', 'show', file, '--json', '--reg', 'InterruptACK']);
    expect(r.code).toBe(0);
    const recs = r.out.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs[0]).toMatchObject({ type: 'header', version: 1 });
    expect(recs.length).toBeGreaterThan(1);
    for (const x of recs.slice(1)) expect(x).toMatchObject({ type: 'access', reg: 'InterruptACK', dir: 'w' });
  });

  it('takes shutdown (device_shutdown at a hibernation power-off) as a phase', async () => {
    const r = await cli(['trace', 'show', file, '--phase', 'shutdown']);
    expect(r.code).toBe(0);
    expect(body(r.out)).toEqual([]); // a suspend has none
  });

  it('rejects an unknown phase as a usage error', async () => {
    const r = await cli(['trace', 'show', file, '--phase', 'hibernate_now']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^virtio-emu trace: --phase: unknown PM phase 'hibernate_now'/);
  });
});

describe('trace export --chrome', () => {
  let chrome: ChromeTrace;
  beforeAll(async () => {
    const out = path.join(dir, 'run.json');
    const r = await cli(['trace', 'export', '--chrome', file, out]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    chrome = JSON.parse(fs.readFileSync(out, 'utf8')) as ChromeTrace;
  });

  it('is the JSON Object Format with valid phases', () => {
    expect(chrome.displayTimeUnit).toBe('ns');
    expect(Array.isArray(chrome.traceEvents)).toBe(true);
    for (const e of chrome.traceEvents) {
      expect(['X', 'i', 'M']).toContain(e.ph);
      expect(typeof e.name).toBe('string');
      expect(e.pid).toBe(1);
      expect(Number.isInteger(e.tid)).toBe(true);
      expect(typeof e.ts).toBe('number');
      if (e.ph === 'X') expect(e.dur).toBeGreaterThanOrEqual(0);
      if (e.ph === 'i') expect(e.s).toBe('t');
    }
  });

  it('names a track per device, the PM core and the windows without a device', () => {
    const names = new Map(chrome.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [e.tid, (e.args as { name: string }).name]));
    expect(names.get(0)).toBe('slot 0: rng (mmio)');
    expect(names.get(1)).toBe('slot 1: rtc (mmio)');
    expect(names.get(PM_CORE_TID)).toBe('PM core');
    expect(names.has(NO_DEVICE_TID)).toBe(true);
    const used = new Set(chrome.traceEvents.filter((e) => e.ph !== 'M').map((e) => e.tid));
    for (const tid of used) expect(names.has(tid)).toBe(true);
  });

  it('has non-decreasing times on every track', () => {
    const last = new Map<number, number>();
    for (const e of chrome.traceEvents.filter((x) => x.ph !== 'M')) {
      expect(e.ts).toBeGreaterThanOrEqual(last.get(e.tid) ?? 0);
      last.set(e.tid, e.ts);
    }
  });

  it('shows each PM callback as a slice on its device track, and the phases on the PM core track', () => {
    const slices = chrome.traceEvents.filter((e) => e.ph === 'X');
    const onDevices = slices.filter((e) => e.tid !== PM_CORE_TID).map((e) => `${e.name}@${e.tid}`);
    expect(onDevices).toEqual([
      'suspend@1', 'suspend@0', 'suspend_noirq@1', 'suspend_noirq@0', 'resume_noirq@0', 'resume_noirq@1', 'resume@0', 'resume@1',
    ]);
    expect(slices.filter((e) => e.tid === PM_CORE_TID).map((e) => e.name)).toEqual(['suspend', 'suspend_noirq', 'resume_noirq', 'resume']);
    // A phase on the PM core track spans its device callbacks.
    const core = (name: string): ChromeEvent => slices.find((e) => e.tid === PM_CORE_TID && e.name === name)!;
    for (const s of slices.filter((e) => e.tid !== PM_CORE_TID)) {
      const c = core(s.name);
      expect(s.ts).toBeGreaterThanOrEqual(c.ts);
      expect(s.ts + s.dur!).toBeLessThanOrEqual(c.ts + c.dur! + 1e-6);
      expect(s.args).toMatchObject({ result: '0' });
    }
  });

  it('shows register accesses and interrupts as instants on the device tracks', () => {
    const inst = chrome.traceEvents.filter((e) => e.ph === 'i');
    const accesses = trace.events.filter((e) => e.type === 'access').length;
    expect(inst.filter((e) => e.cat === 'mmio' || e.cat === 'css')).toHaveLength(accesses);
    expect(inst.find((e) => e.cat === 'mmio' && e.tid === 0)).toMatchObject({ name: 'R MagicValue', args: { reg: 'MagicValue', value: '0x74726976', dir: 'read' } });
    expect(inst.some((e) => e.cat === 'irq' && e.name === 'irq_deliver' && e.tid === 0)).toBe(true);
  });
});

describe('run --trace', () => {
  it('records the run it reports: devices, and the PM callbacks of its cycle in order', async () => {
    const out = path.join(dir, 'cli-run.trace');
    const r = await cli(['run', '--device', 'rng', '--device', 'rtc', '--pm', 'suspend', '--json', '--trace', out]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { pm: { phases: { phase: string; slot: number; result: string }[] }[] };
    const t = readTrace(out);
    expect(t.end).not.toBeNull();
    expect(t.header.machine.devices.map((d) => d.type)).toEqual(['rng', 'rtc']);
    const after = t.events.filter((e) => e.type === 'pm' && e.when === 'after');
    expect(after.map((e) => e.type === 'pm' && `${e.phase}@${e.slot}`)).toEqual(report.pm[0]!.phases.map((p) => `${p.phase}@${p.slot}`));
    expect(t.events.some((e) => e.type === 'irq' && e.event === 'deliver' && e.line === 0)).toBe(true);
  });

  it('an unwritable trace file is a one-line error before anything starts', async () => {
    const r = await cli(['run', '--trace', path.join(dir, 'no', 'such', 'dir.trace')]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^virtio-emu run: cannot write trace .*dir\.trace: ENOENT\n$/);
  });
});

describe('bad trace files', () => {
  const frame = (records: unknown[]): Buffer => {
    const payload = new Packr({ useRecords: true }).pack(records);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(payload.length);
    return Buffer.concat([len, payload]);
  };
  const write = (name: string, ...parts: Uint8Array[]): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, Buffer.concat(parts));
    return p;
  };
  const header = (version: number): unknown => ({ type: 'header', version, tool: 'virtio-emu', start: new Date().toISOString(), machine: { slots: 1, mmioBase: 0, ramBase: 0, ramSize: 4096, bus: 'worker', devices: [] } });
  const access = { type: 'access', t: 1, slot: 0, reg: 'Status', off: 0x70, width: 4, dir: 'r', value: 0 };

  async function expectError(args: string[], pattern: RegExp, code = 1): Promise<void> {
    const r = await cli(args);
    expect(r.code).toBe(code);
    expect(r.out).toBe('');
    expect(r.err.endsWith('\n')).toBe(true);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^virtio-emu trace: /);
    expect(r.err).toMatch(pattern);
  }

  it('a file that is not a trace', async () => {
    const p = write('text.trace', Buffer.from('hello, this is not a trace\n'));
    await expectError(['trace', 'show', p], /not a virtio-emu trace \(bad magic\)/);
    await expectError(['trace', 'export', '--chrome', p, path.join(dir, 'x.json')], /bad magic/);
  });

  it('a frame that is not msgpack', async () => {
    const junk = Buffer.from([0xc1, 0xc1, 0xc1, 0xc1, 0xc1]);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(junk.length);
    const p = write('junk.trace', TRACE_MAGIC, len, junk);
    await expectError(['trace', 'show', p], /frame at byte 8 is not valid msgpack/);
  });

  it('a truncated recording (cut inside a frame, or without its end record)', async () => {
    const whole = fs.readFileSync(file);
    const cut = write('cut.trace', whole.subarray(0, whole.length - 10));
    await expectError(['trace', 'show', cut], /truncated: frame of \d+ bytes has only \d+ at byte 8/);
    const noEnd = write('noend.trace', TRACE_MAGIC, frame([header(1), access]));
    await expectError(['trace', 'show', noEnd], /truncated: no end record after 1 events/);
    // --partial reads what is there and says so.
    const r = await cli(['trace', 'show', noEnd, '--partial']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('virtio_mmio_read slot=0 Status = 0x0 (0)');
    expect(r.out).toContain('# trace ends without an end record');
    const onlyMagic = write('magic.trace', TRACE_MAGIC);
    await expectError(['trace', 'show', onlyMagic], /no trace header/);
  });

  it('a header of another version, or no header first', async () => {
    const v2 = write('v2.trace', TRACE_MAGIC, frame([header(2), { type: 'end', t: 0, records: 2 }]));
    await expectError(['trace', 'show', v2], /trace version 2 is not supported \(this reader knows version 1\)/);
    const headless = write('headless.trace', TRACE_MAGIC, frame([access]));
    await expectError(['trace', 'show', headless], /first record is not a trace header/);
  });

  it('a malformed record', async () => {
    const bad = write('bad.trace', TRACE_MAGIC, frame([header(1), { ...access, width: 3 }, { type: 'end', t: 2, records: 3 }]));
    await expectError(['trace', 'show', bad], /record 1 \(frame at byte 8\): access record with width 3/);
    const tuple = write('tuple.trace', TRACE_MAGIC, frame([header(1), [1, 0, 'Status', 0x70, 4, 'r', 0], [2, 0, 'Status', 0x70, 4, 'x', 0]]));
    await expectError(['trace', 'show', tuple], /record 2 \(frame at byte 8\): access record with direction x/);
    const kind = write('kind.trace', TRACE_MAGIC, frame([header(1), { type: 'dma', t: 1 }]));
    await expectError(['trace', 'show', kind], /record 1 \(frame at byte 8\): unknown record type "dma"/);
  });

  it('a missing file or a directory is a usage error (exit 2), as a missing scenario file is', async () => {
    await expectError(['trace', 'show', path.join(dir, 'nope.trace')], /cannot read .*nope\.trace: no such file/, 2);
    await expectError(['trace', 'show', dir], /cannot read .*: is a directory/, 2);
    await expectError(['trace', 'export', '--chrome', path.join(dir, 'nope.trace'), path.join(dir, 'x.json')], /no such file/, 2);
  });

  it('prints the stack only with --debug', async () => {
    const p = write('text2.trace', Buffer.from('nope'));
    const r = await cli(['trace', 'show', p, '--debug']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/TraceFormatError: .*bad magic\)\n\s+at /);
  });
});
