// The machine's virtual clock: device timers and the rtc follow it; with
// the 'manual' mode (qtest) it moves only by the 'clock' control request,
// which stops at each timer deadline on the way, as QEMU's
// qemu_clock_advance_virtual_time does.
import { describe, expect, it } from 'vitest';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { VIRTIO_RTC_REQ_READ, VIRTIO_RTC_RESP, VIRTIO_RTC_S_OK } from '../../core/uapi/rtc.js';
import type { ControlResponse, DeviceOptionValue } from '../../emulator/board-contract.js';
import { registerDeviceType } from '../../emulator/devices/catalog.js';
import type { DeviceContext, DeviceModel } from '../../emulator/devices/device.js';
import { CLOCK_MAX_NS, VirtualClock } from '../../emulator/virtio/clock.js';
import { RawDriver, makeBoard, type TestBoard } from '../helpers/raw-driver.js';
import { rtcMessage, rtcRequest } from '../helpers/raw-requests.js';

/** A device whose timers the test arms: 'arm' {ms, every?} records the virtual time each time one fires. */
class TimedDevice implements DeviceModel {
  static last: TimedDevice | null = null;
  readonly deviceId = 0x73;
  readonly name = 'timed';
  readonly features = bit(VIRTIO_F_VERSION_1);
  readonly queueNumMax = [8];
  readonly configSize = 0;
  fired: bigint[] = [];
  constructor(private readonly now: () => bigint) {
    TimedDevice.last = this;
  }
  handleQueue(): void {}
  inject(ctx: DeviceContext, event: string, args: Readonly<Record<string, DeviceOptionValue>>): boolean {
    if (event !== 'arm') return false;
    const ms = Number(args['ms']);
    let left = Number(args['times'] ?? 1);
    const fire = (): void => {
      this.fired.push(this.now());
      if (--left > 0) ctx.setTimer(ms, fire);
    };
    ctx.setTimer(ms, fire);
    return true;
  }
}

function clockOf(tb: TestBoard): bigint {
  return BigInt(value(tb.board.control({ op: 'clock' })).ns);
}

function value(r: ControlResponse): { ns: string; moved: boolean } {
  if (!r.ok) throw new Error(r.error);
  return r.value as { ns: string; moved: boolean };
}

function timedBoard(): { tb: TestBoard; dev: TimedDevice } {
  let tb: TestBoard | null = null;
  registerDeviceType('timed', () => new TimedDevice(() => clockOf(tb!)));
  tb = makeBoard([{ type: 'timed', transport: 'mmio' }], { clock: 'manual' });
  new RawDriver(tb).bringUp([8]);
  return { tb, dev: TimedDevice.last! };
}

describe('VirtualClock', () => {
  it('manual: starts at 0 and moves only forward, never past the int64 end', () => {
    const c = new VirtualClock('manual', () => 1000, () => 5n);
    expect(c.nowNs()).toBe(0n);
    expect(c.advanceTo(1500n)).toBe(1500n);
    expect(c.advanceTo(100n)).toBe(1500n);
    expect(c.utcNs()).toBe(1505n);
    expect(c.advanceTo(CLOCK_MAX_NS + 10n)).toBe(CLOCK_MAX_NS);
  });

  it('host: runs with the host clock, and a step moves it ahead of it', () => {
    let ms = 10;
    let utc = 7_000_000n;
    const c = new VirtualClock('host', () => ms, () => utc);
    ms = 12;
    expect(c.nowNs()).toBe(2_000_000n);
    expect(c.advanceTo(5_000_000n)).toBe(5_000_000n);
    ms = 13;
    utc = 8_000_000n;
    expect(c.nowNs()).toBe(6_000_000n);
    // The guest's UTC is the host's plus what the steps added.
    expect(c.utcNs()).toBe(8_000_000n + 3_000_000n);
  });
});

