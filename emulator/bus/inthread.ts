// The in-thread bus: the same Bus as the trap mailbox, but the board runs in
// the caller's thread and each access is a direct call. Deferred device work
// runs right after each access, so a test sees its effects at once. Used by
// unit tests and as the benchmark baseline without a thread crossing.
import { BusError, type AccessWidth, type Bus, type GuestMemory } from '../../core/bus.js';
import type { Board, ControlRequest, ControlResponse } from '../board-contract.js';
import type { IrqController } from '../irq/controller.js';
import { badAccess, maskToWidth } from './mailbox.js';

/** Deferred work per step, and the most steps run after one access. */
const DEFERRED_BUDGET = 16;
const MAX_DEFERRED_STEPS = 4096;

export class InThreadBus implements Bus {
  readonly mem: GuestMemory;
  readonly irq: IrqController;
  private failure: BusError | null = null;
  private accesses = 0;

  constructor(
    private readonly board: Board,
    mem: GuestMemory,
    irq: IrqController,
  ) {
    this.mem = mem;
    this.irq = irq;
  }

  /**
   * No device thread here: a caller blocked waiting for an interrupt runs
   * due device timers itself. The machine installs this as the interrupt
   * controller's pump.
   */
  readonly pump = (): number => {
    this.runDeferred();
    return this.board.nextTimerMs();
  };

  read(addr: number, width: AccessWidth): number {
    this.check(addr, width);
    this.accesses++;
    const v = this.board.read(addr, width) >>> 0;
    this.runDeferred();
    return v;
  }

  write(addr: number, width: AccessWidth, value: number): void {
    this.check(addr, width);
    this.accesses++;
    this.board.write(addr, width, maskToWidth(width, value));
    this.runDeferred();
  }

  control(req: ControlRequest): ControlResponse {
    if (this.failure) throw this.failure;
    switch (req.op) {
      case 'ping':
        return { ok: true, value: 'pong' };
      case 'stats': {
        const board = this.board.control(req);
        const bus = { kind: 'inthread', accesses: this.accesses };
        return { ok: true, value: board.ok ? { ...asRecord(board.value), bus } : { bus } };
      }
      case 'fault':
        if (req.kind === 'crash' || req.kind === 'hang') {
          return { ok: false, error: `fault '${req.kind}' needs the worker bus` };
        }
        return this.board.control(req);
      default: {
        const res = this.board.control(req);
        this.runDeferred();
        return res;
      }
    }
  }

  /** Run deferred device work and due timers until none is left (bounded). */
  runDeferred(): void {
    const board = this.board;
    for (let steps = 0; steps < MAX_DEFERRED_STEPS; steps++) {
      if (!board.hasDeferred() && !(board.nextTimerMs() <= 0)) return;
      if (!board.runDeferred(DEFERRED_BUDGET) && !board.hasDeferred() && !(board.nextTimerMs() <= 0)) return;
    }
  }

  close(): void {
    if (!this.failure) this.failure = new BusError('EMU_CLOSED', 'the machine is closed');
    // A successor machine on the same controller may have its own pump there.
    if (this.irq.pump === this.pump) this.irq.pump = null;
  }

  get error(): BusError | null {
    return this.failure;
  }

  private check(addr: number, width: number): void {
    if (this.failure) throw this.failure;
    const bad = badAccess(addr, width);
    if (bad) throw bad;
  }
}

export function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
}
