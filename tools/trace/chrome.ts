// A trace as Chrome trace-event JSON (the JSON Object Format), for Perfetto
// or chrome://tracing: one track (thread) per device with its PM callbacks
// as slices and its register accesses and interrupts as instants, a track for
// the PM core's phases (each phase from its first callback to its last),
// and one for accesses to windows without a device (the probe's scan).
//
// The export streams: ChromeExporter takes events one at a time and hands
// out Chrome events as soon as their place is known. A slice is only known
// when its callback ends, so a device track holds back what happens during
// an open callback and lets it go, in time order, once the callback ends;
// every track's events come out in time order. What is held is bounded
// (MAX_OPEN_CALLBACKS open callbacks, MAX_HELD events per track): past
// that, the oldest open callback is closed as unfinished where it stands.
import * as fs from 'node:fs';
import { errnoName } from '../../core/uapi/errno.js';
import type { Trace } from './reader.js';
import type { EndRecord, HeaderRecord, PmRecord, TraceEvent } from './records.js';
import { MAX_OPEN_CALLBACKS } from './show.js';

export interface ChromeEvent {
  name: string;
  ph: 'X' | 'i' | 'M';
  pid: number;
  tid: number;
  /** µs */
  ts: number;
  /** µs, X events only */
  dur?: number;
  /** Instant scope: thread. */
  s?: 't';
  cat?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ns';
  otherData: Record<string, unknown>;
}

const PID = 1;
/** Track of the PM core's system phases. */
export const PM_CORE_TID = 1000;
/** Track of accesses to windows (or addresses) without a device. */
export const NO_DEVICE_TID = 1001;
/** Events a device track holds back while callbacks are open on it. */
export const MAX_HELD = 65_536;

const us = (ns: number): number => ns / 1000;
const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

/** A callback whose begin was seen: its slice, filled in when it ends. */
interface OpenSlice {
  begin: PmRecord;
  slice: ChromeEvent | null;
}

/** A device track: what it holds back while callbacks are open on it. */
interface Track {
  open: OpenSlice[];
  held: (ChromeEvent | OpenSlice)[];
}

type SystemPhase = { phase: string; start: number; last: number };

export class ChromeExporter {
  private readonly devSlots: Set<number>;
  private readonly tracks = new Map<number, Track>();
  private pmCore: SystemPhase | null = null;
  private noDeviceUsed = false;
  private lastT = 0;

  constructor(
    private readonly header: HeaderRecord,
    private readonly emit: (e: ChromeEvent) => void,
  ) {
    this.devSlots = new Set(header.machine.devices.map((d) => d.slot));
    emit({ name: 'process_name', ph: 'M', pid: PID, tid: 0, ts: 0, args: { name: `virtio-emu (${header.machine.bus} bus)` } });
    this.thread(PM_CORE_TID, 'PM core', -1);
    for (const d of header.machine.devices) this.thread(d.slot, `slot ${d.slot}: ${d.type} (${d.transport})`, d.slot);
  }

  private thread(tid: number, name: string, sort: number): void {
    this.emit({ name: 'thread_name', ph: 'M', pid: PID, tid, ts: 0, args: { name } });
    this.emit({ name: 'thread_sort_index', ph: 'M', pid: PID, tid, ts: 0, args: { sort_index: sort } });
  }

  private tidOf(slot: number | undefined): number {
    return slot !== undefined && this.devSlots.has(slot) ? slot : NO_DEVICE_TID;
  }

  private track(tid: number): Track {
    let t = this.tracks.get(tid);
    if (!t) this.tracks.set(tid, (t = { open: [], held: [] }));
    return t;
  }

  /** Emit, or hold back behind an open callback of the same track. */
  private put(tid: number, e: ChromeEvent | OpenSlice): void {
    const t = this.track(tid);
    if (t.held.length === 0 && !('begin' in e)) {
      this.emit(e);
      return;
    }
    t.held.push(e);
    if (t.held.length > MAX_HELD) this.closeOldest(t, tid, this.lastT);
  }

  /** Let go of what no open callback holds back any more. */
  private release(t: Track): void {
    let i = 0;
    for (; i < t.held.length; i++) {
      const h = t.held[i]!;
      if ('begin' in h) {
        if (!h.slice) break;
        this.emit(h.slice);
      } else {
        this.emit(h);
      }
    }
    if (i > 0) t.held.splice(0, i);
  }

  private unfinished(b: PmRecord, tid: number, endT: number): ChromeEvent {
    return { name: b.phase, ph: 'X', pid: PID, tid, ts: us(b.t), dur: us(Math.max(0, endT - b.t)), cat: 'pm', args: { device: b.device, unfinished: true } };
  }

  /** The oldest open callback of a track ends here, unfinished. */
  private closeOldest(t: Track, tid: number, endT: number): void {
    const o = t.open.shift();
    if (o) o.slice = this.unfinished(o.begin, tid, endT);
    this.release(t);
  }

  private systemSlice(p: SystemPhase): ChromeEvent {
    return { name: p.phase, ph: 'X', pid: PID, tid: PM_CORE_TID, ts: us(p.start), dur: us(p.last - p.start), cat: 'pm' };
  }

