// The virtio-blk driver (core/drivers/blk.ts) on the real machine: devices in
// the worker, every step a trapped register access. Config at probe, the data
// path (read, write, flush, GET_ID), errors (read-only, out of range), several
// requests in flight, and data that survives suspend and hibernation.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  virtblkFlush,
  virtblkGetId,
  virtblkInfo,
  virtblkKick,
  virtblkNameFormat,
  virtblkRead,
  virtblkReap,
  virtblkStats,
  virtblkSubmit,
  virtblkWait,
  virtblkWrite,
  virtioBlkDriver,
  type VirtblkReq,
} from '../../core/drivers/blk.js';
import { driverByName } from '../../core/drivers/index.js';
import { dmaForDevice } from '../../core/dma.js';
import { kernel } from '../../core/kernel.js';
import { EAGAIN, EINVAL, EIO, ENOSPC } from '../../core/uapi/errno.js';
import { registerVirtioDriver, unregisterVirtioDriver, type VirtioDevice } from '../../core/virtio.js';
import { toVvq } from '../../core/virtqueue/vring.js';
import type { DeviceOptionValue } from '../../emulator/board-contract.js';
import { type PowerModel, VirtioSystem } from '../../tools/system.js';

const dir = mkdtempSync(join(tmpdir(), 'blk-driver-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const systems: VirtioSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close()));
  kernel.clear();
});

async function boot(options: Record<string, DeviceOptionValue> = { size: '4M' }, bus: 'worker' | 'inthread' = 'worker') {
  const sys = await VirtioSystem.create({ devices: [{ type: 'blk', options }], drivers: [virtioBlkDriver], bus });
  systems.push(sys);
  const vdev = sys.device(0)!;
  expect(vdev.driver).toBe(virtioBlkDriver);
  return { sys, vdev };
}

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed + (i >> 9)) & 0xff;
  return b;
}

/** Byte equality without vitest's element-by-element diff (slow on megabytes). */
function sameBytes(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  const i = a.findIndex((x, k) => x !== b[k]);
  return i < 0 ? 'same' : `differ at ${i}`;
}

function read(vdev: VirtioDevice, sector: number, count: number): Uint8Array {
  const r = virtblkRead(vdev, sector, count);
  if (typeof r === 'number') throw new Error(`read failed: ${r}`);
  return r;
}

describe('probe', () => {
  it('reads capacity (64-bit, generation loop), blk_size, seg_max, size_max and the features', async () => {
    const { vdev } = await boot({ size: '4M', serial: 'disk-0' });
    const vblk = virtblkInfo(vdev)!;
    expect(vblk.capacity).toBe((4 << 20) / 512);
    expect(vblk.blkSize).toBe(512);
    expect(vblk.sgElems).toBeGreaterThan(1);
    expect(vblk.maxSegmentSize).toBeGreaterThanOrEqual(4096);
    expect(vblk.maxRequestBytes).toBeLessThanOrEqual(vblk.sgElems * vblk.maxSegmentSize);
    expect(vblk.readOnly).toBe(false);
    expect(vblk.writeCache).toBe(true);
    expect(vblk.diskName).toMatch(/^vd[a-z]+$/);
    expect(vdev.config.getStatus(vdev)).toBe(0x0f);
    expect(vdev.vqs.map((q) => q.name)).toEqual(['req.0']);
    expect(kernel.warnings).toEqual([]);
  });

  it('names disks like Linux', () => {
    expect([0, 1, 25, 26, 27, 701, 702].map((i) => virtblkNameFormat('vd', i))).toEqual(['vda', 'vdb', 'vdz', 'vdaa', 'vdab', 'vdzz', 'vdaaa']);
  });
});

