// One subchannel of the channel subsystem and its register window, which
// stands in for the s390 I/O instructions (layout: CSS_REG in
// core/uapi/ccw.ts). START SUBCHANNEL only queues the channel program as
// deferred device work, so the write returns at once and the program's end
// arrives later as status pending plus the subchannel's I/O interrupt, which
// stays asserted until TEST SUBCHANNEL takes the status (level-triggered).
// Nothing here throws: bad accesses read 0 / are ignored and are counted.
import type { AccessWidth } from '../../core/bus.js';
import {
  CC_BUSY,
  CC_NOT_OPERATIONAL,
  CC_OK,
  CC_STATUS_PENDING,
  CSS_REG,
  CSS_STATUS_ACTIVE,
  CSS_STATUS_ALERT,
  CSS_STATUS_PENDING,
  IRB,
  VIRTIO_CCW_CU_TYPE,
} from '../../core/uapi/ccw.js';
import type { IrqLines } from '../board-contract.js';
import type { Scheduler } from '../virtio/scheduler.js';
import { addr64, type GuestRam } from '../vring/guest-ram.js';
import { alertStatus, runChannelProgram, unitCheck, type CcwCommandHandler, type EndingStatus } from './channel-program.js';
import type { VirtioCcwProxy } from './virtio-proxy.js';

export interface SubchannelEnv {
  ram: GuestRam;
  irq: IrqLines;
  scheduler: Scheduler;
}

export class Subchannel {
  private orbLo = 0;
  private orbHi = 0;
  private irbLo = 0;
  private irbHi = 0;
  /** Condition code of the last SSCH or TSCH. */
  private cc = 0;
  /** A start function is in progress (the program is queued or running). */
  private active = false;
  private pending: EndingStatus | null = null;
  /** Bumped by a reset: a program queued before it does nothing. */
  private epoch = 0;
  /** Programs started and I/O interrupts presented (for stats and tests). */
  started = 0;
  interrupts = 0;

  constructor(
    readonly schid: number,
    /** The interrupt line (= board slot). */
    readonly line: number,
    private readonly env: SubchannelEnv,
    /** The virtio-ccw device behind it, or null: no device (cc 3, CuType 0). */
    readonly device: VirtioCcwProxy | null,
  ) {}

  get statusPending(): boolean {
    return this.pending !== null;
  }

  /** Platform reset: idle, no status, line low; a queued program is dropped. */
  reset(): void {
    this.epoch++;
    this.active = false;
    this.pending = null;
    this.cc = 0;
    this.orbLo = this.orbHi = this.irbLo = this.irbHi = 0;
    this.env.irq.lower(this.line);
    this.device?.platformReset();
  }

  /**
   * QEMU's css_conditional_io_interrupt: an indicator was set. An idle
   * subchannel presents unsolicited status; a busy or status-pending one
   * needs nothing, since the driver reads the indicators at that interrupt.
   */
  conditionalInterrupt(): void {
    if (this.active || this.pending) return;
    this.present(alertStatus());
  }

  private present(status: EndingStatus): void {
    this.pending = status;
    this.interrupts++;
    this.env.irq.raise(this.line);
  }

  private guestError(msg: string): void {
    this.device?.guestError(msg);
  }

  // ---- register window ----

  read(offset: number, width: AccessWidth): number {
    if (width !== 4 || offset % 4 !== 0) {
      this.guestError(`${width}-byte read at 0x${offset.toString(16)} of the subchannel window; only aligned 32-bit accesses exist`);
      return 0;
    }
    const dev = this.device;
    switch (offset) {
      case CSS_REG.CuType:
        return dev ? VIRTIO_CCW_CU_TYPE : 0;
      case CSS_REG.CuModel:
        return dev ? dev.model.deviceId : 0;
      case CSS_REG.SchId:
        return this.schid;
      case CSS_REG.OrbLow:
        return this.orbLo;
      case CSS_REG.OrbHigh:
        return this.orbHi;
      case CSS_REG.Status:
        return this.status();
      case CSS_REG.IrbLow:
        return this.irbLo;
      case CSS_REG.IrbHigh:
        return this.irbHi;
      case CSS_REG.Intparm:
        return this.pending?.intparm ?? 0;
    }
    this.guestError(`read of 0x${offset.toString(16)}: no such subchannel register`);
    return 0;
  }

