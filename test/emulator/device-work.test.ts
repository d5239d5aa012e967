// Device work on the serve path: the queue's reusable chain record is dead
// once its serve call returns (a model that keeps it reads and writes
// nothing), and queue handlers give way to a waiting register access at a
// chain boundary (Board.setYieldHook), continuing in a later step.
import { describe, expect, it } from 'vitest';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { VRING_DESC_F_WRITE as WRITE } from '../../core/uapi/ring.js';
import { registerDeviceType } from '../../emulator/devices/catalog.js';
import { serveQueue, type Chain, type DeviceContext, type DeviceModel } from '../../emulator/devices/device.js';
import { RawDriver, makeBoard, ramBytes, slotStats } from '../helpers/raw-driver.js';

/** Serves like rng (fills with 0x11) and, wrongly, keeps every chain it was handed. */
class KeepingDevice implements DeviceModel {
  static last: KeepingDevice | null = null;
  readonly deviceId = 0x72;
  readonly name = 'keeping';
  readonly features = bit(VIRTIO_F_VERSION_1);
  readonly queueNumMax = [64];
  readonly configSize = 0;
  kept: Chain[] = [];
  constructor() {
    KeepingDevice.last = this;
  }
  handleQueue(ctx: DeviceContext, queue: number): void {
    serveQueue(ctx, queue, (chain) => {
      expect(chain.live).toBe(true);
      this.kept.push(chain);
      return chain.write(new Uint8Array(chain.writableBytes).fill(0x11));
    });
  }
}
registerDeviceType('keeping', () => new KeepingDevice());

function bringUp(type: string, n: number) {
  const tb = makeBoard([{ type, transport: 'mmio' }]);
  const d = new RawDriver(tb, 0);
  const [ring] = d.bringUp([64]);
  tb.board.runDeferred(10);
  const bufs: number[] = [];
  for (let i = 0; i < n; i++) {
    const buf = tb.alloc.take(16);
    bufs.push(buf);
    ring!.writeDesc(i, buf, 16, WRITE);
    ring!.addAvail(i);
  }
  return { tb, d, ring: ring!, bufs };
}

describe('the serve path reuses one chain record per queue', () => {
  it('a chain kept past its serve call is dead: it reads and writes nothing', () => {
    const { tb, d, ring, bufs } = bringUp('keeping', 3);
    d.notify(0);
    tb.board.runDeferred(10);
    expect(ring.usedIdx()).toBe(3);
    const dev = KeepingDevice.last!;
    expect(dev.kept).toHaveLength(3);
    // One record, handed out three times.
    expect(new Set(dev.kept).size).toBe(1);
    const kept = dev.kept[0]!;
    expect(kept.live).toBe(false);
    expect(kept.write(new Uint8Array(16).fill(0xee))).toBe(0);
    expect(kept.read(new Uint8Array(16))).toBe(0);
    for (const b of bufs) expect([...ramBytes(tb, b, 16)]).toEqual(new Array(16).fill(0x11));
    expect(slotStats(tb).usedBuffers).toBe(3);
  });
});

describe('queue handlers yield to a waiting register access', () => {
  it('with an access waiting, the handler stops at a chain boundary and the rest is served in later steps', () => {
    const { tb, d, ring } = bringUp('rng', 40);
    let asks = 0;
    let waiting = true;
    tb.board.setYieldHook?.(() => {
      asks++;
      return waiting;
    });
    d.notify(0);
    expect(tb.board.runDeferred(1)).toBe(true);
    // Asked every few chains: stopped at the first ask, well before the weight.
    expect(asks).toBe(1);
    const first = ring.usedIdx();
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(40);
    waiting = false;
    for (let i = 0; i < 20 && tb.board.hasDeferred(); i++) tb.board.runDeferred(1);
    expect(ring.usedIdx()).toBe(40);
    expect(asks).toBeGreaterThan(1);
    // Nothing lost or served twice.
    const ids = new Set(Array.from({ length: 40 }, (_, i) => ring.usedElem(i).id));
    expect(ids.size).toBe(40);
  });

  it('without a hook (or with nothing waiting) a step serves up to the weight', () => {
    const { tb, d, ring } = bringUp('rng', 40);
    d.notify(0);
    tb.board.runDeferred(1);
    expect(ring.usedIdx()).toBe(40);
  });
});
