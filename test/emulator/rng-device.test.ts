// virtio-rng end to end with a raw driver: descriptors, avail and used rings
// laid out by hand in guest RAM, QueueNotify, runDeferred, then the used
// ring, InterruptStatus, the line and the bytes in guest memory.
import { describe, expect, it } from 'vitest';
import { REG, VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';
import { RNG_DEFAULT_MAX_REQUEST } from '../../emulator/devices/rng.js';
import { RawDriver, makeBoard, ramBytes, slotStats, type TestBoard } from '../helpers/raw-driver.js';

const CANARY = 0xaa;

/** A buffer with canary bytes on both sides. */
function canaryBuffer(tb: TestBoard, len: number, pad = 64): number {
  const at = tb.alloc.take(len + 2 * pad, 64);
  ramBytes(tb, at, len + 2 * pad).fill(CANARY);
  return at + pad;
}

function changed(bytes: Uint8Array): boolean {
  return bytes.some((b) => b !== CANARY);
}

function rng(options: Record<string, number> = {}, features?: bigint) {
  const tb = makeBoard([{ type: 'rng', transport: 'mmio', options }], { ramSize: 4 << 20 });
  const d = new RawDriver(tb, 0);
  const [ring] = d.bringUp([16], features === undefined ? {} : { features: () => features });
  tb.board.runDeferred(10);
  return { tb, d, ring: ring! };
}

describe('virtio-rng', () => {
  it('is device ID 4 with one requestq', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
    const d = new RawDriver(tb, 0);
    expect(d.read(REG.DeviceID)).toBe(VIRTIO_ID_RNG);
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueNumMax)).toBe(1024);
    d.write(REG.QueueSel, 1);
    expect(d.read(REG.QueueNumMax)).toBe(0);
  });

  it('fills one device-writable buffer exactly, returns it used, interrupts', () => {
    const { tb, d, ring } = rng();
    const buf = canaryBuffer(tb, 256);
    ring.writeDesc(3, buf, 256, VRING_DESC_F_WRITE);
    ring.addAvail(3);
    d.notify(0);
    expect(ring.usedIdx()).toBe(0); // nothing happens until the board runs deferred work
    expect(tb.board.hasDeferred()).toBe(true);
    expect(tb.board.runDeferred(10)).toBe(false);
    expect(ring.usedIdx()).toBe(1);
    expect(ring.usedElem(0)).toEqual({ id: 3, len: 256 });
    expect(d.interruptStatus()).toBe(INT_VRING);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(changed(ramBytes(tb, buf, 256))).toBe(true);
    expect(ramBytes(tb, buf - 64, 64).every((b) => b === CANARY)).toBe(true);
    expect(ramBytes(tb, buf + 256, 64).every((b) => b === CANARY)).toBe(true);
    const s = slotStats(tb);
    expect(s.notifications).toBe(1);
    expect(s.usedBuffers).toBe(1);
    expect(s.usedInterrupts).toBe(1);
    expect(s.guestErrors).toBe(0);
  });

  it('fills every writable descriptor of a chain; used len is the sum', () => {
    const { tb, d, ring } = rng();
    const a = canaryBuffer(tb, 10);
    const b = canaryBuffer(tb, 100);
    const c = canaryBuffer(tb, 1000);
    ring.writeDesc(0, a, 10, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 5);
    ring.writeDesc(5, b, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
    ring.writeDesc(2, c, 1000, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 1110 });
    for (const [at, len] of [[a, 10], [b, 100], [c, 1000]] as const) {
      expect(ramBytes(tb, at + len, 64).every((x) => x === CANARY)).toBe(true);
    }
    expect(changed(ramBytes(tb, c, 1000))).toBe(true);
  });

  it('never writes device-readable buffers', () => {
    const { tb, d, ring } = rng();
    const ro = canaryBuffer(tb, 64);
    const wr = canaryBuffer(tb, 64);
    ring.writeDesc(0, ro, 64, VRING_DESC_F_NEXT, 1);
    ring.writeDesc(1, wr, 64, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 64 });
    expect(ramBytes(tb, ro, 64).every((x) => x === CANARY)).toBe(true);
  });

  it('a chain with no writable buffer is used with len 0', () => {
    const { tb, d, ring } = rng();
    const ro = canaryBuffer(tb, 64);
    ring.writeDesc(0, ro, 64);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 0 });
  });

  it(`caps a request at ${RNG_DEFAULT_MAX_REQUEST} bytes whatever the guest offers`, () => {
    const { tb, d, ring } = rng();
    const len = 2 * RNG_DEFAULT_MAX_REQUEST;
    const buf = canaryBuffer(tb, len);
    ring.writeDesc(0, buf, len, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: RNG_DEFAULT_MAX_REQUEST });
    expect(ramBytes(tb, buf + RNG_DEFAULT_MAX_REQUEST, len - RNG_DEFAULT_MAX_REQUEST).every((x) => x === CANARY)).toBe(true);
  });

  it('the cap is an option', () => {
    const { tb, d, ring } = rng({ maxRequestBytes: 16 });
    const buf = canaryBuffer(tb, 64);
    ring.writeDesc(0, buf, 64, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedElem(0).len).toBe(16);
  });

  it('serves a full ring in one notification, in avail order', () => {
    const { tb, d, ring } = rng();
    for (let i = 0; i < 16; i++) {
      ring.writeDesc(i, tb.alloc.take(32), 32, VRING_DESC_F_WRITE);
      ring.addAvail(15 - i);
    }
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(16);
    for (let i = 0; i < 16; i++) expect(ring.usedElem(i).id).toBe(15 - i);
    expect(slotStats(tb).usedInterrupts).toBe(1);
  });

  it('keeps going across the 16-bit index wrap', () => {
    const { tb, d, ring } = rng();
    const buf = tb.alloc.take(8);
    ring.writeDesc(0, buf, 8, VRING_DESC_F_WRITE);
    for (let i = 0; i < 70000; i += 10) {
      for (let k = 0; k < 10; k++) ring.addAvail(0);
      // Heads repeat, but each use completes before the next pop.
      d.notify(0);
      tb.board.runDeferred(10);
      if (ring.usedIdx() !== ((i + 10) & 0xffff)) break;
    }
    expect(ring.usedIdx()).toBe(70000 & 0xffff);
    expect(slotStats(tb).ringErrors).toBe(0);
  });

  it('VRING_AVAIL_F_NO_INTERRUPT suppresses the used-buffer interrupt (no EVENT_IDX)', () => {
    const { tb, d, ring } = rng({}, bit(VIRTIO_F_VERSION_1));
    ring.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    ring.writeDesc(0, tb.alloc.take(8), 8, VRING_DESC_F_WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(1);
    expect(d.interruptStatus()).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
    ring.setAvailFlags(0);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(d.interruptStatus()).toBe(INT_VRING);
  });
});
