// The board: an address decoder over regions (the virtio-mmio bank, the
// channel subsystem), the device models behind them, deferred device work
// and timers. The machine hosts it in the device worker (or in-thread for
// unit tests) and forwards trapped accesses, runDeferred() calls and control
// requests to it.
//
// The board never throws out of read/write/runDeferred/control: guest
// mistakes are counted per slot, a device model that throws puts only its own
// device into DEVICE_NEEDS_RESET, and an internal fault is counted.
import type { AccessWidth } from '../core/bus.js';
import { VIRTIO_F_RING_PACKED, bit } from '../core/uapi/features.js';
import { MMIO_WINDOW_SIZE } from '../core/uapi/mmio.js';
import { POWER_MODELS, type Board, type BoardConfig, type ControlRequest, type ControlResponse, type DeviceSpec, type IrqLines, type PowerModel, type TransportKind } from './board-contract.js';
import { createChannelSubsystem } from './ccw/css.js';
import type { DeviceHost } from './devices/device.js';
import { createDeviceModel, deviceTypes } from './devices/catalog.js';
import { SnapshotError } from './snapshot/fields.js';
import {
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  decodeSnapshot,
  encodeSnapshot,
  layoutMismatch,
  layoutOf,
  type SlotSnapshot,
  type SnapshotOptions,
} from './snapshot/format.js';
import { createMmioBank } from './mmio/bank.js';
import type { Region, RegionDevice, RegionEnv, RegionFactory, RegionSlotState } from './region.js';
import type { DeviceCore } from './virtio/device-core.js';
import { CLOCK_MAX_NS, CLOCK_MODES, VirtualClock } from './virtio/clock.js';
import { Scheduler, type Clock } from './virtio/scheduler.js';
import { newCounters, type DeviceCounters } from './virtio/signals.js';
import { GuestRam, type AddressRange } from './vring/guest-ram.js';

/** Passes over the queued device work a snapshot runs at most to reach a quiescent point. */
const QUIESCE_MAX_PASSES = 1_000_000;

export interface BoardOptions {
  /** Clock for device timers, in ms (default the board's virtual clock); tests pass a fake one. */
  now?: Clock;
  /** Chains a queue handler may pop per run before it is re-queued. */
  weight?: number;
}

/**
 * The regions of the address map, by the transport whose devices they host.
 * Each is instantiated on every board, with or without devices, so its
 * windows always answer (an empty slot or subchannel says "no device"
 * instead of being an unmapped address).
 */
const REGIONS: { kinds: readonly TransportKind[]; create: RegionFactory }[] = [
  { kinds: ['mmio', 'mmio-legacy'], create: createMmioBank },
  { kinds: ['ccw'], create: createChannelSubsystem },
];

/** Device options the board handles for every model: the ring layouts offered. */
export const RING_OPTIONS = ['packed'] as const;

/**
 * Options named '<transport>.<name>' (e.g. ccw.max_revision) configure the
 * transport, and the ring options (packed) the device core, not the model.
 */
export function modelOptions(spec: DeviceSpec): NonNullable<DeviceSpec['options']> {
  const prefix = `${spec.transport}.`;
  return Object.fromEntries(
    Object.entries(spec.options ?? {}).filter(([k]) => !k.startsWith(prefix) && !(RING_OPTIONS as readonly string[]).includes(k)),
  );
}

/**
 * Features the board withholds from a model's offer: packed=false keeps
 * VIRTIO_F_RING_PACKED out of it (QEMU's packed=off), so a driver that
 * would negotiate it gets split rings. Throws for a value that is not a boolean.
 */
export function withheldFeatures(spec: DeviceSpec): bigint {
  const v = spec.options?.['packed'];
  if (v === undefined || v === true) return 0n;
  if (v === false) return bit(VIRTIO_F_RING_PACKED);
  throw new Error(`${spec.type}: option packed must be true or false, got ${JSON.stringify(v)}`);
}

export interface SlotStats extends DeviceCounters {
  slot: number;
  type: string | null;
  transport: TransportKind | null;
  deviceId: number;
  status: number;
  interruptStatus: number;
  irqRaised: number;
}

