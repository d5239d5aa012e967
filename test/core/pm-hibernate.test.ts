// Hibernation's power_down() as kernel/power/hibernate.c has it, through the
// real register path: hibernation_mode shutdown (Linux's default without
// platform hibernation ops: device_shutdown() → virtio_dev_shutdown, no
// poweroff callbacks) and platform (hibernation_platform_enter(): the
// poweroff phases), and what an error in hibernation_platform_enter() does:
// -EAGAIN/-EBUSY roll back with the image discarded, any other error falls
// through to kernel_power_off() and the image is restored on the next boot.
import { afterEach, describe, expect, it } from 'vitest';
import { viortcDev, viortcRead, virtioRtcNoirqDriver } from '../../core/drivers/rtc.js';
import { virtioRngDriver, virtioRngRead } from '../../core/drivers/rng.js';
import { kernel } from '../../core/kernel.js';
import type { PmCallRecord } from '../../core/pm/dpm.js';
import { EAGAIN, EBUSY, EIO, ENOMEM } from '../../core/uapi/errno.js';
import { VIRTIO_NOIRQ_RESTORED, type VirtioDriver } from '../../core/virtio.js';
import { VirtioSystem, type SystemOptions } from '../../tools/system.js';
import { TraceBus, formatEntry } from '../helpers/trace-bus.js';

const systems: VirtioSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close()));
  kernel.clear();
});

async function boot(drivers: VirtioDriver[] = [virtioRngDriver, virtioRtcNoirqDriver], devices: SystemOptions['devices'] = ['rng', 'rtc']) {
  let trace: TraceBus | null = null;
  const sys = await VirtioSystem.create({ devices, drivers, wrapBus: (bus) => (trace = new TraceBus(bus)) });
  systems.push(sys);
  return { sys, trace: trace! as TraceBus };
}

const at = (r: PmCallRecord) => `${r.kernel ? 'boot:' : ''}${r.phase}:${r.slot}`;

/** The devices work: rng reads, the clock reads, the rtc came back in restore_noirq. */
function working(sys: VirtioSystem): void {
  expect(virtioRngRead(sys.device(0)!, 64)).toBeInstanceOf(Uint8Array);
  expect(typeof viortcRead(viortcDev(sys.device(1)!)!, 0)).toBe('bigint');
  expect(sys.device(1)!.noirqState).toBe(VIRTIO_NOIRQ_RESTORED);
}

describe('hibernation_mode', () => {
  it('defaults to shutdown: no poweroff callbacks, device_shutdown resets each device (last first), then boot kernel and restore', async () => {
    const { sys, trace } = await boot();
    const resets: string[] = [];
    let from = 0;
    sys.dpm.hooks.push((e) => {
      if (e.phase !== 'shutdown') return;
      if (e.when === 'before') from = trace.log.length;
      else resets.push(`${e.slot}: ${trace.log.slice(from).map(formatEntry).join(', ')}`);
    });
    const t = sys.hibernate();
    expect(t).toMatchObject({ kind: 'hibernate', result: 0, mode: 'shutdown', poweredOff: true });
    expect(t.platformEnterError).toBeUndefined();
    const image = t.records.filter((r) => !r.kernel).map(at);
    expect(image.filter((p) => p.startsWith('poweroff'))).toEqual([]);
    // thaw, then device_shutdown in reverse order, then the boot kernel, then the restore phases
    const shutdownAt = image.indexOf('shutdown:1');
    expect(image.slice(shutdownAt - 2, shutdownAt + 2)).toEqual(['thaw:0', 'thaw:1', 'shutdown:1', 'shutdown:0']);
    expect(t.records.findIndex((r) => r.kernel)).toBeGreaterThan(t.records.findIndex((r) => r.phase === 'shutdown'));
    expect(image.slice(-2)).toEqual(['restore:0', 'restore:1']);
    // virtio_dev_shutdown: break, synchronize_cbs, reset: one Status write of 0 per device
    expect(resets).toEqual(['1: W Status <- 0x0', '0: W Status <- 0x0']);
    working(sys);
    expect(kernel.warnings).toEqual([]);
  });

  it('platform: the poweroff phases and no device_shutdown', async () => {
    const { sys } = await boot();
    const t = sys.hibernate({ mode: 'platform' });
    expect(t).toMatchObject({ result: 0, mode: 'platform', poweredOff: true });
    const image = t.records.filter((r) => !r.kernel).map(at);
    expect(image.filter((p) => p.startsWith('poweroff'))).toEqual([
      'poweroff:1', 'poweroff:0', 'poweroff_noirq:1', 'poweroff_noirq:0',
    ]);
    expect(image.filter((p) => p.startsWith('shutdown'))).toEqual([]);
    working(sys);
  });
});

