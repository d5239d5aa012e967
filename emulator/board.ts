// The board: address decoder, one virtio-mmio register window per slot, the
// device models behind them, deferred device work and timers. The machine
// hosts it in the device worker (or in-thread for unit tests) and forwards
// trapped accesses, runDeferred() calls and control requests to it.
//
// The board never throws out of read/write/runDeferred/control: guest
// mistakes are counted per slot, a device model that throws puts only its own
// device into DEVICE_NEEDS_RESET, and an internal fault is counted.
import type { AccessWidth } from '../core/bus.js';
import { MMIO_WINDOW_SIZE } from '../core/uapi/mmio.js';
import { createChannelSubsystem } from './ccw/css.js';
import type { DeviceHost, DeviceModel } from './devices/device.js';
import { createDeviceModel } from './devices/catalog.js';
import { EmptySlot } from './mmio/empty-slot.js';
import { MmioTransport } from './mmio/register-file.js';
import type { MmioWindow } from './mmio/window.js';
import type { Board, BoardConfig, ControlRequest, ControlResponse, DeviceSpec, IrqLines, TransportKind } from './board-contract.js';
import type { DeviceCore } from './virtio/device-core.js';
import { Scheduler, type Clock } from './virtio/scheduler.js';
import type { DeviceCounters } from './virtio/signals.js';
import { GuestRam, type AddressRange } from './vring/guest-ram.js';

/** Largest config space a virtio-mmio window can show (0x100..0x1ff). */
const MMIO_CONFIG_MAX = MMIO_WINDOW_SIZE - 0x100;

export interface BoardOptions {
  /** Clock for device timers, in ms (default performance.now); tests pass a fake one. */
  now?: Clock;
  /** Chains a queue handler may pop per run before it is re-queued. */
  weight?: number;
}

/** Everything a transport needs to host device cores on this board. */
export interface TransportEnv {
  config: BoardConfig;
  ram: GuestRam;
  irq: IrqLines;
  scheduler: Scheduler;
  weight?: number;
}

/**
 * A transport that is not one virtio-mmio window per slot (virtio-ccw: a
 * channel subsystem with its own register window) plugs in as a region.
 */
export interface TransportRegion {
  readonly base: number;
  readonly size: number;
  read(offset: number, width: AccessWidth): number;
  write(offset: number, width: AccessWidth, value: number): void;
  /** Platform reset of every device behind the region. */
  reset(): void;
  /** The device core serving a board slot, for inject/fault/stats. */
  core(slot: number): DeviceCore | undefined;
  counters(slot: number): DeviceCounters | undefined;
}

export interface RegionDevice {
  slot: number;
  spec: DeviceSpec;
  model: DeviceModel;
}

export type TransportRegionFactory = (env: TransportEnv, devices: RegionDevice[]) => TransportRegion;

/**
 * Region transports by kind. Each is instantiated on every board, with or
 * without devices, so its windows always answer (an empty subchannel says
 * "no device" instead of being an unmapped address).
 */
export const REGION_TRANSPORTS: Partial<Record<TransportKind, TransportRegionFactory>> = { ccw: createChannelSubsystem };

/** Options named '<transport>.<name>' (e.g. ccw.max_revision) configure the transport, not the model. */
export function modelOptions(spec: DeviceSpec): NonNullable<DeviceSpec['options']> {
  const prefix = `${spec.transport}.`;
  return Object.fromEntries(Object.entries(spec.options ?? {}).filter(([k]) => !k.startsWith(prefix)));
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
  lastInternalError: string | null;
}

interface Slot {
  spec: DeviceSpec | null;
  window: MmioWindow;
  transport: MmioTransport | null;
}

function isWidth(w: number): w is AccessWidth {
  return w === 1 || w === 2 || w === 4;
}