  write(offset: number, width: AccessWidth, value: number): void {
    if (width !== 4 || offset % 4 !== 0) {
      this.guestError(`${width}-byte write at 0x${offset.toString(16)} of the subchannel window; only aligned 32-bit accesses exist`);
      return;
    }
    switch (offset) {
      case CSS_REG.OrbLow:
        this.orbLo = value >>> 0;
        return;
      case CSS_REG.OrbHigh:
        this.orbHi = value >>> 0;
        return;
      case CSS_REG.Ssch:
        this.startSubchannel();
        return;
      case CSS_REG.IrbLow:
        this.irbLo = value >>> 0;
        return;
      case CSS_REG.IrbHigh:
        this.irbHi = value >>> 0;
        return;
      case CSS_REG.Tsch:
        this.testSubchannel();
        return;
      case CSS_REG.Notify:
        if (!this.device) return;
        this.device.notify(value >>> 0);
        return;
    }
    this.guestError(`write of 0x${offset.toString(16)}: no such subchannel register`);
  }

  private status(): number {
    if (!this.device) return CC_NOT_OPERATIONAL;
    let s = this.cc;
    if (this.active) s |= CSS_STATUS_ACTIVE;
    if (this.pending) {
      s |= CSS_STATUS_PENDING;
      if (this.pending.fctl === 0) s |= CSS_STATUS_ALERT; // no start function: unsolicited
    }
    return s >>> 0;
  }

  /** SSCH: cc 0 and the program runs as deferred work; 1 status pending; 2 busy; 3 no device. */
  private startSubchannel(): void {
    const dev = this.device;
    if (!dev) {
      this.cc = CC_NOT_OPERATIONAL;
      return;
    }
    if (this.pending) {
      this.cc = CC_STATUS_PENDING;
      return;
    }
    if (this.active) {
      this.cc = CC_BUSY;
      return;
    }
    this.cc = CC_OK;
    this.active = true;
    this.started++;
    const orb = addr64(this.orbLo, this.orbHi);
    const epoch = this.epoch;
    this.env.scheduler.defer(() => {
      if (epoch !== this.epoch) return;
      const status = this.run(orb, dev);
      if (epoch !== this.epoch) return; // a command reset the platform under us (cannot happen today)
      this.active = false;
      this.present(status);
    });
  }

  /** Run the program; a fault in this code ends it like a bad program instead of wedging the subchannel. */
  private run(orb: number, handler: CcwCommandHandler): EndingStatus {
    try {
      return runChannelProgram(this.env.ram, orb, handler);
    } catch (e) {
      handler.guestError(`channel program failed internally: ${e instanceof Error ? e.message : String(e)}`);
      return unitCheck(0, 0, 0, 'program');
    }
  }

  /**
   * TSCH: store the IRB and clear the status (cc 0), or store an IRB without
   * status (cc 1). An IRB address outside RAM stores nothing (cc 3).
   */
  private testSubchannel(): void {
    if (!this.device) {
      this.cc = CC_NOT_OPERATIONAL;
      return;
    }
    const ram = this.env.ram;
    const addr = addr64(this.irbLo, this.irbHi);
    if (addr % IRB.ALIGN !== 0 || !ram.contains(addr, IRB.SIZE)) {
      this.guestError(`TSCH: IRB at 0x${addr.toString(16)} is not a 4-aligned block inside RAM; nothing stored`);
      this.cc = CC_NOT_OPERATIONAL;
      return;
    }
    ram.bytes(addr, IRB.SIZE).fill(0);
    const s = this.pending;
    if (!s) {
      this.cc = CC_STATUS_PENDING;
      return;
    }
    const v = ram.view;
    const o = addr - ram.base;
    v.setUint32(o + IRB.intparm, s.intparm >>> 0, true);
    v.setUint8(o + IRB.fctl, s.fctl);
    v.setUint8(o + IRB.stctl, s.stctl);
    v.setUint32(o + IRB.cpa, s.cpa >>> 0, true);
    v.setUint8(o + IRB.dstat, s.dstat);
    v.setUint8(o + IRB.cstat, s.cstat);
    v.setUint16(o + IRB.count, s.count & 0xffff, true);
    v.setUint8(o + IRB.ecw, s.sense0);
    this.pending = null;
    this.cc = CC_OK;
    this.env.irq.lower(this.line);
  }
}
