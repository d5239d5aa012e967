// System sleep with Linux: the model's PM core (core/pm DpmCore, pmSuspend,
// hibernate) driving Linux 6.12's virtio-mmio dev_pm_ops (patch 0003) and
// virtio core (patch 0001) through the module's exports, with the C clock
// drivers of linux/drivers: the noirq pair, freeze/restore only, and the
// consumer whose restore() reads the clock. The cases mirror
// test/core/pm-system.test.ts.
import { describe, expect, it } from 'vitest';
import { EAGAIN, EBUSY, EINVAL, EIO, ENODEV, EOPNOTSUPP } from '../../core/uapi/errno.js';
import { VIRTIO_ID_CLOCK, VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_FAILED } from '../../core/uapi/status.js';
import { VIRTIO_NOIRQ_ENTERED, VIRTIO_NOIRQ_NONE, VIRTIO_NOIRQ_RESTORED } from '../../core/virtio.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import type { BoardStats } from '../../emulator/board.js';
import type { LinuxDriverSpec, LinuxPowerModel, LinuxSystem, LinuxSystemOptions } from '../../linux/host/index.js';
import { TraceBus, formatEntry } from '../helpers/trace-bus.js';
import { boot, built, closeAllAfterEach } from './helpers.js';

const ALL_CALLBACKS = ['freeze', 'restore', 'freeze_noirq', 'restore_noirq'] as const;
/** The model's testDriver(VIRTIO_ID_RNG, { noirq: true }). */
const noirqTestDriver: LinuxDriverSpec = { driver: 'test_driver', deviceId: VIRTIO_ID_RNG, callbacks: ALL_CALLBACKS };

async function bootTraced(devices: LinuxSystemOptions['devices'], drivers: LinuxDriverSpec[], extra: Partial<LinuxSystemOptions> = {}) {
  let trace: TraceBus | null = null;
  const sys = await boot({ devices, drivers, slots: 4, wrapBus: (b) => (trace = new TraceBus(b)), ...extra });
  return { sys, trace: trace! as TraceBus };
}

/** Accesses to one slot's window, as "W Status <- 0x0" lines. */
function windowLog(trace: TraceBus, sys: LinuxSystem, slot: number, from = 0, to = trace.log.length): string[] {
  const base = sys.machine.slotAddr(slot);
  return trace.log
    .slice(from, to)
    .filter((e) => e.addr - e.offset === base)
    .map(formatEntry);
}

function status(sys: LinuxSystem, slot: number): number {
  return sys.kernel.device(slot)!.status;
}

function readsClock(sys: LinuxSystem, slot: number): void {
  expect(typeof sys.kernel.rtcRead(slot)).toBe('bigint');
}

function stats(sys: LinuxSystem): BoardStats {
  const r = sys.machine.control({ op: 'stats' });
  if (!r.ok) throw new Error(r.error);
  return r.value as BoardStats;
}

/** Guest errors the device side counted, per occupied slot. */
function guestErrors(sys: LinuxSystem): number[] {
  return stats(sys)
    .slots.filter((s) => s.type !== null)
    .map((s) => s.guestErrors);
}

