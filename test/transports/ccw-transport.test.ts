// The virtio-ccw transport (transports/ccw.ts) against the channel subsystem
// through the real machine: every device model probed and exercised by its
// driver over ccw, revision negotiation down to legacy, config access,
// error mapping, remove, mixed mmio/ccw machines, and the bounded wait.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusError, type AccessWidth, type Bus } from '../../core/bus.js';
import { dmaFor } from '../../core/dma.js';
import { driverForDeviceId, drivers } from '../../core/drivers/index.js';
import { virtconsInfo } from '../../core/drivers/console.js';
import { virtioRngDriver, virtioRngRead, virtioRngStats } from '../../core/drivers/rng.js';
import { kernel } from '../../core/kernel.js';
import {
  CCW_CMD_READ_VQ_CONF,
  CSS_REG,
  VIRTIO_CCW_CU_TYPE,
  VIRTIO_CCW_DOING_READ_FEAT,
  VIRTIO_CCW_DOING_READ_VQ_CONF,
  VIRTIO_CCW_DOING_RESET,
} from '../../core/uapi/ccw.js';
import { EIO, ENODEV, EOPNOTSUPP, ETIMEDOUT } from '../../core/uapi/errno.js';
import { VIRTIO_F_VERSION_1, hasBit } from '../../core/uapi/features.js';
import { VIRTIO_ID_CONSOLE, VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { VirtioBus, registerVirtioDriver, virtioCread16, type VirtioDevice } from '../../core/virtio.js';
import { BUILTIN_DEVICE_TYPES } from '../../emulator/devices/catalog.js';
import { Machine, type BusKind, type MachineDeviceEntry } from '../../emulator/machine.js';
import {
  CcwDevice,
  ccwIoHelper,
  ccwOptions,
  ccwScanner,
  virtioCcwIntHandler,
  virtioCcwParams,
  virtioCcwProbe,
  virtioCcwRemove,
  virtioCcwScan,
  type VirtioCcwDevice,
} from '../../transports/ccw/index.js';
import { virtioMmioScan } from '../../transports/mmio/index.js';

const machines: Machine[] = [];

async function machine(devices: MachineDeviceEntry[], bus: BusKind = 'worker', slots = 4): Promise<Machine> {
  const m = await Machine.create({ devices, slots, ramSize: 8 << 20, bus });
  machines.push(m);
  return m;
}

function allDrivers(): VirtioBus {
  const vbus = new VirtioBus();
  for (const d of drivers.values()) registerVirtioDriver(d.driver, vbus);
  return vbus;
}

function rngBus(): VirtioBus {
  const vbus = new VirtioBus();
  registerVirtioDriver(virtioRngDriver, vbus);
  return vbus;
}

function read(dev: VirtioDevice, n: number): Uint8Array {
  const r = virtioRngRead(dev, n, true);
  if (typeof r === 'number') throw new Error(`rng read failed ${r}`);
  return r;
}

/** A bus that counts START SUBCHANNELs and can drop the next few. */
class SschCountingBus implements Bus {
  ssch = 0;
  drop = 0;
  constructor(private readonly inner: Bus) {}
  get mem() {
    return this.inner.mem;
  }
  get irq() {
    return this.inner.irq;
  }
  read(addr: number, width: AccessWidth): number {
    return this.inner.read(addr, width);
  }
  write(addr: number, width: AccessWidth, value: number): void {
    if ((addr & 0x3f) === CSS_REG.Ssch && addr >= 0x0c00_0000 && addr < 0x0d00_0000) {
      this.ssch++;
      if (this.drop > 0) {
        this.drop--;
        return;
      }
    }
    this.inner.write(addr, width, value);
  }
}

beforeEach(() => {
  kernel.clear();
  virtioCcwParams.useAirq = true;
  ccwOptions.ioTimeoutMs = 1000;
});

afterEach(async () => {
  await Promise.all(machines.splice(0).map((m) => m.close()));
});

describe.each(['worker', 'inthread'] as BusKind[])('virtio-ccw over the %s bus', (kind) => {
  it('probes a virtio-rng subchannel at revision 2 and reads entropy', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }], kind);
    const { devices, slots } = virtioCcwScan(m.bus, 4, rngBus());
    expect(slots).toHaveLength(1);
    const dev = devices[0]!;
    expect(dev.driver?.name).toBe('virtio_rng');
    expect(dev.id).toEqual({ vendor: VIRTIO_CCW_CU_TYPE, device: VIRTIO_ID_RNG });
    expect(dev.revision).toBe(2);
    expect(dev.config.busName(dev)).toBe('0.0.0000');
    expect(hasBit(dev.features, VIRTIO_F_VERSION_1)).toBe(true);
    expect(dev.config.getStatus(dev)).toBe(0x0f);
    expect(dev.config.noirqSafe).toBe(false);
    expect(dev.config.resetVqs).toBeUndefined();
    // Adapter interrupts were refused, classic indicators are in use.
    expect(dev.isThinint).toBe(false);
    for (const n of [1, 64, 65, 4096, 10_000]) expect(read(dev, n).length).toBe(n);
    expect(virtioRngStats(dev).errors).toBe(0);
    expect(m.irq.deliveredCount(0)).toBeGreaterThan(0);
    const stats = m.control({ op: 'stats' });
    expect(stats.ok && (stats.value as { slots: { guestErrors: number; status: number }[] }).slots[0]).toMatchObject({ guestErrors: 0, status: 0x0f });
    expect(kernel.warnings).toEqual([]);
  });

  it.each(BUILTIN_DEVICE_TYPES)('%s: probes over ccw and passes its driver\'s I/O check', async (type) => {
    const m = await machine([{ type, transport: 'ccw', slot: 2 }], kind);
    const { devices, slots } = virtioCcwScan(m.bus, 4, allDrivers());
    expect(slots.map((s) => [s.slot, s.ret])).toEqual([[2, 0]]);
    const dev = devices[0]!;
    const entry = driverForDeviceId(dev.id.device);
    expect(entry, `a driver for ${type}`).toBeDefined();
    expect(dev.driver).toBe(entry!.driver);
    const r = entry!.exercise(dev, { bytes: 4096 });
    expect(r.failures).toEqual([]);
    expect(r.errors).toBe(0);
    expect(r.requests).toBeGreaterThan(0);
    expect(kernel.warnings).toEqual([]);
  });
});

