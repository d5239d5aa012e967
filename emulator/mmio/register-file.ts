// The virtio-mmio register file of one device (spec 4.2.2, legacy 4.2.4),
// Version 2 or legacy Version 1, in front of a transport-agnostic DeviceCore.
// It follows the spec where QEMU 7.2 does not (VIRTIO-NOTES §5); the
// behaviour on each driver mistake is listed in the README table and in the
// comments below. Nothing here throws: bad accesses read 0 / are ignored and
// are counted as guest errors.
import type { AccessWidth } from '../../core/bus.js';
import { VIRTIO_F_RING_RESET } from '../../core/uapi/features.js';
import { MAGIC_VALUE, REG, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING } from '../../core/uapi/mmio.js';
import { alignUp, availRingSize, descTableSize, isPowerOf2 } from '../../core/uapi/ring.js';
import type { ConfigWidth, DeviceModel } from '../devices/device.js';
import type { IrqLines } from '../board-contract.js';
import { ALL_FEATURES, DeviceCore, LEGACY_FEATURES, type CoreState } from '../virtio/device-core.js';
import type { SnapshotOptions } from '../snapshot/format.js';
import { count, fail, list, record, shown, u32 } from '../snapshot/fields.js';
import { addr64 } from '../vring/guest-ram.js';
import type { Scheduler } from '../virtio/scheduler.js';
import type { DeviceCounters, DriverNotifier } from '../virtio/signals.js';
import type { GuestRam } from '../vring/guest-ram.js';
import { controlAccessError, VENDOR_ID, type MmioVersion } from './registers.js';
import type { MmioWindow } from './window.js';

/** Legacy QueueAlign until the driver writes one (Linux writes PAGE_SIZE). */
export const LEGACY_DEFAULT_QUEUE_ALIGN = 4096;

const INT_BITS = VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG;
const NO_SHM = 0xffff_ffff;

export interface MmioRegisterFileOptions {
  version: MmioVersion;
  /** Interrupt line this window drives. */
  line: number;
  irq: IrqLines;
  ram: GuestRam;
  scheduler: Scheduler;
  /** Features kept out of the model's offer. */
  withheld?: bigint;
  weight?: number;
}

/** The contiguous legacy ring at pfn * GuestPageSize: desc, avail right after it, used at the next QueueAlign boundary. */
function legacyLayout(pfn: number, pageSize: number, num: number, align: number): { desc: number; avail: number; used: number } {
  const desc = pfn * pageSize;
  const avail = desc + descTableSize(num);
  return { desc, avail, used: alignUp(avail + availRingSize(num), align) };
}

/** The register file's part of a snapshot (see emulator/snapshot/format.ts). */
export interface MmioRegisterState {
  version: MmioVersion;
  interruptStatus: number;
  irqRaised: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  queueSel: number;
  guestPageSize: number;
  queueAlign: number[];
  queuePfn: number[];
}

const REGISTER_STATE_KEYS = ['version', 'interruptStatus', 'irqRaised', 'deviceFeaturesSel', 'driverFeaturesSel', 'queueSel', 'guestPageSize', 'queueAlign', 'queuePfn'];

export class MmioRegisterFile implements MmioWindow, DriverNotifier {
  readonly core: DeviceCore;
  readonly version: MmioVersion;
  /** InterruptStatus: bits stay set until acknowledged through InterruptACK. */
  interruptStatus = 0;
  /** Times the line was raised (a 0 → non-zero or new-bit transition). */
  irqRaised = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  /** Legacy GuestPageSize: survives device reset (Linux writes it only at probe and restore). */
  guestPageSize = 0;
  private readonly queueAlign: number[];
  private readonly queuePfn: number[];