describe("the board's clock control request", () => {
  it('a device timer fires when a step reaches its deadline, not before; the worker never waits for it', () => {
    const { tb, dev } = timedBoard();
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'arm', args: { ms: 1 } }).ok).toBe(true);
    // A manual clock does not move while the host waits: nothing for the worker to wake up for.
    expect(tb.board.nextTimerMs()).toBe(Number.POSITIVE_INFINITY);
    expect(value(tb.board.control({ op: 'clock', step: '999999' }))).toEqual({ ns: '999999', moved: true });
    expect(dev.fired).toEqual([]);
    expect(value(tb.board.control({ op: 'clock', step: '1' }))).toEqual({ ns: '1000000', moved: true });
    expect(dev.fired).toEqual([1_000_000n]);
  });

  it('a long step stops at every deadline on the way: a periodic timer fires at each, seeing its own time', () => {
    const { tb, dev } = timedBoard();
    tb.board.control({ op: 'inject', slot: 0, event: 'arm', args: { ms: 2, times: 4 } });
    expect(value(tb.board.control({ op: 'clock', step: '10000000' })).ns).toBe('10000000');
    expect(dev.fired).toEqual([2_000_000n, 4_000_000n, 6_000_000n, 8_000_000n]);
  });

  it("step 'deadline' goes to the next timer's deadline; with none it is refused", () => {
    const { tb, dev } = timedBoard();
    expect(tb.board.control({ op: 'clock', step: 'deadline' })).toEqual({ ok: false, error: 'clock: no pending deadline to advance to' });
    tb.board.control({ op: 'inject', slot: 0, event: 'arm', args: { ms: 3 } });
    expect(value(tb.board.control({ op: 'clock', step: 'deadline' }))).toEqual({ ns: '3000000', moved: true });
    expect(dev.fired).toEqual([3_000_000n]);
  });

  it("'to' moves to a time ahead and never back", () => {
    const { tb } = timedBoard();
    expect(value(tb.board.control({ op: 'clock', to: '5000' }))).toEqual({ ns: '5000', moved: true });
    expect(value(tb.board.control({ op: 'clock', to: '10' }))).toEqual({ ns: '5000', moved: false });
    expect(clockOf(tb)).toBe(5000n);
  });

  it('refuses values that are not int64 counts of ns, before the clock moves', () => {
    const { tb } = timedBoard();
    tb.board.control({ op: 'clock', to: '100' });
    for (const [req, error] of [
      [{ op: 'clock', step: '-1' }, /step must be a decimal count of ns, got "-1"/],
      [{ op: 'clock', step: 5 }, /step must be a decimal count of ns, got 5/],
      [{ op: 'clock', to: '1'.repeat(40) }, /to must be a decimal count of ns/],
      [{ op: 'clock', to: String(CLOCK_MAX_NS + 1n) }, /past the clock's end/],
      [{ op: 'clock', step: String(CLOCK_MAX_NS) }, /100 \+ 9223372036854775807 ns is past the clock's end/],
      [{ op: 'clock', step: '1', to: '2' }, /step or to, not both/],
    ] as const) {
      const r = tb.board.control(req as never);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toMatch(error);
    }
    expect(clockOf(tb)).toBe(100n);
  });
});

describe('the rtc reads the virtual clock', () => {
  function rtcRead(drv: RawDriver, q: ReturnType<RawDriver['bringUp']>[number]): bigint {
    const r = rtcRequest(drv, q, rtcMessage(VIRTIO_RTC_REQ_READ, { clockId: 0 }), 16);
    expect(r.status).toBe(VIRTIO_RTC_S_OK);
    return r.resp.getBigUint64(VIRTIO_RTC_RESP.clock_reading, true);
  }

  it('manual: the reading moves by exactly the step, and not at all without one', () => {
    const tb = makeBoard([{ type: 'rtc', transport: 'mmio' }], { clock: 'manual' });
    const drv = new RawDriver(tb);
    const q = drv.bringUp([16])[0]!;
    const a = rtcRead(drv, q);
    expect(rtcRead(drv, q)).toBe(a);
    tb.board.control({ op: 'clock', step: '1000000000' });
    expect(rtcRead(drv, q)).toBe(a + 1_000_000_000n);
  });

  it('host: a step puts the reading that far ahead of the host clock', () => {
    const tb = makeBoard([{ type: 'rtc', transport: 'mmio' }], { clock: 'host' });
    const drv = new RawDriver(tb);
    const q = drv.bringUp([16])[0]!;
    const hour = 3_600_000_000_000n;
    const before = BigInt(Date.now()) * 1_000_000n;
    tb.board.control({ op: 'clock', step: String(hour) });
    const r = rtcRead(drv, q);
    const after = BigInt(Date.now()) * 1_000_000n;
    // The host's time runs on while the step is made: within the ms the host clock resolves.
    expect(r).toBeGreaterThanOrEqual(before + hour - 1_000_000n);
    expect(r).toBeLessThanOrEqual(after + hour);
  });
});
