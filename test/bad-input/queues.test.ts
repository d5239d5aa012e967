// BI-13..BI-18 and BI-27 (VIRTIO-NOTES §6): the queue registers as a hostile
// driver programs them. Layouts are validated when the queue is enabled
// (QueueReady=1, legacy QueuePFN) and a bad one leaves the queue disabled;
// layout registers of a ready queue are ignored; notifications the device
// cannot act on are ignored and counted; QueueReset completes within the
// write and kills what was in flight.
import { describe, expect } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import { VIRTIO_F_RING_RESET, bit } from '../../core/uapi/features.js';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { POISON, QueueBuilder, R, W } from '../../tools/testkit/queue-builder.js';
import { snapshot, writesOutside } from '../../tools/testkit/ranges.js';
import { splitFeatures } from '../helpers/raw-driver.js';
import { bringUp, expectRecovered, kick, onBoard, onBoth, pendingWorkItems, request, type Rig } from './harness.js';
import { ECHO_Q, HOLD_Q, PROBE_TYPE, ProbeDevice } from './probe-device.js';

const PROBE = { dut: { type: PROBE_TYPE, transport: 'mmio' as const } };
const LEGACY = { dut: { type: 'rng' as const, transport: 'mmio-legacy' as const } };

/** Program queue 0 of the device under test with raw values, write QueueReady=1, return QueueReady read back. */
function tryEnable(rig: Rig, num: number, desc: number, avail: number, used: number): number {
  rig.dut.programQueue(0, num, desc, avail, used);
  rig.dut.write(REG.QueueReady, 1);
  return rig.dut.read(REG.QueueReady);
}

/** Every byte of guest RAM that changed since the snapshot. */
function changed(rig: Rig, before: Uint8Array): { addr: number; len: number }[] {
  return writesOutside(rig.mem, before, []);
}

/** A refused queue is not used: DRIVER_OK, a chain and a kick on it do nothing. */
async function expectQueueUnused(rig: Rig, q: QueueBuilder): Promise<void> {
  rig.dut.driverOk();
  q.chain([W(8)]);
  await kick(rig, rig.dut, 0);
  expect(q.usedIdx()).toBe(0);
  expect(rig.dut.status() & NEEDS_RESET).toBe(0);
}

describe('BI-13 bad QueueNum', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['3 (not a power of 2)', 3],
    ['2048 (> QueueNumMax 1024)', 2048],
    ['0x10000 (u16 truncation would give 0)', 0x1_0000],
    ['0xffffffff', 0xffff_ffff],
  ];
  for (const [name, num] of cases) {
    onBoard(`BI-13 QueueNum ${name}: validated at QueueReady=1, the queue stays disabled`, async (rig) => {
      rig.dut.negotiate();
      const q = new QueueBuilder(rig.mem, rig.alloc, 8);
      expect(tryEnable(rig, num, q.desc, q.avail, q.used)).toBe(0);
      expect(rig.stats().lastGuestError).toMatch(/not enabled: QueueNum/);
      await expectQueueUnused(rig, q);
      await expectRecovered(rig);
    });
  }
  onBoth('BI-13 QueueNum 0 through QueueReady=1 does not enable the queue', async (rig) => {
    rig.dut.negotiate();
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    expect(tryEnable(rig, 0, q.desc, q.avail, q.used)).toBe(0);
    await expectQueueUnused(rig, q);
    await expectRecovered(rig);
  });
  onBoard(
    'BI-13 legacy: QueuePFN with a bad QueueNum leaves QueuePFN 0',
    async (rig) => {
      rig.dut.negotiate();
      rig.dut.write(REG.GuestPageSize, 4096);
      const q = QueueBuilder.legacy(rig.mem, rig.alloc, 8);
      rig.dut.write(REG.QueueSel, 0);
      rig.dut.write(REG.QueueNum, 5);
      rig.dut.write(REG.QueuePFN, q.desc / 4096);
      expect(rig.dut.read(REG.QueuePFN)).toBe(0);
      await expectQueueUnused(rig, q);
      await expectRecovered(rig);
    },
    LEGACY,
  );
});

