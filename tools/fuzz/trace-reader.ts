// Property: the trace reader on random bytes and on damaged copies of a good
// trace (bytes flipped, frames cut, lengths rewritten, junk inserted). It
// either reads the file or stops with a TraceFormatError, never another
// exception; it never holds a buffer larger than one read chunk or the input
// itself; and whatever it hands out is printed by `trace show` and exported
// for Chrome without an exception.
import * as fc from 'fast-check';
import { Packr } from 'msgpackr';
import { ChromeExporter } from '../trace/chrome.js';
import { READ_CHUNK, TraceFormatError, TraceStream, bufferSource } from '../trace/reader.js';
import { FRAME_HEADER, TRACE_MAGIC } from '../trace/records.js';
import { EventFilter, formatEvent, formatHeader } from '../trace/show.js';
import { check } from './fuzz-board.js';

function frame(records: unknown[]): Uint8Array {
  const payload = new Packr({ useRecords: true }).pack(records);
  const out = new Uint8Array(FRAME_HEADER + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, true);
  out.set(payload, FRAME_HEADER);
  return out;
}

/** A small good trace of every record kind, in three frames. */
export function sampleTrace(): Uint8Array {
  const header = {
    type: 'header',
    version: 1,
    tool: 'virtio-emu',
    start: '2026-01-01T00:00:00.000Z',
    machine: { slots: 2, mmioBase: 0x0a00_0000, ramBase: 0x4000_0000, ramSize: 1 << 20, bus: 'worker', devices: [{ slot: 0, type: 'rng', transport: 'mmio', line: 0, addr: 0x0a00_0000 }] },
  };
  const frames = [
    frame([header, [10, 0, 'MagicValue', 0, 4, 'r', 0x74726976], [20, 0, 'Status', 0x70, 4, 'w', 1, null], [30, -1, '0x0c000000', 0x0c00_0000, 4, 'r', 0]]),
    frame([
      { type: 'pm', t: 40, when: 'before', phase: 'suspend', device: 'virtio0', slot: 0 },
      [50, 0, 'QueueNotify', 0x50, 4, 'w', 0],
      { type: 'irq', t: 60, event: 'raise', line: 0, slot: 0, value: 2 },
      { type: 'pm', t: 70, when: 'after', phase: 'suspend', device: 'virtio0', slot: 0, result: 0 },
      { type: 'pm', t: 80, when: 'after', phase: 'suspend_noirq', device: 'virtio0', slot: 0, result: -16, injected: true },
    ]),
    frame([[90, 0, 'Status', 0x70, 4, 'w', 0, 15, 'EMU_CLOSED'], { type: 'irq', t: 95, event: 'ack', line: 0, value: 1 }, { type: 'end', t: 100, records: 13 }]),
  ];
  const total = TRACE_MAGIC.length + frames.reduce((n, f) => n + f.length, 0);
  const out = new Uint8Array(total);
  out.set(TRACE_MAGIC);
  let at = TRACE_MAGIC.length;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

export type Damage =
  | { k: 'flip'; at: number; v: number }
  | { k: 'cut'; at: number }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'length'; at: number; v: number };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('flip' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('length' as const),
      at: fc.nat(),
      v: fc.oneof(fc.constantFrom(0, 1, 0xffff_ffff, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 256 * 1024 * 1024), fc.nat({ max: 0xffff_ffff })),
    }),
  },
);

/** Apply damage to a copy of the bytes. A 'length' damage writes a u32 at a position, often a frame's length field. */
export function damaged(good: Uint8Array, list: Damage[]): Uint8Array {
  let b = Uint8Array.from(good);
  for (const d of list) {
    const at = b.length ? d.at % (b.length + 1) : 0;
    if (d.k === 'flip' && at < b.length) b[at] = d.v;
    else if (d.k === 'cut') b = b.subarray(0, at);
    else if (d.k === 'insert') {
      const n = new Uint8Array(b.length + d.bytes.length);
      n.set(b.subarray(0, at));
      n.set(d.bytes, at);
      n.set(b.subarray(at), at + d.bytes.length);
      b = n;
    } else if (d.k === 'length' && at + 4 <= b.length) new DataView(b.buffer, b.byteOffset).setUint32(at, d.v >>> 0, true);
  }
  return b;
}

export interface TraceInput {
  bytes: Uint8Array;
  partial: boolean;
}

export interface TraceOutcome {
  /** Read to the end (true) or stopped with a TraceFormatError. */
  read: boolean;
  events: number;
}

/** Read one input through everything a user can run on it; throws InvariantError on a violation. */
export function readAll(input: TraceInput): TraceOutcome {
  let events = 0;
  let t: TraceStream | null = null;
  try {
    t = TraceStream.open(bufferSource(input.bytes), 'fuzz', { partial: input.partial });
    formatHeader(t.header);
    const filter = new EventFilter({ phase: 'suspend' });
    const x = new ChromeExporter(t.header, () => {});
    for (const e of t.events()) {
      events++;
      formatEvent(e);
      filter.accept(e);
      x.event(e);
    }
    x.finish(t.end);
    return { read: true, events };
  } catch (err) {
    if (!(err instanceof TraceFormatError)) throw err;
    check(!err.message.includes('\n'), 'a TraceFormatError message spans lines');
    check(err.message.length < 400, `a TraceFormatError message of ${err.message.length} characters`);
    return { read: false, events };
  } finally {
    if (t) check(t.peakBuffer <= Math.max(READ_CHUNK, input.bytes.length), `the reader held ${t.peakBuffer} bytes for an input of ${input.bytes.length}`);
  }
}

export function traceInput(good: Uint8Array): fc.Arbitrary<TraceInput> {
  return fc.record({
    bytes: fc.oneof(
      { weight: 6, arbitrary: fc.array(damage, { minLength: 1, maxLength: 5 }).map((d) => damaged(good, d)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([...TRACE_MAGIC, ...b])) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    ),
    partial: fc.boolean(),
  });
}

export function traceReaderProperty(): fc.IPropertyWithHooks<[TraceInput]> {
  return fc.property(traceInput(sampleTrace()), (input) => {
    readAll(input);
  });
}
