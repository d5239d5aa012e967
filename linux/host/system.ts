// A machine whose guest RAM is a Linux kernel's memory, with that kernel
// booted on it: what VirtioSystem is for the TypeScript model, system
// sleep included. The PM core is the model's (core/pm: DpmCore, pmSuspend,
// hibernate); its dpm lists hold the kernel's platform devices and call
// their dev_pm_ops through the module's exports.
import type { Bus } from '../../core/bus.js';
import { keepOutOfImage } from '../../core/kernel.js';
import { DpmCore, type PmInjection } from '../../core/pm/dpm.js';
import { hibernate, pmSuspend, type HibernationMode, type PmTransition } from '../../core/pm/system.js';
import { Machine, type MachineDevice, type MachineOptions } from '../../emulator/machine.js';
import type { PowerModel } from '../../emulator/board-contract.js';
import { LinuxKernel, type LinuxBootOptions, type LinuxPmDev } from './kernel.js';

/** What the platform does to devices across a sleep (machine.control({ op: 'power' })); `snapshot` is the board's own, so Linux gets it too. */
export type LinuxPowerModel = PowerModel;

export interface LinuxSystemOptions extends Omit<MachineOptions, 'ram' | 'ramSize'> {
  /** Transport of the devices that name none (default 'mmio', i.e. virtio-mmio Version 2). */
  transport?: NonNullable<MachineDevice['transport']>;
  /** Put something between the kernel and the machine's bus (a tracer, a fault injector). */
  wrapBus?: (bus: Bus) => Bus;
  /** Device-side setup before the kernel boots (e.g. inject a fault the probe should meet). */
  beforeBoot?: (machine: Machine) => void;
  /** Which windows get platform devices (default the occupied mmio slots). */
  linuxSlots?: LinuxBootOptions['slots'];
  /** Host deadline for one wait_for_completion*, ms (default 5000). */
  waitTimeoutMs?: number;
  /** The virtio drivers to register, in order (default LINUX_DEFAULT_DRIVERS). */
  drivers?: LinuxBootOptions['drivers'];
}

export interface LinuxSleepOptions {
  /** Device power across the sleep (default: retain for suspend, fresh for hibernate). */
  power?: LinuxPowerModel;
}

export interface LinuxHibernateOptions extends LinuxSleepOptions {
  /** hibernation_mode (default 'shutdown', Linux's default on a board without platform hibernation ops). */
  mode?: HibernationMode;
  /** Failures for the boot kernel's PM core (its quiesce phases), this hibernation only. */
  bootInjections?: readonly PmInjection[];
}

export interface LinuxSystem {
  machine: Machine;
  /**
   * The running kernel. A hibernation whose boot kernel fails to quiesce
   * never jumps back: the boot kernel carries on and becomes this.
   */
  readonly kernel: LinuxKernel;
  /** The bus the kernel drives (machine.bus, or what wrapBus made of it). */
  bus: Bus;
  /** The running kernel's PM core: its devices are the slots with a virtio device. */
  readonly dpm: DpmCore<LinuxPmDev>;
  /**
   * The boot kernel of the last hibernation that got that far: dead after
   * the jump into the image (closed, its handlers off the controller), kept
   * for its log and warnings.
   */
  readonly lastBootKernel: LinuxKernel | null;
  /** Make a PM callback of a device fail in every transition from now on (see DpmCore.inject), until clearPmFailures(). */
  injectPmFailure(i: PmInjection): void;
  /** Drop an injection made with injectPmFailure() (the same object), or all of them. */
  clearPmFailures(i?: PmInjection): void;
  /** Suspend to RAM and resume (pmSuspend of core/pm/system.ts). */
  suspend(opts?: LinuxSleepOptions): PmTransition;
  /**
   * Hibernate (hibernate() of core/pm/system.ts): freeze, image (guest RAM
   * and the kernel's host-side state), thaw, poweroff, power loss (RAM
   * zeroed), a fresh boot kernel on the same memory and machine that probes
   * and quiesces, the jump back: the image over RAM, the original instance
   * running its restore phases.
   */
  hibernate(opts?: LinuxHibernateOptions): PmTransition;
  /** Stop the kernel, then close the machine. */
  close(): Promise<void>;
}

function newDpm(kernel: LinuxKernel, bus: Bus, tag?: 'boot'): DpmCore<LinuxPmDev> {
  const dpm = new DpmCore<LinuxPmDev>(tag ? { irq: bus.irq, kernel: kernel.pm, tag } : { irq: bus.irq, kernel: kernel.pm });
  for (const pd of kernel.pmDevices()) dpm.devicePmAdd(pd);
  return dpm;
}

class LinuxSystemImpl implements LinuxSystem {
  private current: LinuxKernel;
  private currentDpm: DpmCore<LinuxPmDev>;
  lastBootKernel: LinuxKernel | null = null;

