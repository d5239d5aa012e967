// The device snapshot on the board: a document loads back to the same
// document (every device type, both virtio-mmio versions, split and packed
// rings); a snapshot completes the work already queued before it is taken
// (the in-flight rule); a restored device serves what the driver made
// available without a new kick; the power model snapshot keeps what power
// fresh loses.
import { describe, expect, it } from 'vitest';
import { REG } from '../../core/uapi/mmio.js';
import type { DeviceSpec } from '../../emulator/board-contract.js';
import { W } from '../../tools/testkit/queue-builder.js';
import type { PackedQueueBuilder } from '../../tools/testkit/packed-queue-builder.js';
import type { QueueBuilder } from '../../tools/testkit/queue-builder.js';
import { bringUp, bringUpPacked, type Rig } from '../bad-input/harness.js';
import { RawDriver, makeBoard, type TestBoard } from '../helpers/raw-driver.js';
import { readDoc } from '../helpers/snapshot-docs.js';

const DEVICES: DeviceSpec[] = [
  { type: 'rng', transport: 'mmio' },
  { type: 'blk', transport: 'mmio', options: { size: '1M' } },
  { type: 'console', transport: 'mmio', options: { out: 'none' } },
  { type: 'rtc', transport: 'mmio' },
];

function rigOf(tb: TestBoard): Pick<Rig, 'mem' | 'alloc'> {
  return { mem: { base: 0x4000_0000, size: tb.ram.length, u8: tb.ram, view: tb.view }, alloc: tb.alloc };
}

const drain = (tb: TestBoard): void => {
  for (let i = 0; i < 100_000 && tb.board.hasDeferred(); i++) tb.board.runDeferred(64);
};

function snapshot(tb: TestBoard): Uint8Array {
  const r = tb.board.control({ op: 'snapshot' });
  if (!r.ok) throw new Error(r.error);
  return r.value as Uint8Array;
}

/** A board with the four device types live on `transport`, each queue with a few requests served (packed rings where asked). */
function liveBoard(transport: 'mmio' | 'mmio-legacy', packed: boolean): { tb: TestBoard; queues: (QueueBuilder | PackedQueueBuilder)[][] } {
  const tb = makeBoard(
    DEVICES.map((d) => ({ ...d, transport })),
    { slots: 4, ramSize: 4 << 20 },
  );
  const rig = rigOf(tb) as Rig;
  const queues = DEVICES.map((d, slot) => {
    const drv = new RawDriver(tb, slot);
    const n = d.type === 'console' ? [8, 8] : [8];
    const qs = packed ? bringUpPacked(rig, drv, n) : bringUp(rig, drv, n);
    // A request on the last queue (the console's transmitq, the others' requestq).
    const q = qs[qs.length - 1]!;
    for (let i = 0; i < 3; i++) {
      q.chain(d.type === 'blk' ? [{ read: new Uint8Array(16) }, W(512 + 1)] : d.type === 'console' ? [{ read: 5 }] : [{ read: 8 }, W(24)]);
      drv.notify(qs.length - 1);
      drain(tb);
    }
    return qs;
  });
  return { tb, queues };
}

