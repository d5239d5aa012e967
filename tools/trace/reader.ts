// Reads a trace file back (format in records.ts). Every way a file can be
// wrong ends in a TraceFormatError whose message names the problem and,
// where it helps, the byte offset.
import * as fs from 'node:fs';
import { Unpackr } from 'msgpackr';
import {
  FRAME_HEADER,
  FRAME_MAX,
  TRACE_MAGIC,
  accessFromTuple,
  eventProblem,
  headerProblem,
  type EndRecord,
  type HeaderRecord,
  type TraceEvent,
} from './records.js';

export class TraceFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceFormatError';
  }
}

export interface Trace {
  header: HeaderRecord;
  /** Every event in recording order. */
  events: TraceEvent[];
  /** The end record; null if the file stops without one (allowed with `partial`). */
  end: EndRecord | null;
}

export interface ReadOptions {
  /** Accept a file whose recording stopped early (no end record, or a cut last frame). */
  partial?: boolean;
}

/** Decode a whole trace held in memory; `name` is used in messages. */
export function parseTrace(buf: Uint8Array, name: string, opts: ReadOptions = {}): Trace {
  if (buf.length < TRACE_MAGIC.length || !TRACE_MAGIC.every((b, i) => buf[i] === b)) {
    throw new TraceFormatError(`${name}: not a virtio-emu trace (bad magic)`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const unpackr = new Unpackr({ useRecords: true });
  let header: HeaderRecord | null = null;
  let end: EndRecord | null = null;
  const events: TraceEvent[] = [];
  let pos = TRACE_MAGIC.length;
  while (pos < buf.length) {
    const cut = (why: string): TraceFormatError =>
      new TraceFormatError(`${name}: truncated: ${why} at byte ${pos} (recording interrupted?)`);
    if (buf.length - pos < FRAME_HEADER) {
      if (opts.partial) break;
      throw cut('incomplete frame header');
    }
    const len = view.getUint32(pos, true);
    if (len === 0 || len > FRAME_MAX) throw new TraceFormatError(`${name}: corrupt frame length ${len} at byte ${pos}`);
    if (buf.length - pos - FRAME_HEADER < len) {
      if (opts.partial) break;
      throw cut(`frame of ${len} bytes has only ${buf.length - pos - FRAME_HEADER}`);
    }
    const start = pos + FRAME_HEADER;
    let batch: unknown;
    try {
      batch = unpackr.unpack(buf.subarray(start, start + len));
    } catch (err) {
      throw new TraceFormatError(`${name}: frame at byte ${pos} is not valid msgpack (${err instanceof Error ? err.message : String(err)})`);
    }
    if (!Array.isArray(batch)) throw new TraceFormatError(`${name}: frame at byte ${pos} does not hold a record list`);
    for (const r of batch as unknown[]) {
      if (end) throw new TraceFormatError(`${name}: records after the end record (frame at byte ${pos})`);
      if (!header) {
        const p = headerProblem(r);
        if (p) throw new TraceFormatError(`${name}: ${p}`);
        header = r as HeaderRecord;
        continue;
      }
      if ((r as { type?: unknown } | null)?.type === 'end') {
        end = r as EndRecord;
        continue;
      }
      const where = `record ${events.length + 1} (frame at byte ${pos})`;
      if (Array.isArray(r)) {
        const a = accessFromTuple(r);
        if (typeof a === 'string') throw new TraceFormatError(`${name}: ${where}: ${a}`);
        events.push(a);
        continue;
      }
      const p = eventProblem(r);
      if (p) throw new TraceFormatError(`${name}: ${where}: ${p}`);
      events.push(r as TraceEvent);
    }
    pos = start + len;
  }
  if (!header) throw new TraceFormatError(`${name}: no trace header (empty recording)`);
  if (!end && !opts.partial) {
    throw new TraceFormatError(`${name}: truncated: no end record after ${events.length} events (recording interrupted? --partial reads it anyway)`);
  }
  return { header, events, end };
}

/** Read and decode a trace file. */
export function readTrace(path: string, opts: ReadOptions = {}): Trace {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    throw new TraceFormatError(`cannot read ${path}: ${why}`);
  }
  return parseTrace(buf, path, opts);
}
