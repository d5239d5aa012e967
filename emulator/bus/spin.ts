// The spin-then-block policy of the trap path (the mailbox's driver and
// worker ends, the interrupt wait). Spinning on a shared word answers in well
// under a microsecond, but only while the other side is on a CPU: on an
// oversubscribed machine a side that spins while its partner is descheduled
// burns the time slice the partner needs, and once the two share a CPU every
// spin delays the very wake-up it waits for. So each side decides per wait,
// from what it can see of the other:
// - the worker publishes a heartbeat: it moves every ~1 µs while the worker
//   spins for requests, when it wakes, and every few chains of device work.
//   A waiter spins only while the heartbeat moves; it blocks once the
//   heartbeat has been still for STALL_MS, and at once when the partner
//   says it sleeps;
// - each side measures its own wake-up latency (notify to running again)
//   and publishes it; spins that stand in for a wake-up last about two of
//   them: after notifying a sleeping partner, and the worker's idle spin
//   once it had to wake the driver. On a quiet VM an idle vCPU halts and a
//   wake-up takes ~100 µs, so those spins are long and cost nobody anything;
//   on a busy machine a wake-up takes a few µs and they shrink to match;
// - the worker idles long after an answer the driver was spinning for (the
//   driver is on a CPU and its next access is near): WORKER_SPIN_MS where
//   wake-ups are slow, else enough for the typical gap;
// - every spin is a bet that the partner runs (SpinBet). It loses when an
//   awake partner goes still, or when this thread finds it was
//   descheduled mid-spin (a gap between two clock checks; typically the
//   partner it just woke took its CPU). After a loss the next waits block
//   right after the first few hundred loads, more of them after each loss in
//   a row; a win resets it. Where the two threads keep their CPUs spins never
//   lose; where they share one the pair falls back to plain blocking (two
//   futex wake-ups per access) and tries a spin again now and then;
// - Atomics.notify only when the other side said it sleeps.
// Every wait still has its deadline; this only decides spin or block.

/** Cap on one spin of the driver for an answer (and of the interrupt wait) before it blocks. */
export const DRIVER_SPIN_MS = 0.2;
/**
 * Cap on the worker's idle spin, reached while wake-ups are slow (an idle
 * vCPU halts; see SLOW_WAKE_MS): between bursts of accesses the driver often
 * spends a few hundred µs on its own work (reaping and resubmitting a
 * queue's worth of requests), and a sleeping worker makes the next access
 * pay a ~100 µs wake-up, while the spin costs nobody anything.
 */
export const WORKER_SPIN_MS = 1;
/**
 * Wake-ups this slow mean the CPU the woken thread runs on was idle (a 2-vCPU
 * VM takes ~100 µs to run a thread on a halted vCPU, a busy one ~5 µs):
 * spare CPU, so idling is free and blocking expensive.
 */
export const SLOW_WAKE_MS = 0.03;
/** Spin about this many wake-ups' worth where a wake-up is what the spin saves. */
export const WAKE_SPIN_FACTOR = 2;
/** The worker's idle spin at least this long: the gaps of a register sequence are ~1 µs of driver work. */
export const IDLE_SPIN_MIN_MS = 0.01;
/** Where wake-ups are quick, the worker idles this many times the typical gap (if that is longer). */
export const GAP_SPIN_FACTOR = 1.5;
/** Check the clock only every so many spin iterations (performance.now() is ~50 ns). */
export const SPIN_CHECK_MASK = 255;
/**
 * A gap this long between two clock checks of one spin (normally ~1 µs
 * apart) means the spinning thread lost its CPU: the spin ends.
 */
export const PREEMPT_GAP_MS = 0.05;
/**
 * How long a waiter sits through an awake partner's silence before it
 * blocks. A handled access takes under 1 µs and the heartbeat moves every
 * ~1 µs, so a longer silence means the partner is not running.
 */
export const STALL_MS = 0.015;
/** First guess of a side's wake-up latency, until it has measured some (the quiet 2-vCPU VM's). */
export const WAKE_ESTIMATE_MS = 0.1;
/** Samples the wake-up and gap estimates are the median of. */
export const ESTIMATE_SAMPLES = 16;
/** Most waits a lost spin makes block at once (SpinBet). */
export const SPIN_BACKOFF_MAX = 64;

