// HI-10..HI-15: the trace tools against large and crafted traces: reading
// streams frame by frame (memory bounded by a chunk and a frame), positions
// past 2 GiB and 4 GiB work, PM begin/end pairing is linear, a truncated
// tail says how many events were read, and export never leaves a half-written
// OUT.json.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChromeTrace, MAX_HELD, toChromeTrace } from '../../tools/trace/chrome.js';
import { READ_CHUNK, TraceFormatError, TraceStream, bufferSource, fileSource, readTrace, type TraceSource } from '../../tools/trace/reader.js';
import { FRAME_HEADER, FRAME_MAX, TRACE_MAGIC } from '../../tools/trace/records.js';
import { EventFilter, MAX_OPEN_CALLBACKS } from '../../tools/trace/show.js';
import { TraceWriter } from '../../tools/trace/writer.js';

const BIN = new URL('../../../bin/virtio-emu.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'vemu-trace-hi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEADER = {
  type: 'header',
  version: 1,
  tool: 'virtio-emu',
  start: '2026-01-01T00:00:00.000Z',
  machine: { slots: 2, mmioBase: 0x0a000000, ramBase: 0x40000000, ramSize: 1 << 20, bus: 'worker', devices: [{ slot: 0, type: 'rng', transport: 'mmio', line: 0, addr: 0x0a000000 }] },
};

function frame(records: unknown[]): Buffer {
  const payload = new Packr({ useRecords: true }).pack(records);
  const len = Buffer.alloc(FRAME_HEADER);
  len.writeUInt32LE(payload.length);
  return Buffer.concat([len, payload]);
}

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

/** A trace written the way the recorder writes one: `n` accesses, a PM callback every 1000. */
function bigTrace(path: string, n: number): void {
  const w = new TraceWriter(path);
  w.push(HEADER as never);
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) w.push({ type: 'pm', t: i * 10, when: 'before', phase: 'suspend', device: 'virtio0', slot: 0 });
    w.push([i * 10 + 1, 0, 'QueueNotify', 0x50, 4, 'w', i & 0xffff]);
    if (i % 1000 === 999) w.push({ type: 'pm', t: i * 10 + 2, when: 'after', phase: 'suspend', device: 'virtio0', slot: 0, result: 0 });
  }
  w.push({ type: 'end', t: n * 10 + 5, records: w.count + 1 });
  w.close();
}

describe('HI-10: reading streams', () => {
  it('a trace of many frames is read with one chunk-sized buffer, every event once, in order', () => {
    const p = join(dir, 'big.trace');
    bigTrace(p, 250_000);
    expect(statSync(p).size).toBeGreaterThan(2 * READ_CHUNK);
    const t = TraceStream.open(fileSource(p), p);
    let n = 0;
    let lastT = -1;
    let backwards = 0;
    for (const e of t.events()) {
      if (e.t <= lastT) backwards++;
      lastT = e.t;
      n++;
    }
    expect(n).toBe(250_000 + 500);
    expect(backwards).toBe(0);
    expect(t.end).not.toBeNull();
    // One chunk: no frame of this trace is larger.
    expect(t.peakBuffer).toBe(READ_CHUNK);
  });

  it('a frame length larger than the file is reported as a cut tail before anything is allocated for it; one past the limit is corrupt', () => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(FRAME_MAX);
    const cut = Buffer.concat([TRACE_MAGIC, frame([HEADER]), len, Buffer.alloc(100)]);
    const t = TraceStream.open(bufferSource(cut), 'cut', { partial: true });
    expect([...t.events()]).toEqual([]);
    expect(t.truncated).toMatch(/frame of 4194304 bytes has only 100 at byte \d+, after 0 events/);
    expect(t.peakBuffer).toBe(READ_CHUNK);
    len.writeUInt32LE(FRAME_MAX + 1);
    const big = Buffer.concat([TRACE_MAGIC, frame([HEADER]), len, Buffer.alloc(100)]);
    expect(() => [...TraceStream.open(bufferSource(big), 'big').events()]).toThrow(/corrupt frame length 4194305 .*at most 4194304 bytes/);
  });

  it('the writer splits a batch that would make a frame larger than a reader takes', () => {
    const p = join(dir, 'split.trace');
    const w = new TraceWriter(p, 100_000);
    w.push(HEADER as never);
    const reg = 'R'.repeat(200);
    for (let i = 0; i < 40_000; i++) w.push([i, 0, reg, 0, 4, 'r', i]);
    w.push({ type: 'end', t: 1e9, records: w.count + 1 });
    w.close();
    expect(readTrace(p).events).toHaveLength(40_000);
  });
});

