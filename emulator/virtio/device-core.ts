// Device-side virtio state, independent of the transport: status, feature
// negotiation, the queues, config generation, reset, and the context through
// which a DeviceModel works. Transports translate their registers (or channel
// commands) into calls on this class and deliver its notifications.
//
// Status policy (spec 2.1, 3.1; VIRTIO-NOTES §6 BI-19). A write of 0 resets
// the device synchronously. For any other value:
// - only ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK and FAILED are
//   driver-writable; other bits (DEVICE_NEEDS_RESET, SUSPEND without the
//   feature, reserved bits) are ignored and counted as a guest error;
// - bits cannot be cleared except by writing 0: a write that omits set bits
//   keeps them and counts a guest error (ST-R2);
// - FEATURES_OK is validated when it is set: it does not stick if the driver
//   accepted a feature that was not offered, or (modern transports) did not
//   accept VERSION_1, or the model's validateFeatures refuses the set;
//   features are frozen once it sticks;
// - DRIVER_OK on a modern transport does not stick without FEATURES_OK
//   (counted); on a legacy transport it freezes the features written so far
//   (legacy drivers have no FEATURES_OK step);
// - FAILED is stored and changes nothing else: the device keeps serving what
//   it is given until reset (Linux re-sets FAILED on restore and continues).
// No buffers are consumed before DRIVER_OK (ST-D1): QueueNotify before then is
// ignored (a guest error); when DRIVER_OK is set every ready queue is scanned
// once, so buffers made available earlier are not lost.
// While DEVICE_NEEDS_RESET is set the device processes no queue.
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
} from '../../core/uapi/status.js';
import {
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  featureHex,
  fromWords,
  hasBit,
  hi32,
  lo32,
} from '../../core/uapi/features.js';
import type { Chain, ConfigWidth, DeviceContext, DeviceModel } from '../devices/device.js';
import type { DeviceOptionValue } from '../board-contract.js';
import { DescriptorChain } from '../vring/chain.js';
import type { GuestRam } from '../vring/guest-ram.js';
import type { DeviceQueue } from '../vring/queue.js';
import { RingError } from '../vring/ring-error.js';
import { createQueue, queueOfKind } from '../vring/ring-kind.js';
import type { Scheduler } from './scheduler.js';
import { newCounters, type DeviceCounters, type DriverNotifier } from './signals.js';
import { SNAPSHOT_LIMITS, type SnapshotOptions } from '../snapshot/format.js';
import { SnapshotError, bool, count, fail, featureWords, list, record, shown, str, toFeatureWords, u32 } from '../snapshot/fields.js';
import type { QueueState } from '../vring/queue.js';

/** Chains a queue handler may pop per invocation before yielding (vhost's "weight", BI-29). */
export const DEFAULT_QUEUE_WEIGHT = 256;
/** Ask the scheduler whether to yield to a waiting register access every this many chains (mask). */
const YIELD_CHECK_MASK = 3;

const DRIVER_STATUS_BITS =
  VIRTIO_CONFIG_S_ACKNOWLEDGE |
  VIRTIO_CONFIG_S_DRIVER |
  VIRTIO_CONFIG_S_FEATURES_OK |
  VIRTIO_CONFIG_S_DRIVER_OK |
  VIRTIO_CONFIG_S_FAILED;

export interface DeviceCoreOptions {
  ram: GuestRam;
  scheduler: Scheduler;
  signals: DriverNotifier;
  /** Feature bits the transport can carry; offered = model.features & mask. */
  featureMask: bigint;
  /** Modern (virtio 1.x) transport: FEATURES_OK requires VERSION_1 and gates DRIVER_OK. */
  modern: boolean;
  weight?: number;
}

export class DeviceCore {
  /** Split or packed, as the negotiated VIRTIO_F_RING_PACKED decides when each is enabled. */
  readonly queues: DeviceQueue[];
  readonly counters: DeviceCounters = newCounters();
  readonly offered: bigint;
  status = 0;
  /** ConfigGeneration: monotonic across resets, so a reader never sees it repeat. */
  configGeneration = 0;
  /** Bumped by every device reset: timers from older epochs do nothing (queued work re-checks the state when it runs). */
  epoch = 0;

