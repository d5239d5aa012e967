// Legacy virtio-mmio (Version 1, transport 'mmio-legacy'): GuestPageSize,
// QueueAlign, QueuePFN, legacy feature negotiation, bytewise config space.
import { describe, expect, it } from 'vitest';
import { REG, VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit } from '../../core/uapi/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE as ACK,
  VIRTIO_CONFIG_S_DRIVER as DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK as DRIVER_OK,
} from '../../core/uapi/status.js';
import { VRING_DESC_F_WRITE as WRITE } from '../../core/uapi/ring.js';
import type { ConfigWidth, DeviceContext, DeviceModel } from '../../emulator/devices/device.js';
import { registerDeviceType } from '../../emulator/devices/catalog.js';
import { RAM_BASE, RawDriver, makeBoard, ramBytes, slotStats, type TestBoard } from '../helpers/raw-driver.js';

const PAGE = 4096;

function legacy() {
  const tb = makeBoard([{ type: 'rng', transport: 'mmio-legacy' }]);
  return { tb, d: new RawDriver(tb, 0) };
}

function errorsOf(tb: TestBoard, fn: () => void): number {
  const before = slotStats(tb).guestErrors;
  fn();
  return slotStats(tb).guestErrors - before;
}

/** Legacy probe + init as Linux does it: no FEATURES_OK step. */
function legacyInit(d: RawDriver, features = bit(VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_RING_F_EVENT_IDX)): void {
  d.write(REG.GuestPageSize, PAGE);
  d.reset();
  d.write(REG.Status, ACK);
  d.write(REG.Status, ACK | DRIVER);
  d.writeDriverFeatures(features);
}

/** One rng request on a ring; returns the buffer address. */
function request(tb: TestBoard, d: RawDriver, ring: ReturnType<RawDriver['setupLegacyQueue']>, len = 64): number {
  const buf = tb.alloc.take(len);
  ring.writeDesc(0, buf, len, WRITE);
  ring.addAvail(0);
  d.notify(0);
  tb.board.runDeferred(10);
  return buf;
}

describe('legacy register set', () => {
  it('Version reads 1', () => {
    expect(legacy().d.read(REG.Version)).toBe(1);
  });
  it('offers only the low 32 feature bits: no VERSION_1', () => {
    const { d } = legacy();
    const f = d.deviceFeatures();
    expect(f & bit(VIRTIO_F_VERSION_1)).toBe(0n);
    expect(f).toBe(bit(VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_RING_F_EVENT_IDX));
  });
  it('GuestPageSize and QueueAlign are write-only', () => {
    const { tb, d } = legacy();
    expect(errorsOf(tb, () => expect(d.read(REG.GuestPageSize)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => expect(d.read(REG.QueueAlign)).toBe(0))).toBe(1);
  });
  it('QueuePFN reads 0 for a queue not in use and for a non-existent queue', () => {
    const { tb, d } = legacy();
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueuePFN)).toBe(0);
    d.write(REG.QueueSel, 4);
    expect(errorsOf(tb, () => expect(d.read(REG.QueuePFN)).toBe(0))).toBe(0);
  });
  it('QueueNumMax is readable', () => {
    const { d } = legacy();
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueNumMax)).toBe(1024);
  });
  it('Version 2-only registers do not exist', () => {
    const { tb, d } = legacy();
    for (const r of [REG.QueueReady, REG.SHMLenLow, REG.QueueReset, REG.ConfigGeneration]) {
      expect(errorsOf(tb, () => expect(d.read(r)).toBe(0))).toBe(1);
    }
    for (const r of [REG.QueueReady, REG.QueueDescLow, REG.QueueDriverHigh, REG.QueueDeviceLow, REG.SHMSel, REG.QueueReset]) {
      expect(errorsOf(tb, () => d.write(r, 1))).toBe(1);
    }
  });
  it('GuestPageSize and QueueAlign must be powers of two', () => {
    const { tb, d } = legacy();
    expect(errorsOf(tb, () => d.write(REG.GuestPageSize, 3000))).toBe(1);
    d.write(REG.QueueSel, 0);
    expect(errorsOf(tb, () => d.write(REG.QueueAlign, 100))).toBe(1);
  });
});

