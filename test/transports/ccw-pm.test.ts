// System sleep over virtio-ccw with the PM core (core/pm): ordinary
// freeze/restore across suspend and hibernation (with a fresh boot kernel),
// the core refusing a restore_noirq driver on a transport that is not
// noirq_safe, and what happens when a ccw operation is forced into a noirq
// phase anyway: a CcwDeadlockError after the deadline instead of a hang,
// with the machine still usable afterwards.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus } from '../../core/bus.js';
import { dmaFor } from '../../core/dma.js';
import { driverForDeviceId, drivers } from '../../core/drivers/index.js';
import { viortcDev, viortcRead, virtioRtcDriver, virtioRtcNoirqDriver } from '../../core/drivers/rtc.js';
import { virtioRngDriver, virtioRngRead } from '../../core/drivers/rng.js';
import { keepOutOfImage, kernel, kernelGlobals } from '../../core/kernel.js';
import { DpmCore } from '../../core/pm/dpm.js';
import type { DevPmOps } from '../../core/pm/pm.js';
import { hibernate, pmSuspend } from '../../core/pm/system.js';
import { CSS_REG, CSS_STATUS_PENDING } from '../../core/uapi/ccw.js';
import { EIO, EOPNOTSUPP } from '../../core/uapi/errno.js';
import {
  VirtioBus,
  registerVirtioDriver,
  virtioDeviceFreeze,
  virtioDeviceFreezeNoirq,
  virtioDeviceRestoreNoirq,
  type VirtioDevice,
  type VirtioDriver,
} from '../../core/virtio.js';
import { BUILTIN_DEVICE_TYPES } from '../../emulator/devices/catalog.js';
import { Machine, type MachineDevice } from '../../emulator/machine.js';
import { KernelBus } from '../../tools/system.js';
import {
  CcwDeadlockError,
  ccwOptions,
  virtioCcwParams,
  virtioCcwPmOps,
  virtioCcwScan,
  type VirtioCcwDevice,
} from '../../transports/ccw/index.js';
import { virtioMmioPmOps, virtioMmioScan } from '../../transports/mmio/index.js';

const machines: Machine[] = [];

beforeEach(() => {
  kernel.clear();
  kernel.noirqDepth = 0;
  virtioCcwParams.useAirq = true;
  ccwOptions.ioTimeoutMs = 1000;
});

afterEach(async () => {
  kernel.noirqDepth = 0;
  await Promise.all(machines.splice(0).map((m) => m.close()));
});

/** One modelled kernel: its virtio bus, the ccw (and mmio) devices it found, their PM list. */
class Kernel {
  readonly virtioBus = new VirtioBus();
  readonly dpm: DpmCore<VirtioDevice>;
  readonly devices: VirtioDevice[] = [];

  constructor(
    bus: Bus,
    slots: number,
    drvs: VirtioDriver[],
    pmOps: (vdev: VirtioDevice) => DevPmOps<VirtioDevice> = () => virtioCcwPmOps,
  ) {
    this.dpm = new DpmCore<VirtioDevice>({ irq: bus.irq });
    for (const d of drvs) registerVirtioDriver(d, this.virtioBus);
    const found: { slot: number; vdev: VirtioDevice; pm: DevPmOps<VirtioDevice> }[] = [];
    for (const r of virtioMmioScan(bus, slots, this.virtioBus).slots) if (r.device) found.push({ slot: r.slot, vdev: r.device, pm: virtioMmioPmOps });
    for (const r of virtioCcwScan(bus, slots, this.virtioBus).slots) if (r.device) found.push({ slot: r.slot, vdev: r.device, pm: pmOps(r.device) });
    found.sort((a, b) => a.slot - b.slot);
    for (const f of found) {
      this.devices.push(f.vdev);
      this.dpm.devicePmAdd({ name: f.vdev.name, dev: f.vdev, ops: f.pm, irqLine: f.slot, slot: f.slot });
    }
  }

