// The device side of virtio-ccw (QEMU's VirtioCcwDevice and virtio_ccw_cb):
// the virtio channel commands executed against the transport-agnostic
// DeviceCore, the transport revision, and the classic indicators through
// which used-buffer and config-change notifications reach the driver.
//
// Departures from QEMU, each on purpose:
// - SET_VIRTIO_REV is accepted again while the device is reset (status 0)
//   or when it repeats the current revision; QEMU accepts it once per
//   subchannel enable, which would push a driver that renegotiates on
//   restore (as virtio_ccw_restore did) down to legacy.
// - READ_STATUS needs revision 2 (spec 4.3.2.7); QEMU accepts it always.
// - SET_VQ on a queue that is in use, a ring the device core refuses, and
//   indicator addresses outside RAM are command rejects rather than taken.
// - SET_IND_ADAPTER is always rejected: this board has no adapter
//   interrupts, so drivers fall back to classic indicators.
// - WRITE_CONF hands the bytes to the model one at a time, as legacy
//   virtio-mmio does (models ignore writes to read-only fields).
import {
  CCW_CMD_READ_CONF,
  CCW_CMD_READ_FEAT,
  CCW_CMD_READ_STATUS,
  CCW_CMD_READ_VQ_CONF,
  CCW_CMD_SET_CONF_IND,
  CCW_CMD_SET_IND,
  CCW_CMD_SET_IND_ADAPTER,
  CCW_CMD_SET_VIRTIO_REV,
  CCW_CMD_SET_VQ,
  CCW_CMD_VDEV_RESET,
  CCW_CMD_WRITE_CONF,
  CCW_CMD_WRITE_FEAT,
  CCW_CMD_WRITE_STATUS,
  CCW_FLAG_SLI,
  FEATURE_DESC,
  INDICATOR_ADDR_SIZE,
  KVM_VIRTIO_CCW_RING_ALIGN,
  NR_CLASSIC_INDICATOR_BITS,
  REV_INFO,
  VIRTIO_CCW_REV_MAX,
  VQ_CONFIG_BLOCK,
  VQ_INFO_BLOCK,
  VQ_INFO_BLOCK_LEGACY,
} from '../../core/uapi/ccw.js';
import { VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_VERSION_1, hasBit } from '../../core/uapi/features.js';
import { alignUp, availRingSize, descTableSize } from '../../core/uapi/ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../core/uapi/status.js';
import type { DeviceModel } from '../devices/device.js';
import { ALL_FEATURES, DeviceCore, LEGACY_FEATURES } from '../virtio/device-core.js';
import type { Scheduler } from '../virtio/scheduler.js';
import type { DriverNotifier } from '../virtio/signals.js';
import type { GuestRam } from '../vring/guest-ram.js';
import { fail, quietReject, readAddr64, type Ccw, type CcwCommandHandler, type CcwOutcome } from './channel-program.js';
import { Indicator } from './indicators.js';

const DRIVER_STATUS_BITS =
  VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED;

/** No SET_VIRTIO_REV at all: a host from before transport revisions (the driver falls back to legacy). */
export const CCW_NO_REVISIONS = -1;

export interface VirtioCcwProxyOptions {
  model: DeviceModel;
  ram: GuestRam;
  scheduler: Scheduler;
  weight?: number;
  /** Highest revision SET_VIRTIO_REV accepts (QEMU's max_revision), or CCW_NO_REVISIONS. */
  maxRevision: number;
  /** Features kept out of the model's offer. */
  withheld?: bigint;
  /** An indicator was set: present unsolicited status if the subchannel is idle. */
  interrupt(): void;
}

export class VirtioCcwProxy implements CcwCommandHandler, DriverNotifier {
  /** The device core; replaced (carrying its counters) when the revision changes legacy ↔ modern. */
  core: DeviceCore;
  /** Negotiated revision; -1 until SET_VIRTIO_REV (commands then follow revision 0). */
  revision = -1;
  readonly maxRevision: number;
  indicators: Indicator | null = null;
  indicators2: Indicator | null = null;
  private coreModern: boolean;
  private readonly ram: GuestRam;

  constructor(private readonly opts: VirtioCcwProxyOptions) {
    this.ram = opts.ram;
    // A device without VERSION_1 can only be legacy (QEMU: max_rev = 0).
    const canModern = hasBit(opts.model.features, VIRTIO_F_VERSION_1);
    this.maxRevision = canModern ? Math.min(opts.maxRevision, VIRTIO_CCW_REV_MAX) : Math.min(opts.maxRevision, 0);
    // Start in the mode the driver will most likely negotiate, so nothing
    // (injected faults included) is lost to a core swap on the usual path.
    this.coreModern = this.maxRevision >= 1;
    this.core = this.newCore(this.coreModern);
  }