/** Milliseconds. */
export type Clock = () => number;

/**
 * Milliseconds on a clock every thread of the process agrees on (to well
 * under a µs): each thread's performance.now() counts from its own
 * timeOrigin, so the sum is the shared one. For wake-up stamps that cross
 * threads.
 */
export const sharedClock: Clock = () => performance.timeOrigin + performance.now();

/**
 * Spin while ta[index] === value, for at most `ms`. Returns the value that
 * ended the spin, or `value` if the time ran out. The fixed spin of the
 * bench's raw floors (sab.pingpong, sab.ring); the trap path uses PartnerSpin
 * and IdleSpin.
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

/** The median of the last ESTIMATE_SAMPLES samples, recomputed every few samples. Allocation-free. */
export class MedianEstimate {
  ms: number;
  samples = 0;
  private readonly ring = new Float64Array(ESTIMATE_SAMPLES);
  private readonly sorted = new Float64Array(ESTIMATE_SAMPLES);

  constructor(initialMs: number) {
    this.ms = initialMs;
  }

  learn(sampleMs: number): void {
    if (!(sampleMs >= 0) || !Number.isFinite(sampleMs)) return;
    this.ring[this.samples % ESTIMATE_SAMPLES] = sampleMs;
    this.samples++;
    // Sorting 16 numbers costs ~100 ns: every fourth sample once warmed up.
    if (this.samples > 4 && (this.samples & 3) !== 0) return;
    const n = Math.min(this.samples, ESTIMATE_SAMPLES);
    const s = this.sorted.subarray(0, n);
    s.set(this.ring.subarray(0, n));
    s.sort();
    this.ms = n & 1 ? s[n >> 1]! : (s[(n >> 1) - 1]! + s[n >> 1]!) / 2;
  }

  /** The estimate in whole nanoseconds, for a shared Int32 word. */
  get ns(): number {
    return Math.min(0x7fff_ffff, Math.round(this.ms * 1e6));
  }
}

/** A side's wake-up latency: Atomics.notify by the other side to running again. */
export class WakeEstimate extends MedianEstimate {
  constructor() {
    super(WAKE_ESTIMATE_MS);
  }
}

/**
 * Whether spinning pays, learnt from how spins end: a spin that lost (an
 * awake partner stalled, or this thread was descheduled mid-spin)
 * makes the next waits block at once after the first few hundred loads,
 * more of them after each loss in a row (exponential backoff up to
 * SPIN_BACKOFF_MAX); a spin that won resets it. On a machine where the two
 * threads keep their CPUs spins never lose; where they share one, a spin
 * only delays the partner it waits for, and the two fall back to blocking,
 * trying a spin again now and then. Allocation-free.
 */
export class SpinBet {
  /** Waits still to block without spinning, and how many the next loss makes it. */
  private skipLeft = 0;
  private backoff = 1;
  /** Spins lost, and waits that blocked at once because of them. */
  losses = 0;
  skips = 0;

  /** True (and counted) when this wait should not spin. */
  skip(): boolean {
    if (this.skipLeft === 0) return false;
    this.skipLeft--;
    this.skips++;
    return true;
  }

  won(): void {
    this.backoff = 1;
  }

  lost(): void {
    this.losses++;
    this.skipLeft = this.backoff;
    this.backoff = Math.min(SPIN_BACKOFF_MAX, this.backoff * 2);
  }
}

/** The spin after notifying a sleeping partner: a couple of its wake-ups. */
export function wakeSpinMs(partnerWakeMs: number, capMs: number): number {
  return Math.min(capMs, WAKE_SPIN_FACTOR * partnerWakeMs);
}

/**
 * The worker's idle spin after an answer. `driverSlept`: the driver had to
 * be woken for it, and will take a wake-up (driverWakeMs) before its next
 * access; the worker then idles a couple of those only, since on a shared
 * CPU its spin is what keeps the driver from running. Otherwise the driver
 * is running: WORKER_SPIN_MS while wake-ups are slow (spare CPU), else a
 * couple of wake-ups' worth or, if longer, enough for the typical gap before
 * the next access (a driver streaming a ring refills every few tens of µs).
 */
