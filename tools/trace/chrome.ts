// A trace as Chrome trace-event JSON (the JSON Object Format), for Perfetto
// or chrome://tracing: one track (thread) per device with its PM callbacks
// as slices and its register accesses and interrupts as instants, a track for
// the PM core's phases (each phase from its first callback to its last),
// and one for accesses to windows without a device (the probe's scan).
import { errnoName } from '../../core/uapi/errno.js';
import type { Trace } from './reader.js';
import type { PmRecord, TraceEvent } from './records.js';

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

const us = (ns: number): number => ns / 1000;
const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

export function toChromeTrace(trace: Trace): ChromeTrace {
  const { header, events } = trace;
  const devSlots = new Set(header.machine.devices.map((d) => d.slot));
  const tidOf = (slot: number | undefined): number => (slot !== undefined && devSlots.has(slot) ? slot : NO_DEVICE_TID);
  const meta: ChromeEvent[] = [];
  const out: ChromeEvent[] = [];
  const thread = (tid: number, name: string, sort: number): void => {
    meta.push({ name: 'thread_name', ph: 'M', pid: PID, tid, ts: 0, args: { name } });
    meta.push({ name: 'thread_sort_index', ph: 'M', pid: PID, tid, ts: 0, args: { sort_index: sort } });
  };
  meta.push({ name: 'process_name', ph: 'M', pid: PID, tid: 0, ts: 0, args: { name: `virtio-emu (${header.machine.bus} bus)` } });
  thread(PM_CORE_TID, 'PM core', -1);
  for (const d of header.machine.devices) thread(d.slot, `slot ${d.slot}: ${d.type} (${d.transport})`, d.slot);
  let noDeviceUsed = false;

  const endT = trace.end?.t ?? events[events.length - 1]?.t ?? 0;
  // Callbacks in progress per track: phase → start.
  const open = new Map<number, PmRecord[]>();
  // The PM core's current phase: from its first callback to the last one that ended.
  type SystemPhase = { phase: string; start: number; last: number };
  const pmCore: { cur: SystemPhase | null } = { cur: null };
  const systemSlice = (p: SystemPhase): ChromeEvent => ({
    name: p.phase,
    ph: 'X',
    pid: PID,
    tid: PM_CORE_TID,
    ts: us(p.start),
    dur: us(p.last - p.start),
    cat: 'pm',
  });

  for (const e of events) {
    const tid = tidOf(e.slot);
    if (tid === NO_DEVICE_TID) noDeviceUsed = true;
    if (e.type === 'pm') {
      const cur = pmCore.cur;
      if ((e.when === 'before' || e.injected) && cur?.phase !== e.phase) {
        if (cur) out.push(systemSlice(cur));
        pmCore.cur = { phase: e.phase, start: e.t, last: e.t };
      } else if (e.when === 'after' && cur?.phase === e.phase) {
        cur.last = e.t;
      }
      pmSlice(e, tid, open, out);
      continue;
    }
    out.push(instant(e, tid));
  }
  if (pmCore.cur) out.push(systemSlice(pmCore.cur));
  // Callbacks the trace ends inside: a slice to the end, marked unfinished.
  for (const [tid, list] of open) {
    for (const b of list) {
      out.push({ name: b.phase, ph: 'X', pid: PID, tid, ts: us(b.t), dur: us(Math.max(0, endT - b.t)), cat: 'pm', args: { device: b.device, unfinished: true } });
    }
  }
  if (noDeviceUsed) thread(NO_DEVICE_TID, 'no device (probe scan, other addresses)', 10_000);
  // Stable sort: equal times keep recording order.
  out.sort((a, b) => a.ts - b.ts);
  return {
    traceEvents: [...meta, ...out],
    displayTimeUnit: 'ns',
    otherData: { tool: header.tool, version: header.version, start: header.start, slots: header.machine.slots },
  };
}

function pmSlice(e: PmRecord, tid: number, open: Map<number, PmRecord[]>, out: ChromeEvent[]): void {
  let list = open.get(tid);
  if (!list) open.set(tid, (list = []));
  if (e.when === 'before') {
    list.push(e);
    return;
  }
  const args: Record<string, unknown> = { device: e.device, result: errnoName(e.result ?? 0) };
  if (e.injected) {
    out.push({ name: e.phase, ph: 'X', pid: PID, tid, ts: us(e.t), dur: 0, cat: 'pm', args: { ...args, injected: true } });
    return;
  }
  const i = list.findIndex((b) => b.phase === e.phase && b.device === e.device);
  const begin = i >= 0 ? list.splice(i, 1)[0]! : e;
  out.push({ name: e.phase, ph: 'X', pid: PID, tid, ts: us(begin.t), dur: us(Math.max(0, e.t - begin.t)), cat: 'pm', args });
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