  get model(): DeviceModel {
    return this.opts.model;
  }

  private newCore(modern: boolean): DeviceCore {
    return new DeviceCore(this.opts.model, {
      ram: this.ram,
      scheduler: this.opts.scheduler,
      signals: this,
      featureMask: (modern ? ALL_FEATURES : LEGACY_FEATURES) & ~(this.opts.withheld ?? 0n),
      modern,
      ...(this.opts.weight !== undefined ? { weight: this.opts.weight } : {}),
    });
  }

  /** Revision ≥ 1 is virtio 1; anything below (and no revision) is legacy. */
  private syncCoreMode(): void {
    const modern = this.revision >= 1;
    if (modern === this.coreModern) return;
    const prev = this.core;
    prev.reset();
    const next = this.newCore(modern);
    Object.assign(next.counters, prev.counters);
    next.configGeneration = prev.configGeneration;
    this.core = next;
    this.coreModern = modern;
  }

  guestError(msg: string): void {
    this.core.guestError(msg);
  }

  /** VDEV_RESET / WRITE_STATUS 0 (QEMU virtio_ccw_reset_virtio): the indicators go too. */
  resetVirtio(): void {
    this.core.reset();
    this.indicators = null;
    this.indicators2 = null;
  }

  /** Subchannel disabled / platform reset: the revision is forgotten as well. */
  platformReset(): void {
    this.resetVirtio();
    this.revision = -1;
  }

  // ---- DriverNotifier ----

  usedBuffer(queue: number): void {
    if (!this.indicators) return; // no indicators registered: nowhere to report
    this.indicators.set(queue);
    this.opts.interrupt();
  }

  configChange(): void {
    if (!this.indicators2) return;
    this.indicators2.set(0);
    this.opts.interrupt();
  }

  /** DIAGNOSE 0x500 subcode 3. */
  notify(value: number): void {
    const q = this.core.hasFeature(VIRTIO_F_NOTIFICATION_DATA) ? value & 0xffff : value;
    this.core.notify(q);
  }

  // ---- channel commands ----

  execute(ccw: Ccw): CcwOutcome {
    if (ccw.cmd !== CCW_CMD_SET_VIRTIO_REV) this.syncCoreMode();
    switch (ccw.cmd) {
      case CCW_CMD_SET_VIRTIO_REV:
        return this.setVirtioRev(ccw);
      case CCW_CMD_READ_FEAT:
        return this.readFeat(ccw);
      case CCW_CMD_WRITE_FEAT:
        return this.writeFeat(ccw);
      case CCW_CMD_READ_CONF:
        return this.readConf(ccw);
      case CCW_CMD_WRITE_CONF:
        return this.writeConf(ccw);
      case CCW_CMD_WRITE_STATUS:
        return this.writeStatus(ccw);
      case CCW_CMD_READ_STATUS:
        return this.readStatus(ccw);
      case CCW_CMD_READ_VQ_CONF:
        return this.readVqConf(ccw);
      case CCW_CMD_SET_VQ:
        return this.setVq(ccw);
      case CCW_CMD_SET_IND:
        if (this.core.numQueues > NR_CLASSIC_INDICATOR_BITS) return fail('reject', `SET_IND: ${this.core.numQueues} queues do not fit classic indicators`);
        return this.setIndicator(ccw, 'SET_IND', (i) => (this.indicators = i));
      case CCW_CMD_SET_CONF_IND:
        return this.setIndicator(ccw, 'SET_CONF_IND', (i) => (this.indicators2 = i));
      case CCW_CMD_SET_IND_ADAPTER:
        return quietReject('SET_IND_ADAPTER: adapter interrupts are not available on this board');
      case CCW_CMD_VDEV_RESET:
        this.resetVirtio();
        return { ok: true, transferred: 0 };
    }
    return fail('reject', 'unknown command');
  }

  /**
   * The data area of a fixed-size payload (QEMU's rule): without SLI the
   * count must be exactly the size, with SLI at least the size; the area
   * must lie inside RAM. Returns the refusal, or null.
   */
  private area(ccw: Ccw, size: number, what: string): CcwOutcome | null {
    const sli = (ccw.flags & CCW_FLAG_SLI) !== 0;
    if (ccw.count < size || (!sli && ccw.count !== size)) {
      return fail('length', `${what}: count ${ccw.count} for a ${size}-byte payload${sli ? '' : ' without SLI'}`);
    }
    if (!this.ram.contains(ccw.cda, size)) return fail('address', `${what}: data area 0x${ccw.cda.toString(16)}+${size} is not inside RAM`);
    return null;
  }

