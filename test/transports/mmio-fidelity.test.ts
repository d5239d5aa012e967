// The model held against Linux, over real virtio-mmio registers: what
// vm_reset_vqs checks and what it leaves behind on an error, buffers still
// in flight across virtqueue_reset_split, a second find_vqs, the error paths
// of register_virtio_device, and the branches of virtio.c (the noirq
// patch's and the rest) that only a misbehaving device, driver or platform
// reaches. Every assertion is on Linux's behaviour: errno, Status bits,
// noirq state, warnings, the register trace.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { virtioRngDriver } from '../../core/drivers/rng.js';
import { virtioRtcNoirqDriver } from '../../core/drivers/rtc.js';
import { dmaFor } from '../../core/dma.js';
import { formatWarning, kernel } from '../../core/kernel.js';
import { E2BIG, EINVAL, EIO, ENODEV, ENOENT, ENOMEM, ENOSPC, EOPNOTSUPP } from '../../core/uapi/errno.js';
import { BusError } from '../../core/bus.js';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, bit, hi32 } from '../../core/uapi/features.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FAILED } from '../../core/uapi/status.js';
import {
  KernelBug,
  VIRTIO_NOIRQ_ENTERED,
  VIRTIO_NOIRQ_NONE,
  VIRTIO_NOIRQ_RESTORED,
  VirtioBus,
  type VirtioDevice,
  type VirtioDriver,
  platform,
  registerVirtioDevice,
  registerVirtioDriver,
  unregisterVirtioDevice,
  unregisterVirtioDriver,
  virtioAddStatus,
  virtioAddStatusNoirq,
  virtioDevShutdown,
  virtioDeviceReadyNoirq,
  virtioDeviceReinitNoirq,
  virtioDeviceResetDone,
  virtioDeviceResetPrepare,
  virtioHasFeature,
  virtioResetDeviceNoirq,
  virtioSynchronizeCbs,
} from '../../core/virtio.js';
import type { Virtqueue } from '../../core/virtio-types.js';
import { Machine, type MachineDeviceEntry } from '../../emulator/machine.js';
import { RngDevice } from '../../emulator/devices/rng.js';
import { MmioPlatformDevice, VirtioMmioDevice, virtioMmioConfigOps, virtioMmioPmOps, virtioMmioProbe } from '../../transports/mmio/index.js';
import { VirtioSystem } from '../../tools/system.js';
import { TraceBus, formatEntry } from '../helpers/trace-bus.js';
import { blkHeader } from '../helpers/raw-requests.js';
import { testDriver } from '../helpers/test-drivers.js';

/** The high word of what an rng device offers (matched by the DeviceFeatures overrides). */
const RNG_FEATURES_HI = hi32(new RngDevice().features);
const machines: Machine[] = [];
const systems: VirtioSystem[] = [];

beforeEach(() => {
  kernel.clear();
  kernel.hardenNotification = false;
  kernel.noirqDepth = 0;
});

afterEach(async () => {
  kernel.hardenNotification = false;
  kernel.noirqDepth = 0;
  platform.restrictedMemoryAccess = false;
  await Promise.all([...machines.splice(0).map((m) => m.close()), ...systems.splice(0).map((s) => s.close())]);
});

/** An in-thread machine and a TraceBus on slot 0's window. */
async function machine(devices: MachineDeviceEntry[] = ['rng']) {
  const m = await Machine.create({ devices, slots: 4, ramSize: 4 << 20, bus: 'inthread' });
  machines.push(m);
  return { m, tb: new TraceBus(m.bus, m.slotAddr(0)) };
}

function bus(...drivers: VirtioDriver[]): VirtioBus {
  const vbus = new VirtioBus();
  for (const d of drivers) registerVirtioDriver(d, vbus);
  return vbus;
}

async function bound(drv: VirtioDriver | null, devices: MachineDeviceEntry[] = ['rng']) {
  const { m, tb } = await machine(devices);
  const dev = virtioMmioProbe(tb, m.slotAddr(0), 0, drv ? bus(drv) : new VirtioBus());
  if (typeof dev === 'number') throw new Error(`probe failed ${dev}`);
  return { m, tb, dev };
}

/** A system whose kernel talks through a TraceBus. */
async function system(devices: MachineDeviceEntry[], drivers: VirtioDriver[]) {
  let trace: TraceBus | null = null;
  const sys = await VirtioSystem.create({ devices, drivers, wrapBus: (b) => (trace = new TraceBus(b)) });
  systems.push(sys);
  return { sys, trace: trace! as TraceBus };
}

const status = (dev: VirtioDevice) => dev.config.getStatus(dev);
const lines = (tb: TraceBus, from = 0) => tb.log.slice(from).map(formatEntry);

/** Slice the trace of one PM callback (its window's accesses only). */
function windowOf(sys: VirtioSystem, trace: TraceBus, phase: string, slot = 0): () => string[] {
  let from = -1;
  let to = -1;
  sys.dpm.hooks.push((e) => {
    if (e.phase !== phase || e.slot !== slot || e.kernel) return;
    if (e.when === 'before') from = trace.log.length;
    else to = trace.log.length;
  });
  const base = sys.machine.slotAddr(slot);
  return () => trace.log.slice(from, to).filter((e) => e.addr - e.offset === base).map(formatEntry);
}

