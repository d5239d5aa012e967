// System sleep transitions: kernel/power/suspend.c (suspend_devices_and_enter,
// suspend_enter) and kernel/power/hibernate.c (hibernation_snapshot,
// create_image, hibernation_platform_enter, hibernation_restore,
// resume_target_kernel), over a DpmCore. What the platform does to devices
// while the system sleeps is a hook, so core/ stays free of the emulator.
import { keepOutOfImage, kernel } from '../kernel.js';
import type { PmCallRecord } from './dpm.js';
import { KernelImage } from './image.js';
import { PMSG_FREEZE, PMSG_HIBERNATE, PMSG_QUIESCE, PMSG_RECOVER, PMSG_RESTORE, PMSG_RESUME, PMSG_SUSPEND, PMSG_THAW, type PmMessage } from './pm.js';

/** What a transition needs of a DpmCore, whatever its device type. */
export interface DpmPhases {
  readonly record: PmCallRecord[];
  dpmSuspendStart(state: PmMessage): number;
  dpmSuspendEnd(state: PmMessage): number;
  dpmSuspendLate(state: PmMessage): number;
  dpmSuspendNoirq(state: PmMessage): number;
  dpmResumeNoirq(state: PmMessage): void;
  dpmResumeEarly(state: PmMessage): void;
  dpmResumeStart(state: PmMessage): void;
  dpmResumeEnd(state: PmMessage): void;
}

export type SleepKind = 'suspend' | 'hibernate';

export interface SleepPlatform {
  /** suspend: the system sleeps between suspend_noirq and resume_noirq. */
  enterSleep?(): void;
  /** hibernate: the machine powers off after poweroff_noirq. */
  powerOff?(): void;
  /**
   * hibernate: after power-on, a fresh boot kernel probes the devices and is
   * returned so its devices can be quiesced before the jump into the image.
   */
  bootKernel?(): DpmPhases;
  /**
   * hibernate: the jump into the image, right before the image's memory is
   * written back: the boot kernel is gone from here on (its interrupt
   * handlers with it), and the image kernel is wired up again.
   */
  enterImage?(): void;
}

export interface PmTransition {
  kind: SleepKind;
  /** 0, or the -errno of the step that aborted the transition. */
  result: number;
  /** Which step failed: 'suspend', 'suspend_noirq', 'freeze', 'poweroff', 'quiesce', ... */
  failedStep?: string;
  /** Callbacks run during this transition, in order (both kernels for hibernation). */
  records: PmCallRecord[];
  /** Objects saved in the hibernation image. */
  imageObjects?: number;
}

function since(dpm: DpmPhases, start: number): PmCallRecord[] {
  return dpm.record.slice(start);
}

/** suspend_devices_and_enter() with suspend_enter() inlined. */
export function pmSuspend(dpm: DpmPhases, platform: SleepPlatform = {}): PmTransition {
  const start = dpm.record.length;
  const t: PmTransition = { kind: 'suspend', result: 0, records: [] };

  let error = dpm.dpmSuspendStart(PMSG_SUSPEND);
  if (error) {
    t.failedStep = 'suspend';
  } else {
    // suspend_enter()
    error = dpm.dpmSuspendLate(PMSG_SUSPEND);
    if (error) {
      t.failedStep = 'suspend_late';
    } else {
      error = dpm.dpmSuspendNoirq(PMSG_SUSPEND);
      if (error) {
        t.failedStep = 'suspend_noirq';
      } else {
        platform.enterSleep?.();
        dpm.dpmResumeNoirq(PMSG_RESUME);
      }
    }
    // Platform_finish:
    dpm.dpmResumeEarly(PMSG_RESUME);
  }
  // Resume_devices:
  dpm.dpmResumeEnd(PMSG_RESUME);

  t.result = error;
  t.records = since(dpm, start);
  return t;
}