export function idleBudgetMs(driverSlept: boolean, selfWakeMs: number, driverWakeMs: number, gapMs: number): number {
  if (driverSlept) return Math.min(WORKER_SPIN_MS, Math.max(IDLE_SPIN_MIN_MS, WAKE_SPIN_FACTOR * driverWakeMs));
  const wakeMs = Math.min(selfWakeMs, driverWakeMs);
  if (wakeMs >= SLOW_WAKE_MS) return WORKER_SPIN_MS;
  return Math.min(WORKER_SPIN_MS, Math.max(IDLE_SPIN_MIN_MS, WAKE_SPIN_FACTOR * wakeMs, GAP_SPIN_FACTOR * gapMs));
}

/** What a waiter can see of the side it waits for. */
export interface Partner {
  /** A word the partner bumps while it runs (spinning, waking, stepping through work). */
  beat(): number;
  /** The partner said it blocks in Atomics.wait. */
  asleep(): boolean;
  /** It sleeps, but has been notified since it went to sleep: it is waking up. */
  waking(): boolean;
  /** The partner's own wake-up latency as it measured and published it, ms. */
  wakeMs(): number;
}

/** How a waiter's spins ended (counters, never reset). */
export interface SpinStats {
  /** Spins started (after the fast path missed). */
  spins: number;
  /** Ended by the awaited word changing. */
  hits: number;
  /** Cut short: an awake partner showed no progress for STALL_MS. */
  stalls: number;
  /** Cut short: the partner sleeps (and nobody has woken it). */
  asleep: number;
  /** Cut short: a woken partner did not show life within the wake spin. */
  wakeMisses: number;
  /** Not spun at all: spins had been losing (SpinBet). */
  skips: number;
  /** Ran to the cap with the partner making progress all along. */
  exhausted: number;
  /** Cut short: this side found it had been descheduled mid-spin. */
  preemptions: number;
}

export function newSpinStats(): SpinStats {
  return { spins: 0, hits: 0, stalls: 0, asleep: 0, wakeMisses: 0, skips: 0, exhausted: 0, preemptions: 0 };
}

/**
 * A waiter's spin on a word its partner will change, adapted to the
 * partner: only while it makes progress, and for a partner that is waking
 * up only for about its wake-up latency. One per waiting side;
 * allocation-free.
 */
export class PartnerSpin {
  readonly stats: SpinStats = newSpinStats();
  readonly bet = new SpinBet();

  constructor(
    readonly partner: Partner,
    /** Local monotonic ms (injectable for tests). */
    private readonly now: Clock = () => performance.now(),
  ) {}

  /**
   * Spin while ta[index] === value, for at most capMs. True when the word
   * changed; false when the caller should block: spins keep losing (the
   * bet), the partner is still for STALL_MS, sleeps unwoken, is waking up
   * but not in time, this thread was descheduled, or capMs is spent.
   */
  spin(ta: Int32Array, index: number, value: number, capMs: number): boolean {
    const stats = this.stats;
    const partner = this.partner;
    const bet = this.bet;
    if (bet.skip()) {
      stats.skips++;
      return false;
    }
    let waking = partner.waking();
    const wakeBudget = waking ? wakeSpinMs(partner.wakeMs(), capMs) : 0;
    stats.spins++;
    const start = this.now();
    let beat = partner.beat();
    let lastProgress = start;
    let prev = start;
    for (;;) {
      for (let i = 0; i <= SPIN_CHECK_MASK; i++) {
        if (Atomics.load(ta, index) !== value) {
          stats.hits++;
          bet.won();
          return true;
        }
      }
      const now = this.now();
      if (now - prev > PREEMPT_GAP_MS) {
        stats.preemptions++;
        bet.lost();
        return false;
      }
      prev = now;
      const b = partner.beat();
      const moved = b !== beat;
      if (moved) {
        beat = b;
        lastProgress = now;
      }
      if (waking) {
        if (moved || !partner.asleep()) {
          // Awake: from here on, the progress rule.
          waking = false;
          lastProgress = now;
        } else if (now - start >= wakeBudget) {
          // Not a lost bet: a wake-up slower than usual is the tail of a
          // halted vCPU's wake-ups as often as a partner waiting for this
          // CPU, and counting it made two quiet threads back each other
          // off into blocking on every access (each side's trial spin met a
          // partner that was itself sleeping). A spin that keeps a woken
          // partner off its CPU ends as a preemption, which does count.
          stats.wakeMisses++;
          return false;
        }
      } else if (partner.asleep()) {
        stats.asleep++;
        return false;
      } else if (now - lastProgress >= STALL_MS) {
        stats.stalls++;
        bet.lost();
        return false;
      }
      if (now - start >= capMs) {
        stats.exhausted++;
        return false;
      }
    }
  }
}

