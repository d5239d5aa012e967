// The channel subsystem, device side, driven with raw channel programs on an
// in-thread board: the subchannel window (SSCH/TSCH condition codes, status,
// interrupt line), every virtio-ccw command, revisions, indicators, and bad
// channel programs, each of which must end in a unit check with the device
// still usable afterwards.
import { describe, expect, it } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import {
  CCW_CMD_READ_CONF,
  CCW_CMD_READ_FEAT,
  CCW_CMD_READ_STATUS,
  CCW_CMD_READ_VQ_CONF,
  CCW_CMD_SET_CONF_IND,
  CCW_CMD_SET_IND,
  CCW_CMD_SET_IND_ADAPTER,
  CCW_CMD_SET_VIRTIO_REV,
  CCW_CMD_SET_VQ,
  CCW_CMD_VDEV_RESET,
  CCW_CMD_WRITE_CONF,
  CCW_CMD_WRITE_FEAT,
  CCW_CMD_WRITE_STATUS,
  CCW_FLAG_CC,
  CCW_FLAG_IDA,
  CCW_FLAG_SLI,
  CSS_REG,
  CSS_STATUS_ACTIVE,
  CSS_STATUS_ALERT,
  CSS_STATUS_PENDING,
  DEV_STAT_CHN_END,
  DEV_STAT_DEV_END,
  DEV_STAT_UNIT_CHECK,
  SCHN_STAT_CHN_DATA_CHK,
  SCHN_STAT_INCORR_LEN,
  SCHN_STAT_PROG_CHECK,
  SCSW_STCTL_ALERT_STATUS,
  SCSW_STCTL_STATUS_PEND,
  SNS0_CMD_REJECT,
  VIRTIO_CCW_CU_TYPE,
  VQ_INFO_BLOCK,
  VQ_INFO_BLOCK_LEGACY,
} from '../../core/uapi/ccw.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1 } from '../../core/uapi/features.js';
import { VIRTIO_ID_CONSOLE, VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { REG } from '../../core/uapi/mmio.js';
import { VRING_DESC_F_WRITE, alignUp, availRingSize, descTableSize, usedRingSize } from '../../core/uapi/ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
} from '../../core/uapi/status.js';
import { MAX_CCW_CHAIN } from '../../emulator/ccw/channel-program.js';
import type { DeviceSpec } from '../../emulator/board-contract.js';
import { RawSubchannel, type RawCcw } from '../helpers/ccw-raw.js';
import { RAM_BASE, RawDriver, RawRing, makeBoard, ramBytes, slotStats, type TestBoard } from '../helpers/raw-driver.js';

const OK_DSTAT = DEV_STAT_CHN_END | DEV_STAT_DEV_END;
const UC_DSTAT = OK_DSTAT | DEV_STAT_UNIT_CHECK;
/** Guest RAM outside the 4 MiB of these boards. */
const OUTSIDE_RAM = RAM_BASE + (64 << 20);

function board(devices: (DeviceSpec | null)[], slots = 4): TestBoard {
  return makeBoard(devices, { slots, ramSize: 4 << 20 });
}

function ccwBoard(options: DeviceSpec['options'] = {}, type = 'rng'): { tb: TestBoard; sc: RawSubchannel } {
  const tb = board([{ type, transport: 'ccw', options }]);
  return { tb, sc: new RawSubchannel(tb, 0) };
}

/** A zeroed payload area in guest RAM. */
function area(tb: TestBoard, len: number): number {
  const at = tb.alloc.take(Math.max(len, 8), 16);
  ramBytes(tb, at, Math.max(len, 8)).fill(0);
  return at;
}

function u8(tb: TestBoard, addr: number): number {
  return tb.view.getUint8(addr - RAM_BASE);
}
function u16(tb: TestBoard, addr: number): number {
  return tb.view.getUint16(addr - RAM_BASE, true);
}
function u32(tb: TestBoard, addr: number): number {
  return tb.view.getUint32(addr - RAM_BASE, true);
}
function setU8(tb: TestBoard, addr: number, v: number): void {
  tb.view.setUint8(addr - RAM_BASE, v);
}
function setU16(tb: TestBoard, addr: number, v: number): void {
  tb.view.setUint16(addr - RAM_BASE, v, true);
}
function setU32(tb: TestBoard, addr: number, v: number): void {
  tb.view.setUint32(addr - RAM_BASE, v >>> 0, true);
}
function setU64(tb: TestBoard, addr: number, v: number): void {
  setU32(tb, addr, v % 0x1_0000_0000);
  setU32(tb, addr + 4, Math.floor(v / 0x1_0000_0000));
}

