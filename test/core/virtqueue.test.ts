// The driver side of the split ring (core/virtqueue/split.ts) against a
// device peer written from the spec layout: creation and layout, add/get,
// indirect tables, index wrap-around past 65536, notification suppression,
// callback control, detach and reinit, vring_interrupt.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IRQ_HANDLED, IRQ_NONE, type GuestMemory } from '../../core/bus.js';
import { DmaAllocator } from '../../core/dma.js';
import { kernel } from '../../core/kernel.js';
import { EINVAL, EIO, ENOMEM, ENOSPC } from '../../core/uapi/errno.js';
import {
  VIRTIO_F_NOTIFICATION_DATA,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  bit,
} from '../../core/uapi/features.js';
import {
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_USED_F_NO_NOTIFY,
  vringSize,
} from '../../core/uapi/ring.js';
import type { VirtioConfigOps } from '../../core/virtio-types.js';
import { KernelBug, VirtioBus, VirtioDevice } from '../../core/virtio.js';
import { SplitVirtqueue } from '../../core/virtqueue/split.js';
import { vringCreateVirtqueue, vringNotificationData, vringTransportFeatures } from '../../core/virtqueue/vring.js';
import type { Virtqueue, VqCallback } from '../../core/virtio-types.js';
import { VringPeer } from '../helpers/vring-peer.js';

const RAM_BASE = 0x4000_0000;

function makeMem(size = 1 << 20): GuestMemory {
  const sab = new SharedArrayBuffer(size);
  return { base: RAM_BASE, size, u8: new Uint8Array(sab), view: new DataView(sab) };
}

const noOps = new Proxy({} as VirtioConfigOps, {
  get: (_t, p) => (p === 'noirqSafe' ? true : () => 0),
});

interface Setup {
  mem: GuestMemory;
  dma: DmaAllocator;
  vdev: VirtioDevice;
  vq: SplitVirtqueue<string>;
  peer: VringPeer;
  notified: number[];
  calls: number;
}

function setup(opts: { num?: number; features?: bigint; callback?: boolean; ctx?: boolean; mem?: GuestMemory } = {}): Setup {
  const mem = opts.mem ?? makeMem();
  const dma = new DmaAllocator(mem);
  const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
  vdev.features = opts.features ?? bit(VIRTIO_F_VERSION_1);
  const s = { mem, dma, vdev, notified: [] as number[], calls: 0 } as Setup;
  const cb: VqCallback | null = opts.callback === false ? null : () => void s.calls++;
  const notify = (q: Virtqueue): boolean => {
    s.notified.push(q.index);
    return true;
  };
  const vq = vringCreateVirtqueue<string>(0, opts.num ?? 8, 4096, vdev, true, true, opts.ctx ?? false, notify, cb, 'test', dma);
  if (typeof vq === 'number') throw new Error(`create failed ${vq}`);
  if (!(vq instanceof SplitVirtqueue)) throw new Error('not a split ring');
  s.vq = vq;
  s.peer = new VringPeer(mem, vq.getVringSize(), vq.getDescAddr(), vq.getAvailAddr(), vq.getUsedAddr());
  return s;
}

const buf = (addr: number, len: number) => ({ addr, len });

beforeEach(() => {
  kernel.clear();
  kernel.hardenNotification = false;
});
afterEach(() => {
  kernel.hardenNotification = false;
});

