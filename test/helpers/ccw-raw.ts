// A test-side channel-subsystem client: raw accesses to one subchannel's
// window and channel programs laid out in guest RAM with plain stores, as a
// guest would, with no driver-side model code involved.
import { PLATFORM } from '../../core/bus.js';
import { CCW1, CSS_REG, CSS_STATUS_CC_MASK, IRB, ORB } from '../../core/uapi/ccw.js';
import type { EndingStatus } from '../../emulator/ccw/channel-program.js';
import { RAM_BASE, type TestBoard } from './raw-driver.js';

export interface RawCcw {
  cmd: number;
  flags?: number;
  count: number;
  cda: number;
}

/** The IRB as TSCH stores it: the fields of the subchannel's ending status. */
export type RawIrb = EndingStatus;

export class RawSubchannel {
  readonly base: number;
  /** Scratch areas for the ORB, the CCWs and the IRB. */
  readonly orb: number;
  readonly ccws: number;
  readonly irb: number;

  constructor(
    readonly tb: TestBoard,
    readonly schid = 0,
  ) {
    this.base = PLATFORM.CSS_BASE + schid * PLATFORM.CSS_WINDOW_SIZE;
    this.orb = tb.alloc.take(ORB.SIZE, 8);
    this.ccws = tb.alloc.take(CCW1.SIZE * 512, 8);
    this.irb = tb.alloc.take(IRB.SIZE, 8);
  }

  read(offset: number): number {
    return this.tb.board.read(this.base + offset, 4);
  }
  write(offset: number, value: number): void {
    this.tb.board.write(this.base + offset, 4, value);
  }
  status(): number {
    return this.read(CSS_REG.Status);
  }
  cc(): number {
    return this.status() & CSS_STATUS_CC_MASK;
  }

  /** SSCH with the ORB at orbAddr; returns the condition code. */
  ssch(orbAddr = this.orb): number {
    this.write(CSS_REG.OrbLow, orbAddr % 0x1_0000_0000);
    this.write(CSS_REG.OrbHigh, Math.floor(orbAddr / 0x1_0000_0000));
    this.write(CSS_REG.Ssch, 0);
    return this.cc();
  }

  /** TSCH into the IRB at irbAddr; returns the condition code and the IRB as stored. */
  tsch(irbAddr = this.irb): { cc: number; irb: RawIrb } {
    this.write(CSS_REG.IrbLow, irbAddr % 0x1_0000_0000);
    this.write(CSS_REG.IrbHigh, Math.floor(irbAddr / 0x1_0000_0000));
    this.write(CSS_REG.Tsch, 0);
    const cc = this.cc();
    const inRam = irbAddr >= RAM_BASE && irbAddr + IRB.SIZE <= RAM_BASE + this.tb.ram.length;
    return { cc, irb: inRam ? this.readIrb(irbAddr) : this.readIrb() };
  }

  readIrb(addr = this.irb): RawIrb {
    const v = this.tb.view;
    const o = addr - RAM_BASE;
    return {
      intparm: v.getUint32(o + IRB.intparm, true),
      fctl: v.getUint8(o + IRB.fctl),
      stctl: v.getUint8(o + IRB.stctl),
      cpa: v.getUint32(o + IRB.cpa, true),
      dstat: v.getUint8(o + IRB.dstat),
      cstat: v.getUint8(o + IRB.cstat),
      count: v.getUint16(o + IRB.count, true),
      sense0: v.getUint8(o + IRB.ecw),
    };
  }

  /** Write a CCW chain at `at` and an ORB pointing to it. */
  prepare(ccws: RawCcw[], intparm = 0x1234_5678, at = this.ccws): void {
    const v = this.tb.view;
    ccws.forEach((c, i) => {
      const o = at - RAM_BASE + CCW1.SIZE * i;
      v.setUint8(o + CCW1.cmd_code, c.cmd);
      v.setUint8(o + CCW1.flags, c.flags ?? 0);
      v.setUint16(o + CCW1.count, c.count, true);
      v.setUint32(o + CCW1.cda, c.cda >>> 0, true);
    });
    const o = this.orb - RAM_BASE;
    v.setUint32(o + ORB.intparm, intparm >>> 0, true);
    v.setUint32(o + ORB.ctrl, 0, true);
    v.setUint32(o + ORB.cpa, at >>> 0, true);
  }

  /** Run a program to its end: SSCH, deferred work, TSCH. */
  run(ccws: RawCcw[], intparm = 0x1234_5678): { ssch: number; tsch: number; irb: RawIrb } {
    this.prepare(ccws, intparm);
    const ssch = this.ssch();
    this.tb.board.runDeferred(64);
    const { cc, irb } = this.tsch();
    return { ssch, tsch: cc, irb };
  }
}
