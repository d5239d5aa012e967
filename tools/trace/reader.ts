// Reads a trace file back (format in records.ts), frame by frame: memory
// stays bounded by one read chunk and one frame (at most FRAME_MAX bytes)
// whatever the file's size, positions are plain numbers (files past 2 GiB
// and 4 GiB read like any other), and the work is linear in the file.
// Every way a file can be wrong ends in a TraceFormatError whose message
// names the problem, the byte offset where it helps, and how many events
// were read before it; a path that cannot be opened is a UsageError.
import * as fs from 'node:fs';
import { Unpackr } from 'msgpackr';
import { UsageError } from '../usage-error.js';
import {
  FRAME_HEADER,
  FRAME_MAX,
  TRACE_MAGIC,
  accessFromTuple,
  eventFromRecord,
  headerFromRecord,
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

/** Where a trace's bytes come from: a file, or memory (tests, fuzzing). */
export interface TraceSource {
  /** Bytes in all, if known before reading (a regular file); lets a bad frame length be caught before any allocation. */
  readonly size: number | null;
  /** Like fs.readSync: up to `length` bytes at `position` into buf[offset..]; 0 at the end. */
  read(buf: Uint8Array, offset: number, length: number, position: number): number;
  close(): void;
}

/** A file opened for positioned reads; a path that names no readable file is the user's to fix (a UsageError). */
export function fileSource(path: string): TraceSource {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    throw new UsageError(`cannot read ${path}: ${why}`);
  }
  const st = fs.fstatSync(fd);
  if (st.isDirectory()) {
    fs.closeSync(fd);
    throw new UsageError(`cannot read ${path}: is a directory`);
  }
  return {
    size: st.isFile() ? st.size : null,
    read: (buf, offset, length, position) => {
      try {
        return fs.readSync(fd, buf, offset, length, st.isFile() ? position : null);
      } catch (err) {
        throw new TraceFormatError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    },
    close: () => fs.closeSync(fd),
  };
}

/** Bytes already in memory. */
export function bufferSource(bytes: Uint8Array): TraceSource {
  return {
    size: bytes.length,
    read: (buf, offset, length, position) => {
      const n = Math.max(0, Math.min(length, bytes.length - position));
      buf.set(bytes.subarray(position, position + n), offset);
      return n;
    },
    close: () => {},
  };
}

/** Bytes read from a source at a time. */
export const READ_CHUNK = 1024 * 1024;

/** A record for messages: a short description of what it is. */
function preview(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v === 'object' && v !== null ? (Array.isArray(v) ? 'a list' : 'a map') : String(v);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
}

/**
 * One pass over a trace: open() reads the magic and the header, events()
 * hands out the events one at a time, then `end` is the end record (or
 * null, with `truncated` saying why, for a partial read).
 */
export class TraceStream {
  header!: HeaderRecord;
  end: EndRecord | null = null;
  /** Events handed out so far. */
  count = 0;
  /** Why the trace stops before its end record (partial reads only); null if it has one. */
  truncated: string | null = null;
  /** The largest buffer held at once, bytes: max(READ_CHUNK, the largest frame + 4). */
  peakBuffer = 0;

  private buf = new Uint8Array(0);
  /** File position of buf[0], and the valid bytes in buf. */
  private bufPos = 0;
  private bufLen = 0;
  private eof = false;
  private pos = 0;
  private readonly unpackr = new Unpackr({ useRecords: true });
  /** Records of the frame being handed out, and the next one's index. */
  private batch: unknown[] = [];
  private next = 0;
  private framePos = 0;

  private constructor(
    private readonly source: TraceSource,
    readonly name: string,
    private readonly opts: ReadOptions,
  ) {}

  /** Read the magic and the header; the source is closed on failure. */
  static open(source: TraceSource, name: string, opts: ReadOptions = {}): TraceStream {
    const t = new TraceStream(source, name, opts);
    try {
      t.readHeader();
    } catch (err) {
      source.close();
      throw err;
    }
    return t;
  }

  close(): void {
    this.source.close();
  }

  /** The events, in recording order; closes the source when done (or on an error). */
  *events(): Generator<TraceEvent, void, void> {
    try {
      for (;;) {
        const r = this.nextRecord();
        if (r === undefined) break;
        if (this.end) throw this.fail(`records after the end record (frame at byte ${this.framePos})`);
        if ((r as { type?: unknown } | null)?.type === 'end') {
          const end = r as { t?: unknown; records?: unknown };
          if (typeof end.t !== 'number' || !Number.isFinite(end.t)) throw this.fail(`end record without a time (frame at byte ${this.framePos})`);
          this.end = { type: 'end', t: end.t, records: typeof end.records === 'number' ? end.records : 0 };
          continue;
        }
        const where = `record ${this.count + 1} (frame at byte ${this.framePos})`;
        if (Array.isArray(r)) {
          const a = accessFromTuple(r);
          if (typeof a === 'string') throw this.fail(`${where}: ${a}`);
          this.count++;
          yield a;
          continue;
        }
        const e = eventFromRecord(r);
        if (typeof e === 'string') throw this.fail(`${where}: ${e}`);
        this.count++;
        yield e;
      }
      if (!this.end && !this.opts.partial) {
        throw this.fail(`truncated: no end record after ${this.count} events (recording interrupted? --partial reads it anyway)`);
      }
      if (!this.end && this.truncated === null) this.truncated = `no end record after ${this.count} events`;
    } finally {
      this.source.close();
    }
  }

  private fail(message: string): TraceFormatError {
    return new TraceFormatError(`${this.name}: ${message}`);
  }

  private readHeader(): void {
    if (!this.ensure(0, TRACE_MAGIC.length) || !TRACE_MAGIC.every((b, i) => this.buf[i] === b)) {
      throw this.fail('not a virtio-emu trace (bad magic)');
    }
    this.pos = TRACE_MAGIC.length;
    const r = this.nextRecord();
    if (r === undefined) throw this.fail('no trace header (empty recording)');
    const h = headerFromRecord(r);
    if (typeof h === 'string') throw this.fail(h);
    this.header = h;
  }

  /** The next record of the file, or undefined at its end (or at a cut tail, for partial reads). */
  private nextRecord(): unknown {
    while (this.next >= this.batch.length) {
      if (!this.readFrame()) return undefined;
    }
    const r = this.batch[this.next];
    // Handed out: the frame's array does not keep it alive.
    this.batch[this.next++] = undefined;
    return r;
  }

  /** Decode the frame at pos into batch; false at the end of the file. */
  private readFrame(): boolean {
    const pos = this.pos;
    const cut = (why: string): boolean => {
      const msg = `truncated: ${why} at byte ${pos}, after ${this.count} events (recording interrupted?${this.opts.partial ? '' : ' --partial reads it anyway'})`;
      if (!this.opts.partial) throw this.fail(msg);
      this.truncated = msg;
      return false;
    };
    if (!this.ensure(pos, FRAME_HEADER)) {
      const left = this.bufPos + this.bufLen - pos;
      return left <= 0 ? false : cut('incomplete frame header');
    }
    const o = pos - this.bufPos;
    const len = (this.buf[o]! | (this.buf[o + 1]! << 8) | (this.buf[o + 2]! << 16) | (this.buf[o + 3]! << 24)) >>> 0;
    if (len === 0 || len > FRAME_MAX) {
      throw this.fail(`corrupt frame length ${len} at byte ${pos}${len > FRAME_MAX ? ` (this reader takes frames of at most ${FRAME_MAX} bytes)` : ''}, after ${this.count} events`);
    }
    // A length past the end of a file of known size is a cut tail: found before allocating for it.
    const size = this.source.size;
    if (size !== null && size - pos - FRAME_HEADER < len) return cut(`frame of ${len} bytes has only ${Math.max(0, size - pos - FRAME_HEADER)}`);
    if (!this.ensure(pos, FRAME_HEADER + len)) return cut(`frame of ${len} bytes has only ${this.bufPos + this.bufLen - pos - FRAME_HEADER}`);
    const start = pos + FRAME_HEADER - this.bufPos;
    let batch: unknown;
    try {
      batch = this.unpackr.unpack(this.buf.subarray(start, start + len));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw this.fail(`frame at byte ${pos} is not valid msgpack (${why.length > 80 ? `${why.slice(0, 77)}...` : why})`);
    }
    if (!Array.isArray(batch)) throw this.fail(`frame at byte ${pos} does not hold a record list (it holds ${preview(batch)})`);
    this.batch = batch;
    this.next = 0;
    this.framePos = pos;
    this.pos = pos + FRAME_HEADER + len;
    return true;
  }

  /**
   * Make bytes [at, at + n) of the file available in buf; false if the file
   * ends first. Keeps what is before `at` only as far as needed: the buffer
   * is at most max(READ_CHUNK, n) bytes.
   */
  private ensure(at: number, n: number): boolean {
    if (at >= this.bufPos && at + n <= this.bufPos + this.bufLen) return true;
    // Move the bytes from `at` on to the front, growing the buffer if one frame needs more.
    const keep = at >= this.bufPos && at < this.bufPos + this.bufLen ? this.bufPos + this.bufLen - at : 0;
    const want = Math.max(READ_CHUNK, n);
    if (this.buf.length < want) {
      const bigger = new Uint8Array(want);
      if (keep) bigger.set(this.buf.subarray(at - this.bufPos, at - this.bufPos + keep));
      this.buf = bigger;
      this.peakBuffer = Math.max(this.peakBuffer, want);
    } else if (keep) {
      this.buf.copyWithin(0, at - this.bufPos, at - this.bufPos + keep);
    }
    this.bufPos = at;
    this.bufLen = keep;
    this.peakBuffer = Math.max(this.peakBuffer, this.buf.length);
    while (this.bufLen < n && !this.eof) {
      const got = this.source.read(this.buf, this.bufLen, this.buf.length - this.bufLen, this.bufPos + this.bufLen);
      if (got === 0) this.eof = true;
      else this.bufLen += got;
    }
    return this.bufLen >= n;
  }
}

/** Open a trace file for one streaming pass. */
export function openTrace(path: string, opts: ReadOptions = {}): TraceStream {
  return TraceStream.open(fileSource(path), path, opts);
}

/** Decode a whole trace held in memory; `name` is used in messages. */
export function parseTrace(buf: Uint8Array, name: string, opts: ReadOptions = {}): Trace {
  const t = TraceStream.open(bufferSource(buf), name, opts);
  const events = [...t.events()];
  return { header: t.header, events, end: t.end };
}

/**
 * Read and decode a trace file into memory (the API and tests; the CLI
 * streams with openTrace instead, so its memory does not grow with the file).
 */
export function readTrace(path: string, opts: ReadOptions = {}): Trace {
  const t = openTrace(path, opts);
  const events = [...t.events()];
  return { header: t.header, events, end: t.end };
}