describe('vring_create_virtqueue', () => {
  it('lays out desc, avail and a page-aligned used ring in one zeroed allocation', () => {
    for (const num of [1, 8, 64, 256, 1024]) {
      const { vq, vdev, dma } = setup({ num });
      expect(vq.getVringSize()).toBe(num);
      expect(vq.getDescAddr() % 4096).toBe(0);
      expect(vq.getAvailAddr()).toBe(vq.getDescAddr() + 16 * num);
      expect(vq.getUsedAddr() % 4096).toBe(0);
      expect(vq.getUsedAddr()).toBe(vq.getDescAddr() + Math.ceil((16 * num + 6 + 2 * num) / 4096) * 4096);
      expect(vq.queueSizeInBytes).toBe(vringSize(num, 4096));
      expect(vq.numFree).toBe(num);
      expect(vdev.vqs).toEqual([vq]);
      expect(dma.stats().allocations).toBe(1);
    }
  });

  it('rejects a length that is not a power of 2 with -EINVAL and a warning', () => {
    const mem = makeMem();
    const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
    const r = vringCreateVirtqueue(0, 100, 4096, vdev, true, true, false, () => true, null, 'q', new DmaAllocator(mem));
    expect(r).toBe(-EINVAL);
    expect(vdev.messages.map((m) => m.msg)).toContain('Bad virtqueue length 100');
    expect(vdev.vqs).toHaveLength(0);
  });

  it('halves num while the ring does not fit if may_reduce_num, else fails with -ENOMEM', () => {
    const mem = makeMem();
    const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
    // 12 KiB: a 1024-entry ring needs 28 KiB, 512 needs 16 KiB, 256 needs 10 KiB.
    const small = () => new DmaAllocator(mem, RAM_BASE, 12 * 1024);
    const reduced = vringCreateVirtqueue(0, 1024, 4096, vdev, true, true, false, () => true, null, 'q', small());
    expect(reduced).toBeInstanceOf(SplitVirtqueue);
    expect((reduced as SplitVirtqueue).getVringSize()).toBe(256);
    expect(vringCreateVirtqueue(1, 1024, 4096, vdev, true, false, false, () => true, null, 'q', small())).toBe(-ENOMEM);
    expect(vringCreateVirtqueue(2, 0, 4096, vdev, true, true, false, () => true, null, 'q', small())).toBe(-ENOMEM);
  });

  it('starts broken only with CONFIG_VIRTIO_HARDEN_NOTIFICATION', () => {
    expect(setup().vq.broken).toBe(false);
    kernel.hardenNotification = true;
    expect(setup().vq.broken).toBe(true);
  });

  it('del() unlinks the queue and frees its memory', () => {
    const { vq, vdev, dma } = setup();
    vq.del();
    expect(vdev.vqs).toHaveLength(0);
    expect(dma.stats().allocations).toBe(0);
  });
});

