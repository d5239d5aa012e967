// The trap path's spin policy (emulator/bus/spin.ts) on a fake clock and
// fake partners: every outcome here follows from what the partner shows
// (heartbeat, sleeping, waking), never from how fast this machine is.
import { describe, expect, it } from 'vitest';
import {
  DRIVER_SPIN_MS,
  IDLE_SPIN_MIN_MS,
  IdleSpin,
  MedianEstimate,
  PartnerSpin,
  SPIN_BACKOFF_MAX,
  STALL_MS,
  SpinBet,
  WORKER_SPIN_MS,
  WakeEstimate,
  idleBudgetMs,
  type Partner,
} from '../../emulator/bus/spin.js';

/** A clock that moves `step` ms per reading, plus whatever a test jumps it by. */
class FakeTime {
  t = 0;
  reads = 0;
  constructor(private readonly step = 0.001) {}
  readonly now = (): number => {
    this.reads++;
    this.t += this.step;
    return this.t;
  };
}

interface FakePartner extends Partner {
  beats: number;
  sleeping: boolean;
  woken: boolean;
}

/** A partner whose beat() may also act (answer, wake up) on its n-th look. */
function partner(opts: { moving?: boolean; sleeping?: boolean; woken?: boolean; wakeMs?: number; onBeat?: (n: number, p: FakePartner) => void }): FakePartner {
  let looks = 0;
  const p: FakePartner = {
    beats: 0,
    sleeping: opts.sleeping ?? false,
    woken: opts.woken ?? false,
    beat() {
      looks++;
      opts.onBeat?.(looks, p);
      if (opts.moving) p.beats++;
      return p.beats;
    },
    asleep: () => p.sleeping,
    waking: () => p.sleeping && p.woken,
    wakeMs: () => opts.wakeMs ?? 0.1,
  };
  return p;
}

const word = (): Int32Array => new Int32Array(1);