  event(e: TraceEvent): void {
    this.lastT = e.t;
    const tid = this.tidOf(e.slot);
    if (tid === NO_DEVICE_TID) this.noDeviceUsed = true;
    if (e.type !== 'pm') {
      this.put(tid, instant(e, tid));
      return;
    }
    // The PM core's track: a phase from its first callback to the last one that ended.
    const cur = this.pmCore;
    if ((e.when === 'before' || e.injected) && cur?.phase !== e.phase) {
      if (cur) this.emit(this.systemSlice(cur));
      this.pmCore = { phase: e.phase, start: e.t, last: e.t };
    } else if (e.when === 'after' && cur?.phase === e.phase) {
      cur.last = e.t;
    }
    this.pmSlice(e, tid);
  }

  private pmSlice(e: PmRecord, tid: number): void {
    const t = this.track(tid);
    if (e.when === 'before') {
      if (t.open.length >= MAX_OPEN_CALLBACKS) this.closeOldest(t, tid, e.t);
      const o: OpenSlice = { begin: e, slice: null };
      t.open.push(o);
      this.put(tid, o);
      return;
    }
    const args: Record<string, unknown> = { device: e.device, result: errnoName(e.result ?? 0) };
    if (e.injected) {
      this.put(tid, { name: e.phase, ph: 'X', pid: PID, tid, ts: us(e.t), dur: 0, cat: 'pm', args: { ...args, injected: true } });
      return;
    }
    // The oldest open callback of that phase and device: at most MAX_OPEN_CALLBACKS to look at.
    const i = t.open.findIndex((o) => o.begin.phase === e.phase && o.begin.device === e.device);
    if (i < 0) {
      // An end without its begin: a slice of no length where it ends.
      this.put(tid, { name: e.phase, ph: 'X', pid: PID, tid, ts: us(e.t), dur: 0, cat: 'pm', args });
      return;
    }
    const o = t.open.splice(i, 1)[0]!;
    o.slice = { name: e.phase, ph: 'X', pid: PID, tid, ts: us(o.begin.t), dur: us(Math.max(0, e.t - o.begin.t)), cat: 'pm', args };
    this.release(t);
  }

  /** The trace is over: callbacks it ends inside become slices to its end, marked unfinished. */
  finish(end: EndRecord | null): void {
    const endT = end?.t ?? this.lastT;
    if (this.pmCore) this.emit(this.systemSlice(this.pmCore));
    this.pmCore = null;
    for (const [tid, t] of this.tracks) {
      for (const o of t.open) o.slice = this.unfinished(o.begin, tid, endT);
      t.open = [];
      this.release(t);
    }
    if (this.noDeviceUsed) this.thread(NO_DEVICE_TID, 'no device (probe scan, other addresses)', 10_000);
  }

  /** The otherData object of the document. */
  otherData(): Record<string, unknown> {
    const h = this.header;
    return { tool: h.tool, version: h.version, start: h.start, slots: h.machine.slots };
  }
}

function instant(e: Exclude<TraceEvent, PmRecord>, tid: number): ChromeEvent {
  if (e.type === 'access') {
    const args: Record<string, unknown> = { reg: e.reg, value: hex(e.value), dir: e.dir === 'r' ? 'read' : 'write', width: e.width, slot: e.slot };
    if (e.statusBefore !== undefined) args.statusBefore = hex(e.statusBefore);
    if (e.error !== undefined) args.error = e.error;
    const cat = e.reg.startsWith('css.') ? 'css' : 'mmio';
    return { name: `${e.dir === 'r' ? 'R' : 'W'} ${e.reg}`, ph: 'i', s: 't', pid: PID, tid, ts: us(e.t), cat, args };
  }
  const args: Record<string, unknown> = { line: e.line };
  if (e.value !== undefined) args.value = e.event === 'ack' ? hex(e.value) : e.value;
  return { name: `irq_${e.event}`, ph: 'i', s: 't', pid: PID, tid, ts: us(e.t), cat: 'irq', args };
}

/** A whole trace in memory as one Chrome document (the API and tests; the CLI streams with writeChromeTrace). */
export function toChromeTrace(trace: Trace): ChromeTrace {
  const traceEvents: ChromeEvent[] = [];
  const x = new ChromeExporter(trace.header, (e) => traceEvents.push(e));
  for (const e of trace.events) x.event(e);
  x.finish(trace.end);
  return { traceEvents, displayTimeUnit: 'ns', otherData: x.otherData() };
}

/** Bytes of JSON text gathered before each write. */
const WRITE_CHUNK = 1024 * 1024;

/**
 * Stream a trace's events as a Chrome document into `out`: written to a
 * temporary file beside it and renamed over `out` only when complete, so a
 * failure (a corrupt trace, a full disk) leaves `out` as it was.
 */
export function writeChromeTrace(header: HeaderRecord, events: Iterable<TraceEvent>, end: () => EndRecord | null, out: string): void {
  const tmp = `${out}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (err) {
    throw new Error(`cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let text = '{"traceEvents":[\n';
  let first = true;
  const flush = (): void => {
    try {
      fs.writeSync(fd, text);
    } catch (err) {
      throw new Error(`cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    text = '';
  };
  try {
    const x = new ChromeExporter(header, (e) => {
      text += first ? JSON.stringify(e) : `,\n${JSON.stringify(e)}`;
      first = false;
      if (text.length >= WRITE_CHUNK) flush();
    });
    for (const e of events) x.event(e);
    x.finish(end());
    text += `\n],"displayTimeUnit":"ns","otherData":${JSON.stringify(x.otherData())}}\n`;
    flush();
    fs.closeSync(fd);
    fs.renameSync(tmp, out);
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed already
    }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
