// A machine with a modelled kernel on it: the embedding API for test
// harnesses. The kernel side (virtio bus, transports, drivers, PM core) runs
// on this thread and reaches the devices only through the machine's bus.
import type { Bus, IrqChip, IrqHandler } from '../core/bus.js';
import { dmaFor } from '../core/dma.js';
import { drivers as shippedDrivers } from '../core/drivers/index.js';
import { keepOutOfImage, kernelGlobals } from '../core/kernel.js';
import { DpmCore, type PmDevice, type PmInjection } from '../core/pm/dpm.js';
import { type HibernationMode, type PmTransition, hibernate, pmSuspend } from '../core/pm/system.js';
import { VirtioBus, type VirtioDevice, type VirtioDriver, registerVirtioDriver, virtioDevShutdown } from '../core/virtio.js';
import { type FoundDevice, transportScanners } from '../transports/index.js';
import { Machine, machineOptionsOf, type BusKind, type MachineOptions } from '../emulator/machine.js';
import { POWER_MODELS, type BoardConfig, type PowerModel } from '../emulator/board-contract.js';
import { deviceTypes } from '../emulator/devices/catalog.js';
import { SnapshotError } from '../emulator/snapshot/fields.js';
import { decodeSnapshot, layoutMismatch, layoutOf } from '../emulator/snapshot/format.js';
import { KernelImage } from '../core/pm/image.js';
import { MachineBus } from './machine-bus.js';
import { bootLinuxSystem, type LinuxSystem, type LinuxSystemOptions } from '../linux/host/index.js';

export { POWER_MODELS, type PowerModel };

/**
 * Refused before the transition starts: a bad model found at enterSleep
 * would leave devices suspended; so is `snapshot` on a machine with devices
 * the snapshot format does not cover (virtio-ccw).
 */
export function checkPower(p: PowerModel, config?: BoardConfig): PowerModel {
  if (!POWER_MODELS.includes(p)) throw new RangeError(`power must be ${POWER_MODELS.join(', ')}, got ${typeof p === 'string' ? `'${String(p).slice(0, 40)}'` : String(p)}`);
  const ccw = p === 'snapshot' ? config?.devices.findIndex((d) => d?.transport === 'ccw') : -1;
  if (ccw !== undefined && ccw >= 0) throw new RangeError(`power snapshot: slot ${ccw} is a virtio-ccw device, which the snapshot format does not cover`);
  return p;
}

/**
 * What sys.snapshot() returns: the device snapshot document, a copy of
 * guest RAM, and the kernel model's state at the same moment (an opaque
 * handle, valid in this process only: the model's state is objects on
 * this thread, which no document carries).
 */
export interface SystemSnapshot {
  doc: Uint8Array;
  ram: Uint8Array;
  kernel: KernelState;
}

export interface RestoreOptions {
  /** The kernel state of the snapshot (SystemSnapshot.kernel): that system's kernel continues on the restored machine. */
  kernel?: KernelState;
  /** The new machine's bus (default: the one the system used). */
  bus?: BusKind;
  trapTimeoutMs?: number;
}

/**
 * The kernel model at a snapshot: its objects as they were (a hibernation
 * image of them, restored in place), which kernel was running, and the
 * interrupt lines it had masked.
 */
export class KernelState {
  /** @internal */
  constructor(
    readonly system: VirtioSystem,
    readonly image: KernelImage,
    readonly kernel: KernelInstance,
    readonly kernelBus: KernelBus,
    readonly masks: readonly boolean[],
  ) {
    keepOutOfImage(this);
  }
}

export interface SystemOptions extends MachineOptions {
  /** Drivers in match order (default: every driver in core/drivers). */
  drivers?: VirtioDriver[];
  /** Put something between the kernel and the machine's bus (a tracer, a fault injector). */
  wrapBus?: (bus: Bus) => Bus;
  /** Device-side setup before the kernel boots (e.g. inject a fault the probe should meet). */
  beforeBoot?: (machine: Machine) => void;
}

export interface SleepOptions {
  /** What the platform does to devices while the system sleeps (default retain). */
  power?: PowerModel;
}