/**
 * A trace of `frames` frames of about 4 MiB each, made up on the fly: each
 * holds one access whose register name fills the frame. Nothing is on disk.
 */
function hugeSource(frames: number): { source: TraceSource; size: number } {
  const head = Buffer.concat([TRACE_MAGIC, frame([HEADER])]);
  const body = frame([[1, 0, 'Q'.repeat(FRAME_MAX - 64), 0x50, 4, 'w', 7]]);
  const tail = frame([{ type: 'end', t: 2, records: frames + 2 }]);
  const size = head.length + frames * body.length + tail.length;
  const piece = (pos: number): { bytes: Buffer; at: number } => {
    if (pos < head.length) return { bytes: head, at: pos };
    const k = Math.floor((pos - head.length) / body.length);
    if (k < frames) return { bytes: body, at: pos - head.length - k * body.length };
    return { bytes: tail, at: pos - head.length - frames * body.length };
  };
  return {
    size,
    source: {
      size,
      read(buf, offset, length, position) {
        if (position >= size) return 0;
        const { bytes, at } = piece(position);
        const n = Math.min(length, bytes.length - at);
        buf.set(bytes.subarray(at, at + n), offset);
        return n;
      },
      close() {},
    },
  };
}

describe('HI-11: traces past 2 GiB and 4 GiB', () => {
  it('reads a 4.5 GiB trace to its end record, every frame at its 64-bit position', { timeout: 120_000 }, () => {
    const frames = 1160;
    const { source, size } = hugeSource(frames);
    expect(size).toBeGreaterThan(4.5 * 2 ** 30);
    const t = TraceStream.open(source, 'huge');
    let n = 0;
    for (const e of t.events()) {
      if (e.type === 'access' && e.value === 7) n++;
    }
    expect(n).toBe(frames);
    expect(t.end).toMatchObject({ type: 'end' });
    expect(t.peakBuffer).toBeLessThanOrEqual(FRAME_MAX + FRAME_HEADER);
  });

  it('a cut past 2 GiB is reported at its real byte offset', { timeout: 120_000 }, () => {
    const { source, size } = hugeSource(520);
    const cut: TraceSource = { ...source, size: size - 10, read: (b, o, l, p) => (p >= size - 10 ? 0 : source.read(b, o, Math.min(l, size - 10 - p), p)) };
    let err: unknown;
    try {
      for (const _ of TraceStream.open(cut, 'cut').events());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TraceFormatError);
    const at = Number(/at byte (\d+)/.exec((err as Error).message)![1]);
    expect(at).toBeGreaterThan(2 ** 31);
    expect((err as Error).message).toMatch(/after 520 events/);
  });
});

