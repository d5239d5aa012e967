// A board module for machinery-fault tests: the real board, plus one
// test-only register outside every window through which a test arms a crash
// of the device worker at a chosen point (Machine.create({ boardModule })).
// The worker dies the way any exception escaping the board kills it, so the
// driver side meets the real EMU_WORKER_DEAD path.
import type { AccessWidth } from '../../core/bus.js';
import { createBoard as createRealBoard } from '../../emulator/board.js';
import type { Board, BoardConfig, ControlRequest, ControlResponse, IrqLines } from '../../emulator/board-contract.js';

export const FAULT_BOARD_MODULE = new URL('./fault-board.js', import.meta.url);

/** Guest-physical address of the fault register: between the virtio-mmio windows and the channel subsystem. */
export const FAULT_REG = 0x0b00_0000;

/** Write (n << 8) | CRASH_AT_ACCESS: the n-th register access after this write kills the worker while it is pending. */
export const CRASH_AT_ACCESS = 1;
/** Write CRASH_IN_DEVICE_WORK: the next run of deferred device work (queue processing) kills the worker. */
export const CRASH_IN_DEVICE_WORK = 2;

export function crashAtAccess(n: number): number {
  return (n << 8) | CRASH_AT_ACCESS;
}

class FaultBoard implements Board {
  /** Accesses left before the armed crash; 0 = not armed. */
  private countdown = 0;
  private crashInWork = false;

  constructor(private readonly inner: Board) {}

  private tick(what: string): void {
    if (this.countdown > 0 && --this.countdown === 0) throw new Error(`fault-board: worker crash armed at this ${what}`);
  }

  read(addr: number, width: AccessWidth): number {
    this.tick(`read of 0x${addr.toString(16)}`);
    return this.inner.read(addr, width);
  }

  write(addr: number, width: AccessWidth, value: number): void {
    if (addr === FAULT_REG) {
      if ((value & 0xff) === CRASH_AT_ACCESS) this.countdown = value >>> 8;
      if ((value & 0xff) === CRASH_IN_DEVICE_WORK) this.crashInWork = true;
      return;
    }
    this.tick(`write of 0x${addr.toString(16)}`);
    this.inner.write(addr, width, value);
  }

  runDeferred(budget: number): boolean {
    if (this.crashInWork && this.inner.hasDeferred()) throw new Error('fault-board: worker crash during device work');
    return this.inner.runDeferred(budget);
  }

  hasDeferred(): boolean {
    return this.inner.hasDeferred();
  }

  nextTimerMs(): number {
    return this.inner.nextTimerMs();
  }

  control(req: ControlRequest): ControlResponse {
    return this.inner.control(req);
  }
}

export function createBoard(config: BoardConfig, ram: Uint8Array, irq: IrqLines): Board {
  return new FaultBoard(createRealBoard(config, ram, irq));
}
