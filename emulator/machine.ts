// The machine: guest RAM, the interrupt controller and the board, wired to
// the driver side through a Bus. With the worker bus (default) the board runs
// in a device worker behind the trap mailbox; with the in-thread bus it runs
// in the caller's thread.
import { Worker } from 'node:worker_threads';
import { BusError, PLATFORM, type Bus, type GuestMemory } from '../core/bus.js';
import { MMIO_WINDOW_SIZE } from '../core/uapi/mmio.js';
import type { Board, BoardConfig, ControlRequest, ControlResponse, DeviceOptionValue, DeviceSpec, TransportKind } from './board-contract.js';
import { deviceTypes, knownDeviceType, type CustomDeviceType, type DeviceType } from './devices/catalog.js';
import { IrqController, IrqDeviceLines, createIrqState } from './irq/controller.js';
import { MB, createMailbox, type MailboxBuffers } from './bus/mailbox.js';
import { MailboxBus } from './bus/mailbox-driver.js';
import { InThreadBus } from './bus/inthread.js';
import type { CreateBoard, WorkerData } from './worker.js';
import { waitAsync } from './bus/atomics.js';
import { SnapshotError } from './snapshot/fields.js';
import { decodeSnapshot, type MachineLayout } from './snapshot/format.js';
import { CLOCK_MODES, type ClockMode } from './virtio/clock.js';

export type BusKind = 'worker' | 'inthread';

/** A device to plug in; `slot` defaults to the lowest free slot, in order. */
export interface MachineDevice {
  /** A built-in model ('rng', 'blk', 'console', 'rtc'), or customDeviceType('name') for one of your own. */
  type: DeviceType | CustomDeviceType;
  /** Default 'mmio'. */
  transport?: TransportKind;
  options?: Record<string, DeviceOptionValue>;
  slot?: number;
}

/** A device, or a device type alone (that device on mmio, in the next free slot). */
export type MachineDeviceEntry = MachineDevice | DeviceType | CustomDeviceType;

export interface MachineOptions {
  /** Devices in slot order (the first one lands in slot 0). */
  devices?: MachineDeviceEntry[];
  /** virtio-mmio windows; slot i drives irq line i (default 32). */
  slots?: number;
  /** Guest RAM bytes at PLATFORM.RAM_BASE (default 64 MiB; the length of `ram` when given). */
  ramSize?: number;
  /**
   * Guest RAM supplied by the caller, e.g. the buffer of a shared
   * WebAssembly.Memory whose module is the kernel: guest-physical address =
   * PLATFORM.RAM_BASE + offset in this buffer.
   */
  ram?: SharedArrayBuffer;
  bus?: BusKind;
  /** Deadline for one trapped access on the worker bus, ms (default 2000). */
  trapTimeoutMs?: number;
  /** Deadline for the worker to build its board and start serving, ms (default 10000). */
  startTimeoutMs?: number;
  /** Module exporting createBoard(config, ram, irq); default the real board, emulator/board.js. */
  boardModule?: string | URL;
  /**
   * The virtual clock device timers and the rtc follow: 'host' (default)
   * runs with the host's time; 'manual' moves only by control({ op: 'clock' })
   * (qtest's clock_step/clock_set), as QEMU's under -accel qtest.
   */
  clock?: ClockMode;
  /**
   * Take over another machine's guest RAM and interrupt controller (the
   * same GuestMemory and IrqController objects, so a kernel holding them
   * goes on using them): a successor machine, as when a machine restored
   * from a snapshot replaces the one under a running kernel. The RAM size
   * and slot count must be the platform's; the old machine is closed and
   * the successor's adoptPlatform() called before the successor serves.
   */
  platform?: MachinePlatform;
}

/** Guest RAM and the interrupt controller: what a successor machine takes over (MachineOptions.platform). */
export interface MachinePlatform {
  readonly ramBuffer: SharedArrayBuffer;
  readonly mem: GuestMemory;
  readonly irqState: SharedArrayBuffer;
  readonly irq: IrqController;
  /** The machine serving it (Machine.adoptPlatform): only that one stops the controller's auto delivery when it closes. */
  owner: Machine | null;
}

export interface PluggedDevice {
  slot: number;
  /** Guest-physical base of its register window. */
  addr: number;
  /** Interrupt line (= slot). */
  line: number;
  spec: DeviceSpec;
}

/**
 * Bounds on what a caller (and through the CLI, a user) may ask of a
 * machine, checked before anything is allocated.
 */
