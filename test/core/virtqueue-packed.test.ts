// The driver side of the packed ring (core/virtqueue/packed.ts, after
// virtio_ring.c's *_packed functions) against a device peer written from
// the spec layout: creation, add/get with the wrap counters over many laps,
// out-of-order completion, indirect tables, kick suppression through the
// device's area, callback control through the driver's area, detach,
// reinit and vring_interrupt. The split ring's tests are in virtqueue.test.ts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IRQ_HANDLED, IRQ_NONE, type GuestMemory } from '../../core/bus.js';
import { DmaAllocator } from '../../core/dma.js';
import { kernel } from '../../core/kernel.js';
import { EIO, ENOMEM, ENOSPC } from '../../core/uapi/errno.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit } from '../../core/uapi/features.js';
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_PACKED_EVENT_FLAG_DESC,
  VRING_PACKED_EVENT_FLAG_DISABLE,
  VRING_PACKED_EVENT_FLAG_ENABLE,
} from '../../core/uapi/ring.js';
import type { VirtioConfigOps, Virtqueue, VqCallback } from '../../core/virtio-types.js';
import { KernelBug, VirtioBus, VirtioDevice } from '../../core/virtio.js';
import { PackedVirtqueue } from '../../core/virtqueue/packed.js';
import { toVvq, vringCreateVirtqueue, vringDelVirtqueue, vringNotificationData } from '../../core/virtqueue/vring.js';
import { PackedPeer } from '../helpers/packed-peer.js';

const RAM_BASE = 0x4000_0000;
const AVAIL = 1 << 7;
const PACKED = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_RING_PACKED);

function makeMem(size = 1 << 20): GuestMemory {
  const sab = new SharedArrayBuffer(size);
  return { base: RAM_BASE, size, u8: new Uint8Array(sab), view: new DataView(sab) };
}

const noOps = new Proxy({} as VirtioConfigOps, {
  get: (_t, p) => (p === 'noirqSafe' ? true : () => 0),
});

const buf = (addr: number, len: number) => ({ addr, len });

function setup(opts: { num?: number; features?: bigint; callback?: boolean; ctx?: boolean; dma?: (m: GuestMemory) => DmaAllocator } = {}) {
  const mem = makeMem();
  const dma = opts.dma ? opts.dma(mem) : new DmaAllocator(mem);
  const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
  vdev.features = opts.features ?? PACKED;
  const s = { notified: [] as number[], calls: 0 };
  const cb: VqCallback | null = opts.callback === false ? null : () => void s.calls++;
  const notify = (q: Virtqueue): boolean => {
    s.notified.push(q.index);
    return true;
  };
  const vq = vringCreateVirtqueue<string>(0, opts.num ?? 8, 4096, vdev, true, true, opts.ctx ?? false, notify, cb, 'test', dma);
  if (typeof vq === 'number' || !(vq instanceof PackedVirtqueue)) throw new Error('not a packed ring');
  const peer = new PackedPeer(mem, vq.getVringSize(), vq.getDescAddr(), vq.getAvailAddr(), vq.getUsedAddr());
  return { ...s, s, mem, dma, vdev, vq, peer };
}

beforeEach(() => kernel.clear());
afterEach(() => {
  kernel.hardenNotification = false;
});