describe('revision negotiation', () => {
  it.each([
    [2, 2],
    [1, 1],
    [0, 0],
    [-1, 0],
  ])('ccw.max_revision %i: the driver settles on revision %i and the device works', async (max, rev) => {
    const m = await machine([{ type: 'rng', transport: 'ccw', options: { 'ccw.max_revision': max } }]);
    const bus = new SschCountingBus(m.bus);
    const dev = virtioCcwProbe(bus, 0, rngBus()) as VirtioCcwDevice;
    expect(typeof dev).toBe('object');
    expect(dev.revision).toBe(rev);
    expect(hasBit(dev.features, VIRTIO_F_VERSION_1)).toBe(rev >= 1);
    expect(read(dev, 300).length).toBe(300);
    // get_status reads the device only from revision 2; below it is the cached byte.
    const before = bus.ssch;
    expect(dev.config.getStatus(dev)).toBe(rev >= 1 ? 0x0f : 0x07);
    expect(bus.ssch - before).toBe(rev >= 2 ? 1 : 0);
    const stats = m.control({ op: 'stats' });
    expect(stats.ok && (stats.value as { slots: { guestErrors: number }[] }).slots[0]!.guestErrors).toBe(0);
  });

  it('the restore path renegotiates the same revision on a live device', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }]);
    const dev = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
    const { virtioCcwSetTransportRev } = await import('../../transports/ccw/index.js');
    expect(virtioCcwSetTransportRev(dev)).toBe(0);
    expect(dev.revision).toBe(2);
    expect(read(dev, 100).length).toBe(100);
  });
});