  private u8(addr: number): number {
    return this.ram.view.getUint8(addr - this.ram.base);
  }
  private setU8(addr: number, v: number): void {
    this.ram.view.setUint8(addr - this.ram.base, v & 0xff);
  }
  private setU16(addr: number, v: number): void {
    this.ram.view.setUint16(addr - this.ram.base, v & 0xffff, true);
  }

  private setVirtioRev(ccw: Ccw): CcwOutcome {
    if (this.maxRevision < 0) return quietReject('unknown command (this device predates transport revisions)');
    const sli = (ccw.flags & CCW_FLAG_SLI) !== 0;
    if (ccw.count < REV_INFO.SIZE) return fail('length', `SET_VIRTIO_REV: count ${ccw.count} < ${REV_INFO.SIZE}`);
    if (!this.ram.contains(ccw.cda, REV_INFO.SIZE)) return fail('address', 'SET_VIRTIO_REV: data area is not inside RAM');
    const rev = this.ram.readU16(ccw.cda + REV_INFO.revision);
    const length = this.ram.readU16(ccw.cda + REV_INFO.length);
    const size = REV_INFO.SIZE + length;
    if (ccw.count < size || (!sli && ccw.count > size)) return fail('length', `SET_VIRTIO_REV: count ${ccw.count} for ${length} bytes of revision data`);
    if (!this.ram.contains(ccw.cda, size)) return fail('address', 'SET_VIRTIO_REV: revision data is not inside RAM');
    if (rev > this.maxRevision) return quietReject(`SET_VIRTIO_REV: revision ${rev} > ${this.maxRevision}`);
    if (this.revision >= 0 && rev !== this.revision && this.core.status !== 0) {
      return fail('reject', `SET_VIRTIO_REV: revision ${this.revision} → ${rev} while the device is in use (status 0x${this.core.status.toString(16)})`);
    }
    // None of revisions 0-2 carries data.
    this.revision = rev;
    this.syncCoreMode();
    return { ok: true, transferred: size };
  }

  private readFeat(ccw: Ccw): CcwOutcome {
    const bad = this.area(ccw, FEATURE_DESC.SIZE, 'READ_FEAT');
    if (bad) return bad;
    const index = this.u8(ccw.cda + FEATURE_DESC.index);
    // Only revision ≥ 1 sees the bits beyond 31.
    const word = index === 0 || this.revision >= 1 ? this.core.deviceFeaturesWord(index) : 0;
    this.ram.writeU32(ccw.cda + FEATURE_DESC.features, word);
    return { ok: true, transferred: FEATURE_DESC.SIZE };
  }

  private writeFeat(ccw: Ccw): CcwOutcome {
    const bad = this.area(ccw, FEATURE_DESC.SIZE, 'WRITE_FEAT');
    if (bad) return bad;
    const value = this.ram.readU32(ccw.cda + FEATURE_DESC.features);
    const index = this.u8(ccw.cda + FEATURE_DESC.index);
    if (index >= 1 && this.revision < 1) {
      if (value !== 0) this.guestError(`WRITE_FEAT: features[${index}] = 0x${value.toString(16)} at revision ${this.revision}; ignored`);
    } else {
      this.core.writeDriverFeaturesWord(index, value);
    }
    return { ok: true, transferred: FEATURE_DESC.SIZE };
  }

  /** READ_CONF/WRITE_CONF carry the config from offset 0; SLI allows a count past its end. */
  private configArea(ccw: Ccw, what: string): number | CcwOutcome {
    const size = this.core.model.configSize;
    if (!(ccw.flags & CCW_FLAG_SLI) && ccw.count > size) return fail('length', `${what}: count ${ccw.count} > config size ${size}`);
    const len = Math.min(ccw.count, size);
    if (len > 0 && !this.ram.contains(ccw.cda, len)) return fail('address', `${what}: data area is not inside RAM`);
    return len;
  }

  private readConf(ccw: Ccw): CcwOutcome {
    const len = this.configArea(ccw, 'READ_CONF');
    if (typeof len !== 'number') return len;
    for (let i = 0; i < len; i++) this.setU8(ccw.cda + i, this.core.readConfig(i, 1));
    return { ok: true, transferred: len };
  }

  private writeConf(ccw: Ccw): CcwOutcome {
    const len = this.configArea(ccw, 'WRITE_CONF');
    if (typeof len !== 'number') return len;
    for (let i = 0; i < len; i++) this.core.writeConfig(i, 1, this.u8(ccw.cda + i));
    return { ok: true, transferred: len };
  }

