// Property: the register sequences of mmio-registers.ts, through the real
// trap mailbox to the device worker. No access may fail (a BusError means an
// exception escaped the worker, or an access took longer than the trap
// deadline), the invariants hold as far as the driver thread can observe
// them while the worker runs device work on its own, and Status=0 brings
// every device back to its reset state. One machine serves every run: a
// 'fresh' power event and zeroed RAM start each run from a new board state.
import * as fc from 'fast-check';
import type { AccessWidth } from '../../core/bus.js';
import { MMIO_WINDOW_SIZE, REG } from '../../core/uapi/mmio.js';
import type { BoardStats } from '../../emulator/board.js';
import { Machine } from '../../emulator/machine.js';
import type { DeviceSpec } from '../../emulator/board-contract.js';
import { STATUS_BITS, check, hex, type SlotView } from './fuzz-board.js';
import { SeqState, applyRegOp, regOp, type RegOp, type RegTarget } from './mmio-registers.js';

export const WORKER_DEVICES: (DeviceSpec & { type: 'rng' })[] = [
  { type: 'rng', transport: 'mmio' },
  { type: 'rng', transport: 'mmio-legacy' },
];

export class WorkerRegisterFuzz {
  private constructor(readonly m: Machine) {}

  static async create(): Promise<WorkerRegisterFuzz> {
    const m = await Machine.create({ devices: WORKER_DEVICES.map((d, slot) => ({ ...d, slot })), slots: WORKER_DEVICES.length, ramSize: 64 * 1024 });
    return new WorkerRegisterFuzz(m);
  }

  close(): Promise<void> {
    return this.m.close();
  }

  private base(slot: number): number {
    return this.m.config.mmioBase + MMIO_WINDOW_SIZE * slot;
  }

  private target(): RegTarget {
    const m = this.m;
    const view = m.mem.view;
    return {
      read: (s, o, w) => m.bus.read(this.base(s) + o, w),
      write: (s, o, v, w) => m.bus.write(this.base(s) + o, w, v),
      inject: (slot, event) => void m.control({ op: 'inject', slot, event }),
      power: (model) => void m.control({ op: 'power', model }),
      // The worker keeps real time: nothing to advance.
      advance: () => {},
      run: () => void m.control({ op: 'ping' }),
      ramWriteU16: (a, v) => view.setUint16(a - m.mem.base, v, true),
      ramWriteU32: (a, v) => view.setUint32(a - m.mem.base, v >>> 0, true),
      ramRead16: (a) => view.getUint16(a - m.mem.base, true),
    };
  }

  private stats(): BoardStats {
    const res = this.m.control({ op: 'stats' });
    if (!res.ok) throw new Error(`stats refused: ${res.error}`);
    return res.value as BoardStats;
  }

  /**
   * What the driver thread can check while the worker runs device work by
   * itself: stats are one atomic snapshot on the worker; a line the device
   * raises afterwards may already be high, but a set InterruptStatus bit can
   * only be cleared by this thread, so the line must then be high.
   */
  private checkInvariants(where: string): void {
    const s = this.stats();
    check(s.internalErrors === 0, `${where}: board internal error: ${s.lastInternalError}`);
    for (const slot of s.slots as SlotView[]) {
      if (!slot.type) continue;
      const at = `${where}: slot ${slot.slot}`;
      check((slot.status & ~STATUS_BITS) === 0, `${at}: Status ${hex(slot.status)} has undefined bits`);
      check((slot.interruptStatus & ~3) === 0, `${at}: InterruptStatus ${hex(slot.interruptStatus)} has undefined bits`);
      if (slot.interruptStatus !== 0) check(this.m.irq.level(slot.slot), `${at}: InterruptStatus ${slot.interruptStatus} with the line low`);
    }
  }

  private resetView(t: RegTarget, slot: number): number[] {
    const version = t.read(slot, REG.Version, 4);
    const regs: number[] = [REG.MagicValue, REG.Version, REG.DeviceID, REG.DeviceFeatures, REG.QueueNumMax, REG.InterruptStatus, REG.Status];
    regs.push(version === 2 ? REG.QueueReady : REG.QueuePFN);
    return regs.map((r) => t.read(slot, r, 4));
  }

  /** One sequence; throws (an InvariantError, or the BusError of a failed access) on a violation. */
  run(ops: RegOp[]): void {
    const m = this.m;
    const res = m.control({ op: 'power', model: 'fresh' });
    check(res.ok, `power fresh refused: ${res.ok ? '' : res.error}`);
    m.mem.u8.fill(0);
    const t = this.target();
    const fresh = WORKER_DEVICES.map((_, s) => this.resetView(t, s));
    const st = new SeqState();
    ops.forEach((op, i) => {
      applyRegOp(t, op, st);
      this.checkInvariants(`after op ${i} (${op.k})`);
    });
    WORKER_DEVICES.forEach((_, s) => t.write(s, REG.Status, 0, 4 as AccessWidth));
    WORKER_DEVICES.forEach((d, s) => {
      const now = this.resetView(t, s);
      check(now.every((v, i) => v === fresh[s]![i]), `slot ${s} (${d.type} on ${d.transport}) after Status=0: [${now.map(hex).join(' ')}], reset values [${fresh[s]!.map(hex).join(' ')}]`);
    });
    this.checkInvariants('after the reset');
  }

  property(maxOps = 40): fc.IPropertyWithHooks<[RegOp[]]> {
    return fc.property(fc.array(regOp(WORKER_DEVICES.length), { minLength: 1, maxLength: maxOps, size: 'max' }), (ops) => this.run(ops));
  }
}
