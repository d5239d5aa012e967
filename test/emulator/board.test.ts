// The board: creation checks, control requests ('ping', 'stats', 'power',
// 'inject', 'fault'), device timers, fault isolation between devices, and
// completions that arrive after a reset.
import { describe, expect, it } from 'vitest';
import { REG, VIRTIO_MMIO_INT_CONFIG as INT_CONFIG, VIRTIO_MMIO_INT_VRING as INT_VRING } from '../../core/uapi/mmio.js';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { VRING_DESC_F_WRITE as WRITE } from '../../core/uapi/ring.js';
import { PLATFORM } from '../../core/bus.js';
import { createBoard } from '../../emulator/board.js';
import type { Chain, ConfigWidth, DeviceContext, DeviceModel } from '../../emulator/devices/device.js';
import { registerDeviceType } from '../../emulator/devices/catalog.js';
import { RAM_BASE, RawDriver, makeBoard, ramBytes, slotStats, RecordingIrq } from '../helpers/raw-driver.js';

/**
 * A device whose behaviour the test steers: it holds popped chains until told
 * to complete them, can throw from any entry point, and uses a timer.
 */
class ScriptedDevice implements DeviceModel {
  static last: ScriptedDevice | null = null;
  readonly deviceId = 0x70;
  readonly name = 'scripted';
  readonly features = bit(VIRTIO_F_VERSION_1);
  readonly queueNumMax = [8];
  readonly configSize = 4;
  held: Chain[] = [];
  throwIn: 'handleQueue' | 'readConfig' | 'timer' | null = null;
  timerFired = 0;
  resets = 0;
  ctx: DeviceContext | null = null;
  /** Keep held chains across reset (a buggy model): the core must still protect guest memory. */
  keepAcrossReset = false;
  constructor() {
    ScriptedDevice.last = this;
  }
  readConfig(_o: number, _w: ConfigWidth): number {
    if (this.throwIn === 'readConfig') throw new Error('config boom');
    return 0x1234;
  }
  writeConfig(): void {}
  reset(): void {
    this.resets++;
    if (!this.keepAcrossReset) this.held = [];
  }
  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
  }
  handleQueue(ctx: DeviceContext, q: number): void {
    if (this.throwIn === 'handleQueue') throw new Error('queue boom');
    for (let c = ctx.pop(q); c; c = ctx.pop(q)) this.held.push(c);
  }
  completeAll(fill: number): void {
    for (const c of this.held) {
      const n = c.write(new Uint8Array(c.writableBytes).fill(fill));
      this.ctx!.pushUsed(c, n);
    }
    this.held = [];
  }
  inject(ctx: DeviceContext, event: string): boolean {
    if (event === 'complete') {
      this.completeAll(0x5a);
      return true;
    }
    if (event === 'arm-timer') {
      ctx.setTimer(50, () => {
        if (this.throwIn === 'timer') throw new Error('timer boom');
        this.timerFired++;
        this.completeAll(0x77);
      });
      return true;
    }
    return false;
  }
}
registerDeviceType('scripted', () => new ScriptedDevice());

function scripted() {
  const tb = makeBoard([{ type: 'scripted', transport: 'mmio' }, { type: 'rng', transport: 'mmio' }]);
  const d = new RawDriver(tb, 0);
  const [ring] = d.bringUp([8]);
  tb.board.runDeferred(10);
  const dev = ScriptedDevice.last!;
  return { tb, d, ring: ring!, dev };
}

function config(devices: Parameters<typeof createBoard>[0]['devices'], over: Partial<Parameters<typeof createBoard>[0]> = {}) {
  return { ramBase: RAM_BASE, ramSize: 1 << 20, mmioBase: PLATFORM.MMIO_BASE, slots: 4, devices, ...over };
}

describe('createBoard', () => {
  const ram = () => new Uint8Array(new SharedArrayBuffer(1 << 20));
  it('puts ccw devices on the channel subsystem and refuses bad ccw options', () => {
    expect(() => createBoard(config([{ type: 'rng', transport: 'ccw' }]), ram(), new RecordingIrq())).not.toThrow();
    expect(() => createBoard(config([{ type: 'rng', transport: 'ccw', options: { 'ccw.max_revision': 7 } }]), ram(), new RecordingIrq())).toThrow(/ccw.max_revision/);
  });
  it('refuses unknown device types and bad options', () => {
    expect(() => createBoard(config([{ type: 'nope', transport: 'mmio' }]), ram(), new RecordingIrq())).toThrow(/unknown device type/);
    expect(() => createBoard(config([{ type: 'rng', transport: 'mmio', options: { queueSize: 'x' } }]), ram(), new RecordingIrq())).toThrow(/queueSize/);
    expect(() => createBoard(config([{ type: 'rng', transport: 'mmio', options: { queueSize: 1000 } }]), ram(), new RecordingIrq())).toThrow(/power of 2/);
  });
  it('refuses MMIO windows that overlap RAM, and more devices than slots', () => {
    expect(() => createBoard(config([], { mmioBase: RAM_BASE + 0x1000 }), ram(), new RecordingIrq())).toThrow(/overlap/);
    expect(() => createBoard(config([null, { type: 'rng', transport: 'mmio' }], { slots: 1 }), ram(), new RecordingIrq())).toThrow(/slots/);
  });
  it('refuses a RAM view smaller than ramSize', () => {
    expect(() => createBoard(config([], { ramSize: 2 << 20 }), ram(), new RecordingIrq())).toThrow(/smaller/);
  });
  it('has no timers or work at start', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
    expect(tb.board.nextTimerMs()).toBe(Number.POSITIVE_INFINITY);
    expect(tb.board.hasDeferred()).toBe(false);
    expect(tb.board.runDeferred(10)).toBe(false);
  });
});