describe('PartnerSpin: spin only while the partner makes progress', () => {
  it('a partner that is awake but still (stopped, descheduled) is given up after STALL_MS, not the whole budget', () => {
    const time = new FakeTime();
    const s = new PartnerSpin(partner({}), time.now);
    expect(s.spin(word(), 0, 0, DRIVER_SPIN_MS)).toBe(false);
    expect(s.stats).toMatchObject({ spins: 1, stalls: 1, exhausted: 0, hits: 0 });
    expect(time.t).toBeGreaterThanOrEqual(STALL_MS);
    expect(time.t).toBeLessThan(DRIVER_SPIN_MS / 2);
  });

  it('a partner whose heartbeat keeps moving is waited for up to the cap', () => {
    const time = new FakeTime();
    const s = new PartnerSpin(partner({ moving: true }), time.now);
    expect(s.spin(word(), 0, 0, DRIVER_SPIN_MS)).toBe(false);
    expect(s.stats).toMatchObject({ exhausted: 1, stalls: 0 });
    expect(time.t).toBeGreaterThanOrEqual(DRIVER_SPIN_MS);
  });

  it('the answer ends the spin as a hit', () => {
    const w = word();
    const s = new PartnerSpin(
      partner({ moving: true, onBeat: (n) => n === 5 && (w[0] = 1) }),
      new FakeTime().now,
    );
    expect(s.spin(w, 0, 0, DRIVER_SPIN_MS)).toBe(true);
    expect(s.stats).toMatchObject({ hits: 1, stalls: 0, exhausted: 0 });
  });

  it('a partner that sleeps and was not woken: block at the first look', () => {
    const time = new FakeTime();
    const s = new PartnerSpin(partner({ sleeping: true }), time.now);
    expect(s.spin(word(), 0, 0, DRIVER_SPIN_MS)).toBe(false);
    expect(s.stats).toMatchObject({ asleep: 1, stalls: 0 });
    expect(time.reads).toBe(2);
  });

  it('a partner woken but slow to run: the wake spin lasts about two of its wake-ups, and a miss is no loss (the next wait spins again)', () => {
    const time = new FakeTime();
    const s = new PartnerSpin(partner({ sleeping: true, woken: true, wakeMs: 0.01 }), time.now);
    expect(s.spin(word(), 0, 0, DRIVER_SPIN_MS)).toBe(false);
    expect(s.stats.wakeMisses).toBe(1);
    expect(time.t).toBeGreaterThanOrEqual(0.02);
    expect(time.t).toBeLessThan(0.03);
    // A slow wake-up is the tail of a halted vCPU's as often as contention:
    // backing off on it made two quiet threads block on every access.
    for (let i = 0; i < 5; i++) s.spin(word(), 0, 0, DRIVER_SPIN_MS);
    expect(s.stats).toMatchObject({ wakeMisses: 6, skips: 0 });
    expect(s.bet.losses).toBe(0);
  });

  it('a woken partner that wakes up is then held to the progress rule, and a hit resets the backoff', () => {
    const w = word();
    const p = partner({
      sleeping: true,
      woken: true,
      onBeat: (n, self) => {
        if (n === 3) self.sleeping = false;
        if (n === 10) w[0] = 1;
      },
      moving: true,
    });
    const s = new PartnerSpin(p, new FakeTime().now);
    expect(s.spin(w, 0, 0, DRIVER_SPIN_MS)).toBe(true);
    expect(s.stats).toMatchObject({ hits: 1, wakeMisses: 0 });
  });

  it('a waiter that finds it was descheduled mid-spin stops and blocks, then backs off', () => {
    const time = new FakeTime();
    const s = new PartnerSpin(
      partner({ moving: true, onBeat: (n) => n === 3 && (time.t += 1) }),
      time.now,
    );
    expect(s.spin(word(), 0, 0, DRIVER_SPIN_MS)).toBe(false);
    expect(s.stats).toMatchObject({ preemptions: 1, exhausted: 0 });
    expect(s.spin(word(), 0, 0, DRIVER_SPIN_MS)).toBe(false);
    expect(s.stats.skips).toBe(1);
  });
});

describe('SpinBet', () => {
  it('doubles the waits it skips with each loss in a row, up to SPIN_BACKOFF_MAX, and a win resets it', () => {
    const bet = new SpinBet();
    const skipsAfterLoss = (): number => {
      bet.lost();
      let n = 0;
      while (bet.skip()) n++;
      return n;
    };
    const runs = Array.from({ length: 9 }, skipsAfterLoss);
    expect(runs).toEqual([1, 2, 4, 8, 16, 32, 64, 64, 64]);
    expect(runs.at(-1)).toBe(SPIN_BACKOFF_MAX);
    bet.won();
    expect(skipsAfterLoss()).toBe(1);
    expect(bet.skip()).toBe(false);
  });
});

