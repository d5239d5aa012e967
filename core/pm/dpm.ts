// drivers/base/power/main.c: the device PM lists and the per-phase walks.
// Devices move list to list as each phase completes for them, so an abort
// resumes exactly the devices that completed the failed phase; the failing
// device gets the resume callbacks of the earlier phases only.
import type { IrqChip } from '../bus.js';
import { EIO } from '../uapi/errno.js';
import { errnoName } from '../uapi/errno.js';
import { keepOutOfImage, kernel, type Kernel } from '../kernel.js';
import {
  type DevPmOps,
  type PmCallbackName,
  type PmMessage,
  pmLateEarlyOp,
  pmNoirqOp,
  pmOp,
  resumeEvent,
} from './pm.js';

/**
 * What the PM core needs of a kernel: the depth of noirq phases it keeps
 * (the kernel's might_sleep checker reads it) and a log for failed
 * callbacks. The model's Kernel is one; another kernel (the Linux wasm
 * build) brings its own.
 */
export type DpmKernel = Pick<Kernel, 'noirqDepth' | 'log'>;

/** A device on the PM list (struct device's dev_pm_info, reduced). */
export interface PmDevice<D = unknown> {
  readonly name: string;
  readonly dev: D;
  readonly ops: DevPmOps<D>;
  /** Its interrupt line: masked by suspend_device_irqs() for the noirq phases. */
  readonly irqLine?: number;
  /** Slot on the board, for reports. */
  readonly slot?: number;
  /** dev->bus->shutdown (virtio_dev_shutdown for a virtio device), run by device_shutdown(). */
  readonly shutdown?: (dev: D) => void;
}

/** A PM callback, or 'shutdown': the bus shutdown device_shutdown() runs at power-off. */
export type PmRecordPhase = PmCallbackName | 'shutdown';

export interface PmCallRecord {
  phase: PmRecordPhase;
  device: string;
  slot?: number;
  result: number;
  /** The failure was injected instead of running the callback. */
  injected?: boolean;
  /** The callback threw (a kernel BUG or a machine fault); result is -EIO. */
  error?: string;
  /** Ran in the hibernation boot kernel, not in the image kernel. */
  kernel?: 'boot';
}

/** Make a callback fail: the callback is not run and returns -errno. */
export interface PmInjection {
  phase: PmCallbackName;
  /** Device name or slot. */
  device: string | number;
  /** Positive errno. */
  errno: number;
}

/** Called around every callback a phase runs (harness hook: inject device events between phases). */
export type PmCallbackHook = (e: {
  phase: PmRecordPhase;
  device: string;
  slot?: number;
  when: 'before' | 'after';
  result?: number;
  kernel?: 'boot';
}) => void;

/** "phase:device: -ERR" for logs. */
export function formatRecord(r: PmCallRecord): string {
  return `${r.phase} ${r.device}: ${errnoName(r.result)}${r.injected ? ' (injected)' : ''}${r.error ? ` (${r.error})` : ''}`;
}

export class DpmCore<D = unknown> {
  /** dpm_list, in registration order (parents before children). */
  private dpmList: PmDevice<D>[] = [];
  private preparedList: PmDevice<D>[] = [];
  private suspendedList: PmDevice<D>[] = [];
  private lateEarlyList: PmDevice<D>[] = [];
  private noirqList: PmDevice<D>[] = [];
  /** Every callback run, in order, since the last trimRecord(). */
  readonly record: PmCallRecord[] = keepOutOfImage([]);
  /** Records dropped by trimRecord(): record[i] is callback number recordBase + i. */
  recordBase = 0;
  /** Run by trimRecord() before it drops anything. */
  readonly trimHooks: (() => void)[] = keepOutOfImage([]);
  readonly injections: PmInjection[] = keepOutOfImage([]);
  readonly hooks: PmCallbackHook[] = keepOutOfImage([]);
  private readonly irq: IrqChip | null;
  private readonly k: DpmKernel;
  /** 'boot': the hibernation boot kernel's PM core; its records and hook events say so. */
  readonly tag: 'boot' | undefined;

  constructor(opts: { irq?: IrqChip; kernel?: DpmKernel; tag?: 'boot' } = {}) {
    this.irq = opts.irq ?? null;
    this.k = opts.kernel ?? kernel;
    this.tag = opts.tag;
  }

  private tagged<T extends object>(o: T): T & { kernel?: 'boot' } {
    return this.tag ? { ...o, kernel: this.tag } : o;
  }

  /** device_pm_add() */
  devicePmAdd(dev: PmDevice<D>): void {
    this.dpmList.push(dev);
  }