describe('legacy queue setup and an rng request', () => {
  it.each([PAGE, 64])('GuestPageSize/QueueAlign(%i)/QueuePFN, DRIVER_OK without FEATURES_OK, one request', (align) => {
    const { tb, d } = legacy();
    legacyInit(d);
    const ring = d.setupLegacyQueue(0, 16, PAGE, align);
    expect(d.read(REG.QueuePFN)).toBe(ring.desc / PAGE);
    d.write(REG.Status, ACK | DRIVER | DRIVER_OK);
    expect(d.status()).toBe(ACK | DRIVER | DRIVER_OK);
    tb.board.runDeferred(10);
    const buf = request(tb, d, ring);
    expect(ring.usedIdx()).toBe(1);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 64 });
    expect(ramBytes(tb, buf, 64).some((x) => x !== 0)).toBe(true);
    expect(d.interruptStatus()).toBe(INT_VRING);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(slotStats(tb).guestErrors).toBe(0);
  });
  it('QueuePFN before GuestPageSize is refused', () => {
    const { tb, d } = legacy();
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueNum, 16);
    expect(errorsOf(tb, () => d.write(REG.QueuePFN, (RAM_BASE + 0x10000) / PAGE))).toBe(1);
    expect(d.read(REG.QueuePFN)).toBe(0);
  });
  it('a QueuePFN whose ring lies outside RAM is refused', () => {
    const { d } = legacy();
    legacyInit(d);
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueNum, 16);
    d.write(REG.QueuePFN, 0x10);
    expect(d.read(REG.QueuePFN)).toBe(0);
    d.write(REG.QueuePFN, 0xffff_ffff);
    expect(d.read(REG.QueuePFN)).toBe(0);
  });
  it('QueueNum above QueueNumMax refuses the QueuePFN write', () => {
    const { d } = legacy();
    legacyInit(d);
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueNum, 2048);
    d.write(REG.QueuePFN, (RAM_BASE + 0x10000) / PAGE);
    expect(d.read(REG.QueuePFN)).toBe(0);
  });
  it('QueuePFN=0 stops the queue', () => {
    const { tb, d } = legacy();
    legacyInit(d);
    const ring = d.setupLegacyQueue(0, 16, PAGE, PAGE);
    d.addStatus(DRIVER_OK);
    d.write(REG.QueuePFN, 0);
    expect(d.read(REG.QueuePFN)).toBe(0);
    request(tb, d, ring);
    expect(ring.usedIdx()).toBe(0);
  });
  it('QueuePFN, QueueNum and QueueAlign are ignored while the queue is in use', () => {
    const { tb, d } = legacy();
    legacyInit(d);
    const ring = d.setupLegacyQueue(0, 16, PAGE, PAGE);
    const pfn = d.read(REG.QueuePFN);
    expect(errorsOf(tb, () => d.write(REG.QueuePFN, pfn + 1))).toBe(1);
    expect(errorsOf(tb, () => d.write(REG.QueueNum, 8))).toBe(1);
    expect(errorsOf(tb, () => d.write(REG.QueueAlign, 64))).toBe(1);
    expect(d.read(REG.QueuePFN)).toBe(pfn);
    d.addStatus(DRIVER_OK);
    request(tb, d, ring);
    expect(ring.usedIdx()).toBe(1);
  });
  it('Status=0 sets QueuePFN to 0 and keeps GuestPageSize', () => {
    const { tb, d } = legacy();
    legacyInit(d);
    d.setupLegacyQueue(0, 16, PAGE, PAGE);
    d.reset();
    expect(d.read(REG.QueuePFN)).toBe(0);
    // Linux does not rewrite GuestPageSize after the reset in register_virtio_device.
    d.write(REG.Status, ACK | DRIVER);
    const ring = d.setupLegacyQueue(0, 16, PAGE, PAGE);
    expect(d.read(REG.QueuePFN)).toBe(ring.desc / PAGE);
    d.addStatus(DRIVER_OK);
    request(tb, d, ring);
    expect(ring.usedIdx()).toBe(1);
  });
  it('a legacy driver accepting unoffered features: dropped at DRIVER_OK and counted', () => {
    const { tb, d } = legacy();
    legacyInit(d, bit(VIRTIO_RING_F_EVENT_IDX) | bit(3));
    const ring = d.setupLegacyQueue(0, 16, PAGE, PAGE);
    expect(errorsOf(tb, () => d.addStatus(DRIVER_OK))).toBe(1);
    expect(d.status() & DRIVER_OK).toBe(DRIVER_OK);
    tb.board.runDeferred(10);
    request(tb, d, ring);
    expect(ring.usedIdx()).toBe(1);
  });
  it('features are frozen at DRIVER_OK', () => {
    const { tb, d } = legacy();
    legacyInit(d);
    d.setupLegacyQueue(0, 16, PAGE, PAGE);
    d.addStatus(DRIVER_OK);
    expect(errorsOf(tb, () => d.write(REG.DriverFeatures, 0))).toBe(1);
  });
});