describe('add / get', () => {
  it('chains out descriptors before in descriptors and publishes the head', () => {
    const { vq, peer } = setup();
    expect(vq.addSgs([buf(0x4010_0000, 16), buf(0x4010_1000, 32), buf(0x4010_2000, 64)], 2, 1, 'req')).toBe(0);
    expect(vq.numFree).toBe(5);
    expect(peer.availIdx).toBe(1);
    const c = peer.pop()!;
    expect(c.head).toBe(0);
    expect(c.indirect).toBe(false);
    expect(c.top.map((d) => d.flags)).toEqual([VRING_DESC_F_NEXT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE]);
    expect(c.bufs).toEqual([
      { addr: 0x4010_0000, len: 16, write: false },
      { addr: 0x4010_1000, len: 32, write: false },
      { addr: 0x4010_2000, len: 64, write: true },
    ]);
    expect(vq.getBuf()).toBeNull();
    peer.push(c.head, 64);
    expect(vq.getBuf()).toEqual({ data: 'req', len: 64 });
    expect(vq.numFree).toBe(8);
    expect(vq.getBuf()).toBeNull();
  });

  it('returns -ENOSPC when the ring is full, notifying if the buffer had out parts', () => {
    const { vq, notified } = setup({ num: 4 });
    for (let i = 0; i < 4; i++) expect(vq.addInbuf([buf(0x4010_0000 + i * 64, 64)], `b${i}`)).toBe(0);
    expect(vq.numFree).toBe(0);
    expect(vq.addInbuf([buf(0x4010_1000, 64)], 'x')).toBe(-ENOSPC);
    expect(notified).toEqual([]);
    expect(vq.addOutbuf([buf(0x4010_1000, 64)], 'x')).toBe(-ENOSPC);
    expect(notified).toEqual([0]);
  });

  it('returns -EIO when broken, and get_buf returns nothing', () => {
    const { vq, peer } = setup();
    vq.addInbuf([buf(0x4010_0000, 8)], 'a');
    peer.push(peer.pop()!.head, 8);
    vq.broken = true;
    expect(vq.addInbuf([buf(0x4010_0000, 8)], 'b')).toBe(-EIO);
    expect(vq.getBuf()).toBeNull();
    expect(vq.notify()).toBe(false);
  });

  it('treats a NULL token as a kernel bug', () => {
    const { vq } = setup();
    expect(() => vq.addInbuf([buf(0x4010_0000, 8)], null as unknown as string)).toThrow(KernelBug);
  });

  it('completes out of order and reuses the freed descriptors', () => {
    const { vq, peer } = setup({ num: 4 });
    for (const t of ['a', 'b', 'c']) vq.addInbuf([buf(0x4010_0000, 8)], t);
    const chains = [peer.pop()!, peer.pop()!, peer.pop()!];
    peer.push(chains[2]!.head, 3);
    peer.push(chains[0]!.head, 1);
    expect(vq.getBuf()).toEqual({ data: 'c', len: 3 });
    expect(vq.getBuf()).toEqual({ data: 'a', len: 1 });
    expect(vq.numFree).toBe(3);
    // The next add takes the last freed head first.
    vq.addInbuf([buf(0x4010_0000, 8)], 'd');
    expect(peer.pop()!.head).toBe(chains[0]!.head);
  });

  it('marks the ring broken on a used id that is out of range or not a head', () => {
    const s1 = setup();
    s1.vq.addInbuf([buf(0x4010_0000, 8)], 'a');
    s1.peer.push(99, 8);
    expect(s1.vq.getBuf()).toBeNull();
    expect(s1.vq.isBroken()).toBe(true);
    expect(s1.vdev.messages.some((m) => m.level === 'err' && m.msg === 'test:id 99 out of range')).toBe(true);

    const s2 = setup();
    s2.vq.addInbuf([buf(0x4010_0000, 8)], 'a');
    s2.peer.push(5, 8);
    expect(s2.vq.getBuf()).toBeNull();
    expect(s2.vdev.messages.some((m) => m.msg === 'test:id 5 is not a head!')).toBe(true);
  });

  it('keeps working as avail and used indices wrap past 65535', () => {
    const { vq, peer } = setup({ num: 8 });
    const total = 70_000;
    let got = 0;
    const sg = [buf(0x4010_0000, 4)];
    let bad = 0;
    for (let i = 0; i < total; i++) {
      if (vq.addInbuf(sg, `t${i}`) !== 0) bad++;
      if (i % 3 === 2 || i === total - 1) {
        for (let c = peer.pop(); c; c = peer.pop()) peer.push(c.head, 4);
        for (let u = vq.getBuf(); u; u = vq.getBuf()) {
          if (u.data !== `t${got}`) bad++;
          got++;
        }
      }
    }
    expect(bad).toBe(0);
    expect(got).toBe(total);
    expect(vq.availIdx).toBe(total & 0xffff);
    expect(peer.availIdx).toBe(total & 0xffff);
    expect(vq.lastUsedIdx).toBe(total & 0xffff);
    expect(vq.numFree).toBe(8);
  });
});