describe('BI-14 bad ring placement', () => {
  const cases: [string, (rig: Rig, q: QueueBuilder) => [number, number, number]][] = [
    ['descriptor table not 16-aligned', (_r, q) => [q.desc + 8, q.avail, q.used]],
    ['driver area not 2-aligned', (_r, q) => [q.desc, q.avail + 1, q.used]],
    ['device area not 4-aligned', (_r, q) => [q.desc, q.avail, q.used + 2]],
    ['driver area overlapping the descriptor table', (_r, q) => [q.desc, q.desc + 0x40, q.used]],
    ['device area overlapping the driver area', (_r, q) => [q.desc, q.avail, q.avail - (q.avail % 4)]],
    ['device area past the end of RAM', (rig, q) => [q.desc, q.avail, rig.mem.base + rig.mem.size]],
    ['descriptor table straddling the end of RAM', (rig, q) => [rig.mem.base + rig.mem.size - 64, q.avail, q.used]],
    ['descriptor table below RAM', (rig, q) => [rig.mem.base - 0x1000, q.avail, q.used]],
    ['descriptor table in the virtio-mmio windows', (_r, q) => [PLATFORM.MMIO_BASE, q.avail, q.used]],
    ['driver area above 4 GiB', (rig, q) => [q.desc, rig.mem.base + 0x1_0000_0000, q.used]],
    ['device area above 2^53', (_r, q) => [q.desc, q.avail, 0xffff_ffff_0000_0000]],
  ];
  for (const [name, layout] of cases) {
    onBoard(`BI-14 ring ${name}: refused at QueueReady=1`, async (rig) => {
      rig.dut.negotiate();
      const q = new QueueBuilder(rig.mem, rig.alloc, 8);
      expect(tryEnable(rig, 8, ...layout(rig, q))).toBe(0);
      expect(rig.stats().lastGuestError).toMatch(/not enabled/);
      await expectQueueUnused(rig, q);
      await expectRecovered(rig);
    });
  }
  onBoth('BI-14 rings inside the register windows are refused', async (rig) => {
    rig.dut.negotiate();
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    const w = PLATFORM.MMIO_BASE;
    expect(tryEnable(rig, 8, w, w + 0x100, w + 0x180)).toBe(0);
    await expectQueueUnused(rig, q);
    await expectRecovered(rig);
  });
  onBoard(
    'BI-14 legacy: a QueuePFN that puts the ring past the end of RAM leaves QueuePFN 0',
    async (rig) => {
      rig.dut.negotiate();
      rig.dut.write(REG.GuestPageSize, 4096);
      rig.dut.write(REG.QueueSel, 0);
      rig.dut.write(REG.QueueNum, 8);
      for (const pfn of [(rig.mem.base + rig.mem.size) / 4096, 0xffff_ffff]) {
        rig.dut.write(REG.QueuePFN, pfn);
        expect(rig.dut.read(REG.QueuePFN)).toBe(0);
      }
      rig.dut.write(REG.GuestPageSize, 0x8000_0000);
      rig.dut.write(REG.QueuePFN, 0xffff_ffff); // 2^63: far beyond 2^53
      expect(rig.dut.read(REG.QueuePFN)).toBe(0);
      expect(rig.internalErrors()).toBe(0);
      await expectRecovered(rig);
    },
    LEGACY,
  );
});