export const MACHINE_LIMITS = {
  /** virtio-mmio windows (and interrupt lines, and ccw subchannels). */
  maxSlots: 4096,
  minRamSize: 4096,
  /** RAM starts at 1 GiB and must end below 4 GiB. */
  maxRamSize: 2 ** 32 - PLATFORM.RAM_BASE,
  /** trapTimeoutMs and startTimeoutMs, ms. */
  maxTimeoutMs: 3_600_000,
  /** Options per device, and the length of a string option (a path, a serial). */
  maxDeviceOptions: 64,
  maxOptionLength: 4096,
} as const;

const BUS_KINDS: readonly BusKind[] = ['worker', 'inthread'];
const TRANSPORT_KINDS: readonly TransportKind[] = ['mmio', 'mmio-legacy', 'ccw'];

const DEFAULT_BOARD = new URL('./board.js', import.meta.url);
const WORKER_URL = new URL('./worker.js', import.meta.url);

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Place devices: explicit slots first, the rest in order into the lowest free slots. */
export function placeDevices(devices: readonly MachineDeviceEntry[], slots: number, knownTypes?: readonly string[]): (DeviceSpec | null)[] {
  if (!Array.isArray(devices)) throw new RangeError('devices must be an array');
  if (devices.length > slots) throw new RangeError(`no free slot: ${devices.length} devices for ${slots} slots`);
  const norm = devices.map((d) => checkDevice(typeof d === 'string' ? { type: d } : d, knownTypes));
  const table: (DeviceSpec | null)[] = new Array<DeviceSpec | null>(slots).fill(null);
  for (const [i, slot] of assignSlots(norm, slots).entries()) {
    const d = norm[i]!;
    table[slot] = { type: d.type, transport: d.transport ?? 'mmio', ...(d.options ? { options: d.options } : {}) };
  }
  return table;
}

/**
 * The slot each device lands in, in the order given: explicit slots first,
 * the rest in order into the lowest free slots. A RangeError for a slot out
 * of range, two devices in one slot, or no free slot left.
 */
export function assignSlots(devices: readonly Pick<MachineDevice, 'type' | 'slot'>[], slots: number): number[] {
  const holder: (string | undefined)[] = new Array<string | undefined>(slots);
  const out: number[] = new Array<number>(devices.length);
  for (const [i, d] of devices.entries()) {
    if (d.slot === undefined) continue;
    if (!Number.isInteger(d.slot) || d.slot < 0 || d.slot >= slots) {
      throw new RangeError(`device ${d.type}: slot ${d.slot} out of range 0..${slots - 1}`);
    }
    if (holder[d.slot] !== undefined) throw new RangeError(`device ${d.type}: slot ${d.slot} already holds ${holder[d.slot]}`);
    holder[d.slot] = d.type;
    out[i] = d.slot;
  }
  let next = 0;
  for (const [i, d] of devices.entries()) {
    if (d.slot !== undefined) continue;
    while (next < slots && holder[next] !== undefined) next++;
    if (next >= slots) throw new RangeError(`no free slot for device ${d.type} (${slots} slots)`);
    holder[next] = d.type;
    out[i] = next;
  }
  return out;
}

const show = (v: unknown): string => (typeof v === 'string' ? `'${v.length > 40 ? `${v.slice(0, 37)}...` : v}'` : String(v));

/** A device entry's own fields, checked (type name, transport, slot, options). */
function checkDevice(d: MachineDevice, knownTypes: readonly string[] | undefined): MachineDevice {
  if (d === null || typeof d !== 'object') throw new RangeError(`a device must be a type name or an object, got ${show(d)}`);
  if (typeof d.type !== 'string' || !/^[A-Za-z0-9][\w.-]{0,63}$/.test(d.type)) throw new RangeError(`bad device type ${show(d.type)}`);
  if (knownTypes && !knownTypes.includes(d.type)) throw new RangeError(`unknown device type '${d.type}' (known: ${knownTypes.join(', ')})`);
  if (d.transport !== undefined && !TRANSPORT_KINDS.includes(d.transport)) {
    throw new RangeError(`device ${d.type}: unknown transport ${show(d.transport)} (known: ${TRANSPORT_KINDS.join(', ')})`);
  }
  if (d.options !== undefined) {
    if (d.options === null || typeof d.options !== 'object' || Array.isArray(d.options)) throw new RangeError(`device ${d.type}: options must be an object`);
    const keys = Object.keys(d.options);
    if (keys.length > MACHINE_LIMITS.maxDeviceOptions) throw new RangeError(`device ${d.type}: more than ${MACHINE_LIMITS.maxDeviceOptions} options`);
    for (const k of keys) {
      const v = d.options[k];
      if (!/^[A-Za-z][\w.-]{0,63}$/.test(k)) throw new RangeError(`device ${d.type}: bad option name ${show(k)}`);
      if (typeof v === 'string' ? v.length > MACHINE_LIMITS.maxOptionLength : typeof v !== 'number' && typeof v !== 'boolean') {
        throw new RangeError(`device ${d.type}: option ${k} must be a number, a boolean or a string of at most ${MACHINE_LIMITS.maxOptionLength} characters`);
      }
    }
  }
  return d;
}

