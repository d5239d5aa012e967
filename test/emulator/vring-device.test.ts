// Rings through the whole device path (board → register file → core →
// vring): malformed rings end in DEVICE_NEEDS_RESET + a config interrupt
// with the queue parked and nothing thrown; INDIRECT and EVENT_IDX work.
import { describe, expect, it } from 'vitest';
import { VIRTIO_MMIO_INT_CONFIG as INT_CONFIG, VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, bit } from '../../core/uapi/features.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { VRING_DESC_F_INDIRECT as IND, VRING_DESC_F_NEXT as NEXT, VRING_DESC_F_WRITE as WRITE } from '../../core/uapi/ring.js';
import { RAM_BASE, RawDriver, TEST_RAM_SIZE, makeBoard, ramBytes, slotStats, type RawRing, type TestBoard } from '../helpers/raw-driver.js';

function running(features?: bigint, weight?: number) {
  const tb = makeBoard([{ type: 'rng', transport: 'mmio' }], weight === undefined ? {} : { weight });
  const d = new RawDriver(tb, 0);
  const [ring] = d.bringUp([8], features === undefined ? {} : { features: () => features });
  tb.board.runDeferred(10);
  return { tb, d, ring: ring! };
}

function kick(tb: TestBoard, d: RawDriver, ring: RawRing, head: number): void {
  ring.addAvail(head);
  expect(() => {
    d.notify(0);
    tb.board.runDeferred(10);
  }).not.toThrow();
}

/** The device reported a malformed ring: NEEDS_RESET, config interrupt, queue parked. */
function expectBroken(tb: TestBoard, d: RawDriver, ring: RawRing, reason: RegExp): void {
  expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
  expect(d.interruptStatus() & INT_CONFIG).toBe(INT_CONFIG);
  expect(tb.irq.isHigh(0)).toBe(true);
  const s = slotStats(tb);
  expect(s.ringErrors).toBe(1);
  expect(s.lastGuestError).toMatch(reason);
  // Parked: even a good request is not served until reset.
  const used = ring.usedIdx();
  ring.writeDesc(7, RAM_BASE + 0x8_0000, 8, WRITE);
  kick(tb, d, ring, 7);
  expect(ring.usedIdx()).toBe(used);
  expect(slotStats(tb).ringErrors).toBe(1);
}

describe('malformed rings set DEVICE_NEEDS_RESET and park the queue', () => {
  it('a descriptor loop (BI-01)', () => {
    const { tb, d, ring } = running();
    ring.writeDesc(0, RAM_BASE + 0x8_0000, 8, WRITE | NEXT, 1);
    ring.writeDesc(1, RAM_BASE + 0x8_0000, 8, WRITE | NEXT, 0);
    kick(tb, d, ring, 0);
    expectBroken(tb, d, ring, /loop/);
  });
  it('next ≥ queue size (BI-03)', () => {
    const { tb, d, ring } = running();
    ring.writeDesc(0, RAM_BASE + 0x8_0000, 8, WRITE | NEXT, 8);
    kick(tb, d, ring, 0);
    expectBroken(tb, d, ring, /≥ queue size/);
  });
  it('a buffer outside guest RAM (BI-06)', () => {
    const { tb, d, ring } = running();
    ring.writeDesc(0, RAM_BASE + TEST_RAM_SIZE - 4, 8, WRITE);
    kick(tb, d, ring, 0);
    expectBroken(tb, d, ring, /outside guest RAM/);
  });
  it('a buffer inside the MMIO window: the register file is never reached through DMA (BI-06)', () => {
    const { tb, d, ring } = running();
    ring.writeDesc(0, 0x0a00_0070, 4, WRITE);
    kick(tb, d, ring, 0);
    expectBroken(tb, d, ring, /outside guest RAM/);
  });
  it('an avail idx that jumps more than a ring ahead (BI-11)', () => {
    const { tb, d, ring } = running();
    ring.setAvailIdx(100);
    d.notify(0);
    tb.board.runDeferred(10);
    expectBroken(tb, d, ring, /past next_avail/);
  });
  it('a head ≥ queue size (BI-12)', () => {
    const { tb, d, ring } = running();
    kick(tb, d, ring, 9);
    expectBroken(tb, d, ring, /head 9/);
  });
  it('INDIRECT when the driver did not accept VIRTIO_F_INDIRECT_DESC (BI-04)', () => {
    const { tb, d, ring } = running(bit(VIRTIO_F_VERSION_1));
    const table = tb.alloc.take(16);
    ring.writeDesc(0, RAM_BASE + 0x8_0000, 8, WRITE, 0, table);
    ring.writeDesc(0, table, 16, IND);
    kick(tb, d, ring, 0);
    expectBroken(tb, d, ring, /INDIRECT_DESC/);
  });
  it('requests completed before the fault stay completed; a reset brings the device back', () => {
    const { tb, d, ring } = running();
    ring.writeDesc(0, RAM_BASE + 0x8_0000, 8, WRITE);
    kick(tb, d, ring, 0);
    expect(ring.usedIdx()).toBe(1);
    ring.writeDesc(1, RAM_BASE + 0x8_0000, 0, WRITE);
    kick(tb, d, ring, 1);
    expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
    expect(ring.usedIdx()).toBe(1);
    const [fresh] = d.bringUp([8]);
    fresh!.writeDesc(0, RAM_BASE + 0x8_0000, 8, WRITE);
    kick(tb, d, fresh!, 0);
    expect(fresh!.usedIdx()).toBe(1);
    expect(d.status() & NEEDS_RESET).toBe(0);
  });
});