/** One command, run to its end; expects it to succeed. */
function ok(sc: RawSubchannel, c: RawCcw): void {
  const r = sc.run([c]);
  expect(r.ssch).toBe(0);
  expect(r.tsch).toBe(0);
  expect(r.irb.dstat, `command 0x${c.cmd.toString(16)}`).toBe(OK_DSTAT);
  expect(r.irb.cstat).toBe(0);
}

/** Expect a unit check with command-reject sense (and cstat). */
function rejected(sc: RawSubchannel, c: RawCcw | RawCcw[], cstat = 0): void {
  const r = sc.run(Array.isArray(c) ? c : [c]);
  expect(r.ssch).toBe(0);
  expect(r.tsch).toBe(0);
  expect(r.irb.dstat).toBe(UC_DSTAT);
  expect(r.irb.sense0).toBe(SNS0_CMD_REJECT);
  expect(r.irb.cstat).toBe(cstat);
  expect(r.irb.stctl & SCSW_STCTL_ALERT_STATUS).toBe(SCSW_STCTL_ALERT_STATUS);
}

function setRev(sc: RawSubchannel, rev: number): ReturnType<RawSubchannel['run']> {
  const p = area(sc.tb, 4);
  setU16(sc.tb, p, rev);
  return sc.run([{ cmd: CCW_CMD_SET_VIRTIO_REV, count: 4, cda: p }]);
}

function readFeat(sc: RawSubchannel, index: number): number {
  const p = area(sc.tb, 5);
  setU8(sc.tb, p + 4, index);
  ok(sc, { cmd: CCW_CMD_READ_FEAT, count: 5, cda: p });
  return u32(sc.tb, p);
}

function writeFeat(sc: RawSubchannel, index: number, value: number): void {
  const p = area(sc.tb, 5);
  setU32(sc.tb, p, value);
  setU8(sc.tb, p + 4, index);
  ok(sc, { cmd: CCW_CMD_WRITE_FEAT, count: 5, cda: p });
}

function writeStatus(sc: RawSubchannel, status: number): ReturnType<RawSubchannel['run']> {
  const p = area(sc.tb, 1);
  setU8(sc.tb, p, status);
  return sc.run([{ cmd: CCW_CMD_WRITE_STATUS, count: 1, cda: p }]);
}

function readStatus(sc: RawSubchannel): number {
  const p = area(sc.tb, 1);
  ok(sc, { cmd: CCW_CMD_READ_STATUS, count: 1, cda: p });
  return u8(sc.tb, p);
}

function setInd(sc: RawSubchannel, cmd: number, indicator: number): void {
  const p = area(sc.tb, 8);
  setU64(sc.tb, p, indicator);
  ok(sc, { cmd, count: 8, cda: p });
}