export interface BoardStats {
  slots: SlotStats[];
  /** Accesses outside every window, or with an impossible width. */
  unmapped: number;
  /** Faults in the board itself (bugs); the access read 0 / was dropped. */
  internalErrors: number;
  /** Device work queued and not yet run (0: every notification so far has been served). */
  pendingWork: number;
  lastInternalError: string | null;
}

/**
 * Timer deadlines a clock step stops at on its way (running the timers due
 * there), at most: a timer that re-arms itself cannot make one step endless.
 */
const CLOCK_STEP_ROUNDS = 1024;
/** Deferred items run at each of those stops. */
const CLOCK_STEP_BUDGET = 256;

/** A clock control request's ns: a decimal string of at most an int64 ('deadline' is handled before). */
function clockNs(v: unknown, what: string): bigint | string {
  if (typeof v !== 'string' || !/^\d{1,19}$/.test(v)) return `clock: ${what} must be a decimal count of ns, got ${JSON.stringify(v)?.slice(0, 40)}`;
  const ns = BigInt(v);
  return ns > CLOCK_MAX_NS ? `clock: ${what} ${v} is past the clock's end (${CLOCK_MAX_NS} ns)` : ns;
}

function isWidth(w: number): w is AccessWidth {
  return w === 1 || w === 2 || w === 4;
}

class VirtioBoard implements Board {
  private readonly ram: GuestRam;
  private readonly clock: VirtualClock;
  private readonly scheduler: Scheduler;
  private readonly env: RegionEnv;
  /** Per-slot host resources that survive power 'fresh' (DeviceHost.retained). */
  private readonly hosts: DeviceHost[] = [];
  private regions: Region[] = [];
  private unmapped = 0;
  private internalErrors = 0;
  private lastInternalError: string | null = null;

  constructor(
    private readonly config: BoardConfig,
    ramBytes: Uint8Array,
    irq: IrqLines,
    options: BoardOptions,
  ) {
    const { ramBase, ramSize, mmioBase, slots } = config;
    if (!Number.isSafeInteger(ramBase) || !Number.isSafeInteger(ramSize) || ramSize <= 0) throw new Error('board: bad RAM range');
    if (!Number.isInteger(slots) || slots < 0) throw new Error(`board: bad slot count ${slots}`);
    if (config.devices.length > slots && config.devices.slice(slots).some((d) => d !== null)) {
      throw new Error(`board: ${config.devices.length} device entries for ${slots} slots`);
    }
    const holes: AddressRange[] = [{ base: mmioBase, size: slots * MMIO_WINDOW_SIZE }];
    this.ram = new GuestRam(ramBytes, ramBase, ramSize, holes);
    if (config.clock !== undefined && !CLOCK_MODES.includes(config.clock)) throw new Error(`board: bad clock mode ${JSON.stringify(config.clock)}`);
    this.clock = new VirtualClock(config.clock ?? 'host');
    this.scheduler = new Scheduler(options.now ?? (() => this.clock.nowMs()));
    this.env = { config, ram: this.ram, irq, scheduler: this.scheduler };
    if (options.weight !== undefined) this.env.weight = options.weight;
    this.build();
  }

  /** Create device instances and every region with its windows at their defaults. */
  private build(): void {
    const byRegion: RegionDevice[][] = REGIONS.map(() => []);
    for (let i = 0; i < this.config.slots; i++) {
      const spec = this.config.devices[i] ?? null;
      const host = (this.hosts[i] ??= { retained: new Map<string, unknown>(), clock: this.clock });
      if (!spec) continue;
      const r = REGIONS.findIndex((x) => x.kinds.includes(spec.transport));
      if (r < 0) throw new Error(`board: slot ${i}: transport '${spec.transport}' is not available on this board`);
      const withheld = withheldFeatures(spec);
      byRegion[r]!.push({ slot: i, spec, model: createDeviceModel(spec.type, modelOptions(spec), host), withheld });
    }
    this.regions = REGIONS.map((x, r) => x.create(this.env, byRegion[r]!));
  }

  // ---- trapped accesses ----

  /** The region an address falls in; the region checks the access's end itself. */
  private decode(addr: number, width: number): Region | null {
    if (!isWidth(width) || !Number.isSafeInteger(addr)) return null;
    for (const region of this.regions) {
      if (addr >= region.base && addr < region.base + region.size) return region;
    }
    return null;
  }

