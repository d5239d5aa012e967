// A machine whose guest RAM is a Linux kernel's memory, with that kernel
// booted on it: what VirtioSystem is for the TypeScript model.
import type { Bus } from '../../core/bus.js';
import { Machine, type MachineDevice, type MachineOptions } from '../../emulator/machine.js';
import { LinuxKernel, type LinuxBootOptions } from './kernel.js';

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
}

export interface LinuxSystem {
  machine: Machine;
  kernel: LinuxKernel;
  /** The bus the kernel drives (machine.bus, or what wrapBus made of it). */
  bus: Bus;
  /** Stop the kernel, then close the machine. */
  close(): Promise<void>;
}

export async function bootLinuxSystem(opts: LinuxSystemOptions = {}): Promise<LinuxSystem> {
  const { transport, wrapBus, beforeBoot, linuxSlots, waitTimeoutMs, ...machineOpts } = opts;
  const memory = await LinuxKernel.createMemory();
  const devices = (machineOpts.devices ?? []).map((d): MachineDevice => {
    const dev = typeof d === 'string' ? { type: d } : d;
    return transport && !dev.transport ? { ...dev, transport } : dev;
  });
  const machine = await Machine.create({ ...machineOpts, devices, ram: memory.buffer as unknown as SharedArrayBuffer });
  try {
    beforeBoot?.(machine);
    const bus = wrapBus ? wrapBus(machine.bus) : machine.bus;
    const kernel = await LinuxKernel.boot({
      machine,
      bus,
      memory,
      ...(linuxSlots !== undefined ? { slots: linuxSlots } : {}),
      ...(waitTimeoutMs !== undefined ? { waitTimeoutMs } : {}),
    });
    return {
      machine,
      kernel,
      bus,
      async close(): Promise<void> {
        kernel.close();
        await machine.close();
      },
    };
  } catch (e) {
    await machine.close();
    throw e;
  }
}