  constructor(
    model: DeviceModel,
    private readonly opts: MmioRegisterFileOptions,
  ) {
    this.version = opts.version;
    this.core = new DeviceCore(model, {
      ram: opts.ram,
      scheduler: opts.scheduler,
      signals: this,
      featureMask: (opts.version === 2 ? ALL_FEATURES : LEGACY_FEATURES) & ~(opts.withheld ?? 0n),
      modern: opts.version === 2,
      ...(opts.weight !== undefined ? { weight: opts.weight } : {}),
    });
    this.queueAlign = model.queueNumMax.map(() => LEGACY_DEFAULT_QUEUE_ALIGN);
    this.queuePfn = model.queueNumMax.map(() => 0);
  }

  get counters(): DeviceCounters {
    return this.core.counters;
  }

  /** Device reset (Status=0 or platform reset): synchronous, before the write returns. */
  reset(): void {
    this.core.reset();
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.queueAlign.fill(LEGACY_DEFAULT_QUEUE_ALIGN);
    this.queuePfn.fill(0);
    this.interruptStatus = 0;
    this.opts.irq.lower(this.opts.line);
  }

  // ---- DriverNotifier ----

  usedBuffer(_queue: number): void {
    this.setInterrupt(VIRTIO_MMIO_INT_VRING);
  }

  configChange(): void {
    this.setInterrupt(VIRTIO_MMIO_INT_CONFIG);
  }

  /** Level-triggered: the line is high exactly while InterruptStatus ≠ 0. */
  private setInterrupt(bits: number): void {
    const old = this.interruptStatus;
    this.interruptStatus = old | bits;
    if (this.interruptStatus !== old) {
      this.irqRaised++;
      this.opts.irq.raise(this.opts.line);
    }
  }

  // ---- register access ----

  read(offset: number, width: AccessWidth): number {
    if (offset >= REG.Config) return this.readConfig(offset - REG.Config, width);
    const bad = controlAccessError(this.version, offset, width, false);
    if (bad) {
      this.error(bad);
      return 0;
    }
    return this.readControl(offset) >>> 0;
  }

  write(offset: number, width: AccessWidth, value: number): void {
    if (offset >= REG.Config) return this.writeConfig(offset - REG.Config, width, value);
    const bad = controlAccessError(this.version, offset, width, true);
    if (bad) return this.error(bad);
    this.writeControl(offset, value >>> 0);
  }

  private error(msg: string): void {
    this.core.guestError(msg);
  }

  private readControl(offset: number): number {
    const core = this.core;
    switch (offset) {
      case REG.MagicValue:
        return MAGIC_VALUE;
      case REG.Version:
        return this.version;
      case REG.DeviceID:
        return core.model.deviceId;
      case REG.VendorID:
        return VENDOR_ID;
      case REG.DeviceFeatures:
        return core.deviceFeaturesWord(this.deviceFeaturesSel);
      case REG.QueueNumMax:
        // 0 = no such queue (BI-16); no error, this is how drivers probe.
        return core.queues[this.queueSel]?.maxSize ?? 0;
      case REG.QueueReady:
        return core.queues[this.queueSel]?.ready ? 1 : 0;
      case REG.QueuePFN:
        return core.queues[this.queueSel]?.ready ? this.queuePfn[this.queueSel]! : 0;
      case REG.InterruptStatus:
        return this.interruptStatus;
      case REG.Status:
        return core.status;
      case REG.SHMLenLow:
      case REG.SHMLenHigh:
      case REG.SHMBaseLow:
      case REG.SHMBaseHigh:
        return NO_SHM; // no shared memory regions: length -1, base all-ones
      case REG.QueueReset:
        return 0; // queue resets complete within the write
      case REG.ConfigGeneration:
        return core.configGeneration;
    }
    return 0; // unreachable: controlAccessError admits only the cases above
  }