  read(addr: number, width: AccessWidth): number {
    try {
      const region = this.decode(addr, width);
      if (region) return region.read(addr - region.base, width) >>> 0;
      this.unmapped++;
      return 0;
    } catch (e) {
      this.internalError(e);
      return 0;
    }
  }

  write(addr: number, width: AccessWidth, value: number): void {
    try {
      const region = this.decode(addr, width);
      if (!region) {
        this.unmapped++;
        return;
      }
      region.write(addr - region.base, width, width === 4 ? value >>> 0 : value & ((1 << (8 * width)) - 1));
    } catch (e) {
      this.internalError(e);
    }
  }

  private internalError(e: unknown): void {
    this.internalErrors++;
    this.lastInternalError = e instanceof Error ? (e.stack ?? e.message) : String(e);
  }

  // ---- deferred work ----

  /** Run due timers and queued device work, at most `budget` items; true if more remains. */
  runDeferred(budget: number): boolean {
    try {
      let left = Math.max(0, Math.floor(budget));
      left -= this.scheduler.runTimers(left);
      this.scheduler.runWork(left);
    } catch (e) {
      this.internalError(e);
    }
    return this.hasDeferred();
  }

  hasDeferred(): boolean {
    return this.scheduler.pendingWork() > 0 || this.scheduler.nextTimerMs() === 0;
  }

  setYieldHook(hook: (() => boolean) | null): void {
    this.scheduler.yieldHook = hook;
  }

  nextTimerMs(): number {
    // A manual clock does not move while the worker waits: only a 'clock' request brings a timer due.
    return this.clock.mode === 'manual' ? Number.POSITIVE_INFINITY : this.scheduler.nextTimerMs();
  }

  // ---- control plane ----