function checkTimeout(name: string, v: number | undefined): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MACHINE_LIMITS.maxTimeoutMs) {
    throw new RangeError(`${name} must be a number of ms in (0, ${MACHINE_LIMITS.maxTimeoutMs}], got ${show(v)}`);
  }
}

/** [base, base + size) ranges of the address map: RAM and every register region, which must not overlap. */
function checkAddressMap(ramSize: number, slots: number): void {
  const ranges = [
    { what: 'RAM', base: PLATFORM.RAM_BASE, size: ramSize },
    { what: 'the virtio-mmio windows', base: PLATFORM.MMIO_BASE, size: slots * MMIO_WINDOW_SIZE },
    { what: 'the ccw subchannel windows', base: PLATFORM.CSS_BASE, size: slots * PLATFORM.CSS_WINDOW_SIZE },
  ];
  for (const [i, a] of ranges.entries()) {
    if (a.base + a.size > 2 ** 32) throw new RangeError(`${a.what} would end past 4 GiB`);
    for (const b of ranges.slice(i + 1)) {
      if (a.base < b.base + b.size && b.base < a.base + a.size) throw new RangeError(`${a.what} would overlap ${b.what} (${slots} slots, ${ramSize} bytes of RAM)`);
    }
  }
}

/**
 * The board configuration a machine with these options hands to createBoard.
 * Every option is checked here, before any memory is allocated or a worker
 * started: a RangeError names the first bad one.
 */
export function buildBoardConfig(opts: MachineOptions = {}): BoardConfig {
  const slots = opts.slots ?? PLATFORM.MMIO_SLOTS_DEFAULT;
  if (!Number.isInteger(slots) || slots < 1 || slots > MACHINE_LIMITS.maxSlots) {
    throw new RangeError(`slots must be an integer from 1 to ${MACHINE_LIMITS.maxSlots}, got ${show(slots)}`);
  }
  if (opts.bus !== undefined && !BUS_KINDS.includes(opts.bus)) throw new RangeError(`bus must be ${BUS_KINDS.join(' or ')}, got ${show(opts.bus)}`);
  checkTimeout('trapTimeoutMs', opts.trapTimeoutMs);
  checkTimeout('startTimeoutMs', opts.startTimeoutMs);
  if (opts.ram !== undefined && !(opts.ram instanceof SharedArrayBuffer)) throw new RangeError('ram must be a SharedArrayBuffer');
  if (opts.ram && opts.ramSize !== undefined && opts.ramSize !== opts.ram.byteLength) {
    throw new RangeError(`ramSize ${opts.ramSize} differs from the supplied RAM's ${opts.ram.byteLength} bytes`);
  }
  const ramSize = opts.ram?.byteLength ?? opts.ramSize ?? PLATFORM.RAM_SIZE_DEFAULT;
  if (!Number.isSafeInteger(ramSize) || ramSize < MACHINE_LIMITS.minRamSize || ramSize > MACHINE_LIMITS.maxRamSize) {
    throw new RangeError(`ramSize ${show(ramSize)} must be at least ${MACHINE_LIMITS.minRamSize} and end below 4 GiB (at most ${MACHINE_LIMITS.maxRamSize} bytes)`);
  }
  checkAddressMap(ramSize, slots);
  if (opts.clock !== undefined && !CLOCK_MODES.includes(opts.clock)) throw new RangeError(`clock must be ${CLOCK_MODES.join(' or ')}, got ${show(opts.clock)}`);
  // Device types are only known for the real board; a test board has its own.
  const knownTypes = opts.boardModule === undefined ? deviceTypes() : undefined;
  return {
    ramBase: PLATFORM.RAM_BASE,
    ramSize,
    mmioBase: PLATFORM.MMIO_BASE,
    slots,
    devices: placeDevices(opts.devices ?? [], slots, knownTypes),
    ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
  };
}

/** The module the worker loads createBoard from. */
export function boardModuleUrl(opts: MachineOptions = {}): string {
  return String(opts.boardModule ?? DEFAULT_BOARD);
}

