// The virtio-rng driver (core/drivers/rng.ts) over virtio-mmio on the real
// board, through both buses: reads of many sizes, non-blocking reads,
// freeze/restore, remove, several devices, and bounded waits.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dmaFor } from '../../core/dma.js';
import { driverByName, driverForDeviceId, driverNames } from '../../core/drivers/index.js';
import { VIRTRNG_DATA_SIZE, hwrngList, rngOptions, virtioRngDriver, virtioRngRead, virtioRngStats, virtrngInfo } from '../../core/drivers/rng.js';
import { kernel } from '../../core/kernel.js';
import { ENODEV, ETIMEDOUT } from '../../core/uapi/errno.js';
import { VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { KernelBug, VirtioBus, registerVirtioDriver } from '../../core/virtio.js';
import { Machine, type BusKind, type MachineDeviceEntry } from '../../emulator/machine.js';
import { virtioMmioPmOps, virtioMmioRemove, virtioMmioScan, type VirtioMmioDevice } from '../../transports/mmio/index.js';

const machines: Machine[] = [];

async function rngMachine(bus: BusKind, devices: MachineDeviceEntry[] = ['rng']): Promise<{ m: Machine; devs: VirtioMmioDevice[] }> {
  const m = await Machine.create({ devices, slots: 4, ramSize: 4 << 20, bus });
  machines.push(m);
  const vbus = new VirtioBus();
  registerVirtioDriver(virtioRngDriver, vbus);
  return { m, devs: virtioMmioScan(m.bus, 4, vbus).devices };
}

function read(dev: VirtioMmioDevice, n: number, wait = true): Uint8Array {
  const r = virtioRngRead(dev, n, wait);
  if (typeof r === 'number') throw new Error(`read failed ${r}`);
  return r;
}

beforeEach(() => {
  kernel.clear();
  rngOptions.waitTimeoutMs = 5000;
});

afterEach(async () => {
  rngOptions.waitTimeoutMs = 5000;
  await Promise.all(machines.splice(0).map((m) => m.close()));
});

describe.each(['worker', 'inthread'] as BusKind[])('virtio-rng over the %s bus', (kind) => {
  it('reads exactly N bytes for sizes around the 64-byte request and beyond a page', async () => {
    const { devs } = await rngMachine(kind);
    const dev = devs[0]!;
    expect(hwrngList.has(virtrngInfo(dev)!.name)).toBe(true);
    let total = 0;
    for (const n of [1, 3, 63, 64, 65, 100, 4096, 4097, 10_000, 65_536]) {
      const b = read(dev, n);
      expect(b.length).toBe(n);
      total += n;
      if (n >= 64) expect(b.some((x) => x !== 0)).toBe(true);
    }
    const stats = virtioRngStats(dev);
    expect(stats.bytes).toBe(total);
    expect(stats.errors).toBe(0);
    // Every request is one 64-byte buffer; reads consume them in order.
    expect(stats.completed).toBeGreaterThanOrEqual(Math.ceil(total / VIRTRNG_DATA_SIZE));
    expect(read(dev, 32)).not.toEqual(read(dev, 32));
    expect(kernel.warnings).toEqual([]);
  });

  it('a non-blocking read returns what has arrived, without waiting', async () => {
    const { m, devs } = await rngMachine(kind);
    const dev = devs[0]!;
    // The probe queued one request; until its interrupt is handled nothing is available.
    expect(read(dev, 100, false).length).toBe(0);
    while (virtioRngStats(dev).completed === 0) m.irq.waitAndDeliver(1000);
    expect(read(dev, 100, false).length).toBe(VIRTRNG_DATA_SIZE);
  });

  it('survives freeze and restore (remove_common / probe_common) without leaking DMA memory', async () => {
    const { m, devs } = await rngMachine(kind);
    const dev = devs[0]!;
    read(dev, 500);
    const allocations = dmaFor(m.mem).stats().allocations;
    const name = virtrngInfo(dev)!.name;
    expect(virtioMmioPmOps.freeze(dev)).toBe(0);
    expect(dev.vqs).toEqual([]);
    expect(dev.config.getStatus(dev)).toBe(0);
    expect(hwrngList.has(name)).toBe(false);
    expect(virtioMmioPmOps.restore(dev)).toBe(0);
    expect(dev.config.getStatus(dev)).toBe(0xf);
    expect(dmaFor(m.mem).stats().allocations).toBe(allocations);
    expect(read(dev, 700).length).toBe(700);
    expect(virtioRngStats(dev).bytes).toBe(1200);
    expect(kernel.warnings).toEqual([]);
  });

  it('a second freeze without a restore between (remove_common twice: a double free in Linux) is a kernel bug, and frees nothing allocated since', async () => {
    const { m, devs } = await rngMachine(kind);
    const dev = devs[0]!;
    const data = virtrngInfo(dev)!.data;
    expect(virtioMmioPmOps.freeze(dev)).toBe(0);
    // The next owner of the rng's buffer.
    const dma = dmaFor(m.mem);
    const other = dma.alloc(VIRTRNG_DATA_SIZE, VIRTRNG_DATA_SIZE);
    expect(other).toBe(data);
    expect(() => virtioMmioPmOps.freeze(dev)).toThrow(KernelBug);
    expect(dma.sizeOf(other!)).toBe(VIRTRNG_DATA_SIZE);
    kernel.clear();
  });

  it('fails reads with -ENODEV once the device is removed', async () => {
    const { m, devs } = await rngMachine(kind);
    const dev = devs[0]!;
    const info = virtrngInfo(dev)!;
    virtioMmioRemove(dev);
    expect(virtioRngRead(dev, 10)).toBe(-ENODEV);
    expect(info.hwrngRemoved).toBe(true);
    expect(hwrngList.has(info.name)).toBe(false);
    expect(dmaFor(m.mem).stats().allocations).toBe(0);
  });

  it('serves several devices, each on its own queue and interrupt line', async () => {
    const { devs } = await rngMachine(kind, ['rng', { type: 'rng', transport: 'mmio-legacy' }, 'rng']);
    expect(devs).toHaveLength(3);
    for (let round = 0; round < 3; round++) for (const d of devs) expect(read(d, 333).length).toBe(333);
    expect(devs.map((d) => virtioRngStats(d).bytes)).toEqual([999, 999, 999]);
  });

  it('bounds a blocking read: a masked interrupt line gives -ETIMEDOUT, and reads resume after unmask', async () => {
    const { m, devs } = await rngMachine(kind);
    const dev = devs[0]!;
    rngOptions.waitTimeoutMs = 100;
    m.irq.mask(0);
    const t0 = performance.now();
    expect(virtioRngRead(dev, 16)).toBe(-ETIMEDOUT);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(virtioRngStats(dev).errors).toBe(1);
    m.irq.unmask(0);
    rngOptions.waitTimeoutMs = 5000;
    expect(read(dev, 16).length).toBe(16);
  });
});

describe('driver registry', () => {
  it('lists the rng driver by name and by device ID', () => {
    expect(driverNames()).toContain('rng');
    expect(driverByName('rng')!.driver).toBe(virtioRngDriver);
    expect(driverForDeviceId(VIRTIO_ID_RNG)!.name).toBe('rng');
    expect(driverByName('nope')).toBeUndefined();
  });

  it('runs the default exercise on a bound device', async () => {
    const { devs } = await rngMachine('inthread');
    const r = driverByName('rng')!.exercise(devs[0]!, { bytes: 4096 });
    expect(r.failures).toEqual([]);
    expect(r.bytes).toBe(4096);
    expect(r.requests).toBeGreaterThanOrEqual(64);
  });
});
