// Records a run into a trace file: register accesses (through a Bus wrapper
// put between the kernel and the machine), interrupts, and PM callbacks (DPM
// hooks). Nothing here runs unless a recorder is attached: the untraced
// register path is unchanged.
//
//   const rec = new TraceRecorder('run.trace');
//   const sys = await VirtioSystem.create(rec.systemOptions({ devices: ['rng'] }));
//   rec.attachPm(sys.dpm);
//   ... the run ...
//   await sys.close(); rec.close();
//
// What the main thread cannot see directly it infers, and the trace says so
// by its timing: the device raises and lowers lines in its worker, so raises
// (the controller's per-line counter) and lowers (level 1 → 0) are recorded
// when the recorder next looks, after each access and before each delivery.
// A hibernation boot kernel has a DpmCore of its own that no hook reaches:
// its register accesses are traced, its PM callbacks are not.
import { PLATFORM, type AccessWidth, type Bus } from '../../core/bus.js';
import { keepOutOfImage } from '../../core/kernel.js';
import type { PmCallRecord, PmCallbackHook } from '../../core/pm/dpm.js';
import { CSS_REG } from '../../core/uapi/ccw.js';
import { MMIO_WINDOW_SIZE, REG, regName } from '../../core/uapi/mmio.js';
import type { Machine } from '../../emulator/machine.js';
import type { SystemOptions } from '../system.js';
import type { HeaderRecord, IrqEvent, IrqRecord, PmRecord, TraceDevice, TraceMachine } from './records.js';
import { TRACE_VERSION } from './records.js';
import { TracingBus, type TraceSink } from './tracing-bus.js';
import { DEFAULT_BATCH, TraceWriter } from './writer.js';

/** What the recorder reads of the interrupt controller to see device-side raises and lowers. */
export interface IrqObserver {
  raiseCount(line: number): number;
  level(line: number): boolean;
}

/** The parts of a DpmCore the recorder hooks. */
export interface PmSource {
  readonly hooks: PmCallbackHook[];
  readonly record: readonly PmCallRecord[];
  /** Records dropped from the front of `record` (DpmCore.trimRecord); 0 if it never drops any. */
  readonly recordBase?: number;
  /** Run before records are dropped, so the recorder sees them first. */
  readonly trimHooks?: (() => void)[];
}

/** Callbacks recorded so far, counting those trimmed away. */
const recordEnd = (src: PmSource): number => (src.recordBase ?? 0) + src.record.length;

export interface RecorderOptions {
  /** Records per frame (default 2048). */
  batch?: number;
}

const CSS_NAMES = new Map<number, string>(Object.entries(CSS_REG).map(([k, v]) => [v, k]));

/** "css.Ssch": a subchannel window register, prefixed so it never reads as a virtio-mmio one. */
function cssRegName(off: number): string {
  return `css.${CSS_NAMES.get(off) ?? `0x${off.toString(16)}`}`;
}

function isIrqObserver(x: unknown): x is IrqObserver {
  const o = x as Partial<IrqObserver> | null;
  return typeof o?.raiseCount === 'function' && typeof o.level === 'function';
}

export class TraceRecorder implements TraceSink {
  private readonly writer: TraceWriter;
  private readonly t0 = performance.now();
  private header: HeaderRecord | null = null;
  private mmioBase: number = PLATFORM.MMIO_BASE;
  private slots = 0;
  /** Status as the driver side last read or wrote it, per slot; -1 = not seen yet. */
  private lastStatus = new Int32Array(0);
  /** Interrupt line → slot, -1 for none. */
  private lineSlot = new Int32Array(0);
  private slotLine = new Int32Array(0);
  /** Lines with a device on them: the only ones worth watching. */
  private watched: number[] = [];
  private lastRaises = new Uint32Array(0);
  private lastLevel = new Uint8Array(0);
  private observer: IrqObserver | null = null;
  private readonly pmSources: { src: PmSource; seen: number; hook: PmCallbackHook }[] = [];

  constructor(path: string, opts: RecorderOptions = {}) {
    this.writer = new TraceWriter(path, opts.batch ?? DEFAULT_BATCH);
    // Reachable from the kernel (through the traced bus), but not kernel
    // memory: a hibernation image restore must not rewind the recording.
    keepOutOfImage(this);
    keepOutOfImage(this.writer);
  }