describe('vring_create_virtqueue with VIRTIO_F_RING_PACKED', () => {
  it('lays out the descriptor ring and the two event areas as three zeroed page-aligned allocations, of any size', () => {
    const { vq, dma, vdev } = setup({ num: 100 });
    expect(vq.packedRing).toBe(true);
    expect(vq.getVringSize()).toBe(100);
    expect(vq.numFree).toBe(100);
    for (const a of [vq.getDescAddr(), vq.getAvailAddr(), vq.getUsedAddr()]) expect(a % 4096).toBe(0);
    expect(new Set([vq.getDescAddr(), vq.getAvailAddr(), vq.getUsedAddr()]).size).toBe(3);
    // 100 × 16 bytes in one page, then a page per event area.
    expect(dma.stats().used).toBe(3 * 4096);
    expect(vdev.vqs).toEqual([vq]);
    expect(vq.lastUsedIdx).toBe(1 << 15);
    expect(vq.availIdx).toBe(1 << 15);
  });

  it('never reduces num: -ENOMEM when the ring does not fit, with nothing left allocated', () => {
    const mem = makeMem();
    const dma = new DmaAllocator(mem, RAM_BASE, 3 * 4096);
    const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
    vdev.features = PACKED;
    expect(vringCreateVirtqueue(0, 1024, 4096, vdev, true, true, false, () => true, null, 'q', dma)).toBe(-ENOMEM);
    expect(vringCreateVirtqueue(0, 512, 4096, vdev, true, true, false, () => true, null, 'q', dma)).toBe(-ENOMEM);
    expect(dma.stats().used).toBe(0);
    expect(typeof vringCreateVirtqueue(0, 256, 4096, vdev, true, false, false, () => true, null, 'q', new DmaAllocator(mem, RAM_BASE + 0x10000, 6 * 4096))).toBe('object');
  });

  it('del() unlinks the queue and frees the three allocations and any indirect table', () => {
    const { vq, dma, vdev } = setup({ features: PACKED | bit(VIRTIO_RING_F_INDIRECT_DESC) });
    vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, 'x');
    vringDelVirtqueue(vq);
    expect(vdev.vqs).toEqual([]);
    expect(dma.stats().used).toBe(0);
  });

  it('starts broken only with CONFIG_VIRTIO_HARDEN_NOTIFICATION', () => {
    expect(setup().vq.isBroken()).toBe(false);
    kernel.hardenNotification = true;
    expect(setup().vq.isBroken()).toBe(true);
  });

  it('to_vvq refuses what is not a vring', () => {
    expect(() => toVvq({ name: 'other' } as unknown as Virtqueue)).toThrow(KernelBug);
  });
});

