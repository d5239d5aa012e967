// BI-21, BI-22, BI-23 (VIRTIO-NOTES §6): register accesses a driver must not
// make. Control registers take aligned 32-bit accesses in their direction
// (MMIO-R1/R2): anything else reads 0 or is ignored and counted, and never
// changes device state; config space is bounds-checked and a torn read is
// detectable through ConfigGeneration; InterruptStatus bits stay set until
// acknowledged, and undefined ACK bits are ignored.
import { describe, expect } from 'vitest';
import { BusError, PLATFORM, read64, write64, type AccessWidth } from '../../core/bus.js';
import { MAGIC_VALUE, MMIO_WINDOW_SIZE, REG, VIRTIO_MMIO_INT_CONFIG as INT_CONFIG, VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VIRTIO_RING_F_EVENT_IDX, bit } from '../../core/uapi/features.js';
import { VIRTIO_CONFIG_S_DRIVER_OK as DRIVER_OK } from '../../core/uapi/status.js';
import { W } from '../../tools/testkit/queue-builder.js';
import { splitFeatures } from '../helpers/raw-driver.js';
import { bringUp, expectRecovered, onBoard, onBoth, request, type Rig } from './harness.js';
import { PROBE_DEVICE_ID, PROBE_TYPE } from './probe-device.js';

const PROBE = { dut: { type: PROBE_TYPE, transport: 'mmio' as const } };
const LEGACY = { dut: { type: 'rng' as const, transport: 'mmio-legacy' as const } };

/** The registers a driver reads back, to show a bad access changed nothing. */
function visibleState(rig: Rig): number[] {
  const d = rig.dut;
  d.write(REG.QueueSel, 0);
  d.write(REG.DeviceFeaturesSel, 0);
  return [REG.MagicValue, REG.Version, REG.DeviceID, REG.VendorID, REG.DeviceFeatures, REG.QueueNumMax, REG.QueueReady, REG.InterruptStatus, REG.Status, REG.ConfigGeneration].map((r) =>
    d.read(r),
  );
}