  /** device_pm_remove() */
  devicePmRemove(dev: PmDevice<D>): void {
    for (const l of [this.dpmList, this.preparedList, this.suspendedList, this.lateEarlyList, this.noirqList]) {
      const i = l.indexOf(dev);
      if (i >= 0) l.splice(i, 1);
    }
  }

  get devices(): readonly PmDevice<D>[] {
    return [...this.dpmList, ...this.preparedList, ...this.suspendedList, ...this.lateEarlyList, ...this.noirqList];
  }

  /**
   * Forget the records kept so far (between transitions: a transition's
   * records are in its PmTransition). A long run calls this after each
   * cycle so the record does not grow with the number of cycles.
   */
  trimRecord(): void {
    // Observers that read the record (a trace recorder) catch up first.
    for (const h of this.trimHooks) h();
    this.recordBase += this.record.length;
    this.record.length = 0;
  }

  /** Make a callback fail: in every transition from now on, until clearInjections() drops it. */
  inject(i: PmInjection): void {
    this.injections.push(i);
  }

  /** Drop an injection (the object given to inject()), or every one when none is given. */
  clearInjections(i?: PmInjection): void {
    if (i === undefined) {
      this.injections.length = 0;
      return;
    }
    const at = this.injections.indexOf(i);
    if (at >= 0) this.injections.splice(at, 1);
  }

  /** dpm_run_callback(): run one callback, or the injected failure. */
  private dpmRunCallback(phase: PmCallbackName | null, pd: PmDevice<D>): number {
    if (!phase) return 0;
    const inj = this.injections.find((i) => i.phase === phase && (i.device === pd.name || i.device === pd.slot));
    if (inj) {
      const r: PmCallRecord = this.tagged({ phase, device: pd.name, result: -inj.errno, injected: true });
      if (pd.slot !== undefined) r.slot = pd.slot;
      this.record.push(r);
      return -inj.errno;
    }
    const cb = pd.ops[phase];
    if (!cb) return 0;
    const r: PmCallRecord = this.tagged({ phase, device: pd.name, result: 0 });
    if (pd.slot !== undefined) r.slot = pd.slot;
    const at = this.tagged({ phase, device: pd.name, ...(pd.slot !== undefined ? { slot: pd.slot } : {}) });
    for (const h of this.hooks) h({ ...at, when: 'before' });
    try {
      r.result = cb(pd.dev);
    } catch (e) {
      r.result = -EIO;
      r.error = e instanceof Error ? e.message : String(e);
    }
    this.record.push(r);
    for (const h of this.hooks) h({ ...at, when: 'after', result: r.result });
    if (r.result) this.k.log('err', { name: pd.name, warnings: [], messages: [] }, pmDevErr(phase, r.result));
    return r.result;
  }

  /**
   * device_shutdown() (drivers/base/core.c), as kernel_power_off() runs it:
   * every device's bus shutdown, the last registered first, with interrupts
   * on. A shutdown returns nothing; one that throws is recorded as -EIO.
   */
  deviceShutdown(): void {
    for (const pd of [...this.devices].reverse()) {
      if (!pd.shutdown) continue;
      const r: PmCallRecord = this.tagged({ phase: 'shutdown' as const, device: pd.name, result: 0 });
      if (pd.slot !== undefined) r.slot = pd.slot;
      const at = this.tagged({ phase: 'shutdown' as const, device: pd.name, ...(pd.slot !== undefined ? { slot: pd.slot } : {}) });
      for (const h of this.hooks) h({ ...at, when: 'before' });
      try {
        pd.shutdown(pd.dev);
      } catch (e) {
        r.result = -EIO;
        r.error = e instanceof Error ? e.message : String(e);
      }
      this.record.push(r);
      for (const h of this.hooks) h({ ...at, when: 'after', result: r.result });
    }
  }

  /** suspend_device_irqs(): mask device lines; interrupts latch meanwhile. */
  suspendDeviceIrqs(): void {
    this.k.noirqDepth++;
    if (!this.irq) return;
    for (const pd of this.devices) if (pd.irqLine !== undefined) this.irq.mask(pd.irqLine);
  }

  /** resume_device_irqs(): unmask, and what latched fires now. */
  resumeDeviceIrqs(): void {
    this.k.noirqDepth = Math.max(0, this.k.noirqDepth - 1);
    if (!this.irq) return;
    for (const pd of this.devices) if (pd.irqLine !== undefined) this.irq.unmask(pd.irqLine);
    this.irq.deliverPending();
  }

