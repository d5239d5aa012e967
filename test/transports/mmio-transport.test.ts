// The virtio-mmio transport (transports/mmio.ts) driving the real board,
// through the worker bus and the in-thread bus: probe of Version 2 and
// Version 1 devices with Linux's exact register sequence, feature refusal,
// config-change gating, the interrupt ACK race, remove and re-probe, queue
// setup errors and the noirq restore path (reset_vqs).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GuestMemory } from '../../core/bus.js';
import { dmaFor } from '../../core/dma.js';
import { kernel } from '../../core/kernel.js';
import { virtioRngDriver, virtioRngRead } from '../../core/drivers/rng.js';
import { E2BIG, EINVAL, ENODEV, ENOENT, ENXIO } from '../../core/uapi/errno.js';
import { VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { MAGIC_VALUE, REG, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING, type RegName } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FAILED } from '../../core/uapi/status.js';
import {
  KernelBug,
  VirtioBus,
  __virtioSetBit,
  registerVirtioDriver,
  unregisterVirtioDriver,
  virtioConfigDriverDisable,
  virtioConfigDriverEnable,
  virtioSynchronizeCbs,
  type VirtioDriver,
} from '../../core/virtio.js';
import type { Virtqueue } from '../../core/virtio-types.js';
import { toVvq } from '../../core/virtqueue/vring.js';
import { Machine, type BusKind, type MachineDeviceEntry } from '../../emulator/machine.js';
import {
  type VirtioMmioDevice,
  virtioMmioPmOps,
  virtioMmioProbe,
  virtioMmioRemove,
  virtioMmioScan,
} from '../../transports/mmio/index.js';
import { TraceBus, formatEntry, type TraceEntry } from '../helpers/trace-bus.js';
import { testDriver } from '../helpers/test-drivers.js';

const machines: Machine[] = [];

async function boot(bus: BusKind, devices: MachineDeviceEntry[] = ['rng'], slots = 4): Promise<Machine> {
  const m = await Machine.create({ devices, slots, ramSize: 4 << 20, bus });
  machines.push(m);
  return m;
}

function bindBus(...drivers: VirtioDriver[]): VirtioBus {
  const vbus = new VirtioBus();
  for (const d of drivers) registerVirtioDriver(d, vbus);
  return vbus;
}

function probe(tb: TraceBus, m: Machine, vbus: VirtioBus, slot = 0, line = slot): VirtioMmioDevice {
  const dev = virtioMmioProbe(tb, m.slotAddr(slot), line, vbus);
  if (typeof dev === 'number') throw new Error(`probe failed ${dev}`);
  return dev;
}

/** Spin until cond() holds (the worker bus processes kicks in its own thread). */
function until(cond: () => boolean, ms = 2000): void {
  const end = performance.now() + ms;
  while (!cond()) if (performance.now() > end) throw new Error('timed out waiting for the device');
}

type Step = [op: 'R' | 'W', reg: RegName, value?: number];

function shape(log: TraceEntry[], template: Step[]): string[] {
  // Values the template leaves open are copied from the trace.
  return log.map((e, i) => {
    const t = template[i];
    const value = t && t[2] === undefined ? 'any' : `0x${e.value.toString(16)}`;
    return `${e.op} ${formatEntry(e).split(' ')[1]} ${value}`;
  });
}

function expectTrace(log: TraceEntry[], template: Step[]): void {
  const want = template.map(([op, reg, v]) => `${op} ${reg} ${v === undefined ? 'any' : `0x${v.toString(16)}`}`);
  expect(shape(log, template)).toEqual(want);
}

function dmaBuffer(m: Machine, len: number): number {
  const a = dmaFor(m.mem).alloc(len);
  if (a === null) throw new Error('dma full');
  return a;
}

beforeEach(() => {
  kernel.clear();
  kernel.hardenNotification = false;
  kernel.noirqDepth = 0;
});

afterEach(async () => {
  kernel.hardenNotification = false;
  kernel.noirqDepth = 0;
  await Promise.all(machines.splice(0).map((m) => m.close()));
});