  get path(): string {
    return this.writer.path;
  }

  /** Records so far (header included). */
  get count(): number {
    return this.writer.count;
  }

  /** ns since the recorder started. */
  now(): number {
    return Math.round((performance.now() - this.t0) * 1e6);
  }

  /** `opts` with this recorder hooked in (existing beforeBoot/wrapBus still run, inside it). */
  systemOptions<T extends SystemOptions>(opts: T): T {
    const { beforeBoot, wrapBus } = opts;
    return {
      ...opts,
      beforeBoot: (m: Machine) => {
        this.attachMachine(m);
        beforeBoot?.(m);
      },
      wrapBus: (bus: Bus) => this.wrapBus(wrapBus ? wrapBus(bus) : bus),
    };
  }

  /** Describe the machine in the header and watch its interrupt lines. */
  attachMachine(m: Machine): void {
    const devices: TraceDevice[] = m.devices.map((d) => ({
      slot: d.slot,
      type: d.spec.type,
      transport: d.spec.transport,
      line: d.line,
      addr: d.addr,
      ...(d.spec.options ? { options: { ...d.spec.options } } : {}),
    }));
    this.writeHeader(
      { slots: m.config.slots, mmioBase: m.config.mmioBase, ramBase: m.config.ramBase, ramSize: m.config.ramSize, bus: m.busKind, devices },
      m.irq,
    );
  }

  /** Wrap the bus the kernel uses; every access through it is recorded. */
  wrapBus(bus: Bus): Bus {
    if (!this.header) {
      // No machine to describe (a bare bus): slots as the interrupt controller has lines.
      const machine: TraceMachine = {
        slots: bus.irq.lines,
        mmioBase: PLATFORM.MMIO_BASE,
        ramBase: bus.mem.base,
        ramSize: bus.mem.size,
        bus: 'unknown',
        devices: [],
      };
      this.writeHeader(machine, isIrqObserver(bus.irq) ? bus.irq : null);
    }
    return new TracingBus(bus, this);
  }

  /** Record every PM callback the DPM core runs (and injected failures, which run none). */
  attachPm(src: PmSource): void {
    const entry = {
      src,
      seen: recordEnd(src),
      hook: ((e) => {
        this.sync();
        const r: PmRecord = { type: 'pm', t: this.now(), when: e.when, phase: e.phase, device: e.device };
        if (e.slot !== undefined) r.slot = e.slot;
        if (e.result !== undefined) r.result = e.result;
        if (e.kernel) r.kernel = e.kernel;
        this.writer.push(r);
        // The DPM record of this callback is already written (it is pushed before the 'after' hooks).
        if (e.when === 'after') entry.seen = recordEnd(src);
      }) as PmCallbackHook,
    };
    src.hooks.push(entry.hook);
    src.trimHooks?.push(() => this.sync());
    this.pmSources.push(entry);
  }

  /** Write what is buffered, the end record, and close the file. Idempotent. */
  close(): void {
    if (this.writer.closed) return;
    this.sync();
    for (const p of this.pmSources) {
      const i = p.src.hooks.indexOf(p.hook);
      if (i >= 0) p.src.hooks.splice(i, 1);
    }
    // Without a header (the machine never started) the file stays empty and says so when read.
    if (this.header) this.writer.push({ type: 'end', t: this.now(), records: this.writer.count + 1 });
    this.writer.close();
  }

  // -------------------------------------------------------------------------
  // Called by TracingBus / TracingIrqChip

