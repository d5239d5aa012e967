// virtio-mmio Version 2 register file: one test per register and access
// width, in the style of Firecracker's mmio.rs tests.
import { describe, expect, it } from 'vitest';
import { MAGIC_VALUE, REG } from '../../core/uapi/mmio.js';
import {
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  bit,
} from '../../core/uapi/features.js';
import { VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import type { ConfigWidth, DeviceContext, DeviceModel } from '../../emulator/devices/device.js';
import { registerDeviceType } from '../../emulator/devices/catalog.js';
import { VENDOR_ID } from '../../emulator/mmio/registers.js';
import { RawDriver, boardStats, makeBoard, slotStats } from '../helpers/raw-driver.js';

const RNG_FEATURES = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_RING_F_EVENT_IDX) | bit(VIRTIO_F_RING_PACKED) | bit(VIRTIO_F_RING_RESET);

function rngBoard() {
  const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
  return { tb, d: new RawDriver(tb, 0) };
}

/** Guest errors added by running fn. */
function errorsOf(tb: ReturnType<typeof rngBoard>['tb'], fn: () => void, slot = 0): number {
  const before = slotStats(tb, slot).guestErrors;
  fn();
  return slotStats(tb, slot).guestErrors - before;
}

/** A device with an 8-byte config space: bytes 0..7 = 0x10..0x17, writable. */
class ConfigDevice implements DeviceModel {
  readonly deviceId = 0x7e;
  readonly name = 'cfgdev';
  readonly features = bit(VIRTIO_F_VERSION_1);
  readonly queueNumMax = [8];
  readonly configSize = 8;
  readonly bytes = Uint8Array.from([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
  readonly writes: [number, number, number][] = [];
  readConfig(offset: number, width: ConfigWidth): number {
    let v = 0;
    for (let i = 0; i < width; i++) v |= this.bytes[offset + i]! << (8 * i);
    return v >>> 0;
  }
  writeConfig(offset: number, width: ConfigWidth, value: number): void {
    this.writes.push([offset, width, value]);
  }
  reset(): void {}
  handleQueue(_ctx: DeviceContext, _q: number): void {}
}
registerDeviceType('cfgdev', () => new ConfigDevice());

describe('virtio-mmio v2 identification registers', () => {
  it('MagicValue reads "virt"', () => {
    const { d } = rngBoard();
    expect(d.read(REG.MagicValue)).toBe(MAGIC_VALUE);
  });
  it('Version reads 2', () => {
    expect(rngBoard().d.read(REG.Version)).toBe(2);
  });
  it('DeviceID reads the model ID', () => {
    expect(rngBoard().d.read(REG.DeviceID)).toBe(VIRTIO_ID_RNG);
  });
  it('VendorID reads our own ID ("VEMU"), not QEMU\'s', () => {
    const v = rngBoard().d.read(REG.VendorID);
    expect(v).toBe(VENDOR_ID);
    expect(v).not.toBe(0x554d4551);
    expect(Buffer.from(Uint32Array.of(v).buffer).toString('latin1')).toBe('VEMU');
  });
  it('identification registers are read-only: writes are ignored and counted', () => {
    const { tb, d } = rngBoard();
    for (const r of [REG.MagicValue, REG.Version, REG.DeviceID, REG.VendorID]) {
      expect(errorsOf(tb, () => d.write(r, 0x1234))).toBe(1);
    }
    expect(d.read(REG.MagicValue)).toBe(MAGIC_VALUE);
    expect(d.read(REG.DeviceID)).toBe(VIRTIO_ID_RNG);
  });
});

describe('virtio-mmio v2 feature registers', () => {
  it('DeviceFeatures shows the window chosen by DeviceFeaturesSel', () => {
    const { d } = rngBoard();
    d.write(REG.DeviceFeaturesSel, 0);
    expect(d.read(REG.DeviceFeatures)).toBe(Number(RNG_FEATURES & 0xffffffffn));
    d.write(REG.DeviceFeaturesSel, 1);
    expect(d.read(REG.DeviceFeatures)).toBe(Number(RNG_FEATURES >> 32n));
  });
  it('DeviceFeaturesSel ≥ 2 reads 0 (not the high word again)', () => {
    const { tb, d } = rngBoard();
    for (const sel of [2, 3, 0xffffffff]) {
      d.write(REG.DeviceFeaturesSel, sel);
      expect(errorsOf(tb, () => expect(d.read(REG.DeviceFeatures)).toBe(0))).toBe(0);
    }
  });
  it('DeviceFeaturesSel, DriverFeatures and DriverFeaturesSel are write-only: reads give 0 and count', () => {
    const { tb, d } = rngBoard();
    d.write(REG.DeviceFeaturesSel, 1);
    for (const r of [REG.DeviceFeaturesSel, REG.DriverFeatures, REG.DriverFeaturesSel]) {
      expect(errorsOf(tb, () => expect(d.read(r)).toBe(0))).toBe(1);
    }
  });
  it('DeviceFeatures is read-only', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => d.write(REG.DeviceFeatures, 0xffffffff))).toBe(1);
    d.write(REG.DeviceFeaturesSel, 0);
    expect(d.read(REG.DeviceFeatures)).toBe(Number(RNG_FEATURES & 0xffffffffn));
  });
  it('DriverFeatures writes land in the DriverFeaturesSel window and are negotiated at FEATURES_OK', () => {
    const { tb, d } = rngBoard();
    const want = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX);
    d.negotiate({ features: () => want });
    expect(d.status() & 8).toBe(8);
    expect(slotStats(tb).guestErrors).toBe(0);
  });
  it('DriverFeaturesSel ≥ 2: a zero write is harmless, a non-zero write accepts unoffered features', () => {
    const { tb, d } = rngBoard();
    d.reset();
    d.addStatus(1);
    d.addStatus(2);
    d.writeDriverFeatures(bit(VIRTIO_F_VERSION_1));
    d.write(REG.DriverFeaturesSel, 2);
    expect(errorsOf(tb, () => d.write(REG.DriverFeatures, 0))).toBe(0);
    expect(errorsOf(tb, () => d.write(REG.DriverFeatures, 1))).toBe(1);
    d.addStatus(8);
    expect(d.status() & 8).toBe(0);
  });
});