describe('indirect descriptors', () => {
  const features = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC);

  it('puts a multi-sg buffer in one indirect descriptor and keeps the table for its head when used', () => {
    const { vq, peer, dma } = setup({ features });
    expect(vq.indirect).toBe(true);
    vq.addSgs([buf(0x4010_0000, 16), buf(0x4010_1000, 512), buf(0x4010_2000, 1)], 1, 2, 'blk');
    expect(vq.numFree).toBe(7);
    expect(dma.stats().allocations).toBe(2);
    const c = peer.pop()!;
    expect(c.indirect).toBe(true);
    expect(c.top).toHaveLength(1);
    expect(c.top[0]!.flags).toBe(VRING_DESC_F_INDIRECT);
    expect(c.top[0]!.len).toBe(3 * 16);
    expect(c.bufs).toEqual([
      { addr: 0x4010_0000, len: 16, write: false },
      { addr: 0x4010_1000, len: 512, write: true },
      { addr: 0x4010_2000, len: 1, write: true },
    ]);
    const table = c.top[0]!.addr;
    expect(peer.readDesc(table, 2).flags & VRING_DESC_F_NEXT).toBe(0);
    peer.push(c.head, 513);
    expect(vq.getBuf()).toEqual({ data: 'blk', len: 513 });
    expect(vq.numFree).toBe(8);
    // The ring and the head's table; del() frees both.
    expect(dma.stats().allocations).toBe(2);
    vq.del();
    expect(dma.stats()).toMatchObject({ used: 0, allocations: 0 });
  });

  it("reuses a head's table without the allocator: the device sees the same chain as from a fresh table, whatever it wrote into the old one", () => {
    const { vq, peer, dma, mem } = setup({ features });
    const sgs = [buf(0x4010_0000, 16), buf(0x4010_1000, 512), buf(0x4010_2000, 1)];
    vq.addSgs(sgs, 1, 2, 'first');
    const first = peer.pop()!;
    const table = first.top[0]!.addr;
    const fresh = mem.u8.slice(table - RAM_BASE, table - RAM_BASE + 48);
    peer.push(first.head, 0);
    vq.getBuf();
    // A device scribbling over the table it was given (every next field too).
    mem.u8.fill(0xff, table - RAM_BASE, table - RAM_BASE + 48);
    const calls = dma.stats();
    vq.addSgs(sgs, 1, 2, 'second');
    expect(dma.stats()).toMatchObject({ allocCalls: calls.allocCalls, freeCalls: calls.freeCalls });
    const again = peer.pop()!;
    expect(again.head).toBe(first.head);
    expect(again.top[0]).toEqual(first.top[0]);
    expect(again.bufs).toEqual(first.bufs);
    expect(mem.u8.slice(table - RAM_BASE, table - RAM_BASE + 48)).toEqual(fresh);
  });

  it("replaces a head's table that is too small, uses a bigger one for a shorter chain, and goes direct when the bigger one cannot be had", () => {
    const { vq, peer, dma } = setup({ features });
    const sgs = (n: number) => Array.from({ length: n }, (_, i) => buf(0x4010_0000 + i * 0x1000, 8));
    const serve = () => {
      const c = peer.pop()!;
      peer.push(c.head, 0);
      vq.getBuf();
      return c;
    };
    vq.addSgs(sgs(2), 1, 1, 'a');
    serve();
    let calls = dma.stats();
    vq.addSgs(sgs(5), 1, 4, 'b');
    const big = serve();
    expect(dma.stats().allocCalls - calls.allocCalls).toBe(1);
    expect(dma.stats().freeCalls - calls.freeCalls).toBe(1);
    expect(big.top[0]!.len).toBe(5 * 16);
    expect(big.bufs).toHaveLength(5);
    calls = dma.stats();
    vq.addSgs(sgs(3), 1, 2, 'c');
    const shorter = serve();
    expect(dma.stats().allocCalls).toBe(calls.allocCalls);
    expect(shorter.top[0]).toMatchObject({ addr: big.top[0]!.addr, len: 3 * 16 });
    expect(shorter.bufs).toHaveLength(3);

    // A window with room for the ring and a 2-entry table only: growing it
    // frees the small table, the bigger one does not fit, the chain goes
    // direct (as when alloc_indirect_split fails) and nothing is left behind.
    const mem = makeMem();
    const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
    vdev.features = features;
    const tight = new DmaAllocator(mem, RAM_BASE, 8192 + 32);
    const q = vringCreateVirtqueue<string>(0, 8, 4096, vdev, true, true, false, () => true, () => {}, 'q', tight);
    if (!(q instanceof SplitVirtqueue)) throw new Error('create failed');
    const p = new VringPeer(mem, 8, q.getDescAddr(), q.getAvailAddr(), q.getUsedAddr());
    q.addSgs(sgs(2), 1, 1, 'fits');
    const fits = p.pop()!;
    expect(fits.indirect).toBe(true);
    p.push(fits.head, 0);
    q.getBuf();
    expect(q.addSgs(sgs(3), 1, 2, 'direct')).toBe(0);
    const direct = p.pop()!;
    expect(direct.indirect).toBe(false);
    expect(direct.bufs).toHaveLength(3);
    expect(tight.stats().allocations).toBe(1);
    p.push(direct.head, 0);
    q.getBuf();
    q.del();
    expect(tight.stats().used).toBe(0);
  });

  it('stays direct for a single sg, when a ctx is used, or when the table cannot be allocated', () => {
    const single = setup({ features });
    single.vq.addInbuf([buf(0x4010_0000, 16)], 'one');
    expect(single.peer.pop()!.indirect).toBe(false);

    const ctx = setup({ features, ctx: true });
    expect(ctx.vq.indirect).toBe(false);

    // A DMA window just big enough for the ring: the table allocation fails.
    const mem = makeMem();
    const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
    vdev.features = features;
    const vq = vringCreateVirtqueue<string>(0, 8, 4096, vdev, true, true, false, () => true, null, 'q', new DmaAllocator(mem, RAM_BASE, 8192));
    if (typeof vq === 'number') throw new Error('create failed');
    expect(vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, 'x')).toBe(0);
    expect(vq.numFree).toBe(6);
  });
});