describe('config ops', () => {
  it('reads device config with READ_CONF from offset 0 and keeps a shadow of it', async () => {
    const m = await machine([{ type: 'console', transport: 'ccw', options: { cols: 100, rows: 40 } }]);
    const dev = virtioCcwProbe(m.bus, 0, allDrivers()) as VirtioCcwDevice;
    expect(dev.id.device).toBe(VIRTIO_ID_CONSOLE);
    expect(virtioCread16(dev, 0)).toBe(100);
    expect(virtioCread16(dev, 2)).toBe(40);
    expect(dev.configReady).toBeGreaterThanOrEqual(4);
    expect(Array.from(dev.configShadow.subarray(0, 4))).toEqual([100, 0, 40, 0]);
    const b = new Uint8Array(2);
    dev.config.set(dev, 8, b); // read-only to the model; the write completes
    expect(kernel.warnings).toEqual([]);
  });

  it('a config change reaches the driver through the config indicator, and its handler may do channel I/O', async () => {
    const m = await machine([{ type: 'console', transport: 'ccw', options: { out: 'none' } }]);
    const dev = virtioCcwProbe(m.bus, 0, allDrivers()) as VirtioCcwDevice;
    expect(virtconsInfo(dev)?.port.ws).toBeNull();
    expect(m.control({ op: 'inject', slot: 0, event: 'resize', args: { cols: 120, rows: 50 } }).ok).toBe(true);
    // The driver's config_changed reads the new size with READ_CONF from inside the interrupt.
    for (let i = 0; i < 100 && virtconsInfo(dev)?.port.ws?.cols !== 120; i++) m.irq.waitAndDeliver(10);
    expect(virtconsInfo(dev)?.port.ws).toEqual({ cols: 120, rows: 50 });
    expect(dev.configShadow[0]).toBe(120);
    expect(kernel.warnings).toEqual([]);
  });

  it('a device that refuses FEATURES_OK fails probe with -ENODEV at revision 2 and 1 alike', async () => {
    for (const max of [2, 1]) {
      kernel.clear();
      const m = await machine([{ type: 'rng', transport: 'ccw', options: { 'ccw.max_revision': max } }]);
      expect(m.control({ op: 'inject', slot: 0, event: 'refuse-features' }).ok).toBe(true);
      const dev = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
      expect(dev.driver).toBeNull();
      expect(dev.probeResult).toBe(-ENODEV);
      expect(kernel.messages.some((x) => /device refuses features/.test(x.msg))).toBe(true);
      // FAILED reached the device.
      const stats = m.control({ op: 'stats' });
      expect(stats.ok && (stats.value as { slots: { status: number }[] }).slots[0]!.status & 0x80).toBe(0x80);
    }
  });

  it('remove releases the queues, the interrupt handler and every DMA byte', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }]);
    const dma = dmaFor(m.mem);
    const base = dma.stats().allocations;
    const dev = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
    read(dev, 100);
    virtioCcwRemove(dev);
    expect(dev.vqs).toEqual([]);
    expect(dma.stats().allocations).toBe(base);
    // The device was reset by the driver and the subchannel is free for a new probe.
    const again = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
    expect(read(again, 100).length).toBe(100);
  });

  it('a subchannel without a device is -ENODEV; the scan skips it silently', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw', slot: 1 }]);
    expect(virtioCcwProbe(m.bus, 0, rngBus())).toBe(-ENODEV);
    const r = ccwScanner.scan(m.bus, 4, rngBus());
    expect(r.errors).toEqual([]);
    expect(r.devices.map((d) => [d.slot, d.line, d.transport])).toEqual([[1, 1, 'ccw']]);
  });
});

