// The trace recorder against a known run: an rng and an rtc (noirq pair) on
// virtio-mmio, probed, one rng read, one suspend cycle. The file is read
// back and its events checked against what the run did.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { virtioRngDriver, virtioRngRead } from '../../core/drivers/rng.js';
import { virtioRtcNoirqDriver } from '../../core/drivers/rtc.js';
import { kernel } from '../../core/kernel.js';
import type { PmTransition } from '../../core/pm/system.js';
import { EIO } from '../../core/uapi/errno.js';
import { MAGIC_VALUE, REG, type RegName } from '../../core/uapi/mmio.js';
import { VirtioSystem } from '../../tools/system.js';
import { TraceRecorder } from '../../tools/trace/recorder.js';
import { readTrace, type Trace } from '../../tools/trace/reader.js';
import type { AccessRecord, IrqRecord, PmRecord, TraceEvent } from '../../tools/trace/records.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vemu-trace-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Recorded {
  trace: Trace;
  transition: PmTransition;
  raises: number[];
  delivered: number[];
}

/** Boot rng + rtc with a recorder, run `body`, close, read the file back. */
async function record(file: string, body: (sys: VirtioSystem) => PmTransition): Promise<Recorded> {
  kernel.clear();
  // A small batch so the file has several frames.
  const rec = new TraceRecorder(file, { batch: 64 });
  const sys = await VirtioSystem.create(
    rec.systemOptions({ devices: ['rng', 'rtc'], drivers: [virtioRngDriver, virtioRtcNoirqDriver], slots: 4 }),
  );
  let transition: PmTransition;
  try {
    rec.attachPm(sys.dpm);
    transition = body(sys);
  } finally {
    await sys.close();
    rec.close();
  }
  const irq = sys.machine.irq;
  return { trace: readTrace(file), transition, raises: [irq.raiseCount(0), irq.raiseCount(1)], delivered: [irq.deliveredCount(0), irq.deliveredCount(1)] };
}

const accesses = (t: Trace, slot: number): AccessRecord[] => t.events.filter((e): e is AccessRecord => e.type === 'access' && e.slot === slot);
const irqs = (t: Trace, event: IrqRecord['event'], line: number): IrqRecord[] =>
  t.events.filter((e): e is IrqRecord => e.type === 'irq' && e.event === event && e.line === line);
const pms = (t: Trace): PmRecord[] => t.events.filter((e): e is PmRecord => e.type === 'pm');
const shape = (a: AccessRecord): string => `${a.dir === 'r' ? 'R' : 'W'} ${a.reg}`;