describe('notification suppression', () => {
  it('without EVENT_IDX, kicks unless the device set VRING_USED_F_NO_NOTIFY', () => {
    const { vq, peer, notified } = setup();
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    expect(vq.kick()).toBe(true);
    expect(notified).toEqual([0]);
    peer.usedFlags = VRING_USED_F_NO_NOTIFY;
    vq.addInbuf([buf(0x4010_0000, 4)], 'b');
    expect(vq.kickPrepare()).toBe(false);
  });

  it('with EVENT_IDX, kicks only when avail_event lies in the newly published window', () => {
    const { vq, peer } = setup({ features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) });
    expect(vq.event).toBe(true);
    // avail_event 0: notify after the first buffer (spec example).
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    expect(vq.kickPrepare()).toBe(true);
    // The device asks to be kicked once idx passes 3: adding #2 and #3 (idx 1..2) stays quiet.
    peer.availEvent = 3;
    vq.addInbuf([buf(0x4010_0000, 4)], 'b');
    expect(vq.kickPrepare()).toBe(false);
    vq.addInbuf([buf(0x4010_0000, 4)], 'c');
    expect(vq.kickPrepare()).toBe(false);
    // Publishing idx 3 → 5 covers event 3.
    vq.addInbuf([buf(0x4010_0000, 4)], 'd');
    vq.addInbuf([buf(0x4010_0000, 4)], 'e');
    expect(vq.kickPrepare()).toBe(true);
    // Batched kick prepare without new buffers: nothing to announce.
    expect(vq.kickPrepare()).toBe(false);
  });

  it('with EVENT_IDX, handles avail_event across the 16-bit wrap', () => {
    const { vq, peer } = setup({ num: 4, features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) });
    // Run the indices up to 65534.
    for (let i = 0; i < 65534; i++) {
      vq.addInbuf([buf(0x4010_0000, 4)], 'x');
      vq.kickPrepare();
      peer.push(peer.pop()!.head, 0);
      vq.getBuf();
    }
    expect(vq.availIdx).toBe(65534);
    peer.availEvent = 0; // wants a kick when idx moves past 0 (i.e. reaches 1)
    vq.addInbuf([buf(0x4010_0000, 4)], 'a'); // 65535
    vq.addInbuf([buf(0x4010_0000, 4)], 'b'); // 0
    expect(vq.kickPrepare()).toBe(false);
    vq.addInbuf([buf(0x4010_0000, 4)], 'c'); // 1
    expect(vq.kickPrepare()).toBe(true);
  });

  it('writes the notification data form: next avail idx << 16 | queue index', () => {
    const { vq } = setup({ features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_NOTIFICATION_DATA) });
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    vq.addInbuf([buf(0x4010_0000, 4)], 'b');
    expect(vringNotificationData(vq)).toBe((2 << 16) | 0);
  });
});