describe.each(['worker', 'inthread'] as BusKind[])('virtio-mmio over the %s bus', (kind) => {
  it.each([
    ['split', false],
    ['packed', true],
  ] as const)('probes a Version 2 device (%s ring) with the register sequence Linux uses (VIRTIO-NOTES 8.2.7)', async (_ring, packed) => {
    const m = await boot(kind, [{ type: 'rng', options: { packed } }]);
    const tb = new TraceBus(m.bus, m.slotAddr(0));
    const dev = probe(tb, m, bindBus(virtioRngDriver));

    expect(dev.version).toBe(2);
    expect(dev.driver).toBe(virtioRngDriver);
    // Linux keeps RING_PACKED when the device offers it (vring_transport_features)
    expect(dev.features).toBe(bit(VIRTIO_F_VERSION_1) | bit(28) | bit(29) | (packed ? bit(VIRTIO_F_RING_PACKED) : 0n));
    const packedHi = packed ? 1 << (VIRTIO_F_RING_PACKED - 32) : 0;
    const vq = dev.vqs[0]!;
    expect(toVvq(vq).packedRing).toBe(packed);
    const num = vq.getVringSize();
    const desc = vq.getDescAddr();
    const avail = vq.getAvailAddr();
    const used = vq.getUsedAddr();
    expectTrace(tb.log, [
      ['R', 'MagicValue', MAGIC_VALUE],
      ['R', 'Version', 2],
      ['R', 'DeviceID', VIRTIO_ID_RNG],
      ['R', 'VendorID'],
      // register_virtio_device: reset, then ACKNOWLEDGE (read-modify-write)
      ['W', 'Status', 0],
      ['R', 'Status', 0],
      ['W', 'Status', 1],
      // virtio_dev_probe: DRIVER
      ['R', 'Status', 1],
      ['W', 'Status', 3],
      // vm_get_features: high word first
      ['W', 'DeviceFeaturesSel', 1],
      ['R', 'DeviceFeatures', 0x101 | packedHi],
      ['W', 'DeviceFeaturesSel', 0],
      ['R', 'DeviceFeatures', 0x3000_0000],
      // vm_finalize_features: RING_RESET (40) filtered out
      ['W', 'DriverFeaturesSel', 1],
      ['W', 'DriverFeatures', 1 | packedHi],
      ['W', 'DriverFeaturesSel', 0],
      ['W', 'DriverFeatures', 0x3000_0000],
      // virtio_features_ok
      ['R', 'Status', 3],
      ['W', 'Status', 0xb],
      ['R', 'Status', 0xb],
      // virtrng_probe → vm_find_vqs → vm_setup_vq(0)
      ['W', 'QueueSel', 0],
      ['R', 'QueueReady', 0],
      ['R', 'QueueNumMax', num],
      ['W', 'QueueNum', num],
      ['W', 'QueueDescLow', desc >>> 0],
      ['W', 'QueueDescHigh', 0],
      ['W', 'QueueDriverLow', avail >>> 0],
      ['W', 'QueueDriverHigh', 0],
      ['W', 'QueueDeviceLow', used >>> 0],
      ['W', 'QueueDeviceHigh', 0],
      ['W', 'QueueReady', 1],
      // virtio_device_ready from the driver's probe, then its first request
      ['R', 'Status', 0xb],
      ['W', 'Status', 0xf],
      ['W', 'QueueNotify', 0],
      // virtio_dev_probe: probe set DRIVER_OK itself
      ['R', 'Status', 0xf],
    ]);
    expect(kernel.warnings).toEqual([]);

    const bytes = virtioRngRead(dev, 100);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect((bytes as Uint8Array).length).toBe(100);
  });

  it('probes a legacy Version 1 device: GuestPageSize, QueuePFN, no FEATURES_OK', async () => {
    const m = await boot(kind, [{ type: 'rng', transport: 'mmio-legacy' }]);
    const tb = new TraceBus(m.bus, m.slotAddr(0));
    const dev = probe(tb, m, bindBus(virtioRngDriver));

    expect(dev.version).toBe(1);
    expect(dev.driver).toBe(virtioRngDriver);
    expect(dev.features & bit(VIRTIO_F_VERSION_1)).toBe(0n);
    const vq = dev.vqs[0]!;
    const num = vq.getVringSize();
    expectTrace(tb.log, [
      ['R', 'MagicValue', MAGIC_VALUE],
      ['R', 'Version', 1],
      ['R', 'DeviceID', VIRTIO_ID_RNG],
      ['R', 'VendorID'],
      ['W', 'GuestPageSize', 4096],
      ['W', 'Status', 0],
      ['R', 'Status', 0],
      ['W', 'Status', 1],
      ['R', 'Status', 1],
      ['W', 'Status', 3],
      ['W', 'DeviceFeaturesSel', 1],
      ['R', 'DeviceFeatures', 0],
      ['W', 'DeviceFeaturesSel', 0],
      ['R', 'DeviceFeatures', 0x3000_0000],
      ['W', 'DriverFeaturesSel', 1],
      ['W', 'DriverFeatures', 0],
      ['W', 'DriverFeaturesSel', 0],
      ['W', 'DriverFeatures', 0x3000_0000],
      ['W', 'QueueSel', 0],
      ['R', 'QueuePFN', 0],
      ['R', 'QueueNumMax', num],
      ['W', 'QueueNum', num],
      ['W', 'QueueAlign', 4096],
      ['W', 'QueuePFN', vq.getDescAddr() / 4096],
      ['R', 'Status', 3],
      ['W', 'Status', 7],
      ['W', 'QueueNotify', 0],
      ['R', 'Status', 7],
    ]);
    const bytes = virtioRngRead(dev, 5000);
    expect((bytes as Uint8Array).length).toBe(5000);
    expect(kernel.warnings).toEqual([]);
  });

  it('fails probe with -ENODEV and sets FAILED when the device refuses FEATURES_OK', async () => {
    const m = await boot(kind);
    // validate() accepts a feature the device never offered: the device must refuse.
    const drv = testDriver(VIRTIO_ID_RNG, { validate: (d) => (__virtioSetBit(d, 5), 0) });
    const dev = probe(new TraceBus(m.bus), m, bindBus(drv));

    expect(dev.driver).toBeNull();
    expect(dev.probeResult).toBe(-ENODEV);
    expect(drv.state.probes).toBe(0);
    const status = dev.config.getStatus(dev);
    expect(status & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
    expect(status & VIRTIO_CONFIG_S_DRIVER_OK).toBe(0);
    expect(dev.messages.map((x) => x.msg)).toContain('virtio: device refuses features: 3');
  });

  it('fails probe with -ENODEV when the board refuses FEATURES_OK once, and binds on a re-probe', async () => {
    const m = await boot(kind);
    expect(m.control({ op: 'inject', slot: 0, event: 'refuse-features' })).toEqual({ ok: true });
    const vbus = bindBus(virtioRngDriver);
    const dev = probe(new TraceBus(m.bus), m, vbus);
    expect(dev.probeResult).toBe(-ENODEV);
    expect(dev.config.getStatus(dev) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
    virtioMmioRemove(dev);
    const again = probe(new TraceBus(m.bus), m, vbus);
    expect(again.driver).toBe(virtioRngDriver);
    expect(again.config.getStatus(again)).toBe(0xf);
  });

  it('delivers a config change that arrives while config is disabled exactly once, after enable', async () => {
    const m = await boot(kind);
    // One queue: virtio-mmio requests its interrupt in find_vqs, so a driver
    // without queues would never hear of config changes (as in Linux).
    const drv = testDriver(VIRTIO_ID_RNG);
    const dev = probe(new TraceBus(m.bus), m, bindBus(drv));
    expect(dev.configCoreEnabled).toBe(true);

    virtioConfigDriverDisable(dev);
    for (let i = 0; i < 2; i++) {
      expect(m.control({ op: 'inject', slot: 0, event: 'config-change' })).toEqual({ ok: true });
      expect(m.irq.waitAndDeliver(2000)).toBe(1);
    }
    expect(drv.state.configChanges).toBe(0);
    expect(dev.configChangePending).toBe(true);
    expect(m.bus.read(m.slotAddr(0) + REG.InterruptStatus, 4)).toBe(0);

    virtioConfigDriverEnable(dev);
    expect(drv.state.configChanges).toBe(1);
    expect(dev.configChangePending).toBe(false);
    virtioConfigDriverEnable(dev);
    expect(m.irq.deliverPending()).toBe(0);
    expect(drv.state.configChanges).toBe(1);

    // The same through the core's gate: freeze disables, restore re-enables.
    expect(virtioMmioPmOps.freeze(dev)).toBe(0);
    m.control({ op: 'inject', slot: 0, event: 'config-change' });
    expect(m.irq.waitAndDeliver(2000)).toBe(1);
    expect(drv.state.configChanges).toBe(1);
    expect(virtioMmioPmOps.restore(dev)).toBe(0);
    expect(drv.state.configChanges).toBe(2);
  });

  it('ACKs exactly what it read: a used buffer that lands between the read and the ACK is handled next time', async () => {
    const m = await boot(kind);
    const base = m.slotAddr(0);
    const drv = testDriver(VIRTIO_ID_RNG);
    const tb = new TraceBus(m.bus, base);
    const dev = probe(tb, m, bindBus(drv));
    const vq = drv.state.vqs[0] as Virtqueue<string>;
    const buffer = dmaBuffer(m, 64);
    // One full round trip first: the device's DRIVER_OK queue scan has run
    // by then, so the next buffer is only consumed when we notify.
    expect(vq.addInbuf([{ addr: buffer, len: 64 }], 'warm-up')).toBe(0);
    vq.kick();
    until(() => {
      m.irq.deliverPending();
      return drv.state.callbacks[0] === 1;
    });
    expect(vq.getBuf()!.data).toBe('warm-up');
    drv.state.callbacks[0] = 0;
    expect(vq.addInbuf([{ addr: buffer, len: 64 }], 'entropy')).toBe(0);

    m.control({ op: 'inject', slot: 0, event: 'config-change' });
    let injected = false;
    tb.after = (e) => {
      if (injected || e.op !== 'R' || e.offset !== REG.InterruptStatus) return;
      injected = true;
      // The device completes the buffer now, after the driver's read.
      m.bus.write(base + REG.QueueNotify, 4, 0);
      until(() => (m.bus.read(base + REG.InterruptStatus, 4) & VIRTIO_MMIO_INT_VRING) !== 0);
    };
    tb.clear();
    expect(m.irq.waitAndDeliver(2000)).toBe(1);
    expectTrace(tb.log, [
      ['R', 'InterruptStatus', VIRTIO_MMIO_INT_CONFIG],
      ['W', 'InterruptACK', VIRTIO_MMIO_INT_CONFIG],
    ]);
    expect(drv.state.configChanges).toBe(1);
    expect(drv.state.callbacks[0]).toBe(0);
    // The used-buffer event is still pending and keeps the line up.
    expect(m.bus.read(base + REG.InterruptStatus, 4)).toBe(VIRTIO_MMIO_INT_VRING);
    expect(m.irq.isPending(0)).toBe(true);

    tb.clear();
    expect(m.irq.waitAndDeliver(2000)).toBe(1);
    expectTrace(tb.log, [
      ['R', 'InterruptStatus', VIRTIO_MMIO_INT_VRING],
      ['W', 'InterruptACK', VIRTIO_MMIO_INT_VRING],
    ]);
    expect(drv.state.callbacks[0]).toBe(1);
    expect(vq.getBuf()).toEqual({ data: 'entropy', len: 64 });
    expect(dev.config.getStatus(dev)).toBe(0xf);
  });

  it('removes a device (reset, queues and memory freed, IRQ released) and probes it again', async () => {
    const m = await boot(kind);
    const dma = dmaFor(m.mem);
    const before = dma.stats().allocations;
    const vbus = bindBus(virtioRngDriver);
    const dev = probe(new TraceBus(m.bus), m, vbus);
    expect((virtioRngRead(dev, 256) as Uint8Array).length).toBe(256);

    virtioMmioRemove(dev);
    expect(m.bus.read(m.slotAddr(0) + REG.Status, 4)).toBe(1); // reset, then ACKNOWLEDGE again
    expect(dev.vqs).toEqual([]);
    expect(dev.irqHandler).toBeNull();
    expect(dma.stats().allocations).toBe(before);
    expect(virtioRngRead(dev, 1)).toBe(-ENODEV);
    expect(vbus.devices).toEqual([]);

    const again = probe(new TraceBus(m.bus), m, vbus);
    expect(again.name).toBe('virtio0');
    expect((virtioRngRead(again, 4096) as Uint8Array).length).toBe(4096);

    // Unbinding and rebinding the driver on the same device works too.
    unregisterVirtioDriver(virtioRngDriver, vbus);
    expect(again.driver).toBeNull();
    registerVirtioDriver(virtioRngDriver, vbus);
    expect(again.driver).toBe(virtioRngDriver);
    expect((virtioRngRead(again, 10) as Uint8Array).length).toBe(10);
    expect(kernel.warnings).toEqual([]);
  });

  it('restores through the noirq phase with reset_vqs: no allocation, no sleepable call, queues keep working', async () => {
    for (const transport of ['mmio', 'mmio-legacy'] as const) {
      kernel.clear();
      const m = await boot(kind, [{ type: 'rng', transport }]);
      const base = m.slotAddr(0);
      const drv = testDriver(VIRTIO_ID_RNG, { noirq: true });
      const tb = new TraceBus(m.bus, base);
      const dev = probe(tb, m, bindBus(drv));
      const vq = drv.state.vqs[0] as Virtqueue<string>;
      const buffer = dmaBuffer(m, 64);
      const roundTrip = (token: string): void => {
        expect(vq.addInbuf([{ addr: buffer, len: 64 }], token)).toBe(0);
        vq.kick();
        until(() => {
          m.irq.deliverPending();
          return drv.state.callbacks[0]! > 0;
        });
        drv.state.callbacks[0] = 0;
        expect(vq.getBuf()).toEqual({ data: token, len: 64 });
      };
      for (let i = 0; i < 3; i++) roundTrip(`before${i}`);

      const pm = virtioMmioPmOps;
      expect(pm.suspend(dev)).toBe(0);
      kernel.noirqDepth++;
      m.irq.mask(0);
      expect(pm.suspend_noirq(dev)).toBe(0);
      // The platform loses device state across the sleep.
      m.control({ op: 'power', model: 'reset' });
      const allocations = dmaFor(m.mem).stats().allocations;
      tb.clear();
      expect(pm.resume_noirq(dev)).toBe(0);
      expect(dmaFor(m.mem).stats().allocations).toBe(allocations);
      const queueWrites = tb.log.filter((e) => e.op === 'W' && e.offset >= REG.QueueSel && e.offset < REG.InterruptStatus && e.offset !== REG.QueueNotify);
      // vm_reset_vqs reads what vm_setup_vq reads: the queue is not live yet, and its QueueNumMax.
      const queueReads = tb.log.filter((e) => e.op === 'R' && e.offset >= REG.QueueSel && e.offset < REG.InterruptStatus);
      expect(queueReads.map((e) => formatEntry(e))).toEqual([
        transport === 'mmio' ? 'R QueueReady = 0x0' : 'R QueuePFN = 0x0',
        `R QueueNumMax = 0x${m.bus.read(base + REG.QueueNumMax, 4).toString(16)}`,
      ]);
      if (transport === 'mmio') {
        expect(queueWrites.map((e) => formatEntry(e))).toEqual([
          'W QueueSel <- 0x0',
          `W QueueNum <- 0x${vq.getVringSize().toString(16)}`,
          `W QueueReady <- 0x1`,
        ]);
        expect(tb.log.filter((e) => e.offset >= REG.QueueDescLow && e.offset <= REG.QueueDeviceHigh)).toHaveLength(6);
      } else {
        expect(formatEntry(tb.log[0]!)).toBe('W GuestPageSize <- 0x1000');
        expect(queueWrites.map((e) => formatEntry(e))).toEqual([
          'W QueueSel <- 0x0',
          `W QueueNum <- 0x${vq.getVringSize().toString(16)}`,
          'W QueueAlign <- 0x1000',
          `W QueuePFN <- 0x${(vq.getDescAddr() / 4096).toString(16)}`,
        ]);
      }
      expect(dev.config.getStatus(dev) & VIRTIO_CONFIG_S_DRIVER_OK).toBe(VIRTIO_CONFIG_S_DRIVER_OK);
      m.irq.unmask(0);
      kernel.noirqDepth--;
      expect(pm.resume(dev)).toBe(0);
      expect(kernel.warnings).toEqual([]);
      for (let i = 0; i < 3; i++) roundTrip(`after${i}`);
    }
  });

  it('runs the rng driver under CONFIG_VIRTIO_HARDEN_NOTIFICATION (queues start broken until DRIVER_OK)', async () => {
    kernel.hardenNotification = true;
    const m = await boot(kind);
    const dev = probe(new TraceBus(m.bus), m, bindBus(virtioRngDriver));
    expect(dev.vqs[0]!.broken).toBe(false);
    expect((virtioRngRead(dev, 300) as Uint8Array).length).toBe(300);
  });
});

describe('virtio-mmio config ops register by register', () => {
  async function bare(transport: 'mmio' | 'mmio-legacy' = 'mmio'): Promise<{ m: Machine; tb: TraceBus; dev: VirtioMmioDevice }> {
    const m = await boot('inthread', [{ type: 'rng', transport }]);
    const tb = new TraceBus(m.bus, m.slotAddr(0));
    const dev = probe(tb, m, new VirtioBus()); // no driver: stays at ACKNOWLEDGE
    tb.clear();
    return { m, tb, dev };
  }

  it('vm_get/vm_set: Version 2 uses one access of the field width, 8 bytes as two 32-bit halves', async () => {
    const { tb, dev } = await bare();
    for (const len of [1, 2, 4, 8]) dev.config.get(dev, 4, new Uint8Array(len));
    expect(tb.log.map((e) => `${e.op}${e.width}@${e.offset.toString(16)}`)).toEqual(['R1@104', 'R2@104', 'R4@104', 'R4@104', 'R4@108']);
    tb.clear();
    for (const len of [1, 2, 4, 8]) dev.config.set(dev, 0, new Uint8Array(len).fill(0xab));
    expect(tb.log.map((e) => `${e.op}${e.width}@${e.offset.toString(16)}=${e.value.toString(16)}`)).toEqual([
      'W1@100=ab',
      'W2@100=abab',
      'W4@100=abababab',
      'W4@100=abababab',
      'W4@104=abababab',
    ]);
    tb.clear();
    expect(() => dev.config.get(dev, 0, new Uint8Array(3))).toThrow(KernelBug);
    expect(() => dev.config.set(dev, 0, new Uint8Array(16))).toThrow(KernelBug);
    expect(tb.log).toEqual([]);
  });

  it('vm_get on Version 1 reads byte by byte and vm_generation makes no access', async () => {
    const { tb, dev } = await bare('mmio-legacy');
    dev.config.get(dev, 2, new Uint8Array(6));
    expect(tb.log.map((e) => `${e.op}${e.width}@${e.offset.toString(16)}`)).toEqual(['R1@102', 'R1@103', 'R1@104', 'R1@105', 'R1@106', 'R1@107']);
    tb.clear();
    expect(dev.config.generation!(dev)).toBe(0);
    expect(tb.log).toEqual([]);
  });

  it('vm_get stores config values little-endian', async () => {
    const { tb, dev } = await bare();
    tb.override = (off, width) => (off === 0x100 ? (width === 4 ? 0x11223344 : 0x5566) : undefined);
    const b = new Uint8Array(4);
    dev.config.get(dev, 0, b);
    expect([...b]).toEqual([0x44, 0x33, 0x22, 0x11]);
  });

  it('status, reset, generation and features are single plain register accesses', async () => {
    const { tb, dev } = await bare();
    expect(dev.config.getStatus(dev)).toBe(1);
    dev.config.reset(dev);
    dev.config.generation!(dev);
    expect(() => dev.config.setStatus(dev, 0)).toThrow(KernelBug);
    expect(dev.config.getFeatures(dev)).toBe(bit(32) | bit(34) | bit(40) | bit(28) | bit(29));
    expectTrace(tb.log, [
      ['R', 'Status', 1],
      ['W', 'Status', 0],
      ['R', 'ConfigGeneration'],
      ['W', 'DeviceFeaturesSel', 1],
      ['R', 'DeviceFeatures', 0x105],
      ['W', 'DeviceFeaturesSel', 0],
      ['R', 'DeviceFeatures', 0x3000_0000],
    ]);
  });

  it('vm_finalize_features filters transport bits and insists on VERSION_1 for Version 2', async () => {
    const { tb, dev } = await bare();
    dev.features = bit(5) | bit(28) | bit(30) | bit(32) | bit(37) | bit(38) | bit(40) | bit(41);
    expect(dev.config.finalizeFeatures(dev)).toBe(0);
    expect(dev.features).toBe(bit(5) | bit(28) | bit(32) | bit(38));
    expectTrace(tb.log, [
      ['W', 'DriverFeaturesSel', 1],
      ['W', 'DriverFeatures', 0x41],
      ['W', 'DriverFeaturesSel', 0],
      ['W', 'DriverFeatures', 0x1000_0020],
    ]);
    tb.clear();
    dev.features = bit(28);
    expect(dev.config.finalizeFeatures(dev)).toBe(-EINVAL);
    expect(tb.log).toEqual([]);
    expect(dev.messages.map((x) => x.msg)).toContain('New virtio-mmio devices (version 2) must provide VIRTIO_F_VERSION_1 feature!');
  });

  it('vm_find_vqs: a NULL name takes no queue index; a missing queue is -ENOENT and undoes everything', async () => {
    const m = await boot('inthread', ['rng']);
    const dma = dmaFor(m.mem);
    const baseline = dma.stats().allocations;
    const tb = new TraceBus(m.bus, m.slotAddr(0));
    // Skip the first name: queue 0 is set up for the second entry.
    const skip = testDriver(VIRTIO_ID_RNG, { queues: [null, 'input'] });
    const dev = probe(tb, m, bindBus(skip));
    expect(skip.state.findVqsResult).toBe(0);
    expect(skip.state.vqs[0]).toBeNull();
    expect(skip.state.vqs[1]!.index).toBe(0);
    expect(tb.log.filter((e) => e.offset === REG.QueueSel).map((e) => e.value)).toEqual([0]);
    virtioMmioRemove(dev);
    expect(dma.stats().allocations).toBe(baseline);

    // Two queues on a one-queue device: the second has QueueNumMax 0.
    const two = testDriver(VIRTIO_ID_RNG, { queues: ['a', 'b'] });
    tb.clear();
    const dev2 = probe(tb, m, bindBus(two));
    expect(two.state.findVqsResult).toBe(-ENOENT);
    expect(dev2.probeResult).toBe(-ENOENT);
    expect(dev2.vqs).toEqual([]);
    expect(dev2.irqHandler).toBeNull();
    expect(dma.stats().allocations).toBe(baseline);
    const tail = tb.log.slice(tb.log.findIndex((e) => e.op === 'W' && e.offset === REG.QueueSel && e.value === 1));
    expectTrace(tail.slice(0, 8), [
      ['W', 'QueueSel', 1],
      ['R', 'QueueReady', 0],
      ['R', 'QueueNumMax', 0],
      ['W', 'QueueReady', 0],
      ['R', 'QueueReady', 0],
      // vm_del_vqs: queue 0
      ['W', 'QueueSel', 0],
      ['W', 'QueueReady', 0],
      ['R', 'QueueReady', 0],
    ]);
    expect(dev2.config.getStatus(dev2) & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
  });

  it('vm_setup_vq: a queue that is already live is -ENOENT without cleanup writes', async () => {
    const { m, tb, dev } = await bare();
    const vqs: (Virtqueue | null)[] = [null];
    expect(dev.config.findVqs(dev, vqs, [{ name: 'a' }])).toBe(0);
    tb.clear();
    const again: (Virtqueue | null)[] = [null];
    expect(dev.config.findVqs(dev, again, [{ name: 'a' }])).toBe(-ENOENT);
    expectTrace(tb.log.slice(0, 2), [
      ['W', 'QueueSel', 0],
      ['R', 'QueueReady', 1],
    ]);
    // vm_del_vqs of the error path deleted the first queue as well, as in Linux.
    expect(dev.vqs).toEqual([]);
    expect(m.bus.read(m.slotAddr(0) + REG.QueueReady, 4)).toBe(0);
  });

  it('vm_notify writes the queue index, or with NOTIFICATION_DATA the next avail idx above it', async () => {
    const { m, tb, dev } = await bare();
    const buffer = dmaBuffer(m, 16);
    for (const withData of [false, true]) {
      dev.features = bit(VIRTIO_F_VERSION_1) | (withData ? bit(VIRTIO_F_NOTIFICATION_DATA) : 0n);
      const vqs: (Virtqueue | null)[] = [null];
      expect(dev.config.findVqs(dev, vqs, [{ name: 'a' }])).toBe(0);
      const vq = vqs[0] as Virtqueue<string>;
      for (const t of ['x', 'y']) vq.addInbuf([{ addr: buffer, len: 16 }], t);
      tb.clear();
      expect(vq.notify()).toBe(true);
      expect(tb.log.map(formatEntry)).toEqual([withData ? 'W QueueNotify <- 0x20000' : 'W QueueNotify <- 0x0']);
      dev.config.reset(dev);
      dev.config.delVqs(dev);
    }
  });

  it('vm_del_vq warns when QueueReady does not read back 0', async () => {
    const { tb, dev } = await bare();
    const vqs: (Virtqueue | null)[] = [null];
    expect(dev.config.findVqs(dev, vqs, [{ name: 'a' }])).toBe(0);
    tb.override = (off) => (off === REG.QueueReady ? 1 : undefined);
    dev.config.delVqs(dev);
    expect(kernel.warnings).toEqual([
      { kind: 'WARN_ON', dev: dev.name, what: 'readl(vm_dev->base + VIRTIO_MMIO_QUEUE_READY)', where: 'vm_del_vq' },
    ]);
    expect(dev.vqs).toEqual([]);
  });

  it('vm_setup_vq on Version 1 refuses a ring above the 32-bit PFN range with -E2BIG', async () => {
    const m = await boot('inthread', [{ type: 'rng', transport: 'mmio-legacy' }]);
    const size = 1 << 20;
    const sab = new SharedArrayBuffer(size);
    const high: GuestMemory = { base: 2 ** 45, size, u8: new Uint8Array(sab), view: new DataView(sab) };
    const tb = new TraceBus(m.bus, m.slotAddr(0), high);
    const dev = probe(tb, m, new VirtioBus());
    tb.clear();
    const vqs: (Virtqueue | null)[] = [null];
    expect(dev.config.findVqs(dev, vqs, [{ name: 'a' }])).toBe(-E2BIG);
    expect(dev.messages.map((x) => x.msg)).toContain('platform bug: legacy virtio-mmio must not be used with RAM above 0x4000GB');
    expect(formatEntry(tb.log[tb.log.length - 1]!)).toBe('W QueuePFN <- 0x0');
    expect(dmaFor(high).stats().allocations).toBe(0);
  });

  it('vm_find_vqs returns -ENXIO for a device without a usable interrupt line', async () => {
    const m = await boot('inthread', ['rng']);
    const drv = testDriver(VIRTIO_ID_RNG);
    const dev = virtioMmioProbe(new TraceBus(m.bus), m.slotAddr(0), 99, bindBus(drv)) as VirtioMmioDevice;
    expect(dev.probeResult).toBe(-ENXIO);
  });

  it('vm_synchronize_cbs counts as a sleeping call in a noirq phase', async () => {
    const { dev } = await bare();
    kernel.noirqDepth = 1;
    virtioSynchronizeCbs(dev);
    expect(kernel.warnings.map((w) => `${w.kind} ${w.what} ${w.where}`)).toContain('noirq-context synchronize_irq vm_synchronize_cbs');
  });
});

describe('virtio_mmio_probe and the slot scan', () => {
  it('rejects a wrong magic value (-ENODEV) and an unsupported version (-ENXIO) with the kernel message', async () => {
    const m = await boot('inthread', ['rng']);
    const tb = new TraceBus(m.bus, m.slotAddr(0));
    tb.override = (off) => (off === REG.MagicValue ? 0x12345678 : undefined);
    expect(virtioMmioProbe(tb, m.slotAddr(0), 0, new VirtioBus())).toBe(-ENODEV);
    expect(kernel.messages.map((x) => x.msg)).toContain('Wrong magic value 0x12345678!');
    tb.override = (off) => (off === REG.Version ? 3 : undefined);
    expect(virtioMmioProbe(tb, m.slotAddr(0), 0, new VirtioBus())).toBe(-ENXIO);
    expect(kernel.messages.map((x) => x.msg)).toContain('Version 3 not supported!');
    // Nothing was written to a rejected window.
    expect(tb.log.filter((e) => e.op === 'W')).toEqual([]);
  });

  it('treats DeviceID 0 as an empty slot: -ENODEV without a message', async () => {
    const m = await boot('inthread', ['rng']);
    expect(virtioMmioProbe(m.bus, m.slotAddr(1), 1, new VirtioBus())).toBe(-ENODEV);
    expect(kernel.messages).toEqual([]);
  });

  it('scans every window, skipping empty ones and reporting rejected ones', async () => {
    const m = await boot('worker', ['rng', { type: 'rng', slot: 2, transport: 'mmio-legacy' }], 4);
    const tb = new TraceBus(m.bus);
    tb.override = (off, _w, v, addr) => (addr === m.slotAddr(3) + off && off === REG.MagicValue ? 0 : v);
    const vbus = bindBus(virtioRngDriver);
    const scan = virtioMmioScan(tb, 4, vbus);
    expect(scan.devices.map((d) => [d.name, d.base, d.irq, d.version])).toEqual([
      ['virtio0', m.slotAddr(0), 0, 2],
      ['virtio1', m.slotAddr(2), 2, 1],
    ]);
    expect(scan.slots.map((s) => [s.slot, s.ret, s.message])).toEqual([
      [0, 0, null],
      [2, 0, null],
      [3, -ENODEV, 'Wrong magic value 0x00000000!'],
    ]);
    for (const d of scan.devices) expect((virtioRngRead(d, 2048) as Uint8Array).length).toBe(2048);
  });
});