describe('trace of probe, rng read and a suspend cycle', () => {
  let run: Recorded;
  beforeAll(async () => {
    run = await record(path.join(dir, 'known.trace'), (sys) => {
      const data = virtioRngRead(sys.device(0)!, 256);
      expect(data).toBeInstanceOf(Uint8Array);
      return sys.suspend();
    });
    expect(run.transition.result).toBe(0);
  });

  it('starts with a header describing the machine and ends with an end record', () => {
    const { header, end, events } = run.trace;
    expect(header.version).toBe(1);
    expect(header.machine.slots).toBe(4);
    expect(header.machine.bus).toBe('worker');
    expect(header.machine.devices.map((d) => [d.slot, d.type, d.transport, d.line])).toEqual([
      [0, 'rng', 'mmio', 0],
      [1, 'rtc', 'mmio', 1],
    ]);
    expect(Number.isNaN(Date.parse(header.start))).toBe(false);
    expect(end).not.toBeNull();
    expect(end!.records).toBe(events.length + 2);
  });

  it('has event times in recording order', () => {
    const times = run.trace.events.map((e) => e.t);
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
  });

  it("records slot 0's probe as the register sequence of VIRTIO-NOTES 8.2.7", () => {
    const log = accesses(run.trace, 0);
    const probe = log.slice(0, log.findIndex((a) => a.reg === 'Status' && a.dir === 'w' && a.value === 0xf) + 1);
    expect(probe.map(shape)).toEqual([
      'R MagicValue', 'R Version', 'R DeviceID', 'R VendorID',
      // register_virtio_device: reset, ACKNOWLEDGE
      'W Status', 'R Status', 'W Status',
      // DRIVER
      'R Status', 'W Status',
      // get_features (high word first), finalize
      'W DeviceFeaturesSel', 'R DeviceFeatures', 'W DeviceFeaturesSel', 'R DeviceFeatures',
      'W DriverFeaturesSel', 'W DriverFeatures', 'W DriverFeaturesSel', 'W DriverFeatures',
      // FEATURES_OK and its check
      'R Status', 'W Status', 'R Status',
      // find_vqs: queue 0
      'W QueueSel', 'R QueueReady', 'R QueueNumMax', 'W QueueNum',
      'W QueueDescLow', 'W QueueDescHigh', 'W QueueDriverLow', 'W QueueDriverHigh', 'W QueueDeviceLow', 'W QueueDeviceHigh',
      'W QueueReady',
      // virtio_device_ready
      'R Status', 'W Status',
    ]);
    expect(probe[0]!.value).toBe(MAGIC_VALUE);
    expect(probe[1]!.value).toBe(2);
    expect(probe[2]!.value).toBe(4);
    expect(probe.every((a) => a.width === 4 && a.off === REG[a.reg as RegName])).toBe(true);
    // Status writes carry the Status seen before and the value written.
    const writes = probe.filter((a) => a.reg === 'Status' && a.dir === 'w');
    expect(writes.map((w) => [w.statusBefore, w.statusAfter])).toEqual([
      [undefined, 0],
      [0, 1],
      [1, 3],
      [3, 0xb],
      [0xb, 0xf],
    ]);
  });

  it('gives every Status write the last Status value of its slot as statusBefore', () => {
    for (const slot of [0, 1]) {
      let last: number | undefined;
      for (const a of accesses(run.trace, slot).filter((x) => x.reg === 'Status')) {
        if (a.dir === 'w') {
          expect(a.statusBefore).toBe(last);
          expect(a.statusAfter).toBe(a.value);
        } else {
          expect(a.statusBefore).toBeUndefined();
        }
        last = a.value;
      }
    }
  });

  it('records the PM callbacks in the order the PM core ran them, with results', () => {
    const after = pms(run.trace).filter((p) => p.when === 'after');
    expect(after.map((p) => [p.phase, p.slot, p.result])).toEqual(run.transition.records.map((r) => [r.phase, r.slot, r.result]));
    expect(after.map((p) => `${p.phase}@${p.slot}`)).toEqual([
      'suspend@1', 'suspend@0', 'suspend_noirq@1', 'suspend_noirq@0', 'resume_noirq@0', 'resume_noirq@1', 'resume@0', 'resume@1',
    ]);
    // Each callback is bracketed: its 'before' comes right before anything it did.
    const all = pms(run.trace);
    for (let i = 0; i < all.length; i += 2) {
      expect([all[i]!.when, all[i + 1]!.when]).toEqual(['before', 'after']);
      expect(all[i]!.phase).toBe(all[i + 1]!.phase);
      expect(all[i]!.slot).toBe(all[i + 1]!.slot);
    }
  });

  it('records the noirq masking around the noirq callbacks', () => {
    const ev = run.trace.events;
    const idx = (pred: (e: TraceEvent) => boolean): number => ev.findIndex(pred);
    const firstNoirq = idx((e) => e.type === 'pm' && e.phase === 'suspend_noirq');
    const lastResumeNoirq = ev.length - 1 - [...ev].reverse().findIndex((e) => e.type === 'pm' && e.phase === 'resume_noirq');
    for (const line of [0, 1]) {
      const mask = idx((e) => e.type === 'irq' && e.event === 'mask' && e.line === line);
      const unmask = idx((e) => e.type === 'irq' && e.event === 'unmask' && e.line === line);
      expect(mask).toBeGreaterThanOrEqual(0);
      expect(mask).toBeLessThan(firstNoirq);
      expect(unmask).toBeGreaterThan(lastResumeNoirq);
    }
  });

  it('records deliveries, raises and acknowledgements as the controller counted them', () => {
    for (const line of [0, 1]) {
      expect(irqs(run.trace, 'deliver', line).length).toBe(run.delivered[line]);
      const raised = irqs(run.trace, 'raise', line).reduce((n, r) => n + (r.value ?? 0), 0);
      expect(raised).toBe(run.raises[line]);
    }
    expect(irqs(run.trace, 'deliver', 0).length).toBeGreaterThanOrEqual(1);
    // vm_interrupt reads InterruptStatus and acknowledges what it read.
    const ev = run.trace.events;
    ev.forEach((e, i) => {
      if (e.type === 'access' && e.reg === 'InterruptACK') {
        expect(ev[i + 1]).toMatchObject({ type: 'irq', event: 'ack', line: e.slot, slot: e.slot, value: e.value });
      }
    });
    expect(irqs(run.trace, 'ack', 0).length).toBeGreaterThanOrEqual(1);
    // A delivery's handler reads InterruptStatus of its own slot next.
    ev.forEach((e, i) => {
      if (e.type === 'irq' && e.event === 'deliver') expect(ev[i + 1]).toMatchObject({ type: 'access', slot: e.line, reg: 'InterruptStatus', dir: 'r' });
    });
  });

  it('records the probe scan of empty windows against their slots', () => {
    for (const slot of [2, 3]) {
      const mmio = accesses(run.trace, slot).filter((a) => !a.reg.startsWith('css.'));
      expect(mmio.map((a) => [shape(a), a.value])).toEqual([
        ['R MagicValue', MAGIC_VALUE],
        ['R Version', 2],
        ['R DeviceID', 0],
      ]);
      // The ccw scan of the same slot's subchannel window: no device there (CuType 0).
      const css = accesses(run.trace, slot).filter((a) => a.reg.startsWith('css.'));
      for (const a of css) expect(a.reg).toMatch(/^css\.\w+$/);
      if (css.length > 0) expect(css[0]).toMatchObject({ reg: 'css.CuType', dir: 'r', value: 0 });
    }
  });
});

