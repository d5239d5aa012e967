// BI-19, BI-20, BI-24, BI-28 (VIRTIO-NOTES §6): Status, feature negotiation
// and device reset as a hostile driver drives them. The policy is the device
// core's (emulator/virtio/device-core.ts): bits the driver may not write are
// ignored, bits are never cleared except by writing 0, FEATURES_OK is
// validated when set and freezes the features, DRIVER_OK needs FEATURES_OK on
// a Version 2 device, FAILED is stored; Status=0 always resets, and after it
// nothing from before the reset reaches guest memory or the interrupt line.
import { describe, expect } from 'vitest';
import {
  VIRTIO_F_SUSPEND,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  bit,
  hi32,
  lo32,
} from '../../core/uapi/features.js';
import { REG } from '../../core/uapi/mmio.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE as ACK,
  VIRTIO_CONFIG_S_DRIVER as DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK as DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED as FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK as FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET,
  VIRTIO_CONFIG_S_SUSPEND as SUSPEND,
} from '../../core/uapi/status.js';
import { QueueBuilder, W } from '../../tools/testkit/queue-builder.js';
import { changedRanges, snapshot, type Range } from '../../tools/testkit/ranges.js';
import { bringUp, expectRecovered, kick, onBoard, onBoth, request, type Rig } from './harness.js';
import { HOLD_Q, PROBE_F_A, PROBE_F_B, PROBE_TYPE, ProbeDevice } from './probe-device.js';

const PROBE = { dut: { type: PROBE_TYPE, transport: 'mmio' as const } };
const LEGACY = { dut: { type: 'rng' as const, transport: 'mmio-legacy' as const } };
/** Every bit a Status read may show on a device without VIRTIO_F_SUSPEND. */
const STATUS_BITS = ACK | DRIVER | DRIVER_OK | FEATURES_OK | NEEDS_RESET | FAILED;

/** Status reads only defined bits, and DRIVER_OK never without FEATURES_OK on a Version 2 device. */
function expectStatusSane(s: number): void {
  expect(s & ~STATUS_BITS, `Status 0x${s.toString(16)} has undefined bits`).toBe(0);
  if (s & DRIVER_OK) expect(s & FEATURES_OK, `Status 0x${s.toString(16)}: DRIVER_OK without FEATURES_OK`).toBe(FEATURES_OK);
}

/** Program queue 0 (size 8), DRIVER_OK, and report whether a request is served. */
async function serves(rig: Rig): Promise<boolean> {
  const q = new QueueBuilder(rig.mem, rig.alloc, 8);
  q.program(rig.dut, 0);
  rig.dut.addStatus(DRIVER_OK);
  await rig.settle();
  q.chain([W(8)]);
  await kick(rig, rig.dut, 0);
  return q.usedIdx() === 1;
}

function overlaps(ranges: Range[], areas: Range[]): Range[] {
  return ranges.filter((r) => areas.some((a) => r.addr < a.addr + a.len && a.addr < r.addr + r.len));
}