/** SET_VQ for queue q with a fresh ring of num entries (current or legacy block). */
function setVq(sc: RawSubchannel, q: number, num: number, legacy = false): RawRing {
  const tb = sc.tb;
  const p = area(tb, VQ_INFO_BLOCK.SIZE);
  if (legacy) {
    const usedOff = alignUp(descTableSize(num) + availRingSize(num), 4096);
    const base = tb.alloc.take(usedOff + usedRingSize(num), 4096);
    ramBytes(tb, base, usedOff + usedRingSize(num)).fill(0);
    setU64(tb, p + VQ_INFO_BLOCK_LEGACY.queue, base);
    setU32(tb, p + VQ_INFO_BLOCK_LEGACY.align, 4096);
    setU16(tb, p + VQ_INFO_BLOCK_LEGACY.index, q);
    setU16(tb, p + VQ_INFO_BLOCK_LEGACY.num, num);
    ok(sc, { cmd: CCW_CMD_SET_VQ, count: VQ_INFO_BLOCK_LEGACY.SIZE, cda: p });
    return new RawRing(tb, num, base, base + descTableSize(num), base + usedOff);
  }
  const desc = area(tb, descTableSize(num));
  const avail = area(tb, availRingSize(num));
  const used = area(tb, usedRingSize(num));
  setU64(tb, p + VQ_INFO_BLOCK.desc, desc);
  setU16(tb, p + VQ_INFO_BLOCK.index, q);
  setU16(tb, p + VQ_INFO_BLOCK.num, num);
  setU64(tb, p + VQ_INFO_BLOCK.avail, avail);
  setU64(tb, p + VQ_INFO_BLOCK.used, used);
  ok(sc, { cmd: CCW_CMD_SET_VQ, count: VQ_INFO_BLOCK.SIZE, cda: p });
  return new RawRing(tb, num, desc, avail, used);
}

/** The whole Linux sequence at revision rev (null: no SET_VIRTIO_REV at all); returns queue 0's ring and the indicators. */
function bringUp(sc: RawSubchannel, revision: number | null = 2): { ring: RawRing; ind: number; ind2: number } {
  const rev = revision ?? 0;
  if (revision !== null) expect(setRev(sc, revision).irb.dstat).toBe(OK_DSTAT);
  ok(sc, { cmd: CCW_CMD_VDEV_RESET, count: 0, cda: 0 });
  expect(writeStatus(sc, VIRTIO_CONFIG_S_ACKNOWLEDGE).irb.dstat).toBe(OK_DSTAT);
  expect(writeStatus(sc, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER).irb.dstat).toBe(OK_DSTAT);
  const lo = readFeat(sc, 0);
  const hi = rev >= 1 ? readFeat(sc, 1) : 0;
  writeFeat(sc, 0, lo);
  if (rev >= 1) {
    // This driver lays out split rings: it does not accept VIRTIO_F_RING_PACKED.
    writeFeat(sc, 1, hi & ~(1 << (VIRTIO_F_RING_PACKED - 32)));
    expect(writeStatus(sc, 0x0b).irb.dstat).toBe(OK_DSTAT);
  }
  const ring = setVq(sc, 0, 16, rev === 0);
  const ind = area(sc.tb, 8);
  const ind2 = area(sc.tb, 8);
  setInd(sc, CCW_CMD_SET_IND, ind);
  setInd(sc, CCW_CMD_SET_CONF_IND, ind2);
  const st = rev >= 1 ? 0x0f : VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK;
  expect(writeStatus(sc, st).irb.dstat).toBe(OK_DSTAT);
  return { ring, ind, ind2 };
}

/** One 64-byte device-writable buffer on the ring, then the notify hypercall. */
function request(sc: RawSubchannel, ring: RawRing, head = 0): number {
  const buf = area(sc.tb, 64);
  ring.writeDesc(head, buf, 64, VRING_DESC_F_WRITE);
  ring.addAvail(head);
  sc.write(CSS_REG.Notify, 0);
  sc.tb.board.runDeferred(64);
  return buf;
}