describe('HI-12: PM pairing is linear and bounded', () => {
  /** n callbacks begun, none ended, then n ends: the worst case for pairing by search. */
  function nested(n: number): Buffer {
    const recs: unknown[] = [HEADER];
    for (let i = 0; i < n; i++) recs.push({ type: 'pm', t: i, when: 'before', phase: 'suspend', device: 'virtio0', slot: 0 });
    for (let i = 0; i < 3; i++) recs.push([n + i, 0, 'Status', 0x70, 4, 'r', 0]);
    for (let i = 0; i < n; i++) recs.push({ type: 'pm', t: 2 * n + i, when: 'after', phase: 'suspend', device: 'virtio0', slot: 0, result: 0 });
    recs.push({ type: 'end', t: 4 * n, records: 2 * n + 5 });
    const frames: Buffer[] = [];
    for (let i = 0; i < recs.length; i += 2000) frames.push(frame(recs.slice(i, i + 2000)));
    return Buffer.concat([TRACE_MAGIC, ...frames]);
  }

  it('100 000 open callbacks: show --phase and the Chrome export finish, holding at most the bounded number', () => {
    const n = 100_000;
    const t = readTrace(writeTmp('nested.trace', nested(n)));
    const f = new EventFilter({ phase: 'suspend' });
    expect(t.events.filter((e) => f.accept(e))).toHaveLength(2 * n + 3);
    const c = toChromeTrace(t);
    const slices = c.traceEvents.filter((e) => e.ph === 'X' && e.tid === 0);
    // Every begin and every end is a slice: paired, closed early as unfinished, or an end without a begin.
    expect(slices.filter((e) => (e.args as { unfinished?: boolean }).unfinished)).toHaveLength(n - MAX_OPEN_CALLBACKS);
    expect(slices.filter((e) => (e.dur ?? 0) > 0 && !(e.args as { unfinished?: boolean }).unfinished)).toHaveLength(MAX_OPEN_CALLBACKS);
    expect(slices).toHaveLength(2 * n - MAX_OPEN_CALLBACKS);
    // Per track, times never go back.
    const last = new Map<number, number>();
    let backwards = 0;
    for (const e of c.traceEvents.filter((x) => x.ph !== 'M')) {
      if (e.ts < (last.get(e.tid) ?? 0)) backwards++;
      last.set(e.tid, e.ts);
    }
    expect(backwards).toBe(0);
  });

  it('a callback that never ends holds back at most MAX_HELD events of its track', () => {
    const recs: unknown[] = [HEADER, { type: 'pm', t: 0, when: 'before', phase: 'freeze', device: 'virtio0', slot: 0 }];
    const n = MAX_HELD + 1000;
    for (let i = 1; i <= n; i++) recs.push([i, 0, 'Status', 0x70, 4, 'r', 0]);
    recs.push({ type: 'end', t: n + 1, records: n + 3 });
    const frames: Buffer[] = [];
    for (let i = 0; i < recs.length; i += 4000) frames.push(frame(recs.slice(i, i + 4000)));
    const c = toChromeTrace(readTrace(writeTmp('held.trace', Buffer.concat([TRACE_MAGIC, ...frames]))));
    const freeze = c.traceEvents.find((e) => e.name === 'freeze' && e.tid === 0)!;
    expect(freeze.args).toMatchObject({ unfinished: true });
    expect(freeze.dur).toBeLessThan(us(n));
    expect(c.traceEvents.filter((e) => e.ph === 'i')).toHaveLength(n);
  });
});

const us = (ns: number): number => ns / 1000;

function writeTmp(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('HI-13/HI-14: truncated tails and failed exports', () => {
  it('a truncated tail names how many events were read; --partial prints them and says so', async () => {
    const p = join(dir, 'tail.trace');
    bigTrace(p, 10_000);
    const whole = readFileSync(p);
    const cut = writeTmp('tail-cut.trace', whole.subarray(0, whole.length - 7));
    const r = await cli(['trace', 'show', cut]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/truncated: frame of \d+ bytes has only \d+ at byte \d+, after \d+ events \(recording interrupted\? --partial reads it anyway\)\n$/);
    const partial = await cli(['trace', 'show', cut, '--partial']);
    expect(partial.code).toBe(0);
    const n = Number(/after (\d+) events/.exec(r.err)![1]);
    expect(partial.out.trimEnd().split('\n')).toHaveLength(n + 2);
    expect(partial.out.trimEnd().split('\n').at(-1)).toBe(`# trace ends without an end record after ${n} events (recording interrupted)`);
  });

  it('export from a corrupt trace fails with one line and leaves OUT.json as it was, with no temporary file', async () => {
    const p = join(dir, 'ex.trace');
    bigTrace(p, 150_000);
    const whole = readFileSync(p);
    // Corrupt the last frame's msgpack: found after most of the document was written.
    const bad = Buffer.from(whole);
    bad.fill(0xc1, bad.length - 20, bad.length - 2);
    const badPath = writeTmp('ex-bad.trace', bad);
    const out = join(dir, 'out.json');
    writeFileSync(out, 'keep me');
    const r = await cli(['trace', 'export', '--chrome', badPath, out]);
    expect(r.code).toBe(1);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect(readdirSync(dir).filter((f) => f.startsWith('out.json.tmp'))).toEqual([]);
    // The good trace exports, replacing it.
    expect((await cli(['trace', 'export', '--chrome', p, out])).code).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as ChromeTrace;
    expect(doc.traceEvents.filter((e) => e.ph === 'i')).toHaveLength(150_000);
    expect(existsSync(`${out}.tmp-${process.pid}`)).toBe(false);
  });
});