describe('virtio-mmio v2 queue registers', () => {
  it('QueueSel is write-only', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => expect(d.read(REG.QueueSel)).toBe(0))).toBe(1);
  });
  it('QueueNumMax reads the model maximum, and 0 for a queue that does not exist', () => {
    const { tb, d } = rngBoard();
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueNumMax)).toBe(1024);
    d.write(REG.QueueSel, 1);
    expect(errorsOf(tb, () => expect(d.read(REG.QueueNumMax)).toBe(0))).toBe(0);
    d.write(REG.QueueSel, 0xffffffff);
    expect(d.read(REG.QueueNumMax)).toBe(0);
  });
  it('QueueNumMax is read-only', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => d.write(REG.QueueNumMax, 4))).toBe(1);
    expect(d.read(REG.QueueNumMax)).toBe(1024);
  });
  it('QueueNum and the Desc/Driver/Device address registers are write-only', () => {
    const { tb, d } = rngBoard();
    for (const r of [
      REG.QueueNum,
      REG.QueueDescLow,
      REG.QueueDescHigh,
      REG.QueueDriverLow,
      REG.QueueDriverHigh,
      REG.QueueDeviceLow,
      REG.QueueDeviceHigh,
    ]) {
      expect(errorsOf(tb, () => expect(d.read(r)).toBe(0))).toBe(1);
    }
  });
  it('QueueReady reads back 0 until a valid queue is enabled, then 1', () => {
    const { d } = rngBoard();
    d.negotiate();
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueReady)).toBe(0);
    d.setupQueue(0, 16);
    expect(d.read(REG.QueueReady)).toBe(1);
    d.write(REG.QueueReady, 0);
    expect(d.read(REG.QueueReady)).toBe(0);
  });
  it('QueueReady on a non-existent queue reads 0 and a write of 1 is refused (QEMU reads back 1)', () => {
    const { tb, d } = rngBoard();
    d.negotiate();
    d.write(REG.QueueSel, 5);
    expect(errorsOf(tb, () => d.write(REG.QueueReady, 1))).toBe(1);
    expect(d.read(REG.QueueReady)).toBe(0);
  });
  it('QueueReady values other than 0 and 1 are ignored', () => {
    const { tb, d } = rngBoard();
    d.negotiate();
    d.setupQueue(0, 16);
    expect(errorsOf(tb, () => d.write(REG.QueueReady, 0xff))).toBe(1);
    expect(d.read(REG.QueueReady)).toBe(1);
  });
  it('QueueNotify is write-only', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => expect(d.read(REG.QueueNotify)).toBe(0))).toBe(1);
  });
  it('QueueNotify of a non-existent queue is ignored and counted', () => {
    const { tb, d } = rngBoard();
    d.bringUp([16]);
    tb.board.runDeferred(100); // the DRIVER_OK scan
    expect(errorsOf(tb, () => d.notify(7))).toBe(1);
    expect(tb.board.hasDeferred()).toBe(false);
    expect(slotStats(tb).ignoredNotifications).toBe(1);
  });
});

