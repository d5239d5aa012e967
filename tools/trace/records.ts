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

/** A value as a message shows it: short, on one line, whatever its type (BigInt included). */
export function shownValue(v: unknown): string {
  if (typeof v === 'string') {
    const s = JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
    return s;
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'bigint') return `${v > 10n ** 15n || v < -(10n ** 15n) ? 'a big integer' : String(v)}`;
  return Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : typeof v;
}

/** An AccessTuple as an AccessRecord, or a string saying what is wrong with it. */
export function accessFromTuple(v: readonly unknown[]): AccessRecord | string {
  if (v.length < 7 || v.length > 9) return `access tuple of ${v.length} fields`;
  const [t, slot, reg, off, width, dir, value, before, error] = v;
  if (!num(t) || !num(slot) || !str(reg) || !num(off) || !num(value)) return 'access tuple with missing fields';
  if (width !== 1 && width !== 2 && width !== 4) return `access record with width ${shownValue(width)}`;
  if (dir !== 'r' && dir !== 'w') return `access record with direction ${typeof dir === 'string' ? dir.slice(0, 40).replace(/[^\x20-\x7e]/g, '?') : shownValue(dir)}`;
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

const IRQ_EVENTS = new Set<string>(['raise', 'lower', 'mask', 'unmask', 'deliver', 'ack']);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const str = (v: unknown): boolean => typeof v === 'string';
/** An optional field: absent, or of the right type. */
const optNum = (v: unknown): boolean => v === undefined || num(v);

/**
 * A keyed event record as a clean TraceEvent (known fields only, each of its
 * type), or a string saying what is wrong with it. Readers hand out only
 * these, so nothing downstream meets a field of an unexpected type.
 */
export function eventFromRecord(v: unknown): TraceEvent | string {
  if (!isObj(v)) return 'not a record';
  if (!num(v.t)) return `${shownValue(v.type)} record without a time`;
  const t = v.t as number;
  switch (v.type) {
    case 'access': {
      if (!num(v.slot) || !str(v.reg) || !num(v.off) || !num(v.value)) return 'access record with missing fields';
      if (v.width !== 1 && v.width !== 2 && v.width !== 4) return `access record with width ${shownValue(v.width)}`;
      if (v.dir !== 'r' && v.dir !== 'w') return `access record with direction ${shownValue(v.dir)}`;
      if (!optNum(v.statusBefore) || !optNum(v.statusAfter) || (v.error !== undefined && !str(v.error))) return 'access record with a bad optional field';
      const a: AccessRecord = { type: 'access', t, slot: v.slot as number, reg: v.reg as string, off: v.off as number, width: v.width, dir: v.dir, value: v.value as number };
      if (v.statusBefore !== undefined) a.statusBefore = v.statusBefore as number;
      if (v.statusAfter !== undefined) a.statusAfter = v.statusAfter as number;
      if (v.error !== undefined) a.error = v.error as string;
      return a;
    }
    case 'irq': {
      if (!IRQ_EVENTS.has(v.event as string) || !num(v.line)) return 'irq record with missing fields';
      if (!optNum(v.slot) || !optNum(v.value)) return 'irq record with a bad slot or value';
      const r: IrqRecord = { type: 'irq', t, event: v.event as IrqEvent, line: v.line as number };
      if (v.slot !== undefined) r.slot = v.slot as number;
      if (v.value !== undefined) r.value = v.value as number;
      return r;
    }
    case 'pm': {
      if (!str(v.phase) || !str(v.device) || (v.when !== 'before' && v.when !== 'after')) return 'pm record with missing fields';
      if (!optNum(v.slot) || !optNum(v.result) || (v.injected !== undefined && typeof v.injected !== 'boolean') || (v.kernel !== undefined && v.kernel !== 'boot')) {
        return 'pm record with a bad optional field';
      }
      const r: PmRecord = { type: 'pm', t, when: v.when, phase: v.phase as string, device: v.device as string };
      if (v.slot !== undefined) r.slot = v.slot as number;
      if (v.result !== undefined) r.result = v.result as number;
      if (v.injected) r.injected = true;
      if (v.kernel === 'boot') r.kernel = 'boot';
      return r;
    }
    default:
      return `unknown record type ${shownValue(v.type)}`;
  }
}

/** Why `v` is not a well-formed event record, or null if it is one. */
export function eventProblem(v: unknown): string | null {
  const r = eventFromRecord(v);
  return typeof r === 'string' ? r : null;
}

/** The header as a clean HeaderRecord (known fields only), or a string saying why it is not one this reader understands. */
export function headerFromRecord(v: unknown): HeaderRecord | string {
  if (!isObj(v) || v.type !== 'header') return 'first record is not a trace header';
  if (v.version !== TRACE_VERSION) return `trace version ${shownValue(v.version)} is not supported (this reader knows version ${TRACE_VERSION})`;
  const m = v.machine;
  if (!isObj(m) || !num(m.slots) || !Array.isArray(m.devices) || !str(v.start)) return 'trace header without a machine description';
  if (!optNum(m.mmioBase) || !optNum(m.ramBase) || !optNum(m.ramSize) || (m.bus !== undefined && !str(m.bus))) return 'trace header with a malformed machine description';
  const devices: TraceDevice[] = [];
  for (const d of m.devices as unknown[]) {
    if (!isObj(d) || !num(d.slot) || !str(d.type) || !str(d.transport) || !num(d.line)) return 'trace header with a malformed device';
    const dev: TraceDevice = { slot: d.slot as number, type: d.type as string, transport: d.transport as string, line: d.line as number, addr: num(d.addr) ? (d.addr as number) : 0 };
    if (isObj(d.options)) {
      const options: Record<string, string | number | boolean> = {};
      for (const [k, x] of Object.entries(d.options)) if (typeof x === 'string' || typeof x === 'boolean' || num(x)) options[k] = x as string | number | boolean;
      dev.options = options;
    }
    devices.push(dev);
  }
  return {
    type: 'header',
    version: TRACE_VERSION,
    tool: 'virtio-emu',
    start: v.start as string,
    machine: {
      slots: m.slots as number,
      mmioBase: (m.mmioBase as number | undefined) ?? 0,
      ramBase: (m.ramBase as number | undefined) ?? 0,
      ramSize: (m.ramSize as number | undefined) ?? 0,
      bus: (m.bus as string | undefined) ?? 'unknown',
      devices,
    },
  };
}

/** Why `v` is not a header this reader understands, or null. */
export function headerProblem(v: unknown): string | null {
  const h = headerFromRecord(v);
  return typeof h === 'string' ? h : null;
}
