// A machine with a modelled kernel on it: the embedding API for test
// harnesses. The kernel side (virtio bus, transports, drivers, PM core) runs
// on this thread and reaches the devices only through the machine's bus.
import type { Bus, IrqChip, IrqHandler } from '../core/bus.js';
import { dmaFor } from '../core/dma.js';
import { drivers as shippedDrivers } from '../core/drivers/index.js';
import { keepOutOfImage, kernelGlobals } from '../core/kernel.js';
import { DpmCore, type PmDevice, type PmInjection } from '../core/pm/dpm.js';
import { type PmTransition, hibernate, pmSuspend } from '../core/pm/system.js';
import { VirtioBus, type VirtioDevice, type VirtioDriver, registerVirtioDriver } from '../core/virtio.js';
import { type FoundDevice, transportScanners } from '../transports/index.js';
import { Machine, type MachineOptions } from '../emulator/machine.js';

export type PowerModel = 'retain' | 'reset' | 'fresh';

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
    for (const d of drivers) registerVirtioDriver(d, this.virtioBus);
    for (const t of transportScanners) {
      const r = t.scan(bus, slots, this.virtioBus);
      this.devices.push(...r.devices);
      this.errors.push(...r.errors);
    }
    this.devices.sort((a, b) => a.slot - b.slot);
    for (const d of this.devices) this.dpm.devicePmAdd(pmDevice(d));
  }

  /** The device in a slot. */
  device(slot: number): VirtioDevice | undefined {
    return this.devices.find((d) => d.slot === slot)?.vdev;
  }
}

function pmDevice(d: FoundDevice): PmDevice<VirtioDevice> {
  return { name: d.vdev.name, dev: d.vdev, ops: d.pm, irqLine: d.line, slot: d.slot };
}

/**
 * The bus as a second kernel sees it: the same registers, a GuestMemory of
 * its own (so it gets its own DMA allocator) and interrupt handlers that can
 * be dropped at once when that kernel is gone.
 */
export class BootKernelBus implements Bus {
  readonly mem;
  readonly irq: IrqChip;
  private readonly handlers: [number, IrqHandler][] = [];

  constructor(private readonly base: Bus) {
    this.mem = { ...base.mem };
    const tracked = this.handlers;
    this.irq = Object.assign(Object.create(base.irq) as IrqChip, {
      request(line: number, h: IrqHandler): void {
        tracked.push([line, h]);
        base.irq.request(line, h);
      },
      free(line: number, h: IrqHandler): void {
        const i = tracked.findIndex(([l, x]) => l === line && x === h);
        if (i >= 0) tracked.splice(i, 1);
        base.irq.free(line, h);
      },
    });
  }

  read(addr: number, width: 1 | 2 | 4): number {
    return this.base.read(addr, width);
  }

  write(addr: number, width: 1 | 2 | 4, value: number): void {
    this.base.write(addr, width, value);
  }

  writePosted(addr: number, width: 1 | 2 | 4, value: number): void {
    const base = this.base;
    if (base.writePosted) base.writePosted(addr, width, value);
    else base.write(addr, width, value);
  }

  /** The kernel is gone: its interrupt handlers with it. */
  discard(): void {
    for (const [line, h] of this.handlers.splice(0)) this.base.irq.free(line, h);
  }
}

export class VirtioSystem {
  readonly machine: Machine;
  readonly kernel: KernelInstance;
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
    this.kernel = new KernelInstance(this.bus, drivers, machine.config.slots);
  }

  /** Start a machine and boot a kernel on it: every device probed and bound. */
  static async create(opts: SystemOptions = {}): Promise<VirtioSystem> {
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

  /** Make a PM callback of a device fail (see DpmCore.inject). */
  injectPmFailure(i: PmInjection): void {
    this.kernel.dpm.inject(i);
  }

  private power(model: PowerModel): void {
    const r = this.machine.control({ op: 'power', model });
    if (!r.ok) throw new Error(`power ${model}: ${r.error}`);
  }

  /** Suspend to RAM and resume. */
  suspend(opts: SleepOptions = {}): PmTransition {
    const power = opts.power ?? 'retain';
    return pmSuspend(this.kernel.dpm, { enterSleep: () => this.power(power) });
  }

  /**
   * Hibernate: image, thaw, power off, power on with a boot kernel that probes
   * the devices afresh and quiesces them, then the jump into the image.
   */
  hibernate(opts: SleepOptions = {}): PmTransition {
    const power = opts.power ?? 'fresh';
    const mem = this.machine.mem;
    let bootBus: BootKernelBus | null = null;
    const t = hibernate(
      this.kernel.dpm,
      {
        powerOff: () => this.power(power),
        bootKernel: () => {
          // Power-on resets the interrupt controller: the boot kernel starts
          // with every line enabled, not with the image kernel's noirq masks
          // (virtio-ccw cannot even probe without its I/O interrupt).
          for (let line = 0; line < this.machine.irq.lines; line++) this.machine.irq.unmask(line);
          bootBus = new BootKernelBus(this.bus);
          const boot = new KernelInstance(bootBus, this.drivers, this.machine.config.slots, 'boot');
          // Observers of the system's PM (tests, the trace) see the boot kernel's callbacks too.
          boot.dpm.hooks.push(...this.kernel.dpm.hooks);
          return boot.dpm;
        },
      },
      {
        imageRoots: [this.kernel, dmaFor(mem), ...kernelGlobals()],
        ram: mem.u8,
      },
    );
    (bootBus as BootKernelBus | null)?.discard();
    return t;
  }

  close(): Promise<void> {
    return this.machine.close();
  }
}
