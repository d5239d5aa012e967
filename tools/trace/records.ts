// The trace file format. A trace is the 8-byte magic followed by frames; a
// frame is a little-endian u32 byte length and one msgpackr message holding an
// array of records (msgpackr records, their structures defined inline, so
// every frame decodes on its own). The first record is the header; a trace
// that was closed properly ends with an 'end' record. Frames are appended
// as the run goes, so a crashed run leaves a readable prefix.
//
// Register accesses, the one kind recorded per access, are stored as
// positional tuples (AccessTuple): msgpackr encodes them about three times
// faster than keyed records. Readers turn them back into AccessRecords.
import type { AccessWidth } from '../../core/bus.js';

/** "VEMUTRC" and a newline: identifies the file before any msgpack is decoded. */
export const TRACE_MAGIC = Uint8Array.from([0x56, 0x45, 0x4d, 0x55, 0x54, 0x52, 0x43, 0x0a]);
export const TRACE_VERSION = 1;
/** Bytes of a frame's length prefix. */
export const FRAME_HEADER = 4;
/**
 * The largest frame a reader takes, and so the most one frame costs it. The
 * writer splits a batch that would encode larger; a default frame (2048
 * records) is well under 1 MiB.
 */
export const FRAME_MAX = 4 * 1024 * 1024;

export interface TraceDevice {
  slot: number;
  /** Device model name: rng, blk, console, rtc, ... */
  type: string;
  transport: string;
  /** Interrupt line. */
  line: number;
  /** Guest-physical base of its register window. */
  addr: number;
  options?: Record<string, string | number | boolean>;
}

export interface TraceMachine {
  slots: number;
  mmioBase: number;
  ramBase: number;
  ramSize: number;
  bus: string;
  devices: TraceDevice[];
}

export interface HeaderRecord {
  type: 'header';
  version: number;
  tool: 'virtio-emu';
  /** Wall-clock start, ISO 8601; event times are ns since this moment. */
  start: string;
  machine: TraceMachine;
}

/** A trapped register access as the driver side made it. */
export interface AccessRecord {
  type: 'access';
  /** ns since the start (when the access completed). */
  t: number;
  /** Board slot; -1 for an address outside every device window. */
  slot: number;
  /** Register name (regName for virtio-mmio), or a hex offset/address. */
  reg: string;
  /** Offset inside the slot's window (the address if slot is -1). */
  off: number;
  width: AccessWidth;
  dir: 'r' | 'w';
  /** Value read or written (unsigned). */
  value: number;
  /** Status writes: the Status value the driver side last saw (absent if none yet). */
  statusBefore?: number;
  /** Status writes: the value written. */
  statusAfter?: number;
  /** The access failed with this bus error code (value is then meaningless). */
  error?: string;
}

export type IrqEvent = 'raise' | 'lower' | 'mask' | 'unmask' | 'deliver' | 'ack';

export interface IrqRecord {
  type: 'irq';
  t: number;
  event: IrqEvent;
  line: number;
  /** The slot wired to the line, if any. */
  slot?: number;
  /**
   * raise: raises since the previous look (the device raises in its own
   * thread; the main thread sees a counter, so a burst shows as one record).
   * ack: the InterruptACK bits written.
   */
  value?: number;
}

export interface PmRecord {
  type: 'pm';
  t: number;
  when: 'before' | 'after';
  /** PM callback name: suspend, resume_noirq, ... */
  phase: string;
  /** The kernel's device name (virtio0). */
  device: string;
  slot?: number;
  /** after: 0 or -errno. */
  result?: number;
  /** The failure was injected; the callback did not run (no 'before' record). */
  injected?: boolean;
  /** Ran in the hibernation boot kernel. */
  kernel?: 'boot';
}

export interface EndRecord {
  type: 'end';
  t: number;
  /** Records written, header and end included. */
  records: number;
}

export type TraceEvent = AccessRecord | IrqRecord | PmRecord;
export type TraceRecord = HeaderRecord | TraceEvent | EndRecord;