describe.each(['worker', 'inthread'] as const)('the data path over the %s bus', (bus) => {
  it('writes and reads back single sectors, multi-request transfers and the last sector; flush and GET_ID answer', async () => {
    const { vdev } = await boot({ size: '4M', serial: 'serial-123' }, bus);
    const cap = virtblkInfo(vdev)!.capacity;
    for (const [sector, count, seed] of [
      [0, 1, 1],
      [7, 3, 2],
      [100, 2048 + 5, 3], // spans several requests of max_hw_sectors
      [cap - 1, 1, 4],
    ] as const) {
      const data = pattern(count * 512, seed);
      expect(virtblkWrite(vdev, sector, data)).toBe(data.length);
      expect(sameBytes(read(vdev, sector, count), data)).toBe('same');
    }
    // an unwritten sector reads as zeros
    expect(read(vdev, 50, 1).every((b) => b === 0)).toBe(true);
    expect(virtblkFlush(vdev)).toBe(0);
    expect(virtblkGetId(vdev)).toBe('serial-123');
    const s = virtblkStats(vdev);
    expect(s.errors).toBe(0);
    expect(s.completed).toBe(s.requests);
    expect(kernel.warnings).toEqual([]);
  });
});

describe('errors', () => {
  it('a read-only disk refuses writes with -EIO and keeps its data; reads work', async () => {
    const file = join(dir, 'ro.img');
    {
      const { sys, vdev } = await boot({ file, create: '1M' });
      expect(virtblkWrite(vdev, 2, pattern(512, 9))).toBe(512);
      expect(virtblkFlush(vdev)).toBe(0);
      await sys.close();
    }
    const { vdev } = await boot({ file, ro: true });
    expect(virtblkInfo(vdev)!.readOnly).toBe(true);
    expect(virtblkWrite(vdev, 2, pattern(512, 1))).toBe(-EIO);
    expect(sameBytes(read(vdev, 2, 1), pattern(512, 9))).toBe('same');
    expect(vdev.messages.some((m) => m.msg.includes('read-only block-device'))).toBe(true);
    expect(sameBytes(readFileSync(file).subarray(1024, 1536), pattern(512, 9))).toBe('same');
  });

  it('out of range: the block layer refuses with -EIO; a raw request past the end gets IOERR from the device', async () => {
    const { vdev } = await boot({ size: '1M' });
    const cap = virtblkInfo(vdev)!.capacity;
    const before = virtblkStats(vdev).requests;
    expect(virtblkRead(vdev, cap, 1)).toBe(-EIO);
    expect(virtblkRead(vdev, cap - 1, 2)).toBe(-EIO);
    expect(virtblkWrite(vdev, cap, pattern(512, 1))).toBe(-EIO);
    expect(virtblkStats(vdev).requests).toBe(before); // nothing reached the device
    const req = virtblkSubmit(vdev, { op: 'read', sector: cap - 1, count: 2 }) as VirtblkReq;
    expect(typeof req).toBe('object');
    expect(virtblkWait(vdev, req)).toBe(-EIO);
    expect(req.len).toBe(1); // only the status byte was written
    expect(virtblkStats(vdev).errors).toBe(1);
    // malformed I/O never reaches the ring
    expect(virtblkWrite(vdev, 0, new Uint8Array(100))).toBe(-EINVAL);
    expect(virtblkSubmit(vdev, { op: 'read', sector: 0, count: 0 })).toBe(-EINVAL);
  });
});

