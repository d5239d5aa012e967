// Keeping queues busy: each pipe has `depth` request slots; the loop refills
// every free slot, kicks (the ring decides whether a notify is needed), and
// harvests used buffers in batches. When nothing has completed it arms the
// callback (virtqueue_enable_cb_delayed, as a batching driver does) and waits
// for the interrupt like the modelled kernel sleeps. Works across several
// machines at once (the two-worker comparison).
import type { IrqChip } from '../../core/bus.js';
import type { Sg } from '../../core/virtqueue/types.js';
import type { BenchQueue } from './bench-driver.js';

export interface Pipe {
  q: BenchQueue;
  irq: IrqChip;
  /** Request slots (at most the ring's free descriptors / descriptors per request). */
  depth: number;
  /** The scatter list of slot i and how many of its entries are device-readable. */
  request(slot: number): { sgs: Sg[]; out: number };
  /** Called with each completed slot and its used length; throw on a bad completion. */
  complete?(slot: number, len: number): void;
}

export interface PipeCounters {
  completed: number;
  /** Times the driver waited for an interrupt with nothing to harvest. */
  waits: number;
}

/** How long one wait for an interrupt may block (ms) before the loop looks again. */
const WAIT_SLICE_MS = 20;

class PipeState {
  readonly free: number[];
  inFlight = 0;
  constructor(readonly p: Pipe) {
    this.free = Array.from({ length: p.depth }, (_, i) => p.depth - 1 - i);
    // Interrupts only when the loop asks for one.
    p.q.vq.disableCb();
    p.q.onInterrupt = () => {};
  }

  /** Queue requests in every free slot, up to `budget`; returns how many. */
  refill(budget: number): number {
    const vq = this.p.q.vq;
    let added = 0;
    while (added < budget && this.free.length > 0) {
      const slot = this.free.pop()!;
      const { sgs, out } = this.p.request(slot);
      const err = vq.addSgs(sgs, out, sgs.length - out, slot);
      if (err) {
        this.free.push(slot);
        if (added === 0 && this.inFlight === 0) throw new Error(`${vq.name}: add failed (${err}) with nothing in flight`);
        break;
      }
      added++;
    }
    this.inFlight += added;
    if (added > 0) vq.kick();
    return added;
  }

  harvest(): number {
    const vq = this.p.q.vq;
    let n = 0;
    for (let b = vq.getBuf(); b; b = vq.getBuf()) {
      this.p.complete?.(b.data, b.len);
      this.free.push(b.data);
      n++;
    }
    this.inFlight -= n;
    return n;
  }
}

/** Complete exactly n requests spread over the pipes (round robin); returns the loop's counters. */
export function runPipeline(pipes: Pipe[], n: number): PipeCounters {
  const states = pipes.map((p) => new PipeState(p));
  const counters: PipeCounters = { completed: 0, waits: 0 };
  let submitted = 0;
  while (counters.completed < n) {
    let got = 0;
    for (const s of states) {
      submitted += s.refill(n - submitted);
      got += s.harvest();
    }
    counters.completed += got;
    if (got > 0 || counters.completed >= n) continue;
    // Nothing used yet: arm interrupts and wait for one.
    counters.waits++;
    let ready = false;
    for (const s of states) {
      if (s.inFlight > 0 && !s.p.q.vq.enableCbDelayed()) ready = true;
    }
    if (!ready) {
      if (states.length === 1) states[0]!.p.irq.waitAndDeliver(WAIT_SLICE_MS);
      else for (const s of states) s.p.irq.deliverPending();
    }
    for (const s of states) s.p.q.vq.disableCb();
  }
  return counters;
}
