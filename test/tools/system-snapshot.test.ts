// A system snapshotted mid-run and restored into a new device worker
// continues the same run to the same device-visible results as an
// uninterrupted run: the data read back from the disk, the console's
// output, the ring areas in guest RAM and the devices' own state and
// counters. Also: a fork in the middle of a PM cycle (from a PM hook), a
// restore after the system ran on past the snapshot (the kernel rewinds),
// and the refusals of the API.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { virtblkRead, virtblkWrite } from '../../core/drivers/blk.js';
import { virtconsReadWait, virtconsWrite } from '../../core/drivers/console.js';
import { virtioRngRead } from '../../core/drivers/rng.js';
import { viortcDev, viortcRead } from '../../core/drivers/rtc.js';
import { kernel } from '../../core/kernel.js';
import { VIRTIO_NOIRQ_RESTORED } from '../../core/virtio.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import { Machine } from '../../emulator/machine.js';
import { SnapshotError } from '../../emulator/snapshot/fields.js';
import { addr64 } from '../../emulator/vring/guest-ram.js';
import type { PmTransition } from '../../core/pm/system.js';
import { VirtioSystem, type PowerModel } from '../../tools/system.js';
import { readDoc, type DocData } from '../helpers/snapshot-docs.js';

const dir = mkdtempSync(join(tmpdir(), 'virtio-snap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const systems: VirtioSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close()));
  kernel.clear();
});

const RNG = 0;
const BLK = 1;
const CONSOLE = 2;
const RTC = 3;

const pattern = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed * 31 + (i >> 9)) & 0xff);

async function boot(name: string, transport: TransportKind = 'mmio'): Promise<{ sys: VirtioSystem; out: string }> {
  const out = join(dir, `${name}.out`);
  const sys = await VirtioSystem.create({
    slots: 4,
    ramSize: 8 << 20,
    devices: [
      { type: 'rng', transport },
      { type: 'blk', transport, options: { size: '2M' } },
      { type: 'console', transport, options: { out } },
      { type: 'rtc', transport },
    ],
  });
  systems.push(sys);
  return { sys, out };
}

/** One step of the run: driver-level I/O or a system sleep, each checked. */
type Step = (sys: VirtioSystem) => void;

const written: [number, number][] = [
  [0, 1],
  [64, 2],
  [1000, 3],
  [8, 4],
];

const write = (i: number): Step => (sys) => {
  const [sector, seed] = written[i]!;
  expect(virtblkWrite(sys.device(BLK)!, sector, pattern(8 * 512, seed))).toBe(8 * 512);
};
const rng = (n: number): Step => (sys) => expect((virtioRngRead(sys.device(RNG)!, n) as Uint8Array).length).toBe(n);
const say = (text: string): Step => (sys) => expect(virtconsWrite(sys.device(CONSOLE)!, text)).toBe(text.length);
const hear = (text: string): Step => (sys) => {
  const r = sys.machine.control({ op: 'inject', slot: CONSOLE, event: 'input', args: { data: text } });
  expect(r.ok).toBe(true);
  expect(new TextDecoder().decode(virtconsReadWait(sys.device(CONSOLE)!, text.length) as Uint8Array)).toBe(text);
};
const clock: Step = (sys) => expect(typeof viortcRead(viortcDev(sys.device(RTC)!)!, 0)).toBe('bigint');
/** A transition's result, and the callbacks that failed (with why), for a readable failure. */
const outcome = (t: PmTransition): string =>
  [String(t.result), ...t.records.filter((r) => r.result).map((r) => `${r.phase}@${r.slot}: ${r.result} ${r.error ?? ''}`), ...kernel.messages.filter((m) => m.level === 'err').map((m) => m.msg)].join('; ');
const suspend = (power: PowerModel): Step => (sys) => expect(outcome(sys.suspend({ power }))).toBe('0');
const hibernate = (power: PowerModel, mode: 'shutdown' | 'platform' = 'shutdown'): Step => (sys) => expect(outcome(sys.hibernate({ power, mode }))).toBe('0');

const RUN: Step[] = [
  write(0),
  rng(256),
  say('hello\n'),
  hear('ping'),
  clock,
  suspend('retain'),
  write(1),
  rng(64),
  // a snapshot is taken after one of the steps above
  say('after the fork\n'),
  hibernate('fresh'),
  write(2),
  hear('pong'),
  suspend('snapshot'),
  clock,
  write(3),
  say('bye\n'),
  rng(1024),
];

/** The ring areas in guest RAM (split: the used ring; packed: the descriptor ring), by slot and queue. */
function ringAreas(sys: VirtioSystem, doc: DocData): string[] {
  const u8 = sys.machine.mem.u8;
  const base = sys.machine.mem.base;
  const out: string[] = [];
  for (const d of doc['devices']) {
    for (const [q, s] of (d['device']['queues'] as DocData[]).entries()) {
      if (!s['ready']) continue;
      const r = s['regs'];
      const at = s['kind'] === 'split' ? addr64(r['deviceLo'], r['deviceHi']) - base : addr64(r['descLo'], r['descHi']) - base;
      const len = s['kind'] === 'split' ? 4 + 8 * r['num'] : 16 * r['num'];
      out.push(`${d['slot']}.${q} ${s['kind']} ${Buffer.from(u8.subarray(at, at + len)).toString('hex')}`);
    }
  }
  return out;
}