describe('control requests', () => {
  it('ping', () => {
    expect(makeBoard([null]).board.control({ op: 'ping' })).toEqual({ ok: true, value: 'pong' });
  });
  it('stats per slot', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }, null]);
    const d = new RawDriver(tb, 0);
    const [ring] = d.bringUp([8]);
    ring!.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    ring!.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    d.read(REG.QueueNum);
    const res = tb.board.control({ op: 'stats' });
    expect(res.ok).toBe(true);
    const v = (res as { value: { slots: Record<string, unknown>[]; unmapped: number } }).value;
    expect(v.slots).toHaveLength(2);
    expect(v.slots[0]).toMatchObject({
      slot: 0,
      type: 'rng',
      transport: 'mmio',
      deviceId: 4,
      guestErrors: 1,
      notifications: 1,
      usedBuffers: 1,
      usedInterrupts: 1,
      irqRaised: 1,
      interruptStatus: INT_VRING,
    });
    expect(v.slots[1]).toMatchObject({ slot: 1, type: null, deviceId: 0, guestErrors: 0 });
  });
  it('inject to an empty slot or an unknown event fails cleanly', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }, null]);
    expect(tb.board.control({ op: 'inject', slot: 1, event: 'config-change' }).ok).toBe(false);
    expect(tb.board.control({ op: 'inject', slot: 9, event: 'config-change' }).ok).toBe(false);
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'bogus' }).ok).toBe(false);
  });
  it('worker-level faults are not the board\'s', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio' }]);
    expect(tb.board.control({ op: 'fault', kind: 'crash' }).ok).toBe(false);
  });
});

describe("'power' models", () => {
  it('an unknown power model is refused and changes nothing', () => {
    const { tb, d } = scripted();
    const st = d.status();
    const r = tb.board.control({ op: 'power', model: 'off' as 'retain' });
    expect(r).toEqual({ ok: false, error: "unknown power model 'off'" });
    expect(d.status()).toBe(st);
  });
  it("'retain' leaves the running device as it was", () => {
    const { tb, d, ring, dev } = scripted();
    const st = d.status();
    tb.board.control({ op: 'power', model: 'retain' });
    expect(d.status()).toBe(st);
    ring.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(dev.held).toHaveLength(1);
  });
  it("'reset' resets every device as Status=0 would; the same instance stays", () => {
    const { tb, d, dev } = scripted();
    tb.board.control({ op: 'inject', slot: 0, event: 'config-change' });
    expect(tb.irq.isHigh(0)).toBe(true);
    const resets = dev.resets;
    tb.board.control({ op: 'power', model: 'reset' });
    expect(d.status()).toBe(0);
    expect(new RawDriver(tb, 1).status()).toBe(0);
    expect(d.interruptStatus()).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
    d.write(REG.QueueSel, 0);
    expect(d.read(REG.QueueReady)).toBe(0);
    expect(dev.resets).toBe(resets + 1);
    expect(ScriptedDevice.last).toBe(dev);
    expect(d.read(REG.ConfigGeneration)).toBe(1);
  });
  it("'fresh' creates new device instances with registers at defaults", () => {
    const { tb, d, dev } = scripted();
    tb.board.control({ op: 'inject', slot: 0, event: 'config-change' });
    tb.board.control({ op: 'power', model: 'fresh' });
    expect(ScriptedDevice.last).not.toBe(dev);
    expect(d.status()).toBe(0);
    expect(d.read(REG.ConfigGeneration)).toBe(0);
    expect(d.interruptStatus()).toBe(0);
    expect(tb.irq.isHigh(0)).toBe(false);
    expect(slotStats(tb).notifications).toBe(0);
    // The new instance works.
    const [ring] = d.bringUp([8]);
    ring!.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    ring!.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ScriptedDevice.last!.held).toHaveLength(1);
  });
});