describe('add / get (virtqueue_add_packed, virtqueue_get_buf_ctx_packed)', () => {
  it('writes the chain in ring order with the lap\'s AVAIL/USED bits, NEXT, WRITE and the id in every descriptor', () => {
    const { vq, peer } = setup();
    expect(vq.addSgs([buf(0x4010_0000, 16), buf(0x4010_1000, 32), buf(0x4010_2000, 64)], 2, 1, 'req')).toBe(0);
    expect(vq.numFree).toBe(5);
    const c = peer.pop()!;
    expect(c.top.map((d) => d.flags)).toEqual([AVAIL | VRING_DESC_F_NEXT, AVAIL | VRING_DESC_F_NEXT, AVAIL | VRING_DESC_F_WRITE]);
    expect(c.top.map((d) => d.id)).toEqual([0, 0, 0]);
    expect(c.bufs).toEqual([
      { addr: 0x4010_0000, len: 16, write: false },
      { addr: 0x4010_1000, len: 32, write: false },
      { addr: 0x4010_2000, len: 64, write: true },
    ]);
    expect(vq.getBuf()).toBeNull();
    peer.push(c.id, 64, 3);
    expect(vq.getBuf()).toEqual({ data: 'req', len: 64 });
    expect(vq.numFree).toBe(8);
    // last_used advanced by the buffer's three descriptors.
    expect(vq.lastUsedIdx).toBe((1 << 15) | 3);
    expect(vq.getBuf()).toBeNull();
  });

  it('returns -ENOSPC when the ring is full, without the split ring\'s notify', () => {
    const { vq, notified } = setup({ num: 4 });
    for (let i = 0; i < 4; i++) expect(vq.addInbuf([buf(0x4010_0000 + i * 64, 64)], `b${i}`)).toBe(0);
    expect(vq.addInbuf([buf(0x4010_1000, 64)], 'x')).toBe(-ENOSPC);
    expect(vq.addOutbuf([buf(0x4010_1000, 64)], 'x')).toBe(-ENOSPC);
    expect(notified).toEqual([]);
  });

  it('-EIO when broken; a NULL token, zero sgs and too few sgs are kernel bugs', () => {
    const { vq, peer } = setup();
    vq.addInbuf([buf(0x4010_0000, 8)], 'a');
    peer.serveAll();
    vq.broken = true;
    expect(vq.addInbuf([buf(0x4010_0000, 8)], 'b')).toBe(-EIO);
    expect(vq.getBuf()).toBeNull();
    expect(vq.notify()).toBe(false);
    vq.broken = false;
    expect(() => vq.addInbuf([buf(0x4010_0000, 8)], null as unknown as string)).toThrow(KernelBug);
    expect(() => vq.addInbuf([], 'z')).toThrow(KernelBug);
    expect(() => vq.addSgs([buf(0x4010_0000, 8)], 1, 1, 'z')).toThrow(KernelBug);
  });

  it('completes out of order: used descriptors name their ids, the free list takes the last one freed first', () => {
    const { vq, peer } = setup({ num: 8 });
    vq.addInbuf([buf(0x4010_0000, 8)], 'a');
    vq.addSgs([buf(0x4010_0000, 8), buf(0x4010_1000, 8)], 1, 1, 'b');
    vq.addInbuf([buf(0x4010_0000, 8)], 'c');
    const [a, b, c] = [peer.pop()!, peer.pop()!, peer.pop()!];
    expect([a.id, b.id, c.id]).toEqual([0, 1, 3]);
    peer.push(c.id, 3, 1);
    peer.push(a.id, 1, 1);
    expect(vq.getBuf()).toEqual({ data: 'c', len: 3 });
    expect(vq.getBuf()).toEqual({ data: 'a', len: 1 });
    expect(vq.getBuf()).toBeNull();
    peer.push(b.id, 2, 2);
    expect(vq.getBuf()).toEqual({ data: 'b', len: 2 });
    expect(vq.numFree).toBe(8);
    vq.addInbuf([buf(0x4010_0000, 8)], 'd');
    expect(peer.pop()!.id).toBe(b.id);
  });

  it('marks the ring broken on a used id that is out of range or not a head', () => {
    const s1 = setup();
    s1.vq.addInbuf([buf(0x4010_0000, 8)], 'a');
    s1.peer.pop();
    s1.peer.push(99, 8);
    expect(s1.vq.getBuf()).toBeNull();
    expect(s1.vq.isBroken()).toBe(true);
    expect(s1.vdev.messages.some((m) => m.level === 'err' && m.msg === 'test:id 99 out of range')).toBe(true);
    const s2 = setup();
    s2.vq.addInbuf([buf(0x4010_0000, 8)], 'a');
    s2.peer.pop();
    s2.peer.push(5, 8);
    expect(s2.vq.getBuf()).toBeNull();
    expect(s2.vdev.messages.some((m) => m.msg === 'test:id 5 is not a head!')).toBe(true);
  });

  it('keeps working over thousands of laps of a ring of 3 with chains of 1 and 2 descriptors (wrap counters flip, chains cross the end)', () => {
    const { vq, peer } = setup({ num: 3 });
    let added = 0;
    let got = 0;
    let bad = 0;
    for (let i = 0; i < 10_000; i++) {
      const two = i % 2 === 1;
      const err = two ? vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, `t${added}`) : vq.addInbuf([buf(0x4010_0000, 4)], `t${added}`);
      if (err === 0) added++;
      else if (err !== -ENOSPC) bad++;
      peer.serveAll();
      for (let u = vq.getBuf(); u; u = vq.getBuf()) {
        if (u.data !== `t${got}`) bad++;
        got++;
      }
    }
    expect(bad).toBe(0);
    expect(got).toBe(added);
    expect(added).toBe(10_000);
    expect(vq.numFree).toBe(3);
    // 15 000 descriptors on a ring of 3: 5000 laps, the counters back where they started.
    expect(vq.availIdx).toBe(1 << 15);
    expect(vq.lastUsedIdx).toBe(1 << 15);
  });
});

