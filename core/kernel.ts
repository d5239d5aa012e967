// A small model of the kernel facilities the virtio core leans on: the log
// (dev_warn/dev_err), WARN_ON recorded as data a test can read (never thrown),
// and the context checker that flags sleepable operations in noirq phases.

export type LogLevel = 'err' | 'warn' | 'info';

export interface KernelMessage {
  level: LogLevel;
  dev: string;
  msg: string;
}

export interface KernelWarning {
  /**
   * 'WARN_ON': a WARN_ON/WARN_ON_ONCE/WARN fired, as Linux would print it.
   * 'noirq-context': a harness check Linux does not make: a sleepable
   * operation ran while device interrupts were disabled for a noirq phase.
   */
  kind: 'WARN_ON' | 'noirq-context';
  dev: string;
  /** The C expression or operation, e.g. "status & VIRTIO_CONFIG_S_DRIVER_OK". */
  what: string;
  /** The function the WARN_ON sits in, e.g. "virtio_device_ready". */
  where: string;
}

/**
 * One line for a warning. Harness checks say that they are: Linux prints
 * nothing for them.
 */
export function formatWarning(w: KernelWarning): string {
  switch (w.kind) {
    case 'WARN_ON':
      return `${w.dev}: WARN_ON ${w.what} in ${w.where}`;
    case 'noirq-context':
      return `${w.dev}: noirq-context (harness check, not a Linux warning): ${w.what} in ${w.where} while device interrupts are disabled for a noirq phase`;
  }
}

/** Anything with a name that can carry its own log (a virtio_device). */
export interface LogTarget {
  readonly name: string;
  readonly warnings: KernelWarning[];
  readonly messages: KernelMessage[];
}

/** Objects no hibernation image holds: hardware, and logs that must outlive a restore. */
const outsideImage = new WeakSet<object>();

/** Keep an object out of every hibernation image (see core/pm/image.ts). */
export function keepOutOfImage<T extends object>(o: T): T {
  outsideImage.add(o);
  return o;
}

export function isOutOfImage(o: object): boolean {
  return outsideImage.has(o);
}

/**
 * Module-level kernel state (driver registries, IDAs): kernel memory that a
 * hibernation image must hold although no device object points to it.
 */
const globals: object[] = [];

export function registerKernelGlobal<T extends object>(o: T): T {
  globals.push(o);
  return o;
}

export function kernelGlobals(): readonly object[] {
  return globals;
}

/**
 * Messages and warnings the log keeps (each, and per device): a long run
 * that logs every cycle must not grow without bound. Later ones are counted
 * in `dropped` / `warningsDropped`; the first ones, nearest the cause, stay.
 */
export const KERNEL_LOG_MAX = 10_000;

export class Kernel {
  /** The console: what the kernel printed outlives a hibernation image's restore, as a serial log does. */
  readonly messages: KernelMessage[] = keepOutOfImage([]);
  readonly warnings: KernelWarning[] = keepOutOfImage([]);
  /** Messages not kept (past KERNEL_LOG_MAX). */
  dropped = 0;
  /** Warnings not kept (past KERNEL_LOG_MAX); they still count. */
  warningsDropped = 0;
  /** Depth of noirq phases in progress (set by the PM core). */
  noirqDepth = 0;
  /** CONFIG_VIRTIO_HARDEN_NOTIFICATION */
  hardenNotification = false;
  private readonly onceKeys = new Set<string>();

  log(level: LogLevel, target: LogTarget | null, msg: string): void {
    const m: KernelMessage = { level, dev: target?.name ?? 'kernel', msg };
    if (this.messages.length < KERNEL_LOG_MAX) this.messages.push(m);
    else this.dropped++;
    if (target && target.messages.length < KERNEL_LOG_MAX) target.messages.push(m);
  }

  /** WARN_ON(cond): records and returns cond. */
  warnOn(cond: boolean, target: LogTarget | null, what: string, where: string): boolean {
    if (cond) this.record({ kind: 'WARN_ON', dev: target?.name ?? 'kernel', what, where }, target);
    return cond;
  }

  /** WARN_ON_ONCE(cond): fires once per call site. */
  warnOnOnce(cond: boolean, target: LogTarget | null, what: string, where: string): boolean {
    if (!cond) return false;
    const key = `${where}:${what}`;
    if (!this.onceKeys.has(key)) {
      this.onceKeys.add(key);
      this.record({ kind: 'WARN_ON', dev: target?.name ?? 'kernel', what, where }, target);
    }
    return true;
  }

  get inNoirq(): boolean {
    return this.noirqDepth > 0;
  }

  /**
   * might_sleep() and friends. Linux allows noirq callbacks to sleep, but a
   * noirq path that can wait for a device interrupt deadlocks; the harness
   * flags sleepable operations there so a test can assert a noirq path is
   * free of them.
   */
  checkSleepable(target: LogTarget | null, what: string, where: string): void {
    if (this.inNoirq) this.record({ kind: 'noirq-context', dev: target?.name ?? 'kernel', what, where }, target);
  }

  private record(w: KernelWarning, target: LogTarget | null): void {
    if (this.warnings.length < KERNEL_LOG_MAX) this.warnings.push(w);
    else this.warningsDropped++;
    if (target && target.warnings.length < KERNEL_LOG_MAX) target.warnings.push(w);
  }

  /** Forget everything logged (between test cases). */
  clear(): void {
    this.messages.length = 0;
    this.warnings.length = 0;
    this.dropped = 0;
    this.warningsDropped = 0;
    this.onceKeys.clear();
  }
}

/** The one kernel of this process (as there is one kernel per machine). */
export const kernel = new Kernel();

export function devErr(dev: LogTarget, msg: string): void {
  kernel.log('err', dev, msg);
}
export function devWarn(dev: LogTarget, msg: string): void {
  kernel.log('warn', dev, msg);
}
export function devInfo(dev: LogTarget, msg: string): void {
  kernel.log('info', dev, msg);
}