describe('INDIRECT descriptors end to end', () => {
  it('an rng request through an indirect table', () => {
    const { tb, d, ring } = running();
    const table = tb.alloc.take(48);
    const a = tb.alloc.take(16);
    const b = tb.alloc.take(16);
    ring.writeDesc(0, a, 16, WRITE | NEXT, 2, table);
    ring.writeDesc(2, b, 16, WRITE, 0, table);
    ring.writeDesc(1, RAM_BASE + 0x8_0000, 4, NEXT, 0, table); // unreferenced entry
    ring.writeDesc(5, table, 48, IND);
    kick(tb, d, ring, 5);
    expect(ring.usedElem(0)).toEqual({ id: 5, len: 32 });
    expect(ramBytes(tb, a, 16).some((x) => x !== 0) || ramBytes(tb, b, 16).some((x) => x !== 0)).toBe(true);
    expect(d.status() & NEEDS_RESET).toBe(0);
  });
});

describe('EVENT_IDX', () => {
  const F = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX);

  it('used_event decides which used buffers interrupt', () => {
    const { tb, d, ring } = running(F);
    ring.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    ring.setUsedEvent(0);
    kick(tb, d, ring, 0); // used idx 0 → 1: the first decision always notifies
    expect(d.interruptStatus()).toBe(INT_VRING);
    d.ack(INT_VRING);
    ring.setUsedEvent(2); // "interrupt me once used idx passes 2"
    kick(tb, d, ring, 0); // 1 → 2
    expect(d.interruptStatus()).toBe(0);
    kick(tb, d, ring, 0); // 2 → 3: crosses used_event
    expect(d.interruptStatus()).toBe(INT_VRING);
    expect(slotStats(tb).usedBuffers).toBe(3);
    expect(slotStats(tb).usedInterrupts).toBe(2);
  });
  it('the avail NO_INTERRUPT flag is ignored when EVENT_IDX is negotiated', () => {
    const { tb, d, ring } = running(F);
    ring.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    ring.setAvailFlags(1);
    ring.setUsedEvent(0);
    kick(tb, d, ring, 0);
    expect(d.interruptStatus()).toBe(INT_VRING);
  });
  it('the device publishes avail_event = next_avail after draining the ring', () => {
    const { tb, d, ring } = running(F);
    ring.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    kick(tb, d, ring, 0);
    kick(tb, d, ring, 0);
    kick(tb, d, ring, 0);
    expect(ring.availEvent()).toBe(3);
  });
  it('without EVENT_IDX avail_event is never written', () => {
    const { tb, d, ring } = running(bit(VIRTIO_F_VERSION_1));
    ring.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    kick(tb, d, ring, 0);
    expect(ring.availEvent()).toBe(0);
  });
});

describe('work per notification is bounded (BI-29)', () => {
  it('a queue handler pops at most `weight` chains per run, then is re-queued', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }], { weight: 4 });
    const d = new RawDriver(tb, 0);
    const [ring] = d.bringUp([16]);
    tb.board.runDeferred(10);
    for (let i = 0; i < 10; i++) {
      ring!.writeDesc(i, tb.alloc.take(8), 8, WRITE);
      ring!.addAvail(i);
    }
    d.notify(0);
    expect(tb.board.runDeferred(1)).toBe(true);
    expect(ring!.usedIdx()).toBe(4);
    expect(tb.board.runDeferred(1)).toBe(true);
    expect(ring!.usedIdx()).toBe(8);
    expect(tb.board.runDeferred(1)).toBe(false);
    expect(ring!.usedIdx()).toBe(10);
  });
  it('a notification storm queues one work item per queue', () => {
    const { tb, d } = running();
    for (let i = 0; i < 1000; i++) d.notify(0);
    expect(tb.board.runDeferred(1)).toBe(false);
  });
});
