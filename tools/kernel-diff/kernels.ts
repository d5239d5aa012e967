// The two kernels kernel-diff holds against each other, behind one small
// interface: boot on a fresh machine with an AccessLog between kernel and
// bus, read the rng as /dev/hwrng does, remove and re-probe a device, and
// report what the kernel thinks of each slot. The model registers only the
// drivers the Linux build has, so both bind the same devices.
import type { Bus } from '../../core/bus.js';
import { clockConsumerDriver } from '../../core/drivers/clock-consumer.js';
import { pmTestDriver } from '../../core/drivers/pm-test.js';
import { rngDevRead, virtioRngDriver } from '../../core/drivers/rng.js';
import { virtioRtcDriver, virtioRtcNoirqDriver } from '../../core/drivers/rtc.js';
import { kernel } from '../../core/kernel.js';
import type { PmCallRecord } from '../../core/pm/dpm.js';
import type { PmTransition } from '../../core/pm/system.js';
import type { VirtioDevice, VirtioDriver } from '../../core/virtio.js';
import type { BusKind, Machine, MachineDevice } from '../../emulator/machine.js';
import { bootLinuxSystem, type LinuxKernel, type LinuxSystem } from '../../linux/host/index.js';
import { virtioMmioProbe, virtioMmioRemove } from '../../transports/mmio/probe.js';
import type { VirtioMmioDevice } from '../../transports/mmio/device.js';
import { VirtioSystem } from '../system.js';
import { AccessLog } from './access-log.js';
import type { DiffDriver, DiffTweak, PmStep } from './scenarios.js';

export type KernelName = 'model' | 'linux';

/** What a kernel says of a slot's device (read with the access log paused). */
export interface SlotView {
  /** The kernel's device name (virtio0, ...), null without a virtio device. */
  dev: string | null;
  driver: string | null;
  /** Negotiated features. */
  features: bigint;
}

/** A sleep/wake cycle as both kernels report it. */
export interface PmOutcome {
  result: number;
  failedStep: string | null;
  poweredOff: boolean | null;
  /** Every PM callback run: "[boot ]phase device result[ injected]". */
  records: string[];
}

export function pmOutcome(t: PmTransition): PmOutcome {
  return {
    result: t.result,
    failedStep: t.failedStep ?? null,
    poweredOff: t.poweredOff ?? null,
    records: t.records.map(
      (r: PmCallRecord) => `${r.kernel ? 'boot ' : ''}${r.phase} ${r.device} ${r.result}${r.injected ? ' injected' : ''}${r.error ? ' threw' : ''}`,
    ),
  };
}

export interface DiffBootOptions {
  devices: MachineDevice[];
  slots: number;
  /** Drivers in match order (default virtio_rng only). */
  drivers?: readonly DiffDriver[];
  tweak?: DiffTweak;
  /**
   * Where the board runs (default in-thread: device work runs right after the
   * access that caused it, so it is timed the same for both kernels; in the
   * worker, whether an EVENT_IDX kick is needed depends on thread timing).
   */
  bus?: BusKind;
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
  /** One sleep/wake cycle through the PM core. */
  pm(step: PmStep): PmOutcome;
  /** dev->noirq_state of the slot's virtio device, null without one. */
  noirqState(slot: number): number | null;
  /** Warnings, then kernel messages at error level, as "dev: text" lines (the same shape for both kernels). */
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

  pm(step: PmStep): PmOutcome {
    const sys = this.sys;
    for (const f of step.fail ?? []) sys.injectPmFailure(f);
    try {
      const t =
        step.kind === 'suspend'
          ? sys.suspend({ power: step.power })
          : sys.hibernate({ power: step.power, ...(step.mode ? { mode: step.mode } : {}), ...(step.bootFail ? { bootInjections: step.bootFail } : {}) });
      // A boot kernel that carried on has registered its own devices.
      for (const d of sys.devices) this.found.set(d.slot, d.vdev);
      return pmOutcome(t);
    } finally {
      sys.dpm.injections.length = 0;
    }
  }

  noirqState(slot: number): number | null {
    return this.found.get(slot)?.noirqState ?? null;
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

  pm(step: PmStep): PmOutcome {
    const sys = this.sys;
    for (const f of step.fail ?? []) sys.injectPmFailure(f);
    try {
      const t =
        step.kind === 'suspend'
          ? sys.suspend({ power: step.power })
          : sys.hibernate({ power: step.power, ...(step.mode ? { mode: step.mode } : {}), ...(step.bootFail ? { bootInjections: step.bootFail } : {}) });
      return pmOutcome(t);
    } finally {
      sys.dpm.injections.length = 0;
    }
  }

  noirqState(slot: number): number | null {
    return this.quiet(() => this.k.noirqState(slot));
  }

  view(slot: number): SlotView {
    return this.quiet(() => {
      const d = this.k.device(slot);
      return { dev: d?.dev ?? null, driver: d?.driver ?? null, features: d?.features ?? 0n };
    });
  }

  /** The host asks the kernel (its answers read Status): not the kernel's own accesses. */
  private quiet<T>(fn: () => T): T {
    this.log.recording = false;
    try {
      return fn();
    } finally {
      this.log.recording = true;
    }
  }

  problems(): string[] {
    return [
      ...this.k.warnings.map((w) => `${w.dev}: ${w.kind} ${w.what} in ${w.where}`),
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
  const common = {
    devices: opts.devices,
    slots: opts.slots,
    bus: opts.bus ?? 'inthread',
    wrapBus,
    ...(opts.beforeBoot ? { beforeBoot: opts.beforeBoot } : {}),
  };
  const drivers = opts.drivers ?? ['virtio_rng'];
  if (name === 'model') {
    kernel.clear();
    const sys = await VirtioSystem.create({ ...common, drivers: drivers.map(modelDriver) });
    const k = new ModelKernel(sys, log!);
    if (opts.tweak) tweakModel(sys, opts.tweak);
    return k;
  }
  // Every window gets a platform device, as the model's kernel scans every window.
  const sys = await bootLinuxSystem({ ...common, linuxSlots: 'all', drivers });
  if (opts.tweak) {
    const { slot, resetVqs, noirqSafe } = opts.tweak;
    sys.kernel.test.configOps(slot, { resetVqs: resetVqs === false, noirqSafe: noirqSafe === false });
  }
  return new WasmLinux(sys, log!);
}

/** The model's twin of a driver the Linux build has. */
function modelDriver(d: DiffDriver): VirtioDriver {
  if (d === 'virtio_rng') return virtioRngDriver;
  if (d === 'virtio_rtc_noirq') return virtioRtcNoirqDriver;
  if (d === 'virtio_rtc') return virtioRtcDriver;
  if (d.driver === 'clock_consumer') return clockConsumerDriver(d.deviceId, d.clock);
  return pmTestDriver(d.deviceId, { queues: d.queues, callbacks: d.callbacks });
}

/** The transport's config ops without reset_vqs, or not noirq-safe, for one device: the refusals' precondition. */
function tweakModel(sys: VirtioSystem, t: DiffTweak): void {
  const vdev = sys.device(t.slot);
  if (!vdev) throw new Error(`model: no device in slot ${t.slot} to tweak`);
  const ops = { ...vdev.config };
  if (t.resetVqs === false) delete ops.resetVqs;
  const config = t.noirqSafe === false ? { ...ops, noirqSafe: false } : ops;
  Object.defineProperty(vdev, 'config', { value: config });
}
