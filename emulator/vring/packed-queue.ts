// Device side of one packed virtqueue (spec 2.8): one descriptor ring that
// both sides write, AVAIL/USED wrap counters, and the two event suppression
// areas (the driver's at QueueDriver, the device's at QueueDevice). Every
// guest-controlled value is checked as the split ring's are; a malformed
// ring throws RingError, which the device core turns into
// DEVICE_NEEDS_RESET with the queue parked.
//
// Checks (VIRTIO-NOTES §6 and the packed classes after BI-30 in the README):
// - enable: QueueNum 1..QueueNumMax (any value, not only powers of 2), the
//   ring 16-aligned and the event areas 4-aligned, non-zero, inside RAM,
//   outside the register windows, not overlapping;
// - a descriptor is available when its AVAIL bit equals the driver's wrap
//   counter and its USED bit does not; a chain's later descriptors must be
//   available too (the driver makes the head available last), else the
//   wrap bits are bad;
// - a chain (or an indirect table) has at most queue size descriptors, and
//   the descriptors in flight never exceed the ring;
// - the buffer id (in the chain's last descriptor, spec 2.8.6) is below the
//   queue size and not already in flight;
// - INDIRECT only if negotiated, alone (not in a NEXT chain, spec 2.8.13
//   driver requirements), never inside an indirect table; the table's len a
//   non-zero multiple of 16 with at most queue size entries, inside RAM;
//   NEXT and id inside a table are ignored as the spec says;
// - every buffer non-empty and inside RAM, the chain ≤ 2^32 bytes,
//   device-readable buffers before device-writable ones.
// Work per pop is bounded by the queue size (ring part) plus the table.
import {
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_SIZE,
  VRING_PACKED_DESC,
  VRING_PACKED_DESC_ALIGN,
  VRING_PACKED_DESC_F_AVAIL_MASK,
  VRING_PACKED_DESC_F_USED_MASK,
  VRING_PACKED_EVENT,
  VRING_PACKED_EVENT_ALIGN,
  VRING_PACKED_EVENT_FLAG_DESC,
  VRING_PACKED_EVENT_FLAG_DISABLE,
  VRING_PACKED_EVENT_FLAG_ENABLE,
  VRING_PACKED_EVENT_F_WRAP_CTR,
  VRING_PACKED_EVENT_SIZE,
  VIRTQUEUE_MAX_SIZE,
  packedRingSize,
  vringNeedEvent,
} from '../../core/uapi/ring.js';
import { ChainBuffers, DescriptorChain, MAX_CHAIN_BYTES } from './chain.js';
import { addr64, type GuestRam } from './guest-ram.js';
import { QueueLayout, checkCommonState, checkLayoutOn, copyRegisters, registersOf, type DeviceQueue, type QueueState, type RingFeatures } from './queue.js';
import { RingError } from './ring-error.js';
import { bool, fail, int } from '../snapshot/fields.js';

const AVAIL = VRING_PACKED_DESC_F_AVAIL_MASK;
const USED = VRING_PACKED_DESC_F_USED_MASK;
const WRAP = 1 << VRING_PACKED_EVENT_F_WRAP_CTR;

function hex(n: number): string {
  return Number.isFinite(n) ? `0x${n.toString(16)}` : '>2^53';
}

/** Available for a driver whose wrap counter is `wrap` (spec 2.8.1). */
function isAvail(flags: number, wrap: boolean): boolean {
  return ((flags & AVAIL) !== 0) === wrap && ((flags & USED) !== 0) !== wrap;
}