/**
 * The worker's spin for its next request, with a heartbeat. The first few
 * hundred loads read no clock (in a burst the request is there by then);
 * after that the budget is idleBudgetMs(), cut short when the thread finds
 * it was descheduled mid-spin. That part is a bet (SpinBet): it loses when
 * the worker was descheduled meanwhile (typically by the driver it just woke
 * taking its CPU); a spin that simply runs out of budget is no loss.
 * Allocation-free; the clock is injectable for tests.
 */
export class IdleSpin {
  /** Idle spins past the first loads; of them short ones after waking the driver; spins cut short by a preemption. */
  spins = 0;
  short = 0;
  preemptions = 0;
  /** Idle spins after an answer the driver was spinning for, and short ones after waking it: two bets. */
  readonly bet = new SpinBet();
  readonly shortBet = new SpinBet();
  /** The typical gap before the next request, when longer than the first loads. */
  readonly gaps = new MedianEstimate(0);
  private beatValue = 0;
  /** When the last spin that ended in a sleep began (the gap is measured at the wake-up). */
  private sleptFrom = 0;

  constructor(
    private readonly ta: Int32Array,
    private readonly beatIndex: number,
    readonly selfWake: WakeEstimate,
    /** The driver's published wake-up latency, ms. */
    private readonly driverWakeMs: () => number,
    private readonly now: Clock = () => performance.now(),
  ) {}

  /** Publish a heartbeat: this side is running. */
  pulse(): void {
    this.beatValue = (this.beatValue + 1) | 0;
    Atomics.store(this.ta, this.beatIndex, this.beatValue);
  }

  /** The idle budget, ms. */
  budgetMs(driverSlept: boolean): number {
    return idleBudgetMs(driverSlept, this.selfWake.ms, this.driverWakeMs(), this.gaps.ms);
  }

  /** A request woke the worker after the spin gave up: the whole gap is a sample. */
  woke(): void {
    this.gaps.learn(this.now() - this.sleptFrom);
  }

  /**
   * Spin while ta[index] === value; returns the value that ended it, or
   * `value` when it is time to sleep. `driverSlept`: the last answer had to
   * wake the driver.
   */
  spin(index: number, value: number, driverSlept: boolean): number {
    const ta = this.ta;
    for (let i = 0; i <= SPIN_CHECK_MASK; i++) {
      const v = Atomics.load(ta, index);
      if (v !== value) return v;
    }
    const start = this.now();
    this.sleptFrom = start;
    const bet = driverSlept ? this.shortBet : this.bet;
    if (bet.skip()) return value;
    const budget = this.budgetMs(driverSlept);
    this.spins++;
    if (driverSlept) this.short++;
    let prev = start;
    for (;;) {
      this.pulse();
      for (let i = 0; i <= SPIN_CHECK_MASK; i++) {
        const v = Atomics.load(ta, index);
        if (v !== value) {
          // Won only if the worker kept its CPU meanwhile.
          if (this.now() - prev > PREEMPT_GAP_MS) bet.lost();
          else bet.won();
          this.gaps.learn(prev - start);
          return v;
        }
      }
      const now = this.now();
      if (now - prev > PREEMPT_GAP_MS) {
        // Descheduled while spinning: the CPU is better given back than spent waiting.
        this.preemptions++;
        bet.lost();
        return value;
      }
      prev = now;
      if (now - start >= budget) {
        // The burst ended, or the driver was not back within a couple of
        // its wake-ups: sleep, without counting a loss (see PartnerSpin's
        // wake spin); a spin that kept the driver off its CPU ends as a
        // preemption above.
        return value;
      }
    }
  }
}