  private driverLo = 0;
  private driverHi = 0;
  /** The driver wrote a non-zero word beyond bit 63: accepted features never offered. */
  private driverBeyond64 = false;
  private negotiated = 0n;
  private frozen = false;
  /**
   * A work item for queue q is in the scheduler. It stays set across resets
   * until that item runs, so a queue never has more than one item pending,
   * whatever the driver does between notifications (BI-29).
   */
  private readonly scheduled: boolean[];
  private readonly timers = new Set<number>();
  private budget = 0;
  /** Chains popped, for the periodic yield check. */
  private popTick = 0;
  private faultArmed = false;
  private refuseFeaturesOnce = false;
  private readonly weight: number;
  private readonly ctx: DeviceContext;

  constructor(
    readonly model: DeviceModel,
    private readonly opts: DeviceCoreOptions,
  ) {
    this.queues = model.queueNumMax.map((max, i) => createQueue('split', i, max));
    this.scheduled = model.queueNumMax.map(() => false);
    this.offered = model.features & opts.featureMask;
    this.weight = opts.weight ?? DEFAULT_QUEUE_WEIGHT;
    this.ctx = new CoreContext(this);
  }

  get numQueues(): number {
    return this.queues.length;
  }

  /** DRIVER_OK and not DEVICE_NEEDS_RESET: queues may be processed. */
  get running(): boolean {
    return (this.status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET)) === VIRTIO_CONFIG_S_DRIVER_OK;
  }

  get features(): bigint {
    return this.negotiated;
  }

  hasFeature(n: number): boolean {
    return hasBit(this.negotiated, n);
  }

  /** Features the driver has written so far (before they are frozen). */
  get driverFeatures(): bigint {
    return fromWords(this.driverLo, this.driverHi);
  }

  guestError(msg: string): void {
    this.counters.guestErrors++;
    this.counters.lastGuestError = msg;
  }

  // ---- feature negotiation ----

  /** 32-bit window `sel` of the offered features; selectors ≥ 2 read 0. */
  deviceFeaturesWord(sel: number): number {
    if (sel === 0) return lo32(this.offered);
    if (sel === 1) return hi32(this.offered);
    return 0;
  }

  /** Write window `sel` of the driver features; ignored once frozen. */
  writeDriverFeaturesWord(sel: number, value: number): void {
    if (this.frozen) {
      this.guestError('driver features written after they were frozen (FEATURES_OK/DRIVER_OK); ignored');
      return;
    }
    if (sel === 0) this.driverLo = value >>> 0;
    else if (sel === 1) this.driverHi = value >>> 0;
    else if (value !== 0) {
      this.driverBeyond64 = true;
      this.guestError(`driver features word ${sel} = 0x${(value >>> 0).toString(16)}: no such features offered`);
    }
  }

  /** Whole-set write for transports that carry 64 bits at once. */
  writeDriverFeatures(features: bigint): void {
    this.writeDriverFeaturesWord(0, lo32(features));
    this.writeDriverFeaturesWord(1, hi32(features));
  }

  private featuresAcceptable(features: bigint): string | null {
    if (this.driverBeyond64) return 'features above bit 63 accepted';
    const extra = features & ~this.offered;
    if (extra !== 0n) return `features ${featureHex(extra)} accepted but not offered`;
    if (this.opts.modern && !hasBit(features, VIRTIO_F_VERSION_1)) return 'VERSION_1 not accepted';
    if (this.refuseFeaturesOnce) {
      this.refuseFeaturesOnce = false;
      return 'refusal injected';
    }
    if (this.model.validateFeatures && !this.guard('validateFeatures', () => this.model.validateFeatures!(features), false)) {
      return 'refused by the device model';
    }
    return null;
  }

  // ---- status ----

  /** A Status write (see the policy at the top of this file). */
  writeStatus(value: number): void {
    value >>>= 0;
    if (value === 0) {
      this.reset();
      return;
    }
    if (value & ~DRIVER_STATUS_BITS) {
      this.guestError(`Status 0x${value.toString(16)}: bits 0x${(value & ~DRIVER_STATUS_BITS).toString(16)} are not driver-writable; ignored`);
    }
    const old = this.status;
    if (old & DRIVER_STATUS_BITS & ~value) {
      this.guestError(`Status 0x${value.toString(16)} would clear bits of 0x${old.toString(16)}; only a write of 0 clears (reset)`);
    }
    let add = value & DRIVER_STATUS_BITS & ~old;
    if (add & VIRTIO_CONFIG_S_FEATURES_OK) {
      const features = this.driverFeatures;
      const why = this.featuresAcceptable(features);
      if (why) {
        add &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        this.guestError(`FEATURES_OK refused: ${why}`);
      } else {
        this.negotiated = features;
        this.frozen = true;
      }
    }
    if (add & VIRTIO_CONFIG_S_DRIVER_OK) {
      const featuresOk = ((old | add) & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
      if (this.opts.modern && !featuresOk) {
        add &= ~VIRTIO_CONFIG_S_DRIVER_OK;
        this.guestError('DRIVER_OK without FEATURES_OK refused');
      } else if (!featuresOk) {
        this.freezeLegacyFeatures();
      }
    }
    this.status = old | add;
    if (add & VIRTIO_CONFIG_S_DRIVER_OK) this.activate();
  }

  /** Legacy negotiation point: what the driver wrote, minus anything never offered. */
  private freezeLegacyFeatures(): void {
    const features = this.driverFeatures;
    const extra = features & ~this.offered;
    if (extra !== 0n || this.driverBeyond64) this.guestError(`legacy driver accepted unoffered features ${featureHex(extra)}; dropped`);
    this.negotiated = features & this.offered;
    this.frozen = true;
  }

  /**
   * DRIVER_OK: the model's activate, then one pass over every ready queue
   * within the Status write (a weight of work at most; the rest is queued),
   * so buffers made available before DRIVER_OK are served and the ring's
   * kick suppression (avail_event, the packed device area) is written
   * before the write returns: what the driver reads next does not depend on
   * when the worker gets to run.
   */
  private activate(): void {
    if (this.model.activate) this.enter('activate', () => this.model.activate!(this.ctx));
    for (const q of this.queues) {
      if (q.ready && !q.parked && this.running) this.enter('handleQueue', () => this.model.handleQueue(this.ctx, q.index));
    }
  }

  /**
   * Full device reset (Status=0, platform reset): synchronous. Status,
   * features, every queue (layout and indices), pending work and timers go
   * back to defaults; work and chains from before can no longer touch guest
   * memory. The transport clears its own registers (InterruptStatus...).
   */
  reset(): void {
    this.epoch++;
    this.status = 0;
    this.driverLo = this.driverHi = 0;
    this.driverBeyond64 = false;
    this.negotiated = 0n;
    this.frozen = false;
    for (const id of this.timers) this.opts.scheduler.clearTimer(id);
    this.timers.clear();
    for (const q of this.queues) q.reset();
    this.guard('reset', () => this.model.reset?.(), undefined);
  }

  /** Unrecoverable error: DEVICE_NEEDS_RESET, config notification if DRIVER_OK (spec 2.1.2). */
  needsReset(reason: string): void {
    this.counters.lastDeviceError = reason;
    if (this.status & VIRTIO_CONFIG_S_NEEDS_RESET) return;
    this.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (this.status & VIRTIO_CONFIG_S_DRIVER_OK) this.sendConfigChange();
  }

  /** Device-specific config changed: new generation, config notification if DRIVER_OK. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (this.status & VIRTIO_CONFIG_S_DRIVER_OK) this.sendConfigChange();
  }

  private sendConfigChange(): void {
    this.counters.configInterrupts++;
    this.opts.signals.configChange();
  }

  // ---- config space ----

  readConfig(offset: number, width: ConfigWidth): number {
    return this.guard('readConfig', () => this.model.readConfig?.(offset, width) ?? 0, 0) >>> 0;
  }

  writeConfig(offset: number, width: ConfigWidth, value: number): void {
    this.enter('writeConfig', () => this.model.writeConfig?.(offset, width, value));
  }

  // ---- queues ----

  /** Ring features in effect: what the driver accepted so far (legacy drivers set up queues before DRIVER_OK freezes the features). */
  private get ringFeatures(): bigint {
    return this.frozen ? this.negotiated : this.driverFeatures & this.offered;
  }

  /** Queues enable as packed rings (VIRTIO_F_RING_PACKED accepted). */
  get packedRing(): boolean {
    return hasBit(this.ringFeatures, VIRTIO_F_RING_PACKED);
  }

  /** Enable queue q with its programmed layout; returns the refusal reason or null. */
  enableQueue(q: number): string | null {
    const f = this.ringFeatures;
    const queue = (this.queues[q] = queueOfKind(this.queues[q]!, hasBit(f, VIRTIO_F_RING_PACKED) ? 'packed' : 'split'));
    const why = queue.enable(this.opts.ram, {
      indirect: hasBit(f, VIRTIO_RING_F_INDIRECT_DESC),
      eventIdx: hasBit(f, VIRTIO_RING_F_EVENT_IDX),
    });
    if (why) this.guestError(`queue ${q} not enabled: ${why}`);
    return why;
  }

  /** QueueReady=0 / QueuePFN=0. */
  stopQueue(q: number): void {
    this.queues[q]!.stop();
    if (this.model.queueReset) this.guard('queueReset', () => this.model.queueReset!(q), undefined);
  }

  /** RING_RESET: the queue returns to its default state (spec 2.6.1). */
  resetQueue(q: number): void {
    this.queues[q]!.reset();
    if (this.model.queueReset) this.guard('queueReset', () => this.model.queueReset!(q), undefined);
  }

  /** Available-buffer notification for queue q. */
  notify(q: number): void {
    this.counters.notifications++;
    const queue = Number.isInteger(q) ? this.queues[q] : undefined;
    let why: string | null = null;
    if (!queue) why = `QueueNotify for non-existent queue ${q}`;
    else if (!(this.status & VIRTIO_CONFIG_S_DRIVER_OK)) why = `QueueNotify(${q}) before DRIVER_OK ignored`;
    else if (!queue.ready) why = `QueueNotify(${q}) for a queue that is not ready`;
    if (why) {
      this.counters.ignoredNotifications++;
      this.guestError(why);
      return;
    }
    if (!this.running || queue!.parked) {
      this.counters.ignoredNotifications++;
      return;
    }
    this.schedule(q);
  }

  /**
   * Queue a run of the model's handler for queue q, unless one is pending.
   * The item checks the device and queue state when it runs, not when it was
   * queued: after a reset or a stop it finds nothing to do, and if the driver
   * has brought the queue back meanwhile it serves it as a kick would.
   */
  private schedule(q: number): void {
    if (this.scheduled[q]) return;
    this.scheduled[q] = true;
    this.opts.scheduler.defer(() => {
      this.scheduled[q] = false;
      const queue = this.queues[q]!;
      if (!this.running || !queue.ready || queue.parked) return;
      this.enter('handleQueue', () => this.model.handleQueue(this.ctx, q));
    });
  }

  // ---- model entry points ----

  /** Arm a one-shot fault: the next model call throws (fault injection). */
  armFault(): void {
    this.faultArmed = true;
  }

  /** Make the next FEATURES_OK fail once (fault injection; spec 2.2.2 says a device should not). */
  refuseNextFeaturesOk(): void {
    this.refuseFeaturesOnce = true;
  }

  /** Model-specific injected event. */
  inject(event: string, args: Readonly<Record<string, DeviceOptionValue>>): boolean {
    if (!this.model.inject) return false;
    let handled = false;
    this.enter('inject', () => {
      handled = this.model.inject!(this.ctx, event, args);
    });
    return handled;
  }

  /** Call into the model with a fresh work budget, then deliver used-buffer notifications. */
  private enter(what: string, fn: () => void): void {
    this.budget = this.weight;
    this.guard(what, fn, undefined);
    this.flushNotifications();
  }

  /** A model that throws puts its device in DEVICE_NEEDS_RESET; nothing escapes. */
  private guard<T>(what: string, fn: () => T, fallback: T): T {
    try {
      if (this.faultArmed) {
        this.faultArmed = false;
        throw new Error('injected device fault');
      }
      return fn();
    } catch (e) {
      this.counters.deviceErrors++;
      this.needsReset(`${this.model.name}.${what} threw: ${e instanceof Error ? e.message : String(e)}`);
      return fallback;
    }
  }

  private flushNotifications(): void {
    for (const q of this.queues) this.flushQueue(q);
  }

  private flushQueue(queue: DeviceQueue): void {
    if (queue.takeNotification(this.opts.ram)) {
      this.counters.usedInterrupts++;
      this.opts.signals.usedBuffer(queue.index);
    }
  }

  // ---- DeviceContext operations (through CoreContext) ----

  /** The work budget and the yield check before each pop: false (and re-queued) when the handler should stop. */
  private mayPop(q: number): boolean {
    // Weight spent, or (checked every few chains) a register access waits:
    // stop here and continue in a later step.
    if (this.budget <= 0 || ((++this.popTick & YIELD_CHECK_MASK) === 0 && this.opts.scheduler.shouldYield())) {
      this.schedule(q);
      return false;
    }
    return true;
  }

  /** A malformed ring: park the queue, DEVICE_NEEDS_RESET. */
  private ringError(queue: DeviceQueue, e: unknown): void {
    if (!(e instanceof RingError)) throw e;
    queue.parked = true;
    this.counters.ringErrors++;
    this.guestError(e.message);
    this.needsReset(e.message);
  }

  // ---- snapshot ----

  /**
   * This device's state for a snapshot. Taken only at a quiescent point (the
   * board has run every queued work item first): a chain still held by the
   * model, or a device timer, makes it throw SnapshotError.
   */
  saveState(opts: SnapshotOptions): CoreState {
    for (const q of this.queues) {
      if (q.pendingChains > 0) throw new SnapshotError(`queue ${q.index} has ${q.pendingChains} chain(s) in flight (held by the ${this.model.name} model)`);
    }
    if (this.timers.size > 0) throw new SnapshotError(`${this.timers.size} device timer(s) pending in the ${this.model.name} model`);
    return {
      status: this.status,
      configGeneration: this.configGeneration,
      driverFeatures: [this.driverLo, this.driverHi],
      driverBeyond64: this.driverBeyond64,
      negotiated: toFeatureWords(this.negotiated),
      injected: { refuseFeaturesOk: this.refuseFeaturesOnce, fault: this.faultArmed },
      queues: this.queues.map((q) => q.saveState()),
      counters: { ...this.counters },
      model: this.model.saveState ? this.model.saveState(opts) : null,
    };
  }

  /**
   * Check a snapshot's device state against this device (throws
   * SnapshotError at `path`); changes nothing. Status may only hold bits
   * the device sets; the features must be what this device could have
   * negotiated (offered, VERSION_1 on a modern transport, frozen exactly
   * when FEATURES_OK or DRIVER_OK is set); one queue record per queue,
   * each checked by its ring kind.
   */
  checkState(raw: unknown, path: string, opts: SnapshotOptions): CoreState {
    const s = record(raw, path, CORE_KEYS);
    const status = u32(s['status'], `${path}.status`);
    if (status & ~(DRIVER_STATUS_BITS | VIRTIO_CONFIG_S_NEEDS_RESET)) {
      fail(`${path}.status`, `0x${status.toString(16)} has bits a device never shows (0x${(status & ~(DRIVER_STATUS_BITS | VIRTIO_CONFIG_S_NEEDS_RESET)).toString(16)})`);
    }
    if (this.opts.modern && status & VIRTIO_CONFIG_S_DRIVER_OK && !(status & VIRTIO_CONFIG_S_FEATURES_OK)) {
      fail(`${path}.status`, `0x${status.toString(16)}: DRIVER_OK without FEATURES_OK on a modern transport`);
    }
    u32(s['configGeneration'], `${path}.configGeneration`);
    const driver = featureWords(s['driverFeatures'], `${path}.driverFeatures`);
    const beyond = bool(s['driverBeyond64'], `${path}.driverBeyond64`);
    const negotiated = featureWords(s['negotiated'], `${path}.negotiated`);
    const frozen = (status & (VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)) !== 0;
    const np = `${path}.negotiated`;
    if (!frozen && negotiated !== 0n) fail(np, 'features negotiated without FEATURES_OK or DRIVER_OK');
    if (status & VIRTIO_CONFIG_S_FEATURES_OK) {
      if (negotiated !== driver) fail(np, `${featureHex(negotiated)} is not what the driver accepted (${featureHex(driver)})`);
      if (beyond || negotiated & ~this.offered) fail(np, `${featureHex(negotiated)} holds features this device does not offer (offered ${featureHex(this.offered)})`);
      if (this.opts.modern && !hasBit(negotiated, VIRTIO_F_VERSION_1)) fail(np, 'VERSION_1 not negotiated on a modern transport');
      if (this.model.validateFeatures && !this.model.validateFeatures(negotiated)) fail(np, `${featureHex(negotiated)} is refused by the ${this.model.name} model`);
    } else if (frozen && negotiated !== (driver & this.offered)) {
      fail(np, `${featureHex(negotiated)} is not the offered part of what the legacy driver accepted (${featureHex(driver & this.offered)})`);
    }
    const inj = record(s['injected'], `${path}.injected`, ['refuseFeaturesOk', 'fault']);
    bool(inj['refuseFeaturesOk'], `${path}.injected.refuseFeaturesOk`);
    bool(inj['fault'], `${path}.injected.fault`);
    // The ring features in effect for queues enabled in this state (see ringFeatures).
    const ringFeatures = frozen ? negotiated : driver & this.offered;
    list(s['queues'], `${path}.queues`, SNAPSHOT_LIMITS.maxQueues, (q, qp, i) => this.checkQueueState(q, qp, i, ringFeatures, status), this.queues.length);
    checkCounters(s['counters'], `${path}.counters`);
    const mp = `${path}.model`;
    if (this.model.checkState) this.model.checkState(s['model'], mp, opts);
    else if (s['model'] !== null) fail(mp, `the ${this.model.name} model holds no state, got ${s['model'] === undefined ? 'nothing' : 'a value'}`);
    return s as unknown as CoreState;
  }

  private checkQueueState(raw: unknown, path: string, q: number, ringFeatures: bigint, status: number): QueueState {
    const pre = record(raw, path, ['kind', 'regs', 'ready', 'parked'], ['features', 'ring']);
    const kind = pre['kind'];
    if (kind !== 'split' && kind !== 'packed') fail(`${path}.kind`, `expected 'split' or 'packed', got ${shown(kind)}`);
    if (kind === 'packed' && !hasBit(this.offered, VIRTIO_F_RING_PACKED)) fail(`${path}.kind`, 'a packed ring on a device that does not offer VIRTIO_F_RING_PACKED');
    // A ready queue's layout is the one the ring features chose when it was enabled.
    if (pre['ready'] === true && (kind === 'packed') !== hasBit(ringFeatures, VIRTIO_F_RING_PACKED)) {
      fail(`${path}.kind`, `a ${kind} ring with the ring features ${featureHex(ringFeatures)}`);
    }
    const state = queueOfKind(this.queues[q]!, kind).checkState(this.opts.ram, raw, path);
    if (!state.ready) return state;
    const f = state.features!;
    if (f.indirect && !hasBit(ringFeatures, VIRTIO_RING_F_INDIRECT_DESC)) fail(`${path}.features.indirect`, 'INDIRECT_DESC was not accepted');
    if (f.eventIdx && !hasBit(ringFeatures, VIRTIO_RING_F_EVENT_IDX)) fail(`${path}.features.eventIdx`, 'EVENT_IDX was not accepted');
    if (state.parked && !(status & VIRTIO_CONFIG_S_NEEDS_RESET)) fail(`${path}.parked`, 'a parked queue without DEVICE_NEEDS_RESET');
    return state;
  }

  /** Load a state checkState accepted into this device, fresh from its factory. */
  loadState(s: CoreState, opts: SnapshotOptions): void {
    this.status = s.status;
    this.configGeneration = s.configGeneration;
    [this.driverLo, this.driverHi] = s.driverFeatures;
    this.driverBeyond64 = s.driverBeyond64;
    this.negotiated = fromWords(...s.negotiated);
    this.frozen = (s.status & (VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)) !== 0;
    this.refuseFeaturesOnce = s.injected.refuseFeaturesOk;
    this.faultArmed = s.injected.fault;
    s.queues.forEach((qs, i) => {
      const q = (this.queues[i] = queueOfKind(this.queues[i]!, qs.kind));
      q.loadState(this.opts.ram, qs);
    });
    Object.assign(this.counters, s.counters);
    if (this.model.loadState) this.model.loadState(s.model, opts);
  }

  /**
   * After a restore: serve every ready queue once, as a kick would, so
   * buffers the driver made available before the snapshot (and any kick
   * the device had not acted on) are not lost, and the ring's kick
   * suppression is written afresh.
   */
  resume(): void {
    if (!this.running) return;
    for (const q of this.queues) if (q.ready && !q.parked) this.schedule(q.index);
  }

  /** @internal */
  ctxPop(q: number): Chain | null {
    const queue = this.queues[q];
    if (!queue || !this.running || !queue.ready || queue.parked) return null;
    if (!this.mayPop(q)) return null;
    try {
      const chain = queue.pop(this.opts.ram);
      if (chain) this.budget--;
      return chain;
    } catch (e) {
      this.ringError(queue, e);
      return null;
    }
  }

  /** @internal */
  ctxServe(q: number, serve: (chain: Chain) => number): void {
    const queue = this.queues[q];
    if (!queue) return;
    const ram = this.opts.ram;
    for (;;) {
      if (!this.running || !queue.ready || queue.parked) return;
      if (!this.mayPop(q)) return;
      let chain: DescriptorChain | null;
      try {
        chain = queue.popRecord(ram);
      } catch (e) {
        this.ringError(queue, e);
        return;
      }
      if (!chain) return;
      this.budget--;
      try {
        const len = serve(chain);
        if (!queue.parked && queue.pushUsed(ram, chain, len)) this.counters.usedBuffers++;
      } finally {
        chain.retire();
      }
    }
  }

  /** @internal */
  ctxPushUsed(chain: Chain, len: number): void {
    if (!(chain instanceof DescriptorChain)) return;
    const queue = this.queues[chain.queue];
    if (queue && !queue.parked && queue.pushUsed(this.opts.ram, chain, len)) this.counters.usedBuffers++;
  }

  /** @internal */
  ctxNotifyUsed(q: number): void {
    const queue = this.queues[q];
    if (queue) this.flushQueue(queue);
  }

  /** @internal */
  ctxSetTimer(ms: number, fn: () => void): number {
    const epoch = this.epoch;
    const id = this.opts.scheduler.setTimer(ms, () => {
      this.timers.delete(id);
      if (epoch === this.epoch) this.enter('timer', fn);
    });
    this.timers.add(id);
    return id;
  }

  /** @internal */
  ctxClearTimer(id: number): void {
    if (this.timers.delete(id)) this.opts.scheduler.clearTimer(id);
  }
}