  private writeStatus(ccw: Ccw): CcwOutcome {
    const bad = this.area(ccw, 1, 'WRITE_STATUS');
    if (bad) return bad;
    const status = this.u8(ccw.cda);
    if (status === 0) {
      this.resetVirtio();
      return { ok: true, transferred: 1 };
    }
    this.core.writeStatus(status);
    // QEMU rejects a status virtio_set_status refused (FEATURES_OK that does
    // not validate): the driver then keeps its old status byte.
    const want = status & DRIVER_STATUS_BITS;
    if ((this.core.status & want) !== want) {
      return quietReject(`WRITE_STATUS 0x${status.toString(16)} refused (status is 0x${this.core.status.toString(16)})`);
    }
    return { ok: true, transferred: 1 };
  }

  private readStatus(ccw: Ccw): CcwOutcome {
    if (this.revision < 2) return fail('reject', `READ_STATUS needs revision 2 (revision ${this.revision})`);
    const bad = this.area(ccw, 1, 'READ_STATUS');
    if (bad) return bad;
    this.setU8(ccw.cda, this.core.status);
    return { ok: true, transferred: 1 };
  }

  private readVqConf(ccw: Ccw): CcwOutcome {
    const bad = this.area(ccw, VQ_CONFIG_BLOCK.SIZE, 'READ_VQ_CONF');
    if (bad) return bad;
    const index = this.ram.readU16(ccw.cda + VQ_CONFIG_BLOCK.index);
    // 0 = no such queue; this is how drivers find the end.
    this.setU16(ccw.cda + VQ_CONFIG_BLOCK.num, this.core.queues[index]?.maxSize ?? 0);
    return { ok: true, transferred: VQ_CONFIG_BLOCK.SIZE };
  }

  private setVq(ccw: Ccw): CcwOutcome {
    const legacy = this.revision < 1;
    const size = legacy ? VQ_INFO_BLOCK_LEGACY.SIZE : VQ_INFO_BLOCK.SIZE;
    const bad = this.area(ccw, size, 'SET_VQ');
    if (bad) return bad;
    const b = ccw.cda;
    const index = this.ram.readU16(b + (legacy ? VQ_INFO_BLOCK_LEGACY.index : VQ_INFO_BLOCK.index));
    const num = this.ram.readU16(b + (legacy ? VQ_INFO_BLOCK_LEGACY.num : VQ_INFO_BLOCK.num));
    const desc = readAddr64(this.ram, b + (legacy ? VQ_INFO_BLOCK_LEGACY.queue : VQ_INFO_BLOCK.desc));
    const queue = this.core.queues[index];
    if (!queue) return fail('reject', `SET_VQ: no queue ${index}`);

    // A zero ring address releases the queue.
    if (desc === 0) {
      if (queue.ready) this.core.stopQueue(index);
      return { ok: true, transferred: size };
    }
    if (queue.ready) return fail('reject', `SET_VQ: queue ${index} is in use; release it first`);

    let avail: number;
    let used: number;
    if (legacy) {
      // The legacy contiguous layout; QEMU's virtio core needs 4K alignment.
      const align = this.ram.readU32(b + VQ_INFO_BLOCK_LEGACY.align);
      if (align !== KVM_VIRTIO_CCW_RING_ALIGN) return fail('reject', `SET_VQ: legacy ring alignment ${align} (must be ${KVM_VIRTIO_CCW_RING_ALIGN})`);
      avail = desc + descTableSize(num);
      used = alignUp(avail + availRingSize(num), align);
    } else {
      avail = readAddr64(this.ram, b + VQ_INFO_BLOCK.avail);
      used = readAddr64(this.ram, b + VQ_INFO_BLOCK.used);
    }
    queue.setLayout(num, desc, avail, used);
    const why = this.core.enableQueue(index);
    if (why) return fail('reject', `SET_VQ: queue ${index} not enabled: ${why}`);
    return { ok: true, transferred: size };
  }

  /** SET_IND / SET_CONF_IND: address 0 deregisters (as virtio_ccw_drop_indicator does). */
  private setIndicator(ccw: Ccw, what: string, install: (i: Indicator | null) => void): CcwOutcome {
    const bad = this.area(ccw, INDICATOR_ADDR_SIZE, what);
    if (bad) return bad;
    const addr = readAddr64(this.ram, ccw.cda);
    if (addr === 0) {
      install(null);
    } else {
      if (!Indicator.valid(this.ram, addr)) return fail('reject', `${what}: indicator 0x${addr.toString(16)} is not an 8-aligned word in RAM`);
      install(new Indicator(this.ram, addr));
    }
    return { ok: true, transferred: INDICATOR_ADDR_SIZE };
  }
}
