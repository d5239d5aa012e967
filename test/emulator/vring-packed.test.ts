// Packed rings through the device path (board → register file → core →
// packed queue), the twins of the split-ring tests whose behaviour differs
// by ring kind: the ring kind follows the negotiated VIRTIO_F_RING_PACKED
// (and the device option packed=false withholds it), indices restart at
// position 0 with wrap counters 1, QueueReset and Status=0 leave nothing
// behind, work is bounded per notification, and held chains die with their
// epoch.
import { describe, expect, it } from 'vitest';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_RING_RESET, VIRTIO_RING_F_EVENT_IDX, bit, hasBit } from '../../core/uapi/features.js';
import { REG, VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VRING_PACKED_EVENT_FLAG_DESC } from '../../core/uapi/ring.js';
import { PackedQueue } from '../../emulator/vring/packed-queue.js';
import { GuestRam } from '../../emulator/vring/guest-ram.js';
import { SplitQueue } from '../../emulator/vring/split-queue.js';
import { queueOfKind } from '../../emulator/vring/ring-kind.js';
import { PackedQueueBuilder } from '../../tools/testkit/packed-queue-builder.js';
import { W } from '../../tools/testkit/queue-builder.js';
import { HOLD_Q, PROBE_FILL, PROBE_TYPE, ProbeDevice } from '../bad-input/probe-device.js';
import { RAM_BASE, RawDriver, makeBoard, packedFeatures, slotStats, splitFeatures, type TestBoard } from '../helpers/raw-driver.js';

function memOf(tb: TestBoard) {
  return { base: RAM_BASE, size: tb.ram.length, u8: tb.ram, view: tb.view };
}

function packedBoard(opts: { type?: string; weight?: number; features?: (o: bigint) => bigint } = {}) {
  const tb = makeBoard([{ type: opts.type ?? 'rng', transport: 'mmio' }], opts.weight === undefined ? {} : { weight: opts.weight });
  const d = new RawDriver(tb, 0);
  d.negotiate({ features: opts.features ?? packedFeatures });
  return { tb, d, mem: memOf(tb) };
}

function run(tb: TestBoard): void {
  for (let i = 0; i < 1000 && tb.board.hasDeferred(); i++) tb.board.runDeferred(64);
}

describe('the ring kind follows VIRTIO_F_RING_PACKED', () => {
  it('every model offers it; the device option packed=false withholds it', () => {
    for (const type of ['rng', 'blk', 'console', 'rtc']) {
      const tb = makeBoard([
        { type, transport: 'mmio' },
        { type, transport: 'mmio', options: { packed: false } },
      ]);
      expect(hasBit(new RawDriver(tb, 0).deviceFeatures(), VIRTIO_F_RING_PACKED), type).toBe(true);
      expect(hasBit(new RawDriver(tb, 1).deviceFeatures(), VIRTIO_F_RING_PACKED), `${type} packed=false`).toBe(false);
    }
    expect(() => makeBoard([{ type: 'rng', transport: 'mmio', options: { packed: 'yes' } }])).toThrow(/option packed must be true or false/);
  });

  it('a driver that accepts it gets a packed ring; a reset and a split negotiation give a split ring again', () => {
    const { tb, d, mem } = packedBoard();
    const q = new PackedQueueBuilder(mem, tb.alloc, 8);
    q.program(d, 0);
    d.driverOk();
    q.chain([W(16)]);
    d.notify(0);
    run(tb);
    expect(q.reclaim()).toEqual([{ id: 0, len: 16 }]);
    const [ring] = d.bringUp([8], { features: splitFeatures });
    ring!.writeDesc(0, tb.alloc.take(16), 16, 2);
    ring!.addAvail(0);
    d.notify(0);
    run(tb);
    expect(ring!.usedIdx()).toBe(1);
    expect(slotStats(tb).ringErrors).toBe(0);
  });

  it('queueOfKind keeps the registers and moves the epoch on, so a chain of the old queue stays dead', () => {
    const ram = new GuestRam(new Uint8Array(1 << 16), RAM_BASE, 1 << 16);
    const split = new SplitQueue(0, 64);
    split.setLayout(16, RAM_BASE + 0x1000, RAM_BASE + 0x2000, RAM_BASE + 0x3000);
    split.epoch = 5;
    const packed = queueOfKind(split, 'packed');
    expect(packed).toBeInstanceOf(PackedQueue);
    expect([packed.num, packed.descLo, packed.driverLo, packed.deviceLo, packed.epoch]).toEqual([16, RAM_BASE + 0x1000, RAM_BASE + 0x2000, RAM_BASE + 0x3000, 6]);
    expect(queueOfKind(packed, 'packed')).toBe(packed);
    expect(packed.enable(ram, { indirect: true, eventIdx: true })).toBeNull();
  });
});