export interface HibernateSystemOptions extends SleepOptions {
  /**
   * hibernation_mode. 'shutdown' (the default, as Linux on a board without
   * platform hibernation ops such as this arm64 virt board): device_shutdown()
   * and power off, no poweroff callbacks. 'platform': the board is taken to
   * have platform hibernation ops (ACPI S4 style), so the poweroff phases run.
   */
  mode?: HibernationMode;
  /** Failures for the boot kernel's PM core (its quiesce phases), this hibernation only. */
  bootInjections?: readonly PmInjection[];
}

/** One kernel's view of the machine: its virtio bus, devices and PM list. */
export class KernelInstance {
  readonly virtioBus = new VirtioBus();
  readonly dpm: DpmCore<VirtioDevice>;
  readonly devices: FoundDevice[] = [];
  readonly errors: { slot: number; message: string }[] = [];

  constructor(
    readonly bus: Bus,
    drivers: readonly VirtioDriver[],
    slots: number,
    tag?: 'boot',
  ) {
    this.dpm = new DpmCore<VirtioDevice>(tag ? { irq: bus.irq, tag } : { irq: bus.irq });
    // Initcall order of a kernel with everything built in: transports that
    // link before the drivers register their devices first, the drivers then
    // bind to them as they register, and later transports' devices find the
    // drivers there.
    const scan = (after: boolean): void => {
      for (const t of transportScanners) {
        if (t.probesAfterDrivers !== after) continue;
        const r = t.scan(bus, slots, this.virtioBus);
        this.devices.push(...r.devices);
        this.errors.push(...r.errors);
      }
    };
    scan(false);
    for (const d of drivers) registerVirtioDriver(d, this.virtioBus);
    scan(true);
    this.devices.sort((a, b) => a.slot - b.slot);
    for (const d of this.devices) this.dpm.devicePmAdd(pmDevice(d));
  }

  /** The device in a slot. */
  device(slot: number): VirtioDevice | undefined {
    return this.devices.find((d) => d.slot === slot)?.vdev;
  }
}

function pmDevice(d: FoundDevice): PmDevice<VirtioDevice> {
  // Every virtio device sits on the virtio bus, whose shutdown is virtio_dev_shutdown.
  return { name: d.vdev.name, dev: d.vdev, ops: d.pm, irqLine: d.line, slot: d.slot, shutdown: virtioDevShutdown };
}

/**
 * The bus as one kernel sees it: the machine's registers and interrupt
 * controller, with the interrupt handlers that kernel registered tracked, so
 * they can leave the controller when the kernel stops running (power-off
 * before hibernation: the image kernel is in RAM only; a boot kernel that
 * jumped into the image is gone) and come back when it runs again. A second
 * kernel gets a GuestMemory of its own, so it gets its own DMA allocator.
 */
export class KernelBus implements Bus {
  readonly mem;
  readonly irq: IrqChip;
  /**
   * The handlers the kernel has registered (its irq actions): kernel memory,
   * so a hibernation image holds them, while their presence on the
   * interrupt controller is hardware state this bus keeps in line.
   */
  readonly handlers: [number, IrqHandler][] = [];
  private connected = true;

  constructor(
    private readonly base: Bus,
    opts: { ownMemory?: boolean } = {},
  ) {
    this.mem = opts.ownMemory ? { ...base.mem } : base.mem;
    const tracked = this.handlers;
    const self = this;
    this.irq = Object.assign(Object.create(base.irq) as IrqChip, {
      request(line: number, h: IrqHandler): void {
        tracked.push([line, h]);
        if (self.connected) base.irq.request(line, h);
      },
      free(line: number, h: IrqHandler): void {
        const i = tracked.findIndex(([l, x]) => l === line && x === h);
        if (i >= 0) tracked.splice(i, 1);
        if (self.connected || i < 0) base.irq.free(line, h);
      },
    });
    keepOutOfImage(this);
    keepOutOfImage(this.irq);
  }

  read(addr: number, width: 1 | 2 | 4): number {
    return this.base.read(addr, width);
  }

  write(addr: number, width: 1 | 2 | 4, value: number): void {
    this.base.write(addr, width, value);
  }

  /** The kernel stops running: its handlers leave the interrupt controller. */
  disconnect(): void {
    if (!this.connected) return;
    this.connected = false;
    for (const [line, h] of this.handlers) this.base.irq.free(line, h);
  }

  /** The kernel runs again: its handlers are back. */
  reconnect(): void {
    if (this.connected) return;
    this.connected = true;
    for (const [line, h] of this.handlers) this.base.irq.request(line, h);
  }