describe('subchannel window', () => {
  it('identifies a virtio-ccw device by SENSE ID data; other subchannels have no device (cc 3)', () => {
    const tb = board([null, { type: 'rng', transport: 'ccw' }]);
    const empty = new RawSubchannel(tb, 0);
    const dev = new RawSubchannel(tb, 1);
    expect(empty.read(CSS_REG.CuType)).toBe(0);
    expect(empty.read(CSS_REG.SchId)).toBe(0);
    expect(empty.status()).toBe(3);
    expect(empty.ssch()).toBe(3);
    expect(empty.tsch().cc).toBe(3);
    expect(dev.read(CSS_REG.CuType)).toBe(VIRTIO_CCW_CU_TYPE);
    expect(dev.read(CSS_REG.CuModel)).toBe(VIRTIO_ID_RNG);
    expect(dev.read(CSS_REG.SchId)).toBe(1);
    expect(dev.status()).toBe(0);
    // The channel subsystem answers on a board without ccw devices too.
    const mmioOnly = board([{ type: 'rng', transport: 'mmio' }]);
    expect(new RawSubchannel(mmioOnly, 0).read(CSS_REG.CuType)).toBe(0);
    expect((mmioOnly.board.control({ op: 'stats' }) as { value: { unmapped: number } }).value.unmapped).toBe(0);
  });

  it('only aligned 32-bit accesses exist; others read 0 and count a guest error', () => {
    const { tb, sc } = ccwBoard();
    expect(tb.board.read(sc.base + CSS_REG.CuType, 2)).toBe(0);
    expect(tb.board.read(sc.base + 2, 4)).toBe(0);
    tb.board.write(sc.base + CSS_REG.Ssch, 1, 0);
    expect(sc.read(0x34)).toBe(0);
    expect(slotStats(tb).guestErrors).toBe(4);
    expect(sc.status()).toBe(0); // nothing started
  });

  it('sits beside virtio-mmio: each transport sees the other one\'s slot as empty', () => {
    const tb = board([{ type: 'rng', transport: 'mmio' }, { type: 'console', transport: 'ccw' }]);
    expect(new RawDriver(tb, 0).read(REG.DeviceID)).toBe(VIRTIO_ID_RNG);
    expect(new RawDriver(tb, 1).read(REG.DeviceID)).toBe(0);
    expect(new RawSubchannel(tb, 0).read(CSS_REG.CuType)).toBe(0);
    expect(new RawSubchannel(tb, 1).read(CSS_REG.CuModel)).toBe(VIRTIO_ID_CONSOLE);
    expect(PLATFORM.CSS_BASE + PLATFORM.CSS_WINDOW_SIZE).toBe(new RawSubchannel(tb, 1).base);
  });

  it('SSCH is asynchronous: busy (cc 2) until the program ran, status pending (cc 1) until TSCH', () => {
    const { tb, sc } = ccwBoard();
    const p = area(tb, 4);
    sc.prepare([{ cmd: CCW_CMD_READ_VQ_CONF, count: 4, cda: p }], 0xabcd_0000);
    expect(sc.ssch()).toBe(0);
    expect(sc.status() & CSS_STATUS_ACTIVE).toBe(CSS_STATUS_ACTIVE);
    expect(tb.irq.isHigh(0)).toBe(false);
    expect(sc.ssch()).toBe(2);
    tb.board.runDeferred(8);
    expect(sc.status()).toBe(CSS_STATUS_PENDING | 2);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(sc.read(CSS_REG.Intparm)).toBe(0xabcd_0000);
    expect(sc.ssch()).toBe(1);
    const { cc, irb } = sc.tsch();
    expect(cc).toBe(0);
    expect(irb).toMatchObject({ intparm: 0xabcd_0000, dstat: OK_DSTAT, cstat: 0, count: 0, sense0: 0, cpa: sc.ccws + 8 });
    expect(tb.irq.isHigh(0)).toBe(false);
    expect(u16(tb, p + 2)).toBe(1024); // rng's QueueNumMax
    // No status left: TSCH stores an IRB without status, cc 1.
    expect(sc.tsch().cc).toBe(1);
    expect(sc.readIrb().dstat).toBe(0);
    expect(slotStats(tb).guestErrors).toBe(0);
  });

  it('runs a command chain to its last CCW; the SCSW points past it with its residual count', () => {
    const { tb, sc } = ccwBoard();
    const a = area(tb, 4);
    const b = area(tb, 8);
    setU16(tb, b, 1); // queue 1 does not exist
    const r = sc.run([
      { cmd: CCW_CMD_READ_VQ_CONF, flags: CCW_FLAG_CC, count: 4, cda: a },
      { cmd: CCW_CMD_READ_VQ_CONF, flags: CCW_FLAG_SLI, count: 8, cda: b },
    ]);
    expect(r.irb).toMatchObject({ dstat: OK_DSTAT, cpa: sc.ccws + 16, count: 4 });
    expect(u16(tb, a + 2)).toBe(1024);
    expect(u16(tb, b + 2)).toBe(0);
  });

  it('TSCH with the IRB outside RAM stores nothing (cc 3) and leaves the status pending', () => {
    const { tb, sc } = ccwBoard();
    sc.prepare([{ cmd: CCW_CMD_VDEV_RESET, count: 0, cda: 0 }]);
    sc.ssch();
    tb.board.runDeferred(8);
    expect(sc.tsch(OUTSIDE_RAM).cc).toBe(3);
    expect(sc.tsch(sc.irb + 2).cc).toBe(3);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(sc.tsch().cc).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
  });
});