class VirtioBoard implements Board {
  private readonly ram: GuestRam;
  private readonly scheduler: Scheduler;
  private readonly env: TransportEnv;
  private readonly mmioBase: number;
  private readonly mmioEnd: number;
  private slots: Slot[] = [];
  /** Per-slot host resources that survive power 'fresh' (DeviceHost.retained). */
  private readonly hosts: DeviceHost[] = [];
  private regions: { kind: TransportKind; devices: RegionDevice[]; region: TransportRegion }[] = [];
  private unmapped = 0;
  private internalErrors = 0;
  private lastInternalError: string | null = null;

  constructor(
    private readonly config: BoardConfig,
    ramBytes: Uint8Array,
    private readonly irq: IrqLines,
    options: BoardOptions,
  ) {
    const { ramBase, ramSize, mmioBase, slots } = config;
    if (!Number.isSafeInteger(ramBase) || !Number.isSafeInteger(ramSize) || ramSize <= 0) throw new Error('board: bad RAM range');
    if (!Number.isInteger(slots) || slots < 0) throw new Error(`board: bad slot count ${slots}`);
    if (config.devices.length > slots && config.devices.slice(slots).some((d) => d !== null)) {
      throw new Error(`board: ${config.devices.length} device entries for ${slots} slots`);
    }
    this.mmioBase = mmioBase;
    this.mmioEnd = mmioBase + slots * MMIO_WINDOW_SIZE;
    if (slots > 0 && mmioBase < ramBase + ramSize && ramBase < this.mmioEnd) {
      throw new Error('board: the virtio-mmio windows overlap guest RAM');
    }
    const holes: AddressRange[] = [{ base: mmioBase, size: slots * MMIO_WINDOW_SIZE }];
    this.ram = new GuestRam(ramBytes, ramBase, ramSize, holes);
    this.scheduler = new Scheduler(options.now ?? (() => performance.now()));
    this.env = { config, ram: this.ram, irq, scheduler: this.scheduler };
    if (options.weight !== undefined) this.env.weight = options.weight;
    this.build();
  }

  /** Create device instances and register files at their defaults. */
  private build(): void {
    const byKind = new Map<TransportKind, RegionDevice[]>();
    this.slots = [];
    for (let i = 0; i < this.config.slots; i++) {
      const spec = this.config.devices[i] ?? null;
      const host = (this.hosts[i] ??= { retained: new Map<string, unknown>() });
      if (spec && (spec.transport === 'mmio' || spec.transport === 'mmio-legacy')) {
        const model = createDeviceModel(spec.type, spec.options ?? {}, host);
        if (model.configSize > MMIO_CONFIG_MAX) throw new Error(`board: ${spec.type} config space of ${model.configSize} bytes does not fit a virtio-mmio window`);
        const transport = new MmioTransport(model, {
          version: spec.transport === 'mmio' ? 2 : 1,
          line: i,
          irq: this.irq,
          ram: this.ram,
          scheduler: this.scheduler,
          ...(this.env.weight !== undefined ? { weight: this.env.weight } : {}),
        });
        this.slots.push({ spec, window: transport, transport });
      } else {
        if (spec) {
          if (!REGION_TRANSPORTS[spec.transport]) throw new Error(`board: slot ${i}: transport '${spec.transport}' is not available on this board yet`);
          const list = byKind.get(spec.transport) ?? [];
          list.push({ slot: i, spec, model: createDeviceModel(spec.type, modelOptions(spec), host) });
          byKind.set(spec.transport, list);
        }
        this.slots.push({ spec, window: new EmptySlot(), transport: null });
      }
    }
    this.regions = [];
    for (const [kind, factory] of Object.entries(REGION_TRANSPORTS) as [TransportKind, TransportRegionFactory][]) {
      const devices = byKind.get(kind) ?? [];
      this.regions.push({ kind, devices, region: factory(this.env, devices) });
    }
  }

  // ---- trapped accesses ----