  constructor(
    readonly machine: Machine,
    kernel: LinuxKernel,
    readonly bus: Bus,
    private readonly memory: WebAssembly.Memory,
    private readonly boot: Omit<LinuxBootOptions, 'memory'>,
  ) {
    this.current = kernel;
    this.currentDpm = newDpm(kernel, bus);
  }

  get kernel(): LinuxKernel {
    return this.current;
  }

  get dpm(): DpmCore<LinuxPmDev> {
    return this.currentDpm;
  }

  injectPmFailure(i: PmInjection): void {
    this.currentDpm.inject(i);
  }

  clearPmFailures(i?: PmInjection): void {
    this.currentDpm.clearInjections(i);
  }

  private power(model: LinuxPowerModel): void {
    const r = this.machine.control({ op: 'power', model });
    if (!r.ok) throw new Error(`power ${model}: ${r.error}`);
  }

  suspend(opts: LinuxSleepOptions = {}): PmTransition {
    const power = opts.power ?? 'retain';
    return pmSuspend(this.currentDpm, { enterSleep: () => this.power(power) });
  }

  hibernate(opts: LinuxHibernateOptions = {}): PmTransition {
    const power = opts.power ?? 'fresh';
    const image = this.current;
    const imageDpm = this.currentDpm;
    const ram = new Uint8Array(this.memory.buffer as unknown as SharedArrayBuffer);
    let boot: LinuxKernel | null = null;
    let bootDpm: DpmCore<LinuxPmDev> | null = null;
    const t = hibernate(
      imageDpm,
      {
        powerOff: () => {
          this.power(power);
          // Power loss: the controller forgets the image kernel's handlers,
          // and guest RAM its contents (wasm-ld's init flag with them).
          image.disconnectIrqs();
          ram.fill(0);
        },
        bootKernel: () => {
          // Power-on resets the interrupt controller: every line enabled.
          for (let line = 0; line < this.machine.irq.lines; line++) this.machine.irq.unmask(line);
          boot = LinuxKernel.bootSync({ ...this.boot, memory: this.memory, slots: image.slots, drivers: image.drivers });
          this.lastBootKernel = boot;
          bootDpm = newDpm(boot, this.bus, 'boot');
          // Observers of the system's PM (tests, the trace) see the boot kernel's callbacks too.
          bootDpm.hooks.push(...imageDpm.hooks);
          for (const i of opts.bootInjections ?? []) bootDpm.inject(i);
          return bootDpm;
        },
        enterImage: () => {
          // The boot kernel jumps into the image: it is gone, its handlers
          // with it, and the image kernel is wired to the controller again.
          (boot as LinuxKernel | null)?.close();
          image.reconnectIrqs();
        },
      },
      { imageRoots: [imageDpm, ...image.imageRoots()], ram, kernel: image.pm, ...(opts.mode ? { mode: opts.mode } : {}) },
    );
    if (t.failedStep === 'quiesce' && boot && bootDpm) {
      // The image kernel never runs again; the boot kernel carries on.
      const b = boot as LinuxKernel;
      const bd = bootDpm as DpmCore<LinuxPmDev>;
      image.close(new Error('hibernation: the boot kernel failed to quiesce; the image was not restored'));
      bd.clearInjections();
      this.current = b;
      this.currentDpm = bd;
    }
    return t;
  }

  async close(): Promise<void> {
    this.current.close();
    await this.machine.close();
  }
}

export async function bootLinuxSystem(opts: LinuxSystemOptions = {}): Promise<LinuxSystem> {
  const { transport, wrapBus, beforeBoot, linuxSlots, waitTimeoutMs, drivers, ...machineOpts } = opts;
  const memory = await LinuxKernel.createMemory();
  const devices = (machineOpts.devices ?? []).map((d): MachineDevice => {
    const dev = typeof d === 'string' ? { type: d } : d;
    return transport && !dev.transport ? { ...dev, transport } : dev;
  });
  const machine = await Machine.create({ ...machineOpts, devices, ram: memory.buffer as unknown as SharedArrayBuffer });
  try {
    beforeBoot?.(machine);
    const bus = wrapBus ? wrapBus(machine.bus) : machine.bus;
    // Hardware and the handles to it are not kernel memory.
    keepOutOfImage(machine);
    keepOutOfImage(machine.bus);
    keepOutOfImage(machine.irq);
    keepOutOfImage(bus);
    const boot: Omit<LinuxBootOptions, 'memory'> = {
      machine,
      bus,
      ...(linuxSlots !== undefined ? { slots: linuxSlots } : {}),
      ...(waitTimeoutMs !== undefined ? { waitTimeoutMs } : {}),
      ...(drivers !== undefined ? { drivers } : {}),
    };
    const kernel = await LinuxKernel.boot({ ...boot, memory });
    return new LinuxSystemImpl(machine, kernel, bus, memory, boot);
  } catch (e) {
    await machine.close();
    throw e;
  }
}