describe('indirect descriptors', () => {
  const features = PACKED | bit(VIRTIO_RING_F_INDIRECT_DESC);
  it('puts a multi-sg buffer in one INDIRECT ring descriptor and keeps the table for its id when used', () => {
    const { vq, peer, dma } = setup({ features });
    expect(vq.indirect).toBe(true);
    const before = dma.stats().allocations;
    vq.addSgs([buf(0x4010_0000, 16), buf(0x4010_1000, 512), buf(0x4010_2000, 1)], 1, 2, 'blk');
    expect(vq.numFree).toBe(7);
    expect(dma.stats().allocations).toBe(before + 1);
    const c = peer.pop()!;
    expect(c.indirect).toBe(true);
    expect(c.top).toHaveLength(1);
    expect(c.top[0]!.flags).toBe(AVAIL | VRING_DESC_F_INDIRECT);
    expect(c.top[0]!.len).toBe(48);
    expect(c.bufs.map((b) => b.write)).toEqual([false, true, true]);
    peer.push(c.id, 513, 1);
    expect(vq.getBuf()).toEqual({ data: 'blk', len: 513 });
    expect(dma.stats().allocations).toBe(before + 1);
    vringDelVirtqueue(vq);
    expect(dma.stats()).toMatchObject({ used: 0, allocations: 0 });
  });

  it("reuses an id's table without the allocator: the device sees the same chain as from a fresh table, whatever it wrote into the old one", () => {
    const { vq, peer, dma, mem } = setup({ features });
    const sgs = [buf(0x4010_0000, 16), buf(0x4010_1000, 512), buf(0x4010_2000, 1)];
    vq.addSgs(sgs, 1, 2, 'first');
    const first = peer.pop()!;
    const table = first.top[0]!.addr;
    const fresh = mem.u8.slice(table - RAM_BASE, table - RAM_BASE + 48);
    peer.push(first.id, 0, 1);
    vq.getBuf();
    mem.u8.fill(0xff, table - RAM_BASE, table - RAM_BASE + 48);
    const calls = dma.stats();
    vq.addSgs(sgs, 1, 2, 'second');
    expect(dma.stats()).toMatchObject({ allocCalls: calls.allocCalls, freeCalls: calls.freeCalls });
    const again = peer.pop()!;
    expect(again.id).toBe(first.id);
    // The ring slot moved on (next_avail); the descriptor is the same otherwise.
    expect(again.top[0]).toEqual(first.top[0]);
    expect(again.bufs).toEqual(first.bufs);
    expect(mem.u8.slice(table - RAM_BASE, table - RAM_BASE + 48)).toEqual(fresh);
  });

  it("replaces an id's table that is too small, uses a bigger one for a shorter chain, and goes direct when the bigger one cannot be had", () => {
    const { vq, peer, dma } = setup({ features });
    const sgs = (n: number) => Array.from({ length: n }, (_, i) => buf(0x4010_0000 + i * 0x1000, 8));
    const serve = (p: PackedPeer, q: PackedVirtqueue<string>) => {
      const c = p.pop()!;
      p.push(c.id, 0, c.top.length);
      q.getBuf();
      return c;
    };
    vq.addSgs(sgs(2), 1, 1, 'a');
    serve(peer, vq);
    let calls = dma.stats();
    vq.addSgs(sgs(5), 1, 4, 'b');
    const big = serve(peer, vq);
    expect(dma.stats().allocCalls - calls.allocCalls).toBe(1);
    expect(dma.stats().freeCalls - calls.freeCalls).toBe(1);
    expect(big.top[0]!.len).toBe(5 * 16);
    expect(big.bufs).toHaveLength(5);
    calls = dma.stats();
    vq.addSgs(sgs(3), 1, 2, 'c');
    const shorter = serve(peer, vq);
    expect(dma.stats().allocCalls).toBe(calls.allocCalls);
    expect(shorter.top[0]).toMatchObject({ addr: big.top[0]!.addr, len: 3 * 16 });
    expect(shorter.bufs).toHaveLength(3);

    // Room for the three ring pages and a 2-entry table only.
    const tight = setup({ features, dma: (m) => new DmaAllocator(m, RAM_BASE, 3 * 4096 + 32) });
    tight.vq.addSgs(sgs(2), 1, 1, 'fits');
    expect(serve(tight.peer, tight.vq).indirect).toBe(true);
    expect(tight.vq.addSgs(sgs(3), 1, 2, 'direct')).toBe(0);
    const direct = serve(tight.peer, tight.vq);
    expect(direct.indirect).toBe(false);
    expect(direct.bufs).toHaveLength(3);
    expect(tight.dma.stats().allocations).toBe(3);
    vringDelVirtqueue(tight.vq);
    expect(tight.dma.stats().used).toBe(0);
  });

  it('stays direct for a single sg, with a ctx, and when the table cannot be allocated', () => {
    const single = setup({ features });
    single.vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    expect(single.peer.pop()!.indirect).toBe(false);
    const ctx = setup({ features, ctx: true });
    expect(ctx.vq.indirect).toBe(false);
    ctx.vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, 'b');
    expect(ctx.peer.pop()!.top).toHaveLength(2);
    // A DMA window with room for the three ring pages only: alloc_indirect fails, fall back on direct.
    const full = setup({ features, dma: (m) => new DmaAllocator(m, RAM_BASE, 3 * 4096) });
    expect(full.vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, 'c')).toBe(0);
    const c = full.peer.pop()!;
    expect(c.indirect).toBe(false);
    expect(c.top.map((d) => d.flags & (VRING_DESC_F_NEXT | VRING_DESC_F_WRITE))).toEqual([VRING_DESC_F_NEXT, VRING_DESC_F_WRITE]);
  });
});