/** A device core's part of a snapshot (see emulator/snapshot/format.ts). */
export interface CoreState {
  status: number;
  configGeneration: number;
  driverFeatures: [number, number];
  driverBeyond64: boolean;
  negotiated: [number, number];
  /** Armed fault injections (control 'inject' refuse-features, 'fault' throw-in-device). */
  injected: { refuseFeaturesOk: boolean; fault: boolean };
  queues: QueueState[];
  counters: DeviceCounters;
  /** The model's own state (null: it holds none). */
  model: unknown;
}

const CORE_KEYS = ['status', 'configGeneration', 'driverFeatures', 'driverBeyond64', 'negotiated', 'injected', 'queues', 'counters', 'model'];
const COUNT_KEYS = ['guestErrors', 'notifications', 'ignoredNotifications', 'usedBuffers', 'usedInterrupts', 'configInterrupts', 'ringErrors', 'deviceErrors'] as const;
const TEXT_KEYS = ['lastGuestError', 'lastDeviceError'] as const;

function checkCounters(v: unknown, path: string): DeviceCounters {
  const r = record(v, path, [...COUNT_KEYS, ...TEXT_KEYS]);
  for (const k of COUNT_KEYS) count(r[k], `${path}.${k}`);
  for (const k of TEXT_KEYS) if (r[k] !== null) str(r[k], `${path}.${k}`, SNAPSHOT_LIMITS.maxMessage);
  return r as unknown as DeviceCounters;
}

