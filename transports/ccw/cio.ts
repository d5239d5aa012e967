// The part of the s390 common I/O layer (drivers/s390/cio) that virtio_ccw
// relies on: struct ccw_device with its SENSE ID data, ccw_device_start()
// (START SUBCHANNEL) and the I/O interrupt path (TEST SUBCHANNEL, then the
// driver's handler with its intparm and the IRB). The I/O instructions are
// the subchannel window's registers (CSS_REG in core/uapi/ccw.ts).
import { BusError, IRQ_HANDLED, IRQ_NONE, PLATFORM, type Bus, type IrqHandler, type IrqReturn } from '../../core/bus.js';
import { dmaFor, type DmaAllocator } from '../../core/dma.js';
import { devErr, type KernelMessage, type KernelWarning, type LogTarget } from '../../core/kernel.js';
import { CC_BUSY, CC_NOT_OPERATIONAL, CC_STATUS_PENDING, CSS_REG, CSS_STATUS_CC_MASK, CSS_STATUS_PENDING, IRB, ORB } from '../../core/uapi/ccw.js';
import { EBUSY, EINVAL, ENODEV, ENOMEM } from '../../core/uapi/errno.js';

/** struct irb, as TEST SUBCHANNEL stored it. */
export interface Irb {
  intparm: number;
  /** scsw_cc: deferred condition code. */
  cc: number;
  fctl: number;
  actl: number;
  stctl: number;
  cpa: number;
  dstat: number;
  cstat: number;
  count: number;
  /** Extended control word: the sense bytes (ecw[0] & SNS0_CMD_REJECT). */
  ecw: Uint8Array;
}

/** cdev->handler(cdev, intparm, irb); irb is a -errno for an error IRB (ERR_PTR). */
export type CcwHandler = (cdev: CcwDevice, intparm: number, irb: Irb | number) => void;

/** struct ccw_dev_id: what SENSE ID reports. */
export interface CcwDevId {
  cuType: number;
  cuModel: number;
}

/**
 * cio puts its own subchannel pointer into the ORB's intparm and keeps the
 * driver's in cdev->private->intparm. The stand-in here is a number unique
 * per ccw_device, so that a second kernel sharing the interrupt line (the
 * hibernation boot kernel) can tell its own solicited status from another's.
 */
let nextCookie = 1;

/** struct ccw_device */
export class CcwDevice implements LogTarget {
  /** The bus id, "0.0.<devno>"; devno = subchannel number here. */
  readonly name: string;
  readonly warnings: KernelWarning[] = [];
  readonly messages: KernelMessage[] = [];
  readonly base: number;
  readonly id: CcwDevId;
  /** cdev->handler, set by the driver's probe. */
  handler: CcwHandler | null = null;
  /** dev_get_drvdata(&cdev->dev) */
  drvdata: unknown = null;
  /** cdev->private->intparm: the driver's intparm of the last started I/O. */
  intparm = 0;
  readonly cookie: number;
  readonly dma: DmaAllocator;
  private orb = 0;
  private irb = 0;
  private irqHandler: IrqHandler | null = null;

  constructor(
    readonly io: Bus,
    readonly schid: number,
    /** The subchannel's I/O interrupt line (= board slot). */
    readonly line: number = schid,
  ) {
    this.name = `0.0.${schid.toString(16).padStart(4, '0')}`;
    this.base = PLATFORM.CSS_BASE + schid * PLATFORM.CSS_WINDOW_SIZE;
    this.cookie = nextCookie++;
    this.dma = dmaFor(io.mem);
    // Device recognition (SENSE ID); a subchannel without a device has no model to read.
    const cuType = this.readl(CSS_REG.CuType);
    this.id = { cuType, cuModel: cuType ? this.readl(CSS_REG.CuModel) : 0 };
  }

  readl(offset: number): number {
    return this.io.read(this.base + offset, 4) >>> 0;
  }

  writel(value: number, offset: number): void {
    this.io.write(this.base + offset, 4, value >>> 0);
  }

  get online(): boolean {
    return this.irqHandler !== null;
  }