describe('trace of a PM transition with an injected failure', () => {
  it('records the injected callback (which runs no hooks) with its result, and the abort', async () => {
    const run = await record(path.join(dir, 'inject.trace'), (sys) => {
      sys.injectPmFailure({ phase: 'suspend_noirq', device: 1, errno: EIO });
      return sys.suspend();
    });
    expect(run.transition.result).toBe(-EIO);
    const after = pms(run.trace).filter((p) => p.when === 'after');
    expect(after.map((p) => [p.phase, p.slot, p.result, p.injected ?? false])).toEqual(
      run.transition.records.map((r) => [r.phase, r.slot, r.result, r.injected ?? false]),
    );
    const inj = pms(run.trace).filter((p) => p.injected);
    expect(inj).toEqual([expect.objectContaining({ phase: 'suspend_noirq', slot: 1, result: -EIO, when: 'after' })]);
    expect(pms(run.trace).some((p) => p.when === 'before' && p.phase === 'suspend_noirq' && p.slot === 1)).toBe(false);
  });
});

describe('trace across hibernation', () => {
  it('keeps recording through the image restore (the recorder is not kernel memory)', async () => {
    const run = await record(path.join(dir, 'hibernate.trace'), (sys) => sys.hibernate());
    expect(run.transition.result).toBe(0);
    // Every callback of both kernels, in order, the boot kernel's marked as such.
    const after = pms(run.trace).filter((p) => p.when === 'after');
    const tag = (k: string | undefined) => (k ? `(${k})` : '');
    expect(after.map((p) => `${p.phase}@${p.slot}${tag(p.kernel)}`)).toEqual(
      run.transition.records.map((r) => `${r.phase}@${r.slot}${tag(r.kernel)}`),
    );
    expect(after.filter((p) => p.kernel === 'boot').map((p) => p.phase)).toEqual(['freeze', 'freeze', 'freeze_noirq', 'freeze_noirq']);
    expect(after.map((p) => p.phase)).toContain('thaw');
    expect(after.map((p) => p.phase)).toContain('restore');
    // hibernation_mode shutdown (the default): device_shutdown, last device first, and no poweroff callbacks
    expect(after.filter((p) => p.phase === 'shutdown').map((p) => p.slot)).toEqual([1, 0]);
    expect(after.some((p) => p.phase.startsWith('poweroff'))).toBe(false);
    // The boot kernel's probe after power-on is on the bus too: a second MagicValue read of slot 0.
    expect(accesses(run.trace, 0).filter((a) => a.reg === 'MagicValue').length).toBe(2);
  }, 30_000);
});
