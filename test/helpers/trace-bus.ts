// A Bus wrapper that records every trapped register access as
// {op, offset, width, value} relative to its virtio-mmio window, and lets a
// test run code between accesses (e.g. make the device raise an event right
// after the driver read InterruptStatus).
import { PLATFORM, type AccessWidth, type Bus, type GuestMemory, type IrqChip } from '../../core/bus.js';
import { MMIO_WINDOW_SIZE, regName } from '../../core/uapi/mmio.js';

export interface TraceEntry {
  op: 'R' | 'W';
  /** Offset inside the register window. */
  offset: number;
  width: AccessWidth;
  value: number;
  /** Guest-physical address of the access. */
  addr: number;
}

export type AccessHook = (e: TraceEntry) => void;

/** Return a value to make a read see it instead of the device's answer (the access still happens). */
export type ReadOverride = (offset: number, width: AccessWidth, value: number, addr: number) => number | undefined;

export class TraceBus implements Bus {
  readonly log: TraceEntry[] = [];
  recording = true;
  /** Called after every access (reads carry the value read). */
  after: AccessHook | null = null;
  /** Lets a test play a misbehaving device for chosen registers. */
  override: ReadOverride | null = null;

  constructor(
    readonly inner: Bus,
    /** Only record accesses to this window base (all windows if null). */
    readonly window: number | null = null,
    /** Guest memory to present instead of the inner bus's (e.g. RAM placed high). */
    private readonly memOverride: GuestMemory | null = null,
  ) {}

  get mem(): GuestMemory {
    return this.memOverride ?? this.inner.mem;
  }

  get irq(): IrqChip {
    return this.inner.irq;
  }

  read(addr: number, width: AccessWidth): number {
    let value = this.inner.read(addr, width);
    if (this.override && (this.window === null || addr - windowOffset(addr) === this.window)) {
      value = this.override(windowOffset(addr), width, value, addr) ?? value;
    }
    this.note({ op: 'R', addr, offset: windowOffset(addr), width, value });
    return value;
  }

  write(addr: number, width: AccessWidth, value: number): void {
    this.inner.write(addr, width, value);
    this.note({ op: 'W', addr, offset: windowOffset(addr), width, value: value >>> 0 });
  }

  clear(): void {
    this.log.length = 0;
  }

  private note(e: TraceEntry): void {
    if (this.window !== null && e.addr - e.offset !== this.window) return;
    if (this.recording) this.log.push(e);
    this.after?.(e);
  }
}

function windowOffset(addr: number): number {
  return (addr - PLATFORM.MMIO_BASE) % MMIO_WINDOW_SIZE;
}

/** "R Status = 0xb" / "W QueueSel <- 0x0", for readable failure output. */
export function formatEntry(e: TraceEntry): string {
  const v = `0x${e.value.toString(16)}`;
  return e.op === 'R' ? `R ${regName(e.offset)} = ${v}` : `W ${regName(e.offset)} <- ${v}`;
}