/** Run a host query without its trapped accesses (lx_slot_info reads Status) in the trace. */
function quiet<T>(trace: TraceBus, fn: () => T): T {
  trace.recording = false;
  try {
    return fn();
  } finally {
    trace.recording = true;
  }
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

describe.skipIf(!built)('Linux system sleep', () => {
  closeAllAfterEach();

  describe('the PM devices', () => {
    it('one per slot with a virtio device, named after it, with exactly virtio_mmio_pm_ops (the normal and the noirq pair)', async () => {
      const { sys } = await bootTraced(['rng', 'rtc', 'blk'], ['virtio_rng', 'virtio_rtc_noirq']);
      const pds = sys.kernel.pmDevices();
      expect(pds.map((d) => [d.name, d.slot, d.irqLine, d.dev.transport])).toEqual([
        ['virtio0', 0, 0, 'virtio-mmio.0'],
        ['virtio1', 1, 1, 'virtio-mmio.1'],
        ['virtio2', 2, 2, 'virtio-mmio.2'],
      ]);
      const twelve = ['suspend', 'resume', 'freeze', 'thaw', 'poweroff', 'restore', 'suspend_noirq', 'resume_noirq', 'freeze_noirq', 'thaw_noirq', 'poweroff_noirq', 'restore_noirq'];
      expect(sys.kernel.pmOps(0)).toEqual(twelve);
      // Absent callbacks are absent: no prepare/complete, no late/early.
      expect(Object.keys(pds[0]!.ops).filter((k) => pds[0]!.ops[k as keyof typeof pds[0]['ops']])).toEqual(twelve);
      expect(pds[0]!.ops.suspend_late).toBeUndefined();
      expect(sys.kernel.pmCall(0, 'prepare')).toBe(-2); // -ENOENT
      // Unbound transport: no callbacks at all.
      sys.kernel.remove(2);
      expect(sys.kernel.pmOps(2)).toEqual([]);
      expect(pds[2]!.ops.suspend).toBeUndefined();
    });
  });

  describe.each<TransportKind>(['mmio', 'mmio-legacy'])('over %s', (transport) => {
    describe.each<LinuxPowerModel>(['retain', 'reset', 'fresh', 'snapshot'])('suspend with power %s', (power) => {
      it('rng (freeze/restore) and rtc (noirq pair) both work after three cycles', async () => {
        const { sys } = await bootTraced(['rng', 'rtc'], ['virtio_rng', 'virtio_rtc_noirq'], { transport });
        const ok = transport === 'mmio' ? 0x0f : 0x07;
        for (let cycle = 0; cycle < 3; cycle++) {
          const t = sys.suspend({ power });
          expect(t.result).toBe(0);
          expect(t.records.map((r) => `${r.phase}:${r.slot}:${r.result}`)).toEqual([
            'suspend:1:0',
            'suspend:0:0',
            'suspend_noirq:1:0',
            'suspend_noirq:0:0',
            'resume_noirq:0:0',
            'resume_noirq:1:0',
            'resume:0:0',
            'resume:1:0',
          ]);
          expect(sys.kernel.rngRead(0, 100)).toHaveLength(100);
          readsClock(sys, 1);
          expect(sys.kernel.noirqState(1)).toBe(VIRTIO_NOIRQ_RESTORED);
          expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_NONE);
          expect([status(sys, 0), status(sys, 1)]).toEqual([ok, ok]);
        }
        expect(sys.kernel.rtc(1)!.stats.polled).toBe(3);
        expect(sys.kernel.warnings).toEqual([]);
        expect(sys.kernel.log).toEqual([]);
        // fresh: registers at defaults, legacy GuestPageSize included; restore wrote it again
        expect(guestErrors(sys)).toEqual([0, 0]);
      });
    });

    it('the classic clock (freeze/restore only) comes back in its own restore()', async () => {
      const { sys, trace } = await bootTraced(['rtc'], ['virtio_rtc'], { transport });
      let resume = 0;
      sys.dpm.hooks.push((e) => {
        if (e.phase === 'resume' && e.when === 'before') resume = trace.log.length;
      });
      expect(sys.suspend({ power: 'fresh' }).result).toBe(0);
      const rtc = sys.kernel.rtc(0)!;
      expect(rtc).toMatchObject({ driver: 'virtio_rtc', hasVq: true, frozen: false, stats: { polled: 0 } });
      expect(rtc.resumeReading).not.toBeNull();
      const log = windowLog(trace, sys, 0, resume);
      if (transport === 'mmio-legacy') expect(log[0]).toBe('W GuestPageSize <- 0x1000');
      expect(log).toContain('W Status <- 0x0');
      readsClock(sys, 0);
      expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_NONE);
    });
  });

  describe('the register trace of the noirq restore', () => {
    it.each([
      ['split', false, 0x1],
      ['packed', true, 0x5],
    ] as const)('restore_noirq (%s ring): reset, ACK, DRIVER, features, FEATURES_OK read back, the queue re-programmed by vm_reset_vqs, DRIVER_OK once; restore() writes nothing', async (_ring, packed, highFeatures) => {
      const { sys, trace } = await bootTraced([{ type: 'rtc', options: { packed } }], ['virtio_rtc_noirq']);
      let start = 0;
      let afterNoirq = 0;
      const states: (number | null)[] = [];
      sys.dpm.hooks.push((e) => {
        if (e.phase === 'resume_noirq' && e.when === 'before') start = trace.log.length;
        if (e.phase === 'resume_noirq' && e.when === 'after') afterNoirq = trace.log.length;
        if (e.when === 'after') states.push(quiet(trace, () => sys.kernel.noirqState(0)));
      });
      expect(sys.suspend({ power: 'fresh' }).result).toBe(0);
      // suspend, suspend_noirq, resume_noirq, resume
      expect(states).toEqual([VIRTIO_NOIRQ_NONE, VIRTIO_NOIRQ_ENTERED, VIRTIO_NOIRQ_RESTORED, VIRTIO_NOIRQ_RESTORED]);
      const noirq = windowLog(trace, sys, 0, start, afterNoirq);
      const restore = windowLog(trace, sys, 0, afterNoirq);
      const vq = sys.kernel.device(0)!.vq0!;
      // VERSION_1, and RING_PACKED (bit 34) where the device offers it
      expect(noirq[6]).toBe(`W DriverFeatures <- ${hex(highFeatures)}`);
      expect(noirq[8]).toMatch(/^W DriverFeatures <- 0x[0-9a-f]+$/);
      expect(noirq).toEqual([
        'W Status <- 0x0',
        'R Status = 0x0',
        'W Status <- 0x1',
        'R Status = 0x1',
        'W Status <- 0x3',
        'W DriverFeaturesSel <- 0x1',
        noirq[6],
        'W DriverFeaturesSel <- 0x0',
        noirq[8],
        'R Status = 0x3',
        'W Status <- 0xb',
        'R Status = 0xb',
        // vm_reset_vq: select, the checks vm_setup_vq makes, then vm_active_vq
        'W QueueSel <- 0x0',
        'R QueueReady = 0x0',
        `R QueueNumMax = ${hex(vq.size)}`,
        `W QueueNum <- ${hex(vq.size)}`,
        `W QueueDescLow <- ${hex(vq.desc)}`,
        'W QueueDescHigh <- 0x0',
        `W QueueDriverLow <- ${hex(vq.avail)}`,
        'W QueueDriverHigh <- 0x0',
        `W QueueDeviceLow <- ${hex(vq.used)}`,
        'W QueueDeviceHigh <- 0x0',
        'W QueueReady <- 0x1',
        // the driver's restore_noirq: virtio_device_ready_noirq
        'R Status = 0xb',
        'W Status <- 0xf',
        // then its clock read: a kick, polled to completion (no interrupt taken)
        'W QueueNotify <- 0x0',
        // virtio_device_restore_noirq: DRIVER_OK set, so config is enabled
        'R Status = 0xf',
      ]);
      // The latched interrupt is taken once the lines are unmasked; restore() only reads Status.
      expect(restore).toEqual(['R InterruptStatus = 0x1', 'W InterruptACK <- 0x1', 'R Status = 0xf']);
      expect([...noirq, ...restore].filter((l) => l === 'W Status <- 0xf')).toHaveLength(1);
      expect(sys.kernel.rtc(0)!.stats.polled).toBe(1);
      expect(sys.kernel.warnings).toEqual([]);
    });

    it('a legacy (Version 1) device gets GuestPageSize first and its queue through QueuePFN, checked as vm_setup_vq checks it', async () => {
      const { sys, trace } = await bootTraced([{ type: 'rtc', transport: 'mmio-legacy' }], ['virtio_rtc_noirq']);
      let start = 0;
      sys.dpm.hooks.push((e) => {
        if (e.phase === 'resume_noirq' && e.when === 'before') start = trace.log.length;
      });
      expect(sys.suspend({ power: 'fresh' }).result).toBe(0);
      const log = windowLog(trace, sys, 0, start);
      const vq = sys.kernel.device(0)!.vq0!;
      expect(log[0]).toBe('W GuestPageSize <- 0x1000');
      const sel = log.indexOf('W QueueSel <- 0x0');
      expect(log.slice(sel, sel + 6)).toEqual([
        'W QueueSel <- 0x0',
        'R QueuePFN = 0x0',
        `R QueueNumMax = ${hex(vq.size)}`,
        `W QueueNum <- ${hex(vq.size)}`,
        'W QueueAlign <- 0x1000',
        `W QueuePFN <- ${hex(vq.desc / 4096)}`,
      ]);
      readsClock(sys, 0);
      expect(stats(sys).slots[0]!.guestErrors).toBe(0);
    });

    it('device interrupts are masked through the noirq phases and the might_sleep hook sees no sleep there', async () => {
      const { sys } = await bootTraced(['rng', 'rtc'], ['virtio_rng', 'virtio_rtc_noirq']);
      const masked: string[] = [];
      sys.dpm.hooks.push((e) => {
        if (e.when === 'before') masked.push(`${e.phase}:${sys.machine.irq.isMasked(0)}${sys.machine.irq.isMasked(1)}:${sys.kernel.noirqDepth}`);
      });
      expect(sys.suspend().result).toBe(0);
      expect(masked).toEqual([
        'suspend:falsefalse:0',
        'suspend:falsefalse:0',
        'suspend_noirq:truetrue:1',
        'suspend_noirq:truetrue:1',
        'resume_noirq:truetrue:1',
        'resume_noirq:truetrue:1',
        'resume:falsefalse:0',
        'resume:falsefalse:0',
      ]);
      expect(sys.kernel.warnings.filter((w) => w.kind === 'noirq-context')).toEqual([]);
      // the normal phases did sleep (virtio_rng's restore allocates, the config lock...)
      expect(sys.kernel.mightSleep.size).toBeGreaterThan(0);
    });
  });

  describe('the motivating case: a clock that must be back before any restore()', () => {
    // The consumer binds the rng in slot 0, so its restore() runs before the clock's own.
    const consumer: LinuxDriverSpec = { driver: 'clock_consumer', deviceId: VIRTIO_ID_RNG, clock: 'rtc1.0' };

    it('with the noirq pair the clock is back in resume_noirq and the consumer reads it in restore()', async () => {
      const { sys } = await bootTraced(['rng', 'rtc'], [consumer, 'virtio_rtc_noirq']);
      expect(sys.kernel.device(0)!.driver).toBe('clock_consumer(rtc1.0)');
      const t = sys.suspend({ power: 'reset' });
      expect(t.result).toBe(0);
      const reads = sys.kernel.clockConsumerReads(0)!;
      expect(reads).toHaveLength(1);
      expect(typeof reads[0]).toBe('bigint');
      const phases = t.records.map((r) => `${r.phase}:${r.slot}`);
      expect(phases.indexOf('resume_noirq:1')).toBeLessThan(phases.indexOf('resume:0'));
      const rtc = sys.kernel.rtc(1)!;
      expect(rtc.resumeReading).not.toBeNull();
      expect(rtc.stats.polled).toBeGreaterThan(0); // read with device interrupts masked
      expect(reads[0] as bigint).toBeGreaterThanOrEqual(rtc.resumeReading!);
      expect(sys.kernel.warnings.filter((w) => w.kind === 'noirq-context')).toEqual([]);
      expect(status(sys, 0) & VIRTIO_CONFIG_S_FAILED).toBe(0);
    });

    it('with only freeze/restore the clock is still down when the consumer restores: -EAGAIN, its device FAILED', async () => {
      const { sys } = await bootTraced(['rng', 'rtc'], [consumer, 'virtio_rtc']);
      const t = sys.suspend({ power: 'reset' });
      expect(sys.kernel.clockConsumerReads(0)).toEqual([-EAGAIN]);
      expect(t.records.find((r) => r.phase === 'resume' && r.slot === 0)?.result).toBe(-EAGAIN);
      expect(status(sys, 0) & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
      expect(sys.kernel.log.map((m) => `${m.dev}: ${m.msg}`)).toContain('virtio0: PM: failed to resume: error -11');
      // the clock itself comes back in its own restore()
      readsClock(sys, 1);
      expect(sys.kernel.clockRead('rtc1.0')).toEqual(expect.any(BigInt));
    });
  });

  describe('aborted and failed transitions', () => {
    it('an injected failure fails every suspend until clearPmFailures() drops it', async () => {
      const { sys } = await bootTraced(['rtc', 'rng'], ['virtio_rtc_noirq', 'virtio_rng']);
      const i = { phase: 'suspend', device: 1, errno: EIO } as const;
      sys.injectPmFailure(i);
      expect(sys.suspend().result).toBe(-EIO);
      expect(sys.suspend().result).toBe(-EIO);
      sys.clearPmFailures(i);
      expect(sys.suspend().result).toBe(0);
      sys.injectPmFailure(i);
      sys.clearPmFailures();
      expect(sys.suspend().result).toBe(0);
      readsClock(sys, 0);
      expect(sys.kernel.rngRead(1, 8)).toHaveLength(8);
    });

    it('abort before noirq (a peer fails suspend): restore() skips the reinit, the clock works', async () => {
      const { sys, trace } = await bootTraced(['rtc', 'rng'], ['virtio_rtc_noirq', 'virtio_rng']);
      sys.injectPmFailure({ phase: 'suspend', device: 0, errno: EIO });
      const start = trace.log.length;
      const t = sys.suspend();
      expect(t).toMatchObject({ result: -EIO, failedStep: 'suspend' });
      expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_NONE);
      // slot 1 suspended first (reverse order), slot 0 failed: slot 1 resumes
      expect(t.records.map((r) => `${r.phase}:${r.slot}:${r.result}${r.injected ? '!' : ''}`)).toEqual(['suspend:1:0', 'suspend:0:-5!', 'resume:1:0']);
      expect(windowLog(trace, sys, 0, start).filter((l) => l.startsWith('W Status'))).toEqual([]);
      readsClock(sys, 0);
      expect(sys.kernel.rngRead(1, 8)).toHaveLength(8);
    });

    it('a peer failing suspend_noirq after ours succeeded: restore_noirq does the full reinit', async () => {
      // suspend_noirq runs in reverse order: slot 1 (rtc) first, then slot 0 fails.
      const { sys, trace } = await bootTraced(['rng', 'rtc'], [noirqTestDriver, 'virtio_rtc_noirq']);
      expect(sys.kernel.device(0)!.driver).toBe('test-driver-4');
      sys.injectPmFailure({ phase: 'suspend_noirq', device: 0, errno: EIO });
      const start = trace.log.length;
      const t = sys.suspend();
      expect(t.result).toBe(-EIO);
      expect(t.records.filter((r) => r.phase === 'resume_noirq').map((r) => r.slot)).toEqual([1]);
      expect(windowLog(trace, sys, 1, start)).toContain('W Status <- 0x0');
      expect(sys.kernel.noirqState(1)).toBe(VIRTIO_NOIRQ_RESTORED);
      expect(windowLog(trace, sys, 0, start)).not.toContain('W Status <- 0x0');
      readsClock(sys, 1);
    });

    it('our freeze_noirq failing: the state stays NONE and restore() carries on without reinit', async () => {
      const { sys, trace } = await bootTraced(['rtc'], ['virtio_rtc_noirq']);
      sys.injectPmFailure({ phase: 'suspend_noirq', device: 0, errno: EIO });
      const start = trace.log.length;
      expect(sys.suspend().result).toBe(-EIO);
      expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_NONE);
      expect(windowLog(trace, sys, 0, start).filter((l) => l.startsWith('W Status'))).toEqual([]);
      readsClock(sys, 0);
    });

    it('restore_noirq failing: restore() returns -EIO with FAILED set; a re-probe brings the device back', async () => {
      const { sys } = await bootTraced(['rtc'], ['virtio_rtc_noirq']);
      sys.injectPmFailure({ phase: 'resume_noirq', device: 0, errno: EIO });
      const t = sys.suspend({ power: 'reset' });
      expect(t.result).toBe(0); // resume errors do not abort a transition
      expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_ENTERED);
      expect(t.records.find((r) => r.phase === 'resume')?.result).toBe(-EIO);
      expect(status(sys, 0) & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
      sys.dpm.injections.length = 0;
      sys.kernel.remove(0);
      expect(sys.kernel.probe(0)).toBe(true);
      readsClock(sys, 0);
    });

    it('the device refusing FEATURES_OK on restore: -ENODEV in restore_noirq, then -EIO from restore()', async () => {
      const { sys } = await bootTraced(['rtc'], ['virtio_rtc_noirq']);
      sys.dpm.hooks.push((e) => {
        if (e.phase === 'suspend_noirq' && e.when === 'after') sys.machine.control({ op: 'inject', slot: 0, event: 'refuse-features' });
      });
      const t = sys.suspend();
      expect(t.records.find((r) => r.phase === 'resume_noirq')?.result).toBe(-ENODEV);
      expect(t.records.find((r) => r.phase === 'resume')?.result).toBe(-EIO);
      expect(status(sys, 0) & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
      expect(sys.kernel.log.some((m) => m.dev === 'virtio0' && m.msg.startsWith('virtio: device refuses features'))).toBe(true);
    });

    it.each([
      // phase, slot: what completed the failed phase is resumed (recover), the failing device gets the earlier phases' resume callbacks only
      ['freeze', 0, 'freeze', ['freeze:1:0', 'freeze:0:-5!', 'thaw:1:0']],
      ['freeze', 1, 'freeze', ['freeze:1:-5!']],
      ['freeze_late', 1, 'freeze_noirq', ['freeze:1:0', 'freeze:0:0', 'freeze_late:1:-5!', 'thaw:0:0', 'thaw:1:0']],
      ['freeze_noirq', 0, 'freeze_noirq', ['freeze:1:0', 'freeze:0:0', 'freeze_noirq:1:0', 'freeze_noirq:0:-5!', 'thaw_noirq:1:0', 'thaw:0:0', 'thaw:1:0']],
    ] as const)('hibernation aborted at %s of slot %i (step %s): the right devices resume, both work', async (phase, slot, step, records) => {
      const { sys } = await bootTraced(['rng', 'rtc'], ['virtio_rng', 'virtio_rtc_noirq']);
      sys.injectPmFailure({ phase, device: slot, errno: EIO });
      const t = sys.hibernate();
      expect(t).toMatchObject({ result: -EIO, failedStep: step });
      expect(t.records.map((r) => `${r.phase}:${r.slot}:${r.result}${r.injected ? '!' : ''}`)).toEqual(records);
      expect(sys.lastBootKernel).toBeNull();
      expect(sys.kernel.rngRead(0, 32)).toHaveLength(32);
      readsClock(sys, 1);
      expect([status(sys, 0), status(sys, 1)]).toEqual([0x0f, 0x0f]);
    });

    it('hibernation rolled back at poweroff_noirq (a wakeup event, -EBUSY): the image is not needed, restore (not thaw) brings the devices back', async () => {
      const { sys } = await bootTraced(['rng', 'rtc'], ['virtio_rng', 'virtio_rtc_noirq'], { transport: 'mmio-legacy' });
      sys.injectPmFailure({ phase: 'poweroff_noirq', device: 0, errno: EBUSY });
      const t = sys.hibernate({ mode: 'platform' });
      expect(t).toMatchObject({ result: -EBUSY, failedStep: 'poweroff_noirq', poweredOff: false });
      expect(t.records.slice(-4).map((r) => `${r.phase}:${r.slot}:${r.result}`)).toEqual(['poweroff_noirq:0:-16', 'restore_noirq:1:0', 'restore:0:0', 'restore:1:0']);
      expect(sys.kernel.noirqState(1)).toBe(VIRTIO_NOIRQ_RESTORED);
      expect(sys.kernel.rngRead(0, 32)).toHaveLength(32);
      readsClock(sys, 1);
    });
  });

  describe('the checks of the patch, over real registers', () => {
    it('mis-paired callbacks: freeze refuses with -EINVAL, config re-enabled, the suspend aborts and the device keeps working', async () => {
      const misPaired: LinuxDriverSpec = { driver: 'test_driver', deviceId: VIRTIO_ID_RNG, callbacks: ['freeze', 'restore', 'freeze_noirq'] };
      const { sys, trace } = await bootTraced(['rng'], [misPaired]);
      const start = trace.log.length;
      const t = sys.suspend();
      const log = windowLog(trace, sys, 0, start);
      expect(t).toMatchObject({ result: -EINVAL, failedStep: 'suspend' });
      expect(t.records.map((r) => `${r.phase}:${r.slot}:${r.result}`)).toEqual(['suspend:0:-22']);
      expect(sys.kernel.device(0)!.configCoreEnabled).toBe(true);
      expect(sys.kernel.log.filter((m) => m.dev === 'virtio0').map((m) => m.msg)).toContain(
        'freeze/restore and freeze_noirq/restore_noirq must each be paired',
      );
      // only the FAILED check's Status read reached the device
      expect(log).toEqual(['R Status = 0xf']);
      expect(status(sys, 0)).toBe(0x0f);
    });

    it('active vqs on a transport without reset_vqs: freeze_noirq refuses with -EOPNOTSUPP and the suspend aborts cleanly', async () => {
      const { sys } = await bootTraced(['rng'], [noirqTestDriver]);
      // virtio-mmio as it was before the series: the same ops without reset_vqs
      sys.kernel.test.configOps(0, { resetVqs: true });
      const t = sys.suspend();
      expect(t).toMatchObject({ result: -EOPNOTSUPP, failedStep: 'suspend_noirq' });
      expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_NONE);
      expect(sys.kernel.log.map((m) => m.msg)).toContain('transport does not support noirq PM restore with active vqs (missing reset_vqs)');
      expect(t.records.filter((r) => r.phase === 'resume').map((r) => r.result)).toEqual([0]);
      expect(status(sys, 0)).toBe(0x0f);
      // the transport's own ops back: the next suspend goes through
      sys.kernel.test.configOps(0, {});
      expect(sys.suspend().result).toBe(0);
      expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_RESTORED);
    });

    it('a transport that is not noirq_safe: freeze refuses a driver with restore_noirq (-EOPNOTSUPP)', async () => {
      const { sys, trace } = await bootTraced(['rtc'], ['virtio_rtc_noirq']);
      sys.kernel.test.configOps(0, { noirqSafe: true });
      const start = trace.log.length;
      const t = sys.suspend();
      expect(t).toMatchObject({ result: -EOPNOTSUPP, failedStep: 'suspend' });
      expect(sys.kernel.log.map((m) => m.msg)).toContain('transport does not support noirq PM');
      expect(windowLog(trace, sys, 0, start)).toEqual(['R Status = 0xf']);
      sys.kernel.test.configOps(0, {});
      readsClock(sys, 0);
    });

    it('a queue the device no longer offers at its size: vm_reset_vqs fails with -ENOENT and restore_noirq marks the device FAILED', async () => {
      const { sys, trace } = await bootTraced(['rtc'], ['virtio_rtc_noirq']);
      // The device now reports a smaller QueueNumMax than the vring (a host that changed across the sleep).
      trace.override = (offset, _w, value) => (offset === REG.QueueNumMax && sys.kernel.noirqDepth > 0 ? value / 2 : undefined);
      const start = trace.log.length;
      const t = sys.suspend();
      trace.override = null;
      expect(t.records.find((r) => r.phase === 'resume_noirq')?.result).toBe(-2); // -ENOENT
      expect(t.records.find((r) => r.phase === 'resume')?.result).toBe(-EIO);
      const log = windowLog(trace, sys, 0, start);
      // the queue is deactivated again, then FAILED
      const sel = log.lastIndexOf('W QueueSel <- 0x0');
      expect(log.slice(sel)).toEqual([
        'W QueueSel <- 0x0',
        'W QueueReady <- 0x0',
        'R QueueReady = 0x0',
        // restore_noirq's err: FAILED
        'R Status = 0xb',
        'W Status <- 0x8b',
        // restore(): noirq_state ENTERED, so -EIO and FAILED again
        'R Status = 0x8b',
        'W Status <- 0x8b',
      ]);
      expect(sys.kernel.noirqState(0)).toBe(VIRTIO_NOIRQ_ENTERED);
    });
  });

  describe('hibernation: a boot kernel on the zeroed memory, then the jump back into the image', () => {
    it.each<[LinuxPowerModel, TransportKind]>([
      ['fresh', 'mmio'],
      ['reset', 'mmio'],
      ['retain', 'mmio'],
      ['fresh', 'mmio-legacy'],
      ['snapshot', 'mmio'],
      ['snapshot', 'mmio-legacy'],
    ])('power %s over %s: the boot kernel probes and quiesces, the original instance restores through restore_noirq', async (power, transport) => {
      const { sys, trace } = await bootTraced(['rng', 'rtc'], ['virtio_rng', 'virtio_rtc_noirq'], { transport });
      const image = sys.kernel;
      const before = sys.kernel.device(1)!.vq0!;
      const requestsAtImage: number[] = [];
      let restored = 0;
      sys.dpm.hooks.push((e) => {
        if (e.phase === 'freeze_noirq' && e.when === 'after' && e.slot === 0 && !e.kernel) requestsAtImage.push(quiet(trace, () => sys.kernel.rtc(1)!.stats.requests));
        if (e.phase === 'restore_noirq' && e.when === 'after' && e.slot === 1) restored = trace.log.length;
      });
      const t = sys.hibernate({ power, mode: 'platform' });
      const end = trace.log.length;
      expect(t.result).toBe(0);
      const phases = t.records.map((r) => `${r.kernel ?? ''}${r.phase}:${r.slot}:${r.result}`);
      expect(phases).toEqual([
        'freeze:1:0',
        'freeze:0:0',
        'freeze_noirq:1:0',
        'freeze_noirq:0:0',
        'thaw_noirq:0:0',
        'thaw_noirq:1:0',
        'thaw:0:0',
        'thaw:1:0',
        'poweroff:1:0',
        'poweroff:0:0',
        'poweroff_noirq:1:0',
        'poweroff_noirq:0:0',
        'bootfreeze:1:0',
        'bootfreeze:0:0',
        'bootfreeze_noirq:1:0',
        'bootfreeze_noirq:0:0',
        'restore_noirq:0:0',
        'restore_noirq:1:0',
        'restore:0:0',
        'restore:1:0',
      ]);
      // The original instance continues: same object, its state as in the image.
      expect(sys.kernel).toBe(image);
      expect(sys.kernel.dead).toBe(false);
      expect(sys.kernel.noirqState(1)).toBe(VIRTIO_NOIRQ_RESTORED);
      expect(sys.kernel.device(1)!.vq0).toEqual(before);
      // the thaw's polled read is not in the image; restore_noirq's is the one after it
      expect(sys.kernel.rtc(1)!.stats.requests).toBe(requestsAtImage[0]! + 1);
      readsClock(sys, 1);
      expect(sys.kernel.rngRead(0, 64)).toHaveLength(64);
      expect(sys.kernel.warnings).toEqual([]);
      expect(sys.kernel.log).toEqual([]);
      // The boot kernel probed both devices afresh (the rtc's CFG and CLOCK_CAP answered), then is gone.
      const bootKernel = sys.lastBootKernel!;
      expect(bootKernel).not.toBe(image);
      expect(bootKernel.dead).toBe(true);
      expect(bootKernel.log).toEqual([]);
      expect(guestErrors(sys)).toEqual([0, 0]);
      // After the jump the latched rtc interrupt is taken once: by the image kernel's handler only.
      expect(windowLog(trace, sys, 1, restored, end).filter((l) => l.startsWith('R InterruptStatus'))).toEqual(['R InterruptStatus = 0x1']);
      // A second hibernation works as well.
      expect(sys.hibernate({ power }).result).toBe(0);
      readsClock(sys, 1);
    });

    it('the kernel that resumes is the image kernel, not a fresh one: device indices as the image had them', async () => {
      const { sys } = await bootTraced(['rng', 'rng'], ['virtio_rng']);
      // Re-probe in the other order: slot 1 gets virtio0, slot 0 virtio1 (a fresh boot numbers them 0, 1).
      sys.kernel.remove(1);
      sys.kernel.remove(0);
      sys.kernel.probe(1);
      sys.kernel.probe(0);
      expect(sys.kernel.devices().map((d) => d.dev)).toEqual(['virtio1', 'virtio0']);
      const t = sys.hibernate();
      expect(t.result).toBe(0);
      // the boot kernel numbered them afresh; the image kernel keeps its own
      expect(t.records.filter((r) => r.kernel === 'boot' && r.phase === 'freeze').map((r) => `${r.phase}:${r.slot}:${r.device}`)).toEqual([
        'freeze:1:virtio1',
        'freeze:0:virtio0',
      ]);
      expect(t.records.filter((r) => r.phase === 'restore').map((r) => `${r.slot}:${r.device}`)).toEqual(['0:virtio1', '1:virtio0']);
      // virtio-rng's restore allocates its hwrng index again, in restore (slot) order
      expect(sys.kernel.devices().map((d) => [d.dev, d.rng, d.status])).toEqual([
        ['virtio1', 'virtio_rng.0', 0x0f],
        ['virtio0', 'virtio_rng.1', 0x0f],
      ]);
      expect(sys.kernel.rngRead(0, 64)).toHaveLength(64);
      expect(sys.kernel.rngRead(1, 64)).toHaveLength(64);
    });

    it('the classic clock: thaw and restore set it up again in restore(); the boot kernel deletes its queue in freeze()', async () => {
      const { sys } = await bootTraced(['rtc'], ['virtio_rtc']);
      const t = sys.hibernate();
      expect(t.result).toBe(0);
      expect(t.records.filter((r) => r.kernel === 'boot').map((r) => r.phase)).toEqual(['freeze', 'freeze_noirq']);
      expect(sys.kernel.rtc(0)).toMatchObject({ driver: 'virtio_rtc', hasVq: true, frozen: false, stats: { polled: 0 } });
      readsClock(sys, 0);
    });

    it('the boot kernel failing to quiesce: it carries on, the image kernel never runs again', async () => {
      const { sys } = await bootTraced(['rng', 'rtc'], ['virtio_rng', 'virtio_rtc_noirq']);
      const image = sys.kernel;
      const t = sys.hibernate({ bootInjections: [{ phase: 'freeze_noirq', device: 1, errno: EIO }] });
      expect(t).toMatchObject({ result: -EIO, failedStep: 'quiesce' });
      expect(t.records.filter((r) => r.kernel === 'boot').map((r) => `${r.phase}:${r.slot}:${r.result}`)).toEqual([
        'freeze:1:0',
        'freeze:0:0',
        'freeze_noirq:1:-5',
        'thaw:0:0',
        'thaw:1:0',
      ]);
      expect(image.dead).toBe(true);
      expect(sys.kernel).toBe(sys.lastBootKernel);
      expect(sys.kernel.dead).toBe(false);
      expect(sys.dpm.injections).toEqual([]);
      expect(sys.kernel.rngRead(0, 32)).toHaveLength(32);
      readsClock(sys, 1);
      // and it can sleep in turn
      expect(sys.suspend().result).toBe(0);
      readsClock(sys, 1);
    });

    it('refuses a second kernel on a memory that still holds one', async () => {
      const { sys } = await bootTraced(['rng'], ['virtio_rng']);
      const { LinuxKernel } = await import('../../linux/host/index.js');
      expect(() => LinuxKernel.bootSync({ machine: sys.machine, memory: sys.kernel.memory })).toThrow(/already held a kernel/);
    });
  });

  it('the clock consumer on a device without the clock it names reads -ENODEV', async () => {
    const { sys } = await bootTraced(['rng', 'rtc'], [{ driver: 'clock_consumer', deviceId: VIRTIO_ID_RNG, clock: 'rtc7.0' }, 'virtio_rtc_noirq']);
    expect(sys.suspend().records.find((r) => r.phase === 'resume' && r.slot === 0)?.result).toBe(-ENODEV);
    expect(sys.kernel.clockConsumerReads(0)).toEqual([-ENODEV]);
    expect(sys.kernel.rtc(1)!.driver).toBe('virtio_rtc_noirq');
    expect(VIRTIO_ID_CLOCK).toBe(17);
  });
});