export interface HibernateOptions {
  /** The image kernel's memory: the objects the image saves (devices, vqs, DMA allocator, the DpmCore). */
  imageRoots: object[];
  /** Guest RAM, saved in the image and written back on restore. */
  ram?: Uint8Array;
  /** The image kernel's noirq depth holder (default the model's kernel). */
  kernel?: { noirqDepth: number };
}

/**
 * hibernate(): image creation (freeze … thaw), the image write's power-down
 * (poweroff phases), power loss, and restore by a boot kernel that quiesces
 * its devices and jumps into the image (restore phases).
 */
export function hibernate(dpm: DpmPhases, platform: SleepPlatform, opts: HibernateOptions): PmTransition {
  const start = dpm.record.length;
  const t: PmTransition = { kind: 'hibernate', result: 0, records: [] };
  const finish = (error: number, step?: string): PmTransition => {
    t.result = error;
    if (step) t.failedStep = step;
    t.records = [...since(dpm, start), ...t.records];
    return t;
  };

  // hibernation_snapshot()
  let error = dpm.dpmSuspendStart(PMSG_FREEZE);
  if (error) {
    dpm.dpmResumeEnd(PMSG_RECOVER);
    return finish(error, 'freeze');
  }
  // create_image()
  error = dpm.dpmSuspendEnd(PMSG_FREEZE);
  if (error) {
    dpm.dpmResumeEnd(PMSG_RECOVER);
    return finish(error, 'freeze_noirq');
  }
  const k = opts.kernel ?? kernel;
  const image = keepOutOfImage(KernelImage.capture(opts.imageRoots, opts.ram ?? null));
  const noirqDepthAtSnapshot = k.noirqDepth;
  t.imageObjects = image.objects;
  dpm.dpmResumeStart(PMSG_THAW);
  dpm.dpmResumeEnd(PMSG_THAW);

  // swsusp_write(), then power_down() → hibernation_platform_enter()
  error = dpm.dpmSuspendStart(PMSG_HIBERNATE);
  if (error) {
    dpm.dpmResumeEnd(PMSG_RESTORE);
    return finish(error, 'poweroff');
  }
  error = dpm.dpmSuspendEnd(PMSG_HIBERNATE);
  if (error) {
    dpm.dpmResumeEnd(PMSG_RESTORE);
    return finish(error, 'poweroff_noirq');
  }
  platform.powerOff?.();
  k.noirqDepth = 0; // the powered-off kernel is gone; the boot kernel starts afresh

  // Power on: the boot kernel probes afresh, then hibernation_restore().
  const beforePowerOff = since(dpm, start);
  const bootRecords: PmCallRecord[] = [];
  const boot = platform.bootKernel?.();
  if (boot) {
    const bootStart = boot.record.length;
    error = boot.dpmSuspendStart(PMSG_QUIESCE);
    if (!error) {
      // resume_target_kernel()
      error = boot.dpmSuspendEnd(PMSG_QUIESCE);
      if (error) boot.dpmResumeEnd(PMSG_RECOVER);
    } else {
      boot.dpmResumeEnd(PMSG_RECOVER);
    }
    bootRecords.push(...boot.record.slice(bootStart).map((r) => ({ ...r, kernel: 'boot' as const })));
    if (error) {
      // The boot kernel carries on; the image kernel never runs again.
      t.result = error;
      t.failedStep = 'quiesce';
      t.records = [...beforePowerOff, ...bootRecords];
      return t;
    }
  }

  // The jump into the image: its memory as at snapshot, inside create_image().
  const imageStart = dpm.record.length;
  platform.enterImage?.();
  image.restore();
  k.noirqDepth = noirqDepthAtSnapshot; // the image kernel resumes inside its noirq phase
  dpm.dpmResumeStart(PMSG_RESTORE);
  dpm.dpmResumeEnd(PMSG_RESTORE);
  // dpm.record is kept out of the image, so it still holds what ran before.
  t.records = [...beforePowerOff, ...bootRecords, ...since(dpm, imageStart)];
  return t;
}