  private writeControl(offset: number, v: number): void {
    const core = this.core;
    switch (offset) {
      case REG.DeviceFeaturesSel:
        this.deviceFeaturesSel = v;
        return;
      case REG.DriverFeatures:
        core.writeDriverFeaturesWord(this.driverFeaturesSel, v);
        return;
      case REG.DriverFeaturesSel:
        this.driverFeaturesSel = v;
        return;
      case REG.GuestPageSize:
        if (!isPowerOf2(v)) return this.error(`GuestPageSize ${v} is not a power of 2; ignored`);
        this.guestPageSize = v;
        return;
      case REG.QueueSel:
        this.queueSel = v; // checked when a queue register is used
        return;
      case REG.QueueNum:
        return this.withIdleQueue('QueueNum', (q) => {
          core.queues[q]!.num = v;
          const max = core.queues[q]!.maxSize;
          // A packed ring may have any size up to QueueNumMax (spec 2.8).
          if (v === 0 || v > max || (!core.packedRing && !isPowerOf2(v))) this.error(`QueueNum ${v} invalid (QueueNumMax ${max}); the queue will not enable`);
        });
      case REG.QueueAlign:
        return this.withIdleQueue('QueueAlign', (q) => {
          if (!isPowerOf2(v)) return this.error(`QueueAlign ${v} is not a power of 2; ignored`);
          this.queueAlign[q] = v;
        });
      case REG.QueuePFN:
        return this.writeQueuePfn(v);
      case REG.QueueReady:
        return this.writeQueueReady(v);
      case REG.QueueNotify:
        core.notify(v);
        return;
      case REG.InterruptACK:
        return this.ack(v);
      case REG.Status:
        if (v === 0) this.reset();
        else core.writeStatus(v);
        return;
      case REG.QueueDescLow:
        return this.withIdleQueue('QueueDescLow', (q) => core.queues[q]!.setDesc(v, core.queues[q]!.descHi));
      case REG.QueueDescHigh:
        return this.withIdleQueue('QueueDescHigh', (q) => core.queues[q]!.setDesc(core.queues[q]!.descLo, v));
      case REG.QueueDriverLow:
        return this.withIdleQueue('QueueDriverLow', (q) => core.queues[q]!.setDriver(v, core.queues[q]!.driverHi));
      case REG.QueueDriverHigh:
        return this.withIdleQueue('QueueDriverHigh', (q) => core.queues[q]!.setDriver(core.queues[q]!.driverLo, v));
      case REG.QueueDeviceLow:
        return this.withIdleQueue('QueueDeviceLow', (q) => core.queues[q]!.setDevice(v, core.queues[q]!.deviceHi));
      case REG.QueueDeviceHigh:
        return this.withIdleQueue('QueueDeviceHigh', (q) => core.queues[q]!.setDevice(core.queues[q]!.deviceLo, v));
      case REG.SHMSel:
        // No shared memory regions: SHMLen and SHMBase read all-ones for any selector.
        return;
      case REG.QueueReset:
        return this.writeQueueReset(v);
    }
  }

  /** The selected queue index, or null (counted) if QueueSel names no queue. */
  private selected(what: string): number | null {
    if (this.queueSel < this.core.numQueues) return this.queueSel;
    this.error(`${what} with QueueSel ${this.queueSel}: no such queue; ignored`);
    return null;
  }

  /** Queue layout registers: ignored while the queue is ready (MMIO-R6, BI-17). */
  private withIdleQueue(what: string, apply: (q: number) => void): void {
    const q = this.selected(what);
    if (q === null) return;
    if (this.core.queues[q]!.ready) return this.error(`${what} written while queue ${q} is ready; ignored`);
    apply(q);
  }

  /** QueueReady: 1 validates and enables (else stays 0), 0 stops, other values are ignored. */
  private writeQueueReady(v: number): void {
    const q = this.selected('QueueReady');
    if (q === null) return;
    const queue = this.core.queues[q]!;
    if (v === 1) {
      if (!queue.ready) this.core.enableQueue(q);
    } else if (v === 0) {
      if (queue.ready) this.core.stopQueue(q);
    } else {
      this.error(`QueueReady ${v} is neither 0 nor 1; ignored`);
    }
  }

