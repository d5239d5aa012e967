// Queue setup and teardown through the v2 registers: validation at
// QueueReady=1 (BI-13/14/15), layout registers ignored while ready (BI-17),
// QueueReady=0, RING_RESET's QueueReset (BI-27) and the Status=0 reset.
import { describe, expect, it } from 'vitest';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';
import { RAM_BASE, RawDriver, RawRing, TEST_RAM_SIZE, makeBoard, slotStats } from '../helpers/raw-driver.js';

function setup() {
  const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
  const d = new RawDriver(tb, 0);
  d.negotiate();
  return { tb, d };
}

const DESC = RAM_BASE + 0x1_0000;
const AVAIL = RAM_BASE + 0x2_0000;
const USED = RAM_BASE + 0x3_0000;

/** Program queue 0 and try to enable it; returns QueueReady read back. */
function tryEnable(d: RawDriver, num: number, desc = DESC, avail = AVAIL, used = USED): number {
  d.programQueue(0, num, desc, avail, used);
  d.write(REG.QueueReady, 1);
  return d.read(REG.QueueReady);
}

describe('QueueReady=1 validates the queue', () => {
  it('enables a valid layout', () => {
    expect(tryEnable(setup().d, 256)).toBe(1);
  });
  it('accepts QueueNum == QueueNumMax and smaller powers of two', () => {
    expect(tryEnable(setup().d, 1024)).toBe(1);
    expect(tryEnable(setup().d, 1)).toBe(1);
  });
  it.each([
    ['0', 0],
    ['3 (not a power of 2)', 3],
    ['2048 (> QueueNumMax)', 2048],
    ['0x10000 (u16 truncation would give 0)', 0x1_0000],
  ])('refuses QueueNum %s: QueueReady reads 0', (_name, num) => {
    const { tb, d } = setup();
    expect(tryEnable(d, num)).toBe(0);
    expect(slotStats(tb).lastGuestError).toMatch(/not enabled/);
  });
  it.each([
    ['descriptor table not 16-aligned', DESC + 8, AVAIL, USED],
    ['driver area not 2-aligned', DESC, AVAIL + 1, USED],
    ['device area not 4-aligned', DESC, AVAIL, USED + 2],
  ])('refuses a misaligned ring: %s', (_name, desc, avail, used) => {
    expect(tryEnable(setup().d, 16, desc, avail, used)).toBe(0);
  });
  it.each([
    ['descriptor table', 0, AVAIL, USED],
    ['driver area', DESC, 0, USED],
    ['device area', DESC, AVAIL, 0],
  ])('refuses a zero %s address (no addresses programmed)', (_name, desc, avail, used) => {
    expect(tryEnable(setup().d, 16, desc, avail, used)).toBe(0);
  });
  it('refuses QueueReady=1 with nothing programmed', () => {
    const { d } = setup();
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueReady, 1);
    expect(d.read(REG.QueueReady)).toBe(0);
  });
  it.each([
    ['below RAM', RAM_BASE - 0x1000, AVAIL, USED],
    ['past the end of RAM', DESC, AVAIL, RAM_BASE + TEST_RAM_SIZE - 8],
    ['straddling the end of RAM', RAM_BASE + TEST_RAM_SIZE - 0x100, AVAIL, USED],
    ['inside the MMIO window', 0x0a00_0000, AVAIL, USED],
    ['above 4 GiB', 0x1_4000_0000, AVAIL, USED],
    ['above 2^53', 0xffff_ffff_0000_0000, AVAIL, USED],
  ])('refuses a ring %s', (_name, desc, avail, used) => {
    expect(tryEnable(setup().d, 64, desc, avail, used)).toBe(0);
  });
  it('refuses overlapping areas', () => {
    expect(tryEnable(setup().d, 16, DESC, DESC + 0x80, USED)).toBe(0);
  });
  it('a non-existent QueueSel leaves the live queue intact (BI-16)', () => {
    const { d } = setup();
    d.setupQueue(0, 16);
    d.write(REG.QueueSel, 3);
    d.write(REG.QueueNum, 8);
    d.write(REG.QueueReady, 0);
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueReady)).toBe(1);
  });
});