describe('BI-19 Status misuse', () => {
  onBoard('BI-19 clearing bits: they stay set (only a write of 0 clears), counted', async (rig) => {
    rig.dut.negotiate();
    rig.dut.write(REG.Status, ACK | DRIVER);
    expect(rig.dut.status()).toBe(ACK | DRIVER | FEATURES_OK);
    expect(rig.stats().lastGuestError).toMatch(/would clear bits/);
    expect(await serves(rig)).toBe(true);
    await expectRecovered(rig);
  });
  onBoard('BI-19 FAILED then carrying on: FAILED is stored, the device keeps serving until reset', async (rig) => {
    rig.dut.negotiate();
    rig.dut.addStatus(FAILED);
    expect(rig.dut.status()).toBe(ACK | DRIVER | FEATURES_OK | FAILED);
    expect(await serves(rig)).toBe(true);
    expect(rig.dut.status()).toBe(ACK | DRIVER | FEATURES_OK | DRIVER_OK | FAILED);
    await expectRecovered(rig);
  });
  onBoard('BI-19 DRIVER_OK without FEATURES_OK: refused, no buffer consumed', async (rig) => {
    rig.dut.reset();
    rig.dut.write(REG.Status, ACK | DRIVER);
    rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
    expect(await serves(rig)).toBe(false);
    expect(rig.dut.status()).toBe(ACK | DRIVER);
    expect(rig.stats().lastGuestError).toMatch(/QueueNotify\(0\) before DRIVER_OK/);
    await expectRecovered(rig);
  });
  onBoard('BI-19 FEATURES_OK and DRIVER_OK without ACKNOWLEDGE/DRIVER, in one write: accepted (only the features are checked)', async (rig) => {
    rig.dut.reset();
    rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    q.program(rig.dut, 0);
    rig.dut.write(REG.Status, FEATURES_OK | DRIVER_OK);
    expect(rig.dut.status()).toBe(FEATURES_OK | DRIVER_OK);
    expect((await request(rig, rig.dut, q, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoth('BI-19 reserved bits, SUSPEND, DEVICE_NEEDS_RESET and all bits set: undefined bits ignored, FEATURES_OK still validated', async (rig) => {
    rig.dut.reset();
    rig.dut.write(REG.Status, ACK | 0x20 | 0x100 | NEEDS_RESET | SUSPEND);
    expect(rig.dut.status()).toBe(ACK);
    rig.dut.reset();
    rig.dut.write(REG.Status, 0xff); // no features accepted: FEATURES_OK and so DRIVER_OK refused
    expect(rig.dut.status()).toBe(ACK | DRIVER | FAILED);
    rig.dut.reset();
    rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
    rig.dut.write(REG.Status, 0xffff_ffff);
    expect(rig.dut.status()).toBe(ACK | DRIVER | FEATURES_OK | DRIVER_OK | FAILED);
    expectStatusSane(rig.dut.status());
    await expectRecovered(rig);
  });
  onBoard('BI-19 double DRIVER_OK and a wrong order (DRIVER before ACKNOWLEDGE): harmless, Status stays sane', async (rig) => {
    rig.dut.reset();
    rig.dut.write(REG.Status, DRIVER);
    rig.dut.write(REG.Status, DRIVER | ACK);
    rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
    rig.dut.addStatus(FEATURES_OK);
    expect(await serves(rig)).toBe(true);
    const s = rig.dut.status();
    rig.dut.write(REG.Status, s);
    rig.dut.write(REG.Status, s);
    expect(rig.dut.status()).toBe(s);
    expectStatusSane(s);
    await expectRecovered(rig);
  });
  onBoard('BI-19 Status=0 resets from every state reached above', async (rig) => {
    for (const v of [ACK, ACK | DRIVER | FAILED, 0xff, 0xffff_ffff, FEATURES_OK, DRIVER_OK]) {
      rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
      rig.dut.write(REG.Status, v);
      expectStatusSane(rig.dut.status());
      rig.dut.reset();
      expect(rig.dut.status(), `after 0x${v.toString(16)}`).toBe(0);
    }
    await expectRecovered(rig);
  });
});

describe('BI-20 feature negotiation misuse', () => {
  onBoth('BI-20 accepting a feature that was not offered: FEATURES_OK does not stick, DRIVER_OK is refused', async (rig) => {
    const st = rig.dut.negotiate({ features: (o) => o | bit(0) });
    expect(st & FEATURES_OK).toBe(0);
    expect(rig.stats().lastGuestError).toMatch(/accepted but not offered/);
    expect(await serves(rig)).toBe(false);
    await expectRecovered(rig);
  });
  onBoard('BI-20 feature words beyond bit 63 (DriverFeaturesSel ≥ 2): a non-zero word refuses FEATURES_OK; DeviceFeatures reads 0 there', async (rig) => {
    rig.dut.write(REG.DeviceFeaturesSel, 2);
    expect(rig.dut.read(REG.DeviceFeatures)).toBe(0);
    rig.dut.write(REG.DeviceFeaturesSel, 0xffff_ffff);
    expect(rig.dut.read(REG.DeviceFeatures)).toBe(0);
    rig.dut.reset();
    rig.dut.write(REG.Status, ACK | DRIVER);
    rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
    rig.dut.write(REG.DriverFeaturesSel, 2);
    rig.dut.write(REG.DriverFeatures, 0); // zero words beyond 63 are harmless
    rig.dut.addStatus(FEATURES_OK);
    expect(rig.dut.status() & FEATURES_OK).toBe(FEATURES_OK);
    rig.dut.reset();
    rig.dut.write(REG.Status, ACK | DRIVER);
    rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
    rig.dut.write(REG.DriverFeaturesSel, 7);
    rig.dut.write(REG.DriverFeatures, 1);
    rig.dut.addStatus(FEATURES_OK);
    expect(rig.dut.status() & FEATURES_OK).toBe(0);
    expect(rig.stats().lastGuestError).toMatch(/above bit 63/);
    await expectRecovered(rig);
  });
  onBoard('BI-20 FEATURES_OK without VERSION_1 on a Version 2 device: refused', async (rig) => {
    const st = rig.dut.negotiate({ features: (o) => o & ~bit(VIRTIO_F_VERSION_1) });
    expect(st & FEATURES_OK).toBe(0);
    expect(rig.stats().lastGuestError).toMatch(/VERSION_1 not accepted/);
    await expectRecovered(rig);
  });
  onBoard('BI-20 feature writes after FEATURES_OK are ignored: the negotiated set stays in force', async (rig) => {
    rig.dut.negotiate();
    rig.dut.writeDriverFeatures(bit(VIRTIO_F_VERSION_1)); // tries to drop INDIRECT_DESC and EVENT_IDX
    expect(rig.stats().lastGuestError).toMatch(/after they were frozen/);
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    q.program(rig.dut, 0);
    rig.dut.driverOk();
    const r = await request(rig, rig.dut, q, 0, [W(8), W(8)], { indirect: true });
    expect(r.used.len).toBe(16); // INDIRECT_DESC still negotiated
    expect(rig.dut.status() & NEEDS_RESET).toBe(0);
    await expectRecovered(rig);
  });
  onBoard(
    "BI-20 a feature without its prerequisite: the model's check refuses FEATURES_OK; with it, accepted",
    async (rig) => {
      const base = bit(VIRTIO_F_VERSION_1);
      expect(rig.dut.negotiate({ features: () => base | bit(PROBE_F_B) }) & FEATURES_OK).toBe(0);
      expect(rig.stats().lastGuestError).toMatch(/refused by the device model/);
      expect(rig.dut.negotiate({ features: () => base | bit(PROBE_F_A) | bit(PROBE_F_B) }) & FEATURES_OK).toBe(FEATURES_OK);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard(
    'BI-20 legacy: accepting bits above 31 (never offered): dropped at DRIVER_OK, counted, the device works',
    async (rig) => {
      const d = rig.dut;
      d.reset();
      d.write(REG.Status, ACK | DRIVER);
      const offered = d.deviceFeatures();
      expect(hi32(offered)).toBe(0);
      d.writeDriverFeatures((0xffff_ffffn << 32n) | BigInt(lo32(offered)));
      d.write(REG.GuestPageSize, 4096);
      const q = QueueBuilder.legacy(rig.mem, rig.alloc, 8);
      q.programLegacy(d, 0);
      d.addStatus(DRIVER_OK);
      expect(d.status()).toBe(ACK | DRIVER | DRIVER_OK);
      expect(rig.stats().lastGuestError).toMatch(/legacy driver accepted unoffered features/);
      expect((await request(rig, d, q, 0, [W(8)])).used.len).toBe(8);
      await expectRecovered(rig);
    },
    LEGACY,
  );
});

describe('BI-24 device reset with I/O in flight, and resets at odd moments', () => {
  onBoard(
    'BI-24 reset with a request in flight: after Status reads 0 the late completion writes nothing and raises nothing',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const q = qs[HOLD_Q]!;
      q.chain([W(16), W(16)]);
      await kick(rig, rig.dut, HOLD_Q);
      ProbeDevice.last!.keepAcrossReset = true; // a model that keeps stale chains: the core must stop them
      rig.dut.reset();
      expect(rig.dut.status()).toBe(0);
      const before = snapshot(rig.mem);
      const irqs = rig.stats().irqRaised;
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(changedRanges(rig.mem, before)).toEqual([]);
      expect(rig.stats().irqRaised).toBe(irqs);
      expect(rig.dut.interruptStatus()).toBe(0);
      ProbeDevice.last!.keepAcrossReset = false;
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard('BI-24 reset between the kick and the deferred work: the work finds nothing to do', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await rig.settle();
    q!.chain([W(16)]);
    rig.dut.notify(0);
    rig.dut.reset();
    const before = snapshot(rig.mem);
    await rig.settle();
    expect(changedRanges(rig.mem, before)).toEqual([]);
    expect(rig.stats().usedBuffers).toBe(0);
    await expectRecovered(rig);
  });
  onBoth('BI-24 kick then reset, back to back: once Status reads 0 nothing touches the ring or its buffers', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await rig.settle();
    const chains = [q!.chain([W(16)]), q!.chain([W(16)])];
    rig.dut.notify(0);
    rig.dut.reset();
    rig.dut.reset();
    rig.dut.reset();
    expect(rig.dut.status()).toBe(0);
    const before = snapshot(rig.mem);
    await rig.settle();
    const mine: Range[] = [q!.deviceArea(), ...chains.flatMap((c) => c.bufs)];
    expect(overlaps(changedRanges(rig.mem, before), mine)).toEqual([]);
    expect(rig.dut.interruptStatus()).toBe(0);
    await expectRecovered(rig);
  });
  onBoard('BI-24 reset during negotiation and between FEATURES_OK and DRIVER_OK: features and queues start over', async (rig) => {
    const d = rig.dut;
    d.reset();
    d.write(REG.Status, ACK | DRIVER);
    d.writeDriverFeatures(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX));
    d.reset();
    expect(d.status()).toBe(0);
    d.negotiate({ features: () => bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC) });
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    q.program(d, 0);
    d.reset();
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueReady)).toBe(0);
    expect(d.status()).toBe(0);
    // After the reset, EVENT_IDX written before it is gone: the device never publishes avail_event.
    const [q2] = bringUp(rig, d, [8], { features: () => bit(VIRTIO_F_VERSION_1) });
    await request(rig, d, q2!, 0, [W(8)]);
    expect(q2!.availEvent()).toBe(0);
    await expectRecovered(rig);
  });
});

describe('BI-28 VIRTIO_F_SUSPEND misuse (the device offers no SUSPEND)', () => {
  onBoth('BI-28 SUSPEND written without the feature, before and after DRIVER_OK, twice: ignored, the device keeps serving', async (rig) => {
    rig.dut.negotiate();
    rig.dut.addStatus(SUSPEND);
    expect(rig.dut.status() & SUSPEND).toBe(0);
    expect(rig.stats().lastGuestError).toMatch(/not driver-writable/);
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    q.program(rig.dut, 0);
    rig.dut.driverOk();
    for (let i = 0; i < 2; i++) {
      rig.dut.addStatus(SUSPEND);
      expect(rig.dut.status()).toBe(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    }
    expect((await request(rig, rig.dut, q, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoard('BI-28 accepting VIRTIO_F_SUSPEND, which is not offered: FEATURES_OK refused', async (rig) => {
    expect(rig.dut.deviceFeatures() & bit(VIRTIO_F_SUSPEND)).toBe(0n);
    expect(rig.dut.negotiate({ features: (o) => o | bit(VIRTIO_F_SUSPEND) }) & FEATURES_OK).toBe(0);
    await expectRecovered(rig);
  });
  // Pending: the rest of BI-28 (SUSPEND before DRIVER_OK once negotiated, a
  // double SUSPEND, config changes deferred while suspended) needs the v1.4
  // Device Suspend feature, which no device here offers yet.
});