  device(slot: number): VirtioDevice {
    const d = this.dpm.devices.find((p) => p.slot === slot);
    if (!d) throw new Error(`no device in slot ${slot}`);
    return d.dev;
  }
}

/** The bus as a second (boot) kernel sees it: its own DMA allocator, its handlers dropped when it is gone. */
const SHIPPED = (): VirtioDriver[] => [...drivers.values()].map((d) => d.driver).filter((d) => d !== virtioRtcNoirqDriver);

async function boot(devices: MachineDevice[], drvs: VirtioDriver[] = SHIPPED(), pmOps?: (v: VirtioDevice) => DevPmOps<VirtioDevice>) {
  const m = await Machine.create({ devices, slots: 4, ramSize: 8 << 20 });
  machines.push(m);
  keepOutOfImage(m);
  keepOutOfImage(m.bus);
  keepOutOfImage(m.irq);
  const k = new Kernel(m.bus, 4, drvs, pmOps);
  return { m, k };
}

function power(m: Machine, model: 'retain' | 'reset' | 'fresh'): void {
  const r = m.control({ op: 'power', model });
  if (!r.ok) throw new Error(r.error);
}

function exercise(vdev: VirtioDevice): string[] {
  return driverForDeviceId(vdev.id.device)!.exercise(vdev, { bytes: 1024 }).failures;
}

function rngRead(vdev: VirtioDevice, n: number): number {
  const r = virtioRngRead(vdev, n, true);
  return typeof r === 'number' ? r : r.length;
}

const ALL_CCW: MachineDevice[] = BUILTIN_DEVICE_TYPES.map((type) => ({ type, transport: 'ccw' as const }));

describe('suspend and hibernation over ccw', () => {
  it.each(['retain', 'reset', 'fresh'] as const)('suspend/resume (power %s): freeze and restore every device, I/O works after', async (model) => {
    const { m, k } = await boot(ALL_CCW, [virtioRngDriver, ...SHIPPED()]);
    expect(k.devices).toHaveLength(4);
    for (const d of k.devices) expect(exercise(d)).toEqual([]);
    const t = pmSuspend(k.dpm, { enterSleep: () => power(m, model) });
    expect(t.result).toBe(0);
    const phases = t.records.map((r) => `${r.phase}:${r.slot}`);
    expect(phases.filter((p) => p.startsWith('suspend:'))).toHaveLength(4);
    expect(phases.filter((p) => p.startsWith('resume:'))).toHaveLength(4);
    expect(t.records.every((r) => r.result === 0)).toBe(true);
    for (const d of k.devices) {
      expect((d as VirtioCcwDevice).revision).toBe(2);
      expect(d.config.getStatus(d)).toBe(0x0f);
      expect(exercise(d)).toEqual([]);
    }
    // No ccw operation ran while device interrupts were off.
    expect(kernel.warnings.filter((w) => w.kind === 'noirq-context')).toEqual([]);
  });

  it('hibernation with a fresh boot kernel: freeze, image, thaw, poweroff, boot-kernel quiesce, restore', async () => {
    // Platform mode (a board with platform hibernation ops): the poweroff phases run.
    const { m, k } = await boot(ALL_CCW);
    for (const d of k.devices) expect(exercise(d)).toEqual([]);
    let bootBus: KernelBus | null = null;
    let bootKernel: Kernel | null = null;
    const t = hibernate(
      k.dpm,
      {
        powerOff: () => power(m, 'fresh'),
        bootKernel: () => {
          // Power-on: the interrupt controller starts with every line enabled.
          for (let line = 0; line < m.irq.lines; line++) m.irq.unmask(line);
          bootBus = new KernelBus(m.bus, { ownMemory: true });
          bootKernel = new Kernel(bootBus, 4, SHIPPED());
          return bootKernel.dpm;
        },
      },
      { imageRoots: [k, dmaFor(m.mem), ...kernelGlobals()], ram: m.mem.u8, mode: 'platform' },
    );
    (bootBus as KernelBus | null)?.discard();
    expect(t.result).toBe(0);
    expect((bootKernel as Kernel | null)?.devices).toHaveLength(4);
    const bootPhases = t.records.filter((r) => r.kernel === 'boot').map((r) => r.phase);
    expect(bootPhases.filter((p) => p === 'freeze')).toHaveLength(4);
    const imagePhases = t.records.filter((r) => r.kernel !== 'boot').map((r) => r.phase);
    for (const p of ['freeze', 'thaw', 'poweroff', 'restore']) expect(imagePhases.filter((x) => x === p), p).toHaveLength(4);
    expect(t.records.every((r) => r.result === 0)).toBe(true);
    for (const d of k.devices) {
      expect(d.config.getStatus(d)).toBe(0x0f);
      expect(exercise(d)).toEqual([]);
    }
  });
});

