// The Bus and IrqChip a traced kernel uses: each forwards to the machine's
// and tells the recorder what happened. Handlers are wrapped at request_irq
// time, so a delivery is recorded when the controller invokes a handler.
// Both are hardware as far as the kernel model is concerned: a hibernation
// image must neither save them nor roll the recorder back on restore.
import type { AccessWidth, Bus, GuestMemory, IrqChip, IrqHandler, IrqReturn } from '../../core/bus.js';
import { keepOutOfImage } from '../../core/kernel.js';
import type { IrqEvent } from './records.js';

/** Where the tracing bus reports what happened (the trace recorder). */
export interface TraceSink {
  /** A completed (or failed, with the error's code) register access. */
  access(addr: number, width: AccessWidth, dir: 'r' | 'w', value: number, error?: string): void;
  /** An interrupt event the kernel side caused or saw. */
  irq(event: IrqEvent, line: number): void;
  /** Catch up with what the device side did since the last call. */
  sync(): void;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}

export class TracingBus implements Bus {
  readonly mem: GuestMemory;
  readonly irq: IrqChip;

  constructor(
    private readonly inner: Bus,
    private readonly rec: TraceSink,
  ) {
    this.mem = inner.mem;
    this.irq = keepOutOfImage(new TracingIrqChip(inner.irq, rec));
    keepOutOfImage(this);
  }

  read(addr: number, width: AccessWidth): number {
    let value: number;
    try {
      value = this.inner.read(addr, width);
    } catch (err) {
      this.rec.access(addr, width, 'r', 0, errorCode(err));
      throw err;
    }
    this.rec.access(addr, width, 'r', value >>> 0);
    return value;
  }

  write(addr: number, width: AccessWidth, value: number): void {
    try {
      this.inner.write(addr, width, value);
    } catch (err) {
      this.rec.access(addr, width, 'w', value >>> 0, errorCode(err));
      throw err;
    }
    this.rec.access(addr, width, 'w', value >>> 0);
  }
}

class TracingIrqChip implements IrqChip {
  readonly lines: number;
  /** [line, handler as requested, the wrapper the controller holds]. */
  private readonly wrapped: [number, IrqHandler, IrqHandler][] = [];

  constructor(
    private readonly inner: IrqChip,
    private readonly rec: TraceSink,
  ) {
    this.lines = inner.lines;
  }

  request(line: number, handler: IrqHandler): void {
    const rec = this.rec;
    const w = (l: number): IrqReturn => {
      rec.sync();
      rec.irq('deliver', l);
      return handler(l);
    };
    this.inner.request(line, w);
    this.wrapped.push([line, handler, w]);
  }

  free(line: number, handler: IrqHandler): void {
    const i = this.wrapped.findIndex(([l, h]) => l === line && h === handler);
    // Unknown handler: let the controller report it as free_irq would.
    if (i < 0) return this.inner.free(line, handler);
    const [, , w] = this.wrapped[i]!;
    this.inner.free(line, w);
    this.wrapped.splice(i, 1);
  }

  mask(line: number): void {
    this.rec.sync();
    this.inner.mask(line);
    this.rec.irq('mask', line);
  }

  unmask(line: number): void {
    this.rec.sync();
    this.inner.unmask(line);
    this.rec.irq('unmask', line);
  }

  isMasked(line: number): boolean {
    return this.inner.isMasked(line);
  }

  isPending(line: number): boolean {
    return this.inner.isPending(line);
  }

  deliverPending(): number {
    this.rec.sync();
    const n = this.inner.deliverPending();
    this.rec.sync();
    return n;
  }

  waitAndDeliver(timeoutMs: number): number {
    const n = this.inner.waitAndDeliver(timeoutMs);
    this.rec.sync();
    return n;
  }

  deliveredCount(line: number): number {
    return this.inner.deliveredCount(line);
  }
}