/** The QueueReady a queue reads now, over the registers. */
function queueReady(m: Machine, slot: number, q: number): number {
  m.bus.write(m.slotAddr(slot) + REG.QueueSel, 4, q);
  return m.bus.read(m.slotAddr(slot) + REG.QueueReady, 4);
}

// ---------------------------------------------------------------------------

describe('vm_reset_vqs: vm_setup_vq checks, and no queue left live after an error', () => {
  /** Two queues on a console device, driven by a driver with the noirq pair. */
  async function twoQueues(override: (sel: number, offset: number, value: number) => number | undefined, transport: 'mmio' | 'mmio-legacy' = 'mmio') {
    const drv = testDriver(VIRTIO_ID_CONSOLE, { queues: ['rx', 'tx'], noirq: true });
    const { sys, trace } = await system([{ type: 'console', transport, options: { out: 'none' } }], [drv]);
    const dev = sys.device(0)!;
    expect(dev.vqs).toHaveLength(2);
    let sel = 0;
    let inNoirqRestore = false;
    trace.after = (e) => {
      if (e.op === 'W' && e.offset === REG.QueueSel) sel = e.value;
    };
    sys.dpm.hooks.push((e) => {
      if (e.phase === 'resume_noirq') inNoirqRestore = e.when === 'before';
    });
    trace.override = (offset, _w, value) => (inNoirqRestore ? override(sel, offset, value) : undefined);
    const log = windowOf(sys, trace, 'resume_noirq');
    return { sys, dev, log };
  }

  it('queue 1 already live (QueueReady 1): -ENOENT with no cleanup writes for it, queue 0 deactivated, FAILED, then restore() -EIO', async () => {
    const { sys, dev, log } = await twoQueues((sel, off) => (sel === 1 && off === REG.QueueReady ? 1 : undefined));
    const t = sys.suspend();
    expect(t.records.find((r) => r.phase === 'resume_noirq')?.result).toBe(-ENOENT);
    expect(t.records.find((r) => r.phase === 'resume')?.result).toBe(-EIO);
    const l = log();
    const at = l.indexOf('W QueueSel <- 0x1');
    expect(l.slice(at, at + 6)).toEqual([
      'W QueueSel <- 0x1',
      'R QueueReady = 0x1',
      // queue 0 was re-programmed already: deactivated again, as vm_del_vq would
      'W QueueSel <- 0x0',
      'W QueueReady <- 0x0',
      'R QueueReady = 0x0',
      // restore_noirq's err: virtio_add_status_noirq(FAILED)
      'R Status = 0xb',
    ]);
    expect(l[at + 6]).toBe('W Status <- 0x8b');
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_ENTERED);
    expect(status(dev) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
    expect(queueReady(sys.machine, 0, 0)).toBe(0);
    expect(queueReady(sys.machine, 0, 1)).toBe(0);
    // nothing was freed: the driver still owns its vqs
    expect(dev.vqs).toHaveLength(2);
  });

  it('QueueNumMax 0 or below the ring size on queue 1: -ENOENT, queue 1 and queue 0 deactivated', async () => {
    for (const max of [0, 2]) {
      kernel.clear();
      const { sys, log } = await twoQueues((sel, off) => (sel === 1 && off === REG.QueueNumMax ? max : undefined));
      const t = sys.suspend();
      expect(t.records.find((r) => r.phase === 'resume_noirq')?.result).toBe(-ENOENT);
      const l = log();
      const at = l.indexOf('W QueueSel <- 0x1');
      expect(l.slice(at, at + 8)).toEqual([
        'W QueueSel <- 0x1',
        'R QueueReady = 0x0',
        `R QueueNumMax = 0x${max}`,
        'W QueueReady <- 0x0',
        'R QueueReady = 0x0',
        'W QueueSel <- 0x0',
        'W QueueReady <- 0x0',
        'R QueueReady = 0x0',
      ]);
      expect(queueReady(sys.machine, 0, 0)).toBe(0);
    }
  });

  it('legacy: a queue with QueuePFN already set is -ENOENT; queue 0 gets QueuePFN 0', async () => {
    const { sys, dev, log } = await twoQueues((sel, off) => (sel === 1 && off === REG.QueuePFN ? 0x1234 : undefined), 'mmio-legacy');
    const t = sys.suspend();
    expect(t.records.find((r) => r.phase === 'resume_noirq')?.result).toBe(-ENOENT);
    const l = log();
    const at = l.indexOf('W QueueSel <- 0x1');
    expect(l.slice(at, at + 4)).toEqual(['W QueueSel <- 0x1', 'R QueuePFN = 0x1234', 'W QueueSel <- 0x0', 'W QueuePFN <- 0x0']);
    expect(sys.machine.bus.read(sys.machine.slotAddr(0) + REG.QueuePFN, 4)).toBe(0);
    expect(status(dev) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
  });

  it('legacy: a ring whose PFN no longer fits in 32 bits is -E2BIG, the queue gets QueuePFN 0', async () => {
    const drv = testDriver(VIRTIO_ID_RNG, { noirq: true });
    const { sys, trace } = await system([{ type: 'rng', transport: 'mmio-legacy' }], [drv]);
    const dev = sys.device(0)!;
    const log = windowOf(sys, trace, 'resume_noirq');
    // as if the ring sat above 2^44 (RAM above 16 TiB)
    Object.defineProperty(dev.vqs[0]!, 'getDescAddr', { value: () => 2 ** 45 });
    const t = sys.suspend();
    expect(t.records.find((r) => r.phase === 'resume_noirq')?.result).toBe(-E2BIG);
    expect(dev.messages.map((x) => x.msg)).toContain('platform bug: legacy virtio-mmio must not be used with RAM above 0x4000GB');
    const num = `0x${dev.vqs[0]!.getVringSize().toString(16)}`;
    const l = log();
    const at = l.indexOf('W QueueSel <- 0x0');
    // no QueueAlign, no PFN: the check comes before them; then the err path's FAILED
    expect(l.slice(at)).toEqual(['W QueueSel <- 0x0', 'R QueuePFN = 0x0', `R QueueNumMax = ${num}`, `W QueueNum <- ${num}`, 'W QueuePFN <- 0x0', 'R Status = 0x3', 'W Status <- 0x83']);
    expect(status(dev) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
  });

  it('on success vq->num_max is what QueueNumMax reads now', async () => {
    const { sys, dev } = await twoQueues(() => undefined);
    const before = dev.vqs[0]!.numMax;
    dev.vqs[0]!.numMax = 1;
    expect(sys.suspend().result).toBe(0);
    expect(dev.vqs[0]!.numMax).toBe(before);
    expect(kernel.warnings).toEqual([]);
  });
});

describe('virtqueue_reset_split with a buffer still in flight', () => {
  it.each([
    ['split', false, /num_free != vring\.num/],
    ['packed', true, /num_free != packed\.vring\.num/],
  ] as const)('a blk request in flight across restore_noirq never completes (%s ring); virtqueue_reinit_vring WARNs', async (_ring, packed, bug) => {
    const drv = testDriver(VIRTIO_ID_BLOCK, { noirq: true });
    const { sys } = await system([{ type: 'blk', options: { size: '1M', packed } }], [drv]);
    const dev = sys.device(0)!;
    const vq = drv.state.vqs[0] as Virtqueue<string>;
    const dma = dmaFor(sys.machine.mem);
    const hdr = dma.alloc(16)!;
    sys.machine.mem.u8.set(blkHeader(0), hdr - sys.machine.mem.base);
    const data = dma.alloc(512)!;
    const st = dma.alloc(1)!;
    // Made available but never kicked: in flight from the driver's point of view.
    expect(vq.addSgs([{ addr: hdr, len: 16 }, { addr: data, len: 512 }, { addr: st, len: 1 }], 1, 2, 'read0')).toBe(0);
    // INDIRECT_DESC is a transport feature the core keeps: one descriptor for the chain
    expect(vq.numFree).toBe(vq.getVringSize() - 1);

    expect(sys.suspend().result).toBe(0);
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_RESTORED);
    expect(dev.warnings).toEqual([
      { kind: 'WARN_ON', dev: dev.name, what: '_vq->num_free != virtqueue_get_vring_size(_vq)', where: 'virtqueue_reinit_vring' },
    ]);
    expect(formatWarning(dev.warnings[0]!)).toBe('virtio0: WARN_ON _vq->num_free != virtqueue_get_vring_size(_vq) in virtqueue_reinit_vring');
    // As in Linux: num_free claims the whole ring, the request never completes.
    expect(vq.numFree).toBe(vq.getVringSize());
    vq.kick();
    sys.machine.irq.deliverPending();
    expect(vq.getBuf()).toBeNull();
    // The stale token is still in desc_state; detaching it leaves num_free above
    // the ring size, which trips virtqueue_detach_unused_buf_split's (or _packed's) BUG_ON.
    dev.config.reset(dev);
    expect(vq.detachUnusedBuf()).toBe('read0');
    expect(() => vq.detachUnusedBuf()).toThrow(bug);
  });

  it('with every buffer used and harvested first, no warning and the ring works again', async () => {
    const drv = testDriver(VIRTIO_ID_RNG, { noirq: true });
    const { sys } = await system(['rng'], [drv]);
    expect(sys.suspend({ power: 'reset' }).result).toBe(0);
    expect(kernel.warnings).toEqual([]);
  });
});

describe('a second find_vqs without del_vqs (Linux: a second vm_interrupt on the shared line)', () => {
  it('registers vm_interrupt again: one interrupt runs it twice, the second reads InterruptStatus 0; each del_vqs frees one; a third is the already-free WARN', async () => {
    const { m, tb, dev } = await bound(testDriver(VIRTIO_ID_RNG));
    expect(dev.irqHandlers).toHaveLength(1);
    // A reset makes the queue not live, so vm_setup_vq passes its check again.
    dev.config.reset(dev);
    virtioAddStatus(dev, 1);
    virtioAddStatus(dev, 2);
    expect(dev.config.finalizeFeatures(dev)).toBe(0);
    virtioAddStatus(dev, 8);
    expect(dev.config.findVqs(dev, [null], [{ name: 'a' }])).toBe(0);
    expect(dev.irqHandlers).toHaveLength(2);
    expect(dev.vqs).toHaveLength(2);
    virtioAddStatus(dev, 4);
    tb.clear();
    expect(m.control({ op: 'inject', slot: 0, event: 'config-change' }).ok).toBe(true);
    m.irq.deliverPending();
    expect(lines(tb)).toEqual(['R InterruptStatus = 0x2', 'W InterruptACK <- 0x2', 'R InterruptStatus = 0x0', 'W InterruptACK <- 0x0']);
    dev.config.delVqs(dev);
    expect(dev.vqs).toEqual([]);
    expect(dev.irqHandlers).toHaveLength(1);
    dev.config.delVqs(dev);
    expect(dev.irqHandler).toBeNull();
    expect(kernel.warnings).toEqual([]);
    dev.config.delVqs(dev);
    expect(kernel.warnings).toEqual([{ kind: 'WARN_ON', dev: dev.name, what: 'Trying to free already-free IRQ 0', where: '__free_irq' }]);
  });

  it('request_irq failing is -EINVAL with the message; a dead bus is not swallowed', async () => {
    const { m, dev } = await bound(null);
    const irq = Object.create(m.bus.irq) as typeof m.bus.irq;
    irq.request = () => {
      throw new Error('line busy');
    };
    const io = { read: m.bus.read.bind(m.bus), write: m.bus.write.bind(m.bus), mem: m.bus.mem, irq };
    const other = new VirtioMmioDevice(new MmioPlatformDevice(io, m.slotAddr(0), 0), 2, dev.id, new VirtioBus());
    expect(other.config.findVqs(other, [null], [{ name: 'a' }])).toBe(-EINVAL);
    expect(other.messages.map((x) => x.msg)).toContain('request_irq 0 failed: line busy');
    // a bus error (the machine is gone) is not turned into an errno
    irq.request = () => {
      throw new BusError('EMU_CLOSED', 'machine closed');
    };
    expect(() => other.config.findVqs(other, [null], [{ name: 'a' }])).toThrow(BusError);
  });
});

describe('register_virtio_device error paths', () => {
  it('ida_alloc exhausted: -ENOSPC, no reset, Status FAILED only', async () => {
    const { m } = await machine(['rng', 'rng']);
    const vbus = bus(virtioRngDriver);
    vbus.idaMax = 0;
    expect(typeof virtioMmioProbe(m.bus, m.slotAddr(0), 0, vbus)).toBe('object');
    const tb = new TraceBus(m.bus, m.slotAddr(1));
    expect(virtioMmioProbe(tb, m.slotAddr(1), 1, vbus)).toBe(-ENOSPC);
    expect(lines(tb).slice(4)).toEqual(['R Status = 0x0', 'W Status <- 0x80']);
    expect(vbus.devices).toHaveLength(1);
  });

  it('virtio_device_of_init: two DT child nodes are WARN_ON and -EINVAL; one compatible child becomes of_node', async () => {
    const { m, tb } = await machine(['rng']);
    const vbus = new VirtioBus();
    const make = () => new VirtioMmioDevice(new MmioPlatformDevice(tb, m.slotAddr(0), 0), 2, { device: VIRTIO_ID_RNG, vendor: 0 }, vbus);
    const two = make();
    two.ofChildNodes = ['virtio,device4', 'virtio,device4'];
    tb.clear();
    expect(registerVirtioDevice(two)).toBe(-EINVAL);
    expect(kernel.warnings).toEqual([{ kind: 'WARN_ON', dev: 'virtio0', what: 'count > 1', where: 'virtio_device_of_init' }]);
    expect(lines(tb)).toEqual(['R Status = 0x0', 'W Status <- 0x80']);
    m.bus.write(m.slotAddr(0) + REG.Status, 4, 0);
    // the index was freed: the next device is virtio0 again
    const other = make();
    other.ofChildNodes = ['virtio,device2'];
    expect(registerVirtioDevice(other)).toBe(0);
    expect([other.name, other.ofNode]).toEqual(['virtio0', null]);
    unregisterVirtioDevice(other);
    const one = make();
    one.ofChildNodes = ['virtio,device4'];
    expect(registerVirtioDevice(one)).toBe(0);
    expect(one.ofNode).toBe('virtio,device4');
    // unregistering twice finds it off the bus the second time
    unregisterVirtioDevice(one);
    unregisterVirtioDevice(one);
    expect(vbus.devices).toEqual([]);
  });

  it('device_add failing: the device was reset and ACKed, then FAILED (0x81); no driver probed, the index freed', async () => {
    const { m, tb } = await machine(['rng']);
    const drv = testDriver(VIRTIO_ID_RNG);
    const vbus = bus(drv);
    vbus.deviceAddError = ENOMEM;
    expect(virtioMmioProbe(tb, m.slotAddr(0), 0, vbus)).toBe(-ENOMEM);
    expect(lines(tb).slice(4)).toEqual(['W Status <- 0x0', 'R Status = 0x0', 'W Status <- 0x1', 'R Status = 0x1', 'W Status <- 0x81']);
    expect(drv.state.probes).toBe(0);
    expect(vbus.devices).toEqual([]);
    vbus.deviceAddError = 0;
    const dev = virtioMmioProbe(m.bus, m.slotAddr(0), 0, vbus) as VirtioMmioDevice;
    expect([dev.name, status(dev)]).toEqual(['virtio0', 0xf]);
  });
});

describe('virtio_dev_probe branches', () => {
  it('restricted memory (virtio_check_mem_acc_cb): VERSION_1 and ACCESS_PLATFORM are required', async () => {
    platform.restrictedMemoryAccess = true;
    const legacy = await bound(testDriver(VIRTIO_ID_RNG), [{ type: 'rng', transport: 'mmio-legacy' }]);
    expect(legacy.dev.probeResult).toBe(-ENODEV);
    expect(legacy.dev.messages.map((x) => x.msg)).toContain('device must provide VIRTIO_F_VERSION_1');
    const modern = await bound(testDriver(VIRTIO_ID_RNG));
    expect(modern.dev.probeResult).toBe(-ENODEV);
    expect(modern.dev.messages.map((x) => x.msg)).toContain('device must provide VIRTIO_F_ACCESS_PLATFORM');
    expect(status(modern.dev)).toBe(0x83);
    // A device that says it offers ACCESS_PLATFORM passes the check and reaches FEATURES_OK.
    const { m, tb } = await machine(['rng']);
    tb.override = (off, _w, v) => (off === REG.DeviceFeatures && v === RNG_FEATURES_HI ? v | (1 << (VIRTIO_F_ACCESS_PLATFORM - 32)) : undefined);
    const dev = virtioMmioProbe(tb, m.slotAddr(0), 0, bus(testDriver(VIRTIO_ID_RNG))) as VirtioMmioDevice;
    expect(dev.features & bit(VIRTIO_F_ACCESS_PLATFORM)).toBe(bit(VIRTIO_F_ACCESS_PLATFORM));
    // the real device never offered it, so FEATURES_OK does not stick
    expect(dev.probeResult).toBe(-ENODEV);
    expect(dev.messages.map((x) => x.msg)).toContain('virtio: device refuses features: 3');
  });

  it('finalize_features failing (a Version 2 device without VERSION_1): -EINVAL and FAILED', async () => {
    const { m, tb } = await machine(['rng']);
    tb.override = (off, _w, v) => (off === REG.DeviceFeatures && v === RNG_FEATURES_HI ? v & ~(1 << (VIRTIO_F_VERSION_1 - 32)) : undefined);
    const dev = virtioMmioProbe(tb, m.slotAddr(0), 0, bus(testDriver(VIRTIO_ID_RNG))) as VirtioMmioDevice;
    expect(dev.probeResult).toBe(-EINVAL);
    expect(status(dev)).toBe(0x83);
  });

  it('validate: an error fails probe; unchanged features are not written again; a change that breaks finalize fails probe', async () => {
    const failing = await bound(testDriver(VIRTIO_ID_RNG, { validate: () => -EIO }));
    expect(failing.dev.probeResult).toBe(-EIO);
    expect(status(failing.dev)).toBe(0x83);
    const same = await bound(testDriver(VIRTIO_ID_RNG, { validate: () => 0 }));
    expect(same.dev.probeResult).toBe(0);
    expect(lines(same.tb).filter((l) => l === 'W DriverFeaturesSel <- 0x1')).toHaveLength(1);
    const breaking = await bound(
      testDriver(VIRTIO_ID_RNG, { validate: (d) => ((d.features &= ~bit(VIRTIO_F_VERSION_1)), 0) }),
    );
    expect(breaking.dev.probeResult).toBe(-EINVAL);
  });

  it('feature tables: bits past 128 (and legacy past 64) are WARN_ON_ONCE and skipped; device-type bits must be in a table', async () => {
    const drv = testDriver(VIRTIO_ID_RNG, { featureTable: [3, 130] });
    drv.featureTableLegacy = [4, 70];
    const { dev } = await bound(drv);
    expect(dev.probeResult).toBe(0);
    expect(kernel.warnings.map((w) => w.what)).toEqual(['f >= VIRTIO_FEATURES_MAX', 'f >= 64']);
    expect(virtioHasFeature(dev, 3)).toBe(false);
    expect(virtioHasFeature(dev, 4)).toBe(false);
    expect(() => virtioHasFeature(dev, 5)).toThrow(KernelBug);
    const unbound = await bound(null);
    expect(() => virtioHasFeature(unbound.dev, 3)).toThrow(KernelBug);
  });

  it('id tables match the vendor when it is not ANY_ID; drivers register and unregister around bound devices', async () => {
    const { m } = await machine(['rng']);
    const vendor = m.bus.read(m.slotAddr(0) + REG.VendorID, 4);
    const wrongVendor: VirtioDriver = { ...testDriver(VIRTIO_ID_RNG), name: 'wrong', idTable: [{ device: VIRTIO_ID_RNG, vendor: vendor + 1 }] };
    const rightVendor = testDriver(VIRTIO_ID_RNG);
    rightVendor.idTable = [{ device: VIRTIO_ID_RNG, vendor }];
    const vbus = bus(wrongVendor);
    const dev = virtioMmioProbe(m.bus, m.slotAddr(0), 0, vbus) as VirtioMmioDevice;
    expect(dev.driver).toBeNull();
    registerVirtioDriver(rightVendor, vbus);
    expect(dev.driver).toBe(rightVendor);
    // a second matching driver finds the device bound already; unregistering it leaves the binding
    const another = testDriver(VIRTIO_ID_RNG);
    registerVirtioDriver(another, vbus);
    unregisterVirtioDriver(another, vbus);
    unregisterVirtioDriver(another, vbus);
    expect(dev.driver).toBe(rightVendor);
    expect(another.state.probes).toBe(0);
  });
});

describe('the noirq helpers', () => {
  /** The same mmio ops, declared not noirq-safe. */
  function unsafe(dev: VirtioDevice): void {
    Object.defineProperty(dev, 'config', { value: { ...dev.config, noirqSafe: false } });
  }

  it('WARN_ON(!noirq_safe) fires in add_status_noirq, reset_device_noirq and ready_noirq, and the ops still run', async () => {
    const { tb, dev } = await bound(null);
    unsafe(dev);
    tb.clear();
    virtioResetDeviceNoirq(dev);
    virtioAddStatusNoirq(dev, 1);
    virtioAddStatusNoirq(dev, 2);
    virtioDeviceReadyNoirq(dev);
    expect(kernel.warnings.map((w) => `${w.what} ${w.where}`)).toEqual([
      '!dev->config->noirq_safe virtio_reset_device_noirq',
      '!dev->config->noirq_safe virtio_add_status_noirq',
      '!dev->config->noirq_safe virtio_add_status_noirq',
      '!dev->config->noirq_safe virtio_device_ready_noirq',
    ]);
    expect(lines(tb)).toEqual(['W Status <- 0x0', 'R Status = 0x0', 'W Status <- 0x1', 'R Status = 0x1', 'W Status <- 0x3', 'R Status = 0x3', 'W Status <- 0x7']);
  });

  it('CONFIG_VIRTIO_HARDEN_NOTIFICATION: restore_noirq breaks the vqs at reset and ready_noirq unbreaks them, without synchronize_cbs', async () => {
    kernel.hardenNotification = true;
    const drv = testDriver(VIRTIO_ID_RNG, { noirq: true });
    const seen: boolean[] = [];
    drv.restoreNoirq = (d) => {
      seen.push(d.vqs[0]!.broken);
      virtioDeviceReadyNoirq(d);
      seen.push(d.vqs[0]!.broken);
      return 0;
    };
    const { sys } = await system(['rng'], [drv]);
    expect(sys.suspend({ power: 'reset' }).result).toBe(0);
    expect(seen).toEqual([true, false]);
    expect(kernel.warnings).toEqual([]);
  });

  it('virtio_device_reinit_noirq without a driver: reset, ACKNOWLEDGE (and FAILED again if it was set), nothing more', async () => {
    const { tb, dev } = await bound(null);
    dev.failed = true;
    tb.clear();
    expect(virtioDeviceReinitNoirq(dev)).toBe(0);
    expect(lines(tb)).toEqual(['W Status <- 0x0', 'R Status = 0x0', 'W Status <- 0x1', 'R Status = 0x1', 'W Status <- 0x81']);
  });

  it('virtio_synchronize_cbs without a transport synchronize_cbs falls back to synchronize_rcu (nothing to wait for)', async () => {
    const { dev } = await bound(null);
    Object.defineProperty(dev, 'config', { value: { ...dev.config, synchronizeCbs: undefined } });
    kernel.noirqDepth = 1;
    virtioSynchronizeCbs(dev);
    expect(kernel.warnings.map((w) => w.what)).toEqual(['virtio_synchronize_cbs']);
    expect(formatWarning(kernel.warnings[0]!)).toContain('noirq-context (harness check, not a Linux warning)');
  });
});

describe('virtio_device_restore_noirq and restore over the registers', () => {
  it('no vqs: no reset_vqs, no queue register touched; RESTORED', async () => {
    const drv = testDriver(VIRTIO_ID_RNG, { queues: [], noirq: true });
    const { sys, trace } = await system(['rng'], [drv]);
    const log = windowOf(sys, trace, 'resume_noirq');
    expect(sys.suspend({ power: 'reset' }).result).toBe(0);
    expect(log().filter((l) => l.includes('Queue'))).toEqual([]);
    expect(sys.device(0)!.noirqState).toBe(VIRTIO_NOIRQ_RESTORED);
  });

  it('finalize_features failing in restore_noirq: FAILED, state ENTERED, restore() -EIO', async () => {
    const drv = testDriver(VIRTIO_ID_RNG, { noirq: true });
    const { sys } = await system(['rng'], [drv]);
    const dev = sys.device(0)!;
    sys.dpm.hooks.push((e) => {
      if (e.phase === 'suspend_noirq' && e.when === 'after') dev.features &= ~bit(VIRTIO_F_VERSION_1);
    });
    const t = sys.suspend();
    expect(t.records.find((r) => r.phase === 'resume_noirq')?.result).toBe(-EINVAL);
    expect(t.records.find((r) => r.phase === 'resume')?.result).toBe(-EIO);
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_ENTERED);
    expect(status(dev) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
  });

  it('a restore_noirq that leaves DRIVER_OK clear: config stays disabled until restore(), which sets DRIVER_OK and delivers the pending change once', async () => {
    const drv = testDriver(VIRTIO_ID_RNG, { noirq: true });
    drv.restoreNoirq = () => 0;
    const { sys, trace } = await system(['rng'], [drv]);
    const dev = sys.device(0)!;
    const noirq = windowOf(sys, trace, 'resume_noirq');
    const normal = windowOf(sys, trace, 'resume');
    let enabledAfterNoirq: boolean | null = null;
    sys.dpm.hooks.push((e) => {
      if (e.phase === 'resume_noirq' && e.when === 'after') {
        enabledAfterNoirq = dev.configCoreEnabled;
        sys.machine.control({ op: 'inject', slot: 0, event: 'config-change' });
      }
    });
    expect(sys.suspend({ power: 'retain' }).result).toBe(0);
    sys.machine.irq.deliverPending();
    expect(enabledAfterNoirq).toBe(false);
    expect(noirq()).not.toContain('W Status <- 0xf');
    expect(normal()).toContain('W Status <- 0xf');
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_RESTORED);
    expect(dev.configCoreEnabled).toBe(true);
    expect(drv.state.configChanges).toBe(0); // the change came before DRIVER_OK: the device raised no interrupt
    sys.machine.control({ op: 'inject', slot: 0, event: 'config-change' });
    sys.machine.irq.waitAndDeliver(1000);
    expect(drv.state.configChanges).toBe(1);
  });

  it('a driver with only the noirq pair: restore() calls no driver restore and writes nothing', async () => {
    const drv = testDriver(VIRTIO_ID_RNG, { noirq: true });
    delete drv.freeze;
    delete drv.restore;
    const { sys, trace } = await system(['rng'], [drv]);
    const normal = windowOf(sys, trace, 'resume');
    expect(sys.suspend({ power: 'reset' }).result).toBe(0);
    expect(normal()).toEqual(['R Status = 0xf']);
  });

  it('without restore_noirq: a reinit failure in restore() (finalize, or FEATURES_OK refused) is FAILED', async () => {
    const { sys } = await system(['rng', 'rng'], [virtioRngDriver]);
    const a = sys.device(0)!;
    sys.dpm.hooks.push((e) => {
      if (e.phase === 'suspend_noirq' && e.when === 'after' && e.slot === 0) {
        a.features &= ~bit(VIRTIO_F_VERSION_1);
        sys.machine.control({ op: 'inject', slot: 1, event: 'refuse-features' });
      }
    });
    const t = sys.suspend();
    expect(t.records.filter((r) => r.phase === 'resume').map((r) => [r.slot, r.result])).toEqual([
      [0, -EINVAL],
      [1, -ENODEV],
    ]);
    expect(status(a) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
    expect(status(sys.device(1)!) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
  });

  it('FAILED before freeze is restored for debugging by the normal reinit (0x81)', async () => {
    const { sys, trace } = await system(['rng'], [virtioRngDriver]);
    const dev = sys.device(0)!;
    virtioAddStatus(dev, VIRTIO_CONFIG_S_FAILED);
    const normal = windowOf(sys, trace, 'resume');
    sys.suspend({ power: 'reset' });
    expect(normal().slice(0, 5)).toEqual(['W Status <- 0x0', 'R Status = 0x0', 'W Status <- 0x1', 'R Status = 0x1', 'W Status <- 0x81']);
  });

  it('a device without a driver: freeze and the noirq pair do nothing, restore() resets and ACKs it', async () => {
    const { sys, trace } = await system(['rng'], []);
    const dev = sys.device(0)!;
    const normal = windowOf(sys, trace, 'resume');
    const t = sys.suspend({ power: 'reset' });
    expect(t.records.every((r) => r.result === 0)).toBe(true);
    expect(normal()).toEqual(['W Status <- 0x0', 'R Status = 0x0', 'W Status <- 0x1']);
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_NONE);
    // device_shutdown: no driver, no access
    trace.clear();
    virtioDevShutdown(dev);
    expect(trace.log).toEqual([]);
  });
});

describe('config changes without a config_changed callback', () => {
  it('are dropped: __virtio_config_changed has nobody to tell and leaves nothing pending', async () => {
    const drv = testDriver(VIRTIO_ID_RNG);
    delete drv.configChanged;
    const { m, dev } = await bound(drv);
    expect(dev.configCoreEnabled).toBe(true);
    expect(m.control({ op: 'inject', slot: 0, event: 'config-change' }).ok).toBe(true);
    m.irq.deliverPending();
    expect(dev.configChangePending).toBe(false);
    expect(m.bus.read(m.slotAddr(0) + REG.InterruptStatus, 4)).toBe(0); // vm_interrupt ACKed it
  });
});

describe('reset_prepare / reset_done and shutdown', () => {
  it('-EOPNOTSUPP without the callbacks; reset_done reinitialises, calls the driver and sets DRIVER_OK; errors re-enable config or set FAILED', async () => {
    const plain = await bound(testDriver(VIRTIO_ID_RNG));
    expect(virtioDeviceResetPrepare(plain.dev)).toBe(-EOPNOTSUPP);
    expect(virtioDeviceResetDone(plain.dev)).toBe(-EOPNOTSUPP);
    const unbound = await bound(null);
    expect(virtioDeviceResetPrepare(unbound.dev)).toBe(-EOPNOTSUPP);
    expect(virtioDeviceResetDone(unbound.dev)).toBe(-EOPNOTSUPP);

    const drv = testDriver(VIRTIO_ID_RNG);
    let prepareResult = 0;
    let doneResult = 0;
    drv.resetPrepare = () => prepareResult;
    drv.resetDone = () => doneResult;
    const { m, tb, dev } = await bound(drv);
    expect(virtioDeviceResetPrepare(dev)).toBe(0);
    expect(dev.configCoreEnabled).toBe(false);
    tb.clear();
    expect(virtioDeviceResetDone(dev)).toBe(0);
    expect(lines(tb).filter((l) => l === 'W Status <- 0xf')).toHaveLength(1);
    expect(lines(tb).slice(0, 5)).toEqual(['W Status <- 0x0', 'R Status = 0x0', 'W Status <- 0x1', 'R Status = 0x1', 'W Status <- 0x3']);
    expect(lines(tb).slice(-2)).toEqual(['R Status = 0xb', 'W Status <- 0xf']);
    expect(dev.configCoreEnabled).toBe(true);

    prepareResult = -EIO;
    expect(virtioDeviceResetPrepare(dev)).toBe(-EIO);
    expect(dev.configCoreEnabled).toBe(true);
    doneResult = -EIO;
    expect(virtioDeviceResetDone(dev)).toBe(-EIO);
    expect(status(dev) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
    // a reset_done that marks DRIVER_OK itself: the core does not do it again
    drv.resetDone = (d) => (virtioDeviceReadyNoirq(d), 0);
    tb.clear();
    expect(virtioDeviceResetDone(dev)).toBe(0);
    expect(lines(tb).filter((l) => l.startsWith('W Status <- 0xf'))).toHaveLength(1);
    doneResult = 0;
    drv.resetDone = () => doneResult;
    m.control({ op: 'inject', slot: 0, event: 'refuse-features' });
    expect(virtioDeviceResetDone(dev)).toBe(-ENODEV);
    expect(status(dev) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
  });

  it('virtio_dev_shutdown: a driver shutdown replaces the core reset; without one the vqs are broken and the device reset', async () => {
    const drv = testDriver(VIRTIO_ID_RNG);
    let called = 0;
    drv.shutdown = () => void called++;
    const own = await bound(drv);
    own.tb.clear();
    virtioDevShutdown(own.dev);
    expect(called).toBe(1);
    expect(own.tb.log).toEqual([]);
    const core = await bound(testDriver(VIRTIO_ID_RNG));
    core.tb.clear();
    virtioDevShutdown(core.dev);
    expect(core.dev.vqs[0]!.broken).toBe(true);
    expect(lines(core.tb)).toEqual(['W Status <- 0x0']);
    expect(status(core.dev) & VIRTIO_CONFIG_S_DRIVER_OK).toBe(0);
  });
});

describe('virtio-mmio ops on what is not theirs', () => {
  it('to_virtio_mmio_device and to_vvq refuse a foreign device or queue (a kernel BUG)', async () => {
    const { dev } = await bound(testDriver(VIRTIO_ID_RNG));
    const foreign = Object.create(dev.vqs[0]!) as Virtqueue;
    Object.setPrototypeOf(foreign, {});
    dev.vqs.push(foreign);
    expect(() => dev.config.delVqs(dev)).toThrow(/to_vvq/);
    dev.vqs.pop();
    const notMmio = { name: 'x' } as unknown as VirtioDevice;
    expect(() => virtioMmioConfigOps.getStatus(notMmio)).toThrow(/to_virtio_mmio_device/);
  });

  it('vm_set on Version 1 writes byte by byte', async () => {
    const { tb, dev } = await bound(null, [{ type: 'rng', transport: 'mmio-legacy' }]);
    tb.clear();
    dev.config.set(dev, 1, new Uint8Array([1, 2]));
    expect(tb.log.map((e) => `${e.op}${e.width}@${e.offset.toString(16)}=${e.value}`)).toEqual(['W1@101=1', 'W1@102=2']);
  });

  it('the pm ops are the mmio wrappers of the core calls', () => {
    expect(virtioMmioPmOps.poweroff_noirq).toBe(virtioMmioPmOps.suspend_noirq);
    expect(virtioRtcNoirqDriver.restoreNoirq).toBeTypeOf('function');
  });
});
