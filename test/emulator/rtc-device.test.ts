// virtio-rtc through real registers and rings: the control requests, clock
// readings against the same host clock the device uses, the offset option,
// and the status the spec requires for each kind of bad request.
import { describe, expect, it } from 'vitest';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { VIRTIO_ID_CLOCK } from '../../core/uapi/ids.js';
import { REG } from '../../core/uapi/mmio.js';
import {
  VIRTIO_RTC_CLOCK_UTC,
  VIRTIO_RTC_COUNTER_ARM_VCT,
  VIRTIO_RTC_COUNTER_INVALID,
  VIRTIO_RTC_F_ALARM,
  VIRTIO_RTC_REQ_CFG,
  VIRTIO_RTC_REQ_CLOCK_CAP,
  VIRTIO_RTC_REQ_CROSS_CAP,
  VIRTIO_RTC_REQ_READ,
  VIRTIO_RTC_REQ_READ_ALARM,
  VIRTIO_RTC_REQ_READ_CROSS,
  VIRTIO_RTC_RESP,
  VIRTIO_RTC_S_EINVAL,
  VIRTIO_RTC_S_EIO,
  VIRTIO_RTC_S_ENODEV,
  VIRTIO_RTC_S_EOPNOTSUPP,
  VIRTIO_RTC_S_OK,
  VIRTIO_RTC_SMEAR_UNSPECIFIED,
} from '../../core/uapi/rtc.js';
import { parseOffsetNs } from '../../emulator/devices/rtc.js';
import { hostUtcNs } from '../../emulator/virtio/clock.js';
import type { DeviceOptionValue } from '../../emulator/board-contract.js';
import { RawDriver, makeBoard, slotStats, type RawRing, type TestBoard } from '../helpers/raw-driver.js';
import { postChain, rtcMessage, rtcRequest, usedAt } from '../helpers/raw-requests.js';

function rtcBoard(options: Record<string, DeviceOptionValue> = {}): { tb: TestBoard; drv: RawDriver; q: RawRing } {
  const tb = makeBoard([{ type: 'rtc', transport: 'mmio', options }]);
  const drv = new RawDriver(tb);
  const q = drv.bringUp([16])[0]!;
  return { tb, drv, q };
}

function read(drv: RawDriver, q: RawRing): bigint {
  const r = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ, { clockId: 0 }), 16);
  expect(r.status).toBe(VIRTIO_RTC_S_OK);
  expect(r.usedLen).toBe(16);
  return r.resp.getBigUint64(VIRTIO_RTC_RESP.clock_reading, true);
}

describe('virtio-rtc device', () => {
  it('is device 17 with one request queue and no alarm', () => {
    const tb = makeBoard([{ type: 'rtc', transport: 'mmio' }]);
    const drv = new RawDriver(tb);
    expect(drv.read(REG.DeviceID)).toBe(VIRTIO_ID_CLOCK);
    const f = drv.deviceFeatures();
    expect(f & bit(VIRTIO_F_VERSION_1)).not.toBe(0n);
    expect(f & bit(VIRTIO_RTC_F_ALARM)).toBe(0n);
    drv.write(REG.QueueSel, 1);
    expect(drv.read(REG.QueueNumMax)).toBe(0);
  });

  it('answers CFG with one clock', () => {
    const { drv, q } = rtcBoard();
    const r = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_CFG, { size: 8 }));
    expect(r.status).toBe(VIRTIO_RTC_S_OK);
    expect(r.usedLen).toBe(16);
    expect(r.resp.getUint16(VIRTIO_RTC_RESP.num_clocks, true)).toBe(1);
    // Reserved response bytes are zero.
    expect([1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15].map((i) => r.resp.getUint8(i))).toEqual(new Array(13).fill(0));
  });

  it('answers CLOCK_CAP: clock 0 is UTC, clock 1 does not exist', () => {
    const { drv, q } = rtcBoard();
    const r = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_CLOCK_CAP, { clockId: 0 }));
    expect(r.status).toBe(VIRTIO_RTC_S_OK);
    expect(r.usedLen).toBe(16);
    expect(r.resp.getUint8(VIRTIO_RTC_RESP.type)).toBe(VIRTIO_RTC_CLOCK_UTC);
    expect(r.resp.getUint8(VIRTIO_RTC_RESP.leap_second_smearing)).toBe(VIRTIO_RTC_SMEAR_UNSPECIFIED);
    expect(r.resp.getUint8(VIRTIO_RTC_RESP.clock_cap_flags)).toBe(0);
    expect(rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_CLOCK_CAP, { clockId: 1 })).status).toBe(VIRTIO_RTC_S_ENODEV);
    expect(rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ, { clockId: 0xffff })).status).toBe(VIRTIO_RTC_S_ENODEV);
  });

  it('reads the host UTC clock in ns', () => {
    const { drv, q } = rtcBoard();
    const before = hostUtcNs();
    const a = read(drv, q);
    const b = read(drv, q);
    const after = hostUtcNs();
    expect(before <= a && a <= b && b <= after).toBe(true);
  });

  it('shifts readings by the offset option', () => {
    for (const [offset, ns] of [
      ['3600s', 3_600_000_000_000n],
      [-1.5, -1_500_000_000n],
      ['250ms', 250_000_000n],
      ['123ns', 123n],
    ] as const) {
      const { drv, q } = rtcBoard({ offset });
      const before = hostUtcNs();
      const reading = read(drv, q);
      const after = hostUtcNs();
      expect(before + ns <= reading && reading <= after + ns).toBe(true);
    }
  });

  it('fails a reading that the offset puts before the epoch with EIO', () => {
    const { drv, q } = rtcBoard({ offset: '-100000000000s' });
    expect(rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ, { clockId: 0 })).status).toBe(VIRTIO_RTC_S_EIO);
  });

  it('answers CROSS_CAP "not supported" for known counters, EOPNOTSUPP otherwise', () => {
    const { drv, q } = rtcBoard();
    const cap = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_CROSS_CAP, { clockId: 0, hwCounter: VIRTIO_RTC_COUNTER_ARM_VCT }));
    expect(cap.status).toBe(VIRTIO_RTC_S_OK);
    expect(cap.resp.getUint8(VIRTIO_RTC_RESP.cross_cap_flags)).toBe(0);
    expect(rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_CROSS_CAP, { clockId: 0, hwCounter: 0x42 })).status).toBe(VIRTIO_RTC_S_EOPNOTSUPP);
    expect(rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_CROSS_CAP, { clockId: 0, hwCounter: VIRTIO_RTC_COUNTER_INVALID })).status).toBe(
      VIRTIO_RTC_S_EOPNOTSUPP,
    );
    expect(rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ_CROSS, { clockId: 0, hwCounter: VIRTIO_RTC_COUNTER_ARM_VCT })).status).toBe(
      VIRTIO_RTC_S_EOPNOTSUPP,
    );
  });
});

