// The same probe and suspend cases with Linux 6.12 (the WebAssembly build)
// as the kernel, beside the model's (probe-pm.ts): 32 virtio-rng devices
// probed by Linux's virtio_mmio and virtio_rng, and 32 virtio-rtc devices
// with the C noirq clock driver through one suspend/resume cycle. Skipped
// with a notice when the module is not built.
import { INSTALL_HINT } from '../../../linux/build/config.js';
import { BUILD_COMMAND, bootLinuxSystem, linuxBuilt, type LinuxSystem } from '../../../linux/host/index.js';
import { BenchSkip, type BenchCase, type BenchContext, type BenchInstance } from '../case.js';
import { CountingBus } from '../counting-bus.js';
import { suspendInstance } from './probe-pm.js';

async function linuxSystem(type: 'rng' | 'rtc', count: number): Promise<{ sys: LinuxSystem; bus: CountingBus }> {
  if (!linuxBuilt()) throw new BenchSkip(`the Linux kernel is not built: run ${BUILD_COMMAND} (needs ${INSTALL_HINT})`);
  let bus: CountingBus | null = null;
  const sys = await bootLinuxSystem({
    devices: Array.from({ length: count }, () => type),
    slots: count,
    drivers: [type === 'rng' ? 'virtio_rng' : 'virtio_rtc_noirq'],
    wrapBus: (b) => (bus = new CountingBus(b)),
  });
  const bound = sys.kernel.devices().filter((d) => d.driver).length;
  if (bound !== count) {
    await sys.close();
    throw new Error(`${type}: ${bound}/${count} devices bound by Linux`);
  }
  return { sys, bus: bus! as CountingBus };
}

async function probeCase(ctx: BenchContext, count: number): Promise<BenchInstance> {
  const { sys, bus } = await linuxSystem('rng', count);
  const accesses = bus.accesses / count;
  return {
    // Untimed remove of every device (virtio_mmio unbinds), timed probe of all of them.
    run(n) {
      let ns = 0;
      for (let i = 0; i < n; i++) {
        for (let s = count - 1; s >= 0; s--) sys.kernel.remove(s);
        const t0 = process.hrtime.bigint();
        for (let s = 0; s < count; s++) if (!sys.kernel.probe(s)) throw new Error(`slot ${s}: no driver bound on re-probe`);
        ns += Number(process.hrtime.bigint() - t0);
      }
      return ns;
    },
    batchSize: 1,
    minBatches: ctx.quick ? 3 : 30,
    teardown: () => sys.close(),
    extras: () => ({ devices: count, accesses_per_device: accesses }),
  };
}

async function suspendCase(ctx: BenchContext, count: number): Promise<BenchInstance> {
  return suspendInstance(ctx, count, await linuxSystem('rtc', count));
}

export const cases: BenchCase[] = [
  {
    name: 'probe.rng.32dev.linux',
    description: 'probe of 32 virtio-rng devices by Linux 6.12 (virtio_mmio, virtio_rng) in WebAssembly, through the trap',
    ratioTo: 'probe.rng.32dev',
    setup: (ctx) => probeCase(ctx, 32),
  },
  {
    name: 'pm.suspend_cycle.32dev.linux',
    description: 'one suspend/resume cycle of 32 virtio-rtc devices with the C noirq clock driver under Linux 6.12 in WebAssembly',
    ratioTo: 'pm.suspend_cycle.32dev',
    setup: (ctx) => suspendCase(ctx, 32),
  },
];