describe('mixed machines', () => {
  it('virtio-mmio and virtio-ccw devices side by side, each found by its own transport', async () => {
    const m = await machine([
      { type: 'rng', transport: 'mmio' },
      { type: 'rng', transport: 'ccw' },
      { type: 'console', transport: 'ccw' },
      { type: 'blk', transport: 'mmio' },
    ]);
    const vbus = allDrivers();
    const mmio = virtioMmioScan(m.bus, 4, vbus);
    const ccw = virtioCcwScan(m.bus, 4, vbus);
    expect(mmio.slots.map((s) => s.slot)).toEqual([0, 3]);
    expect(ccw.slots.map((s) => s.slot)).toEqual([1, 2]);
    for (const dev of [...mmio.devices, ...ccw.devices]) {
      expect(dev.driver, dev.name).not.toBeNull();
      expect(driverForDeviceId(dev.id.device)!.exercise(dev, { bytes: 1024 }).failures).toEqual([]);
    }
    // Interleaved I/O on both transports of the same type.
    for (let i = 0; i < 5; i++) {
      expect(read(mmio.devices[0]!, 200).length).toBe(200);
      expect(read(ccw.devices[0]!, 200).length).toBe(200);
    }
    const stats = m.control({ op: 'stats' });
    expect(stats.ok && (stats.value as { slots: { guestErrors: number }[] }).slots.map((s) => s.guestErrors)).toEqual([0, 0, 0, 0]);
    expect(kernel.warnings).toEqual([]);
  });
});