describe('kick suppression: the device\'s event area (virtqueue_kick_prepare_packed)', () => {
  it('ENABLE kicks, DISABLE does not', () => {
    const { vq, peer, notified } = setup();
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    expect(vq.kick()).toBe(true);
    expect(notified).toEqual([0]);
    peer.setDeviceEvent(VRING_PACKED_EVENT_FLAG_DISABLE);
    vq.addInbuf([buf(0x4010_0000, 4)], 'b');
    expect(vq.kickPrepare()).toBe(false);
  });

  it('DESC: a kick only when off_wrap lies in the descriptors added since the last kick, across the wrap too', () => {
    const { vq, peer } = setup({ num: 4, features: PACKED | bit(VIRTIO_RING_F_EVENT_IDX) });
    // The device wants a kick at position 2 of this lap.
    peer.setDeviceEvent(VRING_PACKED_EVENT_FLAG_DESC, 2 | (1 << 15));
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    expect(vq.kickPrepare()).toBe(false); // added position 0
    vq.addInbuf([buf(0x4010_0000, 4)], 'b');
    vq.addInbuf([buf(0x4010_0000, 4)], 'c');
    expect(vq.kickPrepare()).toBe(true); // positions 1, 2
    peer.serveAll();
    while (vq.getBuf());
    // Positions 3, then 0 and 1 of the next lap; the event at position 0 of the next lap (wrap 0).
    peer.setDeviceEvent(VRING_PACKED_EVENT_FLAG_DESC, 0);
    vq.addInbuf([buf(0x4010_0000, 4)], 'd');
    expect(vq.kickPrepare()).toBe(false);
    vq.addInbuf([buf(0x4010_0000, 4)], 'e');
    expect(vq.kickPrepare()).toBe(true);
    // An event left in the previous lap (position 3, wrap 1) is behind us.
    peer.setDeviceEvent(VRING_PACKED_EVENT_FLAG_DESC, 3 | (1 << 15));
    vq.addInbuf([buf(0x4010_0000, 4)], 'f');
    expect(vq.kickPrepare()).toBe(false);
  });

  it('the notification data: next_avail_idx with the avail wrap counter in bit 15, above the queue index', () => {
    const { vq } = setup({ num: 2 });
    expect(vringNotificationData(vq)).toBe((0x8000 << 16) >>> 0);
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    vq.addInbuf([buf(0x4010_0000, 4)], 'b');
    expect(vringNotificationData(vq)).toBe(0);
  });
});

