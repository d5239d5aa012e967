// InterruptStatus / InterruptACK and the level-triggered line (MMIO-D3, BI-23),
// config change and DEVICE_NEEDS_RESET notifications (spec 2.1.2, 3.2.1).
import { describe, expect, it } from 'vitest';
import { REG, VIRTIO_MMIO_INT_CONFIG as INT_CONFIG, VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { RawDriver, makeBoard, slotStats } from '../helpers/raw-driver.js';

function running() {
  const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
  const d = new RawDriver(tb, 0);
  // Without EVENT_IDX, so every used buffer asks for an interrupt.
  const [ring] = d.bringUp([16], { features: () => bit(VIRTIO_F_VERSION_1) });
  tb.board.runDeferred(10);
  const complete = () => {
    ring!.writeDesc(0, tb.alloc.take(8), 8, VRING_DESC_F_WRITE);
    ring!.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
  };
  const configChange = () => tb.board.control({ op: 'inject', slot: 0, event: 'config-change' });
  return { tb, d, complete, configChange };
}

describe('InterruptStatus and the interrupt line', () => {
  it('a used buffer sets bit 0 and raises the line', () => {
    const { tb, d, complete } = running();
    expect(tb.irq.isHigh(0)).toBe(false);
    complete();
    expect(d.interruptStatus()).toBe(INT_VRING);
    expect(tb.irq.isHigh(0)).toBe(true);
  });
  it('bits stay set until acknowledged, however often they are read', () => {
    const { tb, d, complete } = running();
    complete();
    for (let i = 0; i < 3; i++) expect(d.interruptStatus()).toBe(INT_VRING);
    expect(tb.irq.isHigh(0)).toBe(true);
    d.ack(INT_VRING);
    expect(d.interruptStatus()).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
  });
  it('a partial ACK clears only the acknowledged bit; the line stays high', () => {
    const { tb, d, complete, configChange } = running();
    complete();
    configChange();
    expect(d.interruptStatus()).toBe(INT_VRING | INT_CONFIG);
    d.ack(INT_VRING);
    expect(d.interruptStatus()).toBe(INT_CONFIG);
    expect(tb.irq.isHigh(0)).toBe(true);
    d.ack(INT_CONFIG);
    expect(d.interruptStatus()).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
  });
  it('undefined ACK bits are ignored and counted; defined bits in the same write still clear', () => {
    const { tb, d, complete } = running();
    complete();
    const before = slotStats(tb).guestErrors;
    d.ack(0x4);
    expect(d.interruptStatus()).toBe(INT_VRING);
    d.ack(0xffff_fffd);
    expect(d.interruptStatus()).toBe(0);
    expect(slotStats(tb).guestErrors - before).toBe(2);
  });
  it('an ACK with nothing pending is harmless', () => {
    const { tb, d } = running();
    d.ack(INT_VRING | INT_CONFIG);
    expect(d.interruptStatus()).toBe(0);
    expect(slotStats(tb).guestErrors).toBe(0);
  });
  it('a second event on a set bit does not raise the line again', () => {
    const { tb, complete } = running();
    complete();
    complete();
    expect(tb.irq.raises(0)).toBe(1);
    expect(slotStats(tb).irqRaised).toBe(1);
    expect(slotStats(tb).usedInterrupts).toBe(2);
  });
  it('an event between the InterruptStatus read and the ACK is lost to an ACK of what was read (the driver must re-check)', () => {
    const { d, complete, configChange } = running();
    complete();
    const seen = d.interruptStatus();
    configChange();
    d.ack(seen);
    expect(d.interruptStatus()).toBe(INT_CONFIG);
  });
});

describe('configuration change notifications', () => {
  it('a config change bumps ConfigGeneration and sets bit 1 after DRIVER_OK', () => {
    const { tb, d, configChange } = running();
    const g = d.read(REG.ConfigGeneration);
    configChange();
    expect(d.read(REG.ConfigGeneration)).toBe(g + 1);
    expect(d.interruptStatus()).toBe(INT_CONFIG);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(slotStats(tb).configInterrupts).toBe(1);
  });
  it('before DRIVER_OK a config change bumps ConfigGeneration without an interrupt', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
    const d = new RawDriver(tb, 0);
    d.negotiate();
    tb.board.control({ op: 'inject', slot: 0, event: 'config-change' });
    expect(d.read(REG.ConfigGeneration)).toBe(1);
    expect(d.interruptStatus()).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
  });
  it('ConfigGeneration is not reset by a device reset', () => {
    const { tb, d, configChange } = running();
    configChange();
    d.reset();
    expect(d.read(REG.ConfigGeneration)).toBe(1);
    expect(tb.irq.isHigh(0)).toBe(false);
  });
  it('DEVICE_NEEDS_RESET with DRIVER_OK sends a config change notification', () => {
    const { tb, d } = running();
    tb.board.control({ op: 'inject', slot: 0, event: 'needs-reset' });
    expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
    expect(d.interruptStatus()).toBe(INT_CONFIG);
  });
  it('DEVICE_NEEDS_RESET before DRIVER_OK sets the bit without an interrupt', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
    const d = new RawDriver(tb, 0);
    d.negotiate();
    tb.board.control({ op: 'inject', slot: 0, event: 'needs-reset' });
    expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
    expect(d.interruptStatus()).toBe(0);
  });
  it('while DEVICE_NEEDS_RESET is set no queue is processed; a reset recovers', () => {
    const { tb, d, complete } = running();
    tb.board.control({ op: 'inject', slot: 0, event: 'needs-reset' });
    d.ack(INT_CONFIG);
    complete();
    expect(d.interruptStatus()).toBe(0);
    expect(slotStats(tb).usedBuffers).toBe(0);
    d.bringUp([16]);
    expect(d.status() & NEEDS_RESET).toBe(0);
  });
});
