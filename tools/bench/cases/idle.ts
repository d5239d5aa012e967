// Idle cost: the CPU a machine's device worker uses while nothing happens.
// A booted system (virtio-rng bound, its one entropy request already served)
// is left alone for the window; the worker's own CPU time comes from
// /proc/self/task/<tid>/schedstat (see thread-cpu.ts), sampled in slices so
// the report has a median and a tail. Process CPU over the same window
// (process.cpuUsage: main thread in the event loop, V8 helpers, the worker)
// is reported next to it as an upper bound.
import { setTimeout as sleep } from 'node:timers/promises';
import { virtioRngDriver } from '../../../core/drivers/rng.js';
import { VirtioSystem } from '../../system.js';
import { summarise } from '../stats.js';
import { cpuNsOf, newThreads, threadIds } from '../thread-cpu.js';
import { BenchSkip, type BenchCase, type BenchContext, type SelfTimed } from '../case.js';

/** The idle window (--quick: half, to keep the suite short). */
const WINDOW_MS = 2000;
const SLICE_MS = 100;

async function idleWorker(ctx: BenchContext): Promise<SelfTimed> {
  const before = threadIds();
  if (!before) throw new BenchSkip('no /proc/self/task on this platform: per-thread CPU time unavailable');
  const sys = await VirtioSystem.create({ devices: ['rng'], slots: 1, drivers: [virtioRngDriver], ...(ctx.boardModule ? { boardModule: ctx.boardModule } : {}) });
  try {
    const worker = newThreads(before, threadIds()!);
    if (worker.length === 0) throw new Error('could not find the device worker thread');
    // Let the boot's last request settle and the worker go to sleep.
    await sleep(50);
    const perSecond: number[] = [];
    const cpu0 = process.cpuUsage();
    const windowTarget = ctx.quick ? WINDOW_MS / 2 : WINDOW_MS;
    const start = performance.now();
    const first = cpuNsOf(worker);
    let last = first;
    let t = start;
    while (performance.now() - start < windowTarget) {
      await sleep(SLICE_MS);
      const now = performance.now();
      const c = cpuNsOf(worker);
      perSecond.push(((c - last) * 1000) / (now - t));
      last = c;
      t = now;
    }
    const windowMs = performance.now() - start;
    const proc = process.cpuUsage(cpu0);
    const s = summarise(perSecond);
    return {
      // Worker CPU ns per second of wall time: per-slice median and p99.
      median_ns: s.median_ns,
      p99_ns: s.p99_ns,
      ops_per_s: NaN,
      extras: {
        unit: 'worker cpu ns per s',
        cpu_percent: ((last - first) / (windowMs * 1e6)) * 100,
        process_cpu_percent: ((proc.user + proc.system) / 1000 / windowMs) * 100,
        window_ms: Math.round(windowMs),
        worker_threads: worker.length,
      },
    };
  } finally {
    await sys.close();
  }
}

export const cases: BenchCase[] = [
  {
    name: 'idle.worker.cpu',
    description: `CPU of the device worker over ${WINDOW_MS / 1000} s with no traffic (per-thread schedstat)`,
    measureSelf: (ctx) => idleWorker(ctx),
  },
];