describe('several requests in flight', () => {
  it('submits N requests with one kick and reaps them all', async () => {
    const { vdev } = await boot({ size: '4M' });
    const vq = virtblkInfo(vdev)!.vq!;
    const n = 32;
    const reqs: VirtblkReq[] = [];
    for (let i = 0; i < n; i++) {
      const r = virtblkSubmit(vdev, { op: 'write', sector: i * 8, data: pattern(4096, i) }, { kick: false });
      expect(typeof r).toBe('object');
      reqs.push(r as VirtblkReq);
    }
    expect(virtblkInfo(vdev)!.inflight).toBe(n);
    expect(vq.numFree).toBeLessThan(vq.getVringSize());
    virtblkKick(vdev);
    const got: VirtblkReq[] = [];
    while (got.length < n) {
      const r = virtblkReap(vdev, n - got.length);
      if (typeof r === 'number') throw new Error(`reap ${r}`);
      got.push(...r);
    }
    expect(got.map((r) => r.tag).sort((a, b) => a - b)).toEqual(reqs.map((r) => r.tag));
    expect(got.every((r) => r.done && r.result === 0)).toBe(true);
    expect(virtblkInfo(vdev)!.inflight).toBe(0);
    // reads in flight as well, data checked per request
    for (let i = 0; i < n; i++) virtblkSubmit(vdev, { op: 'read', sector: i * 8, count: 8 }, { kick: false });
    virtblkKick(vdev);
    const reads: VirtblkReq[] = [];
    while (reads.length < n) reads.push(...(virtblkReap(vdev, n - reads.length) as VirtblkReq[]));
    for (const r of reads) expect(sameBytes(r.buf!, pattern(4096, r.sector / 8))).toBe('same');
    expect(virtblkReap(vdev, 1)).toEqual([]);
  });

  it('a full ring answers -ENOSPC until completions are reaped', async () => {
    const { vdev } = await boot({ size: '4M', queueSize: 4 });
    const submitted: VirtblkReq[] = [];
    let r: VirtblkReq | number;
    while (typeof (r = virtblkSubmit(vdev, { op: 'read', sector: 0, count: 1 }, { kick: false })) === 'object') submitted.push(r);
    expect(r).toBe(-ENOSPC);
    expect(submitted.length).toBeGreaterThan(0);
    virtblkKick(vdev);
    const done = virtblkReap(vdev, submitted.length) as VirtblkReq[];
    expect(done).toHaveLength(submitted.length);
    // a transfer larger than the ring still completes
    const data = pattern(64 * 512, 5);
    expect(virtblkWrite(vdev, 0, data)).toBe(data.length);
    expect(sameBytes(read(vdev, 0, 64), data)).toBe('same');
  });
});

describe('system sleep', () => {
  it.each<PowerModel>(['retain', 'reset', 'fresh'])('data written before a suspend (power %s) reads back after; the queue is set up again', async (power) => {
    const { sys, vdev } = await boot({ size: '2M' });
    const data = pattern(16 * 512, 7);
    expect(virtblkWrite(vdev, 10, data)).toBe(data.length);
    const ring = vdev.vqs[0];
    const t = sys.suspend({ power });
    expect(t.result).toBe(0);
    expect(vdev.vqs[0]).not.toBe(ring); // del_vqs + find_vqs
    expect(sameBytes(read(vdev, 10, 16), data)).toBe('same');
    expect(virtblkWrite(vdev, 40, data)).toBe(data.length);
    expect(sameBytes(read(vdev, 40, 16), data)).toBe('same');
    expect(kernel.warnings).toEqual([]);
  });

  it('freeze drains requests in flight; I/O while frozen is refused with -EAGAIN', async () => {
    const { sys, vdev } = await boot({ size: '2M' });
    const reqs = [0, 1, 2, 3].map((i) => virtblkSubmit(vdev, { op: 'write', sector: i, data: pattern(512, i) }, { kick: false }) as VirtblkReq);
    virtblkKick(vdev);
    let during: unknown = null;
    sys.dpm.hooks.push((e) => {
      if (e.phase === 'suspend' && e.when === 'after') during = virtblkRead(vdev, 0, 1);
    });
    expect(sys.suspend().result).toBe(0);
    expect(during).toBe(-EAGAIN);
    expect(reqs.every((r) => r.done && r.result === 0)).toBe(true);
    expect((virtblkReap(vdev, 4) as VirtblkReq[]).length).toBe(4);
    for (let i = 0; i < 4; i++) expect(sameBytes(read(vdev, i, 1), pattern(512, i))).toBe('same');
  });

  it.each(['ram', 'file'])('data written before a hibernation with power loss (%s backend) reads back after', async (backend) => {
    const options: Record<string, DeviceOptionValue> = backend === 'file' ? { file: join(dir, 'hib.img'), create: '2M' } : { size: '2M' };
    const { sys, vdev } = await boot(options);
    const before = pattern(32 * 512, 11);
    expect(virtblkWrite(vdev, 100, before)).toBe(before.length);
    expect(virtblkFlush(vdev)).toBe(0);
    const t = sys.hibernate({ power: 'fresh' });
    expect(t.result).toBe(0);
    expect(t.records.some((r) => r.kernel === 'boot')).toBe(true);
    expect(sameBytes(read(vdev, 100, 32), before)).toBe('same');
    // and the disk keeps working
    const after = pattern(8 * 512, 12);
    expect(virtblkWrite(vdev, 200, after)).toBe(after.length);
    expect(sameBytes(read(vdev, 200, 8), after)).toBe('same');
    expect(virtblkGetId(vdev)).toBe('virtio-mmio-emu');
    if (backend === 'file') expect(sameBytes(readFileSync(options['file'] as string).subarray(100 * 512, 132 * 512), before)).toBe('same');
    expect(kernel.warnings).toEqual([]);
  });
});