  /** A completed (or failed) register access. */
  access(addr: number, width: AccessWidth, dir: 'r' | 'w', value: number, error?: string): void {
    const t = this.now();
    let slot = -1;
    let off = addr;
    let reg: string;
    let isMmio = false;
    const mmioOff = addr - this.mmioBase;
    if (mmioOff >= 0 && mmioOff < this.slots * MMIO_WINDOW_SIZE) {
      isMmio = true;
      slot = (mmioOff / MMIO_WINDOW_SIZE) | 0;
      off = mmioOff - slot * MMIO_WINDOW_SIZE;
      reg = regName(off);
    } else {
      const cssOff = addr - PLATFORM.CSS_BASE;
      if (cssOff >= 0 && cssOff < this.slots * PLATFORM.CSS_WINDOW_SIZE) {
        slot = (cssOff / PLATFORM.CSS_WINDOW_SIZE) | 0;
        off = cssOff - slot * PLATFORM.CSS_WINDOW_SIZE;
        reg = cssRegName(off);
      } else {
        reg = `0x${addr.toString(16)}`;
      }
    }
    if (error !== undefined) {
      this.writer.push([t, slot, reg, off, width, dir, value, null, error]);
      return;
    }
    if (isMmio && off === REG.Status) {
      const before = this.lastStatus[slot]!;
      this.lastStatus[slot] = value;
      if (dir === 'w') {
        this.writer.push([t, slot, reg, off, width, dir, value, before >= 0 ? before : null]);
        this.sync();
        return;
      }
    }
    this.writer.push([t, slot, reg, off, width, dir, value]);
    if (isMmio && dir === 'w' && off === REG.InterruptACK) this.irq('ack', this.slotLine[slot]!, value);
    this.sync();
  }

  /** An interrupt event seen on the driver side. */
  irq(event: IrqEvent, line: number, value?: number): void {
    if (line < 0) return;
    const r: IrqRecord = { type: 'irq', t: this.now(), event, line };
    const slot = line < this.lineSlot.length ? this.lineSlot[line]! : -1;
    if (slot >= 0) r.slot = slot;
    if (value !== undefined) r.value = value;
    this.writer.push(r);
  }

  /**
   * Catch up with what happened out of sight: device-side raises and lowers
   * (seen as the controller's raise counter and level) and injected PM
   * failures (which call no hooks).
   */
  sync(): void {
    const obs = this.observer;
    if (obs) {
      for (const line of this.watched) {
        const raises = obs.raiseCount(line);
        const level = obs.level(line) ? 1 : 0;
        const n = (raises - this.lastRaises[line]!) >>> 0;
        if (n > 0) {
          this.lastRaises[line] = raises;
          this.irq('raise', line, n);
          if (level === 0) this.irq('lower', line);
        } else if (level === 0 && this.lastLevel[line] === 1) {
          this.irq('lower', line);
        }
        this.lastLevel[line] = level;
      }
    }
    for (const p of this.pmSources) {
      const rec = p.src.record;
      const end = recordEnd(p.src);
      if (end === p.seen) continue;
      // Positions are absolute: records trimmed since the last look were seen then.
      for (let i = Math.max(0, p.seen - (p.src.recordBase ?? 0)); i < rec.length; i++) {
        const r = rec[i]!;
        if (!r.injected) continue;
        const pm: PmRecord = { type: 'pm', t: this.now(), when: 'after', phase: r.phase, device: r.device, result: r.result, injected: true };
        if (r.slot !== undefined) pm.slot = r.slot;
        this.writer.push(pm);
      }
      p.seen = end;
    }
  }

  private writeHeader(machine: TraceMachine, observer: IrqObserver | null): void {
    if (this.header) throw new Error('trace: the recorder is already attached to a machine');
    this.header = {
      type: 'header',
      version: TRACE_VERSION,
      tool: 'virtio-emu',
      start: new Date(performance.timeOrigin + this.t0).toISOString(),
      machine,
    };
    this.writer.push(this.header);
    this.mmioBase = machine.mmioBase;
    this.slots = machine.slots;
    this.lastStatus = new Int32Array(machine.slots).fill(-1);
    const lines = Math.max(machine.slots, ...machine.devices.map((d) => d.line + 1));
    this.lineSlot = new Int32Array(lines).fill(-1);
    // virtio-mmio wires slot i to line i; the devices say so explicitly.
    this.slotLine = Int32Array.from({ length: machine.slots }, (_, i) => i);
    for (const d of machine.devices) {
      this.lineSlot[d.line] = d.slot;
      this.slotLine[d.slot] = d.line;
    }
    this.watched = [...new Set(machine.devices.map((d) => d.line))].sort((a, b) => a - b);
    this.observer = observer;
    this.lastRaises = new Uint32Array(lines);
    this.lastLevel = new Uint8Array(lines);
    if (observer) {
      for (const line of this.watched) {
        this.lastRaises[line] = observer.raiseCount(line);
        this.lastLevel[line] = observer.level(line) ? 1 : 0;
      }
    }
  }
}
