// The machine's virtual clock: ns since the board was built (power-on), the
// time device timers and the rtc's reading follow. 'host' (the default)
// runs with the host's monotonic clock, and a step moves it further ahead;
// 'manual' moves only when told (the qtest clock_step/clock_set commands),
// as QEMU's virtual clock under -accel qtest, so a client is in charge of
// guest time and a device timer fires when the client steps past it.

export type ClockMode = 'host' | 'manual';
export const CLOCK_MODES: readonly ClockMode[] = ['host', 'manual'];

/** The clock is an int64 of ns, as QEMU's: it never passes this. */
export const CLOCK_MAX_NS = 2n ** 63n - 1n;

/** The host's UTC reference, in ns since the Unix epoch (ms resolution: Date.now()). */
export function hostUtcNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export class VirtualClock {
  private readonly startMs: number;
  /** What steps added on top of the host's time ('host'), or the whole time ('manual'). */
  private aheadNs = 0n;
  /** UTC at power-on ('manual': a clock device reads this plus the virtual time). */
  private utcAtStart: bigint;

  constructor(
    readonly mode: ClockMode = 'host',
    private readonly hostMs: () => number = () => performance.now(),
    private readonly utcNow: () => bigint = hostUtcNs,
  ) {
    this.startMs = hostMs();
    this.utcAtStart = utcNow();
  }

  get utcAtStartNs(): bigint {
    return this.utcAtStart;
  }

  nowNs(): bigint {
    if (this.mode === 'manual') return this.aheadNs;
    const ran = BigInt(Math.max(0, Math.floor((this.hostMs() - this.startMs) * 1e6)));
    const t = ran + this.aheadNs;
    return t > CLOCK_MAX_NS ? CLOCK_MAX_NS : t;
  }

  /** The virtual time in ms, for timers kept in ms. */
  nowMs(): number {
    return Number(this.nowNs()) / 1e6;
  }

  /** UTC as the guest sees it: the host's plus what steps added ('host'), power-on UTC plus the virtual time ('manual'). */
  utcNs(): bigint {
    return (this.mode === 'host' ? this.utcNow() : this.utcAtStart) + this.aheadNs;
  }

  /**
   * For a snapshot: what steps added, and UTC at power-on. Loaded into a new
   * board's clock, a 'manual' clock goes on from the same time and guest UTC;
   * a 'host' one keeps the steps (guest UTC is the host's plus them) while
   * its time since power-on restarts with the new board, as after a VMM
   * restart (a snapshot has no device timer pending).
   */
  saveState(): { aheadNs: string; utcAtStartNs: string } {
    return { aheadNs: this.aheadNs.toString(), utcAtStartNs: this.utcAtStart.toString() };
  }

  loadState(aheadNs: bigint, utcAtStartNs: bigint): void {
    this.aheadNs = aheadNs;
    this.utcAtStart = utcAtStartNs;
  }

  /** Move to `ns` when that is ahead (never back, never past CLOCK_MAX_NS); returns the time now. */
  advanceTo(ns: bigint): bigint {
    const target = ns > CLOCK_MAX_NS ? CLOCK_MAX_NS : ns;
    const now = this.nowNs();
    if (target > now) this.aheadNs += target - now;
    return this.nowNs();
  }
}
