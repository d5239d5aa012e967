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
import { Machine, type MachineOptions } from '../emulator/machine.js';
import { bootLinuxSystem, type LinuxSystem, type LinuxSystemOptions } from '../linux/host/index.js';

export type PowerModel = 'retain' | 'reset' | 'fresh';

export const POWER_MODELS: readonly PowerModel[] = ['retain', 'reset', 'fresh'];

/** Refused before the transition starts: a bad model found at enterSleep would leave devices suspended. */
function checkPower(p: PowerModel): PowerModel {
  if (!POWER_MODELS.includes(p)) throw new RangeError(`power must be ${POWER_MODELS.join(', ')}, got ${typeof p === 'string' ? `'${String(p).slice(0, 40)}'` : String(p)}`);
  return p;
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
  readonly machine: Machine;
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
    this.machine = machine;
    this.drivers = drivers;
    this.bus = wrapBus ? wrapBus(machine.bus) : machine.bus;
    // Hardware and the handles to it are not kernel memory.
    keepOutOfImage(machine);
    keepOutOfImage(machine.bus);
    keepOutOfImage(machine.irq);
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
    const power = checkPower(opts.power ?? 'retain');
    return pmSuspend(this.kernel.dpm, { enterSleep: () => this.power(power) });
  }

  /**
   * Hibernate: image, thaw, power_down() (shutdown mode: device_shutdown();
   * platform mode: the poweroff phases), power off, power on with a boot
   * kernel that probes the devices afresh and quiesces them, then the jump
   * into the image.
   */
  hibernate(opts: HibernateSystemOptions = {}): PmTransition {
    const power = checkPower(opts.power ?? 'fresh');
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
        imageRoots: [this.kernel, image.handlers, dmaFor(mem), ...kernelGlobals()],
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

  close(): Promise<void> {
    return this.machine.close();
  }
}