describe('callback control', () => {
  it('without EVENT_IDX uses VRING_AVAIL_F_NO_INTERRUPT', () => {
    const { vq, peer } = setup();
    expect(peer.availFlags).toBe(0);
    vq.disableCb();
    expect(peer.availFlags).toBe(VRING_AVAIL_F_NO_INTERRUPT);
    expect(vq.enableCb()).toBe(true);
    expect(peer.availFlags).toBe(0);
  });

  it('with EVENT_IDX writes used_event (0 to disable, last_used to enable) and leaves flags alone', () => {
    const { vq, peer } = setup({ features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) });
    for (const t of ['a', 'b']) vq.addInbuf([buf(0x4010_0000, 4)], t);
    peer.push(peer.pop()!.head, 4);
    expect(vq.getBuf()!.data).toBe('a');
    expect(peer.usedEvent).toBe(1); // get_buf asks for the next entry
    vq.disableCb();
    expect(peer.usedEvent).toBe(0);
    expect(peer.availFlags).toBe(0);
    const opaque = vq.enableCbPrepare();
    expect(opaque).toBe(1);
    expect(peer.usedEvent).toBe(1);
    expect(vq.poll(opaque)).toBe(false);
    peer.push(peer.pop()!.head, 4);
    expect(vq.poll(opaque)).toBe(true);
  });

  it('enable_cb reports buffers that arrived while callbacks were off', () => {
    const { vq, peer } = setup();
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    vq.disableCb();
    peer.push(peer.pop()!.head, 4);
    expect(vq.enableCb()).toBe(false);
  });

  it('enable_cb_delayed points used_event three quarters into the outstanding buffers', () => {
    const { vq, peer } = setup({ num: 16, features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) });
    for (let i = 0; i < 8; i++) vq.addInbuf([buf(0x4010_0000, 4)], `b${i}`);
    vq.disableCb();
    expect(vq.enableCbDelayed()).toBe(true);
    expect(peer.usedEvent).toBe(6);
    for (let i = 0; i < 7; i++) peer.push(peer.pop()!.head, 4);
    expect(vq.enableCbDelayed()).toBe(false);
  });

  it('a queue without a callback asks for no interrupts', () => {
    const plain = setup({ callback: false });
    expect(plain.peer.availFlags).toBe(VRING_AVAIL_F_NO_INTERRUPT);
    const ev = setup({ callback: false, features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) });
    expect(ev.peer.availFlags).toBe(0);
  });
});