describe('noirq and ccw', () => {
  it('a driver with restore_noirq is refused at virtio_device_freeze with -EOPNOTSUPP; the system resumes cleanly', async () => {
    const { m, k } = await boot(
      [
        { type: 'rtc', transport: 'ccw' },
        { type: 'rng', transport: 'ccw' },
      ],
      [virtioRtcNoirqDriver, virtioRngDriver],
    );
    const rtc = k.device(0);
    const rng = k.device(1);
    expect(rtc.driver).toBe(virtioRtcNoirqDriver);
    expect(virtioDeviceFreeze(rtc)).toBe(-EOPNOTSUPP);
    expect(rtc.configCoreEnabled).toBe(true);
    expect(rtc.messages.some((x) => x.msg === 'transport does not support noirq PM')).toBe(true);
    // The noirq helpers refuse too, before any channel program.
    expect(virtioDeviceFreezeNoirq(rtc)).toBe(-EOPNOTSUPP);
    expect(virtioDeviceRestoreNoirq(rtc)).toBe(-EOPNOTSUPP);

    const t = pmSuspend(k.dpm, { enterSleep: () => power(m, 'retain') });
    expect(t.result).toBe(-EOPNOTSUPP);
    expect(t.failedStep).toBe('suspend');
    // Children first: rng (slot 1) suspended, then rtc refused; rng resumed.
    expect(t.records.map((r) => `${r.phase}:${r.slot}:${r.result}`)).toEqual(['suspend:1:0', `suspend:0:${-EOPNOTSUPP}`, 'resume:1:0']);
    expect(m.irq.isMasked(0) || m.irq.isMasked(1)).toBe(false);
    expect(typeof viortcRead(viortcDev(rtc)!, 0)).toBe('bigint');
    expect(rngRead(rng, 100)).toBe(100);
    expect(rtc.config.getStatus(rtc)).toBe(0x0f);
  });

  it('the same driver is fine on virtio-mmio beside a ccw device', async () => {
    const { m, k } = await boot(
      [
        { type: 'rtc', transport: 'mmio' },
        { type: 'rng', transport: 'ccw' },
      ],
      [virtioRtcNoirqDriver, virtioRngDriver],
    );
    const t = pmSuspend(k.dpm, { enterSleep: () => power(m, 'reset') });
    expect(t.result).toBe(0);
    expect(t.records.map((r) => `${r.phase}:${r.slot}`)).toContain('resume_noirq:0');
    expect(typeof viortcRead(viortcDev(k.device(0))!, 0)).toBe('bigint');
    expect(rngRead(k.device(1), 100)).toBe(100);
  });

  it('an op forced into the noirq phase throws CcwDeadlockError; the PM core aborts and the machine recovers', async () => {
    ccwOptions.ioTimeoutMs = 100;
    const forced: DevPmOps<VirtioDevice> = {
      ...virtioCcwPmOps,
      // A broken transport/driver pair that ignores noirq_safe.
      suspend_noirq: (dev) => {
        dev.config.getStatus(dev);
        return 0;
      },
    };
    const { m, k } = await boot([{ type: 'rng', transport: 'ccw' }], [virtioRngDriver], () => forced);
    const rng = k.device(0);
    const t0 = performance.now();
    const t = pmSuspend(k.dpm, { enterSleep: () => power(m, 'retain') });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(t.result).toBe(-EIO);
    expect(t.failedStep).toBe('suspend_noirq');
    const rec = t.records.find((r) => r.phase === 'suspend_noirq')!;
    expect(rec.error).toMatch(/^virtio-ccw: READ_STATUS would deadlock waiting for an I\/O interrupt with device interrupts masked/);
    expect(kernel.warnings.some((w) => w.kind === 'noirq-context' && w.where === 'ccw_io_helper')).toBe(true);
    // Lines unmasked again, the latched status taken, resume ran: the device works.
    expect(m.bus.read(0x0c00_0000 + CSS_REG.Status, 4) & CSS_STATUS_PENDING).toBe(0);
    expect(t.records.filter((r) => r.phase === 'resume').map((r) => r.result)).toEqual([0]);
    expect(rngRead(rng, 500)).toBe(500);
  });

  it.each([
    ['reset', (d: VirtioDevice) => d.config.reset(d), 'VDEV_RESET'],
    ['get_status', (d: VirtioDevice) => void d.config.getStatus(d), 'READ_STATUS'],
    ['set_status', (d: VirtioDevice) => d.config.setStatus(d, 0x0f), 'WRITE_STATUS'],
    ['finalize_features', (d: VirtioDevice) => void d.config.finalizeFeatures(d), 'WRITE_FEAT'],
  ])('%s with the line masked as suspend_device_irqs does: CcwDeadlockError after the deadline, then recovery', async (_name, op, cmd) => {
    const { m, k } = await boot([{ type: 'rng', transport: 'ccw', slot: 2 }], [virtioRngDriver]);
    const dev = k.device(2) as VirtioCcwDevice;
    dev.ioTimeoutMs = 80;
    m.irq.mask(2);
    kernel.noirqDepth++;
    const t0 = performance.now();
    let err: unknown = null;
    try {
      op(dev);
    } catch (e) {
      err = e;
    }
    const waited = performance.now() - t0;
    kernel.noirqDepth--;
    expect(err).toBeInstanceOf(CcwDeadlockError);
    const e = err as CcwDeadlockError;
    expect(e.code).toBe('EMU_CCW_IRQ_DEADLOCK');
    expect(e.op).toBe(cmd);
    expect(e.device).toBe('0.0.0002');
    expect(e.line).toBe(2);
    expect(e.message).toContain(`virtio-ccw: ${cmd} would deadlock waiting for an I/O interrupt with device interrupts masked`);
    expect(waited).toBeGreaterThanOrEqual(75);
    expect(waited).toBeLessThan(3000);
    // The cached status is what it was; the device did run the program.
    expect(dev.currIo).toBe(0);
    // Still masked: the next op cannot even start (status pending) and fails the same way.
    expect(() => dev.config.getStatus(dev)).toThrow(CcwDeadlockError);
    // Unmask: the latched interrupt is delivered, the subchannel is idle again.
    m.irq.unmask(2);
    m.irq.deliverPending();
    expect(m.bus.read(0x0c00_0000 + 2 * 0x40 + CSS_REG.Status, 4) & CSS_STATUS_PENDING).toBe(0);
    // A freeze/restore cycle brings the device back whatever the op did to it.
    expect(virtioCcwPmOps.freeze(dev)).toBe(0);
    expect(virtioCcwPmOps.restore(dev)).toBe(0);
    expect(dev.config.getStatus(dev)).toBe(0x0f);
    expect(rngRead(dev, 300)).toBe(300);
    expect(dmaFor(m.mem).stats().failures).toBe(0);
  });

  it('the PM ops record has no noirq callbacks', () => {
    expect(Object.keys(virtioCcwPmOps).sort()).toEqual(['freeze', 'poweroff', 'restore', 'resume', 'suspend', 'thaw']);
    expect(virtioRtcDriver.restoreNoirq).toBeUndefined();
  });
});
