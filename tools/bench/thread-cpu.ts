// CPU time of individual threads of this process, from Linux's
// /proc/self/task/<tid>/schedstat (nanoseconds on the CPU, first field).
// A device worker is found as the thread(s) that appeared while the machine
// started. This needs no cooperation from the worker, which sits blocked in
// Atomics.wait and could not answer a control request without being woken.
import { readFileSync, readdirSync } from 'node:fs';

const TASKS = '/proc/self/task';

/** Thread ids of this process, or null where /proc is not available. */
export function threadIds(): Set<number> | null {
  try {
    return new Set(readdirSync(TASKS).map(Number));
  } catch {
    return null;
  }
}

/** Nanoseconds thread `tid` has run, or null if it is gone or schedstat is missing. */
export function threadCpuNs(tid: number): number | null {
  try {
    const first = readFileSync(`${TASKS}/${tid}/schedstat`, 'utf8').split(' ')[0];
    const v = Number(first);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Threads in `after` that were not in `before`. */
export function newThreads(before: Set<number>, after: Set<number>): number[] {
  return [...after].filter((t) => !before.has(t));
}

/** Total CPU ns of the given threads (those that can be read). */
export function cpuNsOf(tids: readonly number[]): number {
  let sum = 0;
  for (const t of tids) sum += threadCpuNs(t) ?? 0;
  return sum;
}
