// The spin-then-block policy both ends of the trap path share (the
// mailbox's driver and worker ends, the interrupt wait): spin on a shared
// word for a bounded time, checking the clock only every so often, then let
// the caller block in Atomics.wait.

/**
 * Spin this long before blocking in Atomics.wait. It must exceed the other
 * side's wake-up latency: a thread woken from Atomics.wait takes ~100 µs to
 * run again on a 2-vCPU VM, and with a shorter spin the partner gives up
 * while it wakes, so every access pays two wake-ups (measured: 40 µs gave
 * ~100 µs per access in short bursts, 200 µs gave 0.5 µs). Idle cost is one
 * spin per burst of traffic.
 */
export const DRIVER_SPIN_MS = 0.2;
/**
 * The worker waits longer before it sleeps: between bursts of accesses the
 * driver often spends a few hundred µs on its own work (reaping and
 * resubmitting a queue's worth of requests), and a sleeping worker makes
 * the next access pay a futex wake on both sides. An idle worker spins once
 * after the last access, then blocks.
 */
export const WORKER_SPIN_MS = 1;
/** Check the clock only every so many spin iterations (performance.now() is ~50 ns). */
export const SPIN_CHECK_MASK = 255;

/**
 * Spin while ta[index] === value, for at most `ms`. Returns the value that
 * ended the spin, or `value` if the time ran out.
 */
export function spinWhile(ta: Int32Array, index: number, value: number, ms: number): number {
  let end = 0;
  for (let i = 1; ; i++) {
    const v = Atomics.load(ta, index);
    if (v !== value) return v;
    if ((i & SPIN_CHECK_MASK) === 0) {
      const now = performance.now();
      if (end === 0) end = now + ms;
      else if (now >= end) return value;
    }
  }
}