describe('BI-21 control-register access misuse', () => {
  onBoth('BI-21 8- and 16-bit and unaligned accesses to control registers: read 0, writes ignored', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const state = visibleState(rig);
    const errors = rig.stats().guestErrors;
    for (const w of [1, 2] as AccessWidth[]) {
      expect(rig.dut.read(REG.MagicValue, w)).toBe(0);
      expect(rig.dut.read(REG.Status, w)).toBe(0);
      rig.dut.write(REG.Status, 0, w); // a narrow write of 0 must not reset the device
      rig.dut.write(REG.QueueReady, 0, w);
      rig.dut.write(REG.QueueNotify, 0, w);
      rig.dut.write(REG.InterruptACK, 0xff, w);
    }
    expect(rig.dut.read(REG.Status + 2)).toBe(0);
    rig.dut.write(REG.Status + 1, 0);
    expect(rig.stats().guestErrors - errors).toBe(14);
    expect(visibleState(rig)).toEqual(state);
    expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoth('BI-21 64-bit accesses are two 32-bit ones, low word first (read64/write64); the bus carries none wider', async (rig) => {
    const state = visibleState(rig);
    if (rig.kind === 'worker') {
      // The bus refuses the width on the driver side; the worker never sees it.
      expect(() => rig.dut.read(REG.Status, 8 as AccessWidth)).toThrow(BusError);
      expect(() => rig.dut.write(REG.Status, 0, 8 as AccessWidth)).toThrow(/width 8 not carried by the bus .*read64\/write64/);
    } else {
      // The board itself answers nothing wider than 32 bits.
      expect(rig.dut.read(REG.Status, 8 as AccessWidth)).toBe(0);
      rig.dut.write(REG.Status, 0, 8 as AccessWidth);
    }
    const seen: string[] = [];
    const window = {
      read: (off: number, w: AccessWidth) => (seen.push(`r ${off.toString(16)}/${w}`), rig.dut.read(off, w)),
      write: (off: number, w: AccessWidth, v: number) => (seen.push(`w ${off.toString(16)}/${w}`), rig.dut.write(off, v, w)),
    };
    expect(read64(window, REG.MagicValue)).toBe((BigInt(rig.dut.read(REG.Version)) << 32n) | BigInt(MAGIC_VALUE));
    // A 64-bit write: the low word at the address, then the high word (here QueueDescLow, QueueDescHigh).
    write64(window, REG.QueueDescLow, 0x0000_0001_4000_1000n);
    expect(seen).toEqual(['r 0/4', 'r 4/4', 'w 80/4', 'w 84/4']);
    expect(visibleState(rig)).toEqual(state);
    await expectRecovered(rig);
  });
  onBoard('BI-21 undefined offsets: read 0, writes ignored', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const state = visibleState(rig);
    for (const off of [0x018, 0x01c, 0x02c, 0x048, 0x04c, 0x054, 0x068, 0x074, 0x0a8, 0x0c4, 0x0f0, 0x0f8]) {
      expect(rig.dut.read(off), `0x${off.toString(16)}`).toBe(0);
      rig.dut.write(off, 0xffff_ffff);
    }
    expect(visibleState(rig)).toEqual(state);
    expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoard('BI-21 reads of write-only registers read 0; writes to read-only registers are ignored', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const writeOnly = [REG.DeviceFeaturesSel, REG.DriverFeatures, REG.DriverFeaturesSel, REG.QueueSel, REG.QueueNum, REG.QueueNotify, REG.InterruptACK, REG.QueueDescLow, REG.QueueDescHigh, REG.QueueDriverLow, REG.QueueDriverHigh, REG.QueueDeviceLow, REG.QueueDeviceHigh, REG.SHMSel];
    for (const r of writeOnly) expect(rig.dut.read(r), `read of 0x${r.toString(16)}`).toBe(0);
    const state = visibleState(rig);
    for (const r of [REG.MagicValue, REG.Version, REG.DeviceID, REG.VendorID, REG.DeviceFeatures, REG.QueueNumMax, REG.InterruptStatus, REG.ConfigGeneration, REG.SHMLenLow, REG.SHMLenHigh, REG.SHMBaseLow, REG.SHMBaseHigh]) {
      rig.dut.write(r, 0x1234_5678);
    }
    expect(visibleState(rig)).toEqual(state);
    expect(rig.dut.read(REG.MagicValue)).toBe(MAGIC_VALUE);
    expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoard('BI-21 SHMSel out of range: length -1 and base all-ones, for any selector', async (rig) => {
    for (const sel of [0, 1, 5, 0xffff_ffff]) {
      rig.dut.write(REG.SHMSel, sel);
      for (const r of [REG.SHMLenLow, REG.SHMLenHigh, REG.SHMBaseLow, REG.SHMBaseHigh]) expect(rig.dut.read(r)).toBe(0xffff_ffff);
    }
    await expectRecovered(rig);
  });
  onBoard('BI-21 legacy-only registers on a Version 2 device are ignored', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    rig.dut.write(REG.GuestPageSize, 4096);
    rig.dut.write(REG.QueueAlign, 4096);
    rig.dut.write(REG.QueuePFN, 0);
    expect(rig.dut.read(REG.QueuePFN)).toBe(0);
    expect(rig.dut.read(REG.QueueReady)).toBe(1);
    expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoard(
    'BI-21 Version 2 registers on a legacy device are ignored',
    async (rig) => {
      const [q] = bringUp(rig, rig.dut, [8]);
      for (const r of [REG.QueueReady, REG.ConfigGeneration, REG.SHMLenLow, REG.QueueReset]) expect(rig.dut.read(r)).toBe(0);
      rig.dut.write(REG.QueueReady, 0);
      rig.dut.write(REG.QueueReset, 1);
      rig.dut.write(REG.QueueDescLow, 0x1000);
      expect(rig.dut.read(REG.QueuePFN)).not.toBe(0);
      expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
      await expectRecovered(rig);
    },
    LEGACY,
  );
  onBoard('BI-21 accesses crossing the end of a window, and outside every window: read 0, ignored', async (rig) => {
    const board = rig.dut.tb.board;
    const state = visibleState(rig);
    const w0 = PLATFORM.MMIO_BASE;
    expect(board.read(w0 + MMIO_WINDOW_SIZE - 2, 4)).toBe(0);
    board.write(w0 + MMIO_WINDOW_SIZE - 1, 2, 0xffff);
    expect(board.read(w0 - 4, 4)).toBe(0);
    board.write(w0 - 4, 4, 0);
    expect(board.read(w0 + 4 * MMIO_WINDOW_SIZE, 4)).toBe(0);
    board.write(w0 + 4 * MMIO_WINDOW_SIZE + REG.Status, 4, 0);
    expect(board.read(0xffff_fffc, 4)).toBe(0);
    expect(visibleState(rig)).toEqual(state);
    expect(rig.stats(1).status & DRIVER_OK).toBe(DRIVER_OK);
    await expectRecovered(rig);
  });
});

describe('BI-22 config space misuse', () => {
  const cfg = (off: number): number => REG.Config + off;
  onBoard(
    'BI-22 accesses past the config size or straddling its end read 0 and are ignored (QEMU 7.2 reads 0xff there)',
    async (rig) => {
      bringUp(rig, rig.dut, [8, 8]);
      rig.dut.write(cfg(8), 0x0403_0201);
      const errors = rig.stats().guestErrors;
      expect(rig.dut.read(cfg(16))).toBe(0);
      expect(rig.dut.read(cfg(0xfc))).toBe(0);
      expect(rig.dut.read(cfg(0xff), 1)).toBe(0);
      expect(rig.dut.read(cfg(14), 4)).toBe(0); // aligned to 2 but straddling the end
      rig.dut.write(cfg(14), 0xffff_ffff, 4);
      rig.dut.write(cfg(16), 0xffff_ffff);
      expect(rig.stats().guestErrors - errors).toBe(6);
      expect(rig.dut.read(cfg(8))).toBe(0x0403_0201);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard(
    'BI-22 a 64-bit config field written and read with write64/read64: two aligned 32-bit accesses, low word first',
    async (rig) => {
      bringUp(rig, rig.dut, [8, 8]);
      const errors = rig.stats().guestErrors;
      const window = { read: (off: number, w: AccessWidth) => rig.dut.read(off, w), write: (off: number, w: AccessWidth, v: number) => rig.dut.write(off, v, w) };
      write64(window, cfg(8), 0x1122_3344_5566_7788n);
      expect([rig.dut.read(cfg(8)), rig.dut.read(cfg(12))]).toEqual([0x5566_7788, 0x1122_3344]);
      expect(read64(window, cfg(8))).toBe(0x1122_3344_5566_7788n);
      expect(rig.stats().guestErrors - errors).toBe(0);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard(
    'BI-22 accesses not aligned to their width read 0 and are ignored',
    async (rig) => {
      bringUp(rig, rig.dut, [8, 8]);
      rig.dut.write(cfg(8), 0x0403_0201);
      expect(rig.dut.read(cfg(9), 4)).toBe(0);
      expect(rig.dut.read(cfg(9), 2)).toBe(0);
      rig.dut.write(cfg(10), 0xffff_ffff, 4);
      rig.dut.write(cfg(9), 0xffff, 2);
      expect(rig.dut.read(cfg(8))).toBe(0x0403_0201);
      expect(rig.dut.read(cfg(9), 1)).toBe(0x02);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoard(
    'BI-22 a 64-bit field read as two 32-bit halves while it changes: ConfigGeneration exposes the torn read',
    async (rig) => {
      bringUp(rig, rig.dut, [8, 8]);
      const tick = (): void => void rig.control({ op: 'inject', slot: 0, event: 'tick' });
      tick();
      const g0 = rig.dut.read(REG.ConfigGeneration);
      const lo = rig.dut.read(cfg(0));
      tick(); // the device changes the field between the two halves
      const hi = rig.dut.read(cfg(4));
      expect(rig.dut.read(REG.ConfigGeneration)).not.toBe(g0);
      expect(lo).not.toBe(hi); // torn: the halves come from different values
      // The driver's generation loop (virtio_cread_many) then reads a consistent value.
      let a: number, b: number, g: number;
      do {
        g = rig.dut.read(REG.ConfigGeneration);
        a = rig.dut.read(cfg(0));
        b = rig.dut.read(cfg(4));
      } while (rig.dut.read(REG.ConfigGeneration) !== g);
      expect(a).toBe(2);
      expect(b).toBe(2);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
  onBoth('BI-22 a device with no config space: every config access reads 0, writes are ignored', async (rig) => {
    for (const [off, w] of [[0, 4], [0, 1], [0x40, 2], [0xfc, 4]] as [number, AccessWidth][]) {
      expect(rig.dut.read(cfg(off), w)).toBe(0);
      rig.dut.write(cfg(off), 0xffff_ffff, w);
    }
    expect(rig.dut.read(REG.DeviceID)).not.toBe(PROBE_DEVICE_ID);
    await expectRecovered(rig);
  });
});

describe('BI-23 InterruptACK misuse and the read/ACK race', () => {
  const configChange = (rig: Rig): void => void rig.control({ op: 'inject', slot: 0, event: 'config-change' });
  onBoth('BI-23 ACK of undefined bits is ignored; a partial ACK leaves the other bit and the line up', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await request(rig, rig.dut, q!, 0, [W(8)]);
    configChange(rig);
    await rig.until('both interrupt bits', () => rig.dut.interruptStatus() === (INT_VRING | INT_CONFIG));
    rig.dut.ack(0xffff_fffc);
    expect(rig.dut.interruptStatus()).toBe(INT_VRING | INT_CONFIG);
    expect(rig.stats().lastGuestError).toMatch(/undefined bits/);
    rig.dut.ack(INT_VRING);
    expect(rig.dut.interruptStatus()).toBe(INT_CONFIG);
    expect(rig.lineHigh(0)).toBe(true);
    rig.dut.ack(0);
    expect(rig.dut.interruptStatus()).toBe(INT_CONFIG);
    rig.dut.ack(INT_CONFIG);
    expect(rig.dut.interruptStatus()).toBe(0);
    expect(rig.lineHigh(0)).toBe(false);
    await expectRecovered(rig);
  });
  onBoard('BI-23 never ACKed: the bits stay set and nothing is lost as more events arrive', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    for (let i = 0; i < 5; i++) await request(rig, rig.dut, q!, 0, [W(8)]);
    expect(rig.dut.interruptStatus()).toBe(INT_VRING);
    expect(rig.lineHigh(0)).toBe(true);
    expect(q!.usedIdx()).toBe(5);
    await expectRecovered(rig);
  });
  onBoard('BI-23 an event between the InterruptStatus read and the ACK: the ACK of what was read keeps the new bit', async (rig) => {
    // Without EVENT_IDX every used buffer interrupts.
    const [q] = bringUp(rig, rig.dut, [8], { features: (o) => splitFeatures(o) & ~bit(VIRTIO_RING_F_EVENT_IDX) });
    await request(rig, rig.dut, q!, 0, [W(8)]);
    const seen = rig.dut.interruptStatus();
    expect(seen).toBe(INT_VRING);
    configChange(rig); // arrives before the handler's ACK
    rig.dut.ack(seen);
    expect(rig.dut.interruptStatus()).toBe(INT_CONFIG);
    expect(rig.lineHigh(0)).toBe(true);
    await request(rig, rig.dut, q!, 0, [W(8)]);
    expect(rig.dut.interruptStatus()).toBe(INT_VRING | INT_CONFIG);
    rig.dut.ack(INT_CONFIG); // ACK one event while a used-buffer event is pending
    expect(rig.dut.interruptStatus()).toBe(INT_VRING);
    expect(rig.lineHigh(0)).toBe(true);
    await expectRecovered(rig);
  });
});