describe('virtio-ccw commands', () => {
  it('bring-up at revision 2, I/O, and the used-buffer indicator with an unsolicited interrupt', () => {
    const { tb, sc } = ccwBoard();
    expect(readFeat(sc, 1)).toBe(0); // no revision yet: legacy rules, no bits beyond 31
    const { ring, ind } = bringUp(sc, 2);
    expect(readStatus(sc)).toBe(0x0f);
    const buf = request(sc, ring);
    expect(ring.usedIdx()).toBe(1);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 64 });
    expect(ramBytes(tb, buf, 64).some((x) => x !== 0)).toBe(true);
    // Queue 0's bit in the indicators, and alert status without intparm.
    expect(u32(tb, ind)).toBe(1);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(sc.status() & (CSS_STATUS_PENDING | CSS_STATUS_ALERT)).toBe(CSS_STATUS_PENDING | CSS_STATUS_ALERT);
    expect(sc.read(CSS_REG.Intparm)).toBe(0);
    const { cc, irb } = sc.tsch();
    expect(cc).toBe(0);
    expect(irb).toMatchObject({ intparm: 0, dstat: 0, cstat: 0, fctl: 0, stctl: SCSW_STCTL_ALERT_STATUS | SCSW_STCTL_STATUS_PEND });
    expect(tb.irq.isHigh(0)).toBe(false);
    // Another used buffer on an idle subchannel interrupts again (EVENT_IDX asks for it).
    ring.setUsedEvent(1);
    request(sc, ring, 1);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(slotStats(tb).guestErrors).toBe(0);
  });

  it('offers VERSION_1 in word 1 at revision ≥ 1 only', () => {
    const { sc } = ccwBoard();
    expect(setRev(sc, 1).irb.dstat).toBe(OK_DSTAT);
    expect(readFeat(sc, 1) & 1).toBe(1 << (VIRTIO_F_VERSION_1 - 32));
    expect(readFeat(sc, 2)).toBe(0);
  });

  it('READ_CONF/WRITE_CONF carry the config from offset 0; SLI allows a longer count', () => {
    const { tb, sc } = ccwBoard({ cols: 132, rows: 43 }, 'console');
    bringUp(sc, 2);
    const p = area(tb, 16);
    ok(sc, { cmd: CCW_CMD_READ_CONF, count: 4, cda: p });
    expect([u16(tb, p), u16(tb, p + 2)]).toEqual([132, 43]);
    rejected(sc, { cmd: CCW_CMD_READ_CONF, count: 0x200, cda: p }, SCHN_STAT_INCORR_LEN);
    const big = area(tb, 0x200);
    const r = sc.run([{ cmd: CCW_CMD_READ_CONF, flags: CCW_FLAG_SLI, count: 0x200, cda: big }]);
    expect(r.irb.dstat).toBe(OK_DSTAT);
    expect(r.irb.count).toBe(0x200 - 12); // console config is 12 bytes
    ok(sc, { cmd: CCW_CMD_WRITE_CONF, count: 4, cda: p }); // read-only fields: ignored by the model
  });

  it('SET_VQ refuses a ring the device core refuses, a queue in use and a missing queue; zero addresses release', () => {
    const { tb, sc } = ccwBoard();
    bringUp(sc, 2);
    const p = area(tb, VQ_INFO_BLOCK.SIZE);
    setU16(tb, p + VQ_INFO_BLOCK.index, 0);
    setU64(tb, p + VQ_INFO_BLOCK.desc, area(tb, 256));
    rejected(sc, { cmd: CCW_CMD_SET_VQ, count: VQ_INFO_BLOCK.SIZE, cda: p }); // queue 0 is in use
    setU16(tb, p + VQ_INFO_BLOCK.index, 7);
    rejected(sc, { cmd: CCW_CMD_SET_VQ, count: VQ_INFO_BLOCK.SIZE, cda: p }); // no queue 7
    // Release queue 0, then set it up with a bad size.
    const z = area(tb, VQ_INFO_BLOCK.SIZE);
    ok(sc, { cmd: CCW_CMD_SET_VQ, count: VQ_INFO_BLOCK.SIZE, cda: z });
    setU16(tb, p + VQ_INFO_BLOCK.index, 0);
    setU16(tb, p + VQ_INFO_BLOCK.num, 3);
    rejected(sc, { cmd: CCW_CMD_SET_VQ, count: VQ_INFO_BLOCK.SIZE, cda: p });
    expect(slotStats(tb).lastGuestError).toMatch(/not a power of 2/);
    // The legacy block is the wrong size at revision 2.
    rejected(sc, { cmd: CCW_CMD_SET_VQ, count: VQ_INFO_BLOCK_LEGACY.SIZE, cda: p }, SCHN_STAT_INCORR_LEN);
  });

  it('indicators must be 8-aligned words in RAM; address 0 deregisters', () => {
    const { tb, sc } = ccwBoard();
    const { ring } = bringUp(sc, 2);
    const p = area(tb, 8);
    for (const bad of [OUTSIDE_RAM, area(tb, 16) + 4]) {
      setU64(tb, p, bad);
      rejected(sc, { cmd: CCW_CMD_SET_IND, count: 8, cda: p });
    }
    setInd(sc, CCW_CMD_SET_IND, 0);
    request(sc, ring);
    expect(ring.usedIdx()).toBe(1);
    expect(tb.irq.isHigh(0)).toBe(false); // nowhere to report the used buffer
  });

  it('config changes set bit 0 of the config indicator and interrupt', () => {
    const { tb, sc } = ccwBoard();
    const { ind, ind2 } = bringUp(sc, 2);
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'config-change' }).ok).toBe(true);
    expect(u32(tb, ind2)).toBe(1);
    expect(u32(tb, ind)).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(true);
    expect(sc.tsch().irb.intparm).toBe(0);
  });

  it('SET_IND_ADAPTER is rejected (no adapter interrupts) without counting a guest error', () => {
    const { tb, sc } = ccwBoard();
    rejected(sc, { cmd: CCW_CMD_SET_IND_ADAPTER, flags: CCW_FLAG_SLI, count: 25, cda: area(tb, 25) });
    expect(slotStats(tb).guestErrors).toBe(0);
  });

  it('WRITE_STATUS with a FEATURES_OK the device refuses is a command reject', () => {
    const { tb, sc } = ccwBoard();
    expect(setRev(sc, 1).irb.dstat).toBe(OK_DSTAT);
    writeStatus(sc, 0x03);
    writeFeat(sc, 0, readFeat(sc, 0));
    writeFeat(sc, 1, 0); // no VERSION_1
    const r = writeStatus(sc, 0x0b);
    expect(r.irb.dstat).toBe(UC_DSTAT);
    expect(r.irb.sense0).toBe(SNS0_CMD_REJECT);
    // READ_STATUS needs revision 2.
    rejected(sc, { cmd: CCW_CMD_READ_STATUS, count: 1, cda: area(tb, 1) });
  });

  it('VDEV_RESET resets the device and drops its indicators', () => {
    const { tb, sc } = ccwBoard();
    const { ring, ind } = bringUp(sc, 2);
    ok(sc, { cmd: CCW_CMD_VDEV_RESET, count: 0, cda: 0 });
    expect(readStatus(sc)).toBe(0);
    expect(slotStats(tb).status).toBe(0);
    sc.write(CSS_REG.Notify, 0);
    tb.board.runDeferred(8);
    expect(ring.usedIdx()).toBe(0);
    expect(u32(tb, ind)).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
  });
});