  writePosted(addr: number, width: 1 | 2 | 4, value: number): void {
    const base = this.base;
    if (base.writePosted) base.writePosted(addr, width, value);
    else base.write(addr, width, value);
  }

  /** The kernel is gone: its interrupt handlers with it. */
  discard(): void {
    this.disconnect();
    this.handlers.length = 0;
  }
}

export class VirtioSystem {
  /** Where register accesses go: the machine the kernel runs on now. */
  private readonly port: MachineBus;
  /** Machines this system ran on before a restore, until their workers have stopped. */
  private readonly retired: Promise<void>[] = [];
  /** Spare machines made and not switched to yet: closed with the system. */
  private readonly spares = new Set<Machine>();
  /**
   * The running kernel: the one booted at create(), or, after a hibernation
   * whose boot kernel failed to quiesce its devices, that boot kernel (the
   * image kernel never runs again).
   */
  kernel: KernelInstance;
  /** The running kernel's view of the bus (its interrupt handlers tracked). */
  private kernelBus: KernelBus;
  private readonly drivers: readonly VirtioDriver[];

  /** The bus the kernel uses (the machine's, or its wrapper). */
  readonly bus: Bus;

  private constructor(machine: Machine, drivers: readonly VirtioDriver[], wrapBus?: (bus: Bus) => Bus) {
    this.drivers = drivers;
    this.port = new MachineBus(machine);
    this.bus = wrapBus ? wrapBus(this.port) : this.port;
    // Hardware and the handles to it are not kernel memory.
    keepOutOfImage(machine);
    keepOutOfImage(machine.bus);
    keepOutOfImage(machine.irq);
    keepOutOfImage(this.port);
    keepOutOfImage(this.bus);
    this.kernelBus = new KernelBus(this.bus);
    this.kernel = new KernelInstance(this.kernelBus, drivers, machine.config.slots);
  }

  /**
   * Start a machine and boot a kernel on it: every device probed and bound.
   * The kernel is the TypeScript model unless `kernel: 'linux'` asks for
   * Linux 6.12 in WebAssembly (linux/: needs `npm run build:linux`), whose
   * system has the same suspend/hibernate/injectPmFailure/dpm/close and
   * Linux's own view of the devices (`sys.kernel.devices()`).
   */
  static create(opts: LinuxSystemOptions & { kernel: 'linux' }): Promise<LinuxSystem>;
  static create(opts?: SystemOptions & { kernel?: 'model' }): Promise<VirtioSystem>;
  static async create(opts: (SystemOptions & { kernel?: 'model' }) | (LinuxSystemOptions & { kernel: 'linux' }) = {}): Promise<VirtioSystem | LinuxSystem> {
    if (opts.kernel === 'linux') {
      const { kernel: _k, ...linux } = opts;
      return bootLinuxSystem(linux);
    }
    const machine = await Machine.create(opts);
    try {
      opts.beforeBoot?.(machine);
      return new VirtioSystem(machine, opts.drivers ?? [...shippedDrivers.values()].map((d) => d.driver), opts.wrapBus);
    } catch (err) {
      await machine.close();
      throw err;
    }
  }

  /** The machine the kernel runs on (a new one after a restore). */
  get machine(): Machine {
    return this.port.machine;
  }

  get devices(): readonly FoundDevice[] {
    return this.kernel.devices;
  }

  device(slot: number): VirtioDevice | undefined {
    return this.kernel.device(slot);
  }

  get dpm(): DpmCore<VirtioDevice> {
    return this.kernel.dpm;
  }

  /**
   * Make a PM callback of a device fail (see DpmCore.inject): the callback
   * is not run and returns -errno in every transition from now on, until
   * clearPmFailures() drops the injection.
   */
  injectPmFailure(i: PmInjection): void {
    this.kernel.dpm.inject(i);
  }

  /** Drop an injection made with injectPmFailure() (the same object), or all of them. */
  clearPmFailures(i?: PmInjection): void {
    this.kernel.dpm.clearInjections(i);
  }

  private power(model: PowerModel): void {
    const r = this.machine.control({ op: 'power', model });
    if (!r.ok) throw new Error(`power ${model}: ${r.error}`);
  }

  /** Suspend to RAM and resume. */
  suspend(opts: SleepOptions = {}): PmTransition {
    const power = checkPower(opts.power ?? 'retain', this.machine.config);
    return pmSuspend(this.kernel.dpm, { enterSleep: () => this.power(power) });
  }