describe('virtio-mmio v2 interrupt and status registers', () => {
  it('InterruptStatus reads 0 at start and is read-only', () => {
    const { tb, d } = rngBoard();
    expect(d.interruptStatus()).toBe(0);
    expect(errorsOf(tb, () => d.write(REG.InterruptStatus, 3))).toBe(1);
    expect(d.interruptStatus()).toBe(0);
  });
  it('InterruptACK is write-only', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => expect(d.read(REG.InterruptACK)).toBe(0))).toBe(1);
  });
  it('Status reads back what was accepted', () => {
    const { d } = rngBoard();
    expect(d.status()).toBe(0);
    d.write(REG.Status, 1);
    expect(d.status()).toBe(1);
    d.write(REG.Status, 3);
    expect(d.status()).toBe(3);
  });
});

describe('virtio-mmio v2 shared memory, QueueReset, ConfigGeneration', () => {
  it('SHMSel is write-only; without regions SHMLen and SHMBase read all-ones for any selector', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => expect(d.read(REG.SHMSel)).toBe(0))).toBe(1);
    for (const sel of [0, 1, 0xff]) {
      d.write(REG.SHMSel, sel);
      for (const r of [REG.SHMLenLow, REG.SHMLenHigh, REG.SHMBaseLow, REG.SHMBaseHigh]) {
        expect(d.read(r)).toBe(0xffffffff);
      }
    }
  });
  it('SHMLen/SHMBase are read-only', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => d.write(REG.SHMLenLow, 0))).toBe(1);
    expect(errorsOf(tb, () => d.write(REG.SHMBaseHigh, 0))).toBe(1);
  });
  it('QueueReset reads 0; writing it without RING_RESET negotiated is ignored and counted', () => {
    const { tb, d } = rngBoard();
    d.bringUp([16], { features: () => bit(VIRTIO_F_VERSION_1) });
    expect(d.read(REG.QueueReset)).toBe(0);
    expect(errorsOf(tb, () => d.write(REG.QueueReset, 1))).toBe(1);
    expect(d.read(REG.QueueReady)).toBe(1);
  });
  it('ConfigGeneration starts at 0, is read-only and changes on a config change', () => {
    const { tb, d } = rngBoard();
    expect(d.read(REG.ConfigGeneration)).toBe(0);
    expect(errorsOf(tb, () => d.write(REG.ConfigGeneration, 5))).toBe(1);
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'config-change' }).ok).toBe(true);
    expect(d.read(REG.ConfigGeneration)).toBe(1);
  });
});

describe('virtio-mmio v2 access rules', () => {
  it('legacy-only registers do not exist in Version 2', () => {
    const { tb, d } = rngBoard();
    for (const r of [REG.GuestPageSize, REG.QueueAlign, REG.QueuePFN]) {
      expect(errorsOf(tb, () => expect(d.read(r)).toBe(0))).toBe(1);
      expect(errorsOf(tb, () => d.write(r, 4096))).toBe(1);
    }
  });
  it('undefined offsets read 0, ignore writes, and count', () => {
    const { tb, d } = rngBoard();
    for (const off of [0x018, 0x01c, 0x02c, 0x048, 0x054, 0x068, 0x074, 0x0a8, 0x0c4, 0x0f8]) {
      expect(errorsOf(tb, () => expect(d.read(off)).toBe(0))).toBe(1);
      expect(errorsOf(tb, () => d.write(off, 1))).toBe(1);
    }
  });
  it.each([1, 2] as const)('%i-byte accesses to control registers read 0 / are ignored', (w) => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => expect(d.read(REG.MagicValue, w)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => expect(d.read(REG.Version, w)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => d.write(REG.Status, 1, w))).toBe(1);
    expect(d.status()).toBe(0);
  });
  it('unaligned 32-bit control accesses read 0 / are ignored', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => expect(d.read(0x002)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => d.write(REG.Status + 1, 1))).toBe(1);
    expect(d.status()).toBe(0);
  });
  it('counters are per slot', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }, { type: 'rng', transport: 'mmio' }]);
    new RawDriver(tb, 1).read(REG.QueueSel);
    expect(slotStats(tb, 0).guestErrors).toBe(0);
    expect(slotStats(tb, 1).guestErrors).toBe(1);
    expect(slotStats(tb, 1).lastGuestError).toMatch(/QueueSel/);
  });
});