describe('queue registers while the queue is ready (BI-17)', () => {
  it('QueueNum and the address registers are ignored while QueueReady=1', () => {
    const { tb, d } = setup();
    const ring = d.setupQueue(0, 16);
    const errors = slotStats(tb).guestErrors;
    d.programQueue(0, 8, DESC, AVAIL, USED); // 7 writes after QueueSel
    expect(slotStats(tb).guestErrors - errors).toBe(7);
    // The queue still works with its original layout.
    d.driverOk();
    tb.board.runDeferred(10);
    const buf = tb.alloc.take(32);
    ring.writeDesc(0, buf, 32, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(1);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 32 });
  });
  it('double QueueReady=1 keeps the queue and its indices', () => {
    const { tb, d } = setup();
    const ring = d.setupQueue(0, 16);
    d.driverOk();
    const buf = tb.alloc.take(16);
    ring.writeDesc(0, buf, 16, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    d.write(REG.QueueReady, 1);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(2);
  });
  it('QueueReady=0 stops the queue: later notifications do nothing', () => {
    const { tb, d } = setup();
    const ring = d.setupQueue(0, 16);
    d.driverOk();
    d.write(REG.QueueReady, 0);
    expect(d.read(REG.QueueReady)).toBe(0);
    ring.writeDesc(0, tb.alloc.take(16), 16, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(0);
    expect(slotStats(tb).ignoredNotifications).toBe(1);
  });
  it('QueueReady 1 → 0 → 1 restarts the device indices at 0', () => {
    const { tb, d } = setup();
    const ring = d.setupQueue(0, 16);
    d.driverOk();
    ring.writeDesc(0, tb.alloc.take(16), 16, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(1);
    d.write(REG.QueueReady, 0);
    tb.ram.fill(0, ring.avail - RAM_BASE, ring.avail - RAM_BASE + 6 + 2 * 16);
    tb.ram.fill(0, ring.used - RAM_BASE, ring.used - RAM_BASE + 6 + 8 * 16);
    d.write(REG.QueueReady, 1);
    const fresh = new RawRing(tb, 16, ring.desc, ring.avail, ring.used);
    fresh.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(fresh.usedIdx()).toBe(1);
  });
});

describe('QueueReset with VIRTIO_F_RING_RESET (BI-27)', () => {
  it('writing 1 resets the queue synchronously: QueueReset and QueueReady read 0', () => {
    const { tb, d } = setup();
    const ring = d.setupQueue(0, 16);
    d.driverOk();
    d.write(REG.QueueReset, 1);
    expect(d.read(REG.QueueReset)).toBe(0);
    expect(d.read(REG.QueueReady)).toBe(0);
    ring.writeDesc(0, tb.alloc.take(16), 16, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(0);
    expect(slotStats(tb).guestErrors).toBe(1); // the notify of a queue that is not ready
  });
  it('the layout is back to defaults: re-enabling needs reprogramming, possibly with a new size', () => {
    const { tb, d } = setup();
    d.setupQueue(0, 16);
    d.driverOk();
    d.write(REG.QueueReset, 1);
    d.write(REG.QueueReady, 1);
    expect(d.read(REG.QueueReady)).toBe(0); // QueueNum and addresses were cleared
    const ring = d.setupQueue(0, 64);
    expect(d.read(REG.QueueReady)).toBe(1);
    ring.writeDesc(0, tb.alloc.take(16), 16, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(1);
  });
  it('resetting twice, or a queue that was never enabled, is harmless', () => {
    const { d } = setup();
    d.driverOk();
    d.write(REG.QueueReset, 1);
    d.write(REG.QueueReset, 1);
    expect(d.read(REG.QueueReset)).toBe(0);
  });
});

describe('Status=0 resets everything', () => {
  it('queues, InterruptStatus, the line, indices, features and selectors', () => {
    const { tb, d } = setup();
    const ring = d.setupQueue(0, 16);
    d.driverOk();
    ring.writeDesc(0, tb.alloc.take(16), 16, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(d.interruptStatus()).toBe(1);
    expect(tb.irq.isHigh(0)).toBe(true);
    d.write(REG.DeviceFeaturesSel, 1);

    d.write(REG.Status, 0);
    expect(d.status()).toBe(0);
    expect(d.interruptStatus()).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueReady)).toBe(0);
    expect(d.read(REG.DeviceFeatures)).toBe(0x3000_0000); // selector back to 0: the low word (INDIRECT_DESC, EVENT_IDX)
    expect(slotStats(tb).guestErrors).toBe(0);

    // Re-initialise at the same addresses with zeroed rings: indices restart at 0.
    tb.ram.fill(0, ring.avail - RAM_BASE, ring.used - RAM_BASE + 6 + 8 * 16);
    d.negotiate();
    d.programQueue(0, 16, ring.desc, ring.avail, ring.used);
    d.write(REG.QueueReady, 1);
    d.driverOk();
    const again = new RawRing(tb, 16, ring.desc, ring.avail, ring.used);
    again.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(again.usedIdx()).toBe(1);
    expect(again.usedElem(0).id).toBe(0);
  });
  it('queue addresses do not survive a reset (QEMU keeps them)', () => {
    const { d } = setup();
    d.setupQueue(0, 16);
    d.reset();
    d.negotiate();
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueReady, 1);
    expect(d.read(REG.QueueReady)).toBe(0);
  });
  it('work queued before the reset never completes into guest memory', () => {
    const { tb, d } = setup();
    const ring = d.setupQueue(0, 16);
    d.driverOk();
    tb.board.runDeferred(10);
    const buf = tb.alloc.take(64);
    ring.writeDesc(0, buf, 64, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0); // queued, not yet run
    expect(tb.board.hasDeferred()).toBe(true);
    d.reset();
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(0);
    expect(tb.ram.subarray(buf - RAM_BASE, buf - RAM_BASE + 64).every((b) => b === 0)).toBe(true);
    expect(d.interruptStatus()).toBe(0);
  });
  it('back-to-back resets and a reset of a fresh device are harmless', () => {
    const { tb, d } = setup();
    d.reset();
    d.reset();
    d.reset();
    expect(d.status()).toBe(0);
    expect(slotStats(tb).guestErrors).toBe(0);
  });
  it('notifications before DRIVER_OK are ignored, then DRIVER_OK picks the buffers up', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
    const d = new RawDriver(tb, 0);
    d.negotiate({ features: () => bit(VIRTIO_F_VERSION_1) });
    const ring = d.setupQueue(0, 8);
    ring.writeDesc(0, tb.alloc.take(16), 16, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(0);
    expect(slotStats(tb).ignoredNotifications).toBe(1);
    expect(slotStats(tb).lastGuestError).toMatch(/before DRIVER_OK/);
    d.driverOk();
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(1);
  });
});