  read(addr: number, width: AccessWidth): number {
    try {
      if (!isWidth(width) || !Number.isSafeInteger(addr)) {
        this.unmapped++;
        return 0;
      }
      if (addr >= this.mmioBase && addr < this.mmioEnd) {
        const off = addr - this.mmioBase;
        const slot = this.slots[Math.floor(off / MMIO_WINDOW_SIZE)]!;
        const o = off % MMIO_WINDOW_SIZE;
        if (o + width > MMIO_WINDOW_SIZE) {
          slot.window.counters.guestErrors++;
          slot.window.counters.lastGuestError = `${width}-byte read crossing the end of the window`;
          return 0;
        }
        return slot.window.read(o, width) >>> 0;
      }
      for (const { region } of this.regions) {
        if (addr >= region.base && addr + width <= region.base + region.size) return region.read(addr - region.base, width) >>> 0;
      }
      this.unmapped++;
      return 0;
    } catch (e) {
      this.internalError(e);
      return 0;
    }
  }

  write(addr: number, width: AccessWidth, value: number): void {
    try {
      if (!isWidth(width) || !Number.isSafeInteger(addr)) {
        this.unmapped++;
        return;
      }
      const v = width === 4 ? value >>> 0 : value & ((1 << (8 * width)) - 1);
      if (addr >= this.mmioBase && addr < this.mmioEnd) {
        const off = addr - this.mmioBase;
        const slot = this.slots[Math.floor(off / MMIO_WINDOW_SIZE)]!;
        const o = off % MMIO_WINDOW_SIZE;
        if (o + width > MMIO_WINDOW_SIZE) {
          slot.window.counters.guestErrors++;
          slot.window.counters.lastGuestError = `${width}-byte write crossing the end of the window`;
          return;
        }
        slot.window.write(o, width, v);
        return;
      }
      for (const { region } of this.regions) {
        if (addr >= region.base && addr + width <= region.base + region.size) {
          region.write(addr - region.base, width, v);
          return;
        }
      }
      this.unmapped++;
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

  nextTimerMs(): number {
    return this.scheduler.nextTimerMs();
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
        case 'inject':
          return this.inject(req.slot, req.event, req.args ?? {});
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

  private core(slot: number): DeviceCore | undefined {
    const s = this.slots[slot];
    if (s?.transport) return s.transport.core;
    for (const { region } of this.regions) {
      const core = region.core(slot);
      if (core) return core;
    }
    return undefined;
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
  private power(model: 'retain' | 'reset' | 'fresh'): ControlResponse {
    // Control records come from outside the type system (msgpackr): check.
    if (model !== 'retain' && model !== 'reset' && model !== 'fresh') return { ok: false, error: `unknown power model '${String(model)}'` };
    if (model === 'retain') return { ok: true };
    for (const s of this.slots) s.transport?.reset();
    for (const { region } of this.regions) region.reset();
    if (model === 'fresh') this.build();
    return { ok: true };
  }

  private stats(): BoardStats {
    const slots = this.slots.map((s, i): SlotStats => {
      const core = this.core(i);
      let counters = s.window.counters;
      if (!s.transport) {
        for (const { region } of this.regions) counters = region.counters(i) ?? counters;
      }
      return {
        ...counters,
        slot: i,
        type: s.spec?.type ?? null,
        transport: s.spec?.transport ?? null,
        deviceId: core?.model.deviceId ?? 0,
        status: core?.status ?? 0,
        interruptStatus: s.transport?.interruptStatus ?? 0,
        irqRaised: s.transport?.irqRaised ?? 0,
      };
    });
    return { slots, unmapped: this.unmapped, internalErrors: this.internalErrors, lastInternalError: this.lastInternalError };
  }
}

/** Build the board for `config` over guest RAM `ram` (index 0 = config.ramBase). Throws on a bad config. */
export function createBoard(config: BoardConfig, ram: Uint8Array, irq: IrqLines, options: BoardOptions = {}): Board {
  return new VirtioBoard(config, ram, irq, options);
}