describe('the registry entry', () => {
  it('exercise() checks a pattern at the end of the disk and leaves the data as it was', async () => {
    const { vdev } = await boot({ size: '1M' });
    const cap = virtblkInfo(vdev)!.capacity;
    const mine = pattern(8 * 512, 3);
    expect(virtblkWrite(vdev, cap - 8, mine)).toBe(mine.length);
    const entry = driverByName('blk')!;
    const r = entry.exercise(vdev, { bytes: 4096 });
    expect(r.failures).toEqual([]);
    expect(r.requests).toBeGreaterThan(0);
    expect(sameBytes(read(vdev, cap - 8, 8), mine)).toBe('same');
    expect(entry.stats(vdev).errors).toBe(0);
  });

  it('exercise() on a read-only disk only reads', async () => {
    const { vdev } = await boot({ size: '1M', ro: true });
    expect(driverByName('blk')!.exercise(vdev, { bytes: 4096 }).failures).toEqual([]);
    expect(virtblkStats(vdev).errors).toBe(0);
  });
});

describe('the tag set', () => {
  it('requests take preallocated slots (no DMA allocation per 4 KiB request); bigger ones allocate and free their own data; suspend rebuilds the slots', async () => {
    const { sys, vdev } = await boot({ size: '4M' });
    const vblk = virtblkInfo(vdev)!;
    const dma = dmaForDevice(vdev);
    const base = dma.stats().allocations;
    expect(vblk.tags!.slots).toBe(vblk.vq!.getVringSize());
    expect(vblk.tags!.free).toHaveLength(vblk.tags!.slots);
    const reqs = [0, 1, 2, 3].map((i) => virtblkSubmit(vdev, { op: 'write', sector: i * 8, data: pattern(4096, i) }, { kick: false }) as VirtblkReq);
    // Only the ring's indirect tables, if any: one per request at most, kept by the queue.
    const withTables = dma.stats().allocations;
    expect(withTables - base).toBeLessThanOrEqual(4);
    expect(new Set(reqs.map((r) => r.hdr)).size).toBe(4);
    virtblkKick(vdev);
    expect((virtblkReap(vdev, 4) as VirtblkReq[]).length).toBe(4);
    expect(vblk.tags!.free).toHaveLength(vblk.tags!.slots);
    // Read straight into the caller's buffer.
    const into = new Uint8Array(4096);
    const r = virtblkSubmit(vdev, { op: 'read', sector: 8, count: 8, into }) as VirtblkReq;
    expect(virtblkWait(vdev, r)).toBe(0);
    expect(r.buf).toBe(into);
    expect(sameBytes(into, pattern(4096, 1))).toBe('same');
    expect(virtblkSubmit(vdev, { op: 'read', sector: 0, count: 8, into: new Uint8Array(512) })).toBe(-EINVAL);
    // A request bigger than a slot's page.
    const big = pattern(64 * 1024, 9);
    const before = dma.stats().used;
    const w = virtblkSubmit(vdev, { op: 'write', sector: 0, data: big }) as VirtblkReq;
    expect(dma.stats().used - before).toBeGreaterThanOrEqual(big.length);
    expect(virtblkWait(vdev, w)).toBe(0);
    expect(dma.stats().allocations).toBe(withTables);
    expect(sameBytes(read(vdev, 0, 128), big)).toBe('same');
    // freeze frees the slots with the queue, restore allocates them again.
    const tags = vblk.tags;
    expect(sys.suspend().result).toBe(0);
    expect(vblk.tags).not.toBe(tags);
    expect(vblk.tags!.free).toHaveLength(vblk.tags!.slots);
    expect(dma.stats().allocations).toBe(base);
    expect(sameBytes(read(vdev, 0, 128), big)).toBe('same');
  });
});

