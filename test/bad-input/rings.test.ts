// BI-11, BI-12, BI-25, BI-26 (VIRTIO-NOTES §6): the driver and device rings
// as a hostile driver corrupts them. Avail idx and head corruption is a
// malformed ring (DEVICE_NEEDS_RESET, queue parked, no head processed twice);
// in-flight descriptors are read once at pop time; the device keeps its own
// used index and never trusts guest-writable used-ring fields.
import { describe, expect } from 'vitest';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, bit } from '../../core/uapi/features.js';
import { VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { POISON, W, WRITE, type QueueBuilder } from '../../tools/testkit/queue-builder.js';
import { snapshot, writesOutside } from '../../tools/testkit/ranges.js';
import { bringUp, expectNeedsReset, expectRecovered, kick, onBoard, onBoth, request, type Rig } from './harness.js';
import { HOLD_Q, PROBE_FILL, PROBE_TYPE, ProbeDevice } from './probe-device.js';

const PROBE = { dut: { type: PROBE_TYPE, transport: 'mmio' as const } };

/** Three requests served, so next_avail is 3. */
async function threeServed(rig: Rig): Promise<QueueBuilder> {
  const [q] = bringUp(rig, rig.dut, [8]);
  for (let i = 0; i < 3; i++) await request(rig, rig.dut, q!, 0, [W(8)]);
  expect(q!.usedIdx()).toBe(3);
  return q!;
}

/**
 * Drive `batches` full rings of one-descriptor requests through a 256-entry
 * queue, so avail and used indices run past 65535. With EVENT_IDX the driver
 * asks for an interrupt at every batch (used_event = used idx before it).
 */
async function runPastWrap(rig: Rig, eventIdx: boolean): Promise<{ q: QueueBuilder; interrupts: number }> {
  const features = eventIdx ? bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) : bit(VIRTIO_F_VERSION_1);
  const [q] = bringUp(rig, rig.dut, [256], { features: () => features });
  const heads: number[] = [];
  for (let i = 0; i < 256; i++) heads.push(q!.raw([[i, { addr: q!.buffer(W(8)).addr, len: 8, flags: WRITE }]], { publish: false }));
  const batches = 65536 / 256 + 2;
  let interrupts = 0;
  for (let b = 0; b < batches; b++) {
    const before = q!.usedIdx();
    if (eventIdx) q!.setUsedEvent(before);
    q!.publish(...heads);
    await kick(rig, rig.dut, 0);
    expect(q!.usedIdx(), `batch ${b}`).toBe((before + 256) & 0xffff);
    expect(q!.usedElem(before)).toEqual({ id: 0, len: 8 });
    expect(q!.usedElem((before + 255) & 0xffff)).toEqual({ id: 255, len: 8 });
    if (rig.dut.interruptStatus() & INT_VRING) interrupts++;
    rig.dut.ack(INT_VRING);
  }
  expect(q!.usedIdx()).toBe((batches * 256) & 0xffff);
  expect(rig.dut.status() & NEEDS_RESET).toBe(0);
  return { q: q!, interrupts };
}

describe('BI-11 avail idx corruption', () => {
  onBoth('BI-11 avail idx jumps more than a ring ahead: NEEDS_RESET before any head is taken', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    q!.chain([W(8)]);
    q!.setAvailIdx(q!.availIndex + 8);
    await kick(rig, rig.dut, 0);
    await expectNeedsReset(rig, q!, 0, /9 entries past next_avail 0/);
    expect(q!.usedIdx()).toBe(0);
    await expectRecovered(rig);
  });
  onBoard('BI-11 avail idx goes backwards: no head is processed again', async (rig) => {
    const q = await threeServed(rig);
    q.setAvailIdx(1);
    await kick(rig, rig.dut, 0);
    await expectNeedsReset(rig, q, 0, /past next_avail 3/);
    expect(q.usedIdx()).toBe(3);
    await expectRecovered(rig);
  });
  onBoard('BI-11 avail idx decrements by one', async (rig) => {
    const q = await threeServed(rig);
    q.setAvailIdx(2);
    await kick(rig, rig.dut, 0);
    await expectNeedsReset(rig, q, 0, /65535 entries past next_avail 3/);
    expect(q.usedIdx()).toBe(3);
    await expectRecovered(rig);
  });
  onBoard('BI-11 avail idx exactly one ring ahead is legal: all eight served', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    for (let i = 0; i < 8; i++) q!.chain([W(8)]);
    await kick(rig, rig.dut, 0);
    expect(q!.usedIdx()).toBe(8);
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    await expectRecovered(rig);
  });
  onBoard('BI-11 avail idx wraps past 65535 legitimately: served without a hiccup', async (rig) => {
    await runPastWrap(rig, false);
    await expectRecovered(rig);
  });
});