describe('power_down(): errors from hibernation_platform_enter()', () => {
  it.each([
    ['poweroff', 0, EIO, 'poweroff'],
    ['poweroff_noirq', 1, EIO, 'poweroff_noirq'],
    ['poweroff_late', 0, ENOMEM, 'poweroff_noirq'],
  ] as const)('%s on slot %i failing with errno %i (not -EAGAIN/-EBUSY): devices restored, then power off anyway; the image is restored on the next boot', async (phase, slot, errno, step) => {
    const { sys } = await boot();
    sys.injectPmFailure({ phase, device: slot, errno });
    const t = sys.hibernate({ mode: 'platform' });
    expect(t).toMatchObject({ result: 0, poweredOff: true, platformEnterError: { result: -errno, step } });
    expect(t.failedStep).toBeUndefined();
    const seq = t.records.map(at);
    const failed = seq.indexOf(`${phase}:${slot}`);
    expect(t.records[failed]!.result).toBe(-errno);
    // Resume_devices: dpm_resume_end(PMSG_RESTORE), then kernel_power_off() → device_shutdown()
    const restoreAfter = seq.findIndex((p, i) => i > failed && p.startsWith('restore:'));
    const shutdown = seq.indexOf('shutdown:1', failed);
    const firstBoot = t.records.findIndex((r) => r.kernel === 'boot');
    expect(failed).toBeLessThan(restoreAfter);
    expect(restoreAfter).toBeLessThan(shutdown);
    expect(seq.slice(shutdown, shutdown + 2)).toEqual(['shutdown:1', 'shutdown:0']);
    expect(shutdown).toBeLessThan(firstBoot);
    // The image kernel comes back through restore_noirq after the boot kernel
    expect(seq.lastIndexOf('restore_noirq:1')).toBeGreaterThan(firstBoot);
    working(sys);
    expect(kernel.messages.map((m) => m.msg)).not.toContain('PM: Wakeup event detected during hibernation, rolling back.');
  });

  it.each([
    // slot 0 fails poweroff after slot 1 completed it: only slot 1 gets restore
    ['poweroff', 0, EBUSY, 'poweroff', ['restore:1']],
    ['poweroff_late', 1, EAGAIN, 'poweroff_noirq', ['restore:0', 'restore:1']],
    ['poweroff_noirq', 0, EBUSY, 'poweroff_noirq', ['restore:0', 'restore:1']],
  ] as const)('%s on slot %i failing with errno %i (a wakeup): rolled back, no power off, the image discarded, the devices run on', async (phase, slot, errno, step, restored) => {
    const { sys } = await boot();
    sys.injectPmFailure({ phase, device: slot, errno });
    const t = sys.hibernate({ mode: 'platform' });
    expect(t).toMatchObject({ result: -errno, failedStep: step, poweredOff: false });
    expect(t.platformEnterError).toBeUndefined();
    expect(t.records.some((r) => r.kernel === 'boot' || r.phase === 'shutdown')).toBe(false);
    const seq = t.records.map(at);
    // devices come back with the restore callbacks, not thaw
    expect(seq.slice(seq.indexOf(`${phase}:${slot}`)).filter((p) => p.startsWith('restore:'))).toEqual([...restored]);
    expect(kernel.messages.map((m) => m.msg)).toContain('PM: Wakeup event detected during hibernation, rolling back.');
    expect(virtioRngRead(sys.device(0)!, 64)).toBeInstanceOf(Uint8Array);
    expect(typeof viortcRead(viortcDev(sys.device(1)!)!, 0)).toBe('bigint');
    expect(kernel.warnings).toEqual([]);
  });
});