describe('device faults stay inside their device', () => {
  it('a queue handler that throws: DEVICE_NEEDS_RESET + config interrupt; the other device keeps working', () => {
    const { tb, d, ring, dev } = scripted();
    dev.throwIn = 'handleQueue';
    ring.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    ring.addAvail(0);
    expect(() => {
      d.notify(0);
      tb.board.runDeferred(10);
    }).not.toThrow();
    expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
    expect(d.interruptStatus()).toBe(INT_CONFIG);
    expect(slotStats(tb).deviceErrors).toBe(1);

    const r = new RawDriver(tb, 1);
    const [rr] = r.bringUp([8]);
    rr!.writeDesc(0, tb.alloc.take(8), 8, WRITE);
    rr!.addAvail(0);
    r.notify(0);
    tb.board.runDeferred(10);
    expect(rr!.usedIdx()).toBe(1);
    expect(r.status() & NEEDS_RESET).toBe(0);
    expect(tb.irq.isHigh(1)).toBe(true);
  });
  it('a config read that throws reads 0 and sets DEVICE_NEEDS_RESET', () => {
    const { d, dev } = scripted();
    expect(d.read(REG.Config, 4)).toBe(0x1234);
    dev.throwIn = 'readConfig';
    expect(d.read(REG.Config, 4)).toBe(0);
    expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
  });
  it("the 'throw-in-device' fault makes the next model call throw", () => {
    const { tb, d } = scripted();
    expect(tb.board.control({ op: 'fault', kind: 'throw-in-device', slot: 0 }).ok).toBe(true);
    expect(d.read(REG.Config, 4)).toBe(0);
    expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
    expect(tb.board.control({ op: 'fault', kind: 'throw-in-device', slot: 3 }).ok).toBe(false);
  });
});

describe('device timers', () => {
  it('ctx.setTimer is reported by nextTimerMs and run by runDeferred when due', () => {
    const { tb, d, ring, dev } = scripted();
    const buf = tb.alloc.take(8);
    ring.writeDesc(0, buf, 8, WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'arm-timer' }).ok).toBe(true);
    expect(tb.board.nextTimerMs()).toBe(50);
    expect(tb.board.hasDeferred()).toBe(false);
    tb.clock.advance(20);
    tb.board.runDeferred(10);
    expect(dev.timerFired).toBe(0);
    expect(tb.board.nextTimerMs()).toBe(30);
    tb.clock.advance(30);
    expect(tb.board.hasDeferred()).toBe(true);
    tb.board.runDeferred(10);
    expect(dev.timerFired).toBe(1);
    expect(ring.usedElem(0)).toEqual({ id: 0, len: 8 });
    expect(ramBytes(tb, buf, 8).every((b) => b === 0x77)).toBe(true);
    expect(d.interruptStatus()).toBe(INT_VRING);
    expect(tb.board.nextTimerMs()).toBe(Number.POSITIVE_INFINITY);
  });
  it('a device reset cancels its timers', () => {
    const { tb, d, dev } = scripted();
    tb.board.control({ op: 'inject', slot: 0, event: 'arm-timer' });
    d.reset();
    expect(tb.board.nextTimerMs()).toBe(Number.POSITIVE_INFINITY);
    tb.clock.advance(100);
    tb.board.runDeferred(10);
    expect(dev.timerFired).toBe(0);
  });
  it('a timer callback that throws sets DEVICE_NEEDS_RESET', () => {
    const { tb, d, dev } = scripted();
    dev.throwIn = 'timer';
    tb.board.control({ op: 'inject', slot: 0, event: 'arm-timer' });
    tb.clock.advance(50);
    expect(() => tb.board.runDeferred(10)).not.toThrow();
    expect(d.status() & NEEDS_RESET).toBe(NEEDS_RESET);
  });
});

describe('completions after a reset never reach guest memory (BI-24)', () => {
  it('chains held across a device reset are dead: no data, no used element, no interrupt', () => {
    const { tb, d, ring, dev } = scripted();
    dev.keepAcrossReset = true;
    const buf = tb.alloc.take(16);
    ring.writeDesc(0, buf, 16, WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(dev.held).toHaveLength(1);
    expect(dev.held[0]!.live).toBe(true);
    d.reset();
    expect(dev.held[0]!.live).toBe(false);
    // Re-initialise, then let the stale chain "complete".
    d.bringUp([8]);
    tb.board.control({ op: 'inject', slot: 0, event: 'complete' });
    expect(ramBytes(tb, buf, 16).every((b) => b === 0)).toBe(true);
    expect(d.interruptStatus()).toBe(0);
    expect(slotStats(tb).usedBuffers).toBe(0);
  });
  it('QueueReady=0 also kills chains popped from that queue', () => {
    const { tb, d, ring, dev } = scripted();
    const buf = tb.alloc.take(16);
    ring.writeDesc(0, buf, 16, WRITE);
    ring.addAvail(0);
    d.notify(0);
    tb.board.runDeferred(10);
    d.write(REG.QueueReady, 0);
    dev.completeAll(0x11);
    expect(ramBytes(tb, buf, 16).every((b) => b === 0)).toBe(true);
    expect(ring.usedIdx()).toBe(0);
  });
});