  control(req: ControlRequest): ControlResponse {
    try {
      switch (req.op) {
        case 'ping':
          return { ok: true, value: 'pong' };
        case 'stats':
          return { ok: true, value: this.stats() };
        case 'power':
          return this.power(req.model);
        case 'snapshot':
          return this.snapshotting('snapshot', () => ({ ok: true, value: this.snapshot({ media: true }) }));
        case 'restore':
          return this.snapshotting('restore', () => {
            this.restore(req.doc, req.check === true, { media: true });
            return { ok: true };
          });
        case 'inject':
          return this.inject(req.slot, req.event, req.args ?? {});
        case 'clock':
          return this.clockRequest(req);
        case 'fault':
          if (req.kind !== 'throw-in-device') return { ok: false, error: `fault '${req.kind}' is handled by the device worker, not the board` };
          return this.withCore(req.slot ?? -1, (core) => {
            core.armFault();
            return { ok: true };
          });
        default:
          return { ok: false, error: `unknown control op '${(req as { op: string }).op}'` };
      }
    } catch (e) {
      this.internalError(e);
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  /** Read the virtual clock, or move it (a step, the next deadline, a time) running the timers that come due. */
  private clockRequest(req: Extract<ControlRequest, { op: 'clock' }>): ControlResponse {
    const before = this.clock.nowNs();
    const answer = (ns: bigint): ControlResponse => ({ ok: true, value: { ns: String(ns), moved: ns > before } });
    if (req.step !== undefined && req.to !== undefined) return { ok: false, error: 'clock: give step or to, not both' };
    let dest: bigint;
    if (req.step === 'deadline') {
      const ms = this.scheduler.nextTimerMs();
      if (!Number.isFinite(ms)) return { ok: false, error: 'clock: no pending deadline to advance to' };
      dest = before + BigInt(Math.ceil(ms * 1e6));
    } else if (req.step !== undefined) {
      const ns = clockNs(req.step, 'step');
      if (typeof ns === 'string') return { ok: false, error: ns };
      dest = before + ns;
    } else if (req.to !== undefined) {
      const ns = clockNs(req.to, 'to');
      if (typeof ns === 'string') return { ok: false, error: ns };
      dest = ns;
    } else return answer(before);
    if (dest > CLOCK_MAX_NS) return { ok: false, error: `clock: ${before} + ${dest - before} ns is past the clock's end (${CLOCK_MAX_NS} ns)` };
    // As QEMU's qemu_clock_advance_virtual_time: stop at each timer deadline on the way and run what is due there.
    for (let round = 0; round < CLOCK_STEP_ROUNDS && this.clock.nowNs() < dest; round++) {
      const ms = this.scheduler.nextTimerMs();
      const deadline = Number.isFinite(ms) ? this.clock.nowNs() + BigInt(Math.ceil(ms * 1e6)) : dest;
      this.clock.advanceTo(deadline < dest ? deadline : dest);
      this.runDeferred(CLOCK_STEP_BUDGET);
    }
    this.clock.advanceTo(dest);
    this.runDeferred(CLOCK_STEP_BUDGET);
    return answer(this.clock.nowNs());
  }

  private core(slot: number): DeviceCore | undefined {
    for (const region of this.regions) {
      const core = region.core(slot);
      if (core) return core;
    }
    return undefined;
  }

  /** A slot's state from the region serving its device, else from the first region that shows the slot. */
  private slotState(slot: number): RegionSlotState | undefined {
    const serving = this.regions.find((r) => r.core(slot));
    return (serving ?? this.regions.find((r) => r.state(slot)))?.state(slot);
  }

  private withCore(slot: number, fn: (core: DeviceCore) => ControlResponse): ControlResponse {
    const core = Number.isInteger(slot) ? this.core(slot) : undefined;
    return core ? fn(core) : { ok: false, error: `no device in slot ${slot}` };
  }

  /**
   * 'config-change': new ConfigGeneration, config interrupt if DRIVER_OK.
   * 'needs-reset': DEVICE_NEEDS_RESET, config interrupt if DRIVER_OK.
   * 'refuse-features': the next FEATURES_OK does not stick (once).
   * Anything else goes to the model's inject().
   */
  private inject(slot: number, event: string, args: NonNullable<Extract<ControlRequest, { op: 'inject' }>['args']>): ControlResponse {
    return this.withCore(slot, (core) => {
      switch (event) {
        case 'config-change':
          core.configChanged();
          return { ok: true };
        case 'needs-reset':
          core.needsReset('injected');
          return { ok: true };
        case 'refuse-features':
          core.refuseNextFeaturesOk();
          return { ok: true };
      }
      return core.inject(event, args) ? { ok: true } : { ok: false, error: `slot ${slot}: unknown event '${event}'` };
    });
  }

  /**
   * Platform power event across system sleep (VIRTIO-NOTES §3.3 item 6):
   * retain: nothing happens; reset: every device is reset as by Status=0
   * (legacy GuestPageSize survives, as in QEMU); fresh: new device instances
   * with every register at its default, GuestPageSize included (a VMM
   * restart); their counters start from zero, and host resources kept in the
   * slot's DeviceHost.retained (disk media, console backends) carry over.
   */
  private power(model: PowerModel): ControlResponse {
    // Control records come from outside the type system (msgpackr): check.
    if (!(POWER_MODELS as readonly unknown[]).includes(model)) return { ok: false, error: `unknown power model '${String(model).slice(0, 40)}'` };
    if (model === 'retain') return { ok: true };
    if (model === 'snapshot') {
      // Saved at power-off, loaded into new instances at power-on, through
      // the document's bytes. RAM disks keep their medium (a host resource
      // the board holds across the cycle), so their contents stay out.
      return this.snapshotting('power snapshot', () => {
        this.restore(this.snapshot({ media: false }), false, { media: false });
        return { ok: true };
      });
    }
    for (const region of this.regions) region.reset();
    if (model === 'fresh') this.build();
    return { ok: true };
  }

  // ---- snapshot and restore (emulator/snapshot/format.ts) ----

  /** Run fn; a SnapshotError is a refusal with its one-line reason, anything else an internal error too. */
  private snapshotting(what: string, fn: () => ControlResponse): ControlResponse {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof SnapshotError)) this.internalError(e);
      return { ok: false, error: `${what} refused: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  /** The region serving the device in slot (every slot of the layout has one). */
  private regionOf(slot: number): Region | undefined {
    return this.regions.find((r) => r.core(slot));
  }

  /** The snapshot operations for the device in slot, or a refusal naming its transport. */
  private snapshotsOf(slot: number, spec: DeviceSpec): NonNullable<Region['snapshots']> {
    const s = this.regionOf(slot)?.snapshots;
    if (!s) throw new SnapshotError(`slot ${slot}: ${spec.transport} devices are not covered by snapshot format ${SNAPSHOT_VERSION} (it has no subchannel state)`);
    return s;
  }

  /**
   * Run the queued device work to its end (never yielding: the driver
   * waits for this answer and adds nothing meanwhile), so every chain a
   * device popped is used and every kick acted on: the quiescent point a
   * snapshot is taken at.
   */
  private quiesce(): void {
    const s = this.scheduler;
    const hook = s.yieldHook;
    s.yieldHook = null;
    try {
      for (let pass = 0; s.pendingWork() > 0; pass++) {
        if (pass >= QUIESCE_MAX_PASSES) throw new SnapshotError(`device work did not settle after ${QUIESCE_MAX_PASSES} passes`);
        s.runWork(s.pendingWork());
      }
    } finally {
      s.yieldHook = hook;
    }
  }

  private snapshot(opts: SnapshotOptions): Uint8Array {
    const specs = this.config.devices.map((spec, slot) => ({ spec, slot })).filter((d): d is { spec: DeviceSpec; slot: number } => d.spec !== null);
    const ops = specs.map(({ spec, slot }) => this.snapshotsOf(slot, spec));
    this.quiesce();
    const devices: SlotSnapshot[] = specs.map(({ spec, slot }, i) => {
      try {
        return { slot, ...ops[i]!.save(slot, opts) };
      } catch (e) {
        if (e instanceof SnapshotError) throw new SnapshotError(`slot ${slot} (${spec.type}): ${e.message}`);
        throw e;
      }
    });
    return encodeSnapshot({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, machine: layoutOf(this.config), clock: this.clock.saveState(), devices });
  }

  /**
   * Check a document completely against this board (its size, msgpack,
   * format, version, layout, then every device's registers, queues and
   * model state), and only then, unless check is set, replace every device
   * by a new instance (host resources such as disk media carry over, as for
   * power 'fresh') loaded with the document's state. A refusal throws
   * SnapshotError with nothing changed. After the load every running
   * device serves its ready queues once, as a kick would.
   */
  private restore(bytes: unknown, check: boolean, opts: SnapshotOptions): void {
    const doc = decodeSnapshot(bytes);
    const why = layoutMismatch(doc.machine, layoutOf(this.config), deviceTypes());
    if (why) throw new SnapshotError(why);
    const want = doc.machine.devices;
    if (doc.devices.length !== want.length) throw new SnapshotError(`devices: ${doc.devices.length} entries for the ${want.length} devices of the layout`);
    const checked = doc.devices.map((d, i) => {
      const spec = this.config.devices[want[i]!.slot]!;
      if (d.slot !== want[i]!.slot) throw new SnapshotError(`devices[${i}].slot: ${d.slot}, expected ${want[i]!.slot} (the layout's devices, in order)`);
      return { slot: d.slot, state: this.snapshotsOf(d.slot, spec).check(d.slot, d, `devices[${i}]`, opts) };
    });
    if (check) return;
    this.clock.loadState(BigInt(doc.clock.aheadNs), BigInt(doc.clock.utcAtStartNs));
    for (const region of this.regions) region.reset();
    this.build();
    for (const { slot, state } of checked) this.snapshotsOf(slot, this.config.devices[slot]!).load(slot, state, opts);
    for (const { slot } of checked) this.core(slot)?.resume();
  }

  private stats(): BoardStats {
    const slots: SlotStats[] = [];
    for (let i = 0; i < this.config.slots; i++) {
      const core = this.core(i);
      const state = this.slotState(i);
      const spec = this.config.devices[i] ?? null;
      slots.push({
        ...(state?.counters ?? newCounters()),
        slot: i,
        type: spec?.type ?? null,
        transport: spec?.transport ?? null,
        deviceId: core?.model.deviceId ?? 0,
        status: core?.status ?? 0,
        interruptStatus: state?.interruptStatus ?? 0,
        irqRaised: state?.irqRaised ?? 0,
      });
    }
    return {
      slots,
      unmapped: this.unmapped,
      internalErrors: this.internalErrors,
      pendingWork: this.scheduler.pendingWork(),
      lastInternalError: this.lastInternalError,
    };
  }
}

/** Build the board for `config` over guest RAM `ram` (index 0 = config.ramBase). Throws on a bad config. */
export function createBoard(config: BoardConfig, ram: Uint8Array, irq: IrqLines, options: BoardOptions = {}): Board {
  return new VirtioBoard(config, ram, irq, options);
}