describe('virtio-rtc bad requests', () => {
  it('answers unknown and alarm message types with EOPNOTSUPP', () => {
    const { drv, q } = rtcBoard();
    expect(rtcRequest(drv, q, rtcMessage(0x0bad)).status).toBe(VIRTIO_RTC_S_EOPNOTSUPP);
    expect(rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ_ALARM, { clockId: 0 })).status).toBe(VIRTIO_RTC_S_EOPNOTSUPP);
  });

  it('answers truncated requests, short response buffers and non-zero reserved bytes with EINVAL', () => {
    const { tb, drv, q } = rtcBoard();
    // READ request cut after the head.
    const cut = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ, { size: 8 }));
    expect(cut.status).toBe(VIRTIO_RTC_S_EINVAL);
    // Only one byte: not even msg_type.
    expect(rtcRequest(drv, q, new Uint8Array(1)).status).toBe(VIRTIO_RTC_S_EINVAL);
    // Response buffer too small for a READ response: status only, as much head as fits.
    const small = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ, { clockId: 0 }), 8);
    expect(small).toMatchObject({ status: VIRTIO_RTC_S_EINVAL, usedLen: 8 });
    const tiny = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ, { clockId: 0 }), 1);
    expect(tiny).toMatchObject({ status: VIRTIO_RTC_S_EINVAL, usedLen: 1 });
    // Reserved bytes in the head and after clock_id.
    for (const at of [3, 12]) {
      const m = rtcMessage(VIRTIO_RTC_REQ_READ, { clockId: 0 });
      m[at] = 1;
      expect(rtcRequest(drv, q, m).status).toBe(VIRTIO_RTC_S_EINVAL);
    }
    expect(slotStats(tb).deviceErrors).toBe(0);
  });

  it('ignores room beyond the request and response sizes', () => {
    const { drv, q } = rtcBoard();
    const r = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_CFG, { size: 64 }), 64);
    expect(r).toMatchObject({ status: VIRTIO_RTC_S_OK, usedLen: 16 });
    // Bytes past the response are untouched (the helper pre-fills 0xee).
    expect(r.resp.getUint8(16)).toBe(0xee);
  });

  it('returns a request without a device-writable buffer with used len 0 and keeps serving', () => {
    const { drv, q } = rtcBoard();
    const before = q.usedIdx();
    const chain = postChain(drv, q, 0, [{ data: rtcMessage(VIRTIO_RTC_REQ_CFG, { size: 8 }) }]);
    expect(usedAt(q, before)).toEqual({ id: chain.head, len: 0 });
    expect(read(drv, q)).toBeGreaterThan(0n);
  });

  it('parses offsets and rejects malformed ones', () => {
    expect(parseOffsetNs(undefined)).toBe(0n);
    expect(parseOffsetNs(2)).toBe(2_000_000_000n);
    expect(parseOffsetNs('-0.000000001')).toBe(-1n);
    expect(parseOffsetNs('1.5us')).toBe(1500n);
    expect(() => parseOffsetNs('1.5ns')).toThrow(/finer/);
    expect(() => parseOffsetNs('soon')).toThrow(/duration/);
    expect(() => parseOffsetNs(true)).toThrow(/duration/);
    expect(() => makeBoard([{ type: 'rtc', transport: 'mmio', options: { alarm: true } }])).toThrow(/unknown option/);
  });
});