/** What the devices show at the end of a run. */
function results(sys: VirtioSystem, out: string): unknown {
  const disk = written.map(([sector]) => Buffer.from(virtblkRead(sys.device(BLK)!, sector, 8) as Uint8Array).toString('hex'));
  const r = sys.machine.control({ op: 'snapshot' });
  if (!r.ok) throw new Error(r.error);
  const doc = readDoc(r.value as Uint8Array);
  const stats = (sys.machine.control({ op: 'stats' }) as { ok: true; value: { slots: Record<string, unknown>[] } }).value.slots.map((s) => ({
    status: s['status'],
    usedBuffers: s['usedBuffers'],
    guestErrors: s['guestErrors'],
    ringErrors: s['ringErrors'],
    deviceErrors: s['deviceErrors'],
    configInterrupts: s['configInterrupts'],
  }));
  // The device state but for what depends on timing between the threads
  // (kicks and interrupts the EVENT_IDX suppression decided).
  const devices = (doc['devices'] as DocData[]).map((d) => {
    const { counters: _c, ...device } = d['device'];
    return { registers: { ...d['registers'], irqRaised: 0, interruptStatus: 0 }, device: { ...device, queues: device['queues'].map((q: DocData) => ({ ...q, ring: q['ring'] && { ...q['ring'], signalledUsed: 0, signalledValid: 0, unsignalled: 0, usedSinceSignal: 0, deviceFlags: 0 } })) } };
  });
  return { disk, console: readFileSync(out, 'utf8'), rings: ringAreas(sys, doc), stats, devices, warnings: kernel.warnings.length };
}

function run(sys: VirtioSystem, steps: Step[]): void {
  for (const s of steps) s(sys);
}