describe.each(['split', 'packed'] as const)('indirect tables on a %s ring', (ring) => {
  /** Keep `depth` requests in flight until `n` have completed, as blk-mq at queue depth 64 does. */
  function run(vdev: VirtioDevice, n: number, depth: number): void {
    let submitted = 0;
    let done = 0;
    let inflight = 0;
    while (done < n) {
      while (inflight < depth && submitted < n) {
        const sector = ((submitted * 37) % 1024) * 8;
        const io = submitted % 2 ? { op: 'read' as const, sector, count: 8 } : { op: 'write' as const, sector, data: pattern(4096, submitted) };
        const r = virtblkSubmit(vdev, io, { kick: false });
        if (typeof r === 'number') throw new Error(`submit: ${r}`);
        submitted++;
        inflight++;
      }
      virtblkKick(vdev);
      const reaped = virtblkReap(vdev, 1);
      if (typeof reaped === 'number') throw new Error(`reap: ${reaped}`);
      for (const req of reaped) expect(req.result).toBe(0);
      inflight -= reaped.length;
      done += reaped.length;
    }
  }

  it('after warm-up, requests at depth 64 make no DMA allocator call; unbinding the driver gives back every byte probe took', async () => {
    const sys = await VirtioSystem.create({ devices: [{ type: 'blk', options: { size: '8M', packed: ring === 'packed' } }], drivers: [] });
    systems.push(sys);
    const vdev = sys.device(0)!;
    const dma = dmaForDevice(vdev);
    const beforeProbe = dma.stats().used;
    registerVirtioDriver(virtioBlkDriver, sys.kernel.virtioBus);
    const vq = virtblkInfo(vdev)!.vq!;
    expect(toVvq(vq).packedRing).toBe(ring === 'packed');
    const probed = dma.stats().allocations;
    // A 4 KiB request is header, data, status: three descriptors, so indirect.
    expect(vq.getVringSize()).toBeGreaterThanOrEqual(64);
    run(vdev, 256, 64);
    const warm = dma.stats();
    run(vdev, 2000, 64);
    const after = dma.stats();
    expect([after.allocCalls - warm.allocCalls, after.freeCalls - warm.freeCalls]).toEqual([0, 0]);
    expect(after.used).toBe(warm.used);
    // A table per head (split) or buffer id (packed) the queue used: never more than were in flight at once.
    expect(warm.allocations - probed).toBeGreaterThan(0);
    expect(warm.allocations - probed).toBeLessThanOrEqual(64);
    expect(virtblkStats(vdev).errors).toBe(0);
    unregisterVirtioDriver(virtioBlkDriver, sys.kernel.virtioBus);
    expect(vdev.driver).toBeNull();
    expect(dma.stats().used).toBe(beforeProbe);
  });

  it('suspend (freeze: del_vqs; restore: find_vqs) and hibernation leave no table behind', async () => {
    const { sys, vdev } = await boot({ size: '8M', packed: ring === 'packed' });
    const dma = dmaForDevice(vdev);
    const probed = dma.stats().used;
    run(vdev, 200, 64);
    expect(dma.stats().used).toBeGreaterThan(probed);
    expect(sys.suspend().result).toBe(0);
    expect(dma.stats().used).toBe(probed);
    run(vdev, 200, 64);
    expect(sys.hibernate().result).toBe(0);
    expect(dma.stats().used).toBe(probed);
    run(vdev, 200, 64);
    expect(virtblkStats(vdev).errors).toBe(0);
  });
});