  /** QueueReset with RING_RESET negotiated: 1 resets the queue before the write returns. */
  private writeQueueReset(v: number): void {
    if (!this.core.hasFeature(VIRTIO_F_RING_RESET)) return this.error('QueueReset without VIRTIO_F_RING_RESET negotiated; ignored');
    const q = this.selected('QueueReset');
    if (q === null) return;
    if (v === 1) this.core.resetQueue(q);
    else if (v !== 0) this.error(`QueueReset ${v} is neither 0 nor 1; ignored`);
  }

  /**
   * Legacy QueuePFN: 0 stops the queue; otherwise the ring is the contiguous
   * legacy layout at pfn * GuestPageSize (desc, avail right after it, used at
   * the next QueueAlign boundary), validated like QueueReady=1.
   */
  private writeQueuePfn(pfn: number): void {
    const q = this.selected('QueuePFN');
    if (q === null) return;
    const queue = this.core.queues[q]!;
    if (pfn === 0) {
      if (queue.ready) this.core.stopQueue(q);
      this.queuePfn[q] = 0;
      return;
    }
    if (queue.ready) return this.error(`QueuePFN written while queue ${q} is in use; ignored`);
    if (this.guestPageSize === 0) return this.error('QueuePFN before GuestPageSize; queue not enabled');
    const l = legacyLayout(pfn, this.guestPageSize, queue.num, this.queueAlign[q]!);
    queue.setLayout(queue.num, l.desc, l.avail, l.used);
    if (this.core.enableQueue(q) === null) this.queuePfn[q] = pfn;
  }

  /** InterruptACK: clears the acknowledged bits; undefined bits are ignored (counted). */
  private ack(v: number): void {
    if (v & ~INT_BITS) this.error(`InterruptACK 0x${v.toString(16)} has undefined bits; they are ignored`);
    this.interruptStatus &= ~(v & INT_BITS);
    if (this.interruptStatus === 0) this.opts.irq.lower(this.opts.line);
  }

  // ---- snapshot ----

  saveState(): MmioRegisterState {
    return {
      version: this.version,
      interruptStatus: this.interruptStatus,
      irqRaised: this.irqRaised,
      deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeaturesSel: this.driverFeaturesSel,
      queueSel: this.queueSel,
      guestPageSize: this.guestPageSize,
      queueAlign: [...this.queueAlign],
      queuePfn: [...this.queuePfn],
    };
  }

  /**
   * Check a snapshot's register file against this window (throws
   * SnapshotError at `path`); changes nothing. The device state is checked
   * first, since the legacy queue registers must agree with its queues:
   * QueuePFN is non-zero exactly for a ready queue and names its layout.
   */
  checkState(raw: unknown, devRaw: unknown, path: string, devPath: string, opts: SnapshotOptions): { registers: MmioRegisterState; device: CoreState } {
    const device = this.core.checkState(devRaw, devPath, opts);
    const r = record(raw, path, REGISTER_STATE_KEYS);
    if (r['version'] !== this.version) fail(`${path}.version`, `the snapshot's window is virtio-mmio version ${shown(r['version'])}, this one ${this.version}`);
    const is = u32(r['interruptStatus'], `${path}.interruptStatus`);
    if (is & ~INT_BITS) fail(`${path}.interruptStatus`, `0x${is.toString(16)} has undefined bits`);
    count(r['irqRaised'], `${path}.irqRaised`);
    for (const k of ['deviceFeaturesSel', 'driverFeaturesSel', 'queueSel']) u32(r[k], `${path}.${k}`);
    const gps = u32(r['guestPageSize'], `${path}.guestPageSize`);
    const n = this.core.numQueues;
    const align = list(r['queueAlign'], `${path}.queueAlign`, n, u32, n);
    const pfn = list(r['queuePfn'], `${path}.queuePfn`, n, u32, n);
    if (this.version === 2) {
      if (gps !== 0) fail(`${path}.guestPageSize`, 'a version 2 window has no GuestPageSize');
      if (align.some((a) => a !== LEGACY_DEFAULT_QUEUE_ALIGN) || pfn.some((p) => p !== 0)) fail(`${path}.queuePfn`, 'a version 2 window has no QueueAlign or QueuePFN');
      return { registers: r as unknown as MmioRegisterState, device };
    }
    if (gps !== 0 && !isPowerOf2(gps)) fail(`${path}.guestPageSize`, `${gps} is not a power of 2`);
    align.forEach((a, q) => {
      if (!isPowerOf2(a)) fail(`${path}.queueAlign[${q}]`, `${a} is not a power of 2`);
    });
    device.queues.forEach((qs, q) => {
      const p = `${path}.queuePfn[${q}]`;
      if (!qs.ready) {
        if (pfn[q] !== 0) fail(p, `queue ${q} is not ready but QueuePFN is ${pfn[q]}`);
        return;
      }
      if (pfn[q] === 0 || gps === 0) fail(p, `queue ${q} is ready without a QueuePFN and GuestPageSize`);
      const l = legacyLayout(pfn[q]!, gps, qs.regs.num, align[q]!);
      const got = { desc: addr64(qs.regs.descLo, qs.regs.descHi), avail: addr64(qs.regs.driverLo, qs.regs.driverHi), used: addr64(qs.regs.deviceLo, qs.regs.deviceHi) };
      if (got.desc !== l.desc || got.avail !== l.avail || got.used !== l.used) fail(p, `queue ${q}'s ring is not the legacy layout of QueuePFN ${pfn[q]}`);
    });
    return { registers: r as unknown as MmioRegisterState, device };
  }