describe('transport revisions', () => {
  it('SET_VIRTIO_REV above ccw.max_revision is rejected quietly; revision 0 then works as legacy virtio', () => {
    const { tb, sc } = ccwBoard({ 'ccw.max_revision': 0 });
    for (const rev of [2, 1]) {
      const r = setRev(sc, rev);
      expect(r.irb.dstat).toBe(UC_DSTAT);
      expect(r.irb.sense0).toBe(SNS0_CMD_REJECT);
    }
    expect(slotStats(tb).guestErrors).toBe(0);
    const { ring, ind } = bringUp(sc, 0);
    expect(readFeat(sc, 1)).toBe(0);
    expect(slotStats(tb).status).toBe(0x07);
    request(sc, ring);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 64 });
    expect(u32(tb, ind)).toBe(1);
    expect(sc.tsch().irb.intparm).toBe(0);
    // A legacy ring needs 4K alignment.
    const p = area(tb, 16);
    setU64(tb, p, area(tb, 4096));
    setU32(tb, p + 8, 64);
    setU16(tb, p + 12, 0);
    rejected(sc, { cmd: CCW_CMD_SET_VQ, count: 16, cda: p });
  });

  it('ccw.max_revision -1: SET_VIRTIO_REV is an unknown command, and the device is legacy', () => {
    const { tb, sc } = ccwBoard({ 'ccw.max_revision': -1 });
    for (const rev of [2, 1, 0]) expect(setRev(sc, rev).irb.dstat).toBe(UC_DSTAT);
    const { ring } = bringUp(sc, null);
    request(sc, ring);
    expect(ring.usedIdx()).toBe(1);
    expect(slotStats(tb).guestErrors).toBe(0);
  });

  it('the revision may be set again while the device is reset or to the same value, not changed in use', () => {
    const { sc } = ccwBoard();
    bringUp(sc, 2);
    expect(setRev(sc, 2).irb.dstat).toBe(OK_DSTAT);
    expect(setRev(sc, 1).irb.dstat).toBe(UC_DSTAT);
    ok(sc, { cmd: CCW_CMD_VDEV_RESET, count: 0, cda: 0 });
    expect(setRev(sc, 1).irb.dstat).toBe(OK_DSTAT);
    rejected(sc, { cmd: CCW_CMD_READ_STATUS, count: 1, cda: area(sc.tb, 1) });
  });

  it('a platform reset idles the subchannel and forgets revision and indicators', () => {
    const { tb, sc } = ccwBoard();
    const { ring, ind } = bringUp(sc, 2);
    sc.prepare([{ cmd: CCW_CMD_VDEV_RESET, count: 0, cda: 0 }]);
    sc.ssch();
    expect(tb.board.control({ op: 'power', model: 'reset' }).ok).toBe(true);
    expect(tb.board.runDeferred(8)).toBe(false);
    expect(sc.status() & (CSS_STATUS_ACTIVE | CSS_STATUS_PENDING)).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
    expect(slotStats(tb).status).toBe(0);
    expect(setRev(sc, 1).irb.dstat).toBe(OK_DSTAT);
    request(sc, ring);
    expect(u32(tb, ind)).toBe(0);
  });
});