/** The model's handle on its device; exposes only DeviceContext. */
class CoreContext implements DeviceContext {
  constructor(private readonly core: DeviceCore) {}
  get features(): bigint {
    return this.core.features;
  }
  hasFeature(n: number): boolean {
    return this.core.hasFeature(n);
  }
  get running(): boolean {
    return this.core.running;
  }
  pop(queue: number): Chain | null {
    return this.core.ctxPop(queue);
  }
  pushUsed(chain: Chain, len: number): void {
    this.core.ctxPushUsed(chain, len);
  }
  serve(queue: number, serve: (chain: Chain) => number): void {
    this.core.ctxServe(queue, serve);
  }
  notifyUsed(queue: number): void {
    this.core.ctxNotifyUsed(queue);
  }
  configChanged(): void {
    this.core.configChanged();
  }
  needsReset(reason: string): void {
    this.core.needsReset(reason);
  }
  setTimer(ms: number, fn: () => void): number {
    return this.core.ctxSetTimer(ms, fn);
  }
  clearTimer(id: number): void {
    this.core.ctxClearTimer(id);
  }
}

/** Features every transport of this emulator can carry (bits 0-63). */
export const ALL_FEATURES = (1n << 64n) - 1n;
/** Legacy virtio-mmio exposes only the low 32 bits (no VERSION_1 and nothing that needs it). */
export const LEGACY_FEATURES = (1n << 32n) - 1n;