  /** Load a state checkState accepted into this window, fresh from the board; the line follows InterruptStatus. */
  loadState(r: MmioRegisterState, device: CoreState, opts: SnapshotOptions): void {
    this.core.loadState(device, opts);
    this.interruptStatus = r.interruptStatus;
    this.irqRaised = r.irqRaised;
    this.deviceFeaturesSel = r.deviceFeaturesSel;
    this.driverFeaturesSel = r.driverFeaturesSel;
    this.queueSel = r.queueSel;
    this.guestPageSize = r.guestPageSize;
    r.queueAlign.forEach((a, q) => (this.queueAlign[q] = a));
    r.queuePfn.forEach((p, q) => (this.queuePfn[q] = p));
    if (this.interruptStatus !== 0) this.opts.irq.raise(this.opts.line);
    else this.opts.irq.lower(this.opts.line);
  }

  // ---- device-specific configuration space (0x100+) ----

  /**
   * v2: 8/16/32-bit accesses aligned to their width (MMIO-R2). v1: any width
   * at any offset, done bytewise as legacy drivers do. Past the device's config
   * size: read 0 / write ignored, counted (QEMU 7.2 reads 0xff there).
   */
  private configAccessError(offset: number, width: AccessWidth, isWrite: boolean): string | null {
    const what = `${width}-byte config ${isWrite ? 'write' : 'read'} at 0x${offset.toString(16)}`;
    if (this.version === 2 && offset % width !== 0) return `${what}: not aligned to its width`;
    if (offset + width > this.core.model.configSize) return `${what}: past the config size ${this.core.model.configSize}`;
    return null;
  }

  private readConfig(offset: number, width: AccessWidth): number {
    const bad = this.configAccessError(offset, width, false);
    if (bad) {
      this.error(bad);
      return 0;
    }
    if (this.version === 2) return this.core.readConfig(offset, width as ConfigWidth);
    let v = 0;
    for (let i = 0; i < width; i++) v |= (this.core.readConfig(offset + i, 1) & 0xff) << (8 * i);
    return v >>> 0;
  }

  private writeConfig(offset: number, width: AccessWidth, value: number): void {
    const bad = this.configAccessError(offset, width, true);
    if (bad) return this.error(bad);
    const mask = width === 4 ? 0xffff_ffff : (1 << (8 * width)) - 1;
    if (this.version === 2) return this.core.writeConfig(offset, width as ConfigWidth, (value & mask) >>> 0);
    for (let i = 0; i < width; i++) this.core.writeConfig(offset + i, 1, (value >>> (8 * i)) & 0xff);
  }
}