  /** dpm_prepare(): in list order. */
  dpmPrepare(_state: PmMessage): number {
    let error = 0;
    while (this.dpmList.length) {
      const dev = this.dpmList[0]!;
      error = this.dpmRunCallback('prepare', dev);
      if (error) break;
      this.dpmList.shift();
      this.preparedList.push(dev);
    }
    return error;
  }

  /** dpm_suspend(): children first (list tail first). */
  dpmSuspend(state: PmMessage): number {
    let error = 0;
    while (this.preparedList.length) {
      const dev = this.preparedList[this.preparedList.length - 1]!;
      error = this.dpmRunCallback(pmOp(state), dev);
      if (error) break;
      this.preparedList.pop();
      this.suspendedList.unshift(dev);
    }
    return error;
  }

  /** dpm_suspend_late() */
  dpmSuspendLate(state: PmMessage): number {
    let error = 0;
    while (this.suspendedList.length) {
      const dev = this.suspendedList[this.suspendedList.length - 1]!;
      error = this.dpmRunCallback(pmLateEarlyOp(state), dev);
      if (error) break;
      this.suspendedList.pop();
      this.lateEarlyList.unshift(dev);
    }
    if (error) this.dpmResumeEarly(resumeEvent(state));
    return error;
  }

  /** dpm_suspend_noirq(): device interrupts masked first. */
  dpmSuspendNoirq(state: PmMessage): number {
    this.suspendDeviceIrqs();
    let error = 0;
    while (this.lateEarlyList.length) {
      const dev = this.lateEarlyList[this.lateEarlyList.length - 1]!;
      error = this.dpmRunCallback(pmNoirqOp(state), dev);
      if (error) break;
      this.lateEarlyList.pop();
      this.noirqList.unshift(dev);
    }
    if (error) this.dpmResumeNoirq(resumeEvent(state));
    return error;
  }

  /** dpm_resume_noirq(): in list order, then device interrupts back on. */
  dpmResumeNoirq(state: PmMessage): void {
    while (this.noirqList.length) {
      const dev = this.noirqList.shift()!;
      this.lateEarlyList.push(dev);
      this.dpmRunCallback(pmNoirqOp(state), dev);
    }
    this.resumeDeviceIrqs();
  }

  /** dpm_resume_early() */
  dpmResumeEarly(state: PmMessage): void {
    while (this.lateEarlyList.length) {
      const dev = this.lateEarlyList.shift()!;
      this.suspendedList.push(dev);
      this.dpmRunCallback(pmLateEarlyOp(state), dev);
    }
  }

  /** dpm_resume() */
  dpmResume(state: PmMessage): void {
    while (this.suspendedList.length) {
      const dev = this.suspendedList.shift()!;
      this.preparedList.push(dev);
      this.dpmRunCallback(pmOp(state), dev);
    }
  }

  /** dpm_complete(): reverse order, then back on dpm_list. */
  dpmComplete(_state: PmMessage): void {
    const list: PmDevice<D>[] = [];
    while (this.preparedList.length) {
      const dev = this.preparedList.pop()!;
      list.unshift(dev);
      this.dpmRunCallback('complete', dev);
    }
    this.dpmList.unshift(...list);
  }

  /** dpm_suspend_start(): prepare + suspend. */
  dpmSuspendStart(state: PmMessage): number {
    const error = this.dpmPrepare(state);
    if (error) return error;
    return this.dpmSuspend(state);
  }

  /** dpm_suspend_end(): late + noirq. */
  dpmSuspendEnd(state: PmMessage): number {
    let error = this.dpmSuspendLate(state);
    if (error) return error;
    error = this.dpmSuspendNoirq(state);
    if (error) this.dpmResumeEarly(resumeEvent(state));
    return error;
  }

  /** dpm_resume_start(): noirq + early. */
  dpmResumeStart(state: PmMessage): void {
    this.dpmResumeNoirq(state);
    this.dpmResumeEarly(state);
  }

  /** dpm_resume_end(): resume + complete. */
  dpmResumeEnd(state: PmMessage): void {
    this.dpmResume(state);
    this.dpmComplete(state);
  }
}

/**
 * pm_dev_err(): "PM: failed to <verb><info>: error <n>", the verb from the
 * PM event (pm_verb) and the info from the phase (" late", " early",
 * " noirq"), as drivers/base/power/main.c prints it for the device.
 */
export function pmDevErr(phase: PmCallbackName, error: number): string {
  const [cb, part] = phase.split('_') as [string, string | undefined];
  const verb = cb === 'poweroff' ? 'hibernate' : cb;
  return `PM: failed to ${verb}${part ? ` ${part}` : ''}: error ${error}`;
}