describe('callback control: the driver\'s event area', () => {
  it('disable_cb writes DISABLE (once); enable_cb_prepare writes ENABLE without EVENT_IDX', () => {
    const { vq, peer } = setup();
    expect(peer.driverFlags).toBe(VRING_PACKED_EVENT_FLAG_ENABLE);
    vq.disableCb();
    expect(peer.driverFlags).toBe(VRING_PACKED_EVENT_FLAG_DISABLE);
    expect(vq.enableCbPrepare()).toBe(1 << 15);
    expect(peer.driverFlags).toBe(VRING_PACKED_EVENT_FLAG_ENABLE);
  });

  it('with EVENT_IDX: enable_cb_prepare writes off_wrap = last_used and DESC; get_buf keeps off_wrap at last_used', () => {
    const { vq, peer } = setup({ features: PACKED | bit(VIRTIO_RING_F_EVENT_IDX) });
    vq.disableCb();
    expect(vq.enableCbPrepare()).toBe(1 << 15);
    expect([peer.driverFlags, peer.driverOffWrap]).toEqual([VRING_PACKED_EVENT_FLAG_DESC, 1 << 15]);
    vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, 'a');
    peer.serveAll();
    expect(vq.getBuf()).toEqual({ data: 'a', len: 4 });
    expect(peer.driverOffWrap).toBe((1 << 15) | 2);
  });

  it('enable_cb reports buffers that arrived while callbacks were off; poll reads the used descriptor', () => {
    const { vq, peer } = setup();
    vq.disableCb();
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    const last = vq.lastUsedIdx;
    expect(vq.poll(last)).toBe(false);
    peer.serveAll();
    expect(vq.poll(last)).toBe(true);
    expect(vq.enableCb()).toBe(false);
    vq.getBuf();
    expect(vq.enableCb()).toBe(true);
    vq.broken = true;
    expect(vq.poll(vq.lastUsedIdx)).toBe(false);
  });

  it('enable_cb_delayed points off_wrap three quarters into the outstanding descriptors, across the wrap', () => {
    const { vq, peer } = setup({ num: 8, features: PACKED | bit(VIRTIO_RING_F_EVENT_IDX) });
    for (let i = 0; i < 6; i++) vq.addInbuf([buf(0x4010_0000, 4)], `x${i}`);
    peer.serveAll();
    for (let i = 0; i < 6; i++) vq.getBuf();
    for (let i = 0; i < 8; i++) vq.addInbuf([buf(0x4010_0000, 4)], `y${i}`);
    vq.disableCb();
    expect(vq.enableCbDelayed()).toBe(true);
    // last_used 6 (wrap 1) + 8 × 3/4 = 12 → position 4 of the next lap (wrap 0).
    expect([peer.driverFlags, peer.driverOffWrap]).toEqual([VRING_PACKED_EVENT_FLAG_DESC, 4]);
    peer.serveAll();
    expect(vq.enableCbDelayed()).toBe(false);
  });

  it('a queue without a callback asks for no interrupts', () => {
    const { peer } = setup({ callback: false });
    expect(peer.driverFlags).toBe(VRING_PACKED_EVENT_FLAG_DISABLE);
  });
});

