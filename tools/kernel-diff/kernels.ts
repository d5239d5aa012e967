// The two kernels kernel-diff holds against each other, behind one small
// interface: boot on a fresh machine with an AccessLog between kernel and
// bus, read the rng as /dev/hwrng does, remove and re-probe a device, and
// report what the kernel thinks of each slot. The model registers only the
// drivers the Linux build has, so both bind the same devices.
import type { Bus } from '../../core/bus.js';
import { rngDevRead, virtioRngDriver } from '../../core/drivers/rng.js';
import { kernel } from '../../core/kernel.js';
import type { VirtioDevice } from '../../core/virtio.js';
import type { Machine, MachineDevice } from '../../emulator/machine.js';
import { bootLinuxSystem, type LinuxKernel, type LinuxSystem } from '../../linux/host/index.js';
import { virtioMmioProbe, virtioMmioRemove } from '../../transports/mmio/probe.js';
import type { VirtioMmioDevice } from '../../transports/mmio/device.js';
import { VirtioSystem } from '../system.js';
import { AccessLog } from './access-log.js';

export type KernelName = 'model' | 'linux';

/** What a kernel says of a slot's device (read with the access log paused). */
export interface SlotView {
  /** The kernel's device name (virtio0, ...), null without a virtio device. */
  dev: string | null;
  driver: string | null;
  /** Negotiated features. */
  features: bigint;
}

export interface DiffBootOptions {
  devices: MachineDevice[];
  slots: number;
  /** Device-side setup before the kernel boots (e.g. a refused FEATURES_OK). */
  beforeBoot?: (machine: Machine) => void;
}

export interface DiffKernel {
  readonly name: KernelName;
  readonly machine: Machine;
  readonly log: AccessLog;
  /** Read n bytes of /dev/hwrng with the slot's rng current; the bytes got. */
  rngRead(slot: number, n: number): number;
  remove(slot: number): void;
  probe(slot: number): void;
  view(slot: number): SlotView;
  /** Kernel messages at error level, and warnings, as lines. */
  problems(): string[];
  close(): Promise<void>;
}

/** The modelled kernel (core/, transports/). */
class ModelKernel implements DiffKernel {
  readonly name = 'model';
  private readonly found = new Map<number, VirtioDevice>();

  constructor(
    private readonly sys: VirtioSystem,
    readonly log: AccessLog,
  ) {
    for (const d of sys.devices) this.found.set(d.slot, d.vdev);
  }

  get machine(): Machine {
    return this.sys.machine;
  }

  private vdev(slot: number): VirtioDevice {
    const v = this.found.get(slot);
    if (!v) throw new Error(`model: no virtio device in slot ${slot}`);
    return v;
  }

  rngRead(slot: number, n: number): number {
    const r = rngDevRead(this.vdev(slot), n);
    if (typeof r === 'number') throw new Error(`model: rng read of slot ${slot} failed with ${r}`);
    return r.length;
  }

  remove(slot: number): void {
    virtioMmioRemove(this.vdev(slot) as VirtioMmioDevice);
    this.found.delete(slot);
  }

  probe(slot: number): void {
    const m = this.sys.machine;
    const r = virtioMmioProbe(this.sys.bus, m.slotAddr(slot), slot, this.sys.kernel.virtioBus);
    if (typeof r === 'number') throw new Error(`model: probe of slot ${slot} failed with ${r}`);
    this.found.set(slot, r);
  }

  view(slot: number): SlotView {
    const v = this.found.get(slot);
    return { dev: v?.name ?? null, driver: v?.driver?.name ?? null, features: v?.features ?? 0n };
  }

  problems(): string[] {
    return [
      ...kernel.warnings.map((w) => `${w.dev}: ${w.kind} ${w.what} in ${w.where}`),
      ...kernel.messages.filter((m) => m.level === 'err').map((m) => `${m.dev}: ${m.msg}`),
    ];
  }

  close(): Promise<void> {
    return this.sys.close();
  }
}

/** Linux 6.12 in WebAssembly (linux/). */
class WasmLinux implements DiffKernel {
  readonly name = 'linux';

  constructor(
    private readonly sys: LinuxSystem,
    readonly log: AccessLog,
  ) {}

  get machine(): Machine {
    return this.sys.machine;
  }

  private get k(): LinuxKernel {
    return this.sys.kernel;
  }

  rngRead(slot: number, n: number): number {
    return this.k.rngRead(slot, n).length;
  }

  remove(slot: number): void {
    this.k.remove(slot);
  }

  probe(slot: number): void {
    this.k.probe(slot);
  }

  view(slot: number): SlotView {
    this.log.recording = false;
    try {
      const d = this.k.device(slot);
      return { dev: d?.dev ?? null, driver: d?.driver ?? null, features: d?.features ?? 0n };
    } finally {
      this.log.recording = true;
    }
  }

  problems(): string[] {
    return [
      ...this.k.warnings.map((w) => `${w.dev}: ${w.kind} ${w.what} in ${w.where} (${w.file}:${w.line})`),
      ...this.k.log.filter((m) => m.level === 'err').map((m) => `${m.dev}: ${m.msg}`),
    ];
  }

  close(): Promise<void> {
    return this.sys.close();
  }
}

export async function bootKernel(name: KernelName, opts: DiffBootOptions): Promise<DiffKernel> {
  let log: AccessLog | null = null;
  const wrapBus = (b: Bus): Bus => (log = new AccessLog(b, opts.slots));
  const common = { devices: opts.devices, slots: opts.slots, wrapBus, ...(opts.beforeBoot ? { beforeBoot: opts.beforeBoot } : {}) };
  if (name === 'model') {
    kernel.clear();
    const sys = await VirtioSystem.create({ ...common, drivers: [virtioRngDriver] });
    return new ModelKernel(sys, log!);
  }
  // Every window gets a platform device, as the model's kernel scans every window.
  const sys = await bootLinuxSystem({ ...common, linuxSlots: 'all' });
  return new WasmLinux(sys, log!);
}