export class PackedQueue extends QueueLayout implements DeviceQueue {
  readonly kind = 'packed';
  // --- device state ---
  ready = false;
  parked = false;
  epoch = 0;
  size = 0;
  /** Descriptor ring, driver event suppression area, device event suppression area. */
  desc = 0;
  driver = 0;
  device = 0;
  /** Ring position of the next descriptor to look at, and the driver's wrap counter there. */
  nextAvail = 0;
  availWrap = true;
  /** Ring position of the next used descriptor to write, and the device's used wrap counter. */
  nextUsed = 0;
  usedWrap = true;
  private features: RingFeatures = { indirect: false, eventIdx: false };
  /** Per buffer id: descriptors of the chain in flight (0: not in flight). */
  /** The reusable chain record of popRecord(). */
  private record: DescriptorChain | null = null;
  private inFlight = new Uint16Array(0);
  private inFlightCount = 0;
  /** Ring descriptors held by chains in flight (never more than the ring). */
  private inFlightDescs = 0;
  /** Descriptors the used position advanced since the last notification decision. */
  private usedSinceSignal = 0;
  private signalledValid = false;
  private unsignalled = false;
  /** What the device last wrote to its event suppression flags (-1: nothing yet this enable). */
  private deviceFlags = -1;

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    super();
  }

  get pendingChains(): number {
    return this.inFlightCount;
  }

  /** Why the programmed layout cannot be enabled, or null (spec 2.8.10.1; BI-31). */
  check(ram: GuestRam): string | null {
    const n = this.num;
    if (n === 0) return 'QueueNum is 0';
    if (n > this.maxSize) return `QueueNum ${n} > QueueNumMax ${this.maxSize}`;
    if (n > VIRTQUEUE_MAX_SIZE) return `QueueNum ${n} > ${VIRTQUEUE_MAX_SIZE}`;
    const areas: [string, number, number, number][] = [
      ['descriptor ring', addr64(this.descLo, this.descHi), packedRingSize(n), VRING_PACKED_DESC_ALIGN],
      ['driver event suppression area', addr64(this.driverLo, this.driverHi), VRING_PACKED_EVENT_SIZE, VRING_PACKED_EVENT_ALIGN],
      ['device event suppression area', addr64(this.deviceLo, this.deviceHi), VRING_PACKED_EVENT_SIZE, VRING_PACKED_EVENT_ALIGN],
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

  enable(ram: GuestRam, features: RingFeatures): string | null {
    const why = this.check(ram);
    if (why) return why;
    this.size = this.num;
    this.desc = addr64(this.descLo, this.descHi);
    this.driver = addr64(this.driverLo, this.driverHi);
    this.device = addr64(this.deviceLo, this.deviceHi);
    this.features = { ...features };
    this.nextAvail = 0;
    this.availWrap = true;
    this.nextUsed = 0;
    this.usedWrap = true;
    this.inFlight = new Uint16Array(this.size);
    this.inFlightCount = 0;
    this.inFlightDescs = 0;
    this.usedSinceSignal = 0;
    this.signalledValid = false;
    this.unsignalled = false;
    this.deviceFlags = -1;
    this.parked = false;
    this.ready = true;
    return null;
  }

  stop(): void {
    this.ready = false;
    this.parked = false;
    this.epoch++;
    this.inFlight = new Uint16Array(0);
    this.inFlightCount = 0;
    this.inFlightDescs = 0;
    this.unsignalled = false;
  }

  reset(): void {
    this.stop();
    this.num = 0;
    this.setDesc(0, 0);
    this.setDriver(0, 0);
    this.setDevice(0, 0);
    this.size = this.desc = this.driver = this.device = 0;
    this.nextAvail = this.nextUsed = 0;
    this.availWrap = this.usedWrap = true;
  }

  private fail(reason: string): never {
    throw new RingError(this.index, reason);
  }

  /**
   * Pop the next available chain, or null if the descriptor at next_avail is
   * not available. Throws RingError on corruption.
   */
  pop(ram: GuestRam): DescriptorChain | null {
    const bufs = new ChainBuffers();
    const id = this.walkNext(ram, bufs);
    return id < 0 ? null : new DescriptorChain(ram, this, this.index, bufs).reuse(id, this.epoch);
  }

  /** The same, into the queue's reusable record (served and pushed before the next pop): popping allocates nothing. */
  popRecord(ram: GuestRam): DescriptorChain | null {
    const rec = (this.record ??= new DescriptorChain(ram, this, this.index, new ChainBuffers()));
    rec.retire();
    const id = this.walkNext(ram, rec.bufs);
    return id < 0 ? null : rec.reuse(id, this.epoch);
  }

  /** Validate the chain at next_avail into `out` and take it; its buffer id, or -1 if none is available. */
  private walkNext(ram: GuestRam, out: ChainBuffers): number {
    if (!this.ready || this.parked) return -1;
    const headAt = this.desc + VRING_DESC_SIZE * this.nextAvail;
    // The head's flags are written last by the driver: an acquire load of
    // them makes the rest of the chain visible.
    if (!isAvail(ram.loadU16(headAt + VRING_PACKED_DESC.flags), this.availWrap)) {
      if (!this.features.eventIdx) return -1;
      // Ask to be kicked when the descriptor at next_avail becomes
      // available, then look again: the driver may have published between
      // our load and the store.
      ram.storeU16(this.device + VRING_PACKED_EVENT.off_wrap, this.nextAvail | (this.availWrap ? WRAP : 0));
      if (this.deviceFlags !== VRING_PACKED_EVENT_FLAG_DESC) {
        this.deviceFlags = VRING_PACKED_EVENT_FLAG_DESC;
        ram.storeU16(this.device + VRING_PACKED_EVENT.flags, VRING_PACKED_EVENT_FLAG_DESC);
      }
      if (!isAvail(ram.loadU16(headAt + VRING_PACKED_DESC.flags), this.availWrap)) return -1;
    }
    out.clear();
    const head = this.nextAvail;
    let pos = head;
    let wrap = this.availWrap;
    let count = 0;
    let total = 0;
    let id = 0;
    for (;;) {
      const at = this.desc + VRING_DESC_SIZE * pos;
      const flags = ram.readU16(at + VRING_PACKED_DESC.flags);
      if (count > 0 && !isAvail(flags, wrap)) {
        this.fail(
          `chain at ${head}: descriptor ${pos} is not available (flags ${hex(flags)}, driver wrap counter ${wrap ? 1 : 0}): bad AVAIL/USED bits inside a chain`,
        );
      }
      if (++count > this.size) this.fail(`chain at ${head}: more than ${this.size} descriptors`);
      const addr = addr64(ram.readU32(at), ram.readU32(at + 4));
      const len = ram.readU32(at + VRING_PACKED_DESC.len);
      id = ram.readU16(at + VRING_PACKED_DESC.id);
      if (++pos === this.size) {
        pos = 0;
        wrap = !wrap;
      }
      if (flags & VRING_DESC_F_INDIRECT) {
        if (!this.features.indirect) this.fail(`chain at ${head}: INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC`);
        if (count > 1) this.fail(`chain at ${head}: INDIRECT descriptor inside a NEXT chain`);
        if (flags & VRING_DESC_F_NEXT) this.fail(`chain at ${head}: INDIRECT together with NEXT`);
        total = this.walkIndirect(ram, head, addr, len, out);
        break;
      }
      total = this.addBuffer(ram, head, addr, len, flags, out, total);
      if (!(flags & VRING_DESC_F_NEXT)) break;
    }
    if (id >= this.size) this.fail(`chain at ${head}: buffer id ${id} ≥ queue size ${this.size}`);
    if (this.inFlight[id]) this.fail(`chain at ${head}: buffer id ${id} made available again while in flight`);
    if (this.inFlightDescs + count > this.size) {
      this.fail(`chain at ${head}: ${this.inFlightDescs + count} descriptors in flight, more than the ring's ${this.size}`);
    }
    this.nextAvail = pos;
    this.availWrap = wrap;
    this.inFlight[id] = count;
    this.inFlightCount++;
    this.inFlightDescs += count;
    return id;
  }

  /** One data buffer of a chain; returns the new chain total. */
  private addBuffer(ram: GuestRam, head: number, addr: number, len: number, flags: number, out: ChainBuffers, total: number): number {
    if (len === 0) this.fail(`chain at ${head}: descriptor of length 0`);
    if (!ram.contains(addr, len)) this.fail(`chain at ${head}: buffer ${hex(addr)}+${len} outside guest RAM`);
    total += len;
    if (total > MAX_CHAIN_BYTES) this.fail(`chain at ${head}: more than 2^32 bytes`);
    if (flags & VRING_DESC_F_WRITE) {
      out.push(addr, len);
      out.writableBytes += len;
    } else {
      if (out.count > out.readableCount) this.fail(`chain at ${head}: device-readable descriptor after a device-writable one`);
      out.push(addr, len);
      out.readableCount++;
      out.readableBytes += len;
    }
    return total;
  }

  /** The entries of an indirect table, in order (spec 2.8.13); returns the chain total. */
  private walkIndirect(ram: GuestRam, head: number, table: number, len: number, out: ChainBuffers): number {
    if (len === 0 || len % VRING_DESC_SIZE !== 0) this.fail(`chain at ${head}: indirect table length ${len} is not a non-zero multiple of 16`);
    const entries = len / VRING_DESC_SIZE;
    if (entries > this.size) this.fail(`chain at ${head}: indirect table of ${entries} entries exceeds queue size ${this.size}`);
    if (!ram.contains(table, len)) this.fail(`chain at ${head}: indirect table ${hex(table)}+${len} outside guest RAM`);
    let total = 0;
    for (let i = 0; i < entries; i++) {
      const at = table + VRING_DESC_SIZE * i;
      const flags = ram.readU16(at + VRING_PACKED_DESC.flags);
      if (flags & VRING_DESC_F_INDIRECT) this.fail(`chain at ${head}: INDIRECT descriptor inside an indirect table`);
      total = this.addBuffer(ram, head, addr64(ram.readU32(at), ram.readU32(at + 4)), ram.readU32(at + VRING_PACKED_DESC.len), flags, out, total);
    }
    return total;
  }

  /**
   * Write the used descriptor for a popped chain at next_used (spec 2.8.7):
   * id and len first, then the flags with AVAIL = USED = the used wrap
   * counter, which publishes it; next_used advances by the chain's
   * descriptor count. Chains may be used in any order.
   */
  pushUsed(ram: GuestRam, chain: DescriptorChain, len: number): boolean {
    const id = chain.head;
    if (chain.owner !== this || chain.epoch !== this.epoch || !this.ready || !this.inFlight[id]) return false;
    const count = this.inFlight[id]!;
    const written = Math.min(Math.max(0, Math.floor(len)), chain.writableBytes);
    const at = this.desc + VRING_DESC_SIZE * this.nextUsed;
    ram.writeU32(at + VRING_PACKED_DESC.len, written);
    ram.writeU16(at + VRING_PACKED_DESC.id, id);
    ram.storeU16(at + VRING_PACKED_DESC.flags, this.usedWrap ? AVAIL | USED : 0);
    this.nextUsed += count;
    if (this.nextUsed >= this.size) {
      this.nextUsed -= this.size;
      this.usedWrap = !this.usedWrap;
    }
    this.inFlight[id] = 0;
    this.inFlightCount--;
    this.inFlightDescs -= count;
    this.usedSinceSignal = Math.min(this.usedSinceSignal + count, 0x1_0000);
    this.unsignalled = true;
    return true;
  }

  /**
   * Whether used descriptors written since the last decision need a
   * used-buffer notification (spec 2.8.10, the driver's event suppression
   * area): DISABLE never, ENABLE always, DESC (with EVENT_IDX) when the
   * used position passed off_wrap, computed as Linux computes it for the
   * other direction (virtqueue_kick_prepare_packed). DESC without EVENT_IDX
   * and the reserved value 3 notify: a spurious notification is harmless.
   */
  takeNotification(ram: GuestRam): boolean {
    if (!this.unsignalled || !this.ready) return false;
    this.unsignalled = false;
    const advanced = this.usedSinceSignal;
    this.usedSinceSignal = 0;
    const valid = this.signalledValid;
    this.signalledValid = true;
    const flags = ram.loadU16(this.driver + VRING_PACKED_EVENT.flags) & 0x3;
    if (flags === VRING_PACKED_EVENT_FLAG_DISABLE) return false;
    if (flags === VRING_PACKED_EVENT_FLAG_ENABLE || flags !== VRING_PACKED_EVENT_FLAG_DESC || !this.features.eventIdx) return true;
    if (!valid || advanced >= this.size) return true;
    const offWrap = ram.loadU16(this.driver + VRING_PACKED_EVENT.off_wrap);
    let event = offWrap & ~WRAP;
    const eventWrap = (offWrap & WRAP) !== 0;
    if (eventWrap !== this.usedWrap) event = (event - this.size) & 0xffff;
    const now = this.nextUsed;
    return vringNeedEvent(event, now, (now - advanced) & 0xffff);
  }

  // ---- snapshot ----

  saveState(): QueueState {
    const s: QueueState = { kind: 'packed', regs: registersOf(this), ready: this.ready, parked: this.parked };
    if (this.ready) {
      s.features = { ...this.features };
      s.ring = {
        nextAvail: this.nextAvail,
        availWrap: this.availWrap,
        nextUsed: this.nextUsed,
        usedWrap: this.usedWrap,
        usedSinceSignal: this.usedSinceSignal,
        signalledValid: this.signalledValid,
        unsignalled: this.unsignalled,
        deviceFlags: this.deviceFlags,
      };
    }
    return s;
  }

  checkState(ram: GuestRam, raw: unknown, path: string): QueueState {
    const state = checkCommonState(raw, path, PACKED_RING_KEYS);
    if (!state.ready) return state;
    checkLayoutOn(new PackedQueue(this.index, this.maxSize), state.regs, ram, path);
    const r = state.ring!;
    const n = state.regs.num;
    // Ring positions: the ring has n descriptors (any n up to QueueNumMax).
    for (const k of ['nextAvail', 'nextUsed']) int(r[k], `${path}.ring.${k}`, 0, n - 1);
    for (const k of ['availWrap', 'usedWrap', 'signalledValid', 'unsignalled']) bool(r[k], `${path}.ring.${k}`);
    if (r['nextAvail'] !== r['nextUsed'] || r['availWrap'] !== r['usedWrap']) {
      fail(`${path}.ring`, 'next_avail and next_used differ: chains in flight, which a snapshot never holds');
    }
    int(r['usedSinceSignal'], `${path}.ring.usedSinceSignal`, 0, 0x1_0000);
    const f = r['deviceFlags'];
    if (f !== -1 && f !== VRING_PACKED_EVENT_FLAG_DESC) fail(`${path}.ring.deviceFlags`, 'not a value the device writes');
    return state;
  }

  loadState(ram: GuestRam, state: QueueState): void {
    copyRegisters(state.regs, this);
    if (!state.ready) return;
    this.enable(ram, state.features!);
    const r = state.ring!;
    this.nextAvail = r['nextAvail'] as number;
    this.availWrap = r['availWrap'] as boolean;
    this.nextUsed = r['nextUsed'] as number;
    this.usedWrap = r['usedWrap'] as boolean;
    this.usedSinceSignal = r['usedSinceSignal'] as number;
    this.signalledValid = r['signalledValid'] as boolean;
    this.unsignalled = r['unsignalled'] as boolean;
    this.deviceFlags = r['deviceFlags'] as number;
    this.parked = state.parked;
  }
}

const PACKED_RING_KEYS = ['nextAvail', 'availWrap', 'nextUsed', 'usedWrap', 'usedSinceSignal', 'signalledValid', 'unsignalled', 'deviceFlags'];
