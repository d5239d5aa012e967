// Holding two register traces and two sets of device-visible results side by
// side. Ring addresses are where each kernel's allocator put the rings, so
// the values written to the queue address registers are compared as
// "an address" (zero or not), everything else bit for bit.
import { REG, regName } from '../../core/uapi/mmio.js';
import type { Access } from './access-log.js';

/** Registers whose value is a guest-physical address (or PFN) chosen by the kernel's allocator. */
const ADDRESS_REGS = new Set<number>([
  REG.QueueDescLow,
  REG.QueueDescHigh,
  REG.QueueDriverLow,
  REG.QueueDriverHigh,
  REG.QueueDeviceLow,
  REG.QueueDeviceHigh,
  REG.QueuePFN,
]);

/** The value as compared: addresses only as zero / non-zero. */
export function comparable(a: Access): string {
  const v = ADDRESS_REGS.has(a.reg) ? (a.value === 0 ? '0' : '(address)') : `0x${a.value.toString(16)}`;
  return `${a.slot}:${a.dir}:${a.reg}:${a.width}:${v}`;
}

/** One access as a reader of the trace sees it. */
export function describeAccess(a: Access): string {
  const v = ADDRESS_REGS.has(a.reg) && a.value !== 0 ? `0x${a.value.toString(16)} (address)` : `0x${a.value.toString(16)}`;
  return `slot ${a.slot} ${a.dir === 'r' ? 'read' : 'write'}${a.width * 8} ${regName(a.reg)} ${a.dir === 'r' ? '->' : '<-'} ${v}`;
}

export interface TraceDifference {
  /** Position of the first access that differs (0-based). */
  index: number;
  model: string | null;
  linux: string | null;
  /** A few accesses before it, the same in both traces. */
  before: string[];
}

/** The first access where the traces differ, or null if they are the same. */
export function firstDifference(model: readonly Access[], linux: readonly Access[]): TraceDifference | null {
  const n = Math.max(model.length, linux.length);
  for (let i = 0; i < n; i++) {
    const m = model[i];
    const l = linux[i];
    if (m && l && comparable(m) === comparable(l)) continue;
    return {
      index: i,
      model: m ? describeAccess(m) : null,
      linux: l ? describeAccess(l) : null,
      before: model.slice(Math.max(0, i - 3), i).map(describeAccess),
    };
  }
  return null;
}

/** Device-visible results of one slot, as both kernels left it. */
export interface SlotResult {
  slot: number;
  /** Status as the device holds it. */
  status: number;
  driver: string | null;
  features: string;
  usedBuffers: number;
  notifications: number;
  usedInterrupts: number;
  configInterrupts: number;
  guestErrors: number;
}

export interface ResultDifference {
  slot: number;
  field: keyof SlotResult | 'bytes';
  model: string;
  linux: string;
}

export function resultDifferences(model: readonly SlotResult[], linux: readonly SlotResult[]): ResultDifference[] {
  const out: ResultDifference[] = [];
  for (const m of model) {
    const l = linux.find((x) => x.slot === m.slot);
    if (!l) continue;
    for (const k of Object.keys(m) as (keyof SlotResult)[]) {
      if (m[k] !== l[k]) out.push({ slot: m.slot, field: k, model: String(m[k]), linux: String(l[k]) });
    }
  }
  return out;
}