  /**
   * Hibernate: image, thaw, power_down() (shutdown mode: device_shutdown();
   * platform mode: the poweroff phases), power off, power on with a boot
   * kernel that probes the devices afresh and quiesces them, then the jump
   * into the image.
   */
  hibernate(opts: HibernateSystemOptions = {}): PmTransition {
    const power = checkPower(opts.power ?? 'fresh', this.machine.config);
    const mode = opts.mode ?? 'shutdown';
    const mem = this.machine.mem;
    const image = this.kernelBus;
    let boot: { kernel: KernelInstance; bus: KernelBus } | null = null;
    const t = hibernate(
      this.kernel.dpm,
      {
        powerOff: () => {
          this.power(power);
          // The image kernel is in RAM only now: nothing of it handles interrupts.
          image.disconnect();
        },
        bootKernel: () => {
          // Power-on resets the interrupt controller: the boot kernel starts
          // with every line enabled, not with the image kernel's noirq masks
          // (virtio-ccw cannot even probe without its I/O interrupt).
          for (let line = 0; line < this.machine.irq.lines; line++) this.machine.irq.unmask(line);
          const bus = new KernelBus(this.bus, { ownMemory: true });
          const kernel = new KernelInstance(bus, this.drivers, this.machine.config.slots, 'boot');
          // Observers of the system's PM (tests, the trace) see the boot kernel's callbacks too.
          kernel.dpm.hooks.push(...this.kernel.dpm.hooks);
          for (const i of opts.bootInjections ?? []) kernel.dpm.inject(i);
          boot = { kernel, bus };
          return kernel.dpm;
        },
        enterImage: () => {
          // The jump: the boot kernel is gone.
          (boot as { bus: KernelBus } | null)?.bus.discard();
        },
        // The image kernel runs again, with the handlers its image holds.
        imageRestored: () => image.reconnect(),
      },
      {
        imageRoots: this.imageRoots(),
        ram: mem.u8,
        mode,
      },
    );
    const b = boot as { kernel: KernelInstance; bus: KernelBus } | null;
    if (t.failedStep === 'quiesce' && b) {
      // The boot kernel carries on as the system's kernel; the injections were for this hibernation only.
      b.kernel.dpm.clearInjections();
      this.kernel = b.kernel;
      this.kernelBus = b.bus;
    }
    return t;
  }

  /** What a hibernation image or a snapshot holds of the kernel: its objects, its irq actions, the DMA allocator, kernel globals. */
  private imageRoots(): object[] {
    return [this.kernel, this.kernelBus.handlers, dmaFor(this.machine.mem), ...kernelGlobals()];
  }

  // ---- snapshot and restore ----

  /**
   * The device snapshot document (machine.control({ op: 'snapshot' }):
   * taken at a quiescent point, every chain the devices popped completed),
   * a copy of guest RAM taken right after it (nothing runs in between: the
   * device worker has no work left and this thread is here), and the
   * kernel model's state. Throws SnapshotError when the machine refuses
   * (virtio-ccw devices, a device holding a chain).
   */
  snapshot(): SystemSnapshot {
    const r = this.machine.control({ op: 'snapshot' });
    if (!r.ok) throw new SnapshotError(r.error);
    return {
      doc: r.value as Uint8Array,
      ram: this.machine.mem.u8.slice(),
      kernel: new KernelState(this, KernelImage.capture(this.imageRoots()), this.kernel, this.kernelBus, this.machine.irq.masks()),
    };
  }