describe('BI-15 QueueReady misuse', () => {
  onBoth('BI-15 QueueReady=1 with no addresses programmed: not enabled', async (rig) => {
    rig.dut.negotiate();
    rig.dut.write(REG.QueueSel, 0);
    rig.dut.write(REG.QueueNum, 8);
    rig.dut.write(REG.QueueReady, 1);
    expect(rig.dut.read(REG.QueueReady)).toBe(0);
    expect(rig.stats().lastGuestError).toMatch(/address is 0/);
    rig.dut.driverOk();
    await kick(rig, rig.dut, 0);
    await expectRecovered(rig);
  });
  onBoard('BI-15 QueueReady values other than 0 and 1 are ignored, on an idle and on a live queue', async (rig) => {
    rig.dut.negotiate();
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    q.program(rig.dut, 0, { ready: false });
    for (const v of [0xff, 2, 0xffff_ffff]) {
      rig.dut.write(REG.QueueReady, v);
      expect(rig.dut.read(REG.QueueReady), `idle queue, QueueReady=${v}`).toBe(0);
    }
    rig.dut.write(REG.QueueReady, 1);
    rig.dut.driverOk();
    for (const v of [0xff, 2, 0xffff_fffe]) {
      rig.dut.write(REG.QueueReady, v);
      expect(rig.dut.read(REG.QueueReady), `live queue, QueueReady=${v}`).toBe(1);
    }
    expect((await request(rig, rig.dut, q, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoard('BI-15 double QueueReady=1 keeps the live queue and its indices', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await request(rig, rig.dut, q!, 0, [W(8)]);
    rig.dut.write(REG.QueueReady, 1);
    await request(rig, rig.dut, q!, 0, [W(8)]);
    expect(q!.usedIdx()).toBe(2);
    await expectRecovered(rig);
  });
  onBoard(
    'BI-15 toggling QueueReady 1→0→1 without reprogramming: chains in flight die, the ring restarts at index 0',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const q = qs[HOLD_Q]!;
      const c = q.chain([W(16)]);
      await kick(rig, rig.dut, HOLD_Q);
      expect(ProbeDevice.last!.held).toHaveLength(1);
      ProbeDevice.last!.keepAcrossReset = true; // a model that forgets to drop them: the core must
      rig.dut.write(REG.QueueSel, HOLD_Q);
      rig.dut.write(REG.QueueReady, 0);
      expect(rig.dut.read(REG.QueueReady)).toBe(0);
      const before = snapshot(rig.mem);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(changed(rig, before)).toEqual([]);
      expect(q.g.bytes(c.bufs[0]!.addr, 16).every((b) => b === POISON)).toBe(true);
      // Re-enable the same layout with a re-zeroed ring, as a driver re-initialising it would.
      const fresh = new QueueBuilder(rig.mem, rig.alloc, 8, q.layout);
      rig.dut.write(REG.QueueReady, 1);
      expect(rig.dut.read(REG.QueueReady)).toBe(1);
      fresh.chain([W(8)]);
      await kick(rig, rig.dut, HOLD_Q);
      ProbeDevice.last!.keepAcrossReset = false;
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(fresh.usedIdx()).toBe(1);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
});

describe('BI-16 QueueSel misuse', () => {
  onBoth('BI-16 QueueSel beyond the queues: QueueNumMax 0, every queue register ignored, the live queue intact', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const decoy = new QueueBuilder(rig.mem, rig.alloc, 8);
    for (const sel of [1, 0xffff, 0xffff_ffff]) {
      const errors = rig.stats().guestErrors;
      rig.dut.write(REG.QueueSel, sel);
      expect(rig.dut.read(REG.QueueNumMax)).toBe(0);
      expect(rig.dut.read(REG.QueueReady)).toBe(0);
      decoy.program(rig.dut, sel);
      rig.dut.write(REG.QueueReady, 0);
      rig.dut.write(REG.QueueReset, 1);
      expect(rig.stats().guestErrors - errors).toBeGreaterThanOrEqual(8);
    }
    rig.dut.write(REG.QueueSel, 0);
    expect(rig.dut.read(REG.QueueReady)).toBe(1);
    expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoard(
    'BI-16 QueueSel moved to another queue while the first is ready: the live queue is untouched',
    async (rig) => {
      rig.dut.negotiate();
      const q0 = new QueueBuilder(rig.mem, rig.alloc, 8);
      q0.program(rig.dut, ECHO_Q);
      const q1 = new QueueBuilder(rig.mem, rig.alloc, 16);
      q1.program(rig.dut, HOLD_Q); // QueueSel=1 and queue 1's layout, while queue 0 is ready
      rig.dut.driverOk();
      rig.dut.write(REG.QueueSel, ECHO_Q);
      expect(rig.dut.read(REG.QueueReady)).toBe(1);
      expect((await request(rig, rig.dut, q0, ECHO_Q, [R(new Uint8Array([1, 2, 3])), W(8)])).used.len).toBe(3);
      q1.chain([W(8)]);
      await kick(rig, rig.dut, HOLD_Q);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(q1.usedIdx()).toBe(1);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
});

describe('BI-17 layout registers written while the queue is live', () => {
  onBoth('BI-17 QueueNum and ring addresses written while QueueReady=1 after DRIVER_OK are ignored: used-ring writes stay in the original ring', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    const decoy = rig.alloc.take(0x1000, 16);
    const errors = rig.stats().guestErrors;
    rig.dut.programQueue(0, 256, decoy, decoy + 0x800, decoy + 0xc00); // 7 writes after QueueSel
    expect(rig.stats().guestErrors - errors).toBe(7);
    const before = snapshot(rig.mem);
    const allowed = [q!.deviceArea()];
    for (let i = 0; i < 20; i++) {
      const r = await request(rig, rig.dut, q!, 0, [W(8)]);
      allowed.push(r.chain.bufs[0]!, { addr: q!.avail, len: 6 + 2 * 8, write: false }, { addr: q!.desc, len: 16 * 8, write: false });
      expect(r.used.len).toBe(8);
    }
    // Bytes the driver itself wrote (buffers it allocated) are allowed; the decoy ring is not.
    expect(writesOutside(rig.mem, before, allowed).filter((r) => r.addr >= decoy && r.addr < decoy + 0x1000)).toEqual([]);
    expect(q!.usedIdx()).toBe(20);
    await expectRecovered(rig);
  });
  onBoard('BI-17 QueueNum and ring addresses written while QueueReady=1 before DRIVER_OK are ignored too', async (rig) => {
    rig.dut.negotiate();
    const q = new QueueBuilder(rig.mem, rig.alloc, 8);
    q.program(rig.dut, 0);
    const decoy = new QueueBuilder(rig.mem, rig.alloc, 16);
    decoy.program(rig.dut, 0, { ready: false });
    rig.dut.driverOk();
    expect((await request(rig, rig.dut, q, 0, [W(8)])).used.len).toBe(8);
    expect(decoy.usedIdx()).toBe(0);
    await expectRecovered(rig);
  });
});

describe('BI-18 notifications the device cannot act on', () => {
  onBoth('BI-18 QueueNotify for a queue that does not exist (1, 0xffff, 0xffffffff, NOTIFICATION_DATA format): ignored and counted', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await rig.settle(); // the scan of ready queues at DRIVER_OK
    q!.chain([W(8)]);
    const s0 = rig.stats();
    for (const v of [1, 0xffff, 0xffff_ffff, 0x0005_0000]) rig.dut.notify(v);
    await rig.settle();
    expect(q!.usedIdx()).toBe(0);
    expect(rig.stats().ignoredNotifications - s0.ignoredNotifications).toBe(4);
    await kick(rig, rig.dut, 0);
    await rig.until('the proper kick is served', () => q!.usedIdx() === 1);
    await expectRecovered(rig);
  });
  onBoard('BI-18 QueueNotify before DRIVER_OK is ignored; buffers made available then are served once at DRIVER_OK', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8], { driverOk: false });
    q!.chain([W(8)]);
    await kick(rig, rig.dut, 0);
    await kick(rig, rig.dut, 0);
    expect(q!.usedIdx()).toBe(0);
    expect(rig.stats().ignoredNotifications).toBe(2);
    rig.dut.driverOk();
    await rig.settle();
    expect(q!.usedIdx()).toBe(1);
    await expectRecovered(rig);
  });
  onBoard('BI-18 QueueNotify for a stopped queue, and after a reset: ignored', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    rig.dut.write(REG.QueueReady, 0);
    q!.chain([W(8)]);
    await kick(rig, rig.dut, 0);
    expect(q!.usedIdx()).toBe(0);
    rig.dut.reset();
    await kick(rig, rig.dut, 0);
    expect(q!.usedIdx()).toBe(0);
    expect(rig.stats().ignoredNotifications).toBe(2);
    await expectRecovered(rig);
  });
  onBoard('BI-18 a storm of spurious kicks on an empty ring queues one work item and consumes nothing', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    await rig.settle();
    for (let i = 0; i < 10_000; i++) rig.dut.notify(0);
    expect(pendingWorkItems(rig)).toBe(1);
    expect(q!.usedIdx()).toBe(0);
    expect(rig.stats().notifications).toBe(10_000);
    await expectRecovered(rig);
  });
});

describe('BI-27 RING_RESET misuse', () => {
  onBoard('BI-27 QueueReset without VIRTIO_F_RING_RESET negotiated is ignored: the queue stays live', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8], { features: (o) => splitFeatures(o) & ~bit(VIRTIO_F_RING_RESET) });
    rig.dut.write(REG.QueueReset, 1);
    expect(rig.dut.read(REG.QueueReady)).toBe(1);
    expect(rig.stats().lastGuestError).toMatch(/without VIRTIO_F_RING_RESET/);
    expect((await request(rig, rig.dut, q!, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoth('BI-27 QueueReset twice, with bad values and a bad QueueSel: complete within the write, harmless', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    rig.dut.write(REG.QueueReset, 2);
    expect(rig.dut.read(REG.QueueReady)).toBe(1);
    rig.dut.write(REG.QueueReset, 1);
    rig.dut.write(REG.QueueReset, 1);
    expect(rig.dut.read(REG.QueueReset)).toBe(0);
    expect(rig.dut.read(REG.QueueReady)).toBe(0);
    rig.dut.write(REG.QueueSel, 9);
    rig.dut.write(REG.QueueReset, 1);
    q!.chain([W(8)]);
    await kick(rig, rig.dut, 0);
    expect(q!.usedIdx()).toBe(0);
    // Re-enable with a new size (spec 2.6.1: the device honours the new configuration).
    const q16 = new QueueBuilder(rig.mem, rig.alloc, 16);
    q16.program(rig.dut, 0);
    expect(rig.dut.read(REG.QueueReady)).toBe(1);
    expect((await request(rig, rig.dut, q16, 0, [W(8)])).used.len).toBe(8);
    await expectRecovered(rig);
  });
  onBoard(
    'BI-27 QueueReset with a request in flight: the late completion writes nothing and sends nothing',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const q = qs[HOLD_Q]!;
      q.chain([W(16)]);
      await kick(rig, rig.dut, HOLD_Q);
      ProbeDevice.last!.keepAcrossReset = true;
      rig.dut.write(REG.QueueSel, HOLD_Q);
      rig.dut.write(REG.QueueReset, 1);
      expect(rig.dut.read(REG.QueueReset)).toBe(0);
      expect(rig.dut.read(REG.QueueReady)).toBe(0);
      const before = snapshot(rig.mem);
      const irqs = rig.stats().irqRaised;
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(changed(rig, before)).toEqual([]);
      expect(rig.stats().irqRaised).toBe(irqs);
      ProbeDevice.last!.keepAcrossReset = false;
      const q1 = new QueueBuilder(rig.mem, rig.alloc, 8);
      q1.program(rig.dut, HOLD_Q);
      q1.chain([W(8)]);
      await kick(rig, rig.dut, HOLD_Q);
      rig.control({ op: 'inject', slot: 0, event: 'complete' });
      expect(q1.usedIdx()).toBe(1);
      await expectRecovered(rig, [8, 8]);
    },
    PROBE,
  );
});
