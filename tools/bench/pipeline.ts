// Keeping queues busy: each pipe has `depth` request slots. The loop refills
// once an eighth of a pipe's slots are free, kicks (the ring decides whether
// a notify is needed), and harvests used buffers in batches. While the device
// is busy it polls the used rings (as NAPI busy polling does); only when
// nothing completes for POLL_MS does it arm the callback
// (virtqueue_enable_cb_delayed, as a batching driver does) and wait for the
// interrupt as the modelled kernel sleeps. Works across several machines at
// once (the two-worker comparison).
import type { IrqChip } from '../../core/bus.js';
import { toVvq, type VringVirtqueue } from '../../core/virtqueue/vring.js';
import type { Sg } from '../../core/virtio-types.js';
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
  /** Refills that queued something, and harvests that took something (batch counts). */
  refills: number;
  harvests: number;
}

/** How long one wait for an interrupt may block (ms) before the loop looks again. */
const WAIT_SLICE_MS = 20;

class PipeState {
  readonly free: number[];
  readonly vring: VringVirtqueue;
  /** Free slots that make a refill worth it. */
  readonly batch: number;
  inFlight = 0;
  constructor(readonly p: Pipe) {
    this.vring = toVvq(p.q.vq);
    this.free = Array.from({ length: p.depth }, (_, i) => p.depth - 1 - i);
    this.batch = Math.max(1, Math.floor(p.depth / REFILL_FRACTION));
    // Interrupts only when the loop asks for one.
    p.q.vq.disableCb();
    p.q.onInterrupt = () => {};
  }

  /**
   * Queue requests in every free slot, up to `budget`; returns how many.
   * Only once a batch of slots is free (or nothing is in flight): refilling
   * one slot per harvested chain keeps both threads on the same ring lines.
   */
  refill(budget: number): number {
    const vq = this.p.q.vq;
    if (this.free.length < this.batch && this.inFlight > 0 && budget > this.free.length) return 0;
    let added = 0;
    let kicked = false;
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
      // Kick (if the ring asks for one) after the first batch as well as at
      // the end: an idle device starts on it while the rest is added.
      if (added === this.batch) {
        vq.kick();
        kicked = true;
      }
    }
    this.inFlight += added;
    if (added > 0 && (!kicked || added > this.batch)) vq.kick();
    return added;
  }

  /** The used index the driver has consumed up to (for virtqueue_poll). */
  lastSeen(): number {
    return this.vring.lastUsedIdx;
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

/** Refill once 1/REFILL_FRACTION of a pipe's slots are free. */
const REFILL_FRACTION = 8;

/** How long the loop polls the used rings before arming an interrupt (ms). */
const POLL_MS = 1;
/** Gap between two looks at a used index while polling (ms). */
const POLL_GAP_MS = 0.004;

/** Poll every pipe's used ring until one has a buffer (true) or POLL_MS pass (false). */
function pollUsed(states: PipeState[]): boolean {
  const end = performance.now() + POLL_MS;
  for (;;) {
    for (const s of states) if (s.inFlight > 0 && s.p.q.vq.poll(s.lastSeen())) return true;
    // Look at the used index only every few µs: each look pulls the cache
    // line the device is writing for every chain.
    const t = performance.now();
    if (t >= end) return false;
    while (performance.now() - t < POLL_GAP_MS) {
      // local spin
    }
  }
}

/** Complete exactly n requests spread over the pipes (round robin); returns the loop's counters. */
export function runPipeline(pipes: Pipe[], n: number): PipeCounters {
  const states = pipes.map((p) => new PipeState(p));
  const counters: PipeCounters = { completed: 0, waits: 0, refills: 0, harvests: 0 };
  let submitted = 0;
  while (counters.completed < n) {
    let got = 0;
    for (const s of states) {
      const added = s.refill(n - submitted);
      const h = s.harvest();
      submitted += added;
      got += h;
      if (added > 0) counters.refills++;
      if (h > 0) counters.harvests++;
    }
    counters.completed += got;
    if (got > 0 || counters.completed >= n) continue;
    // Nothing used yet. While the device is busy it completes a chain every
    // few hundred ns: poll briefly (as NAPI busy polling does) rather than
    // sleep, since a wake-up costs more than the rest of the ring takes.
    if (pollUsed(states)) continue;
    // Still nothing: arm interrupts and wait for one.
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