describe('virtio-mmio v2 config space', () => {
  const cfg = () => {
    const tb = makeBoard([{ type: 'cfgdev', transport: 'mmio' }]);
    return { tb, d: new RawDriver(tb, 0) };
  };
  it('8-bit reads at any offset', () => {
    const { d } = cfg();
    for (let i = 0; i < 8; i++) expect(d.read(REG.Config + i, 1)).toBe(0x10 + i);
  });
  it('aligned 16-bit reads', () => {
    const { d } = cfg();
    expect(d.read(REG.Config + 2, 2)).toBe(0x1312);
    expect(d.read(REG.Config + 6, 2)).toBe(0x1716);
  });
  it('aligned 32-bit reads', () => {
    const { d } = cfg();
    expect(d.read(REG.Config, 4)).toBe(0x13121110);
    expect(d.read(REG.Config + 4, 4)).toBe(0x17161514);
  });
  it('unaligned 16/32-bit accesses read 0 / are ignored', () => {
    const { tb, d } = cfg();
    expect(errorsOf(tb, () => expect(d.read(REG.Config + 1, 2)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => expect(d.read(REG.Config + 2, 4)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => d.write(REG.Config + 3, 0xffff, 2))).toBe(1);
  });
  it('past the config size reads 0 (QEMU reads 0xff) and writes are ignored', () => {
    const { tb, d } = cfg();
    expect(errorsOf(tb, () => expect(d.read(REG.Config + 8, 1)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => expect(d.read(REG.Config + 8, 4)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => expect(d.read(REG.Config + 0xfc, 4)).toBe(0))).toBe(1);
    expect(errorsOf(tb, () => d.write(REG.Config + 8, 1, 1))).toBe(1);
  });
  it('writes reach the model with their width, masked to it', () => {
    const tb = makeBoard([{ type: 'cfgdev', transport: 'mmio' }]);
    const d = new RawDriver(tb, 0);
    d.write(REG.Config + 1, 0x1ab, 1);
    d.write(REG.Config + 2, 0xabcd, 2);
    d.write(REG.Config + 4, 0xdeadbeef, 4);
    expect(slotStats(tb).guestErrors).toBe(0);
  });
  it('a device without config space reads 0 everywhere in the config window', () => {
    const { tb, d } = rngBoard();
    expect(errorsOf(tb, () => expect(d.read(REG.Config, 4)).toBe(0))).toBe(1);
  });
});

describe('empty slots and the address decoder', () => {
  it('an empty slot reads MagicValue, Version 2, VendorID and DeviceID 0', () => {
    const tb = makeBoard([null], { slots: 2 });
    for (const slot of [0, 1]) {
      const d = new RawDriver(tb, slot);
      expect(d.read(REG.MagicValue)).toBe(MAGIC_VALUE);
      expect(d.read(REG.Version)).toBe(2);
      expect(d.read(REG.VendorID)).toBe(VENDOR_ID);
      expect(d.read(REG.DeviceID)).toBe(0);
      expect(slotStats(tb, slot).guestErrors).toBe(0);
    }
  });
  it('every other access to an empty slot reads 0 / is ignored and counts', () => {
    const tb = makeBoard([null]);
    const d = new RawDriver(tb, 0);
    expect(d.read(REG.Status)).toBe(0);
    expect(d.read(REG.QueueNumMax)).toBe(0);
    d.write(REG.Status, 1);
    expect(d.read(REG.Status)).toBe(0);
    expect(slotStats(tb, 0).guestErrors).toBe(4);
  });
  it('slot i is at MMIO_BASE + 0x200*i and drives line i', () => {
    const tb = makeBoard([null, { type: 'rng', transport: 'mmio' }, null, { type: 'rng', transport: 'mmio' }]);
    expect(new RawDriver(tb, 1).read(REG.DeviceID)).toBe(VIRTIO_ID_RNG);
    expect(new RawDriver(tb, 2).read(REG.DeviceID)).toBe(0);
    expect(new RawDriver(tb, 3).read(REG.DeviceID)).toBe(VIRTIO_ID_RNG);
    const d3 = new RawDriver(tb, 3);
    d3.bringUp([8]);
    tb.board.control({ op: 'inject', slot: 3, event: 'config-change' });
    expect(tb.irq.isHigh(3)).toBe(true);
    expect(tb.irq.isHigh(1)).toBe(false);
  });
  it('addresses outside every window read 0 and are counted as unmapped', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }], { slots: 1 });
    const before = boardStats(tb).unmapped;
    expect(tb.board.read(0x0a00_0000 + 0x200, 4)).toBe(0);
    tb.board.write(0x1000, 4, 1);
    expect(tb.board.read(0x0a00_0000 - 4, 4)).toBe(0);
    expect(boardStats(tb).unmapped - before).toBe(3);
  });
  it('an access crossing the end of a window is refused', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }, null]);
    expect(tb.board.read(0x0a00_0000 + 0x1fe, 4)).toBe(0);
    expect(slotStats(tb, 0).guestErrors).toBe(1);
  });
  it('impossible widths are refused without throwing', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
    expect(tb.board.read(0x0a00_0000, 8 as 4)).toBe(0);
    expect(() => tb.board.write(0x0a00_0000 + REG.Status, 3 as 4, 1)).not.toThrow();
    expect(boardStats(tb).unmapped).toBe(2);
  });
});