describe('detach_unused_buf and reinit_vring', () => {
  it('detaches every outstanding buffer; then nothing', () => {
    const { vq } = setup({ features: PACKED | bit(VIRTIO_RING_F_INDIRECT_DESC) });
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, 'b');
    const got: string[] = [];
    for (let d = vq.detachUnusedBuf(); d !== null; d = vq.detachUnusedBuf()) got.push(d);
    expect(got.sort()).toEqual(['a', 'b']);
    expect(vq.numFree).toBe(8);
  });

  it('reinit_vring zeroes the ring and both event areas and returns to the initial state; buffers in flight are its WARN_ON', () => {
    const { vq, peer, mem, vdev } = setup({ num: 4 });
    for (let i = 0; i < 6; i++) {
      vq.addInbuf([buf(0x4010_0000, 4)], `x${i}`);
      peer.serveAll();
      vq.getBuf();
    }
    peer.setDeviceEvent(VRING_PACKED_EVENT_FLAG_DISABLE, 0x1234);
    vq.reinitVring();
    expect(vdev.warnings).toEqual([]);
    const bytes = (a: number, n: number) => mem.u8.subarray(a - mem.base, a - mem.base + n);
    expect(bytes(vq.getDescAddr(), 64).every((b) => b === 0)).toBe(true);
    expect(bytes(vq.getUsedAddr(), 4).every((b) => b === 0)).toBe(true);
    expect(bytes(vq.getAvailAddr(), 4).every((b) => b === 0)).toBe(true);
    expect([vq.availIdx, vq.lastUsedIdx, vq.numFree]).toEqual([1 << 15, 1 << 15, 4]);
    const fresh = new PackedPeer(mem, 4, vq.getDescAddr(), vq.getAvailAddr(), vq.getUsedAddr());
    vq.addInbuf([buf(0x4010_0000, 4)], 'again');
    expect(fresh.serveAll()).toBe(1);
    expect(vq.getBuf()).toEqual({ data: 'again', len: 4 });
    vq.addInbuf([buf(0x4010_0000, 4)], 'left');
    vq.reinitVring();
    expect(vdev.warnings.map((w) => w.what)).toEqual(['_vq->num_free != virtqueue_get_vring_size(_vq)']);
  });

  it("reinit_vring frees the cached indirect tables but an in-flight buffer's, which del() frees", () => {
    const { vq, peer, dma } = setup({ features: PACKED | bit(VIRTIO_RING_F_INDIRECT_DESC) });
    const two = [buf(0x4010_0000, 4), buf(0x4010_1000, 4)];
    for (const d of ['a', 'b', 'c']) vq.addSgs(two, 1, 1, d);
    peer.serveAll();
    while (vq.getBuf()) {}
    expect(dma.stats().allocations).toBe(6);
    vq.reinitVring();
    expect(dma.stats().allocations).toBe(3);
    // A buffer in flight across the reset (the driver bug reinit WARNs about) keeps its table.
    vq.addSgs(two, 1, 1, 'left');
    vq.reinitVring();
    expect(dma.stats().allocations).toBe(4);
    vringDelVirtqueue(vq);
    expect(dma.stats()).toMatchObject({ used: 0, allocations: 0 });
  });
});

describe('vring_interrupt', () => {
  it('returns IRQ_NONE without a used descriptor and runs the callback when there is one', () => {
    const s = setup();
    expect(s.vq.interrupt(3)).toBe(IRQ_NONE);
    s.vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    s.peer.serveAll();
    expect(s.vq.interrupt(3)).toBe(IRQ_HANDLED);
    expect(s.s.calls).toBe(1);
  });

  it('a broken queue returns early: IRQ_HANDLED, or IRQ_NONE with one warning under HARDEN', () => {
    const s = setup({ features: PACKED | bit(VIRTIO_RING_F_EVENT_IDX) });
    s.vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    s.peer.serveAll();
    s.vq.broken = true;
    expect(s.vq.interrupt(0)).toBe(IRQ_HANDLED);
    kernel.hardenNotification = true;
    expect(s.vq.interrupt(0)).toBe(IRQ_NONE);
    expect(s.vq.interrupt(0)).toBe(IRQ_NONE);
    expect(s.vdev.messages.filter((m) => m.msg === 'virtio vring IRQ raised before DRIVER_OK')).toHaveLength(1);
    expect(s.s.calls).toBe(0);
    // Not broken, EVENT_IDX: the interrupt marks event_triggered, so disable_cb skips its write.
    kernel.hardenNotification = false;
    s.vq.broken = false;
    expect(s.vq.interrupt(0)).toBe(IRQ_HANDLED);
    s.vq.disableCb();
    expect(s.peer.driverFlags).toBe(VRING_PACKED_EVENT_FLAG_ENABLE);
  });
});