describe('bad channel programs end with a unit check, and the device stays usable', () => {
  function usable(sc: RawSubchannel): void {
    const p = area(sc.tb, 4);
    ok(sc, { cmd: CCW_CMD_READ_VQ_CONF, count: 4, cda: p });
    expect(u16(sc.tb, p + 2)).toBe(1024);
  }

  it('unknown command', () => {
    const { tb, sc } = ccwBoard();
    rejected(sc, { cmd: 0x99, count: 4, cda: area(tb, 4) });
    expect(slotStats(tb).lastGuestError).toMatch(/unknown command/);
    usable(sc);
  });

  it('short count without SLI (incorrect length); SLI allows only a longer count', () => {
    const { tb, sc } = ccwBoard();
    const p = area(tb, 16);
    rejected(sc, { cmd: CCW_CMD_READ_FEAT, count: 4, cda: p }, SCHN_STAT_INCORR_LEN);
    rejected(sc, { cmd: CCW_CMD_READ_FEAT, count: 8, cda: p }, SCHN_STAT_INCORR_LEN);
    rejected(sc, { cmd: CCW_CMD_READ_FEAT, flags: CCW_FLAG_SLI, count: 4, cda: p }, SCHN_STAT_INCORR_LEN);
    const r = sc.run([{ cmd: CCW_CMD_READ_FEAT, flags: CCW_FLAG_SLI, count: 8, cda: p }]);
    expect(r.irb).toMatchObject({ dstat: OK_DSTAT, count: 3 });
    usable(sc);
  });

  it('data area outside RAM (channel data check)', () => {
    const { tb, sc } = ccwBoard();
    rejected(sc, { cmd: CCW_CMD_READ_VQ_CONF, count: 4, cda: 0x1000 }, SCHN_STAT_CHN_DATA_CHK);
    rejected(sc, { cmd: CCW_CMD_WRITE_STATUS, count: 1, cda: RAM_BASE + (4 << 20) }, SCHN_STAT_CHN_DATA_CHK);
    rejected(sc, { cmd: CCW_CMD_READ_FEAT, count: 5, cda: RAM_BASE + (4 << 20) - 3 }, SCHN_STAT_CHN_DATA_CHK);
    expect(slotStats(tb).guestErrors).toBe(3);
    usable(sc);
  });

  it('ORB outside RAM or misaligned: unit check without intparm (the ORB could not be read)', () => {
    const { tb, sc } = ccwBoard();
    for (const orb of [OUTSIDE_RAM, 0, sc.orb + 2]) {
      expect(sc.ssch(orb)).toBe(0);
      tb.board.runDeferred(8);
      const { cc, irb } = sc.tsch();
      expect(cc).toBe(0);
      expect(irb).toMatchObject({ intparm: 0, dstat: UC_DSTAT, cstat: SCHN_STAT_PROG_CHECK, sense0: SNS0_CMD_REJECT });
    }
    usable(sc);
  });

  it(`a chain longer than ${MAX_CCW_CHAIN} CCWs`, () => {
    const { tb, sc } = ccwBoard();
    const p = area(tb, 4);
    const chain: RawCcw[] = Array.from({ length: MAX_CCW_CHAIN + 10 }, () => ({ cmd: CCW_CMD_READ_VQ_CONF, flags: CCW_FLAG_CC, count: 4, cda: p }));
    rejected(sc, chain, SCHN_STAT_PROG_CHECK);
    expect(slotStats(tb).lastGuestError).toMatch(/longer than/);
    // A chain that runs off the end of RAM stops there too.
    sc.prepare([{ cmd: CCW_CMD_READ_VQ_CONF, flags: CCW_FLAG_CC, count: 4, cda: p }], 1, RAM_BASE + (4 << 20) - 8);
    sc.ssch();
    tb.board.runDeferred(8);
    expect(sc.tsch().irb).toMatchObject({ dstat: UC_DSTAT, cstat: SCHN_STAT_PROG_CHECK });
    usable(sc);
  });

  it('CCW misaligned, or with flags this channel subsystem does not implement', () => {
    const { tb, sc } = ccwBoard();
    sc.prepare([{ cmd: CCW_CMD_READ_VQ_CONF, count: 4, cda: area(tb, 4) }], 1, sc.ccws + 4);
    sc.ssch();
    tb.board.runDeferred(8);
    expect(sc.tsch().irb).toMatchObject({ dstat: UC_DSTAT, cstat: SCHN_STAT_PROG_CHECK });
    rejected(sc, { cmd: CCW_CMD_READ_VQ_CONF, flags: CCW_FLAG_IDA, count: 4, cda: area(tb, 4) }, SCHN_STAT_PROG_CHECK);
    usable(sc);
  });

  it('a failing CCW ends the chain: the commands after it do not run', () => {
    const { tb, sc } = ccwBoard();
    const st = area(tb, 1);
    setU8(tb, st, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    const r = sc.run([
      { cmd: 0x99, flags: CCW_FLAG_CC, count: 0, cda: 0 },
      { cmd: CCW_CMD_WRITE_STATUS, count: 1, cda: st },
    ]);
    expect(r.irb).toMatchObject({ dstat: UC_DSTAT, cpa: sc.ccws + 8 });
    expect(slotStats(tb).status).toBe(0);
    usable(sc);
  });
});