/**
 * An access on disk: [t, slot, reg, off, width, dir, value], then for a
 * Status write the Status seen before (null if none), then an error code
 * if the access failed (statusBefore null).
 */
export type AccessTuple =
  | [t: number, slot: number, reg: string, off: number, width: AccessWidth, dir: 'r' | 'w', value: number]
  | [t: number, slot: number, reg: string, off: number, width: AccessWidth, dir: 'r' | 'w', value: number, statusBefore: number | null]
  | [t: number, slot: number, reg: string, off: number, width: AccessWidth, dir: 'r' | 'w', value: number, statusBefore: null, error: string];

/** What the writer stores: keyed records, or accesses as tuples. */
export type StoredRecord = Exclude<TraceRecord, AccessRecord> | AccessTuple;

/** A Status write carries the Status before and after. */
function isStatusWrite(reg: string, dir: string): boolean {
  return reg === 'Status' && dir === 'w';
}

/** An AccessTuple as an AccessRecord, or a string saying what is wrong with it. */
export function accessFromTuple(v: readonly unknown[]): AccessRecord | string {
  if (v.length < 7 || v.length > 9) return `access tuple of ${v.length} fields`;
  const [t, slot, reg, off, width, dir, value, before, error] = v;
  if (!num(t) || !num(slot) || !str(reg) || !num(off) || !num(value)) return 'access tuple with missing fields';
  if (width !== 1 && width !== 2 && width !== 4) return `access record with width ${String(width)}`;
  if (dir !== 'r' && dir !== 'w') return `access record with direction ${String(dir)}`;
  const a: AccessRecord = { type: 'access', t: t as number, slot: slot as number, reg: reg as string, off: off as number, width, dir, value: value as number };
  if (before !== undefined && before !== null) {
    if (!num(before)) return 'access tuple with a bad statusBefore';
    a.statusBefore = before as number;
  }
  if (error !== undefined) {
    if (!str(error)) return 'access tuple with a bad error';
    a.error = error as string;
  } else if (isStatusWrite(a.reg, a.dir)) {
    a.statusAfter = a.value;
  }
  return a;
}

const ACCESS_DIRS = new Set(['r', 'w']);
const IRQ_EVENTS = new Set<string>(['raise', 'lower', 'mask', 'unmask', 'deliver', 'ack']);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const str = (v: unknown): boolean => typeof v === 'string';

/** Why `v` is not a well-formed event record, or null if it is one. */
export function eventProblem(v: unknown): string | null {
  if (!isObj(v)) return 'not a record';
  if (!num(v.t)) return `${String(v.type)} record without a time`;
  switch (v.type) {
    case 'access':
      if (!num(v.slot) || !str(v.reg) || !num(v.off) || !num(v.value)) return 'access record with missing fields';
      if (v.width !== 1 && v.width !== 2 && v.width !== 4) return `access record with width ${String(v.width)}`;
      if (!ACCESS_DIRS.has(v.dir as string)) return `access record with direction ${String(v.dir)}`;
      return null;
    case 'irq':
      if (!IRQ_EVENTS.has(v.event as string) || !num(v.line)) return 'irq record with missing fields';
      return null;
    case 'pm':
      if (!str(v.phase) || !str(v.device) || (v.when !== 'before' && v.when !== 'after')) return 'pm record with missing fields';
      return null;
    default:
      return `unknown record type ${JSON.stringify(v.type)}`;
  }
}

/** Why `v` is not a header this reader understands, or null. */
export function headerProblem(v: unknown): string | null {
  if (!isObj(v) || v.type !== 'header') return 'first record is not a trace header';
  if (v.version !== TRACE_VERSION) return `trace version ${String(v.version)} is not supported (this reader knows version ${TRACE_VERSION})`;
  const m = v.machine;
  if (!isObj(m) || !num(m.slots) || !Array.isArray(m.devices) || !str(v.start)) return 'trace header without a machine description';
  for (const d of m.devices) {
    if (!isObj(d) || !num(d.slot) || !str(d.type) || !str(d.transport) || !num(d.line)) return 'trace header with a malformed device';
  }
  return null;
}
