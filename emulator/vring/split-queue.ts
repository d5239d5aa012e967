// Device side of one split virtqueue (spec 2.7): the layout the driver
// programmed, the device's private indices, and the ring operations with
// every guest-controlled value checked. Transports program the layout
// fields; the device core enables, pops and pushes.
import {
  VRING_AVAIL_ALIGN,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_ALIGN,
  VRING_USED_ALIGN,
  VRING_USED_ELEM_SIZE,
  availRingSize,
  descTableSize,
  isPowerOf2,
  usedRingSize,
  vringNeedEvent,
} from '../../core/uapi/ring.js';
import { ChainBuffers, DescriptorChain, walkChainInto, type WalkParams } from './chain.js';
import { addr64, type GuestRam } from './guest-ram.js';
import { QueueLayout, checkCommonState, checkLayoutOn, copyRegisters, registersOf, type DeviceQueue, type QueueState, type RingFeatures } from './queue.js';
import { RingError } from './ring-error.js';
import { bool, fail, int } from '../snapshot/fields.js';

export type { RingFeatures };

export class SplitQueue extends QueueLayout implements DeviceQueue {
  readonly kind = 'split';
  // --- device state ---
  ready = false;
  /** A malformed ring was seen: no processing until the queue or device is reset. */
  parked = false;
  /** Bumped by every stop/reset: chains and deferred work from older epochs are dead. */
  epoch = 0;
  /** Layout in effect while ready. */
  size = 0;
  desc = 0;
  driver = 0;
  device = 0;
  nextAvail = 0;
  nextUsed = 0;
  /** The avail idx last read from the ring (entries up to it are published). */
  private availShadow = 0;
  private features: RingFeatures = { indirect: false, eventIdx: false };
  /** Heads popped and not yet used: a head made available twice while in flight is corruption. */
  private inFlight = new Uint8Array(0);
  private inFlightCount = 0;
  /** Used idx at the last notification decision (vhost's signalled_used). */
  private signalledUsed = 0;
  private signalledValid = false;
  private unsignalled = false;
  /** The serve path's chain record, reused for every chain (created at the first serve). */
  private record: DescriptorChain | null = null;
  /** The layout chains are walked against, set when the queue is enabled. */
  private readonly walkParams: WalkParams;

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    super();
    this.walkParams = { queue: index, descTable: 0, queueSize: 0, indirectAllowed: false };
  }

  get pendingChains(): number {
    return this.inFlightCount;
  }

  /** Why the programmed layout cannot be enabled, or null if it can (spec 2.7, BI-13/14/15). */
  check(ram: GuestRam): string | null {
    const n = this.num;
    if (n === 0) return 'QueueNum is 0';
    if (!isPowerOf2(n)) return `QueueNum ${n} is not a power of 2`;
    if (n > this.maxSize) return `QueueNum ${n} > QueueNumMax ${this.maxSize}`;
    const areas: [string, number, number, number][] = [
      ['descriptor table', addr64(this.descLo, this.descHi), descTableSize(n), VRING_DESC_ALIGN],
      ['driver area', addr64(this.driverLo, this.driverHi), availRingSize(n), VRING_AVAIL_ALIGN],
      ['device area', addr64(this.deviceLo, this.deviceHi), usedRingSize(n), VRING_USED_ALIGN],
    ];
    for (const [name, addr, len, align] of areas) {
      if (addr === 0) return `${name} address is 0`;
      if (addr % align !== 0) return `${name} address is not ${align}-aligned`;
      if (!ram.contains(addr, len)) return `${name} (${len} bytes) is not inside guest RAM`;
    }
    for (let i = 0; i < 3; i++) {
      for (let j = i + 1; j < 3; j++) {
        const [ni, ai, li] = areas[i]!;
        const [nj, aj, lj] = areas[j]!;
        if (ai < aj + lj && aj < ai + li) return `${ni} overlaps ${nj}`;
      }
    }
    return null;
  }

  /** Enable with the programmed layout; returns the refusal reason or null. Indices start at 0. */
  enable(ram: GuestRam, features: RingFeatures): string | null {
    const why = this.check(ram);
    if (why) return why;
    this.size = this.num;
    this.desc = addr64(this.descLo, this.descHi);
    this.driver = addr64(this.driverLo, this.driverHi);
    this.device = addr64(this.deviceLo, this.deviceHi);
    this.features = { ...features };
    const w = this.walkParams;
    w.descTable = this.desc;
    w.queueSize = this.size;
    w.indirectAllowed = features.indirect;
    this.nextAvail = 0;
    this.nextUsed = 0;
    this.availShadow = 0;
    this.inFlight = new Uint8Array(this.size);
    this.inFlightCount = 0;
    this.signalledValid = false;
    this.unsignalled = false;
    this.parked = false;
    this.ready = true;
    return null;
  }

  /** QueueReady=0 / QueuePFN=0: stop using the ring; the layout registers are kept. */
  stop(): void {
    this.ready = false;
    this.parked = false;
    this.epoch++;
    this.inFlight = new Uint8Array(0);
    this.inFlightCount = 0;
    this.unsignalled = false;
  }

  /** Device reset or queue reset (RING_RESET): everything back to defaults. */
  reset(): void {
    this.stop();
    this.num = 0;
    this.setDesc(0, 0);
    this.setDriver(0, 0);
    this.setDevice(0, 0);
    this.size = this.desc = this.driver = this.device = 0;
    this.nextAvail = this.nextUsed = this.availShadow = 0;
  }

  /**
   * Pop the next available chain as a chain of its own (a model may hold
   * it), or null if the ring is empty. Throws RingError on corruption (avail
   * idx more than a ring ahead, head out of range or already in flight,
   * malformed chain).
   */
  pop(ram: GuestRam): DescriptorChain | null {
    const head = this.nextHead(ram);
    if (head < 0) return null;
    const bufs = new ChainBuffers();
    this.walk(ram, head, bufs);
    return new DescriptorChain(ram, this, this.index, bufs).reuse(this.take(head), this.epoch);
  }

  /**
   * The same, into the queue's reusable record: for a chain that is served
   * and pushed before the next pop (the record is retired in between), so
   * popping allocates nothing.
   */
  popRecord(ram: GuestRam): DescriptorChain | null {
    const head = this.nextHead(ram);
    if (head < 0) return null;
    const rec = (this.record ??= new DescriptorChain(ram, this, this.index, new ChainBuffers()));
    rec.retire();
    this.walk(ram, head, rec.bufs);
    return rec.reuse(this.take(head), this.epoch);
  }

  /** The head of the next available chain, checked, or -1 if the ring is empty. */
  private nextHead(ram: GuestRam): number {
    if (!this.ready || this.parked) return -1;
    const idxAddr = this.driver + 2;
    // Read avail idx only when the entries seen last time are used up
    // (vhost's avail_idx shadow): the driver rewrites that cache line on
    // every add, so reading it per chain bounced it between the threads.
    let availIdx = this.availShadow;
    if (availIdx === this.nextAvail) availIdx = this.availShadow = ram.loadU16(idxAddr);
    if (availIdx === this.nextAvail) {
      if (!this.features.eventIdx) return -1;
      // Ask to be kicked at the next buffer, then look again: the driver may
      // have published between our read and our avail_event store.
      ram.storeU16(this.device + 4 + VRING_USED_ELEM_SIZE * this.size, this.nextAvail);
      availIdx = this.availShadow = ram.loadU16(idxAddr);
      if (availIdx === this.nextAvail) return -1;
    }
    const pending = (availIdx - this.nextAvail) & 0xffff;
    if (pending > this.size) {
      throw new RingError(this.index, `avail idx ${availIdx} is ${pending} entries past next_avail ${this.nextAvail} (queue size ${this.size})`);
    }
    const head = ram.readU16(this.driver + 4 + 2 * (this.nextAvail & (this.size - 1)));
    if (head >= this.size) throw new RingError(this.index, `avail ring head ${head} ≥ queue size ${this.size}`);
    if (this.inFlight[head]) throw new RingError(this.index, `head ${head} made available again while in flight`);
    return head;
  }

  private walk(ram: GuestRam, head: number, out: ChainBuffers): void {
    walkChainInto(ram, this.walkParams, head, out);
  }

  /** The chain at head validated: consume its avail entry and mark it in flight. */
  private take(head: number): number {
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    this.inFlight[head] = 1;
    this.inFlightCount++;
    return head;
  }

  /** Put a popped chain on the used ring. False (nothing written) if it is stale or not in flight. */
  pushUsed(ram: GuestRam, chain: DescriptorChain, len: number): boolean {
    if (chain.owner !== this || chain.epoch !== this.epoch || !this.ready || !this.inFlight[chain.head]) return false;
    const written = Math.min(Math.max(0, Math.floor(len)), chain.writableBytes);
    const elem = this.device + 4 + VRING_USED_ELEM_SIZE * (this.nextUsed & (this.size - 1));
    ram.writeU32(elem, chain.head);
    ram.writeU32(elem + 4, written);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    ram.storeU16(this.device + 2, this.nextUsed); // publishes the element
    this.inFlight[chain.head] = 0;
    this.inFlightCount--;
    this.unsignalled = true;
    return true;
  }

  /**
   * Whether used buffers pushed since the last decision need a used-buffer
   * notification (spec 2.7.10): VRING_AVAIL_F_NO_INTERRUPT without EVENT_IDX,
   * used_event with it. Consumes the pending state.
   */
  takeNotification(ram: GuestRam): boolean {
    if (!this.unsignalled || !this.ready) return false;
    this.unsignalled = false;
    if (!this.features.eventIdx) {
      return (ram.loadU16(this.driver) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    }
    const usedEvent = ram.loadU16(this.driver + 4 + 2 * this.size);
    const old = this.signalledUsed;
    const valid = this.signalledValid;
    this.signalledUsed = this.nextUsed;
    this.signalledValid = true;
    return !valid || vringNeedEvent(usedEvent, this.nextUsed, old);
  }

  // ---- snapshot ----

  saveState(): QueueState {
    const s: QueueState = { kind: 'split', regs: registersOf(this), ready: this.ready, parked: this.parked };
    if (this.ready) {
      s.features = { ...this.features };
      s.ring = {
        nextAvail: this.nextAvail,
        nextUsed: this.nextUsed,
        signalledUsed: this.signalledUsed,
        signalledValid: this.signalledValid,
        unsignalled: this.unsignalled,
      };
    }
    return s;
  }

  checkState(ram: GuestRam, raw: unknown, path: string): QueueState {
    const state = checkCommonState(raw, path, SPLIT_RING_KEYS);
    if (!state.ready) return state;
    checkLayoutOn(new SplitQueue(this.index, this.maxSize), state.regs, ram, path);
    const r = state.ring!;
    for (const k of ['nextAvail', 'nextUsed', 'signalledUsed']) int(r[k], `${path}.ring.${k}`, 0, 0xffff);
    for (const k of ['signalledValid', 'unsignalled']) bool(r[k], `${path}.ring.${k}`);
    if (r['nextAvail'] !== r['nextUsed']) fail(`${path}.ring`, 'next_avail and next_used differ: chains in flight, which a snapshot never holds');
    return state;
  }

  loadState(ram: GuestRam, state: QueueState): void {
    copyRegisters(state.regs, this);
    if (!state.ready) return;
    this.enable(ram, state.features!);
    const r = state.ring!;
    // The avail shadow restarts at next_avail: the first pop reads avail idx.
    this.nextAvail = this.availShadow = r['nextAvail'] as number;
    this.nextUsed = r['nextUsed'] as number;
    this.signalledUsed = r['signalledUsed'] as number;
    this.signalledValid = r['signalledValid'] as boolean;
    this.unsignalled = r['unsignalled'] as boolean;
    this.parked = state.parked;
  }
}

const SPLIT_RING_KEYS = ['nextAvail', 'nextUsed', 'signalledUsed', 'signalledValid', 'unsignalled'];