describe('channel programs and the wait', () => {
  it('a bad channel program from another user ends in a unit check and leaves the driver working', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }]);
    const dev = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
    const { cdev } = dev;
    // A foreign program: unknown command. The driver's handler leaves its status alone.
    const dma = dmaFor(m.mem);
    const ccw = dma.alloc(8, 8)!;
    const area = dma.alloc(8, 8)!;
    const dv = new DataView(m.mem.u8.buffer, m.mem.u8.byteOffset);
    const at = (a: number) => a - m.mem.base;
    dv.setUint8(at(ccw), 0x99);
    dv.setUint16(at(ccw) + 2, 4, true);
    dv.setUint32(at(ccw) + 4, area, true);
    const orb = dma.alloc(16, 8)!;
    dv.setUint32(at(orb), 0x4242, true);
    dv.setUint32(at(orb) + 8, ccw, true);
    const irb = dma.alloc(64, 8)!;
    m.bus.write(cdev.base + CSS_REG.OrbLow, 4, orb);
    m.bus.write(cdev.base + CSS_REG.OrbHigh, 4, 0);
    m.bus.write(cdev.base + CSS_REG.Ssch, 4, 0);
    let st = 0;
    for (let i = 0; i < 200 && !(st & 0x100); i++) {
      m.irq.waitAndDeliver(5);
      st = m.bus.read(cdev.base + CSS_REG.Status, 4);
    }
    expect(st & 0x100).toBe(0x100);
    m.bus.write(cdev.base + CSS_REG.IrbLow, 4, irb);
    m.bus.write(cdev.base + CSS_REG.IrbHigh, 4, 0);
    m.bus.write(cdev.base + CSS_REG.Tsch, 4, 0);
    expect(dv.getUint32(at(irb), true)).toBe(0x4242);
    expect(dv.getUint8(at(irb) + 12)).toBe(0x0e); // CE | DE | unit check
    expect(dv.getUint8(at(irb) + 32)).toBe(0x80); // command reject
    expect(read(dev, 500).length).toBe(500);
    // A command reject maps to -EOPNOTSUPP in ccw_io_helper; a READ_VQ_CONF for a missing queue is fine.
    dv.setUint8(at(ccw), CCW_CMD_READ_VQ_CONF);
    dv.setUint16(at(area), 5, true);
    expect(ccwIoHelper(dev, ccw, VIRTIO_CCW_DOING_READ_VQ_CONF)).toBe(0);
    expect(dv.getUint16(at(area) + 2, true)).toBe(0);
  });

  it('no interrupt on an enabled line: the cio timeout path gives -ETIMEDOUT, and the device recovers', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }]);
    const bus = new SschCountingBus(m.bus);
    const dev = virtioCcwProbe(bus, 0, rngBus()) as VirtioCcwDevice;
    dev.ioTimeoutMs = 100;
    bus.drop = 1; // the next SSCH never reaches the device; the earlier cc 0 reads back
    const t0 = performance.now();
    expect(dev.config.getStatus(dev)).toBe(0x0f); // the cached byte, as Linux returns it on failure
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    expect(dev.err).toBe(-ETIMEDOUT);
    expect(kernel.messages.some((x) => /no I\/O interrupt within 100 ms/.test(x.msg))).toBe(true);
    expect(read(dev, 100).length).toBe(100);
    expect(dev.config.getStatus(dev)).toBe(0x0f);
    expect(dev.err).toBe(0);
  });

  it('a dead machine surfaces as BusError from the op, not as a hang', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }]);
    const dev = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
    await m.terminateWorker();
    expect(() => dev.config.getStatus(dev)).toThrow(BusError);
  });

  it('a data area outside RAM is a unit check with command reject: -EOPNOTSUPP, and the device stays usable', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }]);
    const dev = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
    const dma = dmaFor(m.mem);
    const ccw = dma.alloc(8, 8)!;
    const dv = new DataView(m.mem.u8.buffer, m.mem.u8.byteOffset);
    dv.setUint8(ccw - m.mem.base, CCW_CMD_READ_VQ_CONF);
    dv.setUint16(ccw - m.mem.base + 2, 4, true);
    dv.setUint32(ccw - m.mem.base + 4, 0x1000, true);
    expect(ccwIoHelper(dev, ccw, VIRTIO_CCW_DOING_READ_VQ_CONF)).toBe(-EOPNOTSUPP);
    expect(read(dev, 64).length).toBe(64);
  });

  it('virtio_ccw_int_handler maps other error status to -EIO and an error IRB to its errno', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw' }], 'inthread');
    const dev = virtioCcwProbe(m.bus, 0, rngBus()) as VirtioCcwDevice;
    const irb = { intparm: 0, cc: 0, fctl: 4, actl: 0, stctl: 7, cpa: 0, dstat: 0x0c, cstat: 0x20, count: 0, ecw: new Uint8Array(32) };
    dev.currIo = VIRTIO_CCW_DOING_READ_FEAT;
    virtioCcwIntHandler(dev.cdev, VIRTIO_CCW_DOING_READ_FEAT, irb);
    expect([dev.err, dev.currIo]).toEqual([-EIO, 0]);
    dev.currIo = VIRTIO_CCW_DOING_READ_FEAT;
    virtioCcwIntHandler(dev.cdev, VIRTIO_CCW_DOING_READ_FEAT, { ...irb, cstat: 0, dstat: 0x0e, ecw: Uint8Array.of(0x80) });
    expect([dev.err, dev.currIo]).toEqual([-EOPNOTSUPP, 0]);
    dev.currIo = VIRTIO_CCW_DOING_RESET;
    virtioCcwIntHandler(dev.cdev, VIRTIO_CCW_DOING_RESET, -ETIMEDOUT);
    expect([dev.err, dev.currIo]).toEqual([-ETIMEDOUT, 0]);
    // An activity that is not in flight changes nothing; an unknown one in flight warns.
    dev.err = 0;
    dev.currIo = 0x4000_0000;
    virtioCcwIntHandler(dev.cdev, 0x4000_0000, { ...irb, cstat: 0 });
    expect(kernel.warnings.map((w) => w.where)).toEqual(['virtio_ccw_check_activity']);
    dev.currIo = 0;
    expect(read(dev, 64).length).toBe(64);
  });
});

describe('ccw_device', () => {
  it('reads SENSE ID at creation and names itself by bus id', async () => {
    const m = await machine([{ type: 'rng', transport: 'ccw', slot: 3 }]);
    const cdev = new CcwDevice(m.bus, 3);
    expect(cdev.name).toBe('0.0.0003');
    expect(cdev.id).toEqual({ cuType: VIRTIO_CCW_CU_TYPE, cuModel: VIRTIO_ID_RNG });
    expect(cdev.start(0, 0)).toBe(-ENODEV); // not online
    expect(cdev.enable()).toBe(0);
    cdev.disable();
  });
});
