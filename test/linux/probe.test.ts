// Linux 6.12's virtio core, virtio-mmio and virtio-rng (compiled to wasm32)
// probing and driving the emulator's rng over virtio-mmio Version 2 and
// legacy Version 1: status, features, entropy, the rings the device
// processed, sysfs and uevents, several devices, empty windows, remove and
// re-probe.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1 } from '../../core/uapi/features.js';
import { VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { REG, regName } from '../../core/uapi/mmio.js';
import { VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../core/uapi/status.js';
import type { BoardStats } from '../../emulator/board.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { STACK_SIZE } from '../../linux/build/config.js';
import { LINUX_WASM_PATH, LinuxKernel, RNG_BUFFER_SIZE, linuxBuildInfo, memoryImport, type LinuxSystem } from '../../linux/host/index.js';
import { VirtioSystem } from '../../tools/system.js';
import { TraceBus, type TraceEntry } from '../helpers/trace-bus.js';
import { boot, built, closeAllAfterEach, noteSkipped, ramU16, ramU32, ramU64 } from './helpers.js';

noteSkipped();

const OK_V2 = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
const OK_V1 = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK;
const VERSION_1 = 1n << BigInt(VIRTIO_F_VERSION_1);
const RING_PACKED = 1n << BigInt(VIRTIO_F_RING_PACKED);

function stats(sys: LinuxSystem): BoardStats {
  const r = sys.machine.control({ op: 'stats' });
  if (!r.ok) throw new Error(r.error);
  return r.value as BoardStats;
}

function reg(sys: LinuxSystem, slot: number, offset: number): number {
  return sys.machine.bus.read(sys.machine.slotAddr(slot) + offset, 4);
}

function allEqual(b: Uint8Array): boolean {
  return b.every((x) => x === b[0]);
}

describe.skipIf(!built)('Linux virtio-rng probe', () => {
  closeAllAfterEach();

  describe.each([
    ['mmio', 2, OK_V2],
    ['mmio-legacy', 1, OK_V1],
  ] as [TransportKind, number, number][])('over %s (Version %i)', (transport, version, okStatus) => {
    it('binds virtio_rng, reaches DRIVER_OK and registers an hwrng, with nothing logged', async () => {
      const sys = await boot({ devices: ['rng'], transport });
      expect(reg(sys, 0, REG.Version)).toBe(version);
      const d = sys.kernel.device(0)!;
      expect(d).toMatchObject({
        transport: 'virtio-mmio.0',
        transportDriver: 'virtio-mmio',
        dev: 'virtio0',
        index: 0,
        deviceId: VIRTIO_ID_RNG,
        driver: 'virtio_rng',
        status: okStatus,
        rng: 'virtio_rng.0',
        vqs: 1,
      });
      // What Linux read is what the register holds and what the device side reports.
      expect(reg(sys, 0, REG.Status)).toBe(okStatus);
      expect(stats(sys).slots[0]!.status).toBe(okStatus);
      expect((d.features & VERSION_1) !== 0n).toBe(version === 2);
      // Negotiated features are a subset of what the device offers.
      sys.machine.bus.write(sys.machine.slotAddr(0) + REG.DeviceFeaturesSel, 4, 0);
      const lo = reg(sys, 0, REG.DeviceFeatures);
      sys.machine.bus.write(sys.machine.slotAddr(0) + REG.DeviceFeaturesSel, 4, 1);
      const offered = (BigInt(reg(sys, 0, REG.DeviceFeatures)) << 32n) | BigInt(lo);
      expect(d.features & ~offered).toBe(0n);
      expect(sys.kernel.log).toEqual([]);
      expect(sys.kernel.warnings).toEqual([]);
      expect(stats(sys).slots[0]!.guestErrors).toBe(0);
    });

    it('reads entropy: exact lengths for 1, 16, 64 and 4096 bytes, different on every read', async () => {
      const sys = await boot({ devices: ['rng'], transport });
      const seen = new Set<string>();
      for (const n of [1, 16, 64, 4096]) {
        const a = sys.kernel.rngRead(0, n);
        const b = sys.kernel.rngRead(0, n);
        expect(a.length).toBe(n);
        expect(b.length).toBe(n);
        if (n >= 16) {
          expect(allEqual(a)).toBe(false);
          expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
          seen.add(Buffer.from(a).toString('hex'));
          seen.add(Buffer.from(b).toString('hex'));
        }
      }
      expect(seen.size).toBe(6);
      expect(sys.kernel.warnings).toEqual([]);
      expect(stats(sys).slots[0]!.guestErrors).toBe(0);
    });

    it('the device served the split ring Linux laid out in guest RAM', async () => {
      let trace: TraceBus | null = null;
      // packed=false: the device offers no VIRTIO_F_RING_PACKED, so Linux lays out a split ring (legacy never has one)
      const sys = await boot({ devices: [{ type: 'rng', options: { packed: false } }], transport, wrapBus: (b) => (trace = new TraceBus(b)) });
      const total = 3000;
      sys.kernel.rngRead(0, total);
      const d = sys.kernel.device(0)!;
      const vq = d.vq0!;
      // The ring is where the transport told the device (these registers are write-only).
      const written = (offset: number): number[] => trace!.log.filter((e) => e.op === 'W' && e.offset === offset).map((e) => e.value);
      if (version === 2) {
        expect(written(REG.QueueDescLow)).toEqual([vq.desc]);
        expect(written(REG.QueueDriverLow)).toEqual([vq.avail]);
        expect(written(REG.QueueDeviceLow)).toEqual([vq.used]);
        expect(reg(sys, 0, REG.QueueReady)).toBe(1);
      } else {
        expect(reg(sys, 0, REG.QueuePFN)).toBe(vq.desc / 4096);
      }
      expect(written(REG.QueueNum)).toEqual([vq.size]);
      // Inside guest RAM, in the kernel's heap.
      const heap = sys.kernel.memStats();
      expect(vq.desc - PLATFORM.RAM_BASE).toBeGreaterThanOrEqual(heap.heapStart);
      expect(vq.used + 4 + 8 * vq.size).toBeLessThanOrEqual(PLATFORM.RAM_BASE + heap.heapEnd);
      // The worker may serve the request virtio-rng queued next at any
      // moment: the ring is read between two readings of the device's count.
      const before = stats(sys).slots[0]!.usedBuffers;
      const availIdx = ramU16(sys, vq.avail + 2);
      const usedIdx = ramU16(sys, vq.used + 2);
      const s = stats(sys).slots[0]!;
      // Every buffer the device returned is in the used ring; one request is always outstanding or just done.
      expect(usedIdx).toBeGreaterThanOrEqual(before);
      expect(usedIdx).toBeLessThanOrEqual(s.usedBuffers);
      expect(usedIdx).toBeGreaterThanOrEqual(Math.ceil(total / RNG_BUFFER_SIZE));
      expect(availIdx - usedIdx).toBeGreaterThanOrEqual(0);
      expect(availIdx - usedIdx).toBeLessThanOrEqual(1);
      expect(s.notifications).toBeGreaterThan(0);
      expect(s.ringErrors).toBe(0);
      // The last used element: a 64-byte device-writable buffer of virtio-rng's.
      const e = vq.used + 4 + 8 * ((usedIdx - 1) % vq.size);
      const id = ramU32(sys, e);
      expect(ramU32(sys, e + 4)).toBe(RNG_BUFFER_SIZE);
      const desc = vq.desc + 16 * id;
      const addr = ramU64(sys, desc);
      expect(ramU32(sys, desc + 8)).toBe(RNG_BUFFER_SIZE);
      expect(ramU16(sys, desc + 12) & VRING_DESC_F_WRITE).toBe(VRING_DESC_F_WRITE);
      expect(addr).toBeGreaterThanOrEqual(PLATFORM.RAM_BASE + heap.heapStart);
      expect(addr + RNG_BUFFER_SIZE).toBeLessThanOrEqual(PLATFORM.RAM_BASE + heap.heapEnd);
    });

    it('removes and re-probes: the device is reset and acknowledged, then bound again with nothing leaked', async () => {
      const sys = await boot({ devices: ['rng'], transport });
      sys.kernel.rngRead(0, 100);
      const before = sys.kernel.memStats();
      sys.kernel.remove(0);
      const gone = sys.kernel.device(0)!;
      expect(gone).toMatchObject({ transportDriver: null, dev: null, driver: null, rng: null });
      // remove_common() reset the device, virtio_dev_remove() acknowledged it again.
      expect(reg(sys, 0, REG.Status)).toBe(VIRTIO_CONFIG_S_ACKNOWLEDGE);
      if (version === 2) expect(reg(sys, 0, REG.QueueReady)).toBe(0);
      else expect(reg(sys, 0, REG.QueuePFN)).toBe(0);
      expect(() => sys.kernel.rngRead(0, 16)).toThrow(/no registered hwrng/);
      expect(sys.kernel.uevents.filter((u) => u.action === 'remove').map((u) => u.dev)).toEqual(['virtio0']);

      expect(sys.kernel.probe(0)).toBe(true);
      expect(sys.kernel.device(0)).toMatchObject({ dev: 'virtio0', driver: 'virtio_rng', status: okStatus, rng: 'virtio_rng.0' });
      const a = sys.kernel.rngRead(0, 64);
      expect(allEqual(a)).toBe(false);
      sys.kernel.remove(0);
      sys.kernel.probe(0);
      sys.kernel.rngRead(0, 100);
      const after = sys.kernel.memStats();
      expect(after.kmallocLive).toBe(before.kmallocLive);
      expect(after.kmallocBytes).toBe(before.kmallocBytes);
      expect(after.pagesFree).toBe(before.pagesFree);
      expect(sys.kernel.log).toEqual([]);
      expect(sys.kernel.warnings).toEqual([]);
    });

    it('unbinds and rebinds the virtio driver while the virtio device stays', async () => {
      const sys = await boot({ devices: ['rng'], transport });
      sys.kernel.unbindDriver(0);
      expect(sys.kernel.device(0)).toMatchObject({ dev: 'virtio0', driver: null, status: VIRTIO_CONFIG_S_ACKNOWLEDGE, rng: null, vqs: 0 });
      expect(sys.kernel.bindDriver(0)).toBe(true);
      expect(sys.kernel.device(0)).toMatchObject({ dev: 'virtio0', driver: 'virtio_rng', status: okStatus, rng: 'virtio_rng.0', vqs: 1 });
      expect(sys.kernel.rngRead(0, 32).length).toBe(32);
      expect(sys.kernel.warnings).toEqual([]);
    });
  });

  it('over mmio (Version 2), Linux negotiates VIRTIO_F_RING_PACKED and the device served the packed ring Linux laid out', async () => {
    let trace: TraceBus | null = null;
    const sys = await boot({ devices: ['rng'], wrapBus: (b) => (trace = new TraceBus(b)) });
    const total = 3000;
    expect(sys.kernel.rngRead(0, total).length).toBe(total);
    const d = sys.kernel.device(0)!;
    expect(d.features & RING_PACKED).toBe(RING_PACKED);
    const vq = d.vq0!;
    // QueueDesc: the descriptor ring; QueueDriver/QueueDevice: the two event suppression areas.
    const written = (offset: number): number[] => trace!.log.filter((e) => e.op === 'W' && e.offset === offset).map((e) => e.value);
    expect(written(REG.QueueDescLow)).toEqual([vq.desc]);
    expect(written(REG.QueueDriverLow)).toEqual([vq.avail]);
    expect(written(REG.QueueDeviceLow)).toEqual([vq.used]);
    expect(written(REG.QueueNum)).toEqual([vq.size]);
    expect(vq.size).toBe(reg(sys, 0, REG.QueueNumMax));
    // Three separate page-aligned allocations in the kernel's heap (vring_alloc_queue_packed).
    const heap = sys.kernel.memStats();
    for (const a of [vq.desc, vq.avail, vq.used]) {
      expect(a % 4096).toBe(0);
      expect(a - PLATFORM.RAM_BASE).toBeGreaterThanOrEqual(heap.heapStart);
      expect(a - PLATFORM.RAM_BASE).toBeLessThan(heap.heapEnd);
    }
    // virtio-rng queues its next buffer as soon as a read completes and the
    // worker may serve it at any moment, so the ring is scanned with one read
    // of each flags word and held between two readings of the device's count.
    const before = stats(sys).slots[0]!.usedBuffers;
    expect(before).toBeGreaterThanOrEqual(Math.ceil(total / RNG_BUFFER_SIZE));
    // virtio-rng posts one one-descriptor buffer at a time: used descriptors fill
    // positions 0..used-1 with AVAIL = USED = 1, id below the ring size, len 64.
    const flagsAt = (i: number): number => ramU16(sys, vq.desc + 16 * i + 14);
    let used = 0;
    let nextFlags = flagsAt(0);
    while (used < vq.size && (nextFlags & 0x8080) === 0x8080) {
      expect(ramU32(sys, vq.desc + 16 * used + 8)).toBe(RNG_BUFFER_SIZE);
      expect(ramU16(sys, vq.desc + 16 * used + 12)).toBeLessThan(vq.size);
      used++;
      nextFlags = flagsAt(used);
    }
    const s = stats(sys).slots[0]!;
    expect(s.ringErrors).toBe(0);
    expect(s.guestErrors).toBe(0);
    expect(used).toBeGreaterThanOrEqual(before);
    expect(used).toBeLessThanOrEqual(s.usedBuffers);
    expect(used).toBeLessThan(vq.size); // one lap: the device's used wrap counter is still 1
    // The next position is untouched (zeroed at allocation) or holds the
    // request virtio-rng queued next: available (AVAIL = 1, USED = 0),
    // device-writable, 64 bytes in the heap.
    const next = vq.desc + 16 * used;
    expect([0, 0x80]).toContain(nextFlags & 0x8080);
    if (nextFlags !== 0) {
      expect(nextFlags & VRING_DESC_F_WRITE).toBe(VRING_DESC_F_WRITE);
      expect(ramU32(sys, next + 8)).toBe(RNG_BUFFER_SIZE);
      expect(ramU64(sys, next) - PLATFORM.RAM_BASE).toBeGreaterThanOrEqual(heap.heapStart);
    }
    expect(flagsAt(used + 1)).toBe(0);
    // EVENT_IDX negotiated: the device asked to be kicked at a descriptor
    // (flags DESC); Linux left its own area at ENABLE (its vq has a callback).
    expect(ramU16(sys, vq.used + 2)).toBe(2);
    expect(ramU16(sys, vq.avail + 2)).toBe(0);
    expect(sys.kernel.log).toEqual([]);
    expect(sys.kernel.warnings).toEqual([]);
  });

  it('shows the virtio bus attributes through virtio.c and sends its uevents', async () => {
    const sys = await boot({ devices: ['rng'] });
    const d = sys.kernel.device(0)!;
    expect(sys.kernel.sysfs(0, 'device')).toBe(`0x${VIRTIO_ID_RNG.toString(16).padStart(4, '0')}\n`);
    expect(sys.kernel.sysfs(0, 'vendor')).toBe(`0x${d.vendorId.toString(16).padStart(8, '0')}\n`);
    expect(sys.kernel.sysfs(0, 'status')).toBe(`0x${OK_V2.toString(16).padStart(8, '0')}\n`);
    const modalias = `virtio:d${VIRTIO_ID_RNG.toString(16).toUpperCase().padStart(8, '0')}v${d.vendorId.toString(16).toUpperCase().padStart(8, '0')}`;
    expect(sys.kernel.sysfs(0, 'modalias')).toBe(`${modalias}\n`);
    const bits = sys.kernel.sysfs(0, 'features');
    expect(bits).toHaveLength(65);
    const fromBits = [...bits.trim()].reduce((acc, c, i) => (c === '1' ? acc | (1n << BigInt(i)) : acc), 0n);
    expect(fromBits).toBe(d.features);
    expect(sys.kernel.uevents).toContainEqual({ action: 'add', dev: 'virtio0', env: [`MODALIAS=${modalias}`] });
    expect(sys.kernel.uevents).toContainEqual({ action: 'add', dev: 'virtio-mmio.0', env: ['MODALIAS=platform:virtio-mmio'] });
  });

  it('probes several devices and windows: rng on both versions, a device without a driver, an empty window', async () => {
    const sys = await boot({ devices: ['rng', { type: 'rng', transport: 'mmio-legacy' }, 'blk'], linuxSlots: 'all' });
    const ds = sys.kernel.devices();
    expect(ds.map((d) => [d.slot, d.dev, d.driver, d.status])).toEqual([
      [0, 'virtio0', 'virtio_rng', OK_V2],
      [1, 'virtio1', 'virtio_rng', OK_V1],
      // virtio_blk is not built: registered, reset and acknowledged, no driver.
      [2, 'virtio2', null, VIRTIO_CONFIG_S_ACKNOWLEDGE],
      // DeviceID 0: virtio_mmio_probe() ends with -ENODEV, silently.
      [3, null, null, 0],
    ]);
    expect(ds[3]!.transportDriver).toBeNull();
    expect(ds.map((d) => d.rng)).toEqual(['virtio_rng.0', 'virtio_rng.1', null, null]);
    expect(Buffer.from(sys.kernel.rngRead(0, 64)).equals(Buffer.from(sys.kernel.rngRead(1, 64)))).toBe(false);
    expect(sys.kernel.log).toEqual([]);
    expect(stats(sys).slots.map((s) => s.guestErrors)).toEqual([0, 0, 0, 0]);
  });

  it('drives the machine through any Bus: a tracing wrapper sees the probe as Linux makes it', async () => {
    let trace: TraceBus | null = null;
    const sys = await boot({
      devices: ['rng'],
      wrapBus: (b) => (trace = new TraceBus(b)),
    });
    const log = trace!.log;
    expect(sys.bus).toBe(trace);
    // virtio_mmio_probe(): magic, version, device id, vendor id, in this order.
    expect(log.slice(0, 4).map((e) => [e.op, e.offset])).toEqual([
      ['R', REG.MagicValue],
      ['R', REG.Version],
      ['R', REG.DeviceID],
      ['R', REG.VendorID],
    ]);
    // register_virtio_device() and virtio_dev_probe(): reset, ACK, DRIVER, FEATURES_OK, DRIVER_OK.
    const statusWrites = log.filter((e) => e.op === 'W' && e.offset === REG.Status).map((e) => e.value);
    expect(statusWrites).toEqual([0, 1, 3, 0xb, 0xf]);
    const n = log.length;
    sys.kernel.rngRead(0, 64);
    expect(log.slice(n).some((e) => e.op === 'W' && e.offset === REG.QueueNotify)).toBe(true);
    expect(log.slice(n).some((e) => e.op === 'R' && e.offset === REG.InterruptStatus)).toBe(true);
  });

  it.each(['mmio', 'mmio-legacy'] as TransportKind[])(
    "the TypeScript model's probe over %s makes Linux's register accesses, ring addresses aside",
    async (transport) => {
      const ADDRESS_REGS = new Set<number>([REG.QueueDescLow, REG.QueueDriverLow, REG.QueueDeviceLow, REG.QueuePFN]);
      const show = (log: TraceEntry[], base: number): string[] =>
        log
          .filter((e) => e.addr >= base && e.addr < base + 0x200)
          .map((e) => `${e.op} ${regName(e.offset)} ${ADDRESS_REGS.has(e.offset) ? '(ring address)' : e.value.toString(16)}`);
      let modelTrace: TraceBus | null = null;
      const model = await VirtioSystem.create({ devices: [{ type: 'rng', transport }], slots: 1, wrapBus: (b) => (modelTrace = new TraceBus(b)) });
      const modelSeq = show(modelTrace!.log, model.machine.slotAddr(0));
      await model.close();
      let linuxTrace: TraceBus | null = null;
      const sys = await boot({ devices: [{ type: 'rng', transport }], slots: 1, wrapBus: (b) => (linuxTrace = new TraceBus(b)) });
      const linuxSeq = show(linuxTrace!.log, sys.machine.slotAddr(0));
      expect(linuxSeq.length).toBeGreaterThan(20);
      expect(modelSeq).toEqual(linuxSeq);
    },
  );

  it('lives in guest RAM: the memory is the size linked in, the stack below the data, the heap above', async () => {
    const imp = memoryImport(fs.readFileSync(LINUX_WASM_PATH));
    expect(imp.shared).toBe(true);
    expect(imp.maximum).toBe(imp.initial);
    const info = linuxBuildInfo()!;
    expect(info.ramSize).toBe(imp.initial * 65536);
    expect(info.ramSize).toBe(PLATFORM.RAM_SIZE_DEFAULT);
    expect(info.files).toContain('drivers/virtio/virtio_ring.c');
    expect(info.linux).toMatch(/^Linux 6\.12\./);
    const memory = await LinuxKernel.createMemory();
    expect(memory.buffer.byteLength).toBe(info.ramSize);
    const sys = await boot({ devices: ['rng'] });
    const m = sys.kernel.memStats();
    expect(m.ramSize).toBe(info.ramSize);
    expect(m.heapStart).toBeGreaterThan(STACK_SIZE);
    expect(m.heapEnd).toBe(info.ramSize);
    expect(m.pagesFree).toBeLessThan(m.pagesTotal);
    expect(m.kmallocLive).toBeGreaterThan(0);
    expect(m.allocFailures).toBe(0);
  });
});
