// Spec 3.1.1 initialisation with raw register accesses, feature negotiation
// (FEATURES_OK acceptance) and the Status policy for misuse (BI-19, BI-20).
import { describe, expect, it } from 'vitest';
import { REG } from '../../core/uapi/mmio.js';
import {
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  bit,
} from '../../core/uapi/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE as ACK,
  VIRTIO_CONFIG_S_DRIVER as DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK as DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED as FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK as FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET,
} from '../../core/uapi/status.js';
import { RawDriver, makeBoard, slotStats } from '../helpers/raw-driver.js';

const V1 = bit(VIRTIO_F_VERSION_1);

function setup() {
  const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
  return { tb, d: new RawDriver(tb, 0) };
}

describe('spec 3.1.1 initialisation with raw register accesses', () => {
  it('reset, ACK, DRIVER, features hi/lo, FEATURES_OK read back, queue setup, DRIVER_OK', () => {
    const { tb, d } = setup();
    d.write(REG.Status, 0);
    expect(d.status()).toBe(0);
    d.write(REG.Status, ACK);
    expect(d.status()).toBe(ACK);
    d.write(REG.Status, ACK | DRIVER);
    expect(d.status()).toBe(ACK | DRIVER);
    d.write(REG.DeviceFeaturesSel, 1);
    const hi = d.read(REG.DeviceFeatures);
    d.write(REG.DeviceFeaturesSel, 0);
    const lo = d.read(REG.DeviceFeatures);
    expect(hi & 1).toBe(1); // VERSION_1 offered
    d.write(REG.DriverFeaturesSel, 1);
    d.write(REG.DriverFeatures, hi);
    d.write(REG.DriverFeaturesSel, 0);
    d.write(REG.DriverFeatures, lo);
    d.write(REG.Status, ACK | DRIVER | FEATURES_OK);
    expect(d.status()).toBe(ACK | DRIVER | FEATURES_OK);
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueReady)).toBe(0);
    expect(d.read(REG.QueueNumMax)).toBeGreaterThan(0);
    d.setupQueue(0, 64);
    expect(d.read(REG.QueueReady)).toBe(1);
    d.write(REG.Status, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(d.status()).toBe(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(slotStats(tb).guestErrors).toBe(0);
  });

  it('accepts any subset that includes VERSION_1', () => {
    for (const f of [V1, V1 | bit(VIRTIO_RING_F_EVENT_IDX), V1 | bit(VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_F_RING_RESET)]) {
      expect(setup().d.negotiate({ features: () => f }) & FEATURES_OK).toBe(FEATURES_OK);
    }
  });

  it('accepts the same set again after a reset (spec 2.2.2)', () => {
    const { d } = setup();
    expect(d.negotiate() & FEATURES_OK).toBe(FEATURES_OK);
    expect(d.negotiate() & FEATURES_OK).toBe(FEATURES_OK);
  });
});

describe('FEATURES_OK acceptance (BI-20)', () => {
  it('does not stick when the driver accepted a feature that was not offered', () => {
    const { tb, d } = setup();
    const st = d.negotiate({ features: (o) => o | bit(VIRTIO_F_IN_ORDER) });
    expect(st & FEATURES_OK).toBe(0);
    expect(st).toBe(ACK | DRIVER);
    expect(slotStats(tb).lastGuestError).toMatch(/FEATURES_OK refused/);
  });
  it('does not stick on a Version 2 device when VERSION_1 was not accepted (QEMU accepts it)', () => {
    const { d } = setup();
    expect(d.negotiate({ features: (o) => o & ~V1 }) & FEATURES_OK).toBe(0);
    expect(setup().d.negotiate({ features: () => 0n }) & FEATURES_OK).toBe(0);
  });
  it('a refused driver may fix its features and set FEATURES_OK again', () => {
    const { d } = setup();
    d.negotiate({ features: () => 0n });
    d.writeDriverFeatures(V1);
    d.addStatus(FEATURES_OK);
    expect(d.status() & FEATURES_OK).toBe(FEATURES_OK);
  });
  it('features are frozen once FEATURES_OK sticks', () => {
    const { tb, d } = setup();
    d.negotiate({ features: () => V1 });
    const before = slotStats(tb).guestErrors;
    d.writeDriverFeatures(V1 | bit(VIRTIO_F_RING_RESET));
    expect(slotStats(tb).guestErrors - before).toBe(2); // both DriverFeatures writes; the selector writes are fine
    // RING_RESET was not negotiated: QueueReset stays unavailable.
    d.setupQueue(0, 16);
    d.driverOk();
    d.write(REG.QueueReset, 1);
    expect(d.read(REG.QueueReady)).toBe(1);
  });
  it('the injected refusal fails the next FEATURES_OK once', () => {
    const { tb, d } = setup();
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'refuse-features' }).ok).toBe(true);
    expect(d.negotiate() & FEATURES_OK).toBe(0);
    expect(d.negotiate() & FEATURES_OK).toBe(FEATURES_OK);
  });
});

describe('Status policy for misuse (BI-19)', () => {
  it('bits cannot be cleared except by writing 0', () => {
    const { tb, d } = setup();
    d.negotiate();
    d.write(REG.Status, ACK);
    expect(d.status()).toBe(ACK | DRIVER | FEATURES_OK);
    expect(slotStats(tb).lastGuestError).toMatch(/clear/);
  });
  it('DRIVER_OK without FEATURES_OK does not stick on a Version 2 device', () => {
    const { tb, d } = setup();
    d.write(REG.Status, ACK | DRIVER | DRIVER_OK);
    expect(d.status()).toBe(ACK | DRIVER);
    expect(slotStats(tb).lastGuestError).toMatch(/DRIVER_OK without FEATURES_OK/);
  });
  it('DRIVER_OK and FEATURES_OK in one write: both stick if the features are acceptable', () => {
    const { d } = setup();
    d.reset();
    d.writeDriverFeatures(V1);
    d.write(REG.Status, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(d.status()).toBe(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  });
  it('DRIVER_OK with a refused FEATURES_OK in the same write: neither sticks', () => {
    const { d } = setup();
    d.reset();
    d.write(REG.Status, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(d.status()).toBe(ACK | DRIVER);
  });
  it('DEVICE_NEEDS_RESET, SUSPEND and reserved bits are not driver-writable', () => {
    const { tb, d } = setup();
    d.write(REG.Status, ACK | NEEDS_RESET | 0x10 | 0x20 | 0x100);
    expect(d.status()).toBe(ACK);
    expect(slotStats(tb).guestErrors).toBe(1);
  });
  it('FAILED is stored; the device keeps its state until reset', () => {
    const { d } = setup();
    d.negotiate();
    d.addStatus(FAILED);
    expect(d.status()).toBe(ACK | DRIVER | FEATURES_OK | FAILED);
    d.reset();
    expect(d.status()).toBe(0);
  });
  it('FEATURES_OK without ACKNOWLEDGE/DRIVER is not an ordering error: only the features are checked', () => {
    const { d } = setup();
    d.writeDriverFeatures(V1);
    d.write(REG.Status, FEATURES_OK);
    expect(d.status()).toBe(FEATURES_OK);
  });
  it('a double DRIVER_OK is harmless', () => {
    const { tb, d } = setup();
    d.bringUp([16]);
    const s = d.status();
    d.write(REG.Status, s);
    expect(d.status()).toBe(s);
    expect(slotStats(tb).guestErrors).toBe(0);
  });
});