export class Machine {
  readonly bus: Bus;
  readonly irq: IrqController;
  readonly mem: GuestMemory;
  readonly config: BoardConfig;
  readonly devices: readonly PluggedDevice[];
  readonly busKind: BusKind;
  /** Guest RAM and the interrupt controller, for a successor (MachineOptions.platform). */
  readonly platform: MachinePlatform;
  private readonly trap: MailboxBus | null;
  private readonly local: InThreadBus | null;
  private readonly worker: Worker | null;
  private closing: Promise<void> | null = null;

  private constructor(parts: {
    config: BoardConfig;
    platform: MachinePlatform;
    trap?: MailboxBus;
    local?: InThreadBus;
    worker?: Worker;
  }) {
    this.config = parts.config;
    this.platform = parts.platform;
    this.mem = parts.platform.mem;
    this.irq = parts.platform.irq;
    this.trap = parts.trap ?? null;
    this.local = parts.local ?? null;
    this.worker = parts.worker ?? null;
    this.bus = (this.trap ?? this.local)!;
    this.busKind = this.trap ? 'worker' : 'inthread';
    const devs: PluggedDevice[] = [];
    this.config.devices.forEach((spec, slot) => {
      if (spec) devs.push({ slot, addr: this.slotAddr(slot), line: slot, spec });
    });
    this.devices = devs;
    if (!this.platform.owner) this.adoptPlatform();
  }

  /**
   * This machine serves its platform from now on: the interrupt
   * controller's wait follows this machine's device thread (or, in-thread,
   * runs its device work). A machine on a new platform adopts it at once; a
   * successor when the machine before it is closed.
   */
  adoptPlatform(): void {
    this.platform.owner = this;
    const irq = this.irq;
    irq.pump = this.local ? this.local.pump : null;
    if (this.trap) irq.attachPartner(this.trap.partner);
  }

  static async create(opts: MachineOptions = {}): Promise<Machine> {
    const taken = opts.platform;
    if (taken && opts.ram !== undefined) throw new RangeError('give ram or platform, not both');
    const config = buildBoardConfig(taken ? { ...opts, ram: taken.ramBuffer } : opts);
    if (taken && config.slots !== taken.irq.lines) throw new RangeError(`the platform's interrupt controller has ${taken.irq.lines} lines, not ${config.slots}`);
    const ramSize = config.ramSize;
    const ramSab = taken?.ramBuffer ?? opts.ram ?? new SharedArrayBuffer(ramSize);
    const irqSab = taken?.irqState ?? createIrqState(config.slots);
    const platform: MachinePlatform = taken ?? {
      ramBuffer: ramSab,
      mem: { base: PLATFORM.RAM_BASE, size: ramSize, u8: new Uint8Array(ramSab), view: new DataView(ramSab) },
      irqState: irqSab,
      irq: new IrqController(irqSab),
      owner: null,
    };
    const { mem, irq } = platform;
    const boardModule = boardModuleUrl(opts);

    if ((opts.bus ?? 'worker') === 'inthread') {
      const mod = (await import(boardModule)) as { createBoard?: CreateBoard };
      if (typeof mod.createBoard !== 'function') throw new Error(`${boardModule} does not export createBoard`);
      const board: Board = mod.createBoard(config, mem.u8, new IrqDeviceLines(irqSab));
      return new Machine({ config, platform, local: new InThreadBus(board, mem, irq) });
    }

    const buffers = createMailbox();
    const data: WorkerData = { ...buffers, irq: irqSab, ram: ramSab, config, boardModule };
    // Workers inherit the parent's Node options; --input-type (from `node
    // --input-type=module -e ...`) makes a file-backed worker fail to load.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(WORKER_URL, { workerData: data, execArgv });
    const trap = new MailboxBus(buffers, mem, irq, opts.trapTimeoutMs !== undefined ? { trapTimeoutMs: opts.trapTimeoutMs } : {});

    // Listeners first: an 'error' event without one would crash this process.
    worker.on('error', (err) => trap.markDead(describe(err)));
    worker.on('exit', (code) => trap.markDead(`worker exited with code ${code}`));
    try {
      await waitServing(buffers, worker, opts.startTimeoutMs ?? 10_000);
    } catch (err) {
      trap.close();
      await worker.terminate();
      throw err;
    }
    // A machine never keeps the process alive on its own: the driver side
    // is synchronous, and auto delivery holds its own handle while on.
    worker.unref();
    return new Machine({ config, platform, trap, worker });
  }

