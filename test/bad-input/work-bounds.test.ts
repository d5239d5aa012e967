// BI-29 (VIRTIO-NOTES §6; CVE-2019-3900): work per notification is bounded
// by the device core's weight (vhost's), so one busy queue cannot starve
// another queue, another device or the register path, and a notification
// storm cannot grow the deferred-work queue: at most one work item per queue
// is ever pending. Measured deterministically (work items, chains served),
// never by time.
import { describe, expect, it } from 'vitest';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_DRIVER_OK as DRIVER_OK, VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { DEFAULT_QUEUE_WEIGHT } from '../../emulator/virtio/device-core.js';
import { W, WRITE, type QueueBuilder } from '../../tools/testkit/queue-builder.js';
import { DUT, OTHER, bringUp, expectRecovered, onBoard, pendingWorkItems, request, workerRig, type Rig } from './harness.js';
import { ECHO_Q, HOLD_Q, PROBE_TYPE } from './probe-device.js';

const BIG_RNG = (queueSize: number) => ({ dut: { type: 'rng' as const, transport: 'mmio' as const, options: { queueSize } } });

/** Make n one-descriptor chains available on q (one buffer shared by all: only the count matters). */
function flood(q: QueueBuilder, n: number, len = 8): void {
  const buf = q.buffer(W(len)).addr;
  const heads: number[] = [];
  for (let i = 0; i < n; i++) heads.push(q.raw([[i, { addr: buf, len, flags: WRITE }]], { publish: false }));
  q.publish(...heads);
}

/** Run one deferred work item at a time until cond holds; returns the items run. */
function stepUntil(rig: Rig, cond: () => boolean): number {
  const board = rig.dut.tb.board;
  let n = 0;
  while (!cond()) {
    if (!board.hasDeferred()) throw new Error('no deferred work left and the condition does not hold');
    board.runDeferred(1);
    n++;
  }
  return n;
}

describe('BI-29 work per notification is bounded', () => {
  onBoard(
    'BI-29 one kick over 4096 available chains: another device is served after one weight of work, and registers answer meanwhile',
    async (rig) => {
      const [q] = bringUp(rig, rig.dut, [4096]);
      await rig.settle();
      flood(q!, 4096);
      rig.dut.notify(0);
      const c = rig.otherQ.chain([W(8)]);
      rig.other.notify(0);
      stepUntil(rig, () => rig.otherQ.usedIdx() === 1);
      expect(rig.otherQ.usedElem(0)).toEqual({ id: c.head, len: 8 });
      // The flooded queue got exactly one weight's worth before the other device's turn.
      expect(q!.usedIdx()).toBe(DEFAULT_QUEUE_WEIGHT);
      expect(rig.dut.read(REG.Status) & DRIVER_OK).toBe(DRIVER_OK);
      expect(rig.dut.tb.board.hasDeferred(), 'the flooded queue still has work queued').toBe(true);
      await rig.settle();
      expect(q!.usedIdx()).toBe(4096);
      expect(rig.dut.status() & NEEDS_RESET).toBe(0);
      await expectRecovered(rig);
    },
    BIG_RNG(4096),
  );
  onBoard(
    "BI-29 a flooded queue does not starve its device's other queue",
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [256, 8]);
      await rig.settle();
      flood(qs[ECHO_Q]!, 256);
      rig.dut.notify(ECHO_Q);
      qs[HOLD_Q]!.chain([W(8)]);
      rig.dut.notify(HOLD_Q);
      // FIFO work items: the echo queue's first slice (one weight, 16 chains), then the hold queue's.
      stepUntil(rig, () => qs[ECHO_Q]!.usedIdx() >= 16);
      expect(qs[ECHO_Q]!.usedIdx()).toBe(16);
      rig.dut.tb.board.runDeferred(1);
      rig.dut.tb.board.control({ op: 'inject', slot: DUT, event: 'complete' });
      expect(qs[HOLD_Q]!.usedIdx(), 'the other queue was served before the flood drained').toBe(1);
      expect(qs[ECHO_Q]!.usedIdx()).toBeLessThan(256);
      await rig.settle();
      expect(qs[ECHO_Q]!.usedIdx()).toBe(256);
      await expectRecovered(rig, [8, 8]);
    },
    { dut: { type: PROBE_TYPE, transport: 'mmio' }, weight: 16 },
  );
  onBoard('BI-29 a notification storm mixed with QueueReady toggles and resets never queues more than one work item per queue', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await rig.settle();
    for (let i = 0; i < 10_000; i++) {
      rig.dut.write(REG.QueueReady, 0);
      rig.dut.write(REG.QueueReady, 1);
      rig.dut.notify(0);
      rig.other.notify(0);
    }
    expect(pendingWorkItems(rig)).toBeLessThanOrEqual(2);
    for (let i = 0; i < 2_000; i++) {
      rig.dut.reset();
      rig.dut.negotiate();
      q!.program(rig.dut, 0);
      rig.dut.driverOk();
      rig.dut.notify(0);
    }
    expect(pendingWorkItems(rig)).toBeLessThanOrEqual(1);
    await expectRecovered(rig);
  });
});

describe('BI-29 through the device worker', () => {
  it('BI-29 one kick over 8192 chains: a register read is answered and the other device is served; everything completes [worker machine]', async () => {
    const rig = await workerRig({ ...BIG_RNG(8192), ramSize: 4 << 20 });
    try {
      const [q] = bringUp(rig, rig.dut, [8192]);
      await rig.settle();
      const chains = [];
      for (let i = 0; i < 8192; i++) chains.push(q!.chain([W(64)], { publish: false }).head);
      q!.publish(...chains);
      rig.dut.notify(0);
      expect(rig.dut.read(REG.MagicValue)).toBe(0x74726976);
      expect(rig.dut.status() & DRIVER_OK).toBe(DRIVER_OK);
      const r = await request(rig, rig.other, rig.otherQ, 0, [W(16)]);
      expect(r.used.len).toBe(16);
      await rig.until('all 8192 chains used', () => q!.usedIdx() === 8192);
      expect(rig.dut.status() & NEEDS_RESET).toBe(0);
      await expectRecovered(rig);
    } finally {
      await rig.close();
    }
  });
  it('BI-29 a storm of 20000 notifications on two devices: every one counted, the worker still serves [worker machine]', async () => {
    const rig = await workerRig();
    try {
      const [q] = bringUp(rig, rig.dut, [8]);
      for (let i = 0; i < 10_000; i++) {
        rig.dut.notify(0);
        rig.other.notify(0);
      }
      expect(rig.stats(DUT).notifications).toBe(10_000);
      expect(rig.stats(OTHER).notifications).toBeGreaterThanOrEqual(10_000);
      expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
      await expectRecovered(rig);
    } finally {
      await rig.close();
    }
  });
});