  /**
   * Set the device online: cio's ORB and IRB areas, and the subchannel's
   * interrupt. Returns 0 or -errno.
   */
  enable(): number {
    if (this.online) return 0;
    const orb = this.dma.alloc(ORB.SIZE, 8);
    const irb = orb === null ? null : this.dma.alloc(IRB.SIZE, 8);
    if (orb === null || irb === null) {
      if (orb !== null) this.dma.free(orb);
      return -ENOMEM;
    }
    this.orb = orb;
    this.irb = irb;
    const handler: IrqHandler = (line) => this.interrupt(line);
    try {
      this.io.irq.request(this.line, handler);
    } catch (e) {
      if (e instanceof BusError) throw e;
      devErr(this, `request_irq ${this.line} failed: ${(e as Error).message}`);
      this.freeAreas();
      return -EINVAL;
    }
    this.irqHandler = handler;
    return 0;
  }

  /** Set offline: interrupt and DMA areas released. */
  disable(): void {
    if (!this.irqHandler) return;
    this.io.irq.free(this.line, this.irqHandler);
    this.irqHandler = null;
    this.freeAreas();
  }

  private freeAreas(): void {
    this.dma.free(this.orb);
    this.dma.free(this.irb);
    this.orb = this.irb = 0;
  }

  private view(addr: number, len: number): DataView {
    const b = this.dma.bytes(addr, len);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /**
   * ccw_device_start(cdev, cpa, intparm, 0, 0): START SUBCHANNEL with the
   * channel program at cpa. 0 started, -EBUSY status pending or busy,
   * -ENODEV not operational.
   */
  start(cpa: number, intparm: number): number {
    if (!this.online) return -ENODEV;
    const orb = this.view(this.orb, ORB.SIZE);
    orb.setUint32(ORB.intparm, this.cookie, true);
    orb.setUint32(ORB.ctrl, 0, true);
    orb.setUint32(ORB.cpa, cpa >>> 0, true);
    orb.setUint32(12, 0, true);
    this.writel(this.orb % 0x1_0000_0000, CSS_REG.OrbLow);
    this.writel(Math.floor(this.orb / 0x1_0000_0000), CSS_REG.OrbHigh);
    this.writel(0, CSS_REG.Ssch);
    const cc = this.readl(CSS_REG.Status) & CSS_STATUS_CC_MASK;
    if (cc === 0) {
      this.intparm = intparm >>> 0;
      return 0;
    }
    if (cc === CC_STATUS_PENDING || cc === CC_BUSY) return -EBUSY;
    if (cc === CC_NOT_OPERATIONAL) return -ENODEV;
    return -EBUSY;
  }

  /**
   * The I/O interrupt for this subchannel (do_cio_interrupt →
   * ccw_device_call_handler): take the status with TEST SUBCHANNEL and call
   * the driver's handler with its intparm (0 for unsolicited status).
   */
  interrupt(_line: number): IrqReturn {
    if (!(this.readl(CSS_REG.Status) & CSS_STATUS_PENDING)) return IRQ_NONE;
    // The interruption code names the I/O: leave another user's status alone.
    const code = this.readl(CSS_REG.Intparm);
    if (code !== 0 && code !== this.cookie) return IRQ_NONE;
    this.writel(this.irb % 0x1_0000_0000, CSS_REG.IrbLow);
    this.writel(Math.floor(this.irb / 0x1_0000_0000), CSS_REG.IrbHigh);
    this.writel(0, CSS_REG.Tsch);
    if ((this.readl(CSS_REG.Status) & CSS_STATUS_CC_MASK) !== 0) return IRQ_NONE;
    const irb = this.readIrb();
    this.handler?.(this, irb.intparm === this.cookie ? this.intparm : 0, irb);
    return IRQ_HANDLED;
  }

  private readIrb(): Irb {
    const v = this.view(this.irb, IRB.SIZE);
    return {
      intparm: v.getUint32(IRB.intparm, true),
      cc: v.getUint8(IRB.cc),
      fctl: v.getUint8(IRB.fctl),
      actl: v.getUint8(IRB.actl),
      stctl: v.getUint8(IRB.stctl),
      cpa: v.getUint32(IRB.cpa, true),
      dstat: v.getUint8(IRB.dstat),
      cstat: v.getUint8(IRB.cstat),
      count: v.getUint16(IRB.count, true),
      ecw: this.dma.bytes(this.irb + IRB.ecw, IRB.SIZE - IRB.ecw).slice(),
    };
  }
}