describe('device snapshot on the board', () => {
  for (const transport of ['mmio', 'mmio-legacy'] as const) {
    for (const packed of transport === 'mmio' ? [false, true] : [false]) {
      it(`a document loads back to the same document: every device type on ${transport}, ${packed ? 'packed' : 'split'} rings`, () => {
        const { tb } = liveBoard(transport, packed);
        const doc = snapshot(tb);
        const d = readDoc(doc);
        expect(d['devices'].map((x: { device: { queues: { kind: string; ready: boolean }[] } }) => x.device.queues.map((q) => `${q.kind}:${q.ready}`))).toEqual(
          DEVICES.map((dv) => (dv.type === 'console' ? [0, 1] : [0]).map(() => `${packed ? 'packed' : 'split'}:true`)),
        );
        const twin = makeBoard(
          DEVICES.map((x) => ({ ...x, transport })),
          { slots: 4, ramSize: 4 << 20 },
        );
        twin.ram.set(tb.ram);
        const r = twin.board.control({ op: 'restore', doc });
        expect(r.ok ? 'ok' : r.error).toBe('ok');
        drain(twin);
        expect(Buffer.from(snapshot(twin)).equals(Buffer.from(doc))).toBe(true);
        // And the registers a driver reads agree.
        for (let slot = 0; slot < 4; slot++) {
          const a = new RawDriver(tb, slot);
          const b = new RawDriver(twin, slot);
          for (const reg of [REG.Status, REG.InterruptStatus, REG.DeviceID]) expect(b.read(reg), `slot ${slot} reg 0x${reg.toString(16)}`).toBe(a.read(reg));
        }
      });
    }
  }

  it('queued work is completed before the snapshot is taken: a kick the device has not acted on yet shows as used in the document', () => {
    const tb = makeBoard([DEVICES[0]!], { slots: 1 });
    const drv = new RawDriver(tb, 0);
    const [q] = bringUp(rigOf(tb) as Rig, drv, [8]);
    q!.chain([W(16)]);
    q!.chain([W(16)]);
    drv.notify(0);
    // Not drained: the work item is queued, nothing used yet.
    expect(q!.usedIdx()).toBe(0);
    const d = readDoc(snapshot(tb));
    expect(q!.usedIdx()).toBe(2);
    expect(d['devices'][0]['device']['queues'][0]['ring']['nextUsed']).toBe(2);
    expect(d['devices'][0]['device']['counters']['usedBuffers']).toBe(2);
  });

  it('a restored device serves what the driver made available without a kick (none is lost across the restore)', () => {
    const tb = makeBoard([DEVICES[0]!], { slots: 1 });
    const drv = new RawDriver(tb, 0);
    const [q] = bringUp(rigOf(tb) as Rig, drv, [8]);
    // Suppressed kick: the buffer is in the ring, the device was never told.
    q!.chain([W(16)]);
    const doc = snapshot(tb);
    expect(q!.usedIdx()).toBe(0);
    const twin = makeBoard([DEVICES[0]!], { slots: 1 });
    twin.ram.set(tb.ram);
    expect(twin.board.control({ op: 'restore', doc }).ok).toBe(true);
    drain(twin);
    const view = new DataView(twin.ram.buffer);
    const usedIdx = view.getUint16(q!.layout.used - 0x4000_0000 + 2, true);
    expect(usedIdx).toBe(1);
  });

  it('the virtual clock: a manual clock goes on from the same time, and the rtc from the same UTC', async () => {
    const { Machine } = await import('../../emulator/machine.js');
    const m = await Machine.create({ devices: ['rtc'], slots: 1, ramSize: 1 << 20, clock: 'manual', bus: 'inthread' });
    try {
      expect(m.control({ op: 'clock', step: '5000000000' }).ok).toBe(true);
      const d = m.control({ op: 'snapshot' });
      const doc = (d.ok ? d.value : null) as Uint8Array;
      const r = await Machine.restore(doc, m.mem.u8.slice(), { bus: 'inthread' });
      try {
        const now = (x: typeof m): unknown => (x.control({ op: 'clock' }) as { value: { ns: string } }).value.ns;
        expect(now(r)).toBe('5000000000');
        const again = r.control({ op: 'snapshot' });
        expect(readDoc((again.ok ? again.value : null) as Uint8Array)['clock']).toEqual(readDoc(doc)['clock']);
      } finally {
        await r.close();
      }
    } finally {
      await m.close();
    }
  });

  it('power snapshot keeps legacy GuestPageSize and the counters, which power fresh loses', () => {
    const tb = makeBoard([{ type: 'rng', transport: 'mmio-legacy' }], { slots: 1 });
    const drv = new RawDriver(tb, 0);
    const [q] = bringUp(rigOf(tb) as Rig, drv, [8]);
    q!.chain([W(16)]);
    drv.notify(0);
    drain(tb);
    const read = (): { gps: number; used: number; status: number } => {
      const d = readDoc(snapshot(tb));
      return { gps: d['devices'][0]['registers']['guestPageSize'], used: d['devices'][0]['device']['counters']['usedBuffers'], status: drv.status() };
    };
    const before = read();
    expect(before).toEqual({ gps: 4096, used: 1, status: 0xf });
    expect(tb.board.control({ op: 'power', model: 'snapshot' }).ok).toBe(true);
    expect(read()).toEqual(before);
    expect(tb.board.control({ op: 'power', model: 'fresh' }).ok).toBe(true);
    expect(read()).toEqual({ gps: 0, used: 0, status: 0 });
  });
});
