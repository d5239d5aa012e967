// System sleep transitions: kernel/power/suspend.c (suspend_devices_and_enter,
// suspend_enter) and kernel/power/hibernate.c (hibernation_snapshot,
// create_image, hibernation_platform_enter, hibernation_restore,
// resume_target_kernel), over a DpmCore. What the platform does to devices
// while the system sleeps is a hook, so core/ stays free of the emulator.
import { EAGAIN, EBUSY } from '../uapi/errno.js';
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
  /** device_shutdown() (drivers/base/core.c): each device's bus shutdown, last registered first. */
  deviceShutdown(): void;
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
  /**
   * hibernate: the image's memory is back; what hardware state follows
   * kernel memory (the interrupt handlers the kernel has registered) is
   * brought in line with it.
   */
  imageRestored?(): void;
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
  /** Hibernation: the hibernation_mode used. */
  mode?: HibernationMode;
  /** Hibernation: the machine lost power (false: aborted before power_down(), or rolled back). */
  poweredOff?: boolean;
  /**
   * Hibernation, platform mode: hibernation_platform_enter() failed with an
   * error other than -EAGAIN/-EBUSY; power_down() fell through to
   * kernel_power_off() and the image, still valid, was restored on the next
   * boot. result then tells how that restore went.
   */
  platformEnterError?: { result: number; step: 'poweroff' | 'poweroff_noirq' };
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

/**
 * hibernation_mode: 'platform' enters the sleep state through the platform's
 * hibernation ops (hibernation_platform_enter(): the poweroff phases, then
 * ops->enter()); 'shutdown' writes the image and calls kernel_power_off()
 * (device_shutdown(), no poweroff callbacks). Linux selects 'platform' only
 * when the platform registered hibernation ops (ACPI S4 does; the arm64
 * virt board has none), so 'shutdown' is the default.
 */
export type HibernationMode = 'platform' | 'shutdown';

export const HIBERNATION_MODES: readonly HibernationMode[] = ['platform', 'shutdown'];

export interface HibernateOptions {
  /** The image kernel's memory: the objects the image saves (devices, vqs, DMA allocator, the DpmCore). */
  imageRoots: object[];
  /** Guest RAM, saved in the image and written back on restore. */
  ram?: Uint8Array;
  /** hibernation_mode (default 'shutdown', Linux's default on a platform without hibernation ops). */
  mode?: HibernationMode;
  /** The image kernel's noirq depth holder (default the model's kernel). */
  kernel?: { noirqDepth: number };
}

/** What hibernation_platform_enter() returned, and the device step that failed. */
interface PlatformEnter {
  error: number;
  step?: 'poweroff' | 'poweroff_noirq';
}

/**
 * hibernation_platform_enter() after ops->begin(): the poweroff phases; on a
 * failure the devices come back through the restore callbacks
 * (Resume_devices: dpm_resume_end(PMSG_RESTORE)). On success the platform's
 * enter() powers the machine off.
 */
function hibernationPlatformEnter(dpm: DpmPhases): PlatformEnter {
  let error = dpm.dpmSuspendStart(PMSG_HIBERNATE);
  if (error) {
    dpm.dpmResumeEnd(PMSG_RESTORE);
    return { error, step: 'poweroff' };
  }
  error = dpm.dpmSuspendEnd(PMSG_HIBERNATE);
  if (error) {
    dpm.dpmResumeEnd(PMSG_RESTORE);
    return { error, step: 'poweroff_noirq' };
  }
  return { error: 0 };
}

/**
 * hibernate(): image creation (freeze … thaw), the image write's power_down()
 * (platform mode: the poweroff phases; shutdown mode: device_shutdown()),
 * power loss, and restore by a boot kernel that quiesces its devices and
 * jumps into the image (restore phases).
 */
export function hibernate(dpm: DpmPhases, platform: SleepPlatform, opts: HibernateOptions): PmTransition {
  const mode = opts.mode ?? 'shutdown';
  const start = dpm.record.length;
  const t: PmTransition = { kind: 'hibernate', result: 0, records: [], mode, poweredOff: false };
  const finish = (error: number, step: string): PmTransition => {
    t.result = error;
    t.failedStep = step;
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

  // swsusp_write(), then power_down()
  let viaPlatform = false;
  if (mode === 'platform') {
    const r = hibernationPlatformEnter(dpm);
    // Only a wakeup event rolls back: the image is discarded (swsusp_unmark)
    // and the system runs on. Any other error falls through to
    // kernel_power_off() with the image still valid on disk.
    if (r.error === -EAGAIN || r.error === -EBUSY) {
      kernel.log('info', null, 'PM: Wakeup event detected during hibernation, rolling back.');
      return finish(r.error, r.step!);
    }
    if (r.error) t.platformEnterError = { result: r.error, step: r.step! };
    else viaPlatform = true; // hibernation_ops->enter()
  }
  // kernel_power_off(): kernel_shutdown_prepare() runs device_shutdown().
  if (!viaPlatform) dpm.deviceShutdown();
  platform.powerOff?.();
  t.poweredOff = true;
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
  platform.imageRestored?.();
  k.noirqDepth = noirqDepthAtSnapshot; // the image kernel resumes inside its noirq phase
  dpm.dpmResumeStart(PMSG_RESTORE);
  dpm.dpmResumeEnd(PMSG_RESTORE);
  // dpm.record is kept out of the image, so it still holds what ran before.
  t.records = [...beforePowerOff, ...bootRecords, ...since(dpm, imageStart)];
  return t;
}