  /**
   * A new machine (and device worker) with the layout a snapshot document
   * records, guest RAM loaded from `ram` (exactly the document's RAM size)
   * and every device loaded from the document, checked in full first: a
   * refusal closes the new machine and throws with the reason. `opts` may
   * choose the bus and deadlines, not the layout.
   */
  static async restore(doc: Uint8Array, ram: Uint8Array, opts: Pick<MachineOptions, 'bus' | 'trapTimeoutMs' | 'startTimeoutMs'> = {}): Promise<Machine> {
    const layout = decodeSnapshot(doc).machine;
    if (!(ram instanceof Uint8Array) || ram.length !== layout.ramSize) {
      throw new RangeError(`the RAM image must be ${layout.ramSize} bytes (the snapshot's guest RAM), got ${ram instanceof Uint8Array ? ram.length : typeof ram}`);
    }
    const m = await Machine.create({ ...opts, ...machineOptionsOf(layout) });
    m.mem.u8.set(ram);
    const r = m.control({ op: 'restore', doc });
    if (!r.ok) {
      await m.close();
      throw new SnapshotError(r.error);
    }
    return m;
  }

  /** Guest-physical base of a slot's virtio-mmio window. */
  slotAddr(slot: number): number {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.config.slots) {
      throw new RangeError(`slot ${slot} out of range 0..${this.config.slots - 1}`);
    }
    return this.config.mmioBase + slot * MMIO_WINDOW_SIZE;
  }

  /** A control-plane request to the board (synchronous, like a register access). */
  control(req: ControlRequest): ControlResponse {
    return this.trap ? this.trap.control(req) : this.local!.control(req);
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Stop the worker and fail every later access with EMU_CLOSED. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      // A successor owns the platform now: its interrupt delivery goes on.
      if (this.platform.owner === this) this.irq.stopAutoDelivery();
      if (this.trap) this.trap.close();
      if (this.local) this.local.close();
      const w = this.worker;
      this.closing = w ? w.terminate().then(() => undefined) : Promise.resolve();
    }
    return this.closing;
  }

  /** Fault injection: kill the device worker as a crash would. */
  async terminateWorker(): Promise<void> {
    if (!this.worker || !this.trap) throw new Error('terminateWorker: this machine has no device worker');
    await this.worker.terminate();
    // The 'exit' listener has normally run by now; this covers the ordering.
    this.trap.markDead('worker terminated');
  }
}

/** The machine options that rebuild a snapshot's layout (PLATFORM's address map). */
export function machineOptionsOf(layout: MachineLayout): MachineOptions {
  if (layout.ramBase !== PLATFORM.RAM_BASE || layout.mmioBase !== PLATFORM.MMIO_BASE) {
    throw new SnapshotError(`the snapshot's address map (RAM at 0x${layout.ramBase.toString(16)}, windows at 0x${layout.mmioBase.toString(16)}) is not this platform's`);
  }
  const devices = layout.devices.map((d) => {
    const type = knownDeviceType(d.type);
    if (!type) throw new SnapshotError(`slot ${d.slot}: unknown device type '${d.type.slice(0, 40)}' (known: ${deviceTypes().join(', ')})`);
    return { slot: d.slot, type, transport: d.transport as TransportKind, options: d.options };
  });
  return { slots: layout.slots, ramSize: layout.ramSize, clock: layout.clock, devices };
}

/** Resolve once the worker serves the mailbox; reject if it dies or is too slow. */
async function waitServing(buffers: MailboxBuffers, worker: Worker, timeoutMs: number): Promise<void> {
  const mb = new Int32Array(buffers.mailbox);
  let fail: (err: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {});
  const onError = (err: Error): void => fail(new BusError('EMU_WORKER_DEAD', `device worker failed to start: ${describe(err)}`));
  const onExit = (code: number): void =>
    fail(new BusError('EMU_WORKER_DEAD', `device worker exited with code ${code} while starting`));
  worker.once('error', onError);
  worker.once('exit', onExit);
  try {
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(mb, MB.READY) === 0 && Atomics.load(mb, MB.WORKER_DEAD) === 0) {
      const left = deadline - performance.now();
      if (left <= 0) throw new BusError('EMU_TRAP_TIMEOUT', `device worker not serving after ${timeoutMs} ms`);
      const w = waitAsync(mb, MB.READY, 0, left);
      if (w.async) await Promise.race([w.value, failed]);
    }
    if (Atomics.load(mb, MB.WORKER_DEAD) !== 0) {
      const len = Atomics.load(mb, MB.CTRL_LEN);
      const note = new TextDecoder().decode(new Uint8Array(buffers.control).slice(0, len));
      throw new BusError('EMU_WORKER_DEAD', `device worker failed to start: ${note}`);
    }
  } finally {
    worker.off('error', onError);
    worker.off('exit', onExit);
  }
}
