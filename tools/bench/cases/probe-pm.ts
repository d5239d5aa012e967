// Probe and system sleep through the real register path: the modelled kernel
// probes N virtio-rng devices (one per slot, no empty windows), and 32
// virtio-rtc devices bound to the driver with the noirq pair go through one
// suspend/resume cycle. Register accesses are counted with a Bus wrapper.
import { virtioRngDriver } from '../../../core/drivers/rng.js';
import { virtioRtcNoirqDriver } from '../../../core/drivers/rtc.js';
import { kernel } from '../../../core/kernel.js';
import { unregisterVirtioDevice, type VirtioDriver } from '../../../core/virtio.js';
import type { MachineDevice } from '../../../emulator/machine.js';
import type { DeviceType } from '../../../emulator/devices/catalog.js';
import { KernelInstance, VirtioSystem } from '../../system.js';
import { CountingBus } from '../counting-bus.js';
import type { BenchCase, BenchContext, BenchInstance } from '../case.js';

/** Boot a system of `count` copies of `device` whose kernel reaches the machine through a CountingBus. */
export async function countedSystem(
  ctx: BenchContext,
  device: DeviceType | MachineDevice,
  count: number,
  drivers: VirtioDriver[],
  ramSize = 64 << 20,
): Promise<{ sys: VirtioSystem; bus: CountingBus }> {
  let bus: CountingBus | null = null;
  const sys = await VirtioSystem.create({
    devices: Array.from({ length: count }, () => device),
    slots: count,
    ramSize,
    drivers,
    wrapBus: (b) => (bus = new CountingBus(b)),
    ...(ctx.boardModule ? { boardModule: ctx.boardModule } : {}),
  });
  if (sys.devices.length !== count || sys.devices.some((d) => !d.vdev.driver)) {
    await sys.close();
    throw new Error(`${typeof device === 'string' ? device : device.type}: ${sys.devices.length}/${count} devices probed and bound`);
  }
  return { sys, bus: bus! as CountingBus };
}

/** Unbind and unregister every device of a kernel (frees its rings), as a module unload would. */
export function removeAll(k: KernelInstance): void {
  for (const d of [...k.devices].reverse()) unregisterVirtioDevice(d.vdev);
}

export async function probeCase(ctx: BenchContext, count: number): Promise<BenchInstance> {
  return probeInstance(ctx, count, await countedSystem(ctx, 'rng', count, [virtioRngDriver]));
}

/** Time re-probes of a booted system whose boot probe `bus` counted. */
export function probeInstance(ctx: BenchContext, count: number, booted: { sys: VirtioSystem; bus: CountingBus }): BenchInstance {
  const drivers = [virtioRngDriver];
  const { sys, bus } = booted;
  // The boot probe, counted.
  const accesses = bus.accesses / count;
  let current: KernelInstance = sys.kernel;
  return {
    // Re-probe from scratch each time: untimed removal, timed probe.
    run(n) {
      let ns = 0;
      for (let i = 0; i < n; i++) {
        removeAll(current);
        kernel.clear();
        const t0 = process.hrtime.bigint();
        current = new KernelInstance(sys.bus, drivers, count);
        ns += Number(process.hrtime.bigint() - t0);
        if (current.devices.length !== count) throw new Error(`re-probe found ${current.devices.length}/${count} devices`);
      }
      return ns;
    },
    ...(count >= 32 ? { batchSize: 1, minBatches: ctx.quick ? 3 : 30 } : {}),
    teardown: () => sys.close(),
    extras: () => ({ devices: count, accesses_per_device: accesses }),
  };
}

async function suspendCase(ctx: BenchContext, count: number): Promise<BenchInstance> {
  return suspendInstance(ctx, count, await countedSystem(ctx, 'rtc', count, [virtioRtcNoirqDriver]));
}

/** What a suspend case needs of a system, whichever its kernel. */
export interface SleepingSystem {
  suspend(): { result: number };
  readonly dpm: { trimRecord(): void };
  close(): Promise<void>;
}

/** Time suspend/resume cycles of a booted system; its first cycle's accesses are counted per device. */
export async function suspendInstance(ctx: BenchContext, count: number, booted: { sys: SleepingSystem; bus: CountingBus }): Promise<BenchInstance> {
  const { sys, bus } = booted;
  bus.reset();
  const first = sys.suspend();
  if (first.result !== 0) {
    await sys.close();
    throw new Error(`suspend cycle failed: ${first.result}`);
  }
  const accesses = bus.accesses / count;
  return {
    run(n) {
      for (let i = 0; i < n; i++) {
        const t = sys.suspend();
        if (t.result !== 0) throw new Error(`suspend cycle failed: ${t.result}`);
        sys.dpm.trimRecord();
      }
    },
    batchSize: 1,
    minBatches: ctx.quick ? 10 : 100,
    teardown: () => sys.close(),
    extras: () => ({ devices: count, accesses_per_device: accesses }),
  };
}

export const cases: BenchCase[] = [1, 32, 256].map(
  (n): BenchCase => ({
    name: `probe.rng.${n}dev`,
    description: `probe ${n} virtio-rng device(s) (magic..DRIVER_OK, queue setup, first request) through the trap`,
    contend: n <= 32,
    setup: (ctx) => probeCase(ctx, n),
  }),
);

cases.push({
  name: 'pm.suspend_cycle.32dev',
  description: 'one suspend/resume cycle (freeze, freeze_noirq, restore_noirq, restore) of 32 virtio-rtc devices with the noirq pair',
  contend: true,
  setup: (ctx) => suspendCase(ctx, 32),
});