describe('IdleSpin: the worker waiting for its next request', () => {
  function idle(time: FakeTime, selfWakeMs?: number, driverWakeMs = 0.1) {
    const ta = new Int32Array(2);
    const wake = new WakeEstimate();
    if (selfWakeMs !== undefined) for (let i = 0; i < 16; i++) wake.learn(selfWakeMs);
    return { ta, spin: new IdleSpin(ta, 1, wake, () => driverWakeMs, time.now) };
  }

  it('publishes a heartbeat while it spins, and idles WORKER_SPIN_MS where wake-ups are slow', () => {
    const time = new FakeTime(0.01);
    const { ta, spin } = idle(time);
    expect(spin.spin(0, 0, false)).toBe(0);
    expect(time.t).toBeGreaterThanOrEqual(WORKER_SPIN_MS);
    expect(ta[1]).toBeGreaterThanOrEqual(WORKER_SPIN_MS / 0.01 - 1);
  });

  it('idles only a couple of wake-ups where wake-ups are quick', () => {
    const time = new FakeTime();
    const { spin } = idle(time, 0.004, 0.004);
    spin.spin(0, 0, false);
    expect(time.t).toBeGreaterThanOrEqual(IDLE_SPIN_MIN_MS);
    expect(time.t).toBeLessThan(0.02);
  });

  it('after an answer that woke the driver, a short spin; a driver not back in time is no loss (the next one spins again)', () => {
    const time = new FakeTime();
    const { ta, spin } = idle(time, 0.004, 0.004);
    spin.spin(0, 0, true);
    expect(spin.short).toBe(1);
    expect(time.t).toBeLessThan(0.02);
    expect(spin.shortBet.losses).toBe(0);
    const beats = ta[1]!;
    expect(spin.spin(0, 0, true)).toBe(0);
    expect(spin.short).toBe(2);
    expect(spin.shortBet.skips).toBe(0);
    expect(ta[1]).toBeGreaterThan(beats);
    // An answer the driver was spinning for gets the normal idle spin.
    spin.spin(0, 0, false);
    expect(spin.spins).toBe(3);
  });

  it('a worker descheduled mid-spin goes to sleep at once and backs off', () => {
    const time = new FakeTime(0.01);
    let n = 0;
    const s = new IdleSpin(new Int32Array(2), 1, new WakeEstimate(), () => 0.1, () => {
      if (++n === 4) time.t += 1;
      return time.now();
    });
    s.spin(0, 0, false);
    expect(s.preemptions).toBe(1);
    expect(time.t).toBeLessThan(WORKER_SPIN_MS + 0.1);
    expect(s.bet.losses).toBe(1);
    s.spin(0, 0, false);
    expect(s.bet.skips).toBe(1);
  });

  it('learns the typical gap before a request and, where wake-ups are quick, idles 1.5 times it', () => {
    const time = new FakeTime();
    const ta = new Int32Array(2);
    const wake = new WakeEstimate();
    for (let i = 0; i < 16; i++) wake.learn(0.002);
    let reads = 0;
    // The request arrives after ~40 µs of idling, each time.
    const clock = (): number => {
      const t = time.now();
      if (++reads % 40 === 0) ta[0] = (ta[0]! + 1) | 0;
      return t;
    };
    const s = new IdleSpin(ta, 1, wake, () => 0.002, clock);
    for (let i = 0; i < 20; i++) {
      const last = ta[0]!;
      if (s.spin(0, last, false) !== last) continue;
      // Asleep, as the server would be, until the request wakes it.
      while (ta[0] === last) clock();
      s.woke();
    }
    expect(s.gaps.ms).toBeGreaterThan(0.03);
    expect(s.budgetMs(false)).toBeCloseTo(1.5 * s.gaps.ms, 6);
  });
});

describe('budgets and estimates', () => {
  it('idleBudgetMs', () => {
    expect(idleBudgetMs(false, 0.1, 0.1, 0)).toBe(WORKER_SPIN_MS);
    expect(idleBudgetMs(false, 0.005, 0.1, 0)).toBe(0.01);
    expect(idleBudgetMs(false, 0.005, 0.005, 0.1)).toBeCloseTo(0.15, 9);
    expect(idleBudgetMs(false, 0.005, 0.005, 10)).toBe(WORKER_SPIN_MS);
    // After waking the driver: a couple of its wake-ups only, whatever the gaps.
    expect(idleBudgetMs(true, 0.1, 0.004, 10)).toBe(IDLE_SPIN_MIN_MS);
    expect(idleBudgetMs(true, 0.1, 0.1, 10)).toBeCloseTo(0.2, 9);
  });

  it('the wake-up estimate is a median: one starved wake-up does not swing it', () => {
    const e = new WakeEstimate();
    for (let i = 0; i < 15; i++) e.learn(0.005);
    e.learn(12);
    expect(e.ms).toBe(0.005);
    expect(e.ns).toBe(5000);
    const m = new MedianEstimate(0);
    m.learn(-1);
    m.learn(Number.NaN);
    expect(m.samples).toBe(0);
  });
});