describe('legacy across platform power events', () => {
  it("'reset' keeps GuestPageSize; 'fresh' loses it until the driver rewrites it", () => {
    const { tb, d } = legacy();
    legacyInit(d);
    d.setupLegacyQueue(0, 16, PAGE, PAGE);
    expect(tb.board.control({ op: 'power', model: 'reset' }).ok).toBe(true);
    expect(d.read(REG.QueuePFN)).toBe(0);
    d.setupLegacyQueue(0, 16, PAGE, PAGE);
    expect(d.read(REG.QueuePFN)).not.toBe(0);

    expect(tb.board.control({ op: 'power', model: 'fresh' }).ok).toBe(true);
    expect(d.status()).toBe(0);
    d.write(REG.Status, ACK | DRIVER);
    d.setupLegacyQueue(0, 16, PAGE, PAGE);
    expect(d.read(REG.QueuePFN)).toBe(0);
    expect(slotStats(tb).lastGuestError).toMatch(/GuestPageSize/);
    d.write(REG.GuestPageSize, PAGE); // what Linux's virtio_mmio_restore does
    const ring = d.setupLegacyQueue(0, 16, PAGE, PAGE);
    expect(d.read(REG.QueuePFN)).toBe(ring.desc / PAGE);
  });
});

/** 4 config bytes 0xa0..0xa3. */
class LegacyConfigDevice implements DeviceModel {
  readonly deviceId = 0x7d;
  readonly name = 'legacy-cfg';
  readonly features = bit(VIRTIO_F_VERSION_1);
  readonly queueNumMax = [4];
  readonly configSize = 4;
  static written: number[] = [];
  readConfig(offset: number, width: ConfigWidth): number {
    expect(width).toBe(1);
    return 0xa0 + offset;
  }
  writeConfig(offset: number, width: ConfigWidth, value: number): void {
    expect(width).toBe(1);
    LegacyConfigDevice.written[offset] = value;
  }
  reset(): void {}
  handleQueue(_ctx: DeviceContext, _q: number): void {}
}
registerDeviceType('legacy-cfg', () => new LegacyConfigDevice());

describe('legacy config space', () => {
  const cfg = () => {
    const tb = makeBoard([{ type: 'legacy-cfg', transport: 'mmio-legacy' }]);
    return { tb, d: new RawDriver(tb, 0) };
  };
  it('is accessed bytewise: any width, any alignment inside the config', () => {
    const { tb, d } = cfg();
    expect(d.read(REG.Config + 1, 1)).toBe(0xa1);
    expect(d.read(REG.Config + 1, 2)).toBe(0xa2a1);
    expect(d.read(REG.Config, 4)).toBe(0xa3a2a1a0);
    d.write(REG.Config + 1, 0x5544, 2);
    expect(LegacyConfigDevice.written.slice(1, 3)).toEqual([0x44, 0x55]);
    expect(slotStats(tb).guestErrors).toBe(0);
  });
  it('past the config size reads 0', () => {
    const { tb, d } = cfg();
    expect(d.read(REG.Config + 2, 4)).toBe(0);
    expect(slotStats(tb).guestErrors).toBe(1);
  });
});
