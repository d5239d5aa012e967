// One line per trace event, in the spirit of QEMU's -trace output:
//   0.001234 virtio_mmio_write slot=0 QueueSel <- 0x0
//   0.001250 virtio_mmio_read slot=0 Status = 0xb (ACKNOWLEDGE|DRIVER|FEATURES_OK)
//   0.002001 irq_deliver line=0 slot=0
//   0.010000 pm slot=1 resume_noirq -> 0 (virtio1)
// and the filters of `virtio-emu trace show`.
import { CSS_REG } from '../../core/uapi/ccw.js';
import { errnoName } from '../../core/uapi/errno.js';
import { REG } from '../../core/uapi/mmio.js';
import { statusString } from '../../core/uapi/status.js';
import type { HeaderRecord, TraceEvent } from './records.js';

export interface ShowFilter {
  slot?: number;
  /** Register name, case-insensitive; "Config" matches every config-space offset. */
  reg?: string;
  /**
   * PM callback name: its pm records, and every event recorded while a
   * callback of that name was running (what the callback did on the bus).
   */
  phase?: string;
}

const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

/** Seconds with µs digits, as QEMU's log timestamps. */
export function formatTime(ns: number): string {
  return (ns / 1e9).toFixed(6);
}

/** One line per event, whatever strings a crafted trace holds: control characters print as '?'. */
export function formatEvent(e: TraceEvent): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  return eventLine(e).replace(/[\x00-\x1f\x7f]/g, '?');
}

function eventLine(e: TraceEvent): string {
  const t = formatTime(e.t);
  switch (e.type) {
    case 'access': {
      // Subchannel windows of the channel subsystem (virtio-ccw) are not virtio-mmio registers.
      const bus = e.reg.startsWith('css.') ? 'css' : 'virtio_mmio';
      const name = `${bus}_${e.dir === 'r' ? 'read' : 'write'}`;
      const where = e.slot >= 0 ? `slot=${e.slot} ` : '';
      const width = e.width === 4 ? '' : ` width=${e.width}`;
      if (e.error !== undefined) return `${t} ${name} ${where}${e.reg}${width} failed: ${e.error}`;
      const op = e.dir === 'r' ? '=' : '<-';
      let detail = '';
      if (e.reg === 'Status') {
        detail = ` (${statusString(e.value)})`;
        if (e.statusBefore !== undefined) detail += ` from ${hex(e.statusBefore)} (${statusString(e.statusBefore)})`;
      }
      return `${t} ${name} ${where}${e.reg} ${op} ${hex(e.value)}${detail}${width}`;
    }
    case 'irq': {
      const slot = e.slot !== undefined ? ` slot=${e.slot}` : '';
      const value = e.value === undefined ? '' : e.event === 'ack' ? ` bits=${hex(e.value)}` : e.value > 1 ? ` count=${e.value}` : '';
      return `${t} irq_${e.event} line=${e.line}${slot}${value}`;
    }
    case 'pm': {
      const slot = e.slot !== undefined ? `slot=${e.slot} ` : '';
      const who = `${e.device}${e.kernel ? ', boot kernel' : ''}`;
      if (e.when === 'before') return `${t} pm_begin ${slot}${e.phase} (${who})`;
      const result = errnoName(e.result ?? 0);
      return `${t} pm ${slot}${e.phase} -> ${result} (${who}${e.injected ? ', injected' : ''})`;
    }
  }
}

/** "# virtio-emu trace v1 started ...; slot 0: rng (mmio), ..." */
export function formatHeader(h: HeaderRecord): string {
  const devs = h.machine.devices.map((d) => `slot ${d.slot}: ${d.type} (${d.transport})`).join(', ');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  return `# virtio-emu trace v${h.version}, started ${h.start}, ${h.machine.bus} bus; ${devs || 'no devices'}`.replace(/[\x00-\x1f\x7f]/g, '?');
}

/**
 * Why `name` can never match a recorded access (null when it can): a
 * virtio-mmio register name, Config or Config+0xN, a ccw subchannel register
 * css.NAME, or the hex offset or address a trace gives other accesses.
 */
export function regFilterError(name: string): string | null {
  const n = name.toLowerCase();
  const known = (names: readonly string[], want: string): boolean => names.some((k) => k.toLowerCase() === want);
  if (known(Object.keys(REG), n) || /^config\+0x[0-9a-f]{1,8}$/.test(n) || /^(css\.)?0x[0-9a-f]{1,8}$/.test(n)) return null;
  if (n.startsWith('css.') && known(Object.keys(CSS_REG), n.slice(4))) return null;
  const mmio = Object.keys(REG).filter((k) => k !== 'Config');
  return `unknown register '${name.length > 40 ? `${name.slice(0, 37)}...` : name}' (virtio-mmio: ${mmio.join(', ')}, Config or Config+0xN; ccw: ${Object.keys(CSS_REG).map((k) => `css.${k}`).join(', ')}; or a 0x offset)`;
}

function regMatches(want: string, reg: string): boolean {
  const w = want.toLowerCase();
  const r = reg.toLowerCase();
  return r === w || (w === 'config' && r.startsWith('config+'));
}

/**
 * PM callbacks open at once that a reader tracks (per track, for the Chrome
 * export). Honest traces nest two deep at most; when a crafted one opens
 * more, the oldest is taken as never ended. Pairing an end with its begin
 * looks at no more than these, so reading stays linear in the trace.
 */
export const MAX_OPEN_CALLBACKS = 64;

/**
 * The filters of `trace show`, applied to one event at a time as the trace
 * streams by (AND of every filter given). Keeps only the callbacks running
 * now, at most MAX_OPEN_CALLBACKS of them.
 */
export class EventFilter {
  /** Callbacks running now (the DPM core runs one at a time; a stack tolerates nesting). */
  private readonly running: string[] = [];

  constructor(private readonly f: ShowFilter) {}

  accept(e: TraceEvent): boolean {
    const f = this.f;
    const running = this.running;
    if (e.type === 'pm' && e.when === 'before') {
      if (running.length >= MAX_OPEN_CALLBACKS) running.shift();
      running.push(e.phase);
    }
    const phase = e.type === 'pm' ? e.phase : running[running.length - 1];
    if (e.type === 'pm' && e.when === 'after' && !e.injected) {
      const i = running.lastIndexOf(e.phase);
      if (i >= 0) running.splice(i, 1);
    }
    if (f.slot !== undefined && e.slot !== f.slot) return false;
    if (f.reg !== undefined && !(e.type === 'access' && regMatches(f.reg, e.reg))) return false;
    if (f.phase !== undefined && phase !== f.phase) return false;
    return true;
  }
}

/** The events that pass every filter given (AND), in order. */
export function filterEvents(events: Iterable<TraceEvent>, f: ShowFilter): TraceEvent[] {
  const filter = new EventFilter(f);
  const out: TraceEvent[] = [];
  for (const e of events) if (filter.accept(e)) out.push(e);
  return out;
}