describe('BI-12 bad and duplicate heads', () => {
  onBoth('BI-12 avail ring head ≥ queue size', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    q!.publish(8);
    await kick(rig, rig.dut, 0);
    await expectNeedsReset(rig, q!, 0, /head 8 ≥ queue size 8/);
    await expectRecovered(rig);
  });
  onBoard('BI-12 avail ring head 0xffff', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    q!.publish(0xffff);
    await kick(rig, rig.dut, 0);
    await expectNeedsReset(rig, q!, 0, /head 65535/);
    await expectRecovered(rig);
  });
  onBoard(
    'BI-12 a head made available again while in flight: NEEDS_RESET, never completed twice',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const q = qs[HOLD_Q]!;
      const c = q.chain([W(8)], { publish: false });
      q.publish(c.head, c.head);
      await kick(rig, rig.dut, HOLD_Q);
      await expectNeedsReset(rig, q, HOLD_Q, /head \d+ made available again while in flight/);
      expect(ProbeDevice.last!.held).toHaveLength(1);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(q.usedIdx(), 'no used element while the device needs a reset').toBe(0);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard(
    'BI-12 every avail entry the same head',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const q = qs[HOLD_Q]!;
      const c = q.chain([W(8)], { publish: false });
      q.publish(...new Array<number>(8).fill(c.head));
      await kick(rig, rig.dut, HOLD_Q);
      await expectNeedsReset(rig, q, HOLD_Q, /made available again while in flight/);
      expect(q.usedIdx()).toBe(0);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard('BI-12 duplicate heads on a device that completes at once: each publication is one request, used once', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const c = q!.chain([W(8)], { publish: false });
    q!.publish(c.head, c.head, c.head);
    await kick(rig, rig.dut, 0);
    expect(q!.usedIdx()).toBe(3);
    for (let i = 0; i < 3; i++) expect(q!.usedElem(i)).toEqual({ id: c.head, len: 8 });
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    await expectRecovered(rig);
  });
});

describe('BI-25 in-flight descriptors modified or freed', () => {
  onBoard(
    'BI-25 the driver rewrites an in-flight descriptor: the device uses what it validated at pop time',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const q = qs[HOLD_Q]!;
      const c = q.chain([W(16)]);
      await kick(rig, rig.dut, HOLD_Q);
      expect(ProbeDevice.last!.held).toHaveLength(1);
      const other = q.buffer(W(64));
      q.writeDesc(c.head, { addr: other.addr, len: 64, flags: WRITE });
      const before = snapshot(rig.mem);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(q.usedElem(0)).toEqual({ id: c.head, len: 16 });
      expect(q.g.bytes(c.bufs[0]!.addr, 16).every((b) => b === PROBE_FILL)).toBe(true);
      expect(q.g.bytes(other.addr, 64).every((b) => b === POISON)).toBe(true);
      expect(writesOutside(rig.mem, before, [c.bufs[0]!, q.deviceArea()])).toEqual([]);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard(
    'BI-25 the driver frees in-flight memory (zeroes the table and the avail ring): the completion touches only the original buffer',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const q = qs[HOLD_Q]!;
      const c = q.chain([W(16)]);
      await kick(rig, rig.dut, HOLD_Q);
      q.g.bytes(q.desc, 16 * 8).fill(0);
      q.g.bytes(q.avail, 6 + 2 * 8).fill(0);
      const before = snapshot(rig.mem);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(q.usedElem(0)).toEqual({ id: c.head, len: 16 });
      expect(writesOutside(rig.mem, before, [c.bufs[0]!, q.deviceArea()])).toEqual([]);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
});

describe('BI-26 used-ring tampering and event-index poisoning', () => {
  onBoth('BI-26 used idx and flags written by the driver: the device keeps its own used index', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await request(rig, rig.dut, q!, 0, [W(8)]);
    q!.setUsedIdx(1000);
    q!.setUsedFlags(0xffff);
    const c = q!.chain([W(8)]);
    await kick(rig, rig.dut, 0);
    await rig.until('the second request is used', () => q!.usedIdx() === 2);
    expect(q!.usedElem(1)).toEqual({ id: c.head, len: 8 });
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    await expectRecovered(rig);
  });
  onBoard('BI-26 used_event and avail_event poisoned (EVENT_IDX): every request completes; interrupts follow vring_need_event', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8], { features: () => bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) });
    q!.setUsedEvent(0xffff);
    await request(rig, rig.dut, q!, 0, [W(8)]); // used 0 → 1: the first decision always interrupts
    expect(rig.dut.interruptStatus() & INT_VRING).toBe(INT_VRING);
    rig.dut.ack(INT_VRING);
    await request(rig, rig.dut, q!, 0, [W(8)]); // 1 → 2 does not cross 0xffff: no interrupt
    expect(rig.dut.interruptStatus() & INT_VRING).toBe(0);
    q!.setAvailEvent(0x1234); // the device's field; it never reads it back
    q!.setUsedEvent(2);
    await request(rig, rig.dut, q!, 0, [W(8)]); // 2 → 3 crosses 2
    expect(rig.dut.interruptStatus() & INT_VRING).toBe(INT_VRING);
    expect(q!.availEvent(), 'the device republishes its own avail_event').toBe(3);
    expect(q!.usedIdx()).toBe(3);
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    await expectRecovered(rig);
  });
  onBoard('BI-26 EVENT_IDX across the 16-bit wrap: the interrupt asked for at every batch arrives, the wrap included', async (rig) => {
    const { interrupts } = await runPastWrap(rig, true);
    expect(interrupts).toBe(65536 / 256 + 2);
    await expectRecovered(rig);
  });
});