  /**
   * Restore a system snapshot: a new machine (a new device worker) loaded
   * with `doc` and guest RAM `ram`, under the kernel of `options.kernel`,
   * whose objects go back to the snapshot's moment. The machine the kernel
   * ran on until now is closed; the system returned is the snapshot's (one
   * kernel model is one set of objects in this process). Everything is
   * checked before anything changes: a refused document throws
   * SnapshotError and leaves the system as it was. Without options.kernel
   * there is no kernel to continue (a document carries the device side
   * only): use Machine.restore(doc, ram) for the devices alone.
   */
  static async restore(doc: Uint8Array, ram: Uint8Array, options: RestoreOptions = {}): Promise<VirtioSystem> {
    const state = options.kernel;
    if (!(state instanceof KernelState)) {
      throw new TypeError(
        'VirtioSystem.restore needs options.kernel, the kernel state sys.snapshot() returned in this process (the document holds the device side only); Machine.restore(doc, ram) restores the devices alone',
      );
    }
    const sys = state.system;
    const old = sys.machine;
    const layout = decodeSnapshot(doc).machine;
    const why = layoutMismatch(layout, layoutOf(old.config), deviceTypes());
    if (why) throw new SnapshotError(`not a snapshot of this system's machine: ${why}`);
    if (!(ram instanceof Uint8Array) || ram.length !== layout.ramSize) throw new RangeError(`the RAM image must be ${layout.ramSize} bytes, got ${ram instanceof Uint8Array ? ram.length : typeof ram}`);
    const next = await sys.spareMachine(options);
    const check = next.control({ op: 'restore', doc, check: true });
    if (!check.ok) {
      await next.close();
      throw new SnapshotError(check.error);
    }
    // The old worker stops before guest RAM is rewritten under it.
    await old.close();
    old.mem.u8.set(ram);
    // The kernel's irq actions are kernel memory, their place on the
    // controller is not: the running kernel's leave, the snapshot's come back.
    sys.kernelBus.disconnect();
    state.image.restore();
    sys.kernel = state.kernel;
    sys.kernelBus = state.kernelBus;
    state.kernelBus.disconnect();
    state.kernelBus.reconnect();
    old.irq.restoreMasks(state.masks);
    sys.takeMachine(next, doc);
    return sys;
  }

  /**
   * A machine with this one's layout on its platform (the same guest RAM
   * and interrupt controller), its devices fresh, not serving the kernel
   * yet: what switchMachine() puts under the kernel.
   */
  async spareMachine(opts: Pick<RestoreOptions, 'bus' | 'trapTimeoutMs'> = {}): Promise<Machine> {
    const m = this.machine;
    const spare = await Machine.create({
      ...machineOptionsOf(layoutOf(m.config)),
      platform: m.platform,
      bus: opts.bus ?? m.busKind,
      ...(opts.trapTimeoutMs !== undefined ? { trapTimeoutMs: opts.trapTimeoutMs } : {}),
    });
    this.spares.add(spare);
    return spare;
  }

  /**
   * Fork the machine under the running kernel, synchronously (so also from
   * a PM hook in the middle of a cycle): snapshot the devices, load the
   * document into `spare` (from spareMachine()), and carry on there; the
   * old machine is closed. Guest RAM and the interrupt controller are the
   * same objects throughout. With `from`, the spare is loaded with that
   * document and guest RAM instead (the kernel model is not touched: the
   * caller has brought it to the document's point, as `run --restore` does
   * by running the steps before it). A refused snapshot or document throws
   * SnapshotError with nothing changed.
   */
  switchMachine(spare: Machine, from?: { doc: Uint8Array; ram: Uint8Array }): void {
    const old = this.machine;
    if (spare.platform !== old.platform || spare === old) throw new RangeError("switchMachine: the spare must come from this system's spareMachine()");
    if (from && (!(from.ram instanceof Uint8Array) || from.ram.length !== old.mem.size)) throw new RangeError(`switchMachine: the RAM image must be ${old.mem.size} bytes`);
    // Also with `from`: the snapshot runs the old worker's queued work to its end, so it is idle.
    const r = old.control({ op: 'snapshot' });
    if (!r.ok) throw new SnapshotError(r.error);
    const doc = from?.doc ?? (r.value as Uint8Array);
    const check = spare.control({ op: 'restore', doc, check: true });
    if (!check.ok) throw new SnapshotError(check.error);
    // The old worker has no work left and this thread makes no access until the switch is done.
    if (from) old.mem.u8.set(from.ram);
    this.retired.push(old.close());
    this.takeMachine(spare, doc);
  }

  /** Load a checked document into `next` and make it the kernel's machine. */
  private takeMachine(next: Machine, doc: Uint8Array): void {
    const r = next.control({ op: 'restore', doc });
    if (!r.ok) throw new SnapshotError(`${r.error} (after the document was checked)`);
    next.adoptPlatform();
    keepOutOfImage(next);
    keepOutOfImage(next.bus);
    this.spares.delete(next);
    this.port.machine = next;
  }

  async close(): Promise<void> {
    await Promise.all([...this.retired, ...[...this.spares].map((m) => m.close())]);
    this.spares.clear();
    return this.machine.close();
  }
}
