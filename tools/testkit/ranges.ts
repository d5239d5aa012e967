// Guest-RAM snapshots and the ranges a device wrote: the check that a
// device writes nothing outside what the driver handed over.
import type { GuestMemory } from '../../core/bus.js';

/** A guest-physical range. */
export interface Range {
  addr: number;
  len: number;
}

export function snapshot(mem: GuestMemory): Uint8Array {
  return mem.u8.slice(0, mem.size);
}

/** Guest-physical ranges whose bytes differ from the snapshot. */
export function changedRanges(mem: GuestMemory, before: Uint8Array): Range[] {
  const out: Range[] = [];
  const now = mem.u8;
  let start = -1;
  for (let i = 0; i <= before.length; i++) {
    const diff = i < before.length && now[i] !== before[i];
    if (diff && start < 0) start = i;
    else if (!diff && start >= 0) {
      out.push({ addr: mem.base + start, len: i - start });
      start = -1;
    }
  }
  return out;
}

/** Changed bytes not covered by any allowed range, merged into ranges (linear in RAM size plus allowed bytes). */
export function writesOutside(mem: GuestMemory, before: Uint8Array, allowed: readonly Range[]): Range[] {
  const now = mem.u8;
  const n = Math.min(mem.size, before.length);
  const ok = new Uint8Array(n);
  for (const r of allowed) {
    const start = Math.max(0, r.addr - mem.base);
    const end = Math.min(n, r.addr - mem.base + r.len);
    if (end > start) ok.fill(1, start, end);
  }
  const out: Range[] = [];
  for (let i = 0; i < n; i++) {
    if (now[i] === before[i] || ok[i]) continue;
    const last = out[out.length - 1];
    if (last && last.addr + last.len === mem.base + i) last.len++;
    else out.push({ addr: mem.base + i, len: 1 });
  }
  return out;
}