describe('snapshot and restore of a running system', () => {
  for (const transport of ['mmio', 'mmio-legacy'] as const) {
    for (const at of [5, 7]) {
      it(`restored into a new worker after step ${at} (${transport}), the run ends as an uninterrupted one does`, async () => {
        const a = await boot(`whole-${transport}-${at}`, transport);
        run(a.sys, RUN);
        const expected = results(a.sys, a.out) as { rings: string[]; console: string };
        // Every queue of the four devices, and everything the console sent.
        expect(expected.rings.length).toBe(5);
        expect(expected.console).toBe('hello\nafter the fork\nbye\n');

        const b = await boot(`forked-${transport}-${at}`, transport);
        run(b.sys, RUN.slice(0, at + 1));
        const snap = b.sys.snapshot();
        const before = b.sys.machine;
        const sys = await VirtioSystem.restore(snap.doc, snap.ram, { kernel: snap.kernel });
        expect(sys).toBe(b.sys);
        expect(sys.machine).not.toBe(before);
        expect(before.closed).toBe(true);
        run(sys, RUN.slice(at + 1));
        expect(results(sys, b.out)).toEqual(expected);
        expect(kernel.warnings).toEqual([]);
      });
    }
  }

  it('a system that ran on past its snapshot comes back to it: the kernel rewinds, the new worker has the devices as they were', async () => {
    const a = await boot('rewind-whole');
    run(a.sys, RUN);
    const expected = results(a.sys, a.out);

    const b = await boot('rewind-forked');
    run(b.sys, RUN.slice(0, 8));
    const snap = b.sys.snapshot();
    // A branch the restore undoes: disk writes, reads, a sleep (and no console output, which is the host's file).
    run(b.sys, [write(3), rng(4096), hibernate('reset', 'platform'), write(2)]);
    const sys = await VirtioSystem.restore(snap.doc, snap.ram, { kernel: snap.kernel });
    run(sys, RUN.slice(8));
    expect(results(sys, b.out)).toEqual(expected);
  });

  it('forked in the middle of a PM cycle (devices frozen, lines masked), the cycle completes on the new worker as it does without the fork', async () => {
    const phasesOf = (t: { records: { phase: string; slot?: number; result: number }[] }): string[] => t.records.map((r) => `${r.phase}@${r.slot}:${r.result}`);
    const a = await boot('midcycle-whole');
    run(a.sys, RUN.slice(0, 5));
    const ta = a.sys.suspend({ power: 'reset' });
    run(a.sys, RUN.slice(6));
    const expected = results(a.sys, a.out);

    const b = await boot('midcycle-forked');
    run(b.sys, RUN.slice(0, 5));
    const spare = await b.sys.spareMachine();
    const old = b.sys.machine;
    let forkedAt: string | null = null;
    b.sys.dpm.hooks.push((e) => {
      // After the last device's suspend_noirq: every device frozen, every line masked.
      if (forkedAt || e.when !== 'after' || e.phase !== 'suspend_noirq' || e.slot !== RNG) return;
      expect(b.sys.machine.irq.isMasked(RNG)).toBe(true);
      b.sys.switchMachine(spare);
      forkedAt = `${e.phase}@${e.slot}`;
    });
    const tb = b.sys.suspend({ power: 'reset' });
    expect(forkedAt).toBe('suspend_noirq@0');
    expect(b.sys.machine).toBe(spare);
    expect(old.closed).toBe(true);
    expect(phasesOf(tb)).toEqual(phasesOf(ta));
    expect(b.sys.device(RTC)!.noirqState).toBe(VIRTIO_NOIRQ_RESTORED);
    run(b.sys, RUN.slice(6));
    expect(results(b.sys, b.out)).toEqual(expected);
  });

  it('forks between resume_noirq and resume of a hibernation restore too', async () => {
    const b = await boot('midcycle-hibernate');
    run(b.sys, RUN.slice(0, 5));
    const spare = await b.sys.spareMachine({ bus: 'inthread' });
    let forked = false;
    b.sys.dpm.hooks.push((e) => {
      if (forked || e.when !== 'after' || e.phase !== 'restore_noirq' || e.kernel) return;
      b.sys.switchMachine(spare);
      forked = true;
    });
    expect(b.sys.hibernate({ power: 'fresh' }).result).toBe(0);
    expect(forked).toBe(true);
    expect(b.sys.machine.busKind).toBe('inthread');
    run(b.sys, RUN.slice(6));
    expect(kernel.warnings).toEqual([]);
  });

  it('the API refuses what it cannot do, with nothing changed', async () => {
    const { sys } = await boot('refusals');
    run(sys, RUN.slice(0, 3));
    const snap = sys.snapshot();
    const machine = sys.machine;
    await expect(VirtioSystem.restore(snap.doc, snap.ram)).rejects.toThrow(/needs options\.kernel/);
    await expect(VirtioSystem.restore(snap.doc, snap.ram.subarray(1), { kernel: snap.kernel })).rejects.toThrow(/RAM image must be 8388608 bytes/);
    await expect(VirtioSystem.restore(snap.doc.subarray(0, 50), snap.ram, { kernel: snap.kernel })).rejects.toThrow(SnapshotError);
    const other = await Machine.create({ devices: ['rng'], slots: 4, ramSize: 8 << 20, bus: 'inthread' });
    const doc = other.control({ op: 'snapshot' });
    await other.close();
    await expect(VirtioSystem.restore((doc as { value: Uint8Array }).value, snap.ram, { kernel: snap.kernel })).rejects.toThrow(/not a snapshot of this system's machine: slot 1: the snapshot has nothing, this machine blk on mmio/);
    expect(() => sys.switchMachine(machine)).toThrow(/spareMachine/);
    // Still on its machine, working.
    expect(sys.machine).toBe(machine);
    run(sys, RUN.slice(3));
    expect(kernel.warnings).toEqual([]);
  });
});

describe('Machine.restore: the device side alone, from a document and a RAM image', () => {
  it('carries a RAM disk of several MiB through the worker in frames, both ways', async () => {
    const { sys } = await boot('framed');
    const big = pattern(3 << 20, 9);
    expect(virtblkWrite(sys.device(BLK)!, 0, big.subarray(0, 1 << 20))).toBe(1 << 20);
    const snap = sys.snapshot();
    expect(snap.doc.length).toBeGreaterThan(1 << 20);
    const m = await Machine.restore(snap.doc, snap.ram);
    try {
      const r = m.control({ op: 'snapshot' });
      expect(r.ok && Buffer.from(r.value as Uint8Array).equals(Buffer.from(snap.doc))).toBe(true);
      await expect(Machine.restore(snap.doc, snap.ram.subarray(0, 4096))).rejects.toThrow(/RAM image must be 8388608 bytes/);
    } finally {
      await m.close();
    }
  });
});

describe('power model snapshot', () => {
  for (const transport of ['mmio', 'mmio-legacy'] as const) {
    it(`every device (${transport}) across suspend and hibernation (shutdown and platform) cycles: state saved at power-off and loaded into new devices`, async () => {
      const { sys } = await boot(`power-${transport}`, transport);
      run(sys, RUN.slice(0, 5));
      const stats = (): { usedBuffers: number }[] => (sys.machine.control({ op: 'stats' }) as { ok: true; value: { slots: { usedBuffers: number }[] } }).value.slots;
      for (const step of [suspend('snapshot'), hibernate('snapshot'), hibernate('snapshot', 'platform'), suspend('snapshot')]) {
        const used = stats().map((s) => s.usedBuffers);
        step(sys);
        // New device instances, but their counters carry on (power fresh starts them from zero).
        stats().forEach((s, i) => expect(s.usedBuffers, `slot ${i}`).toBeGreaterThanOrEqual(used[i]!));
        run(sys, [write(1), rng(64), say('cycle\n'), hear('x'), clock]);
      }
      for (const [i, [sector, seed]] of written.slice(0, 2).entries()) {
        expect(Buffer.from(virtblkRead(sys.device(BLK)!, sector, 8) as Uint8Array).equals(Buffer.from(pattern(8 * 512, seed))), `write ${i}`).toBe(true);
      }
      expect(kernel.warnings).toEqual([]);
    });
  }
});