describe('packed queue lifetime', () => {
  it('QueueReady 1 → 0 → 1 restarts at position 0 with both wrap counters at 1', () => {
    const { tb, d, mem } = packedBoard();
    const q = new PackedQueueBuilder(mem, tb.alloc, 4);
    q.program(d, 0);
    d.driverOk();
    for (let i = 0; i < 6; i++) {
      q.chain([W(8)]);
      d.notify(0);
      run(tb);
      q.reclaim();
    }
    expect([q.nextAvail, q.availWrap]).toEqual([2, false]);
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueReady, 0);
    const fresh = new PackedQueueBuilder(mem, tb.alloc, 4, q.layout);
    d.write(REG.QueueReady, 1);
    fresh.chain([W(8)]);
    d.notify(0);
    run(tb);
    expect(fresh.reclaim()).toEqual([{ id: 0, len: 8 }]);
    expect(fresh.readDesc(0).flags & 0x8080).toBe(0x8080);
  });

  it('QueueReset (RING_RESET) resets the queue in the write; it comes back with another size, not a power of 2', () => {
    const { tb, d, mem } = packedBoard();
    const q = new PackedQueueBuilder(mem, tb.alloc, 8);
    q.program(d, 0);
    d.driverOk();
    expect(hasBit(d.deviceFeatures(), VIRTIO_F_RING_RESET)).toBe(true);
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueReset, 1);
    expect(d.read(REG.QueueReset)).toBe(0);
    expect(d.read(REG.QueueReady)).toBe(0);
    const q2 = new PackedQueueBuilder(mem, tb.alloc, 5);
    q2.program(d, 0);
    expect(d.read(REG.QueueReady)).toBe(1);
    for (let i = 0; i < 7; i++) {
      q2.chain([W(4)]);
      d.notify(0);
      run(tb);
      expect(q2.reclaim()).toHaveLength(1);
    }
    expect(slotStats(tb).guestErrors).toBe(0);
  });

  it('work queued before Status=0 never completes into guest memory', () => {
    const { tb, d, mem } = packedBoard();
    const q = new PackedQueueBuilder(mem, tb.alloc, 8);
    q.program(d, 0);
    d.driverOk();
    run(tb);
    const c = q.chain([W(64)]);
    const ring = tb.ram.slice(q.desc - RAM_BASE, q.desc - RAM_BASE + 128);
    d.notify(0);
    expect(tb.board.hasDeferred()).toBe(true);
    d.reset();
    run(tb);
    expect(tb.ram.slice(q.desc - RAM_BASE, q.desc - RAM_BASE + 128)).toEqual(ring);
    expect(q.g.bytes(c.bufs[0]!.addr, 64).every((b) => b === 0xee)).toBe(true);
    expect(d.interruptStatus()).toBe(0);
  });

  it('chains held across QueueReady=0 are dead: completing them writes nothing', () => {
    const { tb, d, mem } = packedBoard({ type: PROBE_TYPE });
    new PackedQueueBuilder(mem, tb.alloc, 8).program(d, 0);
    const hold = new PackedQueueBuilder(mem, tb.alloc, 8);
    hold.program(d, HOLD_Q);
    d.driverOk();
    const c = hold.chain([W(16)]);
    d.notify(HOLD_Q);
    run(tb);
    expect(ProbeDevice.last!.held).toHaveLength(1);
    ProbeDevice.last!.keepAcrossReset = true;
    d.write(REG.QueueSel, HOLD_Q);
    d.write(REG.QueueReady, 0);
    const before = tb.ram.slice();
    tb.board.control({ op: 'inject', slot: 0, event: 'complete' });
    expect(tb.ram).toEqual(before);
    expect(tb.ram[c.bufs[0]!.addr - RAM_BASE]).not.toBe(PROBE_FILL);
  });

  it('notifications before DRIVER_OK are ignored; DRIVER_OK picks the buffers up', () => {
    const { tb, d, mem } = packedBoard();
    const q = new PackedQueueBuilder(mem, tb.alloc, 8);
    q.program(d, 0);
    q.chain([W(16)]);
    d.notify(0);
    run(tb);
    expect(q.hasUsed()).toBe(false);
    expect(slotStats(tb).lastGuestError).toMatch(/before DRIVER_OK/);
    d.driverOk();
    run(tb);
    expect(q.reclaim()).toEqual([{ id: 0, len: 16 }]);
  });

  it('one kick over many chains: `weight` chains per run, then the queue is re-queued (BI-29)', () => {
    const { tb, d, mem } = packedBoard({ weight: 4 });
    const q = new PackedQueueBuilder(mem, tb.alloc, 16);
    q.program(d, 0);
    d.driverOk();
    run(tb);
    for (let i = 0; i < 10; i++) q.chain([W(8)]);
    d.notify(0);
    const done = (): number => slotStats(tb).usedBuffers;
    expect(tb.board.runDeferred(1)).toBe(true);
    expect(done()).toBe(4);
    expect(tb.board.runDeferred(1)).toBe(true);
    expect(done()).toBe(8);
    expect(tb.board.runDeferred(1)).toBe(false);
    expect(done()).toBe(10);
    expect(q.reclaim()).toHaveLength(10);
  });

  it('EVENT_IDX: after draining the ring the device asks for a kick at next_avail; without it the device area stays ENABLE', () => {
    for (const eventIdx of [true, false]) {
      const { tb, d, mem } = packedBoard({ features: (o) => (eventIdx ? o : o & ~bit(VIRTIO_RING_F_EVENT_IDX)) });
      const q = new PackedQueueBuilder(mem, tb.alloc, 4);
      q.program(d, 0);
      d.driverOk();
      for (let i = 0; i < 5; i++) {
        q.chain([W(8)]);
        d.notify(0);
        run(tb);
        q.reclaim();
      }
      expect(q.deviceEvent(), `EVENT_IDX ${eventIdx}`).toEqual(eventIdx ? { flags: VRING_PACKED_EVENT_FLAG_DESC, offWrap: PackedQueueBuilder.offWrap(1, false) } : { flags: 0, offWrap: 0 });
      expect(d.interruptStatus() & INT_VRING).toBe(INT_VRING);
    }
  });
});