describe('detach_unused_buf and reinit_vring', () => {
  it('detaches every outstanding buffer, rolling avail idx back', () => {
    const { vq, peer } = setup({ features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC) });
    vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    vq.addSgs([buf(0x4010_0000, 4), buf(0x4010_1000, 4)], 1, 1, 'b');
    vq.addInbuf([buf(0x4010_0000, 4)], 'c');
    const got: string[] = [];
    for (let d = vq.detachUnusedBuf(); d !== null; d = vq.detachUnusedBuf()) got.push(d);
    expect(got.sort()).toEqual(['a', 'b', 'c']);
    expect(vq.numFree).toBe(8);
    expect(peer.availIdx).toBe(0);
    expect(vq.detachUnusedBuf()).toBeNull();
  });

  it('reinit_vring zeroes the shared fields and returns to the initial software state', () => {
    const s = setup({ callback: false });
    const { vq, peer } = s;
    for (let i = 0; i < 5; i++) vq.addInbuf([buf(0x4010_0000, 4)], `x${i}`);
    for (let i = 0; i < 5; i++) peer.push(peer.pop()!.head, 4);
    for (let i = 0; i < 5; i++) vq.getBuf();
    peer.usedFlags = VRING_USED_F_NO_NOTIFY;
    peer.availEvent = 77;
    vq.reinitVring();
    expect(peer.availIdx).toBe(0);
    expect(peer.usedIdx).toBe(0);
    expect(peer.usedFlags).toBe(0);
    expect(peer.availEvent).toBe(0);
    expect(peer.usedEvent).toBe(0);
    // No callback: NO_INTERRUPT again.
    expect(peer.availFlags).toBe(VRING_AVAIL_F_NO_INTERRUPT);
    expect(vq.numFree).toBe(8);
    expect(vq.availIdx).toBe(0);
    expect(vq.lastUsedIdx).toBe(0);
    // It works as a fresh ring for a fresh device peer. free_head is left
    // alone (virtqueue_reset_split does not touch it): the last chain
    // detached, head 4, is the first one handed out again.
    const fresh = new VringPeer(s.mem, 8, vq.getDescAddr(), vq.getAvailAddr(), vq.getUsedAddr());
    vq.addInbuf([buf(0x4010_0000, 4)], 'again');
    const c = fresh.pop()!;
    expect(c.head).toBe(4);
    fresh.push(c.head, 2);
    expect(vq.getBuf()).toEqual({ data: 'again', len: 2 });
  });

  it("reinit_vring frees the cached indirect tables but an in-flight chain's, which del() frees", () => {
    const { vq, peer, dma } = setup({ features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC) });
    const two = [buf(0x4010_0000, 4), buf(0x4010_1000, 4)];
    for (const d of ['a', 'b', 'c']) vq.addSgs(two, 1, 1, d);
    for (let c = peer.pop(); c; c = peer.pop()) peer.push(c.head, 0);
    while (vq.getBuf()) {}
    expect(dma.stats().allocations).toBe(4);
    vq.reinitVring();
    expect(dma.stats().allocations).toBe(1);
    // A chain in flight across the reset (the driver bug reinit WARNs about) keeps its table.
    vq.addSgs(two, 1, 1, 'left');
    vq.reinitVring();
    expect(dma.stats().allocations).toBe(2);
    vq.del();
    expect(dma.stats()).toMatchObject({ used: 0, allocations: 0 });
  });
});

describe('vring_interrupt', () => {
  it('returns IRQ_NONE without used buffers and runs the callback when there are', () => {
    const s = setup();
    expect(s.vq.interrupt(3)).toBe(IRQ_NONE);
    s.vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    s.peer.push(s.peer.pop()!.head, 4);
    expect(s.vq.interrupt(3)).toBe(IRQ_HANDLED);
    expect(s.calls).toBe(1);
  });

  it('a broken queue returns early: IRQ_HANDLED, or IRQ_NONE with one warning under HARDEN', () => {
    const s = setup();
    s.vq.addInbuf([buf(0x4010_0000, 4)], 'a');
    s.peer.push(s.peer.pop()!.head, 4);
    s.vq.broken = true;
    expect(s.vq.interrupt(0)).toBe(IRQ_HANDLED);
    expect(s.calls).toBe(0);
    kernel.hardenNotification = true;
    expect(s.vq.interrupt(0)).toBe(IRQ_NONE);
    expect(s.vq.interrupt(0)).toBe(IRQ_NONE);
    expect(s.vdev.messages.filter((m) => m.msg === 'virtio vring IRQ raised before DRIVER_OK')).toHaveLength(1);
    expect(s.calls).toBe(0);
  });
});

describe('vring_transport_features', () => {
  it('keeps 28, 29, 32-36 and 38 of the transport range and clears the rest', () => {
    const vdev = new VirtioDevice(noOps, { device: 4, vendor: 0 }, new VirtioBus());
    let all = 0n;
    for (let i = 0; i < 64; i++) all |= bit(i);
    vdev.features = all;
    vringTransportFeatures(vdev);
    const cleared = [];
    for (let i = 0; i < 64; i++) if (!(vdev.features & bit(i))) cleared.push(i);
    expect(cleared).toEqual([30, 31, 37, 39, 40, 41]);
  });
});
